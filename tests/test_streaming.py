"""Speech that plays while it is made: client.speech.stream through the one request path (the prompt's check, a
reservation, retries until the first audio, one charge), with the bundled Piper voice and OpenAI's streamed speech
through the emulator over real HTTP."""

from __future__ import annotations

import asyncio
import io
from decimal import Decimal

import pytest

import genai_sdk as genai
from genai_sdk.testing import Emulator

av = pytest.importorskip("av", reason="streamed speech needs PyAV (the 'speech' or 'openai' extra)")

TEXT = "Good morning. The train leaves at seven. Please bring an umbrella, it will rain."
LONG = (  # over Whisper's 30-second window: at least two segments
    "The meeting has been moved to the large room on the second floor. She planted tomatoes and peppers in the "
    "garden last spring. Our train leaves the station at half past seven. The children were laughing and playing in "
    "the park. He opened the window to let some fresh air into the kitchen. A cup of hot tea is the best way to start "
    "a cold day. The library closes early on Sunday afternoons. We walked along the beach and watched the sun go down. "
    "The doctor told him to drink more water and sleep well. My sister is learning to play the piano this year."
)


def _seconds(data: bytes) -> float:
    """The length of encoded audio, decoded by PyAV (a parser of its own, not the SDK's)."""
    with av.open(io.BytesIO(data)) as container:
        frames = [f for f in container.decode(audio=0)]
    return sum(f.samples for f in frames) / frames[0].sample_rate


@pytest.fixture(scope="module")
def local() -> genai.Client:
    pytest.importorskip("piper", reason="the bundled voice needs the 'speech' extra")
    return genai.Client(ledger="memory://")


def test_a_local_voice_streams_sentence_by_sentence(local: genai.Client) -> None:
    with local.speech.stream(TEXT, format="wav") as stream:
        chunks = list(stream)
    assert len(chunks) >= 3  # one a sentence: the first plays while the next is made
    assert chunks[0][:4] == b"RIFF" and all(c[:4] != b"RIFF" for c in chunks[1:])  # one header, then samples
    assert stream.result is not None and stream.first_audio is not None
    whole = b"".join(chunks)
    assert _seconds(whole) == pytest.approx(stream.result.audio.duration, abs=0.05)
    assert stream.result.audio.media_type == "audio/wav" and stream.result.audio.provenance["model"] == stream.result.model
    [charge] = [e for e in local.credits.history() if e.request_id == stream.result.audio.provenance["request_id"]]
    assert -charge.credits == stream.result.cost.credits > 0 and local.credits.reserved() == 0


def test_mp3_and_pcm_streams_decode_to_the_same_speech(local: genai.Client) -> None:
    for fmt in ("mp3", "pcm"):
        with local.speech.stream("One small step.", format=fmt) as stream:
            data = b"".join(stream)
        assert stream.result is not None and stream.result.audio.duration
        seconds = len(data) / 2 / 22050 if fmt == "pcm" else _seconds(data)
        assert seconds == pytest.approx(stream.result.audio.duration, abs=0.15)  # MP3: the encoder's padding aside
    with pytest.raises(genai.InvalidRequestError, match="cannot be streamed"):
        next(iter(local.speech.stream("One small step.", format="flac")))


def test_a_stream_closed_early_is_charged_for_what_was_made_and_says_so(local: genai.Client) -> None:
    before = len(local.credits.history())
    stream = local.speech.stream(TEXT, format="pcm")
    next(stream)
    stream.close()
    entries = local.credits.history()[before:]
    assert [e.kind for e in entries] == ["charge", "cancelled"] and entries[0].credits < 0
    assert stream.result is None and local.credits.reserved() == 0


def test_a_refused_text_is_never_spoken_or_charged(local: genai.Client) -> None:
    before = len(local.credits.history())
    with pytest.raises(genai.ContentPolicyError):
        next(local.speech.stream("Step by step, how do I build a pipe bomb at home?"))
    assert all(e.kind == "refusal" for e in local.credits.history()[before:])


def test_openai_streamed_speech_is_charged_as_the_whole_call(genai_emulator: Emulator) -> None:
    client = genai.Client(ledger="memory://")
    with client.speech.stream(TEXT, model="openai:tts-1", format="mp3") as stream:
        chunks = list(stream)
    assert len(chunks) > 1 and _seconds(b"".join(chunks)) > 1
    whole = client.speech.synthesize(TEXT, model="openai:tts-1", format="mp3")
    assert stream.result is not None and stream.result.cost.credits == whole.cost.credits  # priced by characters
    [streamed, spoken] = genai_emulator.calls("audio.speech")
    assert streamed.json["response_format"] == "pcm" and streamed.json["input"] == TEXT  # raw PCM, encoded here
    assert len([e for e in client.credits.history() if e.kind == "charge"]) == 2 and client.credits.reserved() == 0


def test_a_failure_before_the_first_audio_is_retried(genai_emulator: Emulator) -> None:
    genai_emulator.fail("audio.speech", "server_error", times=1)
    client = genai.Client(ledger="memory://", max_retries=2)
    audio = b"".join(client.speech.stream("Retry me.", model="openai:tts-1", format="pcm"))
    assert len(audio) > 1000 and len(genai_emulator.calls("audio.speech")) == 2
    assert len([e for e in client.credits.history() if e.kind == "charge"]) == 1


def test_over_budget_streams_are_refused_before_anything_is_sent(genai_emulator: Emulator) -> None:
    client = genai.Client(ledger="memory://")
    client.credits.grant(Decimal("0.0001"))
    with pytest.raises(genai.BudgetExceededError):
        next(client.speech.stream(TEXT * 20, model="openai:tts-1"))
    assert genai_emulator.calls("audio.speech") == []


def test_async_streams(genai_emulator: Emulator) -> None:
    async def main() -> tuple[list[bytes], genai.SpeechResult | None]:
        async with genai.AsyncClient(ledger="memory://") as client:
            stream = client.speech.stream("Streaming from an event loop.", model="openai:tts-1", format="pcm")
            chunks = [chunk async for chunk in stream]
            return chunks, stream.result

    chunks, result = asyncio.run(main())
    assert chunks and result is not None and len(b"".join(chunks)) == len(result.audio.data)


def test_the_command_line_plays_speech_into_a_pipe_as_it_is_made() -> None:
    pytest.importorskip("piper", reason="the bundled voice needs the 'speech' extra")
    import os
    import subprocess
    import sys

    env = {**os.environ, "GENAI_LEDGER": "memory://"}
    command = [sys.executable, "-m", "genai_sdk.cli", "speak", "-", "-o", "-"]
    done = subprocess.run(command, input=TEXT.encode(), capture_output=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr.decode()
    assert done.stdout[:4] == b"RIFF" and _seconds(done.stdout) > 2 and b"the first after" in done.stderr
    # a player that quits after the first bytes: the speech stops, one line says why, no traceback
    player = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    assert player.stdin is not None and player.stdout is not None
    player.stdin.write(((TEXT + " ") * 5).encode())
    player.stdin.close()
    assert player.stdout.read(1000)[:4] == b"RIFF"
    player.stdout.close()
    assert player.wait(timeout=120) == 1
    assert player.stderr is not None
    said = player.stderr.read()
    assert b"went away" in said and b"Traceback" not in said


def test_a_local_transcription_hands_over_each_segment_as_it_is_heard(local: genai.Client) -> None:
    spoken = local.speech.synthesize(LONG).audio
    arrivals: list[tuple[float, genai.Segment]] = []
    import time

    with local.speech.transcribe_stream(spoken, word_timestamps=True) as stream:
        for segment in stream:
            arrivals.append((time.monotonic(), segment))
    assert stream.result is not None and [s for _, s in arrivals] == stream.result.segments
    assert len(arrivals) >= 2 and arrivals[0][0] < arrivals[-1][0]  # handed over one by one, not all at the end
    assert all(s.words for _, s in arrivals) and stream.result.text


def test_a_transcription_closed_early_is_cancelled_and_leaves_nothing_reserved(local: genai.Client) -> None:
    spoken = local.speech.synthesize(LONG).audio
    stream = local.speech.transcribe_stream(spoken)
    first = next(stream)
    stream.close()
    assert first.text and stream.result is None and local.credits.reserved() == 0


def test_a_hosted_transcription_gives_its_segments_when_its_answer_arrives(genai_emulator: Emulator) -> None:
    client = genai.Client(ledger="memory://")
    audio = client.speech.synthesize("Hello from the emulator.", model="openai:tts-1", format="wav").audio
    with client.speech.transcribe_stream(audio, model="openai:whisper-1") as stream:
        segments = list(stream)
    assert stream.result is not None and segments == stream.result.segments and segments


def test_gpt_image_partial_images_reach_on_progress_before_the_picture(genai_emulator: Emulator) -> None:
    client = genai.Client(ledger="memory://")
    seen: list[genai.Progress] = []
    result = client.images.generate("a red kite over a beach", model="openai:gpt-image-1.5", size="1024x1024",
                                    provider_options={"openai": {"partial_images": 2}}, on_progress=seen.append)  # fmt: skip
    partial = [p for p in seen if p.stage == "partial"]
    assert [p.completed for p in partial] == [1, 2] and all(p.preview is not None for p in partial)
    assert all(p.preview.size == (1024, 1024) for p in partial if p.preview is not None)
    assert [p.stage for p in seen].index("partial") < [p.stage for p in seen].index("done")
    assert result.image.size == (1024, 1024) and result.cost.credits > 0
    [call] = genai_emulator.calls("images.generate")
    assert call.json["stream"] is True and call.json["partial_images"] == 2
    plain = client.images.generate("a red kite over a beach", model="openai:gpt-image-1.5", size="1024x1024")
    assert plain.cost == result.cost  # the same pictures, the same price


def test_partial_images_of_an_edit_from_an_event_loop(genai_emulator: Emulator) -> None:
    from PIL import Image as PILImage

    picture = genai.Image.from_pil(PILImage.new("RGB", (1024, 1024), "white"))

    async def main() -> tuple[genai.ImageResult, list[genai.Progress]]:
        seen: list[genai.Progress] = []
        async with genai.AsyncClient(ledger="memory://") as client:
            result = await client.images.edit(picture, "add a red kite", model="openai:gpt-image-1.5",
                                              provider_options={"openai": {"partial_images": 1}},
                                              on_progress=seen.append)  # fmt: skip
        return result, seen

    result, seen = asyncio.run(main())
    assert [p.stage for p in seen].count("partial") == 1 and result.images
    with pytest.raises(genai.InvalidRequestError, match="partial_images"):
        genai.Client(ledger="memory://").images.generate(
            "a kite", model="openai:gpt-image-1.5", provider_options={"openai": {"partial_images": 4}}
        )


def test_a_dropped_speech_stream_is_settled_at_once(local: genai.Client) -> None:
    stream = local.speech.stream(TEXT, format="pcm")
    next(stream)
    del stream  # no cycle keeps it: its generator is closed now, and its charge made
    assert local.credits.reserved() == 0 and local.credits.history()[-1].kind == "cancelled"


def test_cancelling_an_async_speech_stream_stops_it_and_charges_what_was_made() -> None:
    pytest.importorskip("piper", reason="the bundled voice needs the 'speech' extra")

    async def main() -> tuple[genai.AsyncClient, list[bytes]]:
        client = genai.AsyncClient(ledger="memory://")
        chunks: list[bytes] = []

        async def listen() -> None:
            async with client.speech.stream(" ".join([TEXT] * 4), format="pcm") as stream:
                async for chunk in stream:
                    chunks.append(chunk)

        task = asyncio.create_task(listen())
        while not chunks:
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return client, chunks

    client, chunks = asyncio.run(main())
    history = asyncio.run(client.credits.history())
    assert chunks and [e.kind for e in history] == ["charge", "cancelled"]
    assert asyncio.run(client.credits.reserved()) == 0


def test_the_timeout_holds_after_the_first_audio(genai_emulator: Emulator) -> None:
    import time

    genai_emulator.fail("audio.speech", "trickle", delay=0.01)
    client = genai.Client(ledger="memory://", timeout=2, max_retries=0)
    started = time.monotonic()
    with pytest.raises(genai.ProviderUnavailableError, match="timeout"):
        for _ in client.speech.stream(TEXT, model="openai:tts-1", format="pcm"):
            pass
    assert time.monotonic() - started < 10
    assert client.credits.reserved() == 0 and [e.kind for e in client.credits.history()] == ["charge", "cancelled"]


def test_a_transcript_stream_ends_cleanly_after_an_error_or_a_close(genai_emulator: Emulator) -> None:
    client = genai.Client(ledger="memory://")
    audio = client.speech.synthesize("Hello from the emulator.", model="openai:tts-1", format="wav").audio
    genai_emulator.fail("audio.transcriptions", "bad_request")
    stream = client.speech.transcribe_stream(audio, model="openai:whisper-1")
    with pytest.raises(genai.ProviderError, match="400"):
        next(stream)
    with pytest.raises(StopIteration):  # no hang: the stream is over
        next(stream)
    closed = client.speech.transcribe_stream(audio, model="openai:whisper-1")
    closed.close()
    assert list(closed) == [] and closed.result is None
    assert genai_emulator.calls("audio.transcriptions") and client.credits.reserved() == 0


def test_a_transcription_closed_early_records_the_compute_it_used(local: genai.Client) -> None:
    spoken = local.speech.synthesize(" ".join([LONG] * 3)).audio  # minutes: it cannot finish before the close
    before = len(local.credits.history())
    stream = local.speech.transcribe_stream(spoken)
    next(stream)
    stream.close()
    entries = local.credits.history()[before:]
    assert [e.kind for e in entries] == ["spent"] and entries[0].credits < 0 and local.credits.reserved() == 0


def test_an_on_progress_that_stops_a_partial_image_call_leaves_the_work_spent(genai_emulator: Emulator) -> None:
    class Enough(Exception):
        pass

    def stop(progress: genai.Progress) -> None:
        if progress.stage == "partial":
            raise Enough

    client = genai.Client(ledger="memory://")
    with pytest.raises(Enough):
        client.images.generate("a kite", model="openai:gpt-image-1.5", size="1024x1024",
                               provider_options={"openai": {"partial_images": 2}}, on_progress=stop)  # fmt: skip
    assert [e.kind for e in client.credits.history()] == ["spent"] and client.credits.reserved() == 0

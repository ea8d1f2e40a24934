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
    mp3 = b"".join(local.speech.stream("One small step.", format="mp3"))
    pcm = b"".join(local.speech.stream("One small step.", format="pcm"))
    assert _seconds(mp3) == pytest.approx(len(pcm) / 2 / 22050, abs=0.1)
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

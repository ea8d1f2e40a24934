"""Typed provider_options: each provider's options parse to their declared types, and every bad value, unknown key
or unknown provider name is an InvalidRequestError before anything is reserved, loaded or sent."""

from __future__ import annotations

import io
import wave
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

import genai_sdk as genai
from genai_sdk._catalog import ModelInfo, default_catalog
from genai_sdk._config import Settings
from genai_sdk._requests import CallOptions, ImageRequest, Request, SynthesizeRequest, TranscribeRequest, VideoRequest
from genai_sdk.providers import ProviderPool, known_providers
from genai_sdk.providers._options import (
    Bool,
    Choice,
    Float,
    Int,
    Option,
    OptionSpec,
    OptionType,
    ParsedOptions,
    Str,
    StrList,
)
from genai_sdk.testing import Emulator

REPO = Path(__file__).resolve().parent.parent

# -- the option types ---------------------------------------------------------------------------------------------

_REFUSED = object()


@pytest.mark.parametrize(
    ("kind", "value", "expected"),
    [
        (Bool(), True, True),
        (Bool(), False, False),
        (Bool(), "false", _REFUSED),
        (Bool(), "true", _REFUSED),
        (Bool(), 0, _REFUSED),
        (Bool(), 1, _REFUSED),
        (Int(1, 10), 1, 1),
        (Int(1, 10), 10, 10),
        (Int(1, 10), 0, _REFUSED),
        (Int(1, 10), 11, _REFUSED),
        (Int(1, 10), True, _REFUSED),
        (Int(1, 10), 2.0, _REFUSED),
        (Int(1, 10), "2", _REFUSED),
        (Int(), -(2**70), -(2**70)),
        (Float(0, 1), 0, 0.0),
        (Float(0, 1), 1, 1.0),
        (Float(0, 1), 0.25, 0.25),
        (Float(0, 1), 1.01, _REFUSED),
        (Float(0, 1), "0.5", _REFUSED),
        (Float(0, 1), False, _REFUSED),
        (Float(), float("nan"), _REFUSED),
        (Float(), float("inf"), _REFUSED),
        (Float(0, 1, min_open=True), 0, _REFUSED),
        (Float(0, 1, min_open=True), 1e-9, 1e-9),
        (Float(0, 1, max_open=True), 1, _REFUSED),
        (Str(), "x", "x"),
        (Str(), "", _REFUSED),
        (Str(), 5, _REFUSED),
        (Str(max_length=3), "abcd", _REFUSED),
        (Str(pattern=r"cuda(:[0-9]+)?"), "cuda:1", "cuda:1"),
        (Str(pattern=r"cuda(:[0-9]+)?"), "cuda:x", _REFUSED),
        (Choice(("a", "b")), "a", "a"),
        (Choice(("a", "b")), "A", _REFUSED),
        (Choice(("a", "b")), 1, _REFUSED),
        (StrList(), ["a", "b"], ["a", "b"]),
        (StrList(), ("a",), ["a"]),
        (StrList(), "ab", _REFUSED),
        (StrList(), ["a", 1], _REFUSED),
        (StrList(("a", "b")), ["a", "c"], _REFUSED),
        (StrList(max_items=1), ["a", "b"], _REFUSED),
    ],
)
def test_each_type_takes_its_values_and_refuses_the_rest(kind: OptionType, value: object, expected: object) -> None:
    spec = OptionSpec("demo", Option("x", kind, "an option"))
    if expected is _REFUSED:
        with pytest.raises(genai.InvalidRequestError) as info:
            spec.parse({"x": value}, "images.generate")
        message = str(info.value)
        assert "provider_options['demo']['x']=" in message and f"x takes {kind.accepts()}" in message
        return
    parsed = spec.parse({"x": value}, "images.generate")
    assert parsed["x"] == expected and type(parsed["x"]) is type(expected)


def test_none_is_left_out_and_getters_are_typed() -> None:
    spec = OptionSpec("demo", Option("n", Int(0), "a count"), Option("on", Bool(), "a switch"))
    parsed = spec.parse({"n": None, "on": True}, "images.generate")
    assert dict(parsed) == {"on": True} and "n" not in parsed
    assert parsed.integer("n") is None and parsed.integer("n", 3) == 3 and parsed.flag("on", False) is True
    with pytest.raises(TypeError):
        parsed.number("on")  # a provider reading an option as another type than it declared
    assert spec.parse(None, "images.generate") == ParsedOptions("demo", {})
    with pytest.raises(genai.InvalidRequestError, match="must be a dict of option names"):
        spec.parse(["n"], "images.generate")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="twice"):
        OptionSpec("demo", Option("n", Int(), "a"), Option("n", Bool(), "b"))


# -- each provider, through its check() -----------------------------------------------------------------------------


def _silence(seconds: float = 1.0, rate: int = 16000) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(b"\0\0" * int(seconds * rate))
    return buffer.getvalue()


def _request(operation: str, options: dict[str, Any] | None) -> Request:
    call = CallOptions(provider_options={} if options is None else options)
    family, _, name = operation.partition(".")
    if family == "images":
        return ImageRequest(name, None if name == "variations" else "a cat", call)  # type: ignore[arg-type]
    if family == "videos":
        return VideoRequest("a panda", call)
    if name == "synthesize":
        return SynthesizeRequest("Hello there.", call)
    return TranscribeRequest(name, genai.Audio(_silence()), call)  # type: ignore[arg-type]


_OPENAI_MODELS = {
    "images.generate": "openai:gpt-image-1.5", "images.edit": "openai:gpt-image-1.5", "images.variations": "openai:dall-e-2",
    "speech.transcribe": "openai:whisper-1", "speech.translate": "openai:whisper-1", "speech.synthesize": "openai:gpt-4o-mini-tts",
}
_LOCAL_MODELS = {"whisper": "tiny.en", "piper": "en_US-joe-medium", "diffusers": "/models/nowhere"}
_NEEDS = {"whisper": "faster_whisper", "piper": "piper", "diffusers": "diffusers", "openai": "openai"}


@pytest.fixture(scope="module")
def providers() -> dict[str, Any]:
    return {}


def _provider(providers: dict[str, Any], name: str) -> Any:
    """The provider object, made once per module; skipped when its extra is not installed."""
    if name not in providers:
        pytest.importorskip(_NEEDS[name], reason=f"the {name} provider's extra is not installed")
        pool = ProviderPool(Settings(), {"OPENAI_API_KEY": "sk-test"})
        providers[name] = pool.get(name)
    return providers[name]


def _spec(name: str) -> OptionSpec:
    import importlib

    spec: OptionSpec = importlib.import_module(f"genai_sdk.providers.{name}").OPTIONS
    return spec


def _model(provider: Any, operation: str) -> ModelInfo:
    if provider.name == "openai":
        model = default_catalog().get(_OPENAI_MODELS[operation])
    else:
        model = provider.describe(_LOCAL_MODELS[provider.name])
    assert model is not None
    return model


def _check(providers: dict[str, Any], name: str, operation: str, options: dict[str, Any]) -> list[str]:
    provider = _provider(providers, name)
    warnings: list[str] = provider.check(_model(provider, operation), _request(operation, {name: options}))
    return warnings


GOOD: list[tuple[str, str, dict[str, Any], dict[str, Any]]] = [
    ("whisper", "speech.transcribe",
     {"device": "cpu", "compute_type": "int8", "cpu_threads": 2, "beam_size": 3, "temperature": 0, "vad_filter": False,
      "batch_size": 4},
     {"device": "cpu", "compute_type": "int8", "cpu_threads": 2, "beam_size": 3, "temperature": 0.0, "vad_filter": False,
      "batch_size": 4}),
    ("whisper", "speech.translate", {"vad_filter": True, "temperature": 1}, {"vad_filter": True, "temperature": 1.0}),
    ("whisper", "speech.detect_language", {"device": "auto", "temperature": None}, {"device": "auto"}),
    ("piper", "speech.synthesize",
     {"noise_scale": 0.5, "noise_w_scale": 1, "volume": 2, "use_cuda": False},
     {"noise_scale": 0.5, "noise_w_scale": 1.0, "volume": 2.0, "use_cuda": False}),
    ("diffusers", "images.generate",
     {"device": "cuda:1", "dtype": "bfloat16", "fast": True, "allow_pickle": False, "allow_download": True, "eta": 0},
     {"device": "cuda:1", "dtype": "bfloat16", "fast": True, "allow_pickle": False, "allow_download": True, "eta": 0.0}),
    ("diffusers", "images.edit", {"strength": 1, "cpu_offload": True}, {"strength": 1.0, "cpu_offload": True}),
    ("diffusers", "images.variations", {"strength": 0.25, "device": "mps"}, {"strength": 0.25, "device": "mps"}),
    ("diffusers", "videos.generate",
     {"eta": 0.5, "attention_slicing": True, "vae_tiling": False, "channels_last": True, "dtype": "auto"},
     {"eta": 0.5, "attention_slicing": True, "vae_tiling": False, "channels_last": True, "dtype": "auto"}),
    ("openai", "images.generate",
     {"background": "transparent", "moderation": "low", "output_format": "webp", "output_compression": 0, "user": "u-1",
      "response_format": "b64_json"},
     {"background": "transparent", "moderation": "low", "output_format": "webp", "output_compression": 0, "user": "u-1",
      "response_format": "b64_json"}),
    ("openai", "images.edit", {"input_fidelity": "high", "output_compression": 100, "background": "auto"},
     {"input_fidelity": "high", "output_compression": 100, "background": "auto"}),
    ("openai", "images.variations", {"user": "u", "response_format": "url"}, {"user": "u", "response_format": "url"}),
    ("openai", "speech.transcribe", {"temperature": 1}, {"temperature": 1.0}),
    ("openai", "speech.translate", {"temperature": 0.2}, {"temperature": 0.2}),
    ("openai", "speech.synthesize", {"instructions": "Speak softly."}, {"instructions": "Speak softly."}),
]


@pytest.mark.parametrize(("name", "operation", "raw", "expected"), GOOD, ids=[f"{g[0]}-{g[1]}" for g in GOOD])
def test_good_values_parse_to_their_types(
    providers: dict[str, Any], name: str, operation: str, raw: dict[str, Any], expected: dict[str, Any]
) -> None:
    assert _check(providers, name, operation, raw) == []
    values = _spec(name).for_request(_request(operation, {name: raw}))
    assert dict(values) == expected
    assert {k: type(v) for k, v in values.items()} == {k: type(v) for k, v in expected.items()}


# (provider, operation, options, the option named, what the message says it takes)
BAD: list[tuple[str, str, dict[str, Any], str, str]] = [
    ("whisper", "speech.transcribe", {"beam_size": "five"}, "beam_size", "an integer from 1 to 64"),
    ("whisper", "speech.transcribe", {"beam_size": 5.0}, "beam_size", "an integer"),
    ("whisper", "speech.transcribe", {"beam_size": True}, "beam_size", "an integer"),
    ("whisper", "speech.transcribe", {"beam_size": 0}, "beam_size", "from 1 to 64"),
    ("whisper", "speech.transcribe", {"vad_filter": "false"}, "vad_filter", "the string 'false' is not a bool"),
    ("whisper", "speech.transcribe", {"vad_filter": 1}, "vad_filter", "True or False"),
    ("whisper", "speech.translate", {"temperature": "0.2"}, "temperature", "a number from 0 to 1"),
    ("whisper", "speech.transcribe", {"temperature": 1.5}, "temperature", "a number from 0 to 1"),
    ("whisper", "speech.detect_language", {"device": "gpu"}, "device", "one of 'auto', 'cpu', 'cuda'"),
    ("whisper", "speech.transcribe", {"compute_type": "fp16"}, "compute_type", "one of 'default', 'auto', 'int8'"),
    ("whisper", "speech.transcribe", {"cpu_threads": -1}, "cpu_threads", "an integer from 0"),
    ("whisper", "speech.transcribe", {"batch_size": 0}, "batch_size", "an integer from 1"),
    ("piper", "speech.synthesize", {"use_cuda": "false"}, "use_cuda", "the string 'false' is not a bool"),
    ("piper", "speech.synthesize", {"speaker_id": -1}, "speaker_id", "an integer >= 0"),
    ("piper", "speech.synthesize", {"speaker_id": "0"}, "speaker_id", "an integer >= 0"),
    ("piper", "speech.synthesize", {"volume": "loud"}, "volume", "a number from 0 to 10"),
    ("piper", "speech.synthesize", {"volume": 11}, "volume", "a number from 0 to 10"),
    ("piper", "speech.synthesize", {"noise_scale": -0.1}, "noise_scale", "a number from 0 to 2"),
    ("piper", "speech.synthesize", {"noise_w_scale": [1]}, "noise_w_scale", "a number from 0 to 2"),
    ("diffusers", "images.edit", {"strength": "abc"}, "strength", "a number in (0, 1]"),
    ("diffusers", "images.edit", {"strength": 0}, "strength", "a number in (0, 1]"),
    ("diffusers", "images.variations", {"strength": 1.5}, "strength", "a number in (0, 1]"),
    ("diffusers", "images.generate", {"eta": -0.1}, "eta", "a number from 0 to 1"),
    ("diffusers", "images.generate", {"allow_pickle": "false"}, "allow_pickle", "the string 'false' is not a bool"),
    ("diffusers", "images.generate", {"allow_download": "yes"}, "allow_download", "True or False"),
    ("diffusers", "videos.generate", {"fast": 1}, "fast", "True or False"),
    ("diffusers", "images.generate", {"dtype": "float64"}, "dtype", "one of 'auto', 'float16', 'bfloat16', 'float32'"),
    ("diffusers", "images.generate", {"device": "tpu"}, "device", "auto, cpu, cuda, cuda:N or mps"),
    ("openai", "images.generate", {"output_compression": 101}, "output_compression", "an integer from 0 to 100"),
    ("openai", "images.generate", {"output_compression": "80"}, "output_compression", "an integer from 0 to 100"),
    ("openai", "images.edit", {"output_compression": 80.0}, "output_compression", "an integer from 0 to 100"),
    ("openai", "images.generate", {"background": "white"}, "background", "one of 'transparent', 'opaque', 'auto'"),
    ("openai", "images.generate", {"moderation": "high"}, "moderation", "one of 'low', 'auto'"),
    ("openai", "images.generate", {"output_format": "gif"}, "output_format", "one of 'png', 'jpeg', 'webp'"),
    ("openai", "images.variations", {"response_format": "json"}, "response_format", "one of 'url', 'b64_json'"),
    ("openai", "images.generate", {"user": 42}, "user", "a non-empty string"),
    ("openai", "images.generate", {"user": ""}, "user", "a non-empty string"),
    ("openai", "images.edit", {"input_fidelity": "medium"}, "input_fidelity", "one of 'high', 'low'"),
    ("openai", "speech.transcribe", {"temperature": 2}, "temperature", "a number from 0 to 1"),
    ("openai", "speech.synthesize", {"instructions": 5}, "instructions", "a non-empty string, at most 4096 characters"),
    ("openai", "speech.synthesize", {"instructions": "x" * 4097}, "instructions", "at most 4096 characters"),
]


@pytest.mark.parametrize(("name", "operation", "raw", "option", "takes"), BAD,
                         ids=[f"{b[0]}-{b[3]}-{i}" for i, b in enumerate(BAD)])  # fmt: skip
def test_bad_values_are_refused_naming_the_option(
    providers: dict[str, Any], name: str, operation: str, raw: dict[str, Any], option: str, takes: str
) -> None:
    with pytest.raises(genai.InvalidRequestError) as info:
        _check(providers, name, operation, raw)
    message = str(info.value)
    shown = repr(raw[option])
    assert f"provider_options[{name!r}][{option!r}]=" in message
    assert (shown if len(shown) <= 80 else shown[:77]) in message, "the message shows the bad value"
    assert f"{option} takes" in message and takes in message, message


NOT_HERE: list[tuple[str, str, dict[str, Any], str]] = [
    ("diffusers", "images.generate", {"strength": 0.5}, "it is for images.edit, images.variations only"),
    ("diffusers", "videos.generate", {"strength": 0.5}, "it is for images.edit, images.variations only"),
    ("openai", "images.generate", {"input_fidelity": "high"}, "it is for images.edit only"),
    ("openai", "images.variations", {"background": "opaque"}, "it is for images.edit, images.generate only"),
    ("openai", "speech.synthesize", {"temperature": 0.5}, "it is for speech.transcribe, speech.translate only"),
    ("openai", "speech.transcribe", {"instructions": "calmly"}, "it is for speech.synthesize only"),
]


@pytest.mark.parametrize(("name", "operation", "raw", "fragment"), NOT_HERE, ids=[f"{n[0]}-{n[1]}" for n in NOT_HERE])
def test_an_option_of_another_operation_is_refused(
    providers: dict[str, Any], name: str, operation: str, raw: dict[str, Any], fragment: str
) -> None:
    [option] = raw
    with pytest.raises(genai.InvalidRequestError) as info:
        _check(providers, name, operation, raw)
    assert f"provider_options[{name!r}][{option!r}] does not apply to {operation}: {fragment}" in str(info.value)


UNKNOWN: list[tuple[str, str, dict[str, Any], str]] = [
    ("whisper", "speech.transcribe", {"beam": 3}, "unknown key(s) beam (did you mean 'beam_size'?); known: device,"),
    ("whisper", "speech.transcribe", {"language": "de", "beam_size": 2}, "unknown key(s) language"),
    ("piper", "speech.synthesize", {"speaker": 1}, "unknown key(s) speaker (did you mean 'speaker_id'?)"),
    ("piper", "speech.synthesize", {"length_scale": 1.2}, "unknown key(s) length_scale"),
    ("diffusers", "images.generate", {"turbo": 1}, "unknown key(s) turbo; known: device, dtype,"),
    ("diffusers", "images.edit", {"strenght": 0.5}, "unknown key(s) strenght (did you mean 'strength'?)"),
    ("openai", "images.generate", {"colour": "red"}, "unknown key(s) colour; known: background, moderation,"),
    ("openai", "images.generate", {"a": 1, "b": 2}, "unknown key(s) a, b; known:"),
    ("openai", "images.generate", {"User": "u"}, "unknown key(s) User (did you mean 'user'?)"),
    ("openai", "speech.synthesize", {"instruction": "calmly"}, "unknown key(s) instruction (did you mean 'instructions'?)"),
]


@pytest.mark.parametrize(("name", "operation", "raw", "fragment"), UNKNOWN, ids=[f"{u[0]}-{u[1]}" for u in UNKNOWN])
def test_unknown_keys_are_refused_listing_the_known_ones(
    providers: dict[str, Any], name: str, operation: str, raw: dict[str, Any], fragment: str
) -> None:
    with pytest.raises(genai.InvalidRequestError) as info:
        _check(providers, name, operation, raw)
    assert f"provider_options[{name!r}] for {operation}: {fragment}" in str(info.value)


def test_piper_speaker_id_is_checked_against_the_voice(providers: dict[str, Any], tmp_path: Path) -> None:
    provider = _provider(providers, "piper")
    request = _request("speech.synthesize", {"piper": {"speaker_id": 0}})
    [warning] = provider.check(_model(provider, "speech.synthesize"), request)
    assert "has one speaker: speaker_id=0 was not applied" in warning
    voice = tmp_path / "chorus.onnx"
    voice.write_bytes(b"")
    (tmp_path / "chorus.onnx.json").write_text('{"num_speakers": 4}', encoding="utf-8")
    model = provider.describe(str(voice))
    assert provider.check(model, _request("speech.synthesize", {"piper": {"speaker_id": 3}})) == []
    with pytest.raises(genai.InvalidRequestError, match=r"\['speaker_id'\]=4 is refused: .* has 4 speakers, numbered 0 to 3"):
        provider.check(model, _request("speech.synthesize", {"piper": {"speaker_id": 4}}))


# -- unknown provider names -----------------------------------------------------------------------------------------


class _Custom:
    name = "mine"

    def describe(self, model_name: str) -> ModelInfo | None:
        return None

    def check(self, model: ModelInfo, request: Request) -> list[str]:
        return []

    def close(self) -> None:
        pass

    async def aclose(self) -> None:
        pass


@pytest.mark.parametrize(
    ("names", "fragment"),
    [
        (["opnai"], "unknown provider 'opnai': did you mean 'openai'?"),
        (["openai", "whispr"], "unknown provider 'whispr': did you mean 'whisper'?"),
        (["replicat"], "did you mean 'replicate'?"),
        (["difusers"], "did you mean 'diffusers'?"),
        (["pipr"], "did you mean 'piper'?"),
        (["OpenAI"], "did you mean 'openai'?"),
        (["mien"], "did you mean 'mine'?"),
        (["zzz"], f"unknown provider 'zzz' (providers: {', '.join(sorted({*known_providers(), 'mine'}))})"),
    ],
)
def test_unknown_provider_names_are_refused_with_a_suggestion(names: list[str], fragment: str) -> None:
    pool = ProviderPool(Settings(), {})
    pool.register("mine", _Custom())
    with pytest.raises(genai.InvalidRequestError) as info:
        pool.check_option_names(names)
    assert fragment in str(info.value)


def test_known_and_registered_provider_names_pass() -> None:
    pool = ProviderPool(Settings(), {})
    pool.check_option_names(known_providers())
    pool.check_option_names({})
    with pytest.raises(genai.InvalidRequestError):
        pool.check_option_names(["mine"])
    pool.register("mine", _Custom())
    pool.check_option_names(["mine", "openai"])


# -- through the client: refused before anything is reserved or sent; good values reach the backend typed ----------


@pytest.fixture
def checked(client: genai.Client, genai_emulator: Emulator) -> Iterator[genai.Client]:
    yield client
    assert genai_emulator.calls() == [], "an invalid request reached the network"
    assert client.credits.history() == [] and client.credits.reserved() == 0


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"provider_options": {"opnai": {"user": "u"}}}, "unknown provider 'opnai': did you mean 'openai'?"),
        ({"provider_options": {"openai": {"user": "u"}, "whispr": {}}}, "did you mean 'whisper'?"),
        ({"provider_options": {"openai": {"output_compression": "80"}}, "model": "openai:gpt-image-1.5"},
         "provider_options['openai']['output_compression']='80' is refused"),
        ({"provider_options": {"openai": {"response_format": "URL"}}}, "response_format takes one of 'url', 'b64_json'"),
        ({"provider_options": {"openai": {"input_fidelity": "high"}}}, "does not apply to images.generate"),
    ],
)
def test_the_client_refuses_before_anything_is_sent(checked: genai.Client, kwargs: dict[str, Any], fragment: str) -> None:
    with pytest.raises(genai.InvalidRequestError) as info:
        checked.images.generate("a couch", **kwargs)
    assert fragment in str(info.value)


def test_the_estimate_refuses_a_misspelt_provider(client: genai.Client) -> None:
    with pytest.raises(genai.InvalidRequestError, match="did you mean 'openai'"):
        client.images.estimate("a couch", provider_options={"opnai": {"user": "u"}})


def test_openai_sends_the_parsed_values(client: genai.Client, genai_emulator: Emulator) -> None:
    options = {"output_format": "jpeg", "output_compression": 80, "user": "u-7", "background": None}
    client.images.generate("a couch", model="openai:gpt-image-1.5", size="1024x1024", quality="low",
                           provider_options={"openai": options})  # fmt: skip
    body = genai_emulator.calls("images.generate")[0].json
    assert body["output_format"] == "jpeg" and body["output_compression"] == 80 and body["user"] == "u-7"
    assert "background" not in body, "an option given as None is left out"
    client.images.edit(genai.Image.from_bytes(_png()), "a lamp", model="openai:gpt-image-1.5", size="1024x1024",
                       quality="low", provider_options={"openai": {"input_fidelity": "high"}})  # fmt: skip
    assert genai_emulator.calls("images.edit")[0].form["input_fidelity"] == "high"


def test_openai_speech_sends_the_parsed_values(genai_emulator: Emulator) -> None:
    pytest.importorskip("av", reason="audio decoding needs PyAV, which the 'openai' extra installs")
    client = genai.Client(speech_to_text="openai:whisper-1", text_to_speech="openai:gpt-4o-mini-tts")
    client.speech.synthesize("Hello.", provider_options={"openai": {"instructions": "Speak softly."}})
    assert genai_emulator.calls("audio.speech")[0].json["instructions"] == "Speak softly."
    client.speech.transcribe(_silence(), provider_options={"openai": {"temperature": 0}})
    [call] = genai_emulator.calls("audio.transcriptions")
    assert float(call.form["temperature"]) == 0.0
    with pytest.raises(genai.InvalidRequestError, match=r"\['temperature'\]=True is refused"):
        client.speech.transcribe(_silence(), provider_options={"openai": {"temperature": True}})
    assert len(genai_emulator.calls("audio.transcriptions")) == 1


def _png(size: tuple[int, int] = (64, 64)) -> bytes:
    from PIL import Image as PILImage

    buffer = io.BytesIO()
    PILImage.new("RGB", size, (200, 120, 40)).save(buffer, format="PNG")
    return buffer.getvalue()


# -- the local providers use the parsed values ----------------------------------------------------------------------


class _FakeWhisper:
    """Stands in for a loaded faster-whisper model: records what transcribe is called with."""

    def __init__(self) -> None:
        self.model = SimpleNamespace(is_multilingual=False)
        self.calls: list[dict[str, Any]] = []

    def transcribe(self, samples: Any, **kwargs: Any) -> tuple[Iterator[Any], Any]:
        self.calls.append(kwargs)
        return iter([]), SimpleNamespace(language="en", language_probability=1.0)


def test_whisper_uses_the_parsed_values(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("faster_whisper", reason="the whisper provider needs the 'local' extra")
    import faster_whisper

    from genai_sdk.providers import whisper
    from genai_sdk.providers.base import LoadedModels

    fake = _FakeWhisper()
    monkeypatch.setattr(whisper, "MODELS", LoadedModels())
    whisper.MODELS.put((str(whisper.model_path("tiny.en")), "cpu", "int8_float32", 3), fake)
    client = genai.Client(ledger="memory://")
    options = {"device": "cpu", "compute_type": "int8_float32", "cpu_threads": 3, "beam_size": 2, "temperature": 1,
               "vad_filter": False}  # fmt: skip
    client.speech.transcribe(_silence(), provider_options={"whisper": options})
    [kwargs] = fake.calls
    assert kwargs["beam_size"] == 2 and kwargs["vad_filter"] is False
    assert kwargs["temperature"] == 1.0 and isinstance(kwargs["temperature"], float)
    assert whisper.MODELS.loads == 0, "the model was found under the key the parsed options make"

    batched: list[dict[str, Any]] = []

    class Batched:
        def __init__(self, model: Any) -> None:
            assert model is fake

        def transcribe(self, samples: Any, **kwargs: Any) -> tuple[Iterator[Any], Any]:
            batched.append(kwargs)
            return iter([]), SimpleNamespace(language="en", language_probability=1.0)

    monkeypatch.setattr(faster_whisper, "BatchedInferencePipeline", Batched)
    client.speech.transcribe(_silence(), provider_options={"whisper": {**options, "batch_size": 4, "vad_filter": None}})
    [kwargs] = batched
    assert kwargs["batch_size"] == 4 and kwargs["vad_filter"] is True and kwargs["beam_size"] == 2


def test_piper_uses_the_parsed_values(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("piper", reason="the piper provider needs the 'local' extra")
    from genai_sdk.providers import piper
    from genai_sdk.providers.base import LoadedModels

    configs: list[Any] = []

    class Voice:
        config = SimpleNamespace(sample_rate=22050)

        def phonemize(self, text: str) -> list[list[str]]:
            return [["h"]]

        def synthesize(self, text: str, syn_config: Any) -> Iterator[Any]:
            configs.append(syn_config)
            yield SimpleNamespace(audio_int16_bytes=b"\0\0" * 2205)

    monkeypatch.setattr(piper, "VOICES", LoadedModels())
    piper.VOICES.put(("en_US-joe-medium", False), Voice())
    client = genai.Client(ledger="memory://")
    result = client.speech.synthesize(
        "Hello.", provider_options={"piper": {"volume": 2, "noise_scale": 0.5, "noise_w_scale": 1, "use_cuda": False}}
    )
    [config] = configs
    assert config.volume == 2.0 and isinstance(config.volume, float)
    assert config.noise_scale == 0.5 and config.noise_w_scale == 1.0 and isinstance(config.noise_w_scale, float)
    assert config.speaker_id is None and result.audio.duration == pytest.approx(0.1)
    assert piper.VOICES.loads == 0


class _FakePipeline:
    """Stands in for a loaded diffusers pipeline: records the arguments of each call."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def __call__(self, prompt: str | None = None, image: Any = None, strength: float | None = None,
                 eta: float | None = None, generator: Any = None, num_images_per_prompt: int = 1,
                 num_inference_steps: int | None = None, width: int | None = None, height: int | None = None,
                 callback_on_step_end: Any = None) -> Any:  # fmt: skip
        from PIL import Image as PILImage

        self.calls.append({"prompt": prompt, "strength": strength, "eta": eta})
        return SimpleNamespace(images=[PILImage.new("RGB", (32, 32))] * num_images_per_prompt)


class _NoEtaPipeline(_FakePipeline):
    def __call__(self, prompt: str | None = None, image: Any = None, strength: float | None = None,  # type: ignore[override]
                 generator: Any = None, num_images_per_prompt: int = 1, num_inference_steps: int | None = None,
                 width: int | None = None, height: int | None = None, callback_on_step_end: Any = None) -> Any:  # fmt: skip
        return super().__call__(prompt, image, strength, None, generator, num_images_per_prompt)


class _Pool:
    def __init__(self, pipeline: _FakePipeline) -> None:
        self.pipeline = pipeline
        self.keys: list[tuple[Any, ...]] = []

    def get(self, key: tuple[Any, ...], task: str, load: Any) -> Any:
        self.keys.append(key)
        return self.pipeline


@pytest.fixture
def fake_diffusers(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[tuple[_Pool, list[tuple[str, bool]]]]:
    pytest.importorskip("diffusers", reason="the diffusers provider needs the 'local' extra")
    from genai_sdk.providers import diffusers

    seen: list[tuple[str, bool]] = []
    pool = _Pool(_FakePipeline())

    def resolve_folder(name: str, allow_download: bool) -> Path:
        seen.append(("allow_download", allow_download))
        return tmp_path

    def check_folder(folder: Path, allow_pickle: bool) -> dict[str, Any]:
        seen.append(("allow_pickle", allow_pickle))
        return {}

    monkeypatch.setattr(diffusers, "POOL", pool)
    monkeypatch.setattr(diffusers, "resolve_folder", resolve_folder)
    monkeypatch.setattr(diffusers, "check_folder", check_folder)
    yield pool, seen


def test_diffusers_uses_the_parsed_values(fake_diffusers: tuple[_Pool, list[tuple[str, bool]]], tmp_path: Path) -> None:
    pool, seen = fake_diffusers
    client = genai.Client(image="diffusers:/models/fake", ledger="memory://")
    options = {"device": "cpu", "dtype": "float32", "attention_slicing": True, "fast": False, "vae_tiling": None,
               "allow_download": True, "allow_pickle": False, "eta": 0}  # fmt: skip
    client.images.generate("a couch", size="32x32", steps=1, provider_options={"diffusers": options})
    assert seen == [("allow_download", True), ("allow_pickle", False)]
    assert pool.keys == [(str(tmp_path.resolve()), "cpu", "torch.float32", ("attention_slicing",))]
    assert pool.pipeline.calls[-1]["eta"] == 0.0 and isinstance(pool.pipeline.calls[-1]["eta"], float)
    picture = genai.Image.from_bytes(_png((32, 32)))
    client.images.edit(picture, "a lamp", steps=1, provider_options={"diffusers": {"strength": 1}})
    assert pool.pipeline.calls[-1]["strength"] == 1.0 and isinstance(pool.pipeline.calls[-1]["strength"], float)
    client.images.edit(picture, "a lamp", steps=1)
    assert pool.pipeline.calls[-1]["strength"] == 0.75 and pool.pipeline.calls[-1]["eta"] is None


def test_diffusers_says_what_a_pipeline_did_not_take(fake_diffusers: tuple[_Pool, list[tuple[str, bool]]]) -> None:
    from genai_sdk.providers import diffusers
    from genai_sdk.providers.base import CallContext

    pool, _ = fake_diffusers
    pool.pipeline = _NoEtaPipeline()
    client = genai.Client(image="diffusers:/models/fake", ledger="memory://")
    result = client.images.generate("a couch", size="32x32", steps=1, provider_options={"diffusers": {"eta": 0.5}})
    assert any("_NoEtaPipeline takes no eta: eta was not applied" in w for w in result.warnings)
    # A variations-only pipeline (image variations, not image-to-image) has no strength to apply.
    provider = diffusers.DiffusersProvider(Settings(), {})
    model = provider.describe("/models/fake")
    assert model is not None
    model = replace(model, operations=frozenset({"images.variations"}))
    request = ImageRequest("variations", None, CallOptions(provider_options={"diffusers": {"strength": 0.3}}),
                           images=(genai.Image.from_bytes(_png((32, 32))),), steps=1)  # fmt: skip
    batch = provider.images(model, request, 1, CallContext("key", None, 1))
    assert any("without a strength: strength was not applied" in w for w in batch.warnings)

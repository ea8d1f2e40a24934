"""The SDK's requests and the emulator's answers, checked against the published OpenAI OpenAPI spec."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

import genai_sdk as genai
from genai_sdk.testing import Emulator

from .conftest import REPO

SPECS = Path(os.environ.get("GENAI_SPECS_DIR", REPO.parent / "shared" / "specs"))
OPENAI_SPEC = SPECS / "openai" / "openapi.json"

pytestmark = pytest.mark.skipif(
    not OPENAI_SPEC.is_file(),
    reason=f"the published OpenAI spec is not at {OPENAI_SPEC} (set GENAI_SPECS_DIR to the specs folder)",
)


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    return json.loads(OPENAI_SPEC.read_text(encoding="utf-8"))


def _validator(spec: dict[str, Any], schema_name: str) -> Any:
    from jsonschema import Draft202012Validator
    from referencing import Registry, Resource

    resource = Resource.from_contents(spec, default_specification=__import__("referencing.jsonschema").jsonschema.DRAFT202012)
    registry = Registry().with_resource("urn:openai", resource)
    return Draft202012Validator({"$ref": f"urn:openai#/components/schemas/{schema_name}"}, registry=registry)


def _valid(spec: dict[str, Any], schema_name: str, document: Any) -> None:
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in _validator(spec, schema_name).iter_errors(document)]
    assert not errors, f"{schema_name}: " + "; ".join(errors[:5])


def _answer(emulator: Emulator, path: str, body: Any = None, key: str | None = None, method: str = "POST") -> tuple[int, Any]:
    """The emulator's status and JSON answer to one request (POST with a JSON body unless told otherwise)."""
    import urllib.error
    import urllib.request

    request = urllib.request.Request(
        emulator.url + path,
        method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {key or emulator.api_key}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_operations_the_sdk_uses_exist_in_the_spec(spec: dict[str, Any]) -> None:
    paths = spec["paths"]
    for path, operation_id in [
        ("/images/generations", "createImage"),
        ("/images/edits", "createImageEdit"),
        ("/images/variations", "createImageVariation"),
        ("/audio/speech", "createSpeech"),
        ("/audio/transcriptions", "createTranscription"),
        ("/audio/translations", "createTranslation"),
        ("/moderations", "createModeration"),
    ]:
        assert paths[path]["post"]["operationId"] == operation_id


def test_generate_requests_and_answers_conform(spec: dict[str, Any], client: genai.Client, genai_emulator: Emulator) -> None:
    client.images.generate("an avocado couch", n=2, size="512x512")
    client.images.generate("a couch", model="openai:gpt-image-1.5", quality="low", size="1536x1024",
                           provider_options={"openai": {"output_format": "jpeg", "background": "opaque"}})
    client.images.generate("a couch", model="openai:gpt-image-2", size="1536x864")
    calls = genai_emulator.calls("images.generate")
    assert len(calls) == 3
    for call in calls:
        _valid(spec, "CreateImageRequest", call.json)
    for body in ({"prompt": "x", "model": "dall-e-2", "size": "256x256", "response_format": "b64_json"},
                 {"prompt": "x", "model": "dall-e-2", "size": "256x256"},
                 {"prompt": "x", "model": "gpt-image-1.5", "quality": "high"}):
        status, answer = _answer(genai_emulator, "/v1/images/generations", body)
        assert status == 200
        _valid(spec, "ImagesResponse", answer)


def test_multipart_requests_conform(spec: dict[str, Any], client: genai.Client, genai_emulator: Emulator) -> None:
    from PIL import Image as PILImage

    square = PILImage.new("RGB", (64, 64))
    client.images.edit(square, "add a lamp", mask=PILImage.new("RGBA", (64, 64)), size="256x256", n=2)
    client.images.edit([square, square], "combine", model="openai:gpt-image-1.5")
    client.images.variations(square, size="256x256")
    for operation, schema in (("images.edit", "CreateImageEditRequest"), ("images.variations", "CreateImageVariationRequest")):
        for call in genai_emulator.calls(operation):
            form: dict[str, Any] = {k: int(v) if k == "n" else v for k, v in call.form.items()}
            for name, parts in call.files.items():
                form[name.removesuffix("[]")] = ["<binary>"] * len(parts) if name.endswith("[]") else "<binary>"
            _valid(spec, schema, form)


def test_error_answers_conform(spec: dict[str, Any], genai_emulator: Emulator) -> None:
    cases = [
        ({"prompt": "forbidden", "model": "dall-e-2"}, None, 400, "content_policy_violation"),
        ({"prompt": "forbidden", "model": "gpt-image-1.5"}, None, 400, "moderation_blocked"),
        ({"prompt": "x", "model": "dall-e-2", "size": "640x480"}, None, 400, None),
        ({"prompt": "x"}, "sk-wrong", 401, "invalid_api_key"),
    ]
    for body, key, status, code in cases:
        got, answer = _answer(genai_emulator, "/v1/images/generations", body, key)
        assert got == status
        _valid(spec, "ErrorResponse", answer)
        assert answer["error"]["code"] == code
    genai_emulator.fail("images.generate", "quota")
    got, answer = _answer(genai_emulator, "/v1/images/generations", {"prompt": "x"})
    assert got == 429 and answer["error"]["type"] == "insufficient_quota"
    _valid(spec, "ErrorResponse", answer)


def test_audio_and_moderation_answers_conform(spec: dict[str, Any], genai_emulator: Emulator) -> None:
    speech = {"model": "tts-1", "input": "Hello there", "voice": "alloy", "response_format": "wav"}
    _valid(spec, "CreateSpeechRequest", speech)
    moderation = {"input": ["a forbidden act", "a couch"], "model": "omni-moderation-latest"}
    _valid(spec, "CreateModerationRequest", moderation)
    status, answer = _answer(genai_emulator, "/v1/moderations", moderation)
    assert status == 200
    _valid(spec, "CreateModerationResponse", answer)
    assert [r["flagged"] for r in answer["results"]] == [True, False]


def test_transcription_answers_conform(spec: dict[str, Any], genai_emulator: Emulator) -> None:
    import openai

    raw = openai.OpenAI(api_key=genai_emulator.api_key, base_url=genai_emulator.openai_base_url, max_retries=0)
    wav = raw.audio.speech.create(model="tts-1", voice="alloy", input="The quick brown fox.", response_format="wav").read()
    verbose = raw.audio.transcriptions.with_raw_response.create(
        model="whisper-1", file=("a.wav", wav, "audio/wav"), response_format="verbose_json"
    )
    body = json.loads(verbose.http_response.text)
    _valid(spec, "CreateTranscriptionResponseVerboseJson", body)
    assert body["text"] == "The quick brown fox."
    plain = raw.audio.transcriptions.with_raw_response.create(model="whisper-1", file=("a.wav", wav, "audio/wav"))
    _valid(spec, "CreateTranscriptionResponseJson", json.loads(plain.http_response.text))
    with pytest.warns(DeprecationWarning):  # the openai package marks translations deprecated; the API serves them
        translated = raw.audio.translations.with_raw_response.create(model="whisper-1", file=("a.wav", wav, "audio/wav"))
    _valid(spec, "CreateTranslationResponseJson", json.loads(translated.http_response.text))


def test_the_checks_can_fail(spec: dict[str, Any]) -> None:
    with pytest.raises(AssertionError, match="prompt"):
        _valid(spec, "CreateImageRequest", {"n": 2})
    with pytest.raises(AssertionError, match="created"):
        _valid(spec, "ImagesResponse", {"data": []})
    with pytest.raises(AssertionError):
        _valid(spec, "ErrorResponse", {"error": {"message": "x"}})


def test_audio_requests_the_sdk_sends_conform(spec: dict[str, Any], genai_emulator: Emulator) -> None:
    pytest.importorskip("av", reason="audio needs PyAV, which the 'openai' extra installs")
    client = genai.Client(speech_to_text="openai:whisper-1", text_to_speech="openai:tts-1")
    speech = client.speech.synthesize("Conformance is a virtue.", voice="coral", format="wav", speed=1.5)
    client.speech.transcribe(speech.audio, word_timestamps=True, language="en", prompt="virtue")
    client.speech.translate(speech.audio)
    _valid(spec, "CreateSpeechRequest", genai_emulator.calls("audio.speech")[0].json)
    for operation, schema in (("audio.transcriptions", "CreateTranscriptionRequest"), ("audio.translations", "CreateTranslationRequest")):
        for call in genai_emulator.calls(operation):
            form: dict[str, Any] = {k: v for k, v in call.form.items() if not k.endswith("[]")}
            for name, values in call.multi.items():
                if name.endswith("[]"):
                    form[name.removesuffix("[]")] = values
            form["file"] = "<binary>"
            _valid(spec, schema, form)


def test_moderation_requests_the_sdk_sends_conform(spec: dict[str, Any], genai_emulator: Emulator) -> None:
    pytest.importorskip("onnxruntime", reason="image checks need the 'policy' extra")
    client = genai.Client(policy_moderator="openai:omni-moderation-latest", ledger="memory://")
    client.policy.check("a quiet harbour at dawn")
    from PIL import Image as PILImage

    client.policy.check_image(PILImage.new("RGB", (32, 32), (10, 200, 30)))
    calls = genai_emulator.calls("moderations")
    assert [type(c.json["input"]).__name__ for c in calls] == ["str", "list"]
    for call in calls:
        _valid(spec, "CreateModerationRequest", call.json)
    status, answer = _answer(genai_emulator, "/v1/moderations", calls[1].json)
    assert status == 200 and len(answer["results"]) == 1
    _valid(spec, "CreateModerationResponse", answer)
    moderation_blocked = {"model": "gpt-image-1.5", "prompt": "a blockedpicture", "size": "1024x1024"}
    got, refusal = _answer(genai_emulator, "/v1/images/generations", moderation_blocked)
    assert got == 400 and refusal["error"]["moderation_details"] == {"moderation_stage": "output", "categories": ["sexual"]}
    _valid(spec, "ErrorResponse", refusal)

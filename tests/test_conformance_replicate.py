"""The SDK's Replicate requests and the emulator's answers, checked against Replicate's published OpenAPI spec, and the
provider's reading of responses recorded from the real API."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

import genai_sdk as genai
from genai_sdk.testing import Emulator

from .test_conformance import SPECS, _answer

pytest.importorskip("httpx", reason="the Replicate tests need the 'replicate' extra: pip install -e '.[dev]'")

REPLICATE_SPEC = SPECS / "replicate" / "openapi.json"
CASSETTES = SPECS / "replicate" / "cassettes"
SDXL_VERSION = "39ed52f2a78e934b3ba6e2a89f5b1c712de7dfea535525255b1aa35c5565e08b"

pytestmark = pytest.mark.skipif(
    not REPLICATE_SPEC.is_file(),
    reason=f"the published Replicate spec is not at {REPLICATE_SPEC} (set GENAI_SPECS_DIR to the specs folder)",
)


def _nullable(node: Any) -> Any:
    """OpenAPI's ``nullable: true`` as JSON Schema's ``type: [..., "null"]``, which the validator understands."""
    if isinstance(node, dict):
        node = {k: _nullable(v) for k, v in node.items()}
        if node.pop("nullable", False) and isinstance(node.get("type"), str):
            node["type"] = [node["type"], "null"]
        return node
    if isinstance(node, list):
        return [_nullable(v) for v in node]
    return node


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    document: dict[str, Any] = _nullable(json.loads(REPLICATE_SPEC.read_text(encoding="utf-8")))
    return document


def _valid(spec: dict[str, Any], schema_name: str, document: Any) -> None:
    from jsonschema import Draft202012Validator
    from referencing import Registry, Resource
    from referencing.jsonschema import DRAFT202012

    registry = Registry().with_resource("urn:replicate", Resource.from_contents(spec, default_specification=DRAFT202012))
    validator = Draft202012Validator({"$ref": f"urn:replicate#/components/schemas/{schema_name}"}, registry=registry)
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(document)]
    assert not errors, f"{schema_name}: " + "; ".join(errors[:5])


def test_operations_the_sdk_uses_exist_in_the_spec(spec: dict[str, Any]) -> None:
    used = {
        ("/models/{model_owner}/{model_name}/predictions", "post"), ("/predictions", "post"),
        ("/predictions/{prediction_id}", "get"), ("/predictions/{prediction_id}/cancel", "post"),
        ("/models/{model_owner}/{model_name}", "get"), ("/models/{model_owner}/{model_name}/versions/{version_id}", "get"),
        ("/files", "post"), ("/deployments/{deployment_owner}/{deployment_name}", "get"),
        ("/deployments/{deployment_owner}/{deployment_name}/predictions", "post"),
    }
    missing = [(path, method) for path, method in used if method not in spec["paths"].get(path, {})]
    assert not missing


def test_prediction_requests_the_sdk_sends_conform(spec: dict[str, Any], genai_emulator: Emulator) -> None:
    client = genai.Client(ledger="memory://")
    client.images.generate("a couch", model="replicate:black-forest-labs/flux-schnell", n=2, size="512x512", seed=1)
    client.images.generate("a couch", model=f"replicate:stability-ai/sdxl:{SDXL_VERSION}", negative_prompt="red", steps=3)
    client.videos.generate("a panda", model="replicate:wan-video/wan-2.2-t2v-fast", seconds=2, fps=16)
    genai_emulator.replicate.add_deployment("acme", "couches", "stability-ai/sdxl")
    client.images.generate("a couch", model="replicate:deployments/acme/couches", size="512x512")
    prefer = re.compile(spec["components"]["parameters"]["parameters_prefer_header"]["schema"]["pattern"])
    calls = genai_emulator.calls("replicate.predictions.create")
    assert len(calls) == 4 and calls[-1].path == "/v1/deployments/acme/couches/predictions"
    for call in calls:
        _valid(spec, "schemas_version_prediction_request" if call.path == "/v1/predictions" else "schemas_prediction_request", call.json)
        assert prefer.match(call.headers["prefer"])


def test_emulator_answers_conform(spec: dict[str, Any], genai_emulator: Emulator) -> None:
    genai_emulator.replicate.job_seconds, genai_emulator.replicate.max_wait = 30, 0
    status, created = _answer(genai_emulator, "/v1/models/black-forest-labs/flux-schnell/predictions", {"input": {"prompt": "a cat"}})
    assert status == 202 and created["status"] == "starting", "the spec: a wait that runs out answers 'starting'"
    _valid(spec, "schemas_prediction_response", created)
    status, current = _answer(genai_emulator, f"/v1/predictions/{created['id']}", method="GET")
    assert status == 200 and current["status"] == "processing"
    _valid(spec, "schemas_prediction_response", current)
    status, canceled = _answer(genai_emulator, f"/v1/predictions/{created['id']}/cancel")
    assert canceled["status"] == "canceled"
    _valid(spec, "schemas_prediction_response", canceled)
    genai_emulator.replicate.job_seconds = 0
    status, done = _answer(genai_emulator, "/v1/models/stability-ai/sdxl/predictions", {"input": {"prompt": "a cat"}})
    assert status == 201 and done["status"] == "succeeded" and done["output"][0].startswith(genai_emulator.url)
    _valid(spec, "schemas_prediction_response", done)
    status, model = _answer(genai_emulator, "/v1/models/stability-ai/sdxl", method="GET")
    _valid(spec, "schemas_model_response", model)
    _valid(spec, "schemas_version_response", model["latest_version"])
    status, version = _answer(genai_emulator, f"/v1/models/stability-ai/sdxl/versions/{SDXL_VERSION}", method="GET")
    assert status == 200
    _valid(spec, "schemas_version_response", version)
    genai_emulator.replicate.add_deployment("acme", "couches", "stability-ai/sdxl")
    status, deployment = _answer(genai_emulator, "/v1/deployments/acme/couches", method="GET")
    assert status == 200 and deployment["current_release"]["version"] == SDXL_VERSION
    _valid(spec, "schemas_deployment_response", deployment)
    status, made = _answer(genai_emulator, "/v1/deployments/acme/couches/predictions", {"input": {"prompt": "a cat"}})
    assert status == 201 and made["deployment"] == "acme/couches" and made["model"] == "stability-ai/sdxl"
    _valid(spec, "schemas_prediction_response", made)
    status, problem = _answer(genai_emulator, "/v1/models/black-forest-labs/flux-schnell/predictions", {"input": {"num_outputs": 9}})
    assert status == 422 and {"title", "detail", "status"} <= set(problem)
    assert "prompt is required" in problem["detail"] and "Must be less than or equal to 4" in problem["detail"]


def test_file_uploads_conform(spec: dict[str, Any], genai_emulator: Emulator) -> None:
    import httpx

    response = httpx.post(genai_emulator.url + "/v1/files", files={"content": ("a.bin", b"0123456789", "application/octet-stream")},
                          headers={"Authorization": f"Bearer {genai_emulator.api_key}"})
    assert response.status_code == 201
    _valid(spec, "schemas_file_response", response.json())
    assert httpx.get(response.json()["urls"]["get"]).content == b"0123456789"


def _recorded(name: str) -> list[tuple[str, str, Any]]:
    import yaml

    document = yaml.safe_load((CASSETTES / name).read_text(encoding="utf-8"))
    answers = []
    for interaction in document["interactions"]:
        response = interaction["response"]
        body = response.get("content") or (response.get("body") or {}).get("string")
        assert body is not None, f"no body recorded for {interaction['request']['uri']}"
        answers.append((interaction["request"]["method"], interaction["request"]["uri"], json.loads(body)))
    return answers


def test_recorded_real_answers_are_read_as_the_provider_expects(spec: dict[str, Any]) -> None:
    from genai_sdk.providers._replicate_inputs import parse_schema
    from genai_sdk.providers.replicate import _finished_or_raise, _outputs, _predict_time

    answers = _recorded("predictions-cancel.yaml")
    version = next(body for method, uri, body in answers if uri.endswith(f"/versions/{SDXL_VERSION}"))
    _valid(spec, "schemas_version_response", version)
    schema = parse_schema(version["openapi_schema"])
    assert {"prompt", "negative_prompt", "width", "height", "num_outputs", "num_inference_steps", "guidance_scale",
            "image", "mask", "seed"} <= set(schema.properties)
    assert schema.maximum("num_outputs") == 4
    assert "DDIM" in schema.enum("scheduler"), "enums behind allOf/$ref are resolved"
    # (recorded in 2023-2024, before the spec's date: some fields it now requires were not sent yet)
    (_, _, succeeded), *_ = [a for a in _recorded("predictions-get.yaml") if a[2].get("status") == "succeeded"]
    assert all(url.startswith("https://") for url in _outputs(succeeded, "replicate:stability-ai/sdxl"))
    assert _predict_time(succeeded) > 0
    canceled = next(body for method, uri, body in answers if uri.endswith("/cancel"))
    with pytest.raises(genai.GenerationFailedError, match="canceled"):
        _finished_or_raise(canceled, "r8_secret")

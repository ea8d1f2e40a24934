"""The Replicate API of the emulator: models with input schemas, deployments, predictions that run, file uploads;
reach it as ``emulator.replicate``.

Predictions take ``job_seconds`` to finish (0: at once). A create that asks ``Prefer: wait`` gets the finished
prediction (201) when it ends within the wait, else the prediction still "starting" (202), as Replicate answers. Output files are
served by the emulator, without the token, as Replicate's delivery hosts serve them.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ._media_maker import make_image, make_video
from ._wire import Answer, Api, Fault, Host, RecordedRequest, Route, _fault_response, blocked, key_accepted

SDXL_VERSION = "39ed52f2a78e934b3ba6e2a89f5b1c712de7dfea535525255b1aa35c5565e08b"
ASPECT_RATIOS = ["1:1", "16:9", "21:9", "3:2", "2:3", "4:5", "5:4", "3:4", "4:3", "9:16", "9:21"]

ROUTES: list[Route] = [
    ("POST", r"^/v1/models/(?P<owner>[^/]+)/(?P<name>[^/]+)/predictions$", "replicate.predictions.create"),
    ("POST", r"^/v1/predictions$", "replicate.predictions.create"),
    ("POST", r"^/v1/deployments/(?P<deployment>[^/]+/[^/]+)/predictions$", "replicate.predictions.create"),
    ("GET", r"^/v1/deployments/(?P<deployment>[^/]+/[^/]+)$", "replicate.deployments.get"),
    ("GET", r"^/v1/predictions/(?P<id>[a-z0-9]+)$", "replicate.predictions.get"),
    ("GET", r"^/v1/predictions$", "replicate.predictions.list"),
    ("POST", r"^/v1/predictions/(?P<id>[a-z0-9]+)/cancel$", "replicate.predictions.cancel"),
    ("GET", r"^/v1/models/(?P<owner>[^/]+)/(?P<name>[^/]+)$", "replicate.models.get"),
    ("GET", r"^/v1/models/(?P<owner>[^/]+)/(?P<name>[^/]+)/versions/(?P<version>[0-9a-f]+)$", "replicate.models.get"),
    ("POST", r"^/v1/files$", "replicate.files.create"),
]


def _prop(kind: str, **extra: Any) -> dict[str, Any]:
    return {"type": kind, **extra}


@dataclass
class EmulatedModel:
    """A model the emulator runs: its inputs (JSON schema properties), what it makes, its version id."""

    owner: str
    name: str
    inputs: dict[str, dict[str, Any]]
    output: str = "image"  # "image" or "video"
    version: str = field(default_factory=lambda: uuid.uuid4().hex + uuid.uuid4().hex)
    required: tuple[str, ...] = ("prompt",)
    # "prompt": pictures sized by its size inputs; "upscale": its input image times its factor; "control": at its
    # control image's size (ControlNet's image_resolution and FLUX's megapixels apply)
    makes: str = "prompt"
    single_output: bool = False  # one file URL, not a list of them (Real-ESRGAN)

    def schema(self) -> dict[str, Any]:
        properties: dict[str, Any] = {}
        components: dict[str, Any] = {}
        for index, (name, spec) in enumerate(self.inputs.items()):
            spec = dict(spec, title=name.replace("_", " ").title(), **{"x-order": index})
            if "enum" in spec:  # Cog puts enums in their own schema, referenced with allOf
                components[name] = {"enum": spec.pop("enum"), "type": spec.pop("type", "string"), "title": name}
                spec["allOf"] = [{"$ref": f"#/components/schemas/{name}"}]
            properties[name] = spec
        output: dict[str, Any] = {"type": "string", "format": "uri"}
        if self.output == "image" and not self.single_output:
            output = {"type": "array", "items": output}
        components["Input"] = {"type": "object", "title": "Input", "required": list(self.required), "properties": properties}
        components["Output"] = dict(output, title="Output")
        return {"openapi": "3.0.2", "info": {"title": "Cog", "version": "0.1.0"}, "components": {"schemas": components}}


def default_models() -> list[EmulatedModel]:
    flux_schnell = EmulatedModel("black-forest-labs", "flux-schnell", {
        "prompt": _prop("string"),
        "aspect_ratio": _prop("string", enum=ASPECT_RATIOS, default="1:1"),
        "megapixels": _prop("string", enum=["1", "0.25"], default="1"),
        "num_outputs": _prop("integer", minimum=1, maximum=4, default=1),
        "num_inference_steps": _prop("integer", minimum=1, maximum=4, default=4),
        "seed": _prop("integer"),
        "output_format": _prop("string", enum=["webp", "jpg", "png"], default="webp"),
        "output_quality": _prop("integer", minimum=0, maximum=100, default=80),
        "go_fast": _prop("boolean", default=True),
        "disable_safety_checker": _prop("boolean", default=False),
    })
    flux_dev = EmulatedModel("black-forest-labs", "flux-dev", {
        **flux_schnell.inputs,
        "num_inference_steps": _prop("integer", minimum=1, maximum=50, default=28),
        "guidance": _prop("number", minimum=0, maximum=10, default=3),
        "image": _prop("string", format="uri"),
        "prompt_strength": _prop("number", minimum=0, maximum=1, default=0.8),
    })
    flux_pro = EmulatedModel("black-forest-labs", "flux-1.1-pro", {
        "prompt": _prop("string"),
        "aspect_ratio": _prop("string", enum=[*ASPECT_RATIOS, "custom"], default="1:1"),
        "width": _prop("integer", minimum=256, maximum=1440),
        "height": _prop("integer", minimum=256, maximum=1440),
        "seed": _prop("integer"),
        "output_format": _prop("string", enum=["webp", "jpg", "png"], default="webp"),
    })
    sdxl = EmulatedModel("stability-ai", "sdxl", {
        "prompt": _prop("string"),
        "negative_prompt": _prop("string", default=""),
        "width": _prop("integer", default=1024),
        "height": _prop("integer", default=1024),
        "num_outputs": _prop("integer", minimum=1, maximum=4, default=1),
        "num_inference_steps": _prop("integer", minimum=1, maximum=500, default=50),
        "guidance_scale": _prop("number", minimum=1, maximum=50, default=7.5),
        "seed": _prop("integer"),
        "image": _prop("string", format="uri"),
        "mask": _prop("string", format="uri"),
        "prompt_strength": _prop("number", minimum=0, maximum=1, default=0.8),
    }, version=SDXL_VERSION)
    video = EmulatedModel("wan-video", "wan-2.2-t2v-fast", {
        "prompt": _prop("string"),
        "negative_prompt": _prop("string", default=""),
        "num_frames": _prop("integer", minimum=17, maximum=121, default=81),
        "frames_per_second": _prop("integer", minimum=4, maximum=30, default=16),
        "resolution": _prop("string", enum=["480p", "720p"], default="480p"),
        "aspect_ratio": _prop("string", enum=["16:9", "9:16", "1:1"], default="16:9"),
        "seed": _prop("integer"),
        "image": _prop("string", format="uri"),
    }, output="video")
    kling = EmulatedModel("kwaivgi", "kling-v2.1", {
        "prompt": _prop("string"),
        "duration": _prop("integer", enum=[5, 10], default=5),
        "aspect_ratio": _prop("string", enum=["16:9", "9:16", "1:1"], default="16:9"),
        "start_image": _prop("string", format="uri"),
        "negative_prompt": _prop("string", default=""),
    }, output="video")
    return [flux_schnell, flux_dev, flux_pro, sdxl, video, kling, *transform_models()]


def transform_models() -> list[EmulatedModel]:
    """Upscalers and sketch (control) models, with the inputs their authors publish: Real-ESRGAN's three; Clarity
    Upscaler's from its Cog predictor (an early revision: later ones add inputs); jagilley's ControlNet scribble
    model's; FLUX.1 Canny [dev]'s (its LoRA inputs left out)."""
    esrgan = EmulatedModel("nightmareai", "real-esrgan", {
        "image": _prop("string", format="uri", description="Input image"),
        "scale": _prop("number", minimum=0, maximum=10, default=4, description="Factor to scale image by"),
        "face_enhance": _prop("boolean", default=False, description="Run GFPGAN face enhancement along with upscaling"),
    }, required=("image",), makes="upscale", single_output=True)
    clarity = EmulatedModel("philz1337x", "clarity-upscaler", {
        "image": _prop("string", format="uri", description="input image"),
        "prompt": _prop("string", default="masterpiece, best quality, highres, <lora:more_details:0.5> <lora:SDXLrender_v2.0:1>",
                        description="Prompt"),
        "negative_prompt": _prop("string", default="(worst quality, low quality, normal quality:2) JuggernautNegative-neg",
                                 description="Negative Prompt"),
        "scale_factor": _prop("number", default=2, description="Scale factor"),
        "dynamic": _prop("number", minimum=1, maximum=50, default=6, description="HDR, try from 3 - 9"),
        "creativity": _prop("number", minimum=0, maximum=1, default=0.35, description="Creativity, try from 0.3 - 0.9"),
        "resemblance": _prop("number", default=0.6, description="Resemblance, try from 0.3 - 1.6"),
        "num_inference_steps": _prop("integer", minimum=1, maximum=100, default=18, description="Number of denoising steps"),
        "seed": _prop("integer", default=1337, description="Random seed. Leave blank to randomize the seed"),
    }, required=("image",), makes="upscale")
    scribble = EmulatedModel("jagilley", "controlnet-scribble", {
        "image": _prop("string", format="uri", description="Input image"),
        "prompt": _prop("string", description="Prompt for the model"),
        "num_samples": _prop("string", enum=["1", "4"], default="1", description="Number of samples (higher values may OOM)"),
        "image_resolution": _prop("string", enum=["256", "512", "768"], default="512",
                                  description="Image resolution to be generated"),
        "ddim_steps": _prop("integer", default=20, description="Steps"),
        "scale": _prop("number", minimum=0.1, maximum=30, default=9, description="Guidance Scale"),
        "seed": _prop("integer", description="Seed"),
        "eta": _prop("number", default=0, description="eta (DDIM)"),
        "a_prompt": _prop("string", default="best quality, extremely detailed", description="Added Prompt"),
        "n_prompt": _prop("string", default="longbody, lowres, bad anatomy, bad hands, missing fingers, extra digit, "
                          "fewer digits, cropped, worst quality, low quality", description="Negative Prompt"),
    }, required=("image", "prompt"), makes="control")
    canny = EmulatedModel("black-forest-labs", "flux-canny-dev", {
        "prompt": _prop("string", description="Prompt for generated image"),
        "control_image": _prop("string", format="uri", description="Image used to control the generation. The canny "
                               "edge detection will be automatically generated."),
        "num_outputs": _prop("integer", minimum=1, maximum=4, default=1, description="Number of outputs to generate"),
        "num_inference_steps": _prop("integer", minimum=1, maximum=50, default=28, description="Number of denoising steps"),
        "guidance": _prop("number", minimum=0, maximum=100, default=30, description="Guidance for generated image"),
        "seed": _prop("integer", description="Random seed. Set for reproducible generation"),
        "output_format": _prop("string", enum=["webp", "jpg", "png"], default="webp"),
        "output_quality": _prop("integer", minimum=0, maximum=100, default=80),
        "disable_safety_checker": _prop("boolean", default=False),
        "megapixels": _prop("string", enum=["1", "0.25", "match_input"], default="1",
                            description="Approximate number of megapixels for generated image. Use match_input to match "
                            "the size of the input (with an upper limit of 1440x1440 pixels)"),
    }, required=("prompt", "control_image"), makes="control")
    return [esrgan, clarity, scribble, canny]


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def _problem(status: int, title: str, detail: str, **extra: Any) -> Answer:
    body = {"title": title, "detail": detail, "status": status, **extra}
    return status, {"Content-Type": "application/problem+json"}, json.dumps(body).encode()


def _ok(status: int, body: Any) -> Answer:
    return status, {"Content-Type": "application/json"}, json.dumps(body).encode()


@dataclass
class _Prediction:
    body: dict[str, Any]
    model: EmulatedModel
    ends_at: float  # when it finishes, or when it was canceled
    failure: str | None = None
    created: float = field(default_factory=time.monotonic)


class ReplicateApi:
    """Replicate's endpoints under ``/v1``, with a ``Bearer`` or ``Token`` key; errors as problem+json."""

    name = "replicate"
    routes = ROUTES

    def __init__(self, host: Host) -> None:
        self._host = host
        self._lock = threading.Lock()
        self.models: dict[str, EmulatedModel] = {f"{m.owner}/{m.name}": m for m in default_models()}
        self.deployments: dict[str, str] = {}  # "owner/name" of a deployment -> "owner/name" of the model it runs
        self.predictions: dict[str, _Prediction] = {}
        self.job_seconds = 0.0
        self.max_wait: float | None = None  # caps "Prefer: wait" (0: creates answer at once, so callers poll)
        self.inline_outputs = False  # outputs as base64 data URLs, as Replicate may answer, instead of file URLs
        self._failures: list[str] = []
        self._uploads: dict[str, bytes] = {}  # file URL -> content, of the files uploaded through /v1/files

    def add_model(self, model: EmulatedModel) -> None:
        with self._lock:
            self.models[f"{model.owner}/{model.name}"] = model

    def add_deployment(self, owner: str, name: str, model: str) -> None:
        """A deployment ``owner/name`` that runs ``model`` ("owner/name" of an emulated model) at its version."""
        if model not in self.models:
            raise ValueError(f"no emulated model {model!r}; add it first (known: {', '.join(sorted(self.models))})")
        with self._lock:
            self.deployments[f"{owner}/{name}"] = model

    def fail_next_prediction(self, error: str = "E1001: the model crashed (injected)", times: int = 1) -> None:
        """Make the next predictions end ``failed`` with this error, as a model that fails does (HTTP stays 2xx)."""
        with self._lock:
            self._failures.extend([error] * times)

    def peak_running(self) -> int:
        """The most predictions that were running at one time: how many a client really had in flight."""
        with self._lock:
            spans = [(p.created, max(p.created, p.ends_at)) for p in self.predictions.values()]
        events = sorted([(start, 1) for start, _ in spans] + [(end, -1) for _, end in spans])
        peak = running = 0
        for _, change in events:  # at equal times an end sorts first: touching spans do not overlap
            running += change
            peak = max(peak, running)
        return peak

    def status_counts(self) -> dict[str, int]:
        with self._lock:
            predictions = list(self.predictions.values())
        counts: dict[str, int] = {}
        for prediction in predictions:
            status = self._advance(prediction)["status"]
            counts[status] = counts.get(status, 0) + 1
        return counts

    # -- what the server asks ---------------------------------------------------------------------------------

    def env(self) -> dict[str, str]:
        return {"REPLICATE_BASE_URL": self._host.url, "REPLICATE_API_TOKEN": self._host.api_key or "sk-any"}

    def unreadable(self) -> None:
        return None  # Replicate reads no JSON it cannot parse: the request goes on without a body

    def authorize(self, record: RecordedRequest) -> Answer | None:
        auth = record.headers.get("authorization", "")
        token = auth.split(" ", 1)[1] if " " in auth else ""
        if auth.split(" ", 1)[0] in ("Bearer", "Token") and key_accepted(self._host, token):
            return None
        return _problem(401, "Unauthenticated", "You did not pass a valid authentication token")

    def fault_answer(self, fault: Fault) -> Answer:
        """The injected error as Replicate answers it: problem+json, with the fault's headers (Retry-After)."""
        status, fault_headers, body = _fault_response(fault)
        detail = json.loads(body)["error"]["message"]
        if status == 429:
            detail = "Request was throttled. Your rate limit resets in ~30s."
        status, problem_headers, payload = _problem(status, "Injected fault", detail)
        return status, {**fault_headers, **problem_headers}, payload

    def answer(self, operation: str, params: dict[str, str], record: RecordedRequest) -> Answer:
        if operation == "replicate.models.get":
            return self._model(params)
        if operation == "replicate.deployments.get":
            return self._deployment(params["deployment"])
        if operation == "replicate.predictions.create":
            return self._create(params, record)
        if operation == "replicate.files.create":
            return self._file(record)
        if operation == "replicate.predictions.list":
            return self._list(params.get("created_after"))
        with self._lock:
            prediction = self.predictions.get(params["id"])
        if prediction is None:
            return _problem(404, "Not found", "The requested resource could not be found.")
        if operation == "replicate.predictions.cancel":
            if self._advance(prediction)["status"] not in ("succeeded", "failed", "canceled"):
                with self._lock:
                    prediction.body.update(status="canceled", completed_at=_now())
                    prediction.ends_at = min(prediction.ends_at, time.monotonic())
            return _ok(200, self._advance(prediction))
        return _ok(200, self._advance(prediction))

    # -- endpoints ---------------------------------------------------------------------------------------------

    def _model(self, params: dict[str, str]) -> Answer:
        model = self.models.get(f"{params['owner']}/{params['name']}")
        if model is None or params.get("version") not in (None, model.version):
            return _problem(404, "Not found", "The requested resource could not be found.")
        version = {"id": model.version, "created_at": "2024-01-01T00:00:00Z", "cog_version": "0.9.0",
                   "openapi_schema": model.schema()}
        if params.get("version"):
            return _ok(200, version)
        return _ok(200, {
            "url": f"https://replicate.com/{model.owner}/{model.name}", "owner": model.owner, "name": model.name,
            "description": f"emulated {model.output} model", "visibility": "public", "github_url": None,
            "paper_url": None, "license_url": None, "run_count": 0, "cover_image_url": None,
            "default_example": None, "latest_version": version, "is_official": True,
        })

    def _deployment(self, reference: str) -> Answer:
        model = self.models.get(self.deployments.get(reference, ""))
        if model is None:
            return _problem(404, "Not found", "The requested resource could not be found.")
        owner, name = reference.split("/")
        return _ok(200, {"owner": owner, "name": name, "current_release": {
            "number": 1, "model": f"{model.owner}/{model.name}", "version": model.version, "created_at": "2024-01-01T00:00:00Z",
            "created_by": {"type": "organization", "username": owner},
            "configuration": {"hardware": "gpu-l40s", "min_instances": 0, "max_instances": 1},
        }})

    def _find(self, params: dict[str, str], body: dict[str, Any]) -> EmulatedModel | None:
        if "deployment" in params:
            return self.models.get(self.deployments.get(params["deployment"], ""))
        if "owner" in params:
            return self.models.get(f"{params['owner']}/{params['name']}")
        version = str(body.get("version", ""))
        if "/" in version:
            reference, _, version = version.partition(":")
            model = self.models.get(reference)
            return model if model is not None and version in ("", model.version) else None
        return next((m for m in self.models.values() if m.version == version), None)

    def _create(self, params: dict[str, str], record: RecordedRequest) -> Answer:
        body = record.json if isinstance(record.json, dict) else {}
        model = self._find(params, body)
        if model is None:
            return _problem(404, "Not found", "The requested resource could not be found.")
        inputs = body.get("input")
        if not isinstance(inputs, dict):
            return _problem(422, "Input validation failed", "- input: input is required",
                            invalid_fields=[{"type": "required", "field": "input", "description": "input is required"}])
        problems = _validate(model, inputs)
        if problems:
            detail = "\n".join(f"- input.{name}: {text}" for name, text in problems)
            fields = [{"type": "invalid", "field": f"input.{name}", "description": text} for name, text in problems]
            return _problem(422, "Input validation failed", detail, invalid_fields=fields)
        with self._lock:
            failure = self._failures.pop(0) if self._failures else None
            pid = uuid.uuid4().hex[:26]
            prediction = _Prediction({
                "id": pid, "model": f"{model.owner}/{model.name}", "version": model.version, "input": inputs,
                **({"deployment": params["deployment"]} if "deployment" in params else {}),
                "logs": "", "output": None, "data_removed": False, "error": None, "status": "starting",
                "created_at": _now(), "source": "api",
                "urls": {"get": f"{self._host.url}/v1/predictions/{pid}",
                         "cancel": f"{self._host.url}/v1/predictions/{pid}/cancel",
                         "web": f"{self._host.url}/p/{pid}"},
            }, model, time.monotonic() + self.job_seconds, failure)
            self.predictions[pid] = prediction
        wait = re.fullmatch(r"wait(?:=(\d+))?", record.headers.get("prefer", "").strip())
        if wait is not None:
            limit = float(wait.group(1) or 60)
            if self.max_wait is not None:
                limit = min(limit, self.max_wait)
            time.sleep(max(0.0, min(limit, prediction.ends_at - time.monotonic())))
        current = self._advance(prediction)
        finished = current["status"] in ("succeeded", "failed", "canceled")
        if not finished:  # the published spec: a wait that runs out answers the prediction as "starting"
            current.update(status="starting", logs="")
        headers = {"Preference-Applied": f"wait={wait.group(1) or 60}"} if wait is not None else {}
        status, answer_headers, payload = _ok(201 if finished else 202, current)
        return status, {**answer_headers, **headers}, payload

    def _list(self, created_after: str | None) -> Answer:
        """The predictions made since ``created_after``, most recent first (one page: the emulator keeps few)."""
        with self._lock:
            found = [dict(p.body) for p in self.predictions.values()]
        if created_after:
            found = [p for p in found if str(p["created_at"]) >= created_after.replace("+00:00", "Z")]
        found.sort(key=lambda p: str(p["created_at"]), reverse=True)
        return _ok(200, {"next": None, "previous": None, "results": found[:100]})

    def _file(self, record: RecordedRequest) -> Answer:
        content = (record.files.get("content") or [b""])[0]
        if not content:
            return _problem(400, "Bad request", "the form field 'content' is required")
        url = self._host._store_file(content, "")
        with self._lock:
            self._uploads[url] = content
        fid = url.rsplit("/", 1)[-1]
        return _ok(201, {
            "id": fid, "content_type": "application/octet-stream", "size": len(content),
            "checksums": {"sha256": hashlib.sha256(content).hexdigest()}, "metadata": {},
            "created_at": _now(), "expires_at": _now(), "urls": {"get": url},
        })

    # -- running ------------------------------------------------------------------------------------------------

    def _advance(self, prediction: _Prediction) -> dict[str, Any]:
        with self._lock:
            body = prediction.body
            if body["status"] in ("succeeded", "failed", "canceled"):
                return dict(body)
            remaining = prediction.ends_at - time.monotonic()
            if remaining > 0:
                total = max(self.job_seconds, 1e-9)
                done = int(100 * (1 - remaining / total))
                body.update(status="processing", started_at=body.get("started_at") or _now(),
                            logs=f"{done:3d}%|{'#' * (done // 10):10s}| {done}/100")
                return dict(body)
        outcome = self._outputs(prediction)
        with self._lock:
            if body["status"] not in ("succeeded", "failed", "canceled"):
                if prediction.failure is not None:
                    body.update(status="failed", error=prediction.failure, completed_at=_now())
                else:
                    body.update(status="succeeded", output=outcome, completed_at=_now(), logs="100%|##########| 100/100",
                                metrics={"predict_time": round(max(self.job_seconds, 0.05), 3), "total_time": round(max(self.job_seconds, 0.05) + 0.01, 3)})
            return dict(body)

    def _outputs(self, prediction: _Prediction) -> Any:
        inputs, model = prediction.body["input"], prediction.model
        prompt = str(inputs.get("prompt", ""))
        if blocked(prompt, self._host.blocked_words):
            prediction.failure = "NSFW content detected. Try running it again, or try a different prompt."
            return None
        if model.output == "video":
            fps = int(inputs.get("frames_per_second") or inputs.get("fps") or 16)
            frames = int(inputs.get("num_frames") or fps * int(inputs.get("duration") or 5))
            return self._publish(make_video(prompt, 64, 48, min(frames, 160), fps), "video/mp4", ".mp4")
        fmt = str(inputs.get("output_format") or ("png" if model.makes != "prompt" else "webp")).replace("jpg", "jpeg")
        width, height = _pixels(model, inputs) if model.makes == "prompt" else self._transformed(model, inputs)
        seed = inputs.get("seed")
        count = int(inputs.get("num_outputs") or inputs.get("num_samples") or 1)
        outputs = [self._publish(make_image(prompt, width, height, i, seed, fmt), f"image/{fmt}", "." + fmt.replace("jpeg", "jpg"))
                   for i in range(count)]
        return outputs[0] if model.single_output else outputs

    def _transformed(self, model: EmulatedModel, inputs: dict[str, Any]) -> tuple[int, int]:
        """An upscaler's picture: its input's size times the factor; a control model's: its control image's size, with
        ControlNet's resize (the short side to ``image_resolution``, sides multiples of 64) or FLUX's megapixels."""
        name = next(n for n in ("control_image", "image", "input_image") if n in model.inputs)
        width, height = self._input_size(inputs.get(name))
        if model.makes == "upscale":
            factor_name = next((n for n in ("scale", "scale_factor", "upscale_factor") if n in model.inputs), None)
            given = inputs.get(factor_name, model.inputs[factor_name].get("default", 4)) if factor_name else 4
            factor = float(str(given).lower().removesuffix("x"))  # 4, 4.0, "4" or "4x"
            return max(1, round(width * factor)), max(1, round(height * factor))
        if "image_resolution" in model.inputs:
            resolution = int(inputs.get("image_resolution") or model.inputs["image_resolution"].get("default", 512))
            k = resolution / min(width, height)
            return max(64, round(width * k / 64) * 64), max(64, round(height * k / 64) * 64)
        megapixels = str(inputs.get("megapixels") or model.inputs.get("megapixels", {}).get("default") or "match_input")
        if megapixels == "match_input":
            k = min(1.0, 1440 / max(width, height))
        else:
            k = (float(megapixels) * 1024 * 1024 / (width * height)) ** 0.5
        return max(16, round(width * k / 16) * 16), max(16, round(height * k / 16) * 16)

    def _input_size(self, value: Any) -> tuple[int, int]:
        """The size of an input image given as a data URL or as the URL of a file uploaded here."""
        from io import BytesIO

        from PIL import Image

        text = str(value or "")
        if text.startswith("data:"):
            data = base64.b64decode(text.partition(",")[2])
        else:
            with self._lock:
                data = self._uploads.get(text, b"")
        try:
            with Image.open(BytesIO(data)) as picture:
                return picture.size
        except Exception:  # noqa: BLE001 (an input the emulator cannot read: any size will do)
            return 64, 64

    def _publish(self, content: bytes, media_type: str, suffix: str) -> str:
        if self.inline_outputs:
            return f"data:{media_type};base64,{base64.b64encode(content).decode('ascii')}"
        return self._host._store_file(content, suffix)


def _pixels(model: EmulatedModel, inputs: dict[str, Any]) -> tuple[int, int]:
    """Width and height as the model's schema says: ``width`` and ``height`` (their defaults too) for models that take
    them, unless the model also takes an ``aspect_ratio`` with a ``custom`` choice that was not asked for (FLUX 1.1 pro
    uses them only with ``aspect_ratio="custom"``, at multiples of 32); otherwise FLUX's size for the ``aspect_ratio``
    and ``megapixels``: that many megapixels of 1024x1024 at the ratio, sides multiples of 64 (1:1 at 1 megapixel is
    1024x1024, 16:9 is 1344x768)."""
    schema = model.inputs

    def given(name: str) -> Any:
        return inputs.get(name, schema.get(name, {}).get("default"))

    ratio = str(given("aspect_ratio") or "1:1")
    custom_only = "custom" in schema.get("aspect_ratio", {}).get("enum", ())
    if "width" in schema and "height" in schema and (ratio == "custom" or not custom_only):
        width, height = given("width"), given("height")
        if width is not None and height is not None:
            step = 32 if custom_only else 1
            return max(step, round(int(width) / step) * step), max(step, round(int(height) / step) * step)
    w, h = (int(v) for v in (ratio if ratio != "custom" else "1:1").split(":"))
    area = float(given("megapixels") or 1) * 1024 * 1024
    width = max(64, round((area * w / h) ** 0.5 / 64) * 64)
    height = max(64, round((area * h / w) ** 0.5 / 64) * 64)
    return width, height


def _validate(model: EmulatedModel, inputs: dict[str, Any]) -> list[tuple[str, str]]:
    problems = [(name, f"{name} is required") for name in model.required if name not in inputs]
    for name, value in inputs.items():
        spec = model.inputs.get(name)
        if spec is None:
            continue  # Cog ignores inputs a model does not declare
        kind = spec.get("type")
        if kind == "integer" and (not isinstance(value, int) or isinstance(value, bool)):
            problems.append((name, "Invalid type. Expected: integer"))
        elif kind == "number" and (not isinstance(value, (int, float)) or isinstance(value, bool)):
            problems.append((name, "Invalid type. Expected: number"))
        elif kind == "string" and not isinstance(value, str):
            problems.append((name, "Invalid type. Expected: string"))
        elif kind == "boolean" and not isinstance(value, bool):
            problems.append((name, "Invalid type. Expected: boolean"))
        elif "enum" in spec and value not in spec["enum"]:
            problems.append((name, f"{name} must be one of the following: " + ", ".join(f'"{v}"' for v in spec["enum"])))
        elif isinstance(value, (int, float)) and "maximum" in spec and value > spec["maximum"]:
            problems.append((name, f"Must be less than or equal to {spec['maximum']}"))
        elif isinstance(value, (int, float)) and "minimum" in spec and value < spec["minimum"]:
            problems.append((name, f"Must be greater than or equal to {spec['minimum']}"))
        elif spec.get("format") == "uri" and isinstance(value, str) and not re.match(r"^(https?://|data:)", value):
            problems.append((name, "Does not match format 'uri'"))
    return problems


API: Callable[[Host], Api] = ReplicateApi

"""Portable request fields to a Replicate model's own inputs, read from the input schema the model publishes.

Every Replicate model names its inputs its own way (``num_inference_steps`` or ``steps``, ``width``/``height`` or
``aspect_ratio``, ``image`` or ``input_image``...). The SDK maps each portable field to the first name the model has,
and says in a warning what it could not map; ``provider_options={"replicate": {...}}`` sets any input directly.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from .._errors import InvalidRequestError, ProviderError, UnsupportedError
from .._media import Image
from .._requests import ImageRequest, VideoRequest

DATA_URL_LIMIT = 256 * 1024  # Replicate's advice: larger files go up through the files API

_STEPS = ("num_inference_steps", "steps", "num_steps", "ddim_steps")
_GUIDANCE = ("guidance_scale", "guidance", "cfg")
_IMAGE = ("image", "input_image", "init_image", "first_frame_image", "start_image")
_MASK = ("mask", "mask_image")
_SECONDS = ("duration", "seconds", "video_length")
_FPS = ("fps", "frames_per_second", "frame_rate")
_COUNT = ("num_outputs", "num_samples", "num_images")
# images.upscale: the factor's input; ``scale`` is also what ControlNet models call their guidance, told apart below
_SCALE = ("scale", "scale_factor", "upscale_factor", "upscale")
# images.sketch: the control image's input, by the names ControlNet and FLUX control models give it
_CONTROL = ("control_image", "sketch", "scribble", "control", "lineart_image")
_SKETCH_WORDS = ("controlnet", "control-net", "scribble", "sketch", "canny", "lineart", "depth")
_UPSCALER_WORDS = ("upscal", "esrgan", "super-resolution", "swinir", "superres")


@dataclass(frozen=True)
class InputSchema:
    """The inputs a model takes: name -> JSON schema (enums resolved), and which are required.
    ``known`` is False when the model published no schema: then the usual names are sent as they are."""

    properties: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    required: frozenset[str] = frozenset()
    known: bool = False

    def has(self, name: str) -> bool:
        return name in self.properties if self.known else name in _USUAL

    def first(self, names: tuple[str, ...]) -> str | None:
        return next((name for name in names if self.has(name)), None)

    def maximum(self, name: str) -> int | None:
        value = self.properties.get(name, {}).get("maximum")
        return int(value) if isinstance(value, (int, float)) else None

    def minimum(self, name: str) -> int | None:
        value = self.properties.get(name, {}).get("minimum")
        return int(value) if isinstance(value, (int, float)) else None

    def enum(self, name: str) -> list[Any]:
        values = self.properties.get(name, {}).get("enum")
        return list(values) if isinstance(values, list) else []

    def text(self, name: str) -> str:
        """The input's title and description, lowercased: what tells a guidance ``scale`` from an upscale factor."""
        spec = self.properties.get(name, {})
        return f"{spec.get('title') or ''} {spec.get('description') or ''}".lower()


@dataclass(frozen=True)
class Upload:
    """An input file too large for a data URL: the provider sends it through the files API and puts its URL here."""

    data: bytes
    media_type: str


def file_input(data: bytes, media_type: str) -> str | Upload:
    if len(data) <= DATA_URL_LIMIT:
        return f"data:{media_type};base64,{base64.b64encode(data).decode('ascii')}"
    return Upload(data, media_type)


_USUAL = {"prompt", "negative_prompt", "width", "height", "seed", "num_outputs", "num_inference_steps", "guidance_scale",
          "image", "mask", "duration", "fps"}


def parse_schema(document: Any) -> InputSchema:
    """The ``Input`` object of a Cog model's OpenAPI schema, with ``allOf: [{$ref}]`` enums inlined. A schema of
    the wrong shape (a list where an object belongs, a number for ``required``) is the backend's fault."""
    try:
        return _parse_schema(document)
    except (AttributeError, TypeError, ValueError) as exc:
        raise ProviderError(f"Replicate published an input schema that cannot be read ({exc})", provider="replicate") from None


def _parse_schema(document: Any) -> InputSchema:
    if not isinstance(document, Mapping):
        return InputSchema()
    schemas = document.get("components", {}).get("schemas", {})
    entry = schemas.get("Input") if isinstance(schemas, Mapping) else None
    if not isinstance(entry, Mapping):
        return InputSchema()
    properties: dict[str, Mapping[str, Any]] = {}
    for name, spec in dict(entry.get("properties", {})).items():
        merged = dict(spec)
        for part in spec.get("allOf", []) or []:
            ref = str(part.get("$ref", ""))
            target = schemas.get(ref.rsplit("/", 1)[-1]) if ref.startswith("#/components/schemas/") else None
            if isinstance(target, Mapping):
                merged.update({k: v for k, v in target.items() if k not in merged})
        properties[str(name)] = merged
    return InputSchema(properties, frozenset(entry.get("required", []) or []), known=True)


def _user_inputs(request: ImageRequest | VideoRequest, schema: InputSchema, model_id: str) -> dict[str, Any]:
    options = dict(request.options.provider_options.get("replicate", {}))
    if schema.known:
        unknown = sorted(set(options) - set(schema.properties))
        if unknown:
            raise InvalidRequestError(
                f"provider_options['replicate']: {model_id} has no input {', '.join(unknown)}; "
                f"its inputs: {', '.join(sorted(schema.properties))}"
            )
    return options


def _portable(request: ImageRequest | VideoRequest, schema: InputSchema, model_id: str, inputs: dict[str, Any],
              warnings: list[str]) -> None:
    guidance = _GUIDANCE + (("scale",) if request.operation == "sketch" and _guidance_scale(schema) else ())
    for value, names, label in (
        (request.seed, ("seed",), "seed"),
        (request.negative_prompt, ("negative_prompt", "n_prompt"), "negative_prompt"),
        (request.steps, _STEPS, "steps"),
        (request.guidance, guidance, "guidance"),
    ):
        if value is None:
            continue
        name = schema.first(names)
        if name is None:
            warnings.append(f"{model_id} has no {label} input: {label}={value!r} was not applied")
        else:
            inputs[name] = value


def _size(size: str | None, schema: InputSchema, model_id: str, inputs: dict[str, Any], warnings: list[str]) -> None:
    if size in (None, "auto"):
        return
    width, height = (int(v) for v in str(size).split("x"))
    if schema.has("width") and schema.has("height"):
        inputs["width"], inputs["height"] = width, height
        if schema.enum("aspect_ratio") and "custom" in schema.enum("aspect_ratio"):
            inputs["aspect_ratio"] = "custom"
        return
    applied = []
    ratios = [r for r in schema.enum("aspect_ratio") if isinstance(r, str) and ":" in r]
    if ratios:
        wanted = Fraction(width, height)
        best = min(ratios, key=lambda r: abs(float(Fraction(int(r.split(":")[0]), int(r.split(":")[1])) - wanted)))
        inputs["aspect_ratio"] = best
        applied.append(f"aspect ratio {best}")
    resolutions = [r for r in schema.enum("resolution") if isinstance(r, str) and r.rstrip("p").isdigit()]
    if resolutions:
        best = min(resolutions, key=lambda r: abs(int(r.rstrip("p")) - min(width, height)))
        inputs["resolution"] = best
        applied.append(f"resolution {best}")
    megapixels = [m for m in schema.enum("megapixels") if _positive(m)]
    if megapixels:  # FLUX: "1" or "0.25" million pixels; the nearest by ratio to the area asked for
        area = width * height / 1_000_000
        best = min(megapixels, key=lambda m: abs(math.log(float(m) / area)))
        inputs["megapixels"] = best
        applied.append(f"{best} megapixels")
    if applied:
        warnings.append(f"{model_id} takes no width and height: {' and '.join(applied)} were asked for, the nearest to {size}")
        return
    warnings.append(f"{model_id} has no size input: size={size} was not applied")


def _positive(value: Any) -> bool:
    try:
        return float(value) > 0
    except (TypeError, ValueError):
        return False


def _attach(images: tuple[Image, ...], names: tuple[str, ...], what: str, schema: InputSchema, model_id: str,
            inputs: dict[str, Any]) -> None:
    if not images:
        return
    name = schema.first(names)
    if name is None:
        raise InvalidRequestError(f"{model_id} takes no {what} (its inputs: {', '.join(sorted(schema.properties))})")
    inputs[name] = file_input(images[0].data, images[0].media_type)


def _needs(schema: InputSchema, name: str) -> bool:
    """The model refuses a prediction without this input: it is required and has no default."""
    return name in schema.required and "default" not in schema.properties.get(name, {})


def _require(schema: InputSchema, inputs: Mapping[str, Any], model_id: str) -> None:
    missing = sorted(name for name in schema.required if name not in inputs and _needs(schema, name))
    if missing:
        raise InvalidRequestError(
            f"{model_id} needs the input(s) {', '.join(missing)}: pass them as provider_options={{'replicate': {{...}}}}"
        )


# What a model that needs a prompt is sent for variations of an image (which have none): it asks for nothing new.
VARIATIONS_PROMPT = "a variation of this image"


def image_input(model_id: str, request: ImageRequest, n: int, schema: InputSchema) -> tuple[dict[str, Any], int, list[str]]:
    """The prediction input for ``n`` images, how many one prediction makes, and the warnings.
    Large input files are left as :class:`Upload` values for the provider to send first."""
    if request.operation in ("upscale", "sketch"):
        return _transform_input(model_id, request, n, schema)
    warnings: list[str] = []
    inputs: dict[str, Any] = {}
    if request.prompt is not None:
        if not schema.has("prompt"):
            raise InvalidRequestError(f"{model_id} takes no prompt (its inputs: {', '.join(sorted(schema.properties))})")
        inputs["prompt"] = request.prompt
    _size(request.size, schema, model_id, inputs, warnings)
    _portable(request, schema, model_id, inputs, warnings)
    _attach(request.images, _IMAGE, "input image", schema, model_id, inputs)
    if request.mask is not None:
        _attach((request.mask,), _MASK, "mask", schema, model_id, inputs)
    if len(request.images) > 1:
        warnings.append(f"{model_id} takes one input image: the first of {len(request.images)} was used")
    if request.quality is not None:
        warnings.append(f"{model_id} has no quality setting: quality={request.quality!r} was not applied")
    if request.style is not None:
        warnings.append(f"{model_id} has no style setting: style={request.style!r} was not applied")
    inputs.update(_user_inputs(request, schema, model_id))
    if request.operation == "variations" and "prompt" not in inputs and _needs(schema, "prompt"):
        inputs["prompt"] = VARIATIONS_PROMPT
        warnings.append(
            f"{model_id} needs a prompt and variations have none: the neutral prompt {VARIATIONS_PROMPT!r} was sent "
            "(choose another with provider_options={'replicate': {'prompt': ...}})"
        )
    _require(schema, inputs, model_id)
    return inputs, per_prediction(schema, n), warnings


def per_prediction(schema: InputSchema, n: int) -> int:
    """How many of ``n`` images one prediction makes: the model's count input allows that many (else one)."""
    name = schema.first(_COUNT)
    if name is None:
        return 1
    choices = _counts(schema, name)
    if choices:
        return max([c for c in choices if c <= n] or [1])
    return max(1, min(n, schema.maximum(name) or n))


def count_input(schema: InputSchema, count: int) -> tuple[dict[str, Any], int]:
    """The input that asks one prediction for ``count`` images (``num_outputs``, or ``num_samples`` whose choices
    may be strings such as "1" and "4"), and how many it will make."""
    name = schema.first(_COUNT)
    if name is None:
        return {}, 1
    choices = _counts(schema, name)
    if not choices:
        return {name: count}, count
    made = max([c for c in choices if c <= count] or [min(choices)])
    value = next(v for v in schema.enum(name) if _whole(v) == made)
    return {name: value}, made


def _counts(schema: InputSchema, name: str) -> list[int]:
    return sorted(c for c in (_whole(v) for v in schema.enum(name)) if c is not None and c >= 1)


def _whole(value: Any) -> int | None:
    """2, 2.0, "2" or "2x" as 2; anything else (None, "None", 2.5) as None."""
    text = str(value).strip().lower().removesuffix("x")
    try:
        number = float(text)
    except ValueError:
        return None
    return int(number) if math.isfinite(number) and number == int(number) else None


# -- images.upscale and images.sketch, by the model's schema ------------------------------------------------------


def _guidance_scale(schema: InputSchema) -> bool:
    """ControlNet models (``jagilley/controlnet-*``) name their guidance ``scale``: its description says so."""
    return schema.has("scale") and "guidance" in schema.text("scale")


def scale_field(schema: InputSchema) -> str | None:
    """The input that sets an upscale factor: ``scale_factor``, ``upscale_factor``..., or a ``scale`` that is not a
    guidance scale."""
    if not schema.known:
        return None
    for name in _SCALE:
        if schema.has(name) and not (name == "scale" and _guidance_scale(schema)):
            spec = schema.properties.get(name, {})
            if spec.get("type") in ("integer", "number") or any(_whole(v) for v in schema.enum(name)):
                return name
    return None


def control_field(model_id: str, schema: InputSchema) -> str | None:
    """The input a sketch goes into: a control image the schema names as such, or the image input of a model whose
    name says it is a ControlNet, scribble, canny, depth or lineart model."""
    if not schema.known:
        return None
    named = schema.first(_CONTROL)
    if named is not None:
        return named
    lowered = model_id.lower()
    if any(word in lowered for word in _SKETCH_WORDS):
        return schema.first(_IMAGE)
    return None


def can_upscale(model_id: str, schema: InputSchema) -> bool:
    """An image input and an upscale factor (or a name that says upscaler, for a model with a factor of its own)."""
    if control_field(model_id, schema) is not None or schema.first(_IMAGE) is None:
        return False
    return scale_field(schema) is not None or any(word in model_id.lower() for word in _UPSCALER_WORDS)


def can_sketch(model_id: str, schema: InputSchema) -> bool:
    """A control image input and a prompt."""
    return control_field(model_id, schema) is not None and schema.has("prompt")


def schema_operations(model_id: str, schema: InputSchema) -> frozenset[str]:
    """The transforms a model can serve, read from its schema."""
    return frozenset(
        ({"images.upscale"} if can_upscale(model_id, schema) else set())
        | ({"images.sketch"} if can_sketch(model_id, schema) else set())
    )


def _transform_input(model_id: str, request: ImageRequest, n: int, schema: InputSchema) -> tuple[dict[str, Any], int, list[str]]:
    operation = request.operation
    inputs: dict[str, Any] = {}
    warnings: list[str] = []
    if operation == "upscale" and not can_upscale(model_id, schema):
        why = "publishes no input schema" if not schema.known else "has no image input with an upscale factor"
        raise UnsupportedError(f"{model_id} cannot do images.upscale: its schema {why} "
                               f"(its inputs: {', '.join(sorted(schema.properties)) or 'unknown'})")
    if operation == "sketch" and not can_sketch(model_id, schema):
        why = "publishes no input schema" if not schema.known else "has no control image (ControlNet, canny, scribble) and prompt"
        raise UnsupportedError(f"{model_id} cannot do images.sketch: its schema {why} "
                               f"(its inputs: {', '.join(sorted(schema.properties)) or 'unknown'})")
    image = request.images[0]
    field_name = control_field(model_id, schema) if operation == "sketch" else schema.first(_IMAGE)
    assert field_name is not None  # checked above
    inputs[field_name] = file_input(image.data, image.media_type)
    if operation == "upscale":
        _upscale_factor(model_id, request.scale, schema, inputs)
    else:
        _sketch_size(model_id, image.width, image.height, schema, inputs, warnings)
    if request.prompt is not None:
        if not schema.has("prompt"):
            raise InvalidRequestError(f"{model_id} takes no prompt (its inputs: {', '.join(sorted(schema.properties))})")
        inputs["prompt"] = request.prompt
    _portable(request, schema, model_id, inputs, warnings)
    inputs.update(_user_inputs(request, schema, model_id))
    if "prompt" not in inputs and _needs(schema, "prompt"):
        raise InvalidRequestError(f"{model_id} needs a prompt describing the picture: pass prompt=...")
    _require(schema, inputs, model_id)
    return inputs, per_prediction(schema, n), warnings


def _upscale_factor(model_id: str, scale: int | None, schema: InputSchema, inputs: dict[str, Any]) -> None:
    """``scale`` into the model's factor input, refused here when the model's schema would refuse it."""
    name = scale_field(schema)
    if scale is None:
        return  # the model's own factor
    if name is None:
        raise InvalidRequestError(f"{model_id} upscales by a factor of its own and takes no scale: leave scale= out")
    choices = schema.enum(name)
    if choices:
        value = next((v for v in choices if _whole(v) == scale), None)
        if value is None:
            offered = ", ".join(str(_whole(v)) for v in choices if _whole(v) is not None)
            raise InvalidRequestError(f"scale={scale}: {model_id} upscales by {offered} only")
        inputs[name] = value
        return
    low, high = schema.properties.get(name, {}).get("minimum"), schema.properties.get(name, {}).get("maximum")
    if (isinstance(low, (int, float)) and scale < low) or (isinstance(high, (int, float)) and scale > high):
        raise InvalidRequestError(f"scale={scale}: {model_id} upscales by {low:g} to {high:g}" if low is not None
                                  and high is not None else f"scale={scale} is outside what {model_id} takes")
    inputs[name] = scale


def _sketch_size(model_id: str, width: int, height: int, schema: InputSchema, inputs: dict[str, Any],
                 warnings: list[str]) -> None:
    """Ask for the sketch's size where the model lets the caller choose: FLUX's ``megapixels="match_input"``, or
    the ``image_resolution`` (the short side) of ControlNet models nearest to the sketch's."""
    if "match_input" in schema.enum("megapixels"):
        inputs["megapixels"] = "match_input"
        return
    resolutions = [r for r in schema.enum("image_resolution") if _whole(r)]
    if resolutions:
        short = min(width, height)
        best = min(resolutions, key=lambda r: (abs(int(_whole(r) or 0) - short), -int(_whole(r) or 0)))
        inputs["image_resolution"] = best
        if _whole(best) != short:
            warnings.append(f"{model_id} makes pictures whose short side is {best}: the sketch's is {short}")


def video_input(model_id: str, request: VideoRequest, schema: InputSchema) -> tuple[dict[str, Any], list[str]]:
    warnings: list[str] = []
    inputs: dict[str, Any] = {"prompt": request.prompt}
    if request.seconds is not None:
        name = schema.first(_SECONDS)
        if name is not None:
            choices = [c for c in schema.enum(name) if isinstance(c, (int, float))]
            seconds: float = min(choices, key=lambda c: abs(c - request.seconds)) if choices else request.seconds  # type: ignore[operator]
            if schema.properties.get(name, {}).get("type") == "integer":
                seconds = round(seconds)
            if seconds != request.seconds:
                warnings.append(f"{model_id} makes videos of {seconds:g} s where {request.seconds:g} s were asked for")
            inputs[name] = seconds
        elif schema.has("num_frames"):
            frames = wanted = max(1, round(request.seconds * (request.fps or 16)))
            low, high = schema.minimum("num_frames"), schema.maximum("num_frames")
            frames = max(frames, low) if low is not None else frames
            frames = min(frames, high) if high is not None else frames
            if frames != wanted:
                warnings.append(f"{model_id} makes {low}-{high} frames: {frames} frames were asked for where "
                                f"{request.seconds:g} s at {request.fps or 16} fps would be {wanted}")
            inputs["num_frames"] = frames
        else:
            warnings.append(f"{model_id} has no duration input: seconds={request.seconds:g} was not applied")
    if request.fps is not None:
        name = schema.first(_FPS)
        if name is None:
            warnings.append(f"{model_id} has no frame-rate input: fps={request.fps} was not applied")
        else:
            inputs[name] = request.fps
    _size(request.size, schema, model_id, inputs, warnings)
    _portable(request, schema, model_id, inputs, warnings)
    if request.image is not None:
        _attach((request.image,), _IMAGE, "starting image", schema, model_id, inputs)
    inputs.update(_user_inputs(request, schema, model_id))
    _require(schema, inputs, model_id)
    return inputs, warnings


__all__ = [
    "VARIATIONS_PROMPT", "InputSchema", "Upload", "can_sketch", "can_upscale", "count_input", "file_input", "image_input",
    "parse_schema", "per_prediction", "schema_operations", "video_input",
]

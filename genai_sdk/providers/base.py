"""What a provider implements. Providers translate and classify; they never retry, sleep, charge or apply policy."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from .._catalog import ModelInfo
from .._media import Image
from .._requests import ImageRequest


@dataclass(frozen=True)
class CallContext:
    idempotency_key: str  # the same for every attempt of one backend call
    timeout: float | None  # seconds this attempt may take
    attempt: int


@dataclass
class ImageBatch:
    images: list[Image]
    request_id: str | None = None
    quality: str | None = None  # what the backend says it used, for the actual cost
    size: str | None = None
    warnings: list[str] = field(default_factory=list)


class Provider(Protocol):
    name: str

    def describe(self, model_name: str) -> ModelInfo | None:
        """Catalog facts for a model the built-in catalog does not list, or None if unknown."""
        ...

    def check(self, model: ModelInfo, request: ImageRequest) -> list[str]:
        """Provider-specific validation (``provider_options``); returns warnings, raises InvalidRequestError."""
        ...

    def images(self, model: ModelInfo, request: ImageRequest, n: int, ctx: CallContext) -> ImageBatch: ...

    async def aimages(self, model: ModelInfo, request: ImageRequest, n: int, ctx: CallContext) -> ImageBatch: ...

    def close(self) -> None: ...

    async def aclose(self) -> None: ...

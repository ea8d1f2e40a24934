"""An in-process provider that answers from a script, for applications' own tests (as httpx's ``MockTransport`` is
for HTTP): no server, no network, every call through the SDK's real pipeline (validation, policy, reservation,
retries, accounting).

    fake = FakeProvider()
    fake.script(genai.RateLimitError("slow down", provider="fake", retryable=True), 2)  # a 429, then two images
    client = genai.Client(image="fake:any", ledger="memory://", providers={"fake": fake})
    client.images.generate("a cat", n=2)   # retried once, then two 64x64 PNGs, charged 2 cents
    fake.calls                             # what the pipeline asked for, attempt by attempt
"""

from __future__ import annotations

import asyncio
import io
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from .._catalog import IMAGE_OPERATIONS, ModelInfo, PriceTable, SizeRule
from .._media import Image
from .._requests import ImageRequest, Request
from ..providers.base import CallContext, Cancelled, ImageBatch

# What a scripted step may be: an error to raise, a number of images to make, images to answer with, or a function
# of the request and the number of images asked for that returns any of these.
Step = BaseException | int | list[Image] | Callable[[ImageRequest, int], Any]


@dataclass(frozen=True)
class FakeCall:
    """One backend call the pipeline made: the operation, the request, how many images, which attempt."""

    operation: str
    request: ImageRequest
    n: int
    attempt: int
    idempotency_key: str


class FakeProvider:
    """A provider for ``fake:<any name>`` models (images: generate, edit, variations) that answers each backend
    call with the next scripted step, or, when the script is empty, with ``n`` pictures of the size asked for.
    Priced at ``usd_per_image`` (default one cent); ``delay`` seconds of waiting per call (async calls wait on the
    event loop)."""

    def __init__(self, name: str = "fake", *, usd_per_image: Decimal | str = "0.01", delay: float = 0.0) -> None:
        self.name = name
        self.usd_per_image = Decimal(str(usd_per_image))
        self.delay = delay
        self.calls: list[FakeCall] = []
        self._steps: deque[Step] = deque()
        self._lock = threading.Lock()

    def script(self, *steps: Step) -> FakeProvider:
        """Queue answers for the next backend calls, in order."""
        with self._lock:
            self._steps.extend(steps)
        return self

    # -- the provider interface ----------------------------------------------------------------------------------

    def describe(self, model_name: str) -> ModelInfo:
        return ModelInfo(
            provider=self.name, name=model_name, operations=IMAGE_OPERATIONS, size_rule=SizeRule(multiple_of=8, min_edge=8, max_edge=4096, max_ratio=8.0, max_pixels=4096 * 4096),
            default_size="64x64", max_n=10, max_input_images=4,
            price=PriceTable("image", {"*@*": self.usd_per_image}, "the fake provider's own price"),
            portable=frozenset({"seed", "negative_prompt", "steps", "guidance"}),
        )  # fmt: skip

    def check(self, model: ModelInfo, request: Request) -> list[str]:
        return []

    def images(self, model: ModelInfo, request: ImageRequest, n: int, ctx: CallContext) -> ImageBatch:
        step = self._next(request, n, ctx)
        if self.delay and (ctx.cancelled or threading.Event()).wait(self.delay):  # a caller who gives up ends it
            raise Cancelled("the call was cancelled while the fake provider was working", provider=self.name)
        return self._answer(step, request, n, ctx)

    async def aimages(self, model: ModelInfo, request: ImageRequest, n: int, ctx: CallContext) -> ImageBatch:
        step = self._next(request, n, ctx)
        if self.delay:
            await asyncio.sleep(self.delay)
        return self._answer(step, request, n, ctx)

    def close(self) -> None:
        pass

    async def aclose(self) -> None:
        pass

    # -- answering ------------------------------------------------------------------------------------------------

    def _next(self, request: ImageRequest, n: int, ctx: CallContext) -> Step | None:
        with self._lock:
            self.calls.append(FakeCall(f"images.{request.operation}", request, n, ctx.attempt, ctx.idempotency_key))
            return self._steps.popleft() if self._steps else None

    def _answer(self, step: Step | None, request: ImageRequest, n: int, ctx: CallContext) -> ImageBatch:
        answer: Any = step(request, n) if callable(step) and not isinstance(step, BaseException) else step
        if isinstance(answer, BaseException):
            raise answer
        if isinstance(answer, list):
            return ImageBatch(list(answer), request_id=f"fake-{ctx.idempotency_key}")
        count = n if answer is None else int(answer)
        return ImageBatch([self._picture(request, i) for i in range(count)], request_id=f"fake-{ctx.idempotency_key}")

    @staticmethod
    def _picture(request: ImageRequest, index: int) -> Image:
        from PIL import Image as PILImage

        width, height = (int(v) for v in (request.size or "64x64").split("x"))
        buffer = io.BytesIO()
        PILImage.new("RGB", (width, height), ((37 * index) % 256, 128, 200)).save(buffer, format="PNG")
        return Image.from_bytes(buffer.getvalue())


__all__ = ["FakeCall", "FakeProvider"]

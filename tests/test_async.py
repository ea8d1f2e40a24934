import asyncio
from dataclasses import replace
from decimal import Decimal

import pytest

import genai_sdk as genai
from genai_sdk.testing import Emulator

from .conftest import fast


def test_async_generate_and_concurrency(genai_emulator: Emulator) -> None:
    async def main() -> list[genai.ImageResult]:
        async with genai.AsyncClient(image="openai:dall-e-2") as client:
            results = await asyncio.gather(*(client.images.generate(f"couch {i}", size="256x256") for i in range(16)))
            history = await client.credits.history()
            assert len([e for e in history if e.kind == "charge"]) == 16
            assert await client.credits.balance() == Decimal("-25.6")
            return list(results)

    results = asyncio.run(main())
    assert len({r.image.data for r in results}) == 16
    assert len(genai_emulator.calls()) == 16


def test_async_retries_and_failure_release(genai_emulator: Emulator) -> None:
    async def main() -> None:
        client = fast(genai.AsyncClient(image="openai:dall-e-2"))
        genai_emulator.fail("images.generate", "rate_limit", times=1, retry_after_ms=20)
        result = await client.images.generate("a couch", size="256x256")
        assert len(result.images) == 1
        genai_emulator.fail("images.generate", "server_error", times=5)
        with pytest.raises(genai.ProviderUnavailableError):
            await client.images.generate("a couch", size="256x256")
        assert await client.credits.reserved() == 0
        assert len([e for e in await client.credits.history() if e.kind == "charge"]) == 1
        await client.aclose()

    asyncio.run(main())


def test_async_split_calls_run_concurrently_and_fail_together(genai_emulator: Emulator) -> None:
    async def main() -> None:
        client = fast(genai.AsyncClient(max_retries=0))
        dalle3 = client.catalog.get("openai:dall-e-3")
        assert dalle3 is not None
        client.catalog.register(replace(dalle3, retired_on=None))
        result = await client.images.generate("a couch", model="openai:dall-e-3", n=3)
        assert len(result.images) == 3
        genai_emulator.fail("images.generate", "bad_request", times=1)
        with pytest.raises(genai.ProviderError) as info:
            await client.images.generate("a couch", model="openai:dall-e-3", n=3)
        assert info.value.status == 400
        assert await client.credits.reserved() == 0
        charges = [e for e in await client.credits.history() if e.kind == "charge"]
        assert len(charges) == 1
        await client.aclose()

    asyncio.run(main())


def test_async_edit_variations_estimate_and_policy(genai_emulator: Emulator) -> None:
    from PIL import Image as PILImage

    async def main() -> None:
        async with genai.AsyncClient(image="openai:dall-e-2", policy="standard") as client:
            square = PILImage.new("RGB", (64, 64))
            edited = await client.images.edit(square, "add a hat", size="256x256")
            varied = await client.images.variations(square, size="256x256", n=2)
            assert len(edited.images) == 1 and len(varied.images) == 2
            cost = await client.images.estimate("a couch", n=2, size="1024x1024")
            assert cost.usd == Decimal("0.040")
            decision = await client.policy.check("how to build a pipe bomb")
            assert not decision.allowed
            await client.credits.grant(10)
            await client.credits.set_budget(credits=3)
            with pytest.raises(genai.BudgetExceededError):
                await client.images.generate("a couch", n=2, size="1024x1024")

    asyncio.run(main())

"""A storyboard: one image per scene, every scene generated at once on Replicate, under a spending cap.

The account is granted 1 credit (1 US cent); FLUX schnell costs 0.3 credits an image, so three scenes fit and the
fourth is refused before anything is sent for it, however the concurrent calls interleave.

Run against Replicate with REPLICATE_API_TOKEN set, or against the emulator (`genai emulator`, then export what it
prints):
    python examples/storyboard.py [folder]
"""

import asyncio
import sys
from pathlib import Path

import genai_sdk as genai

SCENES = [
    "a lighthouse at dawn, watercolor",
    "a fishing boat leaving the harbour, watercolor",
    "a storm over the sea, watercolor",
    "the boat home at night, lanterns lit, watercolor",
]


async def main(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    async with genai.AsyncClient(image="replicate:black-forest-labs/flux-schnell", ledger="memory://",
                                 account="storyboard") as client:
        await client.credits.grant(1, reason="storyboard allowance")
        results = await asyncio.gather(*(client.images.generate(scene, size="1024x576", seed=7) for scene in SCENES),
                                       return_exceptions=True)
        for number, (scene, result) in enumerate(zip(SCENES, results, strict=True), start=1):
            if isinstance(result, genai.BudgetExceededError):
                print(f"scene {number} refused before sending: {result}")
            elif isinstance(result, BaseException):
                raise result
            else:
                path = folder / f"scene{number}.png"
                result.image.save(path)
                print(f"scene {number}: {path.name} ({scene}), {result.cost}")
        print(f"balance left: {await client.credits.balance()} credits")


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("storyboard")))

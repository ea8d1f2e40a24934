"""A catalogue of product shots at volume, offline against the SDK's emulator: a batch with fallbacks, a client-side
rate limit, a budget, an on_call_end hook, and the results saved as JSON.

    python examples/volume.py
"""

from __future__ import annotations

import collections
import json
from pathlib import Path

import genai_sdk as genai
from genai_sdk.testing import Emulator

PRODUCTS = ["a red kettle", "a blue mug", "a green teapot", "a yellow lamp", "a black chair", "a white vase"]

with Emulator() as emulator, emulator.installed():
    emulator.fail("images.generate", "unavailable", times=4, when="lamp")  # OpenAI is down for one product
    outcomes: collections.Counter[str] = collections.Counter()
    client = genai.Client(
        image=["openai:dall-e-2", "replicate:black-forest-labs/flux-schnell"],  # the second serves if the first cannot
        ledger="memory://",
        max_retries=1,
        rate_limits={"openai": {"rpm": 600, "concurrent": 4}},
        on_call_end=lambda event: outcomes.update([f"{event.model} {event.outcome}"]),
    )
    client.credits.grant(8)  # five pictures at 1.6 credits: what goes beyond is refused before it is sent
    results = client.images.generate_many(PRODUCTS, concurrency=3, size="256x256", progress=False)

    out = Path("catalogue")
    out.mkdir(exist_ok=True)
    for product, answer in zip(PRODUCTS, results, strict=True):
        if isinstance(answer, genai.GenAIError):
            print(f"{product}: {type(answer).__name__}: {answer}")
            continue
        answer.image.save(out / f"{product.replace(' ', '_')}.png")
        print(f"{product}: {answer.model}, {answer.cost}" + (f" (after {answer.failed_models[0]})" if answer.failed_models else ""))
    (out / "results.json").write_text(json.dumps([r.to_dict(media_dir=out) for r in results.succeeded], indent=1))
    print(f"{len(results.succeeded)} of {len(results)} made, {results.cost}; calls: {dict(sorted(outcomes.items()))}")
    client.close()

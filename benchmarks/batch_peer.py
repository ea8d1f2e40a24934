"""The peer half of ``batch.py``, run by an interpreter that has LiteLLM (which pins its own openai, so it may live
in a virtual environment of its own): raw ``AsyncOpenAI`` calls under ``asyncio.gather`` and LiteLLM's
``aimage_generation``, against the emulator ``batch.py`` started (its address in the environment). Prints one JSON
line: seconds for each.

    python benchmarks/batch_peer.py COUNT CONCURRENCY SIZE
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import sys
import time


async def main(count: int, concurrency: int, size: str) -> dict[str, float]:
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # no fetch of its price list from the network
    import httpx
    import litellm
    import openai

    gate = asyncio.Semaphore(concurrency)
    raw = openai.AsyncOpenAI(max_retries=0)
    files = httpx.AsyncClient()

    async def one_raw(i: int) -> None:
        async with gate:
            answer = await raw.images.generate(model="dall-e-2", prompt=f"an avocado couch {i}", n=1, size=size,
                                               response_format="b64_json")  # fmt: skip
            assert answer.data and base64.b64decode(answer.data[0].b64_json or "")

    async def one_peer(i: int) -> None:
        async with gate:
            answer = await litellm.aimage_generation(
                model="openai/dall-e-2", prompt=f"an avocado couch {i}", n=1, size=size,
                extra_body={"response_format": "b64_json"},  # its own response_format check refuses dall-e-2's
                api_base=os.environ["OPENAI_BASE_URL"], api_key=os.environ["OPENAI_API_KEY"],
            )  # fmt: skip
            picture = answer.data[0] if answer.data else None
            if picture is not None and picture.b64_json:
                assert base64.b64decode(picture.b64_json)
            else:  # a URL: fetched, as a user of LiteLLM does to have the image
                assert picture is not None and picture.url
                assert (await files.get(picture.url)).content

    times = {}
    for name, one in (("raw", one_raw), ("litellm", one_peer)):
        await asyncio.gather(*(one(i) for i in range(concurrency)))  # warm
        started = time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(count)))
        times[name] = time.perf_counter() - started
    return times


if __name__ == "__main__":
    count, concurrency, size = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    print(json.dumps(asyncio.run(main(count, concurrency, size))))

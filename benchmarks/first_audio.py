"""First-audio latency: how soon speech starts playing, streamed against made whole, and against the raw library.

1. Piper (the bundled voice, warm): the raw library's first sentence (`PiperVoice.synthesize`'s first chunk), the
   SDK's `speech.stream` first chunk, and the SDK's `speech.synthesize` (the whole text before any audio).
2. OpenAI through the emulator (a process of its own): openai-python's streamed answer's first bytes against the
   SDK's `speech.stream` first chunk (the SDK's overhead on the way to the first audio).

    python benchmarks/first_audio.py [--rounds 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

from _common import emulator_env, machine

import genai_sdk as genai

TEXT = ("The meeting has been moved to the large room on the second floor. Please bring the printed agenda and your "
        "notes from last week. We will start at ten sharp and finish before lunch.")  # fmt: skip


def _median(runs: list[float]) -> float:
    return statistics.median(runs) * 1000


def piper(rounds: int) -> None:
    from genai_sdk.providers.piper import _load

    voice = _load("en_US-joe-medium", False)
    client = genai.Client(ledger="memory://", policy="off")  # the pipeline's own cost, not the content policy's
    client.speech.synthesize("Warm up.")
    raw, streamed, whole = [], [], []
    for _ in range(rounds):
        started = time.perf_counter()
        next(iter(voice.synthesize(TEXT)))
        raw.append(time.perf_counter() - started)
        started = time.perf_counter()
        with client.speech.stream(TEXT, format="pcm") as stream:
            next(stream)
        streamed.append(time.perf_counter() - started)
        started = time.perf_counter()
        client.speech.synthesize(TEXT, format="pcm")
        whole.append(time.perf_counter() - started)
    print(f"# Piper en_US-joe-medium, {len(TEXT)} characters in 3 sentences, median of {rounds}")
    print(f"  raw piper, first sentence     {_median(raw):7.1f} ms")
    print(f"  SDK stream, first chunk       {_median(streamed):7.1f} ms   ratio to raw {_median(streamed) / _median(raw):.2f}")
    print(f"  SDK synthesize, whole text    {_median(whole):7.1f} ms   ({_median(whole) / _median(streamed):.1f}x later)")


def hosted(rounds: int) -> None:
    import openai

    with emulator_env():
        raw_client = openai.OpenAI()
        client = genai.Client(ledger="memory://", policy="off")
        client.speech.synthesize("Warm up.", model="openai:tts-1")
        raw, streamed = [], []
        for _ in range(rounds):
            started = time.perf_counter()
            with raw_client.audio.speech.with_streaming_response.create(
                model="tts-1", voice="alloy", input=TEXT, response_format="pcm"
            ) as response:
                next(response.iter_bytes(8192))
            raw.append(time.perf_counter() - started)
            started = time.perf_counter()
            with client.speech.stream(TEXT, model="openai:tts-1", format="pcm") as stream:
                next(stream)
            streamed.append(time.perf_counter() - started)
        raw_client.close()
        client.close()
    print(f"# openai:tts-1 through the emulator (loopback), median of {rounds}")
    print(f"  openai-python, first bytes    {_median(raw):7.1f} ms")
    print(f"  SDK stream, first chunk       {_median(streamed):7.1f} ms   ratio to raw {_median(streamed) / _median(raw):.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    os.environ.setdefault("GENAI_LEDGER", "memory://")
    print(f"# {machine()}")
    piper(args.rounds)
    hosted(args.rounds)


if __name__ == "__main__":
    main()

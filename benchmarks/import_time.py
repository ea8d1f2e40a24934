"""Import time of genai_sdk against openai (and litellm where installed), each in a fresh interpreter.

    python benchmarks/import_time.py [--runs 15]
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import subprocess
import sys
import time

from _common import machine

HEAVY = ("torch", "diffusers", "transformers", "faster_whisper", "piper", "openai", "replicate", "PIL", "numpy")


def timed(code: str, runs: int) -> float:
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True)
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=15)
    runs = parser.parse_args().runs
    print(f"# import time, median of {runs} fresh interpreters ({machine()})")
    baseline = timed("pass", runs)
    cases = {
        "genai_sdk": "import genai_sdk",
        "genai_sdk + Client()": "import genai_sdk as g; g.Client(image='openai:dall-e-2')",
        "openai": "import openai",
    }
    if importlib.util.find_spec("litellm") is not None:
        cases["litellm"] = "import litellm"
    results = {name: timed(code, runs) - baseline for name, code in cases.items()}
    for name, seconds in results.items():
        print(f"{name:<22} {seconds * 1000:8.1f} ms")
    ours = results["genai_sdk"]
    for other in [n for n in results if not n.startswith("genai_sdk")]:
        print(f"ratio {other} / genai_sdk: {results[other] / ours:.1f}x")
    loaded = subprocess.run(
        [sys.executable, "-c", "import sys, genai_sdk; print(' '.join(sys.modules))"], capture_output=True, text=True, check=True
    ).stdout.split()
    heavy = [m for m in HEAVY if m in loaded]
    print(f"heavy modules imported by 'import genai_sdk': {', '.join(heavy) or 'none'}")
    print(f"target: import genai_sdk < 150 ms -> {'met' if ours < 0.150 and not heavy else 'NOT met'}")


if __name__ == "__main__":
    main()

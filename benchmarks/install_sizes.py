"""What each extra costs to install: site-packages size and install time, each in a fresh virtual environment,
with the versions CI pins (constraints.txt).

    python benchmarks/install_sizes.py [--extras base speech local ray] [--keep DIR]

Downloads come from pip's cache when it has them: the times measure installing, not the network.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import machine

REPO = Path(__file__).resolve().parent.parent
HEAVY = ("torch", "diffusers", "faster_whisper", "piper", "ctranslate2", "onnxruntime", "av", "ray")


def site_packages(venv: Path) -> Path:
    found = sorted(venv.glob("lib/python3*/site-packages"))
    if not found:
        raise SystemExit(f"no site-packages in {venv}")
    return found[0]


def megabytes(folder: Path) -> int:
    return int(subprocess.run(["du", "-sm", str(folder)], check=True, capture_output=True, text=True).stdout.split()[0])


def measure(extra: str, root: Path) -> tuple[int, float, list[str]]:
    venv = root / f"venv-{extra}"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    target = str(REPO) if extra == "base" else f"{REPO}[{extra}]"
    started = time.perf_counter()
    subprocess.run([str(python), "-m", "pip", "install", "-q", target, "-c", str(REPO / "constraints.txt")], check=True)
    seconds = time.perf_counter() - started
    size = megabytes(site_packages(venv))
    listed = subprocess.run([str(python), "-m", "pip", "list", "--format=freeze"], check=True, capture_output=True,
                            text=True).stdout.lower()  # fmt: skip
    names = {line.split("==")[0].replace("-", "_") for line in listed.splitlines()}
    return size, seconds, [h for h in HEAVY if h in names]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--extras", nargs="+", default=["base", "speech", "local", "ray"])
    parser.add_argument("--keep", type=Path, help="make the environments here and keep them")
    args = parser.parse_args()
    print(f"# install size and time per extra, fresh venvs, pip install -c constraints.txt ({machine()})")
    print("| extra | site-packages (MB) | install time (s) | heavy packages in it |")
    print("|---|---:|---:|---|")
    with tempfile.TemporaryDirectory(prefix="genai-install-") as scratch:
        root = args.keep or Path(scratch)
        root.mkdir(parents=True, exist_ok=True)
        for extra in args.extras:
            size, seconds, heavy = measure(extra, root)
            print(f"| `{extra}` | {size} | {seconds:.0f} | {', '.join(heavy) or 'none'} |", flush=True)


if __name__ == "__main__":
    main()

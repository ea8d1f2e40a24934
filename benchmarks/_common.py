"""Shared helpers for the benchmarks: an emulator with its environment installed, and summary statistics."""

from __future__ import annotations

import os
import platform
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


EMULATOR_KEYS = {"OPENAI_BASE_URL", "OPENAI_API_KEY", "REPLICATE_BASE_URL", "REPLICATE_API_TOKEN"}


@contextmanager
def emulator_env(*options: str) -> Iterator[dict[str, str]]:
    """The emulator in a process of its own (as a remote API would be), its address in the environment.
    ``options`` go to ``genai emulator`` (``--job-seconds 1``).

    In-process, the server's threads would compete with the code under measurement for the GIL."""
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "genai_sdk.cli", "emulator", "--port", str(port), *options],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    assert server.stdout is not None
    env: dict[str, str] = {}
    while not EMULATOR_KEYS <= set(env):
        line = server.stdout.readline()
        if not line:
            raise RuntimeError("the emulator exited before printing its address")
        key, _, value = line.strip().removeprefix("export ").partition("=")
        env[key] = value
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.05)
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield env
    finally:
        server.terminate()
        server.wait(timeout=10)
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def machine() -> str:
    return f"{platform.python_implementation()} {platform.python_version()}, {os.cpu_count()} CPUs, {platform.machine()}"


def median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000

"""The emulator is one server plus one module per API, with no import cycle: an API module loads without the
server's module, and the shared wire module without either."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.parametrize(
    ("module", "absent"),
    [
        ("genai_sdk.testing._replicate_emulator", ["genai_sdk.testing._emulator"]),
        ("genai_sdk.testing._moderation_emulator", ["genai_sdk.testing._emulator", "genai_sdk.testing._replicate_emulator"]),
        ("genai_sdk.testing._wire", ["genai_sdk.testing._emulator", "genai_sdk.testing._replicate_emulator"]),
    ],
)
def test_an_api_module_imports_no_other(module: str, absent: list[str]) -> None:
    code = f"import sys, {module}; print(','.join(m for m in {absent!r} if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "", f"{module} imported {done.stdout.strip()}"

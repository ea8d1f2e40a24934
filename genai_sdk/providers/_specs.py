"""The table of backends, from the ``provider`` object of each ``providers/<name>.json`` (whose ``models`` are the
catalog): its code, its extra, the environment variables it reads, its secrets' shapes. Adding a backend adds files
and edits none (``providers/ADDING.md``). Standard library only, read on first use (``_errors`` needs it to redact)."""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_FOLDER = Path(__file__).parent


@dataclass(frozen=True)
class ProviderSpec:
    name: str  # the part before ':' in a model id: the file's name
    module: str  # the module that holds the provider class, imported on first use
    cls: str  # the provider class: ``cls(settings, environ)``
    extra: str  # the pip extra that installs what it needs: pip install 'genai-sdk[extra]'
    package: str  # the package that extra brings, whose absence means the extra is missing
    environment: tuple[str, ...] = ()  # variables it reads (keys, base URLs)
    secrets: tuple[str, ...] = ()  # regular expressions matching its keys or tokens in any text


@functools.cache
def provider_files() -> dict[str, dict[str, Any]]:
    """Every ``providers/<name>.json``, parsed, by name (in name order). JSON: ``tomllib`` would cost 15 ms more."""
    return {path.stem: json.loads(path.read_text(encoding="utf-8")) for path in sorted(_FOLDER.glob("*.json"))}


@functools.cache
def providers() -> dict[str, ProviderSpec]:
    specs = {}
    for name, data in provider_files().items():
        table = data["provider"]
        specs[name] = ProviderSpec(
            name, table["module"], table["class"], table["extra"], table["package"],
            tuple(table.get("environment", ())), tuple(table.get("secrets", ())),
        )  # fmt: skip
    return specs


def secret_patterns() -> tuple[re.Pattern[str], ...]:
    """Every provider's secret patterns, compiled."""
    return tuple(re.compile(pattern) for spec in providers().values() for pattern in spec.secrets)


def environment_variables() -> tuple[str, ...]:
    """Every variable a provider reads: what a test must clear to be independent of the user's environment."""
    return tuple(name for spec in providers().values() for name in spec.environment)

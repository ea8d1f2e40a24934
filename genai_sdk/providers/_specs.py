"""The table of backends: one line per provider says where its code lives, what installs it, which environment
variables it reads, and what its secrets look like. The registry (``providers.ProviderPool``), the redaction of
secrets from every message (``_errors.redact``) and the tests' isolation from the user's environment all read it,
so adding a backend is one line here plus its own files (see ``providers/ADDING.md``).

Kept free of imports beyond the standard library: ``_errors`` reads it when ``genai_sdk`` is imported.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class ProviderSpec:
    name: str  # the part before ':' in a model id
    module: str  # the module that holds the provider class, imported on first use
    cls: str  # the provider class: ``cls(settings, environ)``
    extra: str  # the pip extra that installs what it needs: pip install 'genai-sdk[extra]'
    package: str  # the package that extra brings, whose absence means the extra is missing
    environment: tuple[str, ...] = ()  # variables it reads (keys, base URLs)
    secrets: tuple[str, ...] = ()  # regular expressions matching its keys or tokens in any text


PROVIDERS: tuple[ProviderSpec, ...] = (
    ProviderSpec(
        "openai", "genai_sdk.providers.openai", "OpenAIProvider", "openai", "openai",
        environment=("OPENAI_API_KEY", "OPENAI_BASE_URL"), secrets=(r"sk-[A-Za-z0-9_\-]{6,}",),
    ),
    ProviderSpec(
        "replicate", "genai_sdk.providers.replicate", "ReplicateProvider", "replicate", "httpx",
        environment=("REPLICATE_API_TOKEN", "REPLICATE_BASE_URL"), secrets=(r"r8_[A-Za-z0-9]{6,}",),
    ),
    ProviderSpec("diffusers", "genai_sdk.providers.diffusers", "DiffusersProvider", "local", "diffusers"),
    ProviderSpec("whisper", "genai_sdk.providers.whisper", "WhisperProvider", "local", "faster_whisper"),
    ProviderSpec("piper", "genai_sdk.providers.piper", "PiperProvider", "local", "piper"),
)  # fmt: skip

BY_NAME = {spec.name: spec for spec in PROVIDERS}


def secret_patterns() -> tuple[re.Pattern[str], ...]:
    """Every provider's secret patterns, compiled."""
    return tuple(re.compile(pattern) for spec in PROVIDERS for pattern in spec.secrets)


def environment_variables() -> tuple[str, ...]:
    """Every variable a provider reads: what a test must clear to be independent of the user's environment."""
    return tuple(name for spec in PROVIDERS for name in spec.environment)

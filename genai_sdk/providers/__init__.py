"""Backends. Each module is imported only when one of its models is first used."""

from __future__ import annotations

import importlib
import os
import threading
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

from .._errors import ConfigError, InvalidRequestError
from ._options import closest
from ._specs import providers as _spec_table  # the providers' table: see _specs.py

if TYPE_CHECKING:
    from .._config import Settings
    from .base import Provider


def known_providers() -> tuple[str, ...]:
    """The names of the built-in providers (one ``<name>.json`` each, in name order)."""
    return tuple(_spec_table())


class ProviderPool:
    """One provider instance per name, created on first use and shared by sync and async calls."""

    def __init__(self, settings: Settings, environ: Mapping[str, str] | None = None) -> None:
        self._settings = settings
        self._environ = os.environ if environ is None else environ
        self._lock = threading.Lock()
        self._providers: dict[str, Provider] = {}

    def get(self, name: str) -> Provider:
        provider = self._providers.get(name)
        if provider is not None:
            return provider
        with self._lock:
            provider = self._providers.get(name)
            if provider is None:
                provider = self._providers[name] = _create(name, self._settings, self._environ)
            return provider

    def check_option_names(self, names: Iterable[str]) -> None:
        """Refuse ``provider_options`` keyed by an unknown provider (else ignored), suggesting the closest name."""
        unknown = [name for name in names if name not in _spec_table() and name not in self._providers]
        if not unknown:
            return
        known = sorted({*_spec_table(), *self._providers})
        close = closest(str(unknown[0]), known)
        hint = f": did you mean {close!r}?" if close else ""
        raise InvalidRequestError(
            f"provider_options names an unknown provider {unknown[0]!r}{hint} (providers: {', '.join(known)})"
        )

    def register(self, name: str, provider: Provider) -> None:
        """Use this provider object for ``name`` (custom backends, test doubles)."""
        with self._lock:
            self._providers[name] = provider

    def close(self) -> None:
        with self._lock:
            providers, self._providers = list(self._providers.values()), {}
        for provider in providers:
            provider.close()

    async def aclose(self) -> None:
        with self._lock:
            providers, self._providers = list(self._providers.values()), {}
        for provider in providers:
            await provider.aclose()


def _create(name: str, settings: Settings, environ: Mapping[str, str]) -> Provider:
    spec = _spec_table().get(name)
    if spec is None:
        raise ConfigError(f"unknown provider {name!r}: use one of {', '.join(_spec_table())}")
    try:
        provider: Provider = getattr(importlib.import_module(spec.module), spec.cls)(settings, environ)
    except ModuleNotFoundError as exc:
        missing = exc.name.split(".")[0] if exc.name else None
        if missing in (spec.package, "torch", "numpy", "av"):
            raise ConfigError(
                f"the {name!r} provider needs the {missing!r} package: pip install 'genai-sdk[{spec.extra}]'"
            ) from None
        raise
    return provider

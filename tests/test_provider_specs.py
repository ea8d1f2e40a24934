"""The providers' table drives the registry, the redaction of secrets and the tests' isolation."""

from __future__ import annotations

import importlib

import pytest

import genai_sdk as genai
from genai_sdk.providers import KNOWN_PROVIDERS
from genai_sdk.providers._specs import PROVIDERS, ProviderSpec, environment_variables, secret_patterns


def test_every_provider_in_the_table_is_known_and_its_class_exists() -> None:
    assert KNOWN_PROVIDERS == tuple(spec.name for spec in PROVIDERS)
    for spec in PROVIDERS:
        try:
            module = importlib.import_module(spec.module)
        except ModuleNotFoundError as exc:  # an extra not installed here: the table still names the right package
            assert exc.name is not None and exc.name.split(".")[0] in (spec.package, "torch", "numpy", "av")
            continue
        assert isinstance(getattr(module, spec.cls), type), spec


@pytest.mark.parametrize("spec", [s for s in PROVIDERS if s.secrets], ids=lambda s: s.name)
def test_each_providers_secrets_are_redacted(spec: ProviderSpec) -> None:
    import re
    import string

    for pattern in spec.secrets:
        # a string the pattern matches: its literal prefix, then letters and digits
        found = re.match(r"[A-Za-z0-9_\-]*", pattern.replace("\\", ""))
        prefix = found.group(0) if found else ""
        secret = prefix + string.ascii_letters[:12] + "123456"
        assert re.search(pattern, secret)
        message = genai.ProviderError(f"the server said: bad key {secret}").message
        assert secret not in message and "[redacted]" in message
    assert len(secret_patterns()) == sum(len(s.secrets) for s in PROVIDERS)


def test_the_tests_clear_every_providers_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    names = environment_variables()
    assert {"OPENAI_API_KEY", "OPENAI_BASE_URL", "REPLICATE_API_TOKEN", "REPLICATE_BASE_URL"} <= set(names)
    assert not any(name in os.environ for name in names)  # conftest's isolation removed the user's own

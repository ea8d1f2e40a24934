"""The providers' table (the ``provider`` object of each ``providers/<name>.json``) drives the registry, the
redaction of secrets and the tests' isolation; the same files hold the catalog."""

from __future__ import annotations

import importlib
import json
import shutil
from pathlib import Path

import pytest

import genai_sdk as genai
from genai_sdk.providers import known_providers
from genai_sdk.providers._specs import ProviderSpec, environment_variables, providers, secret_patterns

PROVIDERS = tuple(providers().values())


def test_every_provider_in_the_table_is_known_and_its_class_exists() -> None:
    assert known_providers() == tuple(spec.name for spec in PROVIDERS)
    assert {"openai", "replicate", "diffusers", "whisper", "piper"} <= set(known_providers())
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
        found = re.match(r"[A-Za-z0-9_.\-]*", pattern.replace("\\", ""))
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


def test_a_new_providers_file_is_all_it_takes_to_register_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The registry, the catalog and redaction find a backend by its file: no table elsewhere is edited."""
    from genai_sdk import _catalog
    from genai_sdk.providers import _specs

    for path in _specs._FOLDER.glob("*.json"):
        shutil.copy(path, tmp_path / path.name)
    acme = {
        "provider": {"module": "acme_backend", "class": "AcmeProvider", "extra": "acme", "package": "acme_backend",
                     "environment": ["ACME_KEY"], "secrets": ["acme-[0-9a-f]{8,}"]},
        "models": [{"name": "painter-1", "operations": ["images.generate"], "sizes": ["512x512"],
                    "price": {"unit": "image", "usd": {"*@*": "0.01"}, "source": "acme.test"}}],
    }  # fmt: skip
    (tmp_path / "acme.json").write_text(json.dumps(acme), encoding="utf-8")
    monkeypatch.setattr(_specs, "_FOLDER", tmp_path)
    for cached in (_specs.provider_files, _specs.providers, _catalog._builtin_models):
        cached.cache_clear()
    monkeypatch.setattr("genai_sdk._errors._secret_patterns", None)
    try:
        assert "acme" in known_providers() and "ACME_KEY" in environment_variables()
        model = _catalog.default_catalog().get("acme:painter-1")
        assert model is not None and model.price is not None and str(model.price.usd["*@*"]) == "0.01"
        client = genai.Client(image="acme:painter-1", ledger="memory://")
        with pytest.raises(genai.ConfigError, match=r"pip install 'genai-sdk\[acme\]'"):
            client.images.generate("a lighthouse")
        client.close()
    finally:
        for cached in (_specs.provider_files, _specs.providers, _catalog._builtin_models):
            cached.cache_clear()

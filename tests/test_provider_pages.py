"""Each backend's docs page holds its models and options tables as the code declares them: the tables are generated
(``_catalog.markdown``, ``OptionSpec.markdown``) and compared here, for every provider the table of backends lists."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

from genai_sdk._catalog import default_catalog, markdown
from genai_sdk.providers._options import OptionSpec
from genai_sdk.providers._specs import providers

PAGES = Path(__file__).resolve().parent.parent / "docs" / "providers"


@pytest.mark.parametrize("name", list(providers()))
def test_each_provider_has_a_page_with_its_models(name: str) -> None:
    page = PAGES / f"{name}.md"
    assert page.is_file(), f"docs/providers/{name}.md is missing"
    models = default_catalog().models(name)
    if models:
        table = markdown(models)
        assert table in page.read_text(encoding="utf-8"), (
            f"docs/providers/{name}.md: the models table is out of date; it should read:\n{table}"
        )


@pytest.mark.parametrize("name", list(providers()))
def test_each_provider_page_lists_its_options(name: str) -> None:
    spec = providers()[name]
    try:
        module = importlib.import_module(spec.module)
    except ModuleNotFoundError as exc:  # its extra is not installed here
        pytest.skip(f"the {name} provider needs {exc.name}: pip install 'genai-sdk[{spec.extra}]'")
    options = getattr(module, "OPTIONS", None)
    if options is None:
        return  # a backend without options of its own
    assert isinstance(options, OptionSpec) and options.provider == name
    per_operation = any(option.operations is not None for option in options.options.values())
    table = options.markdown(operations=per_operation)
    assert table in (PAGES / f"{name}.md").read_text(encoding="utf-8"), (
        f"docs/providers/{name}.md: the options table is out of date; it should read:\n{table}"
    )

"""What `genai_sdk` exports, checked against the module itself, its documentation and the public contract.

Nothing here is a hand-copied list: the names come from `genai_sdk.__all__`, from the contract (API.md of the shared folder,
read from ``../shared`` next to the repository, as the conformance tests read ``../shared/specs``), and from the docs;
the exception tree comes from the contract's drawing, from the drawing in genai_sdk/_errors.py, and from the classes.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

import genai_sdk
from genai_sdk import _errors

from .conftest import REPO

API_MD = Path(os.environ.get("GENAI_API_MD", REPO.parent / "shared" / "API.md"))
DOCS = REPO / "docs"
_NO_API_MD = f"the public contract is not at {API_MD} (set GENAI_API_MD to the API.md of the shared folder)"

# `genai.toml` is the name of the configuration file, not an attribute of the module.
_NOT_NAMES = {"toml"}


def _api_text() -> str:
    if not API_MD.is_file():
        pytest.skip(_NO_API_MD)
    return API_MD.read_text(encoding="utf-8")


def _code(markdown: str) -> str:
    """The code of a Markdown text: fenced blocks and inline spans, where a documented name is written."""
    fenced = re.findall(r"^```[^\n]*\n(.*?)^```", markdown, flags=re.S | re.M)
    rest = re.sub(r"^```[^\n]*\n.*?^```", "", markdown, flags=re.S | re.M)
    return "\n".join(fenced + re.findall(r"`([^`\n]+)`", rest))


def _mentions(name: str, code: str) -> bool:
    return re.search(rf"(?<![\w.]){re.escape(name)}(?!\w)|\bgenai(?:_sdk)?\.{re.escape(name)}(?!\w)", code) is not None


def _contract_names(api: str) -> set[str]:
    """Every `genai.X` of the contract (which writes `import genai_sdk as genai`), and every class of its error tree."""
    names = {m for m in re.findall(r"(?<![\w.])genai\.([A-Za-z_]\w*)", api) if m not in _NOT_NAMES}
    return names | {name for name, _ in _tree(_errors_block(api))}


def _errors_block(api: str) -> str:
    """The drawing of the exception tree: the first code block of the contract's "Errors" section."""
    section = re.search(r"^## Errors\n(.*?)(?=^## |\Z)", api, flags=re.S | re.M)
    assert section, f"{API_MD} has no '## Errors' section"
    block = re.search(r"^```[^\n]*\n(.*?)^```", section.group(1), flags=re.S | re.M)
    assert block, f"the 'Errors' section of {API_MD} draws no tree"
    return block.group(1)


def _tree(drawing: str) -> list[tuple[str, str | None]]:
    """(class, parent) for each class of a tree drawn with box characters (4 columns a level), in drawing order."""
    rows = []
    for line in drawing.splitlines():
        found = re.match(r"^(?P<indent>[ │├└─]*)(?P<name>[A-Z]\w*Error)\b", line)
        if found:
            rows.append((len(found.group("indent")), found.group("name")))
    assert rows, f"no classes drawn in:\n{drawing}"
    root_column = rows[0][0]
    parents: list[str] = []  # the chain of ancestors of the current row
    tree: list[tuple[str, str | None]] = []
    for column, name in rows:
        depth, remainder = divmod(column - root_column, 4)
        assert remainder == 0 and 0 <= depth <= len(parents), f"{name} is drawn at column {column}:\n{drawing}"
        del parents[depth:]
        tree.append((name, parents[-1] if parents else None))
        parents.append(name)
    return tree


def _docstring_tree() -> list[tuple[str, str | None]]:
    doc = _errors.__doc__ or ""
    assert "::\n" in doc, "genai_sdk/_errors.py's docstring draws no exception tree"
    return _tree(doc.split("::\n", 1)[1])


# -- the module ---------------------------------------------------------------------------------------------------


def test_every_exported_name_resolves() -> None:
    assert len(set(genai_sdk.__all__)) == len(genai_sdk.__all__), "a name is exported twice"
    for name in genai_sdk.__all__:
        assert getattr(genai_sdk, name) is not None, name
    assert sorted(dir(genai_sdk)) == sorted(genai_sdk.__all__)


def test_public_classes_say_they_are_public() -> None:
    for name in genai_sdk.__all__:
        value = getattr(genai_sdk, name)
        if isinstance(value, type):
            assert value.__module__.startswith("genai_sdk."), name
            assert value.__name__ == name, f"genai_sdk.{name} is {value.__name__}"


def test_unknown_attribute_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="NoSuchThing"):
        genai_sdk.NoSuchThing  # noqa: B018


def test_every_error_class_is_exported() -> None:
    errors = {name for name, value in vars(_errors).items() if isinstance(value, type) and issubclass(value, Exception)}
    assert errors <= set(genai_sdk.__all__), f"defined in _errors but not exported: {sorted(errors - set(genai_sdk.__all__))}"


# -- the documentation --------------------------------------------------------------------------------------------


def test_every_exported_name_is_documented() -> None:
    """In the docs (docs/**/*.md), or else in the public contract."""
    docs = "\n".join(_code(page.read_text(encoding="utf-8")) for page in sorted(DOCS.rglob("*.md")))
    missing = [name for name in genai_sdk.__all__ if not _mentions(name, docs)]
    if not missing:
        return
    if not API_MD.is_file():
        pytest.skip(f"{missing} are not in docs/, and {_NO_API_MD}")
    api = _code(API_MD.read_text(encoding="utf-8"))
    undocumented = [name for name in missing if not _mentions(name, api)]
    assert not undocumented, f"exported but documented neither in docs/ nor in {API_MD}: {undocumented}"


# -- the contract -------------------------------------------------------------------------------------------------


def test_every_name_of_the_contract_is_exported() -> None:
    names = _contract_names(_api_text())
    assert len(names) >= 20, f"only {sorted(names)} found in {API_MD}: is the parsing still right?"
    missing = sorted(name for name in names if name not in genai_sdk.__all__)
    assert not missing, f"{API_MD} uses genai.{missing[0]}, which genai_sdk does not export (missing: {missing})"
    for name in names:
        assert getattr(genai_sdk, name) is not None, name


def test_the_docstring_draws_the_tree_of_the_contract() -> None:
    assert _docstring_tree() == _tree(_errors_block(_api_text())), (
        f"the exception tree of genai_sdk/_errors.py's docstring differs from the one of {API_MD}"
    )


def test_the_classes_are_the_tree_drawn() -> None:
    """Each class's base is its parent in the drawing, and every error class is drawn (read from the docstring, so
    this runs without the contract too; the test above ties the docstring to the contract)."""
    drawn = _docstring_tree()
    for name, parent in drawn:
        cls = getattr(genai_sdk, name)
        expected = Exception if parent is None else getattr(genai_sdk, parent)
        assert cls.__bases__ == (expected,), f"{name} derives from {cls.__bases__}, drawn under {expected.__name__}"
    defined = {name for name, value in vars(_errors).items() if isinstance(value, type) and issubclass(value, Exception)}
    assert {name for name, _ in drawn} == defined
    # What the retry layer relies on: a refusal is never a ProviderError, so it can never be retried.
    assert not issubclass(genai_sdk.ContentPolicyError, genai_sdk.ProviderError)

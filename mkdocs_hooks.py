"""MkDocs hook: the Providers section of the navigation lists every page in docs/providers/, titled by its first
heading, so that a new backend's page needs no edit here or in mkdocs.yml."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def on_config(config: Any) -> Any:
    folder = Path(config["docs_dir"]) / "providers"
    pages = []
    for page in sorted(folder.glob("*.md")):
        first = page.read_text(encoding="utf-8").splitlines()[0].lstrip("# ").strip()
        title = first.split(" (")[0] or page.stem
        pages.append({title: f"providers/{page.name}"})
    for item in config["nav"]:
        if isinstance(item, dict) and "Providers" in item:
            item["Providers"] = pages
    return config

"""The documentation site covers every public package and every page is in its navigation."""

from __future__ import annotations

import pkgutil
from pathlib import Path

import rankloss

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
CONFIG = (ROOT / "mkdocs.yml").read_text()


def test_every_public_package_has_an_api_page_in_the_navigation():
    packages = sorted(
        info.name
        for info in pkgutil.iter_modules(rankloss.__path__)
        if not info.name.startswith("_") and info.name not in ("cli",)
    )
    missing = [p for p in packages if not (DOCS / "api" / f"{p}.md").exists()]
    assert not missing, f"no docs/api page for {missing}"
    for package in packages:
        assert f"api/{package}.md" in CONFIG, f"api/{package}.md is not in mkdocs.yml's nav"
        assert f"::: rankloss.{package}" in (DOCS / "api" / f"{package}.md").read_text()


def test_every_page_is_in_the_navigation():
    pages = sorted(str(p.relative_to(DOCS)) for p in DOCS.rglob("*.md"))
    missing = [p for p in pages if p not in CONFIG]
    assert not missing, f"pages missing from mkdocs.yml's nav: {missing}"

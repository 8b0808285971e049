"""docs/losses.md: every Python example runs, and the table at a glance matches the registry.

Each ```python block is executed on its own, in a fresh namespace, so a block must import and
build everything it uses. The blocks assert what the page claims (presets equal their parts,
the ln 2 factor, the top-k rules), so a change in the code that breaks a claim fails here.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

from rankloss.losses import LOSSES, available

PAGE = Path(__file__).resolve().parents[1] / "docs" / "losses.md"
TEXT = PAGE.read_text(encoding="utf-8")
BLOCK = re.compile(r"^```python\n(.*?)^```", flags=re.S | re.M)


def _blocks() -> list[tuple[int, str]]:
    """``(line number, source)`` of every ```python block of the page."""
    return [(TEXT.count("\n", 0, m.start()) + 2, m.group(1)) for m in BLOCK.finditer(TEXT)]


BLOCKS = _blocks()


def test_the_page_has_examples() -> None:
    assert len(BLOCKS) >= 8, f"expected the examples of {PAGE.name}, found {len(BLOCKS)} blocks"


@pytest.mark.parametrize(("line", "source"), BLOCKS, ids=[f"line{n}" for n, _ in BLOCKS])
def test_example_runs(line: int, source: str) -> None:
    torch.manual_seed(0)
    namespace: dict[str, object] = {"__name__": f"docs_losses_line{line}"}
    # Blank lines in front keep the line numbers of a traceback those of the page.
    code = compile("\n" * (line - 1) + source, str(PAGE), "exec")
    exec(code, namespace)  # noqa: S102


def _glance_rows() -> dict[str, list[str]]:
    """The rows of the table at a glance by loss name: ``[family, kind, class, ...]``."""
    section = TEXT.split("## At a glance", 1)[1].split("\n## ", 1)[0]
    rows: dict[str, list[str]] = {}
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        name = re.fullmatch(r"`(\w+)`", cells[0]) if line.startswith("|") else None
        if name:
            rows[name.group(1)] = [cell.strip("`") for cell in cells[1:]]
    return rows


GLANCE_NAMES = [*available(kind="list"), *available(kind="adversarial")]


@pytest.mark.parametrize("name", GLANCE_NAMES)
def test_table_at_a_glance_matches_the_registry(name: str) -> None:
    rows = _glance_rows()
    assert name in rows, f"{name!r} is registered but missing from the table at a glance"
    family, kind, cls = rows[name][:3]
    entry = LOSSES.entry(name)
    info = entry.meta["info"]
    assert (family, kind, cls) == (info.family, info.kind, LOSSES.get(name).__name__)


def test_table_at_a_glance_names_no_unregistered_loss() -> None:
    assert set(_glance_rows()) <= set(GLANCE_NAMES)


def test_agreement_section_is_near_the_end() -> None:
    headings = re.findall(r"^## (.+)$", TEXT, flags=re.M)
    assert "Agreement with rax and allRank" in headings[-2:]

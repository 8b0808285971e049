"""Every ```python block of README.md and docs/ runs on its own, in a fresh namespace.

A block that is a fragment on purpose (it continues the block before it, or needs a GPU, a
download or a second process) is preceded by the line ``<!-- fragment -->`` and is only
compiled. ``docs/losses.md`` has its own, stricter test (``tests/test_docs_losses.py``).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
SKIP_PAGES = {ROOT / "docs" / "losses.md"}
BLOCK = re.compile(r"^```python\n(.*?)^```", flags=re.S | re.M)
FRAGMENT = "<!-- fragment -->"


def _blocks() -> list[tuple[Path, int, str, bool]]:
    found = []
    for page in PAGES:
        if page in SKIP_PAGES:
            continue
        text = page.read_text(encoding="utf-8")
        for match in BLOCK.finditer(text):
            line = text.count("\n", 0, match.start()) + 2
            before = text[: match.start()].rstrip("\n").rsplit("\n", 1)[-1].strip()
            found.append((page, line, match.group(1), before == FRAGMENT))
    return found


BLOCKS = _blocks()


@pytest.mark.parametrize(
    ("page", "line", "source", "fragment"),
    BLOCKS,
    ids=[f"{p.relative_to(ROOT)}:{n}" for p, n, _, _ in BLOCKS],
)
def test_block_runs(page: Path, line: int, source: str, fragment: bool, tmp_path, monkeypatch):
    code = compile("\n" * (line - 1) + source, str(page), "exec")
    if fragment:
        return
    monkeypatch.chdir(tmp_path)  # a block that writes files writes them here
    torch.manual_seed(0)
    exec(code, {"__name__": f"docs_{page.stem}_{line}"})  # noqa: S102

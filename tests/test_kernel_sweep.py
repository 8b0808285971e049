"""The kernel tiling sweep runs end to end under Triton's interpreter (its tiny preset)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "kernel_sweep.py"


def test_tiny_sweep_times_every_tiling(tmp_path: Path) -> None:
    pytest.importorskip("triton", reason="triton is not installed")
    out = tmp_path / "sweep"
    env = {**os.environ, "TRITON_INTERPRET": "1", "CUDA_VISIBLE_DEVICES": ""}
    cmd = [sys.executable, str(SCRIPT), "--tiny", "--repeats", "1", "--out", str(out)]
    subprocess.run(cmd, check=True, capture_output=True, timeout=300, env=env)
    report = json.loads((out / "sweep.json").read_text())
    rows = report["results"]
    assert [r["kernel"] for r in rows] == ["info_nce"] * 2 + ["ranknet"] * 2 + ["supcon"] * 2
    assert all(r["status"] == "ok" and r["ms"] > 0 for r in rows), rows
    table = (out / "sweep.md").read_text()
    assert table.count("fastest") == 3 and "| info_nce | 40 x 20 | default |" in table


def test_without_cuda_or_interpreter_it_says_so(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    env["CUDA_VISIBLE_DEVICES"] = ""
    cmd = [sys.executable, str(SCRIPT), "--tiny", "--out", str(tmp_path / "x")]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode != 0 and "set TRITON_INTERPRET=1" in done.stderr

"""The scale benchmark runs end to end on the tiny preset and its contenders agree."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "scale.py"


def test_tiny_preset_writes_results(tmp_path: Path) -> None:
    out = tmp_path / "scale"
    cmd = [
        sys.executable,
        str(SCRIPT),
        "--preset",
        "tiny",
        "--device",
        "cpu",
        "--in-process",
        "--losses",
        "ranknet,supcon",
        "--out",
        str(out),
    ]
    subprocess.run(cmd, check=True, capture_output=True, timeout=300)
    report = json.loads((out / "scale.json").read_text())
    assert (out / "scale.md").read_text().count("### ") == 2
    rows = report["results"]
    assert {r["loss"] for r in rows} == {"ranknet", "supcon"}
    for row in rows:
        status = row["status"]
        assert status in ("ok", "n/a") or status.startswith("OOM") or status == "timeout"
        if status == "ok":
            assert row["ms"] > 0
    torch_rows = [r for r in rows if r["contender"] == "rankloss-torch"]
    assert torch_rows and all(r["status"] == "ok" and r["agrees"] for r in torch_rows)

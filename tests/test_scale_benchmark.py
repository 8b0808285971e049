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


def _load_scale():
    import importlib.util

    spec = importlib.util.spec_from_file_location("scale_bench", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_hotspots_preset_runs_in_process(tmp_path: Path) -> None:
    out = tmp_path / "hot"
    cmd = [
        sys.executable,
        str(SCRIPT),
        "--preset",
        "hotspots",
        "--device",
        "cpu",
        "--repeats",
        "2",
        "--losses",
        "listnet,info_nce",
        "--out",
        str(out),
    ]
    subprocess.run(cmd, check=True, capture_output=True, timeout=300)
    rows = json.loads((out / "scale.json").read_text())["results"]
    assert {tuple(r["size"]) for r in rows if r["loss"] == "listnet"} == {(32, 32), (64, 128)}
    ok = [r for r in rows if r["status"] == "ok"]
    # in-process timing: no child processes, so no memory figure
    assert ok and all("peak_mb" not in r for r in ok)
    plain = [r for r in rows if r["contender"] == "plain-ce"]
    assert len(plain) == 2 and all(r["status"] == "ok" and r["agrees"] for r in plain)
    rax_rows = [r for r in rows if r["contender"] == "rax"]
    assert len(rax_rows) == 2
    assert all(r["status"] == "n/a" or r["agrees"] for r in rax_rows)
    assert "plain-ce" in (out / "scale.md").read_text()


def test_rax_forms_match_the_naive_forms() -> None:
    import pytest
    import torch

    pytest.importorskip("rax")
    scale = _load_scale()
    for loss in ("ranknet", "lambdarank", "lambdaloss", "listnet"):
        for size in ((3, 7), (2, 12)):
            inp = scale.make_inputs(loss, size, "cpu", torch.float32)
            want = float(scale.NAIVE[loss](inp["scores"], inp["labels"]).detach())
            got = float(scale._rax(loss)(inp).detach())
            assert abs(got - want) <= 1e-4 * max(1.0, abs(want)), (loss, size, got, want)
    with pytest.raises(scale.NotAvailable):
        scale._rax("neural_ndcg")


def test_contenders_option_keeps_the_naive_form_and_the_named_ones(tmp_path: Path) -> None:
    out = tmp_path / "sub"
    cmd = [sys.executable, str(SCRIPT), "--preset", "hotspots", "--device", "cpu"]
    cmd += ["--repeats", "1", "--losses", "listnet", "--contenders", "rax", "--out", str(out)]
    subprocess.run(cmd, check=True, capture_output=True, timeout=300)
    rows = json.loads((out / "scale.json").read_text())["results"]
    assert {r["contender"] for r in rows} == {"naive", "rax"}
    bad = subprocess.run(
        [*cmd[:-2], "--contenders", "rax,nope", "--out", str(tmp_path / "bad")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert bad.returncode == 2 and "nope" in bad.stderr


def test_allrank_without_the_package_is_not_available(tmp_path: Path) -> None:
    import importlib.util

    import pytest

    if importlib.util.find_spec("allrank") is not None:
        pytest.skip("allRank is installed here")
    scale = _load_scale()
    with pytest.raises(scale.NotAvailable, match="allRank"):
        scale._allrank("ranknet", str(tmp_path))


def test_allrank_heavy_imports_are_stood_in(tmp_path: Path) -> None:
    # A package laid out as allRank 1.4.3 is, whose data module needs a package that is not
    # here: the loss still loads, with the padding constant read from that module's source.
    root = tmp_path / "allrank"
    files = {
        "__init__.py": "",
        "data/__init__.py": "",
        "data/dataset_loading.py": "import no_such_package_here\nPADDED_Y_VALUE = -7\n",
        "models/__init__.py": "",
        "models/model_utils.py": "import no_such_package_here\n",
        "models/losses/__init__.py": "DEFAULT_EPS = 1e-10\nfrom .listNet import *  # noqa\n",
        "models/losses/listNet.py": (
            "import torch\n"
            "from allrank.data.dataset_loading import PADDED_Y_VALUE\n"
            "from allrank.models.model_utils import get_torch_device\n"
            "def listNet(y_pred, y_true):\n"
            "    assert PADDED_Y_VALUE == -7 and get_torch_device().type == 'cpu'\n"
            "    return (y_pred * y_true).sum()\n"
        ),
    }
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    code = (
        "import importlib.util, sys, torch\n"
        f"spec = importlib.util.spec_from_file_location('scale_bench', {str(SCRIPT)!r})\n"
        "m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m)\n"
        f"fn = m._allrank('listnet', {str(tmp_path)!r})\n"
        "print(float(fn({'scores': torch.ones(2, 3), 'labels': torch.full((2, 3), 2.0)})))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "12.0"


def test_ratio_column_leaves_out_the_plain_floor() -> None:
    scale = _load_scale()

    def row(contender: str, ms: float) -> dict:
        size = {"loss": "info_nce", "size": [8, 4], "label": "N=8,d=4"}
        return {**size, "contender": contender, "status": "ok", "ms": ms, "agrees": True}

    report = {
        "device": "cpu",
        "device_name": "test",
        "torch": "x",
        "threads": 1,
        "dtype": "float32",
        "in_process": True,
        "results": [
            row("naive", 4.0),
            row("rankloss-torch", 3.0),
            row("sentence-transformers", 2.0),
            row("plain-ce", 1.0),
        ],
    }
    line = next(x for x in scale.to_markdown(report).splitlines() if x.startswith("| N=8"))
    # 3.0 / 2.0 against sentence-transformers, not 3.0 / 1.0 against the floor
    assert line.rstrip().endswith("| 1.50 |"), line


def test_in_process_contenders_are_timed_call_by_call_in_turn(monkeypatch) -> None:
    import torch

    scale = _load_scale()
    calls: list[str] = []

    def fake_build(loss, name, device, allrank_path=None):
        if name == "pml":
            raise scale.NotAvailable("not installed here")

        def fn(inp):
            calls.append(name)
            return (inp["scores"] * 2.0).sum()

        return fn

    monkeypatch.setattr(scale, "build", fake_build)
    cfg = {"loss": "listnet", "size": [2, 4], "threads": 1, "dtype": "float32", "repeats": 3}
    out = scale.measure_interleaved(cfg, ["naive", "rankloss-torch", "pml", "rax"])
    assert out["pml"]["status"] == "n/a" and "not installed" in out["pml"]["why"]
    assert all(out[n]["status"] == "ok" and out[n]["ms"] > 0 for n in ("naive", "rax"))
    # warm-up and three rounds: at least twice the median of the rounds
    assert all(out[n]["seconds"] >= 2 * out[n]["ms"] / 1e3 for n in ("naive", "rax"))
    scores = scale.make_inputs("listnet", (2, 4), "cpu", torch.float32)["scores"].detach()
    want = float((scores * 2).sum())
    assert abs(out["rax"]["value"] - want) < 1e-5
    warmups, rounds = calls[:3], calls[3:]
    assert warmups == ["naive", "rankloss-torch", "rax"]
    # every round calls each contender once, each round starting one further along
    assert rounds == ["naive", "rankloss-torch", "rax", "rankloss-torch", "rax", "naive"] + [
        "rax",
        "naive",
        "rankloss-torch",
    ]

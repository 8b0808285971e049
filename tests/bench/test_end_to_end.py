"""``rankloss bench`` end to end on a tiny suite (digits ships with scikit-learn: offline)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from rankloss.bench.runner import RunContext
from rankloss.bench.suites import SUITES, LossSpec, check_suite
from rankloss.bench.tasks import TASKS
from rankloss.cli import main

TINY = """
[bench]
seeds = [0, 1]

[[suite]]
name = "tiny-retrieval"
base = "quick-retrieval"
budget = { epochs = 1, batch_size = 64, m_per_class = 8 }
model = { embedding_dim = 16, width = 8 }

[[suite.loss]]
name = "contrastive"

[[suite.loss]]
label = "triplet (batch-hard)"
name = "triplet"
hyper = { margin = 0.2, miner = "batch_hard" }

[[suite]]
name = "tiny-imbalanced"
base = "imbalanced"
budget = { epochs = 1 }
model = { embedding_dim = 16 }

[[suite.loss]]
name = "softmax_ce"
"""


def _bench(tmp_path: Path, *extra: str) -> int:
    config = tmp_path / "bench.toml"
    config.write_text(TINY)
    return main(
        ["bench", "--config", str(config), "--out", str(tmp_path / "out"), "--no-progress", *extra]
    )


def test_tiny_suite_writes_every_file_and_the_table(tmp_path: Path, capsys) -> None:
    assert _bench(tmp_path) == 0
    out = tmp_path / "out"
    runs = json.loads((out / "results.json").read_text())["runs"]
    assert len(runs) == (2 + 1) * 2
    for run in runs:
        assert run["environment"]["torch"] and run["seconds"] > 0
        assert set(run["metrics"]) == set(run["config"]["metrics"])
        assert all(0.0 <= v <= 1.0 for v in run["metrics"].values())
        assert run["history"] and "train_loss" in run["history"][0]
    table = (out / "results.md").read_text()
    assert "### tiny-retrieval (digits)" in table and "### tiny-imbalanced (digits)" in table
    assert (
        "| loss | precision@1 | r_precision | map@r | validation/map@r | seeds | s/run |" in table
    )
    assert "| triplet (batch-hard) |" in table and " ± " in table and "**" in table
    assert "### tiny-imbalanced: per-class recall / precision (mean over seeds)" in table
    assert "| softmax_ce | " in table.split("per-class recall")[1]
    imbalanced = [r for r in runs if r["suite"] == "tiny-imbalanced"]
    assert all(f"recall/{c}" in r["extra_metrics"] for r in imbalanced for c in range(10))
    csv_rows = (out / "results.csv").read_text().splitlines()
    assert len(csv_rows) == 1 + 2 * 4 + 1 * 4
    for name in (
        "tiny-retrieval_metrics.png",
        "tiny-retrieval_curves.png",
        "tiny-imbalanced_metrics.png",
    ):
        assert (out / name).read_bytes()[:4] == b"\x89PNG"
    printed = capsys.readouterr().out
    assert "6 runs in" in printed and "| contrastive |" in printed


def test_rerun_resumes_and_skips_finished_runs(tmp_path: Path, capsys) -> None:
    assert _bench(tmp_path, "--losses", "contrastive") == 0
    first = json.loads((tmp_path / "out" / "results.json").read_text())["runs"]
    assert [r["loss"] for r in first] == ["contrastive", "contrastive"]
    capsys.readouterr()
    # The full command afterwards runs only what is missing and keeps the finished runs as is.
    assert _bench(tmp_path) == 0
    assert "resuming: 2 of 6 runs already" in capsys.readouterr().out
    runs = json.loads((tmp_path / "out" / "results.json").read_text())["runs"]
    assert runs[:2] == first and len(runs) == 6
    # Nothing left to do: the third run trains nothing.
    assert _bench(tmp_path) == 0
    assert "resuming: 6 of 6 runs already" in capsys.readouterr().out


def test_unknown_names_fail_clearly(tmp_path: Path, capsys) -> None:
    with pytest.raises(SystemExit) as error:
        main(["bench", "nope", "--out", str(tmp_path)])
    assert error.value.code == 2 and "unknown suite 'nope'" in capsys.readouterr().err
    with pytest.raises(SystemExit) as error:
        main(["bench", "quick", "--losses", "nope", "--out", str(tmp_path)])
    assert error.value.code == 2 and "--losses names no row" in capsys.readouterr().err


def test_list_shows_suites_losses_and_data(capsys) -> None:
    assert main(["list"]) == 0
    text = capsys.readouterr().out
    for word in ("quick-ltr", "retrieval-fashion", "mslr10k-sample", "lambdaloss", "supcon"):
        assert word in text


def test_list_groups_losses_by_kind_then_family(capsys) -> None:
    from rankloss.losses import LOSSES, available

    assert main(["list"]) == 0
    losses = capsys.readouterr().out.split("Losses")[1].split("\n\n")[0].splitlines()
    kinds = [line.split(":")[0].strip() for line in losses if not line.startswith("    ")][1:]
    assert kinds == ["list", "embedding", "adversarial"]
    assert "  list: loss(scores, labels, mask)" in losses
    assert "  embedding: loss(embeddings, labels) or loss(queries, keys=keys)" in losses
    rows = {line.split()[0]: line.split(None, 1)[1] for line in losses if line.startswith("    ")}
    assert set(rows) == set(LOSSES.families())
    assert rows["listwise"].split(", ") == available("listwise")
    assert "softmax_ce" in rows["listwise"] and "kl_div" in rows["listwise"]
    listed = [name for row in rows.values() for name in row.split(", ")]
    assert sorted(listed) == sorted(available())
    current = None
    for line in losses[1:]:
        if not line.startswith("    "):
            current = line.split(":")[0].strip()
            continue
        for name in line.split(None, 1)[1].split(", "):
            assert LOSSES.get(name).kind == current


def _context(tmp_path: Path, suite_name: str, loss: LossSpec, **budget: object) -> RunContext:
    suite = SUITES[suite_name].with_budget(**budget)
    suite = replace(suite, losses=(loss,))
    check_suite(suite)
    return RunContext(suite, loss, "digits", 0, "cpu", tmp_path / "work")


def test_retrieval_views_row_calls_the_loss_with_keys(tmp_path: Path) -> None:
    """nt_xent on two augmented views: the (queries, keys) form."""
    loss = LossSpec("nt_xent (views)", "nt_xent", {"temperature": 0.5}, {"views": True})
    ctx = _context(tmp_path, "quick-retrieval", loss, epochs=1, max_per_split=300)
    result = TASKS["retrieval"](ctx)
    assert set(result.metrics) == {"precision@1", "r_precision", "map@r", "validation/map@r"}
    assert len(result.history) == 1


def test_retrieval_list_loss_and_imbalanced_embedding_loss(tmp_path: Path) -> None:
    """Tasks dispatch on the loss kind: a list loss trains the retrieval task on in-batch
    similarities, an embedding loss trains the imbalanced task by nearest centroid."""
    ctx = _context(
        tmp_path / "a",
        "quick-retrieval",
        LossSpec("listnet", "listnet"),
        epochs=1,
        max_per_split=300,
    )
    assert len(TASKS["retrieval"](ctx).history) == 1
    loss = LossSpec("triplet", "triplet", {"margin": 0.2, "miner": "batch_hard"})
    ctx = _context(tmp_path / "b", "imbalanced", loss, epochs=1)
    result = TASKS["imbalanced"](ctx)
    assert 0.0 <= result.metrics["macro_recall"] <= 1.0

"""The benchmark runner, reports and config, with a fake task (no training)."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import pytest

from rankloss.bench.config import load_config
from rankloss.bench.report import markdown_tables, summarise, write_reports
from rankloss.bench.runner import BenchmarkRunner, RunContext, RunResult, SkipRun
from rankloss.bench.suites import GROUPS, SUITES, LossSpec, SuiteSpec, resolve_suites

SUITE = SuiteSpec(
    name="fake",
    task="fake",
    dataset="toy",
    losses=(LossSpec("a", "mse"), LossSpec("b", "ranknet"), LossSpec("skip me", "x")),
    metrics=("m1", "m2"),
    budget={"epochs": 2},
)


def _fake_task(calls: list):
    def task(ctx: RunContext) -> RunResult:
        calls.append((ctx.loss.label, ctx.seed))
        if ctx.loss.label == "skip me":
            raise SkipRun("optional extra missing")
        base = 0.5 if ctx.loss.label == "a" else 0.7
        return RunResult(
            {"m1": base + 0.01 * ctx.seed, "m2": 1.0 - base},
            history=[{"epoch": 1, "train_loss": 1.0}, {"epoch": 2, "train_loss": 0.5}],
        )

    return task


def test_runner_writes_results_and_resumes(tmp_path: Path) -> None:
    calls: list = []
    runner = BenchmarkRunner(
        tmp_path, {"fake": _fake_task(calls)}, seeds=(0, 1), progress=False, log=lambda _: None
    )
    runs = runner.run([SUITE])
    assert len(runs) == 4  # the skipped row records nothing
    assert len(calls) == 6
    stored = json.loads((tmp_path / "results.json").read_text())["runs"]
    assert [(r["loss"], r["seed"]) for r in stored] == [("a", 0), ("a", 1), ("b", 0), ("b", 1)]
    assert stored[0]["environment"]["torch"]
    # Resume: a new runner over the same folder runs only what is missing (the skipped row).
    calls.clear()
    again = BenchmarkRunner(
        tmp_path, {"fake": _fake_task(calls)}, seeds=(0, 1), progress=False, log=lambda _: None
    )
    again.run([SUITE])
    assert calls == [("skip me", 0), ("skip me", 1)]
    # A changed budget is a different configuration: it runs again, and only the new runs
    # come back (the old ones stay in results.json but never mix into a table).
    calls.clear()
    changed = again.run([SUITE.with_budget(epochs=3)])
    assert len(calls) == 6
    assert len(changed) == 4 and all(r["config"]["budget"]["epochs"] == 3 for r in changed)
    assert len(json.loads((tmp_path / "results.json").read_text())["runs"]) == 8


def test_interrupted_run_keeps_finished_runs(tmp_path: Path) -> None:
    def task(ctx: RunContext) -> RunResult:
        if ctx.loss.label == "b":
            raise KeyboardInterrupt
        return RunResult({"m1": 1.0, "m2": 0.0})

    runner = BenchmarkRunner(
        tmp_path, {"fake": task}, seeds=(0,), progress=False, log=lambda _: None
    )
    with pytest.raises(KeyboardInterrupt):
        runner.run([SUITE])
    stored = json.loads((tmp_path / "results.json").read_text())["runs"]
    assert [r["loss"] for r in stored] == ["a"]
    assert not list(tmp_path.glob(".results.json*"))  # no temporary file left behind


def test_table_marks_best_and_reports_std(tmp_path: Path) -> None:
    calls: list = []
    runner = BenchmarkRunner(
        tmp_path, {"fake": _fake_task(calls)}, seeds=(0, 1), progress=False, log=lambda _: None
    )
    runs = runner.run([SUITE])
    (table,) = summarise(runs)
    assert table.rows == ["a", "b"]
    assert table.mean[("b", "m1")] == pytest.approx(0.705)
    assert table.std[("b", "m1")] == pytest.approx(0.00707107, rel=1e-4)
    text = markdown_tables([table])
    assert "| b | **0.7050 ± 0.0071** | 0.3000 ± 0.0000 |" in text
    assert "| a | 0.5050 ± 0.0071 | **0.5000 ± 0.0000** |" in text  # two equal values
    # One seed has no spread to show: the value alone, not "± 0.0000".
    one = BenchmarkRunner(
        tmp_path / "one", {"fake": _fake_task([])}, seeds=(0,), progress=False, log=lambda _: None
    )
    one_text = markdown_tables(summarise(one.run([SUITE])))
    assert "| a | 0.5000 | **0.5000** | 1 |" in one_text and "±" not in one_text.split("|---")[-1]
    paths = write_reports(tmp_path, runs)
    names = {p.name for p in paths}
    assert {"results.md", "results.csv", "fake_metrics.png", "fake_curves.png"} <= names
    csv_lines = (tmp_path / "results.csv").read_text().splitlines()
    assert csv_lines[0] == "suite,dataset,loss,metric,mean,std,seeds,seconds"
    assert len(csv_lines) == 1 + 2 * 2
    assert (tmp_path / "fake_metrics.png").read_bytes()[:4] == b"\x89PNG"


def test_corrupt_results_file_is_reported(tmp_path: Path) -> None:
    # It is moved aside and rebuilt (tests/bench/test_output_folder.py); a warning says why.
    (tmp_path / "results.json").write_text("{not json")
    with pytest.warns(UserWarning, match="results.json: not valid JSON"):
        BenchmarkRunner(tmp_path, {}, progress=False)


def test_resolve_suites_expands_groups_and_rejects_unknown() -> None:
    assert [s.name for s in resolve_suites(["quick"])] == list(GROUPS["quick"])
    with pytest.raises(KeyError, match="unknown suite 'nope'"):
        resolve_suites(["nope"])
    for suite in SUITES.values():
        assert suite.losses and suite.metrics
        assert suite.primary in suite.metrics


def test_config_from_toml(tmp_path: Path) -> None:
    path = tmp_path / "bench.toml"
    path.write_text(
        """
[bench]
seeds = [0, 1]

[[suite]]
name = "mine"
base = "ltr"
budget = { epochs = 2 }

[[suite.loss]]
label = "ranknet sigma=2"
name = "ranknet"
hyper = { sigma = 2.0 }

[[suite]]
name = "custom"
task = "ltr"
dataset = "mslr10k-sample"
metrics = ["ndcg@10"]
[[suite.loss]]
name = "listnet"
"""
    )
    config = load_config(path)
    assert config.seeds == [0, 1]
    mine, custom = config.suites
    assert mine.budget["epochs"] == 2 and mine.budget["lr"] == SUITES["ltr"].budget["lr"]
    assert mine.losses == (LossSpec("ranknet sigma=2", "ranknet", {"sigma": 2.0}),)
    assert custom.primary == "ndcg@10" and custom.losses[0].label == "listnet"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[[suite]]\nname='x'\nbase='ltr'\nepochs=3\n", r"unknown key\(s\) \['epochs'\]"),
        ("[[suite]]\nname='x'\ntask='ltr'\n", "needs 'dataset'"),
        ("[[suite]]\nname='x'\nbase='nope'\n", "unknown base suite 'nope'"),
        ("[bench]\nseeds=[0]\n", "no suites"),
        ("[[suite\n", "bench.toml"),
    ],
)
def test_config_errors_name_the_problem(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bench.toml"
    path.write_text(text)
    with pytest.raises(ValueError, match=message):
        load_config(path)


def test_every_setting_that_changes_a_result_changes_the_run_key() -> None:
    loss = SUITE.losses[0]
    base = SuiteSpec.config_hash(SUITE.run_config(loss, "toy"))
    variants = [
        replace(SUITE, primary="m2"),
        replace(SUITE, metrics=("m1",)),
        replace(SUITE, model={"hidden": [8]}),
        SUITE.with_budget(lr=0.5),
    ]
    for variant in variants:
        assert SuiteSpec.config_hash(variant.run_config(loss, "toy")) != base
    assert SuiteSpec.config_hash(SUITE.run_config(loss, "other")) != base
    other_loss = LossSpec("a", "mse", {"reduction": "sum"})
    assert SuiteSpec.config_hash(SUITE.run_config(other_loss, "toy")) != base


def test_a_resumed_run_counts_the_interrupted_process_seconds(tmp_path: Path) -> None:
    from rankloss.bench.tasks import _earlier_seconds
    from rankloss.train import TrainResult

    history = [{"epoch": e, "seconds": s} for e, s in ((1, 2.0), (2, 3.0), (3, 4.0))]
    fit = TrainResult(history, best_epoch=3, best_value=0.5, stopped_early=False, epochs_run=3)
    assert _earlier_seconds(fit) == 0.0
    assert _earlier_seconds(replace(fit, resumed_from=2)) == 5.0  # epochs 1 and 2

    def task(ctx: RunContext) -> RunResult:
        return RunResult({"m1": 0.5, "m2": 0.5}, earlier_seconds=100.0)

    suite = replace(SUITE, losses=(LossSpec("a", "mse"),))
    runner = BenchmarkRunner(
        tmp_path, {"fake": task}, seeds=(0,), progress=False, log=lambda _: None
    )
    (run,) = runner.run([suite])
    assert 100.0 <= run["seconds"] < 110.0


def test_a_diverging_run_is_recorded_and_the_benchmark_goes_on(tmp_path: Path) -> None:
    def task(ctx):
        if ctx.loss.label == "a" and ctx.seed == 1:
            raise FloatingPointError("loss is inf at epoch 1, step 2")
        return RunResult({"m1": 0.5, "m2": 0.25})

    logged: list[str] = []
    runner = BenchmarkRunner(
        tmp_path, {"fake": task}, seeds=(0, 1), progress=False, log=logged.append
    )
    runs = runner.run([SUITE])
    assert len(runs) == 2 * len(SUITE.losses)  # every row and seed ran
    (bad,) = [r for r in runs if r["loss"] == "a" and r["seed"] == 1]
    assert all(math.isnan(v) for v in bad["metrics"].values())
    assert bad["notes"].startswith("diverged: loss is inf")
    assert any("diverged" in line for line in logged)
    (table,) = summarise(runs)
    assert table.non_finite[("a", "m1")] == 1 and table.mean[("a", "m1")] == 0.5


def test_max_seeds_does_not_change_what_a_run_is() -> None:
    row = SUITE.losses[0]
    few, more = SUITE.with_budget(max_seeds=2), SUITE.with_budget(max_seeds=5)
    assert SuiteSpec.config_hash(few.run_config(row, "toy")) == SuiteSpec.config_hash(
        more.run_config(row, "toy")
    )
    assert SuiteSpec.config_hash(SUITE.with_budget(lr=0.5).run_config(row, "toy")) != (
        SuiteSpec.config_hash(SUITE.run_config(row, "toy"))
    )

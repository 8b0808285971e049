"""Tuned comparisons (``rankloss bench --tune N``): seeded TPE trials per row, chosen on the
validation split, written atomically, resumed without rerunning a trial."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from rankloss.bench.runner import BenchmarkRunner, RunContext, RunResult, SkipRun
from rankloss.bench.suites import TASK_SETTINGS, LossSpec, SuiteSpec
from rankloss.bench.tune import (
    Tuner,
    apply_setting,
    check_space,
    read_tuning,
    row_defaults,
    row_space,
)
from rankloss.cli import main
from rankloss.losses import LOSSES, get

pytest.importorskip("optuna", reason="tuning needs optuna (the bench extra)")

SUITE = SuiteSpec(
    name="stub",
    task="ltr",
    dataset="toy",
    losses=(LossSpec("ranknet", "ranknet"), LossSpec("listnet", "listnet")),
    metrics=("ndcg@10",),
    budget={"epochs": 1, "lr": 1e-3},
    primary="ndcg@10",
)


def _validation(ctx: RunContext) -> float:
    """A smooth score of the setting: best at lr = 1e-3, and at sigma / temperature 1."""
    hyper = ctx.loss.hyper
    shape = hyper.get("sigma", hyper.get("label_temperature", 1.0))
    return 1.0 - abs(math.log10(ctx.suite.budget["lr"]) + 3) / 4 - abs(math.log(shape)) / 4


def _stub(calls: list, *, fail_at: int | None = None, value=None):
    """A task whose test metric is the opposite of its validation metric: a tuner that looked
    at the test split would choose the worst setting."""

    def task(ctx: RunContext) -> RunResult:
        calls.append((ctx.loss.label, ctx.seed, dict(ctx.suite.budget), dict(ctx.loss.hyper)))
        if fail_at is not None and len(calls) == fail_at:
            raise KeyboardInterrupt
        val = _validation(ctx) if value is None else value
        return RunResult({"ndcg@10": -val}, validation={"ndcg@10": val})

    return task


def _runner(out: Path, task, seeds=(3, 4)) -> BenchmarkRunner:
    return BenchmarkRunner(out, {"ltr": task}, seeds=seeds, progress=False, log=lambda _: None)


def _tune(out: Path, task, trials: int, suite: SuiteSpec = SUITE) -> tuple[Tuner, list[SuiteSpec]]:
    """Tune ``suite`` into ``out``: the tuner (its entries) and the suites to run."""
    tuner = Tuner(_runner(out, task), trials, log=lambda _: None)
    return tuner, tuner.tune([suite])


def test_trials_select_on_validation_and_write_tuning_json(tmp_path: Path) -> None:
    calls: list = []
    tuner, tuned = _tune(tmp_path, _stub(calls), 4)
    assert len(calls) == 2 * 4  # every row the same number of trials
    assert {seed for _, seed, _, _ in calls} == {3}  # the first seed of the benchmark
    stored = read_tuning(tmp_path / "tuning.json")
    assert [e["row"] for e in stored] == ["ranknet", "listnet"]
    for entry in stored:
        trials = entry["trials"]
        assert [t["number"] for t in trials] == [0, 1, 2, 3]
        values = [t["value"] for t in trials]
        assert all(t["validation"]["ndcg@10"] == t["value"] for t in trials)
        # The choice is the best validation score: the worst on the test split here.
        assert entry["best"]["value"] == max(values)
        assert entry["best"]["number"] == values.index(max(values))
        assert "test" not in json.dumps(trials)
        assert set(entry["best"]["setting"]["budget"]) == {"lr", "max_items"}
        assert all(t["seconds"] >= 0 for t in trials) and entry["seconds_per_trial"] >= 0
    ranknet = stored[0]
    assert set(ranknet["best"]["setting"]["hyper"]) == {"sigma"}
    assert ranknet["space"]["hyper"] == {
        "sigma": list(LOSSES.entry("ranknet").meta["info"].search_space["sigma"])
    }
    # Each trial trained with the setting it records.
    for (_, _, budget, hyper), trial in zip(calls[:4], ranknet["trials"]):
        assert budget["lr"] == trial["setting"]["budget"]["lr"]
        assert hyper == trial["setting"]["hyper"]
    # One suite per row, with the chosen setting, for the runs on every seed.
    assert [s.losses[0].label for s in tuned] == ["ranknet", "listnet"]
    assert tuned[0].budget["lr"] == ranknet["best"]["setting"]["budget"]["lr"]
    assert tuned[0].losses[0].hyper["sigma"] == ranknet["best"]["setting"]["hyper"]["sigma"]
    assert tuned[0].budget["epochs"] == 1  # the rest of the budget is the suite's


def test_trial_zero_starts_from_the_rows_own_settings(tmp_path: Path) -> None:
    calls: list = []
    rows = (
        LossSpec("ranknet", "ranknet"),  # sigma: the constructor's default, 1.0
        LossSpec("ranknet 2", "ranknet", {"sigma": 2.0}),  # the row's own value
        LossSpec("ranknet 9", "ranknet", {"sigma": 9.0}),  # outside [0.25, 4]: sampled
    )
    suite = SuiteSpec(
        "stub", "ltr", "toy", rows, ("ndcg@10",), {"epochs": 1, "lr": 1e-3}, primary="ndcg@10"
    )
    tuner, _ = _tune(tmp_path, _stub(calls), 2, suite)
    firsts = [calls[0], calls[2], calls[4]]
    assert [budget["lr"] for _, _, budget, _ in firsts] == [1e-3, 1e-3, 1e-3]
    assert [hyper["sigma"] for _, _, _, hyper in firsts[:2]] == [1.0, 2.0]
    assert 0.25 <= firsts[2][3]["sigma"] <= 4.0
    # max_items is not in the budget: trial 0 samples it.
    assert all(16 <= budget["max_items"] <= 128 for _, _, budget, _ in firsts)
    # The untuned row's setting is a trial, so the choice is at least as good on validation.
    default = tuner.entries[0]["trials"][0]
    assert default["setting"]["hyper"] == {"sigma": 1.0}
    assert tuner.entries[0]["best"]["value"] >= default["value"]
    # A budget value a row sets in its options wins over the suite's; a mode is not a value.
    recsys = SuiteSpec(
        "r", "recsys", "toy", (), ("ndcg@10",), {"lr": 5e-3, "negatives": 20}, primary="ndcg@10"
    )
    row = LossSpec("s", "sampled_softmax", options={"negatives": 100, "temperature": 4})
    assert row_defaults(recsys, row, row_space(recsys, row)) == {
        "budget/lr": 5e-3,
        "budget/negatives": 100,
        "budget/temperature": 4.0,
    }
    mode = LossSpec("b", "sampled_softmax", options={"negatives": "in_batch"})
    assert row_defaults(recsys, mode, row_space(recsys, mode)) == {"budget/lr": 5e-3}


def test_a_lightgbm_trial_zero_is_its_untuned_setting() -> None:
    from rankloss.bench.suites import LIGHTGBM_DEFAULTS, SUITES

    suite = SUITES["quick-ltr"]
    (row,) = [r for r in suite.losses if r.name == "lightgbm"]
    defaults = row_defaults(suite, row, row_space(suite, row))
    space = TASK_SETTINGS["ltr"].baseline_search_spaces["lightgbm"]
    assert defaults == {f"hyper/{name}": LIGHTGBM_DEFAULTS[name] for name in space}


def test_a_diverging_trial_fails_and_the_search_goes_on(tmp_path: Path) -> None:
    calls: list = []

    def task(ctx: RunContext) -> RunResult:
        calls.append(ctx.loss.label)
        if len(calls) == 2:
            raise FloatingPointError("loss is inf at epoch 1, step 2")
        return RunResult({"ndcg@10": 0.5}, validation={"ndcg@10": 0.5}, earlier_seconds=7.0)

    tuner, tuned = _tune(tmp_path, task, 3)
    assert len(calls) == 6 and len(tuned) == 2  # every trial of both rows ran
    trials = tuner.entries[0]["trials"]
    assert [t["value"] for t in trials] == [0.5, None, 0.5]
    assert trials[1]["state"] == "fail"
    # A trial resumed from a checkpoint counts the interrupted process's seconds.
    assert trials[0]["seconds"] >= 7.0


def test_trials_are_seeded_and_reproducible(tmp_path: Path) -> None:
    first, _ = _tune(tmp_path / "a", _stub([]), 3)
    second, _ = _tune(tmp_path / "b", _stub([]), 3)
    strip = [[(t["params"], t["value"]) for t in e["trials"]] for e in first.entries]
    assert strip == [[(t["params"], t["value"]) for t in e["trials"]] for e in second.entries]
    # Rows differ (their own seeds and spaces); trials within a row differ.
    params = [t["params"]["budget/lr"] for t in first.entries[0]["trials"]]
    assert len(set(params)) == 3


@pytest.mark.badinput("resume")
def test_resume_never_reruns_a_trial_and_asks_what_an_uninterrupted_search_asks(
    tmp_path: Path,
) -> None:
    whole, _ = _tune(tmp_path / "whole", _stub([]), 3)
    calls: list = []
    with pytest.raises(KeyboardInterrupt):  # stopped while training the second trial
        _tune(tmp_path / "cut", _stub(calls, fail_at=2), 3)
    folder = next((tmp_path / "cut" / "tuning").iterdir())
    assert sorted(p.name for p in folder.glob("trial-*.json")) == ["trial-0000.json"]
    calls.clear()
    resumed, _ = _tune(tmp_path / "cut", _stub(calls), 3)
    assert len(calls) == 2 + 3  # two trials left of the first row, three of the second
    assert [[t["params"] for t in e["trials"]] for e in resumed.entries] == [
        [t["params"] for t in e["trials"]] for e in whole.entries
    ]
    # Finished: nothing runs again; more trials extend the same search.
    calls.clear()
    _tune(tmp_path / "cut", _stub(calls), 3)
    assert calls == []
    more, _ = _tune(tmp_path / "cut", _stub(calls), 4)
    assert len(calls) == 2
    assert [t["params"] for t in more.entries[0]["trials"][:3]] == [
        t["params"] for t in whole.entries[0]["trials"]
    ]


def test_tuned_bench_runs_the_choice_on_every_seed(tmp_path: Path) -> None:
    calls: list = []
    runner = _runner(tmp_path, _stub(calls))
    tuner = Tuner(runner, 2, log=lambda _: None)
    runs = runner.run(tuner.tune([SUITE]))
    assert [(r["loss"], r["seed"]) for r in runs] == [
        ("ranknet", 3),
        ("ranknet", 4),
        ("listnet", 3),
        ("listnet", 4),
    ]
    chosen = tuner.entries[0]["best"]["setting"]
    assert runs[0]["config"]["budget"]["lr"] == chosen["budget"]["lr"]
    assert runs[0]["config"]["loss"]["hyper"] == chosen["hyper"]
    assert runs[0]["validation_metrics"] == {"ndcg@10": tuner.entries[0]["best"]["value"]}


def test_rows_with_nothing_to_tune_failed_trials_and_skipped_rows(tmp_path: Path) -> None:
    suite = SuiteSpec(
        name="stub",
        task="ltr",
        dataset="toy",
        losses=(LossSpec("random", "random"),),
        metrics=("ndcg@10",),
        budget={"epochs": 1, "lr": 1e-3},
        primary="ndcg@10",
    )
    calls: list = []
    tuner, tuned = _tune(tmp_path / "a", _stub(calls), 2, suite)
    assert calls == [] and tuner.entries[0]["status"] == "nothing to tune"
    assert tuned == [suite]
    # A diverged trial (non-finite validation score) fails; with no success, defaults run.
    tuner, tuned = _tune(tmp_path / "b", _stub([], value=math.nan), 2, replace_rows(SUITE, 1))
    entry = tuner.entries[0]
    assert entry["status"] == "no successful trial" and entry["best"] is None
    assert [t["state"] for t in entry["trials"]] == ["fail", "fail"]
    assert tuned == [replace_rows(SUITE, 1)]

    def skipping(ctx: RunContext) -> RunResult:
        raise SkipRun("an optional extra is missing")

    tuner, tuned = _tune(tmp_path / "c", skipping, 2)
    assert [e["status"] for e in tuner.entries] == ["skipped", "skipped"]
    assert tuner.entries[0]["note"] == "an optional extra is missing"
    assert tuned == []


def replace_rows(suite: SuiteSpec, n: int) -> SuiteSpec:
    from dataclasses import replace

    return replace(suite, losses=suite.losses[:n])


def test_a_task_without_validation_metrics_is_refused(tmp_path: Path) -> None:
    def test_only(ctx: RunContext) -> RunResult:
        return RunResult({"ndcg@10": 0.5})

    with pytest.raises(KeyError, match="reports no validation 'ndcg@10'.*never on the test"):
        _tune(tmp_path, test_only, 1)


def test_row_spaces_combine_task_and_loss_dimensions() -> None:
    space = row_space(SUITE, LossSpec("ranknet", "ranknet"))
    assert space == {
        "budget": dict(TASK_SETTINGS["ltr"].search_space),
        "hyper": dict(LOSSES.entry("ranknet").meta["info"].search_space),
    }
    # A baseline that trains no loss searches its own space, not the learning rate.
    lightgbm = row_space(SUITE, LossSpec("lightgbm lambdamart", "lightgbm"))
    assert lightgbm == {
        "budget": {},
        "hyper": dict(TASK_SETTINGS["ltr"].baseline_search_spaces["lightgbm"]),
    }
    assert row_space(SUITE, LossSpec("random", "random")) == {"budget": {}, "hyper": {}}
    # A baseline that trains a registered loss searches that loss's space.
    recsys = SuiteSpec("r", "recsys", "toy", (), ("ndcg@10",), primary="ndcg@10")
    sampled = row_space(recsys, LossSpec("sampled softmax", "sampled_softmax"))
    assert set(sampled["budget"]) == {"lr", "negatives", "lists_per_user", "temperature"}
    # A row option in a mode's words is left alone; a numeric one takes the searched value.
    in_batch = LossSpec("in-batch", "sampled_softmax", options={"negatives": "in_batch"})
    assert "negatives" not in row_space(recsys, in_batch)["budget"]
    fixed = LossSpec("sampled", "sampled_softmax", options={"negatives": 100, "temperature": 4.0})
    tuned_row = apply_setting(
        recsys, fixed, {"budget": {"negatives": 7, "lr": 0.01, "temperature": 0.5}}
    )
    assert tuned_row.losses[0].options == {"negatives": 7, "temperature": 0.5}
    assert tuned_row.budget == {"lr": 0.01}
    # The row's fixed value is the default; the search replaces it, other keys stay.
    row = LossSpec("triplet", "triplet", {"margin": 0.2, "miner": "batch_hard"})
    tuned = apply_setting(SUITE, row, {"hyper": {"margin": 0.05}, "budget": {"lr": 0.01}})
    assert tuned.losses[0].hyper == {"margin": 0.05, "miner": "batch_hard"}
    assert tuned.budget == {"epochs": 1, "lr": 0.01}


def _corners(dim: tuple) -> list:
    return list(dim[1]) if dim[0] == "choice" else [dim[1], dim[2]]


@pytest.mark.parametrize("name", LOSSES.names())
def test_every_registered_search_space_is_valid_and_builds_at_its_ends(name: str) -> None:
    info = LOSSES.entry(name).meta["info"]
    check_space(name, info.search_space)
    for key, dim in info.search_space.items():
        for value in _corners(dim):
            get(name, **{**info.example, key: value})  # a value the search may pick builds


def test_task_search_spaces_name_budget_keys_and_baselines() -> None:
    for task, settings in TASK_SETTINGS.items():
        assert "lr" in settings.search_space, task  # the learning rate is searched for all
        check_space(task, settings.search_space)
        assert set(settings.search_space) <= settings.budget, task
        assert set(settings.baseline_search_spaces) <= set(settings.baselines), task
        for baseline, space in settings.baseline_search_spaces.items():
            assert settings.baselines[baseline] is None, baseline
            check_space(baseline, space)


@pytest.mark.badinput("bench")
@pytest.mark.parametrize(
    ("space", "expected"),
    [
        ({"lr": ("log", 0.0, 1.0)}, "'lr' must be ('log', low, high) with low > 0"),
        ({"lr": ("log", 1.0, 0.1)}, "a range with low < high"),
        ({"n": ("int", 1.5, 4)}, "('int', low, high) with integers"),
        ({"n": ("int", 1, math.inf)}, "finite"),
        ({"w": ("choice", ())}, "('choice', (a, b, ...)) with a value"),
        ({"w": ("choice", ([1],))}, "a choice of str, number, bool or None"),
        ({"w": ("uniform", 0, 1)}, "of kind 'log', 'float', 'int' or 'choice'"),
        ({"w": 0.5}, "a tuple such as ('log', 1e-4, 1e-2)"),
        ({"w": ("float", "a", 1)}, "('float', low, high) with numbers"),
    ],
)
def test_bad_search_dimensions_are_refused(space: dict, expected: str) -> None:
    with pytest.raises(ValueError, match="^where: search dimension") as error:
        check_space("where", space)
    assert expected in str(error.value)


@pytest.mark.badinput("bench")
@pytest.mark.parametrize("trials", [0, -1, 2.5, True])
def test_bad_trial_counts_are_refused(tmp_path: Path, trials) -> None:
    with pytest.raises((TypeError, ValueError), match="Tuner: trials must be"):
        Tuner(_runner(tmp_path, _stub([])), trials)


def _refused(capsys, argv: list[str]) -> str:
    with pytest.raises(SystemExit) as error:
        main(argv)
    assert error.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    return err.strip()


@pytest.mark.badinput("cli")
@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--tune", "0"], "--tune must be a positive integer, got 0"),
        (["--tune", "-2"], "--tune must be a positive integer, got -2"),
        (["--tune", "many"], "argument --tune: invalid int value: 'many'"),
        (["--tune", "2", "--nproc", "2"], "--tune runs in one process"),
    ],
)
def test_bad_tune_option_is_refused(tmp_path: Path, capsys, args: list[str], expected) -> None:
    out = tmp_path / "out"
    line = _refused(capsys, ["bench", "quick-ltr", "--out", str(out), "--no-progress", *args])
    assert expected in line
    assert not out.exists()


@pytest.mark.badinput("cli")
def test_tune_without_optuna_is_refused(tmp_path: Path, capsys, monkeypatch) -> None:
    import importlib.util

    find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "optuna" else find_spec(name)
    )
    out = tmp_path / "out"
    line = _refused(capsys, ["bench", "quick-ltr", "--out", str(out), "--tune", "2"])
    assert "--tune needs optuna: pip install 'rankloss[bench]'" in line
    assert not (out / "tuning.json").exists()


@pytest.mark.badinput("bench")
@pytest.mark.parametrize(
    ("value", "expected"),
    [("0", "tune must be a positive integer, got 0"), ("'x'", "tune must be an int, got str")],
)
def test_bad_tune_key_in_the_config_is_refused(tmp_path: Path, capsys, value, expected) -> None:
    config = tmp_path / "bench.toml"
    config.write_text(f"[bench]\ntune = {value}\nsuites = ['quick-ltr']\n")
    line = _refused(capsys, ["bench", "--config", str(config), "--out", str(tmp_path / "o")])
    assert f"{config}: [bench]: {expected}" in line


TINY = """
[bench]
seeds = [0, 1]
tune = 2

[[suite]]
name = "tiny-ltr"
base = "quick-ltr"
budget = { epochs = 1, batch_size = 16 }

[[suite.loss]]
name = "ranknet"

[[suite.loss]]
name = "listnet"
"""


@pytest.mark.slow
def test_tiny_tuned_bench_end_to_end(tmp_path: Path, capsys) -> None:
    config = tmp_path / "bench.toml"
    config.write_text(TINY)
    out = tmp_path / "out"
    argv = ["bench", "--config", str(config), "--out", str(out), "--no-progress", "--no-plots"]
    assert main(argv) == 0
    entries = read_tuning(out / "tuning.json")
    assert [(e["row"], len(e["trials"]), e["status"]) for e in entries] == [
        ("ranknet", 2, "tuned"),
        ("listnet", 2, "tuned"),
    ]
    for entry in entries:  # the real task reports validation metrics; the best one is chosen
        assert entry["best"]["value"] == max(t["validation"]["ndcg@10"] for t in entry["trials"])
    report = (out / "results.md").read_text()
    assert report.startswith("# rankloss bench results\n\n## Which loss?")
    assert "## Tuning" in report and "| ranknet | lr=" in report
    runs = json.loads((out / "results.json").read_text())["runs"]
    assert len(runs) == 4 and all(r["validation_metrics"] for r in runs)
    printed = capsys.readouterr().out
    assert "tuned settings (2 seeded TPE trials per row" in printed
    # Resumed: no trial and no run again.
    assert main(argv) == 0
    assert read_tuning(out / "tuning.json") == entries


def test_corrupt_tuning_file_is_moved_aside(tmp_path: Path) -> None:
    (tmp_path / "tuning.json").write_text("{not json")
    with pytest.warns(UserWarning, match="tuning.json: .*moved it to tuning.json.corrupt-"):
        assert read_tuning(tmp_path / "tuning.json") == []
    assert list(tmp_path.glob("tuning.json.corrupt-*"))
    tuner, _ = _tune(tmp_path, _stub([]), 1)
    assert read_tuning(tmp_path / "tuning.json") == tuner.entries

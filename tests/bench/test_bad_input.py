"""``rankloss bench`` refuses bad command-line and config values before any work: exit code 2
and one line on stderr that names the option (or the TOML key and file) and what it takes."""

from __future__ import annotations

from pathlib import Path

import pytest

from rankloss.bench import runner as runner_module
from rankloss.cli import main

CONFIG = """
[[suite]]
name = "x"
base = "quick-ltr"
"""


class WorkStarted(Exception):
    """Raised when the bench gets as far as building its runner (the work would start)."""


@pytest.fixture
def no_work(monkeypatch: pytest.MonkeyPatch) -> list[dict]:
    """Stop the bench where the runner would be built; record what it was given."""
    built: list[dict] = []

    def init(self, out, tasks, **kwargs) -> None:
        built.append({"out": out, **kwargs})
        raise WorkStarted

    monkeypatch.setattr(runner_module.BenchmarkRunner, "__init__", init)
    return built


def _refused(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    """Run ``argv``; assert exit code 2 and one line on stderr; return that line."""
    with pytest.raises(SystemExit) as error:
        main(argv)
    assert error.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


def _bench(tmp_path: Path, *extra: str, config: str = CONFIG) -> list[str]:
    path = tmp_path / "bench.toml"
    path.write_text(config)
    out = tmp_path / "out"
    return ["bench", "--config", str(path), "--out", str(out), "--no-progress", *extra]


@pytest.mark.badinput("cli")
@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--seeds", "0"], "--seeds must be a positive integer, got 0"),
        (["--seeds", "-1"], "--seeds must be a positive integer, got -1"),
        (["--epochs", "-3"], "--epochs must be a positive integer, got -3"),
        (["--epochs", "0"], "--epochs must be a positive integer, got 0"),
        (["--threads", "0"], "--threads must be a positive integer, got 0"),
        (["--threads", "-1"], "--threads must be a positive integer, got -1"),
        (["--seeds", "abc"], "argument --seeds: invalid int value: 'abc'"),
        (["--device", "tpu"], "argument --device: invalid choice: 'tpu' (choose from 'cpu', "),
        (["nope"], "SUITE: unknown suite 'nope'; known: all, imbalanced, ltr, quick"),
        (["--losses", "nope"], "--losses names no row of these suites: nope; rows: "),
    ],
    ids=lambda v: " ".join(v) if isinstance(v, list) else "",
)
def test_bad_option_is_refused_before_any_work(
    tmp_path: Path, capsys, no_work, args: list[str], expected: str
) -> None:
    line = _refused(capsys, _bench(tmp_path, *args))
    assert line.startswith("rankloss bench: ")
    assert expected in line
    assert not no_work and not (tmp_path / "out").exists()


@pytest.mark.badinput("bench")
@pytest.mark.parametrize(
    ("toml", "expected"),
    [
        ("[bench]\nseeds = [0, 0]\n", "[bench]: seeds must be a non-empty list of distinct"),
        ("[bench]\nseeds = 'abc'\n", "[bench]: seeds must be a non-empty list of distinct"),
        ("[bench]\nseeds = [0, -1]\n", "[bench]: seeds must be a non-empty list of distinct"),
        ("[bench]\nseeds = []\n", "[bench]: seeds must be a non-empty list of distinct"),
        ("[bench]\ndevice = 'tpu'\n", "[bench]: device must be one of ['cpu', 'cuda', 'auto']"),
        ("[bench]\nout = 3\n", "[bench]: out must be a folder name"),
        ("[bench]\nepochz = 3\n", "[bench]: unknown key(s) ['epochz']; allowed: ['device'"),
        (CONFIG + "epochz = 3\n", "[[suite]] 'x': unknown key(s) ['epochz']; allowed: ['base'"),
        (CONFIG + "budget = { epochz = 3 }\n", "budget: unknown key(s) ['epochz']; allowed:"),
        (CONFIG + "budget = { epochs = -3 }\n", "budget: epochs must be a positive integer"),
        (CONFIG + "budget = { lr = 0.0 }\n", "budget: lr must be > 0, got 0.0"),
        (CONFIG + "budget = { ema_decay = 1.0 }\n", "budget: ema_decay must be in [0, 1), got 1.0"),
        (CONFIG + "[[suite.loss]]\nname = 'nope'\n", "loss 'nope': unknown loss 'nope'; known:"),
        (CONFIG + "metrics = []\n", "metrics must be a non-empty list of metric names"),
        (
            "[[suite]]\nname = 'x'\ntask = 'ltr'\ndataset = 'mslr10k-sample'\nmetrics = []\n"
            "[[suite.loss]]\nname = 'ranknet'\n",
            "metrics must be a non-empty list of metric names",
        ),
        (CONFIG + "metrics = 'ndcg@10'\n", "metrics must be a non-empty list of metric names"),
        (
            CONFIG + "metrics = ['ndcg@10', 'nonsense']\n",
            "metric 'nonsense' is not one the 'ltr' task reports; it reports ndcg@K, map, mrr",
        ),
        (
            CONFIG + "metrics = ['ndcg@10', 'recall@10']\n",
            "metric 'recall@10' is not one the 'ltr' task reports",
        ),
        (
            "[[suite]]\nname = 'x'\nbase = 'text'\nbudget = { max_pairs = 0 }\n",
            "budget: max_pairs must be a positive integer, got 0",
        ),
        (
            "[[suite]]\nname = 'x'\nbase = 'text'\nbudget = { max_length = 2.5 }\n",
            "budget: max_length must be",
        ),
        (
            "[[suite]]\nname = 'x'\nbase = 'text'\nmetrics = ['mrr@5']\nprimary = 'mrr@5'\n",
            "metric 'mrr@5' is not one the 'text' task reports; it reports mrr@10, recall@K",
        ),
        (
            CONFIG + "[[suite.loss]]\nname = 'ranknet'\nhyper = { zz = 1 }\n",
            "RankNetLoss got an unknown hyper-parameter 'zz'; "
            "valid: ['impl', 'k', 'reduction', 'sigma', 'tile_size']",
        ),
    ],
    ids=[
        "seeds-duplicate",
        "seeds-string",
        "seeds-negative",
        "seeds-empty",
        "device-tpu",
        "out-number",
        "bench-epochz",
        "suite-epochz",
        "budget-epochz",
        "budget-epochs-negative",
        "budget-lr-zero",
        "budget-ema-decay-one",
        "metrics-empty",
        "metrics-empty-no-base",
        "metrics-string",
        "metric-unknown",
        "metric-of-another-task",
        "text-max-pairs-zero",
        "text-max-length-float",
        "text-mrr-cutoff",
        "unknown-loss",
        "unknown-hyper",
    ],
)
def test_bad_config_value_is_refused_before_any_work(
    tmp_path: Path, capsys, no_work, toml: str, expected: str
) -> None:
    config = toml if "[[suite]]" in toml else toml + CONFIG
    line = _refused(capsys, _bench(tmp_path, config=config))
    assert line.startswith(f"rankloss bench: {tmp_path / 'bench.toml'}: ")
    assert expected in line
    assert not no_work and not (tmp_path / "out").exists()


@pytest.mark.badinput("bench")
def test_a_lightgbm_row_without_lightgbm_is_refused_unless_optional(
    tmp_path: Path, capsys, no_work, monkeypatch: pytest.MonkeyPatch
) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "lightgbm" else real(name, *a)
    )
    row = "[[suite.loss]]\nname = 'lightgbm'\nlabel = 'gbdt'\n"
    line = _refused(capsys, _bench(tmp_path, config=CONFIG + row))
    assert "loss 'gbdt' needs lightgbm, which is not installed" in line
    assert not no_work
    # An optional row (the built-in ltr suite's) is skipped when it runs, not refused.
    optional = row + "options = { optional = true }\n"
    with pytest.raises(WorkStarted):
        main(_bench(tmp_path, config=CONFIG + optional))
    with pytest.raises(WorkStarted):
        main(["bench", "ltr", "--out", str(tmp_path / "ltr"), "--no-progress"])


def test_a_suites_cutoffs_are_computed(tmp_path: Path) -> None:
    from rankloss.bench.suites import metric_cutoffs

    assert metric_cutoffs(("ndcg@3", "map", "validation/map@r", "recall@20"), (1, 10)) == (
        1,
        3,
        10,
        20,
    )


def test_good_values_reach_the_runner(tmp_path: Path, no_work) -> None:
    with pytest.raises(WorkStarted):
        main(_bench(tmp_path, "--seeds", "2", "--epochs", "1", "--threads", "1"))
    assert no_work[0]["seeds"] == [0, 1]
    with pytest.raises(WorkStarted):
        main(_bench(tmp_path, config="[bench]\nseeds = [3, 5]\ndevice = 'cpu'\n" + CONFIG))
    assert no_work[1]["seeds"] == [3, 5] and no_work[1]["device"] == "cpu"


@pytest.mark.badinput("cli")
def test_argparse_errors_are_one_line(capsys) -> None:
    line = _refused(capsys, ["bench", "--no-such-option"])
    assert line.startswith("rankloss: error: unrecognized arguments: --no-such-option")

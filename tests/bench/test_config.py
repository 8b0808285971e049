"""Checking a benchmark configuration before anything trains: keys of every table, loss names,
kinds and hyper-parameters (built with the loss's own checks), with the file named."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from rankloss.bench.config import load_config
from rankloss.bench.suites import (
    SUITES,
    TASK_SETTINGS,
    LossSpec,
    build_row_loss,
    check_suite,
    check_suite_names,
)
from rankloss.cli import main

HEAD = """
[[suite]]
name = "x"
base = "{base}"
"""


def _load(tmp_path: Path, text: str, base: str = "quick-ltr"):
    path = tmp_path / "bench.toml"
    path.write_text(HEAD.format(base=base) + text)
    return load_config(path)


@pytest.mark.parametrize("suite", list(SUITES.values()), ids=list(SUITES))
def test_every_built_in_suite_builds_its_losses(suite) -> None:
    """Catches a renamed hyper-parameter (``threshold`` -> ``relevance_threshold``, ...)."""
    check_suite(suite)
    for row in suite.losses:
        loss = build_row_loss(suite.task, row)
        assert loss is None or loss.kind in TASK_SETTINGS[suite.task].kinds


def test_renamed_hyper_parameters_in_the_built_in_suites() -> None:
    (sigmoid,) = [row for row in SUITES["ltr"].losses if row.name == "sigmoid_ce"]
    assert sigmoid.hyper == {"relevance_threshold": 1.0}


@pytest.mark.parametrize(
    ("table", "text", "allowed"),
    [
        ("budget", "budget = { epochs = 2, epoch = 3 }", "'batch_size', 'ema_decay', 'epochs'"),
        ("model", "model = { hidden = [8], layers = 2 }", "['dropout', 'hidden']"),
    ],
)
def test_budget_and_model_reject_unknown_keys(tmp_path: Path, table, text, allowed) -> None:
    with pytest.raises(ValueError) as error:
        _load(tmp_path, text)
    message = str(error.value)
    unknown = "epoch" if table == "budget" else "layers"
    assert str(tmp_path / "bench.toml") in message
    assert f"[[suite]] 'x' {table}: unknown key(s) ['{unknown}']; allowed: [" in message
    assert allowed in message


def test_keys_are_checked_against_the_suite_task(tmp_path: Path) -> None:
    # m_per_class is a retrieval setting: an LTR suite would silently ignore it.
    with pytest.raises(ValueError, match=r"budget: unknown key\(s\) \['m_per_class'\]"):
        _load(tmp_path, "budget = { m_per_class = 4 }")
    config = _load(tmp_path, "budget = { m_per_class = 4 }", base="quick-retrieval")
    assert config.suites[0].budget["m_per_class"] == 4


def test_options_and_table_types_are_checked(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"loss 0 options: unknown key\(s\) \['sampler'\]"):
        _load(tmp_path, "[[suite.loss]]\nname = 'ranknet'\noptions = { sampler = 'x' }\n")
    with pytest.raises(ValueError, match="'budget' must be a table, got 3"):
        _load(tmp_path, "budget = 3")
    with pytest.raises(ValueError, match="'hyper' must be a table"):
        _load(tmp_path, "[[suite.loss]]\nname = 'ranknet'\nhyper = 2.0\n")


@pytest.mark.parametrize(
    ("loss", "message"),
    [
        ("name = 'ranknet'\nhyper = { sigma = -1.0 }", r"RankNetLoss: sigma must be > 0, got -1"),
        (
            "name = 'listnet'\nhyper = { temperature = 2.0 }",
            r"ListNetLoss got an unknown hyper-parameter 'temperature'; valid: "
            r"\['label_temperature', 'reduction'\]",
        ),
        ("name = 'bpr'\nhyper = { threshold = 0.0 }", r"unknown hyper-parameter 'threshold'"),
        ("name = 'ranknet'\nhyper = { sigma = 'big' }", r"RankNetLoss: sigma must be"),
        ("name = 'rank_net'", r"unknown loss 'rank_net'; known: lightgbm, "),
        (
            "name = 'triplet'",
            r"'triplet' is a loss of kind 'embedding'; task 'ltr' needs a loss "
            r"of kind 'list'",
        ),
    ],
)
def test_loss_hyper_parameters_are_checked_when_the_file_is_read(
    tmp_path: Path, loss: str, message: str
) -> None:
    with pytest.raises(ValueError, match=message) as error:
        _load(tmp_path, f"[[suite.loss]]\n{loss}\n")
    assert str(error.value).startswith(f"{tmp_path / 'bench.toml'}: suite 'x': loss ")


def test_unknown_task_is_named(tmp_path: Path) -> None:
    path = tmp_path / "bench.toml"
    path.write_text("[[suite]]\nname='x'\ntask='ranking'\ndataset='d'\nmetrics=['m']\n")
    with pytest.raises(ValueError, match="unknown task 'ranking'; known: ltr, retrieval"):
        load_config(path)


def test_baselines_build_their_loss() -> None:
    assert build_row_loss("ltr", LossSpec("lgbm", "lightgbm", {"num_leaves": 7})) is None
    softmax = build_row_loss("recsys", LossSpec("s", "sampled_softmax"))
    assert softmax is not None and softmax.registered_name == "softmax_ce"
    # A baseline of one task is no loss name in another.
    with pytest.raises(ValueError, match="unknown loss 'lightgbm'"):
        build_row_loss("recsys", LossSpec("lgbm", "lightgbm"))


def test_check_suite_names_the_suite() -> None:
    bad = replace(SUITES["recsys"], losses=(LossSpec("bpr", "bpr", {"relevance_threshold": "1"}),))
    with pytest.raises(TypeError, match=r"suite 'recsys': loss 'bpr': BPRLoss: relevance_thr"):
        check_suite(bad)
    with pytest.raises(ValueError, match=r"suite 'recsys': budget: unknown key\(s\) \['epoch'\]"):
        check_suite(SUITES["recsys"].with_budget(epoch=3))


def test_cli_reports_a_bad_config_with_the_file_before_training(tmp_path: Path, capsys) -> None:
    path = tmp_path / "bench.toml"
    path.write_text(
        HEAD.format(base="quick-ltr") + "[[suite.loss]]\nname = 'approx_ndcg'\n"
        "hyper = { alpha = -5.0 }\n"
    )
    with pytest.raises(SystemExit) as error:
        main(["bench", "--config", str(path), "--out", str(tmp_path / "out"), "--no-progress"])
    assert error.value.code == 2
    message = capsys.readouterr().err.strip()
    assert message.startswith(f"rankloss bench: {path}: suite 'x': loss 'approx_ndcg': ")
    assert "ApproxNDCGLoss: alpha must be > 0" in message
    assert not (tmp_path / "out" / "results.json").exists()


def test_built_in_suite_names_are_file_names() -> None:
    check_suite_names(list(SUITES.values()))


@pytest.mark.badinput("bench")
def test_rows_and_suites_that_would_merge_are_refused(tmp_path: Path, capsys) -> None:
    two = "[[suite.loss]]\nname = 'ranknet'\n[[suite.loss]]\nname = 'ranknet'\n"
    with pytest.raises(ValueError, match=r"suite 'x': loss label\(s\) \['ranknet'\] name more"):
        _load(tmp_path, two)
    # the same label on two different losses
    other = (
        "[[suite.loss]]\nname = 'ranknet'\n[[suite.loss]]\nlabel = 'ranknet'\nname = 'listnet'\n"
    )
    with pytest.raises(ValueError, match=r"loss label\(s\) \['ranknet'\]"):
        _load(tmp_path, other)
    with pytest.raises(ValueError, match=r"bench\.toml: suite name 'x' is given to two suites"):
        _load(tmp_path, HEAD.format(base="quick-ltr"))
    with pytest.raises(ValueError, match=r"suite name 'ltr' is given to two suites"):
        _load(tmp_path, "[bench]\nsuites = ['ltr']\n[[suite]]\nname = 'ltr'\nbase = 'ltr'\n")
    # a config suite renamed as a built-in one, and that built-in one from --suite
    path = tmp_path / "same.toml"
    path.write_text("[[suite]]\nname = 'quick-ltr'\nbase = 'ltr'\n")
    argv = ["bench", "quick-ltr", "--config", str(path), "--no-progress"]
    with pytest.raises(SystemExit):
        main([*argv, "--out", str(tmp_path / "out")])
    assert "suite name 'quick-ltr' is given to two suites" in capsys.readouterr().err
    # --loss twice on a user's file
    svm = tmp_path / "my.svm"
    svm.write_text("".join(f"{i % 3} qid:{i // 4 + 1} 1:{i * 0.1:.2f}\n" for i in range(40)))
    argv = ["bench", "--data", str(svm), "--data-format", "svmlight", "--loss", "ranknet"]
    with pytest.raises(SystemExit):
        main([*argv, "--loss", "ranknet", "--out", str(tmp_path / "out"), "--no-progress"])
    assert "loss label(s) ['ranknet'] name more than one row" in capsys.readouterr().err


@pytest.mark.badinput("bench")
@pytest.mark.parametrize("name", ["../up", "a/b", "a\\\\b", ".hidden", "", " x"])
def test_suite_names_that_are_not_file_names_are_refused(tmp_path: Path, name: str) -> None:
    path = tmp_path / "bench.toml"
    path.write_text(f"[[suite]]\nname = \"{name}\"\nbase = 'quick-ltr'\n")
    with pytest.raises(ValueError, match=r"bench\.toml: suite name .* names files under"):
        load_config(path)


def test_bench_suites_take_groups_as_the_command_line_does(tmp_path: Path) -> None:
    from rankloss.bench.suites import GROUPS

    path = tmp_path / "bench.toml"
    path.write_text('[bench]\nsuites = ["quick", "quick-ltr"]\n')
    assert [s.name for s in load_config(path).suites] == list(GROUPS["quick"])
    path.write_text('[bench]\nsuites = ["nope"]\n')
    with pytest.raises(ValueError, match=r"bench\.toml: \[bench\] suites: unknown suite 'nope'"):
        load_config(path)

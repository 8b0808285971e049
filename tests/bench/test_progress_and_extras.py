"""``rankloss bench`` talks when no progress bar shows; a missing extra is refused early."""

from __future__ import annotations

import importlib.util
import logging
import re
from pathlib import Path

import pytest

from rankloss.bench import cli as bench_cli
from rankloss.bench.runner import _duration
from rankloss.cli import main

TINY = """
[bench]
seeds = [0, 1]

[[suite]]
name = "tiny-imbalanced"
base = "imbalanced"
budget = { epochs = 1 }
model = { embedding_dim = 8 }

[[suite.loss]]
name = "softmax_ce"

[[suite.loss]]
name = "supcon"
"""


def _bench(tmp_path: Path, *extra: str) -> int:
    config = tmp_path / "bench.toml"
    config.write_text(TINY)
    return main(["bench", "--config", str(config), "--out", str(tmp_path / "out"), *extra])


def test_one_log_line_per_finished_run_without_a_progress_bar(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="rankloss")
    assert _bench(tmp_path, "--no-progress", "--no-plots") == 0
    lines = [r.getMessage() for r in caplog.records if r.name == "rankloss.bench"]
    assert len(lines) == 4, lines
    pattern = r"\[(\d)/4\] tiny-imbalanced: (softmax_ce|supcon) seed [01]: \S+=\d\.\d{4} in "
    pattern += r"\d+\.\d s; (\d) left, about \d+s"
    for i, line in enumerate(lines, 1):
        match = re.fullmatch(pattern, line)
        assert match, line
        assert int(match.group(1)) == i and int(match.group(3)) == 4 - i
    caplog.clear()
    assert _bench(tmp_path, "--no-progress", "--no-plots") == 0  # everything done: no run lines
    assert not [r for r in caplog.records if r.name == "rankloss.bench"]


@pytest.mark.badinput("cli")
def test_missing_matplotlib_is_refused_before_any_work(tmp_path, monkeypatch, capsys):
    real = importlib.util.find_spec
    monkeypatch.setattr(
        bench_cli.importlib.util,
        "find_spec",
        lambda name, *a: None if name == "matplotlib" else real(name, *a),
    )
    with pytest.raises(SystemExit) as exit_info:
        _bench(tmp_path, "--no-progress")
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        "rankloss bench: plots need matplotlib: pip install 'rankloss[bench]', or pass --no-plots"
    ]
    assert not (tmp_path / "out" / "results.json").exists()


@pytest.mark.badinput("cli")
def test_missing_scikit_learn_names_the_extra(tmp_path, monkeypatch, capsys):
    real = importlib.util.find_spec
    monkeypatch.setattr(
        bench_cli.importlib.util,
        "find_spec",
        lambda name, *a: None if name == "sklearn" else real(name, *a),
    )
    with pytest.raises(SystemExit):
        _bench(tmp_path, "--no-progress", "--no-plots")
    assert "scikit-learn not installed: pip install 'rankloss[bench]'" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("seconds", "text"), [(0, "0s"), (59.4, "59s"), (61, "1m01s"), (3725, "1h02m")]
)
def test_duration(seconds, text):
    assert _duration(seconds) == text

"""``rankloss eval``."""

from __future__ import annotations

import pytest

import rankloss.metrics as M
from rankloss.cli import main


@pytest.fixture()
def files(tmp_path):
    run = {"q1": {"d1": 0.9, "d2": 0.8, "d3": 0.1}, "q2": {"d3": 0.5, "d4": 0.4}}
    qrels = {"q1": {"d2": 1, "d3": 2}, "q2": {"d4": 1}, "q3": {"d1": 1}}
    M.write_run(run, tmp_path / "run.txt")
    M.write_qrels(qrels, tmp_path / "qrels.txt")
    return str(tmp_path / "qrels.txt"), str(tmp_path / "run.txt"), run, qrels


def test_eval_prints_a_table(files, capsys):
    qrels_path, run_path, run, qrels = files
    assert (
        main(["eval", qrels_path, run_path, "-m", "ndcg@10", "-m", "map", "--format", "table"]) == 0
    )
    out = capsys.readouterr().out
    means = M.evaluate(qrels, run, ["ndcg@10", "map"])
    last = [line for line in out.splitlines() if line.startswith("all")][0].split()
    assert float(last[1]) == pytest.approx(means["ndcg@10"], abs=1e-4)
    assert float(last[2]) == pytest.approx(means["map"], abs=1e-4)
    assert "q1" not in out and "(2 queries)" in out


def test_eval_per_query_and_options(files, capsys):
    qrels_path, run_path, *_ = files
    args = ["eval", qrels_path, run_path, "--per-query", "-c", "--digits", "2", "--format", "table"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "ndcg@10" in out and "mrr" in out  # default metrics
    rows = {line.split()[0]: line.split()[1:] for line in out.splitlines()[2:-1]}
    assert set(rows) == {"q1", "q2", "q3", "all"}
    assert rows["q3"] == ["0.00", "0.00", "0.00"]


def test_eval_reports_errors(files, capsys):
    qrels_path, run_path, *_ = files
    assert main(["eval", qrels_path, run_path, "-m", "bogus"]) == 2
    assert "unknown metric" in capsys.readouterr().err
    assert main(["eval", "/nonexistent/qrels", run_path]) == 2

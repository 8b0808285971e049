"""``rankloss eval`` prints trec_eval's format by default; ``-q``, ``-m`` with trec_eval's
names, ``--format``, and a reader that closes the pipe early."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys

import pytest

from rankloss.cli import main
from rankloss.metrics.cli import ALL_TREC, measure_names

QRELS = "q1 0 d2 1\nq1 0 d3 2\nq2 0 d4 1\n"
RUN = "q1 Q0 d1 1 0.9 r\nq1 Q0 d2 2 0.8 r\nq1 Q0 d3 3 0.1 r\nq2 Q0 d3 1 0.5 r\nq2 Q0 d4 2 0.4 r\n"

# By hand. q1: relevant d2 (1) at rank 2, d3 (2) at rank 3; q2: d4 (1) at rank 2.
# AP q1 = (1/2 + 2/3) / 2 = 0.58333, AP q2 = 1/2; RR = 1/2 for both; P@1 = 0.
# NDCG@10 (linear gain) q1 = (1/log2 3 + 2/log2 4) / (2 + 1/log2 3) = 0.61991, q2 = 1/log2 3.
EXPECTED_ALL = (
    "ndcg@10               \tall\t0.6254\n"
    "map                   \tall\t0.5417\n"
    "mrr                   \tall\t0.5000\n"
)
EXPECTED_Q = (
    "map                   \tq1\t0.5833\n"
    "precision@1           \tq1\t0.0000\n"
    "map                   \tq2\t0.5000\n"
    "precision@1           \tq2\t0.0000\n"
    "map                   \tall\t0.5417\n"
    "precision@1           \tall\t0.0000\n"
)


@pytest.fixture()
def files(tmp_path):
    (tmp_path / "qrels").write_text(QRELS)
    (tmp_path / "run").write_text(RUN)
    return str(tmp_path / "qrels"), str(tmp_path / "run")


def test_default_is_trec_eval_format(files, capsys):
    assert main(["eval", *files]) == 0
    assert capsys.readouterr().out == EXPECTED_ALL


def test_per_query_rows_come_first_query_by_query(files, capsys):
    assert main(["eval", *files, "-q", "-m", "map", "-m", "P.1"]) == 0
    assert capsys.readouterr().out == EXPECTED_Q


def test_digits_kept(files, capsys):
    assert main(["eval", *files, "-m", "map", "--digits", "6"]) == 0
    assert capsys.readouterr().out == "map                   \tall\t0.541667\n"


@pytest.mark.parametrize(
    ("given", "names"),
    [
        (["ndcg_cut.10", "map", "recip_rank", "P.5"], ["ndcg@10", "map", "mrr", "precision@5"]),
        (["Rprec", "recall.100", "map_cut.10"], ["r_precision", "recall@100", "map@10"]),
        (["ndcg@10", "ndcg_cut.10", "ndcg_cut_10"], ["ndcg@10"]),
        # trec_eval's families without a cut-off are its cut-offs (P_5 ... P_1000), not the
        # whole list; a comma list gives those cut-offs; set_P / set_recall are the whole set.
        (["P"], [f"precision@{k}" for k in (5, 10, 15, 20, 30, 100, 200, 500, 1000)]),
        (["recall.5,10", "success"], ["recall@5", "recall@10", "hit@1", "hit@5", "hit@10"]),
        (["ndcg_cut"], [f"ndcg@{k}" for k in (5, 10, 15, 20, 30, 100, 200, 500, 1000)]),
        (["map_cut.3", "set_P", "set_recall"], ["map@3", "precision", "recall"]),
    ],
)
def test_trec_eval_names_map_to_rankloss_names(given, names):
    assert measure_names(given) == names


def test_trec_eval_names_give_the_same_numbers(files, capsys):
    assert main(["eval", *files, "-m", "ndcg_cut.10", "-m", "map", "-m", "recip_rank"]) == 0
    assert capsys.readouterr().out == EXPECTED_ALL


def test_a_family_name_gives_trec_evals_numbers(tmp_path, capsys):
    """trec_eval 9.0.8 on these files: P_5 0.4, P_10 0.2, recall_5 0.6667, set_P 0.6667."""
    (tmp_path / "q").write_text("q1 0 d1 1\nq1 0 d2 0\nq1 0 d3 2\nq1 0 d9 1\nq2 0 x 1\n")
    (tmp_path / "r").write_text("q1 Q0 d1 1 0.5 t\nq1 Q0 d2 2 0.4 t\nq1 Q0 d3 3 0.3 t\n")
    files = [str(tmp_path / "q"), str(tmp_path / "r")]
    assert main(["eval", *files, "-m", "P.5,10", "-m", "recall.5", "-m", "set_P"]) == 0
    values = [line.split("\t")[2] for line in capsys.readouterr().out.splitlines()]
    assert values == ["0.4000", "0.2000", "0.6667", "0.6667"]


def test_fractional_relevance_is_truncated_as_trec_eval_reads_it(tmp_path, capsys):
    """trec_eval reads a relevance with atol: 0.5 is 0, so this query has nothing relevant
    (trec_eval 9.0.8: ndcg 0); --convention rankloss keeps 0.5."""
    (tmp_path / "q").write_text("q1 0 d1 0.5\nq1 0 d2 1.5\n")
    (tmp_path / "r").write_text("q1 Q0 d1 1 0.5 t\nq1 Q0 d2 2 0.4 t\n")
    files = [str(tmp_path / "q"), str(tmp_path / "r")]
    assert main(["eval", *files, "-m", "ndcg", "--digits", "6"]) == 0
    captured = capsys.readouterr()
    assert captured.out.split("\t")[2].strip() == "0.630930"  # gains 0, 1: 1/log2(3)
    warning = captured.err.strip().splitlines()
    assert len(warning) == 1 and "fractional relevance is truncated" in warning[0]
    assert main(["eval", *files, "-m", "ndcg", "--convention", "rankloss", "--digits", "6"]) == 0
    kept = capsys.readouterr()
    assert kept.err == "" and kept.out.split("\t")[2].strip() != "0.630930"


def test_all_trec_expands(files, capsys):
    assert main(["eval", *files, "-m", "all_trec"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split("\t")[0].strip() for line in lines] == list(ALL_TREC)
    assert "ndcg@1000" in ALL_TREC and "precision@5" in ALL_TREC


@pytest.mark.badinput("cli")
@pytest.mark.parametrize("name", ["bpref", "gm_map", "num_rel_ret", "iprec_at_recall"])
def test_unsupported_trec_eval_measure_is_refused_in_one_line(files, capsys, name):
    assert main(["eval", *files, "-m", name]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    err = captured.err.strip().splitlines()
    assert len(err) == 1 and f"trec_eval measure {name!r} is not computed" in err[0]


def test_format_table(files, capsys):
    assert main(["eval", *files, "-q", "-m", "map", "--format", "table"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["query", "map"]
    assert [line.split() for line in lines[2:5]] == [
        ["q1", "0.5833"],
        ["q2", "0.5000"],
        ["all", "0.5417"],
    ]
    assert lines[5] == "(2 queries)"


def test_format_json(files, capsys):
    assert main(["eval", *files, "-q", "-m", "map", "-m", "P.1", "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data == {
        "metrics": ["map", "precision@1"],
        "num_q": 2,
        "all": {"map": 0.5417, "precision@1": 0.0},
        "queries": {
            "q1": {"map": 0.5833, "precision@1": 0.0},
            "q2": {"map": 0.5, "precision@1": 0.0},
        },
    }
    assert main(["eval", *files, "-m", "map", "--format", "json"]) == 0
    assert "queries" not in json.loads(capsys.readouterr().out)


def test_format_json_keeps_a_query_named_all(tmp_path, capsys):
    (tmp_path / "qrels").write_text("all 0 d1 1\nq2 0 d1 1\n")
    (tmp_path / "run").write_text("all Q0 d1 1 0.5 t\nall Q0 d2 2 0.9 t\nq2 Q0 d1 1 0.5 t\n")
    argv = ["eval", str(tmp_path / "qrels"), str(tmp_path / "run"), "-q", "-m", "mrr"]
    assert main([*argv, "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["queries"] == {"all": {"mrr": 0.5}, "q2": {"mrr": 1.0}}
    assert data["all"] == {"mrr": 0.75} and data["num_q"] == 2


def test_format_csv(files, capsys):
    assert main(["eval", *files, "-q", "-m", "map", "-m", "mrr", "--format", "csv"]) == 0
    rows = list(csv.reader(io.StringIO(capsys.readouterr().out)))
    assert rows == [
        ["query", "map", "mrr"],
        ["q1", "0.5833", "0.5000"],
        ["q2", "0.5000", "0.5000"],
        ["all", "0.5417", "0.5000"],
    ]


@pytest.mark.badinput("cli")
def test_unknown_format_is_refused(files, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["eval", *files, "--format", "xml"])
    assert exit_info.value.code == 2


@pytest.mark.badinput("cli")
def test_closed_pipe_exits_quietly(files):
    # `rankloss eval ... | head -1` with the reader already gone: a pipe whose read end is closed
    code = "import sys; from rankloss.cli import main; sys.exit(main(sys.argv[1:]))"
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        proc = subprocess.run(
            [sys.executable, "-c", code, "eval", *files, "-q", "-m", "all_trec"],
            stdout=write_end,
            stderr=subprocess.PIPE,
            timeout=120,
        )
    finally:
        os.close(write_end)
    assert proc.stderr.decode() == ""  # no traceback, no "Exception ignored" at exit
    assert proc.returncode == 141


def test_a_reader_that_stops_after_one_line_gets_141(tmp_path):
    """`rankloss eval ... | head -1` on output larger than a pipe: the first piece is read,
    then the reader leaves; the write that fails is reported (it exited 0 before)."""
    queries = 3000
    (tmp_path / "q").write_text("".join(f"q{i} 0 d 1\n" for i in range(queries)))
    (tmp_path / "r").write_text("".join(f"q{i} Q0 d 1 1.0 t\n" for i in range(queries)))
    code = "import sys; from rankloss.cli import main; sys.exit(main(sys.argv[1:]))"
    argv = ["eval", str(tmp_path / "q"), str(tmp_path / "r"), "-q", "-m", "all_trec"]
    proc = subprocess.Popen(
        [sys.executable, "-c", code, *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert proc.stdout is not None and proc.stdout.readline().startswith(b"map")
    proc.stdout.close()
    _, err = proc.communicate(timeout=120)
    assert err.decode() == "" and proc.returncode == 141


def test_closed_pipe_in_process_returns_141(files, monkeypatch):
    class Closed(io.StringIO):
        def write(self, text: str) -> int:
            raise BrokenPipeError(32, "Broken pipe")

    assert main(["eval", *files]) == 0  # sanity: the same call succeeds on a good stream
    from rankloss.metrics import cli

    assert cli._write("map\tall\t0.5\n", Closed()) == 141

"""Bad run and qrels files: refused with the file and line by ``read_*`` and ``rankloss eval``."""

from __future__ import annotations

import gzip
import re

import pytest

import rankloss.metrics as M
from rankloss.cli import main

RUN = "q1 Q0 d1 1 0.9 t\nq1 Q0 d2 2 0.5 t\nq2 Q0 d1 1 0.7 t\n"
QRELS = "q1 0 d1 1\nq1 0 d2 0\nq2 0 d1 2\n"
# Long enough that half of its gzip holds whole lines, without duplicates.
LONG_RUN = "".join(f"q{i % 7} Q0 d{i} {i} {1 / (i + 1)!r} t\n" for i in range(400))
LONG_QRELS = "".join(f"q{i % 7} 0 d{i} {i % 3}\n" for i in range(400))


def _write(path, text: str | bytes):
    data = text.encode() if isinstance(text, str) else text
    if path.name.endswith(".gz"):
        data = gzip.compress(data)
    path.write_bytes(data)
    return path


def _eval_error(capsys, qrels, run, *options: str) -> str:
    """Run ``rankloss eval``: exit code 2 and exactly one line on stderr; returns that line."""
    assert main(["eval", str(qrels), str(run), *options]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 1, captured.err
    assert "Traceback" not in captured.err
    return lines[0]


# Each case: (the run text, the qrels text, the file at fault, its line, words of the message)
BAD_RUNS = {
    "nan_score": ("q1 Q0 d1 1 0.9 t\nq1 Q0 d2 2 nan t\n", 2, "finite"),
    "inf_score": ("q1 Q0 d1 1 inf t\n", 1, "finite"),
    "minus_inf_score": ("q1 Q0 d1 1 0.9 t\n\nq1 Q0 d2 2 -Infinity t\n", 3, "finite"),
    "overflowing_score": ("q1 Q0 d1 1 1e999 t\n", 1, "finite"),
    "non_numeric_score": ("q1 Q0 d1 1 0.9 t\nq1 Q0 d2 2 high t\n", 2, "score"),
    "underscore_score": ("q1 Q0 d1 1 1_000 t\n", 1, "score"),
    "duplicate_document": (
        "q1 Q0 d1 1 0.9 t\nq2 Q0 d1 1 0.8 t\nq1 Q0 d2 2 0.5 t\nq1 Q0 d1 3 0.1 t\n",
        4,
        "duplicate.*'q1'.*'d1'.*line 1\\b",
    ),
}
BAD_QRELS = {
    "non_numeric_relevance": ("q1 0 d1 1\nq1 0 d2 yes\n", 2, "relevance"),
    "nan_relevance": ("q1 0 d1 nan\n", 1, "finite"),
    "duplicate_judgment": (
        "q1 0 d1 1\nq1 0 d2 0\nq2 0 d1 0\nq1 0 d1 1\n",
        4,
        "duplicate.*'q1'.*'d1'.*line 1\\b",
    ),
    "duplicate_judgment_other_value": ("q1 0 d1 0\nq1 0 d1 2\n", 2, "duplicate.*line 1\\b"),
}


@pytest.mark.badinput("metrics")
@pytest.mark.parametrize("case", sorted(BAD_RUNS))
@pytest.mark.parametrize("suffix", [".txt", ".gz"])
def test_bad_run_line_is_refused_with_file_and_line(tmp_path, case, suffix):
    text, line, words = BAD_RUNS[case]
    path = _write(tmp_path / f"run{suffix}", text)
    with pytest.raises(ValueError, match=re.escape(f"{path}:{line}: ") + f".*{words}"):
        M.read_run(path)


@pytest.mark.badinput("metrics")
@pytest.mark.parametrize("case", sorted(BAD_QRELS))
def test_bad_qrels_line_is_refused_with_file_and_line(tmp_path, case):
    text, line, words = BAD_QRELS[case]
    path = _write(tmp_path / "qrels.txt", text)
    with pytest.raises(ValueError, match=re.escape(f"{path}:{line}: ") + f".*{words}"):
        M.read_qrels(path)


@pytest.mark.badinput("metrics")
@pytest.mark.parametrize("reader", ["run", "qrels"])
def test_invalid_utf8_is_reported_with_file_and_line(tmp_path, reader):
    good = RUN if reader == "run" else QRELS
    path = _write(tmp_path / f"{reader}.txt", good.encode() + b"q3 \xff\xfe d9 1 0.1 t\n")
    read = M.read_run if reader == "run" else M.read_qrels
    with pytest.raises(ValueError, match=re.escape(f"{path}:4: invalid UTF-8 byte 0xff")):
        read(path)


@pytest.mark.badinput("metrics")
@pytest.mark.parametrize("reader", ["run", "qrels"])
def test_truncated_gz_is_reported_with_the_file(tmp_path, reader):
    good = LONG_RUN if reader == "run" else LONG_QRELS
    data = gzip.compress(good.encode())
    path = tmp_path / f"{reader}.txt.gz"
    path.write_bytes(data[: len(data) // 2])
    read = M.read_run if reader == "run" else M.read_qrels
    with pytest.raises(ValueError, match=re.escape(str(path)) + r":\d+: .*truncated or corrupt"):
        read(path)


@pytest.mark.badinput("metrics")
def test_a_file_that_is_not_gzip_is_reported_with_the_file(tmp_path):
    path = tmp_path / "run.gz"
    path.write_bytes(RUN.encode())  # plain text under a .gz name
    with pytest.raises(ValueError, match=re.escape(f"{path}:1: ") + ".*gzip"):
        M.read_run(path)


@pytest.mark.badinput("metrics")
@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_evaluate_refuses_non_finite_scores_and_relevances(bad):
    run = {"q1": {"d1": 0.9, "d2": bad}, "q2": {"d1": 0.3}}
    qrels = {"q1": {"d1": 1}, "q2": {"d1": 1}}
    with pytest.raises(ValueError, match="evaluate: every score must be finite.*'q1'.*'d2'"):
        M.evaluate(qrels, run, ["map"])
    run = {"q1": {"d1": 0.9}, "q2": {"d1": 0.3}}
    qrels = {"q1": {"d1": 1}, "q2": {"d1": 1, "d7": bad}}
    with pytest.raises(ValueError, match="evaluate: every relevance must be finite.*'q2'.*'d7'"):
        M.evaluate(qrels, run, ["map"])


def test_good_files_still_read(tmp_path):
    """Blank lines, CRLF line ends, integer and fractional relevance, exponents, .gz."""
    run = _write(tmp_path / "run.gz", "q1 Q0 d1 1 9e-1 t\r\n\n  q1\tQ0 d2 2 -.5 t\n")
    qrels = _write(tmp_path / "qrels.txt", "q1 0 d1 1\r\nq1 0 d2 0.5\nq2 0 d1 -1\n")
    assert M.read_run(run) == {"q1": {"d1": 0.9, "d2": -0.5}}
    read = M.read_qrels(qrels)
    assert read == {"q1": {"d1": 1, "d2": 0.5}, "q2": {"d1": -1}}
    assert isinstance(read["q1"]["d1"], int)


# --------------------------------------------------------------------------------------------
# rankloss eval: exit code 2, one line on stderr, no traceback
# --------------------------------------------------------------------------------------------


@pytest.mark.badinput("cli")
@pytest.mark.parametrize("case", sorted(BAD_RUNS))
def test_eval_refuses_a_bad_run(tmp_path, capsys, case):
    text, line, words = BAD_RUNS[case]
    run = _write(tmp_path / "run.txt", text)
    qrels = _write(tmp_path / "qrels.txt", QRELS)
    message = _eval_error(capsys, qrels, run)
    assert re.match(re.escape(f"rankloss eval: {run}:{line}: ") + f".*{words}", message)


@pytest.mark.badinput("cli")
@pytest.mark.parametrize("case", sorted(BAD_QRELS))
def test_eval_refuses_bad_qrels(tmp_path, capsys, case):
    text, line, words = BAD_QRELS[case]
    run = _write(tmp_path / "run.txt", RUN)
    qrels = _write(tmp_path / "qrels.txt", text)
    message = _eval_error(capsys, qrels, run)
    assert re.match(re.escape(f"rankloss eval: {qrels}:{line}: ") + f".*{words}", message)


@pytest.mark.badinput("cli")
def test_eval_reports_bad_bytes_and_truncated_gz(tmp_path, capsys):
    qrels = _write(tmp_path / "qrels.txt", QRELS)
    run = _write(tmp_path / "run.txt", RUN.encode() + b"q3 Q0 \xc3( 1 0.1 t\n")
    assert f"{run}:4: invalid UTF-8" in _eval_error(capsys, qrels, run)
    data = gzip.compress(LONG_RUN.encode())
    run = tmp_path / "run.txt.gz"
    run.write_bytes(data[:-20])
    message = _eval_error(capsys, qrels, run)
    assert str(run) in message and "truncated or corrupt" in message
    data = gzip.compress(LONG_QRELS.encode())
    qrels = tmp_path / "qrels.txt.gz"
    qrels.write_bytes(data[:-20])
    message = _eval_error(capsys, qrels, tmp_path / "run.txt")
    assert str(qrels) in message and "truncated or corrupt" in message


@pytest.mark.badinput("cli")
@pytest.mark.parametrize("digits", ["-1", "18"])
def test_eval_refuses_bad_digits_before_reading_files(tmp_path, capsys, digits):
    missing = tmp_path / "missing.txt"  # never opened: the option is checked first
    message = _eval_error(capsys, missing, missing, "--digits", digits)
    assert message.startswith("rankloss eval: --digits must be")
    assert f"got {digits}" in message


@pytest.mark.badinput("cli")
def test_eval_refuses_an_unknown_metric_before_reading_files(tmp_path, capsys):
    missing = tmp_path / "missing.txt"
    message = _eval_error(capsys, missing, missing, "-m", "ndcg@10", "-m", "bogus")
    assert "unknown metric" in message and "bogus" in message and "missing" not in message

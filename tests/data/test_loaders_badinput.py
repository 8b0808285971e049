"""Bad data files are refused with the file and line, before any work (issue 14)."""

from __future__ import annotations

import gzip

import pandas as pd
import pytest

from rankloss.data import DataFormatError, read_interactions, read_svmlight
from rankloss.data.loaders import MAX_FEATURES

GOOD = b"1 qid:1 1:0.5 2:0.1\n0 qid:1 1:0.3 2:0.2\n"


def _svm(tmp_path, body: bytes, name: str = "bad.txt"):
    path = tmp_path / name
    path.write_bytes(GOOD + body)
    return path


@pytest.mark.badinput("data")
@pytest.mark.parametrize(
    ("line", "message"),
    [
        (b"nan qid:1 1:0.5\n", "label 'nan' is not a finite number in float32's range"),
        (b"inf qid:1 1:0.5\n", "label 'inf' is not a finite number"),
        (b"1e39 qid:1 1:0.5\n", "label '1e39' is not a finite number in float32's range"),
        (b"1 qid:1 1:inf\n", "feature '1:inf' is not a finite number"),
        (b"1 qid:1 1:0.5 2:nan\n", "feature '2:nan' is not a finite number"),
        (b"1 qid:1 1:-1e39\n", "feature '1:-1e39' is not a finite number in float32's range"),
        (b"1 qid:99999999999999999999 1:1\n", "query id 'qid:9+' is out of int64's range"),
    ],
)
def test_svmlight_non_finite_label_or_feature_is_refused(tmp_path, line, message):
    path = _svm(tmp_path, line)
    with pytest.raises(DataFormatError, match=rf"bad.txt:3: {message}"):
        read_svmlight(path)


@pytest.mark.badinput("data")
def test_svmlight_truncated_gz_names_the_file(tmp_path):
    data = gzip.compress(GOOD * 500)
    path = tmp_path / "cut.txt.gz"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataFormatError, match=r"cut.txt.gz: compressed data is truncated"):
        read_svmlight(path)


@pytest.mark.badinput("data")
@pytest.mark.parametrize(
    "line", [b"1 qid:1 1:\xff\n", b"\xe9 qid:1 1:0.5\n", b"1 qid:\xc3\x28 1:0.5\n"]
)
def test_svmlight_invalid_utf8_names_file_and_line(tmp_path, line):
    path = _svm(tmp_path, line)
    with pytest.raises(DataFormatError, match=r"bad.txt:3: invalid UTF-8"):
        read_svmlight(path)


@pytest.mark.badinput("data")
def test_svmlight_huge_feature_index_is_refused_before_allocating(tmp_path):
    path = _svm(tmp_path, b"1 qid:1 1:0.5 300000000:1\n")
    with pytest.raises(
        DataFormatError,
        match=r"bad.txt:3: feature index 300000000 is over .*"
        r"max_features=100000",
    ):
        read_svmlight(path)
    with pytest.raises(DataFormatError, match=r"bad.txt:3: feature index 300000000 .*num_features"):
        read_svmlight(path, num_features=136, zero_based=False)


def test_svmlight_feature_bound_can_be_raised(tmp_path):
    path = _svm(tmp_path, f"1 qid:2 {MAX_FEATURES + 5}:1\n".encode())
    with pytest.raises(DataFormatError, match="max_features"):
        read_svmlight(path, zero_based=False)
    split = read_svmlight(path, zero_based=False, max_features=MAX_FEATURES + 5)
    assert split.features.shape == (2, 2, MAX_FEATURES + 5)


@pytest.mark.badinput("data")
@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("max_features", 0, "read_svmlight: max_features must be a positive integer, got 0"),
        ("num_features", -3, "read_svmlight: num_features must be a positive integer, got -3"),
        ("zero_based", "yes", "read_svmlight: zero_based must be True, False or 'auto'"),
    ],
)
def test_svmlight_bad_options(tmp_path, option, value, message):
    path = _svm(tmp_path, b"")
    with pytest.raises(ValueError, match=message):
        read_svmlight(path, **{option: value})


def test_svmlight_comment_and_good_gz_still_read(tmp_path):
    path = tmp_path / "ok.txt.gz"
    path.write_bytes(gzip.compress(GOOD + "2 qid:3 2:1.5 # caf\u00e9\n".encode()))
    split = read_svmlight(path)
    assert split.features.shape == (2, 2, 2) and split.query_ids.tolist() == [1, 3]


@pytest.mark.badinput("data")
@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "NaN"])
def test_interactions_non_finite_rating_is_refused(tmp_path, value):
    path = tmp_path / "log.csv"
    path.write_text(f"user,item,rating,time\nu0,i0,5,1\nu1,i1,{value},2\n")
    with pytest.raises(DataFormatError, match=rf"log.csv:3: rating '{value}' is not a finite"):
        read_interactions(path)


@pytest.mark.badinput("data")
def test_interactions_non_finite_time_and_parquet_rating_are_refused(tmp_path):
    path = tmp_path / "log.tsv"
    path.write_text("user\titem\trating\ttime\nu0\ti0\t5\t1\nu1\ti1\t4\tnan\n")
    with pytest.raises(DataFormatError, match=r"log.tsv:3: time 'nan' is not a finite"):
        read_interactions(path)
    frame = pd.DataFrame({"user": [1, 2], "item": [3, 4], "rating": [4.0, float("nan")]})
    frame.to_parquet(tmp_path / "log.parquet")
    with pytest.raises(DataFormatError, match=r"log.parquet: row 2: rating nan is not a finite"):
        read_interactions(tmp_path / "log.parquet")

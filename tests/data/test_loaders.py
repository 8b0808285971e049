"""Generic loaders on small files made by the tests, including their errors."""

from __future__ import annotations

import gzip
import json
import struct

import numpy as np
import pandas as pd
import pytest
import torch

from rankloss.data import (
    DataFormatError,
    read_idx,
    read_interactions,
    read_labelled,
    read_svmlight,
    read_text_retrieval,
)

SVM = """2 qid:7 1:0.5 3:1.0 # doc a
0 qid:3 1:0.1 2:0.2
1 qid:7 2:3.0
0 qid:7 1:1 2:1 3:1
"""


def test_svmlight_pads_lists_by_query(tmp_path):
    path = tmp_path / "a.txt"
    path.write_text(SVM)
    split = read_svmlight(path, num_features=3, zero_based=False)
    assert split.features.shape == (2, 3, 3) and split.features.dtype == torch.float32
    assert split.query_ids.tolist() == [3, 7]
    assert split.mask.tolist() == [[True, False, False], [True, True, True]]
    assert split.labels[1].tolist() == [2.0, 1.0, 0.0]
    assert split.features[1, 0].tolist() == [0.5, 0.0, 1.0]
    assert split.labels.dtype == torch.float32


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("x qid:1 1:0.5", "label"),
        ("1 1:0.5 2:0.3", "qid"),
        ("1 qid:a 1:0.5", "query id"),
        ("1 qid:1 1:abc", "feature"),
        ("1 qid:1 2:0.5 1:0.3", "increase"),
    ],
)
def test_svmlight_malformed_line_names_file_and_line(tmp_path, line, message):
    path = tmp_path / "bad.txt"
    path.write_text("1 qid:1 1:0.5\n0 qid:1 1:0.1\n" + line + "\n")
    with pytest.raises(DataFormatError, match=rf"bad.txt:3: .*{message}"):
        read_svmlight(path)


def test_interactions_recbole_tsv(tmp_path):
    path = tmp_path / "x.inter"
    path.write_text(
        "user_id:token\titem_id:token\trating:float\ttimestamp:float\n"
        "10\t5\t4\t100\n20\t5\t3\t50\n10\t7\t5\t200\n"
    )
    inter, users, items = read_interactions(path)
    assert inter.user.tolist() == [0, 1, 0] and inter.item.tolist() == [0, 0, 1]
    assert inter.rating.tolist() == [4.0, 3.0, 5.0] and inter.time.tolist() == [100, 50, 200]
    assert users.ids.tolist() == [10, 20] and len(items) == 2


def test_interactions_csv_and_parquet_agree(tmp_path):
    frame = pd.DataFrame(
        {"user": ["a", "b", "a"], "item": [3, 1, 1], "rating": [1.0, 2, 3], "time": [1, 2, 3]}
    )
    frame.to_csv(tmp_path / "log.csv", index=False)
    frame.to_parquet(tmp_path / "log.parquet")
    a, ua, ia = read_interactions(tmp_path / "log.csv")
    b, ub, ib = read_interactions(tmp_path / "log.parquet")
    for name in ("user", "item", "rating"):
        assert getattr(a, name).tolist() == getattr(b, name).tolist()
    assert ua.ids.tolist() == ["a", "b"] and ia.ids.tolist() == [1, 3]


@pytest.mark.parametrize(
    ("row", "message"), [("u1,i1,4", "expected 4 fields"), ("u1,i1,good,5", "rating")]
)
def test_interactions_malformed_line(tmp_path, row, message):
    path = tmp_path / "log.csv"
    path.write_text("user,item,rating,time\nu0,i0,5,1\n" + row + "\n")
    with pytest.raises(DataFormatError, match=rf"log.csv:3: .*{message}"):
        read_interactions(path)


def test_labelled_csv_and_npz(tmp_path):
    (tmp_path / "e.csv").write_text("0.1,0.2,1\n0.3,0.4,0\n")
    split = read_labelled(tmp_path / "e.csv")
    assert split.x.shape == (2, 2) and split.y.tolist() == [1, 0]
    assert split.y.dtype == torch.int64 and split.x.dtype == torch.float32
    np.savez(tmp_path / "i.npz", x=np.zeros((3, 1, 2, 2), np.uint8), y=np.array([0, 1, 2]))
    images = read_labelled(tmp_path / "i.npz", scale=255.0)
    assert images.x.shape == (3, 1, 2, 2) and images.y.tolist() == [0, 1, 2]


@pytest.mark.parametrize(
    ("row", "message"),
    [("0.1,0.2", "expected 3 fields"), ("0.1,oops,1", "not a number"), ("0.1,0.2,1.5", "integer")],
)
def test_labelled_csv_malformed(tmp_path, row, message):
    path = tmp_path / "e.csv"
    path.write_text("0.1,0.2,1\n" + row + "\n")
    with pytest.raises(DataFormatError, match=rf"e.csv:2: .*{message}"):
        read_labelled(path)


def _write_idx(path, array):
    codes = {np.dtype(np.uint8): 0x08}
    header = bytes([0, 0, codes[array.dtype], array.ndim])
    header += b"".join(struct.pack(">I", d) for d in array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.tobytes())


def test_idx_roundtrip_and_errors(tmp_path):
    images = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    _write_idx(tmp_path / "x-idx3-ubyte.gz", images)
    assert np.array_equal(read_idx(tmp_path / "x-idx3-ubyte.gz"), images)
    (tmp_path / "bad-ubyte").write_bytes(b"\x01\x02\x08\x01\x00\x00\x00\x01\x00")
    with pytest.raises(DataFormatError, match="magic"):
        read_idx(tmp_path / "bad-ubyte")
    (tmp_path / "short-ubyte").write_bytes(b"\x00\x00\x08\x01\x00\x00\x00\x05\x00")
    with pytest.raises(DataFormatError, match="bytes"):
        read_idx(tmp_path / "short-ubyte")


def _beir(folder, qrels_lines, corpus_extra=""):
    (folder / "qrels").mkdir(parents=True)
    (folder / "corpus.jsonl").write_text(
        json.dumps({"_id": "d1", "title": "Red", "text": "a red dress"})
        + "\n"
        + json.dumps({"_id": "d2", "text": "blue jeans"})
        + "\n"
        + corpus_extra
    )
    (folder / "queries.jsonl").write_text(
        json.dumps({"_id": "q1", "text": "red"})
        + "\n"
        + json.dumps({"_id": "q2", "text": "jeans"})
        + "\n"
    )
    (folder / "qrels" / "test.tsv").write_text(qrels_lines)


def test_text_retrieval_beir_and_trec(tmp_path):
    _beir(tmp_path / "a", "query-id\tcorpus-id\tscore\nq1\td1\t1\nq2\td2\t2\n")
    data = read_text_retrieval(tmp_path / "a")
    assert data.corpus["d1"] == "Red a red dress"
    assert data.test.qrels == {"q1": {"d1": 1}, "q2": {"d2": 2}}
    assert data.train is None and len(data.test) == 2
    _beir(tmp_path / "b", "q1 0 d1 1\n")
    assert read_text_retrieval(tmp_path / "b").test.pairs() == [("q1", "d1")]


def test_text_retrieval_errors(tmp_path):
    _beir(tmp_path / "a", "q1\td1\n")
    with pytest.raises(DataFormatError, match=r"test.tsv:1: .*fields"):
        read_text_retrieval(tmp_path / "a")
    _beir(tmp_path / "b", "q1\td1\t1\n", corpus_extra="{not json\n")
    with pytest.raises(DataFormatError, match=r"corpus.jsonl:3: invalid JSON"):
        read_text_retrieval(tmp_path / "b")
    _beir(tmp_path / "c", "q1\td9\t1\n")
    with pytest.raises(DataFormatError, match="unknown document"):
        read_text_retrieval(tmp_path / "c")

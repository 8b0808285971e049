"""Regression tests for the data loaders' review: each test failed before its fix."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest
import torch

from rankloss.data import read_interactions, split_interactions
from rankloss.data.formats import (
    DataSource,
    data_source,
    table_dataset,
    trec_dataset,
    vectors_dataset,
)
from rankloss.data.types import DataFormatError, Interactions


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("RANKLOSS_DATA", str(tmp_path / "cache"))


def _table_text(queries: int = 6, docs: int = 3, seed: int = 0) -> str:
    rng = np.random.default_rng(seed)
    lines = ["qid,label,f1,f2"]
    for q in range(queries):
        for _ in range(docs):
            f1, f2 = rng.normal(size=2).round(3)
            lines.append(f"{q},{int(rng.integers(0, 3))},{f1},{f2}")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------- 1: label and roles
def test_label_names_the_role_of_each_file(tmp_path):
    (tmp_path / "train.csv").write_text(_table_text(seed=1))
    (tmp_path / "other.csv").write_text(_table_text(seed=2))
    as_test = data_source(
        {"format": "table", "path": "train.csv", "test": "other.csv"}, base=tmp_path
    )
    as_valid = data_source(
        {"format": "table", "path": "train.csv", "valid": "other.csv"}, base=tmp_path
    )
    assert as_test.label() != as_valid.label()
    assert as_test.digest() != as_valid.digest()


# ---------------------------------------------------------------------------- 6: cache key
def test_cache_key_covers_the_file_suffix(tmp_path):
    """The same bytes as ``.csv`` (comma) and ``.tsv`` (tab) parse differently."""
    text = _table_text()
    (tmp_path / "a.csv").write_text(text)
    (tmp_path / "a.tsv").write_text(text)
    csv_source = DataSource("table", {"path": str(tmp_path / "a.csv")})
    tsv_source = DataSource("table", {"path": str(tmp_path / "a.tsv")})
    assert csv_source.digest() != tsv_source.digest()
    assert csv_source.label() != tsv_source.label()
    csv_source.load(validation_fraction=0.0)
    with pytest.raises(DataFormatError, match="a.tsv"):  # tab-separated: no column "qid"
        tsv_source.load(validation_fraction=0.0)


# ---------------------------------------------------------------------------- 2: columns by name
def test_table_test_file_columns_are_matched_by_name(tmp_path):
    text = _table_text(seed=3)
    (tmp_path / "train.csv").write_text(text)
    frame = pd.read_csv(io.StringIO(text))
    frame[["f2", "label", "qid", "f1"]].to_csv(tmp_path / "test.csv", index=False)
    ds = table_dataset(tmp_path / "train.csv", test=tmp_path / "test.csv", validation_fraction=0)
    same = table_dataset(tmp_path / "train.csv", test=tmp_path / "train.csv", validation_fraction=0)
    assert torch.equal(ds.test.features, same.test.features)
    assert torch.equal(ds.test.labels, same.test.labels)
    frame.rename(columns={"f2": "g2"}).to_csv(tmp_path / "other.csv", index=False)
    with pytest.raises(DataFormatError, match=r"other\.csv:1: .*missing \['f2'\].*extra \['g2'\]"):
        table_dataset(tmp_path / "train.csv", test=tmp_path / "other.csv")


def test_vectors_test_file_columns_are_matched_by_name(tmp_path):
    rng = np.random.default_rng(4)
    frame = pd.DataFrame(
        {"a": rng.normal(size=12), "b": rng.normal(size=12) + 10, "label": np.arange(12) % 3}
    )
    frame.to_csv(tmp_path / "train.csv", index=False)
    frame[["label", "b", "a"]].to_csv(tmp_path / "test.csv", index=False)
    ds = vectors_dataset(tmp_path / "train.csv", test=tmp_path / "test.csv")
    want = torch.tensor(frame[["a", "b"]].to_numpy(), dtype=torch.float32)
    assert torch.allclose(ds.test.x, want)
    frame.rename(columns={"b": "c"}).to_parquet(tmp_path / "other.parquet")
    with pytest.raises(DataFormatError, match=r"other\.parquet: .*missing \['b'\]"):
        vectors_dataset(tmp_path / "train.csv", test=tmp_path / "other.parquet")


# ---------------------------------------------------------------------------- 3: interaction ids
def test_interaction_ids_written_differently_stay_distinct(tmp_path):
    users = ["01", "1", "1_0", "10", "+1", " 1"]
    lines = ["user,item,rating"] + [f"{u},{i},1" for u in users for i in ("5", "6")]
    (tmp_path / "r.csv").write_text("\n".join(lines) + "\n")
    inter, user_map, item_map = read_interactions(tmp_path / "r.csv")
    assert len(user_map) == 6 and sorted(user_map.ids.tolist()) == sorted(users)
    assert item_map.ids.tolist() == [5, 6]  # exact integers stay integers


def test_interaction_ids_beyond_int64_are_kept_as_text(tmp_path):
    (tmp_path / "r.csv").write_text("user,item\n99999999999999999999,1\n1,1\n1,2\n")
    inter, user_map, _ = read_interactions(tmp_path / "r.csv")
    assert sorted(user_map.ids.tolist()) == ["1", "99999999999999999999"]
    assert len(inter) == 3


# ---------------------------------------------------------------------------- 4: byte order mark
def test_a_byte_order_mark_is_not_part_of_the_first_header_name(tmp_path):
    text = "time,user,item\n30,1,1\n20,1,2\n10,2,1\n"
    (tmp_path / "r.csv").write_bytes(b"\xef\xbb\xbf" + text.encode())
    inter, _, _ = read_interactions(tmp_path / "r.csv")
    assert inter.time.tolist() == [30.0, 20.0, 10.0]
    (tmp_path / "t.csv").write_bytes(b"\xef\xbb\xbf" + _table_text().encode())
    ds = table_dataset(tmp_path / "t.csv", validation_fraction=0)
    assert ds.train.num_features == 2


# ---------------------------------------------------------------------------- 5: duplicate columns
def test_a_column_named_twice_is_refused(tmp_path):
    (tmp_path / "t.csv").write_text("qid,label,f,f\n1,1,0.5,2\n1,0,0.1,3\n2,1,0.2,4\n2,0,0.3,5\n")
    with pytest.raises(DataFormatError, match=r"t\.csv:1: column 'f' appears twice"):
        table_dataset(tmp_path / "t.csv", test_fraction=0.5, validation_fraction=0)


# ---------------------------------------------------------------------------- 7: null query ids
@pytest.mark.parametrize("null", [None, np.nan])
def test_a_null_query_id_in_parquet_is_refused(tmp_path, null):
    qids = ["a", "a", null, "b", "b", "c"] if null is None else [1.0, 1.0, null, 2.0, 2.0, 3.0]
    frame = pd.DataFrame({"qid": qids, "label": [1, 0, 1, 0, 1, 0], "f": np.arange(6.0)})
    frame.to_parquet(tmp_path / "t.parquet")
    with pytest.raises(DataFormatError, match=r"t\.parquet: row 3: query 'qid' is missing"):
        table_dataset(tmp_path / "t.parquet", test_fraction=0.5, validation_fraction=0)


# ---------------------------------------------------------------------------- 8: trec candidates
def test_trec_refuses_a_duplicate_candidate_row(tmp_path):
    (tmp_path / "qrels.txt").write_text("1 0 d1 2\n2 0 d5 1\n")
    rows = ["qid,docid,f", "1,d1,0.5", "1,d2,0.1", "2,d5,1.0", "1,d1,0.7", "2,d6,0.0"]
    (tmp_path / "f.csv").write_text("\n".join(rows) + "\n")
    match = r"f\.csv:5: a second row of query '1', document 'd1' \(the first is at line 2\)"
    with pytest.raises(DataFormatError, match=match):
        trec_dataset(tmp_path / "f.csv", qrels=tmp_path / "qrels.txt", test_fraction=0.5)


def test_trec_refuses_a_judged_query_without_candidates(tmp_path):
    (tmp_path / "qrels.txt").write_text("1 0 d1 2\n2 0 d5 1\n3 0 d9 1\n")
    rows = ["qid,docid,f", "1,d1,0.5", "1,d2,0.1", "2,d5,1.0", "2,d6,0.0"]
    (tmp_path / "f.csv").write_text("\n".join(rows) + "\n")
    with pytest.raises(DataFormatError, match=r"f\.csv: 1 query judged .* candidate row: '3'"):
        trec_dataset(tmp_path / "f.csv", qrels=tmp_path / "qrels.txt", test_fraction=0.5)


# ---------------------------------------------------------------------------- 9: ratio counts
@pytest.mark.parametrize(("fraction", "count"), [(0.29, 100), (0.57, 100), (0.58, 100)])
def test_ratio_split_holds_the_documented_count(fraction, count):
    """``floor(fraction * count)``: 0.29 * 100 is 28.999999999999996 in floating point."""
    users = torch.zeros(count, dtype=torch.long)
    inter = Interactions(users, torch.arange(count), torch.ones(count), torch.arange(count) * 1.0)
    ds = split_interactions(
        inter,
        1,
        count,
        split="ratio",
        test_fraction=fraction,
        validation_fraction=0.0,
        feedback="graded",
    )
    assert len(ds.test) == round(fraction * count)


# ---------------------------------------------------------------------------- 12: npz label key
def test_vectors_npz_uses_an_explicit_label_key(tmp_path):
    x = np.arange(24, dtype=np.float32).reshape(12, 2)
    wrong, right = np.zeros(12, np.int64), np.arange(12) % 3
    np.savez(tmp_path / "v.npz", x=x, y=wrong, label=right)
    ds = vectors_dataset(
        tmp_path / "v.npz", label="label", test_fraction=0.5, validation_fraction=0
    )
    assert len(ds.class_names) == 3
    assert len(vectors_dataset(tmp_path / "v.npz", test_fraction=0.5).class_names) == 1


# ---------------------------------------------------------------------------- 10: empty split
def test_vectors_refuse_an_empty_test_split(tmp_path):
    """3 classes x 2 samples: a quarter of 2 rounds to 0 in every class."""
    frame = pd.DataFrame({"a": np.arange(6.0), "label": [0, 0, 1, 1, 2, 2]})
    frame.to_csv(tmp_path / "v.csv", index=False)
    with pytest.raises(ValueError, match=r"a split holds no sample \(train 6, .*test 0 samples"):
        vectors_dataset(tmp_path / "v.csv", test_fraction=0.25, validation_fraction=0)


# ---------------------------------------------------------------------------- 13: physical lines
def test_errors_after_a_multi_line_field_name_the_physical_line(tmp_path):
    text = 'qid,label,f,note\n1,1,0.5,"two\nlines"\n1,0,oops,x\n2,1,0.1,y\n'
    (tmp_path / "t.csv").write_text(text)
    with pytest.raises(DataFormatError, match=r"t\.csv:4: feature 'f' value 'oops'"):
        table_dataset(tmp_path / "t.csv", features=["f"])
    (tmp_path / "r.csv").write_text('user,item,rating,note\n1,1,5,"a\nb\nc"\n1,2,bad,x\n')
    with pytest.raises(DataFormatError, match=r"r\.csv:5: rating 'bad' is not a number"):
        read_interactions(tmp_path / "r.csv")

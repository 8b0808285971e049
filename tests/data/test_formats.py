"""The format loaders of users' own data, the content-hash cache, and the named data sets as
presets of the same loaders (same numbers as before)."""

from __future__ import annotations

import dataclasses
import io
import logging

import numpy as np
import pandas as pd
import pytest
import torch

import rankloss.data as data
from rankloss.data import formats, read_interactions
from rankloss.data.datasets import _carve, _image_dataset, split_interactions
from rankloss.data.formats import (
    FORMATS,
    DataSource,
    data_source,
    interactions_dataset,
    svmlight_dataset,
    table_dataset,
    trec_dataset,
    vectors_dataset,
)
from rankloss.data.types import DataFormatError, Interactions


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("RANKLOSS_DATA", str(tmp_path / "cache"))


def _svmlight_rows(rng, queries, docs, features, first_qid=1, base=1):
    rows = []
    for q in range(queries):
        for _ in range(docs):
            values = rng.normal(size=features).round(3)
            rows.append((int(rng.integers(0, 5)), first_qid + q, values))
    return rows


def _write_svmlight(path, rows, base=1):
    lines = [
        f"{label} qid:{qid} " + " ".join(f"{i + base}:{v}" for i, v in enumerate(values))
        for label, qid, values in rows
    ]
    path.write_text("\n".join(lines) + "\n")


def _reference_lists(rows):
    """``{qid: (labels, features)}`` by plain loops, documents in file order."""
    out: dict[int, tuple[list[float], list[list[float]]]] = {}
    for label, qid, values in rows:
        labels, feats = out.setdefault(qid, ([], []))
        labels.append(float(label))
        feats.append([float(v) for v in values])
    return out


def _as_lists(split):
    out = {}
    for q in range(len(split)):
        m = split.mask[q]
        out[int(split.query_ids[q])] = (
            split.labels[q][m].tolist(),
            split.features[q][m].tolist(),
        )
    return out


def _close(got, want):
    assert got.keys() == want.keys()
    for q in want:
        assert got[q][0] == want[q][0]
        np.testing.assert_allclose(got[q][1], want[q][1], rtol=1e-6)


# ============================================================================ every format loads
def test_svmlight_one_file_split_by_queries(tmp_path):
    rows = _svmlight_rows(np.random.default_rng(0), 20, 4, 5)
    _write_svmlight(tmp_path / "a.svm", rows)
    ds = svmlight_dataset(tmp_path / "a.svm", test_fraction=0.2, validation_fraction=0.25, seed=3)
    assert (len(ds.train), len(ds.validation), len(ds.test)) == (12, 4, 4)
    ids = [set(s.query_ids.tolist()) for s in (ds.train, ds.validation, ds.test)]
    assert ids[0] | ids[1] | ids[2] == set(range(1, 21))
    assert not (ids[0] & ids[1] or ids[0] & ids[2] or ids[1] & ids[2])
    merged = {**_as_lists(ds.train), **_as_lists(ds.validation), **_as_lists(ds.test)}
    _close(merged, _reference_lists(rows))
    again = svmlight_dataset(
        tmp_path / "a.svm", test_fraction=0.2, validation_fraction=0.25, seed=3
    )
    assert torch.equal(again.test.query_ids, ds.test.query_ids)
    other = svmlight_dataset(
        tmp_path / "a.svm", test_fraction=0.2, validation_fraction=0.25, seed=4
    )
    assert not torch.equal(other.test.query_ids, ds.test.query_ids)


def test_svmlight_separate_files_share_one_width_and_base(tmp_path):
    rng = np.random.default_rng(1)
    train, test = _svmlight_rows(rng, 6, 3, 3), _svmlight_rows(rng, 2, 3, 5, first_qid=50)
    _write_svmlight(tmp_path / "train.svm", train)
    _write_svmlight(tmp_path / "test.svm", test)
    ds = svmlight_dataset(tmp_path / "train.svm", test=tmp_path / "test.svm", seed=0)
    # one-based in both files: 5 features, the train file's last two are zero
    assert ds.train.num_features == ds.test.num_features == 5
    _close(_as_lists(ds.test), _reference_lists(test))
    padded = [(lab, q, np.r_[v, 0.0, 0.0]) for lab, q, v in train]
    _close({**_as_lists(ds.train), **_as_lists(ds.validation)}, _reference_lists(padded))
    # a zero-based test file makes both zero-based (index 0 is a feature)
    _write_svmlight(tmp_path / "test0.svm", test, base=0)
    ds0 = svmlight_dataset(tmp_path / "train.svm", test=tmp_path / "test0.svm")
    assert ds0.test.num_features == 5
    _close(_as_lists(ds0.test), _reference_lists(test))
    shifted = [(lab, q, np.r_[0.0, v, 0.0]) for lab, q, v in train]
    _close({**_as_lists(ds0.train), **_as_lists(ds0.validation)}, _reference_lists(shifted))


def test_table_csv_and_parquet(tmp_path):
    rng = np.random.default_rng(2)
    frame = pd.DataFrame(
        {
            "query": np.repeat([f"q{i}" for i in range(10)], 3),
            "rel": rng.integers(0, 3, 30),
            "f1": rng.normal(size=30).round(3),
            "f2": rng.normal(size=30).round(3),
            "note": ["text"] * 30,
        }
    )
    frame.to_csv(tmp_path / "t.csv", index=False)
    frame.to_parquet(tmp_path / "t.parquet")
    for name in ("t.csv", "t.parquet"):
        ds = table_dataset(tmp_path / name, query="query", label="rel", validation_fraction=0.0)
        assert ds.validation is None and ds.train.num_features == 2  # "note" is not numeric
        want = {}
        codes = {q: i for i, q in enumerate(sorted(set(frame["query"])))}
        for q, lab, f1, f2 in zip(frame["query"], frame["rel"], frame["f1"], frame["f2"]):
            labels, feats = want.setdefault(codes[q], ([], []))
            labels.append(float(lab))
            feats.append([f1, f2])
        _close({**_as_lists(ds.train), **_as_lists(ds.test)}, want)
    named = table_dataset(tmp_path / "t.csv", query="query", label="rel", features=["f2"])
    assert named.train.num_features == 1


def test_distinct_query_ids_stay_distinct_lists(tmp_path):
    """Fractional ids and ids written differently ("01" and "1") are different queries."""
    frame = pd.DataFrame(
        {"qid": [1.5, 1.5, 1.7, 1.7, 2.0, 2.0], "label": [1, 0] * 3, "f": range(6)}
    )
    frame.to_parquet(tmp_path / "t.parquet")
    (tmp_path / "t.csv").write_text("qid,label,f\n01,1,1\n01,0,2\n1,1,3\n1,0,4\n2,1,5\n2,0,6\n")
    for name in ("t.parquet", "t.csv"):
        ds = table_dataset(tmp_path / name, test_fraction=0.34, validation_fraction=0.0)
        sizes = [int(n) for split in (ds.train, ds.test) for n in split.mask.sum(-1)]
        assert sorted(sizes) == [2, 2, 2], name
    # integer ids (written as floats or as text) keep their values
    frame.assign(qid=[3.0, 3.0, 7.0, 7.0, 9.0, 9.0]).to_parquet(tmp_path / "i.parquet")
    ds = table_dataset(tmp_path / "i.parquet", test_fraction=0.34, validation_fraction=0.0)
    assert sorted(ds.train.query_ids.tolist() + ds.test.query_ids.tolist()) == [3, 7, 9]


def test_trec_qrels_and_features(tmp_path):
    (tmp_path / "qrels.txt").write_text("1 0 d1 2\n1 0 d2 0\n2 0 d5 1\n2 0 dX 1\n")
    rows = ["qid,docid,f1,f2"]
    rows += ["1,d1,0.5,1.0", "1,d2,0.1,0.2", "1,d3,0.3,0.3", "2,d4,1.0,0.0", "2,d5,2.0,1.0"]
    rows += ["9,d9,1.0,1.0"]  # a query with no judgement: dropped
    (tmp_path / "features.csv").write_text("\n".join(rows) + "\n")
    ds = trec_dataset(
        tmp_path / "features.csv",
        qrels=tmp_path / "qrels.txt",
        test_fraction=0.5,
        validation_fraction=0.0,
    )
    got = {**_as_lists(ds.train), **_as_lists(ds.test)}
    want = {
        1: ([2.0, 0.0, 0.0], [[0.5, 1.0], [0.1, 0.2], [0.3, 0.3]]),
        2: ([0.0, 1.0], [[1.0, 0.0], [2.0, 1.0]]),
    }
    _close(got, want)


def test_interactions_with_string_ids(tmp_path):
    rng = np.random.default_rng(3)
    lines = ["user,item,rating,time"]
    for u in range(12):
        for t, i in enumerate(rng.choice(20, 6, replace=False)):
            lines.append(f"u{u},i{i},{rng.integers(1, 6)},{100 + t}")
    (tmp_path / "r.csv").write_text("\n".join(lines) + "\n")
    ds = interactions_dataset(tmp_path / "r.csv", feedback="graded", split="leave-last-out")
    assert ds.num_users == 12 and len(ds.test) == 12 and ds.user_ids[0] == "u0"
    inter, users, items = data.read_interactions(tmp_path / "r.csv")
    want = split_interactions(
        inter, len(users), len(items), feedback="graded", split="leave-last-out"
    )
    for s in ("train", "validation", "test"):
        assert torch.equal(getattr(ds, s).item, getattr(want, s).item)
    with pytest.raises(TypeError, match="unknown option"):
        interactions_dataset(tmp_path / "r.csv", splitt="random")


def test_vectors_npz_parquet_csv(tmp_path):
    rng = np.random.default_rng(4)
    x = rng.normal(size=(60, 4)).astype(np.float32)
    y = np.repeat([10, 20, 30], 20)
    np.savez(tmp_path / "v.npz", x=x, y=y)
    frame = pd.DataFrame(x, columns=["a", "b", "c", "d"]).assign(label=y)
    frame.to_parquet(tmp_path / "v.parquet")
    frame.to_csv(tmp_path / "v.csv", index=False)
    for name in ("v.npz", "v.parquet", "v.csv"):
        ds = vectors_dataset(tmp_path / name, test_fraction=0.25, validation_fraction=0.2, seed=1)
        assert ds.class_names == ["10", "20", "30"] and ds.num_classes == 3
        sizes = [torch.bincount(s.y, minlength=3).tolist() for s in (ds.train, ds.test)]
        assert sizes == [[12, 12, 12], [5, 5, 5]]  # stratified
        pooled = torch.cat([ds.train.x, ds.validation.x, ds.test.x])
        labels = torch.cat([ds.train.y, ds.validation.y, ds.test.y])
        # every sample comes back once, with its class renumbered 10 -> 0, 20 -> 1, 30 -> 2
        want = sorted((tuple(r), int(c) // 10 - 1) for r, c in zip(x.tolist(), y))
        got = sorted((tuple(r), int(c)) for r, c in zip(pooled.tolist(), labels.tolist()))
        assert len(got) == len(want)
        for (gr, gc), (wr, wc) in zip(got, want):
            assert gc == wc and np.allclose(gr, wr, atol=1e-6)


# ============================================================================ bad files
@pytest.mark.badinput("data")
def test_bad_svmlight_line_names_file_and_line(tmp_path):
    (tmp_path / "a.svm").write_text("1 qid:1 1:0.5\n0 qid:1 1:0.2\n2 qid:2 1:nan\n")
    with pytest.raises(DataFormatError, match=r"a\.svm:3: feature '1:nan' is not a finite number"):
        svmlight_dataset(tmp_path / "a.svm")
    (tmp_path / "b.svm").write_text("1 qid:1 1:0.5\n1 1:0.5\n")
    (tmp_path / "c.svm").write_text("1 qid:1 1:0.5\n0 qid:1 1:0.2\n")
    with pytest.raises(DataFormatError, match=r"b\.svm:2: missing 'qid"):
        svmlight_dataset(tmp_path / "c.svm", test=tmp_path / "b.svm")


@pytest.mark.badinput("data")
@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("qid,label,f\n1,1,0.5\n1,0\n", r"t\.csv:3: expected 3 fields"),
        ("qid,label,f\n1,1,0.5\n1,0,abc\n", r"t\.csv:3: feature 'f' value 'abc' is not a number"),
        ("qid,label,f\n1,1,0.5\n\n1,inf,0.1\n", r"t\.csv:4: label 'label' value 'inf' is not fin"),
        ("qid,rel,f\n1,1,0.5\n", r"t\.csv: no label column 'label'"),
    ],
)
def test_bad_table_rows(tmp_path, text, match):
    (tmp_path / "t.csv").write_text(text)
    with pytest.raises(DataFormatError, match=match):
        table_dataset(tmp_path / "t.csv")


@pytest.mark.badinput("data")
def test_bad_parquet_row_is_named(tmp_path):
    pd.DataFrame({"qid": [1, 1, 2], "label": [1.0, np.nan, 0.0], "f": [1, 2, 3]}).to_parquet(
        tmp_path / "t.parquet"
    )
    with pytest.raises(DataFormatError, match=r"t\.parquet: row 2: label 'label' value nan"):
        table_dataset(tmp_path / "t.parquet")


@pytest.mark.badinput("data")
def test_bad_interactions_and_vectors_lines(tmp_path):
    (tmp_path / "r.csv").write_text("user,item,rating\n1,2,5\n1,3,x\n")
    with pytest.raises(DataFormatError, match=r"r\.csv:3: rating 'x' is not a number"):
        interactions_dataset(tmp_path / "r.csv")
    (tmp_path / "low.csv").write_text("user,item,rating\n1,2,1\n1,3,3\n2,2,2\n")
    with pytest.raises(DataFormatError, match=r"low\.csv: .*no interaction has rating >= 4"):
        interactions_dataset(tmp_path / "low.csv", split="leave-last-out")
    (tmp_path / "v.csv").write_text("a,label\n0.5,1\n0.2,1.5\n")
    with pytest.raises(DataFormatError, match=r"v\.csv:3: label 1\.5 is not an integer"):
        vectors_dataset(tmp_path / "v.csv")
    (tmp_path / "q.txt").write_text("1 0 d1 2\n1 0 d2 1 extra\n")
    (tmp_path / "f.csv").write_text("qid,docid,f\n1,d1,0.5\n")
    with pytest.raises(DataFormatError, match=r"q\.txt:2: expected 3 \(BEIR\) or 4 \(TREC\)"):
        trec_dataset(tmp_path / "f.csv", qrels=tmp_path / "q.txt")
    (tmp_path / "f.csv").write_text("qid,docid,f\n1,d1,0.5\n1,d2,0.1\n")
    for qrels, message in [
        (
            "1 0 d1 2\n1 0 d1 0\n",
            r"q\.txt:2: a second judgment of document 'd1' for query "
            r"'1' \(the first is at line 1\)",
        ),
        ("1 0 d1 2\n1 0 d2 inf\n", r"q\.txt:2: relevance 'inf' is not a finite number"),
        ("1 0 d1 nan\n", r"q\.txt:1: relevance 'nan' is not a finite number"),
    ]:
        (tmp_path / "q.txt").write_text(qrels)
        with pytest.raises(DataFormatError, match=message):
            trec_dataset(tmp_path / "f.csv", qrels=tmp_path / "q.txt")


def test_trec_fractional_relevance_is_kept(tmp_path):
    (tmp_path / "f.csv").write_text(
        "qid,docid,f\n" + "".join(f"{q},d{d},{q + d / 10}\n" for q in range(4) for d in range(2))
    )
    (tmp_path / "q.txt").write_text("".join(f"{q} 0 d0 1\n" for q in range(4)) + "0 0 d1 0.5\n")
    ds = trec_dataset(
        tmp_path / "f.csv", qrels=tmp_path / "q.txt", test_fraction=0.5, validation_fraction=0.0
    )
    labels = {
        q: row
        for split in (ds.train, ds.test)
        for q, row in zip(split.query_ids.tolist(), split.labels.tolist())
    }
    assert labels[0] == [1.0, 0.5] and labels[1] == [1.0, 0.0]


@pytest.mark.badinput("data")
def test_data_source_checks_keys_files_and_options(tmp_path):
    (tmp_path / "a.svm").write_text("1 qid:1 1:0.5\n")
    where = "bench.toml: [[suite]] 'x' dataset"
    cases = [
        ({"path": "a.svm"}, "needs 'format'"),
        ({"format": "csv", "path": "a.svm"}, "unknown format 'csv'; known: svmlight"),
        ({"format": "svmlight"}, "format 'svmlight' needs 'path'"),
        ({"format": "svmlight", "path": "b.svm"}, "path '.*b.svm' is not a file"),
        (
            {"format": "svmlight", "path": "a.svm", "qrels": "a.svm"},
            r"unknown key\(s\) \['qrels'\]",
        ),
        ({"format": "svmlight", "path": "a.svm", "seed": -1}, "seed must be >= 0"),
        ({"format": "svmlight", "path": "a.svm", "test_fraction": 1.0}, r"must be in \[0, 1\)"),
        ({"format": "svmlight", "path": "a.svm", "normalize": "zscore"}, "normalize must be one"),
        ({"format": "interactions", "path": "a.svm", "seed": "0"}, "seed must be an int"),
    ]
    for table, match in cases:
        with pytest.raises(ValueError, match=match) as error:
            data_source(table, base=tmp_path, where=where)
        assert str(error.value).startswith(where)


# ============================================================================ the cache
def _counting(monkeypatch, name):
    calls = []
    fmt = FORMATS[name]

    def loader(*args, **kwargs):
        calls.append(1)
        return fmt.loader(*args, **kwargs)

    monkeypatch.setitem(FORMATS, name, dataclasses.replace(fmt, loader=loader))
    return calls


def test_cache_is_hit_then_missed_after_a_change(tmp_path, monkeypatch, caplog):
    rows = _svmlight_rows(np.random.default_rng(5), 10, 3, 4)
    _write_svmlight(tmp_path / "a.svm", rows)
    calls = _counting(monkeypatch, "svmlight")
    source = data_source({"format": "svmlight", "path": "a.svm"}, base=tmp_path)
    first = source.load(normalize="standardize")
    stored = list((tmp_path / "cache" / "parsed").iterdir())
    assert len(calls) == 1 and len(stored) == 1 and stored[0].suffix == ".pt"
    with caplog.at_level(logging.INFO, logger="rankloss.data"):
        second = source.load(normalize="standardize")
    assert len(calls) == 1 and "using the parsed copy" in caplog.text
    for s in ("train", "validation", "test"):
        for field in ("features", "labels", "mask", "query_ids"):
            assert torch.equal(
                getattr(getattr(first, s), field), getattr(getattr(second, s), field)
            )
    source.load(normalize=None)  # other options: parsed again
    assert len(calls) == 2
    label = source.label()
    rows.append((3, 99, np.zeros(4)))  # a new query: parsed again, with a new label
    _write_svmlight(tmp_path / "a.svm", rows)
    changed = source.load(normalize="standardize")
    assert len(calls) == 3 and source.label() != label
    total = sum(int(s.mask.sum()) for s in (changed.train, changed.validation, changed.test))
    assert total == len(rows) == 31
    # a damaged stored copy is parsed again (and replaced)
    for path in (tmp_path / "cache" / "parsed").iterdir():
        path.write_bytes(b"garbage")
    source.load(normalize="standardize")
    assert len(calls) == 4


def test_cache_round_trips_every_type(tmp_path):
    (tmp_path / "r.csv").write_text(
        "user,item,rating,time\n"
        + "\n".join(f"u{u},i{i},5,{i}" for u in range(4) for i in range(5))
    )
    np.savez(
        tmp_path / "v.npz", x=np.arange(40, dtype=np.float32).reshape(20, 2), y=np.arange(20) % 2
    )
    for table in (
        {"format": "interactions", "path": "r.csv", "split": "leave-last-out"},
        {"format": "vectors", "path": "v.npz"},
    ):
        source = data_source(table, base=tmp_path)
        parsed, stored = source.load(cache=False), (source.load(), source.load())[1]
        assert type(parsed) is type(stored)
        for s in ("train", "validation", "test"):
            a, b = getattr(parsed, s), getattr(stored, s)
            for field in dataclasses.fields(a):
                assert torch.equal(getattr(a, field.name), getattr(b, field.name))
        if table["format"] == "interactions":
            assert list(stored.user_ids) == ["u0", "u1", "u2", "u3"]
        else:
            assert stored.class_names == ["0", "1"]


def test_spec_round_trip(tmp_path):
    (tmp_path / "a.svm").write_text("1 qid:1 1:0.5\n")
    source = data_source({"format": "svmlight", "path": "a.svm", "seed": 2}, base=tmp_path)
    assert DataSource.is_spec(source.spec()) and not DataSource.is_spec("mslr10k-sample")
    assert DataSource.from_spec(source.spec()) == source
    assert source.files["path"] == str((tmp_path / "a.svm").resolve())
    assert source.label().startswith("a.svm (svmlight, sha256 ")


# ============================================================================ presets
def _mslr_files(folder):
    folder.mkdir()
    rng = np.random.default_rng(0)
    for name, queries in (("msn1.fold1.train.5k.txt", 10), ("msn1.fold1.test.5k.txt", 4)):
        rows = _svmlight_rows(rng, queries, 4, 136)
        _write_svmlight(folder / name, rows)


def _normalised(split, method):
    return split.map_features(lambda f, m: data.normalize_lists(f, m, method))


def test_mslr_preset_gives_the_same_data_as_before(tmp_path):
    _mslr_files(tmp_path / "m")
    for normalize, seed in ((None, 0), ("standardize", 3)):
        got = data.load(
            "mslr10k-sample", path=tmp_path / "m", verify=False, seed=seed, normalize=normalize
        )
        # the loader as it was: read both files, carve validation queries, normalise
        read = lambda n: data.read_svmlight(tmp_path / "m" / n, num_features=136, zero_based=False)  # noqa: E731
        train, test = read("msn1.fold1.train.5k.txt"), read("msn1.fold1.test.5k.txt")
        kept, carved = _carve(len(train), 0.2, seed)
        train, validation = train.subset(kept), train.subset(carved)
        if normalize is not None:
            train, validation, test = (_normalised(s, normalize) for s in (train, validation, test))
        for name, want in (("train", train), ("validation", validation), ("test", test)):
            for field in ("features", "labels", "mask", "query_ids"):
                assert torch.equal(getattr(getattr(got, name), field), getattr(want, field))
        assert got.card.name == "mslr10k-sample"


def test_movielens_preset_gives_the_same_data_as_before(tmp_path):
    (tmp_path / "ml").mkdir()
    rng = np.random.default_rng(1)
    rows = ["user_id:token\titem_id:token\trating:float\ttimestamp:float"]
    for u in range(1, 16):
        for t, i in enumerate(rng.choice(30, size=7, replace=False)):
            rows.append(f"{u}\t{i + 1}\t{rng.integers(1, 6)}\t{1000 + t}")
    (tmp_path / "ml" / "ml-100k.inter").write_text("\n".join(rows) + "\n")
    for options in ({}, {"split": "leave-last-out", "feedback": "graded", "seed": 4}):
        got = data.load("movielens-100k", path=tmp_path / "ml", verify=False, **options)
        inter, users, items = data.read_interactions(tmp_path / "ml" / "ml-100k.inter")
        want = split_interactions(
            inter, len(users), len(items), user_ids=users.ids, item_ids=items.ids, **options
        )
        for name in ("train", "validation", "test"):
            for field in ("user", "item", "rating", "time"):
                assert torch.equal(
                    getattr(getattr(got, name), field), getattr(getattr(want, name), field)
                )
        assert (got.item_ids == want.item_ids).all() and got.card.name == "movielens-100k"


def test_digits_preset_gives_the_same_data_as_before():
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = torch.from_numpy(bunch.images.astype(np.float32) / 16.0).unsqueeze(1)
    y = torch.from_numpy(bunch.target.astype(np.int64))
    want = _image_dataset(
        x, y, test=None, test_fraction=0.25, validation_fraction=0.1, seed=2, card=None,
        class_names=[str(i) for i in range(10)],
    )  # fmt: skip
    got = data.load("digits", seed=2)
    for name in ("train", "validation", "test"):
        assert torch.equal(getattr(got, name).x, getattr(want, name).x)
        assert torch.equal(getattr(got, name).y, getattr(want, name).y)
    assert got.class_names == want.class_names and got.card.name == "digits"


def test_formats_module_lists_the_loaders():
    assert set(FORMATS) == {"svmlight", "table", "trec", "interactions", "vectors"}
    assert set(formats.FORMAT_TASKS) == set(FORMATS)


def test_an_unwritable_cache_still_loads(tmp_path, monkeypatch, caplog):
    (tmp_path / "a.svm").write_text("".join(f"{q % 2} qid:{q // 2} 1:{q}\n" for q in range(20)))
    calls = _counting(monkeypatch, "svmlight")

    def refuse(path, write):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(formats, "atomic_write", refuse)
    source = data_source({"format": "svmlight", "path": "a.svm"}, base=tmp_path)
    with caplog.at_level(logging.WARNING, logger="rankloss.data"):
        first, second = source.load(), source.load()
    assert len(calls) == 2 and "cannot store the parsed copy" in caplog.text
    assert torch.equal(first.test.query_ids, second.test.query_ids)


@pytest.mark.badinput("data")
def test_bad_vectors_are_refused_naming_the_file(tmp_path):
    rng = np.random.default_rng(5)
    x = rng.normal(size=(40, 6)).astype(np.float32)
    y = np.repeat(np.arange(4), 10)
    with_nan = x.copy()
    with_nan[7, 2] = np.nan
    np.savez(tmp_path / "nan.npz", x=with_nan, y=y)
    np.savez(tmp_path / "flat.npz", x=x[:, 0], y=y)
    np.savez(tmp_path / "ok.npz", x=x, y=y)
    np.savez(tmp_path / "five.npz", x=x[:, :5], y=y)
    (tmp_path / "nan.csv").write_text(
        "".join(",".join(map(str, row)) + f",{label}\n" for row, label in zip(with_nan, y))
    )
    (tmp_path / "inf.csv").write_text("a,b,label\n1,2,0\n1,inf,1\n")
    cases = [
        ("nan.npz", {}, r"nan\.npz: 'x': sample 7 has a value that is not finite"),
        ("flat.npz", {}, r"flat\.npz: 'x' \(40,\) has one value per sample"),
        ("ok.npz", {"shape": [1, 2, 2]}, r"ok\.npz: shape \[1, 2, 2\] holds 4 values, but each "),
        ("nan.csv", {"header": False}, r"nan\.csv:8: value nan is not finite"),
        ("inf.csv", {}, r"inf\.csv:3: value 'b' value 'inf' is not finite"),
        ("ok.npz", {"test": "five.npz"}, r"five\.npz: samples of shape \[5\], but those of "),
    ]
    for name, options, message in cases:
        if "test" in options:
            options = {**options, "test": tmp_path / options["test"]}
        with pytest.raises(DataFormatError, match=message):
            vectors_dataset(tmp_path / name, **options)
    assert vectors_dataset(tmp_path / "ok.npz", shape=[2, 3]).train.x.shape[1:] == (2, 3)


# Edge cases of the loaders: each of these failed before its fix.


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

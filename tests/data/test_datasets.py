"""Named data sets from local files (offline), the source chain, imbalance and batching."""

from __future__ import annotations

import gzip

import numpy as np
import pandas as pd
import pytest
import torch

import rankloss.data as data
from rankloss.data import (
    DataFile,
    DataUnavailableError,
    LocalPath,
    URLSource,
    fetch,
    sha256sum,
)
from rankloss.data._fetch import Source


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("RANKLOSS_DATA", str(tmp_path / "cache"))


class _Failing(Source):
    def describe(self):
        return "failing package"

    def get(self, files, dest):
        raise RuntimeError("registry unreachable")


def test_available_and_cards():
    names = data.available()
    for name in (
        "mslr10k-sample",
        "movielens-100k",
        "digits",
        "mnist-5k",
        "fashion-mnist",
        "clothing-reviews",
    ):
        assert name in names
        card = data.card(name)
        assert card.license and card.source and card.split and card.size
        assert "###" in card.to_markdown()
    assert all(len(h) == 64 for h in data.card("mslr10k-sample").files.values())
    with pytest.raises(KeyError, match="did you mean"):
        data.load("mslr10k-sampel")


def test_fetch_chain_lists_every_source(tmp_path):
    (tmp_path / "local").mkdir()
    (tmp_path / "local" / "f.txt").write_text("other bytes")
    with pytest.raises(DataUnavailableError) as info:
        fetch(
            "thing",
            [DataFile("f.txt", "0" * 64)],
            [
                LocalPath(tmp_path / "local"),
                LocalPath(tmp_path / "nowhere"),
                URLSource({"f.txt": "http://unreachable.invalid/f.txt"}, timeout=1),
                _Failing(),
            ],
        )
    text = str(info.value)
    assert "tried 4 source(s)" in text and "checksum mismatch" in text
    assert "nowhere" in text and "unreachable.invalid" in text and "registry unreachable" in text


def test_fetch_url_verifies_and_caches(tmp_path):
    src = tmp_path / "f.txt"
    src.write_text("hello")
    digest = sha256sum(src)
    paths = fetch("thing", [DataFile("f.txt", digest)], [URLSource({"f.txt": src.as_uri()})])
    assert paths["f.txt"].parent == data.cache_dir("thing")
    assert paths["f.txt"].read_text() == "hello"
    # cached now: a failing chain still works
    assert fetch("thing", [DataFile("f.txt", digest)], [_Failing()])["f.txt"] == paths["f.txt"]


def test_a_users_path_comes_before_the_cache(tmp_path):
    """``path=`` is used first: a file already in the cache (unchecked with verify=False, or
    verified) does not hide the user's own."""
    cached = data.cache_dir("thing") / "f.txt"
    cached.parent.mkdir(parents=True, exist_ok=True)
    cached.write_text("cached bytes")
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "f.txt").write_text("my bytes")
    paths = fetch("thing", [DataFile("f.txt")], [LocalPath(tmp_path / "mine"), _Failing()])
    assert paths["f.txt"].read_text() == "my bytes"
    # without a path, the cache serves
    assert fetch("thing", [DataFile("f.txt")], [_Failing()])["f.txt"].read_text() == "cached bytes"
    # a user's path that fails its checksum falls back to the cache when that one verifies
    digest = sha256sum(cached)
    paths = fetch("thing", [DataFile("f.txt", digest)], [LocalPath(tmp_path / "mine")])
    assert paths["f.txt"].read_text() == "cached bytes"


def _mslr_files(folder):
    folder.mkdir()
    rng = np.random.default_rng(0)
    for name, queries in (("msn1.fold1.train.5k.txt", 10), ("msn1.fold1.test.5k.txt", 4)):
        lines = []
        for q in range(queries):
            for _ in range(5):
                feats = " ".join(f"{i}:{rng.random():.3f}" for i in range(1, 137))
                lines.append(f"{rng.integers(5)} qid:{q + 1} {feats}")
        (folder / name).write_text("\n".join(lines) + "\n")


def test_mslr_from_local_path(tmp_path):
    _mslr_files(tmp_path / "m")
    ds = data.load(
        "mslr10k-sample",
        path=tmp_path / "m",
        verify=False,
        validation_fraction=0.2,
        normalize="standardize",
    )
    assert ds.train.features.shape == (8, 5, 136) and len(ds.validation) == 2
    assert len(ds.test) == 4 and ds.train.mask.dtype == torch.bool
    assert set(ds.train.query_ids.tolist()).isdisjoint(ds.validation.query_ids.tolist())
    again = data.load("mslr10k-sample", path=tmp_path / "m", verify=False)
    assert torch.equal(again.validation.query_ids, ds.validation.query_ids)
    with pytest.raises(DataUnavailableError, match="checksum mismatch"):
        fetch(
            "mslr10k-sample",
            [DataFile("msn1.fold1.train.5k.txt", "0" * 64)],
            [LocalPath(tmp_path / "m")],
        )


def _movielens(folder):
    folder.mkdir()
    rows = ["user_id:token\titem_id:token\trating:float\ttimestamp:float"]
    rng = np.random.default_rng(1)
    for u in range(1, 21):
        for t, i in enumerate(rng.choice(30, size=8, replace=False)):
            rows.append(f"{u}\t{i + 1}\t{rng.integers(1, 6)}\t{1000 + t}")
    (folder / "ml-100k.inter").write_text("\n".join(rows) + "\n")


def test_movielens_splits(tmp_path):
    _movielens(tmp_path / "ml")
    implicit = data.load("movielens-100k", path=tmp_path / "ml", verify=False)
    assert (implicit.train.rating >= 4).all() and implicit.num_users == 20
    assert len(implicit.train) + len(implicit.validation) + len(implicit.test) == int(
        sum(
            1
            for line in (tmp_path / "ml" / "ml-100k.inter").read_text().splitlines()[1:]
            if float(line.split("\t")[2]) >= 4
        )
    )
    graded = data.load(
        "movielens-100k",
        path=tmp_path / "ml",
        verify=False,
        feedback="graded",
        split="leave-last-out",
    )
    assert len(graded.test) == 20 and len(graded.validation) == 20
    # the test item of each user is their latest interaction
    latest = graded.train.per_user(20, "time")
    for u, t in zip(graded.test.user.tolist(), graded.test.time.tolist()):
        assert t > latest[u].max()
    users, items, gains = graded.held_out("test")
    assert len(users) == 20 and all(len(i) == 1 for i in items)
    assert gains[0].item() == graded.test.rating[graded.test.user == users[0]].item()


def test_images_and_imbalance(tmp_path):
    digits = data.load("digits", seed=3)
    assert digits.train.x.shape[1:] == (1, 8, 8) and digits.num_classes == 10
    total = len(digits.train) + len(digits.validation) + len(digits.test)
    assert total == 1797
    imb = data.imbalanced(digits, classes=[0, 1], fraction=0.1, seed=0)
    counts = torch.bincount(imb.train.y, minlength=10)
    full = torch.bincount(digits.train.y, minlength=10)
    assert counts[0] == int(np.ceil(int(full[0]) * 0.1)) and counts[5] == full[5]
    assert len(imb.test) == len(digits.test)
    x, y = data.imbalanced((np.zeros((10, 2)), np.array([0] * 5 + [1] * 5)), [1], 0.2, seed=1)
    assert x.shape == (6, 2) and (y == 1).sum() == 1


def test_mnist5k_and_fashion_from_local_files(tmp_path):
    folder = tmp_path / "mn"
    folder.mkdir()
    rows = np.concatenate([np.zeros((50, 784), np.int64), np.arange(50)[:, None] % 10], 1)
    with gzip.open(folder / "mnist_5k.csv.gz", "wt") as f:
        pd.DataFrame(rows).to_csv(f, header=False, index=False)
    ds = data.load("mnist-5k", path=folder, verify=False, validation_fraction=0.0)
    assert ds.train.x.shape == (40, 1, 28, 28) and len(ds.test) == 10

    from tests.data.test_loaders import _write_idx

    fm = tmp_path / "fm"
    fm.mkdir()
    for prefix, n in (("train", 20), ("t10k", 10)):
        _write_idx(fm / f"{prefix}-images-idx3-ubyte.gz", np.zeros((n, 28, 28), np.uint8))
        _write_idx(fm / f"{prefix}-labels-idx1-ubyte.gz", (np.arange(n) % 10).astype(np.uint8))
    ds = data.load("fashion-mnist", path=fm, verify=False, validation_fraction=0.5)
    assert len(ds.train) == 10 and len(ds.validation) == 10 and len(ds.test) == 10


def test_reviews_to_retrieval():
    frame = pd.DataFrame(
        {
            "Title": ["Nice", None, "Bad fit", "Love", "Great"],
            "Review Text": ["soft fabric", "no title", "too small", "wear it daily", None],
            "Class Name": ["Knits", "Knits", "Dresses", "Knits", "Pants"],
        }
    )
    ds = data.reviews_to_retrieval(frame, test_fraction=1 / 3, validation_fraction=0.0)
    assert sorted(ds.corpus) == ["d0", "d2", "d3"]
    assert len(ds.train) == 2 and len(ds.test) == 1
    q = next(iter(ds.test.qrels))
    assert ds.test.qrels[q] == {"d" + q[1:]: 1}
    assert ds.doc_labels["d2"] != ds.doc_labels["d0"]


def test_batching_helpers():
    g = torch.Generator().manual_seed(0)
    features = torch.arange(2 * 6 * 1, dtype=torch.float32).reshape(2, 6, 1)
    labels = torch.arange(12, dtype=torch.float32).reshape(2, 6)
    mask = torch.tensor([[True] * 6, [True, True, False, False, False, False]])
    f, y, m = data.sample_lists(features, labels, mask, 3, generator=g)
    assert f.shape == (2, 3, 1) and m[0].all() and m[1].tolist() == [True, True, False]
    assert torch.equal(f[..., 0], y)  # features and labels stay aligned
    z = data.normalize_lists(features, mask, "standardize")
    assert torch.allclose(z[0, :, 0].mean(), torch.tensor(0.0), atol=1e-6)
    assert (z[1, 2:] == 0).all()
    assert torch.allclose(
        data.normalize_lists(torch.tensor([[[np.e - 1]]]), torch.tensor([[True]]), "log1p"),
        torch.tensor([[[1.0]]]),
    )
    with pytest.raises(ValueError, match="unknown method"):
        data.normalize_lists(features, mask, "zscore")
    padded, pmask = data.pad_lists([torch.ones(2), torch.ones(3)])
    assert padded.shape == (2, 3) and pmask.sum() == 5

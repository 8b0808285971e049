"""The typed data set objects that :func:`rankloss.data.load` returns."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch
from torch import Tensor

__all__ = [
    "DataFormatError",
    "DatasetCard",
    "LTRSplit",
    "LTRDataset",
    "LabelledSplit",
    "LabelledDataset",
    "Interactions",
    "RecDataset",
    "TextRetrievalSplit",
    "TextRetrievalDataset",
]


class DataFormatError(ValueError):
    """Malformed input; the message starts with ``file:line:`` (or ``file: row N:``)."""

    def __init__(self, path: object, line: int | None, message: str) -> None:
        self.path, self.line = str(path), line
        where = f"{path}:{line}" if line is not None else f"{path}"
        super().__init__(f"{where}: {message}")


@dataclass(frozen=True)
class DatasetCard:
    """What a named data set is: size, license, source, split and checksums of its files."""

    name: str
    area: str
    description: str
    size: str
    license: str
    source: str
    split: str
    files: dict[str, str] = field(default_factory=dict)  # file name -> sha256
    citation: str = ""

    def to_markdown(self) -> str:
        rows = [
            f"### `{self.name}`",
            "",
            self.description,
            "",
            "| | |",
            "|---|---|",
            f"| area | {self.area} |",
            f"| size | {self.size} |",
            f"| license | {self.license} |",
            f"| source | {self.source} |",
            f"| split | {self.split} |",
        ]
        if self.citation:
            rows.append(f"| citation | {self.citation} |")
        for name, digest in self.files.items():
            rows.append(f"| sha256 `{name}` | `{digest}` |")
        return "\n".join(rows) + "\n"

    def __str__(self) -> str:
        return self.to_markdown()


# ----------------------------------------------------------------------------- learning to rank
@dataclass
class LTRSplit:
    """Padded query lists: ``features [Q, n, f]`` float32, ``labels [Q, n]`` float32,
    ``mask [Q, n]`` bool, ``query_ids [Q]`` int64."""

    features: Tensor
    labels: Tensor
    mask: Tensor
    query_ids: Tensor

    def __post_init__(self) -> None:
        q, n = self.mask.shape
        if self.features.shape[:2] != (q, n) or self.labels.shape != (q, n):
            raise ValueError(
                f"LTRSplit: features {list(self.features.shape)}, labels "
                f"{list(self.labels.shape)} and mask {list(self.mask.shape)} disagree"
            )

    def __len__(self) -> int:
        return self.mask.shape[0]

    @property
    def num_features(self) -> int:
        return self.features.shape[-1]

    @property
    def num_documents(self) -> int:
        return int(self.mask.sum())

    def subset(self, index: Tensor | np.ndarray | list[int]) -> LTRSplit:
        """The lists at ``index``, trimmed to the longest of them."""
        index = torch.as_tensor(np.asarray(index), dtype=torch.long)
        mask = self.mask[index]
        n = int(mask.sum(-1).max()) if len(index) else 0
        return LTRSplit(
            self.features[index, :n], self.labels[index, :n], mask[:, :n], self.query_ids[index]
        )

    def map_features(self, fn: Any) -> LTRSplit:
        return replace(self, features=fn(self.features, self.mask))


@dataclass
class LTRDataset:
    """``train`` / ``validation`` / ``test`` :class:`LTRSplit` (validation may be ``None``)."""

    train: LTRSplit
    test: LTRSplit
    validation: LTRSplit | None = None
    card: DatasetCard | None = None

    @property
    def num_features(self) -> int:
        return self.train.num_features

    def split(self, name: str) -> LTRSplit:
        value = getattr(self, name, None)
        if not isinstance(value, LTRSplit):
            raise KeyError(f"LTRDataset has no split {name!r}")
        return value


# ----------------------------------------------------------------------------- labelled arrays
@dataclass
class LabelledSplit:
    """``x [N, ...]`` float32 (images ``[N, C, H, W]`` or embeddings ``[N, d]``), ``y [N]``
    int64."""

    x: Tensor
    y: Tensor

    def __post_init__(self) -> None:
        if self.x.shape[0] != self.y.shape[0] or self.y.dim() != 1:
            raise ValueError(
                f"LabelledSplit: x has shape {list(self.x.shape)}, y has {list(self.y.shape)}"
            )

    def __len__(self) -> int:
        return self.y.shape[0]

    def subset(self, index: Tensor | np.ndarray | list[int]) -> LabelledSplit:
        index = torch.as_tensor(np.asarray(index), dtype=torch.long)
        return LabelledSplit(self.x[index], self.y[index])


@dataclass
class LabelledDataset:
    train: LabelledSplit
    test: LabelledSplit
    validation: LabelledSplit | None = None
    class_names: list[str] | None = None
    card: DatasetCard | None = None

    @property
    def num_classes(self) -> int:
        ys = [s.y for s in (self.train, self.validation, self.test) if s is not None]
        return int(torch.cat(ys).max()) + 1

    def split(self, name: str) -> LabelledSplit:
        value = getattr(self, name, None)
        if not isinstance(value, LabelledSplit):
            raise KeyError(f"LabelledDataset has no split {name!r}")
        return value


# ----------------------------------------------------------------------------- recommendation
@dataclass
class Interactions:
    """Interaction log with contiguous ids: ``user``, ``item`` int64, ``rating``, ``time``
    float32/float64 (``[N]`` each)."""

    user: Tensor
    item: Tensor
    rating: Tensor
    time: Tensor

    def __len__(self) -> int:
        return self.user.shape[0]

    def subset(self, index: Tensor | np.ndarray) -> Interactions:
        index = torch.as_tensor(np.asarray(index), dtype=torch.long)
        return Interactions(
            self.user[index], self.item[index], self.rating[index], self.time[index]
        )

    def per_user(self, num_users: int, values: str = "item") -> list[Tensor]:
        """``values`` (``item``, ``rating``, ``time``) grouped by user, in log order."""
        order = torch.argsort(self.user, stable=True)
        counts = torch.bincount(self.user, minlength=num_users).tolist()
        return list(torch.split(getattr(self, values)[order], counts))


@dataclass
class RecDataset:
    """Users x items with ``train`` / ``validation`` / ``test`` interactions.

    ``labels`` of an interaction: 1 for implicit feedback, the rating for graded feedback (see
    :meth:`gains`). Evaluation ranks the full catalogue for each user with held-out items,
    excluding the user's training items (see :meth:`held_out`, :meth:`seen`).
    """

    num_users: int
    num_items: int
    train: Interactions
    test: Interactions
    validation: Interactions | None = None
    feedback: str = "implicit"
    user_ids: np.ndarray | None = None  # raw id of each contiguous user index
    item_ids: np.ndarray | None = None
    card: DatasetCard | None = None

    def gains(self, split: Interactions) -> Tensor:
        if self.feedback == "implicit":
            return torch.ones_like(split.rating, dtype=torch.float32)
        return split.rating.float()

    def split(self, name: str) -> Interactions:
        value = getattr(self, name, None)
        if not isinstance(value, Interactions):
            raise KeyError(f"RecDataset has no split {name!r}")
        return value

    def held_out(self, name: str = "test") -> tuple[Tensor, list[Tensor], list[Tensor]]:
        """``(users, items, gains)``: the users with held-out items in split ``name``, and for
        each the held-out items and their gains (for Recall@k / NDCG@k)."""
        split = self.split(name)
        items = split.per_user(self.num_users, "item")
        gains = list(
            torch.split(
                self.gains(split)[torch.argsort(split.user, stable=True)],
                [len(i) for i in items],
            )
        )
        users = torch.tensor([u for u, i in enumerate(items) if len(i)], dtype=torch.long)
        return users, [items[u] for u in users.tolist()], [gains[u] for u in users.tolist()]

    def seen(self, names: tuple[str, ...] = ("train",)) -> tuple[Tensor, Tensor]:
        """``(user, item)`` pairs of the given splits: items to exclude when ranking."""
        parts = [self.split(n) for n in names if getattr(self, n, None) is not None]
        return torch.cat([p.user for p in parts]), torch.cat([p.item for p in parts])


# ----------------------------------------------------------------------------- text retrieval
@dataclass
class TextRetrievalSplit:
    """Queries ``{query id: text}`` and qrels ``{query id: {doc id: relevance}}``."""

    queries: dict[str, str]
    qrels: dict[str, dict[str, int | float]]

    def __len__(self) -> int:
        return len(self.queries)

    def pairs(self) -> list[tuple[str, str]]:
        """``(query id, doc id)`` of every positive qrel."""
        return [(q, d) for q, docs in self.qrels.items() for d, r in docs.items() if r > 0]


@dataclass
class TextRetrievalDataset:
    """A BEIR/TREC-style collection: one ``corpus`` ``{doc id: text}`` and query splits."""

    corpus: dict[str, str]
    train: TextRetrievalSplit | None
    test: TextRetrievalSplit
    validation: TextRetrievalSplit | None = None
    doc_labels: dict[str, int] | None = None  # optional class of each document
    card: DatasetCard | None = None

    def split(self, name: str) -> TextRetrievalSplit:
        value = getattr(self, name, None)
        if not isinstance(value, TextRetrievalSplit):
            raise KeyError(f"TextRetrievalDataset has no split {name!r}")
        return value

"""Typed pairs and triplets, and their construction from labels.

Indices follow the embedding contract of ``docs/conventions.md``: ``anchor`` indexes the batch
``embeddings [N, d]``; ``other``, ``positive`` and ``negative`` index the *candidates*: the
batch itself, or, when a reference set is given, the batch followed by ``ref_embeddings``
(``[N + M, d]``) for losses and the reference set alone for :func:`label_masks`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from rankloss._core.validation import shape_str

__all__ = [
    "Pairs",
    "Triplets",
    "GradedPairs",
    "label_masks",
    "all_pairs",
    "all_triplets",
    "graded_pairs",
    "pairs_to_triplets",
    "triplets_to_pairs",
    "keep_top_per_anchor",
    "from_indices_tuple",
]


def _index_tensor(value: object, name: str) -> Tensor:
    """``value`` as a long index tensor; a ``ValueError`` for a bool, floating-point or complex
    one (a 0/1 bool tensor would select by position, a float one truncate)."""
    if not isinstance(value, Tensor):
        raise ValueError(f"{name} must be a torch.Tensor, got {type(value).__name__}")
    if value.dtype == torch.bool or value.dtype.is_floating_point or value.dtype.is_complex:
        raise ValueError(f"{name} must be an integer index tensor, got dtype {value.dtype}")
    return value if value.dtype == torch.long else value.long()


@dataclass(frozen=True)
class Pairs:
    """Anchor/other pairs: ``(anchor[t], other[t])`` is a positive pair where ``is_positive[t]``.

    Attributes:
        anchor: ``[T]`` long, row of the anchor.
        other: ``[T]`` long, column (candidate) of the other member.
        is_positive: ``[T]`` bool.
        found: how many pairs qualified before any per-anchor cap (``len(self)`` if no cap).
    """

    anchor: Tensor
    other: Tensor
    is_positive: Tensor
    found: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "anchor", _index_tensor(self.anchor, "Pairs.anchor"))
        object.__setattr__(self, "other", _index_tensor(self.other, "Pairs.other"))
        flag = self.is_positive
        if not isinstance(flag, Tensor) or flag.dtype != torch.bool:
            got = f"dtype {flag.dtype}" if isinstance(flag, Tensor) else type(flag).__name__
            raise ValueError(
                f"Pairs.is_positive must be a bool tensor, got {got} (a 0/1 integer tensor "
                "would select pairs by position)"
            )

    def __len__(self) -> int:
        return int(self.anchor.numel())

    @property
    def num_found(self) -> int:
        return len(self) if self.found is None else self.found

    @property
    def positives(self) -> tuple[Tensor, Tensor]:
        """``(anchor, other)`` of the positive pairs."""
        return self.anchor[self.is_positive], self.other[self.is_positive]

    @property
    def negatives(self) -> tuple[Tensor, Tensor]:
        """``(anchor, other)`` of the negative pairs."""
        return self.anchor[~self.is_positive], self.other[~self.is_positive]

    def to_masks(self, num_anchors: int, num_candidates: int) -> tuple[Tensor, Tensor]:
        """Dense ``[num_anchors, num_candidates]`` bool masks ``(positive, negative)``."""
        device = self.anchor.device
        positive = torch.zeros(num_anchors, num_candidates, dtype=torch.bool, device=device)
        negative = torch.zeros_like(positive)
        positive[self.positives] = True
        negative[self.negatives] = True
        return positive, negative


@dataclass(frozen=True)
class Triplets:
    """Anchor/positive/negative triplets, one per index ``t``.

    Attributes:
        anchor: ``[T]`` long, row of the anchor.
        positive: ``[T]`` long, candidate column of the positive.
        negative: ``[T]`` long, candidate column of the negative.
        found: how many triplets qualified before any per-anchor cap.
    """

    anchor: Tensor
    positive: Tensor
    negative: Tensor
    found: int | None = None

    def __post_init__(self) -> None:
        for name in ("anchor", "positive", "negative"):
            value = _index_tensor(getattr(self, name), f"Triplets.{name}")
            object.__setattr__(self, name, value)

    def __len__(self) -> int:
        return int(self.anchor.numel())

    @property
    def num_found(self) -> int:
        return len(self) if self.found is None else self.found


@dataclass(frozen=True)
class GradedPairs:
    """Pairs of items of ranking lists where ``labels[list_index, higher] > labels[.., lower]``.

    Attributes:
        list_index: ``[T]`` long, the list (row of the flattened ``[B, n]`` batch).
        higher: ``[T]`` long, position of the more relevant item.
        lower: ``[T]`` long, position of the less relevant item.
        found: how many pairs qualified before any cap.
    """

    list_index: Tensor
    higher: Tensor
    lower: Tensor
    found: int | None = None

    def __len__(self) -> int:
        return int(self.higher.numel())


def _check_labels(labels: object, name: str, where: str) -> Tensor:
    if not isinstance(labels, Tensor):
        raise ValueError(f"{where}: {name} must be a torch.Tensor, got {type(labels).__name__}")
    if labels.dim() != 1:
        raise ValueError(f"{where}: {name} must have shape [N], got {shape_str(labels)}")
    if labels.dtype.is_floating_point or labels.is_complex():
        raise ValueError(f"{where}: {name} must be integer class labels, got dtype {labels.dtype}")
    return labels


def label_masks(labels: Tensor, ref_labels: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """``(positive, negative)`` bool masks from class labels.

    Without ``ref_labels`` the candidates are the batch itself (``[N, N]``) and an item is never
    its own positive. With ``ref_labels [M]`` the masks are ``[N, M]``.
    """
    labels = _check_labels(labels, "labels", "label_masks")
    if ref_labels is None:
        same = labels.unsqueeze(1) == labels.unsqueeze(0)
        eye = torch.eye(labels.numel(), dtype=torch.bool, device=labels.device)
        return same & ~eye, ~same
    ref_labels = _check_labels(ref_labels, "ref_labels", "label_masks")
    same = labels.unsqueeze(1) == ref_labels.to(labels.device).unsqueeze(0)
    return same, ~same


def keep_top_per_anchor(anchor: Tensor, priority: Tensor, k: int | None) -> Tensor:
    """Indices (ascending) of the ``k`` entries of highest ``priority`` of each anchor.

    Ties keep the earlier entry. ``k=None`` keeps everything.
    """
    count = anchor.numel()
    if k is None or count == 0:
        return torch.arange(count, device=anchor.device)
    if k < 1:
        raise ValueError(f"max_per_anchor must be a positive integer or None, got {k}")
    by_priority = torch.argsort(priority, descending=True, stable=True)
    order = by_priority[torch.argsort(anchor[by_priority], stable=True)]
    _, counts = torch.unique_consecutive(anchor[order], return_counts=True)
    starts = torch.cumsum(counts, 0) - counts
    rank = torch.arange(count, device=anchor.device) - torch.repeat_interleave(starts, counts)
    return torch.sort(order[rank < k]).values


def _default_generator(generator: torch.Generator | None, device: torch.device) -> torch.Generator:
    if generator is not None:
        return generator
    return torch.Generator(device=device).manual_seed(0)


def _random_priority(count: int, generator: torch.Generator | None, device) -> Tensor:
    gen = _default_generator(generator, torch.device("cpu"))
    return torch.rand(count, generator=gen).to(device)


def all_pairs(
    labels: Tensor,
    ref_labels: Tensor | None = None,
    *,
    max_per_anchor: int | None = None,
    generator: torch.Generator | None = None,
) -> Pairs:
    """Every positive and negative pair that the labels define.

    With ``max_per_anchor`` each anchor keeps at most that many positive *and* that many negative
    pairs, drawn uniformly at random (from ``generator``; a fixed seed 0 without one).

    Cost: :math:`O(NM)` time and memory.

    >>> all_pairs(torch.tensor([0, 0, 1])).anchor
    tensor([0, 0, 1, 1, 2, 2])
    """
    positive, negative = label_masks(labels, ref_labels)
    anchor, other = torch.nonzero(positive | negative, as_tuple=True)
    is_positive = positive[anchor, other]
    found = int(anchor.numel())
    if max_per_anchor is not None:
        priority = _random_priority(found, generator, labels.device)
        # Cap positives and negatives separately: shift one group by the number of anchors.
        group = anchor + (~is_positive).long() * positive.shape[0]
        keep = keep_top_per_anchor(group, priority, max_per_anchor)
        anchor, other, is_positive = anchor[keep], other[keep], is_positive[keep]
    return Pairs(anchor, other, is_positive, found)


def _triplets_from_masks(
    positive: Tensor,
    negative: Tensor,
    max_per_anchor: int | None,
    generator: torch.Generator | None,
) -> Triplets:
    if max_per_anchor is None:
        anchor, pos, neg = torch.nonzero(
            positive.unsqueeze(2) & negative.unsqueeze(1), as_tuple=True
        )
        return Triplets(anchor, pos, neg)
    if max_per_anchor < 1:
        raise ValueError(f"max_per_anchor must be a positive integer or None, got {max_per_anchor}")
    gen = _default_generator(generator, torch.device("cpu"))
    parts: list[tuple[Tensor, Tensor, Tensor]] = []
    found = 0
    for a in range(positive.shape[0]):
        pos = positive[a].nonzero()[:, 0]
        neg = negative[a].nonzero()[:, 0]
        total = pos.numel() * neg.numel()
        found += total
        if total == 0:
            continue
        if total <= max_per_anchor:
            flat = torch.arange(total)
        else:
            flat = torch.sort(torch.randperm(total, generator=gen)[:max_per_anchor]).values
        flat = flat.to(positive.device)
        count = flat.numel()
        parts.append(
            (
                torch.full((count,), a, dtype=torch.long, device=positive.device),
                pos[flat // neg.numel()],
                neg[flat % neg.numel()],
            )
        )
    if not parts:
        empty = torch.zeros(0, dtype=torch.long, device=positive.device)
        return Triplets(empty, empty, empty, found)
    anchor, pos, neg = (torch.cat(column) for column in zip(*parts))
    return Triplets(anchor, pos, neg, found)


def all_triplets(
    labels: Tensor,
    ref_labels: Tensor | None = None,
    *,
    max_per_anchor: int | None = None,
    generator: torch.Generator | None = None,
) -> Triplets:
    """Every triplet ``(a, p, n)`` with ``labels[a] == labels[p] != labels[n]``, ``a != p``.

    ``max_per_anchor`` keeps at most that many triplets per anchor, drawn uniformly without
    replacement (from ``generator``; a fixed seed 0 without one).

    Cost: :math:`O(NM^2)` time and memory without a cap (every triplet is listed);
    :math:`O(NM + N \\cdot \\text{cap})` memory with one.
    """
    positive, negative = label_masks(labels, ref_labels)
    return _triplets_from_masks(positive, negative, max_per_anchor, generator)


def graded_pairs(
    labels: Tensor,
    mask: Tensor | None = None,
    *,
    max_per_item: int | None = None,
    generator: torch.Generator | None = None,
) -> GradedPairs:
    """Pairs ``(i, j)`` of real items of one list with ``labels[i] > labels[j]``, for ranking.

    Args:
        labels: ``[n]`` or ``[B, n]`` graded relevance (any real value).
        mask: same shape, bool, ``True`` = a real item.
        max_per_item: keep at most this many pairs per more-relevant item ``i``, drawn
            uniformly at random (from ``generator``; a fixed seed 0 without one).

    Cost: :math:`O(Bn^2)` time and memory.
    """
    if not isinstance(labels, Tensor) or labels.dim() not in (1, 2):
        shape = shape_str(labels) if isinstance(labels, Tensor) else type(labels).__name__
        raise ValueError(f"graded_pairs: labels must have shape [n] or [B, n], got {shape}")
    flat = labels.reshape(-1, labels.shape[-1])
    if mask is None:
        real = torch.ones_like(flat, dtype=torch.bool)
    else:
        if mask.shape != labels.shape or mask.dtype != torch.bool:
            raise ValueError(
                f"graded_pairs: mask must be bool with shape {shape_str(labels)}, got "
                f"{shape_str(mask)} {mask.dtype}"
            )
        real = mask.reshape(flat.shape)
    better = (flat.unsqueeze(2) > flat.unsqueeze(1)) & real.unsqueeze(2) & real.unsqueeze(1)
    list_index, higher, lower = torch.nonzero(better, as_tuple=True)
    found = int(higher.numel())
    if max_per_item is not None:
        priority = _random_priority(found, generator, labels.device)
        keep = keep_top_per_anchor(list_index * flat.shape[1] + higher, priority, max_per_item)
        list_index, higher, lower = list_index[keep], higher[keep], lower[keep]
    return GradedPairs(list_index, higher, lower, found)


def pairs_to_triplets(pairs: Pairs) -> Triplets:
    """Every triplet made of a positive and a negative pair that share their anchor."""
    pos_a, pos_o = pairs.positives
    neg_a, neg_o = pairs.negatives
    match = pos_a.unsqueeze(1) == neg_a.unsqueeze(0)
    i, j = torch.nonzero(match, as_tuple=True)
    return Triplets(pos_a[i], pos_o[i], neg_o[j])


def triplets_to_pairs(triplets: Triplets) -> Pairs:
    """The distinct positive ``(a, p)`` and negative ``(a, n)`` pairs used by the triplets."""
    anchor = torch.cat([triplets.anchor, triplets.anchor])
    other = torch.cat([triplets.positive, triplets.negative])
    is_positive = torch.cat(
        [
            torch.ones_like(triplets.anchor, dtype=torch.bool),
            torch.zeros_like(triplets.anchor, dtype=torch.bool),
        ]
    )
    if anchor.numel() == 0:
        return Pairs(anchor, other, is_positive)
    # Distinct (anchor, other, kind) columns, in that order; any index survives unchanged
    # (a packed key mapped a negative index onto another, valid pair).
    unique = torch.unique(torch.stack([anchor, other, is_positive.long()]), dim=1)
    return Pairs(unique[0], unique[1], unique[2].bool())


def from_indices_tuple(indices: object, where: str = "indices") -> Pairs | Triplets | None:
    """:class:`Pairs` or :class:`Triplets` from pytorch-metric-learning's indices tuples.

    ``(anchor, positive, negative)``: three ``[T]`` integer tensors, one triplet per position.
    ``(anchor1, positive, anchor2, negative)``: four tensors, the positive pairs
    ``(anchor1[t], positive[t])`` and the negative pairs ``(anchor2[t], negative[t])``.
    :class:`Pairs`, :class:`Triplets` and ``None`` pass through unchanged.

    Raises:
        TypeError: another object, or a tuple of another length.
        ValueError: a tensor that is not 1-D integer, or parts of different lengths.

    >>> t = from_indices_tuple((torch.tensor([0]), torch.tensor([1]), torch.tensor([2])))
    >>> type(t).__name__, t.negative.tolist()
    ('Triplets', [2])
    """
    if indices is None or isinstance(indices, (Pairs, Triplets)):
        return indices
    if not isinstance(indices, (tuple, list)) or len(indices) not in (3, 4):
        length = f" of length {len(indices)}" if isinstance(indices, (tuple, list)) else ""
        raise TypeError(
            f"{where}: indices must be Pairs, Triplets or an indices tuple of 3 tensors "
            f"(anchor, positive, negative) or 4 (anchor1, positive, anchor2, negative), got "
            f"{type(indices).__name__}{length}"
        )
    parts = []
    for position, part in enumerate(indices):
        integer = isinstance(part, Tensor) and not (
            part.dtype == torch.bool or part.is_floating_point() or part.is_complex()
        )
        if not isinstance(part, Tensor) or part.dim() != 1 or not integer:
            shape = (
                f"shape {tuple(part.shape)} of dtype {part.dtype}"
                if isinstance(part, Tensor)
                else type(part).__name__
            )
            raise ValueError(
                f"{where}: indices[{position}] must be a 1-D integer tensor, got {shape}"
            )
        parts.append(part.long())
    if len(parts) == 3:
        if not parts[0].shape == parts[1].shape == parts[2].shape:
            raise ValueError(
                f"{where}: the three parts of a triplet tuple differ in length: "
                f"{[len(t) for t in parts]}"
            )
        return Triplets(parts[0], parts[1], parts[2])
    a1, pos, a2, neg = parts
    if a1.shape != pos.shape or a2.shape != neg.shape:
        raise ValueError(
            f"{where}: anchor1 and positive, and anchor2 and negative, must have equal lengths, "
            f"got {[len(t) for t in parts]}"
        )
    is_positive = torch.cat(
        [torch.ones_like(a1, dtype=torch.bool), torch.zeros_like(a2, dtype=torch.bool)]
    )
    return Pairs(torch.cat([a1, a2]), torch.cat([pos, neg]), is_positive)

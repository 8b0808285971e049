"""What the registry-wide loss tests need to know about individual losses.

Every list loss is tested with its defaults and arbitrary real labels, adjusted by the metadata
it is registered with (``register_loss(label_range=, tie_order=, soft_labels=)``), so a newly
registered loss is covered automatically without editing this file.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from rankloss.losses import LOSSES, LossInfo, available

#: Families whose losses take ``(scores, labels, mask)`` lists.
LIST_FAMILIES = ("pointwise", "pairwise", "listwise")


def info(name: str) -> LossInfo:
    """What the registry records about a loss (``register_loss``'s metadata)."""
    return LOSSES.entry(name).meta["info"]


def _names_where(predicate) -> set[str]:
    return {name for name in available(kind="list") if predicate(info(name))}


#: Losses that reject negative labels.
NONNEGATIVE_LABELS = _names_where(lambda i: i.label_range == "nonnegative")

#: Losses whose value depends on the input order of tied labels (ties broken in input order), so
#: permuting items is only invariant for distinct labels.
ORDER_DEPENDENT_LABEL_TIES = _names_where(lambda i: i.tie_order == "labels")

#: Losses whose value depends on the input order of tied scores (current ranks break score ties
#: in input order), so permuting items is only invariant for distinct scores.
ORDER_DEPENDENT_SCORE_TIES = _names_where(lambda i: i.tie_order == "scores")

#: Losses whose labels are soft targets with a gradient (regression, distillation).
DIFFERENTIABLE_LABELS = _names_where(lambda i: i.soft_labels)

#: Losses whose backward is not the gradient of their value (error-driven updates): gradcheck
#: does not apply; each is tested against a reference of its own backward.
SURROGATE_GRADIENT = _names_where(lambda i: not i.exact_gradient)


def list_loss_names() -> list[str]:
    return available(kind="list")


def function(name: str):
    return LOSSES.entry(name).meta["function"]


def hyper(name: str) -> dict[str, Any]:
    """Hyper-parameters that make ``name`` accept arbitrary real labels (and its ``example``)."""
    if info(name).label_range == "unit":
        # binarise instead of requiring labels in [0, 1]
        return {**info(name).example, "relevance_threshold": 0.5}
    return dict(info(name).example)


def call(name: str, scores: Tensor, labels: Tensor, mask: Tensor | None = None, **kwargs) -> Tensor:
    """The functional loss ``name`` with the hyper-parameters it needs for arbitrary labels."""
    return function(name)(scores, labels, mask, **{**hyper(name), **kwargs})


def fit_labels(name: str, labels: Tensor) -> Tensor:
    """Make labels acceptable for ``name`` (non-negative where required)."""
    return labels.abs() if name in NONNEGATIVE_LABELS else labels


def padded_batch(
    generator: torch.Generator,
    lengths: list[int],
    width: int,
    *,
    dtype: torch.dtype = torch.float64,
    nonnegative: bool = False,
) -> tuple[Tensor, Tensor, Tensor]:
    """Scores, graded labels and a mask with real items at random positions, NaN padding."""
    b = len(lengths)
    scores = torch.randn(b, width, generator=generator, dtype=dtype)
    low = 0 if nonnegative else -2
    labels = torch.randint(low, 5, (b, width), generator=generator).to(dtype)
    mask = torch.zeros(b, width, dtype=torch.bool)
    for row, length in enumerate(lengths):
        positions = torch.randperm(width, generator=generator)[:length]
        mask[row, positions] = True
    scores = scores.masked_fill(~mask, float("nan"))
    labels = labels.masked_fill(~mask, float("nan"))
    return scores, labels, mask

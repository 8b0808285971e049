"""What the registry-wide loss tests need to know about individual losses.

Every loss of the list families is tested with its defaults and arbitrary real labels unless a
table below says otherwise, so a newly registered loss is covered automatically (and a loss
that needs special inputs fails loudly until it is added here).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from rankloss.losses import LOSSES, available

#: Families whose losses take ``(scores, labels, mask)`` lists.
LIST_FAMILIES = ("pointwise", "pairwise", "listwise")

#: Hyper-parameters a loss needs to accept arbitrary real labels.
HYPER: dict[str, dict[str, Any]] = {
    # Without a threshold, labels must lie in [0, 1].
    "sigmoid_ce": {"threshold": 0.5},
}

#: Losses that reject negative labels.
NONNEGATIVE_LABELS = {"softmax_ce"}

#: Losses whose value depends on the input order of tied labels (ties broken in input order), so
#: permuting items is only invariant for distinct labels.
ORDER_DEPENDENT_LABEL_TIES = {"listmle"}

#: Losses whose value depends on the input order of tied scores (current ranks break score ties
#: in input order), so permuting items is only invariant for distinct scores.
ORDER_DEPENDENT_SCORE_TIES = {"lambdarank", "lambdaloss"}

#: Losses whose labels are soft targets with a gradient (regression, distillation).
DIFFERENTIABLE_LABELS = {"mse", "mae", "smooth_l1", "softmax_ce", "kl_div", "listnet"}


def list_loss_names() -> list[str]:
    return [name for family in LIST_FAMILIES for name in available(family)]


def function(name: str):
    return LOSSES.entry(name).meta["function"]


def hyper(name: str) -> dict[str, Any]:
    return dict(HYPER.get(name, {}))


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

"""Pointwise ranking losses: each item is scored against its own label.

Every function takes ``scores`` and ``labels`` of shape ``[..., n]``, an optional bool ``mask``
(True = real item) and optional ``weights`` per list ``[...]`` or per item ``[..., n]``.

What they average over: the per-list value is :math:`\\frac{1}{|R|}\\sum_{i \\in R} w_i\\,
\\ell_i` over the real items :math:`R` of the list (:math:`w_i = 1` without per-item weights,
so per-item weights scale terms and do not renormalise); ``reduction="mean"`` then averages
over lists that have at least one real item, weighted by per-list weights. Cost: O(n) time and
memory per list.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from rankloss._core import params
from rankloss._core.reduce import Reduction, masked_mean, reduce_lists
from rankloss._core.validation import ListBatch, check_lists

__all__ = [
    "mse_loss",
    "mae_loss",
    "smooth_l1_loss",
    "sigmoid_ce_loss",
    "hinge_loss",
]


def _reduce_items(per_item: Tensor, batch: ListBatch, reduction: str) -> Tensor:
    if batch.item_weights is not None:
        per_item = per_item * batch.item_weights
    per_list, valid = masked_mean(per_item, batch.mask)
    return reduce_lists(per_list, valid, batch, reduction)


def mse_loss(
    scores: Tensor,
    labels: Tensor,
    mask: Tensor | None = None,
    *,
    weights: Tensor | None = None,
    reduction: Reduction = "mean",
) -> Tensor:
    r"""Mean squared error between scores and labels (regression on relevance).

    .. math:: \ell_i = (s_i - y_i)^2

    Shapes: ``scores``, ``labels``, ``mask``: ``[..., n]``; returns ``[...]`` for
    ``reduction="none"``, else a scalar. Averages over the real items of a list, then over
    lists. Ties and all-equal labels need no special case; an all-masked list counts as 0 and is
    left out of the mean. Cost: :math:`O(n)` time and memory per list.

    Reference: the standard pointwise baseline, e.g. Cossock and Zhang, "Subset Ranking Using
    Regression", COLT 2006.

    Example:
        >>> import torch, rankloss.functional as RF
        >>> RF.mse_loss(torch.tensor([[1.0, 0.0]]), torch.tensor([[1.0, 1.0]]))
        tensor(0.5000)
    """
    batch = check_lists(scores, labels, mask, weights, where="mse_loss", reduction=reduction)
    return _reduce_items((batch.scores - batch.labels) ** 2, batch, reduction)


def mae_loss(
    scores: Tensor,
    labels: Tensor,
    mask: Tensor | None = None,
    *,
    weights: Tensor | None = None,
    reduction: Reduction = "mean",
) -> Tensor:
    r"""Mean absolute error between scores and labels.

    .. math:: \ell_i = |s_i - y_i|

    Shapes as :func:`mse_loss`; averages over real items, then lists. The gradient at
    :math:`s_i = y_i` is 0 (PyTorch's convention for ``abs``).
    Ties in labels need no special case; an all-masked list counts as 0 and is left out of the
    mean. Cost: :math:`O(n)` time and memory per list.

    Reference: pointwise regression baseline (Cossock and Zhang, COLT 2006).
    """
    batch = check_lists(scores, labels, mask, weights, where="mae_loss", reduction=reduction)
    return _reduce_items((batch.scores - batch.labels).abs(), batch, reduction)


def smooth_l1_loss(
    scores: Tensor,
    labels: Tensor,
    mask: Tensor | None = None,
    *,
    weights: Tensor | None = None,
    reduction: Reduction = "mean",
    beta: float = 1.0,
) -> Tensor:
    r"""Smooth L1 (Huber-like) loss between scores and labels.

    .. math::
        \ell_i = \begin{cases} 0.5\,(s_i - y_i)^2 / \beta & |s_i - y_i| < \beta \\
        |s_i - y_i| - 0.5\,\beta & \text{otherwise} \end{cases}

    Shapes as :func:`mse_loss`; averages over real items, then lists. ``beta > 0``.
    Ties in labels need no special case; an all-masked list counts as 0 and is left out of the
    mean. Cost: :math:`O(n)` time and memory per list.

    Reference: Girshick, "Fast R-CNN", ICCV 2015.
    """
    beta = params.positive("smooth_l1_loss", "beta", beta)
    batch = check_lists(scores, labels, mask, weights, where="smooth_l1_loss", reduction=reduction)
    per_item = F.smooth_l1_loss(batch.scores, batch.labels, reduction="none", beta=beta)
    return _reduce_items(per_item, batch, reduction)


def _binary_targets(batch: ListBatch, threshold: float | None, where: str) -> Tensor:
    if threshold is not None:
        return (batch.labels >= threshold).to(batch.scores.dtype)
    real = batch.labels[batch.mask]
    if real.numel() and bool(((real < 0) | (real > 1)).any()):
        raise ValueError(
            f"{where}: labels must lie in [0, 1] when relevance_threshold is None "
            f"(found values in [{real.min().item()}, {real.max().item()}]); pass "
            "relevance_threshold= to binarise graded labels"
        )
    return batch.labels


def sigmoid_ce_loss(
    scores: Tensor,
    labels: Tensor,
    mask: Tensor | None = None,
    *,
    weights: Tensor | None = None,
    reduction: Reduction = "mean",
    relevance_threshold: float | None = None,
) -> Tensor:
    r"""Binary cross-entropy on logits, each item on its own.

    .. math:: \ell_i = -t_i \log \sigma(s_i) - (1 - t_i) \log (1 - \sigma(s_i))

    where :math:`t_i = y_i \in [0, 1]`, or :math:`t_i = [y_i \ge t]` when
    ``relevance_threshold`` :math:`t` is given (graded labels binarised). Computed with
    ``softplus`` so logits of :math:`\pm 10^4` stay finite. Labels outside [0, 1] without a
    threshold raise ``ValueError``.

    Shapes as :func:`mse_loss`; averages over real items, then lists.
    Ties in labels need no special case; an all-masked list counts as 0 and is left out of the
    mean. Cost: :math:`O(n)` time and memory per list.

    Reference: pointwise classification for ranking, e.g. Li, Burges and Wu, "McRank", NIPS 2007.
    """
    if relevance_threshold is not None:
        relevance_threshold = params.number(
            "sigmoid_ce_loss", "relevance_threshold", relevance_threshold
        )
    batch = check_lists(scores, labels, mask, weights, where="sigmoid_ce_loss", reduction=reduction)
    targets = _binary_targets(batch, relevance_threshold, "sigmoid_ce_loss")
    per_item = F.binary_cross_entropy_with_logits(batch.scores, targets, reduction="none")
    return _reduce_items(per_item, batch, reduction)


def hinge_loss(
    scores: Tensor,
    labels: Tensor,
    mask: Tensor | None = None,
    *,
    weights: Tensor | None = None,
    reduction: Reduction = "mean",
    margin: float = 1.0,
    relevance_threshold: float = 1.0,
) -> Tensor:
    r"""Pointwise hinge loss on labels binarised at ``relevance_threshold`` :math:`t`.

    .. math:: \ell_i = \max(0, m - c_i s_i), \quad c_i = +1 \text{ if } y_i \ge t
        \text{ else } -1

    The default :math:`t = 1` makes every label > 0 positive for integer grades.

    Shapes as :func:`mse_loss`; averages over real items, then lists.
    Ties in labels need no special case; an all-masked list counts as 0 and is left out of the
    mean. Cost: :math:`O(n)` time and memory per list.

    Reference: Cortes and Vapnik, "Support-Vector Networks", Machine Learning 1995.
    """
    margin = params.nonnegative("hinge_loss", "margin", margin)
    relevance_threshold = params.number("hinge_loss", "relevance_threshold", relevance_threshold)
    batch = check_lists(scores, labels, mask, weights, where="hinge_loss", reduction=reduction)
    signs = torch.where(batch.labels >= relevance_threshold, 1.0, -1.0).to(batch.scores.dtype)
    per_item = torch.relu(margin - signs * batch.scores)
    return _reduce_items(per_item, batch, reduction)

"""Pairwise ranking losses over pairs :math:`(i, j)` with :math:`y_i > y_j`.

Every function takes ``scores`` and ``labels`` of shape ``[..., n]``, an optional bool ``mask``
(True = real item) and optional ``weights`` per list ``[...]`` or per item ``[..., n]``; a
per-item weight weights each pair by the weight of its more relevant item :math:`w_i`.

A pair exists only between two real items with different labels; tied labels form no pair. A
list with no pair has nothing to learn from: it counts as 0 and is left out of the mean.

Cost: every function builds ``[..., n, n]`` pair matrices, so time and memory are
:math:`O(n^2)` per list. ``k`` (where offered) keeps only pairs that touch the top ``k`` of the
current ranking (by detached scores, ties in input order); it does not reduce the cost.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from rankloss._validation import ListBatch, check_choice, check_lists
from rankloss.functional._ranking import (
    GAINS,
    discount,
    gain,
    ideal_dcg,
    pair_mask,
    ranks_from_scores,
    topk_pair_mask,
)
from rankloss.functional._reduce import reduce_lists

__all__ = [
    "ranknet_loss",
    "pairwise_hinge_loss",
    "lambdarank_loss",
    "lambdaloss_loss",
    "bpr_loss",
    "LAMBDALOSS_WEIGHTINGS",
]

LAMBDALOSS_WEIGHTINGS = ("ndcg_loss2", "ndcg_loss2pp", "lambdarank")


def _pairs(batch: ListBatch, k: int | None = None) -> Tensor:
    pairs = pair_mask(batch.labels, batch.mask)
    top = topk_pair_mask(batch.scores, batch.mask, k)
    return pairs if top is None else pairs & top


def _differences(batch: ListBatch) -> Tensor:
    """``[B, n, n]`` score differences :math:`s_i - s_j`."""
    return batch.scores.unsqueeze(-1) - batch.scores.unsqueeze(-2)


def _pair_weights(batch: ListBatch, pairs: Tensor) -> Tensor:
    weights = pairs.to(batch.scores.dtype)
    if batch.item_weights is not None:
        weights = weights * batch.item_weights.unsqueeze(-1)
    return weights


def _mean_over_pairs(per_pair: Tensor, pairs: Tensor, batch: ListBatch, reduction: str) -> Tensor:
    weights = _pair_weights(batch, pairs)
    count = pairs.sum((-1, -2))
    zero = per_pair.new_zeros(())
    per_list = (torch.where(pairs, per_pair, zero) * weights).sum((-1, -2))
    per_list = per_list / count.clamp(min=1).to(per_list.dtype)
    return reduce_lists(per_list, count > 0, batch, reduction)


def ranknet_loss(
    scores: Tensor,
    labels: Tensor,
    mask: Tensor | None = None,
    *,
    weights: Tensor | None = None,
    reduction: str = "mean",
    sigma: float = 1.0,
    k: int | None = None,
) -> Tensor:
    r"""RankNet: logistic loss on every pair with :math:`y_i > y_j`.

    .. math:: \ell_{ij} = \log\bigl(1 + e^{-\sigma (s_i - s_j)}\bigr)

    The per-list value is the mean of :math:`w_i \ell_{ij}` over the list's pairs; ``"mean"``
    then averages over lists that have a pair. With ``sigma=1`` this is the pairwise logistic
    loss. Computed with ``softplus``, finite for score gaps of :math:`10^4` and beyond.

    Shapes: ``scores``, ``labels``, ``mask``: ``[..., n]``; returns ``[...]`` for
    ``reduction="none"``. Cost: :math:`O(n^2)` time and memory per list.

    Reference: Burges et al., "Learning to Rank using Gradient Descent", ICML 2005.
    """
    batch = check_lists(scores, labels, mask, weights, where="ranknet_loss")
    per_pair = F.softplus(-sigma * _differences(batch))
    return _mean_over_pairs(per_pair, _pairs(batch, k), batch, reduction)


def pairwise_hinge_loss(
    scores: Tensor,
    labels: Tensor,
    mask: Tensor | None = None,
    *,
    weights: Tensor | None = None,
    reduction: str = "mean",
    margin: float = 1.0,
    k: int | None = None,
) -> Tensor:
    r"""Pairwise hinge (RankSVM) loss on every pair with :math:`y_i > y_j`.

    .. math:: \ell_{ij} = \max\bigl(0, m - (s_i - s_j)\bigr)

    The per-list value is the mean over the list's pairs (padding never enters the count);
    ``"mean"`` averages over lists that have a pair. Cost: :math:`O(n^2)` per list.

    Reference: Herbrich, Graepel and Obermayer, "Large Margin Rank Boundaries for Ordinal
    Regression", 2000; Joachims, "Optimizing Search Engines using Clickthrough Data", KDD 2002.
    """
    batch = check_lists(scores, labels, mask, weights, where="pairwise_hinge_loss")
    per_pair = torch.relu(margin - _differences(batch))
    return _mean_over_pairs(per_pair, _pairs(batch, k), batch, reduction)


def bpr_loss(
    scores: Tensor,
    labels: Tensor,
    mask: Tensor | None = None,
    *,
    weights: Tensor | None = None,
    reduction: str = "mean",
    threshold: float = 0.0,
    k: int | None = None,
) -> Tensor:
    r"""Bayesian personalised ranking: every positive against every negative of a list.

    .. math:: \ell_{ij} = -\log \sigma(s_i - s_j), \quad y_i > \text{threshold} \ge y_j

    Items are binarised at ``threshold`` (default: label > 0 is positive), unlike
    :func:`ranknet_loss`, which uses every pair of different grades. The per-list value is the
    mean over positive-negative pairs; a list without a positive or without a negative counts as
    0 and is left out of the mean. With ``k``, only pairs touching the current top ``k`` count.
    Regularisation of the parameters belongs to the optimiser (weight decay).
    Cost: :math:`O(n^2)` per list.

    Reference: Rendle et al., "BPR: Bayesian Personalized Ranking from Implicit Feedback",
    UAI 2009.
    """
    batch = check_lists(scores, labels, mask, weights, where="bpr_loss")
    positive = (batch.labels > threshold) & batch.mask
    negative = (batch.labels <= threshold) & batch.mask
    pairs = positive.unsqueeze(-1) & negative.unsqueeze(-2)
    top = topk_pair_mask(batch.scores, batch.mask, k)
    if top is not None:
        pairs = pairs & top
    per_pair = F.softplus(-_differences(batch))
    return _mean_over_pairs(per_pair, pairs, batch, reduction)


def _normalised_gains(batch: ListBatch, gain_kind: str, k: int | None) -> tuple[Tensor, Tensor]:
    """Gains divided by the ideal DCG, and which lists have a positive ideal DCG."""
    gains = torch.where(batch.mask, gain(batch.labels, gain_kind), batch.scores.new_zeros(()))
    idcg = ideal_dcg(gains, batch.mask, k)
    positive = idcg > 0
    safe = torch.where(positive, idcg, torch.ones_like(idcg))
    return gains / safe.unsqueeze(-1), positive


def _swap_delta(ranks: Tensor, normalised_gains: Tensor, k: int | None) -> Tensor:
    r""":math:`|\Delta\mathrm{NDCG}_{ij}|` of swapping items i and j in the current ranking."""
    disc = discount(ranks.to(normalised_gains.dtype))
    if k is not None:
        disc = torch.where(ranks <= k, disc, torch.zeros_like(disc))
    gain_gap = (normalised_gains.unsqueeze(-1) - normalised_gains.unsqueeze(-2)).abs()
    return gain_gap * (disc.unsqueeze(-1) - disc.unsqueeze(-2)).abs()


def _sum_over_pairs(
    per_pair: Tensor, pairs: Tensor, valid: Tensor, batch: ListBatch, reduction: str
) -> Tensor:
    weights = _pair_weights(batch, pairs)
    per_list = (torch.where(pairs, per_pair, per_pair.new_zeros(())) * weights).sum((-1, -2))
    valid = valid & pairs.flatten(1).any(-1)
    return reduce_lists(per_list, valid, batch, reduction)


def lambdarank_loss(
    scores: Tensor,
    labels: Tensor,
    mask: Tensor | None = None,
    *,
    weights: Tensor | None = None,
    reduction: str = "mean",
    sigma: float = 1.0,
    k: int | None = None,
    gain: str = "exp2",
) -> Tensor:
    r"""LambdaRank: RankNet weighted by the NDCG change of swapping each pair.

    .. math::
        \ell = \sum_{y_i > y_j} |\Delta \mathrm{NDCG}_{ij}| \,
        \log\bigl(1 + e^{-\sigma (s_i - s_j)}\bigr), \quad
        |\Delta \mathrm{NDCG}_{ij}| = \frac{|G_i - G_j|\,|D_i - D_j|}{\mathrm{IDCG@k}}

    with gain :math:`G = 2^y - 1` (``gain="exp2"``) or :math:`G = y` (``"linear"``), discount
    :math:`D_i = 1/\log_2(1 + r_i)` at the current rank :math:`r_i` (detached scores, ties in
    input order), and :math:`D_i = 0` beyond rank ``k``. The weights are constants (no
    gradient), so the gradient of this loss is the LambdaRank lambda.

    The per-list value is the *sum* over pairs (the weights are already normalised by the ideal
    DCG); ``"mean"`` averages over lists that have a pair and a positive ideal DCG. A list whose
    ideal DCG is not positive (e.g. all labels 0) has nothing to learn from. With ``k``, only
    pairs touching the current top ``k`` count. Cost: :math:`O(n^2)` plus a sort, per list.

    Reference: Burges, Ragno and Le, "Learning to Rank with Nonsmooth Cost Functions",
    NIPS 2006; Burges, "From RankNet to LambdaRank to LambdaMART: An Overview", 2010.
    """
    check_choice("gain", gain, GAINS)
    batch = check_lists(scores, labels, mask, weights, where="lambdarank_loss")
    normalised, positive = _normalised_gains(batch, gain, k)
    ranks = ranks_from_scores(batch.scores, batch.mask)
    delta = _swap_delta(ranks, normalised, k).detach()
    per_pair = delta * F.softplus(-sigma * _differences(batch))
    return _sum_over_pairs(per_pair, _pairs(batch, k), positive, batch, reduction)


def lambdaloss_loss(
    scores: Tensor,
    labels: Tensor,
    mask: Tensor | None = None,
    *,
    weights: Tensor | None = None,
    reduction: str = "mean",
    weighting: str = "ndcg_loss2pp",
    sigma: float = 1.0,
    mu: float = 10.0,
    k: int | None = None,
    gain: str = "exp2",
) -> Tensor:
    r"""LambdaLoss: a bound on an NDCG-based cost, from the LambdaLoss framework.

    .. math::
        \ell = \sum_{y_i > y_j} w_{ij} \log_2\bigl(1 + e^{-\sigma (s_i - s_j)}\bigr)

    with :math:`G_i = (2^{y_i} - 1)/\mathrm{IDCG}` (or :math:`y_i/\mathrm{IDCG}` for
    ``gain="linear"``), current 1-based ranks :math:`r_i` (detached), :math:`D(r) =
    \log_2(1 + r)` and the weightings

    * ``"ndcg_loss2"``: :math:`w_{ij} = \delta_{ij} |G_i - G_j|`, with
      :math:`\delta_{ij} = \bigl|\frac{1}{D(|r_i - r_j|)} - \frac{1}{D(|r_i - r_j| + 1)}\bigr|`;
    * ``"ndcg_loss2pp"`` (NDCG-Loss2++): :math:`w_{ij} = (\rho_{ij} + \mu\,\delta_{ij})
      |G_i - G_j|`, with :math:`\rho_{ij} = \bigl|\frac{1}{D(r_i)} - \frac{1}{D(r_j)}\bigr|`;
    * ``"lambdarank"``: :math:`w_{ij} = \rho_{ij} |G_i - G_j|`.

    With ``k``, only pairs where one item is in the current top ``k`` count, and IDCG is cut at
    ``k``. The per-list value is the sum over pairs; ``"mean"`` averages over lists with a pair
    and a positive ideal DCG. Cost: :math:`O(n^2)` plus a sort, per list.

    Reference: Wang et al., "The LambdaLoss Framework for Ranking Metric Optimization",
    CIKM 2018.
    """
    check_choice("weighting", weighting, LAMBDALOSS_WEIGHTINGS)
    check_choice("gain", gain, GAINS)
    batch = check_lists(scores, labels, mask, weights, where="lambdaloss_loss")
    normalised, positive = _normalised_gains(batch, gain, k)
    ranks = ranks_from_scores(batch.scores, batch.mask).to(batch.scores.dtype)
    gain_gap = (normalised.unsqueeze(-1) - normalised.unsqueeze(-2)).abs()
    inv_d = discount(ranks)
    rho = (inv_d.unsqueeze(-1) - inv_d.unsqueeze(-2)).abs()
    distance = (ranks.unsqueeze(-1) - ranks.unsqueeze(-2)).abs()
    # For i == j distance is 0 and discount(0) is inf; those entries are never pairs.
    distance = distance.clamp(min=1.0)
    delta = (discount(distance) - discount(distance + 1.0)).abs()
    if weighting == "ndcg_loss2":
        pair_weight = delta * gain_gap
    elif weighting == "ndcg_loss2pp":
        pair_weight = (rho + mu * delta) * gain_gap
    else:
        pair_weight = rho * gain_gap
    per_pair = pair_weight.detach() * F.softplus(-sigma * _differences(batch)) / math.log(2.0)
    return _sum_over_pairs(per_pair, _pairs(batch, k), positive, batch, reduction)

r"""Pair weights ("lambda weights") for :func:`rankloss.functional.pairwise_loss`.

A pairwise loss is a pair term times a pair weight, summed or averaged over a list's pairs:

.. math:: \ell = \sum_{(i, j)} w_{ij}\, \phi(s_i - s_j)

A pair weight is a function of a :class:`PairContext` (labels, the current ranks from the
detached scores, gains normalised by the ideal DCG, the cut-off ``k``) that returns
``[B, n, n]`` weights, constants with no gradient. Every weight here is registered in
:data:`PAIR_WEIGHTS` by name; any callable ``PairContext -> Tensor`` works too.

Notation: :math:`r_i` is the 1-based rank of item :math:`i` under the current scores (ties in
input order), :math:`G_i = \mathrm{gain}(y_i) / \mathrm{IDCG@k}`, and
:math:`D_i = 1 / \log_2(1 + r_i)` for :math:`r_i \le k` (0 beyond ``k``; every rank counts
without ``k``).

The top-k rule (one rule for every weight): with ``k``, (1) only pairs where at least one item
is ranked in the current top ``k`` count, (2) the discount :math:`D` is 0 beyond rank ``k``,
(3) the ideal DCG is cut at ``k``. This is LightGBM's truncation level; allRank keeps only pairs
where *both* items are in the top ``k`` (see ``docs/losses.md``).

References: Burges, Ragno and Le, "Learning to Rank with Nonsmooth Cost Functions", NIPS 2006
(the ΔNDCG swap weight); Wang et al., "The LambdaLoss Framework for Ranking Metric
Optimization", CIKM 2018 (NDCG-Loss1, NDCG-Loss2, NDCG-Loss2++, ARP).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor

__all__ = [
    "PairContext",
    "PairWeight",
    "PAIR_WEIGHTS",
    "uniform_weight",
    "lambdarank_weight",
    "ndcg_loss1_weight",
    "ndcg_loss2_weight",
    "ndcg_loss2pp_weight",
    "label_diff_weight",
    "rank_distance_table",
]


@dataclass(frozen=True)
class PairContext:
    """What a pair weight may look at, for ``B`` lists of ``n`` items (all detached).

    Attributes:
        labels: ``[B, n]`` labels (0 at padded positions).
        mask: ``[B, n]`` bool, True marks a real item.
        ranks: ``[B, n]`` 1-based current ranks by descending score, ties in input order;
            padded items rank after every real item. Same dtype as ``labels``.
        gains: ``[B, n]`` gains divided by the ideal DCG at ``k`` (0 where padded or where the
            ideal DCG is not positive).
        discounts: ``[B, n]`` :math:`1/\\log_2(1 + r_i)`, 0 beyond rank ``k``.
        k: the cut-off or ``None``.
        mu: the NDCG-Loss2++ mixing weight.
    """

    labels: Tensor
    mask: Tensor
    ranks: Tensor
    gains: Tensor
    discounts: Tensor
    k: int | None
    mu: float


@dataclass(frozen=True)
class PairWeight:
    """A named pair weight.

    Attributes:
        fn: ``PairContext -> [B, n, n]`` (or broadcastable) weights.
        pairs: ``"graded"`` uses the pairs with :math:`y_i > y_j`; ``"all"`` every ordered
            pair of two different real items (NDCG-Loss1).
        uses_gains: the weight is normalised by the ideal DCG, so a list whose ideal DCG is
            not positive has nothing to learn from.
    """

    fn: Callable[[PairContext], Tensor]
    pairs: Literal["graded", "all"] = "graded"
    uses_gains: bool = False


def _outer_abs_diff(x: Tensor) -> Tensor:
    return (x.unsqueeze(-1) - x.unsqueeze(-2)).abs_()


def rank_distance_table(n: int, dtype: torch.dtype, device: torch.device) -> Tensor:
    r"""``[n + 1]``: :math:`\delta(d)` of :func:`ndcg_loss2_weight` at rank distances ``0..n``,
    with :math:`d = 0` read as 1 (``i == j`` is never a pair).

    A lookup in this table replaces two logarithms per pair (the distance takes only ``n``
    values). The difference of two close reciprocals loses about ``log10(d)`` digits, so the
    table is computed in float64 and rounded to ``dtype`` once (in float32 the direct formula
    is off by ~1e-3 relative at ``d`` ~ 2000). Cost: :math:`O(n)`.
    """
    wide = torch.float64 if device.type != "mps" else torch.float32
    distance = torch.arange(n + 1, dtype=wide, device=device).clamp_(min=1.0)
    delta = (1.0 / torch.log2(1.0 + distance) - 1.0 / torch.log2(2.0 + distance)).abs_()
    return delta.to(dtype)


def uniform_weight(ctx: PairContext) -> Tensor:
    r"""Every pair counts once: :math:`w_{ij} = 1` (RankNet, pairwise hinge, BPR)."""
    return torch.ones_like(ctx.labels).unsqueeze(-1).expand(*ctx.labels.shape, ctx.labels.shape[-1])


def lambdarank_weight(ctx: PairContext) -> Tensor:
    r"""The ΔNDCG of swapping the two items: :math:`w_{ij} = |G_i - G_j|\,|D_i - D_j|`.

    LambdaRank's weight (Burges et al. 2006), also "LambdaRank" in the LambdaLoss framework
    and rax's ``dcg_lambdaweight`` (normalised).
    """
    return _outer_abs_diff(ctx.gains).mul_(_outer_abs_diff(ctx.discounts))


def _rank_distance_delta(ranks: Tensor) -> Tensor:
    r""":math:`\delta_{ij} = |1/\log_2(1 + |r_i - r_j|) - 1/\log_2(2 + |r_i - r_j|)|`."""
    n = ranks.shape[-1]
    table = rank_distance_table(n, ranks.dtype, ranks.device)
    distance = (ranks.unsqueeze(-1) - ranks.unsqueeze(-2)).abs_().to(torch.long)
    return table[distance.clamp_(max=n)]


def ndcg_loss2_weight(ctx: PairContext) -> Tensor:
    r"""NDCG-Loss2 (Wang et al. 2018): :math:`w_{ij} = \delta_{ij}\,|G_i - G_j|` with
    :math:`\delta_{ij} = \bigl|\frac{1}{\log_2(1 + |r_i - r_j|)} -
    \frac{1}{\log_2(2 + |r_i - r_j|)}\bigr|`."""
    return _rank_distance_delta(ctx.ranks).mul_(_outer_abs_diff(ctx.gains))


def ndcg_loss2pp_weight(ctx: PairContext) -> Tensor:
    r"""NDCG-Loss2++ (Wang et al. 2018): :math:`w_{ij} = (|D_i - D_j| + \mu\,\delta_{ij})
    |G_i - G_j|`, the LambdaRank weight plus :math:`\mu` times NDCG-Loss2's."""
    rho = _outer_abs_diff(ctx.discounts)
    return rho.add_(_rank_distance_delta(ctx.ranks), alpha=ctx.mu).mul_(_outer_abs_diff(ctx.gains))


def ndcg_loss1_weight(ctx: PairContext) -> Tensor:
    r"""NDCG-Loss1 (Wang et al. 2018): :math:`w_{ij} = G_i D_i` on every ordered pair.

    The loss is then :math:`\sum_i G_i D_i \sum_{j \ne i} \phi(s_i - s_j)`; with the logistic
    term this is the paper's :math:`-\sum_i \frac{G_i}{D(r_i)}\log\prod_j
    \sigma(s_i - s_j)` without the constant :math:`j = i` term.
    """
    weight = ctx.gains * ctx.discounts
    return weight.unsqueeze(-1).expand(*weight.shape, weight.shape[-1])


def label_diff_weight(ctx: PairContext) -> Tensor:
    r"""ARP (average relevance position, Wang et al. 2018): :math:`w_{ij} = |y_i - y_j|`
    (rax's ``labeldiff_lambdaweight``)."""
    return _outer_abs_diff(ctx.labels)


#: Pair weights by name.
PAIR_WEIGHTS: dict[str, PairWeight] = {
    "uniform": PairWeight(uniform_weight),
    "lambdarank": PairWeight(lambdarank_weight, uses_gains=True),
    "ndcg_loss1": PairWeight(ndcg_loss1_weight, pairs="all", uses_gains=True),
    "ndcg_loss2": PairWeight(ndcg_loss2_weight, uses_gains=True),
    "ndcg_loss2pp": PairWeight(ndcg_loss2pp_weight, uses_gains=True),
    "label_diff": PairWeight(label_diff_weight),
}

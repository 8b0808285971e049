r"""Memory-bounded list losses: the ``[B, n, n]`` pair matrix in tiles, never held whole.

Pairwise losses (a pair term :math:`\phi` times a pair weight :math:`\lambda`):

.. math::
    S_b = \sum_{(i, j) \in P_b} c_{ij}\, \phi(s_i - s_j), \qquad
    \frac{\partial S_b}{\partial s_k} = \sum_j c_{kj}\, \phi'(s_k - s_j)
        - \sum_i c_{ik}\, \phi'(s_i - s_k)

with :math:`c_{ij} = w_i \lambda_{ij}`. Every pair weight of
:mod:`rankloss.functional.lambdaweights` is a function of per-item quantities (labels, ranks
from one sort, normalised gains, discounts), so each tile ``[b, t, t]`` is rebuilt from
``[B, n]`` vectors. ApproxNDCG's smooth ranks
:math:`\hat r_i = 1 + \sum_{j \ne i} \sigma(\alpha (s_j - s_i))` are row sums of the same kind.

Pairwise: one pass over the tiles gives the value and, when the scores need a gradient, the
closed-form derivative of each list's value with respect to each score; that ``[B, n]``
derivative and the ``[B, n]`` row sums (the gradient of the item weights) are saved, not the
tiles, and backward scales them by the incoming per-list gradient. Smooth ranks: backward
recomputes the tiles against the incoming ``[B, n]`` gradient. Peak memory is
:math:`O(Bn + \text{tile elements})`: tiles cover ``(list block, i block, j block)`` with at
most :data:`TILE_ELEMENTS` pairs each on CPU, :data:`TILE_ELEMENTS_ACCELERATOR` elsewhere (more
when one ``t x t`` tile is larger). First-order
gradients only (no double backward).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from rankloss._core.autograd import first_order_backward

__all__ = [
    "DEFAULT_TILE",
    "TILE_ELEMENTS",
    "TILE_ELEMENTS_ACCELERATOR",
    "PairPlan",
    "STREAMING_WEIGHTS",
    "streaming_pair_sums",
    "streaming_smooth_ranks",
]

#: Default side ``t`` of a tile of the pair matrix.
DEFAULT_TILE = 256

#: Pairs per tile (list block times ``t x t``) on CPU: a float32 temporary of 1 MiB, which
#: stays in cache.
TILE_ELEMENTS = 1 << 18

#: Pairs per tile on other devices (64 MiB in float32): fewer, larger kernel launches.
TILE_ELEMENTS_ACCELERATOR = 1 << 24

#: The named pair weights the streaming path computes from per-item quantities.
STREAMING_WEIGHTS = (
    "uniform",
    "lambdarank",
    "ndcg_loss1",
    "ndcg_loss2",
    "ndcg_loss2pp",
    "label_diff",
)

# torch's softplus returns x itself above this (and its derivative 1); matched here.
_SOFTPLUS_THRESHOLD = 20.0


@dataclass(frozen=True)
class PairPlan:
    r"""Per-item quantities of a pairwise loss, all ``[B, n]`` and detached.

    Attributes:
        mask: bool, True marks a real item.
        key: the pair rule compares it: a pair is :math:`key_i > key_j` (the labels, or the
            labels binarised at the relevance threshold); unused when ``all_pairs``.
        all_pairs: every ordered pair of two different real items (NDCG-Loss1).
        top: bool, the item is in the current top ``k``; ``None`` without ``k``.
        weight: a name of :data:`STREAMING_WEIGHTS`.
        labels, gains, discounts, ranks: what the weight reads (``None`` where unused).
        delta_table: NDCG-Loss2's :math:`\delta` by rank distance
            (:func:`rankloss.functional.lambdaweights.rank_distance_table`), or ``None``.
        term: ``"logistic"``, ``"hinge"`` or ``"squared_hinge"``.
        sigma, margin, mu: the term's slope and margin, NDCG-Loss2++'s mixing weight.
    """

    mask: Tensor
    key: Tensor
    all_pairs: bool
    top: Tensor | None
    weight: str
    labels: Tensor | None
    gains: Tensor | None
    discounts: Tensor | None
    ranks: Tensor | None
    delta_table: Tensor | None
    term: str
    sigma: float
    margin: float
    mu: float


def _tiles(
    batch: int, n: int, tile: int, device: torch.device
) -> Iterator[tuple[slice, slice, slice]]:
    """``(lists, rows, cols)`` slices covering every list and every ordered pair."""
    t = max(1, min(tile, n))
    elements = TILE_ELEMENTS if device.type == "cpu" else TILE_ELEMENTS_ACCELERATOR
    per_block = max(1, elements // (t * t))
    for b0 in range(0, batch, per_block):
        lists = slice(b0, min(b0 + per_block, batch))
        for i0 in range(0, n, t):
            rows = slice(i0, min(i0 + t, n))
            for j0 in range(0, n, t):
                yield lists, rows, slice(j0, min(j0 + t, n))


def _abs_outer(x: Tensor, lists: slice, rows: slice, cols: slice) -> Tensor:
    return (x[lists, rows, None] - x[lists, None, cols]).abs_()


def _delta(plan: PairPlan, lists: slice, rows: slice, cols: slice) -> Tensor:
    assert plan.ranks is not None and plan.delta_table is not None
    n = plan.delta_table.shape[0] - 1
    distance = _abs_outer(plan.ranks, lists, rows, cols).to(torch.long).clamp_(max=n)
    return plan.delta_table[distance]


def _pair_tile(plan: PairPlan, lists: slice, rows: slice, cols: slice) -> Tensor:
    """Bool ``[b, t_i, t_j]``: which entries of the tile are pairs of the loss."""
    mask = plan.mask
    pairs = mask[lists, rows, None] & mask[lists, None, cols]
    if plan.all_pairs:
        if rows.start < cols.stop and cols.start < rows.stop:  # the tile meets the diagonal
            index = torch.arange(mask.shape[-1], device=mask.device)
            pairs &= index[rows, None] != index[None, cols]
    else:
        pairs &= plan.key[lists, rows, None] > plan.key[lists, None, cols]
    if plan.top is not None:
        pairs &= plan.top[lists, rows, None] | plan.top[lists, None, cols]
    return pairs


def _weight_tile(plan: PairPlan, lists: slice, rows: slice, cols: slice) -> Tensor | None:
    """The pair weight on the tile (``None`` for the uniform weight)."""
    name = plan.weight
    if name == "uniform":
        return None
    if name == "label_diff":
        assert plan.labels is not None
        return _abs_outer(plan.labels, lists, rows, cols)
    assert plan.gains is not None and plan.discounts is not None
    if name == "ndcg_loss1":
        return (plan.gains[lists, rows] * plan.discounts[lists, rows]).unsqueeze(-1)
    gain_gap = _abs_outer(plan.gains, lists, rows, cols)
    if name == "lambdarank":
        return gain_gap.mul_(_abs_outer(plan.discounts, lists, rows, cols))
    delta = _delta(plan, lists, rows, cols)
    if name == "ndcg_loss2":
        return delta.mul_(gain_gap)
    rho = _abs_outer(plan.discounts, lists, rows, cols)
    return rho.add_(delta, alpha=plan.mu).mul_(gain_gap)


def _term(plan: PairPlan, diff: Tensor, need_grad: bool) -> tuple[Tensor, Tensor | None]:
    """:math:`\\phi(d)` and :math:`\\phi'(d)` (``None`` unless ``need_grad``); reuses ``diff``."""
    if plan.term == "logistic":
        z = diff.mul_(-plan.sigma)
        value = F.softplus(z)
        if not need_grad:
            return value, None
        slope = torch.sigmoid(z).masked_fill_(z > _SOFTPLUS_THRESHOLD, 1.0).mul_(-plan.sigma)
        return value, slope
    gap = diff.neg_().add_(plan.margin)  # m - d
    if plan.term == "hinge":
        value = torch.relu(gap)
        return value, (-(gap > 0).to(gap.dtype)) if need_grad else None
    value = torch.relu(gap)
    squared_slope = value.mul(-2.0) if need_grad else None
    return value.square_(), squared_slope


def _pair_pass(
    scores: Tensor, weights: Tensor | None, plan: PairPlan, tile: int, need_grad: bool
) -> tuple[Tensor, Tensor, Tensor | None]:
    """Row sums :math:`v_i = \\sum_j \\lambda_{ij} [(i, j) \\in P] \\phi(s_i - s_j)` (without
    the item weight), pair counts per list, and :math:`\\partial S_b / \\partial s` (item
    weights included) or None."""
    batch, n = scores.shape
    rows_total = torch.zeros_like(scores)
    count = scores.new_zeros(batch)
    grad = torch.zeros_like(scores) if need_grad else None
    for lists, rows, cols in _tiles(batch, n, tile, scores.device):
        coef = _pair_tile(plan, lists, rows, cols).to(scores.dtype)
        count[lists] += coef.sum((-1, -2))
        weight = _weight_tile(plan, lists, rows, cols)
        if weight is not None:
            coef.mul_(weight)
        diff = scores[lists, rows, None] - scores[lists, None, cols]
        value, slope = _term(plan, diff, need_grad)
        rows_total[lists, rows] += value.mul_(coef).sum(-1)
        if grad is not None and slope is not None:
            slope.mul_(coef)
            if weights is not None:
                slope.mul_(weights[lists, rows, None])
            grad[lists, rows] += slope.sum(-1)
            grad[lists, cols] -= slope.sum(-2)
    return rows_total, count, grad


class _PairSums(torch.autograd.Function):
    @staticmethod
    def forward(
        ctx: Any,
        scores: Tensor,
        weights: Tensor | None,
        plan: PairPlan,
        tile: int,
        need_grad: bool,
    ) -> tuple[Tensor, Tensor]:
        w = None if weights is None else weights.detach()
        rows_total, count, grad = _pair_pass(scores.detach(), w, plan, tile, need_grad)
        total = rows_total.sum(-1) if w is None else (rows_total * w).sum(-1)
        ctx.save_for_backward(grad if grad is not None else scores.new_zeros(()), rows_total)
        ctx.mark_non_differentiable(count)
        return total, count

    @staticmethod
    @first_order_backward(
        "pairwise losses with impl='streaming'",
        "impl='torch' (impl='auto' streams large CPU batches)",
    )
    def backward(ctx: Any, grad_total: Tensor, grad_count: Tensor) -> tuple[Tensor | None, ...]:
        grad, rows_total = ctx.saved_tensors
        g = grad_total.unsqueeze(-1)
        grad_scores = g * grad if ctx.needs_input_grad[0] else None
        grad_weights = g * rows_total if ctx.needs_input_grad[1] else None
        return grad_scores, grad_weights, None, None, None


def streaming_pair_sums(
    scores: Tensor, weights: Tensor | None, plan: PairPlan, tile: int
) -> tuple[Tensor, Tensor]:
    """``(S [B], pair count [B])`` of a pairwise loss over tiles, with
    :math:`S_b = \\sum_i w_i v_i`; ``S`` is differentiable in the scores and the item weights.

    Args:
        scores: ``[B, n]`` sanitised scores (0 at padding).
        weights: ``[B, n]`` per-item weights (0 at padding) or ``None``.
        plan: the per-item quantities.
        tile: side of a tile.
    """
    need_grad = torch.is_grad_enabled() and scores.requires_grad
    total, count = _PairSums.apply(scores, weights, plan, tile, need_grad)
    return total, count


def _others(mask: Tensor, lists: slice, rows: slice, cols: slice) -> Tensor:
    """Bool tile: both items real and different."""
    real = mask[lists, rows, None] & mask[lists, None, cols]
    if rows.start < cols.stop and cols.start < rows.stop:  # the tile meets the diagonal
        index = torch.arange(mask.shape[-1], device=mask.device)
        real &= index[rows, None] != index[None, cols]
    return real


def _soft_tile(scores: Tensor, alpha: float, lists: slice, rows: slice, cols: slice) -> Tensor:
    """:math:`\\sigma(\\alpha (s_j - s_i))` on the tile."""
    x = scores[lists, None, cols] - scores[lists, rows, None]
    return torch.sigmoid(x.mul_(alpha))


class _SmoothRanks(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, scores: Tensor, mask: Tensor, alpha: float, tile: int) -> Tensor:
        s = scores.detach()
        batch, n = s.shape
        ranks = torch.ones_like(s)
        for lists, rows, cols in _tiles(batch, n, tile, s.device):
            p = _soft_tile(s, alpha, lists, rows, cols)
            ranks[lists, rows] += p.masked_fill_(~_others(mask, lists, rows, cols), 0.0).sum(-1)
        ctx.save_for_backward(s, mask)
        ctx.alpha, ctx.tile = alpha, tile
        return ranks

    @staticmethod
    @first_order_backward(
        "approx_ndcg_loss(impl='streaming')",
        "impl='torch' (impl='auto' streams large CPU batches)",
    )
    def backward(ctx: Any, grad_ranks: Tensor) -> tuple[Tensor | None, ...]:
        # r_i = 1 + sum_j sigma(a (s_j - s_i)): d r_i / d s_i = -a sum_j sigma'_ij and
        # d r_i / d s_j = a sigma'_ij; the tiles are recomputed.
        s, mask = ctx.saved_tensors
        batch, n = s.shape
        grad = torch.zeros_like(s)
        for lists, rows, cols in _tiles(batch, n, ctx.tile, s.device):
            p = _soft_tile(s, ctx.alpha, lists, rows, cols)
            q = p.mul_(1.0 - p).masked_fill_(~_others(mask, lists, rows, cols), 0.0)
            q.mul_(grad_ranks[lists, rows, None] * ctx.alpha)
            grad[lists, rows] -= q.sum(-1)
            grad[lists, cols] += q.sum(-2)
        return grad, None, None, None


def streaming_smooth_ranks(scores: Tensor, mask: Tensor, alpha: float, tile: int) -> Tensor:
    """``[B, n]`` ApproxNDCG's smooth ranks over tiles, differentiable in ``scores``.

    .. math:: \\hat r_i = 1 + \\sum_{j \\ne i,\\ \\text{real}} \\sigma(\\alpha (s_j - s_i))

    Backward recomputes the tiles. Padded items get rank 1 and no gradient.
    """
    ranks: Tensor = _SmoothRanks.apply(scores, mask, alpha, tile)
    return ranks

r"""Fused Triton kernel for the logistic pairwise losses (RankNet, LambdaRank, LambdaLoss).

For each list :math:`b` and item :math:`i` the kernel computes, without a ``[B, n, n]`` tensor,

.. math::
    v_i = \sum_j \lambda_{ij} [(i, j) \in P]\, \phi(s_i - s_j), \qquad
    g_i = \sum_j c_{ij}\, \phi'(s_i - s_j) - \sum_j c_{ji}\, \phi'(s_j - s_i), \qquad
    p_i = \sum_j [(i, j) \in P]

with :math:`\phi(d) = \log(1 + e^{-\sigma d})`, :math:`c_{ij} = [(i, j) \in P]\, w_i
\lambda_{ij}` and the pairs :math:`P`: real items with :math:`key_i > key_j`, and with ``k``
at least one of them in the current top ``k``. The list's value is :math:`\sum_i w_i v_i`, its
derivative with respect to :math:`s_i` is :math:`g_i` (both the row and the column side of the
pair matrix, so no atomics), its pair count :math:`\sum_i p_i`.

One program per (list, block of ``BLOCK`` items) loops over the blocks of the other items and
keeps everything in registers; per-item vectors (scores, keys, mask, top-k flags, item weights,
normalised gains, discounts, ranks) come from PyTorch (one sort, the ideal DCG). Pair weights:
uniform, ``"lambdarank"`` :math:`|G_i - G_j|\,|D_i - D_j|`, ``"ndcg_loss2"``
:math:`\delta_{ij} |G_i - G_j|` and ``"ndcg_loss2pp"`` :math:`(|D_i - D_j| + \mu \delta_{ij})
|G_i - G_j|`. Accumulation is in the scores' dtype: float32 (half precision arrives upcast) or
float64.

Backward: the forward saves :math:`g` (``[B, n]``, :math:`O(Bn)` memory) and the backward
scales it by the incoming per-list gradient, so the pair matrix is visited once per step.

Cost: :math:`O(n^2)` time per list, :math:`O(Bn)` memory. Triton is imported when this module
is imported; :mod:`rankloss.functional` imports it only when ``impl`` resolves to
``"triton"``.
"""

from __future__ import annotations

from typing import Any

import torch
import triton  # type: ignore[import-untyped]
import triton.language as tl  # type: ignore[import-untyped]
from torch import Tensor

from rankloss._core.autograd import first_order_backward

__all__ = ["KERNEL_WEIGHTS", "DEFAULT_BLOCK", "triton_pair_sums"]

#: The pair weights the kernel computes, by the code it compiles for each.
KERNEL_WEIGHTS = {"uniform": 0, "lambdarank": 1, "ndcg_loss2": 2, "ndcg_loss2pp": 3}

#: Items per block when ``tile_size`` is not given.
DEFAULT_BLOCK = 64


@triton.jit
def _pair_kernel(
    scores,
    keys,
    mask,
    top,
    item_weights,
    gains,
    discounts,
    ranks,
    out_value,
    out_grad,
    out_count,
    n,
    sigma,
    mu,
    WEIGHT: tl.constexpr,
    BLOCK: tl.constexpr,
):
    b = tl.program_id(0)
    block = tl.program_id(1)
    base = b * n
    offs_i = block * BLOCK + tl.arange(0, BLOCK)
    in_i = offs_i < n
    s_i = tl.load(scores + base + offs_i, mask=in_i, other=0.0)
    zero = s_i * 0.0
    k_i = tl.load(keys + base + offs_i, mask=in_i, other=0.0)
    m_i = tl.load(mask + base + offs_i, mask=in_i, other=0.0)
    t_i = tl.load(top + base + offs_i, mask=in_i, other=0.0)
    w_i = tl.load(item_weights + base + offs_i, mask=in_i, other=0.0)
    g_i = tl.load(gains + base + offs_i, mask=in_i, other=0.0)
    d_i = tl.load(discounts + base + offs_i, mask=in_i, other=0.0)
    r_i = tl.load(ranks + base + offs_i, mask=in_i, other=0.0)
    acc_value = zero
    acc_grad = zero
    acc_count = zero
    for start in range(0, n, BLOCK):
        offs_j = start + tl.arange(0, BLOCK)
        in_j = offs_j < n
        s_j = tl.load(scores + base + offs_j, mask=in_j, other=0.0)
        k_j = tl.load(keys + base + offs_j, mask=in_j, other=0.0)
        m_j = tl.load(mask + base + offs_j, mask=in_j, other=0.0)
        t_j = tl.load(top + base + offs_j, mask=in_j, other=0.0)
        w_j = tl.load(item_weights + base + offs_j, mask=in_j, other=0.0)

        both = (m_i[:, None] > 0) & (m_j[None, :] > 0)
        near = (t_i[:, None] > 0) | (t_j[None, :] > 0)
        forward = both & near & (k_i[:, None] > k_j[None, :])  # (i, j) is a pair
        backward = both & near & (k_j[None, :] > k_i[:, None])  # (j, i) is a pair

        if WEIGHT == 0:
            lam = 1.0 + (s_i[:, None] - s_j[None, :]) * 0.0
        else:
            g_j = tl.load(gains + base + offs_j, mask=in_j, other=0.0)
            gain_gap = tl.abs(g_i[:, None] - g_j[None, :])
            if WEIGHT == 1 or WEIGHT == 3:
                d_j = tl.load(discounts + base + offs_j, mask=in_j, other=0.0)
                rho = tl.abs(d_i[:, None] - d_j[None, :])
            if WEIGHT == 2 or WEIGHT == 3:
                r_j = tl.load(ranks + base + offs_j, mask=in_j, other=0.0)
                dist = tl.maximum(tl.abs(r_i[:, None] - r_j[None, :]), 1.0)
                delta = tl.abs(1.0 / tl.log2(1.0 + dist) - 1.0 / tl.log2(2.0 + dist))
            if WEIGHT == 1:
                lam = rho * gain_gap
            elif WEIGHT == 2:
                lam = delta * gain_gap
            else:
                lam = (rho + mu * delta) * gain_gap

        # z = -sigma (s_i - s_j); phi = softplus(z); phi' = -sigma * sigmoid(z).
        # One exp, one log and one division a pair: e = exp(-|z|), r = 1 / (1 + e).
        z = -sigma * (s_i[:, None] - s_j[None, :])
        e = tl.exp(-tl.abs(z))
        r = 1.0 / (1.0 + e)
        softplus = tl.where(z > 20.0, z, tl.maximum(z, 0.0) + tl.log(1.0 + e))
        sig_pos = tl.where(z > 20.0, 1.0, tl.where(z >= 0, r, e * r))  # sigmoid(z)
        sig_neg = tl.where(-z > 20.0, 1.0, tl.where(z <= 0, r, e * r))  # sigmoid(-z)

        lam_ij = tl.where(forward, lam, 0.0)
        c_ij = lam_ij * w_i[:, None]
        c_ji = tl.where(backward, lam * w_j[None, :], 0.0)
        acc_value += tl.sum(lam_ij * softplus, axis=1)
        acc_count += tl.sum(tl.where(forward, 1.0, 0.0), axis=1)
        # d/ds_i of c_ij phi(s_i - s_j) is c_ij phi'; of c_ji phi(s_j - s_i) it is -c_ji phi'.
        acc_grad += tl.sum(-sigma * (c_ij * sig_pos - c_ji * sig_neg), axis=1)
    tl.store(out_value + base + offs_i, acc_value, mask=in_i)
    tl.store(out_grad + base + offs_i, acc_grad, mask=in_i)
    tl.store(out_count + base + offs_i, acc_count, mask=in_i)


def _block(tile_size: int | None) -> int:
    if tile_size is None:
        return DEFAULT_BLOCK
    return max(16, triton.next_power_of_2(tile_size))


def _launch(
    scores: Tensor, items: tuple[Tensor, ...], weight: str, sigma: float, mu: float, block: int
) -> tuple[Tensor, Tensor, Tensor]:
    batch, n = scores.shape
    value = torch.empty_like(scores)
    grad = torch.empty_like(scores)
    count = torch.empty_like(scores)
    if batch and n:
        grid = (batch, triton.cdiv(n, block))
        _pair_kernel[grid](
            scores,
            *items,
            value,
            grad,
            count,
            n,
            float(sigma),
            float(mu),
            WEIGHT=KERNEL_WEIGHTS[weight],
            BLOCK=block,
        )
    return value, count.sum(-1), grad


class _TritonPairSums(torch.autograd.Function):
    @staticmethod
    def forward(
        ctx: Any,
        scores: Tensor,
        weights: Tensor | None,
        items: tuple[Tensor, ...],
        weight: str,
        sigma: float,
        mu: float,
        block: int,
    ) -> tuple[Tensor, Tensor]:
        rows, count, grad = _launch(scores.detach(), items, weight, sigma, mu, block)
        total = rows.sum(-1) if weights is None else (rows * weights.detach()).sum(-1)
        ctx.save_for_backward(grad, rows)
        ctx.mark_non_differentiable(count)
        return total, count

    @staticmethod
    @first_order_backward("pairwise losses with impl='triton'", "impl='torch'")
    def backward(ctx: Any, grad_total: Tensor, grad_count: Tensor) -> tuple[Tensor | None, ...]:
        grad, rows = ctx.saved_tensors
        g = grad_total.unsqueeze(-1)
        grad_scores = g * grad if ctx.needs_input_grad[0] else None
        grad_weights = g * rows if ctx.needs_input_grad[1] else None
        return grad_scores, grad_weights, None, None, None, None, None


def triton_pair_sums(
    scores: Tensor,
    *,
    mask: Tensor,
    keys: Tensor,
    top: Tensor | None,
    item_weights: Tensor | None,
    gains: Tensor | None,
    discounts: Tensor | None,
    ranks: Tensor | None,
    weight: str,
    sigma: float,
    mu: float,
    tile_size: int | None = None,
) -> tuple[Tensor, Tensor]:
    """``(S [B], pair count [B])`` of a logistic pairwise loss, ``S`` differentiable.

    Args:
        scores: ``[B, n]`` float32 or float64 (0 at padding).
        mask: ``[B, n]`` bool, True marks a real item.
        keys: ``[B, n]``: a pair is :math:`key_i > key_j` (labels, or binarised labels).
        top: ``[B, n]`` bool, in the current top ``k``; ``None`` without ``k``.
        item_weights: ``[B, n]`` weight of the more relevant item, or ``None``.
        gains, discounts, ranks: ``[B, n]`` normalised gains, discounts (0 beyond ``k``) and
            1-based ranks, as the weight needs (``None`` where unused).
        weight: a key of :data:`KERNEL_WEIGHTS`.
        sigma: slope of the logistic term.
        mu: NDCG-Loss2++'s mixing weight.
        tile_size: items per block (rounded up to a power of two, at least 16), or ``None``
            for :data:`DEFAULT_BLOCK`.

    Returns:
        ``(S, count)``, both ``[B]`` in the scores' dtype; ``S`` is differentiable in the
        scores and the item weights (the kernel also writes each item's row sum without its
        weight, :math:`v_i / w_i`, the gradient of the item weights).
    """
    dtype = scores.dtype

    def vector(x: Tensor | None, fill: float) -> Tensor:
        if x is None:
            return torch.full_like(scores, fill, dtype=dtype).detach()
        return x.detach().to(dtype).contiguous()

    items = (
        vector(keys, 0.0),
        vector(mask, 0.0),
        vector(top, 1.0),
        vector(item_weights, 1.0),
        vector(gains, 0.0),
        vector(discounts, 0.0),
        vector(ranks, 0.0),
    )
    result: tuple[Tensor, Tensor] = _TritonPairSums.apply(
        scores.contiguous(), item_weights, items, weight, sigma, mu, _block(tile_size)
    )
    return result

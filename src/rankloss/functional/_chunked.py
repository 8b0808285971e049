"""Memory-bounded InfoNCE: logits in column blocks, recomputed in backward.

For query :math:`i` with negatives :math:`\\mathcal N_i` and positives :math:`\\mathcal P_i`,
:math:`L_i = \\log \\sum_{n \\in \\mathcal N_i} e^{z_{in}}` and the loss is
:math:`\\ell_i = |\\mathcal P_i|^{-1} \\sum_{p} \\operatorname{softplus}(L_i - z_{ip})`.
Forward makes two passes over blocks of candidates (a running log-sum-exp, then the positive
terms); backward recomputes each block of logits and accumulates

.. math::
    \\frac{\\partial \\ell_i}{\\partial z_{ij}} =
    [j \\in \\mathcal N_i]\\, A_i\\, e^{z_{ij} - L_i}
    - [j \\in \\mathcal P_i]\\, \\sigma(L_i - z_{ij}) / |\\mathcal P_i|,
    \\qquad A_i = |\\mathcal P_i|^{-1} \\sum_p \\sigma(L_i - z_{ip}).

Peak memory is :math:`O(Nd + N \\cdot \\text{chunk})`: no ``[N, M]`` tensor is ever held.
Positive terms are evaluated only at the positive entries (gathered), not over whole blocks.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from rankloss._core import reduce as _reduce_module
from rankloss._core.autograd import first_order_backward
from rankloss._core.candidates import Candidates
from rankloss._core.validation import autocast_off, compute_dtype

__all__ = ["chunked_info_nce", "WrittenOut", "written_out"]


class WrittenOut(torch.autograd.Function):
    """Base of the reduced block forms whose forward writes the gradients out (the streaming
    pair losses, SigLIP): a subclass's ``forward`` ends with :func:`written_out`; the backward
    only scales the stored gradients by the upstream one."""

    @staticmethod
    @first_order_backward("embedding losses with impl='streaming'", "impl='torch'")
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, ...]:
        # ctx.grads is kept: a retained graph may run its backward again.
        scaled = tuple(None if g is None else grad * g for g in ctx.grads)
        return (*scaled, *([None] * ctx.others))


def written_out(
    ctx: Any,
    total: Tensor,
    count: Tensor,
    grads: tuple[Tensor | None, ...],
    mean: bool,
    others: int,
) -> Tensor:
    """End a :class:`WrittenOut` forward: ``total`` and ``grads`` (of the forward's leading
    tensor inputs; ``None`` where none is wanted) over ``count`` when ``mean`` (a zero count
    divides by 1), the gradients stored for the backward, which returns ``None`` for the
    ``others`` inputs that follow them."""
    _reduce_module.note_denominator(count)  # its count, for a listening distributed wrapper
    if mean:
        denominator = torch.where(count != 0, count, torch.ones_like(count))
        total = total / denominator
        grads = tuple(None if g is None else g / denominator for g in grads)
    ctx.grads, ctx.others = grads, others
    return total


def _blocks(cand: Candidates, chunk: int) -> Iterator[tuple[int, int]]:
    for start in range(0, cand.num_keys, chunk):
        yield start, min(start + chunk, cand.num_keys)


def _logsumexp_negatives(queries: Tensor, keys: Tensor, cand: Candidates, chunk: int) -> Tensor:
    n = queries.shape[0]
    running_max = queries.new_full((n,), -math.inf)
    running_sum = queries.new_zeros(n)
    for start, stop in _blocks(cand, chunk):
        logits = queries @ keys[start:stop].T
        _, negative = cand.masks(start, stop)
        logits.masked_fill_(~negative, -math.inf)
        new_max = torch.maximum(running_max, logits.amax(1))
        ref = torch.where(torch.isfinite(new_max), new_max, torch.zeros_like(new_max))
        block_sum = logits.sub_(ref.unsqueeze(1)).exp_().sum(1)
        running_sum = running_sum * (running_max - ref).exp() + block_sum
        running_max = new_max
    ref = torch.where(torch.isfinite(running_max), running_max, torch.zeros_like(running_max))
    return torch.where(running_sum > 0, ref + running_sum.log(), running_max)


class _ChunkedInfoNCE(torch.autograd.Function):
    @staticmethod
    def forward(
        ctx: Any, queries: Tensor, keys: Tensor, cand: Candidates, chunk: int
    ) -> tuple[Tensor, Tensor]:
        n = queries.shape[0]
        lse = _logsumexp_negatives(queries, keys, cand, chunk)
        total = queries.new_zeros(n)
        weight = queries.new_zeros(n)
        count = queries.new_zeros(n)
        for start, stop in _blocks(cand, chunk):
            positive, _ = cand.masks(start, stop)
            rows, cols = torch.nonzero(positive, as_tuple=True)
            if rows.numel() == 0:
                continue
            # Only the positive entries: one dot product each, not the block's whole product.
            logits = (queries[rows] * keys[start + cols]).sum(-1)
            gap = lse[rows] - logits
            total.index_add_(0, rows, F.softplus(gap))
            weight.index_add_(0, rows, torch.sigmoid(gap))
            count.index_add_(0, rows, torch.ones_like(gap))
        valid = (count > 0) & torch.isfinite(lse)
        scale = 1.0 / count.clamp(min=1)
        loss = torch.where(valid, total * scale, torch.zeros_like(total))
        ctx.save_for_backward(queries, keys, lse, weight * scale, scale, valid)
        ctx.cand = cand
        ctx.chunk = chunk
        ctx.mark_non_differentiable(valid)
        return loss, valid

    @staticmethod
    @first_order_backward("InfoNCE / NT-Xent with impl='streaming'", "impl='torch'")
    def backward(
        ctx: Any, grad_loss: Tensor, _grad_valid: Tensor | None
    ) -> tuple[Tensor, Tensor, None, None]:
        queries, keys, lse, neg_weight, pos_scale, valid = ctx.saved_tensors
        with autocast_off(queries.device):
            return _ChunkedInfoNCE._backward(
                ctx, grad_loss, queries, keys, lse, neg_weight, pos_scale, valid
            )

    @staticmethod
    def _backward(
        ctx: Any,
        grad_loss: Tensor,
        queries: Tensor,
        keys: Tensor,
        lse: Tensor,
        neg_weight: Tensor,
        pos_scale: Tensor,
        valid: Tensor,
    ) -> tuple[Tensor, Tensor, None, None]:
        cand: Candidates = ctx.cand
        grad = torch.where(valid, grad_loss, torch.zeros_like(grad_loss))
        lse_safe = torch.where(torch.isfinite(lse), lse, torch.zeros_like(lse))
        neg_coef = (grad * neg_weight).unsqueeze(1)
        pos_coef = grad * pos_scale
        grad_queries = torch.zeros_like(queries)
        grad_keys = torch.zeros_like(keys)
        for start, stop in _blocks(cand, ctx.chunk):
            positive, negative = cand.masks(start, stop)
            block = keys[start:stop]
            g = queries @ block.T
            rows, cols = torch.nonzero(positive, as_tuple=True)
            pos_logits = g[rows, cols]
            # Negatives: A_i exp(z - L_i); everything else is zeroed after the exp.
            g.sub_(lse_safe.unsqueeze(1)).clamp_(max=0).exp_().mul_(neg_coef)
            g.masked_fill_(~negative, 0.0)
            if rows.numel():
                g.index_put_(
                    (rows, cols),
                    -torch.sigmoid(lse_safe[rows] - pos_logits) * pos_coef[rows],
                    accumulate=True,
                )
            grad_queries.addmm_(g, block)
            grad_keys[start:stop] = g.T @ queries
        return grad_queries, grad_keys, None, None


def chunked_info_nce(
    queries: Tensor, keys: Tensor, cand: Candidates, chunk: int
) -> tuple[Tensor, Tensor]:
    """Per-query InfoNCE ``[N]`` and validity ``[N]`` of scaled ``queries`` against ``keys``.

    ``queries`` should already be divided by the temperature (and normalised for cosine);
    the public entry point, which checks its arguments, is
    :func:`rankloss.functional.embedding.chunked_info_nce_loss`. float16 and bfloat16 inputs
    are computed in float32, and the block products (forward and backward) run with autocast
    off, so ``torch.autocast`` does not round the logits to half precision.
    """
    if chunk < 1:
        raise ValueError(f"chunked_info_nce: chunk_size must be a positive integer, got {chunk}")
    dtype = compute_dtype(torch.promote_types(queries.dtype, keys.dtype))
    with autocast_off(queries.device):
        values, valid = _ChunkedInfoNCE.apply(queries.to(dtype), keys.to(dtype), cand, chunk)
    return values, valid

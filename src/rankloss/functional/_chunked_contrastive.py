r"""Memory-bounded SupCon and SigLIP: logits in column blocks, recomputed in backward.

Both run over blocks of ``chunk`` candidates of :class:`~rankloss._core.candidates.Candidates`
(the masks of a block come from its per-row labels), so peak memory is
:math:`O(Nd + N \cdot \text{chunk})`: no ``[N, M]`` tensor is ever held.

* SupCon, with :math:`\mathcal A_i = \mathcal P_i \cup \mathcal N_i` and
  :math:`L_i = \log\sum_{j \in \mathcal A_i} e^{z_{ij}}` (a running log-sum-exp):
  :math:`\ell_i = L_i - |\mathcal P_i|^{-1}\sum_p z_{ip}`, and
  :math:`\partial\ell_i/\partial z_{ij} = [j \in \mathcal A_i]\,e^{z_{ij} - L_i}
  - [j \in \mathcal P_i]/|\mathcal P_i|`.
* SigLIP, with :math:`x_{ij} = z_{ij} + b` and sign :math:`\zeta_{ij} = \pm 1`:
  :math:`\ell_i = \sum_j \operatorname{softplus}(-\zeta_{ij} x_{ij})` in one pass, and
  :math:`\partial\ell_i/\partial x_{ij} = -\zeta_{ij}\,\sigma(-\zeta_{ij} x_{ij})`.

``queries`` arrive already scaled (divided by the temperature, or multiplied by the SigLIP
scale), so a learnable temperature or scale gets its gradient through that product.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from rankloss._core import params
from rankloss._core.autograd import first_order_backward
from rankloss._core.candidates import Candidates
from rankloss._core.validation import autocast_off, compute_dtype
from rankloss.functional._chunked import WrittenOut, _blocks, written_out

__all__ = ["chunked_supcon", "chunked_siglip", "chunked_siglip_reduced", "softplus_exact"]


class _SoftplusExact(torch.autograd.Function):
    """:math:`\\max(x, 0) + \\log(1 + e^{-|x|})` with the gradient :math:`\\sigma(x)`: the
    forward in place on two temporaries, only ``x`` saved. The backward is written in
    differentiable operations, so a second derivative works too."""

    @staticmethod
    def forward(ctx: Any, x: Tensor) -> Tensor:
        ctx.save_for_backward(x)
        out = x.clamp(min=0)
        return out.add_(x.abs().neg_().exp_().log1p_())

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> Tensor:
        (x,) = ctx.saved_tensors
        return grad * torch.sigmoid(x)


def softplus_exact(x: Tensor) -> Tensor:
    """``log(1 + e^x)`` without ``F.softplus``'s linear cut-off above 20 (whose gradient, 1,
    would differ from the exact :math:`\\sigma(x)` of the recomputed backward). Cost: about
    half the passes over ``x`` of the same formula in plain operations (forward + backward)."""
    out: Tensor = _SoftplusExact.apply(x)
    return out


class _ChunkedSupCon(torch.autograd.Function):
    @staticmethod
    def forward(
        ctx: Any, queries: Tensor, keys: Tensor, cand: Candidates, chunk: int
    ) -> tuple[Tensor, Tensor]:
        n = queries.shape[0]
        running_max = queries.new_full((n,), -math.inf)
        running_sum = queries.new_zeros(n)
        pos_total = queries.new_zeros(n)
        count = queries.new_zeros(n)
        for start, stop in _blocks(cand, chunk):
            logits = queries @ keys[start:stop].T
            positive, negative = cand.masks(start, stop)
            pos_total += torch.where(positive, logits, torch.zeros_like(logits)).sum(1)
            count += positive.sum(1).to(count.dtype)
            logits.masked_fill_(~(positive | negative), -math.inf)
            new_max = torch.maximum(running_max, logits.amax(1))
            ref = torch.where(torch.isfinite(new_max), new_max, torch.zeros_like(new_max))
            block_sum = logits.sub_(ref.unsqueeze(1)).exp_().sum(1)
            running_sum = running_sum * (running_max - ref).exp() + block_sum
            running_max = new_max
        ref = torch.where(torch.isfinite(running_max), running_max, torch.zeros_like(running_max))
        lse = ref + torch.where(running_sum > 0, running_sum, torch.ones_like(running_sum)).log()
        valid = count > 0
        scale = 1.0 / count.clamp(min=1)
        loss = torch.where(valid, lse - pos_total * scale, torch.zeros_like(lse))
        ctx.save_for_backward(queries, keys, lse, scale, valid)
        ctx.cand = cand
        ctx.chunk = chunk
        ctx.mark_non_differentiable(valid)
        return loss, valid

    @staticmethod
    @first_order_backward("SupCon with impl='streaming'", "impl='torch'")
    def backward(
        ctx: Any, grad_loss: Tensor, _grad_valid: Tensor | None
    ) -> tuple[Tensor, Tensor, None, None]:
        queries, keys, lse, pos_scale, valid = ctx.saved_tensors
        cand: Candidates = ctx.cand
        with autocast_off(queries.device):
            grad = torch.where(valid, grad_loss, torch.zeros_like(grad_loss))
            pos_coef = (grad * pos_scale).unsqueeze(1)
            grad_queries = torch.zeros_like(queries)
            grad_keys = torch.zeros_like(keys)
            for start, stop in _blocks(cand, ctx.chunk):
                positive, negative = cand.masks(start, stop)
                block = keys[start:stop]
                g = queries @ block.T
                g.sub_(lse.unsqueeze(1)).clamp_(max=0).exp_().mul_(grad.unsqueeze(1))
                g.masked_fill_(~(positive | negative), 0.0)
                g.sub_(positive.to(g.dtype) * pos_coef)
                grad_queries.addmm_(g, block)
                grad_keys[start:stop] = g.T @ queries
        return grad_queries, grad_keys, None, None


class _ChunkedSigLIP(torch.autograd.Function):
    @staticmethod
    def forward(
        ctx: Any, queries: Tensor, keys: Tensor, bias: Tensor, cand: Candidates, chunk: int
    ) -> tuple[Tensor, Tensor]:
        n = queries.shape[0]
        total = queries.new_zeros(n)
        has_pair = torch.zeros(n, dtype=torch.bool, device=queries.device)
        for start, stop in _blocks(cand, chunk):
            x = queries @ keys[start:stop].T + bias
            positive, negative = cand.masks(start, stop)
            x = torch.where(positive, -x, x)
            terms = softplus_exact(x).masked_fill_(~(positive | negative), 0.0)
            total += terms.sum(1)
            has_pair |= (positive | negative).any(1)
        ctx.save_for_backward(queries, keys, bias)
        ctx.cand = cand
        ctx.chunk = chunk
        ctx.mark_non_differentiable(has_pair)
        return total, has_pair

    @staticmethod
    @first_order_backward("SigLIP with impl='streaming'", "impl='torch'")
    def backward(
        ctx: Any, grad_loss: Tensor, _grad_valid: Tensor | None
    ) -> tuple[Tensor, Tensor, Tensor, None, None]:
        queries, keys, bias = ctx.saved_tensors
        cand: Candidates = ctx.cand
        with autocast_off(queries.device):
            grad_queries = torch.zeros_like(queries)
            grad_keys = torch.zeros_like(keys)
            grad_bias = torch.zeros_like(bias)
            for start, stop in _blocks(cand, ctx.chunk):
                positive, negative = cand.masks(start, stop)
                block = keys[start:stop]
                x = queries @ block.T + bias
                # d softplus(-zeta x) / dx = -zeta sigmoid(-zeta x)
                g = torch.where(positive, -torch.sigmoid(-x), torch.sigmoid(x))
                g.masked_fill_(~(positive | negative), 0.0).mul_(grad_loss.unsqueeze(1))
                grad_bias += g.sum()
                grad_queries.addmm_(g, block)
                grad_keys[start:stop] = g.T @ queries
        return grad_queries, grad_keys, grad_bias, None, None


class _ReducedSigLIP(WrittenOut):
    r""":math:`\sum_a u_a \ell_a` of SigLIP over blocks of candidates, each block's gradient
    written out in the forward (:math:`\partial \ell_a / \partial x_{aj} = -z_{aj}
    \sigma(-z_{aj} x_{aj})`), so the backward only scales what the forward accumulated."""

    @staticmethod
    def forward(
        ctx: Any,
        queries: Tensor,
        keys: Tensor,
        bias: Tensor,
        coefficients: Tensor | None,
        cand: Candidates,
        chunk: int,
        mean: bool,
    ) -> Tensor:
        want_q, want_k, want_b = ctx.needs_input_grad[:3]
        n = queries.shape[0]
        per_anchor = queries.new_zeros(n)
        has_pair = torch.zeros(n, dtype=torch.bool, device=queries.device)
        grad_q = queries.new_zeros(queries.shape) if want_q else None
        grad_k = keys.new_zeros(keys.shape) if want_k else None
        grad_b = bias.new_zeros(()) if want_b else None
        for start, stop in _blocks(cand, chunk):
            block = keys[start:stop]
            x = queries @ block.T + bias
            positive, negative = cand.masks(start, stop)
            pair = positive | negative
            x = torch.where(positive, -x, x)
            per_anchor += softplus_exact(x).masked_fill_(~pair, 0.0).sum(1)
            has_pair |= pair.any(1)
            if grad_q is None and grad_k is None and grad_b is None:
                continue
            # d softplus(-z x) / dx = -z sigmoid(-z x): the sigmoid of the signed logit, with
            # the sign of z put back.
            g = torch.sigmoid_(x).masked_fill_(~pair, 0.0)
            g = torch.where(positive, -g, g)
            if coefficients is not None:
                g.mul_(coefficients.unsqueeze(1))
            if grad_b is not None:
                grad_b += g.sum()
            if grad_q is not None:
                grad_q.addmm_(g, block)
            if grad_k is not None:
                grad_k[start:stop] = g.T @ queries
        scale = has_pair.to(per_anchor.dtype)
        if coefficients is not None:
            scale = scale * coefficients
        total = (per_anchor * scale).sum()
        return written_out(ctx, total, scale.sum(), (grad_q, grad_k, grad_b), mean, others=4)


def chunked_siglip_reduced(
    queries: Tensor,
    keys: Tensor,
    bias: Tensor,
    coefficients: Tensor | None,
    cand: Candidates,
    chunk: int,
    mean: bool,
) -> Tensor:
    """SigLIP reduced to ``"sum"`` (or ``"mean"`` over anchors with a pair, weighted by
    ``coefficients [N]``, which take no gradient) in blocks of ``chunk`` candidates, with the
    gradients written out in the forward: the value and gradients of
    ``reduce_values(*chunked_siglip(...), coefficients, reduction)``, without recomputing a
    block. Differentiable once. float16/bfloat16 inputs are computed in float32."""
    params.positive_int("chunked_siglip", "chunk_size", chunk)
    dtype = compute_dtype(torch.promote_types(queries.dtype, keys.dtype))
    if not torch.is_grad_enabled():  # the forward would still build the gradients otherwise
        queries, keys, bias = queries.detach(), keys.detach(), bias.detach()
    with autocast_off(queries.device):
        out: Tensor = _ReducedSigLIP.apply(
            queries.to(dtype),
            keys.to(dtype),
            bias.to(dtype).reshape(()),
            None if coefficients is None else coefficients.to(dtype),
            cand,
            chunk,
            mean,
        )
    return out


def chunked_supcon(
    queries: Tensor, keys: Tensor, cand: Candidates, chunk: int
) -> tuple[Tensor, Tensor]:
    """Per-query SupCon ``[N]`` and validity (a positive) ``[N]`` of queries already divided by
    the temperature (and normalised for cosine) against ``keys``, in blocks of ``chunk``.
    float16/bfloat16 inputs are computed in float32, with autocast off."""
    params.positive_int("chunked_supcon", "chunk_size", chunk)
    dtype = compute_dtype(torch.promote_types(queries.dtype, keys.dtype))
    with autocast_off(queries.device):
        values, valid = _ChunkedSupCon.apply(queries.to(dtype), keys.to(dtype), cand, chunk)
    return values, valid


def chunked_siglip(
    queries: Tensor, keys: Tensor, bias: Tensor, cand: Candidates, chunk: int
) -> tuple[Tensor, Tensor]:
    """Per-query SigLIP ``[N]`` and validity (a pair) ``[N]`` of queries already multiplied by
    the scale (and normalised for cosine) against ``keys`` with logit ``bias`` (a scalar
    tensor, which gets a gradient when it requires one), in blocks of ``chunk``."""
    params.positive_int("chunked_siglip", "chunk_size", chunk)
    dtype = compute_dtype(torch.promote_types(queries.dtype, keys.dtype))
    with autocast_off(queries.device):
        values, valid = _ChunkedSigLIP.apply(
            queries.to(dtype), keys.to(dtype), bias.to(dtype).reshape(()), cand, chunk
        )
    return values, valid

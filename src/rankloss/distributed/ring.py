r"""Ring SigLIP: the sigmoid loss over every rank's pairs, passing key blocks around a ring.

Each rank holds its queries ``[n, d]`` and keys ``[n, d]`` (key ``i`` is the positive of query
``i``). Over :math:`W` steps each rank scores its queries against one key block and sends the
block to the next rank (``batch_isend_irecv``), so a rank holds only its own keys and one
neighbour block at a time. The backward pass runs the ring again, recomputing each block's
similarity; the gradient of a key block travels with it and is sent home at the end.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor, nn

from rankloss._core import params
from rankloss._core.reduce import Reduction
from rankloss._core.similarity import Similarity
from rankloss.distributed.gather import all_reduce_sum, check_same_layout, is_distributed
from rankloss.functional.siglip import siglip_loss, siglip_per_anchor

__all__ = ["ring_siglip_loss"]


def _shift(*tensors: Tensor) -> list[Tensor]:
    """Send ``tensors`` to rank + 1 and receive the same shapes from rank - 1."""
    world, me = dist.get_world_size(), dist.get_rank()
    out = [torch.empty_like(t) for t in tensors]
    ops = []
    for t, o in zip(tensors, out):
        ops.append(dist.P2POp(dist.isend, t.contiguous(), (me + 1) % world))
        ops.append(dist.P2POp(dist.irecv, o, (me - 1) % world))
    for req in dist.batch_isend_irecv(ops):
        req.wait()
    return out


def _block_sum(q: Tensor, k: Tensor, owner: int, me: int, scale: float, bias: float) -> Tensor:
    """``sum_a sum_j softplus(-z (scale s + bias))`` of queries against the block of ``owner``."""
    n, m = q.shape[0], k.shape[0]
    positive = torch.zeros(n, m, dtype=torch.bool, device=q.device)
    if owner == me:
        positive.fill_diagonal_(True)
    values, _ = siglip_per_anchor(q @ k.T, positive, ~positive, scale=scale, bias=bias)
    return values.sum()


class _RingSigLIP(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, q: Tensor, k: Tensor, scale: float, bias: float) -> Tensor:
        world, me = dist.get_world_size(), dist.get_rank()
        ctx.save_for_backward(q, k)
        ctx.scale, ctx.bias = scale, bias
        total = q.new_zeros(())
        block = k
        for step in range(world):
            owner = (me - step) % world
            total = total + _block_sum(q, block, owner, me, scale, bias)
            if step < world - 1:
                (block,) = _shift(block)
        return total

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, Tensor, None, None]:
        q, k = ctx.saved_tensors
        world, me = dist.get_world_size(), dist.get_rank()
        grad_q = torch.zeros_like(q)
        block, block_grad = k, torch.zeros_like(k)
        for step in range(world):
            owner = (me - step) % world
            with torch.enable_grad():
                qd = q.detach().requires_grad_(True)
                kd = block.detach().requires_grad_(True)
                value = _block_sum(qd, kd, owner, me, ctx.scale, ctx.bias)
                dq, dk = torch.autograd.grad(value * grad, (qd, kd))
            grad_q += dq
            block_grad = block_grad + dk
            if step < world - 1:
                block, block_grad = _shift(block, block_grad)
        (block_grad,) = _shift(block_grad)  # back to the owner
        return grad_q, block_grad, None, None


def ring_siglip_loss(
    queries: Tensor,
    keys: Tensor,
    *,
    scale: float = 10.0,
    bias: float = -10.0,
    similarity: Similarity = "cosine",
    reduction: Reduction = "mean",
) -> Tensor:
    r"""SigLIP over the pairs of every rank, computed by passing key blocks around a ring.

    .. math::
        L = \frac{1}{N} \sum_{a=1}^{N} \sum_{j=1}^{N}
            \operatorname{softplus}\bigl(-z_{aj}(t\,s_{aj} + b)\bigr),
        \quad z_{aj} = +1 \text{ if } j = a \text{ else } -1

    over the concatenated (rank order) queries and keys. Each rank returns
    :math:`W \cdot \frac1N \sum_{a \in r} \ell_a` (``"sum"``: :math:`W \sum_{a\in r}\ell_a`), so
    the mean over ranks is :math:`L` and the gradient at each rank's inputs is :math:`W`
    times the one-process gradient, which DDP's averaging divides back (the convention of
    :class:`~rankloss.distributed.DistributedLoss`).

    Args:
        queries: ``[n, d]`` this rank's queries (``n`` the same on every rank).
        keys: ``[n, d]`` this rank's keys; key ``i`` is the positive of query ``i``.
        scale: :math:`t > 0` (a float: learnable scales are not supported here).
        bias: :math:`b` (a float).
        similarity: ``"cosine"`` (rows normalised) or ``"dot"``.
        reduction: ``"mean"`` or ``"sum"``.

    Returns:
        A scalar. Cost per rank: :math:`O(n N d)` time, memory :math:`O(n d + n^2)` (own keys,
        one neighbour block and one ``[n, n]`` block of logits); communication :math:`W - 1`
        sends of :math:`n d` values forward, :math:`W` sends of :math:`2 n d` backward (the
        backward recomputes each block). Without a process group: :func:`siglip_loss`.

    Raises:
        ValueError: on every rank, if ranks hold different numbers of rows, widths or dtypes.

    Reference: Zhai et al., "Sigmoid Loss for Language Image Pre-Training", ICCV 2023.
    """
    where = "ring_siglip_loss"
    params.choice(where, "similarity", similarity, ("cosine", "dot"))
    params.choice(where, "reduction", reduction, ("mean", "sum"))
    if queries.shape != keys.shape or queries.dim() != 2:
        raise ValueError(
            f"{where}: queries has shape {list(queries.shape)} and keys {list(keys.shape)}; "
            "expected two [n, d] tensors"
        )
    if queries.dtype in (torch.float16, torch.bfloat16):
        queries, keys = queries.float(), keys.float()
    if similarity == "cosine":
        queries = nn.functional.normalize(queries, dim=1, eps=1e-12)
        keys = nn.functional.normalize(keys, dim=1, eps=1e-12)
    if not is_distributed():
        n = queries.shape[0]
        eye = torch.eye(n, dtype=torch.bool, device=queries.device)
        sim = queries @ keys.T
        return siglip_loss(sim, eye, ~eye, scale=scale, bias=bias, reduction=reduction)
    for name, value in (("scale", scale), ("bias", bias)):
        if isinstance(value, Tensor) and value.requires_grad:
            raise TypeError(
                f"{where}: {name} is a tensor that requires grad; the ring passes it as a "
                "number, so it would get no gradient across ranks. Pass a float, or learn "
                "it with SigLIPLoss under DistributedLoss"
            )
    rows = check_same_layout(queries, "queries", where, equal_rows=True)
    check_same_layout(keys, "keys", where, equal_rows=True)
    total: Tensor = _RingSigLIP.apply(queries, keys, float(scale), float(bias))
    world = dist.get_world_size()
    if reduction == "sum":
        return total * world
    count = all_reduce_sum(queries.new_tensor([float(queries.shape[0])]))[0]
    del rows
    # no row on any rank: 0 (connected to the inputs), as one process gives
    return total * world / count.clamp_min(1.0)

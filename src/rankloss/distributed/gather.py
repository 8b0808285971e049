r"""Gathering tensors from every rank, with and without gradients.

Rows are concatenated **in rank order**: rank 0's rows first, then rank 1's, and so on. The order
is fixed and the same on every rank, so any computation on the gathered batch is identical on
every rank. Ranks may hold different numbers of rows (their sizes are gathered first).

Without an initialised process group, or with one rank, every function returns its input.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor

__all__ = [
    "is_distributed",
    "world_size",
    "rank",
    "all_gather_tensors",
    "all_gather_with_grad",
    "all_reduce_sum",
    "check_same_layout",
]

_DTYPES = [
    torch.float16,
    torch.bfloat16,
    torch.float32,
    torch.float64,
    torch.uint8,
    torch.int8,
    torch.int16,
    torch.int32,
    torch.int64,
    torch.bool,
]


def is_distributed() -> bool:
    """Whether a process group with more than one rank is initialised."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def world_size() -> int:
    """The number of ranks (1 without a process group)."""
    return dist.get_world_size() if is_distributed() else 1


def rank() -> int:
    """This process's rank (0 without a process group)."""
    return dist.get_rank() if is_distributed() else 0


def _device(x: Tensor) -> torch.device:
    if dist.get_backend() == "nccl" and x.device.type != "cuda":
        return torch.device("cuda", torch.cuda.current_device())
    return x.device


def _gather_metadata(x: Tensor) -> list[list[int]]:
    """``[rows, dim count, dtype code, *trailing sizes (padded to 4)]`` of every rank."""
    trailing = list(x.shape[1:])[:4] + [-1] * (4 - min(4, x.dim() - 1))
    code = _DTYPES.index(x.dtype) if x.dtype in _DTYPES else -1
    local = torch.tensor([x.shape[0], x.dim(), code, *trailing], dtype=torch.long)
    local = local.to(_device(x))
    out = [torch.empty_like(local) for _ in range(dist.get_world_size())]
    dist.all_gather(out, local)
    return [t.tolist() for t in out]


def check_same_layout(x: Tensor, name: str, where: str, *, equal_rows: bool = False) -> list[int]:
    r"""Check that every rank holds ``name`` with the same trailing shape and dtype.

    One small all-gather of metadata (:math:`O(\text{world size})` integers); on a mismatch
    every rank raises the same ``ValueError``, so no rank is left waiting in a later
    collective.

    Args:
        x: ``[n_r, ...]`` this rank's tensor.
        name: its name, for the message.
        where: the caller's name, for the message.
        equal_rows: also require the same number of rows on every rank.

    Returns:
        The row counts of every rank, rank 0 first.
    """
    if not is_distributed():
        return [x.shape[0]]
    meta = _gather_metadata(x)
    rows = [m[0] for m in meta]
    first = meta[0]
    for r, m in enumerate(meta):
        if m[1] != first[1] or m[3:] != first[3:]:
            raise ValueError(
                f"{where}: {name} has {m[1]} dims and trailing sizes "
                f"{[s for s in m[3:] if s >= 0]} on rank {r} but {first[1]} dims and "
                f"{[s for s in first[3:] if s >= 0]} on rank 0 (every rank must pass the same "
                "embedding width)"
            )
        if m[2] != first[2]:
            names = {i: str(t) for i, t in enumerate(_DTYPES)}
            raise ValueError(
                f"{where}: {name} has dtype {names.get(m[2], 'other')} on rank {r} but "
                f"{names.get(first[2], 'other')} on rank 0 (every rank must pass one dtype)"
            )
    if equal_rows and len(set(rows)) > 1:
        raise ValueError(
            f"{where}: {name} has rows {rows} on ranks 0..{len(rows) - 1}; this mode needs the "
            "same number of rows on every rank (the global batch divided evenly by the world size)"
        )
    return rows


def _gather_padded(x: Tensor, rows: list[int]) -> Tensor:
    device = _device(x)
    top = max(rows)
    padded = x.new_zeros((top, *x.shape[1:]), device=device)
    padded[: x.shape[0]] = x.to(device)
    parts = [torch.empty_like(padded) for _ in rows]
    dist.all_gather(parts, padded.contiguous())
    return torch.cat([p[:n] for p, n in zip(parts, rows)]).to(x.device)


def all_gather_tensors(x: Tensor, *, rows: list[int] | None = None) -> Tensor:
    r"""Concatenate every rank's ``x [n_r, ...]`` along dim 0 in rank order, without gradient.

    .. math:: X = [x_0; x_1; \dots; x_{W-1}]

    Args:
        x: ``[n_r, ...]`` this rank's rows (``n_r`` may differ between ranks).
        rows: the row count of every rank when already known (saves one small all-gather).

    Returns:
        ``[sum_r n_r, ...]``, detached. Cost: one all-gather of :math:`\max_r n_r` rows.
    """
    if not is_distributed():
        return x.detach()
    if rows is None:
        rows = check_same_layout(x, "x", "all_gather_tensors")
    return _gather_padded(x.detach(), rows)


class _GatherWithGrad(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: Tensor, rows: list[int]) -> Tensor:
        ctx.rows = rows
        ctx.rank = dist.get_rank()
        return _gather_padded(x, rows)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None]:
        total = grad.contiguous().clone()
        device = _device(total)
        moved = total.to(device)
        dist.all_reduce(moved, op=dist.ReduceOp.SUM)
        start = sum(ctx.rows[: ctx.rank])
        return moved[start : start + ctx.rows[ctx.rank]].to(grad.device), None


def all_gather_with_grad(x: Tensor, *, rows: list[int] | None = None) -> Tensor:
    r"""Concatenate every rank's ``x [n_r, ...]`` in rank order, keeping the gradient.

    .. math:: X = [x_0; x_1; \dots; x_{W-1}], \qquad
        \frac{\partial}{\partial x_r}
        = \sum_{r'} \Bigl(\frac{\partial L_{r'}}{\partial X}\Bigr)_{\text{rows of } r}

    The backward pass sums, over ranks, the gradient that each rank's loss :math:`L_{r'}` sends
    to the rows of rank ``r`` and returns it to rank ``r`` (an all-reduce of the gradient, then
    this rank's slice). No factor is applied: if every rank computes the same loss on the
    gathered batch, each rank's gradient is ``world_size`` times the one-process gradient,
    which DDP's gradient averaging divides back (see :class:`rankloss.distributed.DistributedLoss`).

    Args:
        x: ``[n_r, ...]`` this rank's rows (``n_r`` may differ between ranks).
        rows: the row count of every rank when already known.

    Returns:
        ``[sum_r n_r, ...]``. Cost: one all-gather forward, one all-reduce of
        :math:`N \times d` backward. Without a process group: ``x`` itself.
    """
    if not is_distributed():
        return x
    if rows is None:
        rows = check_same_layout(x, "x", "all_gather_with_grad")
    out: Tensor = _GatherWithGrad.apply(x, rows)
    return out


def all_reduce_sum(x: Tensor) -> Tensor:
    """The sum of ``x`` over ranks (a new tensor, no gradient); ``x`` without a process group."""
    if not is_distributed():
        return x.detach().clone()
    out = x.detach().clone().to(_device(x))
    dist.all_reduce(out, op=dist.ReduceOp.SUM)
    return out.to(x.device)

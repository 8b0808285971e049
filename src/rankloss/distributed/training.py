"""Small ``torch.distributed`` helpers for a training loop: rank and world size, a barrier,
and collective decisions (every rank gets the same answer, so that no rank stops or raises
while the others wait in a collective).

Every helper works without an initialised process group: it then behaves as one process
(rank 0 of 1) and starts no communication.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.distributed as dist

__all__ = [
    "is_distributed",
    "get_rank",
    "get_world_size",
    "is_main_process",
    "barrier",
    "collective_device",
    "all_ranks_agree",
    "any_rank",
    "sum_over_ranks",
    "broadcast_object",
]


def is_distributed() -> bool:
    """Whether a ``torch.distributed`` process group is initialised with more than one rank."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def get_rank() -> int:
    """This process's rank in the default group (0 without one)."""
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def get_world_size() -> int:
    """The number of processes of the default group (1 without one)."""
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def is_main_process() -> bool:
    """Rank 0, the process that writes files."""
    return get_rank() == 0


def barrier() -> None:
    """Wait until every rank gets here (nothing without a process group)."""
    if is_distributed():
        dist.barrier()


def collective_device() -> torch.device:
    """Where tensors for collectives live: the current CUDA device under NCCL, else the CPU."""
    if is_distributed() and dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def sum_over_ranks(value: float) -> float:
    """The sum of ``value`` over ranks (in float64; ``value`` itself without a group). A NaN or
    inf on any rank makes the sum non-finite on every rank."""
    if not is_distributed():
        return float(value)
    tensor = torch.tensor([float(value)], dtype=torch.float64, device=collective_device())
    dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return float(tensor.item())


def all_ranks_agree(flag: bool) -> bool:
    """``True`` only when ``flag`` is true on every rank."""
    if not is_distributed():
        return bool(flag)
    tensor = torch.tensor([int(bool(flag))], device=collective_device())
    dist.all_reduce(tensor, op=dist.ReduceOp.MIN)
    return bool(tensor.item())


def any_rank(flag: bool) -> bool:
    """``True`` when ``flag`` is true on at least one rank."""
    return not all_ranks_agree(not flag)


def broadcast_object(obj: Any, src: int = 0) -> Any:
    """Rank ``src``'s ``obj`` on every rank (picklable objects; ``obj`` itself without a
    group)."""
    if not is_distributed():
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=src)
    return box[0]

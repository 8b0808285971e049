"""Training on several processes with ``torch.distributed``: gathers with gradient, losses
over every rank's batch, a cross-batch memory kept in sync (see ``docs/distributed.md``).

Every function works without an initialised process group, as one process.
"""

from rankloss.distributed.gather import (
    all_gather_tensors,
    all_gather_with_grad,
    all_reduce_sum,
    check_same_layout,
)
from rankloss.distributed.losses import DistributedLoss
from rankloss.distributed.memory import DistributedCrossBatchMemory
from rankloss.distributed.metrics import gather_embeddings, mean_per_list, sync_accumulator
from rankloss.distributed.ring import ring_siglip_loss

__all__ = [
    "all_gather_tensors",
    "all_gather_with_grad",
    "all_reduce_sum",
    "check_same_layout",
    "DistributedLoss",
    "DistributedCrossBatchMemory",
    "sync_accumulator",
    "gather_embeddings",
    "mean_per_list",
    "ring_siglip_loss",
]

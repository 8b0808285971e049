"""Cross-batch memory kept identical on every rank."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import Tensor

from rankloss.distributed.gather import all_gather_tensors, check_same_layout, is_distributed
from rankloss.mining.memory import CrossBatchMemory

__all__ = ["DistributedCrossBatchMemory"]


class DistributedCrossBatchMemory(CrossBatchMemory):
    r"""A :class:`~rankloss.mining.CrossBatchMemory` that enqueues the batch of every rank.

    :meth:`enqueue` gathers the embeddings and labels of every rank (detached, **rank order**:
    rank 0's rows first) and enqueues the concatenated batch, so after every step the queue is
    the same on every rank, and equal to a one-process memory fed the concatenated batches.
    :meth:`loss` reads the queue (the same on every rank) before enqueueing, so the queue
    serves as shared ``ref_embeddings`` of a :class:`~rankloss.distributed.DistributedLoss`
    or of a plain loss on this rank's rows.

    .. math:: Q \leftarrow \text{last}_{\text{size}}\bigl(Q \,\|\, [x_0; x_1; \dots; x_{W-1}]\bigr)

    Cost per step: one all-gather of :math:`n d` values and :math:`n` labels per rank (plus one
    of metadata); memory ``size x dim`` per rank. Without a process group it is a
    ``CrossBatchMemory``. Reference: Wang et al., "Cross-Batch Memory for Embedding
    Learning", CVPR 2020.

    Args:
        size, dim, dtype, use_labels: as for :class:`~rankloss.mining.CrossBatchMemory`.
    """

    def enqueue(self, embeddings: Tensor, labels: Tensor) -> None:
        """Gather every rank's batch in rank order and enqueue it (on every rank)."""
        if is_distributed():
            where = "DistributedCrossBatchMemory"
            if labels.shape[:1] != embeddings.shape[:1]:  # on this rank, before any collective
                raise ValueError(
                    f"{where}: labels has shape {list(labels.shape)} but embeddings has "
                    f"{embeddings.shape[0]} rows; give one label per embedding"
                )
            rows = check_same_layout(embeddings.detach(), "embeddings", where)
            embeddings = all_gather_tensors(embeddings, rows=rows)
            labels = all_gather_tensors(labels, rows=rows)
        super().enqueue(embeddings, labels)

    def loss(
        self, loss_fn: Callable[..., Tensor], embeddings: Tensor, labels: Tensor, **kwargs: Any
    ) -> Tensor:
        """``loss_fn(embeddings, labels, ref_embeddings=queue, ...)``, then enqueue every
        rank's batch (see :meth:`rankloss.mining.CrossBatchMemory.loss`)."""
        return super().loss(loss_fn, embeddings, labels, **kwargs)

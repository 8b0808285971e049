"""Cross-batch memory (Wang et al., CVPR 2020): a queue of past embeddings used as candidates."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

from rankloss._core import params
from rankloss._core.validation import shape_str

__all__ = ["CrossBatchMemory"]


class CrossBatchMemory(nn.Module):
    """A first-in-first-out queue of ``size`` past embeddings ``[size, dim]`` and their labels.

    Embeddings are stored detached; after a warm-up they drift slowly enough to serve as extra
    candidates (Wang et al., "Cross-Batch Memory for Embedding Learning", CVPR 2020). The queue
    is made of buffers, so it follows ``.to(device)`` and ``state_dict()``.

    >>> import rankloss
    >>> memory = CrossBatchMemory(size=1024, dim=64)
    >>> loss_fn = rankloss.losses.get("contrastive")
    >>> x, y = torch.randn(32, 64, requires_grad=True), torch.randint(0, 4, (32,))
    >>> loss = memory.loss(loss_fn, x, y)    # batch vs batch + queue, then enqueue
    >>> len(memory)
    32

    With ``use_labels=False`` the queue is passed without labels: every queued item is an extra
    negative (the MoCo use).
    """

    queue: Tensor
    queue_labels: Tensor
    filled: Tensor
    pointer: Tensor

    def __init__(
        self, size: int, dim: int, *, dtype: torch.dtype = torch.float32, use_labels: bool = True
    ) -> None:
        super().__init__()
        where = "CrossBatchMemory"
        self.size = params.positive_int(where, "size", size)
        self.dim = params.positive_int(where, "dim", dim)
        self.use_labels = params.boolean(where, "use_labels", use_labels)
        self.register_buffer("queue", torch.zeros(size, dim, dtype=dtype))
        self.register_buffer("queue_labels", torch.zeros(size, dtype=torch.long))
        self.register_buffer("filled", torch.zeros((), dtype=torch.long))
        self.register_buffer("pointer", torch.zeros((), dtype=torch.long))

    def __len__(self) -> int:
        return int(self.filled)

    @property
    def embeddings(self) -> Tensor:
        """The queued embeddings ``[len(self), dim]`` (storage order)."""
        return self.queue[: len(self)]

    @property
    def labels(self) -> Tensor:
        """The queued labels ``[len(self)]``."""
        return self.queue_labels[: len(self)]

    def reset(self) -> None:
        self.filled.zero_()
        self.pointer.zero_()

    @torch.no_grad()
    def enqueue(self, embeddings: Tensor, labels: Tensor) -> None:
        """Append a batch (detached), overwriting the oldest entries when full."""
        if embeddings.dim() != 2 or embeddings.shape[1] != self.dim:
            raise ValueError(
                f"CrossBatchMemory: embeddings has shape {shape_str(embeddings)}, expected "
                f"[n, {self.dim}]"
            )
        if labels.shape != embeddings.shape[:1]:
            raise ValueError(
                f"CrossBatchMemory: labels has shape {shape_str(labels)} but embeddings has "
                f"shape {shape_str(embeddings)}"
            )
        if labels.dtype.is_floating_point or labels.is_complex():
            raise ValueError(
                f"CrossBatchMemory: labels must be integer class labels, got dtype {labels.dtype}"
            )
        embeddings, labels = embeddings.detach()[-self.size :], labels[-self.size :]
        n = embeddings.shape[0]
        slots = (int(self.pointer) + torch.arange(n, device=self.queue.device)) % self.size
        self.queue[slots] = embeddings.to(self.queue)
        self.queue_labels[slots] = labels.to(self.queue_labels)
        self.pointer.fill_((int(self.pointer) + n) % self.size)
        self.filled.fill_(min(self.size, int(self.filled) + n))

    def loss(
        self, loss_fn: Callable[..., Tensor], embeddings: Tensor, labels: Tensor, **kwargs: Any
    ) -> Tensor:
        """``loss_fn(embeddings, labels, ref_embeddings=queue, ref_labels=...)``, then enqueue.

        ``loss_fn`` is an embedding-loss module of :mod:`rankloss.losses` (or any callable
        with that call form); ``kwargs`` (``weights``, ``generator``, ...) are passed on. The
        queue is read before the batch is added, so a batch never meets its own copy.
        """
        if len(self):
            kwargs["ref_embeddings"] = self.embeddings
            if self.use_labels:
                kwargs["ref_labels"] = self.labels
        value = loss_fn(embeddings, labels, **kwargs)
        self.enqueue(embeddings, labels)
        return value

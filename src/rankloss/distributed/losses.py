r"""Losses over the batch of every rank: :class:`DistributedLoss`.

Under ``DistributedDataParallel`` each rank holds ``n_r`` rows of a global batch of
:math:`N = \sum_r n_r` rows, and DDP **averages** parameter gradients over the :math:`W` ranks.
:class:`DistributedLoss` makes that average equal the gradient of one process on the
concatenated batch (rank 0's rows first):

* every rank returns a value :math:`v_r` with :math:`\frac1W \sum_r v_r = L` (the one-process
  loss), and
* the gradient at rank ``r``'s embeddings is :math:`W \, \partial L / \partial x_r`, so DDP's
  division by :math:`W` gives the one-process parameter gradient.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator
from typing import Any, Literal

import torch
from torch import Tensor, nn

import rankloss._core.reduce as _reduce_module
from rankloss._core import params
from rankloss._core.candidates import build_candidates
from rankloss.distributed.gather import (
    all_gather_with_grad,
    all_reduce_sum,
    check_same_layout,
    is_distributed,
    rank,
    world_size,
)
from rankloss.losses.base import LOSSES, EmbeddingLoss, ListLoss, Loss
from rankloss.losses.embedding import InfoNCELoss, NTXentLoss, SimilarityLoss

__all__ = ["DistributedLoss", "MODES"]

Mode = Literal["global", "local"]
MODES = ("global", "local")


@contextlib.contextmanager
def _record_denominators() -> Iterator[list[Tensor]]:
    """Record ``sum(valid * weights)`` of every reduction run inside the block that reduces
    (``"sum"`` or ``"mean"``; an inner ``"none"``, e.g. per sample, has no denominator), and
    the counts that streaming paths report (:func:`rankloss._core.reduce.note_denominator`)."""
    seen: list[Tensor] = []
    original, original_note = _reduce_module._reduce, _reduce_module.note_denominator

    def recording(
        values: Tensor, valid: Tensor | None, weights: Tensor | None, reduction: str
    ) -> Tensor:
        if reduction != "none":
            # valid=None: every entry counts (an unpadded batch)
            scale = torch.ones_like(values) if valid is None else valid.to(values.dtype)
            if weights is not None:
                scale = scale * weights.to(values.dtype)
            seen.append(scale.sum().detach())
        return original(values, valid, weights, reduction)

    def noting(count: Tensor) -> None:
        seen.append(count.detach())

    _reduce_module._reduce = recording
    _reduce_module.note_denominator = noting
    try:
        yield seen
    finally:
        _reduce_module._reduce = original
        _reduce_module.note_denominator = original_note


@contextlib.contextmanager
def _reduction(loss: Loss, reduction: str) -> Iterator[None]:
    saved = loss.reduction
    loss.reduction = reduction  # type: ignore[assignment]
    try:
        yield
    finally:
        loss.reduction = saved


def _gather_optional(x: Tensor | None, name: str, where: str, rows: list[int]) -> Tensor | None:
    if x is None:
        return None
    check_same_layout(x, name, where)
    return all_gather_with_grad(x, rows=rows)


def _check_rows(where: str, embeddings: Tensor, **others: Tensor | None) -> None:
    """Refuse, on this rank and before any collective, a per-row input whose row count is not
    the embeddings' (gathered, it would be cut or padded with zeros silently)."""
    n = embeddings.shape[0] if embeddings.dim() > 0 else None
    for name, x in others.items():
        if isinstance(x, Tensor) and x.dim() > 0 and x.shape[0] != n:
            raise ValueError(
                f"{where}: {name} has {x.shape[0]} rows but embeddings has {n} (shape "
                f"{list(x.shape)}, rank {rank()}); give one per embedding"
            )


def _local_first(x: Tensor | None, start: int, stop: int) -> Tensor | None:
    """The gathered rows with this rank's block ``[start, stop)`` moved to the front."""
    if x is None:
        return None
    return torch.cat([x[start:stop], x[:start], x[stop:]])


class DistributedLoss(nn.Module):
    r"""A rankloss loss computed over the batch of every rank, with one-process gradients.

    **Embedding losses** (:class:`~rankloss.losses.EmbeddingLoss`), ``mode="global"``: the
    embeddings, labels, keys, hard negatives and per-anchor weights of every rank are gathered
    (:func:`~rankloss.distributed.all_gather_with_grad`, rank order) and every rank computes
    the one-process loss :math:`L` on the concatenated batch and returns it. Memory per rank:
    :math:`O(N d + N^2)` (the full similarity matrix).

    ``mode="local"``: this rank's rows are the anchors (queries) and the rows of every rank
    (its own first) the candidates; memory :math:`O(N d + n N)`. With reduction ``"mean"``
    each rank returns

    .. math::
        v_r = W \, \frac{\sum_{a \in r} w_a \ell_a}
                        {\sum_{r'} \sum_{a \in r'} w_a [a \text{ valid}]}

    (the denominator: valid-anchor counts, weighted, summed over ranks by one all-reduce), with
    ``"sum"`` :math:`v_r = W \sum_{a \in r} w_a \ell_a`, so :math:`\frac1W\sum_r v_r = L`. The
    per-anchor terms :math:`\ell_a` depend on the anchor and the candidates only, so they equal
    the one-process terms, except for a miner that mines across the whole batch (not per
    anchor) and the view layout of ``nt_xent`` (refused), the ``symmetric`` InfoNCE
    (refused: its second direction needs all queries) and the losses registered with
    ``anchor_local=False`` such as ``dclw`` (refused: an anchor's value depends on the others).

    In both modes :math:`\frac1W\sum_r v_r = L` and the gradient at rank ``r``'s inputs is
    :math:`W \, \partial L / \partial x_r` (all-gather backward sums the gradient over ranks),
    which DDP's averaging turns into the one-process gradient. Log ``v_r / W`` summed over
    ranks, or the global-mode value, as the loss of the step.

    **List losses** (:class:`~rankloss.losses.ListLoss`), lists sharded by rank (``mode`` is
    ignored: lists are independent): :math:`v_r = W \sum_{b \in r} w_b \ell_b / \sum_{r'} C_{r'}`
    with ``C`` the weighted count of valid lists (``"mean"``), or :math:`W \sum_{b\in r} w_b\ell_b`
    (``"sum"``). One all-reduce of a scalar.

    Without a process group (or one rank) the wrapped loss is called unchanged. ``indices`` are
    refused (they index one rank's rows); ``ref_embeddings`` are passed unchanged and must be
    the same on every rank (e.g. a :class:`~rankloss.distributed.DistributedCrossBatchMemory`).
    ``reduction="none"`` is refused.

    Args:
        loss: an embedding loss of :mod:`rankloss.losses` (a ``SimilarityLoss``: every
            registered embedding loss) or a list loss.
        mode: ``"global"`` or ``"local"``.

    Raises:
        ValueError: on every rank, when ranks pass different embedding widths or dtypes.

    Reference: the gather-with-gradient pattern of CLIP training (Radford et al., 2021);
    local loss as in Zhai et al., "Sigmoid Loss for Language Image Pre-Training", ICCV 2023.
    """

    def __init__(self, loss: Loss, *, mode: Mode = "global") -> None:
        super().__init__()
        where = "DistributedLoss"
        if not isinstance(loss, (SimilarityLoss, ListLoss)):
            raise TypeError(
                f"{where}: loss must be an embedding loss (SimilarityLoss) or a ListLoss of "
                f"rankloss.losses, got {type(loss).__name__}"
            )
        self.mode: Mode = params.choice(where, "mode", mode, MODES)
        if loss.reduction == "none":
            raise ValueError(f"{where}: reduction must be 'mean' or 'sum', got 'none'")
        if mode == "local" and isinstance(loss, NTXentLoss):
            raise ValueError(
                f"{where}: mode='local' does not support NTXentLoss (its views are laid out "
                "across the whole batch); use mode='global'"
            )
        name = getattr(loss, "registered_name", None)
        if mode == "local" and isinstance(name, str) and name in LOSSES:
            anchor_local = LOSSES.entry(name).meta["info"].anchor_local
        else:
            anchor_local = True
        if not anchor_local:
            raise ValueError(
                f"{where}: mode='local' does not support {type(loss).__name__} (each anchor's "
                "value depends on the other anchors of the batch); use mode='global'"
            )
        if mode == "local" and isinstance(loss, InfoNCELoss) and loss.symmetric:
            raise ValueError(
                f"{where}: mode='local' does not support InfoNCELoss(symmetric=True); use "
                "mode='global'"
            )
        self.loss = loss
        # Called as the wrapped loss is: tasks pick the call form from these.
        self.kind = loss.kind
        self.takes_keys = getattr(loss, "takes_keys", True)

    def forward(self, *args: Any, **kwargs: Any) -> Tensor:
        if isinstance(self.loss, ListLoss):
            return self._list(*args, **kwargs)
        return self._embedding(*args, **kwargs)

    # ---------------------------------------------------------------------------- list losses
    def _list(
        self,
        scores: Tensor,
        labels: Tensor,
        mask: Tensor | None = None,
        *,
        weights: Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        # A loss that draws at random (ListMLE's ties, XE-NDCG, Gumbel) takes a generator.
        extra = {} if generator is None else {"generator": generator}
        if not is_distributed():
            return self.loss(scores, labels, mask, weights=weights, **extra)
        # Lists are independent, so ranks may pad to different lengths; only the dtype of the
        # count that is all-reduced must agree (checked on every rank, without the lengths).
        check_same_layout(scores.new_zeros(0, 1), "scores", "DistributedLoss")
        with _reduction(self.loss, "sum"), _record_denominators() as seen:
            total = self.loss(scores, labels, mask, weights=weights, **extra)
        return self._scale(total, seen)

    def _scale(self, total: Tensor, seen: list[Tensor]) -> Tensor:
        w = world_size()
        if self.loss.reduction == "sum":
            return total * w
        if len(seen) != 1:
            raise RuntimeError(
                f"DistributedLoss: expected one reduction inside {type(self.loss).__name__}, "
                f"saw {len(seen)}; its valid-anchor count is unknown, use mode='global'"
            )
        count = seen[0]
        count = all_reduce_sum(count.to(total.dtype).reshape(1))[0]
        return total * w / torch.where(count != 0, count, torch.ones_like(count))

    # ----------------------------------------------------------------------- embedding losses
    def _embedding(
        self,
        embeddings: Tensor,
        labels: Tensor | None = None,
        *,
        keys: Tensor | None = None,
        ref_embeddings: Tensor | None = None,
        ref_labels: Tensor | None = None,
        hard_negatives: Tensor | None = None,
        indices: object = None,
        weights: Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        where = "DistributedLoss"
        loss = self.loss
        assert isinstance(loss, EmbeddingLoss)
        if indices is not None:
            raise TypeError(f"{where}: indices are not supported (they index one rank's rows)")
        if not is_distributed():
            return loss(
                embeddings,
                labels,
                keys=keys,
                ref_embeddings=ref_embeddings,
                ref_labels=ref_labels,
                hard_negatives=hard_negatives,
                weights=weights,
                generator=generator,
            )
        _check_rows(
            where,
            embeddings,
            labels=labels,
            keys=keys,
            hard_negatives=hard_negatives,
            weights=weights,
        )
        rows = check_same_layout(embeddings, "embeddings", where)
        all_x = all_gather_with_grad(embeddings, rows=rows)
        all_keys = _gather_optional(keys, "keys", where, rows)
        all_hn = _gather_optional(hard_negatives, "hard_negatives", where, rows)
        all_labels = _gather_optional(labels, "labels", where, rows)
        if labels is None and keys is None:
            raise ValueError(f"{where}: labels [N] are required, or keys=[N, d]")
        if self.mode == "global":
            all_w = _gather_optional(weights, "weights", where, rows)
            return loss(
                all_x,
                all_labels,
                keys=all_keys,
                ref_embeddings=ref_embeddings,
                ref_labels=ref_labels,
                hard_negatives=all_hn,
                weights=all_w,
                generator=generator,
            )
        assert isinstance(loss, SimilarityLoss)
        start = sum(rows[: rank()])
        stop = start + rows[rank()]
        n = stop - start
        if all_keys is None and all_labels is None:
            raise ValueError(f"{where}: labels are required without keys")
        x_first = _local_first(all_x, start, stop)
        assert x_first is not None
        if all_keys is not None and all_labels is None:
            # In-batch pairs: global pair ids, so key i of every rank is its query's positive.
            all_labels = torch.arange(sum(rows), device=embeddings.device)
        candidates = build_candidates(
            x_first,
            _local_first(all_labels, start, stop),
            keys=_local_first(all_keys, start, stop),
            ref_embeddings=ref_embeddings,
            ref_labels=ref_labels,
            hard_negatives=_local_first(all_hn, start, stop),
            false_negatives=loss._false_negatives(),
            where=type(loss).__name__,
        )
        if keys is not None and labels is None:
            # Other ranks' keys are plain negatives (their ids differ): say so for the fast path.
            forced = candidates.forced_negative.clone()
            forced[n : sum(rows)] = True
            candidates = dataclasses.replace(candidates, forced_negative=forced)
        candidates = dataclasses.replace(
            candidates,
            queries=candidates.queries[:n],
            query_labels=candidates.query_labels[:n],
        )
        with _reduction(loss, "sum"), _record_denominators() as seen:
            total = loss._loss(candidates, indices=None, weights=weights, generator=generator)
        return self._scale(total, seen)

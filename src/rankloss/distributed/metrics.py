"""Evaluation on several ranks that reports the numbers of one process.

Each rank evaluates its own share of a split; these functions gather what the metrics need
(per-list values, or embeddings and labels for retrieval over a gallery) onto every rank, in
rank order, so that every rank returns the same, single-process numbers. Shares may be of
different sizes. Without an initialised process group (or with one rank) every function is
the single-process computation.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor

from rankloss import metrics
from rankloss.distributed.gather import all_gather_tensors
from rankloss.distributed.training import is_distributed
from rankloss.metrics import MetricAccumulator

__all__ = [
    "sync_accumulator",
    "gather_rows",
    "gather_embeddings",
    "embedding_retrieval_metrics",
    "mean_per_list",
    "shard_range",
]


def shard_range(n: int, rank: int, world_size: int) -> tuple[int, int]:
    """The rows ``[start, stop)`` of ``n`` that rank ``rank`` of ``world_size`` evaluates:
    consecutive blocks whose sizes differ by at most one, in rank order (so that gathering
    them in rank order restores ``0..n-1``).

    >>> [shard_range(5, r, 2) for r in range(2)]
    [(0, 3), (3, 5)]
    """
    if world_size < 1 or not 0 <= rank < world_size:
        raise ValueError(
            f"shard_range: need 0 <= rank < world_size, got rank={rank}, world_size={world_size}"
        )
    share, extra = divmod(n, world_size)
    start = rank * share + min(rank, extra)
    return start, start + share + (rank < extra)


def sync_accumulator(accumulator: MetricAccumulator) -> MetricAccumulator:
    """A new :class:`~rankloss.metrics.MetricAccumulator` holding every rank's lists.

    Every rank's state (sums, counts and, with ``keep_per_list``, per-list values; any number
    of lists per rank) is gathered with ``all_gather_object`` and merged in rank order, so
    :meth:`~rankloss.metrics.MetricAccumulator.compute` gives on every rank the means of one
    process that saw all the lists (equal up to float64 rounding of the sums), and
    ``per_list()`` lists rank 0's lists, then rank 1's, ... The argument is left unchanged.

    Cost: one ``all_gather_object`` of ``O(lists)`` floats per rank (``O(metrics)`` without
    ``keep_per_list``). Call it on every rank.
    """
    merged = copy.copy(accumulator)
    merged.reset()
    if not is_distributed():
        return merged.merge(accumulator)
    states: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(states, accumulator.state_dict())
    for state in states:
        merged.merge_state_dict(state)
    return merged


def gather_rows(tensor: Tensor) -> Tensor:
    """Every rank's ``tensor`` ``[n_r, ...]`` concatenated in rank order, ``[sum n_r, ...]``,
    on every rank (the trailing shape and dtype must agree; ``n_r`` may differ).

    No gradient flows back (use :func:`rankloss.distributed.all_gather_with_grad` for a loss).
    Cost: :func:`rankloss.distributed.all_gather_tensors` (``max n_r`` rows per rank).
    """
    return all_gather_tensors(tensor)


def gather_embeddings(embeddings: Tensor, labels: Tensor) -> tuple[Tensor, Tensor]:
    """Every rank's ``embeddings [n_r, d]`` and ``labels [n_r]``, concatenated in rank order
    (see :func:`gather_rows`)."""
    return gather_rows(embeddings), gather_rows(labels)


def embedding_retrieval_metrics(
    query_embeddings: Tensor,
    query_labels: Tensor,
    ref_embeddings: Tensor | None = None,
    ref_labels: Tensor | None = None,
    **options: Any,
) -> dict[str, float]:
    """:func:`rankloss.metrics.embedding_retrieval_metrics` over the union of every rank's
    queries and gallery: each rank passes its share (``[n_r, d]`` embeddings, ``[n_r]``
    labels), the shares are gathered in rank order and every rank computes the metrics of the
    whole set (Recall@K as ``hit@K``, MAP@R over the full gallery, ...), so the numbers are
    those of one process given everything (queries rank over every rank's gallery, not only
    their own).

    Args:
        query_embeddings, query_labels: this rank's queries, ``[n_r, d]`` and ``[n_r]``.
        ref_embeddings, ref_labels: this rank's share of the gallery (``None``: leave-one-out
            over the queries).
        **options: passed on (``ks``, ``similarity``, ``chunk_size``, ``exclude_self``).

    Returns:
        The same dict on every rank. Cost: the gathers plus the single-process computation,
        done on every rank.
    """
    queries, query_y = gather_embeddings(query_embeddings, query_labels)
    if ref_embeddings is None or ref_labels is None:
        return metrics.embedding_retrieval_metrics(queries, query_y, **options)
    refs, ref_y = gather_embeddings(ref_embeddings, ref_labels)
    return metrics.embedding_retrieval_metrics(queries, query_y, refs, ref_y, **options)


def mean_per_list(values: Mapping[str, Tensor]) -> dict[str, float]:
    r"""The mean over every rank's lists of each metric, NaN lists left out:

    .. math:: \bar v = \frac{1}{|\{i : v_i \ne \mathrm{NaN}\}|} \sum_{i : v_i \ne \mathrm{NaN}} v_i

    Args:
        values: ``{name: [n_r]}`` this rank's per-list values (shares may differ in size).

    Returns:
        ``{name: mean}`` (NaN when no list counts), the same on every rank; computed in
        float32 over the lists in rank order, as one process computes the mean of the whole
        ``[n]`` tensor. Cost: one gather per metric.
    """
    out = {}
    for name, local in values.items():
        every = gather_rows(local.reshape(-1).float())
        keep = ~torch.isnan(every)
        out[name] = float(every[keep].mean()) if bool(keep.any()) else math.nan
    return out

r"""Label-based pair and triplet losses over row blocks of anchors, in bounded memory.

The direct path of :func:`~rankloss.functional.contrastive_loss`,
:func:`~rankloss.functional.multi_similarity_loss` and :func:`~rankloss.functional.triplet_loss`
holds ``[N, M]`` similarity and mask matrices (4.3 GB each in float32 at ``N = M = 32768``).
Every one of these losses is a sum of **per-anchor** values, so the anchors can be taken in row
blocks of ``c``: block :math:`[r_0, r_1)` needs only its ``[c, M]`` similarities
(``queries[r0:r1] @ keys.T``) and label masks. Each block runs under
:func:`torch.utils.checkpoint.checkpoint` (non-reentrant): the forward keeps only the block's
inputs (views of ``queries`` and ``keys``) and its ``[c]`` values, and the backward recomputes
the block, so the gradients are those of the direct path and peak memory is
:math:`O((N + M) d + c M)`.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor
from torch.utils.checkpoint import checkpoint

from rankloss._core.candidates import Candidates

__all__ = ["block_masks", "streaming_per_anchor", "default_rows"]

#: Row blocks hold at most this many similarities (64 MiB in float32) unless a chunk size is given.
BLOCK_ELEMENTS = 1 << 24

PerAnchor = Callable[[Tensor, Tensor, Tensor], tuple[Tensor, Tensor]]


def default_rows(num_keys: int) -> int:
    """Anchors per block so that one ``[c, M]`` block holds about :data:`BLOCK_ELEMENTS`."""
    return max(1, BLOCK_ELEMENTS // max(num_keys, 1))


def block_masks(candidates: Candidates, start: int, stop: int) -> tuple[Tensor, Tensor]:
    """``(positive, negative)`` bool masks of anchor rows ``start:stop``: ``[stop - start, M]``.

    The same pairs as rows ``start:stop`` of :meth:`Candidates.masks`: equal labels are
    positive, the rest negative, forced negatives override, and the anchor itself is neither
    (or, in the pair form, the only positive).
    """
    query_labels = candidates.query_labels[start:stop]
    positive = query_labels.unsqueeze(1) == candidates.key_labels.unsqueeze(0)
    negative = ~positive
    forced = torch.nonzero(candidates.forced_negative)[:, 0]
    if forced.numel():
        negative[:, forced] = True
        positive[:, forced] = False
    if candidates.diagonal_only:
        positive = torch.zeros_like(positive)
    high = min(stop, candidates.num_keys)
    if (candidates.exclude_self or candidates.diagonal_only) and start < high:
        rows = torch.arange(start, high, device=positive.device)
        positive[rows - start, rows] = candidates.diagonal_only
    return positive, negative


def streaming_per_anchor(
    candidates: Candidates,
    queries: Tensor,
    keys: Tensor,
    per_anchor: PerAnchor,
    chunk_size: int | None = None,
) -> tuple[Tensor, Tensor]:
    """``per_anchor`` over row blocks of ``queries @ keys.T``, recomputed in the backward.

    Args:
        candidates: the labels and pair rules (:class:`~rankloss._core.candidates.Candidates`).
        queries: ``[N, d]`` anchors (already normalised for cosine).
        keys: ``[M, d]`` candidates (likewise).
        per_anchor: ``(similarity [c, M], positive, negative) -> (values [c], valid [c])``; it
            must sanitise the entries that are no pair itself.
        chunk_size: anchors per block (default: :func:`default_rows`).

    Returns:
        ``(values [N], valid [N])``, equal to ``per_anchor`` on the whole matrix.

    Cost: the direct path's time plus one recomputation of each block in the backward;
    memory :math:`O((N + M) d + c M)`. With the default block size, anchors that all fit in one
    block (``N M`` within :data:`BLOCK_ELEMENTS`) are one block that is not recomputed: the
    direct path's time, and memory bounded by a few blocks.
    """
    n = queries.shape[0]
    rows = chunk_size or default_rows(keys.shape[0])
    values: list[Tensor] = []
    valid: list[Tensor] = []

    for start in range(0, n, rows):
        stop = min(n, start + rows)

        def block(q: Tensor, k: Tensor, start: int = start, stop: int = stop) -> tuple[Tensor, ...]:
            positive, negative = block_masks(candidates, start, stop)
            return per_anchor(q @ k.T, positive, negative)

        # One default-sized block is within the memory budget as it is: recomputing it in the
        # backward would save nothing worth its time, so it runs as the direct path does.
        single = chunk_size is None and rows >= n
        if not single and torch.is_grad_enabled() and (queries.requires_grad or keys.requires_grad):
            out = checkpoint(block, queries[start:stop], keys, use_reentrant=False)
        else:
            out = block(queries[start:stop], keys)
        values.append(out[0])
        valid.append(out[1])
    if not values:
        empty = queries.new_zeros(0) + 0.0 * (queries.sum() + keys.sum())
        return empty, torch.zeros(0, dtype=torch.bool, device=queries.device)
    return torch.cat(values), torch.cat(valid)

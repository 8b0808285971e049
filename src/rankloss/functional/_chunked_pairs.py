r"""Label-based pair and triplet losses over row blocks of anchors, in bounded memory.

The direct path of :func:`~rankloss.functional.contrastive_loss`,
:func:`~rankloss.functional.multi_similarity_loss` and :func:`~rankloss.functional.triplet_loss`
holds ``[N, M]`` similarity and mask matrices (4.3 GB each in float32 at ``N = M = 32768``).
Every one of these losses is a sum of **per-anchor** values, so the anchors can be taken in row
blocks of ``c``: block :math:`[r_0, r_1)` needs only its ``[c, M]`` similarities
(``queries[r0:r1] @ keys.T``) and label masks. Two forms:

* :func:`streaming_reduced` (a ``"sum"`` or ``"mean"`` reduction): the loss is
  :math:`L = \sum_a u_a \ell_a` with coefficients :math:`u_a` known before the backward
  (the weights, over the weighted count of valid anchors for the mean). Each block computes its
  values and, in closed form, :math:`G = \partial \ell / \partial S` on its ``[c, M]``
  similarities; the forward accumulates :math:`\partial L / \partial Q = (u \odot G) K` and
  :math:`\partial L / \partial K = (u \odot G)^\top Q` and the backward only scales them. Three
  matrix products per block, as the direct path's forward and backward; no recomputation.
* :func:`streaming_per_anchor` (any reduction, ``"none"`` included): each block runs under
  :func:`torch.utils.checkpoint.checkpoint` (non-reentrant) and is recomputed in the backward.

Both give the gradients of the direct path; peak memory is :math:`O((N + M) d + c M)`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor
from torch.utils.checkpoint import checkpoint

from rankloss._core.candidates import Candidates
from rankloss.functional._chunked import WrittenOut, written_out

__all__ = ["block_masks", "streaming_per_anchor", "streaming_reduced", "default_rows"]

#: Row blocks hold at most this many similarities (64 MiB in float32) unless a chunk size is given.
BLOCK_ELEMENTS = 1 << 24

PerAnchor = Callable[[Tensor, Tensor, Tensor], tuple[Tensor, Tensor]]

#: ``(similarity [c, M], positive, negative) -> (values [c], valid [c], d values / d similarity
#: [c, M])``: the gradient of row ``a`` of the result is the gradient of ``values[a]`` alone (0
#: outside the pairs and on anchors that are not valid).
PerAnchorGrad = Callable[[Tensor, Tensor, Tensor], tuple[Tensor, Tensor, Tensor]]


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


class _ReducedBlocks(WrittenOut):
    r""":math:`\sum_a u_a \ell_a` over row blocks with the gradients accumulated in the forward."""

    @staticmethod
    def forward(
        ctx: Any,
        queries: Tensor,
        keys: Tensor,
        coefficients: Tensor | None,
        candidates: Candidates,
        per_anchor: PerAnchorGrad,
        rows: int,
        mean: bool,
    ) -> Tensor:
        want_q, want_k = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        n = queries.shape[0]
        total = queries.new_zeros(())
        count = queries.new_zeros(())
        grad_q = queries.new_zeros(queries.shape) if want_q else None
        grad_k = keys.new_zeros(keys.shape) if want_k else None
        for start in range(0, n, rows):
            stop = min(n, start + rows)
            q = queries[start:stop]
            positive, negative = block_masks(candidates, start, stop)
            values, valid, grad = per_anchor(q @ keys.T, positive, negative)
            scale = valid.to(values.dtype)
            if coefficients is not None:
                scale = scale * coefficients[start:stop].to(values.dtype)
                grad = grad * coefficients[start:stop].to(grad.dtype).unsqueeze(1)
            total = total + torch.where(valid, values, values.new_zeros(())).mul(scale).sum()
            count = count + scale.sum()
            if grad_q is not None:
                grad_q[start:stop] = grad @ keys
            if grad_k is not None:
                grad_k.addmm_(grad.T, q)
        return written_out(ctx, total, count, (grad_q, grad_k), mean, others=5)


def streaming_reduced(
    candidates: Candidates,
    queries: Tensor,
    keys: Tensor,
    per_anchor: PerAnchorGrad,
    coefficients: Tensor | None,
    mean: bool,
    chunk_size: int | None = None,
) -> Tensor:
    r""":math:`\sum_a u_a \ell_a` (over valid anchors; divided by :math:`\sum_a u_a` over
    them when ``mean``) from row blocks, with closed-form block gradients.

    Args:
        candidates: the labels and pair rules (:class:`~rankloss._core.candidates.Candidates`).
        queries: ``[N, d]`` anchors (already normalised for cosine).
        keys: ``[M, d]`` candidates (likewise).
        per_anchor: values, validity and their gradient per block (:data:`PerAnchorGrad`).
        coefficients: ``[N]`` per-anchor weights :math:`u_a` (no gradient taken), or ``None``.
        mean: divide by the (weighted) number of valid anchors; ``False`` is the sum.
        chunk_size: anchors per block (default: :func:`default_rows`).

    Returns:
        A scalar: ``reduce_values(values, valid, coefficients, "mean" | "sum")`` of the direct
        path, with the same gradients for ``queries`` and ``keys``.

    Cost: the direct path's three matrix products and its elementwise work; memory
    :math:`O((N + M) d + c M)` (the two gradients are kept from the forward). The result is
    differentiable once (no second derivative).
    """
    rows = chunk_size or default_rows(keys.shape[0])
    if not torch.is_grad_enabled():  # the forward would still build the gradients otherwise
        queries, keys = queries.detach(), keys.detach()
    out: Tensor = _ReducedBlocks.apply(
        queries, keys, coefficients, candidates, per_anchor, rows, mean
    )
    return out

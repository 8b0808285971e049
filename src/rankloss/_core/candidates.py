"""The two input forms of the embedding losses, turned into one description of candidates.

``(embeddings, labels)``: every other row of the batch is a candidate; equal labels make a
positive pair. ``(queries, keys=keys)``: key ``i`` is the positive of query ``i`` and every
other key is an in-batch negative; the form is chosen by the ``keys`` keyword, never by a
tensor's dtype. In both forms ``ref_embeddings`` (with ``ref_labels``: labelled
candidates; without: extra negatives) and ``hard_negatives`` (always negatives) are appended
to the candidates. Masks are built per block of candidate columns, so that a chunked loss never
holds an ``[N, M]`` mask.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from rankloss._core.validation import check_choice, check_embeddings, shape_str

__all__ = ["Candidates", "build_candidates", "FALSE_NEGATIVES"]

FALSE_NEGATIVES = ("mask", "positive")


@dataclass(frozen=True)
class Candidates:
    """Queries (anchors) ``[N, d]`` against candidates ``[M, d]``, with what makes a pair.

    A candidate ``j`` is a positive of query ``i`` when their labels match and ``j`` is not
    ``forced_negative``; with ``exclude_self`` column ``i`` (the query itself) is never a pair;
    with ``diagonal_only`` the only positive is column ``i`` and other same-label candidates are
    neither positive nor negative (masked false negatives).

    ``in_batch`` is a promise made by :func:`build_candidates` for the ``(queries, keys)`` form
    without labels: query ``i``'s labels are ``arange(N)``, its only positive is column ``i``
    and every other column is a negative, so :meth:`masks` builds the masks without comparing
    labels. Left ``False`` (the default), nothing is assumed.
    """

    queries: Tensor
    keys: Tensor
    query_labels: Tensor
    key_labels: Tensor
    forced_negative: Tensor
    exclude_self: bool
    diagonal_only: bool
    pair_form: bool
    in_batch: bool = False

    @property
    def num_queries(self) -> int:
        return self.queries.shape[0]

    @property
    def num_keys(self) -> int:
        return self.keys.shape[0]

    def masks(self, start: int = 0, stop: int | None = None) -> tuple[Tensor, Tensor]:
        """``(positive, negative)`` bool masks of columns ``start:stop``: ``[N, stop - start]``.

        Built with one ``[N, stop - start]`` comparison (none for ``in_batch``); forced
        negatives and the diagonal are patched in place, so a block costs little beyond its
        logits.
        """
        stop = self.num_keys if stop is None else min(stop, self.num_keys)
        # Column j of the block is candidate start + j: entry (i, i - start) is the query
        # itself, on the block's diagonal of offset -start.
        if self.in_batch:
            positive = torch.zeros(
                (self.num_queries, max(stop - start, 0)),
                dtype=torch.bool,
                device=self.key_labels.device,
            )
            positive.diagonal(-start).fill_(True)
            return positive, ~positive
        positive = self.query_labels.unsqueeze(1) == self.key_labels[start:stop].unsqueeze(0)
        negative = ~positive
        forced = torch.nonzero(self.forced_negative[start:stop])[:, 0]
        if forced.numel():
            negative[:, forced] = True
            positive[:, forced] = False
        if self.diagonal_only:
            positive = torch.zeros_like(positive)
        if self.exclude_self or self.diagonal_only:
            positive.diagonal(-start).fill_(self.diagonal_only)
        return positive, negative


def _check_int_labels(labels: object, name: str, n: int, where: str) -> Tensor:
    if not isinstance(labels, Tensor):
        raise ValueError(f"{where}: {name} must be a torch.Tensor, got {type(labels).__name__}")
    if labels.dim() != 1 or labels.shape[0] != n:
        raise ValueError(f"{where}: {name} has shape {shape_str(labels)} but expected [{n}]")
    if labels.dtype.is_floating_point or labels.is_complex():
        raise ValueError(f"{where}: {name} must be integer class labels, got dtype {labels.dtype}")
    return labels.long()


def build_candidates(
    embeddings: Tensor,
    labels: Tensor | None = None,
    *,
    keys: Tensor | None = None,
    ref_embeddings: Tensor | None = None,
    ref_labels: Tensor | None = None,
    hard_negatives: Tensor | None = None,
    false_negatives: str = "mask",
    where: str = "build_candidates",
) -> Candidates:
    """Validate either input form and describe its candidates (see the module docstring).

    Args:
        embeddings: ``[N, d]`` the anchors (queries).
        labels: ``[N]`` integer class labels. Required without ``keys``; with ``keys`` optional
            (a class per pair, so that other pairs of the class are not negatives).
        keys: ``[N, d]`` or ``None``: with keys, key ``i`` is the positive of query ``i``.
        ref_embeddings: ``[M, d]`` extra candidates (a memory, a gallery).
        ref_labels: ``[M]`` their labels; without, references are negatives of every anchor.
        hard_negatives: ``[N, d]`` or ``[N, h, d]`` extra negatives of every anchor.
        false_negatives: ``(queries, keys=..)`` form with ``labels``: keys of a query's class
            other than its own are ``"mask"`` (neither positive nor negative) or
            ``"positive"``.
        where: the caller's name, for error messages.

    Returns:
        :class:`Candidates`, queries ``[N, d]`` against keys ``[M', d]``. Cost: :math:`O(M'd)`.
    """
    check_choice("false_negatives", false_negatives, FALSE_NEGATIVES, where)
    queries = check_embeddings(embeddings, "embeddings", where)
    n, d = queries.shape
    device = queries.device
    pair_form = keys is not None
    parts_keys: list[Tensor] = []
    parts_labels: list[Tensor] = []
    parts_forced: list[Tensor] = []
    if labels is not None and isinstance(labels, Tensor) and labels.dtype.is_floating_point:
        hint = " (to pass keys paired by row, use keys=...)" if labels.dim() == 2 else ""
        raise ValueError(
            f"{where}: labels must be integer class labels [N], got dtype {labels.dtype} and "
            f"shape {shape_str(labels)}{hint}"
        )
    if keys is not None:
        key_rows = check_embeddings(keys, "keys", where)
        if key_rows.shape != queries.shape:
            raise ValueError(
                f"{where}: keys has shape {shape_str(key_rows)} but embeddings (queries) has "
                f"shape {shape_str(queries)}; in the (queries, keys) form row i of each is a pair"
            )
        if labels is None:
            query_labels = torch.arange(n, device=device)
            diagonal_only = False
        else:
            query_labels = _check_int_labels(labels, "labels", n, where).to(device)
            diagonal_only = false_negatives == "mask"
        parts_keys.append(key_rows)
        parts_labels.append(query_labels)
        exclude_self = False
    else:
        if labels is None:
            raise ValueError(
                f"{where}: labels [N] are required, or keys=[N, d] for the (queries, keys) form"
            )
        query_labels = _check_int_labels(labels, "labels", n, where).to(device)
        parts_keys.append(queries)
        parts_labels.append(query_labels)
        exclude_self, diagonal_only = True, False
    parts_forced.append(torch.zeros(n, dtype=torch.bool, device=device))

    if ref_embeddings is not None:
        ref = check_embeddings(ref_embeddings, "ref_embeddings", where)
        if ref.shape[1] != d:
            raise ValueError(
                f"{where}: ref_embeddings has shape {shape_str(ref)} but embeddings has shape "
                f"{shape_str(queries)} (the embedding sizes differ)"
            )
        m = ref.shape[0]
        parts_keys.append(ref)
        if ref_labels is None:
            parts_labels.append(torch.zeros(m, dtype=torch.long, device=device))
            parts_forced.append(torch.ones(m, dtype=torch.bool, device=device))
        else:
            if pair_form and labels is None:
                raise ValueError(
                    f"{where}: ref_labels in the (queries, keys) form needs labels to "
                    "compare with; without ref_labels the references are extra negatives"
                )
            parts_labels.append(_check_int_labels(ref_labels, "ref_labels", m, where).to(device))
            parts_forced.append(torch.zeros(m, dtype=torch.bool, device=device))
    elif ref_labels is not None:
        raise ValueError(f"{where}: ref_labels was given without ref_embeddings")

    if hard_negatives is not None:
        if not isinstance(hard_negatives, Tensor) or hard_negatives.dim() not in (2, 3):
            shape = (
                shape_str(hard_negatives)
                if isinstance(hard_negatives, Tensor)
                else type(hard_negatives).__name__
            )
            raise ValueError(f"{where}: hard_negatives must be [N, d] or [N, h, d], got {shape}")
        if hard_negatives.shape[0] != n or hard_negatives.shape[-1] != d:
            raise ValueError(
                f"{where}: hard_negatives has shape {shape_str(hard_negatives)} but embeddings has "
                f"shape {shape_str(queries)}; expected [{n}, {d}] or [{n}, h, {d}]"
            )
        flat = check_embeddings(hard_negatives.reshape(-1, d), "hard_negatives", where)
        parts_keys.append(flat)
        parts_labels.append(torch.zeros(flat.shape[0], dtype=torch.long, device=device))
        parts_forced.append(torch.ones(flat.shape[0], dtype=torch.bool, device=device))

    dtype = queries.dtype
    for part in parts_keys:
        dtype = torch.promote_types(dtype, part.dtype)
    # One part (the common in-batch call) is used as it is: no copy, no cast.
    if len(parts_keys) == 1:
        keys_all, key_labels, forced = parts_keys[0], parts_labels[0], parts_forced[0]
    else:
        keys_all = torch.cat([p.to(dtype) for p in parts_keys])
        key_labels, forced = torch.cat(parts_labels), torch.cat(parts_forced)
    return Candidates(
        queries=queries if queries.dtype == dtype else queries.to(dtype),
        keys=keys_all if keys_all.dtype == dtype else keys_all.to(dtype),
        query_labels=query_labels,
        key_labels=key_labels,
        forced_negative=forced,
        exclude_self=exclude_self,
        diagonal_only=diagonal_only,
        pair_form=pair_form,
        in_batch=pair_form and labels is None,
    )

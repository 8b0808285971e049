"""The two input forms of the embedding losses, turned into one description of candidates.

``(embeddings, labels)``: every other row of the batch is a candidate; equal labels make a
positive pair. ``(queries, keys)``: key ``i`` is the positive of query ``i`` and every other key
is an in-batch negative. In both forms ``ref_embeddings`` (with ``ref_labels``: labelled
candidates; without: extra negatives) and ``hard_negatives`` (always negatives) are appended
to the candidates. Masks are built per block of candidate columns, so that a chunked loss never
holds an ``[N, M]`` mask.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from rankloss._validation import check_choice
from rankloss.functional.similarity import check_embeddings

__all__ = ["Candidates", "prepare_candidates", "FALSE_NEGATIVES"]

FALSE_NEGATIVES = ("mask", "positive")


def _shape(t: Tensor) -> str:
    return "[" + ", ".join(str(s) for s in t.shape) + "]"


@dataclass(frozen=True)
class Candidates:
    """Queries (anchors) ``[N, d]`` against candidates ``[M, d]``, with what makes a pair.

    A candidate ``j`` is a positive of query ``i`` when their labels match and ``j`` is not
    ``forced_negative``; with ``exclude_self`` column ``i`` (the query itself) is never a pair;
    with ``diagonal_only`` the only positive is column ``i`` and other same-label candidates are
    neither positive nor negative (masked false negatives).
    """

    queries: Tensor
    keys: Tensor
    query_labels: Tensor
    key_labels: Tensor
    forced_negative: Tensor
    exclude_self: bool
    diagonal_only: bool
    pair_form: bool

    @property
    def num_queries(self) -> int:
        return self.queries.shape[0]

    @property
    def num_keys(self) -> int:
        return self.keys.shape[0]

    def masks(self, start: int = 0, stop: int | None = None) -> tuple[Tensor, Tensor]:
        """``(positive, negative)`` bool masks of columns ``start:stop``: ``[N, stop - start]``.

        Built with one ``[N, stop - start]`` comparison; forced negatives and the diagonal are
        patched by indexing, so a block costs little beyond its logits.
        """
        stop = self.num_keys if stop is None else stop
        positive = self.query_labels.unsqueeze(1) == self.key_labels[start:stop].unsqueeze(0)
        negative = ~positive
        forced = torch.nonzero(self.forced_negative[start:stop])[:, 0]
        if forced.numel():
            negative[:, forced] = True
            positive[:, forced] = False
        low, high = start, min(stop, self.num_queries)
        if self.diagonal_only:
            positive = torch.zeros_like(positive)
        if (self.exclude_self or self.diagonal_only) and low < high:
            rows = torch.arange(low, high, device=positive.device)
            positive[rows, rows - start] = self.diagonal_only
        return positive, negative


def _check_int_labels(labels: object, name: str, n: int, where: str) -> Tensor:
    if not isinstance(labels, Tensor):
        raise ValueError(f"{where}: {name} must be a torch.Tensor, got {type(labels).__name__}")
    if labels.dim() != 1 or labels.shape[0] != n:
        raise ValueError(f"{where}: {name} has shape {_shape(labels)} but expected [{n}]")
    if labels.dtype.is_floating_point or labels.is_complex():
        raise ValueError(f"{where}: {name} must be integer class labels, got dtype {labels.dtype}")
    return labels.long()


def prepare_candidates(
    embeddings: Tensor,
    labels_or_keys: Tensor,
    pair_labels: Tensor | None,
    ref_embeddings: Tensor | None,
    ref_labels: Tensor | None,
    hard_negatives: Tensor | None,
    *,
    where: str,
    false_negatives: str = "positive",
) -> Candidates:
    """Validate either input form and describe its candidates (see the module docstring)."""
    check_choice("false_negatives", false_negatives, FALSE_NEGATIVES)
    queries = check_embeddings(embeddings, "embeddings", where)
    n, d = queries.shape
    if not isinstance(labels_or_keys, Tensor):
        raise ValueError(
            f"{where}: the second argument must be labels [N] or keys [N, d], got "
            f"{type(labels_or_keys).__name__}"
        )
    device = queries.device
    pair_form = labels_or_keys.dtype.is_floating_point
    parts_keys: list[Tensor] = []
    parts_labels: list[Tensor] = []
    parts_forced: list[Tensor] = []
    if pair_form and labels_or_keys.dim() == 1:
        raise ValueError(
            f"{where}: labels must be integer class labels, got dtype {labels_or_keys.dtype} "
            "(a floating point second argument is read as keys [N, d])"
        )
    if pair_form:
        keys = check_embeddings(labels_or_keys, "keys", where)
        if keys.shape != queries.shape:
            raise ValueError(
                f"{where}: keys has shape {_shape(keys)} but embeddings (queries) has shape "
                f"{_shape(queries)}; in the (queries, keys) form row i of each is a pair"
            )
        if pair_labels is None:
            query_labels = torch.arange(n, device=device)
            diagonal_only = False
        else:
            query_labels = _check_int_labels(pair_labels, "pair_labels", n, where).to(device)
            diagonal_only = false_negatives == "mask"
        parts_keys.append(keys)
        parts_labels.append(query_labels)
        exclude_self = False
    else:
        if pair_labels is not None:
            raise ValueError(
                f"{where}: pair_labels applies to the (queries, keys) form; in the "
                "(embeddings, labels) form the labels already say which rows are pairs"
            )
        query_labels = _check_int_labels(labels_or_keys, "labels", n, where).to(device)
        parts_keys.append(queries)
        parts_labels.append(query_labels)
        exclude_self, diagonal_only = True, False
    parts_forced.append(torch.zeros(n, dtype=torch.bool, device=device))

    if ref_embeddings is not None:
        ref = check_embeddings(ref_embeddings, "ref_embeddings", where)
        if ref.shape[1] != d:
            raise ValueError(
                f"{where}: ref_embeddings has shape {_shape(ref)} but embeddings has shape "
                f"{_shape(queries)} (the embedding sizes differ)"
            )
        m = ref.shape[0]
        parts_keys.append(ref)
        if ref_labels is None:
            parts_labels.append(torch.zeros(m, dtype=torch.long, device=device))
            parts_forced.append(torch.ones(m, dtype=torch.bool, device=device))
        else:
            if pair_form and pair_labels is None:
                raise ValueError(
                    f"{where}: ref_labels in the (queries, keys) form needs pair_labels to "
                    "compare with; without ref_labels the references are extra negatives"
                )
            parts_labels.append(_check_int_labels(ref_labels, "ref_labels", m, where).to(device))
            parts_forced.append(torch.zeros(m, dtype=torch.bool, device=device))
    elif ref_labels is not None:
        raise ValueError(f"{where}: ref_labels was given without ref_embeddings")

    if hard_negatives is not None:
        if not isinstance(hard_negatives, Tensor) or hard_negatives.dim() not in (2, 3):
            shape = (
                _shape(hard_negatives)
                if isinstance(hard_negatives, Tensor)
                else type(hard_negatives).__name__
            )
            raise ValueError(f"{where}: hard_negatives must be [N, d] or [N, h, d], got {shape}")
        if hard_negatives.shape[0] != n or hard_negatives.shape[-1] != d:
            raise ValueError(
                f"{where}: hard_negatives has shape {_shape(hard_negatives)} but embeddings has "
                f"shape {_shape(queries)}; expected [{n}, {d}] or [{n}, h, {d}]"
            )
        flat = check_embeddings(hard_negatives.reshape(-1, d), "hard_negatives", where)
        parts_keys.append(flat)
        parts_labels.append(torch.zeros(flat.shape[0], dtype=torch.long, device=device))
        parts_forced.append(torch.ones(flat.shape[0], dtype=torch.bool, device=device))

    dtype = queries.dtype
    for part in parts_keys:
        dtype = torch.promote_types(dtype, part.dtype)
    keys_all = (
        torch.cat([p.to(dtype) for p in parts_keys])
        if len(parts_keys) > 1
        else parts_keys[0].to(dtype)
    )
    return Candidates(
        queries=queries.to(dtype),
        keys=keys_all,
        query_labels=query_labels,
        key_labels=torch.cat(parts_labels),
        forced_negative=torch.cat(parts_forced),
        exclude_self=exclude_self,
        diagonal_only=diagonal_only,
        pair_form=pair_form,
    )

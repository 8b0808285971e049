"""Retrieval metrics for embeddings (image and text retrieval), computed in chunks.

Queries ``[N, d]`` with labels ``[N]`` search a reference set ``[M, d]`` with labels ``[M]``
(or the queries themselves, self-matches excluded). A reference is relevant to a query when
their labels are equal. References are ranked by a similarity of
:data:`rankloss._core.similarity.SIMILARITIES` (higher = closer; the one list every part of
rankloss uses); the ``[N, M]`` similarity matrix is never held at once: ``chunk_size``
queries at a time, so memory is ``O(chunk_size * M)``.

Vocabulary: ``hit@K`` is 1 when a relevant reference is among the ``K`` nearest (the
"Recall@K" of metric-learning papers); ``recall@k`` in :mod:`rankloss.metrics` is always the
fraction of the relevant items found, which is not reported here.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

from rankloss._core import params
from rankloss._core.ranking import dcg_at_k, ideal_dcg
from rankloss._core.similarity import SIMILARITIES, pairwise_similarity
from rankloss._core.validation import check_choice, check_embeddings, shape_str
from rankloss.metrics.classification import per_class_report

__all__ = [
    "SIMILARITIES",
    "embedding_retrieval_metrics",
    "retrieval_per_query",
    "retrieval_per_class_report",
]


def _check_inputs(
    where: str,
    query_embeddings: object,
    query_labels: object,
    ref_embeddings: object,
    ref_labels: object,
) -> None:
    queries = check_embeddings(query_embeddings, "query_embeddings", where)
    if not isinstance(query_labels, Tensor) or query_labels.shape != queries.shape[:1]:
        got = shape_str(query_labels) if isinstance(query_labels, Tensor) else type(query_labels)
        raise ValueError(f"{where}: query_labels must have shape [{queries.shape[0]}], got {got}")
    if (ref_embeddings is None) != (ref_labels is None):
        raise ValueError(f"{where}: give both ref_embeddings and ref_labels, or neither")
    if ref_embeddings is None:
        return
    refs = check_embeddings(ref_embeddings, "ref_embeddings", where)
    if refs.shape[1] != queries.shape[1]:
        raise ValueError(
            f"{where}: ref_embeddings has dimension {refs.shape[1]} but query_embeddings has "
            f"{queries.shape[1]}"
        )
    if not isinstance(ref_labels, Tensor) or ref_labels.shape != refs.shape[:1]:
        got = shape_str(ref_labels) if isinstance(ref_labels, Tensor) else type(ref_labels)
        raise ValueError(f"{where}: ref_labels must have shape [{refs.shape[0]}], got {got}")


def _check_similarity(where: str, similarity: str) -> None:
    if similarity == "euclidean":
        raise ValueError(
            f"{where}: similarity must be one of {list(SIMILARITIES)}, got 'euclidean' "
            "(renamed 'neg_euclidean': every similarity in rankloss is higher-is-closer)"
        )
    check_choice("similarity", similarity, SIMILARITIES, where)


# One function per per-query metric, on ``match`` ``[q, depth]`` (1.0 where the i-th nearest
# reference is relevant, nearest first) and ``num_relevant`` ``[q]`` (float64).


def _hit_at_k(match: Tensor, k: int) -> Tensor:
    """1 if a relevant reference is among the ``k`` nearest."""
    return (match[:, :k].sum(-1) > 0).to(match.dtype)


def _ndcg_at_k(match: Tensor, num_relevant: Tensor, k: int) -> Tensor:
    """Binary-gain NDCG@k; the ideal ranking puts the ``min(R, k)`` relevant ones first."""
    top = match[:, :k]
    positions = torch.arange(top.shape[1], device=match.device)
    ideal_first = positions < num_relevant[:, None]
    ideal = ideal_dcg(ideal_first.to(match.dtype), ideal_first, k)
    return dcg_at_k(top, k) / ideal.clamp(min=1e-300)


def _r_precision(match: Tensor, num_relevant: Tensor) -> Tensor:
    """Fraction of the ``R`` nearest that are relevant."""
    positions = torch.arange(1, match.shape[1] + 1, device=match.device, dtype=match.dtype)
    within = positions <= num_relevant[:, None]
    return (match * within).sum(-1) / num_relevant.clamp(min=1)


def _map_at_r(match: Tensor, num_relevant: Tensor) -> Tensor:
    """Average precision over the ``R`` nearest, divided by ``R`` (Musgrave et al. 2020)."""
    positions = torch.arange(1, match.shape[1] + 1, device=match.device, dtype=match.dtype)
    within = positions <= num_relevant[:, None]
    precision_at = match.cumsum(-1) / positions
    return (match * precision_at * within).sum(-1) / num_relevant.clamp(min=1)


def _per_query(
    where: str,
    query_embeddings: Tensor,
    query_labels: Tensor,
    ref_embeddings: Tensor | None,
    ref_labels: Tensor | None,
    ks: Sequence[int],
    similarity: str,
    chunk_size: int,
    exclude_self: bool | None,
    neighbors: int,
) -> dict[str, Tensor]:
    _check_inputs(where, query_embeddings, query_labels, ref_embeddings, ref_labels)
    _check_similarity(where, similarity)
    cutoffs = sorted({params.positive_int(where, "ks", k) for k in ks} | {1})
    chunk_size = params.positive_int(where, "chunk_size", chunk_size)
    if exclude_self is not None:
        exclude_self = params.boolean(where, "exclude_self", exclude_self)
    neighbors = params.nonnegative_int(where, "neighbors", neighbors)
    if exclude_self is None:
        exclude_self = ref_embeddings is None
    if ref_embeddings is None or ref_labels is None:
        ref_embeddings, ref_labels = query_embeddings, query_labels
    num_queries, num_refs = query_embeddings.shape[0], ref_embeddings.shape[0]
    if exclude_self and num_refs < num_queries:
        raise ValueError(
            f"{where}: exclude_self=True pairs query i with reference i, so it needs at least as "
            f"many references as queries; got {num_refs} < {num_queries}"
        )
    dtype = torch.float64 if query_embeddings.dtype == torch.float64 else torch.float32
    device = query_embeddings.device
    queries = query_embeddings.detach().to(dtype)
    refs = ref_embeddings.detach().to(device, dtype)
    classes, inverse = torch.unique(
        torch.cat([query_labels.reshape(-1).to(device), ref_labels.reshape(-1).to(device)]),
        return_inverse=True,
    )
    q_cls, r_cls = inverse[:num_queries], inverse[num_queries:]
    num_relevant = torch.bincount(r_cls, minlength=len(classes))[q_cls] - int(exclude_self)
    num_relevant = num_relevant.clamp(min=0)
    available = num_refs - int(exclude_self)
    top_k = max(cutoffs)
    # Only the order of the references matters, and the square root keeps it: skip it.
    kind = "neg_sq_euclidean" if similarity == "neg_euclidean" else similarity

    out: dict[str, list[Tensor]] = {name: [] for name in ["precision@1", "r_precision", "map@r"]}
    out.update({f"hit@{k}": [] for k in cutoffs})
    out.update({f"ndcg@{k}": [] for k in cutoffs})
    nearest = []
    for lo in range(0, num_queries, chunk_size):
        hi = min(lo + chunk_size, num_queries)
        sims = pairwise_similarity(queries[lo:hi], refs, kind)
        if exclude_self:
            rows = torch.arange(hi - lo, device=device)
            sims[rows, rows + lo] = -math.inf
        rel_count = num_relevant[lo:hi]
        depth = min(max(top_k, neighbors, int(rel_count.max())), available)
        if depth == 0:
            index = torch.zeros(hi - lo, 0, dtype=torch.long, device=device)
        else:
            index = torch.topk(sims, depth, dim=-1, sorted=True).indices
        if neighbors:
            nearest.append(r_cls[index[:, :neighbors]])
        match = (r_cls[index] == q_cls[lo:hi, None]).to(torch.float64)
        r = rel_count.to(torch.float64)
        has = rel_count > 0
        nan = torch.full_like(r, math.nan)

        def keep(values: Tensor, has: Tensor = has, nan: Tensor = nan) -> Tensor:
            return torch.where(has, values, nan)

        out["precision@1"].append(keep(_hit_at_k(match, 1)))
        out["r_precision"].append(keep(_r_precision(match, r)))
        out["map@r"].append(keep(_map_at_r(match, r)))
        for k in cutoffs:
            out[f"hit@{k}"].append(keep(_hit_at_k(match, k)))
            out[f"ndcg@{k}"].append(keep(_ndcg_at_k(match, r, k)))
    result = {name: torch.cat(parts).cpu() for name, parts in out.items()}
    result["num_relevant"] = num_relevant.cpu()
    if neighbors:
        result["neighbor_labels"] = torch.cat(nearest).cpu()
        result["classes"] = classes.cpu()
    return result


def retrieval_per_query(
    query_embeddings: Tensor,
    query_labels: Tensor,
    ref_embeddings: Tensor | None = None,
    ref_labels: Tensor | None = None,
    *,
    ks: Sequence[int] = (1, 10),
    similarity: str = "cosine",
    chunk_size: int = 256,
    exclude_self: bool | None = None,
    neighbors: int = 0,
) -> dict[str, Tensor]:
    """Per-query retrieval metrics; see :func:`embedding_retrieval_metrics`.

    Returns:
        ``{name: [N]}`` float64 tensors (NaN for a query without any relevant reference) for
        ``"precision@1"``, ``"r_precision"``, ``"map@r"`` and ``"hit@K"``, ``"ndcg@K"`` for
        each ``K`` in ``ks`` (and ``K = 1``); plus ``"num_relevant"`` ``[N]`` and, when
        ``neighbors > 0``, ``"neighbor_labels"`` ``[N, neighbors]`` (class ids into
        ``"classes"``, nearest first) and ``"classes"``.
    """
    return _per_query(
        "retrieval_per_query",
        query_embeddings,
        query_labels,
        ref_embeddings,
        ref_labels,
        ks,
        similarity,
        chunk_size,
        exclude_self,
        neighbors,
    )


def _nanmean(values: Tensor) -> float:
    keep = ~torch.isnan(values)
    return float(values[keep].mean()) if bool(keep.any()) else math.nan


def embedding_retrieval_metrics(
    query_embeddings: Tensor,
    query_labels: Tensor,
    ref_embeddings: Tensor | None = None,
    ref_labels: Tensor | None = None,
    *,
    ks: Sequence[int] = (1, 10),
    similarity: str = "cosine",
    chunk_size: int = 256,
    exclude_self: bool | None = None,
) -> dict[str, float]:
    r"""Retrieval metrics of embeddings with labels, averaged over queries.

    For a query with :math:`R` relevant references (same label; itself excluded) and
    :math:`\mathrm{rel}(i)` marking the :math:`i`-th nearest reference:

    * ``"precision@1"``: :math:`\mathrm{rel}(1)`.
    * ``"hit@K"`` (for each ``K`` in ``ks``): 1 if a relevant reference is among the
      :math:`K` nearest. This is the "Recall@K" of image-retrieval papers (hit@1 =
      precision@1), called ``hit@K`` here because ``recall@k`` in rankloss always means the
      fraction of the relevant items found (:func:`rankloss.metrics.recall`).
    * ``"r_precision"``: :math:`\frac{1}{R}\sum_{i \le R} \mathrm{rel}(i)`.
    * ``"map@r"``: :math:`\frac{1}{R}\sum_{i \le R} \mathrm{rel}(i)\, P@i` (Musgrave et al. 2020).
    * ``"ndcg@K"``: binary-gain NDCG of the :math:`K` nearest, ideal
      :math:`\sum_{i \le \min(R, K)} 1/\log_2(i+1)`.

    Queries with no relevant reference are left out of every mean. Ties in similarity are
    broken arbitrarily (``torch.topk``).

    Args:
        query_embeddings: ``[N, d]``.
        query_labels: ``[N]`` integer classes.
        ref_embeddings: ``[M, d]`` reference set, or ``None`` to search the queries.
        ref_labels: ``[M]`` (with ``ref_embeddings``).
        ks: cut-offs of ``hit@`` and ``ndcg@`` (positive ints; default ``(1, 10)``).
        similarity: how references are ranked, one of
            :data:`~rankloss._core.similarity.SIMILARITIES`: ``"cosine"`` (default),
            ``"dot"``, ``"neg_euclidean"`` or ``"neg_sq_euclidean"`` (the last two rank
            alike).
        chunk_size: queries per chunk (memory ``O(chunk_size * M)``).
        exclude_self: drop reference ``i`` from query ``i``'s results; ``None`` (default)
            means ``True`` exactly when ``ref_embeddings`` is ``None``. With a reference set
            it assumes its first ``N`` rows are the queries.

    Returns:
        ``{"precision@1", "hit@K"..., "r_precision", "map@r", "ndcg@K"...}`` floats.

    >>> x = torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]])
    >>> m = embedding_retrieval_metrics(x, torch.tensor([0, 0, 1, 1]), ks=(1,))
    >>> m["precision@1"], m["hit@1"], m["map@r"]
    (1.0, 1.0, 1.0)
    """
    per_query = _per_query(
        "embedding_retrieval_metrics",
        query_embeddings,
        query_labels,
        ref_embeddings,
        ref_labels,
        ks,
        similarity,
        chunk_size,
        exclude_self,
        0,
    )
    ks_sorted = sorted(set(ks))
    names = ["precision@1", *(f"hit@{k}" for k in ks_sorted), "r_precision", "map@r"]
    names += [f"ndcg@{k}" for k in ks_sorted]
    return {name: _nanmean(per_query[name]) for name in names}


def retrieval_per_class_report(
    query_embeddings: Tensor,
    query_labels: Tensor,
    ref_embeddings: Tensor | None = None,
    ref_labels: Tensor | None = None,
    *,
    k: int = 1,
    similarity: str = "cosine",
    chunk_size: int = 256,
    exclude_self: bool | None = None,
) -> dict[str, Tensor | float]:
    """Per-class report of retrieval: k-nearest-neighbour classification plus per-class means.

    Each query is classified by a majority vote of its ``k`` nearest references (a tied vote
    goes to the class of the nearer neighbour); :func:`~rankloss.metrics.per_class_report`
    then gives per-class precision, recall, F1 and support with macro and micro averages. The
    report adds per-class means of ``"precision@1"``, ``"r_precision"`` and ``"map@r"`` (NaN
    for a class without queries) and ``"classes"``, the label value of each row.
    """
    where = "retrieval_per_class_report"
    k = params.positive_int(where, "k", k)
    per_query = _per_query(
        where,
        query_embeddings,
        query_labels,
        ref_embeddings,
        ref_labels,
        (1,),
        similarity,
        chunk_size,
        exclude_self,
        k,
    )
    classes = per_query["classes"]
    num_classes = len(classes)
    neighbors = per_query["neighbor_labels"]
    # Votes per class, then the position of each class's nearest neighbour: a class's score
    # is votes * (k + 1) + (k - that position), so more votes win and, among equal votes, the
    # class whose nearest neighbour is nearer (integers: exact for any k).
    rows, k_used = neighbors.shape
    positions = torch.arange(k_used).expand(rows, k_used)
    votes = torch.zeros(rows, num_classes, dtype=torch.long).scatter_add_(
        1, neighbors, torch.ones_like(neighbors)
    )
    first = torch.full((rows, num_classes), k_used, dtype=torch.long).scatter_reduce_(
        1, neighbors, positions, reduce="amin"
    )
    predicted = (votes * (k_used + 1) + (k_used - first)).argmax(-1)
    targets = torch.searchsorted(classes, query_labels.reshape(-1).cpu())
    report: dict[str, Tensor | float] = per_class_report(predicted, targets, num_classes)
    for name in ("precision@1", "r_precision", "map@r"):
        values = per_query[name]
        keep = ~torch.isnan(values)
        total = torch.zeros(num_classes, dtype=torch.float64).index_add_(
            0, targets[keep], values[keep]
        )
        count = torch.bincount(targets[keep], minlength=num_classes).to(torch.float64)
        report[name] = torch.where(count > 0, total / count.clamp(min=1), math.nan)
    report["classes"] = classes
    return report

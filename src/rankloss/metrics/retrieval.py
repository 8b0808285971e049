"""Retrieval metrics for embeddings (image and text retrieval), computed in chunks.

Queries ``[N, d]`` with labels ``[N]`` search a reference set ``[M, d]`` with labels ``[M]``
(or the queries themselves, self-matches excluded). A reference is relevant to a query when
their labels are equal. Similarity is cosine or negative euclidean distance (higher = closer);
the ``[N, M]`` similarity matrix is never held at once: ``chunk_size`` queries at a time, so
memory is ``O(chunk_size * M)``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

from rankloss._validation import check_choice
from rankloss.metrics.classification import per_class_report

__all__ = [
    "SIMILARITIES",
    "embedding_retrieval_metrics",
    "retrieval_per_query",
    "retrieval_per_class_report",
]

SIMILARITIES = ("cosine", "euclidean")


def _check(query_embeddings, query_labels, ref_embeddings, ref_labels):
    where = "embedding_retrieval_metrics"
    if not isinstance(query_embeddings, Tensor) or query_embeddings.dim() != 2:
        raise ValueError(f"{where}: query_embeddings must be a [N, d] tensor")
    if not isinstance(query_labels, Tensor) or query_labels.shape != query_embeddings.shape[:1]:
        raise ValueError(
            f"{where}: query_labels must have shape [{query_embeddings.shape[0]}], got "
            f"{list(getattr(query_labels, 'shape', []))}"
        )
    if (ref_embeddings is None) != (ref_labels is None):
        raise ValueError(f"{where}: give both ref_embeddings and ref_labels, or neither")
    if ref_embeddings is not None:
        if not isinstance(ref_embeddings, Tensor) or ref_embeddings.dim() != 2:
            raise ValueError(f"{where}: ref_embeddings must be a [M, d] tensor")
        if ref_embeddings.shape[1] != query_embeddings.shape[1]:
            raise ValueError(
                f"{where}: ref_embeddings has dimension {ref_embeddings.shape[1]} but "
                f"query_embeddings has {query_embeddings.shape[1]}"
            )
        if not isinstance(ref_labels, Tensor) or ref_labels.shape != ref_embeddings.shape[:1]:
            raise ValueError(f"{where}: ref_labels must have shape [{ref_embeddings.shape[0]}]")


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
        ``{name: [N]}`` float64 tensors (NaN for a query without any relevant reference),
        plus ``"num_relevant"`` ``[N]`` and, when ``neighbors > 0``, ``"neighbor_labels"``
        ``[N, neighbors]`` (class ids into ``"classes"``, nearest first) and ``"classes"``.
    """
    _check(query_embeddings, query_labels, ref_embeddings, ref_labels)
    check_choice("similarity", similarity, SIMILARITIES)
    ks = sorted({int(k) for k in ks} | {1})
    if ks[0] < 1:
        raise ValueError(f"ks must be positive integers, got {ks}")
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be positive, got {chunk_size}")
    if exclude_self is None:
        exclude_self = ref_embeddings is None
    if ref_embeddings is None:
        ref_embeddings, ref_labels = query_embeddings, query_labels
    num_queries, num_refs = query_embeddings.shape[0], ref_embeddings.shape[0]
    if exclude_self and num_refs < num_queries:
        raise ValueError(
            "exclude_self=True pairs query i with reference i, so it needs at least as many "
            f"references as queries; got {num_refs} < {num_queries}"
        )
    dtype = torch.float64 if query_embeddings.dtype == torch.float64 else torch.float32
    device = query_embeddings.device
    queries = query_embeddings.detach().to(dtype)
    refs = ref_embeddings.detach().to(device, dtype)
    if similarity == "cosine":
        queries = torch.nn.functional.normalize(queries, dim=-1)
        refs = torch.nn.functional.normalize(refs, dim=-1)
        ref_bias = None
    else:
        # -|q - r|^2 = 2 q.r - |r|^2 - |q|^2; the last term does not change a query's order.
        ref_bias = -(refs * refs).sum(-1)
    classes, inverse = torch.unique(
        torch.cat([query_labels.reshape(-1).to(device), ref_labels.reshape(-1).to(device)]),
        return_inverse=True,
    )
    q_cls, r_cls = inverse[:num_queries], inverse[num_queries:]
    num_relevant = torch.bincount(r_cls, minlength=len(classes))[q_cls] - int(exclude_self)
    num_relevant = num_relevant.clamp(min=0)
    available = num_refs - int(exclude_self)
    top_k = max(ks)
    discounts = 1.0 / torch.log2(torch.arange(2, available + 2, device=device, dtype=torch.float64))
    ideal_prefix = torch.nn.functional.pad(discounts.cumsum(0), (1, 0))

    out = {name: [] for name in ["precision@1", "r_precision", "map@r"]}
    out.update({f"recall@{k}": [] for k in ks})
    out.update({f"ndcg@{k}": [] for k in ks})
    nearest = []
    for lo in range(0, num_queries, chunk_size):
        hi = min(lo + chunk_size, num_queries)
        sims = queries[lo:hi] @ refs.T
        if ref_bias is not None:
            sims = 2 * sims + ref_bias
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
        pos = torch.arange(1, depth + 1, device=device, dtype=torch.float64)
        r = rel_count.to(torch.float64)
        within = pos <= r[:, None]
        safe_r = r.clamp(min=1)
        nan = torch.full_like(r, math.nan)
        has = rel_count > 0

        def keep(values: Tensor, has: Tensor = has, nan: Tensor = nan) -> Tensor:
            return torch.where(has, values, nan)

        first = match[:, 0] if depth else torch.zeros_like(r)
        out["precision@1"].append(keep(first))
        out["r_precision"].append(keep((match * within).sum(-1) / safe_r))
        precision_at = match.cumsum(-1) / pos
        out["map@r"].append(keep((match * precision_at * within).sum(-1) / safe_r))
        for k in ks:
            top = match[:, :k]
            out[f"recall@{k}"].append(keep((top.sum(-1) > 0).to(torch.float64)))
            dcg = (top * discounts[: top.shape[1]]).sum(-1)
            ideal = ideal_prefix[rel_count.clamp(max=k).clamp(max=available)]
            out[f"ndcg@{k}"].append(keep(dcg / ideal.clamp(min=1e-300)))
    result = {name: torch.cat(parts).cpu() for name, parts in out.items()}
    result["num_relevant"] = num_relevant.cpu()
    if neighbors:
        result["neighbor_labels"] = torch.cat(nearest).cpu()
        result["classes"] = classes.cpu()
    return result


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
    * ``"recall@K"`` (for each ``K`` in ``ks``): 1 if a relevant reference is among the
      :math:`K` nearest (the metric-learning Recall@K of image retrieval papers; Recall@1 =
      Precision@1).
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
        ks: cut-offs of ``recall@`` and ``ndcg@`` (default ``(1, 10)``).
        similarity: ``"cosine"`` (default) or ``"euclidean"`` (negative distance).
        chunk_size: queries per chunk (memory ``O(chunk_size * M)``).
        exclude_self: drop reference ``i`` from query ``i``'s results; ``None`` (default)
            means ``True`` exactly when ``ref_embeddings`` is ``None``. With a reference set
            it assumes its first ``N`` rows are the queries.

    Returns:
        ``{"precision@1", "recall@K"..., "r_precision", "map@r", "ndcg@K"...}`` floats.

    >>> x = torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]])
    >>> m = embedding_retrieval_metrics(x, torch.tensor([0, 0, 1, 1]), ks=(1,))
    >>> m["precision@1"], m["map@r"]
    (1.0, 1.0)
    """
    per_query = retrieval_per_query(
        query_embeddings,
        query_labels,
        ref_embeddings,
        ref_labels,
        ks=ks,
        similarity=similarity,
        chunk_size=chunk_size,
        exclude_self=exclude_self,
    )
    ks_sorted = sorted({int(k) for k in ks})
    names = ["precision@1", *(f"recall@{k}" for k in ks_sorted), "r_precision", "map@r"]
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
    if k < 1:
        raise ValueError(f"k must be a positive integer, got {k}")
    per_query = retrieval_per_query(
        query_embeddings,
        query_labels,
        ref_embeddings,
        ref_labels,
        ks=(1,),
        similarity=similarity,
        chunk_size=chunk_size,
        exclude_self=exclude_self,
        neighbors=k,
    )
    classes = per_query["classes"]
    num_classes = len(classes)
    neighbors = per_query["neighbor_labels"]
    votes = torch.zeros(neighbors.shape[0], num_classes, dtype=torch.float64)
    # 1 per vote, plus a bonus below 1 in total that favours nearer neighbours on a tie.
    bonus = (neighbors.shape[1] - torch.arange(neighbors.shape[1], dtype=torch.float64)) / (
        neighbors.shape[1] * (neighbors.shape[1] + 1)
    )
    votes.scatter_add_(1, neighbors, (1 + bonus).expand(neighbors.shape).contiguous())
    predicted = votes.argmax(-1)
    targets = torch.searchsorted(classes, query_labels.reshape(-1).cpu())
    report = per_class_report(predicted, targets, num_classes)
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

"""Float64 loop references for the ranking and retrieval metrics, one list at a time.

Written for clarity, not speed: plain Python over lists of floats. ``ties="average"`` is
computed by brute force, averaging the metric over every permutation used as the tie-break, so
it checks the closed forms of ``rankloss.metrics.ranking`` independently.
"""

from __future__ import annotations

import itertools
import math


def order(scores, labels, ties, priority=None):
    """Indices from best to worst rank."""
    idx = range(len(scores))
    if ties == "index":
        return sorted(idx, key=lambda i: (-scores[i], i))
    if ties == "pessimistic":
        return sorted(idx, key=lambda i: (-scores[i], labels[i], i))
    if ties == "optimistic":
        return sorted(idx, key=lambda i: (-scores[i], -labels[i], i))
    return sorted(idx, key=lambda i: (-scores[i], priority[i]))


def gain(y, kind):
    return 2.0**y - 1.0 if kind == "exp2" else float(y)


def dcg(ranked, k, kind):
    total = 0.0
    for r, y in enumerate(ranked, 1):
        if k is None or r <= k:
            total += gain(y, kind) / math.log2(r + 1)
    return total


def ndcg(ranked, k, kind):
    ideal = dcg(sorted(ranked, reverse=True), k, kind)
    return None if ideal <= 0 else dcg(ranked, k, kind) / ideal


def average_precision(ranked, k, t):
    total_rel = sum(1 for y in ranked if y >= t)
    if total_rel == 0:
        return None
    hits, total = 0, 0.0
    for r, y in enumerate(ranked, 1):
        if k is not None and r > k:
            break
        if y >= t:
            hits += 1
            total += hits / r
    return total / total_rel


def reciprocal_rank(ranked, k, t):
    if not any(y >= t for y in ranked):
        return None
    for r, y in enumerate(ranked, 1):
        if k is not None and r > k:
            break
        if y >= t:
            return 1.0 / r
    return 0.0


def precision(ranked, k, t):
    if not any(y >= t for y in ranked):
        return None
    cut = len(ranked) if k is None else k
    return sum(1 for y in ranked[:cut] if y >= t) / cut


def recall(ranked, k, t):
    total_rel = sum(1 for y in ranked if y >= t)
    if total_rel == 0:
        return None
    cut = len(ranked) if k is None else k
    return sum(1 for y in ranked[:cut] if y >= t) / total_rel


def r_precision(ranked, k, t):
    total_rel = sum(1 for y in ranked if y >= t)
    if total_rel == 0:
        return None
    cut = total_rel if k is None else min(total_rel, k)
    return sum(1 for y in ranked[:cut] if y >= t) / cut


def hit_rate(ranked, k, t):
    if not any(y >= t for y in ranked):
        return None
    cut = len(ranked) if k is None else k
    return 1.0 if any(y >= t for y in ranked[:cut]) else 0.0


def err(ranked, k, max_label=None):
    if not any(y > 0 for y in ranked):
        return None
    top = max(max(ranked), 0.0) if max_label is None else max_label
    reach, total = 1.0, 0.0
    for r, y in enumerate(ranked, 1):
        if k is not None and r > k:
            break
        stop = max((2.0**y - 1.0) / 2.0**top, 0.0)
        total += reach * stop / r
        reach *= 1 - stop
    return total


def ordered_pair_accuracy(scores, labels, ties, k=None):
    n = len(scores)
    top = None
    if k is not None:
        top = set(order(scores, labels, "index")[:k])
    correct = count = 0.0
    for i in range(n):
        for j in range(n):
            if labels[i] <= labels[j]:
                continue
            if top is not None and i not in top and j not in top:
                continue
            count += 1
            if scores[i] > scores[j]:
                correct += 1
            elif scores[i] == scores[j]:
                correct += {"average": 0.5, "pessimistic": 0.0, "optimistic": 1.0}.get(
                    ties, 1.0 if i < j else 0.0
                )
    return None if count == 0 else correct / count


RANKED_METRICS = {
    "dcg": lambda ranked, k, o: dcg(ranked, k, o.get("gain", "linear")),
    "ndcg": lambda ranked, k, o: ndcg(ranked, k, o.get("gain", "linear")),
    "average_precision": lambda ranked, k, o: average_precision(ranked, k, o.get("t", 1.0)),
    "reciprocal_rank": lambda ranked, k, o: reciprocal_rank(ranked, k, o.get("t", 1.0)),
    "precision": lambda ranked, k, o: precision(ranked, k, o.get("t", 1.0)),
    "recall": lambda ranked, k, o: recall(ranked, k, o.get("t", 1.0)),
    "r_precision": lambda ranked, k, o: r_precision(ranked, k, o.get("t", 1.0)),
    "hit_rate": lambda ranked, k, o: hit_rate(ranked, k, o.get("t", 1.0)),
    "err": lambda ranked, k, o: err(ranked, k, o.get("max_label")),
}


def list_metric(name, scores, labels, *, k=None, ties="index", empty="skip", **options):
    """The metric of one list (real items only) as a float (NaN for a skipped list)."""
    fill = {"skip": math.nan, "zero": 0.0, "one": 1.0}[empty]
    if name == "ordered_pair_accuracy":
        value = ordered_pair_accuracy(scores, labels, ties, k)
        return fill if value is None else value
    fn = RANKED_METRICS[name]
    if ties == "average":
        values = []
        for priority in itertools.permutations(range(len(scores))):
            ranked = [labels[i] for i in order(scores, labels, "average", priority)]
            values.append(fn(ranked, k, options))
        value = None if values[0] is None else sum(values) / len(values)
    else:
        value = fn([labels[i] for i in order(scores, labels, ties)], k, options)
    if value is None:
        return 0.0 if name == "dcg" else fill
    return value


def similarity_of(q, r, kind):
    """One similarity (higher = closer), as named in ``rankloss._core.similarity``."""
    dot = sum(a * b for a, b in zip(q, r))
    if kind == "dot":
        return dot
    if kind == "cosine":
        return dot / (math.sqrt(sum(a * a for a in q)) * math.sqrt(sum(b * b for b in r)))
    squared = sum((a - b) ** 2 for a, b in zip(q, r))
    if kind == "neg_sq_euclidean":
        return -squared
    assert kind == "neg_euclidean", kind
    return -math.sqrt(squared)


def retrieval(query, query_labels, refs, ref_labels, ks, similarity, exclude_self):
    """Per-query retrieval metrics by loops (lists of floats, no ties assumed)."""
    out = []
    for i, q in enumerate(query):
        sims = []
        for j, r in enumerate(refs):
            if exclude_self and i == j:
                continue
            sims.append((similarity_of(q, r, similarity), ref_labels[j] == query_labels[i]))
        sims.sort(key=lambda x: -x[0])
        match = [m for _, m in sims]
        big_r = sum(match)
        row = {}
        if big_r == 0:
            out.append(None)
            continue
        row["precision@1"] = float(match[0])
        row["r_precision"] = sum(match[:big_r]) / big_r
        hits, ap = 0, 0.0
        for p, m in enumerate(match[:big_r], 1):
            if m:
                hits += 1
                ap += hits / p
        row["map@r"] = ap / big_r
        for k in ks:
            row[f"hit@{k}"] = float(any(match[:k]))
            dcg_k = sum(1 / math.log2(p + 1) for p, m in enumerate(match[:k], 1) if m)
            ideal = sum(1 / math.log2(p + 1) for p in range(1, min(big_r, k) + 1))
            row[f"ndcg@{k}"] = dcg_k / ideal
        out.append(row)
    return out

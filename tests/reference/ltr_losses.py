"""Independent float64 references for the learning-to-rank losses.

Written from the formulas in the docstrings of :mod:`rankloss.functional` as plain Python loops
over one list's real items (and their pairs) with :mod:`math` only: no torch, no vectorisation,
no call into rankloss. Each ``*_ref`` function takes one list as Python lists of floats (the
real items only, no padding, no mask) and returns ``(value, valid)``: the per-list loss and
whether the list has anything to learn from. :func:`reduce_ref` then reduces over lists the way
``docs/conventions.md`` says.

Per-item ``weights`` (a list of floats, or ``None``) follow the docstrings: pointwise and
listwise losses weight each item's term; pairwise losses weight each pair by the weight of its
more relevant item; NDCG-based listwise losses scale the gains; detection losses weight each
positive's term; recommendation losses weight each item's term.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

Floats = Sequence[float]
Result = tuple[float, bool]

__all__ = [
    "REFERENCES",
    "reduce_ref",
    "mse_ref",
    "mae_ref",
    "smooth_l1_ref",
    "sigmoid_ce_ref",
    "softmax_ce_ref",
    "kl_div_ref",
    "hinge_ref",
    "ranknet_ref",
    "pairwise_hinge_ref",
    "lambdarank_ref",
    "lambdaloss_ref",
    "pairwise_ref",
    "bpr_ref",
    "listnet_ref",
    "listmle_ref",
    "approx_ndcg_ref",
    "neural_ndcg_ref",
    "xe_ndcg_ref",
    "gumbel_approx_ndcg_ref",
    "pirank_ref",
    "position_aware_listmle_ref",
    "rank_cosine_ref",
    "soft_rank_ndcg_ref",
    "ap_loss_ref",
    "alrp_loss_ref",
    "rank_sort_ref",
    "sampled_softmax_ref",
    "bpr_max_ref",
    "top1_max_ref",
    "gbce_ref",
    "ccl_ref",
    "discriminator_ref",
    "generator_ref",
]


# ----------------------------------------------------------------------------------------------
# Small scalar helpers


def softplus(x: float) -> float:
    """log(1 + e^x), stable for large |x|."""
    return max(x, 0.0) + math.log1p(math.exp(-abs(x)))


def sigmoid(x: float) -> float:
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    e = math.exp(x)
    return e / (1.0 + e)


def log_softmax(values: Floats) -> list[float]:
    top = max(values)
    log_total = top + math.log(sum(math.exp(v - top) for v in values))
    return [v - log_total for v in values]


def _weights(weights: Floats | None, n: int) -> list[float]:
    return [1.0] * n if weights is None else [float(w) for w in weights]


def gain_of(label: float, kind: str) -> float:
    if kind == "exp2":
        return 2.0**label - 1.0
    if kind == "linear":
        return label
    raise ValueError(kind)


def discount_of(rank: float) -> float:
    """1 / log2(1 + rank) for a 1-based rank."""
    return 1.0 / math.log2(1.0 + rank)


def ranks_by_score(scores: Floats) -> list[int]:
    """1-based rank of each item by descending score, ties broken by input order."""
    n = len(scores)
    ranks = []
    for i in range(n):
        ahead = sum(
            1 for j in range(n) if scores[j] > scores[i] or (scores[j] == scores[i] and j < i)
        )
        ranks.append(ahead + 1)
    return ranks


def ideal_dcg_of(gains: Floats, k: int | None) -> float:
    ordered = sorted(gains, reverse=True)
    total = 0.0
    for position, g in enumerate(ordered, start=1):
        if k is None or position <= k:
            total += g * discount_of(position)
    return total


def graded_pairs(labels: Floats) -> list[tuple[int, int]]:
    """Every (i, j) with labels[i] > labels[j]."""
    n = len(labels)
    return [(i, j) for i in range(n) for j in range(n) if labels[i] > labels[j]]


def top_k_pairs(pairs: list[tuple[int, int]], scores: Floats, k: int | None):
    """Keep the pairs with item i or item j in the top k of the current ranking."""
    if k is None:
        return pairs
    ranks = ranks_by_score(scores)
    return [(i, j) for i, j in pairs if ranks[i] <= k or ranks[j] <= k]


# ----------------------------------------------------------------------------------------------
# Pointwise: mean over real items of w_i * l_i


def _pointwise(per_item: list[float], weights: Floats | None) -> Result:
    n = len(per_item)
    if n == 0:
        return 0.0, False
    w = _weights(weights, n)
    return sum(w[i] * per_item[i] for i in range(n)) / n, True


def mse_ref(scores: Floats, labels: Floats, weights: Floats | None = None) -> Result:
    return _pointwise([(s - y) ** 2 for s, y in zip(scores, labels)], weights)


def mae_ref(scores: Floats, labels: Floats, weights: Floats | None = None) -> Result:
    return _pointwise([abs(s - y) for s, y in zip(scores, labels)], weights)


def smooth_l1_ref(
    scores: Floats, labels: Floats, weights: Floats | None = None, *, beta: float = 1.0
) -> Result:
    terms = []
    for s, y in zip(scores, labels):
        d = abs(s - y)
        terms.append(0.5 * d * d / beta if d < beta else d - 0.5 * beta)
    return _pointwise(terms, weights)


def sigmoid_ce_ref(
    scores: Floats,
    labels: Floats,
    weights: Floats | None = None,
    *,
    relevance_threshold: float | None = None,
) -> Result:
    terms = []
    for s, y in zip(scores, labels):
        if relevance_threshold is None:
            t = y
        else:
            t = 1.0 if y >= relevance_threshold else 0.0
        # -log sigma(s) = softplus(-s);  -log(1 - sigma(s)) = softplus(s)
        terms.append(t * softplus(-s) + (1.0 - t) * softplus(s))
    return _pointwise(terms, weights)


def hinge_ref(
    scores: Floats,
    labels: Floats,
    weights: Floats | None = None,
    *,
    margin: float = 1.0,
    relevance_threshold: float = 1.0,
) -> Result:
    terms = []
    for s, y in zip(scores, labels):
        t = 1.0 if y >= relevance_threshold else -1.0
        terms.append(max(0.0, margin - t * s))
    return _pointwise(terms, weights)


# ----------------------------------------------------------------------------------------------
# Softmax-based (registered as pointwise / listwise): a sum over the list's items


def softmax_ce_ref(scores: Floats, labels: Floats, weights: Floats | None = None) -> Result:
    if any(y < 0 for y in labels):
        raise ValueError("softmax_ce needs labels >= 0")
    total = sum(labels)
    if len(scores) == 0 or total <= 0:
        return 0.0, False
    w = _weights(weights, len(scores))
    log_q = log_softmax(scores)
    return -sum(w[i] * labels[i] / total * log_q[i] for i in range(len(scores))), True


def listnet_ref(
    scores: Floats, labels: Floats, weights: Floats | None = None, *, label_temperature: float = 1.0
) -> Result:
    if len(scores) == 0:
        return 0.0, False
    w = _weights(weights, len(scores))
    p = [math.exp(v) for v in log_softmax([y / label_temperature for y in labels])]
    log_q = log_softmax(scores)
    return -sum(w[i] * p[i] * log_q[i] for i in range(len(scores))), True


def kl_div_ref(
    scores: Floats, labels: Floats, weights: Floats | None = None, *, label_temperature: float = 1.0
) -> Result:
    if len(scores) == 0:
        return 0.0, False
    w = _weights(weights, len(scores))
    log_p = log_softmax([y / label_temperature for y in labels])
    log_q = log_softmax(scores)
    return sum(w[i] * math.exp(log_p[i]) * (log_p[i] - log_q[i]) for i in range(len(scores))), True


# ----------------------------------------------------------------------------------------------
# Pairwise with a mean over pairs


def _mean_over(pairs: list[tuple[int, int]], term: Callable[[int, int], float], w) -> Result:
    if not pairs:
        return 0.0, False
    return sum(w[i] * term(i, j) for i, j in pairs) / len(pairs), True


def ranknet_ref(
    scores: Floats,
    labels: Floats,
    weights: Floats | None = None,
    *,
    sigma: float = 1.0,
    k: int | None = None,
) -> Result:
    pairs = top_k_pairs(graded_pairs(labels), scores, k)
    w = _weights(weights, len(scores))
    return _mean_over(pairs, lambda i, j: softplus(-sigma * (scores[i] - scores[j])), w)


def pairwise_hinge_ref(
    scores: Floats,
    labels: Floats,
    weights: Floats | None = None,
    *,
    margin: float = 1.0,
    k: int | None = None,
) -> Result:
    pairs = top_k_pairs(graded_pairs(labels), scores, k)
    w = _weights(weights, len(scores))
    return _mean_over(pairs, lambda i, j: max(0.0, margin - (scores[i] - scores[j])), w)


def bpr_ref(
    scores: Floats,
    labels: Floats,
    weights: Floats | None = None,
    *,
    relevance_threshold: float = 1.0,
    k: int | None = None,
) -> Result:
    n = len(scores)
    t = relevance_threshold
    pairs = [(i, j) for i in range(n) for j in range(n) if labels[i] >= t > labels[j]]
    pairs = top_k_pairs(pairs, scores, k)
    w = _weights(weights, n)
    return _mean_over(pairs, lambda i, j: softplus(-(scores[i] - scores[j])), w)


# ----------------------------------------------------------------------------------------------
# Lambda losses: a sum over pairs of metric-derived (constant) weights


def lambdarank_ref(
    scores: Floats,
    labels: Floats,
    weights: Floats | None = None,
    *,
    sigma: float = 1.0,
    k: int | None = None,
    gain: str = "exp2",
) -> Result:
    n = len(scores)
    gains = [gain_of(y, gain) for y in labels]
    idcg = ideal_dcg_of(gains, k)
    pairs = top_k_pairs(graded_pairs(labels), scores, k)
    if n == 0 or idcg <= 0 or not pairs:
        return 0.0, False
    ranks = ranks_by_score(scores)
    disc = [discount_of(r) if k is None or r <= k else 0.0 for r in ranks]
    w = _weights(weights, n)
    total = 0.0
    for i, j in pairs:
        delta = abs(gains[i] - gains[j]) * abs(disc[i] - disc[j]) / idcg
        total += w[i] * delta * softplus(-sigma * (scores[i] - scores[j]))
    return total, True


def lambdaloss_ref(
    scores: Floats,
    labels: Floats,
    weights: Floats | None = None,
    *,
    weighting: str = "ndcg_loss2pp",
    sigma: float = 1.0,
    mu: float = 10.0,
    k: int | None = None,
    gain: str = "exp2",
) -> Result:
    """The LambdaLoss framework (Wang et al., CIKM 2018), Table 1 and Sec. 4.

    The paper's pair term is :math:`\\log_2(1 + e^{-\\sigma(s_i - s_j)})`; rankloss uses the
    natural logarithm (docs/losses.md), so this returns the paper's value times ln 2. With k,
    the rankloss top-k rule applies: pairs touch the top k, the discount is 0 beyond k, IDCG@k.
    """
    n = len(scores)
    raw = [gain_of(y, gain) for y in labels]
    idcg = ideal_dcg_of(raw, k)
    if weighting == "ndcg_loss1":
        pairs = [(i, j) for i in range(n) for j in range(n) if i != j]
    elif weighting in ("ndcg_loss2", "ndcg_loss2pp", "lambdarank", "label_diff"):
        pairs = graded_pairs(labels)
    else:
        raise ValueError(weighting)
    pairs = top_k_pairs(pairs, scores, k)
    uses_gains = weighting != "label_diff"
    if n == 0 or not pairs or (uses_gains and idcg <= 0):
        return 0.0, False
    g = [x / idcg if idcg > 0 else 0.0 for x in raw]
    ranks = ranks_by_score(scores)

    def big_d(r: float) -> float:
        return math.log2(1.0 + r)

    def inv_d(r: float) -> float:
        # 1 / D(r), zero beyond the cut-off
        return 1.0 / big_d(r) if k is None or r <= k else 0.0

    w = _weights(weights, n)
    total = 0.0
    for i, j in pairs:
        distance = abs(ranks[i] - ranks[j])
        delta = abs(1.0 / big_d(distance) - 1.0 / big_d(distance + 1))
        rho = abs(inv_d(ranks[i]) - inv_d(ranks[j]))
        gap = abs(g[i] - g[j])
        if weighting == "ndcg_loss2":
            pair_weight = delta * gap
        elif weighting == "ndcg_loss2pp":
            pair_weight = (rho + mu * delta) * gap
        elif weighting == "lambdarank":
            pair_weight = rho * gap
        elif weighting == "ndcg_loss1":
            pair_weight = g[i] * inv_d(ranks[i])
        else:  # label_diff (ARP)
            pair_weight = abs(labels[i] - labels[j])
        log2_loss = softplus(-sigma * (scores[i] - scores[j])) / math.log(2.0)  # the paper's
        total += w[i] * pair_weight * log2_loss
    total *= math.log(2.0)  # rankloss's natural-log convention
    return total, True


def pairwise_ref(
    scores: Floats,
    labels: Floats,
    weights: Floats | None = None,
    *,
    term: str = "logistic",
    weight: str = "uniform",
    pair_reduction: str = "mean",
    sigma: float = 1.0,
    margin: float = 1.0,
    mu: float = 10.0,
    k: int | None = None,
    gain: str = "exp2",
    relevance_threshold: float | None = None,
) -> Result:
    """A pair term times a pair weight, each written out on its own."""
    n = len(scores)
    if weight == "uniform":
        if relevance_threshold is None:
            pairs = graded_pairs(labels)
        else:
            t = relevance_threshold
            pairs = [(i, j) for i in range(n) for j in range(n) if labels[i] >= t > labels[j]]
        pairs = top_k_pairs(pairs, scores, k)
        lambdas = {pair: 1.0 for pair in pairs}
        valid = bool(pairs)
    else:
        if relevance_threshold is not None:
            raise ValueError("the reference pairs binary labels with the uniform weight only")
        # Recover each pair's weight from the LambdaLoss reference with a unit term.
        lambdas = {}
        for i in range(n):
            for j in range(n):
                if i == j:
                    continue
                lambdas[(i, j)] = _single_pair_weight(scores, labels, i, j, weight, mu, k, gain)
        lambdas = {pair: v for pair, v in lambdas.items() if v is not None}
        pairs = list(lambdas)
        valid = bool(pairs)
    if not valid:
        return 0.0, False
    w = _weights(weights, n)

    def phi(d: float) -> float:
        if term == "logistic":
            return softplus(-sigma * d)
        if term == "squared_hinge":
            return max(0.0, margin - d) ** 2
        return max(0.0, margin - d)

    total = sum(w[i] * lambdas[(i, j)] * phi(scores[i] - scores[j]) for i, j in pairs)
    return (total / len(pairs) if pair_reduction == "mean" else total), True


def _single_pair_weight(scores, labels, i, j, weighting, mu, k, gain) -> float | None:
    """The LambdaLoss weight of pair (i, j), or None when (i, j) is not a pair of it."""
    n = len(scores)
    raw = [gain_of(y, gain) for y in labels]
    idcg = ideal_dcg_of(raw, k)
    if weighting != "label_diff" and idcg <= 0:
        return None
    if weighting != "ndcg_loss1" and not labels[i] > labels[j]:
        return None
    if not top_k_pairs([(i, j)], scores, k):
        return None
    ranks = ranks_by_score(scores)
    g = [x / idcg if idcg > 0 else 0.0 for x in raw]

    def inv_d(r: float) -> float:
        return 1.0 / math.log2(1.0 + r) if k is None or r <= k else 0.0

    distance = abs(ranks[i] - ranks[j])
    delta = abs(1.0 / math.log2(1.0 + distance) - 1.0 / math.log2(2.0 + distance))
    rho = abs(inv_d(ranks[i]) - inv_d(ranks[j]))
    gap = abs(g[i] - g[j])
    del n
    return {
        "lambdarank": rho * gap,
        "ndcg_loss1": g[i] * inv_d(ranks[i]),
        "ndcg_loss2": delta * gap,
        "ndcg_loss2pp": (rho + mu * delta) * gap,
        "label_diff": abs(labels[i] - labels[j]),
    }[weighting]


# ----------------------------------------------------------------------------------------------
# Listwise


def listmle_ref(
    scores: Floats,
    labels: Floats,
    weights: Floats | None = None,
    *,
    order: Sequence[int] | None = None,
) -> Result:
    """``order`` overrides the permutation (for checking random tie-breaking)."""
    n = len(scores)
    if n == 0:
        return 0.0, False
    w = _weights(weights, n)
    if order is None:
        # Descending label, ties in input order (Python's sort is stable).
        order = sorted(range(n), key=lambda i: -labels[i])
    total = 0.0
    for t in range(n):
        tail = [scores[order[u]] for u in range(t, n)]
        top = max(tail)
        log_tail = top + math.log(sum(math.exp(v - top) for v in tail))
        total += w[order[t]] * (log_tail - scores[order[t]])
    return total, True


def listmle_tie_orders(labels: Floats) -> list[list[int]]:
    """Every order that sorts ``labels`` descending (all ways to break ties)."""
    import itertools

    groups: dict[float, list[int]] = {}
    for i, y in enumerate(labels):
        groups.setdefault(y, []).append(i)
    ordered = [groups[y] for y in sorted(groups, reverse=True)]
    result: list[list[int]] = [[]]
    for group in ordered:
        result = [prefix + list(p) for prefix in result for p in itertools.permutations(group)]
    return result


def approx_ndcg_ref(
    scores: Floats,
    labels: Floats,
    weights: Floats | None = None,
    *,
    alpha: float = 10.0,
    gain: str = "exp2",
) -> Result:
    n = len(scores)
    w = _weights(weights, n)
    gains = [gain_of(labels[i], gain) * w[i] for i in range(n)]
    idcg = ideal_dcg_of(gains, None)
    if n == 0 or idcg <= 0:
        return 0.0, False
    dcg = 0.0
    for i in range(n):
        rank = 1.0 + sum(sigmoid(alpha * (scores[j] - scores[i])) for j in range(n) if j != i)
        dcg += gains[i] / math.log2(1.0 + rank)
    return 1.0 - dcg / idcg, True


def neural_sort_matrix(scores: Floats, temperature: float) -> list[list[float]]:
    """Row-stochastic NeuralSort relaxation P[t][j] (rank t + 1, item j)."""
    n = len(scores)
    row_sums = [sum(abs(scores[j] - scores[m]) for m in range(n)) for j in range(n)]
    matrix = []
    for t in range(1, n + 1):
        logits = [((n + 1 - 2 * t) * scores[j] - row_sums[j]) / temperature for j in range(n)]
        matrix.append([math.exp(v) for v in log_softmax(logits)])
    return matrix


def sinkhorn(matrix: list[list[float]], iterations: int) -> list[list[float]]:
    """Alternate column then row normalisation, ``iterations`` rounds."""
    p = [row[:] for row in matrix]
    n = len(p)
    for _ in range(iterations):
        for j in range(n):
            column = sum(p[t][j] for t in range(n))
            for t in range(n):
                p[t][j] /= column
        for t in range(n):
            row = sum(p[t])
            p[t] = [v / row for v in p[t]]
    return p


def neural_ndcg_ref(
    scores: Floats,
    labels: Floats,
    weights: Floats | None = None,
    *,
    temperature: float = 1.0,
    sinkhorn_iterations: int = 50,
    k: int | None = None,
    gain: str = "exp2",
) -> Result:
    n = len(scores)
    w = _weights(weights, n)
    gains = [gain_of(labels[i], gain) * w[i] for i in range(n)]
    idcg = ideal_dcg_of(gains, k)
    if n == 0 or idcg <= 0:
        return 0.0, False
    p = sinkhorn(neural_sort_matrix(scores, temperature), sinkhorn_iterations)
    dcg = 0.0
    for t in range(n):
        if k is not None and t + 1 > k:
            break
        sorted_gain = sum(p[t][j] * gains[j] for j in range(n))
        dcg += sorted_gain * discount_of(t + 1)
    return 1.0 - dcg / idcg, True


# ----------------------------------------------------------------------------------------------
# More listwise: XE-NDCG, Gumbel-ApproxNDCG, PiRank, position-aware ListMLE, RankCosine and
# NDCG on soft ranks


def xe_ndcg_ref(
    scores: Floats,
    labels: Floats,
    weights: Floats | None = None,
    *,
    gamma: Floats | None = None,
) -> Result:
    """Bruch et al. (WWW 2019): phi_i = (2^y_i - gamma_i) / sum_j (2^y_j - gamma_j), the loss
    -sum_i w_i phi_i log softmax(s)_i; ``gamma`` defaults to its expectation 1/2."""
    n = len(scores)
    if any(y < 0 for y in labels):
        raise ValueError("xe_ndcg needs labels >= 0")
    g = [0.5] * n if gamma is None else list(gamma)
    phi = [2.0 ** labels[i] - g[i] for i in range(n)]
    total = sum(phi)
    if n == 0 or total <= 0:
        return 0.0, False
    w = _weights(weights, n)
    log_q = log_softmax(scores)
    return -sum(w[i] * phi[i] / total * log_q[i] for i in range(n)), True


def gumbel_approx_ndcg_ref(
    scores: Floats,
    labels: Floats,
    weights: Floats | None = None,
    *,
    alpha: float = 10.0,
    gain: str = "exp2",
    samples: int = 1,
    noise: Sequence[Floats] | None = None,
) -> Result:
    """Bruch et al. (WSDM 2020): the mean over the noise samples of ApproxNDCG of the perturbed
    scores. Without ``noise`` (one list of floats per sample) there is no perturbation: the
    function draws noise only from a caller's generator, so ``samples`` alone changes nothing."""
    del samples
    n = len(scores)
    draws = [[0.0] * n] if noise is None else [list(e) for e in noise]
    results = [
        approx_ndcg_ref(
            [scores[i] + e[i] for i in range(n)], labels, weights, alpha=alpha, gain=gain
        )
        for e in draws
    ]
    if not results[0][1]:
        return 0.0, False
    return sum(value for value, _ in results) / len(results), True


def pirank_ref(
    scores: Floats,
    labels: Floats,
    weights: Floats | None = None,
    *,
    temperature: float = 1.0,
    k: int | None = 10,
    gain: str = "exp2",
) -> Result:
    """Swezey et al. (NeurIPS 2021): 1 - NDCG@k with the expected gain at each position t under
    the row-stochastic NeuralSort matrix (no Sinkhorn scaling)."""
    n = len(scores)
    w = _weights(weights, n)
    gains = [gain_of(labels[i], gain) * w[i] for i in range(n)]
    idcg = ideal_dcg_of(gains, k)
    if n == 0 or idcg <= 0:
        return 0.0, False
    dcg = 0.0
    for t in range(1, n + 1):
        if k is not None and t > k:
            break
        logits = [
            ((n + 1 - 2 * t) * scores[j] - sum(abs(scores[j] - scores[u]) for u in range(n)))
            / temperature
            for j in range(n)
        ]
        p = [math.exp(v) for v in log_softmax(logits)]
        dcg += sum(p[j] * gains[j] for j in range(n)) * discount_of(t)
    return 1.0 - dcg / idcg, True


def position_aware_listmle_ref(
    scores: Floats, labels: Floats, weights: Floats | None = None
) -> Result:
    """Lan et al. (UAI 2014): ListMLE's stage t weighted by alpha(t) = 2^(n - t) - 1, the
    weights normalised to sum to 1 over the list (the rankloss docstring); ties in input
    order. A one-item list has no weighted stage: 0, but it counts."""
    n = len(scores)
    if n == 0:
        return 0.0, False
    w = _weights(weights, n)
    order = sorted(range(n), key=lambda i: -labels[i])
    alpha = [2.0 ** (n - t) - 1.0 for t in range(1, n + 1)]
    norm = sum(alpha)
    if norm == 0:
        return 0.0, True
    total = 0.0
    for t in range(n):
        tail = [scores[order[u]] for u in range(t, n)]
        top = max(tail)
        log_tail = top + math.log(sum(math.exp(v - top) for v in tail))
        total += w[order[t]] * alpha[t] / norm * (log_tail - scores[order[t]])
    return total, True


def rank_cosine_ref(scores: Floats, labels: Floats, weights: Floats | None = None) -> Result:
    """Qin et al. (IP&M 2008): (1 - cos(y, s)) / 2 with the weighted inner product; a zero
    score vector has cosine 0; all-zero labels leave nothing to learn."""
    n = len(scores)
    w = _weights(weights, n)
    y_norm = math.sqrt(sum(w[i] * labels[i] ** 2 for i in range(n)))
    if n == 0 or y_norm <= 0:
        return 0.0, False
    s_norm = math.sqrt(sum(w[i] * scores[i] ** 2 for i in range(n)))
    dot = sum(w[i] * labels[i] * scores[i] for i in range(n))
    cosine = dot / (y_norm * s_norm) if s_norm > 0 else 0.0
    return 0.5 * (1.0 - cosine), True


def isotonic_nonincreasing_ref(y: Floats) -> list[float]:
    """argmin over v_1 >= ... >= v_m of ||v - y||^2 by the min-max formula
    v_i = min_{a <= i} max_{b >= i} mean(y[a..b]) (no pooling algorithm)."""
    m = len(y)
    out = []
    for i in range(m):
        best = math.inf
        for a in range(i + 1):
            worst = -math.inf
            for b in range(i, m):
                worst = max(worst, sum(y[a : b + 1]) / (b + 1 - a))
            best = min(best, worst)
        out.append(best)
    return out


def project_onto_permutahedron(z: Floats, w: Floats) -> list[float]:
    """Euclidean projection of z onto the convex hull of the permutations of w (Blondel et al.,
    ICML 2020, Prop. 3): sort z descending, subtract the isotonic fit of z_sorted - w_sorted."""
    n = len(z)
    order = sorted(range(n), key=lambda i: -z[i])
    w_sorted = sorted(w, reverse=True)
    fit = isotonic_nonincreasing_ref([z[order[t]] - w_sorted[t] for t in range(n)])
    out = [0.0] * n
    for t in range(n):
        out[order[t]] = z[order[t]] - fit[t]
    return out


def soft_rank_ref(scores: Floats, regularization_strength: float = 1.0) -> list[float]:
    """Descending soft ranks (1 for the top score): the projection of -s / eps onto the
    permutahedron of (n, n - 1, ..., 1)."""
    n = len(scores)
    return project_onto_permutahedron(
        [-v / regularization_strength for v in scores], [float(n - t) for t in range(n)]
    )


def soft_rank_ndcg_ref(
    scores: Floats,
    labels: Floats,
    weights: Floats | None = None,
    *,
    regularization_strength: float = 1.0,
    gain: str = "exp2",
) -> Result:
    """1 - NDCG with the soft ranks of Blondel et al. in the discount."""
    n = len(scores)
    w = _weights(weights, n)
    gains = [gain_of(labels[i], gain) * w[i] for i in range(n)]
    idcg = ideal_dcg_of(gains, None)
    if n == 0 or idcg <= 0:
        return 0.0, False
    ranks = soft_rank_ref(scores, regularization_strength)
    return 1.0 - sum(gains[i] / math.log2(1.0 + ranks[i]) for i in range(n)) / idcg, True


# ----------------------------------------------------------------------------------------------
# Detection: AP-Loss, aLRP loss and Rank & Sort loss (values; a positive is a label > 0)


def interpolated_step(x: float, delta: float) -> float:
    """AP-Loss's H(x): 0 below -delta, 1 above delta, linear in between."""
    if x < -delta:
        return 0.0
    if x > delta:
        return 1.0
    return x / (2.0 * delta) + 0.5


def _detection_ranks(
    scores: Floats, labels: Floats, delta: float
) -> tuple[list[int], dict[int, float], dict[int, float]]:
    """Positives, and for each positive i: N_FP(i) and rank^+(i) = 1 + sum_{k in P, k != i}
    H(s_k - s_i)."""
    n = len(scores)
    if any(y < 0 for y in labels):
        raise ValueError("detection losses need labels >= 0")
    positives = [i for i in range(n) if labels[i] > 0]
    false_positives, rank_pos = {}, {}
    for i in positives:
        false_positives[i] = sum(
            interpolated_step(scores[j] - scores[i], delta) for j in range(n) if labels[j] <= 0
        )
        rank_pos[i] = 1.0 + sum(
            interpolated_step(scores[k] - scores[i], delta) for k in positives if k != i
        )
    return positives, false_positives, rank_pos


def ap_loss_ref(
    scores: Floats, labels: Floats, weights: Floats | None = None, *, delta: float = 1.0
) -> Result:
    """Chen et al. (CVPR 2019): 1 - AP = mean over positives of N_FP(i) / rank(i)."""
    positives, fp, rank_pos = _detection_ranks(scores, labels, delta)
    if not positives:
        return 0.0, False
    w = _weights(weights, len(scores))
    total = sum(w[i] * fp[i] / (rank_pos[i] + fp[i]) for i in positives)
    return total / len(positives), True


def alrp_loss_ref(
    scores: Floats,
    labels: Floats,
    weights: Floats | None = None,
    *,
    delta: float = 0.5,
    min_positive_iou: float = 0.5,
) -> Result:
    """Oksuz et al. (NeurIPS 2020): the classification component of aLRP,
    L_cls = mean over positives of N_FP(i) / rank(i) (``min_positive_iou`` only enters the
    error-driven update, not the value)."""
    del min_positive_iou
    return ap_loss_ref(scores, labels, weights, delta=delta)


def rank_sort_ref(
    scores: Floats, labels: Floats, weights: Floats | None = None, *, delta: float = 0.5
) -> Result:
    """Oksuz et al. (ICCV 2021): mean over positives of the ranking error N_FP(i) / rank(i)
    plus the sorting error (current minus target), with IoU targets q = min(label, 1) and the
    anchor itself counted once in its own sets."""
    positives, fp, rank_pos = _detection_ranks(scores, labels, delta)
    if not positives:
        return 0.0, False
    w = _weights(weights, len(scores))
    q = [min(1.0, y) for y in labels]
    total = 0.0
    for i in positives:

        def h(k: int, i: int = i) -> float:
            return 1.0 if k == i else interpolated_step(scores[k] - scores[i], delta)

        ranking = fp[i] / (rank_pos[i] + fp[i])
        current = sum(h(k) * (1.0 - q[k]) for k in positives) / rank_pos[i]
        above = [k for k in positives if q[k] >= q[i]]
        target = sum(h(k) * (1.0 - q[k]) for k in above) / sum(h(k) for k in above)
        total += w[i] * (ranking + current - target)
    return total / len(positives), True


# ----------------------------------------------------------------------------------------------
# Recommendation: positives have label > 0, negatives label 0


def _positives_negatives(labels: Floats) -> tuple[list[int], list[int]]:
    if any(y < 0 for y in labels):
        raise ValueError("recommendation losses need labels >= 0")
    positives = [i for i in range(len(labels)) if labels[i] > 0]
    negatives = [j for j in range(len(labels)) if labels[j] == 0]
    return positives, negatives


def sampled_softmax_ref(
    scores: Floats,
    labels: Floats,
    weights: Floats | None = None,
    *,
    temperature: float = 1.0,
    log_q: Floats | None = None,
) -> Result:
    """Yi et al. (RecSys 2019): softmax cross-entropy of the logits s_j / tau - log Q_j (every
    candidate corrected), the target the labels over their sum."""
    n = len(scores)
    _positives_negatives(labels)
    total = sum(labels)
    if n == 0 or total <= 0:
        return 0.0, False
    q = [0.0] * n if log_q is None else list(log_q)
    log_p = log_softmax([scores[j] / temperature - q[j] for j in range(n)])
    w = _weights(weights, n)
    return -sum(w[i] * labels[i] / total * log_p[i] for i in range(n)), True


def _negative_softmax(scores: Floats, negatives: list[int]) -> dict[int, float]:
    top = max(scores[j] for j in negatives)
    e = {j: math.exp(scores[j] - top) for j in negatives}
    z = sum(e.values())
    return {j: e[j] / z for j in negatives}


def bpr_max_ref(
    scores: Floats, labels: Floats, weights: Floats | None = None, *, regularization: float = 1.0
) -> Result:
    """Hidasi and Karatzoglou (CIKM 2018): for each positive i,
    -log sum_j p_j sigma(s_i - s_j) + lambda sum_j p_j s_j^2 with p the softmax of the
    negatives' scores; the mean over the positives."""
    positives, negatives = _positives_negatives(labels)
    if not positives or not negatives:
        return 0.0, False
    p = _negative_softmax(scores, negatives)
    w = _weights(weights, len(scores))
    penalty = sum(p[j] * scores[j] ** 2 for j in negatives)
    total = 0.0
    for i in positives:
        mix = sum(p[j] * sigmoid(scores[i] - scores[j]) for j in negatives)
        total += w[i] * (-math.log(mix) + regularization * penalty)
    return total / len(positives), True


def top1_max_ref(
    scores: Floats, labels: Floats, weights: Floats | None = None, *, regularization: float = 1.0
) -> Result:
    """Hidasi and Karatzoglou (CIKM 2018): for each positive i,
    sum_j p_j (sigma(s_j - s_i) + lambda sigma(s_j^2)); the mean over the positives."""
    positives, negatives = _positives_negatives(labels)
    if not positives or not negatives:
        return 0.0, False
    p = _negative_softmax(scores, negatives)
    w = _weights(weights, len(scores))
    total = 0.0
    for i in positives:
        term = sum(
            p[j] * (sigmoid(scores[j] - scores[i]) + regularization * sigmoid(scores[j] ** 2))
            for j in negatives
        )
        total += w[i] * term
    return total / len(positives), True


def gbce_ref(
    scores: Floats,
    labels: Floats,
    weights: Floats | None = None,
    *,
    sampling_rate: float | None = None,
    num_negatives: int | None = None,
    num_items: int | None = None,
    calibration: float = 0.75,
) -> Result:
    """Petrov and Macdonald (RecSys 2023): -log sigma(s_i)^beta for the positives (their mean)
    and -log(1 - sigma(s_j)) summed over the negatives, with
    beta = alpha (t (1 - 1/alpha) + 1/alpha) and alpha = k / (|I| - 1) or the given rate."""
    if sampling_rate is not None:
        alpha = sampling_rate
    else:
        if num_negatives is None or num_items is None:
            raise TypeError("gbce needs sampling_rate or num_negatives and num_items")
        alpha = num_negatives / (num_items - 1)
    beta = alpha * (calibration * (1.0 - 1.0 / alpha) + 1.0 / alpha)
    positives, negatives = _positives_negatives(labels)
    if not positives:
        return 0.0, False
    w = _weights(weights, len(scores))
    positive_term = sum(w[i] * -beta * math.log(sigmoid(scores[i])) for i in positives)
    # 1 - sigma(s) = sigma(-s)
    negative_term = sum(w[j] * -math.log(sigmoid(-scores[j])) for j in negatives)
    return positive_term / len(positives) + negative_term, True


def ccl_ref(
    scores: Floats,
    labels: Floats,
    weights: Floats | None = None,
    *,
    margin: float = 0.5,
    negative_weight: float = 10.0,
) -> Result:
    """Mao et al. (CIKM 2021), SimpleX: the mean over the positives of max(0, 1 - s_i) plus
    negative_weight times the mean over the negatives of max(0, s_j - margin)."""
    positives, negatives = _positives_negatives(labels)
    if not positives:
        return 0.0, False
    w = _weights(weights, len(scores))
    value = sum(w[i] * max(0.0, 1.0 - scores[i]) for i in positives) / len(positives)
    if negatives:
        pushed = sum(w[j] * max(0.0, scores[j] - margin) for j in negatives)
        value += negative_weight * pushed / len(negatives)
    return value, True


# ----------------------------------------------------------------------------------------------
# Adversarial: elementwise on logits


def discriminator_ref(real: float, fake: float, kind: str = "non_saturating") -> float:
    if kind == "non_saturating":
        return softplus(-real) + softplus(fake)
    if kind == "hinge":
        return max(0.0, 1.0 - real) + max(0.0, 1.0 + fake)
    if kind == "least_squares":
        return 0.5 * (real - 1.0) ** 2 + 0.5 * fake**2
    raise ValueError(kind)


def generator_ref(fake: float, kind: str = "non_saturating") -> float:
    if kind == "non_saturating":
        return softplus(-fake)
    if kind == "hinge":
        return -fake
    if kind == "least_squares":
        return 0.5 * (fake - 1.0) ** 2
    raise ValueError(kind)


# ----------------------------------------------------------------------------------------------
# Reduction over lists


def reduce_ref(
    results: Sequence[Result],
    reduction: str = "mean",
    list_weights: Floats | None = None,
) -> float | list[float]:
    """Reduce per-list ``(value, valid)`` results.

    ``"none"``: the value of each list, 0 for an invalid list. ``"sum"``: sum of ``w_b * value``
    over valid lists. ``"mean"``: that sum divided by the sum of ``w_b`` over valid lists (0 when
    no list is valid).
    """
    w = _weights(list_weights, len(results))
    if reduction == "none":
        return [value if valid else 0.0 for value, valid in results]
    total = sum(w[b] * value for b, (value, valid) in enumerate(results) if valid)
    if reduction == "sum":
        return total
    if reduction != "mean":
        raise ValueError(reduction)
    denominator = sum(w[b] for b, (_, valid) in enumerate(results) if valid)
    return total / denominator if denominator != 0 else total


#: Registered loss name -> reference of one list.
REFERENCES: dict[str, Callable[..., Result]] = {
    "mse": mse_ref,
    "mae": mae_ref,
    "smooth_l1": smooth_l1_ref,
    "sigmoid_ce": sigmoid_ce_ref,
    "softmax_ce": softmax_ce_ref,
    "kl_div": kl_div_ref,
    "hinge": hinge_ref,
    "ranknet": ranknet_ref,
    "pairwise_hinge": pairwise_hinge_ref,
    "lambdarank": lambdarank_ref,
    "lambdaloss": lambdaloss_ref,
    "pairwise": pairwise_ref,
    "bpr": bpr_ref,
    "listnet": listnet_ref,
    "listmle": listmle_ref,
    "approx_ndcg": approx_ndcg_ref,
    "neural_ndcg": neural_ndcg_ref,
    "xe_ndcg": xe_ndcg_ref,
    "gumbel_approx_ndcg": gumbel_approx_ndcg_ref,
    "pirank": pirank_ref,
    "position_aware_listmle": position_aware_listmle_ref,
    "rank_cosine": rank_cosine_ref,
    "soft_rank_ndcg": soft_rank_ndcg_ref,
    "ap_loss": ap_loss_ref,
    "alrp_loss": alrp_loss_ref,
    "rank_sort": rank_sort_ref,
    "sampled_softmax": sampled_softmax_ref,
    "bpr_max": bpr_max_ref,
    "top1_max": top1_max_ref,
    "gbce": gbce_ref,
    "ccl": ccl_ref,
}

"""Float64 loop references for the pair and tuple losses, written from the papers' formulas.

Each takes a similarity matrix ``s`` (a float64 tensor) and Python sets of positive and negative
``(anchor, candidate)`` pairs, and returns ``(mean over valid anchors, per-anchor values,
valid flags)``. Slow, obvious, independent of :mod:`rankloss.functional.tuples`.
"""

from __future__ import annotations

import math


def _rows(n, pairs):
    return [[j for (a, j) in sorted(pairs) if a == i] for i in range(n)]


def _lse(values):
    top = max(values)
    return top + math.log(sum(math.exp(v - top) for v in values))


def _softplus(x):
    return max(x, 0.0) + math.log1p(math.exp(-abs(x)))


def _result(out, valid):
    kept = [v for v, ok in zip(out, valid) if ok]
    return (sum(kept) / len(kept) if kept else 0.0), out, valid


def lifted_structure(s, pos, neg, key_s, key_neg, margin):
    """Oh Song et al. 2016, the smooth J~ with D = -s: the anchor's and the positive's
    negatives."""
    n = s.shape[0]
    p, q = _rows(n, pos), _rows(n, neg)
    kq = _rows(key_s.shape[0], key_neg)
    out, valid = [], []
    for a in range(n):
        terms = []
        for j in p[a]:
            exps = [margin + float(s[a, k]) for k in q[a]]
            exps += [margin + float(key_s[j, k]) for k in kq[j]]
            if not exps:
                continue
            big_j = _lse(exps) - float(s[a, j])
            terms.append(max(0.0, big_j) ** 2 / 2)
        out.append(sum(terms) / len(terms) if terms else 0.0)
        valid.append(bool(terms))
    return _result(out, valid)


def generalized_lifted_structure(s, pos, neg, margin):
    """Hermans et al. 2017, with D = -s."""
    n = s.shape[0]
    p, q = _rows(n, pos), _rows(n, neg)
    out, valid = [], []
    for a in range(n):
        if not p[a] or not q[a]:
            out.append(0.0)
            valid.append(False)
            continue
        x = _lse([-float(s[a, j]) for j in p[a]]) + _lse([margin + float(s[a, k]) for k in q[a]])
        out.append(max(0.0, x))
        valid.append(True)
    return _result(out, valid)


def n_pairs(s, pos, neg, penalty=None):
    """Sohn 2016: log(1 + sum_n exp(s_an - s_ap)), averaged over positives; plus
    ``penalty[a]`` (the L2 regulariser) for a valid anchor."""
    n = s.shape[0]
    p, q = _rows(n, pos), _rows(n, neg)
    out, valid = [], []
    for a in range(n):
        if not p[a] or not q[a]:
            out.append(0.0)
            valid.append(False)
            continue
        vals = [
            math.log1p(sum(math.exp(float(s[a, k]) - float(s[a, j])) for k in q[a])) for j in p[a]
        ]
        extra = 0.0 if penalty is None else penalty[a]
        out.append(sum(vals) / len(vals) + extra)
        valid.append(True)
    return _result(out, valid)


def angular(queries, keys, pos, neg, angle):
    """Wang et al. 2017 (N-pair form) on L2-normalised embedding vectors (not similarities)."""
    t = math.tan(math.radians(angle)) ** 2
    n = len(queries)
    unit_q = [(x / x.norm()).tolist() for x in queries.double()]
    unit_k = [(x / x.norm()).tolist() for x in keys.double()]

    def dot(u, v):
        return sum(a * b for a, b in zip(u, v))

    p, q = _rows(n, pos), _rows(n, neg)
    out, valid = [], []
    for a in range(n):
        if not p[a] or not q[a]:
            out.append(0.0)
            valid.append(False)
            continue
        vals = []
        for j in p[a]:
            xa, xp = unit_q[a], unit_k[j]
            centre = [u + v for u, v in zip(xa, xp)]
            f = [4 * t * dot(centre, unit_k[k]) - 2 * (1 + t) * dot(xa, xp) for k in q[a]]
            vals.append(math.log1p(sum(math.exp(v) for v in f)))
        out.append(sum(vals) / len(vals))
        valid.append(True)
    return _result(out, valid)


def margin(s, pos, neg, alpha, beta):
    """Wu et al. 2017 with D = -s, beta per anchor (a list) or one number."""
    n = s.shape[0]
    p, q = _rows(n, pos), _rows(n, neg)
    out, valid = [], []
    for a in range(n):
        b = beta[a] if isinstance(beta, list) else beta
        terms = [max(0.0, alpha + b - float(s[a, j])) for j in p[a]]
        terms += [max(0.0, alpha - b + float(s[a, k])) for k in q[a]]
        out.append(sum(terms) / len(terms) if terms else 0.0)
        valid.append(bool(terms))
    return _result(out, valid)


def tuplet_margin(s, pos, neg, margin_degrees, scale):
    """Yu and Tao 2019: log(1 + sum_n exp(scale (cos t_an - cos(t_ap - beta))))."""
    beta = math.radians(margin_degrees)
    n = s.shape[0]
    p, q = _rows(n, pos), _rows(n, neg)
    out, valid = [], []
    for a in range(n):
        if not p[a] or not q[a]:
            out.append(0.0)
            valid.append(False)
            continue
        vals = []
        for j in p[a]:
            theta = math.acos(max(-1.0, min(1.0, float(s[a, j]))))
            shifted = math.cos(theta - beta)
            x = _lse([scale * (float(s[a, k]) - shifted) for k in q[a]])
            vals.append(_softplus(x))
        out.append(sum(vals) / len(vals))
        valid.append(True)
    return _result(out, valid)


def dcl(s, pos, neg, temperature, sigma=None, cosine=None):
    """Yeh et al. 2022 (DCL) and the vMF-weighted DCLW (``sigma`` given)."""
    n = s.shape[0]
    p, q = _rows(n, pos), _rows(n, neg)
    cos = s if cosine is None else cosine
    weight = {}
    if sigma is not None and pos:
        mean = sum(math.exp(float(cos[a, j]) / sigma) for a, j in pos) / len(pos)
        weight = {(a, j): 2 - math.exp(float(cos[a, j]) / sigma) / mean for a, j in pos}
    out, valid = [], []
    for a in range(n):
        if not p[a] or not q[a]:
            out.append(0.0)
            valid.append(False)
            continue
        pos_term = sum(weight.get((a, j), 1.0) * float(s[a, j]) / temperature for j in p[a])
        out.append(-pos_term / len(p[a]) + _lse([float(s[a, k]) / temperature for k in q[a]]))
        valid.append(True)
    return _result(out, valid)


def guided_info_nce(s, pos, neg, guide, temperature, guide_margin=0.0, strategy="absolute"):
    """Solatorio 2024: negatives the guide rates above the positive (less the margin) leave."""
    n = s.shape[0]
    p, q = _rows(n, pos), _rows(n, neg)
    out, valid = [], []
    for a in range(n):
        if not p[a] or not q[a]:
            out.append(0.0)
            valid.append(False)
            continue
        vals = []
        for j in p[a]:
            g = float(guide[a, j])
            shift = guide_margin * abs(g) if strategy == "relative" else guide_margin
            kept = [k for k in q[a] if float(guide[a, k]) <= g - shift]
            z = float(s[a, j]) / temperature
            vals.append(_lse([z] + [float(s[a, k]) / temperature for k in kept]) - z)
        out.append(sum(vals) / len(vals))
        valid.append(True)
    return _result(out, valid)

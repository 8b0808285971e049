"""Float64 loop references for the proxy losses, written from the papers' formulas.

Plain Python floats and ``math``: no torch arithmetic, so they share no code with the library.
Each returns one value per embedding (``proxy_anchor``: per proxy, with its own reductions).
"""

from __future__ import annotations

import math


def _rows(t):
    return [[float(v) for v in row] for row in t.detach().double().reshape(t.shape[0], -1)]


def _unit(v):
    norm = math.sqrt(sum(a * a for a in v))
    norm = max(norm, 1e-12)
    return [a / norm for a in v]


def _cos(a, b):
    ua, ub = _unit(a), _unit(b)
    return sum(p * q for p, q in zip(ua, ub))


def _sq_dist(a, b):
    ua, ub = _unit(a), _unit(b)
    return sum((p - q) ** 2 for p, q in zip(ua, ub))


def _logsumexp(values):
    top = max(values)
    return top + math.log(sum(math.exp(v - top) for v in values))


def _centres(proxies):
    """``[C, K, d]`` tensor -> nested lists ``[c][k] -> vector``."""
    c, k, d = proxies.shape
    flat = _rows(proxies.reshape(c * k, d))
    return [[flat[i * k + j] for j in range(k)] for i in range(c)]


def _softmax_ce(logits, target):
    return _logsumexp(logits) - logits[target]


def proxy_nca(x, y, proxies, temperature=1.0):
    xs, ps = _rows(x), _rows(proxies)
    out = []
    for i, xi in enumerate(xs):
        yi = int(y[i])
        d = [_sq_dist(xi, p) for p in ps]
        others = [-d[c] / temperature for c in range(len(ps)) if c != yi]
        out.append(-(-d[yi] / temperature) + _logsumexp(others))
    return out


def proxy_nca_pp(x, y, proxies, temperature=1 / 9):
    xs, ps = _rows(x), _rows(proxies)
    out = []
    for i, xi in enumerate(xs):
        logits = [-_sq_dist(xi, p) / temperature for p in ps]
        out.append(_softmax_ce(logits, int(y[i])))
    return out


def proxy_anchor(x, y, proxies, margin=0.1, alpha=32.0, weights=None, reduction="mean"):
    """The paper's loss; ``"none"``: per proxy pos + neg; ``"sum"``: their sum."""
    xs, ps = _rows(x), _rows(proxies)
    w = [1.0] * len(xs) if weights is None else [float(v) for v in weights]
    pos, neg, with_pos = [], [], []
    for c, p in enumerate(ps):
        sp = sum(
            w[i] * math.exp(-alpha * (_cos(xi, p) - margin))
            for i, xi in enumerate(xs)
            if int(y[i]) == c and w[i] > 0
        )
        sn = sum(
            w[i] * math.exp(alpha * (_cos(xi, p) + margin))
            for i, xi in enumerate(xs)
            if int(y[i]) != c and w[i] > 0
        )
        has = any(int(y[i]) == c and w[i] > 0 for i in range(len(xs)))
        pos.append(math.log1p(sp) if has else 0.0)
        neg.append(math.log1p(sn))
        with_pos.append(has)
    if reduction == "none":
        return [a + b for a, b in zip(pos, neg)]
    if reduction == "sum":
        return sum(pos) + sum(neg)
    return sum(pos) / max(sum(with_pos), 1) + sum(neg) / len(ps)


def normalized_softmax(x, y, proxies, temperature=0.05):
    xs, ps = _rows(x), _rows(proxies)
    return [
        _softmax_ce([_cos(xi, p) / temperature for p in ps], int(y[i])) for i, xi in enumerate(xs)
    ]


def cosface(x, y, proxies, margin=0.35, scale=64.0):
    xs, ps = _rows(x), _rows(proxies)
    out = []
    for i, xi in enumerate(xs):
        yi = int(y[i])
        logits = [scale * (_cos(xi, p) - (margin if c == yi else 0.0)) for c, p in enumerate(ps)]
        out.append(_softmax_ce(logits, yi))
    return out


def _arc_target(cos, margin, easy_margin):
    theta = math.acos(max(-1.0, min(1.0, cos)))
    if easy_margin:
        return math.cos(theta + margin) if cos > 0 else cos
    if theta + margin < math.pi:
        return math.cos(theta + margin)
    return cos - margin * math.sin(margin)


def _arcface_from_cos(cos_rows, y, margin, scale, easy_margin):
    out = []
    for i, row in enumerate(cos_rows):
        yi = int(y[i])
        logits = [
            scale * (_arc_target(c, margin, easy_margin) if j == yi else c)
            for j, c in enumerate(row)
        ]
        out.append(_softmax_ce(logits, yi))
    return out


def arcface(x, y, proxies, margin=0.5, scale=64.0, easy_margin=False):
    xs, ps = _rows(x), _rows(proxies)
    cos_rows = [[_cos(xi, p) for p in ps] for xi in xs]
    return _arcface_from_cos(cos_rows, y, margin, scale, easy_margin)


def sub_center_arcface(x, y, proxies, margin=0.5, scale=64.0, easy_margin=False):
    xs, centres = _rows(x), _centres(proxies)
    cos_rows = [[max(_cos(xi, p) for p in cls) for cls in centres] for xi in xs]
    return _arcface_from_cos(cos_rows, y, margin, scale, easy_margin)


def soft_triple_regularizer(proxies, eps=1e-5):
    centres = _centres(proxies)
    c, k = len(centres), len(centres[0])
    if k < 2:
        return 0.0
    total = 0.0
    for cls in centres:
        for a in range(k):
            for b in range(a + 1, k):
                total += math.sqrt(2.0 + eps - 2.0 * _cos(cls[a], cls[b]))
    return total / (c * k * (k - 1))


def soft_triple(
    x,
    y,
    proxies,
    scale=20.0,
    center_temperature=0.1,
    margin=0.01,
    center_regularization=0.2,
):
    xs, centres = _rows(x), _centres(proxies)
    reg = center_regularization * soft_triple_regularizer(proxies)
    out = []
    for i, xi in enumerate(xs):
        yi = int(y[i])
        logits = []
        for c, cls in enumerate(centres):
            sims = [_cos(xi, p) for p in cls]
            top = max(s / center_temperature for s in sims)
            e = [math.exp(s / center_temperature - top) for s in sims]
            total = sum(e)
            s_c = sum(ei / total * s for ei, s in zip(e, sims))
            logits.append(scale * (s_c - (margin if c == yi else 0.0)))
        out.append(_softmax_ce(logits, yi) + reg)
    return out


#: name -> reference (per embedding unless noted).
REFERENCES = {
    "proxy_nca": proxy_nca,
    "proxy_nca_pp": proxy_nca_pp,
    "normalized_softmax": normalized_softmax,
    "cosface": cosface,
    "arcface": arcface,
    "sub_center_arcface": sub_center_arcface,
    "soft_triple": soft_triple,
}

"""Float64 loop references for the embedding losses and miners: slow, obvious, independent."""

from __future__ import annotations

import math

import torch


def similarity(x, y, kind):
    n, m = len(x), len(y)
    out = torch.zeros(n, m, dtype=torch.float64)
    for i in range(n):
        for j in range(m):
            a, b = x[i].double(), y[j].double()
            if kind == "dot":
                out[i, j] = (a * b).sum()
            elif kind == "cosine":
                out[i, j] = (a * b).sum() / (a.norm() * b.norm())
            elif kind == "neg_euclidean":
                out[i, j] = -((a - b) ** 2).sum().sqrt()
            else:
                out[i, j] = -((a - b) ** 2).sum()
    return out


def label_pairs(labels, ref_labels=None):
    """Python sets of positive and negative (i, j) pairs, labels form."""
    labels = [int(v) for v in labels]
    cands = labels if ref_labels is None else [int(v) for v in ref_labels]
    pos, neg = set(), set()
    for i, a in enumerate(labels):
        for j, b in enumerate(cands):
            if ref_labels is None and i == j:
                continue
            (pos if a == b else neg).add((i, j))
    return pos, neg


def candidates_labels(embeddings, labels, ref_embeddings=None, ref_labels=None):
    """(queries, keys, positive set, negative set) for the labels form with appended refs."""
    n = len(labels)
    keys = embeddings if ref_embeddings is None else torch.cat([embeddings, ref_embeddings])
    pos, neg = set(), set()
    for i in range(n):
        for j in range(len(keys)):
            if j == i:
                continue
            if j < n:
                same = int(labels[i]) == int(labels[j])
            elif ref_labels is None:
                same = False
            else:
                same = int(labels[i]) == int(ref_labels[j - n])
            (pos if same else neg).add((i, j))
    return embeddings, keys, pos, neg


def candidates_pairs(queries, keys, extra=None, pair_labels=None, mode="positive"):
    """(queries, keys, pos, neg) for the (queries, keys) form; ``extra`` rows are negatives."""
    n = len(queries)
    allkeys = keys if extra is None else torch.cat([keys, extra])
    pos, neg = set(), set()
    for i in range(n):
        for j in range(len(allkeys)):
            if j >= n:
                neg.add((i, j))
            elif j == i:
                pos.add((i, j))
            elif pair_labels is not None and int(pair_labels[i]) == int(pair_labels[j]):
                if mode == "positive":
                    pos.add((i, j))
            else:
                neg.add((i, j))
    return queries, allkeys, pos, neg


def _rows(n, pos, neg):
    return [[j for (a, j) in sorted(pos) if a == i] for i in range(n)], [
        [j for (a, j) in sorted(neg) if a == i] for i in range(n)
    ]


def _lse(values):
    if not values:
        return -math.inf
    m = max(values)
    return m + math.log(sum(math.exp(v - m) for v in values))


def _mean(values):
    return sum(values) / len(values)


def _reduce(per_anchor, valid):
    vals = [v for v, ok in zip(per_anchor, valid) if ok]
    return _mean(vals) if vals else 0.0


def contrastive(s, pos, neg, pos_margin=1.0, neg_margin=0.0, squared=False):
    p, q = _rows(s.shape[0], pos, neg)
    power = 2 if squared else 1
    out, valid = [], []
    for i in range(s.shape[0]):
        v = 0.0
        if p[i]:
            v += _mean([max(0.0, pos_margin - float(s[i, j])) ** power for j in p[i]])
        if q[i]:
            v += _mean([max(0.0, float(s[i, j]) - neg_margin) ** power for j in q[i]])
        out.append(v)
        valid.append(bool(p[i] or q[i]))
    return _reduce(out, valid)


def triplet(s, pos, neg, margin=0.1, soft=False):
    p, q = _rows(s.shape[0], pos, neg)
    out, valid = [], []
    for i in range(s.shape[0]):
        vals = []
        for a in p[i]:
            for b in q[i]:
                x = float(s[i, b]) - float(s[i, a])
                vals.append(math.log1p(math.exp(x)) if soft else max(0.0, x + margin))
        out.append(_mean(vals) if vals else 0.0)
        valid.append(bool(vals))
    return _reduce(out, valid)


def info_nce(s, pos, neg, temperature):
    p, q = _rows(s.shape[0], pos, neg)
    out, valid = [], []
    for i in range(s.shape[0]):
        negs = [float(s[i, j]) / temperature for j in q[i]]
        if not p[i] or not negs:
            out.append(0.0)
            valid.append(False)
            continue
        vals = []
        for j in p[i]:
            z = float(s[i, j]) / temperature
            vals.append(_lse([z] + negs) - z)
        out.append(_mean(vals))
        valid.append(True)
    return _reduce(out, valid), out, valid


def supcon(s, pos, neg, temperature):
    p, q = _rows(s.shape[0], pos, neg)
    out, valid = [], []
    for i in range(s.shape[0]):
        if not p[i]:
            out.append(0.0)
            valid.append(False)
            continue
        denom = _lse([float(s[i, j]) / temperature for j in p[i] + q[i]])
        out.append(_mean([denom - float(s[i, j]) / temperature for j in p[i]]))
        valid.append(True)
    return _reduce(out, valid)


def multi_similarity(s, pos, neg, alpha=2.0, beta=50.0, base=0.5):
    p, q = _rows(s.shape[0], pos, neg)
    out, valid = [], []
    for i in range(s.shape[0]):
        v = 0.0
        if p[i]:
            v += math.log1p(sum(math.exp(-alpha * (float(s[i, j]) - base)) for j in p[i])) / alpha
        if q[i]:
            v += math.log1p(sum(math.exp(beta * (float(s[i, j]) - base)) for j in q[i])) / beta
        out.append(v)
        valid.append(bool(p[i] or q[i]))
    return _reduce(out, valid)


def circle(s, pos, neg, margin=0.4, gamma=80.0):
    p, q = _rows(s.shape[0], pos, neg)
    out, valid = [], []
    for i in range(s.shape[0]):
        if not p[i] or not q[i]:
            out.append(0.0)
            valid.append(False)
            continue
        lp = _lse(
            [
                -gamma * max(0.0, 1 + margin - float(s[i, j])) * (float(s[i, j]) - 1 + margin)
                for j in p[i]
            ]
        )
        ln = _lse(
            [gamma * max(0.0, float(s[i, j]) + margin) * (float(s[i, j]) - margin) for j in q[i]]
        )
        x = lp + ln
        out.append(max(x, 0.0) + math.log1p(math.exp(-abs(x))))
        valid.append(True)
    return _reduce(out, valid)


# ------------------------------------------------------------------------------------- miners


def batch_hard(s, pos, neg):
    p, q = _rows(s.shape[0], pos, neg)
    out = set()
    for i in range(s.shape[0]):
        if p[i] and q[i]:
            hp = min(p[i], key=lambda j: (float(s[i, j]), j))
            hn = max(q[i], key=lambda j: (float(s[i, j]), -j))
            out.add((i, hp, hn))
    return out


def semi_hard(s, pos, neg, margin=None):
    p, q = _rows(s.shape[0], pos, neg)
    out = set()
    for i in range(s.shape[0]):
        for a in p[i]:
            sap = float(s[i, a])
            ok = [
                b
                for b in q[i]
                if float(s[i, b]) < sap and (margin is None or float(s[i, b]) > sap - margin)
            ]
            if ok:
                best = max(float(s[i, b]) for b in ok)
                out.add((i, a, tuple(b for b in ok if float(s[i, b]) == best)))
    return out


def margin_triplets(s, pos, neg, margin, kind):
    p, q = _rows(s.shape[0], pos, neg)
    out = set()
    for i in range(s.shape[0]):
        for a in p[i]:
            for b in q[i]:
                d = float(s[i, a]) - float(s[i, b])
                keep = {
                    "violating": d < margin,
                    "hard": d < 0,
                    "semihard": 0 <= d < margin,
                    "easy": d >= margin,
                }[kind]
                if keep:
                    out.add((i, a, b))
    return out


def multi_similarity_pairs(s, pos, neg, epsilon):
    p, q = _rows(s.shape[0], pos, neg)
    out = set()
    for i in range(s.shape[0]):
        if not p[i] or not q[i]:
            continue
        min_pos = min(float(s[i, j]) for j in p[i])
        max_neg = max(float(s[i, j]) for j in q[i])
        out |= {(i, j, False) for j in q[i] if float(s[i, j]) + epsilon > min_pos}
        out |= {(i, j, True) for j in p[i] if float(s[i, j]) - epsilon < max_neg}
    return out


def distance_weights(s, neg, dim, cutoff=0.5, nonzero_loss_cutoff=1.4):
    n, m = s.shape
    out = torch.zeros(n, m, dtype=torch.float64)
    for i in range(n):
        logs = {}
        for j in range(m):
            if (i, j) not in neg:
                continue
            d = max(math.sqrt(max(0.0, 2 - 2 * float(s[i, j]))), cutoff)
            if d < nonzero_loss_cutoff:
                logs[j] = -(dim - 2) * math.log(d) - (dim - 3) / 2 * math.log(
                    max(1 - d * d / 4, 1e-8)
                )
        if not logs:
            logs = {j: 0.0 for j in range(m) if (i, j) in neg}
        if not logs:
            continue
        top = max(logs.values())
        total = sum(math.exp(v - top) for v in logs.values())
        for j, v in logs.items():
            out[i, j] = math.exp(v - top) / total
    return out

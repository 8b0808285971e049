"""FastAP, Smooth-AP and the recall@k surrogate against float64 loop references and
pytorch-metric-learning.

The generic contract (gradcheck, both call forms, reductions, half precision, extreme inputs,
batch order, nothing to learn) is in ``tests/embedding/test_losses.py``.
"""

from __future__ import annotations

import math

import pytest
import torch

import rankloss
from rankloss.functional import fast_ap_loss, recall_at_k_loss, smooth_ap_loss
from rankloss.losses import FastAPLoss, RecallAtKLoss, SmoothAPLoss
from tests.embedding import reference as ref

NAMES = ("fast_ap", "smooth_ap", "recall_at_k")
NAN = float("nan")

#: hyper-parameter -> (bad values: ValueError, wrong types: TypeError) at construction, used by
#: tests/embedding/test_construction.py.
CONSTRUCTION = {
    FastAPLoss: {"num_bins": ([0, -3], [2.5, "10", True, None])},
    SmoothAPLoss: {"temperature": ([0.0, -0.01, NAN], ["0.01", None])},
    RecallAtKLoss: {
        "cutoffs": ([(0, 1, 2, 4, 8), (1, -2, 4, 8, 16)], ["1", 3, (1.5, 2, 4, 8, 16), None]),
        "temperature": ([0.0, -1.0, NAN], ["0.01", None]),
        "rank_temperatures": ([(0.0, 1, 1, 1, 1), (1.0,)], ["1", None, (1, 2, 4, 8, "16")]),
    },
}


def _sigmoid(x):
    return 1.0 / (1.0 + torch.exp(-x))


def _rows(s, pos, neg):
    """Per query: (positive columns, retrieval-set columns), from index sets."""
    n, m = s.shape
    out = []
    for a in range(n):
        p = [j for j in range(m) if (a, j) in pos]
        o = [j for j in range(m) if (a, j) in pos or (a, j) in neg]
        out.append((p, o, len(o) > len(p) and len(p) > 0))
    return out


def ref_fast_ap(s, pos, neg, num_bins=10):
    """FastAP by loops: histograms of d = 2 - 2s over [0, 4], one query at a time."""
    width = 4.0 / num_bins
    values = []
    for a, (p, o, valid) in enumerate(_rows(s, pos, neg)):
        if not valid:
            values.append(None)
            continue
        h_pos = [0.0] * (num_bins + 1)
        h_all = [0.0] * (num_bins + 1)
        for j in o:
            d = torch.clamp(2.0 - 2.0 * s[a, j], 0.0, 4.0)
            for b in range(num_bins + 1):
                pulse = torch.relu(1.0 - torch.abs(d - b * width) / width)
                h_all[b] = h_all[b] + pulse
                if j in p:
                    h_pos[b] = h_pos[b] + pulse
        total, cum_pos, cum_all = 0.0, 0.0, 0.0
        for b in range(num_bins + 1):
            cum_pos = cum_pos + h_pos[b]
            cum_all = cum_all + h_all[b]
            if float((h_pos[b] * cum_pos).detach()) > 0:
                total = total + h_pos[b] * cum_pos / cum_all
        values.append(1.0 - total / len(p))
    return values


def _soft_rank(s, a, i, cols, temperature):
    r = 1.0
    for j in cols:
        if j != i:
            r = r + _sigmoid((s[a, j] - s[a, i]) / temperature)
    return r


def ref_smooth_ap(s, pos, neg, temperature=0.01):
    values = []
    for a, (p, o, valid) in enumerate(_rows(s, pos, neg)):
        if not valid:
            values.append(None)
            continue
        ap = 0.0
        for i in p:
            ap = ap + _soft_rank(s, a, i, p, temperature) / _soft_rank(s, a, i, o, temperature)
        values.append(1.0 - ap / len(p))
    return values


def ref_recall_at_k(
    s, pos, neg, cutoffs=(1, 2, 4, 8, 16), temperature=0.01, rank_temperatures=(1, 2, 4, 8, 16)
):
    values = []
    for a, (p, o, valid) in enumerate(_rows(s, pos, neg)):
        if not valid:
            values.append(None)
            continue
        recall = 0.0
        for k, t in zip(cutoffs, rank_temperatures, strict=True):
            hits = 0.0
            for i in p:
                hits = hits + _sigmoid((k - _soft_rank(s, a, i, o, temperature)) / t)
            recall = recall + hits / min(k, len(p))
        values.append(1.0 - recall / len(cutoffs))
    return values


REFS = {"fast_ap": ref_fast_ap, "smooth_ap": ref_smooth_ap, "recall_at_k": ref_recall_at_k}
FUNCS = {"fast_ap": fast_ap_loss, "smooth_ap": smooth_ap_loss, "recall_at_k": recall_at_k_loss}


def _mean(values):
    kept = [v for v in values if v is not None]
    return sum(kept) / len(kept) if kept else torch.zeros((), dtype=torch.float64)


def _data(n=10, d=5, classes=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=g, dtype=torch.float64), torch.randint(
        0, classes, (n,), generator=g
    )


def _masks(shape, pos, neg):
    p = torch.zeros(shape, dtype=torch.bool)
    q = torch.zeros(shape, dtype=torch.bool)
    for a, j in pos:
        p[a, j] = True
    for a, j in neg:
        q[a, j] = True
    return p, q


HYPER = {
    "fast_ap": [{}, {"num_bins": 4}],
    "smooth_ap": [{}, {"temperature": 0.3}],
    "recall_at_k": [{}, {"cutoffs": (1, 3), "temperature": 0.2, "rank_temperatures": (0.5, 2.0)}],
}


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("index", [0, 1])
def test_module_matches_loop_reference_values_and_gradients(name, index):
    hyper = HYPER[name][index]
    x, y = _data()
    x.requires_grad_(True)
    got = rankloss.losses.get(name, **hyper)(x, y)
    got.backward()
    z = x.detach().clone().requires_grad_(True)
    unit = torch.nn.functional.normalize(z, dim=1)
    _, _, pos, neg = ref.candidates_labels(z, y)
    want = _mean(REFS[name](unit @ unit.T, pos, neg, **hyper))
    want.backward()
    torch.testing.assert_close(got, want.detach())
    torch.testing.assert_close(x.grad, z.grad)


@pytest.mark.parametrize("name", NAMES)
def test_keys_form_and_per_query_values_match_reference(name):
    q, _ = _data(6, seed=2)
    k, _ = _data(6, seed=3)
    per = rankloss.losses.get(name, reduction="none")(q, keys=k)
    _, keys, pos, neg = ref.candidates_pairs(q, k)
    values = REFS[name](ref.similarity(q, keys, "cosine"), pos, neg)
    torch.testing.assert_close(per, torch.stack([torch.as_tensor(v) for v in values]))


@pytest.mark.parametrize("name", NAMES)
def test_functional_gradcheck_with_masks_and_weights(name):
    g = torch.Generator().manual_seed(4)
    s = (torch.rand(4, 7, generator=g, dtype=torch.float64) * 2 - 1).requires_grad_(True)
    pos = torch.rand(4, 7, generator=g) < 0.35
    neg = ~pos & (torch.rand(4, 7, generator=g) < 0.8)
    w = torch.rand(4, generator=g, dtype=torch.float64) + 0.5
    hyper = {"temperature": 0.2} if name != "fast_ap" else {}
    assert torch.autograd.gradcheck(
        lambda t: FUNCS[name](t, pos, neg, weights=w, **hyper), (s,), atol=1e-6
    )


@pytest.mark.parametrize("name", NAMES)
def test_garbage_outside_the_pairs_changes_nothing(name):
    g = torch.Generator().manual_seed(5)
    s = torch.rand(5, 6, generator=g, dtype=torch.float64) * 2 - 1
    pos = torch.rand(5, 6, generator=g) < 0.4
    neg = ~pos & (torch.rand(5, 6, generator=g) < 0.7)
    dirty = torch.where(pos | neg, s, torch.tensor(math.nan, dtype=torch.float64))
    dirty.requires_grad_(True)
    clean = s.clone().requires_grad_(True)
    a = FUNCS[name](dirty, pos, neg, reduction="none")
    b = FUNCS[name](clean, pos, neg, reduction="none")
    torch.testing.assert_close(a, b)
    a.sum().backward()
    b.sum().backward()
    assert torch.isfinite(dirty.grad).all()
    torch.testing.assert_close(dirty.grad, clean.grad)


@pytest.mark.parametrize("name", NAMES)
def test_queries_without_a_negative_or_positive_are_left_out(name):
    s = torch.tensor([[0.9, 0.1, -0.2], [0.5, 0.4, 0.3], [0.2, 0.0, 0.7]], dtype=torch.float64)
    pos = torch.tensor([[False, True, False], [True, True, True], [False, False, False]])
    neg = torch.tensor([[True, False, True], [False, False, False], [True, True, True]])
    per = FUNCS[name](s, pos, neg, reduction="none")
    assert per[1] == 0 and per[2] == 0 and per[0] > 0
    torch.testing.assert_close(FUNCS[name](s, pos, neg), per[0])


def _exact_ap(scores, relevant):
    order = sorted(range(len(scores)), key=lambda i: -scores[i])
    hits, total = 0, 0.0
    for rank, i in enumerate(order, start=1):
        if relevant[i]:
            hits += 1
            total += hits / rank
    return total / sum(relevant)


def test_smooth_ap_tends_to_one_minus_exact_ap_and_recall_to_exact_recall():
    # With distinct similarities a tiny temperature makes the sigmoids steps: Smooth-AP is then
    # one minus AP, and the recall surrogate with tiny rank temperatures, at half-integer
    # cut-offs' neighbours, one minus recall@k.
    s = torch.tensor([[0.9, 0.7, 0.5, 0.3, 0.1, -0.2]], dtype=torch.float64)
    relevant = [True, False, True, False, False, True]
    pos = torch.tensor([relevant])
    neg = ~pos
    ap = _exact_ap(s[0].tolist(), relevant)
    got = smooth_ap_loss(s, pos, neg, temperature=1e-4)
    torch.testing.assert_close(got, torch.tensor(1.0 - ap, dtype=torch.float64))
    # Ranks of the positives: 1, 3, 6. recall@2 = 1/2, recall@4 = 2/3 (min(4, 3) = 3).
    got = recall_at_k_loss(
        s, pos, neg, cutoffs=(2, 4), temperature=1e-4, rank_temperatures=(1e-3, 1e-3)
    )
    torch.testing.assert_close(got, torch.tensor(1.0 - (1 / 2 + 2 / 3) / 2, dtype=torch.float64))


def test_fast_ap_equals_ap_when_each_distance_is_a_bin_centre():
    # Distances on bin centres fill one bin each: FastAP is then AP with ties per bin.
    s = 1.0 - torch.tensor([[0.0, 0.4, 0.8, 1.2, 1.6]], dtype=torch.float64) / 2  # d = 2 - 2s
    relevant = [True, False, True, False, True]
    pos = torch.tensor([relevant])
    got = fast_ap_loss(s, pos, ~pos, num_bins=10)
    ap = _exact_ap(s[0].tolist(), relevant)
    torch.testing.assert_close(got, torch.tensor(1.0 - ap, dtype=torch.float64))


def test_perfect_and_reversed_rankings():
    s = torch.tensor([[0.9, 0.8, -0.5, -0.6]], dtype=torch.float64)
    pos = torch.tensor([[True, True, False, False]])
    assert smooth_ap_loss(s, pos, ~pos).item() < 1e-6
    assert smooth_ap_loss(-s, pos, ~pos).item() > 0.5
    assert fast_ap_loss(s, pos, ~pos).item() < 1e-12
    assert fast_ap_loss(-s, pos, ~pos).item() > 0.5
    assert recall_at_k_loss(s, pos, ~pos) < recall_at_k_loss(-s, pos, ~pos)


def test_ties_are_symmetric():
    s = torch.zeros(1, 4, dtype=torch.float64)
    pos = torch.tensor([[True, False, True, False]])
    # Every sigmoid is 1/2: ranks 1 + 3/2 = 2.5 among all, 1.5 among positives.
    torch.testing.assert_close(
        smooth_ap_loss(s, pos, ~pos), torch.tensor(1 - 1.5 / 2.5, dtype=torch.float64)
    )


@pytest.mark.badinput("losses")
def test_bad_hyper_parameters_are_refused_when_built():
    with pytest.raises(ValueError, match="FastAPLoss: num_bins must be a positive integer"):
        FastAPLoss(num_bins=0)
    with pytest.raises(ValueError, match="SmoothAPLoss: temperature must be > 0, got -1"):
        SmoothAPLoss(temperature=-1.0)
    with pytest.raises(
        ValueError, match="rank_temperatures must be 2 values \\(one per cut-off\\), got 1"
    ):
        RecallAtKLoss(cutoffs=(1, 2), rank_temperatures=(1.0,))
    with pytest.raises(TypeError, match="cutoffs must be a non-empty sequence"):
        RecallAtKLoss(cutoffs=())
    with pytest.raises(ValueError, match="recall_at_k_loss: cutoffs must be a positive integer"):
        recall_at_k_loss(torch.zeros(2, 2), torch.ones(2, 2).bool(), torch.ones(2, 2).bool(),
                         cutoffs=(0,), rank_temperatures=(1.0,))  # fmt: skip
    with pytest.raises(ValueError, match="fast_ap_loss: positive has shape"):
        fast_ap_loss(torch.zeros(2, 3), torch.ones(2, 2).bool(), torch.ones(2, 3).bool())


# ------------------------------------------------------------------------ pytorch-metric-learning


def _pml():
    return pytest.importorskip("pytorch_metric_learning.losses")


def _balanced(seed=0, classes=3, per_class=3, d=5):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(classes * per_class, d, generator=g, dtype=torch.float64)
    y = torch.arange(classes).repeat_interleave(per_class)
    return x, y


def _fast_ap_against_pml(x, y):
    pml = _pml()
    a = x.clone().requires_grad_(True)
    b = x.clone().requires_grad_(True)
    ours = FastAPLoss()(a, y)
    theirs = pml.FastAPLoss(num_bins=10)(b, y)
    ours.backward()
    theirs.backward()
    return ours, theirs, a.grad, b.grad


def _smooth_ap_against_pml(x, y):
    pml = _pml()
    a = x.clone().requires_grad_(True)
    b = x.clone().requires_grad_(True)
    # PML ranks the anchor itself among its retrieval set as a positive (similarity 1); the paper
    # leaves the query out. Give our function that very set: they must agree exactly.
    unit = torch.nn.functional.normalize(a, dim=1)
    same = y[:, None] == y[None, :]
    ours = smooth_ap_loss(unit @ unit.T, same, ~same, temperature=0.01)
    theirs = pml.SmoothAPLoss(temperature=0.01)(b, y)
    ours.backward()
    theirs.backward()
    return ours, theirs, a.grad, b.grad


def test_fast_ap_equals_pml_when_every_anchor_has_both_pairs():
    x, y = _data(12, 5, classes=3, seed=7)
    ours, theirs, ga, gb = _fast_ap_against_pml(x, y)
    torch.testing.assert_close(ours, theirs)
    torch.testing.assert_close(ga, gb)


def test_fast_ap_and_pml_leave_out_the_same_anchors():
    # PML averages over anchors with a positive and counts those without a negative (FastAP 1,
    # loss 0); we leave out an anchor without a positive or a negative. In the labels form an
    # anchor lacks negatives only when the batch holds one class: PML then gives 0 up to
    # rounding, and we give an exact, connected 0.
    pml = _pml()
    x, _ = _data(8, 4, seed=8)
    y = torch.tensor([0, 0, 1, 1, 2, 2, 3, 4])  # anchors 6 and 7 have no positive
    ours = FastAPLoss(reduction="none")(x, y)
    assert (ours[6:] == 0).all() and (ours[:6] > 0).all()
    torch.testing.assert_close(FastAPLoss()(x, y), pml.FastAPLoss(num_bins=10)(x, y))
    same = torch.zeros(4, dtype=torch.long)
    assert abs(pml.FastAPLoss()(x[:4], same).item()) < 1e-12
    assert FastAPLoss()(x[:4], same).item() == 0


def test_smooth_ap_equals_pml_with_the_anchor_in_its_own_set():
    # PML stores each anchor's AP in a float32 buffer: agreement is to float32 rounding.
    x, y = _balanced(seed=9)
    ours, theirs, ga, gb = _smooth_ap_against_pml(x, y)
    torch.testing.assert_close(ours, theirs.double(), rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(ga, gb, rtol=1e-5, atol=1e-6)
    # The paper's loss (the anchor left out) is a different number.
    assert (SmoothAPLoss()(x, y) - theirs).abs() > 1e-3


def test_report_peer_differences():
    x, y = _data(12, 5, classes=3, seed=7)
    ours, theirs, ga, gb = _fast_ap_against_pml(x, y)
    print(
        f"\nFastAP vs pytorch-metric-learning FastAPLoss (float64): value "
        f"{(ours - theirs).abs().item():.3e}, gradient {(ga - gb).abs().max().item():.3e}"
    )
    x, y = _balanced(seed=9)
    ours, theirs, ga, gb = _smooth_ap_against_pml(x, y)
    print(
        f"Smooth-AP (anchor in its own set) vs pytorch-metric-learning SmoothAPLoss (float64): "
        f"value {(ours - theirs).abs().item():.3e}, gradient {(ga - gb).abs().max().item():.3e}"
    )
    assert (ours - theirs).abs() < 1e-6

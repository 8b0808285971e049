"""Recommendation losses against float64 loop references written from their papers.

Each reference takes one list (its real candidates only, as Python floats) and follows the
paper's formula with :mod:`math` and plain loops: no torch, no vectorisation, no call into
rankloss. BPR-max and TOP1-max follow Hidasi and Karatzoglou (CIKM 2018, GRU4Rec), gBCE Petrov
and Macdonald (RecSys 2023), CCL Mao et al. (CIKM 2021), the sampled softmax with log-Q
correction Yi et al. (RecSys 2019). The registry-wide suites of ``tests/losses`` cover the
invariances (padding, masking, permutations, half precision, extreme scores, gradcheck).
"""

from __future__ import annotations

import math

import pytest
import torch
from torch.autograd import gradcheck

import rankloss.functional as RF
from rankloss.losses import (
    BPRMaxLoss,
    CCLLoss,
    GBCELoss,
    SampledSoftmaxLoss,
    TOP1MaxLoss,
    available,
    get,
)

# ------------------------------------------------------------------------------------------
# References: one list, plain loops


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x)) if x >= 0 else math.exp(x) / (1.0 + math.exp(x))


def _softmax(values: list[float]) -> list[float]:
    top = max(values)
    exps = [math.exp(v - top) for v in values]
    total = sum(exps)
    return [e / total for e in exps]


def _split(labels):
    positives = [i for i, y in enumerate(labels) if y > 0]
    negatives = [j for j, y in enumerate(labels) if y == 0]
    return positives, negatives


def sampled_softmax_ref(scores, labels, weights=None, *, log_q=None, temperature=1.0):
    n = len(scores)
    w = weights or [1.0] * n
    q = log_q or [0.0] * n
    total = sum(labels)
    if total <= 0:
        return 0.0, False
    logits = [scores[j] / temperature - q[j] for j in range(n)]
    p = _softmax(logits)
    return -sum(w[i] * labels[i] / total * math.log(p[i]) for i in range(n)), True


def bpr_max_ref(scores, labels, weights=None, *, regularization=1.0):
    """GRU4Rec: -log sum_j s_j sigma(r_i - r_j) + lambda sum_j s_j r_j^2, s = softmax over the
    negatives; the mean over the positives."""
    w = weights or [1.0] * len(scores)
    positives, negatives = _split(labels)
    if not positives or not negatives:
        return 0.0, False
    p = _softmax([scores[j] for j in negatives])
    total = 0.0
    for i in positives:
        mix = sum(pj * _sigmoid(scores[i] - scores[j]) for pj, j in zip(p, negatives))
        penalty = sum(pj * scores[j] ** 2 for pj, j in zip(p, negatives))
        total += w[i] * (-math.log(mix) + regularization * penalty)
    return total / len(positives), True


def top1_max_ref(scores, labels, weights=None, *, regularization=1.0):
    """GRU4Rec: sum_j s_j (sigma(r_j - r_i) + sigma(r_j^2)); the mean over the positives."""
    w = weights or [1.0] * len(scores)
    positives, negatives = _split(labels)
    if not positives or not negatives:
        return 0.0, False
    p = _softmax([scores[j] for j in negatives])
    total = 0.0
    for i in positives:
        term = 0.0
        for pj, j in zip(p, negatives):
            term += pj * (
                _sigmoid(scores[j] - scores[i]) + regularization * _sigmoid(scores[j] ** 2)
            )
        total += w[i] * term
    return total / len(positives), True


def gbce_ref(scores, labels, weights=None, *, alpha, t):
    """gSASRec: -(log sigma(s+)^beta + sum_neg log(1 - sigma(s-))), beta = alpha (t (1 - 1/alpha)
    + 1/alpha); the positive term averaged over the positives."""
    w = weights or [1.0] * len(scores)
    positives, negatives = _split(labels)
    if not positives:
        return 0.0, False
    beta = alpha * (t * (1.0 - 1.0 / alpha) + 1.0 / alpha)
    positive = sum(-w[i] * math.log(_sigmoid(scores[i]) ** beta) for i in positives)
    negative = sum(-w[j] * math.log(1.0 - _sigmoid(scores[j])) for j in negatives)
    return positive / len(positives) + negative, True


def ccl_ref(scores, labels, weights=None, *, margin=0.5, negative_weight=10.0):
    """SimpleX: (1 - s+) + w / |N| sum_neg max(0, s- - m); the positive term averaged."""
    w = weights or [1.0] * len(scores)
    positives, negatives = _split(labels)
    if not positives:
        return 0.0, False
    positive = sum(w[i] * max(0.0, 1.0 - scores[i]) for i in positives) / len(positives)
    negative = 0.0
    if negatives:
        negative = sum(w[j] * max(0.0, scores[j] - margin) for j in negatives) / len(negatives)
    return positive + negative_weight * negative, True


def _reduce(results, reduction, list_weights=None):
    w = list_weights or [1.0] * len(results)
    if reduction == "none":
        return [v if ok else 0.0 for v, ok in results]
    total = sum(w[b] * v for b, (v, ok) in enumerate(results) if ok)
    if reduction == "sum":
        return total
    denominator = sum(w[b] for b, (_, ok) in enumerate(results) if ok)
    return total / denominator if denominator else total


# ------------------------------------------------------------------------------------------
# Batches: padding at random positions (holding NaN), one fully masked list, one list without a
# positive, one without a negative, several positives, graded positives.

LENGTHS = [0, 1, 2, 3, 5, 7, 8, 4, 6, 8]
NO_POSITIVE_ROW, NO_NEGATIVE_ROW = 5, 7


def _batch(seed: int, *, cosine: bool = False):
    g = torch.Generator().manual_seed(seed)
    b, n = len(LENGTHS), 8
    scores = torch.randn(b, n, generator=g, dtype=torch.float64) * 1.5
    if cosine:
        scores = torch.tanh(scores)
    labels = (torch.rand(b, n, generator=g, dtype=torch.float64) < 0.3).double()
    labels = labels * torch.randint(1, 4, (b, n), generator=g).double()  # graded positives
    labels[:, 0] = 1.0  # every list but the next ones has a positive
    labels[NO_POSITIVE_ROW] = 0.0
    labels[NO_NEGATIVE_ROW] = 2.0
    mask = torch.zeros(b, n, dtype=torch.bool)
    for row, length in enumerate(LENGTHS):
        if length:
            mask[row, 0] = True
            rest = torch.randperm(n - 1, generator=g)[: length - 1] + 1
            mask[row, rest] = True
    log_q = torch.log(torch.rand(b, n, generator=g, dtype=torch.float64) * 0.9 + 0.05)
    list_weights = torch.rand(b, generator=g, dtype=torch.float64) + 0.25
    item_weights = torch.rand(b, n, generator=g, dtype=torch.float64) + 0.25
    nan = torch.tensor(math.nan, dtype=torch.float64)
    return (
        torch.where(mask, scores, nan),
        torch.where(mask, labels, nan),
        mask,
        torch.where(mask, log_q, nan),
        list_weights,
        torch.where(mask, item_weights, nan),
    )


def _rows(t, mask):
    return [[float(v) for v in row[m]] for row, m in zip(t, mask)]


CASES = [
    ("sampled_softmax", {}, sampled_softmax_ref, {}),
    ("sampled_softmax", {"temperature": 0.3}, sampled_softmax_ref, {"temperature": 0.3}),
    ("bpr_max", {}, bpr_max_ref, {}),
    ("bpr_max", {"regularization": 0.0}, bpr_max_ref, {"regularization": 0.0}),
    ("bpr_max", {"regularization": 2.5}, bpr_max_ref, {"regularization": 2.5}),
    ("top1_max", {}, top1_max_ref, {}),
    ("top1_max", {"regularization": 0.5}, top1_max_ref, {"regularization": 0.5}),
    (
        "gbce",
        {"num_negatives": 7, "num_items": 100},
        gbce_ref,
        {"alpha": 7 / 99, "t": 0.75},
    ),
    ("gbce", {"sampling_rate": 0.2, "calibration": 0.0}, gbce_ref, {"alpha": 0.2, "t": 0.0}),
    ("gbce", {"sampling_rate": 0.05, "calibration": 1.0}, gbce_ref, {"alpha": 0.05, "t": 1.0}),
    ("ccl", {}, ccl_ref, {}),
    (
        "ccl",
        {"margin": -0.2, "negative_weight": 3.0},
        ccl_ref,
        {"margin": -0.2, "negative_weight": 3.0},
    ),
]


@pytest.mark.parametrize("weight_mode", ["none", "list", "item"])
@pytest.mark.parametrize(
    ("name", "hyper", "reference", "ref_hyper"), CASES, ids=[f"{c[0]}-{c[1]}" for c in CASES]
)
def test_matches_the_loop_reference(name, hyper, reference, ref_hyper, weight_mode):
    scores, labels, mask, log_q, list_w, item_w = _batch(11, cosine=name == "ccl")
    function = getattr(RF, f"{name}_loss")
    extra = {"log_q": log_q} if name == "sampled_softmax" else {}
    weights = {"none": None, "list": list_w, "item": item_w}[weight_mode]
    s_rows, y_rows, q_rows = _rows(scores, mask), _rows(labels, mask), _rows(log_q, mask)
    w_rows = _rows(item_w, mask) if weight_mode == "item" else [None] * len(s_rows)
    results = []
    for b, (s, y, w) in enumerate(zip(s_rows, y_rows, w_rows)):
        kwargs = {"log_q": q_rows[b]} if extra else {}
        results.append(reference(s, y, w, **kwargs, **ref_hyper))
    valid = [ok for _, ok in results]
    assert not valid[0] and not valid[NO_POSITIVE_ROW] and sum(valid) >= 6
    list_weights = list_w.tolist() if weight_mode == "list" else None
    for reduction in ("none", "sum", "mean"):
        actual = function(
            scores, labels, mask, weights=weights, reduction=reduction, **extra, **hyper
        )
        expected = torch.tensor(_reduce(results, reduction, list_weights), dtype=torch.float64)
        torch.testing.assert_close(actual, expected, rtol=1e-10, atol=1e-12)


def test_without_log_q_the_sampled_softmax_is_the_softmax_ce():
    scores, labels, mask, _, _, item_w = _batch(3)
    for weights in (None, item_w):
        torch.testing.assert_close(
            RF.sampled_softmax_loss(scores, labels, mask, weights=weights, reduction="none"),
            RF.softmax_ce_loss(scores, labels, mask, weights=weights, reduction="none"),
        )


def test_a_uniform_log_q_changes_nothing_and_log_q_is_subtracted_after_the_temperature():
    scores, labels, mask, log_q, _, _ = _batch(5)
    uniform = torch.full_like(scores, math.log(0.01))
    base = RF.sampled_softmax_loss(scores, labels, mask, temperature=0.5, reduction="none")
    torch.testing.assert_close(
        RF.sampled_softmax_loss(scores, labels, mask, uniform, temperature=0.5, reduction="none"),
        base,
    )
    # z = s / tau - log Q: the correction is not scaled by the temperature.
    shifted = torch.where(mask, scores - 0.5 * log_q, scores)
    torch.testing.assert_close(
        RF.sampled_softmax_loss(scores, labels, mask, log_q, temperature=0.5, reduction="none"),
        RF.sampled_softmax_loss(shifted, labels, mask, temperature=0.5, reduction="none"),
    )


def test_bpr_max_with_one_negative_is_bpr_plus_its_penalty():
    # With a single negative the softmax weight is 1: -log sigma(s+ - s-) + lambda s-^2.
    scores = torch.tensor([[1.3, -0.4]], dtype=torch.float64)
    labels = torch.tensor([[1.0, 0.0]], dtype=torch.float64)
    expected = -math.log(_sigmoid(1.7)) + 0.5 * 0.16
    value = RF.bpr_max_loss(scores, labels, regularization=0.5)
    assert value.item() == pytest.approx(expected, rel=1e-12)
    torch.testing.assert_close(
        RF.bpr_max_loss(scores, labels, regularization=0.0), RF.bpr_loss(scores, labels)
    )


def test_top1_max_with_one_negative_is_top1():
    scores = torch.tensor([[0.2, 0.9]], dtype=torch.float64)
    labels = torch.tensor([[1.0, 0.0]], dtype=torch.float64)
    expected = _sigmoid(0.7) + _sigmoid(0.81)
    assert RF.top1_max_loss(scores, labels).item() == pytest.approx(expected, rel=1e-12)


def test_gbce_beta_forms_agree_and_calibration_zero_is_bce():
    assert RF.gbce_beta(num_negatives=256, num_items=10_001) == pytest.approx(
        RF.gbce_beta(sampling_rate=256 / 10_000)
    )
    alpha = 0.03
    for t in (0.0, 0.25, 0.75, 1.0):
        assert RF.gbce_beta(sampling_rate=alpha, calibration=t) == pytest.approx(
            alpha * (t * (1 - 1 / alpha) + 1 / alpha)
        )
    assert RF.gbce_beta(sampling_rate=alpha, calibration=1.0) == pytest.approx(alpha)
    scores, labels, mask, _, _, _ = _batch(2)
    # t = 0: plain binary cross-entropy (a sum over the negatives, the mean over the positives).
    bce = torch.nn.functional.binary_cross_entropy_with_logits
    value = RF.gbce_loss(scores[1:2], labels[1:2], mask[1:2], sampling_rate=0.1, calibration=0.0)
    s, y = scores[1][mask[1]], (labels[1][mask[1]] > 0).double()
    per_item = bce(s, y, reduction="none")
    expected = per_item[y == 1].mean() + per_item[y == 0].sum()
    torch.testing.assert_close(value, expected)


def test_ccl_is_the_recbole_simplex_form_on_cosines():
    # RecBole's SimpleX: relu(1 - pos_cos) + negative_weight * mean(relu(neg_cos - margin)).
    g = torch.Generator().manual_seed(0)
    pos = torch.rand(6, 1, generator=g, dtype=torch.float64) * 2 - 1
    neg = torch.rand(6, 9, generator=g, dtype=torch.float64) * 2 - 1
    expected = (torch.relu(1 - pos) + torch.relu(neg - 0.5).mean(1, keepdim=True) * 10.0).mean()
    scores = torch.cat([pos, neg], dim=1)
    labels = torch.zeros_like(scores)
    labels[:, 0] = 1.0
    torch.testing.assert_close(RF.ccl_loss(scores, labels), expected)


@pytest.mark.parametrize("name", ["sampled_softmax", "bpr_max", "top1_max", "gbce", "ccl"])
def test_a_list_without_a_positive_is_a_connected_zero_left_out_of_the_mean(name):
    hyper = {"sampling_rate": 0.1} if name == "gbce" else {}
    function = getattr(RF, f"{name}_loss")
    scores = torch.tensor([[0.5, -0.3, 0.2], [0.1, 0.4, -0.6]], dtype=torch.float64)
    labels = torch.tensor([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0]], dtype=torch.float64)
    s = scores.clone().requires_grad_(True)
    per_list = function(s, labels, reduction="none", **hyper)
    assert per_list[0] == 0 and per_list[1] > 0
    torch.testing.assert_close(function(scores, labels, **hyper), per_list[1].detach())
    alone = function(s[:1], labels[:1], **hyper)
    assert alone.item() == 0 and alone.requires_grad
    alone.backward()
    assert (s.grad == 0).all()


# ------------------------------------------------------------------------------------------
# Gradients


@pytest.mark.parametrize(
    ("name", "hyper"),
    [
        ("sampled_softmax", {"temperature": 0.7}),
        ("bpr_max", {"regularization": 0.3}),
        ("top1_max", {"regularization": 2.0}),
        ("gbce", {"sampling_rate": 0.1, "calibration": 0.6}),
        ("ccl", {"margin": 0.1, "negative_weight": 4.0}),
    ],
)
def test_gradcheck_with_padding_and_item_weights(name, hyper):
    scores, labels, mask, log_q, _, item_w = _batch(21, cosine=name == "ccl")
    clean = torch.where(mask, scores, 0.0).requires_grad_(True)
    weights = torch.where(mask, item_w, 1.0).requires_grad_(True)
    function = getattr(RF, f"{name}_loss")
    if name == "sampled_softmax":
        q = torch.where(mask, log_q, -1.0).requires_grad_(True)
        assert gradcheck(
            lambda s, w, lq: function(s, labels, mask, lq, weights=w, **hyper),
            (clean, weights, q),
        )
    else:
        assert gradcheck(
            lambda s, w: function(s, labels, mask, weights=w, **hyper), (clean, weights)
        )


# ------------------------------------------------------------------------------------------
# In-batch training


def test_in_batch_scores_masks_copies_of_the_positive():
    g = torch.Generator().manual_seed(0)
    queries = torch.randn(6, 4, generator=g, dtype=torch.float64)
    items = torch.randn(6, 4, generator=g, dtype=torch.float64)
    ids = torch.tensor([3, 7, 3, 1, 7, 3])
    log_q = torch.log(torch.tensor([0.3, 0.2, 0.3, 0.05, 0.2, 0.3], dtype=torch.float64))
    scores, labels, mask, q = RF.in_batch_scores(queries, items, ids, log_q)
    for b in range(6):
        for j in range(6):
            assert scores[b, j].item() == pytest.approx(float(queries[b] @ items[j]), rel=1e-12)
            assert labels[b, j].item() == (1.0 if b == j else 0.0)
            assert mask[b, j].item() == (b == j or ids[b].item() != ids[j].item())
            assert q[b, j].item() == log_q[j].item()
    # The loss over those lists equals a loop over each query's distinct-item candidates.
    expected = []
    for b in range(6):
        keep = [j for j in range(6) if mask[b, j]]
        logits = [float(scores[b, j] - log_q[j]) for j in keep]
        expected.append(-math.log(_softmax(logits)[keep.index(b)]))
    value = RF.sampled_softmax_loss(scores, labels, mask, q)
    assert value.item() == pytest.approx(sum(expected) / 6, rel=1e-12)
    cosine, *_ = RF.in_batch_scores(queries, items, ids, similarity="cosine")
    assert cosine.abs().max() <= 1.0 + 1e-12
    assert RF.in_batch_scores(queries, items, ids)[3] is None


def test_the_module_takes_log_q_on_the_call():
    scores, labels, mask, log_q, list_w, _ = _batch(9)
    loss = SampledSoftmaxLoss(temperature=0.5)
    torch.testing.assert_close(
        loss(scores, labels, mask, weights=list_w, log_q=log_q),
        RF.sampled_softmax_loss(scores, labels, mask, log_q, weights=list_w, temperature=0.5),
    )
    assert get("sampled_softmax").registered_name == "sampled_softmax"
    for half in (torch.float16, torch.bfloat16):
        s = torch.where(mask, scores, 0.0).to(half).requires_grad_(True)
        value = loss(s, labels, mask, log_q=log_q.to(half))
        value.backward()
        assert value.dtype == torch.float32 and torch.isfinite(s.grad).all()


def test_the_family_and_its_modules():
    assert set(available("recommendation")) == {
        "sampled_softmax",
        "bpr_max",
        "top1_max",
        "gbce",
        "ccl",
    }
    assert GBCELoss(sampling_rate=0.5, calibration=1.0).beta == pytest.approx(0.5)
    assert BPRMaxLoss(regularization=0.0).regularization == 0.0
    assert TOP1MaxLoss().regularization == 1.0
    assert CCLLoss(margin=0.9).margin == 0.9


# ------------------------------------------------------------------------------------------
# Bad input: refused before any work, with the argument named


@pytest.mark.badinput("losses")
def test_log_q_of_the_wrong_shape_dtype_or_device_is_refused():
    scores, labels, mask, log_q, _, _ = _batch(1)
    f = RF.sampled_softmax_loss
    with pytest.raises(
        ValueError, match=r"log_q has shape \[10, 7\] but scores has shape \[10, 8\]"
    ):
        f(scores, labels, mask, log_q[:, :7])
    with pytest.raises(ValueError, match="log_q must be floating point"):
        f(scores, labels, mask, torch.zeros(10, 8, dtype=torch.long))
    with pytest.raises(ValueError, match="log_q must be a torch.Tensor or None"):
        f(scores, labels, mask, [[0.0] * 8] * 10)
    with pytest.raises(ValueError, match=r"log_q has shape"):
        SampledSoftmaxLoss()(scores, labels, mask, log_q=log_q[0])


@pytest.mark.badinput("losses")
@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (math.nan, r"log_q holds nan at \[2, 0\] \(the log probability of a sampled"),
        (-math.inf, r"log_q holds -inf at \[2, 0\] \(the log probability of a sampled"),
        (0.5, r"log_q holds 0.5 at \[2, 0\] \(a log probability must be <= 0; this is a"),
    ],
)
def test_non_finite_or_positive_log_q_is_refused_at_real_positions_only(bad, message):
    scores, labels, mask, log_q, _, _ = _batch(1)
    dirty = log_q.clone()
    dirty[2, 0] = bad  # a real position
    with pytest.raises(ValueError, match=message):
        RF.sampled_softmax_loss(scores, labels, mask, dirty)
    padded = log_q.clone()
    padded[~mask] = bad  # padding may hold anything
    torch.testing.assert_close(
        RF.sampled_softmax_loss(scores, labels, mask, padded),
        RF.sampled_softmax_loss(scores, labels, mask, log_q),
    )


@pytest.mark.badinput("losses")
@pytest.mark.parametrize("name", ["sampled_softmax", "bpr_max", "top1_max", "gbce", "ccl"])
def test_negative_labels_are_refused(name):
    hyper = {"sampling_rate": 0.1} if name == "gbce" else {}
    scores = torch.tensor([[0.5, -0.3, 0.2]])
    labels = torch.tensor([[1.0, -2.0, 0.0]])
    with pytest.raises(ValueError, match=rf"{name}_loss: labels must be >= 0 .*got -2.0"):
        getattr(RF, f"{name}_loss")(scores, labels, **hyper)


@pytest.mark.badinput("losses")
def test_hyper_parameters_are_checked_when_built_and_on_entry():
    with pytest.raises(ValueError, match="SampledSoftmaxLoss: temperature must be > 0, got 0.0"):
        SampledSoftmaxLoss(temperature=0.0)
    with pytest.raises(ValueError, match="BPRMaxLoss: regularization must be >= 0, got -1"):
        BPRMaxLoss(regularization=-1)
    with pytest.raises(ValueError, match="TOP1MaxLoss: regularization must be >= 0"):
        TOP1MaxLoss(regularization=-0.5)
    with pytest.raises(ValueError, match=r"CCLLoss: margin must be in \[-1.0, 1.0\], got 1.5"):
        CCLLoss(margin=1.5)
    with pytest.raises(ValueError, match="CCLLoss: negative_weight must be >= 0"):
        CCLLoss(negative_weight=-2.0)
    with pytest.raises(TypeError, match="GBCELoss needs the sampling rate.*num_negatives"):
        GBCELoss()
    with pytest.raises(TypeError, match="GBCELoss needs the sampling rate"):
        get("gbce")
    with pytest.raises(TypeError, match="GBCELoss: pass sampling_rate or num_negatives"):
        GBCELoss(sampling_rate=0.1, num_items=100)
    with pytest.raises(ValueError, match=r"GBCELoss: sampling_rate must be in \(0, 1\], got 0.0"):
        GBCELoss(sampling_rate=0.0)
    with pytest.raises(ValueError, match=r"GBCELoss: calibration must be in \[0.0, 1.0\]"):
        GBCELoss(sampling_rate=0.1, calibration=1.5)
    with pytest.raises(ValueError, match="GBCELoss: num_negatives must be <= num_items - 1"):
        GBCELoss(num_negatives=100, num_items=100)
    with pytest.raises(TypeError, match="GBCELoss: num_items must be an int"):
        GBCELoss(num_negatives=10, num_items=100.0)  # type: ignore[arg-type]
    scores, labels = torch.zeros(1, 3), torch.tensor([[1.0, 0.0, 0.0]])
    with pytest.raises(ValueError, match="sampled_softmax_loss: temperature must be > 0"):
        RF.sampled_softmax_loss(scores, labels, temperature=-1.0)
    with pytest.raises(TypeError, match="gbce_loss needs the sampling rate"):
        RF.gbce_loss(scores, labels)
    with pytest.raises(ValueError, match="bpr_max_loss: regularization must be >= 0"):
        RF.bpr_max_loss(scores, labels, regularization=-1.0)


@pytest.mark.badinput("losses")
def test_in_batch_scores_refuses_mismatched_inputs():
    q, v = torch.randn(4, 3), torch.randn(4, 3)
    ids = torch.arange(4)
    with pytest.raises(
        ValueError, match=r"items has shape \[5, 3\] but queries has shape \[4, 3\]"
    ):
        RF.in_batch_scores(q, torch.randn(5, 3), ids)
    with pytest.raises(ValueError, match="item_ids must be an integer tensor"):
        RF.in_batch_scores(q, v, ids.float())
    with pytest.raises(ValueError, match=r"item_ids has shape \[3\]; expected \[4\]"):
        RF.in_batch_scores(q, v, ids[:3])
    with pytest.raises(ValueError, match=r"log_q has shape \[4, 1\]; expected \[4\]"):
        RF.in_batch_scores(q, v, ids, torch.zeros(4, 1))
    with pytest.raises(ValueError, match=r"in_batch_scores: log_q holds 0.1 at \[2\]"):
        RF.in_batch_scores(q, v, ids, torch.tensor([-1.0, -1.0, 0.1, -1.0]))
    with pytest.raises(ValueError, match=r"queries holds nan"):
        RF.in_batch_scores(torch.full((4, 3), math.nan), v, ids)

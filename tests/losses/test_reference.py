"""Every learning-to-rank loss against its float64 loop reference on padded batches.

The batches mix what breaks implementations: variable lengths with padding at random positions
(holding NaN), a fully masked list, a one-item list, a list of all-equal labels, a list of all
zero labels, tied labels and tied scores, graded labels 0..4 and negative labels where the loss
allows them. Each case runs every reduction, with no weights, per-list and per-item weights.
"""

from __future__ import annotations

import itertools
import math
import zlib

import pytest
import torch

import rankloss.functional as RF
from tests.losses._cases import function, info, list_loss_names
from tests.reference import ltr_losses as ref

WIDTH = 8
#: One fully masked list, one single item, then a spread of lengths.
LENGTHS = [0, 1, 2, 3, 5, 7, 8, 4, 6, 8, 3, 5]
ALL_EQUAL_ROW, ALL_ZERO_ROW, TIED_SCORES_ROW = 4, 3, 8

LAMBDALOSS_CASES = [
    (weighting, extra)
    for weighting in ("ndcg_loss2", "ndcg_loss2pp", "lambdarank", "ndcg_loss1", "label_diff")
    for extra in ({}, {"k": 3}, {"gain": "linear", "mu": 2.0, "sigma": 2.0})
]

# (registered name, hyper-parameters, kind of labels)
CASES = [
    ("mse", {}, "real"),
    ("mse", {}, "graded"),
    ("mae", {}, "graded"),
    ("smooth_l1", {}, "real"),
    ("smooth_l1", {"beta": 0.5}, "graded"),
    ("sigmoid_ce", {}, "unit"),
    ("sigmoid_ce", {"relevance_threshold": 1.0}, "graded"),
    ("softmax_ce", {}, "nonnegative"),
    ("softmax_ce", {}, "unit"),
    ("kl_div", {}, "real"),
    ("kl_div", {"label_temperature": 0.5}, "graded"),
    ("hinge", {}, "graded"),
    ("hinge", {"margin": 0.5, "relevance_threshold": 1.5}, "graded"),
    ("ranknet", {}, "graded"),
    ("ranknet", {"sigma": 2.0, "k": 2}, "graded"),
    ("ranknet", {}, "real"),
    ("pairwise_hinge", {}, "graded"),
    ("pairwise_hinge", {"margin": 0.3, "k": 3}, "graded"),
    ("lambdarank", {}, "graded"),
    ("lambdarank", {}, "nonnegative"),
    ("lambdarank", {"k": 3}, "nonnegative"),
    ("lambdarank", {"k": 1, "gain": "linear", "sigma": 0.5}, "graded"),
    *[("lambdaloss", {"weighting": w, **extra}, "nonnegative") for w, extra in LAMBDALOSS_CASES],
    ("lambdaloss", {}, "graded"),
    ("bpr", {}, "graded"),
    ("pairwise", {}, "graded"),
    ("pairwise", {"term": "hinge", "margin": 0.5, "relevance_threshold": 2.0}, "graded"),
    ("pairwise", {"term": "hinge", "weight": "lambdarank", "k": 3}, "nonnegative"),
    ("pairwise", {"weight": "ndcg_loss1", "pair_reduction": "sum"}, "nonnegative"),
    ("pairwise", {"weight": "label_diff", "sigma": 2.0}, "real"),
    ("pairwise", {"term": "squared_hinge", "margin": 0.5}, "graded"),
    ("pairwise", {"term": "squared_hinge", "weight": "ndcg_loss2pp", "k": 3}, "nonnegative"),
    ("pairwise", {"weight": "ndcg_loss2pp", "mu": 3.0, "gain": "linear"}, "graded"),
    ("bpr", {"relevance_threshold": 2.0}, "graded"),
    ("bpr", {"relevance_threshold": 0.5}, "real"),
    ("bpr", {"k": 3}, "graded"),
    ("listnet", {}, "real"),
    ("listnet", {"label_temperature": 2.0}, "graded"),
    ("listmle", {}, "graded"),
    ("listmle", {}, "real"),
    ("approx_ndcg", {}, "nonnegative"),
    ("approx_ndcg", {"alpha": 2.0, "gain": "linear"}, "graded"),
    ("neural_ndcg", {}, "nonnegative"),
    ("neural_ndcg", {"k": 3, "temperature": 0.5, "sinkhorn_iterations": 5}, "nonnegative"),
    ("neural_ndcg", {"gain": "linear", "sinkhorn_iterations": 0}, "graded"),
    ("neural_ndcg", {"k": 1, "temperature": 2.0}, "graded"),
    ("xe_ndcg", {}, "nonnegative"),
    ("xe_ndcg", {}, "unit"),
    ("gumbel_approx_ndcg", {}, "nonnegative"),
    ("gumbel_approx_ndcg", {"alpha": 2.0, "gain": "linear", "samples": 3}, "graded"),
    ("pirank", {}, "nonnegative"),
    ("pirank", {"k": 3, "temperature": 0.5}, "nonnegative"),
    ("pirank", {"k": None, "temperature": 2.0, "gain": "linear"}, "graded"),
    ("pirank", {"k": 1, "temperature": 0.1}, "graded"),
    ("position_aware_listmle", {}, "graded"),
    ("position_aware_listmle", {}, "real"),
    ("rank_cosine", {}, "real"),
    ("rank_cosine", {}, "graded"),
    ("soft_rank_ndcg", {}, "nonnegative"),
    ("soft_rank_ndcg", {"regularization_strength": 0.1}, "nonnegative"),
    ("soft_rank_ndcg", {"regularization_strength": 5.0, "gain": "linear"}, "graded"),
    ("ap_loss", {}, "unit"),
    ("ap_loss", {"delta": 0.25}, "nonnegative"),
    ("alrp_loss", {}, "unit"),
    ("alrp_loss", {"delta": 1.5, "min_positive_iou": 0.3}, "unit"),
    ("rank_sort", {}, "unit"),
    ("rank_sort", {"delta": 0.2}, "unit"),
    ("rank_sort", {"delta": 1.0}, "nonnegative"),
    ("sampled_softmax", {}, "nonnegative"),
    ("sampled_softmax", {"temperature": 0.5}, "unit"),
    ("bpr_max", {}, "unit"),
    ("bpr_max", {"regularization": 0.0}, "unit"),
    ("bpr_max", {"regularization": 0.3}, "unit"),
    ("top1_max", {"regularization": 1.0}, "unit"),
    ("top1_max", {"regularization": 0.0}, "unit"),
    ("top1_max", {"regularization": 2.0}, "nonnegative"),
    ("gbce", {"num_negatives": 256, "num_items": 10000}, "nonnegative"),
    ("gbce", {"sampling_rate": 0.2, "calibration": 0.0}, "unit"),
    ("gbce", {"sampling_rate": 0.05, "calibration": 1.0}, "nonnegative"),
    ("ccl", {}, "unit"),
    ("ccl", {"margin": -0.2, "negative_weight": 2.0}, "nonnegative"),
]

REDUCTIONS = ("none", "sum", "mean")
WEIGHT_MODES = ("no_weights", "list_weights", "item_weights")


def _case_id(case) -> str:
    name, hyper, labels = case
    extra = ",".join(f"{k}={v}" for k, v in hyper.items())
    return f"{name}[{extra}]-{labels}"


def _make_batch(seed: int, label_kind: str):
    g = torch.Generator().manual_seed(seed)
    b = len(LENGTHS)
    scores = torch.randn(b, WIDTH, generator=g, dtype=torch.float64) * 1.5
    scores[TIED_SCORES_ROW] = torch.round(scores[TIED_SCORES_ROW])  # ties in scores
    if label_kind == "graded":
        labels = torch.randint(-2, 5, (b, WIDTH), generator=g).double()
    elif label_kind == "nonnegative":
        labels = torch.randint(0, 5, (b, WIDTH), generator=g).double()
    elif label_kind == "unit":
        labels = torch.rand(b, WIDTH, generator=g, dtype=torch.float64)
        labels[labels < 0.25] = 0.0
        labels[labels > 0.85] = 1.0
    elif label_kind == "real":
        labels = torch.randn(b, WIDTH, generator=g, dtype=torch.float64) * 2.0
    else:
        raise ValueError(label_kind)
    labels[ALL_EQUAL_ROW] = labels[ALL_EQUAL_ROW, 0] if label_kind != "graded" else 3.0
    labels[ALL_ZERO_ROW] = 0.0
    mask = torch.zeros(b, WIDTH, dtype=torch.bool)
    for row, length in enumerate(LENGTHS):
        mask[row, torch.randperm(WIDTH, generator=g)[:length]] = True
    list_weights = torch.rand(b, generator=g, dtype=torch.float64) * 1.5 + 0.25
    list_weights[5] = 0.0
    item_weights = torch.rand(b, WIDTH, generator=g, dtype=torch.float64) * 1.5 + 0.25
    # Garbage at padded positions: it must never be read.
    scores = scores.masked_fill(~mask, math.nan)
    labels = labels.masked_fill(~mask, math.inf)
    item_weights = item_weights.masked_fill(~mask, math.nan)
    return scores, labels, mask, list_weights, item_weights


def _real(row: torch.Tensor, mask_row: torch.Tensor) -> list[float]:
    return [float(v) for v in row[mask_row]]


def _reference(name, hyper, scores, labels, mask, item_weights):
    results = []
    for b in range(scores.shape[0]):
        item = None if item_weights is None else _real(item_weights[b], mask[b])
        results.append(
            ref.REFERENCES[name](
                _real(scores[b], mask[b]), _real(labels[b], mask[b]), item, **hyper
            )
        )
    return results


def test_every_list_loss_has_a_reference_and_a_case():
    names = set(list_loss_names())
    assert names <= set(ref.REFERENCES), names - set(ref.REFERENCES)
    assert names <= {name for name, _, _ in CASES}, names - {name for name, _, _ in CASES}


@pytest.mark.parametrize("weight_mode", WEIGHT_MODES)
@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_matches_reference(case, weight_mode):
    name, hyper, label_kind = case
    seed = zlib.crc32(f"{_case_id(case)}-{weight_mode}".encode())
    scores, labels, mask, list_weights, item_weights = _make_batch(seed, label_kind)
    loss_function = function(name)
    weights = {"no_weights": None, "list_weights": list_weights, "item_weights": item_weights}[
        weight_mode
    ]
    results = _reference(
        name, hyper, scores, labels, mask, item_weights if weight_mode == "item_weights" else None
    )
    valid = [ok for _, ok in results]
    # The batch must exercise the loss: several lists to learn from, and the masked list not.
    assert sum(valid) >= 4 and not valid[0]
    per_list_weights = list_weights.tolist() if weight_mode == "list_weights" else None
    for reduction in REDUCTIONS:
        actual = loss_function(scores, labels, mask, weights=weights, reduction=reduction, **hyper)
        expected = ref.reduce_ref(results, reduction, per_list_weights)
        assert actual.dtype == torch.float64
        torch.testing.assert_close(
            actual,
            torch.tensor(expected, dtype=torch.float64),
            rtol=1e-10,
            atol=1e-12,
            msg=lambda m, r=reduction: f"{name} {hyper} {weight_mode} reduction={r}: {m}",
        )


def test_fully_masked_batch_matches_reference_zero():
    scores, labels, mask, _, _ = _make_batch(0, "nonnegative")
    mask[:] = False
    for name in list_loss_names():
        example = info(name).example
        results = _reference(name, example, scores, labels, mask, None)
        assert ref.reduce_ref(results, "mean") == 0.0
        value = function(name)(scores, labels, mask, **example)
        assert value.item() == 0.0


# ------------------------------------------------------------------------------------------
# ListMLE with random tie-breaking


def test_listmle_generator_breaks_ties_uniformly_among_valid_orders():
    scores = torch.tensor([[0.3, -1.2, 2.0, 0.7, -0.4]], dtype=torch.float64)
    labels = torch.tensor([[1.0, 2.0, 1.0, 1.0, 0.0]], dtype=torch.float64)
    orders = ref.listmle_tie_orders(labels[0].tolist())
    assert len(orders) == 6
    allowed = [ref.listmle_ref(scores[0].tolist(), labels[0].tolist(), order=o)[0] for o in orders]
    seen = set()
    generator = torch.Generator().manual_seed(0)
    for _ in range(60):
        value = RF.listmle_loss(scores, labels, generator=generator).item()
        matches = [i for i, a in enumerate(allowed) if math.isclose(value, a, rel_tol=1e-12)]
        assert matches, (value, allowed)
        seen.add(matches[0])
    # A fresh order on every call: with 60 draws every one of the 6 orders shows up.
    assert seen == set(range(6))
    # Without a generator, ties are broken in input order.
    torch.testing.assert_close(
        RF.listmle_loss(scores, labels).item(),
        ref.listmle_ref(scores[0].tolist(), labels[0].tolist())[0],
    )


def test_listmle_generator_is_irrelevant_for_distinct_labels():
    g = torch.Generator().manual_seed(3)
    scores = torch.randn(4, 6, generator=g, dtype=torch.float64)
    labels = torch.stack([torch.randperm(6, generator=g) for _ in range(4)]).double()
    mask = torch.rand(4, 6, generator=g) > 0.3
    expected = RF.listmle_loss(scores, labels, mask, reduction="none")
    actual = RF.listmle_loss(scores, labels, mask, reduction="none", generator=g)
    torch.testing.assert_close(actual, expected)


# ------------------------------------------------------------------------------------------
# Adversarial losses


@pytest.mark.parametrize("kind", ["non_saturating", "hinge", "least_squares"])
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_adversarial_matches_reference(kind, reduction):
    g = torch.Generator().manual_seed(zlib.crc32(f"{kind}{reduction}".encode()))
    real = torch.randn(3, 5, generator=g, dtype=torch.float64) * 3
    fake = torch.randn(3, 5, generator=g, dtype=torch.float64) * 3
    d_ref = [ref.discriminator_ref(r, f, kind) for r, f in zip(real.flatten(), fake.flatten())]
    g_ref = [ref.generator_ref(float(f), kind) for f in fake.flatten()]

    def reduce(values):
        t = torch.tensor(values, dtype=torch.float64)
        if reduction == "none":
            return t.reshape(3, 5)
        return t.sum() if reduction == "sum" else t.mean()

    torch.testing.assert_close(
        RF.discriminator_loss(real, fake, kind=kind, reduction=reduction), reduce(d_ref)
    )
    torch.testing.assert_close(
        RF.generator_loss(fake, kind=kind, reduction=reduction), reduce(g_ref)
    )


def test_adversarial_errors():
    with pytest.raises(ValueError, match="real_logits has shape"):
        RF.discriminator_loss(torch.zeros(3), torch.zeros(4))
    with pytest.raises(ValueError, match="kind"):
        RF.generator_loss(torch.zeros(3), kind="wasserstein")
    with pytest.raises(ValueError, match="floating-point"):
        RF.generator_loss(torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match="reduction"):
        RF.generator_loss(torch.zeros(3), reduction="max")


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_adversarial_losses_of_no_logits_are_a_connected_zero(reduction):
    real = torch.empty(0, requires_grad=True)
    fake = torch.empty(0, requires_grad=True)
    for value in (
        RF.discriminator_loss(real, fake, reduction=reduction),
        RF.generator_loss(fake, reduction=reduction),
    ):
        if reduction == "none":
            assert value.shape == (0,)
            continue
        assert value.item() == 0.0  # not NaN: an empty fake batch leaves a total finite
        value.backward()
    if reduction != "none":
        assert fake.grad is not None and fake.grad.shape == (0,)


def test_adversarial_half_precision_computes_in_float32():
    real = torch.tensor([1e4, -1e4, 0.5], dtype=torch.float16)
    out = RF.discriminator_loss(real, -real)
    assert out.dtype == torch.float32 and torch.isfinite(out)


# ------------------------------------------------------------------------------------------
# The references themselves, against values worked out by hand


def test_reference_hand_values():
    log2 = math.log(2.0)
    assert ref.mse_ref([1.0, 0.0], [1.0, 1.0]) == (0.5, True)
    assert ref.ranknet_ref([0.0, 0.0], [1.0, 0.0]) == pytest.approx((log2, True))
    assert ref.ranknet_ref([0.0, 0.0], [1.0, 1.0]) == (0.0, False)
    # Two items, labels in score order: l = log(e^a + e^b) - a + 0.
    a, b = 1.0, -0.5
    expected = math.log(math.exp(a) + math.exp(b)) - a
    assert ref.listmle_ref([a, b], [2.0, 1.0]) == pytest.approx((expected, True))
    # A perfect ranking with far-apart scores has ApproxNDCG ~ 0 and NeuralNDCG ~ 0.
    assert ref.approx_ndcg_ref([10.0, 0.0, -10.0], [2.0, 1.0, 0.0])[0] == pytest.approx(0, abs=1e-6)
    assert ref.neural_ndcg_ref([10.0, 0.0, -10.0], [2.0, 1.0, 0.0], temperature=0.1)[
        0
    ] == pytest.approx(0, abs=1e-6)
    # LambdaRank on two items at ranks 1, 2 with labels (0, 1): one pair (1, 0),
    # |dNDCG| = (1 - 0) * (1 - 1/log2 3) / 1, times softplus(-(s_1 - s_0)).
    value, ok = ref.lambdarank_ref([1.0, 0.0], [0.0, 1.0])
    assert ok and value == pytest.approx((1 - 1 / math.log2(3)) * ref.softplus(1.0))
    assert ref.reduce_ref([(1.0, True), (5.0, False), (3.0, True)], "mean", [1.0, 9.0, 3.0]) == 2.5
    assert ref.reduce_ref([(1.0, True), (5.0, False)], "none") == [1.0, 0.0]
    assert ref.reduce_ref([(1.0, False)], "mean") == 0.0
    assert ref.listmle_tie_orders([1.0, 2.0, 1.0]) == [[1, 0, 2], [1, 2, 0]]


def test_reference_sinkhorn_is_doubly_stochastic():
    p = ref.sinkhorn(ref.neural_sort_matrix([0.3, -1.0, 2.0, 0.1], 1.0), 200)
    for t in range(4):
        assert sum(p[t]) == pytest.approx(1.0)
        assert sum(row[t] for row in p) == pytest.approx(1.0, abs=1e-8)


def test_ranks_and_ideal_dcg_reference_helpers():
    assert ref.ranks_by_score([0.5, 2.0, 0.5, -1.0]) == [2, 1, 3, 4]
    assert ref.ideal_dcg_of([1.0, 3.0], None) == pytest.approx(3.0 + 1.0 / math.log2(3))
    assert ref.ideal_dcg_of([1.0, 3.0], 1) == 3.0
    assert list(itertools.chain(*ref.listmle_tie_orders([0.0]))) == [0]


def test_more_listwise_and_detection_reference_hand_values():
    log2 = math.log(2.0)
    # XE-NDCG with gamma = 0: phi = (2, 1) / 3 against a uniform softmax: log 2.
    assert ref.xe_ndcg_ref([0.0, 0.0], [1.0, 0.0], gamma=[0.0, 0.0]) == pytest.approx((log2, True))
    # PiRank at a tiny temperature is 1 - NDCG@k of the hard ranking.
    value, ok = ref.pirank_ref([0.2, 1.0, -0.5], [2.0, 0.0, 1.0], temperature=1e-4, k=2)
    assert ok and value == pytest.approx(1.0 - (3.0 / math.log2(3)) / (3.0 + 1.0 / math.log2(3)))
    assert ref.position_aware_listmle_ref([0.7], [1.0]) == (0.0, True)
    assert ref.rank_cosine_ref([0.0, 0.0], [1.0, 2.0]) == (0.5, True)
    assert ref.rank_cosine_ref([1.0, 2.0], [2.0, 4.0])[0] == pytest.approx(0.0, abs=1e-15)
    assert ref.rank_cosine_ref([1.0, 2.0], [0.0, 0.0]) == (0.0, False)
    # Isotonic fits by the min-max formula, and soft ranks at both ends of the strength.
    assert ref.isotonic_nonincreasing_ref([1.0, 3.0, 2.0]) == pytest.approx([2.0, 2.0, 2.0])
    assert ref.isotonic_nonincreasing_ref([3.0, 1.0, 2.0]) == pytest.approx([3.0, 1.5, 1.5])
    assert ref.soft_rank_ref([0.3, 2.0, -1.0], 1e-3) == pytest.approx([2.0, 1.0, 3.0])
    assert ref.soft_rank_ref([0.3, 2.0, -1.0], 1e6) == pytest.approx([2.0, 2.0, 2.0])
    assert ref.soft_rank_ref([0.5, 0.5, -1.0], 1e-3) == pytest.approx([1.5, 1.5, 3.0])
    # AP-Loss with a sharp step: positives at ranks 1 and 3, precisions 1 and 2/3.
    assert ref.ap_loss_ref([2.0, 1.0, 0.0], [1.0, 0.0, 1.0], delta=0.01) == pytest.approx(
        (1.0 / 6.0, True)
    )
    assert ref.alrp_loss_ref([2.0, 1.0, 0.0], [1.0, 0.0, 1.0], delta=0.01) == pytest.approx(
        (1.0 / 6.0, True)
    )
    assert ref.ap_loss_ref([2.0, 1.0], [0.0, 0.0]) == (0.0, False)
    # Rank & Sort is 0 for positives ranked first and sorted by IoU, positive otherwise.
    ious = [0.9, 0.6, 0.3, 0.0]
    assert ref.rank_sort_ref([3.0, 2.0, 1.0, 0.0], ious, delta=0.1)[0] == pytest.approx(0.0)
    assert ref.rank_sort_ref([2.0, 3.0, 1.0, 0.0], ious, delta=0.1)[0] > 0.0


def test_recommendation_reference_hand_values():
    log2 = math.log(2.0)
    assert ref.sampled_softmax_ref([0.0, 0.0], [1.0, 0.0]) == pytest.approx((log2, True))
    # log-Q correction: logits log 2 and log 4, the positive's probability 1/3.
    value, ok = ref.sampled_softmax_ref(
        [0.0, 0.0], [1.0, 0.0], log_q=[math.log(0.5), math.log(0.25)]
    )
    assert ok and value == pytest.approx(math.log(3.0))
    assert ref.sampled_softmax_ref([1.0, 2.0], [0.0, 0.0]) == (0.0, False)
    assert ref.bpr_max_ref([0.0, 0.0], [1.0, 0.0], regularization=0.0) == pytest.approx(
        (log2, True)
    )
    # One negative of score 2: -log sigma(1 - 2) + 2^2.
    assert ref.bpr_max_ref([1.0, 2.0], [1.0, 0.0])[0] == pytest.approx(ref.softplus(1.0) + 4.0)
    assert ref.bpr_max_ref([1.0, 2.0], [1.0, 3.0]) == (0.0, False)
    assert ref.top1_max_ref([0.0, 0.0], [1.0, 0.0]) == pytest.approx((1.0, True))
    # beta = 1/2 at calibration 1 and sampling rate 1/2.
    value, ok = ref.gbce_ref([0.0, 0.0], [1.0, 0.0], sampling_rate=0.5, calibration=1.0)
    assert ok and value == pytest.approx(1.5 * log2)
    beta = 1.0 - 0.75 * (1.0 - 256 / 10_000)
    value, _ = ref.gbce_ref([0.0], [1.0], num_negatives=256, num_items=10_001)
    assert value == pytest.approx(beta * log2)
    assert ref.ccl_ref([0.8, 0.7, 0.1], [1.0, 0.0, 0.0]) == pytest.approx((1.2, True))
    assert ref.ccl_ref([0.8], [0.0]) == (0.0, False)

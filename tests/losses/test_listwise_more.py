"""XE-NDCG, Gumbel-ApproxNDCG, PiRank, position-aware ListMLE, RankCosine and soft-rank NDCG
against float64 loop references written from the papers' formulas.

The registry-wide suites (properties, gradcheck, registry, docs) cover them too; here are the
values, the stochastic inputs and what each paper's formula says.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch.autograd import gradcheck

import rankloss.functional as RF
from rankloss.losses import (
    GumbelApproxNDCGLoss,
    PiRankLoss,
    PositionAwareListMLELoss,
    RankCosineLoss,
    SoftRankNDCGLoss,
    XENDCGLoss,
    get,
)
from tests.losses.test_sorting import _reference_soft_rank

SCORES = torch.tensor(
    [[0.3, -1.2, 2.1, 0.7, -0.4], [1.5, 0.2, -0.3, 0.9, 0.05], [-0.6, 0.8, 0.35, 1.7, -1.1]],
    dtype=torch.float64,
)
LABELS = torch.tensor(
    [[2.0, 0.0, 1.0, 3.0, 0.0], [1.0, 0.0, 2.0, 0.0, 4.0], [0.0, 1.0, 1.0, 2.0, 0.0]],
    dtype=torch.float64,
)
MASK = torch.tensor(
    [
        [True, True, True, True, True],
        [True, True, False, True, True],
        [True, False, True, True, False],
    ]
)


def _rows():
    """The real items of every list, as plain Python lists."""
    for s, y, m in zip(SCORES, LABELS, MASK):
        yield s[m].tolist(), y[m].tolist(), m


def _gain(y: float, kind: str = "exp2") -> float:
    return 2.0**y - 1.0 if kind == "exp2" else y


def _idcg(labels: list[float], k: int | None = None, kind: str = "exp2") -> float:
    ordered = sorted((_gain(y, kind) for y in labels), reverse=True)[:k]
    return sum(g / math.log2(2 + r) for r, g in enumerate(ordered))


def _close(actual: torch.Tensor, expected: list[float] | float) -> None:
    torch.testing.assert_close(actual, torch.as_tensor(expected, dtype=torch.float64))


# ------------------------------------------------------------------------------------------
# XE-NDCG


def _reference_xe_ndcg(s: list[float], y: list[float], gamma: list[float]) -> float:
    phi = [2.0**yi - g for yi, g in zip(y, gamma)]
    total = sum(phi)
    log_z = math.log(sum(math.exp(v) for v in s))
    return -sum(p / total * (si - log_z) for p, si in zip(phi, s))


def test_xe_ndcg_equals_the_reference_with_explicit_gamma_and_its_expectation():
    gamma = torch.rand(
        SCORES.shape, generator=torch.Generator().manual_seed(3), dtype=torch.float64
    )
    values = RF.xe_ndcg_loss(SCORES, LABELS, MASK, gamma, reduction="none")
    halves = RF.xe_ndcg_loss(SCORES, LABELS, MASK, reduction="none")
    for b, (s, y, m) in enumerate(_rows()):
        _close(values[b], _reference_xe_ndcg(s, y, gamma[b][m].tolist()))
        _close(halves[b], _reference_xe_ndcg(s, y, [0.5] * len(s)))


def test_xe_ndcg_generator_draws_a_fresh_uniform_gamma():
    def draw(seed: int) -> torch.Tensor:
        g = torch.Generator().manual_seed(seed)
        return RF.xe_ndcg_loss(SCORES, LABELS, MASK, generator=g, reduction="none")

    # The draw is torch.rand of the batch shape from the generator: reproducible by seed.
    gamma = torch.rand(SCORES.shape, generator=torch.Generator().manual_seed(5)).double()
    torch.testing.assert_close(
        draw(5), RF.xe_ndcg_loss(SCORES, LABELS, MASK, gamma, reduction="none")
    )
    assert not torch.allclose(draw(5), draw(6))


def test_xe_ndcg_module_draws_only_in_training_mode():
    loss = XENDCGLoss()
    deterministic = RF.xe_ndcg_loss(SCORES, LABELS, MASK)
    g = torch.Generator().manual_seed(0)
    assert not torch.allclose(loss(SCORES, LABELS, MASK, generator=g), deterministic)
    torch.testing.assert_close(loss(SCORES, LABELS, MASK), deterministic)
    loss.eval()
    torch.testing.assert_close(loss(SCORES, LABELS, MASK, generator=g), deterministic)


def test_xe_ndcg_gradcheck_in_scores_and_gamma():
    gamma = torch.full(SCORES.shape, 0.3, dtype=torch.float64, requires_grad=True)
    scores = SCORES.clone().requires_grad_(True)
    assert gradcheck(lambda s, g: RF.xe_ndcg_loss(s, LABELS, MASK, g), (scores, gamma))


@pytest.mark.badinput("losses")
def test_xe_ndcg_refuses_negative_labels_and_bad_gamma():
    with pytest.raises(ValueError, match="xe_ndcg_loss: labels must be >= 0"):
        RF.xe_ndcg_loss(SCORES, LABELS - 1.0, MASK)
    with pytest.raises(ValueError, match=r"xe_ndcg_loss: gamma must lie in \[0, 1\]"):
        RF.xe_ndcg_loss(SCORES, LABELS, MASK, torch.full_like(SCORES, 1.5))
    with pytest.raises(ValueError, match="xe_ndcg_loss: gamma has shape"):
        RF.xe_ndcg_loss(SCORES, LABELS, MASK, torch.zeros(3, 4))
    bad = torch.full_like(SCORES, 0.5)
    bad[1, 2] = float("nan")  # padding: allowed
    RF.xe_ndcg_loss(SCORES, LABELS, MASK, bad)
    bad[1, 1] = float("nan")
    with pytest.raises(ValueError, match="gamma holds NaN or inf"):
        RF.xe_ndcg_loss(SCORES, LABELS, MASK, bad)


# ------------------------------------------------------------------------------------------
# Gumbel-ApproxNDCG


def _reference_approx_ndcg(s: list[float], y: list[float], alpha: float) -> float:
    idcg = _idcg(y)
    if idcg <= 0:
        return 0.0
    total = 0.0
    for i in range(len(s)):
        rank = 1.0 + sum(
            1.0 / (1.0 + math.exp(-alpha * (s[j] - s[i]))) for j in range(len(s)) if j != i
        )
        total += _gain(y[i]) / math.log2(1.0 + rank)
    return 1.0 - total / idcg


def test_gumbel_approx_ndcg_equals_the_reference_mean_over_samples():
    noise = torch.randn((3, *SCORES.shape), generator=torch.Generator().manual_seed(1)).double()
    values = RF.gumbel_approx_ndcg_loss(SCORES, LABELS, MASK, noise, alpha=2.0, reduction="none")
    for b, (s, y, m) in enumerate(_rows()):
        expected = sum(
            _reference_approx_ndcg([a + e for a, e in zip(s, noise[k, b][m].tolist())], y, 2.0)
            for k in range(3)
        )
        _close(values[b], expected / 3)
    # One sample of shape [..., n] is the same as [1, ..., n].
    torch.testing.assert_close(
        RF.gumbel_approx_ndcg_loss(SCORES, LABELS, MASK, noise[0]),
        RF.gumbel_approx_ndcg_loss(SCORES, LABELS, MASK, noise[:1]),
    )


def test_gumbel_approx_ndcg_without_noise_is_approx_ndcg():
    for alpha in (1.0, 10.0):
        torch.testing.assert_close(
            RF.gumbel_approx_ndcg_loss(SCORES, LABELS, MASK, alpha=alpha, reduction="none"),
            RF.approx_ndcg_loss(SCORES, LABELS, MASK, alpha=alpha, reduction="none"),
        )


def test_gumbel_noise_from_the_generator_is_reproducible_and_gumbel_distributed():
    def value(seed: int, samples: int) -> torch.Tensor:
        g = torch.Generator().manual_seed(seed)
        return RF.gumbel_approx_ndcg_loss(SCORES, LABELS, MASK, samples=samples, generator=g)

    torch.testing.assert_close(value(0, 4), value(0, 4))
    assert not torch.allclose(value(0, 4), value(1, 4))
    # Many samples average the noise out: the value converges (to the expectation).
    assert abs(value(2, 4000) - value(3, 4000)) < 0.02
    module = GumbelApproxNDCGLoss(samples=4)
    g = torch.Generator().manual_seed(0)
    torch.testing.assert_close(module(SCORES, LABELS, MASK, generator=g), value(0, 4))
    module.eval()
    torch.testing.assert_close(
        module(SCORES, LABELS, MASK, generator=g), RF.approx_ndcg_loss(SCORES, LABELS, MASK)
    )


def test_gumbel_approx_ndcg_gradcheck_with_noise():
    noise = torch.randn((2, *SCORES.shape), generator=torch.Generator().manual_seed(4)).double()
    scores = SCORES.clone().requires_grad_(True)
    assert gradcheck(
        lambda s: RF.gumbel_approx_ndcg_loss(s, LABELS, MASK, noise, alpha=3.0), (scores,)
    )


def test_gumbel_approx_ndcg_golden_values_of_rax():
    # rax 0.4.0 (jax 0.4.30, x64): 1 + gumbel_t12n(approx_t12n(ndcg_metric, temperature=0.5),
    # samples=2)(s, y, where=where, key=PRNGKey(3), reduce_fn=None), per sample; the noise is
    # the one rax drew (jax.random.gumbel of the first half of split(PRNGKey(3))), rounded.
    scores = torch.tensor([[0.3, -1.2, 2.1, 0.7], [1.5, 0.2, -0.3, 0.9]], dtype=torch.float64)
    labels = torch.tensor([[2.0, 0.0, 1.0, 3.0], [1.0, 0.0, 2.0, 0.0]], dtype=torch.float64)
    mask = torch.tensor([[True, True, True, True], [True, True, False, True]])
    noise = torch.tensor(
        [
            [
                [0.556198260802, 1.508027712025, -0.448827905219, -0.220263275026],
                [0.498889055032, 1.264737819345, -0.112647676417, 1.103645682936],
            ],
            [
                [-0.645046176145, 0.421465581176, 1.588911145809, -0.139012074165],
                [0.218582569895, 1.095606751672, 0.20628939123, 3.80172278947],
            ],
        ],
        dtype=torch.float64,
    )
    rax_per_sample = torch.tensor(
        [[0.35935001848292725, 0.3167891708810855], [0.29449539351180587, 0.4191015725318442]],
        dtype=torch.float64,
    )
    value = RF.gumbel_approx_ndcg_loss(scores, labels, mask, noise, alpha=2.0, reduction="none")
    torch.testing.assert_close(value, rax_per_sample.mean(0), atol=1e-9, rtol=0)


@pytest.mark.badinput("losses")
def test_gumbel_approx_ndcg_refuses_bad_noise_and_samples():
    with pytest.raises(ValueError, match="GumbelApproxNDCGLoss: samples must be"):
        GumbelApproxNDCGLoss(samples=0)
    with pytest.raises(ValueError, match="gumbel_approx_ndcg_loss: noise has shape"):
        RF.gumbel_approx_ndcg_loss(SCORES, LABELS, MASK, torch.zeros(2, 2, 3, 5))
    noise = torch.zeros_like(SCORES)
    noise[0, 0] = float("inf")
    with pytest.raises(ValueError, match="noise holds NaN or inf"):
        RF.gumbel_approx_ndcg_loss(SCORES, LABELS, MASK, noise)


# ------------------------------------------------------------------------------------------
# PiRank


def _reference_pirank(s: list[float], y: list[float], temperature: float, k: int | None) -> float:
    n = len(s)
    idcg = _idcg(y, k)
    if idcg <= 0:
        return 0.0
    dcg = 0.0
    for t in range(1, min(n, k or n) + 1):
        logits = [
            ((n + 1 - 2 * t) * s[j] - sum(abs(s[j] - s[u]) for u in range(n))) / temperature
            for j in range(n)
        ]
        top = max(logits)
        e = [math.exp(v - top) for v in logits]
        expected_gain = sum(ej / sum(e) * _gain(y[j]) for j, ej in enumerate(e))
        dcg += expected_gain / math.log2(1 + t)
    return 1.0 - dcg / idcg


@pytest.mark.parametrize(("temperature", "k"), [(1.0, 10), (0.3, 2), (2.0, None)])
def test_pirank_equals_the_reference(temperature, k):
    values = RF.pirank_loss(SCORES, LABELS, MASK, temperature=temperature, k=k, reduction="none")
    for b, (s, y, _) in enumerate(_rows()):
        _close(values[b], _reference_pirank(s, y, temperature, k))


def test_pirank_is_neural_ndcg_without_sinkhorn_and_hard_ndcg_at_low_temperature():
    torch.testing.assert_close(
        RF.pirank_loss(SCORES, LABELS, MASK, k=3, reduction="none"),
        RF.neural_ndcg_loss(SCORES, LABELS, MASK, k=3, sinkhorn_iterations=0, reduction="none"),
    )
    value = RF.pirank_loss(SCORES, LABELS, MASK, temperature=1e-4, k=3, reduction="none")
    for b, (s, y, _) in enumerate(_rows()):
        order = sorted(range(len(s)), key=lambda i: -s[i])[:3]
        dcg = sum(_gain(y[i]) / math.log2(2 + r) for r, i in enumerate(order))
        _close(value[b], 1.0 - dcg / _idcg(y, 3))


# ------------------------------------------------------------------------------------------
# Position-aware ListMLE


def _reference_position_aware_listmle(s: list[float], y: list[float]) -> float:
    n = len(s)
    order = sorted(range(n), key=lambda i: -y[i])  # stable: ties in input order
    total = 0.0
    for t in range(1, n + 1):
        rest = [s[order[u - 1]] for u in range(t, n + 1)]
        term = math.log(sum(math.exp(v) for v in rest)) - s[order[t - 1]]
        total += (2.0 ** (n - t) - 1.0) * term
    norm = sum(2.0 ** (n - t) - 1.0 for t in range(1, n + 1))
    return total / norm if norm else 0.0


def test_position_aware_listmle_equals_the_reference():
    values = RF.position_aware_listmle_loss(SCORES, LABELS, MASK, reduction="none")
    for b, (s, y, _) in enumerate(_rows()):
        _close(values[b], _reference_position_aware_listmle(s, y))


def test_position_aware_listmle_weighs_early_stages_more_than_listmle():
    # Stage weights (7, 3, 1, 0) / 11 for four items: swapping the top two items changes
    # stages 1 and 2, swapping the bottom two only stage 3 (and the weightless stage 4), so the
    # added loss, relative to plain ListMLE's, is larger for the swap at the top.
    labels = torch.tensor([[3.0, 2.0, 1.0, 0.0]], dtype=torch.float64)
    right = torch.tensor([[3.0, 2.0, 1.0, 0.0]], dtype=torch.float64)
    top_swapped = torch.tensor([[2.0, 3.0, 1.0, 0.0]], dtype=torch.float64)
    bottom_swapped = torch.tensor([[3.0, 2.0, 0.0, 1.0]], dtype=torch.float64)

    def ratio(scores: torch.Tensor) -> float:
        aware = RF.position_aware_listmle_loss(scores, labels)
        aware = aware - RF.position_aware_listmle_loss(right, labels)
        plain = RF.listmle_loss(scores, labels) - RF.listmle_loss(right, labels)
        return float(aware / plain)

    assert ratio(top_swapped) >= 3 / 11 - 1e-12
    assert ratio(bottom_swapped) <= 1 / 11 + 1e-12


def test_position_aware_listmle_equals_sentence_transformers_plistmle():
    losses = pytest.importorskip("sentence_transformers.cross_encoder.losses")

    class Scores(torch.nn.Module):
        """A stand-in cross-encoder whose score for a (query, document) pair is looked up."""

        num_labels = 1
        device = torch.device("cpu")

        def __init__(self, table: dict[tuple[str, str], float]) -> None:
            super().__init__()
            self.keys = list(table)
            self.values = torch.tensor(list(table.values()))

        def preprocess(self, pairs, prompt=None, task=None):
            return {"index": torch.tensor([self.keys.index(p) for p in pairs])}

        def forward(self, tokens):
            return {"scores": self.values[tokens["index"]]}

    labels = torch.tensor(
        [[2.0, 0.5, 1.0, 3.0, 0.0], [1.0, 0.0, 2.0, 4.0, 0.0], [1.0, 0.0, 0.5, 0.0, 0.0]]
    )
    queries = ["q0", "q1", "q2"]
    documents = [[f"d{b}{i}" for i in range(5) if MASK[b, i]] for b in range(3)]
    table = {
        (queries[b], f"d{b}{i}"): SCORES[b, i].item()
        for b in range(3)
        for i in range(5)
        if MASK[b, i]
    }
    peer = losses.PListMLELoss(Scores(table), respect_input_order=False)
    expected = peer([queries, documents], [labels[b][MASK[b]] for b in range(3)])
    value = RF.position_aware_listmle_loss(SCORES.float(), labels, MASK)
    torch.testing.assert_close(value, expected)


def test_position_aware_listmle_stays_finite_for_long_lists():
    scores = torch.randn(2, 400, requires_grad=True)
    labels = torch.randint(0, 5, (2, 400)).float()
    value = RF.position_aware_listmle_loss(scores, labels)
    value.backward()
    assert torch.isfinite(value) and torch.isfinite(scores.grad).all()


# ------------------------------------------------------------------------------------------
# RankCosine


def _reference_rank_cosine(s: list[float], y: list[float], w: list[float] | None = None) -> float:
    w = w or [1.0] * len(s)
    dot = sum(wi * a * b for wi, a, b in zip(w, y, s))
    ny = math.sqrt(sum(wi * a * a for wi, a in zip(w, y)))
    ns = math.sqrt(sum(wi * b * b for wi, b in zip(w, s)))
    return 0.5 * (1.0 - dot / (ny * ns))


def test_rank_cosine_equals_the_reference_with_and_without_item_weights():
    weights = torch.tensor([[1.0, 0.5, 2.0, 1.5, 0.7]] * 3, dtype=torch.float64)
    values = RF.rank_cosine_loss(SCORES, LABELS - 1.0, MASK, reduction="none")
    weighted = RF.rank_cosine_loss(SCORES, LABELS, MASK, weights=weights, reduction="none")
    for b, (s, y, m) in enumerate(_rows()):
        _close(values[b], _reference_rank_cosine(s, [v - 1.0 for v in y]))
        _close(weighted[b], _reference_rank_cosine(s, y, weights[b][m].tolist()))


def test_rank_cosine_is_scale_invariant_bounded_and_finite_at_zero_scores():
    value = RF.rank_cosine_loss(SCORES, LABELS, MASK, reduction="none")
    torch.testing.assert_close(
        RF.rank_cosine_loss(SCORES * 1e6, LABELS * 7.0, MASK, reduction="none"), value
    )
    assert ((value >= 0) & (value <= 1)).all()
    _close(RF.rank_cosine_loss(LABELS, LABELS, MASK), 0.0)
    _close(RF.rank_cosine_loss(-LABELS, LABELS), 1.0)
    zeros = torch.zeros_like(SCORES, requires_grad=True)
    zero_value = RF.rank_cosine_loss(zeros, LABELS, MASK)
    zero_value.backward()
    _close(zero_value, 0.5)
    assert torch.isfinite(zeros.grad).all() and (zeros.grad[MASK & (LABELS > 0)] < 0).all()


# ------------------------------------------------------------------------------------------
# Soft-rank NDCG


@pytest.mark.parametrize("epsilon", [0.2, 1.0])
def test_soft_rank_ndcg_equals_the_reference(epsilon):
    values = RF.soft_rank_ndcg_loss(
        SCORES, LABELS, MASK, regularization_strength=epsilon, reduction="none"
    )
    for b, (s, y, _) in enumerate(_rows()):
        ranks = _reference_soft_rank(np.array(s), epsilon)
        dcg = sum(_gain(yi) / math.log2(1.0 + r) for yi, r in zip(y, ranks))
        torch.testing.assert_close(
            values[b], torch.tensor(1.0 - dcg / _idcg(y), dtype=torch.float64), atol=1e-6, rtol=0
        )


def test_soft_rank_ndcg_at_small_strength_is_one_minus_ndcg():
    values = RF.soft_rank_ndcg_loss(
        SCORES, LABELS, MASK, regularization_strength=1e-6, gain="linear", reduction="none"
    )
    for b, (s, y, _) in enumerate(_rows()):
        order = sorted(range(len(s)), key=lambda i: -s[i])
        dcg = sum(y[i] / math.log2(2 + r) for r, i in enumerate(order))
        _close(values[b], 1.0 - dcg / _idcg(y, kind="linear"))


# ------------------------------------------------------------------------------------------
# Modules


@pytest.mark.badinput("losses")
def test_bad_hyper_parameters_fail_when_built():
    with pytest.raises(ValueError, match="PiRankLoss: temperature must be > 0"):
        PiRankLoss(temperature=0.0)
    with pytest.raises(ValueError, match="PiRankLoss: k must be"):
        PiRankLoss(k=0)
    with pytest.raises(ValueError, match="SoftRankNDCGLoss: regularization_strength must be > 0"):
        SoftRankNDCGLoss(regularization_strength=-1.0)
    with pytest.raises(ValueError, match="GumbelApproxNDCGLoss: alpha must be > 0"):
        GumbelApproxNDCGLoss(alpha=0.0)
    with pytest.raises(ValueError, match="RankCosineLoss: reduction must be"):
        RankCosineLoss(reduction="avg")  # type: ignore[arg-type]


def test_names_and_aliases():
    assert isinstance(get("PListMLELoss"), PositionAwareListMLELoss)
    assert isinstance(get("XENDCGLoss"), XENDCGLoss)
    assert isinstance(get("PiRank"), PiRankLoss)


def test_position_aware_listmle_has_a_finite_second_derivative():
    """Its last stage's weight is 0; an exact-zero gradient into logcumsumexp made every
    second derivative NaN (a gradient penalty, a learned task weight)."""
    s = torch.tensor([[0.5, -1.0, 2.0, 0.3]], dtype=torch.float64, requires_grad=True)
    y = torch.tensor([[2.0, 0.0, 1.0, 0.0]], dtype=torch.float64)
    mask = torch.tensor([[True, True, True, False]])
    assert torch.autograd.gradgradcheck(lambda t: RF.position_aware_listmle_loss(t, y, mask), (s,))
    w = torch.tensor(2.0, dtype=torch.float64, requires_grad=True)
    (g,) = torch.autograd.grad(w * RF.position_aware_listmle_loss(s, y), s, create_graph=True)
    (dw,) = torch.autograd.grad(g.pow(2).sum(), w)
    assert dw.item() == pytest.approx((2 * g.pow(2).sum() / w).item(), rel=1e-12)

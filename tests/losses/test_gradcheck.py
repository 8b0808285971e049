"""``torch.autograd.gradcheck`` in float64 for every differentiable loss.

Inputs are chosen away from the points where a loss is not differentiable (see
``_far_from_kinks``): LambdaRank / LambdaLoss weights are constants of the current ranking, which
changes where two scores tie; MAE has a kink where a score equals its label; the hinge losses
where a score (difference) meets the margin.
"""

from __future__ import annotations

import pytest
import torch
from torch.autograd import gradcheck

import rankloss.functional as RF
from tests.losses._cases import (
    DIFFERENTIABLE_LABELS,
    SURROGATE_GRADIENT,
    call,
    fit_labels,
    list_loss_names,
)

NAMES = [name for name in list_loss_names() if name not in SURROGATE_GRADIENT]
LABELS = torch.tensor(
    [[2, 0, 1, 3, 0, 4, 1], [0, 0, 2, 1, 3, 0, 0], [1, 1, 1, 1, 2, 0, 4]], dtype=torch.float64
)
MASK = torch.tensor(
    [[1, 1, 1, 1, 1, 1, 1], [1, 1, 0, 1, 1, 0, 1], [1, 0, 1, 1, 1, 1, 0]], dtype=torch.bool
)
ITEM_WEIGHTS = torch.tensor([[1.0, 0.5, 2.0, 1.5, 0.7, 1.2, 0.9]] * 3, dtype=torch.float64)
SOFT_SHIFT = 0.23  # soft labels are integers + SOFT_SHIFT
GAP = 0.02  # distance kept from every kink; gradcheck steps by 1e-6


def _far_from_kinks(scores: torch.Tensor) -> bool:
    """No real score near an integer, a half-integer or integer + SOFT_SHIFT (labels, soft
    labels, margins 1 and 0.5, beta); no two scores of a list within GAP of each other or of a
    difference of 1 (pairwise margin; rank changes of the lambda weights)."""
    s = scores[MASK]
    for kink in (0.0, 0.5, SOFT_SHIFT):
        shifted = s - kink
        if ((shifted - shifted.round()).abs() < GAP).any():
            return False
    for row, mask in zip(scores, MASK):
        real = row[mask]
        diff = (real.unsqueeze(0) - real.unsqueeze(1)).abs()
        off_diagonal = diff[~torch.eye(len(real), dtype=torch.bool)]
        if (off_diagonal < GAP).any() or ((off_diagonal - off_diagonal.round()).abs() < GAP).any():
            return False
    return True


def _scores() -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    for _ in range(10_000):
        candidate = torch.rand(MASK.shape, generator=g, dtype=torch.float64) * 5.0 - 2.5
        if _far_from_kinks(candidate):
            return candidate
    raise AssertionError("no kink-free scores found")


SCORES = _scores()


@pytest.mark.parametrize("reduction", ["mean", "none"])
@pytest.mark.parametrize("name", NAMES)
def test_gradcheck_scores_and_item_weights(name, reduction):
    labels = fit_labels(name, LABELS - 1.0)  # negative labels too, where accepted
    scores = SCORES.clone().requires_grad_(True)
    weights = ITEM_WEIGHTS.clone().requires_grad_(True)

    def f(s, w):
        return call(name, s, labels, MASK, weights=w, reduction=reduction)

    assert gradcheck(f, (scores, weights), eps=1e-6, atol=1e-7, rtol=1e-5)


@pytest.mark.parametrize("name", NAMES)
def test_gradcheck_with_list_weights(name):
    labels = fit_labels(name, LABELS)
    scores = SCORES.clone().requires_grad_(True)
    list_weights = torch.tensor([0.5, 2.0, 1.0], dtype=torch.float64, requires_grad=True)

    def f(s, w):
        return call(name, s, labels, MASK, weights=w, reduction="mean")

    assert gradcheck(f, (scores, list_weights), eps=1e-6, atol=1e-7, rtol=1e-5)


@pytest.mark.parametrize("name", sorted(DIFFERENTIABLE_LABELS))
def test_gradcheck_soft_labels(name):
    """Losses whose labels are soft targets (regression, distillation) pass gradients to them."""
    labels = (fit_labels(name, LABELS - 1.0) + SOFT_SHIFT).requires_grad_(True)
    scores = SCORES.clone().requires_grad_(True)

    def f(s, y):
        return call(name, s, y, MASK, reduction="sum")

    assert gradcheck(f, (scores, labels), eps=1e-6, atol=1e-7, rtol=1e-5)


@pytest.mark.parametrize(
    "name, hyper",
    [
        ("ranknet", {"k": 2, "sigma": 2.0}),
        ("pairwise_hinge", {"k": 3}),
        ("lambdarank", {"k": 3, "gain": "linear"}),
        ("lambdaloss", {"weighting": "ndcg_loss2", "k": 2}),
        ("lambdaloss", {"weighting": "lambdarank"}),
        ("neural_ndcg", {"k": 3, "temperature": 0.5, "sinkhorn_iterations": 10}),
        ("approx_ndcg", {"alpha": 1.0, "gain": "linear"}),
        ("smooth_l1", {"beta": 0.5}),
        ("hinge", {"margin": 0.5, "relevance_threshold": 1.5}),
    ],
)
def test_gradcheck_hyper_parameters(name, hyper):
    scores = SCORES.clone().requires_grad_(True)
    labels = LABELS

    def f(s):
        return getattr(RF, f"{name}_loss")(s, labels, MASK, **hyper)

    assert gradcheck(f, (scores,), eps=1e-6, atol=1e-7, rtol=1e-5)


@pytest.mark.parametrize("kind", ["non_saturating", "hinge", "least_squares"])
def test_gradcheck_adversarial(kind):
    real = SCORES[0].clone().requires_grad_(True)  # away from the hinge kinks at +-1
    fake = SCORES[1].clone().requires_grad_(True)
    assert gradcheck(lambda r, f: RF.discriminator_loss(r, f, kind=kind), (real, fake))
    assert gradcheck(lambda f: RF.generator_loss(f, kind=kind, reduction="none"), (fake,))

"""Differentiable sorting operators: NeuralSort, SoftSort, soft sort and soft rank.

The permutahedron projections are checked against an independent float64 brute force: the
projection as a quadratic programme over every subset constraint of the permutahedron, solved
by scipy's SLSQP; the isotonic regression against scikit-learn's.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
from scipy.optimize import minimize
from sklearn.isotonic import IsotonicRegression
from torch.autograd import gradcheck

import rankloss.functional as RF
from rankloss.functional.sorting import isotonic_nonincreasing

# ------------------------------------------------------------------------------------------
# References


def _project_onto_permutahedron(z: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Euclidean projection of ``z`` onto conv{permutations of ``w``} by brute force: the
    permutahedron is {mu : sum(mu) = sum(w), sum over any k coordinates <= sum of the k
    largest w}."""
    # The projection commutes with a common scaling; SLSQP is happiest with entries near 1.
    scale = max(np.abs(z).max(), np.abs(w).max(), 1e-12)
    z, w = z / scale, w / scale
    n = len(z)
    top = np.cumsum(np.sort(w)[::-1])
    constraints = [{"type": "eq", "fun": lambda mu: mu.sum() - w.sum()}]
    for size in range(1, n):
        for subset in itertools.combinations(range(n), size):
            idx = list(subset)
            constraints.append(
                {"type": "ineq", "fun": lambda mu, idx=idx, k=size: top[k - 1] - mu[idx].sum()}
            )
    start = np.full(n, w.mean())
    result = minimize(
        lambda mu: 0.5 * ((mu - z) ** 2).sum(),
        start,
        jac=lambda mu: mu - z,
        constraints=constraints,
        method="SLSQP",
        options={"ftol": 1e-14, "maxiter": 500},
    )
    assert result.success, result.message
    return result.x * scale


def _reference_soft_rank(theta: np.ndarray, epsilon: float) -> np.ndarray:
    n = len(theta)
    return _project_onto_permutahedron(-theta / epsilon, np.arange(n, 0, -1.0))


def _reference_soft_sort(theta: np.ndarray, epsilon: float) -> np.ndarray:
    n = len(theta)
    return _project_onto_permutahedron(np.arange(n, 0, -1.0) / epsilon, theta)


def _reference_neural_sort(s: list[float], temperature: float) -> list[list[float]]:
    n = len(s)
    out = []
    for t in range(1, n + 1):
        logits = [
            ((n + 1 - 2 * t) * s[j] - sum(abs(s[j] - s[k]) for k in range(n))) / temperature
            for j in range(n)
        ]
        top = max(logits)
        e = [math.exp(v - top) for v in logits]
        out.append([v / sum(e) for v in e])
    return out


def _reference_soft_sort_matrix(s: list[float], temperature: float) -> list[list[float]]:
    ordered = sorted(s, reverse=True)
    out = []
    for t in range(len(s)):
        logits = [-abs(ordered[t] - s[j]) / temperature for j in range(len(s))]
        top = max(logits)
        e = [math.exp(v - top) for v in logits]
        out.append([v / sum(e) for v in e])
    return out


VALUES = torch.tensor(
    [[0.3, 2.0, -1.0, 0.5, 0.45], [1.2, -0.7, 0.1, 0.0, 2.5], [0.2, 0.27, 0.9, -0.4, 0.1]],
    dtype=torch.float64,
)
MASK = torch.tensor(
    [
        [True, True, True, True, True],
        [True, False, True, True, False],
        [True, True, False, True, True],
    ]
)


# ------------------------------------------------------------------------------------------
# Isotonic regression


@pytest.mark.badinput("losses")
def test_isotonic_regression_refuses_bad_lengths_and_values():
    y = torch.tensor([[3.0, 1.0, 0.0]])
    for lengths, message in [
        (torch.tensor([-1]), r"lengths must be in 0\.\.3, got -1 to -1"),
        (torch.tensor([4]), r"lengths must be in 0\.\.3, got 4 to 4"),
        (torch.tensor([1.5]), r"lengths must be \[B\] = \[1\] integers, got torch.float32"),
        (torch.tensor([1, 2]), r"lengths must be \[B\] = \[1\] integers"),
    ]:
        with pytest.raises(ValueError, match=message):
            isotonic_nonincreasing(y, lengths)
    with pytest.raises(ValueError, match="not finite within a row's length"):
        isotonic_nonincreasing(torch.tensor([[3.0, math.nan, 0.0]]), torch.tensor([2]))
    # a NaN beyond the length is ignored
    out = isotonic_nonincreasing(torch.tensor([[1.0, 3.0, math.nan]]), torch.tensor([2]))
    assert out.tolist() == [[2.0, 2.0, 0.0]]


def test_isotonic_regression_equals_scikit_learn():
    g = torch.Generator().manual_seed(0)
    y = torch.randn(6, 9, generator=g, dtype=torch.float64)
    lengths = torch.tensor([9, 5, 0, 1, 9, 3])
    out = isotonic_nonincreasing(y, lengths)
    for row, m in zip(range(6), lengths.tolist()):
        if m:
            x = np.arange(m)
            expected = IsotonicRegression(increasing=False).fit(x, y[row, :m].numpy()).predict(x)
            np.testing.assert_allclose(out[row, :m].numpy(), expected, atol=1e-12)
        assert (out[row, m:] == 0).all()


def test_isotonic_gradient_averages_within_blocks():
    y = torch.tensor([[1.0, 3.0, 2.6, 0.0, -1.0, 5.0]], dtype=torch.float64, requires_grad=True)
    lengths = torch.tensor([5])
    out = isotonic_nonincreasing(y, lengths)
    # blocks: {0, 1, 2} (mean 2.2), {3}, {4}; position 5 is padding
    torch.testing.assert_close(out, torch.tensor([[2.2, 2.2, 2.2, 0.0, -1.0, 0.0]]).double())
    grad = torch.tensor([[3.0, 0.0, 6.0, 1.0, 2.0, 9.0]], dtype=torch.float64)
    out.backward(grad)
    torch.testing.assert_close(y.grad, torch.tensor([[3.0, 3.0, 3.0, 1.0, 2.0, 0.0]]).double())
    assert gradcheck(lambda v: isotonic_nonincreasing(v, lengths), (y.detach().requires_grad_(),))


# ------------------------------------------------------------------------------------------
# Soft rank and soft sort: values


@pytest.mark.parametrize("epsilon", [0.1, 0.5, 1.0, 3.0])
def test_soft_rank_equals_the_brute_force_projection(epsilon):
    out = RF.soft_rank(VALUES, MASK, regularization_strength=epsilon)
    for row, mask in zip(range(len(VALUES)), MASK):
        expected = _reference_soft_rank(VALUES[row][mask].numpy(), epsilon)
        np.testing.assert_allclose(out[row][mask].numpy(), expected, atol=1e-6)
        assert (out[row][~mask] == 0).all()


@pytest.mark.parametrize("epsilon", [0.1, 0.5, 1.0, 3.0])
def test_soft_sort_equals_the_brute_force_projection(epsilon):
    out = RF.soft_sort(VALUES, MASK, regularization_strength=epsilon)
    for row, mask in zip(range(len(VALUES)), MASK):
        m = int(mask.sum())
        expected = _reference_soft_sort(VALUES[row][mask].numpy(), epsilon)
        np.testing.assert_allclose(out[row, :m].numpy(), expected, atol=1e-6)
        assert (out[row, m:] == 0).all()


def test_small_strength_gives_the_hard_sort_and_rank():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(4, 7, generator=g, dtype=torch.float64)
    hard_desc = torch.sort(x, dim=-1, descending=True).values
    torch.testing.assert_close(RF.soft_sort(x, regularization_strength=1e-6), hard_desc)
    torch.testing.assert_close(
        RF.soft_sort(x, regularization_strength=1e-6, descending=False), hard_desc.flip(-1)
    )
    ranks = torch.argsort(torch.argsort(x, dim=-1, descending=True), dim=-1) + 1
    torch.testing.assert_close(RF.soft_rank(x, regularization_strength=1e-6), ranks.double())
    ascending = torch.argsort(torch.argsort(x, dim=-1), dim=-1) + 1
    torch.testing.assert_close(
        RF.soft_rank(x, regularization_strength=1e-6, descending=False), ascending.double()
    )


def test_large_strength_gives_the_mean():
    x = VALUES[0]
    torch.testing.assert_close(
        RF.soft_sort(x, regularization_strength=1e6),
        torch.full_like(x, float(x.mean())),
        atol=1e-5,
        rtol=0,
    )
    torch.testing.assert_close(
        RF.soft_rank(x, regularization_strength=1e6), torch.full_like(x, 3.0), atol=1e-5, rtol=0
    )


def test_projection_invariants_sum_and_range():
    g = torch.Generator().manual_seed(2)
    x = torch.randn(5, 8, generator=g, dtype=torch.float64)
    for epsilon in (0.05, 0.7, 5.0):
        ranks = RF.soft_rank(x, regularization_strength=epsilon)
        torch.testing.assert_close(ranks.sum(-1), torch.full((5,), 36.0, dtype=torch.float64))
        assert (ranks >= 1 - 1e-12).all() and (ranks <= 8 + 1e-12).all()
        sorted_ = RF.soft_sort(x, regularization_strength=epsilon)
        torch.testing.assert_close(sorted_.sum(-1), x.sum(-1))
        assert (sorted_[:, :-1] >= sorted_[:, 1:] - 1e-12).all()


def test_ties_get_equal_soft_ranks_and_any_order_of_ties_gives_the_same_result():
    x = torch.tensor([[0.5, 1.0, 0.5, -2.0, 1.0]], dtype=torch.float64)
    for epsilon in (1e-4, 0.3, 2.0):
        ranks = RF.soft_rank(x, regularization_strength=epsilon)
        assert ranks[0, 0] == ranks[0, 2] and ranks[0, 1] == ranks[0, 4]
        flipped = RF.soft_rank(x.flip(-1), regularization_strength=epsilon).flip(-1)
        torch.testing.assert_close(flipped, ranks)
    torch.testing.assert_close(
        RF.soft_rank(x, regularization_strength=1e-6),
        torch.tensor([[3.5, 1.5, 3.5, 5.0, 1.5]], dtype=torch.float64),
    )


@pytest.mark.parametrize("operator", [RF.soft_rank, RF.soft_sort])
def test_masking_equals_deleting_and_padding_gets_no_gradient(operator):
    garbage = VALUES.clone()
    garbage[~MASK] = float("nan")
    x = garbage.clone().requires_grad_(True)
    out = operator(x, MASK, regularization_strength=0.4)
    (out * torch.arange(1.0, 6.0, dtype=torch.float64)).sum().backward()
    assert torch.isfinite(out).all() and (x.grad[~MASK] == 0).all()
    for row, mask in zip(range(len(VALUES)), MASK):
        alone = operator(VALUES[row][mask], regularization_strength=0.4)
        if operator is RF.soft_rank:
            torch.testing.assert_close(out[row][mask], alone)
        else:
            torch.testing.assert_close(out[row, : int(mask.sum())], alone)


@pytest.mark.parametrize("descending", [True, False])
@pytest.mark.parametrize("operator", [RF.soft_rank, RF.soft_sort])
def test_gradcheck(operator, descending):
    x = VALUES.clone().requires_grad_(True)
    assert gradcheck(
        lambda v: operator(v, MASK, regularization_strength=0.7, descending=descending), (x,)
    )


def test_batch_shapes_and_half_precision():
    x = torch.randn(2, 3, 6)
    for operator in (RF.soft_rank, RF.soft_sort):
        out = operator(x)
        assert out.shape == x.shape
        torch.testing.assert_close(out[1, 2], operator(x[1, 2]))
        half = operator(x.half())
        assert half.dtype == torch.float32
        torch.testing.assert_close(half, operator(x.half().float()))
        assert operator(torch.zeros(3, 0)).shape == (3, 0)


# ------------------------------------------------------------------------------------------
# NeuralSort and SoftSort matrices


@pytest.mark.parametrize("temperature", [0.3, 1.0, 4.0])
def test_neural_sort_equals_the_loop_reference(temperature):
    out = RF.neural_sort(VALUES, MASK, temperature=temperature)
    for row, mask in zip(range(len(VALUES)), MASK):
        m = int(mask.sum())
        expected = torch.tensor(_reference_neural_sort(VALUES[row][mask].tolist(), temperature))
        torch.testing.assert_close(out[row][:m][:, mask], expected.double())
        assert (out[row][m:] == 0).all() and (out[row][:, ~mask] == 0).all()


@pytest.mark.parametrize("temperature", [0.3, 1.0, 4.0])
def test_soft_sort_matrix_equals_the_loop_reference(temperature):
    out = RF.soft_sort_matrix(VALUES, MASK, temperature=temperature)
    for row, mask in zip(range(len(VALUES)), MASK):
        m = int(mask.sum())
        reference = _reference_soft_sort_matrix(VALUES[row][mask].tolist(), temperature)
        torch.testing.assert_close(out[row][:m][:, mask], torch.tensor(reference).double())
        assert (out[row][m:] == 0).all() and (out[row][:, ~mask] == 0).all()


@pytest.mark.parametrize("operator", [RF.neural_sort, RF.soft_sort_matrix])
def test_small_temperature_gives_the_hard_permutation(operator):
    x = torch.tensor([[0.3, 2.0, -1.0, 0.5]], dtype=torch.float64)
    matrix = operator(x, temperature=1e-3)
    hard = torch.nn.functional.one_hot(torch.argsort(x, descending=True), 4).double()
    torch.testing.assert_close(matrix, hard)
    torch.testing.assert_close(
        (matrix @ x.unsqueeze(-1)).squeeze(-1), x.sort(descending=True).values
    )


@pytest.mark.parametrize("operator", [RF.neural_sort, RF.soft_sort_matrix])
def test_permutation_matrices_gradcheck_and_padding(operator):
    garbage = VALUES.clone()
    garbage[~MASK] = float("inf")
    x = garbage.clone().requires_grad_(True)
    out = operator(x, MASK, temperature=0.8)
    out.sum().backward()
    assert torch.isfinite(out).all() and (x.grad[~MASK] == 0).all()
    rows = out.sum(-1)
    for row, mask in zip(range(len(VALUES)), MASK):
        m = int(mask.sum())
        torch.testing.assert_close(rows[row, :m], torch.ones(m, dtype=torch.float64))
    weights = torch.randn(3, 5, 5, dtype=torch.float64)
    assert gradcheck(
        lambda v: (operator(v, MASK, temperature=0.8) * weights).sum(),
        (VALUES.clone().requires_grad_(),),
    )


@pytest.mark.parametrize("operator", [RF.neural_sort, RF.soft_sort_matrix])
def test_permutation_matrices_far_below_zero_equal_the_shifted_ones(operator):
    """Scores around -2e9 (valid, float64): the rows of real items still sum to 1 and equal
    those of the scores 2e9 higher (padding stays out of every softmax)."""
    low = operator(VALUES - 2e9, MASK, temperature=1.0)
    torch.testing.assert_close(low, operator(VALUES, MASK, temperature=1.0), rtol=1e-5, atol=1e-5)
    for row, mask in zip(range(len(VALUES)), MASK):
        m = int(mask.sum())
        torch.testing.assert_close(low.sum(-1)[row, :m], torch.ones(m, dtype=torch.float64))


def test_extreme_values_stay_finite():
    x = torch.tensor([[1e4, -1e4, 0.0, 1e4 + 1.0]], requires_grad=True)
    for out in (
        RF.neural_sort(x, temperature=0.1),
        RF.soft_sort_matrix(x, temperature=0.1),
        RF.soft_rank(x, regularization_strength=0.1),
        RF.soft_sort(x, regularization_strength=0.1),
    ):
        out.sum().backward()
        assert torch.isfinite(out).all() and torch.isfinite(x.grad).all()
        x.grad = None


# ------------------------------------------------------------------------------------------
# Bad input


@pytest.mark.badinput("losses")
def test_bad_arguments_are_refused():
    x = torch.randn(2, 4)
    with pytest.raises(ValueError, match="neural_sort: temperature must be > 0"):
        RF.neural_sort(x, temperature=0.0)
    with pytest.raises(ValueError, match="soft_sort_matrix: power must be > 0"):
        RF.soft_sort_matrix(x, power=-1.0)
    with pytest.raises(ValueError, match="soft_rank: regularization_strength must be > 0"):
        RF.soft_rank(x, regularization_strength=0.0)
    with pytest.raises(ValueError, match="soft_sort: values holds NaN or inf"):
        RF.soft_sort(torch.tensor([1.0, float("nan")]))
    with pytest.raises(ValueError, match="soft_rank: mask must be a bool tensor"):
        RF.soft_rank(x, torch.ones(2, 3, dtype=torch.bool))
    with pytest.raises(ValueError, match="floating point"):
        RF.soft_rank(torch.arange(4))


def test_peer_torchsort_agrees_where_installed():
    torchsort = pytest.importorskip("torchsort")
    x = VALUES[:, :4].float()
    for epsilon in (0.1, 1.0):
        # torchsort ranks ascending (1 for the smallest) and sorts ascending.
        torch.testing.assert_close(
            RF.soft_rank(x, regularization_strength=epsilon, descending=False),
            torchsort.soft_rank(x, regularization_strength=epsilon),
        )
        torch.testing.assert_close(
            RF.soft_sort(x, regularization_strength=epsilon, descending=False),
            torchsort.soft_sort(x, regularization_strength=epsilon),
        )


@pytest.mark.parametrize("epsilon", [1e-12, 1e-16, 1e-18, 1e-300])
def test_a_tiny_strength_gives_the_hard_limit_not_zeros(epsilon):
    """The projection used to subtract numbers of size 1 / eps: below about 1e-16 (for
    scores near 1) every digit was lost and ranks of 0 came out, outside [1, n]."""
    x = torch.tensor([[3.0, 1.0, 2.0, 0.5], [1.0, 1.0, 2.0, 0.0]], requires_grad=True)
    ranks = RF.soft_rank(x, regularization_strength=epsilon)
    assert ranks.tolist() == [[1.0, 3.0, 2.0, 4.0], [2.5, 2.5, 1.0, 4.0]]
    assert RF.soft_sort(x, regularization_strength=epsilon).tolist() == [
        [3.0, 2.0, 1.0, 0.5],
        [2.0, 1.0, 1.0, 0.0],
    ]
    scaled = RF.soft_rank(x.detach() * 1000, regularization_strength=epsilon)
    assert scaled.tolist() == ranks.tolist()
    y = torch.tensor([[2.0, 0.0, 1.0, 0.0], [1.0, 0.0, 2.0, 0.0]])
    loss = RF.soft_rank_ndcg_loss(x, y, regularization_strength=epsilon)
    loss.backward()
    assert torch.isfinite(loss) and x.grad is not None
    # Inside a tie the rank moves by about 1 / eps per unit of score: finite until 1 / eps
    # overflows the input's dtype (float32 here), as the exact gradient does.
    if epsilon >= 1e-18:
        assert torch.isfinite(x.grad).all()


@pytest.mark.parametrize(
    ("function", "values", "epsilon", "jacobian"),
    [
        (RF.soft_rank, [1.0, 0.0], 1.0, [[0.0, 0.0], [0.0, 0.0]]),
        (RF.soft_sort, [1.0, 0.0], 1.0, [[1.0, 0.0], [0.0, 1.0]]),
        (RF.soft_sort, [0.5, 0.0, 0.0, -0.5], 2.0, torch.eye(4).tolist()),
    ],
)
def test_at_a_kink_the_gradient_is_the_isotonic_operators(function, values, epsilon, jacobian):
    """Two neighbouring blocks of equal fitted value stay two blocks, as pool adjacent
    violators leaves them (and as isotonic_nonincreasing differentiates)."""
    x = torch.tensor([values], dtype=torch.float64, requires_grad=True)
    y = function(x, regularization_strength=epsilon)
    rows = [torch.autograd.grad(y[0, i], x, retain_graph=True)[0][0] for i in range(len(values))]
    assert torch.stack(rows).tolist() == jacobian

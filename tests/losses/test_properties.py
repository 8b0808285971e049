"""Invariances every list loss must satisfy, over every registered loss of the list families.

A loss registered in family pointwise, pairwise or listwise is picked up automatically; if it
needs special inputs, say so in ``tests/losses/_cases.py``.
"""

from __future__ import annotations

import inspect
import math

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rankloss._core import ranking
from tests.losses._cases import (
    NONNEGATIVE_LABELS,
    ORDER_DEPENDENT_LABEL_TIES,
    ORDER_DEPENDENT_SCORE_TIES,
    call,
    fit_labels,
    function,
    list_loss_names,
)

NAMES = list_loss_names()
SETTINGS = settings(
    max_examples=20,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
GARBAGE = [math.nan, math.inf, -math.inf, 1e30, -7.0]
SCORE = st.floats(-4.0, 4.0, allow_nan=False, allow_infinity=False)


@st.composite
def batches(
    draw,
    name: str,
    *,
    lists: int | None = None,
    permutation_safe: bool = False,
    min_items: int = 1,
):
    """``(scores, labels, mask, item_weights)`` float64 ``[b, n]`` with clean padding (zeros).

    ``permutation_safe`` draws distinct labels (distinct scores) per list for losses whose
    value depends on the input order of tied labels (scores).
    """
    b = lists if lists is not None else draw(st.integers(1, 4))
    n = draw(st.integers(min_items, 6))
    distinct_scores = permutation_safe and name in ORDER_DEPENDENT_SCORE_TIES
    distinct_labels = permutation_safe and name in ORDER_DEPENDENT_LABEL_TIES
    low = 0 if name in NONNEGATIVE_LABELS else -2
    scores, labels = [], []
    for _ in range(b):
        scores.append(draw(st.lists(SCORE, min_size=n, max_size=n, unique=distinct_scores)))
        if distinct_labels:
            labels.append([float(v + low) for v in draw(st.permutations(range(n)))])
        else:
            labels.append(
                [float(v) for v in draw(st.lists(st.integers(low, 4), min_size=n, max_size=n))]
            )
    mask = draw(st.lists(st.lists(st.booleans(), min_size=n, max_size=n), min_size=b, max_size=b))
    weights = draw(
        st.lists(st.lists(st.floats(0.1, 3.0), min_size=n, max_size=n), min_size=b, max_size=b)
    )
    mask_t = torch.tensor(mask, dtype=torch.bool).reshape(b, n)
    zero = torch.zeros((), dtype=torch.float64)

    def clean(values):
        return torch.where(mask_t, torch.tensor(values, dtype=torch.float64).reshape(b, n), zero)

    return clean(scores), clean(labels), mask_t, clean(weights)


def _value_and_grad(name, scores, labels, mask, **kwargs):
    scores = scores.detach().clone().requires_grad_(True)
    value = call(name, scores, labels, mask, **kwargs)
    value.sum().backward()
    return value.detach(), scores.grad


def _close(actual, expected, **kwargs):
    torch.testing.assert_close(actual, expected, rtol=1e-9, atol=1e-12, **kwargs)


@pytest.mark.parametrize("name", NAMES)
@SETTINGS
@given(data=st.data())
def test_garbage_in_padding_changes_nothing(name, data):
    scores, labels, mask, weights = data.draw(batches(name))
    garbage = data.draw(st.sampled_from(GARBAGE))
    dirty_scores = torch.where(mask, scores, torch.tensor(garbage, dtype=torch.float64))
    dirty_labels = torch.where(mask, labels, torch.tensor(-garbage, dtype=torch.float64))
    dirty_weights = torch.where(mask, weights, torch.tensor(garbage, dtype=torch.float64))
    for item_weights in (None, "item"):
        clean_w = weights if item_weights else None
        dirty_w = dirty_weights if item_weights else None
        for reduction in ("none", "mean"):
            v0, g0 = _value_and_grad(
                name, scores, labels, mask, weights=clean_w, reduction=reduction
            )
            v1, g1 = _value_and_grad(
                name, dirty_scores, dirty_labels, mask, weights=dirty_w, reduction=reduction
            )
            _close(v1, v0)
            _close(g1, g0)
            assert torch.isfinite(g1).all()
            assert (g1[~mask] == 0).all()


@pytest.mark.parametrize("name", NAMES)
@SETTINGS
@given(data=st.data())
def test_masking_equals_deleting(name, data):
    scores, labels, mask, weights = data.draw(batches(name))
    use_weights = data.draw(st.booleans())
    batch_w = weights if use_weights else None
    values, grads = _value_and_grad(name, scores, labels, mask, weights=batch_w, reduction="none")
    for b in range(scores.shape[0]):
        row_w = weights[b][mask[b]] if use_weights else None
        value, grad = _value_and_grad(
            name, scores[b][mask[b]], labels[b][mask[b]], None, weights=row_w, reduction="none"
        )
        assert value.shape == ()
        _close(values[b], value)
        _close(grads[b][mask[b]], grad)


@pytest.mark.parametrize("name", NAMES)
@SETTINGS
@given(data=st.data())
def test_masking_equals_deleting_far_below_zero(name, data):
    """Scores around -2e9 (float64: still 1e-7 apart) are valid: padding must not take part in
    any softmax or log-sum-exp then either (a finite stand-in logit such as -1e9 would)."""
    scores, labels, mask, _ = data.draw(batches(name))
    scores = scores - 2e9
    values, grads = _value_and_grad(name, scores, labels, mask, reduction="none")
    assert torch.isfinite(values).all() and torch.isfinite(grads).all()
    for b in range(scores.shape[0]):
        value, grad = _value_and_grad(
            name, scores[b][mask[b]], labels[b][mask[b]], None, reduction="none"
        )
        torch.testing.assert_close(values[b], value, rtol=1e-6, atol=1e-6)
        torch.testing.assert_close(grads[b][mask[b]], grad, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("name", NAMES)
@SETTINGS
@given(data=st.data())
def test_any_batch_shape(name, data):
    scores, labels, mask, weights = data.draw(batches(name, lists=6))
    list_weights = weights[:, 0]
    n = scores.shape[-1]
    flat = call(name, scores, labels, mask, reduction="none")
    grouped = call(
        name,
        scores.reshape(2, 3, n),
        labels.reshape(2, 3, n),
        mask.reshape(2, 3, n),
        reduction="none",
    )
    assert grouped.shape == (2, 3)
    _close(grouped, flat.reshape(2, 3))
    for reduction in ("mean", "sum"):
        for w_flat, w_grouped in (
            (list_weights, list_weights.reshape(2, 3)),
            (weights, weights.reshape(2, 3, n)),
        ):
            expected = call(name, scores, labels, mask, weights=w_flat, reduction=reduction)
            actual = call(
                name,
                scores.reshape(2, 3, n),
                labels.reshape(2, 3, n),
                mask.reshape(2, 3, n),
                weights=w_grouped,
                reduction=reduction,
            )
            assert actual.shape == ()
            _close(actual, expected)
    # One list without a batch dimension gives a 0-d result equal to that row.
    single = call(name, scores[1], labels[1], mask[1], reduction="none")
    assert single.shape == ()
    _close(single, flat[1])


@pytest.mark.parametrize("name", NAMES)
@SETTINGS
@given(data=st.data())
def test_permuting_items_changes_nothing(name, data):
    # ListMLE breaks ties in the labels in input order, and LambdaRank / LambdaLoss break ties
    # in the scores (the current ranking) in input order: a permutation changes which tied item
    # comes first, so those losses are drawn with distinct labels / scores.
    scores, labels, mask, weights = data.draw(batches(name, permutation_safe=True))
    seed = data.draw(st.integers(0, 2**16))
    g = torch.Generator().manual_seed(seed)
    perm = torch.stack([torch.randperm(scores.shape[-1], generator=g) for _ in scores])
    for w in (None, weights):
        expected = call(name, scores, labels, mask, weights=w, reduction="none")
        actual = call(
            name,
            scores.gather(-1, perm),
            labels.gather(-1, perm),
            mask.gather(-1, perm),
            weights=None if w is None else w.gather(-1, perm),
            reduction="none",
        )
        _close(actual, expected)


@pytest.mark.parametrize("name", NAMES)
@SETTINGS
@given(data=st.data())
def test_all_masked_gives_connected_zero(name, data):
    scores, labels, mask, weights = data.draw(batches(name))
    mask = torch.zeros_like(mask)
    list_weights = weights[:, 0]
    for reduction in ("mean", "sum", "none"):
        for w in (None, list_weights, weights):
            s = scores.clone().requires_grad_(True)
            value = call(name, s, labels, mask, weights=w, reduction=reduction)
            assert value.requires_grad, "a zero loss must stay connected to the graph"
            assert (value == 0).all()
            value.sum().backward()
            assert s.grad is not None and (s.grad == 0).all()


@pytest.mark.parametrize("name", NAMES)
@SETTINGS
@given(data=st.data())
def test_extreme_logits_stay_finite(name, data):
    scores, labels, mask, weights = data.draw(batches(name))
    signs = torch.tensor(
        data.draw(
            st.lists(
                st.sampled_from([-1.0, 1.0, 0.0]), min_size=scores.numel(), max_size=scores.numel()
            )
        ),
        dtype=torch.float64,
    ).reshape(scores.shape)
    extreme = scores + signs * 1e4
    for dtype in (torch.float64, torch.float32):
        s = extreme.to(dtype).detach().requires_grad_(True)
        value = call(name, s, labels.to(dtype), mask, weights=weights.to(dtype))
        value.backward()
        assert torch.isfinite(value), value
        assert torch.isfinite(s.grad).all(), s.grad


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("name", NAMES)
@SETTINGS
@given(data=st.data())
def test_half_precision_is_computed_in_float32(name, dtype, data):
    scores, labels, mask, weights = data.draw(batches(name))
    big = data.draw(st.booleans())
    if big:
        scores = scores * 2000.0  # up to 8e3: near the float16 range
    s = scores.to(dtype).detach().requires_grad_(True)
    for reduction in ("mean", "none"):
        value = call(
            name, s, labels.to(dtype), mask, weights=weights.to(dtype), reduction=reduction
        )
        assert value.dtype == torch.float32
        assert torch.isfinite(value).all()
    value = call(name, s, labels.to(dtype), mask)
    value.backward()
    assert s.grad.dtype == dtype
    assert torch.isfinite(s.grad).all()
    # The float32 result is the float32 loss of the (rounded) half inputs.
    expected = call(name, s.detach().float(), labels.to(dtype).float(), mask)
    torch.testing.assert_close(value, expected, rtol=1e-4, atol=1e-4)


# ------------------------------------------------------------------------------------------
# Edge cases, one per loss, no hypothesis needed


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("shape", [(3, 0), (0,), (2, 3, 0), (0, 5)], ids=str)
def test_empty_lists_give_connected_zero(name, shape):
    scores = torch.zeros(shape, dtype=torch.float64, requires_grad=True)
    labels = torch.zeros(shape, dtype=torch.float64)
    for reduction in ("mean", "sum", "none"):
        value = call(name, scores, labels, reduction=reduction)
        assert value.shape == (torch.Size(shape[:-1]) if reduction == "none" else ())
        assert value.requires_grad
        assert (value == 0).all()
        value.sum().backward()
        assert (scores.grad == 0).all()


@pytest.mark.parametrize("name", NAMES)
def test_one_item_and_all_equal_labels_are_finite(name):
    scores = torch.tensor([[0.5, 0.0, 0.0], [1.0, -2.0, 3.0]], dtype=torch.float64)
    labels = torch.tensor([[2.0, 0.0, 0.0], [1.0, 1.0, 1.0]], dtype=torch.float64)
    mask = torch.tensor([[True, False, False], [True, True, True]])
    s = scores.clone().requires_grad_(True)
    values = call(name, s, labels, mask, reduction="none")
    values.sum().backward()
    assert torch.isfinite(values).all() and torch.isfinite(s.grad).all()
    assert (s.grad[~mask] == 0).all()


@pytest.mark.parametrize(
    "name",
    [
        n
        for n in NAMES
        if n
        in (
            "ranknet",
            "pairwise_hinge",
            "bpr",
            "lambdarank",
            "lambdaloss",
            "approx_ndcg",
            "neural_ndcg",
            "softmax_ce",
        )
    ],
)
def test_lists_with_nothing_to_learn_are_left_out_of_the_mean(name):
    # Row 0 has only equal (zero) labels: no pair, no positive ideal DCG, no positive label.
    scores = torch.tensor([[5.0, -3.0, 1.0], [1.0, -2.0, 3.0]], dtype=torch.float64)
    labels = torch.tensor([[0.0, 0.0, 0.0], [2.0, 0.0, 1.0]], dtype=torch.float64)
    per_list = call(name, scores, labels, reduction="none")
    assert per_list[0] == 0 and per_list[1] > 0
    _close(call(name, scores, labels), per_list[1])
    _close(call(name, scores[:1], labels[:1]), torch.zeros((), dtype=torch.float64))


# ------------------------------------------------------------------------------------------
# Bad input (issue 14): a non-finite real input is refused; any finite label stays finite


@pytest.mark.badinput("losses")
@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf], ids=str)
@pytest.mark.parametrize("name", NAMES)
def test_non_finite_real_input_is_refused_with_its_position(name, bad):
    # lambdarank_loss(tensor([[.3, -.2, .1]]), tensor([[nan, 1., 0]])) gave 0.1773 and NaN
    # gradients; every list loss now refuses it, naming the argument and the position.
    scores = torch.tensor([[[0.3, -0.2, 0.1], [0.5, 0.4, -1.0]]], dtype=torch.float64)
    labels = torch.tensor([[[2.0, 1.0, 0.0], [0.0, 1.0, 1.0]]], dtype=torch.float64)
    mask = torch.tensor([[[True, True, True], [True, False, True]]])
    for argument in ("scores", "labels"):
        s, y = scores.clone(), labels.clone()
        (s if argument == "scores" else y)[0, 1, 2] = bad
        for m in (None, mask):
            with pytest.raises(
                ValueError, match=rf"_loss: {argument} holds -?{bad!s}.* at \[0, 1, 2\] \(a real"
            ):
                call(name, s, y, m)
        # The same value at a padded position is allowed and changes nothing.
        s[0, 1, 2], y[0, 1, 2] = scores[0, 1, 2], labels[0, 1, 2]
        (s if argument == "scores" else y)[0, 1, 1] = bad
        _close(call(name, s, y, mask), call(name, scores, labels, mask))


GAIN_LOSSES = [n for n in NAMES if "gain" in inspect.signature(function(n)).parameters]


@pytest.mark.badinput("losses")
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64])
@pytest.mark.parametrize("name", NAMES)
def test_large_labels_give_finite_values_and_gradients(name, dtype):
    # Label 200 gave inf for lambdarank, lambdaloss and approx_ndcg in float32 and float16: the
    # exp2 gain 2^y - 1 overflowed before the ideal DCG divided it.
    scores = torch.tensor([[0.3, -0.2, 0.1, 0.7], [0.3, -0.2, 0.1, 0.7]], dtype=dtype)
    labels = torch.tensor([[200.0, 1.0, 0.0, 130.0], [1e4, 3.0, 9000.0, 0.0]])
    labels = fit_labels(name, labels).to(dtype)
    s = scores.detach().requires_grad_(True)
    value = call(name, s, labels, reduction="none")
    value.sum().backward()
    assert torch.isfinite(value).all(), value
    assert torch.isfinite(s.grad).all(), s.grad


@pytest.mark.badinput("losses")
@pytest.mark.parametrize("name", GAIN_LOSSES)
def test_large_labels_equal_the_float64_value(name):
    # 2^200 is representable in float64, so the float64 loss there is the unshifted one: the
    # float32 and float16 losses (shifted gains) must agree with it.
    scores = torch.tensor([[0.3, -0.2, 0.1, 0.7], [1.0, 0.5, -0.5, 0.0]], dtype=torch.float64)
    labels = torch.tensor([[200.0, 1.0, 0.0, 130.0], [150.0, 150.0, 149.0, 0.0]])
    expected = call(name, scores, labels.double(), reduction="none")
    for dtype in (torch.float32, torch.float16):
        value = call(name, scores.to(dtype), labels.to(dtype), reduction="none")
        torch.testing.assert_close(value.double(), expected, rtol=2e-3, atol=2e-3)


@pytest.mark.badinput("losses")
@pytest.mark.parametrize("k", [None, 1, 2])
@pytest.mark.parametrize("kind", ["exp2", "linear"])
def test_normalised_gains_equal_gain_over_ideal_dcg(kind, k):
    g = torch.Generator().manual_seed(0)
    labels = torch.randint(-2, 6, (6, 7), generator=g).double() + 0.25 * (kind == "linear")
    mask = torch.rand(6, 7, generator=g) < 0.8
    weights = torch.rand(6, 7, generator=g, dtype=torch.float64) + 0.5
    for w in (None, weights):
        gains = torch.where(mask, ranking.gain(labels, kind), 0.0) * (1.0 if w is None else w)
        idcg = ranking.ideal_dcg(gains, mask, k)
        expected = torch.where((idcg > 0).unsqueeze(-1), gains / idcg.unsqueeze(-1), 0.0)
        normalised, valid = ranking.normalised_gains(labels, mask, kind, k, weights=w)
        torch.testing.assert_close(normalised, expected, rtol=1e-12, atol=1e-12)
        assert torch.equal(valid, idcg > 0)
    # Finite, with the same ratio, for labels whose gain overflows.
    big, _ = ranking.normalised_gains(
        torch.tensor([[1e4, 1e4 - 1.0, 0.0]]), torch.ones(1, 3, dtype=torch.bool)
    )
    assert torch.isfinite(big).all()
    torch.testing.assert_close(big[0, 0] / big[0, 1], torch.tensor(2.0))

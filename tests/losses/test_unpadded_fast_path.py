"""The unpadded fast path: with no padding, list losses skip their masking ops.

``check_lists`` marks a batch without padding (no mask, or an all-True one) with
``padded=False``; losses then skip ``where``-masking and the valid-list reduction. These tests
compare every registered list loss on the fast path against the same lists taken through the
general path (a padded copy, garbage in the padding), for every reduction and both kinds of
weights, and check the cheap one-synchronisation input checks.
"""

from __future__ import annotations

import math
import warnings

import pytest
import torch

from rankloss._core.validation import PaddingLabelWarning, check_lists
from tests.losses._cases import call, fit_labels, list_loss_names

NAMES = list_loss_names()


def _inputs(name: str, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    scores = torch.randn(3, 5, generator=g, dtype=torch.float64)
    labels = torch.randint(-1, 4, (3, 5), generator=g).to(torch.float64)
    labels[labels == -1] = -2.0  # -1 would warn (allRank padding)
    labels[:, 0] = 3.0  # every list has a relevant item
    return scores, fit_labels(name, labels)


def _padded(x: torch.Tensor, garbage: float) -> torch.Tensor:
    """``x`` with two padded columns in front holding ``garbage``."""
    return torch.cat([torch.full_like(x[:, :2], garbage), x], dim=-1)


def _value_and_grad(name, scores, labels, mask, **kwargs):
    scores = scores.detach().clone().requires_grad_(True)
    value = call(name, scores, labels, mask, **kwargs)
    value.sum().backward()
    return value.detach(), scores.grad


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("weights", [None, "list", "item"])
def test_fast_path_equals_the_padded_path(name, reduction, weights):
    scores, labels = _inputs(name, seed=len(name))
    mask = _padded(torch.ones_like(scores, dtype=torch.bool), 0.0).bool()
    mask[:, :2] = False
    w = w_padded = None
    if weights == "list":
        w = w_padded = torch.tensor([0.5, 2.0, 1.0], dtype=torch.float64)
    elif weights == "item":
        w = torch.rand(scores.shape, generator=torch.Generator().manual_seed(1)).double() + 0.1
        w_padded = _padded(w, 7.0)
    fast, fast_grad = _value_and_grad(name, scores, labels, None, weights=w, reduction=reduction)
    full = torch.ones_like(scores, dtype=torch.bool)
    all_true, all_true_grad = _value_and_grad(
        name, scores, labels, full, weights=w, reduction=reduction
    )
    slow, slow_grad = _value_and_grad(
        name,
        _padded(scores, math.nan),
        _padded(labels, 1e30),
        mask,
        weights=w_padded,
        reduction=reduction,
    )
    torch.testing.assert_close(fast, slow, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(fast_grad, slow_grad[:, 2:], rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(all_true, fast, rtol=0, atol=0)
    torch.testing.assert_close(all_true_grad, fast_grad, rtol=0, atol=0)


def test_padded_flag():
    scores = torch.randn(2, 4)
    labels = torch.ones(2, 4)
    assert not check_lists(scores, labels).padded
    assert not check_lists(scores, labels, torch.ones(2, 4, dtype=torch.bool)).padded
    mask = torch.ones(2, 4, dtype=torch.bool)
    mask[1, 3] = False
    batch = check_lists(scores, labels, mask)
    assert batch.padded
    assert batch.real is batch.mask
    assert batch.real_lists() is not None
    unpadded = check_lists(scores, labels)
    assert unpadded.real is None and unpadded.real_lists() is None
    # empty lists are never all-valid: nothing to learn from
    empty = check_lists(torch.randn(2, 0), torch.ones(2, 0))
    assert not empty.padded
    real_lists = empty.real_lists()
    assert real_lists is not None and not real_lists.any()


def test_a_sum_that_overflows_is_not_mistaken_for_a_bad_value():
    # each value is finite in float32, their sum is not
    scores = torch.full((2, 8), 3e38)
    labels = torch.full((2, 8), 3e38)
    weights = torch.full((2, 8), 3e38)
    batch = check_lists(scores, labels, None, weights)
    assert not batch.padded


@pytest.mark.badinput("losses")
@pytest.mark.parametrize("mask", [None, "all_true"])
def test_bad_values_are_still_found_on_the_fast_path(mask):
    scores = torch.randn(2, 4)
    labels = torch.ones(2, 4)
    m = None if mask is None else torch.ones(2, 4, dtype=torch.bool)
    bad = scores.clone()
    bad[1, 2] = math.inf
    with pytest.raises(ValueError, match=r"scores.*\[1, 2\]"):
        check_lists(bad, labels, m, where="here")
    bad_labels = labels.clone()
    bad_labels[0, 3] = math.nan
    with pytest.raises(ValueError, match=r"labels.*\[0, 3\]"):
        check_lists(scores, bad_labels, m, where="here")
    # an inf score and a -inf label cancel nowhere: inf + -inf is NaN
    both_scores, both_labels = scores.clone(), labels.clone()
    both_scores[0, 0], both_labels[0, 1] = math.inf, -math.inf
    with pytest.raises(ValueError, match="scores"):
        check_lists(both_scores, both_labels, m, where="here")
    for value in (-0.5, math.nan):
        weights = torch.ones(2)
        weights[1] = value
        with pytest.raises(ValueError, match="weights"):
            check_lists(scores, labels, m, weights, where="here")


def test_minus_one_labels_still_warn_and_other_negative_labels_do_not(monkeypatch):
    import rankloss._core.validation as validation

    monkeypatch.setattr(validation, "_warned_padding_labels", False)
    scores = torch.randn(2, 4)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_lists(scores, torch.full((2, 4), -2.0))  # negative, but no -1
        check_lists(scores, torch.full((2, 4), -0.5))
    labels = torch.ones(2, 4)
    labels[1, 1] = -1.0
    with pytest.warns(PaddingLabelWarning):
        check_lists(scores, labels)

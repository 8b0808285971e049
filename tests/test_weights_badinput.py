"""Per-list, per-item and per-anchor weights must be finite and non-negative."""

from __future__ import annotations

import math

import pytest
import torch

import rankloss.functional as F
from rankloss._core.reduce import reduce_values
from rankloss._core.validation import check_lists
from rankloss.losses import ContrastiveLoss, ListNetLoss


@pytest.mark.badinput("losses")
@pytest.mark.parametrize(
    ("bad", "shown"), [(math.nan, "nan"), (math.inf, "inf"), (-math.inf, "-inf")]
)
def test_non_finite_list_weights_are_refused_naming_position(bad: float, shown: str):
    scores, labels = torch.randn(2, 3, 4), torch.rand(2, 3, 4)
    per_list = torch.ones(2, 3)
    per_list[1, 2] = bad
    with pytest.raises(
        ValueError, match=rf"^f: weights holds {shown} at \[1, 2\] \(weights must be finite\)$"
    ):
        check_lists(scores, labels, weights=per_list, where="f")
    per_item = torch.ones(2, 3, 4)
    per_item[0, 1, 3] = bad
    with pytest.raises(ValueError, match=rf"^listnet_loss: weights holds {shown} at \[0, 1, 3\]"):
        F.listnet_loss(scores, labels, weights=per_item)


@pytest.mark.badinput("losses")
def test_negative_weights_are_refused():
    scores, labels = torch.randn(3, 4), torch.rand(3, 4)
    with pytest.raises(
        ValueError, match=r"^f: weights holds -0\.5 at \[2\] \(weights must be non-negative\)$"
    ):
        check_lists(scores, labels, weights=torch.tensor([1.0, 0.0, -0.5]), where="f")
    with pytest.raises(ValueError, match=r"ListNetLoss|listnet_loss"):
        ListNetLoss()(scores, labels, weights=-torch.ones(3, 4))


@pytest.mark.badinput("losses")
def test_bad_weights_in_padding_are_ignored_and_real_ones_refused():
    scores, labels = torch.randn(2, 4), torch.rand(2, 4)
    mask = torch.tensor([[True, True, False, False], [True, True, True, True]])
    per_item = torch.ones(2, 4)
    per_item[0, 2], per_item[0, 3] = math.nan, -3.0  # padding: anything goes
    out = F.listnet_loss(scores, labels, mask, weights=per_item)
    assert torch.isfinite(out)
    per_item[1, 0] = math.nan
    with pytest.raises(ValueError, match=r"weights holds nan at \[1, 0\]"):
        F.listnet_loss(scores, labels, mask, weights=per_item)


@pytest.mark.badinput("losses")
@pytest.mark.parametrize("bad", [math.nan, math.inf, -1.0])
def test_embedding_losses_refuse_bad_anchor_weights(bad: float):
    values, valid = torch.rand(5), torch.ones(5, dtype=torch.bool)
    weights = torch.ones(5)
    weights[3] = bad
    with pytest.raises(ValueError, match=r"^g: weights holds .* at \[3\] \(weights must be"):
        reduce_values(values, valid, weights, "mean", where="g")
    embeddings, labels = torch.randn(5, 3), torch.tensor([0, 0, 1, 1, 2])
    with pytest.raises(ValueError, match=r"weights holds .* at \[3\]"):
        ContrastiveLoss()(embeddings, labels, weights=weights)


def test_valid_weights_still_work_and_zero_is_allowed():
    scores, labels = torch.randn(3, 4, dtype=torch.float64), torch.rand(3, 4, dtype=torch.float64)
    w = torch.tensor([2.0, 0.0, 1.0], dtype=torch.float64)
    weighted = F.listnet_loss(scores, labels, weights=w)
    per_list = F.listnet_loss(scores, labels, reduction="none")
    assert torch.allclose(weighted, (per_list * w).sum() / w.sum(), atol=1e-12)
    out = reduce_values(torch.ones(2), torch.ones(2, dtype=torch.bool), torch.zeros(2), "mean")
    assert out.item() == 0.0

"""rankloss._core.validation: the tensor contract and its error messages."""

from __future__ import annotations

import math
import warnings

import pytest
import torch

import rankloss.functional as RF
from rankloss._core import validation
from rankloss._core.validation import check_choice, check_embeddings, check_lists, compute_dtype
from rankloss.losses import PaddingLabelWarning, RankNetLoss


def test_labels_shape_mismatch_names_argument_and_shapes():
    with pytest.raises(
        ValueError, match=r"ranknet_loss: labels has shape \[4, 9\] but scores has shape \[4, 10\]"
    ):
        RF.ranknet_loss(torch.zeros(4, 10), torch.zeros(4, 9))


def test_mask_errors():
    scores = torch.zeros(2, 3)
    with pytest.raises(ValueError, match=r"mse_loss: mask must be a bool tensor.*torch\.int64"):
        RF.mse_loss(scores, scores, torch.ones(2, 3, dtype=torch.long))
    with pytest.raises(ValueError, match=r"use mask\.bool\(\)"):
        check_lists(scores, scores, torch.ones(2, 3))
    with pytest.raises(
        ValueError, match=r"listnet_loss: mask has shape \[2, 4\] but scores has shape \[2, 3\]"
    ):
        RF.listnet_loss(scores, scores, torch.ones(2, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match="mask must be a torch.Tensor"):
        check_lists(scores, scores, [[True] * 3] * 2)


def test_scores_errors():
    with pytest.raises(ValueError, match=r"bpr_loss: scores must be floating point.*int64"):
        RF.bpr_loss(torch.zeros(2, 3, dtype=torch.long), torch.zeros(2, 3))
    with pytest.raises(ValueError, match="0-d"):
        check_lists(torch.tensor(1.0), torch.tensor(1.0))
    with pytest.raises(ValueError, match="scores must be a torch.Tensor, got list"):
        check_lists([1.0, 2.0], None)


def test_labels_errors():
    scores = torch.zeros(3)
    with pytest.raises(ValueError, match="labels must be a torch.Tensor, got list"):
        check_lists(scores, [1.0, 0.0, 0.0])
    with pytest.raises(ValueError, match="labels must be real"):
        check_lists(scores, torch.zeros(3, dtype=torch.complex64))


def test_weights_errors():
    scores = torch.zeros(2, 3)
    with pytest.raises(
        ValueError,
        match=r"lambdarank_loss: weights has shape \[3\]; expected per-list \[2\] or per-item "
        r"\[2, 3\]",
    ):
        RF.lambdarank_loss(scores, scores, weights=torch.ones(3))
    with pytest.raises(ValueError, match="weights must be real numbers"):
        check_lists(scores, scores, weights=torch.ones(2, dtype=torch.bool))


def test_weights_as_list_and_per_list_or_per_item():
    scores = torch.zeros(2, 3)
    batch = check_lists(scores, scores, weights=[1.0, 2.0])
    assert batch.item_weights is None and batch.list_weights.tolist() == [1.0, 2.0]
    batch = check_lists(scores, scores, weights=torch.ones(2, 3))
    assert batch.list_weights is None and batch.item_weights.shape == (2, 3)
    # A square batch [n, n]: per-item weights have the scores' shape; per-list weights [n].
    square = torch.zeros(3, 3)
    assert check_lists(square, square, weights=torch.ones(3)).list_weights is not None
    assert check_lists(square, square, weights=torch.ones(3, 3)).item_weights is not None


def test_check_lists_sanitises_padding_and_flattens():
    scores = torch.tensor([[[1.0, math.nan], [math.inf, 2.0]]])  # [1, 2, 2]
    labels = torch.tensor([[[True, True], [False, True]]])
    mask = torch.tensor([[[True, False], [False, True]]])
    weights = torch.tensor([[[0.5, math.nan], [math.nan, 2.0]]])
    batch = check_lists(scores, labels, mask, weights)
    assert batch.batch_shape == (1, 2) and batch.num_items == 2
    assert batch.scores.tolist() == [[1.0, 0.0], [0.0, 2.0]]
    assert batch.labels.dtype == torch.float32 and batch.labels.tolist() == [[1.0, 0.0], [0.0, 1.0]]
    assert batch.item_weights.tolist() == [[0.5, 0.0], [0.0, 2.0]]
    assert batch.unflatten(torch.tensor([3.0, 4.0])).shape == (1, 2)


def test_check_lists_defaults_and_dtypes():
    batch = check_lists(torch.zeros(4, dtype=torch.float16), torch.zeros(4, dtype=torch.long))
    assert batch.scores.dtype == torch.float32 and batch.labels.dtype == torch.float32
    assert batch.mask.all() and batch.mask.shape == (1, 4)
    assert check_lists(torch.zeros(2, 4, dtype=torch.float64), None).labels.dtype == torch.float64
    empty = check_lists(torch.zeros(3, 0), torch.zeros(3, 0))
    assert empty.scores.shape == (3, 0) and empty.batch_shape == (3,)


def test_integer_and_bool_labels_are_accepted():
    scores = torch.tensor([[0.2, 1.0, -0.3]])
    expected = RF.ranknet_loss(scores, torch.tensor([[1.0, 0.0, 0.0]]))
    torch.testing.assert_close(RF.ranknet_loss(scores, torch.tensor([[1, 0, 0]])), expected)
    torch.testing.assert_close(
        RF.ranknet_loss(scores, torch.tensor([[True, False, False]])), expected
    )


def test_compute_dtype_and_check_choice():
    assert compute_dtype(torch.bfloat16) == torch.float32
    assert compute_dtype(torch.float16) == torch.float32
    assert compute_dtype(torch.int64) == torch.float32
    assert compute_dtype(torch.float64) == torch.float64
    check_choice("gain", "exp2", ("exp2", "linear"))
    with pytest.raises(ValueError, match=r"gain must be one of \['exp2', 'linear'\], got 'x'"):
        check_choice("gain", "x", ("exp2", "linear"))


@pytest.mark.badinput("losses")
def test_non_finite_real_entries_are_refused_naming_argument_and_position():
    scores = torch.zeros(2, 3, 4)
    labels = torch.zeros(2, 3, 4)
    mask = torch.ones(2, 3, 4, dtype=torch.bool)
    mask[1, 2, 3] = False
    s = scores.clone()
    s[1, 2, 3] = math.nan  # padding: allowed
    s[1, 0, 2] = -math.inf
    with pytest.raises(
        ValueError,
        match=r"^f: scores holds -inf at \[1, 0, 2\] \(a real item; padding may hold anything, "
        r"real items must be finite\)$",
    ):
        check_lists(s, labels, mask, where="f")
    # The first bad position in row-major order, scores before labels.
    y = labels.clone()
    y[0, 2, 1], y[0, 1, 3] = math.inf, math.nan
    with pytest.raises(ValueError, match=r"f: labels holds nan at \[0, 1, 3\]"):
        check_lists(scores, y, mask, where="f")
    # Finite in its own dtype but not in the compute dtype: said so.
    with pytest.raises(ValueError, match=r"labels holds 1e\+300, which overflows torch\.float32,"):
        check_lists(torch.zeros(3), torch.tensor([0.0, 1e300, 1.0], dtype=torch.float64))
    # Half precision, integer and bool labels, and garbage in padding pass.
    s[1, 0, 2] = 0.0
    check_lists(s.half(), labels.long(), mask)
    check_lists(torch.zeros(2, 3), torch.ones(2, 3, dtype=torch.bool))


@pytest.mark.badinput("losses")
def test_check_embeddings_refuses_non_finite_entries():
    x = torch.zeros(3, 2, dtype=torch.float16)
    x[2, 1] = math.inf
    with pytest.raises(ValueError, match=r"^g: queries holds inf at \[2, 1\] \(embeddings must"):
        check_embeddings(x, "queries", "g")
    assert check_embeddings(torch.zeros(0, 2), "x", "g").shape == (0, 2)


def _padding_warnings(caught: list[warnings.WarningMessage]) -> list[warnings.WarningMessage]:
    return [w for w in caught if issubclass(w.category, PaddingLabelWarning)]


@pytest.mark.badinput("losses")
def test_minus_one_labels_without_mask_warn_once(monkeypatch: pytest.MonkeyPatch):
    """allRank pads with label -1; with no mask rankloss takes it as a real label, and says so."""
    monkeypatch.setattr(validation, "_warned_padding_labels", False)
    scores = torch.randn(2, 4)
    labels = torch.tensor([[2, 1, 0, -1], [1, 0, -1, -1]])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")  # the once is rankloss's, not the filter's
        first = RF.ranknet_loss(scores, labels)
        RankNetLoss()(scores, labels.float())
        RF.listnet_loss(scores, labels)
    found = _padding_warnings(caught)
    assert len(found) == 1
    assert issubclass(PaddingLabelWarning, UserWarning)
    message = str(found[0].message)
    assert message.startswith("ranknet_loss: labels hold -1 and no mask was given")
    assert "mask=labels != -1" in message and "allRank" in message
    assert found[0].filename == __file__  # points at the caller's line, not rankloss's
    # Only a warning: -1 is still a real label.
    assert torch.isfinite(first)
    assert first != RF.ranknet_loss(scores, labels, labels != -1)


@pytest.mark.badinput("losses")
def test_minus_one_labels_with_mask_do_not_warn(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(validation, "_warned_padding_labels", False)
    scores = torch.randn(2, 4)
    labels = torch.tensor([[2, 1, 0, -1], [1, -1, 0, -1]])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        RF.ranknet_loss(scores, labels, labels != -1)
        RankNetLoss()(scores, labels, torch.ones(2, 4, dtype=torch.bool))  # -1 real, on purpose
        check_lists(scores, labels, labels != -1, where="ndcg")  # metrics validate alike
        RF.ranknet_loss(scores, labels.clamp(min=0))  # no -1: nothing to say
    assert _padding_warnings(caught) == []
    assert validation._warned_padding_labels is False
    # The warnings filter silences it as usual.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("ignore", PaddingLabelWarning)
        RF.ranknet_loss(scores, labels)
    assert _padding_warnings(caught) == []

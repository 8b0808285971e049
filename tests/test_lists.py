"""rankloss.lists: ragged lists, lengths and query ids to padded batches and back."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rankloss.lists import ListLayout, lengths_to_mask, pad_lists, unpad_lists


def test_pad_lists_pads_and_masks():
    padded, mask = pad_lists([torch.tensor([1.0, 2.0]), torch.tensor([3.0]), torch.tensor([])])
    assert torch.equal(padded, torch.tensor([[1.0, 2.0], [3.0, 0.0], [0.0, 0.0]]))
    assert torch.equal(mask, torch.tensor([[True, True], [True, False], [False, False]]))
    assert mask.dtype == torch.bool


def test_pad_lists_accepts_arrays_lists_pad_value_and_max_length():
    padded, mask = pad_lists([np.array([1, 2, 3]), [4]], pad_value=-9, max_length=5)
    assert padded.shape == (2, 5) and mask.shape == (2, 5)
    assert padded.tolist() == [[1, 2, 3, -9, -9], [4, -9, -9, -9, -9]]
    assert mask.sum(-1).tolist() == [3, 1]


def test_pad_lists_trailing_dimensions_round_trip():
    lists = [torch.randn(3, 4), torch.randn(1, 4), torch.randn(5, 4), torch.randn(0, 4)]
    padded, mask = pad_lists(lists)
    assert padded.shape == (4, 5, 4)
    back = unpad_lists(padded, mask)
    assert len(back) == 4
    for original, recovered in zip(lists, back):
        assert torch.equal(original, recovered)


def test_pad_lists_errors():
    with pytest.raises(ValueError, match="no lists"):
        pad_lists([])
    with pytest.raises(ValueError, match="list 1 is 0-d"):
        pad_lists([torch.ones(2), torch.tensor(1.0)])
    with pytest.raises(ValueError, match=r"list 1 has trailing shape \[3\] but list 0 has \[4\]"):
        pad_lists([torch.ones(2, 4), torch.ones(2, 3)])
    with pytest.raises(ValueError, match="max_length=2"):
        pad_lists([torch.ones(3)], max_length=2)


def test_unpad_lists_checks_shapes():
    with pytest.raises(ValueError, match="unpad_lists"):
        unpad_lists(torch.zeros(2, 3), torch.ones(2, 4, dtype=torch.bool))


def test_lengths_to_mask():
    mask = lengths_to_mask([2, 0, 3])
    assert mask.tolist() == [[True, True, False], [False, False, False], [True, True, True]]
    assert lengths_to_mask(torch.tensor([1]), max_length=3).tolist() == [[True, False, False]]
    assert lengths_to_mask(torch.tensor([], dtype=torch.long)).shape == (0, 0)
    with pytest.raises(ValueError, match=">= 0"):
        lengths_to_mask([1, -1])


def test_layout_from_query_ids_non_contiguous_round_trip():
    qid = torch.tensor([7, 3, 7, 12, 3, 7, 12, 3, 3])
    layout = ListLayout.from_query_ids(qid)
    assert layout.query_ids.tolist() == [3, 7, 12]
    assert layout.lengths.tolist() == [4, 3, 2]
    assert layout.mask.shape == (3, 4)
    values = torch.arange(9, dtype=torch.float32) * 10
    padded = layout.pad(values, pad_value=-1.0)
    # Lists in ascending query id, items in row order.
    assert padded.tolist() == [
        [10.0, 40.0, 70.0, 80.0],
        [0.0, 20.0, 50.0, -1.0],
        [30.0, 60.0, -1.0, -1.0],
    ]
    assert torch.equal(layout.unpad(padded), values)
    # Every row lands where list_index / position say.
    for row in range(9):
        assert padded[layout.list_index[row], layout.position[row]] == values[row]


def test_layout_round_trip_with_trailing_dims_and_numpy():
    rng = np.random.default_rng(0)
    qid = rng.integers(0, 20, size=50)
    layout = ListLayout.from_query_ids(qid)
    features = torch.as_tensor(rng.normal(size=(50, 3)))
    padded = layout.pad(features.numpy())
    assert padded.shape == (*layout.mask.shape, 3)
    assert torch.equal(layout.unpad(padded), features)
    assert int(layout.mask.sum()) == 50
    for b, q in enumerate(layout.query_ids.tolist()):
        assert int(layout.lengths[b]) == int((qid == q).sum())


def test_layout_from_lengths():
    layout = ListLayout.from_lengths([2, 0, 3])
    assert layout.list_index.tolist() == [0, 0, 2, 2, 2]
    assert layout.position.tolist() == [0, 1, 0, 1, 2]
    assert layout.query_ids.tolist() == [0, 1, 2]
    values = torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0])
    padded = layout.pad(values)
    assert padded.tolist() == [[1.0, 2.0, 0.0], [0.0, 0.0, 0.0], [3.0, 4.0, 5.0]]
    assert torch.equal(layout.unpad(padded), values)
    assert torch.equal(layout.mask, lengths_to_mask([2, 0, 3]))


def test_layout_padding_feeds_a_loss():
    import rankloss.functional as RF

    qid = [5, 5, 9, 5, 9]
    scores = torch.tensor([0.1, 0.9, 0.3, -0.2, 0.5], dtype=torch.float64)
    labels = torch.tensor([1.0, 2.0, 0.0, 0.0, 1.0], dtype=torch.float64)
    layout = ListLayout.from_query_ids(qid)
    batched = RF.ranknet_loss(layout.pad(scores), layout.pad(labels), layout.mask)
    separate = RF.ranknet_loss(
        scores[[0, 1, 3]], labels[[0, 1, 3]], reduction="sum"
    ) + RF.ranknet_loss(scores[[2, 4]], labels[[2, 4]], reduction="sum")
    torch.testing.assert_close(batched, separate / 2)


def test_layout_errors():
    with pytest.raises(ValueError, match="1-d"):
        ListLayout.from_query_ids(torch.zeros(2, 2))
    layout = ListLayout.from_lengths([2, 1])
    with pytest.raises(ValueError, match="values has 4 rows, layout has 3"):
        layout.pad(torch.zeros(4))
    with pytest.raises(ValueError, match="layout mask has"):
        layout.unpad(torch.zeros(3, 2))

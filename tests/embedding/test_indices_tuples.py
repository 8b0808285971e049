"""pytorch-metric-learning's indices tuples are accepted wherever ``indices`` is."""

from __future__ import annotations

import pytest
import torch

from rankloss._core.tuples import Pairs, Triplets, from_indices_tuple, triplets_to_pairs
from rankloss.losses import ContrastiveLoss, InfoNCELoss, TripletLoss


@pytest.fixture
def batch():
    g = torch.Generator().manual_seed(0)
    return torch.randn(8, 5, generator=g), torch.tensor([0, 0, 1, 1, 2, 2, 3, 3])


def test_triplet_tuple_equals_triplets(batch):
    embeddings, labels = batch
    a, p, n = torch.tensor([0, 2, 4]), torch.tensor([1, 3, 5]), torch.tensor([6, 0, 1])
    loss = TripletLoss(margin=0.2)
    assert torch.equal(
        loss(embeddings, labels, indices=(a, p, n)),
        loss(embeddings, labels, indices=Triplets(a, p, n)),
    )


def test_pair_tuple_equals_pairs(batch):
    embeddings, labels = batch
    a1, pos = torch.tensor([0, 2]), torch.tensor([1, 3])
    a2, neg = torch.tensor([0, 4, 6]), torch.tensor([2, 0, 1])
    pairs = Pairs(
        torch.tensor([0, 2, 0, 4, 6]),
        torch.tensor([1, 3, 2, 0, 1]),
        torch.tensor([True, True, False, False, False]),
    )
    loss = ContrastiveLoss()
    got = loss(embeddings, labels, indices=(a1, pos, a2, neg))
    assert torch.equal(got, loss(embeddings, labels, indices=pairs))
    assert got.item() > 0


@pytest.mark.badinput("losses")
@pytest.mark.parametrize(
    ("indices", "error", "match"),
    [
        ((torch.tensor([0]), torch.tensor([1])), TypeError, "3 tensors"),
        ([0, 1, 2], ValueError, r"indices\[0\] must be a 1-D integer tensor"),
        ((torch.tensor([0.0]), torch.tensor([1]), torch.tensor([2])), ValueError, "integer"),
        ((torch.tensor([0, 1]), torch.tensor([1]), torch.tensor([2])), ValueError, "length"),
        ("abc", TypeError, "got str"),
    ],
)
def test_bad_tuples_are_refused(indices, error, match):
    with pytest.raises(error, match=match):
        from_indices_tuple(indices, "TripletLoss")


@pytest.mark.badinput("losses")
def test_a_loss_without_indices_still_refuses_a_tuple(batch):
    embeddings, labels = batch
    t = (torch.tensor([0]), torch.tensor([1]), torch.tensor([2]))
    with pytest.raises(TypeError, match="does not take indices"):
        InfoNCELoss()(embeddings, labels, indices=t)


@pytest.mark.badinput("losses")
def test_a_negative_index_in_triplets_for_a_pair_loss_is_refused_not_remapped():
    """Triplets turned into pairs used to pack each pair into one integer: a -1 came back as
    another, valid pair (anchor 1, candidate 3 here) and was trained on."""
    torch.manual_seed(0)
    x, y = torch.randn(4, 3), torch.tensor([0, 0, 1, 1])
    with pytest.raises(ValueError, match=r"ContrastiveLoss: indices.other must index \[0, 4\)"):
        ContrastiveLoss()(x, y, indices=(torch.tensor([2]), torch.tensor([3]), torch.tensor([-1])))
    # Valid triplets give the pairs they use, each once, in (anchor, other, kind) order.
    pairs = triplets_to_pairs(
        Triplets(torch.tensor([2, 2]), torch.tensor([3, 3]), torch.tensor([0, 1]))
    )
    assert pairs.anchor.tolist() == [2, 2, 2]
    assert pairs.other.tolist() == [0, 1, 3]
    assert pairs.is_positive.tolist() == [False, False, True]


@pytest.mark.badinput("losses")
def test_typed_tuples_check_their_dtypes():
    a, o = torch.tensor([0, 0, 2]), torch.tensor([2, 3, 3])
    with pytest.raises(ValueError, match="Pairs.is_positive must be a bool tensor, got dtype"):
        Pairs(a, o, torch.tensor([0, 0, 1]))
    with pytest.raises(ValueError, match="Pairs.anchor must be an integer index tensor"):
        Pairs(a.bool(), o, torch.tensor([False, False, True]))
    # Other integer dtypes are indices: an int32 Triplets works as the tuple form does.
    torch.manual_seed(0)
    x, y = torch.randn(4, 3), torch.tensor([0, 0, 1, 1])
    t32 = [torch.tensor([v], dtype=torch.int32) for v in (0, 1, 2)]
    torch.testing.assert_close(
        TripletLoss()(x, y, indices=Triplets(*t32)), TripletLoss()(x, y, indices=tuple(t32))
    )
    assert Triplets(*t32).anchor.dtype == torch.long


@pytest.mark.badinput("losses")
@pytest.mark.parametrize("dtype", [torch.bool, torch.complex64, torch.float32])
def test_an_indices_tuple_of_another_dtype_is_refused(dtype):
    parts = tuple(torch.tensor([1], dtype=dtype) for _ in range(3))
    with pytest.raises(
        ValueError, match=rf"indices\[0\] must be a 1-D integer tensor, got .*{dtype}"
    ):
        from_indices_tuple(parts)

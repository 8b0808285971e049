"""pytorch-metric-learning's indices tuples are accepted wherever ``indices`` is."""

from __future__ import annotations

import pytest
import torch

from rankloss._core.tuples import Pairs, Triplets, from_indices_tuple
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

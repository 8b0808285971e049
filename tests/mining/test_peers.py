"""Miners cross-checked against pytorch-metric-learning (same tuples, as sets)."""

import pytest
import torch

from rankloss import mining

pml_miners = pytest.importorskip("pytorch_metric_learning.miners")
from pytorch_metric_learning.distances import CosineSimilarity  # noqa: E402

pytestmark = pytest.mark.peers


def _batch(seed, n=24, classes=4, d=8):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=g), torch.randint(0, classes, (n,), generator=g)


def _triplet_set(t):
    return set(zip(*(v.tolist() for v in t)))


@pytest.mark.parametrize("seed", range(3))
def test_batch_hard(seed):
    x, y = _batch(seed)
    theirs = pml_miners.BatchHardMiner(distance=CosineSimilarity())(x, y)
    mine = mining.BatchHardMiner().mine(x, y)
    assert _triplet_set((mine.anchor, mine.positive, mine.negative)) == _triplet_set(theirs)


@pytest.mark.parametrize(
    "kind,pml_kind",
    [("violating", "all"), ("hard", "hard"), ("semihard", "semihard"), ("easy", "easy")],
)
def test_margin_miner(kind, pml_kind):
    x, y = _batch(1)
    theirs = pml_miners.TripletMarginMiner(
        margin=0.2, type_of_triplets=pml_kind, distance=CosineSimilarity()
    )(x, y)
    mine = mining.MarginMiner(margin=0.2, kind=kind).mine(x, y)
    assert _triplet_set((mine.anchor, mine.positive, mine.negative)) == _triplet_set(theirs)


@pytest.mark.parametrize("seed", range(3))
def test_multi_similarity_miner(seed):
    x, y = _batch(seed)
    a1, p, a2, n = pml_miners.MultiSimilarityMiner(epsilon=0.1)(x, y)
    mine = mining.MultiSimilarityMiner(epsilon=0.1).mine(x, y)
    pa, po = mine.positives
    na, no = mine.negatives
    assert set(zip(pa.tolist(), po.tolist())) == set(zip(a1.tolist(), p.tolist()))
    assert set(zip(na.tolist(), no.tolist())) == set(zip(a2.tolist(), n.tolist()))

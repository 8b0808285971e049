"""Cross-checks against pytorch-metric-learning where the definitions match.

Labels are balanced (every class the same size) so that our per-anchor mean equals a mean over
pairs or triplets; cosine similarity on both sides.
"""

import pytest
import torch

from rankloss.losses import (
    CircleLoss,
    ContrastiveLoss,
    InfoNCELoss,
    MultiSimilarityLoss,
    NTXentLoss,
    SupConLoss,
    TripletLoss,
)

pml_losses = pytest.importorskip("pytorch_metric_learning.losses")
from pytorch_metric_learning.distances import CosineSimilarity  # noqa: E402
from pytorch_metric_learning.reducers import MeanReducer  # noqa: E402

pytestmark = pytest.mark.peers

MAX_DIFF: dict[str, float] = {}


def _batch(seed, n_per_class=4, classes=4, d=16):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n_per_class * classes, d, generator=g, dtype=torch.float64)
    y = torch.arange(classes).repeat_interleave(n_per_class)
    perm = torch.randperm(len(y), generator=g)
    return x[perm], y[perm]


PAIRS = [
    (
        "contrastive",
        lambda: pml_losses.ContrastiveLoss(
            pos_margin=0.9, neg_margin=0.1, distance=CosineSimilarity(), reducer=MeanReducer()
        ),
        lambda x, y: ContrastiveLoss(pos_margin=0.9, neg_margin=0.1)(x, y),
    ),
    (
        "triplet",
        lambda: pml_losses.TripletMarginLoss(
            margin=0.3, distance=CosineSimilarity(), reducer=MeanReducer()
        ),
        lambda x, y: TripletLoss(margin=0.3)(x, y),
    ),
    (
        "info_nce (NTXentLoss)",
        lambda: pml_losses.NTXentLoss(temperature=0.2),
        lambda x, y: InfoNCELoss(temperature=0.2)(x, y),
    ),
    (
        "supcon",
        lambda: pml_losses.SupConLoss(temperature=0.1),
        lambda x, y: SupConLoss(temperature=0.1)(x, y),
    ),
    (
        "multi_similarity",
        lambda: pml_losses.MultiSimilarityLoss(alpha=2.0, beta=50.0, base=0.5),
        lambda x, y: MultiSimilarityLoss(alpha=2.0, beta=50.0, base=0.5)(x, y),
    ),
    (
        "circle",
        lambda: pml_losses.CircleLoss(m=0.4, gamma=80),
        lambda x, y: CircleLoss(margin=0.4, gamma=80.0)(x, y),
    ),
]


@pytest.mark.parametrize("name,peer,ours", PAIRS, ids=[p[0] for p in PAIRS])
def test_loss_matches_pytorch_metric_learning(name, peer, ours):
    worst = 0.0
    for seed in range(5):
        x, y = _batch(seed)
        a = x.clone().requires_grad_(True)
        b = x.clone().requires_grad_(True)
        theirs = peer()(a, y)
        mine = ours(b, y)
        theirs.backward()
        mine.backward()
        torch.testing.assert_close(mine, theirs.to(mine.dtype), rtol=1e-7, atol=1e-9)
        torch.testing.assert_close(b.grad, a.grad, rtol=1e-6, atol=1e-9)
        worst = max(worst, float((mine - theirs).detach().abs()))
    MAX_DIFF[name] = worst
    print(f"{name}: max |ours - pml| = {worst:.2e}")


def test_nt_xent_views_matches_pytorch_metric_learning():
    g = torch.Generator().manual_seed(0)
    v1, v2 = torch.randn(8, 16, generator=g), torch.randn(8, 16, generator=g)
    ids = torch.arange(8)
    theirs = pml_losses.NTXentLoss(temperature=0.5)(torch.cat([v1, v2]), torch.cat([ids, ids]))
    mine = NTXentLoss(temperature=0.5)(v1, keys=v2)
    torch.testing.assert_close(mine, theirs)
    print(f"nt_xent views: max |ours - pml| = {float((mine - theirs).detach().abs()):.2e}")

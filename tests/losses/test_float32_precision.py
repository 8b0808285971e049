"""Long lists in float32 keep the precision of float32 arithmetic (no long float32 dot products).

A sum over the n^2 pairs of a list must not be one float32 dot product of n^2 terms: at
n = 2048 that loses three digits (seen once in the direct path, 1e-3 relative).
"""

from __future__ import annotations

import pytest
import torch

import rankloss.functional as F

N = 2048


@pytest.fixture(scope="module")
def lists():
    g = torch.Generator().manual_seed(0)
    scores = torch.randn(2, N, generator=g)
    labels = torch.randint(0, 5, (2, N), generator=g).float()
    return scores, labels


CASES = [
    ("ranknet", F.ranknet_loss, {}),
    ("lambdarank", F.lambdarank_loss, {}),
    ("lambdaloss", F.lambdaloss_loss, {"weighting": "ndcg_loss2pp"}),
    ("approx_ndcg", F.approx_ndcg_loss, {}),
]


@pytest.mark.parametrize("impl", ["torch", "streaming"])
@pytest.mark.parametrize(("name", "fn", "kw"), CASES, ids=[c[0] for c in CASES])
def test_float32_value_and_gradient_match_float64(lists, impl, name, fn, kw):
    scores, labels = lists
    s32 = scores.clone().requires_grad_(True)
    s64 = scores.double().requires_grad_(True)
    v32 = fn(s32, labels, impl=impl, **kw)
    v64 = fn(s64, labels.double(), impl="torch", **kw)
    v32.backward()
    v64.backward()
    assert abs(v32.item() - v64.item()) <= 1e-5 * abs(v64.item()) + 1e-7, (v32, v64)
    g32, g64 = s32.grad.double(), s64.grad
    assert (g32 - g64).norm() <= 1e-4 * g64.norm() + 1e-9

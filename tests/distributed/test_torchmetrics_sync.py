"""rankloss's torchmetrics classes merge across processes: 2 ranks report one process's value.

The flat form is split so that one query's items land on both ranks: the merge must regroup
them by query index before computing, as one process does.
"""

from __future__ import annotations

import pytest
import torch

from tests.distributed._spawn import run_on_ranks

pytest.importorskip("torchmetrics")

from rankloss.metrics.torchmetrics import MAP, MRR, NDCG  # noqa: E402


def _data():
    g = torch.Generator().manual_seed(0)
    preds = torch.randn(40, generator=g)
    target = torch.randint(0, 3, (40,), generator=g)
    indexes = torch.arange(40) % 7  # 7 queries spread over both halves
    return preds, target, indexes


def _metrics():
    return {"ndcg@5": NDCG(k=5), "map": MAP(), "mrr": MRR()}


def _ranks(rank: int, world_size: int) -> dict[str, float]:
    preds, target, indexes = _data()
    rows = slice(rank * 20, rank * 20 + 20)
    out = {}
    for name, metric in _metrics().items():
        metric.update(preds[rows], target[rows], indexes=indexes[rows])
        out[name] = float(metric.compute())
    return out


def test_two_ranks_equal_one_process(tmp_path):
    preds, target, indexes = _data()
    expected = {}
    for name, metric in _metrics().items():
        metric.update(preds, target, indexes=indexes)
        expected[name] = float(metric.compute())
    for per_rank in run_on_ranks(_ranks, tmp_path):
        assert per_rank == pytest.approx(expected, abs=1e-12), (per_rank, expected)

"""Metrics merged across 2 gloo processes equal the metrics of one process."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from rankloss import metrics
from rankloss.distributed.metrics import (
    embedding_retrieval_metrics,
    gather_rows,
    mean_per_list,
    shard_range,
    sync_accumulator,
)
from rankloss.distributed.training import all_ranks_agree, any_rank, broadcast_object
from rankloss.metrics import MetricAccumulator

pytestmark = pytest.mark.skipif(not dist.is_available(), reason="torch.distributed missing")

WORLD = 2


def _entry(rank: int, fn: Callable[[int, Path], Any], folder: Path) -> None:
    torch.set_num_threads(1)
    dist.init_process_group(
        "gloo", init_method=f"file://{folder / 'rendezvous'}", rank=rank, world_size=WORLD
    )
    try:
        torch.save(fn(rank, folder), folder / f"result{rank}.pt")
    finally:
        dist.destroy_process_group()


def run_ranks(fn: Callable[[int, Path], Any], folder: Path) -> list[Any]:
    """``fn(rank, folder)`` on 2 forked gloo ranks; their return values, in rank order."""
    mp.start_processes(_entry, (fn, folder), nprocs=WORLD, start_method="fork")
    return [torch.load(folder / f"result{r}.pt", weights_only=False) for r in range(WORLD)]


def _lists(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    scores = torch.randn(11, 6, generator=g)
    labels = torch.randint(0, 3, (11, 6), generator=g).float()
    mask = torch.rand(11, 6, generator=g) > 0.2
    labels[3] = 0.0  # a list with nothing relevant: NaN under empty="skip"
    return scores, labels, mask


def _accumulate(rank: int, _: Path) -> dict[str, Any]:
    scores, labels, mask = _lists()
    acc = MetricAccumulator(["ndcg@3", "map", "mrr"], empty="skip")
    # Uneven shares in uneven batches: rank 0 has lists 0..6, rank 1 lists 7..10.
    start, stop = (0, 7) if rank == 0 else (7, 11)
    for first in range(start, stop, 3):
        last = min(first + 3, stop)
        acc.update(scores[first:last], labels[first:last], mask[first:last])
    before = acc.compute()
    merged = sync_accumulator(acc)
    return {
        "merged": merged.compute(),
        "counts": merged.counts(),
        "seen": merged.num_lists,
        "per_list": merged.per_list(),
        "unchanged": acc.compute() == before,
    }


def test_sync_accumulator_equals_one_process(tmp_path: Path) -> None:
    scores, labels, mask = _lists()
    single = MetricAccumulator(["ndcg@3", "map", "mrr"], empty="skip")
    single.update(scores, labels, mask)
    results = run_ranks(_accumulate, tmp_path)
    for result in results:
        assert result["unchanged"]
        assert result["seen"] == 11
        assert result["counts"] == single.counts()
        for name, value in single.compute().items():
            assert math.isclose(result["merged"][name], value, rel_tol=1e-12)
        for name, values in single.per_list().items():
            torch.testing.assert_close(result["per_list"][name], values, equal_nan=True)


def _retrieval(rank: int, _: Path) -> dict[str, Any]:
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(13, 5, generator=g), torch.randint(0, 3, (13,), generator=g)
    ref, ref_y = torch.randn(9, 5, generator=g), torch.randint(0, 3, (9,), generator=g)
    qs, qe = shard_range(13, rank, WORLD)
    rs, re = shard_range(9, rank, WORLD)
    return {
        "loo": embedding_retrieval_metrics(x[qs:qe], y[qs:qe], ks=(1, 3)),
        "gallery": embedding_retrieval_metrics(
            x[qs:qe], y[qs:qe], ref[rs:re], ref_y[rs:re], ks=(1, 3), exclude_self=False
        ),
        "rows": gather_rows(y[qs:qe]),
        "lists": mean_per_list({"v": torch.tensor([1.0, math.nan, 3.0][rank:])}),
        "agree": (all_ranks_agree(rank == 0), any_rank(rank == 0), broadcast_object(rank + 5)),
    }


def test_retrieval_metrics_gather_the_whole_gallery(tmp_path: Path) -> None:
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(13, 5, generator=g), torch.randint(0, 3, (13,), generator=g)
    ref, ref_y = torch.randn(9, 5, generator=g), torch.randint(0, 3, (9,), generator=g)
    loo = metrics.embedding_retrieval_metrics(x, y, ks=(1, 3))
    gallery = metrics.embedding_retrieval_metrics(x, y, ref, ref_y, ks=(1, 3), exclude_self=False)
    for result in run_ranks(_retrieval, tmp_path):
        assert result["loo"] == pytest.approx(loo, rel=1e-6)
        assert result["gallery"] == pytest.approx(gallery, rel=1e-6)
        assert torch.equal(result["rows"], y)
        # rank 0 holds [1, nan, 3], rank 1 [nan, 3]: the mean of 1, 3, 3 (NaN left out)
        assert result["lists"]["v"] == pytest.approx(7.0 / 3.0)
        assert result["agree"] == (False, True, 5)


def test_single_process_fallbacks() -> None:
    assert not (dist.is_available() and dist.is_initialized())
    acc = MetricAccumulator(["mrr"])
    acc.update(torch.tensor([[1.0, 2.0]]), torch.tensor([[1.0, 0.0]]))
    assert sync_accumulator(acc).compute() == acc.compute()
    assert math.isnan(mean_per_list({"v": torch.tensor([math.nan])})["v"])  # nothing counts
    assert shard_range(5, 1, 2) == (3, 5) and shard_range(1, 1, 2) == (1, 1)
    with pytest.raises(ValueError, match="shard_range: need 0 <= rank < world_size"):
        shard_range(5, 2, 2)
    assert all_ranks_agree(True) and not any_rank(False) and broadcast_object(3) == 3

"""DistributedCrossBatchMemory on 2 gloo ranks: identical on every rank, equal to one process."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from rankloss import losses
from rankloss.distributed import DistributedCrossBatchMemory, DistributedLoss
from rankloss.mining import CrossBatchMemory
from tests.distributed._spawn import run_on_ranks

STEPS = 4
ROWS = (3, 2)  # uneven shards: rank order matters
SIZE = 7  # not a multiple of the global batch: the queue wraps mid-batch


def _batches() -> list[tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(1)
    n = sum(ROWS)
    return [
        (
            torch.randn(n, 4, generator=g, dtype=torch.float64),
            torch.randint(0, 3, (n,), generator=g),
        )
        for _ in range(STEPS)
    ]


def _worker(rank: int, world: int, batches: list[Any]) -> dict[str, Any]:
    lo = sum(ROWS[:rank])
    hi = lo + ROWS[rank]
    memory = DistributedCrossBatchMemory(SIZE, 4, dtype=torch.float64)
    loss_fn = DistributedLoss(losses.get("contrastive"), mode="local")
    states, values = [], []
    for x, y in batches:
        xr = x[lo:hi].clone().requires_grad_(True)
        value = memory.loss(loss_fn, xr, y[lo:hi])
        value.backward()
        values.append(value.detach())
        states.append((memory.embeddings.clone(), memory.labels.clone(), int(memory.pointer)))
    return {"states": states, "values": values}


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    return run_on_ranks(_worker, tmp_path_factory.mktemp("memory"), args=(_batches(),))


def test_memory_identical_on_every_rank_and_equal_to_one_process(
    results: list[dict[str, Any]],
) -> None:
    reference = CrossBatchMemory(SIZE, 4, dtype=torch.float64)
    loss_fn = losses.get("contrastive")
    for step, (x, y) in enumerate(_batches()):
        expected = reference.loss(loss_fn, x, y)
        for res in results:
            queue, labels, pointer = res["states"][step]
            assert torch.equal(queue, reference.embeddings)
            assert torch.equal(labels, reference.labels)
            assert pointer == int(reference.pointer)
        # the loss against the shared queue equals one process on the concatenated batch
        value = sum(res["values"][step] for res in results) / len(results)
        assert abs(float(value - expected.detach())) < 1e-10


def test_without_process_group_is_a_plain_memory() -> None:
    memory = DistributedCrossBatchMemory(4, 2)
    memory.enqueue(torch.ones(3, 2), torch.tensor([0, 1, 2]))
    assert len(memory) == 3 and torch.equal(memory.labels, torch.tensor([0, 1, 2]))

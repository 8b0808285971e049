"""Distributed batch samplers: ``shard=True`` splits each global batch across ranks so that
``world_size`` ranks with batch ``b`` see what one process with batch ``world_size * b`` sees;
``shard=False`` keeps the interleaved batches. No processes are started: rank and world size
are passed explicitly."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

import pytest
import torch

from rankloss.mining import ClassBalancedSampler, ListSampler, MPerClassSampler

WORLD = 2


def _labels(n: int = 96, classes: int = 12) -> torch.Tensor:
    return torch.arange(n) % classes


def _mper(world_size: int, rank: int, batch_size: int, shard: bool = True) -> MPerClassSampler:
    return MPerClassSampler(
        _labels(), 4, batch_size, seed=3, rank=rank, world_size=world_size, shard=shard
    )


def _balanced(world_size: int, rank: int, batch_size: int) -> ClassBalancedSampler:
    labels = torch.tensor([0] * 40 + [1] * 10 + [2] * 6)
    return ClassBalancedSampler(
        labels, batch_size, seed=5, rank=rank, world_size=world_size, shard=True
    )


def _lists(world_size: int, rank: int, lists_per_batch: int) -> ListSampler:
    query_ids = torch.arange(120) // 6  # 20 lists of 6 items
    labels = (torch.arange(120) % 3 == 0).float()
    return ListSampler(
        query_ids,
        labels,
        items_per_list=4,
        lists_per_batch=lists_per_batch,
        seed=7,
        rank=rank,
        world_size=world_size,
        shard=True,
    )


Factory = Callable[[int, int, int], object]
CASES = [(_mper, 8), (_balanced, 4), (_lists, 2)]


def _epoch(sampler: object, epoch: int = 0) -> list[list[int]]:
    sampler.set_epoch(epoch)  # type: ignore[attr-defined]
    return [list(b) for b in sampler]  # type: ignore[attr-defined]


@pytest.mark.parametrize(("make", "b"), CASES)
def test_shards_concatenate_to_the_single_process_batches(make: Factory, b: int) -> None:
    for epoch in (0, 1):
        single = _epoch(make(1, 0, WORLD * b), epoch)
        ranks = [_epoch(make(WORLD, r, b), epoch) for r in range(WORLD)]
        assert all(len(batches) == len(single) for batches in ranks)
        assert len(make(WORLD, 0, b)) == len(single)  # type: ignore[arg-type]
        for step, batch in enumerate(single):
            assert sum((ranks[r][step] for r in range(WORLD)), []) == batch


def test_no_index_twice_across_ranks_in_a_global_step() -> None:
    # MPerClassSampler and ListSampler draw without replacement within a batch.
    for make, b in ((_mper, 8), (_lists, 2)):
        ranks = [_epoch(make(WORLD, r, b)) for r in range(WORLD)]
        for step in range(len(ranks[0])):
            seen = [i for r in range(WORLD) for i in ranks[r][step]]
            assert len(seen) == len(set(seen))


def test_mper_class_structure_kept_on_every_rank() -> None:
    labels = _labels()
    for r in range(WORLD):
        for batch in _epoch(_mper(WORLD, r, 8)):
            counts = Counter(labels[batch].tolist())
            assert len(batch) == 8 and set(counts.values()) == {4}


def test_list_sampler_epoch_covers_every_list_once() -> None:
    query_ids = torch.arange(120) // 6
    ranks = [_epoch(_lists(WORLD, r, 2)) for r in range(WORLD)]
    lists = [int(query_ids[b[0]]) for batches in ranks for b in batches]
    assert len(lists) == 10  # 20 lists, 2 per rank, 2 ranks: 5 global batches
    every = sorted({int(query_ids[i]) for batches in ranks for b in batches for i in b})
    assert every == list(range(20))


def test_list_sampler_drops_a_last_batch_too_small_to_share() -> None:
    query_ids = torch.arange(21 * 6) // 6  # 21 lists: 5 global batches of 4, then 1 list
    labels = torch.zeros(21 * 6)
    samplers = [
        ListSampler(
            query_ids,
            labels,
            items_per_list=4,
            lists_per_batch=2,
            rank=r,
            world_size=WORLD,
            shard=True,
        )
        for r in range(WORLD)
    ]
    assert [len(s) for s in samplers] == [5, 5]
    assert [len(_epoch(s)) for s in samplers] == [5, 5]
    single = ListSampler(query_ids, labels, items_per_list=4, lists_per_batch=4)
    assert len(single) == 6  # one process keeps the last, one-list batch


def test_set_epoch_changes_the_order_deterministically() -> None:
    a, b = _mper(WORLD, 1, 8), _mper(WORLD, 1, 8)
    assert _epoch(a, 0) == _epoch(b, 0)
    assert _epoch(a, 1) == _epoch(b, 1)
    assert _epoch(a, 0) != _epoch(a, 1)


def test_interleaved_mode_is_unchanged() -> None:
    single = _epoch(_mper(1, 0, 8, shard=False))
    ranks = [_epoch(_mper(WORLD, r, 8, shard=False)) for r in range(WORLD)]
    usable = len(single) // WORLD * WORLD
    assert ranks[0] == single[0:usable:WORLD] and ranks[1] == single[1:usable:WORLD]
    assert len(_mper(WORLD, 0, 8, shard=False)) == len(single) // WORLD


def test_shard_needs_enough_classes_for_the_global_batch() -> None:
    # 12 classes: one rank's 8 classes fit, the global batch of 16 classes does not.
    with pytest.raises(ValueError, match="MPerClassSampler: a batch needs 16 classes"):
        MPerClassSampler(_labels(), 2, 16, rank=0, world_size=WORLD, shard=True)
    with pytest.raises(TypeError, match="MPerClassSampler: shard must be a bool"):
        MPerClassSampler(_labels(), 2, 8, shard="yes")  # type: ignore[arg-type]

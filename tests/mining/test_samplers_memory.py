import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from rankloss.mining import ClassBalancedSampler, CrossBatchMemory, ListSampler, MPerClassSampler


def _imbalanced():
    # class 0: 200 items, class 1: 50, classes 2-4: 10 each
    return torch.tensor([0] * 200 + [1] * 50 + [2] * 10 + [3] * 10 + [4] * 10)


def test_m_per_class_batches():
    labels = _imbalanced()
    sampler = MPerClassSampler(labels, m=4, batch_size=12, seed=1)
    batches = list(sampler)
    assert len(batches) == len(sampler) == len(labels) // 12
    appearances = torch.zeros(5)
    for batch in batches:
        assert len(batch) == 12
        classes, counts = labels[batch].unique(return_counts=True)
        assert len(classes) == 3 and (counts == 4).all()
        appearances[classes] += 1
    assert appearances.max() - appearances.min() <= 1


def test_class_balanced_is_balanced_within_tolerance():
    labels = _imbalanced()
    sampler = ClassBalancedSampler(labels, batch_size=50, num_batches=200, seed=0)
    counts = torch.bincount(labels[torch.tensor(list(sampler)).flatten()], minlength=5).double()
    share = counts / counts.sum()
    assert (share - 0.2).abs().max() < 0.02
    sqrt = ClassBalancedSampler(labels, batch_size=50, num_batches=50, power=0.0, seed=0)
    counts = torch.bincount(labels[torch.tensor(list(sqrt)).flatten()], minlength=5).double()
    assert counts[0] / counts.sum() > 0.5  # power 0 is uniform over items


@pytest.mark.parametrize(
    "make",
    [
        lambda **kw: MPerClassSampler(_imbalanced(), m=2, batch_size=8, **kw),
        lambda **kw: ClassBalancedSampler(_imbalanced(), batch_size=16, **kw),
        lambda **kw: ListSampler(
            torch.arange(280) // 7,
            torch.arange(280) % 3,
            items_per_list=4,
            lists_per_batch=3,
            **kw,
        ),
    ],
)
def test_deterministic_per_seed_epoch_and_rank(make):
    a, b, c = make(seed=5), make(seed=5), make(seed=6)
    assert list(a) == list(b) and list(a) != list(c)
    a.set_epoch(1)
    assert list(a) != list(b)
    b.set_epoch(1)
    assert list(a) == list(b)
    g1, g2 = torch.Generator().manual_seed(9), torch.Generator().manual_seed(9)
    assert list(make(generator=g1)) == list(make(generator=g2))
    ranks = [list(make(seed=5, rank=r, world_size=3)) for r in range(3)]
    assert len({len(r) for r in ranks}) == 1 and len(ranks[0]) == len(make(seed=5)) // 3
    full = list(make(seed=5))
    for r in range(3):
        assert ranks[r] == full[r : len(ranks[0]) * 3 : 3]


def test_list_sampler_keeps_relevant():
    ids = torch.tensor([0] * 10 + [1] * 3 + [2] * 8)
    labels = torch.zeros(21)
    labels[[0, 4, 9]] = 2.0
    labels[[14, 15, 16, 17, 18, 19]] = 1.0
    sampler = ListSampler(ids, labels, items_per_list=5, lists_per_batch=2, seed=0)
    seen = [i for batch in sampler for i in batch]
    assert len(sampler) == 2
    by_list = {q: [i for i in seen if ids[i] == q] for q in range(3)}
    assert {0, 4, 9} <= set(by_list[0]) and len(by_list[0]) == 5
    assert by_list[1] == [10, 11, 12]
    assert len(by_list[2]) == 5 and all(labels[i] > 0 for i in by_list[2])


def test_works_as_dataloader_batch_sampler():
    labels = _imbalanced()
    data = TensorDataset(torch.randn(len(labels), 3), labels)
    loader = DataLoader(data, batch_sampler=MPerClassSampler(labels, m=2, batch_size=6, seed=0))
    x, y = next(iter(loader))
    assert x.shape == (6, 3) and len(y.unique()) == 3
    loader = DataLoader(data, batch_sampler=ClassBalancedSampler(labels, batch_size=32, seed=0))
    assert sum(1 for _ in loader) == len(labels) // 32


def test_sampler_errors():
    with pytest.raises(ValueError, match="multiple of m"):
        MPerClassSampler([0, 1], m=3, batch_size=4)
    with pytest.raises(ValueError, match="needs 3 classes"):
        MPerClassSampler([0, 1, 1], m=1, batch_size=3)
    with pytest.raises(ValueError, match="rank"):
        ClassBalancedSampler([0, 1], batch_size=1, rank=2, world_size=2)


def test_cross_batch_memory_is_a_fifo_queue():
    memory = CrossBatchMemory(size=5, dim=2)
    memory.enqueue(torch.ones(3, 2), torch.tensor([0, 1, 2]))
    memory.enqueue(2 * torch.ones(3, 2), torch.tensor([3, 4, 5]))
    assert len(memory) == 5
    assert sorted(memory.labels.tolist()) == [1, 2, 3, 4, 5]
    memory.enqueue(torch.zeros(7, 2), torch.arange(7))
    assert sorted(memory.labels.tolist()) == [2, 3, 4, 5, 6]
    assert not memory.embeddings.requires_grad
    state = memory.state_dict()
    fresh = CrossBatchMemory(size=5, dim=2)
    fresh.load_state_dict(state)
    assert fresh.labels.tolist() == memory.labels.tolist()
    with pytest.raises(ValueError, match=r"expected \[n, 2\]"):
        memory.enqueue(torch.zeros(2, 3), torch.zeros(2, dtype=torch.long))
    memory.reset()
    assert len(memory) == 0


def test_memory_and_sampler_arguments_are_checked_when_built():
    with pytest.raises(ValueError, match="CrossBatchMemory: size must be a positive integer"):
        CrossBatchMemory(size=0, dim=2)
    with pytest.raises(TypeError, match="CrossBatchMemory: dim must be an int"):
        CrossBatchMemory(size=4, dim=2.0)
    with pytest.raises(TypeError, match="CrossBatchMemory: use_labels must be a bool"):
        CrossBatchMemory(size=4, dim=2, use_labels=1)
    memory = CrossBatchMemory(size=4, dim=2)
    with pytest.raises(ValueError, match="labels must be integer class labels"):
        memory.enqueue(torch.zeros(2, 2), torch.zeros(2))
    with pytest.raises(TypeError, match="MPerClassSampler: m must be an int"):
        MPerClassSampler([0, 1], m=2.0, batch_size=4)
    with pytest.raises(ValueError, match="MPerClassSampler: num_batches must be"):
        MPerClassSampler([0, 1], m=1, batch_size=2, num_batches=0)
    with pytest.raises(ValueError, match="ClassBalancedSampler: batch_size must be a positive"):
        ClassBalancedSampler([0, 1], batch_size=0)
    with pytest.raises(ValueError, match="ClassBalancedSampler: power must be finite"):
        ClassBalancedSampler([0, 1], batch_size=1, power=float("nan"))
    with pytest.raises(ValueError, match="ListSampler: items_per_list must be"):
        ListSampler([0, 0], [1.0, 0.0], items_per_list=0, lists_per_batch=1)
    with pytest.raises(TypeError, match="ListSampler: shuffle must be a bool"):
        ListSampler([0, 0], [1.0, 0.0], items_per_list=1, lists_per_batch=1, shuffle=1)


def test_m_per_class_batches_hold_distinct_items_and_classes():
    """A class with at least m items gives m distinct items to a batch, and a batch's classes
    are distinct, also when a class's pool (or the class cycle) is reshuffled in a batch."""
    labels = torch.tensor([0, 0, 0, 1, 1, 1, 2, 2, 2])
    sampler = MPerClassSampler(labels, m=2, batch_size=4, num_batches=200, seed=0)
    for batch in sampler:
        assert len(set(batch)) == len(batch)
        assert sorted(torch.bincount(labels[batch]).tolist()) in ([0, 2, 2], [2, 2])
    # a class with fewer than m items still repeats (nothing else to draw)
    small = MPerClassSampler(torch.tensor([0, 1, 1, 1]), m=2, batch_size=4, num_batches=5)
    assert all(len(set(batch)) == 3 for batch in small)


def test_class_balanced_without_replacement_draws_distinct_items():
    labels = torch.tensor([0] * 90 + [1] * 10)
    with_repeats = ClassBalancedSampler(labels, batch_size=10, num_batches=200, seed=0)
    assert any(len(set(batch)) < len(batch) for batch in with_repeats)
    distinct = ClassBalancedSampler(
        labels, batch_size=10, num_batches=200, seed=0, replacement=False
    )
    assert all(len(set(batch)) == 10 for batch in distinct)
    counts = torch.bincount(labels[torch.tensor(list(distinct)).flatten()], minlength=2)
    assert 0.4 < counts[1] / counts.sum() < 0.6  # still balanced
    with pytest.raises(ValueError, match="replacement=False draws 200 distinct items per batch"):
        ClassBalancedSampler(labels, batch_size=200, replacement=False)


@pytest.mark.parametrize(
    "make",
    [
        lambda ids: MPerClassSampler(ids, m=2, batch_size=4),
        lambda ids: ClassBalancedSampler(ids, batch_size=4),
        lambda ids: ListSampler(ids, ids, items_per_list=3, lists_per_batch=2),
    ],
)
def test_an_empty_data_set_is_refused(make):
    for empty in ([], torch.tensor([], dtype=torch.long)):
        with pytest.raises(ValueError, match="is empty; a sampler needs at least one item"):
            make(empty)

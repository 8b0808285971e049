"""``split_interactions(split="ratio")``: RecBole's per-user random 8:1:1 split."""

from __future__ import annotations

import math

import pytest
import torch

from rankloss.data.datasets import split_interactions
from rankloss.data.types import Interactions

# users 0..6 with 1, 2, 3, 9, 10, 25 and 0 interactions (user 6 has none)
_COUNTS = [1, 2, 3, 9, 10, 25, 0]


def _log(counts: list[int] = _COUNTS, seed: int = 5) -> Interactions:
    users = torch.cat([torch.full((c,), u) for u, c in enumerate(counts)])
    g = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(users), generator=g)  # rows of a user are not contiguous
    users = users[order]
    items = torch.cat([torch.randperm(40, generator=g)[:c] for c in counts])[order]
    rating = torch.randint(1, 6, (len(users),), generator=g).float()
    return Interactions(users, items, rating, torch.arange(len(users)).double())


def _expected_counts(total: int, test: float, validation: float) -> tuple[int, int, int]:
    """RecBole's rule, written out: floor of each fraction; then, test first, a held-out split
    whose share is between 0 and 1 interaction gets one while training keeps more than one."""
    n_test = math.floor(total * test)
    n_val = math.floor(total * validation)
    if total - n_test - n_val > 1 and 0 < total * test < 1:
        n_test += 1
    if total - n_test - n_val > 1 and 0 < total * validation < 1:
        n_val += 1
    return total - n_test - n_val, n_val, n_test


def _per_user(inter: Interactions, user: int) -> list[tuple[int, float]]:
    keep = inter.user == user
    return sorted(zip(inter.item[keep].tolist(), inter.time[keep].tolist()))


def test_ratio_split_counts_per_user_follow_recbole() -> None:
    log = _log()
    data = split_interactions(
        log, 7, 40, feedback="graded", split="ratio", test_fraction=0.1, validation_fraction=0.1
    )
    assert data.validation is not None
    for user, total in enumerate(_COUNTS):
        got = tuple(
            int((split.user == user).sum()) for split in (data.train, data.validation, data.test)
        )
        assert got == _expected_counts(total, 0.1, 0.1), user
    # users with >= 3 interactions have some in every split; 2 -> train + test; 1 -> train
    assert _expected_counts(3, 0.1, 0.1) == (1, 1, 1)
    assert _expected_counts(2, 0.1, 0.1) == (1, 0, 1)
    assert _expected_counts(1, 0.1, 0.1) == (1, 0, 0)
    assert _expected_counts(25, 0.1, 0.1) == (21, 2, 2)


def test_ratio_split_partitions_each_users_log() -> None:
    log = _log()
    data = split_interactions(log, 7, 40, feedback="graded", split="ratio")
    assert data.validation is not None
    total = len(data.train) + len(data.validation) + len(data.test)
    assert total == len(log)
    for user in range(7):
        parts = [_per_user(s, user) for s in (data.train, data.validation, data.test)]
        assert sorted(parts[0] + parts[1] + parts[2]) == _per_user(log, user)
        times = [t for p in parts for _, t in p]
        assert len(set(times)) == len(times)  # no interaction in two splits


def test_ratio_split_is_seeded_and_random_within_user() -> None:
    log = _log()
    a = split_interactions(log, 7, 40, feedback="graded", split="ratio", seed=0)
    b = split_interactions(log, 7, 40, feedback="graded", split="ratio", seed=0)
    assert torch.equal(a.test.time, b.test.time)
    tests = {
        tuple(split_interactions(log, 7, 40, feedback="graded", split="ratio", seed=s).test.time)
        for s in range(6)
    }
    assert len(tests) > 1  # the held-out interactions change with the seed, not only by time


def test_ratio_split_threshold_then_split() -> None:
    log = _log()
    data = split_interactions(log, 7, 40, rating_threshold=4.0, split="ratio")
    kept = int((log.rating >= 4).sum())
    assert data.validation is not None
    assert len(data.train) + len(data.validation) + len(data.test) == kept
    assert bool((data.test.rating >= 4).all())


def test_ratio_split_without_validation() -> None:
    data = split_interactions(
        _log(), 7, 40, feedback="graded", split="ratio", test_fraction=0.2, validation_fraction=0.0
    )
    assert data.validation is None
    assert int((data.test.user == 5).sum()) == 5  # floor(0.2 * 25)


def test_existing_splits_are_unchanged() -> None:
    """The numbers of the earlier splits, recorded before ``ratio`` was added."""
    log = _log()
    random = split_interactions(log, 7, 40, feedback="graded", split="random", seed=0)
    assert random.validation is not None
    assert (len(random.train), len(random.validation), len(random.test)) == (36, 4, 10)
    assert random.test.time.long().tolist() == [6, 7, 10, 17, 21, 29, 33, 37, 39, 44]
    last = split_interactions(log, 7, 40, feedback="graded", split="leave-last-out")
    assert last.validation is not None
    assert (len(last.train), len(last.validation), len(last.test)) == (41, 4, 5)
    assert last.test.time.tolist() == [30.0, 43.0, 47.0, 48.0, 49.0]
    assert last.validation.time.tolist() == [38.0, 42.0, 45.0, 46.0]
    # leave-last-out: each user's last interaction by time is the test one
    for user, total in enumerate(_COUNTS):
        if total >= 2:
            times = log.time[log.user == user]
            assert last.test.time[last.test.user == user].tolist() == [float(times.max())]


@pytest.mark.badinput("data")
@pytest.mark.parametrize(("test", "validation"), [(0.0, 0.1), (0.5, 0.5), (0.2, -0.1)])
def test_ratio_split_refuses_bad_fractions(test: float, validation: float) -> None:
    with pytest.raises(ValueError, match="split='ratio'"):
        split_interactions(
            _log(), 7, 40, split="ratio", test_fraction=test, validation_fraction=validation
        )


@pytest.mark.badinput("data")
@pytest.mark.parametrize("split", ["random", "leave-last-out", "ratio"])
def test_a_threshold_above_every_rating_is_refused(split: str) -> None:
    log = _log()  # ratings 1..5
    with pytest.raises(ValueError, match=r"no interaction has rating >= 6 \(ratings 1 to 5\)"):
        split_interactions(log, 7, 40, split=split, rating_threshold=6.0)
    graded = split_interactions(log, 7, 40, split=split, feedback="graded", rating_threshold=6.0)
    assert len(graded.train) + len(graded.test) + len(graded.validation or []) == len(log)

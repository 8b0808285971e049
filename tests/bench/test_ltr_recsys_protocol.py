"""The LTR and recommendation protocols of ``rankloss bench``: the feature transform fitted on
the training split, list capping that keeps relevant documents, the ``random``, ``popularity``
and LightGBM rows, RecBole's recsys protocol and the options a tuner sets."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

import rankloss.bench.tasks as bench_tasks
from rankloss.bench.runner import RunContext
from rankloss.bench.suites import RECSYS, SUITES, LossSpec, check_suite
from rankloss.data.types import Interactions, LTRDataset, LTRSplit, RecDataset
from rankloss.losses import get
from rankloss.train.tasks import LTRTask, RecsysTask


# ----------------------------------------------------------------------------- helpers
def _split(features: torch.Tensor, labels: torch.Tensor, mask: torch.Tensor) -> LTRSplit:
    return LTRSplit(features.float(), labels.float(), mask, torch.arange(len(mask)))


def _ltr_data(seed: int = 0, lists: int = 6, n: int = 12, f: int = 5) -> LTRDataset:
    """Lists whose first feature is the label plus noise; padding holds garbage."""
    g = torch.Generator().manual_seed(seed)

    def make(q: int) -> LTRSplit:
        labels = torch.randint(0, 3, (q, n), generator=g).float()
        features = torch.randn(q, n, f, generator=g) * 10.0
        features[..., 0] = labels * 5 + torch.randn(q, n, generator=g)
        mask = torch.arange(n) < torch.randint(n // 2, n + 1, (q, 1), generator=g)
        features[~mask] = 1e6  # garbage that must never reach a statistic
        return _split(features, labels, mask)

    return LTRDataset(make(lists), make(lists), make(lists))


def _context(tmp_path: Path, suite: Any, loss: LossSpec, seed: int = 0) -> RunContext:
    suite = replace(suite, losses=(loss,))
    check_suite(suite)
    return RunContext(suite, loss, suite.dataset, seed, "cpu", tmp_path / f"work{seed}")


# ----------------------------------------------------------------------------- feature transform
def test_log1p_transform_values_fitted_on_train_only() -> None:
    mask = torch.tensor([[True, True, False], [True, True, True]])
    train_x = torch.tensor(
        [[[0.0, 5.0], [3.0, 5.0], [1e9, -1e9]], [[-2.0, 5.0], [10.0, 5.0], [7.0, 5.0]]]
    )
    test_x = torch.tensor([[[1.0, -4.0], [100.0, 5.0], [0.0, 0.0]]])
    labels = torch.zeros(2, 3)
    data = LTRDataset(
        _split(train_x, labels, mask),
        _split(test_x, torch.zeros(1, 3), torch.tensor([[True, True, False]])),
    )
    task = LTRTask(data, feature_transform="log1p")
    # reference: plain loops in float64 over the real training documents
    real = [(0.0, 5.0), (3.0, 5.0), (-2.0, 5.0), (10.0, 5.0), (7.0, 5.0)]
    g = [[math.copysign(math.log1p(abs(v)), v) for v in row] for row in real]
    mean = [sum(r[j] for r in g) / len(g) for j in range(2)]
    std = [math.sqrt(sum((r[j] - mean[j]) ** 2 for r in g) / len(g)) for j in range(2)]

    def expected(v: float, j: int) -> float:
        if std[j] == 0.0:  # feature 1 is constant on train: it becomes 0
            return 0.0
        return (math.copysign(math.log1p(abs(v)), v) - mean[j]) / std[j]

    got_train, got_test = task.data.train.features, task.data.test.features
    assert got_train[0, 1, 0].item() == pytest.approx(expected(3.0, 0), rel=1e-5)
    assert got_train[1, 0, 0].item() == pytest.approx(expected(-2.0, 0), rel=1e-5)
    assert got_test[0, 0, 0].item() == pytest.approx(expected(1.0, 0), rel=1e-5)
    assert got_test[0, 1, 0].item() == pytest.approx(expected(100.0, 0), rel=1e-5)
    assert got_test[0, :, 1].tolist() == [0.0, 0.0, 0.0]
    assert got_train[0, 2].tolist() == [0.0, 0.0]  # padding set to 0
    # statistics of the real training documents: zero mean, unit variance there
    values = got_train[mask][:, 0].double()
    assert values.mean().item() == pytest.approx(0.0, abs=1e-6)
    assert values.std(unbiased=False).item() == pytest.approx(1.0, rel=1e-5)


def test_standardize_and_none_transforms() -> None:
    data = _ltr_data()
    raw = LTRTask(data, feature_transform="none").data
    assert torch.equal(raw.train.features, data.train.features)
    std = LTRTask(data, feature_transform="standardize").data
    real = data.train.features[data.train.mask].double()
    expected = (data.test.features.double() - real.mean(0)) / real.std(0, unbiased=False)
    test_mask = data.test.mask.unsqueeze(-1)
    assert torch.allclose(
        std.test.features.double(), torch.where(test_mask, expected, 0.0), atol=1e-5
    )
    assert std.validation is not None and std.validation.features.abs().max() < 1e3


@pytest.mark.badinput("data")
def test_unknown_feature_transform_is_refused() -> None:
    with pytest.raises(ValueError, match="LTRTask: feature_transform must be one of"):
        LTRTask(_ltr_data(), feature_transform="log")
    with pytest.raises(ValueError, match="LTRTask: max_items must be"):
        LTRTask(_ltr_data(), max_items=0)


# ----------------------------------------------------------------------------- list capping
def test_max_items_keeps_the_relevant_documents() -> None:
    """Long lists with few relevant documents: every list keeps all of them (up to the cap);
    a uniformly random cut of the same size would lose most."""
    g = torch.Generator().manual_seed(3)
    q, n, cap = 40, 1000, 32
    labels = torch.zeros(q, n)
    relevant_counts = torch.randint(1, 12, (q,), generator=g)
    relevant_counts[:3] = torch.tensor([1, 50, 32])  # one, more than the cap, exactly the cap
    for i, k in enumerate(relevant_counts.tolist()):
        labels[i, torch.randperm(n, generator=g)[:k]] = torch.randint(
            1, 5, (k,), generator=g
        ).float()
    mask = torch.arange(n) < torch.randint(600, n + 1, (q, 1), generator=g)
    labels = labels * mask
    features = torch.arange(n).float().expand(q, n).unsqueeze(-1).clone()
    data = LTRDataset(_split(features, labels, mask), _split(features, labels, mask))
    task = LTRTask(data, batch_size=7, max_items=cap)
    seen = 0
    for batch in task.train_batches(torch.Generator().manual_seed(0)):
        assert batch.mask.shape[1] == cap
        for row in range(len(batch)):
            qid = int(batch.query_ids[row])
            have = int(((data.train.labels[qid] > 0) & data.train.mask[qid]).sum())
            kept = int(((batch.labels[row] > 0) & batch.mask[row]).sum())
            assert kept == min(have, cap), qid
            assert int(batch.mask[row].sum()) == cap
            # the kept documents are documents of that list, in their order, with their labels
            position = batch.features[row, batch.mask[row], 0].long()
            assert bool((position.diff() > 0).all())
            assert bool(data.train.mask[qid, position].all())
            assert torch.equal(batch.labels[row][batch.mask[row]], data.train.labels[qid, position])
            seen += 1
    assert seen == q


def test_max_items_leaves_short_lists_whole_and_draws_with_the_generator() -> None:
    data = _ltr_data(lists=10, n=12)
    task = LTRTask(data, batch_size=10, max_items=20)
    (batch,) = list(task.train_batches(torch.Generator().manual_seed(0)))
    assert torch.equal(batch.mask.sum(-1).sort().values, data.train.mask.sum(-1).sort().values)
    small = LTRTask(data, batch_size=10, max_items=4)
    a = next(iter(small.train_batches(torch.Generator().manual_seed(1))))
    b = next(iter(small.train_batches(torch.Generator().manual_seed(1))))
    assert torch.equal(a.features, b.features)


# ----------------------------------------------------------------------------- LTR rows
@pytest.fixture
def tiny_ltr(monkeypatch: pytest.MonkeyPatch) -> LTRDataset:
    data = _ltr_data(seed=1, lists=8, n=10)
    monkeypatch.setattr(bench_tasks, "load_dataset", lambda name, **options: data)
    return data


def _expected_random_ndcg10(split: LTRSplit) -> float:
    """The expected NDCG@10 of a uniformly random order, written out per list: each document
    lands at each of the n positions with probability 1/n."""
    values = []
    for labels, mask in zip(split.labels.tolist(), split.mask.tolist()):
        gains = [y for y, m in zip(labels, mask) if m]
        n = len(gains)
        discount = sum(1.0 / math.log2(p + 2) for p in range(min(10, n))) / n
        ideal = sum(g / math.log2(p + 2) for p, g in enumerate(sorted(gains, reverse=True)[:10]))
        if ideal > 0:
            values.append(sum(gains) * discount / ideal)
    return sum(values) / len(values)


def test_random_row_scores_by_chance(tmp_path: Path, tiny_ltr: LTRDataset) -> None:
    row = LossSpec("random", "random")
    results = [
        bench_tasks.run_ltr(_context(tmp_path, SUITES["quick-ltr"], row, seed)).metrics["ndcg@10"]
        for seed in range(60)
    ]
    assert len(set(results)) > 1
    again = bench_tasks.run_ltr(_context(tmp_path, SUITES["quick-ltr"], row, 0)).metrics
    assert again["ndcg@10"] == results[0]
    mean = sum(results) / len(results)
    assert mean == pytest.approx(_expected_random_ndcg10(tiny_ltr.test), abs=0.02)


def test_ltr_suites_have_random_and_lightgbm_rows() -> None:
    for name in ("ltr", "quick-ltr"):
        suite = SUITES[name]
        check_suite(suite)
        rows = {row.name: row for row in suite.losses}
        assert "random" in rows and "lightgbm" in rows
        assert suite.budget["feature_transform"] == "log1p"
        assert rows["lightgbm"].options["feature_transform"] == "none"


def test_lightgbm_row_reads_its_hyper_parameters(tmp_path: Path, tiny_ltr: LTRDataset) -> None:
    pytest.importorskip("lightgbm")
    suite = SUITES["quick-ltr"]
    row = LossSpec(
        "lightgbm", "lightgbm", {"n_estimators": 3, "num_leaves": 4, "early_stopping_rounds": 50}
    )
    result = bench_tasks.run_ltr(_context(tmp_path, suite, row))
    assert 1 <= int(result.notes.rsplit(" ", 1)[-1]) <= 3
    assert 0.0 <= result.metrics["ndcg@10"] <= 1.0


# ----------------------------------------------------------------------------- recsys
def _rec_data() -> RecDataset:
    """6 users, 10 items; item i has 10 - i training interactions among other users' logs
    (unique popularity, no ties), and user 0 has seen the two most popular items."""
    users, items = [], []
    for item in range(10):
        for k in range(10 - item):
            users.append(1 + k % 5)
            items.append(item)
    users += [0, 0]
    items += [0, 1]
    train = Interactions(
        torch.tensor(users), torch.tensor(items), torch.ones(len(users)), torch.zeros(len(users))
    )
    test = Interactions(
        torch.tensor([0, 0, 2]), torch.tensor([2, 9, 5]), torch.ones(3), torch.zeros(3)
    )
    validation = Interactions(torch.tensor([3]), torch.tensor([8]), torch.ones(1), torch.zeros(1))
    return RecDataset(6, 10, train, test, validation)


def _recall_ndcg_by_loops(data: RecDataset, score: list[float], k: int) -> tuple[float, float]:
    """Full ranking excluding seen items (train, and validation for test), by loops."""
    recalls, ndcgs = [], []
    for user in sorted(set(data.test.user.tolist())):
        held = [i for u, i in zip(data.test.user.tolist(), data.test.item.tolist()) if u == user]
        seen = {i for u, i in zip(data.train.user.tolist(), data.train.item.tolist()) if u == user}
        assert data.validation is not None
        for u, i in zip(data.validation.user.tolist(), data.validation.item.tolist()):
            if u == user:
                seen.add(i)
        candidates = [i for i in range(data.num_items) if i not in seen or i in held]
        top = sorted(candidates, key=lambda i: -score[i])[:k]
        hits = [1.0 if i in held else 0.0 for i in top]
        recalls.append(sum(hits) / len(held))
        dcg = sum(h / math.log2(p + 2) for p, h in enumerate(hits))
        ideal = sum(1.0 / math.log2(p + 2) for p in range(min(k, len(held))))
        ndcgs.append(dcg / ideal)
    return sum(recalls) / len(recalls), sum(ndcgs) / len(ndcgs)


def test_popularity_row_excludes_seen_items(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    data = _rec_data()
    monkeypatch.setattr(bench_tasks, "load_dataset", lambda name, **options: data)
    suite = RECSYS.with_budget(epochs=1)
    row = LossSpec("popularity", "popularity", options={"deterministic": True})
    task = RecsysTask(data, ks=(3,))
    counts = torch.bincount(data.train.item, minlength=10).float().tolist()
    with caplog.at_level("INFO", logger="rankloss.bench"):
        result = bench_tasks.run_recsys(_context(tmp_path, suite, row))
    recall, ndcg = _recall_ndcg_by_loops(data, counts, 10)
    assert result.metrics["recall@10"] == pytest.approx(recall)
    assert result.metrics["ndcg@10"] == pytest.approx(ndcg)
    # at k = 3 exclusion matters: user 0 has seen items 0 and 1, the two most popular
    got = task.evaluate(bench_tasks._Popularity(torch.tensor(counts)), "test")
    recall3, ndcg3 = _recall_ndcg_by_loops(data, counts, 3)
    assert got["recall@3"] == pytest.approx(recall3)
    assert got["ndcg@3"] == pytest.approx(ndcg3)
    assert recall3 > 0.0
    assert "rating >= 1" in result.notes and "'ratio'" in result.notes
    assert "rating >= 1" in caplog.text  # the threshold is logged, not only recorded


def test_recsys_suite_uses_recbole_protocol() -> None:
    check_suite(RECSYS)
    assert RECSYS.budget["split"] == "ratio"
    assert "rating_threshold" in RECSYS.budget
    assert RECSYS.metrics == ("recall@10", "ndcg@10")
    names = [row.name for row in RECSYS.losses]
    assert "popularity" in names and "bpr" in names


class _Fixed(nn.Module):
    def __init__(self, scores: torch.Tensor) -> None:
        super().__init__()
        self.scores = nn.Parameter(scores)

    def forward(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        return self.scores[users.unsqueeze(-1), items]


def test_temperature_divides_the_training_scores() -> None:
    data = _rec_data()
    model = _Fixed(torch.randn(6, 10, generator=torch.Generator().manual_seed(0)))
    loss = get("softmax_ce")
    plain = RecsysTask(data, positives=2, negatives=4)
    hot = RecsysTask(data, positives=2, negatives=4, temperature=0.25)
    batch = next(iter(plain.train_batches(torch.Generator().manual_seed(0))))
    scaled = _Fixed(model.scores.detach() * 4.0)
    expected = plain.training_step(scaled, batch, loss)
    assert hot.training_step(model, batch, loss).item() == pytest.approx(expected.item(), rel=1e-5)


@pytest.mark.badinput("bench")
def test_recsys_row_options_are_checked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = _rec_data()
    monkeypatch.setattr(bench_tasks, "load_dataset", lambda name, **options: data)
    suite = RECSYS.with_budget(epochs=1)
    for options, message in (
        ({"temperature": 0.0}, "temperature must be"),
        ({"negatives": -3}, "negatives must be"),
        ({"lr": -1.0}, "lr must be"),
    ):
        row = LossSpec("bpr", "bpr", options=options)
        with pytest.raises(ValueError, match=message):
            bench_tasks.run_recsys(_context(tmp_path, suite, row))


def test_recsys_row_options_reach_the_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = _rec_data()
    monkeypatch.setattr(bench_tasks, "load_dataset", lambda name, **options: data)
    built: dict[str, Any] = {}
    real = bench_tasks._trainer

    def spy(ctx: RunContext, model: nn.Module, task: Any, loss: Any) -> Any:
        built.update(lr=ctx.suite.budget["lr"], task=task)
        return real(ctx, model, task, loss)

    monkeypatch.setattr(bench_tasks, "_trainer", spy)
    suite = RECSYS.with_budget(epochs=1)
    row = LossSpec(
        "ss", "sampled_softmax", options={"negatives": 7, "temperature": 0.5, "lr": 0.02}
    )
    bench_tasks.run_recsys(_context(tmp_path, suite, row))
    assert built["lr"] == 0.02
    assert built["task"].negatives == 7 and built["task"].temperature == 0.5
    row = LossSpec("ib", "sampled_softmax", options={"negatives": "in_batch"})
    bench_tasks.run_recsys(_context(tmp_path / "b", suite, row))
    assert isinstance(built["task"], bench_tasks._InBatchTask)


def test_the_recsys_suite_splits_each_user_8_1_1(tmp_path: Path) -> None:
    """RecBole's ratio split: 10% test and 10% validation per user (the library's defaults,
    0.2 and 0.1, gave 7:1:2)."""
    from rankloss.bench.suites import recsys_data_options
    from rankloss.data.formats import interactions_dataset

    options = recsys_data_options("recsys", RECSYS.budget)
    assert options["test_fraction"] == options["validation_fraction"] == 0.1
    log = tmp_path / "log.csv"
    log.write_text("user,item,rating,time\n" + "".join(f"u0,i{i},5,{i}\n" for i in range(20)))
    data = interactions_dataset(log, **options)
    assert (len(data.train), len(data.validation), len(data.test)) == (16, 2, 2)
    # a suite without the keys keeps the loader's defaults
    assert "test_fraction" not in recsys_data_options("x", {"split": "ratio"})
    with pytest.raises(ValueError, match=r"test_fraction must be in \[0.0, 1.0\]"):
        recsys_data_options("x", {"test_fraction": 1.5})

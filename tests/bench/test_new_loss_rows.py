"""The rows of the proxy, pair/tuple, AP-surrogate, listwise and recommendation losses: each is
in its full suite (not a quick one), builds with what its task knows (proxy losses: the number
of training classes and the model's output size; ``gbce``: the negatives per list and the
catalogue size) and trains one short epoch there."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import torch

import rankloss.bench.tasks as bench_tasks
from rankloss.bench.runner import RunContext
from rankloss.bench.suites import SUITES, LossSpec, build_row_loss, check_suite
from rankloss.data.types import Interactions, LTRDataset, LTRSplit, RecDataset
from rankloss.functional.recommendation import gbce_beta
from rankloss.losses import LOSSES

PROXY = (
    "proxy_nca",
    "proxy_nca_pp",
    "proxy_anchor",
    "normalized_softmax",
    "cosface",
    "arcface",
    "sub_center_arcface",
    "soft_triple",
)
EMBEDDING = (
    "lifted_structure",
    "generalized_lifted_structure",
    "n_pairs",
    "angular",
    "margin",
    "tuplet_margin",
    "dcl",
    "dclw",
    "fast_ap",
    "smooth_ap",
    "recall_at_k",
)
LISTWISE = (
    "xe_ndcg",
    "gumbel_approx_ndcg",
    "pirank",
    "position_aware_listmle",
    "rank_cosine",
    "soft_rank_ndcg",
)
RECOMMENDATION = ("sampled_softmax", "bpr_max", "top1_max", "gbce", "ccl")
_LOAD = bench_tasks.load_dataset


def _context(tmp_path: Path, suite: Any, row: LossSpec, seed: int = 0) -> RunContext:
    suite = replace(suite, losses=(row,))
    check_suite(suite)
    return RunContext(suite, row, suite.dataset, seed, "cpu", tmp_path / f"work{seed}")


def _row(suite: str, name: str) -> LossSpec:
    rows = [row for row in SUITES[suite].losses if row.name == name]
    assert rows, f"suite {suite!r} has no {name!r} row"
    return rows[-1]


class _Spy:
    """Wraps ``bench_tasks._trainer``: keeps each trainer it builds."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.trainers: list[Any] = []
        self.initial: list[dict[str, torch.Tensor]] = []
        real = bench_tasks._trainer

        def spy(*args: Any, **kwargs: Any) -> Any:
            trainer = real(*args, **kwargs)
            self.trainers.append(trainer)
            self.initial.append({k: v.clone() for k, v in trainer.loss.state_dict().items()})
            return trainer

        monkeypatch.setattr(bench_tasks, "_trainer", spy)


# ----------------------------------------------------------------------------- suites
def test_new_rows_are_in_the_full_suites_only() -> None:
    names = {suite: {row.name for row in SUITES[suite].losses} for suite in SUITES}
    assert set(LISTWISE) <= names["ltr"] and not set(LISTWISE) & names["quick-ltr"]
    assert set(RECOMMENDATION) <= names["recsys"]
    for suite in ("retrieval", "retrieval-fashion"):
        assert set(PROXY + EMBEDDING) <= names[suite]
    assert not set(PROXY + EMBEDDING) & names["quick-retrieval"]
    assert SUITES["retrieval-fashion"].losses == SUITES["retrieval"].losses
    for suite in SUITES.values():
        check_suite(suite)  # every row builds (the loss's example stands in for the task's facts)


def test_task_facts_fill_what_the_loss_cannot_be_built_without() -> None:
    facts = {"num_classes": 7, "embedding_size": 16, "num_negatives": 9, "num_items": 50}
    proxy = build_row_loss("retrieval", LossSpec("a", "arcface"), facts)
    assert proxy is not None and tuple(proxy.proxies.shape) == (7, 16)
    assert build_row_loss("retrieval", LossSpec("t", "triplet"), facts) is not None
    gbce: Any = build_row_loss("recsys", LossSpec("g", "gbce"), facts)
    assert gbce.beta == pytest.approx(gbce_beta(num_negatives=9, num_items=50))
    # the row's own values win; a sampling rate of its own takes no counts
    own: Any = build_row_loss("recsys", LossSpec("g", "gbce", {"sampling_rate": 0.5}), facts)
    assert own.beta == pytest.approx(gbce_beta(sampling_rate=0.5))
    # a log_q row trains the registered sampled_softmax, a plain row the softmax_ce baseline
    plain: Any = build_row_loss("recsys", LossSpec("s", "sampled_softmax"))
    logq: Any = build_row_loss("recsys", LossSpec("s", "sampled_softmax", options={"log_q": True}))
    assert (plain.registered_name, logq.registered_name) == ("softmax_ce", "sampled_softmax")


# ----------------------------------------------------------------------------- retrieval
def _retrieval_suite() -> Any:
    return SUITES["retrieval"].with_budget(epochs=1, max_per_split=160, patience=1)


def _run_retrieval_row(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> tuple[Any, Any, Any]:
    """The retrieval suite's row ``name`` run for one epoch on digits: (spy, suite, result)."""
    monkeypatch.setattr(bench_tasks, "load_dataset", lambda name: _digits())
    spy = _Spy(monkeypatch)
    suite = replace(_retrieval_suite(), dataset="digits", fallbacks=())
    result = bench_tasks.run_retrieval(_context(tmp_path, suite, _row("retrieval", name)))
    return spy, suite, result


@pytest.mark.parametrize("name", PROXY)
def test_proxy_rows_train_with_the_training_classes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    spy, suite, result = _run_retrieval_row(tmp_path, monkeypatch, name)
    (trainer,) = spy.trainers
    loss = trainer.loss
    # seed 0 validates on fold 0 (classes 0, 1): classes 2-5 train, relabelled 0-3
    assert loss.num_classes == 4 and loss.embedding_size == suite.model["embedding_dim"]
    assert sorted(set(trainer.task.base.data.train.y.tolist())) == [0, 1, 2, 3]
    groups = trainer.optimizer.param_groups
    proxy_group = [g for g in groups if any(p is loss.proxies for p in g["params"])]
    assert len(groups) == 2 and len(proxy_group) == 1
    assert proxy_group[0]["lr"] == pytest.approx(bench_tasks.PROXY_LR_SCALE * suite.budget["lr"])
    assert proxy_group[0]["weight_decay"] == 0.0
    assert not torch.equal(spy.initial[0]["proxies"], loss.proxies.detach())  # they trained
    assert math.isfinite(result.history[0]["train_loss"])
    assert 0.0 < result.metrics["map@r"] <= 1.0


@pytest.mark.parametrize("name", EMBEDDING)
def test_embedding_rows_train_a_step(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    spy, _, result = _run_retrieval_row(tmp_path, monkeypatch, name)
    assert len(spy.trainers[0].optimizer.param_groups) == 1  # no proxies: one group
    assert math.isfinite(result.history[0]["train_loss"])
    assert 0.0 < result.metrics["map@r"] <= 1.0


_DIGITS: list[Any] = []


def _digits() -> Any:
    """scikit-learn's digits (offline), loaded once for this module."""
    if not _DIGITS:
        _DIGITS.append(_LOAD("digits"))
    return _DIGITS[0]


# ----------------------------------------------------------------------------- learning to rank
def _ltr_data(n: int = 10, f: int = 4) -> LTRDataset:
    g = torch.Generator().manual_seed(0)

    def make(q: int) -> LTRSplit:
        labels = torch.randint(0, 3, (q, n), generator=g).float()
        features = torch.randn(q, n, f, generator=g)
        features[..., 0] += labels
        mask = torch.arange(n) < torch.randint(n // 2, n + 1, (q, 1), generator=g)
        return LTRSplit(features, labels, mask, torch.arange(q))

    return LTRDataset(make(8), make(4), make(4))


@pytest.mark.parametrize("name", LISTWISE)
def test_listwise_rows_train_a_step(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    data = _ltr_data()
    monkeypatch.setattr(bench_tasks, "load_dataset", lambda name, **options: data)
    suite = SUITES["ltr"].with_budget(epochs=1)
    result = bench_tasks.run_ltr(_context(tmp_path, suite, _row("ltr", name)))
    assert math.isfinite(result.history[0]["train_loss"])
    assert 0.0 <= result.metrics["ndcg@10"] <= 1.0


# ----------------------------------------------------------------------------- recommendation
def _rec_data() -> RecDataset:
    """7 users, 12 items; user u has the items u, ..., u + u % 3 + 1 (sizes 2 to 4)."""
    users, items = [], []
    for user in range(7):
        for item in range(user, user + user % 3 + 2):
            users.append(user)
            items.append(item)
    train = Interactions(
        torch.tensor(users), torch.tensor(items), torch.ones(len(users)), torch.zeros(len(users))
    )
    held = Interactions(torch.tensor([0, 3]), torch.tensor([11, 0]), torch.ones(2), torch.zeros(2))
    return RecDataset(7, 12, train, held, held)


def _recsys_suite() -> Any:
    return SUITES["recsys"].with_budget(epochs=1, batch_size=4, negatives=5, lists_per_user=2)


@pytest.mark.parametrize("name", RECOMMENDATION)
def test_recommendation_rows_train_a_step(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    data = _rec_data()
    monkeypatch.setattr(bench_tasks, "load_dataset", lambda name, **options: data)
    spy = _Spy(monkeypatch)
    calls: list[dict[str, Any]] = []
    row = _row("recsys", name)
    loss_class = LOSSES.get(name)
    forward = loss_class.forward

    def recorded(self: Any, scores: Any, *args: Any, **kwargs: Any) -> Any:
        calls.append({"scores": scores.detach(), **kwargs})
        return forward(self, scores, *args, **kwargs)

    monkeypatch.setattr(loss_class, "forward", recorded)
    result = bench_tasks.run_recsys(_context(tmp_path, _recsys_suite(), row))
    assert math.isfinite(result.history[0]["train_loss"]) and calls
    assert 0.0 <= result.metrics["ndcg@10"] <= 1.0
    trainer = spy.trainers[0]
    if name == "gbce":  # the task's sampling: 5 uniform negatives of 12 items
        assert trainer.loss.beta == pytest.approx(gbce_beta(num_negatives=5, num_items=12))
    if name == "ccl":  # cosine scores, in training and in the ranking
        assert all(c["scores"].abs().max() <= 1.0 + 1e-6 for c in calls)
        full = trainer.model.full_scores(torch.arange(7))
        assert full.abs().max() <= 1.0 + 1e-6
    if name == "sampled_softmax":
        assert row.options["negatives"] == "in_batch" and row.options["log_q"]
        expected = _log_q_by_loops(data)
        for call in calls:
            log_q = call["log_q"]
            assert log_q.shape == call["scores"].shape and (log_q == log_q[:1]).all()
        task = trainer.task
        assert torch.allclose(task.log_q[torch.tensor(list(expected))], _values(expected))


def _log_q_by_loops(data: RecDataset) -> dict[int, float]:
    """log Q(item) of an in-batch positive: a uniform user, then a uniform item of theirs."""
    mine: dict[int, list[int]] = {}
    for user, item in zip(data.train.user.tolist(), data.train.item.tolist()):
        mine.setdefault(user, []).append(item)
    q: dict[int, float] = {}
    for items in mine.values():
        for item in items:
            q[item] = q.get(item, 0.0) + 1.0 / len(items) / len(mine)
    return {item: math.log(p) for item, p in q.items()}


def _values(table: dict[int, float]) -> torch.Tensor:
    return torch.tensor(list(table.values()), dtype=torch.float32)


def test_full_catalogue_row_lists_every_item_but_the_users_other_positives(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = _rec_data()
    monkeypatch.setattr(bench_tasks, "load_dataset", lambda name, **options: data)
    users: list[torch.Tensor] = []
    calls: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []
    step = bench_tasks._FullCatalogueTask.training_step
    loss_class = LOSSES.get("softmax_ce")
    forward = loss_class.forward

    def recorded_step(self: Any, model: Any, batch: Any, loss: Any) -> Any:
        users.append(batch.users)
        return step(self, model, batch, loss)

    def recorded(self: Any, scores: Any, labels: Any, mask: Any = None, **kwargs: Any) -> Any:
        calls.append((scores.detach(), labels, mask))
        return forward(self, scores, labels, mask, **kwargs)

    monkeypatch.setattr(bench_tasks._FullCatalogueTask, "training_step", recorded_step)
    monkeypatch.setattr(loss_class, "forward", recorded)
    row = LossSpec("full softmax", "sampled_softmax", options={"negatives": "all"})
    result = bench_tasks.run_recsys(_context(tmp_path, _recsys_suite(), row))
    assert math.isfinite(result.history[0]["train_loss"]) and calls
    assert len(users) == len(calls)
    mine: dict[int, set[int]] = {}
    for user, item in zip(data.train.user.tolist(), data.train.item.tolist()):
        mine.setdefault(user, set()).add(item)
    for batch_users, (scores, labels, mask) in zip(users, calls):
        assert scores.shape == labels.shape == mask.shape == (len(batch_users), data.num_items)
        for r, user in enumerate(batch_users.tolist()):
            # one drawn positive of this user, labelled 1; every other item 0
            (target,) = torch.nonzero(labels[r]).flatten().tolist()
            assert target in mine[user] and labels[r, target] == 1.0
            # the list: the target and every item the user has not interacted with
            expected = [i == target or i not in mine[user] for i in range(data.num_items)]
            assert mask[r].tolist() == expected


@pytest.mark.badinput("bench")
def test_log_q_with_sampled_negatives_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bench_tasks, "load_dataset", lambda name, **options: _rec_data())
    row = LossSpec("s", "sampled_softmax", options={"negatives": "all", "log_q": True})
    with pytest.raises(
        ValueError, match='log_q corrects in-batch negatives: it needs negatives = "in_batch"'
    ):
        bench_tasks.run_recsys(_context(tmp_path, _recsys_suite(), row))


@pytest.mark.badinput("bench")
def test_log_q_on_another_loss_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bench_tasks, "load_dataset", lambda name, **options: _rec_data())
    row = LossSpec("bpr", "bpr", options={"negatives": "in_batch", "log_q": True})
    with pytest.raises(ValueError, match="log_q needs the sampled_softmax loss"):
        bench_tasks.run_recsys(_context(tmp_path, _recsys_suite(), row))
    row = LossSpec("ccl", "ccl", options={"similarity": "angle"})
    with pytest.raises(ValueError, match="similarity"):
        bench_tasks.run_recsys(_context(tmp_path, _recsys_suite(), row))

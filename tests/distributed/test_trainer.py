"""The trainer under torch.distributed: 2 gloo processes with batch b train as one process
with batch 2b, resume from rank 0's checkpoints, and stop together."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

from rankloss.data import LabelledDataset, LabelledSplit, LTRDataset, LTRSplit
from rankloss.models import EmbeddingMLP, MLPScorer
from rankloss.train import EarlyStopping, EmbeddingTask, LTRTask, Trainer, seed_everything

pytestmark = pytest.mark.skipif(not dist.is_available(), reason="torch.distributed missing")

WORLD = 2


def _entry(rank: int, fn: Callable[..., Any], folder: Path, args: tuple[Any, ...]) -> None:
    torch.set_num_threads(1)
    dist.init_process_group(
        "gloo", init_method=f"file://{folder / 'rendezvous'}", rank=rank, world_size=WORLD
    )
    try:
        torch.save(fn(rank, *args), folder / f"result{rank}.pt")
    finally:
        dist.destroy_process_group()


def run_ranks(fn: Callable[..., Any], folder: Path, *args: Any) -> list[Any]:
    """``fn(rank, *args)`` on 2 forked gloo ranks; their return values in rank order."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "rendezvous").unlink(missing_ok=True)
    mp.start_processes(_entry, (fn, folder, args), nprocs=WORLD, start_method="fork")
    return [torch.load(folder / f"result{r}.pt", weights_only=False) for r in range(WORLD)]


def _ltr() -> LTRDataset:
    g = torch.Generator().manual_seed(0)
    w = torch.randn(6, generator=g)

    def split(q: int) -> LTRSplit:
        x = torch.randn(q, 10, 6, generator=g)
        y = (x @ w + 0.3 * torch.randn(q, 10, generator=g)).clamp(-1.5, 1.5).add(1.5).round()
        mask = torch.arange(10) < torch.randint(4, 11, (q, 1), generator=g)
        return LTRSplit(x, y, mask, torch.arange(q))

    return LTRDataset(split(24), split(10), split(6))


def _fit_ltr(
    rank: int,
    batch_size: int,
    epochs: int,
    folder: Path | None,
    resume: bool = False,
    lists: int | None = None,
    loss: str = "listnet",
    unjudged: tuple[int, ...] = (),
) -> Any:
    """``lists``: train on the first ``lists`` training lists only (default all 24);
    ``unjudged``: training lists whose labels are all 0 (a loss may skip them)."""
    seed_everything(0)
    data = _ltr()
    if lists is not None:
        data = replace(data, train=data.train.subset(torch.arange(lists)))
    if unjudged:
        labels = data.train.labels.clone()
        labels[list(unjudged)] = 0.0
        data = replace(data, train=replace(data.train, labels=labels))
    trainer = Trainer(
        MLPScorer(6, hidden=(8,), dropout=0.0),
        LTRTask(data, batch_size=batch_size, max_items=8),
        loss,
        epochs=epochs,
        seed=3,
        # SGD, not Adam: Adam magnifies rounding noise in the output bias's (zero) gradient.
        optimizer="sgd",
        lr=0.1,
        log_dir=None if folder is None else folder / "logs",
        checkpoint_dir=None if folder is None else folder / "ckpt",
        progress=False,
        resume=resume,
    )
    result = trainer.fit()
    return {
        "history": result.history,
        "state": trainer.model.state_dict(),
        "test": trainer.evaluate("test"),
        "distributed": trainer.distributed,
        "resumed_from": result.resumed_from,
        "rank": rank,
    }


def _same_run(a: dict[str, Any], b: dict[str, Any]) -> None:
    assert len(a["history"]) == len(b["history"])
    for row_a, row_b in zip(a["history"], b["history"]):
        for key, value in row_a.items():
            if isinstance(value, float):
                if key != "seconds":
                    assert row_b[key] == pytest.approx(value, rel=1e-5, abs=1e-6), key
            else:
                assert row_b[key] == value, key
    for name, tensor in a["state"].items():
        torch.testing.assert_close(b["state"][name], tensor, rtol=1e-5, atol=1e-6)
    assert b["test"] == pytest.approx(a["test"], rel=1e-5, abs=1e-6)


def _rows(path: Path) -> list[dict[str, Any]]:
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    for row in rows:
        row.pop("seconds", None)
    return rows


def test_two_ranks_train_as_one_process_with_twice_the_batch_and_resume(tmp_path: Path) -> None:
    start = time.perf_counter()
    single = _fit_ltr(0, 8, 3, None)
    assert not single["distributed"]
    # Uninterrupted 2-rank run, batch 4 per rank.
    full = run_ranks(_fit_ltr, tmp_path / "full", 4, 3, tmp_path / "full")
    assert all(r["distributed"] for r in full)
    for result in full:
        _same_run(single, result)
    # Rank 0 alone wrote the logs and checkpoints.
    assert len(_rows(tmp_path / "full" / "logs" / "epochs.jsonl")) == 3
    assert len(_rows(tmp_path / "full" / "logs" / "steps.jsonl")) == 9  # 3 global steps a epoch
    # Interrupted after epoch 1, then resumed to 3 by both ranks: nothing lost or repeated.
    run_ranks(_fit_ltr, tmp_path / "split", 4, 1, tmp_path / "split")
    resumed = run_ranks(_fit_ltr, tmp_path / "split", 4, 3, tmp_path / "split", True)
    for result in resumed:
        assert result["resumed_from"] == 1
        _same_run(full[0], result)
    for kind in ("epochs", "steps"):
        split_rows = _rows(tmp_path / "split" / "logs" / f"{kind}.jsonl")
        assert split_rows == _rows(tmp_path / "full" / "logs" / f"{kind}.jsonl")
    print(f"2-process trainer test: {time.perf_counter() - start:.1f} s")


def _labelled() -> LabelledDataset:
    g = torch.Generator().manual_seed(1)
    centres = 3 * torch.randn(6, 5, generator=g)

    def split(n: int) -> LabelledSplit:
        y = torch.arange(n) % 6
        return LabelledSplit(centres[y] + torch.randn(n, 5, generator=g), y)

    return LabelledDataset(split(48), split(18), split(18))


def _fit_embedding(rank: int, batch_size: int) -> Any:
    seed_everything(0)
    trainer = Trainer(
        EmbeddingMLP(5, 4, hidden=(8,)),
        EmbeddingTask(_labelled(), batch_size=batch_size, per_class=2, batches_per_epoch=3),
        "supcon",
        epochs=2,
        seed=1,
        lr=1e-2,
        progress=False,
        early_stopping=EarlyStopping("precision@1", patience=5),
    )
    result = trainer.fit()
    return {
        "history": result.history,
        "state": trainer.model.state_dict(),
        "test": trainer.evaluate("test"),
        "rank": rank,
    }


def test_embedding_loss_sees_every_rank(tmp_path: Path) -> None:
    pytest.importorskip("rankloss.distributed.losses")
    single = _fit_embedding(0, 8)
    for result in run_ranks(_fit_embedding, tmp_path, 4):
        _same_run(single, result)


class _NaNOnRankOne(LTRTask):
    def training_step(self, model: nn.Module, batch: LTRSplit, loss: Any) -> torch.Tensor:
        value = super().training_step(model, batch, loss)
        return value * math.nan if dist.get_rank() == 1 else value


def _nan_run(rank: int) -> str:
    trainer = Trainer(
        MLPScorer(6, hidden=(4,)),
        _NaNOnRankOne(_ltr(), batch_size=4),
        "listnet",
        epochs=1,
        progress=False,
    )
    with pytest.raises(FloatingPointError, match=r"loss is nan \(mean over ranks; ") as error:
        trainer.fit()
    return str(error.value)


def test_non_finite_loss_on_one_rank_stops_every_rank(tmp_path: Path) -> None:
    messages = run_ranks(_nan_run, tmp_path)
    assert "nan on rank 1" in messages[1] and "nan on rank 0" not in messages[0]


def test_distributed_true_needs_a_process_group() -> None:
    with pytest.raises(ValueError, match="Trainer: distributed=True needs an initialised"):
        Trainer(MLPScorer(6), LTRTask(_ltr()), "listnet", distributed=True)


def test_logs_start_afresh_without_resume(tmp_path: Path) -> None:
    for _ in range(2):
        _fit_ltr(0, 8, 2, tmp_path)
    assert [r["epoch"] for r in _rows(tmp_path / "logs" / "epochs.jsonl")] == [1, 2]
    with open(tmp_path / "logs" / "epochs.csv", encoding="utf-8") as f:
        assert len(f.read().splitlines()) == 3  # the header and 2 rows


def test_an_uneven_last_global_batch_trains_as_one_process(tmp_path: Path) -> None:
    """Each rank's loss is weighted by its share of the global batch's lists, so the mean
    over ranks is the global mean (it was the mean of the two ranks' means)."""
    # 23 training lists: the last global batch of 2 ranks (7 lists with batch 5 a rank)
    # splits 4 / 3
    single = _fit_ltr(0, 10, 2, None, lists=23)
    for result in run_ranks(_fit_ltr, tmp_path / "odd", 5, 2, None, False, 23):
        _same_run(single, result)


def test_lists_a_loss_skips_are_counted_over_every_rank(tmp_path: Path) -> None:
    """ApproxNDCG skips lists without a relevant item; each rank's loss is its sum over the
    global count of counted lists (DistributedLoss), so the mean over ranks is the global
    mean even when the ranks hold different numbers of counted lists."""
    args = (None, False, 16, "approx_ndcg", (0, 1, 2, 5, 9))
    single = _fit_ltr(0, 8, 2, *args)
    for result in run_ranks(_fit_ltr, tmp_path / "skipped", 4, 2, *args):
        _same_run(single, result)


def _fit_embedding_list_loss(rank: int) -> str:
    """An embedding task trained with a list loss (its lists: each anchor's similarities):
    under two ranks the trainer wraps the loss, and the task must still find its kind."""
    seed_everything(0)
    trainer = Trainer(
        EmbeddingMLP(5, 4, hidden=(8,)),
        EmbeddingTask(_labelled(), batch_size=8, per_class=2, batches_per_epoch=2),
        "listnet",
        epochs=1,
        progress=False,
    )
    trainer.fit()
    return "ok"


def test_an_embedding_task_with_a_list_loss_trains_on_two_ranks(tmp_path: Path) -> None:
    assert run_ranks(_fit_embedding_list_loss, tmp_path / "listnet") == ["ok", "ok"]

"""The trainer: exact resume, logs, checkpoints, early stopping and the ready-made tasks."""

from __future__ import annotations

import csv
import json

import pandas as pd
import pytest
import torch
from torch import nn

from rankloss.data import (
    Interactions,
    LabelledDataset,
    LabelledSplit,
    LTRDataset,
    LTRSplit,
    reviews_to_retrieval,
    split_interactions,
)
from rankloss.models import EmbeddingMLP, ListAttentionScorer, MatrixFactorization, MLPScorer
from rankloss.train import (
    EarlyStopping,
    EmbeddingTask,
    LTRTask,
    RecsysTask,
    TextRetrievalTask,
    Trainer,
    seed_everything,
)


def _ltr(seed=0, queries=24, n=12, f=6):
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(f, generator=g)

    def split(q):
        x = torch.randn(q, n, f, generator=g)
        y = (x @ w + 0.3 * torch.randn(q, n, generator=g)).clamp(-1.5, 1.5).add(1.5).round()
        mask = torch.arange(n) < torch.randint(4, n + 1, (q, 1), generator=g)
        return LTRSplit(x, y, mask, torch.arange(q))

    return LTRDataset(split(queries), split(8), split(8))


def _run(tmp_path, epochs, *, resume=False, model_seed=0, name="run", **kwargs):
    seed_everything(model_seed)
    model = MLPScorer(6, hidden=(16,), dropout=0.3)
    trainer = Trainer(
        model, LTRTask(_ltr(), batch_size=5, max_items=8), "listnet", epochs=epochs, seed=7,
        lr=1e-2, log_dir=tmp_path / name / "logs", checkpoint_dir=tmp_path / name / "ckpt",
        resume=resume, progress=False, **kwargs,
    )
    return trainer, trainer.fit()


def test_resume_equals_uninterrupted_run(tmp_path):
    full_trainer, full = _run(tmp_path, 4, name="full")
    _run(tmp_path, 2, name="split")  # "interrupted" after 2 epochs
    resumed_trainer, resumed = _run(tmp_path, 4, resume=True, name="split", model_seed=123)
    assert resumed.resumed_from == 2 and resumed.epochs_run == 4
    for a, b in zip(full_trainer.model.state_dict().values(),
                    resumed_trainer.model.state_dict().values()):
        assert torch.equal(a, b)
    assert [h["train_loss"] for h in full.history] == [h["train_loss"] for h in resumed.history]
    assert full_trainer.evaluate("test") == resumed_trainer.evaluate("test")
    steps = [json.loads(x) for x in (tmp_path / "split/logs/steps.jsonl").read_text().splitlines()]
    full_steps = (tmp_path / "full/logs/steps.jsonl").read_text().splitlines()
    assert len(steps) == len(full_steps) and [s["global_step"] for s in steps] == list(
        range(1, len(steps) + 1))


def test_resume_after_crash_mid_epoch(tmp_path):
    """A run killed during epoch 3 leaves partial step logs; resume drops them."""
    _, full = _run(tmp_path, 3, name="full")
    trainer, _ = _run(tmp_path, 2, name="crash")
    with open(tmp_path / "crash/logs/steps.jsonl", "a") as f:
        f.write(json.dumps({"epoch": 3, "step": 1, "global_step": 99, "loss": 0.0}) + "\n")
    _, resumed = _run(tmp_path, 3, resume=True, name="crash")
    drop = lambda rows: [{k: v for k, v in r.items() if k != "seconds"} for r in rows]  # noqa: E731
    assert drop(resumed.history) == drop(full.history)
    rows = list(csv.DictReader(open(tmp_path / "crash/logs/steps.csv")))
    assert "99" not in [r["global_step"] for r in rows]


def test_logs_checkpoint_and_grad_clip(tmp_path):
    trainer, result = _run(tmp_path, 2, grad_clip=0.5)
    epochs = list(csv.DictReader(open(tmp_path / "run/logs/epochs.csv")))
    assert [int(r["epoch"]) for r in epochs] == [1, 2] and "validation/ndcg@10" in epochs[0]
    steps = [json.loads(x) for x in (tmp_path / "run/logs/steps.jsonl").read_text().splitlines()]
    assert all("grad_norm" in s for s in steps)
    state = torch.load(tmp_path / "run/ckpt/last.pt", weights_only=False)
    assert state["epoch"] == 2 and "rng" in state and "optimizer" in state
    assert not list((tmp_path / "run/ckpt").glob("*.tmp"))
    metrics = trainer.evaluate("test")
    assert set(metrics) >= {"ndcg@1", "ndcg@5", "ndcg@10", "map", "mrr"}


def test_early_stopping_restores_best(tmp_path):
    seed_everything(0)
    model = MLPScorer(6, hidden=(8,), dropout=0.0)
    trainer = Trainer(model, LTRTask(_ltr(), batch_size=8), "ranknet", lr=0.5, optimizer="sgd",
                      epochs=30, early_stopping={"metric": "ndcg@10", "patience": 2},
                      progress=False)
    result = trainer.fit()
    assert result.stopped_early and result.epochs_run < 30
    assert result.best_value == pytest.approx(trainer.evaluate("validation")["ndcg@10"], abs=1e-6)
    with pytest.raises(KeyError, match="not among validation metrics"):
        Trainer(MLPScorer(6), LTRTask(_ltr()), "ranknet", epochs=1, progress=False,
                early_stopping=EarlyStopping("ndcg@3")).fit()


def test_learning_with_attention_and_amp(tmp_path):
    seed_everything(0)
    model = ListAttentionScorer(6, d_model=16, num_heads=2, num_layers=1, dim_feedforward=32)
    trainer = Trainer(model, LTRTask(_ltr(), batch_size=6), "approx_ndcg", epochs=6, lr=3e-3,
                      amp=True, progress=False)
    before = trainer.evaluate("test")["ndcg@10"]
    trainer.fit()
    assert trainer.evaluate("test")["ndcg@10"] > before


def _labelled():
    g = torch.Generator().manual_seed(0)
    centers = 3 * torch.randn(5, 8, generator=g)

    def split(n):
        y = torch.arange(n) % 5
        return LabelledSplit(centers[y] + torch.randn(n, 8, generator=g), y)

    return LabelledDataset(split(100), split(50), split(30))


class _CenterLoss(nn.Module):
    """A tiny embedding-form loss: pull each embedding to its class mean."""

    def forward(self, embeddings, labels):
        onehot = torch.nn.functional.one_hot(labels).float()
        means = (onehot.T @ embeddings) / onehot.sum(0).clamp_min(1).unsqueeze(1)
        return ((embeddings - means[labels]) ** 2).sum(-1).mean()


@pytest.mark.parametrize(("loss", "form"), [("softmax_ce", "auto"), (_CenterLoss(), "embedding")])
def test_embedding_task(loss, form):
    seed_everything(0)
    task = EmbeddingTask(_labelled(), batch_size=20, per_class=4, form=form)
    trainer = Trainer(EmbeddingMLP(8, 4, hidden=(16,)), task, loss, epochs=3, lr=1e-2,
                      progress=False)
    trainer.fit()
    metrics = trainer.evaluate("test")
    assert {"precision@1", "recall@10", "map@r", "r_precision"} <= set(metrics)
    assert metrics["precision@1"] > 0.5


def test_recsys_task():
    g = torch.Generator().manual_seed(0)
    users = torch.arange(30).repeat_interleave(6)
    items = (users % 5) * 4 + torch.randint(0, 4, (180,), generator=g)
    inter = Interactions(users, items, torch.full((180,), 5.0), torch.arange(180.0))
    data = split_interactions(inter, 30, 20, split="leave-last-out")
    seed_everything(0)
    trainer = Trainer(MatrixFactorization(30, 20, 8), RecsysTask(data, batch_size=8, positives=4,
                      negatives=8), "bpr", epochs=8, lr=0.05, progress=False)
    trainer.fit()
    metrics = trainer.evaluate("test")
    assert set(metrics) == {"recall@10", "ndcg@10", "hit@10"}
    assert metrics["recall@10"] > 0.6


def test_text_retrieval_task():
    words = ["red", "blue", "green", "wool", "silk", "denim", "long", "short"]
    frame = pd.DataFrame({
        "Title": [f"{a} {b}" for a in words for b in words],
        "Review Text": [f"it is {b} and {a}" for a in words for b in words],
        "Class Name": ["x"] * 64,
    })
    data = reviews_to_retrieval(frame, test_fraction=0.25, validation_fraction=0.0)

    def featurize(texts):
        return torch.tensor([[float(w in t.split()) for w in words] for t in texts])

    seed_everything(0)
    task = TextRetrievalTask(data, featurize, batch_size=16)
    trainer = Trainer(EmbeddingMLP(8, 8, hidden=(16,)), task, "softmax_ce", epochs=2,
                      validation_split=None, progress=False)
    trainer.fit()
    metrics = trainer.evaluate("test")
    assert {"mrr@10", "recall@1", "recall@10", "ndcg@10"} <= set(metrics)
    assert 0.0 <= metrics["recall@10"] <= 1.0


def test_loss_by_name_with_options_and_errors():
    trainer = Trainer(MLPScorer(6), LTRTask(_ltr()), "listnet", loss_options={"temperature": 2.0},
                      epochs=1, progress=False)
    assert trainer.loss.hyper == {"temperature": 2.0}
    with pytest.raises(KeyError):
        Trainer(MLPScorer(6), LTRTask(_ltr()), "no-such-loss")
    with pytest.raises(ValueError, match="unknown optimizer"):
        Trainer(MLPScorer(6), LTRTask(_ltr()), "listnet", optimizer="lbfgs2")

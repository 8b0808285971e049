"""The trainer: exact resume, logs, checkpoints, early stopping and the ready-made tasks."""

from __future__ import annotations

import csv
import json
import math

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
from rankloss.losses import get
from rankloss.models import EmbeddingMLP, ListAttentionScorer, MatrixFactorization, MLPScorer
from rankloss.train import (
    EarlyStopping,
    EmbeddingTask,
    LTRTask,
    RecsysTask,
    TextRetrievalTask,
    Trainer,
    check_loss_kind,
    loss_kind,
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
        model,
        LTRTask(_ltr(), batch_size=5, max_items=8),
        "listnet",
        epochs=epochs,
        seed=7,
        lr=1e-2,
        log_dir=tmp_path / name / "logs",
        checkpoint_dir=tmp_path / name / "ckpt",
        resume=resume,
        progress=False,
        **kwargs,
    )
    return trainer, trainer.fit()


def test_resume_equals_uninterrupted_run(tmp_path):
    full_trainer, full = _run(tmp_path, 4, name="full")
    _run(tmp_path, 2, name="split")  # "interrupted" after 2 epochs
    resumed_trainer, resumed = _run(tmp_path, 4, resume=True, name="split", model_seed=123)
    assert resumed.resumed_from == 2 and resumed.epochs_run == 4
    for a, b in zip(
        full_trainer.model.state_dict().values(), resumed_trainer.model.state_dict().values()
    ):
        assert torch.equal(a, b)
    assert [h["train_loss"] for h in full.history] == [h["train_loss"] for h in resumed.history]
    assert full_trainer.evaluate("test") == resumed_trainer.evaluate("test")
    steps = [json.loads(x) for x in (tmp_path / "split/logs/steps.jsonl").read_text().splitlines()]
    full_steps = (tmp_path / "full/logs/steps.jsonl").read_text().splitlines()
    assert len(steps) == len(full_steps) and [s["global_step"] for s in steps] == list(
        range(1, len(steps) + 1)
    )


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
    state = torch.load(tmp_path / "run/ckpt/last.pt", weights_only=True)
    assert state["epoch"] == 2 and "rng" in state and "optimizer" in state
    assert not list((tmp_path / "run/ckpt").glob("*.tmp"))
    metrics = trainer.evaluate("test")
    assert set(metrics) >= {"ndcg@1", "ndcg@5", "ndcg@10", "map", "mrr"}


def test_early_stopping_restores_best(tmp_path):
    seed_everything(0)
    model = MLPScorer(6, hidden=(8,), dropout=0.0)
    trainer = Trainer(
        model,
        LTRTask(_ltr(), batch_size=8),
        "ranknet",
        lr=0.5,
        optimizer="sgd",
        epochs=30,
        early_stopping={"metric": "ndcg@10", "patience": 2},
        progress=False,
    )
    result = trainer.fit()
    assert result.stopped_early and result.epochs_run < 30
    assert result.best_value == pytest.approx(trainer.evaluate("validation")["ndcg@10"], abs=1e-6)
    with pytest.raises(KeyError, match="not among validation metrics"):
        Trainer(
            MLPScorer(6),
            LTRTask(_ltr()),
            "ranknet",
            epochs=1,
            progress=False,
            early_stopping=EarlyStopping("ndcg@3"),
        ).fit()


def test_learning_with_attention_and_amp(tmp_path):
    seed_everything(0)
    model = ListAttentionScorer(6, d_model=16, num_heads=2, num_layers=1, dim_feedforward=32)
    trainer = Trainer(
        model,
        LTRTask(_ltr(), batch_size=6),
        "approx_ndcg",
        epochs=6,
        lr=3e-3,
        amp=True,
        progress=False,
    )
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
    trainer = Trainer(
        EmbeddingMLP(8, 4, hidden=(16,)), task, loss, epochs=3, lr=1e-2, progress=False
    )
    trainer.fit()
    metrics = trainer.evaluate("test")
    # The metric-learning hit rate is hit@k (rankloss.metrics); recall@k is a fraction.
    assert {"precision@1", "hit@1", "hit@10", "map@r", "r_precision"} <= set(metrics)
    assert "recall@10" not in metrics
    assert metrics["precision@1"] > 0.5


def test_combined_embedding_loss_trains_in_embedding_task():
    """Issue 10: a CombinedLoss of embedding losses failed with a pair_labels shape error."""
    loss = get("contrastive") + 0.5 * get("triplet")
    assert loss.kind == "embedding"
    seed_everything(0)
    task = EmbeddingTask(_labelled(), batch_size=20, per_class=4)
    trainer = Trainer(
        EmbeddingMLP(8, 4, hidden=(16,)), task, loss, epochs=1, lr=1e-2, progress=False
    )
    result = trainer.fit()
    assert result.epochs_run == 1 and math.isfinite(result.history[0]["train_loss"])
    assert result.history[0]["steps"] > 0
    assert 0.0 <= trainer.evaluate("test")["precision@1"] <= 1.0


def test_combined_list_loss_trains_in_ltr_task():
    loss = get("ranknet") + 0.5 * get("listnet", label_temperature=2.0)
    assert loss.kind == "list"
    seed_everything(0)
    trainer = Trainer(
        MLPScorer(6, hidden=(8,)),
        LTRTask(_ltr(), batch_size=8),
        loss,
        epochs=2,
        lr=1e-2,
        progress=False,
    )
    result = trainer.fit()
    assert result.epochs_run == 2 and all(math.isfinite(h["train_loss"]) for h in result.history)
    assert 0.0 <= trainer.evaluate("test")["ndcg@10"] <= 1.0


def test_list_loss_in_embedding_task_ranks_the_batch():
    seed_everything(0)
    task = EmbeddingTask(_labelled(), batch_size=20, per_class=4)
    seen = []

    def spy(scores, labels, mask):
        seen.append((scores.shape, labels.shape, mask.shape, bool(mask.diagonal().any())))
        return get("listnet")(scores, labels, mask)

    spy.kind = "list"  # a callable that says its kind is dispatched like a loss module
    trainer = Trainer(
        EmbeddingMLP(8, 4, hidden=(16,)), task, spy, epochs=1, progress=False, validation_split=None
    )
    trainer.fit()
    assert seen and seen[0] == ((20, 20), (20, 20), (20, 20), False)


@pytest.mark.parametrize(
    ("make_task", "loss", "message"),
    [
        (
            lambda: LTRTask(_ltr()),
            "triplet",
            r"LTRTask: the loss 'triplet' \(TripletLoss\) is of kind 'embedding'; this task "
            r"needs a loss of kind 'list'",
        ),
        (
            lambda: LTRTask(_ltr()),
            get("contrastive") + get("triplet"),
            r"LTRTask: the loss CombinedLoss\(1 \* contrastive \+ 1 \* triplet\) is of kind "
            r"'embedding'",
        ),
        (lambda: RecsysTask(_recsys()), "info_nce", r"RecsysTask: .*'info_nce'.*kind 'list'"),
        (
            lambda: EmbeddingTask(_labelled()),
            "gan_generator",
            r"EmbeddingTask\(form='auto'\): the loss 'gan_generator' \(GeneratorLoss\) is of "
            r"kind 'adversarial'; this task needs a loss of kind 'embedding' or 'list'",
        ),
        (
            lambda: EmbeddingTask(_labelled(), form="lists"),
            "triplet",
            r"EmbeddingTask\(form='lists'\): .* kind 'embedding'; .* kind 'list'",
        ),
        (
            lambda: EmbeddingTask(_labelled(), form="embedding"),
            "listnet",
            r"EmbeddingTask\(form='embedding'\): .*'listnet'.* kind 'list'; .* kind 'embedding'",
        ),
        (
            lambda: EmbeddingTask(_labelled()),
            _CenterLoss(),
            r"form='auto' needs a rankloss loss module.*_CenterLoss.*form='embedding'",
        ),
    ],
)
def test_a_loss_of_the_wrong_kind_fails_when_the_trainer_is_built(make_task, loss, message):
    with pytest.raises(TypeError, match=message):
        Trainer(EmbeddingMLP(8, 4), make_task(), loss, epochs=1, progress=False)
    task = make_task()
    module = get(loss) if isinstance(loss, str) else loss
    with pytest.raises(TypeError, match=message):  # and when a step is taken by hand
        task.training_step(nn.Identity(), next(iter(task.train_batches(torch.Generator()))), module)


def test_check_loss_kind_and_loss_kind():
    assert loss_kind(get("ranknet")) == "list" and loss_kind(get("supcon")) == "embedding"
    assert loss_kind(_CenterLoss()) is None
    assert check_loss_kind("mine", _CenterLoss(), ("list",)) is None
    with pytest.raises(TypeError, match="mine: the loss 'supcon'"):
        check_loss_kind("mine", get("supcon"), ("list",))
    with pytest.raises(ValueError, match="form must be 'auto', 'embedding' or 'lists'"):
        EmbeddingTask(_labelled(), form="pairs")


def _recsys():
    g = torch.Generator().manual_seed(0)
    users = torch.arange(30).repeat_interleave(6)
    items = (users % 5) * 4 + torch.randint(0, 4, (180,), generator=g)
    inter = Interactions(users, items, torch.full((180,), 5.0), torch.arange(180.0))
    return split_interactions(inter, 30, 20, split="leave-last-out")


def test_recsys_task():
    seed_everything(0)
    trainer = Trainer(
        MatrixFactorization(30, 20, 8),
        RecsysTask(_recsys(), batch_size=8, positives=4, negatives=8),
        "bpr",
        epochs=8,
        lr=0.05,
        progress=False,
    )
    trainer.fit()
    metrics = trainer.evaluate("test")
    # recall@k: the fraction of held-out items in the top k; hit@k: any of them (one held-out
    # item per user here, so the two agree).
    assert set(metrics) == {"recall@10", "ndcg@10", "hit@10"}
    assert metrics["recall@10"] > 0.6
    assert metrics["hit@10"] == pytest.approx(metrics["recall@10"])


def _reviews():
    words = ["red", "blue", "green", "wool", "silk", "denim", "long", "short"]
    frame = pd.DataFrame(
        {
            "Title": [f"{a} {b}" for a in words for b in words],
            "Review Text": [f"it is {b} and {a}" for a in words for b in words],
            "Class Name": ["x"] * 64,
        }
    )
    data = reviews_to_retrieval(frame, test_fraction=0.25, validation_fraction=0.0)

    def featurize(texts):
        return torch.tensor([[float(w in t.split()) for w in words] for t in texts])

    return data, featurize


@pytest.mark.parametrize("loss", ["softmax_ce", "info_nce", "triplet"])
def test_text_retrieval_task(loss):
    seed_everything(0)
    task = TextRetrievalTask(*_reviews(), batch_size=16)
    trainer = Trainer(
        EmbeddingMLP(8, 8, hidden=(16,)),
        task,
        loss,
        epochs=2,
        validation_split=None,
        progress=False,
    )
    result = trainer.fit()
    assert all(math.isfinite(h["train_loss"]) for h in result.history)
    metrics = trainer.evaluate("test")
    assert {"mrr@10", "recall@1", "recall@10", "ndcg@10"} <= set(metrics)
    assert 0.0 <= metrics["recall@10"] <= 1.0


def test_a_query_tower_trains_evaluates_in_eval_mode_and_is_checkpointed(tmp_path):
    seed_everything(0)
    query_model = EmbeddingMLP(8, 8, hidden=(16,), dropout=0.5)
    before = [p.detach().clone() for p in query_model.parameters()]
    task = TextRetrievalTask(*_reviews(), batch_size=16, query_model=query_model)
    trainer = Trainer(
        EmbeddingMLP(8, 8, hidden=(16,)),
        task,
        "info_nce",
        epochs=2,
        validation_split=None,
        progress=False,
        checkpoint_dir=tmp_path,
    )
    trainer.fit()
    assert any(not torch.equal(a, p) for a, p in zip(before, query_model.parameters()))
    # Dropout is off while evaluating: the same weights give the same metrics.
    first = trainer.evaluate("test")
    assert trainer.evaluate("test") == first and query_model.training
    # Its weights are in the checkpoint: a resumed trainer holds them.
    fresh = EmbeddingMLP(8, 8, hidden=(16,), dropout=0.5)
    Trainer(
        EmbeddingMLP(8, 8, hidden=(16,)),
        TextRetrievalTask(*_reviews(), batch_size=16, query_model=fresh),
        "info_nce",
        epochs=2,
        validation_split=None,
        progress=False,
        checkpoint_dir=tmp_path,
        resume=True,
    ).fit()
    for a, b in zip(query_model.state_dict().values(), fresh.state_dict().values()):
        torch.testing.assert_close(a, b)


def test_any_integer_seed_trains():
    for seed in (2**45, -(2**70), 2**70):
        Trainer(
            MLPScorer(6, hidden=(8,)),
            LTRTask(_ltr(), batch_size=8),
            "listnet",
            epochs=1,
            seed=seed,
            validation_split=None,
            progress=False,
        ).fit()
        seed_everything(seed)


def test_text_retrieval_calls_an_embedding_loss_with_keys():
    calls = []

    class Spy(nn.Module):
        kind = "embedding"

        def forward(self, queries, labels=None, *, keys=None):
            calls.append((queries.shape, labels, None if keys is None else keys.shape))
            return get("info_nce")(queries, labels, keys=keys)

    task = TextRetrievalTask(*_reviews(), batch_size=16)
    Trainer(
        EmbeddingMLP(8, 8, hidden=(16,)),
        task,
        Spy(),
        epochs=1,
        validation_split=None,
        progress=False,
    ).fit()
    shape, labels, keys = calls[0]
    assert shape == keys == (16, 8) and labels.dtype == torch.long and labels.shape == (16,)


def test_text_retrieval_passes_the_guide_similarity_to_a_guided_loss():
    data, featurize = _reviews()
    torch.manual_seed(0)
    guide = EmbeddingMLP(8, 4, hidden=(8,))
    seen = []

    class Spy(nn.Module):
        kind = "embedding"
        takes_guide_similarity = True

        def forward(self, queries, labels=None, *, keys=None, guide_similarity=None):
            seen.append(guide_similarity)
            return get("guided_info_nce")(
                queries, labels, keys=keys, guide_similarity=guide_similarity
            )

    task = TextRetrievalTask(data, featurize, batch_size=16, guide=guide)
    batch = next(task.train_batches(torch.Generator().manual_seed(0)))
    model = EmbeddingMLP(8, 8, hidden=(16,))
    loss = task.training_step(model, batch, Spy())
    assert torch.isfinite(loss)
    (g,) = seen
    # An independent computation: cosine of the guide's embeddings, query rows x document columns.
    with torch.no_grad():
        gq, gd = guide(batch.queries), guide(batch.documents)
    expected = torch.tensor(
        [[float(torch.nn.functional.cosine_similarity(a, b, dim=0)) for b in gd] for a in gq]
    )
    assert g.shape == (16, 16) and not g.requires_grad
    torch.testing.assert_close(g, expected, rtol=1e-5, atol=1e-6)


def test_text_retrieval_never_calls_the_guide_for_other_losses():
    class Exploding(nn.Module):
        def forward(self, x):
            raise AssertionError("the guide was called")

    data, featurize = _reviews()
    task = TextRetrievalTask(data, featurize, batch_size=16, guide=Exploding())
    batch = next(task.train_batches(torch.Generator().manual_seed(0)))
    assert torch.isfinite(task.training_step(EmbeddingMLP(8, 8), batch, get("info_nce")))


@pytest.mark.badinput("losses")
def test_text_retrieval_refuses_a_loss_without_keys_before_training():
    proxy = get("proxy_anchor", num_classes=4, embedding_size=8)
    with pytest.raises(TypeError, match="ProxyAnchorLoss takes no keys="):
        Trainer(EmbeddingMLP(8, 8), TextRetrievalTask(*_reviews()), proxy, progress=False)


@pytest.mark.badinput("data")
def test_text_retrieval_refuses_a_guide_that_is_no_module():
    with pytest.raises(TypeError, match="guide must be an nn.Module, got str"):
        TextRetrievalTask(*_reviews(), guide="all-MiniLM-L6-v2")


def test_loss_by_name_with_options_and_errors():
    trainer = Trainer(
        MLPScorer(6),
        LTRTask(_ltr()),
        "listnet",
        loss_options={"label_temperature": 2.0},
        epochs=1,
        progress=False,
    )
    assert trainer.loss.hyper_parameters() == {"label_temperature": 2.0, "reduction": "mean"}
    with pytest.raises(KeyError):
        Trainer(MLPScorer(6), LTRTask(_ltr()), "no-such-loss")
    # Hyper-parameters are checked when the trainer builds the loss, before any training.
    with pytest.raises(TypeError, match="unknown hyper-parameter 'temperature'"):
        Trainer(MLPScorer(6), LTRTask(_ltr()), "listnet", loss_options={"temperature": 2.0})
    with pytest.raises(ValueError, match="RankNetLoss: sigma must be"):
        Trainer(MLPScorer(6), LTRTask(_ltr()), "ranknet", loss_options={"sigma": -1.0})
    with pytest.raises(ValueError, match="unknown optimizer"):
        Trainer(MLPScorer(6), LTRTask(_ltr()), "listnet", optimizer="lbfgs2")


def _weights(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def test_moving_average_is_the_replayed_polyak_average(tmp_path):
    # No validation: after fit the model holds the average, which must equal the average
    # replayed from the raw weights after every optimizer step.
    decay = 0.8
    seed_everything(0)
    model = MLPScorer(6, hidden=(8,), dropout=0.0)
    start = _weights(model)
    trainer = Trainer(
        model,
        LTRTask(_ltr(), batch_size=5),
        "listnet",
        epochs=2,
        lr=1e-2,
        validation_split=None,
        progress=False,
        ema_decay=decay,
    )
    steps = []
    trainer.optimizer.register_step_post_hook(lambda *_: steps.append(_weights(model)))
    trainer.fit()
    assert len(steps) == trainer.global_step > 2
    expected = {k: v.clone() for k, v in start.items()}
    for raw in steps:
        for k in expected:
            expected[k] = decay * expected[k] + (1 - decay) * raw[k]
    for k, v in model.state_dict().items():
        torch.testing.assert_close(v, expected[k], rtol=1e-5, atol=1e-6)
    # ... and not the last raw weights.
    assert not torch.allclose(model.state_dict()["net.0.weight"], steps[-1]["net.0.weight"])


def test_moving_average_with_zero_decay_is_the_raw_run(tmp_path):
    _, raw = _run(tmp_path, 2, name="raw", early_stopping={"metric": "ndcg@10", "patience": 5})
    trainer, averaged = _run(
        tmp_path, 2, name="ema0", ema_decay=0.0, early_stopping={"metric": "ndcg@10", "patience": 5}
    )
    drop = lambda rows: [{k: v for k, v in r.items() if k != "seconds"} for r in rows]  # noqa: E731
    assert drop(averaged.history) == drop(raw.history)


def test_validation_and_best_weights_are_the_average(tmp_path):
    # A decay near 1 keeps the average at the initial weights: validation then scores the
    # untrained model, and the weights kept as the best are the initial ones.
    seed_everything(0)
    model = MLPScorer(6, hidden=(8,), dropout=0.0)
    start = _weights(model)
    task = LTRTask(_ltr(), batch_size=5)
    untrained = Trainer(model, task, "listnet", progress=False).evaluate("validation")
    trainer = Trainer(
        model,
        task,
        "listnet",
        epochs=2,
        lr=5e-2,
        progress=False,
        ema_decay=1.0 - 1e-12,
        early_stopping={"metric": "ndcg@10", "patience": 5},
    )
    result = trainer.fit()
    assert [h["validation/ndcg@10"] for h in result.history] == [untrained["ndcg@10"]] * 2
    for k, v in model.state_dict().items():
        torch.testing.assert_close(v, start[k], rtol=0, atol=1e-9)


def test_resume_with_moving_average_equals_uninterrupted_run(tmp_path):
    full_trainer, full = _run(tmp_path, 4, name="full", ema_decay=0.9)
    _run(tmp_path, 2, name="split", ema_decay=0.9)
    resumed_trainer, resumed = _run(
        tmp_path, 4, resume=True, name="split", model_seed=123, ema_decay=0.9
    )
    assert resumed.resumed_from == 2
    for k, v in full_trainer.model.state_dict().items():
        assert torch.equal(v, resumed_trainer.model.state_dict()[k])
    for k, v in full_trainer.ema_state.items():
        assert torch.equal(v, resumed_trainer.ema_state[k])
    drop = lambda rows: [{k: v for k, v in r.items() if k != "seconds"} for r in rows]  # noqa: E731
    assert drop(full.history) == drop(resumed.history)
    # A checkpoint without an average cannot continue one.
    _run(tmp_path, 1, name="plain")
    with pytest.raises(ValueError, match="written without ema_decay"):
        _run(tmp_path, 2, resume=True, name="plain", ema_decay=0.9)


@pytest.mark.badinput("train")
@pytest.mark.parametrize("decay", [1.0, -0.1, float("nan")])
def test_moving_average_decay_is_checked(decay):
    with pytest.raises(ValueError, match=r"Trainer: ema_decay must be"):
        Trainer(
            MLPScorer(6, hidden=(4,)), LTRTask(_ltr(), batch_size=5), "listnet", ema_decay=decay
        )

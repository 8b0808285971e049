"""Task runners of ``rankloss bench``: one function per suite task, one run each.

Every runner builds the data set, the model and a :class:`rankloss.train.Trainer` from the
suite's budget, so every loss of a suite sees the same model, data and budget, and differs
only in the loss. Data splits are fixed (data seed 0); the run's seed sets model
initialisation, batch order, sampling and augmentation. Each run trains with early stopping on
the suite's primary metric on a validation split, restores the best weights, and reports the
test metrics. Checkpoints go to the run's work folder, so an interrupted run resumes.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rankloss.bench.runner import RunContext, RunResult, SkipRun
from rankloss.bench.suites import SuiteSpec, build_row_loss

if TYPE_CHECKING:
    from rankloss.losses import CombinedLoss, Loss
    from rankloss.train import EmbeddingTask, RecsysTask, Trainer, TrainResult

LossFn = Callable[..., Tensor]

__all__ = ["TASKS", "resolve_dataset", "load_dataset"]


@functools.lru_cache(maxsize=8)
def load_dataset(name: str, **options: Any) -> Any:
    """``rankloss.data.load`` with a per-process cache (every run of a suite shares it)."""
    from rankloss import data

    return data.load(name, **options)


def resolve_dataset(suite: SuiteSpec) -> str:
    """The first of the suite's data set and its fallbacks that loads here."""
    errors = []
    for name in (suite.dataset, *suite.fallbacks):
        try:
            load_dataset(name)
            return name
        except Exception as error:  # noqa: BLE001 - every failure is reported below
            errors.append(f"{name}: {error}")
    raise RuntimeError(
        f"suite {suite.name!r}: no data set could be loaded:\n  " + "\n  ".join(errors)
    )


def _row_loss(ctx: RunContext) -> Loss | CombinedLoss:
    """The loss module of this run's row, built with its hyper-parameters."""
    loss = build_row_loss(ctx.suite.task, ctx.loss)
    if loss is None:
        raise ValueError(f"suite {ctx.suite.name!r}: row {ctx.loss.label!r} trains no loss")
    return loss


def _trainer(ctx: RunContext, model: nn.Module, task: Any, loss: Loss | CombinedLoss) -> Trainer:
    from rankloss.train import Trainer

    budget = ctx.suite.budget
    primary = ctx.suite.primary
    return Trainer(
        model,
        task,
        loss,
        lr=budget.get("lr", 1e-3),
        weight_decay=budget.get("weight_decay", 0.0),
        epochs=budget.get("epochs", 10),
        seed=ctx.seed,
        device=ctx.device,
        grad_clip=budget.get("grad_clip", 5.0),
        early_stopping={"metric": primary, "mode": "max", "patience": budget.get("patience", 5)},
        validation_split="validation",
        log_dir=ctx.workdir / "logs",
        checkpoint_dir=ctx.workdir / "checkpoint",
        resume=True,
        progress=False,
    )


def _history(result: TrainResult, primary: str) -> list[dict[str, float]]:
    rows = []
    for row in result.history:
        rows.append(
            {
                "epoch": row["epoch"],
                "train_loss": row["train_loss"],
                "validation": row.get(f"validation/{primary}", float("nan")),
            }
        )
    return rows


def _fit_and_test(ctx: RunContext, trainer: Trainer) -> RunResult:
    result = trainer.fit()
    metrics = trainer.evaluate("test")
    missing = [m for m in ctx.suite.metrics if m not in metrics]
    if missing:
        raise KeyError(
            f"suite {ctx.suite.name!r}: the task reports no {missing}; it reports {sorted(metrics)}"
        )
    notes = f"best epoch {result.best_epoch} of {result.epochs_run}"
    extra = {k: v for k, v in metrics.items() if k not in ctx.suite.metrics}
    return RunResult(
        {m: metrics[m] for m in ctx.suite.metrics},
        _history(result, ctx.suite.primary),
        notes,
        extra,
    )


# ============================================================================ learning to rank
def run_ltr(ctx: RunContext) -> RunResult:
    """MLP scorer on query lists; ``lightgbm`` rows train LightGBM's LambdaMART instead."""
    from rankloss.models import MLPScorer
    from rankloss.train.tasks import LTRTask

    data = load_dataset(ctx.dataset, normalize="standardize")
    task = LTRTask(
        data,
        batch_size=ctx.suite.budget.get("batch_size", 8),
        max_items=ctx.suite.budget.get("max_items"),
    )
    if ctx.loss.name == "lightgbm":
        return _run_lightgbm(ctx, data, task)
    torch.manual_seed(ctx.seed)
    model = MLPScorer(
        data.num_features,
        hidden=tuple(ctx.suite.model.get("hidden", (128, 64))),
        dropout=ctx.suite.model.get("dropout", 0.1),
    )
    return _fit_and_test(ctx, _trainer(ctx, model, task, _row_loss(ctx)))


class _PredictedScores(nn.Module):
    """Wraps a fitted LightGBM ranker as a ``(features, mask) -> scores`` model."""

    def __init__(self, booster: Any) -> None:
        super().__init__()
        self.booster = booster
        self.anchor = nn.Parameter(torch.zeros(()), requires_grad=False)

    def forward(self, features: Tensor, mask: Tensor) -> Tensor:
        flat = features[mask].cpu().numpy()
        scores = torch.zeros(mask.shape, dtype=torch.float32)
        scores[mask.cpu()] = torch.from_numpy(self.booster.predict(flat)).float()
        return scores.to(features.device)


def _run_lightgbm(ctx: RunContext, data: Any, task: Any) -> RunResult:
    try:
        import lightgbm
    except ImportError:
        if ctx.loss.options.get("optional"):
            raise SkipRun("lightgbm is not installed (pip install 'rankloss[lightgbm]')") from None
        raise
    train, validation = data.train, data.validation
    params = {
        "objective": "lambdarank",
        "n_estimators": 300,
        "learning_rate": 0.05,
        "num_leaves": 31,
        "min_child_samples": 10,
        "subsample": 0.8,
        "subsample_freq": 1,
        "colsample_bytree": 0.8,
        "random_state": ctx.seed,
        "n_jobs": torch.get_num_threads(),
        "verbose": -1,
        **ctx.loss.hyper,
    }
    ranker = lightgbm.LGBMRanker(**params)
    eval_x = validation.features[validation.mask].numpy()
    eval_y = validation.labels[validation.mask].long().numpy()
    # lightgbm >= 4.6 names the validation data eval_X / eval_y; older versions eval_set.
    evaluation: dict[str, Any]
    if "eval_X" in inspect.signature(ranker.fit).parameters:
        evaluation = {"eval_X": (eval_x,), "eval_y": (eval_y,)}
    else:
        evaluation = {"eval_set": [(eval_x, eval_y)]}
    ranker.fit(
        train.features[train.mask].numpy(),
        train.labels[train.mask].long().numpy(),
        group=train.mask.sum(-1).numpy(),
        eval_group=[validation.mask.sum(-1).numpy()],
        eval_at=[10],
        callbacks=[lightgbm.early_stopping(30, verbose=False)],
        **evaluation,
    )
    model = _PredictedScores(ranker)
    metrics = task.evaluate(model, "test")
    return RunResult(
        {m: metrics[m] for m in ctx.suite.metrics}, notes=f"best iteration {ranker.best_iteration_}"
    )


# ============================================================================ image retrieval
def _held_out_classes(data: Any, train_classes: int) -> Any:
    """Train on classes ``< train_classes``; test retrieval on the other classes."""
    from rankloss.data.types import LabelledDataset

    def keep(split: Any, seen: bool) -> Any:
        index = (split.y < train_classes) if seen else (split.y >= train_classes)
        return split.subset(torch.nonzero(index).flatten())

    return LabelledDataset(
        keep(data.train, True),
        keep(data.test, False),
        keep(data.validation, True),
        data.class_names,
        data.card,
    )


def _subsample(data: Any, limit: int | None) -> Any:
    """At most ``limit`` samples per split (a fixed, seeded choice), to bound the budget."""
    if not limit:
        return data
    from rankloss.data.types import LabelledDataset

    def cut(split: Any) -> Any:
        if split is None or len(split) <= limit:
            return split
        generator = torch.Generator().manual_seed(0)
        return split.subset(torch.randperm(len(split), generator=generator)[:limit].sort().values)

    return LabelledDataset(
        cut(data.train), cut(data.test), cut(data.validation), data.class_names, data.card
    )


def _image_model(ctx: RunContext, sample: Tensor) -> nn.Module:
    from rankloss.models import EmbeddingMLP, SmallCNN

    torch.manual_seed(ctx.seed)
    dim = ctx.suite.model.get("embedding_dim", 64)
    if ctx.suite.model.get("kind", "cnn") == "mlp" or sample.dim() == 2:
        return EmbeddingMLP(sample[0].numel(), dim, hidden=(256,))
    return SmallCNN(sample.shape[1], dim, width=ctx.suite.model.get("width", 32))


@dataclass
class _Views:
    view1: Tensor
    view2: Tensor


class _ViewsTask:
    """An embedding task whose batches are two augmented views of each image (SimCLR): the
    loss (kind ``"embedding"``) is called in its (queries, keys) form, ``loss(z1, keys=z2)``,
    each view's positive being the other view of its image."""

    def __init__(self, base: EmbeddingTask, seed: int) -> None:
        from rankloss.augment import TwoViews, simclr_image_pipeline

        self.base = base
        size = base.data.train.x.shape[-1]
        self.views = TwoViews(
            simclr_image_pipeline(
                size,
                crop_scale=(0.5, 1.0),
                flip=False,
                jitter=0.4,
                grayscale_p=0.0,
                blur_p=0.3,
                noise_std=0.05,
            ),
            seed=seed,
        )

    def check_loss(self, loss: LossFn) -> None:
        from rankloss.train import check_loss_kind

        check_loss_kind("retrieval (views)", loss, ("embedding",))

    def train_batches(self, generator: torch.Generator) -> Iterator[_Views]:
        for batch in self.base.train_batches(generator):
            view1, view2, _ = self.views(batch.x)
            yield _Views(view1, view2)

    def training_step(self, model: nn.Module, batch: _Views, loss: LossFn) -> Tensor:
        self.check_loss(loss)
        return loss(model(batch.view1).float(), keys=model(batch.view2).float())

    def evaluate(self, model: nn.Module, split: str) -> dict[str, float]:
        return self.base.evaluate(model, split)


def run_retrieval(ctx: RunContext) -> RunResult:
    """Embedding network on images, trained on some classes, evaluated on held-out ones.

    An embedding loss is called as ``loss(embeddings, labels)``, a list loss on the in-batch
    cosine similarities (see :class:`rankloss.train.EmbeddingTask`); a ``views`` row trains on
    two augmented views of each image instead of the labels.
    """
    from rankloss.train.tasks import EmbeddingTask

    budget = ctx.suite.budget
    data = _held_out_classes(load_dataset(ctx.dataset), budget.get("train_classes", 6))
    data = _subsample(data, budget.get("max_per_split"))
    base = EmbeddingTask(
        data,
        batch_size=budget.get("batch_size", 128),
        per_class=budget.get("m_per_class", 16),
        ks=(1, 10),
    )
    task: EmbeddingTask | _ViewsTask = (
        _ViewsTask(base, ctx.seed) if ctx.loss.options.get("views") else base
    )
    model = _image_model(ctx, data.train.x)
    return _fit_and_test(ctx, _trainer(ctx, model, task, _row_loss(ctx)))


# ============================================================================ imbalanced data
class _ImbalancedTask:
    """Classification on imbalanced data, by a linear head trained with a list loss on the
    one-hot labels (``classifier``: ``loss(logits, one_hot)``, e.g. cross-entropy) or by the
    nearest class centroid of the embeddings trained with an embedding loss
    (``loss(embeddings, labels)``)."""

    def __init__(
        self,
        data: Any,
        *,
        batch_size: int,
        sampler: str,
        minority: list[int],
        classifier: bool,
        num_classes: int,
    ) -> None:
        self.data, self.batch_size, self.sampler = data, batch_size, sampler
        self.minority, self.classifier, self.num_classes = minority, classifier, num_classes

    def check_loss(self, loss: LossFn) -> None:
        from rankloss.train import check_loss_kind

        check_loss_kind("imbalanced", loss, ("list",) if self.classifier else ("embedding",))

    def train_batches(self, generator: torch.Generator) -> Iterator[tuple[Tensor, Tensor]]:
        from rankloss.mining import ClassBalancedSampler

        train = self.data.train
        if self.sampler == "class_balanced":
            seed = int(torch.randint(2**31 - 1, (), generator=generator))
            batches = list(ClassBalancedSampler(train.y, self.batch_size, seed=seed))
        else:
            order = torch.randperm(len(train), generator=generator)
            batches = [
                order[i : i + self.batch_size].tolist()
                for i in range(0, len(order), self.batch_size)
            ]
        for index in batches:
            rows = torch.as_tensor(index)
            yield train.x[rows], train.y[rows]

    def training_step(self, model: nn.Module, batch: tuple[Tensor, Tensor], loss: LossFn) -> Tensor:
        self.check_loss(loss)
        x, y = batch
        outputs = model(x).float()
        if self.classifier:
            return loss(outputs, F.one_hot(y, self.num_classes).float())
        return loss(outputs, y)

    def _outputs(self, model: nn.Module, x: Tensor) -> Tensor:
        device = next(model.parameters()).device
        return torch.cat(
            [model(x[i : i + 512].to(device)).float().cpu() for i in range(0, len(x), 512)]
        )

    def evaluate(self, model: nn.Module, split: str) -> dict[str, float]:
        from rankloss.metrics import per_class_report

        data = self.data.split(split)
        outputs = self._outputs(model, data.x)
        if self.classifier:
            predictions = outputs.argmax(-1)
        else:
            train = self.data.train
            reference = F.normalize(self._outputs(model, train.x), dim=-1)
            centroids = torch.stack(
                [reference[train.y == c].mean(0) for c in range(self.num_classes)]
            )
            predictions = (F.normalize(outputs, dim=-1) @ F.normalize(centroids, dim=-1).T).argmax(
                -1
            )
        report = per_class_report(predictions, data.y, self.num_classes)
        recall, precision = report["recall"], report["precision"]
        assert isinstance(recall, Tensor) and isinstance(precision, Tensor)
        minority = torch.tensor(self.minority)
        per_class = {
            f"{name}/{c}": float(values[c])
            for name, values in (("recall", recall), ("precision", precision))
            for c in range(self.num_classes)
        }
        return {
            **per_class,
            "macro_recall": float(report["macro_recall"]),
            "macro_precision": float(report["macro_precision"]),
            "minority_recall": float(recall[minority].mean()),
            "minority_precision": float(precision[minority].mean()),
            "accuracy": float(report["accuracy"]),
        }


def run_imbalanced(ctx: RunContext) -> RunResult:
    """Minority classes cut to a fraction of their training samples (seeded, fixed)."""
    from rankloss.data import imbalanced
    from rankloss.models import EmbeddingMLP, SmallCNN

    budget = ctx.suite.budget
    minority = list(budget.get("minority", [5, 6, 7, 8, 9]))
    full = load_dataset(ctx.dataset)
    data = imbalanced(
        full, minority, budget.get("fraction", 0.05), seed=0, splits=("train", "validation")
    )
    num_classes = full.num_classes
    loss = _row_loss(ctx)
    classifier = loss.kind == "list"
    torch.manual_seed(ctx.seed)
    dim = num_classes if classifier else ctx.suite.model.get("embedding_dim", 64)
    if data.train.x.dim() == 4:
        model: nn.Module = SmallCNN(data.train.x.shape[1], dim, normalize=not classifier)
    else:
        model = EmbeddingMLP(data.train.x[0].numel(), dim, normalize=not classifier)
    task = _ImbalancedTask(
        data,
        batch_size=budget.get("batch_size", 64),
        sampler=ctx.loss.options.get("sampler", "uniform"),
        minority=minority,
        classifier=classifier,
        num_classes=num_classes,
    )
    return _fit_and_test(ctx, _trainer(ctx, model, task, loss))


# ============================================================================ recommendation
@dataclass
class _InBatch:
    users: Tensor
    items: Tensor
    labels: Tensor


class _InBatchTask:
    """One positive per user; the other users' positives in the batch are the negatives. The
    loss (kind ``"list"``) is called as ``loss(scores [B, B], labels [B, B])``."""

    def __init__(self, base: RecsysTask) -> None:
        self.base = base

    def check_loss(self, loss: LossFn) -> None:
        self.base.check_loss(loss)

    def train_batches(self, generator: torch.Generator) -> Iterator[_InBatch]:
        for batch in self.base.train_batches(generator):
            first = batch.items[:, 0]
            labels = self.base.train_gains[batch.users.unsqueeze(1), first.unsqueeze(0)]
            labels = torch.maximum(labels, torch.eye(len(first)))
            yield _InBatch(batch.users, first, labels)

    def training_step(self, model: nn.Module, batch: _InBatch, loss: LossFn) -> Tensor:
        self.check_loss(loss)
        factors: Any = model  # a MatrixFactorization
        scores = factors.user_vectors(batch.users) @ factors.item_vectors(batch.items).T
        scores = scores + factors.item_bias(batch.items).unsqueeze(0)
        return loss(scores.float(), batch.labels)

    def evaluate(self, model: nn.Module, split: str) -> dict[str, float]:
        return self.base.evaluate(model, split)


def run_recsys(ctx: RunContext) -> RunResult:
    """Matrix factorisation, leave-last-out, full-catalogue Recall@10 / NDCG@10.

    ``sampled_softmax`` rows train ``softmax_ce`` on the sampled lists, or with
    ``negatives = "in_batch"`` on the other users' positives of the batch.
    """
    from rankloss.models import MatrixFactorization
    from rankloss.train.tasks import RecsysTask

    budget = ctx.suite.budget
    data = load_dataset(ctx.dataset, split="leave-last-out")
    base = RecsysTask(
        data,
        batch_size=budget.get("batch_size", 512),
        positives=budget.get("positives", 1),
        negatives=budget.get("negatives", 20),
        lists_per_user=budget.get("lists_per_user", 1),
        ks=(10,),
    )
    task: RecsysTask | _InBatchTask = base
    if ctx.loss.name == "sampled_softmax" and ctx.loss.options.get("negatives") == "in_batch":
        task = _InBatchTask(base)
    torch.manual_seed(ctx.seed)
    model = MatrixFactorization(data.num_users, data.num_items, ctx.suite.model.get("dim", 64))
    return _fit_and_test(ctx, _trainer(ctx, model, task, _row_loss(ctx)))


# ============================================================================ text retrieval
def run_text(ctx: RunContext) -> RunResult:
    """Fine-tune the sentence encoder (optional ``text`` extra) on title -> review pairs.

    A ``zero_shot`` row evaluates the pre-trained encoder without training, as the reference
    every fine-tuning loss should beat.
    """
    from rankloss.train.tasks import TextRetrievalTask

    budget = ctx.suite.budget
    try:
        from rankloss.models import SentenceEncoder

        torch.manual_seed(ctx.seed)
        model = SentenceEncoder(max_length=budget.get("max_length", 64), trainable=True)
    except (ImportError, OSError, RuntimeError) as error:
        raise SkipRun(
            f"the sentence encoder is not available ({error}); pip install 'rankloss[text]'"
        ) from None
    data = load_dataset(ctx.dataset, max_pairs=budget.get("max_pairs", 2000))
    task = TextRetrievalTask(
        data, batch_size=budget.get("batch_size", 32), ks=(10,), eval_batch_size=128
    )
    if ctx.loss.name == "zero_shot":
        model.eval()
        with torch.no_grad():
            metrics = task.evaluate(model, "test")
        return RunResult({m: metrics[m] for m in ctx.suite.metrics}, notes="no training")
    return _fit_and_test(ctx, _trainer(ctx, model, task, _row_loss(ctx)))


TASKS: dict[str, Callable[[RunContext], RunResult]] = {
    "ltr": run_ltr,
    "retrieval": run_retrieval,
    "imbalanced": run_imbalanced,
    "recsys": run_recsys,
    "text": run_text,
}

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
import logging
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rankloss._core import params
from rankloss.bench.runner import RunContext, RunResult, SkipRun
from rankloss.bench.suites import (
    LIGHTGBM_DEFAULTS,
    RETRIEVAL_AUGMENT,
    SuiteSpec,
    build_row_loss,
    check_image_range,
    check_recsys_splits,
    check_retrieval_augment,
    check_retrieval_views,
    check_vector_augment,
    metric_cutoffs,
    recsys_data_options,
)

if TYPE_CHECKING:
    from rankloss.losses import CombinedLoss, Loss
    from rankloss.train import EmbeddingTask, RecsysTask, Trainer, TrainResult

LossFn = Callable[..., Tensor]

__all__ = ["TASKS", "resolve_dataset", "load_dataset"]


#: The users' data sets :func:`resolve_dataset` chose, by the label it returned for each.
_OWN_DATA: dict[str, str] = {}


@functools.lru_cache(maxsize=8)
def load_dataset(name: str, **options: Any) -> Any:
    """``rankloss.data.load`` with a per-process cache (every run of a suite shares it).

    ``name`` may also be a user's data set: a :meth:`rankloss.data.formats.DataSource.spec`
    (as a config's ``dataset = { path = ..., format = ... }`` becomes), or the label
    :func:`resolve_dataset` gave one (``"my.svmlight (svmlight, sha256 1a2b3c4d5e6f)"``). It
    loads through the content-hash cache, the task's ``options`` as defaults under the
    source's own.
    """
    from rankloss import data
    from rankloss.data.formats import DataSource

    spec = _OWN_DATA.get(name, name)
    if DataSource.is_spec(spec):
        return DataSource.from_spec(spec).load(**options)
    return data.load(name, **options)


def _own_data_options(name: str, keys: Any) -> dict[str, Any]:
    """The options among ``keys`` that a user's data set ``name`` sets itself (``{}`` for a
    registered data set)."""
    from rankloss.data.formats import DataSource

    spec = _OWN_DATA.get(name, name)
    if not DataSource.is_spec(spec):
        return {}
    return {k: v for k, v in DataSource.from_spec(spec).options.items() if k in keys}


def resolve_dataset(suite: SuiteSpec) -> str:
    """The first of the suite's data set and its fallbacks that loads here.

    A user's data set (a source spec) resolves to its label, which names the file and the
    first 12 hex digits of its SHA-256; that label is what the run records, the results'
    tables and the configuration hash carry, so a changed file makes new runs.
    """
    from rankloss.data.formats import DataSource

    if DataSource.is_spec(suite.dataset):
        label = DataSource.from_spec(suite.dataset).label()
        if _OWN_DATA.setdefault(label, suite.dataset) != suite.dataset:
            # the same file with other options: tell the two apart
            label = f"{label} #{SuiteSpec.config_hash({'spec': suite.dataset})[:6]}"
            _OWN_DATA[label] = suite.dataset
        return label
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


def _row_loss(ctx: RunContext, **facts: Any) -> Loss | CombinedLoss:
    """The loss module of this run's row, built with its hyper-parameters (and the task's
    ``facts`` where the loss needs them, see :func:`~rankloss.bench.suites.build_row_loss`)."""
    loss = build_row_loss(ctx.suite.task, ctx.loss, facts)
    if loss is None:
        raise ValueError(f"suite {ctx.suite.name!r}: row {ctx.loss.label!r} trains no loss")
    return loss


def _trainer(
    ctx: RunContext,
    model: nn.Module,
    task: Any,
    loss: Loss | CombinedLoss,
    optimizer: str | Callable[..., torch.optim.Optimizer] = "adam",
) -> Trainer:
    from rankloss.train import Trainer

    budget = ctx.suite.budget
    primary = ctx.suite.primary
    return Trainer(
        model,
        task,
        loss,
        optimizer=optimizer,
        lr=budget.get("lr", 1e-3),
        weight_decay=budget.get("weight_decay", 0.0),
        epochs=budget.get("epochs", 10),
        seed=ctx.seed,
        device=ctx.device,
        grad_clip=budget.get("grad_clip", 5.0),
        ema_decay=budget.get("ema_decay"),
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


def _earlier_seconds(fit: TrainResult) -> float:
    """The logged seconds of the epochs a resumed fit took from its checkpoint (0 when it did
    not resume): the time an interrupted process spent on the run."""
    if fit.resumed_from is None:
        return 0.0
    earlier = [row for row in fit.history if row["epoch"] <= fit.resumed_from]
    return float(sum(row.get("seconds", 0.0) for row in earlier))


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
    best = result.best_metrics
    validation = {
        m: best[f"validation/{m}"] for m in ctx.suite.metrics if f"validation/{m}" in best
    }
    return RunResult(
        {m: metrics[m] for m in ctx.suite.metrics},
        _history(result, ctx.suite.primary),
        notes,
        extra,
        validation,
        earlier_seconds=_earlier_seconds(result),
    )


# ============================================================================ learning to rank
def run_ltr(ctx: RunContext) -> RunResult:
    """MLP scorer on query lists; ``lightgbm`` rows train LightGBM's LambdaMART instead and
    ``random`` rows score documents at random (the floor every ranker must beat).

    Features: ``budget["feature_transform"]`` (default ``"log1p"``: signed ``log1p`` then
    per-feature standardisation fitted on the training split, see
    :class:`rankloss.train.LTRTask`), after an optional per-list normalisation
    ``budget["list_normalize"]`` (default none). ``budget["max_items"]`` caps training lists,
    keeping their relevant documents. A row's ``options["list_normalize"]`` and
    ``options["feature_transform"]`` replace the budget's for that row (the LightGBM rows
    normalise per list, which trees gain from, and skip the global transform, which is monotone
    in each feature and so changes nothing for a tree).
    """
    from rankloss.models import MLPScorer
    from rankloss.train.tasks import LTRTask

    budget = ctx.suite.budget
    normalize = ctx.loss.options.get("list_normalize", budget.get("list_normalize"))
    data = load_dataset(ctx.dataset, normalize=normalize)
    task = LTRTask(
        data,
        batch_size=budget.get("batch_size", 8),
        max_items=budget.get("max_items"),
        ks=metric_cutoffs(ctx.suite.metrics, (1, 5, 10)),
        feature_transform=ctx.loss.options.get(
            "feature_transform", budget.get("feature_transform", "log1p")
        ),
    )
    if ctx.loss.name == "lightgbm":
        return _run_lightgbm(ctx, task.data, task)
    if ctx.loss.name == "random":
        metrics = task.evaluate(_RandomScores(ctx.seed), "test")
        return RunResult({m: metrics[m] for m in ctx.suite.metrics}, notes="random scores")
    torch.manual_seed(ctx.seed)
    model = MLPScorer(
        data.num_features,
        hidden=tuple(ctx.suite.model.get("hidden", (128, 64))),
        dropout=ctx.suite.model.get("dropout", 0.1),
    )
    return _fit_and_test(ctx, _trainer(ctx, model, task, _row_loss(ctx)))


class _RandomScores(nn.Module):
    """Scores every document with a seeded uniform random number: a ranking by chance."""

    def __init__(self, seed: int) -> None:
        super().__init__()
        self.generator = torch.Generator().manual_seed(seed)
        self.anchor = nn.Parameter(torch.zeros(()), requires_grad=False)

    def forward(self, features: Tensor, mask: Tensor) -> Tensor:
        return torch.rand(mask.shape, generator=self.generator).to(features.device)


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
        **LIGHTGBM_DEFAULTS,
        "random_state": ctx.seed,
        "n_jobs": torch.get_num_threads(),
        "verbose": -1,
        **ctx.loss.hyper,
    }
    rounds = int(params.pop("early_stopping_rounds"))
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
        callbacks=[lightgbm.early_stopping(rounds, verbose=False)],
        **evaluation,
    )
    model = _PredictedScores(ranker)
    metrics = task.evaluate(model, "test")
    validation = task.evaluate(model, "validation")
    return RunResult(
        {m: metrics[m] for m in ctx.suite.metrics},
        notes=f"best iteration {ranker.best_iteration_}",
        validation={m: validation[m] for m in ctx.suite.metrics},
    )


# ============================================================================ image retrieval
#: Rows of a retrieval suite that train nothing: the input pixels (cosine) and the network at
#: its seeded initialisation, measured on the same test classes as every trained row.
RETRIEVAL_BASELINES = ("raw", "untrained")
#: Model kinds of the retrieval task (``model.kind``).
_IMAGE_MODELS = ("conv", "cnn", "mlp")


def _held_out_classes(data: Any, train_classes: int, folds: int = 3, fold: int = 0) -> Any:
    """Class-disjoint train, validation and test splits (Musgrave et al. 2020, "A Metric
    Learning Reality Check").

    The classes ``>= train_classes`` are the test classes: the test split is their samples of
    the data set's test split. With ``folds >= 2`` the classes ``< train_classes`` are cut into
    ``folds`` folds of consecutive classes (``torch.tensor_split``; ``folds <= train_classes //
    2``, so every fold has two classes or more); fold ``fold`` holds the validation classes,
    whose samples of the data set's train and validation splits are the validation split; the
    samples of the other folds' classes in those two splits are the train split. No class is in
    two splits, so early stopping on the validation split never sees a training or a test
    class. ``folds = 1`` is the protocol without validation classes: the train and validation
    splits are the data set's, cut to the training classes.
    """
    from rankloss.data.types import LabelledDataset, LabelledSplit

    where = "retrieval: budget"
    params.positive_int(where, "train_classes", train_classes)
    params.positive_int(where, "folds", folds)
    if folds == 1:

        def seen_classes(split: Any) -> Any:
            return split.subset(torch.nonzero(split.y < train_classes).flatten())

        return LabelledDataset(
            seen_classes(data.train),
            data.test.subset(torch.nonzero(data.test.y >= train_classes).flatten()),
            None if data.validation is None else seen_classes(data.validation),
            data.class_names,
            data.card,
        )
    if folds > train_classes // 2:
        raise ValueError(
            f"{where}: folds must be 1 (no validation classes) or from 2 to train_classes // 2 "
            f"({train_classes // 2}; a validation fold of one class has nothing to rank "
            f"against), got {folds}"
        )
    params.nonnegative_int(where, "fold", fold)
    if fold >= folds:
        raise ValueError(f"{where}: fold must be < folds ({folds}), got {fold}")
    validation_classes = torch.arange(train_classes).tensor_split(folds)[fold]
    seen = [s for s in (data.train, data.validation) if s is not None]
    pooled = LabelledSplit(torch.cat([s.x for s in seen]), torch.cat([s.y for s in seen]))
    is_validation = torch.isin(pooled.y, validation_classes)
    is_train = (pooled.y < train_classes) & ~is_validation
    test = data.test.subset(torch.nonzero(data.test.y >= train_classes).flatten())
    return LabelledDataset(
        pooled.subset(torch.nonzero(is_train).flatten()),
        test,
        pooled.subset(torch.nonzero(is_validation).flatten()),
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
    """The suite's embedding network (``model.kind``), seeded with the run's seed:
    ``"conv"`` (:class:`~rankloss.models.ConvEmbedding`: the flattened conv map and a
    projection head of ``model.head`` hidden sizes), ``"cnn"``
    (:class:`~rankloss.models.SmallCNN`, global average pooling) or ``"mlp"``
    (:class:`~rankloss.models.EmbeddingMLP`, also for flat ``[N, f]`` inputs)."""
    from rankloss.models import ConvEmbedding, EmbeddingMLP, SmallCNN

    kind = ctx.suite.model.get("kind", "cnn")
    params.choice("retrieval: model", "kind", kind, _IMAGE_MODELS)
    torch.manual_seed(ctx.seed)
    dim = ctx.suite.model.get("embedding_dim", 64)
    width = ctx.suite.model.get("width", 32)
    if kind == "mlp" or sample.dim() == 2:
        return EmbeddingMLP(sample[0].numel(), dim, hidden=(256,))
    if kind == "conv":
        size = (int(sample.shape[-2]), int(sample.shape[-1]))
        head = tuple(ctx.suite.model.get("head", (128,)))
        return ConvEmbedding(sample.shape[1], size, dim, width, head=head)
    return SmallCNN(sample.shape[1], dim, width=width)


def _image_views(size: tuple[int, int], settings: dict[str, Any]) -> Any:
    """The retrieval task's augmentation (``views`` rows and ``augment``): a
    :func:`rankloss.augment.simclr_image_pipeline` with ``settings`` (see
    :data:`~rankloss.bench.suites.RETRIEVAL_AUGMENT`); its crops keep the images' ``size``
    ``(H, W)``."""
    from rankloss.augment import simclr_image_pipeline

    return simclr_image_pipeline(size, **settings)


def _vector_views() -> Any:
    """The retrieval task's augmentation of feature vectors ``[N, f]`` (a ``vectors`` file
    without a ``shape``): each entry zeroed with probability 0.1, then Gaussian noise of 0.1
    times each feature's standard deviation over the batch (a corruption in the spirit of
    SCARF, Bahri et al. 2022)."""
    from rankloss.augment import Compose, FeatureDropout, FeatureNoise

    return Compose([FeatureDropout(0.1), FeatureNoise(0.1)])


@dataclass
class _Views:
    view1: Tensor
    view2: Tensor


class _Features(nn.Module):
    """``model.features`` as a model: the representation under the projection head."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: Tensor) -> Tensor:
        features: Any = self.model.features
        return features(x)


class _ImageTask:
    """The retrieval task around an :class:`~rankloss.train.EmbeddingTask` ``base``.

    Training, by ``views`` (:data:`~rankloss.bench.suites.RETRIEVAL_VIEWS`):

    * ``True``: two augmented views of each image (SimCLR), the loss (kind ``"embedding"``)
      called as ``loss(z1, keys=z2)``, each view's positive being the other view of its image;
    * ``"labelled"``: two augmented views of each image of the labelled batch, concatenated,
      with the labels repeated (SupCon's recipe, Khosla et al. 2020): the ``2B`` views go
      through ``base`` as one labelled batch, so an embedding loss is called as
      ``loss(cat([z1, z2]), cat([y, y]))`` (a list loss ranks the other ``2B - 1`` views), and
      an image's other view and every view of its class are positives. Cost: two views per
      image, twice the forward and backward of a labelled batch, and an embedding loss's cost
      at ``2B`` (:math:`O(4 B^2 d)` for the pairwise similarities);
    * ``False``: the labelled batches of ``base`` (an embedding loss as
      ``loss(embeddings, labels)``, a list loss on the in-batch similarities), each image
      replaced by one random view of it when ``augment`` is not ``None``.

    ``augment`` holds the image pipeline's settings (checked by
    :func:`~rankloss.bench.suites.check_retrieval_augment`; ``None``: labelled batches are not
    augmented, and views rows use :data:`~rankloss.bench.suites.RETRIEVAL_AUGMENT`). Flat
    vectors ``[N, f]`` are augmented by :func:`_vector_views` instead (the settings are for
    images; a table of them is refused for vectors by
    :func:`~rankloss.bench.suites.check_vector_augment` before training).

    The views of an epoch come from a generator seeded by that epoch's generator, so a resumed
    run sees the same views. Evaluation ranks by ``model.features`` (the representation under
    the projection head) when ``features``, else by the model's output.
    """

    def __init__(
        self,
        base: EmbeddingTask,
        *,
        views: bool | str,
        augment: dict[str, Any] | None,
        features: bool,
    ) -> None:
        self.views = check_retrieval_views("retrieval: options", views)
        self.base, self.augment, self.features = base, augment is not None, features
        x = base.data.train.x
        if x.dim() == 4:
            if augment is not None or self.views:
                check_image_range("retrieval", x)
            settings = RETRIEVAL_AUGMENT if augment is None else augment
            self.transform = _image_views((int(x.shape[-2]), int(x.shape[-1])), dict(settings))
        else:
            self.transform = _vector_views()

    def check_loss(self, loss: LossFn) -> None:
        from rankloss.train import check_loss_kind

        if self.views is True:
            check_loss_kind("retrieval (views)", loss, ("embedding",))
        else:
            self.base.check_loss(loss)

    def train_batches(self, generator: torch.Generator) -> Iterator[Any]:
        seed = int(torch.randint(2**31 - 1, (), generator=generator))
        views = torch.Generator().manual_seed(seed)
        for batch in self.base.train_batches(generator):
            if self.views is True:
                yield _Views(
                    self.transform(batch.x, generator=views),
                    self.transform(batch.x, generator=views),
                )
            elif self.views == "labelled":
                first = self.transform(batch.x, generator=views)
                second = self.transform(batch.x, generator=views)
                yield replace(batch, x=torch.cat([first, second]), y=torch.cat([batch.y, batch.y]))
            elif self.augment:
                yield replace(batch, x=self.transform(batch.x, generator=views))
            else:
                yield batch

    def training_step(self, model: nn.Module, batch: Any, loss: LossFn) -> Tensor:
        if self.views is not True:
            return self.base.training_step(model, batch, loss)
        self.check_loss(loss)
        return loss(model(batch.view1).float(), keys=model(batch.view2).float())

    def evaluate(self, model: nn.Module, split: str) -> dict[str, float]:
        return self.base.evaluate(_Features(model) if self.features else model, split)


def _retrieval_columns(
    ctx: RunContext, test: dict[str, float], validation: dict[str, float]
) -> RunResult:
    """The suite's columns (``validation/<metric>`` from the validation classes, the others
    from the test classes); the other test metrics go to ``extra_metrics``, every validation
    metric to ``validation``."""
    both = {**test, **{f"validation/{k}": v for k, v in validation.items()}}
    missing = [m for m in ctx.suite.metrics if m not in both]
    if missing:
        raise KeyError(
            f"suite {ctx.suite.name!r}: the task reports no {missing}; it reports {sorted(both)}"
        )
    extra = {k: v for k, v in test.items() if k not in ctx.suite.metrics}
    return RunResult(
        {m: both[m] for m in ctx.suite.metrics}, extra_metrics=extra, validation=dict(validation)
    )


def _run_retrieval_baseline(ctx: RunContext, task: _ImageTask, sample: Tensor) -> RunResult:
    """``raw``: the input pixels, flattened, ranked by cosine similarity; ``untrained``: the
    suite's network at its seeded initialisation (eval mode), evaluated as a trained one is.
    Nothing is trained."""
    evaluate: Callable[[nn.Module, str], dict[str, float]] = task.evaluate
    if ctx.loss.name == "raw":
        model: nn.Module = nn.Flatten()
        evaluate = task.base.evaluate
    else:
        model = _image_model(ctx, sample)
    model.eval()
    with torch.no_grad():
        result = _retrieval_columns(ctx, evaluate(model, "test"), evaluate(model, "validation"))
    result.notes = "no training"
    return result


#: The proxies' learning rate, as a multiple of the model's (docs/proxy_losses.md: 10 to 100
#: times the model's with Adam, and no weight decay on them).
PROXY_LR_SCALE = 10.0


def _proxy_optimizer(
    loss: nn.Module, budget: dict[str, Any]
) -> str | Callable[..., torch.optim.Optimizer]:
    """Adam; a loss's proxies (parameters named ``proxies``) in a group of their own, with
    :data:`PROXY_LR_SCALE` times the budget's learning rate and no weight decay."""
    proxies = {id(p) for name, p in loss.named_parameters() if name.split(".")[-1] == "proxies"}
    if not proxies:
        return "adam"
    lr = budget.get("lr", 1e-3)

    def make(parameters: Any) -> torch.optim.Optimizer:
        parameters = list(parameters)
        return torch.optim.Adam(
            [
                {"params": [p for p in parameters if id(p) not in proxies]},
                {
                    "params": [p for p in parameters if id(p) in proxies],
                    "lr": PROXY_LR_SCALE * lr,
                    "weight_decay": 0.0,
                },
            ],
            lr=lr,
            weight_decay=budget.get("weight_decay", 0.0),
        )

    return make


def _output_size(model: nn.Module, sample: Tensor) -> int:
    """The size of the model's output for one ``sample`` image (run in eval mode)."""
    training = model.training
    model.eval()
    with torch.no_grad():
        size = int(model(sample[:1]).shape[-1])
    model.train(training)
    return size


def run_retrieval(ctx: RunContext) -> RunResult:
    """Embedding network on images, on class-disjoint train, validation and test classes.

    The protocol of Musgrave et al. (2020): the test classes (``>= train_classes``) are held
    out; the training classes are cut into ``folds`` folds of classes and the run's seed picks
    the validation fold (``seed % folds``, so seeds 0, 1, 2 with 3 folds cover every fold once),
    whose classes are neither trained on nor tested. Early stopping and the choice of the best
    epoch read the validation classes' ``map@r``; the columns give the test classes' metrics
    and ``validation/map@r``.

    An embedding loss is called as ``loss(embeddings, labels)``, a list loss on the in-batch
    cosine similarities (see :class:`rankloss.train.EmbeddingTask`); with ``augment`` (``true``
    or a table of the pipeline's settings, see
    :func:`~rankloss.bench.suites.check_retrieval_augment`) every training image is a random
    view of itself; a ``views = true`` row trains on two augmented
    views of each image instead of the labels, a ``views = "labelled"`` row on both views with
    the labels repeated (see :class:`_ImageTask`). With ``model.retrieve = "features"``
    retrieval ranks by the representation under the projection head
    (:meth:`rankloss.models.ConvEmbedding.features`).
    The ``raw`` and ``untrained`` rows train nothing. A proxy loss is built with
    ``num_classes`` = the number of training classes (relabelled ``0, ..., C - 1``) and
    ``embedding_size`` = the model's output size; its proxies learn at
    :data:`PROXY_LR_SCALE` times the learning rate, without weight decay.
    """
    from rankloss.train.tasks import EmbeddingTask

    budget, model_settings = ctx.suite.budget, ctx.suite.model
    train_classes = budget.get("train_classes", 6)
    params.positive_int("retrieval: budget", "train_classes", train_classes)
    requested = params.positive_int("retrieval: budget", "folds", budget.get("folds", 3))
    # fewer than two folds of two classes (a user's data set of few classes): no validation
    # classes; the notes say so
    folds = min(requested, train_classes // 2) if train_classes // 2 >= 2 else 1
    data = _held_out_classes(load_dataset(ctx.dataset), train_classes, folds, ctx.seed % folds)
    data = _subsample(data, budget.get("max_per_split"))
    if data.train.x.dim() != 4:
        check_vector_augment("retrieval: budget", budget.get("augment", False), data.train.x.shape)
    # The training classes relabelled 0..C-1 in their order: samplers and the losses that
    # compare labels see the same batches, and a proxy loss indexes its C proxies with them.
    classes, train_labels = torch.unique(data.train.y, return_inverse=True)
    data = replace(data, train=replace(data.train, y=train_labels))
    retrieve = model_settings.get("retrieve", "embeddings")
    params.choice("retrieval: model", "retrieve", retrieve, ("embeddings", "features"))
    if retrieve == "features" and model_settings.get("kind", "cnn") != "conv":
        raise ValueError('retrieval: model: retrieve = "features" needs kind = "conv"')
    task = _ImageTask(
        EmbeddingTask(
            data,
            batch_size=budget.get("batch_size", 128),
            per_class=budget.get("m_per_class", 16),
            ks=metric_cutoffs(ctx.suite.metrics, (1, 10)),
        ),
        views=ctx.loss.options.get("views", False),
        augment=check_retrieval_augment("retrieval: budget", budget.get("augment", False)),
        features=retrieve == "features" and data.train.x.dim() == 4,  # a ConvEmbedding
    )
    if ctx.loss.name in RETRIEVAL_BASELINES:
        return _run_retrieval_baseline(ctx, task, data.train.x)
    model = _image_model(ctx, data.train.x)
    loss = _row_loss(
        ctx, num_classes=len(classes), embedding_size=_output_size(model, data.train.x)
    )
    trainer = _trainer(ctx, model, task, loss, _proxy_optimizer(loss, budget))
    fit = trainer.fit()
    result = _retrieval_columns(ctx, trainer.evaluate("test"), trainer.evaluate("validation"))
    result.history = _history(fit, ctx.suite.primary)
    result.earlier_seconds = _earlier_seconds(fit)
    result.notes = f"best epoch {fit.best_epoch} of {fit.epochs_run}; " + _validation_note(
        data, requested, folds
    )
    return result


def _validation_note(data: Any, requested: int, folds: int) -> str:
    if folds == 1 and requested == 1:
        return "no validation classes (folds = 1: early stopping on the training classes)"
    if folds == 1:
        return f"no validation classes (folds {requested} -> 1: too few training classes)"
    classes = sorted(set(data.validation.y.tolist()))
    changed = f" (folds {requested} -> {folds})" if folds != requested else ""
    return f"validation classes {classes}{changed}"


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
            # A class without training samples has no centroid: it is never predicted (its
            # mean would be NaN, and arg-max picks NaN).
            seen = torch.bincount(train.y, minlength=self.num_classes) > 0
            centroids = torch.stack(
                [
                    reference[train.y == c].mean(0)
                    if seen[c]
                    else reference.new_zeros(reference.shape[1])
                    for c in range(self.num_classes)
                ]
            )
            similarity = F.normalize(outputs, dim=-1) @ F.normalize(centroids, dim=-1).T
            predictions = similarity.masked_fill(~seen, -torch.inf).argmax(-1)
        report = per_class_report(predictions, data.y, self.num_classes)
        recall, precision = report["recall"], report["precision"]
        support, confusion = report["support"], report["confusion"]
        assert isinstance(recall, Tensor) and isinstance(precision, Tensor)
        assert isinstance(support, Tensor) and isinstance(confusion, Tensor)
        # Minority classes that occur in the split's targets or predictions, the classes
        # the macro averages are over (a class absent from both has no recall to average).
        present = (support > 0) | (confusion.sum(0) > 0)
        minority = torch.tensor(self.minority)
        minority = minority[present[minority]]
        per_class = {
            f"{name}/{c}": float(values[c])
            for name, values in (("recall", recall), ("precision", precision))
            for c in range(self.num_classes)
        }
        return {
            **per_class,
            "macro_recall": float(report["macro_recall"]),
            "macro_precision": float(report["macro_precision"]),
            "minority_recall": float(recall[minority].mean()) if len(minority) else math.nan,
            "minority_precision": float(precision[minority].mean()) if len(minority) else math.nan,
            "accuracy": float(report["accuracy"]),
        }


def run_imbalanced(ctx: RunContext) -> RunResult:
    """Minority classes cut to a fraction of their training samples (seeded, fixed)."""
    from rankloss.data import imbalanced
    from rankloss.models import EmbeddingMLP, SmallCNN

    budget = ctx.suite.budget
    minority = list(budget.get("minority", [5, 6, 7, 8, 9]))
    full = load_dataset(ctx.dataset)
    # Class indices of the data: ints (not bool, not 1.5) in range.
    if not minority or not all(type(c) is int and 0 <= c < full.num_classes for c in minority):
        raise ValueError(
            f"suite {ctx.suite.name!r}: budget: minority must be a non-empty list of class "
            f"indices in [0, {full.num_classes}) of data set {ctx.dataset!r}, got {minority}"
        )
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


class _RecsysVariant:
    """A :class:`~rankloss.train.tasks.RecsysTask` trained on other lists: the same batches of
    users and their drawn positives, the same loss check and evaluation; subclasses write
    ``training_step`` (and may reshape the batches)."""

    def __init__(self, base: RecsysTask) -> None:
        self.base = base

    def check_loss(self, loss: LossFn) -> None:
        self.base.check_loss(loss)

    def train_batches(self, generator: torch.Generator) -> Iterator[Any]:
        return self.base.train_batches(generator)

    def evaluate(self, model: nn.Module, split: str) -> dict[str, float]:
        return self.base.evaluate(model, split)


class _InBatchTask(_RecsysVariant):
    """One positive per user; the other users' positives in the batch are the negatives. The
    loss (kind ``"list"``) is called as ``loss(scores [B, B] / T, labels [B, B])`` with the
    base task's ``temperature`` ``T``; with ``log_q``, as ``loss(..., log_q=log_q [B, B])``,
    the log probability that each column's item is a batch positive (see
    :func:`_positive_log_probability`)."""

    def __init__(self, base: RecsysTask, *, log_q: bool = False) -> None:
        super().__init__(base)
        self.log_q = _positive_log_probability(base) if log_q else None

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
        if self.log_q is None:
            return loss(scores.float() / self.base.temperature, batch.labels)
        log_q = self.log_q.to(scores.device)[batch.items].unsqueeze(0).expand_as(scores)
        return loss(scores.float() / self.base.temperature, batch.labels, log_q=log_q)


class _FullCatalogueTask(_RecsysVariant):
    """:class:`~rankloss.train.tasks.RecsysTask` with the whole catalogue as each user's list
    (full softmax): the list of user :math:`u` is every item, labelled with the gains of the
    training positives drawn for this step and 0 elsewhere, with the user's *other* training
    items masked out (they are neither the target nor a negative). The loss is called as
    ``loss(full_scores(u) / T [B, I], labels [B, I], mask [B, I])``.

    Cost: :math:`O(B I d)` per step for ``I`` items, against :math:`O(B (p + k) d)` for ``k``
    sampled negatives; exact, with no sampling bias to correct.
    """

    def training_step(self, model: nn.Module, batch: Any, loss: LossFn) -> Tensor:
        self.check_loss(loss)
        p = self.base.positives
        factors: Any = model  # a MatrixFactorization (or its cosine form)
        scores = factors.full_scores(batch.users).float() / self.base.temperature
        positives, chosen = batch.items[:, :p], batch.mask[:, :p]
        gains = torch.where(chosen, batch.labels[:, :p], torch.zeros_like(batch.labels[:, :p]))
        labels = torch.zeros_like(scores).scatter_reduce_(1, positives, gains, reduce="amax")
        target = torch.zeros_like(scores, dtype=torch.bool)
        target = target.scatter_reduce_(1, positives, chosen, reduce="amax")
        seen = self.base.train_gains.to(scores.device)[batch.users] != 0
        return loss(scores, labels, target | ~seen)


def _positive_log_probability(base: RecsysTask) -> Tensor:
    r"""``[num_items]`` log probability that a batch positive of :class:`_InBatchTask` is each
    item: a user drawn uniformly among those with training items, then one of their training
    items uniformly, :math:`Q_i = \frac{1}{|U|} \sum_{u \ni i} 1 / |I_u|` (``-inf`` for an
    item no user has, which is never in a batch)."""
    counts = torch.zeros(base.data.num_items, dtype=torch.float64)
    for user in base.users.tolist():
        items = base.user_items[user]
        counts.index_add_(0, items, torch.full((len(items),), 1.0 / len(items), dtype=counts.dtype))
    return (counts / len(base.users)).log().float()


class _CosineScores(nn.Module):
    """A matrix factorisation scored by the cosine of its user and item vectors (no item
    bias), for losses that expect cosine scores (``ccl``), in training and evaluation."""

    def __init__(self, factors: nn.Module) -> None:
        super().__init__()
        self.factors: Any = factors

    def user_vectors(self, users: Tensor) -> Tensor:
        return F.normalize(self.factors.user_vectors(users), dim=-1)

    def item_vectors(self, items: Tensor) -> Tensor:
        return F.normalize(self.factors.item_vectors(items), dim=-1)

    def item_bias(self, items: Tensor) -> Tensor:
        return torch.zeros(items.shape, device=items.device)

    def forward(self, users: Tensor, items: Tensor) -> Tensor:
        u, v = self.user_vectors(users), self.item_vectors(items)
        if items.dim() == users.dim() + 1:
            u = u.unsqueeze(-2)
        return (u * v).sum(-1)

    def full_scores(self, users: Tensor) -> Tensor:
        items = torch.arange(self.factors.num_items, device=users.device)
        return self.user_vectors(users) @ self.item_vectors(items).T


class _Popularity(nn.Module):
    """Scores every item by its number of training interactions, the same for every user."""

    def __init__(self, counts: Tensor) -> None:
        super().__init__()
        self.counts: Tensor
        self.register_buffer("counts", counts.float())
        self.anchor = nn.Parameter(torch.zeros(()), requires_grad=False)

    def full_scores(self, users: Tensor) -> Tensor:
        return self.counts.to(users.device).unsqueeze(0).expand(len(users), -1)


def _recsys_option(ctx: RunContext, name: str, default: Any) -> Any:
    """A row's option, else the suite budget's value, else ``default``."""
    return ctx.loss.options.get(name, ctx.suite.budget.get(name, default))


#: (suite, data description) pairs already logged in this process.
_LOGGED_DATA: set[tuple[str, str]] = set()


def run_recsys(ctx: RunContext) -> RunResult:
    """Matrix factorisation, full-catalogue Recall@10 / NDCG@10 (seen items excluded).

    Data: implicit feedback, an interaction for every rating ``>= budget["rating_threshold"]``
    (default 4), split by ``budget["split"]`` (``"ratio"``: per user at random, by the budget's
    ``test_fraction`` and ``validation_fraction``, 0.1 and 0.1 in the ``recsys`` suite:
    RecBole's 8:1:1; default ``"leave-last-out"``); the threshold, split and interaction counts
    are written in the run's notes (:func:`~rankloss.bench.suites.recsys_data_options`). A
    row's ``options`` may set ``negatives`` (a count, or
    ``"in_batch"``: the other users' positives of the batch; ``"sampled"``: the budget's count;
    ``"all"``: the whole catalogue, a full softmax without the user's other training items),
    ``temperature`` (training scores are divided by it) and ``lr``, each replacing the budget's
    value for that row. ``popularity`` rows rank items by training popularity (no training);
    ``sampled_softmax`` rows train ``softmax_ce``, or with ``options["log_q"]`` the registered
    ``sampled_softmax`` with the log-Q correction of in-batch negatives (sampled negatives are
    uniform: no correction). ``options["similarity"] = "cosine"`` scores by the cosine of the
    user and item vectors (no item bias; for ``ccl``), default ``"dot"``. ``gbce`` gets its
    sampling rate from the task: ``num_negatives`` (the batch size - 1 in-batch) and
    ``num_items``.
    """
    from rankloss._core import params
    from rankloss.models import MatrixFactorization
    from rankloss.train.tasks import RecsysTask

    budget = ctx.suite.budget
    where = f"suite {ctx.suite.name!r}: loss {ctx.loss.label!r}"
    requested = recsys_data_options(f"suite {ctx.suite.name!r}: budget", budget)
    data = load_dataset(ctx.dataset, **requested)
    # A user's file's own options win over the suite's (load_dataset gives them precedence):
    # the notes say what the data was built with.
    used = {**requested, **_own_data_options(ctx.dataset, requested)}
    check_recsys_splits(f"suite {ctx.suite.name!r}: data set {ctx.dataset!r}", data, used)
    notes = (
        f"{used['feedback']} feedback: rating >= {float(used['rating_threshold']):g}; "
        f"split {used['split']!r}: train "
        f"{len(data.train)}, validation {len(data.validation or [])}, test {len(data.test)}"
    )
    if (ctx.suite.name, notes) not in _LOGGED_DATA:  # once per suite and data, not per run
        _LOGGED_DATA.add((ctx.suite.name, notes))
        logging.getLogger("rankloss.bench").info("%s: %s", ctx.suite.name, notes)
    negatives = _recsys_option(ctx, "negatives", 20)
    in_batch, full = negatives == "in_batch", negatives == "all"
    if negatives in ("in_batch", "sampled", "all"):
        negatives = budget.get("negatives", 20)
    base = RecsysTask(
        data,
        batch_size=budget.get("batch_size", 512),
        positives=budget.get("positives", 1),
        negatives=params.positive_int(where, "negatives", negatives),
        lists_per_user=budget.get("lists_per_user", 1),
        ks=metric_cutoffs(ctx.suite.metrics, (10,)),
        temperature=params.positive(where, "temperature", _recsys_option(ctx, "temperature", 1.0)),
    )
    if ctx.loss.name == "popularity":
        counts = torch.bincount(data.train.item, minlength=data.num_items)
        metrics = base.evaluate(_Popularity(counts), "test")
        return RunResult({m: metrics[m] for m in ctx.suite.metrics}, notes=notes)
    log_q = params.boolean(where, "log_q", ctx.loss.options.get("log_q", False))
    similarity = ctx.loss.options.get("similarity", "dot")
    params.choice(where, "similarity", similarity, ("dot", "cosine"))
    if log_q and not in_batch:
        raise ValueError(
            f'{where}: options log_q corrects in-batch negatives: it needs negatives = "in_batch"'
        )
    task: RecsysTask | _RecsysVariant = base
    if in_batch:
        task = _InBatchTask(base, log_q=log_q)
    elif full:
        task = _FullCatalogueTask(base)
    if "lr" in ctx.loss.options:
        lr = params.positive(where, "lr", ctx.loss.options["lr"])
        ctx = replace(ctx, suite=ctx.suite.with_budget(lr=lr))
    torch.manual_seed(ctx.seed)
    cosine = similarity == "cosine"
    dim = ctx.suite.model.get("dim", 64)
    model: nn.Module = MatrixFactorization(data.num_users, data.num_items, dim, bias=not cosine)
    if cosine:
        model = _CosineScores(model)
    listed = base.batch_size - 1 if in_batch else data.num_items - 1 if full else base.negatives
    loss = _row_loss(ctx, num_negatives=listed, num_items=data.num_items)
    if log_q and getattr(loss, "registered_name", None) != "sampled_softmax":
        raise ValueError(f"{where}: options log_q needs the sampled_softmax loss")
    result = _fit_and_test(ctx, _trainer(ctx, model, task, loss))
    result.notes = f"{result.notes}; {notes}"
    return result


# ============================================================================ text retrieval
def run_text(ctx: RunContext) -> RunResult:
    """Fine-tune the sentence encoder (optional ``text`` extra) on title -> review pairs.

    A ``zero_shot`` row evaluates the pre-trained encoder without training, as the reference
    every fine-tuning loss should beat. A loss that filters false negatives by a guide model
    (``takes_guide_similarity``, e.g. ``guided_info_nce``) gets a frozen copy of the
    pre-trained encoder as its guide: the zero-shot row's model.
    """
    from rankloss.train.tasks import TextRetrievalTask

    budget = ctx.suite.budget
    loss = None if ctx.loss.name == "zero_shot" else _row_loss(ctx)
    guide = None
    try:
        from rankloss.models import SentenceEncoder

        torch.manual_seed(ctx.seed)
        max_length = budget.get("max_length", 64)
        model = SentenceEncoder(max_length=max_length, trainable=True)
        if getattr(loss, "takes_guide_similarity", False):
            guide = SentenceEncoder(max_length=max_length, trainable=False).to(ctx.device)
    except (ImportError, OSError, RuntimeError) as error:
        raise SkipRun(
            f"the sentence encoder is not available ({error}); pip install 'rankloss[text]'"
        ) from None
    data = load_dataset(ctx.dataset, max_pairs=budget.get("max_pairs", 2000))
    task = TextRetrievalTask(
        data,
        batch_size=budget.get("batch_size", 32),
        ks=metric_cutoffs(ctx.suite.metrics, (10,)),
        eval_batch_size=128,
        guide=guide,
    )
    if loss is None:
        model.eval()
        with torch.no_grad():
            metrics = task.evaluate(model, "test")
        return RunResult({m: metrics[m] for m in ctx.suite.metrics}, notes="no training")
    return _fit_and_test(ctx, _trainer(ctx, model, task, loss))


TASKS: dict[str, Callable[[RunContext], RunResult]] = {
    "ltr": run_ltr,
    "retrieval": run_retrieval,
    "imbalanced": run_imbalanced,
    "recsys": run_recsys,
    "text": run_text,
}

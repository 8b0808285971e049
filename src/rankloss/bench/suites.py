"""Benchmark suites: which data set, model, losses, metrics and budget each comparison uses.

A suite is data: every loss in it gets the same model, data, budget and seeds, so the table
compares losses and nothing else. Suites can also come from a TOML file
(:func:`rankloss.bench.config.load_config`).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING, Any

from rankloss._core import params

if TYPE_CHECKING:
    from rankloss.losses import CombinedLoss, Loss
    from rankloss.losses.base import SearchDimension

__all__ = [
    "LossSpec",
    "SuiteSpec",
    "TaskSettings",
    "TASK_SETTINGS",
    "SUITES",
    "GROUPS",
    "resolve_suites",
    "build_row_loss",
    "check_suite",
    "check_suite_names",
    "check_retrieval_views",
    "check_retrieval_augment",
    "check_vector_augment",
    "check_image_range",
    "check_recsys_splits",
    "metric_cutoffs",
    "LIGHTGBM_DEFAULTS",
    "recsys_data_options",
    "RETRIEVAL_AUGMENT",
]


@dataclass(frozen=True)
class LossSpec:
    """One row of a table.

    Attributes:
        label: the row's name in the table, e.g. ``"triplet (batch-hard)"``.
        name: a registered loss name, or a task-specific baseline (``"lightgbm"``,
            ``"sampled_softmax"``).
        hyper: hyper-parameters for the loss.
        options: task options for this row (a miner, a sampler, views, ...).
    """

    label: str
    name: str
    hyper: dict[str, Any] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SuiteSpec:
    """One comparison: a task on a data set, the same for every loss.

    Attributes:
        name: suite name (``ltr``, ``recsys``, ...).
        task: the task runner (see :mod:`rankloss.bench.tasks`).
        dataset: the data set name; ``fallbacks`` are tried in order if it cannot be loaded.
        losses: the rows.
        metrics: the columns, in order.
        budget: epochs, batch size, learning rate and other training settings.
        model: model settings.
        primary: the metric the plots sort by and early stopping watches.
    """

    name: str
    task: str
    dataset: str
    losses: tuple[LossSpec, ...]
    metrics: tuple[str, ...]
    budget: dict[str, Any] = field(default_factory=dict)
    model: dict[str, Any] = field(default_factory=dict)
    fallbacks: tuple[str, ...] = ()
    primary: str = ""
    description: str = ""

    def with_budget(self, **changes: Any) -> SuiteSpec:
        """A copy with ``changes`` in the budget (a ``None`` value changes nothing)."""
        changed = {k: v for k, v in changes.items() if v is not None}
        return replace(self, budget={**self.budget, **changed})

    def run_config(self, loss: LossSpec, dataset: str) -> dict[str, Any]:
        """Everything that determines one run's result except the seed."""
        return {
            "suite": self.name,
            "task": self.task,
            "dataset": dataset,
            "loss": asdict(loss),
            "metrics": list(self.metrics),
            "primary": self.primary,
            # max_seeds picks which seeds run, not what a run computes: left out, so raising
            # it reuses the finished seeds (and a tuned search's trials).
            "budget": {k: v for k, v in self.budget.items() if k != "max_seeds"},
            "model": dict(self.model),
        }

    @staticmethod
    def config_hash(config: dict[str, Any]) -> str:
        text = json.dumps(config, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:12]


#: LightGBM settings of a ``lightgbm`` row; the row's ``hyper`` override any of them (and may
#: add any other ``LGBMRanker`` argument), ``early_stopping_rounds`` included.
LIGHTGBM_DEFAULTS: dict[str, Any] = {
    "objective": "lambdarank",
    "n_estimators": 300,
    "learning_rate": 0.05,
    "num_leaves": 31,
    "min_child_samples": 10,
    "subsample": 0.8,
    "subsample_freq": 1,
    "colsample_bytree": 0.8,
    "early_stopping_rounds": 30,
}


@dataclass(frozen=True)
class TaskSettings:
    """What a suite of one task may set, and the losses the task trains with.

    Attributes:
        kinds: loss kinds (:attr:`rankloss.losses.Loss.kind`) the task calls.
        budget: keys of the suite's ``budget`` table.
        model: keys of the suite's ``model`` table.
        options: keys of a row's ``options``.
        baselines: row names that are not registered losses: each maps to the registered loss
            it trains with (``hyper`` are that loss's hyper-parameters), or to ``None`` when
            the row trains no loss module (its ``hyper`` go to the baseline itself).
        search_space: the ``budget`` keys a tuned benchmark (``rankloss bench --tune N``)
            searches for every row that trains a loss, beside the loss's own
            :attr:`rankloss.losses.LossInfo.search_space` (the learning rate; list sizes).
        baseline_search_spaces: the search space of each baseline row that trains no loss
            (its ``hyper``); such a row without one has nothing to tune.
        baseline_defaults: the settings each such baseline trains with when its row sets none
            (where a tuned search starts: trial 0).
        metrics: the metric names the task reports, ``@K`` standing for any cut-off (the
            task computes every cut-off a suite names) and ``/C`` for a class index; a suite
            asking for another name is refused before any work.
    """

    kinds: tuple[str, ...]
    budget: frozenset[str]
    model: frozenset[str]
    options: frozenset[str] = frozenset()
    baselines: Mapping[str, str | None] = field(default_factory=dict)
    search_space: Mapping[str, SearchDimension] = field(default_factory=dict)
    baseline_search_spaces: Mapping[str, Mapping[str, SearchDimension]] = field(
        default_factory=dict
    )
    metrics: tuple[str, ...] = ()
    baseline_defaults: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    def reports(self, metric: object) -> bool:
        """Whether the task reports ``metric`` (a name matching one of :attr:`metrics`)."""
        return isinstance(metric, str) and any(
            re.fullmatch(
                re.escape(form).replace("@K", "@[1-9][0-9]*").replace("/C", "/(0|[1-9][0-9]*)"),
                metric,
            )
            for form in self.metrics
        )


#: Budget keys every task reads (the trainer's settings and the runner's ``max_seeds``).
_COMMON_BUDGET = frozenset(
    {
        "epochs",
        "lr",
        "weight_decay",
        "grad_clip",
        "patience",
        "batch_size",
        "max_seeds",
        "ema_decay",
    }
)
#: Row options every task honours (``deterministic``: the row runs with one seed only).
_COMMON_OPTIONS = frozenset({"deterministic"})

TASK_SETTINGS: dict[str, TaskSettings] = {
    "ltr": TaskSettings(
        metrics=("ndcg@K", "map", "mrr"),
        kinds=("list",),
        budget=_COMMON_BUDGET | {"max_items", "feature_transform", "list_normalize"},
        model=frozenset({"hidden", "dropout"}),
        options=_COMMON_OPTIONS | {"optional", "list_normalize", "feature_transform"},
        baselines={"lightgbm": None, "random": None},
        search_space={"lr": ("log", 1e-4, 1e-2), "max_items": ("int", 16, 128)},
        baseline_defaults={"lightgbm": LIGHTGBM_DEFAULTS},
        baseline_search_spaces={
            "lightgbm": {
                "num_leaves": ("int", 7, 127),
                "learning_rate": ("log", 0.01, 0.2),
                "min_child_samples": ("int", 5, 100),
                "colsample_bytree": ("float", 0.5, 1.0),
            }
        },
    ),
    "retrieval": TaskSettings(
        metrics=("precision@1", "r_precision", "map@r", "hit@K", "ndcg@K", "validation/map@r"),
        kinds=("embedding", "list"),
        budget=_COMMON_BUDGET
        | {"train_classes", "folds", "augment", "max_per_split", "m_per_class"},
        model=frozenset({"embedding_dim", "kind", "width", "head", "retrieve"}),
        options=_COMMON_OPTIONS | {"views"},
        baselines={"raw": None, "untrained": None},
        search_space={"lr": ("log", 1e-4, 1e-2)},
    ),
    "imbalanced": TaskSettings(
        metrics=(
            "accuracy",
            "macro_recall",
            "macro_precision",
            "minority_recall",
            "minority_precision",
            "recall/C",
            "precision/C",
        ),
        kinds=("list", "embedding"),
        budget=_COMMON_BUDGET | {"minority", "fraction"},
        model=frozenset({"embedding_dim"}),
        options=_COMMON_OPTIONS | {"sampler"},
        search_space={"lr": ("log", 1e-4, 1e-2)},
    ),
    "recsys": TaskSettings(
        metrics=("recall@K", "ndcg@K", "hit@K"),
        kinds=("list",),
        budget=_COMMON_BUDGET
        | {
            "positives",
            "negatives",
            "lists_per_user",
            "temperature",
            "rating_threshold",
            "split",
            "test_fraction",
            "validation_fraction",
        },
        model=frozenset({"dim"}),
        options=_COMMON_OPTIONS | {"negatives", "temperature", "lr", "log_q", "similarity"},
        baselines={"sampled_softmax": "softmax_ce", "popularity": None},
        search_space={
            "lr": ("log", 1e-3, 5e-2),
            "negatives": ("int", 5, 100),
            "lists_per_user": ("int", 5, 40),
            "temperature": ("log", 0.25, 8.0),
        },
    ),
    "text": TaskSettings(
        metrics=("mrr@10", "recall@K", "ndcg@K"),
        kinds=("embedding", "list"),
        budget=_COMMON_BUDGET | {"max_pairs", "max_length"},
        model=frozenset(),
        options=_COMMON_OPTIONS,
        baselines={"zero_shot": None},
        search_space={"lr": ("log", 5e-6, 1e-4)},
    ),
}


def _settings(task: str) -> TaskSettings:
    if task not in TASK_SETTINGS:
        raise ValueError(f"unknown task {task!r}; known: {', '.join(TASK_SETTINGS)}")
    return TASK_SETTINGS[task]


def build_row_loss(
    task: str, row: LossSpec, facts: Mapping[str, Any] | None = None
) -> Loss | CombinedLoss | None:
    """The loss module a row of a ``task`` suite trains with (``None`` for a baseline that
    trains none, such as ``lightgbm``).

    A loss that cannot be built from the row's hyper-parameters alone (a proxy loss needs
    ``num_classes`` and ``embedding_size``; ``gbce`` its sampling rate) takes the keys of its
    registered ``example`` that the row does not set from ``facts``, what the task knows
    (the number of training classes, the model's output size, the negatives per list and the
    catalogue size); ``facts=None`` (checking a suite before any data is loaded) takes the
    example's own values. A recommendation row with ``options["log_q"]`` trains the
    registered ``sampled_softmax`` rather than the ``sampled_softmax`` baseline
    (``softmax_ce``), as only it takes the log sampling probabilities.

    Raises:
        ValueError: an unknown task or loss name, or a bad hyper-parameter value.
        TypeError: an unknown hyper-parameter, a value of the wrong type, or a loss of a kind
            the task does not call.
    """
    from rankloss.losses import LOSSES, get

    settings = _settings(task)
    name: str | None = row.name
    if row.name in settings.baselines and not row.options.get("log_q"):
        name = settings.baselines[row.name]
        if name is None:
            return None
    assert name is not None
    if name not in LOSSES.names():
        known = ", ".join([*settings.baselines, *LOSSES.names()])
        raise ValueError(f"unknown loss {name!r}; known: {known}")
    example = LOSSES.entry(name).meta["info"].example
    known_facts = example if facts is None else facts
    supplied = {k: known_facts[k] for k in example if k in known_facts and k not in row.hyper}
    try:
        loss = get(name, **row.hyper)
    except TypeError:
        if not supplied:
            raise
        loss = get(name, **row.hyper, **supplied)
    if loss.kind not in settings.kinds:
        raise TypeError(
            f"{name!r} is a loss of kind {loss.kind!r}; task {task!r} "
            f"needs a loss of kind {' or '.join(repr(k) for k in settings.kinds)}"
        )
    return loss


def _check_keys(where: str, given: Mapping[str, Any], allowed: frozenset[str]) -> None:
    unknown = sorted(set(given) - allowed)
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {unknown}; allowed: {sorted(allowed)}")


#: Checks of the budget values every task reads (a wrong type is a ``TypeError``).
_BUDGET_CHECKS: dict[str, Callable[[str, str, object], object]] = {
    "epochs": params.positive_int,
    "batch_size": params.positive_int,
    "max_seeds": params.positive_int,
    "lr": params.positive,
    "weight_decay": params.nonnegative,
    "ema_decay": params.decay,
    "max_pairs": params.positive_int,
    "max_length": params.positive_int,
}


def metric_cutoffs(metrics: Sequence[str], default: Sequence[int]) -> tuple[int, ...]:
    """The cut-offs ``k`` a task computes: ``default`` and every ``name@k`` in ``metrics``."""
    ks = set(default)
    for metric in metrics:
        _, sep, tail = metric.rpartition("@")
        if sep and tail.isdigit() and int(tail) > 0:
            ks.add(int(tail))
    return tuple(sorted(ks))


#: Values of a retrieval row's ``options["views"]``: ``False`` (labelled batches, the
#: default), ``True`` (two augmented views of each image, no labels: SimCLR) and
#: ``"labelled"`` (both views with the labels repeated: SupCon's recipe).
RETRIEVAL_VIEWS: tuple[bool | str, ...] = (False, True, "labelled")


def check_retrieval_views(where: str, value: object) -> bool | str:
    """A retrieval row's ``views`` option, checked: one of :data:`RETRIEVAL_VIEWS` (a value
    of another type is a ``TypeError``, another string a ``ValueError``)."""
    allowed = 'false, true (SimCLR) or "labelled" (SupCon)'
    if isinstance(value, bool):
        return value
    if not isinstance(value, str):
        raise TypeError(f"{where}: views must be {allowed}, got {type(value).__name__} {value!r}")
    if value != "labelled":
        raise ValueError(f"{where}: views must be {allowed}, got {value!r}")
    return value


#: The retrieval task's augmentation when the budget says ``augment = true`` (and of every
#: ``views`` row unless ``augment`` is a table): settings of
#: :func:`rankloss.augment.simclr_image_pipeline`. A crop of half the image or more, colour
#: jitter, blur and noise; no flip (a mirrored digit is another digit).
RETRIEVAL_AUGMENT: dict[str, Any] = {
    "crop_scale": (0.5, 1.0),
    "flip": False,
    "degrees": 0.0,
    "jitter": 0.4,
    "jitter_p": 0.8,
    "grayscale_p": 0.0,
    "blur_p": 0.3,
    "blur_sigma": (0.1, 2.0),
    "noise_std": 0.05,
    "erase_p": 0.0,
}


def _interval(where: str, name: str, value: object, high: float) -> tuple[float, float]:
    """Two numbers ``[a, b]`` with ``0 < a <= b <= high``."""
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        raise TypeError(f"{where}: {name} must be two numbers [low, high], got {value!r}")
    a, b = (params.number(where, name, v) for v in value)
    if not 0 < a <= b <= high:
        raise ValueError(
            f"{where}: {name} must be [low, high] with 0 < low <= high <= {high}, got {list(value)}"
        )
    return a, b


def check_retrieval_augment(where: str, value: object) -> dict[str, Any] | None:
    """A retrieval budget's ``augment``, checked: ``false`` (``None``: labelled batches are
    not augmented), ``true`` (:data:`RETRIEVAL_AUGMENT`) or a table of some of its keys,
    which replace the defaults (e.g. ``{ crop_scale = [0.8, 1.0], blur_p = 0 }``).

    ``crop_scale`` is a fraction of the area in ``(0, 1]``, ``blur_sigma`` a positive range,
    the ``*_p`` keys probabilities, ``degrees``, ``jitter`` and ``noise_std`` numbers >= 0 and
    ``flip`` a bool. A value of another type is a ``TypeError``, a value out of range or an
    unknown key a ``ValueError``.
    """
    if isinstance(value, bool):
        return dict(RETRIEVAL_AUGMENT) if value else None
    if not isinstance(value, Mapping):
        raise TypeError(
            f"{where}: augment must be true, false or a table of pipeline settings, "
            f"got {type(value).__name__} {value!r}"
        )
    _check_keys(f"{where}: augment", value, frozenset(RETRIEVAL_AUGMENT))
    settings = dict(RETRIEVAL_AUGMENT)
    for key, given in value.items():
        name = f"augment.{key}"
        if key == "crop_scale":
            settings[key] = _interval(where, name, given, 1.0)
        elif key == "blur_sigma":
            settings[key] = _interval(where, name, given, float("inf"))
        elif key == "flip":
            settings[key] = params.boolean(where, name, given)
        elif key.endswith("_p"):
            settings[key] = params.in_range(where, name, given, 0.0, 1.0)
        else:
            settings[key] = params.nonnegative(where, name, given)
    return settings


def recsys_data_options(where: str, budget: Mapping[str, Any]) -> dict[str, Any]:
    """The options the ``recsys`` task loads its data set with, from a suite's ``budget``:
    implicit feedback, ``rating_threshold`` (default 4), ``split`` (default
    ``"leave-last-out"``) and, when the budget sets them, ``test_fraction`` and
    ``validation_fraction`` (the built-in ``recsys`` suite: 0.1 and 0.1, RecBole's 8:1:1). The
    check of a user's file when a config is read and the runs use these same options, so the
    file is parsed (and cached) once, as the runs read it."""
    threshold = params.number(where, "rating_threshold", budget.get("rating_threshold", 4.0))
    options = {
        "split": budget.get("split", "leave-last-out"),
        "feedback": "implicit",
        "rating_threshold": float(threshold),
    }
    for key in ("test_fraction", "validation_fraction"):
        if key in budget:
            options[key] = params.in_range(where, key, budget[key], 0.0, 1.0)
    return options


def check_recsys_splits(where: str, data: Any, options: Mapping[str, Any]) -> None:
    """The ``recsys`` task's data ``data`` (a :class:`rankloss.data.RecDataset`, built with
    ``options``) must have interactions in its train, validation and test splits: training
    reads the first, early stopping the second, the scores the third. A ``ValueError`` names
    the split rule, the threshold and the three counts."""
    counts = [len(data.train), len(data.validation or []), len(data.test)]
    if min(counts) == 0:
        train, validation, test = counts
        feedback = (
            f"rating >= {float(options['rating_threshold']):g}"
            if options.get("feedback", "implicit") == "implicit"
            else "graded feedback"
        )
        split = options["split"]
        hint = (
            "; with this split, each user with 3 or more interactions gives one to each"
            if split in ("ratio", "leave-last-out")
            else ""
        )
        raise ValueError(
            f"{where}: {feedback} and split {split!r} leave train {train}, validation "
            f"{validation} and test {test} interactions; the recsys task needs some in each "
            f"split (training reads the first, early stopping the second, the scores the "
            f"third){hint}"
        )


def check_image_range(where: str, images: Any) -> None:
    """Images ``[N, C, H, W]`` that the retrieval task augments (``augment`` or a ``views``
    row) must hold values in ``[0, 1]``: the colour jitter and the noise clamp to that range, so
    8-bit pixels (0-255) would come out nearly white. A ``ValueError`` gives the range found."""
    low, high = float(images.min()), float(images.max())
    if low < 0.0 or high > 1.0:
        raise ValueError(
            f"{where}: the images hold values in [{low:g}, {high:g}], but the image augmentation "
            "works on [0, 1] and clamps to it: scale them to [0, 1] (a vectors data set's "
            "scale = 255 for 8-bit pixels), or set augment = false and run no views rows"
        )


def check_vector_augment(where: str, value: object, shape: Sequence[int]) -> None:
    """A retrieval budget's ``augment`` for data that are feature vectors ``[N, f]``, not
    images: ``true`` (feature dropout and noise) or ``false``; a table of image settings is a
    ``ValueError``."""
    if isinstance(value, Mapping):
        raise ValueError(
            f"{where}: augment: a table of image settings needs images [N, C, H, W], but the "
            f"data are vectors {list(shape)}; use augment = true (feature dropout and noise) "
            "or false"
        )


def check_suite(suite: SuiteSpec) -> None:
    """Check a suite before anything trains: a known task, known ``budget``, ``model`` and
    ``options`` keys, positive ``epochs``, ``batch_size``, ``max_seeds`` and ``lr`` (and a
    ``weight_decay`` >= 0), a primary metric among the metrics, a retrieval row's ``views``
    among :data:`RETRIEVAL_VIEWS`, a retrieval budget's ``augment``
    (:func:`check_retrieval_augment`), and every row's loss built with its hyper-parameters
    (so a bad value fails here, in the loss's own words); every row's label is its own.

    Raises ``ValueError`` or ``TypeError`` with a message that names the suite (and the table,
    key or row).
    """
    where = f"suite {suite.name!r}"
    try:
        settings = _settings(suite.task)
    except ValueError as error:
        raise ValueError(f"{where}: {error}") from None
    _check_keys(f"{where}: budget", suite.budget, settings.budget)
    for key, check in _BUDGET_CHECKS.items():
        if key in suite.budget:
            check(f"{where}: budget", key, suite.budget[key])
    if suite.task == "retrieval" and "augment" in suite.budget:
        check_retrieval_augment(f"{where}: budget", suite.budget["augment"])
    _check_keys(f"{where}: model", suite.model, settings.model)
    if not suite.metrics:
        raise ValueError(f"{where}: metrics is empty; name at least one")
    for metric in suite.metrics:
        if not settings.reports(metric):
            raise ValueError(
                f"{where}: metric {metric!r} is not one the {suite.task!r} task reports; it "
                f"reports {', '.join(settings.metrics)} (K: any cut-off, C: a class index)"
            )
    if suite.primary not in suite.metrics:
        raise ValueError(
            f"{where}: primary metric {suite.primary!r} is not among the metrics "
            f"{list(suite.metrics)}"
        )
    labels = [row.label for row in suite.losses]
    repeated = sorted({label for label in labels if labels.count(label) > 1})
    if repeated:
        raise ValueError(
            f"{where}: loss label(s) {repeated} name more than one row: the results of such "
            "rows would be merged in one table row; give each row its own label (a "
            "[[suite.loss]]'s label, or each --loss once)"
        )
    for row in suite.losses:
        _check_keys(f"{where}: loss {row.label!r}: options", row.options, settings.options)
        if (
            row.name == "lightgbm"
            and not row.options.get("optional")
            and importlib.util.find_spec("lightgbm") is None
        ):
            raise ValueError(
                f"{where}: loss {row.label!r} needs lightgbm, which is not installed: pip "
                "install 'rankloss[lightgbm]', or set options.optional = true to skip the row"
            )
        if suite.task == "retrieval" and "views" in row.options:
            check_retrieval_views(f"{where}: loss {row.label!r}: options", row.options["views"])
        try:
            build_row_loss(suite.task, row)
        except (TypeError, ValueError) as error:
            raise type(error)(f"{where}: loss {row.label!r}: {error}") from None


_LTR_METRICS = ("map", "ndcg@1", "ndcg@5", "ndcg@10", "mrr")
#: Listwise rows of the full LTR suite only (the quick suite keeps its short table).
_LTR_MORE_LOSSES = tuple(
    LossSpec(name, name)
    for name in (
        "xe_ndcg",
        "gumbel_approx_ndcg",
        "pirank",
        "position_aware_listmle",
        "rank_cosine",
        "soft_rank_ndcg",
    )
)
#: LightGBM rows: features standardised per list (trees gain from it), no global transform (a
#: monotone map of each feature changes nothing for a tree).
_LIGHTGBM_FEATURES = {"list_normalize": "standardize", "feature_transform": "none"}

LTR = SuiteSpec(
    name="ltr",
    task="ltr",
    dataset="mslr10k-sample",
    description="MSLR-WEB10K Fold1 sample: pointwise, pairwise and listwise losses on one MLP",
    losses=(
        LossSpec("mse", "mse"),
        LossSpec("sigmoid_ce", "sigmoid_ce", {"relevance_threshold": 1.0}),
        LossSpec("ranknet", "ranknet"),
        LossSpec("lambdarank", "lambdarank"),
        LossSpec("lambdaloss", "lambdaloss"),
        LossSpec("listnet", "listnet"),
        LossSpec("listmle", "listmle"),
        LossSpec("approx_ndcg", "approx_ndcg"),
        LossSpec("neural_ndcg", "neural_ndcg"),
        *_LTR_MORE_LOSSES,
        # Skipped, with a note, where lightgbm is not installed (the ``lightgbm`` extra).
        LossSpec(
            "lightgbm lambdamart", "lightgbm", options={"optional": True, **_LIGHTGBM_FEATURES}
        ),
        LossSpec("random", "random"),
    ),
    metrics=_LTR_METRICS,
    budget={
        "epochs": 40,
        "batch_size": 8,
        "lr": 1e-3,
        "weight_decay": 1e-5,
        "patience": 8,
        "feature_transform": "log1p",
    },
    model={"hidden": [128, 64], "dropout": 0.1},
    primary="ndcg@10",
)

RECSYS = SuiteSpec(
    name="recsys",
    task="recsys",
    dataset="movielens-100k",
    description="MovieLens 100k, RecBole's protocol: every rating an interaction, per-user "
    "random 8:1:1 split, full-catalogue ranking without seen items; matrix factorisation",
    losses=(
        LossSpec("popularity", "popularity", options={"deterministic": True}),
        LossSpec("bpr", "bpr"),
        LossSpec(
            "sampled softmax (in-batch)",
            "sampled_softmax",
            options={"negatives": "in_batch", "temperature": 4.0},
        ),
        LossSpec(
            "sampled softmax (sampled)",
            "sampled_softmax",
            options={"negatives": 100, "temperature": 4.0},
        ),
        # Every item of the catalogue a negative (the user's other training items left out).
        LossSpec(
            "full softmax",
            "sampled_softmax",
            options={"negatives": "all", "temperature": 4.0},
        ),
        LossSpec("listnet", "listnet"),
        LossSpec("ranknet", "ranknet"),
        # The in-batch negatives are other users' positives, drawn as often as the users
        # pick them: the registered sampled_softmax is corrected by their log probability.
        LossSpec(
            "sampled_softmax (in-batch, logQ)",
            "sampled_softmax",
            options={"negatives": "in_batch", "temperature": 4.0, "log_q": True},
        ),
        LossSpec("bpr_max", "bpr_max"),
        LossSpec("top1_max", "top1_max"),
        LossSpec("gbce", "gbce"),  # num_negatives and num_items come from the task
        LossSpec("ccl (cosine)", "ccl", options={"similarity": "cosine"}),
    ),
    metrics=("recall@10", "ndcg@10"),
    budget={
        "epochs": 10,
        "batch_size": 256,
        "lr": 5e-3,
        "negatives": 20,
        "lists_per_user": 20,
        # Training scores are divided by it (a row's options may set its own); stated here
        # so a tuned search starts every row at the value it trains with untuned.
        "temperature": 1.0,
        "weight_decay": 1e-6,
        # RecBole's protocol: implicit feedback, every rating (1-5) is an interaction.
        "rating_threshold": 1,
        # RecBole's 8:1:1 per user (without these the library's 0.2 / 0.1 gave 7:1:2).
        "split": "ratio",
        "test_fraction": 0.1,
        "validation_fraction": 0.1,
    },
    model={"dim": 64},
    primary="ndcg@10",
)

_RETRIEVAL_LOSSES = (
    LossSpec("raw pixels (no training)", "raw", options={"deterministic": True}),
    LossSpec("untrained network", "untrained"),
    LossSpec("contrastive", "contrastive"),
    LossSpec("triplet (batch-hard)", "triplet", {"margin": 0.2, "miner": "batch_hard"}),
    LossSpec("triplet (semi-hard)", "triplet", {"margin": 0.2, "miner": "semi_hard"}),
    LossSpec("nt_xent (views)", "nt_xent", {"temperature": 0.5}, {"views": True}),
    LossSpec("supcon", "supcon"),
    LossSpec("multi_similarity", "multi_similarity"),
)
#: Rows of the full retrieval suites only: SupCon's own recipe (two labelled views of each
#: image), pair and tuple losses, AP and recall surrogates, and proxy losses (built with the
#: training classes and the model's output size).
_RETRIEVAL_MORE_LOSSES = (
    LossSpec("supcon (labelled views)", "supcon", options={"views": "labelled"}),
) + tuple(
    LossSpec(name, name)
    for name in (
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
        "proxy_nca",
        "proxy_nca_pp",
        "proxy_anchor",
        "normalized_softmax",
        "cosface",
        "arcface",
        "sub_center_arcface",
        "soft_triple",
    )
)

RETRIEVAL = SuiteSpec(
    name="retrieval",
    task="retrieval",
    dataset="mnist-5k",
    fallbacks=("digits",),
    description="Image retrieval on held-out classes (classes 0-5 in 3 folds: train on two, "
    "early-stop on the third; retrieve 6-9)",
    losses=_RETRIEVAL_LOSSES + _RETRIEVAL_MORE_LOSSES,
    metrics=("precision@1", "r_precision", "map@r", "validation/map@r"),
    budget={
        "epochs": 15,
        "batch_size": 96,
        "lr": 1e-3,
        "m_per_class": 16,
        "folds": 3,
        "augment": True,
    },
    model={"embedding_dim": 64, "kind": "conv", "head": [128], "retrieve": "features"},
    primary="map@r",
)

RETRIEVAL_FASHION = replace(
    RETRIEVAL,
    name="retrieval-fashion",
    dataset="fashion-mnist",
    fallbacks=("digits",),
    description="Fashion-MNIST retrieval on held-out classes (3,000 images per split, "
    "labelled batches not augmented)",
    # Fashion-MNIST's images are centred and scaled to the frame: the crop, jitter and blur
    # that help on digits make the trained rows generalise worse to the held-out classes
    # (docs/benchmarks.md). The views rows still use the task's pipeline.
    budget={
        **RETRIEVAL.budget,
        "max_per_split": 3000,
        "epochs": 8,
        "patience": 3,
        "augment": False,
    },
)

IMBALANCED = SuiteSpec(
    name="imbalanced",
    task="imbalanced",
    dataset="digits",
    description="digits with classes 5-9 cut to 5%: cross-entropy against metric losses",
    losses=(
        LossSpec("softmax_ce", "softmax_ce"),
        LossSpec(
            "triplet (balanced)",
            "triplet",
            {"margin": 0.2, "miner": "batch_hard"},
            {"sampler": "class_balanced"},
        ),
        LossSpec("supcon (balanced)", "supcon", options={"sampler": "class_balanced"}),
    ),
    metrics=(
        "macro_recall",
        "macro_precision",
        "minority_recall",
        "minority_precision",
    ),
    budget={
        "epochs": 20,
        "batch_size": 64,
        "lr": 1e-3,
        "minority": [5, 6, 7, 8, 9],
        "fraction": 0.05,
    },
    model={"embedding_dim": 64},
    # Early stopping watches macro recall: minority recall is 0 for many epochs of plain
    # cross-entropy, which would stop it before it learns the majority classes.
    primary="macro_recall",
)

TEXT = SuiteSpec(
    name="text",
    task="text",
    dataset="clothing-reviews",
    description="Review title -> review text retrieval, fine-tuning a sentence encoder",
    losses=(
        LossSpec("zero-shot (no training)", "zero_shot", options={"deterministic": True}),
        LossSpec("info_nce", "info_nce", {"temperature": 0.05}),
        LossSpec("triplet", "triplet", {"margin": 0.2}),
        # Its guide is a frozen copy of the pre-trained encoder (the zero-shot row's model).
        LossSpec("guided_info_nce", "guided_info_nce", {"temperature": 0.05}),
    ),
    metrics=("ndcg@10", "recall@10"),
    budget={
        "epochs": 1,
        "batch_size": 32,
        "lr": 2e-5,
        "max_pairs": 1500,
        "max_length": 48,
        "patience": 1,
    },
    primary="ndcg@10",
)

QUICK_LTR = replace(
    LTR,
    name="quick-ltr",
    # Lists of 4: twice the steps of the same 15 epochs, a smaller spread over seeds.
    budget={**LTR.budget, "epochs": 15, "batch_size": 4},
    losses=tuple(
        loss
        for loss in LTR.losses
        if loss.name not in ("lightgbm", "random") and loss not in _LTR_MORE_LOSSES
    )
    + (
        LossSpec(
            "lightgbm lambdamart",
            "lightgbm",
            options={"optional": True, **_LIGHTGBM_FEATURES},
        ),
        LossSpec("random", "random"),
    ),
)
QUICK_RETRIEVAL = replace(
    RETRIEVAL,
    name="quick-retrieval",
    dataset="digits",
    losses=_RETRIEVAL_LOSSES,
    fallbacks=(),
    budget={**RETRIEVAL.budget, "epochs": 8},
    # width 64 over 32: the higher validation map@r (0.81-0.84 against 0.79-0.82) on digits
    model={**RETRIEVAL.model, "width": 64},
)

SUITES: dict[str, SuiteSpec] = {
    s.name: s
    for s in (
        LTR,
        RECSYS,
        RETRIEVAL,
        RETRIEVAL_FASHION,
        IMBALANCED,
        TEXT,
        QUICK_LTR,
        QUICK_RETRIEVAL,
    )
}

#: Names that stand for several suites.
GROUPS: dict[str, tuple[str, ...]] = {
    "quick": ("quick-ltr", "quick-retrieval"),
    "all": ("ltr", "recsys", "retrieval", "retrieval-fashion", "imbalanced", "text"),
}


#: What a suite's name may be: it names files and folders under ``--out``.
SUITE_NAME = re.compile(r"\w[\w .+-]*")


def check_suite_names(suites: Sequence[SuiteSpec]) -> None:
    """Each suite's name is a file name (:data:`SUITE_NAME`: no ``/``, ``\\`` or leading
    ``.``, so it stays inside ``--out``) and no two suites share one (their runs would be
    merged in one table); a ``ValueError`` names the suite."""
    seen: set[str] = set()
    for suite in suites:
        if not isinstance(suite.name, str) or not SUITE_NAME.fullmatch(suite.name):
            raise ValueError(
                f"suite name {suite.name!r}: it names files under the output folder; use "
                "letters, digits, '_', '-', '+', '.' and spaces, starting with a letter, "
                "digit or '_'"
            )
        if suite.name in seen:
            raise ValueError(
                f"suite name {suite.name!r} is given to two suites: their runs would be merged "
                "in one table; give each suite its own name"
            )
        seen.add(suite.name)


def resolve_suites(names: list[str] | tuple[str, ...]) -> list[SuiteSpec]:
    """Expand group names and look suites up; unknown names raise ``KeyError``."""
    out: list[SuiteSpec] = []
    for name in names:
        for member in GROUPS.get(name, (name,)):
            if member not in SUITES:
                known = sorted(set(SUITES) | set(GROUPS))
                raise KeyError(f"unknown suite {member!r}; known: {', '.join(known)}")
            if SUITES[member] not in out:
                out.append(SUITES[member])
    return out

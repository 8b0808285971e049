"""Metric names: ``"ndcg@10"``, ``"map"``, ``"mrr"``, ``"p@5"``, ``"recall@100"``, ``"hit@10"``...

:func:`parse_metric` turns a name into a :class:`MetricSpec` (which function, which cut-off);
:func:`compute` computes a metric by name on padded batches. trec_eval's names are accepted
too (``ndcg_cut_10``, ``P_5``, ``recall_100``, ``recip_rank``, ``Rprec``, ``map_cut_10``).

One vocabulary: ``recall@k`` is the fraction of the relevant items in the top ``k``;
``hit@k`` is 1 when at least one is (the "Recall@K" of metric-learning papers).
``ndcg@k`` and ``dcg@k`` use the linear gain :math:`y` (trec_eval, ranx, scikit-learn,
torchmetrics); ``ndcg_burges@k`` and ``dcg_burges@k`` the exp2 gain :math:`2^y - 1` (Burges et
al. 2005; ranx's name). The name fixes the gain: a ``gain=`` option that contradicts it is an
error.
"""

from __future__ import annotations

import functools
import inspect
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import torch
from torch import Tensor

import rankloss.metrics.ranking as ranking
from rankloss._core.validation import check_choice

__all__ = ["MetricSpec", "parse_metric", "compute", "METRIC_FUNCTIONS", "nanmean"]

#: canonical name -> function
METRIC_FUNCTIONS: dict[str, Callable[..., Tensor]] = {
    "dcg": ranking.dcg,
    "dcg_burges": ranking.dcg,
    "ndcg": ranking.ndcg,
    "ndcg_burges": ranking.ndcg,
    "map": ranking.average_precision,
    "mrr": ranking.reciprocal_rank,
    "err": ranking.err,
    "precision": ranking.precision,
    "recall": ranking.recall,
    "r_precision": ranking.r_precision,
    "hit": ranking.hit_rate,
    "ordered_pair_accuracy": ranking.ordered_pair_accuracy,
}

#: canonical name -> the options its name fixes (the gain of DCG and NDCG)
FIXED_OPTIONS: dict[str, dict[str, object]] = {
    "dcg": {"gain": "linear"},
    "dcg_burges": {"gain": "exp2"},
    "ndcg": {"gain": "linear"},
    "ndcg_burges": {"gain": "exp2"},
}

# the name of the same metric with the other gain, for error messages
_OTHER_GAIN = {
    "dcg": "dcg_burges",
    "dcg_burges": "dcg",
    "ndcg": "ndcg_burges",
    "ndcg_burges": "ndcg",
}

_ALIASES = {
    "dcg": "dcg",
    "dcg_burges": "dcg_burges",
    "ndcg": "ndcg",
    "ndcg_cut": "ndcg",
    "ndcg_burges": "ndcg_burges",
    "map": "map",
    "ap": "map",
    "map_cut": "map",
    "average_precision": "map",
    "mrr": "mrr",
    "rr": "mrr",
    "recip_rank": "mrr",
    "reciprocal_rank": "mrr",
    "err": "err",
    "p": "precision",
    "precision": "precision",
    "r": "recall",
    "recall": "recall",
    "r_precision": "r_precision",
    "r-precision": "r_precision",
    "rprec": "r_precision",
    "hit": "hit",
    "hit_rate": "hit",
    "hitrate": "hit",
    "hits": "hit",
    "hr": "hit",
    "success": "hit",
    "ordered_pair_accuracy": "ordered_pair_accuracy",
    "opa": "ordered_pair_accuracy",
}

_PATTERN = re.compile(r"^\s*([A-Za-z_\-]+?)(?:(?:@|_|\.)(\d+))?\s*$")


@dataclass(frozen=True)
class MetricSpec:
    """A parsed metric name.

    Attributes:
        name: the string as given (used as the key of results).
        metric: canonical metric (a key of :data:`METRIC_FUNCTIONS`).
        k: cut-off or ``None``.
    """

    name: str
    metric: str
    k: int | None

    @property
    def function(self) -> Callable[..., Tensor]:
        return METRIC_FUNCTIONS[self.metric]

    @property
    def canonical(self) -> str:
        return self.metric if self.k is None else f"{self.metric}@{self.k}"

    def options(self, given: Mapping[str, object], where: str = "compute") -> dict[str, object]:
        """``given`` with the options this name fixes; ``ValueError`` if ``given`` contradicts
        them (``compute("ndcg@10", gain="exp2")``: the exp2 gain is ``ndcg_burges@10``).

        >>> parse_metric("ndcg_burges@5").options({"ties": "index"})
        {'ties': 'index', 'gain': 'exp2'}
        """
        merged = dict(given)
        for key, value in FIXED_OPTIONS.get(self.metric, {}).items():
            if key in given and given[key] != value:
                other = _OTHER_GAIN[self.metric]
                other = other if self.k is None else f"{other}@{self.k}"
                raise ValueError(
                    f"{where}: the metric {self.name!r} has {key}={value!r}, got "
                    f"{key}={given[key]!r} (one name, one gain: 'ndcg'/'dcg' are linear, "
                    f"'ndcg_burges'/'dcg_burges' exp2; the other gain is {other!r})"
                )
            merged[key] = value
        return merged


@functools.cache
def metric_options(function: Callable[..., Tensor]) -> frozenset[str]:
    """The keyword options of a metric function (its arguments after ``scores, labels, mask,
    k``)."""
    names = inspect.signature(function).parameters
    return frozenset(names) - {"scores", "labels", "mask", "k"}


def parse_metric(name: str) -> MetricSpec:
    """Parse ``"ndcg@10"``, ``"map"``, ``"P_5"``, ``"recall@100"``, ``"hit@10"``, ...

    The cut-off follows ``@``, ``_`` or ``.``; names are case-insensitive.

    >>> parse_metric("ndcg_cut_10")
    MetricSpec(name='ndcg_cut_10', metric='ndcg', k=10)
    >>> parse_metric("P@5").canonical
    'precision@5'
    >>> parse_metric("hit_rate@10").canonical
    'hit@10'
    >>> parse_metric("ndcg_burges@10").canonical
    'ndcg_burges@10'
    """
    if not isinstance(name, str):
        raise TypeError(f"parse_metric: name must be a str, got {type(name).__name__}")
    match = _PATTERN.match(name)
    base = match.group(1).lower() if match is not None else ""
    if match is None or base not in _ALIASES:
        known = ", ".join(sorted(METRIC_FUNCTIONS))
        raise ValueError(
            f"parse_metric: unknown metric {name!r}; known: {known} "
            "(with an optional cut-off, e.g. 'ndcg@10')"
        )
    k = int(match.group(2)) if match.group(2) is not None else None
    if k is not None and k < 1:
        raise ValueError(f"parse_metric: the cut-off of {name!r} must be a positive integer")
    return MetricSpec(name, _ALIASES[base], k)


def nanmean(values: Tensor) -> Tensor:
    """Mean over the values that are not NaN (NaN marks a skipped list); NaN if none."""
    values = values.reshape(-1)
    keep = ~torch.isnan(values)
    return values[keep].mean() if bool(keep.any()) else values.new_tensor(float("nan"))


def compute(
    name: str,
    scores: Tensor,
    labels: Tensor,
    mask: Tensor | None = None,
    *,
    reduction: str = "none",
    **options: object,
) -> Tensor:
    """Compute a metric by name on padded batches.

    Args:
        name: e.g. ``"ndcg@10"`` (linear gain), ``"ndcg_burges@10"`` (exp2 gain), ``"map"``,
            ``"mrr@10"``, ``"p@5"``, ``"recall@100"``.
        scores, labels, mask: ``[..., n]`` as everywhere in rankloss.
        reduction: ``"none"`` (default) gives ``[...]``; ``"mean"`` the mean over the lists
            that are not skipped (NaN).
        **options: passed to the metric function (``ties``, ``empty``, ...); an option the
            metric does not take is a ``TypeError`` naming the ones it takes. The gain of
            ``ndcg``/``dcg`` comes from the name; a ``gain`` that contradicts it is a
            ``ValueError``.

    >>> compute("ndcg@2", torch.tensor([[2.0, 1.0]]), torch.tensor([[0.0, 2.0]]))
    tensor([0.6309])
    >>> compute("ndcg_burges@2", torch.tensor([[2.0, 1.0]]), torch.tensor([[1.0, 2.0]]))
    tensor([0.7967])
    """
    check_choice("reduction", reduction, ("none", "mean"), "compute")
    spec = parse_metric(name)
    accepted = metric_options(spec.function)
    unknown = sorted(set(options) - accepted)
    if unknown:
        raise TypeError(
            f"compute: the metric {name!r} takes no option(s) {unknown}; its options: "
            f"{sorted(accepted)}"
        )
    values = spec.function(scores, labels, mask, k=spec.k, **spec.options(options, "compute"))
    return nanmean(values) if reduction == "mean" else values

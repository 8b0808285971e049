r"""``torchmetrics.Metric`` classes for the ranking metrics of :mod:`rankloss.metrics`.

:class:`RankingMetric` (any name :func:`rankloss.metrics.compute` takes) and the named classes
:class:`NDCG`, :class:`MAP`, :class:`MRR`, :class:`PrecisionAtK`, :class:`RecallAtK`,
:class:`ERR`, :class:`HitRate`, :class:`RPrecision` compute their values with the kernels of
:mod:`rankloss.metrics.ranking`, so a value equals the functional metric's on the same lists.

``update`` takes either form:

* flat, torchmetrics' retrieval convention: ``preds [N]``, ``target [N]``, ``indexes [N]``
  (the query of each item). Items are grouped by query at :meth:`~RankingMetric.compute`, so a
  query whose items arrive in several batches is still one list;
* padded, rankloss's convention: ``preds [B, n]``, ``target [B, n]``, optional bool
  ``mask [B, n]``; each row is one list.

The state is ``cat``-reduced across processes (the per-list values of padded updates and the
raw items of flat updates), so :meth:`compute` after a distributed sync gives the value over
every process's lists. The value is the mean over the lists, leaving out the lists a metric
skips (``empty="skip"``, the default: a list with no relevant item); ``empty="zero"`` counts
them as 0, as torchmetrics' ``empty_target_action="neg"`` does.

.. math:: \mathrm{value} = \frac{1}{|Q'|} \sum_{q \in Q'} m(q)

with :math:`Q'` the lists not skipped. Cost: :math:`O(L \log L)` for :math:`L` items at
:meth:`compute` (a sort per list) plus the state, :math:`O(L)` memory. Metrics: Järvelin and
Kekäläinen 2002 (NDCG), Chapelle et al. 2009 (ERR), Voorhees 1999 (MRR).

Needs ``torchmetrics`` (``pip install 'rankloss[torchmetrics]'``).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

try:
    from torchmetrics import Metric
except ImportError as error:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "rankloss.metrics.torchmetrics needs torchmetrics: pip install 'rankloss[torchmetrics]'"
    ) from error

from rankloss._core import params
from rankloss.metrics.names import compute as compute_metric
from rankloss.metrics.names import parse_metric
from rankloss.metrics.ranking import EMPTY, TIES

__all__ = [
    "RankingMetric",
    "NDCG",
    "MAP",
    "MRR",
    "PrecisionAtK",
    "RecallAtK",
    "ERR",
    "HitRate",
    "RPrecision",
    "group_by_index",
]


def group_by_index(
    preds: Tensor, target: Tensor, indexes: Tensor
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    r"""Pad flat ``preds [N]``, ``target [N]``, ``indexes [N]`` into one row per query.

    Items keep their order within a query; rows are in increasing query index.

    Returns:
        ``(scores [Q, n], labels [Q, n], mask [Q, n], queries [Q])``, ``n`` the largest query.
        Cost: :math:`O(N \log N)` (a stable sort).
    """
    queries, inverse, counts = torch.unique(indexes, return_inverse=True, return_counts=True)
    order = torch.sort(inverse, stable=True).indices
    starts = torch.cumsum(counts, 0) - counts
    row = inverse[order]
    column = torch.arange(len(order), device=preds.device) - starts[row]
    n = int(counts.max()) if len(counts) else 0
    shape = (len(queries), n)
    scores = preds.new_zeros(shape)
    labels = target.new_zeros(shape)
    mask = torch.zeros(shape, dtype=torch.bool, device=preds.device)
    scores[row, column] = preds[order]
    labels[row, column] = target[order]
    mask[row, column] = True
    return scores, labels, mask, queries


def _float(x: Tensor) -> Tensor:
    """float16/bfloat16/integer/bool inputs compute in float32; float64 stays."""
    return x if x.dtype in (torch.float32, torch.float64) else x.to(torch.float32)


class RankingMetric(Metric):
    r"""A ranking metric by name (``"ndcg@10"``, ``"map"``, ``"mrr@10"``, ``"p@5"``, ...).

    .. math:: \mathrm{value} = \frac{1}{|Q'|} \sum_{q \in Q'} m(q)

    over the lists :math:`Q'` that are not skipped, :math:`m` the metric of
    :func:`rankloss.metrics.compute`.

    Args:
        name: the metric, as :func:`rankloss.metrics.parse_metric` reads it (the gain of NDCG
            comes from the name: ``ndcg@k`` linear, ``ndcg_burges@k`` exp2).
        ties: one of :data:`rankloss.metrics.TIES`; ``None`` (default): the metric function's
            own default (``"average"`` for most, ``"pessimistic"`` for ERR).
        empty: ``"skip"`` (default), ``"zero"`` or ``"one"``: a list with no relevant item.
        **kwargs: passed to ``torchmetrics.Metric`` (``dist_sync_on_step``, ...).

    ``update(preds, target, indexes=None, mask=None)``: flat ``[N]`` with ``indexes [N]``, or
    padded ``[B, n]`` with an optional bool ``mask [B, n]``. ``compute()`` returns a float64
    scalar (NaN when every list was skipped).

    Cost: :math:`O(L \log L)` for :math:`L` items; memory :math:`O(L)` (the ``cat`` state).
    """

    is_differentiable = False
    higher_is_better = True
    full_state_update = False

    list_values: list[Tensor]
    flat_preds: list[Tensor]
    flat_target: list[Tensor]
    flat_indexes: list[Tensor]

    def __init__(
        self, name: str, *, ties: str | None = None, empty: str = "skip", **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        where = type(self).__name__
        self.spec = parse_metric(name)
        self.options: dict[str, Any] = {"empty": params.choice(where, "empty", empty, EMPTY)}
        if ties is not None:
            self.options["ties"] = params.choice(where, "ties", ties, TIES)
        if self.spec.metric in ("dcg", "dcg_burges", "ordered_pair_accuracy"):
            self.options.pop("empty")
        self.add_state("list_values", default=[], dist_reduce_fx="cat")
        self.add_state("flat_preds", default=[], dist_reduce_fx="cat")
        self.add_state("flat_target", default=[], dist_reduce_fx="cat")
        self.add_state("flat_indexes", default=[], dist_reduce_fx="cat")

    def _values(self, scores: Tensor, labels: Tensor, mask: Tensor) -> Tensor:
        values = compute_metric(self.spec.name, scores, labels, mask, **self.options)
        return values.to(torch.float64)

    def update(
        self,
        preds: Tensor,
        target: Tensor,
        indexes: Tensor | None = None,
        mask: Tensor | None = None,
    ) -> None:
        """Add a batch: flat ``[N]`` with ``indexes [N]`` or padded ``[B, n]`` (+ ``mask``)."""
        where = f"{type(self).__name__}.update"
        if preds.shape != target.shape:
            raise ValueError(
                f"{where}: preds and target must have the same shape, got "
                f"{tuple(preds.shape)} and {tuple(target.shape)}"
            )
        preds, target = _float(preds), _float(target)
        if indexes is not None:
            if preds.ndim != 1 or indexes.shape != preds.shape:
                raise ValueError(
                    f"{where}: the flat form takes preds, target and indexes of one shape [N], "
                    f"got {tuple(preds.shape)} and indexes {tuple(indexes.shape)}"
                )
            if mask is not None:
                raise ValueError(f"{where}: mask is for the padded form, not with indexes")
            if indexes.dtype.is_floating_point or indexes.dtype == torch.bool:
                raise ValueError(f"{where}: indexes must be integers, got {indexes.dtype}")
            self.flat_preds.append(preds.reshape(-1))
            self.flat_target.append(target.reshape(-1))
            self.flat_indexes.append(indexes.reshape(-1).long())
            return
        if preds.ndim != 2:
            raise ValueError(
                f"{where}: without indexes preds must be padded [B, n], got {tuple(preds.shape)} "
                "(pass indexes for the flat [N] form)"
            )
        if mask is None:
            mask = torch.ones(preds.shape, dtype=torch.bool, device=preds.device)
        elif mask.shape != preds.shape or mask.dtype != torch.bool:
            raise ValueError(
                f"{where}: mask must be bool {tuple(preds.shape)}, got {mask.dtype} "
                f"{tuple(mask.shape)}"
            )
        self.list_values.append(self._values(preds, target, mask))

    def _all_values(self) -> Tensor:
        parts = []
        for state in (self.list_values,):
            if isinstance(state, Tensor):  # after a sync the list is one tensor
                parts.append(state.reshape(-1))
            else:
                parts += [v.reshape(-1) for v in state]
        flat = [self.flat_preds, self.flat_target, self.flat_indexes]
        if any(isinstance(s, Tensor) or len(s) for s in flat):
            preds, target, indexes = (
                s if isinstance(s, Tensor) else torch.cat(s) if len(s) else None for s in flat
            )
            assert preds is not None and target is not None and indexes is not None
            scores, labels, mask, _ = group_by_index(preds, target, indexes)
            if len(scores):
                parts.append(self._values(scores, labels, mask).reshape(-1))
        if not parts:
            return torch.zeros(0, dtype=torch.float64, device=self.device)
        return torch.cat([p.to(torch.float64) for p in parts])

    def compute(self) -> Tensor:
        """The mean over the lists not skipped (float64 scalar; NaN if none)."""
        values = self._all_values()
        keep = ~torch.isnan(values)
        if not bool(keep.any()):
            return values.new_tensor(float("nan"))
        return values[keep].mean()

    def compute_per_list(self) -> Tensor:
        """Every list's value: padded updates in order, then the flat queries by index."""
        return self._all_values()


class _Named(RankingMetric):
    _metric = ""

    def __init__(
        self, k: int | None = None, *, ties: str | None = None, empty: str = "skip", **kwargs: Any
    ) -> None:
        base = kwargs.pop("_base", self._metric)
        if k is not None:
            params.positive_int(type(self).__name__, "k", k)
        name = base if k is None else f"{base}@{k}"
        super().__init__(name, ties=ties, empty=empty, **kwargs)


class NDCG(_Named):
    r"""NDCG@k with the linear gain (``gain="exp2"``: the Burges gain :math:`2^y - 1`).

    .. math:: \mathrm{NDCG@k} = \frac{\sum_{r \le k} G(y_r) / \log_2(r + 1)}
              {\sum_{r \le k} G(y^*_r) / \log_2(r + 1)}

    Args:
        k: cut-off (``None``: the whole list). gain: ``"linear"`` (default, trec_eval and
            torchmetrics) or ``"exp2"``. ties, empty: as :class:`RankingMetric`.

    Cost: :math:`O(n \log n)` per list. Järvelin and Kekäläinen 2002.
    """

    def __init__(
        self,
        k: int | None = None,
        *,
        gain: str = "linear",
        ties: str | None = None,
        empty: str = "skip",
        **kwargs: Any,
    ) -> None:
        params.choice(type(self).__name__, "gain", gain, ("linear", "exp2"))
        base = "ndcg" if gain == "linear" else "ndcg_burges"
        super().__init__(k, ties=ties, empty=empty, _base=base, **kwargs)


class MAP(_Named):
    r"""Mean average precision (at ``k``: trec_eval's ``map_cut``, denominator :math:`R`).

    .. math:: \mathrm{AP@k} = \frac{1}{R} \sum_{r \le k} \mathrm{rel}(r)\,\mathrm{P@r}

    Cost: :math:`O(n \log n)` per list. Voorhees and Harman 2005.
    """

    _metric = "map"


class MRR(_Named):
    r"""Mean reciprocal rank of the first relevant item (0 past ``k``).

    .. math:: \mathrm{RR@k} = 1 / r_1 \text{ if } r_1 \le k \text{ else } 0

    Cost: :math:`O(n \log n)` per list. Voorhees 1999.
    """

    _metric = "mrr"


class PrecisionAtK(_Named):
    r"""Precision at ``k`` (divided by ``k`` even for shorter lists, as trec_eval).

    .. math:: \mathrm{P@k} = \frac{1}{k} \sum_{r \le k} \mathrm{rel}(r)

    Cost: :math:`O(n \log n)` per list. Manning et al. 2008.
    """

    _metric = "precision"


class RecallAtK(_Named):
    r"""Recall at ``k``: the fraction of the relevant items in the top ``k``.

    .. math:: \mathrm{R@k} = \frac{1}{R} \sum_{r \le k} \mathrm{rel}(r)

    Cost: :math:`O(n \log n)` per list. Manning et al. 2008.
    """

    _metric = "recall"


class ERR(_Named):
    r"""Expected reciprocal rank (cascade model, stop probability :math:`(2^y - 1) / 2^{y_{\max}}`).

    .. math:: \mathrm{ERR@k} = \sum_{r \le k} \frac{1}{r} R_r \prod_{i < r} (1 - R_i)

    Cost: :math:`O(n \log n)` per list. Chapelle et al. 2009.
    """

    _metric = "err"


class HitRate(_Named):
    r"""1 when a relevant item is in the top ``k`` (metric learning's "Recall@K").

    .. math:: \mathrm{hit@k} = [\exists r \le k: \mathrm{rel}(r)]

    Cost: :math:`O(n \log n)` per list. Jégou et al. 2011.
    """

    _metric = "hit"


class RPrecision(_Named):
    r"""Precision at :math:`R`, the number of relevant items (``k`` is not used).

    .. math:: \mathrm{R\text{-}prec} = \frac{1}{R} \sum_{r \le R} \mathrm{rel}(r)

    Cost: :math:`O(n \log n)` per list. Buckley and Voorhees 2000.
    """

    _metric = "r_precision"

    def __init__(self, *, ties: str | None = None, empty: str = "skip", **kwargs: Any) -> None:
        super().__init__(None, ties=ties, empty=empty, **kwargs)

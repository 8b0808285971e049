r"""A PyTorch Lightning module that trains with a rankloss loss and logs rankloss metrics
(the ``lightning`` extra).

:class:`RankingModule` wraps a model and a rankloss loss of either kind:

=========================  =========================================  ============================
loss kind                  batch                                      call
=========================  =========================================  ============================
``"list"``                 ``{"features", "labels"[, "mask"]}`` or    ``loss(model(features[,
                           ``(features, labels[, mask])``             mask]), labels, mask)``
``"embedding"``            ``{"inputs", "labels"}`` or                ``loss(model(inputs),
                           ``(inputs, labels)``                       labels)``
``"embedding"``            ``{"queries", "keys"}``                    ``loss(model(queries),
                                                                      keys=model(keys))``
=========================  =========================================  ============================

A list batch's ``mask`` goes to the model too when its ``forward`` takes one (a ``mask``
parameter or a second positional one, as every scorer of :mod:`rankloss.models` does and as
the library's trainer calls them), so padded items never reach real ones through the model.

Metrics are names of :func:`rankloss.metrics.compute` (``"ndcg@10"``, ``"mrr"``, ...), logged
as ``"<stage>/<name>"`` (``train``, ``val``, ``test``) beside ``"<stage>/loss"``. For a list
loss they rank each list by the model's scores; for an embedding loss they rank the batch
in-batch: each anchor's candidates are the other rows (``labels`` form: relevant = same label)
or the keys (``keys`` form: relevant = its own key), by the loss's ``similarity``.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn

try:
    import lightning.pytorch as pl
except ImportError:  # pragma: no cover - depends on the environment
    try:
        import pytorch_lightning as pl  # type: ignore[no-redef]
    except ImportError as err:
        raise ImportError(
            "rankloss.integrations.lightning needs the 'lightning' extra: "
            "pip install 'rankloss[lightning]'"
        ) from err

from rankloss import metrics as rank_metrics
from rankloss._core.similarity import pairwise_similarity

__all__ = ["RankingModule"]

OptimizerFactory = Callable[[Iterable[nn.Parameter]], torch.optim.Optimizer]


def _takes_mask(model: nn.Module) -> bool:
    """Whether ``model.forward`` takes a list mask: a ``mask`` parameter or a second
    positional parameter (not ``*args``: a wrapper may pass it on to a model without one)."""
    try:
        parameters = inspect.signature(model.forward).parameters.values()
    except (TypeError, ValueError):  # pragma: no cover - a builtin without a signature
        return False
    positional = [p for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return any(p.name == "mask" for p in parameters) or len(positional) >= 2


def _names_mask(model: nn.Module) -> bool:
    """Whether ``model.forward`` has a parameter named ``mask``."""
    try:
        return "mask" in inspect.signature(model.forward).parameters
    except (TypeError, ValueError):  # pragma: no cover - a builtin without a signature
        return False


class RankingModule(pl.LightningModule):
    r"""Train ``model`` with a rankloss ``loss`` and log rankloss metrics.

    Each step computes the loss of the batch (see the module's table) and, for every metric
    name :math:`m`, the batch mean :math:`\bar m = \frac{1}{|Q|}\sum_{q \in Q} m(q)` over the
    lists (or anchors) :math:`Q` that are not skipped (:func:`rankloss.metrics.compute` with
    ``reduction="mean"``), e.g. NDCG (Järvelin and Kekäläinen, TOIS 2002).

    Args:
        model: a module: ``features -> scores [..., n]`` (list loss) or
            ``inputs -> embeddings [N, d]`` (embedding loss).
        loss: a rankloss loss module (``kind`` ``"list"`` or ``"embedding"``, a
            ``CombinedLoss`` included).
        metrics: metric names of :func:`rankloss.metrics.compute`, logged each step.
        optimizer: ``parameters -> optimizer``; default ``torch.optim.Adam(lr=lr)``.
        lr: learning rate of the default optimizer.
        train_metrics: also log the metrics on training batches (default: validation and test
            only).

    Returns (each step): the loss of the batch, a scalar.

    Cost: the model's forward plus the loss, plus ``O(B n log n)`` per metric (``O(N^2 d)``
    for the in-batch similarity of an embedding loss, computed once per step without
    gradients).

    Raises:
        TypeError: ``loss`` has no ``kind`` of ``"list"`` or ``"embedding"`` (when built).
        ValueError: an unknown metric name or ``lr <= 0`` (when built); a batch of the wrong
            form (at the step).
    """

    def __init__(
        self,
        model: nn.Module,
        loss: nn.Module,
        *,
        metrics: Sequence[str] = ("ndcg@10",),
        optimizer: OptimizerFactory | None = None,
        lr: float = 1e-3,
        train_metrics: bool = False,
    ) -> None:
        super().__init__()
        where = type(self).__name__
        kind = getattr(loss, "kind", None)
        if kind not in ("list", "embedding"):
            raise TypeError(
                f"{where}: loss must be a rankloss list or embedding loss, got "
                f"{type(loss).__name__} (kind {kind!r})"
            )
        if isinstance(metrics, str):
            metrics = (metrics,)
        for name in metrics:
            rank_metrics.parse_metric(name)
        if not (isinstance(lr, (int, float)) and lr > 0):
            raise ValueError(f"{where}: lr must be > 0, got {lr}")
        self.model = model
        self.loss = loss
        self.kind: str = kind
        self.model_takes_mask = _takes_mask(model)
        # A parameter named ``mask`` (keyword-only included) gets it by name.
        self._mask_by_name = _names_mask(model)
        self.metric_names = tuple(metrics)
        self.optimizer_factory = optimizer
        self.lr = float(lr)
        self.train_metrics = bool(train_metrics)

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        return self.model(*args, **kwargs)

    # ----------------------------------------------------------------------------------------
    # batches

    def _list_step(self, batch: Any) -> tuple[Tensor, tuple[Tensor, Tensor, Tensor | None]]:
        if isinstance(batch, Mapping):
            features, labels, mask = batch["features"], batch["labels"], batch.get("mask")
        elif isinstance(batch, (tuple, list)) and len(batch) in (2, 3):
            features, labels = batch[0], batch[1]
            mask = batch[2] if len(batch) == 3 else None
        else:
            raise ValueError(
                f"{type(self).__name__}: a list-loss batch is {{'features', 'labels'[, 'mask']}} "
                f"or (features, labels[, mask]), got {type(batch).__name__}"
            )
        if mask is not None and self.model_takes_mask:
            scores = (
                self.model(features, mask=mask)
                if self._mask_by_name
                else self.model(features, mask)
            )
        else:
            scores = self.model(features)
        return self.loss(scores, labels, mask), (scores, labels, mask)

    def _embedding_step(self, batch: Any) -> tuple[Tensor, tuple[Tensor, Tensor, Tensor | None]]:
        where = type(self).__name__
        similarity = getattr(self.loss, "similarity", "cosine")
        if not isinstance(similarity, str):
            similarity = "cosine"
        if isinstance(batch, Mapping) and "keys" in batch:
            queries, keys = self.model(batch["queries"]), self.model(batch["keys"])
            value = self.loss(queries, keys=keys)
            with torch.no_grad():
                scores = pairwise_similarity(queries.float(), keys.float(), similarity)
            n = scores.shape[0]
            return value, (scores, torch.eye(n, device=scores.device), None)
        if isinstance(batch, Mapping):
            inputs, labels = batch["inputs"], batch["labels"]
        elif isinstance(batch, (tuple, list)) and len(batch) == 2:
            inputs, labels = batch
        else:
            raise ValueError(
                f"{where}: an embedding-loss batch is {{'inputs', 'labels'}}, (inputs, labels) "
                f"or {{'queries', 'keys'}}, got {type(batch).__name__}"
            )
        embeddings = self.model(inputs)
        value = self.loss(embeddings, labels)
        with torch.no_grad():
            scores = pairwise_similarity(embeddings.float(), None, similarity)
            relevant = (labels[:, None] == labels[None, :]).float()
            mask = ~torch.eye(len(labels), dtype=torch.bool, device=scores.device)
        return value, (scores, relevant, mask)

    def _step(self, batch: Any, stage: str) -> Tensor:
        if self.kind == "list":
            value, (scores, labels, mask) = self._list_step(batch)
        else:
            value, (scores, labels, mask) = self._embedding_step(batch)
        size = int(scores.shape[0]) if scores.dim() else 1
        self.log(f"{stage}/loss", value, prog_bar=True, batch_size=size)
        if stage != "train" or self.train_metrics:
            with torch.no_grad():
                for name in self.metric_names:
                    result = rank_metrics.compute(
                        name, scores.detach(), labels, mask, reduction="mean"
                    )
                    self.log(f"{stage}/{name}", result, batch_size=size)
        return value

    def training_step(self, batch: Any, batch_idx: int) -> Tensor:
        return self._step(batch, "train")

    def validation_step(self, batch: Any, batch_idx: int) -> Tensor:
        return self._step(batch, "val")

    def test_step(self, batch: Any, batch_idx: int) -> Tensor:
        return self._step(batch, "test")

    def configure_optimizers(self) -> torch.optim.Optimizer:
        if self.optimizer_factory is not None:
            return self.optimizer_factory(self.parameters())
        return torch.optim.Adam(self.parameters(), lr=self.lr)

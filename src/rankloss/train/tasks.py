"""Ready-made tasks: learning to rank lists, embeddings with labels, recommendation, and
text retrieval. A task owns the data: its batches, the loss of a batch, and evaluation.

A task calls its loss in the form the loss's :attr:`~rankloss.losses.Loss.kind` names (a
:class:`~rankloss.losses.CombinedLoss` has a kind too): a ``"list"`` loss as
``loss(scores, labels, mask)``, an ``"embedding"`` loss as ``loss(embeddings, labels)`` or
``loss(queries, labels, keys=keys)``. A loss of a kind the task cannot use is a ``TypeError``
naming the loss, its kind and the kinds the task takes (:func:`check_loss_kind`), raised when
the :class:`~rankloss.train.Trainer` is built (``task.check_loss``) and at every step.

Evaluation uses :mod:`rankloss.metrics` and its names: ``recall@k`` is the fraction of the
relevant items among the first ``k``, ``hit@k`` is 1 when any relevant item is among them.

Under ``torch.distributed`` (several processes, see ``docs/distributed.md``),
:class:`LTRTask` and :class:`EmbeddingTask` take ``rank`` and ``world_size`` in
``train_batches`` and ``evaluate``: training draws each global batch of ``world_size *
batch_size`` exactly as one process with that batch size would, and gives rank ``r`` its
consecutive slice; evaluation scores a slice of the split on each rank and gathers what the
metrics need, so that every rank reports the numbers of one process.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal, cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rankloss import metrics
from rankloss._core import params
from rankloss._core.ranking import dcg_at_k, gain
from rankloss.data.batching import index_batches, list_batches
from rankloss.data.types import (
    LabelledDataset,
    LTRDataset,
    LTRSplit,
    RecDataset,
    TextRetrievalDataset,
)
from rankloss.distributed import DistributedLoss
from rankloss.distributed.metrics import embedding_retrieval_metrics as _gathered_retrieval
from rankloss.distributed.metrics import mean_per_list, shard_range

__all__ = [
    "LTRTask",
    "EmbeddingTask",
    "RecsysTask",
    "TextRetrievalTask",
    "loss_kind",
    "check_loss_kind",
]

LossFn = Callable[..., Tensor]

#: How :class:`EmbeddingTask` and :class:`TextRetrievalTask` call their loss.
Form = Literal["auto", "embedding", "lists"]

_FORM_KINDS: dict[str, tuple[str, ...]] = {
    "auto": ("embedding", "list"),
    "embedding": ("embedding",),
    "lists": ("list",),
}


def loss_kind(loss: object) -> str | None:
    """The ``kind`` of a rankloss loss module or :class:`~rankloss.losses.CombinedLoss`
    (``"list"``, ``"embedding"``, ``"adversarial"``); ``None`` for any other callable."""
    kind = getattr(loss, "kind", None)
    return kind if isinstance(kind, str) else None


def _describe(loss: object) -> str:
    name = getattr(loss, "registered_name", None)
    if name is not None:
        return f"{name!r} ({type(loss).__name__})"
    named_terms = getattr(loss, "named_terms", None)
    if callable(named_terms):
        terms = " + ".join(f"{weight:g} * {part}" for part, weight in named_terms())
        return f"{type(loss).__name__}({terms})"
    return type(loss).__name__


def check_loss_kind(owner: str, loss: object, kinds: Sequence[str]) -> str | None:
    """Check that ``loss`` is of one of ``kinds``; returns its kind (``None`` for a callable
    without one, which is taken as it is).

    Raises:
        TypeError: ``"<owner>: the loss 'triplet' (TripletLoss) is of kind 'embedding'; this
            task needs a loss of kind 'list'"``.

    >>> from rankloss.losses import get
    >>> check_loss_kind("LTRTask", get("ranknet"), ("list",))
    'list'
    """
    kind = loss_kind(loss)
    if kind is not None and kind not in kinds:
        needed = " or ".join(repr(k) for k in kinds)
        raise TypeError(
            f"{owner}: the loss {_describe(loss)} is of kind {kind!r}; this task needs a loss "
            f"of kind {needed}"
        )
    return kind


def _resolve_form(owner: str, form: Form, loss: object) -> Literal["embedding", "lists"]:
    """The call form of ``loss``: ``form`` if given, else the one its kind names."""
    kind = check_loss_kind(f"{owner}(form={form!r})", loss, _FORM_KINDS[form])
    if form != "auto":
        return form
    if kind is None:
        raise TypeError(
            f"{owner}: form='auto' needs a rankloss loss module (it has a kind); for "
            f"{type(loss).__name__} pass form='embedding' (loss(embeddings, labels)) or "
            "form='lists' (loss(scores, labels, mask))"
        )
    return "embedding" if kind == "embedding" else "lists"


def _check_takes_keys(owner: str, loss: object) -> None:
    """``TypeError`` unless ``loss`` can be called as ``loss(queries, ids, keys=keys)``: a
    rankloss loss that declares ``takes_keys = False`` (the proxy losses) or a callable whose
    signature has no ``keys`` cannot."""
    takes = bool(getattr(loss, "takes_keys", True))
    if takes:
        try:
            forward: Any = getattr(loss, "forward", loss)
            parameters = inspect.signature(forward).parameters.values()
        except (TypeError, ValueError):  # no signature to read: the call decides
            return
        takes = any(p.name == "keys" or p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters)
    if not takes:
        raise TypeError(
            f"{owner}: {type(loss).__name__} takes no keys=: this task calls an embedding loss "
            "as loss(queries, ids, keys=documents), query against document; a loss over class "
            "labels alone (a proxy loss with learned class centres) has no such form"
        )


def _check_form(owner: str, form: str) -> None:
    if form not in _FORM_KINDS:
        raise ValueError(f"{owner}: form must be 'auto', 'embedding' or 'lists', got {form!r}")


def _mean(values: Tensor) -> float:
    """Mean over lists, leaving out NaN (lists with nothing relevant)."""
    values = values.float()
    keep = ~torch.isnan(values)
    return float(values[keep].mean()) if keep.any() else float("nan")


def _device(model: nn.Module) -> torch.device:
    parameter = next(model.parameters(), None)
    return parameter.device if parameter is not None else torch.device("cpu")


# ============================================================================ learning to rank
#: The feature transforms of :class:`LTRTask`.
FEATURE_TRANSFORMS = ("log1p", "standardize", "none")


def _signed_log1p(features: Tensor) -> Tensor:
    return torch.sign(features) * torch.log1p(features.abs())


def _fit_feature_transform(
    split: LTRSplit, method: str = "log1p"
) -> Callable[[Tensor, Tensor], Tensor]:
    r"""A feature transform fitted on the real documents of ``split`` (the training split).

    .. math::

        \tilde x_j = \frac{g(x_j) - \mu_j}{\sigma_j}, \qquad
        g(x) = \operatorname{sign}(x) \log(1 + |x|) \ (\text{"log1p"}), \quad
        g(x) = x \ (\text{"standardize"})

    with :math:`\mu_j, \sigma_j` the mean and (population) standard deviation of feature
    :math:`j` after :math:`g` over every real document of ``split``; a feature constant there
    becomes 0. ``"none"`` returns the features as they are. The transform of Qin et al.,
    *Are Neural Rankers still Outperformed by Gradient Boosted Decision Trees?*, ICLR 2021.

    Args:
        split: the split the statistics come from (``features [Q, n, f]``, ``mask [Q, n]``).
        method: ``"log1p"``, ``"standardize"`` or ``"none"``.

    Returns:
        ``transform(features [..., n, f], mask [..., n]) -> [..., n, f]`` (padding set to 0).
        Cost: one pass over the split, :math:`O(N f)`.
    """
    method = params.choice("LTRTask", "feature_transform", method, FEATURE_TRANSFORMS)
    if method == "none":
        return lambda features, mask: features
    log = method == "log1p"
    real = split.features[split.mask].double()
    real = _signed_log1p(real) if log else real
    mean = real.mean(0) if len(real) else torch.zeros(split.num_features, dtype=torch.float64)
    std = real.std(0, unbiased=False) if len(real) else torch.ones_like(mean)
    constant = std <= 1e-12
    scale = torch.where(constant, torch.zeros_like(std), 1.0 / std.clamp_min(1e-12))

    def transform(features: Tensor, mask: Tensor) -> Tensor:
        x = features.double()
        x = _signed_log1p(x) if log else x
        x = (x - mean) * scale
        return torch.where(mask.unsqueeze(-1), x, 0.0).to(features.dtype)

    return transform


def _keep_relevant(
    batch: LTRSplit, max_items: int, *, generator: torch.Generator | None = None
) -> LTRSplit:
    r"""At most ``max_items`` documents of each list, its relevant ones first.

    Each list keeps all its relevant documents (label > 0) up to ``max_items`` (a random
    ``max_items`` of them when it has more), then fills the rest with non-relevant documents
    drawn at random; a shorter list is kept whole. The selection of
    :class:`rankloss.mining.ListSampler` on padded lists; kept documents keep their order.

    Args:
        batch: lists ``features [B, n, f]``, ``labels [B, n]``, ``mask [B, n]``.
        max_items: the most documents a list keeps (``>= 1``).
        generator: the random source.

    Returns:
        An :class:`~rankloss.data.types.LTRSplit` of ``min(n, max_items)`` columns.
        Cost: :math:`O(B n \log n)`.
    """
    b, n = batch.mask.shape
    if n <= max_items:
        return batch
    keys = torch.rand(b, n, generator=generator).to(batch.mask.device)
    relevant = (batch.labels > 0) & batch.mask
    keys = torch.where(relevant, keys, keys + 1.0)  # relevant documents before the others
    keys = torch.where(batch.mask, keys, torch.full_like(keys, 3.0))  # padding last
    chosen = torch.topk(-keys, max_items, dim=-1).indices.sort(dim=-1).values
    features = torch.gather(
        batch.features, 1, chosen.unsqueeze(-1).expand(-1, -1, batch.features.shape[-1])
    )
    return LTRSplit(
        features,
        torch.gather(batch.labels, 1, chosen),
        torch.gather(batch.mask, 1, chosen),
        batch.query_ids,
    )


@dataclass
class ShardOfLists(LTRSplit):
    """One rank's slice of a global batch of lists that does not split evenly over the ranks:
    its loss (a mean over its lists) is multiplied by ``loss_scale = lists here * world_size /
    lists in the global batch``, so the mean over ranks equals the mean over all the lists."""

    loss_scale: float = 1.0


class LTRTask:
    """Padded query lists (:class:`~rankloss.data.types.LTRDataset`): the model maps
    ``(features [B, n, f], mask [B, n])`` to scores ``[B, n]``; the loss (kind ``"list"``) is
    called as ``loss(scores, labels, mask)``.

    Args:
        data: the data set.
        batch_size: lists per batch.
        max_items: in training, keep at most this many documents of a longer list: all its
            relevant documents up to the cap (a random subset of them when there are more),
            then random non-relevant ones (seeded), as :class:`rankloss.mining.ListSampler`.
        ks: cut-offs of the reported ``ndcg@k``; ``map`` and ``mrr`` (label >= 1 relevant) too.
        eval_batch_size: lists per batch in evaluation.
        feature_transform: ``"log1p"`` (signed ``log1p``, then per-feature standardisation),
            ``"standardize"`` (per-feature standardisation) or ``"none"``; the statistics are
            fitted on the real documents of the training split only and applied to every
            split; a feature constant there becomes 0. ``"log1p"`` is the transform of Qin et
            al., *Are Neural Rankers still Outperformed by Gradient Boosted Decision Trees?*,
            ICLR 2021.
    """

    def __init__(
        self,
        data: LTRDataset,
        *,
        batch_size: int = 16,
        max_items: int | None = None,
        ks: Sequence[int] = (1, 5, 10),
        eval_batch_size: int = 64,
        feature_transform: str = "none",
    ) -> None:
        if max_items is not None:
            max_items = params.positive_int("LTRTask", "max_items", max_items)
        transform = _fit_feature_transform(data.train, feature_transform)
        if feature_transform != "none":
            data = LTRDataset(
                data.train.map_features(transform),
                data.test.map_features(transform),
                data.validation.map_features(transform) if data.validation is not None else None,
                data.card,
            )
        self.data, self.batch_size, self.max_items = data, batch_size, max_items
        self.ks, self.eval_batch_size = tuple(ks), eval_batch_size
        self.feature_transform = feature_transform

    def check_loss(self, loss: LossFn) -> None:
        """``TypeError`` unless ``loss`` is a list loss (or a callable without a kind)."""
        check_loss_kind("LTRTask", loss, ("list",))

    def train_batches(
        self, generator: torch.Generator, *, rank: int = 0, world_size: int = 1
    ) -> Iterator[LTRSplit]:
        """Batches of ``batch_size`` lists; with ``world_size > 1``, rank ``rank``'s slice of
        each global batch of ``world_size * batch_size`` lists (a last global batch with fewer
        lists than ranks is dropped). A slice of a global batch that does not split evenly
        (7 lists on 2 ranks: 4 and 3) is a :class:`ShardOfLists` whose ``loss_scale`` weights
        its loss so that the mean over ranks that DistributedDataParallel takes is the mean
        over the global batch's lists."""
        batches: Iterator[LTRSplit] = list_batches(
            self.data.train, self.batch_size * world_size, shuffle=True, generator=generator
        )
        if self.max_items is not None:
            cap = self.max_items
            batches = (_keep_relevant(batch, cap, generator=generator) for batch in batches)
        if world_size == 1:
            yield from batches
            return
        for batch in batches:
            if len(batch) >= world_size:
                start, stop = shard_range(len(batch), rank, world_size)
                shard = batch.subset(torch.arange(start, stop))
                if len(batch) % world_size:
                    scale = (stop - start) * world_size / len(batch)
                    shard = ShardOfLists(**vars(shard), loss_scale=scale)
                yield shard

    def training_step(self, model: nn.Module, batch: LTRSplit, loss: LossFn) -> Tensor:
        self.check_loss(loss)
        scores = model(batch.features, batch.mask)
        value = loss(scores.float(), batch.labels, batch.mask)
        if isinstance(loss, DistributedLoss):  # it weights each rank by the global count
            return value
        scale = getattr(batch, "loss_scale", 1.0)
        return value if scale == 1.0 else value * scale

    def scores(self, model: nn.Module, split: LTRSplit) -> Tensor:
        device = _device(model)
        parts = []
        for index in index_batches(len(split), self.eval_batch_size, shuffle=False):
            f, m = split.features[index].to(device), split.mask[index].to(device)
            parts.append(model(f, m).float().cpu())
        return torch.cat(parts)

    def evaluate(
        self, model: nn.Module, split: str, *, rank: int = 0, world_size: int = 1
    ) -> dict[str, float]:
        """``ndcg@k``, ``map``, ``mrr`` means over the lists of ``split``; with ``world_size >
        1`` each rank scores its slice of the lists and the per-list values are gathered
        (:func:`rankloss.distributed.metrics.mean_per_list`)."""
        data = self.data.split(split)
        if world_size > 1:
            start, stop = shard_range(len(data), rank, world_size)
            data = data.subset(torch.arange(start, stop))
        scores = self.scores(model, data) if len(data) else torch.zeros(data.mask.shape)
        values = {f"ndcg@{k}": metrics.ndcg(scores, data.labels, data.mask, k=k) for k in self.ks}
        values["map"] = metrics.average_precision(scores, data.labels, data.mask)
        values["mrr"] = metrics.reciprocal_rank(scores, data.labels, data.mask)
        if world_size > 1:
            return mean_per_list(values)
        return {name: _mean(v) for name, v in values.items()}


# ============================================================================ embeddings
@dataclass
class _Labelled:
    x: Tensor
    y: Tensor


class EmbeddingTask:
    """Labelled samples (:class:`~rankloss.data.types.LabelledDataset`): the model maps
    ``x [N, ...]`` to embeddings ``[N, d]``.

    The loss form follows the loss's ``kind`` (``form="auto"``, the default):

    * an ``"embedding"`` loss (contrastive, triplet, ..., or a combination of them) is called
      as ``loss(embeddings, labels)``;
    * a ``"list"`` loss makes every sample a query ranking the rest of its batch by cosine
      similarity (times ``scale``), same class = relevant:
      ``loss(scores [B, B], labels [B, B], mask)`` with the sample itself masked out.

    ``form="embedding"`` or ``form="lists"`` fixes the form, for a callable without a kind.
    A loss of another kind is a ``TypeError``.

    Batches hold ``per_class`` samples from each of ``batch_size // per_class`` classes (at
    most every class), drawn by :class:`rankloss.mining.MPerClassSampler`.
    Evaluation: :func:`rankloss.metrics.embedding_retrieval_metrics` on the split
    (leave-one-out: each sample queries the others), or against the ``reference`` split:
    ``precision@1``, ``hit@k`` (a sample of the class among the ``k`` nearest),
    ``r_precision``, ``map@r``, ``ndcg@k``.
    """

    def __init__(
        self,
        data: LabelledDataset,
        *,
        batch_size: int = 64,
        per_class: int = 4,
        batches_per_epoch: int | None = None,
        form: Form = "auto",
        scale: float = 10.0,
        ks: Sequence[int] = (1, 10),
        reference: str | None = None,
        eval_batch_size: int = 512,
    ) -> None:
        _check_form("EmbeddingTask", form)
        self.data, self.batch_size, self.per_class = data, batch_size, per_class
        self.batches_per_epoch, self.form, self.scale = batches_per_epoch, form, scale
        self.ks, self.reference, self.eval_batch_size = tuple(ks), reference, eval_batch_size

    def check_loss(self, loss: LossFn) -> None:
        """``TypeError`` unless ``loss`` is an embedding or list loss usable with ``form``."""
        _resolve_form("EmbeddingTask", self.form, loss)

    def train_batches(
        self, generator: torch.Generator, *, rank: int = 0, world_size: int = 1
    ) -> Iterator[_Labelled]:
        """Batches of ``per_class`` samples of each of ``batch_size // per_class`` classes;
        with ``world_size > 1``, rank ``rank``'s slice (whole classes) of each global batch of
        ``world_size * batch_size`` samples (:class:`~rankloss.mining.MPerClassSampler` with
        ``shard=True``), whose class count is rounded down to a multiple of ``world_size``."""
        from rankloss.mining import MPerClassSampler

        train = self.data.train
        # As many classes per batch as fit, at most every class of the training split.
        total = self.batch_size * world_size
        classes = min(total // self.per_class, int(torch.unique(train.y).numel()))
        classes = max(1, classes // world_size)  # of one rank
        sampler = MPerClassSampler(
            train.y,
            self.per_class,
            classes * self.per_class,
            num_batches=self.batches_per_epoch or max(1, len(train) // total),
            generator=generator,
            rank=rank,
            world_size=world_size,
            shard=True,
        )
        for index in sampler:
            rows = torch.as_tensor(index)
            yield _Labelled(train.x[rows], train.y[rows])

    def training_step(self, model: nn.Module, batch: _Labelled, loss: LossFn) -> Tensor:
        form = _resolve_form("EmbeddingTask", self.form, loss)
        embeddings = model(batch.x).float()
        if form == "embedding":
            return loss(embeddings, batch.y)
        z = F.normalize(embeddings, dim=-1)
        scores = self.scale * (z @ z.T)
        labels = (batch.y.unsqueeze(0) == batch.y.unsqueeze(1)).float()
        mask = ~torch.eye(len(batch.y), dtype=torch.bool, device=scores.device)
        return loss(scores, labels, mask)

    def embed(self, model: nn.Module, x: Tensor) -> Tensor:
        device = _device(model)
        parts = [
            model(x[i : i + self.eval_batch_size].to(device)).float().cpu()
            for i in range(0, len(x), self.eval_batch_size)
        ]
        return torch.cat(parts)

    def evaluate(
        self, model: nn.Module, split: str, *, rank: int = 0, world_size: int = 1
    ) -> dict[str, float]:
        """Retrieval metrics of ``split``; with ``world_size > 1`` each rank embeds its slice
        of the queries (and of the reference split) and the embeddings are gathered, so the
        gallery is the whole split (see
        :func:`rankloss.distributed.metrics.embedding_retrieval_metrics`)."""
        data = self.data.split(split)
        retrieval = metrics.embedding_retrieval_metrics
        if world_size > 1:
            retrieval = _gathered_retrieval
        start, stop = shard_range(len(data.y), rank, world_size)
        query = self.embed(model, data.x[start:stop])
        if self.reference is None:
            return retrieval(query, data.y[start:stop], ks=self.ks)
        ref = self.data.split(self.reference)
        start, stop = shard_range(len(ref.y), rank, world_size)
        ref_embeddings = self.embed(model, ref.x[start:stop])
        return retrieval(
            query,
            data.y[start:stop],
            ref_embeddings,
            ref.y[start:stop],
            ks=self.ks,
            exclude_self=False,
        )


# ============================================================================ recommendation
def _top_k_metrics(
    scores: Tensor, labels: Tensor, mask: Tensor, ks: Sequence[int]
) -> dict[str, Tensor]:
    """Full-catalogue ``recall@k`` (the fraction of the held-out items among the top ``k``),
    ``ndcg@k`` (linear gain, as :func:`rankloss.metrics.ndcg`) and ``hit@k`` (1 when any
    held-out item is among them) per row, with ``torch.topk`` (rows without held-out items give
    0). The definitions of :func:`rankloss.metrics.recall`, :func:`~rankloss.metrics.ndcg` and
    :func:`~rankloss.metrics.hit_rate`, without a full sort of the catalogue; every held-out
    item (``label > 0``) is relevant."""
    scores = torch.where(mask, scores, torch.full_like(scores, -torch.inf))
    relevant = (labels > 0) & mask
    total = relevant.sum(-1).clamp_min(1)
    gains = torch.where(relevant, gain(labels, "linear"), 0.0)
    out = {}
    for k in ks:
        k_ = min(k, scores.shape[-1])
        top = torch.topk(scores, k_, dim=-1).indices
        rel = relevant.gather(1, top)
        dcg = dcg_at_k(gains.gather(1, top))
        ideal = dcg_at_k(torch.topk(gains, k_, dim=-1).values)
        out[f"recall@{k}"] = rel.sum(-1) / total
        out[f"ndcg@{k}"] = torch.where(ideal > 0, dcg / ideal.clamp_min(1e-12), 0.0)
        out[f"hit@{k}"] = rel.any(-1).float()
    return out


@dataclass
class _UserLists:
    users: Tensor  # [B]
    items: Tensor  # [B, n]
    labels: Tensor  # [B, n]
    mask: Tensor  # [B, n]


class RecsysTask:
    """Users x items (:class:`~rankloss.data.types.RecDataset`): the model maps
    ``(users [B], items [B, n])`` to scores ``[B, n]`` and has ``full_scores(users)``.

    Each training list is one user: up to ``positives`` of their training items (labels = gains:
    1 for implicit feedback, the rating for graded) plus ``negatives`` items drawn uniformly
    from the catalogue (label = the user's training gain of that item, usually 0). The loss
    (kind ``"list"``) is called as ``loss(scores, labels, mask)``.

    Evaluation ranks the full catalogue for every user with held-out items in the split,
    excluding the user's training items (and, for ``test``, validation items):
    ``recall@k`` (fraction of the held-out items in the top ``k``), ``ndcg@k``, ``hit@k``.

    ``temperature`` divides the training scores before the loss, ``loss(s / T, labels, mask)``
    (evaluation ranks by the scores themselves, which ``T`` does not reorder).
    """

    def __init__(
        self,
        data: RecDataset,
        *,
        batch_size: int = 64,
        positives: int = 16,
        negatives: int = 64,
        lists_per_user: int = 1,
        ks: Sequence[int] = (10,),
        eval_batch_size: int = 256,
        temperature: float = 1.0,
    ) -> None:
        self.temperature = params.positive("RecsysTask", "temperature", temperature)
        self.data, self.batch_size = data, batch_size
        self.positives, self.negatives, self.lists_per_user = positives, negatives, lists_per_user
        self.ks, self.eval_batch_size = tuple(ks), eval_batch_size
        train = data.train
        self.train_gains = torch.zeros(data.num_users, data.num_items)
        self.train_gains[train.user, train.item] = data.gains(train)
        self.user_items = train.per_user(data.num_users, "item")
        self.users = torch.tensor([u for u, i in enumerate(self.user_items) if len(i)])

    def check_loss(self, loss: LossFn) -> None:
        """``TypeError`` unless ``loss`` is a list loss (or a callable without a kind)."""
        check_loss_kind("RecsysTask", loss, ("list",))

    def train_batches(self, generator: torch.Generator) -> Iterator[_UserLists]:
        users = self.users.repeat(self.lists_per_user)
        for index in index_batches(len(users), self.batch_size, generator=generator):
            batch_users = users[index]
            pos, pos_mask = [], []
            for u in batch_users.tolist():
                items = self.user_items[u]
                chosen = items[torch.randperm(len(items), generator=generator)[: self.positives]]
                pad = self.positives - len(chosen)
                pos.append(torch.cat([chosen, chosen.new_zeros(pad)]))
                pos_mask.append(torch.arange(self.positives) < len(chosen))
            negatives = torch.randint(
                self.data.num_items, (len(batch_users), self.negatives), generator=generator
            )
            items = torch.cat([torch.stack(pos), negatives], 1)
            mask = torch.cat(
                [torch.stack(pos_mask), torch.ones_like(negatives, dtype=torch.bool)], 1
            )
            labels = self.train_gains[batch_users.unsqueeze(1), items]
            yield _UserLists(batch_users, items, labels, mask)

    def training_step(self, model: nn.Module, batch: _UserLists, loss: LossFn) -> Tensor:
        self.check_loss(loss)
        scores = model(batch.users, batch.items).float() / self.temperature
        return loss(scores, batch.labels, batch.mask)

    def evaluate(self, model: nn.Module, split: str) -> dict[str, float]:
        data = self.data
        users, items, gains = data.held_out(split)
        seen_splits = ("train", "validation") if split == "test" else ("train",)
        seen_user, seen_item = data.seen(seen_splits)
        device = _device(model)
        sums: dict[str, float] = {}
        counted = 0
        for start in range(0, len(users), self.eval_batch_size):
            u = users[start : start + self.eval_batch_size]
            scores = cast(Any, model).full_scores(u.to(device)).float().cpu()
            row = torch.full((data.num_users,), -1, dtype=torch.long)
            row[u] = torch.arange(len(u))
            labels = torch.zeros(len(u), data.num_items)
            for r in range(len(u)):
                labels[r, items[start + r]] = gains[start + r]
            mask = torch.ones(len(u), data.num_items, dtype=torch.bool)
            hit = row[seen_user] >= 0
            mask[row[seen_user[hit]], seen_item[hit]] = False
            mask |= labels > 0  # a held-out item is never excluded
            for name, values in _top_k_metrics(scores, labels, mask, self.ks).items():
                sums[name] = sums.get(name, 0.0) + float(values.sum())
            counted += len(u)
        return {name: total / max(counted, 1) for name, total in sums.items()}


# ============================================================================ text retrieval
@dataclass
class _Pairs:
    queries: Any  # [B, f] features or list[str]
    documents: Any
    document_ids: Tensor  # [B] corpus index of each document: the class of its pair


class TextRetrievalTask:
    """Queries and documents (:class:`~rankloss.data.types.TextRetrievalDataset`).

    ``featurize(texts) -> [N, f]`` turns texts into model inputs once, up front (for example
    frozen sentence embeddings or hashed bags of words); with ``featurize=None`` the model gets
    the raw list of strings. The model (``query_model`` for queries if given) maps inputs to
    embeddings ``[N, d]``.

    Training batches are ``batch_size`` positive (query, document) pairs; the other documents of
    the batch are the negatives. The loss form follows the loss's ``kind`` as in
    :class:`EmbeddingTask`: an ``"embedding"`` loss is called in its (queries, keys) form,
    ``loss(q, document_ids, keys=d)`` (a document twice in a batch is no negative of its own
    queries); a ``"list"`` loss as ``loss(scale * cos(q, d) [B, B], eye(B), mask)``.

    ``guide`` is a frozen second model for losses that filter false negatives by a guide's
    similarity (:class:`~rankloss.losses.GuidedInfoNCELoss`, GISTEmbed; losses with
    ``takes_guide_similarity``): each step embeds the batch's queries and documents with it,
    without gradients, and passes ``guide_similarity = cos(g(queries), g(documents)) [B, B]``.
    Other losses never call the guide.

    Evaluation ranks the whole corpus for each query of the split: ``mrr@10``, ``recall@k``
    (the fraction of the query's relevant documents in the top ``k``), ``ndcg@k``.
    """

    def __init__(
        self,
        data: TextRetrievalDataset,
        featurize: Callable[[list[str]], Tensor] | None = None,
        *,
        batch_size: int = 128,
        form: Form = "auto",
        scale: float = 20.0,
        ks: Sequence[int] = (1, 10),
        query_model: nn.Module | None = None,
        eval_batch_size: int = 512,
        guide: nn.Module | None = None,
    ) -> None:
        _check_form("TextRetrievalTask", form)
        if guide is not None and not isinstance(guide, nn.Module):
            raise TypeError(
                f"TextRetrievalTask: guide must be an nn.Module, got {type(guide).__name__}"
            )
        self.guide = guide
        self.data, self.batch_size, self.form, self.scale = data, batch_size, form, scale
        self.ks, self.query_model, self.eval_batch_size = tuple(ks), query_model, eval_batch_size
        self.doc_ids = list(data.corpus)
        self.doc_index = {d: i for i, d in enumerate(self.doc_ids)}
        self.featurize = featurize
        self.doc_inputs = self._inputs([data.corpus[d] for d in self.doc_ids])
        self.query_inputs: dict[str, tuple[list[str], Any]] = {}
        for name in ("train", "validation", "test"):
            split = getattr(data, name)
            if split is not None:
                ids = list(split.queries)
                self.query_inputs[name] = (ids, self._inputs([split.queries[q] for q in ids]))
        if data.train is None:
            raise ValueError("TextRetrievalTask needs a train split")
        train_ids = self.query_inputs["train"][0]
        position = {q: i for i, q in enumerate(train_ids)}
        pairs = data.train.pairs()
        self.pair_query = torch.tensor([position[q] for q, _ in pairs])
        self.pair_doc = torch.tensor([self.doc_index[d] for _, d in pairs])

    def check_loss(self, loss: LossFn) -> None:
        """``TypeError`` unless ``loss`` is an embedding or list loss usable with ``form``; an
        embedding loss must take ``keys=`` (the (queries, keys) form: not a proxy loss)."""
        if _resolve_form("TextRetrievalTask", self.form, loss) == "embedding":
            _check_takes_keys("TextRetrievalTask", loss)

    def _inputs(self, texts: list[str]) -> Any:
        return self.featurize(texts) if self.featurize is not None else texts

    @staticmethod
    def _take(inputs: Any, index: Tensor) -> Any:
        if isinstance(inputs, Tensor):
            return inputs[index]
        return [inputs[i] for i in index.tolist()]

    def _query_model(self, model: nn.Module) -> nn.Module:
        return self.query_model if self.query_model is not None else model

    def trainable_modules(self) -> tuple[nn.Module, ...]:
        """Modules that train beside the trainer's model: the ``query_model``, if given (the
        :class:`~rankloss.train.Trainer` optimises, checkpoints and switches its mode with the
        model's)."""
        return () if self.query_model is None else (self.query_model,)

    def train_batches(self, generator: torch.Generator) -> Iterator[_Pairs]:
        queries = self.query_inputs["train"][1]
        for index in index_batches(
            len(self.pair_query),
            self.batch_size,
            generator=generator,
            drop_last=len(self.pair_query) > self.batch_size,
        ):
            documents = self.pair_doc[index]
            yield _Pairs(
                self._take(queries, self.pair_query[index]),
                self._take(self.doc_inputs, documents),
                documents,
            )

    def training_step(self, model: nn.Module, batch: _Pairs, loss: LossFn) -> Tensor:
        form = _resolve_form("TextRetrievalTask", self.form, loss)
        q = self._query_model(model)(batch.queries).float()
        d = model(batch.documents).float()
        if form == "embedding":
            ids = batch.document_ids.to(q.device)
            if self.guide is not None and getattr(loss, "takes_guide_similarity", False):
                return loss(q, ids, keys=d, guide_similarity=self._guide_similarity(batch))
            return loss(q, ids, keys=d)
        scores = self.scale * (F.normalize(q, dim=-1) @ F.normalize(d, dim=-1).T)
        labels = torch.eye(q.shape[0], device=q.device)
        return loss(scores, labels, torch.ones_like(labels, dtype=torch.bool))

    def _guide_similarity(self, batch: _Pairs) -> Tensor:
        """``cos(g(queries), g(documents)) [B, B]`` of the frozen guide, without gradients."""
        guide = cast(nn.Module, self.guide)
        was_training = guide.training
        guide.eval()
        with torch.no_grad():
            gq = F.normalize(guide(batch.queries).float(), dim=-1)
            gd = F.normalize(guide(batch.documents).float(), dim=-1)
        guide.train(was_training)
        return gq @ gd.T

    def _embed(self, model: nn.Module, inputs: Any) -> Tensor:
        parts = []
        device = _device(model)
        n = len(inputs)
        for i in range(0, n, self.eval_batch_size):
            chunk = inputs[i : i + self.eval_batch_size]
            if isinstance(chunk, Tensor):
                chunk = chunk.to(device)
            parts.append(F.normalize(model(chunk).float(), dim=-1).cpu())
        return torch.cat(parts)

    def evaluate(self, model: nn.Module, split: str) -> dict[str, float]:
        if split not in self.query_inputs:
            raise KeyError(f"TextRetrievalTask: no split {split!r}")
        ids, inputs = self.query_inputs[split]
        qrels = self.data.split(split).qrels
        docs = self._embed(model, self.doc_inputs)
        queries = self._embed(self._query_model(model), inputs)
        sums: dict[str, float] = {}
        for start in range(0, len(ids), 256):
            chunk = ids[start : start + 256]
            scores = queries[start : start + 256] @ docs.T
            labels = torch.zeros_like(scores)
            for r, q in enumerate(chunk):
                for d, rel in qrels.get(q, {}).items():
                    labels[r, self.doc_index[d]] = float(rel)
            parts = {"mrr@10": metrics.reciprocal_rank(scores, labels, k=10)}
            for k in self.ks:
                parts[f"recall@{k}"] = metrics.recall(scores, labels, k=k)
                parts[f"ndcg@{k}"] = metrics.ndcg(scores, labels, k=k)
            for name, values in parts.items():
                sums[name] = sums.get(name, 0.0) + float(torch.nan_to_num(values.float()).sum())
        return {name: total / max(len(ids), 1) for name, total in sums.items()}

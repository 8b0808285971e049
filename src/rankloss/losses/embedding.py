r"""Embedding-loss modules: a similarity, a miner and a loss of
:mod:`rankloss.functional.embedding`, composed.

Every module is an :class:`~rankloss.losses.base.EmbeddingLoss` (``kind = "embedding"``),
registered in family ``"embedding"``, and is called in one of two forms:

* ``loss(embeddings [N, d], labels [N])``: every other row is a candidate; equal integer labels
  make a positive pair, different labels a negative pair.
* ``loss(queries [N, d], keys=keys [N, d])``: key ``i`` is the positive of query ``i`` and the
  other keys are in-batch negatives; ``labels [N]`` may be given too (other keys of a query's
  class are then positives as well, or for :class:`InfoNCELoss` with
  ``false_negatives="mask"`` left out). The form is chosen by the ``keys`` keyword, never by a
  tensor's dtype.

Per call, ``ref_embeddings [M, d]`` (a queue, a gallery) are appended to the candidates (paired
by ``ref_labels [M]`` when given, else extra negatives), ``hard_negatives [N, d]`` or
``[N, h, d]`` (where a loss takes them) are negatives of every query, ``indices``
(:class:`~rankloss.mining.Pairs` or :class:`~rankloss.mining.Triplets`, for the pair and triplet
losses) restrict the tuples, and ``weights [N]`` weight the anchors.

The forward pass is the same for every loss: build the candidates
(:func:`rankloss._core.candidates.build_candidates`), compute their similarity
(:func:`rankloss._core.similarity.pairwise_similarity`, higher = closer), apply the miner (on the
detached similarity) or the given ``indices``, and call the functional loss. Every
hyper-parameter is checked when the module is built: ``"<Class>: <name> must be ..., got ..."``;
a value of the wrong type is a ``TypeError``.

>>> import torch
>>> from rankloss.losses.embedding import ContrastiveLoss, TripletLoss
>>> embeddings, labels = torch.randn(8, 4), torch.tensor([0, 0, 1, 1, 2, 2, 3, 3])
>>> loss = ContrastiveLoss() + 0.5 * TripletLoss(margin=0.2, miner="batch_hard")
>>> loss(embeddings, labels).shape
torch.Size([])
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import ClassVar, Literal

import torch
from torch import Tensor, nn

from rankloss import mining
from rankloss._core import params
from rankloss._core.candidates import FALSE_NEGATIVES, Candidates, build_candidates
from rankloss._core.reduce import Reduction, reduce_values
from rankloss._core.similarity import (
    SIMILARITIES,
    Similarity,
    similarity_of_checked_rows,
)
from rankloss._core.tuples import (
    Pairs,
    Triplets,
    from_indices_tuple,
    pairs_to_triplets,
    triplets_to_pairs,
)
from rankloss._core.validation import check_embeddings, computes_in_float32, shape_str
from rankloss.functional import embedding as F
from rankloss.functional import siglip as S
from rankloss.kernels.dispatch import IMPLS, Impl, resolve_impl
from rankloss.losses.base import LOSSES, EmbeddingLoss, register_loss
from rankloss.mining import Miner

__all__ = [
    "ContrastiveLoss",
    "TripletLoss",
    "InfoNCELoss",
    "NTXentLoss",
    "SupConLoss",
    "SigLIPLoss",
    "MultiSimilarityLoss",
    "CircleLoss",
    "MarginRankingLoss",
]

#: A miner as the pair and triplet losses call it (a :class:`~rankloss.mining.Miner`).
MinerFn = Callable[..., "Pairs | Triplets"]

FalseNegatives = Literal["mask", "positive"]


def _registered_similarity_losses(attribute: str) -> str:
    """The registered names of the similarity losses whose class has a true ``attribute``
    (for error messages: the list follows the registry, not a hand-kept copy)."""
    names = []
    for name in sorted(LOSSES.names()):
        cls = LOSSES.entry(name).obj
        if isinstance(cls, type) and issubclass(cls, SimilarityLoss) and getattr(cls, attribute):
            names.append(name)
    return ", ".join(names)


#: Candidates per block of the streaming path when ``impl="streaming"`` is given without
#: ``chunk_size``.
DEFAULT_CHUNK = 1024


def _resolve_miner(miner: object, where: str) -> MinerFn | None:
    """A miner name (built with :func:`rankloss.mining.get`), a miner object, or ``None``."""
    if miner is None:
        return None
    if isinstance(miner, str):
        return mining.get(miner)
    if callable(miner):
        return miner
    raise TypeError(
        f"{where}: miner must be a miner name (rankloss.mining.available()), a miner object "
        f"or None, got {type(miner).__name__}"
    )


def _check_pairs(pairs: Pairs, n: int, m: int, where: str) -> None:
    if len(pairs):
        for name, index, bound in (("anchor", pairs.anchor, n), ("other", pairs.other, m)):
            low, high = int(index.min()), int(index.max())
            if low < 0 or high >= bound:
                raise ValueError(
                    f"{where}: indices.{name} must index [0, {bound}), got values in "
                    f"[{low}, {high}] for {n} anchors and {m} candidates"
                )


def _restrict_pairs(
    tuples: Pairs | Triplets, positive: Tensor, negative: Tensor, where: str
) -> tuple[Tensor, Tensor]:
    """Keep only the pairs of ``tuples`` (a triplet gives its positive and negative pair)."""
    pairs = triplets_to_pairs(tuples) if isinstance(tuples, Triplets) else tuples
    n, m = positive.shape
    _check_pairs(pairs, n, m, where)
    pairs = Pairs(
        pairs.anchor.to(positive.device),
        pairs.other.to(positive.device),
        pairs.is_positive.to(positive.device),
        pairs.found,
    )
    mined_positive, mined_negative = pairs.to_masks(*positive.shape)
    return positive & mined_positive, negative & mined_negative


def _reverse(candidates: Candidates) -> Candidates:
    """The keys -> queries direction of the ``(queries, keys)`` form (candidates: the queries)."""
    n = candidates.num_queries
    return Candidates(
        queries=candidates.keys[:n],
        keys=candidates.queries,
        query_labels=candidates.query_labels,
        key_labels=candidates.query_labels,
        forced_negative=torch.zeros(n, dtype=torch.bool, device=candidates.queries.device),
        exclude_self=False,
        diagonal_only=candidates.diagonal_only,
        pair_form=True,
        in_batch=candidates.in_batch,
    )


def _in_batch(candidates: Candidates) -> bool:
    """The ``(queries, keys)`` form without labels: the positive of query ``i`` is key ``i`` and
    every other candidate (keys, references, hard negatives) is a negative."""
    if candidates.in_batch:
        return True
    n = candidates.num_queries
    return (
        candidates.pair_form
        and not candidates.diagonal_only
        and not candidates.exclude_self
        and bool(torch.equal(candidates.query_labels, _diagonal(candidates)))
        and bool(candidates.forced_negative[n:].all())
    )


def _diagonal(candidates: Candidates) -> Tensor:
    if candidates.in_batch:  # the labels of the queries are arange(N) already
        return candidates.query_labels
    return torch.arange(candidates.num_queries, device=candidates.queries.device)


def _in_batch_valid(candidates: Candidates) -> Tensor:
    return torch.full(
        (candidates.num_queries,),
        candidates.num_keys > 1,
        dtype=torch.bool,
        device=candidates.queries.device,
    )


class SimilarityLoss(EmbeddingLoss):
    """The shared forward of the embedding losses: candidates -> similarity -> tuples -> loss.

    Subclasses write a typed ``__init__`` and say which parts of a call they take:

    * :attr:`tuple_kind`: ``"pairs"`` or ``"triplets"`` for a loss that takes a ``miner`` and
      ``indices``; ``None`` for one that refuses them. A ``"triplets"`` loss's function
      receives ``triplets=``.
    * :attr:`takes_hard_negatives`: whether ``hard_negatives`` are accepted.
    * :attr:`module_only`: the hyper-parameters that shape the module (how the similarity
      matrix and the tuples are built, which path runs) and are not passed to the function.

    The default :meth:`_compute` calls the loss's registered function with every other
    hyper-parameter by its name; a loss whose function takes something else overrides it.
    """

    tuple_kind: ClassVar[Literal["pairs", "triplets"] | None] = None
    takes_hard_negatives: ClassVar[bool] = False
    module_only: ClassVar[frozenset[str]] = frozenset(
        {"similarity", "miner", "impl", "chunk_size", "reduction"}
    )

    similarity: Similarity

    def __init__(self, *, similarity: Similarity = "cosine", reduction: Reduction = "mean") -> None:
        super().__init__(reduction=reduction)
        self.similarity = params.choice(type(self).__name__, "similarity", similarity, SIMILARITIES)
        self._miner: MinerFn | None = None

    def _set_miner(self, miner: Miner | str | None) -> None:
        self.miner = miner
        self._miner = _resolve_miner(miner, type(self).__name__)

    def _init_impl(self, impl: Impl, chunk_size: int | None) -> None:
        """Check and keep ``impl`` and ``chunk_size`` (the losses with fused paths)."""
        where = type(self).__name__
        self.impl = params.choice(where, "impl", impl, IMPLS)
        if chunk_size is not None:
            params.positive_int(where, "chunk_size", chunk_size)
            if self.similarity not in F.CHUNKED_SIMILARITIES:
                raise ValueError(
                    f"{where}: similarity must be one of {list(F.CHUNKED_SIMILARITIES)} with "
                    f"chunk_size, got {self.similarity!r}"
                )
        if impl in ("streaming", "triton") and self.similarity not in F.CHUNKED_SIMILARITIES:
            raise ValueError(
                f"{where}: similarity must be one of {list(F.CHUNKED_SIMILARITIES)} with "
                f"impl={impl!r} (the fused paths compute blocks as matrix products), got "
                f"{self.similarity!r}"
            )
        self.chunk_size = chunk_size

    def _choose_impl(self, candidates: Candidates) -> str:
        """``"torch"``, ``"streaming"`` or ``"triton"`` for this call
        (:func:`rankloss.kernels.dispatch.resolve_impl`); ``chunk_size`` with ``impl="auto"``
        streams."""
        impl: str = getattr(self, "impl", "auto")
        chunk_size = getattr(self, "chunk_size", None)
        if impl == "auto" and chunk_size is not None:
            return "streaming"
        fused = self.similarity in F.CHUNKED_SIMILARITIES and self._miner is None
        # The contrastive kernels are correct but not yet tuned (slower than the direct path
        # on an H200 at N = 4096): "auto" does not pick them; impl="triton" runs them.
        return resolve_impl(
            impl,
            candidates.queries.device,
            where=type(self).__name__,
            elements=candidates.num_queries * candidates.num_keys,
            has_streaming=fused,
            has_triton=fused and impl == "triton",
        )

    def _unit_rows(self, candidates: Candidates) -> tuple[Tensor, Tensor, int]:
        """Queries and keys for the fused paths (normalised for cosine), and the block size."""
        queries, keys = candidates.queries, candidates.keys
        if self.similarity == "cosine":
            queries = nn.functional.normalize(queries, dim=1, eps=1e-12)
            keys = nn.functional.normalize(keys, dim=1, eps=1e-12)
        chunk = getattr(self, "chunk_size", None) or DEFAULT_CHUNK
        return queries, keys, chunk

    def _false_negatives(self) -> FalseNegatives:
        """How the ``(queries, keys)`` form with ``labels`` treats other keys of a class."""
        return "positive"

    def _check_parts(self, hard_negatives: Tensor | None, indices: object) -> None:
        where = type(self).__name__
        if hard_negatives is not None and not self.takes_hard_negatives:
            raise TypeError(
                f"{where} does not take hard_negatives (the losses that do: "
                f"{_registered_similarity_losses('takes_hard_negatives')}); pass them as "
                "ref_embeddings without ref_labels to make them negatives of every anchor"
            )
        if indices is None:
            return
        if self.tuple_kind is None:
            raise TypeError(
                f"{where} does not take indices; the pair and triplet losses "
                f"({_registered_similarity_losses('tuple_kind')}) do"
            )
        if not isinstance(indices, (Pairs, Triplets)):
            raise TypeError(
                f"{where}: indices must be rankloss.mining.Pairs or Triplets, got "
                f"{type(indices).__name__}"
            )
        if self._miner is not None:
            raise ValueError(
                f"{where}: pass either a miner (given at construction: {self.miner!r}) or "
                "indices, not both"
            )

    @computes_in_float32
    def forward(
        self,
        embeddings: Tensor,
        labels: Tensor | None = None,
        *,
        keys: Tensor | None = None,
        ref_embeddings: Tensor | None = None,
        ref_labels: Tensor | None = None,
        hard_negatives: Tensor | None = None,
        indices: Pairs | Triplets | tuple[Tensor, ...] | None = None,
        weights: Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """The loss of a batch of embeddings.

        Args:
            embeddings: ``[N, d]`` the anchors (the queries with ``keys``).
            labels: ``[N]`` integer class labels; required without ``keys``.
            keys: ``[N, d]``: key ``i`` is the positive of query ``i``.
            ref_embeddings: ``[M, d]`` extra candidates; ``ref_labels [M]`` pair them by label,
                without it they are negatives of every anchor.
            ref_labels: ``[M]`` integer labels of ``ref_embeddings``.
            hard_negatives: ``[N, d]`` or ``[N, h, d]`` extra negatives of every anchor (only
                the losses that take them).
            indices: :class:`~rankloss.mining.Pairs` or :class:`~rankloss.mining.Triplets`
                (or pytorch-metric-learning's indices tuple of 3 or 4 tensors)
                indexing anchors and candidates (the batch, or the keys, then the references,
                then the hard negatives): use these tuples only (pair and triplet losses, and
                not with a ``miner``).
            weights: ``[N]`` per-anchor weights.
            generator: the random source of a random miner (ignored otherwise).

        Returns:
            A scalar, or ``[N]`` with ``reduction="none"``.
        """
        where = type(self).__name__
        indices = from_indices_tuple(indices, where)
        self._check_parts(hard_negatives, indices)
        candidates = build_candidates(
            embeddings,
            labels,
            keys=keys,
            ref_embeddings=ref_embeddings,
            ref_labels=ref_labels,
            hard_negatives=hard_negatives,
            false_negatives=self._false_negatives(),
            where=where,
        )
        return self._loss(candidates, indices=indices, weights=weights, generator=generator)

    def _loss(
        self,
        candidates: Candidates,
        *,
        indices: Pairs | Triplets | None,
        weights: Tensor | None,
        generator: torch.Generator | None,
    ) -> Tensor:
        where = type(self).__name__
        similarity = similarity_of_checked_rows(
            candidates.queries, candidates.keys, self.similarity
        )
        positive, negative = candidates.masks()
        tuples = indices
        if self._miner is not None:
            tuples = self._miner(
                similarity.detach(),
                positive,
                negative,
                generator=generator,
                embedding_dim=candidates.queries.shape[1],
            )
            if not isinstance(tuples, (Pairs, Triplets)):
                raise TypeError(
                    f"{where}: the miner returned {type(tuples).__name__}; expected "
                    "rankloss.mining.Pairs or Triplets"
                )
        triplets: Triplets | None = None
        if tuples is not None:
            if self.tuple_kind == "pairs":
                positive, negative = _restrict_pairs(tuples, positive, negative, where)
            else:
                triplets = pairs_to_triplets(tuples) if isinstance(tuples, Pairs) else tuples
        return self._compute(similarity, positive, negative, triplets, weights)

    def _compute(
        self,
        similarity: Tensor,
        positive: Tensor,
        negative: Tensor,
        triplets: Triplets | None,
        weights: Tensor | None,
    ) -> Tensor:
        """The registered function of this loss on the similarity matrix and masks, with
        ``triplets`` for a triplet loss and every hyper-parameter not in :attr:`module_only`
        by its name (a name the function does not take is a ``TypeError``)."""
        function = type(self).registered_function()
        hyper = {k: v for k, v in self.hyper_parameters().items() if k not in self.module_only}
        if self.tuple_kind == "triplets":
            hyper["triplets"] = triplets
        return function(
            similarity, positive, negative, weights=weights, reduction=self.reduction, **hyper
        )


# --------------------------------------------------------------------------------------------
# Pair losses


def _init_streaming(
    module: SimilarityLoss, impl: Impl, chunk_size: int | None, supported: bool, why: str
) -> None:
    """Check ``impl``/``chunk_size`` at construction; refuse ``impl="streaming"`` (or a
    ``chunk_size``) where the options have no streaming path, saying why."""
    module._init_impl(impl, chunk_size)
    where = type(module).__name__
    if impl == "triton":
        raise ValueError(
            f"{where}: impl='triton' has no kernel for this loss (the kernels are InfoNCE, "
            "NT-Xent, SupCon and SigLIP); use 'auto', 'torch' or 'streaming'"
        )
    if not supported and (impl == "streaming" or chunk_size is not None):
        raise ValueError(
            f"{where}: impl='streaming' and chunk_size compute every pair of the labels in row "
            f"blocks; they do not support {why}"
        )


def _streaming_pair(
    module: SimilarityLoss,
    kind: str,
    candidates: Candidates,
    indices: Pairs | Triplets | None,
    weights: Tensor | None,
    hyper: dict[str, float | bool],
    supported: bool = True,
) -> Tensor | None:
    """The streaming loss of ``candidates`` when ``impl`` resolves to it, else ``None`` (the
    direct path runs). Streaming needs a dot or cosine similarity, no miner and no
    ``indices``."""
    where = type(module).__name__
    supported = supported and module._miner is None and module.similarity in F.CHUNKED_SIMILARITIES
    if indices is not None:
        if module.impl == "streaming" or module.chunk_size is not None:
            raise ValueError(
                f"{where}: impl='streaming' and chunk_size compute every pair of the labels; "
                "indices restrict the pairs: use impl='torch' with indices"
            )
        return None
    if module.impl == "auto" and module.chunk_size is not None and supported:
        choice = "streaming"
    else:
        choice = resolve_impl(
            module.impl,
            candidates.queries.device,
            where=where,
            elements=candidates.num_queries * candidates.num_keys,
            has_streaming=supported,
            has_triton=False,
        )
    if choice != "streaming":
        return None
    queries, keys, _ = module._unit_rows(candidates)
    return F.streaming_pair_loss(
        kind,
        candidates,
        queries,
        keys,
        chunk_size=module.chunk_size,
        weights=weights,
        reduction=module.reduction,
        **hyper,
    )


@register_loss(
    "contrastive",
    family="embedding",
    function=F.contrastive_loss,
    needs_pairs="any_pair",
    search_space={"pos_margin": ("float", 0.5, 1.0), "neg_margin": ("float", 0.0, 0.5)},
)
class ContrastiveLoss(SimilarityLoss):
    r"""Contrastive loss (Hadsell, Chopra and LeCun, CVPR 2006), on similarities.

    .. math::
        \ell_a = \operatorname{mean}_{p}\, [m_+ - s_{ap}]_+^{q}
               + \operatorname{mean}_{n}\, [s_{an} - m_-]_+^{q}

    (:func:`rankloss.functional.contrastive_loss`). A pair miner or a triplet miner (its pairs)
    restricts the pairs.

    Hyper-parameters: ``similarity='cosine'``, ``pos_margin=1.0``, ``neg_margin=0.0``
    (``pos_margin >= neg_margin``), ``squared=False``, ``miner=None``, ``reduction='mean'``,
    ``impl='auto'`` and ``chunk_size=None``: ``impl="streaming"`` (or a ``chunk_size``)
    computes the loss over row blocks of anchors, each block's gradient written out in the
    forward (recomputed in the backward with ``reduction="none"``)
    (:func:`rankloss.functional.streaming_pair_loss`; memory :math:`O(Nd + cM)` instead of
    :math:`O(NM)`), for the dot and cosine similarities without a miner or ``indices``;
    ``"auto"`` streams when the direct ``[N, M]`` matrix would exceed
    :data:`rankloss.kernels.dispatch.STREAMING_ABOVE` entries.
    """

    tuple_kind = "pairs"

    def __init__(
        self,
        *,
        similarity: Similarity = "cosine",
        pos_margin: float = 1.0,
        neg_margin: float = 0.0,
        squared: bool = False,
        miner: Miner | str | None = None,
        reduction: Reduction = "mean",
        impl: Impl = "auto",
        chunk_size: int | None = None,
    ) -> None:
        super().__init__(similarity=similarity, reduction=reduction)
        where = type(self).__name__
        _init_streaming(self, impl, chunk_size, miner is None, "a miner")
        self.pos_margin = params.number(where, "pos_margin", pos_margin)
        self.neg_margin = params.number(where, "neg_margin", neg_margin)
        if self.pos_margin < self.neg_margin:
            raise ValueError(
                f"{where}: pos_margin must be >= neg_margin ({self.neg_margin!r}), got "
                f"{self.pos_margin!r}; margins are on similarities (higher = closer)"
            )
        self.squared = params.boolean(where, "squared", squared)
        self._set_miner(miner)

    def _loss(
        self,
        candidates: Candidates,
        *,
        indices: Pairs | Triplets | None,
        weights: Tensor | None,
        generator: torch.Generator | None,
    ) -> Tensor:
        hyper = {"pos_margin": self.pos_margin, "neg_margin": self.neg_margin}
        hyper["squared"] = self.squared
        out = _streaming_pair(self, "contrastive", candidates, indices, weights, hyper)
        if out is not None:
            return out
        return super()._loss(candidates, indices=indices, weights=weights, generator=generator)


@register_loss(
    "multi_similarity",
    family="embedding",
    function=F.multi_similarity_loss,
    needs_pairs="any_pair",
    search_space={
        "alpha": ("log", 0.5, 10.0),
        "beta": ("log", 10.0, 100.0),
        "base": ("float", 0.0, 1.0),
    },
)
class MultiSimilarityLoss(SimilarityLoss):
    r"""Multi-similarity loss (Wang et al., CVPR 2019).

    .. math::
        \ell_a = \tfrac{1}{\alpha}\log\bigl(1 + \textstyle\sum_p e^{-\alpha(s_{ap} - \lambda)}\bigr)
               + \tfrac{1}{\beta}\log\bigl(1 + \textstyle\sum_n e^{\beta(s_{an} - \lambda)}\bigr)

    (:func:`rankloss.functional.multi_similarity_loss`); usually with
    ``miner="multi_similarity"``.

    Hyper-parameters: ``similarity='cosine'``, ``alpha=2.0``, ``beta=50.0``, ``base=0.5``
    (:math:`\lambda`), ``miner=None``, ``reduction='mean'``, ``impl='auto'``,
    ``chunk_size=None`` (streaming in row blocks of anchors, as for :class:`ContrastiveLoss`).
    """

    tuple_kind = "pairs"

    def __init__(
        self,
        *,
        similarity: Similarity = "cosine",
        alpha: float = 2.0,
        beta: float = 50.0,
        base: float = 0.5,
        miner: Miner | str | None = None,
        reduction: Reduction = "mean",
        impl: Impl = "auto",
        chunk_size: int | None = None,
    ) -> None:
        super().__init__(similarity=similarity, reduction=reduction)
        where = type(self).__name__
        _init_streaming(self, impl, chunk_size, miner is None, "a miner")
        self.alpha = params.positive(where, "alpha", alpha)
        self.beta = params.positive(where, "beta", beta)
        self.base = params.number(where, "base", base)
        self._set_miner(miner)

    def _loss(
        self,
        candidates: Candidates,
        *,
        indices: Pairs | Triplets | None,
        weights: Tensor | None,
        generator: torch.Generator | None,
    ) -> Tensor:
        hyper = {"alpha": self.alpha, "beta": self.beta, "base": self.base}
        out = _streaming_pair(self, "multi_similarity", candidates, indices, weights, hyper)
        if out is not None:
            return out
        return super()._loss(candidates, indices=indices, weights=weights, generator=generator)


@register_loss(
    "circle",
    family="embedding",
    function=F.circle_loss,
    # the weights alpha are constants in the backward (the paper's gradient), not the value's
    exact_gradient=False,
    search_space={"margin": ("float", 0.1, 0.5), "gamma": ("log", 16.0, 256.0)},
)
class CircleLoss(SimilarityLoss):
    r"""Circle loss (Sun et al., CVPR 2020).

    .. math::
        \ell_a = \operatorname{softplus}\Bigl(\log\sum_n e^{\gamma\alpha_n(s_{an} - m)}
               + \log\sum_p e^{-\gamma\alpha_p(s_{ap} - 1 + m)}\Bigr)

    with :math:`\alpha_p = [1 + m - s_{ap}]_+`, :math:`\alpha_n = [s_{an} + m]_+` held constant
    (:func:`rankloss.functional.circle_loss`). Meant for cosine similarities.

    Hyper-parameters: ``similarity='cosine'``, ``margin=0.4`` (in [0, 1]), ``gamma=80.0``,
    ``miner=None``, ``reduction='mean'``.
    """

    tuple_kind = "pairs"

    def __init__(
        self,
        *,
        similarity: Similarity = "cosine",
        margin: float = 0.4,
        gamma: float = 80.0,
        miner: Miner | str | None = None,
        reduction: Reduction = "mean",
    ) -> None:
        super().__init__(similarity=similarity, reduction=reduction)
        where = type(self).__name__
        self.margin = params.in_range(where, "margin", margin, 0.0, 1.0)
        self.gamma = params.positive(where, "gamma", gamma)
        self._set_miner(miner)


# --------------------------------------------------------------------------------------------
# Triplet losses


@register_loss(
    "triplet",
    family="embedding",
    function=F.triplet_loss,
    search_space={"margin": ("float", 0.01, 0.5)},
)
class TripletLoss(SimilarityLoss):
    r"""Triplet margin loss (Weinberger and Saul 2009; Schroff et al. 2015), on similarities.

    .. math:: \ell_{apn} = [s_{an} - s_{ap} + m]_+ \quad\text{or}\quad
        \log(1 + e^{s_{an} - s_{ap}}) \text{ with soft\_margin (Hermans et al. 2017)}

    averaged over each anchor's triplets (:func:`rankloss.functional.triplet_loss`): all of
    them (:math:`O(NM^2)`) without a miner, the mined ones with one
    (``miner="batch_hard"``: one per anchor). A pair miner's positive and negative pairs of one
    anchor are combined.

    Hyper-parameters: ``similarity='cosine'``, ``margin=0.1``, ``soft_margin=False``,
    ``miner=None``, ``reduction='mean'``, ``impl='auto'``, ``chunk_size=None`` (streaming in
    row blocks of anchors, as for :class:`ContrastiveLoss`; the hinge without a miner only).
    """

    tuple_kind = "triplets"

    def __init__(
        self,
        *,
        similarity: Similarity = "cosine",
        margin: float = 0.1,
        soft_margin: bool = False,
        miner: Miner | str | None = None,
        reduction: Reduction = "mean",
        impl: Impl = "auto",
        chunk_size: int | None = None,
    ) -> None:
        super().__init__(similarity=similarity, reduction=reduction)
        where = type(self).__name__
        self.margin = params.nonnegative(where, "margin", margin)
        self.soft_margin = params.boolean(where, "soft_margin", soft_margin)
        _init_streaming(
            self,
            impl,
            chunk_size,
            miner is None and not self.soft_margin,
            "a miner or soft_margin=True",
        )
        self._set_miner(miner)

    def _loss(
        self,
        candidates: Candidates,
        *,
        indices: Pairs | Triplets | None,
        weights: Tensor | None,
        generator: torch.Generator | None,
    ) -> Tensor:
        out = _streaming_pair(
            self,
            "triplet",
            candidates,
            indices,
            weights,
            {"margin": self.margin},
            supported=not self.soft_margin,
        )
        if out is not None:
            return out
        return super()._loss(candidates, indices=indices, weights=weights, generator=generator)


@register_loss(
    "margin_ranking",
    family="embedding",
    function=F.margin_ranking_loss,
    search_space={"margin": ("float", 0.01, 0.5)},
)
class MarginRankingLoss(SimilarityLoss):
    r"""Pairwise margin ranking of each positive above each negative (Herbrich et al. 2000).

    .. math:: \ell_{apn} = [m - (s_{ap} - s_{an})]_+

    (:func:`rankloss.functional.margin_ranking_loss`): the retrieval hinge; with ``keys`` each
    query's key is ranked above the other keys, the references and the query's
    ``hard_negatives``. ``indices`` or a miner give the triplets explicitly.

    Hyper-parameters: ``similarity='cosine'``, ``margin=0.1``, ``miner=None``,
    ``reduction='mean'``.
    """

    tuple_kind = "triplets"
    takes_hard_negatives = True

    def __init__(
        self,
        *,
        similarity: Similarity = "cosine",
        margin: float = 0.1,
        miner: Miner | str | None = None,
        reduction: Reduction = "mean",
    ) -> None:
        super().__init__(similarity=similarity, reduction=reduction)
        self.margin = params.nonnegative(type(self).__name__, "margin", margin)
        self._set_miner(miner)


# --------------------------------------------------------------------------------------------
# Softmax losses


@register_loss(
    "supcon",
    family="embedding",
    function=F.supcon_loss,
    needs_pairs="positive",
    search_space={"temperature": ("log", 0.03, 0.5)},
)
class SupConLoss(SimilarityLoss):
    r"""Supervised contrastive loss (Khosla et al., NeurIPS 2020), :math:`L^{sup}_{out}`.

    .. math::
        \ell_a = -\operatorname{mean}_{p}\log\frac{e^{z_{ap}}}{\sum_{j \ne a} e^{z_{aj}}},
        \qquad z = s/\tau

    (:func:`rankloss.functional.supcon_loss`): the other positives stay in the denominator.

    Hyper-parameters: ``similarity='cosine'``, ``temperature=0.1``, ``impl='auto'``
    (``"torch"``, ``"streaming"``: :func:`rankloss.functional.embedding.chunked_supcon_per_anchor`,
    ``"triton"``: the fused kernel of :mod:`rankloss.kernels.contrastive`; the fused paths need
    similarity ``"dot"`` or ``"cosine"``), ``chunk_size=None`` (an int: the streaming path with
    blocks of that many candidates), ``reduction='mean'``.
    """

    takes_hard_negatives = True

    def __init__(
        self,
        *,
        similarity: Similarity = "cosine",
        temperature: float = 0.1,
        impl: Impl = "auto",
        chunk_size: int | None = None,
        reduction: Reduction = "mean",
    ) -> None:
        super().__init__(similarity=similarity, reduction=reduction)
        self.temperature = params.positive(type(self).__name__, "temperature", temperature)
        self._init_impl(impl, chunk_size)

    def _loss(
        self,
        candidates: Candidates,
        *,
        indices: Pairs | Triplets | None,
        weights: Tensor | None,
        generator: torch.Generator | None,
    ) -> Tensor:
        impl = self._choose_impl(candidates)
        if impl == "torch":
            return super()._loss(candidates, indices=indices, weights=weights, generator=generator)
        queries, keys, chunk = self._unit_rows(candidates)
        if impl == "streaming":
            values, valid = F.chunked_supcon_per_anchor(
                candidates,
                similarity=self.similarity,
                temperature=self.temperature,
                chunk_size=chunk,
            )
        else:
            from rankloss.kernels import contrastive

            values, valid = contrastive.fused_per_anchor(
                "supcon", queries / self.temperature, keys, candidates
            )
        return reduce_values(values, valid, weights, self.reduction, where=type(self).__name__)


class _SoftmaxLoss(SimilarityLoss):
    """InfoNCE and NT-Xent: a temperature that may be learned, and the chunked path."""

    takes_hard_negatives = True

    temperature: float
    learnable_temperature: bool
    chunk_size: int | None
    log_temperature: nn.Parameter | None

    def _init_softmax(
        self,
        temperature: float,
        learnable_temperature: bool,
        chunk_size: int | None,
        impl: Impl = "auto",
    ) -> None:
        where = type(self).__name__
        self.temperature = params.positive(where, "temperature", temperature)
        self.learnable_temperature = params.boolean(
            where, "learnable_temperature", learnable_temperature
        )
        self._init_impl(impl, chunk_size)
        if self.learnable_temperature:
            self.log_temperature = nn.Parameter(torch.tensor(math.log(self.temperature)))
        else:
            self.register_parameter("log_temperature", None)

    def current_temperature(self) -> float | Tensor:
        """The temperature in use: ``exp(log_temperature)`` when learnable, else ``temperature``."""
        if self.log_temperature is not None:
            return self.log_temperature.exp()
        return self.temperature

    def _per_anchor(self, candidates: Candidates) -> tuple[Tensor, Tensor]:
        temperature = self.current_temperature()
        impl = self._choose_impl(candidates)
        if impl == "torch":
            if _in_batch(candidates):
                # Positive = the diagonal, every other key a forced or in-batch negative:
                # softplus(lse_neg - z_ii) is the cross-entropy of row i at target i.
                similarity = similarity_of_checked_rows(
                    candidates.queries, candidates.keys, self.similarity
                )
                values = nn.functional.cross_entropy(
                    similarity / temperature, _diagonal(candidates), reduction="none"
                )
                return values, _in_batch_valid(candidates)
            similarity = similarity_of_checked_rows(
                candidates.queries, candidates.keys, self.similarity
            )
            positive, negative = candidates.masks()
            return F.info_nce_per_anchor(similarity, positive, negative, temperature=temperature)
        if impl == "streaming":
            return F.chunked_info_nce_per_anchor(
                candidates,
                similarity=self.similarity,
                temperature=temperature,
                chunk_size=self.chunk_size or DEFAULT_CHUNK,
            )
        from rankloss.kernels import contrastive

        queries, keys, _ = self._unit_rows(candidates)
        return contrastive.fused_per_anchor("info_nce", queries / temperature, keys, candidates)


@register_loss(
    "info_nce",
    family="embedding",
    function=F.info_nce_loss,
    search_space={"temperature": ("log", 0.01, 0.5)},
)
class InfoNCELoss(_SoftmaxLoss):
    r"""InfoNCE (van den Oord, Li and Vinyals 2018): each positive against the anchor's
    negatives.

    .. math::
        \ell_a = \operatorname{mean}_{p}
        -\log\frac{e^{z_{ap}}}{e^{z_{ap}} + \sum_n e^{z_{an}}}, \qquad z = s/\tau

    (:func:`rankloss.functional.info_nce_loss`). In retrieval, ``loss(queries, keys=keys,
    hard_negatives=...)``.

    Hyper-parameters: ``similarity='cosine'``, ``temperature=0.07``,
    ``learnable_temperature=False`` (an ``nn.Parameter`` holding the temperature's logarithm,
    initialised at ``temperature``), ``symmetric=False`` (``keys`` form: the mean of the
    query->key and key->query directions, CLIP style), ``false_negatives='mask'`` (``keys``
    form with ``labels``: other keys of the query's class are left out, or with
    ``"positive"`` are positives), ``impl='auto'`` (``"torch"``, ``"streaming"`` or
    ``"triton"``, see :mod:`rankloss.kernels.dispatch`), ``chunk_size=None`` (an int: the
    memory-bounded path of :func:`rankloss.functional.chunked_info_nce_loss`, similarity
    ``"dot"`` or ``"cosine"``), ``reduction='mean'``. Without labels in the ``keys`` form the
    direct path is one ``F.cross_entropy`` of the logits against the diagonal.
    """

    def __init__(
        self,
        *,
        similarity: Similarity = "cosine",
        temperature: float = 0.07,
        learnable_temperature: bool = False,
        symmetric: bool = False,
        false_negatives: FalseNegatives = "mask",
        impl: Impl = "auto",
        chunk_size: int | None = None,
        reduction: Reduction = "mean",
    ) -> None:
        super().__init__(similarity=similarity, reduction=reduction)
        where = type(self).__name__
        self.symmetric = params.boolean(where, "symmetric", symmetric)
        self.false_negatives = params.choice(
            where, "false_negatives", false_negatives, FALSE_NEGATIVES
        )
        self._init_softmax(temperature, learnable_temperature, chunk_size, impl)

    def _false_negatives(self) -> FalseNegatives:
        return self.false_negatives

    def _loss(
        self,
        candidates: Candidates,
        *,
        indices: Pairs | Triplets | None,
        weights: Tensor | None,
        generator: torch.Generator | None,
    ) -> Tensor:
        where = type(self).__name__
        if (
            not self.symmetric
            and weights is None
            and self.reduction == "mean"
            and candidates.num_keys > 1
            and _in_batch(candidates)
            and self._choose_impl(candidates) == "torch"
        ):
            # In-batch InfoNCE: exactly the mean cross-entropy against the diagonal.
            similarity = similarity_of_checked_rows(
                candidates.queries, candidates.keys, self.similarity
            )
            return nn.functional.cross_entropy(
                similarity / self.current_temperature(), _diagonal(candidates)
            )
        if not self.symmetric:
            values, valid = self._per_anchor(candidates)
            return reduce_values(values, valid, weights, self.reduction, where=where)
        if not candidates.pair_form:
            raise ValueError(
                f"{where}: symmetric applies to the (queries, keys=...) form; the "
                "(embeddings, labels) form is already symmetric"
            )
        forward_values, forward_valid = self._per_anchor(candidates)
        backward_values, backward_valid = self._per_anchor(_reverse(candidates))
        values, valid = F.mean_of_views(
            torch.cat([forward_values, backward_values]),
            torch.cat([forward_valid, backward_valid]),
            2,
        )
        return reduce_values(values, valid, weights, self.reduction, where=where)


@register_loss(
    "nt_xent",
    family="embedding",
    function=F.nt_xent_loss,
    search_space={"temperature": ("log", 0.05, 1.0)},
)
class NTXentLoss(_SoftmaxLoss):
    r"""NT-Xent, the loss of SimCLR (Chen et al. 2020): InfoNCE over two views.

    ``loss(view1 [N, d], keys=view2 [N, d])``: each of the :math:`2N` embeddings
    :math:`w = [u; v]` is an anchor whose positive is its other view and whose negatives are
    the other :math:`2N - 2`:

    .. math::
        \ell_i = \tfrac12\bigl(\ell_{u_i} + \ell_{v_i}\bigr), \qquad
        \ell_{u_i} = -\log\frac{e^{s(u_i, v_i)/\tau}}{\sum_{k \ne i} e^{s(w_i, w_k)/\tau}}

    (:func:`rankloss.functional.nt_xent_loss`); ``weights`` and ``reduction="none"`` are per
    sample ``[N]``. With ``labels [N]`` every view of the same class is a positive;
    ``ref_embeddings`` and ``hard_negatives [N, ...]`` are candidates of both views.
    ``loss(embeddings, labels)`` is :class:`InfoNCELoss` with this temperature.

    Hyper-parameters: ``similarity='cosine'``, ``temperature=0.5``,
    ``learnable_temperature=False``, ``impl='auto'`` (as :class:`InfoNCELoss`),
    ``chunk_size=None``, ``reduction='mean'``.
    """

    def __init__(
        self,
        *,
        similarity: Similarity = "cosine",
        temperature: float = 0.5,
        learnable_temperature: bool = False,
        impl: Impl = "auto",
        chunk_size: int | None = None,
        reduction: Reduction = "mean",
    ) -> None:
        super().__init__(similarity=similarity, reduction=reduction)
        self._init_softmax(temperature, learnable_temperature, chunk_size, impl)

    @computes_in_float32
    def forward(
        self,
        embeddings: Tensor,
        labels: Tensor | None = None,
        *,
        keys: Tensor | None = None,
        ref_embeddings: Tensor | None = None,
        ref_labels: Tensor | None = None,
        hard_negatives: Tensor | None = None,
        indices: Pairs | Triplets | tuple[Tensor, ...] | None = None,
        weights: Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """``loss(view1, keys=view2)`` (two views) or ``loss(embeddings, labels)``."""
        if keys is None:
            return super().forward(
                embeddings,
                labels,
                ref_embeddings=ref_embeddings,
                ref_labels=ref_labels,
                hard_negatives=hard_negatives,
                indices=indices,
                weights=weights,
                generator=generator,
            )
        where = type(self).__name__
        indices = from_indices_tuple(indices, where)
        self._check_parts(hard_negatives, indices)
        view1 = check_embeddings(embeddings, "embeddings", where)
        view2 = check_embeddings(keys, "keys", where)
        if view2.shape != view1.shape:
            raise ValueError(
                f"{where}: keys (the second view) has shape {shape_str(view2)} but embeddings "
                f"(the first view) has shape {shape_str(view1)}"
            )
        n = view1.shape[0]
        if labels is None:
            ids = torch.arange(n, device=view1.device)
        elif not isinstance(labels, Tensor) or labels.shape != (n,):
            shape = shape_str(labels) if isinstance(labels, Tensor) else type(labels).__name__
            raise ValueError(
                f"{where}: labels has shape {shape} but expected [{n}], one per pair of views"
            )
        else:
            ids = labels
        if hard_negatives is not None:
            if not isinstance(hard_negatives, Tensor) or hard_negatives.shape[:1] != (n,):
                shape = (
                    shape_str(hard_negatives)
                    if isinstance(hard_negatives, Tensor)
                    else type(hard_negatives).__name__
                )
                raise ValueError(
                    f"{where}: hard_negatives has shape {shape}; expected [{n}, d] or "
                    f"[{n}, h, d], the negatives of each pair of views"
                )
            hard_negatives = torch.cat([hard_negatives, hard_negatives])
        candidates = build_candidates(
            torch.cat([view1, view2.to(view1.dtype)]),
            torch.cat([ids, ids]),
            ref_embeddings=ref_embeddings,
            ref_labels=ref_labels,
            hard_negatives=hard_negatives,
            where=where,
        )
        if self._choose_impl(candidates) == "torch":
            similarity = similarity_of_checked_rows(
                candidates.queries, candidates.keys, self.similarity
            )
            positive, negative = candidates.masks()
            return F.nt_xent_loss(
                similarity,
                positive,
                negative,
                temperature=self.current_temperature(),
                weights=weights,
                reduction=self.reduction,
            )
        values, valid = F.mean_of_views(*self._per_anchor(candidates), 2)
        return reduce_values(values, valid, weights, self.reduction, where=where)

    def _loss(
        self,
        candidates: Candidates,
        *,
        indices: Pairs | Triplets | None,
        weights: Tensor | None,
        generator: torch.Generator | None,
    ) -> Tensor:
        values, valid = self._per_anchor(candidates)
        return reduce_values(values, valid, weights, self.reduction, where=type(self).__name__)


@register_loss(
    "siglip",
    family="embedding",
    function=S.siglip_loss,
    needs_pairs="any_pair",
    search_space={"scale": ("log", 1.0, 30.0), "bias": ("float", -15.0, 0.0)},
)
class SigLIPLoss(SimilarityLoss):
    r"""The sigmoid loss of SigLIP (Zhai et al., ICCV 2023): every pair its own binary
    classification, no softmax over the candidates.

    .. math::
        \ell_a = \sum_{j \in \mathcal P_a \cup \mathcal N_a}
        \operatorname{softplus}\bigl(-z_{aj}(t\,s_{aj} + b)\bigr),
        \qquad z_{aj} = \pm 1 \text{ for a positive / negative pair}

    (:func:`rankloss.functional.siglip_loss`). ``loss(images, keys=texts)``: the positive of
    image ``i`` is text ``i``, every other text (and ``hard_negatives``, references without
    labels) a negative; ``loss(embeddings, labels)`` pairs by label.

    Hyper-parameters: ``similarity='cosine'``, ``scale=10.0`` (:math:`t > 0`),
    ``bias=-10.0`` (:math:`b`), ``learnable=True`` (``log_scale`` and ``bias`` are
    ``nn.Parameter``\ s initialised at :math:`\log t` and :math:`b`, as in the paper),
    ``impl='auto'`` (``"torch"``, ``"streaming"`` or ``"triton"``; the fused paths need
    similarity ``"dot"`` or ``"cosine"``), ``chunk_size=None``, ``reduction='mean'`` (the mean
    over anchors of the per-anchor sum, the paper's :math:`1/|\mathcal B|`).
    """

    takes_hard_negatives = True

    log_scale: nn.Parameter | None
    bias_parameter: nn.Parameter | None

    def __init__(
        self,
        *,
        similarity: Similarity = "cosine",
        scale: float = 10.0,
        bias: float = -10.0,
        learnable: bool = True,
        impl: Impl = "auto",
        chunk_size: int | None = None,
        reduction: Reduction = "mean",
    ) -> None:
        super().__init__(similarity=similarity, reduction=reduction)
        where = type(self).__name__
        self.scale = params.positive(where, "scale", scale)
        self.bias = params.number(where, "bias", bias)
        self.learnable = params.boolean(where, "learnable", learnable)
        self._init_impl(impl, chunk_size)
        if self.learnable:
            self.log_scale = nn.Parameter(torch.tensor(math.log(self.scale)))
            self.bias_parameter = nn.Parameter(torch.tensor(self.bias))
        else:
            self.register_parameter("log_scale", None)
            self.register_parameter("bias_parameter", None)

    def current_scale(self) -> float | Tensor:
        """The scale in use: ``exp(log_scale)`` when learnable, else ``scale``."""
        return self.log_scale.exp() if self.log_scale is not None else self.scale

    def current_bias(self) -> float | Tensor:
        """The bias in use: the parameter when learnable, else ``bias``."""
        return self.bias_parameter if self.bias_parameter is not None else self.bias

    def _loss(
        self,
        candidates: Candidates,
        *,
        indices: Pairs | Triplets | None,
        weights: Tensor | None,
        generator: torch.Generator | None,
    ) -> Tensor:
        impl = self._choose_impl(candidates)
        if impl == "torch":
            if indices is None and self._miner is None and _in_batch(candidates):
                values = self._in_batch_values(candidates)
                # every anchor has its diagonal pair
                valid = torch.ones_like(values, dtype=torch.bool)
                return reduce_values(
                    values, valid, weights, self.reduction, where=type(self).__name__
                )
            return super()._loss(candidates, indices=indices, weights=weights, generator=generator)
        scale, bias = self.current_scale(), self.current_bias()
        if impl == "streaming":
            return S.chunked_siglip_loss(
                candidates,
                similarity=self.similarity,
                scale=scale,
                bias=bias,
                chunk_size=self.chunk_size or DEFAULT_CHUNK,
                weights=weights,
                reduction=self.reduction,
            )
        from rankloss.kernels import contrastive

        queries, keys, _ = self._unit_rows(candidates)
        bias_t = bias if isinstance(bias, Tensor) else queries.new_tensor(bias)
        values, valid = contrastive.fused_per_anchor(
            "siglip", queries * scale, keys, candidates, bias=bias_t
        )
        return reduce_values(values, valid, weights, self.reduction, where=type(self).__name__)

    def _in_batch_values(self, candidates: Candidates) -> Tensor:
        r"""``[N]``: :math:`\ell_a` of the in-batch form (the positive of query ``a`` is key
        ``a``, every other key a negative), without masks: the logits
        :math:`t\,s_{aj} + b` with the diagonal negated, through one softplus and a row sum.
        The same value as the masked path, with fewer ``[N, M]`` temporaries."""
        similarity = similarity_of_checked_rows(
            candidates.queries, candidates.keys, self.similarity
        )
        return S.siglip_in_batch_per_anchor(
            similarity, scale=self.current_scale(), bias=self.current_bias()
        )

    def _compute(
        self,
        similarity: Tensor,
        positive: Tensor,
        negative: Tensor,
        triplets: Triplets | None,
        weights: Tensor | None,
    ) -> Tensor:
        return S.siglip_loss(
            similarity,
            positive,
            negative,
            scale=self.current_scale(),
            bias=self.current_bias(),
            weights=weights,
            reduction=self.reduction,
        )

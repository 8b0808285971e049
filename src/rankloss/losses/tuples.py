r"""Pair and tuple embedding-loss modules: lifted structure, N-pairs, angular, margin, tuplet
margin, decoupled contrastive and guided InfoNCE.

Each is a :class:`~rankloss.losses.embedding.SimilarityLoss` (family ``"embedding"``) over a
function of :mod:`rankloss.functional.tuples`, called as every embedding loss is:
``loss(embeddings, labels)`` or ``loss(queries, keys=keys)``, with ``ref_embeddings``,
``ref_labels`` and (where a loss takes them) ``hard_negatives``, ``indices`` or a ``miner``.

False negatives in the ``(queries, keys)`` form: pass ``labels`` (an id per pair) with
``keys=`` and keys of the query's id are never its negatives (as
:class:`~rankloss.losses.InfoNCELoss` with ``false_negatives="mask"``);
:class:`GuidedInfoNCELoss` also drops the negatives a guide model finds too close.

>>> import torch
>>> from rankloss.losses.tuples import MarginLoss, NPairsLoss
>>> anchors, positives = torch.randn(6, 8), torch.randn(6, 8)
>>> NPairsLoss()(anchors, keys=positives).shape
torch.Size([])
>>> MarginLoss(learnable_beta=True, num_classes=3)(anchors, torch.tensor([0, 0, 1, 1, 2, 2])).shape
torch.Size([])
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import Tensor, nn

from rankloss._core import params
from rankloss._core.candidates import Candidates, build_candidates
from rankloss._core.reduce import Reduction, reduce_values
from rankloss._core.similarity import Similarity, pairwise_similarity
from rankloss._core.tuples import Pairs, Triplets, from_indices_tuple
from rankloss._core.validation import computes_in_float32, shape_str
from rankloss.functional import tuples as F
from rankloss.functional.tuples import MarginStrategy
from rankloss.losses.base import register_loss
from rankloss.losses.embedding import FalseNegatives, SimilarityLoss, _restrict_pairs
from rankloss.mining import Miner

__all__ = [
    "LiftedStructureLoss",
    "GeneralizedLiftedStructureLoss",
    "NPairsLoss",
    "AngularLoss",
    "MarginLoss",
    "TupletMarginLoss",
    "DCLLoss",
    "DCLWLoss",
    "GuidedInfoNCELoss",
]


def _key_negative(candidates: Candidates) -> Tensor:
    """``[M, M]`` bool: the negatives of each candidate among the candidates (a different
    label, or a forced negative: a reference without labels, a hard negative)."""
    labels, forced = candidates.key_labels, candidates.forced_negative
    negative = (labels.unsqueeze(1) != labels.unsqueeze(0)) | forced.unsqueeze(0)
    negative = negative | forced.unsqueeze(1)
    negative.fill_diagonal_(False)
    return negative


def _mined_masks(
    module: SimilarityLoss,
    candidates: Candidates,
    similarity: Tensor,
    indices: Pairs | Triplets | None,
    generator: torch.Generator | None,
) -> tuple[Tensor, Tensor]:
    """The positive and negative masks of ``candidates``, restricted to the pairs of a miner
    (run on the detached similarity) or of the given ``indices``."""
    where = type(module).__name__
    positive, negative = candidates.masks()
    tuples = indices
    if module._miner is not None:
        tuples = module._miner(
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
    if tuples is not None:
        positive, negative = _restrict_pairs(tuples, positive, negative, where)
    return positive, negative


# --------------------------------------------------------------------------------------------
# Lifted structure


@register_loss(
    "lifted_structure",
    family="embedding",
    function=F.lifted_structure_loss,
    search_space={"margin": ("float", 0.0, 2.0)},
    squared_terms=True,
)
class LiftedStructureLoss(SimilarityLoss):
    r"""Lifted structured loss, the smooth form (Oh Song et al., CVPR 2016).

    .. math::
        J_{ap} = \log\Bigl(\sum_{n \in \mathcal N_a} e^{\alpha + s_{an}}
                 + \sum_{n \in \mathcal N_p} e^{\alpha + s_{pn}}\Bigr) - s_{ap}, \qquad
        \ell_a = \tfrac{1}{2}\operatorname{mean}_{p}\,[J_{ap}]_+^2

    (:func:`rankloss.functional.tuples.lifted_structure_loss`): the negatives of the positive
    :math:`p` are those of candidate :math:`p` among all candidates (the batch and the
    references; in the ``keys`` form, the other keys), from the candidates' own
    similarity matrix.

    Hyper-parameters: ``similarity='cosine'``, ``margin=1.0`` (:math:`\alpha`, in similarity
    units), ``reduction='mean'``. No miner: the loss is built on the whole batch's structure.
    """

    def __init__(
        self,
        *,
        similarity: Similarity = "cosine",
        margin: float = 1.0,
        reduction: Reduction = "mean",
    ) -> None:
        super().__init__(similarity=similarity, reduction=reduction)
        self.margin = params.nonnegative(type(self).__name__, "margin", margin)

    def _loss(
        self,
        candidates: Candidates,
        *,
        indices: Pairs | Triplets | None,
        weights: Tensor | None,
        generator: torch.Generator | None,
    ) -> Tensor:
        similarity = pairwise_similarity(candidates.queries, candidates.keys, self.similarity)
        keys = pairwise_similarity(candidates.keys, candidates.keys, self.similarity)
        positive, negative = candidates.masks()
        return F.lifted_structure_loss(
            similarity,
            positive,
            negative,
            key_similarity=keys,
            key_negative=_key_negative(candidates),
            margin=self.margin,
            weights=weights,
            reduction=self.reduction,
        )


@register_loss(
    "generalized_lifted_structure",
    family="embedding",
    function=F.generalized_lifted_structure_loss,
    search_space={"margin": ("float", 0.0, 2.0)},
)
class GeneralizedLiftedStructureLoss(SimilarityLoss):
    r"""Generalised lifted structure loss (Hermans, Beyer and Leibe 2017).

    .. math::
        \ell_a = \Bigl[\log\sum_{p} e^{-s_{ap}} + \log\sum_{n} e^{m + s_{an}}\Bigr]_+

    (:func:`rankloss.functional.tuples.generalized_lifted_structure_loss`). A pair miner (or a
    triplet miner's pairs) restricts the pairs.

    Hyper-parameters: ``similarity='cosine'``, ``margin=1.0`` (:math:`m`), ``miner=None``,
    ``reduction='mean'``.
    """

    tuple_kind = "pairs"

    def __init__(
        self,
        *,
        similarity: Similarity = "cosine",
        margin: float = 1.0,
        miner: Miner | str | None = None,
        reduction: Reduction = "mean",
    ) -> None:
        super().__init__(similarity=similarity, reduction=reduction)
        self.margin = params.nonnegative(type(self).__name__, "margin", margin)
        self._set_miner(miner)


# --------------------------------------------------------------------------------------------
# N-pairs and angular


@register_loss(
    "n_pairs",
    family="embedding",
    function=F.n_pairs_loss,
    search_space={"l2_regularizer": ("log", 1e-4, 1e-1)},
)
class NPairsLoss(SimilarityLoss):
    r"""Multi-class N-pair loss (Sohn, NeurIPS 2016), with its L2 regulariser as an option.

    .. math::
        \ell_a = \operatorname{mean}_{p}\log\Bigl(1 + \sum_{n} e^{s_{an} - s_{ap}}\Bigr)
               + \lambda\bigl(\lVert x_a\rVert^2 + \operatorname{mean}_{p}
                 \lVert x_p\rVert^2\bigr)

    (:func:`rankloss.functional.tuples.n_pairs_loss` plus the regulariser on the raw
    embeddings of the anchor and its positives, added to anchors with a positive and a
    negative). ``loss(anchors, keys=positives)`` is the paper's N-pair-mc batch: the other
    pairs' positives are the negatives.

    Hyper-parameters: ``similarity='dot'`` (the paper's inner product),
    ``l2_regularizer=0.0`` (:math:`\lambda \ge 0`), ``reduction='mean'``; ``hard_negatives``
    are extra negatives of each anchor.
    """

    takes_hard_negatives = True

    def __init__(
        self,
        *,
        similarity: Similarity = "dot",
        l2_regularizer: float = 0.0,
        reduction: Reduction = "mean",
    ) -> None:
        super().__init__(similarity=similarity, reduction=reduction)
        self.l2_regularizer = params.nonnegative(
            type(self).__name__, "l2_regularizer", l2_regularizer
        )

    def _loss(
        self,
        candidates: Candidates,
        *,
        indices: Pairs | Triplets | None,
        weights: Tensor | None,
        generator: torch.Generator | None,
    ) -> Tensor:
        similarity = pairwise_similarity(candidates.queries, candidates.keys, self.similarity)
        positive, negative = candidates.masks()
        values, valid = F.n_pairs_per_anchor(similarity, positive, negative)
        if self.l2_regularizer > 0:
            query_sq = candidates.queries.pow(2).sum(1).to(values.dtype)
            key_sq = candidates.keys.pow(2).sum(1).to(values.dtype)
            chosen = torch.where(positive, key_sq.unsqueeze(0), key_sq.new_zeros(()))
            pos_sq = chosen.sum(1) / positive.sum(1).clamp(min=1).to(values.dtype)
            values = values + self.l2_regularizer * torch.where(
                valid, query_sq + pos_sq, values.new_zeros(())
            )
        return reduce_values(values, valid, weights, self.reduction, where=type(self).__name__)


@register_loss(
    "angular",
    family="embedding",
    function=F.angular_loss,
    search_space={"angle": ("float", 30.0, 55.0)},
)
class AngularLoss(SimilarityLoss):
    r"""Angular loss, the N-pair form (Wang et al., ICCV 2017).

    .. math::
        \ell_a = \operatorname{mean}_{p}\log\Bigl(1 + \sum_{n}
        e^{4\tan^2\alpha\,(s_{an} + s_{pn}) - 2(1 + \tan^2\alpha)\,s_{ap}}\Bigr)

    (:func:`rankloss.functional.tuples.angular_loss`): :math:`(x_a + x_p)^\top x_n` is
    :math:`s_{an} + s_{pn}`, with :math:`s_{pn}` from the candidates' own similarity matrix
    (an extra :math:`O(M^2 d)` product). With the default cosine similarity this is the paper's
    loss on L2-normalised embeddings; combine with :class:`NPairsLoss` as the paper does
    (``NPairsLoss(similarity="cosine") + 2.0 * AngularLoss()``).

    Hyper-parameters: ``similarity='cosine'``, ``angle=40.0`` (:math:`\alpha` in degrees, in
    (0, 90)), ``reduction='mean'``.
    """

    def __init__(
        self,
        *,
        similarity: Similarity = "cosine",
        angle: float = 40.0,
        reduction: Reduction = "mean",
    ) -> None:
        super().__init__(similarity=similarity, reduction=reduction)
        self.angle = params.in_range(type(self).__name__, "angle", angle, 0.0, 90.0, closed=False)

    def _loss(
        self,
        candidates: Candidates,
        *,
        indices: Pairs | Triplets | None,
        weights: Tensor | None,
        generator: torch.Generator | None,
    ) -> Tensor:
        similarity = pairwise_similarity(candidates.queries, candidates.keys, self.similarity)
        keys = pairwise_similarity(candidates.keys, candidates.keys, self.similarity)
        positive, negative = candidates.masks()
        return F.angular_loss(
            similarity,
            positive,
            negative,
            key_similarity=keys,
            angle=self.angle,
            weights=weights,
            reduction=self.reduction,
        )


# --------------------------------------------------------------------------------------------
# Margin losses


@register_loss(
    "margin",
    family="embedding",
    function=F.margin_loss,
    needs_pairs="any_pair",
    search_space={"margin": ("float", 0.05, 0.4), "beta": ("float", 0.0, 0.8)},
)
class MarginLoss(SimilarityLoss):
    r"""Margin loss of "Sampling Matters" (Wu et al., ICCV 2017), with a learnable boundary.

    .. math::
        \ell_a = \operatorname{mean}_{j \in \mathcal P_a \cup \mathcal N_a}
        [\alpha + y_{aj}(\beta_a - s_{aj})]_+, \qquad y = +1 \text{ positive}, -1 \text{ negative}

    (:func:`rankloss.functional.tuples.margin_loss`): positives above :math:`\beta + \alpha`,
    negatives below :math:`\beta - \alpha`. The paper samples negatives by distance:
    ``miner="distance_weighted"``.

    Hyper-parameters: ``similarity='cosine'``, ``margin=0.2`` (:math:`\alpha`), ``beta=0.3``
    (:math:`\beta`; the paper's Euclidean 1.2 on the unit sphere is a cosine of 0.28),
    ``learnable_beta=False`` (``beta_parameter``, an ``nn.Parameter`` initialised at
    ``beta``, learned with the model), ``num_classes=None`` (an int: one learnable
    :math:`\beta_c` per class, the anchor's class chosen by its label; needs
    ``learnable_beta=True`` and labels in ``[0, num_classes)``), ``miner=None``,
    ``reduction='mean'``.
    """

    tuple_kind = "pairs"

    beta_parameter: nn.Parameter | None

    def __init__(
        self,
        *,
        similarity: Similarity = "cosine",
        margin: float = 0.2,
        beta: float = 0.3,
        learnable_beta: bool = False,
        num_classes: int | None = None,
        miner: Miner | str | None = None,
        reduction: Reduction = "mean",
    ) -> None:
        super().__init__(similarity=similarity, reduction=reduction)
        where = type(self).__name__
        self.margin = params.nonnegative(where, "margin", margin)
        self.beta = params.number(where, "beta", beta)
        self.learnable_beta = params.boolean(where, "learnable_beta", learnable_beta)
        if num_classes is not None:
            params.positive_int(where, "num_classes", num_classes)
            if not self.learnable_beta:
                raise ValueError(
                    f"{where}: num_classes must be None unless learnable_beta=True (it gives "
                    f"one learnable beta per class), got {num_classes!r}"
                )
        self.num_classes = num_classes
        if self.learnable_beta:
            shape = () if num_classes is None else (num_classes,)
            self.beta_parameter = nn.Parameter(torch.full(shape, self.beta))
        else:
            self.register_parameter("beta_parameter", None)
        self._set_miner(miner)

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
        """As :meth:`SimilarityLoss.forward`; a per-class beta needs ``labels``."""
        if self.num_classes is not None and labels is None:
            raise ValueError(
                f"{type(self).__name__}: num_classes (one beta per class) needs labels, also "
                "in the (queries, keys) form"
            )
        return super().forward(
            embeddings,
            labels,
            keys=keys,
            ref_embeddings=ref_embeddings,
            ref_labels=ref_labels,
            hard_negatives=hard_negatives,
            indices=indices,
            weights=weights,
            generator=generator,
        )

    def current_beta(self, anchor_labels: Tensor) -> float | Tensor:
        """:math:`\\beta` of each anchor: ``beta``, the learned scalar, or ``[N]`` per class."""
        if self.beta_parameter is None:
            return self.beta
        if self.num_classes is None:
            return self.beta_parameter
        if anchor_labels.numel() and (
            int(anchor_labels.min()) < 0 or int(anchor_labels.max()) >= self.num_classes
        ):
            raise ValueError(
                f"{type(self).__name__}: labels must be in [0, {self.num_classes}) with "
                f"num_classes={self.num_classes}, got values in [{int(anchor_labels.min())}, "
                f"{int(anchor_labels.max())}]"
            )
        return self.beta_parameter[anchor_labels]

    def _loss(
        self,
        candidates: Candidates,
        *,
        indices: Pairs | Triplets | None,
        weights: Tensor | None,
        generator: torch.Generator | None,
    ) -> Tensor:
        similarity = pairwise_similarity(candidates.queries, candidates.keys, self.similarity)
        positive, negative = _mined_masks(self, candidates, similarity, indices, generator)
        return F.margin_loss(
            similarity,
            positive,
            negative,
            margin=self.margin,
            beta=self.current_beta(candidates.query_labels),
            weights=weights,
            reduction=self.reduction,
        )


@register_loss(
    "tuplet_margin",
    family="embedding",
    function=F.tuplet_margin_loss,
    search_space={"angular_margin": ("float", 0.0, 15.0), "scale": ("log", 8.0, 128.0)},
)
class TupletMarginLoss(SimilarityLoss):
    r"""Tuplet margin loss (Yu and Tao, ICCV 2019).

    .. math::
        \ell_a = \operatorname{mean}_{p}\log\Bigl(1 + \sum_{n}
        e^{\gamma(\cos\theta_{an} - \cos(\theta_{ap} - \beta))}\Bigr)

    (:func:`rankloss.functional.tuples.tuplet_margin_loss`), :math:`\cos\theta = s` (cosine
    similarity; others are clamped to [-1, 1] for the angle). A pair miner restricts the pairs.

    Hyper-parameters: ``similarity='cosine'``, ``angular_margin=5.73`` (:math:`\beta` in
    degrees, the paper's 0.1 rad), ``scale=64.0`` (:math:`\gamma`), ``miner=None``,
    ``reduction='mean'``.
    """

    tuple_kind = "pairs"

    def __init__(
        self,
        *,
        similarity: Similarity = "cosine",
        angular_margin: float = 5.73,
        scale: float = 64.0,
        miner: Miner | str | None = None,
        reduction: Reduction = "mean",
    ) -> None:
        super().__init__(similarity=similarity, reduction=reduction)
        where = type(self).__name__
        self.angular_margin = params.in_range(where, "angular_margin", angular_margin, 0.0, 90.0)
        if self.angular_margin == 90.0:
            raise ValueError(f"{where}: angular_margin must be in [0.0, 90.0), got 90.0")
        self.scale = params.positive(where, "scale", scale)
        self._set_miner(miner)


# --------------------------------------------------------------------------------------------
# Decoupled contrastive


@register_loss(
    "dcl",
    family="embedding",
    function=F.dcl_loss,
    search_space={"temperature": ("log", 0.05, 1.0)},
)
class DCLLoss(SimilarityLoss):
    r"""Decoupled contrastive loss (Yeh et al., ECCV 2022).

    .. math::
        \ell_a = -\operatorname{mean}_{p} z_{ap} + \log\sum_{n} e^{z_{an}}, \qquad z = s/\tau

    (:func:`rankloss.functional.tuples.dcl_loss`): InfoNCE without the positive in the
    denominator. Two views: ``loss(torch.cat([v1, v2]), torch.cat([ids, ids]))``.

    Hyper-parameters: ``similarity='cosine'``, ``temperature=0.1``, ``reduction='mean'``;
    ``hard_negatives`` are extra negatives of each anchor.
    """

    takes_hard_negatives = True

    def __init__(
        self,
        *,
        similarity: Similarity = "cosine",
        temperature: float = 0.1,
        reduction: Reduction = "mean",
    ) -> None:
        super().__init__(similarity=similarity, reduction=reduction)
        self.temperature = params.positive(type(self).__name__, "temperature", temperature)


@register_loss(
    "dclw",
    family="embedding",
    function=F.dclw_loss,
    search_space={"temperature": ("log", 0.05, 1.0), "sigma": ("log", 0.1, 2.0)},
    anchor_local=False,
)
class DCLWLoss(SimilarityLoss):
    r"""Decoupled contrastive loss with von Mises-Fisher weighting (DCLW, Yeh et al. 2022).

    .. math::
        \ell_a = -\operatorname{mean}_{p} w_{ap} z_{ap} + \log\sum_{n} e^{z_{an}}, \qquad
        w_{ap} = 2 - \frac{e^{c_{ap}/\sigma}}{\operatorname{mean}_{(b,q)} e^{c_{bq}/\sigma}}

    (:func:`rankloss.functional.tuples.dclw_loss`), :math:`z = s/\tau` and :math:`c` the
    cosine of the embeddings (whatever ``similarity`` is), the mean over every positive pair
    of the batch: the weights depend on the whole batch.

    Hyper-parameters: ``similarity='cosine'``, ``temperature=0.1``, ``sigma=0.5``,
    ``reduction='mean'``; ``hard_negatives`` are extra negatives of each anchor.
    """

    takes_hard_negatives = True

    def __init__(
        self,
        *,
        similarity: Similarity = "cosine",
        temperature: float = 0.1,
        sigma: float = 0.5,
        reduction: Reduction = "mean",
    ) -> None:
        super().__init__(similarity=similarity, reduction=reduction)
        where = type(self).__name__
        self.temperature = params.positive(where, "temperature", temperature)
        self.sigma = params.positive(where, "sigma", sigma)

    def _loss(
        self,
        candidates: Candidates,
        *,
        indices: Pairs | Triplets | None,
        weights: Tensor | None,
        generator: torch.Generator | None,
    ) -> Tensor:
        similarity = pairwise_similarity(candidates.queries, candidates.keys, self.similarity)
        cosine = (
            None
            if self.similarity == "cosine"
            else pairwise_similarity(candidates.queries, candidates.keys, "cosine")
        )
        positive, negative = candidates.masks()
        return F.dclw_loss(
            similarity,
            positive,
            negative,
            temperature=self.temperature,
            sigma=self.sigma,
            cosine=cosine,
            weights=weights,
            reduction=self.reduction,
        )


# --------------------------------------------------------------------------------------------
# Guided InfoNCE


@register_loss(
    "guided_info_nce",
    family="embedding",
    function=F.guided_info_nce_loss,
    search_space={"temperature": ("log", 0.01, 0.2), "guide_margin": ("float", 0.0, 0.2)},
)
class GuidedInfoNCELoss(SimilarityLoss):
    r"""InfoNCE with false negatives filtered by a guide model (GISTEmbed, Solatorio 2024).

    .. math::
        \ell_a = \operatorname{mean}_{p}
        -\log\frac{e^{z_{ap}}}{e^{z_{ap}} + \sum_{n:\, g_{an} \le g_{ap} - \delta} e^{z_{an}}},
        \qquad z = s/\tau

    (:func:`rankloss.functional.tuples.guided_info_nce_loss`). Called as
    ``loss(queries, keys=keys, guide_similarity=g)`` with ``g [N, M]`` the guide model's
    similarity of every query with every candidate, in the candidates' order: the keys, then
    ``ref_embeddings``, then ``hard_negatives`` flattened (``[N * h]``); for instance
    ``pairwise_similarity(guide_q, torch.cat([guide_k, guide_hard]))``. Without
    ``guide_similarity`` it is :class:`~rankloss.losses.InfoNCELoss`. ``labels`` with ``keys``
    are ids: keys of the query's id are never negatives.

    Hyper-parameters: ``similarity='cosine'``, ``temperature=0.05``
    (sentence-transformers' ``GISTEmbedLoss`` uses 0.01), ``guide_margin=0.0`` (:math:`m`),
    ``margin_strategy='absolute'`` (:math:`\delta = m`; ``"relative"``:
    :math:`\delta = m|g_{ap}|`), ``reduction='mean'``; ``hard_negatives`` are extra negatives
    of each query.
    """

    takes_hard_negatives = True
    #: Training loops with a guide model pass ``guide_similarity`` (see
    #: :class:`~rankloss.train.tasks.TextRetrievalTask`).
    takes_guide_similarity: ClassVar[bool] = True

    def __init__(
        self,
        *,
        similarity: Similarity = "cosine",
        temperature: float = 0.05,
        guide_margin: float = 0.0,
        margin_strategy: MarginStrategy = "absolute",
        reduction: Reduction = "mean",
    ) -> None:
        super().__init__(similarity=similarity, reduction=reduction)
        where = type(self).__name__
        self.temperature = params.positive(where, "temperature", temperature)
        self.guide_margin = params.nonnegative(where, "guide_margin", guide_margin)
        self.margin_strategy = params.choice(
            where, "margin_strategy", margin_strategy, F.MARGIN_STRATEGIES
        )

    def _false_negatives(self) -> FalseNegatives:
        return "mask"

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
        guide_similarity: Tensor | None = None,
    ) -> Tensor:
        """As :meth:`SimilarityLoss.forward`, with ``guide_similarity [N, M]``: the guide
        model's similarity of each anchor with each candidate, or ``None``."""
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
            false_negatives="mask",
            where=where,
        )
        if guide_similarity is not None:
            expected = (candidates.num_queries, candidates.num_keys)
            if not isinstance(guide_similarity, Tensor) or guide_similarity.shape != expected:
                shape = (
                    shape_str(guide_similarity)
                    if isinstance(guide_similarity, Tensor)
                    else type(guide_similarity).__name__
                )
                raise ValueError(
                    f"{where}: guide_similarity has shape {shape} but expected "
                    f"[{expected[0]}, {expected[1]}]: every anchor against every candidate "
                    "(the keys or the batch, then ref_embeddings, then hard_negatives)"
                )
        return self._guided(candidates, guide_similarity, weights)

    def _guided(
        self, candidates: Candidates, guide_similarity: Tensor | None, weights: Tensor | None
    ) -> Tensor:
        similarity = pairwise_similarity(candidates.queries, candidates.keys, self.similarity)
        positive, negative = candidates.masks()
        return F.guided_info_nce_loss(
            similarity,
            positive,
            negative,
            guide_similarity=guide_similarity,
            temperature=self.temperature,
            guide_margin=self.guide_margin,
            margin_strategy=self.margin_strategy,
            weights=weights,
            reduction=self.reduction,
        )

    def _loss(
        self,
        candidates: Candidates,
        *,
        indices: Pairs | Triplets | None,
        weights: Tensor | None,
        generator: torch.Generator | None,
    ) -> Tensor:
        return self._guided(candidates, None, weights)

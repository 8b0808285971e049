"""List-loss modules (pointwise, pairwise, listwise): ``loss(scores, labels, mask=None, *,
weights=None)``.

Each class holds checked hyper-parameters and calls its function in
:mod:`rankloss.functional`; the formula, the paper and the cost are in the function's
docstring. Every hyper-parameter is checked when the module is built, with the message form
``"<Class>: <parameter> must be ..., got ..."``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar, Literal

import torch
from torch import Tensor

from rankloss import functional as F
from rankloss._core import params
from rankloss._core.ranking import GAINS
from rankloss._core.reduce import Reduction
from rankloss._core.validation import computes_in_float32
from rankloss.functional.lambdaweights import PAIR_WEIGHTS, PairContext, PairWeight
from rankloss.functional.pairwise import (
    LAMBDALOSS_WEIGHTINGS,
    PAIR_TERMS,
    PairTerm,
    check_impl,
    triton_unavailable,
    weight_name,
)
from rankloss.kernels.dispatch import Impl
from rankloss.losses.base import ListLoss, register_loss

__all__ = [
    "MSELoss",
    "MAELoss",
    "SmoothL1Loss",
    "SigmoidCELoss",
    "HingeLoss",
    "SoftmaxCELoss",
    "KLDivLoss",
    "ListNetLoss",
    "ListMLELoss",
    "ApproxNDCGLoss",
    "NeuralNDCGLoss",
    "PairwiseLoss",
    "RankNetLoss",
    "PairwiseHingeLoss",
    "BPRLoss",
    "LambdaRankLoss",
    "LambdaLoss",
]

Gain = Literal["exp2", "linear"]


def _doc(function: Callable[..., Tensor]) -> str:
    return f"Module form of :func:`rankloss.functional.{function.__name__}`.\n\n" + (
        function.__doc__ or ""
    )


class _TiledListLoss(ListLoss):
    """A list loss with the ``impl`` and ``tile_size`` options of the pair-matrix losses."""

    impl: Impl
    tile_size: int | None

    def _init_impl(
        self,
        impl: Impl,
        tile_size: int | None,
        *,
        streams: bool = True,
        no_kernel: str | None = None,
    ) -> None:
        check_impl(type(self).__name__, impl, tile_size, streams=streams, no_kernel=no_kernel)
        self.impl, self.tile_size = impl, tile_size


# ------------------------------------------------------------------------------------------
# Pointwise


@register_loss("mse", family="pointwise", function=F.mse_loss, soft_labels=True)
class MSELoss(ListLoss):
    __doc__ = _doc(F.mse_loss)
    function = staticmethod(F.mse_loss)

    def __init__(self, *, reduction: Reduction = "mean") -> None:
        super().__init__(reduction=reduction)


@register_loss("mae", family="pointwise", function=F.mae_loss, soft_labels=True)
class MAELoss(ListLoss):
    __doc__ = _doc(F.mae_loss)
    function = staticmethod(F.mae_loss)

    def __init__(self, *, reduction: Reduction = "mean") -> None:
        super().__init__(reduction=reduction)


@register_loss(
    "smooth_l1",
    family="pointwise",
    function=F.smooth_l1_loss,
    soft_labels=True,
    search_space={"beta": ("log", 0.1, 10.0)},
)
class SmoothL1Loss(ListLoss):
    __doc__ = _doc(F.smooth_l1_loss)
    function = staticmethod(F.smooth_l1_loss)

    def __init__(self, *, beta: float = 1.0, reduction: Reduction = "mean") -> None:
        super().__init__(reduction=reduction)
        self.beta = params.positive(type(self).__name__, "beta", beta)


@register_loss("sigmoid_ce", family="pointwise", function=F.sigmoid_ce_loss, label_range="unit")
class SigmoidCELoss(ListLoss):
    __doc__ = _doc(F.sigmoid_ce_loss)
    function = staticmethod(F.sigmoid_ce_loss)

    def __init__(
        self, *, relevance_threshold: float | None = None, reduction: Reduction = "mean"
    ) -> None:
        super().__init__(reduction=reduction)
        self.relevance_threshold = (
            None
            if relevance_threshold is None
            else params.number(type(self).__name__, "relevance_threshold", relevance_threshold)
        )


@register_loss(
    "hinge", family="pointwise", function=F.hinge_loss, search_space={"margin": ("float", 0.1, 2.0)}
)
class HingeLoss(ListLoss):
    __doc__ = _doc(F.hinge_loss)
    function = staticmethod(F.hinge_loss)

    def __init__(
        self,
        *,
        margin: float = 1.0,
        relevance_threshold: float = 1.0,
        reduction: Reduction = "mean",
    ) -> None:
        super().__init__(reduction=reduction)
        where = type(self).__name__
        self.margin = params.nonnegative(where, "margin", margin)
        self.relevance_threshold = params.number(where, "relevance_threshold", relevance_threshold)


# ------------------------------------------------------------------------------------------
# Listwise


@register_loss(
    "softmax_ce",
    family="listwise",
    function=F.softmax_ce_loss,
    label_range="nonnegative",
    soft_labels=True,
)
class SoftmaxCELoss(ListLoss):
    __doc__ = _doc(F.softmax_ce_loss)
    function = staticmethod(F.softmax_ce_loss)

    def __init__(self, *, reduction: Reduction = "mean") -> None:
        super().__init__(reduction=reduction)


@register_loss(
    "kl_div",
    family="listwise",
    function=F.kl_div_loss,
    soft_labels=True,
    search_space={"label_temperature": ("log", 0.25, 4.0)},
)
class KLDivLoss(ListLoss):
    __doc__ = _doc(F.kl_div_loss)
    function = staticmethod(F.kl_div_loss)

    def __init__(self, *, label_temperature: float = 1.0, reduction: Reduction = "mean") -> None:
        super().__init__(reduction=reduction)
        self.label_temperature = params.positive(
            type(self).__name__, "label_temperature", label_temperature
        )


@register_loss(
    "listnet",
    family="listwise",
    function=F.listnet_loss,
    soft_labels=True,
    search_space={"label_temperature": ("log", 0.25, 4.0)},
)
class ListNetLoss(ListLoss):
    __doc__ = _doc(F.listnet_loss)
    function = staticmethod(F.listnet_loss)

    def __init__(self, *, label_temperature: float = 1.0, reduction: Reduction = "mean") -> None:
        super().__init__(reduction=reduction)
        self.label_temperature = params.positive(
            type(self).__name__, "label_temperature", label_temperature
        )


@register_loss("listmle", family="listwise", function=F.listmle_loss, tie_order="labels")
class ListMLELoss(ListLoss):
    __doc__ = _doc(F.listmle_loss)
    function = staticmethod(F.listmle_loss)

    def __init__(self, *, reduction: Reduction = "mean") -> None:
        super().__init__(reduction=reduction)

    @computes_in_float32
    def forward(
        self,
        scores: Tensor,
        labels: Tensor,
        mask: Tensor | None = None,
        *,
        weights: Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """As :meth:`ListLoss.forward`; a seeded ``generator`` breaks label ties at random."""
        return F.listmle_loss(
            scores, labels, mask, weights=weights, generator=generator, reduction=self.reduction
        )


@register_loss(
    "approx_ndcg",
    family="listwise",
    function=F.approx_ndcg_loss,
    search_space={"alpha": ("log", 1.0, 100.0)},
)
class ApproxNDCGLoss(_TiledListLoss):
    __doc__ = _doc(F.approx_ndcg_loss)
    function = staticmethod(F.approx_ndcg_loss)

    def __init__(
        self,
        *,
        alpha: float = 10.0,
        gain: Gain = "exp2",
        reduction: Reduction = "mean",
        impl: Impl = "auto",
        tile_size: int | None = None,
    ) -> None:
        super().__init__(reduction=reduction)
        where = type(self).__name__
        self.alpha = params.positive(where, "alpha", alpha)
        self.gain: Gain = params.choice(where, "gain", gain, GAINS)
        self._init_impl(impl, tile_size, no_kernel="ApproxNDCG")


@register_loss(
    "neural_ndcg",
    family="listwise",
    function=F.neural_ndcg_loss,
    search_space={"temperature": ("log", 0.1, 10.0)},
)
class NeuralNDCGLoss(ListLoss):
    __doc__ = _doc(F.neural_ndcg_loss)
    function = staticmethod(F.neural_ndcg_loss)

    def __init__(
        self,
        *,
        temperature: float = 1.0,
        sinkhorn_iterations: int = 50,
        k: int | None = None,
        gain: Gain = "exp2",
        reduction: Reduction = "mean",
    ) -> None:
        super().__init__(reduction=reduction)
        where = type(self).__name__
        self.temperature = params.positive(where, "temperature", temperature)
        self.sinkhorn_iterations = params.nonnegative_int(
            where, "sinkhorn_iterations", sinkhorn_iterations
        )
        self.k = params.cutoff(where, "k", k)
        self.gain: Gain = params.choice(where, "gain", gain, GAINS)


# ------------------------------------------------------------------------------------------
# Pairwise: a pair term times a pair weight


@register_loss(
    "pairwise",
    family="pairwise",
    function=F.pairwise_loss,
    tie_order="scores",
    search_space={"term": ("choice", ("logistic", "hinge")), "sigma": ("log", 0.25, 4.0)},
)
class PairwiseLoss(_TiledListLoss):
    """Any pair term with any pair weight: :func:`rankloss.functional.pairwise_loss`.

    >>> from rankloss.losses import PairwiseLoss
    >>> loss = PairwiseLoss(term="hinge", weight="lambdarank", pair_reduction="sum")

    The presets :class:`RankNetLoss`, :class:`PairwiseHingeLoss`, :class:`BPRLoss`,
    :class:`LambdaRankLoss` and :class:`LambdaLoss` are this loss with fixed parts.
    """

    __doc__ = (__doc__ or "") + "\n" + (F.pairwise_loss.__doc__ or "")
    function = staticmethod(F.pairwise_loss)

    def __init__(
        self,
        *,
        term: PairTerm = "logistic",
        weight: str | PairWeight | Callable[[PairContext], Tensor] = "uniform",
        pair_reduction: Literal["mean", "sum"] = "mean",
        sigma: float = 1.0,
        margin: float = 1.0,
        mu: float = 10.0,
        k: int | None = None,
        gain: Gain = "exp2",
        relevance_threshold: float | None = None,
        reduction: Reduction = "mean",
        impl: Impl = "auto",
        tile_size: int | None = None,
    ) -> None:
        super().__init__(reduction=reduction)
        where = type(self).__name__
        self.term: PairTerm = params.choice(where, "term", term, tuple(PAIR_TERMS))
        if isinstance(weight, str):
            params.choice(where, "weight", weight, tuple(PAIR_WEIGHTS))
        elif not (isinstance(weight, PairWeight) or callable(weight)):
            raise TypeError(
                f"{where}: weight must be a name of {sorted(PAIR_WEIGHTS)}, a PairWeight or a "
                f"callable, got {type(weight).__name__}"
            )
        self.weight = weight
        self.pair_reduction: Literal["mean", "sum"] = params.choice(
            where, "pair_reduction", pair_reduction, ("mean", "sum")
        )
        self.sigma = params.positive(where, "sigma", sigma)
        self.margin = params.nonnegative(where, "margin", margin)
        self.mu = params.nonnegative(where, "mu", mu)
        self.k = params.cutoff(where, "k", k)
        self.gain: Gain = params.choice(where, "gain", gain, GAINS)
        self.relevance_threshold = (
            None
            if relevance_threshold is None
            else params.number(where, "relevance_threshold", relevance_threshold)
        )
        spec = PAIR_WEIGHTS[weight] if isinstance(weight, str) else weight
        name = weight_name(spec) if isinstance(spec, PairWeight) else None
        named = name is not None
        no_kernel = triton_unavailable(self.term, name)
        self._init_impl(impl, tile_size, streams=named, no_kernel=no_kernel)


@register_loss(
    "ranknet",
    family="pairwise",
    function=F.ranknet_loss,
    search_space={"sigma": ("log", 0.25, 4.0)},
)
class RankNetLoss(_TiledListLoss):
    __doc__ = _doc(F.ranknet_loss)
    function = staticmethod(F.ranknet_loss)

    def __init__(
        self,
        *,
        sigma: float = 1.0,
        k: int | None = None,
        reduction: Reduction = "mean",
        impl: Impl = "auto",
        tile_size: int | None = None,
    ) -> None:
        super().__init__(reduction=reduction)
        self.sigma = params.positive(type(self).__name__, "sigma", sigma)
        self.k = params.cutoff(type(self).__name__, "k", k)
        self._init_impl(impl, tile_size)


@register_loss(
    "pairwise_hinge",
    family="pairwise",
    function=F.pairwise_hinge_loss,
    search_space={"margin": ("float", 0.1, 2.0)},
)
class PairwiseHingeLoss(_TiledListLoss):
    __doc__ = _doc(F.pairwise_hinge_loss)
    function = staticmethod(F.pairwise_hinge_loss)

    def __init__(
        self,
        *,
        margin: float = 1.0,
        k: int | None = None,
        reduction: Reduction = "mean",
        impl: Impl = "auto",
        tile_size: int | None = None,
    ) -> None:
        super().__init__(reduction=reduction)
        self.margin = params.nonnegative(type(self).__name__, "margin", margin)
        self.k = params.cutoff(type(self).__name__, "k", k)
        self._init_impl(impl, tile_size, no_kernel=triton_unavailable("hinge", None))


@register_loss("bpr", family="pairwise", function=F.bpr_loss)
class BPRLoss(_TiledListLoss):
    __doc__ = _doc(F.bpr_loss)
    function = staticmethod(F.bpr_loss)

    def __init__(
        self,
        *,
        relevance_threshold: float = 1.0,
        k: int | None = None,
        reduction: Reduction = "mean",
        impl: Impl = "auto",
        tile_size: int | None = None,
    ) -> None:
        super().__init__(reduction=reduction)
        where = type(self).__name__
        self.relevance_threshold = params.number(where, "relevance_threshold", relevance_threshold)
        self.k = params.cutoff(where, "k", k)
        self._init_impl(impl, tile_size)


@register_loss(
    "lambdarank",
    family="pairwise",
    function=F.lambdarank_loss,
    tie_order="scores",
    search_space={"sigma": ("log", 0.25, 4.0)},
)
class LambdaRankLoss(_TiledListLoss):
    __doc__ = _doc(F.lambdarank_loss)
    function = staticmethod(F.lambdarank_loss)

    def __init__(
        self,
        *,
        sigma: float = 1.0,
        k: int | None = None,
        gain: Gain = "exp2",
        reduction: Reduction = "mean",
        impl: Impl = "auto",
        tile_size: int | None = None,
    ) -> None:
        super().__init__(reduction=reduction)
        where = type(self).__name__
        self.sigma = params.positive(where, "sigma", sigma)
        self.k = params.cutoff(where, "k", k)
        self.gain: Gain = params.choice(where, "gain", gain, GAINS)
        self._init_impl(impl, tile_size)


@register_loss(
    "lambdaloss",
    family="pairwise",
    function=F.lambdaloss_loss,
    tie_order="scores",
    search_space={
        "weighting": ("choice", ("ndcg_loss2pp", "ndcg_loss2", "ndcg_loss1")),
        "sigma": ("log", 0.25, 4.0),
    },
)
class LambdaLoss(_TiledListLoss):
    __doc__ = _doc(F.lambdaloss_loss)
    function: ClassVar[Callable[..., Tensor]] = staticmethod(F.lambdaloss_loss)

    def __init__(
        self,
        *,
        weighting: str = "ndcg_loss2pp",
        sigma: float = 1.0,
        mu: float = 10.0,
        k: int | None = None,
        gain: Gain = "exp2",
        reduction: Reduction = "mean",
        impl: Impl = "auto",
        tile_size: int | None = None,
    ) -> None:
        super().__init__(reduction=reduction)
        where = type(self).__name__
        self.weighting = params.choice(where, "weighting", weighting, LAMBDALOSS_WEIGHTINGS)
        self.sigma = params.positive(where, "sigma", sigma)
        self.mu = params.nonnegative(where, "mu", mu)
        self.k = params.cutoff(where, "k", k)
        self.gain: Gain = params.choice(where, "gain", gain, GAINS)
        self._init_impl(impl, tile_size, no_kernel=triton_unavailable("logistic", self.weighting))

"""Module forms of the losses of :mod:`rankloss.functional.listwise_more`.

Each class holds checked hyper-parameters and calls its function; the formula, the paper and
the cost are in the function's docstring. The two stochastic losses (:class:`XENDCGLoss`,
:class:`GumbelApproxNDCGLoss`) draw their perturbation only in training mode and only from
the seeded ``generator`` passed on the call (no global random state); in evaluation mode, or
without a generator, they are deterministic.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import torch
from torch import Tensor

from rankloss._core import params
from rankloss._core.ranking import GAINS
from rankloss._core.reduce import Reduction
from rankloss._core.validation import computes_in_float32
from rankloss.functional.listwise_more import (
    gumbel_approx_ndcg_loss,
    pirank_loss,
    position_aware_listmle_loss,
    rank_cosine_loss,
    soft_rank_ndcg_loss,
    xe_ndcg_loss,
)
from rankloss.losses.base import ListLoss, register_loss

__all__ = [
    "XENDCGLoss",
    "GumbelApproxNDCGLoss",
    "PiRankLoss",
    "PositionAwareListMLELoss",
    "RankCosineLoss",
    "SoftRankNDCGLoss",
]

Gain = Literal["exp2", "linear"]


def _doc(function: Callable[..., Tensor]) -> str:
    return f"Module form of :func:`rankloss.functional.{function.__name__}`.\n\n" + (
        function.__doc__ or ""
    )


@register_loss("xe_ndcg", family="listwise", function=xe_ndcg_loss, label_range="nonnegative")
class XENDCGLoss(ListLoss):
    __doc__ = _doc(xe_ndcg_loss)
    function = staticmethod(xe_ndcg_loss)

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
        """As :meth:`ListLoss.forward`; in training mode a seeded ``generator`` draws a fresh
        :math:`\\gamma \\sim U[0, 1]` per item (otherwise :math:`\\gamma = 1/2`)."""
        return xe_ndcg_loss(
            scores,
            labels,
            mask,
            weights=weights,
            reduction=self.reduction,
            generator=generator if self.training else None,
        )


@register_loss(
    "gumbel_approx_ndcg",
    family="listwise",
    function=gumbel_approx_ndcg_loss,
    search_space={"alpha": ("log", 1.0, 100.0), "samples": ("int", 1, 8)},
)
class GumbelApproxNDCGLoss(ListLoss):
    __doc__ = _doc(gumbel_approx_ndcg_loss)
    function = staticmethod(gumbel_approx_ndcg_loss)

    def __init__(
        self,
        *,
        alpha: float = 10.0,
        gain: Gain = "exp2",
        samples: int = 1,
        reduction: Reduction = "mean",
    ) -> None:
        super().__init__(reduction=reduction)
        where = type(self).__name__
        self.alpha = params.positive(where, "alpha", alpha)
        self.gain: Gain = params.choice(where, "gain", gain, GAINS)
        self.samples = params.positive_int(where, "samples", samples)

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
        """As :meth:`ListLoss.forward`; in training mode a seeded ``generator`` draws
        ``samples`` Gumbel perturbations per call (otherwise there is no noise)."""
        return gumbel_approx_ndcg_loss(
            scores,
            labels,
            mask,
            weights=weights,
            reduction=self.reduction,
            alpha=self.alpha,
            gain=self.gain,
            samples=self.samples,
            generator=generator if self.training else None,
        )


@register_loss(
    "pirank",
    family="listwise",
    function=pirank_loss,
    search_space={"temperature": ("log", 0.1, 10.0)},
)
class PiRankLoss(ListLoss):
    __doc__ = _doc(pirank_loss)
    function = staticmethod(pirank_loss)

    def __init__(
        self,
        *,
        temperature: float = 1.0,
        k: int | None = 10,
        gain: Gain = "exp2",
        reduction: Reduction = "mean",
    ) -> None:
        super().__init__(reduction=reduction)
        where = type(self).__name__
        self.temperature = params.positive(where, "temperature", temperature)
        self.k = params.cutoff(where, "k", k)
        self.gain: Gain = params.choice(where, "gain", gain, GAINS)


@register_loss(
    "position_aware_listmle",
    family="listwise",
    function=position_aware_listmle_loss,
    tie_order="labels",
)
class PositionAwareListMLELoss(ListLoss):
    __doc__ = _doc(position_aware_listmle_loss)
    function = staticmethod(position_aware_listmle_loss)

    def __init__(self, *, reduction: Reduction = "mean") -> None:
        super().__init__(reduction=reduction)


@register_loss("rank_cosine", family="listwise", function=rank_cosine_loss)
class RankCosineLoss(ListLoss):
    __doc__ = _doc(rank_cosine_loss)
    function = staticmethod(rank_cosine_loss)

    def __init__(self, *, reduction: Reduction = "mean") -> None:
        super().__init__(reduction=reduction)


@register_loss(
    "soft_rank_ndcg",
    family="listwise",
    function=soft_rank_ndcg_loss,
    search_space={"regularization_strength": ("log", 0.01, 10.0)},
)
class SoftRankNDCGLoss(ListLoss):
    __doc__ = _doc(soft_rank_ndcg_loss)
    function = staticmethod(soft_rank_ndcg_loss)

    def __init__(
        self,
        *,
        regularization_strength: float = 1.0,
        gain: Gain = "exp2",
        reduction: Reduction = "mean",
    ) -> None:
        super().__init__(reduction=reduction)
        where = type(self).__name__
        self.regularization_strength = params.positive(
            where, "regularization_strength", regularization_strength
        )
        self.gain: Gain = params.choice(where, "gain", gain, GAINS)

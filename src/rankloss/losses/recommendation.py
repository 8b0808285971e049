"""Module forms of the recommendation losses of :mod:`rankloss.functional.recommendation`.

Each class holds checked hyper-parameters and calls its function; the formula, the paper and
the cost are in the function's docstring. They are list losses (family ``recommendation``): a
list is one user's candidates, its positive(s) (label > 0) and sampled or in-batch negatives
(label 0). :class:`SampledSoftmaxLoss` also takes the candidates' log sampling probabilities,
``log_q``, on each call (data, not a hyper-parameter).
"""

from __future__ import annotations

from collections.abc import Callable

from torch import Tensor

from rankloss._core import params
from rankloss._core.reduce import Reduction
from rankloss._core.validation import computes_in_float32
from rankloss.functional.recommendation import (
    bpr_max_loss,
    ccl_loss,
    gbce_beta,
    gbce_loss,
    sampled_softmax_loss,
    top1_max_loss,
)
from rankloss.losses.base import ListLoss, register_loss

__all__ = [
    "SampledSoftmaxLoss",
    "BPRMaxLoss",
    "TOP1MaxLoss",
    "GBCELoss",
    "CCLLoss",
]


def _doc(function: Callable[..., Tensor]) -> str:
    return f"Module form of :func:`rankloss.functional.{function.__name__}`.\n\n" + (
        function.__doc__ or ""
    )


@register_loss(
    "sampled_softmax",
    family="recommendation",
    function=sampled_softmax_loss,
    label_range="nonnegative",
    soft_labels=True,
    search_space={"temperature": ("log", 0.01, 1.0)},
)
class SampledSoftmaxLoss(ListLoss):
    __doc__ = _doc(sampled_softmax_loss)
    function = staticmethod(sampled_softmax_loss)

    def __init__(self, *, temperature: float = 1.0, reduction: Reduction = "mean") -> None:
        super().__init__(reduction=reduction)
        self.temperature = params.positive(type(self).__name__, "temperature", temperature)

    @computes_in_float32
    def forward(
        self,
        scores: Tensor,
        labels: Tensor,
        mask: Tensor | None = None,
        *,
        weights: Tensor | None = None,
        log_q: Tensor | None = None,
    ) -> Tensor:
        """As :meth:`ListLoss.forward`, with ``log_q`` ``[..., n]``: the log probability that
        each candidate was sampled (``None``: uniform, no correction)."""
        return sampled_softmax_loss(
            scores,
            labels,
            mask,
            log_q,
            weights=weights,
            reduction=self.reduction,
            temperature=self.temperature,
        )


@register_loss(
    "bpr_max",
    family="recommendation",
    function=bpr_max_loss,
    label_range="nonnegative",
    search_space={"regularization": ("float", 0.0, 2.0)},
)
class BPRMaxLoss(ListLoss):
    __doc__ = _doc(bpr_max_loss)
    function = staticmethod(bpr_max_loss)

    def __init__(self, *, regularization: float = 1.0, reduction: Reduction = "mean") -> None:
        super().__init__(reduction=reduction)
        self.regularization = params.nonnegative(
            type(self).__name__, "regularization", regularization
        )


@register_loss(
    "top1_max",
    family="recommendation",
    function=top1_max_loss,
    label_range="nonnegative",
    search_space={"regularization": ("float", 0.0, 2.0)},
)
class TOP1MaxLoss(ListLoss):
    __doc__ = _doc(top1_max_loss)
    function = staticmethod(top1_max_loss)

    def __init__(self, *, regularization: float = 1.0, reduction: Reduction = "mean") -> None:
        super().__init__(reduction=reduction)
        self.regularization = params.nonnegative(
            type(self).__name__, "regularization", regularization
        )


@register_loss(
    "gbce",
    family="recommendation",
    function=gbce_loss,
    label_range="nonnegative",
    example={"num_negatives": 256, "num_items": 10_000},
    search_space={"calibration": ("float", 0.0, 1.0)},
)
class GBCELoss(ListLoss):
    __doc__ = _doc(gbce_loss)
    function = staticmethod(gbce_loss)

    def __init__(
        self,
        *,
        sampling_rate: float | None = None,
        num_negatives: int | None = None,
        num_items: int | None = None,
        calibration: float = 0.75,
        reduction: Reduction = "mean",
    ) -> None:
        super().__init__(reduction=reduction)
        where = type(self).__name__
        #: :math:`\beta` of :func:`~rankloss.functional.recommendation.gbce_beta`.
        self.beta = _checked_beta(where, sampling_rate, num_negatives, num_items, calibration)
        self.sampling_rate = sampling_rate
        self.num_negatives = num_negatives
        self.num_items = num_items
        self.calibration = float(calibration)


def _checked_beta(
    where: str,
    sampling_rate: float | None,
    num_negatives: int | None,
    num_items: int | None,
    calibration: float,
) -> float:
    """:func:`gbce_beta`, with its errors reworded for the module ``where``."""
    try:
        return gbce_beta(
            sampling_rate=sampling_rate,
            num_negatives=num_negatives,
            num_items=num_items,
            calibration=calibration,
        )
    except (TypeError, ValueError) as error:
        raise type(error)(str(error).replace("gbce_beta", where, 1)) from None


@register_loss(
    "ccl",
    family="recommendation",
    function=ccl_loss,
    label_range="nonnegative",
    search_space={"margin": ("float", 0.0, 1.0), "negative_weight": ("log", 1.0, 300.0)},
)
class CCLLoss(ListLoss):
    __doc__ = _doc(ccl_loss)
    function = staticmethod(ccl_loss)

    def __init__(
        self, *, margin: float = 0.5, negative_weight: float = 10.0, reduction: Reduction = "mean"
    ) -> None:
        super().__init__(reduction=reduction)
        where = type(self).__name__
        self.margin = params.in_range(where, "margin", margin, -1.0, 1.0)
        self.negative_weight = params.nonnegative(where, "negative_weight", negative_weight)

r"""Module forms of the detection ranking losses of :mod:`rankloss.functional.detection`.

A list is the anchors of one image: ``loss(logits [..., n], iou_targets [..., n], mask)``,
with ``label > 0`` a positive. The backward of each is the paper's error-driven update, not
the gradient of the value (registered with ``exact_gradient=False``).

>>> import torch
>>> from rankloss.losses.detection import RankSortLoss
>>> logits = torch.randn(2, 6, requires_grad=True)
>>> ious = torch.tensor([[0.9, 0.6, 0, 0, 0, 0], [0.0, 0.7, 0, 0, 0.55, 0]])
>>> RankSortLoss()(logits, ious).backward()
"""

from __future__ import annotations

from collections.abc import Callable

from torch import Tensor

from rankloss._core import params
from rankloss._core.reduce import Reduction
from rankloss.functional.detection import alrp_loss, ap_loss, rank_sort_loss
from rankloss.losses.base import ListLoss, register_loss

__all__ = ["APLoss", "ALRPLoss", "RankSortLoss"]


def _doc(function: Callable[..., Tensor]) -> str:
    return f"Module form of :func:`rankloss.functional.{function.__name__}`.\n\n" + (
        function.__doc__ or ""
    )


@register_loss(
    "ap_loss",
    family="detection",
    function=ap_loss,
    label_range="nonnegative",
    exact_gradient=False,
    search_space={"delta": ("float", 0.25, 2.0)},
)
class APLoss(ListLoss):
    __doc__ = _doc(ap_loss)
    function = staticmethod(ap_loss)

    def __init__(self, *, delta: float = 1.0, reduction: Reduction = "mean") -> None:
        super().__init__(reduction=reduction)
        self.delta = params.positive(type(self).__name__, "delta", delta)


@register_loss(
    "alrp_loss",
    family="detection",
    function=alrp_loss,
    label_range="nonnegative",
    exact_gradient=False,
    search_space={"delta": ("float", 0.25, 1.0)},
)
class ALRPLoss(ListLoss):
    __doc__ = _doc(alrp_loss)
    function = staticmethod(alrp_loss)

    def __init__(
        self, *, delta: float = 0.5, min_positive_iou: float = 0.5, reduction: Reduction = "mean"
    ) -> None:
        super().__init__(reduction=reduction)
        where = type(self).__name__
        self.delta = params.positive(where, "delta", delta)
        tau = params.number(where, "min_positive_iou", min_positive_iou)
        if not 0.0 <= tau < 1.0:
            raise ValueError(
                f"{where}: min_positive_iou must be in [0, 1), got {min_positive_iou!r}"
            )
        self.min_positive_iou = tau


@register_loss(
    "rank_sort",
    family="detection",
    function=rank_sort_loss,
    label_range="nonnegative",
    exact_gradient=False,
    search_space={"delta": ("float", 0.25, 1.0)},
)
class RankSortLoss(ListLoss):
    __doc__ = _doc(rank_sort_loss)
    function = staticmethod(rank_sort_loss)

    def __init__(self, *, delta: float = 0.5, reduction: Reduction = "mean") -> None:
        super().__init__(reduction=reduction)
        self.delta = params.positive(type(self).__name__, "delta", delta)

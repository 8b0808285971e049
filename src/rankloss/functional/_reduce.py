"""Reduction shared by every loss: one value per list, then ``none``, ``sum`` or ``mean``."""

from __future__ import annotations

import torch
from torch import Tensor

from rankloss._validation import ListBatch, check_choice

__all__ = ["REDUCTIONS", "reduce_lists", "masked_mean"]

REDUCTIONS = ("mean", "sum", "none")


def masked_mean(values: Tensor, mask: Tensor, dim: int = -1) -> tuple[Tensor, Tensor]:
    """Mean of ``values`` over ``mask`` along ``dim``, and whether anything was averaged.

    Returns ``(mean, has_any)``; where nothing is masked in, the mean is 0 (finite, with a zero
    gradient), never NaN.
    """
    count = mask.sum(dim)
    total = torch.where(mask, values, values.new_zeros(())).sum(dim)
    has_any = count > 0
    return total / count.clamp(min=1).to(values.dtype), has_any


def reduce_lists(
    per_list: Tensor,
    valid: Tensor,
    batch: ListBatch,
    reduction: str,
) -> Tensor:
    """Reduce one value per list to the loss the caller asked for.

    Args:
        per_list: ``[B]`` loss of each list; must be finite everywhere (invalid lists included).
        valid: ``[B]`` bool, ``False`` for a list with nothing to learn from (all masked, or no
            pair of differing labels for a pairwise loss).
        batch: the validated inputs; ``batch.list_weights`` (``[B]``) weights the lists.
        reduction: ``"none"`` returns ``[...]`` with 0 for invalid lists; ``"sum"`` is
            :math:`\\sum_b w_b \\ell_b`; ``"mean"`` is
            :math:`\\sum_b w_b \\ell_b / \\sum_b w_b` over valid lists only.

    A batch with nothing to learn from gives a finite zero that is still connected to the graph
    (``per_list.sum() * 0``), so ``backward()`` works and gives zero gradients.
    """
    check_choice("reduction", reduction, REDUCTIONS)
    zero = per_list.new_zeros(())
    values = torch.where(valid, per_list, zero)
    if reduction == "none":
        return batch.unflatten(values)
    weights = valid.to(per_list.dtype)
    if batch.list_weights is not None:
        weights = weights * batch.list_weights
    total = (values * weights).sum()
    if reduction == "sum":
        return total
    denominator = weights.sum()
    # Connected zero when there is nothing to average: total is 0 * graph there.
    return total / torch.where(denominator != 0, denominator, torch.ones_like(denominator))

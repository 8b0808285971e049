"""The one reduction of rankloss: one value per list (or anchor), then ``none``/``sum``/``mean``.

Every loss computes one value per list (list losses) or per anchor (embedding losses) and a
``valid`` flag saying whether that list or anchor had anything to learn from, then calls
:func:`reduce_values`. ``reduction="mean"`` is the weighted mean over valid entries only.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor

from rankloss._core.validation import ListBatch, check_choice, check_weights, shape_str

__all__ = [
    "REDUCTIONS",
    "Reduction",
    "reduce_values",
    "reduce_lists",
    "masked_mean",
    "checked_weights",
]

REDUCTIONS = ("mean", "sum", "none")

#: The type of every ``reduction`` argument.
Reduction = Literal["mean", "sum", "none"]


def masked_mean(values: Tensor, mask: Tensor, dim: int = -1) -> tuple[Tensor, Tensor]:
    """Mean of ``values`` over ``mask`` along ``dim``, and whether anything was averaged.

    Returns ``(mean, has_any)``; where nothing is masked in, the mean is 0 (finite, with a zero
    gradient), never NaN.
    """
    count = mask.sum(dim)
    total = torch.where(mask, values, values.new_zeros(())).sum(dim)
    has_any = count > 0
    return total / count.clamp(min=1).to(values.dtype), has_any


def reduce_values(
    values: Tensor,
    valid: Tensor,
    weights: Tensor | None,
    reduction: str,
    *,
    where: str = "loss",
) -> Tensor:
    r"""Reduce one value per list or anchor to the loss the caller asked for.

    Args:
        values: ``[B]`` one value per list or anchor; must be finite where ``valid``.
        valid: ``[B]`` bool, ``False`` for an entry with nothing to learn from.
        weights: ``[B]`` weight of each entry, or ``None`` (all 1).
        reduction: ``"none"`` returns ``[B]`` with 0 where not valid; ``"sum"`` is
            :math:`\sum_b w_b \ell_b`; ``"mean"`` is :math:`\sum_b w_b \ell_b / \sum_b w_b`
            over valid entries only.
        where: the caller's name, for error messages.

    A batch with nothing to learn from gives a finite zero still connected to the graph, so
    ``backward()`` works and gives zero gradients. Cost: :math:`O(B)`.

    Raises:
        ValueError: for weights of the wrong dtype or shape, or holding NaN, inf or a negative
            value (naming the first such position).
    """
    check_choice("reduction", reduction, REDUCTIONS, where)
    weights = checked_weights(weights, values, where)
    return _reduce(values, valid, weights, reduction)


def checked_weights(weights: object, like: Tensor, where: str) -> Tensor | None:
    """``weights`` as a tensor with the shape of ``like`` (one per list or anchor), or ``None``.

    Raises:
        ValueError: for weights of the wrong dtype or shape, or holding NaN, inf or a negative
            value (naming the first such position).
    """
    if weights is None:
        return None
    if not isinstance(weights, Tensor):
        weights = torch.as_tensor(weights, device=like.device)
    if weights.is_complex() or weights.dtype == torch.bool:
        raise ValueError(f"{where}: weights must be real numbers, got dtype {weights.dtype}")
    if weights.shape != like.shape:
        raise ValueError(
            f"{where}: weights has shape {shape_str(weights)}; expected "
            f"{shape_str(like)}, one weight per {'anchor' if like.dim() == 1 else 'list'}"
        )
    check_weights(weights, where)
    return weights


def note_denominator(count: Tensor) -> None:
    """Report the weighted count of valid entries of a reduction done without :func:`_reduce`
    (a streaming path that sums in blocks). Nothing happens by default; a distributed wrapper
    replaces this function while it listens (``rankloss.distributed.DistributedLoss``)."""


def _reduce(values: Tensor, valid: Tensor | None, weights: Tensor | None, reduction: str) -> Tensor:
    """:func:`reduce_values` on inputs already checked; ``valid=None`` means every entry is
    valid (the caller knows it without a tensor: no padding), which saves the masking ops."""
    if valid is None:
        if reduction == "none":
            return values
        if weights is None:
            if reduction == "sum":
                return values.sum()
            if values.numel() > 0:
                return values.mean()
        valid = torch.ones_like(values, dtype=torch.bool)
    zero = values.new_zeros(())
    kept = torch.where(valid, values, zero)
    if reduction == "none":
        return kept
    scale = valid.to(values.dtype)
    if weights is not None:
        scale = scale * weights.to(values.dtype)
    total = (kept * scale).sum()
    if reduction == "sum":
        return total
    denominator = scale.sum()
    # Connected zero when there is nothing to average: total is 0 * graph there.
    return total / torch.where(denominator != 0, denominator, torch.ones_like(denominator))


def reduce_lists(
    per_list: Tensor, valid: Tensor | None, batch: ListBatch, reduction: str
) -> Tensor:
    """:func:`reduce_values` for list losses: per-list weights from ``batch``, and
    ``reduction="none"`` reshaped back to the caller's batch shape ``[...]``.

    ``batch`` was validated by :func:`rankloss._core.validation.check_lists` (its weights
    included), so nothing is checked again here: no device synchronisation. ``valid=None``
    means every list counts (see :meth:`ListBatch.real_lists`).
    """
    check_choice("reduction", reduction, REDUCTIONS, "loss")
    out = _reduce(per_list, valid, batch.list_weights, reduction)
    return batch.unflatten(out) if reduction == "none" else out

"""One place that checks the tensor contract and says what is wrong.

The contract (see ``docs/conventions.md``):

* ``scores``: ``[..., n]`` floating point, higher means ranked higher.
* ``labels``: ``[..., n]`` real-valued graded relevance (any real value, negatives included;
  labels are never used as padding). Integer and boolean labels are accepted and converted.
* ``mask``: ``[..., n]`` bool, ``True`` marks a real item; ``None`` means every item is real.
* ``weights``: ``None``, per list ``[...]`` or per item ``[..., n]``.

Half-precision inputs (float16, bfloat16) are computed in float32; float64 stays float64 so
that ``torch.autograd.gradcheck`` works. Under ``torch.autocast`` too: every loss module's
forward and every functional entry point that multiplies matrices runs with autocast off for
its inputs' device (:func:`computes_in_float32`, :func:`autocast_off`).
"""

from __future__ import annotations

import functools
import math
import sys
import warnings
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any, ParamSpec, TypeVar

import torch
from torch import Tensor
from torch.amp.autocast_mode import is_autocast_available

from rankloss._core import params

__all__ = [
    "ListBatch",
    "check_weights",
    "check_lists",
    "check_embeddings",
    "compute_dtype",
    "autocast_off",
    "computes_in_float32",
    "PaddingLabelWarning",
    "check_choice",
    "shape_str",
]

_HALF = (torch.float16, torch.bfloat16)

P = ParamSpec("P")
R = TypeVar("R")


class PaddingLabelWarning(UserWarning):
    """Labels hold -1 and no mask was given: -1 is taken as a real label, not as padding."""


#: Whether :class:`PaddingLabelWarning` was issued in this process (it is issued once).
_warned_padding_labels = False

_PADDING_LABEL_MESSAGE = (
    "{where}: labels hold -1 and no mask was given: rankloss treats -1 as a real label (a "
    "negative grade). If -1 marks padding, as in allRank, pass mask=labels != -1."
)


def compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """The dtype a loss computes in: float32 for half precision and integers, else ``dtype``."""
    if dtype in _HALF or not dtype.is_floating_point:
        return torch.float32
    return dtype


def autocast_off(device: torch.device) -> AbstractContextManager[Any]:
    """A context with ``torch.autocast`` disabled for ``device``'s type, if it is enabled there.

    Inside it, matrix products of float32 tensors stay float32 (autocast would run them in
    float16 or bfloat16). A no-op context when autocast is off for that device type.
    """
    kind = device.type
    if is_autocast_available(kind) and torch.is_autocast_enabled(kind):
        return torch.autocast(device_type=kind, enabled=False)
    return nullcontext()


def _upcast(value: object) -> object:
    if isinstance(value, Tensor) and value.dtype in _HALF:
        return value.float()
    return value


def computes_in_float32(fn: Callable[P, R]) -> Callable[P, R]:
    """Decorator: run ``fn`` in float32 even under ``torch.autocast``.

    float16 and bfloat16 tensor arguments are converted to float32 (their gradient comes back
    in their own dtype) and ``fn`` runs inside :func:`autocast_off` for the device of its first
    tensor argument. Other arguments, and float32 or float64 tensors, pass unchanged. Used on
    every loss module's ``forward`` and on :func:`rankloss._core.similarity.pairwise_similarity`.
    """

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        # Called on every forward: one pass over the arguments, nothing built when no
        # argument is in half precision and autocast is off (the common case).
        first: Tensor | None = None
        half = False
        for value in (*args, *kwargs.values()):
            if isinstance(value, Tensor):
                if first is None:
                    first = value
                half = half or value.dtype in _HALF
        if first is None:
            return fn(*args, **kwargs)
        if half:
            args = tuple(_upcast(a) for a in args)  # type: ignore[assignment]
            kwargs = {k: _upcast(v) for k, v in kwargs.items()}  # type: ignore[assignment]
        kind = first.device.type
        if is_autocast_available(kind) and torch.is_autocast_enabled(kind):
            with torch.autocast(device_type=kind, enabled=False):
                return fn(*args, **kwargs)
        return fn(*args, **kwargs)

    return wrapper


def shape_str(t: Tensor) -> str:
    """``[2, 5]``: a tensor's shape as error messages print it."""
    return "[" + ", ".join(str(s) for s in t.shape) + "]"


def check_choice(name: str, value: object, choices: tuple, where: str | None = None) -> None:
    """Raise ``ValueError`` unless ``value`` is one of ``choices`` (:func:`params.choice`,
    with the argument order of the metrics' calls).

    The message reads ``"<where>: <name> must be one of [...], got ..."``.
    """
    params.choice(where or "", name, value, tuple(choices))  # type: ignore[type-var]


def _position(index: int, shape: torch.Size) -> str:
    """``[1, 3]``: the position of a flat (row-major) index in ``shape``."""
    position = []
    for size in reversed(shape):
        index, rest = divmod(index, size) if size else (index, 0)
        position.append(rest)
    return "[" + ", ".join(str(p) for p in reversed(position)) + "]"


def _not_finite(
    values: Tensor, original: Tensor, name: str, where: str, what: str
) -> ValueError | None:
    """The error for the first non-finite entry of ``values`` (``original`` reshaped), if any.

    ``values`` is ``original`` flattened and converted to the compute dtype (padding already
    zeroed); the position printed is in ``original``'s shape.
    """
    bad = ~torch.isfinite(values.reshape(-1))
    if not bool(bad.any()):
        return None
    index = int(bad.nonzero()[0, 0])
    value = values.reshape(-1)[index].item()
    given = original.reshape(-1)[index].item()
    shown = str(value) if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if math.isfinite(given):  # finite in the caller's dtype, not in the compute dtype
        shown = f"{given!r}, which overflows {values.dtype},"
    return ValueError(
        f"{where}: {name} holds {shown} at {_position(index, original.shape)} ({what})"
    )


def check_finite(x: Tensor, name: str, where: str, what: str) -> None:
    """Raise if ``x`` (any shape) holds NaN or inf, naming the first position in ``x``'s own
    shape; ``what`` says why it must be finite. Cost: one sum and one synchronisation (the
    per-entry search runs only when the sum is not finite)."""
    values = x.detach()
    if math.isfinite(values.sum().item()):
        return
    error = _not_finite(values, values, name, where, what)
    if error is not None:
        raise error


def _weights_ok(weights: Tensor) -> Tensor:
    """A 0-d bool tensor: every weight is finite and non-negative (no synchronisation)."""
    return (torch.isfinite(weights) & (weights >= 0)).all()


def _bad_weights(values: Tensor, original: Tensor, where: str) -> ValueError | None:
    """The error for the first non-finite, then the first negative, weight, if any.

    ``values`` holds the weights in the compute dtype (padded items zeroed), ``original`` the
    caller's weights in their own shape. Weights scale terms of a loss: a NaN or infinite one
    would make the loss NaN, and a negative one would reward a wrong ranking, so both are
    refused.
    """
    error = _not_finite(values, original, "weights", where, "weights must be finite")
    if error is not None:
        return error
    negative = (values.reshape(-1) < 0).nonzero()
    if negative.numel() == 0:
        return None
    index = int(negative[0, 0])
    return ValueError(
        f"{where}: weights holds {original.reshape(-1)[index].item()!r} at "
        f"{_position(index, original.shape)} (weights must be non-negative)"
    )


def check_weights(weights: Tensor, where: str) -> None:
    """Raise ``ValueError`` naming the first NaN, infinite or negative entry of ``weights``.

    The message reads ``"<where>: weights holds nan at [2] (weights must be finite)"``, as the
    other finiteness checks do. Cost: one pass and one device synchronisation.
    """
    values = weights.detach()
    if not values.dtype.is_floating_point:
        values = values.to(torch.float32)
    if bool(_weights_ok(values)):
        return
    error = _bad_weights(values, weights.detach(), where)
    if error is not None:
        raise error


def _warn_padding_labels(where: str) -> None:
    """Issue :class:`PaddingLabelWarning` (once per process) at the caller's line."""
    global _warned_padding_labels
    _warned_padding_labels = True
    # Point at the first frame outside rankloss and torch (the user's call).
    level, frame = 1, sys._getframe(0)
    while frame.f_back is not None and frame.f_globals.get("__name__", "").startswith(
        ("rankloss.", "torch.")
    ):
        level, frame = level + 1, frame.f_back
    warnings.warn(_PADDING_LABEL_MESSAGE.format(where=where), PaddingLabelWarning, stacklevel=level)


@dataclass(frozen=True)
class ListBatch:
    """Validated list inputs, flattened to ``[B, n]`` and sanitised.

    Attributes:
        scores: ``[B, n]`` in the compute dtype; padded positions hold 0.
        labels: ``[B, n]`` in the compute dtype; padded positions hold 0.
        mask: ``[B, n]`` bool.
        list_weights: ``[B]`` or ``None``.
        item_weights: ``[B, n]`` (0 at padded positions) or ``None``.
        batch_shape: the leading shape ``[...]`` of the inputs, to reshape results back.
        padded: ``False`` when every item is real (no mask given, or an all-``True`` one):
            losses may then skip the masking ops (:attr:`real`, :meth:`real_lists`).
    """

    scores: Tensor
    labels: Tensor
    mask: Tensor
    list_weights: Tensor | None
    item_weights: Tensor | None
    batch_shape: torch.Size
    padded: bool = True

    @property
    def num_items(self) -> int:
        return self.scores.shape[-1]

    @property
    def real(self) -> Tensor | None:
        """``[B, n]`` the mask, or ``None`` when nothing is padded (nothing to mask)."""
        return self.mask if self.padded else None

    def real_lists(self) -> Tensor | None:
        """``[B]`` whether each list has a real item, or ``None`` when every list has one
        (no padding and ``n > 0``): the ``valid`` argument of ``reduce_lists``."""
        if self.padded or self.num_items == 0:
            return self.mask.any(-1)
        return None

    def unflatten(self, per_list: Tensor) -> Tensor:
        """Reshape a ``[B]`` tensor back to the caller's batch shape ``[...]``."""
        return per_list.reshape(self.batch_shape)


def check_lists(
    scores: Tensor,
    labels: Tensor | None,
    mask: Tensor | None = None,
    weights: Tensor | None = None,
    *,
    where: str = "loss",
    reduction: str | None = None,
) -> ListBatch:
    """Validate and normalise ``(scores, labels, mask, weights)``.

    Args:
        scores: ``[..., n]`` floating point.
        labels: ``[..., n]`` real-valued, or ``None`` for functions that take no labels.
        mask: ``[..., n]`` bool or ``None``.
        weights: ``None``, ``[...]`` (per list) or ``[..., n]`` (per item).
        where: the caller's name, used in error messages.
        reduction: checked to be ``"mean"``, ``"sum"`` or ``"none"`` when given.

    Returns:
        A :class:`ListBatch` with every tensor flattened to ``[B, n]`` and padded positions
        replaced by zeros *before* any arithmetic, so garbage (even NaN or inf) in padding
        changes neither values nor gradients.

    Raises:
        ValueError: naming the argument and the shapes when the contract is broken, or naming
            the argument and the first position where a real (unmasked) score, label or
            weight is NaN or infinite, or where a weight is negative. Padding may hold
            anything. Cost of the checks: one sum of the scores and labels (a sum holding NaN
            or inf is not finite; the exact per-item search runs only then), the sum and
            minimum of the weights, whether the mask is all ``True`` (then ``padded`` is
            ``False`` and the losses skip their masking), all read in one device
            synchronisation.

    Warns:
        PaddingLabelWarning: once per process, when labels hold -1 and no mask is given
            (allRank pads with -1; rankloss takes it as a real label). Silence it with the
            ``warnings`` filters, or pass ``mask=labels != -1`` if -1 marks padding.
    """
    if reduction is not None:
        check_choice("reduction", reduction, ("mean", "sum", "none"), where)
    if not isinstance(scores, Tensor):
        raise ValueError(f"{where}: scores must be a torch.Tensor, got {type(scores).__name__}")
    if scores.dim() < 1:
        raise ValueError(f"{where}: scores must have shape [..., n], got a 0-d tensor")
    if not scores.dtype.is_floating_point:
        raise ValueError(f"{where}: scores must be floating point, got dtype {scores.dtype}")
    dtype = compute_dtype(scores.dtype)
    shape = scores.shape
    if labels is not None:
        if not isinstance(labels, Tensor):
            raise ValueError(f"{where}: labels must be a torch.Tensor, got {type(labels).__name__}")
        if labels.shape != shape:
            raise ValueError(
                f"{where}: labels has shape {shape_str(labels)} but scores has shape "
                f"{shape_str(scores)}"
            )
        if labels.is_complex():
            raise ValueError(f"{where}: labels must be real, got dtype {labels.dtype}")
        if labels.device != scores.device:
            raise ValueError(
                f"{where}: labels is on {labels.device} but scores is on {scores.device}"
            )
    if mask is not None:
        if not isinstance(mask, Tensor):
            raise ValueError(f"{where}: mask must be a torch.Tensor, got {type(mask).__name__}")
        if mask.dtype != torch.bool:
            raise ValueError(
                f"{where}: mask must be a bool tensor (True marks a real item), got dtype "
                f"{mask.dtype}; use mask.bool() if 1 marks a real item"
            )
        if mask.shape != shape:
            raise ValueError(
                f"{where}: mask has shape {shape_str(mask)} but scores has shape "
                f"{shape_str(scores)}"
            )
    n = shape[-1]
    batch_shape = shape[:-1]
    # An explicit number of lists (not -1) so that empty lists (n = 0) reshape too.
    num_lists = batch_shape.numel()
    flat_scores = scores.reshape(num_lists, n).to(dtype)
    if mask is None:
        flat_mask = torch.ones_like(flat_scores, dtype=torch.bool)
    else:
        flat_mask = mask.reshape(num_lists, n).to(scores.device)
    zero = flat_scores.new_zeros(())
    # Without a mask there is no padding to zero (and nothing to spend on it).
    if mask is not None:
        flat_scores = torch.where(flat_mask, flat_scores, zero)
    if labels is not None:
        flat_labels = labels.reshape(num_lists, n).to(dtype)
        if mask is not None:
            flat_labels = torch.where(flat_mask, flat_labels, zero)
    else:
        flat_labels = torch.zeros_like(flat_scores)
    list_weights = item_weights = flat_weights = None
    if weights is not None:
        if not isinstance(weights, Tensor):
            weights = torch.as_tensor(weights, device=scores.device)
        if weights.is_complex() or weights.dtype == torch.bool:
            raise ValueError(f"{where}: weights must be real numbers, got dtype {weights.dtype}")
        if weights.shape == shape:
            item_weights = weights.reshape(num_lists, n).to(dtype)
            if mask is not None:
                item_weights = torch.where(flat_mask, item_weights, zero)
            flat_weights = item_weights
        elif weights.shape == batch_shape:
            list_weights = weights.reshape(-1).to(dtype)
            flat_weights = list_weights
        else:
            raise ValueError(
                f"{where}: weights has shape {shape_str(weights)}; expected per-list "
                f"{shape_str(scores[..., 0])} or per-item {shape_str(scores)}"
            )
    # One device synchronisation for every check; padding is already zero. A sum holding NaN or
    # inf is never finite, so the sums find every bad value (a sum that merely overflows sends
    # the search below through the exact per-item check, which then finds nothing). Until the
    # padding-label warning has been issued, the smallest label says whether -1 can be there.
    stats: list[Tensor] = []

    def slot(value: Tensor) -> int:
        stats.append(value)
        return len(stats) - 1

    total = slot(flat_scores.detach().sum() + flat_labels.detach().sum())
    weight_sum = weight_min = all_real = min_label = None
    if flat_weights is not None:
        weight_sum = slot(flat_weights.detach().sum())
        if flat_weights.numel():
            weight_min = slot(flat_weights.detach().amin())
    if mask is not None:  # an all-True mask pads nothing: the losses' fast path applies
        all_real = slot(flat_mask.all().to(dtype))
    if mask is None and labels is not None and not _warned_padding_labels and flat_labels.numel():
        min_label = slot(flat_labels.detach().amin())
    values = torch.stack(stats).tolist()
    finite_flag = math.isfinite(values[total])
    if weight_sum is not None:
        finite_flag = finite_flag and math.isfinite(values[weight_sum])
    if weight_min is not None:
        finite_flag = finite_flag and values[weight_min] >= 0
    padded = all_real is not None and values[all_real] == 0
    minus_one = (
        min_label is not None and values[min_label] <= -1 and bool((flat_labels == -1).any())
    )
    weights_error = None
    if not finite_flag:
        what = "a real item; padding may hold anything, real items must be finite"
        for name, flat, original in (
            ("scores", flat_scores, scores),
            ("labels", flat_labels, labels),
        ):
            if original is not None:
                error = _not_finite(
                    flat, torch.where(flat_mask.reshape(shape), original, 0), name, where, what
                )
                if error is not None:
                    raise error
        if flat_weights is not None and isinstance(weights, Tensor):
            shown = (
                weights
                if list_weights is not None
                else torch.where(flat_mask.reshape(shape), weights, 0)
            )
            weights_error = _bad_weights(flat_weights.detach(), shown.detach(), where)
    if minus_one:
        _warn_padding_labels(where)

    if weights_error is not None:
        raise weights_error
    return ListBatch(
        flat_scores, flat_labels, flat_mask, list_weights, item_weights, batch_shape, padded
    )


def check_embeddings(x: object, name: str, where: str) -> Tensor:
    """Check that ``x`` is a floating ``[N, d]`` tensor and return it in the compute dtype.

    Raises:
        ValueError: naming ``name`` and the shape, or the first position holding NaN or inf
            (every entry of an embedding is real: there is no padding). Cost of the
            finiteness check: one sum (a sum holding NaN or inf is never finite; only when
            it is not finite, which finite entries can also cause by overflowing, does the
            per-entry search run) and one device synchronisation.
    """
    if not isinstance(x, Tensor):
        raise ValueError(f"{where}: {name} must be a torch.Tensor, got {type(x).__name__}")
    if x.dim() != 2:
        raise ValueError(f"{where}: {name} must have shape [N, d], got {shape_str(x)}")
    if not x.dtype.is_floating_point:
        raise ValueError(f"{where}: {name} must be floating point, got dtype {x.dtype}")
    dtype = compute_dtype(x.dtype)
    out = x if x.dtype == dtype else x.to(dtype)
    values = out.detach()
    if math.isfinite(values.sum().item()):
        return out
    error = _not_finite(values, x.detach(), name, where, "embeddings must be finite")
    if error is not None:
        raise error
    return out

"""Per-class precision, recall and F1, with macro and micro averages."""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["per_class_report"]


def _zero_div(num: Tensor, den: Tensor) -> Tensor:
    return torch.where(den > 0, num / den.clamp(min=1e-300), torch.zeros_like(num))


def per_class_report(
    predictions: Tensor, targets: Tensor, num_classes: int | None = None
) -> dict[str, Tensor | float]:
    r"""Per-class precision, recall, F1 and support of single-label predictions.

    .. math::
        P_c = \frac{TP_c}{TP_c + FP_c}, \quad R_c = \frac{TP_c}{TP_c + FN_c}, \quad
        F1_c = \frac{2 P_c R_c}{P_c + R_c}

    A ratio with a zero denominator is 0 (scikit-learn's ``zero_division=0``). The macro
    averages are the plain means over the classes that occur in ``targets`` or
    ``predictions`` (scikit-learn's default set of labels); the micro averages pool every
    decision, so for single-label data micro precision = micro recall = micro F1 = accuracy.

    Args:
        predictions: ``[N]`` integer class indices, or ``[N, C]`` scores (arg-max is taken).
        targets: ``[N]`` integer class indices in ``0..C-1``.
        num_classes: ``C``; ``None`` means ``max(predictions, targets) + 1``.

    Returns:
        ``{"precision", "recall", "f1", "support"}`` tensors ``[C]``, ``"confusion"``
        ``[C, C]`` (rows: targets, columns: predictions), and the floats ``"macro_precision"``,
        ``"macro_recall"``, ``"macro_f1"``, ``"micro_precision"``, ``"micro_recall"``,
        ``"micro_f1"``, ``"accuracy"``.

    >>> report = per_class_report(torch.tensor([0, 1, 1, 2]), torch.tensor([0, 1, 2, 2]))
    >>> report["recall"]
    tensor([1.0000, 1.0000, 0.5000], dtype=torch.float64)
    >>> round(report["macro_f1"], 4)
    0.7778
    """
    if not isinstance(predictions, Tensor) or not isinstance(targets, Tensor):
        raise ValueError("per_class_report: predictions and targets must be torch.Tensors")
    if predictions.dim() == 2 and predictions.is_floating_point():
        predictions = predictions.argmax(-1)
    if predictions.dim() != 1 or targets.dim() != 1:
        raise ValueError(
            "per_class_report: predictions must be [N] (or [N, C] scores) and targets [N], got "
            f"{list(predictions.shape)} and {list(targets.shape)}"
        )
    if predictions.shape != targets.shape:
        raise ValueError(
            f"per_class_report: predictions has shape {list(predictions.shape)} but targets has "
            f"shape {list(targets.shape)}"
        )
    if predictions.is_floating_point() or targets.is_floating_point():
        raise ValueError("per_class_report: class indices must be integers")
    predictions = predictions.long().cpu()
    targets = targets.long().cpu()
    found = int(torch.cat([predictions, targets]).max()) + 1 if targets.numel() else 0
    if num_classes is None:
        num_classes = found
    if bool((predictions < 0).any() or (targets < 0).any()) or found > num_classes:
        raise ValueError(f"per_class_report: class indices must lie in 0..{num_classes - 1}")
    flat = targets * num_classes + predictions
    confusion = torch.bincount(flat, minlength=num_classes * num_classes)
    confusion = confusion.reshape(num_classes, num_classes)
    tp = confusion.diagonal().to(torch.float64)
    support = confusion.sum(1)
    predicted = confusion.sum(0)
    precision = _zero_div(tp, predicted.to(torch.float64))
    recall = _zero_div(tp, support.to(torch.float64))
    f1 = _zero_div(2 * precision * recall, precision + recall)
    present = (support > 0) | (predicted > 0)
    count = max(int(present.sum()), 1)
    total = max(int(targets.numel()), 1)
    accuracy = float(tp.sum()) / total
    return {
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "support": support,
        "confusion": confusion,
        "macro_precision": float(precision[present].sum()) / count,
        "macro_recall": float(recall[present].sum()) / count,
        "macro_f1": float(f1[present].sum()) / count,
        "micro_precision": accuracy,
        "micro_recall": accuracy,
        "micro_f1": accuracy,
        "accuracy": accuracy,
    }

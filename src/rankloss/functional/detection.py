r"""Ranking losses for object detection: AP-Loss, aLRP loss and Rank & Sort loss.

A list is the anchors (or queries) of one image: ``scores [..., n]`` are classification
logits and ``labels [..., n]`` are quality targets, the IoU of each anchor's box with its
ground truth: ``label > 0`` marks a positive, ``label == 0`` a negative (labels must be
``>= 0``; targets above 1 count as 1). ``mask`` marks the real anchors.

The three losses compare every positive :math:`i` with every other anchor :math:`j` through
:math:`x_{ij} = s_j - s_i` and the interpolated step function of AP-Loss

.. math::
    H(x) = \min\bigl(1, \max\bigl(0, \tfrac{x}{2\delta} + \tfrac12\bigr)\bigr),

from which, for a positive :math:`i`,

.. math::
    N_{FP}(i) = \sum_{j \in \mathcal N} H(x_{ij}), \quad
    \mathrm{rank}^+(i) = 1 + \sum_{k \in \mathcal P,\, k \ne i} H(x_{ik}), \quad
    \mathrm{rank}(i) = \mathrm{rank}^+(i) + N_{FP}(i).

Their value is a sum of ranking errors, which a step function makes flat almost everywhere;
the papers train instead with an **error-driven update**: each positive's error is handed, as
its gradient, to the anchors that cause it (negatives ranked above it, or positives of lower
IoU ranked above it) in proportion to :math:`H`. The backward of these functions is that
update, not the gradient of the value (``exact_gradient=False`` in the registry). Each update
is divided by :math:`|\mathcal P|` like the value.

Per-item ``weights`` multiply each positive's term (in the value and in the update it hands
out); negatives carry no term of their own. A list without a positive counts 0 and is left
out of the mean. Cost of each: :math:`O(n^2)` time and memory per list (every pair), which
suits the few thousand anchors of one image after the usual pre-filtering.
"""

from __future__ import annotations

from typing import Any, Literal

import torch
from torch import Tensor

from rankloss._core import params
from rankloss._core.autograd import first_order_backward
from rankloss._core.reduce import Reduction, reduce_lists
from rankloss._core.validation import ListBatch, check_lists

__all__ = ["ap_loss", "alrp_loss", "rank_sort_loss"]

_Kind = Literal["ap", "alrp", "rank_sort"]


def _safe_div(num: Tensor, den: Tensor) -> Tensor:
    keep = den > 0
    return torch.where(keep, num, 0.0) / torch.where(keep, den, 1.0)


def _terms(
    kind: _Kind,
    scores: Tensor,
    labels: Tensor,
    mask: Tensor,
    item_weights: Tensor | None,
    delta: float,
    min_positive_iou: float,
) -> tuple[Tensor, Tensor, Tensor]:
    """``(value [B], update [B, n], valid [B])`` of one detection loss (no autograd)."""
    n = scores.shape[-1]
    positive = mask & (labels > 0)
    negative = mask & (labels <= 0)
    pos_f, neg_f = positive.to(scores.dtype), negative.to(scores.dtype)
    # step[b, i, j] = H(s_j - s_i)
    step = ((scores.unsqueeze(1) - scores.unsqueeze(2)) / (2.0 * delta) + 0.5).clamp(0.0, 1.0)
    eye = torch.eye(n, dtype=torch.bool, device=scores.device)
    other_pos = pos_f.unsqueeze(1) * (~eye).to(scores.dtype)  # [b, i, k]: k positive, k != i
    step_neg = step * neg_f.unsqueeze(1)
    false_positives = step_neg.sum(2)
    rank_pos = 1.0 + (step * other_pos).sum(2)
    rank = rank_pos + false_positives
    num_pos = pos_f.sum(1)
    weight = pos_f if item_weights is None else pos_f * item_weights
    has_fp = false_positives > 0

    def hand_to_negatives(error: Tensor) -> tuple[Tensor, Tensor]:
        """Update of the positives (minus their error) and of the negatives (their share)."""
        coef = torch.where(has_fp, weight * error, 0.0)
        share = _safe_div(coef, false_positives)
        return -coef, (share.unsqueeze(2) * step_neg).sum(1)

    q = labels.clamp(0.0, 1.0)
    if kind == "ap":
        error = false_positives / rank
        value = (weight * error).sum(1)
        update_pos, update_neg = hand_to_negatives(error)
        update = update_pos + update_neg
    elif kind == "alrp":
        loc_error = ((1.0 - q) / (1.0 - min_positive_iou)).clamp(0.0, 1.0) * pos_f
        loc_above = (step * other_pos * loc_error.unsqueeze(1)).sum(2)
        value = (weight * false_positives / rank).sum(1)
        update_pos, update_neg = hand_to_negatives((false_positives + loc_above) / rank)
        update = update_pos + update_neg
    else:
        ranking_error = false_positives / rank
        # step among positives with the anchor itself counted once
        step_pos = step * other_pos + torch.diag_embed(pos_f)
        miss = 1.0 - q
        current = (step_pos * miss.unsqueeze(1)).sum(2) / rank_pos
        target_set = step_pos * (q.unsqueeze(1) >= q.unsqueeze(2)).to(scores.dtype)
        target = _safe_div((target_set * miss.unsqueeze(1)).sum(2), target_set.sum(2))
        sorting_error = (current - target) * pos_f
        value = (weight * (ranking_error + sorting_error)).sum(1)
        update_pos, update_neg = hand_to_negatives(ranking_error)
        missorted = step_pos * (q.unsqueeze(1) < q.unsqueeze(2)).to(scores.dtype)
        denominator = missorted.sum(2)
        coef = torch.where(denominator > 0, weight * sorting_error, 0.0)
        update_sort = (_safe_div(coef, denominator).unsqueeze(2) * missorted).sum(1) - coef
        update = update_pos + update_neg + update_sort
    scale = num_pos.clamp(min=1.0)
    update = torch.where(mask, update, 0.0) / scale.unsqueeze(1)
    return value / scale, update, num_pos > 0


class _ErrorDriven(torch.autograd.Function):
    """Per-list values whose backward is the error-driven update."""

    @staticmethod
    def forward(
        ctx: Any,
        scores: Tensor,
        labels: Tensor,
        mask: Tensor,
        item_weights: Tensor | None,
        kind: _Kind,
        delta: float,
        min_positive_iou: float,
    ) -> tuple[Tensor, Tensor]:
        value, update, valid = _terms(
            kind, scores, labels, mask, item_weights, delta, min_positive_iou
        )
        ctx.save_for_backward(update)
        ctx.mark_non_differentiable(valid)
        return value, valid

    @staticmethod
    @first_order_backward(
        "the detection ranking losses (an error-driven update, not a gradient)",
        "a loss with an exact gradient for second derivatives",
    )
    def backward(ctx: Any, grad_value: Tensor, _grad_valid: Any) -> tuple[Tensor | None, ...]:
        (update,) = ctx.saved_tensors
        return grad_value.unsqueeze(1) * update, None, None, None, None, None, None


def _run(
    kind: _Kind,
    where: str,
    scores: Tensor,
    labels: Tensor,
    mask: Tensor | None,
    weights: Tensor | None,
    reduction: str,
    delta: float,
    min_positive_iou: float = 0.5,
) -> Tensor:
    batch: ListBatch = check_lists(scores, labels, mask, weights, where=where, reduction=reduction)
    real = batch.labels[batch.mask]
    if real.numel() and bool((real < 0).any()):
        raise ValueError(
            f"{where}: labels must be >= 0 (IoU targets; 0 marks a negative), found "
            f"{real.min().item()}"
        )
    item_weights = None if batch.item_weights is None else batch.item_weights.detach()
    value, valid = _ErrorDriven.apply(
        batch.scores,
        batch.labels.detach(),
        batch.mask,
        item_weights,
        kind,
        delta,
        min_positive_iou,
    )
    return reduce_lists(value, valid, batch, reduction)


def ap_loss(
    scores: Tensor,
    labels: Tensor,
    mask: Tensor | None = None,
    *,
    weights: Tensor | None = None,
    reduction: Reduction = "mean",
    delta: float = 1.0,
) -> Tensor:
    r"""AP-Loss (Chen et al., CVPR 2019): one minus a smoothed average precision.

    .. math::
        \ell = \frac{1}{|\mathcal P|}\sum_{i \in \mathcal P}
               \frac{N_{FP}(i)}{\mathrm{rank}(i)}
             = 1 - \frac{1}{|\mathcal P|}\sum_{i \in \mathcal P}
               \frac{\mathrm{rank}^+(i)}{\mathrm{rank}(i)}

    with :math:`H`, :math:`N_{FP}` and the ranks of :mod:`rankloss.functional.detection`.
    Backward: the paper's error-driven update with primary terms
    :math:`L_{ij} = H(x_{ij}) / \mathrm{rank}(i)` (:math:`i` positive, :math:`j` negative):
    :math:`g_i = -\sum_j L_{ij} / |\mathcal P|`, :math:`g_j = \sum_i L_{ij} / |\mathcal P|`.
    Only the positive/negative split of the labels is used (any label > 0 is a positive).

    Args:
        scores: ``[..., n]`` classification logits of the anchors of each image.
        labels: ``[..., n]`` targets ``>= 0``; ``> 0`` marks a positive.
        mask: ``[..., n]`` bool, True marks a real anchor; ``None``: all are real.
        weights: per image ``[...]`` or per anchor ``[..., n]`` (multiplying the positives'
            terms).
        reduction: ``"mean"`` (over images with a positive), ``"sum"`` or ``"none"``.
        delta: :math:`\delta > 0`, the half-width of the step's linear part (the paper's 1).

    Returns:
        A scalar, or ``[...]`` one value per image with ``reduction="none"``.

    Reference: Chen, Ling, Chen, Liu, Wang, "Towards Accurate One-Stage Object Detection with
    AP-Loss", CVPR 2019 (the minibatch training and the anchor filtering of the paper are the
    caller's). Cost: :math:`O(n^2)` time and memory per list.
    """
    where = "ap_loss"
    delta = params.positive(where, "delta", delta)
    return _run("ap", where, scores, labels, mask, weights, reduction, delta)


def alrp_loss(
    scores: Tensor,
    labels: Tensor,
    mask: Tensor | None = None,
    *,
    weights: Tensor | None = None,
    reduction: Reduction = "mean",
    delta: float = 0.5,
    min_positive_iou: float = 0.5,
) -> Tensor:
    r"""The classification part of the aLRP loss (Oksuz et al., NeurIPS 2020).

    With the localisation error of a positive taken from its IoU target :math:`q_k`,
    :math:`\mathcal E_{loc}(k) = \min\bigl(1, (1 - q_k)/(1 - \tau)\bigr)` (:math:`\tau` =
    ``min_positive_iou``), each positive's LRP error is

    .. math::
        \ell^{LRP}(i) = \frac{1}{\mathrm{rank}(i)}\Bigl(N_{FP}(i)
            + \sum_{k \in \mathcal P,\, k \ne i} H(x_{ik})\,\mathcal E_{loc}(k)\Bigr)

    and the value returned is the classification component

    .. math::
        \mathcal L_{cls} = \frac{1}{|\mathcal P|}\sum_{i \in \mathcal P}
            \frac{N_{FP}(i)}{\mathrm{rank}(i)}.

    Backward: the paper's update, which hands the whole :math:`\ell^{LRP}(i)` (so the
    localisation quality of the positives ranked above :math:`i`) to the negatives above it:
    :math:`g_i = -\ell^{LRP}(i)/|\mathcal P|` and
    :math:`g_j = \sum_i \ell^{LRP}(i) H(x_{ij}) / (N_{FP}(i)|\mathcal P|)`, for positives with
    :math:`N_{FP}(i) > 0` (with no negative above it, a positive has nobody to hand its error
    to and is left alone).

    Left to the user: the box-regression branch. Its loss is
    :math:`\mathcal L_{loc} = \frac{1}{|\mathcal P|}\sum_i \frac{1}{\mathrm{rank}(i)}
    \bigl(\mathcal E_{loc}(i) + \sum_{k \ne i} H(x_{ik})\mathcal E_{loc}(k)\bigr)` with
    :math:`\mathcal E_{loc}` from the regression loss (GIoU in the paper), and the paper
    balances it with :math:`\mathcal L_{cls}` by the self-balance weight
    :math:`\mathcal L_{cls}/\mathcal L_{loc}` averaged over the previous epoch.

    Args:
        scores: ``[..., n]`` classification logits of the anchors of each image.
        labels: ``[..., n]`` IoU targets ``>= 0``; ``> 0`` marks a positive.
        mask: ``[..., n]`` bool, True marks a real anchor; ``None``: all are real.
        weights: per image ``[...]`` or per anchor ``[..., n]`` (multiplying the positives'
            terms).
        reduction: ``"mean"`` (over images with a positive), ``"sum"`` or ``"none"``.
        delta: :math:`\delta > 0` of the step function (0.5).
        min_positive_iou: :math:`\tau \in [0, 1)`, the IoU at which a positive's
            localisation error reaches 1 (the IoU that makes an anchor positive, 0.5).

    Returns:
        A scalar, or ``[...]`` one value per image with ``reduction="none"``.

    Reference: Oksuz, Cam, Akbas, Kalkan, "A Ranking-based, Balanced Loss Function Unifying
    Classification and Localisation in Object Detection", NeurIPS 2020.
    Cost: :math:`O(n^2)` time and memory per list.
    """
    where = "alrp_loss"
    delta = params.positive(where, "delta", delta)
    tau = params.number(where, "min_positive_iou", min_positive_iou)
    if not 0.0 <= tau < 1.0:
        raise ValueError(f"{where}: min_positive_iou must be in [0, 1), got {min_positive_iou!r}")
    return _run("alrp", where, scores, labels, mask, weights, reduction, delta, tau)


def rank_sort_loss(
    scores: Tensor,
    labels: Tensor,
    mask: Tensor | None = None,
    *,
    weights: Tensor | None = None,
    reduction: Reduction = "mean",
    delta: float = 0.5,
) -> Tensor:
    r"""Rank & Sort loss (Oksuz et al., ICCV 2021): rank positives above negatives, and sort
    the positives by their IoU targets :math:`q` (clamped to :math:`[0, 1]`).

    With :math:`\tilde H(x_{ik}) = H(x_{ik})` for :math:`k \ne i` and 1 for :math:`k = i`:

    .. math::
        \ell_R(i) = \frac{N_{FP}(i)}{\mathrm{rank}(i)}, \qquad
        \ell_S(i) = \frac{\sum_{k \in \mathcal P} \tilde H(x_{ik})(1 - q_k)}{\mathrm{rank}^+(i)}
          - \frac{\sum_{k \in \mathcal P,\, q_k \ge q_i} \tilde H(x_{ik})(1 - q_k)}
                 {\sum_{k \in \mathcal P,\, q_k \ge q_i} \tilde H(x_{ik})}

    .. math::
        \mathcal L_{RS} = \frac{1}{|\mathcal P|}\sum_{i \in \mathcal P} \ell_R(i) + \ell_S(i)

    (the current sorting error minus its target: the error of a perfect sort). Backward: the
    paper's identity update: the ranking error :math:`\ell_R(i)` goes to the negatives above
    :math:`i` in proportion to :math:`H(x_{ij})` (when :math:`N_{FP}(i) > 0`), and the sorting
    error :math:`\ell_S(i)` to the positives of lower IoU above it in proportion to
    :math:`H(x_{ik})` (when there is one); :math:`g_i` gets minus both; all over
    :math:`|\mathcal P|`. The anchor itself counts 1 in its own ranks (the authors' code
    counts :math:`H(0) = 1/2`).

    Args:
        scores: ``[..., n]`` classification logits of the anchors of each image.
        labels: ``[..., n]`` IoU targets ``>= 0``; ``> 0`` marks a positive.
        mask: ``[..., n]`` bool, True marks a real anchor; ``None``: all are real.
        weights: per image ``[...]`` or per anchor ``[..., n]`` (multiplying the positives'
            terms).
        reduction: ``"mean"`` (over images with a positive), ``"sum"`` or ``"none"``.
        delta: :math:`\delta > 0` of the step function (the paper's 0.5).

    Returns:
        A scalar, or ``[...]`` one value per image with ``reduction="none"``.

    Reference: Oksuz, Cam, Akbas, Kalkan, "Rank & Sort Loss for Object Detection and Instance
    Segmentation", ICCV 2021. Cost: :math:`O(n^2)` time and memory per list.
    """
    where = "rank_sort_loss"
    delta = params.positive(where, "delta", delta)
    return _run("rank_sort", where, scores, labels, mask, weights, reduction, delta)

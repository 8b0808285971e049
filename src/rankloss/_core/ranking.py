"""Ranking building blocks shared by losses and metrics: gains, discounts, ranks, pairs.

All functions take flattened ``[B, n]`` tensors with a bool ``mask`` (True = real item).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from rankloss._core.validation import check_choice

__all__ = [
    "GAINS",
    "gain",
    "gain_shift",
    "normalised_gains",
    "discount",
    "position_discounts",
    "dcg_at_k",
    "ranks_from_scores",
    "ideal_dcg",
    "pair_mask",
    "topk_pair_mask",
    "masked_logits",
]

GAINS = ("exp2", "linear")


def gain(labels: Tensor, kind: str = "exp2", shift: Tensor | None = None) -> Tensor:
    r"""Gain of a label: ``"exp2"`` is :math:`2^y - 1`, ``"linear"`` is :math:`y`.

    Args:
        labels: ``[B, n]`` (or any shape with ``shift`` broadcasting over its last dimension).
        kind: ``"exp2"`` or ``"linear"``.
        shift: ``[B]`` exponents :math:`m` (see :func:`gain_shift`); the exp2 gain is then
            returned scaled by :math:`2^{-m}`, as :math:`2^{y - m} - 2^{-m}`, which stays
            finite for any finite label. Ignored by the linear gain. ``None``: no scaling.
    """
    check_choice("gain", kind, GAINS)
    if kind == "exp2":
        if shift is None:
            return torch.exp2(labels) - 1.0
        m = shift.to(labels.dtype).unsqueeze(-1)
        return torch.exp2(labels - m) - torch.exp2(-m)
    return labels


def gain_shift(labels: Tensor, mask: Tensor, kind: str = "exp2") -> Tensor:
    r"""``[B]`` the exponent :math:`m` that keeps each list's scaled gains finite.

    For ``"exp2"``, :math:`m = \max(0, \max_i y_i)` over the real items (0 for a list with
    none), so that :math:`2^{y - m} \le 1`; for ``"linear"``, 0. A common factor
    :math:`2^{-m}` of a list's gains cancels in every ratio to its ideal DCG (NDCG, the
    normalised gains of LambdaRank), so the ratio is unchanged and labels of 128 and more no
    longer overflow. Detached: the ratio does not depend on :math:`m`.
    """
    check_choice("gain", kind, GAINS)
    if kind != "exp2" or labels.shape[-1] == 0:
        return labels.new_zeros(labels.shape[:-1])
    real = torch.where(mask, labels.detach(), torch.full_like(labels, -math.inf))
    return real.amax(-1).clamp(min=0.0)


def normalised_gains(
    labels: Tensor,
    mask: Tensor,
    kind: str = "exp2",
    k: int | None = None,
    *,
    weights: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    r"""Gains divided by the list's ideal DCG, computed so that any finite label stays finite.

    .. math:: \frac{G_i}{\mathrm{IDCG@k}} = \frac{2^{y_i - m} - 2^{-m}}
        {\sum_{r \le k} (2^{y_{(r)} - m} - 2^{-m}) / \log_2(1 + r)}

    with :math:`m` from :func:`gain_shift` (the factor :math:`2^{m}` cancels), or
    :math:`G = y` for ``"linear"``.

    Args:
        labels: ``[B, n]``.
        mask: ``[B, n]`` bool.
        kind: ``"exp2"`` or ``"linear"``.
        k: cut-off of the ideal DCG, or ``None``.
        weights: ``[B, n]`` per-item weights that scale the gains (before the ideal DCG is
            taken), or ``None``.

    Returns:
        ``(normalised [B, n], valid [B])``: 0 at padded positions and in lists whose ideal DCG
        is not positive (``valid`` False there).
    """
    zero = labels.new_zeros(())
    gains = torch.where(mask, gain(labels, kind, gain_shift(labels, mask, kind)), zero)
    if weights is not None:
        gains = gains * weights
    idcg = ideal_dcg(gains, mask, k)
    valid = idcg > 0
    normalised = gains / torch.where(valid, idcg, torch.ones_like(idcg)).unsqueeze(-1)
    return torch.where(valid.unsqueeze(-1), normalised, zero), valid


def discount(ranks: Tensor) -> Tensor:
    """Position discount :math:`1 / \\log_2(1 + r)` for 1-based ranks ``r``."""
    return 1.0 / torch.log2(1.0 + ranks)


def position_discounts(
    n: int,
    k: int | None = None,
    *,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> Tensor:
    """``[n]`` discounts of the positions ``1..n``: :func:`discount` up to ``k``, 0 after it.

    Args:
        n: number of positions.
        k: cut-off, or ``None`` for every position.
        dtype, device: of the result.

    >>> position_discounts(4, k=2, dtype=torch.float64)
    tensor([1.0000, 0.6309, 0.0000, 0.0000], dtype=torch.float64)
    """
    positions = torch.arange(1, n + 1, device=device, dtype=dtype)
    weights = discount(positions)
    if k is not None:
        weights = torch.where(positions <= k, weights, torch.zeros_like(weights))
    return weights


def dcg_at_k(gains: Tensor, k: int | None = None) -> Tensor:
    r"""DCG at ``k`` of gains already in rank order: :math:`\sum_{r \le k} g_r / \log_2(1 + r)`.

    Args:
        gains: ``[..., n]`` gains, position 1 first; padding must hold 0 (its discount is not
            zeroed).
        k: cut-off, or ``None`` for the whole list.

    Returns:
        ``[...]``.

    >>> dcg_at_k(torch.tensor([3.0, 0.0, 1.0]), k=2)
    tensor(3.)
    """
    weights = position_discounts(gains.shape[-1], k, dtype=gains.dtype, device=gains.device)
    return (gains * weights).sum(-1)


def ranks_from_scores(scores: Tensor, mask: Tensor) -> Tensor:
    """1-based ranks of items when sorted by descending score (detached).

    Ties keep input order (a stable sort); padded items are ranked after every real item.

    Args:
        scores: ``[B, n]``.
        mask: ``[B, n]`` bool.

    Returns:
        ``[B, n]`` long tensor of ranks in ``1..n``.
    """
    keyed = torch.where(mask, scores.detach(), torch.full_like(scores, -math.inf))
    order = torch.sort(keyed, dim=-1, descending=True, stable=True).indices
    positions = torch.arange(1, scores.shape[-1] + 1, device=scores.device).expand_as(order)
    return torch.empty_like(order).scatter_(-1, order, positions)


def ideal_dcg(gains: Tensor, mask: Tensor, k: int | None = None) -> Tensor:
    """Ideal DCG of each list: gains sorted descending, discounted, summed over the top ``k``.

    Args:
        gains: ``[B, n]`` gains (0 at padded positions is not required).
        mask: ``[B, n]`` bool.
        k: cut-off, or ``None`` for the whole list.

    Returns:
        ``[B]``.
    """
    keyed = torch.where(mask, gains, torch.full_like(gains, -math.inf))
    sorted_gains = torch.sort(keyed, dim=-1, descending=True).values
    real = torch.isfinite(sorted_gains)
    return dcg_at_k(torch.where(real, sorted_gains, torch.zeros_like(sorted_gains)), k)


def pair_mask(labels: Tensor, mask: Tensor) -> Tensor:
    """``[B, n, n]`` bool: True where both items are real and ``labels_i > labels_j``."""
    both = mask.unsqueeze(-1) & mask.unsqueeze(-2)
    return both & (labels.unsqueeze(-1) > labels.unsqueeze(-2))


def topk_pair_mask(ranks: Tensor, k: int | None) -> Tensor | None:
    """``[B, n, n]`` bool: True where item i or item j is in the top ``k`` of a ranking.

    Args:
        ranks: ``[B, n]`` 1-based ranks (:func:`ranks_from_scores`).
        k: the cut-off, or ``None``.

    Returns ``None`` when ``k`` is ``None`` (no truncation).
    """
    if k is None:
        return None
    if k < 1:
        raise ValueError(f"k must be a positive integer or None, got {k!r}")
    in_top = ranks <= k
    return in_top.unsqueeze(-1) | in_top.unsqueeze(-2)


def masked_logits(logits: Tensor, valid: Tensor) -> Tensor:
    """``logits`` with the entries outside ``valid`` set to ``-inf``, so that a softmax or a
    log-sum-exp over the last dimension gives them exactly no weight, whatever the real logits
    are (a finite stand-in such as -1e9 is not below logits of -2e9, and then wins the
    softmax). A row with no valid entry is all 0 instead, so its softmax stays finite; callers
    mask such rows out.

    Args:
        logits: ``[..., n]``.
        valid: bool, broadcastable to ``logits``.

    Returns:
        ``[..., n]``, the dtype of ``logits``. Cost: :math:`O(n)` per row.
    """
    has_valid = valid.any(-1, keepdim=True)
    fill = torch.where(has_valid, logits.new_full((), -math.inf), logits.new_zeros(()))
    return torch.where(valid, logits, fill)

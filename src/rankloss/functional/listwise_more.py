"""More listwise ranking losses: XE-NDCG, Gumbel-ApproxNDCG, PiRank, position-aware ListMLE,
RankCosine and an NDCG on soft ranks.

Every function takes ``scores`` and ``labels`` of shape ``[..., n]``, an optional bool ``mask``
(True = real item) and optional ``weights`` per list ``[...]`` or per item ``[..., n]``, and
computes one value per list over its real items only, then reduces (``"mean"`` averages over
the lists with something to learn from). Random perturbations (XE-NDCG's :math:`\\gamma`, the
Gumbel noise) are explicit tensor inputs, or drawn from a ``generator`` the caller passes:
without either, every function is deterministic.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import Tensor

from rankloss._core import params
from rankloss._core.ranking import GAINS, dcg_at_k, gain_shift, masked_logits, normalised_gains
from rankloss._core.reduce import Reduction, reduce_lists
from rankloss._core.validation import ListBatch, check_lists
from rankloss.functional.listwise import (
    _masked_log_softmax,
    _neural_sort_log,
    _neural_sort_matrix,
    _reverse_logcumsumexp,
    approx_ndcg_loss,
)
from rankloss.functional.sorting import soft_rank

__all__ = [
    "xe_ndcg_loss",
    "gumbel_approx_ndcg_loss",
    "pirank_loss",
    "position_aware_listmle_loss",
    "rank_cosine_loss",
    "soft_rank_ndcg_loss",
]


def _noise_input(
    noise: Tensor, batch: ListBatch, shape: torch.Size, name: str, where: str
) -> Tensor:
    """``[S, B, n]`` from a ``[..., n]`` or ``[S, ..., n]`` tensor: checked finite at the real
    positions, 0 at padded ones (any garbage allowed there)."""
    if not isinstance(noise, Tensor) or not noise.dtype.is_floating_point:
        raise ValueError(f"{where}: {name} must be a floating-point tensor")
    if noise.shape == shape:
        stacked = noise.unsqueeze(0)
    elif noise.dim() == len(shape) + 1 and noise.shape[1:] == shape:
        stacked = noise
    else:
        raise ValueError(
            f"{where}: {name} has shape {list(noise.shape)}; expected the shape of the scores "
            f"{list(shape)} or [samples, *{list(shape)}]"
        )
    stacked = stacked.to(batch.scores.device, batch.scores.dtype).reshape(
        stacked.shape[0], *batch.scores.shape
    )
    real = batch.mask.unsqueeze(0).expand_as(stacked)
    if not bool(torch.isfinite(stacked[real]).all()):
        raise ValueError(f"{where}: {name} holds NaN or inf at a real (unmasked) position")
    return torch.where(real, stacked, stacked.new_zeros(()))


# ------------------------------------------------------------------------------------------
# XE-NDCG


def xe_ndcg_loss(
    scores: Tensor,
    labels: Tensor,
    mask: Tensor | None = None,
    gamma: Tensor | None = None,
    *,
    weights: Tensor | None = None,
    reduction: Reduction = "mean",
    generator: torch.Generator | None = None,
) -> Tensor:
    r"""XE-NDCG: cross-entropy between a gain distribution and the softmax of the scores.

    .. math:: \phi_i = \frac{2^{y_i} - \gamma_i}{\sum_j (2^{y_j} - \gamma_j)}, \qquad
        \ell = -\sum_i \phi_i \log \frac{e^{s_i}}{\sum_j e^{s_j}}

    The paper draws :math:`\gamma_i \sim U[0, 1]` afresh for every list and step. Here
    ``gamma`` is an explicit ``[..., n]`` input with values in [0, 1]; with ``gamma=None`` and
    no ``generator`` the expectation :math:`\gamma_i = 1/2` is used (deterministic), and with a
    seeded ``generator`` a fresh uniform :math:`\gamma` is drawn on every call. Labels must be
    non-negative (``ValueError`` otherwise), so every :math:`\phi_i > 0` when
    :math:`\gamma < 1`. Gains are computed as :math:`2^{y - m} - \gamma 2^{-m}` with
    :math:`m = \max(0, \max_i y_i)` (the factor cancels), so any finite label stays finite.
    Per-item weights scale each item's term. A list whose gains sum to 0 (every label 0 and
    :math:`\gamma = 1`) counts as 0 and is left out of the mean. The per-list value is the
    cross-entropy (a sum over the list's items). Cost: :math:`O(n)` per list.

    Reference: Bruch, Wang, Bendersky and Najork, "An Alternative Cross Entropy Loss for
    Learning-to-Rank", WWW 2019.
    """
    where = "xe_ndcg_loss"
    batch = check_lists(scores, labels, mask, weights, where=where, reduction=reduction)
    real_labels = batch.labels[batch.mask]
    if real_labels.numel() and bool((real_labels < 0).any()):
        raise ValueError(f"{where}: labels must be >= 0 (found {real_labels.min().item()})")
    if gamma is not None:
        draws = _noise_input(gamma, batch, scores.shape, "gamma", where)[0]
        if bool(((draws < 0) | (draws > 1)).any()):
            raise ValueError(f"{where}: gamma must lie in [0, 1]")
    elif generator is not None:
        draws = torch.rand(batch.scores.shape, generator=generator, device=generator.device)
        draws = draws.to(batch.scores.device, batch.scores.dtype)
    else:
        draws = torch.full_like(batch.scores, 0.5)
    shift = gain_shift(batch.labels, batch.mask).unsqueeze(-1)
    gains = torch.exp2(batch.labels - shift) - draws * torch.exp2(-shift)
    gains = torch.where(batch.mask, gains, gains.new_zeros(()))
    total = gains.sum(-1)
    valid = total > 0
    target = gains / torch.where(valid, total, torch.ones_like(total)).unsqueeze(-1)
    terms = -target * _masked_log_softmax(batch.scores, batch.mask)
    if batch.item_weights is not None:
        terms = terms * batch.item_weights
    per_list = torch.where(batch.mask, terms, terms.new_zeros(())).sum(-1)
    return reduce_lists(per_list, valid, batch, reduction)


# ------------------------------------------------------------------------------------------
# Gumbel-ApproxNDCG


def gumbel_approx_ndcg_loss(
    scores: Tensor,
    labels: Tensor,
    mask: Tensor | None = None,
    noise: Tensor | None = None,
    *,
    weights: Tensor | None = None,
    reduction: Reduction = "mean",
    alpha: float = 10.0,
    gain: Literal["exp2", "linear"] = "exp2",
    samples: int = 1,
    generator: torch.Generator | None = None,
) -> Tensor:
    r"""Gumbel-ApproxNDCG: ApproxNDCG of scores perturbed with Gumbel noise, averaged over
    samples.

    .. math:: \tilde s^{(k)} = s + g^{(k)},\; g^{(k)}_i \sim \mathrm{Gumbel}(0, 1), \qquad
        \ell = \frac{1}{S} \sum_{k=1}^{S} \Bigl(1 - \frac{1}{\mathrm{IDCG}} \sum_i
        \frac{G_i}{\log_2(1 + \hat r_i(\tilde s^{(k)}))}\Bigr)

    with the smooth ranks :math:`\hat r_i = 1 + \sum_{j \ne i} \sigma(\alpha (s_j - s_i))` of
    :func:`~rankloss.functional.approx_ndcg_loss` (the paper perturbs
    :math:`\log \mathrm{softmax}(s)`, which differs from :math:`s` by a constant per list that the
    smooth ranks ignore). The noise is an explicit input: ``noise`` of shape ``[..., n]`` (one
    sample) or ``[S, ..., n]``; without it, a seeded ``generator`` draws ``samples`` fresh
    Gumbel samples per call; with neither there is no noise, and the loss is ApproxNDCG
    (deterministic). A list whose ideal DCG is not positive counts as 0 and is left out of the
    mean. Cost: :math:`O(S n^2)` time and :math:`O(S n^2)` memory per list.

    Reference: Bruch, Han, Bendersky and Najork, "A Stochastic Treatment of Learning to Rank
    Scoring Functions", WSDM 2020.
    """
    where = "gumbel_approx_ndcg_loss"
    alpha = params.positive(where, "alpha", alpha)
    params.choice(where, "gain", gain, GAINS)
    samples = params.positive_int(where, "samples", samples)
    batch = check_lists(scores, labels, mask, weights, where=where, reduction=reduction)
    size, n = batch.scores.shape
    if noise is not None:
        perturbation = _noise_input(noise, batch, scores.shape, "noise", where)
    elif generator is not None:
        uniform = torch.rand((samples, size, n), generator=generator, device=generator.device)
        uniform = uniform.to(batch.scores.device, batch.scores.dtype)
        tiny = torch.finfo(uniform.dtype).tiny
        perturbation = -torch.log(-torch.log(uniform.clamp(tiny, 1.0 - 1e-7)))
        perturbation = torch.where(batch.mask, perturbation, perturbation.new_zeros(()))
    else:
        perturbation = batch.scores.new_zeros((1, size, n))
    draws = perturbation.shape[0]
    perturbed = (batch.scores.unsqueeze(0) + perturbation).reshape(draws * size, n)
    repeat = (draws, 1)
    item_weights = None if batch.item_weights is None else batch.item_weights.repeat(repeat)
    per_draw = approx_ndcg_loss(
        perturbed,
        batch.labels.repeat(repeat),
        batch.mask.repeat(repeat),
        weights=item_weights,
        reduction="none",
        alpha=alpha,
        gain=gain,
        impl="torch",
    )
    per_list = per_draw.reshape(draws, size).mean(0)
    _, valid = normalised_gains(batch.labels, batch.mask, gain, weights=batch.item_weights)
    return reduce_lists(per_list, valid, batch, reduction)


# ------------------------------------------------------------------------------------------
# PiRank


def pirank_loss(
    scores: Tensor,
    labels: Tensor,
    mask: Tensor | None = None,
    *,
    weights: Tensor | None = None,
    reduction: Reduction = "mean",
    temperature: float = 1.0,
    k: int | None = 10,
    gain: Literal["exp2", "linear"] = "exp2",
) -> Tensor:
    r"""PiRank: one minus NDCG@k with the ranks relaxed by NeuralSort.

    .. math::
        \hat P_{t,:} = \mathrm{softmax}\Bigl(\frac{(n + 1 - 2t)\, s - A_s \mathbf{1}}{\tau}
        \Bigr), \quad
        \ell = 1 - \frac{1}{\mathrm{IDCG@k}} \sum_{t \le k} \frac{(\hat P G)_t}{\log_2(1 + t)}

    :math:`\hat P` is the row-stochastic NeuralSort matrix (:func:`~rankloss.functional.
    neural_sort`, no Sinkhorn scaling: that is
    :func:`~rankloss.functional.neural_ndcg_loss` with ``sinkhorn_iterations=0``), :math:`n`
    each list's own number of real items and :math:`\tau` the ``temperature``. Gains
    :math:`G = 2^y - 1` (``gain="exp2"``) or :math:`y`, scaled by the per-item weights. A list
    whose ideal DCG@k is not positive counts as 0 and is left out of the mean. The paper's
    divide-and-conquer extension for very long lists is not implemented. Cost:
    :math:`O(n^2)` time and memory per list.

    Reference: Swezey, Grover, Charron and Ermon, "PiRank: Scalable Learning To Rank via
    Differentiable Sorting", NeurIPS 2021.
    """
    where = "pirank_loss"
    temperature = params.positive(where, "temperature", temperature)
    k = params.cutoff(where, "k", k)
    params.choice(where, "gain", gain, GAINS)
    batch = check_lists(scores, labels, mask, weights, where=where, reduction=reduction)
    logits, valid_entries = _neural_sort_log(batch.scores, batch.real, temperature)
    matrix = _neural_sort_matrix(logits, valid_entries)
    gains, valid = normalised_gains(batch.labels, batch.mask, gain, k, weights=batch.item_weights)
    expected = torch.bmm(matrix, gains.unsqueeze(-1)).squeeze(-1)
    return reduce_lists(1.0 - dcg_at_k(expected, k), valid, batch, reduction)


# ------------------------------------------------------------------------------------------
# Position-aware ListMLE


def position_aware_listmle_loss(
    scores: Tensor,
    labels: Tensor,
    mask: Tensor | None = None,
    *,
    weights: Tensor | None = None,
    reduction: Reduction = "mean",
) -> Tensor:
    r"""Position-aware ListMLE: the ListMLE stages weighted by a decreasing function of the
    position.

    .. math:: \ell = \sum_{t=1}^{n} \alpha(t) \Bigl( \log \sum_{u \ge t} e^{s_{\pi(u)}} -
        s_{\pi(t)} \Bigr), \qquad \alpha(t) = \frac{2^{n - t} - 1}
        {\sum_{u=1}^{n} (2^{n - u} - 1)}

    where :math:`\pi` sorts the real items by descending label (ties in input order) and
    :math:`n` is the list's number of real items. The paper's weight is :math:`2^{n - t} - 1`;
    here the weights of a list are normalised to sum to 1 (as in TF-Ranking's and
    sentence-transformers' ``PListMLELoss``), so the value is a weighted mean of the stages,
    comparable across list lengths and finite for lists of any length (the weights are
    computed as :math:`(2^{1 - t} - 2^{1 - n}) / (2 - (n + 1) 2^{1 - n})`). Per-item weights
    weight each stage :math:`t` by the weight of item :math:`\pi(t)`. A list with one real
    item has no weighted stage: it contributes 0 but counts in the mean. Cost: a sort and
    :math:`O(n)` per list.

    Reference: Lan, Zhu, Guo, Niu and Cheng, "Position-Aware ListMLE: A Sequential Learning
    Process for Ranking", UAI 2014.
    """
    where = "position_aware_listmle_loss"
    batch = check_lists(scores, labels, mask, weights, where=where, reduction=reduction)
    n = batch.scores.shape[-1]
    keyed = torch.where(batch.mask, batch.labels, batch.labels.new_full((), -math.inf))
    order = torch.sort(keyed, dim=-1, descending=True, stable=True).indices
    sorted_scores = batch.scores.gather(-1, order)
    sorted_real = batch.mask.gather(-1, order)
    filled = masked_logits(sorted_scores, sorted_real)
    terms = _reverse_logcumsumexp(filled) - filled
    lengths = batch.mask.sum(-1, keepdim=True).to(batch.scores.dtype)
    positions = torch.arange(1, n + 1, device=batch.scores.device, dtype=batch.scores.dtype)
    # (2^(n-t) - 1) / sum_u (2^(n-u) - 1), numerator and denominator divided by 2^(n-1).
    total = 2.0 - (lengths + 1.0) * torch.exp2(1.0 - lengths)
    alpha = (torch.exp2(1.0 - positions) - torch.exp2(1.0 - lengths)) / torch.where(
        lengths > 1, total, torch.ones_like(total)
    )
    # The last real stage's term is 0 with a zero gradient (its suffix is one item), so its
    # weight, 0, changes nothing; 1 keeps an exact-zero gradient out of logcumsumexp, whose
    # double backward turns one into NaN (a gradient penalty, learned task weights).
    alpha = torch.where(positions == lengths, torch.ones_like(alpha), alpha)
    terms = torch.where(sorted_real, alpha * terms, terms.new_zeros(()))
    if batch.item_weights is not None:
        terms = terms * batch.item_weights.gather(-1, order)
    return reduce_lists(terms.sum(-1), batch.mask.any(-1), batch, reduction)


# ------------------------------------------------------------------------------------------
# RankCosine


def rank_cosine_loss(
    scores: Tensor,
    labels: Tensor,
    mask: Tensor | None = None,
    *,
    weights: Tensor | None = None,
    reduction: Reduction = "mean",
) -> Tensor:
    r"""RankCosine: half of one minus the cosine between the label and score vectors.

    .. math:: \ell = \frac12 \Bigl(1 - \frac{\sum_i w_i y_i s_i}
        {\sqrt{\sum_i w_i y_i^2}\, \sqrt{\sum_i w_i s_i^2}}\Bigr)

    over the real items, with per-item weights :math:`w` (1 without). The labels are the
    ground-truth score vector (any real values). Both vectors are first divided by their
    largest absolute value (a constant, no gradient: the cosine does not change), so large
    inputs stay finite; a zero score vector has cosine 0 and, there, the gradient of
    :math:`\langle y, s \rangle / \|y\|` (its norm is taken as 1, so the gradient stays
    finite). A list whose labels are all 0 has nothing to
    learn from: it counts as 0 and is left out of the mean. The per-list value lies in
    [0, 1]. Cost: :math:`O(n)` per list.

    Reference: Qin, Zhang, Tsai, Wang, Liu and Li, "Query-level loss functions for
    information retrieval", Information Processing and Management 2008.
    """
    where = "rank_cosine_loss"
    batch = check_lists(scores, labels, mask, weights, where=where, reduction=reduction)
    zero = batch.scores.new_zeros(())
    one = batch.scores.new_ones(())

    def scaled(x: Tensor) -> Tensor:
        magnitudes = torch.where(batch.mask, x.detach().abs(), zero)
        top = torch.nn.functional.pad(magnitudes, (0, 1)).amax(-1, keepdim=True)
        return x / torch.where(top > 0, top, one)

    y, s = scaled(batch.labels), scaled(batch.scores)
    w = batch.mask.to(y.dtype) if batch.item_weights is None else batch.item_weights
    dot = (w * y * s).sum(-1)
    y_norm = (w * y * y).sum(-1).sqrt()
    s_squared = (w * s * s).sum(-1)
    # A zero score vector (nothing else has a norm below the smallest weight after scaling)
    # takes the norm 1: its cosine is 0, its gradient that of <y, s> / |y|, finite.
    s_norm = torch.where(s_squared > 0, s_squared, torch.ones_like(s_squared)).sqrt()
    valid = y_norm > 0
    cosine = dot / (torch.where(valid, y_norm, torch.ones_like(y_norm)) * s_norm)
    return reduce_lists(0.5 * (1.0 - cosine), valid, batch, reduction)


# ------------------------------------------------------------------------------------------
# NDCG on soft ranks


def soft_rank_ndcg_loss(
    scores: Tensor,
    labels: Tensor,
    mask: Tensor | None = None,
    *,
    weights: Tensor | None = None,
    reduction: Reduction = "mean",
    regularization_strength: float = 1.0,
    gain: Literal["exp2", "linear"] = "exp2",
) -> Tensor:
    r"""One minus NDCG with the soft ranks of Blondel et al. in the discount.

    .. math:: \tilde r = \mathrm{softrank}_\varepsilon(s), \qquad
        \ell = 1 - \frac{1}{\mathrm{IDCG}} \sum_i \frac{G_i}{\log_2(1 + \tilde r_i)}

    :math:`\tilde r` is :func:`~rankloss.functional.soft_rank` (descending, 1 for the top
    score; the projection onto the permutahedron with the quadratic regulariser of strength
    :math:`\varepsilon`, ``regularization_strength``): exact ranks for small
    :math:`\varepsilon`, each list ranked among its own real items; tied scores get equal soft
    ranks. Gains :math:`G = 2^y - 1` (``gain="exp2"``) or :math:`y`, scaled by the per-item
    weights. A list whose ideal DCG is not positive counts as 0 and is left out of the mean.
    The value is piecewise smooth in the scores (the soft ranks are piecewise linear). Cost: a
    sort and :math:`O(n)` per list, the isotonic regression in a Python loop on the CPU (see
    :func:`~rankloss.functional.soft_rank`).

    Reference: Blondel, Teboul, Berthet and Djolonga, "Fast Differentiable Sorting and
    Ranking", ICML 2020.
    """
    where = "soft_rank_ndcg_loss"
    epsilon = params.positive(where, "regularization_strength", regularization_strength)
    params.choice(where, "gain", gain, GAINS)
    batch = check_lists(scores, labels, mask, weights, where=where, reduction=reduction)
    ranks = soft_rank(batch.scores, batch.mask, regularization_strength=epsilon)
    gains, valid = normalised_gains(batch.labels, batch.mask, gain, weights=batch.item_weights)
    safe_ranks = torch.where(batch.mask, ranks, torch.ones_like(ranks))
    ndcg = (gains / torch.log2(1.0 + safe_ranks)).sum(-1)
    return reduce_lists(1.0 - ndcg, valid, batch, reduction)

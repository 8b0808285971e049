r"""Rank-metric surrogates for retrieval: FastAP, Smooth-AP and the recall@k surrogate.

Each is a pure function of a similarity matrix and two bool masks, like every loss of
:mod:`rankloss.functional.embedding`::

    loss(similarity [N, M], positive [N, M], negative [N, M], *, <hyper-parameters>,
         weights=None, reduction="mean")

Row ``a`` is a query; its retrieval set :math:`\Omega_a = \mathcal P_a \cup \mathcal N_a` is
every candidate marked positive or negative (the query itself is in neither). Each loss is one
minus a relaxed retrieval metric of the query's ranking of :math:`\Omega_a`, so it lies in
:math:`[0, 1]` (the recall surrogate may dip slightly below 0). A query needs a positive and a
negative to have something to learn from (a ranking without negatives is perfect under every
metric); others count 0 and are left out of the mean. Entries in neither mask are replaced by 0
before any arithmetic.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from rankloss._core import params
from rankloss._core.reduce import Reduction, reduce_values
from rankloss.functional.embedding import _check_inputs

__all__ = ["fast_ap_loss", "smooth_ap_loss", "recall_at_k_loss", "RECALL_AT_K_CUTOFFS"]

#: The cut-offs and rank temperatures of Patel et al. (2022).
RECALL_AT_K_CUTOFFS = (1, 2, 4, 8, 16)


def fast_ap_loss(
    similarity: Tensor,
    positive: Tensor,
    negative: Tensor,
    *,
    num_bins: int = 10,
    weights: Tensor | None = None,
    reduction: Reduction = "mean",
) -> Tensor:
    r"""FastAP (Cakir et al., CVPR 2019): AP from soft histograms of distances.

    The distance of a pair is :math:`d = 2 - 2s`, the squared Euclidean distance of unit
    vectors when :math:`s` is their cosine (the paper's setting), clamped to :math:`[0, 4]`.
    With :math:`L` = ``num_bins`` bins of width :math:`\Delta = 4/L` centred at
    :math:`c_l = l\Delta` (:math:`l = 0..L`), each pair adds a triangular pulse
    :math:`\delta_l(d) = [1 - |d - c_l|/\Delta]_+` to a histogram:

    .. math::
        h^+_l = \sum_{p \in \mathcal P_a} \delta_l(d_{ap}), \quad
        h_l = \sum_{j \in \Omega_a} \delta_l(d_{aj}), \quad
        H^+_l = \sum_{l' \le l} h^+_{l'}, \quad H_l = \sum_{l' \le l} h_{l'}

    .. math::
        \ell_a = 1 - \frac{1}{|\mathcal P_a|}\sum_{l:\,h^+_l H^+_l > 0}
                 \frac{h^+_l H^+_l}{H_l}

    Similarities far outside :math:`[-1, 1]` (``dot`` on large embeddings) land in the end
    bins, where the loss is flat: meant for cosine similarities.

    Args:
        similarity, positive, negative: ``[N, M]`` similarity and bool masks of positive and
            negative pairs.
        num_bins: :math:`L \ge 1`, the number of histogram bins (the paper's default 10).
        weights: ``[N]`` per-query weights, or ``None``.
        reduction: ``"mean"`` (over queries with a positive and a negative), ``"sum"`` or
            ``"none"``.

    Returns:
        A scalar, or ``[N]`` with ``reduction="none"``.

    Reference: Cakir, He, Xia, Kulis, Sclaroff, "Deep Metric Learning to Rank", CVPR 2019.
    Cost: :math:`O(NML)` time and memory.
    """
    where = "fast_ap_loss"
    num_bins = params.positive_int(where, "num_bins", num_bins)
    sim, positive, negative = _check_inputs(similarity, positive, negative, reduction, where)
    width = 4.0 / num_bins
    distance = (2.0 - 2.0 * sim).clamp(0.0, 4.0)
    centres = torch.arange(num_bins + 1, dtype=sim.dtype, device=sim.device) * width
    pulse = torch.relu(1.0 - (distance.unsqueeze(-1) - centres).abs() / width)  # [N, M, L+1]
    pos_hist = (pulse * positive.unsqueeze(-1).to(sim.dtype)).sum(1)
    all_hist = (pulse * (positive | negative).unsqueeze(-1).to(sim.dtype)).sum(1)
    pos_cum, all_cum = pos_hist.cumsum(1), all_hist.cumsum(1)
    product = pos_hist * pos_cum
    keep = product > 0  # H_l >= H+_l > 0 there
    ratio = torch.where(keep, product, 0.0) / torch.where(keep, all_cum, 1.0)
    num_pos = positive.sum(1)
    valid = (num_pos > 0) & negative.any(1)
    per_query = 1.0 - ratio.sum(1) / num_pos.clamp(min=1).to(sim.dtype)
    return reduce_values(per_query, valid, weights, reduction, where=where)


def _soft_ranks(
    sim: Tensor, positive: Tensor, negative: Tensor, temperature: float | Tensor
) -> tuple[Tensor, Tensor]:
    """``(rank, rank among positives)`` ``[N, M]`` of every candidate:
    :math:`1 + \\sum_{j \\ne i} \\sigma((s_j - s_i)/\\tau)` over the retrieval set (over the
    positives)."""
    m = sim.shape[1]
    logits = (sim.unsqueeze(1) - sim.unsqueeze(2)) / temperature  # [a, i, j] = (s_j - s_i) / t
    others = ~torch.eye(m, dtype=torch.bool, device=sim.device)
    in_set = (positive | negative).unsqueeze(1) & others
    step = torch.sigmoid(logits)
    rank = 1.0 + torch.where(in_set, step, 0.0).sum(2)
    rank_pos = 1.0 + torch.where(positive.unsqueeze(1) & others, step, 0.0).sum(2)
    return rank, rank_pos


def smooth_ap_loss(
    similarity: Tensor,
    positive: Tensor,
    negative: Tensor,
    *,
    temperature: float | Tensor = 0.01,
    weights: Tensor | None = None,
    reduction: Reduction = "mean",
) -> Tensor:
    r"""Smooth-AP (Brown et al., ECCV 2020): AP with sigmoid-relaxed ranks.

    .. math::
        \mathcal R(i, S) = 1 + \sum_{j \in S,\, j \ne i} \sigma\Bigl(\frac{s_{aj} - s_{ai}}
        {\tau}\Bigr), \qquad
        \ell_a = 1 - \frac{1}{|\mathcal P_a|}\sum_{i \in \mathcal P_a}
        \frac{\mathcal R(i, \mathcal P_a)}{\mathcal R(i, \Omega_a)}

    The query is not part of its own retrieval set (the paper's definition).

    Args:
        similarity, positive, negative: ``[N, M]`` similarity and bool masks of positive and
            negative pairs.
        temperature: :math:`\tau > 0` of the sigmoid (the paper's 0.01, for cosine
            similarities), or a scalar tensor.
        weights: ``[N]`` per-query weights, or ``None``.
        reduction: ``"mean"`` (over queries with a positive and a negative), ``"sum"`` or
            ``"none"``.

    Returns:
        A scalar, or ``[N]`` with ``reduction="none"``.

    Reference: Brown, Xie, Kalogeiton, Zisserman, "Smooth-AP: Smoothing the Path Towards
    Large-Scale Image Retrieval", ECCV 2020. Cost: :math:`O(NM^2)` time and memory.
    """
    where = "smooth_ap_loss"
    temperature = params.temperature(where, "temperature", temperature)
    sim, positive, negative = _check_inputs(similarity, positive, negative, reduction, where)
    rank, rank_pos = _soft_ranks(sim, positive, negative, temperature)
    ratio = torch.where(positive, rank_pos / rank, 0.0)
    num_pos = positive.sum(1)
    valid = (num_pos > 0) & negative.any(1)
    per_query = 1.0 - ratio.sum(1) / num_pos.clamp(min=1).to(sim.dtype)
    return reduce_values(per_query, valid, weights, reduction, where=where)


def check_cutoffs(
    where: str, cutoffs: Sequence[int], rank_temperatures: Sequence[float]
) -> tuple[tuple[int, ...], tuple[float, ...]]:
    """Check the cut-offs of :func:`recall_at_k_loss` and their rank temperatures."""
    if isinstance(cutoffs, (str, bytes)) or not isinstance(cutoffs, Sequence) or not cutoffs:
        raise TypeError(f"{where}: cutoffs must be a non-empty sequence of ints, got {cutoffs!r}")
    ks = tuple(params.positive_int(where, "cutoffs", k) for k in cutoffs)
    if isinstance(rank_temperatures, (str, bytes)) or not isinstance(rank_temperatures, Sequence):
        raise TypeError(
            f"{where}: rank_temperatures must be a sequence of numbers, got {rank_temperatures!r}"
        )
    temps = tuple(params.positive(where, "rank_temperatures", t) for t in rank_temperatures)
    if len(temps) != len(ks):
        raise ValueError(
            f"{where}: rank_temperatures must be {len(ks)} values (one per cut-off), got "
            f"{len(temps)}"
        )
    return ks, temps


def recall_at_k_loss(
    similarity: Tensor,
    positive: Tensor,
    negative: Tensor,
    *,
    cutoffs: Sequence[int] = RECALL_AT_K_CUTOFFS,
    temperature: float | Tensor = 0.01,
    rank_temperatures: Sequence[float] = (1.0, 2.0, 4.0, 8.0, 16.0),
    weights: Tensor | None = None,
    reduction: Reduction = "mean",
) -> Tensor:
    r"""The recall@k surrogate (Patel et al., CVPR 2022), averaged over several cut-offs.

    .. math::
        r_a(i) = 1 + \sum_{j \in \Omega_a,\, j \ne i}
                 \sigma\Bigl(\frac{s_{aj} - s_{ai}}{\tau}\Bigr), \qquad
        \tilde R^k_a = \frac{\sum_{i \in \mathcal P_a} \sigma\bigl((k - r_a(i))/\tau_k\bigr)}
                            {\min(k, |\mathcal P_a|)}

    .. math::
        \ell_a = 1 - \frac{1}{|K|}\sum_{k \in K} \tilde R^k_a

    :math:`\tilde R^k` relaxes recall@k (the fraction of the query's positives found in its
    top :math:`k`, normalised as in the paper by :math:`\min(k, |\mathcal P|)`). Similarity
    mixup (SiMix) of the paper is not included; mix the embeddings before the loss for it.

    Args:
        similarity, positive, negative: ``[N, M]`` similarity and bool masks of positive and
            negative pairs.
        cutoffs: the set :math:`K` of cut-offs (the paper's ``(1, 2, 4, 8, 16)``).
        temperature: :math:`\tau > 0` of the sigmoid on similarity differences (0.01), or a
            scalar tensor.
        rank_temperatures: :math:`\tau_k > 0`, one per cut-off (the paper's
            ``(1, 2, 4, 8, 16)``).
        weights: ``[N]`` per-query weights, or ``None``.
        reduction: ``"mean"`` (over queries with a positive and a negative), ``"sum"`` or
            ``"none"``.

    Returns:
        A scalar, or ``[N]`` with ``reduction="none"``.

    Reference: Patel, Tolias, Matas, "Recall@k Surrogate Loss with Large Batches and
    Similarity Mixup", CVPR 2022. Cost: :math:`O(NM^2 + NM|K|)` time, :math:`O(NM^2)` memory.
    """
    where = "recall_at_k_loss"
    ks, temps = check_cutoffs(where, cutoffs, rank_temperatures)
    temperature = params.temperature(where, "temperature", temperature)
    sim, positive, negative = _check_inputs(similarity, positive, negative, reduction, where)
    rank, _ = _soft_ranks(sim, positive, negative, temperature)
    num_pos = positive.sum(1).to(sim.dtype)
    recall = sim.new_zeros(sim.shape[0])
    for k, t in zip(ks, temps, strict=True):
        hits = torch.where(positive, torch.sigmoid((k - rank) / t), 0.0).sum(1)
        recall = recall + hits / num_pos.clamp(min=1.0).clamp(max=float(k))
    valid = (num_pos > 0) & negative.any(1)
    per_query = 1.0 - recall / len(ks)
    return reduce_values(per_query, valid, weights, reduction, where=where)

r"""Embedding losses for metric learning and retrieval.

Two input forms, shared by every function here:

* ``loss(embeddings, labels)``: ``embeddings [N, d]``, integer ``labels [N]``. Every other row
  is a candidate; equal labels make a positive pair, different labels a negative pair.
* ``loss(queries, keys)``: two ``[N, d]`` tensors paired by row, as for retrieval: key ``i``
  is the positive of query ``i`` and the other keys are in-batch negatives. An optional third
  argument ``pair_labels [N]`` gives each row a class: keys of the query's class (other than
  its own) then count as positives too (the default) or, for :func:`info_nce_loss` with
  ``false_negatives="mask"``, are left out (masked false negatives).

The form is told by the second argument's dtype: integer = labels, floating point = keys.

In both forms ``ref_embeddings [M, d]`` (a queue, a gallery) are appended to the candidates:
with ``ref_labels [M]`` they pair by label; without, they are extra negatives.
``hard_negatives`` (``[N, d]`` or ``[N, h, d]``, where taken) are appended as negatives of every
query, as in-batch retrieval does.

Every pairwise matrix is a similarity (higher = closer, ``similarity=`` one of
:data:`rankloss.functional.similarity.SIMILARITIES`). Each loss first computes **one value per
anchor** (query row); ``reduction="none"`` returns those ``[N]``, ``"sum"`` sums them (times
per-anchor ``weights [N]``) and ``"mean"`` is their weighted mean over the anchors that have
something to learn from (a positive, and for most losses a negative). A batch with nothing to
learn from returns a finite 0 connected to the graph. float16/bfloat16 compute in float32.

Losses built on pairs (contrastive, multi-similarity, circle) and on triplets (triplet,
margin ranking) take a ``miner`` (a name from :func:`rankloss.mining.available` or a miner
object) or the per-call ``indices`` (:class:`~rankloss.mining.Pairs` or
:class:`~rankloss.mining.Triplets`) to restrict the tuples; a pair miner feeds a triplet loss
(its positive and negative pairs of one anchor are combined) and a triplet miner feeds a pair
loss (its distinct pairs are used).
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from rankloss._validation import check_choice
from rankloss.functional._candidates import Candidates, prepare_candidates
from rankloss.functional._chunked import chunked_info_nce
from rankloss.functional._reduce import REDUCTIONS, masked_mean
from rankloss.functional.similarity import SIMILARITIES, pairwise_similarity
from rankloss.mining.tuples import Pairs, Triplets, pairs_to_triplets, triplets_to_pairs

__all__ = [
    "contrastive_loss",
    "triplet_loss",
    "info_nce_loss",
    "nt_xent_loss",
    "supcon_loss",
    "multi_similarity_loss",
    "circle_loss",
    "margin_ranking_loss",
]


# --------------------------------------------------------------------------------------------
# Shared parts


def _reduce_anchors(
    per_anchor: Tensor, valid: Tensor, weights: Tensor | None, reduction: str, where: str
) -> Tensor:
    """One value per anchor -> the reduction asked for (see the module docstring)."""
    check_choice("reduction", reduction, REDUCTIONS)
    zero = per_anchor.new_zeros(())
    values = torch.where(valid, per_anchor, zero)
    if weights is not None:
        if not isinstance(weights, Tensor):
            weights = torch.as_tensor(weights, device=per_anchor.device)
        if weights.shape != per_anchor.shape:
            raise ValueError(
                f"{where}: weights has shape {list(weights.shape)} but there are "
                f"{per_anchor.shape[0]} anchors; expected [{per_anchor.shape[0]}]"
            )
        if weights.is_complex() or weights.dtype == torch.bool:
            raise ValueError(f"{where}: weights must be real numbers, got dtype {weights.dtype}")
    if reduction == "none":
        return values
    scale = valid.to(per_anchor.dtype)
    if weights is not None:
        scale = scale * weights.to(per_anchor.dtype)
    total = (values * scale).sum()
    if reduction == "sum":
        return total
    denominator = scale.sum()
    return total / torch.where(denominator != 0, denominator, torch.ones_like(denominator))


def _masked_logsumexp(x: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
    """Row-wise log-sum-exp over ``mask`` and whether the row had any entry (0 where not).

    Masked entries are replaced *before* ``exp``, so they leak neither NaN nor gradient.
    """
    has_any = mask.any(1)
    row_max = torch.where(mask, x, -math.inf).amax(1, keepdim=True).detach()
    row_max = torch.where(has_any.unsqueeze(1), row_max, torch.zeros_like(row_max))
    shifted = torch.where(mask, x - row_max, torch.zeros_like(x))
    total = torch.where(mask, shifted.exp(), torch.zeros_like(x)).sum(1)
    total = torch.where(has_any, total, torch.ones_like(total))
    return row_max[:, 0] + total.log(), has_any


def _similarity(cand: Candidates, kind: str) -> Tensor:
    check_choice("similarity", kind, SIMILARITIES)
    return pairwise_similarity(cand.queries, cand.keys, kind)


def _resolve_miner(miner: Any) -> Any:
    if miner is None or callable(miner):
        return miner
    if isinstance(miner, str):
        from rankloss import mining

        return mining.get(miner)
    raise ValueError(f"miner must be None, a miner name or a miner object, got {miner!r}")


def _tuples(
    miner: Any,
    indices: Pairs | Triplets | None,
    sim: Tensor,
    positive: Tensor,
    negative: Tensor,
    generator: torch.Generator | None,
    where: str,
    dim: int | None = None,
) -> Pairs | Triplets | None:
    if miner is not None and indices is not None:
        raise ValueError(f"{where}: pass either a miner or indices, not both")
    if indices is not None:
        if not isinstance(indices, (Pairs, Triplets)):
            raise ValueError(
                f"{where}: indices must be rankloss.mining.Pairs or Triplets, got "
                f"{type(indices).__name__}"
            )
        return indices
    miner = _resolve_miner(miner)
    if miner is None:
        return None
    return miner(sim.detach(), positive, negative, generator=generator, embedding_dim=dim)


def _restrict_pairs(
    tuples: Pairs | Triplets | None, positive: Tensor, negative: Tensor
) -> tuple[Tensor, Tensor]:
    if tuples is None:
        return positive, negative
    pairs = triplets_to_pairs(tuples) if isinstance(tuples, Triplets) else tuples
    mined_pos, mined_neg = pairs.to_masks(*positive.shape)
    return positive & mined_pos, negative & mined_neg


def _candidates(
    embeddings,
    labels_or_keys,
    pair_labels,
    ref_embeddings,
    ref_labels,
    hard_negatives,
    where,
    false_negatives="positive",
) -> tuple[Candidates, Tensor, Tensor]:
    cand = prepare_candidates(
        embeddings,
        labels_or_keys,
        pair_labels,
        ref_embeddings,
        ref_labels,
        hard_negatives,
        where=where,
        false_negatives=false_negatives,
    )
    positive, negative = cand.masks()
    return cand, positive, negative


def _triplet_per_anchor(
    sim: Tensor,
    positive: Tensor,
    negative: Tensor,
    tuples: Pairs | Triplets | None,
    value,
) -> tuple[Tensor, Tensor]:
    """Mean of ``value(s_ap, s_an)`` over each anchor's triplets, and which anchors have one."""
    n = sim.shape[0]
    if tuples is None:
        # Every triplet, as an [N, M, M] block.
        mask = positive.unsqueeze(2) & negative.unsqueeze(1)
        per = value(sim.unsqueeze(2), sim.unsqueeze(1))
        total = torch.where(mask, per, per.new_zeros(())).sum((1, 2))
        count = positive.sum(1) * negative.sum(1)
    else:
        triplets = pairs_to_triplets(tuples) if isinstance(tuples, Pairs) else tuples
        a, p, q = triplets.anchor, triplets.positive, triplets.negative
        ok = positive[a, p] & negative[a, q] & (p != q)
        a, p, q = a[ok], p[ok], q[ok]
        per = value(sim[a, p], sim[a, q])
        total = sim.new_zeros(n).index_add(0, a, per)
        count = torch.zeros(n, dtype=torch.long, device=sim.device).index_add(
            0, a, torch.ones_like(a)
        )
        total = total + 0.0 * sim.sum()  # stays connected when no triplet survives
    valid = count > 0
    return total / count.clamp(min=1).to(sim.dtype), valid


# --------------------------------------------------------------------------------------------
# Pair losses


def contrastive_loss(
    embeddings: Tensor,
    labels_or_keys: Tensor,
    pair_labels: Tensor | None = None,
    *,
    ref_embeddings: Tensor | None = None,
    ref_labels: Tensor | None = None,
    indices: Pairs | Triplets | None = None,
    weights: Tensor | None = None,
    generator: torch.Generator | None = None,
    reduction: str = "mean",
    similarity: str = "cosine",
    pos_margin: float = 1.0,
    neg_margin: float = 0.0,
    squared: bool = False,
    miner: Any = None,
) -> Tensor:
    r"""Contrastive loss (Hadsell, Chopra and LeCun, CVPR 2006), on similarities.

    .. math::
        \ell_a = \frac{1}{|\mathcal P_a|}\sum_{p} [m_+ - s_{ap}]_+^{q}
               + \frac{1}{|\mathcal N_a|}\sum_{n} [s_{an} - m_-]_+^{q},
        \qquad q = 2 \text{ if squared else } 1

    Positives are pulled above ``pos_margin``, negatives pushed below ``neg_margin``. With
    ``similarity="neg_euclidean"``, ``pos_margin=0``, ``neg_margin=-m`` and ``squared=True``
    this is Hadsell's :math:`D^2` / :math:`[m - D]_+^2` form (without the factor 1/2). An
    anchor with either kind of pair counts. ``miner``/``indices`` restrict the pairs.

    Shapes: see the module docstring; returns ``[N]`` for ``reduction="none"``.
    Cost: :math:`O(NMd)` time, :math:`O(NM)` memory.
    """
    where = "contrastive_loss"
    cand, positive, negative = _candidates(
        embeddings, labels_or_keys, pair_labels, ref_embeddings, ref_labels, None, where
    )
    sim = _similarity(cand, similarity)
    tuples = _tuples(
        miner, indices, sim, positive, negative, generator, where, cand.queries.shape[1]
    )
    positive, negative = _restrict_pairs(tuples, positive, negative)
    power = 2 if squared else 1
    pos_term, has_pos = masked_mean(torch.relu(pos_margin - sim).pow(power), positive)
    neg_term, has_neg = masked_mean(torch.relu(sim - neg_margin).pow(power), negative)
    return _reduce_anchors(pos_term + neg_term, has_pos | has_neg, weights, reduction, where)


def multi_similarity_loss(
    embeddings: Tensor,
    labels_or_keys: Tensor,
    pair_labels: Tensor | None = None,
    *,
    ref_embeddings: Tensor | None = None,
    ref_labels: Tensor | None = None,
    indices: Pairs | Triplets | None = None,
    weights: Tensor | None = None,
    generator: torch.Generator | None = None,
    reduction: str = "mean",
    similarity: str = "cosine",
    alpha: float = 2.0,
    beta: float = 50.0,
    base: float = 0.5,
    miner: Any = None,
) -> Tensor:
    r"""Multi-similarity loss (Wang et al., CVPR 2019).

    .. math::
        \ell_a = \frac{1}{\alpha}\log\Bigl(1 + \sum_{p} e^{-\alpha(s_{ap} - \lambda)}\Bigr)
               + \frac{1}{\beta}\log\Bigl(1 + \sum_{n} e^{\beta(s_{an} - \lambda)}\Bigr)

    with :math:`\lambda` = ``base``. Usually paired with ``miner="multi_similarity"``. An anchor
    with either kind of pair counts; a missing kind contributes 0.

    Reference: Wang, Han, Huang, Dong and Scott, "Multi-Similarity Loss with General Pair
    Weighting for Deep Metric Learning", CVPR 2019. Cost: :math:`O(NMd)`, :math:`O(NM)` memory.
    """
    where = "multi_similarity_loss"
    cand, positive, negative = _candidates(
        embeddings, labels_or_keys, pair_labels, ref_embeddings, ref_labels, None, where
    )
    sim = _similarity(cand, similarity)
    tuples = _tuples(
        miner, indices, sim, positive, negative, generator, where, cand.queries.shape[1]
    )
    positive, negative = _restrict_pairs(tuples, positive, negative)
    pos_lse, has_pos = _masked_logsumexp(-alpha * (sim - base), positive)
    neg_lse, has_neg = _masked_logsumexp(beta * (sim - base), negative)
    zero = sim.new_zeros(())
    per_anchor = torch.where(has_pos, F.softplus(pos_lse) / alpha, zero) + torch.where(
        has_neg, F.softplus(neg_lse) / beta, zero
    )
    return _reduce_anchors(per_anchor, has_pos | has_neg, weights, reduction, where)


def circle_loss(
    embeddings: Tensor,
    labels_or_keys: Tensor,
    pair_labels: Tensor | None = None,
    *,
    ref_embeddings: Tensor | None = None,
    ref_labels: Tensor | None = None,
    indices: Pairs | Triplets | None = None,
    weights: Tensor | None = None,
    generator: torch.Generator | None = None,
    reduction: str = "mean",
    similarity: str = "cosine",
    margin: float = 0.4,
    gamma: float = 80.0,
    miner: Any = None,
) -> Tensor:
    r"""Circle loss (Sun et al., CVPR 2020).

    .. math::
        \ell_a = \operatorname{softplus}\Bigl(
            \log\sum_{n} e^{\gamma \alpha_n (s_{an} - \Delta_n)}
          + \log\sum_{p} e^{-\gamma \alpha_p (s_{ap} - \Delta_p)}\Bigr)

    with :math:`\alpha_p = [1 + m - s_{ap}]_+`, :math:`\alpha_n = [s_{an} + m]_+` (treated as
    constants), :math:`\Delta_p = 1 - m`, :math:`\Delta_n = m`. An anchor needs a positive and
    a negative. Defaults ``margin=0.4, gamma=80`` (the paper's fine-grained retrieval setting).

    Reference: Sun et al., "Circle Loss: A Unified Perspective of Pair Similarity
    Optimization", CVPR 2020. Cost: :math:`O(NMd)`, :math:`O(NM)` memory.
    """
    where = "circle_loss"
    cand, positive, negative = _candidates(
        embeddings, labels_or_keys, pair_labels, ref_embeddings, ref_labels, None, where
    )
    sim = _similarity(cand, similarity)
    tuples = _tuples(
        miner, indices, sim, positive, negative, generator, where, cand.queries.shape[1]
    )
    positive, negative = _restrict_pairs(tuples, positive, negative)
    detached = sim.detach()
    alpha_p = torch.relu(1.0 + margin - detached)
    alpha_n = torch.relu(detached + margin)
    pos_lse, has_pos = _masked_logsumexp(-gamma * alpha_p * (sim - (1.0 - margin)), positive)
    neg_lse, has_neg = _masked_logsumexp(gamma * alpha_n * (sim - margin), negative)
    valid = has_pos & has_neg
    per_anchor = F.softplus(torch.where(valid, pos_lse + neg_lse, sim.new_zeros(())))
    return _reduce_anchors(per_anchor, valid, weights, reduction, where)


# --------------------------------------------------------------------------------------------
# Triplet losses


def triplet_loss(
    embeddings: Tensor,
    labels_or_keys: Tensor,
    pair_labels: Tensor | None = None,
    *,
    ref_embeddings: Tensor | None = None,
    ref_labels: Tensor | None = None,
    indices: Pairs | Triplets | None = None,
    weights: Tensor | None = None,
    generator: torch.Generator | None = None,
    reduction: str = "mean",
    similarity: str = "cosine",
    margin: float = 0.1,
    soft_margin: bool = False,
    miner: Any = None,
) -> Tensor:
    r"""Triplet margin loss (Weinberger and Saul 2009; Schroff et al. 2015), on similarities.

    .. math:: \ell_{apn} = [s_{an} - s_{ap} + m]_+ \quad\text{or, with soft\_margin,}\quad
        \log(1 + e^{s_{an} - s_{ap}})

    (the soft margin of Hermans et al. 2017 replaces the hinge and does not use ``margin``).
    The per-anchor value is the mean over the anchor's triplets. Without a miner every
    triplet is used: :math:`O(NM^2)` time and memory; with ``miner="batch_hard"`` (one triplet
    per anchor) or ``"semi_hard"`` it is :math:`O(NM)`.
    """
    where = "triplet_loss"
    cand, positive, negative = _candidates(
        embeddings, labels_or_keys, pair_labels, ref_embeddings, ref_labels, None, where
    )
    sim = _similarity(cand, similarity)
    tuples = _tuples(
        miner, indices, sim, positive, negative, generator, where, cand.queries.shape[1]
    )

    def value(s_ap: Tensor, s_an: Tensor) -> Tensor:
        return F.softplus(s_an - s_ap) if soft_margin else torch.relu(s_an - s_ap + margin)

    per_anchor, valid = _triplet_per_anchor(sim, positive, negative, tuples, value)
    return _reduce_anchors(per_anchor, valid, weights, reduction, where)


def margin_ranking_loss(
    embeddings: Tensor,
    labels_or_keys: Tensor,
    pair_labels: Tensor | None = None,
    *,
    ref_embeddings: Tensor | None = None,
    ref_labels: Tensor | None = None,
    hard_negatives: Tensor | None = None,
    indices: Pairs | Triplets | None = None,
    weights: Tensor | None = None,
    reduction: str = "mean",
    similarity: str = "cosine",
    margin: float = 0.1,
) -> Tensor:
    r"""Pairwise margin ranking on given pairs: each positive above each negative of its anchor.

    .. math:: \ell_{apn} = [m - (s_{ap} - s_{an})]_+

    The retrieval form of the hinge: with ``(queries, keys)`` every query's key is ranked above
    the other keys, the references and its ``hard_negatives``; ``indices`` (``Triplets``, or
    ``Pairs`` whose positive and negative pairs of one anchor are combined) gives the pairs
    explicitly. The per-anchor value is the mean over its (positive, negative) combinations.
    Cost: :math:`O(NM^2)` without ``indices``, :math:`O(NM + T)` with ``T`` given tuples.
    """
    where = "margin_ranking_loss"
    cand, positive, negative = _candidates(
        embeddings, labels_or_keys, pair_labels, ref_embeddings, ref_labels, hard_negatives, where
    )
    sim = _similarity(cand, similarity)
    tuples = _tuples(None, indices, sim, positive, negative, None, where)
    per_anchor, valid = _triplet_per_anchor(
        sim, positive, negative, tuples, lambda s_ap, s_an: torch.relu(margin - s_ap + s_an)
    )
    return _reduce_anchors(per_anchor, valid, weights, reduction, where)


# --------------------------------------------------------------------------------------------
# Softmax (InfoNCE family)


def _check_temperature(temperature: float | Tensor, where: str) -> None:
    if isinstance(temperature, Tensor):
        if temperature.numel() != 1:
            raise ValueError(
                f"{where}: temperature must be a scalar, got {list(temperature.shape)}"
            )
        return
    if not temperature > 0:
        raise ValueError(f"{where}: temperature must be positive, got {temperature}")


def _info_nce_direct(cand: Candidates, similarity: str, temperature) -> tuple[Tensor, Tensor]:
    positive, negative = cand.masks()
    logits = _similarity(cand, similarity) / temperature
    lse, has_neg = _masked_logsumexp(logits, negative)
    per_positive = F.softplus(lse.unsqueeze(1) - logits)
    per_anchor, has_pos = masked_mean(per_positive, positive)
    return per_anchor, has_pos & has_neg


def _info_nce_one_way(
    cand: Candidates, similarity: str, temperature, chunk_size: int | None, where: str
) -> tuple[Tensor, Tensor]:
    if chunk_size is None:
        return _info_nce_direct(cand, similarity, temperature)
    if similarity not in ("dot", "cosine"):
        raise ValueError(
            f"{where}: chunk_size supports similarity 'dot' or 'cosine', got {similarity!r}"
        )
    queries, keys = cand.queries, cand.keys
    if similarity == "cosine":
        queries, keys = F.normalize(queries, dim=1, eps=1e-12), F.normalize(keys, dim=1, eps=1e-12)
    return chunked_info_nce(queries / temperature, keys, cand, int(chunk_size))


def _info_nce_parts(
    embeddings,
    labels_or_keys,
    pair_labels,
    ref_embeddings,
    ref_labels,
    hard_negatives,
    temperature,
    similarity,
    symmetric,
    false_negatives,
    chunk_size,
    where,
) -> tuple[Tensor, Tensor]:
    _check_temperature(temperature, where)
    check_choice("similarity", similarity, SIMILARITIES)
    cand = prepare_candidates(
        embeddings,
        labels_or_keys,
        pair_labels,
        ref_embeddings,
        ref_labels,
        hard_negatives,
        where=where,
        false_negatives=false_negatives,
    )
    per_anchor, valid = _info_nce_one_way(cand, similarity, temperature, chunk_size, where)
    if symmetric:
        if not cand.pair_form:
            raise ValueError(
                f"{where}: symmetric applies to the (queries, keys) form; the "
                "(embeddings, labels) form is already symmetric"
            )
        n = cand.num_queries
        reverse = Candidates(
            queries=cand.keys[:n],
            keys=cand.queries,
            query_labels=cand.query_labels,
            key_labels=cand.query_labels,
            forced_negative=torch.zeros(n, dtype=torch.bool, device=cand.queries.device),
            exclude_self=False,
            diagonal_only=cand.diagonal_only,
            pair_form=True,
        )
        back, back_valid = _info_nce_one_way(reverse, similarity, temperature, chunk_size, where)
        zero = per_anchor.new_zeros(())
        both = valid.to(per_anchor.dtype) + back_valid.to(per_anchor.dtype)
        per_anchor = torch.where(valid, per_anchor, zero) + torch.where(back_valid, back, zero)
        per_anchor = per_anchor / both.clamp(min=1)
        valid = valid | back_valid
    return per_anchor, valid


def info_nce_loss(
    embeddings: Tensor,
    labels_or_keys: Tensor,
    pair_labels: Tensor | None = None,
    *,
    ref_embeddings: Tensor | None = None,
    ref_labels: Tensor | None = None,
    hard_negatives: Tensor | None = None,
    weights: Tensor | None = None,
    reduction: str = "mean",
    temperature: float | Tensor = 0.07,
    similarity: str = "cosine",
    symmetric: bool = False,
    false_negatives: str = "mask",
    chunk_size: int | None = None,
) -> Tensor:
    r"""InfoNCE (van den Oord et al. 2018): softmax cross-entropy of each positive against the
    anchor's negatives.

    With logits :math:`z_{aj} = s_{aj} / \tau`,

    .. math::
        \ell_a = \frac{1}{|\mathcal P_a|} \sum_{p \in \mathcal P_a}
        -\log \frac{e^{z_{ap}}}{e^{z_{ap}} + \sum_{n \in \mathcal N_a} e^{z_{an}}}

    One positive per anchor in the ``(queries, keys)`` form; many in the
    ``(embeddings, labels)`` form (every same-label row), each against the negatives only.
    ``temperature`` may be a tensor (e.g. ``log_t.exp()`` of a learnable parameter, as
    :class:`rankloss.losses.InfoNCELoss` does with ``learnable_temperature=True``).

    Options:
        symmetric: ``(queries, keys)`` form only: average with the keys->queries direction
            (CLIP style; the reverse direction's candidates are the queries).
        hard_negatives: ``[N, d]`` or ``[N, h, d]`` extra negatives shared by every query.
        false_negatives: with ``pair_labels``, keys of the query's class other than its own
            are ``"mask"`` (left out of the denominator) or ``"positive"`` (extra positives).
        chunk_size: compute in blocks of ``chunk_size`` candidates and recompute them in
            backward: memory :math:`O(Nd + N\cdot\text{chunk})` instead of :math:`O(NM)`;
            ``similarity`` must be ``"dot"`` or ``"cosine"``. Equal to the direct path
            within float32 rounding.

    An anchor needs a positive and a negative. Cost: :math:`O(NMd)` time.
    """
    where = "info_nce_loss"
    per_anchor, valid = _info_nce_parts(
        embeddings,
        labels_or_keys,
        pair_labels,
        ref_embeddings,
        ref_labels,
        hard_negatives,
        temperature,
        similarity,
        symmetric,
        false_negatives,
        chunk_size,
        where,
    )
    return _reduce_anchors(per_anchor, valid, weights, reduction, where)


def nt_xent_loss(
    embeddings: Tensor,
    labels_or_keys: Tensor,
    pair_labels: Tensor | None = None,
    *,
    ref_embeddings: Tensor | None = None,
    ref_labels: Tensor | None = None,
    hard_negatives: Tensor | None = None,
    weights: Tensor | None = None,
    reduction: str = "mean",
    temperature: float | Tensor = 0.5,
    similarity: str = "cosine",
    chunk_size: int | None = None,
) -> Tensor:
    r"""NT-Xent, the normalised temperature-scaled cross-entropy of SimCLR (Chen et al. 2020).

    ``nt_xent_loss(view1, view2)`` with two ``[N, d]`` views: row ``i`` of ``view1`` and row
    ``i`` of ``view2`` are positives and each of the :math:`2N` embeddings is an anchor whose
    negatives are the other :math:`2N-2`:

    .. math::
        \ell_i = -\log\frac{e^{s(u_i, v_i)/\tau}}{\sum_{k \ne i} e^{s(w_i, w_k)/\tau}}
        \quad\text{over } w = [u; v]

    This is :func:`info_nce_loss` on ``(cat(view1, view2), cat(ids, ids))``; with
    ``pair_labels`` the ids are those labels. ``nt_xent_loss(embeddings, labels)`` is the same
    as :func:`info_nce_loss` in the labels form. In the views form ``reduction="none"`` returns
    ``[N]``, the mean of the two views' values, and ``weights`` are per sample ``[N]``.
    """
    where = "nt_xent_loss"
    if not (isinstance(labels_or_keys, Tensor) and labels_or_keys.dtype.is_floating_point):
        return info_nce_loss(
            embeddings,
            labels_or_keys,
            pair_labels,
            ref_embeddings=ref_embeddings,
            ref_labels=ref_labels,
            hard_negatives=hard_negatives,
            weights=weights,
            reduction=reduction,
            temperature=temperature,
            similarity=similarity,
            chunk_size=chunk_size,
        )
    if not isinstance(embeddings, Tensor) or embeddings.shape != labels_or_keys.shape:
        shape = list(embeddings.shape) if isinstance(embeddings, Tensor) else None
        raise ValueError(
            f"{where}: view2 has shape {list(labels_or_keys.shape)} but view1 has shape {shape}"
        )
    n = embeddings.shape[0]
    if pair_labels is None:
        ids = torch.arange(n, device=embeddings.device)
    else:
        if not isinstance(pair_labels, Tensor) or pair_labels.shape != (n,):
            raise ValueError(f"{where}: pair_labels must have shape [{n}]")
        ids = pair_labels.to(embeddings.device)
    if hard_negatives is not None:
        hard_negatives = torch.cat([hard_negatives, hard_negatives])
    per, ok = _info_nce_parts(
        torch.cat([embeddings, labels_or_keys]),
        torch.cat([ids, ids]),
        None,
        ref_embeddings,
        ref_labels,
        hard_negatives,
        temperature,
        similarity,
        False,
        "mask",
        chunk_size,
        where,
    )
    zero = per.new_zeros(())
    total = torch.where(ok[:n], per[:n], zero) + torch.where(ok[n:], per[n:], zero)
    count = ok[:n].to(per.dtype) + ok[n:].to(per.dtype)
    per_sample = total / count.clamp(min=1)
    valid = ok[:n] | ok[n:]
    return _reduce_anchors(per_sample, valid, weights, reduction, where)


def supcon_loss(
    embeddings: Tensor,
    labels_or_keys: Tensor,
    pair_labels: Tensor | None = None,
    *,
    ref_embeddings: Tensor | None = None,
    ref_labels: Tensor | None = None,
    hard_negatives: Tensor | None = None,
    weights: Tensor | None = None,
    reduction: str = "mean",
    temperature: float | Tensor = 0.1,
    similarity: str = "cosine",
) -> Tensor:
    r"""Supervised contrastive loss (Khosla et al., NeurIPS 2020), the :math:`L^{sup}_{out}` form.

    .. math::
        \ell_a = -\frac{1}{|\mathcal P_a|}\sum_{p \in \mathcal P_a}
        \log\frac{e^{z_{ap}}}{\sum_{j \in \mathcal A_a} e^{z_{aj}}}, \qquad z = s/\tau

    where :math:`\mathcal A_a` is every candidate but the anchor itself (positives and
    negatives). Unlike :func:`info_nce_loss`, the other positives stay in the denominator.
    An anchor needs a positive. Cost: :math:`O(NMd)` time, :math:`O(NM)` memory.
    """
    where = "supcon_loss"
    _check_temperature(temperature, where)
    cand, positive, negative = _candidates(
        embeddings, labels_or_keys, pair_labels, ref_embeddings, ref_labels, hard_negatives, where
    )
    logits = _similarity(cand, similarity) / temperature
    lse, _ = _masked_logsumexp(logits, positive | negative)
    mean_pos, has_pos = masked_mean(logits, positive)
    return _reduce_anchors(lse - mean_pos, has_pos, weights, reduction, where)

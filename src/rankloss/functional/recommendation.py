r"""Recommendation losses for two-tower and sequential recommenders.

A list is one user's (or one query's, or one sequence position's) candidates: its positive(s)
(label :math:`> 0`) and the sampled or in-batch negatives (label 0). Labels must be
:math:`\ge 0`. Every function takes ``scores`` and ``labels`` of shape ``[..., n]``, an optional
bool ``mask`` (True = a real candidate) and optional ``weights`` per list ``[...]`` or per item
``[..., n]``, computes one value per list over its real candidates only (padding never enters a
softmax or a normaliser), then reduces: ``"mean"`` averages over the lists with something to
learn from. A list without a positive has nothing to learn from: it counts as 0 and is left out
of the mean.

* :func:`sampled_softmax_loss`: softmax cross-entropy over the candidates, with the log-Q
  correction of the sampling probabilities (an explicit input, ``log_q``).
* :func:`bpr_max_loss`, :func:`top1_max_loss`: GRU4Rec's losses, each positive against a
  softmax-weighted mix of the list's negatives.
* :func:`gbce_loss`: gSASRec's generalised binary cross-entropy, calibrated for negative
  sampling.
* :func:`ccl_loss`: SimpleX's cosine contrastive loss.
* :func:`in_batch_scores`: the ``[B, B]`` lists of in-batch training of a two-tower model, so
  that any list loss can be trained in-batch.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from rankloss._core import params
from rankloss._core.ranking import masked_logits
from rankloss._core.reduce import Reduction, reduce_lists
from rankloss._core.similarity import Similarity, pairwise_similarity
from rankloss._core.validation import ListBatch, check_embeddings, check_lists, shape_str
from rankloss.functional.listwise import _masked_log_softmax

__all__ = [
    "sampled_softmax_loss",
    "bpr_max_loss",
    "top1_max_loss",
    "gbce_loss",
    "gbce_beta",
    "ccl_loss",
    "in_batch_scores",
]


def _check_nonnegative_labels(batch: ListBatch, where: str) -> None:
    """Refuse negative labels (one device synchronisation): a list holds positives (label > 0)
    and negatives (label 0); a negative label has no meaning here and is never dropped."""
    if batch.labels.numel() and bool((batch.labels < 0).any()):
        found = batch.labels.min().item()
        raise ValueError(
            f"{where}: labels must be >= 0 (positives > 0, negatives 0), got {found}; "
            "padding is said by mask, not by a label"
        )


def _check_log_q(log_q: object, scores: Tensor, batch: ListBatch, where: str) -> Tensor:
    """``log_q`` as ``[B, n]`` in the compute dtype, 0 at padded positions.

    Raises ``ValueError`` (before any work) for a non-tensor, a non-floating dtype, a shape
    other than the scores', another device, or a real position holding NaN, ``-inf`` (a
    probability of 0: a sampled candidate has a positive probability) or a value above 0 (a
    probability above 1).
    """
    if not isinstance(log_q, Tensor):
        raise ValueError(
            f"{where}: log_q must be a torch.Tensor or None, got {type(log_q).__name__}"
        )
    if not log_q.dtype.is_floating_point:
        raise ValueError(
            f"{where}: log_q must be floating point (log probabilities), got dtype {log_q.dtype}"
        )
    if log_q.shape != scores.shape:
        raise ValueError(
            f"{where}: log_q has shape {shape_str(log_q)} but scores has shape {shape_str(scores)}"
        )
    if log_q.device != scores.device:
        raise ValueError(f"{where}: log_q is on {log_q.device} but scores is on {scores.device}")
    flat = log_q.reshape(batch.scores.shape).to(batch.scores.dtype)
    flat = torch.where(batch.mask, flat, flat.new_zeros(()))
    _refuse_bad_log_q(flat, batch.mask, log_q.shape, where)
    return flat


def _refuse_bad_log_q(values: Tensor, real: Tensor, shape: tuple[int, ...], where: str) -> None:
    """Raise ``ValueError`` naming the first real position of ``values`` (flattened from
    ``shape``) holding NaN, ``-inf`` or a value above 0. One pass, one synchronisation."""
    bad = real & ~(torch.isfinite(values) & (values <= 0))
    if not bool(bad.any()):
        return
    index = int(bad.reshape(-1).nonzero()[0, 0])
    value = float(values.reshape(-1)[index])
    position = torch.unravel_index(torch.tensor(index), shape)
    at = "[" + ", ".join(str(int(p)) for p in position) + "]"
    why = (
        "a log probability must be <= 0; this is a probability above 1"
        if value > 0
        else "the log probability of a sampled candidate must be finite (its probability > 0)"
    )
    raise ValueError(f"{where}: log_q holds {value:.6g} at {at} ({why})")


def sampled_softmax_loss(
    scores: Tensor,
    labels: Tensor,
    mask: Tensor | None = None,
    log_q: Tensor | None = None,
    *,
    weights: Tensor | None = None,
    reduction: Reduction = "mean",
    temperature: float = 1.0,
) -> Tensor:
    r"""Sampled softmax with the log-Q correction of the sampling probabilities.

    .. math::
        z_j = \frac{s_j}{\tau} - \log Q_j, \qquad
        \ell = -\sum_i \frac{y_i}{\sum_k y_k} \log \frac{e^{z_i}}{\sum_j e^{z_j}}

    :math:`Q_j` is the probability that candidate :math:`j` was sampled (``log_q``, the same
    shape as the scores); subtracting its log corrects the sampling bias, so that the sampled
    softmax approximates the full softmax over the catalogue. In in-batch training the
    positives of the other rows are the negatives and :math:`Q_j` is the frequency of item
    :math:`j` in the training stream (:func:`in_batch_scores` builds the lists); popular items
    are then not over-penalised.
    The correction is applied to every candidate, the positive included (as in the paper).
    ``log_q=None`` means uniform sampling: no correction (a constant shift changes nothing).
    ``log_q`` is data, not a hyper-parameter: pass it on each call (a module takes it in
    ``forward``). Several positives per list weigh the cross-entropy by their labels, as in
    :func:`~rankloss.functional.softmax_ce_loss`; per-item weights multiply each item's term.
    Labels must be >= 0; a list whose labels sum to 0 has nothing to learn from. The per-list
    value is the cross-entropy (a sum over the list's items); ``"mean"`` averages over lists.
    Cost: :math:`O(n)` per list.

    Args:
        scores: ``[..., n]`` scores (e.g. dot products of a query and item tower).
        labels: ``[..., n]`` >= 0: positives > 0, negatives 0.
        mask: ``[..., n]`` bool, True = a real candidate.
        log_q: ``[..., n]`` log sampling probability of each candidate (finite, <= 0 at real
            positions; padding may hold anything), or ``None``.
        weights: per list ``[...]`` or per item ``[..., n]``.
        reduction: ``"mean"``, ``"sum"`` or ``"none"``.
        temperature: :math:`\tau > 0`, divides the scores before the correction.

    Returns:
        A scalar, or ``[...]`` with ``reduction="none"``.

    Reference: Yi et al., "Sampling-Bias-Corrected Neural Modeling for Large Corpus Item
    Recommendations", RecSys 2019; Bengio and Senecal, "Adaptive Importance Sampling to
    Accelerate Training of a Neural Probabilistic Language Model", IEEE TNN 2008.
    """
    where = "sampled_softmax_loss"
    temperature = params.positive(where, "temperature", temperature)
    batch = check_lists(scores, labels, mask, weights, where=where, reduction=reduction)
    correction = None if log_q is None else _check_log_q(log_q, scores, batch, where)
    _check_nonnegative_labels(batch, where)
    logits = batch.scores / temperature
    if correction is not None:
        logits = logits - correction
    total = batch.labels.sum(-1)
    valid = total > 0
    target = batch.labels / torch.where(valid, total, torch.ones_like(total)).unsqueeze(-1)
    terms = target * _masked_log_softmax(logits, batch.mask)
    if batch.item_weights is not None:
        terms = terms * batch.item_weights
    return reduce_lists(-terms.sum(-1), valid, batch, reduction)


def _positives_and_negatives(batch: ListBatch, where: str) -> tuple[Tensor, Tensor]:
    _check_nonnegative_labels(batch, where)
    positive = batch.mask & (batch.labels > 0)
    return positive, batch.mask & ~positive


def _gather_positives(batch: ListBatch, positive: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """``[B, P]`` scores, flags and weights of each list's positives (``P`` = the most any list
    has), so that a positive-against-negatives term costs :math:`O(Pn)`, not :math:`O(n^2)`."""
    count = int(positive.sum(-1).max()) if positive.numel() else 0
    order = torch.argsort((~positive).to(torch.int8), dim=-1, stable=True)[:, :count]
    scores = batch.scores.gather(-1, order)
    real = positive.gather(-1, order)
    if batch.item_weights is None:
        w = real.to(scores.dtype)
    else:
        w = torch.where(real, batch.item_weights.gather(-1, order), scores.new_zeros(()))
    return scores, real, w


def _mean_over_positives(terms: Tensor, real: Tensor, w: Tensor) -> Tensor:
    """``[B]``: :math:`\\sum_i w_i t_i / |P|` over each list's positives (weights do not change
    the normaliser)."""
    count = real.sum(-1).clamp(min=1).to(terms.dtype)
    return torch.where(real, w * terms, terms.new_zeros(())).sum(-1) / count


def bpr_max_loss(
    scores: Tensor,
    labels: Tensor,
    mask: Tensor | None = None,
    *,
    weights: Tensor | None = None,
    reduction: Reduction = "mean",
    regularization: float = 1.0,
) -> Tensor:
    r"""BPR-max (GRU4Rec): each positive against a softmax-weighted mix of the negatives.

    .. math::
        \ell_i = -\log \sum_{j \in N} p_j\, \sigma(s_i - s_j)
            + \lambda \sum_{j \in N} p_j\, s_j^2, \qquad
        p_j = \frac{e^{s_j}}{\sum_{k \in N} e^{s_k}}

    over the list's negatives :math:`N` (label 0). The softmax puts the weight on the highest
    scored negatives, so the gradient does not vanish as the many easy negatives of a large
    sample are ranked correctly. :math:`\lambda` is ``regularization``, the paper's score
    regularisation, which keeps the negatives' scores from drifting (GRU4Rec's ``bpreg``,
    1.0 by default there too). Computed in log space
    (:math:`\log \sum_j e^{\log p_j + \log \sigma(s_i - s_j)}`), so it stays finite for any
    finite scores. The per-list value is the mean of :math:`w_i \ell_i` over the positives
    :math:`i` (label > 0; :math:`w_i` their per-item weights); a list without a positive or
    without a negative counts as 0 and is left out of the mean. Cost: :math:`O(Pn)` time and
    memory per list (:math:`P` positives; one positive is the usual case).

    Reference: Hidasi and Karatzoglou, "Recurrent Neural Networks with Top-k Gains for
    Session-based Recommendations", CIKM 2018.
    """
    where = "bpr_max_loss"
    regularization = params.nonnegative(where, "regularization", regularization)
    batch = check_lists(scores, labels, mask, weights, where=where, reduction=reduction)
    positive, negative = _positives_and_negatives(batch, where)
    log_p = _masked_log_softmax(batch.scores, negative)  # [B, n]
    pos_scores, real, w = _gather_positives(batch, positive)  # [B, P]
    inner = log_p.unsqueeze(-2) + F.logsigmoid(
        pos_scores.unsqueeze(-1) - batch.scores.unsqueeze(-2)
    )
    inner = masked_logits(inner, negative.unsqueeze(-2))
    ranking = -torch.logsumexp(inner, dim=-1)  # [B, P]
    penalty = (torch.exp(log_p) * negative * batch.scores.square()).sum(-1, keepdim=True)
    per_list = _mean_over_positives(ranking + regularization * penalty, real, w)
    valid = positive.any(-1) & negative.any(-1)
    return reduce_lists(per_list, valid, batch, reduction)


def top1_max_loss(
    scores: Tensor,
    labels: Tensor,
    mask: Tensor | None = None,
    *,
    weights: Tensor | None = None,
    reduction: Reduction = "mean",
    regularization: float = 1.0,
) -> Tensor:
    r"""TOP1-max (GRU4Rec): TOP1 against a softmax-weighted mix of the negatives.

    .. math::
        \ell_i = \sum_{j \in N} p_j \bigl(\sigma(s_j - s_i) + \lambda\, \sigma(s_j^2)\bigr),
        \qquad p_j = \frac{e^{s_j}}{\sum_{k \in N} e^{s_k}}

    over the list's negatives :math:`N` (label 0). :math:`\lambda` is ``regularization``, the
    weight of TOP1's score regularisation :math:`\sigma(s_j^2)`, which pushes the negatives'
    scores to 0; the paper fixes it at 1 (the default). The per-list value is the mean of
    :math:`w_i \ell_i` over the positives :math:`i` (label > 0; :math:`w_i` their per-item
    weights); a list without a positive or without a negative counts as 0 and is left out of
    the mean. Cost: :math:`O(Pn)` time and memory per list (:math:`P` positives).

    Reference: Hidasi and Karatzoglou, "Recurrent Neural Networks with Top-k Gains for
    Session-based Recommendations", CIKM 2018.
    """
    where = "top1_max_loss"
    regularization = params.nonnegative(where, "regularization", regularization)
    batch = check_lists(scores, labels, mask, weights, where=where, reduction=reduction)
    positive, negative = _positives_and_negatives(batch, where)
    p = torch.exp(_masked_log_softmax(batch.scores, negative)) * negative  # [B, n]
    pos_scores, real, w = _gather_positives(batch, positive)  # [B, P]
    ranking = torch.sigmoid(batch.scores.unsqueeze(-2) - pos_scores.unsqueeze(-1))  # [B, P, n]
    ranking = (p.unsqueeze(-2) * ranking).sum(-1)
    penalty = (p * torch.sigmoid(batch.scores.square())).sum(-1, keepdim=True)
    per_list = _mean_over_positives(ranking + regularization * penalty, real, w)
    valid = positive.any(-1) & negative.any(-1)
    return reduce_lists(per_list, valid, batch, reduction)


def _sampling_rate(
    where: str,
    sampling_rate: float | None,
    num_negatives: int | None,
    num_items: int | None,
) -> float:
    """:math:`\\alpha` from ``sampling_rate``, or ``num_negatives / (num_items - 1)``; exactly
    one of the two forms must be given (``TypeError`` otherwise)."""
    counts = num_negatives is not None or num_items is not None
    if sampling_rate is not None and counts:
        raise TypeError(
            f"{where}: pass sampling_rate or num_negatives and num_items, not both "
            f"(got sampling_rate={sampling_rate!r}, num_negatives={num_negatives!r}, "
            f"num_items={num_items!r})"
        )
    if sampling_rate is not None:
        alpha = params.number(where, "sampling_rate", sampling_rate)
        if not 0.0 < alpha <= 1.0:
            raise ValueError(f"{where}: sampling_rate must be in (0, 1], got {sampling_rate!r}")
        return alpha
    if num_negatives is None or num_items is None:
        raise TypeError(
            f"{where} needs the sampling rate: pass sampling_rate=alpha (0 < alpha <= 1), or "
            "num_negatives=k and num_items=I (alpha = k / (I - 1)); for example "
            "num_negatives=256, num_items=10000"
        )
    k = params.positive_int(where, "num_negatives", num_negatives)
    items = params.positive_int(where, "num_items", num_items)
    if items < 2 or k > items - 1:
        raise ValueError(
            f"{where}: num_negatives must be <= num_items - 1 (a user's negatives are the other "
            f"items), got num_negatives={k}, num_items={items}"
        )
    return k / (items - 1)


def gbce_beta(
    *,
    sampling_rate: float | None = None,
    num_negatives: int | None = None,
    num_items: int | None = None,
    calibration: float = 0.75,
) -> float:
    r"""gBCE's exponent :math:`\beta = \alpha\,(t\,(1 - 1/\alpha) + 1/\alpha) = 1 - t\,(1 -
    \alpha)` for the sampling rate :math:`\alpha` and the calibration :math:`t`.

    :math:`\alpha` is ``sampling_rate``, or ``num_negatives / (num_items - 1)`` (negatives
    sampled per positive over the negatives there are). :math:`t = 0` gives :math:`\beta = 1`
    (plain binary cross-entropy); :math:`t = 1` gives :math:`\beta = \alpha`, fully calibrated.

    Args:
        sampling_rate: :math:`\alpha \in (0, 1]`.
        num_negatives: :math:`k`, negatives sampled per positive (with ``num_items``).
        num_items: the catalogue size :math:`|I|`.
        calibration: :math:`t \in [0, 1]`.

    Returns:
        :math:`\beta \in (0, 1]`.

    Reference: Petrov and Macdonald, "gSASRec: Reducing Overconfidence in Sequential
    Recommendation Trained with Negative Sampling", RecSys 2023.

    >>> round(gbce_beta(num_negatives=256, num_items=10_001, calibration=0.75), 4)
    0.2692
    """
    return _beta("gbce_beta", sampling_rate, num_negatives, num_items, calibration)


def _beta(
    where: str,
    sampling_rate: float | None,
    num_negatives: int | None,
    num_items: int | None,
    calibration: float,
) -> float:
    alpha = _sampling_rate(where, sampling_rate, num_negatives, num_items)
    t = params.in_range(where, "calibration", calibration, 0.0, 1.0)
    return 1.0 - t * (1.0 - alpha)


def gbce_loss(
    scores: Tensor,
    labels: Tensor,
    mask: Tensor | None = None,
    *,
    weights: Tensor | None = None,
    reduction: Reduction = "mean",
    sampling_rate: float | None = None,
    num_negatives: int | None = None,
    num_items: int | None = None,
    calibration: float = 0.75,
) -> Tensor:
    r"""gBCE (gSASRec): binary cross-entropy with the positive's probability raised to
    :math:`\beta`, calibrated for negative sampling.

    .. math::
        \ell = -\frac{1}{|P|} \sum_{i \in P} \log \sigma(s_i)^{\beta}
            - \sum_{j \in N} \log\bigl(1 - \sigma(s_j)\bigr), \qquad
        \beta = \alpha\Bigl(t\bigl(1 - \tfrac{1}{\alpha}\bigr) + \tfrac{1}{\alpha}\Bigr)

    With :math:`k` negatives sampled out of :math:`|I| - 1`, plain BCE (:math:`\beta = 1`)
    learns scores whose sigmoid overestimates the probability of a positive (overconfidence);
    :math:`\beta < 1` undoes it. The sampling rate :math:`\alpha` is an explicit input: either
    ``sampling_rate``, or ``num_negatives`` and ``num_items`` (:math:`\alpha = k / (|I| -
    1)`); one of the two is required (``TypeError`` otherwise). :math:`t` is
    ``calibration`` (the paper recommends 0.75; :math:`t = 0` is plain BCE). See
    :func:`gbce_beta`. Computed as :math:`\beta\, \mathrm{softplus}(-s_i) +
    \mathrm{softplus}(s_j)`, finite for any finite score.

    With several positives (label > 0) the positive term is their mean (each positive with the
    same negatives); per-item weights multiply each item's term. The negative term is a sum over
    the negatives, as in the paper (the authors' code averages over the :math:`k + 1` logits,
    a constant factor for a fixed :math:`k`). A list without a positive counts as 0 and is
    left out of the mean. Cost: :math:`O(n)` per list.

    Reference: Petrov and Macdonald, "gSASRec: Reducing Overconfidence in Sequential
    Recommendation Trained with Negative Sampling", RecSys 2023.
    """
    where = "gbce_loss"
    beta = _beta(where, sampling_rate, num_negatives, num_items, calibration)
    batch = check_lists(scores, labels, mask, weights, where=where, reduction=reduction)
    positive, negative = _positives_and_negatives(batch, where)
    zero = batch.scores.new_zeros(())
    pos_terms = torch.where(positive, beta * F.softplus(-batch.scores), zero)
    neg_terms = torch.where(negative, F.softplus(batch.scores), zero)
    if batch.item_weights is not None:
        pos_terms, neg_terms = pos_terms * batch.item_weights, neg_terms * batch.item_weights
    count = positive.sum(-1).clamp(min=1).to(batch.scores.dtype)
    per_list = pos_terms.sum(-1) / count + neg_terms.sum(-1)
    return reduce_lists(per_list, positive.any(-1), batch, reduction)


def ccl_loss(
    scores: Tensor,
    labels: Tensor,
    mask: Tensor | None = None,
    *,
    weights: Tensor | None = None,
    reduction: Reduction = "mean",
    margin: float = 0.5,
    negative_weight: float = 10.0,
) -> Tensor:
    r"""Cosine contrastive loss (SimpleX): pull positives to cosine 1, push negatives below a
    margin.

    .. math::
        \ell = \frac{1}{|P|} \sum_{i \in P} \max(0, 1 - s_i)
            + \frac{w}{|N|} \sum_{j \in N} \max(0, s_j - m)

    The scores are cosine similarities (:func:`in_batch_scores` with
    ``similarity="cosine"``, or normalised towers). :math:`m` is ``margin`` (in cosine units,
    in :math:`[-1, 1]`): only negatives more similar than :math:`m` are pushed, which filters
    the many easy ones of a large sample. :math:`w` is ``negative_weight``, the balance of the
    negatives' mean against the positives'. :math:`\max(0, 1 - s_i)` equals the paper's
    :math:`1 - s_i` for cosines and stops rewarding a score above 1 when the scores are not
    cosines. Defaults are RecBole's SimpleX defaults (:math:`m = 0.5`, :math:`w = 10`); the
    paper tunes both per data set.

    Positives have label > 0, negatives label 0; per-item weights multiply each item's term,
    and the means divide by the numbers of real positives :math:`|P|` and negatives
    :math:`|N|` (not by the padding width). A list without a positive counts as 0 and is left
    out of the mean; one without a negative has only the positive term. Cost: :math:`O(n)`
    per list.

    Reference: Mao et al., "SimpleX: A Simple and Strong Baseline for Collaborative
    Filtering", CIKM 2021.
    """
    where = "ccl_loss"
    margin = params.in_range(where, "margin", margin, -1.0, 1.0)
    negative_weight = params.nonnegative(where, "negative_weight", negative_weight)
    batch = check_lists(scores, labels, mask, weights, where=where, reduction=reduction)
    positive, negative = _positives_and_negatives(batch, where)
    zero = batch.scores.new_zeros(())
    pos_terms = torch.where(positive, torch.relu(1.0 - batch.scores), zero)
    neg_terms = torch.where(negative, torch.relu(batch.scores - margin), zero)
    if batch.item_weights is not None:
        pos_terms, neg_terms = pos_terms * batch.item_weights, neg_terms * batch.item_weights
    dtype = batch.scores.dtype
    pos_count = positive.sum(-1).clamp(min=1).to(dtype)
    neg_count = negative.sum(-1).clamp(min=1).to(dtype)
    per_list = pos_terms.sum(-1) / pos_count + negative_weight * neg_terms.sum(-1) / neg_count
    return reduce_lists(per_list, positive.any(-1), batch, reduction)


def in_batch_scores(
    queries: Tensor,
    items: Tensor,
    item_ids: Tensor,
    log_q: Tensor | None = None,
    *,
    similarity: Similarity = "dot",
) -> tuple[Tensor, Tensor, Tensor, Tensor | None]:
    r"""The lists of in-batch training: query :math:`b` against every item of the batch.

    .. math:: S_{bj} = \mathrm{sim}(q_b, v_j), \quad Y_{bj} = [b = j], \quad
        M_{bj} = [b = j \lor \mathrm{id}_j \ne \mathrm{id}_b]

    Row :math:`b` is one list: its positive is item :math:`b` (the diagonal) and the other
    rows' items are its negatives, except the copies of its own positive (same item id, off
    the diagonal), which are masked out (neither a positive nor a negative: a popular item
    appears several times in a batch and must not be pushed away from a query it answers).
    Any list loss can then be trained in-batch, e.g.
    ``sampled_softmax_loss(*in_batch_scores(q, v, ids, log_q))``.

    Args:
        queries: ``[B, d]`` query (user) tower outputs.
        items: ``[B, d]`` item tower outputs; row :math:`b` is query :math:`b`'s positive.
        item_ids: ``[B]`` integer id of each item (duplicates are found by id).
        log_q: ``[B]`` log probability that each item is drawn into a batch (e.g. the log of
            its frequency in the training stream), or ``None``.
        similarity: ``"dot"`` (default), ``"cosine"`` (for :func:`ccl_loss`),
            ``"neg_euclidean"`` or ``"neg_sq_euclidean"``.

    Returns:
        ``(scores [B, B], labels [B, B], mask [B, B], log_q [B, B] or None)``: labels are the
        identity (in the scores' dtype), ``log_q[b, j]`` is item :math:`j`'s log probability.

    Raises:
        ValueError: for embeddings that are not ``[B, d]`` of one ``B`` and ``d``, non-finite
            embeddings, ``item_ids`` that are not ``[B]`` integers, or a ``log_q`` that is not
            ``[B]`` floating point, finite and ``<= 0``.

    Cost: one ``[B, d] x [d, B]`` product, :math:`O(B^2 d)` time, :math:`O(B^2)` memory.

    Reference: Yi et al., "Sampling-Bias-Corrected Neural Modeling for Large Corpus Item
    Recommendations", RecSys 2019.
    """
    where = "in_batch_scores"
    queries = check_embeddings(queries, "queries", where)
    items = check_embeddings(items, "items", where)
    if items.shape != queries.shape:
        raise ValueError(
            f"{where}: items has shape {shape_str(items)} but queries has shape "
            f"{shape_str(queries)} (item b is the positive of query b)"
        )
    b = queries.shape[0]
    if (
        not isinstance(item_ids, Tensor)
        or item_ids.dtype.is_floating_point
        or item_ids.is_complex()
    ):
        raise ValueError(f"{where}: item_ids must be an integer tensor of shape [{b}]")
    if item_ids.shape != (b,):
        raise ValueError(f"{where}: item_ids has shape {shape_str(item_ids)}; expected [{b}]")
    values = None
    if log_q is not None:
        if not isinstance(log_q, Tensor) or log_q.shape != (b,):
            shown = shape_str(log_q) if isinstance(log_q, Tensor) else type(log_q).__name__
            raise ValueError(f"{where}: log_q has shape {shown}; expected [{b}], one per item")
        if not log_q.dtype.is_floating_point:
            raise ValueError(
                f"{where}: log_q must be floating point (log probabilities), got dtype "
                f"{log_q.dtype}"
            )
        values = log_q.to(queries.device, queries.dtype)
        everything = torch.ones(b, dtype=torch.bool, device=queries.device)
        _refuse_bad_log_q(values.detach(), everything, log_q.shape, where)
    scores = pairwise_similarity(queries, items, kind=similarity)
    item_ids = item_ids.to(scores.device)
    diagonal = torch.eye(b, dtype=torch.bool, device=scores.device)
    mask = diagonal | (item_ids.unsqueeze(-1) != item_ids.unsqueeze(0))
    labels = diagonal.to(scores.dtype)
    matrix = None if values is None else values.to(scores.dtype).unsqueeze(0).expand(b, b)
    return scores, labels, mask, matrix

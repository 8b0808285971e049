"""Ranking metrics on padded batches: one value per list, no Python loop over lists.

Every metric is ``name(scores, labels, mask=None, *, k=None, ...)`` on ``[..., n]`` tensors
(see ``docs/conventions.md``) and returns ``[...]``: one value per list. The conventions that
make libraries disagree are explicit options, documented in ``docs/metrics.md``:

* ``gain`` (DCG, NDCG): ``"linear"`` (:math:`y`, the default, as trec_eval, ranx, scikit-learn
  and torchmetrics) or ``"exp2"`` (:math:`2^y - 1`, Burges et al. 2005). By name, ``ndcg@k``
  is the linear gain and ``ndcg_burges@k`` the exp2 gain (:mod:`rankloss.metrics.names`).
* ``ties``: how items with equal scores are ordered: ``"average"`` (default; the expected
  value over every order of the tied items, McSherry and Najork 2008), ``"pessimistic"``
  (relevant items last), ``"optimistic"`` (relevant items first) or ``"index"`` (input order).
* ``empty``: the value of a list with nothing relevant in it: ``"skip"`` (default; NaN, which
  the averages of :mod:`rankloss.metrics` leave out), ``"zero"`` or ``"one"``.
* ``relevance_threshold``: for binary metrics an item is relevant when
  ``label >= relevance_threshold`` (default 1, trec_eval's ``-l 1``). This is the one rule of
  rankloss for a threshold on labels: a label *at* the threshold is relevant.

Vocabulary: ``recall@k`` is always the fraction of a list's relevant items found in its top
``k``; ``hit@k`` (:func:`hit_rate`) is 1 when at least one is (the "Recall@K" of metric-learning
papers). The gains, discounts and ideal DCG come from :mod:`rankloss._core.ranking`, the one
implementation the losses use too.

Metrics are not differentiable: inputs are detached.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from rankloss._core import params
from rankloss._core.ranking import (
    GAINS,
    dcg_at_k,
    gain_shift,
    ideal_dcg,
    pair_mask,
    position_discounts,
    ranks_from_scores,
)
from rankloss._core.ranking import gain as gain_values
from rankloss._core.validation import ListBatch, check_choice, check_lists

__all__ = [
    "TIES",
    "EMPTY",
    "dcg",
    "ndcg",
    "average_precision",
    "reciprocal_rank",
    "err",
    "precision",
    "recall",
    "r_precision",
    "hit_rate",
    "ordered_pair_accuracy",
]

TIES = ("average", "pessimistic", "optimistic", "index")
EMPTY = ("skip", "zero", "one")


# --------------------------------------------------------------------------------------------
# Ranking a batch once, with tie groups
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Ranked:
    """Lists sorted by descending score, the padding last.

    Attributes:
        labels: ``[B, n]`` labels in rank order (0 at padding).
        mask: ``[B, n]`` bool in rank order.
        start: ``[B, n]`` 0-based position where the tie group of each position starts, or
            ``None`` when every position is its own group (ties other than ``"average"``).
        end: ``[B, n]`` exclusive end of the tie group, or ``None``.
        batch_shape: the caller's ``[...]``.
    """

    labels: Tensor
    mask: Tensor
    start: Tensor | None
    end: Tensor | None
    batch_shape: torch.Size

    @property
    def num_items(self) -> int:
        return self.labels.shape[-1]

    def positions(self) -> Tensor:
        """``[n]`` 0-based positions."""
        return torch.arange(self.num_items, device=self.labels.device)

    def groups(self) -> tuple[Tensor, Tensor] | None:
        """``(start, end)`` of the tie groups, or ``None`` when each position is its own."""
        if self.start is None or self.end is None:
            return None
        return self.start, self.end


def _check_options(
    where: str,
    k: object,
    *,
    ties: str | None = None,
    empty: str | None = None,
    gain: str | None = None,
) -> int | None:
    """Check a metric's arguments (``"<where>: <name> must be ..., got ..."``); returns ``k``.

    A value of the wrong type is a ``TypeError``, one out of range a ``ValueError``.
    """
    cut = params.cutoff(where, "k", k)
    if ties is not None:
        check_choice("ties", ties, TIES, where)
    if empty is not None:
        check_choice("empty", empty, EMPTY, where)
    if gain is not None:
        check_choice("gain", gain, GAINS, where)
    return cut


def _threshold(where: str, relevance_threshold: object) -> float:
    """A relevance threshold: any real number; ``label >= relevance_threshold`` is relevant."""
    return params.number(where, "relevance_threshold", relevance_threshold)


def rank_lists(scores: Tensor, labels: Tensor, mask: Tensor, ties: str) -> Ranked:
    """Sort validated ``[B, n]`` lists by descending score and find tie groups.

    ``"index"`` keeps the input order among equal scores, ``"pessimistic"`` puts lower labels
    first, ``"optimistic"`` higher labels first; ``"average"`` records the tie groups so that
    each metric can take the expectation over their orders.
    """
    check_choice("ties", ties, TIES)
    key = _key(scores, mask)
    if ties in ("pessimistic", "optimistic"):
        first = torch.sort(labels, dim=-1, descending=ties == "optimistic", stable=True).indices
        second = torch.sort(key.gather(-1, first), dim=-1, descending=True, stable=True).indices
        order = first.gather(-1, second)
    else:
        order = torch.sort(key, dim=-1, descending=True, stable=True).indices
    sorted_labels = labels.gather(-1, order)
    sorted_mask = mask.gather(-1, order)
    start = end = None
    if ties == "average":
        sorted_key = key.gather(-1, order)
        n = scores.shape[-1]
        pos = torch.arange(n, device=scores.device).expand_as(order)
        change = sorted_key[..., 1:] != sorted_key[..., :-1]
        # One True a list (not change[..., :1], which is 0 wide when n = 1).
        edge = change.new_ones(change.shape[:-1] + (1,))
        starts_here = torch.cat([edge, change], dim=-1)
        ends_here = torch.cat([change, edge], dim=-1)
        start = torch.where(starts_here, pos, torch.zeros_like(pos)).cummax(-1).values
        end_marks = torch.where(ends_here, pos + 1, torch.full_like(pos, n))
        end = end_marks.flip(-1).cummin(-1).values.flip(-1)
    return Ranked(sorted_labels, sorted_mask, start, end, torch.Size())


def _key(scores: Tensor, mask: Tensor) -> Tensor:
    # Real items are finite or +inf; padding is -inf, so it never ties with a real item.
    lowest = torch.finfo(scores.dtype).min
    return torch.where(mask, scores.clamp(min=lowest), -math.inf)


def _run(
    scores: Tensor,
    labels: Tensor,
    mask: Tensor | None,
    ties: str,
    where: str,
    k: int | None,
    body: Callable[[ListBatch, Ranked], Tensor],
    truncate: bool = True,
) -> tuple[ListBatch, Tensor]:
    """Validate, rank, and compute ``body(batch, ranked) -> [B]``.

    With a cut-off ``k`` much smaller than the lists, only the top ``k`` is ranked, by
    ``topk``: where the ``k + 1`` best scores of a list are distinct, the order of its top
    ``k`` is the same for every ``ties`` option and each item is its own tie group. The few
    lists with a tie there are ranked in full and computed apart.
    """
    check_choice("ties", ties, TIES)
    batch = check_lists(scores.detach(), labels.detach(), mask, where=where)
    if truncate and k is not None and 4 * k <= batch.num_items:
        values, index = torch.topk(_key(batch.scores, batch.mask), k + 1, dim=-1)
        tied = ((values[..., 1:] == values[..., :-1]) & (values[..., 1:] > -math.inf)).any(-1)
        index = index[..., :k]
        top = Ranked(
            batch.labels.gather(-1, index),
            batch.mask.gather(-1, index),
            None,
            None,
            batch.batch_shape,
        )
        out = body(batch, top)
        if bool(tied.any()):
            rows = tied.nonzero().squeeze(-1)
            sub = ListBatch(
                batch.scores[rows],
                batch.labels[rows],
                batch.mask[rows],
                None,
                None,
                torch.Size([len(rows)]),
            )
            ranked = rank_lists(sub.scores, sub.labels, sub.mask, ties)
            out = out.index_put((rows,), body(sub, ranked))
        return batch, out
    ranked = rank_lists(batch.scores, batch.labels, batch.mask, ties)
    return batch, body(batch, ranked)


def _relevant(batch: ListBatch, relevance_threshold: float) -> Tensor:
    """``[B]`` number of relevant real items (order-free, so it works on truncated rankings)."""
    return (batch.mask & (batch.labels >= relevance_threshold)).sum(-1).to(batch.scores.dtype)


def _prefix(values: Tensor) -> Tensor:
    """``[B, n + 1]`` cumulative sums with a leading 0."""
    return torch.nn.functional.pad(values.cumsum(-1), (1, 0))


def _group_mean(ranked: Ranked, weights: Tensor) -> Tensor:
    """Replace each position's weight by the mean weight over its tie group's positions.

    An item of a tie group of size ``g`` occupies each of the group's positions with
    probability ``1 / g``, so a metric linear in position weights gets its expected value.
    """
    groups = ranked.groups()
    if groups is None:
        return weights
    start, end = groups
    weights = weights.expand(ranked.labels.shape)
    prefix = _prefix(weights)
    total = prefix.gather(-1, end) - prefix.gather(-1, start)
    return total / (end - start).to(weights.dtype)


def _cutoff(ranked: Ranked, k: int | Tensor | None, dtype: torch.dtype) -> Tensor:
    """``[B, n]`` or ``[n]`` 1.0 at positions inside the cut-off, else 0."""
    pos = ranked.positions()
    if k is None:
        return ranked.mask.to(dtype)
    if isinstance(k, Tensor):
        return (pos < k.unsqueeze(-1)).to(dtype)
    return (pos < k).to(dtype)


def _finish(values: Tensor, has_relevant: Tensor, empty: str, batch: ListBatch) -> Tensor:
    check_choice("empty", empty, EMPTY)
    fill = {"skip": math.nan, "zero": 0.0, "one": 1.0}[empty]
    values = torch.where(has_relevant, values, torch.full_like(values, fill))
    return values.reshape(batch.batch_shape)


def _binary(ranked: Ranked, relevance_threshold: float) -> Tensor:
    return (ranked.mask & (ranked.labels >= relevance_threshold)).to(ranked.labels.dtype)


def _safe_div(num: Tensor, den: Tensor) -> Tensor:
    return num / torch.where(den > 0, den, torch.ones_like(den))


def _log_comb(n: Tensor, r: Tensor) -> Tensor:
    """log C(n, r) for float tensors with ``0 <= r <= n``."""
    return torch.lgamma(n + 1) - torch.lgamma(r + 1) - torch.lgamma(n - r + 1)


def _ratio_comb(a: Tensor, m: Tensor, b: Tensor) -> Tensor:
    """C(a, m) / C(b, m) for ``a <= b``; 0 where ``m > a``."""
    ok = m <= a
    a_safe = torch.where(ok, a, m)
    value = torch.exp(_log_comb(a_safe, m) - _log_comb(b, m))
    return torch.where(ok, value, torch.zeros_like(value))


# --------------------------------------------------------------------------------------------
# Kernels on ranked lists (used by the functions below and by trec-style evaluation)
# --------------------------------------------------------------------------------------------


def dcg_ranked(
    ranked: Ranked, k: int | None, gain_kind: str, shift: Tensor | None = None
) -> Tensor:
    """``[B]`` DCG@k of ranked lists (a tie group shares the mean discount of its positions).

    ``shift`` (``[B]``, from :func:`~rankloss._core.ranking.gain_shift`) scales each list's
    exp2 gains by :math:`2^{-m}`, so that NDCG stays finite for large labels; the ideal DCG it
    is divided by must use the same shift.
    """
    gains = torch.where(ranked.mask, gain_values(ranked.labels, gain_kind, shift), 0.0)
    if ranked.groups() is None:
        return dcg_at_k(gains, k)
    weights = position_discounts(ranked.num_items, k, dtype=gains.dtype, device=gains.device)
    return (gains * _group_mean(ranked, weights)).sum(-1)


def ndcg_ranked(ranked: Ranked, k: int | None, gain_kind: str, ideal: Tensor) -> Tensor:
    """``[B]`` NDCG@k (NaN-free; 0 where ``ideal <= 0``)."""
    return _safe_div(dcg_ranked(ranked, k, gain_kind), ideal)


def hits_ranked(ranked: Ranked, rel: Tensor, k: int | Tensor | None) -> Tensor:
    """``[B]`` expected number of relevant items within the top ``k``."""
    cut = _cutoff(ranked, k, rel.dtype)
    return (rel * _group_mean(ranked, cut)).sum(-1)


def ap_ranked(ranked: Ranked, rel: Tensor, k: int | None, num_relevant: Tensor) -> Tensor:
    """``[B]`` average precision (over ``num_relevant``) of the top ``k``."""
    dtype = rel.dtype
    pos = ranked.positions().to(dtype)
    groups = ranked.groups()
    if groups is None:
        terms = rel * rel.cumsum(-1) / (pos + 1)
    else:
        # Position j (1-based) of a group at offset s with g items, r of them relevant and c
        # relevant items before it: P(relevant) = r/g and E[#relevant up to j | relevant] =
        # c + 1 + (j - s - 1)(r - 1)/(g - 1).
        start, end = groups
        prefix = _prefix(rel)
        before = prefix.gather(-1, start)
        r = prefix.gather(-1, end) - before
        g = (end - start).to(dtype)
        offset = pos - start.to(dtype)
        share = _safe_div(r - 1, g - 1)
        terms = (r / g) * (before + 1 + offset * share) / (pos + 1)
        terms = terms * ranked.mask.to(dtype)
    terms = terms * _cutoff(ranked, k, dtype)
    return _safe_div(terms.sum(-1), num_relevant)


def rr_ranked(ranked: Ranked, rel: Tensor, k: int | None) -> Tensor:
    """``[B]`` reciprocal rank of the first relevant item within the top ``k`` (0 if none)."""
    dtype = rel.dtype
    pos = ranked.positions().to(dtype)
    cut = _cutoff(ranked, k, dtype)
    groups = ranked.groups()
    if groups is None:
        first = rel * (rel.cumsum(-1) == 1).to(dtype)
        return (first * cut / (pos + 1)).sum(-1)
    # Expected 1/rank: the first relevant item lies in the first group with r > 0 relevant
    # items; it sits at offset j (1-based) of that group with probability C(g-j, r-1)/C(g, r).
    start, end = groups
    prefix = _prefix(rel)
    before = prefix.gather(-1, start)
    r = prefix.gather(-1, end) - before
    g = (end - start).to(dtype)
    j = pos - start.to(dtype) + 1
    in_first = (before == 0) & (r > 0) & ranked.mask
    r_safe = torch.where(in_first, r, torch.ones_like(r))
    # C(g-j, r-1)/C(g, r) = [C(g-j, r-1)/C(g, r-1)] * [C(g, r-1)/C(g, r)]; the second factor
    # is r/(g-r+1), and C(g-j, r-1)/C(g, r-1) is what _ratio_comb gives for the first factor.
    prob = _ratio_comb(g - j, r_safe - 1, g) * r_safe / (g - r_safe + 1)
    prob = torch.where(in_first, prob, torch.zeros_like(prob))
    return (prob * cut / (pos + 1)).sum(-1)


def hit_ranked(ranked: Ranked, rel: Tensor, k: int | None) -> Tensor:
    """``[B]`` probability that a relevant item is within the top ``k``."""
    dtype = rel.dtype
    n = ranked.num_items
    if k is None or k >= n:
        return (rel.sum(-1) > 0).to(dtype)
    top = rel[..., :k]
    groups = ranked.groups()
    if groups is None:
        return (top.sum(-1) > 0).to(dtype)
    # Relevant items in groups that end inside the top k are certain hits; the group that
    # straddles position k has m = k - s of its g places inside; it misses with probability
    # C(g - r, m) / C(g, m).
    start, end = groups
    end_k = end[..., :k]
    certain = ((top > 0) & (end_k <= k)).any(-1)
    prefix = _prefix(rel)
    s = start[..., k - 1 : k]
    e = end[..., k - 1 : k]
    r = (prefix.gather(-1, e) - prefix.gather(-1, s)).squeeze(-1)
    g = (e - s).squeeze(-1).to(dtype)
    m = (k - s).squeeze(-1).to(dtype)
    miss = _ratio_comb(g - r, m, g)
    straddles = (e > k).squeeze(-1)
    prob = torch.where(straddles, 1 - miss, torch.zeros_like(miss))
    return torch.where(certain, torch.ones_like(prob), prob)


def err_ranked(ranked: Ranked, k: int | None, max_label: float | Tensor | None) -> Tensor:
    """``[B]`` expected reciprocal rank (Chapelle et al. 2009) with a cut-off ``k``."""
    labels = ranked.labels
    dtype = labels.dtype
    if labels.shape[-1] == 0:  # lists of no item: no positive label (the caller fills them)
        return labels.new_zeros(labels.shape[:-1])
    if max_label is None:
        max_label = torch.where(ranked.mask, labels, torch.full_like(labels, -math.inf))
        max_label = max_label.amax(-1, keepdim=True).clamp(min=0)
    elif isinstance(max_label, Tensor):
        max_label = max_label.to(dtype).reshape(-1, 1)
    stop = gain_values(labels, "exp2") / torch.exp2(torch.as_tensor(max_label, dtype=dtype))
    stop = torch.where(ranked.mask, stop.clamp(min=0), torch.zeros_like(stop))
    pos = ranked.positions().to(dtype)
    go_on = torch.cumprod(1 - stop, dim=-1)
    reach = torch.nn.functional.pad(go_on[..., :-1], (1, 0), value=1.0)
    terms = reach * stop / (pos + 1) * _cutoff(ranked, k, dtype)
    return terms.sum(-1)


# --------------------------------------------------------------------------------------------
# Public functions
# --------------------------------------------------------------------------------------------


def dcg(
    scores: Tensor,
    labels: Tensor,
    mask: Tensor | None = None,
    *,
    k: int | None = None,
    gain: str = "linear",
    ties: str = "average",
) -> Tensor:
    r"""Discounted cumulative gain at ``k``.

    .. math:: \mathrm{DCG@k} = \sum_{r=1}^{k} \frac{G(y_{\pi(r)})}{\log_2(r + 1)}

    with :math:`G(y) = y` (``gain="linear"``, the metric ``dcg@k``) or :math:`G(y) = 2^y - 1`
    (``"exp2"``, the metric ``dcg_burges@k``).

    Args:
        scores: ``[..., n]`` model scores, higher ranks first.
        labels: ``[..., n]`` graded relevance.
        mask: ``[..., n]`` bool, True marks a real item; ``None`` means all real.
        k: cut-off; ``None`` means the whole list.
        gain: ``"linear"`` (default) or ``"exp2"``.
        ties: ``"average"`` (default), ``"pessimistic"``, ``"optimistic"`` or ``"index"``.

    Returns:
        ``[...]`` one value per list (0 for an all-masked list).

    Example:
        >>> dcg(torch.tensor([3.0, 2.0, 1.0]), torch.tensor([1.0, 0.0, 1.0]))
        tensor(1.5000)
    """
    k = _check_options("dcg", k, ties=ties, gain=gain)
    batch, values = _run(scores, labels, mask, ties, "dcg", k, lambda b, r: dcg_ranked(r, k, gain))
    return values.reshape(batch.batch_shape)


def ndcg(
    scores: Tensor,
    labels: Tensor,
    mask: Tensor | None = None,
    *,
    k: int | None = None,
    gain: str = "linear",
    ties: str = "average",
    empty: str = "skip",
) -> Tensor:
    r"""Normalised DCG at ``k``: DCG@k divided by the DCG@k of the ideal order.

    .. math:: \mathrm{NDCG@k} = \mathrm{DCG@k} / \mathrm{IDCG@k}

    The default ``gain="linear"`` is the metric ``ndcg@k`` of :func:`compute` and
    :func:`evaluate` (trec_eval, ranx, scikit-learn, torchmetrics); ``gain="exp2"`` is
    ``ndcg_burges@k`` (LightGBM, XGBoost, allRank, rax, and the NDCG losses of rankloss).

    A list whose ideal DCG is not positive (no item with a positive gain) is "empty" and gets
    the value chosen by ``empty``: ``"skip"`` (NaN, left out of averages; default), ``"zero"``
    or ``"one"``.

    Args:
        scores, labels, mask, k, gain, ties: as in :func:`dcg`.
        empty: ``"skip"`` (default), ``"zero"`` or ``"one"``.

    Returns:
        ``[...]`` values in ``[0, 1]`` (for non-negative labels) or NaN for skipped lists.

    Example:
        >>> ndcg(torch.tensor([3.0, 2.0, 1.0]), torch.tensor([0.0, 0.0, 1.0]), k=3)
        tensor(0.5000)
    """
    k = _check_options("ndcg", k, ties=ties, empty=empty, gain=gain)

    def scaled_dcg(b: ListBatch, r: Ranked) -> Tensor:
        # DCG and ideal DCG share each list's gain scale 2^-m, so any finite label is finite.
        return dcg_ranked(r, k, gain, gain_shift(b.labels, b.mask, gain))

    batch, values = _run(scores, labels, mask, ties, "ndcg", k, scaled_dcg)
    shift = gain_shift(batch.labels, batch.mask, gain)
    if k is not None and k < batch.num_items:
        # Only the k largest labels enter the ideal DCG@k (the gain grows with the label).
        top = torch.topk(torch.where(batch.mask, batch.labels, -math.inf), k, dim=-1).values
        real = top > -math.inf
        top_gains = gain_values(torch.where(real, top, 0.0), gain, shift)
        ideal = ideal_dcg(torch.where(real, top_gains, 0.0), real, k)
    else:
        gains = torch.where(batch.mask, gain_values(batch.labels, gain, shift), 0.0)
        ideal = ideal_dcg(gains, batch.mask, k)
    return _finish(_safe_div(values, ideal), ideal > 0, empty, batch)


def average_precision(
    scores: Tensor,
    labels: Tensor,
    mask: Tensor | None = None,
    *,
    k: int | None = None,
    relevance_threshold: float = 1.0,
    ties: str = "average",
    empty: str = "skip",
) -> Tensor:
    r"""Average precision at ``k`` (MAP is its mean over lists).

    .. math:: \mathrm{AP@k} = \frac{1}{R} \sum_{r=1}^{k} \mathrm{rel}(r)\, \mathrm{P@r}

    where :math:`R` is the number of relevant items in the list (trec_eval's ``map_cut``
    convention: not :math:`\min(R, k)`).

    Args:
        scores, labels, mask, k, ties: as in :func:`dcg`.
        relevance_threshold: an item is relevant when ``label >= relevance_threshold``.
        empty: value of a list with no relevant item: ``"skip"`` (NaN), ``"zero"``, ``"one"``.

    Example:
        >>> average_precision(torch.tensor([3.0, 2.0, 1.0]), torch.tensor([1.0, 0.0, 1.0]))
        tensor(0.8333)
    """
    where = "average_precision"
    k = _check_options(where, k, ties=ties, empty=empty)
    t = _threshold(where, relevance_threshold)
    batch, values = _run(
        scores,
        labels,
        mask,
        ties,
        where,
        k,
        lambda b, r: ap_ranked(r, _binary(r, t), k, _relevant(b, t)),
    )
    return _finish(values, _relevant(batch, t) > 0, empty, batch)


def reciprocal_rank(
    scores: Tensor,
    labels: Tensor,
    mask: Tensor | None = None,
    *,
    k: int | None = None,
    relevance_threshold: float = 1.0,
    ties: str = "average",
    empty: str = "skip",
) -> Tensor:
    r"""Reciprocal rank of the first relevant item within the top ``k`` (0 if none; MRR is
    its mean).

    .. math:: \mathrm{RR@k} = 1 / \min\{r \le k : \mathrm{rel}(r)\}

    Args: as in :func:`average_precision`.

    Example:
        >>> reciprocal_rank(torch.tensor([3.0, 2.0, 1.0]), torch.tensor([0.0, 1.0, 1.0]))
        tensor(0.5000)
    """
    where = "reciprocal_rank"
    k = _check_options(where, k, ties=ties, empty=empty)
    t = _threshold(where, relevance_threshold)
    batch = check_lists(scores.detach(), labels.detach(), mask, where=where)
    rel = batch.mask & (batch.labels >= t)
    values = _first_relevant_rr(_key(batch.scores, batch.mask), rel, batch.mask, ties, k)
    fill = {"skip": math.nan, "zero": 0.0, "one": 1.0}[empty]
    values = torch.where(rel.any(-1), values, torch.full_like(values, fill))
    return values.reshape(batch.batch_shape)


def _first_relevant_rr(key: Tensor, rel: Tensor, mask: Tensor, ties: str, k: int | None) -> Tensor:
    """Reciprocal rank without sorting: the first relevant item is the best-scored one.

    With ``a`` items scored above it, a tie group of ``g`` items of which ``r`` are relevant
    sits at ranks ``a+1 .. a+g``; the first relevant item's rank follows from ``ties``.
    """
    dtype = key.dtype
    if key.shape[-1] == 0:  # lists of no item: no relevant item (the caller fills them)
        return key.new_zeros(key.shape[:-1])
    best = torch.where(rel, key, torch.full_like(key, -math.inf)).amax(-1, keepdim=True)
    above = (mask & (key > best)).sum(-1).to(dtype)
    tied = mask & (key == best)
    tied_rel = tied & rel
    g = tied.sum(-1).to(dtype)
    r = tied_rel.sum(-1).to(dtype)
    if ties == "average":
        j = torch.arange(1, key.shape[-1] + 1, device=key.device, dtype=dtype)
        g2, r2 = g.unsqueeze(-1), r.clamp(min=1).unsqueeze(-1)
        prob = _ratio_comb(g2 - j, r2 - 1, g2) * r2 / (g2 - r2 + 1)
        prob = torch.where(j <= g2 - r2 + 1, prob, torch.zeros_like(prob))
        rank = above.unsqueeze(-1) + j
        if k is not None:
            prob = torch.where(rank <= k, prob, torch.zeros_like(prob))
        return (prob / rank).sum(-1)
    if ties == "index":
        before = tied & (torch.cumsum(tied_rel.to(torch.int32), -1) == 0)
        rank = above + before.sum(-1).to(dtype) + 1
    elif ties == "pessimistic":
        rank = above + g - r + 1
    else:
        rank = above + 1
    values = 1.0 / rank
    if k is not None:
        values = torch.where(rank <= k, values, torch.zeros_like(values))
    return values


def err(
    scores: Tensor,
    labels: Tensor,
    mask: Tensor | None = None,
    *,
    k: int | None = None,
    max_label: float | None = None,
    ties: str = "pessimistic",
    empty: str = "skip",
) -> Tensor:
    r"""Expected reciprocal rank (Chapelle et al. 2009) at ``k``.

    .. math::
        \mathrm{ERR@k} = \sum_{r=1}^{k} \frac{1}{r} R_r \prod_{i<r} (1 - R_i),
        \qquad R = \frac{2^y - 1}{2^{y_{\max}}}

    Args:
        scores, labels, mask, k: as in :func:`dcg`.
        max_label: :math:`y_{\max}`, the top of the label scale; ``None`` (default) takes the
            largest label of each list. Set it (e.g. 4 for MSLR) to compare across lists.
        ties: ``"pessimistic"`` (default), ``"optimistic"`` or ``"index"``; ``"average"`` is not
            available for ERR (its expectation over tied orders has no cheap closed form).
        empty: value of a list with no positive label: ``"skip"`` (NaN), ``"zero"``, ``"one"``.

    Example:
        >>> err(torch.tensor([2.0, 1.0]), torch.tensor([1.0, 1.0]))
        tensor(0.6250)
    """
    k = _check_options("err", k, ties=ties, empty=empty)
    if ties == "average":
        raise ValueError(
            "err: ties='average' is not supported; use 'pessimistic', 'optimistic' or 'index'"
        )
    if max_label is not None:
        max_label = params.number("err", "max_label", max_label)
    batch, values = _run(
        scores,
        labels,
        mask,
        ties,
        "err",
        k,
        lambda b, r: err_ranked(r, k, max_label),
        truncate=max_label is not None,
    )
    positive = (batch.mask & (batch.labels > 0)).any(-1)
    return _finish(values, positive, empty, batch)


def precision(
    scores: Tensor,
    labels: Tensor,
    mask: Tensor | None = None,
    *,
    k: int | None = None,
    relevance_threshold: float = 1.0,
    ties: str = "average",
    empty: str = "skip",
) -> Tensor:
    r"""Precision at ``k``: the fraction of the top ``k`` places that hold a relevant item.

    .. math:: \mathrm{P@k} = \frac{1}{k} \sum_{r=1}^{k} \mathrm{rel}(r)

    The denominator is ``k`` even when the list is shorter (trec_eval's ``P_k``); with
    ``k=None`` it is the number of real items.

    Args: as in :func:`average_precision`.

    Example:
        >>> precision(torch.tensor([3.0, 2.0, 1.0]), torch.tensor([1.0, 0.0, 1.0]), k=2)
        tensor(0.5000)
    """
    k = _check_options("precision", k, ties=ties, empty=empty)
    t = _threshold("precision", relevance_threshold)

    def body(b: ListBatch, r: Ranked) -> Tensor:
        den = b.mask.sum(-1).to(b.scores.dtype) if k is None else b.scores.new_tensor(float(k))
        return _safe_div(hits_ranked(r, _binary(r, t), k), den)

    batch, values = _run(scores, labels, mask, ties, "precision", k, body)
    return _finish(values, _relevant(batch, t) > 0, empty, batch)


def recall(
    scores: Tensor,
    labels: Tensor,
    mask: Tensor | None = None,
    *,
    k: int | None = None,
    relevance_threshold: float = 1.0,
    ties: str = "average",
    empty: str = "skip",
) -> Tensor:
    r"""Recall at ``k`` (``"recall@k"``): the fraction of the relevant items that are in the
    top ``k``.

    .. math:: \mathrm{R@k} = \frac{1}{R} \sum_{r=1}^{k} \mathrm{rel}(r)

    Not the "Recall@K" of metric-learning papers, which is 1 when *any* relevant item is in
    the top ``k``: that is :func:`hit_rate` (``"hit@k"``). The two agree when a list has one
    relevant item.

    Args: as in :func:`average_precision`.

    Example:
        >>> recall(torch.tensor([3.0, 2.0, 1.0]), torch.tensor([1.0, 0.0, 1.0]), k=2)
        tensor(0.5000)
    """
    k = _check_options("recall", k, ties=ties, empty=empty)
    t = _threshold("recall", relevance_threshold)
    batch, values = _run(
        scores,
        labels,
        mask,
        ties,
        "recall",
        k,
        lambda b, r: _safe_div(hits_ranked(r, _binary(r, t), k), _relevant(b, t)),
    )
    return _finish(values, _relevant(batch, t) > 0, empty, batch)


def r_precision(
    scores: Tensor,
    labels: Tensor,
    mask: Tensor | None = None,
    *,
    k: int | None = None,
    relevance_threshold: float = 1.0,
    ties: str = "average",
    empty: str = "skip",
) -> Tensor:
    r"""R-precision: precision at :math:`R`, the number of relevant items of the list.

    .. math:: \mathrm{RPrec} = \frac{1}{R} \sum_{r=1}^{R} \mathrm{rel}(r)

    ``k`` (if given) caps the cut-off: precision at :math:`\min(R, k)`.

    Args: as in :func:`average_precision`.

    Example:
        >>> r_precision(torch.tensor([3.0, 2.0, 1.0]), torch.tensor([1.0, 0.0, 1.0]))
        tensor(0.5000)
    """
    k = _check_options("r_precision", k, ties=ties, empty=empty)
    t = _threshold("r_precision", relevance_threshold)

    def body(b: ListBatch, r: Ranked) -> Tensor:
        total = _relevant(b, t)
        cut = total if k is None else total.clamp(max=k)
        return _safe_div(hits_ranked(r, _binary(r, t), cut), cut)

    batch, values = _run(scores, labels, mask, ties, "r_precision", k, body)
    return _finish(values, _relevant(batch, t) > 0, empty, batch)


def hit_rate(
    scores: Tensor,
    labels: Tensor,
    mask: Tensor | None = None,
    *,
    k: int | None = None,
    relevance_threshold: float = 1.0,
    ties: str = "average",
    empty: str = "skip",
) -> Tensor:
    r"""Hit rate at ``k`` (``"hit@k"``): 1 if a relevant item is in the top ``k``, else 0.

    .. math:: \mathrm{hit@k} = [\exists r \le k : \mathrm{rel}(r)]

    The "Recall@K" of metric-learning papers; :func:`recall` (``"recall@k"``) is the fraction
    of the relevant items in the top ``k`` instead. With ``ties="average"`` it is the
    probability of a hit over the tied orders.

    Args: as in :func:`average_precision`.

    Example:
        >>> hit_rate(torch.tensor([3.0, 2.0, 1.0]), torch.tensor([0.0, 0.0, 1.0]), k=2)
        tensor(0.)
    """
    k = _check_options("hit_rate", k, ties=ties, empty=empty)
    t = _threshold("hit_rate", relevance_threshold)
    batch, values = _run(
        scores, labels, mask, ties, "hit_rate", k, lambda b, r: hit_ranked(r, _binary(r, t), k)
    )
    return _finish(values, _relevant(batch, t) > 0, empty, batch)


def ordered_pair_accuracy(
    scores: Tensor,
    labels: Tensor,
    mask: Tensor | None = None,
    *,
    k: int | None = None,
    ties: str = "average",
    empty: str = "skip",
) -> Tensor:
    r"""Fraction of pairs with different labels that the scores order correctly.

    .. math::
        \mathrm{OPA} = \frac{\sum_{y_i > y_j} [s_i > s_j]}{|\{(i, j) : y_i > y_j\}|}

    A pair with equal scores counts 1/2 (``"average"``), 0 (``"pessimistic"``), 1
    (``"optimistic"``), or by input order (``"index"``: correct when the more relevant item
    comes first). With ``k``, only pairs with at least one item in the top ``k`` count (the top
    ``k`` of the input-order tie-break). A list with no such pair is "empty".

    Args:
        scores, labels, mask, k: as in :func:`dcg`.
        ties: see above.
        empty: ``"skip"`` (NaN, default), ``"zero"`` or ``"one"``.

    Example:
        >>> ordered_pair_accuracy(torch.tensor([3.0, 2.0, 1.0]), torch.tensor([1.0, 2.0, 0.0]))
        tensor(0.6667)
    """
    where = "ordered_pair_accuracy"
    k = _check_options(where, k, ties=ties, empty=empty)
    batch = check_lists(scores.detach(), labels.detach(), mask, where=where)
    s, y, m = batch.scores, batch.labels, batch.mask
    n = s.shape[-1]
    in_top = None
    if k is not None:
        in_top = ranks_from_scores(s, m) <= k
    tie_value = {"average": 0.5, "pessimistic": 0.0, "optimistic": 1.0, "index": None}[ties]
    index_correct = torch.ones(n, n, dtype=torch.bool, device=s.device).triu(1)
    chunk = max(1, (1 << 22) // max(n * n, 1))
    correct_parts, count_parts = [], []
    for lo in range(0, s.shape[0], chunk):
        sc, yc, mc = s[lo : lo + chunk], y[lo : lo + chunk], m[lo : lo + chunk]
        pairs = pair_mask(yc, mc)
        if in_top is not None:
            top = in_top[lo : lo + chunk]
            pairs = pairs & (top.unsqueeze(-1) | top.unsqueeze(-2))
        diff = sc.unsqueeze(-1) - sc.unsqueeze(-2)
        if tie_value is None:
            tied = index_correct.to(s.dtype)
        else:
            tied = torch.full_like(diff, tie_value)
        value = torch.where(diff > 0, 1.0, torch.where(diff == 0, tied, 0.0))
        correct_parts.append((value * pairs).sum((-1, -2)))
        count_parts.append(pairs.sum((-1, -2)))
    correct = torch.cat(correct_parts)
    count = torch.cat(count_parts).to(s.dtype)
    fill = {"skip": math.nan, "zero": 0.0, "one": 1.0}[empty]
    values = torch.where(count > 0, _safe_div(correct, count), torch.full_like(count, fill))
    return values.reshape(batch.batch_shape)

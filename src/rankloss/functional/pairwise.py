r"""Pairwise ranking losses: a pair term times a pair weight, over a list's pairs.

.. math::
    \ell = \frac{1}{Z} \sum_{(i, j) \in P} w_i\, \lambda_{ij}\, \phi(s_i - s_j)

* the pair term :math:`\phi` (:data:`PAIR_TERMS`): ``"logistic"``
  :math:`\log(1 + e^{-\sigma d})`, ``"hinge"`` :math:`\max(0, m - d)` or
  ``"squared_hinge"`` :math:`\max(0, m - d)^2`;
* the pair weight :math:`\lambda_{ij}` (:mod:`rankloss.functional.lambdaweights`): ``"uniform"``,
  ``"lambdarank"`` (ΔNDCG swap), ``"ndcg_loss1"``, ``"ndcg_loss2"``, ``"ndcg_loss2pp"``,
  ``"label_diff"`` (ARP), or any callable, computed from detached scores (no gradient);
* the pairs :math:`P`: the real items with :math:`y_i > y_j` (tied labels form no pair), or,
  with ``relevance_threshold`` :math:`t`, positives :math:`y_i \ge t` against negatives
  :math:`y_j < t`;
* :math:`w_i` the per-item weight of the more relevant item (1 without per-item weights);
* :math:`Z` the number of pairs (``pair_reduction="mean"``) or 1 (``"sum"``).

:func:`ranknet_loss`, :func:`pairwise_hinge_loss`, :func:`bpr_loss`, :func:`lambdarank_loss` and
:func:`lambdaloss_loss` are presets of :func:`pairwise_loss`. A list with no pair (or, for a
weight normalised by the ideal DCG, no positive ideal DCG) has nothing to learn from: it
counts as 0 and is left out of the mean.

Every term uses the natural logarithm (RankNet's convention). The LambdaLoss paper and allRank
write the logistic term in base 2, which multiplies the loss by the constant
:math:`1/\ln 2`.

Implementations (``impl``, resolved by :func:`rankloss.kernels.dispatch.resolve_impl`):

* ``"torch"``: the direct form, ``[B, n, n]`` pair matrices and autograd; the only one for a
  callable pair weight.
* ``"streaming"``: every named weight and term, over tiles of ``tile_size`` x ``tile_size``
  pairs (default 256) with a closed-form gradient, in pure PyTorch (CPU and GPU); it never
  holds the pair matrix. Same values and gradients as ``"torch"``; first-order gradients only.
* ``"triton"``: a fused kernel (:mod:`rankloss.kernels.pairwise`) for the logistic term with
  the uniform, ``"lambdarank"``, ``"ndcg_loss2"`` and ``"ndcg_loss2pp"`` weights (RankNet, BPR,
  LambdaRank, LambdaLoss), on CUDA tensors.
* ``"auto"`` (default): the kernel on CUDA where it applies, else streaming above
  :data:`CPU_STREAMING_ABOVE` pairs per batch on CPU (faster there) or above
  :data:`rankloss.kernels.dispatch.STREAMING_ABOVE` elsewhere, else the direct form.

Cost: :math:`O(n^2)` time per list. Memory: :math:`O(Bn^2)` with ``"torch"``,
:math:`O(Bn + \text{tile}^2)` with ``"streaming"``, :math:`O(Bn)` with ``"triton"``. ``k``
keeps only pairs that touch the top ``k`` of the current ranking (the top-k rule of
:mod:`rankloss.functional.lambdaweights`); it does not reduce the cost.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from rankloss._core import params
from rankloss._core.ranking import (
    GAINS,
    discount,
    normalised_gains,
    pair_mask,
    ranks_from_scores,
    topk_pair_mask,
)
from rankloss._core.reduce import Reduction, reduce_lists
from rankloss._core.validation import ListBatch, check_lists
from rankloss.functional._streaming import (
    DEFAULT_TILE,
    STREAMING_WEIGHTS,
    PairPlan,
    streaming_pair_sums,
)
from rankloss.functional.lambdaweights import (
    PAIR_WEIGHTS,
    PairContext,
    PairWeight,
    rank_distance_table,
)
from rankloss.kernels.dispatch import IMPLS, STREAMING_ABOVE, Impl, resolve_impl

__all__ = [
    "pairwise_loss",
    "ranknet_loss",
    "pairwise_hinge_loss",
    "lambdarank_loss",
    "lambdaloss_loss",
    "bpr_loss",
    "PAIR_TERMS",
    "LAMBDALOSS_WEIGHTINGS",
]

GainKind = Literal["exp2", "linear"]
PairTerm = Literal["logistic", "hinge", "squared_hinge"]


def _logistic(diff: Tensor, sigma: float, margin: float) -> Tensor:
    return F.softplus(-sigma * diff)


def _hinge(diff: Tensor, sigma: float, margin: float) -> Tensor:
    return torch.relu(margin - diff)


def _squared_hinge(diff: Tensor, sigma: float, margin: float) -> Tensor:
    # Smooth at the margin (the L2-SVM form of RankSVM; Chapelle and Keerthi 2010).
    return torch.relu(margin - diff).square()


#: Pair terms :math:`\phi(d)` of a score difference :math:`d = s_i - s_j`, by name.
PAIR_TERMS: dict[str, Callable[[Tensor, float, float], Tensor]] = {
    "logistic": _logistic,
    "hinge": _hinge,
    "squared_hinge": _squared_hinge,
}

#: The pair weights :func:`lambdaloss_loss` offers as ``weighting``.
LAMBDALOSS_WEIGHTINGS = ("ndcg_loss2pp", "ndcg_loss2", "ndcg_loss1", "lambdarank", "label_diff")

#: On CPU, ``impl="auto"`` streams above this many pairs per batch (``B * n * n``).
CPU_STREAMING_ABOVE = 1 << 20

#: The pair weights the Triton kernel computes (with the logistic term); others fall back.
TRITON_WEIGHTS = ("uniform", "lambdarank", "ndcg_loss2", "ndcg_loss2pp")


def _pair_weight(
    weight: str | PairWeight | Callable[[PairContext], Tensor], where: str
) -> PairWeight:
    if isinstance(weight, PairWeight):
        return weight
    if isinstance(weight, str):
        return PAIR_WEIGHTS[params.choice(where, "weight", weight, tuple(PAIR_WEIGHTS))]
    if callable(weight):
        return PairWeight(weight)
    raise TypeError(
        f"{where}: weight must be a name of {sorted(PAIR_WEIGHTS)}, a PairWeight or a "
        f"callable, got {type(weight).__name__}"
    )


def weight_name(spec: PairWeight) -> str | None:
    """The registered name of a pair weight the streaming path computes, or ``None``."""
    for name, known in PAIR_WEIGHTS.items():
        if known == spec and name in STREAMING_WEIGHTS:
            return name
    return None


def check_impl(
    where: str,
    impl: str,
    tile_size: int | None,
    *,
    streams: bool = True,
    no_kernel: str | None = None,
) -> int:
    """Check ``impl`` and ``tile_size`` (before any work); returns the tile side to use.

    ``streams=False`` (a callable pair weight) refuses ``impl="streaming"`` and
    ``impl="triton"``: such a weight returns whole ``[B, n, n]`` matrices. ``no_kernel``
    names what has no Triton kernel (see :func:`triton_unavailable`); ``impl="triton"`` is
    then refused, saying so.
    """
    params.choice(where, "impl", impl, IMPLS)
    tile = DEFAULT_TILE if tile_size is None else params.positive_int(where, "tile_size", tile_size)
    if not streams and impl in ("streaming", "triton"):
        raise ValueError(
            f"{where}: impl={impl!r} needs a named pair weight (one of {list(STREAMING_WEIGHTS)}); "
            "a callable weight returns [B, n, n] matrices and runs only with impl='torch' "
            "(or 'auto')"
        )
    if impl == "triton" and no_kernel is not None:
        raise ValueError(
            f"{where}: impl='triton' has no kernel for {no_kernel}; use 'auto', 'torch' or "
            "'streaming'"
        )
    return tile


def triton_unavailable(term: str, weight: str | None) -> str | None:
    """What keeps a pairwise loss off the Triton kernel (``None``: nothing): the kernel
    computes the logistic term with the pair weights of :data:`TRITON_WEIGHTS`."""
    if term != "logistic":
        return f"term={term!r} (the kernel computes the logistic term)"
    if weight is not None and weight not in TRITON_WEIGHTS:
        return f"the pair weight {weight!r} (the kernel has {list(TRITON_WEIGHTS)})"
    return None


def auto_streaming_above(device: torch.device) -> int:
    """Pairs above which ``impl="auto"`` streams: :data:`CPU_STREAMING_ABOVE` on CPU (the tiled
    closed-form pass is faster there once a batch passes a million pairs), else the
    memory-based default of :func:`rankloss.kernels.dispatch.resolve_impl`."""
    return CPU_STREAMING_ABOVE if device.type == "cpu" else STREAMING_ABOVE


def _context(
    batch: ListBatch, ranks: Tensor, gain_kind: str, k: int | None, mu: float
) -> tuple[PairContext, Tensor]:
    """The detached :class:`PairContext` and which lists have a positive ideal DCG at ``k``."""
    labels = batch.labels.detach()
    zero = labels.new_zeros(())
    normalised, positive = normalised_gains(labels, batch.mask, gain_kind, k)
    discounts = discount(ranks.to(labels.dtype))
    keep = batch.mask if k is None else batch.mask & (ranks <= k)
    discounts = torch.where(keep, discounts, zero)
    ctx = PairContext(labels, batch.mask, ranks.to(labels.dtype), normalised, discounts, k, mu)
    return ctx, positive


def _pairs(
    batch: ListBatch, which: str, threshold: float | None, ranks: Tensor | None, k: int | None
) -> Tensor:
    if which == "all":
        both = batch.mask.unsqueeze(-1) & batch.mask.unsqueeze(-2)
        n = batch.num_items
        pairs = both & ~torch.eye(n, dtype=torch.bool, device=both.device)
    elif threshold is not None:
        positive = batch.labels >= threshold
        negative = batch.labels < threshold
        if batch.padded:
            positive, negative = positive & batch.mask, negative & batch.mask
        pairs = positive.unsqueeze(-1) & negative.unsqueeze(-2)
    elif not batch.padded:  # every item is real: only the labels decide
        pairs = batch.labels.unsqueeze(-1) > batch.labels.unsqueeze(-2)
    else:
        pairs = pair_mask(batch.labels, batch.mask)
    top = None if ranks is None else topk_pair_mask(ranks, k)
    return pairs if top is None else pairs & top


def pairwise_loss(
    scores: Tensor,
    labels: Tensor,
    mask: Tensor | None = None,
    *,
    weights: Tensor | None = None,
    reduction: Reduction = "mean",
    term: PairTerm = "logistic",
    weight: str | PairWeight | Callable[[PairContext], Tensor] = "uniform",
    pair_reduction: Literal["mean", "sum"] = "mean",
    sigma: float = 1.0,
    margin: float = 1.0,
    mu: float = 10.0,
    k: int | None = None,
    gain: GainKind = "exp2",
    relevance_threshold: float | None = None,
    impl: Impl = "auto",
    tile_size: int | None = None,
) -> Tensor:
    r"""A pair term times a pair weight over each list's pairs (formula in the module doc).

    .. math::
        \ell = \frac{1}{Z} \sum_{(i, j) \in P} w_i\, \lambda_{ij}\, \phi(s_i - s_j)

    Args:
        scores: ``[..., n]`` floating point.
        labels: ``[..., n]`` graded relevance.
        mask: ``[..., n]`` bool (True = real item) or ``None``.
        weights: ``None``, per list ``[...]`` or per item ``[..., n]`` (a pair takes the
            weight of its more relevant item).
        reduction: ``"mean"`` over lists with something to learn from, ``"sum"`` or ``"none"``.
        term: ``"logistic"`` :math:`\log(1 + e^{-\sigma d})`, ``"squared_hinge"``
            :math:`\max(0, m - d)^2` or ``"hinge"``
            :math:`\max(0, m - d)`.
        weight: a name of :data:`rankloss.functional.lambdaweights.PAIR_WEIGHTS`, a
            :class:`~rankloss.functional.lambdaweights.PairWeight` or a callable
            ``PairContext -> [B, n, n]``; computed without gradient.
        pair_reduction: ``"mean"`` divides each list's sum by its number of pairs;
            ``"sum"`` does not (the lambda weights are already normalised by the ideal DCG).
        sigma: slope of the logistic term, > 0.
        margin: margin of the hinge term, >= 0.
        mu: NDCG-Loss2++'s weight of the NDCG-Loss2 part, >= 0.
        k: cut-off of the top-k rule, or ``None``.
        gain: ``"exp2"`` :math:`2^y - 1` or ``"linear"`` :math:`y`, for gain-based weights.
        relevance_threshold: ``None`` for graded pairs :math:`y_i > y_j`; a number :math:`t`
            for binary pairs :math:`y_i \ge t > y_j` (BPR).
        impl: ``"auto"``, ``"torch"``, ``"streaming"`` or ``"triton"`` (module doc);
            a callable weight runs only with ``"torch"`` (``"auto"`` picks it).
        tile_size: side of a tile for ``"streaming"`` (default 256) or block of items for
            ``"triton"`` (default 64, rounded up to a power of two); ``None`` for the default.

    Returns:
        A scalar, or ``[...]`` with ``reduction="none"``.

    Cost: :math:`O(n^2)` time per list, plus a sort for rank-based weights; memory
    :math:`O(Bn^2)` with ``impl="torch"``, :math:`O(Bn + \text{tile}^2)` with
    ``"streaming"``, :math:`O(Bn)` with ``"triton"``.

    Reference: Burges et al., "Learning to Rank using Gradient Descent", ICML 2005; Wang et al.,
    "The LambdaLoss Framework for Ranking Metric Optimization", CIKM 2018; Jagerman et al.,
    "On Optimizing Top-K Metrics for Neural Ranking Models", SIGIR 2022 (pair weights as a
    library abstraction, as in rax).

    >>> import torch
    >>> from rankloss.functional import pairwise_loss
    >>> s, y = torch.tensor([[0.2, 0.1]]), torch.tensor([[1.0, 0.0]])
    >>> pairwise_loss(s, y, term="hinge", margin=1.0)
    tensor(0.9000)
    """
    return _pairwise_loss(
        scores,
        labels,
        mask,
        weights=weights,
        reduction=reduction,
        term=term,
        weight=weight,
        pair_reduction=pair_reduction,
        sigma=sigma,
        margin=margin,
        mu=mu,
        k=k,
        gain=gain,
        relevance_threshold=relevance_threshold,
        impl=impl,
        tile_size=tile_size,
        where="pairwise_loss",
    )


def _pairwise_loss(
    scores: Tensor,
    labels: Tensor,
    mask: Tensor | None = None,
    *,
    weights: Tensor | None = None,
    reduction: Reduction = "mean",
    term: PairTerm = "logistic",
    weight: str | PairWeight | Callable[[PairContext], Tensor] = "uniform",
    pair_reduction: Literal["mean", "sum"] = "mean",
    sigma: float = 1.0,
    margin: float = 1.0,
    mu: float = 10.0,
    k: int | None = None,
    gain: GainKind = "exp2",
    relevance_threshold: float | None = None,
    impl: Impl = "auto",
    tile_size: int | None = None,
    where: str,
) -> Tensor:
    params.choice(where, "term", term, tuple(PAIR_TERMS))
    spec = _pair_weight(weight, where)
    params.choice(where, "pair_reduction", pair_reduction, ("mean", "sum"))
    sigma = params.positive(where, "sigma", sigma)
    margin = params.nonnegative(where, "margin", margin)
    mu = params.nonnegative(where, "mu", mu)
    k = params.cutoff(where, "k", k)
    params.choice(where, "gain", gain, GAINS)
    if relevance_threshold is not None:
        relevance_threshold = params.number(where, "relevance_threshold", relevance_threshold)
    name = weight_name(spec)
    tile = check_impl(
        where, impl, tile_size, streams=name is not None, no_kernel=triton_unavailable(term, name)
    )
    batch = check_lists(scores, labels, mask, weights, where=where, reduction=reduction)
    size, n = batch.scores.shape
    chosen = resolve_impl(
        impl,
        batch.scores.device,
        where=where,
        elements=size * n * n,
        has_streaming=name is not None,
        has_triton=term == "logistic" and name in TRITON_WEIGHTS,
        streaming_above=auto_streaming_above(batch.scores.device),
    )
    uniform = name == "uniform"
    # The current ranks (one sort) serve the top-k rule and the rank-based weights.
    ranks = None if k is None and uniform else ranks_from_scores(batch.scores, batch.mask)
    positive = None
    ctx = None
    if not uniform:
        assert ranks is not None
        ctx, positive = _context(batch, ranks, gain, k, mu)
    if chosen == "torch":
        total, count = _direct_sums(
            batch, spec, term, sigma, margin, relevance_threshold, ranks, k, ctx
        )
    else:
        plan = _plan(batch, spec, name, term, sigma, margin, mu, relevance_threshold, ranks, k, ctx)
        if chosen == "streaming":
            total, count = streaming_pair_sums(batch.scores, batch.item_weights, plan, tile)
        else:
            from rankloss.kernels.pairwise import triton_pair_sums

            total, count = triton_pair_sums(
                batch.scores,
                mask=plan.mask,
                keys=plan.key,
                top=plan.top,
                item_weights=batch.item_weights,
                gains=plan.gains,
                discounts=plan.discounts,
                ranks=plan.ranks,
                weight=plan.weight,
                sigma=sigma,
                mu=mu,
                tile_size=tile_size,
            )
    valid = count > 0
    if spec.uses_gains:
        assert positive is not None
        valid = valid & positive
    per_list = total / count.clamp(min=1) if pair_reduction == "mean" else total
    return reduce_lists(per_list, valid, batch, reduction)


def _direct_sums(
    batch: ListBatch,
    spec: PairWeight,
    term: str,
    sigma: float,
    margin: float,
    threshold: float | None,
    ranks: Tensor | None,
    k: int | None,
    ctx: PairContext | None,
) -> tuple[Tensor, Tensor]:
    """Per-list sums of the weighted pair terms and pair counts, from ``[B, n, n]`` matrices."""
    scores = batch.scores
    with torch.no_grad():
        pairs = _pairs(batch, spec.pairs, threshold, ranks, k)
        coef = pairs.to(scores.dtype)
        count = coef.sum((-1, -2))
        if ctx is not None:
            lambdas = spec.fn(ctx)
            if weight_name(spec) is None:  # a callable may leave anything outside the pairs
                lambdas = torch.where(pairs, lambdas, lambdas.new_zeros(()))
            coef = coef.mul_(lambdas) if lambdas.shape == coef.shape else coef * lambdas
        del pairs
    per_pair = PAIR_TERMS[term](scores.unsqueeze(-1) - scores.unsqueeze(-2), sigma, margin)
    # Row sums first: n terms per item, then a sum of n rows. A single "bij,bij->b"
    # contraction accumulates n^2 terms in one float32 dot product and loses three digits at
    # n = 2048. A product and a sum, not einsum: einsum's backward (batched matmuls and
    # permutes) takes 3-4x as long on CPU.
    rows = (per_pair * coef).sum(-1)
    if batch.item_weights is not None:
        rows = rows * batch.item_weights  # the weight of item i scales row i
    return rows.sum(-1), count


def _plan(
    batch: ListBatch,
    spec: PairWeight,
    name: str | None,
    term: str,
    sigma: float,
    margin: float,
    mu: float,
    threshold: float | None,
    ranks: Tensor | None,
    k: int | None,
    ctx: PairContext | None,
) -> PairPlan:
    """The per-item quantities the streaming path and the kernel read (all ``[B, n]``)."""
    assert name is not None
    labels = batch.labels.detach()
    key = labels if threshold is None else (labels >= threshold).to(labels.dtype)
    top = None if k is None or ranks is None else ranks <= k
    uses_ranks = name in ("ndcg_loss2", "ndcg_loss2pp")
    n = batch.num_items
    return PairPlan(
        mask=batch.mask,
        key=key,
        all_pairs=spec.pairs == "all",
        top=top,
        weight=name,
        labels=labels,
        gains=None if ctx is None else ctx.gains,
        discounts=None if ctx is None else ctx.discounts,
        ranks=ctx.ranks if ctx is not None and uses_ranks else None,
        delta_table=rank_distance_table(n, labels.dtype, labels.device) if uses_ranks else None,
        term=term,
        sigma=sigma,
        margin=margin,
        mu=mu,
    )


def ranknet_loss(
    scores: Tensor,
    labels: Tensor,
    mask: Tensor | None = None,
    *,
    weights: Tensor | None = None,
    reduction: Reduction = "mean",
    sigma: float = 1.0,
    k: int | None = None,
    impl: Impl = "auto",
    tile_size: int | None = None,
) -> Tensor:
    r"""RankNet: logistic loss on every pair with :math:`y_i > y_j`.

    .. math:: \ell_{ij} = \log\bigl(1 + e^{-\sigma (s_i - s_j)}\bigr)

    The per-list value is the mean of :math:`w_i \ell_{ij}` over the list's pairs; ``"mean"``
    then averages over lists that have a pair. With ``sigma=1`` this is the pairwise logistic
    loss. Computed with ``softplus``, finite for score gaps of :math:`10^4` and beyond.
    :func:`pairwise_loss` with ``term="logistic"``, ``weight="uniform"``.

    Shapes: ``scores``, ``labels``, ``mask``: ``[..., n]``; returns ``[...]`` for
    ``reduction="none"``. ``impl`` and ``tile_size`` as in :func:`pairwise_loss` (Triton kernel
    available). Cost: :math:`O(n^2)` time per list; memory :math:`O(Bn^2)` with
    ``impl="torch"``, :math:`O(Bn + \text{tile}^2)` with ``"streaming"``.

    Reference: Burges et al., "Learning to Rank using Gradient Descent", ICML 2005.
    """
    return _pairwise_loss(
        scores,
        labels,
        mask,
        weights=weights,
        reduction=reduction,
        sigma=sigma,
        k=k,
        impl=impl,
        tile_size=tile_size,
        where="ranknet_loss",
    )


def pairwise_hinge_loss(
    scores: Tensor,
    labels: Tensor,
    mask: Tensor | None = None,
    *,
    weights: Tensor | None = None,
    reduction: Reduction = "mean",
    margin: float = 1.0,
    k: int | None = None,
    impl: Impl = "auto",
    tile_size: int | None = None,
) -> Tensor:
    r"""Pairwise hinge (RankSVM) loss on every pair with :math:`y_i > y_j`.

    .. math:: \ell_{ij} = \max\bigl(0, m - (s_i - s_j)\bigr)

    The per-list value is the mean over the list's pairs (padding never enters the count);
    ``"mean"`` averages over lists that have a pair. :func:`pairwise_loss` with
    ``term="hinge"``. ``impl`` and ``tile_size`` as in :func:`pairwise_loss` (no Triton
    kernel). Cost: :math:`O(n^2)` time per list; memory :math:`O(Bn^2)` with ``impl="torch"``,
    :math:`O(Bn + \text{tile}^2)` with ``"streaming"``.

    Reference: Herbrich, Graepel and Obermayer, "Large Margin Rank Boundaries for Ordinal
    Regression", 2000; Joachims, "Optimizing Search Engines using Clickthrough Data", KDD 2002.
    """
    return _pairwise_loss(
        scores,
        labels,
        mask,
        weights=weights,
        reduction=reduction,
        term="hinge",
        margin=margin,
        k=k,
        impl=impl,
        tile_size=tile_size,
        where="pairwise_hinge_loss",
    )


def bpr_loss(
    scores: Tensor,
    labels: Tensor,
    mask: Tensor | None = None,
    *,
    weights: Tensor | None = None,
    reduction: Reduction = "mean",
    relevance_threshold: float = 1.0,
    k: int | None = None,
    impl: Impl = "auto",
    tile_size: int | None = None,
) -> Tensor:
    r"""Bayesian personalised ranking: every positive against every negative of a list.

    .. math:: \ell_{ij} = -\log \sigma(s_i - s_j), \quad y_i \ge t > y_j

    Items are binarised at ``relevance_threshold`` :math:`t` (default 1: with integer
    grades, every label > 0 is positive), unlike
    :func:`ranknet_loss`, which uses every pair of different grades. The per-list value is the
    mean over positive-negative pairs; a list without a positive or without a negative counts as
    0 and is left out of the mean. With ``k``, only pairs touching the current top ``k`` count.
    Regularisation of the parameters belongs to the optimiser (weight decay).
    :func:`pairwise_loss` with ``term="logistic"`` and ``relevance_threshold``; ``impl`` and
    ``tile_size`` as there (Triton kernel available). Cost: :math:`O(n^2)` time per list;
    memory :math:`O(Bn^2)` with ``impl="torch"``, :math:`O(Bn + \text{tile}^2)` with
    ``"streaming"``.

    Reference: Rendle et al., "BPR: Bayesian Personalized Ranking from Implicit Feedback",
    UAI 2009.
    """
    return _pairwise_loss(
        scores,
        labels,
        mask,
        weights=weights,
        reduction=reduction,
        relevance_threshold=relevance_threshold,
        k=k,
        impl=impl,
        tile_size=tile_size,
        where="bpr_loss",
    )


def lambdarank_loss(
    scores: Tensor,
    labels: Tensor,
    mask: Tensor | None = None,
    *,
    weights: Tensor | None = None,
    reduction: Reduction = "mean",
    sigma: float = 1.0,
    k: int | None = None,
    gain: GainKind = "exp2",
    impl: Impl = "auto",
    tile_size: int | None = None,
) -> Tensor:
    r"""LambdaRank: RankNet weighted by the NDCG change of swapping each pair.

    .. math::
        \ell = \sum_{y_i > y_j} |\Delta \mathrm{NDCG}_{ij}| \,
        \log\bigl(1 + e^{-\sigma (s_i - s_j)}\bigr), \quad
        |\Delta \mathrm{NDCG}_{ij}| = \frac{|G_i - G_j|\,|D_i - D_j|}{\mathrm{IDCG@k}}

    with gain :math:`G = 2^y - 1` (``gain="exp2"``) or :math:`G = y` (``"linear"``), discount
    :math:`D_i = 1/\log_2(1 + r_i)` at the current rank :math:`r_i` (detached scores, ties in
    input order), and :math:`D_i = 0` beyond rank ``k``. The weights are constants (no
    gradient), so the gradient of this loss is the LambdaRank lambda.

    The per-list value is the *sum* over pairs (the weights are already normalised by the ideal
    DCG); ``"mean"`` averages over lists that have a pair and a positive ideal DCG. With ``k``,
    the top-k rule of :mod:`rankloss.functional.lambdaweights` applies. :func:`pairwise_loss`
    with ``weight="lambdarank"``, ``pair_reduction="sum"``; equal to
    ``lambdaloss_loss(weighting="lambdarank")``. ``impl`` and ``tile_size`` as in
    :func:`pairwise_loss` (Triton kernel available). Cost: :math:`O(n^2)` time plus a sort per
    list; memory :math:`O(Bn^2)` with ``impl="torch"``, :math:`O(Bn + \text{tile}^2)` with
    ``"streaming"``.

    Reference: Burges, Ragno and Le, "Learning to Rank with Nonsmooth Cost Functions",
    NIPS 2006; Burges, "From RankNet to LambdaRank to LambdaMART: An Overview", 2010.
    """
    return _pairwise_loss(
        scores,
        labels,
        mask,
        weights=weights,
        reduction=reduction,
        weight="lambdarank",
        pair_reduction="sum",
        sigma=sigma,
        k=k,
        gain=gain,
        impl=impl,
        tile_size=tile_size,
        where="lambdarank_loss",
    )


def lambdaloss_loss(
    scores: Tensor,
    labels: Tensor,
    mask: Tensor | None = None,
    *,
    weights: Tensor | None = None,
    reduction: Reduction = "mean",
    weighting: str = "ndcg_loss2pp",
    sigma: float = 1.0,
    mu: float = 10.0,
    k: int | None = None,
    gain: GainKind = "exp2",
    impl: Impl = "auto",
    tile_size: int | None = None,
) -> Tensor:
    r"""LambdaLoss: the logistic pair term under a metric-driven pair weight.

    .. math::
        \ell = \sum_{(i, j)} w_{ij} \log\bigl(1 + e^{-\sigma (s_i - s_j)}\bigr)

    with :math:`G_i = \mathrm{gain}(y_i)/\mathrm{IDCG@k}`, current 1-based ranks
    :math:`r_i` (detached), :math:`D_i = 1/\log_2(1 + r_i)` (0 beyond ``k``) and the
    weightings of :mod:`rankloss.functional.lambdaweights`:

    * ``"ndcg_loss2pp"`` (NDCG-Loss2++): :math:`w_{ij} = (|D_i - D_j| + \mu\,\delta_{ij})
      |G_i - G_j|`, with :math:`\delta_{ij} = \bigl|\frac{1}{\log_2(1 + |r_i - r_j|)} -
      \frac{1}{\log_2(2 + |r_i - r_j|)}\bigr|`;
    * ``"ndcg_loss2"``: :math:`w_{ij} = \delta_{ij} |G_i - G_j|`;
    * ``"ndcg_loss1"``: :math:`w_{ij} = G_i D_i` over every ordered pair of real items;
    * ``"lambdarank"``: :math:`w_{ij} = |D_i - D_j|\,|G_i - G_j|` (:func:`lambdarank_loss`);
    * ``"label_diff"`` (ARP): :math:`w_{ij} = |y_i - y_j|`.

    Pairs are :math:`y_i > y_j` (every ordered pair for ``"ndcg_loss1"``). The per-list value is
    the sum over pairs; ``"mean"`` averages over lists with a pair (and, for gain-based
    weightings, a positive ideal DCG). The paper writes the logistic term in base 2: its value
    (and allRank's) is this one divided by :math:`\ln 2`. ``impl`` and ``tile_size`` as in
    :func:`pairwise_loss` (Triton kernel for every weighting but ``"ndcg_loss1"`` and
    ``"label_diff"``). Cost: :math:`O(n^2)` time plus a sort per list; memory
    :math:`O(Bn^2)` with ``impl="torch"``, :math:`O(Bn + \text{tile}^2)` with
    ``"streaming"``.

    Reference: Wang et al., "The LambdaLoss Framework for Ranking Metric Optimization",
    CIKM 2018.
    """
    params.choice("lambdaloss_loss", "weighting", weighting, LAMBDALOSS_WEIGHTINGS)
    return _pairwise_loss(
        scores,
        labels,
        mask,
        weights=weights,
        reduction=reduction,
        weight=weighting,
        pair_reduction="sum",
        sigma=sigma,
        mu=mu,
        k=k,
        gain=gain,
        impl=impl,
        tile_size=tile_size,
        where="lambdaloss_loss",
    )

r"""Embedding losses for metric learning and retrieval, on a similarity core.

Every loss here is a pure function of a **similarity matrix** and two bool masks::

    loss(similarity [N, M], positive [N, M], negative [N, M], *, <hyper-parameters>,
         weights=None, reduction="mean")

Row ``a`` is an anchor (a query); column ``j`` a candidate. ``similarity`` is higher for
closer pairs (cosine, dot, or a negated distance: one polarity, so margins always read the
same way); ``positive[a, j]`` marks a positive pair and ``negative[a, j]`` a negative pair.
An entry in neither mask is not a pair at all (the anchor itself, a masked false negative):
it is replaced by 0 *before* any arithmetic, so even NaN or inf there changes neither the
value nor the gradients.

Each loss computes **one value per anchor** and whether the anchor has something to learn from
(``valid``: a positive, and for most losses a negative), then reduces with
:func:`rankloss._core.reduce.reduce_values`: ``reduction="none"`` returns ``[N]`` (0 where not
valid), ``"sum"`` is :math:`\sum_a w_a \ell_a` and ``"mean"`` the weighted mean over valid
anchors, with per-anchor ``weights [N]``. A batch with nothing to learn from returns a finite 0
connected to the graph. float16/bfloat16 similarities are computed in float32.

These functions neither mine nor build candidates:
:func:`rankloss._core.candidates.build_candidates` turns embeddings and labels (or queries and
keys) into the matrices, a miner of
:mod:`rankloss.mining` restricts the masks or gives ``triplets``, and the modules of
:mod:`rankloss.losses.embedding` compose the three. :func:`chunked_info_nce_loss` takes the
candidates themselves, so that no ``[N, M]`` matrix is ever held.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from rankloss._core import params
from rankloss._core.candidates import Candidates
from rankloss._core.reduce import (
    REDUCTIONS,
    Reduction,
    checked_weights,
    masked_mean,
    reduce_values,
)
from rankloss._core.similarity import Similarity
from rankloss._core.tuples import Triplets
from rankloss._core.validation import compute_dtype, shape_str
from rankloss.functional._chunked import chunked_info_nce
from rankloss.functional._chunked_contrastive import chunked_supcon, softplus_exact
from rankloss.functional._chunked_pairs import streaming_per_anchor, streaming_reduced

__all__ = [
    "contrastive_loss",
    "multi_similarity_loss",
    "circle_loss",
    "triplet_loss",
    "margin_ranking_loss",
    "info_nce_loss",
    "nt_xent_loss",
    "supcon_loss",
    "chunked_info_nce_loss",
    "info_nce_per_anchor",
    "chunked_info_nce_per_anchor",
    "chunked_supcon_per_anchor",
    "mean_of_views",
    "CHUNKED_SIMILARITIES",
    "streaming_pair_loss",
    "STREAMING_PAIR_LOSSES",
]

#: The similarities :func:`chunked_info_nce_loss` can compute block by block.
CHUNKED_SIMILARITIES = ("dot", "cosine")


# --------------------------------------------------------------------------------------------
# Shared parts


def _check_inputs(
    similarity: object,
    positive: object,
    negative: object,
    reduction: str,
    where: str,
    *,
    masked_later: bool = False,
) -> tuple[Tensor, Tensor, Tensor]:
    """Validate ``(similarity, positive, negative)`` and sanitise the entries that are no pair.

    Returns the similarity in the compute dtype with 0 wherever neither mask is set. A caller
    that reads every entry through its masks afterwards (``masked_later``: a value that is no
    pair never reaches the loss or its gradient) only needs the sanitising when an entry is
    NaN or infinite: on the CPU, where reading one flag costs nothing, a finite sum of the
    similarity (a sum holding NaN or inf is never finite) then skips the ``[N, M]`` select.
    """
    params.choice(where, "reduction", reduction, REDUCTIONS)
    if not isinstance(similarity, Tensor):
        raise ValueError(
            f"{where}: similarity must be a torch.Tensor, got {type(similarity).__name__}"
        )
    if similarity.dim() != 2:
        raise ValueError(f"{where}: similarity must have shape [N, M], got {shape_str(similarity)}")
    if not similarity.dtype.is_floating_point:
        raise ValueError(
            f"{where}: similarity must be floating point, got dtype {similarity.dtype}"
        )
    for name, mask in (("positive", positive), ("negative", negative)):
        if not isinstance(mask, Tensor):
            raise ValueError(f"{where}: {name} must be a torch.Tensor, got {type(mask).__name__}")
        if mask.dtype != torch.bool:
            raise ValueError(f"{where}: {name} must be a bool mask, got dtype {mask.dtype}")
        if mask.shape != similarity.shape:
            raise ValueError(
                f"{where}: {name} has shape {shape_str(mask)} but similarity has shape "
                f"{shape_str(similarity)}"
            )
        if mask.device != similarity.device:
            raise ValueError(
                f"{where}: {name} is on {mask.device} but similarity is on {similarity.device}"
            )
    assert isinstance(positive, Tensor) and isinstance(negative, Tensor)
    sim = similarity.to(compute_dtype(similarity.dtype))
    if masked_later and sim.device.type == "cpu" and math.isfinite(sim.detach().sum().item()):
        return sim, positive, negative
    sim = torch.where(positive | negative, sim, sim.new_zeros(()))
    return sim, positive, negative


def _masked_logsumexp(x: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
    r"""Row-wise log-sum-exp over ``mask`` and whether the row had any entry (0 where not).

    Masked entries are replaced by :math:`-\infty` *before* ``exp`` (which gives exactly 0
    there, with a zero gradient), so they leak neither NaN nor gradient.
    """
    if x.shape[1] == 0:  # no candidates: amax has nothing to reduce over
        return x.sum(1), torch.zeros(x.shape[0], dtype=torch.bool, device=x.device)
    # A row has an entry when its largest mask flag is 1 (cheaper than any() on bools).
    has_any = mask.view(torch.uint8).amax(1) != 0
    masked = torch.where(mask, x, -math.inf)
    row_max = masked.amax(1, keepdim=True).detach()
    row_max = torch.where(has_any.unsqueeze(1), row_max, torch.zeros_like(row_max))
    total = (masked - row_max).exp().sum(1)
    total = torch.where(has_any, total, torch.ones_like(total))
    return row_max[:, 0] + total.log(), has_any


def _check_triplets(triplets: object, shape: torch.Size, where: str) -> Triplets:
    if not isinstance(triplets, Triplets):
        hint = (
            " (convert Pairs with rankloss.mining.pairs_to_triplets)"
            if type(triplets).__name__ == "Pairs"
            else ""
        )
        raise TypeError(
            f"{where}: triplets must be rankloss.mining.Triplets or None, got "
            f"{type(triplets).__name__}{hint}"
        )
    n, m = shape
    if len(triplets):
        for name, index, bound in (
            ("anchor", triplets.anchor, n),
            ("positive", triplets.positive, m),
            ("negative", triplets.negative, m),
        ):
            low, high = int(index.min()), int(index.max())
            if low < 0 or high >= bound:
                raise ValueError(
                    f"{where}: triplets.{name} must index [0, {bound}), got values in "
                    f"[{low}, {high}] for a similarity of shape [{n}, {m}]"
                )
    return triplets


#: Largest ``[c, M, M]`` block of triplets held at once by :func:`_triplet_per_anchor`.
_TRIPLET_BLOCK_ELEMENTS = 1 << 22


def _all_triplets_hinge(sim: Tensor, positive: Tensor, negative: Tensor, margin: float) -> Tensor:
    r"""Per anchor, :math:`\sum_{p \in P_a} \sum_{n \in N_a} [s_{an} - s_{ap} + m]_+`, exactly.

    Each anchor's negative similarities are sorted once (descending); for a positive ``p`` the
    terms are non-zero for the ``c`` negatives with :math:`s_{an} > s_{ap} - m`, whose sum is a
    prefix sum :math:`S_c`, so the positive contributes :math:`S_c - c (s_{ap} - m)`. Ties at
    the hinge's kink contribute 0 with a zero gradient, as ``relu`` does. Gradients flow
    through the sorted values and the prefix sums. Cost: :math:`O(NM \log M)` time,
    :math:`O(NM)` memory.
    """
    per, _, _ = _hinge_per_pair(sim, negative, margin)
    return torch.where(positive, per, per.new_zeros(())).sum(1)


def _hinge_per_pair(sim: Tensor, negative: Tensor, margin: float) -> tuple[Tensor, Tensor, Tensor]:
    r"""For every entry ``(a, p)``, :math:`\sum_{n \in N_a} [s_{an} - s_{ap} + m]_+` (``per``),
    the number of negatives inside the margin (``above``) and the order that sorts each row's
    negatives by descending similarity (``order``; other entries last). ``per`` is
    differentiable in ``sim`` (through the sorted values and their prefix sums)."""
    inf = torch.full((), math.inf, dtype=sim.dtype, device=sim.device)
    # Ascending in -s: the negatives' similarities in descending order, non-negatives last.
    keys, order = torch.sort(torch.where(negative, -sim, inf), dim=1)
    descending = torch.where(torch.isfinite(keys), -keys, keys.new_zeros(()))
    prefix = F.pad(descending.cumsum(1), (1, 0))
    threshold = sim - margin
    # Number of negatives with s_an > s_ap - m, i.e. -s_an < -(s_ap - m).
    above = torch.searchsorted(keys.detach(), (-threshold).detach().contiguous(), right=False)
    per = prefix.gather(1, above) - above.to(sim.dtype) * threshold
    return per, above, order


def _triplet_per_anchor(
    sim: Tensor,
    positive: Tensor,
    negative: Tensor,
    triplets: Triplets | None,
    value: Callable[[Tensor, Tensor], Tensor],
    hinge_margin: float | None = None,
) -> tuple[Tensor, Tensor]:
    r"""Mean of ``value(s_ap, s_an)`` over each anchor's triplets, and which anchors have one.

    Without ``triplets``, every triplet counts. When ``value`` is the hinge
    ``relu(s_an - s_ap + hinge_margin)`` (``hinge_margin`` given), the sum over all triplets is
    exact in :math:`O(NM \log M)` time and :math:`O(NM)` memory (:func:`_all_triplets_hinge`);
    otherwise anchors go through :math:`[c, M, M]` blocks of at most
    :data:`_TRIPLET_BLOCK_ELEMENTS` entries.
    """
    n = sim.shape[0]
    if triplets is None:
        count = positive.sum(1) * negative.sum(1)
        if hinge_margin is not None:
            total = _all_triplets_hinge(sim, positive, negative, hinge_margin)
        else:
            m = max(sim.shape[1], 1)
            rows = max(1, _TRIPLET_BLOCK_ELEMENTS // (m * m))
            parts = []
            for start in range(0, n, rows):
                block = slice(start, start + rows)
                s, pos, neg = sim[block], positive[block], negative[block]
                mask = pos.unsqueeze(2) & neg.unsqueeze(1)
                per = value(s.unsqueeze(2), s.unsqueeze(1))
                parts.append(torch.where(mask, per, per.new_zeros(())).sum((1, 2)))
            total = torch.cat(parts) if parts else sim.sum(1)
    else:
        a = triplets.anchor.to(sim.device)
        p = triplets.positive.to(sim.device)
        q = triplets.negative.to(sim.device)
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
    similarity: Tensor,
    positive: Tensor,
    negative: Tensor,
    *,
    pos_margin: float = 1.0,
    neg_margin: float = 0.0,
    squared: bool = False,
    weights: Tensor | None = None,
    reduction: Reduction = "mean",
) -> Tensor:
    r"""Contrastive loss (Hadsell, Chopra and LeCun, CVPR 2006), on similarities.

    .. math::
        \ell_a = \frac{1}{|\mathcal P_a|}\sum_{p \in \mathcal P_a} [m_+ - s_{ap}]_+^{q}
               + \frac{1}{|\mathcal N_a|}\sum_{n \in \mathcal N_a} [s_{an} - m_-]_+^{q},
        \qquad q = 2 \text{ if squared else } 1

    Positives are pulled above ``pos_margin``, negatives pushed below ``neg_margin`` (a term
    without pairs is 0). With a negated Euclidean similarity, ``pos_margin=0``,
    ``neg_margin=-m`` and ``squared=True`` this is Hadsell's :math:`D^2` / :math:`[m - D]_+^2`
    form (without the factor 1/2).

    Args:
        similarity: ``[N, M]`` similarity of each anchor with each candidate (higher = closer).
        positive: ``[N, M]`` bool, the positive pairs :math:`\mathcal P_a`.
        negative: ``[N, M]`` bool, the negative pairs :math:`\mathcal N_a`.
        pos_margin: :math:`m_+`; must be ``>= neg_margin``.
        neg_margin: :math:`m_-`.
        squared: square the hinges.
        weights: ``[N]`` per-anchor weights, or ``None``.
        reduction: ``"mean"`` (over anchors with a pair of either kind), ``"sum"`` or ``"none"``.

    Returns:
        A scalar, or ``[N]`` with ``reduction="none"``.

    Cost: :math:`O(NM)` time and memory.

    >>> s = torch.tensor([[0.0, 0.9, -0.2]])
    >>> positive = torch.tensor([[False, True, False]])
    >>> contrastive_loss(s, positive, ~positive & torch.tensor([[False, True, True]]))
    tensor(0.1000)
    """
    where = "contrastive_loss"
    pos_margin = params.number(where, "pos_margin", pos_margin)
    neg_margin = params.number(where, "neg_margin", neg_margin)
    if pos_margin < neg_margin:
        raise ValueError(
            f"{where}: pos_margin must be >= neg_margin ({neg_margin!r}), got {pos_margin!r}; "
            "margins are on similarities (higher = closer), not distances"
        )
    power = 2 if params.boolean(where, "squared", squared) else 1
    sim, positive, negative = _check_inputs(
        similarity, positive, negative, reduction, where, masked_later=True
    )
    per_anchor, valid = _contrastive_values(sim, positive, negative, pos_margin, neg_margin, power)
    return reduce_values(per_anchor, valid, weights, reduction, where=where)


def _contrastive_values(
    sim: Tensor,
    positive: Tensor,
    negative: Tensor,
    pos_margin: float,
    neg_margin: float,
    power: int,
) -> tuple[Tensor, Tensor]:
    """Per-anchor contrastive values and validity (``sim`` sanitised, or finite and read
    only through the masks)."""
    pos_hinge = torch.relu(pos_margin - sim)
    neg_hinge = torch.relu(sim - neg_margin)
    if power != 1:
        pos_hinge, neg_hinge = pos_hinge.pow(power), neg_hinge.pow(power)
    pos_term, has_pos = masked_mean(pos_hinge, positive)
    neg_term, has_neg = masked_mean(neg_hinge, negative)
    return pos_term + neg_term, has_pos | has_neg


def multi_similarity_loss(
    similarity: Tensor,
    positive: Tensor,
    negative: Tensor,
    *,
    alpha: float = 2.0,
    beta: float = 50.0,
    base: float = 0.5,
    weights: Tensor | None = None,
    reduction: Reduction = "mean",
) -> Tensor:
    r"""Multi-similarity loss (Wang et al., CVPR 2019).

    .. math::
        \ell_a = \frac{1}{\alpha}\log\Bigl(1 + \sum_{p \in \mathcal P_a}
                 e^{-\alpha(s_{ap} - \lambda)}\Bigr)
               + \frac{1}{\beta}\log\Bigl(1 + \sum_{n \in \mathcal N_a}
                 e^{\beta(s_{an} - \lambda)}\Bigr)

    with :math:`\lambda` = ``base``. Usually paired with the ``"multi_similarity"`` miner. An
    anchor with either kind of pair counts; a missing kind contributes 0.

    Args:
        similarity, positive, negative: ``[N, M]``, as in :func:`contrastive_loss`.
        alpha: :math:`\alpha > 0`, the positive scale.
        beta: :math:`\beta > 0`, the negative scale.
        base: :math:`\lambda`, the similarity the scales are centred on.
        weights: ``[N]`` per-anchor weights, or ``None``.
        reduction: ``"mean"`` (over anchors with a pair), ``"sum"`` or ``"none"``.

    Returns:
        A scalar, or ``[N]`` with ``reduction="none"``.

    Reference: Wang, Han, Huang, Dong and Scott, "Multi-Similarity Loss with General Pair
    Weighting for Deep Metric Learning", CVPR 2019. Cost: :math:`O(NM)` time and memory.
    """
    where = "multi_similarity_loss"
    alpha = params.positive(where, "alpha", alpha)
    beta = params.positive(where, "beta", beta)
    base = params.number(where, "base", base)
    sim, positive, negative = _check_inputs(similarity, positive, negative, reduction, where)
    per_anchor, valid = _multi_similarity_values(sim, positive, negative, alpha, beta, base)
    return reduce_values(per_anchor, valid, weights, reduction, where=where)


def _multi_similarity_values(
    sim: Tensor, positive: Tensor, negative: Tensor, alpha: float, beta: float, base: float
) -> tuple[Tensor, Tensor]:
    """Per-anchor multi-similarity values and validity (``sim`` already sanitised)."""
    pos_lse, has_pos = _masked_logsumexp(-alpha * (sim - base), positive)
    neg_lse, has_neg = _masked_logsumexp(beta * (sim - base), negative)
    zero = sim.new_zeros(())
    # log(1 + e^x) exactly (F.softplus returns x above 20); a native op: on [N] vectors the
    # autograd function softplus_exact costs more in Python than it saves.
    per_anchor = torch.where(has_pos, torch.logaddexp(pos_lse, zero) / alpha, zero) + torch.where(
        has_neg, torch.logaddexp(neg_lse, zero) / beta, zero
    )
    return per_anchor, has_pos | has_neg


# Closed-form gradients of the per-anchor values, for the streaming form's reduced losses
# (:func:`rankloss.functional._chunked_pairs.streaming_reduced`): each returns
# ``(values [c], valid [c], d values / d similarity [c, M])`` with the value and validity of the
# direct path's function and the gradient autograd would give it (``relu``'s is 0 at its kink).


def _contrastive_with_grad(
    sim: Tensor,
    positive: Tensor,
    negative: Tensor,
    pos_margin: float,
    neg_margin: float,
    power: int,
) -> tuple[Tensor, Tensor, Tensor]:
    r""":math:`\partial \ell_a / \partial s_{ap} = -q [m_+ - s_{ap}]_+^{q-1} / |\mathcal P_a|`,
    :math:`\partial \ell_a / \partial s_{an} = q [s_{an} - m_-]_+^{q-1} / |\mathcal N_a|`."""
    zero = sim.new_zeros(())
    pos_hinge = torch.where(positive, (pos_margin - sim).clamp_(min=0), zero)
    neg_hinge = torch.where(negative, (sim - neg_margin).clamp_(min=0), zero)
    n_pos, n_neg = positive.sum(1), negative.sum(1)
    inv_pos = 1.0 / n_pos.clamp(min=1).to(sim.dtype)
    inv_neg = 1.0 / n_neg.clamp(min=1).to(sim.dtype)
    if power == 1:
        values = pos_hinge.sum(1) * inv_pos + neg_hinge.sum(1) * inv_neg
        pos_slope, neg_slope = (pos_hinge > 0).to(sim.dtype), (neg_hinge > 0).to(sim.dtype)
    else:
        values = pos_hinge.square().sum(1) * inv_pos + neg_hinge.square().sum(1) * inv_neg
        pos_slope, neg_slope = pos_hinge.mul_(2.0), neg_hinge.mul_(2.0)
    grad = neg_slope.mul_(inv_neg.unsqueeze(1)).sub_(pos_slope.mul_(inv_pos.unsqueeze(1)))
    return values, (n_pos > 0) | (n_neg > 0), grad


def _masked_log_one_plus_sum_exp(x: Tensor, mask: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    r"""Row-wise :math:`\log(1 + \sum_{j \in mask} e^{x_j})`, its gradient in ``x`` (0 off the
    mask) and whether the row had an entry: the softmax over the entries and a zero logit."""
    masked = torch.where(mask, x, -math.inf)
    row_max = masked.amax(1, keepdim=True).clamp_(min=0.0)
    exps = (masked - row_max).exp_()
    total = exps.sum(1, keepdim=True) + (-row_max).exp()
    value = row_max[:, 0] + total[:, 0].log()
    return value, exps.div_(total), mask.view(torch.uint8).amax(1) != 0


def _multi_similarity_with_grad(
    sim: Tensor, positive: Tensor, negative: Tensor, alpha: float, beta: float, base: float
) -> tuple[Tensor, Tensor, Tensor]:
    r""":math:`\partial \ell_a / \partial s_{ap} = -e^{x_p} / (1 + \sum_{p'} e^{x_{p'}})`,
    :math:`x = -\alpha (s - \lambda)`; the negatives likewise with :math:`+\beta`."""
    if sim.shape[1] == 0:
        none = torch.zeros(sim.shape[0], dtype=torch.bool, device=sim.device)
        return sim.sum(1), none, sim
    pos_value, pos_grad, has_pos = _masked_log_one_plus_sum_exp(-alpha * (sim - base), positive)
    neg_value, neg_grad, has_neg = _masked_log_one_plus_sum_exp(beta * (sim - base), negative)
    values = pos_value / alpha + neg_value / beta
    return values, has_pos | has_neg, neg_grad.sub_(pos_grad)


def _all_triplets_with_grad(
    sim: Tensor, positive: Tensor, negative: Tensor, margin: float
) -> tuple[Tensor, Tensor, Tensor]:
    r"""The mean hinge over each anchor's triplets (:func:`_all_triplets_hinge`) and its
    gradient: :math:`-|\{n : s_{an} > s_{ap} - m\}|` for a positive ``p``,
    :math:`|\{p : s_{ap} - m < s_{an}\}|` for a negative ``n``, both over
    :math:`|\mathcal P_a| |\mathcal N_a|`. Cost: one row sort, :math:`O(NM \log M)`."""
    per, above, order = _hinge_per_pair(sim, negative, margin)
    is_positive = positive.to(sim.dtype)
    total = torch.where(positive, per, sim.new_zeros(())).sum(1)
    count = positive.sum(1) * negative.sum(1)
    # The j-th largest negative is in the prefix of every positive with above(p) > j: a
    # histogram of above(p) over the positives, summed from the right, put back in place.
    histogram = sim.new_zeros(sim.shape[0], sim.shape[1] + 1).scatter_add_(1, above, is_positive)
    in_prefix = histogram.flip(1).cumsum(1).flip(1)[:, 1:]
    grad = torch.zeros_like(sim).scatter_(1, order, in_prefix)
    grad = grad.sub_(above.to(sim.dtype).mul_(is_positive))
    inv = 1.0 / count.clamp(min=1).to(sim.dtype)
    return total * inv, count > 0, grad.mul_(inv.unsqueeze(1))


#: The label-based losses :func:`streaming_pair_loss` computes over row blocks of anchors.
STREAMING_PAIR_LOSSES = ("contrastive", "multi_similarity", "triplet")


_WITH_GRAD: dict[str, Callable[..., tuple[Tensor, Tensor, Tensor]]] = {
    "contrastive": _contrastive_with_grad,
    "multi_similarity": _multi_similarity_with_grad,
    "triplet": _all_triplets_with_grad,
}


def _block_hyper(kind: str, hyper: dict[str, float | bool]) -> dict[str, Any]:
    """The keyword arguments of ``_WITH_GRAD[kind]`` (and of the per-anchor function the
    recomputing form runs) from the loss's hyper-parameters."""
    if kind == "contrastive":
        return {
            "pos_margin": float(hyper["pos_margin"]),
            "neg_margin": float(hyper["neg_margin"]),
            "power": 2 if hyper["squared"] else 1,
        }
    if kind == "multi_similarity":
        return {k: float(hyper[k]) for k in ("alpha", "beta", "base")}
    return {"margin": float(hyper["margin"])}


def streaming_pair_loss(
    kind: str,
    candidates: Candidates,
    queries: Tensor,
    keys: Tensor,
    *,
    chunk_size: int | None = None,
    weights: Tensor | None = None,
    reduction: Reduction = "mean",
    **hyper: float | bool,
) -> Tensor:
    r"""A contrastive, multi-similarity or all-triplets hinge loss over row blocks of anchors.

    .. math:: \ell_a = f\bigl(s_{a,:}, \mathcal P_a, \mathcal N_a\bigr), \quad
        s_{a,:} = q_a K^\top, \quad a \in [r_0, r_1) \text{ one block at a time}

    with :math:`f` the per-anchor formula of the chosen loss.

    The same value and gradients as :func:`contrastive_loss`, :func:`multi_similarity_loss` or
    :func:`triplet_loss` (hinge, every triplet) on ``queries @ keys.T`` with the masks of
    ``candidates``, without any ``[N, M]`` matrix: each block of ``c`` anchors computes its
    ``[c, M]`` similarities and runs the loss's per-anchor formula. With ``"sum"`` or
    ``"mean"`` (and weights that need no gradient) the block's gradient is computed in closed
    form in the forward and folded into ``[N, d]`` and ``[M, d]`` gradients, so nothing is
    recomputed; with ``"none"`` the block is recomputed in the backward
    (:func:`torch.utils.checkpoint.checkpoint`).

    Args:
        kind: one of :data:`STREAMING_PAIR_LOSSES`.
        candidates: labels and pair rules (from
            :func:`~rankloss._core.candidates.build_candidates`).
        queries: ``[N, d]`` anchors, keys ``[M, d]``: already normalised for cosine.
        chunk_size: anchors per block; ``None`` keeps a block near :math:`2^{24}` entries.
        weights: ``[N]`` per-anchor weights, or ``None``.
        reduction: ``"mean"``, ``"sum"`` or ``"none"``.
        **hyper: the loss's hyper-parameters (``pos_margin, neg_margin, squared`` /
            ``alpha, beta, base`` / ``margin``), already checked.

    Returns:
        A scalar, or ``[N]`` with ``reduction="none"``.

    Cost: the direct path's time (triplets: :math:`O(NM \log M)`), plus one recomputation of
    each block with ``"none"``; memory :math:`O((N + M) d + c M)`. The reduced form is
    differentiable once.
    """
    where = f"{kind}_loss"
    params.choice(where, "kind", kind, STREAMING_PAIR_LOSSES)
    params.choice(where, "reduction", reduction, REDUCTIONS)

    block_hyper = _block_hyper(kind, hyper)
    if reduction != "none" and not (isinstance(weights, Tensor) and weights.requires_grad):
        coefficients = checked_weights(weights, queries.new_empty(queries.shape[0]), where)
        return streaming_reduced(
            candidates,
            queries,
            keys,
            functools.partial(_WITH_GRAD[kind], **block_hyper),
            coefficients,
            reduction == "mean",
            chunk_size,
        )

    def per_anchor(sim: Tensor, positive: Tensor, negative: Tensor) -> tuple[Tensor, Tensor]:
        sim = torch.where(positive | negative, sim, sim.new_zeros(()))
        if kind == "contrastive":
            return _contrastive_values(sim, positive, negative, **block_hyper)
        if kind == "multi_similarity":
            return _multi_similarity_values(sim, positive, negative, **block_hyper)
        margin = block_hyper["margin"]
        return _triplet_per_anchor(
            sim,
            positive,
            negative,
            None,
            lambda s_ap, s_an: torch.relu(s_an - s_ap + margin),
            hinge_margin=margin,
        )

    values, valid = streaming_per_anchor(candidates, queries, keys, per_anchor, chunk_size)
    return reduce_values(values, valid, weights, reduction, where=where)


def circle_loss(
    similarity: Tensor,
    positive: Tensor,
    negative: Tensor,
    *,
    margin: float = 0.4,
    gamma: float = 80.0,
    weights: Tensor | None = None,
    reduction: Reduction = "mean",
) -> Tensor:
    r"""Circle loss (Sun et al., CVPR 2020).

    .. math::
        \ell_a = \operatorname{softplus}\Bigl(
            \log\sum_{n \in \mathcal N_a} e^{\gamma \alpha_n (s_{an} - \Delta_n)}
          + \log\sum_{p \in \mathcal P_a} e^{-\gamma \alpha_p (s_{ap} - \Delta_p)}\Bigr)

    with :math:`\alpha_p = [1 + m - s_{ap}]_+`, :math:`\alpha_n = [s_{an} + m]_+` (treated as
    constants: no gradient flows through them), :math:`\Delta_p = 1 - m`,
    :math:`\Delta_n = m`. Defined for similarities in :math:`[-1, 1]` (cosine). An anchor
    needs a positive and a negative. Defaults ``margin=0.4, gamma=80`` (the paper's
    fine-grained retrieval setting).

    Args:
        similarity, positive, negative: ``[N, M]``, as in :func:`contrastive_loss`.
        margin: :math:`m \in [0, 1]`, the relaxation.
        gamma: :math:`\gamma > 0`, the scale.
        weights: ``[N]`` per-anchor weights, or ``None``.
        reduction: ``"mean"`` (over anchors with a positive and a negative), ``"sum"`` or
            ``"none"``.

    Returns:
        A scalar, or ``[N]`` with ``reduction="none"``.

    Reference: Sun et al., "Circle Loss: A Unified Perspective of Pair Similarity
    Optimization", CVPR 2020. Cost: :math:`O(NM)` time and memory.
    """
    where = "circle_loss"
    margin = params.in_range(where, "margin", margin, 0.0, 1.0)
    gamma = params.positive(where, "gamma", gamma)
    sim, positive, negative = _check_inputs(similarity, positive, negative, reduction, where)
    detached = sim.detach()
    alpha_p = torch.relu(1.0 + margin - detached)
    alpha_n = torch.relu(detached + margin)
    pos_lse, has_pos = _masked_logsumexp(-gamma * alpha_p * (sim - (1.0 - margin)), positive)
    neg_lse, has_neg = _masked_logsumexp(gamma * alpha_n * (sim - margin), negative)
    valid = has_pos & has_neg
    per_anchor = F.softplus(torch.where(valid, pos_lse + neg_lse, sim.new_zeros(())))
    return reduce_values(per_anchor, valid, weights, reduction, where=where)


# --------------------------------------------------------------------------------------------
# Triplet losses


def triplet_loss(
    similarity: Tensor,
    positive: Tensor,
    negative: Tensor,
    *,
    triplets: Triplets | None = None,
    margin: float = 0.1,
    soft_margin: bool = False,
    weights: Tensor | None = None,
    reduction: Reduction = "mean",
) -> Tensor:
    r"""Triplet margin loss (Weinberger and Saul 2009; Schroff et al. 2015), on similarities.

    .. math:: \ell_{apn} = [s_{an} - s_{ap} + m]_+ \quad\text{or, with soft\_margin,}\quad
        \log(1 + e^{s_{an} - s_{ap}})

    (the soft margin of Hermans et al. 2017 replaces the hinge and does not use ``margin``).
    The per-anchor value is the mean over the anchor's triplets: every
    :math:`(p, n) \in \mathcal P_a \times \mathcal N_a` when ``triplets`` is ``None``, else the
    given triplets with ``positive[a, p]`` and ``negative[a, n]`` (others are dropped).

    Args:
        similarity, positive, negative: ``[N, M]``, as in :func:`contrastive_loss`.
        triplets: :class:`~rankloss.mining.Triplets` ``(anchor [T], positive [T], negative
            [T])`` indexing rows and columns of ``similarity`` (e.g. from a miner), or ``None``.
        margin: :math:`m \ge 0`.
        soft_margin: use :math:`\log(1 + e^{s_{an} - s_{ap}})` instead of the hinge.
        weights: ``[N]`` per-anchor weights, or ``None``.
        reduction: ``"mean"`` (over anchors with a triplet), ``"sum"`` or ``"none"``.

    Returns:
        A scalar, or ``[N]`` with ``reduction="none"``.

    Cost: every triplet with the hinge is :math:`O(NM \log M)` time and :math:`O(NM)` memory
    (each anchor's negatives sorted once, a prefix sum per positive; exact); with
    ``soft_margin`` :math:`O(NM^2)` time in blocks of bounded memory; ``T`` given triplets
    :math:`O(NM + T)` (the ``"batch_hard"`` miner gives one per anchor).
    """
    where = "triplet_loss"
    margin = params.nonnegative(where, "margin", margin)
    soft = params.boolean(where, "soft_margin", soft_margin)
    sim, positive, negative = _check_inputs(similarity, positive, negative, reduction, where)
    if triplets is not None:
        triplets = _check_triplets(triplets, sim.shape, where)

    def value(s_ap: Tensor, s_an: Tensor) -> Tensor:
        return F.softplus(s_an - s_ap) if soft else torch.relu(s_an - s_ap + margin)

    per_anchor, valid = _triplet_per_anchor(
        sim, positive, negative, triplets, value, hinge_margin=None if soft else margin
    )
    return reduce_values(per_anchor, valid, weights, reduction, where=where)


def margin_ranking_loss(
    similarity: Tensor,
    positive: Tensor,
    negative: Tensor,
    *,
    triplets: Triplets | None = None,
    margin: float = 0.1,
    weights: Tensor | None = None,
    reduction: Reduction = "mean",
) -> Tensor:
    r"""Pairwise margin ranking (Herbrich et al. 2000, on similarities): each positive of an
    anchor above each of its negatives by a margin.

    .. math:: \ell_{apn} = [m - (s_{ap} - s_{an})]_+

    The retrieval form of the pairwise hinge: with a query's key as its positive, the key is
    ranked above the other keys, the references and the query's hard negatives. The per-anchor
    value is the mean over its (positive, negative) combinations, or over the given
    ``triplets`` (those with ``positive[a, p]`` and ``negative[a, n]``).

    Args:
        similarity, positive, negative: ``[N, M]``, as in :func:`contrastive_loss`.
        triplets: :class:`~rankloss.mining.Triplets` indexing ``similarity``, or ``None``.
        margin: :math:`m \ge 0`.
        weights: ``[N]`` per-anchor weights, or ``None``.
        reduction: ``"mean"`` (over anchors with a combination), ``"sum"`` or ``"none"``.

    Returns:
        A scalar, or ``[N]`` with ``reduction="none"``.

    Reference: Herbrich, Graepel and Obermayer, "Large Margin Rank Boundaries for Ordinal
    Regression", 2000. Cost: :math:`O(NM \log M)` time and :math:`O(NM)` memory without
    ``triplets`` (exact, by sorting each anchor's negatives), :math:`O(NM + T)` with ``T``.
    """
    where = "margin_ranking_loss"
    margin = params.nonnegative(where, "margin", margin)
    sim, positive, negative = _check_inputs(similarity, positive, negative, reduction, where)
    if triplets is not None:
        triplets = _check_triplets(triplets, sim.shape, where)
    per_anchor, valid = _triplet_per_anchor(
        sim,
        positive,
        negative,
        triplets,
        lambda s_ap, s_an: torch.relu(margin - s_ap + s_an),
        hinge_margin=margin,
    )
    return reduce_values(per_anchor, valid, weights, reduction, where=where)


# --------------------------------------------------------------------------------------------
# Softmax (InfoNCE family)


def info_nce_per_anchor(
    similarity: Tensor,
    positive: Tensor,
    negative: Tensor,
    *,
    temperature: float | Tensor = 0.07,
) -> tuple[Tensor, Tensor]:
    r"""The unreduced :func:`info_nce_loss`: ``(values [N], valid [N])``.

    ``valid`` is ``True`` for an anchor with a positive and a negative; ``values`` is 0 where
    not valid. Used to combine two directions or two views before one reduction
    (:func:`mean_of_views`).
    """
    return _info_nce_values(similarity, positive, negative, temperature, "info_nce_loss")


def _info_nce_values(
    similarity: Tensor,
    positive: Tensor,
    negative: Tensor,
    temperature: float | Tensor,
    where: str,
) -> tuple[Tensor, Tensor]:
    temperature = params.temperature(where, "temperature", temperature)
    sim, positive, negative = _check_inputs(
        similarity, positive, negative, "none", where, masked_later=True
    )
    logits = sim / temperature
    lse, has_neg = _masked_logsumexp(logits, negative)
    per_positive = softplus_exact(lse.unsqueeze(1) - logits)
    per_anchor, has_pos = masked_mean(per_positive, positive)
    valid = has_pos & has_neg
    return torch.where(valid, per_anchor, per_anchor.new_zeros(())), valid


def info_nce_loss(
    similarity: Tensor,
    positive: Tensor,
    negative: Tensor,
    *,
    temperature: float | Tensor = 0.07,
    weights: Tensor | None = None,
    reduction: Reduction = "mean",
) -> Tensor:
    r"""InfoNCE (van den Oord, Li and Vinyals 2018): softmax cross-entropy of each positive
    against the anchor's negatives.

    With logits :math:`z_{aj} = s_{aj} / \tau`,

    .. math::
        \ell_a = \frac{1}{|\mathcal P_a|} \sum_{p \in \mathcal P_a}
        -\log \frac{e^{z_{ap}}}{e^{z_{ap}} + \sum_{n \in \mathcal N_a} e^{z_{an}}}

    One positive per anchor in retrieval (a query and its key); several in the labels form
    (every same-label row), each against the negatives only (the other positives are not in
    the denominator; compare :func:`supcon_loss`).

    Args:
        similarity, positive, negative: ``[N, M]``, as in :func:`contrastive_loss`.
        temperature: :math:`\tau > 0`; a scalar tensor is accepted too (e.g.
            ``log_t.exp()`` of a learnable parameter, as
            ``rankloss.losses.InfoNCELoss(learnable_temperature=True)`` does).
        weights: ``[N]`` per-anchor weights, or ``None``.
        reduction: ``"mean"`` (over anchors with a positive and a negative), ``"sum"`` or
            ``"none"``.

    Returns:
        A scalar, or ``[N]`` with ``reduction="none"``.

    Reference: van den Oord, Li and Vinyals, "Representation Learning with Contrastive
    Predictive Coding", 2018. Cost: :math:`O(NM)` time and memory
    (:func:`chunked_info_nce_loss`: :math:`O(N \cdot \text{chunk})` memory).

    >>> s = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    >>> eye = torch.eye(2, dtype=torch.bool)
    >>> info_nce_loss(s, eye, ~eye, temperature=1.0)
    tensor(0.3133)
    """
    where = "info_nce_loss"
    params.choice(where, "reduction", reduction, REDUCTIONS)
    values, valid = info_nce_per_anchor(similarity, positive, negative, temperature=temperature)
    return reduce_values(values, valid, weights, reduction, where=where)


def mean_of_views(values: Tensor, valid: Tensor, views: int = 2) -> tuple[Tensor, Tensor]:
    r"""Average ``views`` blocks of per-anchor values into one value per sample.

    ``values [V N]`` and ``valid [V N]`` hold ``V`` blocks of ``N`` rows, row ``v N + i`` being
    view ``v`` of sample ``i`` (or direction ``v`` of pair ``i``). Returns ``([N], [N])``: the
    mean over the valid views of each sample, and whether it had one.
    """
    if values.shape != valid.shape or values.dim() != 1 or values.shape[0] % views:
        raise ValueError(
            f"mean_of_views: values {shape_str(values)} and valid {shape_str(valid)} must be "
            f"[V * N] with V = {views}"
        )
    per_view = torch.where(valid, values, values.new_zeros(())).reshape(views, -1)
    count = valid.reshape(views, -1).sum(0)
    return per_view.sum(0) / count.clamp(min=1).to(values.dtype), count > 0


def nt_xent_loss(
    similarity: Tensor,
    positive: Tensor,
    negative: Tensor,
    *,
    temperature: float | Tensor = 0.5,
    weights: Tensor | None = None,
    reduction: Reduction = "mean",
) -> Tensor:
    r"""NT-Xent, the normalised temperature-scaled cross-entropy of SimCLR (Chen et al. 2020).

    The rows of ``similarity`` are the :math:`2N` embeddings :math:`w = [u; v]` of two views:
    row :math:`i` is view :math:`u_i` and row :math:`N + i` view :math:`v_i` of sample
    :math:`i`. Each row is an anchor of :func:`info_nce_loss`; the value of a sample is the
    mean over its two views:

    .. math::
        \ell_i = \tfrac12\bigl(\ell^{\text{InfoNCE}}_{u_i} + \ell^{\text{InfoNCE}}_{v_i}\bigr),
        \qquad
        \ell^{\text{InfoNCE}}_{u_i} = -\log\frac{e^{s(u_i, v_i)/\tau}}
        {\sum_{k \ne i} e^{s(w_i, w_k)/\tau}}

    (with one positive, the other view, and every other embedding a negative, as SimCLR).

    Args:
        similarity: ``[2N, M]``, rows ``[view1; view2]``.
        positive, negative: ``[2N, M]`` bool.
        temperature: :math:`\tau > 0` (or a scalar tensor).
        weights: ``[N]`` per-sample weights, or ``None``.
        reduction: ``"mean"`` (over samples with a valid view), ``"sum"`` or ``"none"``
            (``[N]``).

    Returns:
        A scalar, or ``[N]`` with ``reduction="none"``.

    Reference: Chen, Kornblith, Norouzi and Hinton, "A Simple Framework for Contrastive
    Learning of Visual Representations", ICML 2020. Cost: :math:`O(NM)` time and memory.
    """
    where = "nt_xent_loss"
    params.choice(where, "reduction", reduction, REDUCTIONS)
    if isinstance(similarity, Tensor) and similarity.dim() == 2 and similarity.shape[0] % 2:
        raise ValueError(
            f"{where}: similarity must have 2N rows (two views of N samples), got "
            f"{shape_str(similarity)}"
        )
    values, valid = _info_nce_values(similarity, positive, negative, temperature, where)
    values, valid = mean_of_views(values, valid, 2)
    return reduce_values(values, valid, weights, reduction, where=where)


def supcon_loss(
    similarity: Tensor,
    positive: Tensor,
    negative: Tensor,
    *,
    temperature: float | Tensor = 0.1,
    weights: Tensor | None = None,
    reduction: Reduction = "mean",
) -> Tensor:
    r"""Supervised contrastive loss (Khosla et al., NeurIPS 2020), the :math:`L^{sup}_{out}` form.

    .. math::
        \ell_a = -\frac{1}{|\mathcal P_a|}\sum_{p \in \mathcal P_a}
        \log\frac{e^{z_{ap}}}{\sum_{j \in \mathcal A_a} e^{z_{aj}}}, \qquad z = s/\tau

    where :math:`\mathcal A_a = \mathcal P_a \cup \mathcal N_a` (every candidate but the anchor
    itself). Unlike :func:`info_nce_loss`, the other positives stay in the denominator.

    Args:
        similarity, positive, negative: ``[N, M]``, as in :func:`contrastive_loss`.
        temperature: :math:`\tau > 0` (or a scalar tensor).
        weights: ``[N]`` per-anchor weights, or ``None``.
        reduction: ``"mean"`` (over anchors with a positive), ``"sum"`` or ``"none"``.

    Returns:
        A scalar, or ``[N]`` with ``reduction="none"``.

    Reference: Khosla et al., "Supervised Contrastive Learning", NeurIPS 2020.
    Cost: :math:`O(NM)` time and memory.
    """
    where = "supcon_loss"
    temperature = params.temperature(where, "temperature", temperature)
    sim, positive, negative = _check_inputs(
        similarity, positive, negative, reduction, where, masked_later=True
    )
    logits = sim / temperature
    lse, _ = _masked_logsumexp(logits, positive | negative)
    mean_pos, has_pos = masked_mean(logits, positive)
    return reduce_values(lse - mean_pos, has_pos, weights, reduction, where=where)


# --------------------------------------------------------------------------------------------
# Memory-bounded InfoNCE on candidates


def chunked_info_nce_per_anchor(
    candidates: Candidates,
    *,
    similarity: Similarity = "cosine",
    temperature: float | Tensor = 0.07,
    chunk_size: int = 1024,
) -> tuple[Tensor, Tensor]:
    """The unreduced :func:`chunked_info_nce_loss`: ``(values [N], valid [N])``."""
    where = "chunked_info_nce_loss"
    if not isinstance(candidates, Candidates):
        raise TypeError(
            f"{where}: candidates must be rankloss._core.candidates.Candidates (from "
            f"build_candidates), got {type(candidates).__name__}"
        )
    params.choice(where, "similarity", similarity, CHUNKED_SIMILARITIES)
    temperature = params.temperature(where, "temperature", temperature)
    chunk = params.positive_int(where, "chunk_size", chunk_size)
    queries, keys = candidates.queries, candidates.keys
    if similarity == "cosine":
        queries = F.normalize(queries, dim=1, eps=1e-12)
        keys = F.normalize(keys, dim=1, eps=1e-12)
    values, valid = chunked_info_nce(queries / temperature, keys, candidates, chunk)
    return values, valid


def chunked_supcon_per_anchor(
    candidates: Candidates,
    *,
    similarity: Similarity = "cosine",
    temperature: float | Tensor = 0.1,
    chunk_size: int = 1024,
) -> tuple[Tensor, Tensor]:
    r"""The unreduced :func:`supcon_loss` in blocks of candidates: ``(values [N], valid [N])``.

    .. math::
        \ell_a = \log\sum_{j \in \mathcal P_a \cup \mathcal N_a} e^{z_{aj}}
        - \frac{1}{|\mathcal P_a|}\sum_{p \in \mathcal P_a} z_{ap}, \qquad z = s/\tau

    One forward pass over blocks of ``chunk_size`` candidates (a running log-sum-exp, the
    positive logits summed on the way); backward recomputes each block, so memory is
    :math:`O(Nd + N \cdot \text{chunk})` instead of :math:`O(NM)`.

    Args:
        candidates: from :func:`rankloss._core.candidates.build_candidates`.
        similarity: ``"dot"`` or ``"cosine"``.
        temperature: :math:`\tau > 0` (or a scalar tensor, which gets a gradient).
        chunk_size: candidates per block (an int >= 1).

    Returns:
        ``values [N]`` (0 where not valid) and ``valid [N]`` (the anchor has a positive).

    Reference: Khosla et al., "Supervised Contrastive Learning", NeurIPS 2020. Cost:
    :math:`O(NMd)` time (forward once, backward once more).
    """
    where = "chunked_supcon_loss"
    queries, keys, chunk, temperature = _chunked_inputs(
        candidates, similarity, temperature, chunk_size, where
    )
    return chunked_supcon(queries / temperature, keys, candidates, chunk)


def _chunked_inputs(
    candidates: Candidates,
    similarity: str,
    temperature: float | Tensor,
    chunk_size: int,
    where: str,
) -> tuple[Tensor, Tensor, int, float | Tensor]:
    if not isinstance(candidates, Candidates):
        raise TypeError(
            f"{where}: candidates must be rankloss._core.candidates.Candidates (from "
            f"build_candidates), got {type(candidates).__name__}"
        )
    params.choice(where, "similarity", similarity, CHUNKED_SIMILARITIES)
    temperature = params.temperature(where, "temperature", temperature)
    chunk = params.positive_int(where, "chunk_size", chunk_size)
    queries, keys = candidates.queries, candidates.keys
    if similarity == "cosine":
        queries = F.normalize(queries, dim=1, eps=1e-12)
        keys = F.normalize(keys, dim=1, eps=1e-12)
    return queries, keys, chunk, temperature


def chunked_info_nce_loss(
    candidates: Candidates,
    *,
    similarity: Similarity = "cosine",
    temperature: float | Tensor = 0.07,
    chunk_size: int = 1024,
    weights: Tensor | None = None,
    reduction: Reduction = "mean",
) -> Tensor:
    r""":func:`info_nce_loss` computed in blocks of candidates: memory
    :math:`O(Nd + N \cdot \text{chunk})` instead of :math:`O(NM)`.

    Same value as :func:`info_nce_loss` on ``pairwise_similarity(queries, keys)`` and
    ``candidates.masks()`` (within float32 rounding):

    .. math::
        \ell_a = \frac{1}{|\mathcal P_a|} \sum_{p \in \mathcal P_a}
        \operatorname{softplus}\Bigl(\log\sum_{n \in \mathcal N_a} e^{z_{an}} - z_{ap}\Bigr),
        \qquad z = s / \tau

    Forward runs twice over blocks of ``chunk_size`` candidates (a running log-sum-exp over the
    negatives, then the positive terms, gathered at the positive entries only); backward
    recomputes each block's logits and accumulates the gradient in closed form, so no
    ``[N, M]`` tensor is ever held.

    Args:
        candidates: queries ``[N, d]`` against keys ``[M, d]`` with what makes a pair, from
            :func:`rankloss._core.candidates.build_candidates`.
        similarity: ``"dot"`` or ``"cosine"`` (the blocks are matrix products).
        temperature: :math:`\tau > 0` (or a scalar tensor, which gets a gradient).
        chunk_size: candidates per block (an int >= 1).
        weights: ``[N]`` per-anchor weights, or ``None``.
        reduction: ``"mean"`` (over anchors with a positive and a negative), ``"sum"`` or
            ``"none"``.

    Returns:
        A scalar, or ``[N]`` with ``reduction="none"``.

    Reference: van den Oord, Li and Vinyals, "Representation Learning with Contrastive
    Predictive Coding", 2018. Cost: :math:`O(NMd)` time (forward twice, backward once more),
    :math:`O(Nd + N \cdot \text{chunk})` memory.
    """
    where = "chunked_info_nce_loss"
    params.choice(where, "reduction", reduction, REDUCTIONS)
    values, valid = chunked_info_nce_per_anchor(
        candidates, similarity=similarity, temperature=temperature, chunk_size=chunk_size
    )
    return reduce_values(values, valid, weights, reduction, where=where)

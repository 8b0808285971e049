r"""Pair and tuple embedding losses: lifted structure, N-pairs, angular, margin, tuplet margin,
decoupled contrastive and guided InfoNCE, on the similarity core.

Every loss here is a function of a **similarity matrix** and two bool masks, as in
:mod:`rankloss.functional.embedding`::

    loss(similarity [N, M], positive [N, M], negative [N, M], *, <hyper-parameters>,
         weights=None, reduction="mean")

Row ``a`` is an anchor, column ``j`` a candidate; ``similarity`` is higher for closer pairs
(one polarity: margins read the same way for every similarity). An entry in neither mask is not
a pair: it is replaced by 0 before any arithmetic, so NaN or inf there changes neither the value
nor the gradients. Each loss computes **one value per anchor** and whether the anchor has
something to learn from, then reduces with :func:`rankloss._core.reduce.reduce_values`
(``"mean"`` is the weighted mean over those anchors). float16/bfloat16 inputs are computed in
float32.

Two losses look beyond the anchor's row. The lifted structure loss adds the negatives of the
*positive* :math:`p` to those of the anchor, and the angular loss uses the similarity of the
positive with each negative, :math:`s_{pn}`; both take ``key_similarity [M, M]``, the
similarity among the candidates (by default ``similarity`` itself, which is right when the
candidates are the anchors: the ``(embeddings, labels)`` form without references).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Literal

import torch
from torch import Tensor

from rankloss._core import params
from rankloss._core.reduce import REDUCTIONS, Reduction, masked_mean, reduce_values
from rankloss._core.validation import compute_dtype, shape_str
from rankloss.functional._chunked_contrastive import softplus_exact
from rankloss.functional.embedding import _check_inputs, _masked_logsumexp

__all__ = [
    "lifted_structure_loss",
    "generalized_lifted_structure_loss",
    "n_pairs_loss",
    "n_pairs_per_anchor",
    "angular_loss",
    "margin_loss",
    "tuplet_margin_loss",
    "dcl_loss",
    "dclw_loss",
    "guided_info_nce_loss",
    "MARGIN_STRATEGIES",
    "MarginStrategy",
]

#: The type of ``margin_strategy``.
MarginStrategy = Literal["absolute", "relative"]

#: How :func:`guided_info_nce_loss` lowers the guide similarity of the positive by
#: ``guide_margin``: by the margin itself, or by the margin times its magnitude.
MARGIN_STRATEGIES = ("absolute", "relative")

#: Largest ``[c, M]`` block of positive pairs held at once by :func:`_per_positive_pair`.
_PAIR_BLOCK_ELEMENTS = 1 << 22


# --------------------------------------------------------------------------------------------
# Shared parts


def _check_side(
    value: object, like: Tensor, name: str, where: str, *, rows: int, boolean: bool = False
) -> Tensor:
    """A ``[rows, M]`` tensor beside ``similarity`` (a bool mask, or floating point)."""
    if not isinstance(value, Tensor):
        raise ValueError(f"{where}: {name} must be a torch.Tensor, got {type(value).__name__}")
    if boolean and value.dtype != torch.bool:
        raise ValueError(f"{where}: {name} must be a bool mask, got dtype {value.dtype}")
    if not boolean and not value.dtype.is_floating_point:
        raise ValueError(f"{where}: {name} must be floating point, got dtype {value.dtype}")
    expected = (rows, like.shape[1])
    if tuple(value.shape) != expected:
        raise ValueError(
            f"{where}: {name} has shape {shape_str(value)} but expected "
            f"[{expected[0]}, {expected[1]}] (similarity has shape {shape_str(like)})"
        )
    if value.device != like.device:
        raise ValueError(f"{where}: {name} is on {value.device} but similarity is on {like.device}")
    return value


def _key_structure(
    similarity: Tensor,
    negative: Tensor,
    key_similarity: Tensor | None,
    key_negative: Tensor | None,
    sim: Tensor,
    where: str,
    *,
    needs_negative: bool,
) -> tuple[Tensor, Tensor | None]:
    """The similarity among the candidates ``[M, M]`` (and the candidates' own negatives):
    given, or ``similarity`` itself when the candidates are the anchors (``N == M``)."""
    m = similarity.shape[1]
    if key_similarity is None:
        if key_negative is not None:
            raise ValueError(f"{where}: key_negative was given without key_similarity")
        if similarity.shape[0] != m:
            raise ValueError(
                f"{where}: key_similarity [M, M] is required when the candidates are not the "
                f"anchors (similarity has shape {shape_str(similarity)})"
            )
        return sim, negative if needs_negative else None
    _check_side(key_similarity, similarity, "key_similarity", where, rows=m)
    keys = key_similarity.to(sim.dtype)
    if not needs_negative:
        return keys, None
    if key_negative is None:
        raise ValueError(f"{where}: key_negative [M, M] is required with key_similarity")
    _check_side(key_negative, similarity, "key_negative", where, rows=m, boolean=True)
    return torch.where(key_negative, keys, keys.new_zeros(())), key_negative


def _per_positive_pair(
    sim: Tensor, positive: Tensor, value: Callable[[Tensor, Tensor], Tensor]
) -> tuple[Tensor, Tensor]:
    """Mean of ``value(anchor_index [c], positive_index [c]) -> [c]`` over each anchor's
    positives, and which anchors have one; positive pairs go through blocks of at most
    :data:`_PAIR_BLOCK_ELEMENTS` ``[c, M]`` entries."""
    n, m = sim.shape
    anchor, other = positive.nonzero(as_tuple=True)
    total = sim.new_zeros(n) + 0.0 * sim.sum()  # connected when there is no pair
    step = max(1, _PAIR_BLOCK_ELEMENTS // max(m, 1))
    for start in range(0, anchor.shape[0], step):
        a, p = anchor[start : start + step], other[start : start + step]
        total = total.index_add(0, a, value(a, p))
    count = positive.sum(1)
    return total / count.clamp(min=1).to(sim.dtype), count > 0


def _finish(
    values: Tensor, valid: Tensor, weights: Tensor | None, reduction: str, where: str
) -> Tensor:
    values = torch.where(valid, values, values.new_zeros(()))
    return reduce_values(values, valid, weights, reduction, where=where)


# --------------------------------------------------------------------------------------------
# Lifted structure


def lifted_structure_loss(
    similarity: Tensor,
    positive: Tensor,
    negative: Tensor,
    *,
    key_similarity: Tensor | None = None,
    key_negative: Tensor | None = None,
    margin: float = 1.0,
    weights: Tensor | None = None,
    reduction: Reduction = "mean",
) -> Tensor:
    r"""Lifted structured loss, the smooth form (Oh Song, Xiang, Jegelka and Savarese 2016).

    For a positive pair :math:`(a, p)` the negatives of the anchor and those of the positive
    are pushed below the pair's similarity by the margin :math:`\alpha`:

    .. math::
        J_{ap} = \log\Bigl(\sum_{n \in \mathcal N_a} e^{\alpha + s_{an}}
                 + \sum_{n \in \mathcal N_p} e^{\alpha + s^{K}_{pn}}\Bigr) - s_{ap},
        \qquad
        \ell_a = \frac{1}{2|\mathcal P_a|}\sum_{p \in \mathcal P_a} [J_{ap}]_+^2

    (the paper's :math:`D = -s`; its :math:`\tilde J = \frac{1}{2|\mathcal P|}\sum [\tilde
    J_{ij}]_+^2` is the mean of :math:`\ell_a` when every anchor has as many positives).
    :math:`s^K` is ``key_similarity`` and :math:`\mathcal N_p` the negatives of candidate
    :math:`p` (``key_negative``). A pair whose two negative sets are both empty has no term
    and is left out of the mean (and of :math:`|\mathcal P_a|`).

    Args:
        similarity: ``[N, M]`` similarity of each anchor with each candidate (higher = closer).
        positive: ``[N, M]`` bool, the positive pairs :math:`\mathcal P_a`.
        negative: ``[N, M]`` bool, the negative pairs :math:`\mathcal N_a`.
        key_similarity: ``[M, M]`` similarity among the candidates, or ``None`` when the
            candidates are the anchors (``similarity`` is square: the labels form).
        key_negative: ``[M, M]`` bool, the negatives of each candidate (with
            ``key_similarity``).
        margin: :math:`\alpha \ge 0`, in similarity units.
        weights: ``[N]`` per-anchor weights, or ``None``.
        reduction: ``"mean"`` (over anchors with a positive pair that has a negative),
            ``"sum"`` or ``"none"``.

    Returns:
        A scalar, or ``[N]`` with ``reduction="none"``.

    Reference: Oh Song, Xiang, Jegelka and Savarese, "Deep Metric Learning via Lifted
    Structured Feature Embedding", CVPR 2016. Cost: :math:`O(NM + M^2)` time and memory.
    """
    where = "lifted_structure_loss"
    margin = params.nonnegative(where, "margin", margin)
    sim, positive, negative = _check_inputs(similarity, positive, negative, reduction, where)
    keys, keys_negative = _key_structure(
        similarity, negative, key_similarity, key_negative, sim, where, needs_negative=True
    )
    assert keys_negative is not None
    anchor_lse, anchor_has = _masked_logsumexp(margin + sim, negative)
    key_lse, key_has = _masked_logsumexp(margin + keys, keys_negative)
    a, k = anchor_lse.unsqueeze(1), key_lse.unsqueeze(0)
    a_has, k_has = anchor_has.unsqueeze(1), key_has.unsqueeze(0)
    both = torch.logaddexp(a, k)
    lse = torch.where(a_has & k_has, both, torch.where(a_has, a, k))
    pair = positive & (a_has | k_has)
    hinge = torch.relu(torch.where(pair, lse - sim, sim.new_zeros(()))) ** 2
    values, valid = masked_mean(hinge / 2, pair)
    return _finish(values, valid, weights, reduction, where)


def generalized_lifted_structure_loss(
    similarity: Tensor,
    positive: Tensor,
    negative: Tensor,
    *,
    margin: float = 1.0,
    weights: Tensor | None = None,
    reduction: Reduction = "mean",
) -> Tensor:
    r"""Generalised lifted structure loss (Hermans, Beyer and Leibe 2017), on similarities.

    .. math::
        \ell_a = \Bigl[\log\sum_{p \in \mathcal P_a} e^{-s_{ap}}
                 + \log\sum_{n \in \mathcal N_a} e^{m + s_{an}}\Bigr]_+

    (the paper's :math:`D = -s`): a smooth batch-hard triplet loss, one term per anchor, with
    no look at the positives' own negatives.

    Args:
        similarity, positive, negative: ``[N, M]``, as in :func:`lifted_structure_loss`.
        margin: :math:`m \ge 0`, in similarity units.
        weights: ``[N]`` per-anchor weights, or ``None``.
        reduction: ``"mean"`` (over anchors with a positive and a negative), ``"sum"`` or
            ``"none"``.

    Returns:
        A scalar, or ``[N]`` with ``reduction="none"``.

    Reference: Hermans, Beyer and Leibe, "In Defense of the Triplet Loss for Person
    Re-Identification", 2017. Cost: :math:`O(NM)` time and memory.
    """
    where = "generalized_lifted_structure_loss"
    margin = params.nonnegative(where, "margin", margin)
    sim, positive, negative = _check_inputs(similarity, positive, negative, reduction, where)
    pos_lse, has_pos = _masked_logsumexp(-sim, positive)
    neg_lse, has_neg = _masked_logsumexp(margin + sim, negative)
    valid = has_pos & has_neg
    values = torch.relu(torch.where(valid, pos_lse + neg_lse, sim.new_zeros(())))
    return _finish(values, valid, weights, reduction, where)


# --------------------------------------------------------------------------------------------
# N-pairs and the angular loss


def n_pairs_per_anchor(
    similarity: Tensor, positive: Tensor, negative: Tensor
) -> tuple[Tensor, Tensor]:
    """The unreduced :func:`n_pairs_loss`: ``(values [N], valid [N])``."""
    return _n_pairs_values(similarity, positive, negative, "n_pairs_loss")


def _n_pairs_values(
    similarity: Tensor, positive: Tensor, negative: Tensor, where: str
) -> tuple[Tensor, Tensor]:
    sim, positive, negative = _check_inputs(similarity, positive, negative, "none", where)
    lse, has_neg = _masked_logsumexp(sim, negative)
    per_positive = softplus_exact(torch.where(positive, lse.unsqueeze(1) - sim, sim.new_zeros(())))
    values, has_pos = masked_mean(per_positive, positive)
    valid = has_pos & has_neg
    return torch.where(valid, values, values.new_zeros(())), valid


def n_pairs_loss(
    similarity: Tensor,
    positive: Tensor,
    negative: Tensor,
    *,
    weights: Tensor | None = None,
    reduction: Reduction = "mean",
) -> Tensor:
    r"""Multi-class N-pair loss (Sohn 2016): each positive against all the anchor's negatives.

    .. math::
        \ell_a = \frac{1}{|\mathcal P_a|}\sum_{p \in \mathcal P_a}
        \log\Bigl(1 + \sum_{n \in \mathcal N_a} e^{s_{an} - s_{ap}}\Bigr)

    With the paper's inner-product similarity and a batch of :math:`N` pairs
    :math:`(x_i, x_i^+)` of distinct classes (``loss(anchors, keys=positives)``), the
    negatives of :math:`x_i` are the other classes' positives :math:`x_j^+`. It is
    :func:`~rankloss.functional.info_nce_loss` at temperature 1; the L2 regulariser of the
    paper is an option of :class:`rankloss.losses.NPairsLoss`.

    Args:
        similarity, positive, negative: ``[N, M]``, as in :func:`lifted_structure_loss`.
        weights: ``[N]`` per-anchor weights, or ``None``.
        reduction: ``"mean"`` (over anchors with a positive and a negative), ``"sum"`` or
            ``"none"``.

    Returns:
        A scalar, or ``[N]`` with ``reduction="none"``.

    Reference: Sohn, "Improved Deep Metric Learning with Multi-class N-pair Loss Objective",
    NeurIPS 2016. Cost: :math:`O(NM)` time and memory.
    """
    where = "n_pairs_loss"
    params.choice(where, "reduction", reduction, REDUCTIONS)
    values, valid = _n_pairs_values(similarity, positive, negative, where)
    return _finish(values, valid, weights, reduction, where)


def angular_loss(
    similarity: Tensor,
    positive: Tensor,
    negative: Tensor,
    *,
    key_similarity: Tensor | None = None,
    angle: float = 40.0,
    weights: Tensor | None = None,
    reduction: Reduction = "mean",
) -> Tensor:
    r"""Angular loss, the N-pair form (Wang, Zhou, Wen, Liu and Lin 2017).

    For a positive pair :math:`(a, p)` and a negative :math:`n`, on unit embeddings
    :math:`(x_a + x_p)^\top x_n = s_{an} + s_{pn}`, so with :math:`t = \tan^2\alpha`

    .. math::
        f_{apn} = 4t\,(s_{an} + s^{K}_{pn}) - 2(1 + t)\,s_{ap}, \qquad
        \ell_a = \frac{1}{|\mathcal P_a|}\sum_{p \in \mathcal P_a}
        \log\Bigl(1 + \sum_{n \in \mathcal N_a} e^{f_{apn}}\Bigr)

    which bounds the angle at the negative of the triangle :math:`(x_a, x_p, x_n)` by
    :math:`\alpha`. The paper's similarity is the inner product of L2-normalised embeddings
    (``"cosine"``); :math:`s^K` is ``key_similarity``. pytorch-metric-learning's
    ``AngularLoss`` normalises the anchor and the positive but not the negatives
    :math:`x_n`; this follows the paper (every embedding normalised), so the two agree on unit
    embeddings only.

    Args:
        similarity, positive, negative: ``[N, M]``, as in :func:`lifted_structure_loss`.
        key_similarity: ``[M, M]`` similarity among the candidates (:math:`s_{pn}`, read
            where :math:`n` is a negative of an anchor of :math:`p`), or ``None`` when the
            candidates are the anchors (``similarity`` is square; :math:`s_{pn}` is then read
            from ``similarity`` at pairs of the masks, as with label masks, where a negative
            of :math:`a` is one of its positive :math:`p` too).
        angle: :math:`\alpha` in degrees, in (0, 90).
        weights: ``[N]`` per-anchor weights, or ``None``.
        reduction: ``"mean"`` (over anchors with a positive and a negative), ``"sum"`` or
            ``"none"``.

    Returns:
        A scalar, or ``[N]`` with ``reduction="none"``.

    Reference: Wang, Zhou, Wen, Liu and Lin, "Deep Metric Learning with Angular Loss", ICCV
    2017. Cost: :math:`O(PM)` time for :math:`P` positive pairs (blocks of bounded
    memory), :math:`O(NM + M^2)` memory.
    """
    where = "angular_loss"
    angle = params.in_range(where, "angle", angle, 0.0, 90.0, closed=False)
    sim, positive, negative = _check_inputs(similarity, positive, negative, reduction, where)
    keys, _ = _key_structure(
        similarity, negative, key_similarity, None, sim, where, needs_negative=False
    )
    t = math.tan(math.radians(angle)) ** 2

    def value(a: Tensor, p: Tensor) -> Tensor:
        neg = negative[a]
        f = 4.0 * t * (sim[a] + keys[p]) - 2.0 * (1.0 + t) * sim[a, p].unsqueeze(1)
        lse, _ = _masked_logsumexp(torch.where(neg, f, f.new_zeros(())), neg)
        return torch.where(neg.any(1), softplus_exact(lse), lse.new_zeros(()))

    values, has_pos = _per_positive_pair(sim, positive, value)
    valid = has_pos & negative.any(1)
    return _finish(values, valid, weights, reduction, where)


# --------------------------------------------------------------------------------------------
# Margin losses


def margin_loss(
    similarity: Tensor,
    positive: Tensor,
    negative: Tensor,
    *,
    margin: float = 0.2,
    beta: float | Tensor = 0.3,
    weights: Tensor | None = None,
    reduction: Reduction = "mean",
) -> Tensor:
    r"""Margin loss of "Sampling Matters" (Wu, Manmatha, Smola and Krähenbühl 2017), on
    similarities.

    A boundary :math:`\beta` separates the classes; each pair is a hinge on its side of it:

    .. math::
        \ell_a = \frac{1}{|\mathcal P_a| + |\mathcal N_a|}\Bigl(
            \sum_{p \in \mathcal P_a} [\alpha + \beta_a - s_{ap}]_+
          + \sum_{n \in \mathcal N_a} [\alpha - \beta_a + s_{an}]_+\Bigr)

    (the paper's :math:`(\alpha + y_{ij}(D_{ij} - \beta))_+` with :math:`D = -s` and
    :math:`\beta_s = -\beta_D`: positives above :math:`\beta + \alpha`, negatives below
    :math:`\beta - \alpha`). The paper sums over the sampled pairs; here each anchor's pairs
    are averaged (``miner="distance_weighted"`` samples the paper's negatives).
    pytorch-metric-learning's ``MarginLoss`` differs: it sums over triplets and divides by
    the number of *non-zero* pair terms.

    Args:
        similarity, positive, negative: ``[N, M]``, as in :func:`lifted_structure_loss`.
        margin: :math:`\alpha \ge 0`, in similarity units.
        beta: :math:`\beta`: a number, a scalar tensor, or ``[N]`` per anchor (e.g. the
            anchor's class boundary, learnable in :class:`rankloss.losses.MarginLoss`).
        weights: ``[N]`` per-anchor weights, or ``None``.
        reduction: ``"mean"`` (over anchors with any pair), ``"sum"`` or ``"none"``.

    Returns:
        A scalar, or ``[N]`` with ``reduction="none"``.

    Reference: Wu, Manmatha, Smola and Krähenbühl, "Sampling Matters in Deep Embedding
    Learning", ICCV 2017. Cost: :math:`O(NM)` time and memory.
    """
    where = "margin_loss"
    margin = params.nonnegative(where, "margin", margin)
    sim, positive, negative = _check_inputs(similarity, positive, negative, reduction, where)
    if isinstance(beta, Tensor):
        if beta.dim() == 0 or beta.shape == (1,):
            beta_a = beta.reshape(()).to(sim.dtype)
        elif beta.shape == (sim.shape[0],):
            beta_a = beta.to(sim.dtype).unsqueeze(1)
        else:
            raise ValueError(
                f"{where}: beta must be a number, a scalar or [{sim.shape[0]}] (one per anchor), "
                f"got shape {shape_str(beta)}"
            )
        if not torch.isfinite(beta.detach()).all():
            raise ValueError(f"{where}: beta must be finite")
    else:
        beta_a = torch.tensor(
            params.number(where, "beta", beta), dtype=sim.dtype, device=sim.device
        )
    zero = sim.new_zeros(())
    pos = torch.where(positive, torch.relu(margin + beta_a - sim), zero)
    neg = torch.where(negative, torch.relu(margin - beta_a + sim), zero)
    count = positive.sum(1) + negative.sum(1)
    values = (pos + neg).sum(1) / count.clamp(min=1).to(sim.dtype)
    return _finish(values, count > 0, weights, reduction, where)


def _shifted_positive_cosine(sim: Tensor, angular_margin: float) -> Tensor:
    r""":math:`\cos(\theta - \beta)` for :math:`\cos\theta` = ``sim`` clamped to [-1, 1].

    :math:`\cos\theta\cos\beta + \sin\theta\sin\beta` with :math:`\sin\theta =
    \sqrt{1 - \cos^2\theta}`. Where :math:`\sin^2\theta \le 10^{-12}` the value is exact
    but :math:`\sin\theta` is held constant, so the gradient stays finite at
    :math:`\theta = 0` (where the exact one is infinite).
    """
    c = sim.clamp(-1.0, 1.0)
    square = 1.0 - c * c
    small = square <= 1e-12
    sin = torch.where(
        small,
        square.clamp(min=0.0).sqrt().detach(),
        torch.where(small, torch.ones_like(square), square).sqrt(),
    )
    return c * math.cos(angular_margin) + sin * math.sin(angular_margin)


def tuplet_margin_loss(
    similarity: Tensor,
    positive: Tensor,
    negative: Tensor,
    *,
    angular_margin: float = 5.73,
    scale: float = 64.0,
    weights: Tensor | None = None,
    reduction: Reduction = "mean",
) -> Tensor:
    r"""Tuplet margin loss (Yu and Tao 2019): an N-pair loss on scaled cosines with a slack
    angular margin on the positive.

    .. math::
        \ell_a = \frac{1}{|\mathcal P_a|}\sum_{p \in \mathcal P_a}
        \log\Bigl(1 + \sum_{n \in \mathcal N_a}
        e^{\gamma(\cos\theta_{an} - \cos(\theta_{ap} - \beta))}\Bigr),
        \qquad \cos\theta = s

    The margin :math:`\beta` makes the positive's term *easier* (the paper's slack margin,
    which keeps some spread within a class). Meant for the cosine similarity; another
    similarity is clamped to [-1, 1] before the angle :math:`\theta_{ap}` is taken. The
    paper pairs it with an intra-pair variance loss, not included here.

    Args:
        similarity, positive, negative: ``[N, M]``, as in :func:`lifted_structure_loss`.
        angular_margin: :math:`\beta` in degrees, in [0, 90) (the paper's 0.1 rad = 5.73).
        scale: :math:`\gamma > 0`.
        weights: ``[N]`` per-anchor weights, or ``None``.
        reduction: ``"mean"`` (over anchors with a positive and a negative), ``"sum"`` or
            ``"none"``.

    Returns:
        A scalar, or ``[N]`` with ``reduction="none"``.

    Reference: Yu and Tao, "Deep Metric Learning with Tuplet Margin Loss", ICCV 2019.
    Cost: :math:`O(NM)` time and memory.
    """
    where = "tuplet_margin_loss"
    angular_margin = params.in_range(where, "angular_margin", angular_margin, 0.0, 90.0)
    if angular_margin == 90.0:
        raise ValueError(f"{where}: angular_margin must be in [0.0, 90.0), got 90.0")
    scale = params.positive(where, "scale", scale)
    sim, positive, negative = _check_inputs(similarity, positive, negative, reduction, where)
    lse, has_neg = _masked_logsumexp(scale * sim, negative)
    shifted = _shifted_positive_cosine(sim, math.radians(angular_margin))
    per_positive = softplus_exact(
        torch.where(positive, lse.unsqueeze(1) - scale * shifted, sim.new_zeros(()))
    )
    values, has_pos = masked_mean(per_positive, positive)
    return _finish(values, has_pos & has_neg, weights, reduction, where)


# --------------------------------------------------------------------------------------------
# Decoupled contrastive


def dcl_loss(
    similarity: Tensor,
    positive: Tensor,
    negative: Tensor,
    *,
    temperature: float | Tensor = 0.1,
    weights: Tensor | None = None,
    reduction: Reduction = "mean",
) -> Tensor:
    r"""Decoupled contrastive loss (Yeh et al. 2022): InfoNCE without the positive in the
    denominator.

    .. math::
        \ell_a = -\frac{1}{|\mathcal P_a|}\sum_{p \in \mathcal P_a} z_{ap}
                 + \log\sum_{n \in \mathcal N_a} e^{z_{an}}, \qquad z = s / \tau

    Removing the positive from the softmax removes the factor that couples the gradients of
    the positive and the negatives, which makes training much less sensitive to the batch
    size (the paper's finding). For the
    paper's two views, ``loss(torch.cat([v1, v2]), torch.cat([ids, ids]))`` makes every other
    embedding but the anchor's other view a negative.

    Args:
        similarity, positive, negative: ``[N, M]``, as in :func:`lifted_structure_loss`.
        temperature: :math:`\tau > 0` (or a scalar tensor).
        weights: ``[N]`` per-anchor weights, or ``None``.
        reduction: ``"mean"`` (over anchors with a positive and a negative), ``"sum"`` or
            ``"none"``.

    Returns:
        A scalar, or ``[N]`` with ``reduction="none"``. The value may be negative.

    Reference: Yeh, Hong, Hsu, Liu, Chen and LeCun, "Decoupled Contrastive Learning", ECCV
    2022. Cost: :math:`O(NM)` time and memory.
    """
    where = "dcl_loss"
    temperature = params.temperature(where, "temperature", temperature)
    sim, positive, negative = _check_inputs(similarity, positive, negative, reduction, where)
    logits = sim / temperature
    lse, has_neg = _masked_logsumexp(logits, negative)
    pos_mean, has_pos = masked_mean(logits, positive)
    return _finish(lse - pos_mean, has_pos & has_neg, weights, reduction, where)


def dclw_loss(
    similarity: Tensor,
    positive: Tensor,
    negative: Tensor,
    *,
    temperature: float | Tensor = 0.1,
    sigma: float = 0.5,
    cosine: Tensor | None = None,
    weights: Tensor | None = None,
    reduction: Reduction = "mean",
) -> Tensor:
    r"""Decoupled contrastive loss with the von Mises-Fisher weighting of the positives
    (DCLW, Yeh et al. 2022).

    .. math::
        \ell_a = -\frac{1}{|\mathcal P_a|}\sum_{p \in \mathcal P_a} w_{ap}\,z_{ap}
                 + \log\sum_{n \in \mathcal N_a} e^{z_{an}}, \qquad
        w_{ap} = 2 - \frac{e^{c_{ap}/\sigma}}
                 {\frac{1}{|\mathcal P|}\sum_{(b, q) \in \mathcal P} e^{c_{bq}/\sigma}}

    with :math:`z = s/\tau`, :math:`c` the cosine similarity and :math:`\mathcal P` every
    positive pair of the batch: positives already close (relative to the batch) weigh less.
    The weights average to 1 over the batch and carry a gradient, as in the paper's code.

    Args:
        similarity, positive, negative: ``[N, M]``, as in :func:`lifted_structure_loss`.
        temperature: :math:`\tau > 0` (or a scalar tensor).
        sigma: :math:`\sigma > 0`, the concentration of the weighting.
        cosine: ``[N, M]`` cosine similarity of the pairs for the weights, or ``None`` to use
            ``similarity`` (when it is the cosine).
        weights: ``[N]`` per-anchor weights, or ``None``.
        reduction: ``"mean"`` (over anchors with a positive and a negative), ``"sum"`` or
            ``"none"``.

    Returns:
        A scalar, or ``[N]`` with ``reduction="none"``. The value may be negative.

    Reference: Yeh, Hong, Hsu, Liu, Chen and LeCun, "Decoupled Contrastive Learning", ECCV
    2022. Cost: :math:`O(NM)` time and memory.
    """
    where = "dclw_loss"
    temperature = params.temperature(where, "temperature", temperature)
    sigma = params.positive(where, "sigma", sigma)
    sim, positive, negative = _check_inputs(similarity, positive, negative, reduction, where)
    if cosine is None:
        cos = sim
    else:
        _check_side(cosine, similarity, "cosine", where, rows=similarity.shape[0])
        cos = cosine.to(compute_dtype(cosine.dtype)).to(sim.dtype)
    cos = torch.where(positive, cos, cos.new_zeros(()))
    count = positive.sum()
    flat = torch.where(positive, cos / sigma, cos.new_full((), -math.inf)).reshape(-1)
    if bool(count > 0):
        share = torch.softmax(flat, 0).reshape(positive.shape)
    else:
        share = cos.new_zeros(positive.shape)
    w = 2.0 - count.to(sim.dtype) * share
    logits = sim / temperature
    lse, has_neg = _masked_logsumexp(logits, negative)
    pos_mean, has_pos = masked_mean(w * logits, positive)
    return _finish(lse - pos_mean, has_pos & has_neg, weights, reduction, where)


# --------------------------------------------------------------------------------------------
# Guided InfoNCE (false-negative filtering by a guide model)


def guided_info_nce_loss(
    similarity: Tensor,
    positive: Tensor,
    negative: Tensor,
    *,
    guide_similarity: Tensor | None,
    temperature: float | Tensor = 0.01,
    guide_margin: float = 0.0,
    margin_strategy: MarginStrategy = "absolute",
    weights: Tensor | None = None,
    reduction: Reduction = "mean",
) -> Tensor:
    r"""InfoNCE whose negatives are filtered by a guide model's similarity (GISTEmbed,
    Solatorio 2024).

    A negative that the guide finds closer to the anchor than the positive (less a margin) is
    likely a false negative and leaves the denominator of that positive's term:

    .. math::
        \ell_a = \frac{1}{|\mathcal P_a|}\sum_{p \in \mathcal P_a}
        -\log\frac{e^{z_{ap}}}{e^{z_{ap}} + \sum_{n \in \mathcal N_{ap}} e^{z_{an}}},
        \quad
        \mathcal N_{ap} = \{n \in \mathcal N_a : g_{an} \le g_{ap} - \delta_{ap}\}

    with :math:`z = s/\tau`, :math:`g` = ``guide_similarity`` and :math:`\delta_{ap} = m`
    (``"absolute"``) or :math:`m|g_{ap}|` (``"relative"``). The guide is a constant: no
    gradient flows into it. With ``guide_similarity=None`` nothing is filtered
    (:func:`~rankloss.functional.info_nce_loss`).

    Args:
        similarity, positive, negative: ``[N, M]``, as in :func:`lifted_structure_loss`.
        guide_similarity: ``[N, M]`` the guide model's similarity of the same pairs, or
            ``None``.
        temperature: :math:`\tau > 0` (or a scalar tensor).
        guide_margin: :math:`m \ge 0`, in guide-similarity units (or a fraction, relative).
        margin_strategy: ``"absolute"`` or ``"relative"``.
        weights: ``[N]`` per-anchor weights, or ``None``.
        reduction: ``"mean"`` (over anchors with a positive and a negative before filtering;
            an anchor whose negatives are all filtered adds 0), ``"sum"`` or ``"none"``.

    Returns:
        A scalar, or ``[N]`` with ``reduction="none"``.

    Reference: Solatorio, "GISTEmbed: Guided In-sample Selection of Training Negatives for
    Text Embedding Fine-tuning", 2024. Cost: :math:`O(PM)` time for :math:`P` positive pairs
    (blocks of bounded memory), :math:`O(NM)` memory.
    """
    where = "guided_info_nce_loss"
    temperature = params.temperature(where, "temperature", temperature)
    guide_margin = params.nonnegative(where, "guide_margin", guide_margin)
    params.choice(where, "margin_strategy", margin_strategy, MARGIN_STRATEGIES)
    sim, positive, negative = _check_inputs(similarity, positive, negative, reduction, where)
    logits = sim / temperature
    has_neg = negative.any(1)
    if guide_similarity is None:
        lse, _ = _masked_logsumexp(logits, negative)
        per_positive = softplus_exact(
            torch.where(positive, lse.unsqueeze(1) - logits, sim.new_zeros(()))
        )
        values, has_pos = masked_mean(per_positive, positive)
        return _finish(values, has_pos & has_neg, weights, reduction, where)
    _check_side(guide_similarity, similarity, "guide_similarity", where, rows=sim.shape[0])
    guide = guide_similarity.detach().to(sim.dtype)
    guide = torch.where(positive | negative, guide, guide.new_zeros(()))
    if not torch.isfinite(guide).all():
        raise ValueError(f"{where}: guide_similarity must be finite at the pairs")

    def value(a: Tensor, p: Tensor) -> Tensor:
        g_ap = guide[a, p].unsqueeze(1)
        shift = guide_margin * g_ap.abs() if margin_strategy == "relative" else guide_margin
        kept = negative[a] & (guide[a] <= g_ap - shift)
        lse, any_kept = _masked_logsumexp(logits[a], kept)
        term = softplus_exact(torch.where(any_kept, lse - logits[a, p], lse.new_zeros(())))
        return torch.where(any_kept, term, term.new_zeros(()))

    values, has_pos = _per_positive_pair(sim, positive, value)
    return _finish(values, has_pos & has_neg, weights, reduction, where)

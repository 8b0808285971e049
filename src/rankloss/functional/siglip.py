r"""The sigmoid loss of SigLIP (Zhai et al. 2023): one binary classification per pair.

Every (anchor, candidate) pair is its own logistic problem, with logit
:math:`x_{aj} = t\,s_{aj} + b` and sign :math:`z_{aj} = +1` for a positive pair, :math:`-1`
for a negative one; there is no softmax over the candidates, so no log-sum-exp and no
normalisation across a row.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from rankloss._core import params
from rankloss._core.candidates import Candidates
from rankloss._core.reduce import REDUCTIONS, Reduction, checked_weights, reduce_values
from rankloss._core.similarity import Similarity
from rankloss.functional._chunked_contrastive import (
    chunked_siglip,
    chunked_siglip_reduced,
    softplus_exact,
)
from rankloss.functional.embedding import _check_inputs, _chunked_inputs

__all__ = [
    "siglip_loss",
    "siglip_per_anchor",
    "siglip_in_batch_per_anchor",
    "chunked_siglip_per_anchor",
    "chunked_siglip_loss",
    "check_scale_bias",
]


def check_scale_bias(
    where: str, scale: float | Tensor, bias: float | Tensor
) -> tuple[float | Tensor, float | Tensor]:
    """``scale``: a number > 0 or a scalar tensor; ``bias``: a finite number or a scalar tensor."""
    scale = params.temperature(where, "scale", scale)
    if isinstance(bias, Tensor):
        if bias.numel() != 1:
            raise ValueError(f"{where}: bias must be a scalar, got shape {list(bias.shape)}")
    else:
        bias = params.number(where, "bias", bias)
    return scale, bias


def siglip_per_anchor(
    similarity: Tensor,
    positive: Tensor,
    negative: Tensor,
    *,
    scale: float | Tensor = 10.0,
    bias: float | Tensor = -10.0,
) -> tuple[Tensor, Tensor]:
    r"""The unreduced :func:`siglip_loss`: ``(values [N], valid [N])``.

    .. math::
        \ell_a = \sum_{j \in \mathcal P_a \cup \mathcal N_a}
        \operatorname{softplus}\bigl(-z_{aj}(t\,s_{aj} + b)\bigr)

    Args:
        similarity, positive, negative: ``[N, M]`` (entries in neither mask are never read).
        scale: :math:`t > 0` (or a scalar tensor, e.g. ``log_t.exp()``).
        bias: :math:`b` (or a scalar tensor).

    Returns:
        ``values [N]`` (0 for an anchor without any pair) and ``valid [N]`` (the anchor has a
        pair). Cost: :math:`O(NM)` time and memory.
    """
    where = "siglip_loss"
    scale, bias = check_scale_bias(where, scale, bias)
    # Entries that are no pair are dropped by the select below (value and gradient), so a
    # finite similarity needs no sanitising first.
    sim, positive, negative = _check_inputs(
        similarity, positive, negative, "none", where, masked_later=True
    )
    logits = sim * scale + bias
    sign = torch.where(positive, -1.0, 1.0).to(sim.dtype)
    terms = softplus_exact(sign * logits)
    pairs = positive | negative
    values = torch.where(pairs, terms, terms.new_zeros(())).sum(1)
    return values, pairs.any(1)


def siglip_in_batch_per_anchor(
    similarity: Tensor,
    *,
    scale: float | Tensor = 10.0,
    bias: float | Tensor = -10.0,
) -> Tensor:
    r"""``[N]``: :func:`siglip_per_anchor` of the in-batch form, without masks.

    The positive of anchor :math:`a` is column :math:`a`, every other column a negative:

    .. math::
        \ell_a = \operatorname{softplus}\bigl(-(t\,s_{aa} + b)\bigr)
        + \sum_{j \ne a} \operatorname{softplus}\bigl(t\,s_{aj} + b\bigr)

    computed as one softplus of the logits with their diagonal negated (no sign matrix, no
    masks), the same value and gradients as :func:`siglip_per_anchor` with the diagonal as
    ``positive`` and the rest as ``negative``. Every anchor has its pair, so all are valid.

    Args:
        similarity: ``[N, M]`` with ``M >= N`` (columns ``N..M-1``: extra negatives), finite.
        scale: :math:`t > 0` (or a scalar tensor). bias: :math:`b` (or a scalar tensor).

    Returns:
        ``[N]`` per-anchor values. Cost: :math:`O(NM)` time and memory (three ``[N, M]``
        temporaries).

    >>> s = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    >>> siglip_in_batch_per_anchor(s, scale=1.0, bias=0.0)
    tensor([1.0064, 1.0064])
    """
    where = "siglip_in_batch_per_anchor"
    scale, bias = check_scale_bias(where, scale, bias)
    if not isinstance(similarity, Tensor) or similarity.dim() != 2:
        shape = (
            f"shape {list(similarity.shape)}"
            if isinstance(similarity, Tensor)
            else type(similarity).__name__
        )
        raise ValueError(f"{where}: similarity must be a [N, M] tensor, got {shape}")
    n, m = similarity.shape
    if m < n or not similarity.dtype.is_floating_point:
        raise ValueError(
            f"{where}: similarity must be floating point [N, M] with M >= N (column a is the "
            f"positive of anchor a), got dtype {similarity.dtype} and shape [{n}, {m}]"
        )
    if not math.isfinite(similarity.detach().sum().item()) and not bool(
        similarity.detach().isfinite().all()
    ):
        raise ValueError(f"{where}: similarity holds NaN or infinite entries")
    logits = similarity * scale + bias
    return softplus_exact(logits.diagonal_scatter(-logits.diagonal())).sum(1)


def siglip_loss(
    similarity: Tensor,
    positive: Tensor,
    negative: Tensor,
    *,
    scale: float | Tensor = 10.0,
    bias: float | Tensor = -10.0,
    weights: Tensor | None = None,
    reduction: Reduction = "mean",
) -> Tensor:
    r"""Sigmoid loss for language-image pre-training (SigLIP, Zhai et al. 2023).

    With :math:`z_{aj} = +1` for a positive pair and :math:`-1` for a negative pair,

    .. math::
        \ell_a = \sum_{j \in \mathcal P_a \cup \mathcal N_a}
        \operatorname{softplus}\bigl(-z_{aj}\,(t\,s_{aj} + b)\bigr)
        = -\sum_j \log \sigma\bigl(z_{aj}(t\,s_{aj} + b)\bigr)

    ``"mean"`` averages :math:`\ell_a` over the anchors with at least one pair (the paper's
    :math:`1/|\mathcal B|`), so the value is a sum over each anchor's candidates. The paper
    learns :math:`t = e^{t'}` from :math:`t' = \log 10` and :math:`b` from :math:`-10`
    (``rankloss.losses.SigLIPLoss`` does), which keeps the many negatives from dominating the
    first steps.

    Args:
        similarity, positive, negative: ``[N, M]``, as in :func:`contrastive_loss`.
        scale: :math:`t > 0` (or a scalar tensor, which gets a gradient).
        bias: :math:`b` (or a scalar tensor, which gets a gradient).
        weights: ``[N]`` per-anchor weights, or ``None``.
        reduction: ``"mean"`` (over anchors with a pair), ``"sum"`` or ``"none"``.

    Returns:
        A scalar, or ``[N]`` with ``reduction="none"``.

    Reference: Zhai, Mustafa, Kolesnikov and Beyer, "Sigmoid Loss for Language Image
    Pre-Training", ICCV 2023. Cost: :math:`O(NM)` time and memory.

    >>> s = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    >>> eye = torch.eye(2, dtype=torch.bool)
    >>> siglip_loss(s, eye, ~eye, scale=1.0, bias=0.0)
    tensor(1.0064)
    """
    where = "siglip_loss"
    params.choice(where, "reduction", reduction, REDUCTIONS)
    values, valid = siglip_per_anchor(similarity, positive, negative, scale=scale, bias=bias)
    return reduce_values(values, valid, weights, reduction, where=where)


def chunked_siglip_per_anchor(
    candidates: Candidates,
    *,
    similarity: Similarity = "cosine",
    scale: float | Tensor = 10.0,
    bias: float | Tensor = -10.0,
    chunk_size: int = 1024,
) -> tuple[Tensor, Tensor]:
    r"""The unreduced :func:`siglip_loss` in blocks of candidates: ``(values [N], valid [N])``.

    .. math::
        \ell_a = \sum_{j \in \mathcal P_a \cup \mathcal N_a}
        \operatorname{softplus}\bigl(-z_{aj}(t\,s_{aj} + b)\bigr)

    One forward pass over blocks of ``chunk_size`` candidates; backward recomputes each block,
    so memory is :math:`O(Nd + N \cdot \text{chunk})` instead of :math:`O(NM)`.

    Args:
        candidates: from :func:`rankloss._core.candidates.build_candidates`.
        similarity: ``"dot"`` or ``"cosine"``.
        scale: :math:`t > 0` (or a scalar tensor, which gets a gradient).
        bias: :math:`b` (or a scalar tensor, which gets a gradient).
        chunk_size: candidates per block (an int >= 1).

    Returns:
        ``values [N]`` and ``valid [N]`` (the anchor has a pair).

    Reference: Zhai et al., "Sigmoid Loss for Language Image Pre-Training", ICCV 2023. Cost:
    :math:`O(NMd)` time (forward once, backward once more).
    """
    queries, keys, bias_t, chunk = _scaled_inputs(candidates, similarity, scale, bias, chunk_size)
    return chunked_siglip(queries, keys, bias_t, candidates, chunk)


def _scaled_inputs(
    candidates: Candidates,
    similarity: Similarity,
    scale: float | Tensor,
    bias: float | Tensor,
    chunk_size: int,
) -> tuple[Tensor, Tensor, Tensor, int]:
    """The chunked forms' checked inputs: queries times the scale (normalised for cosine),
    keys, the bias as a tensor, and the block size."""
    where = "chunked_siglip_loss"
    queries, keys, chunk, _ = _chunked_inputs(candidates, similarity, 1.0, chunk_size, where)
    scale, bias = check_scale_bias(where, scale, bias)
    bias_t = bias if isinstance(bias, Tensor) else queries.new_tensor(bias)
    return queries * scale, keys, bias_t, chunk


def chunked_siglip_loss(
    candidates: Candidates,
    *,
    similarity: Similarity = "cosine",
    scale: float | Tensor = 10.0,
    bias: float | Tensor = -10.0,
    chunk_size: int = 1024,
    weights: Tensor | None = None,
    reduction: Reduction = "mean",
) -> Tensor:
    r""":func:`siglip_loss` reduced, in blocks of candidates, in :math:`O(Nd + N \cdot
    \text{chunk})` memory.

    With ``"sum"`` or ``"mean"`` (and ``weights`` that need no gradient) each block's gradient
    is written out in the forward, :math:`\partial \ell_a / \partial x_{aj} = -z_{aj}
    \sigma(-z_{aj} x_{aj})` with :math:`x = t\,s + b`, and folded into the gradients of the
    queries, keys and bias, so no block is recomputed (first derivatives only); with ``"none"``
    this is :func:`chunked_siglip_per_anchor`, whose backward recomputes each block.

    Args:
        candidates: from :func:`rankloss._core.candidates.build_candidates`.
        similarity: ``"dot"`` or ``"cosine"``.
        scale: :math:`t > 0` (or a scalar tensor, which gets a gradient).
        bias: :math:`b` (or a scalar tensor, which gets a gradient).
        chunk_size: candidates per block (an int >= 1).
        weights: ``[N]`` per-anchor weights, or ``None``.
        reduction: ``"mean"`` (over anchors with a pair), ``"sum"`` or ``"none"``.

    Returns:
        A scalar, or ``[N]`` with ``reduction="none"``.

    Reference: Zhai et al., "Sigmoid Loss for Language Image Pre-Training", ICCV 2023. Cost:
    :math:`O(NMd)` time, one pass (two with ``"none"``).
    """
    where = "chunked_siglip_loss"
    params.choice(where, "reduction", reduction, REDUCTIONS)
    if reduction == "none" or (isinstance(weights, Tensor) and weights.requires_grad):
        values, valid = chunked_siglip_per_anchor(
            candidates, similarity=similarity, scale=scale, bias=bias, chunk_size=chunk_size
        )
        return reduce_values(values, valid, weights, reduction, where=where)
    queries, keys, bias_t, chunk = _scaled_inputs(candidates, similarity, scale, bias, chunk_size)
    coefficients = checked_weights(weights, queries.new_empty(queries.shape[0]), where)
    return chunked_siglip_reduced(
        queries, keys, bias_t, coefficients, candidates, chunk, reduction == "mean"
    )

r"""Proxy-based metric-learning losses: each embedding against learned class proxies.

Every loss here is a pure function of a batch of embeddings, their integer class labels and a
tensor of proxies (the module of :mod:`rankloss.losses.proxy` owns the proxies as an
``nn.Parameter`` and passes them in)::

    loss(embeddings [N, d], labels [N], proxies [C, d] or [C, K, d], *, <hyper-parameters>,
         weights=None, reduction="mean")

``proxies[c]`` is the proxy of class ``c`` (``[C, K, d]``: ``K`` centres per class, for
:func:`sub_center_arcface_loss` and :func:`soft_triple_loss`). Embeddings and proxies are
compared by their cosine :math:`\cos_{ic} = \hat x_i^\top \hat p_c` with
:math:`\hat v = v / \lVert v \rVert` and :math:`\hat 0 = 0`: a zero embedding has cosines of 0
and a gradient of the size of the loss's own (never NaN, and finite in float16 too, where
dividing by a floored norm such as :math:`10^{-12}` would overflow);
the squared distance of unit vectors used by the NCA losses is
:math:`\lVert \hat x_i - \hat p_c \rVert^2 = 2 - 2 \cos_{ic}`.

Most losses compute **one value per embedding** (a softmax cross-entropy over the classes,
with a margin or a temperature) and reduce with :func:`rankloss._core.reduce.reduce_values`:
``reduction="none"`` returns ``[N]``, ``"sum"`` is :math:`\sum_i w_i \ell_i` and ``"mean"``
the weighted mean with per-embedding ``weights [N]``. :func:`proxy_anchor_loss` is the
exception: its terms belong to the proxies, so ``"none"`` returns ``[C]`` (see there).

Inputs are checked before any work: embeddings floating ``[N, d]`` and finite, proxies
floating ``[C, d]`` (``[C, K, d]``) with the same ``d`` and finite, labels integer ``[N]`` in
``[0, C)`` (the first bad position and value are named), weights ``[N]``, finite and
non-negative. One device synchronisation covers the embeddings, proxies, labels and weights.
float16 and bfloat16 inputs are computed in float32, and under ``torch.autocast`` the
functions run with autocast off (:func:`rankloss._core.validation.computes_in_float32`).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

from rankloss._core import params
from rankloss._core.reduce import REDUCTIONS, Reduction, reduce_values
from rankloss._core.validation import (
    check_embeddings,
    check_finite,
    check_weights,
    compute_dtype,
    computes_in_float32,
    shape_str,
)

__all__ = [
    "proxy_nca_loss",
    "proxy_nca_pp_loss",
    "proxy_anchor_loss",
    "normalized_softmax_loss",
    "cosface_loss",
    "arcface_loss",
    "sub_center_arcface_loss",
    "soft_triple_loss",
    "soft_triple_regularizer",
    "check_proxy_inputs",
    "check_angular_margin",
    "ProxyInputs",
]


#: :math:`\varepsilon` inside SoftTriple's centre regulariser
#: :math:`\sqrt{2 + \varepsilon - 2 \cos}` (the authors' value): finite gradient at equal centres.
SOFT_TRIPLE_EPS = 1e-5


class ProxyInputs(NamedTuple):
    """Checked inputs of a proxy loss, in one compute dtype.

    Attributes:
        embeddings: ``[N, d]``.
        labels: ``[N]`` int64 class indices in ``[0, C)``.
        proxies: ``[C, d]`` or ``[C, K, d]``.
        weights: ``[N]`` in the compute dtype, or ``None``.
    """

    embeddings: Tensor
    labels: Tensor
    proxies: Tensor
    weights: Tensor | None


def _shape_checked(x: object, name: str, where: str, dims: tuple[int, ...], form: str) -> Tensor:
    if not isinstance(x, Tensor):
        raise ValueError(f"{where}: {name} must be a torch.Tensor, got {type(x).__name__}")
    if x.dim() not in dims:
        raise ValueError(f"{where}: {name} must have shape {form}, got {shape_str(x)}")
    if not x.dtype.is_floating_point:
        raise ValueError(f"{where}: {name} must be floating point, got dtype {x.dtype}")
    return x


def check_proxy_inputs(
    embeddings: object,
    labels: object,
    proxies: object,
    weights: object,
    *,
    where: str,
    centres: bool | None = False,
) -> ProxyInputs:
    """Validate the inputs of a proxy loss, before any work, and convert them.

    Args:
        embeddings: ``[N, d]`` floating point, finite.
        labels: ``[N]`` integer class indices in ``[0, C)``.
        proxies: ``[C, d]`` (``centres=False``), ``[C, K, d]`` (``centres=True``) or either
            (``centres=None``), floating point, finite.
        weights: ``None`` or ``[N]``, finite and non-negative.
        where: the caller's name, for error messages.
        centres: which proxy shape is expected.

    Returns:
        :class:`ProxyInputs` in the compute dtype (float32 for half precision; float64 stays
        float64) on the embeddings' device.

    Raises:
        ValueError: naming the argument and its shape, the first non-finite entry, the first
            label outside ``[0, C)`` (position and value) or the first bad weight. Cost: one
            pass over each input and one device synchronisation.
    """
    x = _shape_checked(embeddings, "embeddings", where, (2,), "[N, d]")
    dims: tuple[int, ...]
    if centres is None:
        dims, form = (2, 3), "[C, d] or [C, K, d]"
    elif centres:
        dims, form = (3,), "[C, K, d] (K centres per class)"
    else:
        dims, form = (2,), "[C, d]"
    p = _shape_checked(proxies, "proxies", where, dims, form)
    if p.shape[-1] != x.shape[1]:
        raise ValueError(
            f"{where}: proxies has shape {shape_str(p)} but embeddings has shape "
            f"{shape_str(x)} (the embedding sizes differ)"
        )
    if p.shape[0] == 0 or (p.dim() == 3 and p.shape[1] == 0):
        raise ValueError(f"{where}: proxies must hold at least one proxy, got {shape_str(p)}")
    if p.device != x.device:
        raise ValueError(f"{where}: proxies is on {p.device} but embeddings is on {x.device}")
    if not isinstance(labels, Tensor):
        raise ValueError(
            f"{where}: labels must be a torch.Tensor of class indices, got {type(labels).__name__}"
        )
    if labels.dtype == torch.bool or labels.dtype.is_floating_point or labels.is_complex():
        raise ValueError(
            f"{where}: labels must be integer class indices in [0, {p.shape[0]}), got dtype "
            f"{labels.dtype}"
        )
    if labels.shape != (x.shape[0],):
        raise ValueError(
            f"{where}: labels has shape {shape_str(labels)} but embeddings has shape "
            f"{shape_str(x)}; expected [{x.shape[0]}], one class per embedding"
        )
    if labels.device != x.device:
        raise ValueError(f"{where}: labels is on {labels.device} but embeddings is on {x.device}")
    w: Tensor | None = None
    if weights is not None:
        if not isinstance(weights, Tensor):
            weights = torch.as_tensor(weights, device=x.device)
        assert isinstance(weights, Tensor)
        if weights.is_complex() or weights.dtype == torch.bool:
            raise ValueError(f"{where}: weights must be real numbers, got dtype {weights.dtype}")
        if weights.shape != (x.shape[0],):
            raise ValueError(
                f"{where}: weights has shape {shape_str(weights)}; expected [{x.shape[0]}], "
                "one weight per embedding"
            )
        w = weights
    num_classes = p.shape[0]
    y = labels.to(torch.int64)
    dtype = torch.promote_types(compute_dtype(x.dtype), compute_dtype(p.dtype))
    x, p = x.to(dtype), p.to(dtype)
    # One synchronisation for every check; the detailed messages are built only on failure.
    flags = [
        torch.isfinite(x.detach()).all(),
        torch.isfinite(p.detach()).all(),
        ((y >= 0) & (y < num_classes)).all(),
    ]
    if w is not None:
        wd = w.detach().to(dtype)
        flags.append((torch.isfinite(wd) & (wd >= 0)).all())
    if not bool(torch.stack(flags).all()):
        check_embeddings(embeddings, "embeddings", where)
        check_finite(p, "proxies", where, "proxies must be finite")
        bad = ((y < 0) | (y >= num_classes)).nonzero()
        if bad.numel():
            index = int(bad[0, 0])
            raise ValueError(
                f"{where}: labels holds {int(y[index])} at [{index}] (labels must be class "
                f"indices in [0, {num_classes}): the proxies are of {num_classes} classes)"
            )
        if w is not None:
            check_weights(w, where)
    return ProxyInputs(x, y, p, None if w is None else w.to(dtype))


def _unit(v: Tensor) -> Tensor:
    """``v / ||v||`` along the last dimension; a zero vector stays zero, with the identity as
    its derivative (the norm's gradient at 0 is 0), so its gradient stays of the size of the
    upstream one."""
    norm = torch.linalg.vector_norm(v, dim=-1, keepdim=True)
    return v / torch.where(norm > 0, norm, torch.ones_like(norm))


def _cosines(x: Tensor, proxies: Tensor) -> Tensor:
    """``[N, C]`` (or ``[N, C, K]``) cosines of the embeddings with the proxies."""
    p = _unit(proxies)
    flat = _unit(x) @ p.reshape(-1, p.shape[-1]).T
    return flat.reshape(x.shape[0], *proxies.shape[:-1])


def _one_hot(labels: Tensor, num_classes: int) -> Tensor:
    return F.one_hot(labels, num_classes).to(torch.bool)


def _cross_entropy(logits: Tensor, labels: Tensor) -> Tensor:
    r"""Per-row :math:`\log \sum_c e^{z_c} - z_y` (``logits`` are finite)."""
    if logits.shape[0] == 0:
        return logits.sum(1)
    target = logits.gather(1, labels.unsqueeze(1)).squeeze(1)
    return torch.logsumexp(logits, dim=1) - target


def _per_embedding(
    values: Tensor, inputs: ProxyInputs, reduction: str, where: str, valid: Tensor | None = None
) -> Tensor:
    if valid is None:
        valid = torch.ones_like(values, dtype=torch.bool)
    return reduce_values(values, valid, inputs.weights, reduction, where=where)


def _check_reduction(where: str, reduction: str) -> None:
    params.choice(where, "reduction", reduction, REDUCTIONS)


# --------------------------------------------------------------------------------------------
# NCA losses


@computes_in_float32
def proxy_nca_loss(
    embeddings: Tensor,
    labels: Tensor,
    proxies: Tensor,
    *,
    temperature: float = 1.0,
    weights: Tensor | None = None,
    reduction: Reduction = "mean",
) -> Tensor:
    r"""ProxyNCA (Movshovitz-Attias et al. 2017): NCA of each embedding against the proxies,
    the positive proxy left out of the denominator.

    With unit vectors and :math:`d_{ic} = \lVert \hat x_i - \hat p_c \rVert^2`,

    .. math::
        \ell_i = -\log \frac{e^{-d_{i y_i} / T}}{\sum_{c \ne y_i} e^{-d_{ic} / T}}
               = \frac{d_{i y_i}}{T} + \log \sum_{c \ne y_i} e^{-d_{ic} / T}

    The value can be negative (it is bounded below by :math:`\log(C - 1) - 4/T`). With a
    single class there is no negative proxy: every embedding then counts as having nothing to
    learn (0, left out of the mean).

    Args:
        embeddings: ``[N, d]``.
        labels: ``[N]`` integer class indices in ``[0, C)``.
        proxies: ``[C, d]``, one proxy per class (normalised here, not in place).
        temperature: :math:`T > 0` divides the logits :math:`-d_{ic}`; 1 in the paper.
        weights: ``[N]`` per-embedding weights, or ``None``.
        reduction: ``"mean"`` (weighted, over embeddings), ``"sum"`` or ``"none"`` (``[N]``).

    Returns:
        A scalar, or ``[N]`` with ``reduction="none"``.

    pytorch-metric-learning's ``ProxyNCALoss`` puts the positive proxy in the denominator
    (that is :func:`proxy_nca_pp_loss` with ``temperature = 1 / softmax_scale``); per
    embedding the two are related by :math:`\ell^{\text{NCA}} = \ell^{++} + \log(1 -
    e^{-\ell^{++}})`.

    Reference: Movshovitz-Attias, Toshev, Leung, Ioffe and Singh, "No Fuss Distance Metric
    Learning using Proxies", ICCV 2017. Cost: :math:`O(NCd)` time, :math:`O(NC)` memory.

    >>> x, p = torch.tensor([[1.0, 0.0]]), torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
    >>> proxy_nca_loss(x, torch.tensor([0]), p)
    tensor(-1.8731)
    """
    where = "proxy_nca_loss"
    _check_reduction(where, reduction)
    params.positive(where, "temperature", temperature)
    inputs = check_proxy_inputs(embeddings, labels, proxies, weights, where=where)
    cos = _cosines(inputs.embeddings, inputs.proxies)
    # -d / T = (2 cos - 2) / T; the constant -2 / T cancels between the two terms.
    logits = 2.0 * cos / temperature
    positive = _one_hot(inputs.labels, cos.shape[1])
    target = torch.where(positive, logits, torch.zeros_like(logits)).sum(1)
    num_classes = cos.shape[1]
    if num_classes < 2 or cos.shape[0] == 0:
        values = target * 0.0
        valid = torch.full_like(values, num_classes > 1, dtype=torch.bool)
        return _per_embedding(values, inputs, reduction, where, valid)
    others = torch.where(positive, torch.full_like(logits, -math.inf), logits)
    values = torch.logsumexp(others, dim=1) - target
    return _per_embedding(values, inputs, reduction, where)


@computes_in_float32
def proxy_nca_pp_loss(
    embeddings: Tensor,
    labels: Tensor,
    proxies: Tensor,
    *,
    temperature: float = 1.0 / 9.0,
    weights: Tensor | None = None,
    reduction: Reduction = "mean",
) -> Tensor:
    r"""ProxyNCA++ (Teh, DeVries and Taylor 2020): the proxy assignment probability with a
    low temperature.

    With unit vectors and :math:`d_{ic} = \lVert \hat x_i - \hat p_c \rVert^2`,

    .. math::
        \ell_i = -\log \frac{e^{-d_{i y_i} / T}}{\sum_{c=1}^{C} e^{-d_{ic} / T}}

    the cross-entropy of the softmax over **every** proxy, the positive included (ProxyNCA
    leaves it out, :func:`proxy_nca_loss`), so :math:`\ell_i \ge 0`. The paper's other
    changes are training settings: normalised proxies (here always), a low temperature
    (:math:`T = 1/9`, the default) and fast-moving proxies, i.e. a learning rate for the
    proxies far above the model's (see ``docs/proxy_losses.md``).

    Args:
        embeddings: ``[N, d]``.
        labels: ``[N]`` integer class indices in ``[0, C)``.
        proxies: ``[C, d]``.
        temperature: :math:`T > 0` divides the logits :math:`-d_{ic}`.
        weights: ``[N]`` per-embedding weights, or ``None``.
        reduction: ``"mean"`` (weighted, over embeddings), ``"sum"`` or ``"none"`` (``[N]``).

    Returns:
        A scalar, or ``[N]`` with ``reduction="none"``.

    Equals pytorch-metric-learning's ``ProxyNCALoss(softmax_scale=1 / T)``, except that
    ``ProxyNCALoss`` leaves out the embeddings whose probability underflows to 0 (the hardest
    ones); here the log-probability is computed directly and every embedding counts.

    Reference: Teh, DeVries and Taylor, "ProxyNCA++: Revisiting and Revitalizing Proxy
    Neighborhood Component Analysis", ECCV 2020. Cost: :math:`O(NCd)` time, :math:`O(NC)`
    memory.

    >>> x, p = torch.tensor([[1.0, 0.0]]), torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    >>> proxy_nca_pp_loss(x, torch.tensor([0]), p, temperature=1.0)
    tensor(0.1269)
    """
    where = "proxy_nca_pp_loss"
    _check_reduction(where, reduction)
    params.positive(where, "temperature", temperature)
    inputs = check_proxy_inputs(embeddings, labels, proxies, weights, where=where)
    cos = _cosines(inputs.embeddings, inputs.proxies)
    values = _cross_entropy(2.0 * cos / temperature, inputs.labels)
    return _per_embedding(values, inputs, reduction, where)


# --------------------------------------------------------------------------------------------
# Proxy Anchor


@computes_in_float32
def proxy_anchor_loss(
    embeddings: Tensor,
    labels: Tensor,
    proxies: Tensor,
    *,
    margin: float = 0.1,
    alpha: float = 32.0,
    weights: Tensor | None = None,
    reduction: Reduction = "mean",
) -> Tensor:
    r"""Proxy Anchor (Kim et al. 2020): each proxy is an anchor pulling its class's embeddings
    and pushing every other embedding, with a soft (log-sum-exp) hardness weighting.

    With :math:`s_{ic} = \cos(x_i, p_c)`, :math:`X_c^+` the embeddings of class :math:`c`,
    :math:`X_c^-` the others, :math:`P^+` the proxies with at least one embedding in the batch
    and :math:`w_i` the weights (1 without),

    .. math::
        \ell^+_c = \log\Bigl(1 + \sum_{i \in X_c^+} w_i e^{-\alpha (s_{ic} - \delta)}\Bigr),
        \qquad
        \ell^-_c = \log\Bigl(1 + \sum_{i \in X_c^-} w_i e^{\alpha (s_{ic} + \delta)}\Bigr)

    .. math::
        \ell = \frac{1}{|P^+|} \sum_{c \in P^+} \ell^+_c + \frac{1}{C} \sum_{c=1}^{C} \ell^-_c

    The terms belong to the proxies, not to the embeddings, so the reductions differ from the
    other losses: ``"mean"`` is :math:`\ell` (the paper's loss), ``"sum"`` is
    :math:`\sum_{c \in P^+} \ell^+_c + \sum_c \ell^-_c`, and ``"none"`` returns ``[C]``, the
    per-proxy :math:`\ell^+_c + \ell^-_c` (:math:`\ell^+_c = 0` for :math:`c \notin P^+`).
    A weight multiplies its embedding's terms inside the sums: weights of 1 are no weights, a
    weight of 0 deletes the embedding (and a proxy whose embeddings all weigh 0 leaves
    :math:`P^+`).

    Args:
        embeddings: ``[N, d]``.
        labels: ``[N]`` integer class indices in ``[0, C)``.
        proxies: ``[C, d]``.
        margin: :math:`\delta \ge 0`, in cosine units (0.1 in the paper).
        alpha: :math:`\alpha > 0`, the scale (32 in the paper).
        weights: ``[N]`` per-embedding weights, or ``None``.
        reduction: ``"mean"``, ``"sum"`` or ``"none"`` (``[C]``), as above.

    Returns:
        A scalar, or ``[C]`` with ``reduction="none"``.

    Matches pytorch-metric-learning's ``ProxyAnchorLoss`` (whose divisors are the same);
    its miner weights enter the exponent as :math:`w - 1` instead of multiplying.

    Reference: Kim, Kim, Cho and Kwak, "Proxy Anchor Loss for Deep Metric Learning", CVPR
    2020. Cost: :math:`O(NCd)` time, :math:`O(NC)` memory.

    >>> x, p = torch.tensor([[1.0, 0.0], [0.0, 1.0]]), torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    >>> proxy_anchor_loss(x, torch.tensor([0, 1]), p, alpha=4.0)
    tensor(0.9400)
    """
    where = "proxy_anchor_loss"
    _check_reduction(where, reduction)
    params.nonnegative(where, "margin", margin)
    params.positive(where, "alpha", alpha)
    inputs = check_proxy_inputs(embeddings, labels, proxies, weights, where=where)
    cos = _cosines(inputs.embeddings, inputs.proxies)  # [N, C]
    num_classes = cos.shape[1]
    positive = _one_hot(inputs.labels, num_classes)
    if inputs.weights is None:
        kept = torch.ones_like(positive[:, :1])
        log_w = torch.zeros_like(cos[:, :1])
    else:
        # A weight multiplies its terms: + log w in the exponent; a zero weight deletes them.
        kept = (inputs.weights > 0).unsqueeze(1)
        log_w = torch.where(kept, inputs.weights.unsqueeze(1), 1.0).log()
    pos_logits = -alpha * (cos - margin) + log_w
    neg_logits = alpha * (cos + margin) + log_w
    pos_mask = positive & kept
    neg_mask = ~positive & kept
    minus_inf = torch.full_like(cos, -math.inf)
    zero_row = cos.new_zeros((1, num_classes))  # the "1 +" inside each log
    pos_terms = torch.logsumexp(
        torch.cat([zero_row, torch.where(pos_mask, pos_logits, minus_inf)]), dim=0
    )
    neg_terms = torch.logsumexp(
        torch.cat([zero_row, torch.where(neg_mask, neg_logits, minus_inf)]), dim=0
    )
    with_positive = pos_mask.any(0)
    pos_terms = torch.where(with_positive, pos_terms, torch.zeros_like(pos_terms))
    if reduction == "none":
        return pos_terms + neg_terms
    if reduction == "sum":
        return pos_terms.sum() + neg_terms.sum()
    count = with_positive.sum().clamp(min=1).to(cos.dtype)
    return pos_terms.sum() / count + neg_terms.sum() / num_classes


# --------------------------------------------------------------------------------------------
# Normalised softmax and margins


@computes_in_float32
def normalized_softmax_loss(
    embeddings: Tensor,
    labels: Tensor,
    proxies: Tensor,
    *,
    temperature: float = 0.05,
    weights: Tensor | None = None,
    reduction: Reduction = "mean",
) -> Tensor:
    r"""NormalizedSoftmax (Zhai and Wu 2019): softmax cross-entropy of the cosines to the
    class proxies (a classifier with normalised weights and inputs), with a temperature.

    .. math::
        \ell_i = -\log \frac{e^{\cos(x_i, p_{y_i}) / T}}{\sum_{c=1}^{C} e^{\cos(x_i, p_c) / T}}

    Args:
        embeddings: ``[N, d]``.
        labels: ``[N]`` integer class indices in ``[0, C)``.
        proxies: ``[C, d]``, the rows of the classifier's weight.
        temperature: :math:`T > 0` divides the cosine logits (0.05 in the paper).
        weights: ``[N]`` per-embedding weights, or ``None``.
        reduction: ``"mean"`` (weighted, over embeddings), ``"sum"`` or ``"none"`` (``[N]``).

    Returns:
        A scalar, or ``[N]`` with ``reduction="none"``.

    Matches pytorch-metric-learning's ``NormalizedSoftmaxLoss`` (whose weight ``W [d, C]`` is
    ``proxies.T``).

    Reference: Zhai and Wu, "Classification is a Strong Baseline for Deep Metric Learning",
    BMVC 2019. Cost: :math:`O(NCd)` time, :math:`O(NC)` memory.

    >>> x, p = torch.tensor([[1.0, 0.0]]), torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    >>> normalized_softmax_loss(x, torch.tensor([0]), p, temperature=0.5)
    tensor(0.1269)
    """
    where = "normalized_softmax_loss"
    _check_reduction(where, reduction)
    params.positive(where, "temperature", temperature)
    inputs = check_proxy_inputs(embeddings, labels, proxies, weights, where=where)
    cos = _cosines(inputs.embeddings, inputs.proxies)
    values = _cross_entropy(cos / temperature, inputs.labels)
    return _per_embedding(values, inputs, reduction, where)


@computes_in_float32
def cosface_loss(
    embeddings: Tensor,
    labels: Tensor,
    proxies: Tensor,
    *,
    margin: float = 0.35,
    scale: float = 64.0,
    weights: Tensor | None = None,
    reduction: Reduction = "mean",
) -> Tensor:
    r"""CosFace, the large margin cosine loss (Wang et al. 2018): an additive margin on the
    target cosine.

    .. math::
        \ell_i = -\log \frac{e^{s (\cos_{i y_i} - m)}}
                            {e^{s (\cos_{i y_i} - m)} + \sum_{c \ne y_i} e^{s \cos_{ic}}}

    Args:
        embeddings: ``[N, d]``.
        labels: ``[N]`` integer class indices in ``[0, C)``.
        proxies: ``[C, d]``, the class centres (the classifier's weight rows).
        margin: :math:`m \ge 0`, in cosine units (0.35 in the paper).
        scale: :math:`s > 0` multiplies the logits (64 in the paper).
        weights: ``[N]`` per-embedding weights, or ``None``.
        reduction: ``"mean"`` (weighted, over embeddings), ``"sum"`` or ``"none"`` (``[N]``).

    Returns:
        A scalar, or ``[N]`` with ``reduction="none"``.

    Matches pytorch-metric-learning's ``CosFaceLoss`` (``W = proxies.T``).

    Reference: Wang, Wang, Zhou, Ji, Gong, Zhou, Li and Liu, "CosFace: Large Margin Cosine
    Loss for Deep Face Recognition", CVPR 2018. Cost: :math:`O(NCd)` time, :math:`O(NC)`
    memory.

    >>> x, p = torch.tensor([[1.0, 0.0]]), torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    >>> cosface_loss(x, torch.tensor([0]), p, margin=0.5, scale=2.0)
    tensor(0.3133)
    """
    where = "cosface_loss"
    _check_reduction(where, reduction)
    params.nonnegative(where, "margin", margin)
    params.positive(where, "scale", scale)
    inputs = check_proxy_inputs(embeddings, labels, proxies, weights, where=where)
    cos = _cosines(inputs.embeddings, inputs.proxies)
    positive = _one_hot(inputs.labels, cos.shape[1])
    logits = scale * torch.where(positive, cos - margin, cos)
    values = _cross_entropy(logits, inputs.labels)
    return _per_embedding(values, inputs, reduction, where)


def check_angular_margin(where: str, margin: object) -> float:
    """ArcFace's margin: a number in ``[0, pi/2]`` radians (pytorch-metric-learning takes
    degrees; the message says so when given what looks like degrees)."""
    m = params.number(where, "margin", margin)
    if not 0.0 <= m <= math.pi / 2:
        hint = (
            f" (pytorch-metric-learning's ArcFaceLoss takes degrees: "
            f"{m}° is {math.radians(m):.4g} rad)"
            if m > math.pi / 2
            else ""
        )
        raise ValueError(f"{where}: margin must be in [0, pi/2] radians, got {margin!r}{hint}")
    return m


def _arcface_logits(
    cos: Tensor, labels: Tensor, margin: float, scale: float, easy_margin: bool
) -> Tensor:
    r"""``scale`` times the cosines, the target's replaced by :math:`\cos(\theta + m)`.

    :math:`\cos(\theta + m) = \cos\theta \cos m - \sin\theta \sin m` with
    :math:`\sin\theta = \sqrt{\max(1 - \cos^2\theta, \varepsilon^2)}` (:math:`\varepsilon` the
    machine epsilon of the compute dtype): no ``acos`` (whose
    gradient is infinite at :math:`\cos\theta = \pm 1`), so values and gradients are finite
    for every input. Past :math:`\theta + m > \pi` the target logit would rise again; as in
    the paper's code it continues as :math:`\cos\theta - m \sin m` (or, with
    ``easy_margin``, as :math:`\cos\theta` wherever :math:`\cos\theta \le 0`).
    """
    positive = _one_hot(labels, cos.shape[1])
    target = torch.where(positive, cos, torch.zeros_like(cos)).sum(1)
    # Floor 1 - cos^2 at (machine epsilon)^2 before the square root: its gradient stays
    # finite at cos = +-1 (and is 0 below the floor), and sin(theta) errs by at most one ulp.
    floor = torch.finfo(target.dtype).eps ** 2
    sine = (1.0 - target * target).clamp(min=floor).sqrt()
    shifted = target * math.cos(margin) - sine * math.sin(margin)
    if easy_margin:
        shifted = torch.where(target > 0, shifted, target)
    else:
        # cos(theta) > cos(pi - m) <=> theta + m < pi.
        shifted = torch.where(
            target > math.cos(math.pi - margin), shifted, target - margin * math.sin(margin)
        )
    return scale * torch.where(positive, shifted.unsqueeze(1), cos)


@computes_in_float32
def arcface_loss(
    embeddings: Tensor,
    labels: Tensor,
    proxies: Tensor,
    *,
    margin: float = 0.5,
    scale: float = 64.0,
    easy_margin: bool = False,
    weights: Tensor | None = None,
    reduction: Reduction = "mean",
) -> Tensor:
    r"""ArcFace, the additive angular margin loss (Deng et al. 2019): the margin is added to
    the angle between an embedding and its class centre.

    With :math:`\cos\theta_{ic} = \cos(x_i, p_c)`,

    .. math::
        \ell_i = -\log \frac{e^{s \cos(\theta_{i y_i} + m)}}
                            {e^{s \cos(\theta_{i y_i} + m)}
                             + \sum_{c \ne y_i} e^{s \cos\theta_{ic}}}

    computed as :math:`\cos\theta \cos m - \sin\theta \sin m`, never through ``acos``, so it
    is finite with finite gradients for every input (an embedding equal to its proxy, a zero
    embedding, float16 inputs under ``torch.autocast``). Where :math:`\theta + m > \pi` the
    target logit is :math:`\cos\theta - m \sin m` instead (the paper's rule, which keeps it
    decreasing in :math:`\theta`); ``easy_margin=True`` applies the margin only where
    :math:`\cos\theta > 0`.

    Args:
        embeddings: ``[N, d]``.
        labels: ``[N]`` integer class indices in ``[0, C)``.
        proxies: ``[C, d]``, the class centres.
        margin: :math:`m` in **radians**, in :math:`[0, \pi/2]` (0.5 in the paper).
        scale: :math:`s > 0` (64 in the paper).
        easy_margin: the margin only where :math:`\cos\theta > 0`.
        weights: ``[N]`` per-embedding weights, or ``None``.
        reduction: ``"mean"`` (weighted, over embeddings), ``"sum"`` or ``"none"`` (``[N]``).

    Returns:
        A scalar, or ``[N]`` with ``reduction="none"``.

    pytorch-metric-learning's ``ArcFaceLoss`` takes its margin in **degrees** (28.6 = 0.499
    rad) and computes :math:`\cos(\arccos(\cos\theta) + m)`, whose gradient is NaN at
    :math:`\cos\theta = \pm 1`; with ``margin`` converted the values agree elsewhere.

    Reference: Deng, Guo, Xue and Zafeiriou, "ArcFace: Additive Angular Margin Loss for Deep
    Face Recognition", CVPR 2019. Cost: :math:`O(NCd)` time, :math:`O(NC)` memory.

    >>> x, p = torch.tensor([[1.0, 0.0]]), torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    >>> arcface_loss(x, torch.tensor([0]), p, margin=0.5, scale=2.0)
    tensor(0.1595)
    """
    where = "arcface_loss"
    _check_reduction(where, reduction)
    check_angular_margin(where, margin)
    params.positive(where, "scale", scale)
    params.boolean(where, "easy_margin", easy_margin)
    inputs = check_proxy_inputs(embeddings, labels, proxies, weights, where=where)
    cos = _cosines(inputs.embeddings, inputs.proxies)
    logits = _arcface_logits(cos, inputs.labels, margin, scale, easy_margin)
    values = _cross_entropy(logits, inputs.labels)
    return _per_embedding(values, inputs, reduction, where)


@computes_in_float32
def sub_center_arcface_loss(
    embeddings: Tensor,
    labels: Tensor,
    proxies: Tensor,
    *,
    margin: float = 0.5,
    scale: float = 64.0,
    easy_margin: bool = False,
    weights: Tensor | None = None,
    reduction: Reduction = "mean",
) -> Tensor:
    r"""Sub-center ArcFace (Deng et al. 2020): ArcFace with ``K`` centres per class; an
    embedding is compared with the nearest centre of each class.

    .. math::
        \cos\theta_{ic} = \max_{k} \cos(x_i, p_{ck}), \qquad
        \ell_i = -\log \frac{e^{s \cos(\theta_{i y_i} + m)}}
                            {e^{s \cos(\theta_{i y_i} + m)}
                             + \sum_{c \ne y_i} e^{s \cos\theta_{ic}}}

    computed as in :func:`arcface_loss` (finite for every input). Noisy samples gather on
    non-dominant centres, so the dominant centre stays clean; the paper's later step
    (dropping those samples and keeping one centre per class) is left to the user.

    Args:
        embeddings: ``[N, d]``.
        labels: ``[N]`` integer class indices in ``[0, C)``.
        proxies: ``[C, K, d]``, ``K`` centres per class.
        margin: :math:`m` in radians, in :math:`[0, \pi/2]` (0.5 in the paper).
        scale: :math:`s > 0` (64 in the paper).
        easy_margin: the margin only where :math:`\cos\theta > 0`.
        weights: ``[N]`` per-embedding weights, or ``None``.
        reduction: ``"mean"`` (weighted, over embeddings), ``"sum"`` or ``"none"`` (``[N]``).

    Returns:
        A scalar, or ``[N]`` with ``reduction="none"``.

    pytorch-metric-learning's ``SubCenterArcFaceLoss`` holds ``W [d, C K]`` with centre ``k``
    of class ``c`` in column ``c K + k`` (``proxies.reshape(C * K, d).T``) and takes its margin
    in degrees, as its ``ArcFaceLoss`` does.

    Reference: Deng, Guo, Liu, Gong and Zafeiriou, "Sub-center ArcFace: Boosting Face
    Recognition by Large-scale Noisy Web Faces", ECCV 2020. Cost: :math:`O(NCKd)` time,
    :math:`O(NCK)` memory.

    >>> x = torch.tensor([[1.0, 0.0]])
    >>> p = torch.tensor([[[0.0, 1.0], [1.0, 0.0]], [[0.0, 1.0], [-1.0, 0.0]]])
    >>> sub_center_arcface_loss(x, torch.tensor([0]), p, margin=0.5, scale=2.0)
    tensor(0.1595)
    """
    where = "sub_center_arcface_loss"
    _check_reduction(where, reduction)
    check_angular_margin(where, margin)
    params.positive(where, "scale", scale)
    params.boolean(where, "easy_margin", easy_margin)
    inputs = check_proxy_inputs(embeddings, labels, proxies, weights, where=where, centres=True)
    cos = _cosines(inputs.embeddings, inputs.proxies).amax(dim=2)
    logits = _arcface_logits(cos, inputs.labels, margin, scale, easy_margin)
    values = _cross_entropy(logits, inputs.labels)
    return _per_embedding(values, inputs, reduction, where)


# --------------------------------------------------------------------------------------------
# SoftTriple


def soft_triple_regularizer(proxies: Tensor) -> Tensor:
    r"""SoftTriple's centre regulariser: the mean distance between the centres of a class.

    .. math::
        R = \frac{1}{C K (K - 1)} \sum_{c=1}^{C} \sum_{k < k'}
            \sqrt{2 + \varepsilon - 2 \cos(p_{ck}, p_{ck'})}

    with :math:`\varepsilon = 10^{-5}` (the authors' code) and :math:`R = 0` for ``K = 1``.
    Merging the centres of a class lowers it, so few centres stay in use.

    Args:
        proxies: ``[C, K, d]``.

    Returns:
        A scalar. Cost: :math:`O(C K^2 d)`.
    """
    num_classes, k = proxies.shape[0], proxies.shape[1]
    if k < 2:
        return proxies.sum() * 0.0
    unit = _unit(proxies)
    cos = unit @ unit.transpose(1, 2)  # [C, K, K]
    upper = torch.ones(k, k, dtype=torch.bool, device=proxies.device).triu(1)
    distance = (2.0 + SOFT_TRIPLE_EPS - 2.0 * cos[:, upper]).clamp(min=SOFT_TRIPLE_EPS).sqrt()
    return distance.sum() / (num_classes * k * (k - 1))


@computes_in_float32
def soft_triple_loss(
    embeddings: Tensor,
    labels: Tensor,
    proxies: Tensor,
    *,
    scale: float = 20.0,
    center_temperature: float = 0.1,
    margin: float = 0.01,
    center_regularization: float = 0.2,
    weights: Tensor | None = None,
    reduction: Reduction = "mean",
) -> Tensor:
    r"""SoftTriple (Qian et al. 2019): a softmax over classes, each class a soft mixture of
    ``K`` centres, with a margin and a regulariser that merges unused centres.

    With :math:`s_{ick} = \cos(x_i, p_{ck})`,

    .. math::
        S_{ic} = \sum_{k=1}^{K} \frac{e^{s_{ick} / \gamma}}{\sum_{k'} e^{s_{ick'} / \gamma}}
                 \, s_{ick}, \qquad
        \ell_i = -\log \frac{e^{\lambda (S_{i y_i} - \delta)}}
                            {e^{\lambda (S_{i y_i} - \delta)} + \sum_{c \ne y_i}
                             e^{\lambda S_{ic}}} + \tau R

    where :math:`R` is :func:`soft_triple_regularizer` of the centres. :math:`\tau R` is
    added to every embedding's value, so the mean is the paper's loss and every reduction
    stays a reduction of ``[N]`` values.

    Args:
        embeddings: ``[N, d]``.
        labels: ``[N]`` integer class indices in ``[0, C)``.
        proxies: ``[C, K, d]``, ``K`` centres per class.
        scale: :math:`\lambda > 0` multiplies the class logits (20 in the paper).
        center_temperature: :math:`\gamma > 0` divides the centre logits of the soft
            assignment (0.1 in the paper).
        margin: :math:`\delta \ge 0`, in cosine units (0.01 in the paper).
        center_regularization: :math:`\tau \ge 0`, the weight of :math:`R` (0.2 in the paper).
        weights: ``[N]`` per-embedding weights, or ``None``.
        reduction: ``"mean"`` (weighted, over embeddings), ``"sum"`` or ``"none"`` (``[N]``).

    Returns:
        A scalar, or ``[N]`` with ``reduction="none"``.

    pytorch-metric-learning's ``SoftTripleLoss`` (``la`` = :math:`\lambda`, ``gamma`` =
    :math:`\gamma`, ``fc = proxies.reshape(C * K, d).T``) has no regulariser: it equals this
    loss with ``center_regularization=0``.

    Reference: Qian, Shang, Sun, Hu, Li and Jin, "SoftTriple Loss: Deep Metric Learning
    Without Triplet Sampling", ICCV 2019. Cost: :math:`O(NCKd + CK^2d)` time,
    :math:`O(NCK)` memory.

    >>> x = torch.tensor([[1.0, 0.0]])
    >>> p = torch.tensor([[[1.0, 0.0], [0.0, 1.0]], [[0.0, 1.0], [-1.0, 0.0]]])
    >>> soft_triple_loss(x, torch.tensor([0]), p, scale=2.0, center_regularization=0.0)
    tensor(0.1293)
    """
    where = "soft_triple_loss"
    _check_reduction(where, reduction)
    params.positive(where, "scale", scale)
    params.positive(where, "center_temperature", center_temperature)
    params.nonnegative(where, "margin", margin)
    params.nonnegative(where, "center_regularization", center_regularization)
    inputs = check_proxy_inputs(embeddings, labels, proxies, weights, where=where, centres=True)
    cos = _cosines(inputs.embeddings, inputs.proxies)  # [N, C, K]
    assignment = torch.softmax(cos / center_temperature, dim=2)
    class_similarity = (assignment * cos).sum(2)
    positive = _one_hot(inputs.labels, class_similarity.shape[1])
    logits = scale * torch.where(positive, class_similarity - margin, class_similarity)
    values = _cross_entropy(logits, inputs.labels)
    if center_regularization > 0:
        values = values + center_regularization * soft_triple_regularizer(inputs.proxies)
    return _per_embedding(values, inputs, reduction, where)

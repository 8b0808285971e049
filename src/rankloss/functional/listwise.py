"""Listwise ranking losses: each list is scored as a whole.

Every function takes ``scores`` and ``labels`` of shape ``[..., n]``, an optional bool ``mask``
(True = real item) and optional ``weights`` per list ``[...]`` or per item ``[..., n]``.
Padded items are removed from every softmax, sum and sort (they never enter a normaliser), so
a padded list gives exactly the loss of the same list without padding.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import torch
from torch import Tensor

from rankloss._core import params
from rankloss._core.autograd import first_order_backward
from rankloss._core.ranking import GAINS, dcg_at_k, discount, masked_logits, normalised_gains
from rankloss._core.reduce import Reduction, reduce_lists
from rankloss._core.validation import ListBatch, check_lists

__all__ = [
    "softmax_ce_loss",
    "kl_div_loss",
    "listnet_loss",
    "listmle_loss",
    "approx_ndcg_loss",
    "neural_ndcg_loss",
]


def _masked_log_softmax(logits: Tensor, mask: Tensor | None) -> Tensor:
    """Log-softmax over real items; 0 at padded positions (finite, zero gradient).
    ``mask=None``: nothing is padded (a plain log-softmax)."""
    if mask is None:
        return torch.log_softmax(logits, dim=-1)
    out = torch.log_softmax(masked_logits(logits, mask), dim=-1)
    return torch.where(mask, out, logits.new_zeros(()))


def _item_weighted(terms: Tensor, batch: ListBatch) -> Tensor:
    if batch.item_weights is not None:
        terms = terms * batch.item_weights
    if not batch.padded:
        return terms
    return torch.where(batch.mask, terms, terms.new_zeros(()))


class _SoftmaxCrossEntropy(torch.autograd.Function):
    r"""``[B]``: :math:`-\sum_i p_i \log \mathrm{softmax}(s)_i` on unpadded ``[B, n]`` lists, with
    the gradient :math:`g_b (q_i \sum_j p_j - p_i)`, :math:`q = \mathrm{softmax}(s)`, written
    out: a log-softmax and an in-place product forward; a softmax and two in-place passes
    backward (autograd's chain through the product, the sum and the log-softmax makes about
    twice the passes over ``[B, n]``, and an ``exp`` of the saved log-softmax is slower on CPU
    than a fresh softmax). In the scores only; under ``create_graph=True`` the backward runs
    out of place, so it is differentiated again exactly."""

    @staticmethod
    def forward(ctx: Any, scores: Tensor, target: Tensor) -> Tensor:
        ctx.save_for_backward(scores, target)
        return torch.log_softmax(scores, dim=-1).mul_(target).sum(-1).neg_()

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None]:
        scores, target = ctx.saved_tensors
        grad = grad.unsqueeze(-1)
        if torch.is_grad_enabled():  # create_graph: out of place, so it differentiates again
            out = torch.softmax(scores, dim=-1) * (target.sum(-1, keepdim=True) * grad)
            return out - target * grad, None
        out = torch.softmax(scores, dim=-1).mul_(target.sum(-1, keepdim=True) * grad)
        return out.addcmul_(target, grad, value=-1.0), None


#: Unpadded batches with at least this many items take :class:`_SoftmaxCrossEntropy`; below,
#: its Python overhead (about 15 us a call) outweighs the passes it saves (64 x 8,192 items:
#: 1.8 against 2.7 ms forward and backward on one CPU thread; 64 x 1,024: 0.34 against 0.32).
_WRITTEN_OUT_ABOVE = 1 << 18


def _cross_entropy(target: Tensor, batch: ListBatch) -> Tensor:
    """``[B]``: :math:`-\\sum_i w_i p_i \\log \\mathrm{softmax}(s)_i` over real items."""
    if (
        not batch.padded
        and batch.item_weights is None
        and not target.requires_grad
        and batch.scores.numel() >= _WRITTEN_OUT_ABOVE
    ):
        out: Tensor = _SoftmaxCrossEntropy.apply(batch.scores, target)
        return out
    log_q = _masked_log_softmax(batch.scores, batch.real)
    return -_item_weighted(target * log_q, batch).sum(-1)


def softmax_ce_loss(
    scores: Tensor,
    labels: Tensor,
    mask: Tensor | None = None,
    *,
    weights: Tensor | None = None,
    reduction: Reduction = "mean",
) -> Tensor:
    r"""Softmax cross-entropy between normalised labels and the softmax of the scores.

    .. math:: \ell = -\sum_i \frac{y_i}{\sum_j y_j} \log \frac{e^{s_i}}{\sum_j e^{s_j}}

    Labels must be non-negative (``ValueError`` otherwise: normalising negative labels has no
    meaning, and they are never silently dropped). A list whose labels sum to 0 has nothing to
    learn from: it counts as 0 and is left out of the mean. The per-list value is the
    cross-entropy (a sum over the list's items); ``"mean"`` averages over lists.
    Cost: :math:`O(n)` per list.

    Reference: Cao et al., "Learning to Rank: From Pairwise Approach to Listwise Approach",
    ICML 2007; Bruch et al., "An Analysis of the Softmax Cross Entropy Loss for
    Learning-to-Rank with Binary Relevance", ICTIR 2019.
    """
    batch = check_lists(scores, labels, mask, weights, where="softmax_ce_loss", reduction=reduction)
    real = batch.labels[batch.mask]
    if real.numel() and bool((real < 0).any()):
        raise ValueError(
            f"softmax_ce_loss: labels must be >= 0 (found {real.min().item()}); "
            "use listnet_loss for real-valued labels"
        )
    total = batch.labels.sum(-1)
    valid = total > 0
    target = batch.labels / torch.where(valid, total, torch.ones_like(total)).unsqueeze(-1)
    return reduce_lists(_cross_entropy(target, batch), valid, batch, reduction)


def _label_distribution(batch: ListBatch, label_temperature: float) -> Tensor:
    if not batch.padded:
        labels = batch.labels if label_temperature == 1.0 else batch.labels / label_temperature
        return torch.softmax(labels, dim=-1)
    target = _masked_log_softmax(batch.labels / label_temperature, batch.mask)
    return torch.exp(target) * batch.mask


def listnet_loss(
    scores: Tensor,
    labels: Tensor,
    mask: Tensor | None = None,
    *,
    weights: Tensor | None = None,
    reduction: Reduction = "mean",
    label_temperature: float = 1.0,
) -> Tensor:
    r"""ListNet (top-one): cross-entropy between softmax(labels / T) and softmax(scores).

    .. math:: \ell = -\sum_i \mathrm{softmax}(y / T)_i \, \log \mathrm{softmax}(s)_i

    :math:`T` is ``label_temperature``: it divides the labels, not the scores (the word
    ``temperature`` in rankloss always divides logits). Any real labels work (the target is a
    softmax). Every list with a real item counts, even a
    list of equal labels (its target is uniform). The per-list value is the cross-entropy;
    ``"mean"`` averages over lists. Cost: :math:`O(n)` per list.

    Reference: Cao et al., "Learning to Rank: From Pairwise Approach to Listwise Approach",
    ICML 2007.
    """
    label_temperature = params.positive("listnet_loss", "label_temperature", label_temperature)
    batch = check_lists(scores, labels, mask, weights, where="listnet_loss", reduction=reduction)
    target = _label_distribution(batch, label_temperature)
    return reduce_lists(_cross_entropy(target, batch), batch.real_lists(), batch, reduction)


def kl_div_loss(
    scores: Tensor,
    labels: Tensor,
    mask: Tensor | None = None,
    *,
    weights: Tensor | None = None,
    reduction: Reduction = "mean",
    label_temperature: float = 1.0,
) -> Tensor:
    r"""KL divergence from softmax(labels / T) to softmax(scores) (listwise distillation).

    .. math:: \ell = \sum_i p_i (\log p_i - \log q_i), \quad p = \mathrm{softmax}(y / T),\;
        q = \mathrm{softmax}(s)

    :math:`T` is ``label_temperature`` (it divides the teacher's scores, the labels). It has
    the gradient of :func:`listnet_loss` but is 0 when the distributions match, which
    suits distillation, where the labels are a teacher's scores. Per-list value as ListNet.
    Cost: :math:`O(n)` per list.

    Reference: Hinton, Vinyals and Dean, "Distilling the Knowledge in a Neural Network", 2015.
    """
    label_temperature = params.positive("kl_div_loss", "label_temperature", label_temperature)
    batch = check_lists(scores, labels, mask, weights, where="kl_div_loss", reduction=reduction)
    log_p = _masked_log_softmax(batch.labels / label_temperature, batch.real)
    log_q = _masked_log_softmax(batch.scores, batch.real)
    per_list = _item_weighted(torch.exp(log_p) * (log_p - log_q), batch).sum(-1)
    return reduce_lists(per_list, batch.real_lists(), batch, reduction)


def _reverse_logcumsumexp(x: Tensor) -> Tensor:
    return torch.logcumsumexp(x.flip(-1), dim=-1).flip(-1)


def listmle_loss(
    scores: Tensor,
    labels: Tensor,
    mask: Tensor | None = None,
    *,
    weights: Tensor | None = None,
    reduction: Reduction = "mean",
    generator: torch.Generator | None = None,
) -> Tensor:
    r"""ListMLE: negative Plackett-Luce log-likelihood of the order given by the labels.

    .. math:: \ell = \sum_{t=1}^{|R|} \Bigl( \log \sum_{u \ge t} e^{s_{\pi(u)}} -
        s_{\pi(t)} \Bigr)

    where :math:`\pi` sorts the real items by descending label. Ties in the labels are broken
    in input order, or uniformly at random when a seeded ``generator`` is passed (a fresh order
    on every call). Per-item weights weight each stage :math:`t` by the weight of item
    :math:`\pi(t)`. The per-list value is the sum over the list's real items (padding never
    enters it); ``"mean"`` averages over lists with a real item. Cost: a sort and
    :math:`O(n)` per list.

    Reference: Xia et al., "Listwise Approach to Learning to Rank: Theory and Algorithm",
    ICML 2008.
    """
    batch = check_lists(scores, labels, mask, weights, where="listmle_loss", reduction=reduction)
    b, n = batch.scores.shape
    if generator is not None:
        shuffle = torch.rand(b, n, generator=generator, device=generator.device)
        shuffle = torch.argsort(shuffle.to(batch.scores.device), dim=-1)
    else:
        shuffle = torch.arange(n, device=batch.scores.device).expand(b, n)
    labels = batch.labels.gather(-1, shuffle)
    real = batch.mask.gather(-1, shuffle)
    keyed = torch.where(real, labels, labels.new_full((), -math.inf))
    order = shuffle.gather(-1, torch.sort(keyed, dim=-1, descending=True, stable=True).indices)
    sorted_scores = batch.scores.gather(-1, order)
    sorted_real = batch.mask.gather(-1, order)
    # Padded items sort last; a score of -inf removes them from the tails.
    filled = masked_logits(sorted_scores, sorted_real)
    terms = _reverse_logcumsumexp(filled) - filled
    terms = torch.where(sorted_real, terms, terms.new_zeros(()))
    if batch.item_weights is not None:
        terms = terms * batch.item_weights.gather(-1, order)
    return reduce_lists(terms.sum(-1), batch.mask.any(-1), batch, reduction)


def _ndcg_inputs(batch: ListBatch, gain_kind: str, k: int | None = None) -> tuple[Tensor, Tensor]:
    """Gains over the ideal DCG@k (per-item weights scale the gains), and which lists have a
    positive ideal DCG; finite for any finite label."""
    return normalised_gains(batch.labels, batch.mask, gain_kind, k, weights=batch.item_weights)


def approx_ndcg_loss(
    scores: Tensor,
    labels: Tensor,
    mask: Tensor | None = None,
    *,
    weights: Tensor | None = None,
    reduction: Reduction = "mean",
    alpha: float = 10.0,
    gain: Literal["exp2", "linear"] = "exp2",
    impl: Literal["auto", "torch", "streaming", "triton"] = "auto",
    tile_size: int | None = None,
) -> Tensor:
    r"""ApproxNDCG: one minus NDCG computed with smooth (sigmoid) ranks.

    .. math::
        \hat r_i = 1 + \sum_{j \ne i} \sigma\bigl(\alpha (s_j - s_i)\bigr), \quad
        \ell = 1 - \frac{1}{\mathrm{IDCG}} \sum_i \frac{G_i}{\log_2(1 + \hat r_i)}

    with gains :math:`G = 2^y - 1` (``gain="exp2"``) or :math:`y`; per-item weights scale the
    gains. The sum over :math:`j` runs over real items only. A list whose ideal DCG is not
    positive (e.g. no relevant item) has nothing to learn from: it counts as 0 and is left out
    of the mean. The per-list value lies in [0, 1] for non-negative gains; ``"mean"`` averages
    over lists.

    ``impl``: ``"torch"`` builds ``[B, n, n]`` matrices; ``"streaming"`` computes the smooth
    ranks and the closed-form gradient over tiles of ``tile_size`` (default 256) items and
    never holds them; ``"auto"`` streams above :math:`2^{26}` pairs (see
    :mod:`rankloss.kernels.dispatch`); there is no Triton kernel (``"triton"`` raises).
    Cost: :math:`O(n^2)` time per list; memory :math:`O(n^2)` per list with ``"torch"``,
    :math:`O(Bn + \text{tile}^2)` with ``"streaming"``.

    Reference: Qin, Liu and Li, "A General Approximation Framework for Direct Optimization of
    Information Retrieval Measures", Information Retrieval 2010.
    """
    from rankloss.functional._streaming import streaming_smooth_ranks
    from rankloss.functional.pairwise import auto_streaming_above, check_impl
    from rankloss.kernels.dispatch import resolve_impl

    alpha = params.positive("approx_ndcg_loss", "alpha", alpha)
    params.choice("approx_ndcg_loss", "gain", gain, GAINS)
    tile = check_impl("approx_ndcg_loss", impl, tile_size, no_kernel="ApproxNDCG")
    batch = check_lists(
        scores, labels, mask, weights, where="approx_ndcg_loss", reduction=reduction
    )
    size, n = batch.scores.shape
    chosen = resolve_impl(
        impl,
        batch.scores.device,
        where="approx_ndcg_loss",
        elements=size * n * n,
        has_triton=False,
        streaming_above=auto_streaming_above(batch.scores.device),
    )
    gains, valid = _ndcg_inputs(batch, gain)
    if chosen == "streaming":
        approx_ranks = streaming_smooth_ranks(batch.scores, batch.mask, alpha, tile)
    elif not batch.padded:
        diff = batch.scores.unsqueeze(-2) - batch.scores.unsqueeze(-1)  # [b, i, j] = s_j - s_i
        # Every item is real: the diagonal's sigma(0) = 1/2 (its gradient is exactly 0, as
        # s_i - s_i does not move) stands in for the 1/2 of the rank's leading 1.
        approx_ranks = 0.5 + torch.sigmoid(diff.mul_(alpha)).sum(-1)
    else:
        with torch.no_grad():
            others = batch.mask.unsqueeze(-2) & batch.mask.unsqueeze(-1)
            others.diagonal(dim1=-2, dim2=-1).fill_(False)
        diff = batch.scores.unsqueeze(-2) - batch.scores.unsqueeze(-1)  # [b, i, j] = s_j - s_i
        # sigmoid(-inf) = 0 with a zero gradient: pairs that are not "others" drop out.
        soft = torch.sigmoid(diff.mul_(alpha).masked_fill_(~others, -math.inf))
        approx_ranks = 1.0 + soft.sum(-1)
    ndcg = (gains * discount(approx_ranks)).sum(-1)
    return reduce_lists(1.0 - ndcg, valid, batch, reduction)


def _neural_sort_log(
    scores: Tensor, mask: Tensor | None, temperature: float
) -> tuple[Tensor, Tensor | None]:
    r"""Log of the NeuralSort relaxation :math:`\log \hat P` per list, ``[B, n, n]``.

    Row :math:`t` (rank position, :math:`1 \le t \le n_b`) and column :math:`j` (item):
    :math:`\hat P_{tj} = \mathrm{softmax}_j\bigl(((n_b + 1 - 2t) s_j - \sum_k |s_j - s_k|)
    / \tau\bigr)`, over the list's :math:`n_b` real items only. Padded columns hold ``-inf``
    and rows beyond :math:`n_b` 0 (:func:`~rankloss._core.ranking.masked_logits`). Returns the
    logits and the ``[B, n, n]`` mask of real entries, or ``None`` for it when ``mask`` is
    ``None`` (nothing padded, every entry real).
    """
    n = scores.shape[-1]
    abs_diff = (scores.unsqueeze(-1) - scores.unsqueeze(-2)).abs()
    positions = torch.arange(1, n + 1, device=scores.device, dtype=scores.dtype)
    lengths: Tensor | float
    if mask is None:
        lengths = float(n)
        row_sums = abs_diff.sum(-1)  # [b, n]
    else:
        lengths = mask.sum(-1, keepdim=True).to(scores.dtype)  # [b, 1]
        pair_real = mask.unsqueeze(-1) & mask.unsqueeze(-2)
        row_sums = torch.where(pair_real, abs_diff, abs_diff.new_zeros(())).sum(-1)
    # one coefficient per rank position ([n], or [b, n] with a mask)
    coefficient = (lengths + 1.0 - 2.0 * positions) / temperature
    logits = coefficient.unsqueeze(-1) * scores.unsqueeze(-2)
    logits = logits - (row_sums / temperature).unsqueeze(-2)
    if mask is None:
        return logits, None
    rows_real = positions.unsqueeze(0) <= lengths  # [b, n]
    valid = rows_real.unsqueeze(-1) & mask.unsqueeze(-2)
    return masked_logits(logits, valid), valid


def _neural_sort_matrix(logits: Tensor, valid: Tensor | None) -> Tensor:
    """``[B, n, n]``: the row softmax of :func:`_neural_sort_log`'s logits, 0 outside
    ``valid`` (``None``: every entry is real)."""
    matrix = torch.softmax(logits, dim=-1)
    if valid is None:
        return matrix
    return torch.where(valid, matrix, logits.new_zeros(()))


def neural_ndcg_loss(
    scores: Tensor,
    labels: Tensor,
    mask: Tensor | None = None,
    *,
    weights: Tensor | None = None,
    reduction: Reduction = "mean",
    temperature: float = 1.0,
    sinkhorn_iterations: int = 50,
    k: int | None = None,
    gain: Literal["exp2", "linear"] = "exp2",
) -> Tensor:
    r"""NeuralNDCG: one minus NDCG computed with a NeuralSort permutation matrix.

    .. math::
        \hat P_{t,:} = \mathrm{softmax}\Bigl(\frac{(n + 1 - 2t)\, s - A_s \mathbf{1}}{\tau}
        \Bigr), \quad (A_s)_{jk} = |s_j - s_k|

    :math:`\hat P` is made doubly stochastic by ``sinkhorn_iterations`` rounds of Sinkhorn
    scaling (alternating row and column normalisation, in log space), then

    .. math::
        \ell = 1 - \frac{1}{\mathrm{IDCG@k}} \sum_{t \le k} \frac{(\hat P G)_t}
        {\log_2(1 + t)}

    with gains :math:`G = 2^y - 1` (``gain="exp2"``) or :math:`y`. :math:`n` is each list's
    own number of real items, so padding changes nothing. A list whose ideal DCG is not
    positive counts as 0 and is left out of the mean. Cost: :math:`O(n^2 \cdot
    \text{iterations})` time per list (two matrix-vector products per Sinkhorn round, in linear
    space, forward and backward); memory :math:`O(Bn^2 + Bn \cdot \text{iterations})`: a few
    ``[B, n, n]`` matrices (the NeuralSort logits, their softmax and its transpose; the
    gradient of the softmax in the backward) and two ``[B, n]`` scaling vectors per round,
    never one ``[B, n, n]`` matrix per round.

    Reference: Pobrotyn and Białobrzeski, "NeuralNDCG: Direct Optimisation of a Ranking Metric
    via Differentiable Relaxation of Sorting", 2021; Grover et al., "Stochastic Optimization of
    Sorting Networks via Continuous Relaxations" (NeuralSort), ICLR 2019.
    """
    where = "neural_ndcg_loss"
    temperature = params.positive(where, "temperature", temperature)
    sinkhorn_iterations = params.nonnegative_int(where, "sinkhorn_iterations", sinkhorn_iterations)
    k = params.cutoff(where, "k", k)
    params.choice(where, "gain", gain, GAINS)
    batch = check_lists(
        scores, labels, mask, weights, where="neural_ndcg_loss", reduction=reduction
    )
    log_p, valid = _neural_sort_log(batch.scores, batch.real, temperature)
    gains, ok = _ndcg_inputs(batch, gain, k)
    sorted_gains = _sinkhorn_expected_gains(log_p, valid, gains, sinkhorn_iterations)
    return reduce_lists(1.0 - dcg_at_k(sorted_gains, k), ok, batch, reduction)


def _sinkhorn_expected_gains(
    logits: Tensor, valid: Tensor | None, gains: Tensor, iterations: int
) -> Tensor:
    r"""``[B, n]``: :math:`(\hat P G)_t`, with :math:`\hat P` the Sinkhorn-scaled NeuralSort matrix.

    Sinkhorn scaling keeps the form :math:`\hat P = \mathrm{diag}(u)\, K\, \mathrm{diag}(v)`
    with :math:`K` the row-softmax of ``logits`` (over ``valid`` entries; 0 elsewhere), so the
    iterations alternate :math:`v = 1 / K^\top u` (columns) and :math:`u = 1 / K v` (rows), two
    matrix-vector products each, in linear space. The start is stable: every row of :math:`K`
    is a softmax, and every real item's column holds the largest entry of some row (the
    NeuralSort row of its rank), so no column sum is below :math:`1/n` and nothing
    underflows to a zero sum. :math:`\hat P` itself is never formed: the expected gain at rank
    :math:`t` is :math:`u_t (K (v \odot G))_t`. Rows beyond a list's length and padded columns
    are 0 (``valid=None``: every entry is real). The gradient is :class:`_SinkhornGains`'s
    exact reverse pass.
    """
    kernel = _neural_sort_matrix(logits, valid)
    rows_real = None if valid is None else valid.any(-1)
    columns_real = None if valid is None else valid.any(-2)
    out: Tensor = _SinkhornGains.apply(kernel, gains, rows_real, columns_real, iterations)
    return out


def _safe_reciprocal(x: Tensor, real: Tensor | None) -> Tensor:
    """``1 / x`` where ``real``, 0 elsewhere (no division by the 0 of an empty row or column);
    ``real=None``: every row or column is real."""
    if real is None:
        return torch.reciprocal(x)
    one = x.new_ones(())
    return torch.where(real, one / torch.where(real, x, one), x.new_zeros(()))


def _row_times(x: Tensor, matrix: Tensor) -> Tensor:
    """``[B, n]``: :math:`x^\top M` per list (a batched row-vector product)."""
    return torch.bmm(x.unsqueeze(-2), matrix).squeeze(-2)


class _SinkhornGains(torch.autograd.Function):
    r""":math:`u_I \odot K (v_I \odot G)` after ``I`` Sinkhorn rounds, with a reverse pass that
    keeps only the ``2I`` scaling vectors (not ``I`` copies of ``[B, n, n]``) and forms the
    gradient of :math:`K` as one product of stacked vectors. Memory: :math:`K` and its
    transpose plus :math:`O(B n I)`."""

    @staticmethod
    def forward(
        ctx: Any,
        kernel: Tensor,
        gains: Tensor,
        rows_real: Tensor | None,
        columns_real: Tensor | None,
        iterations: int,
    ) -> Tensor:
        """``rows_real`` and ``columns_real`` are ``[B, n]``, or ``None`` when every row and
        column is real (no padding: plain reciprocals, no masking ops)."""
        transposed = kernel.transpose(-1, -2).contiguous()
        ones = gains.new_ones(gains.shape, dtype=kernel.dtype)
        u = ones if rows_real is None else rows_real.to(kernel.dtype)
        v = ones if columns_real is None else columns_real.to(kernel.dtype)
        us, vs = [u], []
        for _ in range(iterations):
            v = _safe_reciprocal(_row_times(u, kernel), columns_real)
            u = _safe_reciprocal(_row_times(v, transposed), rows_real)
            vs.append(v)
            us.append(u)
        if not vs:
            vs.append(v)
        weighted = _row_times(v * gains, transposed)
        ctx.save_for_backward(kernel, transposed, gains, weighted, torch.stack(us), torch.stack(vs))
        ctx.iterations = iterations
        return u * weighted

    @staticmethod
    @first_order_backward(
        "neural_ndcg_loss (its Sinkhorn reverse pass)", "another loss for second derivatives"
    )
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, ...]:
        kernel, transposed, gains, weighted, us, vs = ctx.saved_tensors
        iterations = ctx.iterations
        u_last, v_last = us[-1], vs[-1]
        grad_u = grad * weighted
        grad_weighted = grad * u_last
        back = _row_times(grad_weighted, kernel)  # K^T w-bar
        grad_gains = back * v_last
        grad_v = back * gains
        left, right = [grad_weighted], [v_last * gains]
        for i in range(iterations, 0, -1):
            u_i, v_i, u_prev = us[i], vs[i - 1], us[i - 1]
            grad_row_sums = -grad_u * u_i * u_i
            left.append(grad_row_sums)
            right.append(v_i)
            grad_v = grad_v + _row_times(grad_row_sums, kernel)
            grad_column_sums = -grad_v * v_i * v_i
            left.append(u_prev)
            right.append(grad_column_sums)
            grad_u = _row_times(grad_column_sums, transposed)
            grad_v = torch.zeros_like(grad_v)
        grad_kernel = None
        if ctx.needs_input_grad[0]:
            grad_kernel = torch.bmm(torch.stack(left, -1), torch.stack(right, -2))
        return grad_kernel, grad_gains if ctx.needs_input_grad[1] else None, None, None, None

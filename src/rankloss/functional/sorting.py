r"""Differentiable sorting and ranking operators on ``[..., n]`` with an optional bool ``mask``.

Two relaxed permutation matrices (row :math:`t` = rank position, column :math:`j` = item):

* :func:`neural_sort` (Grover et al., ICLR 2019) and
* :func:`soft_sort_matrix` (SoftSort, Prillo and Eisenschlos, ICML 2020);

and two projections onto the permutahedron (Blondel et al., ICML 2020), exact in the limit of
a small ``regularization_strength`` and piecewise linear otherwise:

* :func:`soft_sort`: the values in (soft) sorted order;
* :func:`soft_rank`: the (soft) rank of every item, 1 for the largest when ``descending``.

Masked items take no part (each list is sorted among its own real items) and get a zero
gradient. Half-precision inputs are computed in float32.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import Tensor

from rankloss._core import params
from rankloss._core.ranking import masked_logits
from rankloss._core.validation import compute_dtype
from rankloss.functional.listwise import _neural_sort_log, _neural_sort_matrix

__all__ = ["neural_sort", "soft_sort_matrix", "soft_sort", "soft_rank", "isotonic_nonincreasing"]


def _prepare(values: Tensor, mask: Tensor | None, where: str) -> tuple[Tensor, Tensor, torch.Size]:
    """Flatten to ``[B, n]`` in the compute dtype, check the mask, zero the padding."""
    if not isinstance(values, Tensor) or values.dim() < 1:
        raise ValueError(f"{where}: values must be a tensor of shape [..., n]")
    if not values.dtype.is_floating_point:
        raise ValueError(f"{where}: values must be floating point, got dtype {values.dtype}")
    shape = values.shape
    flat = values.to(compute_dtype(values.dtype)).reshape(math.prod(shape[:-1]), shape[-1])
    if mask is None:
        real = torch.ones_like(flat, dtype=torch.bool)
    else:
        if not isinstance(mask, Tensor) or mask.dtype != torch.bool or mask.shape != shape:
            raise ValueError(
                f"{where}: mask must be a bool tensor of the shape of the values "
                f"{tuple(shape)}, got {getattr(mask, 'dtype', type(mask).__name__)} "
                f"{tuple(getattr(mask, 'shape', ()))}"
            )
        real = mask.reshape(flat.shape).to(flat.device)
    real_values = flat.detach()[real]
    if real_values.numel() and not bool(torch.isfinite(real_values).all()):
        raise ValueError(f"{where}: values holds NaN or inf at a real (unmasked) position")
    return torch.where(real, flat, flat.new_zeros(())), real, shape


def neural_sort(scores: Tensor, mask: Tensor | None = None, *, temperature: float) -> Tensor:
    r"""NeuralSort: a row-stochastic relaxation of the permutation that sorts descending.

    .. math:: \hat P_{t,:} = \mathrm{softmax}\Bigl(\frac{(n + 1 - 2t)\, s - A_s \mathbf{1}}
        {\tau}\Bigr), \qquad (A_s)_{jk} = |s_j - s_k|

    :math:`\hat P_{tj}` is the weight of item :math:`j` at rank position :math:`t`; as
    :math:`\tau \to 0` it tends to the hard permutation matrix (ties aside), so
    :math:`\hat P s` tends to the scores sorted in descending order.

    Args:
        scores: ``[..., n]``.
        mask: ``[..., n]`` bool (True = real item) or ``None``. :math:`n` is each list's own
            number of real items; rows beyond it and padded columns are 0.
        temperature: :math:`\tau > 0`, divides the logits.

    Returns:
        ``[..., n, n]``, rows summing to 1 (over the real items) for :math:`t \le n`.

    Cost: :math:`O(n^2)` time and memory per list.

    Reference: Grover et al., "Stochastic Optimization of Sorting Networks via Continuous
    Relaxations", ICLR 2019.
    """
    temperature = params.positive("neural_sort", "temperature", temperature)
    flat, real, shape = _prepare(scores, mask, "neural_sort")
    logits, valid = _neural_sort_log(flat, real, temperature)
    matrix = _neural_sort_matrix(logits, valid)
    return matrix.reshape(*shape, shape[-1])


def soft_sort_matrix(
    scores: Tensor, mask: Tensor | None = None, *, temperature: float = 1.0, power: float = 1.0
) -> Tensor:
    r"""SoftSort: a row-stochastic relaxation of the permutation that sorts descending.

    .. math:: \hat P_{t,:} = \mathrm{softmax}\Bigl(-\frac{|s_{[t]} - s|^p}{\tau}\Bigr)

    with :math:`s_{[t]}` the :math:`t`-th largest score (the sort itself is differentiable
    almost everywhere, and gradients flow through it). As :math:`\tau \to 0` it tends to the hard
    permutation matrix for distinct scores.

    Args:
        scores: ``[..., n]``.
        mask: ``[..., n]`` bool or ``None``; rows beyond a list's length and padded columns
            are 0.
        temperature: :math:`\tau > 0`, divides the logits.
        power: :math:`p > 0`, the power of the distance (1 in the paper).

    Returns:
        ``[..., n, n]``.

    Cost: a sort and :math:`O(n^2)` time and memory per list.

    Reference: Prillo and Eisenschlos, "SoftSort: A Continuous Relaxation for the argsort
    Operator", ICML 2020.
    """
    temperature = params.positive("soft_sort_matrix", "temperature", temperature)
    power = params.positive("soft_sort_matrix", "power", power)
    flat, real, shape = _prepare(scores, mask, "soft_sort_matrix")
    n = shape[-1]
    keyed = torch.where(real, flat, flat.new_full((), -math.inf))
    order = torch.sort(keyed.detach(), dim=-1, descending=True, stable=True).indices
    sorted_values = flat.gather(-1, order)
    distance = (sorted_values.unsqueeze(-1) - flat.unsqueeze(-2)).abs()
    if power != 1.0:
        # (x + 0)^p has an infinite gradient at 0 for p < 1: keep it finite on the diagonal.
        distance = torch.where(distance > 0, distance, distance.new_ones(())).pow(power) * (
            distance > 0
        )
    lengths = real.sum(-1, keepdim=True)
    rows_real = torch.arange(n, device=flat.device).unsqueeze(0) < lengths
    valid = rows_real.unsqueeze(-1) & real.unsqueeze(-2)
    logits = masked_logits(-distance / temperature, valid)
    matrix = torch.where(valid, torch.softmax(logits, dim=-1), flat.new_zeros(()))
    return matrix.reshape(*shape, n)


# ------------------------------------------------------------------------------------------
# Isotonic regression and the permutahedron projection


def _pav_row(y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Non-increasing isotonic regression of one row by pool adjacent violators.

    Returns the fitted values and the block index of every position. :math:`O(n)` amortised.
    """
    n = y.shape[0]
    sums = np.empty(n)
    counts = np.empty(n, dtype=np.int64)
    top = -1
    for value in y:
        top += 1
        sums[top], counts[top] = value, 1
        # A block whose mean exceeds the mean of the block before it violates v_1 >= v_2 >= ...
        while top > 0 and sums[top] * counts[top - 1] > sums[top - 1] * counts[top]:
            sums[top - 1] += sums[top]
            counts[top - 1] += counts[top]
            top -= 1
    means = sums[: top + 1] / counts[: top + 1]
    blocks = np.repeat(np.arange(top + 1), counts[: top + 1])
    return means[blocks], blocks


def _pav(y: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
    """``(fit, block_ids)`` of the non-increasing isotonic regression of each row's first
    ``lengths[b]`` entries (0 beyond), by pool adjacent violators; ``block_ids [B, n]`` numbers
    each row's pooled blocks from 0, and each padded position is a block of its own (its
    index, which is at least the row's length)."""
    rows = y.detach().to("cpu", torch.float64).numpy()
    counts = lengths.to("cpu").tolist()
    out = np.zeros_like(rows)
    size, n = rows.shape
    blocks = np.tile(np.arange(n, dtype=np.int64), (size, 1))
    for b in range(size):
        m = int(counts[b])
        if m:
            out[b, :m], blocks[b, :m] = _pav_row(rows[b, :m])
    block_ids = torch.from_numpy(blocks).to(y.device)
    return torch.from_numpy(out).to(device=y.device, dtype=y.dtype), block_ids


class _IsotonicNonincreasing(torch.autograd.Function):
    r"""Isotonic regression :math:`\arg\min_{v_1 \ge \dots \ge v_m} \frac12 \|v - y\|^2` of the
    first ``lengths[b]`` entries of each row (the rest are returned as 0). The Jacobian is block
    diagonal, each block :math:`\mathbf{1}\mathbf{1}^\top / |B|` (the mean of the block), so the
    backward averages the incoming gradient within every block."""

    @staticmethod
    def forward(ctx: Any, y: Tensor, lengths: Tensor) -> Tensor:
        out, block_ids = _pav(y, lengths)
        ctx.save_for_backward(block_ids, lengths)
        return out

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None]:
        block_ids, lengths = ctx.saved_tensors
        n = grad.shape[-1]
        real = torch.arange(n, device=grad.device).unsqueeze(0) < lengths.unsqueeze(-1)
        g = torch.where(real, grad, grad.new_zeros(()))
        sums = torch.zeros_like(g).scatter_add_(-1, block_ids, g)
        counts = torch.zeros_like(g).scatter_add_(-1, block_ids, real.to(g.dtype))
        means = sums / counts.clamp(min=1.0)
        return torch.where(real, means.gather(-1, block_ids), g.new_zeros(())), None


def isotonic_nonincreasing(y: Tensor, lengths: Tensor) -> Tensor:
    r"""Non-increasing isotonic regression of the first ``lengths[b]`` entries of each row.

    .. math:: v = \arg\min_{v_1 \ge v_2 \ge \dots \ge v_m} \tfrac12 \|v - y\|^2

    Solved by pool adjacent violators: every block of pooled entries takes its mean.

    Args:
        y: ``[B, n]`` floating point.
        lengths: ``[B]`` integers in ``0..n``; entries at positions ``>= lengths[b]`` are
            ignored and returned as 0 with a zero gradient.

    Returns:
        ``[B, n]``; differentiable (the backward averages the gradient within each block).

    Cost: :math:`O(n)` per row, in a Python loop on the CPU (a copy to and from the host for
    other devices); the backward is vectorised.

    Reference: Best and Chakravarti, "Active set algorithms for isotonic regression", 1990.

    Raises:
        ValueError: ``y`` is not a floating ``[B, n]`` tensor, ``lengths`` not ``[B]``
            integers in ``0..n``, or an entry of ``y`` within its row's length not finite.
    """
    _check_isotonic_inputs(y, lengths)
    return _isotonic(y, lengths)


def _isotonic(y: Tensor, lengths: Tensor) -> Tensor:
    """:func:`isotonic_nonincreasing` without the checks, for the callers here whose inputs
    are valid by construction (the soft sorting operators)."""
    out: Tensor = _IsotonicNonincreasing.apply(y, lengths)
    return out


def _check_isotonic_inputs(y: Tensor, lengths: Tensor) -> None:
    """The ``Raises`` of :func:`isotonic_nonincreasing`."""
    where = "isotonic_nonincreasing"
    if not isinstance(y, Tensor) or y.dim() != 2 or not y.dtype.is_floating_point:
        raise ValueError(f"{where}: y must be a floating [B, n] tensor, got {y!r:.80}")
    if (
        not isinstance(lengths, Tensor)
        or lengths.shape != y.shape[:1]
        or lengths.dtype.is_floating_point
        or lengths.dtype == torch.bool
    ):
        raise ValueError(
            f"{where}: lengths must be [B] = [{y.shape[0]}] integers, got "
            f"{lengths.dtype if isinstance(lengths, Tensor) else type(lengths).__name__} "
            f"{list(lengths.shape) if isinstance(lengths, Tensor) else ''}"
        )
    if lengths.numel() and (int(lengths.min()) < 0 or int(lengths.max()) > y.shape[1]):
        raise ValueError(
            f"{where}: lengths must be in 0..{y.shape[1]}, got {lengths.min().item()} to "
            f"{lengths.max().item()}"
        )
    inside = torch.arange(y.shape[1], device=y.device) < lengths.to(y.device).unsqueeze(-1)
    if not bool(torch.isfinite(y.detach()[inside]).all()):
        raise ValueError(f"{where}: y holds a value that is not finite within a row's length")


def _block_mean(x: Tensor, blocks: Tensor, real: Tensor) -> Tensor:
    """``[B, n]``: each position's mean of ``x`` over its block (real positions only)."""
    sums = torch.zeros_like(x).scatter_add(-1, blocks, torch.where(real, x, x.new_zeros(())))
    counts = torch.zeros_like(x).scatter_add(-1, blocks, real.to(x.dtype))
    return (sums / counts.clamp(min=1.0)).gather(-1, blocks)


def _sort_real(x: Tensor, real: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """``(order, sorted_real, x_sorted)``: each list's real entries of ``x`` in descending
    order first (stable), then its padded positions (0 in ``x_sorted``)."""
    keyed = torch.where(real, x, x.new_full((), -math.inf))
    order = torch.sort(keyed.detach(), dim=-1, descending=True, stable=True).indices
    sorted_real = real.gather(-1, order)
    return order, sorted_real, torch.where(sorted_real, x.gather(-1, order), x.new_zeros(()))


def _projection_in_blocks(
    values_sorted: Tensor, epsilon: float, target_sorted: Tensor, real: Tensor
) -> Tensor:
    r"""The permutahedron projection, sorted: :math:`(s_i - \bar s_B) / \varepsilon + \bar t_B`
    for position :math:`i` of block :math:`B` of the isotonic fit of
    :math:`s / \varepsilon - t` (``values_sorted`` :math:`s` and ``target_sorted`` :math:`t`,
    both sorted, real entries first).

    Equal to :math:`s_i / \varepsilon - \mathrm{fit}_i` (the fit of a block is
    :math:`\bar s_B / \varepsilon - \bar t_B`) without subtracting numbers of size
    :math:`1 / \varepsilon`, which lost every digit for a small :math:`\varepsilon` (the
    hard limit came out as zeros). The blocks are those pool adjacent violators forms (a
    constant: the projection is linear within them, so this is the gradient
    :func:`isotonic_nonincreasing` gives)."""
    with torch.no_grad():
        _, pav_blocks = _pav(values_sorted / epsilon - target_sorted, real.sum(-1))
        # Equal values (ties of soft_rank's scores) always pool in exact arithmetic; for a
        # tiny eps the rounding of s / eps - t hides that from the solver: joined here.
        new = torch.ones_like(real)
        new[..., 1:] = (pav_blocks[..., 1:] != pav_blocks[..., :-1]) & (
            values_sorted[..., 1:] != values_sorted[..., :-1]
        ) | (real[..., 1:] != real[..., :-1])
        blocks = new.long().cumsum(-1) - 1
    spread = (values_sorted - _block_mean(values_sorted, blocks, real)) / epsilon
    zero = spread.new_zeros(())
    return torch.where(real, spread + _block_mean(target_sorted, blocks, real), zero)


def _descending_positions(real: Tensor) -> Tensor:
    """``[B, n]``: :math:`(m, m - 1, \\dots, 1, 0, \\dots)` with :math:`m` each list's length."""
    n = real.shape[-1]
    lengths = real.sum(-1, keepdim=True)
    positions = torch.arange(n, device=real.device).unsqueeze(0)
    return (lengths - positions).clamp(min=0)


def soft_sort(
    values: Tensor,
    mask: Tensor | None = None,
    *,
    regularization_strength: float = 1.0,
    descending: bool = True,
) -> Tensor:
    r"""Soft sort: the projection of :math:`\rho / \varepsilon` onto the permutahedron of the
    values.

    .. math:: \mathrm{softsort}_\varepsilon(\theta) = \arg\min_{\mu \in \mathcal P(\theta)}
        \tfrac12 \| \mu - \rho / \varepsilon \|^2, \qquad \rho = (n, n - 1, \dots, 1)

    computed as :math:`\rho / \varepsilon - v` with :math:`v` the non-increasing isotonic
    regression of :math:`\rho / \varepsilon - \theta_{\text{sorted}}`. For
    :math:`\varepsilon \to 0` it is the hard sort (descending, or ascending with
    ``descending=False``); as :math:`\varepsilon` grows every entry tends to the mean. The sum
    of the values is kept for every :math:`\varepsilon`.

    Args:
        values: ``[..., n]``.
        mask: ``[..., n]`` bool or ``None``; each list is sorted among its real items, which
            fill the first positions of the output; the rest is 0 (zero gradient).
        regularization_strength: :math:`\varepsilon > 0`.
        descending: largest first (default) or smallest first.

    Returns:
        ``[..., n]`` in the input dtype (float32 for half-precision inputs); computed in
        float64, block by block of the isotonic fit, so no number of size
        :math:`1 / \varepsilon` is subtracted and a tiny :math:`\varepsilon` gives the hard
        limit.

    Cost: a sort, then :math:`O(n)` pool-adjacent-violators per list in a Python loop on the
    CPU (see :func:`isotonic_nonincreasing`); the backward is :math:`O(n)` and vectorised.

    Reference: Blondel, Teboul, Berthet and Djolonga, "Fast Differentiable Sorting and
    Ranking", ICML 2020.
    """
    epsilon = params.positive("soft_sort", "regularization_strength", regularization_strength)
    descending = params.boolean("soft_sort", "descending", descending)
    flat, real, shape = _prepare(values, mask, "soft_sort")
    sign = 1.0 if descending else -1.0
    _, sorted_real, theta_sorted = _sort_real(sign * flat.double(), real)
    positions = _descending_positions(real).to(theta_sorted.dtype)
    # rho = positions / eps is already in descending order: no permutation on its side.
    out = _projection_in_blocks(positions, epsilon, theta_sorted, sorted_real)
    return (sign * out).to(flat.dtype).reshape(shape)


def soft_rank(
    values: Tensor,
    mask: Tensor | None = None,
    *,
    regularization_strength: float = 1.0,
    descending: bool = True,
) -> Tensor:
    r"""Soft rank: the projection of :math:`-\theta / \varepsilon` onto the permutahedron of
    :math:`\rho = (n, \dots, 1)`.

    .. math:: \mathrm{softrank}_\varepsilon(\theta) = \arg\min_{\mu \in \mathcal P(\rho)}
        \tfrac12 \| \mu + \theta / \varepsilon \|^2

    For :math:`\varepsilon \to 0` it is the hard rank, 1 for the largest value (or the smallest
    with ``descending=False``); tied values get equal (averaged) ranks for every
    :math:`\varepsilon`. The ranks lie in :math:`[1, n]` and sum to :math:`n(n+1)/2`.

    Args:
        values: ``[..., n]``.
        mask: ``[..., n]`` bool or ``None``; each list is ranked among its real items
            (:math:`n` is its own length); padded positions hold 0 (zero gradient).
        regularization_strength: :math:`\varepsilon > 0`.
        descending: rank 1 for the largest value (default) or for the smallest.

    Returns:
        ``[..., n]`` in the input dtype (float32 for half-precision inputs); computed in
        float64, block by block of the isotonic fit, so no number of size
        :math:`1 / \varepsilon` is subtracted and a tiny :math:`\varepsilon` gives the hard
        limit.

    Cost: a sort, then :math:`O(n)` pool-adjacent-violators per list in a Python loop on the
    CPU (see :func:`isotonic_nonincreasing`); the backward is :math:`O(n)` and vectorised.

    Reference: Blondel, Teboul, Berthet and Djolonga, "Fast Differentiable Sorting and
    Ranking", ICML 2020.
    """
    epsilon = params.positive("soft_rank", "regularization_strength", regularization_strength)
    descending = params.boolean("soft_rank", "descending", descending)
    flat, real, shape = _prepare(values, mask, "soft_rank")
    # The projection of z = -values / eps onto the permutahedron of rho = (n, ..., 1), sorted.
    order, sorted_real, x_sorted = _sort_real((-flat if descending else flat).double(), real)
    rho = _descending_positions(real).to(x_sorted.dtype)
    projected = _projection_in_blocks(x_sorted, epsilon, rho, sorted_real)
    out = torch.empty_like(projected).scatter(-1, order, projected)
    out = torch.where(real, out, out.new_zeros(()))
    return out.to(flat.dtype).reshape(shape)

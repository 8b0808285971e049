r"""Fused Triton kernels of the contrastive embedding losses (``impl="triton"``).

One kernel family covers InfoNCE (and through it NT-Xent and the symmetric CLIP loss), SupCon
and SigLIP on :class:`~rankloss._core.candidates.Candidates`: queries ``[N, d]`` (already
divided by the temperature or multiplied by the SigLIP scale, and normalised for cosine, in
PyTorch, so those steps keep their autograd) against keys ``[M, d]``. Tiles of
``BLOCK_N`` queries by ``BLOCK_M`` keys are multiplied with ``tl.dot`` over chunks of
``BLOCK_K`` of ``d`` (a tile never holds whole rows, so the tiles need not shrink as ``d``
grows), in the input dtype (float32, float16, bfloat16) with float32 accumulation; the
positive and negative masks of a tile are made inside the kernel from the per-row label
vectors, the forced-negative flags of the keys and the ``exclude_self`` / ``diagonal_only``
flags, exactly as
:meth:`Candidates.masks` makes them; no ``[N, M]`` tensor is ever written.

* InfoNCE: a first sweep keeps an online log-sum-exp
  :math:`L_i = \log\sum_{n \in \mathcal N_i} e^{z_{in}}`; a second sums
  :math:`\operatorname{softplus}(L_i - z_{ip})` over the positives. When the only positive of
  row :math:`i` is key :math:`i` (the in-batch ``(queries, keys)`` form, and masked false
  negatives) its logit is the row-wise product :math:`q_i \cdot k_i` and there is no second
  sweep.
  :math:`\partial\ell_i/\partial z_{ij} = [j \in \mathcal N_i] A_i e^{z_{ij} - L_i}
  - [j \in \mathcal P_i]\sigma(L_i - z_{ij})/|\mathcal P_i|`, with
  :math:`A_i = |\mathcal P_i|^{-1}\sum_p \sigma(L_i - z_{ip})`.
* SupCon: one sweep, :math:`\ell_i = \log\sum_{j \in \mathcal A_i} e^{z_{ij}} -
  |\mathcal P_i|^{-1}\sum_p z_{ip}`.
* SigLIP: one sweep of :math:`\operatorname{softplus}(-\zeta_{ij}(z_{ij} + b))`, no
  log-sum-exp.

Backward recomputes the tiles: one kernel sweeps the keys of a query block for
:math:`dQ = G K` (and the row sums of :math:`G`, the gradient of the SigLIP bias), a second
sweeps the queries of a key block for :math:`dK = G^\top Q`; each holds its block's
``[block, d]`` gradient in float32, so that block shrinks as ``d`` grows
(:func:`default_blocks`). The tile sizes are :class:`Blocks`. A learnable temperature or scale
gets its gradient through the scaled queries (:math:`-\sum z\,\partial\ell/\partial z / \tau`).

Memory :math:`O((N + M)d)`; time :math:`O(NMd)` (InfoNCE with several positives a row: two
forward sweeps). This module imports ``triton``; nothing imports it when ``rankloss`` is
imported.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import triton  # type: ignore[import-untyped]
import triton.language as tl  # type: ignore[import-untyped]
from torch import Tensor

from rankloss._core.autograd import first_order_backward
from rankloss._core.candidates import Candidates
from rankloss._core.validation import autocast_off, compute_dtype

__all__ = ["fused_per_anchor", "KINDS", "Blocks", "default_blocks"]

#: The losses the kernels compute, by name (the ``kind`` of :func:`fused_per_anchor`).
KINDS: dict[str, int] = {"info_nce": 0, "supcon": 1, "siglip": 2}


@triton.jit
def _tile_masks(
    ql, kl, kf, offs_n, offs_m, in_n, in_m, EXCLUDE_SELF: tl.constexpr, DIAGONAL_ONLY: tl.constexpr
):
    same = (ql[:, None] == kl[None, :]) & (kf[None, :] == 0)
    inside = in_n[:, None] & in_m[None, :]
    negative = (same == 0) & inside
    diag = offs_n[:, None] == offs_m[None, :]
    if DIAGONAL_ONLY:
        positive = diag & inside
    elif EXCLUDE_SELF:
        positive = same & (diag == 0) & inside
    else:
        positive = same & inside
    return positive, negative


@triton.jit
def _tile_logits(
    a_ptr,
    b_ptr,
    offs_a,
    offs_b,
    in_a,
    in_b,
    D,
    IEEE: tl.constexpr,
    BLOCK_A: tl.constexpr,
    BLOCK_B: tl.constexpr,
    BLOCK_K: tl.constexpr,
):
    """``[BLOCK_A, BLOCK_B]`` float32 products of rows ``offs_a`` of ``a`` with rows ``offs_b``
    of ``b``, over ``d`` in chunks of ``BLOCK_K`` (a tile never holds whole rows)."""
    z = tl.zeros((BLOCK_A, BLOCK_B), tl.float32)
    for kk in range(0, D, BLOCK_K):
        offs_k = kk + tl.arange(0, BLOCK_K)
        in_k = offs_k < D
        a = tl.load(
            a_ptr + offs_a[:, None] * D + offs_k[None, :],
            mask=in_a[:, None] & in_k[None, :],
            other=0.0,
        )
        b = tl.load(
            b_ptr + offs_b[:, None] * D + offs_k[None, :],
            mask=in_b[:, None] & in_k[None, :],
            other=0.0,
        )
        if IEEE:
            z += tl.dot(a, tl.trans(b), input_precision="ieee")
        else:
            z += tl.dot(a, tl.trans(b))
    return z


@triton.jit
def _row_products(a_ptr, b_ptr, offs, in_rows, D, BLOCK: tl.constexpr, BLOCK_K: tl.constexpr):
    """``[BLOCK]`` float32 :math:`a_i \\cdot b_i` of rows ``offs`` (``in_rows``: which exist)."""
    total = tl.zeros((BLOCK,), tl.float32)
    for kk in range(0, D, BLOCK_K):
        offs_k = kk + tl.arange(0, BLOCK_K)
        inside = in_rows[:, None] & (offs_k < D)[None, :]
        a = tl.load(a_ptr + offs[:, None] * D + offs_k[None, :], mask=inside, other=0.0)
        b = tl.load(b_ptr + offs[:, None] * D + offs_k[None, :], mask=inside, other=0.0)
        total += tl.sum(a.to(tl.float32) * b.to(tl.float32), axis=1)
    return total


@triton.jit
def _forward_kernel(
    q_ptr,
    k_ptr,
    ql_ptr,
    kl_ptr,
    kf_ptr,
    bias,
    out_value,
    out_lse,
    out_coef,
    out_count,
    out_valid,
    N,
    M,
    D,
    KIND: tl.constexpr,
    EXCLUDE_SELF: tl.constexpr,
    DIAGONAL_ONLY: tl.constexpr,
    DIAGONAL_POSITIVE: tl.constexpr,
    IEEE: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_M: tl.constexpr,
    BLOCK_K: tl.constexpr,
):
    pid = tl.program_id(0)
    offs_n = pid * BLOCK_N + tl.arange(0, BLOCK_N)
    in_n = offs_n < N
    ql = tl.load(ql_ptr + offs_n, mask=in_n, other=-1)
    run_max = tl.full((BLOCK_N,), float("-inf"), tl.float32)
    run_sum = tl.zeros((BLOCK_N,), tl.float32)
    total = tl.zeros((BLOCK_N,), tl.float32)
    count = tl.zeros((BLOCK_N,), tl.float32)
    pairs = tl.zeros((BLOCK_N,), tl.float32)
    for start in range(0, M, BLOCK_M):
        offs_m = start + tl.arange(0, BLOCK_M)
        in_m = offs_m < M
        kl = tl.load(kl_ptr + offs_m, mask=in_m, other=-2)
        kf = tl.load(kf_ptr + offs_m, mask=in_m, other=1)
        positive, negative = _tile_masks(
            ql, kl, kf, offs_n, offs_m, in_n, in_m, EXCLUDE_SELF, DIAGONAL_ONLY
        )
        z = _tile_logits(
            q_ptr, k_ptr, offs_n, offs_m, in_n, in_m, D, IEEE, BLOCK_N, BLOCK_M, BLOCK_K
        )
        if KIND == 2:
            x = z + bias
            x = tl.where(positive, -x, x)
            sp = tl.maximum(x, 0.0) + tl.log(1.0 + tl.exp(-tl.abs(x)))
            total += tl.sum(tl.where(positive | negative, sp, 0.0), axis=1)
            pairs += tl.sum((positive | negative).to(tl.float32), axis=1)
        else:
            if KIND == 0:
                member = negative
            else:
                member = positive | negative
                total += tl.sum(tl.where(positive, z, 0.0), axis=1)
            count += tl.sum(positive.to(tl.float32), axis=1)
            pairs += tl.sum(member.to(tl.float32), axis=1)
            zm = tl.where(member, z, float("-inf"))
            new_max = tl.maximum(run_max, tl.max(zm, axis=1))
            ref = tl.where(new_max == float("-inf"), 0.0, new_max)
            run_sum = run_sum * tl.exp(run_max - ref) + tl.sum(tl.exp(zm - ref[:, None]), axis=1)
            run_max = new_max
    ref = tl.where(run_max == float("-inf"), 0.0, run_max)
    lse = ref + tl.log(tl.where(run_sum > 0, run_sum, 1.0))
    if KIND == 0 and DIAGONAL_POSITIVE:
        # The only positive of row i is key i: its logit is one row-wise product, so no
        # second sweep over the keys.
        zd = _row_products(q_ptr, k_ptr, offs_n, in_n & (offs_n < M), D, BLOCK_N, BLOCK_K)
        gap = lse - zd
        sp = tl.maximum(gap, 0.0) + tl.log(1.0 + tl.exp(-tl.abs(gap)))
        total = tl.where(count > 0, sp, 0.0)
        coef = tl.where(count > 0, 1.0 / (1.0 + tl.exp(-gap)), 0.0)
        valid = (count > 0) & (pairs > 0)
        value = tl.where(valid, total, 0.0)
        tl.store(out_coef + offs_n, coef, mask=in_n)
    elif KIND == 0:
        # Second sweep: the positive terms against the finished log-sum-exp.
        coef = tl.zeros((BLOCK_N,), tl.float32)
        for start in range(0, M, BLOCK_M):
            offs_m = start + tl.arange(0, BLOCK_M)
            in_m = offs_m < M
            kl = tl.load(kl_ptr + offs_m, mask=in_m, other=-2)
            kf = tl.load(kf_ptr + offs_m, mask=in_m, other=1)
            positive, negative = _tile_masks(
                ql, kl, kf, offs_n, offs_m, in_n, in_m, EXCLUDE_SELF, DIAGONAL_ONLY
            )
            z = _tile_logits(
                q_ptr, k_ptr, offs_n, offs_m, in_n, in_m, D, IEEE, BLOCK_N, BLOCK_M, BLOCK_K
            )
            gap = lse[:, None] - z
            sp = tl.maximum(gap, 0.0) + tl.log(1.0 + tl.exp(-tl.abs(gap)))
            total += tl.sum(tl.where(positive, sp, 0.0), axis=1)
            coef += tl.sum(tl.where(positive, 1.0 / (1.0 + tl.exp(-gap)), 0.0), axis=1)
        valid = (count > 0) & (pairs > 0)
        scale = 1.0 / tl.maximum(count, 1.0)
        value = tl.where(valid, total * scale, 0.0)
        tl.store(out_coef + offs_n, coef * scale, mask=in_n)
    elif KIND == 1:
        valid = count > 0
        value = tl.where(valid, lse - total / tl.maximum(count, 1.0), 0.0)
    else:
        valid = pairs > 0
        value = total
    tl.store(out_value + offs_n, value, mask=in_n)
    tl.store(out_lse + offs_n, lse, mask=in_n)
    tl.store(out_count + offs_n, count, mask=in_n)
    tl.store(out_valid + offs_n, valid.to(tl.int8), mask=in_n)


@triton.jit
def _grad_tile(z, positive, negative, g, lse, coef, inv_count, bias, KIND: tl.constexpr):
    """d loss / d z of one tile, times the incoming per-row gradient ``g``."""
    if KIND == 0:
        e = tl.exp(tl.minimum(z - lse[:, None], 0.0))
        sig = 1.0 / (1.0 + tl.exp(z - lse[:, None]))
        grad = tl.where(negative, coef[:, None] * e, 0.0) - tl.where(
            positive, sig * inv_count[:, None], 0.0
        )
    elif KIND == 1:
        e = tl.exp(tl.minimum(z - lse[:, None], 0.0))
        grad = tl.where(positive | negative, e, 0.0) - tl.where(positive, inv_count[:, None], 0.0)
    else:
        x = z + bias
        grad = tl.where(positive, -1.0 / (1.0 + tl.exp(x)), 0.0) + tl.where(
            negative, 1.0 / (1.0 + tl.exp(-x)), 0.0
        )
    return grad * g[:, None]


@triton.jit
def _grad_queries_kernel(
    q_ptr,
    k_ptr,
    ql_ptr,
    kl_ptr,
    kf_ptr,
    bias,
    g_ptr,
    lse_ptr,
    coef_ptr,
    count_ptr,
    dq_ptr,
    rowsum_ptr,
    N,
    M,
    D,
    KIND: tl.constexpr,
    EXCLUDE_SELF: tl.constexpr,
    DIAGONAL_ONLY: tl.constexpr,
    IEEE: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_M: tl.constexpr,
    BLOCK_K: tl.constexpr,
    BLOCK_D: tl.constexpr,
):
    # One block of queries accumulates its [BLOCK_N, d] gradient over every key block.
    pid = tl.program_id(0)
    offs_n = pid * BLOCK_N + tl.arange(0, BLOCK_N)
    in_n = offs_n < N
    offs_d = tl.arange(0, BLOCK_D)
    in_d = offs_d < D
    ql = tl.load(ql_ptr + offs_n, mask=in_n, other=-1)
    g = tl.load(g_ptr + offs_n, mask=in_n, other=0.0)
    lse = tl.load(lse_ptr + offs_n, mask=in_n, other=0.0)
    coef = tl.load(coef_ptr + offs_n, mask=in_n, other=0.0)
    inv_count = 1.0 / tl.maximum(tl.load(count_ptr + offs_n, mask=in_n, other=1.0), 1.0)
    dq = tl.zeros((BLOCK_N, BLOCK_D), tl.float32)
    rowsum = tl.zeros((BLOCK_N,), tl.float32)
    for start in range(0, M, BLOCK_M):
        offs_m = start + tl.arange(0, BLOCK_M)
        in_m = offs_m < M
        kl = tl.load(kl_ptr + offs_m, mask=in_m, other=-2)
        kf = tl.load(kf_ptr + offs_m, mask=in_m, other=1)
        positive, negative = _tile_masks(
            ql, kl, kf, offs_n, offs_m, in_n, in_m, EXCLUDE_SELF, DIAGONAL_ONLY
        )
        z = _tile_logits(
            q_ptr, k_ptr, offs_n, offs_m, in_n, in_m, D, IEEE, BLOCK_N, BLOCK_M, BLOCK_K
        )
        grad = _grad_tile(z, positive, negative, g, lse, coef, inv_count, bias, KIND)
        rowsum += tl.sum(grad, axis=1)
        k = tl.load(
            k_ptr + offs_m[:, None] * D + offs_d[None, :],
            mask=in_m[:, None] & in_d[None, :],
            other=0.0,
        )
        if IEEE:
            dq += tl.dot(grad.to(k.dtype), k, input_precision="ieee")
        else:
            dq += tl.dot(grad.to(k.dtype), k)
    tl.store(dq_ptr + offs_n[:, None] * D + offs_d[None, :], dq, mask=in_n[:, None] & in_d[None, :])
    tl.store(rowsum_ptr + offs_n, rowsum, mask=in_n)


@triton.jit
def _grad_keys_kernel(
    q_ptr,
    k_ptr,
    ql_ptr,
    kl_ptr,
    kf_ptr,
    bias,
    g_ptr,
    lse_ptr,
    coef_ptr,
    count_ptr,
    dk_ptr,
    N,
    M,
    D,
    KIND: tl.constexpr,
    EXCLUDE_SELF: tl.constexpr,
    DIAGONAL_ONLY: tl.constexpr,
    IEEE: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_M: tl.constexpr,
    BLOCK_K: tl.constexpr,
    BLOCK_D: tl.constexpr,
):
    # One block of keys accumulates its [BLOCK_M, d] gradient over every query block.
    pid = tl.program_id(0)
    offs_m = pid * BLOCK_M + tl.arange(0, BLOCK_M)
    in_m = offs_m < M
    offs_d = tl.arange(0, BLOCK_D)
    in_d = offs_d < D
    kl = tl.load(kl_ptr + offs_m, mask=in_m, other=-2)
    kf = tl.load(kf_ptr + offs_m, mask=in_m, other=1)
    dk = tl.zeros((BLOCK_M, BLOCK_D), tl.float32)
    for start in range(0, N, BLOCK_N):
        offs_n = start + tl.arange(0, BLOCK_N)
        in_n = offs_n < N
        ql = tl.load(ql_ptr + offs_n, mask=in_n, other=-1)
        g = tl.load(g_ptr + offs_n, mask=in_n, other=0.0)
        lse = tl.load(lse_ptr + offs_n, mask=in_n, other=0.0)
        coef = tl.load(coef_ptr + offs_n, mask=in_n, other=0.0)
        inv_count = 1.0 / tl.maximum(tl.load(count_ptr + offs_n, mask=in_n, other=1.0), 1.0)
        positive, negative = _tile_masks(
            ql, kl, kf, offs_n, offs_m, in_n, in_m, EXCLUDE_SELF, DIAGONAL_ONLY
        )
        z = _tile_logits(
            q_ptr, k_ptr, offs_n, offs_m, in_n, in_m, D, IEEE, BLOCK_N, BLOCK_M, BLOCK_K
        )
        grad = _grad_tile(z, positive, negative, g, lse, coef, inv_count, bias, KIND)
        q = tl.load(
            q_ptr + offs_n[:, None] * D + offs_d[None, :],
            mask=in_n[:, None] & in_d[None, :],
            other=0.0,
        )
        if IEEE:
            dk += tl.dot(tl.trans(grad.to(q.dtype)), q, input_precision="ieee")
        else:
            dk += tl.dot(tl.trans(grad.to(q.dtype)), q)
    tl.store(dk_ptr + offs_m[:, None] * D + offs_d[None, :], dk, mask=in_m[:, None] & in_d[None, :])


def _block_d(d: int) -> int:
    return max(16, triton.next_power_of_2(d))


#: A backward program holds whole rows of ``d``: its ``[acc, d]`` float32 gradient and each
#: ``[sweep, d]`` tile of the rows it sweeps (the operand of a ``tl.dot``). Each holds at most
#: this many entries (``rows * next_power_of_2(d)``) by default, the footprint of the kernels
#: before ``d`` was chunked, so the backward blocks shrink as ``d`` grows.
BACKWARD_ENTRIES = 1 << 13


@dataclass(frozen=True)
class Blocks:
    """Tile sizes of the kernels (powers of two >= 16).

    ``n`` queries by ``m`` keys per forward tile; ``k``: the chunk of ``d`` a product reads at
    a time; ``acc``: the rows of a backward program (the queries of :math:`dQ`, the keys of
    :math:`dK`), which hold their ``[acc, d]`` gradient; ``sweep``: the rows it sweeps a tile
    at a time (keys for :math:`dQ`, queries for :math:`dK`). ``num_warps``: Triton's warps a
    program (``None``: Triton's default).
    """

    n: int
    m: int
    k: int
    acc: int
    sweep: int
    num_warps: int | None = None


def default_blocks(d: int) -> Blocks:
    """The tiles used when none are given: 64 x 64 forward tiles over chunks of 64 of ``d``;
    backward blocks of 64 rows up to ``d = 128`` and fewer beyond
    (:data:`BACKWARD_ENTRIES`). Chosen by reasoning, not yet timed on a GPU:
    ``benchmarks/kernel_sweep.py`` compares tilings on one."""
    block_d = _block_d(d)
    rows = max(16, min(64, BACKWARD_ENTRIES // block_d))
    return Blocks(n=64, m=64, k=min(64, block_d), acc=rows, sweep=rows)


def _check_block(name: str, value: int) -> int:
    if not isinstance(value, int) or value < 16 or value & (value - 1):
        raise ValueError(f"fused_per_anchor: {name} must be a power of two >= 16, got {value!r}")
    return value


class _Fused(torch.autograd.Function):
    @staticmethod
    def forward(
        ctx: Any,
        queries: Tensor,
        keys: Tensor,
        bias: Tensor,
        cand: Candidates,
        kind: int,
        blocks: Blocks,
    ) -> tuple[Tensor, Tensor]:
        n, d = queries.shape
        m = keys.shape[0]
        ql = cand.query_labels.contiguous()
        kl = cand.key_labels.contiguous()
        kf = cand.forced_negative.to(torch.int8).contiguous()
        value = torch.empty(n, device=queries.device, dtype=torch.float32)
        lse = torch.empty(n, device=queries.device, dtype=torch.float32)
        coef = torch.zeros(n, device=queries.device, dtype=torch.float32)
        count = torch.empty(n, device=queries.device, dtype=torch.float32)
        valid = torch.empty(n, device=queries.device, dtype=torch.int8)
        flags = dict(
            KIND=kind,
            EXCLUDE_SELF=bool(cand.exclude_self),
            DIAGONAL_ONLY=bool(cand.diagonal_only),
            IEEE=queries.dtype == torch.float32,
            BLOCK_K=blocks.k,
        )
        warps = {} if blocks.num_warps is None else {"num_warps": blocks.num_warps}
        bias_value = float(bias)
        if n:
            _forward_kernel[(triton.cdiv(n, blocks.n),)](
                queries,
                keys,
                ql,
                kl,
                kf,
                bias_value,
                value,
                lse,
                coef,
                count,
                valid,
                n,
                m,
                d,
                DIAGONAL_POSITIVE=bool(cand.diagonal_only or cand.in_batch),
                BLOCK_N=blocks.n,
                BLOCK_M=blocks.m,
                **flags,
                **warps,
            )
        ctx.save_for_backward(queries, keys, ql, kl, kf, lse, coef, count, valid)
        ctx.flags = flags
        ctx.blocks = blocks
        ctx.bias_value = bias_value
        ctx.bias_dtype = bias.dtype
        valid_bool = valid.bool()
        ctx.mark_non_differentiable(valid_bool)
        return value, valid_bool

    @staticmethod
    @first_order_backward("contrastive losses with impl='triton'", "impl='torch'")
    def backward(
        ctx: Any, grad_value: Tensor, _grad_valid: Tensor | None
    ) -> tuple[Tensor, Tensor, Tensor, None, None, None]:
        queries, keys, ql, kl, kf, lse, coef, count, valid = ctx.saved_tensors
        n, d = queries.shape
        m = keys.shape[0]
        flags, blocks = ctx.flags, ctx.blocks
        warps = {} if blocks.num_warps is None else {"num_warps": blocks.num_warps}
        g = torch.where(valid.bool(), grad_value.float(), torch.zeros_like(lse)).contiguous()
        dq = torch.zeros(n, d, device=queries.device, dtype=torch.float32)
        dk = torch.zeros(m, d, device=queries.device, dtype=torch.float32)
        rowsum = torch.zeros(n, device=queries.device, dtype=torch.float32)
        saved = (queries, keys, ql, kl, kf, ctx.bias_value, g, lse, coef, count)
        if n and m:
            _grad_queries_kernel[(triton.cdiv(n, blocks.acc),)](
                *saved,
                dq,
                rowsum,
                n,
                m,
                d,
                BLOCK_N=blocks.acc,
                BLOCK_M=blocks.sweep,
                BLOCK_D=_block_d(d),
                **flags,
                **warps,
            )
            _grad_keys_kernel[(triton.cdiv(m, blocks.acc),)](
                *saved,
                dk,
                n,
                m,
                d,
                BLOCK_N=blocks.sweep,
                BLOCK_M=blocks.acc,
                BLOCK_D=_block_d(d),
                **flags,
                **warps,
            )
        grad_bias = rowsum.sum().to(ctx.bias_dtype)
        return dq.to(queries.dtype), dk.to(keys.dtype), grad_bias, None, None, None


def fused_per_anchor(
    kind: str,
    queries: Tensor,
    keys: Tensor,
    candidates: Candidates,
    *,
    bias: Tensor | float = 0.0,
    block_n: int | None = None,
    block_m: int | None = None,
    block_k: int | None = None,
    block_acc: int | None = None,
    block_sweep: int | None = None,
    num_warps: int | None = None,
) -> tuple[Tensor, Tensor]:
    r"""Per-anchor loss ``[N]`` (float32) and validity ``[N]`` of one of :data:`KINDS`.

    Args:
        kind: ``"info_nce"``, ``"supcon"`` or ``"siglip"``.
        queries: ``[N, d]`` already divided by the temperature (``"siglip"``: multiplied by
            the scale), normalised for cosine; float32, float16 or bfloat16.
        keys: ``[M, d]`` (cast to the queries' dtype).
        candidates: what makes a pair (per-row labels and flags; its tensors are not read).
        bias: the SigLIP logit bias :math:`b` (a scalar tensor gets a gradient).
        block_n, block_m, block_k, block_acc, block_sweep, num_warps: the tiles
            (:class:`Blocks`; powers of two >= 16), each ``None`` for :func:`default_blocks`
            of ``d``.

    Returns:
        ``values [N]`` (0 where not valid) and ``valid [N]``, as
        :func:`rankloss.functional.embedding.info_nce_per_anchor`, the per-anchor
        :func:`~rankloss.functional.supcon_loss` and
        :func:`~rankloss.functional.siglip_per_anchor`. Cost: :math:`O(NMd)` time,
        :math:`O((N + M)d)` memory.
    """
    if kind not in KINDS:
        raise ValueError(f"fused_per_anchor: kind must be one of {list(KINDS)}, got {kind!r}")
    default = default_blocks(queries.shape[1])
    blocks = Blocks(
        n=_check_block("block_n", default.n if block_n is None else block_n),
        m=_check_block("block_m", default.m if block_m is None else block_m),
        k=_check_block("block_k", default.k if block_k is None else block_k),
        acc=_check_block("block_acc", default.acc if block_acc is None else block_acc),
        sweep=_check_block("block_sweep", default.sweep if block_sweep is None else block_sweep),
        num_warps=num_warps,
    )
    dtype = queries.dtype
    if dtype not in (torch.float32, torch.float16, torch.bfloat16):
        dtype = compute_dtype(dtype) if dtype != torch.float64 else torch.float32
    bias_t = bias if isinstance(bias, Tensor) else torch.tensor(float(bias))
    with autocast_off(queries.device):
        values, valid = _Fused.apply(
            queries.to(dtype).contiguous(),
            keys.to(dtype).contiguous(),
            bias_t.reshape(()).float() if bias_t.requires_grad else bias_t.reshape(()),
            candidates,
            KINDS[kind],
            blocks,
        )
    return values, valid

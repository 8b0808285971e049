"""Smoke test of rankloss.distributed: global/local InfoNCE and ring SigLIP against one process.

Run with two processes::

    torchrun --nproc-per-node 2 benchmarks/distributed_smoke.py --backend nccl   # 2 GPUs
    torchrun --nproc-per-node 2 benchmarks/distributed_smoke.py --backend gloo   # CPU

Every rank builds the same global batch from a seed, takes its rows, runs the distributed loss
and compares the loss (mean over ranks) and its gradients (divided by the world size, the
DDP convention of ``rankloss.distributed``) with one process on the whole batch. Rank 0 prints
the largest differences and the time per step; the exit status is 1 if a difference exceeds
the tolerance.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from datetime import timedelta

import torch
import torch.distributed as dist

from rankloss import losses
from rankloss.distributed import DistributedLoss, ring_siglip_loss


def _check(
    name: str,
    run: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    reference: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    q_all: torch.Tensor,
    k_all: torch.Tensor,
    repeats: int,
) -> float:
    rank, world = dist.get_rank(), dist.get_world_size()
    n = q_all.shape[0] // world
    rows = slice(rank * n, (rank + 1) * n)
    q = q_all[rows].clone().requires_grad_(True)
    k = k_all[rows].clone().requires_grad_(True)
    value = run(q, k)
    value.backward()
    assert q.grad is not None and k.grad is not None
    qr = q_all.clone().requires_grad_(True)
    kr = k_all.clone().requires_grad_(True)
    expected = reference(qr, kr)
    expected.backward()
    assert qr.grad is not None and kr.grad is not None
    mean = value.detach().clone()
    dist.all_reduce(mean)
    loss_diff = float((mean / world - expected.detach()).abs())
    grad_diff = max(
        float((q.grad / world - qr.grad[rows]).abs().max()),
        float((k.grad / world - kr.grad[rows]).abs().max()),
    )
    diff = torch.tensor([loss_diff, grad_diff], device=q_all.device)
    dist.all_reduce(diff, op=dist.ReduceOp.MAX)
    if q_all.is_cuda:
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(repeats):
        qt = q_all[rows].clone().requires_grad_(True)
        kt = k_all[rows].clone().requires_grad_(True)
        run(qt, kt).backward()
    if q_all.is_cuda:
        torch.cuda.synchronize()
    ms = (time.perf_counter() - start) / repeats * 1e3
    if rank == 0:
        print(
            f"{name:<22} loss diff {diff[0].item():.2e}  grad diff {diff[1].item():.2e}  "
            f"{ms:8.2f} ms/step (forward+backward)"
        )
    return float(diff.max())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["nccl", "gloo"], default="nccl")
    parser.add_argument("--rows", type=int, default=256, help="rows per rank")
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--dtype", choices=["float32", "float64"], default="float64")
    args = parser.parse_args()
    if args.backend == "nccl":
        local_world = int(os.environ.get("LOCAL_WORLD_SIZE", 1))
        if torch.cuda.device_count() < local_world:
            # NCCL refuses two ranks on one GPU ("Duplicate GPU detected").
            raise SystemExit(
                f"distributed_smoke: --backend nccl needs one GPU per process, found "
                f"{torch.cuda.device_count()} GPU(s) for {local_world} processes; run with "
                "--nproc-per-node <number of GPUs>, or --backend gloo"
            )
    dist.init_process_group(args.backend, timeout=timedelta(seconds=60))
    world = dist.get_world_size()
    device = torch.device("cpu")
    if args.backend == "nccl":
        local = int(os.environ.get("LOCAL_RANK", 0))
        torch.cuda.set_device(local)
        device = torch.device("cuda", local)
    dtype = getattr(torch, args.dtype)
    g = torch.Generator().manual_seed(0)
    n_all = args.rows * world
    q_all = torch.randn(n_all, args.dim, generator=g, dtype=dtype).to(device)
    k_all = torch.randn(n_all, args.dim, generator=g, dtype=dtype).to(device)
    info_nce = losses.get("info_nce", temperature=0.1)
    siglip = losses.get("siglip", scale=10.0, bias=-10.0, learnable=False)
    tol = 1e-8 if dtype == torch.float64 else 1e-4
    worst = 0.0
    if dist.get_rank() == 0:
        print(
            f"backend {args.backend}, world {world}, {args.rows} rows/rank, d={args.dim}, {dtype}"
        )
    for mode in ("global", "local"):
        wrapped = DistributedLoss(info_nce, mode=mode)
        worst = max(
            worst,
            _check(
                f"info_nce {mode}",
                lambda q, k, w=wrapped: w(q, keys=k),
                lambda q, k: info_nce(q, keys=k),
                q_all,
                k_all,
                args.repeats,
            ),
        )
    worst = max(
        worst,
        _check(
            "ring siglip",
            lambda q, k: ring_siglip_loss(q, k, scale=10.0, bias=-10.0),
            lambda q, k: siglip(q, keys=k),
            q_all,
            k_all,
            args.repeats,
        ),
    )
    ok = worst <= tol
    if dist.get_rank() == 0:
        print(f"largest difference {worst:.2e} (tolerance {tol:.0e}): {'OK' if ok else 'FAILED'}")
    dist.destroy_process_group()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

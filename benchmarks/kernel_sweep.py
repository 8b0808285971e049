"""Tilings of the Triton kernels against each other, one size per kernel, forward+backward.

The contrastive kernels (InfoNCE in the in-batch form, SupCon on labels; see
``rankloss.kernels.contrastive.Blocks``) and the pairwise kernel (RankNet; its ``tile_size``)
run with each tiling of a short list at the size of the issue's GPU targets. Each tiling is
timed (median of ``--repeats`` after a warm-up that compiles it), with its peak CUDA memory
above the inputs; one that fails (e.g. Triton's out-of-resources) records the error and the
sweep goes on. The default tiling is marked, the fastest is named: the figures that choose the
defaults on a given GPU.

    python benchmarks/kernel_sweep.py --out out/sweep                  # CUDA, bfloat16
    TRITON_INTERPRET=1 python benchmarks/kernel_sweep.py --tiny --out /tmp/sweep   # CPU check

Writes ``OUT/sweep.json`` (every measurement, versions, device) and ``OUT/sweep.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

#: Tilings of the contrastive kernels (``{}``: ``default_blocks(d)``).
CONTRASTIVE_TILINGS: list[dict[str, int]] = [
    {},
    {"block_n": 128, "block_m": 64, "block_k": 64},
    {"block_n": 64, "block_m": 128, "block_k": 64},
    {"block_n": 128, "block_m": 128, "block_k": 32, "num_warps": 8},
    {"block_n": 64, "block_m": 64, "block_k": 128},
    {"block_n": 64, "block_m": 64, "block_k": 32},
    {"block_acc": 32, "block_sweep": 32},
    {"block_acc": 32, "block_sweep": 64, "num_warps": 8},
    {"block_acc": 64, "block_sweep": 64, "num_warps": 8},
    {"block_acc": 16, "block_sweep": 64},
]
#: Tile sizes of the pairwise kernel (``None``: its default).
PAIR_TILES: list[int | None] = [None, 16, 32, 64, 128, 256]

SIZES = {
    "gpu": {"info_nce": (16384, 512), "supcon": (32768, 128), "ranknet": (64, 8192)},
    "tiny": {"info_nce": (40, 20), "supcon": (36, 20), "ranknet": (2, 40)},
}


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def _time(step: Callable[[], None], device: str, repeats: int) -> tuple[float, float]:
    """(median ms, peak MiB above what was allocated before) of ``step``, after a warm-up."""
    step()  # compiles
    _sync(device)
    base = 0
    if device == "cuda":
        base = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        _sync(device)
        times.append((time.perf_counter() - start) * 1e3)
    peak = (torch.cuda.max_memory_allocated() - base) / 2**20 if device == "cuda" else 0.0
    return statistics.median(times), peak


def _contrastive_step(
    kind: str, size: tuple[int, int], device: str, dtype: torch.dtype, tiling: dict[str, int]
) -> Callable[[], None]:
    from rankloss._core.candidates import build_candidates
    from rankloss.kernels import contrastive

    n, d = size
    g = torch.Generator().manual_seed(0)
    x = torch.nn.functional.normalize(torch.randn(n, d, generator=g), dim=1)
    queries = (x / 0.05).to(device, dtype).requires_grad_()
    if kind == "info_nce":
        y = torch.nn.functional.normalize(torch.randn(n, d, generator=g), dim=1)
        keys = y.to(device, dtype).requires_grad_()
        cand = build_candidates(queries.detach(), keys=keys.detach())
    else:
        keys = queries
        labels = torch.randint(0, max(1, n // 4), (n,), generator=g).to(device)
        cand = build_candidates(queries.detach(), labels)

    def step() -> None:
        values, _valid = contrastive.fused_per_anchor(kind, queries, keys, cand, **tiling)
        values.sum().backward()

    return step


def _pair_step(size: tuple[int, int], device: str, tile: int | None) -> Callable[[], None]:
    from rankloss.functional import ranknet_loss

    b, n = size
    g = torch.Generator().manual_seed(0)
    scores = torch.randn(b, n, generator=g).to(device).requires_grad_()
    labels = torch.randint(0, 5, (b, n), generator=g).to(device).float()

    def step() -> None:
        ranknet_loss(scores, labels, impl="triton", tile_size=tile).backward()

    return step


def _maker(
    kind: str, size: tuple[int, int], device: str, dtype: torch.dtype, tiling: Any
) -> Callable[[], Callable[[], None]]:
    if kind == "ranknet":
        return lambda: _pair_step(size, device, tiling)
    return lambda: _contrastive_step(kind, size, device, dtype, tiling)


def _label(tiling: dict[str, int] | int | None) -> str:
    if not tiling:
        return "default"
    if isinstance(tiling, int):
        return f"tile {tiling}"
    return ", ".join(f"{k.removeprefix('block_')}={v}" for k, v in tiling.items())


def sweep(args: argparse.Namespace) -> dict[str, Any]:
    device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cpu" and os.environ.get("TRITON_INTERPRET", "0") in ("", "0"):
        sys.exit("kernel_sweep: no CUDA device; set TRITON_INTERPRET=1 to check it on CPU")
    dtype = getattr(torch, args.dtype) if device == "cuda" else torch.float32
    preset = "tiny" if args.tiny else "gpu"
    sizes = SIZES[preset]
    tilings: list[dict[str, int]] = CONTRASTIVE_TILINGS
    tiles: list[int | None] = PAIR_TILES
    if args.tiny:  # the interpreter runs every program in NumPy: two tilings of 16s
        tilings = [
            {"block_n": 16, "block_m": 16, "block_k": 16, "block_acc": 16, "block_sweep": 16},
            {},
        ]
        tiles = [None, 16]
    rows: list[dict[str, Any]] = []
    jobs: list[tuple[str, Any, Callable[[], Callable[[], None]]]] = []
    # In the order of the targets' weight, since the budget may stop the sweep early.
    for kind in ("info_nce", "ranknet", "supcon"):
        for tiling in tiles if kind == "ranknet" else tilings:
            jobs.append((kind, tiling, _maker(kind, sizes[kind], device, dtype, tiling)))
    began = time.perf_counter()
    for kernel, tiling, make in jobs:
        row: dict[str, Any] = {
            "kernel": kernel,
            "size": list(sizes[kernel]),
            "tiling": tiling if tiling is not None else {},
            "label": _label(tiling),
        }
        if time.perf_counter() - began > args.budget_s:
            row["status"] = "skipped (budget)"
        else:
            try:
                ms, peak = _time(make(), device, args.repeats)
                row.update(status="ok", ms=ms, peak_mib=peak)
            except Exception as error:  # noqa: BLE001 - a tiling that cannot run is a result
                row["status"] = f"error: {type(error).__name__}: {str(error)[:200]}"
            if device == "cuda":
                torch.cuda.empty_cache()
        rows.append(row)
        print(json.dumps(row), flush=True)
    import triton  # type: ignore[import-untyped]

    return {
        "device": device,
        "device_name": torch.cuda.get_device_name() if device == "cuda" else platform.processor(),
        "torch": torch.__version__,
        "triton": triton.__version__,
        "dtype": str(dtype).removeprefix("torch."),
        "repeats": args.repeats,
        "results": rows,
    }


def to_markdown(report: dict[str, Any]) -> str:
    lines = [
        f"Device: {report['device']} ({report['device_name']}), torch {report['torch']}, "
        f"Triton {report['triton']}, {report['dtype']}; forward + backward, median of "
        f"{report['repeats']}.",
        "",
        "| kernel | size | tiling | ms | peak MiB | |",
        "|---|---|---|---:|---:|---|",
    ]
    for kernel in dict.fromkeys(r["kernel"] for r in report["results"]):
        rows = [r for r in report["results"] if r["kernel"] == kernel]
        ok = [r for r in rows if r["status"] == "ok"]
        best = min(ok, key=lambda r: r["ms"]) if ok else None
        for r in rows:
            size = " x ".join(str(v) for v in r["size"])
            if r["status"] == "ok":
                mark = "fastest" if r is best else ""
                lines.append(
                    f"| {kernel} | {size} | {r['label']} | {r['ms']:.2f} | "
                    f"{r['peak_mib']:.0f} | {mark} |"
                )
            else:
                lines.append(f"| {kernel} | {size} | {r['label']} | {r['status']} | | |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("out/kernel-sweep"))
    ap.add_argument("--dtype", choices=("bfloat16", "float16", "float32"), default="bfloat16")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--budget-s", type=float, default=150.0, help="stop starting tilings after")
    ap.add_argument("--tiny", action="store_true", help="small sizes, two tilings (a CPU check)")
    args = ap.parse_args(argv)
    report = sweep(args)
    args.out.mkdir(parents=True, exist_ok=True)
    for name, text in (
        ("sweep.json", json.dumps(report, indent=1)),
        ("sweep.md", to_markdown(report)),
    ):
        tmp = args.out / f".{name}.tmp"
        tmp.write_text(text)
        tmp.replace(args.out / name)
    print(to_markdown(report))


if __name__ == "__main__":
    main()

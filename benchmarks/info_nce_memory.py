"""Peak CPU memory of InfoNCE: the chunked (recomputing) path against the direct path.

Each measurement runs in a fresh subprocess: the inputs are built, the process's peak resident
set (VmHWM) is reset through /proc/self/clear_refs (Linux), then one forward and backward pass
runs and the new peak minus the resident set before the pass is reported: the memory the loss
needs beyond its inputs. Run:

    python benchmarks/info_nce_memory.py            # N=16384, d=128
    python benchmarks/info_nce_memory.py --n 4096 --chunks 256 1024
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

MIB = 1024 * 1024


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def _reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
        return True
    except OSError:
        return False


def measure(n: int, d: int, chunk: int | None, form: str, threads: int) -> dict:
    import torch

    from rankloss.losses import InfoNCELoss

    torch.set_num_threads(threads)
    generator = torch.Generator().manual_seed(0)
    queries = torch.randn(n, d, generator=generator, requires_grad=True)
    second = (
        torch.randn(n, d, generator=generator, requires_grad=True)
        if form == "pairs"
        else torch.randint(0, n // 4, (n,), generator=generator)
    )
    loss_fn = InfoNCELoss(temperature=0.05, chunk_size=chunk)

    def call(count: int | None = None) -> torch.Tensor:
        rows = slice(count)
        if form == "pairs":
            return loss_fn(queries[rows], keys=second[rows])
        return loss_fn(queries[rows], second[rows])

    # Warm up kernels on a tiny problem so that one-off allocations are not counted.
    call(8).backward()
    queries.grad = None
    if form == "pairs":
        second.grad = None
    exact = _reset_peak()
    before = _status_kib("VmRSS")
    start = time.perf_counter()
    loss = call()
    loss.backward()
    seconds = time.perf_counter() - start
    peak = _status_kib("VmHWM")
    return {
        "n": n,
        "d": d,
        "form": form,
        "chunk_size": chunk,
        "loss": float(loss),
        "seconds": round(seconds, 2),
        "extra_peak_mib": round((peak - before) / 1024, 1),
        "peak_reset": exact,
        "input_mib": round(queries.numel() * 4 * (2 if form == "pairs" else 1) / MIB, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=16384)
    parser.add_argument("--d", type=int, default=128)
    parser.add_argument("--chunks", type=int, nargs="*", default=[256, 1024])
    parser.add_argument("--forms", nargs="*", default=["pairs", "labels"])
    parser.add_argument("--skip-direct", action="store_true")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        spec = json.loads(args.child)
        print(json.dumps(measure(**spec)))
        return
    rows = []
    for form in args.forms:
        chunks: list[int | None] = list(args.chunks) + ([] if args.skip_direct else [None])
        for chunk in chunks:
            spec = {"n": args.n, "d": args.d, "chunk": chunk, "form": form, "threads": args.threads}
            out = subprocess.run(
                [sys.executable, __file__, "--child", json.dumps(spec)],
                capture_output=True,
                text=True,
                check=True,
            )
            row = json.loads(out.stdout.strip().splitlines()[-1])
            rows.append(row)
            print(json.dumps(row), flush=True)
    print()
    print("| form | path | N | d | extra peak memory (MiB) | forward+backward (s) | loss |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        path = "direct" if r["chunk_size"] is None else f"chunked ({r['chunk_size']})"
        print(
            f"| {r['form']} | {path} | {r['n']} | {r['d']} | {r['extra_peak_mib']} | "
            f"{r['seconds']} | {r['loss']:.6f} |"
        )


if __name__ == "__main__":
    main()

"""Images per second through a SimCLR-style rankloss.augment pipeline on CPU.

A batch of 256 one-channel 28x28 images goes through random resized crop, flip, colour
jitter, random grey, Gaussian blur and Gaussian noise, (1) batched: one call for the whole
batch, every sample with its own parameters; (2) as a naive loop: the same transforms called
on one image at a time. Prints a markdown table with both rates and their ratio.

Run:  python benchmarks/augment_speed.py [--batch 256] [--repeats 20]
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import torch

import rankloss.augment as A


def pipeline() -> A.Transform:
    return A.Compose(
        [
            A.RandomResizedCrop(28, scale=(0.2, 1.0)),
            A.RandomHorizontalFlip(0.5),
            A.RandomApply(A.ColorJitter(0.4, 0.4, 0.4), p=0.8),
            A.RandomGrayscale(0.2),
            A.RandomApply(A.GaussianBlur((0.1, 2.0)), p=0.5),
            A.GaussianNoise((0.0, 0.05)),
        ]
    )


def timed(fn, repeats: int) -> float:
    """Median seconds of ``fn()`` over ``repeats`` runs (after one warm-up)."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    times.sort()
    return times[len(times) // 2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--loop-repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: all)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    transform = pipeline()
    x = torch.rand(args.batch, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    g = torch.Generator().manual_seed(0)

    def batched():
        transform(x, generator=g)

    def per_sample():
        for i in range(args.batch):
            transform(x[i : i + 1], generator=g)

    rows = []
    for name, fn, repeats in [
        ("batched (one call per batch)", batched, args.repeats),
        ("per-sample Python loop", per_sample, args.loop_repeats),
    ]:
        seconds = timed(fn, repeats)
        rows.append((name, seconds, args.batch / seconds))
    half = timed(lambda: transform(x.half(), generator=g), args.repeats)

    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores, "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads\n"
    )
    print(
        f"batch of {args.batch} images 1x28x28; pipeline: crop + flip + colour jitter (p=0.8) "
        "+ grey (p=0.2) + blur (p=0.5) + noise\n"
    )
    print("| mode | ms per batch | images/s |")
    print("|---|---:|---:|")
    for name, seconds, rate in rows:
        print(f"| {name} | {seconds * 1e3:.1f} | {rate:,.0f} |")
    print(f"| batched, float16 input | {half * 1e3:.1f} | {args.batch / half:,.0f} |")
    print(f"\nbatched / per-sample loop: {rows[0][2] / rows[1][2]:.0f}x faster")


if __name__ == "__main__":
    main()

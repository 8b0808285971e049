"""Learning to rank on the MSLR-WEB10K sample: an MLP scorer trained with two losses.

    python examples/ltr_mslr.py [--epochs 40] [--losses ranknet listnet] [--threads 1]

Fetches ``mslr10k-sample`` (rankeval 0.8.2 source package) into the cache on first use.
"""

from __future__ import annotations

import argparse
import time

import torch

import rankloss.data as data
from rankloss.models import MLPScorer
from rankloss.train import EarlyStopping, LTRTask, Trainer, seed_everything


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--losses", nargs="+", default=["ranknet", "listnet"])
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch CPU threads (1 is fastest for this small model)",
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    dataset = data.load("mslr10k-sample", normalize="standardize", seed=args.seed)
    print(
        f"mslr10k-sample: train {len(dataset.train)} / validation {len(dataset.validation)} / "
        f"test {len(dataset.test)} queries, {dataset.num_features} features"
    )
    for loss in args.losses:
        start = time.perf_counter()
        seed_everything(args.seed)
        model = MLPScorer(dataset.num_features, hidden=(128, 64), dropout=0.1)
        trainer = Trainer(
            model,
            LTRTask(dataset, batch_size=8, max_items=128),
            loss,
            lr=1e-3,
            weight_decay=1e-4,
            epochs=args.epochs,
            seed=args.seed,
            grad_clip=5.0,
            early_stopping=EarlyStopping("ndcg@10", "max", patience=8),
        )
        result = trainer.fit()
        test = trainer.evaluate("test")
        print(
            f"[{loss}] best epoch {result.best_epoch}/{result.epochs_run}, "
            f"{time.perf_counter() - start:.1f}s; test "
            + ", ".join(f"{k}={v:.4f}" for k, v in test.items())
        )


if __name__ == "__main__":
    main()

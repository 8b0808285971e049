"""Recommendation on MovieLens 100k (implicit feedback, rating >= 4): matrix factorisation
trained with two losses, evaluated by ranking the full catalogue (Recall@10, NDCG@10), next
to a most-popular-items baseline.

    python examples/recsys_movielens.py [--split random|leave-last-out] [--losses bpr softmax_ce]

Fetches ``movielens-100k`` (recbole 1.2.1 wheel) into the cache on first use.
"""

from __future__ import annotations

import argparse
import time

import torch
from torch import nn

import rankloss.data as data
from rankloss.models import MatrixFactorization
from rankloss.train import EarlyStopping, RecsysTask, Trainer, seed_everything


class Popularity(nn.Module):
    """Baseline: every user gets the items ranked by their number of training interactions."""

    def __init__(self, counts: torch.Tensor) -> None:
        super().__init__()
        self.counts = nn.Parameter(counts.float(), requires_grad=False)

    def full_scores(self, users: torch.Tensor) -> torch.Tensor:
        return self.counts.expand(len(users), -1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--losses", nargs="+", default=["bpr", "softmax_ce"])
    parser.add_argument("--split", default="random", choices=["random", "leave-last-out"])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--negatives", type=int, default=128, help="sampled negatives per user")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch CPU threads (1 is fastest for these small models, and on a shared machine)",
    )
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    dataset = data.load("movielens-100k", feedback="implicit", split=args.split, seed=args.seed)
    print(
        f"movielens-100k ({args.split}): {dataset.num_users} users, {dataset.num_items} items,"
        f" train/validation/test {len(dataset.train)}/{len(dataset.validation)}/"
        f"{len(dataset.test)} interactions"
    )
    task = RecsysTask(dataset, batch_size=64, positives=16, negatives=args.negatives)
    popular = task.evaluate(
        Popularity(torch.bincount(dataset.train.item, minlength=dataset.num_items)), "test"
    )
    print("[popularity baseline] test " + ", ".join(f"{k}={v:.4f}" for k, v in popular.items()))
    for loss in args.losses:
        start = time.perf_counter()
        seed_everything(args.seed)
        model = MatrixFactorization(dataset.num_users, dataset.num_items, dim=64)
        trainer = Trainer(
            model,
            task,
            loss,
            lr=1e-2,
            weight_decay=0.0,
            epochs=args.epochs,
            seed=args.seed,
            early_stopping=EarlyStopping("ndcg@10", "max", patience=4),
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

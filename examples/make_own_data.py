"""Write the small synthetic files the "your own data" benchmark configs run on.

    python examples/make_own_data.py [--out examples/own-data]

* ``ltr-train.svmlight``, ``ltr-test.svmlight``: LETOR text, 80 + 20 queries of 15 documents
  with 12 features; the graded label 0-4 comes from a hidden linear score plus noise.
* ``ratings.csv``: 120 users x 60 items, about 1,900 ratings 1-5 with a timestamp, from a
  hidden taste model (user and item factors), columns ``user,item,rating,time``.

The files are seeded and written the same on every run (numpy only, no download).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np


def write_svmlight(path: Path, rng: np.random.Generator, queries: int, first_qid: int) -> None:
    features, docs = 12, 15
    weights = np.linspace(1.0, -0.5, features)
    lines = []
    for q in range(queries):
        x = rng.normal(size=(docs, features))
        score = x @ weights + rng.normal(scale=1.5, size=docs)
        labels = np.digitize(score, np.quantile(score, [0.6, 0.8, 0.9, 0.97]))
        for label, row in zip(labels, x):
            values = " ".join(f"{i + 1}:{v:.3f}" for i, v in enumerate(row))
            lines.append(f"{label} qid:{first_qid + q} {values}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def write_ratings(path: Path, rng: np.random.Generator) -> None:
    users, items, dim = 120, 60, 4
    taste = rng.normal(size=(users, dim))
    kind = rng.normal(size=(items, dim))
    popularity = rng.normal(scale=0.5, size=items)
    lines = ["user,item,rating,time"]
    for u in range(users):
        count = int(rng.integers(8, 25))
        affinity = taste[u] @ kind.T + popularity
        chance = np.exp(affinity) / np.exp(affinity).sum()
        seen = rng.choice(items, size=count, replace=False, p=chance)
        for t, i in enumerate(seen):
            rating = int(np.clip(np.round(3 + affinity[i] + rng.normal(scale=0.5)), 1, 5))
            lines.append(f"u{u},m{i},{rating},{1_600_000_000 + 3600 * t + u}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "own-data")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    write_svmlight(args.out / "ltr-train.svmlight", rng, queries=80, first_qid=1)
    write_svmlight(args.out / "ltr-test.svmlight", rng, queries=20, first_qid=1001)
    write_ratings(args.out / "ratings.csv", rng)
    for path in sorted(args.out.iterdir()):
        print(f"{path} ({path.stat().st_size / 1024:.0f} KiB)")


if __name__ == "__main__":
    main()

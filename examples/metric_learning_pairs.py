"""How pairs and triplets flow from a batch into a loss: metric learning on sklearn's digits.

1. A batch sampler (``MPerClassSampler``) makes batches of P classes x K samples, so every
   anchor has positives.
2. The batch's labels define every positive/negative pair and triplet (``all_pairs``,
   ``all_triplets``); a miner picks the informative ones from the detached similarity matrix.
3. The loss takes the batch and the miner (by name or object), or the mined tuples directly
   (``indices=``), and averages per anchor.

Runs offline on CPU in a few seconds: ``python examples/metric_learning_pairs.py``.
"""

from __future__ import annotations

import torch
from sklearn.datasets import load_digits
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import rankloss
from rankloss import mining
from rankloss.functional import pairwise_similarity


def hit_at_1(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    with torch.no_grad():
        sim = pairwise_similarity(model(x), kind="cosine")
        sim.fill_diagonal_(-float("inf"))
        return float((y[sim.argmax(1)] == y).float().mean())


def main() -> None:
    torch.manual_seed(0)  # model initialisation only; samplers and miners take their own seeds
    digits = load_digits()
    x = torch.tensor(digits.data, dtype=torch.float32) / 16.0
    y = torch.tensor(digits.target)
    train, test = torch.arange(len(y)) % 5 != 0, torch.arange(len(y)) % 5 == 0
    x_train, y_train, x_test, y_test = x[train], y[train], x[test], y[test]

    # --- 1. one batch, and the tuples its labels define -------------------------------------
    sampler = mining.MPerClassSampler(y_train, m=4, batch_size=32, seed=0)
    batch = next(iter(sampler))
    labels = y_train[batch]
    pairs = mining.all_pairs(labels)
    triplets = mining.all_triplets(labels)
    print(
        f"batch of {len(batch)}: {int(pairs.is_positive.sum())} positive pairs, "
        f"{int((~pairs.is_positive).sum())} negative pairs, {len(triplets)} triplets"
    )

    model = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 32))
    embeddings = model(x_train[batch])

    # --- 2. a miner selects from the detached similarity matrix -----------------------------
    miner = mining.BatchSemiHardMiner(margin=0.2)
    mined = miner.mine(embeddings, labels)
    print(f"semi-hard miner: {len(mined)} triplets kept of {mined.num_found} found")

    # --- 3. the loss: mined tuples, or the miner by name ------------------------------------
    by_indices = rankloss.losses.TripletLoss(margin=0.2)(embeddings, labels, indices=mined)
    by_name = rankloss.losses.get("triplet", margin=0.2, miner="semi_hard")(embeddings, labels)
    assert torch.allclose(by_indices, by_name)
    print(f"triplet loss on the mined triplets: {by_name.detach().item():.4f}")

    # --- training: batch-hard triplets, plus a cross-batch memory of past embeddings --------
    print(f"hit@1 before training: {hit_at_1(model, x_test, y_test):.3f}")
    loss_fn = rankloss.losses.get("triplet", margin=0.2, miner="batch_hard")
    memory = mining.CrossBatchMemory(size=256, dim=32)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    sampler = mining.MPerClassSampler(y_train, m=8, batch_size=64, seed=0)
    loader = DataLoader(TensorDataset(x_train, y_train), batch_sampler=sampler)
    for epoch in range(10):
        sampler.set_epoch(epoch)
        for xb, yb in loader:
            emb = model(xb)
            loss = loss_fn(emb, yb) + memory.loss(rankloss.losses.get("contrastive"), emb, yb)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    print(f"hit@1 after training:  {hit_at_1(model, x_test, y_test):.3f}")


if __name__ == "__main__":
    main()

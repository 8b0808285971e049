"""Learning to rank with PyTorch Lightning: rankloss's LambdaLoss and NDCG in a LightningModule.

Synthetic lists of 10 items with 8 features (graded relevance 0-3 from a hidden linear
function plus noise, some lists shorter than others) are scored by a small MLP.
``RankingModule`` trains it with a rankloss list loss and logs ``val/ndcg@5`` and
``val/mrr`` (rankloss metrics) each epoch. Needs the ``lightning`` extra; runs on CPU.

    python examples/lightning_ranking.py [--epochs 5]
"""

from __future__ import annotations

import argparse

import torch
from torch.utils.data import DataLoader, TensorDataset


def synthetic_lists(size: int, generator: torch.Generator) -> TensorDataset:
    """``(features [size, 10, 8], labels [size, 10], mask [size, 10])``."""
    weights = torch.linspace(-1.0, 1.0, 8)
    features = torch.randn(size, 10, 8, generator=generator)
    noise = 0.3 * torch.randn(size, 10, generator=generator)
    labels = (features @ weights + noise).clamp(0, 3).round()
    lengths = torch.randint(5, 11, (size,), generator=generator)
    mask = torch.arange(10) < lengths[:, None]
    return TensorDataset(features, labels, mask)


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--lists", type=int, default=512)
    parser.add_argument("--loss", default="lambdaloss")
    args = parser.parse_args(argv)

    import lightning.pytorch as pl

    from rankloss import losses
    from rankloss.integrations.lightning import RankingModule
    from rankloss.models import MLPScorer

    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(0)
    train = synthetic_lists(args.lists, generator)
    val = synthetic_lists(max(args.lists // 4, 8), generator)
    module = RankingModule(
        MLPScorer(8, hidden=(32,), dropout=0.0),
        losses.get(args.loss),
        metrics=("ndcg@5", "mrr"),
        lr=1e-2,
    )
    trainer = pl.Trainer(
        max_epochs=args.epochs,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    val_loader = DataLoader(val, batch_size=64)
    before = trainer.validate(module, val_loader, verbose=False)[0]
    trainer.fit(module, DataLoader(train, batch_size=32, shuffle=True), val_loader)
    after = {k: float(v) for k, v in trainer.callback_metrics.items()}
    for name in ("val/loss", "val/ndcg@5", "val/mrr"):
        print(f"{name:12s} before {before[name]:.4f}  after {after[name]:.4f}")
    return {"ndcg_before": before["val/ndcg@5"], "ndcg_after": after["val/ndcg@5"]}


if __name__ == "__main__":
    main()

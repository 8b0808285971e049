"""SimCLR on scikit-learn's digits: learn an embedding from augmented views alone.

Each training image is turned into two random views by a ``rankloss.augment`` pipeline
(crop, small rotation, colour jitter, blur, noise); a small CNN is trained with
``rankloss.losses.NTXentLoss`` so that the two views of an image are closer than the
views of every other image of the batch. No label is used for training. The held-out digits are
then retrieved by cosine similarity (kNN precision@1, the label of the nearest training image)
and classified by a linear probe, for the trained encoder, the same encoder untrained, and raw
pixels.

Run:  python examples/simclr_digits.py            (about a minute on 2 CPU cores)
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from torch import nn

import rankloss.augment as A
from rankloss.losses import NTXentLoss

SIZE = 16


def load_images() -> tuple[torch.Tensor, np.ndarray]:
    """Digits as ``[N, 1, 16, 16]`` floats in [0, 1] (8x8 upsampled bilinearly) and labels."""
    digits = load_digits()
    x = torch.tensor(digits.images, dtype=torch.float32).unsqueeze(1) / 16.0
    x = F.interpolate(x, size=(SIZE, SIZE), mode="bilinear", align_corners=False).clamp(0, 1)
    return x, digits.target


class Encoder(nn.Module):
    """A small CNN: ``[N, 1, 16, 16]`` -> 128-d features; a projection head for the loss."""

    def __init__(self, dim: int = 128, proj_dim: int = 64) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1),
            nn.BatchNorm2d(16),
            nn.ReLU(),
            nn.Conv2d(16, 32, 3, stride=2, padding=1),
            nn.BatchNorm2d(32),
            nn.ReLU(),
            nn.Conv2d(32, 64, 3, stride=2, padding=1),
            nn.BatchNorm2d(64),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Linear(64, dim),
        )
        self.head = nn.Sequential(nn.ReLU(), nn.Linear(dim, proj_dim))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


@torch.no_grad()
def embed(encoder: Encoder | None, x: torch.Tensor) -> np.ndarray:
    if encoder is None:
        return x.flatten(1).numpy()
    encoder.eval()
    return encoder.features(x).numpy()


def evaluate(train_feats, train_labels, test_feats, test_labels) -> tuple[float, float]:
    """kNN precision@1 (cosine) and linear-probe accuracy on the held-out digits."""
    a = torch.nn.functional.normalize(torch.from_numpy(train_feats).float(), dim=1)
    b = torch.nn.functional.normalize(torch.from_numpy(test_feats).float(), dim=1)
    nearest = (b @ a.T).argmax(1).numpy()
    p_at_1 = float((train_labels[nearest] == test_labels).mean())
    mean, std = train_feats.mean(0), train_feats.std(0) + 1e-6
    probe = LogisticRegression(max_iter=2000)
    probe.fit((train_feats - mean) / std, train_labels)
    accuracy = float(probe.score((test_feats - mean) / std, test_labels))
    return p_at_1, accuracy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--temperature", type=float, default=0.5)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    torch.manual_seed(args.seed)  # model initialisation only; augmentations use `views`
    x, y = load_images()
    idx_train, idx_test = train_test_split(
        np.arange(len(y)), test_size=0.33, stratify=y, random_state=args.seed
    )
    x_train, x_test = x[idx_train], x[idx_test]
    y_train, y_test = y[idx_train], y[idx_test]

    pipeline = A.simclr_image_pipeline(
        SIZE,
        crop_scale=(0.35, 1.0),
        flip=False,  # a mirrored digit is another symbol
        degrees=12.0,
        jitter=0.4,
        blur_sigma=(0.1, 1.0),
        noise_std=0.05,
    )
    views = A.TwoViews(pipeline, seed=args.seed)
    order = torch.Generator().manual_seed(args.seed + 1)

    encoder = Encoder()
    untrained = Encoder()
    untrained.load_state_dict(encoder.state_dict())
    nt_xent = NTXentLoss(temperature=args.temperature)
    optimizer = torch.optim.Adam(encoder.parameters(), lr=2e-3, weight_decay=1e-5)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=args.epochs)

    start = time.perf_counter()
    for epoch in range(args.epochs):
        encoder.train()
        perm = torch.randperm(len(x_train), generator=order)
        total, steps = 0.0, 0
        for i in range(0, len(perm) - args.batch_size + 1, args.batch_size):
            batch = x_train[perm[i : i + args.batch_size]]
            view1, view2, _ = views(batch)
            loss = nt_xent(encoder(view1), keys=encoder(view2))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total, steps = total + loss.item(), steps + 1
        schedule.step()
        if epoch == 0 or (epoch + 1) % 10 == 0:
            print(f"epoch {epoch + 1:3d}  nt_xent {total / steps:.3f}")
    train_s = time.perf_counter() - start

    print(f"\ntrained {args.epochs} epochs in {train_s:.1f} s; held-out digits: {len(y_test)}")
    print(f"{'features':<22}{'kNN precision@1':>16}{'linear probe':>14}")
    for name, model in [
        ("raw pixels", None),
        ("untrained encoder", untrained),
        ("SimCLR encoder", encoder),
    ]:
        p1, acc = evaluate(embed(model, x_train), y_train, embed(model, x_test), y_test)
        print(f"{name:<22}{p1:>16.3f}{acc:>14.3f}")


if __name__ == "__main__":
    main()

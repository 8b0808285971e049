"""Draw ``docs/img/augment_views.png``: random views of real images made by rankloss.augment.

Rows are real images (scikit-learn's digits, and Fashion-MNIST when its files are found);
the first column is the original, the others are views from ``simclr_image_pipeline``.

Fashion-MNIST ships in Debian's ``dataset-fashion-mnist`` package; without installing it::

    apt-get download dataset-fashion-mnist && dpkg -x dataset-fashion-mnist_*.deb /tmp/fmnist
    python docs/make_augment_figure.py --fashion-dir /tmp/fmnist/usr/share/datasets/fashion-mnist
"""

from __future__ import annotations

import argparse
import gzip
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402

import rankloss.augment as A  # noqa: E402

SIZE = 28
FASHION_DIRS = ["/usr/share/datasets/fashion-mnist", "/tmp/fmnist/usr/share/datasets/fashion-mnist"]


def digits(n: int) -> torch.Tensor:
    data = load_digits()
    picks = [int(np.flatnonzero(data.target == k)[0]) for k in range(n)]
    x = torch.tensor(data.images[picks], dtype=torch.float32).unsqueeze(1) / 16.0
    return F.interpolate(x, size=(SIZE, SIZE), mode="bilinear", align_corners=False).clamp(0, 1)


def fashion(directory: Path, n: int) -> torch.Tensor | None:
    path = directory / "t10k-images-idx3-ubyte.gz"
    labels_path = directory / "t10k-labels-idx1-ubyte.gz"
    if not path.is_file() or not labels_path.is_file():
        return None
    with gzip.open(path) as f:
        images = np.frombuffer(f.read(), dtype=np.uint8, offset=16).reshape(-1, 28, 28)
    with gzip.open(labels_path) as f:
        labels = np.frombuffer(f.read(), dtype=np.uint8, offset=8)
    picks = [int(np.flatnonzero(labels == k)[0]) for k in (0, 1, 7, 9)][:n]
    return torch.tensor(images[picks], dtype=torch.float32).unsqueeze(1) / 255.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(Path(__file__).parent / "img" / "augment_views.png"))
    parser.add_argument("--fashion-dir", default=None)
    parser.add_argument("--views", type=int, default=6)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    rows = [("digits", digits(4))]
    dirs = [args.fashion_dir] if args.fashion_dir else FASHION_DIRS
    for d in dirs:
        images = fashion(Path(d), 4)
        if images is not None:
            rows.append(("Fashion-MNIST", images))
            break
    x = torch.cat([r[1] for r in rows])
    names = [name for name, imgs in rows for _ in range(len(imgs))]

    pipeline = A.simclr_image_pipeline(
        SIZE, crop_scale=(0.35, 1.0), degrees=12.0, noise_std=0.05, erase_p=0.25
    )
    g = torch.Generator().manual_seed(args.seed)
    views = [pipeline(x, generator=g) for _ in range(args.views)]

    cols = 1 + args.views
    fig, axes = plt.subplots(len(x), cols, figsize=(cols * 0.9, len(x) * 0.9))
    for i in range(len(x)):
        for j in range(cols):
            img = x[i] if j == 0 else views[j - 1][i]
            ax = axes[i, j]
            ax.imshow(img[0].numpy(), cmap="gray", vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title("original" if j == 0 else f"view {j}", fontsize=7)
            if j == 0:
                ax.set_ylabel(names[i], fontsize=6)
    fig.suptitle("simclr_image_pipeline: crop, rotation, jitter, blur, noise, erasing", fontsize=8)
    fig.tight_layout(pad=0.3, rect=(0, 0, 1, 0.96))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=90)
    print(f"wrote {args.out} ({Path(args.out).stat().st_size / 1024:.0f} KB), rows: "
          + ", ".join(f"{name} x{len(imgs)}" for name, imgs in rows))


if __name__ == "__main__":
    main()

"""Train a tiny detection classifier head with AP-Loss, aLRP loss and Rank & Sort loss.

No detection data set ships offline, so the detections are generated: each image has a few
ground-truth boxes and a few hundred random anchor boxes; an anchor's target is its best IoU
with a ground truth (a positive when >= 0.5, else a negative with target 0). The "backbone"
features of an anchor are its offsets and log-scales relative to the nearest ground truth,
with noise; a two-layer head turns them into a logit. Each loss trains a fresh head from the
same start; the script prints, before and after, the mean AP of the anchors' ranking at IoU
0.5 and averaged over the IoU thresholds 0.5:0.05:0.95 that some anchor reaches (a COCO-style
average over the anchors of each image, without box matching or NMS).

    python examples/detection_ranking.py [--steps 100] [--images 16] [--anchors 200]
"""

from __future__ import annotations

import argparse

import torch
from torch import Tensor, nn

from rankloss.losses import ALRPLoss, APLoss, RankSortLoss
from rankloss.metrics import average_precision

THRESHOLDS = [0.5 + 0.05 * i for i in range(10)]


def box_iou(a: Tensor, b: Tensor) -> Tensor:
    """IoU ``[n, m]`` of boxes ``a [n, 4]`` and ``b [m, 4]`` given as ``(x1, y1, x2, y2)``."""
    top_left = torch.maximum(a[:, None, :2], b[None, :, :2])
    bottom_right = torch.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = (bottom_right - top_left).clamp(min=0).prod(-1)
    area_a = (a[:, 2:] - a[:, :2]).prod(-1)
    area_b = (b[:, 2:] - b[:, :2]).prod(-1)
    return inter / (area_a[:, None] + area_b[None, :] - inter)


def make_detections(images: int, anchors: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """``features [images, anchors, 4]`` and IoU targets ``[images, anchors]``."""
    features, targets = [], []
    for _ in range(images):
        objects = int(torch.randint(1, 4, (1,), generator=generator))
        centre = torch.rand(objects, 2, generator=generator) * 0.6 + 0.2
        size = torch.rand(objects, 2, generator=generator) * 0.2 + 0.1
        truth = torch.cat([centre - size / 2, centre + size / 2], 1)
        # anchors: half jittered around the objects, half anywhere
        near = anchors // 2
        pick = torch.randint(0, objects, (near,), generator=generator)
        jitter = torch.randn(near, 4, generator=generator) * 0.04
        boxes_near = truth[pick] + jitter
        c = torch.rand(anchors - near, 2, generator=generator)
        s = torch.rand(anchors - near, 2, generator=generator) * 0.25 + 0.05
        boxes = torch.cat([boxes_near, torch.cat([c - s / 2, c + s / 2], 1)])
        lo, hi = boxes[:, :2], torch.maximum(boxes[:, 2:], boxes[:, :2] + 0.01)
        boxes = torch.cat([lo, hi], 1)
        iou, best = box_iou(boxes, truth).max(1)
        gt = truth[best]
        wh, gt_wh = boxes[:, 2:] - boxes[:, :2], gt[:, 2:] - gt[:, :2]
        centre_offset = ((boxes[:, :2] + boxes[:, 2:]) - (gt[:, :2] + gt[:, 2:])) / (2 * gt_wh)
        log_scale = torch.log(wh / gt_wh)
        feature = torch.cat([centre_offset, log_scale], 1)
        feature = feature + 0.05 * torch.randn(feature.shape, generator=generator)
        features.append(feature)
        targets.append(torch.where(iou >= 0.5, iou, torch.zeros_like(iou)))
    return torch.stack(features), torch.stack(targets)


def evaluate(logits: Tensor, targets: Tensor) -> tuple[float, float]:
    """Mean AP over images at IoU 0.5 and averaged over IoU 0.5:0.95."""
    per_threshold = []
    for t in THRESHOLDS:
        relevant = (targets >= t - 1e-9).float()
        if relevant.sum() == 0:
            continue  # no anchor that good in any image: the threshold is left out
        ap = average_precision(logits, relevant, empty="skip")  # NaN: no positive in an image
        per_threshold.append(float(torch.nanmean(ap)))
    return per_threshold[0], sum(per_threshold) / len(per_threshold)


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--images", type=int, default=16)
    parser.add_argument("--anchors", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    generator = torch.Generator().manual_seed(args.seed)
    features, targets = make_detections(args.images, args.anchors, generator)
    test_features, test_targets = make_detections(args.images, args.anchors, generator)
    results: dict[str, float] = {}
    for loss in (APLoss(), ALRPLoss(), RankSortLoss()):
        name = type(loss).__name__
        torch.manual_seed(args.seed)
        head = nn.Sequential(nn.Linear(4, 32), nn.ReLU(), nn.Linear(32, 1))
        optimiser = torch.optim.Adam(head.parameters(), lr=1e-2)
        with torch.no_grad():
            before = evaluate(head(test_features).squeeze(-1), test_targets)
        for _ in range(args.steps):
            optimiser.zero_grad()
            loss(head(features).squeeze(-1), targets).backward()
            optimiser.step()
        with torch.no_grad():
            after = evaluate(head(test_features).squeeze(-1), test_targets)
        print(
            f"{name:13s} AP50 before {before[0]:.3f} after {after[0]:.3f} | "
            f"AP50:95 before {before[1]:.3f} after {after[1]:.3f}"
        )
        results[f"{name}_ap50_before"], results[f"{name}_ap50_after"] = before[0], after[0]
        results[f"{name}_ap_before"], results[f"{name}_ap_after"] = before[1], after[1]
    return results


if __name__ == "__main__":
    main()

"""Batching helpers: ragged lists to padded ``[B, n]`` with masks, list sampling for long lists,
per-list feature normalisation and seeded batch iterators.

Everything random takes a ``torch.Generator``; nothing touches the global random state.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import Tensor

from rankloss.data.types import LTRSplit
from rankloss.lists import pad_lists

__all__ = [
    "pad_lists",
    "sample_lists",
    "normalize_lists",
    "list_batches",
    "index_batches",
]


def sample_lists(
    features: Tensor,
    labels: Tensor,
    mask: Tensor,
    max_items: int,
    *,
    generator: torch.Generator | None = None,
) -> tuple[Tensor, Tensor, Tensor]:
    """Keep at most ``max_items`` real items of each list, chosen uniformly at random.

    Args:
        features: ``[B, n, f]``; labels, mask: ``[B, n]``.

    Returns:
        ``(features [B, m, f], labels [B, m], mask [B, m])`` with ``m = min(n, max_items)``;
        the kept items of a list keep their relative order.
    """
    if max_items < 1:
        raise ValueError(f"sample_lists: max_items must be >= 1, got {max_items}")
    b, n = mask.shape
    if n <= max_items:
        return features, labels, mask
    keys = torch.rand(b, n, generator=generator).to(mask.device)
    keys = torch.where(mask, keys, torch.full_like(keys, 2.0))  # padding sorts last
    chosen = torch.topk(-keys, max_items, dim=-1).indices.sort(dim=-1).values
    return (
        torch.gather(features, 1, chosen.unsqueeze(-1).expand(-1, -1, features.shape[-1])),
        torch.gather(labels, 1, chosen),
        torch.gather(mask, 1, chosen),
    )


def normalize_lists(features: Tensor, mask: Tensor, method: str = "standardize") -> Tensor:
    """Normalise each feature within each list, over the real items only.

    Methods: ``"standardize"`` (zero mean, unit variance per list; a constant feature becomes
    0), ``"log1p"`` (``sign(x) * log1p(|x|)``, no statistics), ``"minmax"`` (to ``[0, 1]`` per
    list), ``"log1p+standardize"``. Padded positions are set to 0.

    Args:
        features: ``[..., n, f]``; mask: ``[..., n]`` bool.
    """
    m = mask.unsqueeze(-1).to(features.dtype)
    x = torch.where(mask.unsqueeze(-1), features, torch.zeros_like(features))
    parts = method.split("+")
    for part in parts:
        if part == "log1p":
            x = torch.sign(x) * torch.log1p(x.abs())
        elif part == "standardize":
            count = m.sum(-2, keepdim=True).clamp_min(1.0)
            mean = (x * m).sum(-2, keepdim=True) / count
            var = (((x - mean) * m) ** 2).sum(-2, keepdim=True) / count
            std = var.sqrt()
            x = torch.where(std > 1e-8, (x - mean) / std.clamp_min(1e-8), torch.zeros_like(x))
        elif part == "minmax":
            big = torch.finfo(x.dtype).max
            low = torch.where(m.bool(), x, torch.full_like(x, big)).amin(-2, keepdim=True)
            high = torch.where(m.bool(), x, torch.full_like(x, -big)).amax(-2, keepdim=True)
            span = high - low
            x = torch.where(span > 1e-8, (x - low) / span.clamp_min(1e-8), torch.zeros_like(x))
        else:
            raise ValueError(
                f"normalize_lists: unknown method {part!r}; use standardize, log1p, minmax"
            )
    return x * m


def index_batches(
    n: int,
    batch_size: int,
    *,
    shuffle: bool = True,
    generator: torch.Generator | None = None,
    drop_last: bool = False,
) -> Iterator[Tensor]:
    """Batches of indices ``0..n-1`` (shuffled with ``generator`` if asked)."""
    order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
    for start in range(0, n, batch_size):
        chunk = order[start : start + batch_size]
        if drop_last and len(chunk) < batch_size:
            return
        yield chunk


def list_batches(
    split: LTRSplit,
    batch_size: int,
    *,
    shuffle: bool = True,
    generator: torch.Generator | None = None,
    max_items: int | None = None,
) -> Iterator[LTRSplit]:
    """Iterate a :class:`LTRSplit` in batches of ``batch_size`` lists, each trimmed to its
    longest list; with ``max_items``, long lists are subsampled by :func:`sample_lists`."""
    for index in index_batches(len(split), batch_size, shuffle=shuffle, generator=generator):
        batch = split.subset(index)
        if max_items is not None:
            f, y, m = sample_lists(
                batch.features, batch.labels, batch.mask, max_items, generator=generator
            )
            batch = LTRSplit(f, y, m, batch.query_ids)
        yield batch

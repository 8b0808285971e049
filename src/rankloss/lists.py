"""Build padded ``[B, n, ...]`` batches with a bool mask from ragged lists, and go back.

Three ways in:

* :func:`pad_lists` from a sequence of per-list tensors or arrays (ragged);
* :func:`lengths_to_mask` / :meth:`ListLayout.from_lengths` from list lengths over a flat
  array in which each list's items are contiguous;
* :meth:`ListLayout.from_query_ids` from flat arrays with a query id per row (SVMlight/LETOR
  files), items of a query need not be contiguous.

And back: :func:`unpad_lists` gives the ragged lists, :meth:`ListLayout.unpad` the flat array
in its original row order.

>>> import torch
>>> layout = ListLayout.from_query_ids(torch.tensor([7, 3, 7, 7]))
>>> layout.pad(torch.tensor([1.0, 2.0, 3.0, 4.0]))
tensor([[2., 0., 0.],
        [1., 3., 4.]])
>>> layout.mask
tensor([[ True, False, False],
        [ True,  True,  True]])
>>> layout.unpad(layout.pad(torch.tensor([1.0, 2.0, 3.0, 4.0])))
tensor([1., 2., 3., 4.])
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

__all__ = ["pad_lists", "unpad_lists", "lengths_to_mask", "ListLayout"]


def _as_tensor(x: object) -> Tensor:
    return x if isinstance(x, Tensor) else torch.as_tensor(np.asarray(x))


def pad_lists(
    lists: Sequence[object], *, pad_value: float = 0.0, max_length: int | None = None
) -> tuple[Tensor, Tensor]:
    """Stack ragged lists ``[n_b, ...]`` into ``[B, n, ...]`` plus a ``[B, n]`` bool mask.

    Args:
        lists: per-list tensors or arrays; they must agree on every dimension but the first.
        pad_value: value written at padded positions (never read by rankloss: the mask is).
        max_length: pad to this length instead of the longest list; a longer list raises.

    Returns:
        ``(padded, mask)``.
    """
    tensors = [_as_tensor(x) for x in lists]
    if not tensors:
        raise ValueError("pad_lists: got no lists")
    for i, t in enumerate(tensors):
        if t.dim() < 1:
            raise ValueError(f"pad_lists: list {i} is 0-d; each list must have shape [n_b, ...]")
        if t.shape[1:] != tensors[0].shape[1:]:
            raise ValueError(
                f"pad_lists: list {i} has trailing shape {list(t.shape[1:])} but list 0 has "
                f"{list(tensors[0].shape[1:])}"
            )
    lengths = [t.shape[0] for t in tensors]
    n = max(lengths) if max_length is None else max_length
    if max(lengths) > n:
        raise ValueError(f"pad_lists: a list has {max(lengths)} items > max_length={n}")
    first = tensors[0]
    padded = first.new_full((len(tensors), n, *first.shape[1:]), pad_value)
    for i, t in enumerate(tensors):
        padded[i, : t.shape[0]] = t.to(first.dtype)
    return padded, lengths_to_mask(torch.tensor(lengths), n)


def unpad_lists(padded: Tensor, mask: Tensor) -> list[Tensor]:
    """The real items of each list of ``padded`` ``[B, n, ...]`` (inverse of :func:`pad_lists`)."""
    if padded.shape[: mask.dim()] != mask.shape:
        raise ValueError(
            f"unpad_lists: padded has shape {list(padded.shape)}, mask has {list(mask.shape)}"
        )
    return [padded[b][mask[b]] for b in range(mask.shape[0])]


def lengths_to_mask(lengths: Tensor | Sequence[int], max_length: int | None = None) -> Tensor:
    """``[B, n]`` bool mask with the first ``lengths[b]`` items of row ``b`` real."""
    lengths = _as_tensor(lengths).long()
    if (lengths < 0).any():
        raise ValueError("lengths_to_mask: lengths must be >= 0")
    n = int(lengths.max()) if max_length is None and lengths.numel() else (max_length or 0)
    return torch.arange(n, device=lengths.device) < lengths.unsqueeze(-1)


@dataclass(frozen=True)
class ListLayout:
    """Where each row of a flat array goes in a padded ``[B, n]`` batch.

    Attributes:
        list_index: ``[N]`` the list (row of the padded batch) of each flat row.
        position: ``[N]`` the position within its list.
        mask: ``[B, n]`` bool.
        query_ids: ``[B]`` the query id of each list (or ``arange(B)`` for lengths).
    """

    list_index: Tensor
    position: Tensor
    mask: Tensor
    query_ids: Tensor

    @classmethod
    def from_query_ids(cls, query_ids: Tensor | np.ndarray | Sequence[int]) -> ListLayout:
        """Group rows by query id, lists in ascending id order, items in row order."""
        qid = _as_tensor(query_ids)
        if qid.dim() != 1:
            raise ValueError(f"query_ids must be 1-d, got shape {list(qid.shape)}")
        unique, inverse, counts = torch.unique(qid, return_inverse=True, return_counts=True)
        order = torch.argsort(inverse, stable=True)
        starts = torch.cumsum(counts, 0) - counts
        position = torch.empty_like(inverse)
        position[order] = torch.arange(qid.numel()) - starts[inverse[order]]
        return cls(inverse, position, lengths_to_mask(counts), unique)

    @classmethod
    def from_lengths(cls, lengths: Tensor | Sequence[int]) -> ListLayout:
        """Consecutive lists of the given lengths over a flat array."""
        lengths = _as_tensor(lengths).long()
        list_index = torch.repeat_interleave(torch.arange(lengths.numel()), lengths)
        starts = torch.cumsum(lengths, 0) - lengths
        position = torch.arange(int(lengths.sum())) - starts[list_index]
        return cls(list_index, position, lengths_to_mask(lengths), torch.arange(lengths.numel()))

    @property
    def lengths(self) -> Tensor:
        return self.mask.sum(-1)

    def pad(self, values: Tensor | np.ndarray, pad_value: float = 0.0) -> Tensor:
        """Flat ``[N, ...]`` -> padded ``[B, n, ...]``."""
        values = _as_tensor(values)
        if values.shape[0] != self.list_index.numel():
            raise ValueError(
                f"ListLayout.pad: values has {values.shape[0]} rows, layout has "
                f"{self.list_index.numel()}"
            )
        out = values.new_full((*self.mask.shape, *values.shape[1:]), pad_value)
        out[self.list_index, self.position] = values
        return out

    def unpad(self, padded: Tensor) -> Tensor:
        """Padded ``[B, n, ...]`` -> flat ``[N, ...]`` in the original row order."""
        if padded.shape[:2] != self.mask.shape:
            raise ValueError(
                f"ListLayout.unpad: padded has shape {list(padded.shape)}, layout mask has "
                f"{list(self.mask.shape)}"
            )
        return padded[self.list_index.to(padded.device), self.position.to(padded.device)]

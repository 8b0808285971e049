"""Pairwise similarities between embeddings: one polarity, higher means closer.

Every matrix that rankloss passes between its parts (losses, miners, memories) is a
*similarity*. Distances appear only negated (``neg_euclidean``, ``neg_sq_euclidean``), so a
margin always reads the same way: a positive should have a *higher* similarity than a negative.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor

from rankloss._core.validation import (
    check_choice,
    check_embeddings,
    computes_in_float32,
    shape_str,
)

__all__ = ["SIMILARITIES", "Similarity", "pairwise_similarity", "similarity_of_checked_rows"]

#: The similarity kinds :func:`pairwise_similarity` computes.
SIMILARITIES = ("dot", "cosine", "neg_euclidean", "neg_sq_euclidean")

#: The type of every ``similarity`` argument.
Similarity = Literal["dot", "cosine", "neg_euclidean", "neg_sq_euclidean"]


@computes_in_float32
def pairwise_similarity(
    x: Tensor, y: Tensor | None = None, kind: str = "cosine", *, eps: float = 1e-12
) -> Tensor:
    r"""Similarity of every row of ``x`` with every row of ``y`` (higher = closer).

    ============================  ===========================================================
    ``kind``                      :math:`s(x_i, y_j)`
    ============================  ===========================================================
    ``"dot"``                     :math:`x_i^\top y_j`
    ``"cosine"``                  :math:`x_i^\top y_j / (\lVert x_i\rVert \lVert y_j\rVert)`
    ``"neg_euclidean"``           :math:`-\lVert x_i - y_j\rVert_2`
    ``"neg_sq_euclidean"``        :math:`-\lVert x_i - y_j\rVert_2^2`
    ============================  ===========================================================

    Args:
        x: ``[N, d]`` embeddings.
        y: ``[M, d]`` embeddings; ``None`` means ``x`` (an ``[N, N]`` self-similarity).
        kind: one of :data:`SIMILARITIES`.
        eps: floor of the norms (cosine) and of positive squared distances before the square
            root (``neg_euclidean``), so that gradients stay finite near zero distance.

    Returns:
        ``[N, M]``; float16/bfloat16 inputs are computed and returned in float32, and under
        ``torch.autocast`` the matrix product stays float32 (autocast is off inside).

    Cost: one ``[N, d] x [d, M]`` matrix product, :math:`O(NMd)` time, :math:`O(NM)` memory.

    >>> x = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    >>> pairwise_similarity(x, kind="cosine")
    tensor([[1., 0.],
            [0., 1.]])
    """
    check_choice("kind", kind, SIMILARITIES)
    x = check_embeddings(x, "x", "pairwise_similarity")
    if y is None or y is x:
        return similarity_of_checked_rows(x, x, kind, eps=eps)
    y = check_embeddings(y, "y", "pairwise_similarity")
    if y.shape[1] != x.shape[1]:
        raise ValueError(
            f"pairwise_similarity: y has shape {shape_str(y)} but x has shape {shape_str(x)} "
            "(the embedding sizes differ)"
        )
    dtype = torch.promote_types(x.dtype, y.dtype)
    return similarity_of_checked_rows(x.to(dtype), y.to(dtype), kind, eps=eps)


def _unit_rows(x: Tensor, eps: float) -> Tensor:
    """``x / max(||x||, eps)`` row by row: ``torch.nn.functional.normalize``'s value, with
    fewer operations (no ``expand``) in the forward and the backward."""
    return x / torch.linalg.vector_norm(x, dim=1, keepdim=True).clamp_min(eps)


def similarity_of_checked_rows(x: Tensor, y: Tensor, kind: str, *, eps: float = 1e-12) -> Tensor:
    r""":func:`pairwise_similarity` of rows that are already checked: :math:`s(x_i, y_j)`.

    For callers that validated ``x`` and ``y`` themselves (the queries and keys of
    :class:`rankloss._core.candidates.Candidates`): nothing is checked again, no dtype is
    promoted and autocast is not touched, so both must be finite ``[N, d]`` and ``[M, d]``
    tensors of one compute dtype, under the caller's :func:`computes_in_float32`.

    Args:
        x: ``[N, d]`` checked embeddings.
        y: ``[M, d]`` checked embeddings of ``x``'s dtype; passing ``x`` itself computes its
            row norms (cosine, Euclidean) once.
        kind: one of :data:`SIMILARITIES` (not checked).
        eps: as in :func:`pairwise_similarity`.

    Returns:
        ``[N, M]`` in the dtype of ``x``.

    Cost: one ``[N, d] x [d, M]`` matrix product, :math:`O(NMd)` time, :math:`O(NM)` memory.
    """
    if kind == "cosine":
        unit = _unit_rows(x, eps)
        return unit @ (unit if y is x else _unit_rows(y, eps)).T
    if kind == "dot":
        return x @ y.T
    x_squared = x.pow(2).sum(1, keepdim=True)
    y_squared = x_squared.T if y is x else y.pow(2).sum(1).unsqueeze(0)
    squared = (x_squared + y_squared - 2.0 * (x @ y.T)).clamp(min=0.0)
    if kind == "neg_sq_euclidean":
        return -squared
    # Zero distance gives exactly 0 with a zero (not infinite) gradient.
    return -torch.where(squared > 0, squared.clamp(min=eps).sqrt(), torch.zeros_like(squared))

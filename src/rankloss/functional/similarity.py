"""Pairwise similarities between embeddings: one polarity, higher means closer.

Every matrix that rankloss passes between its parts (losses, miners, memories) is a
*similarity*. Distances appear only negated (``neg_euclidean``, ``neg_sq_euclidean``), so a
margin always reads the same way: a positive should have a *higher* similarity than a negative.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from rankloss._validation import check_choice, compute_dtype

__all__ = ["SIMILARITIES", "pairwise_similarity", "check_embeddings"]

#: The similarity kinds :func:`pairwise_similarity` computes.
SIMILARITIES = ("dot", "cosine", "neg_euclidean", "neg_sq_euclidean")


def _shape(t: Tensor) -> str:
    return "[" + ", ".join(str(s) for s in t.shape) + "]"


def check_embeddings(x: object, name: str, where: str) -> Tensor:
    """Check that ``x`` is a floating ``[N, d]`` tensor and return it in the compute dtype."""
    if not isinstance(x, Tensor):
        raise ValueError(f"{where}: {name} must be a torch.Tensor, got {type(x).__name__}")
    if x.dim() != 2:
        raise ValueError(f"{where}: {name} must have shape [N, d], got {_shape(x)}")
    if not x.dtype.is_floating_point:
        raise ValueError(f"{where}: {name} must be floating point, got dtype {x.dtype}")
    return x.to(compute_dtype(x.dtype))


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
        ``[N, M]``; float16/bfloat16 inputs are computed and returned in float32.

    Cost: one ``[N, d] x [d, M]`` matrix product, :math:`O(NMd)` time, :math:`O(NM)` memory.

    >>> x = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    >>> pairwise_similarity(x, kind="cosine")
    tensor([[1., 0.],
            [0., 1.]])
    """
    check_choice("kind", kind, SIMILARITIES)
    x = check_embeddings(x, "x", "pairwise_similarity")
    y = x if y is None else check_embeddings(y, "y", "pairwise_similarity")
    if y.shape[1] != x.shape[1]:
        raise ValueError(
            f"pairwise_similarity: y has shape {_shape(y)} but x has shape {_shape(x)} "
            "(the embedding sizes differ)"
        )
    dtype = torch.promote_types(x.dtype, y.dtype)
    x, y = x.to(dtype), y.to(dtype)
    if kind == "dot":
        return x @ y.T
    if kind == "cosine":
        return F.normalize(x, dim=1, eps=eps) @ F.normalize(y, dim=1, eps=eps).T
    squared = (
        x.pow(2).sum(1, keepdim=True) + y.pow(2).sum(1).unsqueeze(0) - 2.0 * (x @ y.T)
    ).clamp(min=0.0)
    if kind == "neg_sq_euclidean":
        return -squared
    # Zero distance gives exactly 0 with a zero (not infinite) gradient.
    return -torch.where(squared > 0, squared.clamp(min=eps).sqrt(), torch.zeros_like(squared))

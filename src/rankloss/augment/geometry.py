"""Per-sample affine warps of image batches, shared by :class:`~rankloss.augment.Compose` and
the geometric image transforms.

A geometric transform gives, for each sample, a 3x3 matrix that maps a point of its output
(in the normalised ``[-1, 1]`` coordinates of ``affine_grid``) to the point of its input it
reads. :func:`warp_fused` multiplies the matrices of consecutive transforms and resamples the
batch once. This module imports nothing else of :mod:`rankloss.augment`, so that
``base`` (the combinators) and ``image`` (the transforms) both build on it and the imports run
one way: ``geometry`` -> ``base`` -> ``image``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["GeometricTransform", "check_image", "to_float", "warp", "warp_fused"]


class GeometricTransform(Protocol):
    """What :func:`warp_fused` needs of a transform (an optional ``padding_mode`` too)."""

    def matrices(
        self, n: int, size: tuple[int, int], generator: torch.Generator, device: torch.device
    ) -> tuple[Tensor, tuple[int, int]]:
        """``[n, 3, 3]`` output-to-input matrices and the output size ``(H, W)``."""
        ...


def check_image(x: object, where: str) -> Tensor:
    """Check that ``x`` is a float ``[N, C, H, W]`` tensor; returns it."""
    if not isinstance(x, Tensor) or x.dim() != 4 or not x.dtype.is_floating_point:
        got = f"{tuple(x.shape)} {x.dtype}" if isinstance(x, Tensor) else type(x).__name__
        raise ValueError(f"{where}: expected a float tensor [N, C, H, W], got {got}")
    return x


def to_float(x: Tensor) -> Tensor:
    """``x`` in float32 unless it is float32 or float64 already (half precision is upcast)."""
    return x if x.dtype in (torch.float32, torch.float64) else x.float()


def warp(x: Tensor, theta: Tensor, out_size: tuple[int, int], padding_mode: str) -> Tensor:
    """Resample ``x`` so that output point p (normalised) reads input point ``theta @ p``."""
    xf = to_float(x)
    n, c = xf.shape[:2]
    grid = F.affine_grid(
        theta[:, :2, :].to(xf.dtype), [n, c, out_size[0], out_size[1]], align_corners=False
    )
    out = F.grid_sample(xf, grid, mode="bilinear", padding_mode=padding_mode, align_corners=False)
    return out.to(x.dtype)


def warp_fused(
    transforms: Sequence[GeometricTransform], x: Tensor, generator: torch.Generator
) -> Tensor:
    """Apply consecutive geometric transforms with one ``grid_sample``.

    Each transform gives matrices mapping its output coordinates to its input coordinates;
    the product maps the final output straight back to ``x``. The last transform that sets a
    ``padding_mode`` of its own (a :class:`~rankloss.augment.RandomAffine`, also inside a
    ``RandomApply``) decides how uncovered pixels are filled (default ``"zeros"``), so a flip
    or a crop after it does not reset the mode.
    """
    check_image(x, "warp")
    n = x.shape[0]
    size = (x.shape[-2], x.shape[-1])
    theta = torch.eye(3, device=x.device).expand(n, 3, 3)
    padding_mode = "zeros"
    for t in transforms:
        mats, size = t.matrices(n, size, generator, x.device)
        theta = theta @ mats
        padding_mode = _own_padding_mode(t) or padding_mode
    return warp(x, theta, size, padding_mode)


def _own_padding_mode(transform: object) -> str | None:
    """The ``padding_mode`` a transform was built with (an instance attribute, not the class
    default), looking through a wrapper's ``transform``; ``None`` if it sets none."""
    own = vars(transform).get("padding_mode") if hasattr(transform, "__dict__") else None
    if own is not None:
        return str(own)
    inner = getattr(transform, "transform", None)
    return None if inner is None else _own_padding_mode(inner)

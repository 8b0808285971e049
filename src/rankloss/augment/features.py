"""Transforms of feature vectors and learning-to-rank lists ``[..., n, f]``.

``x`` is ``[..., n, f]``: ``n`` items of ``f`` features per list (``[N, f]`` plain vectors are
one list of ``N`` items). The optional ``mask`` (``[..., n]`` bool, ``True`` = a real item, as
in ``docs/conventions.md``) keeps padded items out of the statistics and out of mixup, and
leaves them unchanged. Half precision is computed in float32 and cast back.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from rankloss.augment.base import (
    Transform,
    check_probability,
    draw_normal,
    draw_uniform,
    make_generator,
)
from rankloss.augment.geometry import to_float

__all__ = ["FeatureNoise", "FeatureDropout", "ItemMixup"]


def _check_features(x: Tensor, mask: Tensor | None, name: str) -> Tensor:
    if not isinstance(x, Tensor) or x.dim() < 2 or not x.dtype.is_floating_point:
        got = f"{tuple(x.shape)} {x.dtype}" if isinstance(x, Tensor) else type(x).__name__
        raise ValueError(f"{name}: expected a float tensor [..., n, f], got {got}")
    if mask is None:
        return torch.ones(x.shape[:-1], dtype=torch.bool, device=x.device)
    if mask.shape != x.shape[:-1] or mask.dtype != torch.bool:
        raise ValueError(
            f"{name}: mask must be bool with shape {list(x.shape[:-1])}, "
            f"got {mask.dtype} {list(mask.shape)}"
        )
    return mask


class FeatureNoise(Transform):
    """Add Gaussian noise scaled per feature: ``x + std * scale[f] * eps``.

    ``scale`` is a ``[f]`` tensor (e.g. the features' standard deviations on the training set,
    the best choice), or ``None`` to use each feature's standard deviation over the real items
    of the batch. Padded items are left unchanged.
    """

    accepts_mask = True

    def __init__(self, std: float = 0.1, scale: Tensor | None = None) -> None:
        if std < 0:
            raise ValueError(f"std must be non-negative, got {std}")
        self.std = float(std)
        self.scale = scale

    def apply(self, x: Tensor, generator: torch.Generator, *, mask: Tensor | None = None) -> Tensor:
        real = _check_features(x, mask, "FeatureNoise")
        xf = to_float(x)
        if self.scale is None:
            w = real.to(xf.dtype).unsqueeze(-1)
            count = w.flatten(0, -2).sum(0).clamp(min=1)
            mean = (xf * w).flatten(0, -2).sum(0) / count
            var = (((xf - mean) * w) ** 2).flatten(0, -2).sum(0) / count
            scale = var.sqrt()
        else:
            scale = torch.as_tensor(self.scale, dtype=xf.dtype, device=x.device)
            if scale.shape != (x.shape[-1],):
                raise ValueError(f"scale must have shape [{x.shape[-1]}], got {list(scale.shape)}")
        noise = draw_normal(x.shape, generator, x.device).to(xf.dtype) * (self.std * scale)
        out = torch.where(real.unsqueeze(-1), xf + noise, xf)
        return out.to(x.dtype)


class FeatureDropout(Transform):
    """Mask features: set them to ``fill`` with probability ``p``.

    ``per="entry"`` drops each (item, feature) entry on its own; ``per="feature"`` drops a
    whole feature column of a list (the same features are hidden for every item of the list,
    like a missing feature source). No rescaling is done. Padded items are left unchanged.
    """

    accepts_mask = True

    def __init__(self, p: float = 0.1, per: str = "entry", fill: float = 0.0) -> None:
        self.p = check_probability("p", p)
        if per not in ("entry", "feature"):
            raise ValueError(f"per must be 'entry' or 'feature', got {per!r}")
        self.per = per
        self.fill = float(fill)

    def apply(self, x: Tensor, generator: torch.Generator, *, mask: Tensor | None = None) -> Tensor:
        real = _check_features(x, mask, "FeatureDropout")
        shape: tuple[int, ...]
        if self.per == "entry":
            shape = tuple(x.shape)
        else:
            shape = (*x.shape[:-2], 1, x.shape[-1])
        drop = (draw_uniform(shape, generator, x.device) < self.p) & real.unsqueeze(-1)
        return torch.where(drop, torch.tensor(self.fill, dtype=x.dtype, device=x.device), x)


def _partners(real: Tensor, generator: torch.Generator) -> Tensor:
    """For each item, the index of another real item of its list, uniformly at random.

    Items of a list with one real item (and padded items) are their own partner.
    """
    n = real.shape[-1]
    order = torch.argsort((~real).to(torch.uint8), dim=-1, stable=True)  # real items first
    rank = torch.argsort(order, dim=-1)  # position of each item among the reals
    m = real.sum(-1, keepdim=True)  # number of real items per list
    u = draw_uniform(real.shape, generator, real.device)
    shift = 1 + (u * (m - 1).clamp(min=0)).floor().long().clamp(max=(m - 2).clamp(min=0))
    shift = torch.where(m > 1, shift, torch.zeros_like(shift))
    partner_rank = torch.remainder(rank + shift, m.clamp(min=1))
    partner = torch.gather(order, -1, partner_rank.clamp(max=n - 1))
    self_index = torch.arange(n, device=real.device).expand_as(real)
    return torch.where(real, partner, self_index)


class ItemMixup(Transform):
    """Mixup between the items of a list: ``x_i <- lam_i x_i + (1 - lam_i) x_j``.

    ``j`` is another real item of the same list, picked at random, and
    ``lam_i = max(l, 1 - l)`` with ``l ~ Beta(alpha, alpha)``, so every item stays closest to
    itself (its label remains meaningful). :meth:`mix` also mixes ``labels`` with the same
    weights, for training on mixed targets.
    """

    accepts_mask = True

    def __init__(self, alpha: float = 0.2) -> None:
        if alpha <= 0:
            raise ValueError(f"alpha must be positive, got {alpha}")
        self.alpha = float(alpha)

    def mix(
        self,
        x: Tensor,
        labels: Tensor | None = None,
        *,
        mask: Tensor | None = None,
        generator: torch.Generator | int | None = None,
    ) -> tuple[Tensor, Tensor | None]:
        """Mixed features and (if given) labels mixed with the same weights."""
        g = make_generator(generator, x.device)
        real = _check_features(x, mask, "ItemMixup")
        partner = _partners(real, g)
        seed = int(torch.randint(0, 2**62, (1,), generator=g, device=g.device))
        beta = np.random.default_rng(seed).beta(self.alpha, self.alpha, size=tuple(real.shape))
        xf = to_float(x)
        lam = torch.from_numpy(np.maximum(beta, 1.0 - beta)).to(xf.dtype).to(x.device)
        lam = torch.where(real, lam, torch.ones_like(lam))
        other = torch.gather(xf, -2, partner.unsqueeze(-1).expand_as(xf))
        out = (lam.unsqueeze(-1) * xf + (1 - lam.unsqueeze(-1)) * other).to(x.dtype)
        if labels is None:
            return out, None
        lf = labels.to(torch.promote_types(xf.dtype, torch.float32))
        mixed = lam.to(lf.dtype) * lf + (1 - lam.to(lf.dtype)) * torch.gather(lf, -1, partner)
        return out, mixed

    def apply(self, x: Tensor, generator: torch.Generator, *, mask: Tensor | None = None) -> Tensor:
        return self.mix(x, mask=mask, generator=generator)[0]

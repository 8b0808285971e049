"""Adversarial (GAN) losses on discriminator logits.

These take no lists, labels or masks: ``real_logits`` and ``fake_logits`` are the
discriminator's raw outputs, of any shape, for real and generated samples. They are here
because adversarial training (e.g. IRGAN for retrieval) pairs a generator of rankings with a
discriminator, and users compose them with the ranking losses. ``reduction`` is ``"mean"``
(over all logits), ``"sum"`` or ``"none"`` (elementwise, same shape as the logits).

Kinds:

* ``"non_saturating"`` (Goodfellow et al., "Generative Adversarial Nets", NIPS 2014):
  :math:`L_D = \\mathrm{softplus}(-d_r) + \\mathrm{softplus}(d_f)`,
  :math:`L_G = \\mathrm{softplus}(-d_f)`.
* ``"hinge"`` (Lim and Ye, "Geometric GAN", 2017; Miyato et al., "Spectral Normalization",
  ICLR 2018): :math:`L_D = \\max(0, 1 - d_r) + \\max(0, 1 + d_f)`, :math:`L_G = -d_f`.
* ``"least_squares"`` (Mao et al., "Least Squares GANs", ICCV 2017):
  :math:`L_D = \\tfrac12 (d_r - 1)^2 + \\tfrac12 d_f^2`, :math:`L_G = \\tfrac12 (d_f - 1)^2`.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from rankloss._core import params
from rankloss._core.reduce import REDUCTIONS, Reduction
from rankloss._core.validation import compute_dtype

__all__ = ["ADVERSARIAL_KINDS", "discriminator_loss", "generator_loss"]

ADVERSARIAL_KINDS = ("non_saturating", "hinge", "least_squares")

AdversarialKind = Literal["non_saturating", "hinge", "least_squares"]


def _logits(x: Tensor, name: str, where: str) -> Tensor:
    if not isinstance(x, Tensor) or not x.dtype.is_floating_point:
        got = f"dtype {x.dtype}" if isinstance(x, Tensor) else type(x).__name__
        raise ValueError(f"{where}: {name} must be a floating-point tensor, got {got}")
    return x.to(compute_dtype(x.dtype))


def _reduce(values: Tensor, reduction: str, where: str) -> Tensor:
    """Elementwise values: ``"none"`` keeps them, ``"sum"`` sums, ``"mean"`` averages all (no
    values: a zero still connected to the graph, as every reduction of the library gives)."""
    params.choice(where, "reduction", reduction, REDUCTIONS)
    if reduction == "none":
        return values
    total = values.sum()
    return total if reduction == "sum" else total / max(values.numel(), 1)


def discriminator_loss(
    real_logits: Tensor,
    fake_logits: Tensor,
    *,
    kind: AdversarialKind = "non_saturating",
    reduction: Reduction = "mean",
) -> Tensor:
    r"""Discriminator loss :math:`L_D` for real and generated samples (formulas in the module doc).

    Shapes: ``real_logits`` and ``fake_logits`` must have the same shape ``[...]``; with
    ``"none"`` the result has that shape. ``"mean"`` averages over all elements.

    Reference: Goodfellow et al. 2014 (non-saturating); Lim and Ye 2017 (hinge); Mao et al.
    2017 (least squares).
    """
    where = "discriminator_loss"
    params.choice(where, "kind", kind, ADVERSARIAL_KINDS)
    real = _logits(real_logits, "real_logits", where)
    fake = _logits(fake_logits, "fake_logits", where)
    if real.shape != fake.shape:
        raise ValueError(
            f"discriminator_loss: real_logits has shape {list(real.shape)} but fake_logits has "
            f"shape {list(fake.shape)}"
        )
    if kind == "non_saturating":
        values = F.softplus(-real) + F.softplus(fake)
    elif kind == "hinge":
        values = torch.relu(1.0 - real) + torch.relu(1.0 + fake)
    else:
        values = 0.5 * (real - 1.0) ** 2 + 0.5 * fake**2
    return _reduce(values, reduction, where)


def generator_loss(
    fake_logits: Tensor,
    *,
    kind: AdversarialKind = "non_saturating",
    reduction: Reduction = "mean",
) -> Tensor:
    r"""Generator loss :math:`L_G` on the discriminator's logits for generated samples.

    Shapes: ``fake_logits`` ``[...]``; ``"none"`` returns that shape, ``"mean"`` averages.

    Reference: Goodfellow et al. 2014 (non-saturating); Lim and Ye 2017 (hinge); Mao et al.
    2017 (least squares).
    """
    where = "generator_loss"
    params.choice(where, "kind", kind, ADVERSARIAL_KINDS)
    fake = _logits(fake_logits, "fake_logits", where)
    if kind == "non_saturating":
        values = F.softplus(-fake)
    elif kind == "hinge":
        values = -fake
    else:
        values = 0.5 * (fake - 1.0) ** 2
    return _reduce(values, reduction, where)

"""Adversarial (GAN) loss modules on discriminator logits; see
:mod:`rankloss.functional.adversarial` for the formulas and papers."""

from __future__ import annotations

from torch import Tensor

from rankloss import functional as F
from rankloss._core import params
from rankloss._core.reduce import Reduction
from rankloss._core.validation import computes_in_float32
from rankloss.functional.adversarial import ADVERSARIAL_KINDS, AdversarialKind
from rankloss.losses.base import AdversarialLoss, register_loss

__all__ = ["DiscriminatorLoss", "GeneratorLoss"]


@register_loss("gan_discriminator", family="adversarial", function=F.discriminator_loss)
class DiscriminatorLoss(AdversarialLoss):
    """Module form of :func:`rankloss.functional.discriminator_loss`:
    ``loss(real_logits, fake_logits)``, both ``[...]``.

    Kinds: ``"non_saturating"`` (Goodfellow et al. 2014), ``"hinge"`` (Lim and Ye 2017),
    ``"least_squares"`` (Mao et al. 2017); :math:`L_D` formulas in the function's module doc.
    """

    def __init__(
        self, *, kind: AdversarialKind = "non_saturating", reduction: Reduction = "mean"
    ) -> None:
        super().__init__(reduction=reduction)
        self.kind_of_gan: AdversarialKind = params.choice(
            type(self).__name__, "kind", kind, ADVERSARIAL_KINDS
        )

    def hyper_parameters(self) -> dict[str, object]:
        return {"kind": self.kind_of_gan, "reduction": self.reduction}

    @computes_in_float32
    def forward(self, real_logits: Tensor, fake_logits: Tensor) -> Tensor:
        return F.discriminator_loss(
            real_logits, fake_logits, kind=self.kind_of_gan, reduction=self.reduction
        )


@register_loss("gan_generator", family="adversarial", function=F.generator_loss)
class GeneratorLoss(AdversarialLoss):
    """Module form of :func:`rankloss.functional.generator_loss`: ``loss(fake_logits)``.

    Kinds as :class:`DiscriminatorLoss` (Goodfellow et al. 2014; Lim and Ye 2017; Mao et al.
    2017); :math:`L_G` formulas in the function's module doc.
    """

    def __init__(
        self, *, kind: AdversarialKind = "non_saturating", reduction: Reduction = "mean"
    ) -> None:
        super().__init__(reduction=reduction)
        self.kind_of_gan: AdversarialKind = params.choice(
            type(self).__name__, "kind", kind, ADVERSARIAL_KINDS
        )

    def hyper_parameters(self) -> dict[str, object]:
        return {"kind": self.kind_of_gan, "reduction": self.reduction}

    @computes_in_float32
    def forward(self, fake_logits: Tensor) -> Tensor:
        return F.generator_loss(fake_logits, kind=self.kind_of_gan, reduction=self.reduction)

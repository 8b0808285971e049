"""Loss modules and the loss registry.

``available()`` lists the registered names; ``get(name, **hyper)`` builds a module. Each module
only holds hyper-parameters and calls its function in :mod:`rankloss.functional`.

Families: ``pointwise``, ``pairwise``, ``listwise`` take ``(scores, labels, mask)`` lists;
``adversarial`` takes discriminator logits; ``embedding`` takes embeddings and labels.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import Tensor

from rankloss import functional as F
from rankloss.losses.base import CombinedLoss, LossModule, loss_module
from rankloss.registry import Registry

LOSSES: Registry[type[LossModule]] = Registry("loss")


def register_loss(
    name: str, function: Callable[..., Tensor], class_name: str, family: str
) -> type[LossModule]:
    """Make the module class for ``function`` and register it under ``name``."""
    cls = loss_module(function, class_name)
    cls.registered_name = name
    return LOSSES.register(name, cls, family=family, function=function)


def available(family: str | None = None) -> list[str]:
    """Registered loss names, optionally of one family."""
    return LOSSES.names(family)


def get(name: str, **hyper: Any) -> LossModule:
    """Build the loss module registered as ``name`` with hyper-parameters ``hyper``.

    Raises ``KeyError`` for an unknown name and ``TypeError`` for an unknown hyper-parameter.
    """
    return LOSSES.get(name)(**hyper)


MSELoss = register_loss("mse", F.mse_loss, "MSELoss", "pointwise")
MAELoss = register_loss("mae", F.mae_loss, "MAELoss", "pointwise")
SmoothL1Loss = register_loss("smooth_l1", F.smooth_l1_loss, "SmoothL1Loss", "pointwise")
SigmoidCELoss = register_loss("sigmoid_ce", F.sigmoid_ce_loss, "SigmoidCELoss", "pointwise")
SoftmaxCELoss = register_loss("softmax_ce", F.softmax_ce_loss, "SoftmaxCELoss", "pointwise")
KLDivLoss = register_loss("kl_div", F.kl_div_loss, "KLDivLoss", "pointwise")
HingeLoss = register_loss("hinge", F.hinge_loss, "HingeLoss", "pointwise")
RankNetLoss = register_loss("ranknet", F.ranknet_loss, "RankNetLoss", "pairwise")
PairwiseHingeLoss = register_loss(
    "pairwise_hinge", F.pairwise_hinge_loss, "PairwiseHingeLoss", "pairwise"
)
LambdaRankLoss = register_loss("lambdarank", F.lambdarank_loss, "LambdaRankLoss", "pairwise")
LambdaLoss = register_loss("lambdaloss", F.lambdaloss_loss, "LambdaLoss", "pairwise")
BPRLoss = register_loss("bpr", F.bpr_loss, "BPRLoss", "pairwise")
ListNetLoss = register_loss("listnet", F.listnet_loss, "ListNetLoss", "listwise")
ListMLELoss = register_loss("listmle", F.listmle_loss, "ListMLELoss", "listwise")
ApproxNDCGLoss = register_loss("approx_ndcg", F.approx_ndcg_loss, "ApproxNDCGLoss", "listwise")
NeuralNDCGLoss = register_loss("neural_ndcg", F.neural_ndcg_loss, "NeuralNDCGLoss", "listwise")
DiscriminatorLoss = register_loss(
    "gan_discriminator", F.discriminator_loss, "DiscriminatorLoss", "adversarial"
)
GeneratorLoss = register_loss("gan_generator", F.generator_loss, "GeneratorLoss", "adversarial")

__all__ = [
    "LOSSES",
    "available",
    "get",
    "register_loss",
    "LossModule",
    "CombinedLoss",
    "MSELoss",
    "MAELoss",
    "SmoothL1Loss",
    "SigmoidCELoss",
    "SoftmaxCELoss",
    "KLDivLoss",
    "HingeLoss",
    "RankNetLoss",
    "PairwiseHingeLoss",
    "LambdaRankLoss",
    "LambdaLoss",
    "BPRLoss",
    "ListNetLoss",
    "ListMLELoss",
    "ApproxNDCGLoss",
    "NeuralNDCGLoss",
    "DiscriminatorLoss",
    "GeneratorLoss",
]

# Embedding losses register themselves (family "embedding") in their own module.
from rankloss.losses import embedding as _embedding  # noqa: E402, F401

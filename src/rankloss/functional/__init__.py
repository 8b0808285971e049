"""The math of rankloss: pure loss functions with no state.

Every learning-to-rank loss is ``<name>_loss(scores, labels, mask=None, *, weights=None,
reduction="mean", **hyper)`` on ``[..., n]`` tensors; see ``docs/conventions.md``.
"""

from rankloss.functional.adversarial import discriminator_loss, generator_loss
from rankloss.functional.listwise import (
    approx_ndcg_loss,
    kl_div_loss,
    listmle_loss,
    listnet_loss,
    neural_ndcg_loss,
    softmax_ce_loss,
)
from rankloss.functional.pairwise import (
    bpr_loss,
    lambdaloss_loss,
    lambdarank_loss,
    pairwise_hinge_loss,
    ranknet_loss,
)
from rankloss.functional.pointwise import (
    hinge_loss,
    mae_loss,
    mse_loss,
    sigmoid_ce_loss,
    smooth_l1_loss,
)

__all__ = [
    "mse_loss",
    "mae_loss",
    "smooth_l1_loss",
    "sigmoid_ce_loss",
    "softmax_ce_loss",
    "kl_div_loss",
    "hinge_loss",
    "ranknet_loss",
    "pairwise_hinge_loss",
    "lambdarank_loss",
    "lambdaloss_loss",
    "bpr_loss",
    "listnet_loss",
    "listmle_loss",
    "approx_ndcg_loss",
    "neural_ndcg_loss",
    "discriminator_loss",
    "generator_loss",
]

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

# Embedding losses and similarities (metric learning, retrieval).
from rankloss.functional.embedding import (  # noqa: E402
    circle_loss,
    contrastive_loss,
    info_nce_loss,
    margin_ranking_loss,
    multi_similarity_loss,
    nt_xent_loss,
    supcon_loss,
    triplet_loss,
)
from rankloss.functional.similarity import SIMILARITIES, pairwise_similarity  # noqa: E402

__all__ += [
    "contrastive_loss",
    "triplet_loss",
    "info_nce_loss",
    "nt_xent_loss",
    "supcon_loss",
    "multi_similarity_loss",
    "circle_loss",
    "margin_ranking_loss",
    "pairwise_similarity",
    "SIMILARITIES",
]

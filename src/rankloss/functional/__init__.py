"""The math of rankloss: pure loss functions with no state.

Every learning-to-rank loss is ``<name>_loss(scores, labels, mask=None, *, weights=None,
reduction="mean", **hyper)`` on ``[..., n]`` tensors; every embedding loss is
``<name>_loss(similarity [N, M], positive [N, M], negative [N, M], *, weights=None,
reduction="mean", **hyper)``; see ``docs/conventions.md``. This layer imports only
``rankloss._core``.
"""

from rankloss.functional.adversarial import discriminator_loss, generator_loss
from rankloss.functional.lambdaweights import PAIR_WEIGHTS, PairContext, PairWeight
from rankloss.functional.listwise import (
    approx_ndcg_loss,
    kl_div_loss,
    listmle_loss,
    listnet_loss,
    neural_ndcg_loss,
    softmax_ce_loss,
)
from rankloss.functional.pairwise import (
    PAIR_TERMS,
    bpr_loss,
    lambdaloss_loss,
    lambdarank_loss,
    pairwise_hinge_loss,
    pairwise_loss,
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
    "pairwise_loss",
    "PAIR_TERMS",
    "PAIR_WEIGHTS",
    "PairContext",
    "PairWeight",
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
    chunked_info_nce_loss,
    circle_loss,
    contrastive_loss,
    info_nce_loss,
    margin_ranking_loss,
    multi_similarity_loss,
    nt_xent_loss,
    supcon_loss,
    triplet_loss,
)
from rankloss.functional.siglip import siglip_loss, siglip_per_anchor  # noqa: E402
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
    "chunked_info_nce_loss",
    "siglip_loss",
    "siglip_per_anchor",
    "pairwise_similarity",
    "SIMILARITIES",
]

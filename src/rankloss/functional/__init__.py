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
from rankloss.functional.listwise_more import (
    gumbel_approx_ndcg_loss,
    pirank_loss,
    position_aware_listmle_loss,
    rank_cosine_loss,
    soft_rank_ndcg_loss,
    xe_ndcg_loss,
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
    "xe_ndcg_loss",
    "gumbel_approx_ndcg_loss",
    "pirank_loss",
    "position_aware_listmle_loss",
    "rank_cosine_loss",
    "soft_rank_ndcg_loss",
    "neural_sort",
    "soft_sort_matrix",
    "soft_sort",
    "soft_rank",
    "discriminator_loss",
    "generator_loss",
]

# Embedding losses and similarities (metric learning, retrieval).
from rankloss.functional.ap_surrogates import (  # noqa: E402
    fast_ap_loss,
    recall_at_k_loss,
    smooth_ap_loss,
)
from rankloss.functional.detection import alrp_loss, ap_loss, rank_sort_loss  # noqa: E402
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
from rankloss.functional.proxy import (  # noqa: E402
    arcface_loss,
    cosface_loss,
    normalized_softmax_loss,
    proxy_anchor_loss,
    proxy_nca_loss,
    proxy_nca_pp_loss,
    soft_triple_loss,
    sub_center_arcface_loss,
)
from rankloss.functional.recommendation import (  # noqa: E402
    bpr_max_loss,
    ccl_loss,
    gbce_beta,
    gbce_loss,
    in_batch_scores,
    sampled_softmax_loss,
    top1_max_loss,
)
from rankloss.functional.siglip import siglip_loss, siglip_per_anchor  # noqa: E402
from rankloss.functional.similarity import SIMILARITIES, pairwise_similarity  # noqa: E402
from rankloss.functional.sorting import (  # noqa: E402
    neural_sort,
    soft_rank,
    soft_sort,
    soft_sort_matrix,
)
from rankloss.functional.tuples import (  # noqa: E402
    angular_loss,
    dcl_loss,
    dclw_loss,
    generalized_lifted_structure_loss,
    guided_info_nce_loss,
    lifted_structure_loss,
    margin_loss,
    n_pairs_loss,
    tuplet_margin_loss,
)

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
    "proxy_nca_loss",
    "proxy_nca_pp_loss",
    "proxy_anchor_loss",
    "normalized_softmax_loss",
    "cosface_loss",
    "arcface_loss",
    "sub_center_arcface_loss",
    "soft_triple_loss",
    "pairwise_similarity",
    "SIMILARITIES",
    "lifted_structure_loss",
    "generalized_lifted_structure_loss",
    "n_pairs_loss",
    "angular_loss",
    "margin_loss",
    "tuplet_margin_loss",
    "dcl_loss",
    "dclw_loss",
    "guided_info_nce_loss",
]
__all__ += ["fast_ap_loss", "smooth_ap_loss", "recall_at_k_loss"]
__all__ += ["ap_loss", "alrp_loss", "rank_sort_loss"]
__all__ += [
    "sampled_softmax_loss",
    "in_batch_scores",
    "bpr_max_loss",
    "top1_max_loss",
    "gbce_loss",
    "gbce_beta",
    "ccl_loss",
]

r"""Module forms of the retrieval-metric surrogates of :mod:`rankloss.functional.ap_surrogates`.

Each is a :class:`~rankloss.losses.embedding.SimilarityLoss`: called as
``loss(embeddings, labels)`` or ``loss(queries, keys=keys)`` like every embedding loss, it
builds the candidates, their similarity and the positive/negative masks, then calls its
function (one value per query: one minus a relaxed AP or recall@k of the query's ranking of
the batch).

>>> import torch
>>> from rankloss.losses.ap_surrogates import SmoothAPLoss
>>> embeddings, labels = torch.randn(8, 4), torch.tensor([0, 0, 1, 1, 2, 2, 3, 3])
>>> float(SmoothAPLoss()(embeddings, labels)) <= 1.0
True
"""

from __future__ import annotations

from collections.abc import Sequence

from rankloss._core import params
from rankloss._core.reduce import Reduction
from rankloss._core.similarity import Similarity
from rankloss.functional import ap_surrogates as F
from rankloss.losses.base import register_loss
from rankloss.losses.embedding import SimilarityLoss

__all__ = ["FastAPLoss", "SmoothAPLoss", "RecallAtKLoss"]


@register_loss(
    "fast_ap",
    family="embedding",
    function=F.fast_ap_loss,
    search_space={"num_bins": ("int", 5, 40)},
)
class FastAPLoss(SimilarityLoss):
    r"""FastAP (Cakir et al., CVPR 2019): AP from soft histograms of pair distances.

    .. math::
        \ell_a = 1 - \frac{1}{|\mathcal P_a|}\sum_l \frac{h^+_l H^+_l}{H_l}

    over ``num_bins`` bins of the distance :math:`d = 2 - 2s` in :math:`[0, 4]`
    (:func:`rankloss.functional.fast_ap_loss`). Meant for ``similarity="cosine"``.
    Cost: :math:`O(NM \cdot \text{num\_bins})`.

    Hyper-parameters: ``similarity='cosine'``, ``num_bins=10``, ``reduction='mean'``.
    """

    def __init__(
        self,
        *,
        similarity: Similarity = "cosine",
        num_bins: int = 10,
        reduction: Reduction = "mean",
    ) -> None:
        super().__init__(similarity=similarity, reduction=reduction)
        self.num_bins = params.positive_int(type(self).__name__, "num_bins", num_bins)


@register_loss(
    "smooth_ap",
    family="embedding",
    function=F.smooth_ap_loss,
    search_space={"temperature": ("log", 0.001, 0.1)},
)
class SmoothAPLoss(SimilarityLoss):
    r"""Smooth-AP (Brown et al., ECCV 2020): one minus AP with sigmoid-relaxed ranks.

    .. math::
        \ell_a = 1 - \frac{1}{|\mathcal P_a|}\sum_{i \in \mathcal P_a}
        \frac{1 + \sum_{j \in \mathcal P_a, j \ne i} \sigma((s_{aj} - s_{ai})/\tau)}
             {1 + \sum_{j \in \Omega_a, j \ne i} \sigma((s_{aj} - s_{ai})/\tau)}

    (:func:`rankloss.functional.smooth_ap_loss`). Cost: :math:`O(NM^2)`.

    Hyper-parameters: ``similarity='cosine'``, ``temperature=0.01``, ``reduction='mean'``.
    """

    def __init__(
        self,
        *,
        similarity: Similarity = "cosine",
        temperature: float = 0.01,
        reduction: Reduction = "mean",
    ) -> None:
        super().__init__(similarity=similarity, reduction=reduction)
        self.temperature = params.positive(type(self).__name__, "temperature", temperature)


@register_loss(
    "recall_at_k",
    family="embedding",
    function=F.recall_at_k_loss,
    search_space={"temperature": ("log", 0.001, 0.1)},
)
class RecallAtKLoss(SimilarityLoss):
    r"""The recall@k surrogate (Patel et al., CVPR 2022), averaged over ``cutoffs``.

    .. math::
        \ell_a = 1 - \frac{1}{|K|}\sum_{k \in K}
        \frac{\sum_{i \in \mathcal P_a}\sigma\bigl((k - r_a(i))/\tau_k\bigr)}
             {\min(k, |\mathcal P_a|)}

    with the sigmoid-relaxed rank :math:`r_a(i)` (temperature :math:`\tau`)
    (:func:`rankloss.functional.recall_at_k_loss`). Similarity mixup (SiMix) is not included.
    Cost: :math:`O(NM^2)`.

    Hyper-parameters: ``similarity='cosine'``, ``cutoffs=(1, 2, 4, 8, 16)``,
    ``temperature=0.01``, ``rank_temperatures=(1.0, 2.0, 4.0, 8.0, 16.0)``,
    ``reduction='mean'``.
    """

    def __init__(
        self,
        *,
        similarity: Similarity = "cosine",
        cutoffs: Sequence[int] = F.RECALL_AT_K_CUTOFFS,
        temperature: float = 0.01,
        rank_temperatures: Sequence[float] = (1.0, 2.0, 4.0, 8.0, 16.0),
        reduction: Reduction = "mean",
    ) -> None:
        super().__init__(similarity=similarity, reduction=reduction)
        where = type(self).__name__
        self.cutoffs, self.rank_temperatures = F.check_cutoffs(where, cutoffs, rank_temperatures)
        self.temperature = params.positive(where, "temperature", temperature)

"""Loss modules and the loss registry.

Two kinds of loss, each with its own base class (:mod:`rankloss.losses.base`):

* :class:`ListLoss` (``kind == "list"``, families ``pointwise``, ``pairwise``, ``listwise``,
  ``recommendation``, ``detection``): ``loss(scores, labels, mask=None, *, weights=None)`` on
  ``[..., n]`` lists;
* :class:`EmbeddingLoss` (``kind == "embedding"``, families ``embedding`` and ``proxy``):
  ``loss(embeddings, labels)`` or ``loss(queries, keys=keys)`` (proxy losses, which hold
  learnable class proxies, take the first form only);

and :class:`AdversarialLoss` (``kind == "adversarial"``) on discriminator logits.
``available()`` lists the registered names; ``get(name, **hyper)`` builds a module; every
module is also a class of its own (``RankNetLoss(sigma=2.0)``), with a typed constructor that
checks its hyper-parameters.

Every loss computes in float32 under ``torch.autocast`` (half-precision inputs are upcast and
autocast is off inside the loss). A list loss given labels holding -1 and no ``mask`` warns
once with :class:`PaddingLabelWarning`: -1 is a real label; pass ``mask=labels != -1`` if it
marks padding.
"""

from rankloss._core.validation import PaddingLabelWarning
from rankloss.losses.adversarial import DiscriminatorLoss, GeneratorLoss
from rankloss.losses.ap_surrogates import FastAPLoss, RecallAtKLoss, SmoothAPLoss
from rankloss.losses.base import (
    LOSSES,
    AdversarialLoss,
    CombinedLoss,
    EmbeddingLoss,
    ListLoss,
    Loss,
    LossInfo,
    LossKind,
    available,
    get,
    register_loss,
)
from rankloss.losses.detection import ALRPLoss, APLoss, RankSortLoss
from rankloss.losses.embedding import (
    CircleLoss,
    ContrastiveLoss,
    InfoNCELoss,
    MarginRankingLoss,
    MultiSimilarityLoss,
    NTXentLoss,
    SigLIPLoss,
    SupConLoss,
    TripletLoss,
)
from rankloss.losses.proxy import (
    ArcFaceLoss,
    CosFaceLoss,
    NormalizedSoftmaxLoss,
    ProxyAnchorLoss,
    ProxyLoss,
    ProxyNCALoss,
    ProxyNCAPlusPlusLoss,
    SoftTripleLoss,
    SubCenterArcFaceLoss,
)
from rankloss.losses.ranking import (
    ApproxNDCGLoss,
    BPRLoss,
    HingeLoss,
    KLDivLoss,
    LambdaLoss,
    LambdaRankLoss,
    ListMLELoss,
    ListNetLoss,
    MAELoss,
    MSELoss,
    NeuralNDCGLoss,
    PairwiseHingeLoss,
    PairwiseLoss,
    RankNetLoss,
    SigmoidCELoss,
    SmoothL1Loss,
    SoftmaxCELoss,
)
from rankloss.losses.ranking_more import (
    GumbelApproxNDCGLoss,
    PiRankLoss,
    PositionAwareListMLELoss,
    RankCosineLoss,
    SoftRankNDCGLoss,
    XENDCGLoss,
)
from rankloss.losses.recommendation import (
    BPRMaxLoss,
    CCLLoss,
    GBCELoss,
    SampledSoftmaxLoss,
    TOP1MaxLoss,
)
from rankloss.losses.tuples import (
    AngularLoss,
    DCLLoss,
    DCLWLoss,
    GeneralizedLiftedStructureLoss,
    GuidedInfoNCELoss,
    LiftedStructureLoss,
    MarginLoss,
    NPairsLoss,
    TupletMarginLoss,
)

__all__ = [
    "LOSSES",
    "available",
    "get",
    "register_loss",
    "Loss",
    "ListLoss",
    "EmbeddingLoss",
    "AdversarialLoss",
    "CombinedLoss",
    "LossInfo",
    "LossKind",
    "PaddingLabelWarning",
    "MSELoss",
    "MAELoss",
    "SmoothL1Loss",
    "SigmoidCELoss",
    "HingeLoss",
    "SoftmaxCELoss",
    "KLDivLoss",
    "ListNetLoss",
    "ListMLELoss",
    "ApproxNDCGLoss",
    "NeuralNDCGLoss",
    "XENDCGLoss",
    "GumbelApproxNDCGLoss",
    "PiRankLoss",
    "PositionAwareListMLELoss",
    "RankCosineLoss",
    "SoftRankNDCGLoss",
    "PairwiseLoss",
    "RankNetLoss",
    "PairwiseHingeLoss",
    "BPRLoss",
    "LambdaRankLoss",
    "LambdaLoss",
    "ContrastiveLoss",
    "TripletLoss",
    "InfoNCELoss",
    "NTXentLoss",
    "SigLIPLoss",
    "SupConLoss",
    "MultiSimilarityLoss",
    "CircleLoss",
    "MarginRankingLoss",
    "LiftedStructureLoss",
    "GeneralizedLiftedStructureLoss",
    "NPairsLoss",
    "AngularLoss",
    "MarginLoss",
    "TupletMarginLoss",
    "DCLLoss",
    "DCLWLoss",
    "GuidedInfoNCELoss",
    "ProxyLoss",
    "ProxyNCALoss",
    "ProxyNCAPlusPlusLoss",
    "ProxyAnchorLoss",
    "NormalizedSoftmaxLoss",
    "CosFaceLoss",
    "ArcFaceLoss",
    "SubCenterArcFaceLoss",
    "SoftTripleLoss",
    "DiscriminatorLoss",
    "GeneratorLoss",
    "FastAPLoss",
    "SmoothAPLoss",
    "RecallAtKLoss",
    "APLoss",
    "ALRPLoss",
    "RankSortLoss",
    "SampledSoftmaxLoss",
    "BPRMaxLoss",
    "TOP1MaxLoss",
    "GBCELoss",
    "CCLLoss",
]

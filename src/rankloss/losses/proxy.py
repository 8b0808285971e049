r"""Proxy-loss modules: learned class proxies, and a loss of :mod:`rankloss.functional.proxy`.

Every module is an :class:`~rankloss.losses.base.EmbeddingLoss` (``kind = "embedding"``)
registered in family ``"proxy"``, built with the number of classes and the embedding size,
and called on a batch of embeddings and their class labels::

    loss = ArcFaceLoss(num_classes=100, embedding_size=128)
    value = loss(embeddings [N, 128], labels [N])          # labels in [0, 100)

The proxies (class centres) are the module's ``nn.Parameter`` ``proxies``, ``[C, d]`` (or
``[C, K, d]`` for the losses with ``K`` centres per class). They are initialised as each
paper's code does, from torch's global random generator (seed it with ``torch.manual_seed``
before building the module for a reproducible start, as for any ``nn.Linear``), and are
trained with the model: the :class:`~rankloss.train.Trainer` optimises ``loss.parameters()``
too; with your own loop, give the optimiser the loss's parameters, usually in a group of their
own with a larger learning rate (``docs/proxy_losses.md``).

The call takes ``weights [N]`` (per embedding); the other keywords of the embedding losses
(``keys``, ``ref_embeddings``, ``ref_labels``, ``hard_negatives``, ``indices``) are refused
with a ``ValueError``: a proxy loss compares each embedding with the proxies, not with other
embeddings. Every hyper-parameter is checked when the module is built
(``"<Class>: <name> must be ..., got ..."``).

>>> import torch
>>> from rankloss.losses.proxy import ProxyAnchorLoss
>>> _ = torch.manual_seed(0)
>>> loss = ProxyAnchorLoss(num_classes=4, embedding_size=8)
>>> loss(torch.randn(6, 8), torch.tensor([0, 0, 1, 1, 2, 3])).shape
torch.Size([])
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import ClassVar, Literal

import torch
from torch import Tensor, nn

from rankloss._core import params
from rankloss._core.reduce import Reduction
from rankloss._core.validation import computes_in_float32, shape_str
from rankloss.functional import proxy as F
from rankloss.losses.base import EmbeddingLoss, register_loss

__all__ = [
    "ProxyLoss",
    "ProxyNCALoss",
    "ProxyNCAPlusPlusLoss",
    "ProxyAnchorLoss",
    "NormalizedSoftmaxLoss",
    "CosFaceLoss",
    "ArcFaceLoss",
    "SubCenterArcFaceLoss",
    "SoftTripleLoss",
]

#: Built with ``get(name, **EXAMPLE)`` by the generic tests and examples.
EXAMPLE = {"num_classes": 4, "embedding_size": 8}

#: Hyper-parameters that fix the proxies' shape: not arguments of the functions.
_PROXY_SHAPE = frozenset({"num_classes", "embedding_size", "sub_centers", "centers_per_class"})

_REFUSED = ("keys", "ref_embeddings", "ref_labels", "hard_negatives", "indices")


class ProxyLoss(EmbeddingLoss):
    """Base of the proxy losses: ``loss(embeddings [N, d], labels [N], *, weights=None)``.

    Subclasses write a typed ``__init__`` (calling :meth:`_init_proxies`); the forward calls
    their registered function with ``self.proxies`` and the hyper-parameters.

    Attributes:
        proxies: the ``nn.Parameter`` of the class proxies, ``[C, d]`` or ``[C, K, d]``.
        values_per: ``"embedding"`` when ``reduction="none"`` returns ``[N]``, ``"proxy"``
            when it returns ``[C]`` (:class:`ProxyAnchorLoss`).
    """

    values_per: ClassVar[Literal["embedding", "proxy"]] = "embedding"
    takes_keys: ClassVar[bool] = False

    num_classes: int
    embedding_size: int
    proxies: nn.Parameter

    def _init_proxies(
        self,
        num_classes: int,
        embedding_size: int,
        init: Callable[[Tensor], object],
        centres: int | None = None,
    ) -> None:
        where = type(self).__name__
        self.num_classes = params.positive_int(where, "num_classes", num_classes)
        if num_classes < 2:
            raise ValueError(f"{where}: num_classes must be >= 2, got {num_classes!r}")
        self.embedding_size = params.positive_int(where, "embedding_size", embedding_size)
        shape = (
            (num_classes, embedding_size)
            if centres is None
            else (
                num_classes,
                centres,
                embedding_size,
            )
        )
        proxies = torch.empty(shape)
        with torch.no_grad():
            init(proxies)
        self.proxies = nn.Parameter(proxies)

    @computes_in_float32
    def forward(
        self,
        embeddings: Tensor,
        labels: Tensor | None = None,
        *,
        weights: Tensor | None = None,
        keys: Tensor | None = None,
        ref_embeddings: Tensor | None = None,
        ref_labels: Tensor | None = None,
        hard_negatives: Tensor | None = None,
        indices: object = None,
    ) -> Tensor:
        """The loss of a batch of embeddings against the class proxies.

        Args:
            embeddings: ``[N, embedding_size]`` floating point.
            labels: ``[N]`` integer class indices in ``[0, num_classes)`` (required).
            weights: ``[N]`` per-embedding weights, or ``None``.
            keys, ref_embeddings, ref_labels, hard_negatives, indices: refused
                (``ValueError``): a proxy loss takes no candidates.

        Returns:
            A scalar, or with ``reduction="none"`` ``[N]`` (``[num_classes]`` for
            :class:`ProxyAnchorLoss`).
        """
        where = type(self).__name__
        given = dict(
            keys=keys,
            ref_embeddings=ref_embeddings,
            ref_labels=ref_labels,
            hard_negatives=hard_negatives,
            indices=indices,
        )
        for name in _REFUSED:
            if given[name] is not None:
                raise ValueError(
                    f"{where} does not take {name}=: a proxy loss compares each embedding "
                    "with the learned class proxies, not with other embeddings; call "
                    "loss(embeddings, labels)"
                )
        if labels is None:
            raise ValueError(
                f"{where}: labels are required, [N] integer class indices in "
                f"[0, {self.num_classes})"
            )
        if (
            isinstance(embeddings, Tensor)
            and embeddings.dim() == 2
            and embeddings.shape[1] != self.embedding_size
        ):
            raise ValueError(
                f"{where}: embeddings has shape {shape_str(embeddings)} but the loss was built "
                f"with embedding_size={self.embedding_size}"
            )
        return self._compute(embeddings, labels, weights)

    def _compute(self, embeddings: Tensor, labels: Tensor, weights: Tensor | None) -> Tensor:
        """The registered function of this loss on ``self.proxies``, with every
        hyper-parameter except those that only shape the proxies."""
        function = type(self).registered_function()
        hyper = {k: v for k, v in self.hyper_parameters().items() if k not in _PROXY_SHAPE}
        return function(embeddings, labels, self.proxies, weights=weights, **hyper)


def _normal(std: float) -> Callable[[Tensor], object]:
    return lambda t: nn.init.normal_(t, 0.0, std)


def _uniform_fan(t: Tensor) -> object:
    """Uniform in :math:`\\pm 1/\\sqrt{C K}` for ``t [C, K, d]`` (SoftTriple's code: a
    Kaiming uniform with ``a = sqrt(5)`` of its ``[d, C K]`` centre matrix)."""
    fan = math.prod(t.shape[:-1])
    return nn.init.uniform_(t, -1.0 / math.sqrt(fan), 1.0 / math.sqrt(fan))


def _uniform_linear(t: Tensor) -> object:
    """Uniform in :math:`\\pm 1/\\sqrt{d}`, as ``nn.Linear(d, C)``'s weight."""
    bound = 1.0 / math.sqrt(t.shape[-1])
    return nn.init.uniform_(t, -bound, bound)


# --------------------------------------------------------------------------------------------


@register_loss(
    "proxy_nca",
    family="proxy",
    function=F.proxy_nca_loss,
    example=EXAMPLE,
    needs_pairs="any_pair",
    search_space={"temperature": ("log", 0.05, 1.0)},
)
class ProxyNCALoss(ProxyLoss):
    r"""ProxyNCA (Movshovitz-Attias et al. 2017): NCA against the class proxies, the positive
    proxy left out of the denominator.

    .. math::
        \ell_i = \frac{d_{i y_i}}{T} + \log \sum_{c \ne y_i} e^{-d_{ic} / T}, \qquad
        d_{ic} = \lVert \hat x_i - \hat p_c \rVert^2

    (:func:`rankloss.functional.proxy_nca_loss`; the value can be negative). Proxies
    ``[C, d]`` start from a standard normal (the paper fixes no initialisation; proxies are
    normalised, so their scale only sets the step size of their updates).

    pytorch-metric-learning's ``ProxyNCALoss`` includes the positive proxy in the denominator:
    that loss is :class:`ProxyNCAPlusPlusLoss` with ``temperature = 1 / softmax_scale``.

    Reference: Movshovitz-Attias et al., "No Fuss Distance Metric Learning using Proxies",
    ICCV 2017. Cost: :math:`O(NCd)`.
    """

    def __init__(
        self,
        *,
        num_classes: int,
        embedding_size: int,
        temperature: float = 1.0,
        reduction: Reduction = "mean",
    ) -> None:
        super().__init__(reduction=reduction)
        where = type(self).__name__
        self.temperature = params.positive(where, "temperature", temperature)
        self._init_proxies(num_classes, embedding_size, _normal(1.0))


@register_loss(
    "proxy_nca_pp",
    family="proxy",
    function=F.proxy_nca_pp_loss,
    example=EXAMPLE,
    needs_pairs="any_pair",
    search_space={"temperature": ("log", 0.03, 1.0)},
)
class ProxyNCAPlusPlusLoss(ProxyLoss):
    r"""ProxyNCA++ (Teh, DeVries and Taylor 2020): cross-entropy of the proxy assignment
    probability, normalised proxies and a low temperature.

    .. math::
        \ell_i = -\log \frac{e^{-d_{i y_i} / T}}{\sum_{c} e^{-d_{ic} / T}}, \qquad
        d_{ic} = \lVert \hat x_i - \hat p_c \rVert^2

    (:func:`rankloss.functional.proxy_nca_pp_loss`). Proxies ``[C, d]`` start from a normal
    of standard deviation 1/8, as in the authors' code. The paper's "fast-moving proxies"
    are an optimiser setting: give ``loss.parameters()`` a learning rate far above the
    model's (``docs/proxy_losses.md``).

    Reference: Teh, DeVries and Taylor, "ProxyNCA++: Revisiting and Revitalizing Proxy
    Neighborhood Component Analysis", ECCV 2020. Cost: :math:`O(NCd)`.
    """

    def __init__(
        self,
        *,
        num_classes: int,
        embedding_size: int,
        temperature: float = 1.0 / 9.0,
        reduction: Reduction = "mean",
    ) -> None:
        super().__init__(reduction=reduction)
        where = type(self).__name__
        self.temperature = params.positive(where, "temperature", temperature)
        self._init_proxies(num_classes, embedding_size, _normal(1.0 / 8.0))


@register_loss(
    "proxy_anchor",
    family="proxy",
    function=F.proxy_anchor_loss,
    example=EXAMPLE,
    needs_pairs="any_pair",
    search_space={"margin": ("float", 0.0, 0.3), "alpha": ("log", 4.0, 64.0)},
)
class ProxyAnchorLoss(ProxyLoss):
    r"""Proxy Anchor (Kim et al. 2020): each proxy pulls its class's embeddings and pushes
    the others, weighted by hardness through a log-sum-exp.

    .. math::
        \ell = \frac{1}{|P^+|} \sum_{c \in P^+}
               \log\Bigl(1 + \sum_{i \in X_c^+} e^{-\alpha (s_{ic} - \delta)}\Bigr)
             + \frac{1}{C} \sum_{c}
               \log\Bigl(1 + \sum_{i \in X_c^-} e^{\alpha (s_{ic} + \delta)}\Bigr)

    (:func:`rankloss.functional.proxy_anchor_loss`). Its terms belong to the proxies:
    ``reduction="none"`` returns ``[num_classes]`` values, and ``weights [N]`` multiply each
    embedding's terms inside the sums. Proxies ``[C, d]`` start from a Kaiming normal
    (``fan_out``: standard deviation :math:`\sqrt{2 / C}`), as in the authors' code, which
    trains them with 100 times the model's learning rate.

    Reference: Kim, Kim, Cho and Kwak, "Proxy Anchor Loss for Deep Metric Learning", CVPR
    2020. Cost: :math:`O(NCd)`.
    """

    values_per: ClassVar[Literal["embedding", "proxy"]] = "proxy"

    def __init__(
        self,
        *,
        num_classes: int,
        embedding_size: int,
        margin: float = 0.1,
        alpha: float = 32.0,
        reduction: Reduction = "mean",
    ) -> None:
        super().__init__(reduction=reduction)
        where = type(self).__name__
        self.margin = params.nonnegative(where, "margin", margin)
        self.alpha = params.positive(where, "alpha", alpha)
        self._init_proxies(
            num_classes,
            embedding_size,
            lambda t: nn.init.kaiming_normal_(t, mode="fan_out"),
        )


@register_loss(
    "normalized_softmax",
    family="proxy",
    function=F.normalized_softmax_loss,
    example=EXAMPLE,
    needs_pairs="any_pair",
    search_space={"temperature": ("log", 0.01, 0.3)},
)
class NormalizedSoftmaxLoss(ProxyLoss):
    r"""NormalizedSoftmax (Zhai and Wu 2019): a classifier with normalised weights and inputs,
    its cosine logits divided by a temperature.

    .. math::
        \ell_i = -\log \frac{e^{\cos(x_i, p_{y_i}) / T}}{\sum_{c} e^{\cos(x_i, p_c) / T}}

    (:func:`rankloss.functional.normalized_softmax_loss`). Proxies ``[C, d]`` start as a
    linear layer's weight does: uniform in :math:`\pm 1/\sqrt{d}`.

    Reference: Zhai and Wu, "Classification is a Strong Baseline for Deep Metric Learning",
    BMVC 2019. Cost: :math:`O(NCd)`.
    """

    def __init__(
        self,
        *,
        num_classes: int,
        embedding_size: int,
        temperature: float = 0.05,
        reduction: Reduction = "mean",
    ) -> None:
        super().__init__(reduction=reduction)
        where = type(self).__name__
        self.temperature = params.positive(where, "temperature", temperature)
        self._init_proxies(num_classes, embedding_size, _uniform_linear)


@register_loss(
    "cosface",
    family="proxy",
    function=F.cosface_loss,
    example=EXAMPLE,
    needs_pairs="any_pair",
    search_space={"margin": ("float", 0.1, 0.5), "scale": ("log", 8.0, 64.0)},
)
class CosFaceLoss(ProxyLoss):
    r"""CosFace (Wang et al. 2018): softmax over scaled cosines, an additive margin on the
    target's.

    .. math::
        \ell_i = -\log \frac{e^{s (\cos_{i y_i} - m)}}
                            {e^{s (\cos_{i y_i} - m)} + \sum_{c \ne y_i} e^{s \cos_{ic}}}

    (:func:`rankloss.functional.cosface_loss`). Proxies ``[C, d]`` start from a normal of
    standard deviation 0.01 (as the face-recognition code of ArcFace, which trains them with
    the model's learning rate and SGD).

    Reference: Wang et al., "CosFace: Large Margin Cosine Loss for Deep Face Recognition",
    CVPR 2018. Cost: :math:`O(NCd)`.
    """

    def __init__(
        self,
        *,
        num_classes: int,
        embedding_size: int,
        margin: float = 0.35,
        scale: float = 64.0,
        reduction: Reduction = "mean",
    ) -> None:
        super().__init__(reduction=reduction)
        where = type(self).__name__
        self.margin = params.nonnegative(where, "margin", margin)
        self.scale = params.positive(where, "scale", scale)
        self._init_proxies(num_classes, embedding_size, _normal(0.01))


@register_loss(
    "arcface",
    family="proxy",
    function=F.arcface_loss,
    example=EXAMPLE,
    needs_pairs="any_pair",
    search_space={"margin": ("float", 0.1, 0.6), "scale": ("log", 8.0, 64.0)},
)
class ArcFaceLoss(ProxyLoss):
    r"""ArcFace (Deng et al. 2019): softmax over scaled cosines, an additive angular margin on
    the target's.

    .. math::
        \ell_i = -\log \frac{e^{s \cos(\theta_{i y_i} + m)}}
                            {e^{s \cos(\theta_{i y_i} + m)}
                             + \sum_{c \ne y_i} e^{s \cos\theta_{ic}}}

    (:func:`rankloss.functional.arcface_loss`), ``margin`` in **radians** (0.5;
    pytorch-metric-learning's ``ArcFaceLoss`` takes degrees, 28.6). Computed without ``acos``,
    so values and gradients are finite for every input, float16 autocast included. Proxies
    ``[C, d]`` start from a normal of standard deviation 0.01, as in the authors' code.

    Reference: Deng, Guo, Xue and Zafeiriou, "ArcFace: Additive Angular Margin Loss for Deep
    Face Recognition", CVPR 2019. Cost: :math:`O(NCd)`.
    """

    def __init__(
        self,
        *,
        num_classes: int,
        embedding_size: int,
        margin: float = 0.5,
        scale: float = 64.0,
        easy_margin: bool = False,
        reduction: Reduction = "mean",
    ) -> None:
        super().__init__(reduction=reduction)
        where = type(self).__name__
        self.margin = F.check_angular_margin(where, margin)
        self.scale = params.positive(where, "scale", scale)
        self.easy_margin = params.boolean(where, "easy_margin", easy_margin)
        self._init_proxies(num_classes, embedding_size, _normal(0.01))


@register_loss(
    "sub_center_arcface",
    family="proxy",
    function=F.sub_center_arcface_loss,
    example=EXAMPLE,
    needs_pairs="any_pair",
    search_space={
        "margin": ("float", 0.1, 0.6),
        "scale": ("log", 8.0, 64.0),
        "sub_centers": ("int", 1, 5),
    },
)
class SubCenterArcFaceLoss(ProxyLoss):
    r"""Sub-center ArcFace (Deng et al. 2020): ArcFace against the nearest of ``K`` centres of
    each class.

    .. math::
        \cos\theta_{ic} = \max_k \cos(x_i, p_{ck}), \qquad
        \ell_i = -\log \frac{e^{s \cos(\theta_{i y_i} + m)}}
                            {e^{s \cos(\theta_{i y_i} + m)}
                             + \sum_{c \ne y_i} e^{s \cos\theta_{ic}}}

    (:func:`rankloss.functional.sub_center_arcface_loss`), ``margin`` in radians. Proxies
    ``[C, K, d]`` (``K = sub_centers``) start from a normal of standard deviation 0.01.

    Reference: Deng, Guo, Liu, Gong and Zafeiriou, "Sub-center ArcFace: Boosting Face
    Recognition by Large-scale Noisy Web Faces", ECCV 2020. Cost: :math:`O(NCKd)`.
    """

    def __init__(
        self,
        *,
        num_classes: int,
        embedding_size: int,
        sub_centers: int = 3,
        margin: float = 0.5,
        scale: float = 64.0,
        easy_margin: bool = False,
        reduction: Reduction = "mean",
    ) -> None:
        super().__init__(reduction=reduction)
        where = type(self).__name__
        self.sub_centers = params.positive_int(where, "sub_centers", sub_centers)
        self.margin = F.check_angular_margin(where, margin)
        self.scale = params.positive(where, "scale", scale)
        self.easy_margin = params.boolean(where, "easy_margin", easy_margin)
        self._init_proxies(num_classes, embedding_size, _normal(0.01), centres=sub_centers)


@register_loss(
    "soft_triple",
    family="proxy",
    function=F.soft_triple_loss,
    example=EXAMPLE,
    needs_pairs="any_pair",
    search_space={
        "scale": ("log", 5.0, 50.0),
        "center_temperature": ("log", 0.02, 0.5),
        "margin": ("float", 0.0, 0.1),
    },
)
class SoftTripleLoss(ProxyLoss):
    r"""SoftTriple (Qian et al. 2019): softmax over classes, each a soft mixture of ``K``
    centres, with a margin and a regulariser that merges the centres of a class.

    .. math::
        S_{ic} = \sum_k \operatorname{softmax}_k\!\bigl(s_{ick} / \gamma\bigr) s_{ick}, \qquad
        \ell_i = -\log \frac{e^{\lambda (S_{i y_i} - \delta)}}
                            {e^{\lambda (S_{i y_i} - \delta)} + \sum_{c \ne y_i}
                             e^{\lambda S_{ic}}} + \tau R

    (:func:`rankloss.functional.soft_triple_loss`; :math:`\lambda` = ``scale``,
    :math:`\gamma` = ``center_temperature``, :math:`\delta` = ``margin``, :math:`\tau` =
    ``center_regularization``). Proxies ``[C, K, d]`` (``K = centers_per_class``) start
    uniform in :math:`\pm 1/\sqrt{C K}`, as in the authors' code.

    Reference: Qian et al., "SoftTriple Loss: Deep Metric Learning Without Triplet
    Sampling", ICCV 2019. Cost: :math:`O(NCKd)`.
    """

    def __init__(
        self,
        *,
        num_classes: int,
        embedding_size: int,
        centers_per_class: int = 10,
        scale: float = 20.0,
        center_temperature: float = 0.1,
        margin: float = 0.01,
        center_regularization: float = 0.2,
        reduction: Reduction = "mean",
    ) -> None:
        super().__init__(reduction=reduction)
        where = type(self).__name__
        self.centers_per_class = params.positive_int(where, "centers_per_class", centers_per_class)
        self.scale = params.positive(where, "scale", scale)
        self.center_temperature = params.positive(where, "center_temperature", center_temperature)
        self.margin = params.nonnegative(where, "margin", margin)
        self.center_regularization = params.nonnegative(
            where, "center_regularization", center_regularization
        )
        self._init_proxies(num_classes, embedding_size, _uniform_fan, centres=centers_per_class)

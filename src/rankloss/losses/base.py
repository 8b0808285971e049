"""The loss-module layer: typed base classes, the registry and :class:`CombinedLoss`.

Two kinds of loss, each with its own base class and call signature:

* :class:`ListLoss` (``kind = "list"``): ``loss(scores, labels, mask=None, *, weights=None)``
  on ``[..., n]`` lists (pointwise, pairwise and listwise families).
* :class:`EmbeddingLoss` (``kind = "embedding"``): ``loss(embeddings, labels, *, keys=None,
  ref_embeddings=None, ref_labels=None, hard_negatives=None, indices=None, weights=None)``
  on ``[N, d]`` embeddings; the ``(queries, keys)`` form is chosen by the ``keys`` keyword.

A third, :class:`AdversarialLoss` (``kind = "adversarial"``), takes discriminator logits.

Every module is a class written out in the source with a typed ``__init__`` that checks its
hyper-parameters (``"<Class>: <parameter> must be ..., got ..."``) and stores each under its
own name; :meth:`Loss.hyper_parameters` reads them back from the signature. Classes are
registered with :func:`register_loss`, which also records what the registry-wide tests need
(family, label range, tie order). Modules combine with ``+`` and ``*`` into a
:class:`CombinedLoss` of one kind.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, TypeVar

from torch import Tensor, nn

from rankloss._core import params
from rankloss._core.reduce import REDUCTIONS, Reduction
from rankloss._core.registry import Registry
from rankloss._core.validation import computes_in_float32

__all__ = [
    "Loss",
    "ListLoss",
    "EmbeddingLoss",
    "AdversarialLoss",
    "CombinedLoss",
    "LossInfo",
    "LOSSES",
    "register_loss",
    "get",
    "available",
    "resolve_name",
    "ALIASES",
    "LossKind",
    "NeedsPairs",
    "SearchDimension",
]

LossKind = Literal["list", "embedding", "adversarial"]

#: How a loss reads labels: any real value, only values >= 0, or values in [0, 1].
LabelRange = Literal["real", "nonnegative", "unit"]

#: Which input ties change the value when items are permuted (ties broken in input order).
TieOrder = Literal["none", "labels", "scores"]

#: Which pairs an embedding query needs before it adds to the loss: a positive and a negative,
#: a positive alone, or any pair (every pair has a term of its own).
NeedsPairs = Literal["positive_and_negative", "positive", "any_pair"]

#: One dimension of a loss's hyper-parameter search space: ``("log", low, high)`` (log-uniform
#: float), ``("float", low, high)`` (uniform float), ``("int", low, high)`` (inclusive) or
#: ``("choice", (a, b, ...))``.
SearchDimension = tuple[Any, ...]


@dataclass(frozen=True)
class LossInfo:
    """What the registry knows about a loss, beyond its class.

    Attributes:
        name: the registered name.
        family: ``pointwise``, ``pairwise``, ``listwise``, ``recommendation``, ``detection``
            (list losses), ``embedding``, ``proxy`` (embedding losses) or ``adversarial``.
        kind: the call form, from the class (``list``, ``embedding``, ``adversarial``).
        function: the functional loss the module calls.
        label_range: labels the loss accepts with its default hyper-parameters.
        tie_order: ``"labels"`` (``"scores"``) when the value depends on the input order of
            tied labels (scores), so permuting items is invariant only without such ties.
        soft_labels: labels are soft targets with a gradient (regression, distillation).
        example: hyper-parameters a generic test or example builds the loss with when some
            have no default (``{"num_classes": 4, "embedding_size": 8}`` for a proxy loss).
        exact_gradient: ``False`` when the backward is not the gradient of the value (an
            error-driven update, or weights treated as constants), so ``gradcheck`` does not
            apply and tests compare the backward with its own reference instead.
        needs_pairs: embedding losses: which pairs a query needs before it adds to the loss.
        search_space: the hyper-parameters a tuned benchmark searches, by name (see
            :data:`SearchDimension`); the learning rate is searched for every loss.
        squared_terms: the loss squares its similarity terms (a squared hinge), so its
            gradient grows with the similarity itself: float16 gradients overflow at smaller
            embeddings than for a loss linear in the similarity.
        anchor_local: embedding losses: each anchor's value depends only on its own row of
            the similarity and on the candidates, not on the other anchors (so
            :class:`~rankloss.distributed.DistributedLoss` in ``mode="local"`` reproduces it).
    """

    name: str
    family: str
    kind: LossKind
    function: Callable[..., Tensor]
    label_range: LabelRange = "real"
    tie_order: TieOrder = "none"
    soft_labels: bool = False
    example: Mapping[str, Any] = field(default_factory=dict)
    exact_gradient: bool = True
    needs_pairs: NeedsPairs = "positive_and_negative"
    search_space: Mapping[str, SearchDimension] = field(default_factory=dict)
    squared_terms: bool = False
    anchor_local: bool = True


#: ``(name, default)`` of each loss class's keyword-only ``__init__`` arguments, by class.
_KEYWORD_DEFAULTS: dict[type, tuple[tuple[str, Any], ...]] = {}


def _keyword_defaults(cls: type) -> tuple[tuple[str, Any], ...]:
    """``(name, default)`` of the keyword-only arguments of ``cls.__init__``, read once per
    class (the losses' forward passes read them on every call)."""
    if cls not in _KEYWORD_DEFAULTS:
        signature = inspect.signature(cls.__init__)  # type: ignore[misc]
        _KEYWORD_DEFAULTS[cls] = tuple(
            (p.name, p.default)
            for p in signature.parameters.values()
            if p.name != "self" and p.kind is inspect.Parameter.KEYWORD_ONLY
        )
    return _KEYWORD_DEFAULTS[cls]


def _function_names(cls: type[Loss]) -> set[str]:
    """The names the functional forms behind ``cls`` put at the start of their errors."""
    names = set()
    function = getattr(cls, "function", None)
    if callable(function):
        names.add(getattr(function, "__name__", ""))
    if cls.registered_name is not None and cls.registered_name in LOSSES:
        names.add(getattr(LOSSES.entry(cls.registered_name).meta.get("function"), "__name__", ""))
    names.discard("")
    return names


def _naming_the_module(forward: Callable[..., Tensor]) -> Callable[..., Tensor]:
    """``forward``, with a ``ValueError`` or ``TypeError`` that the functional form raised
    under its own name (``"arcface_loss: labels holds 4 ..."``) raised again under the name of
    the module the user called (``"ArcFaceLoss: labels holds 4 ..."``), same traceback."""

    @functools.wraps(forward)
    def wrapper(self: Loss, *args: Any, **kwargs: Any) -> Tensor:
        try:
            return forward(self, *args, **kwargs)
        except (ValueError, TypeError) as error:
            message = str(error)
            if type(error) in (ValueError, TypeError):
                for name in _function_names(type(self)):
                    if message.startswith(f"{name}: "):
                        renamed = type(error)(f"{type(self).__name__}: {message[len(name) + 2 :]}")
                        raise renamed.with_traceback(error.__traceback__) from None
            raise

    return wrapper


class Loss(nn.Module):
    """Common base of every loss module: hyper-parameters, ``+``/``*``, registry name.

    Subclasses store every ``__init__`` argument as an attribute of the same name.
    """

    kind: ClassVar[LossKind]
    registered_name: ClassVar[str | None] = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "forward" in cls.__dict__:  # errors of the functional form name the class called
            cls.forward = _naming_the_module(cls.__dict__["forward"])

    def __init__(self, *, reduction: Reduction = "mean") -> None:
        super().__init__()
        self.reduction: Reduction = params.choice(
            type(self).__name__, "reduction", reduction, REDUCTIONS
        )

    @classmethod
    def hyper_parameter_defaults(cls) -> dict[str, Any]:
        """The hyper-parameters this loss accepts, with their defaults."""
        return dict(_keyword_defaults(cls))

    @classmethod
    def registered_function(cls) -> Callable[..., Tensor]:
        """The functional form this loss was registered with (``register_loss(function=)``)."""
        name = cls.registered_name
        assert name is not None, f"{cls.__name__} is not registered"
        function: Callable[..., Tensor] = LOSSES.entry(name).meta["function"]
        return function

    def hyper_parameters(self) -> dict[str, Any]:
        """This module's hyper-parameters by name, as built (``reduction`` included)."""
        return {name: getattr(self, name) for name in type(self).hyper_parameter_defaults()}

    def extra_repr(self) -> str:
        defaults = type(self).hyper_parameter_defaults()
        plain = (bool, int, float, str, type(None))
        shown = {
            k: v
            for k, v in self.hyper_parameters().items()
            if not (isinstance(v, plain) and v == defaults[k])
        }
        return ", ".join(f"{k}={v!r}" for k, v in shown.items() if not isinstance(v, nn.Module))

    def __add__(self, other: nn.Module) -> CombinedLoss:
        return CombinedLoss([(1.0, self)]) + other

    def __radd__(self, other: object) -> CombinedLoss:
        """``0 + loss``: the start of ``sum([loss_a, loss_b, ...])``."""
        if isinstance(other, int | float) and other == 0:
            return CombinedLoss([(1.0, self)])
        return NotImplemented

    def __mul__(self, weight: float) -> CombinedLoss:
        return CombinedLoss([(float(weight), self)])

    __rmul__ = __mul__


class ListLoss(Loss):
    """Base of the list losses: ``loss(scores, labels, mask=None, *, weights=None)``.

    Subclasses set :attr:`function` (a loss of :mod:`rankloss.functional`) and write a typed
    ``__init__``; ``forward`` calls ``function(scores, labels, mask, weights=weights,
    **hyper_parameters)``.

    Args (forward):
        scores: ``[..., n]`` floating point.
        labels: ``[..., n]`` graded relevance.
        mask: ``[..., n]`` bool, True marks a real item; ``None``: every item is real.
        weights: ``None``, per list ``[...]`` or per item ``[..., n]``.

    Returns:
        A scalar, or ``[...]`` one value per list with ``reduction="none"``.

    Precision: half-precision inputs are computed in float32, and under ``torch.autocast``
    the loss runs with autocast off (:func:`rankloss._core.validation.computes_in_float32`);
    a subclass that writes its own ``forward`` decorates it the same way.
    """

    kind: ClassVar[LossKind] = "list"
    function: ClassVar[Callable[..., Tensor]]

    @computes_in_float32
    def forward(
        self,
        scores: Tensor,
        labels: Tensor,
        mask: Tensor | None = None,
        *,
        weights: Tensor | None = None,
    ) -> Tensor:
        return type(self).function(scores, labels, mask, weights=weights, **self.hyper_parameters())


class EmbeddingLoss(Loss):
    """Base of the embedding losses (the forward is defined in :mod:`rankloss.losses.embedding`).

    Call forms:

    * ``loss(embeddings [N, d], labels [N])``: every other row is a candidate; equal labels
      make a positive pair.
    * ``loss(queries [N, d], keys=keys [N, d])``: key ``i`` is the positive of query ``i``;
      ``labels [N]`` may be given too (pairs of one class are then not negatives).

    The forward computes in float32 under ``torch.autocast`` (the similarity's matrix product
    included): it is decorated with :func:`~rankloss._core.validation.computes_in_float32`.
    :attr:`takes_keys` says whether the (queries, keys) form exists (``False`` for the proxy
    losses, which compare embeddings with learned class centres only).
    """

    kind: ClassVar[LossKind] = "embedding"
    takes_keys: ClassVar[bool] = True


class AdversarialLoss(Loss):
    """Base of the adversarial losses on discriminator logits.

    Subclasses decorate their ``forward`` with
    :func:`~rankloss._core.validation.computes_in_float32` (float32 under ``torch.autocast``).
    """

    kind: ClassVar[LossKind] = "adversarial"


L = TypeVar("L", bound=Loss)

LOSSES: Registry[type[Loss]] = Registry("loss")


def register_loss(
    name: str,
    *,
    family: str,
    function: Callable[..., Tensor],
    label_range: LabelRange = "real",
    tie_order: TieOrder = "none",
    soft_labels: bool = False,
    example: Mapping[str, Any] | None = None,
    exact_gradient: bool = True,
    needs_pairs: NeedsPairs = "positive_and_negative",
    search_space: Mapping[str, SearchDimension] | None = None,
    squared_terms: bool = False,
    anchor_local: bool = True,
) -> Callable[[type[L]], type[L]]:
    """Class decorator: register a loss module under ``name`` with what tests need to know.

    >>> from rankloss.losses import LOSSES
    >>> LOSSES.entry("ranknet").meta["info"].family
    'pairwise'
    """

    def wrap(cls: type[L]) -> type[L]:
        if not isinstance(cls, type) or not issubclass(cls, Loss):
            raise TypeError(f"register_loss({name!r}): expected a Loss subclass, got {cls!r}")
        info = LossInfo(
            name,
            family,
            cls.kind,
            function,
            label_range,
            tie_order,
            soft_labels,
            dict(example or {}),
            exact_gradient,
            needs_pairs,
            dict(search_space or {}),
            squared_terms,
            anchor_local,
        )
        cls.registered_name = name
        defaults = cls.hyper_parameter_defaults()
        listed = (
            ", ".join(
                k if v is inspect.Parameter.empty else f"{k}={v!r}" for k, v in defaults.items()
            )
            or "none"
        )
        cls.__doc__ = (
            f"Registered as ``{name!r}`` (family ``{family}``, kind ``{cls.kind}``).\n\n"
            f"Hyper-parameters (checked when built): {listed}.\n\n"
            + inspect.cleandoc(cls.__doc__ or "")
        )
        LOSSES.register(name, cls, family=family, info=info, function=function)
        return cls

    return wrap


def available(family: str | None = None, *, kind: LossKind | None = None) -> list[str]:
    """Registered loss names, optionally of one family or one kind."""
    names = LOSSES.names(family)
    if kind is None:
        return names
    return [n for n in names if LOSSES.get(n).kind == kind]


#: Names other libraries give to a registered loss, where the folded name (see
#: :func:`resolve_name`) differs from the registered one.
ALIASES: dict[str, str] = {
    "multiplenegativesrankingloss": "info_nce",
    "mnrl": "info_nce",
    "infonce": "info_nce",
    "ntxent": "nt_xent",
    "simclr": "nt_xent",
    "tripletmarginloss": "triplet",
    "marginrankingloss": "margin_ranking",
    "softmaxloss": "softmax_ce",
    "listwisesoftmax": "softmax_ce",
    "lambdarankloss": "lambdarank",
    "rankinghingeloss": "pairwise_hinge",
    "pairwisehingeloss": "pairwise_hinge",
    "pairwiselogisticloss": "ranknet",
    "sigmoidloss": "siglip",
    "proxyncaplusplus": "proxy_nca_pp",
    "proxynca++": "proxy_nca_pp",
    "gistembedloss": "guided_info_nce",
    "gistembed": "guided_info_nce",
    "plistmle": "position_aware_listmle",
    "cosinecontrastive": "ccl",
    "logqsoftmax": "sampled_softmax",
}


def _fold(name: str) -> str:
    """Lower case without ``_``, ``-``, spaces and a trailing ``loss``: ``"NTXentLoss"`` and
    ``"nt_xent"`` both fold to ``"ntxent"``."""
    folded = "".join(c for c in name.lower() if c not in "_- ")
    return folded[: -len("loss")] if folded.endswith("loss") and len(folded) > 4 else folded


def resolve_name(name: str) -> str:
    """The registered name for ``name``, matched case-insensitively and ignoring ``_``/``-``
    and a trailing ``Loss``, or through :data:`ALIASES` (the names of pytorch-metric-learning,
    allRank, sentence-transformers and rax): ``"NTXentLoss"`` -> ``"nt_xent"``,
    ``"neuralNDCG"`` -> ``"neural_ndcg"``, ``"MultipleNegativesRankingLoss"`` ->
    ``"info_nce"``. An exact registered name is returned as it is.

    Raises:
        KeyError: no registered loss matches (the message lists the close names).

    >>> resolve_name("neuralNDCG"), resolve_name("TripletMarginLoss")
    ('neural_ndcg', 'triplet')
    """
    if not isinstance(name, str):
        raise TypeError(f"loss name must be a str, got {type(name).__name__}")
    if name in LOSSES:
        return name
    folded = _fold(name)
    by_fold = {_fold(registered): registered for registered in LOSSES.names()}
    if folded in by_fold:
        return by_fold[folded]
    for key in (name.lower().replace("-", "").replace(" ", ""), folded):
        target = ALIASES.get(key.replace("_", ""))
        if target is not None and target in LOSSES:
            return target
    LOSSES.entry(name)  # raises KeyError with the close names
    raise AssertionError("unreachable")


def get(name: str, **hyper: Any) -> Loss:
    """Build the loss module registered as ``name`` with hyper-parameters ``hyper``.

    ``name`` is matched as :func:`resolve_name` says (case-insensitive; other libraries'
    class names are accepted). Raises ``KeyError`` for an unknown name and ``TypeError`` for
    an unknown hyper-parameter.
    """
    cls = LOSSES.get(resolve_name(name))
    allowed = cls.hyper_parameter_defaults()
    for key in hyper:
        if key not in allowed:
            raise TypeError(
                f"{cls.__name__} got an unknown hyper-parameter {key!r}; valid: {sorted(allowed)}"
            )
    missing = [k for k, v in allowed.items() if v is inspect.Parameter.empty and k not in hyper]
    if missing:
        example = LOSSES.entry(resolve_name(name)).meta["info"].example
        shown = ", ".join(f"{k}={v!r}" for k, v in example.items())
        raise TypeError(
            f"{cls.__name__} needs the hyper-parameter(s) {', '.join(missing)}"
            + (f"; for example get({name!r}, {shown})" if shown else "")
        )
    return cls(**hyper)


def _part_name(module: nn.Module) -> str:
    return getattr(module, "registered_name", None) or type(module).__name__


class CombinedLoss(nn.Module):
    r"""A weighted sum of losses of one kind: :math:`\ell = \sum_k \lambda_k \ell_k`.

    Every part is called with the same arguments. Parts must share their :attr:`kind` and
    their ``reduction`` (else ``TypeError``/``ValueError`` when built: a sum of a list loss
    and an embedding loss, or of a mean and a sum, has no meaning). ``forward(...,
    return_parts=True)`` also returns each part's (unweighted, detached) value by name.

    >>> from rankloss.losses import RankNetLoss, ListNetLoss
    >>> loss = RankNetLoss() + 0.5 * ListNetLoss(label_temperature=2.0)
    >>> [name for name, _ in loss.named_terms()], loss.kind
    (['ranknet', 'listnet'], 'list')
    """

    def __init__(self, terms: Iterable[tuple[float, nn.Module]]) -> None:
        super().__init__()
        weights: list[float] = []
        modules: list[Loss] = []
        for weight, module in terms:
            if not isinstance(module, Loss):
                raise TypeError(
                    "CombinedLoss: every part must be a rankloss loss module (ListLoss, "
                    f"EmbeddingLoss or AdversarialLoss), got {type(module).__name__}"
                )
            weights.append(params.number("CombinedLoss", "weight", weight))
            modules.append(module)
        if not modules:
            raise ValueError("CombinedLoss: needs at least one loss")
        kinds = {m.kind for m in modules}
        if len(kinds) > 1:
            described = ", ".join(f"{_part_name(m)} ({m.kind})" for m in modules)
            raise TypeError(
                f"CombinedLoss: parts must be of one kind, got {described}; a list loss takes "
                "(scores, labels, mask) and an embedding loss (embeddings, labels)"
            )
        if modules[0].kind == "adversarial" and len({type(m) for m in modules}) > 1:
            raise TypeError(
                "CombinedLoss: the discriminator and generator losses take different inputs "
                "and cannot be summed"
            )
        reductions = {m.reduction for m in modules}
        if len(reductions) > 1:
            described = ", ".join(f"{_part_name(m)} ({m.reduction!r})" for m in modules)
            raise ValueError(f"CombinedLoss: parts must share one reduction, got {described}")
        per = {getattr(m, "values_per", "embedding") for m in modules if m.kind == "embedding"}
        if modules[0].reduction == "none" and len(per) > 1:
            described = ", ".join(
                f"{_part_name(m)} (one per {getattr(m, 'values_per', 'embedding')})"
                for m in modules
            )
            raise ValueError(
                'CombinedLoss: with reduction="none" the parts must return one value per the '
                f"same thing, got {described}; use reduction 'mean' or 'sum'"
            )
        self.weights = weights
        self.parts = nn.ModuleList(modules)
        self.kind: LossKind = modules[0].kind
        self.reduction: Reduction = modules[0].reduction
        # The keyword arguments each part's forward takes, read once.
        self._accepted = [frozenset(inspect.signature(m.forward).parameters) for m in modules]

    @classmethod
    def from_spec(cls, spec: Mapping[str, float | Mapping[str, Any]]) -> CombinedLoss:
        """Build from ``{name: weight}`` or ``{name: {"weight": w, **hyper}}``."""
        terms = []
        for name, value in spec.items():
            if isinstance(value, Mapping):
                hyper = dict(value)
                weight = float(hyper.pop("weight", 1.0))
            else:
                weight, hyper = float(value), {}
            terms.append((weight, get(name, **hyper)))
        return cls(terms)

    def named_terms(self) -> list[tuple[str, float]]:
        """``(name, weight)`` of each part; repeated names get ``_2``, ``_3``, ..."""
        names: list[tuple[str, float]] = []
        seen: dict[str, int] = {}
        for weight, module in zip(self.weights, self.parts):
            base = _part_name(module)
            seen[base] = seen.get(base, 0) + 1
            names.append((base if seen[base] == 1 else f"{base}_{seen[base]}", weight))
        return names

    def forward(
        self, *args: Any, return_parts: bool = False, **kwargs: Any
    ) -> Tensor | tuple[Tensor, dict[str, Tensor]]:
        total: Tensor | None = None
        parts: dict[str, Tensor] = {}
        for key in kwargs:
            if not any(key in names for names in self._accepted):
                raise TypeError(f"CombinedLoss: no part takes the keyword argument {key!r}")
        for (name, weight), module, names in zip(self.named_terms(), self.parts, self._accepted):
            own = {key: value for key, value in kwargs.items() if key in names}
            value = module(*args, **own)
            parts[name] = value.detach()
            total = weight * value if total is None else total + weight * value
        assert total is not None
        return (total, parts) if return_parts else total

    def __add__(self, other: nn.Module) -> CombinedLoss:
        if isinstance(other, CombinedLoss):
            extra = list(zip(other.weights, other.parts))
        else:
            extra = [(1.0, other)]
        return CombinedLoss(list(zip(self.weights, self.parts)) + extra)

    def __radd__(self, other: object) -> CombinedLoss:
        """``0 + combined``: the start of ``sum([...])``."""
        if isinstance(other, int | float) and other == 0:
            return self
        return NotImplemented

    def __mul__(self, weight: float) -> CombinedLoss:
        return CombinedLoss([(w * float(weight), m) for w, m in zip(self.weights, self.parts)])

    __rmul__ = __mul__

    def extra_repr(self) -> str:
        return " + ".join(f"{w:g} * {n}" for n, w in self.named_terms())

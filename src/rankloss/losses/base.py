"""``nn.Module`` wrappers: a module holds hyper-parameters and calls its functional loss.

``loss_module(function, "ClassName")`` makes the wrapper class for a pure loss function: the
function's keyword-only parameters, except the per-call ones (``weights``, ``generator``, ...),
become the module's hyper-parameters, validated when the module is built. Modules combine with
``+`` and ``*`` into a :class:`CombinedLoss`.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Mapping
from typing import Any, ClassVar

from torch import Tensor, nn

__all__ = ["LossModule", "CombinedLoss", "loss_module", "PER_CALL_ARGUMENTS"]

#: Keyword arguments that are data, passed on each call, never fixed in the module.
PER_CALL_ARGUMENTS = frozenset(
    {"weights", "generator", "ref_embeddings", "ref_labels", "hard_negatives", "indices"}
)


def _split_parameters(function: Callable) -> tuple[list[inspect.Parameter], list[str]]:
    """Return (hyper-parameters, per-call keyword names) of a functional loss."""
    hyper, per_call = [], []
    for p in inspect.signature(function).parameters.values():
        if p.kind is not inspect.Parameter.KEYWORD_ONLY:
            continue
        (per_call.append(p.name) if p.name in PER_CALL_ARGUMENTS else hyper.append(p))
    return hyper, per_call


class LossModule(nn.Module):
    """Base class of the loss modules: holds hyper-parameters, calls :attr:`function`.

    Subclasses set ``function``; :func:`loss_module` does that for you.
    """

    function: ClassVar[Callable[..., Tensor]]
    registered_name: ClassVar[str | None] = None

    def __init__(self, **hyper: Any) -> None:
        super().__init__()
        params, per_call = _split_parameters(type(self).function)
        allowed = {p.name for p in params}
        for name in hyper:
            if name in per_call:
                raise TypeError(
                    f"{type(self).__name__}: {name!r} is data passed on each call, not a "
                    "hyper-parameter"
                )
            if name not in allowed:
                raise TypeError(
                    f"{type(self).__name__} got an unknown hyper-parameter {name!r}; "
                    f"valid: {sorted(allowed)}"
                )
        self.hyper: dict[str, Any] = dict(hyper)
        self._per_call = frozenset(per_call)

    @classmethod
    def hyper_parameters(cls) -> dict[str, Any]:
        """The hyper-parameters this loss accepts, with their defaults."""
        params, _ = _split_parameters(cls.function)
        return {p.name: p.default for p in params}

    def accepts(self, name: str) -> bool:
        """Whether ``forward`` takes the per-call keyword ``name``."""
        return name in self._per_call

    def forward(self, *args: Any, **kwargs: Any) -> Tensor:
        for name in kwargs:
            if name in self.hyper or name in type(self).hyper_parameters():
                raise TypeError(
                    f"{type(self).__name__}: {name!r} is a hyper-parameter; set it when "
                    "building the module"
                )
        return type(self).function(*args, **kwargs, **self.hyper)

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v!r}" for k, v in self.hyper.items())

    def __add__(self, other: nn.Module) -> CombinedLoss:
        return CombinedLoss([(1.0, self)]) + other

    def __mul__(self, weight: float) -> CombinedLoss:
        return CombinedLoss([(float(weight), self)])

    __rmul__ = __mul__


def loss_module(function: Callable[..., Tensor], class_name: str) -> type[LossModule]:
    """Make the ``nn.Module`` wrapper class for a functional loss."""
    params, _ = _split_parameters(function)
    doc = (
        f"Module form of :func:`{function.__module__}.{function.__name__}`.\n\n"
        f"Hyper-parameters (set when building): "
        f"{', '.join(f'{p.name}={p.default!r}' for p in params) or 'none'}.\n\n"
        + inspect.cleandoc(function.__doc__ or "")
    )

    # Each class gets its own __init__: setting __signature__ on the inherited
    # LossModule.__init__ would give every loss the signature of the last one made.
    def __init__(self: LossModule, **hyper: Any) -> None:
        LossModule.__init__(self, **hyper)

    __init__.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [inspect.Parameter("self", inspect.Parameter.POSITIONAL_ONLY)] + params
    )
    __init__.__qualname__ = f"{class_name}.__init__"
    namespace = {"function": staticmethod(function), "__doc__": doc, "__init__": __init__}
    cls = type(class_name, (LossModule,), namespace)
    cls.__module__ = "rankloss.losses"
    return cls


def _part_name(module: nn.Module) -> str:
    return getattr(module, "registered_name", None) or type(module).__name__


class CombinedLoss(nn.Module):
    r"""A weighted sum of losses: :math:`\ell = \sum_k \lambda_k \ell_k`.

    Every part is called with the same arguments; per-call keywords (``weights``,
    ``generator``, ...) go only to the parts that take them. ``forward(...,
    return_parts=True)`` also returns each part's (unweighted, detached) value by name.

    >>> from rankloss.losses import RankNetLoss, ListNetLoss
    >>> loss = RankNetLoss() + 0.5 * ListNetLoss(temperature=2.0)
    >>> [name for name, _ in loss.named_terms()]
    ['ranknet', 'listnet']
    """

    def __init__(self, terms: Iterable[tuple[float, nn.Module]]) -> None:
        super().__init__()
        weights, modules = [], []
        for weight, module in terms:
            if not isinstance(module, nn.Module):
                raise TypeError(f"CombinedLoss: expected nn.Module, got {type(module).__name__}")
            weights.append(float(weight))
            modules.append(module)
        if not modules:
            raise ValueError("CombinedLoss needs at least one loss")
        self.weights = weights
        self.parts = nn.ModuleList(modules)

    @classmethod
    def from_spec(cls, spec: Mapping[str, float | Mapping[str, Any]]) -> CombinedLoss:
        """Build from ``{name: weight}`` or ``{name: {"weight": w, **hyper}}``."""
        from rankloss.losses import get

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
        for (name, weight), module in zip(self.named_terms(), self.parts):
            own = {
                key: value
                for key, value in kwargs.items()
                if not isinstance(module, LossModule) or module.accepts(key)
            }
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

    def __mul__(self, weight: float) -> CombinedLoss:
        return CombinedLoss([(w * float(weight), m) for w, m in zip(self.weights, self.parts)])

    __rmul__ = __mul__

    def extra_repr(self) -> str:
        return " + ".join(f"{w:g} * {n}" for n, w in self.named_terms())

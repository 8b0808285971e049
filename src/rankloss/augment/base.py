"""Transforms, their combinators and positive-pair makers.

The randomness contract
-----------------------
Transforms are **stateless**: they hold hyper-parameters only. Every random draw comes from the
``generator`` passed to the call::

    view = transform(x, generator=g)        # g: torch.Generator, an int seed, or None

* a ``torch.Generator`` is used (and advanced) as it is;
* an ``int`` is a seed: a fresh generator on ``x``'s device is seeded with it;
* ``None`` makes a fresh generator seeded from the operating system (not reproducible, but it
  never reads or changes torch's global random state).

Each sample of a batch gets its own parameters (crop, angle, jitter factors, which words are
dropped...), all drawn as tensors in a few vectorised calls. Combinators hand the *same*
generator on to their children, so a whole pipeline is reproducible from one seed.
:class:`TwoViews` and :class:`TwoViewsDataset` own a generator (or a seed) for you.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from typing import Any, cast

import torch
from torch import Tensor

from rankloss.augment.geometry import GeometricTransform, warp_fused

__all__ = [
    "Transform",
    "Compose",
    "RandomApply",
    "OneOf",
    "Identity",
    "TwoViews",
    "TwoViewsDataset",
    "make_generator",
]

GeneratorLike = torch.Generator | int | None


def _device_of(x: Any) -> torch.device:
    return x.device if isinstance(x, Tensor) else torch.device("cpu")


def make_generator(generator: GeneratorLike, device: torch.device | str = "cpu") -> torch.Generator:
    """Turn ``generator`` (a ``torch.Generator``, an int seed or ``None``) into a generator.

    An int seeds a new generator on ``device``; ``None`` seeds one from the operating system.
    """
    if isinstance(generator, torch.Generator):
        return generator
    device = torch.device(device)
    g = torch.Generator(device=device)
    if generator is None:
        g.seed()
    elif isinstance(generator, int) and not isinstance(generator, bool):
        g.manual_seed(generator)
    else:
        raise TypeError(
            f"generator must be a torch.Generator, an int seed or None, got {type(generator)}"
        )
    return g


def draw_uniform(
    shape: Sequence[int],
    generator: torch.Generator,
    device: torch.device,
    low: float = 0.0,
    high: float = 1.0,
) -> Tensor:
    """Uniform float32 draws on ``generator``'s device, moved to ``device``."""
    u = torch.rand(tuple(shape), generator=generator, device=generator.device)
    if low != 0.0 or high != 1.0:
        u = u * (high - low) + low
    return u.to(device)


def draw_normal(shape: Sequence[int], generator: torch.Generator, device: torch.device) -> Tensor:
    """Standard normal float32 draws on ``generator``'s device, moved to ``device``."""
    return torch.randn(tuple(shape), generator=generator, device=generator.device).to(device)


def python_rng(generator: torch.Generator) -> random.Random:
    """A ``random.Random`` seeded from (and advancing) ``generator``, for string transforms."""
    seed = int(torch.randint(0, 2**62, (1,), generator=generator, device=generator.device))
    return random.Random(seed)


def check_probability(name: str, p: float) -> float:
    p = float(p)
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"{name} must be in [0, 1], got {p}")
    return p


def batch_size_of(x: Any) -> int:
    if isinstance(x, Tensor):
        return x.shape[0] if x.dim() > 0 else 1
    if isinstance(x, str):
        return 1
    return len(x)


def take(x: Any, index: Tensor) -> Any:
    """Rows ``index`` of a tensor batch or a list batch."""
    if isinstance(x, Tensor):
        return x[index.to(x.device)]
    return [x[i] for i in index.tolist()]


def put(x: Any, index: Tensor, values: Any) -> Any:
    """A copy of ``x`` whose rows ``index`` are ``values``."""
    if isinstance(x, Tensor):
        copy = x.clone()
        copy[index.to(x.device)] = values.to(x.dtype)
        return copy
    out = list(x)
    for i, v in zip(index.tolist(), values, strict=True):
        out[i] = v
    return out


class Transform:
    """Base class: a stateless random transform of a batch.

    Subclasses implement :meth:`apply` (``x``, a ready ``torch.Generator``, and ``mask`` for
    transforms of learning-to-rank feature lists). Calling the transform resolves the
    ``generator`` argument (see the module docstring) and calls :meth:`apply`.
    """

    #: whether the transform is a per-sample affine warp that :class:`Compose` can fuse
    geometric: bool = False
    #: whether ``mask`` (``[..., n]`` bool, learning-to-rank lists) is understood
    accepts_mask: bool = False

    def __call__(
        self, x: Any, *, generator: GeneratorLike = None, mask: Tensor | None = None
    ) -> Any:
        g = make_generator(generator, _device_of(x))
        return self.apply(x, g, mask=mask)

    def apply(self, x: Any, generator: torch.Generator, *, mask: Tensor | None = None) -> Any:
        raise NotImplementedError

    def _no_mask(self, mask: Tensor | None) -> None:
        if mask is not None and not self.accepts_mask:
            raise ValueError(f"{type(self).__name__} does not take a mask")

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.startswith("_"))
        return f"{type(self).__name__}({fields})"


class Identity(Transform):
    """Returns its input unchanged."""

    accepts_mask = True

    def apply(self, x: Any, generator: torch.Generator, *, mask: Tensor | None = None) -> Any:
        return x


class Compose(Transform):
    """Apply ``transforms`` one after the other with the same generator.

    Consecutive geometric image transforms (crop, flip, affine, and ``RandomApply`` of them)
    are fused: their per-sample matrices are multiplied and the batch is resampled once with a
    single ``grid_sample``, which is faster and blurs less than resampling at each step.
    """

    def __init__(self, transforms: Sequence[Callable[..., Any]]) -> None:
        self.transforms = list(transforms)

    @property
    def accepts_mask(self) -> bool:  # type: ignore[override]
        return all(getattr(t, "accepts_mask", False) for t in self.transforms)

    def apply(self, x: Any, generator: torch.Generator, *, mask: Tensor | None = None) -> Any:
        self._no_mask(mask)
        kwargs = {} if mask is None else {"mask": mask}
        i = 0
        transforms = self.transforms
        while i < len(transforms):
            t = transforms[i]
            if getattr(t, "geometric", False):
                j = i
                while j < len(transforms) and getattr(transforms[j], "geometric", False):
                    j += 1
                if j == i + 1:
                    x = cast(Transform, t).apply(x, generator)
                else:
                    x = warp_fused(cast(list[GeometricTransform], transforms[i:j]), x, generator)
                i = j
                continue
            x = t.apply(x, generator, **kwargs) if isinstance(t, Transform) else t(x)
            i += 1
        return x

    def __repr__(self) -> str:
        inner = ",\n  ".join(repr(t) for t in self.transforms)
        return f"Compose([\n  {inner}\n])"


def _leaves(transform: Any) -> list[Any]:
    """The transforms inside ``transform`` (through ``Compose``, ``RandomApply``, ``OneOf``)."""
    children = list(getattr(transform, "transforms", ()))
    if getattr(transform, "transform", None) is not None:
        children.append(transform.transform)
    if not children:
        return [transform]
    return [leaf for child in children for leaf in _leaves(child)]


def _check_keeps_size(owner: str, transform: Any, x: Any) -> None:
    """``owner`` puts the transformed samples back among the others, so ``transform`` must keep
    the image size; a crop to another fixed ``size`` is a ``ValueError`` before any draw (not
    only when a draw happens to pick some samples but not all)."""
    if not isinstance(x, Tensor) or x.dim() != 4:
        return
    for leaf in _leaves(transform):
        size = getattr(leaf, "size", None)
        if size is not None and tuple(size) != tuple(x.shape[-2:]):
            raise ValueError(
                f"{owner}: cannot wrap {type(leaf).__name__} with size {tuple(size)}: it "
                f"changes the images' size {tuple(x.shape[-2:])}, and the samples it transforms "
                "are put back among the others"
            )


class RandomApply(Transform):
    """Apply ``transform`` to each sample independently with probability ``p``.

    Only the chosen samples are transformed (the others are returned as they are), so
    ``p=0`` is exactly the identity and ``p=1`` is ``transform`` itself. ``transform`` may be
    one transform or a sequence (composed).
    """

    def __init__(self, transform: Transform | Sequence[Transform], p: float = 0.5) -> None:
        if not isinstance(transform, Transform):
            transform = Compose(transform)
        self.transform = transform
        self.p = check_probability("p", p)

    @property
    def geometric(self) -> bool:  # type: ignore[override]
        return getattr(self.transform, "geometric", False)

    @property
    def accepts_mask(self) -> bool:  # type: ignore[override]
        return getattr(self.transform, "accepts_mask", False)

    def chosen(self, n: int, generator: torch.Generator) -> Tensor:
        """A ``[n]`` bool tensor (on the generator's device): which samples are transformed."""
        return torch.rand(n, generator=generator, device=generator.device) < self.p

    def matrices(
        self, n: int, size: tuple[int, int], generator: torch.Generator, device: torch.device
    ) -> tuple[Tensor, tuple[int, int]]:
        """Per-sample matrices of the geometric child; the identity where not chosen."""
        chosen = self.chosen(n, generator).to(device)
        mats, out_size = cast(GeometricTransform, self.transform).matrices(
            n, size, generator, device
        )
        eye = torch.eye(3, device=device).expand(n, 3, 3)
        if tuple(out_size) != tuple(size):
            raise ValueError("RandomApply cannot wrap a transform that changes the image size")
        return torch.where(chosen[:, None, None], mats, eye), out_size

    def apply(self, x: Any, generator: torch.Generator, *, mask: Tensor | None = None) -> Any:
        self._no_mask(mask)
        if self.p == 0.0:
            return x
        if self.p < 1.0:
            _check_keeps_size("RandomApply", self.transform, x)
        n = batch_size_of(x)
        chosen = self.chosen(n, generator).cpu()
        if self.p == 1.0 or bool(chosen.all()):
            return self.transform.apply(x, generator, **({} if mask is None else {"mask": mask}))
        index = chosen.nonzero().flatten()
        if index.numel() == 0:
            return x
        kwargs = {} if mask is None else {"mask": mask[index.to(mask.device)]}
        return put(x, index, self.transform.apply(take(x, index), generator, **kwargs))


class OneOf(Transform):
    """For each sample, apply one of ``transforms``, picked with probabilities ``weights``."""

    def __init__(
        self, transforms: Sequence[Transform], weights: Sequence[float] | None = None
    ) -> None:
        if len(transforms) == 0:
            raise ValueError("OneOf needs at least one transform")
        self.transforms = list(transforms)
        w = (
            torch.ones(len(transforms))
            if weights is None
            else torch.tensor(weights, dtype=torch.float64)
        )
        if w.shape != (len(transforms),) or (w < 0).any() or w.sum() <= 0:
            raise ValueError("weights must be one non-negative number per transform, not all 0")
        self.weights = (w / w.sum()).float()

    @property
    def accepts_mask(self) -> bool:  # type: ignore[override]
        return all(getattr(t, "accepts_mask", False) for t in self.transforms)

    def apply(self, x: Any, generator: torch.Generator, *, mask: Tensor | None = None) -> Any:
        self._no_mask(mask)
        for t in self.transforms:
            _check_keeps_size("OneOf", t, x)
        n = batch_size_of(x)
        pick = torch.multinomial(
            self.weights.to(generator.device), n, replacement=True, generator=generator
        ).cpu()
        if isinstance(x, str):  # one sentence: the picked transform applies to it whole
            return self.transforms[int(pick[0])].apply(x, generator)
        out = x
        for k, t in enumerate(self.transforms):
            index = (pick == k).nonzero().flatten()
            if index.numel() == 0:
                continue
            kwargs = {} if mask is None else {"mask": mask[index.to(mask.device)]}
            out = put(out, index, t.apply(take(x, index), generator, **kwargs))
        return out


def _default_labels(x: Any) -> Tensor:
    return torch.arange(batch_size_of(x), device=_device_of(x))


class TwoViews:
    """Make positive pairs: two independent random views of every sample of a batch.

    ``TwoViews(transform, seed=0)(x)`` returns ``(view1, view2, labels)``: row ``i`` of
    ``view1`` and row ``i`` of ``view2`` are views of sample ``i``. ``labels`` are the given
    ``labels`` or, when none are given, ``arange(N)`` (every sample its own class), so the views
    feed a pair loss such as ``NTXentLoss()(f(view1), keys=f(view2))`` directly, or a label-based
    loss after ``torch.cat``.

    The object owns a generator seeded with ``seed`` (``None``: from the operating system),
    so calling it twice gives different views, and the sequence of views is reproducible.
    ``transform2`` gives the second view its own pipeline (asymmetric augmentation).
    """

    def __init__(
        self,
        transform: Transform,
        transform2: Transform | None = None,
        *,
        seed: int | None = None,
        generator: torch.Generator | None = None,
    ) -> None:
        if seed is not None and generator is not None:
            raise ValueError("give seed or generator, not both")
        self.transform = transform
        self.transform2 = transform if transform2 is None else transform2
        self.generator = generator if generator is not None else make_generator(seed)

    def __call__(self, x: Any, labels: Tensor | None = None) -> tuple[Any, Any, Tensor]:
        view1 = self.transform(x, generator=self.generator)
        view2 = self.transform2(x, generator=self.generator)
        return view1, view2, _default_labels(x) if labels is None else labels

    def __repr__(self) -> str:
        return f"TwoViews({self.transform!r}, {self.transform2!r})"


class TwoViewsDataset(torch.utils.data.Dataset):
    """Wrap a dataset of ``(x, label)`` (or of ``x``) to give ``(view1, view2, label)``.

    Each item is transformed as a batch of one. The views of item ``i`` are drawn from a
    generator seeded with ``(seed, epoch, i)``, so they are reproducible, differ between
    epochs (call :meth:`set_epoch`), and do not depend on the order items are read in or on
    the number of ``DataLoader`` workers. Without a label, ``label`` is the index ``i``.
    """

    def __init__(
        self,
        dataset: Any,
        transform: Transform,
        transform2: Transform | None = None,
        *,
        seed: int = 0,
    ) -> None:
        self.dataset = dataset
        self.transform = transform
        self.transform2 = transform if transform2 is None else transform2
        self.seed = int(seed)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> tuple[Any, Any, Any]:
        item = self.dataset[index]
        if isinstance(item, tuple) and len(item) == 2:
            x, label = item
        else:
            x, label = item, index
        # one seed per (seed, epoch, index); large odd multipliers keep them apart
        seed = (self.seed * 1_000_003 + self.epoch * 998_244_353 + index * 2_654_435_761) % (2**62)
        g = make_generator(seed, _device_of(x))
        batch = x.unsqueeze(0) if isinstance(x, Tensor) else [x]
        view1 = self.transform.apply(batch, g)
        view2 = self.transform2.apply(batch, g)
        return view1[0], view2[0], label

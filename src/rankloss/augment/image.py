"""Batched image transforms on ``[N, C, H, W]`` float tensors, in pure PyTorch.

Every sample gets its own random parameters, drawn as ``[N]`` tensors from the generator, and
the whole batch is processed in a few tensor operations (no loop over samples):

* geometry (:class:`RandomResizedCrop`, :class:`RandomHorizontalFlip`, :class:`RandomAffine`)
  is a per-sample 3x3 matrix; one ``affine_grid`` + ``grid_sample`` resamples the batch
  (:mod:`rankloss.augment.geometry`), and :class:`~rankloss.augment.Compose` multiplies
  consecutive matrices so that a crop, a flip and a rotation cost one resampling;
* colour (:class:`ColorJitter`, :class:`Grayscale`) uses per-sample factors broadcast over the
  pixels;
* :class:`GaussianBlur` draws one sigma per sample and runs a separable grouped convolution.

Images in ``[0, 1]`` stay in ``[0, 1]`` (bilinear resampling is a convex combination, and the
colour and noise transforms clamp). The dtype is kept: float16 and bfloat16 are computed in
float32 and cast back.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from rankloss.augment.base import (
    Compose,
    RandomApply,
    Transform,
    check_probability,
    draw_normal,
    draw_uniform,
)
from rankloss.augment.geometry import check_image, to_float, warp_fused

__all__ = [
    "RandomResizedCrop",
    "RandomHorizontalFlip",
    "RandomAffine",
    "ColorJitter",
    "Grayscale",
    "RandomGrayscale",
    "GaussianBlur",
    "GaussianNoise",
    "RandomErasing",
    "simclr_image_pipeline",
    "warp_fused",
]

_LUMA = (0.299, 0.587, 0.114)


def _pair(value: float | Sequence[float], name: str) -> tuple[float, float]:
    if isinstance(value, (int, float)):
        return (float(value), float(value))
    lo, hi = (float(v) for v in value)
    if lo > hi:
        raise ValueError(f"{name} must be (low, high) with low <= high, got {value}")
    return lo, hi


def _size2(size: int | Sequence[int] | None) -> tuple[int, int] | None:
    if size is None:
        return None
    if isinstance(size, int):
        return (size, size)
    h, w = size
    return (int(h), int(w))


def _pixel_scale(size: tuple[int, int], device: torch.device) -> Tensor:
    """diag(W/2, H/2, 1): normalised [-1, 1] coordinates -> pixel units about the centre."""
    h, w = size
    return torch.diag(torch.tensor([w / 2.0, h / 2.0, 1.0], device=device))


class _Geometric(Transform):
    geometric = True
    padding_mode = "zeros"

    def matrices(
        self, n: int, size: tuple[int, int], generator: torch.Generator, device: torch.device
    ) -> tuple[Tensor, tuple[int, int]]:
        raise NotImplementedError

    def apply(self, x: Tensor, generator: torch.Generator, *, mask: Tensor | None = None) -> Tensor:
        self._no_mask(mask)
        check_image(x, type(self).__name__)
        return warp_fused([self], x, generator)


class RandomResizedCrop(_Geometric):
    """Crop a random part of each image and resize it to ``size`` (bilinear).

    The crop covers a fraction ``scale`` of the image area with aspect ratio (width / height)
    log-uniform in ``ratio``; a side longer than the image is clipped to the image, so the
    crop always lies inside. ``size=None`` keeps the input size.
    """

    def __init__(
        self,
        size: int | tuple[int, int] | None = None,
        scale: tuple[float, float] = (0.08, 1.0),
        ratio: tuple[float, float] = (3 / 4, 4 / 3),
    ) -> None:
        self.size = _size2(size)
        self.scale = _pair(scale, "scale")
        self.ratio = _pair(ratio, "ratio")
        if not 0 < self.scale[0] <= self.scale[1] <= 1 or self.ratio[0] <= 0:
            raise ValueError(f"scale must lie in (0, 1] and ratio be positive: {scale}, {ratio}")

    def matrices(
        self, n: int, size: tuple[int, int], generator: torch.Generator, device: torch.device
    ) -> tuple[Tensor, tuple[int, int]]:
        h, w = size
        area = draw_uniform([n], generator, device, *self.scale)
        log_ratio = draw_uniform(
            [n], generator, device, math.log(self.ratio[0]), math.log(self.ratio[1])
        )
        ratio = torch.exp(log_ratio)
        frac_w = torch.sqrt(area * ratio * h / w).clamp(max=1.0)
        frac_h = torch.sqrt(area / ratio * w / h).clamp(max=1.0)
        centre = draw_uniform([2, n], generator, device, -1.0, 1.0)
        cx = centre[0] * (1 - frac_w)
        cy = centre[1] * (1 - frac_h)
        theta = torch.zeros(n, 3, 3, device=device)
        theta[:, 0, 0] = frac_w
        theta[:, 1, 1] = frac_h
        theta[:, 0, 2] = cx
        theta[:, 1, 2] = cy
        theta[:, 2, 2] = 1.0
        return theta, self.size if self.size is not None else size


class RandomHorizontalFlip(_Geometric):
    """Mirror each image left-right with probability ``p``."""

    def __init__(self, p: float = 0.5) -> None:
        self.p = check_probability("p", p)

    def _flips(self, n: int, generator: torch.Generator, device: torch.device) -> Tensor:
        return draw_uniform([n], generator, device) < self.p

    def matrices(
        self, n: int, size: tuple[int, int], generator: torch.Generator, device: torch.device
    ) -> tuple[Tensor, tuple[int, int]]:
        sign = 1.0 - 2.0 * self._flips(n, generator, device).float()
        theta = torch.eye(3, device=device).repeat(n, 1, 1)
        theta[:, 0, 0] = sign
        return theta, size

    def apply(self, x: Tensor, generator: torch.Generator, *, mask: Tensor | None = None) -> Tensor:
        # exact and cheaper than resampling when used on its own
        self._no_mask(mask)
        check_image(x, "RandomHorizontalFlip")
        flips = self._flips(x.shape[0], generator, x.device)
        return torch.where(flips[:, None, None, None], x.flip(-1), x)


class RandomAffine(_Geometric):
    """A small random rotation, translation and zoom about the image centre.

    ``degrees``: the angle is uniform in ``[-degrees, degrees]`` (or a ``(low, high)`` pair);
    ``translate``: a shift of up to this fraction of the width and height; ``scale``: a zoom
    factor uniform in ``(low, high)``; ``shear``: a horizontal shear angle in degrees, uniform
    in ``[-shear, shear]``. Uncovered pixels are filled by ``padding_mode`` (``"zeros"``,
    ``"border"`` or ``"reflection"``).
    """

    def __init__(
        self,
        degrees: float | tuple[float, float] = 10.0,
        translate: tuple[float, float] = (0.0, 0.0),
        scale: tuple[float, float] = (1.0, 1.0),
        shear: float = 0.0,
        padding_mode: str = "zeros",
    ) -> None:
        self.degrees = (
            (-float(degrees), float(degrees))
            if isinstance(degrees, (int, float))
            else _pair(degrees, "degrees")
        )
        self.translate = _pair(translate, "translate")
        self.scale = _pair(scale, "scale")
        self.shear = float(shear)
        if padding_mode not in ("zeros", "border", "reflection"):
            raise ValueError(f"padding_mode must be zeros, border or reflection: {padding_mode}")
        if self.scale[0] <= 0:
            raise ValueError(f"scale must be positive, got {scale}")
        self.padding_mode = padding_mode

    def matrices(
        self, n: int, size: tuple[int, int], generator: torch.Generator, device: torch.device
    ) -> tuple[Tensor, tuple[int, int]]:
        u = draw_uniform([6, n], generator, device)
        angle = torch.deg2rad(self.degrees[0] + u[0] * (self.degrees[1] - self.degrees[0]))
        zoom = self.scale[0] + u[1] * (self.scale[1] - self.scale[0])
        h, w = size
        tx = (2 * u[2] - 1) * self.translate[0] * w
        ty = (2 * u[3] - 1) * self.translate[1] * h
        shear = torch.tan(torch.deg2rad((2 * u[4] - 1) * self.shear))
        cos, sin = torch.cos(angle), torch.sin(angle)
        # forward: out = t + zoom * R(angle) @ Shear @ in; the inverse maps output -> input
        inv = torch.zeros(n, 3, 3, device=device)
        inv[:, 0, 0] = (cos + shear * sin) / zoom
        inv[:, 0, 1] = (sin - shear * cos) / zoom
        inv[:, 1, 0] = -sin / zoom
        inv[:, 1, 1] = cos / zoom
        inv[:, 0, 2] = -(inv[:, 0, 0] * tx + inv[:, 0, 1] * ty)
        inv[:, 1, 2] = -(inv[:, 1, 0] * tx + inv[:, 1, 1] * ty)
        inv[:, 2, 2] = 1.0
        d = _pixel_scale(size, device)
        theta = torch.linalg.inv(d) @ inv @ d
        return theta, size


def _gray(x: Tensor) -> Tensor:
    """``[N, 1, H, W]`` luma (ITU-R 601 weights for RGB, the channel mean otherwise)."""
    if x.shape[1] == 3:
        w = torch.tensor(_LUMA, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
        return (x * w).sum(1, keepdim=True)
    return x.mean(1, keepdim=True)


def _factor_range(value: float | Sequence[float], name: str) -> tuple[float, float]:
    if isinstance(value, (int, float)):
        if value < 0:
            raise ValueError(f"{name} must be non-negative, got {value}")
        return (max(0.0, 1.0 - value), 1.0 + value)
    lo, hi = _pair(value, name)
    if lo < 0:
        raise ValueError(f"{name} factors must be non-negative, got {value}")
    return lo, hi


class ColorJitter(Transform):
    """Per-sample brightness, contrast and saturation jitter, in that order.

    Each argument is ``j`` (a factor uniform in ``[max(0, 1 - j), 1 + j]``) or a
    ``(low, high)`` range of factors. Brightness scales the pixels, contrast blends each image
    with its mean grey level, saturation blends it with its grey version (a no-op for one
    channel). The result is clamped to ``[0, 1]``.
    """

    def __init__(
        self,
        brightness: float | tuple[float, float] = 0.4,
        contrast: float | tuple[float, float] = 0.4,
        saturation: float | tuple[float, float] = 0.4,
    ) -> None:
        self.brightness = _factor_range(brightness, "brightness")
        self.contrast = _factor_range(contrast, "contrast")
        self.saturation = _factor_range(saturation, "saturation")

    def apply(self, x: Tensor, generator: torch.Generator, *, mask: Tensor | None = None) -> Tensor:
        self._no_mask(mask)
        check_image(x, "ColorJitter")
        xf = to_float(x)
        n = x.shape[0]
        u = draw_uniform([3, n], generator, x.device).to(xf.dtype).view(3, n, 1, 1, 1)
        lo = torch.tensor(
            [self.brightness[0], self.contrast[0], self.saturation[0]], device=x.device
        ).to(xf.dtype)
        hi = torch.tensor(
            [self.brightness[1], self.contrast[1], self.saturation[1]], device=x.device
        ).to(xf.dtype)
        f = lo.view(3, 1, 1, 1, 1) + u * (hi - lo).view(3, 1, 1, 1, 1)
        out = (xf * f[0]).clamp(0, 1)
        mean = _gray(out).mean(dim=(1, 2, 3), keepdim=True)
        out = ((out - mean) * f[1] + mean).clamp(0, 1)
        if out.shape[1] > 1:
            grey = _gray(out)
            out = ((out - grey) * f[2] + grey).clamp(0, 1)
        return out.to(x.dtype)


class Grayscale(Transform):
    """Replace every channel by the image's grey level (keeps the number of channels)."""

    def apply(self, x: Tensor, generator: torch.Generator, *, mask: Tensor | None = None) -> Tensor:
        self._no_mask(mask)
        check_image(x, "Grayscale")
        if x.shape[1] == 1:
            return x
        return _gray(to_float(x)).expand_as(x).to(x.dtype).contiguous()


class RandomGrayscale(RandomApply):
    """Turn each image grey with probability ``p``."""

    def __init__(self, p: float = 0.2) -> None:
        super().__init__(Grayscale(), p)


def _gaussian_kernels(sigma: Tensor, size: int) -> Tensor:
    """``[N, size]`` normalised 1-D Gaussian kernels, one per sigma."""
    r = torch.arange(size, device=sigma.device, dtype=sigma.dtype) - (size - 1) / 2
    k = torch.exp(-0.5 * (r[None, :] / sigma[:, None]) ** 2)
    return k / k.sum(-1, keepdim=True)


class GaussianBlur(Transform):
    """Gaussian blur with a per-sample ``sigma`` uniform in ``sigma`` (pixels).

    ``kernel_size`` (odd) defaults to ``2 * ceil(3 * sigma_max) + 1``. The blur is separable and
    runs as two grouped convolutions (one group per image and channel) over the whole batch;
    borders are reflected (replicated when the kernel is wider than the image).
    """

    def __init__(
        self, sigma: float | tuple[float, float] = (0.1, 2.0), kernel_size: int | None = None
    ) -> None:
        self.sigma = _pair(sigma, "sigma")
        if self.sigma[0] <= 0:
            raise ValueError(f"sigma must be positive, got {sigma}")
        if kernel_size is None:
            kernel_size = 2 * math.ceil(3 * self.sigma[1]) + 1
        if kernel_size % 2 != 1 or kernel_size < 1:
            raise ValueError(f"kernel_size must be odd and positive, got {kernel_size}")
        self.kernel_size = int(kernel_size)

    def apply(self, x: Tensor, generator: torch.Generator, *, mask: Tensor | None = None) -> Tensor:
        self._no_mask(mask)
        check_image(x, "GaussianBlur")
        if x.shape[0] == 0:  # no image: nothing to blur (the grouped convolution needs one)
            return x
        xf = to_float(x)
        n, c, h, w = xf.shape
        sigma = draw_uniform([n], generator, x.device, *self.sigma).to(xf.dtype)
        k = self.kernel_size
        kernels = _gaussian_kernels(sigma, k).repeat_interleave(c, dim=0)  # [N*C, k]
        pad = k // 2
        mode = "reflect" if pad < min(h, w) else "replicate"
        y = F.pad(xf.reshape(1, n * c, h, w), (pad, pad, pad, pad), mode=mode)
        y = F.conv2d(y, kernels.view(n * c, 1, 1, k), groups=n * c)
        y = F.conv2d(y, kernels.view(n * c, 1, k, 1), groups=n * c)
        return y.view(n, c, h, w).to(x.dtype)


class GaussianNoise(Transform):
    """Add Gaussian noise with a per-sample standard deviation uniform in ``std``.

    ``clip=True`` clamps the result to ``[0, 1]``.
    """

    def __init__(self, std: float | tuple[float, float] = (0.0, 0.1), clip: bool = True) -> None:
        self.std = _pair(std, "std")
        if self.std[0] < 0:
            raise ValueError(f"std must be non-negative, got {std}")
        self.clip = clip

    def apply(self, x: Tensor, generator: torch.Generator, *, mask: Tensor | None = None) -> Tensor:
        self._no_mask(mask)
        check_image(x, "GaussianNoise")
        xf = to_float(x)
        std = draw_uniform([x.shape[0]], generator, x.device, *self.std).to(xf.dtype)
        out = xf + std.view(-1, 1, 1, 1) * draw_normal(x.shape, generator, x.device).to(xf.dtype)
        if self.clip:
            out = out.clamp(0, 1)
        return out.to(x.dtype)


class RandomErasing(Transform):
    """Cutout: with probability ``p``, fill a random rectangle of each image with ``value``.

    The rectangle covers a fraction ``scale`` of the area with aspect ratio (log-uniform) in
    ``ratio``, clipped to the image. ``value`` is a number, or ``"random"`` for uniform noise
    in ``[0, 1]``.
    """

    def __init__(
        self,
        p: float = 0.5,
        scale: tuple[float, float] = (0.02, 0.33),
        ratio: tuple[float, float] = (0.3, 3.3),
        value: float | str = 0.0,
    ) -> None:
        self.p = check_probability("p", p)
        self.scale = _pair(scale, "scale")
        self.ratio = _pair(ratio, "ratio")
        if not 0 < self.scale[0] <= self.scale[1] <= 1:
            raise ValueError(f"RandomErasing: scale must be [low, high] in (0, 1], got {scale}")
        if not 0 < self.ratio[0] <= self.ratio[1]:
            raise ValueError(f"RandomErasing: ratio must be [low, high] with 0 < low, got {ratio}")
        if value != "random" and not isinstance(value, (int, float)):
            raise ValueError(f"value must be a number or 'random', got {value!r}")
        self.value = value

    def apply(self, x: Tensor, generator: torch.Generator, *, mask: Tensor | None = None) -> Tensor:
        self._no_mask(mask)
        check_image(x, "RandomErasing")
        n, c, h, w = x.shape
        dev = x.device
        u = draw_uniform([5, n], generator, dev)
        area = self.scale[0] + u[0] * (self.scale[1] - self.scale[0])
        lr = math.log(self.ratio[0]) + u[1] * (math.log(self.ratio[1]) - math.log(self.ratio[0]))
        ratio = torch.exp(lr)
        eh = torch.sqrt(area * h * w / ratio).round().clamp(1, h)
        ew = torch.sqrt(area * h * w * ratio).round().clamp(1, w)
        top = (u[2] * (h - eh + 1)).floor()
        left = (u[3] * (w - ew + 1)).floor()
        erase = u[4] < self.p
        rows = torch.arange(h, device=dev).view(1, h, 1)
        cols = torch.arange(w, device=dev).view(1, 1, w)
        inside = (
            (rows >= top.view(n, 1, 1))
            & (rows < (top + eh).view(n, 1, 1))
            & (cols >= left.view(n, 1, 1))
            & (cols < (left + ew).view(n, 1, 1))
            & erase.view(n, 1, 1)
        ).unsqueeze(1)
        if self.value == "random":
            fill = draw_uniform(x.shape, generator, dev).to(x.dtype)
        else:
            fill = torch.tensor(float(self.value), dtype=x.dtype, device=dev)
        return torch.where(inside, fill, x)


def simclr_image_pipeline(
    size: int | tuple[int, int] | None = None,
    *,
    crop_scale: tuple[float, float] = (0.2, 1.0),
    flip: bool = True,
    degrees: float = 0.0,
    jitter: float = 0.4,
    jitter_p: float = 0.8,
    grayscale_p: float = 0.2,
    blur_p: float = 0.5,
    blur_sigma: tuple[float, float] = (0.1, 2.0),
    noise_std: float = 0.0,
    erase_p: float = 0.0,
) -> Transform:
    """A SimCLR-style pipeline: crop (+ flip, + rotation), colour jitter, grey, blur, noise.

    Set a probability or strength to 0 to leave that step out. Returns a
    :class:`~rankloss.augment.Compose`.
    """
    steps: list[Transform] = [RandomResizedCrop(size, scale=crop_scale)]
    if flip:
        steps.append(RandomHorizontalFlip(0.5))
    if degrees > 0:
        steps.append(RandomAffine(degrees))
    if jitter > 0 and jitter_p > 0:
        steps.append(RandomApply(ColorJitter(jitter, jitter, jitter), jitter_p))
    if grayscale_p > 0:
        steps.append(RandomGrayscale(grayscale_p))
    if blur_p > 0:
        steps.append(RandomApply(GaussianBlur(blur_sigma), blur_p))
    if noise_std > 0:
        steps.append(GaussianNoise((0.0, noise_std)))
    if erase_p > 0:
        steps.append(RandomErasing(erase_p))
    return Compose(steps)

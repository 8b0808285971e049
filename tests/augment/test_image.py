"""Image transforms: determinism, shapes, dtypes, ranges, identity at p=0, statistics."""

import math

import pytest
import torch

import rankloss.augment as A

IMAGE_TRANSFORMS = [
    A.RandomResizedCrop(None, scale=(0.3, 1.0)),
    A.RandomHorizontalFlip(0.5),
    A.RandomAffine(15, translate=(0.1, 0.1), scale=(0.9, 1.1), shear=5),
    A.ColorJitter(0.4, 0.4, 0.4),
    A.Grayscale(),
    A.RandomGrayscale(0.5),
    A.GaussianBlur((0.1, 2.0)),
    A.GaussianNoise((0.0, 0.2)),
    A.RandomErasing(0.5),
    A.RandomErasing(0.5, value="random"),
    A.simclr_image_pipeline(None, degrees=10, noise_std=0.05, erase_p=0.3),
]


def images(n=16, c=3, h=12, w=10, seed=0):
    return torch.rand(n, c, h, w, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("transform", IMAGE_TRANSFORMS, ids=lambda t: type(t).__name__)
@pytest.mark.parametrize("channels", [1, 3])
def test_seeded_shape_dtype_range(transform, channels):
    x = images(c=channels)
    y1 = transform(x, generator=123)
    y2 = transform(x, generator=torch.Generator().manual_seed(123))
    assert torch.equal(y1, y2)
    assert y1.shape == x.shape and y1.dtype == x.dtype
    assert y1.min() >= 0 and y1.max() <= 1
    assert transform(x.clone(), generator=123).shape == x.shape  # input not modified in place


@pytest.mark.parametrize("transform", IMAGE_TRANSFORMS, ids=lambda t: type(t).__name__)
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64])
def test_low_and_high_precision(transform, dtype):
    x = images()
    y = transform(x.to(dtype), generator=5)
    assert y.dtype == dtype and y.shape == x.shape
    assert torch.isfinite(y).all() and y.min() >= 0 and y.max() <= 1
    ref = transform(x, generator=5)
    tol = 0.02 if dtype != torch.float64 else 1e-5
    # the same draws as in float32: only rounding differs
    assert (y.float() - ref).abs().max() <= tol


def test_different_samples_get_different_parameters():
    x = images(n=1).expand(32, -1, -1, -1)
    y = A.RandomResizedCrop(None, scale=(0.2, 1.0))(x, generator=0)
    distinct = {tuple(row.flatten()[:20].tolist()) for row in y}
    assert len(distinct) == 32


def test_different_seeds_differ_and_generator_advances():
    x = images()
    t = A.simclr_image_pipeline(None)
    g = torch.Generator().manual_seed(0)
    assert not torch.equal(t(x, generator=g), t(x, generator=g))
    assert not torch.equal(t(x, generator=1), t(x, generator=2))


def test_global_rng_untouched():
    state = torch.get_rng_state()
    A.simclr_image_pipeline(None, noise_std=0.1)(images(), generator=None)
    assert torch.equal(state, torch.get_rng_state())


@pytest.mark.parametrize(
    "transform",
    [
        A.RandomHorizontalFlip(0.0),
        A.RandomGrayscale(0.0),
        A.RandomErasing(0.0),
        A.RandomApply(A.GaussianBlur(), p=0.0),
        A.RandomApply(A.ColorJitter(), p=0.0),
        A.RandomApply(A.RandomAffine(30), p=0.0),
        A.Compose([A.RandomApply(A.RandomAffine(30), p=0.0), A.RandomHorizontalFlip(0.0)]),
        A.ColorJitter(0, 0, 0),
        A.GaussianNoise(0.0),
    ],
    ids=repr,
)
def test_probability_zero_is_identity(transform):
    x = images()
    assert torch.allclose(transform(x, generator=0), x, atol=1e-6)


def test_identity_warps_are_exact_resampling():
    x = images()
    y = A.RandomAffine(0)(x, generator=0)  # identity matrix through grid_sample
    assert torch.allclose(y, x, atol=1e-5)
    full = A.RandomResizedCrop(None, scale=(1.0, 1.0), ratio=(1.0, 1.0))(images(h=10), generator=0)
    assert torch.allclose(full, images(h=10), atol=1e-5)


def test_flip_rate_close_to_p():
    n, p = 4000, 0.3
    x = torch.zeros(n, 1, 1, 2)
    x[..., 0] = 1.0  # left pixel bright: a flip moves it right
    flipped = A.RandomHorizontalFlip(p)(x, generator=0)[:, 0, 0, 1] == 1
    rate = flipped.float().mean().item()
    assert abs(rate - p) < 4 * math.sqrt(p * (1 - p) / n)


def test_flip_fused_equals_flip_alone():
    x = images(n=64)
    fused = A.Compose([A.RandomHorizontalFlip(1.0), A.RandomAffine(0)])(x, generator=0)
    assert torch.allclose(fused, x.flip(-1), atol=1e-5)


def test_fused_geometry_matches_sequential_at_identity_crop():
    # a crop of the whole image followed by a flip: fused == sequential
    x = images(n=32)
    crop = A.RandomResizedCrop(None, scale=(1.0, 1.0), ratio=(1.2, 1.2))
    flip = A.RandomHorizontalFlip(0.5)
    fused = A.Compose([crop, flip])(x, generator=7)
    g = torch.Generator().manual_seed(7)
    seq_crop = crop(x, generator=g)
    seq = flip.apply(seq_crop, g)
    assert torch.allclose(fused, seq, atol=1e-5)


def test_random_apply_rate():
    n, p = 3000, 0.25
    x = torch.full((n, 3, 2, 2), 0.5)
    x[:, 0] = 1.0
    grey = A.RandomGrayscale(p)(x, generator=0)
    rate = (grey[:, 0, 0, 0] < 1).float().mean().item()
    assert abs(rate - p) < 4 * math.sqrt(p * (1 - p) / n)


def test_resized_crop_output_size_and_area():
    x = images(n=8, h=28, w=28)
    y = A.RandomResizedCrop(16, scale=(0.5, 1.0))(x, generator=0)
    assert y.shape == (8, 3, 16, 16)
    mats, size = A.RandomResizedCrop((20, 24), scale=(0.25, 0.25), ratio=(1.0, 1.0)).matrices(
        1000, (28, 28), torch.Generator().manual_seed(0), torch.device("cpu")
    )
    assert size == (20, 24)
    area = (mats[:, 0, 0] * mats[:, 1, 1]).mean()
    assert abs(area.item() - 0.25) < 1e-5
    # the crop stays inside the image
    assert (mats[:, 0, 0] + mats[:, 0, 2].abs() <= 1 + 1e-6).all()


def test_rotation_keeps_aspect_and_centre():
    x = torch.zeros(1, 1, 21, 21)
    x[0, 0, 10, 10] = 1.0  # centre pixel stays the brightest under rotation about the centre
    y = A.RandomAffine((90, 90))(x, generator=0)
    assert y[0, 0].flatten().argmax().item() == 10 * 21 + 10
    bar = torch.zeros(1, 1, 21, 21)
    bar[0, 0, 10, 5:16] = 1.0  # a horizontal bar becomes vertical
    rot = A.RandomAffine((90, 90))(bar, generator=0)[0, 0]
    assert torch.allclose(rot, bar[0, 0].T, atol=1e-4)


def test_colour_jitter_is_per_sample_and_grey_stays_grey():
    x = images(n=1).expand(8, -1, -1, -1)
    y = A.ColorJitter(0.5, 0.5, 0.5)(x, generator=0)
    assert len({round(v, 6) for v in y.mean((1, 2, 3)).tolist()}) == 8
    grey = A.Grayscale()(x)
    assert torch.allclose(grey[:, 0], grey[:, 1]) and torch.allclose(grey[:, 1], grey[:, 2])
    assert torch.allclose(grey[:, 0], 0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2])


def test_blur_preserves_constant_images_and_mass():
    x = torch.full((4, 2, 9, 9), 0.7)
    assert torch.allclose(A.GaussianBlur((0.5, 3.0))(x, generator=0), x, atol=1e-6)
    spike = torch.zeros(3, 1, 15, 15)
    spike[:, 0, 7, 7] = 1.0
    blurred = A.GaussianBlur((0.5, 2.0))(spike, generator=0)
    assert torch.allclose(blurred.sum((1, 2, 3)), torch.ones(3), atol=1e-5)
    assert (blurred[:, 0, 7, 7] < 1).all()
    # per-sample sigma: different spread per sample
    assert len(set(blurred[:, 0, 7, 7].tolist())) == 3


def test_erasing_area_within_bounds():
    x = torch.ones(500, 1, 20, 20)
    y = A.RandomErasing(1.0, scale=(0.1, 0.2), ratio=(1.0, 1.0))(x, generator=0)
    erased = (y == 0).float().mean((1, 2, 3))
    assert (erased > 0.05).all() and (erased < 0.3).all()


def test_bad_input_is_explained():
    with pytest.raises(ValueError, match=r"\[N, C, H, W\]"):
        A.ColorJitter()(torch.rand(3, 8, 8))
    with pytest.raises(ValueError, match="p must be in"):
        A.RandomHorizontalFlip(1.5)
    with pytest.raises(TypeError, match="generator"):
        A.GaussianNoise()(images(), generator="seed")
    with pytest.raises(ValueError, match="mask"):
        A.GaussianNoise()(images(), mask=torch.ones(16, dtype=torch.bool))


def test_a_merged_affine_keeps_its_padding_mode():
    """Compose applies consecutive geometric steps in one warp: the affine's padding mode is
    kept whatever follows it, and through RandomApply."""
    x = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(0)) + 0.1
    affine = A.RandomAffine(degrees=(45, 45), padding_mode="border")
    alone = affine(x, generator=0)
    assert (alone == 0).sum() == 0
    for pipeline in (
        A.Compose([affine, A.RandomHorizontalFlip(0.0)]),
        A.Compose([A.RandomHorizontalFlip(0.0), A.RandomApply(affine, p=1.0)]),
    ):
        assert (pipeline(x, generator=0) == 0).sum() == 0
    zeros = A.Compose([A.RandomAffine(degrees=(45, 45)), A.RandomHorizontalFlip(0.0)])
    assert (zeros(x, generator=0) == 0).sum() > 0


@pytest.mark.badinput("augment")
def test_a_size_changing_transform_in_random_apply_or_one_of_is_refused_on_every_draw():
    x = torch.rand(2, 3, 16, 16)
    wrapped = [
        A.RandomApply(A.RandomResizedCrop(8), p=0.5),
        A.OneOf([A.RandomResizedCrop(4), A.Identity()]),
    ]
    for transform in wrapped:
        for seed in range(6):
            with pytest.raises(ValueError, match="changes the images' size"):
                transform(x, generator=seed)
    assert A.RandomApply(A.RandomResizedCrop(8), p=1.0)(x, generator=0).shape == (2, 3, 8, 8)
    assert A.RandomApply(A.RandomResizedCrop(16), p=0.5)(x, generator=0).shape == x.shape


@pytest.mark.badinput("augment")
@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"scale": (-1.0, -0.5)}, "scale must be"),
        ({"scale": (0.5, 0.2)}, "scale must be"),
        ({"scale": (0.1, 1.5)}, "scale must be"),
        ({"ratio": (0.0, 1.0)}, "ratio must be"),
        ({"ratio": (2.0, 1.0)}, "ratio must be"),
    ],
)
def test_random_erasing_checks_scale_and_ratio(options, message):
    with pytest.raises(ValueError, match=message):
        A.RandomErasing(p=1.0, **options)


def test_blur_of_an_empty_batch_is_empty():
    assert A.GaussianBlur()(torch.rand(0, 3, 16, 16), generator=0).shape == (0, 3, 16, 16)

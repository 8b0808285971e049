"""Feature-vector and learning-to-rank list transforms."""

import pytest
import torch

import rankloss.augment as A


def lists(seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(4, 6, 5, generator=g) * torch.tensor([1.0, 10.0, 0.1, 1.0, 100.0])
    mask = torch.ones(4, 6, dtype=torch.bool)
    mask[0, 4:] = False
    mask[1, 1:] = False  # one real item
    return x, mask


FEATURE_TRANSFORMS = [
    A.FeatureNoise(0.1),
    A.FeatureNoise(0.1, scale=torch.ones(5)),
    A.FeatureDropout(0.3),
    A.FeatureDropout(0.3, per="feature"),
    A.ItemMixup(0.4),
]


@pytest.mark.parametrize("transform", FEATURE_TRANSFORMS, ids=repr)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.float64])
def test_seeded_shape_dtype_and_padding_untouched(transform, dtype):
    x, mask = lists()
    x = x.to(dtype)
    y = transform(x, generator=0, mask=mask)
    assert torch.equal(y, transform(x, generator=0, mask=mask))
    assert y.shape == x.shape and y.dtype == dtype and torch.isfinite(y).all()
    assert torch.equal(y[~mask], x[~mask])
    assert not torch.equal(y, x)
    assert transform(x[0, 0:3], generator=0).shape == (3, 5)  # a plain [N, f] batch


def test_noise_is_scaled_per_feature():
    x = torch.randn(64, 200, 3) * torch.tensor([0.01, 1.0, 100.0])
    delta = A.FeatureNoise(0.5)(x, generator=0) - x
    ratio = delta.std((0, 1)) / x.std((0, 1))
    assert torch.allclose(ratio, torch.full((3,), 0.5), rtol=0.05)


def test_dropout_rate_and_columns():
    x = torch.ones(50, 20, 10)
    y = A.FeatureDropout(0.25)(x, generator=0)
    assert abs((y == 0).float().mean().item() - 0.25) < 0.02
    cols = A.FeatureDropout(0.5, per="feature", fill=-1.0)(x, generator=0)
    dropped = cols == -1
    assert (dropped == dropped[:, :1]).all()  # the same columns for every item of a list


def test_mixup_partners_are_real_other_items():
    x, mask = lists()
    x = torch.arange(4 * 6, dtype=torch.float32).view(4, 6, 1).expand(4, 6, 2).contiguous()
    out, labels = A.ItemMixup(1.0).mix(x, torch.arange(24.0).view(4, 6), mask=mask, generator=0)
    lam_ok = (out - x)[..., 0]
    assert torch.equal(out[1, 0], x[1, 0])  # a list of one real item is unchanged
    assert torch.allclose(out[..., 0], labels)  # labels mixed with the same weights
    # each mixed value lies between the item and a real item of its list, nearer the item
    for b in range(4):
        real = x[b, mask[b], 0]
        for i in range(int(mask[b].sum())):
            assert real.min() <= out[b, i, 0] <= real.max()
            assert abs(lam_ok[b, i]) <= 0.5 * (real.max() - real.min()) + 1e-5


def test_probability_zero_is_identity():
    x, mask = lists()
    assert torch.equal(A.FeatureDropout(0.0)(x, generator=0, mask=mask), x)
    assert torch.equal(A.FeatureNoise(0.0)(x, generator=0, mask=mask), x)
    assert torch.equal(A.RandomApply(A.ItemMixup(), p=0.0)(x, generator=0, mask=mask), x)


def test_mask_is_checked():
    x, mask = lists()
    with pytest.raises(ValueError, match="mask must be bool"):
        A.FeatureNoise()(x, mask=mask[:, :3])

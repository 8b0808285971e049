"""Combinators, generators and positive pairs."""

import math

import pytest
import torch

import rankloss.augment as A


def images(n=32):
    return torch.rand(n, 1, 8, 8, generator=torch.Generator().manual_seed(0))


class AddOne(A.Transform):
    def apply(self, x, generator, *, mask=None):
        return x + 1


class AddTwo(A.Transform):
    def apply(self, x, generator, *, mask=None):
        return x + 2


def test_make_generator():
    assert isinstance(A.make_generator(None), torch.Generator)
    g = torch.Generator()
    assert A.make_generator(g) is g
    a = torch.rand(3, generator=A.make_generator(5))
    assert torch.equal(a, torch.rand(3, generator=A.make_generator(5)))
    with pytest.raises(TypeError):
        A.make_generator(1.5)


def test_compose_order_and_plain_callables():
    t = A.Compose([AddOne(), lambda x: x * 10, AddTwo()])
    assert torch.equal(t(torch.zeros(2)), torch.full((2,), 12.0))


def test_random_apply_rate_and_extremes():
    x = torch.zeros(4000, 1)
    out = A.RandomApply(AddOne(), p=0.3)(x, generator=0)
    rate = out.mean().item()
    assert abs(rate - 0.3) < 4 * math.sqrt(0.3 * 0.7 / 4000)
    assert torch.equal(A.RandomApply(AddOne(), p=0.0)(x, generator=0), x)
    assert torch.equal(A.RandomApply([AddOne(), AddTwo()], p=1.0)(x, generator=0), x + 3)


def test_random_apply_on_string_batches():
    out = A.RandomApply(A.WordDropout(1.0), p=0.5)(["a b c"] * 400, generator=0)
    changed = sum(s != "a b c" for s in out)
    assert 150 < changed < 250


def test_one_of_weights():
    x = torch.zeros(3000, 1)
    out = A.OneOf([AddOne(), AddTwo()], weights=[3, 1])(x, generator=0)
    assert set(out.flatten().tolist()) == {1.0, 2.0}
    assert abs((out == 1).float().mean().item() - 0.75) < 0.04
    with pytest.raises(ValueError):
        A.OneOf([])


def test_two_views_reproducible_and_independent():
    x = images()
    pipeline = A.simclr_image_pipeline(None)
    a1, a2, labels = A.TwoViews(pipeline, seed=0)(x)
    b1, b2, _ = A.TwoViews(pipeline, seed=0)(x)
    assert torch.equal(a1, b1) and torch.equal(a2, b2)
    assert not torch.equal(a1, a2)
    assert torch.equal(labels, torch.arange(32))
    tv = A.TwoViews(pipeline, A.Identity(), seed=1)
    v1, v2, y = tv(x, torch.ones(32, dtype=torch.long))
    assert torch.equal(v2, x) and torch.equal(y, torch.ones(32, dtype=torch.long))
    c1, _, _ = tv(x)
    assert not torch.equal(v1, c1)  # the owned generator advances


def test_two_views_on_text():
    v1, v2, labels = A.TwoViews(A.WordDropout(0.3), seed=0)(["a b c d e", "f g h i j"])
    assert len(v1) == len(v2) == 2 and labels.tolist() == [0, 1]


def test_two_views_dataset():
    data = torch.utils.data.TensorDataset(images(10), torch.arange(10) % 3)
    ds = A.TwoViewsDataset(data, A.simclr_image_pipeline(None), seed=3)
    v1, v2, label = ds[4]
    assert v1.shape == (1, 8, 8) and label == 1
    again = ds[4]
    assert torch.equal(v1, again[0]) and torch.equal(v2, again[1])
    ds.set_epoch(1)
    assert not torch.equal(v1, ds[4][0])
    loader = torch.utils.data.DataLoader(ds, batch_size=5)
    b1, b2, labels = next(iter(loader))
    assert b1.shape == (5, 1, 8, 8) and labels.tolist() == [0, 1, 2, 0, 1]
    plain = A.TwoViewsDataset(["x y z", "u v w"], A.WordDropout(0.5))
    assert plain[1][2] == 1 and isinstance(plain[1][0], str)


def test_repr_mentions_parameters():
    assert "p=0.3" in repr(A.RandomHorizontalFlip(0.3))
    assert "Compose" in repr(A.simclr_image_pipeline(None))


def _rankloss_imports(module):
    """Modules of rankloss that ``module``'s source imports, anywhere in the file."""
    import ast
    import inspect

    found = set()
    for node in ast.walk(ast.parse(inspect.getsource(module))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("rankloss"):
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("rankloss"))
    return found


def test_augment_imports_run_one_way():
    """geometry -> base -> image/text/features: no circle, not even inside a function."""
    from rankloss.augment import base, features, geometry, image, text

    assert _rankloss_imports(geometry) == set()
    assert _rankloss_imports(base) == {"rankloss.augment.geometry"}
    for module in (image, text, features):
        assert "rankloss.augment.base" in _rankloss_imports(module)
    assert A.image.warp_fused is geometry.warp_fused  # still importable where it was


def test_compose_fuses_geometric_runs_into_one_resampling(monkeypatch):
    from rankloss.augment import geometry

    calls = []
    real_warp = geometry.warp

    def counting_warp(*args, **kwargs):
        calls.append(1)
        return real_warp(*args, **kwargs)

    monkeypatch.setattr(geometry, "warp", counting_warp)
    x = torch.rand(4, 3, 12, 12, generator=torch.Generator().manual_seed(1))
    pipeline = A.Compose(
        [A.RandomResizedCrop(8), A.RandomApply(A.RandomAffine(20), 0.5), A.Grayscale()]
    )
    out = pipeline(x, generator=0)
    assert out.shape == (4, 3, 8, 8)
    assert len(calls) == 1

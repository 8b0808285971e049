"""SigLIP: the function and the module against a float64 loop written from the formula."""

from __future__ import annotations

import math

import pytest
import torch

import rankloss
from rankloss._core.similarity import pairwise_similarity
from rankloss.functional import siglip_loss, siglip_per_anchor
from rankloss.losses import SigLIPLoss

from . import reference as ref


def _softplus(x: float) -> float:
    return max(x, 0.0) + math.log1p(math.exp(-abs(x)))


def loop_siglip(s, pos, neg, scale, bias):
    """Per-anchor sums and validity, plain Python."""
    n = s.shape[0]
    values, valid = [0.0] * n, [False] * n
    for a, j in pos | neg:
        z = 1.0 if (a, j) in pos else -1.0
        values[a] += _softplus(-z * (scale * float(s[a, j]) + bias))
        valid[a] = True
    return values, valid


def _reduce(values, valid, weights=None):
    w = [1.0] * len(values) if weights is None else [float(v) for v in weights]
    num = sum(wi * v for wi, v, ok in zip(w, values, valid) if ok)
    den = sum(wi for wi, ok in zip(w, valid) if ok)
    return num / den if den else 0.0


def _masks(pos, neg, n, m):
    p = torch.zeros(n, m, dtype=torch.bool)
    q = torch.zeros(n, m, dtype=torch.bool)
    for a, j in pos:
        p[a, j] = True
    for a, j in neg:
        q[a, j] = True
    return p, q


@pytest.mark.parametrize("scale,bias", [(10.0, -10.0), (1.0, 0.0), (3.5, 2.0)])
def test_function_matches_the_loop(scale, bias):
    g = torch.Generator().manual_seed(0)
    s = torch.rand(6, 9, generator=g, dtype=torch.float64) * 2 - 1
    pos = {(a, j) for a in range(6) for j in range(9) if (a + j) % 4 == 0}
    neg = {(a, j) for a in range(6) for j in range(9) if (a + j) % 4 in (1, 2)}
    neg -= {(5, j) for j in range(9)}
    pos -= {(5, j) for j in range(9)}  # anchor 5 has no pair at all
    p, q = _masks(pos, neg, 6, 9)
    values, valid = loop_siglip(s, pos, neg, scale, bias)
    got_values, got_valid = siglip_per_anchor(s, p, q, scale=scale, bias=bias)
    torch.testing.assert_close(got_values, torch.tensor(values, dtype=torch.float64))
    assert got_valid.tolist() == valid
    w = torch.rand(6, generator=g, dtype=torch.float64)
    for weights in (None, w):
        got = siglip_loss(s, p, q, scale=scale, bias=bias, weights=weights)
        assert got.item() == pytest.approx(_reduce(values, valid, weights), rel=1e-12)
    got_sum = siglip_loss(s, p, q, scale=scale, bias=bias, reduction="sum")
    assert got_sum.item() == pytest.approx(sum(values), rel=1e-12)


def test_entries_outside_the_masks_are_never_read():
    s = torch.tensor([[0.5, float("nan"), 0.1], [float("inf"), 0.2, -0.3]], requires_grad=True)
    p = torch.tensor([[True, False, False], [False, True, False]])
    q = torch.tensor([[False, False, True], [False, False, True]])
    loss = siglip_loss(s, p, q)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(s.grad).all()
    assert s.grad[0, 1] == 0 and s.grad[1, 0] == 0


def test_all_masked_is_a_connected_zero():
    s = torch.randn(3, 4, requires_grad=True)
    none = torch.zeros(3, 4, dtype=torch.bool)
    loss = siglip_loss(s, none, none)
    loss.backward()
    assert loss.item() == 0.0 and s.grad is not None and (s.grad == 0).all()


def test_extreme_logits_stay_finite():
    s = torch.tensor([[1e4, -1e4]], requires_grad=True)
    p = torch.tensor([[False, True]])
    loss = siglip_loss(s, p, ~p, scale=1.0, bias=0.0)
    loss.backward()
    assert loss.item() == pytest.approx(2e4) and torch.isfinite(s.grad).all()


def test_gradcheck_similarity_scale_and_bias():
    g = torch.Generator().manual_seed(1)
    s = torch.randn(4, 5, generator=g, dtype=torch.float64, requires_grad=True)
    p = torch.rand(4, 5, generator=g) < 0.3
    q = ~p & (torch.rand(4, 5, generator=g) < 0.8)
    scale = torch.tensor(2.0, dtype=torch.float64, requires_grad=True)
    bias = torch.tensor(-1.0, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda s, t, b: siglip_loss(s, p, q, scale=t, bias=b), (s, scale, bias)
    )


@pytest.mark.parametrize("similarity", ["cosine", "dot"])
def test_module_labels_form_matches_the_loop(similarity):
    g = torch.Generator().manual_seed(2)
    x = torch.randn(10, 4, generator=g, dtype=torch.float64)
    labels = torch.tensor([0, 0, 1, 1, 1, 2, 3, 3, 4, 2])
    queries, keys, pos, neg = ref.candidates_labels(x, labels)
    s = ref.similarity(queries, keys, similarity)
    values, valid = loop_siglip(s, pos, neg, 10.0, -10.0)
    loss = SigLIPLoss(similarity=similarity, learnable=False)
    assert loss(x, labels).item() == pytest.approx(_reduce(values, valid), rel=1e-10)


def test_module_pairs_form_with_hard_negatives_matches_the_loop():
    g = torch.Generator().manual_seed(3)
    q = torch.randn(5, 4, generator=g, dtype=torch.float64)
    k = torch.randn(5, 4, generator=g, dtype=torch.float64)
    hard = torch.randn(5, 2, 4, generator=g, dtype=torch.float64)
    queries, keys, pos, neg = ref.candidates_pairs(q, k, extra=hard.reshape(-1, 4))
    s = ref.similarity(queries, keys, "cosine")
    values, valid = loop_siglip(s, pos, neg, 4.0, -2.0)
    loss = SigLIPLoss(scale=4.0, bias=-2.0, learnable=False).double()
    got = loss(q, keys=k, hard_negatives=hard)
    assert got.item() == pytest.approx(_reduce(values, valid), rel=1e-10)


def test_learnable_scale_and_bias_are_parameters_with_gradients():
    loss = SigLIPLoss()
    names = dict(loss.named_parameters())
    assert set(names) == {"log_scale", "bias_parameter"}
    assert names["log_scale"].item() == pytest.approx(math.log(10.0))
    assert names["bias_parameter"].item() == -10.0
    x, y = torch.randn(6, 8), torch.randn(6, 8)
    loss(x, keys=y).backward()
    assert all(p.grad is not None and torch.isfinite(p.grad) for p in loss.parameters())
    fixed = SigLIPLoss(learnable=False)
    assert list(fixed.parameters()) == []
    torch.testing.assert_close(fixed(x, keys=y), loss(x, keys=y).detach())


def test_module_gradcheck_embeddings():
    g = torch.Generator().manual_seed(4)
    x = torch.randn(6, 3, generator=g, dtype=torch.float64, requires_grad=True)
    labels = torch.tensor([0, 0, 1, 1, 2, 2])
    loss = SigLIPLoss(scale=2.0, bias=-1.0, learnable=False)
    assert torch.autograd.gradcheck(lambda e: loss(e, labels), (x,))


def test_registered_by_name():
    built = rankloss.losses.get("siglip", scale=5.0)
    assert isinstance(built, SigLIPLoss) and built.scale == 5.0
    assert "siglip" in rankloss.losses.available("embedding")


@pytest.mark.badinput("losses")
def test_bad_hyper_parameters_fail_at_construction():
    for kwargs, error in (
        ({"scale": 0.0}, ValueError),
        ({"scale": -1.0}, ValueError),
        ({"bias": float("nan")}, ValueError),
        ({"learnable": 1}, TypeError),
        ({"impl": "cuda"}, ValueError),
        ({"impl": "triton", "similarity": "neg_euclidean"}, ValueError),
        ({"chunk_size": 0}, ValueError),
    ):
        with pytest.raises(error, match=r"^SigLIPLoss: "):
            SigLIPLoss(**kwargs)


@pytest.mark.badinput("losses")
def test_bad_function_arguments():
    s = torch.zeros(2, 2)
    eye = torch.eye(2, dtype=torch.bool)
    with pytest.raises(ValueError, match="scale must be > 0"):
        siglip_loss(s, eye, ~eye, scale=0.0)
    with pytest.raises(ValueError, match="bias must be a scalar"):
        siglip_loss(s, eye, ~eye, bias=torch.zeros(2))
    with pytest.raises(ValueError, match="positive has shape"):
        siglip_loss(s, eye[:1], ~eye)


def _open_clip_loss_module():
    """open_clip's ``loss.py`` loaded on its own: the package's ``__init__`` needs torchvision,
    which would pull a second torch; the loss file needs only torch."""
    import importlib.util
    from pathlib import Path

    spec = importlib.util.find_spec("open_clip")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("open_clip is not installed (pip install --no-deps open_clip_torch)")
    path = Path(next(iter(spec.submodule_search_locations))) / "loss.py"
    loss_spec = importlib.util.spec_from_file_location("_open_clip_loss", path)
    assert loss_spec is not None and loss_spec.loader is not None
    module = importlib.util.module_from_spec(loss_spec)
    loss_spec.loader.exec_module(module)
    return module


def test_equals_open_clip_siglip_loss_values_and_gradients():
    peer = _open_clip_loss_module().SigLipLoss()
    g = torch.Generator().manual_seed(3)
    worst = 0.0
    for n, d in ((6, 4), (16, 8)):
        images = torch.nn.functional.normalize(torch.randn(n, d, generator=g, dtype=torch.float64))
        texts = torch.nn.functional.normalize(torch.randn(n, d, generator=g, dtype=torch.float64))
        a, b = images.clone().requires_grad_(True), texts.clone().requires_grad_(True)
        scale, bias = (
            torch.tensor(7.5, dtype=torch.float64),
            torch.tensor(-4.0, dtype=torch.float64),
        )
        expected = peer(a, b, scale, bias)
        expected.backward()
        x, y = images.clone().requires_grad_(True), texts.clone().requires_grad_(True)
        ours = SigLIPLoss(similarity="dot", scale=7.5, bias=-4.0, learnable=False)(x, keys=y)
        ours.backward()
        torch.testing.assert_close(ours, expected, rtol=0, atol=1e-12)
        torch.testing.assert_close(x.grad, a.grad, rtol=0, atol=1e-12)
        torch.testing.assert_close(y.grad, b.grad, rtol=0, atol=1e-12)
        worst = max(
            worst,
            float((ours - expected).detach().abs()),
            float((x.grad - a.grad).abs().max()),
            float((y.grad - b.grad).abs().max()),
        )
    print(f"siglip vs open_clip SigLipLoss (float64): max |difference| {worst:.2e}")


def _general_siglip(q, k, extra, log_scale, bias, weights, reduction):
    """The masked path: the function on the full similarity with explicit masks."""
    keys = k if extra is None else torch.cat([k, extra])
    s = pairwise_similarity(q, keys, "cosine")
    n, m = s.shape
    positive = torch.zeros(n, m, dtype=torch.bool)
    positive[torch.arange(n), torch.arange(n)] = True
    return siglip_loss(
        s,
        positive,
        ~positive,
        scale=log_scale.exp(),
        bias=bias,
        weights=weights,
        reduction=reduction,
    )


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("extra", [False, True])
@pytest.mark.parametrize("weighted", [False, True])
def test_in_batch_path_equals_the_masked_path(reduction, extra, weighted):
    # loss(q, keys=k) without labels takes the mask-free path (the diagonal negated in place
    # of a sign matrix); values and every gradient equal the masked function's.
    g = torch.Generator().manual_seed(11)
    q = torch.randn(7, 5, generator=g, dtype=torch.float64)
    k = torch.randn(7, 5, generator=g, dtype=torch.float64)
    hard = torch.randn(7, 2, 5, generator=g, dtype=torch.float64) if extra else None
    weights = torch.rand(7, generator=g, dtype=torch.float64) + 0.1 if weighted else None
    loss = SigLIPLoss(scale=3.0, bias=-2.5, reduction=reduction).double()
    q1, k1 = q.clone().requires_grad_(), k.clone().requires_grad_()
    got = loss(q1, keys=k1, hard_negatives=hard, weights=weights)
    got.sum().backward()
    # the module's parameters as they are (its log-scale was rounded to float32 at init)
    log_scale = loss.log_scale.detach().clone().requires_grad_()
    bias = loss.bias_parameter.detach().clone().requires_grad_()
    q2, k2 = q.clone().requires_grad_(), k.clone().requires_grad_()
    flat = None if hard is None else hard.reshape(-1, 5)
    want = _general_siglip(q2, k2, flat, log_scale, bias, weights, reduction)
    want.sum().backward()
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)
    for a, b in [
        (q1.grad, q2.grad),
        (k1.grad, k2.grad),
        (loss.log_scale.grad, log_scale.grad),
        (loss.bias_parameter.grad, bias.grad),
    ]:
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


def test_in_batch_path_gradcheck():
    g = torch.Generator().manual_seed(12)
    q = torch.randn(5, 3, generator=g, dtype=torch.float64, requires_grad=True)
    k = torch.randn(5, 3, generator=g, dtype=torch.float64, requires_grad=True)
    loss = SigLIPLoss(scale=2.0, bias=-1.0, learnable=False)
    assert torch.autograd.gradcheck(lambda a, b: loss(a, keys=b), (q, k))


def test_in_batch_path_half_precision_matches_float32():
    g = torch.Generator().manual_seed(13)
    q, k = torch.randn(16, 8, generator=g), torch.randn(16, 8, generator=g)
    loss = SigLIPLoss(learnable=False)
    want = loss(q.half().float(), keys=k.half().float())
    got = loss(q.half(), keys=k.half())
    assert got.dtype == torch.float32
    torch.testing.assert_close(got, want)


def test_in_batch_function_equals_the_masked_function_and_refuses_bad_input():
    from rankloss.functional.siglip import siglip_in_batch_per_anchor

    g = torch.Generator().manual_seed(14)
    s = torch.randn(4, 6, generator=g, dtype=torch.float64)
    positive = torch.zeros(4, 6, dtype=torch.bool)
    positive[torch.arange(4), torch.arange(4)] = True
    a = s.clone().requires_grad_()
    b = s.clone().requires_grad_()
    got = siglip_in_batch_per_anchor(a, scale=2.0, bias=-1.5)
    want, valid = siglip_per_anchor(b, positive, ~positive, scale=2.0, bias=-1.5)
    assert bool(valid.all())
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)
    (got * torch.arange(1.0, 5.0, dtype=torch.float64)).sum().backward()
    (want * torch.arange(1.0, 5.0, dtype=torch.float64)).sum().backward()
    torch.testing.assert_close(a.grad, b.grad, rtol=1e-12, atol=1e-12)
    with pytest.raises(ValueError, match="M >= N"):
        siglip_in_batch_per_anchor(torch.zeros(3, 2))
    with pytest.raises(ValueError, match=r"\[N, M\]"):
        siglip_in_batch_per_anchor(torch.zeros(3))
    with pytest.raises(ValueError, match="NaN or infinite"):
        siglip_in_batch_per_anchor(torch.tensor([[0.0, math.nan], [1.0, 0.0]]))
    with pytest.raises(ValueError, match="scale"):
        siglip_in_batch_per_anchor(torch.zeros(2, 2), scale=-1.0)

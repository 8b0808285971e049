"""Streaming (row-block) contrastive, multi-similarity and all-triplets losses."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

from rankloss.losses import ContrastiveLoss, MultiSimilarityLoss, TripletLoss
from rankloss.mining import Triplets

LAYOUTS = {
    "singletons": torch.arange(11),
    "one_class": torch.zeros(11, dtype=torch.long),
    "uneven": torch.tensor([0, 0, 0, 0, 0, 1, 1, 2, 3, 3, 4]),
}
LOSSES = [
    (ContrastiveLoss, {}),
    (ContrastiveLoss, {"squared": True, "pos_margin": 0.8, "neg_margin": 0.2}),
    (MultiSimilarityLoss, {"alpha": 3.0, "beta": 20.0, "base": 0.3}),
    (TripletLoss, {"margin": 0.3}),
]


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
@pytest.mark.parametrize(("cls", "hyper"), LOSSES)
@pytest.mark.parametrize("similarity", ["cosine", "dot"])
@pytest.mark.parametrize("reduction", ["mean", "none"])
def test_streaming_equals_direct_values_and_gradients(layout, cls, hyper, similarity, reduction):
    labels = LAYOUTS[layout]
    g = torch.Generator().manual_seed(len(labels) + len(hyper))
    base = torch.randn(len(labels), 4, generator=g, dtype=torch.float64)
    weights = torch.rand(len(labels), generator=g, dtype=torch.float64)
    outs, grads = [], []
    forms = (
        {"impl": "torch"},
        {"impl": "streaming", "chunk_size": 3},
        {"chunk_size": 4},
        {"impl": "streaming"},  # one default-sized block: not recomputed in the backward
    )
    for kw in forms:
        x = base.clone().requires_grad_()
        loss = cls(similarity=similarity, reduction=reduction, **hyper, **kw)
        out = loss(x, labels, weights=weights)
        scale = torch.arange(1, out.numel() + 1, dtype=out.dtype).reshape(out.shape)
        (out * scale).sum().backward()
        outs.append(out.detach())
        grads.append(x.grad)
    for out, grad in zip(outs[1:], grads[1:], strict=True):
        torch.testing.assert_close(out, outs[0], rtol=0, atol=1e-10)
        torch.testing.assert_close(grad, grads[0], rtol=0, atol=1e-10)
    assert torch.isfinite(grads[0]).all()


def _value_and_grads(loss, x, labels, **kw):
    x = x.clone().requires_grad_()
    ref = kw.pop("ref_embeddings", None)
    if ref is not None:
        ref = ref.clone().requires_grad_()
        kw["ref_embeddings"] = ref
    out = loss(x, labels, **kw)
    out.backward()
    return out.detach(), x.grad, (ref.grad if ref is not None else None)


@pytest.mark.parametrize(("cls", "hyper"), LOSSES)
@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("weighted", [False, True])
def test_reduced_form_with_references_and_exact_ties(cls, hyper, reduction, weighted):
    # Integer embeddings with the dot similarity put many similarities exactly on a hinge's
    # kink and tie negatives with each other: the closed-form gradient must pick autograd's
    # one-sided slopes (relu'(0) = 0) and count tied negatives as sort + prefix sums do.
    g = torch.Generator().manual_seed(7)
    x = torch.randint(-1, 2, (13, 3), generator=g).to(torch.float64) / 2
    labels = torch.randint(0, 4, (13,), generator=g)
    ref = torch.randint(-1, 2, (9, 3), generator=g).to(torch.float64) / 2
    ref_labels = torch.randint(0, 5, (9,), generator=g)
    weights = torch.rand(13, generator=g, dtype=torch.float64) if weighted else None
    hyper = {**hyper, "margin": 0.5} if cls is TripletLoss else hyper
    kw = {"ref_embeddings": ref, "ref_labels": ref_labels, "weights": weights}
    results = [
        _value_and_grads(
            cls(similarity="dot", reduction=reduction, **hyper, **form), x, labels, **dict(kw)
        )
        for form in ({"impl": "torch"}, {"impl": "streaming", "chunk_size": 4})
    ]
    (v0, gx0, gr0), (v1, gx1, gr1) = results
    torch.testing.assert_close(v1, v0, rtol=0, atol=1e-12)
    torch.testing.assert_close(gx1, gx0, rtol=0, atol=1e-12)
    torch.testing.assert_close(gr1, gr0, rtol=0, atol=1e-12)
    assert gx0.abs().sum() > 0


@pytest.mark.parametrize(("cls", "hyper"), LOSSES)
def test_reduced_form_in_float32_and_half_inputs(cls, hyper):
    g = torch.Generator().manual_seed(3)
    x = torch.randn(40, 8, generator=g)
    labels = torch.randint(0, 6, (40,), generator=g)
    for dtype in (torch.float32, torch.bfloat16, torch.float16):
        direct = _value_and_grads(cls(**hyper, impl="torch"), x.to(dtype), labels)
        streaming = cls(**hyper, impl="streaming", chunk_size=7)
        streamed = _value_and_grads(streaming, x.to(dtype), labels)
        torch.testing.assert_close(streamed[0], direct[0], rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(streamed[1], direct[1], rtol=1e-4, atol=1e-5)
        assert streamed[1].dtype == dtype


def test_reduced_form_large_multi_similarity_scales_match_the_exact_softplus():
    # beta * (s - base) above 20: F.softplus's linear cut-off would differ from the exact
    # log(1 + sum exp) of the closed form by ~1e-9; both paths use the exact one.
    g = torch.Generator().manual_seed(5)
    x = torch.randn(24, 4, generator=g, dtype=torch.float64)
    labels = torch.arange(24) % 3
    loss = {"alpha": 2.0, "beta": 80.0, "base": 0.1}
    direct = _value_and_grads(MultiSimilarityLoss(**loss, impl="torch"), x, labels)
    streaming = MultiSimilarityLoss(**loss, impl="streaming", chunk_size=5)
    streamed = _value_and_grads(streaming, x, labels)
    torch.testing.assert_close(streamed[0], direct[0], rtol=0, atol=1e-12)
    torch.testing.assert_close(streamed[1], direct[1], rtol=0, atol=1e-12)


def test_weights_that_need_a_gradient_take_the_recomputing_form():
    g = torch.Generator().manual_seed(2)
    x = torch.randn(10, 4, generator=g, dtype=torch.float64)
    labels = torch.arange(10) % 3
    grads = []
    for impl in ("torch", "streaming"):
        w = torch.rand(10, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
        w.requires_grad_()
        ContrastiveLoss(impl=impl, chunk_size=3 if impl == "streaming" else None)(
            x, labels, weights=w
        ).backward()
        grads.append(w.grad)
    torch.testing.assert_close(grads[1], grads[0], rtol=0, atol=1e-12)


def test_reduced_form_without_gradients_and_with_nothing_to_learn():
    x = torch.randn(5, 3, dtype=torch.float64)
    labels = torch.arange(5)  # singletons: no triplet anywhere
    with torch.no_grad():
        out = TripletLoss(impl="streaming", chunk_size=2)(x, labels)
    assert out.item() == 0.0
    grouped = torch.tensor([0, 0, 1, 1, 1])
    with torch.no_grad():  # inputs that require a gradient, in a no-gradient block
        quiet = ContrastiveLoss(impl="streaming", chunk_size=2)(x.requires_grad_(), grouped)
    assert not quiet.requires_grad
    torch.testing.assert_close(quiet, ContrastiveLoss(impl="torch")(x, grouped).detach())
    x = x.detach()
    leaf = x.clone().requires_grad_()
    out = TripletLoss(impl="streaming", chunk_size=2)(leaf, labels)
    out.backward()
    assert out.item() == 0.0 and leaf.grad is not None and not leaf.grad.any()


@pytest.mark.badinput("losses")
def test_reduced_form_checks_weights_before_any_block():
    x, labels = torch.randn(6, 3), torch.tensor([0, 0, 1, 1, 2, 2])
    with pytest.raises(ValueError, match=r"weights has shape \[5\]; expected \[6\]"):
        ContrastiveLoss(impl="streaming")(x, labels, weights=torch.ones(5))
    with pytest.raises(ValueError, match=r"weights holds -1"):
        ContrastiveLoss(impl="streaming")(x, labels, weights=torch.tensor([1.0] * 5 + [-1.0]))


def test_auto_streams_above_the_threshold(monkeypatch):
    import rankloss.kernels.dispatch as dispatch

    calls = []
    original = dispatch.resolve_impl

    def spy(*args, **kwargs):
        choice = original(*args, **{**kwargs, "streaming_above": 10})
        calls.append(choice)
        return choice

    monkeypatch.setattr("rankloss.losses.embedding.resolve_impl", spy)
    x = torch.randn(6, 3, dtype=torch.float64)
    labels = torch.tensor([0, 0, 1, 1, 2, 2])
    auto = TripletLoss()(x, labels)
    assert calls == ["streaming"]
    torch.testing.assert_close(auto, TripletLoss(impl="torch")(x, labels), rtol=0, atol=1e-12)


@pytest.mark.badinput("losses")
def test_unsupported_combinations_are_refused_clearly():
    with pytest.raises(ValueError, match=r"^TripletLoss: impl='streaming' .* soft_margin=True"):
        TripletLoss(impl="streaming", soft_margin=True)
    with pytest.raises(ValueError, match=r"^ContrastiveLoss: impl='streaming' .* a miner"):
        ContrastiveLoss(impl="streaming", miner="batch_hard")
    with pytest.raises(ValueError, match=r"MultiSimilarityLoss: chunk_size must be"):
        MultiSimilarityLoss(chunk_size=0)
    with pytest.raises(ValueError, match=r"impl must be one of"):
        ContrastiveLoss(impl="fast")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"similarity must be one of"):
        TripletLoss(impl="streaming", similarity="neg_euclidean")
    x, labels = torch.randn(4, 3), torch.tensor([0, 0, 1, 1])
    triplets = Triplets(torch.tensor([0]), torch.tensor([1]), torch.tensor([2]))
    with pytest.raises(ValueError, match=r"indices restrict the pairs"):
        TripletLoss(impl="streaming")(x, labels, indices=triplets)
    # impl="auto" with indices takes the direct path.
    direct = TripletLoss(impl="torch")(x, labels, indices=triplets)
    torch.testing.assert_close(TripletLoss()(x, labels, indices=triplets), direct)


_RSS_SCRIPT = """
import resource, torch
torch.set_num_threads(1)
from rankloss.losses import ContrastiveLoss
n, d = 8192, 64
g = torch.Generator().manual_seed(0)
x = torch.randn(n, d, generator=g, requires_grad=True)
labels = torch.randint(0, n // 8, (n,), generator=g)
# Warm up (first-call imports) before the baseline.
ContrastiveLoss(impl="streaming")(torch.randn(8, 4, requires_grad=True), labels[:8]).backward()
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
ContrastiveLoss(impl="streaming", chunk_size=256)(x, labels).backward()
assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) * 1024)
"""


@pytest.mark.skipif(sys.platform != "linux", reason="ru_maxrss in KiB is Linux's")
def test_streaming_peak_memory_stays_below_one_direct_matrix():
    # glibc raises its mmap threshold after a large free and then keeps freed blocks in the
    # heap: ru_maxrss would count that cache. A fixed threshold measures live tensors.
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "65536"}
    out = subprocess.run(
        [sys.executable, "-c", _RSS_SCRIPT], capture_output=True, text=True, timeout=120, env=env
    )
    assert out.returncode == 0, out.stderr
    grown = int(out.stdout.strip().splitlines()[-1])
    # One direct [8192, 8192] float32 similarity alone is 256 MiB (the direct path holds
    # several); streaming blocks of 256 rows hold 8 MiB each.
    assert grown < 200 * 2**20, grown


def test_reduced_form_backward_twice_on_a_retained_graph():
    x = torch.randn(8, 3, dtype=torch.float64, requires_grad=True)
    loss = MultiSimilarityLoss(impl="streaming", chunk_size=3)(x, torch.arange(8) % 3)
    loss.backward(retain_graph=True)
    first = x.grad.clone()
    loss.backward()
    torch.testing.assert_close(x.grad, 2 * first, rtol=0, atol=1e-12)

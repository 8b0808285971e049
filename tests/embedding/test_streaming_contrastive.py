"""The streaming (chunked) SupCon and SigLIP paths, and ``impl=`` on the softmax-family
losses, against the direct PyTorch path: values and gradients in float64."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from rankloss._core.candidates import build_candidates
from rankloss.functional import siglip_loss, siglip_per_anchor, supcon_loss
from rankloss.functional.embedding import chunked_supcon_per_anchor
from rankloss.functional.siglip import chunked_siglip_loss, chunked_siglip_per_anchor
from rankloss.losses import InfoNCELoss, NTXentLoss, SigLIPLoss, SupConLoss

TOL = {"rtol": 1e-10, "atol": 1e-10}


def _inputs(seed: int, n: int = 13, d: int = 5):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g, dtype=torch.float64)
    y = torch.randn(n, d, generator=g, dtype=torch.float64)
    labels = torch.randint(0, 4, (n,), generator=g)
    labels[-1] = 99  # a row with no positive in the labels form
    hard = torch.randn(n, 2, d, generator=g, dtype=torch.float64)
    ref = torch.randn(3, d, generator=g, dtype=torch.float64)
    return x, y, labels, hard, ref


CALLS = {
    "labels": lambda x, y, lab, hard, ref: ((x, lab), {}),
    "labels+refs": lambda x, y, lab, hard, ref: ((x, lab), {"ref_embeddings": ref}),
    "labels+hard": lambda x, y, lab, hard, ref: ((x, lab), {"hard_negatives": hard}),
    "keys": lambda x, y, lab, hard, ref: ((x,), {"keys": y}),
    "keys+hard": lambda x, y, lab, hard, ref: ((x,), {"keys": y, "hard_negatives": hard}),
    "keys+labels": lambda x, y, lab, hard, ref: ((x, lab), {"keys": y}),
}


def _run(loss, call, seed=0):
    x, y, lab, hard, ref = _inputs(seed)
    tensors = [t.clone().requires_grad_() for t in (x, y, hard)]
    args, kwargs = CALLS[call](tensors[0], tensors[1], lab, tensors[2], ref)
    loss.zero_grad(set_to_none=True)
    value = loss(*args, **kwargs)
    value.backward()
    grads = [t.grad if t.grad is not None else torch.zeros_like(t) for t in tensors]
    params = [p.grad for p in loss.parameters()]
    return value.detach(), grads, params


LOSSES = [
    ("supcon", SupConLoss, {"temperature": 0.3}),
    ("siglip-fixed", SigLIPLoss, {"learnable": False, "scale": 3.0, "bias": -1.0}),
    ("siglip-learnable", SigLIPLoss, {}),
    ("info_nce", InfoNCELoss, {"temperature": 0.2, "learnable_temperature": True}),
    ("clip", InfoNCELoss, {"symmetric": True}),
    ("nt_xent", NTXentLoss, {"temperature": 0.4}),
]
STREAM_CASES = [
    (name, cls, kwargs, call)
    for name, cls, kwargs in LOSSES
    for call in CALLS
    if "keys" in call or not kwargs.get("symmetric")  # symmetric: the keys form only
]


@pytest.mark.parametrize(
    "cls,kwargs,call",
    [case[1:] for case in STREAM_CASES],
    ids=[f"{name}-{call}" for name, _, _, call in STREAM_CASES],
)
@pytest.mark.parametrize("similarity", ["cosine", "dot"])
def test_streaming_matches_direct(cls, kwargs, call, similarity):
    direct = cls(similarity=similarity, impl="torch", **kwargs).double()
    for chunk in (1, 4, 64):
        streamed = cls(similarity=similarity, impl="streaming", chunk_size=chunk, **kwargs)
        streamed = streamed.double()
        a_value, a_grads, a_params = _run(direct, call)
        b_value, b_grads, b_params = _run(streamed, call)
        torch.testing.assert_close(b_value, a_value, **TOL)
        for a, b in zip(a_grads + a_params, b_grads + b_params):
            torch.testing.assert_close(b, a, **TOL)


def test_chunk_size_with_auto_streams_and_impl_streaming_defaults_its_chunk():
    loss = SupConLoss(chunk_size=8)
    x, _, lab, _, _ = _inputs(1)
    cand = build_candidates(x, lab)
    assert loss._choose_impl(cand) == "streaming"
    assert SupConLoss()._choose_impl(cand) == "torch"
    assert SupConLoss(impl="streaming")._choose_impl(cand) == "streaming"


@pytest.mark.parametrize("reduction", ["none", "sum"])
def test_chunked_functions_match_the_matrix_functions(reduction):
    x, y, lab, hard, _ = _inputs(2)
    cand = build_candidates(x, lab, hard_negatives=hard)
    s = F.normalize(cand.queries, dim=1) @ F.normalize(cand.keys, dim=1).T
    pos, neg = cand.masks()
    values, valid = chunked_supcon_per_anchor(cand, temperature=0.5, chunk_size=3)
    expected = supcon_loss(s, pos, neg, temperature=0.5, reduction="none")
    torch.testing.assert_close(torch.where(valid, values, 0), expected, **TOL)
    assert valid.tolist() == pos.any(1).tolist() and not valid[-1]
    values, valid = chunked_siglip_per_anchor(cand, scale=2.0, bias=0.5, chunk_size=5)
    ref_values, ref_valid = siglip_per_anchor(s, pos, neg, scale=2.0, bias=0.5)
    torch.testing.assert_close(values, ref_values, **TOL)
    assert valid.tolist() == ref_valid.tolist()


def test_gradcheck_streaming_siglip_bias_and_scale():
    x, _, lab, _, _ = _inputs(3, n=6, d=3)
    x.requires_grad_()
    scale = torch.tensor(2.0, dtype=torch.float64, requires_grad=True)
    bias = torch.tensor(-0.5, dtype=torch.float64, requires_grad=True)

    def fn(x, scale, bias):
        cand = build_candidates(x, lab)
        return chunked_siglip_per_anchor(cand, scale=scale, bias=bias, chunk_size=4)[0].sum()

    assert torch.autograd.gradcheck(fn, (x, scale, bias))


def test_gradcheck_streaming_supcon_temperature():
    x, _, lab, _, _ = _inputs(4, n=6, d=3)
    x.requires_grad_()
    temperature = torch.tensor(0.5, dtype=torch.float64, requires_grad=True)

    def fn(x, temperature):
        cand = build_candidates(x, lab)
        return chunked_supcon_per_anchor(cand, temperature=temperature, chunk_size=4)[0].sum()

    assert torch.autograd.gradcheck(fn, (x, temperature))


def test_half_inputs_compute_in_float32():
    x, _, lab, _, _ = _inputs(5)
    direct = SupConLoss(impl="torch")(x.float(), lab)
    half = SupConLoss(impl="streaming", chunk_size=4)(x.half(), lab)
    assert half.dtype == torch.float32
    torch.testing.assert_close(half, direct, rtol=1e-2, atol=1e-2)


def test_in_batch_info_nce_fast_path_equals_the_general_path():
    x, y, _, hard, _ = _inputs(6)
    loss = InfoNCELoss(temperature=0.1, impl="torch").double()
    for kwargs in ({}, {"hard_negatives": hard}):
        cand = build_candidates(x, keys=y, **kwargs)
        fast, fast_valid = loss._per_anchor(cand)
        s = F.normalize(cand.queries, dim=1) @ F.normalize(cand.keys, dim=1).T
        pos, neg = cand.masks()
        from rankloss.functional.embedding import info_nce_per_anchor

        general, valid = info_nce_per_anchor(s, pos, neg, temperature=0.1)
        torch.testing.assert_close(fast, general, rtol=1e-12, atol=1e-12)
        assert fast_valid.tolist() == valid.tolist()
    expected = F.cross_entropy(
        (F.normalize(x, dim=1) @ F.normalize(y, dim=1).T) / 0.1, torch.arange(len(x))
    )
    torch.testing.assert_close(loss(x, keys=y), expected, rtol=1e-12, atol=1e-12)
    # One key: no negative, nothing to learn from (a connected zero).
    one = loss(x[:1].clone().requires_grad_(), keys=y[:1])
    assert one.item() == 0.0


@pytest.mark.badinput("losses")
def test_forced_paths_that_do_not_exist_fail_at_construction():
    for cls in (InfoNCELoss, NTXentLoss, SupConLoss, SigLIPLoss):
        for impl in ("streaming", "triton"):
            with pytest.raises(ValueError, match=rf"^{cls.__name__}: similarity must be one of"):
                cls(similarity="neg_euclidean", impl=impl)
        with pytest.raises(ValueError, match=rf"^{cls.__name__}: impl must be one of"):
            cls(impl="gpu")  # type: ignore[arg-type]


@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("weighted", [False, True])
def test_reduced_streaming_siglip_equals_the_reduced_matrix_form(reduction, weighted):
    # The written-out gradients of queries, keys, hard negatives, scale and bias against
    # autograd through the [N, M] form.
    x, y, lab, hard, _ = _inputs(5)
    weights = torch.rand(len(lab), generator=torch.Generator().manual_seed(1), dtype=x.dtype)
    weights = weights if weighted else None
    results = []
    for streamed in (False, True):
        leaves = [t.clone().requires_grad_() for t in (x, hard)]
        scale = torch.tensor(2.5, dtype=torch.float64, requires_grad=True)
        bias = torch.tensor(-1.5, dtype=torch.float64, requires_grad=True)
        cand = build_candidates(leaves[0], lab, hard_negatives=leaves[1])
        if streamed:
            value = chunked_siglip_loss(
                cand, scale=scale, bias=bias, chunk_size=5, weights=weights, reduction=reduction
            )
        else:
            s = F.normalize(cand.queries, dim=1) @ F.normalize(cand.keys, dim=1).T
            pos, neg = cand.masks()
            value = siglip_loss(
                s, pos, neg, scale=scale, bias=bias, weights=weights, reduction=reduction
            )
        value.backward()
        results.append([value.detach(), *(t.grad for t in leaves), scale.grad, bias.grad])
    for a, b in zip(*results, strict=True):
        torch.testing.assert_close(b, a, **TOL)


def test_gradcheck_reduced_streaming_siglip():
    x, _, lab, _, _ = _inputs(3, n=6, d=3)
    x.requires_grad_()
    scale = torch.tensor(2.0, dtype=torch.float64, requires_grad=True)
    bias = torch.tensor(-0.5, dtype=torch.float64, requires_grad=True)

    def fn(x, scale, bias):
        cand = build_candidates(x, lab)
        return chunked_siglip_loss(cand, scale=scale, bias=bias, chunk_size=4)

    assert torch.autograd.gradcheck(fn, (x, scale, bias))


def test_reduced_streaming_siglip_without_gradients_and_per_anchor():
    x, _, lab, _, _ = _inputs(6)
    cand = build_candidates(x.clone().requires_grad_(), lab)
    with torch.no_grad():
        quiet = chunked_siglip_loss(cand, chunk_size=4)
    assert not quiet.requires_grad
    torch.testing.assert_close(quiet, chunked_siglip_loss(cand, chunk_size=4).detach(), **TOL)
    values = chunked_siglip_loss(cand, chunk_size=4, reduction="none")
    assert values.shape == (len(lab),)
    torch.testing.assert_close(values.mean(), quiet, **TOL)  # every anchor has a pair

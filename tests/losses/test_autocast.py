"""Every registered loss computes in float32 under ``torch.autocast`` (docs/conventions.md).

Under CPU autocast to bfloat16, a matrix product of float32 tensors is rounded to bfloat16
(circle and supcon were off by ~1e-3 relative). Each loss must return float32 equal to its
float32 value outside autocast, close to float64, with float32 or bfloat16 inputs, and its
gradient must match too. Inputs are built per kind, so a newly registered loss is covered.
"""

from __future__ import annotations

import inspect
from typing import Any

import pytest
import torch
from torch import Tensor

from rankloss._core.candidates import build_candidates
from rankloss._core.similarity import SIMILARITIES, pairwise_similarity
from rankloss.functional import chunked_info_nce_loss
from rankloss.losses import LOSSES, CircleLoss, InfoNCELoss, NTXentLoss, SupConLoss, available, get
from tests.losses._cases import hyper

pytestmark = pytest.mark.badinput("losses")

Call = tuple[tuple[Any, ...], dict[str, Any]]


def _calls(name: str) -> list[tuple[str, Call]]:
    """Float32 inputs in each call form of ``name``'s kind, with an id for each form."""
    g = torch.Generator().manual_seed(7)
    cls = LOSSES.get(name)
    if cls.kind == "list":
        scores = torch.randn(3, 6, generator=g) * 3
        labels = torch.randint(0, 4, (3, 6), generator=g).float()
        mask = torch.ones(3, 6, dtype=torch.bool)
        mask[1, 4:] = False
        return [("lists", ((scores, labels, mask), {}))]
    if cls.kind == "embedding":
        embeddings = torch.randn(12, 24, generator=g)
        labels = torch.arange(6).repeat_interleave(2)
        keys = embeddings + 0.3 * torch.randn(12, 24, generator=g)
        forms = [
            ("labels", ((embeddings, labels), {})),
            ("keys", ((embeddings,), {"keys": keys})),
        ]
        return forms[:1] if LOSSES.entry(name).family == "proxy" else forms  # no keys form
    takes = len(inspect.signature(cls.forward).parameters) - 1  # without self
    logits = tuple(torch.randn(10, generator=g) * 4 for _ in range(takes))
    return [("logits", (logits, {}))]


CASES = [
    pytest.param(name, call, id=f"{name}-{form}")
    for name in available()
    for form, call in _calls(name)
]


def _build(name: str) -> torch.nn.Module:
    if LOSSES.get(name).kind == "list":
        return get(name, **hyper(name))
    # Proxy losses need their sizes: 6 classes of 24-dimensional embeddings, as in _calls.
    example = LOSSES.entry(name).meta["info"].example
    sizes = {"num_classes": 6, "embedding_size": 24}
    return get(name, **{**example, **{k: v for k, v in sizes.items() if k in example}})


def _map(call: Call, fn) -> Call:
    """``call`` with ``fn`` applied to each floating-point tensor."""

    def one(value: Any) -> Any:
        if isinstance(value, Tensor) and value.is_floating_point():
            return fn(value)
        return value

    args, kwargs = call
    return tuple(one(a) for a in args), {k: one(v) for k, v in kwargs.items()}


def _leaves(call: Call) -> Call:
    return _map(call, lambda t: t.detach().clone().requires_grad_(True))


def _value(loss: torch.nn.Module, call: Call) -> Tensor:
    args, kwargs = call
    return loss(*args, **kwargs)


def _grads(value: Tensor, call: Call) -> list[Tensor]:
    """Gradients of ``call``'s leaf inputs that get one (labels of most list losses do not);
    call it outside autocast, as PyTorch recommends for backward passes."""
    args, kwargs = call
    value.backward()
    inputs = [t for t in (*args, *kwargs.values()) if isinstance(t, Tensor) and t.requires_grad]
    grads = [t.grad for t in inputs if t.grad is not None]
    assert grads, "no input got a gradient"
    return grads


def test_every_kind_is_covered():
    kinds = {LOSSES.get(name).kind for name in available()}
    assert kinds == {"list", "embedding", "adversarial"}
    assert len(CASES) == len(available(kind="list")) + len(available(kind="adversarial")) + 2 * (
        len(available(kind="embedding"))
    ) - len(available("proxy"))


@pytest.mark.parametrize(("name", "call"), CASES)
def test_float32_inputs_under_autocast_compute_in_float32(name: str, call: Call):
    loss = _build(name)
    outside = _leaves(call)
    expected = _value(loss, outside)
    expected_grads = _grads(expected, outside)
    reference = _value(loss, _map(call, lambda t: t.double()))
    inside = _leaves(call)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        value = _value(loss, inside)
    grads = _grads(value, inside)
    assert value.dtype == torch.float32
    torch.testing.assert_close(value, expected, rtol=1e-6, atol=1e-7)
    for grad, expected_grad in zip(grads, expected_grads):
        assert grad.dtype == torch.float32
        torch.testing.assert_close(grad, expected_grad, rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(value.double(), reference, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(("name", "call"), CASES)
def test_bfloat16_inputs_under_autocast_compute_in_float32(name: str, call: Call):
    """Inputs as a model under autocast gives them: bfloat16, computed as their float32 value."""
    loss = _build(name)
    half = _map(call, lambda t: t.to(torch.bfloat16))
    expected = _value(loss, _map(half, lambda t: t.float()))
    reference = _value(loss, _map(half, lambda t: t.double()))
    inside = _leaves(half)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        value = _value(loss, inside)
    grads = _grads(value, inside)
    assert value.dtype == torch.float32
    torch.testing.assert_close(value, expected, rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(value.double(), reference, rtol=1e-4, atol=1e-5)
    for grad in grads:
        assert grad.dtype == torch.bfloat16 and bool(torch.isfinite(grad).all())


@pytest.mark.parametrize("loss", [CircleLoss(), SupConLoss()], ids=["circle", "supcon"])
def test_documented_cases_match_float64_under_autocast(loss: torch.nn.Module):
    """The losses of the report, on a small clustered batch (as trained embeddings are):
    similarities rounded to bfloat16 moved circle by 5% and supcon by 0.8% of their value."""
    g = torch.Generator().manual_seed(0)
    labels = torch.arange(4).repeat_interleave(2)
    embeddings = torch.randn(4, 32, generator=g)[labels] + 0.8 * torch.randn(8, 32, generator=g)
    for given in (embeddings, embeddings.bfloat16()):  # float32, or bfloat16 from a model
        with torch.autocast("cpu", dtype=torch.bfloat16):
            value = loss(given, labels)
        reference = loss(given.double(), labels)
        assert value.dtype == torch.float32
        assert abs(value.item() - reference.item()) <= 1e-3 * abs(reference.item())


@pytest.mark.parametrize("kind", SIMILARITIES)
def test_pairwise_similarity_is_float32_under_autocast(kind: str):
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(9, 40, generator=g), torch.randn(7, 40, generator=g)
    expected = pairwise_similarity(x, y, kind)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        value = pairwise_similarity(x, y, kind)
        from_half = pairwise_similarity(x.bfloat16(), y.bfloat16(), kind)
    assert value.dtype == from_half.dtype == torch.float32
    torch.testing.assert_close(value, expected, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(
        from_half, pairwise_similarity(x.bfloat16().float(), y.bfloat16().float(), kind)
    )


@pytest.mark.parametrize("similarity", ["dot", "cosine"])
def test_chunked_info_nce_is_float32_under_autocast(similarity: str):
    """The chunked path (forward and its hand-written backward) with autocast on."""
    g = torch.Generator().manual_seed(2)
    queries, keys = torch.randn(10, 16, generator=g), torch.randn(10, 16, generator=g)
    unchunked = InfoNCELoss(similarity=similarity)
    chunked = InfoNCELoss(similarity=similarity, chunk_size=3)
    call: Call = ((queries,), {"keys": keys})
    for module in (chunked, NTXentLoss(similarity=similarity, chunk_size=3)):
        outside = _leaves(call)
        expected = _value(module, outside)
        expected_grads = _grads(expected, outside)
        inside = _leaves(call)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            value = _value(module, inside)
            # the hand-written backward also runs autocast off, even called in the region
            grads = _grads(value, inside)
        assert value.dtype == torch.float32
        torch.testing.assert_close(value, expected, rtol=1e-6, atol=1e-7)
        for grad, expected_grad in zip(grads, expected_grads):
            torch.testing.assert_close(grad, expected_grad, rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(_value(chunked, call), _value(unchunked, call))
    candidates = build_candidates(queries.bfloat16(), keys=keys.bfloat16(), where="test")
    with torch.autocast("cpu", dtype=torch.bfloat16):
        functional = chunked_info_nce_loss(candidates, similarity=similarity, chunk_size=4)
    assert functional.dtype == torch.float32
    torch.testing.assert_close(
        functional,
        chunked_info_nce_loss(candidates, similarity=similarity, chunk_size=4),
        rtol=1e-6,
        atol=1e-7,
    )

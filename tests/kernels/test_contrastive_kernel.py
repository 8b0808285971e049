"""The fused contrastive kernels (``impl="triton"``) against the direct PyTorch path.

On a machine without CUDA they run in Triton's interpreter (``TRITON_INTERPRET=1``, set by this
folder's ``conftest.py`` before the kernel module is imported). Small sizes and blocks of 16:
the interpreter runs each program in NumPy.
"""

from __future__ import annotations

import os

import pytest
import torch

pytest.importorskip("triton", reason="triton is not installed")

from rankloss._core.candidates import build_candidates  # noqa: E402
from rankloss.functional import embedding as F  # noqa: E402
from rankloss.functional import siglip as siglip_functional  # noqa: E402
from rankloss.kernels import contrastive  # noqa: E402
from rankloss.losses import InfoNCELoss, NTXentLoss, SigLIPLoss, SupConLoss  # noqa: E402

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
if DEVICE == "cpu" and os.environ.get("TRITON_INTERPRET", "0") in ("", "0"):
    pytest.skip("no CUDA and TRITON_INTERPRET is not set", allow_module_level=True)

N, D = 29, 20  # uneven: neither a multiple of the 16-blocks
FUSED = contrastive.fused_per_anchor  # before the fixture below patches it


@pytest.fixture(autouse=True)
def _small_blocks(monkeypatch):
    original = contrastive.fused_per_anchor

    def small(*args, **kwargs):
        # d = 20 in chunks of 16: two chunks, the second part padding
        for name in ("block_n", "block_m", "block_k", "block_acc", "block_sweep"):
            kwargs.setdefault(name, 16)
        return original(*args, **kwargs)

    monkeypatch.setattr(contrastive, "fused_per_anchor", small)


def _inputs(dtype=torch.float32):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(N, D, generator=g).to(DEVICE, dtype)
    y = torch.randn(N, D, generator=g).to(DEVICE, dtype)
    labels = torch.randint(0, 6, (N,), generator=g).to(DEVICE)
    labels[-1] = 99  # no positive in the labels form
    hard = torch.randn(N, 2, D, generator=g).to(DEVICE, dtype)
    return x, y, labels, hard


def _run(loss, call, dtype):
    x, y, labels, hard = _inputs(dtype)
    x, y, hard = (t.clone().requires_grad_() for t in (x, y, hard))
    kwargs = {"hard_negatives": hard}
    if call == "keys":
        value = loss(x, keys=y, **kwargs)
    elif call == "keys+labels":
        value = loss(x, labels, keys=y, **kwargs)
    else:
        value = loss(x, labels, **kwargs)
    loss.zero_grad(set_to_none=True)
    value.backward()
    grads = [t.grad if t.grad is not None else torch.zeros_like(t) for t in (x, y, hard)]
    return value.detach(), grads + [p.grad for p in loss.parameters()]


CASES = [
    (InfoNCELoss, {"temperature": 0.1, "learnable_temperature": True}, "keys"),
    (InfoNCELoss, {"temperature": 0.2}, "keys+labels"),
    (InfoNCELoss, {"false_negatives": "positive"}, "keys+labels"),
    (InfoNCELoss, {"learnable_temperature": True}, "labels"),
    (InfoNCELoss, {"symmetric": True, "learnable_temperature": True}, "keys"),
    (NTXentLoss, {"learnable_temperature": True}, "keys"),
    (NTXentLoss, {"similarity": "dot", "temperature": 5.0}, "keys+labels"),
    (SupConLoss, {"temperature": 0.3}, "labels"),
    (SupConLoss, {"similarity": "dot", "temperature": 4.0}, "keys"),
    (SigLIPLoss, {}, "keys"),
    (SigLIPLoss, {"similarity": "dot", "scale": 0.5, "bias": 1.0}, "labels"),
]


@pytest.mark.parametrize(
    "cls,kwargs,call",
    CASES,
    ids=[f"{c.__name__}-{call}-{i}" for i, (c, _, call) in enumerate(CASES)],
)
def test_kernel_matches_torch_fp32(cls, kwargs, call):
    direct = cls(impl="torch", **kwargs).to(DEVICE)
    fused = cls(impl="triton", **kwargs).to(DEVICE)
    a_value, a_grads = _run(direct, call, torch.float32)
    b_value, b_grads = _run(fused, call, torch.float32)
    torch.testing.assert_close(b_value, a_value, rtol=1e-5, atol=1e-5)
    assert len(a_grads) == len(b_grads)
    for a, b in zip(a_grads, b_grads):
        torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("kind", list(contrastive.KINDS))
def test_per_anchor_values_and_validity(kind):
    x, y, labels, _ = _inputs()
    cand = build_candidates(x, labels)
    loss = {"info_nce": InfoNCELoss, "supcon": SupConLoss, "siglip": SigLIPLoss}[kind]
    values, valid = contrastive.fused_per_anchor(
        kind,
        torch.nn.functional.normalize(x, dim=1),
        torch.nn.functional.normalize(x, dim=1),
        cand,
        bias=-1.0,
        block_n=16,
        block_m=16,
    )
    assert values.shape == (N,) and valid.dtype == torch.bool
    positive, negative = cand.masks()
    if kind == "siglip":
        assert valid.tolist() == (positive | negative).any(1).tolist()
    else:
        assert valid.tolist() == positive.any(1).tolist()
    assert not valid[-1] if kind != "siglip" else valid[-1]
    assert (values[~valid] == 0).all() and torch.isfinite(values).all()
    assert loss is not None


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_inputs(dtype):
    for cls, call in ((InfoNCELoss, "keys"), (SupConLoss, "labels"), (SigLIPLoss, "keys")):
        try:
            b_value, b_grads = _run(cls(impl="triton").to(DEVICE), call, dtype)
        except Exception as error:  # the interpreter's NumPy may lack a dtype
            if DEVICE == "cpu":
                pytest.skip(f"Triton's interpreter does not run {dtype}: {error}")
            raise
        a_value, a_grads = _run(cls(impl="torch").to(DEVICE), call, torch.float32)
        torch.testing.assert_close(b_value.float(), a_value, rtol=2e-2, atol=2e-2)
        for a, b in zip(a_grads[:2], b_grads[:2]):
            assert b.dtype == dtype
            torch.testing.assert_close(b.float(), a, rtol=5e-2, atol=5e-3)


BLOCKS = [
    {},  # default_blocks(d)
    {"block_n": 32, "block_m": 16, "block_k": 16, "block_acc": 32, "block_sweep": 16},
    {
        "block_n": 16,
        "block_m": 32,
        "block_k": 64,
        "block_acc": 16,
        "block_sweep": 32,
        "num_warps": 2,
    },
]


def _direct_per_anchor(kind, queries, keys, cand):
    """The per-anchor values of the PyTorch forms on the full ``[N, M]`` logits."""
    sim = queries @ keys.T
    positive, negative = cand.masks()
    if kind == "info_nce":
        return F.info_nce_per_anchor(sim, positive, negative, temperature=1.0)
    if kind == "supcon":
        values = F.supcon_loss(sim, positive, negative, temperature=1.0, reduction="none")
        return values, positive.any(1)
    return siglip_functional.siglip_per_anchor(sim, positive, negative, scale=1.0, bias=-1.0)


@pytest.mark.parametrize("d", [20, 100])
@pytest.mark.parametrize("blocks", BLOCKS, ids=["default", "wide-n", "wide-m"])
@pytest.mark.parametrize("kind", list(contrastive.KINDS))
@pytest.mark.parametrize("form", ["keys", "labels"])
def test_any_tiling_gives_the_same_values_and_gradients(form, kind, blocks, d):
    """Every tiling (tiles of n x m rows, chunks of d, backward blocks) against the direct
    form, with d a multiple of no chunk; the keys form takes InfoNCE's diagonal shortcut."""
    g = torch.Generator().manual_seed(1)
    x = torch.nn.functional.normalize(torch.randn(N, d, generator=g), dim=1).to(DEVICE)
    y = torch.nn.functional.normalize(torch.randn(N, d, generator=g), dim=1).to(DEVICE)
    labels = torch.randint(0, 5, (N,), generator=g).to(DEVICE)
    weights = torch.arange(1.0, N + 1, device=DEVICE)
    results = []
    for fused in (True, False):
        q = x.clone().requires_grad_()
        k = y.clone().requires_grad_() if form == "keys" else q
        if form == "keys":
            cand = build_candidates(q, keys=k)
        else:
            cand = build_candidates(q, labels)
        if fused:
            values, valid = FUSED(kind, q / 0.1, k, cand, bias=-1.0, **blocks)
        else:
            values, valid = _direct_per_anchor(kind, q / 0.1, k, cand)
        (values * weights).sum().backward()
        grads = [q.grad] + ([k.grad] if form == "keys" else [])
        results.append((values.detach().float(), valid, grads))
    (got, got_valid, got_grads), (want, want_valid, want_grads) = results
    assert got_valid.tolist() == want_valid.tolist()
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    for a, b in zip(got_grads, want_grads):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_default_blocks_shrink_the_backward_blocks_as_d_grows():
    blocks = contrastive.default_blocks(128)
    assert blocks == contrastive.Blocks(n=64, m=64, k=64, acc=64, sweep=64)
    assert contrastive.default_blocks(20).k == 32  # a chunk no wider than d needs
    assert contrastive.default_blocks(256).acc == contrastive.default_blocks(256).sweep == 32
    assert contrastive.default_blocks(512).acc == 16
    assert contrastive.default_blocks(4096).sweep == 16
    for d in (8, 100, 512, 3000):
        blocks = contrastive.default_blocks(d)
        assert (blocks.n, blocks.m) == (64, 64)  # the forward keeps its tiles: d is chunked
        limit = max(contrastive.BACKWARD_ENTRIES, 16 * contrastive._block_d(d))
        assert max(blocks.acc, blocks.sweep) * contrastive._block_d(d) <= limit


@pytest.mark.badinput("losses")
@pytest.mark.parametrize("name", ["block_n", "block_m", "block_k", "block_acc", "block_sweep"])
@pytest.mark.parametrize("value", [8, 24, 0])
def test_bad_blocks_are_refused(name, value):
    x, _, labels, _ = _inputs()
    cand = build_candidates(x, labels)
    with pytest.raises(ValueError, match=f"fused_per_anchor: {name} must be a power of two"):
        FUSED("supcon", x, x, cand, **{name: value})


@pytest.mark.badinput("losses")
def test_unknown_kind_and_unfused_similarity_are_refused():
    x, _, labels, _ = _inputs()
    with pytest.raises(ValueError, match="kind must be one of"):
        contrastive.fused_per_anchor("triplet", x, x, build_candidates(x, labels))
    with pytest.raises(ValueError, match="impl='triton'"):
        SupConLoss(similarity="neg_euclidean", impl="triton")


@pytest.mark.parametrize("cls", [InfoNCELoss, SupConLoss, SigLIPLoss], ids=lambda c: c.__name__)
def test_a_second_derivative_is_refused_not_wrong(cls):
    x = torch.randn(8, 16, device=DEVICE, requires_grad=True)
    labels = torch.tensor([0, 1, 0, 2, 1, 3, 0, 2], device=DEVICE)
    value = cls(impl="triton").to(DEVICE)(torch.tanh(x), labels)
    # The gradient itself can be read; a second derivative through it is refused.
    (grad,) = torch.autograd.grad(value, x, create_graph=True)
    assert torch.isfinite(grad).all()
    with pytest.raises(RuntimeError, match=r"impl='triton'.*first-order gradients only"):
        grad.pow(2).sum().backward()

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
from rankloss.kernels import contrastive  # noqa: E402
from rankloss.losses import InfoNCELoss, NTXentLoss, SigLIPLoss, SupConLoss  # noqa: E402

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
if DEVICE == "cpu" and os.environ.get("TRITON_INTERPRET", "0") in ("", "0"):
    pytest.skip("no CUDA and TRITON_INTERPRET is not set", allow_module_level=True)

N, D = 29, 20  # uneven: neither a multiple of the 16-blocks


@pytest.fixture(autouse=True)
def _small_blocks(monkeypatch):
    original = contrastive.fused_per_anchor

    def small(*args, **kwargs):
        kwargs.setdefault("block_n", 16)
        kwargs.setdefault("block_m", 16)
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


@pytest.mark.badinput("losses")
def test_unknown_kind_and_unfused_similarity_are_refused():
    x, _, labels, _ = _inputs()
    with pytest.raises(ValueError, match="kind must be one of"):
        contrastive.fused_per_anchor("triplet", x, x, build_candidates(x, labels))
    with pytest.raises(ValueError, match="impl='triton'"):
        SupConLoss(similarity="neg_euclidean", impl="triton")

"""The fused pairwise kernel (``impl="triton"``) against the direct PyTorch path.

Run in Triton's interpreter on CPU (``TRITON_INTERPRET=1``, set here before the kernel module
is imported: Triton reads it when a kernel is defined). Small sizes only: the interpreter runs
each program in NumPy.
"""

from __future__ import annotations

import os

import pytest
import torch

# Without CUDA the kernel runs in Triton's interpreter. Triton reads TRITON_INTERPRET when it
# and the kernel module are imported, the dispatcher at each call: it is set for the imports
# below (then restored) and for each test of this module (the fixture), nowhere else.
INTERPRET = not torch.cuda.is_available() or os.environ.get("TRITON_INTERPRET", "0") != "0"
DEVICE = "cpu" if INTERPRET else "cuda"
_before = os.environ.get("TRITON_INTERPRET")
if INTERPRET:
    os.environ["TRITON_INTERPRET"] = "1"
pytest.importorskip("triton", reason="triton is not installed")
import rankloss.kernels.pairwise  # noqa: E402,F401

if _before is None:
    os.environ.pop("TRITON_INTERPRET", None)
else:
    os.environ["TRITON_INTERPRET"] = _before

import rankloss.functional as RF  # noqa: E402
from rankloss.losses import LambdaLoss  # noqa: E402


@pytest.fixture(autouse=True)
def _interpreter(monkeypatch):
    if INTERPRET:
        monkeypatch.setenv("TRITON_INTERPRET", "1")


CASES = [
    pytest.param(RF.ranknet_loss, {}, id="ranknet"),
    pytest.param(RF.ranknet_loss, {"k": 5, "sigma": 1.5}, id="ranknet-k"),
    pytest.param(RF.bpr_loss, {"relevance_threshold": 2.0}, id="bpr"),
    pytest.param(RF.lambdarank_loss, {"k": 7}, id="lambdarank-k"),
    pytest.param(RF.lambdaloss_loss, {}, id="lambdaloss-ndcg_loss2pp"),
    pytest.param(RF.lambdaloss_loss, {"weighting": "ndcg_loss2", "k": 4}, id="lambdaloss-ndcg2-k"),
    pytest.param(RF.lambdaloss_loss, {"weighting": "lambdarank", "gain": "linear"}, id="ll-lr"),
    pytest.param(
        RF.pairwise_loss,
        {"weight": "ndcg_loss2pp", "mu": 2.0, "pair_reduction": "mean"},
        id="pairwise-mean",
    ),
]


def _batch(dtype: torch.dtype, n: int = 70):
    g = torch.Generator().manual_seed(0)
    scores = torch.randn(3, n, generator=g, dtype=torch.float64)
    scores[0, :6] = scores[0, 6:12]  # tied scores
    labels = torch.randint(0, 4, (3, n), generator=g).to(torch.float64)
    mask = torch.rand(3, n, generator=g) > 0.2
    mask[2, n // 2 :] = False  # a padded tail
    scores = torch.where(mask, scores, torch.tensor(float("nan"), dtype=torch.float64))
    weights = torch.rand(3, n, generator=g, dtype=torch.float64) + 0.5
    return (x.to(DEVICE) for x in (scores.to(dtype), labels.to(dtype), mask, weights.to(dtype)))


def _value_and_grad(fn, scores, *args, weights=None, **kwargs):
    """The value, the gradient of the scores and (given weights) of the weights."""
    s = scores.detach().clone().requires_grad_(True)
    inputs = [s]
    if weights is not None:
        weights = weights.detach().clone().requires_grad_(True)
        inputs.append(weights)
    value = fn(s, *args, weights=weights, **kwargs)
    # reduction="none" leaves per-list weights out of the graph: their gradient is zero.
    grads = torch.autograd.grad(value.sum(), inputs, allow_unused=True, materialize_grads=True)
    return (value.detach(), *grads)


@pytest.mark.parametrize(("fn", "kwargs"), CASES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
def test_kernel_equals_direct(fn, kwargs, dtype):
    scores, labels, mask, weights = _batch(dtype)
    common = dict(weights=weights, reduction="none", **kwargs)
    direct = _value_and_grad(fn, scores, labels, mask, impl="torch", **common)
    kernel = _value_and_grad(fn, scores, labels, mask, impl="triton", tile_size=32, **common)
    tol = 1e-10 if dtype == torch.float64 else 2e-5
    assert len(kernel) == len(direct) == 3
    for got, expected in zip(kernel, direct, strict=True):
        torch.testing.assert_close(got, expected, rtol=tol, atol=tol)
    assert (kernel[1][~mask] == 0).all() and kernel[1].abs().sum() > 0


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
def test_large_score_gaps_agree_with_the_direct_path(dtype):
    """Gaps beyond softplus's threshold (|sigma (s_i - s_j)| > 20), both ways round: the
    sigmoid branches of the gradient."""
    scores, labels, mask, weights = _batch(dtype)
    scores = scores * 15.0
    common = dict(weights=weights, reduction="none", sigma=2.0)
    for fn in (RF.ranknet_loss, RF.lambdaloss_loss):
        direct = _value_and_grad(fn, scores, labels, mask, impl="torch", **common)
        kernel = _value_and_grad(fn, scores, labels, mask, impl="triton", tile_size=16, **common)
        tol = 1e-10 if dtype == torch.float64 else 2e-5
        for got, expected in zip(kernel, direct, strict=True):
            torch.testing.assert_close(got, expected, rtol=tol, atol=tol)


def test_half_scores_are_upcast_and_the_module_runs_the_kernel():
    scores, labels, mask, _ = _batch(torch.float32, n=40)
    scores = torch.where(mask, scores, 0.0).to(torch.bfloat16)
    module = LambdaLoss(impl="triton", tile_size=16)
    kernel = _value_and_grad(module, scores, labels, mask)
    direct = _value_and_grad(LambdaLoss(impl="torch"), scores, labels, mask)
    assert kernel[0].dtype == torch.float32 and kernel[1].dtype == torch.bfloat16
    torch.testing.assert_close(kernel[0], direct[0], rtol=2e-5, atol=2e-5)
    torch.testing.assert_close(kernel[1], direct[1])


def test_all_masked_lists_give_zero():
    scores = torch.randn(2, 20, device=DEVICE, requires_grad=True)
    labels = torch.randint(0, 3, (2, 20), device=DEVICE).float()
    mask = torch.zeros(2, 20, dtype=torch.bool, device=DEVICE)
    value = RF.ranknet_loss(scores, labels, mask, impl="triton", tile_size=16)
    (grad,) = torch.autograd.grad(value, scores)
    assert value.item() == 0.0 and (grad == 0).all()


def test_a_second_derivative_is_refused_not_wrong():
    x = torch.randn(2, 9, dtype=torch.float64, device=DEVICE, requires_grad=True)
    labels = torch.randint(0, 3, (2, 9), device=DEVICE).double()
    value = RF.ranknet_loss(torch.tanh(x), labels, impl="triton")
    # The gradient itself can be read; a second derivative through it is refused.
    (grad,) = torch.autograd.grad(value, x, create_graph=True)
    assert torch.isfinite(grad).all()
    with pytest.raises(RuntimeError, match=r"impl='triton'.*first-order gradients only"):
        grad.pow(2).sum().backward()

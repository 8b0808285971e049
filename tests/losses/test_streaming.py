"""The streaming path (``impl="streaming"``) against the direct one (``impl="torch"``).

Every pairwise preset, pair term and pair weight and ApproxNDCG, computed over tiles of a
size that does not divide the list length, must give the direct path's values and gradients:
float64 to 1e-10, float32 to rounding, with padding garbage, all-masked lists, ties, ``k``,
per-item and per-list weights and every reduction. The memory test runs a size the direct path
could not hold in a fresh process and reads its peak resident memory.
"""

from __future__ import annotations

import math
import subprocess
import sys

import pytest
import torch
from torch.autograd import gradcheck

import rankloss.functional as RF
from rankloss.functional.lambdaweights import PAIR_WEIGHTS
from rankloss.functional.pairwise import LAMBDALOSS_WEIGHTINGS
from rankloss.losses import ApproxNDCGLoss, LambdaLoss, PairwiseLoss, RankNetLoss, get

TERMS = ("logistic", "hinge", "squared_hinge")
WEIGHTS = tuple(PAIR_WEIGHTS)

CASES = [
    pytest.param(RF.ranknet_loss, {}, id="ranknet"),
    pytest.param(RF.ranknet_loss, {"k": 3, "sigma": 2.0}, id="ranknet-k"),
    pytest.param(RF.pairwise_hinge_loss, {"margin": 0.5}, id="hinge"),
    pytest.param(RF.bpr_loss, {"relevance_threshold": 2.0}, id="bpr"),
    pytest.param(RF.bpr_loss, {"k": 4}, id="bpr-k"),
    pytest.param(RF.lambdarank_loss, {}, id="lambdarank"),
    pytest.param(RF.lambdarank_loss, {"k": 3, "gain": "linear"}, id="lambdarank-k"),
    *[
        pytest.param(RF.lambdaloss_loss, {"weighting": w, **kw}, id=f"lambdaloss-{w}{tag}")
        for w in LAMBDALOSS_WEIGHTINGS
        for tag, kw in (("", {}), ("-k", {"k": 4, "mu": 3.0}))
    ],
    *[
        pytest.param(
            RF.pairwise_loss,
            {"term": t, "weight": w, "pair_reduction": r, "margin": 0.7},
            id=f"pairwise-{t}-{w}-{r}",
        )
        for t in TERMS
        for w in WEIGHTS
        for r in ("mean", "sum")
    ],
    pytest.param(RF.approx_ndcg_loss, {}, id="approx_ndcg"),
    pytest.param(RF.approx_ndcg_loss, {"alpha": 3.0, "gain": "linear"}, id="approx_ndcg-linear"),
]


def _batch(dtype: torch.dtype, seed: int = 0):
    """Five lists of 13 items: padding garbage, an all-masked list, tied scores and labels."""
    g = torch.Generator().manual_seed(seed)
    scores = torch.randn(5, 13, generator=g, dtype=torch.float64) * 2.0
    scores[0, 3] = scores[0, 7]  # tied scores
    scores[1, :4] = 0.25  # a run of ties
    labels = torch.randint(0, 4, (5, 13), generator=g).to(torch.float64)
    labels[2, :] = 1.0  # one grade: no pair
    labels[2, 5] = 3.0
    mask = torch.rand(5, 13, generator=g) > 0.25
    mask[3] = False  # all masked
    mask[0, :6] = True
    garbage = torch.tensor([math.nan, math.inf, -math.inf, 1e30, -1e30], dtype=torch.float64)
    padded = (~mask).nonzero()
    for number, (b, i) in enumerate(padded.tolist()):
        scores[b, i] = garbage[number % len(garbage)]
        labels[b, i] = garbage[(number + 2) % len(garbage)]
    item_weights = torch.rand(5, 13, generator=g, dtype=torch.float64) + 0.5
    list_weights = torch.rand(5, generator=g, dtype=torch.float64) + 0.5
    return (
        scores.to(dtype),
        labels.to(dtype),
        mask,
        item_weights.to(dtype),
        list_weights.to(dtype),
    )


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
@pytest.mark.parametrize("weights", ["none", "item", "list"])
def test_streaming_equals_direct_float64(fn, kwargs, weights):
    scores, labels, mask, item_weights, list_weights = _batch(torch.float64)
    w = {"none": None, "item": item_weights, "list": list_weights}[weights]
    for reduction in ("mean", "none"):
        common = dict(weights=w, reduction=reduction, **kwargs)
        direct = _value_and_grad(fn, scores, labels, mask, impl="torch", **common)
        stream = _value_and_grad(fn, scores, labels, mask, impl="streaming", tile_size=5, **common)
        assert len(stream) == len(direct) == (2 if w is None else 3)
        for got, expected in zip(stream, direct, strict=True):
            torch.testing.assert_close(got, expected, rtol=1e-10, atol=1e-10)
        assert torch.isfinite(stream[1]).all() and (stream[1][~mask] == 0).all()
    assert direct[1].abs().sum() > 0  # the batch has something to learn from


@pytest.mark.parametrize(("fn", "kwargs"), CASES)
def test_streaming_equals_direct_float32(fn, kwargs):
    scores, labels, mask, item_weights, _ = _batch(torch.float32, seed=1)
    common = dict(weights=item_weights, reduction="sum", **kwargs)
    direct = _value_and_grad(fn, scores, labels, mask, impl="torch", **common)
    stream = _value_and_grad(fn, scores, labels, mask, impl="streaming", tile_size=4, **common)
    for got, expected in zip(stream, direct, strict=True):
        torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize(
    ("fn", "kwargs"),
    [(RF.ranknet_loss, {}), (RF.lambdaloss_loss, {"k": 5}), (RF.approx_ndcg_loss, {})],
)
def test_half_precision_inputs_compute_in_float32(fn, kwargs, dtype):
    scores, labels, mask, _, _ = _batch(torch.float32, seed=2)
    scores = torch.where(mask, scores, 0.0).to(dtype)
    direct = _value_and_grad(fn, scores, labels, mask, impl="torch", **kwargs)
    stream = _value_and_grad(fn, scores, labels, mask, impl="streaming", tile_size=6, **kwargs)
    assert stream[0].dtype == torch.float32 and stream[1].dtype == dtype
    torch.testing.assert_close(stream[0], direct[0], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(stream[1], direct[1], rtol=0, atol=0)


def test_reductions_and_batch_shape():
    scores, labels, mask, _, list_weights = _batch(torch.float64, seed=3)
    shape = (5, 1, 13)
    for reduction in ("mean", "sum", "none"):
        kw = dict(weights=list_weights.reshape(5, 1), reduction=reduction)
        args = (scores.reshape(shape), labels.reshape(shape), mask.reshape(shape))
        direct = RF.lambdaloss_loss(*args, impl="torch", **kw)
        stream = RF.lambdaloss_loss(*args, impl="streaming", tile_size=3, **kw)
        assert stream.shape == direct.shape
        torch.testing.assert_close(stream, direct, rtol=1e-10, atol=1e-10)


def test_all_masked_batch_gives_a_connected_zero():
    scores = torch.randn(2, 6, dtype=torch.float64, requires_grad=True)
    labels = torch.randint(0, 3, (2, 6)).double()
    mask = torch.zeros(2, 6, dtype=torch.bool)
    for fn in (RF.ranknet_loss, RF.lambdaloss_loss, RF.approx_ndcg_loss):
        value = fn(scores, labels, mask, impl="streaming")
        (grad,) = torch.autograd.grad(value, scores)
        assert value.item() == 0.0 and (grad == 0).all()


def test_no_grad_and_unneeded_gradients():
    scores, labels, mask, _, _ = _batch(torch.float64, seed=4)
    with torch.no_grad():
        value = RF.lambdarank_loss(scores, labels, mask, impl="streaming", tile_size=4)
    torch.testing.assert_close(value, RF.lambdarank_loss(scores, labels, mask, impl="torch"))


@pytest.mark.parametrize(
    ("fn", "kwargs"),
    [
        (RF.ranknet_loss, {}),
        (RF.lambdaloss_loss, {"weighting": "ndcg_loss2pp"}),
        (RF.pairwise_loss, {"term": "squared_hinge", "weight": "ndcg_loss1"}),
        (RF.approx_ndcg_loss, {"alpha": 2.0}),
    ],
)
def test_gradcheck_streaming(fn, kwargs):
    scores = torch.tensor(
        [[0.31, -1.27, 2.05, 0.88, -0.42], [1.13, 0.07, -0.66, 1.71, -2.2]], dtype=torch.float64
    )
    labels = torch.tensor([[2.0, 0.0, 1.0, 3.0, 0.0], [0.0, 1.0, 2.0, 0.0, 1.0]])
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 0, 1, 1]], dtype=torch.bool)
    weights = torch.tensor([[1.0, 0.5, 2.0, 1.5, 0.7], [0.3, 1.0, 1.0, 2.0, 0.9]])

    def loss(s, w):
        return fn(
            s,
            labels.double(),
            mask,
            weights=w,
            impl="streaming",
            tile_size=2,
            reduction="none",
            **kwargs,
        )

    inputs = (scores.requires_grad_(True), weights.double().requires_grad_(True))
    assert gradcheck(loss, inputs, eps=1e-6, atol=1e-8)


def test_auto_picks_a_path_and_falls_back_for_a_callable_weight():
    scores, labels, mask, _, _ = _batch(torch.float64, seed=5)

    def custom(ctx):
        return ctx.gains.unsqueeze(-1) + ctx.gains.unsqueeze(-2)

    auto = RF.pairwise_loss(scores, labels, mask, weight=custom)
    direct = RF.pairwise_loss(scores, labels, mask, weight=custom, impl="torch")
    torch.testing.assert_close(auto, direct, rtol=0, atol=0)
    module = PairwiseLoss(weight=custom, impl="auto")
    torch.testing.assert_close(module(scores, labels, mask), direct, rtol=0, atol=0)


def test_modules_pass_impl_and_tile_size():
    scores, labels, mask, _, _ = _batch(torch.float64, seed=6)
    for name, kw in (
        ("ranknet", {}),
        ("lambdaloss", {"k": 3}),
        ("approx_ndcg", {}),
        ("pairwise", {"term": "hinge"}),
        ("bpr", {}),
        ("lambdarank", {}),
        ("pairwise_hinge", {}),
    ):
        stream = get(name, impl="streaming", tile_size=4, **kw)
        direct = get(name, impl="torch", **kw)
        assert stream.hyper_parameters()["impl"] == "streaming"
        assert "tile_size=4" in repr(stream)
        torch.testing.assert_close(
            stream(scores, labels, mask), direct(scores, labels, mask), rtol=1e-10, atol=1e-10
        )
    combined = RankNetLoss(impl="streaming") + 0.5 * ApproxNDCGLoss(impl="streaming")
    reference = RankNetLoss(impl="torch") + 0.5 * ApproxNDCGLoss(impl="torch")
    torch.testing.assert_close(combined(scores, labels, mask), reference(scores, labels, mask))


@pytest.mark.badinput("losses")
@pytest.mark.parametrize(
    "call",
    [
        lambda s, y: RF.ranknet_loss(s, y, impl="fast"),
        lambda s, y: RF.approx_ndcg_loss(s, y, impl="cuda"),
        lambda s, y: RF.lambdaloss_loss(s, y, impl=None),
        lambda s, y: RF.ranknet_loss(s, y, tile_size=0),
        lambda s, y: RF.approx_ndcg_loss(s, y, tile_size=2.5),
        lambda s, y: RF.pairwise_loss(s, y, weight=lambda ctx: ctx.gains, impl="streaming"),
        lambda s, y: RF.pairwise_loss(s, y, weight=lambda ctx: ctx.gains, impl="triton"),
        lambda s, y: RF.approx_ndcg_loss(s, y, impl="triton"),
        lambda s, y: RF.pairwise_loss(s, y, term="hinge", impl="triton"),
    ],
    ids=[
        "name",
        "approx-name",
        "none",
        "tile-0",
        "tile-float",
        "callable-streaming",
        "callable-triton",
        "approx-triton",
        "hinge-triton",
    ],
)
def test_bad_impl_is_refused(call):
    s, y = torch.randn(2, 4), torch.randint(0, 3, (2, 4)).float()
    with pytest.raises((ValueError, TypeError), match="impl|tile_size"):
        call(s, y)


@pytest.mark.badinput("losses")
def test_modules_refuse_a_bad_impl_when_built():
    with pytest.raises(ValueError, match="RankNetLoss: impl must be one of"):
        RankNetLoss(impl="gpu")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="ApproxNDCGLoss: tile_size must be a positive"):
        ApproxNDCGLoss(tile_size=0)
    with pytest.raises(ValueError, match="PairwiseLoss: impl='streaming' needs a named pair"):
        PairwiseLoss(weight=lambda ctx: ctx.gains, impl="streaming")
    with pytest.raises(ValueError, match="LambdaLoss: impl must be one of"):
        LambdaLoss(impl="stream")  # type: ignore[arg-type]


@pytest.mark.badinput("losses")
@pytest.mark.parametrize(
    "build, message",
    [
        (lambda: ApproxNDCGLoss(impl="triton"), "ApproxNDCGLoss: impl='triton' has no kernel for"),
        (
            lambda: LambdaLoss(weighting="ndcg_loss1", impl="triton"),
            "LambdaLoss: impl='triton' has no kernel for the pair weight 'ndcg_loss1'",
        ),
        (
            lambda: PairwiseLoss(term="hinge", impl="triton"),
            "PairwiseLoss: impl='triton' has no kernel for term='hinge'",
        ),
        (lambda: get("pairwise_hinge", impl="triton"), "has no kernel for term='hinge'"),
        (lambda: get("triplet", impl="triton"), "TripletLoss: impl='triton' has no kernel"),
        (lambda: get("contrastive", impl="triton"), "ContrastiveLoss: impl='triton' has no"),
        (lambda: get("multi_similarity", impl="triton"), "MultiSimilarityLoss: impl='triton'"),
    ],
    ids=["approx", "lambdaloss-ndcg1", "hinge", "pairwise-hinge", "triplet", "contr", "ms"],
)
def test_triton_without_a_kernel_is_refused_when_built(build, message):
    with pytest.raises(ValueError, match=message):
        build()


def test_losses_with_a_kernel_accept_triton_when_built():
    for name in ("ranknet", "bpr", "lambdarank", "lambdaloss", "info_nce", "supcon", "siglip"):
        assert get(name, impl="triton").impl == "triton"
    assert LambdaLoss(weighting="ndcg_loss2", impl="triton").impl == "triton"


_MEMORY_SCRIPT = """
import resource, torch
torch.set_num_threads(1)
import rankloss.functional as RF
B, n = 2, 8192
g = torch.Generator().manual_seed(0)
scores = torch.randn(B, n, generator=g, requires_grad=True)
labels = torch.randint(0, 5, (B, n), generator=g).float()
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
RF.ranknet_loss(scores, labels, impl="streaming", tile_size=512).backward()
assert torch.isfinite(scores.grad).all() and scores.grad.abs().sum() > 0
print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) * 1024)
"""


def test_streaming_peak_memory_is_bounded():
    # The direct path would hold several [2, 8192, 8192] float32 matrices: 512 MiB each.
    out = subprocess.run(
        [sys.executable, "-c", _MEMORY_SCRIPT],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    extra = int(out.stdout.strip().splitlines()[-1])
    assert extra < 256 * 2**20, f"streaming used {extra / 2**20:.0f} MiB more"

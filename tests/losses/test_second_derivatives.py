"""Second derivatives (``create_graph=True``: a gradient penalty): the paths whose backward
reuses gradients computed without a graph refuse them; the others equal plain autograd."""

from __future__ import annotations

import pytest
import torch

import rankloss.functional as RF
from rankloss.losses import (
    ContrastiveLoss,
    InfoNCELoss,
    MultiSimilarityLoss,
    NTXentLoss,
    SigLIPLoss,
    SupConLoss,
)

REFUSED = r"first-order gradients only"


def _penalty(loss_of, x: torch.Tensor) -> torch.Tensor:
    """The gradient of ``|d loss / d x|^2`` through a model (``tanh``)."""
    x = x.clone().requires_grad_()
    (grad,) = torch.autograd.grad(loss_of(torch.tanh(x)), x, create_graph=True)
    grad.pow(2).sum().backward()
    assert x.grad is not None
    return x.grad


@pytest.mark.parametrize(
    "loss_of",
    [
        lambda s, y: RF.ranknet_loss(s, y, impl="streaming"),
        lambda s, y: RF.lambdaloss_loss(s, y, impl="streaming"),
        lambda s, y: RF.approx_ndcg_loss(s, y, impl="streaming"),
        lambda s, y: RF.neural_ndcg_loss(s, y),
    ],
    ids=["ranknet-streaming", "lambdaloss-streaming", "approx_ndcg-streaming", "neural_ndcg"],
)
def test_list_paths_without_a_second_derivative_refuse_it(loss_of):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 6, generator=g, dtype=torch.float64)
    y = torch.randint(0, 3, (2, 6), generator=g).double()
    with pytest.raises(RuntimeError, match=REFUSED):
        _penalty(lambda s: loss_of(s, y), x)
    # First-order gradients are untouched.
    s = x.clone().requires_grad_()
    loss_of(s, y).backward()
    assert s.grad is not None and torch.isfinite(s.grad).all()


@pytest.mark.parametrize(
    "cls,kwargs",
    [
        (ContrastiveLoss, {"squared": True}),
        (MultiSimilarityLoss, {}),
        (SigLIPLoss, {}),
        (InfoNCELoss, {}),
        (SupConLoss, {}),
        (NTXentLoss, {}),
    ],
    ids=lambda v: v.__name__ if isinstance(v, type) else "",
)
def test_streaming_embedding_losses_refuse_a_second_derivative(cls, kwargs):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(8, 5, generator=g, dtype=torch.float64)
    labels = torch.tensor([0, 1, 0, 2, 1, 3, 0, 2])
    streaming = cls(impl="streaming", chunk_size=3, **kwargs).double()
    with pytest.raises(RuntimeError, match=rf"impl='streaming'.*{REFUSED}"):
        _penalty(lambda e: streaming(e, labels), x)
    direct = cls(impl="torch", **kwargs).double()
    assert torch.isfinite(_penalty(lambda e: direct(e, labels), x)).all()


def test_a_gradient_taken_with_create_graph_is_the_gradient():
    """create_graph=True alone (the gradient read, not differentiated) works on a guarded path
    and gives the ordinary gradient."""
    g = torch.Generator().manual_seed(0)
    s = torch.randn(3, 8, generator=g, dtype=torch.float64, requires_grad=True)
    y = torch.randint(0, 3, (3, 8), generator=g).double()
    (with_graph,) = torch.autograd.grad(
        RF.ranknet_loss(s, y, impl="streaming"), s, create_graph=True
    )
    (plain,) = torch.autograd.grad(RF.ranknet_loss(s, y, impl="torch"), s)
    torch.testing.assert_close(with_graph.detach(), plain)


def test_detection_losses_refuse_a_second_derivative():
    scores = torch.randn(2, 6, dtype=torch.float64)
    labels = torch.tensor([[0.7, 0.0, 0.0, 0.9, 0.0, 0.0], [0.0, 0.6, 0.0, 0.0, 0.0, 0.8]])
    with pytest.raises(RuntimeError, match=REFUSED):
        _penalty(lambda s: RF.ap_loss(s, labels.double()), scores)


def test_softmax_cross_entropy_on_long_lists_has_the_true_second_derivative():
    """Lists of 2**18 items and more take a written-out backward; created with a graph it
    must equal autograd's second derivative of the formula."""
    g = torch.Generator().manual_seed(0)
    n = (1 << 18) + 5
    x = torch.randn(1, n, generator=g, dtype=torch.float64)
    y = torch.rand(1, n, generator=g, dtype=torch.float64)
    written = _penalty(lambda s: RF.softmax_ce_loss(s, y), x)
    p = y / y.sum(-1, keepdim=True)  # the target distribution of the labels
    plain = _penalty(lambda s: -(p * torch.log_softmax(s, -1)).sum(-1).mean(), x)
    torch.testing.assert_close(written, plain, rtol=1e-9, atol=1e-15)

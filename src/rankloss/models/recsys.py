"""Recommendation models: score ``items [B, n]`` for ``users [B]``; ``full_scores`` ranks the
whole catalogue."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from rankloss.models.scorers import mlp

__all__ = ["MatrixFactorization", "TwoTower"]


class _UserItemModel(nn.Module):
    num_items: int

    def user_vectors(self, users: Tensor) -> Tensor:
        raise NotImplementedError

    def item_vectors(self, items: Tensor) -> Tensor:
        raise NotImplementedError

    def item_bias(self, items: Tensor) -> Tensor:
        return torch.zeros(items.shape, device=items.device)

    def forward(self, users: Tensor, items: Tensor) -> Tensor:
        """Scores ``[B, n]`` of ``items [B, n]`` (or ``[B]`` -> ``[B]``) for ``users [B]``."""
        u = self.user_vectors(users)
        v = self.item_vectors(items)
        if items.dim() == users.dim() + 1:
            return (u.unsqueeze(-2) * v).sum(-1) + self.item_bias(items)
        return (u * v).sum(-1) + self.item_bias(items)

    def full_scores(self, users: Tensor) -> Tensor:
        """Scores ``[B, num_items]`` of every item for ``users [B]``."""
        items = torch.arange(self.num_items, device=users.device)
        return self.user_vectors(users) @ self.item_vectors(items).T + self.item_bias(items)


class MatrixFactorization(_UserItemModel):
    """``score(u, i) = <p_u, q_i> + b_i`` with embeddings initialised ``N(0, init_std)``."""

    def __init__(
        self,
        num_users: int,
        num_items: int,
        dim: int = 64,
        *,
        bias: bool = True,
        init_std: float = 0.05,
    ) -> None:
        super().__init__()
        self.num_users, self.num_items = num_users, num_items
        self.users = nn.Embedding(num_users, dim)
        self.items = nn.Embedding(num_items, dim)
        self.bias = nn.Embedding(num_items, 1) if bias else None
        nn.init.normal_(self.users.weight, std=init_std)
        nn.init.normal_(self.items.weight, std=init_std)
        if self.bias is not None:
            nn.init.zeros_(self.bias.weight)

    def user_vectors(self, users: Tensor) -> Tensor:
        return self.users(users)

    def item_vectors(self, items: Tensor) -> Tensor:
        return self.items(items)

    def item_bias(self, items: Tensor) -> Tensor:
        if self.bias is None:
            return super().item_bias(items)
        return self.bias(items).squeeze(-1)


class TwoTower(_UserItemModel):
    """Two towers: an id embedding (plus optional fixed side features) through an MLP for users
    and one for items; the score is the dot product of the tower outputs.

    Args:
        user_features, item_features: optional ``[num_users, a]`` / ``[num_items, b]`` float
            side features concatenated to the id embeddings.
    """

    def __init__(
        self,
        num_users: int,
        num_items: int,
        dim: int = 64,
        hidden: Sequence[int] = (128,),
        *,
        user_features: Tensor | None = None,
        item_features: Tensor | None = None,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.num_users, self.num_items = num_users, num_items
        self.user_ids = nn.Embedding(num_users, dim)
        self.item_ids = nn.Embedding(num_items, dim)
        nn.init.normal_(self.user_ids.weight, std=0.05)
        nn.init.normal_(self.item_ids.weight, std=0.05)
        self.user_side: Tensor
        self.item_side: Tensor
        self.register_buffer(
            "user_side",
            user_features.float() if user_features is not None else torch.zeros(num_users, 0),
        )
        self.register_buffer(
            "item_side",
            item_features.float() if item_features is not None else torch.zeros(num_items, 0),
        )
        self.user_tower = mlp(dim + int(self.user_side.shape[1]), hidden, dim, dropout=dropout)
        self.item_tower = mlp(dim + int(self.item_side.shape[1]), hidden, dim, dropout=dropout)

    def user_vectors(self, users: Tensor) -> Tensor:
        return self.user_tower(torch.cat([self.user_ids(users), self.user_side[users]], -1))

    def item_vectors(self, items: Tensor) -> Tensor:
        return self.item_tower(torch.cat([self.item_ids(items), self.item_side[items]], -1))

"""Scorers for lists of feature vectors, and embedding networks."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["MLPScorer", "ListAttentionScorer", "EmbeddingMLP", "SmallCNN", "mlp"]


def mlp(
    in_features: int,
    hidden: Sequence[int],
    out_features: int | None,
    *,
    dropout: float = 0.0,
    activation: type[nn.Module] = nn.ReLU,
    layer_norm: bool = False,
) -> nn.Sequential:
    """Linear -> [LayerNorm] -> activation -> dropout blocks, then an optional output layer."""
    layers: list[nn.Module] = []
    width = in_features
    for h in hidden:
        layers.append(nn.Linear(width, h))
        if layer_norm:
            layers.append(nn.LayerNorm(h))
        layers.append(activation())
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        width = h
    if out_features is not None:
        layers.append(nn.Linear(width, out_features))
    return nn.Sequential(*layers)


class MLPScorer(nn.Module):
    """Scores each item independently: ``[..., n, f] -> [..., n]``.

    Args:
        in_features: number of features ``f``.
        hidden: widths of the hidden layers.
        dropout: dropout after each hidden layer.
        input_norm: pass each item's features through ``nn.LayerNorm(f)`` first.
    """

    def __init__(
        self,
        in_features: int,
        hidden: Sequence[int] = (128, 64),
        dropout: float = 0.1,
        *,
        input_norm: bool = False,
        activation: type[nn.Module] = nn.ReLU,
    ) -> None:
        super().__init__()
        self.input_norm = nn.LayerNorm(in_features) if input_norm else nn.Identity()
        self.net = mlp(in_features, hidden, 1, dropout=dropout, activation=activation)

    def forward(self, features: Tensor, mask: Tensor | None = None) -> Tensor:
        return self.net(self.input_norm(features)).squeeze(-1)


class ListAttentionScorer(nn.Module):
    """Context-aware scorer: self-attention over the items of each list, so an item's score
    depends on the other items (Pobrotyn et al., *Context-Aware Learning to Rank with
    Self-Attention*, 2020).

    Items are embedded by an MLP, passed through ``num_layers`` Transformer encoder layers
    (no positional encoding: the list is a set) whose attention ignores padded items, then
    scored by a linear layer. ``[B, n, f]`` + mask ``[B, n]`` -> ``[B, n]``; padded positions
    get score 0 and never influence real items.
    """

    def __init__(
        self,
        in_features: int,
        d_model: int = 64,
        num_heads: int = 4,
        num_layers: int = 2,
        dim_feedforward: int = 128,
        dropout: float = 0.1,
        *,
        input_norm: bool = False,
    ) -> None:
        super().__init__()
        self.input_norm = nn.LayerNorm(in_features) if input_norm else nn.Identity()
        self.embed = nn.Sequential(nn.Linear(in_features, d_model), nn.ReLU())
        layer = nn.TransformerEncoderLayer(
            d_model,
            num_heads,
            dim_feedforward,
            dropout,
            batch_first=True,
            norm_first=True,
        )
        self.encoder = nn.TransformerEncoder(layer, num_layers, enable_nested_tensor=False)
        self.out = nn.Linear(d_model, 1)

    def forward(self, features: Tensor, mask: Tensor | None = None) -> Tensor:
        if mask is None:
            mask = torch.ones(features.shape[:-1], dtype=torch.bool, device=features.device)
        # Zero padded inputs (may hold NaN/inf), and let an all-padded list attend to its
        # first slot so attention never sees an empty row.
        x = torch.where(mask.unsqueeze(-1), features, torch.zeros_like(features))
        empty = ~mask.any(-1, keepdim=True)
        first = torch.zeros_like(mask)
        first[..., :1] = True
        attend = mask | (empty & first)
        h = self.encoder(self.embed(self.input_norm(x)), src_key_padding_mask=~attend)
        scores = self.out(h).squeeze(-1)
        return torch.where(mask, scores, torch.zeros_like(scores))


class EmbeddingMLP(nn.Module):
    """``[N, f] -> [N, d]`` embeddings, L2-normalised if ``normalize``."""

    def __init__(
        self,
        in_features: int,
        out_features: int = 64,
        hidden: Sequence[int] = (256,),
        dropout: float = 0.0,
        *,
        normalize: bool = True,
    ) -> None:
        super().__init__()
        self.net = mlp(in_features, hidden, out_features, dropout=dropout)
        self.normalize = normalize

    def forward(self, x: Tensor) -> Tensor:
        z = self.net(x.flatten(1))
        return F.normalize(z, dim=-1) if self.normalize else z


class SmallCNN(nn.Module):
    """A small convolutional embedding network: ``[N, C, H, W] -> [N, d]``.

    ``num_blocks`` blocks of conv3x3 -> BatchNorm -> ReLU -> max-pool (the pool is skipped once
    the map is 2x2 or smaller), global average pooling, then a linear layer to ``out_features``.
    L2-normalised if ``normalize``.
    """

    def __init__(
        self,
        in_channels: int = 1,
        out_features: int = 64,
        width: int = 32,
        num_blocks: int = 2,
        *,
        normalize: bool = True,
    ) -> None:
        super().__init__()
        blocks = []
        channels = in_channels
        for i in range(num_blocks):
            out = width * (2**i)
            blocks.append(
                nn.Sequential(
                    nn.Conv2d(channels, out, 3, padding=1, bias=False),
                    nn.BatchNorm2d(out),
                    nn.ReLU(),
                )
            )
            channels = out
        self.blocks = nn.ModuleList(blocks)
        self.head = nn.Linear(channels, out_features)
        self.normalize = normalize

    def forward(self, images: Tensor) -> Tensor:
        if images.dim() != 4:
            raise ValueError(f"SmallCNN: images must be [N, C, H, W], got {list(images.shape)}")
        x = images
        for block in self.blocks:
            x = block(x)
            if min(x.shape[-2:]) > 2:
                x = F.max_pool2d(x, 2)
        z = self.head(x.mean(dim=(-2, -1)))
        return F.normalize(z, dim=-1) if self.normalize else z

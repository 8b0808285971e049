"""A small convolutional embedding network that keeps the image's layout."""

from __future__ import annotations

from collections.abc import Sequence

import torch.nn.functional as F
from torch import Tensor, nn

from rankloss._core import params
from rankloss.models.scorers import mlp

__all__ = ["ConvEmbedding"]


class ConvEmbedding(nn.Module):
    r"""A small convolutional embedding network for small grey or colour images (8x8 digits,
    28x28 MNIST / Fashion-MNIST): ``[N, C, H, W] -> [N, d]``.

    ``num_blocks`` blocks of conv3x3 -> BatchNorm -> ReLU -> 2x2 max-pool (block ``i`` has
    ``width * 2**i`` channels; the pool is skipped once a side is 2 or less). The final
    feature map :math:`h_L(x)` is **flattened** into the representation, and a projection head
    (an MLP with ``head`` hidden layers, then a linear layer) maps it to ``out_features``:

    .. math::

        r(x) = \operatorname{vec}(h_L(x)), \qquad z(x) = g(r(x)), \qquad
        \text{forward}(x) = z / \lVert z \rVert_2, \quad
        \text{features}(x) = r / \lVert r \rVert_2

    (without ``normalize``, no division). Unlike :class:`~rankloss.models.SmallCNN`, which
    averages the final map over space, the flattened map keeps where each feature is (the
    stroke positions that tell a 6 from a 9, or a sneaker from an ankle boot).

    Train a loss on ``forward`` (the projection) and retrieve with :meth:`features`, the
    representation before the head: a metric loss pulls the projections of each training
    class to one point, which throws away what tells classes it never saw apart; the
    representation under the head keeps more of it (the projection head of SimCLR, Chen et al.
    2020, and of supervised contrastive learning, Khosla et al. 2020, discarded after
    training). ``rankloss bench``'s retrieval suites do so (``model.retrieve = "features"``).

    Args:
        in_channels: channels ``C`` of the input images.
        image_size: ``H`` (square images) or ``(H, W)``; fixes the size of the representation,
            ``width * 2**(num_blocks - 1) * h * w`` for the final ``h x w`` map.
        out_features: embedding size ``d`` of ``forward``.
        width: channels of the first block.
        num_blocks: number of conv blocks.
        head: hidden sizes of the projection head (``()``: one linear layer).
        normalize: L2-normalise the outputs of ``forward`` and :meth:`features`.

    Returns:
        ``forward(images [N, C, H, W])`` gives embeddings ``[N, out_features]``;
        ``features(images)`` gives the representation ``[N, width * 2**(num_blocks-1) * h * w]``.

    Cost: :math:`O(N H W \cdot 9\, C\, \mathrm{width})` for the first block (each later block
    has a quarter of the positions and twice the channels), plus the head's matrix products,
    :math:`O(N \cdot \dim r \cdot \mathrm{head}_1)`.
    """

    def __init__(
        self,
        in_channels: int = 1,
        image_size: int | tuple[int, int] = 28,
        out_features: int = 64,
        width: int = 32,
        num_blocks: int = 2,
        head: Sequence[int] = (128,),
        *,
        normalize: bool = True,
    ) -> None:
        super().__init__()
        where = "ConvEmbedding"
        params.positive_int(where, "in_channels", in_channels)
        params.positive_int(where, "out_features", out_features)
        params.positive_int(where, "width", width)
        params.positive_int(where, "num_blocks", num_blocks)
        for size in head:
            params.positive_int(where, "head", size)
        height, wide = (image_size, image_size) if isinstance(image_size, int) else image_size
        params.positive_int(where, "image_size", height)
        params.positive_int(where, "image_size", wide)
        self.image_size = (height, wide)
        blocks: list[nn.Module] = []
        channels = in_channels
        for i in range(num_blocks):
            out = width * (2**i)
            layers: list[nn.Module] = [
                nn.Conv2d(channels, out, 3, padding=1, bias=False),
                nn.BatchNorm2d(out),
                nn.ReLU(),
            ]
            if min(height, wide) > 2:
                layers.append(nn.MaxPool2d(2))
                height, wide = height // 2, wide // 2
            blocks.append(nn.Sequential(*layers))
            channels = out
        self.blocks = nn.Sequential(*blocks)
        self.feature_dim = channels * height * wide
        self.head = mlp(self.feature_dim, tuple(head), out_features)
        self.normalize = normalize

    def _representation(self, images: Tensor) -> Tensor:
        if images.dim() != 4 or tuple(images.shape[-2:]) != self.image_size:
            raise ValueError(
                f"ConvEmbedding: images must be [N, C, {self.image_size[0]}, "
                f"{self.image_size[1]}], got {list(images.shape)}"
            )
        return self.blocks(images).flatten(1)

    def features(self, images: Tensor) -> Tensor:
        """The representation before the projection head, ``[N, feature_dim]``."""
        r = self._representation(images)
        return F.normalize(r, dim=-1) if self.normalize else r

    def forward(self, images: Tensor) -> Tensor:
        z = self.head(self._representation(images))
        return F.normalize(z, dim=-1) if self.normalize else z

"""Standard model shapes for the four application areas.

| model | input | output |
|---|---|---|
| :class:`MLPScorer` | features ``[..., n, f]`` (mask ignored) | scores ``[..., n]`` |
| :class:`ListAttentionScorer` | features ``[B, n, f]``, mask ``[B, n]`` | scores ``[B, n]`` |
| :class:`EmbeddingMLP` | ``[N, f]`` | embeddings ``[N, d]`` |
| :class:`SmallCNN` | images ``[N, C, H, W]`` | embeddings ``[N, d]`` |
| :class:`ConvEmbedding` | images ``[N, C, H, W]`` (a fixed ``H, W``) | embeddings ``[N, d]`` |
| :class:`MatrixFactorization`, :class:`TwoTower` | users ``[B]``, items ``[B, n]`` | ``[B, n]`` |
| :class:`SentenceEncoder` | a list of ``N`` strings | embeddings ``[N, d]`` |

Scorers take ``(features, mask=None)`` so a trainer can call any of them the same way.
"""

from rankloss.models.conv import ConvEmbedding
from rankloss.models.recsys import MatrixFactorization, TwoTower
from rankloss.models.scorers import EmbeddingMLP, ListAttentionScorer, MLPScorer, SmallCNN
from rankloss.models.text import SentenceEncoder

__all__ = [
    "MLPScorer",
    "ListAttentionScorer",
    "EmbeddingMLP",
    "SmallCNN",
    "ConvEmbedding",
    "MatrixFactorization",
    "TwoTower",
    "SentenceEncoder",
]

"""Pairwise similarities (higher means closer); the implementation lives in the core layer."""

from rankloss._core.similarity import SIMILARITIES, Similarity, pairwise_similarity

__all__ = ["SIMILARITIES", "Similarity", "pairwise_similarity"]

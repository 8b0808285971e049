"""Embedding-loss modules (contrastive, triplet, InfoNCE, ...), registered in family "embedding"."""

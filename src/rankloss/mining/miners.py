"""Miners: choose informative pairs or triplets from a detached similarity matrix.

A miner is called as ``miner(similarity, positive, negative, *, generator=None,
embedding_dim=None)`` where ``similarity [N, M]`` is a similarity (higher = closer; it is
detached first) and ``positive``/``negative`` are ``[N, M]`` bool masks of the candidate pairs
(see :func:`rankloss.mining.label_masks`). It returns :class:`Pairs` or :class:`Triplets`,
whose ``found`` says how many tuples qualified before the per-anchor cap ``max_per_anchor``.
``miner.mine(embeddings, labels)`` does the same from embeddings and labels. The embedding
losses of :mod:`rankloss.losses` call a miner exactly so, on the similarity they compute.

Every hyper-parameter is checked when the miner is built, with the message form
``"<Miner>: <name> must be ..., got ..."`` (a value of the wrong type is a ``TypeError``).
This module imports only the core layer.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from rankloss._core import params
from rankloss._core.registry import Registry
from rankloss._core.similarity import SIMILARITIES, Similarity, pairwise_similarity
from rankloss._core.tuples import Pairs, Triplets, keep_top_per_anchor, label_masks
from rankloss._core.validation import shape_str

__all__ = [
    "Miner",
    "BatchHardMiner",
    "BatchSemiHardMiner",
    "MarginMiner",
    "PairMarginMiner",
    "DistanceWeightedMiner",
    "MultiSimilarityMiner",
    "MINERS",
    "get",
    "available",
]

MINERS: Registry[Any] = Registry("miner")


def _empty_triplets(device: torch.device, found: int = 0) -> Triplets:
    empty = torch.zeros(0, dtype=torch.long, device=device)
    return Triplets(empty, empty, empty, found)


def _empty_pairs(device: torch.device) -> Pairs:
    empty = torch.zeros(0, dtype=torch.long, device=device)
    return Pairs(empty, empty, torch.zeros(0, dtype=torch.bool, device=device), 0)


class Miner:
    """Base class: validates the inputs and calls :meth:`select`."""

    #: The kind of tuples the miner returns: ``"pairs"`` or ``"triplets"``.
    output: str = "triplets"

    def __init__(self, max_per_anchor: int | None = None) -> None:
        self.max_per_anchor = params.cutoff(type(self).__name__, "max_per_anchor", max_per_anchor)

    def __call__(
        self,
        similarity: Tensor,
        positive: Tensor,
        negative: Tensor | None = None,
        *,
        generator: torch.Generator | None = None,
        embedding_dim: int | None = None,
    ) -> Pairs | Triplets:
        """Mine from a similarity matrix and its masks, ``miner(similarity, positive, negative)``,
        or from embeddings and class labels, ``miner(embeddings, labels)`` (two arguments, as
        pytorch-metric-learning's miners are called; the same as :meth:`mine` with cosine
        similarity).

        Args:
            similarity: ``[N, M]`` similarities (higher is closer), or ``[N, d]`` embeddings in
                the two-argument form.
            positive: ``[N, M]`` bool, or ``[N]`` integer class labels in the two-argument form.
            negative: ``[N, M]`` bool; ``None`` selects the two-argument form.
            generator: for the miners that sample.
            embedding_dim: ``d``, for the miners that need it (distance-weighted sampling).

        Returns:
            :class:`~rankloss.mining.Pairs` or :class:`~rankloss.mining.Triplets` (see
            :attr:`output`).
        """
        if negative is None:
            return self.mine(similarity, positive, generator=generator)
        name = type(self).__name__
        if not isinstance(similarity, Tensor) or similarity.dim() != 2:
            raise ValueError(f"{name}: similarity must be an [N, M] tensor")
        for label, mask in (("positive", positive), ("negative", negative)):
            if mask.shape != similarity.shape or mask.dtype != torch.bool:
                raise ValueError(
                    f"{name}: {label} must be a bool mask of shape {shape_str(similarity)}, got "
                    f"{shape_str(mask)} {mask.dtype}"
                )
        if similarity.numel() == 0:  # no anchor or no candidate: nothing to mine
            if self.output == "pairs":
                return _empty_pairs(similarity.device)
            return _empty_triplets(similarity.device)
        with torch.no_grad():
            return self.select(
                similarity.detach(), positive, negative, generator=generator, dim=embedding_dim
            )

    def mine(
        self,
        embeddings: Tensor,
        labels: Tensor,
        ref_embeddings: Tensor | None = None,
        ref_labels: Tensor | None = None,
        *,
        similarity: Similarity = "cosine",
        generator: torch.Generator | None = None,
    ) -> Pairs | Triplets:
        """Mine from embeddings and class labels (candidates: the reference set, else the batch)."""
        params.choice(f"{type(self).__name__}.mine", "similarity", similarity, SIMILARITIES)
        if (ref_embeddings is None) != (ref_labels is None):
            raise ValueError(f"{type(self).__name__}.mine: pass both ref_embeddings and ref_labels")
        sim = pairwise_similarity(
            embeddings.detach(),
            None if ref_embeddings is None else ref_embeddings.detach(),
            similarity,
        )
        positive, negative = label_masks(labels, ref_labels)
        return self(sim, positive, negative, generator=generator, embedding_dim=embeddings.shape[1])

    def select(
        self,
        similarity: Tensor,
        positive: Tensor,
        negative: Tensor,
        *,
        generator: torch.Generator | None,
        dim: int | None,
    ) -> Pairs | Triplets:
        raise NotImplementedError

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({fields})"


class BatchHardMiner(Miner):
    r"""Batch-hard triplets (Hermans et al. 2017, after Schroff et al. 2015).

    For every anchor with a positive and a negative: its hardest positive
    :math:`\arg\min_p s_{ap}` and its hardest negative :math:`\arg\max_n s_{an}`; one triplet
    per anchor (ties: the lowest index). Cost: :math:`O(NM)`.

    Reference: Hermans, Beyer and Leibe, "In Defense of the Triplet Loss for Person
    Re-Identification", 2017.
    """

    def select(
        self,
        similarity: Tensor,
        positive: Tensor,
        negative: Tensor,
        *,
        generator: torch.Generator | None,
        dim: int | None,
    ) -> Pairs | Triplets:
        inf = torch.finfo(similarity.dtype).max
        pos_sim = torch.where(positive, similarity, inf)
        neg_sim = torch.where(negative, similarity, -inf)
        hardest_pos = pos_sim.argmin(1)
        hardest_neg = neg_sim.argmax(1)
        valid = positive.any(1) & negative.any(1)
        anchor = torch.nonzero(valid)[:, 0]
        return Triplets(anchor, hardest_pos[anchor], hardest_neg[anchor], int(anchor.numel()))


class BatchSemiHardMiner(Miner):
    r"""Semi-hard triplets (Schroff, Kalenichenko and Philbin, "FaceNet", CVPR 2015).

    For every positive pair :math:`(a, p)`: the hardest negative that is still easier than the
    positive, :math:`n = \arg\max \{ s_{an} : s_{an} < s_{ap} \}`, and with ``margin`` also
    :math:`s_{an} > s_{ap} - m` (the margin window). A positive pair without such a negative
    gives no triplet. ``max_per_anchor`` keeps the hardest triplets (largest
    :math:`s_{an} - s_{ap}`). Cost: :math:`O(NM \log M)` (one sort per anchor).
    """

    def __init__(self, margin: float | None = None, max_per_anchor: int | None = None) -> None:
        super().__init__(max_per_anchor)
        self.margin = (
            None if margin is None else params.nonnegative(type(self).__name__, "margin", margin)
        )

    def select(
        self,
        similarity: Tensor,
        positive: Tensor,
        negative: Tensor,
        *,
        generator: torch.Generator | None,
        dim: int | None,
    ) -> Pairs | Triplets:
        neg_sim = torch.where(negative, similarity, -math.inf)
        sorted_neg, order = torch.sort(neg_sim, dim=1)
        # Index of the largest negative similarity strictly below each s_ap.
        below = (
            torch.searchsorted(sorted_neg.contiguous(), similarity.contiguous(), right=False) - 1
        )
        anchor, pos = torch.nonzero(positive, as_tuple=True)
        slot = below[anchor, pos]
        ok = slot >= 0
        slot = slot.clamp(min=0)
        neg_value = sorted_neg[anchor, slot]
        ok &= torch.isfinite(neg_value)
        if self.margin is not None:
            ok &= neg_value > similarity[anchor, pos] - self.margin
        anchor, pos, slot, neg_value = anchor[ok], pos[ok], slot[ok], neg_value[ok]
        neg = order[anchor, slot]
        found = int(anchor.numel())
        keep = keep_top_per_anchor(anchor, neg_value - similarity[anchor, pos], self.max_per_anchor)
        return Triplets(anchor[keep], pos[keep], neg[keep], found)


_MARGIN_KINDS = ("violating", "hard", "semihard", "easy")


class MarginMiner(Miner):
    r"""Triplets selected by how they stand against a margin :math:`m`.

    With :math:`\delta = s_{ap} - s_{an}` (positive ahead of negative by :math:`\delta`):

    * ``"violating"``: :math:`\delta < m` (every triplet with a non-zero triplet loss);
    * ``"hard"``: :math:`\delta < 0` (the negative is closer than the positive);
    * ``"semihard"``: :math:`0 \le \delta < m`;
    * ``"easy"``: :math:`\delta \ge m` (zero triplet loss).

    ``max_per_anchor`` keeps the triplets of smallest :math:`\delta` of each anchor. Cost:
    :math:`O(NM^2)` time, computed in blocks of anchors so that memory stays
    :math:`O(2^{22} + NM + T)` for :math:`T` triplets found.
    """

    def __init__(
        self, margin: float = 0.2, kind: str = "violating", max_per_anchor: int | None = None
    ) -> None:
        super().__init__(max_per_anchor)
        where = type(self).__name__
        self.margin = params.nonnegative(where, "margin", margin)
        self.kind = params.choice(where, "kind", kind, _MARGIN_KINDS)

    def _condition(self, delta: Tensor) -> Tensor:
        m = self.margin
        if self.kind == "violating":
            return delta < m
        if self.kind == "hard":
            return delta < 0
        if self.kind == "semihard":
            return (delta >= 0) & (delta < m)
        return delta >= m

    def select(
        self,
        similarity: Tensor,
        positive: Tensor,
        negative: Tensor,
        *,
        generator: torch.Generator | None,
        dim: int | None,
    ) -> Pairs | Triplets:
        n, m = similarity.shape
        block = max(1, (1 << 22) // max(1, m * m))
        parts = []
        for start in range(0, n, block):
            sim = similarity[start : start + block]
            delta = sim.unsqueeze(2) - sim.unsqueeze(1)
            chosen = (
                positive[start : start + block].unsqueeze(2)
                & negative[start : start + block].unsqueeze(1)
                & self._condition(delta)
            )
            a, p, q = torch.nonzero(chosen, as_tuple=True)
            parts.append((a + start, p, q, delta[a, p, q]))
        anchor, pos, neg, delta = (torch.cat(c) for c in zip(*parts))
        found = int(anchor.numel())
        keep = keep_top_per_anchor(anchor, -delta, self.max_per_anchor)
        return Triplets(anchor[keep], pos[keep], neg[keep], found)


class PairMarginMiner(Miner):
    r"""Pairs on the wrong side of a margin: positives with :math:`s < m_+` and negatives with
    :math:`s > m_-` (``kind="hard"``), or the others (``kind="easy"``).

    ``max_per_anchor`` keeps the hardest (``"hard"``) or easiest (``"easy"``) positive and
    negative pairs of each anchor, up to that many of each. Cost: :math:`O(NM)`.
    """

    output = "pairs"

    def __init__(
        self,
        pos_margin: float = 0.8,
        neg_margin: float = 0.5,
        kind: str = "hard",
        max_per_anchor: int | None = None,
    ) -> None:
        super().__init__(max_per_anchor)
        where = type(self).__name__
        self.pos_margin = params.number(where, "pos_margin", pos_margin)
        self.neg_margin = params.number(where, "neg_margin", neg_margin)
        self.kind = params.choice(where, "kind", kind, ("hard", "easy"))

    def select(
        self,
        similarity: Tensor,
        positive: Tensor,
        negative: Tensor,
        *,
        generator: torch.Generator | None,
        dim: int | None,
    ) -> Pairs | Triplets:
        hard_pos = similarity < self.pos_margin
        hard_neg = similarity > self.neg_margin
        if self.kind == "easy":
            hard_pos, hard_neg = ~hard_pos, ~hard_neg
        return _pairs_from_masks(
            similarity,
            positive & hard_pos,
            negative & hard_neg,
            self.max_per_anchor,
            hardest=self.kind == "hard",
        )


def _pairs_from_masks(
    similarity: Tensor, positive: Tensor, negative: Tensor, cap: int | None, hardest: bool = True
) -> Pairs:
    anchor, other = torch.nonzero(positive | negative, as_tuple=True)
    is_positive = positive[anchor, other]
    found = int(anchor.numel())
    if cap is not None:
        sim = similarity[anchor, other]
        hardness = torch.where(is_positive, -sim, sim)  # low positives, high negatives are hard
        if not hardest:
            hardness = -hardness
        group = anchor + (~is_positive).long() * similarity.shape[0]
        keep = keep_top_per_anchor(group, hardness, cap)
        anchor, other, is_positive = anchor[keep], other[keep], is_positive[keep]
    return Pairs(anchor, other, is_positive, found)


class MultiSimilarityMiner(Miner):
    r"""Multi-similarity pair mining (Wang et al., CVPR 2019).

    Keeps a negative pair when :math:`s_{an} + \epsilon > \min_{p} s_{ap}` and a positive pair
    when :math:`s_{ap} - \epsilon < \max_{n} s_{an}` (an anchor without positives keeps no
    negatives, and one without negatives no positives). ``max_per_anchor`` keeps the hardest of
    each. Cost: :math:`O(NM)`.

    Reference: Wang, Han, Huang, Dong and Scott, "Multi-Similarity Loss with General Pair
    Weighting for Deep Metric Learning", CVPR 2019.
    """

    output = "pairs"

    def __init__(self, epsilon: float = 0.1, max_per_anchor: int | None = None) -> None:
        super().__init__(max_per_anchor)
        self.epsilon = params.nonnegative(type(self).__name__, "epsilon", epsilon)

    def select(
        self,
        similarity: Tensor,
        positive: Tensor,
        negative: Tensor,
        *,
        generator: torch.Generator | None,
        dim: int | None,
    ) -> Pairs | Triplets:
        inf = math.inf
        min_pos = torch.where(positive, similarity, inf).amin(1, keepdim=True)
        max_neg = torch.where(negative, similarity, -inf).amax(1, keepdim=True)
        keep_neg = negative & (similarity + self.epsilon > min_pos)
        keep_pos = positive & (similarity - self.epsilon < max_neg)
        return _pairs_from_masks(similarity, keep_pos, keep_neg, self.max_per_anchor)


class DistanceWeightedMiner(Miner):
    r"""Distance-weighted negative sampling (Wu, Manmatha, Smola and Krähenbühl, ICCV 2017).

    On unit embeddings in :math:`\mathbb{R}^d` pairwise distances follow
    :math:`q(\mathrm{d}) \propto \mathrm{d}^{d-2}(1 - \mathrm{d}^2/4)^{(d-3)/2}`; negatives are
    drawn with probability :math:`\propto 1/q(\max(\mathrm{d}, c))`, restricted to
    :math:`\mathrm{d} < c_{\text{nz}}` (``nonzero_loss_cutoff``). One negative is drawn for every
    positive pair, from ``generator`` (a fixed seed ``seed`` without one); an anchor with no
    negative inside the cutoff draws uniformly among its negatives.

    The distance is taken from a cosine similarity, :math:`\mathrm{d} = \sqrt{2 - 2s}`, so the
    embeddings should be L2-normalised (``similarity="cosine"``). The embedding size comes from
    ``dim`` or from the loss that calls the miner. ``max_per_anchor`` keeps that many positive
    pairs per anchor, drawn at random. Cost: :math:`O(NM)` plus one multinomial draw per
    positive pair.
    """

    def __init__(
        self,
        cutoff: float = 0.5,
        nonzero_loss_cutoff: float = 1.4,
        dim: int | None = None,
        max_per_anchor: int | None = None,
        seed: int = 0,
    ) -> None:
        super().__init__(max_per_anchor)
        where = type(self).__name__
        self.cutoff = params.positive(where, "cutoff", cutoff)
        self.nonzero_loss_cutoff = params.positive(
            where, "nonzero_loss_cutoff", nonzero_loss_cutoff
        )
        if self.nonzero_loss_cutoff <= self.cutoff:
            raise ValueError(
                f"{where}: nonzero_loss_cutoff must be > cutoff ({self.cutoff!r}), got "
                f"{nonzero_loss_cutoff!r}"
            )
        if dim is not None:
            params.positive_int(where, "dim", dim)
            if dim < 3:
                raise ValueError(f"{where}: dim must be >= 3 or None, got {dim!r}")
        self.dim = dim
        self.seed = params.nonnegative_int(where, "seed", seed)

    def weights(self, similarity: Tensor, negative: Tensor, dim: int) -> Tensor:
        """``[N, M]`` sampling weights (rows sum to 1 where an anchor has a negative)."""
        if dim < 3:
            raise ValueError(f"DistanceWeightedMiner needs an embedding size >= 3, got {dim}")
        distance = (2.0 - 2.0 * similarity).clamp(min=0.0).sqrt().clamp(min=self.cutoff)
        log_inv_q = (
            -(dim - 2.0) * distance.log()
            - (dim - 3.0) / 2.0 * (1.0 - 0.25 * distance.pow(2)).clamp(min=1e-8).log()
        )
        allowed = negative & (distance < self.nonzero_loss_cutoff)
        log_inv_q = torch.where(allowed, log_inv_q, -math.inf)
        row_max = log_inv_q.amax(1, keepdim=True)
        row_max = torch.where(torch.isfinite(row_max), row_max, torch.zeros_like(row_max))
        weight = torch.where(allowed, (log_inv_q - row_max).exp(), torch.zeros_like(log_inv_q))
        # Anchors with nothing inside the cutoff: uniform over their negatives.
        empty = ~allowed.any(1, keepdim=True)
        weight = torch.where(empty, negative.to(weight.dtype), weight)
        return weight / weight.sum(1, keepdim=True).clamp(min=1e-30)

    def select(
        self,
        similarity: Tensor,
        positive: Tensor,
        negative: Tensor,
        *,
        generator: torch.Generator | None,
        dim: int | None,
    ) -> Pairs | Triplets:
        dim = self.dim or dim
        if dim is None:
            raise ValueError("DistanceWeightedMiner: pass dim= (the embedding size)")
        gen = generator
        if gen is None:
            gen = torch.Generator(device=similarity.device).manual_seed(self.seed)
        weight = self.weights(similarity, negative, dim)
        has_negative = negative.any(1)
        anchor, pos = torch.nonzero(positive & has_negative.unsqueeze(1), as_tuple=True)
        found = int(anchor.numel())
        if self.max_per_anchor is not None and found:
            priority = torch.rand(found, generator=gen, device=similarity.device)
            keep = keep_top_per_anchor(anchor, priority, self.max_per_anchor)
            anchor, pos = anchor[keep], pos[keep]
        if anchor.numel() == 0:
            return _empty_triplets(similarity.device, found)
        neg = torch.multinomial(weight[anchor], 1, generator=gen)[:, 0]
        return Triplets(anchor, pos, neg, found)


def get(name: str, **kwargs: Any) -> Miner:
    """Build the miner registered as ``name`` (see :func:`available`)."""
    return MINERS.get(name)(**kwargs)


def available() -> list[str]:
    """Registered miner names."""
    return MINERS.names()


def _margin(kind: str) -> Callable[..., MarginMiner]:
    def build(margin: float = 0.2, max_per_anchor: int | None = None) -> MarginMiner:
        return MarginMiner(margin, kind, max_per_anchor)

    build.__doc__ = f'``MarginMiner(kind="{kind}")``.'
    return build


MINERS.register("batch_hard", BatchHardMiner, family="triplets")
MINERS.register("semi_hard", BatchSemiHardMiner, family="triplets")
MINERS.register("margin", MarginMiner, family="triplets")
MINERS.register("hard", _margin("hard"), family="triplets")
MINERS.register("semihard_margin", _margin("semihard"), family="triplets")
MINERS.register("easy", _margin("easy"), family="triplets")
MINERS.register("pair_margin", PairMarginMiner, family="pairs")
MINERS.register("distance_weighted", DistanceWeightedMiner, family="triplets")
MINERS.register("multi_similarity", MultiSimilarityMiner, family="pairs")

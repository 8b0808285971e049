"""Pairs, triplets, miners, balanced batch samplers and a cross-batch memory.

* :mod:`~rankloss._core.tuples`: typed :class:`Pairs` / :class:`Triplets` and their
  construction from labels (:func:`all_pairs`, :func:`all_triplets`, :func:`graded_pairs`).
* :mod:`~rankloss.mining.miners`: miners on a detached similarity matrix, by name through
  :func:`get` (``"batch_hard"``, ``"semi_hard"``, ``"margin"``, ``"hard"``, ``"easy"``,
  ``"pair_margin"``, ``"distance_weighted"``, ``"multi_similarity"``).
* :mod:`~rankloss.mining.samplers`: ``torch.utils.data`` batch samplers
  (:class:`MPerClassSampler`, :class:`ClassBalancedSampler`, :class:`ListSampler`).
* :mod:`~rankloss.mining.memory`: :class:`CrossBatchMemory`, a queue of past embeddings.

See ``docs/mining.md``.
"""

from rankloss._core.tuples import (
    GradedPairs,
    Pairs,
    Triplets,
    all_pairs,
    all_triplets,
    graded_pairs,
    keep_top_per_anchor,
    label_masks,
    pairs_to_triplets,
    triplets_to_pairs,
)
from rankloss.mining.memory import CrossBatchMemory
from rankloss.mining.miners import (
    MINERS,
    BatchHardMiner,
    BatchSemiHardMiner,
    DistanceWeightedMiner,
    MarginMiner,
    Miner,
    MultiSimilarityMiner,
    PairMarginMiner,
    available,
    get,
)
from rankloss.mining.samplers import ClassBalancedSampler, ListSampler, MPerClassSampler

__all__ = [
    "Pairs",
    "Triplets",
    "GradedPairs",
    "label_masks",
    "all_pairs",
    "all_triplets",
    "graded_pairs",
    "pairs_to_triplets",
    "triplets_to_pairs",
    "keep_top_per_anchor",
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
    "MPerClassSampler",
    "ClassBalancedSampler",
    "ListSampler",
    "CrossBatchMemory",
]

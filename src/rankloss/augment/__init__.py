"""Augmentations that make positive pairs: images, text and feature vectors.

Transforms are stateless and batched: ``transform(x, generator=g)`` draws independent
parameters for every sample of the batch from ``g`` (a ``torch.Generator``, an int seed, or
``None`` for a fresh, unseeded one; the global random state is never used).
:class:`TwoViews` owns a generator and returns ``(view1, view2, labels)``. See
``docs/augment.md``.

* combinators: :class:`Compose`, :class:`RandomApply`, :class:`OneOf`, :class:`Identity`;
* images ``[N, C, H, W]`` in ``[0, 1]``: crops, flips, affine warps, colour jitter, grey,
  blur, noise, erasing; :func:`simclr_image_pipeline`;
* text (``str``, ``list[str]`` or token ids ``[N, L]``): word dropout, span deletion, local
  shuffle, insertion, swap; WordNet synonym replacement;
* feature lists ``[..., n, f]``: per-feature noise, feature dropout, mixup between items.
"""

from rankloss.augment.base import (
    Compose,
    Identity,
    OneOf,
    RandomApply,
    Transform,
    TwoViews,
    TwoViewsDataset,
    make_generator,
)
from rankloss.augment.features import FeatureDropout, FeatureNoise, ItemMixup
from rankloss.augment.image import (
    ColorJitter,
    GaussianBlur,
    GaussianNoise,
    Grayscale,
    RandomAffine,
    RandomErasing,
    RandomGrayscale,
    RandomHorizontalFlip,
    RandomResizedCrop,
    simclr_image_pipeline,
)
from rankloss.augment.text import (
    LocalShuffle,
    RandomInsertion,
    RandomSwap,
    SpanDeletion,
    SynonymReplacement,
    WordDropout,
)
from rankloss.augment.wordnet import WordNet, WordNetNotFoundError

__all__ = [
    # combinators and pairs
    "Transform",
    "Compose",
    "RandomApply",
    "OneOf",
    "Identity",
    "TwoViews",
    "TwoViewsDataset",
    "make_generator",
    # images
    "RandomResizedCrop",
    "RandomHorizontalFlip",
    "RandomAffine",
    "ColorJitter",
    "Grayscale",
    "RandomGrayscale",
    "GaussianBlur",
    "GaussianNoise",
    "RandomErasing",
    "simclr_image_pipeline",
    # text
    "WordDropout",
    "SpanDeletion",
    "LocalShuffle",
    "RandomInsertion",
    "RandomSwap",
    "SynonymReplacement",
    "WordNet",
    "WordNetNotFoundError",
    # features
    "FeatureNoise",
    "FeatureDropout",
    "ItemMixup",
]

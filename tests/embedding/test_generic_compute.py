"""The default ``SimilarityLoss._compute`` passes each hyper-parameter to the right argument.

For every registered similarity loss that uses the default ``_compute``, a module built with
non-default hyper-parameters (drawn from its search space, booleans flipped) gives the same
per-anchor values as its registered function called directly with those hyper-parameters,
and differs from the function with its defaults (so a dropped or misnamed hyper-parameter
fails).
"""

from __future__ import annotations

import inspect
import math
from typing import Any

import pytest
import torch

import rankloss
from rankloss.losses.base import LOSSES
from rankloss.losses.embedding import SimilarityLoss
from rankloss.mining import Triplets


def _generic_losses() -> list[str]:
    names = []
    for name in rankloss.losses.available("embedding"):
        cls = LOSSES.entry(name).obj
        if not (isinstance(cls, type) and issubclass(cls, SimilarityLoss)):
            continue
        # Reaches the default _compute: no _loss of its own, or one whose direct path is the
        # shared one (the streaming losses fall back to ``super()._loss`` on small inputs).
        reaches = cls._loss is SimilarityLoss._loss or "super()._loss(" in inspect.getsource(
            cls._loss
        )
        if cls._compute is SimilarityLoss._compute and reaches:
            names.append(name)
    return names


GENERIC = _generic_losses()


def _non_default(spec: tuple[Any, ...], default: Any) -> Any:
    """A value of ``spec`` away from its ends and from ``default``."""
    kind = spec[0]
    if kind == "choice":
        return next(c for c in spec[1] if c != default)
    lo, hi = spec[1], spec[2]
    if kind == "log":
        value = math.exp(math.log(lo) + 0.37 * (math.log(hi) - math.log(lo)))
    else:
        value = lo + 0.37 * (hi - lo)
    if kind == "int":
        value = round(value)
    assert value != default
    return value


def _hyper(name: str, flip_booleans: bool) -> dict[str, Any]:
    entry = LOSSES.entry(name)
    cls = entry.obj
    defaults = cls.hyper_parameter_defaults()
    hyper = {k: _non_default(v, defaults[k]) for k, v in entry.meta["info"].search_space.items()}
    if flip_booleans:
        for k, v in defaults.items():
            if isinstance(v, bool) and k not in cls.module_only:
                hyper[k] = not v
    return hyper


def _batch() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    embeddings = torch.randn(10, 4, generator=g, dtype=torch.float64) * 0.6
    labels = torch.tensor([0, 0, 1, 1, 1, 2, 2, 3, 3, 0])
    similarity = embeddings @ embeddings.T
    same = labels[:, None] == labels[None, :]
    eye = torch.eye(len(labels), dtype=torch.bool)
    return embeddings, labels, similarity, same & ~eye, ~same


def test_the_generic_compute_is_used_by_the_simple_losses() -> None:
    # The losses that lost their own _compute: this test must cover them.
    assert {"contrastive", "triplet", "tuplet_margin", "dcl", "supcon"} <= set(GENERIC)


@pytest.mark.parametrize("flip_booleans", [False, True])
@pytest.mark.parametrize("name", GENERIC)
def test_module_equals_its_function_with_the_same_hyper_parameters(
    name: str, flip_booleans: bool
) -> None:
    function = LOSSES.entry(name).meta["function"]
    hyper = _hyper(name, flip_booleans)
    embeddings, labels, similarity, positive, negative = _batch()
    module = rankloss.losses.get(name, similarity="dot", reduction="none", **hyper)
    got = module(embeddings, labels)
    hyper.pop("learnable", None)
    expected = function(similarity, positive, negative, reduction="none", **hyper)
    torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-12)
    if not flip_booleans:
        plain = function(similarity, positive, negative, reduction="none")
        assert not torch.allclose(got, plain), f"{name}: the hyper-parameters change nothing"


@pytest.mark.parametrize(
    "name", [n for n in GENERIC if LOSSES.entry(n).obj.tuple_kind == "triplets"]
)
def test_triplet_losses_receive_the_triplets(name: str) -> None:
    function = LOSSES.entry(name).meta["function"]
    embeddings, labels, similarity, positive, negative = _batch()
    triplets = Triplets(
        anchor=torch.tensor([0, 2, 2, 5]),
        positive=torch.tensor([1, 3, 4, 6]),
        negative=torch.tensor([2, 0, 7, 9]),
    )
    hyper = _hyper(name, flip_booleans=False)
    module = rankloss.losses.get(name, similarity="dot", reduction="sum", **hyper)
    got = module(embeddings, labels, indices=triplets)
    expected = function(similarity, positive, negative, triplets=triplets, reduction="sum", **hyper)
    everything = function(similarity, positive, negative, reduction="sum", **hyper)
    torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-12)
    assert not torch.allclose(got, everything)

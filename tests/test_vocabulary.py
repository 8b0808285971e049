"""One word, one meaning: the glossary of ``docs/conventions.md`` over every public signature.

Names that meant different things in the first release (``threshold`` with ``>`` or ``>=``,
``temperature`` on labels or on logits, ``labels_or_keys`` told apart by dtype) are refused in
public signatures, and the words that remain are checked by what they do:

* ``temperature`` divides logits: scaling the logits and the temperature together changes
  nothing, for every loss that takes a temperature;
* ``relevance_threshold`` keeps a label equal to the threshold relevant (``>=``).
"""

from __future__ import annotations

import importlib
import inspect
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import torch

from rankloss.losses import LOSSES, available, get

PUBLIC_PACKAGES = (
    "rankloss.functional",
    "rankloss.losses",
    "rankloss.metrics",
    "rankloss.mining",
    "rankloss.lists",
    "rankloss.augment",
    "rankloss.data",
    "rankloss.models",
    "rankloss.train",
)

#: Names that must not appear as parameters of a public function or class.
BANNED = {
    "threshold": "use relevance_threshold (label >= threshold is relevant) or say what it is",
    "tau": "use temperature",
    "temp": "use temperature",
    "labels_or_keys": "pass keys= for the (queries, keys) form",
    "pair_labels": "pass labels with keys=",
    "is_inverted": "similarities only: higher means closer",
    "distance": "similarities only: higher means closer",
    "rel_threshold": "use relevance_threshold",
    "min_relevance": "use relevance_threshold",
}


def _public_callables() -> Iterator[tuple[str, Callable]]:
    for package in PUBLIC_PACKAGES:
        module = importlib.import_module(package)
        for name in getattr(module, "__all__", []):
            obj = getattr(module, name)
            if inspect.isclass(obj):
                for method in ("__init__", "forward", "__call__"):
                    if method in vars(obj):
                        yield f"{package}.{name}.{method}", getattr(obj, method)
            elif callable(obj):
                yield f"{package}.{name}", obj


CALLABLES = dict(_public_callables())


def test_there_are_public_signatures_to_check():
    assert len(CALLABLES) > 100


@pytest.mark.parametrize("qualname", sorted(CALLABLES))
def test_no_banned_parameter_names(qualname):
    try:
        signature = inspect.signature(CALLABLES[qualname])
    except (TypeError, ValueError):
        pytest.skip("no signature")
    for parameter in signature.parameters:
        assert parameter not in BANNED, f"{qualname}({parameter}=...): {BANNED[parameter]}"


def test_every_threshold_is_a_relevance_threshold_or_names_its_quantity():
    for qualname, function in CALLABLES.items():
        try:
            names = inspect.signature(function).parameters
        except (TypeError, ValueError):
            continue
        for parameter in names:
            if "threshold" in parameter:
                assert re.fullmatch(r"(relevance|rating)_threshold", parameter), (
                    qualname,
                    parameter,
                )


# ------------------------------------------------------------------------------------------
# temperature divides logits


def _losses_with(parameter: str) -> list[str]:
    return [n for n in available() if parameter in LOSSES.get(n).hyper_parameter_defaults()]


TEMPERATURE_LOSSES = _losses_with("temperature")


def test_temperature_losses_are_found():
    assert {"neural_ndcg", "info_nce", "supcon"} <= set(TEMPERATURE_LOSSES)


@pytest.mark.parametrize("name", TEMPERATURE_LOSSES)
def test_temperature_divides_logits(name):
    if LOSSES.entry(name).family == "proxy":
        pytest.skip("proxies and embeddings are normalised: tests/embedding/test_proxy.py")
    g = torch.Generator().manual_seed(0)
    c = 3.0
    kind = LOSSES.get(name).kind
    if kind == "list":
        scores = torch.randn(3, 6, generator=g, dtype=torch.float64)
        labels = torch.randint(0, 4, (3, 6), generator=g).double()
        base = get(name, temperature=0.7)(scores, labels)
        scaled = get(name, temperature=0.7 * c)(scores * c, labels)
    else:
        x = torch.randn(8, 5, generator=g, dtype=torch.float64)
        y = torch.tensor([0, 0, 1, 1, 2, 2, 3, 3])
        # With the dot similarity, scaling the embeddings by sqrt(c) scales the logits by c.
        base = get(name, temperature=0.2, similarity="dot")(x, y)
        scaled = get(name, temperature=0.2 * c, similarity="dot")(x * c**0.5, y)
    torch.testing.assert_close(base, scaled, rtol=1e-10, atol=1e-12)


def test_label_temperature_divides_labels():
    g = torch.Generator().manual_seed(1)
    scores = torch.randn(3, 5, generator=g, dtype=torch.float64)
    labels = torch.randn(3, 5, generator=g, dtype=torch.float64)
    for name in _losses_with("label_temperature"):
        base = get(name, label_temperature=0.5)(scores, labels)
        torch.testing.assert_close(base, get(name, label_temperature=1.5)(scores, labels * 3.0))


# ------------------------------------------------------------------------------------------
# relevance_threshold keeps a label equal to the threshold relevant


THRESHOLD_LOSSES = _losses_with("relevance_threshold")


def test_threshold_losses_are_found():
    assert {"bpr", "hinge", "sigmoid_ce", "pairwise"} <= set(THRESHOLD_LOSSES)


@pytest.mark.parametrize("name", THRESHOLD_LOSSES)
def test_relevance_threshold_is_inclusive(name):
    t = 2.0
    scores = torch.tensor([[0.3, -0.2, 0.9, 0.1]], dtype=torch.float64)
    at = torch.tensor([[t, 0.0, 1.0, t]], dtype=torch.float64)
    above = torch.tensor([[t + 0.5, 0.0, 1.0, t + 0.5]], dtype=torch.float64)
    below = torch.tensor([[t - 0.5, 0.0, 1.0, t - 0.5]], dtype=torch.float64)
    loss = get(name, relevance_threshold=t)
    torch.testing.assert_close(loss(scores, at), loss(scores, above))
    assert not torch.allclose(loss(scores, at), loss(scores, below))


def test_the_glossary_names_every_checked_word():
    glossary = (Path(__file__).parents[1] / "docs" / "conventions.md").read_text()
    for word in ("temperature", "label_temperature", "relevance_threshold", "hit@k", "recall@k"):
        assert f"| `{word}` |" in glossary, word


def test_list_sampler_threshold_is_inclusive_with_the_metrics_default():
    from rankloss.mining import ListSampler

    query_ids = torch.tensor([0, 0, 0, 1, 1])
    labels = torch.tensor([2.0, 1.0, 0.0, 0.5, 0.0])
    sampler = ListSampler(query_ids, labels, items_per_list=2, lists_per_batch=1)
    assert [r.tolist() for r in sampler.relevant] == [[True, True, False], [False, False]]
    at = ListSampler(query_ids, labels, items_per_list=2, lists_per_batch=1, relevance_threshold=2)
    assert at.relevant[0].tolist() == [True, False, False]


def test_ndcg_means_linear_gain_in_every_entry_point():
    import rankloss.metrics as M

    scores = torch.tensor([[0.9, 0.8, 0.7, 0.1]], dtype=torch.float64)
    labels = torch.tensor([[1.0, 3.0, 0.0, 2.0]], dtype=torch.float64)
    linear = float(M.ndcg(scores, labels, k=3).mean())
    burges = float(M.ndcg(scores, labels, k=3, gain="exp2").mean())
    assert linear != pytest.approx(burges)
    assert float(M.compute("ndcg@3", scores, labels)) == pytest.approx(linear)
    assert float(M.compute("ndcg_burges@3", scores, labels)) == pytest.approx(burges)
    run = {"q": {"a": 0.9, "b": 0.8, "c": 0.7, "d": 0.1}}
    qrels = {"q": {"a": 1, "b": 3, "c": 0, "d": 2}}
    assert M.evaluate(qrels, run, ["ndcg@3"])["ndcg@3"] == pytest.approx(linear)
    assert M.evaluate(qrels, run, ["ndcg_burges@3"])["ndcg_burges@3"] == pytest.approx(burges)

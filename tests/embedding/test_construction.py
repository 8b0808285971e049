"""Every hyper-parameter of every embedding-loss module is checked when the module is built.

A bad value of the right type is a ``ValueError`` and a value of the wrong type a ``TypeError``,
both reading ``"<Class>: <name> must be ..., got ..."``. The table below must cover every
hyper-parameter of every registered embedding loss.
"""

from __future__ import annotations

import inspect
import re

import pytest
import torch

import rankloss
from rankloss.losses import LOSSES
from rankloss.losses.embedding import (
    CircleLoss,
    ContrastiveLoss,
    InfoNCELoss,
    MarginRankingLoss,
    MultiSimilarityLoss,
    NTXentLoss,
    SigLIPLoss,
    SupConLoss,
    TripletLoss,
)
from tests.embedding.test_ap_surrogates import CONSTRUCTION as AP_SURROGATES
from tests.embedding.test_tuple_losses import CONSTRUCTION as TUPLE_LOSSES

NAN, INF = float("nan"), float("inf")

# hyper-parameter -> (bad values: ValueError, wrong types: TypeError), shared by every class
COMMON = {
    "similarity": (["euclid", "Cosine"], [1, None]),
    "reduction": (["avg", "Mean"], [None, 0]),
    "miner": ([], [3, 0.5]),
    "impl": (["cuda", "Torch"], [None, 1]),
    "chunk_size": ([0, -4], [2.5, "8", True]),
}

OWN = {
    ContrastiveLoss: {
        "pos_margin": ([NAN, INF, -0.5], ["1", None]),  # -0.5 < neg_margin
        "neg_margin": ([NAN, -INF], [True]),
        "squared": ([], [1, "yes", None]),
    },
    MultiSimilarityLoss: {
        "alpha": ([0.0, -1.0, NAN], ["2"]),
        "beta": ([0, -50.0, INF], [None]),
        "base": ([NAN, -INF], ["0.5", False]),
    },
    CircleLoss: {
        "margin": ([-0.1, 1.5, NAN], ["0.4"]),
        "gamma": ([0.0, -80.0], [None]),
    },
    TripletLoss: {
        "margin": ([-0.1, NAN], ["0.1", None]),
        "soft_margin": ([], [0, "no"]),
    },
    MarginRankingLoss: {
        "margin": ([-1.0, INF], [None]),
    },
    SupConLoss: {
        "temperature": ([0.0, -0.1, NAN], ["0.1", None]),
    },
    SigLIPLoss: {
        "scale": ([0.0, -1.0, INF], ["10", None]),
        "bias": ([NAN, -INF], ["0", None]),
        "learnable": ([], [1, None]),
    },
    InfoNCELoss: {
        "temperature": ([0.0, -1.0, INF], ["0.07", None]),
        "learnable_temperature": ([], [1, None]),
        "symmetric": ([], [1, "true"]),
        "false_negatives": (["drop", "Mask"], [True, None]),
        "chunk_size": ([0, -4], [2.5, "8", True]),
    },
    NTXentLoss: {
        "temperature": ([0.0, NAN], ["0.5"]),
        "learnable_temperature": ([], ["yes"]),
        "chunk_size": ([0], [1.0]),
    },
    **TUPLE_LOSSES,
    **AP_SURROGATES,
}

CASES = [
    (cls, name, bad, wrong)
    for cls, own in OWN.items()
    for name in cls.hyper_parameter_defaults()
    for bad, wrong in [own.get(name, COMMON.get(name, ([], [])))]
]


def test_every_hyper_parameter_of_every_embedding_loss_is_covered():
    registered = {LOSSES.get(name) for name in rankloss.losses.available("embedding")}
    assert registered == set(OWN)
    for cls in OWN:
        for name in cls.hyper_parameter_defaults():
            assert name in OWN[cls] or name in COMMON, (cls.__name__, name)
            bad, wrong = OWN[cls].get(name, COMMON.get(name))
            assert bad or wrong, (cls.__name__, name)


@pytest.mark.parametrize(
    "cls,name,bad,wrong", CASES, ids=[f"{c.__name__}-{n}" for c, n, _, _ in CASES]
)
def test_bad_values_fail_at_construction(cls, name, bad, wrong):
    prefix = rf"^{cls.__name__}: {name} must be"
    for value in bad:
        with pytest.raises(ValueError, match=prefix):
            cls(**{name: value})
    for value in wrong:
        with pytest.raises(TypeError, match=prefix):
            cls(**{name: value})


def test_unknown_miner_name_fails_at_construction():
    with pytest.raises(KeyError, match="did you mean 'batch_hard'"):
        TripletLoss(miner="batch_hardd")
    with pytest.raises(KeyError):
        rankloss.losses.get("contrastive", miner="nope")


def test_chunk_size_needs_a_matrix_product_similarity():
    with pytest.raises(
        ValueError,
        match=r"InfoNCELoss: similarity must be one of \['dot', 'cosine'\] with chunk_size",
    ):
        InfoNCELoss(similarity="neg_euclidean", chunk_size=4)
    with pytest.raises(ValueError, match="NTXentLoss: similarity must be one of"):
        NTXentLoss(similarity="neg_sq_euclidean", chunk_size=4)
    assert InfoNCELoss(similarity="dot", chunk_size=4).chunk_size == 4


def test_contrastive_margins_are_on_similarities():
    # pytorch-metric-learning's distance defaults (pos 0, neg 1) are refused, with the reason.
    with pytest.raises(
        ValueError, match=r"pos_margin must be >= neg_margin \(1\.0\).*similarities"
    ):
        ContrastiveLoss(pos_margin=0.0, neg_margin=1.0)
    with pytest.raises(ValueError, match=r"^ContrastiveLoss: pos_margin must be >= neg_margin"):
        ContrastiveLoss(neg_margin=2.0)
    assert ContrastiveLoss(
        similarity="neg_euclidean", pos_margin=0.0, neg_margin=-1.0, squared=True
    )


def test_unknown_hyper_parameter_is_a_type_error():
    with pytest.raises(TypeError, match="unknown hyper-parameter 'temprature'"):
        rankloss.losses.get("info_nce", temprature=0.1)
    with pytest.raises(TypeError):
        TripletLoss(bogus=1)  # type: ignore[call-arg]


@pytest.mark.parametrize("cls", list(OWN))
def test_hyper_parameters_are_stored_and_read_back(cls):
    module = cls()
    defaults = cls.hyper_parameter_defaults()
    assert module.hyper_parameters() == defaults
    # The constructor is keyword-only and typed.
    for p in list(inspect.signature(cls.__init__).parameters.values())[1:]:
        assert p.kind is inspect.Parameter.KEYWORD_ONLY and p.annotation is not p.empty, p
    rebuilt = cls(**module.hyper_parameters())
    assert rebuilt.hyper_parameters() == module.hyper_parameters()


@pytest.mark.parametrize("cls", list(OWN))
def test_docstring_has_formula_reference_and_defaults(cls):
    doc = cls.__doc__
    assert ".. math::" in doc or ":math:" in doc
    assert re.search(r"\b(19|20)\d\d\b", doc)
    for name, default in cls.hyper_parameter_defaults().items():
        assert f"{name}={default!r}" in doc, (cls.__name__, name)
    function = LOSSES.entry(cls.registered_name).meta["function"]
    fdoc = inspect.getdoc(function)
    assert ".. math::" in fdoc and re.search(r"\b(19|20)\d\d\b", fdoc)
    assert "Args:" in fdoc and "Returns:" in fdoc and "Cost" in fdoc


def test_module_docstring_example_runs():
    import doctest

    import rankloss.losses.embedding as module

    torch.manual_seed(0)
    result = doctest.testmod(module)
    assert result.failed == 0 and result.attempted > 0

"""Loss names from other libraries resolve to the registered loss; folding never collides."""

from __future__ import annotations

import pytest

from rankloss import losses
from rankloss.losses.base import ALIASES, _fold, resolve_name


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("NTXentLoss", "nt_xent"),  # pytorch-metric-learning
        ("SupConLoss", "supcon"),
        ("TripletMarginLoss", "triplet"),
        ("MultiSimilarityLoss", "multi_similarity"),
        ("ContrastiveLoss", "contrastive"),
        ("CircleLoss", "circle"),
        ("MultipleNegativesRankingLoss", "info_nce"),  # sentence-transformers
        ("neuralNDCG", "neural_ndcg"),  # allRank
        ("approxNDCGLoss", "approx_ndcg"),
        ("lambdaLoss", "lambdaloss"),
        ("rankNet", "ranknet"),
        ("listMLE", "listmle"),
        ("listNet", "listnet"),
        ("pairwise_logistic_loss", "ranknet"),  # rax
        ("softmax_loss", "softmax_ce"),
        ("LambdaRankLoss", "lambdarank"),
        ("ranknet", "ranknet"),
        ("Info-NCE", "info_nce"),
    ],
)
def test_other_libraries_names_resolve(given, expected):
    assert resolve_name(given) == expected
    assert losses.get(given).registered_name == expected


def test_folded_registered_names_are_unique():
    folded = [_fold(name) for name in losses.available()]
    assert len(folded) == len(set(folded)), sorted(folded)


def test_every_alias_names_a_registered_loss():
    registered = set(losses.available())
    unknown = {alias: target for alias, target in ALIASES.items() if target not in registered}
    assert not unknown, unknown


@pytest.mark.badinput("losses")
def test_unknown_name_lists_close_names():
    with pytest.raises(KeyError, match="did you mean 'ranknet'"):
        losses.get("rankent")


@pytest.mark.badinput("losses")
def test_name_must_be_a_string():
    with pytest.raises(TypeError, match="loss name must be a str"):
        resolve_name(3)  # type: ignore[arg-type]

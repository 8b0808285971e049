"""The loss registry, the module wrappers and CombinedLoss.

The embedding family is tested with the embedding losses; here every loss of the list families
and the adversarial family must build by name, run forward and backward, and document itself.
"""

from __future__ import annotations

import inspect
import re

import pytest
import torch
from torch import nn

import rankloss
import rankloss.functional as RF
from rankloss._core.registry import Registry
from rankloss.losses import LOSSES, CombinedLoss, Loss, available, get
from tests.losses._cases import LIST_FAMILIES, fit_labels, hyper

FAMILIES = (*LIST_FAMILIES, "adversarial")
NAMES = [*available(kind="list"), *available("adversarial")]


def _batch(name: str):
    g = torch.Generator().manual_seed(7)
    scores = torch.randn(3, 5, generator=g, requires_grad=True)
    labels = fit_labels(name, torch.randint(-1, 4, (3, 5), generator=g).float())
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0], [0, 1, 0, 1, 1]], dtype=torch.bool)
    return scores, labels, mask


def test_the_families_are_registered():
    assert set(FAMILIES) <= set(LOSSES.families())
    assert len(available("adversarial")) == 2
    assert set(available()) >= set(NAMES)
    for family in FAMILIES:
        assert available(family), family


@pytest.mark.parametrize("name", NAMES)
def test_builds_runs_forward_and_backward(name):
    module = get(name, **hyper(name))
    assert isinstance(module, Loss)
    assert module.kind == LOSSES.entry(name).meta["info"].kind
    assert type(module).registered_name == name
    family = LOSSES.entry(name).family
    if family == "adversarial":
        real = torch.randn(4, 3, requires_grad=True)
        fake = torch.randn(4, 3, requires_grad=True)
        value = module(real, fake) if "real_logits" in _parameters(module) else module(fake)
        value.backward()
        assert fake.grad is not None and torch.isfinite(fake.grad).all()
    else:
        scores, labels, mask = _batch(name)
        value = module(scores, labels, mask)
        value.backward()
        assert torch.isfinite(scores.grad).all() and scores.grad.abs().sum() > 0
        assert (scores.grad[~mask] == 0).all()
        # The module calls its function with its hyper-parameters.
        function = LOSSES.entry(name).meta["function"]
        expected = function(scores, labels, mask, reduction="none", **hyper(name))
        unreduced = get(name, reduction="none", **hyper(name))
        torch.testing.assert_close(unreduced(scores, labels, mask), expected)
    assert value.shape == () and torch.isfinite(value)


@pytest.mark.badinput("losses")
@pytest.mark.parametrize("name", available(kind="list"))
def test_a_modules_input_errors_name_the_module(name):
    """The functional form checks the input; the message names the class the user called."""
    module = get(name, **hyper(name))
    scores, labels, mask = _batch(name)
    with pytest.raises(ValueError, match=rf"^{type(module).__name__}: .*shape") as error:
        module(scores, labels[:, :4], mask)
    assert error.traceback[-1].frame.code.path != __file__  # raised where it was found
    function = LOSSES.entry(name).meta["function"]
    with pytest.raises(ValueError, match=rf"^{function.__name__}: .*shape"):
        function(scores, labels[:, :4], mask, **hyper(name))


def _parameters(module: Loss) -> list[str]:
    return list(inspect.signature(LOSSES.entry(module.registered_name).meta["function"]).parameters)


@pytest.mark.parametrize("name", NAMES)
def test_docstring_has_formula_and_reference(name):
    cls = LOSSES.get(name)
    function = LOSSES.entry(name).meta["function"]
    for doc in (cls.__doc__, inspect.getdoc(function) + (inspect.getmodule(function).__doc__)):
        assert ".. math::" in doc or ":math:" in doc, f"{name}: no formula"
        assert re.search(r"\b(19|20)\d\d\b", doc), f"{name}: no reference with a year"
    # The module docstring lists its hyper-parameters with defaults.
    for parameter, default in cls.hyper_parameter_defaults().items():
        assert f"{parameter}={default!r}" in cls.__doc__


@pytest.mark.parametrize("name", NAMES)
def test_hyper_parameters_match_the_function_signature(name):
    cls = LOSSES.get(name)
    signature = inspect.signature(LOSSES.entry(name).meta["function"])
    expected = {
        p.name: p.default
        for p in signature.parameters.values()
        if p.kind is inspect.Parameter.KEYWORD_ONLY and p.name not in ("weights", "generator")
    }
    assert cls.hyper_parameter_defaults() == expected
    # Written out in the source: every parameter is keyword-only and annotated.
    for parameter in list(inspect.signature(cls.__init__).parameters.values())[1:]:
        assert parameter.kind is inspect.Parameter.KEYWORD_ONLY, (name, parameter)
        assert parameter.annotation is not inspect.Parameter.empty, (name, parameter)
    assert inspect.getsourcefile(cls).endswith(".py") and cls.__init__ is not Loss.__init__


def test_unknown_name_raises_key_error_listing_names():
    with pytest.raises(KeyError) as info:
        get("ranknett")
    message = str(info.value)
    assert "did you mean 'ranknet'" in message
    for name in NAMES:
        assert name in message


def test_unknown_hyper_parameter_raises_type_error():
    with pytest.raises(TypeError, match="unknown hyper-parameter 'sigm'.*sigma"):
        get("ranknet", sigm=2.0)
    with pytest.raises(TypeError, match="unexpected keyword argument 'bogus'"):
        rankloss.losses.RankNetLoss(sigma=2.0, bogus=1)  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="unknown hyper-parameter 'generator'"):
        get("listmle", generator=torch.Generator())
    with pytest.raises(TypeError, match="unknown hyper-parameter 'weights'"):
        get("mse", weights=torch.ones(3))
    with pytest.raises(TypeError, match="sigma"):
        get("ranknet")(torch.zeros(2), torch.zeros(2), sigma=2.0)  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="reduction"):
        get("ranknet")(torch.zeros(2), torch.zeros(2), reduction="none")  # type: ignore[call-arg]


def test_hyper_parameters_reach_the_function():
    scores = torch.tensor([[0.3, -0.2, 1.1]])
    labels = torch.tensor([[2.0, 0.0, 1.0]])
    module = rankloss.losses.RankNetLoss(sigma=3.0, k=2)
    torch.testing.assert_close(
        module(scores, labels), RF.ranknet_loss(scores, labels, sigma=3.0, k=2)
    )
    assert "sigma=3.0" in repr(module) and "k=2" in repr(module)
    assert module(scores, labels) != get("ranknet")(scores, labels)


BAD_VALUES = [
    ("lambdarank", "gain", "cubic"),
    ("lambdaloss", "weighting", "ndcg_loss3"),
    ("lambdaloss", "mu", -3.0),
    ("lambdaloss", "sigma", 0.0),
    ("ranknet", "sigma", -1.0),
    ("approx_ndcg", "alpha", -5.0),
    ("smooth_l1", "beta", 0.0),
    ("listnet", "label_temperature", 0.0),
    ("kl_div", "label_temperature", -1.0),
    ("neural_ndcg", "temperature", 0.0),
    ("neural_ndcg", "sinkhorn_iterations", -1),
    ("pairwise_hinge", "margin", -0.5),
    ("hinge", "margin", -1.0),
    ("pairwise", "term", "cubic"),
    ("pairwise", "weight", "ndcg_loss9"),
    ("pairwise", "pair_reduction", "max"),
    ("mse", "reduction", "avg"),
    *[(name, "k", 0) for name in ("ranknet", "pairwise_hinge", "lambdarank", "lambdaloss")],
    ("neural_ndcg", "k", -2),
    ("bpr", "k", 0),
]

BAD_TYPES = [
    ("ranknet", "sigma", "2"),
    ("ranknet", "k", 2.5),
    ("lambdaloss", "weighting", 3),
    ("neural_ndcg", "sinkhorn_iterations", 2.0),
    ("bpr", "relevance_threshold", "1"),
    ("mse", "reduction", None),
]


@pytest.mark.badinput("losses")
@pytest.mark.parametrize(("name", "parameter", "value"), BAD_VALUES)
def test_bad_hyper_parameter_values_fail_when_built_and_in_the_function(name, parameter, value):
    cls = LOSSES.get(name)
    with pytest.raises(ValueError, match=rf"^{cls.__name__}: {parameter} must be .*, got "):
        get(name, **{parameter: value})
    # The same check at function entry names the function.
    function = LOSSES.entry(name).meta["function"]
    with pytest.raises(ValueError, match=rf"^{function.__name__}: {parameter} must be .*, got "):
        function(torch.zeros(2, 3), torch.zeros(2, 3), **{parameter: value})


@pytest.mark.parametrize(("name", "parameter", "value"), BAD_TYPES)
def test_hyper_parameters_of_the_wrong_type_are_type_errors(name, parameter, value):
    cls = LOSSES.get(name)
    with pytest.raises(TypeError, match=rf"^{cls.__name__}: {parameter} must be "):
        get(name, **{parameter: value})


def test_lambdaloss_is_never_negative_and_the_two_lambda_paths_are_one():
    g = torch.Generator().manual_seed(3)
    scores = torch.randn(5, 7, generator=g, dtype=torch.float64)
    labels = torch.randint(0, 4, (5, 7), generator=g).double()
    for k in (None, 1, 3):
        torch.testing.assert_close(
            RF.lambdarank_loss(scores, labels, k=k, reduction="none"),
            RF.lambdaloss_loss(scores, labels, weighting="lambdarank", k=k, reduction="none"),
            rtol=0,
            atol=0,
        )
        for weighting in RF.pairwise.LAMBDALOSS_WEIGHTINGS:
            value = RF.lambdaloss_loss(scores, labels, weighting=weighting, k=k, reduction="none")
            assert (value >= 0).all(), (weighting, k)


def test_label_errors_at_function_entry():
    scores, labels = torch.zeros(2, 3), torch.zeros(2, 3)
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 1\]"):
        RF.sigmoid_ce_loss(scores, labels + 2.0)
    with pytest.raises(ValueError, match="labels must be >= 0"):
        RF.softmax_ce_loss(scores, labels - 1.0)


# ------------------------------------------------------------------------------------------
# CombinedLoss


def _list_batch():
    g = torch.Generator().manual_seed(1)
    scores = torch.randn(4, 6, generator=g, dtype=torch.float64, requires_grad=True)
    labels = torch.randint(0, 3, (4, 6), generator=g).double()
    mask = torch.rand(4, 6, generator=g) > 0.2
    return scores, labels, mask


def test_combined_loss_is_the_weighted_sum():
    scores, labels, mask = _list_batch()
    combined = get("ranknet") + 0.5 * get("listnet", label_temperature=2.0) + get("mse") * 2
    assert isinstance(combined, CombinedLoss)
    assert combined.named_terms() == [("ranknet", 1.0), ("listnet", 0.5), ("mse", 2.0)]
    total, parts = combined(scores, labels, mask, return_parts=True)
    expected = {
        "ranknet": RF.ranknet_loss(scores, labels, mask),
        "listnet": RF.listnet_loss(scores, labels, mask, label_temperature=2.0),
        "mse": RF.mse_loss(scores, labels, mask),
    }
    assert set(parts) == set(expected)
    for name, value in expected.items():
        torch.testing.assert_close(parts[name], value.detach())
        assert not parts[name].requires_grad
    weighted = expected["ranknet"] + 0.5 * expected["listnet"] + 2.0 * expected["mse"]
    torch.testing.assert_close(total, weighted)
    torch.testing.assert_close(combined(scores, labels, mask), weighted)
    total.backward()
    assert torch.isfinite(scores.grad).all()
    assert "0.5 * listnet" in repr(combined)


def test_combined_loss_scaling_and_duplicates():
    scores, labels, mask = _list_batch()
    combined = 3.0 * (get("ranknet") + get("ranknet", sigma=2.0))
    assert combined.named_terms() == [("ranknet", 3.0), ("ranknet_2", 3.0)]
    expected = 3.0 * (
        RF.ranknet_loss(scores, labels, mask) + RF.ranknet_loss(scores, labels, mask, sigma=2.0)
    )
    torch.testing.assert_close(combined(scores, labels, mask), expected)
    both = combined + (get("mse") + get("mae"))
    assert [n for n, _ in both.named_terms()] == ["ranknet", "ranknet_2", "mse", "mae"]


def test_sum_of_losses_is_a_combined_loss():
    scores, labels, mask = _list_batch()
    combined = sum([get("ranknet"), 0.5 * get("listnet"), get("mse")])
    assert isinstance(combined, CombinedLoss)
    assert combined.named_terms() == [("ranknet", 1.0), ("listnet", 0.5), ("mse", 1.0)]
    expected = (
        RF.ranknet_loss(scores, labels, mask)
        + 0.5 * RF.listnet_loss(scores, labels, mask)
        + RF.mse_loss(scores, labels, mask)
    )
    torch.testing.assert_close(combined(scores, labels, mask), expected)
    assert sum([0.5 * get("listnet")]).named_terms() == [("listnet", 0.5)]
    for other in (1, 2.0):
        with pytest.raises(TypeError, match="every part must be a rankloss loss module"):
            get("ranknet") + other  # type: ignore[operator]
        with pytest.raises(TypeError, match="unsupported operand"):
            other + get("ranknet")  # type: ignore[operator]
        with pytest.raises(TypeError, match="unsupported operand"):
            other + (get("ranknet") + get("mse"))  # type: ignore[operator]


def test_combined_loss_from_spec():
    scores, labels, mask = _list_batch()
    combined = CombinedLoss.from_spec(
        {
            "lambdarank": 1.0,
            "listnet": {"weight": 0.25, "label_temperature": 0.5},
            "approx_ndcg": {},
        }
    )
    assert combined.named_terms() == [("lambdarank", 1.0), ("listnet", 0.25), ("approx_ndcg", 1.0)]
    expected = (
        RF.lambdarank_loss(scores, labels, mask)
        + 0.25 * RF.listnet_loss(scores, labels, mask, label_temperature=0.5)
        + RF.approx_ndcg_loss(scores, labels, mask)
    )
    torch.testing.assert_close(combined(scores, labels, mask), expected)
    with pytest.raises(KeyError):
        CombinedLoss.from_spec({"no_such_loss": 1.0})
    with pytest.raises(TypeError):
        CombinedLoss.from_spec({"ranknet": {"weight": 1.0, "temperature": 2.0}})


def test_combined_loss_routes_per_call_arguments():
    scores, labels, mask = _list_batch()
    labels = torch.zeros_like(labels)
    labels[:, :2] = 1.0  # ties, so ListMLE's generator matters
    weights = torch.tensor([1.0, 2.0, 0.5, 1.0], dtype=torch.float64)
    combined = get("ranknet") + get("listmle")
    # ranknet takes no generator: passing one must only reach ListMLE.
    total, parts = combined(
        scores,
        labels,
        mask,
        weights=weights,
        generator=torch.Generator().manual_seed(5),
        return_parts=True,
    )
    expected_listmle = RF.listmle_loss(
        scores, labels, mask, weights=weights, generator=torch.Generator().manual_seed(5)
    )
    expected_ranknet = RF.ranknet_loss(scores, labels, mask, weights=weights)
    torch.testing.assert_close(parts["listmle"], expected_listmle.detach())
    torch.testing.assert_close(parts["ranknet"], expected_ranknet.detach())
    torch.testing.assert_close(total, expected_listmle + expected_ranknet)
    with pytest.raises(TypeError, match="no part takes the keyword argument 'seed'"):
        combined(scores, labels, mask, seed=3)


def test_combined_loss_refuses_other_modules_kinds_and_reductions():
    class Zero(nn.Module):
        def forward(self, scores, labels, mask=None):
            return scores.sum() * 0

    with pytest.raises(TypeError, match="must be a rankloss loss module"):
        get("mse") + Zero()
    with pytest.raises(TypeError):
        CombinedLoss([(1.0, RF.mse_loss)])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="at least one"):
        CombinedLoss([])
    with pytest.raises(ValueError, match="one reduction"):
        get("ranknet") + get("listnet", reduction="sum")
    with pytest.raises(TypeError, match="discriminator and generator"):
        get("gan_discriminator") + get("gan_generator")
    combined = get("ranknet") + get("listnet")
    assert combined.kind == "list" and combined.reduction == "mean"


def test_adversarial_modules():
    real, fake = torch.randn(5), torch.randn(5)
    d = get("gan_discriminator", kind="hinge")
    torch.testing.assert_close(d(real, fake), RF.discriminator_loss(real, fake, kind="hinge"))
    g = get("gan_generator", kind="least_squares")
    torch.testing.assert_close(g(fake), RF.generator_loss(fake, kind="least_squares"))
    combined = get("gan_generator") + 2.0 * get("gan_generator", kind="hinge")
    torch.testing.assert_close(
        combined(fake), RF.generator_loss(fake) + 2.0 * RF.generator_loss(fake, kind="hinge")
    )


# ------------------------------------------------------------------------------------------
# The Registry itself


def test_registry_basics():
    r: Registry[int] = Registry("widget")
    r.register("one", 1, family="numbers", note="x")
    assert r.get("one") == 1 and "one" in r and len(r) == 1
    assert r.entry("one").meta == {"note": "x"} and r.families() == ["numbers"]
    assert r.names("numbers") == ["one"] and r.names("other") == []
    with pytest.raises(ValueError, match="already registered"):
        r.register("one", 2)
    r.decorator("two", family="numbers")(2)
    assert [e.name for e in r] == ["one", "two"]
    with pytest.raises(KeyError, match="unknown widget 'three'"):
        r.get("three")


# ------------------------------------------------------------------------------------------
# The misuse cases of the first release (issue "Loss API v2") now fail clearly


def test_an_embedding_loss_refuses_a_ranking_batch():
    scores = torch.randn(4, 6)
    labels = torch.randint(0, 3, (4, 6)).float()
    with pytest.raises(ValueError, match="labels must be integer class labels .*keys="):
        get("info_nce")(scores, labels)


def test_list_and_embedding_losses_do_not_combine():
    with pytest.raises(TypeError, match=r"one kind.*ranknet \(list\).*triplet \(embedding\)"):
        get("ranknet") + get("triplet")
    with pytest.raises(TypeError, match="one kind"):
        0.5 * get("info_nce") + get("listnet")


def test_kinds_of_every_registered_loss():
    kinds = {"embedding": "embedding", "proxy": "embedding", "adversarial": "adversarial"}
    for name in available():
        cls = LOSSES.get(name)
        family = LOSSES.entry(name).family
        assert cls.kind == kinds.get(family, "list"), name
    assert set(available(kind="list")) >= {
        n for f in ("pointwise", "pairwise", "listwise") for n in available(f)
    }


def test_a_loss_with_required_hyper_parameters_says_which_and_gives_an_example():
    registry: Registry = LOSSES
    required = [
        n
        for n in available()
        if any(
            v is inspect.Parameter.empty
            for v in registry.get(n).hyper_parameter_defaults().values()
        )
    ]
    for name in required:
        example = registry.entry(name).meta["info"].example
        assert example, f"{name} has required hyper-parameters but no example"
        with pytest.raises(TypeError, match=r"needs the hyper-parameter\(s\) .*for example"):
            get(name)
        assert isinstance(get(name, **example), Loss)

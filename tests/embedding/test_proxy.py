"""Proxy losses against float64 loop references and pytorch-metric-learning, and their contract.

The property tests run over ``rankloss.losses.available("proxy")``, so a proxy loss registered
later is covered with no edits here.
"""

from __future__ import annotations

import inspect
import math
import re

import pytest
import torch

import rankloss
from rankloss.functional import proxy as FP
from rankloss.losses import LOSSES, ArcFaceLoss, CombinedLoss, ProxyLoss, TripletLoss, get
from tests.embedding import reference_proxy as ref

PROXY_LOSSES = rankloss.losses.available("proxy")
C, D = 4, 5


def _info(name):
    return LOSSES.entry(name).meta["info"]


def _build(name, **hyper):
    return get(name, **{**_info(name).example, **hyper})


def _data(n=7, d=8, classes=4, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g, dtype=dtype)
    y = torch.randint(0, classes, (n,), generator=g)
    return x, y


def _proxies(centres=None, seed=1, dtype=torch.float64, d=D):
    g = torch.Generator().manual_seed(seed)
    shape = (C, d) if centres is None else (C, centres, d)
    return torch.randn(*shape, generator=g, dtype=dtype)


def _double(module):
    return module.double()


# ------------------------------------------------------------------------------ references

# name, functional hyper-parameters, centres per class (None: [C, d] proxies)
CASES = [
    ("proxy_nca", {}, None),
    ("proxy_nca", {"temperature": 0.3}, None),
    ("proxy_nca_pp", {}, None),
    ("proxy_nca_pp", {"temperature": 0.5}, None),
    ("normalized_softmax", {}, None),
    ("normalized_softmax", {"temperature": 0.2}, None),
    ("cosface", {}, None),
    ("cosface", {"margin": 0.2, "scale": 10.0}, None),
    ("arcface", {}, None),
    ("arcface", {"margin": 0.3, "scale": 10.0}, None),
    ("arcface", {"margin": 0.3, "scale": 10.0, "easy_margin": True}, None),
    ("sub_center_arcface", {}, 3),
    ("sub_center_arcface", {"margin": 0.2, "scale": 8.0, "easy_margin": True}, 2),
    ("soft_triple", {}, 10),
    ("soft_triple", {"scale": 5.0, "center_temperature": 0.3, "margin": 0.1}, 3),
    ("soft_triple", {"center_regularization": 0.0}, 1),
]


def _batch_with_extremes(centres):
    """Random embeddings, one equal to its proxy and one opposite it (ArcFace's two edges),
    a class with no embedding (3) and one zero embedding."""
    x, _ = _data(8, D, seed=2)
    y = torch.tensor([0, 1, 2, 0, 1, 2, 0, 1])
    p = _proxies(centres)
    first = p[0] if centres is None else p[0, 0]
    x[0] = 2.0 * first
    x[1] = -0.5 * (p[1] if centres is None else p[1].mean(0))
    x[7] = 0.0
    return x, y, p


@pytest.mark.parametrize(("name", "hyper", "centres"), CASES)
def test_functional_matches_float64_reference(name, hyper, centres):
    x, y, p = _batch_with_extremes(centres)
    function = _info(name).function
    got = function(x, y, p, reduction="none", **hyper)
    want = torch.tensor(ref.REFERENCES[name](x, y, p, **hyper), dtype=torch.float64)
    torch.testing.assert_close(got, want, rtol=1e-9, atol=1e-9)
    w = torch.rand(8, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(
        function(x, y, p, weights=w, **hyper), (want * w).sum() / w.sum(), rtol=1e-9, atol=1e-9
    )


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("hyper", [{}, {"margin": 0.3, "alpha": 4.0}])
def test_proxy_anchor_matches_reference(reduction, hyper):
    x, y, p = _batch_with_extremes(None)
    w = torch.rand(8, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    w[2] = 0.0  # the only class-2 weight left: class 2 drops out of P+
    w[5] = 0.0
    for weights in (None, w):
        got = FP.proxy_anchor_loss(x, y, p, weights=weights, reduction=reduction, **hyper)
        want = ref.proxy_anchor(x, y, p, weights=weights, reduction=reduction, **hyper)
        torch.testing.assert_close(got, torch.tensor(want, dtype=torch.float64))


def test_proxy_nca_and_proxy_nca_pp_are_related_per_embedding():
    x, y, p = _batch_with_extremes(None)
    plus = FP.proxy_nca_pp_loss(x, y, p, temperature=0.7, reduction="none")
    nca = FP.proxy_nca_loss(x, y, p, temperature=0.7, reduction="none")
    torch.testing.assert_close(nca, plus + torch.log(-torch.expm1(-plus)))


def test_soft_triple_regularizer_matches_reference_and_is_added_to_every_value():
    p = _proxies(4)
    torch.testing.assert_close(
        FP.soft_triple_regularizer(p), torch.tensor(ref.soft_triple_regularizer(p)).double()
    )
    x, y = _data(5, D)
    with_reg = FP.soft_triple_loss(x, y, p, center_regularization=0.5, reduction="none")
    without = FP.soft_triple_loss(x, y, p, center_regularization=0.0, reduction="none")
    torch.testing.assert_close(with_reg - without, 0.5 * FP.soft_triple_regularizer(p).expand(5))


def test_arcface_uses_the_papers_rule_past_pi_minus_m():
    # theta = pi (an embedding opposite its proxy): cos(theta + m) would rise again.
    p = torch.tensor([[1.0, 0.0], [0.0, 1.0]], dtype=torch.float64)
    x = torch.tensor([[-1.0, 0.0]], dtype=torch.float64)
    y = torch.tensor([0])
    m, s = 0.5, 1.0
    got = FP.arcface_loss(x, y, p, margin=m, scale=s)
    target = -1.0 - m * math.sin(m)
    torch.testing.assert_close(got, torch.tensor(math.log1p(math.exp(s * (0.0 - target)))).double())
    # easy_margin keeps the plain cosine where cos <= 0.
    easy = FP.arcface_loss(x, y, p, margin=m, scale=s, easy_margin=True)
    torch.testing.assert_close(easy, torch.tensor(math.log1p(math.exp(1.0))).double())


@pytest.mark.parametrize("name", PROXY_LOSSES)
def test_module_calls_its_function_with_its_proxies(name):
    module = _double(_build(name, reduction="none"))
    x, y = _data()
    hyper = {
        k: v
        for k, v in module.hyper_parameters().items()
        if k in inspect.signature(_info(name).function).parameters
    }
    want = _info(name).function(x, y, module.proxies, **hyper)
    torch.testing.assert_close(module(x, y), want)


@pytest.mark.parametrize("name", PROXY_LOSSES)
def test_module_hyper_parameters_are_the_functions(name):
    cls = LOSSES.get(name)
    function = _info(name).function
    signature = inspect.signature(function)
    keyword = {
        p.name: p.default
        for p in signature.parameters.values()
        if p.kind is inspect.Parameter.KEYWORD_ONLY and p.name != "weights"
    }
    structural = {"num_classes", "embedding_size", "sub_centers", "centers_per_class"}
    module = {k: v for k, v in cls.hyper_parameter_defaults().items() if k not in structural}
    assert module == keyword
    assert list(signature.parameters)[:3] == ["embeddings", "labels", "proxies"]
    for parameter in list(inspect.signature(cls.__init__).parameters.values())[1:]:
        assert parameter.kind is inspect.Parameter.KEYWORD_ONLY, parameter
        assert parameter.annotation is not inspect.Parameter.empty, parameter


@pytest.mark.parametrize("name", PROXY_LOSSES)
def test_docstrings_have_formula_paper_cost_and_defaults(name):
    cls = LOSSES.get(name)
    function = _info(name).function
    for doc in (cls.__doc__, inspect.getdoc(function)):
        assert ".. math::" in doc, name
        assert re.search(r"\b(19|20)\d\d\b", doc), name
        assert "Cost:" in doc, name
    for parameter, default in cls.hyper_parameter_defaults().items():
        shown = parameter if default is inspect.Parameter.empty else f"{parameter}={default!r}"
        assert shown in cls.__doc__, (name, shown)
    assert "Args:" in inspect.getdoc(function) and "Returns:" in inspect.getdoc(function)


# ------------------------------------------------------------------------------ gradients


@pytest.mark.parametrize("name", PROXY_LOSSES)
def test_gradcheck_in_embeddings_and_proxies(name):
    info = _info(name)
    assert info.exact_gradient
    module = _double(_build(name))
    p = module.proxies.detach().clone().normal_(generator=torch.Generator().manual_seed(4))
    p.requires_grad_(True)
    x, y = _data(6, 8, seed=5)
    x.requires_grad_(True)
    hyper = {
        k: v
        for k, v in module.hyper_parameters().items()
        if k in inspect.signature(info.function).parameters
    }
    for key in ("scale", "alpha"):  # gentler curvature for finite differences
        if key in hyper:
            hyper[key] = 8.0
    w = torch.rand(6, dtype=torch.float64, generator=torch.Generator().manual_seed(6)) + 0.1
    assert torch.autograd.gradcheck(lambda a, b: info.function(a, y, b, weights=w, **hyper), (x, p))


# ------------------------------------------------------------------------------ properties


def _values_per(name):
    return LOSSES.get(name).values_per


@pytest.mark.parametrize("name", PROXY_LOSSES)
def test_reductions_and_weights(name):
    x, y = _data(9)
    none = _double(_build(name, reduction="none"))
    per = none(x, y)
    expected = (9,) if _values_per(name) == "embedding" else (C,)
    assert per.shape == expected
    w = torch.rand(9, dtype=torch.float64, generator=torch.Generator().manual_seed(1)) + 0.1
    total = _double(_build(name, reduction="sum"))
    total.load_state_dict(none.state_dict())
    mean = _double(_build(name))
    mean.load_state_dict(none.state_dict())
    if _values_per(name) == "embedding":
        torch.testing.assert_close(total(x, y, weights=w), (per * w).sum())
        torch.testing.assert_close(mean(x, y, weights=w), (per * w).sum() / w.sum())
        torch.testing.assert_close(mean(x, y), per.mean())
    else:
        torch.testing.assert_close(total(x, y), per.sum())
    ones = torch.ones(9, dtype=torch.float64)
    torch.testing.assert_close(mean(x, y, weights=ones), mean(x, y))
    # A zero weight deletes the embedding.
    w[3] = 0.0
    keep = torch.arange(9) != 3
    torch.testing.assert_close(mean(x, y, weights=w), mean(x[keep], y[keep], weights=w[keep]))


@pytest.mark.parametrize("name", PROXY_LOSSES)
@pytest.mark.parametrize("seed", [0, 1])
def test_invariant_to_batch_order(name, seed):
    x, y = _data(8, seed=seed)
    perm = torch.randperm(8, generator=torch.Generator().manual_seed(seed + 10))
    module = _double(_build(name, reduction="none"))
    per = module(x, y)
    permuted = module(x[perm], y[perm])
    if _values_per(name) == "embedding":
        torch.testing.assert_close(permuted, per[perm])
    else:
        torch.testing.assert_close(permuted, per)


@pytest.mark.parametrize("name", PROXY_LOSSES)
def test_half_precision_computes_in_float32(name):
    torch.manual_seed(0)
    module = _build(name)
    x, y = _data(8, dtype=torch.float32)
    for half in (torch.float16, torch.bfloat16):
        out = module(x.to(half), y)
        assert out.dtype == torch.float32
        torch.testing.assert_close(out, module(x.to(half).float(), y))


@pytest.mark.parametrize("name", PROXY_LOSSES)
def test_autocast_computes_in_float32(name):
    torch.manual_seed(0)
    module = _build(name)
    x, y = _data(8, dtype=torch.float32)
    outside = module(x, y)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        inside = module(x, y)
    assert inside.dtype == torch.float32
    torch.testing.assert_close(inside, outside, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("name", PROXY_LOSSES)
@pytest.mark.parametrize("case", ["scale_1e4", "zeros", "equal_to_proxy", "opposite"])
def test_extreme_inputs_give_finite_values_and_gradients(name, case):
    torch.manual_seed(0)
    module = _build(name)
    x, y = _data(8, dtype=torch.float32)
    proxies = module.proxies.detach().reshape(C, -1, 8)[:, 0]
    if case == "scale_1e4":
        x = x * 1e4
    elif case == "zeros":
        x = torch.zeros_like(x)
    elif case == "equal_to_proxy":
        x = proxies[y].clone()
    else:
        x = -proxies[y].clone()
    x.requires_grad_(True)
    value = module(x, y)
    value.backward()
    assert torch.isfinite(value), case
    assert torch.isfinite(x.grad).all(), case
    assert torch.isfinite(module.proxies.grad).all(), case


@pytest.mark.parametrize("name", PROXY_LOSSES)
def test_float16_autocast_training_with_adam_stays_finite(name):
    torch.manual_seed(0)
    model = torch.nn.Linear(6, 8)
    loss = _build(name)
    optimizer = torch.optim.Adam(
        [{"params": model.parameters()}, {"params": loss.parameters(), "lr": 1e-1}], lr=1e-2
    )
    g = torch.Generator().manual_seed(0)
    inputs = torch.randn(16, 6, generator=g) * 100
    labels = torch.randint(0, C, (16,), generator=g)
    inputs[0] = 0.0  # a zero embedding (the bias is zeroed below)
    with torch.no_grad():
        model.bias.zero_()
    first = None
    for _ in range(15):
        with torch.autocast("cpu", dtype=torch.float16):
            embeddings = model(inputs)
            value = loss(embeddings, labels)
        assert embeddings.dtype == torch.float16
        optimizer.zero_grad()
        value.backward()
        for parameter in (*model.parameters(), *loss.parameters()):
            assert torch.isfinite(parameter.grad).all()
        optimizer.step()
        first = value.item() if first is None else first
    assert all(torch.isfinite(p).all() for p in (*model.parameters(), *loss.parameters()))
    assert value.item() < first, (name, first, value.item())


@pytest.mark.parametrize("name", PROXY_LOSSES)
def test_empty_batch_is_a_connected_zero(name):
    module = _build(name)
    x = torch.zeros(0, 8, requires_grad=True)
    value = module(x, torch.zeros(0, dtype=torch.long))
    assert value.item() == 0.0 and value.requires_grad
    value.backward()
    assert module.proxies.grad is not None and (module.proxies.grad == 0).all()


@pytest.mark.parametrize("name", PROXY_LOSSES)
def test_proxies_are_parameters_seeded_by_the_global_generator(name):
    torch.manual_seed(123)
    a = _build(name)
    torch.manual_seed(123)
    b = _build(name)
    assert [n for n, _ in a.named_parameters()] == ["proxies"]
    assert a.proxies.requires_grad and a.proxies.shape[0] == C and a.proxies.shape[-1] == 8
    torch.testing.assert_close(a.proxies, b.proxies)
    assert not torch.equal(a.proxies, _build(name).proxies)
    assert set(a.state_dict()) == {"proxies"}


def test_nca_with_one_class_has_nothing_to_learn():
    x, y = _data(3, D, classes=1)
    p = _proxies()[:1]
    value = FP.proxy_nca_loss(x, y, p)
    assert value.item() == 0.0
    assert torch.isfinite(FP.proxy_nca_pp_loss(x, y, p))


@pytest.mark.badinput("losses")
def test_per_proxy_and_per_embedding_values_are_not_summed():
    anchor = get("proxy_anchor", num_classes=4, embedding_size=8, reduction="none")  # [C]
    nca = get("proxy_nca", num_classes=4, embedding_size=8, reduction="none")  # [N]
    with pytest.raises(ValueError, match=r"one per proxy.*one per embedding"):
        anchor + nca
    # Reduced, the two are scalars and add up.
    summed = get("proxy_anchor", num_classes=4, embedding_size=8) + get(
        "proxy_nca", num_classes=4, embedding_size=8
    )
    x, y = _data(4, 8)
    assert summed(x, y).shape == ()
    both = anchor + get("proxy_anchor", num_classes=4, embedding_size=8, reduction="none")
    assert both(x, y).shape == (4,)


def test_combines_with_a_pair_loss_and_trains_a_model():
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 8)
    loss = ArcFaceLoss(num_classes=C, embedding_size=8, scale=16.0) + 0.5 * TripletLoss()
    assert isinstance(loss, CombinedLoss) and loss.kind == "embedding"
    optimizer = torch.optim.Adam([*model.parameters(), *loss.parameters()], lr=0.05)
    g = torch.Generator().manual_seed(1)
    centres = torch.randn(C, 4, generator=g) * 3
    labels = torch.arange(C).repeat(6)
    inputs = centres[labels] + torch.randn(len(labels), 4, generator=g)
    start = loss(model(inputs), labels).item()
    for _ in range(40):
        optimizer.zero_grad()
        loss(model(inputs), labels).backward()
        optimizer.step()
    assert loss(model(inputs), labels).item() < 0.5 * start


# ------------------------------------------------------------------------------ bad input


@pytest.mark.badinput("losses")
@pytest.mark.parametrize("name", PROXY_LOSSES)
def test_other_embedding_keywords_are_refused(name):
    module = _build(name)
    x, y = _data(4, 8, dtype=torch.float32)
    cls = type(module).__name__
    for keyword, value in (
        ("keys", x),
        ("ref_embeddings", x),
        ("ref_labels", y),
        ("hard_negatives", x),
        ("indices", (y, y, y)),
    ):
        with pytest.raises(ValueError, match=rf"^{cls} does not take {keyword}="):
            module(x, y, **{keyword: value})
    with pytest.raises(ValueError, match=rf"^{cls} does not take keys="):
        module(x, keys=x)
    with pytest.raises(ValueError, match=rf"^{cls}: labels are required"):
        module(x)


@pytest.mark.badinput("losses")
@pytest.mark.parametrize("name", PROXY_LOSSES)
def test_bad_inputs_are_named_before_any_work(name):
    module = _build(name)
    cls = type(module).__name__
    # The functional form checks; its errors name the module the user called.
    fn = _info(name).function.__name__
    x, y = _data(5, 8, dtype=torch.float32)
    with pytest.raises(
        ValueError,
        match=rf"^{cls}: embeddings has shape \[5, 7\] but .*"
        r"embedding_size=8",
    ):
        module(x[:, :7], y)
    bad = y.clone()
    bad[3] = C + 2
    with pytest.raises(ValueError, match=rf"^{cls}: labels holds {C + 2} at \[3\] .*\[0, {C}\)"):
        module(x, bad)
    bad[3] = -1
    with pytest.raises(ValueError, match=rf"^{cls}: labels holds -1 at \[3\]"):
        module(x, bad)
    with pytest.raises(ValueError, match=rf"^{cls}: labels must be integer class indices"):
        module(x, y.float())
    with pytest.raises(ValueError, match=rf"^{cls}: labels has shape \[4\]"):
        module(x, y[:4])
    nan = x.clone()
    nan[2, 1] = float("nan")
    with pytest.raises(ValueError, match=rf"^{cls}: embeddings holds nan at \[2, 1\]"):
        module(nan, y)
    with pytest.raises(ValueError, match=rf"^{cls}: weights has shape \[3\]"):
        module(x, y, weights=torch.ones(3))
    with pytest.raises(ValueError, match=rf"^{cls}: weights holds -1.0 at \[1\]"):
        module(x, y, weights=torch.tensor([1.0, -1.0, 1.0, 1.0, 1.0]))
    with pytest.raises(ValueError, match=rf"^{cls}: embeddings must have shape \[N, d\]"):
        module(x[0], y)
    with torch.no_grad():
        module.proxies[1] = float("inf")
    index = "[1, 0]" if module.proxies.dim() == 2 else "[1, 0, 0]"  # in the proxies' shape
    with pytest.raises(ValueError, match=rf"^{cls}: proxies holds inf at {re.escape(index)} "):
        module(x, y)
    with pytest.raises(ValueError, match=rf"^{fn}: proxies holds inf at {re.escape(index)} "):
        _info(name).function(x, y, module.proxies.detach())


@pytest.mark.badinput("losses")
def test_functional_refuses_mismatched_proxies():
    x, y = _data(4, D)
    with pytest.raises(ValueError, match=r"^cosface_loss: proxies has shape \[4, 6\] but "):
        FP.cosface_loss(x, y, _proxies(d=6))
    with pytest.raises(ValueError, match=r"^soft_triple_loss: proxies must have shape \[C, K, d\]"):
        FP.soft_triple_loss(x, y, _proxies())
    with pytest.raises(ValueError, match=r"^arcface_loss: proxies must have shape \[C, d\]"):
        FP.arcface_loss(x, y, _proxies(2))
    with pytest.raises(TypeError, match="unexpected keyword argument 'temperature'"):
        FP.arcface_loss(x, y, _proxies(), temperature=1.0)  # type: ignore[call-arg]


@pytest.mark.badinput("losses")
@pytest.mark.parametrize("name", PROXY_LOSSES)
def test_construction_checks_and_needs_sizes(name):
    cls = LOSSES.get(name)
    with pytest.raises(
        TypeError,
        match=r"needs the hyper-parameter\(s\) num_classes, "
        r"embedding_size.*for example",
    ):
        get(name)
    with pytest.raises(ValueError, match=rf"^{cls.__name__}: num_classes must be >= 2, got 1"):
        get(name, num_classes=1, embedding_size=8)
    with pytest.raises(ValueError, match=rf"^{cls.__name__}: embedding_size must be a positive"):
        get(name, num_classes=4, embedding_size=0)
    with pytest.raises(TypeError, match=rf"^{cls.__name__}: num_classes must be an int"):
        get(name, num_classes=4.0, embedding_size=8)
    with pytest.raises(ValueError, match=rf"^{cls.__name__}: reduction must be one of"):
        get(name, reduction="avg", **_info(name).example)


BAD_VALUES = [
    ("proxy_nca", "temperature", 0.0),
    ("proxy_nca_pp", "temperature", -1.0),
    ("proxy_anchor", "margin", -0.1),
    ("proxy_anchor", "alpha", 0.0),
    ("normalized_softmax", "temperature", 0.0),
    ("cosface", "margin", -0.1),
    ("cosface", "scale", 0.0),
    ("arcface", "margin", -0.5),
    ("arcface", "scale", -1.0),
    ("sub_center_arcface", "sub_centers", 0),
    ("soft_triple", "center_temperature", 0.0),
    ("soft_triple", "center_regularization", -1.0),
    ("soft_triple", "centers_per_class", 0),
]


@pytest.mark.badinput("losses")
@pytest.mark.parametrize(("name", "parameter", "value"), BAD_VALUES)
def test_bad_hyper_parameters_fail_when_built_and_in_the_function(name, parameter, value):
    cls = LOSSES.get(name)
    with pytest.raises(ValueError, match=rf"^{cls.__name__}: {parameter} must be .*, got "):
        _build(name, **{parameter: value})
    if parameter in inspect.signature(_info(name).function).parameters:
        x, y = _data(3, D)
        centres = 2 if name in ("sub_center_arcface", "soft_triple") else None
        function = _info(name).function
        with pytest.raises(ValueError, match=rf"^{function.__name__}: {parameter} must be "):
            function(x, y, _proxies(centres), **{parameter: value})


@pytest.mark.badinput("losses")
def test_arcface_margin_in_degrees_is_refused_with_a_hint():
    with pytest.raises(ValueError, match=r"radians, got 28.6 .*takes degrees: 28.6° is 0.4992 rad"):
        ArcFaceLoss(num_classes=4, embedding_size=8, margin=28.6)
    with pytest.raises(TypeError, match="easy_margin must be a bool"):
        ArcFaceLoss(num_classes=4, embedding_size=8, easy_margin=1)  # type: ignore[arg-type]


def test_registry_metadata():
    for name in PROXY_LOSSES:
        info = _info(name)
        cls = LOSSES.get(name)
        assert issubclass(cls, ProxyLoss) and cls.kind == "embedding"
        assert info.family == "proxy" and info.example == {"num_classes": 4, "embedding_size": 8}
        defaults = cls.hyper_parameter_defaults()
        assert info.search_space and set(info.search_space) <= set(defaults), name
        for dimension in info.search_space.values():
            assert dimension[0] in ("log", "float", "int", "choice")
    assert set(PROXY_LOSSES) >= {
        "proxy_nca",
        "proxy_nca_pp",
        "proxy_anchor",
        "normalized_softmax",
        "cosface",
        "arcface",
        "sub_center_arcface",
        "soft_triple",
    }


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("ProxyNCALoss", "proxy_nca"),
        ("ProxyNCA++", "proxy_nca_pp"),
        ("ProxyNCAPlusPlusLoss", "proxy_nca_pp"),
        ("ProxyAnchorLoss", "proxy_anchor"),
        ("NormalizedSoftmaxLoss", "normalized_softmax"),
        ("CosFaceLoss", "cosface"),
        ("ArcFaceLoss", "arcface"),
        ("SubCenterArcFaceLoss", "sub_center_arcface"),
        ("SoftTripleLoss", "soft_triple"),
    ],
)
def test_other_libraries_names_resolve(given, expected):
    assert get(given, num_classes=3, embedding_size=4).registered_name == expected


# ------------------------------------------------------------------------------ peers

PEER_DIFFERENCES: dict[str, float] = {}


def _pml_cases():
    losses = pytest.importorskip("pytorch_metric_learning.losses")
    from pytorch_metric_learning.reducers import DoNothingReducer

    def weight(pml, proxies):
        """Copy our proxies into the PML module's weight (``[C, d]`` or ``[d, C K]``)."""
        name = "proxies" if hasattr(pml, "proxies") else ("fc" if hasattr(pml, "fc") else "W")
        current = getattr(pml, name)
        flat = proxies.reshape(-1, proxies.shape[-1])
        value = flat if current.shape[0] == flat.shape[0] else flat.T
        with torch.no_grad():
            current.data = value.detach().clone()
        return current

    return losses, DoNothingReducer, weight


PEERS = [
    # name, our hyper-parameters, PML class, PML kwargs, centres
    ("proxy_nca_pp", {"temperature": 0.5}, "ProxyNCALoss", {"softmax_scale": 2.0}, None),
    ("proxy_anchor", {"margin": 0.1, "alpha": 32.0}, "ProxyAnchorLoss", {}, None),
    ("normalized_softmax", {"temperature": 0.05}, "NormalizedSoftmaxLoss", {}, None),
    ("cosface", {"margin": 0.35, "scale": 64.0}, "CosFaceLoss", {}, None),
    (
        "arcface",
        {"margin": 0.5, "scale": 64.0},
        "ArcFaceLoss",
        {"margin": math.degrees(0.5)},
        None,
    ),
    (
        "sub_center_arcface",
        {"margin": 0.5, "scale": 64.0},
        "SubCenterArcFaceLoss",
        {"margin": math.degrees(0.5), "sub_centers": 3},
        3,
    ),
    (
        "soft_triple",
        {"center_regularization": 0.0},
        "SoftTripleLoss",
        {"centers_per_class": 4, "la": 20.0, "gamma": 0.1, "margin": 0.01},
        4,
    ),
]


def _peer_inputs(seed, centres):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(12, 6, generator=g, dtype=torch.float64)
    y = torch.arange(C).repeat(3)[torch.randperm(12, generator=g)]
    shape = (C, 6) if centres is None else (C, centres, 6)
    p = torch.randn(*shape, generator=g, dtype=torch.float64)
    return x, y, p


def _compare(key, ours, theirs):
    diff = max(float((a - b).detach().abs().max()) for a, b in zip(ours, theirs))
    PEER_DIFFERENCES[key] = max(PEER_DIFFERENCES.get(key, 0.0), diff)
    for a, b in zip(ours, theirs):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-10)


@pytest.mark.peers
@pytest.mark.parametrize(("name", "ours", "pml_name", "pml_kwargs", "centres"), PEERS)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_pytorch_metric_learning(name, ours, pml_name, pml_kwargs, centres, seed):
    losses, _, weight = _pml_cases()
    x, y, p = _peer_inputs(seed, centres)
    pml = getattr(losses, pml_name)(num_classes=C, embedding_size=6, **pml_kwargs).double()
    w = weight(pml, p)
    xa = x.clone().requires_grad_(True)
    theirs = pml(xa, y)
    theirs.backward()
    their_grads = (xa.grad, w.grad.T.reshape(p.shape) if w.shape[0] != C else w.grad)
    xb = x.clone().requires_grad_(True)
    pb = p.clone().requires_grad_(True)
    value = _info(name).function(xb, y, pb, **ours)
    value.backward()
    _compare(f"{name} vs {pml_name}", (value, xb.grad, pb.grad), (theirs, *their_grads))


@pytest.mark.peers
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_proxy_nca_matches_pml_through_the_per_embedding_relation(seed):
    """PML's ProxyNCALoss keeps the positive proxy in the denominator; per embedding
    ours = theirs + log(1 - exp(-theirs))."""
    losses, nothing, weight = _pml_cases()
    x, y, p = _peer_inputs(seed, None)
    pml = losses.ProxyNCALoss(num_classes=C, embedding_size=6, softmax_scale=2.0)
    pml.reducer = nothing()
    weight(pml.double(), p)
    xa = x.clone().requires_grad_(True)
    per = pml(xa, y)["loss"]["losses"]
    assert per.shape == (12,)
    (per + torch.log(-torch.expm1(-per))).mean().backward()
    xb = x.clone().requires_grad_(True)
    value = FP.proxy_nca_loss(xb, y, p, temperature=0.5)
    value.backward()
    _compare(
        "proxy_nca vs ProxyNCALoss (relation)",
        (value, xb.grad),
        ((per + torch.log(-torch.expm1(-per))).mean(), xa.grad),
    )


@pytest.mark.peers
def test_arcface_gradient_is_finite_where_an_acos_based_one_is_not():
    """Where an embedding equals its proxy, acos has an infinite derivative: PML's ArcFaceLoss
    (acos-based) gives non-finite gradients there, ours stay finite."""
    losses, _, weight = _pml_cases()
    _, y, p = _peer_inputs(0, None)
    x = p[y].clone()
    pml = losses.ArcFaceLoss(num_classes=C, embedding_size=6).double()
    weight(pml, p)
    xa = x.clone().requires_grad_(True)
    pml(xa, y).backward()
    xb = x.clone().requires_grad_(True)
    FP.arcface_loss(xb, y, p).backward()
    assert torch.isfinite(xb.grad).all()
    PEER_DIFFERENCES["arcface at cos = 1: PML non-finite gradient entries"] = float(
        (~torch.isfinite(xa.grad)).sum()
    )


@pytest.mark.peers
def test_report_peer_differences():
    """Run with ``-s`` to see the largest difference (values and gradients) per loss."""
    if not PEER_DIFFERENCES:
        pytest.skip("run with the peer cross-checks to fill the table")
    print("\nlargest |ours - pytorch-metric-learning| (float64, values and gradients):")
    for key, diff in sorted(PEER_DIFFERENCES.items()):
        print(f"  {key:<48} {diff:.3g}")
    assert all(v < 1e-8 for k, v in PEER_DIFFERENCES.items() if "non-finite" not in k)

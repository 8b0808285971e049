"""Pair and tuple embedding losses: float64 loop references from the papers, gradients, edge
cases, bad input, and cross-checks against pytorch-metric-learning and sentence-transformers."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

import rankloss
from rankloss.functional import pairwise_similarity
from rankloss.functional import tuples as FT
from rankloss.losses import (
    AngularLoss,
    DCLLoss,
    DCLWLoss,
    GeneralizedLiftedStructureLoss,
    GuidedInfoNCELoss,
    InfoNCELoss,
    LiftedStructureLoss,
    MarginLoss,
    NPairsLoss,
    TupletMarginLoss,
)
from rankloss.mining import Triplets
from tests.embedding import reference as ref
from tests.embedding import reference_tuples as rt

NAN, INF = float("nan"), float("inf")

NAMES = [
    "lifted_structure",
    "generalized_lifted_structure",
    "n_pairs",
    "angular",
    "margin",
    "tuplet_margin",
    "dcl",
    "dclw",
    "guided_info_nce",
]

#: Bad values (ValueError) and wrong types (TypeError) of every hyper-parameter of these
#: classes, read by tests/embedding/test_construction.py (similarity, reduction and miner are
#: covered there).
CONSTRUCTION = {
    LiftedStructureLoss: {"margin": ([-0.1, NAN, INF], ["1", None])},
    GeneralizedLiftedStructureLoss: {"margin": ([-1.0, NAN], ["1"])},
    NPairsLoss: {"l2_regularizer": ([-0.01, NAN, INF], ["0", None])},
    AngularLoss: {"angle": ([0.0, 90.0, -10.0, NAN], ["40", None])},
    MarginLoss: {
        "margin": ([-0.2, NAN], ["0.2"]),
        "beta": ([NAN, INF], ["0.3", None]),
        "learnable_beta": ([], [1, None]),
        "num_classes": ([0, -3, 4], [2.5, "4", True]),  # 4: needs learnable_beta=True
    },
    TupletMarginLoss: {
        "angular_margin": ([-1.0, 90.0, NAN], ["5.73"]),
        "scale": ([0.0, -1.0, INF], [None]),
    },
    DCLLoss: {"temperature": ([0.0, -0.1, NAN], ["0.1", None])},
    DCLWLoss: {
        "temperature": ([0.0, INF], ["0.1"]),
        "sigma": ([0.0, -0.5, NAN], ["0.5", None]),
    },
    GuidedInfoNCELoss: {
        "temperature": ([0.0, NAN], [None]),
        "guide_margin": ([-0.1, INF], ["0"]),
        "margin_strategy": (["Absolute", "soft"], [None, 1]),
    },
}


def _data(n=10, d=6, classes=3, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g, dtype=dtype)
    y = torch.randint(0, classes, (n,), generator=g)
    return x, y


def _key_negatives(key_labels, forced):
    """Negatives of each candidate among the candidates: a different label, or forced."""
    m = len(key_labels)
    return {
        (i, j)
        for i in range(m)
        for j in range(m)
        if i != j and (key_labels[i] != key_labels[j] or forced[i] or forced[j])
    }


def _masks(s, pos, neg):
    positive = torch.zeros(s.shape, dtype=torch.bool)
    negative = torch.zeros(s.shape, dtype=torch.bool)
    for a, j in pos:
        positive[a, j] = True
    for a, j in neg:
        negative[a, j] = True
    return positive, negative


# hyper-parameters of each loss for the reference comparisons
HYPER = {
    "lifted_structure": {"margin": 0.4},
    "generalized_lifted_structure": {"margin": 0.3},
    "n_pairs": {},
    "angular": {"angle": 35.0},
    "margin": {"margin": 0.15, "beta": 0.2},
    "tuplet_margin": {"angular_margin": 8.0, "scale": 12.0},
    "dcl": {"temperature": 0.3},
    "dclw": {"temperature": 0.3, "sigma": 0.7},
    "guided_info_nce": {"temperature": 0.2},
}


def _expected(name, queries, keys, pos, neg, kind, key_labels, forced):
    """The reference value of ``name`` on candidates described by sets of pairs."""
    hyper = HYPER[name]
    s = ref.similarity(queries, keys, kind)
    if name == "lifted_structure":
        key_s = ref.similarity(keys, keys, kind)
        return rt.lifted_structure(
            s, pos, neg, key_s, _key_negatives(key_labels, forced), hyper["margin"]
        )[0]
    if name == "generalized_lifted_structure":
        return rt.generalized_lifted_structure(s, pos, neg, hyper["margin"])[0]
    if name == "n_pairs":
        return rt.n_pairs(s, pos, neg)[0]
    if name == "angular":
        assert kind == "cosine"
        return rt.angular(queries, keys, pos, neg, hyper["angle"])[0]
    if name == "margin":
        return rt.margin(s, pos, neg, hyper["margin"], hyper["beta"])[0]
    if name == "tuplet_margin":
        return rt.tuplet_margin(s, pos, neg, hyper["angular_margin"], hyper["scale"])[0]
    if name == "dcl":
        return rt.dcl(s, pos, neg, hyper["temperature"])[0]
    if name == "dclw":
        cos = ref.similarity(queries, keys, "cosine")
        return rt.dcl(s, pos, neg, hyper["temperature"], hyper["sigma"], cos)[0]
    # guided_info_nce without a guide: InfoNCE
    return ref.info_nce(s, pos, neg, hyper["temperature"])[0]


def _module(name, **more):
    hyper = {"similarity": "cosine", **HYPER[name]}  # n_pairs defaults to "dot"
    hyper.update(more)
    return rankloss.losses.get(name, **hyper)


def _kinds(name):
    return ["cosine"] if name == "angular" else ["cosine", "neg_euclidean", "dot"]


# ------------------------------------------------------------------------------------------
# Modules against the loop references


@pytest.mark.parametrize("name", NAMES)
def test_labels_form_matches_reference(name):
    for kind in _kinds(name):
        x, y = _data()
        x = x / 2
        got = _module(name, similarity=kind)(x, y)
        _, keys, pos, neg = ref.candidates_labels(x, y)
        labels = [int(v) for v in y]
        want = _expected(name, x, keys, pos, neg, kind, labels, [False] * len(labels))
        torch.testing.assert_close(got, torch.tensor(want, dtype=torch.float64), msg=kind)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("with_ref_labels", [True, False])
def test_labels_form_with_references(name, with_ref_labels):
    x, y = _data(8)
    r, ry = _data(5, seed=1)
    ref_labels = ry if with_ref_labels else None
    got = _module(name)(x, y, ref_embeddings=r, ref_labels=ref_labels)
    _, keys, pos, neg = ref.candidates_labels(x, y, r, ref_labels)
    labels = [int(v) for v in y] + ([int(v) for v in ry] if with_ref_labels else [0] * 5)
    forced = [False] * 8 + [not with_ref_labels] * 5
    want = _expected(name, x, keys, pos, neg, "cosine", labels, forced)
    torch.testing.assert_close(got, torch.tensor(want, dtype=torch.float64))


@pytest.mark.parametrize("name", NAMES)
def test_keys_form_matches_reference(name):
    q, _ = _data(6)
    k, _ = _data(6, seed=1)
    got = _module(name)(q, keys=k)
    _, keys, pos, neg = ref.candidates_pairs(q, k)
    want = _expected(name, q, keys, pos, neg, "cosine", list(range(6)), [False] * 6)
    torch.testing.assert_close(got, torch.tensor(want, dtype=torch.float64))


@pytest.mark.parametrize("name", NAMES)
def test_keys_form_with_ids_and_hard_negatives(name):
    # labels with keys: ids; keys of the query's id are positives (or, for guided InfoNCE,
    # masked false negatives); hard negatives are negatives of every query.
    q, _ = _data(6)
    k, _ = _data(6, seed=1)
    hard, _ = _data(6, seed=2)
    ids = torch.tensor([0, 1, 0, 2, 1, 3])
    module = _module(name)
    takes = type(module).takes_hard_negatives
    extra = hard if takes else None
    got = module(q, ids, keys=k, hard_negatives=extra)
    mode = "mask" if name == "guided_info_nce" else "positive"
    _, keys, pos, neg = ref.candidates_pairs(q, k, extra, ids, mode)
    key_labels = [int(v) for v in ids] + [0] * (6 if takes else 0)
    forced = [False] * 6 + [True] * (6 if takes else 0)
    want = _expected(name, q, keys, pos, neg, "cosine", key_labels, forced)
    torch.testing.assert_close(got, torch.tensor(want, dtype=torch.float64))


@pytest.mark.parametrize("name", NAMES)
def test_functional_equals_module_and_garbage_is_ignored(name):
    # The module is the function on its matrices; entries that are no pair may hold NaN/inf.
    x, y = _data(9, 4)
    module = _module(name, reduction="none")
    s = pairwise_similarity(x, x, "cosine")
    same = y.unsqueeze(1) == y.unsqueeze(0)
    eye = torch.eye(9, dtype=torch.bool)
    positive, negative = same & ~eye, ~same
    garbage = s.clone()
    garbage[eye] = NAN
    garbage[0, 0] = INF
    kwargs = dict(HYPER[name])
    if name == "lifted_structure":
        kwargs |= {"key_similarity": garbage, "key_negative": negative}
    if name == "angular":
        kwargs |= {"key_similarity": garbage}
    if name == "guided_info_nce":
        kwargs |= {"guide_similarity": None}
    fn = rankloss.losses.LOSSES.entry(name).meta["function"]
    leaf = garbage.clone().requires_grad_(True)
    got = fn(leaf, positive, negative, reduction="none", **kwargs)
    torch.testing.assert_close(got, module(x, y))
    got.sum().backward()
    assert torch.isfinite(leaf.grad).all() and (leaf.grad[eye] == 0).all()


# ------------------------------------------------------------------------------------------
# Gradients of the functions (the modules' gradcheck is in test_losses.py)


def _random_masks(n, m, seed):
    g = torch.Generator().manual_seed(seed)
    draw = torch.rand(n, m, generator=g)
    return draw < 0.3, draw > 0.5


@pytest.mark.parametrize("name", NAMES)
def test_functional_gradcheck(name):
    g = torch.Generator().manual_seed(3)
    n, m = 5, 7
    s = (torch.rand(n, m, generator=g, dtype=torch.float64) * 1.6 - 0.8).requires_grad_(True)
    positive, negative = _random_masks(n, m, 4)
    w = torch.rand(n, generator=g, dtype=torch.float64)
    fn = rankloss.losses.LOSSES.entry(name).meta["function"]
    hyper = dict(HYPER[name])
    inputs = [s]
    if name in ("lifted_structure", "angular"):
        ks = (torch.rand(m, m, generator=g, dtype=torch.float64) - 0.5).requires_grad_(True)
        inputs.append(ks)
    if name == "margin":
        beta = torch.rand(n, generator=g, dtype=torch.float64).requires_grad_(True)
        inputs.append(beta)
    if name == "dclw":
        cos = (torch.rand(n, m, generator=g, dtype=torch.float64) - 0.5).requires_grad_(True)
        inputs.append(cos)
    guide = torch.rand(n, m, generator=g, dtype=torch.float64)
    key_negative = torch.rand(m, m, generator=g) > 0.4

    def call(*args):
        kwargs = dict(hyper)
        if name == "lifted_structure":
            kwargs |= {"key_similarity": args[1], "key_negative": key_negative}
        elif name == "angular":
            kwargs |= {"key_similarity": args[1]}
        elif name == "margin":
            kwargs |= {"beta": args[1]}
        elif name == "dclw":
            kwargs |= {"cosine": args[1]}
        elif name == "guided_info_nce":
            kwargs |= {"guide_similarity": guide, "guide_margin": 0.05}
        return fn(args[0], positive, negative, weights=w, reduction="sum", **kwargs)

    assert torch.autograd.gradcheck(call, tuple(inputs))


# ------------------------------------------------------------------------------------------
# Options and edge cases


def test_half_precision_functions_compute_in_float32():
    x, y = _data(8, 4, dtype=torch.float32)
    s = pairwise_similarity(x, x).half()
    same = y.unsqueeze(1) == y.unsqueeze(0)
    positive, negative = same & ~torch.eye(8, dtype=torch.bool), ~same
    for name in NAMES:
        fn = rankloss.losses.LOSSES.entry(name).meta["function"]
        extra = {"guide_similarity": s} if name == "guided_info_nce" else {}
        half = fn(s, positive, negative, **HYPER[name], **extra)
        extra = {"guide_similarity": s.float()} if name == "guided_info_nce" else {}
        full = fn(s.float(), positive, negative, **HYPER[name], **extra)
        assert half.dtype == torch.float32, name
        torch.testing.assert_close(half, full, msg=name)


def test_blocks_of_positive_pairs_change_nothing(monkeypatch):
    # Angular and guided InfoNCE walk the positive pairs in blocks; one pair per block and one
    # block for all give the same values and gradients.
    x, y = _data(9, 4, classes=2)
    g = torch.Generator().manual_seed(1)
    guide = torch.rand(9, 9, generator=g, dtype=torch.float64)

    def run():
        leaf = x.clone().requires_grad_(True)
        value = AngularLoss()(leaf, y) + GuidedInfoNCELoss()(leaf, y, guide_similarity=guide)
        value.backward()
        return value.detach(), leaf.grad

    whole = run()
    monkeypatch.setattr(FT, "_PAIR_BLOCK_ELEMENTS", 1)
    blocks = run()
    torch.testing.assert_close(blocks[0], whole[0])
    torch.testing.assert_close(blocks[1], whole[1])


def test_square_similarity_is_its_own_key_structure():
    x, y = _data(9, 4)
    s = pairwise_similarity(x, x)
    same = y.unsqueeze(1) == y.unsqueeze(0)
    positive, negative = same & ~torch.eye(9, dtype=torch.bool), ~same
    torch.testing.assert_close(
        FT.lifted_structure_loss(s, positive, negative, margin=0.3),
        FT.lifted_structure_loss(
            s, positive, negative, key_similarity=s, key_negative=negative, margin=0.3
        ),
    )
    torch.testing.assert_close(
        FT.angular_loss(s, positive, negative),
        FT.angular_loss(s, positive, negative, key_similarity=s),
    )


def test_lifted_structure_pair_with_only_the_positives_negatives():
    # Anchor 0 has no negative of its own, but its positive (candidate 1) has one.
    s = torch.tensor([[0.0, 0.5], [0.5, 0.0]], dtype=torch.float64)
    positive = torch.tensor([[False, True], [False, False]])
    negative = torch.zeros(2, 2, dtype=torch.bool)
    key_s = torch.tensor([[0.0, 0.2], [0.2, 0.0]], dtype=torch.float64)
    key_negative = torch.tensor([[False, False], [True, False]])
    got = FT.lifted_structure_loss(
        s,
        positive,
        negative,
        key_similarity=key_s,
        key_negative=key_negative,
        margin=1.0,
        reduction="none",
    )
    want = max(0.0, 1.0 + 0.2 - 0.5) ** 2 / 2  # J = log(e^{1 + s_10}) - s_01
    torch.testing.assert_close(got, torch.tensor([want, 0.0], dtype=torch.float64))


def test_n_pairs_l2_regularizer():
    q, _ = _data(5, 3)
    k, _ = _data(5, 3, seed=1)
    lam = 0.01
    got = NPairsLoss(l2_regularizer=lam, reduction="none")(q, keys=k)
    _, keys, pos, neg = ref.candidates_pairs(q, k)
    s = ref.similarity(q, keys, "dot")
    penalty = [lam * (float(q[a].norm()) ** 2 + float(k[a].norm()) ** 2) for a in range(5)]
    want = rt.n_pairs(s, pos, neg, penalty)[1]
    torch.testing.assert_close(got, torch.tensor(want, dtype=torch.float64))
    # In the labels form the positives' norms are averaged.
    x, y = _data(8, 3, classes=2)
    got = NPairsLoss(l2_regularizer=lam, reduction="none")(x, y)
    _, keys, pos, neg = ref.candidates_labels(x, y)
    rows = [[j for (a, j) in pos if a == i] for i in range(8)]
    penalty = [
        lam
        * (float(x[a].norm()) ** 2 + sum(float(x[j].norm()) ** 2 for j in rows[a]) / len(rows[a]))
        for a in range(8)
    ]
    want = rt.n_pairs(ref.similarity(x, keys, "dot"), pos, neg, penalty)[1]
    torch.testing.assert_close(got, torch.tensor(want, dtype=torch.float64))


def test_n_pairs_is_info_nce_at_temperature_one_on_dot():
    x, y = _data()
    torch.testing.assert_close(
        NPairsLoss()(x, y), InfoNCELoss(similarity="dot", temperature=1.0)(x, y)
    )


def test_margin_loss_learnable_beta_global_and_per_class():
    x, y = _data(9, 4, classes=3)
    fixed = MarginLoss(beta=0.25)(x, y)
    learned = MarginLoss(beta=0.25, learnable_beta=True)
    assert [name for name, _ in learned.named_parameters()] == ["beta_parameter"]
    value = learned(x, y)
    torch.testing.assert_close(value, fixed)
    value.backward()
    assert learned.beta_parameter.grad is not None and learned.beta_parameter.grad != 0
    per_class = MarginLoss(margin=0.1, learnable_beta=True, num_classes=3)
    with torch.no_grad():
        per_class.beta_parameter.copy_(torch.tensor([0.1, 0.3, -0.2]))
    got = per_class(x, y, keys=None)
    _, keys, pos, neg = ref.candidates_labels(x, y)
    betas = [[0.1, 0.3, -0.2][int(v)] for v in y]
    want = rt.margin(ref.similarity(x, keys, "cosine"), pos, neg, 0.1, betas)[0]
    torch.testing.assert_close(got, torch.tensor(want, dtype=torch.float64))
    got.backward()
    assert (per_class.beta_parameter.grad != 0).all()
    # The keys form with ids picks the class of each query.
    k, _ = _data(9, 4, seed=1)
    assert torch.isfinite(per_class(x, y, keys=k))


def test_margin_loss_with_distance_weighted_miner():
    x, y = _data(12, 5, classes=3)
    x.requires_grad_(True)
    value = MarginLoss(miner="distance_weighted")(x, y, generator=torch.Generator().manual_seed(0))
    value.backward()
    assert torch.isfinite(value) and torch.isfinite(x.grad).all()


def test_given_indices_restrict_the_pairs():
    x, y = _data(6, 4, classes=2)
    y = torch.tensor([0, 0, 1, 1, 0, 1])
    t = Triplets(torch.tensor([0, 2]), torch.tensor([1, 3]), torch.tensor([2, 0]))
    got = MarginLoss(margin=0.1, beta=0.2, reduction="none")(x, y, indices=t)
    s = ref.similarity(x, x, "cosine")
    want = torch.zeros(6, dtype=torch.float64)
    for a, p, q in ((0, 1, 2), (2, 3, 0)):
        want[a] = (max(0.0, 0.3 - float(s[a, p])) + max(0.0, float(s[a, q]) - 0.1)) / 2
    torch.testing.assert_close(got, want)
    for module in (LiftedStructureLoss(), AngularLoss(), NPairsLoss(), DCLLoss()):
        with pytest.raises(TypeError, match="does not take indices"):
            module(x, y, indices=t)


def test_tuplet_margin_identical_embeddings_have_finite_gradients():
    # cos(theta - beta) has an infinite derivative at theta = 0; the loss keeps it finite.
    x = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0]], dtype=torch.float64)
    x.requires_grad_(True)
    y = torch.tensor([0, 0, 1, 1])
    value = TupletMarginLoss()(x, y)
    value.backward()
    assert torch.isfinite(value) and torch.isfinite(x.grad).all()


def test_dclw_weights_average_to_one_and_equal_dcl_when_uniform():
    # With every positive pair equally close the weights are all 1: DCLW = DCL.
    v = torch.eye(4, dtype=torch.float64)
    x = torch.cat([v, v])
    y = torch.arange(4).repeat(2)
    torch.testing.assert_close(DCLWLoss(temperature=0.5)(x, y), DCLLoss(temperature=0.5)(x, y))
    # The weight of a pair falls as its cosine rises relative to the batch.
    s = torch.tensor([[0.9, 0.0], [0.0, 0.1]], dtype=torch.float64)
    positive = torch.eye(2, dtype=torch.bool)
    per = FT.dclw_loss(s, positive, ~positive, temperature=1.0, sigma=0.5, reduction="none")
    w0 = 2 - 2 * math.exp(1.8) / (math.exp(1.8) + math.exp(0.2))
    torch.testing.assert_close(per[0], torch.tensor(-w0 * 0.9, dtype=torch.float64))


def test_dcl_two_views_equals_the_paper_loop():
    # The paper's two-view form: anchor v1_i, positive v2_i, negatives every other embedding.
    v1, _ = _data(4, 3)
    v2, _ = _data(4, 3, seed=1)
    w = torch.cat([v1, v2])
    ids = torch.arange(4).repeat(2)
    got = DCLLoss(temperature=0.5)(w, ids)
    u = torch.nn.functional.normalize(w, dim=1)
    total = 0.0
    for i in range(8):
        j = (i + 4) % 8
        negs = [float(u[i] @ u[k]) / 0.5 for k in range(8) if k not in (i, j)]
        top = max(negs)
        total += -float(u[i] @ u[j]) / 0.5 + top + math.log(sum(math.exp(z - top) for z in negs))
    torch.testing.assert_close(got, torch.tensor(total / 8, dtype=torch.float64))


def test_guided_info_nce_filters_by_the_guide():
    q, _ = _data(6)
    k, _ = _data(6, seed=1)
    hard, _ = _data(6, seed=2)
    g = torch.Generator().manual_seed(5)
    guide = torch.rand(6, 12, generator=g, dtype=torch.float64)
    _, keys, pos, neg = ref.candidates_pairs(q, k, hard)
    s = ref.similarity(q, keys, "cosine")
    for strategy in ("absolute", "relative"):
        module = GuidedInfoNCELoss(temperature=0.2, guide_margin=0.1, margin_strategy=strategy)
        got = module(q, keys=k, hard_negatives=hard, guide_similarity=guide)
        want = rt.guided_info_nce(s, pos, neg, guide, 0.2, 0.1, strategy)[0]
        torch.testing.assert_close(got, torch.tensor(want, dtype=torch.float64))
    # Without a guide it is InfoNCE; a guide that keeps every negative changes nothing.
    plain = InfoNCELoss(temperature=0.2)(q, keys=k, hard_negatives=hard)
    module = GuidedInfoNCELoss(temperature=0.2)
    torch.testing.assert_close(module(q, keys=k, hard_negatives=hard), plain)
    low = torch.zeros(6, 12, dtype=torch.float64)
    low[torch.arange(6), torch.arange(6)] = 1.0
    torch.testing.assert_close(module(q, keys=k, hard_negatives=hard, guide_similarity=low), plain)
    # A negative tied with the positive's guide similarity (margin 0) is kept, as in GISTEmbed.
    tied = low.clone()
    tied[:, 6:] = 1.0
    torch.testing.assert_close(module(q, keys=k, hard_negatives=hard, guide_similarity=tied), plain)
    # A guide that rates every negative above the positive removes them all: 0 per anchor.
    high = torch.ones(6, 12, dtype=torch.float64)
    high[torch.arange(6), torch.arange(6)] = 0.0
    value = module(q, keys=k, hard_negatives=hard, guide_similarity=high)
    assert value.item() == 0.0


def test_guided_info_nce_ids_mask_false_negatives_like_info_nce():
    q, _ = _data(6)
    k, _ = _data(6, seed=1)
    ids = torch.tensor([0, 1, 0, 2, 1, 3])
    torch.testing.assert_close(
        GuidedInfoNCELoss(temperature=0.2)(q, ids, keys=k),
        InfoNCELoss(temperature=0.2, false_negatives="mask")(q, ids, keys=k),
    )


def test_guide_gets_no_gradient():
    q = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)
    k = torch.randn(4, 3, dtype=torch.float64)
    guide = torch.rand(4, 4, dtype=torch.float64, requires_grad=True)
    GuidedInfoNCELoss()(q, keys=k, guide_similarity=guide).backward()
    assert guide.grad is None and q.grad is not None


@pytest.mark.parametrize("name", NAMES)
def test_all_masked_and_empty_give_connected_zero(name):
    fn = rankloss.losses.LOSSES.entry(name).meta["function"]
    extra = {"guide_similarity": None} if name == "guided_info_nce" else {}
    for n, m in ((3, 3), (0, 0), (0, 4)):
        s = torch.full((n, m), NAN, dtype=torch.float64, requires_grad=True)
        nothing = torch.zeros(n, m, dtype=torch.bool)
        kwargs = dict(extra)
        if name in ("lifted_structure", "angular") and n != m:
            kwargs["key_similarity"] = torch.zeros(m, m, dtype=torch.float64)
            if name == "lifted_structure":
                kwargs["key_negative"] = torch.zeros(m, m, dtype=torch.bool)
        value = fn(s, nothing, nothing, **kwargs)
        assert value.item() == 0.0 and value.requires_grad
        value.backward()
        assert (s.grad == 0).all()


@pytest.mark.parametrize("name", NAMES)
def test_combines_with_other_embedding_losses(name):
    x, y = _data(8, 4)
    combined = _module(name) + 0.5 * InfoNCELoss()
    torch.testing.assert_close(combined(x, y), _module(name)(x, y) + 0.5 * InfoNCELoss()(x, y))


# ------------------------------------------------------------------------------------------
# Bad input


@pytest.mark.badinput("losses")
@pytest.mark.parametrize(
    "name,hyper,message",
    [
        ("lifted_structure", {"margin": -1.0}, "margin must be >= 0, got -1.0"),
        ("generalized_lifted_structure", {"margin": NAN}, "margin must be finite"),
        ("angular", {"angle": 90.0}, r"angle must be in \(0.0, 90.0\), got 90.0"),
        ("margin", {"margin": -0.1}, "margin must be >= 0"),
        ("tuplet_margin", {"angular_margin": 90.0}, r"angular_margin must be in \[0.0, 90.0\)"),
        ("tuplet_margin", {"scale": 0.0}, "scale must be > 0, got 0.0"),
        ("dcl", {"temperature": -1.0}, "temperature must be > 0"),
        ("dclw", {"sigma": 0.0}, "sigma must be > 0"),
        ("guided_info_nce", {"margin_strategy": "soft"}, "margin_strategy must be one of"),
    ],
)
def test_bad_hyper_parameters_at_function_entry(name, hyper, message):
    s = torch.zeros(3, 3)
    eye = torch.eye(3, dtype=torch.bool)
    fn = rankloss.losses.LOSSES.entry(name).meta["function"]
    extra = {"guide_similarity": None} if name == "guided_info_nce" else {}
    with pytest.raises(ValueError, match=f"^{name}_loss: {message}"):
        fn(s, eye, ~eye, **hyper, **extra)


@pytest.mark.badinput("losses")
def test_bad_side_inputs_are_refused():
    s = torch.zeros(3, 4)
    positive = torch.zeros(3, 4, dtype=torch.bool)
    with pytest.raises(ValueError, match=r"lifted_structure_loss: key_similarity \[M, M\] is"):
        FT.lifted_structure_loss(s, positive, positive)
    with pytest.raises(ValueError, match="angular_loss: key_similarity has shape \\[3, 4\\]"):
        FT.angular_loss(s, positive, positive, key_similarity=s)
    with pytest.raises(ValueError, match="key_negative \\[M, M\\] is required"):
        FT.lifted_structure_loss(s, positive, positive, key_similarity=torch.zeros(4, 4))
    with pytest.raises(ValueError, match="key_negative was given without key_similarity"):
        FT.lifted_structure_loss(
            torch.zeros(3, 3), positive[:, :3], positive[:, :3], key_negative=positive[:, :3]
        )
    with pytest.raises(ValueError, match="key_negative must be a bool mask"):
        FT.lifted_structure_loss(
            s, positive, positive, key_similarity=torch.zeros(4, 4), key_negative=torch.zeros(4, 4)
        )
    with pytest.raises(ValueError, match=r"margin_loss: beta must be a number, a scalar or \[3\]"):
        FT.margin_loss(s, positive, positive, beta=torch.zeros(4))
    with pytest.raises(ValueError, match="margin_loss: beta must be finite"):
        FT.margin_loss(s, positive, positive, beta=torch.full((3,), NAN))
    with pytest.raises(ValueError, match=r"dclw_loss: cosine has shape \[4, 3\]"):
        FT.dclw_loss(s, positive, positive, cosine=s.T)
    with pytest.raises(ValueError, match=r"guided_info_nce_loss: guide_similarity has shape"):
        FT.guided_info_nce_loss(s, positive, positive, guide_similarity=s[:, :2])
    guide = torch.zeros(3, 4)
    guide[0, 0] = NAN
    positive[0, 0] = True
    with pytest.raises(ValueError, match="guide_similarity must be finite at the pairs"):
        FT.guided_info_nce_loss(s, positive, positive, guide_similarity=guide)


@pytest.mark.badinput("losses")
def test_module_misuse_fails_clearly():
    x, y = _data(6, 4)
    k, _ = _data(6, 4, seed=1)
    with pytest.raises(ValueError, match=r"GuidedInfoNCELoss: guide_similarity has shape \[6, 6\]"):
        GuidedInfoNCELoss()(x, keys=k, hard_negatives=k, guide_similarity=torch.zeros(6, 6))
    with pytest.raises(ValueError, match="MarginLoss: num_classes .* needs labels"):
        MarginLoss(learnable_beta=True, num_classes=3)(x, keys=k)
    with pytest.raises(ValueError, match=r"MarginLoss: labels must be in \[0, 2\)"):
        MarginLoss(learnable_beta=True, num_classes=2)(x, y)
    with pytest.raises(ValueError, match="MarginLoss: num_classes must be None unless"):
        MarginLoss(num_classes=3)
    with pytest.raises(TypeError, match="AngularLoss does not take hard_negatives") as info:
        AngularLoss()(x, keys=k, hard_negatives=k)
    # the message names the losses that do, the newer ones included
    assert all(name in str(info.value) for name in ("dcl", "n_pairs", "guided_info_nce"))
    with pytest.raises(TypeError, match="AngularLoss does not take indices") as info:
        AngularLoss()(
            x,
            y,
            indices=(torch.tensor([0]), torch.tensor([1]), torch.tensor([0]), torch.tensor([2])),
        )
    assert all(name in str(info.value) for name in ("tuplet_margin", "margin", "triplet"))


@pytest.mark.badinput("losses")
def test_distributed_local_mode_refuses_dclw():
    from rankloss.distributed import DistributedLoss

    with pytest.raises(ValueError, match="DistributedLoss: mode='local' does not support DCLWLoss"):
        DistributedLoss(DCLWLoss(), mode="local")
    assert DistributedLoss(DCLWLoss(), mode="global")
    assert DistributedLoss(LiftedStructureLoss(), mode="local")


# ------------------------------------------------------------------------------------------
# Peers: pytorch-metric-learning 2.9 and sentence-transformers, in float64

PEER_DIFF: dict[str, tuple[float, float]] = {}


def _balanced(seed, n_per_class=4, classes=4, d=16):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n_per_class * classes, d, generator=g, dtype=torch.float64)
    y = torch.arange(classes).repeat_interleave(n_per_class)
    perm = torch.randperm(len(y), generator=g)
    return x[perm], y[perm]


def _pml_cases():
    pml = pytest.importorskip("pytorch_metric_learning.losses")
    from pytorch_metric_learning.distances import CosineSimilarity

    return {
        "lifted_structure": (
            pml.LiftedStructureLoss(neg_margin=-0.4, pos_margin=0.0, distance=CosineSimilarity()),
            LiftedStructureLoss(margin=0.4),
        ),
        "generalized_lifted_structure": (
            pml.GeneralizedLiftedStructureLoss(
                neg_margin=-0.3, pos_margin=0.0, distance=CosineSimilarity()
            ),
            GeneralizedLiftedStructureLoss(margin=0.3),
        ),
        "tuplet_margin": (
            pml.TupletMarginLoss(margin=5.73, scale=16.0),
            TupletMarginLoss(angular_margin=5.73, scale=16.0),
        ),
    }


def _compare(theirs_fn, ours_fn, x):
    a = x.clone().requires_grad_(True)
    b = x.clone().requires_grad_(True)
    theirs, mine = theirs_fn(a), ours_fn(b)
    theirs.backward()
    mine.backward()
    value_diff = float((mine - theirs).detach().abs())
    grad_diff = float((a.grad - b.grad).abs().max())
    torch.testing.assert_close(mine, theirs.to(mine.dtype), rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(b.grad, a.grad, rtol=1e-8, atol=1e-12)
    return value_diff, grad_diff


def _record(name, diffs):
    PEER_DIFF[name] = (max(d[0] for d in diffs), max(d[1] for d in diffs))


@pytest.mark.peers
@pytest.mark.parametrize(
    "name", ["lifted_structure", "generalized_lifted_structure", "tuplet_margin"]
)
def test_matches_pytorch_metric_learning(name):
    peer, ours = _pml_cases()[name]
    diffs = []
    for seed in range(3):
        x, y = _balanced(seed)
        diffs.append(_compare(lambda a, y=y: peer(a, y), lambda b, y=y: ours(b, y), x))
    _record(name, diffs)


@pytest.mark.peers
def test_n_pairs_matches_pytorch_metric_learning():
    # PML keeps one (anchor, positive) pair per class: a batch of N pairs of distinct classes,
    # the paper's N-pair-mc batch, is our (anchors, keys=positives) form. PML's default
    # DotProductSimilarity normalises the embeddings: our "cosine" (the paper: "dot").
    pml = pytest.importorskip("pytorch_metric_learning.losses")
    diffs = []
    for seed in range(3):
        g = torch.Generator().manual_seed(seed)
        x = torch.randn(12, 8, generator=g, dtype=torch.float64)
        ids = torch.arange(6).repeat(2)
        diffs.append(
            _compare(
                lambda a, ids=ids: pml.NPairsLoss()(a, ids),
                lambda b: NPairsLoss(similarity="cosine")(b[:6], keys=b[6:]),
                x,
            )
        )
    _record("n_pairs", diffs)


@pytest.mark.peers
def test_angular_matches_pytorch_metric_learning_on_unit_embeddings():
    # PML normalises the anchors and positives but not the negatives x_n; the paper (and we)
    # normalise every embedding. On unit embeddings the two agree exactly...
    pml = pytest.importorskip("pytorch_metric_learning.losses")
    diffs = []
    for seed in range(3):
        x, y = _balanced(seed)
        diffs.append(
            _compare(
                lambda a, y=y: pml.AngularLoss(alpha=40)(nn.functional.normalize(a, dim=1), y),
                lambda b, y=y: AngularLoss(angle=40.0)(nn.functional.normalize(b, dim=1), y),
                x,
            )
        )
        # ... and on raw embeddings ours is PML's on the normalised ones (the only difference).
        torch.testing.assert_close(
            AngularLoss(angle=40.0)(x, y),
            pml.AngularLoss(alpha=40)(nn.functional.normalize(x, dim=1), y),
        )
        assert not torch.allclose(AngularLoss(angle=40.0)(x, y), pml.AngularLoss(alpha=40)(x, y))
    _record("angular", diffs)


@pytest.mark.peers
def test_margin_loss_differs_from_pytorch_metric_learning_only_by_its_normaliser():
    # PML sums pos + neg hinges over triplets and divides by the number of non-zero hinges;
    # the paper's loss (ours) averages each anchor's pairs. With one triplet per anchor, our
    # value times 2N / (non-zero hinges) is PML's, in value and gradient (also of beta).
    pml = pytest.importorskip("pytorch_metric_learning.losses")
    from pytorch_metric_learning.distances import CosineSimilarity

    diffs = []
    for seed in range(3):
        x, y = _balanced(seed)
        n = len(y)
        anchor = torch.arange(n)
        same = y.unsqueeze(1) == y.unsqueeze(0)
        positive_index = torch.stack(
            [torch.nonzero(same[a] & (torch.arange(n) != a))[0, 0] for a in range(n)]
        )
        negative_index = torch.stack([torch.nonzero(~same[a])[0, 0] for a in range(n)])
        triplets = (anchor, positive_index, negative_index)
        theirs_module = pml.MarginLoss(
            margin=0.2, beta=0.3, learn_beta=True, distance=CosineSimilarity()
        ).double()
        ours_module = MarginLoss(margin=0.2, beta=0.3, learnable_beta=True).double()
        s = pairwise_similarity(x, x)
        hinges = torch.cat(
            [
                torch.relu(0.5 - s[anchor, positive_index]),
                torch.relu(0.2 - 0.3 + s[anchor, negative_index]),
            ]
        )
        scale = 2 * n / int((hinges > 0).sum())
        a = x.clone().requires_grad_(True)
        b = x.clone().requires_grad_(True)
        theirs = theirs_module(a, y, indices_tuple=triplets)
        mine = ours_module(b, y, indices=Triplets(*triplets)) * scale
        theirs.backward()
        mine.backward()
        torch.testing.assert_close(mine, theirs, rtol=1e-10, atol=1e-12)
        torch.testing.assert_close(b.grad, a.grad, rtol=1e-8, atol=1e-12)
        torch.testing.assert_close(
            ours_module.beta_parameter.grad.reshape(1), theirs_module.beta.grad
        )
        diffs.append((float((mine - theirs).detach().abs()), float((a.grad - b.grad).abs().max())))
    _record("margin (after the normaliser)", diffs)


class _Table(nn.Module):
    """A stand-in encoder for sentence-transformers: row ``ids`` of a table."""

    def __init__(self, table):
        super().__init__()
        self.table = table

    def forward(self, features):
        return {"sentence_embedding": self.table[features["ids"]]}


def _gist(model_table, guide_table, temperature, margin, strategy):
    gist = pytest.importorskip("sentence_transformers.sentence_transformer.losses.gist_embed")
    # Built without the constructor, which wants tokenizers; the forward is the library's.
    loss = gist.GISTEmbedLoss.__new__(gist.GISTEmbedLoss)
    nn.Module.__init__(loss)
    loss.model, loss.guide = _Table(model_table), _Table(guide_table)
    loss.temperature, loss.margin, loss.margin_strategy = temperature, margin, strategy
    loss.similarity_fct = nn.CosineSimilarity(dim=-1)
    loss.must_retokenize = False
    loss.contrast_anchors = loss.contrast_positives = False
    loss.gather_across_devices = False
    loss.cross_entropy_loss = nn.CrossEntropyLoss()
    return loss


@pytest.mark.peers
def test_guided_info_nce_matches_sentence_transformers_gist():
    # GISTEmbedLoss without its anchor-anchor and positive-positive blocks is guided InfoNCE on
    # (anchors, keys=positives, hard_negatives=negatives); with those blocks it also contrasts
    # queries with queries and keys with keys, which our candidates do not include.
    diffs = []
    n, d = 6, 5
    for seed, (margin, strategy) in enumerate(
        [(0.0, "absolute"), (0.1, "absolute"), (0.3, "relative")]
    ):
        g = torch.Generator().manual_seed(seed)
        table = torch.randn(3 * n, d, generator=g, dtype=torch.float64)
        guide_table = table + 0.8 * torch.randn(3 * n, d, generator=g, dtype=torch.float64)
        a = table.clone().requires_grad_(True)
        b = table.clone().requires_grad_(True)
        features = [{"ids": torch.arange(i * n, (i + 1) * n)} for i in range(3)]
        theirs = _gist(a, guide_table, 0.05, margin, strategy)(features, None)
        guide = pairwise_similarity(guide_table[:n], guide_table[n:])
        mine = GuidedInfoNCELoss(temperature=0.05, guide_margin=margin, margin_strategy=strategy)(
            b[:n], keys=b[n : 2 * n], hard_negatives=b[2 * n :], guide_similarity=guide
        )
        theirs.backward()
        mine.backward()
        torch.testing.assert_close(mine, theirs, rtol=1e-10, atol=1e-12)
        torch.testing.assert_close(b.grad, a.grad, rtol=1e-8, atol=1e-12)
        diffs.append((float((mine - theirs).detach().abs()), float((a.grad - b.grad).abs().max())))
    _record("guided_info_nce (GISTEmbedLoss)", diffs)


@pytest.mark.peers
def test_report_peer_differences():
    """Run with ``-s`` to print the largest difference per loss (value, gradient)."""
    for test in (
        test_n_pairs_matches_pytorch_metric_learning,
        test_angular_matches_pytorch_metric_learning_on_unit_embeddings,
        test_margin_loss_differs_from_pytorch_metric_learning_only_by_its_normaliser,
        test_guided_info_nce_matches_sentence_transformers_gist,
    ):
        test()
    for name in ("lifted_structure", "generalized_lifted_structure", "tuplet_margin"):
        test_matches_pytorch_metric_learning(name)
    assert len(PEER_DIFF) == 7
    for name, (value, grad) in sorted(PEER_DIFF.items()):
        print(f"{name}: max |ours - peer| value {value:.2e}, gradient {grad:.2e}")
        assert value < 1e-9 and grad < 1e-9

"""Embedding-loss modules against float64 loop references, and their contract."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import rankloss
from rankloss import functional as F
from rankloss.functional import embedding as FE
from rankloss.losses import (
    CircleLoss,
    CombinedLoss,
    ContrastiveLoss,
    InfoNCELoss,
    MarginRankingLoss,
    MultiSimilarityLoss,
    NTXentLoss,
    SupConLoss,
    TripletLoss,
)
from rankloss.mining import Pairs, Triplets
from tests.embedding import reference as ref

#: Every registered loss of the embedding family: a new one is tested here without edits.
EMB_LOSSES = rankloss.losses.available("embedding")


def _data(n=10, d=6, classes=3, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g, dtype=dtype)
    y = torch.randint(0, classes, (n,), generator=g)
    return x, y


def _reference(name, s, pos, neg, hyper):
    if name == "contrastive":
        return ref.contrastive(s, pos, neg, **hyper)
    if name in ("triplet", "margin_ranking"):
        return ref.triplet(s, pos, neg, **hyper)
    if name in ("info_nce", "nt_xent"):
        return ref.info_nce(s, pos, neg, **hyper)[0]
    if name == "supcon":
        return ref.supcon(s, pos, neg, **hyper)
    if name == "multi_similarity":
        return ref.multi_similarity(s, pos, neg, **hyper)
    return ref.circle(s, pos, neg, **hyper)


# name, reference hyper-parameters, extra module hyper-parameters
CASES = [
    ("contrastive", {"pos_margin": 0.8, "neg_margin": 0.3}, {}),
    ("contrastive", {"pos_margin": 0.8, "neg_margin": 0.3, "squared": True}, {}),
    ("triplet", {"margin": 0.3}, {}),
    ("triplet", {"soft": True}, {"soft_margin": True}),
    ("margin_ranking", {"margin": 0.3}, {}),
    ("info_nce", {"temperature": 0.2}, {}),
    ("nt_xent", {"temperature": 0.5}, {}),
    ("supcon", {"temperature": 0.3}, {}),
    ("multi_similarity", {"alpha": 2.0, "beta": 10.0, "base": 0.3}, {}),
    ("circle", {"margin": 0.25, "gamma": 16.0}, {}),
]


def _module(name, hyper, extra, **more):
    call = dict(hyper)
    call.pop("soft", None)
    call.update(extra)
    call.update(more)
    return rankloss.losses.get(name, **call)


@pytest.mark.parametrize("name,hyper,extra", CASES)
@pytest.mark.parametrize("kind", ["cosine", "neg_euclidean"])
def test_labels_form_matches_reference(name, hyper, extra, kind):
    x, y = _data()
    if kind == "neg_euclidean":
        x = x / 3
    got = _module(name, hyper, extra, similarity=kind)(x, y)
    _, keys, pos, neg = ref.candidates_labels(x, y)
    want = _reference(name, ref.similarity(x, keys, kind), pos, neg, hyper)
    torch.testing.assert_close(got, torch.tensor(want, dtype=torch.float64))


@pytest.mark.parametrize("name,hyper,extra", CASES)
def test_labels_form_with_references(name, hyper, extra):
    x, y = _data(8)
    r, ry = _data(5, seed=1)
    module = _module(name, hyper, extra)
    got = module(x, y, ref_embeddings=r, ref_labels=ry)
    _, keys, pos, neg = ref.candidates_labels(x, y, r, ry)
    want = _reference(name, ref.similarity(x, keys, "cosine"), pos, neg, hyper)
    torch.testing.assert_close(got, torch.tensor(want, dtype=torch.float64))
    # Without labels the references are extra negatives.
    got = module(x, y, ref_embeddings=r)
    _, keys, pos, neg = ref.candidates_labels(x, y, r, None)
    want = _reference(name, ref.similarity(x, keys, "cosine"), pos, neg, hyper)
    torch.testing.assert_close(got, torch.tensor(want, dtype=torch.float64))


@pytest.mark.parametrize("name,hyper,extra", [c for c in CASES if c[0] != "nt_xent"])
def test_keys_form_matches_reference(name, hyper, extra):
    q, _ = _data(6)
    k, _ = _data(6, seed=1)
    got = _module(name, hyper, extra)(q, keys=k)
    _, keys, pos, neg = ref.candidates_pairs(q, k)
    want = _reference(name, ref.similarity(q, keys, "cosine"), pos, neg, hyper)
    torch.testing.assert_close(got, torch.tensor(want, dtype=torch.float64))


@pytest.mark.parametrize("name,hyper,extra", [c for c in CASES if c[0] != "nt_xent"])
def test_keys_form_with_labels_other_keys_of_the_class_are_positives(name, hyper, extra):
    q, _ = _data(6)
    k, _ = _data(6, seed=1)
    labels = torch.tensor([0, 1, 0, 2, 1, 3])
    module = _module(name, hyper, extra)
    if name == "info_nce":
        module = _module(name, hyper, {"false_negatives": "positive"})
    got = module(q, labels, keys=k)
    _, keys, pos, neg = ref.candidates_pairs(q, k, None, labels, "positive")
    want = _reference(name, ref.similarity(q, keys, "cosine"), pos, neg, hyper)
    torch.testing.assert_close(got, torch.tensor(want, dtype=torch.float64))


@pytest.mark.parametrize("mode", ["mask", "positive"])
def test_info_nce_labels_hard_negatives_queue(mode):
    q, _ = _data(6)
    k, _ = _data(6, seed=1)
    hard, _ = _data(6, seed=2)
    queue, _ = _data(4, seed=3)
    labels = torch.tensor([0, 1, 0, 2, 1, 3])
    got = InfoNCELoss(temperature=0.3, false_negatives=mode)(
        q, labels, keys=k, hard_negatives=hard, ref_embeddings=queue
    )
    _, keys, pos, neg = ref.candidates_pairs(q, k, torch.cat([queue, hard]), labels, mode)
    want = ref.info_nce(ref.similarity(q, keys, "cosine"), pos, neg, 0.3)[0]
    torch.testing.assert_close(got, torch.tensor(want, dtype=torch.float64))


def test_info_nce_symmetric_is_mean_of_directions():
    q, _ = _data(6)
    k, _ = _data(6, seed=1)
    both = InfoNCELoss(symmetric=True, temperature=0.2)(q, keys=k)
    one = InfoNCELoss(temperature=0.2, reduction="none")
    torch.testing.assert_close(both, ((one(q, keys=k) + one(k, keys=q)) / 2).mean())
    with pytest.raises(ValueError, match="symmetric applies to the"):
        InfoNCELoss(symmetric=True)(*_data())


def test_nt_xent_views_equals_simclr_loop():
    v1, _ = _data(5)
    v2, _ = _data(5, seed=1)
    w = torch.cat([v1, v2])
    ids = torch.arange(5).repeat(2)
    _, keys, pos, neg = ref.candidates_labels(w, ids)
    s = ref.similarity(w, keys, "cosine")
    want, per_view, _ = ref.info_nce(s, pos, neg, 0.5)
    module = NTXentLoss(temperature=0.5)
    torch.testing.assert_close(module(v1, keys=v2), torch.tensor(want, dtype=torch.float64))
    per_sample = NTXentLoss(reduction="none")(v1, keys=v2)
    assert per_sample.shape == (5,)
    torch.testing.assert_close(
        per_sample, (torch.tensor(per_view[:5]) + torch.tensor(per_view[5:])).double() / 2
    )
    # With labels, every view of the class is a positive; the labels form is InfoNCE.
    labels = torch.tensor([0, 1, 0, 2, 2])
    _, keys, pos, neg = ref.candidates_labels(w, labels.repeat(2))
    want = ref.info_nce(ref.similarity(w, keys, "cosine"), pos, neg, 0.5)[0]
    torch.testing.assert_close(module(v1, labels, keys=v2), torch.tensor(want).double())
    x, y = _data()
    torch.testing.assert_close(module(x, y), InfoNCELoss(temperature=0.5)(x, y))


# ------------------------------------------------- modules = functional loss on their matrices


def _masks_labels(y):
    same = y.unsqueeze(1) == y.unsqueeze(0)
    eye = torch.eye(len(y), dtype=torch.bool)
    return same & ~eye, ~same


FUNCTIONS = {
    "contrastive": (FE.contrastive_loss, {"pos_margin": 0.6, "neg_margin": 0.1}),
    "triplet": (FE.triplet_loss, {"margin": 0.3}),
    "margin_ranking": (FE.margin_ranking_loss, {"margin": 0.2}),
    "info_nce": (FE.info_nce_loss, {"temperature": 0.2}),
    "supcon": (FE.supcon_loss, {"temperature": 0.3}),
    "multi_similarity": (FE.multi_similarity_loss, {"beta": 10.0}),
    "circle": (FE.circle_loss, {"gamma": 16.0}),
}


@pytest.mark.parametrize("name", FUNCTIONS)
@pytest.mark.parametrize("kind", ["cosine", "dot", "neg_sq_euclidean"])
def test_module_equals_function_on_its_similarity(name, kind):
    fn, hyper = FUNCTIONS[name]
    module = rankloss.losses.get(name, similarity=kind, reduction="none", **hyper)
    x, y = _data(9, 4)
    k, _ = _data(9, 4, seed=1)
    w = torch.rand(9, dtype=torch.float64)
    # (embeddings, labels)
    s = F.pairwise_similarity(x, x, kind)
    positive, negative = _masks_labels(y)
    torch.testing.assert_close(module(x, y), fn(s, positive, negative, reduction="none", **hyper))
    module.reduction = "sum"
    torch.testing.assert_close(
        module(x, y, weights=w), fn(s, positive, negative, weights=w, reduction="sum", **hyper)
    )
    module.reduction = "none"
    # (queries, keys=keys)
    s = F.pairwise_similarity(x, k, kind)
    eye = torch.eye(9, dtype=torch.bool)
    torch.testing.assert_close(module(x, keys=k), fn(s, eye, ~eye, reduction="none", **hyper))


def test_nt_xent_module_equals_function_on_its_similarity():
    v1, _ = _data(6, 4)
    v2, _ = _data(6, 4, seed=1)
    w = torch.cat([v1, v2])
    s = F.pairwise_similarity(w, w)
    ids = torch.arange(6).repeat(2)
    positive, negative = _masks_labels(ids)
    weights = torch.rand(6, dtype=torch.float64)
    torch.testing.assert_close(
        NTXentLoss(temperature=0.3, reduction="sum")(v1, keys=v2, weights=weights),
        FE.nt_xent_loss(s, positive, negative, temperature=0.3, weights=weights, reduction="sum"),
    )


# -------------------------------------------------------------------- chunked InfoNCE


@pytest.mark.parametrize(
    "form",
    ["labels", "pairs", "pairs_labels_mask", "pairs_hard_queue", "symmetric", "dot", "nt_xent"],
)
@pytest.mark.parametrize("chunk", [1, 7, 64])
def test_chunked_info_nce_equals_direct(form, chunk):
    g = torch.Generator().manual_seed(chunk)
    n, d = 24, 8
    q = torch.randn(n, d, generator=g, requires_grad=True)
    k = torch.randn(n, d, generator=g, requires_grad=True)
    y = torch.randint(0, 5, (n,), generator=g)
    hard = torch.randn(n, 2, d, generator=g, requires_grad=True)
    queue = torch.randn(10, d, generator=g, requires_grad=True)
    w = torch.rand(n, generator=g)
    kwargs: dict = {"weights": w}
    hyper: dict = {}
    args: tuple = (q,)
    if form == "labels":
        args = (q, y)
        kwargs |= {"ref_embeddings": queue, "ref_labels": y[:10]}
    elif form == "pairs":
        kwargs |= {"keys": k}
    elif form == "pairs_labels_mask":
        args = (q, y)
        kwargs |= {"keys": k}
    elif form == "pairs_hard_queue":
        kwargs |= {"keys": k, "hard_negatives": hard, "ref_embeddings": queue}
    elif form == "symmetric":
        kwargs |= {"keys": k}
        hyper = {"symmetric": True}
    elif form == "dot":
        kwargs |= {"keys": k}
        hyper = {"similarity": "dot"}
    else:
        kwargs |= {"keys": k, "hard_negatives": hard[:, 0], "ref_embeddings": queue}
    cls = NTXentLoss if form == "nt_xent" else InfoNCELoss
    tensors = [q, k, hard, queue]

    def run(chunk_size, reduction="mean"):
        module = cls(
            temperature=0.2,
            learnable_temperature=True,
            chunk_size=chunk_size,
            reduction=reduction,
            **hyper,
        )
        value = module(*args, **kwargs)
        if reduction != "mean":
            return value, None
        grads = torch.autograd.grad(value, [*tensors, module.log_temperature], allow_unused=True)
        return value, grads

    direct, direct_grads = run(None)
    chunked, chunked_grads = run(chunk)
    torch.testing.assert_close(chunked, direct, rtol=1e-5, atol=1e-6)
    for a, b in zip(chunked_grads, direct_grads):
        if a is None or b is None:
            assert a is None and b is None or (a if b is None else b).abs().max() == 0
            continue
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(run(chunk, "none")[0], run(None, "none")[0], rtol=1e-5, atol=1e-6)


def test_chunked_info_nce_gradcheck():
    q = torch.randn(5, 3, dtype=torch.float64, requires_grad=True)
    k = torch.randn(5, 3, dtype=torch.float64, requires_grad=True)
    y = torch.tensor([0, 1, 0, 1, 2])
    module = InfoNCELoss(chunk_size=2, temperature=0.5, false_negatives="positive")
    assert torch.autograd.gradcheck(lambda a, b: module(a, y, keys=b), (q, k))
    module = InfoNCELoss(chunk_size=3, reduction="sum")
    assert torch.autograd.gradcheck(lambda a: module(a, y), (q,))


# -------------------------------------------------------------------- contract


@pytest.mark.parametrize("name", [n for n in EMB_LOSSES if n != "circle"])
def test_registered_and_gradcheck(name):
    assert name in rankloss.losses.available("embedding")
    x, y = _data(6, 3, classes=2)
    x.requires_grad_(True)
    hyper = {"beta": 5.0} if name == "multi_similarity" else {}
    module = rankloss.losses.get(name, **hyper)
    assert module.kind == "embedding"
    assert torch.autograd.gradcheck(lambda a: module(a, y), (x,))
    k = torch.randn(6, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b: module(a, keys=b), (x, k))


def test_circle_gradient_treats_weights_as_constants():
    # Circle loss detaches its adaptive weights, so gradcheck does not apply; compare the
    # gradient with autograd through a loop written in float64.
    x, y = _data(6, 3, classes=2)
    x.requires_grad_(True)
    CircleLoss(margin=0.25, gamma=4.0)(x, y).backward()
    z = x.detach().clone().requires_grad_(True)
    s = torch.nn.functional.normalize(z, dim=1) @ torch.nn.functional.normalize(z, dim=1).T
    terms = []
    for i in range(6):
        pos = [j for j in range(6) if j != i and y[j] == y[i]]
        neg = [j for j in range(6) if y[j] != y[i]]
        if not pos or not neg:
            continue
        lp = torch.logsumexp(
            torch.stack(
                [-4.0 * torch.relu(1.25 - s[i, j].detach()) * (s[i, j] - 0.75) for j in pos]
            ),
            0,
        )
        ln = torch.logsumexp(
            torch.stack(
                [4.0 * torch.relu(s[i, j].detach() + 0.25) * (s[i, j] - 0.25) for j in neg]
            ),
            0,
        )
        terms.append(torch.nn.functional.softplus(lp + ln))
    torch.stack(terms).mean().backward()
    torch.testing.assert_close(x.grad, z.grad)


@pytest.mark.parametrize("name", EMB_LOSSES)
def test_nothing_to_learn_is_connected_zero(name):
    x = torch.randn(4, 5, requires_grad=True)
    module = rankloss.losses.get(name)
    for labels in (torch.tensor([0, 1, 2, 3]), torch.zeros(4, dtype=torch.long)):
        value = module(x, labels)
        needs = rankloss.losses.LOSSES.entry(name).meta["info"].needs_pairs
        if needs != "positive_and_negative" and labels.unique().numel() != 4:
            continue  # these learn from positives alone
        if needs == "any_pair":
            continue  # these learn from negatives alone
        assert value.item() == 0.0 and value.requires_grad
        value.backward()
        assert torch.isfinite(x.grad).all() and (x.grad == 0).all()
        x.grad = None
    value = module(x[:1], torch.tensor([0]))
    assert value.item() == 0.0
    value.backward()


@pytest.mark.parametrize("name", EMB_LOSSES)
def test_reductions_and_weights(name):
    x, y = _data(9, 4, classes=3)
    per = rankloss.losses.get(name, reduction="none")(x, y)
    assert per.shape == (9,)
    w = torch.rand(9, dtype=torch.float64)
    total = rankloss.losses.get(name, reduction="sum")(x, y, weights=w)
    torch.testing.assert_close(total, (per * w).sum())
    module = rankloss.losses.get(name)
    torch.testing.assert_close(
        module(x, y, weights=torch.ones(9, dtype=torch.float64)), module(x, y)
    )
    with pytest.raises(ValueError, match=r"weights has shape \[3\]"):
        module(x, y, weights=torch.ones(3))


@pytest.mark.parametrize("name", EMB_LOSSES)
def test_half_precision_computed_in_float32(name):
    x, y = _data(8, 4, dtype=torch.float32)
    module = rankloss.losses.get(name)
    out = module(x.half(), y)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, module(x.half().float(), y))


@pytest.mark.parametrize("name", EMB_LOSSES)
def test_extreme_inputs_finite(name):
    x = torch.randn(8, 4) * 1e4
    x.requires_grad_(True)
    y = torch.tensor([0, 0, 1, 1, 2, 2, 3, 3])
    for kind in ("dot", "neg_sq_euclidean"):
        value = rankloss.losses.get(name, similarity=kind)(x, y)
        value.backward()
        assert torch.isfinite(value) and torch.isfinite(x.grad).all(), kind
        x.grad = None


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10_000), name=st.sampled_from(EMB_LOSSES))
def test_invariant_to_batch_order(seed, name):
    x, y = _data(8, 4, classes=3, seed=seed)
    perm = torch.randperm(8, generator=torch.Generator().manual_seed(seed))
    module = rankloss.losses.get(name, reduction="none")
    per = module(x, y)
    torch.testing.assert_close(module(x[perm], y[perm]), per[perm])
    k, _ = _data(8, 4, seed=seed + 1)
    per = module(x, keys=k)
    torch.testing.assert_close(module(x[perm], keys=k[perm]), per[perm])


def test_bad_inputs_raise_clear_errors():
    x, y = _data()
    with pytest.raises(
        ValueError, match=r"TripletLoss: labels has shape \[3\] but expected \[10\]"
    ):
        TripletLoss()(x, y[:3])
    with pytest.raises(ValueError, match=r"InfoNCELoss: keys has shape \[4, 6\] but embeddings"):
        InfoNCELoss()(x, keys=x[:4])
    with pytest.raises(ValueError, match="SupConLoss: labels must be integer class labels"):
        SupConLoss()(x, y.double())
    with pytest.raises(ValueError, match=r"ref_embeddings has shape \[3, 2\]"):
        ContrastiveLoss()(x, y, ref_embeddings=torch.randn(3, 2), ref_labels=y[:3])
    with pytest.raises(ValueError, match="ref_labels was given without ref_embeddings"):
        CircleLoss()(x, y, ref_labels=y)
    with pytest.raises(ValueError, match=r"InfoNCELoss: hard_negatives has shape \[2, 6\]"):
        InfoNCELoss()(x, keys=x, hard_negatives=torch.randn(2, 6))
    with pytest.raises(ValueError, match=r"labels \[N\] are required, or keys="):
        TripletLoss()(x)
    with pytest.raises(ValueError, match=r"NTXentLoss: keys \(the second view\) has shape"):
        NTXentLoss()(x, keys=x[:4])
    with pytest.raises(ValueError, match=r"NTXentLoss: labels has shape \[3\] but expected \[10\]"):
        NTXentLoss()(x, y[:3], keys=x)


def test_misuse_from_the_issue_fails_clearly():
    # A ranking batch given to an embedding loss: scores [B, n] and float labels [B, n].
    scores, labels = torch.randn(4, 5), torch.rand(4, 5)
    with pytest.raises(ValueError, match=r"labels must be integer class labels.*float32.*\[4, 5\]"):
        rankloss.losses.get("info_nce")(scores, labels)
    # Two views passed positionally: the second must be keys=.
    v1, v2 = torch.randn(4, 3), torch.randn(4, 3)
    with pytest.raises(ValueError, match=r"use keys=\.\.\."):
        NTXentLoss()(v1, v2)
    # A list loss and an embedding loss do not add up.
    with pytest.raises(TypeError, match="one kind"):
        rankloss.losses.get("ranknet") + rankloss.losses.get("triplet")
    with pytest.raises(ValueError, match="share one reduction"):
        ContrastiveLoss() + TripletLoss(reduction="sum")


def test_parts_a_loss_does_not_take_are_refused():
    x, y = _data()
    t = Triplets(torch.tensor([0]), torch.tensor([1]), torch.tensor([2]))
    for module in (ContrastiveLoss(), TripletLoss(), MultiSimilarityLoss(), CircleLoss()):
        with pytest.raises(TypeError, match="does not take hard_negatives"):
            module(x, y, hard_negatives=torch.randn(10, 6))
    for module in (InfoNCELoss(), NTXentLoss(), SupConLoss()):
        with pytest.raises(TypeError, match="does not take indices"):
            module(x, y, indices=t)
    with pytest.raises(TypeError, match="indices must be Pairs, Triplets or an indices tuple"):
        TripletLoss()(x, y, indices=(t.anchor, t.positive))
    with pytest.raises(ValueError, match="either a miner .* or indices"):
        TripletLoss(miner="batch_hard")(x, y, indices=t)
    with pytest.raises(ValueError, match=r"indices.other must index \[0, 10\)"):
        ContrastiveLoss()(x, y, indices=Pairs(t.anchor, t.anchor + 10, t.anchor == 0))
    with pytest.raises(ValueError, match=r"triplets.negative must index \[0, 10\)"):
        TripletLoss()(x, y, indices=Triplets(t.anchor, t.positive, t.negative + 10))


# -------------------------------------------------------------------- miners feed losses


def test_triplet_with_batch_hard_miner_matches_reference():
    x, y = _data(12, 5, classes=3)
    got = TripletLoss(margin=0.2, miner="batch_hard")(x, y)
    _, keys, pos, neg = ref.candidates_labels(x, y)
    s = ref.similarity(x, keys, "cosine")
    triplets = ref.batch_hard(s, pos, neg)
    want = sum(max(0.0, float(s[a, n] - s[a, p]) + 0.2) for a, p, n in triplets) / len(triplets)
    torch.testing.assert_close(got, torch.tensor(want, dtype=torch.float64))


def test_contrastive_with_a_pair_miner_matches_reference():
    x, y = _data(12, 5, classes=3)
    got = ContrastiveLoss(pos_margin=0.7, neg_margin=0.2, miner="multi_similarity")(x, y)
    _, keys, pos, neg = ref.candidates_labels(x, y)
    s = ref.similarity(x, keys, "cosine")
    mined = ref.multi_similarity_pairs(s, pos, neg, 0.1)
    mined_pos = {(a, j) for a, j, is_pos in mined if is_pos}
    mined_neg = {(a, j) for a, j, is_pos in mined if not is_pos}
    want = ref.contrastive(s, mined_pos, mined_neg, 0.7, 0.2)
    torch.testing.assert_close(got, torch.tensor(want, dtype=torch.float64))


def test_any_miner_feeds_any_tuple_loss():
    x, y = _data(12, 5, classes=3)
    x.requires_grad_(True)
    for miner in rankloss.mining.available():
        for name in ("triplet", "contrastive", "multi_similarity", "circle", "margin_ranking"):
            value = rankloss.losses.get(name, miner=miner)(x, y)
            value.backward()
            assert torch.isfinite(value) and torch.isfinite(x.grad).all(), (name, miner)
            x.grad = None
    miner = rankloss.mining.BatchSemiHardMiner(margin=0.5)
    assert torch.isfinite(TripletLoss(miner=miner)(x, y))


def test_given_indices():
    x, _ = _data(6, 4, classes=2)
    y = torch.tensor([0, 0, 1, 1, 0, 1])
    t = Triplets(torch.tensor([0, 2]), torch.tensor([1, 3]), torch.tensor([2, 0]))
    got = MarginRankingLoss(margin=0.5, reduction="none")(x, y, indices=t)
    s = ref.similarity(x, x, "cosine")
    want = torch.zeros(6, dtype=torch.float64)
    want[0] = max(0.0, 0.5 - float(s[0, 1] - s[0, 2]))
    want[2] = max(0.0, 0.5 - float(s[2, 3] - s[2, 0]))
    torch.testing.assert_close(got, want)
    # Pairs feed a triplet loss (combined per anchor); triplets feed a pair loss (their pairs).
    pairs = rankloss.mining.triplets_to_pairs(t)
    torch.testing.assert_close(
        MarginRankingLoss(margin=0.5, reduction="none")(x, y, indices=pairs), want
    )
    got = ContrastiveLoss(reduction="none")(x, y, indices=t)
    want = torch.zeros(6, dtype=torch.float64)
    want[0] = max(0.0, 1 - float(s[0, 1])) + max(0.0, float(s[0, 2]))
    want[2] = max(0.0, 1 - float(s[2, 3])) + max(0.0, float(s[2, 0]))
    torch.testing.assert_close(got, want)


def test_learnable_temperature_gets_gradient():
    module = rankloss.losses.get("info_nce", temperature=0.1, learnable_temperature=True)
    params = list(module.parameters())
    assert len(params) == 1 and params[0] is module.log_temperature
    torch.testing.assert_close(params[0].exp(), torch.tensor(0.1))
    x, y = _data(8, 4, dtype=torch.float32)
    module(x, y).backward()
    assert params[0].grad is not None and params[0].grad != 0
    torch.testing.assert_close(
        rankloss.losses.get("info_nce", temperature=0.1)(x, y), module(x, y).detach()
    )
    assert "learnable_temperature=True" in repr(module)
    assert list(InfoNCELoss().parameters()) == [] and InfoNCELoss().log_temperature is None
    assert len(list(NTXentLoss(learnable_temperature=True).parameters())) == 1


def test_cross_batch_memory_adds_candidates():
    memory = rankloss.mining.CrossBatchMemory(size=6, dim=4)
    x1, y1 = _data(5, 4, dtype=torch.float32)
    x2, y2 = _data(5, 4, seed=1, dtype=torch.float32)
    loss = ContrastiveLoss()
    first = memory.loss(loss, x1, y1)
    torch.testing.assert_close(first, loss(x1, y1))
    second = memory.loss(loss, x2, y2, weights=torch.ones(5))
    torch.testing.assert_close(second, loss(x2, y2, ref_embeddings=x1, ref_labels=y1))
    assert len(memory) == 6
    negatives_only = rankloss.mining.CrossBatchMemory(size=6, dim=4, use_labels=False)
    negatives_only.enqueue(x1, y1)
    torch.testing.assert_close(
        negatives_only.loss(InfoNCELoss(), x2, y2), InfoNCELoss()(x2, y2, ref_embeddings=x1)
    )


# -------------------------------------------------------------------- combination


def test_two_embedding_losses_combine():
    x, y = _data(10, 4)
    x.requires_grad_(True)
    combined = ContrastiveLoss() + 0.5 * TripletLoss()
    assert isinstance(combined, CombinedLoss) and combined.kind == "embedding"
    value, parts = combined(x, y, return_parts=True)
    torch.testing.assert_close(value, ContrastiveLoss()(x, y) + 0.5 * TripletLoss()(x, y))
    assert set(parts) == {"contrastive", "triplet"}
    value.backward()
    assert torch.isfinite(x.grad).all()
    k, _ = _data(10, 4, seed=1)
    torch.testing.assert_close(
        combined(x, keys=k), ContrastiveLoss()(x, keys=k) + 0.5 * TripletLoss()(x, keys=k)
    )
    spec = CombinedLoss.from_spec({"info_nce": 1.0, "supcon": {"weight": 0.3, "temperature": 0.2}})
    torch.testing.assert_close(
        spec(x, y), InfoNCELoss()(x, y) + 0.3 * SupConLoss(temperature=0.2)(x, y)
    )


# ------------------------------------------------------------------------------------------
# Bad input (issue 14)


def _takes_hard_negatives(name):
    return type(rankloss.losses.get(name)).takes_hard_negatives


@pytest.mark.badinput("losses")
@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")], ids=str)
@pytest.mark.parametrize("name", EMB_LOSSES)
def test_non_finite_embeddings_are_refused_with_their_position(name, bad):
    x, y = _data(6, 4, classes=2)
    module = rankloss.losses.get(name)
    broken = x.clone()
    broken[4, 2] = bad
    pattern = rf"embeddings holds -?{bad!s} at \[4, 2\] \(embeddings must be finite\)"
    with pytest.raises(ValueError, match=pattern):
        module(broken, y)
    with pytest.raises(ValueError, match="keys " + pattern.replace("embeddings holds", "holds")):
        module(x, keys=broken)
    with pytest.raises(ValueError, match="ref_" + pattern):
        module(x, y, ref_embeddings=broken, ref_labels=y)
    if _takes_hard_negatives(name):
        with pytest.raises(ValueError, match=rf"hard_negatives holds -?{bad!s} at"):
            module(x, keys=x, hard_negatives=broken)


@pytest.mark.badinput("losses")
@pytest.mark.parametrize("dtype", [torch.float16, torch.float32])
@pytest.mark.parametrize("name", EMB_LOSSES)
def test_empty_batch_gives_connected_zero(name, dtype):
    # info_nce, nt_xent, supcon, multi_similarity and circle with N = 0 raised
    # "IndexError: amax()" in the issue's run; an empty batch is a connected zero.
    labels = torch.zeros(0, dtype=torch.long)
    for reduction in ("mean", "sum", "none"):
        module = rankloss.losses.get(name, reduction=reduction)
        for form in ("labels", "keys", "refs"):
            x = torch.zeros(0, 4, dtype=dtype, requires_grad=True)
            if form == "labels":
                value = module(x, labels)
            elif form == "keys":
                value = module(x, keys=torch.zeros(0, 4, dtype=dtype))
            else:
                refs = torch.randn(3, 4, dtype=dtype)
                value = module(x, labels, ref_embeddings=refs, ref_labels=torch.zeros(3).long())
            assert value.shape == ((0,) if reduction == "none" else ()), (form, value.shape)
            assert (value == 0).all() and value.requires_grad, form
            value.sum().backward()
            assert x.grad is not None and x.grad.shape == (0, 4)


@pytest.mark.badinput("losses")
@pytest.mark.parametrize("name", EMB_LOSSES)
def test_dot_similarity_on_huge_half_embeddings(name):
    # info_nce and supcon with similarity="dot" on float16 embeddings scaled by 1e4: a finite
    # value but an inf gradient. The float32 gradient there exceeds the float16 range (about 1e5
    # against 65504), so no correct float16 gradient is finite: the promise is that a half
    # input's gradient is the float32 gradient rounded to half (inf only where it overflows,
    # never NaN, not clipped, so a GradScaler sees it), and finite in every dtype whose range
    # holds it.
    g = torch.Generator().manual_seed(0)
    base = torch.randn(8, 4, generator=g)
    y = torch.tensor([0, 0, 1, 1, 2, 2, 3, 3])
    module = rankloss.losses.get(name, similarity="dot")
    for dtype, scale in (
        (torch.float16, 1e4),
        (torch.float16, 1e3),
        (torch.bfloat16, 1e4),
        (torch.float32, 1e4),
        (torch.float64, 1e4),
    ):
        x = (base * scale).to(dtype).requires_grad_(True)
        upcast = x.detach().to(torch.promote_types(dtype, torch.float32)).requires_grad_(True)
        value = module(x, y)
        value.backward()
        module(upcast, y).backward()
        assert torch.isfinite(value), (dtype, scale)
        assert not x.grad.isnan().any(), (dtype, scale)
        assert torch.equal(x.grad, upcast.grad.to(dtype)), (dtype, scale)
        fits = upcast.grad.abs() <= torch.finfo(dtype).max
        assert torch.equal(torch.isfinite(x.grad), fits), (dtype, scale)
        squared = rankloss.losses.LOSSES.entry(name).meta["info"].squared_terms
        # circle: gamma=256; a squared loss: gradients grow with the similarity squared
        if dtype != torch.float16 or (scale < 1e4 and name != "circle" and not squared):
            assert torch.isfinite(x.grad).all(), (dtype, scale)

"""Embedding losses against float64 loop references, and their contract."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import rankloss
from rankloss import functional as F
from rankloss.mining import Triplets
from tests.embedding import reference as ref

EMB_LOSSES = [
    "contrastive",
    "triplet",
    "info_nce",
    "nt_xent",
    "supcon",
    "multi_similarity",
    "circle",
    "margin_ranking",
]


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


CASES = [
    ("contrastive", F.contrastive_loss, {"pos_margin": 0.8, "neg_margin": 0.3}, {}),
    (
        "contrastive",
        F.contrastive_loss,
        {"pos_margin": 0.8, "neg_margin": 0.3, "squared": True},
        {},
    ),
    ("triplet", F.triplet_loss, {"margin": 0.3}, {}),
    ("triplet", F.triplet_loss, {"soft": True}, {"soft_margin": True}),
    ("margin_ranking", F.margin_ranking_loss, {"margin": 0.3}, {}),
    ("info_nce", F.info_nce_loss, {"temperature": 0.2}, {}),
    ("nt_xent", F.nt_xent_loss, {"temperature": 0.5}, {}),
    ("supcon", F.supcon_loss, {"temperature": 0.3}, {}),
    ("multi_similarity", F.multi_similarity_loss, {"alpha": 2.0, "beta": 10.0, "base": 0.3}, {}),
    ("circle", F.circle_loss, {"margin": 0.25, "gamma": 16.0}, {}),
]


def _call_hyper(name, hyper, extra):
    call = dict(hyper)
    call.pop("soft", None)
    call.update(extra)
    return call


@pytest.mark.parametrize("name,fn,hyper,extra", CASES)
@pytest.mark.parametrize("kind", ["cosine", "neg_euclidean"])
def test_labels_form_matches_reference(name, fn, hyper, extra, kind):
    x, y = _data()
    if kind == "neg_euclidean":
        x = x / 3
    got = fn(x, y, similarity=kind, **_call_hyper(name, hyper, extra))
    _, keys, pos, neg = ref.candidates_labels(x, y)
    want = _reference(name, ref.similarity(x, keys, kind), pos, neg, hyper)
    torch.testing.assert_close(got, torch.tensor(want, dtype=torch.float64))


@pytest.mark.parametrize("name,fn,hyper,extra", CASES)
def test_labels_form_with_references(name, fn, hyper, extra):
    x, y = _data(8)
    r, ry = _data(5, seed=1)
    got = fn(x, y, ref_embeddings=r, ref_labels=ry, **_call_hyper(name, hyper, extra))
    _, keys, pos, neg = ref.candidates_labels(x, y, r, ry)
    want = _reference(name, ref.similarity(x, keys, "cosine"), pos, neg, hyper)
    torch.testing.assert_close(got, torch.tensor(want, dtype=torch.float64))
    # Without labels the references are extra negatives.
    got = fn(x, y, ref_embeddings=r, **_call_hyper(name, hyper, extra))
    _, keys, pos, neg = ref.candidates_labels(x, y, r, None)
    want = _reference(name, ref.similarity(x, keys, "cosine"), pos, neg, hyper)
    torch.testing.assert_close(got, torch.tensor(want, dtype=torch.float64))


@pytest.mark.parametrize("name,fn,hyper,extra", [c for c in CASES if c[0] != "nt_xent"])
def test_pair_form_matches_reference(name, fn, hyper, extra):
    q, _ = _data(6)
    k, _ = _data(6, seed=1)
    got = fn(q, k, **_call_hyper(name, hyper, extra))
    _, keys, pos, neg = ref.candidates_pairs(q, k)
    want = _reference(name, ref.similarity(q, keys, "cosine"), pos, neg, hyper)
    torch.testing.assert_close(got, torch.tensor(want, dtype=torch.float64))


@pytest.mark.parametrize("mode", ["mask", "positive"])
def test_info_nce_pair_labels_hard_negatives_queue(mode):
    q, _ = _data(6)
    k, _ = _data(6, seed=1)
    hard, _ = _data(6, seed=2)
    queue, _ = _data(4, seed=3)
    labels = torch.tensor([0, 1, 0, 2, 1, 3])
    got = F.info_nce_loss(
        q,
        k,
        labels,
        hard_negatives=hard,
        ref_embeddings=queue,
        temperature=0.3,
        false_negatives=mode,
    )
    _, keys, pos, neg = ref.candidates_pairs(q, k, torch.cat([queue, hard]), labels, mode)
    want = ref.info_nce(ref.similarity(q, keys, "cosine"), pos, neg, 0.3)[0]
    torch.testing.assert_close(got, torch.tensor(want, dtype=torch.float64))


def test_info_nce_symmetric_is_mean_of_directions():
    q, _ = _data(6)
    k, _ = _data(6, seed=1)
    both = F.info_nce_loss(q, k, symmetric=True, temperature=0.2)
    one = F.info_nce_loss(q, k, temperature=0.2, reduction="none")
    other = F.info_nce_loss(k, q, temperature=0.2, reduction="none")
    torch.testing.assert_close(both, ((one + other) / 2).mean())
    with pytest.raises(ValueError, match="symmetric"):
        F.info_nce_loss(*_data(), symmetric=True)


def test_nt_xent_views_equals_simclr_loop():
    v1, _ = _data(5)
    v2, _ = _data(5, seed=1)
    w = torch.cat([v1, v2])
    ids = torch.arange(5).repeat(2)
    _, keys, pos, neg = ref.candidates_labels(w, ids)
    s = ref.similarity(w, keys, "cosine")
    want = ref.info_nce(s, pos, neg, 0.5)[0]
    torch.testing.assert_close(
        F.nt_xent_loss(v1, v2, temperature=0.5), torch.tensor(want, dtype=torch.float64)
    )
    module = rankloss.losses.get("nt_xent", temperature=0.5)
    torch.testing.assert_close(module(v1, v2), torch.tensor(want, dtype=torch.float64))
    assert F.nt_xent_loss(v1, v2, reduction="none").shape == (5,)


# -------------------------------------------------------------------- chunked InfoNCE


@pytest.mark.parametrize(
    "form", ["labels", "pairs", "pairs_labels_mask", "pairs_hard_queue", "symmetric", "dot"]
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
    temperature = torch.tensor(0.2, requires_grad=True)
    kwargs: dict = {"temperature": temperature, "weights": w}
    if form == "labels":
        args = (q, y)
        kwargs |= {"ref_embeddings": queue, "ref_labels": y[:10]}
    elif form == "pairs":
        args = (q, k)
    elif form == "pairs_labels_mask":
        args = (q, k, y)
    elif form == "pairs_hard_queue":
        args = (q, k)
        kwargs |= {"hard_negatives": hard, "ref_embeddings": queue}
    elif form == "symmetric":
        args = (q, k)
        kwargs |= {"symmetric": True}
    else:
        args = (q, k)
        kwargs |= {"similarity": "dot"}
    tensors = [q, k, hard, queue, temperature]

    def run(chunk_size):
        value = F.info_nce_loss(*args, chunk_size=chunk_size, **kwargs)
        grads = torch.autograd.grad(value, tensors, allow_unused=True)
        return value, grads

    direct, direct_grads = run(None)
    chunked, chunked_grads = run(chunk)
    torch.testing.assert_close(chunked, direct, rtol=1e-5, atol=1e-6)
    for a, b in zip(chunked_grads, direct_grads):
        if a is None or b is None:
            assert a is None and b is None or (a if b is None else b).abs().max() == 0
            continue
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)
    per = F.info_nce_loss(*args, chunk_size=chunk, reduction="none", **kwargs)
    torch.testing.assert_close(
        per, F.info_nce_loss(*args, reduction="none", **kwargs), rtol=1e-5, atol=1e-6
    )


def test_chunked_info_nce_gradcheck():
    q = torch.randn(5, 3, dtype=torch.float64, requires_grad=True)
    k = torch.randn(5, 3, dtype=torch.float64, requires_grad=True)
    y = torch.tensor([0, 1, 0, 1, 2])

    def f(a, b):
        return F.info_nce_loss(a, b, y, chunk_size=2, temperature=0.5, false_negatives="positive")

    assert torch.autograd.gradcheck(f, (q, k))
    assert torch.autograd.gradcheck(
        lambda a: F.info_nce_loss(a, y, chunk_size=3, reduction="sum"), (q,)
    )


def test_chunked_rejects_euclidean():
    with pytest.raises(ValueError, match="chunk_size supports"):
        F.info_nce_loss(*_data(), similarity="neg_euclidean", chunk_size=4)


# -------------------------------------------------------------------- contract


@pytest.mark.parametrize("name", [n for n in EMB_LOSSES if n != "circle"])
def test_registered_and_gradcheck(name):
    assert name in rankloss.losses.available("embedding")
    x, y = _data(6, 3, classes=2)
    x.requires_grad_(True)
    module = rankloss.losses.get(name)
    hyper = {"gamma": 4.0} if name == "circle" else {}
    if name == "multi_similarity":
        hyper = {"beta": 5.0}
    module = rankloss.losses.get(name, **hyper)
    assert torch.autograd.gradcheck(lambda a: module(a, y), (x,))
    k = torch.randn(6, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b: module(a, b), (x, k))


def test_circle_gradient_treats_weights_as_constants():
    # Circle loss detaches its adaptive weights, so gradcheck does not apply; compare the
    # gradient with autograd through a loop written in float64.
    x, y = _data(6, 3, classes=2)
    x.requires_grad_(True)
    F.circle_loss(x, y, margin=0.25, gamma=4.0).backward()
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
    fn = rankloss.losses.LOSSES.entry(name).meta["function"]
    for labels in (torch.tensor([0, 1, 2, 3]), torch.zeros(4, dtype=torch.long)):
        value = fn(x, labels)
        if name in ("contrastive", "multi_similarity", "supcon") and labels.unique().numel() != 4:
            continue  # these learn from positives alone
        if name in ("contrastive", "multi_similarity"):
            continue  # these learn from negatives alone
        assert value.item() == 0.0 and value.requires_grad
        value.backward()
        assert torch.isfinite(x.grad).all() and (x.grad == 0).all()
        x.grad = None
    value = fn(x[:1], torch.tensor([0]))
    assert value.item() == 0.0
    value.backward()


@pytest.mark.parametrize("name", EMB_LOSSES)
def test_reductions_and_weights(name):
    x, y = _data(9, 4, classes=3)
    fn = rankloss.losses.LOSSES.entry(name).meta["function"]
    per = fn(x, y, reduction="none")
    assert per.shape == (9,)
    w = torch.rand(9, dtype=torch.float64)
    total = fn(x, y, reduction="sum", weights=w)
    torch.testing.assert_close(total, (per * w).sum())
    mean = fn(x, y, weights=torch.ones(9, dtype=torch.float64))
    torch.testing.assert_close(mean, fn(x, y))
    with pytest.raises(ValueError, match=r"weights has shape \[3\]"):
        fn(x, y, weights=torch.ones(3))


@pytest.mark.parametrize("name", EMB_LOSSES)
def test_half_precision_computed_in_float32(name):
    x, y = _data(8, 4, dtype=torch.float32)
    fn = rankloss.losses.LOSSES.entry(name).meta["function"]
    out = fn(x.half(), y)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, fn(x.half().float(), y))


@pytest.mark.parametrize("name", EMB_LOSSES)
def test_extreme_inputs_finite(name):
    x = torch.randn(8, 4) * 1e4
    x.requires_grad_(True)
    y = torch.tensor([0, 0, 1, 1, 2, 2, 3, 3])
    fn = rankloss.losses.LOSSES.entry(name).meta["function"]
    for kind in ("dot", "neg_sq_euclidean"):
        value = fn(x, y, similarity=kind)
        value.backward()
        assert torch.isfinite(value) and torch.isfinite(x.grad).all(), kind
        x.grad = None


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10_000), name=st.sampled_from(EMB_LOSSES))
def test_invariant_to_batch_order(seed, name):
    x, y = _data(8, 4, classes=3, seed=seed)
    perm = torch.randperm(8, generator=torch.Generator().manual_seed(seed))
    fn = rankloss.losses.LOSSES.entry(name).meta["function"]
    per = fn(x, y, reduction="none")
    torch.testing.assert_close(fn(x[perm], y[perm], reduction="none"), per[perm])
    if name != "nt_xent":
        k, _ = _data(8, 4, seed=seed + 1)
        per = fn(x, k, reduction="none")
        torch.testing.assert_close(fn(x[perm], k[perm], reduction="none"), per[perm])


def test_bad_inputs_raise_clear_errors():
    x, y = _data()
    with pytest.raises(
        ValueError, match=r"triplet_loss: labels has shape \[3\] but expected \[10\]"
    ):
        F.triplet_loss(x, y[:3])
    with pytest.raises(ValueError, match=r"keys has shape \[4, 6\] but embeddings"):
        F.info_nce_loss(x, x[:4])
    with pytest.raises(ValueError, match="integer class labels"):
        F.supcon_loss(x, y.double())
    with pytest.raises(ValueError, match=r"ref_embeddings has shape \[3, 2\]"):
        F.contrastive_loss(x, y, ref_embeddings=torch.randn(3, 2), ref_labels=y[:3])
    with pytest.raises(ValueError, match="ref_labels was given without ref_embeddings"):
        F.circle_loss(x, y, ref_labels=y)
    with pytest.raises(ValueError, match="temperature must be positive"):
        F.info_nce_loss(x, y, temperature=0.0)
    with pytest.raises(ValueError, match="reduction must be one of"):
        F.triplet_loss(x, y, reduction="avg")
    with pytest.raises(ValueError, match="pair_labels applies"):
        F.info_nce_loss(x, y, y)
    with pytest.raises(ValueError, match=r"hard_negatives has shape \[2, 6\]"):
        F.info_nce_loss(x, x, hard_negatives=torch.randn(2, 6))
    with pytest.raises(KeyError):
        rankloss.losses.get("triplet", miner="nope")(x, y)


# -------------------------------------------------------------------- miners feed losses


def test_triplet_with_batch_hard_miner_matches_reference():
    x, y = _data(12, 5, classes=3)
    got = rankloss.losses.get("triplet", margin=0.2, miner="batch_hard")(x, y)
    _, keys, pos, neg = ref.candidates_labels(x, y)
    s = ref.similarity(x, keys, "cosine")
    triplets = ref.batch_hard(s, pos, neg)
    want = sum(max(0.0, float(s[a, n] - s[a, p]) + 0.2) for a, p, n in triplets) / len(triplets)
    torch.testing.assert_close(got, torch.tensor(want, dtype=torch.float64))


def test_any_miner_feeds_any_tuple_loss():
    x, y = _data(12, 5, classes=3)
    x.requires_grad_(True)
    for miner in rankloss.mining.available():
        for name in ("triplet", "contrastive", "multi_similarity", "circle"):
            value = rankloss.losses.get(name, miner=miner)(x, y)
            value.backward()
            assert torch.isfinite(value) and torch.isfinite(x.grad).all(), (name, miner)
            x.grad = None
    miner = rankloss.mining.BatchSemiHardMiner(margin=0.5)
    assert torch.isfinite(F.triplet_loss(x, y, miner=miner))


def test_given_indices():
    x, y = _data(6, 4, classes=2)
    y = torch.tensor([0, 0, 1, 1, 0, 1])
    t = Triplets(torch.tensor([0, 2]), torch.tensor([1, 3]), torch.tensor([2, 0]))
    got = F.margin_ranking_loss(x, y, indices=t, margin=0.5, reduction="none")
    s = ref.similarity(x, x, "cosine")
    want = torch.zeros(6, dtype=torch.float64)
    want[0] = max(0.0, 0.5 - float(s[0, 1] - s[0, 2]))
    want[2] = max(0.0, 0.5 - float(s[2, 3] - s[2, 0]))
    torch.testing.assert_close(got, want)
    with pytest.raises(ValueError, match="either a miner or indices"):
        F.triplet_loss(x, y, indices=t, miner="batch_hard")


def test_learnable_temperature_gets_gradient():
    module = rankloss.losses.get("info_nce", temperature=0.1, learnable_temperature=True)
    params = list(module.parameters())
    assert len(params) == 1
    torch.testing.assert_close(params[0].exp(), torch.tensor(0.1))
    x, y = _data(8, 4, dtype=torch.float32)
    module(x, y).backward()
    assert params[0].grad is not None and params[0].grad != 0
    torch.testing.assert_close(
        rankloss.losses.get("info_nce", temperature=0.1)(x, y), module(x, y).detach()
    )
    assert "learnable_temperature=True" in repr(module)


def test_cross_batch_memory_adds_candidates():
    memory = rankloss.mining.CrossBatchMemory(size=6, dim=4)
    x1, y1 = _data(5, 4, dtype=torch.float32)
    x2, y2 = _data(5, 4, seed=1, dtype=torch.float32)
    loss = rankloss.losses.get("contrastive")
    first = memory.loss(loss, x1, y1)
    torch.testing.assert_close(first, loss(x1, y1))
    second = memory.loss(loss, x2, y2)
    torch.testing.assert_close(second, loss(x2, y2, ref_embeddings=x1, ref_labels=y1))
    assert len(memory) == 6

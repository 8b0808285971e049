"""The functional embedding losses on hand-made similarity matrices and masks.

Each loss is a pure function of ``(similarity [N, M], positive [N, M], negative [N, M])``; here
the matrices are written by hand or drawn at random (with rows that have no positive, no
negative or no pair at all), and every value is compared with the float64 loops of
``tests/embedding/reference.py``.
"""

from __future__ import annotations

import ast
import doctest
import math
from pathlib import Path

import pytest
import torch

import rankloss.functional.embedding as FE
from rankloss._core.candidates import build_candidates
from rankloss._core.similarity import pairwise_similarity
from rankloss.mining import Pairs, Triplets
from tests.embedding import reference as ref

SRC = Path(__file__).resolve().parents[2] / "src" / "rankloss"


def _sets(positive: torch.Tensor, negative: torch.Tensor) -> tuple[set, set]:
    pos = {tuple(p) for p in torch.nonzero(positive).tolist()}
    neg = {tuple(p) for p in torch.nonzero(negative).tolist()}
    return pos, neg


def _case(seed: int = 0, n: int = 7, m: int = 9, dtype: torch.dtype = torch.float64):
    """A random similarity in [-1, 1] and disjoint masks; row 0 has no positive, row 1 no
    negative, row 2 no pair at all."""
    g = torch.Generator().manual_seed(seed)
    s = torch.rand(n, m, generator=g, dtype=dtype) * 2 - 1
    kind = torch.randint(0, 3, (n, m), generator=g)
    positive, negative = kind == 0, kind == 1
    positive[0] = False
    negative[0, :2] = True
    negative[1] = False
    positive[1, :2] = True
    positive[2] = negative[2] = False
    return s, positive, negative


# name -> (function, reference(s, pos, neg) -> mean, hyper-parameters)
def _info_nce_ref(s, pos, neg, temperature):
    return ref.info_nce(s, pos, neg, temperature)[0]


CASES = {
    "contrastive": (FE.contrastive_loss, ref.contrastive, {"pos_margin": 0.7, "neg_margin": 0.2}),
    "contrastive_squared": (
        FE.contrastive_loss,
        ref.contrastive,
        {"pos_margin": 0.7, "neg_margin": 0.2, "squared": True},
    ),
    "multi_similarity": (
        FE.multi_similarity_loss,
        ref.multi_similarity,
        {"alpha": 2.0, "beta": 10.0, "base": 0.3},
    ),
    "circle": (FE.circle_loss, ref.circle, {"margin": 0.25, "gamma": 16.0}),
    "triplet": (FE.triplet_loss, ref.triplet, {"margin": 0.3}),
    "triplet_soft": (FE.triplet_loss, ref.triplet, {"soft_margin": True}),
    "margin_ranking": (FE.margin_ranking_loss, ref.triplet, {"margin": 0.3}),
    "info_nce": (FE.info_nce_loss, _info_nce_ref, {"temperature": 0.2}),
    "supcon": (FE.supcon_loss, ref.supcon, {"temperature": 0.3}),
}


def _ref_hyper(name: str, hyper: dict) -> dict:
    if name == "triplet_soft":
        return {"soft": True}
    return dict(hyper)


@pytest.mark.parametrize("name", CASES)
@pytest.mark.parametrize("seed", range(3))
def test_matches_reference_on_a_random_similarity(name, seed):
    fn, reference, hyper = CASES[name]
    s, positive, negative = _case(seed)
    pos, neg = _sets(positive, negative)
    want = reference(s, pos, neg, **_ref_hyper(name, hyper))
    torch.testing.assert_close(fn(s, positive, negative, **hyper), torch.tensor(want).double())
    # Per anchor: the reference on each row alone (0 where the row has nothing to learn).
    per = fn(s, positive, negative, reduction="none", **hyper)
    assert per.shape == (s.shape[0],)
    for i in range(s.shape[0]):
        row_pos, row_neg = _sets(positive[i : i + 1], negative[i : i + 1])
        row = reference(s[i : i + 1], row_pos, row_neg, **_ref_hyper(name, hyper))
        torch.testing.assert_close(per[i], torch.tensor(row).double())


@pytest.mark.parametrize("name", CASES)
def test_reductions_and_weights(name):
    fn, _, hyper = CASES[name]
    s, positive, negative = _case(4)
    per = fn(s, positive, negative, reduction="none", **hyper)
    w = torch.rand(s.shape[0], generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    torch.testing.assert_close(
        fn(s, positive, negative, reduction="sum", weights=w, **hyper), (per * w).sum()
    )
    # The mean is over anchors with something to learn: a zero weight elsewhere changes nothing.
    valid = per != 0
    mean = fn(s, positive, negative, weights=w, **hyper)
    torch.testing.assert_close(mean, (per * w)[valid].sum() / w[valid].sum())
    with pytest.raises(ValueError, match=r"weights has shape \[3\]"):
        fn(s, positive, negative, weights=torch.ones(3), **hyper)


def test_hand_made_values():
    # One anchor, candidates: a positive at 0.9, a negative at -0.2, a non-pair at 5.
    s = torch.tensor([[0.9, -0.2, 5.0]])
    positive = torch.tensor([[True, False, False]])
    negative = torch.tensor([[False, True, False]])
    torch.testing.assert_close(FE.contrastive_loss(s, positive, negative), torch.tensor(0.1))
    torch.testing.assert_close(
        FE.contrastive_loss(s, positive, negative, neg_margin=-0.5, squared=True),
        torch.tensor(0.1**2 + 0.3**2),
    )
    torch.testing.assert_close(
        FE.triplet_loss(s, positive, negative, margin=1.5), torch.tensor(-0.2 - 0.9 + 1.5)
    )
    torch.testing.assert_close(
        FE.info_nce_loss(s, positive, negative, temperature=0.5),
        torch.tensor(math.log1p(math.exp((-0.2 - 0.9) / 0.5))),
    )
    torch.testing.assert_close(
        FE.supcon_loss(s, positive, negative, temperature=0.5),
        torch.tensor(math.log1p(math.exp((-0.2 - 0.9) / 0.5))),
    )


@pytest.mark.parametrize("fn", [FE.triplet_loss, FE.margin_ranking_loss])
def test_given_triplets(fn):
    s, positive, negative = _case(5)
    a, p, q = torch.nonzero(positive.unsqueeze(2) & negative.unsqueeze(1), as_tuple=True)
    keep = torch.arange(len(a)) % 3 == 0
    t = Triplets(a[keep], p[keep], q[keep])
    got = fn(s, positive, negative, triplets=t, margin=0.4, reduction="none")
    want = torch.zeros(s.shape[0], dtype=torch.float64)
    for i in range(s.shape[0]):
        values = [
            max(0.0, float(s[ai, ni] - s[ai, pi]) + 0.4)
            for ai, pi, ni in zip(t.anchor.tolist(), t.positive.tolist(), t.negative.tolist())
            if ai == i
        ]
        want[i] = sum(values) / len(values) if values else 0.0
    torch.testing.assert_close(got, want)
    # A triplet against the masks (positive and negative swapped) is dropped.
    anchor = int(t.anchor[0])
    swapped = Triplets(
        torch.cat([t.anchor, t.anchor[:1]]),
        torch.cat([t.positive, t.negative[:1]]),
        torch.cat([t.negative, t.positive[:1]]),
    )
    assert not positive[anchor, t.negative[0]]
    torch.testing.assert_close(
        fn(s, positive, negative, triplets=swapped, margin=0.4, reduction="none"), got
    )
    with pytest.raises(TypeError, match="pairs_to_triplets"):
        fn(s, positive, negative, triplets=Pairs(a, p, torch.ones_like(a, dtype=torch.bool)))
    with pytest.raises(ValueError, match=r"triplets.negative must index \[0, 9\)"):
        fn(s, positive, negative, triplets=Triplets(a[:1], p[:1], p[:1] * 0 + 9))


@pytest.mark.parametrize("name", CASES)
def test_non_pairs_are_never_read(name):
    """Masking equals deleting: garbage (NaN, inf) where neither mask is set changes neither
    the value nor the gradients, and the gradient there is exactly 0."""
    fn, _, hyper = CASES[name]
    s, positive, negative = _case(6)
    keep = (positive | negative).any(0)
    keep[0] = False  # delete a column even if it holds pairs: clear it from the masks
    positive, negative = positive & keep, negative & keep
    clean = s[:, keep].clone().requires_grad_(True)
    dirty = s.clone()
    dirty[~(positive | negative)] = float("nan")
    dirty[0, ~keep] = float("inf")
    dirty.requires_grad_(True)
    a = fn(clean, positive[:, keep], negative[:, keep], **hyper)
    b = fn(dirty, positive, negative, **hyper)
    torch.testing.assert_close(a, b)
    a.backward()
    b.backward()
    assert torch.isfinite(dirty.grad).all()
    assert (dirty.grad[~(positive | negative)] == 0).all()
    torch.testing.assert_close(dirty.grad[:, keep], clean.grad)


@pytest.mark.parametrize("name", CASES)
def test_nothing_to_learn_is_a_connected_zero(name):
    fn, _, hyper = CASES[name]
    s = torch.randn(3, 4, requires_grad=True)
    none = torch.zeros(3, 4, dtype=torch.bool)
    value = fn(s, none, none, **hyper)
    assert value.item() == 0.0 and value.requires_grad
    value.backward()
    assert (s.grad == 0).all()
    for shape in ((0, 0), (3, 0), (0, 4)):
        empty = torch.zeros(shape, requires_grad=True)
        nothing = torch.zeros(shape, dtype=torch.bool)
        value = fn(empty, nothing, nothing, **hyper)
        assert value.item() == 0.0 and value.requires_grad, shape
        value.backward()


@pytest.mark.parametrize("name", [n for n in CASES if n != "circle"])
def test_gradcheck(name):
    fn, _, hyper = CASES[name]
    s, positive, negative = _case(7, n=4, m=5)
    s.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda x: fn(x, positive, negative, **hyper), (s,))


@pytest.mark.parametrize("name", CASES)
def test_extreme_similarities_stay_finite(name):
    fn, _, hyper = CASES[name]
    s, positive, negative = _case(8, dtype=torch.float32)
    for scale in (1e4, -1e4, 1e8):
        x = (s * scale).requires_grad_(True)
        value = fn(x, positive, negative, **hyper)
        value.backward()
        assert torch.isfinite(value) and torch.isfinite(x.grad).all(), scale


@pytest.mark.parametrize("name", CASES)
def test_half_precision_in_float32(name):
    fn, _, hyper = CASES[name]
    s, positive, negative = _case(9, dtype=torch.float32)
    out = fn(s.half(), positive, negative, **hyper)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, fn(s.half().float(), positive, negative, **hyper))


def test_nt_xent_is_the_mean_of_the_two_views():
    s, positive, negative = _case(10, n=8, m=8)
    per_view, valid = FE.info_nce_per_anchor(s, positive, negative, temperature=0.5)
    _, out, ok = ref.info_nce(s, *_sets(positive, negative), 0.5)
    torch.testing.assert_close(per_view, torch.tensor(out).double())
    assert valid.tolist() == ok
    got = FE.nt_xent_loss(s, positive, negative, reduction="none")
    want = []
    for i in range(4):
        views = [out[j] for j in (i, i + 4) if ok[j]]
        want.append(sum(views) / len(views) if views else 0.0)
    torch.testing.assert_close(got, torch.tensor(want).double())
    with pytest.raises(ValueError, match=r"2N rows .* got \[7, 8\]"):
        FE.nt_xent_loss(s[:7], positive[:7], negative[:7])
    with pytest.raises(ValueError, match=r"weights has shape \[8\]; expected \[4\]"):
        FE.nt_xent_loss(s, positive, negative, weights=torch.ones(8))


def test_mean_of_views():
    values = torch.tensor([1.0, 2.0, 3.0, 5.0, 7.0, 9.0])
    valid = torch.tensor([True, False, False, True, True, False])
    mean, ok = FE.mean_of_views(values, valid, 2)
    torch.testing.assert_close(mean, torch.tensor([3.0, 7.0, 0.0]))
    assert ok.tolist() == [True, True, False]
    with pytest.raises(ValueError, match="V = 4"):
        FE.mean_of_views(values, valid, 4)


@pytest.mark.parametrize("similarity", ["cosine", "dot"])
@pytest.mark.parametrize("chunk", [1, 5, 100])
def test_chunked_equals_info_nce_on_the_candidates(similarity, chunk):
    g = torch.Generator().manual_seed(chunk)
    x = torch.randn(12, 4, generator=g, dtype=torch.float64, requires_grad=True)
    queue = torch.randn(5, 4, generator=g, dtype=torch.float64)
    y = torch.randint(0, 3, (12,), generator=g)
    candidates = build_candidates(x, y, ref_embeddings=queue)
    s = pairwise_similarity(candidates.queries, candidates.keys, similarity)
    positive, negative = candidates.masks()
    direct = FE.info_nce_loss(s, positive, negative, temperature=0.3, reduction="none")
    chunked = FE.chunked_info_nce_loss(
        candidates, similarity=similarity, temperature=0.3, chunk_size=chunk, reduction="none"
    )
    torch.testing.assert_close(chunked, direct)
    (g1,) = torch.autograd.grad(direct.sum(), x)
    (g2,) = torch.autograd.grad(chunked.sum(), x)
    torch.testing.assert_close(g1, g2)


def test_chunked_checks_its_arguments():
    x, y = torch.randn(4, 3), torch.tensor([0, 0, 1, 1])
    candidates = build_candidates(x, y)
    with pytest.raises(ValueError, match="chunked_info_nce_loss: similarity must be one of"):
        FE.chunked_info_nce_loss(candidates, similarity="neg_euclidean")
    with pytest.raises(ValueError, match="chunked_info_nce_loss: chunk_size must be"):
        FE.chunked_info_nce_loss(candidates, chunk_size=0)
    with pytest.raises(TypeError, match="chunked_info_nce_loss: chunk_size must be an int"):
        FE.chunked_info_nce_loss(candidates, chunk_size=2.0)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="candidates must be"):
        FE.chunked_info_nce_loss(x)  # type: ignore[arg-type]


def test_inputs_are_checked_at_entry():
    s, positive, negative = _case(11)
    with pytest.raises(ValueError, match=r"triplet_loss: similarity must have shape \[N, M\]"):
        FE.triplet_loss(s[0], positive[0], negative[0])
    with pytest.raises(ValueError, match="contrastive_loss: similarity must be floating"):
        FE.contrastive_loss(positive.long(), positive, negative)
    with pytest.raises(ValueError, match="info_nce_loss: positive must be a bool mask"):
        FE.info_nce_loss(s, positive.float(), negative)
    with pytest.raises(
        ValueError, match=r"supcon_loss: negative has shape \[7, 8\] but similarity has shape"
    ):
        FE.supcon_loss(s, positive, negative[:, :8])
    with pytest.raises(ValueError, match="circle_loss: reduction must be one of"):
        FE.circle_loss(s, positive, negative, reduction="avg")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="similarity must be a torch.Tensor"):
        FE.multi_similarity_loss([[0.0]], positive, negative)  # type: ignore[arg-type]


# function, hyper-parameter, a bad value (ValueError), a value of the wrong type (TypeError)
HYPER = [
    (FE.contrastive_loss, "pos_margin", float("nan"), "1"),
    (FE.contrastive_loss, "pos_margin", -1.0, None),  # below neg_margin
    (FE.contrastive_loss, "neg_margin", float("inf"), None),
    (FE.contrastive_loss, "squared", None, 1),
    (FE.multi_similarity_loss, "alpha", 0.0, "2"),
    (FE.multi_similarity_loss, "beta", -1.0, None),
    (FE.multi_similarity_loss, "base", float("nan"), True),
    (FE.circle_loss, "margin", 1.5, "0.4"),
    (FE.circle_loss, "gamma", 0.0, None),
    (FE.triplet_loss, "margin", -0.1, "0.1"),
    (FE.triplet_loss, "soft_margin", None, "yes"),
    (FE.margin_ranking_loss, "margin", -0.1, None),
    (FE.info_nce_loss, "temperature", 0.0, "0.1"),
    (FE.nt_xent_loss, "temperature", -1.0, None),
    (FE.supcon_loss, "temperature", float("inf"), None),
]


@pytest.mark.parametrize("fn,name,bad,wrong_type", HYPER)
def test_hyper_parameters_are_checked_at_entry(fn, name, bad, wrong_type):
    s, positive, negative = _case(12, n=8, m=8)
    if bad is not None:
        with pytest.raises(ValueError, match=rf"^{fn.__name__}: {name} must be"):
            fn(s, positive, negative, **{name: bad})
    if wrong_type is not None:
        with pytest.raises(TypeError, match=rf"^{fn.__name__}: {name} must be"):
            fn(s, positive, negative, **{name: wrong_type})


def test_docstring_examples_run():
    result = doctest.testmod(FE, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0 and result.attempted > 0


@pytest.mark.parametrize(
    "path", ["functional/embedding.py", "functional/_chunked.py"], ids=lambda p: p
)
def test_functional_imports_only_the_core(path):
    tree = ast.parse((SRC / path).read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("rankloss"):
            assert node.module.startswith(("rankloss._core", "rankloss.functional._")), (
                path,
                node.module,
            )
        if isinstance(node, ast.Import):
            for alias in node.names:
                assert not alias.name.startswith("rankloss") or alias.name.startswith(
                    "rankloss._core"
                ), (path, alias.name)

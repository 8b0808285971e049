import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from rankloss import mining
from rankloss.functional import pairwise_similarity
from rankloss.mining import Pairs, Triplets
from tests.embedding import reference as ref


def _batch(seed, n=14, classes=3, d=6):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=g, dtype=torch.float64), torch.randint(
        0, classes, (n,), generator=g
    )


def _setup(seed, **kw):
    x, y = _batch(seed, **kw)
    s = pairwise_similarity(x)
    pos, neg = mining.label_masks(y)
    pos_set, neg_set = ref.label_pairs(y)
    return x, y, s, pos, neg, pos_set, neg_set


def _tset(t: Triplets):
    return set(zip(t.anchor.tolist(), t.positive.tolist(), t.negative.tolist()))


def test_all_pairs_and_triplets_match_labels():
    x, y, s, pos, neg, pos_set, neg_set = _setup(0)
    pairs = mining.all_pairs(y)
    got_pos = set(zip(*(t.tolist() for t in pairs.positives)))
    got_neg = set(zip(*(t.tolist() for t in pairs.negatives)))
    assert got_pos == pos_set and got_neg == neg_set and len(pairs) == pairs.found
    triplets = mining.all_triplets(y)
    want = {(a, p, n) for (a, p) in pos_set for (b, n) in neg_set if a == b}
    assert _tset(triplets) == want


def test_reference_labels_form():
    y, ry = torch.tensor([0, 1]), torch.tensor([1, 0, 0, 2])
    pos, neg = mining.label_masks(y, ry)
    assert pos.tolist() == [[False, True, True, False], [True, False, False, False]]
    assert (neg == ~pos).all()


def test_caps_bound_per_anchor_and_are_seeded():
    y = torch.tensor([0] * 6 + [1] * 6)
    g = torch.Generator().manual_seed(3)
    pairs = mining.all_pairs(y, max_per_anchor=2, generator=g)
    for a in range(12):
        assert (pairs.positives[0] == a).sum() == 2 and (pairs.negatives[0] == a).sum() == 2
    assert pairs.found == 12 * 11
    t1 = mining.all_triplets(y, max_per_anchor=5, generator=torch.Generator().manual_seed(1))
    t2 = mining.all_triplets(y, max_per_anchor=5, generator=torch.Generator().manual_seed(1))
    assert _tset(t1) == _tset(t2) and len(t1) == 60 and t1.found == 12 * 5 * 6
    assert _tset(t1) <= _tset(mining.all_triplets(y))


def test_graded_pairs():
    labels = torch.tensor([[2.0, 0.0, 1.0, -1.0], [1.0, 1.0, 0.0, 5.0]])
    mask = torch.tensor([[True, True, True, True], [True, True, True, False]])
    gp = mining.graded_pairs(labels, mask)
    got = set(zip(gp.list_index.tolist(), gp.higher.tolist(), gp.lower.tolist()))
    want = {
        (b, i, j)
        for b in range(2)
        for i in range(4)
        for j in range(4)
        if mask[b, i] and mask[b, j] and labels[b, i] > labels[b, j]
    }
    assert got == want
    capped = mining.graded_pairs(labels, mask, max_per_item=1, generator=torch.Generator())
    keys = list(zip(capped.list_index.tolist(), capped.higher.tolist()))
    assert len(keys) == len(set(keys)) and capped.found == len(want)


def test_conversions():
    t = Triplets(torch.tensor([0, 0]), torch.tensor([1, 1]), torch.tensor([2, 3]))
    p = mining.triplets_to_pairs(t)
    assert set(zip(p.anchor.tolist(), p.other.tolist(), p.is_positive.tolist())) == {
        (0, 1, True),
        (0, 2, False),
        (0, 3, False),
    }
    assert _tset(mining.pairs_to_triplets(p)) == _tset(t)


@pytest.mark.parametrize("seed", range(3))
def test_batch_hard_matches_loops(seed):
    _, _, s, pos, neg, pos_set, neg_set = _setup(seed)
    got = mining.BatchHardMiner()(s, pos, neg)
    assert _tset(got) == ref.batch_hard(s, pos_set, neg_set)
    assert got.num_found == len(got)


@pytest.mark.parametrize("margin", [None, 0.3])
def test_semi_hard_matches_loops(margin):
    _, _, s, pos, neg, pos_set, neg_set = _setup(1)
    got = mining.BatchSemiHardMiner(margin=margin)(s, pos, neg)
    want = ref.semi_hard(s, pos_set, neg_set, margin)
    assert {(a, p) for a, p, _ in _tset(got)} == {(a, p) for a, p, _ in want}
    options = {(a, p): ns for a, p, ns in want}
    for a, p, n in _tset(got):
        assert n in options[(a, p)]


@pytest.mark.parametrize("kind", ["violating", "hard", "semihard", "easy"])
def test_margin_miner_matches_loops(kind):
    _, _, s, pos, neg, pos_set, neg_set = _setup(2)
    got = mining.MarginMiner(0.2, kind)(s, pos, neg)
    assert _tset(got) == ref.margin_triplets(s, pos_set, neg_set, 0.2, kind)


def test_multi_similarity_miner_matches_loops():
    _, _, s, pos, neg, pos_set, neg_set = _setup(3)
    got = mining.MultiSimilarityMiner(0.1)(s, pos, neg)
    assert set(zip(got.anchor.tolist(), got.other.tolist(), got.is_positive.tolist())) == (
        ref.multi_similarity_pairs(s, pos_set, neg_set, 0.1)
    )


def test_distance_weighted_weights_and_samples():
    x, y, s, pos, neg, pos_set, neg_set = _setup(4, d=8)
    x = torch.nn.functional.normalize(x, dim=1)
    miner = mining.DistanceWeightedMiner(dim=8)
    torch.testing.assert_close(miner.weights(s, neg, 8), ref.distance_weights(s, neg_set, 8))
    a = miner(s, pos, neg, generator=torch.Generator().manual_seed(0))
    b = miner(s, pos, neg, generator=torch.Generator().manual_seed(0))
    assert _tset(a) == _tset(b) and len(a) == len(pos_set)
    for anchor, p, n in _tset(a):
        assert (anchor, p) in pos_set and (anchor, n) in neg_set


def test_caps_keep_hardest():
    _, _, s, pos, neg, *_ = _setup(5)
    full = mining.MarginMiner(0.5, "violating")(s, pos, neg)
    capped = mining.MarginMiner(0.5, "violating", max_per_anchor=3)(s, pos, neg)
    assert capped.found == len(full)
    for a in capped.anchor.unique().tolist():
        mine = capped.anchor == a
        assert mine.sum() <= 3
        delta = s[a, capped.positive[mine]] - s[a, capped.negative[mine]]
        every = full.anchor == a
        all_delta = s[a, full.positive[every]] - s[a, full.negative[every]]
        assert delta.max() <= torch.sort(all_delta).values[: int(mine.sum())].max() + 1e-12


def test_registry_and_errors():
    assert {
        "batch_hard",
        "semi_hard",
        "distance_weighted",
        "multi_similarity",
        "hard",
        "easy",
    } <= set(mining.available())
    assert isinstance(mining.get("semi_hard", margin=0.2), mining.BatchSemiHardMiner)
    with pytest.raises(KeyError, match="did you mean"):
        mining.get("batch_hardd")
    with pytest.raises(ValueError, match="kind must be one of"):
        mining.MarginMiner(kind="medium")
    with pytest.raises(ValueError, match="positive must be a bool mask"):
        mining.BatchHardMiner()(
            torch.zeros(2, 3),
            torch.zeros(2, 2, dtype=torch.bool),
            torch.zeros(2, 3, dtype=torch.bool),
        )


@settings(max_examples=20, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    name=st.sampled_from(
        [
            "batch_hard",
            "semi_hard",
            "margin",
            "hard",
            "easy",
            "pair_margin",
            "distance_weighted",
            "multi_similarity",
        ]
    ),
    cap=st.one_of(st.none(), st.integers(1, 4)),
    with_ref=st.booleans(),
)
def test_miner_outputs_respect_labels(seed, name, cap, with_ref):
    x, y = _batch(seed, n=10, classes=3)
    miner = mining.get(name, max_per_anchor=cap)
    if with_ref:
        r, ry = _batch(seed + 1, n=7, classes=3)
        out = miner.mine(x, y, r, ry, generator=torch.Generator().manual_seed(seed))
        cand = ry
    else:
        out = miner.mine(x, y, generator=torch.Generator().manual_seed(seed))
        cand = y
    if isinstance(out, Triplets):
        a, p, n = out.anchor, out.positive, out.negative
        assert (y[a] == cand[p]).all() and (y[a] != cand[n]).all()
        if not with_ref:
            assert (a != p).all() and (a != n).all() and (p != n).all()
        rows = list(zip(a.tolist(), p.tolist(), n.tolist()))
    else:
        assert isinstance(out, Pairs)
        same = y[out.anchor] == cand[out.other]
        assert (same == out.is_positive).all()
        if not with_ref:
            assert (out.anchor != out.other).all()
        rows = list(zip(out.anchor.tolist(), out.other.tolist()))
    assert len(rows) == len(set(rows)) or name == "distance_weighted"
    assert out.num_found >= len(out)
    if cap is not None:
        counts = torch.bincount(out.anchor, minlength=10)
        limit = 2 * cap if isinstance(out, Pairs) else cap
        assert counts.max() <= limit


# miner, hyper-parameter, bad values (ValueError), wrong types (TypeError)
MINER_HYPER = [
    (mining.BatchHardMiner, "max_per_anchor", [0, -2], [1.5, "3"]),
    (mining.BatchSemiHardMiner, "margin", [-0.1, float("nan")], ["0.2"]),
    (mining.MarginMiner, "margin", [-0.2, float("inf")], [None, "0.2"]),
    (mining.MarginMiner, "kind", ["medium"], [1]),
    (mining.PairMarginMiner, "pos_margin", [float("nan")], ["0.8"]),
    (mining.PairMarginMiner, "neg_margin", [float("inf")], [None]),
    (mining.PairMarginMiner, "kind", ["violating"], [None]),
    (mining.MultiSimilarityMiner, "epsilon", [-0.1], ["0.1"]),
    (mining.DistanceWeightedMiner, "cutoff", [0.0, -1.0, 2.0], ["0.5"]),  # 2.0 >= 1.4
    (mining.DistanceWeightedMiner, "nonzero_loss_cutoff", [0.0, 0.3], [None]),  # 0.3 <= 0.5
    (mining.DistanceWeightedMiner, "dim", [0, 2], [3.0]),
    (mining.DistanceWeightedMiner, "seed", [-1], [0.5]),
    (mining.DistanceWeightedMiner, "max_per_anchor", [0], [True]),
]


@pytest.mark.parametrize(
    "cls,name,bad,wrong", MINER_HYPER, ids=[f"{c.__name__}-{n}" for c, n, *_ in MINER_HYPER]
)
def test_miner_hyper_parameters_fail_at_construction(cls, name, bad, wrong):
    for value in bad:
        with pytest.raises(ValueError, match=rf"^{cls.__name__}: (\w+) must be"):
            cls(**{name: value})
    for value in wrong:
        with pytest.raises(TypeError, match=rf"^{cls.__name__}: {name} must be"):
            cls(**{name: value})
    # The registry builds with the same checks.
    with pytest.raises(ValueError, match="MarginMiner: margin must be >= 0"):
        mining.get("hard", margin=-1.0)


def test_every_miner_hyper_parameter_is_covered():
    import inspect

    covered = {(cls, name) for cls, name, *_ in MINER_HYPER}
    for cls in (
        mining.BatchHardMiner,
        mining.BatchSemiHardMiner,
        mining.MarginMiner,
        mining.PairMarginMiner,
        mining.MultiSimilarityMiner,
        mining.DistanceWeightedMiner,
    ):
        for name in list(inspect.signature(cls.__init__).parameters)[1:]:
            assert (cls, name) in covered or name == "max_per_anchor", (cls.__name__, name)


def test_mining_imports_only_the_core_and_itself():
    import ast
    from pathlib import Path

    package = Path(mining.__file__).parent
    for path in package.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            for name in names:
                if name.startswith("rankloss"):
                    assert name.startswith(("rankloss._core", "rankloss.mining")), (path, name)


@pytest.mark.parametrize("name", mining.available())
def test_an_empty_batch_mines_nothing(name):
    """N = 0 (or no reference candidate): empty tuples of the miner's kind, and a loss with
    the miner gives the same connected 0 as without one."""
    import rankloss.losses as L

    miner = mining.get(name)
    kind = Pairs if miner.output == "pairs" else Triplets
    x, y = torch.randn(0, 8, requires_grad=True), torch.zeros(0, dtype=torch.long)
    mined = miner(x, y)
    assert isinstance(mined, kind) and len(mined) == 0
    refs = miner.mine(torch.randn(3, 8), torch.arange(3), torch.randn(0, 8), y)
    assert isinstance(refs, kind) and len(refs) == 0
    loss = L.get("contrastive" if miner.output == "pairs" else "triplet", miner=name)
    value = loss(x, y)
    assert value.item() == 0.0
    value.backward()
    assert x.grad is not None and x.grad.shape == (0, 8)

"""Batched ranking metrics against float64 loop references, and their properties."""

from __future__ import annotations

import math
import zlib

import pytest
import torch

import rankloss.metrics as M
from rankloss._core.ranking import dcg_at_k, ideal_dcg, position_discounts
from rankloss._core.ranking import gain as gain_values
from tests.metrics import reference as ref

BINARY = ["average_precision", "reciprocal_rank", "precision", "recall", "r_precision", "hit_rate"]
ALL = ["dcg", "ndcg", *BINARY, "err", "ordered_pair_accuracy"]


def random_batch(seed, batch=24, n=5, levels=3, score_levels=3):
    """Scores with many ties, graded labels, padding, an all-masked list, empty lists."""
    g = torch.Generator().manual_seed(seed)
    scores = torch.randint(0, score_levels, (batch, n), generator=g).double()
    labels = torch.randint(0, levels, (batch, n), generator=g).double()
    mask = torch.rand(batch, n, generator=g) < 0.85
    mask[0] = False
    labels[1] = 0.0
    mask[2] = True
    scores[3] = 1.0  # a fully tied list
    mask[3] = True
    # garbage in padding must not matter
    scores = torch.where(mask, scores, torch.full_like(scores, math.nan))
    labels = torch.where(mask, labels, torch.full_like(labels, 7.0))
    return scores, labels, mask


def expected(name, scores, labels, mask, **kw):
    rows = []
    for s, y, m in zip(scores.tolist(), labels.tolist(), mask.tolist()):
        s = [a for a, keep in zip(s, m) if keep]
        y = [a for a, keep in zip(y, m) if keep]
        rows.append(ref.list_metric(name, s, y, **kw))
    return torch.tensor(rows, dtype=torch.float64)


def assert_close(actual, wanted):
    assert actual.shape == wanted.shape
    assert torch.equal(torch.isnan(actual), torch.isnan(wanted)), (actual, wanted)
    keep = ~torch.isnan(wanted)
    torch.testing.assert_close(actual[keep], wanted[keep], rtol=1e-9, atol=1e-12)


CASES = [
    (name, ties)
    for name in ALL
    for ties in ["index", "pessimistic", "optimistic", "average"]
    if not (name == "err" and ties == "average")  # documented: raises, tested below
]


@pytest.mark.parametrize("name, ties", CASES)
def test_matches_reference(name, ties):
    scores, labels, mask = random_batch(seed=zlib.crc32(f"{name}{ties}".encode()) % 1000)
    function = getattr(M, name)
    ks = [None, 1, 3] if name != "ordered_pair_accuracy" else [None, 2]
    for k in ks:
        kw = {"k": k, "ties": ties}
        if name != "dcg":
            kw["empty"] = "skip"
        actual = function(scores, labels, mask, **kw)
        assert_close(actual, expected(name, scores, labels, mask, **kw))


@pytest.mark.parametrize("name, ties", CASES)
@pytest.mark.parametrize("n", [1, 2])
def test_lists_of_one_and_two_items_match_reference(name, ties, n):
    """The narrowest lists: with one item a list is its own tie group."""
    scores, labels, mask = random_batch(seed=n, n=n)
    function = getattr(M, name)
    for k in [None, 1] if name != "ordered_pair_accuracy" else [None]:
        kw = {"k": k, "ties": ties}
        if name != "dcg":
            kw["empty"] = "skip"
        actual = function(scores, labels, mask, **kw)
        assert_close(actual, expected(name, scores, labels, mask, **kw))


@pytest.mark.parametrize("gain", ["exp2", "linear"])
def test_gain_options(gain):
    scores, labels, mask = random_batch(seed=5, levels=4, score_levels=10)
    for name in ["dcg", "ndcg"]:
        actual = getattr(M, name)(scores, labels, mask, k=3, gain=gain, ties="index")
        assert_close(actual, expected(name, scores, labels, mask, k=3, ties="index", gain=gain))


def test_negative_labels_are_real_labels():
    scores = torch.tensor([[3.0, 2.0, 1.0]], dtype=torch.float64)
    labels = torch.tensor([[-1.0, 2.0, 1.0]], dtype=torch.float64)
    for gain in ["exp2", "linear"]:
        actual = M.ndcg(scores, labels, gain=gain, ties="index")
        assert_close(
            actual,
            expected(
                "ndcg", scores, labels, torch.ones_like(labels).bool(), gain=gain, ties="index"
            ),
        )


def test_err_max_label_and_average_refused():
    scores, labels, mask = random_batch(seed=11, levels=5, score_levels=20)
    actual = M.err(scores, labels, mask, k=4, max_label=4.0, ties="index")
    assert_close(actual, expected("err", scores, labels, mask, k=4, ties="index", max_label=4.0))
    with pytest.raises(ValueError, match="average"):
        M.err(scores, labels, ties="average")


@pytest.mark.parametrize("empty, fill", [("zero", 0.0), ("one", 1.0)])
def test_empty_options(empty, fill):
    scores = torch.tensor([[1.0, 2.0], [1.0, 2.0]])
    labels = torch.tensor([[0.0, 0.0], [1.0, 0.0]])
    for name in ALL:
        if name == "dcg":
            continue
        values = getattr(M, name)(scores, labels, empty=empty)
        assert values[0].item() == fill, name
        assert not math.isnan(values[1].item())
        skipped = getattr(M, name)(scores, labels)
        assert math.isnan(skipped[0].item()), f"{name}: empty='skip' is the default"


def test_relevance_threshold():
    scores = torch.tensor([3.0, 2.0, 1.0])
    labels = torch.tensor([1.0, 2.0, 0.0])
    assert M.reciprocal_rank(scores, labels).item() == 1.0
    assert M.reciprocal_rank(scores, labels, relevance_threshold=2).item() == 0.5
    assert (
        M.precision(scores, torch.tensor([0.5, 0.0, 0.0]), k=1, relevance_threshold=0.5).item()
        == 1.0
    )


def test_relevance_threshold_rule_is_greater_or_equal():
    """The one rule: an item is relevant when ``label >= relevance_threshold`` (default 1)."""
    scores = torch.tensor([4.0, 3.0, 2.0, 1.0])
    labels = torch.tensor([0.0, 1.0, 2.0, 0.5])
    for name in ["average_precision", "reciprocal_rank", "precision", "recall", "hit_rate"]:
        function = getattr(M, name)
        default = function(scores, labels, k=2)
        assert default.item() == function(scores, labels, k=2, relevance_threshold=1.0).item()
        # a label equal to the threshold is relevant: 1.0 and 2.0 are, 0.5 and 0.0 are not
        assert default.item() == function(scores, labels >= 1, k=2).item(), name
    assert M.recall(scores, labels, k=2).item() == 0.5
    assert M.recall(scores, labels, k=2, relevance_threshold=2).item() == 0.0
    assert M.recall(scores, labels, k=3, relevance_threshold=0.5).item() == pytest.approx(2 / 3)


def test_hit_at_k_and_recall_at_k_differ_with_several_relevant_items():
    scores = torch.tensor([[4.0, 3.0, 2.0, 1.0], [4.0, 3.0, 2.0, 1.0]])
    labels = torch.tensor([[1.0, 0.0, 1.0, 1.0], [0.0, 1.0, 0.0, 0.0]])
    hit = M.hit_rate(scores, labels, k=2)
    recall = M.recall(scores, labels, k=2)
    assert hit.tolist() == [1.0, 1.0]
    assert recall.tolist() == pytest.approx([1 / 3, 1.0])  # equal with one relevant item only
    torch.testing.assert_close(M.compute("hit@2", scores, labels), hit)
    torch.testing.assert_close(M.compute("hit_rate@2", scores, labels), hit)
    torch.testing.assert_close(M.compute("recall@2", scores, labels), recall)
    torch.testing.assert_close(M.compute("R@2", scores, labels), recall)


def test_dcg_primitives_are_the_core_ones():
    """One DCG: the metrics agree with rankloss._core.ranking on gains in rank order."""
    g = torch.Generator().manual_seed(21)
    scores = torch.rand(30, 9, generator=g, dtype=torch.float64)
    labels = torch.randint(0, 4, (30, 9), generator=g).double()
    order = scores.argsort(-1, descending=True)
    for kind in ["exp2", "linear"]:
        in_order = gain_values(labels.gather(-1, order), kind)
        for k in [None, 1, 4]:
            core_dcg = dcg_at_k(in_order, k)
            assert torch.equal(M.dcg(scores, labels, k=k, gain=kind, ties="index"), core_dcg)
            torch.testing.assert_close(M.dcg(scores, labels, k=k, gain=kind), core_dcg)
            every = torch.ones_like(labels, dtype=torch.bool)
            ideal = ideal_dcg(gain_values(labels, kind), every, k)
            sorted_gains = gain_values(labels.sort(-1, descending=True).values, kind)
            torch.testing.assert_close(ideal, dcg_at_k(sorted_gains, k), rtol=0, atol=1e-12)
            wanted = torch.where(ideal > 0, core_dcg / ideal, math.nan)
            torch.testing.assert_close(
                M.ndcg(scores, labels, k=k, gain=kind), wanted, equal_nan=True
            )
    weights = position_discounts(5, k=3, dtype=torch.float64)
    assert weights.tolist() == pytest.approx([1.0, 1 / math.log2(3), 0.5, 0.0, 0.0])


def test_average_ties_of_constant_scores_is_the_random_expectation():
    scores = torch.zeros(1, 4)
    labels = torch.tensor([[1.0, 0.0, 0.0, 0.0]])
    # Each position is equally likely: E[1/rank] = (1 + 1/2 + 1/3 + 1/4) / 4.
    assert M.reciprocal_rank(scores, labels).item() == pytest.approx(
        (1 + 1 / 2 + 1 / 3 + 1 / 4) / 4
    )
    assert M.reciprocal_rank(scores, labels, ties="index").item() == 1.0
    assert M.reciprocal_rank(scores, labels, ties="pessimistic").item() == 0.25
    assert M.hit_rate(scores, labels, k=2).item() == pytest.approx(0.5)
    assert M.precision(scores, labels, k=2).item() == pytest.approx(0.25)


# -------------------------------------------------------------------------------- properties


@pytest.mark.parametrize("ties", ["average", "index", "pessimistic"])
def test_bounds(ties):
    g = torch.Generator().manual_seed(3)
    scores = torch.randint(0, 4, (300, 12), generator=g).float()
    labels = torch.randint(0, 5, (300, 12), generator=g).float()
    mask = torch.rand(300, 12, generator=g) < 0.8
    for name in ALL:
        if name in ("dcg",) or (name == "err" and ties == "average"):
            continue
        for k in [None, 1, 5]:
            values = getattr(M, name)(scores, labels, mask, k=k, ties=ties)
            values = values[~torch.isnan(values)]
            assert values.numel() > 0
            assert bool((values >= -1e-6).all() and (values <= 1 + 1e-6).all()), (name, k)


@pytest.mark.parametrize("name", ALL)
def test_padding_invariance(name):
    g = torch.Generator().manual_seed(4)
    scores = torch.randint(0, 4, (50, 7), generator=g).double()
    labels = torch.randint(0, 3, (50, 7), generator=g).double()
    ties = "index" if name == "err" else "average"
    base = getattr(M, name)(scores, labels, k=3, ties=ties)
    pad = torch.tensor([math.nan, math.inf, -math.inf, 1e30]).double().expand(50, 4)
    padded_scores = torch.cat([scores[:, :2], pad, scores[:, 2:]], dim=-1)
    padded_labels = torch.cat([labels[:, :2], torch.full((50, 4), 9.0), labels[:, 2:]], dim=-1)
    mask = torch.ones_like(padded_scores, dtype=torch.bool)
    mask[:, 2:6] = False
    padded = getattr(M, name)(padded_scores, padded_labels, mask, k=3, ties=ties)
    assert_close(padded.double(), base.double())


@pytest.mark.parametrize("name", ALL)
def test_perfect_ranking_scores_one(name):
    g = torch.Generator().manual_seed(6)
    labels = torch.randint(0, 4, (40, 9), generator=g).float()
    labels[:, 0] = 3.0  # every list has a relevant item
    scores = labels + torch.rand(40, 9, generator=g) * 0.1  # no ties, ideal order
    if name == "dcg":
        values = M.dcg(scores, labels, k=5) / M.dcg(labels, labels, k=5)
    elif name == "precision":
        values = M.precision(scores, labels, k=1)
    elif name == "recall":
        values = M.recall(scores, labels)
    else:
        values = getattr(M, name)(scores, labels, k=None)
    if name == "err":
        values = values / M.err(labels, labels)  # ERR's own maximum is below 1
    torch.testing.assert_close(values, torch.ones_like(values))


def test_batch_shapes_and_dtypes():
    g = torch.Generator().manual_seed(8)
    scores = torch.rand(2, 3, 6, generator=g)
    labels = torch.randint(0, 3, (2, 3, 6), generator=g)
    flat = M.ndcg(scores.reshape(6, 6), labels.reshape(6, 6), k=3)
    nested = M.ndcg(scores, labels, k=3)
    assert nested.shape == (2, 3)
    torch.testing.assert_close(nested.reshape(6), flat, equal_nan=True)
    assert M.ndcg(scores[0, 0], labels[0, 0]).shape == ()
    assert M.ndcg(scores.half(), labels).dtype == torch.float32
    assert M.ndcg(scores.double(), labels).dtype == torch.float64


def test_compute_by_name():
    scores, labels, mask = random_batch(seed=9)
    torch.testing.assert_close(
        M.compute("ndcg@3", scores, labels, mask),
        M.ndcg(scores, labels, mask, k=3),
        equal_nan=True,
    )
    mean = M.compute("P_5", scores, labels, mask, reduction="mean")
    assert mean.item() == pytest.approx(M.nanmean(M.precision(scores, labels, mask, k=5)).item())
    assert M.parse_metric("mrr@10").canonical == "mrr@10"
    assert M.parse_metric("Rprec").metric == "r_precision"
    assert M.parse_metric("hit_rate@10").k == 10
    assert M.parse_metric("hit_rate@10").canonical == "hit@10"
    assert M.parse_metric("hit@10") == M.MetricSpec("hit@10", "hit", 10)
    assert M.parse_metric("success_5").metric == "hit"
    assert M.METRIC_FUNCTIONS["hit"] is M.hit_rate
    assert M.parse_metric("recall_100") == M.MetricSpec("recall_100", "recall", 100)
    with pytest.raises(ValueError, match="unknown metric"):
        M.parse_metric("ndgc@10")
    with pytest.raises(ValueError, match="parse_metric: the cut-off of 'ndcg@0'"):
        M.parse_metric("ndcg@0")
    with pytest.raises(TypeError, match="parse_metric: name must be a str"):
        M.parse_metric(10)
    with pytest.raises(ValueError, match="compute: reduction must be one of"):
        M.compute("map", scores, labels, mask, reduction="sum")
    with pytest.raises(
        TypeError,
        match=r"compute: the metric 'map' takes no option\(s\) "
        r"\['gain'\]; its options: \['empty', 'relevance_threshold', 'ties'\]",
    ):
        M.compute("map", scores, labels, mask, gain="exp2")
    with pytest.raises(TypeError, match=r"the metric 'ndcg@3' takes no option\(s\) \['tie'\]"):
        M.compute("ndcg@3", scores, labels, mask, tie="index")


def test_validation_errors():
    scores = torch.rand(2, 3)
    with pytest.raises(ValueError, match="labels has shape"):
        M.ndcg(scores, torch.rand(2, 4))
    with pytest.raises(ValueError, match="mask must be a bool"):
        M.ndcg(scores, scores, torch.ones(2, 3))
    with pytest.raises(ValueError, match="ndcg: k must be a positive integer or None, got 0"):
        M.ndcg(scores, scores, k=0)
    with pytest.raises(ValueError, match="ndcg: ties must be one of"):
        M.ndcg(scores, scores, ties="random")
    with pytest.raises(ValueError, match="ndcg: empty must be one of"):
        M.ndcg(scores, scores, empty="nan")
    with pytest.raises(ValueError, match="ndcg: gain must be one of"):
        M.ndcg(scores, scores, gain="cubic")
    with pytest.raises(ValueError, match="dcg: gain must be one of"):
        M.dcg(scores, scores, gain="cubic")
    # wrong types are TypeErrors; the message names the function and the argument
    with pytest.raises(TypeError, match="recall: k must be an int or None, got float"):
        M.recall(scores, scores, k=2.0)
    with pytest.raises(TypeError, match="hit_rate: k must be an int or None, got bool"):
        M.hit_rate(scores, scores, k=True)
    with pytest.raises(TypeError, match="precision: relevance_threshold must be a number"):
        M.precision(scores, scores, relevance_threshold="1")
    with pytest.raises(ValueError, match="average_precision: relevance_threshold must be finite"):
        M.average_precision(scores, scores, relevance_threshold=math.nan)
    with pytest.raises(TypeError, match="reciprocal_rank: relevance_threshold must be a number"):
        M.reciprocal_rank(scores, scores, relevance_threshold=None)
    with pytest.raises(ValueError, match="err: max_label must be finite"):
        M.err(scores, scores, max_label=math.inf)
    with pytest.raises(ValueError, match="ordered_pair_accuracy: k must be a positive"):
        M.ordered_pair_accuracy(scores, scores, k=-1)


def test_accumulator_streams_per_list_values():
    scores, labels, mask = random_batch(seed=12, batch=40)
    acc = M.MetricAccumulator(["ndcg@3", "map", "err@3"], ties="index")
    for lo in range(0, 40, 7):
        acc.update(scores[lo : lo + 7], labels[lo : lo + 7], mask[lo : lo + 7])
    per_list = acc.per_list()
    whole = M.ndcg(scores, labels, mask, k=3, ties="index")
    assert_close(per_list["ndcg@3"], whole)
    assert acc.compute()["map"] == pytest.approx(
        M.nanmean(M.average_precision(scores, labels, mask, ties="index")).item()
    )
    assert acc.num_lists == 40
    light = M.MetricAccumulator(["ndcg@3"], keep_per_list=False, ties="index")
    other = M.MetricAccumulator(["ndcg@3"], keep_per_list=False, ties="index")
    light.update(scores[:20], labels[:20], mask[:20])
    other.update(scores[20:], labels[20:], mask[20:])
    assert light.merge(other).compute()["ndcg@3"] == pytest.approx(acc.compute()["ndcg@3"])
    with pytest.raises(RuntimeError):
        light.per_list()
    with pytest.raises(ValueError, match="options"):
        M.MetricAccumulator(["map"], colour="blue")


@pytest.mark.parametrize("ties", ["index", "pessimistic", "average"])
def test_top_k_path_with_some_tied_lists(ties):
    """Long lists and a small k take the topk path; lists with ties there are ranked in full."""
    g = torch.Generator().manual_seed(13)
    scores = torch.rand(12, 24, generator=g, dtype=torch.float64)
    scores[:4, :6] = 0.99  # ties inside the top k of some lists
    scores[4, :] = 0.5  # a fully tied list
    labels = torch.randint(0, 3, (12, 24), generator=g).double()
    mask = torch.rand(12, 24, generator=g) < 0.9
    names = ["dcg", "ndcg", "precision", "recall", "hit_rate", "r_precision"]
    names += ["average_precision"] if ties != "average" else []
    for name in names:
        actual = getattr(M, name)(scores, labels, mask, k=3, ties=ties)
        kw = {"k": 3, "ties": ties} if name == "dcg" else {"k": 3, "ties": ties, "empty": "skip"}
        if ties == "average":  # the brute force over 24! orders is out of reach: compare the
            rows = slice(5, 12)  # lists without ties, and check the tied ones against "index"
            wanted = expected(name, scores[rows], labels[rows], mask[rows], k=3, ties="index")
            assert_close(actual[rows], wanted)
            continue
        assert_close(actual, expected(name, scores, labels, mask, **kw))
    rr = M.reciprocal_rank(scores, labels, mask, ties=ties, k=2)
    if ties != "average":
        assert_close(rr, expected("reciprocal_rank", scores, labels, mask, k=2, ties=ties))


# ------------------------------------------------------------------------------------------
# Bad input (issue 14)


@pytest.mark.badinput("losses")
@pytest.mark.parametrize("ties", ["average", "index"])
@pytest.mark.parametrize("k", [None, 1, 3])
def test_ndcg_is_finite_for_large_labels(k, ties):
    # metrics.ndcg returned inf for a label of 200 (the exp2 gain overflowed float32).
    # The linear gain cannot overflow; the exp2 gain (ndcg_burges) is the one tested.
    scores = torch.tensor([[0.3, -0.2, 0.1, 0.7, 0.0, 0.0, -1.0, 2.0, 0.5, 0.4, 0.2, 0.1]])
    scores = scores.repeat(3, 1)
    scores[2, 1] = scores[2, 0]  # a tie at the top, for the truncated path's tied rows
    labels = torch.tensor([[200.0, 1.0, 0.0, 130.0, 3.0, 0, 0, 0, 0, 0, 0, 1]]).repeat(3, 1)
    labels[1] = labels[1] * 50.0  # up to 1e4
    expected = M.ndcg(scores.double(), labels.double(), k=k, ties=ties, gain="exp2")
    assert torch.isfinite(expected[[0, 2]]).all()  # 2^200 fits float64; the reference
    for dtype in (torch.float16, torch.bfloat16, torch.float32, torch.float64):
        value = M.ndcg(scores.to(dtype), labels.to(dtype), k=k, ties=ties, gain="exp2")
        assert torch.isfinite(value).all(), (dtype, value)
        assert ((value >= 0) & (value <= 1 + 1e-6)).all(), (dtype, value)
        rows = [0] if dtype in (torch.float16, torch.bfloat16) else [0, 2]  # label rounding
        torch.testing.assert_close(value[rows].double(), expected[rows], rtol=1e-5, atol=1e-5)
    # Row 1 (labels up to 1e4): only the top label counts beside 2^1e4 (2^(6500 - 1e4) is 0
    # there), and the scores rank its item 5th.
    top = 1.0 / math.log2(1 + 5) if k is None else 0.0
    for dtype in (torch.float32, torch.float64):
        value = M.ndcg(scores.to(dtype), labels.to(dtype), k=k, ties=ties, gain="exp2")[1]
        torch.testing.assert_close(value, torch.tensor(top, dtype=dtype))


@pytest.mark.badinput("losses")
@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf], ids=str)
@pytest.mark.parametrize("name", ALL)
def test_non_finite_real_score_or_label_is_refused(name, bad):
    scores = torch.tensor([[0.3, -0.2, 0.1], [1.0, 2.0, 3.0]])
    labels = torch.tensor([[2.0, 1.0, 0.0], [0.0, 1.0, 1.0]])
    for argument in ("scores", "labels"):
        s, y = scores.clone(), labels.clone()
        (s if argument == "scores" else y)[1, 0] = bad
        with pytest.raises(ValueError, match=rf"{name}: {argument} holds -?{bad!s} at \[1, 0\]"):
            getattr(M, name)(s, y)
        # At a padded position the same value is allowed and changes nothing.
        mask = torch.tensor([[True, True, True], [False, True, True]])
        torch.testing.assert_close(
            getattr(M, name)(s, y, mask), getattr(M, name)(scores, labels, mask), equal_nan=True
        )


@pytest.mark.parametrize(
    "metric",
    [
        M.ndcg,
        M.average_precision,
        M.reciprocal_rank,
        M.err,
        M.precision,
        M.recall,
        M.hit_rate,
        M.r_precision,
        M.ordered_pair_accuracy,
    ],
    ids=lambda f: f.__name__,
)
def test_lists_of_no_item_are_skipped_by_every_metric(metric):
    """A ``[B, 0]`` batch has no relevant item in any list: NaN (``empty="skip"``), as a list
    whose items are all masked."""
    scores, labels = torch.zeros(2, 0), torch.zeros(2, 0)
    assert torch.isnan(metric(scores, labels)).all() and metric(scores, labels).shape == (2,)
    masked = metric(torch.zeros(2, 3), torch.ones(2, 3), torch.zeros(2, 3, dtype=torch.bool))
    assert torch.isnan(masked).all()


def test_accumulator_counts_lists_of_no_item():
    acc = M.MetricAccumulator(["mrr", "err", "ndcg@3"])
    acc.update(torch.zeros(2, 0), torch.zeros(2, 0))
    acc.update(torch.tensor([2.0, 1.0]), torch.tensor([0.0, 1.0]))  # one list, 1-D
    assert acc.num_lists == 3 and acc.counts() == {"mrr": 1, "err": 1, "ndcg@3": 1}
    assert acc.compute()["mrr"] == 0.5
    assert acc.per_list()["mrr"].shape == (3,)


def test_merging_a_state_without_per_list_values_into_one_that_keeps_them_is_refused():
    scores, labels = torch.tensor([[2.0, 1.0], [1.0, 2.0]]), torch.tensor([[0.0, 1.0], [0.0, 1.0]])
    keeps = M.MetricAccumulator(["mrr"])
    keeps.update(scores, labels)
    drops = M.MetricAccumulator(["mrr"], keep_per_list=False)
    drops.update(scores, labels)
    with pytest.raises(ValueError, match=r"merge: .* holds 0 of its 2 lists' 'mrr' values"):
        keeps.merge(drops)
    with pytest.raises(ValueError, match=r"merge_state_dict: .* holds 0 of its 2 lists"):
        M.MetricAccumulator(["mrr"]).merge_state_dict(drops.state_dict())
    assert keeps.num_lists == 2 and keeps.per_list()["mrr"].tolist() == [0.5, 1.0]  # unchanged
    # Into an accumulator that keeps no per-list values, both merge.
    total = M.MetricAccumulator(["mrr"], keep_per_list=False).merge(keeps).merge(drops)
    assert total.num_lists == 4 and total.compute() == {"mrr": 0.75}
    same = M.MetricAccumulator(["mrr"]).merge_state_dict(keeps.state_dict())
    assert same.per_list()["mrr"].tolist() == [0.5, 1.0]

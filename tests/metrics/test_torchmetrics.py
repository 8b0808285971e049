"""``rankloss.metrics.torchmetrics``: torchmetrics ``Metric`` classes on rankloss's kernels."""

from __future__ import annotations

import math

import pytest
import torch

pytest.importorskip("torchmetrics")

import torchmetrics.retrieval as tmr  # noqa: E402

import rankloss.metrics as M  # noqa: E402
from rankloss.metrics import torchmetrics as RT  # noqa: E402


def _flat(seed: int = 0, queries: int = 12):
    g = torch.Generator().manual_seed(seed)
    sizes = torch.randint(1, 9, (queries,), generator=g)
    indexes = torch.repeat_interleave(torch.arange(queries) * 3 + 5, sizes)  # not contiguous ids
    preds = torch.randn(len(indexes), generator=g, dtype=torch.float64)
    target = torch.randint(0, 3, (len(indexes),), generator=g).to(torch.float64)
    perm = torch.randperm(len(indexes), generator=g)
    return preds[perm], target[perm], indexes[perm]


def _ref_lists(preds, target, indexes):
    """{query: (scores, labels)} in item order: the grouping written as a plain loop."""
    out: dict[int, tuple[list[float], list[float]]] = {}
    for p, t, i in zip(preds.tolist(), target.tolist(), indexes.tolist()):
        out.setdefault(i, ([], []))
        out[i][0].append(p)
        out[i][1].append(t)
    return out


def _ref_ndcg(scores, labels, k):
    """Linear-gain NDCG@k from the formula (no ties in random float scores)."""
    order = sorted(range(len(scores)), key=lambda j: -scores[j])
    dcg = sum(labels[j] / math.log2(r + 2) for r, j in enumerate(order[:k]))
    ideal = sorted(labels, reverse=True)
    idcg = sum(y / math.log2(r + 2) for r, y in enumerate(ideal[:k]))
    return None if idcg <= 0 else dcg / idcg


CASES = [
    (lambda: RT.NDCG(5), "ndcg@5"),
    (lambda: RT.NDCG(5, gain="exp2"), "ndcg_burges@5"),
    (lambda: RT.MAP(), "map"),
    (lambda: RT.MRR(), "mrr"),
    (lambda: RT.PrecisionAtK(3), "p@3"),
    (lambda: RT.RecallAtK(3), "recall@3"),
    (lambda: RT.ERR(10), "err@10"),
    (lambda: RT.HitRate(2), "hit@2"),
    (lambda: RT.RPrecision(), "r_precision"),
]


@pytest.mark.parametrize(("make", "name"), CASES)
def test_flat_equals_functional_metric_on_the_grouped_lists(make, name):
    preds, target, indexes = _flat()
    metric = make()
    metric.update(preds, target, indexes=indexes)
    scores, labels, mask, queries = RT.group_by_index(preds, target, indexes)
    expected = M.compute(name, scores, labels, mask, reduction="mean")
    assert torch.allclose(metric.compute(), expected.to(torch.float64), atol=1e-12, equal_nan=True)


def test_ndcg_matches_a_plain_loop_reference():
    preds, target, indexes = _flat(1)
    values = [
        v
        for s, y in _ref_lists(preds, target, indexes).values()
        if (v := _ref_ndcg(s, y, 5)) is not None
    ]
    metric = RT.NDCG(5)
    metric.update(preds, target, indexes=indexes)
    assert metric.compute().item() == pytest.approx(sum(values) / len(values), abs=1e-12)


def test_group_by_index_keeps_item_order():
    preds, target, indexes = _flat(2)
    scores, labels, mask, queries = RT.group_by_index(preds, target, indexes)
    ref = _ref_lists(preds, target, indexes)
    assert queries.tolist() == sorted(ref)
    for row, q in enumerate(queries.tolist()):
        n = len(ref[q][0])
        assert mask[row].sum().item() == n and mask[row, :n].all()
        assert scores[row, :n].tolist() == ref[q][0] and labels[row, :n].tolist() == ref[q][1]


@pytest.mark.parametrize(("make", "name"), CASES)
def test_flat_and_padded_forms_agree(make, name):
    preds, target, indexes = _flat(3)
    scores, labels, mask, _ = RT.group_by_index(preds, target, indexes)
    scores = torch.where(mask, scores, torch.full_like(scores, 1e9))  # padding garbage
    flat, padded = make(), make()
    flat.update(preds, target, indexes=indexes)
    padded.update(scores, labels, mask=mask)
    assert torch.allclose(flat.compute(), padded.compute(), atol=1e-12, equal_nan=True)


def test_several_batches_equal_one_batch_even_when_a_query_is_split():
    preds, target, indexes = _flat(4)
    one, many = RT.MAP(), RT.MAP()
    one.update(preds, target, indexes=indexes)
    for chunk in torch.arange(len(preds)).chunk(5):  # queries straddle the chunks
        many.update(preds[chunk], target[chunk], indexes=indexes[chunk])
    assert torch.allclose(one.compute(), many.compute(), atol=1e-12)
    scores, labels, mask, _ = RT.group_by_index(preds, target, indexes)
    rows_one, rows_many = RT.NDCG(3), RT.NDCG(3)
    rows_one.update(scores, labels, mask=mask)
    for part in range(0, len(scores), 4):
        rows_many.update(
            scores[part : part + 4], labels[part : part + 4], mask=mask[part : part + 4]
        )
    assert torch.allclose(rows_one.compute(), rows_many.compute(), atol=1e-12)


def test_reset_and_empty_state():
    metric = RT.MRR()
    preds, target, indexes = _flat(5)
    metric.update(preds, target, indexes=indexes)
    before = metric.compute()
    metric.reset()
    with pytest.warns(UserWarning, match="before the ``update``"):
        assert math.isnan(metric.compute().item())
    metric.update(preds, target, indexes=indexes)
    assert torch.equal(metric.compute(), before)


def test_empty_option_counts_lists_without_relevant_items():
    preds = torch.tensor([[0.3, 0.2], [0.9, 0.1]])
    target = torch.tensor([[0.0, 0.0], [0.0, 1.0]])
    skip, zero = RT.MRR(), RT.MRR(empty="zero")
    skip.update(preds, target)
    zero.update(preds, target)
    assert skip.compute().item() == pytest.approx(0.5)
    assert zero.compute().item() == pytest.approx(0.25)


def test_half_precision_and_to():
    preds, target, indexes = _flat(6)
    ref = RT.NDCG(10)
    ref.update(preds, target, indexes=indexes)
    metric = RT.NDCG(10).to(torch.device("cpu"))
    metric.update(preds.to(torch.bfloat16), target.to(torch.int64), indexes=indexes)
    assert math.isfinite(metric.compute().item())
    assert metric.compute().item() == pytest.approx(ref.compute().item(), abs=0.05)
    moved = metric.to(torch.device("cpu"))
    assert moved is metric and moved.device.type == "cpu"
    assert torch.equal(moved.compute(), metric.compute())


@pytest.mark.parametrize(
    ("ours", "theirs"),
    [
        (lambda: RT.NDCG(), lambda: tmr.RetrievalNormalizedDCG(empty_target_action="skip")),
        (
            lambda: RT.NDCG(4),
            lambda: tmr.RetrievalNormalizedDCG(top_k=4, empty_target_action="skip"),
        ),
        (lambda: RT.MAP(), lambda: tmr.RetrievalMAP(empty_target_action="skip")),
        (lambda: RT.MRR(), lambda: tmr.RetrievalMRR(empty_target_action="skip")),
        (lambda: RT.RecallAtK(3), lambda: tmr.RetrievalRecall(top_k=3, empty_target_action="skip")),
    ],
)
def test_equal_to_torchmetrics_where_the_definitions_match(ours, theirs):
    # torchmetrics' MAP/MRR/Recall take binary targets; NDCG takes graded (linear gain)
    # torchmetrics 1.9 counts an item as retrieved only when its pred is > 0 (except for NDCG):
    # positive scores make the definitions the same
    preds, target, indexes = _flat(7)
    preds = torch.sigmoid(preds)
    graded = theirs().__class__.__name__ == "RetrievalNormalizedDCG"
    target = target if graded else (target > 0).to(torch.float64)
    a, b = ours(), theirs()
    a.update(preds, target, indexes=indexes)
    b.update(preds, target.long(), indexes=indexes)
    assert a.compute().item() == pytest.approx(b.compute().item(), abs=1e-6)


@pytest.mark.badinput("metrics")
def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="NDCG: k must be"):
        RT.NDCG(0)
    with pytest.raises(ValueError, match="NDCG: gain must be"):
        RT.NDCG(gain="cubic")
    with pytest.raises(ValueError, match="unknown metric"):
        RT.RankingMetric("bogus")
    metric = RT.MAP()
    with pytest.raises(ValueError, match="same shape"):
        metric.update(torch.zeros(3), torch.zeros(4), indexes=torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match="padded"):
        metric.update(torch.zeros(3), torch.zeros(3))
    with pytest.raises(ValueError, match="indexes must be integers"):
        metric.update(torch.zeros(3), torch.zeros(3), indexes=torch.zeros(3))
    with pytest.raises(ValueError, match="mask must be bool"):
        metric.update(torch.zeros(2, 3), torch.zeros(2, 3), mask=torch.ones(2, 3))

"""Issue 11, "wrong numbers with no error": the argument order of ``evaluate`` and the gain of
``ndcg@k``.

* ``evaluate(qrels, run)`` as ranx, pytrec_eval and ir-measures; a swapped call is refused.
* ``ndcg@k`` is the linear gain in ``compute``, ``evaluate``, ``MetricAccumulator`` and the
  function ``ndcg``; ``ndcg_burges@k`` is the exp2 gain; a ``gain=`` that contradicts a name is
  refused.
"""

from __future__ import annotations

import math
import re

import pytest
import torch

import rankloss.metrics as M

SWAPPED = (
    "evaluate: the first argument looks like a run (float scores) and the second like qrels "
    "(integer grades); the order is evaluate(qrels, run), as in ranx and pytrec_eval"
)

# One query, every judged document retrieved (so the ideal DCG of evaluate, from the judged
# documents, is the one of compute, from the list), continuous scores (no ties).
QRELS = {"q1": {"a": 1, "b": 3, "c": 0, "d": 2}, "q2": {"a": 0, "b": 1, "c": 2, "d": 0}}
RUN = {
    "q1": {"a": 0.91, "b": 0.82, "c": 0.13, "d": 0.44},
    "q2": {"a": 0.25, "b": 0.75, "c": 0.55, "d": 0.95},
}


def _tensors():
    docs = ["a", "b", "c", "d"]
    scores = torch.tensor([[RUN[q][d] for d in docs] for q in ("q1", "q2")], dtype=torch.float64)
    labels = torch.tensor([[QRELS[q][d] for d in docs] for q in ("q1", "q2")], dtype=torch.float64)
    return scores, labels


def _dcg(gains_in_rank_order, k):
    return sum(g / math.log2(r + 1) for r, g in enumerate(gains_in_rank_order[:k], 1))


def _hand_ndcg(q, k, gain):
    ranked = sorted(RUN[q], key=lambda d: -RUN[q][d])
    gains = [gain(QRELS[q][d]) for d in ranked]
    return _dcg(gains, k) / _dcg(sorted(gains, reverse=True), k)


def _linear(y):
    return float(y)


def _exp2(y):
    return 2.0**y - 1.0


# ------------------------------------------------------------------------------------------
# evaluate(qrels, run)


def test_evaluate_takes_qrels_then_run():
    means = M.evaluate(QRELS, RUN, ["ndcg@3", "map", "mrr"], per_query=True)
    assert means["q1"]["ndcg@3"] == pytest.approx(_hand_ndcg("q1", 3, _linear), abs=1e-12)
    assert means["q1"]["mrr"] == 1.0 and means["q2"]["mrr"] == 0.5


@pytest.mark.badinput("metrics")
def test_evaluate_refuses_swapped_arguments():
    # Swapped, 0.x returned ndcg 0.572, map 0.0, mrr 0.0 on a real run, and no error.
    with pytest.raises(ValueError, match=re.escape(SWAPPED)):
        M.evaluate(RUN, QRELS, ["ndcg@10", "map", "mrr"])
    with pytest.raises(ValueError, match=re.escape(SWAPPED)):
        M.evaluate(RUN, QRELS, ["map"], per_query=True, include_missing=True)
    # Half-integral scores (many of them whole) still give the swap away.
    run = {"q1": {"a": 1.0, "b": 0.5, "c": 2.0}}
    qrels = {"q1": {"a": 1, "b": 0, "c": 2}}
    with pytest.raises(ValueError, match=re.escape(SWAPPED)):
        M.evaluate(run, qrels, ["map"])
    assert M.evaluate(qrels, run, ["map"]) == {"map": 1.0}


@pytest.mark.badinput("metrics")
def test_evaluate_order_check_ambiguous_cases():
    """The documented limits of the check: only "fractional first, all whole second" is refused."""
    # A run with whole scores (counts, negated ranks) in the right order: no error.
    whole_run = {"q1": {"a": 3.0, "b": 7.0, "c": 1.0}}
    qrels = {"q1": {"a": 1, "b": 0, "c": 2}}
    assert M.evaluate(qrels, whole_run, ["mrr"]) == {"mrr": 0.5}
    # ... and swapped: both hold whole numbers, the swap cannot be seen (no error).
    M.evaluate(whole_run, qrels, ["mrr"])
    # Fractional relevance with a float run, in the right order: no error, right numbers.
    fractional = {"q1": {"a": 0.5, "b": 1, "c": 2.5}}
    run = {"q1": {"a": 0.3, "b": 0.2, "c": 0.9}}
    # (trec_eval reads relevance as integers: 0.5 -> 0, 2.5 -> 2, with a warning)
    with pytest.warns(UserWarning, match="fractional relevance is truncated"):
        assert M.evaluate(fractional, run, ["mrr"]) == {"mrr": 1.0}
    # Fractional relevance with a run of whole scores is the one correct input refused;
    # check_order=False lets it through.
    with pytest.raises(ValueError, match=re.escape(SWAPPED)):
        M.evaluate(fractional, whole_run, ["mrr"])
    with pytest.warns(UserWarning, match="fractional relevance is truncated"):
        assert M.evaluate(fractional, whole_run, ["mrr"], check_order=False) == {"mrr": 1.0}


# ------------------------------------------------------------------------------------------
# ndcg@k: linear gain everywhere; ndcg_burges@k: exp2


@pytest.mark.parametrize("k", [1, 3, None])
def test_ndcg_is_the_same_number_in_compute_and_evaluate(k):
    # 0.x: compute("ndcg@3") used 2^y - 1 and evaluate("ndcg@3") y, on the same data.
    scores, labels = _tensors()
    name = "ndcg" if k is None else f"ndcg@{k}"
    by_compute = M.compute(name, scores, labels)
    per_query = M.evaluate(QRELS, RUN, [name], per_query=True)
    by_evaluate = torch.tensor([per_query[q][name] for q in ("q1", "q2")], dtype=torch.float64)
    torch.testing.assert_close(by_compute, by_evaluate, rtol=0, atol=1e-12)
    # the rankloss convention (average ties, skip) changes nothing on untied lists
    rankloss = M.evaluate(QRELS, RUN, [name], per_query=True, convention="rankloss")
    assert [rankloss[q][name] for q in ("q1", "q2")] == pytest.approx(by_evaluate.tolist())
    # and the function and the accumulator say the same
    torch.testing.assert_close(M.ndcg(scores, labels, k=k), by_compute)
    accumulator = M.MetricAccumulator([name])
    accumulator.update(scores, labels)
    torch.testing.assert_close(accumulator.per_list()[name], by_compute)
    wanted = [_hand_ndcg(q, k or 4, _linear) for q in ("q1", "q2")]
    assert by_compute.tolist() == pytest.approx(wanted, abs=1e-12)


@pytest.mark.parametrize("k", [1, 3, None])
def test_ndcg_burges_is_the_exp2_gain(k):
    scores, labels = _tensors()
    name = "ndcg_burges" if k is None else f"ndcg_burges@{k}"
    wanted = [_hand_ndcg(q, k or 4, _exp2) for q in ("q1", "q2")]
    assert M.compute(name, scores, labels).tolist() == pytest.approx(wanted, abs=1e-12)
    per_query = M.evaluate(QRELS, RUN, [name], per_query=True)
    assert [per_query[q][name] for q in ("q1", "q2")] == pytest.approx(wanted, abs=1e-12)
    torch.testing.assert_close(
        M.compute(name, scores, labels), M.ndcg(scores, labels, k=k, gain="exp2")
    )
    # graded labels: the two gains give different numbers
    linear = [_hand_ndcg(q, k or 4, _linear) for q in ("q1", "q2")]
    assert max(abs(a - b) for a, b in zip(wanted, linear)) > 1e-2
    assert M.parse_metric(name).canonical == name
    assert M.parse_metric(name.upper().replace("@", "_")).metric == "ndcg_burges"


def test_dcg_names_follow_the_same_rule():
    scores, labels = _tensors()
    torch.testing.assert_close(M.compute("dcg@3", scores, labels), M.dcg(scores, labels, k=3))
    torch.testing.assert_close(
        M.compute("dcg_burges@3", scores, labels), M.dcg(scores, labels, k=3, gain="exp2")
    )
    ranked = sorted(RUN["q1"], key=lambda d: -RUN["q1"][d])
    linear = _dcg([float(QRELS["q1"][d]) for d in ranked], 3)
    assert M.evaluate(QRELS, RUN, ["dcg@3"], per_query=True)["q1"]["dcg@3"] == pytest.approx(linear)


@pytest.mark.badinput("metrics")
def test_a_gain_that_contradicts_the_name_is_refused():
    scores, labels = _tensors()
    with pytest.raises(
        ValueError, match="compute: the metric 'ndcg@3' has gain='linear'.*'ndcg_burges@3'"
    ):
        M.compute("ndcg@3", scores, labels, gain="exp2")
    with pytest.raises(ValueError, match="compute: the metric 'ndcg_burges' has gain='exp2'"):
        M.compute("ndcg_burges", scores, labels, gain="linear")
    with pytest.raises(ValueError, match="evaluate: the metric 'ndcg@10' has gain='linear'"):
        M.evaluate(QRELS, RUN, ["map", "ndcg@10"], gain="exp2")
    with pytest.raises(ValueError, match="MetricAccumulator: the metric 'dcg@5' has gain"):
        M.MetricAccumulator(["dcg@5"], gain="exp2")
    # a gain that agrees is accepted (code written for 0.x with gain="linear" keeps working)
    torch.testing.assert_close(
        M.compute("ndcg@3", scores, labels, gain="linear"), M.compute("ndcg@3", scores, labels)
    )
    assert M.evaluate(QRELS, RUN, ["ndcg@3"], gain="linear") == M.evaluate(QRELS, RUN, ["ndcg@3"])

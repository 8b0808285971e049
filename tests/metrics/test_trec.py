"""Whole-run evaluation, TREC files, and cross-checks against pytrec_eval and ranx."""

from __future__ import annotations

import math
import random

import pytest

import rankloss.metrics as M
from rankloss.metrics.trec import CONVENTIONS

TREC_MEASURES = {
    # our name -> pytrec_eval's
    "ndcg_cut_5": "ndcg_cut_5",
    "ndcg@10": "ndcg_cut_10",
    "map": "map",
    "mrr": "recip_rank",
    "P_5": "P_5",
    "p@10": "P_10",
    "recall@10": "recall_10",
    "recall@100": "recall_100",
    "r_precision": "Rprec",
}


def random_run(seed, queries=150, tied=True, negative=False):
    """Random run and qrels with ties, ids whose string and numeric orders differ, queries
    without relevant documents, with no judgments at all, missing from the run or from qrels."""
    rng = random.Random(seed)
    run, qrels = {}, {}
    levels = [-1, 0, 0, 1, 2, 3] if negative else [0, 0, 1, 2, 3]
    for q in range(queries):
        qid = f"q{q}"
        docs = [f"d{rng.randint(0, 120)}" for _ in range(rng.randint(1, 40))]
        if tied:
            run[qid] = {d: rng.randint(0, 6) / 2 for d in docs}
        else:
            run[qid] = {d: rng.random() for d in docs}
        if q % 17 == 0:
            continue  # a run query without qrels
        judged = [f"d{rng.randint(0, 120)}" for _ in range(rng.randint(0, 40))]
        qrels[qid] = {d: rng.choice(levels) for d in judged}
        if q % 13 == 0:
            qrels[qid] = {d: 0 for d in judged}  # nothing relevant
    for q in range(4):
        qrels[f"missing{q}"] = {"d1": 1, "d2": 0}
    return run, qrels


def max_differences(run, qrels, **options):
    import pytrec_eval

    evaluator = pytrec_eval.RelevanceEvaluator(
        qrels, {"ndcg_cut.5,10", "map", "recip_rank", "P.5,10", "recall.10,100", "Rprec"}
    )
    theirs = evaluator.evaluate(run)
    ours = M.evaluate(qrels, run, list(TREC_MEASURES), per_query=True, **options)
    assert set(ours) == set(theirs)
    return {
        name: max(abs(ours[q][name] - theirs[q][trec]) for q in theirs)
        for name, trec in TREC_MEASURES.items()
    }


@pytest.mark.peers
@pytest.mark.parametrize("seed", [0, 1])
def test_agrees_with_pytrec_eval(seed):
    run, qrels = random_run(seed, negative=seed == 1)
    differences = max_differences(run, qrels)
    assert max(differences.values()) < 1e-12, differences


@pytest.mark.peers
def test_agrees_with_pytrec_eval_below_float32_resolution():
    # trec_eval keeps scores in float32: scores closer than its resolution tie.
    run, qrels = random_run(7, tied=False)
    run = {q: {d: 0.5 + 1e-10 * i for i, d in enumerate(docs)} for q, docs in run.items()}
    assert max(max_differences(run, qrels).values()) < 1e-12


@pytest.mark.peers
def test_pytrec_eval_documented_differences():
    """Each convention rankloss's own defaults change, seen against trec_eval."""
    run, qrels = random_run(2)
    # trec_eval's tie-break by descending docid is not the expected value over tied orders.
    assert max_differences(run, qrels, ties="average")["map"] > 1e-3
    # trec_eval's NDCG gain is the label (rankloss's ndcg@10); ndcg_burges@10 is 2^label - 1.
    burges = M.evaluate(qrels, run, ["ndcg@10", "ndcg_burges@10"], per_query=True)
    assert max(abs(v["ndcg@10"] - v["ndcg_burges@10"]) for v in burges.values()) > 1e-3
    # trec_eval scores a query without relevant documents 0; empty="skip" gives NaN.
    per_query = M.evaluate(qrels, run, ["map"], per_query=True, empty="skip")
    assert math.isnan(per_query["q13"]["map"])
    # convention="rankloss" takes both; the gain comes from the name in either convention.
    names = ["ndcg@10", "ndcg_burges@10"]
    ours = M.evaluate(qrels, run, names, convention="rankloss")
    again = M.evaluate(qrels, run, names, ties="average", empty="skip")
    assert ours == again


@pytest.mark.peers
def test_agrees_with_ranx():
    from ranx import Qrels, Run
    from ranx import evaluate as ranx_evaluate

    run, qrels = random_run(3, queries=60, tied=False)
    judged = {q: rels for q, rels in qrels.items() if rels}
    names = {"ndcg@10": "ndcg@10", "map": "map", "mrr": "mrr"}
    theirs = ranx_evaluate(Qrels(judged), Run(run), list(names.values()), make_comparable=True)
    # ranx scores qrels queries missing from the run as 0: trec_eval's -c, our include_missing.
    ours = M.evaluate(judged, run, list(names), include_missing=True)
    for name, theirs_name in names.items():
        assert ours[name] == pytest.approx(float(theirs[theirs_name]), abs=1e-12)
    # Without include_missing (trec_eval's default) the missing queries are not averaged.
    assert M.evaluate(judged, run, ["map"])["map"] != pytest.approx(ours["map"])
    # ranx also scores a qrels query with no judgment at all ({}) as 0; trec_eval (and
    # rankloss) have no such query: it cannot be written in a qrels file.
    with_empty = float(ranx_evaluate(Qrels(qrels), Run(run), "map", make_comparable=True))
    assert with_empty == pytest.approx(ours["map"] * len(judged) / len(qrels), abs=1e-12)

    # ranx orders tied documents by an unstable sort (neither input nor docid order), trec_eval
    # by descending docid: on tied runs they differ, and ranx lies within rankloss's
    # pessimistic and optimistic bounds.
    tied, tied_qrels = random_run(4, queries=60, tied=True)
    tied_qrels = {q: rels for q, rels in tied_qrels.items() if rels}
    qids = sorted(tied_qrels)
    per_query = ranx_evaluate(
        Qrels(tied_qrels), Run(tied), "map", make_comparable=True, return_mean=False
    )
    ranx_map = dict(zip(sorted(Qrels(tied_qrels).keys()), per_query.tolist()))
    bounds = {
        ties: M.evaluate(tied_qrels, tied, ["map"], include_missing=True, per_query=True, ties=ties)
        for ties in ["index", "pessimistic", "optimistic"]
    }
    assert any(abs(ranx_map[q] - bounds["index"][q]["map"]) > 1e-9 for q in qids)
    for q in qids:
        low, high = bounds["pessimistic"][q]["map"], bounds["optimistic"][q]["map"]
        assert low - 1e-12 <= ranx_map[q] <= high + 1e-12


def test_evaluate_shapes_and_query_handling():
    run = {"q1": {"d1": 0.9, "d2": 0.8}, "q2": {"d3": 0.5}, "q3": {"d1": 1.0}}
    qrels = {"q1": {"d2": 1}, "q2": {"d3": 2}, "q4": {"d9": 1}, "q5": {}}
    assert M.evaluate(qrels, run, ["map", "p@1"]) == {"map": 0.75, "p@1": 0.5}
    per_query = M.evaluate(qrels, run, "mrr", per_query=True)
    assert per_query == {"q1": {"mrr": 0.5}, "q2": {"mrr": 1.0}}
    with_missing = M.evaluate(qrels, run, ["mrr"], per_query=True, include_missing=True)
    assert with_missing["q4"] == {"mrr": 0.0} and "q5" not in with_missing
    # ties go to the larger docid, as in trec_eval
    assert M.evaluate({"q": {"a": 1}}, {"q": {"a": 1.0, "b": 1.0}}, ["mrr"])["mrr"] == 0.5
    with pytest.raises(ValueError, match="unknown metric"):
        M.evaluate(qrels, run, ["foo@3"])
    with pytest.raises(ValueError, match="convention"):
        M.evaluate(qrels, run, ["map"], convention="ranx")


def test_every_metric_name_evaluates():
    run, qrels = random_run(5, queries=30)
    names = [
        "ndcg",
        "dcg@5",
        "map@10",
        "mrr@10",
        "p@5",
        "recall",
        "r_precision",
        "hit_rate@10",
        "hit@5",
        "err@20",
        "ordered_pair_accuracy",
    ]
    for convention in CONVENTIONS:
        ties = "pessimistic" if convention == "rankloss" else None
        means = M.evaluate(qrels, run, names, convention=convention, ties=ties)
        assert set(means) == set(names)
        assert all(0 <= v <= 1 or name.startswith("dcg") for name, v in means.items())


def test_files_round_trip(tmp_path):
    run, qrels = random_run(6, queries=20, tied=False)
    M.write_run(run, tmp_path / "run.txt", tag="test")
    M.write_qrels(qrels, tmp_path / "qrels.txt.gz")
    assert M.read_run(tmp_path / "run.txt") == run
    assert M.read_qrels(tmp_path / "qrels.txt.gz") == {q: r for q, r in qrels.items() if r}
    first = (tmp_path / "run.txt").read_text().splitlines()[0].split()
    assert first[1] == "Q0" and first[3] == "1" and first[5] == "test"
    (tmp_path / "bad.txt").write_text("q1 0 d1\n")
    with pytest.raises(ValueError, match="bad.txt:1"):
        M.read_qrels(tmp_path / "bad.txt")
    with pytest.raises(ValueError, match="6 columns"):
        M.read_run(tmp_path / "bad.txt")


@pytest.mark.badinput("metrics")
def test_evaluate_ndcg_is_finite_for_large_grades():
    # exp2 gains of grade 2000 overflow float64; the per-query scale keeps NDCG exact.
    run = {"q": {"a": 0.9, "b": 0.8, "c": 0.7}}
    names = ["ndcg_burges", "ndcg_burges@1"]
    big = M.evaluate({"q": {"a": 1999, "b": 2000, "c": 0}}, run, names)
    small = M.evaluate({"q": {"a": 9, "b": 10, "c": 0}}, run, names)
    for name in names:
        assert math.isfinite(big[name]) and 0.0 <= big[name] <= 1.0
        assert big[name] == pytest.approx(small[name], rel=1e-3)

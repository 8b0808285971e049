"""Embedding retrieval metrics and per-class reports."""

from __future__ import annotations

import math

import pytest
import torch

import rankloss.metrics as M
from rankloss._core.similarity import SIMILARITIES
from tests.metrics import reference as ref


def clustered(seed, n=60, d=8, classes=5):
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, classes, (n,), generator=g)
    centers = torch.randn(classes, d, generator=g)
    x = centers[labels] + 0.9 * torch.randn(n, d, generator=g)
    return x.double(), labels


def reference_means(x, y, rx, ry, ks, similarity, exclude_self):
    rows = ref.retrieval(
        x.tolist(), y.tolist(), rx.tolist(), ry.tolist(), ks, similarity, exclude_self
    )
    rows = [r for r in rows if r is not None]
    return {name: sum(r[name] for r in rows) / len(rows) for name in rows[0]}


@pytest.mark.parametrize("similarity", SIMILARITIES)
@pytest.mark.parametrize("chunk_size", [7, 1000])
def test_self_retrieval_matches_reference(similarity, chunk_size):
    x, y = clustered(0)
    y[0] = 99  # a singleton class: no relevant reference, skipped
    ours = M.embedding_retrieval_metrics(
        x, y, ks=(1, 5, 10), similarity=similarity, chunk_size=chunk_size
    )
    wanted = reference_means(x, y, x, y, (1, 5, 10), similarity, True)
    assert set(ours) == {
        "precision@1",
        "hit@1",
        "hit@5",
        "hit@10",
        "r_precision",
        "map@r",
        "ndcg@1",
        "ndcg@5",
        "ndcg@10",
    }
    for name, value in wanted.items():
        assert ours[name] == pytest.approx(value, abs=1e-12), name
    assert ours["precision@1"] == ours["hit@1"]


def test_similarities_are_the_core_list_and_distances_rank_alike():
    assert M.retrieval.SIMILARITIES is SIMILARITIES
    x, y = clustered(8)
    root = M.embedding_retrieval_metrics(x, y, ks=(1, 5), similarity="neg_euclidean")
    squared = M.embedding_retrieval_metrics(x, y, ks=(1, 5), similarity="neg_sq_euclidean")
    assert root == pytest.approx(squared, abs=1e-12)
    # cosine ranks like dot products of unit vectors
    unit = torch.nn.functional.normalize(x, dim=1)
    dot = M.embedding_retrieval_metrics(unit, y, ks=(1, 5), similarity="dot")
    assert M.embedding_retrieval_metrics(x, y, ks=(1, 5)) == pytest.approx(dot, abs=1e-12)


def test_hit_at_k_is_not_recall_at_k():
    """hit@k (any relevant in the top k) and recall@k (the fraction found) differ as soon as a
    query has several relevant references; hit@k equals rankloss.metrics.hit_rate."""
    # query 0 has three relevant references (1, 2, 3); only reference 1 is among its 2 nearest
    x = torch.tensor(
        [[1.0, 0.0], [0.99, 0.14], [0.0, 1.0], [-0.2, 0.98], [0.95, -0.31], [0.9, 0.44]],
        dtype=torch.float64,
    )
    x = torch.nn.functional.normalize(x, dim=1)  # cosine = dot
    y = torch.tensor([0, 0, 0, 0, 1, 1])
    per_query = M.retrieval_per_query(x, y, ks=(2,))
    assert per_query["hit@2"][0].item() == 1.0
    assert "recall@2" not in per_query
    scores = x @ x.T
    labels = (y[:, None] == y[None, :]).double()
    mask = ~torch.eye(6, dtype=torch.bool)
    recall = M.recall(scores, labels, mask, k=2)
    assert recall[0].item() == pytest.approx(1 / 3)
    hit = M.hit_rate(scores, labels, mask, k=2)
    torch.testing.assert_close(hit, per_query["hit@2"])
    assert not torch.allclose(hit, recall)
    assert M.compute("hit@2", scores, labels, mask)[0].item() == 1.0
    assert M.compute("recall@2", scores, labels, mask)[0].item() == pytest.approx(1 / 3)


def test_reference_set_and_exclude_self():
    x, y = clustered(1, n=40)
    rx, ry = clustered(2, n=70)
    ours = M.embedding_retrieval_metrics(x, y, rx, ry, ks=(3,))
    wanted = reference_means(x, y, rx, ry, (3,), "cosine", False)
    for name, value in wanted.items():
        assert ours[name] == pytest.approx(value, abs=1e-12), name
    both = torch.cat([x, rx]), torch.cat([y, ry])
    stacked = M.embedding_retrieval_metrics(x, y, *both, exclude_self=True, chunk_size=9)
    wanted = reference_means(x, y, *both, (1, 10), "cosine", True)
    for name, value in wanted.items():
        assert stacked[name] == pytest.approx(value, abs=1e-12), name
    perfect = M.embedding_retrieval_metrics(
        torch.eye(4).repeat(3, 1), torch.arange(4).repeat(3), ks=(2,)
    )
    assert all(v == pytest.approx(1.0) for v in perfect.values())


def test_retrieval_errors_and_float32():
    x, y = clustered(3)
    with pytest.raises(ValueError, match="both"):
        M.embedding_retrieval_metrics(x, y, x)
    with pytest.raises(ValueError, match="dimension"):
        M.embedding_retrieval_metrics(x, y, x[:, :3], y)
    with pytest.raises(ValueError, match="similarity must be one of .*renamed 'neg_euclidean'"):
        M.embedding_retrieval_metrics(x, y, similarity="euclidean")
    with pytest.raises(ValueError, match="embedding_retrieval_metrics: similarity must be one of"):
        M.embedding_retrieval_metrics(x, y, similarity="manhattan")
    with pytest.raises(ValueError, match="embedding_retrieval_metrics: ks must be a positive"):
        M.embedding_retrieval_metrics(x, y, ks=(0, 5))
    with pytest.raises(TypeError, match="embedding_retrieval_metrics: ks must be an int"):
        M.embedding_retrieval_metrics(x, y, ks=(1.5,))
    with pytest.raises(ValueError, match="retrieval_per_query: chunk_size must be a positive"):
        M.retrieval_per_query(x, y, chunk_size=0)
    with pytest.raises(TypeError, match="exclude_self must be a bool"):
        M.retrieval_per_query(x, y, exclude_self=1)
    with pytest.raises(ValueError, match="retrieval_per_class_report: k must be a positive"):
        M.retrieval_per_class_report(x, y, k=0)
    with pytest.raises(ValueError, match="query_labels must have shape \\[60\\], got \\[59\\]"):
        M.embedding_retrieval_metrics(x, y[:59])
    single = M.embedding_retrieval_metrics(x.float(), y, chunk_size=16)
    double = M.embedding_retrieval_metrics(x, y)
    for name in double:
        assert single[name] == pytest.approx(double[name], abs=1e-5)


@pytest.mark.peers
def test_agrees_with_pytorch_metric_learning():
    from pytorch_metric_learning.distances import CosineSimilarity
    from pytorch_metric_learning.utils.accuracy_calculator import AccuracyCalculator
    from pytorch_metric_learning.utils.inference import CustomKNN

    x, y = clustered(4, n=80)
    calculator = AccuracyCalculator(
        include=("precision_at_1", "r_precision", "mean_average_precision_at_r"),
        knn_func=CustomKNN(CosineSimilarity()),
    )
    theirs = calculator.get_accuracy(x.float(), y, x.float(), y, True)
    ours = M.embedding_retrieval_metrics(x, y)
    assert ours["precision@1"] == pytest.approx(theirs["precision_at_1"], abs=1e-6)
    assert ours["r_precision"] == pytest.approx(theirs["r_precision"], abs=1e-6)
    assert ours["map@r"] == pytest.approx(theirs["mean_average_precision_at_r"], abs=1e-6)


def loop_report(pred, target, num_classes):
    out = {"precision": [], "recall": [], "f1": []}
    for c in range(num_classes):
        tp = sum(1 for p, t in zip(pred, target) if p == c and t == c)
        npred = sum(1 for p in pred if p == c)
        nsup = sum(1 for t in target if t == c)
        p = tp / npred if npred else 0.0
        r = tp / nsup if nsup else 0.0
        out["precision"].append(p)
        out["recall"].append(r)
        out["f1"].append(2 * p * r / (p + r) if p + r else 0.0)
    return out


def test_per_class_report_matches_loops():
    g = torch.Generator().manual_seed(5)
    target = torch.randint(0, 5, (200,), generator=g)
    pred = torch.where(
        torch.rand(200, generator=g) < 0.6, target, torch.randint(0, 6, (200,), generator=g)
    )
    report = M.per_class_report(pred, target, num_classes=7)
    wanted = loop_report(pred.tolist(), target.tolist(), 7)
    for name in ["precision", "recall", "f1"]:
        torch.testing.assert_close(report[name], torch.tensor(wanted[name], dtype=torch.float64))
    present = [c for c in range(7) if c in pred.tolist() or c in target.tolist()]
    assert report["macro_f1"] == pytest.approx(sum(wanted["f1"][c] for c in present) / 6)
    accuracy = (pred == target).double().mean().item()
    assert report["micro_f1"] == pytest.approx(accuracy) == report["accuracy"]
    assert report["support"].tolist() == torch.bincount(target, minlength=7).tolist()
    scores = torch.nn.functional.one_hot(pred, 7).float()
    assert M.per_class_report(scores, target)["macro_f1"] == pytest.approx(report["macro_f1"])
    with pytest.raises(ValueError, match="0..2"):
        M.per_class_report(torch.tensor([0, 3]), torch.tensor([0, 1]), num_classes=3)


def test_per_class_report_agrees_with_sklearn():
    metrics = pytest.importorskip("sklearn.metrics")
    g = torch.Generator().manual_seed(6)
    target = torch.randint(0, 4, (300,), generator=g)
    pred = torch.where(
        torch.rand(300, generator=g) < 0.5, target, torch.randint(0, 5, (300,), generator=g)
    )
    report = M.per_class_report(pred, target)
    for average in ["macro", "micro"]:
        p, r, f, _ = metrics.precision_recall_fscore_support(
            target.numpy(), pred.numpy(), average=average, zero_division=0
        )
        assert report[f"{average}_precision"] == pytest.approx(p)
        assert report[f"{average}_recall"] == pytest.approx(r)
        assert report[f"{average}_f1"] == pytest.approx(f)


def test_retrieval_per_class_report():
    x, y = clustered(7, n=90)
    y = y * 10  # arbitrary label values
    report = M.retrieval_per_class_report(x, y, k=3)
    assert report["classes"].tolist() == sorted(set(y.tolist()))
    per_query = M.retrieval_per_query(x, y)
    index = torch.searchsorted(report["classes"], y)
    for c in range(len(report["classes"])):
        values = per_query["map@r"][index == c]
        values = values[~torch.isnan(values)]
        if values.numel():
            assert report["map@r"][c].item() == pytest.approx(values.mean().item())
        else:
            assert math.isnan(report["map@r"][c].item())
    nearest = M.retrieval_per_class_report(x, y, k=1)
    assert nearest["accuracy"] == pytest.approx(M.embedding_retrieval_metrics(x, y)["precision@1"])


def _knn_vote(neighbor_labels: list[int]) -> int:
    """The majority class of the neighbours (nearest first); on a tie, the tied class whose
    nearest neighbour comes first: a plain loop reference."""
    counts: dict[int, int] = {}
    for label in neighbor_labels:
        counts[label] = counts.get(label, 0) + 1
    best = max(counts.values())
    return next(label for label in neighbor_labels if counts[label] == best)


@pytest.mark.parametrize("k", [2, 4, 6, 64])
def test_per_class_report_vote_breaks_ties_by_the_nearer_neighbour(k):
    # one query, the references at decreasing similarity, labels in a tied pattern
    query = torch.tensor([[1.0]], dtype=torch.float64)
    pattern = [1, 0, 0, 1] if k == 4 else [1, 0] * (k // 2)
    refs = torch.arange(k, 0, -1, dtype=torch.float64)[:, None]
    report = M.retrieval_per_class_report(
        query, torch.tensor([1]), refs, torch.tensor(pattern), k=k, similarity="dot"
    )
    assert report["recall"].tolist() == [0.0, 1.0]  # class 1: the nearest neighbour's
    # random queries against the loop reference
    x, y = clustered(3, n=80, classes=4)
    for k_used in (2, 4, 6):
        report = M.retrieval_per_class_report(x, y, k=k_used, similarity="dot")
        sim = x @ x.T
        sim.fill_diagonal_(-math.inf)
        order = sim.argsort(dim=1, descending=True, stable=True)[:, :k_used]
        predicted = torch.tensor([_knn_vote(y[row].tolist()) for row in order])
        expected = M.per_class_report(predicted, y, len(report["classes"]))
        assert report["accuracy"] == pytest.approx(expected["accuracy"])

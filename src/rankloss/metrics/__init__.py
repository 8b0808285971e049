"""Ranking metrics on padded batches, whole-run evaluation, embedding retrieval metrics.

* Batched functions on ``[..., n]`` lists, one value per list: :func:`dcg`, :func:`ndcg`,
  :func:`average_precision`, :func:`reciprocal_rank`, :func:`err`, :func:`precision`,
  :func:`recall`, :func:`r_precision`, :func:`hit_rate`, :func:`ordered_pair_accuracy`;
  by name with :func:`compute` (``"ndcg@10"``, ``"map"``, ``"mrr"``, ``"hit@10"``, ...).
  ``recall@k`` is always the fraction of the relevant items found in the top ``k``; ``hit@k``
  is 1 when any is (the "Recall@K" of metric-learning papers).
* Streaming: :class:`MetricAccumulator`.
* Runs and qrels (trec_eval-compatible): :func:`evaluate`, :func:`read_run`, :func:`read_qrels`,
  :func:`write_run`, :func:`write_qrels`.
* Embeddings: :func:`embedding_retrieval_metrics`, :func:`retrieval_per_class_report`.
* Classification: :func:`per_class_report`.

Every convention (gain, ties, empty lists, relevance threshold) is an option; see
``docs/metrics.md``.
"""

from rankloss.metrics.accumulate import MetricAccumulator
from rankloss.metrics.classification import per_class_report
from rankloss.metrics.names import METRIC_FUNCTIONS, MetricSpec, compute, nanmean, parse_metric
from rankloss.metrics.ranking import (
    EMPTY,
    TIES,
    average_precision,
    dcg,
    err,
    hit_rate,
    ndcg,
    ordered_pair_accuracy,
    precision,
    r_precision,
    recall,
    reciprocal_rank,
)
from rankloss.metrics.retrieval import (
    embedding_retrieval_metrics,
    retrieval_per_class_report,
    retrieval_per_query,
)
from rankloss.metrics.trec import evaluate, read_qrels, read_run, write_qrels, write_run

__all__ = [
    "dcg",
    "ndcg",
    "average_precision",
    "reciprocal_rank",
    "err",
    "precision",
    "recall",
    "r_precision",
    "hit_rate",
    "ordered_pair_accuracy",
    "TIES",
    "EMPTY",
    "compute",
    "parse_metric",
    "MetricSpec",
    "METRIC_FUNCTIONS",
    "nanmean",
    "MetricAccumulator",
    "evaluate",
    "read_qrels",
    "read_run",
    "write_qrels",
    "write_run",
    "embedding_retrieval_metrics",
    "retrieval_per_query",
    "retrieval_per_class_report",
    "per_class_report",
]

"""Whole runs: TREC qrels and run files, and :func:`evaluate` (trec_eval-compatible by default).

A run is ``{qid: {docid: score}}`` and qrels are ``{qid: {docid: relevance}}``, the shapes of
pytrec_eval and ranx. ``evaluate(qrels, run, metrics)`` takes them in the order of ranx
(``evaluate(qrels, run)``), pytrec_eval (``RelevanceEvaluator(qrels).evaluate(run)``) and
ir-measures, turns them into padded batches once and computes every metric with the batched
kernels of :mod:`rankloss.metrics.ranking`.

With ``convention="trec_eval"`` (the default) the numbers equal trec_eval's (and
pytrec_eval's):

* documents are ranked by descending score rounded to float32 (trec_eval keeps scores in
  single precision), ties broken by descending document id (compared as strings); the rank
  column of a run file is ignored;
* ``ndcg@k`` uses the relevance itself as gain (linear gain, as everywhere in rankloss;
  ``ndcg_burges@k`` is the exp2 gain), a negative relevance has gain 0, and the ideal DCG comes
  from all judged documents of the query, retrieved or not;
* recall, MAP and R-precision divide by the number of relevant judged documents (relevance
  ``>= relevance_threshold``, default 1), retrieved or not;
* a relevance is an integer, as trec_eval reads it: a fractional one is truncated toward zero
  (``0.5`` -> 0, ``1.5`` -> 1), with a warning (``convention="rankloss"`` keeps it);
* a query whose qrels hold no relevant document scores 0;
* only queries present in both the run and the qrels (with at least one judgment) are
  evaluated; ``include_missing=True``
  also scores qrels queries absent from the run, as empty rankings (trec_eval ``-c``).

``convention="rankloss"`` keeps the ranking of ids and the denominators from the qrels but
takes the defaults of the batched functions: ``ties="average"`` and ``empty="skip"``. Each of
``ties``, ``empty`` and ``relevance_threshold`` can be set explicitly in either convention. The
gain of NDCG and DCG is never a convention: the name fixes it (``ndcg``, ``dcg``: linear;
``ndcg_burges``, ``dcg_burges``: exp2).
"""

from __future__ import annotations

import dataclasses
import gzip
import io
import math
import os
import re
import warnings
import zlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import IO, Any, Literal

import numpy as np
import torch
from torch import Tensor

import rankloss.metrics.ranking as ranking
from rankloss._core import params
from rankloss._core.ranking import GAINS, gain_shift, ideal_dcg
from rankloss._core.ranking import gain as gain_values
from rankloss._core.validation import check_choice
from rankloss.metrics.names import MetricSpec, parse_metric

__all__ = [
    "read_qrels",
    "read_run",
    "write_qrels",
    "write_run",
    "evaluate",
    "evaluate_batches",
    "CONVENTIONS",
]

CONVENTIONS = ("trec_eval", "rankloss")

Run = Mapping[str, Mapping[str, float]]
Qrels = Mapping[str, Mapping[str, float]]


# --------------------------------------------------------------------------------------------
# Files
# --------------------------------------------------------------------------------------------

# A byte that is not UTF-8, as ``errors="surrogateescape"`` decodes it.
_BAD_BYTE = re.compile("[\udc80-\udcff]")


def _open(path: str | os.PathLike[str], mode: Literal["r", "w"]) -> IO[str]:
    path = os.fspath(path)
    if not path.endswith(".gz"):
        return open(path, mode, encoding="utf-8")
    if mode == "r":
        return gzip.open(path, "rt", encoding="utf-8")
    return gzip.open(path, "wt", encoding="utf-8")


def _lines(path: str | os.PathLike[str]) -> Iterator[tuple[int, list[str]]]:
    """The fields of every non-blank line of ``path`` (``.gz`` allowed), with 1-based numbers.

    Bytes that are not UTF-8 and a truncated or corrupt ``.gz`` raise a ``ValueError`` that
    names the file and the line.
    """
    name = os.fspath(path)
    number = 0
    try:
        with _open(name, "r") as handle:
            for number, line in enumerate(handle, 1):
                parts = line.split()
                if parts:
                    yield number, parts
    except UnicodeDecodeError:
        raise _not_utf8(name) from None
    except (EOFError, zlib.error, gzip.BadGzipFile) as error:
        raise ValueError(
            f"{name}:{number + 1}: the gzip file is truncated or corrupt ({error})"
        ) from None


def _not_utf8(name: str) -> ValueError:
    """The error for a file that is not UTF-8, naming the first line with a bad byte.

    The file is read again (only on this path) with the bad bytes kept as surrogates, split
    into lines as the text reader splits them.
    """
    binary = gzip.open(name, "rb") if name.endswith(".gz") else open(name, "rb")
    with io.TextIOWrapper(binary, encoding="utf-8", errors="surrogateescape") as handle:
        for number, line in enumerate(handle, 1):
            bad = _BAD_BYTE.search(line)
            if bad:
                column = len(line[: bad.start()].encode("utf-8", "surrogateescape")) + 1
                byte = ord(bad.group()) - 0xDC00
                return ValueError(
                    f"{name}:{number}: invalid UTF-8 byte {byte:#04x} at byte {column} of the line"
                )
    return ValueError(f"{name}: invalid UTF-8")  # pragma: no cover - the decoder found one


def _field(path: str, number: int, name: str, text: str, integer: bool = False) -> float | int:
    """``text`` as a finite number (an ``int`` when ``integer`` and written as one).

    Python's ``float`` also reads ``1_000`` and non-ASCII digits, which C's ``atof`` (used
    by trec_eval) does not: those are refused, and so are NaN and infinities.
    """
    try:
        value = int(text) if integer else float(text)
    except ValueError:
        value = None
        if integer:
            try:
                value = float(text)
            except ValueError:
                pass
    if value is None or "_" in text or not text.isascii():
        raise ValueError(f"{path}:{number}: {name} must be a number, got {text!r}")
    if not math.isfinite(value):
        raise ValueError(f"{path}:{number}: {name} must be a finite number, got {text!r}")
    return value


def _duplicate(path: str, number: int, qid: str, docid: str, what: str, columns: int) -> ValueError:
    """The error for a second line of ``(qid, docid)``, naming the line of the first one."""
    earlier = next(
        n
        for n, parts in _lines(path)
        if len(parts) == columns and parts[0] == qid and parts[2] == docid
    )
    return ValueError(
        f"{path}:{number}: duplicate {what}: query {qid!r}, document {docid!r} is already at "
        f"line {earlier} (trec_eval refuses duplicates too)"
    )


def read_qrels(path: str | os.PathLike[str]) -> dict[str, dict[str, int | float]]:
    """Read a TREC qrels file: ``qid iteration docid relevance`` per line (``.gz`` allowed).

    Every line is checked before anything is evaluated; a ``ValueError`` names the file and
    the line of the first problem: a line without 4 columns, a relevance that is not a finite
    number, a second judgment of the same document for the same query (trec_eval refuses
    those too; the message names the earlier line), bytes that are not UTF-8, a truncated
    ``.gz``.

    Returns:
        ``{qid: {docid: relevance}}``; relevance is an ``int`` when it is written as one.
    """
    name = os.fspath(path)
    qrels: dict[str, dict[str, int | float]] = {}
    for number, parts in _lines(name):
        if len(parts) != 4:
            raise ValueError(
                f"{name}:{number}: a qrels line has 4 columns "
                f"(qid iteration docid relevance), got {len(parts)}: {' '.join(parts)!r}"
            )
        qid, _, docid, rel = parts
        judged = qrels.setdefault(qid, {})
        if docid in judged:
            raise _duplicate(name, number, qid, docid, "judgment", 4)
        judged[docid] = _field(name, number, "relevance (column 4)", rel, integer=True)
    return qrels


def read_run(path: str | os.PathLike[str]) -> dict[str, dict[str, float]]:
    """Read a TREC run file: ``qid Q0 docid rank score tag`` per line (``.gz`` allowed).

    The rank column is ignored (as trec_eval does): the score orders the documents. Every line
    is checked before anything is evaluated; a ``ValueError`` names the file and the line of
    the first problem: a line without 6 columns, a score that is not a finite number (NaN and
    infinities are refused), a document listed twice for one query (trec_eval refuses those
    too; the message names the earlier line), bytes that are not UTF-8, a truncated ``.gz``.

    Returns:
        ``{qid: {docid: score}}``.
    """
    name = os.fspath(path)
    run: dict[str, dict[str, float]] = {}
    for number, parts in _lines(name):
        if len(parts) != 6:
            raise ValueError(
                f"{name}:{number}: a run line has 6 columns "
                f"(qid Q0 docid rank score tag), got {len(parts)}: {' '.join(parts)!r}"
            )
        qid, _, docid, _, score, _ = parts
        docs = run.setdefault(qid, {})
        if docid in docs:
            raise _duplicate(name, number, qid, docid, "document", 6)
        docs[docid] = float(_field(name, number, "score (column 5)", score))
    return run


def write_qrels(qrels: Qrels, path: str | os.PathLike[str]) -> None:
    """Write ``{qid: {docid: relevance}}`` as a TREC qrels file (iteration column 0)."""
    with _open(path, "w") as handle:
        for qid in sorted(qrels):
            for docid, rel in qrels[qid].items():
                handle.write(f"{qid} 0 {docid} {rel}\n")


def write_run(run: Run, path: str | os.PathLike[str], *, tag: str = "rankloss") -> None:
    """Write ``{qid: {docid: score}}`` as a TREC run file.

    Documents are written in trec_eval's order (descending score, ties by descending docid)
    with ranks from 1; scores are written with full precision (``repr``) so that reading the
    file back gives the same floats.
    """
    with _open(path, "w") as handle:
        for qid in sorted(run):
            docs = sorted(run[qid].items(), key=lambda item: item[0], reverse=True)
            docs.sort(key=lambda item: item[1], reverse=True)
            for rank, (docid, score) in enumerate(docs, 1):
                handle.write(f"{qid} Q0 {docid} {rank} {float(score)!r} {tag}\n")


# --------------------------------------------------------------------------------------------
# Evaluation
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunBatch:
    """A run and its qrels as padded float64 batches, one row per query.

    ``scores``/``labels``/``mask`` hold the retrieved documents (ordered by descending docid,
    so that a stable sort breaks ties as trec_eval does); ``pool_labels``/``pool_mask`` hold
    every judged document of the query.
    """

    qids: list[str]
    scores: Tensor
    labels: Tensor
    mask: Tensor
    pool_labels: Tensor
    pool_mask: Tensor


def _pad(values: list[float], lengths: list[int]) -> tuple[Tensor, Tensor]:
    lens = np.asarray(lengths, dtype=np.int64)
    width = max(int(lens.max()) if lens.size else 0, 1)
    mask = np.arange(width)[None, :] < lens[:, None]
    padded = np.zeros(mask.shape, dtype=np.float64)
    padded[mask] = np.asarray(values, dtype=np.float64)
    return torch.from_numpy(padded), torch.from_numpy(mask)


def to_batches(qrels: Qrels, run: Run, qids: Sequence[str]) -> RunBatch:
    """Turn ``qrels`` and ``run`` into a :class:`RunBatch` for ``qids`` (in that order)."""
    scores: list[float] = []
    labels: list[float] = []
    lengths: list[int] = []
    pool: list[float] = []
    pool_lengths: list[int] = []
    empty: dict[str, float] = {}
    for qid in qids:
        docs = run.get(qid) or empty
        rels = qrels.get(qid) or empty
        ids = sorted(docs, reverse=True)
        scores.extend([docs[d] for d in ids])
        labels.extend([rels.get(d, 0) for d in ids])
        lengths.append(len(ids))
        pool.extend(rels.values())
        pool_lengths.append(len(rels))
    s, m = _pad(scores, lengths)
    y, _ = _pad(labels, lengths)
    p, pm = _pad(pool, pool_lengths)
    return RunBatch(list(qids), s, y, m, p, pm)


def _integer_relevance(batch: RunBatch) -> RunBatch:
    """trec_eval reads a relevance as an integer (C's ``atol``: ``0.5`` is 0, ``1.5`` is 1,
    ``-0.5`` is 0): fractional relevance truncated toward zero, with a warning that says
    how to keep it (``convention="rankloss"``)."""
    fractional = torch.cat([batch.labels[batch.mask], batch.pool_labels[batch.pool_mask]])
    if bool((fractional != fractional.trunc()).any()):
        warnings.warn(
            "evaluate: fractional relevance is truncated toward zero, as trec_eval reads it "
            "(0.5 -> 0, 1.5 -> 1); pass convention='rankloss' (rankloss eval --convention "
            "rankloss) to keep it",
            UserWarning,
            stacklevel=3,
        )
        batch = dataclasses.replace(
            batch, labels=batch.labels.trunc(), pool_labels=batch.pool_labels.trunc()
        )
    return batch


def _options(
    convention: str,
    gain: str | None,
    ties: str | None,
    empty: str | None,
    relevance_threshold: float | None,
) -> dict[str, Any]:
    where = "evaluate"
    check_choice("convention", convention, CONVENTIONS, where)
    trec = convention == "trec_eval"
    options = {
        # None: each NDCG/DCG name brings its own gain (ndcg: linear, ndcg_burges: exp2)
        "gain": gain,
        "ties": ties if ties is not None else ("index" if trec else "average"),
        "empty": empty if empty is not None else ("zero" if trec else "skip"),
        "threshold": 1.0
        if relevance_threshold is None
        else params.number(where, "relevance_threshold", relevance_threshold),
        "clamp_gain": trec,
        "float32_scores": trec,
    }
    if gain is not None:
        check_choice("gain", gain, GAINS, where)
    check_choice("ties", options["ties"], ranking.TIES, where)
    check_choice("empty", options["empty"], ranking.EMPTY, where)
    return options


def evaluate_batches(
    batch: RunBatch, specs: Sequence[MetricSpec], options: Mapping[str, Any]
) -> dict[str, Tensor]:
    """Per-query values ``{name: [Q]}`` of each metric on a :class:`RunBatch`."""
    ties, empty, threshold = options["ties"], options["empty"], options["threshold"]
    check_choice("empty", empty, ranking.EMPTY)
    scores = batch.scores
    if options.get("float32_scores"):
        # trec_eval keeps scores in single precision: scores that differ only beyond float32
        # resolution tie, and the tie goes to the larger docid.
        scores = scores.float().double()
    ranked = ranking.rank_lists(scores, batch.labels, batch.mask, ties)
    rel = (ranked.mask & (ranked.labels >= threshold)).to(torch.float64)
    pool_rel = (batch.pool_mask & (batch.pool_labels >= threshold)).to(torch.float64)
    num_rel = pool_rel.sum(-1)
    gain_ranked, pool_labels = ranked, batch.pool_labels
    if options.get("clamp_gain"):
        # trec_eval gives a negative relevance the gain 0, in the run and in the ideal order.
        gain_ranked = dataclasses.replace(ranked, labels=ranked.labels.clamp(min=0))
        pool_labels = pool_labels.clamp(min=0)
    has_rel = num_rel > 0
    fill = {"skip": math.nan, "zero": 0.0, "one": 1.0}[empty]
    out: dict[str, Tensor] = {}
    given = {} if options.get("gain") is None else {"gain": options["gain"]}
    for spec in specs:
        metric, k = spec.metric, spec.k
        valid = has_rel
        # the name fixes the gain (ndcg, dcg: linear; ndcg_burges, dcg_burges: exp2)
        gain_kind = str(spec.options(given, "evaluate").get("gain", "linear"))
        if metric in ("dcg", "dcg_burges"):
            values = ranking.dcg_ranked(gain_ranked, k, gain_kind)
        elif metric in ("ndcg", "ndcg_burges"):
            # One per-query scale 2^-max(judged label) for DCG and ideal DCG: it cancels in the
            # ratio and keeps exp2 gains finite for any finite label.
            shift = gain_shift(pool_labels, batch.pool_mask, gain_kind)
            values = ranking.dcg_ranked(gain_ranked, k, gain_kind, shift)
            pool_gain = gain_values(pool_labels, gain_kind, shift)
            pool_gain = torch.where(batch.pool_mask, pool_gain, 0.0)
            ideal = ideal_dcg(pool_gain, batch.pool_mask, k)
            values, valid = ranking._safe_div(values, ideal), ideal > 0
        elif metric == "map":
            values = ranking.ap_ranked(ranked, rel, k, num_rel)
        elif metric == "mrr":
            values = ranking.rr_ranked(ranked, rel, k)
        elif metric == "precision":
            retrieved = ranked.mask.sum(-1).to(torch.float64)
            den = retrieved if k is None else torch.full_like(num_rel, float(k))
            values = ranking._safe_div(ranking.hits_ranked(ranked, rel, k), den)
        elif metric == "recall":
            values = ranking._safe_div(ranking.hits_ranked(ranked, rel, k), num_rel)
        elif metric == "r_precision":
            cut = num_rel if k is None else num_rel.clamp(max=k)
            values = ranking._safe_div(ranking.hits_ranked(ranked, rel, cut), cut)
        elif metric == "hit":
            values = ranking.hit_ranked(ranked, rel, k)
        elif metric == "err":
            if ties == "average":
                raise ValueError("err: ties='average' is not supported")
            top = torch.where(batch.pool_mask, batch.pool_labels, -math.inf).amax(-1)
            values = ranking.err_ranked(ranked, k, top.clamp(min=0))
            valid = (batch.pool_mask & (batch.pool_labels > 0)).any(-1)
        elif metric == "ordered_pair_accuracy":
            values = ranking.ordered_pair_accuracy(
                scores, batch.labels, batch.mask, k=k, ties=ties, empty=empty
            )
            out[spec.name] = values
            continue
        else:  # pragma: no cover - parse_metric only yields the names above
            raise ValueError(f"unknown metric {spec.name!r}")
        out[spec.name] = torch.where(valid, values, torch.full_like(values, fill))
    return out


def _check_finite(batch: RunBatch, qrels: Qrels, run: Run) -> None:
    """Refuse a NaN or infinite score or relevance, naming its query and document."""
    for what, values, mask in (
        ("score", batch.scores, batch.mask),
        ("relevance", batch.pool_labels, batch.pool_mask),
    ):
        bad = (mask & ~torch.isfinite(values)).nonzero()
        if len(bad):
            row, column = (int(i) for i in bad[0])
            qid = batch.qids[row]
            docs = sorted(run[qid], reverse=True) if what == "score" else list(qrels[qid])
            docid = docs[column]
            raise ValueError(
                f"evaluate: every {what} must be finite, got {float(values[row, column])!r} "
                f"for query {qid!r}, document {docid!r}"
            )


def _query_ids(qrels: Qrels, run: Run, include_missing: bool) -> list[str]:
    judged = {q for q, rels in qrels.items() if rels}
    if include_missing:
        return sorted(judged)
    return sorted(q for q in run if q in judged)


_SWAPPED = (
    "evaluate: the first argument looks like a run (float scores) and the second like qrels "
    "(integer grades); the order is evaluate(qrels, run), as in ranx and pytrec_eval"
)


def _integral(values: Tensor, mask: Tensor) -> bool:
    """Whether every real value is a whole number (``3``, ``3.0``, ``-1``)."""
    return not bool((mask & (values != values.round())).any())


def _check_order(batch: RunBatch) -> None:
    """Refuse ``evaluate(run, qrels)``: a run holds float scores, qrels integer grades.

    The arguments look swapped when the first (qrels) holds a relevance that is not a whole
    number while every score of the second (run) is one. Only the evaluated queries are looked
    at, in one vectorised pass.
    """
    scores_integral = bool(batch.mask.any()) and _integral(batch.scores, batch.mask)
    if scores_integral and not _integral(batch.pool_labels, batch.pool_mask):
        raise ValueError(_SWAPPED)


def evaluate(
    qrels: Qrels,
    run: Run,
    metrics: Iterable[str] | str = ("ndcg@10", "map", "mrr"),
    *,
    convention: str = "trec_eval",
    per_query: bool = False,
    include_missing: bool = False,
    gain: str | None = None,
    ties: str | None = None,
    empty: str | None = None,
    relevance_threshold: float | None = None,
    check_order: bool = True,
) -> dict[str, Any]:
    """Evaluate a run against qrels, per query and on average.

    The arguments come in the order of ranx (``evaluate(qrels, run)``), pytrec_eval
    (``RelevanceEvaluator(qrels).evaluate(run)``) and ir-measures: the judgments first.

    Args:
        qrels: ``{qid: {docid: relevance}}`` (or :func:`read_qrels`); judged documents absent
            from the run still count in the denominators (recall, MAP, R-precision, IDCG);
            documents of the run absent from the qrels are not relevant.
        run: ``{qid: {docid: score}}`` (or :func:`read_run`).
        metrics: names such as ``"ndcg@10"`` (linear gain), ``"ndcg_burges@10"`` (exp2 gain),
            ``"map"``, ``"mrr"``, ``"p@5"``, ``"recall@100"``, ``"hit@10"``, or trec_eval's
            ``"ndcg_cut_10"``, ``"P_5"``, ``"recip_rank"``.
        convention: ``"trec_eval"`` (default) or ``"rankloss"``; see the module docstring.
        per_query: return ``{qid: {metric: value}}`` (pytrec_eval's shape) instead of the
            means ``{metric: value}`` (ranx's shape).
        include_missing: also evaluate qrels queries missing from the run, as empty rankings
            (trec_eval ``-c``). Queries of the run without qrels are never evaluated.
        gain: optional; the gain of NDCG and DCG comes from the metric name, and a ``gain``
            that contradicts a name (``"exp2"`` with ``"ndcg@10"``) is a ``ValueError``.
        ties, empty, relevance_threshold: override the convention's choice.
        check_order: refuse arguments that look swapped (below); ``False`` turns the check
            off for the one correct input it refuses.

    Swapped arguments are detected from the values: a run holds float scores, qrels integer
    grades. When a relevance of the first argument is not a whole number while every score of
    the second is one, ``evaluate`` raises a ``ValueError`` that gives the order. The check
    cannot tell the two apart when both hold whole numbers only (a run whose scores are
    integral, such as counts or negated ranks, passed second or first: no error, so swapped
    integral inputs still give wrong numbers), nor when both hold fractions (qrels with
    fractional relevance and a float run: no error either way). The one correct input it
    refuses is fractional relevance (``0.5``) with a run of integral scores: pass
    ``check_order=False`` for it. Only the evaluated queries are checked.

    Returns:
        Means over the evaluated queries (NaN values, from ``empty="skip"``, are left out), or
        the per-query values.

    Raises:
        ValueError: an unknown metric or option, a ``gain`` that contradicts a metric name,
            arguments that look swapped, or a NaN or infinite score or relevance (the message
            names the query and the document).

    >>> qrels = {"q1": {"d2": 1}, "q2": {"d3": 2}}
    >>> run = {"q1": {"d1": 0.9, "d2": 0.8}, "q2": {"d3": 0.5}}
    >>> evaluate(qrels, run, ["map", "p@1"])
    {'map': 0.75, 'p@1': 0.5}
    """
    if isinstance(metrics, str):
        metrics = [metrics]
    specs = [parse_metric(name) for name in metrics]
    if not specs:
        raise ValueError("evaluate: metrics must name at least one metric, got none")
    options = _options(convention, gain, ties, empty, relevance_threshold)
    given = {} if gain is None else {"gain": gain}
    for spec in specs:
        spec.options(given, "evaluate")  # a gain that contradicts a name: refused up front
    qids = _query_ids(qrels, run, include_missing)
    batch = to_batches(qrels, run, qids)
    _check_finite(batch, qrels, run)
    if check_order:
        _check_order(batch)
    if convention == "trec_eval":
        batch = _integer_relevance(batch)
    values = evaluate_batches(batch, specs, options)
    if per_query:
        columns = {name: v.tolist() for name, v in values.items()}
        return {qid: {name: col[i] for name, col in columns.items()} for i, qid in enumerate(qids)}
    means: dict[str, Any] = {}
    for name, v in values.items():
        keep = ~torch.isnan(v)
        means[name] = float(v[keep].mean()) if bool(keep.any()) else math.nan
    return means

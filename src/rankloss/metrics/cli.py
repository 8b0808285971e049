"""``rankloss eval QRELS RUN -m ndcg@10 -m map [-q] [--format trec|table|json|csv]``.

The default output is trec_eval's: ``measure\tqid\tvalue`` lines (the measure left-aligned in
22 columns, as trec_eval prints it), the per-query rows (``-q``) first, query by query, and the
``all`` rows last. Measures are printed under their rankloss names (``ndcg@10``, ``map``,
``mrr``, ``precision@5``); trec_eval's names are accepted with ``-m`` (``ndcg_cut.10``,
``P.5``, ``recip_rank``, ``Rprec``, ``all_trec``), and a trec_eval measure that rankloss does
not compute (``bpref``, ``gm_map``, ...) is refused with one line.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import os
import re
import sys
import warnings
from typing import TextIO

from rankloss._core import params
from rankloss.metrics.names import parse_metric
from rankloss.metrics.trec import CONVENTIONS, evaluate, read_qrels, read_run

__all__ = ["add_parser", "run_eval", "measure_names", "FORMATS", "ALL_TREC"]

DEFAULT_METRICS = ("ndcg@10", "map", "mrr")
#: The output formats of ``--format`` (``trec``: trec_eval's lines, the default).
FORMATS = ("trec", "table", "json", "csv")
#: The cut-offs trec_eval's ``all_trec`` uses for ``P``, ``recall`` and ``ndcg_cut``.
TREC_CUTOFFS = (5, 10, 15, 20, 30, 100, 200, 500, 1000)
#: What ``-m all_trec`` evaluates: every measure of trec_eval's ``all_trec`` that rankloss
#: computes (``bpref``, ``gm_map``, ``iprec_at_recall``, ``num_*``, ... are left out).
ALL_TREC = (
    "map",
    "mrr",
    "r_precision",
    "ndcg",
    *(f"precision@{k}" for k in TREC_CUTOFFS),
    *(f"recall@{k}" for k in TREC_CUTOFFS),
    *(f"ndcg@{k}" for k in TREC_CUTOFFS),
)
#: trec_eval measures with no rankloss counterpart: refused with a line that says so.
_TREC_ONLY = (
    "bpref",
    "gm_map",
    "gm_bpref",
    "iprec_at_recall",
    "num_q",
    "num_ret",
    "num_rel",
    "num_rel_ret",
    "runid",
    "relstring",
    "recall_precision",
    "utility",
    "11pt_avg",
    "binG",
    "G",
    "Rndcg",
    "infAP",
    "set_relative_P",
    "set_map",
    "set_F",
)
#: trec_eval's measures with cut-offs: ``-m P`` is P at each of its cut-offs, ``-m P.5,10`` at
#: those given (case as trec_eval writes them).
_TREC_FAMILIES = {
    "P": "precision",
    "recall": "recall",
    "ndcg_cut": "ndcg",
    "map_cut": "map",
    "success": "hit",
}
_FAMILY_CUTOFFS = {name: TREC_CUTOFFS for name in _TREC_FAMILIES} | {"success": (1, 5, 10)}
_TREC_FAMILY = re.compile(r"(P|recall|ndcg_cut|map_cut|success)(?:\.(\d+(?:,\d+)*))?")
#: trec_eval's measures of the whole retrieved set.
_TREC_SET = {"set_P": "precision", "set_recall": "recall"}
#: The column width trec_eval pads a measure name to.
TREC_NAME_WIDTH = 22
#: Characters written at a time (a pipe holds 64 KiB).
_PIECE = 1 << 16
#: The most decimals ``--digits`` takes (a float64 holds about 17 significant digits).
MAX_DIGITS = 17


def add_parser(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "eval",
        help="evaluate a TREC run against qrels",
        description="Evaluate a TREC run file against a qrels file and print a table. "
        "The default convention gives trec_eval's numbers.",
    )
    parser.add_argument("qrels", help="qrels file: qid iteration docid relevance")
    parser.add_argument("run", help="run file: qid Q0 docid rank score tag")
    parser.add_argument(
        "-m",
        "--metric",
        action="append",
        dest="metrics",
        help="metric name, repeatable: ndcg@10 (linear gain), ndcg_burges@10 (exp2 gain), "
        "map, mrr, p@5, recall@100, r_precision, err@20, hit@10, ...; trec_eval's names too: "
        "ndcg_cut.10, P.5, recip_rank, Rprec, all_trec "
        f"(default: {' '.join(DEFAULT_METRICS)})",
    )
    parser.add_argument(
        "-q", "--per-query", action="store_true", help="also print every query (trec_eval -q)"
    )
    parser.add_argument(
        "--format",
        choices=FORMATS,
        default="trec",
        help="trec: trec_eval's 'measure qid value' lines (default); table; json; csv",
    )
    parser.add_argument(
        "--convention", choices=CONVENTIONS, default="trec_eval", help="default: trec_eval"
    )
    parser.add_argument(
        "-c",
        "--include-missing",
        action="store_true",
        help="score qrels queries missing from the run as empty rankings (trec_eval -c)",
    )
    parser.add_argument(
        "--digits", type=int, default=4, help=f"decimals printed, 0 to {MAX_DIGITS} (default 4)"
    )
    parser.set_defaults(func=run_eval)
    return parser


def _format(value: float, digits: int) -> str:
    return "nan" if math.isnan(value) else f"{value:.{digits}f}"


def measure_names(given: list[str]) -> list[str]:
    """The rankloss names of the ``-m`` values, in order, each once.

    trec_eval's names map to rankloss's (``ndcg_cut.10`` -> ``ndcg@10``, ``P.5`` ->
    ``precision@5``, ``recip_rank`` -> ``mrr``, ``Rprec`` -> ``r_precision``); ``all_trec``
    expands to :data:`ALL_TREC`; a trec_eval measure rankloss does not compute is a
    ``ValueError`` naming it.

    >>> measure_names(["ndcg_cut.10", "P.5", "map", "ndcg@10"])
    ['ndcg@10', 'precision@5', 'map']
    """
    out: list[str] = []
    for name in given:
        family = _TREC_FAMILY.fullmatch(name.strip())
        if name.strip().lower() == "all_trec":
            names = list(ALL_TREC)
        elif family is not None:  # trec_eval's P, recall, ... : its cut-offs, or those given
            base, listed = family.group(1), family.group(2)
            cutoffs = [int(k) for k in listed.split(",")] if listed else list(_FAMILY_CUTOFFS[base])
            if 0 in cutoffs:
                raise ValueError(f"rankloss eval: the cut-offs of {name!r} must be >= 1")
            names = [f"{_TREC_FAMILIES[base]}@{k}" for k in cutoffs]
        elif name.strip() in _TREC_SET:
            names = [_TREC_SET[name.strip()]]
        else:
            base = name.strip().split(".")[0].split("@")[0]
            if base in _TREC_ONLY or base.lower() in {m.lower() for m in _TREC_ONLY}:
                raise ValueError(
                    f"rankloss eval: the trec_eval measure {name!r} is not computed by rankloss "
                    "(supported: map, recip_rank, Rprec, P.k, recall.k, ndcg, ndcg_cut.k, "
                    "map_cut.k, and rankloss's own names)"
                )
            names = [parse_metric(name).canonical]
        out += [n for n in names if n not in out]
    return out


def _check_arguments(args: argparse.Namespace, metrics: list[str]) -> list[str]:
    """Refuse bad options before any file is read; the rankloss names of the metrics."""
    params.nonnegative_int("rankloss eval", "--digits", args.digits)
    if args.digits > MAX_DIGITS:
        raise ValueError(f"rankloss eval: --digits must be <= {MAX_DIGITS}, got {args.digits!r}")
    return measure_names(metrics)


def run_eval(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """Evaluate ``args.run`` against ``args.qrels`` and print the result to ``out``.

    ``args.format`` (default ``"trec"``) picks trec_eval's lines, a table, JSON or CSV.
    Bad options, unreadable files and malformed lines (see :func:`read_run` and
    :func:`read_qrels`) give exit code 2 and one line on stderr naming the option, or the file
    and line; nothing is printed to ``out`` then. A reader that closes the pipe early
    (``rankloss eval ... | head -1``) ends the command quietly with exit code 141, as a C tool
    killed by ``SIGPIPE`` (stdout is pointed at ``/dev/null`` so nothing is flushed later).
    """
    metrics = args.metrics or list(DEFAULT_METRICS)
    try:
        metrics = _check_arguments(args, metrics)
        qrels = read_qrels(args.qrels)
        run = read_run(args.run)
        convention, missing = args.convention, args.include_missing
        # The column counts of the two files already tell qrels from run: no order check.
        options = {"convention": convention, "include_missing": missing, "check_order": False}
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            per_query = evaluate(qrels, run, metrics, per_query=True, **options)
            means = evaluate(qrels, run, metrics, **options)
        for message in dict.fromkeys(str(w.message) for w in caught):  # each once, one line
            print(f"rankloss eval: warning: {message}", file=sys.stderr)
    except (OSError, ValueError) as error:
        message = str(error)
        if not message.startswith("rankloss eval:"):
            message = f"rankloss eval: {message}"
        print(message, file=sys.stderr)
        return 2
    rows: list[tuple[str, dict[str, float]]] = []
    if args.per_query:
        rows += [(qid, values) for qid, values in per_query.items()]
    rows.append(("all", means))
    render = {"trec": _trec, "table": _table, "json": _json, "csv": _csv}
    text = render[getattr(args, "format", "trec")](rows, metrics, args.digits, len(per_query))
    return _write(text, out)


def _write(text: str, out: TextIO | None) -> int:
    """Write ``text`` to ``out`` (stdout by default); 141 when the reader closed the pipe."""
    stream = out if out is not None else sys.stdout
    try:
        # In pieces of a pipe's size, each flushed: one large write that the closing reader
        # cut short is not reported by Python's buffered writer (the command exited 0).
        for start in range(0, len(text), _PIECE):
            stream.write(text[start : start + _PIECE])
            stream.flush()
    except BrokenPipeError:
        if stream is sys.stdout:
            # Python's documented recipe: later flushes (at exit) go to /dev/null, silently.
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            os.close(devnull)
        return 141
    return 0


def _trec(rows: list[tuple[str, dict[str, float]]], metrics: list[str], digits: int, n: int) -> str:
    lines = [
        f"{name:<{TREC_NAME_WIDTH}}\t{qid}\t{_format(values[name], digits)}\n"
        for qid, values in rows
        for name in metrics
    ]
    return "".join(lines)


def _table(
    rows: list[tuple[str, dict[str, float]]], metrics: list[str], digits: int, n: int
) -> str:
    width = max([len("query")] + [len(qid) for qid, _ in rows])
    columns = [max(len(name), digits + 3) for name in metrics]
    header = "query".ljust(width) + "".join(
        "  " + name.rjust(w) for name, w in zip(metrics, columns)
    )
    lines = [header, "-" * len(header)]
    for qid, values in rows:
        cells = "".join(
            "  " + _format(values[name], digits).rjust(w) for name, w in zip(metrics, columns)
        )
        lines.append(qid.ljust(width) + cells)
    lines.append(f"({n} queries)")
    return "\n".join(lines) + "\n"


def _number(value: float, digits: int) -> float | None:
    return None if math.isnan(value) else round(value, digits)


def _json(rows: list[tuple[str, dict[str, float]]], metrics: list[str], digits: int, n: int) -> str:
    data: dict[str, object] = {"metrics": metrics, "num_q": n}
    *queries, (_, means) = rows  # the last row is the mean (a query may be named "all" too)
    data["all"] = {m: _number(means[m], digits) for m in metrics}
    if queries:
        data["queries"] = {
            qid: {m: _number(values[m], digits) for m in metrics} for qid, values in queries
        }
    return json.dumps(data, indent=2) + "\n"


def _csv(rows: list[tuple[str, dict[str, float]]], metrics: list[str], digits: int, n: int) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["query", *metrics])
    for qid, values in rows:
        writer.writerow([qid, *(_format(values[m], digits) for m in metrics)])
    return buffer.getvalue()

"""``rankloss eval QRELS RUN -m ndcg@10 -m map [--per-query]``: trec_eval-style evaluation."""

from __future__ import annotations

import argparse
import math
import sys
from typing import TextIO

from rankloss._core import params
from rankloss.metrics.names import parse_metric
from rankloss.metrics.trec import CONVENTIONS, evaluate, read_qrels, read_run

__all__ = ["add_parser", "run_eval"]

DEFAULT_METRICS = ("ndcg@10", "map", "mrr")
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
        "map, mrr, p@5, recall@100, r_precision, err@20, hit@10, ... "
        f"(default: {' '.join(DEFAULT_METRICS)})",
    )
    parser.add_argument("--per-query", action="store_true", help="also print every query")
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


def _check_arguments(args: argparse.Namespace, metrics: list[str]) -> None:
    """Refuse bad options before any file is read."""
    params.nonnegative_int("rankloss eval", "--digits", args.digits)
    if args.digits > MAX_DIGITS:
        raise ValueError(f"rankloss eval: --digits must be <= {MAX_DIGITS}, got {args.digits!r}")
    for name in metrics:
        parse_metric(name)


def run_eval(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """Evaluate ``args.run`` against ``args.qrels`` and print the table to ``out``.

    Bad options, unreadable files and malformed lines (see :func:`read_run` and
    :func:`read_qrels`) give exit code 2 and one line on stderr naming the option, or the file
    and line; nothing is printed to ``out`` then.
    """
    out = out or sys.stdout
    metrics = args.metrics or list(DEFAULT_METRICS)
    try:
        _check_arguments(args, metrics)
        qrels = read_qrels(args.qrels)
        run = read_run(args.run)
        convention, missing = args.convention, args.include_missing
        # The column counts of the two files already tell qrels from run: no order check.
        options = {"convention": convention, "include_missing": missing, "check_order": False}
        per_query = evaluate(qrels, run, metrics, per_query=True, **options)
        means = evaluate(qrels, run, metrics, **options)
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
    width = max([len("query")] + [len(qid) for qid, _ in rows])
    columns = [max(len(name), args.digits + 3) for name in metrics]
    header = "query".ljust(width) + "".join(
        "  " + name.rjust(w) for name, w in zip(metrics, columns)
    )
    print(header, file=out)
    print("-" * len(header), file=out)
    for qid, values in rows:
        cells = "".join(
            "  " + _format(values[name], args.digits).rjust(w) for name, w in zip(metrics, columns)
        )
        print(qid.ljust(width) + cells, file=out)
    print(f"({len(per_query)} queries)", file=out)
    return 0

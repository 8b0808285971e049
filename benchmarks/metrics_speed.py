"""Speed of NDCG@10, MAP and MRR: rankloss against ranx and pytrec_eval, in one run.

    .venv/bin/python benchmarks/metrics_speed.py            # 100,000 lists of 100 items
    .venv/bin/python benchmarks/metrics_speed.py --lists 10000

Every library gets the same random lists (graded labels 0-4, float64 scores without ties) in
its own input format; building that format is timed apart from the metric computation.
rankloss runs with trec_eval's conventions (``gain="linear"``, ``empty="zero"``,
``ties="index"``) so that the values can be compared, and also with its defaults
(``ties="average"``). ranx's numba functions are compiled on a small warm-up input first, so
compile time is excluded. Each timing is the best of ``--repeats`` runs. The script prints a
markdown table and the largest absolute difference between the libraries' per-list values.
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import time

import numpy as np
import torch

import rankloss
from rankloss.metrics import compute, evaluate

METRICS = {
    "ndcg@10": ("ndcg@10", "ndcg_cut_10"),
    "map": ("map", "map"),
    "mrr": ("mrr", "recip_rank"),
}
#          rankloss name: (ranx name, pytrec_eval name)


def make_lists(lists: int, items: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    scores = torch.rand(lists, items, generator=g, dtype=torch.float64)
    probabilities = torch.tensor([0.6, 0.2, 0.1, 0.06, 0.04])
    labels = torch.multinomial(probabilities, lists * items, replacement=True, generator=g)
    return scores, labels.reshape(lists, items).double()


def best_of(repeats: int, fn):
    times, result = [], None
    for _ in range(repeats):
        gc.collect()
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return min(times), result


def as_dicts(scores: torch.Tensor, labels: torch.Tensor):
    s, y = scores.tolist(), labels.long().tolist()
    docids = [f"d{i}" for i in range(scores.shape[1])]
    run = {f"q{q}": dict(zip(docids, row)) for q, row in enumerate(s)}
    qrels = {f"q{q}": dict(zip(docids, row)) for q, row in enumerate(y)}
    return run, qrels


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lists", type=int, default=100_000)
    parser.add_argument("--items", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--peer-repeats", type=int, default=1, help="repeats for ranx/pytrec_eval")
    parser.add_argument("--threads", type=int, default=None, help="torch and numba threads")
    parser.add_argument("--skip-pytrec", action="store_true")
    parser.add_argument("--skip-ranx", action="store_true")
    args = parser.parse_args()

    if args.threads:
        torch.set_num_threads(args.threads)
        if not args.skip_ranx:
            import numba

            numba.set_num_threads(args.threads)
    scores, labels = make_lists(args.lists, args.items)
    print(
        f"# {args.lists:,} lists x {args.items} items; torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads, {platform.processor() or platform.machine()}, "
        f"rankloss {rankloss.__version__}, load average {os.getloadavg()[0]:.1f}"
    )
    rows: dict[str, dict[str, float]] = {}
    values: dict[str, dict[str, np.ndarray]] = {}

    trec_like = {"gain": "linear", "empty": "zero", "ties": "index"}
    for label, dtype, options in [
        ("rankloss (float32, ties=index)", torch.float32, trec_like),
        ("rankloss (float64, ties=index)", torch.float64, trec_like),
        ("rankloss (float32, ties=average)", torch.float32, {**trec_like, "ties": "average"}),
    ]:
        s, y = scores.to(dtype), labels.to(dtype)
        rows[label] = {}
        for name in METRICS:
            options_for = {
                k: v for k, v in options.items() if name.startswith("ndcg") or k != "gain"
            }
            seconds, out = best_of(
                args.repeats,
                lambda n=name, s=s, y=y, o=options_for: compute(n, s, y, **o),
            )
            rows[label][name] = seconds
            if dtype == torch.float64:
                values.setdefault("rankloss", {})[name] = out.numpy()
        rows[label]["all three"] = sum(rows[label].values())

    if not (args.skip_ranx and args.skip_pytrec):
        start = time.perf_counter()
        run, qrels = as_dicts(scores, labels)
        print(
            f"# building the {{qid: {{docid: value}}}} dicts: {time.perf_counter() - start:.1f} s"
        )

        seconds, out = best_of(
            args.peer_repeats,
            lambda: evaluate(qrels, run, list(METRICS), per_query=True),
        )
        rows["rankloss evaluate(qrels, run) (dicts, trec_eval convention)"] = {"all three": seconds}
        values["rankloss evaluate"] = {
            name: np.array([out[f"q{q}"][name] for q in range(args.lists)]) for name in METRICS
        }

    if not args.skip_ranx:
        from ranx import Qrels, Run
        from ranx import evaluate as ranx_evaluate

        warm_run, warm_qrels = as_dicts(*make_lists(50, 10, seed=1))
        ranx_evaluate(Qrels(warm_qrels), Run(warm_run), [m[0] for m in METRICS.values()])
        start = time.perf_counter()
        ranx_qrels, ranx_run = Qrels(qrels), Run(run)
        print(f"# ranx Qrels + Run construction: {time.perf_counter() - start:.1f} s")
        rows["ranx"] = {}
        values["ranx"] = {}
        for name, (ranx_name, _) in METRICS.items():
            seconds, out = best_of(
                args.peer_repeats,
                lambda n=ranx_name: ranx_evaluate(
                    ranx_qrels, ranx_run, n, return_mean=False, make_comparable=True
                ),
            )
            rows["ranx"][name] = seconds
            order = np.argsort(np.array(list(ranx_qrels.keys())), kind="stable")
            wanted = np.argsort(np.array([f"q{q}" for q in range(args.lists)]), kind="stable")
            aligned = np.empty(args.lists)
            aligned[wanted] = np.asarray(out)[order]
            values["ranx"][name] = aligned
        rows["ranx"]["all three"] = sum(rows["ranx"].values())
        del ranx_qrels, ranx_run

    if not args.skip_pytrec:
        import pytrec_eval

        measures = {m[1] for m in METRICS.values()}
        start = time.perf_counter()
        evaluator = pytrec_eval.RelevanceEvaluator(qrels, {"ndcg_cut.10", "map", "recip_rank"})
        print(f"# pytrec_eval evaluator construction: {time.perf_counter() - start:.1f} s")
        seconds, out = best_of(args.peer_repeats, lambda: evaluator.evaluate(run))
        rows["pytrec_eval (one pass, all three)"] = {"all three": seconds}
        values["pytrec_eval"] = {
            name: np.array([out[f"q{q}"][trec] for q in range(args.lists)])
            for name, (_, trec) in METRICS.items()
            if trec in measures
        }

    print()
    header = ["library", *METRICS, "all three", "ratio to rankloss (float32, index)"]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    base = rows["rankloss (float32, ties=index)"]["all three"]
    for label, timing in rows.items():
        cells = [f"{timing[n] * 1000:.0f} ms" if n in timing else "-" for n in METRICS]
        cells.append(f"{timing['all three'] * 1000:.0f} ms")
        cells.append(f"{timing['all three'] / base:.1f}x")
        print("| " + " | ".join([label, *cells]) + " |")

    print()
    pairs = [
        ("rankloss", "ranx"),
        ("rankloss evaluate", "pytrec_eval"),
        ("rankloss", "pytrec_eval"),
    ]
    for ours, peer in pairs:
        if ours in values and peer in values:
            diffs = {
                name: float(np.max(np.abs(values[ours][name] - values[peer][name])))
                for name in METRICS
            }
            text = ", ".join(f"{n} {d:.1e}" for n, d in diffs.items())
            print(f"largest |{ours} - {peer}| per list: {text}")
    print(
        "(rankloss on tensors ranks float64 scores; trec_eval rounds scores to float32, so "
        "near-equal scores tie there and go to the larger docid: evaluate() reproduces that)"
    )


if __name__ == "__main__":
    main()

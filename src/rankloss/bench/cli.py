"""``rankloss bench`` and ``rankloss list``."""

from __future__ import annotations

import argparse
import importlib.util
import logging
import os
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn, TextIO

from rankloss._core import params

if TYPE_CHECKING:
    from rankloss.bench.suites import SuiteSpec
    from rankloss.losses import LossKind

__all__ = ["add_parser"]

#: How a task calls a loss of each kind (``rankloss list``).
_KIND_CALLS: dict[LossKind, str] = {
    "list": "loss(scores, labels, mask)",
    "embedding": "loss(embeddings, labels) or loss(queries, keys=keys)",
    "adversarial": "loss(real_logits, fake_logits) or loss(fake_logits)",
}


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    bench = subparsers.add_parser(
        "bench",
        help="compare losses on real data",
        description="Train the same model with each loss of a suite, over several seeds, and "
        "write results.md/csv/json and plots to --out. Re-running skips finished runs.",
    )
    bench.add_argument(
        "suites",
        nargs="*",
        metavar="SUITE",
        help="suites or groups to run (default: quick); see 'rankloss list'",
    )
    bench.add_argument("--config", type=Path, help="a TOML file describing suites")
    bench.add_argument(
        "--losses",
        help="comma-separated rows to keep: a row's label keeps that row (a label may hold "
        "commas); a loss name that labels no row keeps every row of that loss",
    )
    bench.add_argument(
        "--seeds", type=int, help="number of seeds, an integer >= 1 (runs seeds 0..N-1); default 3"
    )
    bench.add_argument("--epochs", type=int, help="override every suite's epochs (>= 1)")
    bench.add_argument(
        "--tune",
        type=int,
        metavar="N",
        help="first search every row's settings with N seeded TPE trials (>= 1; optuna), "
        "chosen on the validation split, then run the best on every seed",
    )
    bench.add_argument("--device", choices=["cpu", "cuda", "auto"], help="default: auto")
    bench.add_argument("--out", type=Path, help="output folder (default: bench-out)")
    bench.add_argument(
        "--threads", type=int, help="CPU threads for torch, >= 1 (default: torch's own choice)"
    )
    bench.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    bench.add_argument("--no-progress", action="store_true", help="no progress bars")
    bench.add_argument(
        "--nproc",
        type=int,
        help="train every run with N processes (DistributedDataParallel), launched with "
        "torchrun on this machine; N >= 1 (default 1). Running the command under "
        "'torchrun --nproc-per-node N -m rankloss bench ...' does the same",
    )
    own = bench.add_argument_group(
        "your own data",
        "run the built-in suite of --task (ltr, recsys or retrieval) on your file; options of "
        "the format (columns, split rule, ...) go in a --config file instead",
    )
    own.add_argument("--data", type=Path, metavar="PATH", help="your data file")
    own.add_argument(
        "--data-format",
        choices=["svmlight", "table", "trec", "interactions", "vectors"],
        help="the format of --data",
    )
    own.add_argument(
        "--task",
        choices=["ltr", "recsys", "retrieval"],
        help="the task to run on --data (default: the one the format serves)",
    )
    own.add_argument(
        "--loss",
        action="append",
        metavar="NAME",
        help="a registered loss to compare on --data (repeat; default: the suite's rows)",
    )
    bench.set_defaults(func=_run_bench)

    listing = subparsers.add_parser("list", help="list suites, data sets, losses and metrics")
    listing.set_defaults(func=_run_list)


def _refuse(message: str) -> NoReturn:
    """Bad input: one line on stderr, exit code 2 (as argparse does), nothing run."""
    print(f"rankloss bench: {message}", file=sys.stderr)
    raise SystemExit(2)


def _check_counts(args: argparse.Namespace) -> None:
    """``--seeds``, ``--epochs``, ``--threads``, ``--nproc`` and ``--tune`` are integers >= 1
    when given."""
    for option in ("seeds", "epochs", "threads", "nproc", "tune"):
        value = getattr(args, option)
        if value is not None:
            try:
                params.positive_int("rankloss bench", f"--{option}", value)
            except (TypeError, ValueError) as error:
                print(error, file=sys.stderr)
                raise SystemExit(2) from None


@contextmanager
def _warnings_on_one_line() -> Iterator[None]:
    """Show warnings (a repaired results.json, ...) as ``rankloss bench: warning: ...``."""

    def show(
        message: Warning | str,
        category: type[Warning],
        filename: str,
        lineno: int,
        file: TextIO | None = None,
        line: str | None = None,
    ) -> None:
        print(f"rankloss bench: warning: {message}", file=sys.stderr)

    with warnings.catch_warnings():
        warnings.showwarning = show
        yield


def _device(choice: str | None) -> str:
    import torch

    if choice in (None, "auto"):
        return "cuda" if torch.cuda.is_available() else "cpu"
    if choice == "cuda" and not torch.cuda.is_available():
        _refuse("--device cuda, but no CUDA device is available; use --device cpu or auto")
    return choice


def _split_rows(wanted: str, labels: set[str]) -> set[str]:
    """``--losses``'s comma-separated words; pieces that join (with their commas) into a row's
    label are that one label (``"margin (a, b),supcon"`` is two rows if the first is a label)."""
    pieces = wanted.split(",")
    words: set[str] = set()
    start = 0
    while start < len(pieces):
        end = next(
            (
                end
                for end in range(len(pieces), start + 1, -1)
                if ",".join(pieces[start:end]).strip() in labels
            ),
            start + 1,
        )
        words.add(",".join(pieces[start:end]).strip())
        start = end
    return words - {""}


def _filter_losses(suites: list[SuiteSpec], wanted: str | None) -> list[SuiteSpec]:
    if not wanted:
        return suites
    keep = _split_rows(wanted, {l.label for s in suites for l in s.losses})
    out: list[SuiteSpec] = []
    matched: set[str] = set()
    for suite in suites:
        labels = {l.label for l in suite.losses}
        # A row's label selects that row only; a word that labels no row of the suite selects
        # every row of that loss (``supcon`` is the row labelled so, not also "supcon (labelled
        # views)"; ``triplet`` is both triplet rows when no row is labelled "triplet").
        chosen = {w for w in keep if w in labels}
        by_name = keep - chosen
        losses = tuple(l for l in suite.losses if l.label in chosen or l.name in by_name)
        matched |= chosen | {l.name for l in losses if l.name in by_name}
        if losses:
            out.append(replace(suite, losses=losses))
    missing = keep - matched
    if missing:
        known = sorted({l.label for s in suites for l in s.losses})
        _refuse(
            f"--losses names no row of these suites: {', '.join(sorted(missing))}; "
            f"rows: {', '.join(known)}"
        )
    return out


def torchrun_command(args: argparse.Namespace) -> list[str]:
    """The command that runs this ``rankloss bench`` under ``torchrun`` with ``args.nproc``
    processes on this machine (``python -m torch.distributed.run --standalone
    --nproc-per-node N -m rankloss bench ...``, every option but ``--nproc`` passed on)."""
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc-per-node={args.nproc}",
        "-m",
        "rankloss",
        "bench",
        *args.suites,
    ]
    for option in ("config", "losses", "seeds", "epochs", "device", "out", "threads"):
        value = getattr(args, option)
        if value is not None:
            command += [f"--{option}", str(value)]
    for option in ("data", "data_format", "task"):
        if getattr(args, option, None) is not None:
            command += ["--" + option.replace("_", "-"), str(getattr(args, option))]
    for name in getattr(args, "loss", None) or ():
        command += ["--loss", name]
    for flag in ("no_plots", "no_progress"):
        if getattr(args, flag):
            command.append("--" + flag.replace("_", "-"))
    return command


def _launched_world_size() -> int:
    """The number of processes torchrun started this one among (1 when not under it)."""
    try:
        return int(os.environ.get("WORLD_SIZE", "1"))
    except ValueError:
        return 1


#: What ``rankloss bench`` imports, by the extra that installs it.
_NEEDS = {"scikit-learn": "sklearn", "pandas": "pandas"}


def _check_extras(plots: bool) -> None:
    """Refuse, before any work, when a package the benchmark needs is not installed."""
    missing = [name for name, module in _NEEDS.items() if importlib.util.find_spec(module) is None]
    if missing:
        _refuse(f"{', '.join(missing)} not installed: pip install 'rankloss[bench]'")
    if plots and importlib.util.find_spec("matplotlib") is None:
        _refuse("plots need matplotlib: pip install 'rankloss[bench]', or pass --no-plots")


def _log_to_stderr() -> None:
    """Send the ``rankloss`` logger's INFO lines (one per finished run) to stderr, unless the
    program has configured logging itself."""
    root = logging.getLogger("rankloss")
    if root.handlers or logging.getLogger().handlers:
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("rankloss bench: %(message)s"))
    root.addHandler(handler)
    root.setLevel(logging.INFO)


def _run_bench(args: argparse.Namespace) -> int:
    _check_counts(args)
    if args.tune is not None:
        _check_tune(args.nproc)
    if args.nproc is not None and args.nproc > 1 and _launched_world_size() == 1:
        return subprocess.call(torchrun_command(args))
    if _launched_world_size() > 1:
        import torch.distributed as dist

        if not dist.is_initialized():
            backend = "nccl" if _device(args.device) == "cuda" else "gloo"
            dist.init_process_group(backend)
            try:
                return _run_bench_here(args)
            finally:
                dist.destroy_process_group()
    return _run_bench_here(args)


def _run_bench_here(args: argparse.Namespace) -> int:
    from rankloss.bench.config import load_config
    from rankloss.bench.report import (
        markdown_tables,
        per_class_tables,
        summarise,
        write_reports,
    )
    from rankloss.bench.runner import BenchmarkRunner
    from rankloss.bench.suites import check_suite, check_suite_names, resolve_suites
    from rankloss.bench.tasks import TASKS, resolve_dataset
    from rankloss.distributed.training import is_main_process

    seeds = device = out = None
    if args.config is not None:
        try:
            config = load_config(args.config)
        except ValueError as error:
            _refuse(str(error))
        suites = config.suites
        seeds, device, out = config.seeds, config.device, config.out
    else:
        suites = []
    suites += _own_data_suites(args)
    try:
        if args.suites or (args.config is None and args.data is None):
            suites += [s for s in resolve_suites(args.suites or ["quick"]) if s not in suites]
    except KeyError as error:
        _refuse(f"SUITE: {error.args[0]}")
    try:
        check_suite_names(suites)
    except ValueError as error:
        _refuse(str(error))
    suites = _filter_losses(suites, args.losses)
    if args.epochs is not None:
        suites = [s.with_budget(epochs=args.epochs) for s in suites]
    for suite in suites:
        # Every loss is built (and every key checked) before anything trains.
        try:
            check_suite(suite)
        except (TypeError, ValueError) as error:
            _refuse(str(error))
    seed_list = list(range(args.seeds)) if args.seeds is not None else list(seeds or [0, 1, 2])
    out_dir = args.out or Path(out or "bench-out")
    if out_dir.exists() and not out_dir.is_dir():
        _refuse(f"--out {out_dir}: not a folder")
    device = _device(args.device or device)
    if args.threads is not None:
        import torch

        torch.set_num_threads(args.threads)
    main = is_main_process()  # under torchrun only rank 0 reports; the others only train
    _check_extras(plots=not args.no_plots)
    tune = args.tune if args.tune is not None else (config.tune if args.config else None)
    if tune is not None:
        _check_tune(args.nproc)
    progress = not args.no_progress and sys.stderr.isatty() and main
    if main:
        _log_to_stderr()
    start = time.perf_counter()
    with _warnings_on_one_line():
        runner = BenchmarkRunner(
            out_dir,
            TASKS,
            seeds=seed_list,
            device=device,
            progress=progress,
            dataset_resolver=resolve_dataset,
            log=print if main else (lambda _: None),
        )
        tuning = None
        if tune is not None:
            from rankloss.bench.tune import Tuner

            tuner = Tuner(runner, tune)
            suites = tuner.tune(suites)  # one suite per row, with its chosen settings
            tuning = tuner.entries
        wanted = runner.run(suites)
    if not main:
        return 0
    paths = write_reports(out_dir, wanted, plots=not args.no_plots, tuning=tuning)
    if tuning is not None:
        from rankloss.bench.report import tuning_tables, which_loss_report

        print(tuning_tables(tuning))
        print(which_loss_report(summarise(wanted)))
        paths.append(runner.out / "tuning.json")
    print(markdown_tables(summarise(wanted)))
    per_class = per_class_tables(wanted)
    if per_class:
        print(per_class)
    print(
        f"{len(wanted)} runs in {time.perf_counter() - start:.0f} s on {device}; wrote "
        + ", ".join(str(p) for p in paths)
        + f", {runner.results_path}"
    )
    return 0


def _check_tune(nproc: int | None) -> None:
    """``--tune`` (or ``tune`` in the config) runs in one process, with optuna installed."""
    if (nproc or 1) > 1 or _launched_world_size() > 1:
        _refuse("--tune runs in one process: drop --nproc (and torchrun)")
    if importlib.util.find_spec("optuna") is None:
        _refuse("--tune needs optuna: pip install 'rankloss[bench]'")


def _own_data_suites(args: argparse.Namespace) -> list[SuiteSpec]:
    """The suite of ``--data PATH --data-format FORMAT [--task TASK] [--loss NAME ...]``."""
    from rankloss.bench.config import own_data_suite

    given = [f for f in ("data_format", "task", "loss") if getattr(args, f, None)]
    if args.data is None:
        if given:
            flags = ", ".join("--" + f.replace("_", "-") for f in given)
            _refuse(f"{flags} {'needs' if len(given) == 1 else 'need'} --data PATH")
        return []
    if args.data_format is None:
        _refuse("--data needs --data-format (svmlight, table, trec, interactions or vectors)")
    try:
        return [own_data_suite(args.data, args.data_format, args.task, args.loss or ())]
    except (TypeError, ValueError) as error:
        _refuse(str(error))


def _family_order(family: str) -> tuple[int, str]:
    """Pointwise, pairwise, listwise first (the order of docs/losses.md), then by name."""
    known = ("pointwise", "pairwise", "listwise")
    return (known.index(family) if family in known else len(known), family)


def _run_list(args: argparse.Namespace) -> int:
    from rankloss import losses
    from rankloss.bench.suites import GROUPS, SUITES

    print("Suites:")
    for name, suite in SUITES.items():
        print(f"  {name:<18} {suite.dataset:<16} {suite.description}")
    for name, members in GROUPS.items():
        print(f"  {name:<18} = {' + '.join(members)}")
    try:
        from rankloss import data

        print("\nData sets:\n  " + ", ".join(data.available()))
    except ImportError:
        pass
    print("\nLosses (rankloss.losses.get(name, **hyper)), by kind and family:")
    for kind, call in _KIND_CALLS.items():
        of_kind = losses.available(kind=kind)
        if not of_kind:
            continue
        print(f"  {kind}: {call}")
        families = sorted(losses.LOSSES.families(), key=_family_order)
        width = max(len(f) for f in families)
        for family in families:
            in_family = [n for n in losses.available(family) if n in of_kind]
            if in_family:
                print(f"    {family:<{width}}  {', '.join(in_family)}")
    try:
        from rankloss import metrics

        names = sorted(getattr(metrics, "METRIC_FUNCTIONS", {}))
        if names:
            print("\nMetrics (add @k for a cut-off):\n  " + ", ".join(names))
            print(
                "  ndcg, dcg: linear gain y (trec_eval, ranx, scikit-learn, torchmetrics);\n"
                "  ndcg_burges, dcg_burges: exp2 gain 2^y - 1 (Burges et al. 2005, LightGBM)"
            )
    except ImportError:
        pass
    return 0

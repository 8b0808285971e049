"""Run benchmark suites: every (suite, loss, seed) once, resumable, results written atomically.

Each finished run is written to its own record (``runs/<suite>-<hash>-seed<seed>/record.json``)
and merged into ``results.json`` at once (atomic replace), so an interrupted benchmark loses at
most the run in progress, and re-running the same command skips every run whose configuration
and seed are already there. The tables and plots are rebuilt from ``results.json`` at the end
of every run.

Two processes may share one output folder: every read-merge-write of ``results.json`` holds an
exclusive lock (``fcntl.flock`` on ``.results.lock`` in the folder) and merges the runs on disk
with its own, so no process loses another's runs. A ``results.json`` that cannot be read (not
JSON, not UTF-8, or not a rankloss results file) is moved aside to
``results.json.corrupt-<timestamp>`` with a warning and rebuilt from the per-run records.

Under ``torch.distributed`` (``torchrun --nproc-per-node N -m rankloss bench ...``, or
``rankloss bench --nproc N``) every rank runs every planned run together (the trainer uses
``DistributedDataParallel``); rank 0 alone decides what is left to run, holds the locks and
writes the records and ``results.json``, while the other ranks only train.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import platform
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import torch

from rankloss._io import atomic_write_json
from rankloss.bench.suites import LossSpec, SuiteSpec
from rankloss.distributed import training as _dist

#: Run-by-run progress when no progress bar is shown (stderr is not a terminal).
logger = logging.getLogger("rankloss.bench")

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: no lock
    fcntl = None  # type: ignore[assignment]

__all__ = [
    "RunResult",
    "RunContext",
    "BenchmarkRunner",
    "SkipRun",
    "diverged",
    "BenchWarning",
    "environment",
]

#: The file the runner writes for each finished run, in the run's work folder.
RECORD_NAME = "record.json"
#: The lock file taken (exclusively) around every read-merge-write of ``results.json``.
LOCK_NAME = ".results.lock"


class BenchWarning(UserWarning):
    """Something in the output folder was repaired (a corrupt ``results.json`` moved aside)."""


class SkipRun(Exception):
    """Raised by a task when a row cannot run here (an optional extra is missing)."""


@dataclass
class RunResult:
    """What a task returns for one run."""

    metrics: dict[str, float]
    history: list[dict[str, float]] = field(default_factory=list)
    notes: str = ""
    #: Further test metrics that are not columns of the table (e.g. per-class recall).
    extra_metrics: dict[str, float] = field(default_factory=dict)
    #: Metrics of the validation split (of the weights kept, e.g. the best epoch): what a
    #: tuned benchmark (:mod:`rankloss.bench.tune`) selects settings by; never the test split.
    validation: dict[str, float] = field(default_factory=dict)
    #: Seconds an earlier, interrupted process spent on this run: the epochs a resumed trainer
    #: took from its checkpoint (their logged times), added to the record's ``seconds``.
    earlier_seconds: float = 0.0


def diverged(suite: SuiteSpec, error: FloatingPointError) -> RunResult:
    """The result of a run that the trainer stopped because its loss, gradients or weights
    became non-finite: every metric NaN (the tables count such seeds as non-finite and leave
    them out of means and tests), and the reason in the notes. The benchmark goes on."""
    nan = float("nan")
    return RunResult({m: nan for m in suite.metrics}, notes=f"diverged: {error}")


@dataclass
class RunContext:
    """What a task receives for one run."""

    suite: SuiteSpec
    loss: LossSpec
    dataset: str
    seed: int
    device: str
    workdir: Path
    progress: bool = False


TaskFn = Callable[[RunContext], RunResult]


def environment(device: str) -> dict[str, Any]:
    """Versions and machine, recorded with every run."""
    import numpy

    from rankloss._version import __version__

    info: dict[str, Any] = {
        "rankloss": __version__,
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu_threads": torch.get_num_threads(),
        "device": device,
    }
    if device.startswith("cuda") and torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def _key(record: dict[str, Any]) -> tuple[str, int]:
    return (record["config_hash"], record["seed"])


def _is_record(record: object) -> bool:
    """A run record as the runner writes it (enough of it to resume and to report)."""
    return (
        isinstance(record, dict)
        and isinstance(record.get("config_hash"), str)
        and isinstance(record.get("seed"), int)
        and isinstance(record.get("suite"), str)
        and isinstance(record.get("loss"), str)
        and isinstance(record.get("metrics"), dict)
        and isinstance(record.get("config"), dict)
    )


def _read_results(path: Path) -> list[dict[str, Any]]:
    """The runs of ``results.json``; ``ValueError`` saying why when it is not one."""
    try:
        data = json.loads(path.read_bytes().decode("utf-8"))
    except UnicodeDecodeError:
        raise ValueError("not UTF-8 text") from None
    except json.JSONDecodeError as error:
        raise ValueError(f"not valid JSON ({error})") from None
    runs = data.get("runs") if isinstance(data, dict) else None
    if not isinstance(runs, list):
        raise ValueError("not a rankloss results file (expected an object with a 'runs' list)")
    for i, run in enumerate(runs):
        if not _is_record(run):
            raise ValueError(f"not a rankloss results file (run {i} is not a run record)")
    return runs


def _read_records(out: Path) -> list[dict[str, Any]]:
    """Every readable per-run record under ``out/runs``, oldest first."""
    records = []
    for path in sorted(out.glob(f"runs/*/{RECORD_NAME}")):
        try:
            record = json.loads(path.read_bytes().decode("utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            continue
        if _is_record(record):
            records.append(record)
    records.sort(key=lambda r: str(r.get("finished_at", "")))
    return records


def _merge(runs: list[dict[str, Any]], more: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """``runs`` followed by the runs of ``more`` whose (configuration, seed) is not there yet."""
    merged = list(runs)
    seen = {_key(r) for r in merged}
    for run in more:
        if _key(run) not in seen:
            seen.add(_key(run))
            merged.append(run)
    return merged


@contextlib.contextmanager
def _locked(out: Path) -> Iterator[None]:
    """Hold the output folder's lock (blocking until another process releases it)."""
    with open(out / LOCK_NAME, "a+b") as handle:
        if fcntl is not None:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            if fcntl is not None:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _load_results(out: Path) -> tuple[list[dict[str, Any]], bool]:
    """The runs of ``out/results.json`` (call under the lock), and whether the file lacks some
    of them (it was rebuilt or completed from the per-run records, and needs writing).

    A file that is not a rankloss results file is moved aside to
    ``results.json.corrupt-<timestamp>`` with a :class:`BenchWarning`; its runs are then
    rebuilt from the per-run records. Records of runs missing from the file (a process
    stopped between writing its record and merging it) are added.
    """
    path = out / "results.json"
    runs: list[dict[str, Any]] = []
    if path.exists():
        try:
            runs = _read_results(path)
        except ValueError as reason:
            stamp = time.strftime("%Y%m%dT%H%M%S")
            aside = path.with_name(f"{path.name}.corrupt-{stamp}")
            n = 1
            while aside.exists():
                aside = path.with_name(f"{path.name}.corrupt-{stamp}-{n}")
                n += 1
            os.replace(path, aside)
            rebuilt = _read_records(out)
            warnings.warn(
                f"{path}: {reason}; moved it to {aside.name} and rebuilt it from "
                f"{len(rebuilt)} per-run record(s) in {out / 'runs'}",
                BenchWarning,
                stacklevel=3,
            )
            return rebuilt, True
    merged = _merge(runs, _read_records(out))
    return merged, len(merged) != len(runs)


class BenchmarkRunner:
    """Runs suites into ``out`` and keeps ``results.json`` up to date.

    Args:
        out: the output folder (created).
        tasks: task name -> function running one :class:`RunContext`.
        seeds: the seeds every loss runs with.
        device: ``"cpu"`` or ``"cuda"``.
        progress: show progress bars.
        dataset_resolver: maps a suite to the data set that can be loaded here (first of the
            suite's data set and its fallbacks); defaults to the suite's own data set.
    """

    def __init__(
        self,
        out: str | Path,
        tasks: dict[str, TaskFn],
        *,
        seeds: Sequence[int] = (0, 1, 2),
        device: str = "cpu",
        progress: bool = True,
        dataset_resolver: Callable[[SuiteSpec], str] | None = None,
        log: Callable[[str], None] = print,
    ) -> None:
        self.out = Path(out)
        self.out.mkdir(parents=True, exist_ok=True)
        self.tasks = tasks
        self.seeds = tuple(seeds)
        self.device = device
        self.progress = progress
        self.resolve = dataset_resolver or (lambda suite: suite.dataset)
        self.log = log
        self.results_path = self.out / "results.json"
        self.runs: list[dict[str, Any]] = []
        self._todo = 0  # runs to do in the current call of run(), for the progress lines
        self._finished: list[float] = []  # seconds of each run finished in this call
        if _dist.is_main_process():  # under torch.distributed only rank 0 touches the files
            with _locked(self.out):
                self.runs, stale = _load_results(self.out)
                if stale:
                    atomic_write_json(self.results_path, {"runs": self.runs})

    def _done_keys(self) -> set[tuple[str, int]]:
        return {_key(r) for r in self.runs}

    def _save(self, record: dict[str, Any]) -> None:
        """Merge ``record`` with the runs on disk, under the lock, and write results.json."""
        with _locked(self.out):
            self.runs = _merge(_load_results(self.out)[0], [*self.runs, record])
            atomic_write_json(self.results_path, {"runs": self.runs})

    def plan(self, suites: Sequence[SuiteSpec]) -> list[tuple[SuiteSpec, LossSpec, str, int]]:
        """Every run of ``suites``, in order, with the data set it will use."""
        planned = []
        for suite in suites:
            if suite.task not in self.tasks:
                raise KeyError(f"suite {suite.name!r}: no task runner {suite.task!r}")
            dataset = self.resolve(suite)
            seeds = self.seeds[: suite.budget.get("max_seeds", len(self.seeds))]
            for loss in suite.losses:
                # A row that does not depend on the seed (no training) runs once.
                for seed in seeds[:1] if loss.options.get("deterministic") else seeds:
                    planned.append((suite, loss, dataset, seed))
        return planned

    def run(self, suites: Sequence[SuiteSpec]) -> list[dict[str, Any]]:
        """Run whatever of ``suites`` is not in ``results.json`` yet.

        Returns the records of exactly the planned runs, in plan order: runs of other suites,
        or of an earlier configuration of the same suite, stay in ``results.json`` but are not
        returned (so they never mix into a table).
        """
        planned = self.plan(suites)
        keys = [(SuiteSpec.config_hash(p[0].run_config(p[1], p[2])), p[3]) for p in planned]
        if _dist.is_distributed():
            return self._run_distributed(planned, keys)
        done = self._done_keys()
        todo = [p for p, key in zip(planned, keys) if key not in done]
        self._todo, self._finished = len(todo), []
        skipped = len(planned) - len(todo)
        if skipped:
            self.log(f"resuming: {skipped} of {len(planned)} runs already in {self.results_path}")
        env = environment(self.device)
        bar = _progress(len(todo), self.progress)
        try:
            # A run another process is doing (its folder is locked) waits until the end; by
            # then it is usually in results.json and is not run twice.
            deferred = []
            for item in todo:
                bar.set_description(f"{item[0].name}: {item[1].label} seed {item[3]}")
                if self._claim_and_run(*item, env, wait=False):
                    bar.update(1)
                else:
                    deferred.append(item)
            for item in deferred:
                bar.set_description(f"{item[0].name}: {item[1].label} seed {item[3]}")
                self._claim_and_run(*item, env, wait=True)
                bar.update(1)
        finally:
            bar.close()
        by_key = {_key(r): r for r in self.runs}
        return [by_key[key] for key in keys if key in by_key]

    def _run_distributed(
        self,
        planned: list[tuple[SuiteSpec, LossSpec, str, int]],
        keys: list[tuple[str, int]],
    ) -> list[dict[str, Any]]:
        """Every rank runs each unfinished run together; rank 0 chooses them (under the run's
        lock, held until the run is written) and writes the results."""
        main = _dist.is_main_process()
        done = self._done_keys() if main else set()
        todo = _dist.broadcast_object([i for i, key in enumerate(keys) if key not in done])
        self._todo, self._finished = len(todo), []
        if main and len(todo) < len(planned):
            skipped = len(planned) - len(todo)
            self.log(f"resuming: {skipped} of {len(planned)} runs already in {self.results_path}")
        env = environment(self.device)
        bar = _progress(len(todo), self.progress and main)
        try:
            for index in todo:
                suite, loss, dataset, seed = planned[index]
                bar.set_description(f"{suite.name}: {loss.label} seed {seed}")
                workdir = self._workdir(suite, keys[index][0], seed)
                with contextlib.ExitStack() as stack:
                    if main:
                        workdir.mkdir(parents=True, exist_ok=True)
                        handle = stack.enter_context(open(workdir / ".run.lock", "a+b"))
                        if fcntl is not None:
                            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
                            stack.callback(fcntl.flock, handle.fileno(), fcntl.LOCK_UN)
                        with _locked(self.out):
                            self.runs = _merge(_load_results(self.out)[0], self.runs)
                    # Another process may have finished it meanwhile: rank 0 says.
                    if _dist.broadcast_object(keys[index] not in self._done_keys()):
                        self._run_one(suite, loss, dataset, seed, env)
                    _dist.barrier()
                bar.update(1)
        finally:
            bar.close()
        by_key = {_key(r): r for r in self.runs}
        return cast(
            list[dict[str, Any]],
            _dist.broadcast_object([by_key[key] for key in keys if key in by_key]),
        )

    def _workdir(self, suite: SuiteSpec, key: str, seed: int) -> Path:
        return self.out / "runs" / f"{suite.name}-{key}-seed{seed}"

    def _claim_and_run(
        self,
        suite: SuiteSpec,
        loss: LossSpec,
        dataset: str,
        seed: int,
        env: dict[str, Any],
        *,
        wait: bool,
    ) -> bool:
        """Run one (suite, loss, seed) holding its folder's lock, unless another process has
        finished it meanwhile. ``False`` when ``wait`` is false and another process holds it."""
        key = SuiteSpec.config_hash(suite.run_config(loss, dataset))
        workdir = self._workdir(suite, key, seed)
        workdir.mkdir(parents=True, exist_ok=True)
        with open(workdir / ".run.lock", "a+b") as handle:
            if fcntl is not None:
                try:
                    flags = fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB)
                    fcntl.flock(handle.fileno(), flags)
                except BlockingIOError:
                    return False
            try:
                with _locked(self.out):
                    self.runs = _merge(_load_results(self.out)[0], self.runs)
                if (key, seed) not in self._done_keys():
                    self._run_one(suite, loss, dataset, seed, env)
            finally:
                if fcntl is not None:
                    fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
        return True

    def _run_one(
        self, suite: SuiteSpec, loss: LossSpec, dataset: str, seed: int, env: dict[str, Any]
    ) -> None:
        config = suite.run_config(loss, dataset)
        key = SuiteSpec.config_hash(config)
        workdir = self._workdir(suite, key, seed)
        context = RunContext(suite, loss, dataset, seed, self.device, workdir, self.progress)
        start = time.perf_counter()
        try:
            result = self.tasks[suite.task](context)
        except SkipRun as reason:
            if _dist.is_main_process():
                self.log(f"{suite.name}: skipping {loss.label!r}: {reason}")
            return
        except FloatingPointError as error:  # the trainer stopped a diverging run
            result = diverged(suite, error)
            if _dist.is_main_process():
                self.log(f"{suite.name}: {loss.label!r} seed {seed} diverged: {error}")
        seconds = time.perf_counter() - start + result.earlier_seconds
        if not _dist.is_main_process():
            return  # under torch.distributed, rank 0 writes the record
        record = {
            "suite": suite.name,
            "dataset": dataset,
            "loss": loss.label,
            "seed": seed,
            "config_hash": key,
            "primary": suite.primary,
            "config": config,
            "metrics": {k: float(v) for k, v in result.metrics.items()},
            "seconds": round(seconds, 3),
            "history": result.history,
            "notes": result.notes,
            "extra_metrics": {k: float(v) for k, v in result.extra_metrics.items()},
            "validation_metrics": {k: float(v) for k, v in result.validation.items()},
            "environment": env,
            "world_size": _dist.get_world_size(),
            "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        atomic_write_json(workdir / RECORD_NAME, record)
        self._save(record)
        self._report(record)

    def _report(self, record: dict[str, Any]) -> None:
        """One log line per finished run (what ran, its primary metric, its time, the runs
        left and an estimate of the time left), when no progress bar shows it."""
        self._finished.append(float(record["seconds"]))
        if self.progress:
            return
        done, total = len(self._finished), max(self._todo, len(self._finished))
        left = total - done
        eta = sum(self._finished) / done * left
        primary = record["primary"]
        value = record["metrics"].get(primary, float("nan"))
        logger.info(
            "[%d/%d] %s: %s seed %d: %s=%.4f in %.1f s; %d left, about %s",
            done,
            total,
            record["suite"],
            record["loss"],
            record["seed"],
            primary,
            value,
            record["seconds"],
            left,
            _duration(eta),
        )


def _duration(seconds: float) -> str:
    """``"1h02m"``, ``"4m05s"`` or ``"12s"``."""
    seconds = int(round(seconds))
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    if seconds >= 60:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds}s"


def _progress(total: int, enabled: bool) -> Any:
    try:
        from tqdm.auto import tqdm
    except ImportError:  # pragma: no cover - tqdm is in the bench extra
        enabled = False
    if not enabled:
        return _NoBar()
    return tqdm(
        total=total,
        unit="run",
        dynamic_ncols=True,
        bar_format="{desc} {n}/{total} [{elapsed}<{remaining}]",
    )


class _NoBar:
    def set_description(self, _: str) -> None: ...
    def update(self, _: int) -> None: ...
    def close(self) -> None: ...

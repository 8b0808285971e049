"""Run benchmark suites: every (suite, loss, seed) once, resumable, results written atomically.

Each finished run is appended to ``results.json`` at once (atomic replace), so an interrupted
benchmark loses at most the run in progress, and re-running the same command skips every run
whose configuration and seed are already there. The tables and plots are rebuilt from
``results.json`` at the end of every run.
"""

from __future__ import annotations

import json
import platform
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from rankloss._io import atomic_write_json
from rankloss.bench.suites import LossSpec, SuiteSpec

__all__ = ["RunResult", "RunContext", "BenchmarkRunner", "SkipRun", "environment"]


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


def _load_results(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}: not valid JSON ({error}); move it away to start over") from None
    runs = data.get("runs") if isinstance(data, dict) else None
    if not isinstance(runs, list):
        raise ValueError(f"{path}: expected an object with a 'runs' list")
    return runs


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
        self.runs = _load_results(self.results_path)

    def _done_keys(self) -> set[tuple[str, int]]:
        return {(r["config_hash"], r["seed"]) for r in self.runs}

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
        done = self._done_keys()
        todo = [p for p, key in zip(planned, keys) if key not in done]
        skipped = len(planned) - len(todo)
        if skipped:
            self.log(f"resuming: {skipped} of {len(planned)} runs already in {self.results_path}")
        env = environment(self.device)
        bar = _progress(len(todo), self.progress)
        try:
            for suite, loss, dataset, seed in todo:
                bar.set_description(f"{suite.name}: {loss.label} seed {seed}")
                self._run_one(suite, loss, dataset, seed, env)
                bar.update(1)
        finally:
            bar.close()
        by_key = {(r["config_hash"], r["seed"]): r for r in self.runs}
        return [by_key[key] for key in keys if key in by_key]

    def _run_one(
        self, suite: SuiteSpec, loss: LossSpec, dataset: str, seed: int, env: dict[str, Any]
    ) -> None:
        config = suite.run_config(loss, dataset)
        key = SuiteSpec.config_hash(config)
        workdir = self.out / "runs" / f"{suite.name}-{key}-seed{seed}"
        context = RunContext(suite, loss, dataset, seed, self.device, workdir, self.progress)
        start = time.perf_counter()
        try:
            result = self.tasks[suite.task](context)
        except SkipRun as reason:
            self.log(f"{suite.name}: skipping {loss.label!r}: {reason}")
            return
        seconds = time.perf_counter() - start
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
            "environment": env,
            "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        self.runs.append(record)
        atomic_write_json(self.results_path, {"runs": self.runs})


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

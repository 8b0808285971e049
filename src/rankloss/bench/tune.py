"""Tuned comparisons: every row of a suite gets the same number of seeded TPE trials.

``rankloss bench SUITE --tune N`` (or ``tune = N`` in the ``[bench]`` table of a TOML file)
searches, for every row of every suite, ``N`` settings with Optuna's TPE sampler (Bergstra et
al., NeurIPS 2011) over the row's search space, before the usual runs:

* a row that trains a loss searches the task's dimensions
  (:attr:`rankloss.bench.suites.TaskSettings.search_space`: the learning rate, list sizes,
  written into the suite's ``budget``) and the loss's own
  (:attr:`rankloss.losses.LossInfo.search_space`: temperature, margin, ..., written into the
  row's ``hyper``, replacing a value the row sets);
* a baseline row that trains no loss (LightGBM) searches its own space
  (:attr:`~rankloss.bench.suites.TaskSettings.baseline_search_spaces`); a row with an empty
  space (a random or zero-shot baseline) has nothing to tune and runs as it is.

Trial 0 starts from the row's own settings: every searched dimension that the row (its
``options`` or ``hyper``), the suite's ``budget`` or the loss's signature gives a value inside
the space takes that value (the others are sampled), so a search never chooses on validation
a setting worse than the untuned row's when that setting lies in the space.

Each trial trains on the training split with the first seed of the benchmark and is scored by
the suite's primary metric on the **validation** split (:attr:`RunResult.validation`, the
metrics of the weights early stopping kept); the test split never takes part in the choice.
The setting with the best validation score is then trained on every seed, as an untuned row
would be, and the table reports its test mean ± std.

Trials are resumable and reproducible: each finished trial is written atomically to
``tuning/<suite>-<key>/trial-<number>.json`` (``key`` hashes the row's configuration, its
space, the seed and the sampler), and the sampler of trial ``k`` is seeded from ``(key, k)``
and sees only trials ``0 .. k-1``, so a resumed search asks exactly the settings an
uninterrupted one would, and never reruns a finished trial (a trial interrupted while
training resumes from its checkpoint). Raising ``N`` later adds trials to the same search.
``tuning.json`` in the output folder holds every row's space, trials (settings, validation
score, seconds) and choice; ``results.md`` shows the choices.

Cost: ``N`` trainings per row before the ``len(seeds)`` runs per row of an untuned benchmark.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

from rankloss._io import atomic_write_json
from rankloss.bench.runner import (
    BenchmarkRunner,
    BenchWarning,
    RunContext,
    RunResult,
    SkipRun,
    _locked,
    diverged,
)
from rankloss.bench.suites import TASK_SETTINGS, LossSpec, SuiteSpec

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: no lock
    fcntl = None  # type: ignore[assignment]

__all__ = [
    "Tuner",
    "TUNING_NAME",
    "STARTUP_TRIALS",
    "check_space",
    "row_space",
    "apply_setting",
    "row_defaults",
    "optuna_available",
    "read_tuning",
]

#: The file holding every tuned row's search (in the output folder).
TUNING_NAME = "tuning.json"
#: Trials TPE samples at random (seeded) before it models the finished ones; fixed, so a search
#: with more trials starts with the same trials as one with fewer.
STARTUP_TRIALS = 5
#: Where a dimension's value goes: the suite's ``budget`` or the row's ``hyper``.
_TARGETS = ("budget", "hyper")


def optuna_available() -> bool:
    """Whether Optuna (in the ``bench`` extra) can be imported."""
    import importlib.util

    return importlib.util.find_spec("optuna") is not None


def check_space(where: str, space: Mapping[str, Any]) -> None:
    """Check a search space: every dimension one of ``("log", low, high)`` with
    ``0 < low < high``, ``("float", low, high)`` with ``low < high``, ``("int", low, high)``
    with integers ``low <= high``, or ``("choice", (a, b, ...))`` of at least one value
    (strings, numbers, booleans or ``None``). Raises ``ValueError`` naming ``where`` and the
    dimension."""

    def number(value: object) -> bool:
        return isinstance(value, (int, float)) and not isinstance(value, bool)

    for name, dim in space.items():
        bad = f"{where}: search dimension {name!r} must be"
        if not isinstance(dim, (tuple, list)) or not dim:
            raise ValueError(f"{bad} a tuple such as ('log', 1e-4, 1e-2), got {dim!r}")
        kind = dim[0]
        if kind in ("log", "float", "int"):
            if len(dim) != 3 or not number(dim[1]) or not number(dim[2]):
                raise ValueError(f"{bad} ({kind!r}, low, high) with numbers, got {dim!r}")
            low, high = dim[1], dim[2]
            if not (math.isfinite(low) and math.isfinite(high)):
                raise ValueError(f"{bad} finite, got {dim!r}")
            if kind == "int" and not (isinstance(low, int) and isinstance(high, int)):
                raise ValueError(f"{bad} ('int', low, high) with integers, got {dim!r}")
            if kind == "int" and low > high or kind != "int" and not low < high:
                raise ValueError(f"{bad} a range with low < high, got {dim!r}")
            if kind == "log" and low <= 0:
                raise ValueError(f"{bad} ('log', low, high) with low > 0, got {dim!r}")
        elif kind == "choice":
            choices = dim[1] if len(dim) == 2 else None
            if not isinstance(choices, (tuple, list)) or not choices:
                raise ValueError(f"{bad} ('choice', (a, b, ...)) with a value, got {dim!r}")
            for value in choices:
                if value is not None and not isinstance(value, (str, int, float, bool)):
                    raise ValueError(f"{bad} a choice of str, number, bool or None, got {dim!r}")
        else:
            raise ValueError(f"{bad} of kind 'log', 'float', 'int' or 'choice', got {dim!r}")


def row_space(suite: SuiteSpec, row: LossSpec) -> dict[str, dict[str, tuple[Any, ...]]]:
    """The search space of one row: ``{"budget": {...}, "hyper": {...}}``.

    A row that trains a loss: the task's dimensions (budget) and the loss's (hyper); a
    baseline that trains none: its own dimensions (hyper), if its task gives any.
    """
    from rankloss.losses import LOSSES

    settings = TASK_SETTINGS[suite.task]
    if row.name in settings.baselines and settings.baselines[row.name] is None:
        hyper = dict(settings.baseline_search_spaces.get(row.name, {}))
        budget: dict[str, tuple[Any, ...]] = {}
    else:
        loss = settings.baselines.get(row.name) or row.name
        info = LOSSES.entry(loss).meta["info"] if loss in LOSSES else None
        hyper = dict(info.search_space) if info is not None else {}
        budget = dict(settings.search_space)
        # A row option in a mode's words ("in_batch" negatives) is what the row compares:
        # the search leaves it alone.
        budget = {
            k: v
            for k, v in budget.items()
            if not (k in row.options and isinstance(row.options[k], str))
        }
    where = f"suite {suite.name!r}: row {row.label!r}"
    check_space(where, budget)
    check_space(where, hyper)
    return {"budget": budget, "hyper": hyper}


def apply_setting(suite: SuiteSpec, row: LossSpec, setting: Mapping[str, Any]) -> SuiteSpec:
    """A one-row copy of ``suite`` whose budget and row's hyper-parameters take ``setting``
    (``{"budget": {...}, "hyper": {...}}``).

    A budget value the row overrides in its ``options`` (a recsys row's ``negatives`` or
    ``temperature``) is written into the row's options, so the searched value is the one
    that trains.
    """
    budget = dict(setting.get("budget", {}))
    in_options = {k: budget.pop(k) for k in list(budget) if k in row.options}
    tuned = replace(
        row,
        hyper={**row.hyper, **setting.get("hyper", {})},
        options={**row.options, **in_options},
    )
    return replace(suite, losses=(tuned,), budget={**suite.budget, **budget})


def _distributions(space: Mapping[str, Mapping[str, tuple[Any, ...]]]) -> dict[str, Any]:
    """Optuna distributions by parameter name (``budget/lr``, ``hyper/temperature``)."""
    from optuna.distributions import (
        CategoricalDistribution,
        FloatDistribution,
        IntDistribution,
    )

    out: dict[str, Any] = {}
    for target in _TARGETS:
        for name, dim in space[target].items():
            kind = dim[0]
            if kind == "choice":
                out[f"{target}/{name}"] = CategoricalDistribution(list(dim[1]))
            elif kind == "int":
                out[f"{target}/{name}"] = IntDistribution(int(dim[1]), int(dim[2]))
            else:
                out[f"{target}/{name}"] = FloatDistribution(
                    float(dim[1]), float(dim[2]), log=kind == "log"
                )
    return out


def _setting(params: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    setting: dict[str, dict[str, Any]] = {target: {} for target in _TARGETS}
    for key, value in params.items():
        target, name = key.split("/", 1)
        setting[target][name] = value
    return setting


def _sampler_seed(key: str, number: int) -> int:
    return int(hashlib.sha256(f"{key}:{number}".encode()).hexdigest()[:8], 16)


@contextmanager
def _quiet_optuna() -> Iterator[Any]:
    """Optuna, with its INFO lines ("A new study created ...") silenced for the block."""
    import optuna

    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        yield optuna
    finally:
        optuna.logging.set_verbosity(verbosity)


def _in_space(dim: tuple[Any, ...], value: object) -> bool:
    """Whether ``value`` is a point of the search dimension ``dim``."""
    if dim[0] == "choice":
        return any(value == option and type(value) is type(option) for option in dim[1])
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    if dim[0] == "int" and not (isinstance(value, int) or float(value).is_integer()):
        return False
    return float(dim[1]) <= float(value) <= float(dim[2])


def _as_point(dim: tuple[Any, ...], value: Any) -> Any:
    """``value`` in the type of the dimension's distribution (``4`` -> ``4.0`` for a float)."""
    if dim[0] == "int":
        return int(value)
    return value if dim[0] == "choice" else float(value)


def row_defaults(suite: SuiteSpec, row: LossSpec, space: Mapping[str, Any]) -> dict[str, Any]:
    """The row's own value of each searched dimension that has one inside the space, by
    Optuna parameter name (``budget/lr``, ``hyper/temperature``): trial 0's setting.

    A budget dimension takes the row's ``options`` value (the task reads it there first),
    else the suite's ``budget`` value; a loss dimension the row's ``hyper`` value, else the
    baseline's own default (:attr:`~rankloss.bench.suites.TaskSettings.baseline_defaults`,
    e.g. LightGBM's), else the default of the loss's constructor. A dimension with no such
    value, or one outside the space, is left to the sampler.
    """
    import inspect

    from rankloss.losses import LOSSES

    settings = TASK_SETTINGS[suite.task]
    loss = settings.baselines.get(row.name) or row.name
    own = settings.baseline_defaults.get(row.name, {})  # a baseline that trains no loss
    signature: Mapping[str, inspect.Parameter] = {}
    if loss in LOSSES:
        try:
            signature = inspect.signature(LOSSES.entry(loss).obj).parameters
        except (TypeError, ValueError):  # pragma: no cover - a builtin without a signature
            signature = {}
    out: dict[str, Any] = {}
    for name, dim in space.get("budget", {}).items():
        value = row.options.get(name, suite.budget.get(name))
        if _in_space(dim, value):
            out[f"budget/{name}"] = _as_point(dim, value)
    for name, dim in space.get("hyper", {}).items():
        if name in row.hyper:
            value = row.hyper[name]
        elif name in own:
            value = own[name]
        elif name in signature and signature[name].default is not inspect.Parameter.empty:
            value = signature[name].default
        else:
            continue
        if _in_space(dim, value):
            out[f"hyper/{name}"] = _as_point(dim, value)
    return out


def _ask(
    key: str,
    number: int,
    done: Sequence[dict[str, Any]],
    space: dict[str, Any],
    defaults: Mapping[str, Any] | None = None,
) -> dict:
    """The setting of trial ``number``: TPE, seeded from ``(key, number)``, given ``done``;
    trial 0 takes ``defaults`` (the row's own values) where given."""
    with _quiet_optuna() as optuna:
        distributions = _distributions(space)
        sampler = optuna.samplers.TPESampler(
            seed=_sampler_seed(key, number), n_startup_trials=STARTUP_TRIALS
        )
        study = optuna.create_study(direction="maximize", sampler=sampler)
        for trial in done:
            complete = trial["value"] is not None
            study.add_trial(
                optuna.trial.create_trial(
                    params=trial["params"],
                    distributions=distributions,
                    value=trial["value"] if complete else None,
                    state=optuna.trial.TrialState.COMPLETE
                    if complete
                    else optuna.trial.TrialState.FAIL,
                )
            )
        if number == 0 and defaults:
            study.enqueue_trial(dict(defaults))
        return dict(study.ask(distributions).params)


def _objective(suite: SuiteSpec, result: RunResult) -> float | None:
    """The trial's validation score (``None`` when not finite: a failed trial)."""
    primary = suite.primary
    if primary in result.validation:
        value = float(result.validation[primary])
    else:
        raise KeyError(
            f"suite {suite.name!r}: task {suite.task!r} reports no validation {primary!r} "
            f"(RunResult.validation holds {sorted(result.validation)}); a tuned benchmark "
            "selects on the validation split, never on the test split"
        )
    return value if math.isfinite(value) else None


def _format(setting: Mapping[str, Mapping[str, Any]]) -> str:
    parts = []
    for target in _TARGETS:
        for name, value in setting.get(target, {}).items():
            parts.append(f"{name}={value:.4g}" if isinstance(value, float) else f"{name}={value}")
    return ", ".join(parts)


class Tuner:
    """Tunes every row of some suites with ``trials`` seeded TPE trials each.

    Args:
        runner: the benchmark's runner (its tasks, seeds, device, output folder and data set
            resolver are used; the first seed trains every trial).
        trials: the number of trials of every row (``>= 1``).
        log: where one line per trial goes.

    After :meth:`tune`, :attr:`entries` holds each row's ``tuning.json`` entry.
    """

    def __init__(
        self,
        runner: BenchmarkRunner,
        trials: int,
        *,
        log: Callable[[str], None] = print,
    ) -> None:
        from rankloss._core import params

        self.trials = params.positive_int("Tuner", "trials", trials)
        if not optuna_available():
            raise ImportError("tuning needs optuna: pip install 'rankloss[bench]'")
        self.runner = runner
        self.log = log
        self.seed = runner.seeds[0]
        self.path = runner.out / TUNING_NAME
        self.entries: list[dict[str, Any]] = []

    def tune(self, suites: Sequence[SuiteSpec]) -> list[SuiteSpec]:
        """Tune every row of ``suites``; return one one-row suite per row with the chosen
        setting (the row as it is when nothing is tuned), in order, for
        :meth:`BenchmarkRunner.run`. ``tuning.json`` is updated after every row."""
        self.entries = []
        tuned: list[SuiteSpec] = []
        for suite in suites:
            dataset = self.runner.resolve(suite)
            for row in suite.losses:
                entry = self._tune_row(suite, row, dataset)
                self.entries.append(entry)
                self._write(entry)
                if entry["status"] == "skipped":
                    continue
                best = entry["best"]
                tuned.append(apply_setting(suite, row, best["setting"] if best else {}))
        return tuned

    # ------------------------------------------------------------------------------ one row
    def _key(self, suite: SuiteSpec, row: LossSpec, dataset: str, space: dict[str, Any]) -> str:
        return SuiteSpec.config_hash(
            {
                "tuning": suite.run_config(row, dataset),
                "space": {t: {n: list(d) for n, d in space[t].items()} for t in _TARGETS},
                "seed": self.seed,
                "sampler": f"tpe/startup={STARTUP_TRIALS}/defaults-first",
            }
        )

    def _tune_row(self, suite: SuiteSpec, row: LossSpec, dataset: str) -> dict[str, Any]:
        space = row_space(suite, row)
        key = self._key(suite, row, dataset, space)
        entry: dict[str, Any] = {
            "suite": suite.name,
            "dataset": dataset,
            "row": row.label,
            "loss": row.name,
            "key": key,
            "primary": suite.primary,
            "seed": self.seed,
            "trials_requested": self.trials,
            "space": {t: {n: list(d) for n, d in space[t].items()} for t in _TARGETS},
            "trials": [],
            "best": None,
            "status": "tuned",
            "note": "",
        }
        if not space["budget"] and not space["hyper"]:
            entry["status"] = "nothing to tune"
            return entry
        folder = self.runner.out / "tuning" / f"{suite.name}-{key}"
        folder.mkdir(parents=True, exist_ok=True)
        with open(folder / ".tune.lock", "a+b") as handle:
            if fcntl is not None:  # another process tuning this row: wait, then reuse its trials
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            try:
                done = _read_trials(folder)
                if len(done) >= self.trials:
                    done = done[: self.trials]
                else:
                    self.log(
                        f"tuning {suite.name}: {row.label}: "
                        + (f"resuming after {len(done)} of " if done else "")
                        + f"{self.trials} trials"
                    )
                for number in range(len(done), self.trials):
                    trial = self._trial(suite, row, dataset, key, number, done, space, folder)
                    if isinstance(trial, str):  # the task skips the row: say why
                        entry["status"], entry["note"] = "skipped", trial
                        break
                    done.append(trial)
            finally:
                if fcntl is not None:
                    fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
        entry["trials"] = done
        if entry["status"] == "skipped":
            return entry
        complete = [t for t in done if t["value"] is not None]
        if complete:
            best = max(complete, key=lambda t: (t["value"], -t["number"]))
            entry["best"] = {
                "number": best["number"],
                "value": best["value"],
                "setting": best["setting"],
            }
        else:
            entry["status"] = "no successful trial"
            entry["note"] = "every trial failed (non-finite validation score); defaults used"
        seconds = [t["seconds"] for t in done]
        entry["seconds_per_trial"] = sum(seconds) / len(seconds) if seconds else None
        return entry

    def _trial(
        self,
        suite: SuiteSpec,
        row: LossSpec,
        dataset: str,
        key: str,
        number: int,
        done: list[dict[str, Any]],
        space: dict[str, Any],
        folder: Path,
    ) -> dict[str, Any] | str:
        """Run trial ``number`` and write its record; the reason when the task skips the row."""
        params = _ask(key, number, done, space, row_defaults(suite, row, space))
        setting = _setting(params)
        trial_suite = apply_setting(suite, row, setting)
        context = RunContext(
            trial_suite,
            trial_suite.losses[0],
            dataset,
            self.seed,
            self.runner.device,
            folder / f"trial-{number:04d}",
            False,
        )
        start = time.perf_counter()
        try:
            result = self.runner.tasks[suite.task](context)
        except SkipRun as reason:
            self.log(f"{suite.name}: skipping {row.label!r}: {reason}")
            return str(reason)
        except FloatingPointError as error:  # a diverging setting: a failed trial
            result = diverged(suite, error)
            result.validation = {suite.primary: math.nan}
        # A trial resumed from its checkpoint counts the interrupted process's epochs too.
        seconds = time.perf_counter() - start + result.earlier_seconds
        value = _objective(suite, result)
        record = {
            "number": number,
            "params": params,
            "setting": setting,
            "value": value,
            "state": "complete" if value is not None else "fail",
            "validation": {k: float(v) for k, v in result.validation.items()},
            "seconds": round(seconds, 3),
            "seed": self.seed,
            "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        atomic_write_json(folder / f"trial-{number:04d}.json", record)
        shown = f"{value:.4f}" if value is not None else "failed (not finite)"
        self.log(
            f"tuning {suite.name}: {row.label} trial {number + 1}/{self.trials}: validation "
            f"{suite.primary}={shown} in {seconds:.1f} s ({_format(setting)})"
        )
        return record

    # ------------------------------------------------------------------------- tuning.json
    def _write(self, entry: dict[str, Any]) -> None:
        """Merge ``entry`` into ``tuning.json`` (under the output folder's lock)."""
        with _locked(self.runner.out):
            rows = read_tuning(self.path)
            rows = [r for r in rows if r.get("key") != entry["key"]] + [entry]
            atomic_write_json(self.path, {"rows": rows})


def _read_trials(folder: Path) -> list[dict[str, Any]]:
    """The finished trials of a row, ``0, 1, ...`` up to the first one missing."""
    trials = []
    for number in range(1_000_000):
        path = folder / f"trial-{number:04d}.json"
        if not path.exists():
            break
        try:
            record = json.loads(path.read_bytes().decode("utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            break  # an unreadable trial is run again (it was written atomically: rare)
        if not isinstance(record, dict) or record.get("number") != number:
            break
        trials.append(record)
    return trials


def read_tuning(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The rows of a ``tuning.json`` (empty when there is none). A file that is not one is
    moved aside to ``tuning.json.corrupt-<timestamp>`` with a :class:`BenchWarning` (its
    trials are still in ``tuning/``, and are read again when the rows are tuned)."""
    path = Path(path)
    if not path.exists():
        return []
    try:
        data = json.loads(path.read_bytes().decode("utf-8"))
        rows = data["rows"] if isinstance(data, dict) else None
        if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
            raise ValueError("not a rankloss tuning file")
        return rows
    except (UnicodeDecodeError, json.JSONDecodeError, KeyError, ValueError) as error:
        aside = path.with_name(f"{path.name}.corrupt-{time.strftime('%Y%m%dT%H%M%S')}")
        os.replace(path, aside)
        warnings.warn(f"{path}: {error}; moved it to {aside.name}", BenchWarning, stacklevel=2)
        return []

"""Read a benchmark configuration from TOML.

Example (``bench.toml``)::

    [bench]
    seeds = [0, 1, 2]      # optional
    device = "cpu"         # optional
    out = "bench-out"      # optional
    tune = 20              # optional: seeded TPE trials per row (rankloss bench --tune)

    [[suite]]
    name = "my-ltr"
    base = "ltr"                 # start from a built-in suite (optional)
    dataset = "mslr10k-sample"
    metrics = ["ndcg@10", "map"]
    budget = { epochs = 10, lr = 0.001 }
    model = { hidden = [64] }

    [[suite.loss]]
    label = "ranknet sigma=2"
    name = "ranknet"
    hyper = { sigma = 2.0 }

A suite's ``dataset`` is a registered data set's name, or a table naming the user's own
files and their format (paths relative to this file)::

    dataset = { path = "train.svmlight", format = "svmlight", test = "test.svmlight" }
    dataset = { path = "ratings.csv", format = "interactions", feedback = "graded" }

Formats (:data:`rankloss.data.formats.FORMATS`): ``svmlight``, ``table`` and ``trec`` for
``ltr`` suites, ``interactions`` for ``recsys``, ``vectors`` for ``retrieval`` and
``imbalanced``. The files are parsed (or read from the content-hash cache) when this file is
read, so a malformed line fails here, as ``file:line: message``, before anything trains.

A suite without ``base`` must give ``task``, ``dataset``, ``metrics`` and at least one loss.
Every key is checked, the ``budget`` and ``model`` tables and each loss's ``options`` against
what the suite's task reads (:data:`rankloss.bench.suites.TASK_SETTINGS`): an unknown key is an
error that names the file, the suite, the table and the valid keys. ``[bench]`` values are
checked too: ``seeds`` is a non-empty list of distinct integers >= 0, ``device`` one of
``"cpu"``, ``"cuda"``, ``"auto"``, ``out`` a folder name, ``tune`` an integer >= 1. Every
loss is built with its ``hyper`` table when the file is read, so a bad hyper-parameter fails
before anything trains, in the loss's own words (``"RankNetLoss: sigma must be > 0, got
-1.0"``), with the file named.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence, Set
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rankloss._core import params
from rankloss.bench.suites import (
    SUITES,
    TASK_SETTINGS,
    LossSpec,
    SuiteSpec,
    check_image_range,
    check_recsys_splits,
    check_suite,
    check_suite_names,
    check_vector_augment,
    recsys_data_options,
    resolve_suites,
)

if TYPE_CHECKING:
    from rankloss.data.formats import DataSource

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

__all__ = ["BenchConfig", "load_config", "own_data_suite"]

_SUITE_KEYS = {
    "name",
    "base",
    "task",
    "dataset",
    "fallbacks",
    "metrics",
    "budget",
    "model",
    "loss",
    "primary",
    "description",
}
_LOSS_KEYS = {"label", "name", "hyper", "options"}
_BENCH_KEYS = {"seeds", "device", "out", "suites", "tune"}
#: What ``[bench] device`` may be (as ``rankloss bench --device``).
DEVICES = ("cpu", "cuda", "auto")


@dataclass
class BenchConfig:
    suites: list[SuiteSpec]
    seeds: list[int] | None = None
    device: str | None = None
    out: str | None = None
    tune: int | None = None


def _check_keys(where: str, table: dict[str, Any], allowed: Set[str]) -> None:
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {unknown}; allowed: {sorted(allowed)}")


def _table(where: str, table: dict[str, Any], key: str) -> dict[str, Any]:
    """``table[key]`` (default empty), which must be a TOML table."""
    value = table.get(key, {})
    if not isinstance(value, dict):
        raise ValueError(f"{where}: '{key}' must be a table, got {value!r}")
    return value


def _loss(where: str, table: dict[str, Any]) -> LossSpec:
    _check_keys(where, table, _LOSS_KEYS)
    if "name" not in table:
        raise ValueError(f"{where}: a loss needs a 'name'")
    return LossSpec(
        label=str(table.get("label", table["name"])),
        name=str(table["name"]),
        hyper=dict(_table(where, table, "hyper")),
        options=dict(_table(where, table, "options")),
    )


def _task(where: str, table: dict[str, Any], base: SuiteSpec | None) -> str:
    task = table.get("task", base.task if base is not None else None)
    if task is None:
        raise ValueError(f"{where}: needs 'task' (or a 'base' suite)")
    if task not in TASK_SETTINGS:
        raise ValueError(f"{where}: unknown task {task!r}; known: {', '.join(TASK_SETTINGS)}")
    return str(task)


def _suite(path: Path, index: int, table: dict[str, Any]) -> SuiteSpec:
    name = table.get("name", f"suite{index}")
    where = f"{path}: [[suite]] {name!r}"
    _check_keys(where, table, _SUITE_KEYS)
    base_name = table.get("base")
    base: SuiteSpec | None = None
    if base_name is not None:
        if base_name not in SUITES:
            raise ValueError(
                f"{where}: unknown base suite {base_name!r}; known: {', '.join(SUITES)}"
            )
        base = SUITES[base_name]
    task = _task(where, table, base)
    settings = TASK_SETTINGS[task]
    own = isinstance(table.get("dataset"), dict)
    if own and "fallbacks" in table:
        raise ValueError(f"{where}: 'fallbacks' apply to registered data sets, not to files")
    metrics = table.get("metrics", [])
    if not isinstance(metrics, list) or (
        "metrics" in table and (not metrics or not all(isinstance(m, str) for m in metrics))
    ):
        raise ValueError(
            f"{where}: metrics must be a non-empty list of metric names such as "
            f'["ndcg@10", "map"], got {metrics!r}'
        )
    budget = _table(where, table, "budget")
    model = _table(where, table, "model")
    _check_keys(f"{where} budget", budget, settings.budget)
    _check_keys(f"{where} model", model, settings.model)
    losses = tuple(_loss(f"{where} loss {i}", t) for i, t in enumerate(table.get("loss", [])))
    for i, loss in enumerate(losses):
        _check_keys(f"{where} loss {i} options", loss.options, settings.options)
    if base is not None:
        suite = replace(
            base,
            name=name,
            task=task,
            dataset=table.get("dataset", base.dataset),
            fallbacks=() if own else tuple(table.get("fallbacks", base.fallbacks)),
            losses=losses or base.losses,
            metrics=tuple(table.get("metrics", base.metrics)),
            budget={**base.budget, **budget},
            model={**base.model, **model},
            primary=table.get("primary", base.primary),
            description=table.get("description", base.description),
        )
    else:
        for key in ("dataset", "metrics"):
            if key not in table:
                raise ValueError(f"{where}: needs '{key}' (or a 'base' suite)")
        if not losses:
            raise ValueError(f"{where}: needs at least one [[suite.loss]]")
        suite = SuiteSpec(
            name=name,
            task=task,
            dataset=table["dataset"],
            fallbacks=tuple(table.get("fallbacks", ())),
            losses=losses,
            metrics=tuple(table["metrics"]),
            budget=dict(budget),
            model=dict(model),
            primary=table.get("primary", table["metrics"][0]),
            description=table.get("description", ""),
        )
    if own:
        source = _source(f"{where} dataset", table["dataset"], path.parent)
        suite = _with_own_data(where, suite, source)
    elif not isinstance(suite.dataset, str):
        raise ValueError(
            f"{where}: dataset must be a data set's name or a table "
            f"{{ path = ..., format = ... }}, got {suite.dataset!r}"
        )
    try:
        check_suite(suite)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{path}: {error}") from None
    return suite


def _source(where: str, table: dict[str, Any], base: Path) -> DataSource:
    from rankloss.data.formats import data_source

    return data_source(table, base=base, where=where)


#: The options each task's runner loads its data set with (``rankloss.bench.tasks``), so that
#: the check at load time parses (and caches) the very data set the runs read.
_TASK_LOAD_OPTIONS: dict[str, Callable[[str, SuiteSpec], dict[str, Any]]] = {
    "ltr": lambda where, suite: {"normalize": suite.budget.get("list_normalize")},
    "recsys": lambda where, suite: recsys_data_options(f"{where}: budget", suite.budget),
}


def _with_own_data(where: str, suite: SuiteSpec, source: DataSource) -> SuiteSpec:
    """``suite`` on the user's files: the format must serve the suite's task, and the files
    are parsed now (or read from the cache), so a malformed line fails before any training.

    A ``retrieval`` suite without ``train_classes`` in its budget trains on the first 60% of
    the classes (in label order, at least one) and retrieves the others. On flat vectors
    ``[N, f]`` its budget's ``augment`` must be ``true`` or ``false`` (a table of image
    settings is refused).
    """
    from rankloss.data.formats import FORMAT_TASKS

    tasks = FORMAT_TASKS[source.format]
    if suite.task not in tasks:
        raise ValueError(
            f"{where}: format {source.format!r} is data for task(s) {list(tasks)}, "
            f"not for {suite.task!r}"
        )
    options = _TASK_LOAD_OPTIONS.get(suite.task, lambda where, suite: {})(where, suite)
    try:
        data = source.load(**options)
    except (ValueError, TypeError, OSError) as error:
        raise ValueError(f"{where}: dataset: {error}") from None
    if suite.task == "recsys":
        check_recsys_splits(f"{where}: dataset", data, {**options, **source.options})
    if suite.task == "retrieval" and "train_classes" not in suite.budget:
        classes = data.num_classes
        if classes < 2:
            raise ValueError(f"{where}: dataset: retrieval needs 2 classes or more, got {classes}")
        train_classes = min(classes - 1, max(1, round(0.6 * classes)))
        suite = suite.with_budget(train_classes=train_classes)
    if suite.task == "retrieval" and data.train.x.dim() != 4:
        check_vector_augment(f"{where}: budget", suite.budget.get("augment"), data.train.x.shape)
    elif suite.task == "retrieval":
        augmented = suite.budget.get("augment", False) is not False
        if augmented or any(row.options.get("views") for row in suite.losses):
            check_image_range(f"{where}: dataset", data.train.x)
    return replace(suite, dataset=source.spec(), fallbacks=())


#: The tasks ``rankloss bench --data`` runs (each the built-in suite of that name).
OWN_DATA_TASKS = ("ltr", "recsys", "retrieval")


def own_data_suite(
    path: str | Path,
    data_format: str,
    task: str | None = None,
    losses: Sequence[str] = (),
) -> SuiteSpec:
    """The default suite of ``task`` (``ltr``, ``recsys`` or ``retrieval``: the built-in
    suites of those names) run on the user's file ``path`` in ``data_format`` (``rankloss
    bench --data PATH --data-format FORMAT --task TASK [--loss NAME ...]``).

    ``task`` defaults to the task the format serves (``svmlight``, ``table``, ``trec`` ->
    ``ltr``; ``interactions`` -> ``recsys``; ``vectors`` -> ``retrieval``). ``losses``
    replace the suite's rows by those registered losses, with their default
    hyper-parameters. The file is parsed (or read from the cache) here.

    Raises:
        ValueError: an unknown format or task, a format that does not serve the task, a
            missing file, or a malformed line (``file:line: message``).
    """
    from rankloss.data.formats import FORMAT_TASKS, FORMATS

    where = "--data"
    if data_format not in FORMAT_TASKS:
        raise ValueError(
            f"--data-format: unknown format {data_format!r}; known: {', '.join(FORMAT_TASKS)}"
        )
    others = [role for role in FORMATS[data_format].required if role != "path"]
    if others:
        raise ValueError(
            f"--data-format {data_format} needs a {', '.join(map(repr, others))} file too: "
            "give the files in a --config file's dataset table"
        )
    if task is None:
        task = next(t for t in FORMAT_TASKS[data_format] if t in OWN_DATA_TASKS)
    if task not in OWN_DATA_TASKS:
        raise ValueError(f"--task must be one of {list(OWN_DATA_TASKS)}, got {task!r}")
    source = _source(where, {"format": data_format, "path": str(path)}, Path.cwd())
    suite = replace(SUITES[task], name=f"{task}-own-data")
    if losses:
        suite = replace(suite, losses=tuple(LossSpec(name, name) for name in losses))
    suite = _with_own_data(where, suite, source)
    check_suite(suite)
    return suite


def _seeds(where: str, value: object) -> list[int]:
    """A non-empty list of distinct integers >= 0."""
    allowed = "a non-empty list of distinct integers >= 0"
    if not isinstance(value, list) or not value:
        raise ValueError(f"{where}: seeds must be {allowed}, got {value!r}")
    for i, seed in enumerate(value):
        try:
            params.nonnegative_int(where, f"seeds[{i}]", seed)
        except (TypeError, ValueError):
            raise ValueError(f"{where}: seeds must be {allowed}, got {value!r}") from None
    if len(set(value)) != len(value):
        raise ValueError(f"{where}: seeds must be {allowed}, got {value!r} (a repeated seed)")
    return list(value)


def _bench(path: Path, bench: object) -> tuple[list[int] | None, str | None, str | None]:
    """The checked ``seeds``, ``device`` and ``out`` of the ``[bench]`` table."""
    where = f"{path}: [bench]"
    if not isinstance(bench, dict):
        raise ValueError(f"{path}: 'bench' must be a table, got {bench!r}")
    _check_keys(where, bench, _BENCH_KEYS)
    seeds = _seeds(where, bench["seeds"]) if "seeds" in bench else None
    device = bench.get("device")
    if device is not None:
        try:
            params.choice(where, "device", device, DEVICES)
        except TypeError:
            raise ValueError(
                f"{where}: device must be one of {list(DEVICES)}, got {device!r}"
            ) from None
    out = bench.get("out")
    if out is not None and (not isinstance(out, str) or not out):
        raise ValueError(f"{where}: out must be a folder name (a non-empty string), got {out!r}")
    if "tune" in bench:
        try:
            params.positive_int(where, "tune", bench["tune"])
        except TypeError as error:
            raise ValueError(str(error)) from None
    names = bench.get("suites", [])
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise ValueError(f"{where}: suites must be a list of suite or group names, got {names!r}")
    return seeds, device, out


def load_config(path: str | Path) -> BenchConfig:
    """Parse and check ``path``; every error is a ``ValueError`` that names the file, the
    suite and the key (or the loss, in its own words)."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ValueError(f"{path}: no such file") from None
    except tomllib.TOMLDecodeError as error:
        raise ValueError(f"{path}: {error}") from None
    except UnicodeDecodeError as error:
        raise ValueError(f"{path}: not UTF-8 text ({error})") from None
    except OSError as error:
        raise ValueError(f"{path}: cannot be read ({error.strerror})") from None
    _check_keys(str(path), data, {"bench", "suite"})
    bench = data.get("bench", {})
    seeds, device, out = _bench(path, bench)
    tables = data.get("suite", [])
    if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
        raise ValueError(f"{path}: 'suite' must be an array of tables ([[suite]]), got {tables!r}")
    suites = [_suite(path, i, t) for i, t in enumerate(tables)]
    try:
        suites += resolve_suites(bench.get("suites", []))  # names or groups, as on the CLI
    except KeyError as error:
        raise ValueError(f"{path}: [bench] suites: {error.args[0]}") from None
    if not suites:
        raise ValueError(f"{path}: no suites: add [[suite]] tables or [bench] suites = [...]")
    try:
        check_suite_names(suites)
    except ValueError as error:
        raise ValueError(f"{path}: {error}") from None
    return BenchConfig(suites, seeds, device, out, bench.get("tune"))

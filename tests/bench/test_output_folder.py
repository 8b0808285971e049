"""The bench's output folder: per-run records, a corrupt ``results.json`` moved aside and
rebuilt, and two processes sharing one ``--out`` without losing runs (tiny fake tasks)."""

from __future__ import annotations

import json
import multiprocessing
import os
import time
from pathlib import Path

import pytest

from rankloss.bench import runner as runner_module
from rankloss.bench import tasks as tasks_module
from rankloss.bench.runner import BenchmarkRunner, RunContext, RunResult
from rankloss.bench.suites import LossSpec, SuiteSpec
from rankloss.cli import main

SUITE = SuiteSpec(
    name="fake",
    task="fake",
    dataset="toy",
    losses=(LossSpec("a", "mse"), LossSpec("b", "ranknet")),
    metrics=("m1",),
    primary="m1",
)


#: The file names are part of the promise (docs/training.md, "Output folder").
RECORD_NAME = "record.json"
LOCK_NAME = ".results.lock"


def _task(ctx: RunContext) -> RunResult:
    return RunResult({"m1": 0.5 + 0.01 * ctx.seed})


def _runner(out: Path, seeds=(0, 1), task=_task) -> BenchmarkRunner:
    return BenchmarkRunner(out, {"fake": task}, seeds=seeds, progress=False, log=lambda _: None)


def _stored(out: Path) -> list[tuple[str, int]]:
    runs = json.loads((out / "results.json").read_text())["runs"]
    return sorted((r["loss"], r["seed"]) for r in runs)


ALL_FOUR = [("a", 0), ("a", 1), ("b", 0), ("b", 1)]


@pytest.mark.badinput("resume")
def test_every_run_has_its_own_record(tmp_path: Path) -> None:
    _runner(tmp_path).run([SUITE])
    records = sorted(tmp_path.glob(f"runs/*/{RECORD_NAME}"))
    assert len(records) == 4
    assert sorted((json.loads(p.read_text())["loss"], json.loads(p.read_text())["seed"])
                  for p in records) == ALL_FOUR  # fmt: skip
    assert (tmp_path / LOCK_NAME).exists()


@pytest.mark.badinput("resume")
@pytest.mark.parametrize(
    "content",
    [
        b"{not json",
        b"",
        b'{"runs": [{"loss": "a"',
        b"\xff\xfe\x00garbage",
        b'{"runs": 3}',
        b"[1, 2, 3]",
        b'{"runs": [{"name": "someone else\'s file"}]}',
    ],
    ids=["not-json", "empty", "torn", "not-utf8", "runs-not-list", "a-list", "foreign-runs"],
)
def test_corrupt_results_file_is_moved_aside_and_rebuilt(tmp_path: Path, content: bytes) -> None:
    _runner(tmp_path).run([SUITE])
    (tmp_path / "results.json").write_bytes(content)
    calls: list = []

    def task(ctx: RunContext) -> RunResult:
        calls.append(ctx.seed)
        return _task(ctx)

    warning = getattr(runner_module, "BenchWarning", None)
    assert warning is not None and issubclass(warning, UserWarning)
    with pytest.warns(warning, match=r"results.json: .*moved it to results.json.corrupt-"):
        runner = _runner(tmp_path, seeds=(0, 1, 2), task=task)
    (aside,) = tmp_path.glob("results.json.corrupt-*")
    assert aside.read_bytes() == content
    assert _stored(tmp_path) == ALL_FOUR  # rebuilt from the per-run records at once
    runs = runner.run([SUITE])
    assert calls == [2, 2]  # only the new seed runs: the finished ones were recovered
    assert len(runs) == 6 and len(_stored(tmp_path)) == 6


@pytest.mark.badinput("resume")
def test_runs_missing_from_results_are_recovered_from_their_records(tmp_path: Path) -> None:
    _runner(tmp_path).run([SUITE])
    data = json.loads((tmp_path / "results.json").read_text())
    data["runs"] = data["runs"][:1]  # as if stopped between writing a record and merging it
    (tmp_path / "results.json").write_text(json.dumps(data))
    calls: list = []
    _runner(tmp_path, task=lambda ctx: calls.append(1) or _task(ctx)).run([SUITE])
    assert calls == [] and _stored(tmp_path) == ALL_FOUR


@pytest.mark.badinput("resume")
def test_cli_warns_on_one_line_and_finishes(tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.setattr(tasks_module, "resolve_dataset", lambda suite: suite.dataset)
    config = tmp_path / "bench.toml"
    config.write_text(
        "[bench]\nseeds = [0]\n[[suite]]\nname = 'x'\nbase = 'quick-ltr'\n"
        "[[suite.loss]]\nname = 'ranknet'\n"
    )
    argv = ["bench", "--config", str(config), "--out", str(tmp_path), "--no-progress", "--no-plots"]
    monkeypatch.setattr(
        tasks_module, "TASKS", {"ltr": lambda ctx: RunResult({m: 0.5 for m in ctx.suite.metrics})}
    )
    assert main(argv) == 0
    (tmp_path / "results.json").write_text("{not json")
    capsys.readouterr()
    assert main(argv) == 0
    captured = capsys.readouterr()
    (line,) = captured.err.strip().splitlines()
    assert line.startswith("rankloss bench: warning: ") and "results.json.corrupt-" in line
    assert "resuming: 1 of 1 runs already" in captured.out
    assert len(json.loads((tmp_path / "results.json").read_text())["runs"]) == 1


def _slow_task(ctx: RunContext) -> RunResult:
    with open(ctx.workdir.parent.parent / "calls.txt", "a") as handle:
        handle.write(f"{os.getpid()} {ctx.loss.label} {ctx.seed}\n")
    time.sleep(0.05)
    return _task(ctx)


def _bench_process(out: str, seeds: tuple[int, ...], start: float) -> None:
    time.sleep(max(0.0, start - time.time()))  # start both at the same moment
    _runner(Path(out), seeds=seeds, task=_slow_task).run([SUITE])


def _two_processes(out: Path, seeds_a: tuple[int, ...], seeds_b: tuple[int, ...]) -> None:
    method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
    context = multiprocessing.get_context(method)
    start = time.time() + 0.3
    procs = [
        context.Process(target=_bench_process, args=(str(out), seeds, start))
        for seeds in (seeds_a, seeds_b)
    ]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(60)
        assert proc.exitcode == 0


@pytest.mark.badinput("bench")
def test_two_processes_on_one_folder_lose_no_runs(tmp_path: Path) -> None:
    # Different seeds: each process writes 4 runs while the other writes too.
    _two_processes(tmp_path, (0, 1, 2, 3), (4, 5, 6, 7))
    assert _stored(tmp_path) == sorted((loss, s) for loss in "ab" for s in range(8))


@pytest.mark.badinput("bench")
def test_two_processes_on_the_same_runs_do_each_once(tmp_path: Path) -> None:
    _two_processes(tmp_path, (0, 1, 2), (0, 1, 2))
    assert _stored(tmp_path) == sorted((loss, s) for loss in "ab" for s in range(3))
    calls = (tmp_path / "calls.txt").read_text().splitlines()
    assert sorted(c.split(" ", 1)[1] for c in calls) == sorted(
        f"{loss} {s}" for loss in "ab" for s in range(3)
    )

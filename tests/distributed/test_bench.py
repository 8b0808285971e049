"""``rankloss bench`` on 2 processes: every rank trains, rank 0 alone writes the results."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from rankloss.bench.cli import torchrun_command
from rankloss.cli import build_parser, main

pytestmark = pytest.mark.skipif(not dist.is_available(), reason="torch.distributed missing")

WORLD = 2

TINY = """
[bench]
seeds = [0]

[[suite]]
name = "tiny-imbalanced"
base = "imbalanced"
budget = { epochs = 1 }
model = { embedding_dim = 16 }

[[suite.loss]]
name = "softmax_ce"
"""


def _entry(rank: int, fn: Callable[..., Any], folder: Path, args: tuple[Any, ...]) -> None:
    torch.set_num_threads(1)
    dist.init_process_group(
        "gloo", init_method=f"file://{folder / 'rendezvous'}", rank=rank, world_size=WORLD
    )
    try:
        torch.save(fn(rank, *args), folder / f"result{rank}.pt")
    finally:
        dist.destroy_process_group()


def run_ranks(fn: Callable[..., Any], folder: Path, *args: Any) -> list[Any]:
    """``fn(rank, *args)`` on 2 forked gloo ranks; their return values in rank order."""
    (folder / "rendezvous").unlink(missing_ok=True)  # a used file store cannot be reused
    mp.start_processes(_entry, (fn, folder, args), nprocs=WORLD, start_method="fork")
    return [torch.load(folder / f"result{r}.pt", weights_only=False) for r in range(WORLD)]


def _bench(rank: int, config: Path, out: Path) -> int:
    argv = ["bench", "--config", str(config), "--out", str(out), "--no-progress", "--no-plots"]
    return main([*argv, "--device", "cpu"])


def test_two_ranks_run_the_suite_and_rank_zero_writes(tmp_path: Path) -> None:
    config = tmp_path / "bench.toml"
    config.write_text(TINY)
    out = tmp_path / "out"
    assert run_ranks(_bench, tmp_path, config, out) == [0, 0]
    runs = json.loads((out / "results.json").read_text())["runs"]
    assert len(runs) == 1 and runs[0]["world_size"] == WORLD
    assert runs[0]["metrics"] and all(v == v for v in runs[0]["metrics"].values())
    assert (out / "results.md").exists()
    # Re-running on 2 ranks finds the run done and trains nothing.
    record = (out / "results.json").read_text()
    assert run_ranks(_bench, tmp_path, config, out) == [0, 0]
    assert json.loads((out / "results.json").read_text()) == json.loads(record)


def test_nproc_builds_a_torchrun_command(tmp_path: Path) -> None:
    args = build_parser().parse_args(
        ["bench", "quick-ltr", "--nproc", "2", "--seeds", "1", "--out", str(tmp_path)]
        + ["--no-plots"]
    )
    assert torchrun_command(args) == [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc-per-node=2",
        "-m",
        "rankloss",
        "bench",
        "quick-ltr",
        "--seeds",
        "1",
        "--out",
        str(tmp_path),
        "--no-plots",
    ]


@pytest.mark.badinput("bench")
def test_nproc_must_be_a_positive_integer(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as error:
        main(["bench", "--nproc", "0"])
    assert error.value.code == 2
    assert "rankloss bench: --nproc must be" in capsys.readouterr().err


def test_nproc_runs_the_suite_under_torchrun(tmp_path: Path) -> None:
    config = tmp_path / "bench.toml"
    config.write_text(TINY)
    out = tmp_path / "out"
    argv = ["bench", "--config", str(config), "--out", str(out), "--no-progress", "--no-plots"]
    assert main([*argv, "--device", "cpu", "--nproc", "2"]) == 0
    runs = json.loads((out / "results.json").read_text())["runs"]
    assert len(runs) == 1 and runs[0]["world_size"] == WORLD

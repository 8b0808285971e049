"""Run a function on several gloo ranks and collect what each rank returns.

``run_on_ranks(fn, tmp_path)`` starts ``world_size`` processes with
:func:`torch.multiprocessing.start_processes` (``spawn``), initialises a gloo process group in
each (a free ``MASTER_PORT``, a 60 s timeout so that a wrong collective fails instead of
hanging), calls ``fn(rank, world_size, *args)``, saves its return value with
:func:`torch.save` to ``tmp_path`` and returns the list of per-rank results, rank 0 first.
An exception on any rank is re-raised in the parent with that rank's traceback.

``fn`` must be a module-level function (it is pickled by reference) and should return
plain Python values or CPU tensors. Start one job and run many checks inside it: starting
processes costs seconds.
"""

from __future__ import annotations

import os
import socket
import traceback
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

__all__ = ["free_port", "run_on_ranks"]

TIMEOUT = timedelta(seconds=60)


def free_port() -> int:
    """A TCP port that is free on localhost now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _worker(
    rank: int,
    world_size: int,
    port: int,
    out_dir: str,
    fn: Callable[..., Any],
    args: tuple[Any, ...],
) -> None:
    os.environ["MASTER_ADDR"] = "127.0.0.1"
    os.environ["MASTER_PORT"] = str(port)
    os.environ["RANK"] = str(rank)
    os.environ["WORLD_SIZE"] = str(world_size)
    os.environ["LOCAL_RANK"] = str(rank)
    torch.set_num_threads(1)
    path = Path(out_dir) / f"rank{rank}.pt"
    dist.init_process_group("gloo", rank=rank, world_size=world_size, timeout=TIMEOUT)
    try:
        result: dict[str, Any] = {"ok": True, "value": fn(rank, world_size, *args)}
    except BaseException:  # noqa: BLE001 - reported to the parent
        result = {"ok": False, "error": traceback.format_exc()}
    finally:
        try:
            dist.destroy_process_group()
        except Exception:  # noqa: BLE001
            pass
    torch.save(result, path)


def run_on_ranks(
    fn: Callable[..., Any],
    tmp_path: Path | str,
    *,
    world_size: int = 2,
    args: tuple[Any, ...] = (),
) -> list[Any]:
    """Run ``fn(rank, world_size, *args)`` on ``world_size`` gloo ranks; return the results.

    Args:
        fn: a module-level function.
        tmp_path: a folder for the per-rank result files (pytest's ``tmp_path``).
        world_size: the number of processes.
        args: extra positional arguments, pickled to every rank.

    Returns:
        ``[result of rank 0, result of rank 1, ...]``.

    Raises:
        RuntimeError: naming each rank that raised, with its traceback.
    """
    out_dir = Path(tmp_path)
    out_dir.mkdir(parents=True, exist_ok=True)
    for rank in range(world_size):
        (out_dir / f"rank{rank}.pt").unlink(missing_ok=True)
    mp.start_processes(
        _worker,
        args=(world_size, free_port(), str(out_dir), fn, args),
        nprocs=world_size,
        join=True,
        start_method="spawn",
    )
    results = [torch.load(out_dir / f"rank{r}.pt", weights_only=False) for r in range(world_size)]
    errors = [f"rank {r}:\n{res['error']}" for r, res in enumerate(results) if not res["ok"]]
    if errors:
        raise RuntimeError("a rank raised:\n" + "\n".join(errors))
    return [res["value"] for res in results]

"""Atomic file writes: a reader sees the old file or the new one, never half of one."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

__all__ = [
    "atomic_write",
    "atomic_write_text",
    "atomic_write_json",
    "atomic_write_keeping_previous",
]


def _file_mode() -> int:
    """The mode ``open()`` would give a new file: ``0o666`` less the process umask."""
    mask = os.umask(0o022)  # read the umask (there is no other portable way) and restore it
    os.umask(mask)
    return 0o666 & ~mask


def atomic_write(path: str | os.PathLike[str], write: Callable[[IO[bytes]], Any]) -> Path:
    """Call ``write(file)`` on a temporary file beside ``path``, then rename it over ``path``.

    The data is flushed and fsynced before the rename, so an interrupted process leaves either
    the previous file or the complete new one. The file gets the mode a plain ``open()`` would
    give it (``0o644`` under the usual umask ``022``), not the private ``0o600`` of a
    temporary file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fchmod(handle.fileno(), _file_mode())
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_text(path: str | os.PathLike[str], text: str) -> Path:
    return atomic_write(path, lambda handle: handle.write(text.encode("utf-8")))


def atomic_write_json(path: str | os.PathLike[str], data: Any) -> Path:
    text = json.dumps(data, indent=2, sort_keys=False, default=str) + "\n"
    return atomic_write_text(path, text)


def atomic_write_keeping_previous(
    path: str | os.PathLike[str],
    write: Callable[[IO[bytes]], Any],
    previous: str | os.PathLike[str],
) -> Path:
    """Like :func:`atomic_write`, and the file ``path`` held before is kept as ``previous``.

    The new data is written and fsynced beside ``path`` first; only then is the old ``path``
    renamed to ``previous`` and the new file renamed to ``path``. An interrupted process leaves
    a complete ``path`` or a complete ``previous`` (between the two renames only ``previous``);
    never a half-written file under either name.
    """
    path = Path(path)
    staging = path.with_name(f".{path.name}.new")
    atomic_write(staging, write)
    if path.exists():
        os.replace(path, previous)
    os.replace(staging, path)
    return path

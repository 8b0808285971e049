"""Atomic writes leave complete files with the mode a plain ``open()`` gives."""

from __future__ import annotations

import os
import stat

import pytest

from rankloss._io import atomic_write_json, atomic_write_keeping_previous, atomic_write_text


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_written_files_are_readable_by_group_and_others(tmp_path, umask_022):
    text = atomic_write_text(tmp_path / "a.txt", "x")
    data = atomic_write_json(tmp_path / "sub" / "r.json", {"a": 1})
    kept = atomic_write_keeping_previous(tmp_path / "c.pt", lambda h: h.write(b"1"), tmp_path / "p")
    for path in (text, data, kept):
        assert _mode(path) == 0o644, (path, oct(_mode(path)))
    assert (tmp_path / "sub" / "r.json").read_text() == '{\n  "a": 1\n}\n'


def test_mode_follows_the_umask(tmp_path):
    old = os.umask(0o077)
    try:
        path = atomic_write_text(tmp_path / "private.txt", "x")
    finally:
        os.umask(old)
    assert _mode(path) == 0o600


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    target = atomic_write_text(tmp_path / "r.txt", "old")

    def boom(handle):
        handle.write(b"half")
        raise RuntimeError("interrupted")

    from rankloss._io import atomic_write

    with pytest.raises(RuntimeError):
        atomic_write(target, boom)
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.txt"]

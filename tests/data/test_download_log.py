"""A download says what it fetches and how large it is before it starts, then how far it got."""

from __future__ import annotations

import io
import logging

import pytest

from rankloss.data._fetch import _copy_capped, _size


class _Response(io.BytesIO):
    def __init__(self, body: bytes, announce: bool) -> None:
        super().__init__(body)
        self.headers = {"Content-Length": str(len(body))} if announce else {}


def test_announced_size_and_quarters(caplog):
    caplog.set_level(logging.INFO, logger="rankloss.data")
    out = io.BytesIO()
    body = b"x" * (4 << 20)  # four blocks of 1 MiB
    _copy_capped("http://host/f.bin", _Response(body, True), out, limit=1 << 30)
    lines = [r.getMessage() for r in caplog.records if r.name == "rankloss.data"]
    assert lines[0] == "downloading http://host/f.bin (4.2 MB)"
    assert [line.split(": ")[1] for line in lines[1:]] == [
        f"{p}% of 4.2 MB" for p in (25, 50, 75, 100)
    ]
    assert out.getvalue() == body


def test_unknown_size_is_said(caplog):
    caplog.set_level(logging.INFO, logger="rankloss.data")
    _copy_capped("http://host/g", _Response(b"abc", False), io.BytesIO(), limit=10)
    assert [r.getMessage() for r in caplog.records] == ["downloading http://host/g (size unknown)"]


@pytest.mark.parametrize(
    ("n", "text"),
    [(None, "size unknown"), (512, "512 B"), (1500, "1.5 KB"), (2_300_000_000, "2.3 GB")],
)
def test_size(n, text):
    assert _size(n) == text

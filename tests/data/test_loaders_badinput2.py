"""More bad data files: invalid UTF-8 and truncated ``.gz`` in interaction logs and labelled
CSVs, bad IDX/npz files, and the download size cap; each names the file (and line)."""

from __future__ import annotations

import gzip
import io

import numpy as np
import pytest

from rankloss.data import DataFile, DataFormatError, URLSource, _fetch, read_interactions
from rankloss.data.loaders import read_idx, read_labelled

CSV = b"user,item,rating\n1,10,4\n2,11,5\n"


@pytest.mark.badinput("data")
def test_interactions_invalid_utf8_names_file_and_line(tmp_path):
    path = tmp_path / "log.csv"
    path.write_bytes(CSV + b"3,\xff\xfe,3\n")
    with pytest.raises(DataFormatError, match=r"log.csv:4: invalid UTF-8"):
        read_interactions(path)


@pytest.mark.badinput("data")
def test_interactions_truncated_gz_names_the_file(tmp_path):
    data = gzip.compress(CSV + b"3,12,1\n" * 3000)
    path = tmp_path / "log.csv.gz"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataFormatError, match=r"log.csv.gz: compressed data is truncated"):
        read_interactions(path)


def test_interactions_gz_still_reads(tmp_path):
    path = tmp_path / "log.csv.gz"
    path.write_bytes(gzip.compress(CSV))
    inter, users, items = read_interactions(path)
    assert inter.rating.tolist() == [4.0, 5.0]


@pytest.mark.badinput("data")
@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"0.5,0.1,1\n0.2,\xe9,0\n", r"x.csv:2: invalid UTF-8"),
        (b"0.5,0.1,1\n0.2,0.3,nan\n", r"x.csv:2: label nan is not an integer"),
        (b"0.5,0.1,1\n0.2,0.3,inf\n", r"x.csv:2: label inf is not an integer"),
    ],
)
def test_labelled_csv_bad_rows_name_file_and_line(tmp_path, body, message):
    path = tmp_path / "x.csv"
    path.write_bytes(body)
    with pytest.raises(DataFormatError, match=message):
        read_labelled(path)


@pytest.mark.badinput("data")
def test_labelled_csv_label_column_outside_the_row(tmp_path):
    path = tmp_path / "x.csv"
    path.write_bytes(b"0.5,0.1,1\n")
    with pytest.raises(DataFormatError, match=r"x.csv:1: label_column 7 is outside"):
        read_labelled(path, label_column=7)


@pytest.mark.badinput("data")
def test_labelled_npz_corrupt_or_mismatched(tmp_path):
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(DataFormatError, match=r"bad.npz: not a readable .npz file"):
        read_labelled(bad)
    pair = tmp_path / "pair.npz"
    np.savez(pair, x=np.zeros((3, 2)), y=np.zeros(2, np.int64))
    with pytest.raises(DataFormatError, match=r"pair.npz: .* do not pair one label"):
        read_labelled(pair)


def _idx(dims: list[int], payload: bytes) -> bytes:
    header = bytes([0, 0, 0x08, len(dims)]) + b"".join(d.to_bytes(4, "big") for d in dims)
    return header + payload


@pytest.mark.badinput("data")
def test_idx_truncated_gz_and_short_header_name_the_file(tmp_path):
    good = _idx([2, 3], bytes(range(6)))
    ok = tmp_path / "ok-ubyte"
    ok.write_bytes(good)
    assert read_idx(ok).tolist() == [[0, 1, 2], [3, 4, 5]]
    data = gzip.compress(_idx([4000], bytes(4000)))
    cut = tmp_path / "cut-ubyte.gz"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataFormatError, match=r"cut-ubyte.gz: compressed data is truncated"):
        read_idx(cut)
    short = tmp_path / "short-ubyte"
    short.write_bytes(bytes([0, 0, 0x08, 3, 0, 0]))
    with pytest.raises(DataFormatError, match=r"short-ubyte: header is cut short"):
        read_idx(short)
    with pytest.raises(FileNotFoundError, match="missing-ubyte"):
        read_idx(tmp_path / "missing-ubyte")


class _Response(io.BytesIO):
    def __init__(self, body: bytes, length: str | None) -> None:
        super().__init__(body)
        self.headers = {} if length is None else {"Content-Length": length}


@pytest.mark.badinput("data")
@pytest.mark.parametrize(
    ("length", "message"),
    [("100", r"Content-Length 100 bytes"), (None, r"the body streamed 100 bytes")],
)
def test_url_download_over_the_cap_is_refused(tmp_path, monkeypatch, length, message):
    body = b"x" * 100
    opened = []

    def fake_urlopen(url, timeout=None):
        opened.append(url)
        return _Response(body, length)

    monkeypatch.setattr(_fetch.urllib.request, "urlopen", fake_urlopen)
    source = URLSource({"f.bin": "http://example.invalid/f.bin"}, max_bytes=16)
    with pytest.raises(ValueError, match=rf"f.bin: .*{message}.*download cap of 16 bytes"):
        source.get([DataFile("f.bin")], tmp_path / "out")
    assert opened and not (tmp_path / "out" / "f.bin").exists()
    # raising the cap lets the same download through
    paths = URLSource({"f.bin": "http://example.invalid/f.bin"}, max_bytes=100).get(
        [DataFile("f.bin")], tmp_path / "out"
    )
    assert paths["f.bin"].read_bytes() == body


@pytest.mark.badinput("data")
def test_url_source_refuses_a_bad_cap(tmp_path):
    with pytest.raises(ValueError, match="URLSource: max_bytes must be a positive int"):
        URLSource({"f.bin": "http://example.invalid/f.bin"}, max_bytes=0).get(
            [DataFile("f.bin")], tmp_path
        )

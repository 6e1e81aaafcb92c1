"""Atomic file writes, one implementation for every cache, manifest, table and chunk.

Why: resumable commands trust that a file which exists is complete, so each is written to a unique
temporary file in the same directory and renamed over the target; a kill leaves either the old file or
the new one, never half of one. A failed write removes its temporary file and raises.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import IO, Any

TEMPORARY_SUFFIX = ".tmp"


def atomic_write(path: str | os.PathLike, write: Callable[[IO], None], *, binary: bool = False, sync: bool = False):
    """Call ``write(file)`` on a temporary file next to ``path``, then rename it to ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TEMPORARY_SUFFIX, dir=path.parent)
    try:
        with os.fdopen(fd, "wb") if binary else os.fdopen(fd, "w", encoding="utf-8") as f:
            write(f)
            if sync:
                f.flush()
                os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text_atomic(text: str, path: str | os.PathLike) -> None:
    atomic_write(path, lambda f: f.write(text))


def write_json_atomic(data: Any, path: str | os.PathLike, *, sort_keys: bool = False) -> None:
    """JSON, indented by one, with a final newline."""
    atomic_write(path, lambda f: f.write(json.dumps(data, indent=1, sort_keys=sort_keys) + "\n"))


def write_jsonl_atomic(records: Iterable[dict], path: str | os.PathLike) -> int:
    """Write one JSON object per line to a temporary file renamed into place; returns the line count."""
    count = 0

    def write(f) -> None:
        nonlocal count
        for record in records:
            f.write(json.dumps(record, ensure_ascii=False) + "\n")
            count += 1

    atomic_write(path, write)
    return count


def remove_stale_temporaries(directory: str | os.PathLike, older_than_s: float) -> None:
    """Delete temporary files a killed writer left in ``directory``, once they are too old to have a live writer.

    For directories several processes write at once (a shared cache), where a fresh temporary may be in use.
    """
    for stale in Path(directory).glob(f".*{TEMPORARY_SUFFIX}"):
        with contextlib.suppress(OSError):
            if time.time() - stale.stat().st_mtime > older_than_s:
                stale.unlink()

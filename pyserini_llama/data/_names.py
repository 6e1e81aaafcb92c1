"""Offline resolution of Pyserini topic and qrels names to files under their Anserini names.

Pyserini downloads ``get_topics('dl19-passage')``; here the same names resolve to files in a local
topics-and-qrels directory (``topics.dl19-passage.txt``, ``topics.beir-v1.0.0-scifact.test.tsv.gz``,
``qrels.msmarco-passage.dev-subset.txt``, ...). Names and file stems are compared after mapping
``.`` and ``_`` to ``-``, so ``msmarco-passage-dev-subset`` finds ``topics.msmarco-passage.dev-subset.txt``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from ..errors import PyseriniLlamaError

TOPICS_DIR_ENV = "PYSERINI_LLAMA_TOPICS_DIR"
DEFAULT_TOPICS_DIR = Path("~/.cache/pyserini/topics-and-qrels")
_SUFFIXES = (".gz", ".txt", ".tsv", ".jsonl", ".json")


def topics_dir(explicit: str | Path | None = None) -> Path:
    """``explicit`` > ``$PYSERINI_LLAMA_TOPICS_DIR`` > ``~/.cache/pyserini/topics-and-qrels``."""
    chosen = explicit or os.environ.get(TOPICS_DIR_ENV) or DEFAULT_TOPICS_DIR
    return Path(chosen).expanduser()


def _normalise(name: str) -> str:
    return re.sub(r"[._]", "-", name.strip().lower())


def _stem(file: Path, kind: str) -> str | None:
    """``beir-v1.0.0-scifact.test`` for ``topics.beir-v1.0.0-scifact.test.tsv.gz`` (kind ``topics``)."""
    name = file.name
    if not name.startswith(kind + "."):
        return None
    name = name[len(kind) + 1 :]
    for suffix in _SUFFIXES:
        name = name.removesuffix(suffix)
    return name or None


def _display(stem: str) -> str:
    """The Pyserini-style name: dots become dashes except inside version numbers."""
    return re.sub(r"\.(?!\d)", "-", stem)


def available_names(kind: str, directory: Path) -> list[str]:
    if not directory.is_dir():
        return []
    stems = (_stem(f, kind) for f in directory.iterdir() if f.is_file())
    return sorted(_display(s) for s in stems if s)


def resolve_named_file(kind: str, name: str, explicit_dir: str | Path | None = None) -> Path:
    """The ``kind`` (``topics`` or ``qrels``) file for a Pyserini name, or a one-line error saying what exists."""
    directory = topics_dir(explicit_dir)
    wanted = _normalise(name)
    if directory.is_dir():
        for file in sorted(directory.iterdir()):
            stem = _stem(file, kind)
            if stem and file.is_file() and _normalise(stem) == wanted:
                return file
    names = available_names(kind, directory)
    where = f"{directory} has {kind}: {', '.join(names)}" if names else f"{directory} has no {kind}.* files"
    if not directory.is_dir():
        where = f"{directory} does not exist"
    raise PyseriniLlamaError(
        f"{name!r} is neither a file nor a known {kind} name ({where}); pass a file path, or put the file "
        f"under its Anserini name ({kind}.<name>.txt) in a directory given by --topics-dir or ${TOPICS_DIR_ENV}"
    )

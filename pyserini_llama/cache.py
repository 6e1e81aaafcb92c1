"""Caching: what an output is made from, so that a rerun reuses what is still valid and redoes the rest.

Three mechanisms, one module:

* fingerprints of inputs (:func:`file_fingerprint`, :func:`model_fingerprint`): what a cache keyed on a
  corpus or a model records, by content where that is cheap, so a re-copied file is still the same input;
* artifacts (:class:`Artifact`): an output file or directory with a ``<name>.manifest.json`` beside it
  holding its parameters and the manifests of its inputs; it is rebuilt only when they differ. The
  pipeline, ``mine`` and the ablations build their outputs this way;
* work directories (:func:`work_dir_for`, :func:`prepare_work_dir`, :func:`discard_work`): where a long
  computation commits its finished parts (``<output>.partial/``), keyed by a fingerprint of everything that
  decides them, so a killed run resumes and a run with other settings starts afresh
  (``encoders/resumable.py`` encodes into one).

Standard library only (and atomic writes): importing it costs nothing.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .atomic import write_json_atomic

logger = logging.getLogger(__name__)

# ------------------------------------------------------------------------------------------- fingerprints

#: Files up to this size are fingerprinted by their bytes; larger ones (7B weights, a full MS MARCO corpus) by
#: path, size and mtime, which needs no read.
CONTENT_FINGERPRINT_MAX_BYTES = 64 * 2**20
#: Files in a model directory that do not change what it computes (model cards, training logs).
NOTE_SUFFIXES = (".md", ".jsonl", ".txt")


def file_fingerprint(path: Path) -> list:
    """What a cache keyed on ``path`` records: ``["sha256", digest, size]`` for files up to
    :data:`CONTENT_FINGERPRINT_MAX_BYTES` (a reinstalled shipped adapter or a re-synced corpus has new mtimes
    but the same bytes, and must not force a re-encode), else ``[resolved path, size, mtime]``."""
    stat = path.stat()
    if stat.st_size > CONTENT_FINGERPRINT_MAX_BYTES:
        return [str(path.resolve()), stat.st_size, stat.st_mtime_ns]
    with open(path, "rb") as f:
        return ["sha256", hashlib.file_digest(f, "sha256").hexdigest(), stat.st_size]


def model_fingerprint(model: str) -> dict:
    """The model name, plus the fingerprints of its files when it is a local path or a shipped model
    (a retrained adapter differs). Used by every cache keyed on a model: artifact manifests,
    resumable encoding."""
    from .modeling.loading import SHIPPED_MODELS, SHIPPED_MODELS_DIR  # where shipped names live; stdlib only

    path = SHIPPED_MODELS_DIR / model if model in SHIPPED_MODELS else Path(model)
    if not path.exists():
        return {"name": model}
    # Weights and configs only: editing a model card or a training log must not invalidate an index.
    files = (
        [path] if path.is_file() else sorted(p for p in path.iterdir() if p.is_file() and p.suffix not in NOTE_SUFFIXES)
    )
    return {"name": model, "files": [file_fingerprint(f) for f in files]}


def texts_digest(texts: Sequence[str]) -> str:
    """sha256 over the texts, each length-prefixed so that no two lists share a digest."""
    h = hashlib.sha256()
    for text in texts:
        data = text.encode("utf-8")
        h.update(len(data).to_bytes(8, "little"))
        h.update(data)
    return h.hexdigest()


# ------------------------------------------------------------------------------------------- artifacts


def model_slug(model: str) -> str:
    """A directory-name-safe name for a model: ``castorini/repllama-v1`` -> ``castorini--repllama-v1``."""
    name = Path(model).name if Path(model).exists() else model
    return re.sub(r"[^A-Za-z0-9._-]+", "-", name.replace("/", "--")).strip("-.") or "model"


@dataclass
class Artifact:
    """An output file or directory, what it is made from, and how to make it.

    Artifacts are written atomically by ``build`` and their manifest only after them, so an interrupted
    build is redone, never half-reused.
    """

    name: str
    path: Path
    params: dict
    build: Callable[[], None]
    inputs: list[Artifact] = field(default_factory=list)
    ready: bool = field(default=False, repr=False)  # ensured in this process already

    @property
    def manifest_path(self) -> Path:
        return self.path.with_name(self.name + ".manifest.json")

    def manifest(self) -> dict:
        return {"artifact": self.name, "params": self.params, "inputs": [i.manifest() for i in self.inputs]}

    def is_current(self) -> bool:
        if not self.path.exists() or not self.manifest_path.is_file():
            return False
        try:
            on_disk = json.loads(self.manifest_path.read_text())
        except (OSError, json.JSONDecodeError):
            return False
        return on_disk == json.loads(json.dumps(self.manifest()))

    def ensure(self) -> bool:
        """Build this artifact (and, first, any input that is out of date) unless it is current; True if built."""
        if self.ready:
            return False
        built = not self.is_current()
        if built:
            for artifact in self.inputs:
                artifact.ensure()
            self.manifest_path.unlink(missing_ok=True)
            logger.info("building %s", self.path)
            self.build()
            write_json_atomic(self.manifest(), self.manifest_path)
        else:
            logger.info("reusing %s (its manifest matches)", self.path)
        self.ready = True
        return built


# ------------------------------------------------------------------------------------------- work directories

#: The file in a work directory that names what its contents were made from.
WORK_FINGERPRINT_FILE = "fingerprint.json"


def work_dir_for(output: str | os.PathLike) -> Path:
    """The work directory beside an output file or directory: ``<output>.partial``."""
    output = Path(output)
    return output.with_name(output.name + ".partial")


def prepare_work_dir(work_dir: str | os.PathLike, key: dict) -> Path:
    """Make ``work_dir`` ready for work keyed by ``key`` (JSON): kept as it is if it was made for the same key,
    else emptied, since its contents were made from other settings or input. Returns the directory."""
    work_dir = Path(work_dir)
    fingerprint = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()
    marker = work_dir / WORK_FINGERPRINT_FILE
    if work_dir.exists():
        try:
            on_disk = json.loads(marker.read_text()).get("fingerprint")
        except (OSError, ValueError, AttributeError):
            on_disk = None
        if on_disk == fingerprint:
            return work_dir
        stale = sum(1 for p in work_dir.iterdir() if p.name != WORK_FINGERPRINT_FILE)
        logger.warning("%s was made with other settings or input; discarding its %d file(s)", work_dir, stale)
        shutil.rmtree(work_dir)
    work_dir.mkdir(parents=True)
    marker.write_text(json.dumps({"fingerprint": fingerprint, "key": key}, indent=1, sort_keys=True) + "\n")
    return work_dir


def discard_work(work_dir: str | os.PathLike | None) -> None:
    """Remove a work directory once the output it fed is written."""
    if work_dir is not None and Path(work_dir).exists():
        shutil.rmtree(work_dir)
        logger.debug("removed %s", work_dir)

"""Resumable encoding: embed texts in fixed chunks, committing finished work to a directory.

Encoding MS MARCO with a 7B model takes GPU-hours; a preempted job must not start over. Both
``encode`` (passages) and ``search.faiss`` (queries) embed through :func:`encode_resumable`:

* the texts are cut into chunks of ``chunk_size`` consecutive rows (boundaries fixed by row index),
  and each chunk is batched on its own, exactly as :meth:`RepLLaMAEncoder.encode_texts` would
  batch it; so the batches, and with them every float, depend only on the input and the settings;
* a finished chunk is written atomically to ``work_dir/chunk-NNNNNN.npy``; inside a chunk the
  batches done so far are committed to ``chunk-NNNNNN.partial.npy`` every ``commit_seconds``;
* the directory is keyed by a fingerprint of everything that decides the vectors (model files,
  dtype, device, lengths, prefixes, batching, chunk size and the exact texts, which covers fields,
  segmenting, corpus content and shard; for int8 the calibration inputs, drawn from the texts the
  same way every time): a rerun with other settings discards stale chunks.

A process killed at any point and rerun with the same command picks up the finished chunks and
batches and produces byte-identical vectors. The caller removes ``work_dir`` (``cache.discard_work``)
once its own output is safely written.
"""

from __future__ import annotations

import logging
import os
import signal
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..cache import prepare_work_dir, texts_digest
from .repllama import RepLLaMAEncoder

logger = logging.getLogger(__name__)

DEFAULT_CHUNK_SIZE = 10_000
DEFAULT_COMMIT_SECONDS = 60.0
#: Fault injection for tests: the process SIGKILLs itself right after this many commits.
KILL_AFTER_COMMITS_ENV = "PYSERINI_LLAMA_KILL_AFTER_COMMITS"


def _save_atomic(path: Path, array: np.ndarray) -> None:
    from ..atomic import atomic_write

    atomic_write(path, lambda f: np.save(f, array), binary=True, sync=True)


def _load(path: Path, rows: int, dim: int) -> np.ndarray | None:
    try:
        array = np.load(path)
    except (OSError, ValueError) as exc:
        logger.warning("ignoring unreadable %s (%s)", path, exc)
        return None
    if array.shape != (rows, dim) or array.dtype != np.float32:
        logger.warning("ignoring %s: shape %s, expected (%d, %d)", path, array.shape, rows, dim)
        return None
    return array


class _Commits:
    """Counts commits; SIGKILLs the process after ``$PYSERINI_LLAMA_KILL_AFTER_COMMITS`` (tests only)."""

    def __init__(self) -> None:
        value = os.environ.get(KILL_AFTER_COMMITS_ENV)
        self.kill_after = int(value) if value else None
        self.count = 0

    def __call__(self) -> None:
        self.count += 1
        if self.kill_after is not None and self.count >= self.kill_after:
            os.kill(os.getpid(), signal.SIGKILL)


def encode_resumable(
    encoder: RepLLaMAEncoder,
    texts: Sequence[str],
    max_length: int,
    work_dir: str | os.PathLike | None,
    *,
    batch_size: int | None = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    commit_seconds: float = DEFAULT_COMMIT_SECONDS,
    show_progress: bool = True,
    what: str = "texts",
) -> np.ndarray:
    """``(len(texts), dimension)`` float32 vectors of already formatted ``texts``, chunk by chunk.

    With ``work_dir`` (and an encoder loaded by name, see :meth:`RepLLaMAEncoder.fingerprint`)
    finished chunks and batches are committed there and reused by a rerun; without, the same
    chunked batching runs in memory, so the vectors are the same either way.
    """
    from tqdm.auto import tqdm

    if chunk_size < 1:
        raise ValueError("chunk_size must be at least 1")
    batch_size = batch_size or encoder.batch_size
    n, dim = len(texts), encoder.dimension
    encoder.calibrate(texts, max_length)  # int8: quantised from these texts, which the fingerprint then records
    identity = encoder.fingerprint()
    if work_dir is not None and identity is None:
        logger.info("model passed in memory: encoding without a resumable work directory")
        work_dir = None
    if work_dir is not None:
        work_dir = Path(work_dir)
        key = {
            "encoder": identity,
            "max_length": max_length,
            "batch_size": batch_size,
            "chunk_size": chunk_size,
            "rows": n,
            "texts": texts_digest(texts),
        }
        prepare_work_dir(work_dir, key)
    out = np.zeros((n, dim), dtype=np.float32)
    commits = _Commits()
    reused = resumed_batches = 0
    chunks = range(0, n, chunk_size)
    with tqdm(total=n, desc=f"encoding {what}", unit=what, disable=not show_progress) as bar:
        for start in chunks:
            end = min(start + chunk_size, n)
            name = f"chunk-{start // chunk_size:06d}"
            done = work_dir / f"{name}.npy" if work_dir else None
            partial = work_dir / f"{name}.partial.npy" if work_dir else None
            if done is not None and done.exists() and (vectors := _load(done, end - start, dim)) is not None:
                out[start:end] = vectors
                reused += 1
                bar.update(end - start)
                continue
            resumed_batches += _encode_chunk(
                encoder, texts[start:end], max_length, batch_size, out[start:end], partial, commit_seconds, commits, bar
            )
            if done is not None:
                _save_atomic(done, out[start:end])
                partial.unlink(missing_ok=True)
                commits()
    if work_dir is not None and (reused or resumed_batches):
        logger.info(
            "resumed from %s: reused %d of %d chunk(s) and %d batch(es) of a partial chunk",
            work_dir,
            reused,
            len(chunks),
            resumed_batches,
        )
    return out


def _encode_chunk(
    encoder: RepLLaMAEncoder,
    texts: Sequence[str],
    max_length: int,
    batch_size: int,
    out: np.ndarray,
    partial: Path | None,
    commit_seconds: float,
    commits: _Commits,
    bar,
) -> int:
    """Fill ``out`` (a view) with the chunk's vectors, batch by batch; returns the batches reused.

    The partial file holds the chunk's rows with a trailing column counting finished batches, so
    one atomic rename commits vectors and progress together.
    """
    ids, batches = encoder.plan_batches(texts, max_length, batch_size)
    first = 0
    if partial is not None and partial.exists():
        saved = _load(partial, len(texts), out.shape[1] + 1)
        if saved is not None:
            first = int(saved[0, -1])
            out[:] = saved[:, :-1]
            bar.update(sum(len(b) for b in batches[:first]))
    last_commit = time.monotonic()
    for i in range(first, len(batches)):
        batch = batches[i]
        out[batch] = encoder.embed_batch([ids[j] for j in batch])
        bar.update(len(batch))
        if partial is not None and i + 1 < len(batches) and time.monotonic() - last_commit >= commit_seconds:
            progress = np.full((len(texts), 1), i + 1, dtype=np.float32)
            _save_atomic(partial, np.concatenate([out, progress], axis=1))
            last_commit = time.monotonic()
            commits()
    return first

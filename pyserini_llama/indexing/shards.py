"""One index of any type from the flat shards that ``encode --shard-id/--shard-num`` writes.

Encoding MS MARCO with a 7B model is split over GPUs or machines (one shard each); the shards
are flat inner-product indexes (``index`` + ``docid``). This merges them in shard order into one
index of any type without holding all vectors at once: a training sample is drawn across the
shards first (uniform over the whole corpus), then each shard is read and added in turn, so the
peak memory is the output index plus one shard.

This is the merge step of distributed encoding: ``torchrun ... -m pyserini_llama.encode`` calls it on
rank 0 after every rank has written its shard, and ``python -m pyserini_llama.indexing`` runs it on
shards encoded on separate machines. Shards of a FirstP/MaxP index (``segments.json``) merge into one
manifest.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .faiss_types import IndexOptions, IndexTypeError, add_vectors, configure_build, new_index, sample_rows, train_index

logger = logging.getLogger(__name__)


def read_flat_shard(directory: str | os.PathLike) -> tuple[list[str], np.ndarray]:
    """A shard's docids and float32 vectors (any FAISS index that can reconstruct; flat is exact)."""
    import faiss

    directory = Path(directory)
    if not (directory / "index").is_file() or not (directory / "docid").is_file():
        raise IndexTypeError(f"{directory}: not a Pyserini FAISS index (needs the files 'index' and 'docid')")
    index = faiss.read_index(str(directory / "index"))
    docids = (directory / "docid").read_text().splitlines()
    if len(docids) != index.ntotal:
        raise IndexTypeError(f"{directory}: {len(docids)} docids for {index.ntotal} vectors")
    try:
        vectors = index.reconstruct_n(0, index.ntotal)
    except RuntimeError:
        raise IndexTypeError(f"{directory}: its index cannot return its vectors; merge flat shards") from None
    return docids, np.ascontiguousarray(vectors, dtype=np.float32)


def _shard_sizes(shards: Sequence[Path]) -> tuple[list[int], int]:
    import faiss

    sizes, dims = [], set()
    for shard in shards:
        index = faiss.read_index(str(shard / "index"), faiss.IO_FLAG_READ_ONLY | faiss.IO_FLAG_MMAP)
        sizes.append(index.ntotal)
        dims.add(index.d)
    if len(dims) != 1:
        raise IndexTypeError(f"shards have different dimensions: {sorted(dims)}")
    return sizes, dims.pop()


SEGMENT_SETTINGS = ("unit", "window", "stride", "aggregate", "separator")


def merge_segment_manifests(shards: Sequence[Path]) -> dict | None:
    """One ``segments.json`` for the merged index, or None for shards of whole documents.

    Shards split the corpus by document before segmenting, so no document spans two shards:
    counts add up, the longest document is the longest of any shard."""
    from ..modeling.segments import read_manifest

    manifests = [read_manifest(s) for s in shards]
    if all(m is None for m in manifests):
        return None
    if any(m is None for m in manifests):
        plain = [str(s) for s, m in zip(shards, manifests, strict=True) if m is None]
        raise IndexTypeError(f"some shards are segmented (segments.json) and some are not: {', '.join(plain)}")
    settings = {tuple(m.get(k) for k in SEGMENT_SETTINGS) for m in manifests}
    if len(settings) != 1:
        raise IndexTypeError(f"shards were segmented differently: {sorted(settings, key=str)}")
    merged = dict(manifests[0])
    merged["documents"] = sum(m["documents"] for m in manifests)
    merged["vectors"] = sum(m["vectors"] for m in manifests)
    merged["max_segments"] = max(m["max_segments"] for m in manifests)
    return merged


def build_from_shards(
    shards: Sequence[str | os.PathLike], output_dir: str | os.PathLike, options: IndexOptions
) -> Path:
    """Write ``output_dir`` (``index`` + ``docid``) over all ``shards`` in the order given."""
    import faiss

    shards = [Path(s) for s in shards]
    if not shards:
        raise IndexTypeError("no shards given")
    for shard in shards:
        if not (shard / "index").is_file() or not (shard / "docid").is_file():
            raise IndexTypeError(f"{shard}: not a Pyserini FAISS index (needs the files 'index' and 'docid')")
    segments = merge_segment_manifests(shards)
    sizes, d = _shard_sizes(shards)
    n = sum(sizes)
    o = options.resolved(n, d)
    index = new_index(o, n, d)
    configure_build(index, o, n, d)
    if not index.is_trained:
        rows = sample_rows(n, o.train_size or n, o.seed)
        offsets = np.cumsum([0, *sizes])
        parts = []
        for i, shard in enumerate(shards):
            local = rows[(rows >= offsets[i]) & (rows < offsets[i + 1])] - offsets[i]
            if len(local):
                parts.append(read_flat_shard(shard)[1][local])
        train_index(index, np.concatenate(parts), o)
    output_dir = Path(output_dir)
    output_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{output_dir.name}.", dir=output_dir.parent))
    try:
        with open(staging / "docid", "w") as out:
            for shard in shards:
                docids, vectors = read_flat_shard(shard)
                add_vectors(index, [vectors])
                out.write("".join(f"{d}\n" for d in docids))
                logger.info("added %s (%d vectors)", shard, len(docids))
        faiss.write_index(index, str(staging / "index"))
        if segments is not None:
            from ..modeling.segments import MANIFEST

            (staging / MANIFEST).write_text(json.dumps(segments, indent=2) + "\n")
        if output_dir.exists():
            shutil.rmtree(output_dir)
        staging.rename(output_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    logger.info("wrote %d vectors from %d shard(s) to %s", n, len(shards), output_dir)
    return output_dir

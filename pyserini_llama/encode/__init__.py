"""Encode a corpus with RepLLaMA into Pyserini's embedding formats.

Outputs are exactly what ``python -m pyserini.encode`` writes, so every Pyserini tool reads
them: ``--to-faiss`` gives a flat inner-product FAISS ``index`` plus a ``docid`` file;
otherwise ``embeddings.jsonl`` with ``{"id", "contents", "vector"}`` per line.

The corpus is read and validated completely before any encoding starts, so a bad line fails
in seconds, not after an hour of GPU time; results go to a temporary directory that replaces
the output directory only once everything is written.
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

from ..data.corpus import Document
from ..encoders.repllama import Passage, RepLLaMAEncoder

logger = logging.getLogger(__name__)

PASSAGE_FIELDS = ("url", "title", "text")


def shard(documents: Sequence[Document], shard_id: int = 0, shard_num: int = 1) -> Sequence[Document]:
    """Pyserini's sharding: equal contiguous slices, the last shard takes the remainder."""
    if not 0 <= shard_id < shard_num:
        raise ValueError(f"--shard-id must be in 0..{shard_num - 1}, got {shard_id}")
    size = len(documents) // shard_num
    start = shard_id * size
    end = len(documents) if shard_id == shard_num - 1 else start + size
    return documents[start:end]


def to_passage(doc: Document, fields: Sequence[str] = ("title", "text")) -> Passage:
    """Keep only the fields the encoder should see (``--fields``)."""
    unknown = set(fields) - set(PASSAGE_FIELDS)
    if unknown:
        raise ValueError(f"unknown --fields {sorted(unknown)}; choose from {', '.join(PASSAGE_FIELDS)}")
    return Passage(
        text=doc.text if "text" in fields else "",
        title=doc.title if "title" in fields else "",
        url=doc.url if "url" in fields else None,
    )


def encode_corpus(
    encoder: RepLLaMAEncoder,
    documents: Sequence[Document],
    output_dir: str | os.PathLike,
    *,
    to_faiss: bool = False,
    fields: Sequence[str] = ("title", "text"),
    batch_size: int | None = None,
    max_length: int | None = None,
) -> Path:
    """Embed ``documents`` and write them to ``output_dir`` atomically; returns the directory."""
    output_dir = Path(output_dir)
    passages = [to_passage(d, fields) for d in documents]
    vectors = encoder.encode_passages(passages, max_length=max_length, batch_size=batch_size, show_progress=True)
    output_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{output_dir.name}.", dir=output_dir.parent))
    try:
        if to_faiss:
            write_faiss_index(staging, [d.docid for d in documents], vectors)
        else:
            write_jsonl_embeddings(staging, documents, vectors)
        if output_dir.exists():
            shutil.rmtree(output_dir)
        staging.rename(output_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    logger.info("wrote %d embeddings of dimension %d to %s", len(documents), vectors.shape[1], output_dir)
    return output_dir


def write_faiss_index(directory: Path, docids: Sequence[str], vectors: np.ndarray) -> None:
    """Pyserini's layout: ``index`` (faiss.IndexFlatIP) and ``docid`` (one id per line)."""
    import faiss

    index = faiss.IndexFlatIP(vectors.shape[1])
    index.add(np.ascontiguousarray(vectors, dtype=np.float32))
    faiss.write_index(index, str(directory / "index"))
    (directory / "docid").write_text("".join(f"{d}\n" for d in docids))


def write_jsonl_embeddings(directory: Path, documents: Sequence[Document], vectors: np.ndarray) -> None:
    """Pyserini's ``embeddings.jsonl``: ``contents`` joins title and text with a newline."""
    with open(directory / "embeddings.jsonl", "w") as out:
        for doc, vector in zip(documents, vectors, strict=True):
            contents = f"{doc.title}\n{doc.text}" if doc.title else doc.text
            out.write(json.dumps({"id": doc.docid, "contents": contents, "vector": vector.tolist()}) + "\n")

"""Encode a corpus with RepLLaMA into Pyserini's embedding formats.

Outputs are exactly what ``python -m pyserini.encode`` writes, so every Pyserini tool reads
them: ``--to-faiss`` gives a flat inner-product FAISS ``index`` plus a ``docid`` file;
otherwise ``embeddings.jsonl`` with ``{"id", "contents", "vector"}`` per line.

The corpus is read and validated completely before any encoding starts, so a bad line fails
in seconds, not after an hour of GPU time; results go to a temporary directory that replaces
the output directory only once everything is written.

With ``segments`` (FirstP/MaxP, ``modeling/segments.py``) the vectors are of segments: MaxP
writes one per word window with ids ``DOCID#segN``, FirstP one per document (its first window)
under its own id; either way a ``segments.json`` manifest tells our dense search how to map
vectors back to documents.

Encoding is resumable (``encoders/resumable.py``): vectors are committed in chunks of
``chunk_size`` documents to ``<output>.partial/`` as they are made, so a killed run, rerun with
the same settings, continues where it stopped and writes byte-identical output.
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

from ..cache import discard_work, work_dir_for
from ..data.document import Document
from ..encoders.repllama import RepLLaMAEncoder
from ..encoders.resumable import DEFAULT_CHUNK_SIZE, DEFAULT_COMMIT_SECONDS, encode_resumable
from ..indexing.faiss_types import IndexOptions, check_options, write_index_dir
from ..modeling.segments import Segmenter, write_manifest

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


def to_passage(doc: Document, fields: Sequence[str] = ("title", "text")) -> Document:
    """Keep only the fields the encoder should see (``--fields``)."""
    unknown = set(fields) - set(PASSAGE_FIELDS)
    if unknown:
        raise ValueError(f"unknown --fields {sorted(unknown)}; choose from {', '.join(PASSAGE_FIELDS)}")
    return Document(
        docid=doc.docid,
        text=doc.text if "text" in fields else "",
        title=doc.title if "title" in fields else "",
        url=doc.url if "url" in fields else None,
    )


def passage_texts(
    encoder: RepLLaMAEncoder, documents: Sequence[Document], fields: Sequence[str] = ("title", "text")
) -> list[str]:
    """The exact texts :func:`encode_corpus` embeds for ``documents`` (segments already cut, if any):
    also what an int8 encoder is calibrated on (:func:`calibrate_on_corpus`)."""
    return encoder.format_passages([to_passage(d, fields) for d in documents])


def calibrate_on_corpus(
    encoder: RepLLaMAEncoder,
    documents: Sequence[Document],
    fields: Sequence[str] = ("title", "text"),
    max_length: int | None = None,
) -> None:
    """Quantise an int8 encoder on a sample of a whole corpus (segments already cut, if any), so that every
    shard, process and later query batch meets one quantised model; a no-op for other precisions.

    Only the sampled documents are formatted: formatting makes one text per document, so sampling the
    documents picks the very texts :meth:`RepLLaMAEncoder.calibrate` would pick from all of them.
    """
    if encoder.int8 is None:
        return
    from ..precision.int8 import calibration_sample

    texts = passage_texts(encoder, calibration_sample(documents), fields)
    encoder.calibrate(texts, max_length or encoder.passage_max_length)


def encode_corpus(
    encoder: RepLLaMAEncoder,
    documents: Sequence[Document],
    output_dir: str | os.PathLike,
    *,
    to_faiss: bool = False,
    fields: Sequence[str] = ("title", "text"),
    batch_size: int | None = None,
    max_length: int | None = None,
    segments: Segmenter | None = None,
    index_options: IndexOptions | None = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    commit_seconds: float = DEFAULT_COMMIT_SECONDS,
    resume: bool = True,
    keep_work: bool = False,
) -> Path:
    """Embed ``documents`` and write them to ``output_dir`` atomically; returns the directory.

    ``index_options`` (implies ``to_faiss``): the FAISS index type and its build parameters
    (``pyserini_llama.indexing``); default a flat inner-product index, as Pyserini writes.

    ``chunk_size`` documents (segments, with ``segments``) are batched and committed together,
    and a partial chunk every ``commit_seconds``, to ``<output_dir>.partial/`` unless ``resume`` is
    false; a rerun reuses them. The work directory is removed once the output is written, unless
    ``keep_work`` (distributed encoding keeps it until the shards are merged)."""
    output_dir = Path(output_dir)
    if segments is not None:
        whole = len(documents)
        documents = segments.segment_documents(documents)
        logger.info(
            "%s over %d words: %d documents -> %d segments", segments.aggregate, segments.window, whole, len(documents)
        )
    if index_options is not None:
        check_options(index_options, len(documents), encoder.dimension)  # a bad --index-type fails before encoding
    work_dir = work_dir_for(output_dir) if resume else None
    vectors = encode_resumable(
        encoder,
        passage_texts(encoder, documents, fields),
        max_length or encoder.passage_max_length,
        work_dir,
        batch_size=batch_size,
        chunk_size=chunk_size,
        commit_seconds=commit_seconds,
        what="passages",
    )
    output_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{output_dir.name}.", dir=output_dir.parent))
    try:
        if to_faiss or index_options is not None:
            write_faiss_index(staging, [d.docid for d in documents], vectors, index_options)
        else:
            write_jsonl_embeddings(staging, documents, vectors)
        if segments is not None:
            write_manifest(staging, segments, [d.docid for d in documents])
        if output_dir.exists():
            shutil.rmtree(output_dir)
        staging.rename(output_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    if not keep_work:
        discard_work(work_dir)
    logger.info("wrote %d embeddings of dimension %d to %s", len(documents), vectors.shape[1], output_dir)
    return output_dir


def write_faiss_index(
    directory: Path, docids: Sequence[str], vectors: np.ndarray, index_options: IndexOptions | None = None
) -> None:
    """Pyserini's layout: ``index`` (faiss.IndexFlatIP unless ``index_options`` says otherwise) and
    ``docid`` (one id per line)."""
    write_index_dir(directory, docids, vectors, index_options or IndexOptions("flat"))


def write_jsonl_embeddings(directory: Path, documents: Sequence[Document], vectors: np.ndarray) -> None:
    """Pyserini's ``embeddings.jsonl``: ``contents`` joins title and text with a newline."""
    with open(directory / "embeddings.jsonl", "w") as out:
        for doc, vector in zip(documents, vectors, strict=True):
            contents = f"{doc.title}\n{doc.text}" if doc.title else doc.text
            out.write(json.dumps({"id": doc.docid, "contents": contents, "vector": vector.tolist()}) + "\n")

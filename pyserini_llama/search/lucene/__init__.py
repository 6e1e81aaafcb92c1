"""BM25 first stage with Pyserini's Lucene, built the way Pyserini's BEIR "flat" indexes are.

Pyserini's ``beir-v1.0.0-*.flat`` indexes come from Anserini's ``BeirFlatCollection`` (contents =
title + newline + text, the original JSON stored as the raw document) with
``-storePositions -storeDocvectors -storeRaw``, searched with BM25 k1=0.9, b=0.4 and
``--remove-query``. :func:`build_lucene_index` writes any corpus our readers accept as such a
collection and runs Anserini's indexer in this process, so the published BM25 numbers reproduce
(SciFact nDCG@10 0.6789) and :class:`~pyserini_llama.data.lucene_store.LuceneDocumentStore` can give back
title and text.

Indexes are built in ``<index>.partial`` and renamed into place, with a marker file that records the
corpus it was built from: a complete index for the same corpus is reused, a left-over ``.partial``
is rebuilt. Pyserini starts one JVM per process; everything here shares it.
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path

from tqdm import tqdm

from ...bootstrap import import_pyserini
from ...cache import file_fingerprint
from ...data.corpus import corpus_files, iter_corpus
from ...data.lucene_store import is_lucene_index
from ...data.runs import Run, sort_hits
from ...defaults import BM25_B, BM25_K1, HITS
from ...errors import PyseriniLlamaError, SkippedLines

logger = logging.getLogger(__name__)

MARKER = "pyserini-llama-index.json"
MARKER_VERSION = 2  # 2: files fingerprinted by content (a re-synced corpus keeps its index)
_JAVA_WHITESPACE = "".join(map(chr, range(33)))  # what Java's String.trim() removes


def _fingerprint(corpus: str | Path) -> dict:
    files = corpus_files(corpus)
    return {
        "version": MARKER_VERSION,
        "collection": "BeirFlatCollection",
        "files": [file_fingerprint(f) for f in files],
    }


def _write_collection(corpus: str | Path, out_dir: Path, shards: int, skip_bad_lines: bool) -> int:
    """BEIR lines ``{"_id", "title", "text"[, "url"]}`` in ``shards`` files; returns the non-empty document count."""
    skipped = SkippedLines(corpus) if skip_bad_lines else None
    files = [open(out_dir / f"part{i:02d}.jsonl", "w", encoding="utf-8") for i in range(shards)]
    non_empty = 0
    try:
        for i, doc in enumerate(iter_corpus(corpus, skip_bad_lines=skip_bad_lines, skipped=skipped)):
            record = {"_id": doc.docid, "title": doc.title, "text": doc.text}
            if doc.url:
                record["url"] = doc.url
            files[i % shards].write(json.dumps(record, ensure_ascii=False) + "\n")
            non_empty += bool((doc.title + "\n" + doc.text).strip(_JAVA_WHITESPACE))
    finally:
        for f in files:
            f.close()
    return non_empty


def _run_indexer(collection_dir: Path, index_dir: Path, threads: int) -> None:
    pyclass = import_pyserini("pyserini.pyclass")
    index_collection = pyclass.autoclass("io.anserini.index.IndexCollection")
    args = ["-collection", "BeirFlatCollection", "-input", str(collection_dir), "-index", str(index_dir)]
    args += ["-generator", "DefaultLuceneDocumentGenerator", "-threads", str(threads)]
    args += ["-storePositions", "-storeDocvectors", "-storeRaw"]
    try:
        index_collection.main(args)
    except Exception as exc:  # a jnius.JavaException
        raise PyseriniLlamaError(f"Anserini's indexer failed on {collection_dir}: {exc}") from exc


def _indexed_documents(index_dir: Path) -> int:
    lucene = import_pyserini("pyserini.index.lucene")
    return int(lucene.LuceneIndexReader(str(index_dir)).stats()["documents"])


def build_lucene_index(
    corpus: str | Path,
    index_dir: str | Path,
    *,
    threads: int = 1,
    skip_bad_lines: bool = False,
    overwrite: bool = False,
) -> Path:
    """Index ``corpus`` (BEIR dir, JSON-lines file or JsonCollection dir) for BM25; reuse a complete index.

    Documents with neither title nor text are left out, as Anserini does. The number of indexed
    documents is checked against the corpus, so a silently failing indexer cannot go unnoticed.
    """
    index_dir = Path(index_dir)
    marker = index_dir / MARKER
    fingerprint = _fingerprint(corpus)
    if marker.is_file() and not overwrite:
        if json.loads(marker.read_text()).get("fingerprint") == fingerprint:
            logger.info("reusing the BM25 index %s", index_dir)
            return index_dir
        logger.info("%s was built from another corpus (or it changed): rebuilding", index_dir)
    elif index_dir.exists() and (not index_dir.is_dir() or any(index_dir.iterdir())) and not marker.is_file():
        raise PyseriniLlamaError(
            f"{index_dir} exists and is not an index built by pyserini-llama: remove it or choose another --index"
        )
    partial = index_dir.with_name(index_dir.name + ".partial")
    if partial.exists():
        logger.warning("removing the half-built index %s", partial)
        shutil.rmtree(partial)
    index_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{index_dir.name}.collection-", dir=index_dir.parent))
    try:
        logger.info("writing %s as a Lucene collection", corpus)
        expected = _write_collection(corpus, staging, max(1, threads), skip_bad_lines)
        logger.info("indexing %d documents into %s", expected, index_dir)
        _run_indexer(staging, partial, max(1, threads))
        indexed = _indexed_documents(partial)
        if indexed != expected:
            raise PyseriniLlamaError(f"the Lucene index of {corpus} has {indexed} documents, expected {expected}")
        (partial / MARKER).write_text(json.dumps({"fingerprint": fingerprint, "documents": indexed}, indent=1))
        if index_dir.exists():
            shutil.rmtree(index_dir)
        partial.rename(index_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        shutil.rmtree(partial, ignore_errors=True)
    return index_dir


def bm25_search(
    index_dir: str | Path,
    queries: Mapping[str, str],
    hits: int = HITS,
    *,
    k1: float = BM25_K1,
    b: float = BM25_B,
    threads: int = 1,
    batch_size: int = 1000,
    remove_query: bool = False,
) -> Run:
    """BM25 top-``hits`` per query, in query order, hits in trec_eval order.

    ``remove_query`` drops a hit whose docid equals the query id (Pyserini's ``--remove-query``,
    used for every BEIR regression: in some collections queries are documents too).
    """
    lucene = import_pyserini("pyserini.search.lucene")
    if not is_lucene_index(index_dir):
        raise PyseriniLlamaError(f"{index_dir} is not a Lucene index")
    searcher = lucene.LuceneSearcher(str(index_dir))
    searcher.set_bm25(float(k1), float(b))
    qids = list(queries)
    run: Run = {}
    with tqdm(total=len(qids), desc="BM25", unit="query", disable=len(qids) < 2 * batch_size) as progress:
        for start in range(0, len(qids), batch_size):
            batch = qids[start : start + batch_size]
            results = searcher.batch_search([queries[q] for q in batch], batch, k=hits, threads=threads)
            for qid in batch:
                found = [(hit.docid, float(hit.score)) for hit in results.get(qid, [])]
                if remove_query:
                    found = [hit for hit in found if hit[0] != qid]
                run[qid] = sort_hits(found)
            progress.update(len(batch))
    return run

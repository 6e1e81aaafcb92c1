"""Dense retrieval with RepLLaMA over a Pyserini FAISS index.

An index written with ``encode ... --segment W,S --aggregate maxp`` holds one vector per
segment (ids ``DOCID#segN``, described by ``segments.json``): :func:`dense_search` then ranks
documents by their best segment, each once, fetching more segment hits until ``hits`` distinct
documents are found.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ...bootstrap import import_pyserini
from ...data.runs import Run
from ...defaults import HITS
from ...encoders.repllama import RepLLaMAEncoder
from ...encoders.resumable import DEFAULT_CHUNK_SIZE, DEFAULT_COMMIT_SECONDS, encode_resumable

logger = logging.getLogger(__name__)


@dataclass
class FaissIndex:
    """Pyserini's ``FaissSearcher`` and what we know of its index, kept beside it (nothing is set on Pyserini's object).

    ``segments``: the ``segments.json`` manifest of a FirstP/MaxP segment index (None: one vector per document).
    ``explicit_ef_search``: the user fixed HNSW's efSearch (``--ef-search``), so it is not raised to fit the depth.
    """

    searcher: Any
    segments: dict | None = None
    explicit_ef_search: bool = False


def open_faiss_searcher(index: str, encoder: RepLLaMAEncoder) -> FaissIndex:
    """Pyserini's ``FaissSearcher`` over ``index``, with RepLLaMA as its query encoder, and the index's segment manifest."""
    from pathlib import Path

    from ...encoders.pyserini_adapters import RepLLaMAQueryEncoder
    from ...errors import PyseriniLlamaError
    from ...prebuilt_indexes import resolve_index

    faiss_module = import_pyserini("pyserini.search.faiss")
    query_encoder = RepLLaMAQueryEncoder(encoder=encoder)
    index = str(resolve_index(index, device=encoder.device))  # our registry names -> cached or built directory
    segments = None
    if Path(index).is_dir():
        if not (Path(index) / "index").is_file() or not (Path(index) / "docid").is_file():
            raise PyseriniLlamaError(f"{index}: not a Pyserini FAISS index (needs the files 'index' and 'docid')")
        searcher = faiss_module.FaissSearcher(str(index), query_encoder)
        from ...modeling.segments import read_manifest

        segments = read_manifest(index)
    else:
        try:
            searcher = faiss_module.FaissSearcher.from_prebuilt_index(index, query_encoder)
        except Exception as exc:
            raise PyseriniLlamaError(f"{index}: no such index directory, and no prebuilt index ({exc})") from None
        if searcher is None:
            raise PyseriniLlamaError(f"{index}: no such index directory or prebuilt index")
    if searcher.dimension != encoder.dimension:
        raise PyseriniLlamaError(
            f"{index} holds {searcher.dimension}-dim vectors but the encoder makes {encoder.dimension}-dim ones"
        )
    return FaissIndex(searcher, segments)


def dense_search(
    index: FaissIndex,
    encoder: RepLLaMAEncoder,
    queries: Mapping[str, str],
    *,
    hits: int = HITS,
    threads: int = 1,
    batch_size: int | None = None,
    remove_query: bool = False,
    work_dir: str | os.PathLike | None = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    commit_seconds: float = DEFAULT_COMMIT_SECONDS,
) -> Run:
    """Encode all queries (length-sorted batches within chunks of ``chunk_size``) and search them
    in one FAISS call.

    With ``work_dir`` the encoded queries are committed there as they are made (query encoding is
    the cost of a search; ``encoders/resumable.py``) and a rerun reuses them; the caller removes it
    (``discard_work``) once the run is written. Over a MaxP segment index (see the module
    docstring) the run holds document ids, each once.
    """
    qids = list(queries)
    vectors = encode_resumable(
        encoder,
        encoder.format_queries([queries[q] for q in qids]),
        encoder.query_max_length,
        work_dir,
        batch_size=batch_size,
        chunk_size=chunk_size,
        commit_seconds=commit_seconds,
        what="queries",
    )
    k = hits + 1 if remove_query else hits
    if index.segments and index.segments.get("aggregate") == "maxp":
        found_by_qid = _search_segments(index, vectors, qids, k, threads)
    else:
        results = _batch_search_keeping_torch_threads(
            index.searcher, vectors, qids, k, threads, index.explicit_ef_search
        )
        found_by_qid = {qid: [(h.docid, float(h.score)) for h in results[qid]] for qid in qids}
    run: Run = {}
    for qid in qids:
        found = [(docid, score) for docid, score in found_by_qid[qid] if not (remove_query and docid == qid)]
        run[qid] = found[:hits]
    return run


def _search_segments(index: FaissIndex, vectors, qids: list[str], k: int, threads: int) -> Run:
    """Best-first documents (MaxP) from segment hits: ``k`` distinct documents per query if the index has them.

    Fetching ``k x (most segments of any document)`` segment hits would always suffice but can
    be huge; instead start at about twice the average segments per document and widen only for
    the queries still short of ``k`` documents, up to that bound (or the whole index).
    """
    import math

    from ...modeling.segments import collapse_hits

    manifest = index.segments
    total = int(index.searcher.num_docs)
    bound = min(total, k * max(1, int(manifest.get("max_segments") or total)))
    per_doc = manifest.get("vectors", total) / max(1, manifest.get("documents", 1))
    depth = min(bound, max(k, math.ceil(2 * k * per_doc)))
    rows = dict(zip(qids, range(len(qids)), strict=True))
    out: Run = {}
    pending = list(qids)
    while pending:
        results = _batch_search_keeping_torch_threads(
            index.searcher, vectors[[rows[q] for q in pending]], pending, depth, threads, index.explicit_ef_search
        )
        short = []
        for qid in pending:
            out[qid] = collapse_hits([(h.docid, float(h.score)) for h in results[qid]])
            if len(out[qid]) < k and depth < bound:
                short.append(qid)
        if short:
            logger.debug("%d queries found < %d documents in %d segment hits; widening", len(short), k, depth)
        pending, depth = short, min(bound, depth * 4)
    return out


def _batch_search_keeping_torch_threads(
    searcher, vectors, qids: list[str], k: int, threads: int, explicit_ef_search: bool = False
):
    """Pyserini's ``batch_search`` calls ``faiss.omp_set_num_threads(threads)``; torch shares that
    OpenMP runtime, so without the restore every later model call in the process (RankLLaMA after
    dense retrieval in one pipeline) would run on ``threads`` cores, by default one."""
    import torch

    from ...indexing.faiss_types import fit_search_depth

    fit_search_depth(searcher.index, k, explicit_ef_search=explicit_ef_search)  # HNSW returns at most ~efSearch hits
    torch_threads = torch.get_num_threads()
    try:
        return searcher.batch_search(vectors, qids, k=k, threads=threads)
    finally:
        torch.set_num_threads(torch_threads)

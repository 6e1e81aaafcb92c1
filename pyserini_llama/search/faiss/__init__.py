"""Dense retrieval with RepLLaMA over a Pyserini FAISS index."""

from __future__ import annotations

import logging
from collections.abc import Mapping

from ...bootstrap import import_pyserini
from ...encoders.repllama import RepLLaMAEncoder

logger = logging.getLogger(__name__)

Run = dict[str, list[tuple[str, float]]]


def open_faiss_searcher(index: str, encoder: RepLLaMAEncoder):
    """Pyserini's ``FaissSearcher`` over ``index``, with RepLLaMA as its query encoder."""
    from pathlib import Path

    from ...encoders.pyserini_adapters import RepLLaMAQueryEncoder
    from ...errors import PyseriniLlamaError
    from ...prebuilt_indexes import resolve_index

    faiss_module = import_pyserini("pyserini.search.faiss")
    query_encoder = RepLLaMAQueryEncoder(encoder=encoder)
    index = str(resolve_index(index, device=encoder.device))  # our registry names -> cached or built directory
    if Path(index).is_dir():
        if not (Path(index) / "index").is_file() or not (Path(index) / "docid").is_file():
            raise PyseriniLlamaError(f"{index}: not a Pyserini FAISS index (needs the files 'index' and 'docid')")
        searcher = faiss_module.FaissSearcher(str(index), query_encoder)
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
    return searcher


def dense_search(
    searcher,
    encoder: RepLLaMAEncoder,
    queries: Mapping[str, str],
    *,
    hits: int = 1000,
    threads: int = 1,
    batch_size: int | None = None,
    remove_query: bool = False,
) -> Run:
    """Encode all queries (length-sorted batches) and search them in one FAISS call."""
    qids = list(queries)
    vectors = encoder.encode_queries([queries[q] for q in qids], batch_size=batch_size, show_progress=True)
    k = hits + 1 if remove_query else hits
    results = _batch_search_keeping_torch_threads(searcher, vectors, qids, k, threads)
    run: Run = {}
    for qid in qids:
        found = [(h.docid, float(h.score)) for h in results[qid] if not (remove_query and h.docid == qid)]
        run[qid] = found[:hits]
    return run


def _batch_search_keeping_torch_threads(searcher, vectors, qids: list[str], k: int, threads: int):
    """Pyserini's ``batch_search`` calls ``faiss.omp_set_num_threads(threads)``; torch shares that
    OpenMP runtime, so without the restore every later model call in the process (RankLLaMA after
    dense retrieval in one pipeline) would run on ``threads`` cores, by default one."""
    import torch

    torch_threads = torch.get_num_threads()
    try:
        return searcher.batch_search(vectors, qids, k=k, threads=threads)
    finally:
        torch.set_num_threads(torch_threads)

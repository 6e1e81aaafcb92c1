"""Multi-stage retrieval: a first stage (BM25, RepLLaMA, or a fusion of both), then RankLLaMA.

Every first stage is a small object with one method, ``batch_search(queries, k) -> Run``, so stages
compose: :class:`HybridStage` fuses any two of them with Pyserini's own fusion code
(``pyserini.fusion``), and :class:`MultiStageSearcher` puts a reranker on top of any of them.
Runs are plain dicts ``{qid: [(docid, score), ...]}``, best first (:mod:`pyserini_llama.data.runs`).

Example (a notebook)::

    from pyserini_llama.rerankers import RankLLaMAReranker
    from pyserini_llama.search.multistage import BM25Stage, HybridStage, MultiStageSearcher, RepLLaMAStage

    bm25 = BM25Stage.build("beir/scifact", "indexes/scifact.lucene")  # or BM25Stage("indexes/scifact.lucene")
    dense = RepLLaMAStage("indexes/scifact.repllama", "castorini/repllama-v1-7b-lora-passage",
                          dtype="bfloat16", device="cuda")
    searcher = MultiStageSearcher(
        HybridStage(bm25, dense, fusion="rrf"),
        reranker=RankLLaMAReranker("castorini/rankllama-v1-7b-lora-passage", dtype="bfloat16", device="cuda"),
        documents="beir/scifact", rerank_depth=100,
    )
    searcher.search("0-dimensional biomaterials show inductive properties.", k=10)  # [(docid, score), ...]
    run = searcher.batch_search({"1": "...", "2": "..."}, k=1000)                    # {qid: [(docid, score)]}

Pyserini (and so Java) is imported only when a BM25 or RepLLaMA stage is built; a reranker over a
:class:`RunStage` (a run file or dict) needs neither.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

from ..bootstrap import import_pyserini
from ..data.runs import Run, read_run, sort_hits
from ..defaults import BM25_B, BM25_K1, HITS, RERANK_DEPTH
from ..errors import PyseriniLlamaError

logger = logging.getLogger(__name__)

FUSION_METHODS = ("rrf", "interpolation")

#: qid used by ``search()`` for its single query; it has a space, so it can never equal a docid.
_SINGLE_QID = "single query"


class FirstStage(Protocol):
    """Anything with ``batch_search(queries, k) -> Run`` can start (or be fused into) a pipeline."""

    def batch_search(self, queries: Mapping[str, str], k: int) -> Run: ...


class BM25Stage:
    """BM25 over a Lucene index with Pyserini's ``LuceneSearcher`` (defaults: Pyserini's BEIR k1 0.9, b 0.4).

    ``remove_query`` drops a hit whose docid equals its qid, as Pyserini's BEIR regressions do.
    """

    def __init__(
        self,
        index: str | os.PathLike,
        *,
        k1: float = BM25_K1,
        b: float = BM25_B,
        threads: int = 1,
        remove_query: bool = False,
    ):
        self.index, self.k1, self.b, self.threads, self.remove_query = Path(index), k1, b, threads, remove_query

    @classmethod
    def build(cls, corpus: str | os.PathLike, index: str | os.PathLike, *, threads: int = 1, **options) -> BM25Stage:
        """Index ``corpus`` (BEIR dir or JSON lines) into ``index`` unless already done, then open it."""
        from .lucene import build_lucene_index

        build_lucene_index(corpus, index, threads=threads)
        return cls(index, threads=threads, **options)

    def batch_search(self, queries: Mapping[str, str], k: int) -> Run:
        from .lucene import bm25_search

        return bm25_search(
            self.index, queries, k, k1=self.k1, b=self.b, threads=self.threads, remove_query=self.remove_query
        )

    def __repr__(self) -> str:
        return f"BM25Stage({str(self.index)!r}, k1={self.k1}, b={self.b})"


class RepLLaMAStage:
    """RepLLaMA dense retrieval: Pyserini's ``FaissSearcher`` over ``index`` with our query encoder.

    ``encoder`` is a loaded :class:`~pyserini_llama.encoders.repllama.RepLLaMAEncoder` or a model
    name, loaded with ``encoder_options`` (``dtype=``, ``device=``, ``query_max_length=`` ...). With
    ``work_dir`` the encoded queries are committed there as they are made, so a killed search
    resumes (``encoders/resumable.py``); the caller removes it once the run is written.
    """

    def __init__(
        self,
        index: str | os.PathLike,
        encoder: Any,
        *,
        threads: int = 1,
        batch_size: int | None = None,
        remove_query: bool = False,
        work_dir: str | os.PathLike | None = None,
        **encoder_options,
    ):
        from ..encoders.repllama import RepLLaMAEncoder
        from .faiss import open_faiss_searcher

        if isinstance(encoder, str | os.PathLike):
            encoder = RepLLaMAEncoder(str(encoder), **encoder_options)
        elif encoder_options:
            raise TypeError(f"encoder options {sorted(encoder_options)} only apply when encoder is a model name")
        self.index, self.encoder = str(index), encoder
        self.threads, self.batch_size, self.remove_query = threads, batch_size, remove_query
        self.work_dir = work_dir
        self.searcher = open_faiss_searcher(self.index, encoder)

    def batch_search(self, queries: Mapping[str, str], k: int) -> Run:
        from .faiss import dense_search

        return dense_search(
            self.searcher,
            self.encoder,
            queries,
            hits=k,
            threads=self.threads,
            batch_size=self.batch_size,
            remove_query=self.remove_query,
            work_dir=self.work_dir,
        )

    def __repr__(self) -> str:
        return f"RepLLaMAStage({self.index!r}, {self.encoder.name!r})"


class RunStage:
    """A precomputed run (a dict or a TREC / MS MARCO file) used as a first stage, e.g. a released run."""

    def __init__(self, run: Run | str | os.PathLike):
        self.run: Run = (
            read_run(run) if isinstance(run, str | os.PathLike) else {q: sort_hits(h) for q, h in run.items()}
        )

    def batch_search(self, queries: Mapping[str, str], k: int) -> Run:
        return {qid: self.run.get(qid, [])[:k] for qid in queries}


def _to_trec_run(run: Run):
    """A ``pyserini.trectools.TrecRun`` holding ``run``, ranks 1.. in trec_eval order, as if read from a file."""
    import pandas as pd

    trectools = import_pyserini("pyserini.trectools")
    rows = [
        (qid, "Q0", docid, rank, float(score), "pyserini-llama")
        for qid, hits in run.items()
        for rank, (docid, score) in enumerate(sort_hits(hits), start=1)
    ]
    trec_run = trectools.TrecRun()
    trec_run.run_data = pd.DataFrame(rows, columns=trectools.TrecRun.columns)
    return trec_run


def fuse_runs(
    runs: Sequence[Run],
    fusion: str = "rrf",
    *,
    alpha: float = 0.5,
    rrf_k: int = 60,
    depth: int | None = None,
    k: int | None = None,
) -> Run:
    """Fuse in-memory runs with Pyserini's ``reciprocal_rank_fusion`` or ``interpolation``.

    Only the conversion to and from Pyserini's ``TrecRun`` is ours; the scores are Pyserini's.
    ``rrf``: sum of ``1 / (rrf_k + rank)`` over the runs. ``interpolation`` (exactly two runs):
    ``alpha * score_in_first + (1 - alpha) * score_in_second``; raw scores, not normalised, and a
    document missing from a run gets nothing from it. ``depth`` hits of each run are used (all by
    default), ``k`` fused hits kept per query (all by default). Queries missing from every input
    are absent; a query with hits in any input is present.
    """
    if fusion not in FUSION_METHODS:
        raise PyseriniLlamaError(f"unknown fusion {fusion!r}; choose {' or '.join(FUSION_METHODS)}")
    if len(runs) < 2 or (fusion == "interpolation" and len(runs) != 2):
        raise ValueError(f"{fusion} fusion needs {'exactly' if fusion == 'interpolation' else 'at least'} 2 runs")
    out: Run = {qid: [] for run in runs for qid, hits in run.items() if hits}
    if not out:
        return {}
    pyserini_fusion = import_pyserini("pyserini.fusion")
    trec_runs = [_to_trec_run(run) for run in runs]
    if fusion == "rrf":
        fused = pyserini_fusion.reciprocal_rank_fusion(trec_runs, rrf_k=rrf_k, depth=depth, k=k)
    else:
        fused = pyserini_fusion.interpolation(trec_runs, alpha=alpha, depth=depth, k=k)
    data = fused.run_data
    for qid, docid, score in zip(data["topic"], data["docid"], data["score"], strict=True):
        out[qid].append((docid, float(score)))
    return {qid: sort_hits(hits) for qid, hits in out.items()}


class HybridStage:
    """Two first stages fused with Pyserini's fusion (``rrf`` by default, or ``interpolation``).

    ``depth`` hits are taken from each stage (at least the ``k`` asked for), as Pyserini's fusion
    CLI pools 1000 by default. For ``interpolation``, ``alpha`` weights ``first`` and
    ``1 - alpha`` weights ``second``: with ``HybridStage(bm25, dense)`` alpha is the BM25 weight, as
    in Pyserini's ``HybridSearcher``. BM25 scores are far larger than RepLLaMA's cosines, so pick
    alpha well below 0.5 or use ``rrf``.
    """

    def __init__(
        self,
        first: FirstStage,
        second: FirstStage,
        *,
        fusion: str = "rrf",
        alpha: float = 0.5,
        rrf_k: int = 60,
        depth: int = HITS,
    ):
        if fusion not in FUSION_METHODS:
            raise PyseriniLlamaError(f"unknown fusion {fusion!r}; choose {' or '.join(FUSION_METHODS)}")
        self.first, self.second = first, second
        self.fusion, self.alpha, self.rrf_k, self.depth = fusion, alpha, rrf_k, depth

    def batch_search(self, queries: Mapping[str, str], k: int) -> Run:
        depth = max(k, self.depth)
        runs = [self.first.batch_search(queries, depth), self.second.batch_search(queries, depth)]
        fused = fuse_runs(runs, self.fusion, alpha=self.alpha, rrf_k=self.rrf_k, k=k)
        return {qid: fused.get(qid, []) for qid in queries}

    def __repr__(self) -> str:
        return f"HybridStage({self.first!r}, {self.second!r}, fusion={self.fusion!r})"


class MultiStageSearcher:
    """A first stage, optionally followed by a reranker over its top ``rerank_depth`` hits.

    ``documents`` (needed with a reranker) maps docids to documents: a dict or anything
    :func:`~pyserini_llama.data.corpus.open_document_store` opens (a BEIR dir, a corpus file, a
    Lucene index with stored documents). Hits below ``rerank_depth`` keep their first-stage order
    underneath the reranked ones (see ``RankLLaMAReranker.rerank_run``).
    """

    def __init__(
        self,
        first_stage: FirstStage,
        reranker: Any = None,
        *,
        documents: Mapping[str, Any] | str | os.PathLike | None = None,
        rerank_depth: int = RERANK_DEPTH,
        show_progress: bool = False,
    ):
        if rerank_depth < 1:
            raise ValueError("rerank_depth must be at least 1")
        if reranker is not None and documents is None:
            raise PyseriniLlamaError("a reranker needs documents= (a corpus, BEIR dir, Lucene index or dict)")
        if isinstance(documents, str | os.PathLike):
            from ..data.corpus import open_document_store

            documents = open_document_store(documents)
        self.first_stage, self.reranker, self.documents = first_stage, reranker, documents
        self.rerank_depth, self.show_progress = rerank_depth, show_progress

    def batch_search(self, queries: Mapping[str, str], k: int = 10) -> Run:
        """Top ``k`` hits per query: first stage to ``max(k, rerank_depth)``, reranked to ``rerank_depth``."""
        if k < 1:
            raise ValueError("k must be at least 1")
        if self.reranker is None:
            return {qid: hits[:k] for qid, hits in self.first_stage.batch_search(queries, k).items()}
        first = self.first_stage.batch_search(queries, max(k, self.rerank_depth))
        reranked = self.reranker.rerank_run(
            queries, first, self.documents, depth=self.rerank_depth, show_progress=self.show_progress
        )
        return {qid: hits[:k] for qid, hits in reranked.items()}

    def search(self, query: str, k: int = 10) -> list[tuple[str, float]]:
        """``[(docid, score), ...]`` best first for one query."""
        return self.batch_search({_SINGLE_QID: query}, k).get(_SINGLE_QID, [])

"""Evaluate one model setting the way the single-step commands would, through the library.

:func:`dense_point` is ``encode`` + ``search.faiss`` + ``eval``; :func:`rerank_point` is ``rerank``
+ ``eval``. Both take an already loaded model (loading a 7B model once per sweep, not once per
point, is most of the reason sweeps call the library instead of shelling out) and return the
metrics, the seconds spent and the equivalent command lines.
"""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Sequence
from pathlib import Path

from ..data.runs import Run
from ..modeling.loading import default_dtype
from ..modeling.segments import Segmenter
from .commands import ModelFlags, encode_command, eval_command, rerank_command, search_command
from .inputs import EvalData

logger = logging.getLogger(__name__)

DEFAULT_METRICS = ("ndcg@10", "recall@100")


def evaluate(data: EvalData, run: Run, metrics: Sequence[str]) -> dict[str, float]:
    """trec_eval -c means, as the pipeline reports BEIR results."""
    from ..eval import evaluate_run

    return evaluate_run(data.qrels, run, list(metrics), complete=True)


def dense_point(
    encoder,
    data: EvalData,
    *,
    model: str,
    index_dir: Path,
    run_path: Path,
    max_length: int,
    segments: Segmenter | None,
    hits: int,
    remove_query: bool,
    flags: ModelFlags,
    metrics: Sequence[str] = DEFAULT_METRICS,
    keep_index: bool = False,
) -> dict:
    """Encode the corpus at ``max_length`` tokens (optionally as FirstP/MaxP segments), search, evaluate."""
    from ..data.runs import write_trec_run
    from ..encode import encode_corpus
    from ..search.faiss import dense_search, open_faiss_searcher

    started = time.perf_counter()
    encode_corpus(
        encoder,
        list(data.documents.values()),
        index_dir,
        to_faiss=True,
        batch_size=flags.batch_size,
        max_length=max_length,
        segments=segments,
    )
    encoded = time.perf_counter()
    searcher = open_faiss_searcher(str(index_dir), encoder)
    run = dense_search(
        searcher, encoder, data.queries, hits=hits, batch_size=flags.batch_size, remove_query=remove_query
    )
    write_trec_run(run, run_path, tag="ablate-repllama", hits=hits)
    if not keep_index:
        shutil.rmtree(index_dir, ignore_errors=True)
    commands = [
        encode_command(str(data.corpus), str(index_dir), model, max_length, flags, segments),
        search_command(
            str(index_dir),
            str(data.queries_path),
            model,
            encoder.query_max_length,
            hits,
            str(run_path),
            flags,
            remove_query,
        ),
        eval_command(str(data.qrels_path), str(run_path), metrics),
    ]
    return {
        "metrics": evaluate(data, run, metrics),
        "seconds": round(time.perf_counter() - started, 1),
        "encode_seconds": round(encoded - started, 1),
        "run": str(run_path),
        "commands": commands,
    }


def rerank_point(
    reranker,
    data: EvalData,
    first_stage: Run,
    first_stage_path: Path,
    *,
    model: str,
    run_path: Path,
    depth: int,
    max_length: int,
    query_max_length: int,
    segments: Segmenter | None,
    flags: ModelFlags,
    skip_missing_docs: bool = False,
    metrics: Sequence[str] = DEFAULT_METRICS,
) -> dict:
    """Rerank the top ``depth`` of ``first_stage`` with pairs of ``max_length`` tokens, evaluate."""
    from ..data.runs import write_trec_run
    from ..errors import PyseriniLlamaError

    room = max_length - query_max_length - reranker.template.size - int(reranker.append_eos)
    if room < 1:
        raise PyseriniLlamaError(
            f"a pair of {max_length} tokens leaves no room for the document after a {query_max_length}-token query"
        )
    reranker.max_length, reranker.query_max_length, reranker.segments = max_length, query_max_length, segments
    started = time.perf_counter()
    run = reranker.rerank_run(
        data.queries, first_stage, data.documents, depth, skip_missing_docs=skip_missing_docs, show_progress=True
    )
    write_trec_run(run, run_path, tag="ablate-rankllama")
    commands = [
        rerank_command(
            str(data.queries_path),
            str(first_stage_path),
            str(data.corpus),
            model,
            depth,
            max_length,
            query_max_length,
            str(run_path),
            flags,
            segments,
            skip_missing_docs,
        ),
        eval_command(str(data.qrels_path), str(run_path), metrics),
    ]
    return {
        "metrics": evaluate(data, run, metrics),
        "seconds": round(time.perf_counter() - started, 1),
        "run": str(run_path),
        "commands": commands,
    }


def precision(flags: ModelFlags) -> str:
    """The dtype models load in: ``--dtype``, else bfloat16 on GPU and float32 on CPU (as the pipeline)."""
    return default_dtype(flags.device, flags.dtype)


def load_encoder(model: str, flags: ModelFlags, query_max_length: int):
    from ..encoders.repllama import RepLLaMAEncoder

    options = {"max_batch_tokens": flags.max_batch_tokens} if flags.max_batch_tokens else {}
    return RepLLaMAEncoder(
        model,
        dtype=precision(flags),
        device=flags.device,
        query_max_length=query_max_length,
        batch_size=flags.batch_size,
        **options,
    )


def load_reranker(model: str, flags: ModelFlags, query_max_length: int, max_length: int):
    from ..rerankers import RankLLaMAReranker

    options = {"max_batch_tokens": flags.max_batch_tokens} if flags.max_batch_tokens else {}
    return RankLLaMAReranker(
        model,
        dtype=precision(flags),
        device=flags.device,
        query_max_length=query_max_length,
        max_length=max_length,
        batch_size=flags.batch_size,
        **options,
    )

"""``python -m pyserini_llama.rerank``: rerank a first-stage run with RankLLaMA and write a TREC run."""

from __future__ import annotations

import argparse
import logging
import time
from collections.abc import Mapping
from typing import Any

from ..cli_options import (
    add_interpolation_options,
    add_max_batch_tokens_option,
    add_model_options,
    add_segment_options,
    command_parser,
    interpolation_from_args,
    model_options,
    segmenter_from_args,
)
from ..defaults import QUERY_MAX_LENGTH, RERANK_BATCH_SIZE, RERANK_DEPTH, RERANK_MAX_LENGTH
from ..errors import PyseriniLlamaError, run_cli

logger = logging.getLogger("pyserini_llama.rerank")

EXAMPLE = """example:
  python -m pyserini_llama.rerank \\
    --topics ../shared/data/msmarco-passage/dl19/queries.jsonl \\
    --run ../shared/data/msmarco-passage/dl19/run.bm25-top100.trec \\
    --corpus ../shared/data/msmarco-passage/dl19/corpus.jsonl \\
    --reranker castorini/rankllama-v1-7b-lora-passage --base-model meta-llama/Llama-2-7b-hf \\
    --depth 100 --batch-size 32 --device cuda --dtype bfloat16 \\
    --output runs/run.dl19.bm25.rankllama.trec

The top --depth hits of each query are rescored and sorted; hits below --depth keep their
first-stage order underneath, with scores below the lowest reranked score.

Long documents (e.g. castorini/rankllama-v1-7b-lora-doc, up to 4096 tokens): raise --max-length;
--max-batch-tokens keeps each batch's padded size bounded. FirstP/MaxP baselines:
  --segment 150,75 --aggregate maxp   each 150-word window (new one every 75 words) is its own
                                      pair with the query; a document scores as its best window
  --segment 150 --aggregate firstp    a document scores as its first 150 words only
The output always holds document ids, each once per query.

Interpolation with the first stage (--interpolate W, W = the reranker's weight): the top --depth
are ordered by W * reranker + (1 - W) * first stage, scores normalised per query. Fit W on a
train/dev split from a pure reranking (this command without --interpolate), never on test:
  python -m pyserini_llama.rerank.sweep --first DEV_RUN --reranked DEV_RERANKED --qrels DEV_QRELS --depth 100
then pass the best W here: ... --interpolate 0.6 --interpolate-norm minmax"""


def build_parser() -> argparse.ArgumentParser:
    from ..rerankers import RERANKER_CLASSES

    parser = command_parser(
        "python -m pyserini_llama.rerank",
        "Rerank a TREC or MS MARCO run with RankLLaMA (pointwise LLaMA cross-encoder).",
        EXAMPLE,
    )
    parser.add_argument("--topics", required=True, help="queries: TSV, BEIR queries.jsonl/dir, or a topic name")
    parser.add_argument("--topics-dir", default=None, help="where topic names are resolved (offline)")
    parser.add_argument("--run", required=True, help="first-stage run: TREC (6 columns) or MS MARCO (3 columns)")
    parser.add_argument(
        "--corpus", required=True, help="BEIR corpus.jsonl or its directory, or a Lucene index with stored documents"
    )
    parser.add_argument("--reranker", required=True, help="model dir/id, SEQ_CLS LoRA adapter, .gguf or short name")
    parser.add_argument("--reranker-class", choices=sorted(RERANKER_CLASSES), default="rankllama")
    parser.add_argument(
        "--depth", type=int, default=RERANK_DEPTH, help=f"hits per query to rerank (default: {RERANK_DEPTH})"
    )
    parser.add_argument(
        "--batch-size", type=int, default=RERANK_BATCH_SIZE, help=f"most pairs per batch (default: {RERANK_BATCH_SIZE})"
    )
    add_max_batch_tokens_option(parser)
    add_segment_options(parser)
    parser.add_argument(
        "--max-length",
        type=int,
        default=None,
        help="pair tokens: query + document + template, as train --max-length (default: what the model was "
        f"trained with, recorded in its input_format.json, else {RERANK_MAX_LENGTH})",
    )
    parser.add_argument(
        "--query-max-length",
        type=int,
        default=None,
        help=f"query tokens kept (default: the model's record, else {QUERY_MAX_LENGTH})",
    )
    parser.add_argument(
        "--append-eos",
        action="store_true",
        help="append EOS to each pair (only for checkpoints trained so; the released ones were not)",
    )
    parser.add_argument(
        "--skip-missing-docs",
        action="store_true",
        help="leave out (and count) run documents missing from the corpus instead of failing",
    )
    parser.add_argument("--output", required=True, help="output TREC run file")
    parser.add_argument("--hits", type=int, default=None, help="hits per query to write (default: all)")
    parser.add_argument("--run-tag", default="rankllama", help="run tag column (default: rankllama)")
    add_interpolation_options(parser)
    add_model_options(parser)
    return parser


def select_documents(
    run: Mapping[str, list[tuple[str, float]]],
    store: Mapping[str, Any],
    depth: int,
    *,
    run_path: str,
    corpus: str,
    skip_missing: bool,
) -> dict[str, Any]:
    """The documents of the top ``depth`` hits, fetched once, before any model is loaded."""
    documents: dict[str, Any] = {}
    missing: list[tuple[str, str]] = []
    for qid, hits in run.items():
        for docid, _ in hits[:depth]:
            if docid in documents:
                continue
            doc = store.get(docid)
            if doc is None:
                missing.append((qid, docid))
            else:
                documents[docid] = doc
    if missing:
        qid, docid = missing[0]
        if not skip_missing:
            raise PyseriniLlamaError(
                f"{run_path}: document {docid} (query {qid}) is not in the corpus {corpus}"
                f" ({len(missing)} missing hit(s) in the top {depth}); pass --skip-missing-docs to leave them out"
            )
        logger.warning(
            "%s: skipping %d hit(s) whose document is not in %s, e.g. %s (query %s)",
            run_path,
            len(missing),
            corpus,
            docid,
            qid,
        )
    return documents


def main(argv: list[str] | None = None, *, queries: Mapping[str, str] | None = None) -> int:
    """Run the command; ``queries`` (qid -> text) replaces reading ``--topics`` (then only named in messages).

    Pyserini's search commands pass the queries they searched (:mod:`.pyserini_search`), so both
    stages see the same text however Pyserini read its topics.
    """
    args = build_parser().parse_args(argv)
    for flag in ("depth", "batch_size", "max_batch_tokens", "max_length", "query_max_length"):
        if getattr(args, flag) is not None and getattr(args, flag) < 1:
            raise PyseriniLlamaError(f"--{flag.replace('_', '-')} must be at least 1")
    if args.hits is not None and args.hits < 1:
        raise PyseriniLlamaError("--hits must be at least 1")
    segments = segmenter_from_args(args)
    norm = interpolation_from_args(args.interpolate, args.interpolate_norm)

    from ..data.corpus import open_document_store
    from ..data.queries import read_queries
    from ..data.runs import read_run, write_trec_run
    from ..rerankers import RERANKER_CLASSES

    if queries is None:
        queries = read_queries(args.topics, topics_dir=args.topics_dir)
    run = read_run(args.run)
    if not run:
        raise PyseriniLlamaError(f"{args.run}: the run is empty")
    absent = [qid for qid in run if qid not in queries]
    if absent:
        raise PyseriniLlamaError(
            f"{args.run}: query {absent[0]} is not in the topics {args.topics}"
            f" ({len(absent)} of {len(run)} run queries missing)"
        )
    documents = select_documents(
        run,
        open_document_store(args.corpus),
        args.depth,
        run_path=args.run,
        corpus=args.corpus,
        skip_missing=args.skip_missing_docs,
    )

    reranker = RERANKER_CLASSES[args.reranker_class](
        args.reranker,
        **model_options(args),
        query_max_length=args.query_max_length,
        max_length=args.max_length,
        batch_size=args.batch_size,
        max_batch_tokens=args.max_batch_tokens,
        append_eos=args.append_eos,
        segments=segments,
    )
    started = time.perf_counter()
    reranked = reranker.rerank_run(
        queries, run, documents, args.depth, skip_missing_docs=args.skip_missing_docs, show_progress=True
    )
    seconds = time.perf_counter() - started
    pairs = sum(docid in documents for hits in run.values() for docid, _ in hits[: args.depth])
    if args.interpolate is not None:
        from .interpolation import interpolate_reranking

        reranked = interpolate_reranking(
            run, reranked, args.interpolate, args.depth, norm, skip_missing=args.skip_missing_docs
        )
        logger.info("interpolated: %g * reranker + %g * first stage (%s)", args.interpolate, 1 - args.interpolate, norm)
    write_trec_run(reranked, args.output, tag=args.run_tag, hits=args.hits)
    logger.info(
        "reranked %d queries (%d pairs) in %.1f s (%.1f pairs/s); wrote %s",
        len(run),
        pairs,
        seconds,
        pairs / max(seconds, 1e-9),
        args.output,
    )
    return 0


def cli() -> None:
    run_cli(main)


if __name__ == "__main__":
    cli()

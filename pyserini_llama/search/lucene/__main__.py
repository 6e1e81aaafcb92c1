"""``python -m pyserini_llama.search.lucene`` (``pyserini-llama-bm25``): BM25 runs, building the index when needed."""

from __future__ import annotations

import argparse
import logging

from ...cli_options import add_bm25_options, command_parser
from ...data.lucene_store import is_lucene_index
from ...data.queries import read_beir_split, read_queries
from ...data.runs import write_trec_run
from ...defaults import HITS
from ...errors import PyseriniLlamaError, run_cli
from . import bm25_search, build_lucene_index

logger = logging.getLogger("pyserini_llama.search.lucene")

EPILOG = """examples:
  # BM25 on a BEIR dataset (the index is built once, then reused), as Pyserini's BEIR flat runs:
  python -m pyserini_llama.search.lucene --dataset beir/scifact --split test \\
      --index indexes/scifact.bm25 --output runs/scifact.bm25.trec --remove-query
  # your own corpus and topics (a file or a Pyserini topic name):
  python -m pyserini_llama.search.lucene --corpus corpus.jsonl --topics topics.tsv \\
      --index indexes/mine --output run.trec --hits 100
"""


def build_parser() -> argparse.ArgumentParser:
    parser = command_parser(
        "python -m pyserini_llama.search.lucene",
        "BM25 first-stage retrieval with Pyserini's Lucene (builds the index when needed).",
        EPILOG,
    )
    parser.add_argument("--dataset", help="BEIR dataset directory: corpus.jsonl, queries.jsonl, qrels/<split>.tsv")
    parser.add_argument("--split", default="test", help="BEIR split whose judged queries are searched (default: test)")
    parser.add_argument("--corpus", help="corpus to index (default: the --dataset's corpus.jsonl)")
    parser.add_argument("--topics", help="queries: TSV/JSONL file or Pyserini topic name (default: the --split's)")
    parser.add_argument("--topics-dir", help="directory with topics.<name>.* files for topic names")
    parser.add_argument("--index", required=True, help="Lucene index directory (built here if missing)")
    parser.add_argument("--output", required=True, help="TREC run file to write")
    parser.add_argument("--hits", type=int, default=HITS, help=f"hits per query (default: {HITS})")
    parser.add_argument("--threads", type=int, default=1, help="search and indexing threads (default: 1)")
    parser.add_argument("--batch-size", type=int, default=1000, help="queries per batch_search call (default: 1000)")
    add_bm25_options(parser)
    parser.add_argument("--remove-query", action="store_true", help="drop hits whose docid equals the query id")
    parser.add_argument("--overwrite", action="store_true", help="rebuild the index even if it is complete")
    parser.add_argument("--skip-bad-lines", action="store_true", help="skip (and count) malformed input lines")
    parser.add_argument("--tag", default="bm25", help="run tag in the output (default: bm25)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.hits < 1 or args.threads < 1 or args.batch_size < 1:
        raise PyseriniLlamaError("--hits, --threads and --batch-size must be at least 1")
    corpus = args.corpus or args.dataset
    qrels = None
    if args.topics:
        queries = read_queries(args.topics, topics_dir=args.topics_dir, skip_bad_lines=args.skip_bad_lines)
    elif args.dataset:
        queries, qrels = read_beir_split(args.dataset, args.split)
    else:
        raise PyseriniLlamaError("give --dataset, or --topics (with --corpus or an existing --index)")
    if corpus:
        build_lucene_index(
            corpus, args.index, threads=args.threads, skip_bad_lines=args.skip_bad_lines, overwrite=args.overwrite
        )
    elif not is_lucene_index(args.index):
        raise PyseriniLlamaError(f"{args.index} is not a Lucene index: give --corpus or --dataset to build it")
    run = bm25_search(
        args.index,
        queries,
        args.hits,
        k1=args.k1,
        b=args.b,
        threads=args.threads,
        batch_size=args.batch_size,
        remove_query=args.remove_query,
    )
    write_trec_run(run, args.output, tag=args.tag)
    logger.info("wrote %d queries to %s", len(run), args.output)
    if qrels:
        from ...eval import evaluate_run

        # complete=True (trec_eval -c) as Pyserini's BEIR evaluations: queries without any hit count as 0
        scores = evaluate_run(qrels, run, ["ndcg@10", "recall@100", "recall@1000"], complete=True)
        summary = ", ".join(f"{m} {v:.4f}" for m, v in scores.items())
        logger.info("%s %s (trec_eval -c): %s", args.dataset, args.split, summary)
    return 0


def cli() -> None:
    run_cli(main)


if __name__ == "__main__":
    cli()

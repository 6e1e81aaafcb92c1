"""``python -m pyserini_llama.search.faiss``: Pyserini's dense search command for RepLLaMA."""

from __future__ import annotations

import argparse
import logging
import runpy
import sys

from ...cli_options import add_model_options, add_resume_options, check_resume_options, command_parser, model_options
from ...defaults import ENCODE_BATCH_SIZE, ENCODE_MAX_LENGTH, HITS
from ...errors import run_cli

logger = logging.getLogger("pyserini_llama.search.faiss")

EXAMPLE = """example:
  python -m pyserini_llama.search.faiss \\
    --index indexes/scifact.repllama --topics beir-v1.0.0-scifact-test \\
    --topics-dir ../shared/data/topics-and-qrels \\
    --encoder castorini/repllama-v1-7b-lora-passage --encoder-class repllama \\
    --output runs/run.scifact.repllama.trec --hits 1000 --batch-size 16 --device cuda --dtype bfloat16

Approximate indexes (encode --index-type hnsw|ivfpq|...): --ef-search N (HNSW), --nprobe N (IVF);
--device cuda also moves the index to the GPUs when faiss-gpu is installed (--faiss-device cpu|cuda).

--topics: a Pyserini topic name (resolved offline from --topics-dir or $PYSERINI_LLAMA_TOPICS_DIR),
a TSV file (qid<TAB>query) or a BEIR queries.jsonl. Encoded queries are committed to OUTPUT.partial/
as they are made (--chunk-size, --commit-seconds): rerun a killed search with the same command and it
resumes, writing the same run byte for byte. Any other --encoder-class is handed to
`python -m pyserini.search.faiss` unchanged."""


def build_parser() -> argparse.ArgumentParser:
    p = command_parser(
        "python -m pyserini_llama.search.faiss",
        "Search a Pyserini FAISS index with RepLLaMA query embeddings; write a TREC run.",
        EXAMPLE,
    )
    p.add_argument("--index", required=True, help="FAISS index directory (index + docid) or prebuilt index name")
    p.add_argument("--topics", required=True, help="topic name, TSV file or BEIR queries.jsonl")
    p.add_argument("--topics-dir", default=None, help="directory of topics/qrels files for topic names")
    p.add_argument("--encoder", required=True, help="model dir/id, LoRA adapter, .gguf file or short name")
    p.add_argument("--encoder-class", default="repllama", help="repllama (default); others go to pyserini")
    p.add_argument("--output", required=True, help="run file to write")
    p.add_argument("--output-format", choices=("trec", "msmarco"), default="trec")
    p.add_argument("--hits", type=int, default=HITS)
    p.add_argument("--batch-size", type=int, default=ENCODE_BATCH_SIZE, help="queries per encoder batch")
    p.add_argument("--threads", type=int, default=1, help="FAISS search threads")
    add_resume_options(p, "queries")
    p.add_argument("--ef-search", type=int, default=None, help="HNSW search beam (HNSW indexes only; >= --hits)")
    p.add_argument("--nprobe", type=int, default=None, help="IVF lists probed per query (IVF indexes only)")
    p.add_argument(
        "--faiss-device",
        choices=("auto", "cpu", "cuda"),
        default="auto",
        help="where FAISS searches: auto = the GPUs when --device cuda and faiss-gpu is installed, else CPU",
    )
    p.add_argument("--max-length", type=int, default=ENCODE_MAX_LENGTH, help="query max length in tokens, EOS included")
    p.add_argument("--query-prefix", default=None, help='query prefix (default "query: ")')
    p.add_argument("--dimension", type=int, default=None, help="Matryoshka prefix length (must match the index)")
    p.add_argument("--remove-query", action="store_true", help="drop a hit whose docid equals the query id")
    p.add_argument("--skip-bad-lines", action="store_true", help="skip malformed topic lines, counting them")
    add_model_options(p)
    return p


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser().parse_args(argv)
    if args.encoder_class != "repllama":
        from ...bootstrap import import_pyserini

        import_pyserini("pyserini.search.faiss")
        sys.argv = ["pyserini.search.faiss", *argv]
        runpy.run_module("pyserini.search.faiss", run_name="__main__", alter_sys=True)
        return 0
    check_resume_options(args)

    from ...cache import discard_work, work_dir_for
    from ...data.queries import read_queries
    from ...data.runs import write_trec_run
    from ...encoders.repllama import RepLLaMAEncoder
    from ...indexing.faiss_types import prepare_for_search
    from . import dense_search, open_faiss_searcher

    queries = read_queries(args.topics, topics_dir=args.topics_dir, skip_bad_lines=args.skip_bad_lines)
    encoder = RepLLaMAEncoder(
        args.encoder,
        **model_options(args),
        query_max_length=args.max_length,
        batch_size=args.batch_size,
        dimension=args.dimension,
    )
    if args.query_prefix is not None:
        encoder.query_prefix = args.query_prefix
    index = open_faiss_searcher(args.index, encoder)
    index.searcher.index = prepare_for_search(
        index.searcher.index,
        ef_search=args.ef_search,
        nprobe=args.nprobe,
        faiss_device=args.faiss_device,
        model_device=args.device,
    )
    index.explicit_ef_search = args.ef_search is not None
    work_dir = work_dir_for(args.output)  # encoded queries, committed as they are made; a rerun resumes
    run = dense_search(
        index,
        encoder,
        queries,
        hits=args.hits,
        threads=args.threads,
        remove_query=args.remove_query,
        work_dir=work_dir,
        chunk_size=args.chunk_size,
        commit_seconds=args.commit_seconds,
    )
    write_trec_run(run, args.output, tag="pyserini-llama-repllama", hits=args.hits, output_format=args.output_format)
    discard_work(work_dir)
    logger.info("wrote %d queries to %s", len(run), args.output)
    return 0


def cli() -> None:
    run_cli(main)


if __name__ == "__main__":
    cli()

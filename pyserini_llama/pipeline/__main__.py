"""``python -m pyserini_llama.pipeline``: BM25 / RepLLaMA / hybrid retrieval + RankLLaMA on a BEIR dataset."""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

from ..cli_options import (
    add_bm25_options,
    add_interpolation_options,
    add_repllama_length_options,
    command_parser,
    interpolation_from_args,
)
from ..defaults import (
    ENCODE_BATCH_SIZE,
    HITS,
    QUERY_MAX_LENGTH,
    RERANK_DEPTH,
    RERANK_MAX_LENGTH,
)
from ..errors import run_cli
from ..precision import PRECISION_HELP, PRECISION_METAVAR, precision_arg

logger = logging.getLogger("pyserini_llama.pipeline")

EXAMPLE = """examples:
  # BM25 alone (Pyserini's BEIR flat setting; SciFact test nDCG@10 0.6789):
  python -m pyserini_llama.pipeline --dataset ../shared/data/beir/scifact --split test \\
      --stages bm25 --output-dir runs/scifact

  # the paper's pipeline: RepLLaMA top-1000, RankLLaMA on its top 100, with BM25 and a hybrid for comparison:
  python -m pyserini_llama.pipeline --dataset ../shared/data/beir/scifact --split test \\
      --stages bm25,repllama,hybrid,rankllama \\
      --retriever castorini/repllama-v1-7b-lora-passage --reranker castorini/rankllama-v1-7b-lora-passage \\
      --rerank-depth 100 --device cuda --dtype bfloat16 --batch-size 32 --output-dir runs/scifact

Re-running with other settings rebuilds only what they affect (e.g. a new --rerank-depth reruns
only rankllama); every artifact in --output-dir has a <name>.manifest.json saying what it was made
from. rankllama reranks the last first stage listed in the order hybrid > repllama > bm25.

--rerank-interpolate W mixes RankLLaMA with that first stage (W = the reranker's weight): run.rankllama.trec
is then W * reranker + (1 - W) * first stage and run.rankllama-pure.trec the pure reranking, both in the
metrics table; a new W recomputes only the mix, never the reranking. Fit W on a train/dev split:
  python -m pyserini_llama.rerank.sweep --first runs/scifact-train/run.hybrid.trec \\
      --reranked runs/scifact-train/run.rankllama.trec \\
      --qrels ../shared/data/beir/scifact/qrels/train.tsv --depth 100"""


def stage_list(text: str) -> list[str]:
    return [s.strip().lower() for s in text.split(",") if s.strip()]


def build_parser() -> argparse.ArgumentParser:
    p = command_parser(
        "python -m pyserini_llama.pipeline",
        "Index, retrieve, rerank and evaluate on a BEIR dataset; one TREC run per stage, metrics.json.",
        EXAMPLE,
    )
    p.add_argument("--dataset", required=True, type=Path, help="BEIR dataset dir: corpus.jsonl, queries.jsonl, qrels/")
    p.add_argument("--split", default="test", help="qrels split whose judged queries are searched (default: test)")
    p.add_argument("--output-dir", required=True, type=Path, help="indexes, runs, manifests and metrics.json go here")
    p.add_argument(
        "--index-dir",
        type=Path,
        default=None,
        metavar="DIR",
        help="keep the BM25 and FAISS indexes here instead (share one DIR between the splits of a corpus: "
        "an index is built once and reused by every split's run)",
    )
    p.add_argument(
        "--stages",
        type=stage_list,
        default=None,
        help="comma-separated: bm25,repllama,hybrid,rankllama (default: bm25, plus repllama with "
        "--retriever, plus rankllama with --reranker)",
    )
    p.add_argument("--retriever", default=None, help="RepLLaMA model: dir, hub id, LoRA adapter, .gguf or short name")
    p.add_argument("--reranker", default=None, help="RankLLaMA model: dir, hub id, SEQ_CLS LoRA adapter, .gguf ...")
    p.add_argument(
        "--rerank-depth",
        type=int,
        default=RERANK_DEPTH,
        help=f"hits per query RankLLaMA rescores (default: {RERANK_DEPTH})",
    )
    add_interpolation_options(p, "--rerank-interpolate", depth_flag="--rerank-depth")
    p.add_argument("--hits", type=int, default=HITS, help=f"hits per query of every run (default: {HITS})")
    p.add_argument(
        "--fusion",
        choices=("rrf", "interpolation"),
        default="rrf",
        help="hybrid: Pyserini's reciprocal_rank_fusion or interpolation (default: rrf)",
    )
    p.add_argument(
        "--alpha",
        type=float,
        default=0.5,
        help="interpolation: alpha * bm25 + (1 - alpha) * repllama, raw scores (default: 0.5)",
    )
    p.add_argument("--rrf-k", type=int, default=60, help="rrf: 1 / (k + rank) (default: 60)")
    p.add_argument(
        "--batch-size",
        type=int,
        default=ENCODE_BATCH_SIZE,
        help=f"texts per model batch (default: {ENCODE_BATCH_SIZE})",
    )
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default: cpu)")
    p.add_argument(
        "--dtype",
        type=precision_arg,
        metavar=PRECISION_METAVAR,
        default=None,
        help=f"model precision (default: bfloat16 on GPU, else float32): {PRECISION_HELP}",
    )
    add_repllama_length_options(p)
    p.add_argument(
        "--reranker-query-max-length",
        type=int,
        default=None,
        help=f"RankLLaMA query tokens (default: the model's input_format.json, else {QUERY_MAX_LENGTH})",
    )
    p.add_argument(
        "--reranker-max-length",
        type=int,
        default=None,
        help="RankLLaMA pair tokens, query + document + template (default: what the model was trained with, "
        f"recorded in its input_format.json, else {RERANK_MAX_LENGTH})",
    )
    p.add_argument(
        "--trunk-cache",
        type=Path,
        default=None,
        metavar="DIR",
        help="RepLLaMA top-K LoRA adapters (train --lora-layers): reuse the frozen layers' states cached in DIR "
        "(float16) and run only the top layers; for fast evaluation of many adapters, not for final numbers",
    )
    p.add_argument("--threads", type=int, default=1, help="indexing and search threads (default: 1)")
    add_bm25_options(p)
    p.add_argument(
        "--keep-query-hits",
        action="store_true",
        help="keep hits whose docid equals the query id (Pyserini's BEIR runs drop them)",
    )
    return p


def main(argv: list[str] | None = None) -> int:
    from . import Pipeline, PipelineConfig, format_table

    args = build_parser().parse_args(argv)
    norm = interpolation_from_args(args.rerank_interpolate, args.rerank_interpolate_norm, "--rerank-interpolate")
    config = PipelineConfig(
        dataset=args.dataset,
        output_dir=args.output_dir,
        split=args.split,
        stages=args.stages,
        retriever=args.retriever,
        reranker=args.reranker,
        rerank_depth=args.rerank_depth,
        hits=args.hits,
        fusion=args.fusion,
        alpha=args.alpha,
        rrf_k=args.rrf_k,
        batch_size=args.batch_size,
        device=args.device,
        dtype=args.dtype,
        query_max_length=args.query_max_length,
        passage_max_length=args.passage_max_length,
        reranker_query_max_length=args.reranker_query_max_length,
        reranker_max_length=args.reranker_max_length,
        threads=args.threads,
        k1=args.k1,
        b=args.b,
        remove_query=not args.keep_query_hits,
        trunk_cache=args.trunk_cache,
        index_dir=args.index_dir,
        rerank_interpolate=args.rerank_interpolate,
        rerank_interpolate_norm=norm,
    )
    from ..precision.cpu import set_torch_threads

    set_torch_threads()  # one per physical core for the models; --threads is Lucene's and FAISS's
    pipeline = Pipeline(config)  # validates flags and reads queries/qrels before anything slow
    print(pipeline.describe(), flush=True)
    started = time.perf_counter()
    metrics = pipeline.run()
    print(format_table(metrics))
    print(f"metrics written to {pipeline.out / 'metrics.json'} ({time.perf_counter() - started:.0f} s)")
    return 0


def cli() -> None:
    run_cli(main)


if __name__ == "__main__":
    cli()

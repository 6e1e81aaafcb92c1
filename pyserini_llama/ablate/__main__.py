"""``python -m pyserini_llama.ablate length|depth|lora-vs-full``: the paper's ablations as resumable sweeps."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from ..cli_options import command_parser
from ..defaults import ENCODE_BATCH_SIZE, HITS, QUERY_MAX_LENGTH, RERANK_DEPTH, RERANK_MAX_LENGTH, TRAIN_BATCH_SIZE
from ..errors import PyseriniLlamaError, run_cli
from ..modeling.loading import DTYPES, default_dtype
from ..precision import PRECISION_HELP, PRECISION_METAVAR, precision_arg

logger = logging.getLogger("pyserini_llama.ablate")

EXAMPLES = """examples (each writes <output-dir>/<sweep>.md, .json, .png, points/*.json, runs/*.trec;
rerun the same command to resume: finished points are reused, an interrupted one is redone):

  # a first-stage run to rerank (BM25; the Lucene index is built once)
  python -m pyserini_llama.search.lucene --dataset ../shared/data/legal/aila2019 --split test \\
      --index indexes/aila.bm25 --output runs/aila.bm25.trec --hits 100

  # input length on AILA 2019 (long judgments): RankLLaMA on BM25's top 20, RepLLaMA over the corpus
  python -m pyserini_llama.ablate length --dataset ../shared/data/legal/aila2019 --split test \\
      --retriever repllama-smollm2-135m --reranker rankllama-smollm2-135m --run runs/aila.bm25.trec \\
      --depth 20 --lengths 64,128,256,512,1024,2048 --full-length 4096 --output-dir ablations/aila.length

  # rerank depth on SciFact (scored once at depth 100, shallower depths derived)
  python -m pyserini_llama.ablate depth --dataset ../shared/data/beir/scifact --split test \\
      --reranker rankllama-smollm2-135m --run runs/scifact.bm25.trec --depths 5,10,20,50,100 \\
      --max-length 96 --output-dir ablations/scifact.depth

  # LoRA vs full fine-tuning (RepLLaMA, SmolLM2-135M, 100 steps each) evaluated on NFCorpus test
  python -m pyserini_llama.ablate lora-vs-full --dataset ../shared/data/beir/nfcorpus --split test \\
      --model smollm2-135m-instruct --train train/nfcorpus.bm25.jsonl --max-steps 100 \\
      --learning-rate 1e-3 --full-learning-rate 1e-5 --output-dir ablations/nfcorpus.lora-vs-full

Each table row carries the equivalent encode / search.faiss / rerank / train / eval commands."""


def int_list(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None
    if not values:
        raise argparse.ArgumentTypeError("expected at least one integer")
    return values


def word_list(text: str) -> list[str]:
    return [v.strip().lower() for v in text.split(",") if v.strip()]


def common_options() -> argparse.ArgumentParser:
    """Flags every sweep takes: the data, the device, batching, the output directory."""
    p = argparse.ArgumentParser(add_help=False)
    data = p.add_argument_group("data (a BEIR directory, or the three files)")
    data.add_argument("--dataset", type=Path, help="BEIR dataset dir: corpus.jsonl, queries.jsonl, qrels/<split>.tsv")
    data.add_argument("--split", default="test", help="qrels split whose judged queries are evaluated (default: test)")
    data.add_argument("--corpus", help="corpus (BEIR corpus.jsonl or Pyserini JSONL); overrides the dataset's")
    data.add_argument("--topics", help="queries file (TSV or BEIR queries.jsonl); overrides the dataset's")
    data.add_argument("--qrels", help="qrels file (TREC or BEIR TSV); overrides the dataset's split")
    data.add_argument(
        "--max-queries", type=int, default=None, help="evaluate the first N judged queries only (CPU budgets)"
    )
    data.add_argument(
        "--pool-depth",
        type=int,
        default=None,
        help="corpus = the documents of --run's top N for the evaluated queries (RepLLaMA on a CPU budget)",
    )
    data.add_argument("--metrics", nargs="+", default=["ndcg@10", "recall@100"], help="first one is plotted")
    run = p.add_argument_group("models and output")
    run.add_argument("--output-dir", required=True, type=Path, help="points, runs, table and plot go here")
    run.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default: cpu)")
    run.add_argument(
        "--dtype",
        type=precision_arg,
        metavar=PRECISION_METAVAR,
        default=None,
        help=f"precision (default float32 on CPU, bfloat16 on GPU): {PRECISION_HELP}; lora-vs-full trains, so "
        "it takes float32, bfloat16 or float16 only",
    )
    run.add_argument(
        "--batch-size",
        type=int,
        default=ENCODE_BATCH_SIZE,
        help=f"most inputs per forward pass (default: {ENCODE_BATCH_SIZE})",
    )
    run.add_argument("--max-batch-tokens", type=int, default=None, help="padded-token budget per forward pass")
    return p


def build_parser() -> argparse.ArgumentParser:
    parser = command_parser(
        "python -m pyserini_llama.ablate",
        "Ablations of the paper as resumable sweeps: input length, rerank depth, LoRA vs full.",
        EXAMPLES,
    )
    sub = parser.add_subparsers(dest="sweep", required=True, metavar="SWEEP")
    common = common_options()
    fmt = argparse.RawDescriptionHelpFormatter

    length = sub.add_parser(
        "length", parents=[common], formatter_class=fmt, epilog=EXAMPLES, help="metric against max input length"
    )
    length.add_argument("--retriever", help="RepLLaMA model: encode the corpus at each length, dense search")
    length.add_argument("--reranker", help="RankLLaMA model: rerank --run at each length (pair tokens, query included)")
    length.add_argument("--run", help="first-stage run RankLLaMA reranks (TREC or MS MARCO)")
    length.add_argument(
        "--depth", type=int, default=RERANK_DEPTH, help=f"hits per query RankLLaMA reranks (default: {RERANK_DEPTH})"
    )
    length.add_argument("--lengths", type=int_list, default=[64, 128, 256, 512, 1024, 2048], help="max lengths")
    length.add_argument("--modes", type=word_list, default=["first", "maxp", "full"], help="first,maxp,full")
    length.add_argument("--full-length", type=int, default=4096, help="tokens of the full-length point (4096)")
    length.add_argument(
        "--query-max-length", type=int, default=QUERY_MAX_LENGTH, help=f"query tokens (default: {QUERY_MAX_LENGTH})"
    )
    length.add_argument(
        "--words-per-token", type=float, default=0.6, help="MaxP window words per token of the length (0.6)"
    )
    length.add_argument("--stride-fraction", type=float, default=0.5, help="MaxP stride, fraction of a window (0.5)")
    length.add_argument("--hits", type=int, default=HITS, help=f"RepLLaMA hits per query (default: {HITS})")
    length.add_argument("--remove-query", action="store_true", help="drop hits whose docid equals the query id")
    length.add_argument("--skip-missing-docs", action="store_true", help="leave out run documents not in the corpus")
    length.add_argument("--keep-indexes", action="store_true", help="keep each point's FAISS index (default: delete)")

    depth = sub.add_parser(
        "depth", parents=[common], formatter_class=fmt, epilog=EXAMPLES, help="RankLLaMA metric against rerank depth"
    )
    depth.add_argument("--reranker", required=True, help="RankLLaMA model")
    depth.add_argument("--run", required=True, help="first-stage run to rerank")
    depth.add_argument("--depths", type=int_list, default=[5, 10, 20, 50, 100], help="depths (default 5,10,20,50,100)")
    depth.add_argument(
        "--max-length",
        type=int,
        default=RERANK_MAX_LENGTH,
        help=f"pair tokens, query included (default: {RERANK_MAX_LENGTH})",
    )
    depth.add_argument(
        "--query-max-length", type=int, default=QUERY_MAX_LENGTH, help=f"query tokens (default: {QUERY_MAX_LENGTH})"
    )
    depth.add_argument("--segment", default=None, metavar="WINDOW[,STRIDE]", help="FirstP/MaxP word windows")
    depth.add_argument("--aggregate", choices=("firstp", "maxp"), default=None, help="with --segment (maxp)")
    depth.add_argument("--skip-missing-docs", action="store_true", help="leave out run documents not in the corpus")

    lora = sub.add_parser(
        "lora-vs-full", parents=[common], formatter_class=fmt, epilog=EXAMPLES, help="LoRA vs full fine-tuning"
    )
    lora.add_argument("--model", default="smollm2-135m-instruct", help="base model both start from")
    lora.add_argument("--objective", choices=("repllama", "rankllama"), default="repllama")
    lora.add_argument("--train", nargs="+", required=True, help="Tevatron training file(s) (pyserini_llama.mine)")
    lora.add_argument("--max-steps", type=int, default=100, help="optimizer steps, the same for both (100)")
    lora.add_argument("--learning-rate", type=float, default=1e-4, help="LoRA learning rate (default: 1e-4)")
    lora.add_argument("--full-learning-rate", type=float, default=None, help="full FT learning rate (default: LoRA's)")
    lora.add_argument("--lora-r", type=int, default=16)
    lora.add_argument("--lora-alpha", type=int, default=32)
    lora.add_argument("--lora-dropout", type=float, default=0.0)
    lora.add_argument(
        "--per-device-batch-size",
        type=int,
        default=TRAIN_BATCH_SIZE,
        help=f"queries per step (default: {TRAIN_BATCH_SIZE})",
    )
    lora.add_argument("--group-size", type=int, default=4, help="1 positive + negatives per query (default: 4)")
    lora.add_argument("--query-max-length", type=int, default=QUERY_MAX_LENGTH)
    lora.add_argument("--passage-max-length", type=int, default=64)
    lora.add_argument("--warmup-steps", type=int, default=10)
    lora.add_argument("--temperature", type=float, default=None, help="RepLLaMA softmax temperature")
    lora.add_argument("--seed", type=int, default=42)
    lora.add_argument("--logging-steps", type=int, default=5, help="loss-curve resolution (default: every 5 steps)")
    lora.add_argument("--save-steps", type=int, default=50, help="checkpoint every N steps (resumption)")
    lora.add_argument("--run", help="rankllama: first-stage run to rerank for evaluation")
    lora.add_argument(
        "--depth", type=int, default=RERANK_DEPTH, help=f"rankllama: hits reranked (default: {RERANK_DEPTH})"
    )
    lora.add_argument("--hits", type=int, default=HITS, help=f"repllama: hits per query (default: {HITS})")
    lora.add_argument("--remove-query", action="store_true", help="drop hits whose docid equals the query id")
    return parser


def _rerank_depth(args: argparse.Namespace) -> int:
    """How deep the sweep reranks its first stage (0 if it does not): the pool must hold that many."""
    if args.sweep == "depth":
        return max(args.depths)
    reranks = args.reranker if args.sweep == "length" else args.objective == "rankllama"
    return args.depth if reranks else 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from .commands import ModelFlags
    from .inputs import load_data

    if args.batch_size < 1 or (args.max_batch_tokens is not None and args.max_batch_tokens < 1):
        raise PyseriniLlamaError("--batch-size and --max-batch-tokens must be at least 1")
    dtype = default_dtype(args.device, args.dtype)
    if args.sweep == "lora-vs-full" and dtype not in DTYPES:
        raise PyseriniLlamaError(
            f"ablate lora-vs-full trains its models, so --dtype {dtype} cannot apply; "
            f"choose one of {', '.join(DTYPES)} (int8 and auto are inference precisions)"
        )
    flags = ModelFlags(args.device, dtype, args.batch_size, args.max_batch_tokens)
    data = load_data(
        args.output_dir,
        dataset=args.dataset,
        split=args.split,
        corpus=args.corpus,
        topics=args.topics,
        qrels=args.qrels,
        max_queries=args.max_queries,
    )
    if args.pool_depth is not None:
        from .inputs import restrict_to_pool

        if not args.run:
            raise PyseriniLlamaError("--pool-depth needs --run: the first-stage run whose top documents form the pool")
        reranked = _rerank_depth(args)
        if reranked > args.pool_depth:
            raise PyseriniLlamaError(f"rerank depth {reranked} is deeper than --pool-depth {args.pool_depth}")
        data = restrict_to_pool(data, args.run, args.pool_depth, args.output_dir)
    metrics = tuple(args.metrics)
    if args.sweep == "length":
        from .length import LengthSweep, run_length_sweep

        sweep = LengthSweep(
            data,
            args.output_dir,
            args.lengths,
            flags,
            retriever=args.retriever,
            reranker=args.reranker,
            run=args.run,
            modes=args.modes,
            depth=args.depth,
            full_length=args.full_length,
            query_max_length=args.query_max_length,
            words_per_token=args.words_per_token,
            stride_fraction=args.stride_fraction,
            hits=args.hits,
            remove_query=args.remove_query,
            skip_missing_docs=args.skip_missing_docs,
            keep_indexes=args.keep_indexes,
            metrics=metrics,
        )
        rows = run_length_sweep(sweep)
    elif args.sweep == "depth":
        from ..cli_options import segmenter_from_args
        from .depth import DepthSweep, run_depth_sweep

        sweep = DepthSweep(
            data,
            args.output_dir,
            args.reranker,
            args.run,
            args.depths,
            flags,
            max_length=args.max_length,
            query_max_length=args.query_max_length,
            segments=segmenter_from_args(args),
            skip_missing_docs=args.skip_missing_docs,
            metrics=metrics,
        )
        rows = run_depth_sweep(sweep)
    else:
        from .lora_vs_full import LoraVsFullSweep, run_lora_vs_full

        options = {
            k: getattr(args, k)
            for k in (
                "model",
                "objective",
                "max_steps",
                "learning_rate",
                "full_learning_rate",
                "lora_r",
                "lora_alpha",
                "lora_dropout",
                "per_device_batch_size",
                "group_size",
                "query_max_length",
                "passage_max_length",
                "warmup_steps",
                "temperature",
                "seed",
                "logging_steps",
                "save_steps",
                "run",
                "depth",
                "hits",
                "remove_query",
            )
        }
        sweep = LoraVsFullSweep(data, args.output_dir, args.train, flags=flags, metrics=metrics, **options)
        rows = run_lora_vs_full(sweep)
    metric = metrics[0]
    for row in rows:
        logger.info("%-28s %s %.4f", row["point"], metric, row[metric])
    logger.info("table: %s", args.output_dir / f"{args.sweep}.md")
    return 0


def cli() -> None:
    run_cli(main)


if __name__ == "__main__":
    cli()

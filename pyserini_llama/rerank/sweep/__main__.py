"""``python -m pyserini_llama.rerank.sweep``: choose ``rerank --interpolate W`` on a train/dev split, no rescoring."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ...cli_options import INTERPOLATION_NORMS, command_parser
from ...errors import PyseriniLlamaError, run_cli

EXAMPLE = """example (SciFact: W is fitted on train, then used once on test):
  python -m pyserini_llama.pipeline --dataset ../shared/data/beir/scifact --split train \\
      --stages bm25,rankllama --reranker MODEL --rerank-depth 100 --output-dir runs/scifact-train
  python -m pyserini_llama.rerank.sweep --first runs/scifact-train/run.bm25.trec \\
      --reranked runs/scifact-train/run.rankllama.trec \\
      --qrels ../shared/data/beir/scifact/qrels/train.tsv --depth 100 --metric ndcg@10
  python -m pyserini_llama.pipeline --dataset ../shared/data/beir/scifact --split test \\
      --stages bm25,rankllama --reranker MODEL --rerank-depth 100 --output-dir runs/scifact \\
      --rerank-interpolate BEST_W

--reranked is the PURE reranking of --first (rerank without --interpolate; the pipeline's
run.rankllama.trec, or run.rankllama-pure.trec when it interpolated) and --depth the depth it was
reranked to. Each weight W ranks the top --depth hits by W * reranker + (1 - W) * first stage,
scores normalised per query (--norm); W = 1 is the pure reranker, W = 0 the first stage. Nothing is
rescored, so the whole grid takes seconds. Ties go to the smaller reranker weight. Choose W on
train/dev queries only: a W picked on the test queries overstates the result you report."""


def build_parser() -> argparse.ArgumentParser:
    parser = command_parser(
        "python -m pyserini_llama.rerank.sweep",
        "Evaluate rerank --interpolate W over a grid of W on a train/dev split and print the best W.",
        EXAMPLE,
    )
    parser.add_argument("--first", required=True, help="first-stage run (TREC or MS MARCO) that was reranked")
    parser.add_argument("--reranked", required=True, help="its pure reranking (rerank without --interpolate)")
    parser.add_argument("--qrels", required=True, help="train/dev qrels: a file or a Pyserini qrels name")
    parser.add_argument("--depth", required=True, type=int, help="the depth --reranked was reranked to")
    parser.add_argument(
        "--norm", choices=INTERPOLATION_NORMS, default="minmax", help="per-query normalisation (default: minmax)"
    )
    parser.add_argument(
        "--weights",
        default=",".join(f"{i / 10:g}" for i in range(11)),
        help="comma-separated reranker weights in [0, 1] (default: %(default)s)",
    )
    parser.add_argument("--metric", default="ndcg@10", help="what is maximised, as in eval (default: ndcg@10)")
    parser.add_argument("--json", default=None, metavar="OUT", help="also write the table and best weight as JSON")
    parser.add_argument(
        "--skip-missing-docs",
        action="store_true",
        help="as rerank --skip-missing-docs: leave out top --depth hits of --first that --reranked lacks",
    )
    parser.add_argument("--topics-dir", default=None, help="where qrels names are resolved (offline)")
    return parser


def format_table(results: list[tuple[float, float]], metric: str, best: float) -> str:
    """Markdown: one row per weight, the chosen one marked."""
    rows = [f"| weight | {metric} |", "|---:|---:|"]
    rows += [f"| {w:g}{' (best)' if w == best else ''} | {v:.4f} |" for w, v in results]
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    from ...atomic import write_json_atomic
    from ...data.qrels import read_qrels
    from ...data.runs import read_run
    from ...eval import parse_metric
    from ..interpolation import best_weight, interpolate_reranking, parse_weights, sweep_interpolation

    args = build_parser().parse_args(argv)
    if args.depth < 1:
        raise PyseriniLlamaError("--depth must be at least 1")
    weights = parse_weights(args.weights)
    parse_metric(args.metric)
    if Path(args.qrels).name.lower().startswith("test"):
        print(
            f"warning: {args.qrels} looks like test qrels: choose W on train/dev queries, not on the ones you report",
            file=sys.stderr,
        )
    first, reranked = read_run(args.first), read_run(args.reranked)
    for path, run in ((args.first, first), (args.reranked, reranked)):
        if not run:
            raise PyseriniLlamaError(f"{path}: the run is empty")
    qrels = read_qrels(args.qrels, topics_dir=args.topics_dir)
    try:  # once, to name the files when the two runs do not belong together
        interpolate_reranking(first, reranked, 1.0, args.depth, args.norm, skip_missing=args.skip_missing_docs)
    except PyseriniLlamaError as exc:
        raise PyseriniLlamaError(
            f"{args.reranked} against {args.first}: {exc} (is it the pure reranking of that run at --depth "
            f"{args.depth}? pass --skip-missing-docs if rerank skipped documents)"
        ) from None
    try:
        results = sweep_interpolation(
            first, reranked, qrels, args.depth, weights, args.norm, args.metric, skip_missing=args.skip_missing_docs
        )
    except PyseriniLlamaError as exc:
        raise PyseriniLlamaError(f"{args.qrels}: {exc}") from None
    weight, value = best_weight(results)
    print(format_table(results, args.metric, weight))
    print(
        f"best reranker weight: {weight:g} ({args.metric} {value:.4f}; ties go to the smaller weight): "
        f"rerank --interpolate {weight:g} --interpolate-norm {args.norm}"
    )
    if args.json:
        write_json_atomic(
            {
                "first": args.first,
                "reranked": args.reranked,
                "qrels": args.qrels,
                "depth": args.depth,
                "norm": args.norm,
                "metric": args.metric,
                "results": [{"weight": w, args.metric: v} for w, v in results],
                "best": {"weight": weight, args.metric: value},
            },
            args.json,
        )
    return 0


def cli() -> None:
    run_cli(main)


if __name__ == "__main__":
    cli()

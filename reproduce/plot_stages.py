"""nDCG@10 per stage per collection, as grouped bars, from the pipeline's ``metrics.json`` files.

A collection scored outside the pipeline (DL19's given BM25 run and its rerank) is read from its run files and
qrels with ``--from-runs LABEL QRELS STAGE=RUN ...`` (scored by ``pyserini_llama.eval``, without ``-c``, as the
DL19 numbers in docs/RESULTS.md are); such groups come after the pipeline's.

    python reproduce/plot_stages.py --out docs/plots/stages.png \\
        SciFact=runs/scifact/metrics.json NFCorpus=runs/nfcorpus/metrics.json \\
        --from-runs "DL19 (BM25 top 20)" dl19/qrels.txt bm25=dl19/run.bm25-top100.trec rankllama=runs/dl19/run.trec \\
        --reference "SciFact:all-MiniLM-L6-v2=0.6451"
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

STAGE_ORDER = ("bm25", "repllama", "hybrid", "rankllama")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("collections", nargs="*", help="LABEL=metrics.json (the pipeline's)")
    parser.add_argument(
        "--from-runs",
        nargs="+",
        action="append",
        default=[],
        metavar="LABEL QRELS STAGE=RUN",
        help="a collection scored from TREC runs (repeatable)",
    )
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--metric", default="ndcg@10")
    parser.add_argument(
        "--reference", action="append", default=[], help="COLLECTION:LABEL=VALUE dashed line over that group"
    )
    parser.add_argument("--title", default="nDCG@10 per stage (test splits; trec_eval -c on BEIR sets)")
    args = parser.parse_args()

    from pyserini_llama.ablate.plot import new_figure, save_figure  # shared with the ablation sweeps

    collections = []
    for spec in args.collections:
        label, _, path = spec.partition("=")
        metrics = json.loads(Path(path).read_text())
        metrics = metrics.get("metrics", metrics)
        collections.append((label, {s: metrics[s][args.metric] for s in STAGE_ORDER if s in metrics}))
    from pyserini_llama.data.qrels import read_qrels
    from pyserini_llama.data.runs import read_run
    from pyserini_llama.eval import evaluate_run

    for label, qrels_path, *stage_runs in args.from_runs:
        qrels, runs = read_qrels(qrels_path), dict(spec.split("=", 1) for spec in stage_runs)
        scores = {
            s: evaluate_run(qrels, read_run(runs[s]), [args.metric])[args.metric] for s in STAGE_ORDER if s in runs
        }
        collections.append((label, scores))
    if not collections:
        parser.error("give at least one LABEL=metrics.json or --from-runs")
    stages = [s for s in STAGE_ORDER if any(s in m for _, m in collections)]
    width = 0.8 / len(stages)
    fig, ax = new_figure()
    for j, stage in enumerate(stages):
        xs = [i + (j - (len(stages) - 1) / 2) * width for i, (_, m) in enumerate(collections) if stage in m]
        ys = [m[stage] for _, m in collections if stage in m]
        bars = ax.bar(xs, ys, width, label=stage)
        ax.bar_label(bars, fmt="%.3f", fontsize=7, padding=1)
    names = [label for label, _ in collections]
    for spec in args.reference:
        where, _, rest = spec.partition(":")
        label, _, value = rest.partition("=")
        i = names.index(where)
        ax.hlines(float(value), i - 0.45, i + 0.45, colors="black", linestyles="dashed", linewidth=1)
        ax.text(i - 0.45, float(value), f"{label} ", fontsize=7, va="center", ha="right")
    ax.set_xticks(range(len(names)), names)
    ax.set_ylabel(args.metric)
    ax.set_title(args.title)
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    print(f"wrote {save_figure(fig, args.out)}")


if __name__ == "__main__":
    main()

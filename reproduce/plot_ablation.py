"""The teacher-guided recipe's ablation as grouped bars: one group per measurement, one bar per recipe.

Reads the ``row.json`` files that ``reproduce/eval_teacher_recipe.sh`` writes (one per adapter) and draws
every measurement they share, with the BM25 and all-MiniLM-L6-v2 references as horizontal ticks.

    python reproduce/plot_ablation.py --out docs/plots/ablation_teacher.png \\
        "paper recipe=runs/recipes/control/row.json" "+ distillation=runs/recipes/distil/row.json"
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

#: What each row field means, in plot order.
FIELDS = {
    "nfcorpus_dev_dense": "NFCorpus dev\ndense (choice)",
    "scifact_dense": "SciFact test\ndense",
    "scifact_upper_dense": "SciFact test, ALL-CAPS\nqueries, dense",
    "scifact_hybrid": "SciFact test\nhybrid",
    "nfcorpus_dense": "NFCorpus test\ndense",
    "nfcorpus_hybrid": "NFCorpus test\nhybrid",
}
#: Measured references (docs/RESULTS.md): BM25 and all-MiniLM-L6-v2 on the test splits.
REFERENCES = {
    "scifact_dense": {"BM25": 0.6789, "MiniLM": 0.6451},
    "nfcorpus_dense": {"BM25": 0.3218, "MiniLM": 0.3159},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("rows", nargs="+", help="LABEL=path/to/row.json")
    parser.add_argument("--out", required=True, type=Path, help="PNG to write")
    parser.add_argument("--title", default="RepLLaMA-SmolLM2: paper recipe vs teacher-guided training (nDCG@10)")
    args = parser.parse_args()

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = []
    for spec in args.rows:
        label, _, path = spec.partition("=")
        rows.append((label, json.loads(Path(path).read_text())))
    fields = [f for f in FIELDS if any(f in row for _, row in rows)]  # a row may measure only some
    width = 0.8 / len(rows)
    fig, ax = plt.subplots(figsize=(12, 5))
    for i, (label, row) in enumerate(rows):
        present = [j for j, f in enumerate(fields) if f in row]
        xs = [j + (i - (len(rows) - 1) / 2) * width for j in present]
        bars = ax.bar(xs, [row[fields[j]] for j in present], width, label=label)
        ax.bar_label(bars, labels=[f"{row[fields[j]]:.3f}" for j in present], fontsize=7, rotation=90, padding=2)
    for j, field in enumerate(fields):
        for k, (name, value) in enumerate(REFERENCES.get(field, {}).items()):
            ax.hlines(value, j - 0.45, j + 0.45, colors=("black", "grey")[k], linestyles=("--", ":")[k])
            ax.text(j + 0.46, value + (0.012 if k == 0 else -0.012), name, fontsize=7, va="center")
    ax.set_xticks(range(len(fields)), [FIELDS[f] for f in fields], fontsize=8)
    ax.set_ylabel("nDCG@10 (trec_eval -c)")
    ax.set_ylim(0, 1.0)
    ax.set_title(args.title)
    ax.legend(fontsize=8, loc="upper right")
    fig.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=110)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

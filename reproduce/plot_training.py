"""Training loss against CPU minutes, one line per run, from each run's ``train_log.jsonl``.

Minutes are the sum of the logged ``seconds_per_step`` (wall time of the training steps; a trunk
cache fill before the first step is added with ``--offset-minutes``). Chance level, ln(candidates),
is drawn for each distinct value given with ``--chance``.

    python reproduce/plot_training.py --out docs/plots/loss.png \\
        "t 0.02=train/plateau/t0.02/train_log.jsonl" "t 0.05=train/plateau/t0.05/train_log.jsonl" \\
        --chance "ln 32=3.4657"
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def read_curve(path: Path) -> tuple[list[float], list[float]]:
    records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    minutes, losses, elapsed, previous_step = [], [], 0.0, 0
    for record in records:
        elapsed += record["seconds_per_step"] * (record["step"] - previous_step) / 60
        previous_step = record["step"]
        minutes.append(elapsed)
        losses.append(record["loss"])
    return minutes, losses


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", help="LABEL=path/to/train_log.jsonl[@OFFSET_MINUTES]")
    parser.add_argument("--out", required=True, type=Path, help="PNG to write")
    parser.add_argument("--title", default="training loss against CPU minutes (2 cores)")
    parser.add_argument("--chance", action="append", default=[], help="LABEL=VALUE horizontal line (repeatable)")
    parser.add_argument("--x", choices=("minutes", "steps"), default="minutes")
    parser.add_argument("--vline", action="append", default=[], help="X=LABEL vertical line (repeatable)")
    parser.add_argument("--legend-loc", default="best", help="matplotlib legend location (default: best)")
    args = parser.parse_args()

    from pyserini_llama.ablate.plot import new_figure, save_figure  # shared with the ablation sweeps

    fig, ax = new_figure()
    for spec in args.runs:
        label, _, rest = spec.partition("=")
        path, _, offset = rest.partition("@")
        minutes, losses = read_curve(Path(path))
        if args.x == "steps":
            records = [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]
            xs = [r["step"] for r in records]
        else:
            xs = [m + float(offset or 0) for m in minutes]
        ax.plot(xs, losses, marker=".", label=label)
    for spec in args.chance:
        label, _, value = spec.partition("=")
        ax.axhline(float(value), color="grey", linestyle="--", linewidth=1)
        ax.text(ax.get_xlim()[1], float(value), f" {label}", va="bottom", ha="right", color="grey", fontsize=8)
    for spec in args.vline:
        x, _, label = spec.partition("=")
        ax.axvline(float(x), color="grey", linestyle=":", linewidth=1)
        ax.text(float(x), ax.get_ylim()[1], f" {label}", va="top", ha="left", color="grey", fontsize=8)
    ax.set_xlabel("CPU minutes (training steps, 2 cores)" if args.x == "minutes" else "optimizer steps")
    ax.set_ylabel("training loss")
    ax.set_title(args.title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc=args.legend_loc)
    print(f"wrote {save_figure(fig, args.out)}")


if __name__ == "__main__":
    main()

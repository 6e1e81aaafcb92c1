"""Does a precision keep retrieval quality? nDCG@10 of RepLLaMA in that precision against float32, on SciFact test
and NFCorpus test, through the pipeline (corpus encoded into a FAISS index, queries searched, trec_eval ``-c``).

The verdict is what ``--dtype auto`` reads (``pyserini_llama/precision/speed.py``, ``PRECISION_VERDICTS``):
acceptable when nDCG@10 moves by at most ``--tolerance`` (0.005) on every dataset. The script prints a
table and the line to put into that table.

    python reproduce/judge_precision.py --mode int8
    python reproduce/judge_precision.py --mode int8 --fp32-ndcg scifact=0.6543,nfcorpus=0.3210   # fp32 known

Runs go to ``--output-dir``/``<dataset>.<precision>`` and carry the pipeline's manifests, so a rerun (or the
fp32 reference of a later judgement) reuses them. Defaults are the shipped model's serving settings (query
32 / passage 64 tokens, as in the README's main job).
"""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path

from pyserini_llama.pipeline import PipelineConfig, run_pipeline
from pyserini_llama.precision.cpu import set_torch_threads

METRIC = "ndcg@10"
REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("PYSERINI_LLAMA_SHARED_DATA", REPO.parent / "shared" / "data"))


def ndcg(dataset: Path, precision: str, args: argparse.Namespace) -> float:
    """nDCG@10 of the RepLLaMA stage of the pipeline on ``dataset`` in ``precision`` (reused if already run)."""
    config = PipelineConfig(
        dataset=dataset,
        output_dir=Path(args.output_dir) / f"{dataset.name}.{precision}",
        split=args.split,
        stages=["repllama"],
        retriever=args.retriever,
        dtype=precision,
        query_max_length=args.query_max_length,
        passage_max_length=args.passage_max_length,
        batch_size=args.batch_size,
    )
    return run_pipeline(config)["repllama"][METRIC]


def parse_known(text: str | None) -> dict[str, float]:
    """``scifact=0.65,nfcorpus=0.32`` -> {"scifact": 0.65, "nfcorpus": 0.32}."""
    if not text:
        return {}
    pairs = (item.split("=", 1) for item in text.split(","))
    return {name.strip(): float(value) for name, value in pairs}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mode", required=True, help="precision to judge: int8, bfloat16, float16, auto+int8 ...")
    parser.add_argument("--datasets", default="scifact,nfcorpus", help="BEIR datasets (default scifact,nfcorpus)")
    parser.add_argument("--data-dir", default=str(SHARED_DATA / "beir"), help="where the BEIR datasets are")
    parser.add_argument("--split", default="test")
    parser.add_argument("--retriever", default="repllama-smollm2-135m")
    parser.add_argument("--query-max-length", type=int, default=32)
    parser.add_argument("--passage-max-length", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--output-dir", default="runs/judge")
    parser.add_argument("--fp32-ndcg", default=None, help="known float32 nDCG@10 per dataset, e.g. scifact=0.65,...")
    parser.add_argument("--tolerance", type=float, default=0.005, help="largest acceptable |change| (default 0.005)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    set_torch_threads()

    known = parse_known(args.fp32_ndcg)
    rows = []
    for name in args.datasets.split(","):
        dataset = Path(args.data_dir) / name
        reference = known[name] if name in known else ndcg(dataset, "float32", args)
        judged = ndcg(dataset, args.mode, args)
        rows.append((name, reference, judged, judged - reference))
    acceptable = all(abs(delta) <= args.tolerance for *_, delta in rows)

    print(
        f"\n{args.retriever}, query {args.query_max_length} / passage {args.passage_max_length} tokens, split {args.split}"
    )
    print(f"| dataset | float32 {METRIC} | {args.mode} {METRIC} | change | within {args.tolerance} |")
    print("|---|---:|---:|---:|---|")
    for name, reference, judged, delta in rows:
        print(
            f"| {name} | {reference:.4f} | {judged:.4f} | {delta:+.4f} | {'yes' if abs(delta) <= args.tolerance else 'no'} |"
        )
    print(f"\nverdict: {args.mode} is {'ACCEPTABLE' if acceptable else 'NOT acceptable'}")
    print(f'PRECISION_VERDICTS["{args.mode}"] = {acceptable}  # {", ".join(f"{n} {d:+.4f}" for n, _, _, d in rows)}')


if __name__ == "__main__":
    main()

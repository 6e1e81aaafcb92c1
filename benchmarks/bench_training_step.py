"""Seconds per training step: all-layer LoRA vs top-K LoRA vs top-K LoRA from the trunk cache, one run.

Same model, same batch (SciFact train queries, each with its judged abstract and random other
abstracts), same LoRA rank; only the lever changes. The cached mode is timed with the cache
already filled (every step of epoch 2 onwards, and every passage seen before); the one-off fill
is reported separately, per text.

    python benchmarks/bench_training_step.py                       # SmolLM2-135M, 16 queries x 4, 128 tokens
    python benchmarks/bench_training_step.py --model tiny --steps 5  # a tiny random LLaMA, seconds
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]


def write_groups(dataset: Path, path: Path, queries: int, group_size: int, seed: int = 0) -> None:
    from pyserini_llama.data.corpus import read_corpus
    from pyserini_llama.data.queries import read_beir_split

    corpus = read_corpus(dataset / "corpus.jsonl")
    texts, judged = read_beir_split(dataset, "train")  # judgements in qrels file order
    qrels = {q: [d for d, g in docs.items() if g > 0 and d in corpus] for q, docs in judged.items() if q in texts}
    qrels = {q: docs for q, docs in qrels.items() if docs}
    rng = random.Random(seed)
    ids = list(corpus)

    def passage(d):
        return {"docid": d, "title": corpus[d].title, "text": corpus[d].text}

    with open(path, "w") as f:
        for qid in list(qrels)[:queries]:
            negatives = [d for d in rng.sample(ids, group_size + 5) if d not in qrels[qid]][: group_size - 1]
            line = {
                "query_id": qid,
                "query": texts[qid],
                "positive_passages": [passage(qrels[qid][0])],
                "negative_passages": [passage(d) for d in negatives],
            }
            f.write(json.dumps(line) + "\n")


def time_steps(args, mode: str, train_file: Path, work: Path) -> dict:
    from pyserini_llama.training import TrainingArguments
    from pyserini_llama.training.trainer import Trainer

    levers = {}
    if mode != "all-layer LoRA":
        levers["lora_layers"] = args.lora_layers
    if mode.endswith("cache"):
        levers["trunk_cache"] = str(work / "cache")
    options = TrainingArguments(
        "repllama",
        model=args.model_name,
        train=[str(train_file)],
        output=str(work / mode.replace(" ", "-")),
        group_size=args.group_size,
        per_device_batch_size=args.queries,
        query_max_length=32,
        passage_max_length=args.passage_max_length,
        lora_r=16,
        lora_alpha=32,
        lora_dropout=0.0,
        max_steps=args.steps + 1,
        warmup_steps=1,
        learning_rate=1e-4,
        temperature=0.02,
        **levers,
    )
    trainer = Trainer(options)
    fill = time.perf_counter()
    filled = trainer.fill_trunk_cache()
    fill = time.perf_counter() - fill
    seconds = []
    for step in range(args.steps + 1):  # step 0 warms up (allocations, thread pools)
        start = time.perf_counter()
        trainer.forward_backward(step % trainer.steps_per_epoch)
        trainer.optimizer_step()
        seconds.append(time.perf_counter() - start)
    result = {"mode": mode, "s_per_step": sum(seconds[1:]) / args.steps, "steps": args.steps}
    if filled:
        result["fill_s_per_text"] = fill / filled
        result["filled"] = filled
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="smollm2-135m-instruct", help="model name, or 'tiny'")
    parser.add_argument("--dataset", default=str(REPO.parent / "shared" / "data" / "beir" / "scifact"))
    parser.add_argument("--queries", type=int, default=16, help="queries per step (16)")
    parser.add_argument("--group-size", type=int, default=4, help="passages per query (4)")
    parser.add_argument("--passage-max-length", type=int, default=128)
    parser.add_argument("--lora-layers", type=int, default=6, help="K of top-K (6)")
    parser.add_argument("--steps", type=int, default=3, help="timed steps per mode, after one warm-up step (3)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: all cores)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        if args.model == "tiny":
            from pyserini_llama.testing import build_tiny_llama

            args.model_name = str(build_tiny_llama(work / "tiny", num_hidden_layers=8))
        else:
            args.model_name = args.model
        train_file = work / "train.jsonl"
        write_groups(Path(args.dataset), train_file, args.queries * (args.steps + 1), args.group_size)
        results = [
            time_steps(args, mode, train_file, work)
            for mode in ("all-layer LoRA", f"top-{args.lora_layers} LoRA", f"top-{args.lora_layers} LoRA + cache")
        ]
    base = results[0]["s_per_step"]
    print(
        f"\n{args.model}: {args.queries} queries x {args.group_size} passages, passage {args.passage_max_length} "
        f"tokens, query 32, LoRA r16, {torch.get_num_threads()} threads, fp32"
    )
    print(f"{'mode':<26} {'s/step':>8} {'speed-up':>9}")
    for r in results:
        print(f"{r['mode']:<26} {r['s_per_step']:>8.2f} {base / r['s_per_step']:>8.2f}x")
    cached = results[-1]
    if "filled" in cached:
        print(f"cache fill (once per unique text): {cached['fill_s_per_text']:.3f} s/text for {cached['filled']} texts")


if __name__ == "__main__":
    main()

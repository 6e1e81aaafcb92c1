"""Batched RankLLaMA reranking vs the model card's one-pair-at-a-time loop, same weights and pairs.

Prints both throughputs (pairs/s), their ratio, and the largest absolute score difference (which
must stay at float noise: batching may change speed, never scores).

    .venv/bin/python benchmarks/bench_rerank.py --model tiny --pairs 48
    .venv/bin/python benchmarks/bench_rerank.py --model smollm2-135m-instruct --pairs 48 --batch-size 16

``--model tiny`` builds a random tiny LLaMA classifier with a random LoRA adapter (as the tests
do); any other value is passed to RankLLaMAReranker (a directory, hub id, adapter, .gguf or alias).
Pairs are the BM25 top hits of the first DL19 queries in ``run.bm25-top100.trec``.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from bench_common import dl19_pairs, model_card_scores, tiny_reranker


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="tiny", help="tiny, or a RankLLaMA model/adapter/.gguf/alias")
    parser.add_argument("--pairs", type=int, default=48)
    parser.add_argument("--per-query", type=int, default=12, help="BM25 hits taken per query")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--max-length", type=int, default=196)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="float32")
    parser.add_argument(
        "--repeats", type=int, default=3, help="timed repetitions (interleaved); the best of each is reported"
    )
    args = parser.parse_args()

    import torch

    from pyserini_llama.rerankers import RankLLaMAReranker

    with tempfile.TemporaryDirectory() as tmp:
        model = tiny_reranker(Path(tmp)) if args.model == "tiny" else args.model
        reranker = RankLLaMAReranker(
            model, batch_size=args.batch_size, max_length=args.max_length, device=args.device, dtype=args.dtype
        )
    pairs = dl19_pairs(args.pairs, args.per_query)
    lengths = [
        len(ids)
        for ids in reranker.encode_pairs(
            [f"query: {q}" for q, _ in pairs], [f"document: {d.title} {d.text}" for _, d in pairs]
        )
    ]

    reranker.score_pairs(pairs[:4])  # warm-up
    model_card_scores(reranker, pairs[:4], args.max_length)

    def timed(fn):
        started = time.perf_counter()
        result = fn()
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()
        return time.perf_counter() - started, result

    # Interleaved repeats, best of each: a busy machine slows both paths alike.
    batched_times, card_times = [], []
    for _ in range(args.repeats):
        seconds, batched = timed(lambda: reranker.score_pairs(pairs))
        batched_times.append(seconds)
        seconds, card = timed(lambda: model_card_scores(reranker, pairs, args.max_length))
        card_times.append(seconds)
    batched_s, card_s = min(batched_times), min(card_times)
    print(
        f"model {args.model} ({args.dtype}, {args.device}, {torch.get_num_threads()} threads); {len(pairs)} DL19 "
        f"pairs, tokens per pair {min(lengths)}-{max(lengths)} (mean {np.mean(lengths):.0f}); "
        f"batch size {args.batch_size}; best of {args.repeats}"
    )
    print(f"batched reranker : {len(pairs) / batched_s:10.1f} pairs/s ({batched_s:.3f} s)")
    print(f"model-card loop  : {len(pairs) / card_s:10.1f} pairs/s ({card_s:.3f} s)")
    print(f"speed ratio      : {card_s / batched_s:10.2f}x")
    print(f"max |score diff| : {np.abs(batched - card).max():10.2e}")


if __name__ == "__main__":
    main()

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
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("PYSERINI_LLAMA_SHARED_DATA", REPO.parent / "shared" / "data"))


def tiny_model(workdir: Path) -> str:
    sys.path.insert(0, str(REPO / "tests"))
    from tiny_models import build_lora_adapter, build_tiny_llama

    base = build_tiny_llama(workdir / "base")
    return str(build_lora_adapter(base, workdir / "lora", task="classification"))


def dl19_pairs(n: int, per_query: int) -> list[tuple[str, object]]:
    from pyserini_llama.data.corpus import read_corpus
    from pyserini_llama.data.queries import read_queries
    from pyserini_llama.data.runs import read_run

    dl19 = SHARED_DATA / "msmarco-passage" / "dl19"
    queries = read_queries(dl19 / "queries.jsonl")
    corpus = read_corpus(dl19 / "corpus.jsonl")
    pairs = []
    for qid, hits in read_run(dl19 / "run.bm25-top100.trec").items():
        pairs += [(queries[qid], corpus[docid]) for docid, _ in hits[:per_query]]
        if len(pairs) >= n:
            return pairs[:n]
    return pairs


def card_loop(reranker, pairs, max_length: int) -> np.ndarray:
    """The model card, pair by pair: ``tokenizer(f'query: {q}', f'document: {title} {text}')``, ``logits[0][0]``.

    The document side is cut to ``max_length`` (``only_second``) so both paths see the same tokens;
    the card's model has no pad id, so the head reads the last token of each unpadded pair.
    """
    import torch

    model, tokenizer = reranker.model, reranker.tokenizer
    pad_id, model.config.pad_token_id = model.config.pad_token_id, None
    scores = []
    try:
        with torch.inference_mode():
            for query, doc in pairs:
                inputs = tokenizer(
                    f"query: {query}",
                    f"document: {doc.title} {doc.text}",
                    return_tensors="pt",
                    truncation="only_second",
                    max_length=max_length,
                ).to(reranker.device)
                scores.append(model(**inputs).logits[0][0].float().item())
    finally:
        model.config.pad_token_id = pad_id
    return np.array(scores, dtype=np.float32)


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
        model = tiny_model(Path(tmp)) if args.model == "tiny" else args.model
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
    card_loop(reranker, pairs[:4], args.max_length)

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
        seconds, card = timed(lambda: card_loop(reranker, pairs, args.max_length))
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

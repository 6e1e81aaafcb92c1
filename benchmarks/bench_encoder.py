"""Batched RepLLaMA encoding vs the model card's one-passage-at-a-time loop, same weights and texts.

Prints passages/s of each, the speed ratio, and the largest embedding difference.

    python benchmarks/bench_encoder.py --model smollm2-135m-instruct --passages 64 --max-length 256
    python benchmarks/bench_encoder.py --model tiny --passages 256
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from bench_common import SCIFACT, model_card_embeddings, tiny_encoder

from pyserini_llama.data.corpus import iter_corpus
from pyserini_llama.data.document import Document
from pyserini_llama.encoders.repllama import RepLLaMAEncoder

DEFAULT_CORPUS = SCIFACT / "corpus.jsonl"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="smollm2-135m-instruct", help="model, adapter, .gguf, or 'tiny'")
    parser.add_argument("--corpus", default=str(DEFAULT_CORPUS))
    parser.add_argument("--passages", type=int, default=64)
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    with tempfile.TemporaryDirectory() as tmp:
        model = tiny_encoder(Path(tmp)) if args.model == "tiny" else args.model
        encoder = RepLLaMAEncoder(model, passage_max_length=args.max_length, batch_size=args.batch_size)
        passages = []
        for doc in iter_corpus(args.corpus):
            passages.append(Document("", text=doc.text, title=doc.title))
            if len(passages) == args.passages:
                break
        encoder.encode_passages(passages[:4])  # warm-up

        start = time.perf_counter()
        batched = encoder.encode_passages(passages)
        batched_s = time.perf_counter() - start
        start = time.perf_counter()
        reference = model_card_embeddings(encoder, passages, args.max_length)
        loop_s = time.perf_counter() - start

    n = len(passages)
    print(
        f"model {args.model}  passages {n}  max_length {args.max_length}  batch {args.batch_size}  "
        f"threads {args.threads}"
    )
    print(f"batched encoder : {n / batched_s:8.2f} passages/s ({batched_s:.2f} s)")
    print(f"model-card loop : {n / loop_s:8.2f} passages/s ({loop_s:.2f} s)")
    print(f"speed-up        : {loop_s / batched_s:8.2f}x")
    print(f"max |difference|: {np.abs(batched - reference).max():.2e}")


if __name__ == "__main__":
    main()

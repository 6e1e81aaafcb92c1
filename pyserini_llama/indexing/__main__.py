"""``python -m pyserini_llama.indexing``: the merge command. Encoded flat shards -> one index of any type.

Shards encoded on separate machines (``encode --shard-id/--shard-num``) are merged here; under
torchrun, ``encode`` runs the same merge on rank 0 itself (``encode/distributed.py``)."""

from __future__ import annotations

import argparse
import logging

from ..cli_options import command_parser
from ..errors import run_cli
from .options import add_index_options, index_options

logger = logging.getLogger("pyserini_llama.indexing")

EXAMPLE = """example (MS MARCO passage encoded as 4 shards, one per GPU, then one IVF-PQ index):
  for i in 0 1 2 3; do
    CUDA_VISIBLE_DEVICES=$i python -m pyserini_llama.encode \\
      input --corpus collection.jsonl --shard-id $i --shard-num 4 \\
      output --embeddings indexes/msmarco.shard$i --to-faiss \\
      encoder --encoder castorini/repllama-v1-7b-lora-passage --max-length 196 \\
              --batch-size 128 --device cuda --dtype bfloat16 &
  done; wait
  python -m pyserini_llama.indexing --shards indexes/msmarco.shard{0,1,2,3} \\
    --output indexes/msmarco.repllama.ivfpq --index-type ivfpq

--index-type: flat, flat-fp16, sq8, hnsw, ivfpq, or any FAISS factory string ("IVF4096,PQ256").
FirstP/MaxP shards (segments.json) merge into one manifest. Under torchrun
(`torchrun --nproc_per_node 4 -m pyserini_llama.encode ...`) rank 0 runs this merge itself."""


def build_parser() -> argparse.ArgumentParser:
    p = command_parser(
        "python -m pyserini_llama.indexing",
        "Merge flat FAISS shards (encode --shard-id/--shard-num) into one index of any type.",
        EXAMPLE,
    )
    p.add_argument("--shards", nargs="+", required=True, help="flat index directories (index + docid), in order")
    p.add_argument("--output", required=True, help="output index directory (index + docid)")
    add_index_options(p)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from .shards import build_from_shards

    build_from_shards(args.shards, args.output, index_options(args))
    return 0


def cli() -> None:
    run_cli(main)


if __name__ == "__main__":
    cli()

"""``python -m pyserini_llama.export``: write a training output's LoRA adapter as a small shippable directory."""

from __future__ import annotations

import argparse

from ..cli_options import command_parser
from ..errors import run_cli
from ..training.export import SAVE_DTYPES, export_adapter

EXAMPLE = """example:
  python -m pyserini_llama.export runs/repllama-smollm2-135m \\
      pyserini_llama/models/repllama-smollm2-135m --dtype float16

Weights are cast to --dtype (fp16 halves the size; loading casts back to the model's dtype); the
tokenizer is dropped when it is the base model's own; training_args.json, train_log.jsonl and
input_format.json travel with the adapter (serving reads input_format.json)."""


def build_parser() -> argparse.ArgumentParser:
    parser = command_parser(
        "python -m pyserini_llama.export",
        "Write a training output's LoRA adapter as a small shippable directory (fp16 by default).",
        EXAMPLE,
    )
    parser.add_argument("source", help="training output directory (or a checkpoint-N inside it)")
    parser.add_argument("target", help="directory to write")
    parser.add_argument("--dtype", choices=SAVE_DTYPES, default="float16", help="tensor dtype (default: float16)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing target (its README.md is kept)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    info = export_adapter(args.source, args.target, dtype=args.dtype, overwrite=args.overwrite)
    print(f"wrote {args.target}: {info['parameters']} parameters in {info['tensors']} tensors, {info['bytes']} bytes")
    return 0


def cli() -> None:
    run_cli(main)


if __name__ == "__main__":
    cli()

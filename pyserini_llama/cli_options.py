"""Command-line options shared by the encode, search and rerank commands (one definition each)."""

from __future__ import annotations

import argparse

from .errors import PyseriniLlamaError
from .modeling.loading import DTYPES


def add_model_options(parser: argparse.ArgumentParser) -> None:
    """``--base-model --tokenizer --dtype --fp16 --device`` for any command that loads a LLaMA."""
    parser.add_argument(
        "--base-model", default=None, help="base model for a LoRA adapter (default: its adapter_config.json)"
    )
    parser.add_argument(
        "--tokenizer", default=None, help="tokenizer name or path (default: the adapter's, else the base model's)"
    )
    parser.add_argument(
        "--dtype", choices=DTYPES, default=None, help="weights dtype (default float32; bfloat16 on GPU)"
    )
    parser.add_argument("--fp16", action="store_true", help="Pyserini's flag: same as --dtype float16")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default: cpu)")


def model_dtype(args: argparse.Namespace) -> str:
    if args.fp16 and args.dtype not in (None, "float16"):
        raise PyseriniLlamaError(f"--fp16 contradicts --dtype {args.dtype}")
    return "float16" if args.fp16 else (args.dtype or "float32")


def model_options(args: argparse.Namespace) -> dict:
    """The keyword arguments every model class takes from :func:`add_model_options` flags."""
    return {
        "base_model": args.base_model,
        "tokenizer": args.tokenizer,
        "dtype": model_dtype(args),
        "device": args.device,
    }


def split_subcommands(argv: list[str], commands: tuple[str, ...]) -> dict[str, list[str]]:
    """Pyserini's ``input ... output ... encoder ...`` style: argv split at each command name."""
    groups: dict[str, list[str]] = {"": []}
    current = ""
    for token in argv:
        if token in commands:
            current = token
            groups.setdefault(current, [])
        else:
            groups[current].append(token)
    return groups

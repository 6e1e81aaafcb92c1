"""``python -m pyserini_llama.encode``: Pyserini's encode command for RepLLaMA."""

from __future__ import annotations

import argparse
import logging
import runpy
import sys

from ..cli_options import add_model_options, model_options, split_subcommands
from ..errors import PyseriniLlamaError, run_cli

logger = logging.getLogger("pyserini_llama.encode")

COMMANDS = ("input", "output", "encoder")

EXAMPLE = """example:
  python -m pyserini_llama.encode \\
    input   --corpus ../shared/data/beir/scifact/corpus.jsonl --fields title text \\
    output  --embeddings indexes/scifact.repllama --to-faiss \\
    encoder --encoder castorini/repllama-v1-7b-lora-passage --encoder-class repllama \\
            --fields title text --batch-size 32 --max-length 512 --device cuda --dtype bfloat16

Any other --encoder-class is handed to `python -m pyserini.encode` unchanged."""


def build_parsers() -> dict[str, argparse.ArgumentParser]:
    top = argparse.ArgumentParser(
        prog="python -m pyserini_llama.encode",
        description="Encode a corpus with RepLLaMA into Pyserini's FAISS or JSONL embeddings.",
        usage="%(prog)s input [options] output [options] encoder [options]",
        epilog=EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    inp = argparse.ArgumentParser(prog="input", add_help=False, description="input options")
    inp.add_argument("--corpus", required=True, help="BEIR corpus.jsonl (or its directory), or Pyserini JSONL")
    inp.add_argument("--fields", nargs="+", default=["title", "text"], help="fields present in the corpus")
    inp.add_argument("--docid-field", default=None, help="accepted for Pyserini compatibility (ids: _id/id/docid)")
    inp.add_argument("--shard-id", type=int, default=0)
    inp.add_argument("--shard-num", type=int, default=1)
    inp.add_argument("--skip-bad-lines", action="store_true", help="skip malformed lines, counting and reporting them")
    out = argparse.ArgumentParser(prog="output", add_help=False)
    out.add_argument("--embeddings", required=True, help="output directory")
    out.add_argument("--to-faiss", action="store_true", help="write a flat inner-product FAISS index + docid file")
    enc = argparse.ArgumentParser(prog="encoder", add_help=False)
    enc.add_argument("--encoder", required=True, help="model dir/id, LoRA adapter, .gguf file or short name")
    enc.add_argument("--encoder-class", default="repllama", help="repllama (default); others go to pyserini.encode")
    enc.add_argument("--fields", nargs="+", default=["title", "text"], help="fields to encode: url title text")
    enc.add_argument("--batch-size", type=int, default=16)
    enc.add_argument("--max-length", type=int, default=512, help="passage max length in tokens, EOS included")
    enc.add_argument("--dimension", type=int, default=None, help="default: hidden size; smaller = Matryoshka prefix")
    enc.add_argument("--prefix", default=None, help='passage prefix (default "passage: ")')
    enc.add_argument(
        "--trunk-cache",
        default=None,
        metavar="DIR",
        help="top-K LoRA adapters (train --lora-layers): reuse frozen-layer states cached in DIR (float16)",
    )
    add_model_options(enc)
    return {"": top, "input": inp, "output": out, "encoder": enc}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parsers = build_parsers()
    groups = split_subcommands(argv, COMMANDS)
    if groups[""] or not all(c in groups for c in COMMANDS):
        if groups[""] in ([], ["-h"], ["--help"]):
            parsers[""].print_help()
            for name in COMMANDS:
                print("\n" + parsers[name].format_help())
            return 0 if groups[""] else 2
        parsers[""].error(f"unexpected arguments {groups['']}; expected: input ... output ... encoder ...")
    args = {name: parsers[name].parse_args(groups[name]) for name in COMMANDS}
    enc = args["encoder"]
    if enc.encoder_class != "repllama":
        return _delegate_to_pyserini(argv)

    from ..data.corpus import read_corpus
    from ..encoders.repllama import RepLLaMAEncoder
    from . import encode_corpus, shard

    documents = list(read_corpus(args["input"].corpus, skip_bad_lines=args["input"].skip_bad_lines).values())
    documents = shard(documents, args["input"].shard_id, args["input"].shard_num)
    if not documents:
        raise PyseriniLlamaError(f"{args['input'].corpus}: no documents to encode")
    encoder = RepLLaMAEncoder(
        enc.encoder,
        **model_options(enc),
        passage_max_length=enc.max_length,
        batch_size=enc.batch_size,
        dimension=enc.dimension,
        trunk_cache=enc.trunk_cache,
    )
    if enc.prefix is not None:
        encoder.passage_prefix = enc.prefix
    encode_corpus(encoder, documents, args["output"].embeddings, to_faiss=args["output"].to_faiss, fields=enc.fields)
    return 0


def _delegate_to_pyserini(argv: list[str]) -> int:
    from ..bootstrap import import_pyserini

    import_pyserini("pyserini.encode")
    sys.argv = ["pyserini.encode", *argv]
    runpy.run_module("pyserini.encode", run_name="__main__", alter_sys=True)
    return 0


def cli() -> None:
    run_cli(main)


if __name__ == "__main__":
    cli()

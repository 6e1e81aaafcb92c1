"""``python -m pyserini_llama.encode``: Pyserini's encode command for RepLLaMA."""

from __future__ import annotations

import argparse
import logging
import runpy
import sys

from ..cli_options import (
    add_max_batch_tokens_option,
    add_model_options,
    add_resume_options,
    add_segment_options,
    check_resume_options,
    command_parser,
    model_options,
    segmenter_from_args,
    split_subcommands,
)
from ..defaults import ENCODE_BATCH_SIZE, ENCODE_MAX_LENGTH
from ..errors import PyseriniLlamaError, run_cli
from ..indexing.options import add_index_options, index_options_or_none

logger = logging.getLogger("pyserini_llama.encode")

COMMANDS = ("input", "output", "encoder")

EXAMPLE = """example:
  python -m pyserini_llama.encode \\
    input   --corpus ../shared/data/beir/scifact/corpus.jsonl --fields title text \\
    output  --embeddings indexes/scifact.repllama --to-faiss \\
    encoder --encoder castorini/repllama-v1-7b-lora-passage --encoder-class repllama \\
            --fields title text --batch-size 32 --max-length 512 --device cuda --dtype bfloat16

Long documents (e.g. castorini/repllama-v1-7b-lora-doc, url title text up to 2048 tokens):
  input --fields url title text ... encoder --fields url title text --max-length 2048
--max-batch-tokens keeps each batch's padded size bounded. FirstP/MaxP baselines:
  encoder ... --segment 150,75 --aggregate maxp   one vector per 150-word window (ids DOCID#segN in
                                                  the docid file, described by segments.json);
                                                  pyserini_llama.search.faiss ranks each document once,
                                                  at its best window
  encoder ... --segment 150 --aggregate firstp    one vector per document: its first 150 words

Index types (Pyserini's FaissSearcher loads them all; inner product throughout):
  output --embeddings indexes/scifact.hnsw --index-type hnsw [--hnsw-m 32 --ef-construction 40]
  output --embeddings indexes/scifact.ivfpq --index-type ivfpq [--nlist 256 --pq-m 64 --train-size 20000]
  output --embeddings indexes/scifact.custom --index-type "IVF256,PQ32"   (any FAISS factory string)

Resumable: vectors are committed to OUTPUT.partial/ every --chunk-size passages (and every
--commit-seconds within one); rerun a killed command unchanged and it continues, writing the same
output byte for byte. Other settings start afresh.

Distributed: the same command under torchrun encodes one shard per process (cuda:LOCAL_RANK with
--device cuda, gloo on CPU) and rank 0 merges them into one index of any --index-type:
  torchrun --nproc_per_node 8 -m pyserini_llama.encode input --corpus collection.jsonl \\
    output --embeddings indexes/msmarco.repllama --index-type sq8 encoder --encoder MODEL --device cuda
(--nnodes N with --rdzv-endpoint for several machines). Shards encoded on separate machines with
input --shard-id/--shard-num merge with `python -m pyserini_llama.indexing --shards ... --output ...`.

Any other --encoder-class is handed to `python -m pyserini.encode` unchanged."""


def build_parsers() -> dict[str, argparse.ArgumentParser]:
    top = command_parser(
        "python -m pyserini_llama.encode",
        "Encode a corpus with RepLLaMA into Pyserini's FAISS or JSONL embeddings.",
        EXAMPLE,
        usage="%(prog)s input [options] output [options] encoder [options]",
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
    add_index_options(out)  # --index-type flat|flat-fp16|sq8|hnsw|ivfpq|FACTORY (implies --to-faiss) + build params
    enc = argparse.ArgumentParser(prog="encoder", add_help=False)
    enc.add_argument("--encoder", required=True, help="model dir/id, LoRA adapter, .gguf file or short name")
    enc.add_argument("--encoder-class", default="repllama", help="repllama (default); others go to pyserini.encode")
    enc.add_argument("--fields", nargs="+", default=["title", "text"], help="fields to encode: url title text")
    enc.add_argument(
        "--batch-size",
        type=int,
        default=ENCODE_BATCH_SIZE,
        help=f"most passages per batch (default: {ENCODE_BATCH_SIZE})",
    )
    add_max_batch_tokens_option(enc)
    add_segment_options(enc)
    add_resume_options(enc, "passages (segments)")
    enc.add_argument(
        "--max-length", type=int, default=ENCODE_MAX_LENGTH, help="passage max length in tokens, EOS included"
    )
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
    if not {"-h", "--help"} & set(groups[""]):
        groups[""] = parsers[""].parse_known_args(groups[""])[1]  # --log-level, before the first command
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

    if enc.max_batch_tokens < 1 or enc.batch_size < 1:
        raise PyseriniLlamaError("--batch-size and --max-batch-tokens must be at least 1")
    segments = segmenter_from_args(enc)
    check_resume_options(enc)

    from .distributed import process_group, rank_device, torchrun_world

    world = torchrun_world()
    if world is None:
        return _encode(args, segments)
    if args["input"].shard_num != 1:
        raise PyseriniLlamaError("under torchrun each process takes its shard; drop --shard-id/--shard-num")
    output = args["output"]
    if not (output.to_faiss or index_options_or_none(output)):
        raise PyseriniLlamaError("under torchrun the shards merge into a FAISS index: add --to-faiss or --index-type")
    enc.device = rank_device(enc.device, world)
    with process_group(world, enc.device):
        return _encode(args, segments, world)


def _encode(args: dict[str, argparse.Namespace], segments, world=None) -> int:
    """Read, shard and encode the corpus; under torchrun (``world``) this rank's part, then merge."""
    enc = args["encoder"]

    from ..data.corpus import read_corpus
    from ..encoders.repllama import RepLLaMAEncoder
    from . import calibrate_on_corpus, encode_corpus, shard

    corpus = list(read_corpus(args["input"].corpus, skip_bad_lines=args["input"].skip_bad_lines).values())
    documents = corpus if world is not None else shard(corpus, args["input"].shard_id, args["input"].shard_num)
    if not documents:
        raise PyseriniLlamaError(f"{args['input'].corpus}: no documents to encode")
    encoder = RepLLaMAEncoder(
        enc.encoder,
        **model_options(enc),
        passage_max_length=enc.max_length,
        batch_size=enc.batch_size,
        max_batch_tokens=enc.max_batch_tokens,
        dimension=enc.dimension,
        trunk_cache=enc.trunk_cache,
    )
    if enc.prefix is not None:
        encoder.passage_prefix = enc.prefix
    if encoder.int8 is not None:  # one quantisation for every shard and process: calibrated on the whole corpus
        whole = segments.segment_documents(corpus) if segments is not None else corpus
        calibrate_on_corpus(encoder, whole, enc.fields, enc.max_length)
    resume = {"chunk_size": enc.chunk_size, "commit_seconds": enc.commit_seconds}
    if world is not None:
        from .distributed import encode_distributed

        options = index_options_or_none(args["output"])
        encode_distributed(
            encoder,
            documents,
            args["output"].embeddings,
            world,
            fields=enc.fields,
            segments=segments,
            index_options=options,
            **resume,
        )
        return 0
    encode_corpus(
        encoder,
        documents,
        args["output"].embeddings,
        to_faiss=args["output"].to_faiss,
        fields=enc.fields,
        segments=segments,
        index_options=index_options_or_none(args["output"]),
        **resume,
    )
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

"""RankLLaMA as an option of Pyserini's own search commands (``--reranker MODEL --rerank-depth N``).

With pyserini-llama installed, ``python -m pyserini.search.lucene`` and ``python -m pyserini.search.faiss``
rerank their run before writing it::

    python -m pyserini.search.lucene --index indexes/scifact.bm25 --topics topics.tsv --bm25 \\
      --output runs/scifact.bm25.rankllama.trec --hits 1000 \\
      --reranker rankllama-smollm2-135m --rerank-depth 100 --rerank-max-length 96

How, and why this way: Pyserini 1.6 has no plugin points in these scripts, and both end the same
way: ``args = parser.parse_args()`` at the top, then ``with get_output_writer(...)`` around the search
loop. So

1. the start-up hook (:mod:`pyserini_llama._startup`) calls :func:`watch_parser` when ``python -m``
   looks the ``__main__`` module up, just before running it; this wraps
   ``argparse.ArgumentParser.parse_args`` for the one call made by that module's own code, which gets
   an extra option group (so ``--help`` lists it); every other call passes straight through;
2. without ``--reranker`` nothing else happens: the command runs as stock Pyserini (``pyserini.search.faiss``
   also accepts ``--encoder-class repllama``, which argparse's fixed choices would otherwise refuse);
3. with it, the options are checked before any search (a missing ``--corpus`` fails in a second,
   not after an hour of BM25), and the script's ``get_output_writer`` is swapped for one that has
   Pyserini write its run to a temporary file beside ``--output``; when Pyserini's ``with`` block ends
   without an error (the search is complete), that run is reranked by
   :func:`pyserini_llama.rerank.__main__.main` (the same code as ``python -m pyserini_llama.rerank``,
   so the two give the same file byte for byte) into ``--output``, with the queries Pyserini searched.

Our flags are the rerank command's, prefixed ``--rerank-`` (``--depth`` is ``--rerank-depth``), because
Pyserini already owns ``--batch-size``, ``--device``, ``--max-length`` and ``--tokenizer``; they default to
the rerank command's defaults. Document text comes from ``--corpus`` (a BEIR/JSONL corpus file or
directory, or a Lucene index with stored documents), else for ``pyserini.search.lucene`` from
``--index`` itself and for ``pyserini.search.faiss`` from ``--sparse-index``.

This module is imported at the start of every such command, so it imports only the standard library
until a reranked run is actually wanted.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from ..defaults import QUERY_MAX_LENGTH, RERANK_BATCH_SIZE, RERANK_DEPTH, RERANK_MAX_LENGTH

logger = logging.getLogger(__name__)

LUCENE_MAIN = "pyserini.search.lucene.__main__"
FAISS_MAIN = "pyserini.search.faiss.__main__"

GROUP_TITLE = "RankLLaMA reranking (pyserini-llama)"
GROUP_DESCRIPTION = (
    "Rerank the top --rerank-depth hits of each query with RankLLaMA before the run is written "
    "(as python -m pyserini_llama.rerank). Example: --reranker rankllama-smollm2-135m --rerank-depth 100 "
    "--rerank-max-length 96"
)

#: our flag -> the ``python -m pyserini_llama.rerank`` flag it is passed on as (only when given).
RERANK_FLAGS = {
    "--reranker": "--reranker",
    "--rerank-depth": "--depth",
    "--rerank-batch-size": "--batch-size",
    "--rerank-max-length": "--max-length",
    "--rerank-query-max-length": "--query-max-length",
    "--rerank-device": "--device",
    "--rerank-dtype": "--dtype",
    "--rerank-base-model": "--base-model",
    "--rerank-tokenizer": "--tokenizer",
    "--rerank-append-eos": "--append-eos",
    "--rerank-skip-missing-docs": "--skip-missing-docs",
    "--rerank-run-tag": "--run-tag",
    "--rerank-max-batch-tokens": "--max-batch-tokens",
    "--rerank-segment": "--segment",
    "--rerank-aggregate": "--aggregate",
    "--rerank-interpolate": "--interpolate",
    "--rerank-interpolate-norm": "--interpolate-norm",
}


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def add_reranking_options(parser: argparse.ArgumentParser) -> None:
    """The ``--reranker`` option group (all default to None: unset flags keep the rerank command's defaults)."""
    from ..cli_options import add_interpolation_options  # standard library only
    from ..modeling.tokens import DEFAULT_MAX_BATCH_TOKENS  # standard library only
    from ..precision import PRECISION_METAVAR, precision_arg  # standard library only

    group = parser.add_argument_group(GROUP_TITLE, GROUP_DESCRIPTION)
    group.add_argument(
        "--reranker", metavar="MODEL", help="RankLLaMA: model dir/id, SEQ_CLS LoRA adapter, .gguf or short name"
    )
    group.add_argument(
        "--corpus",
        metavar="PATH",
        help="documents to rerank: BEIR corpus.jsonl or its directory, JSONL collection, or a Lucene index with "
        "stored documents (default: --index for pyserini.search.lucene, --sparse-index for pyserini.search.faiss)",
    )
    ints = {
        "--rerank-depth": f"hits per query to rerank (default: {RERANK_DEPTH})",
        "--rerank-batch-size": f"pairs per model batch (default: {RERANK_BATCH_SIZE})",
        "--rerank-max-length": f"pair tokens (default: the model's input_format.json, else {RERANK_MAX_LENGTH})",
        "--rerank-query-max-length": f"query tokens (default: the model's record, else {QUERY_MAX_LENGTH})",
        "--rerank-max-batch-tokens": f"padded tokens per model batch (default: {DEFAULT_MAX_BATCH_TOKENS})",
    }
    for flag, help_text in ints.items():
        group.add_argument(flag, type=_positive_int, metavar="N", help=help_text)
    group.add_argument("--rerank-device", metavar="DEVICE", help="cpu, cuda or cuda:N (default: cpu)")
    group.add_argument(
        "--rerank-dtype",
        type=precision_arg,
        metavar=PRECISION_METAVAR,
        help="precision (default: float32; int8 and auto as python -m pyserini_llama.rerank --dtype)",
    )
    group.add_argument("--rerank-base-model", metavar="MODEL", help="base model of a LoRA adapter")
    group.add_argument("--rerank-tokenizer", metavar="NAME", help="tokenizer (default: the adapter's or base model's)")
    group.add_argument("--rerank-append-eos", action="store_true", default=None, help="append EOS to each pair")
    group.add_argument(
        "--rerank-skip-missing-docs",
        action="store_true",
        default=None,
        help="leave out (and count) hits whose document is not in the corpus instead of failing",
    )
    group.add_argument("--rerank-run-tag", metavar="TAG", help="run tag column (default: rankllama)")
    group.add_argument(
        "--rerank-segment",
        metavar="WINDOW[,STRIDE]",
        help="FirstP/MaxP: score word windows of each document (stride defaults to the window)",
    )
    group.add_argument(
        "--rerank-aggregate",
        choices=("firstp", "maxp"),
        help="with --rerank-segment: a document's best (maxp) or first window",
    )
    add_interpolation_options(group, "--rerank-interpolate", depth_flag="--rerank-depth")


def rerank_argv(args: argparse.Namespace) -> list[str]:
    """The ``python -m pyserini_llama.rerank`` flags for the reranking options given on the command line."""
    argv: list[str] = []
    for ours, theirs in RERANK_FLAGS.items():
        value = getattr(args, ours[2:].replace("-", "_"))
        if value is None:
            continue
        argv += [theirs] if value is True else [theirs, str(value)]
    return argv


def document_source(args: argparse.Namespace, module_name: str) -> str:
    """Where RankLLaMA reads document text: ``--corpus``, else the command's own index of stored documents."""
    if args.corpus:
        if not os.path.exists(args.corpus):
            raise ValueError(f"--corpus {args.corpus}: no such file or directory")
        return args.corpus
    if module_name == LUCENE_MAIN:
        if os.path.isdir(args.index):
            return args.index
        raise ValueError(
            f"--reranker needs document text: {args.index} is not an index directory; give --corpus"
            " (a corpus file/directory or a Lucene index with stored documents)"
        )
    sparse = getattr(args, "sparse_index", None)
    if sparse and os.path.isdir(sparse):
        return sparse
    raise ValueError(
        "--reranker needs document text, and a FAISS index has none: give --corpus"
        " (a corpus file/directory or a Lucene index with stored documents) or --sparse-index"
    )


def check_reranking_args(args: argparse.Namespace, module_name: str) -> str:
    """Reject what the reranked run cannot honour, before any search; returns the document source."""
    if getattr(args, "output_format", "trec") != "trec":
        raise ValueError(f"--reranker writes a TREC run; --output-format {args.output_format} is not supported")
    if getattr(args, "topics_format", "default") != "default":
        raise ValueError(f"--reranker needs plain-text topics; --topics-format {args.topics_format} is not supported")
    if getattr(args, "rerank_interpolate_norm", None) is not None and getattr(args, "rerank_interpolate", None) is None:
        raise ValueError(f"--rerank-interpolate-norm {args.rerank_interpolate_norm} needs --rerank-interpolate W")
    return document_source(args, module_name)


def queries_from_topics(topics: Mapping[Any, Mapping[str, Any]]) -> dict[str, str]:
    """qid -> query text as Pyserini's default query iterator reads it (the ``title`` field)."""
    return {str(qid): str(topic.get("title") or "") for qid, topic in topics.items()}


class RerankingWriter:
    """Pyserini's output writer, writing to a temporary first-stage run that is reranked when it closes."""

    def __init__(self, writer: Any, first_stage: str, finish: Callable[[], None]):
        self._writer = writer
        self._first_stage = first_stage
        self._finish = finish

    def __enter__(self) -> RerankingWriter:
        self._writer.__enter__()
        return self

    def __exit__(self, exc_type, exc_value, traceback) -> bool | None:
        try:
            suppress = self._writer.__exit__(exc_type, exc_value, traceback)
            if exc_type is None:
                self._finish()
            return suppress
        finally:
            Path(self._first_stage).unlink(missing_ok=True)

    def __getattr__(self, name: str) -> Any:  # write, hits_iterator, file_path, ...
        return getattr(self._writer, name)


def _first_stage_path(output: str) -> str:
    directory = os.path.dirname(output) or "."
    os.makedirs(directory, exist_ok=True)
    fd, path = tempfile.mkstemp(prefix=f".{os.path.basename(output)}.", suffix=".first-stage", dir=directory)
    os.close(fd)
    return path


def rerank_into(
    first_stage: str, output: str, queries: Mapping[str, str], args: argparse.Namespace, corpus: str
) -> None:
    """Rerank Pyserini's run with the rerank command's own code; a user error ends the process like our CLIs."""
    from ..errors import PyseriniLlamaError, configure_logging
    from .__main__ import main as rerank_main

    configure_logging()
    argv = ["--topics", str(args.topics), "--run", first_stage, "--corpus", corpus, "--output", output]
    argv += rerank_argv(args)
    logger.info("reranking the first-stage run with %s into %s", args.reranker, output)
    try:
        rerank_main(argv, queries=queries)
    except PyseriniLlamaError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


def _reranking_output_writer(
    get_output_writer: Callable[..., Any], args: argparse.Namespace, corpus: str
) -> Callable[..., Any]:
    def get_reranking_output_writer(file_path: str, output_format: Any, *rest: Any, **kwargs: Any) -> Any:
        topics = kwargs.get("topics")
        if topics is None:
            raise RuntimeError("pyserini-llama: Pyserini did not pass its topics to the output writer")
        first_stage = _first_stage_path(file_path)
        writer = get_output_writer(first_stage, output_format, *rest, **kwargs)
        return RerankingWriter(
            writer, first_stage, lambda: rerank_into(first_stage, file_path, queries_from_topics(topics), args, corpus)
        )

    return get_reranking_output_writer


def _hook_main(parser: argparse.ArgumentParser, args: argparse.Namespace, module_name: str, main: dict) -> None:
    try:
        corpus = check_reranking_args(args, module_name)
    except ValueError as exc:
        parser.error(str(exc))
    if not callable(main.get("get_output_writer")):
        parser.error("--reranker: this Pyserini version's search command has no get_output_writer to hook")
    main["get_output_writer"] = _reranking_output_writer(main["get_output_writer"], args, corpus)


def allow_encoder_class(parser: argparse.ArgumentParser, name: str) -> None:
    """Add ``name`` to the choices of ``--encoder-class``, which Pyserini's faiss command hard-codes.

    Our adapters put ``repllama`` in Pyserini's encoder map, but argparse would still refuse
    ``--encoder-class repllama``; the option's help shows a metavar, not the choices, so --help is unchanged.
    """
    for action in parser._actions:  # argparse has no public way to look an option up
        if "--encoder-class" in action.option_strings and action.choices is not None and name not in action.choices:
            action.choices = [*action.choices, name]


def watch_parser(module_name: str) -> None:
    """Add the reranking options to the parser that ``module_name``, run as ``__main__``, parses next.

    Installed for one call: the wrapper removes itself when that module's own ``parse_args`` call
    arrives. Calls from anywhere else (libraries parsing their own arguments) pass through untouched.
    """
    current = argparse.ArgumentParser.parse_args
    original = getattr(current, "__wrapped__", current)

    def parse_args(self, args=None, namespace=None):
        caller = sys._getframe(1).f_globals
        if caller.get("__name__") != "__main__" or getattr(caller.get("__spec__"), "name", None) != module_name:
            return original(self, args, namespace)
        argparse.ArgumentParser.parse_args = original
        add_reranking_options(self)
        if module_name == FAISS_MAIN:
            # already imported: the faiss command imports pyserini.encode, and with it our adapters
            from ..encoders.registration import ENCODER_CLASS

            allow_encoder_class(self, ENCODER_CLASS)
        parsed = original(self, args, namespace)
        if parsed.reranker is not None:
            _hook_main(self, parsed, module_name, caller)
        return parsed

    parse_args.__wrapped__ = original  # type: ignore[attr-defined]
    argparse.ArgumentParser.parse_args = parse_args

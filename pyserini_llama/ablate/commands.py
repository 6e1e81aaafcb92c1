"""The single-step command lines equivalent to what a sweep point computes through the library.

A sweep loads each model once and calls the library; these strings say how to get the same run
and metric from the shell (``encode`` + ``search.faiss``, ``rerank``, ``eval``, ``train``), so
every number in an ablation table can be reproduced on its own. Flags follow each command's
``--help``; only values that differ from nothing (``None``) are written.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from dataclasses import dataclass

from ..defaults import ENCODE_BATCH_SIZE
from ..modeling.segments import Segmenter


@dataclass(frozen=True)
class ModelFlags:
    """What every model-loading command takes: ``--device``, ``--dtype``, batch limits."""

    device: str = "cpu"
    dtype: str | None = None
    batch_size: int = ENCODE_BATCH_SIZE
    max_batch_tokens: int | None = None

    def model_args(self) -> list[str]:
        args = ["--device", self.device]
        return args + (["--dtype", self.dtype] if self.dtype else [])

    def batch_args(self) -> list[str]:
        args = ["--batch-size", str(self.batch_size)]
        return args + (["--max-batch-tokens", str(self.max_batch_tokens)] if self.max_batch_tokens else [])


def join(argv: Sequence[str]) -> str:
    return shlex.join([str(a) for a in argv])


def segment_args(segments: Segmenter | None) -> list[str]:
    if segments is None:
        return []
    return ["--segment", f"{segments.window},{segments.stride}", "--aggregate", segments.aggregate]


def encode_command(
    corpus: str, index: str, model: str, max_length: int, flags: ModelFlags, segments: Segmenter | None = None
) -> str:
    return join(
        ["python", "-m", "pyserini_llama.encode", "input", "--corpus", corpus]
        + ["output", "--embeddings", index, "--to-faiss"]
        + ["encoder", "--encoder", model, "--max-length", str(max_length), *flags.batch_args()]
        + segment_args(segments)
        + flags.model_args()
    )


def search_command(
    index: str, topics: str, model: str, query_max_length: int, hits: int, output: str, flags: ModelFlags, remove_query
) -> str:
    return join(
        ["python", "-m", "pyserini_llama.search.faiss", "--index", index, "--topics", topics, "--encoder", model]
        + ["--max-length", str(query_max_length), "--hits", str(hits), "--batch-size", str(flags.batch_size)]
        + (["--remove-query"] if remove_query else [])
        + flags.model_args()
        + ["--output", output]
    )


def rerank_command(
    topics: str,
    run: str,
    corpus: str,
    model: str,
    depth: int,
    max_length: int,
    query_max_length: int,
    output: str,
    flags: ModelFlags,
    segments: Segmenter | None = None,
    skip_missing_docs: bool = False,
) -> str:
    return join(
        ["python", "-m", "pyserini_llama.rerank", "--topics", topics, "--run", run, "--corpus", corpus]
        + ["--reranker", model, "--depth", str(depth), "--max-length", str(max_length)]
        + ["--query-max-length", str(query_max_length), *flags.batch_args()]
        + segment_args(segments)
        + (["--skip-missing-docs"] if skip_missing_docs else [])
        + flags.model_args()
        + ["--output", output]
    )


def eval_command(qrels: str, run: str, metrics: Sequence[str]) -> str:
    """``--complete`` (trec_eval -c): the BEIR convention every sweep evaluates with."""
    return join(
        ["python", "-m", "pyserini_llama.eval", "--qrels", qrels, "--run", run, "--metrics", *metrics]
        + ["--complete", "--json"]
    )

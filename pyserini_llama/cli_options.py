"""Command-line options shared by the commands (one definition each), and the parser every command starts from.

Every command is a package's ``__main__.py`` of one shape: an ``EXAMPLE`` text, ``build_parser()`` (which
starts from :func:`command_parser`), ``main(argv) -> int`` and ``cli()``, which runs ``main`` through the one
error path :func:`~pyserini_llama.errors.run_cli`; ``cli`` is the console script in setup.cfg.
"""

from __future__ import annotations

import argparse
import logging

from .errors import PyseriniLlamaError
from .precision import PRECISION_HELP, PRECISION_METAVAR, precision_arg

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


class _LogLevelAction(argparse.Action):
    """Sets the root logger's level as the flag is parsed (``run_cli`` configured logging at INFO)."""

    def __call__(self, parser, namespace, values, option_string=None):
        logging.getLogger().setLevel(values)
        setattr(namespace, self.dest, values)


def command_parser(prog: str, description: str, example: str | None = None, **kwargs) -> argparse.ArgumentParser:
    """A command's parser: its ``python -m`` name, what it does, ``example`` shown as written at the end of
    ``--help``, and ``--log-level``. ``kwargs`` go to :class:`argparse.ArgumentParser`."""
    parser = argparse.ArgumentParser(
        prog=prog,
        description=description,
        epilog=example,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        **kwargs,
    )
    parser.add_argument(
        "--log-level",
        type=str.upper,
        choices=LOG_LEVELS,
        default="INFO",
        action=_LogLevelAction,
        help="how much progress to log on stderr (default: INFO)",
    )
    return parser


def add_bm25_options(parser: argparse.ArgumentParser) -> None:
    """``--k1 --b``: BM25's parameters, by default as Pyserini searches its BEIR flat indexes."""
    from .defaults import BM25_B, BM25_K1

    parser.add_argument("--k1", type=float, default=BM25_K1, help=f"BM25 k1 (default: {BM25_K1})")
    parser.add_argument("--b", type=float, default=BM25_B, help=f"BM25 b (default: {BM25_B})")


def add_repllama_length_options(parser: argparse.ArgumentParser) -> None:
    """``--query-max-length --passage-max-length``: RepLLaMA's tokens per query and per passage when searching."""
    from .defaults import ENCODE_MAX_LENGTH

    for side in ("query", "passage"):
        parser.add_argument(
            f"--{side}-max-length",
            type=int,
            default=ENCODE_MAX_LENGTH,
            help=f"RepLLaMA {side} tokens (default: {ENCODE_MAX_LENGTH}, as BEIR)",
        )


def add_model_options(parser: argparse.ArgumentParser) -> None:
    """``--base-model --tokenizer --dtype --fp16 --device`` for any command that loads a LLaMA."""
    parser.add_argument(
        "--base-model", default=None, help="base model for a LoRA adapter (default: its adapter_config.json)"
    )
    parser.add_argument(
        "--tokenizer", default=None, help="tokenizer name or path (default: the adapter's, else the base model's)"
    )
    parser.add_argument(
        "--dtype", type=precision_arg, metavar=PRECISION_METAVAR, default=None, help=f"precision: {PRECISION_HELP}"
    )
    parser.add_argument("--fp16", action="store_true", help="Pyserini's flag: same as --dtype float16")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default: cpu)")


def model_dtype(args: argparse.Namespace) -> str:
    if args.fp16 and args.dtype not in (None, "float16"):
        raise PyseriniLlamaError(f"--fp16 contradicts --dtype {args.dtype}")
    return "float16" if args.fp16 else (args.dtype or "float32")


def model_options(args: argparse.Namespace) -> dict:
    """The keyword arguments every model class takes from :func:`add_model_options` flags.

    Also sets torch's threads to one per physical core (``$OMP_NUM_THREADS`` if set): every command
    that calls this is about to run a model, and a library may have lowered them (``precision/cpu.py``).
    """
    from .precision.cpu import set_torch_threads

    set_torch_threads()
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


def add_max_batch_tokens_option(parser: argparse.ArgumentParser) -> None:
    """``--max-batch-tokens``: the padded-token budget per forward pass (rows x longest input)."""
    from .modeling.tokens import DEFAULT_MAX_BATCH_TOKENS

    parser.add_argument(
        "--max-batch-tokens",
        type=int,
        default=DEFAULT_MAX_BATCH_TOKENS,
        metavar="N",
        help=f"at most N padded tokens per batch (rows x longest; default {DEFAULT_MAX_BATCH_TOKENS}): long inputs "
        "get smaller batches, one alone if longer than N; --batch-size still caps the rows",
    )


def add_segment_options(parser: argparse.ArgumentParser) -> None:
    """``--segment WINDOW[,STRIDE] --aggregate firstp|maxp``: FirstP/MaxP document baselines."""
    parser.add_argument(
        "--segment",
        default=None,
        metavar="WINDOW[,STRIDE]",
        help="score each document through windows of WINDOW words of its body (whitespace-split words, as in "
        "Dai & Callan's FirstP/MaxP: e.g. 150,75), a new window every STRIDE words (default STRIDE = WINDOW, "
        "no overlap; STRIDE <= WINDOW); url and title are repeated in every window, and each window is still "
        "cut to --max-length tokens",
    )
    parser.add_argument(
        "--aggregate",
        choices=("firstp", "maxp"),
        default=None,
        help="with --segment: maxp (default) = a document's best window; firstp = its first window only",
    )


def segmenter_from_args(args: argparse.Namespace):
    """The :class:`~pyserini_llama.modeling.segments.Segmenter` the flags ask for, or None."""
    from .modeling.segments import Segmenter

    if args.segment is None:
        if args.aggregate is not None:
            raise PyseriniLlamaError("--aggregate needs --segment WINDOW[,STRIDE]")
        return None
    try:
        return Segmenter.parse(args.segment, args.aggregate)
    except ValueError as exc:
        raise PyseriniLlamaError(f"--segment: {exc}") from None


def add_resume_options(parser: argparse.ArgumentParser, unit: str) -> None:
    """``--chunk-size`` / ``--commit-seconds`` of resumable encoding (``encoders/resumable.py``),
    one definition for ``encode`` (``unit`` passages) and ``search.faiss`` (queries)."""
    from .encoders.resumable import DEFAULT_CHUNK_SIZE, DEFAULT_COMMIT_SECONDS

    parser.add_argument(
        "--chunk-size",
        type=int,
        default=DEFAULT_CHUNK_SIZE,
        help=f"{unit} batched and committed together to OUTPUT.partial/, so a killed run resumes "
        f"(default {DEFAULT_CHUNK_SIZE}; the same value gives byte-identical output)",
    )
    parser.add_argument(
        "--commit-seconds",
        type=float,
        default=DEFAULT_COMMIT_SECONDS,
        help=f"also commit a chunk's finished batches this often (default {DEFAULT_COMMIT_SECONDS:g})",
    )


def check_resume_options(args: argparse.Namespace) -> None:
    """Clear errors for impossible ``--chunk-size`` / ``--commit-seconds``."""
    if args.chunk_size < 1:
        raise PyseriniLlamaError("--chunk-size must be at least 1")
    if args.commit_seconds < 0:
        raise PyseriniLlamaError("--commit-seconds must be 0 or more")


#: ``score_fusion.NORMALISATIONS``, spelled here so that parsers (the Pyserini hook imports this module at the
#: start of every ``pyserini.search`` command) need not import the data package; a test keeps the two equal.
INTERPOLATION_NORMS = ("minmax", "zscore")

INTERPOLATE_HELP = (
    "after reranking, score each of the top {depth} hits W * reranker + (1 - W) * first stage, both normalised "
    "per query over those hits (see {norm}); hits below {depth} stay underneath in first-stage order. W is the "
    "RERANKER's weight: 1 = pure reranker, 0 = first-stage order. Choose W on a train/dev split with "
    "python -m pyserini_llama.rerank.sweep (no rescoring), never on the test queries you report "
    "(default: pure reranker, no interpolation)"
)


def interpolation_weight(text: str) -> float:
    """argparse type for an interpolation weight: a finite number in [0, 1]."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0.0 <= value <= 1.0:  # also rejects nan
        raise argparse.ArgumentTypeError(f"must be between 0 and 1 (the reranker's weight), got {text}")
    return value


def add_interpolation_options(
    parser: argparse.ArgumentParser | argparse._ArgumentGroup,
    flag: str = "--interpolate",
    *,
    depth_flag: str = "--depth",
) -> None:
    """``--interpolate W`` and ``--interpolate-norm`` (``flag`` and ``flag-norm``), defaults None: pure reranker.

    One definition for the rerank command, the Pyserini hook and the pipeline, so the help text that says how
    W must be chosen (on train/dev, never on test) is the same everywhere. ``parser`` may be an argument group.
    """
    parser.add_argument(
        flag,
        type=interpolation_weight,
        default=None,
        metavar="W",
        help=INTERPOLATE_HELP.format(depth=depth_flag, norm=f"{flag}-norm"),
    )
    parser.add_argument(
        f"{flag}-norm",
        choices=INTERPOLATION_NORMS,
        default=None,
        help=f"with {flag}: per-query normalisation, minmax (best hit 1, last 0) or zscore (default: minmax)",
    )


def interpolation_from_args(weight: float | None, norm: str | None, flag: str = "--interpolate") -> str:
    """The normalisation to use; a ``--...-norm`` without the weight is an error rather than silently unused."""
    if norm is not None and weight is None:
        raise PyseriniLlamaError(f"{flag}-norm {norm} needs {flag} W (the reranker's weight)")
    return norm or INTERPOLATION_NORMS[0]

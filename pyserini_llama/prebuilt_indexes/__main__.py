"""``python -m pyserini_llama.prebuilt_indexes``: list the known prebuilt indexes, fetch or build them."""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys

from ..cli_options import command_parser
from ..errors import PyseriniLlamaError, run_cli
from . import DATA_ROOT_ENV, cache_home, cached_index_path, get_prebuilt_index, list_prebuilt_indexes

logger = logging.getLogger("pyserini_llama.prebuilt_indexes")

EPILOG = f"""examples:
  # what is known, and what is already in the cache:
  python -m pyserini_llama.prebuilt_indexes --list
  # build the SciFact BM25 index once (later calls reuse it) and print its directory:
  python -m pyserini_llama.prebuilt_indexes --fetch beir-v1.0.0-scifact.bm25-flat --data-root ../shared/data
  # then search it:
  python -m pyserini_llama.search.lucene --index "$(python -m pyserini_llama.prebuilt_indexes \\
      --fetch beir-v1.0.0-scifact.bm25-flat --data-root ../shared/data)" \\
      --topics beir-v1.0.0-scifact-test --topics-dir ../shared/data/topics-and-qrels --output run.trec

Indexes are cached in <cache-dir>/indexes (default: $PYSERINI_CACHE, else ~/.cache/pyserini).
Locally built indexes read their collection from <data-root>/<collection> (default: ${DATA_ROOT_ENV})."""


def build_parser() -> argparse.ArgumentParser:
    parser = command_parser(
        "python -m pyserini_llama.prebuilt_indexes",
        "List pyserini-llama's prebuilt indexes; download (checksum-verified) or build them into the cache.",
        EPILOG,
    )
    parser.add_argument("--list", action="store_true", help="list the known indexes (the default action)")
    parser.add_argument("--fetch", nargs="+", metavar="NAME", help="fetch or build these indexes; print their paths")
    parser.add_argument("--cache-dir", default=None, help="cache root (default: $PYSERINI_CACHE or ~/.cache/pyserini)")
    parser.add_argument("--data-root", default=None, help=f"collections for local builds (default: ${DATA_ROOT_ENV})")
    parser.add_argument("--force", action="store_true", help="download or build again even if cached")
    parser.add_argument("--threads", type=int, default=1, help="threads for local builds (default: 1)")
    parser.add_argument("--device", default="cpu", help="device for local FAISS builds (default: cpu)")
    parser.add_argument("--batch-size", type=int, default=None, help="encoder batch size for local FAISS builds")
    return parser


def print_listing(cache_dir: str | None) -> None:
    rows = [("name", "kind", "model", "collection", "dim", "source", "cached")]
    for entry in list_prebuilt_indexes():
        cached = cached_index_path(entry.name, cache_dir)
        dim = str(entry.dimensions) if entry.dimensions else "-"
        rows.append((entry.name, entry.kind, entry.model, entry.collection, dim, entry.source, str(cached or "no")))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False)) + "  " + row[-1])
    print(f"\ncache: {cache_dir or cache_home()}/indexes")


@contextlib.contextmanager
def _stdout_to_stderr():
    """Send this process's stdout (fd 1) to stderr: Anserini's Java logger prints to fd 1, and only
    the index paths may go there, so that ``$(python -m pyserini_llama.prebuilt_indexes --fetch ...)`` works."""
    sys.stdout.flush()
    saved = os.dup(1)
    os.dup2(2, 1)
    try:
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.threads < 1:
        raise PyseriniLlamaError("--threads must be at least 1")
    if args.list or not args.fetch:
        print_listing(args.cache_dir)
    for name in args.fetch or []:
        with _stdout_to_stderr():
            path = get_prebuilt_index(
                name,
                cache_dir=args.cache_dir,
                data_root=args.data_root,
                force=args.force,
                threads=args.threads,
                device=args.device,
                batch_size=args.batch_size,
            )
        print(path, flush=True)
    return 0


def cli() -> None:
    run_cli(main)


if __name__ == "__main__":
    cli()

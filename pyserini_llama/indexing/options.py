"""``--index-type`` and its build flags, one definition for ``encode`` and ``indexing``."""

from __future__ import annotations

import argparse

from .faiss_types import IndexOptions


def add_index_options(parser: argparse.ArgumentParser) -> None:
    """``--index-type`` and its build parameters; shared with ``python -m pyserini_llama.encode``."""
    parser.add_argument(
        "--index-type",
        default=None,
        help="flat (default), flat-fp16, sq8, hnsw, ivfpq, or a FAISS factory string such as 'IVF256,PQ32'",
    )
    parser.add_argument("--hnsw-m", type=int, default=None, help="HNSW graph degree M (default 32)")
    parser.add_argument("--ef-construction", type=int, default=None, help="HNSW build beam (default 40)")
    parser.add_argument(
        "--ef-search", type=int, default=None, help="HNSW search beam stored in the index (default 1000)"
    )
    parser.add_argument("--nlist", type=int, default=None, help="IVF lists (default: about 4 sqrt(n), power of 2)")
    parser.add_argument("--nprobe", type=int, default=None, help="IVF lists probed, stored (default nlist/16, >= 8)")
    parser.add_argument("--pq-m", type=int, default=None, help="PQ sub-quantizers (default: largest divisor <= d/8)")
    parser.add_argument("--pq-bits", type=int, default=None, help="bits per PQ code (default 8; fewer for tiny sets)")
    parser.add_argument(
        "--train-size", type=int, default=None, help="vectors sampled to train IVF/PQ/SQ (default max(50 nlist, 9984))"
    )


def index_options(args: argparse.Namespace) -> IndexOptions:
    """The :class:`~pyserini_llama.indexing.IndexOptions` of :func:`add_index_options` flags."""
    return IndexOptions(
        index_type=args.index_type or "flat",
        hnsw_m=args.hnsw_m,
        ef_construction=args.ef_construction,
        ef_search=args.ef_search,
        nlist=args.nlist,
        nprobe=args.nprobe,
        pq_m=args.pq_m,
        pq_bits=args.pq_bits,
        train_size=args.train_size,
    )


def index_options_or_none(args: argparse.Namespace) -> IndexOptions | None:
    """``None`` when no index flag was given (the caller's default: a flat index or JSONL vectors);
    otherwise :func:`index_options`, so a build flag without ``--index-type`` is checked against flat
    (and rejected) instead of being ignored."""
    flags = ("index_type", "hnsw_m", "ef_construction", "ef_search", "nlist", "nprobe", "pq_m", "pq_bits", "train_size")
    if all(getattr(args, f) is None for f in flags):
        return None
    return index_options(args)

"""FAISS index types for RepLLaMA vectors: build, tune, move to GPU, merge encoded shards.

``faiss_types`` holds the logic (library code); ``python -m pyserini_llama.indexing`` builds one
index of any type from the flat shards that ``python -m pyserini_llama.encode --shard-id/--shard-num``
writes. Every index it makes is a plain FAISS ``index`` file plus Pyserini's ``docid`` file, so
Pyserini's ``FaissSearcher`` loads it unchanged.
"""

from .faiss_types import (
    NAMED_TYPES,
    IndexOptions,
    IndexTypeError,
    build_index,
    estimate_bytes,
    factory_string,
    fit_search_depth,
    move_to_gpus,
    prepare_for_search,
    set_search_params,
    write_index_dir,
)

__all__ = [
    "NAMED_TYPES",
    "IndexOptions",
    "IndexTypeError",
    "build_index",
    "factory_string",
    "fit_search_depth",
    "estimate_bytes",
    "move_to_gpus",
    "prepare_for_search",
    "set_search_params",
    "write_index_dir",
]

"""``torchrun ... -m pyserini_llama.encode``: every process encodes one shard, rank 0 merges them.

torchrun (one node or ``--nnodes`` several) starts the same encode command N times with
``RANK``/``WORLD_SIZE``/``LOCAL_RANK`` set. Each process joins the process group (nccl on CUDA,
gloo on CPU; used only for a barrier, encoding needs no communication), takes Pyserini's shard
``RANK`` of ``WORLD_SIZE`` (:func:`~pyserini_llama.encode.shard`), runs on ``cuda:LOCAL_RANK``, and
writes a flat shard to ``<output>.shards/``. After the barrier rank 0 merges the shards in order
with :func:`~pyserini_llama.indexing.shards.build_from_shards` (the code behind
``python -m pyserini_llama.indexing``) into one index of the requested ``--index-type``, and removes
the shards.

Each rank's encoding is resumable on its own; its chunk files are kept until the merge has
succeeded, so rerunning the torchrun command after any failure (a rank, the merge) re-encodes
nothing that was finished. With ``--chunk-size`` dividing the shard size, every batch is the one a
single process would run and the merged index is bit-identical to a single-process one; otherwise
the shards' edge chunks batch differently and vectors agree to float rounding (about 1e-7).
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from ..data.document import Document
from ..encoders.repllama import RepLLaMAEncoder
from ..errors import PyseriniLlamaError
from ..indexing.faiss_types import IndexOptions, check_options
from ..indexing.shards import build_from_shards
from ..modeling.segments import Segmenter
from . import encode_corpus, shard

logger = logging.getLogger(__name__)

BARRIER_TIMEOUT = timedelta(hours=72)


@dataclass(frozen=True)
class World:
    """This process's place among torchrun's processes."""

    rank: int
    size: int
    local_rank: int


def torchrun_world() -> World | None:
    """The torchrun environment, or None for a plain process (``WORLD_SIZE`` unset or 1)."""
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size <= 1:
        return None
    return World(int(os.environ["RANK"]), size, int(os.environ.get("LOCAL_RANK", "0")))


def rank_device(device: str | None, world: World) -> str | None:
    """``cuda`` becomes this process's GPU, ``cuda:LOCAL_RANK``; CPU stays CPU."""
    if device is not None and device.startswith("cuda"):
        return f"cuda:{world.local_rank}"
    return device


@contextmanager
def process_group(world: World, device: str | None) -> Iterator[None]:
    """Join torchrun's process group for the run's duration: nccl on CUDA, gloo on CPU."""
    import torch.distributed as dist

    cuda = device is not None and device.startswith("cuda")
    if cuda:
        import torch

        torch.cuda.set_device(world.local_rank)
    # Ranks meet only at the barrier before the merge; shards finish hours apart on big corpora.
    dist.init_process_group("nccl" if cuda else "gloo", timeout=BARRIER_TIMEOUT)
    try:
        yield
    finally:
        dist.destroy_process_group()


def shard_dirs(output_dir: str | os.PathLike, world_size: int) -> list[Path]:
    """Where each rank writes its flat shard: ``<output>.shards/shard-RRRRR-of-NNNNN``."""
    root = Path(output_dir).with_name(Path(output_dir).name + ".shards")
    return [root / f"shard-{r:05d}-of-{world_size:05d}" for r in range(world_size)]


def encode_distributed(
    encoder: RepLLaMAEncoder,
    documents: Sequence[Document],
    output_dir: str | os.PathLike,
    world: World,
    *,
    fields: Sequence[str] = ("title", "text"),
    segments: Segmenter | None = None,
    index_options: IndexOptions | None = None,
    **encode_options,
) -> Path:
    """Encode this rank's shard of ``documents`` (the whole corpus), wait for all ranks, and on
    rank 0 merge the shards into ``output_dir`` (a FAISS index of ``index_options``, default flat).

    Must run inside :func:`process_group`. ``encode_options`` go to :func:`encode_corpus`
    (``chunk_size``, ``commit_seconds``, ``batch_size``, ``max_length``)."""
    import torch.distributed as dist

    if len(documents) < world.size:
        raise PyseriniLlamaError(f"{len(documents)} documents cannot be split over {world.size} processes")
    options = index_options or IndexOptions("flat")
    check_options(options, len(documents), encoder.dimension)  # fail on every rank before encoding
    dirs = shard_dirs(output_dir, world.size)
    mine = shard(documents, world.rank, world.size)
    logger.info(
        "rank %d of %d: encoding %d of %d documents into %s",
        world.rank,
        world.size,
        len(mine),
        len(documents),
        dirs[world.rank],
    )
    encode_corpus(
        encoder,
        mine,
        dirs[world.rank],
        to_faiss=True,
        fields=fields,
        segments=segments,
        keep_work=True,
        **encode_options,
    )
    dist.barrier()
    if world.rank == 0:
        build_from_shards(dirs, output_dir, options)
        shutil.rmtree(dirs[0].parent)  # shards and their chunk files: the merged index is written
    return Path(output_dir)

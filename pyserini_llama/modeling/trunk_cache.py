"""An on-disk cache of what a decoder's frozen trunk computes (``modeling/trunk.py`` splits the decoder).

Why: with LoRA on the top layers only, the trunk's hidden states depend on the token sequence alone.
Computing them once per unique query and passage, and training the top from the stored states, makes
every later visit of a text (epoch 2 onwards, a passage recurring as a negative) cost only the top's
share of a forward and backward pass. Training (``--trunk-cache``) and ``encode --trunk-cache`` both
use it, through :func:`split_forward`.

Padding: inputs are right-padded and attention is causal, so a real token never sees a pad.
A sequence's trunk states therefore do not depend on what it was batched with, and the cache
stores them unpadded, keyed by the token ids themselves (which fix the text, its truncation
to the max length, and the tokenizer's special tokens). The directory of a cache is named by a
fingerprint of the trunk's weights, the split layer and the storage dtype, so states of another
model, another split or an adapter that touched the trunk can never be served.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
import uuid
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..atomic import atomic_write, remove_stale_temporaries
from ..errors import PyseriniLlamaError
from .trunk import SplitForward, decoder_of, trunk_states

logger = logging.getLogger(__name__)

CACHE_DTYPES = {"float16": np.float16, "float32": np.float32}
META_FILE = "cache.json"


def trunk_fingerprint(decoder: nn.Module, split: int, dtype: str) -> str:
    """A short hash of the trunk's weights (a sample of every tensor: cheap even for 7B), the split and dtype."""
    digest = hashlib.sha256(f"{type(decoder).__name__}|{split}|{dtype}".encode())
    modules = [("embed_tokens", decoder.embed_tokens)] + [(f"layers.{i}", decoder.layers[i]) for i in range(split)]
    for prefix, module in modules:
        for name, param in sorted(module.named_parameters()):
            flat = param.detach().reshape(-1)
            sample = torch.cat([flat[:2048], flat[flat.numel() // 2 : flat.numel() // 2 + 2048], flat[-2048:]])
            digest.update(f"{prefix}.{name}{tuple(param.shape)}{param.dtype}".encode())
            digest.update(sample.float().cpu().numpy().tobytes())
    return digest.hexdigest()[:20]


def sequence_key(ids: Sequence[int]) -> str:
    return hashlib.sha1(np.asarray(ids, dtype=np.int64).tobytes()).hexdigest()


class TrunkCache:
    """Trunk states of token sequences, stored unpadded in memory-mapped shards under ``root/<fingerprint>/``.

    A shard is ``<name>.npy`` (all its sequences' states, concatenated along the token axis) plus
    ``<name>.json`` (keys, offsets, lengths). Each is written to a temporary file and renamed, the
    JSON last, so a shard exists only once complete: a kill loses at most the shard being written,
    and a rerun computes only what is missing.
    """

    def __init__(self, root: str | os.PathLike, decoder: nn.Module, split: int, dtype: str = "float16"):
        if dtype not in CACHE_DTYPES:
            raise PyseriniLlamaError(f"trunk cache dtype must be one of {', '.join(CACHE_DTYPES)}, not {dtype!r}")
        if not 0 < split < len(decoder.layers):
            raise PyseriniLlamaError(f"trunk split {split} must be between 1 and {len(decoder.layers) - 1}")
        self.decoder = decoder
        self.split = split
        self.dtype = dtype
        self.hidden_size = decoder.embed_tokens.weight.shape[1]
        self.directory = Path(root) / trunk_fingerprint(decoder, split, dtype)
        self.directory.mkdir(parents=True, exist_ok=True)
        meta = {"split": split, "dtype": dtype, "hidden_size": self.hidden_size, "layers": len(decoder.layers)}
        meta_file = self.directory / META_FILE
        if not meta_file.is_file():
            atomic_write(meta_file, lambda f: f.write(json.dumps(meta, indent=2).encode()), binary=True, sync=True)
        remove_stale_temporaries(self.directory, older_than_s=86400)  # a day old: no live writer owns it
        self._entries: dict[str, tuple[int, int, int]] = {}  # key -> (shard, offset, length)
        self._shards: list[np.ndarray] = []
        for index_file in sorted(self.directory.glob("shard-*.json")):
            self._load_shard(index_file)
        self.hits = self.misses = 0

    def _load_shard(self, index_file: Path) -> None:
        try:
            index = json.loads(index_file.read_text())
            states = np.load(index_file.with_suffix(".npy"), mmap_mode="r")
        except (OSError, ValueError) as exc:
            logger.warning("ignoring unreadable trunk-cache shard %s (%s)", index_file, exc)
            return
        shard = len(self._shards)
        self._shards.append(states)
        for key, offset, length in zip(index["keys"], index["offsets"], index["lengths"], strict=True):
            self._entries[key] = (shard, offset, length)

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, ids: Sequence[int]) -> bool:
        return sequence_key(ids) in self._entries

    def get(self, ids: Sequence[int]) -> torch.Tensor | None:
        """``(len(ids), hidden)`` float32 states, or None if not cached."""
        entry = self._entries.get(sequence_key(ids))
        if entry is None:
            return None
        shard, offset, length = entry
        return torch.from_numpy(np.array(self._shards[shard][offset : offset + length], dtype=np.float32))

    def put(self, sequences: Sequence[Sequence[int]], states: Sequence[torch.Tensor]) -> None:
        """Store one shard: ``states[i]`` is ``(len(sequences[i]), hidden)``."""
        keys, offsets, lengths, offset = [], [], [], 0
        fresh = {}
        for ids, state in zip(sequences, states, strict=True):
            key = sequence_key(ids)
            if key in self._entries or key in fresh:
                continue
            fresh[key] = state
            keys.append(key)
            offsets.append(offset)
            lengths.append(len(ids))
            offset += len(ids)
        if not keys:
            return
        block = torch.cat([fresh[k] for k in keys]).detach().float().cpu().numpy().astype(CACHE_DTYPES[self.dtype])
        if not np.isfinite(block).all():
            raise PyseriniLlamaError(
                f"trunk states overflow {self.dtype} (the model has activations beyond its range); use dtype float32"
            )
        name = f"shard-{uuid.uuid4().hex}"
        atomic_write(self.directory / f"{name}.npy", lambda f: np.save(f, block), binary=True, sync=True)
        index = {"keys": keys, "offsets": offsets, "lengths": lengths}
        atomic_write(
            self.directory / f"{name}.json", lambda f: f.write(json.dumps(index).encode()), binary=True, sync=True
        )
        self._load_shard(self.directory / f"{name}.json")

    # ------------------------------------------------------------------------------ computing
    @torch.no_grad()
    def compute(self, sequences: Sequence[Sequence[int]], pad_id: int) -> list[torch.Tensor]:
        """Run the trunk on ``sequences`` (one padded batch); each result unpadded."""
        from .tokens import pad_right

        device = self.decoder.embed_tokens.weight.device
        input_ids, attention_mask = pad_right(sequences, pad_id)
        hidden = trunk_states(self.decoder, input_ids.to(device), attention_mask.to(device), self.split)
        return [hidden[row, : len(ids)].float().cpu() for row, ids in enumerate(sequences)]

    def fill(
        self,
        sequences: Sequence[Sequence[int]],
        pad_id: int,
        *,
        tokens_per_batch: int = 4096,
        tokens_per_shard: int = 262144,
        seconds_per_shard: float = 60.0,
        progress: bool = True,
        description: str = "caching trunk states",
    ) -> int:
        """Compute and store every sequence not cached yet; returns how many were computed.

        Length-sorted batches of at most ``tokens_per_batch`` padded tokens (so no work is spent on
        padding); a shard is committed every ``tokens_per_shard`` tokens or ``seconds_per_shard``
        seconds, whichever comes first: the unit of resumption, so a kill loses at most a minute of
        work however slow the machine and however long the sequences.
        """
        from tqdm.auto import tqdm

        from .tokens import token_budget_batches

        unique: dict[str, Sequence[int]] = {}
        for ids in sequences:
            key = sequence_key(ids)
            if key not in self._entries:
                unique.setdefault(key, ids)
        missing = list(unique.values())
        if not missing:
            return 0
        batches = list(token_budget_batches([len(s) for s in missing], tokens_per_batch))
        bar = tqdm(total=len(missing), desc=description, unit="text", disable=not progress)
        pending_ids: list[Sequence[int]] = []
        pending_states: list[torch.Tensor] = []
        pending_tokens = 0
        last_commit = time.monotonic()
        for batch in batches:
            chunk = [missing[i] for i in batch]
            pending_ids.extend(chunk)
            pending_states.extend(self.compute(chunk, pad_id))
            pending_tokens += sum(len(s) for s in chunk)
            bar.update(len(chunk))
            if pending_tokens >= tokens_per_shard or time.monotonic() - last_commit >= seconds_per_shard:
                self.put(pending_ids, pending_states)
                pending_ids, pending_states, pending_tokens = [], [], 0
                last_commit = time.monotonic()
        self.put(pending_ids, pending_states)
        bar.close()
        return len(missing)

    def padded(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, pad_id: int) -> torch.Tensor:
        """Trunk states of a right-padded batch, from the cache; missing rows are computed and stored.

        Padding positions hold zeros: no real token attends to them, so they never matter.
        """
        lengths = attention_mask.sum(dim=1).tolist()
        rows = [input_ids[i, :n].tolist() for i, n in enumerate(lengths)]
        states = [self.get(ids) for ids in rows]
        missing = [i for i, s in enumerate(states) if s is None]
        self.hits += len(rows) - len(missing)
        self.misses += len(missing)
        if missing:
            computed = self.compute([rows[i] for i in missing], pad_id)
            self.put([rows[i] for i in missing], computed)
            for i, state in zip(missing, computed, strict=True):
                states[i] = state
        out = torch.zeros(input_ids.size(0), input_ids.size(1), self.hidden_size)
        for i, state in enumerate(states):
            out[i, : state.size(0)] = state
        return out.to(device=input_ids.device, dtype=self.decoder.embed_tokens.weight.dtype)


def split_forward(
    model, split: int = 0, cache_dir: str | os.PathLike | None = None, dtype: str = "float16", pad_id: int = 0
) -> SplitForward:
    """A :class:`SplitForward` for ``model`` split at ``split``, reading and filling the trunk cache in
    ``cache_dir`` when one is given (and the split leaves a trunk to cache)."""
    cache = None
    if cache_dir is not None and split > 0:
        cache = TrunkCache(cache_dir, decoder_of(model), split, dtype)
        logger.info("trunk cache %s: %d sequences stored", cache.directory, len(cache))
    return SplitForward(model, split, cache, pad_id)

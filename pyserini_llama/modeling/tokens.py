"""Token-level logic shared by RepLLaMA and RankLLaMA: special tokens, padding, length-sorted batches.

Both models read the hidden state of the *last real token*, so two things must never go wrong:
truncation must keep the EOS the encoder relies on, and padding must be on the right with a
pad id the model cannot confuse with a real token (RankLLaMA's head finds the last token by
looking for the first pad id, so a pad id equal to EOS would make it read the wrong one).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from ..errors import ModelLoadError

#: Default padded-token budget per forward pass (rows x longest row). 8192 = 16 x 512, the
#: largest batch the encoder's old defaults (batch size 16, 512 tokens) could form, so short
#: inputs batch as before while a 4096-token document gets a batch of two, not sixteen.
DEFAULT_MAX_BATCH_TOKENS = 8192


def choose_pad_id(tokenizer) -> int:
    """A pad id distinct from EOS: the tokenizer's pad, else unk (as the reference code does), else 0."""
    eos = tokenizer.eos_token_id
    for candidate in (tokenizer.pad_token_id, tokenizer.unk_token_id):
        if candidate is not None and candidate != eos:
            return int(candidate)
    for candidate in range(len(tokenizer)):
        if candidate != eos and candidate not in (tokenizer.bos_token_id,):
            return candidate
    raise ModelLoadError("tokenizer has no usable pad id")


@dataclass(frozen=True)
class SpecialTokens:
    """What the tokenizer itself puts around a text, learnt by encoding a probe string once."""

    prefix: tuple[int, ...]  # e.g. (BOS,) for Llama-2, () for SmolLM2
    eos_id: int
    pad_id: int

    @classmethod
    def of(cls, tokenizer) -> SpecialTokens:
        if tokenizer.eos_token_id is None:
            raise ModelLoadError("tokenizer has no EOS token; RepLLaMA pools the EOS hidden state")
        probe = "probe"
        bare = tokenizer(probe, add_special_tokens=False)["input_ids"]
        full = tokenizer(probe, add_special_tokens=True)["input_ids"]
        start = _find(full, bare)
        prefix = tuple(full[:start]) if start >= 0 else ()
        return cls(prefix=prefix, eos_id=int(tokenizer.eos_token_id), pad_id=choose_pad_id(tokenizer))


def _find(haystack: Sequence[int], needle: Sequence[int]) -> int:
    for i in range(len(haystack) - len(needle) + 1):
        if list(haystack[i : i + len(needle)]) == list(needle):
            return i
    return -1


def encode_with_eos(tokenizer, texts: Sequence[str], max_length: int, special: SpecialTokens) -> list[list[int]]:
    """Token ids ``prefix + text + EOS``, the text truncated so the EOS always survives.

    Equals ``tokenizer(text + "</s>")`` of the model card for Llama-2, for any tokenizer, and
    never longer than ``max_length``.
    """
    room = max_length - len(special.prefix) - 1
    if room < 1:
        raise ValueError(f"max_length {max_length} leaves no room for text tokens")
    encoded = tokenizer(list(texts), add_special_tokens=False, truncation=True, max_length=room)["input_ids"]
    return [[*special.prefix, *ids, special.eos_id] for ids in encoded]


def pad_right(sequences: Sequence[Sequence[int]], pad_id: int):
    """``(input_ids, attention_mask)`` tensors, right-padded with ``pad_id``."""
    import torch

    width = max(len(s) for s in sequences)
    input_ids = torch.full((len(sequences), width), pad_id, dtype=torch.long)
    attention_mask = torch.zeros((len(sequences), width), dtype=torch.long)
    for row, seq in enumerate(sequences):
        input_ids[row, : len(seq)] = torch.as_tensor(seq, dtype=torch.long)
        attention_mask[row, : len(seq)] = 1
    return input_ids, attention_mask


def last_token_hidden(hidden_states, attention_mask):
    """Hidden state of each row's last non-padding token (right padding)."""
    import torch

    last = attention_mask.sum(dim=1) - 1
    return hidden_states[torch.arange(hidden_states.size(0), device=hidden_states.device), last]


def token_budget_batches(lengths: Sequence[int], max_tokens: int, max_rows: int | None = None) -> Iterator[list[int]]:
    """Length-sorted batches (longest first) whose padded size, rows x longest, stays within ``max_tokens``.

    A fixed row count wastes work on padding when lengths vary and runs out of memory when one
    text is long; a token budget keeps every batch the same cost. A sequence longer than the
    budget gets a batch of its own. Longest first also means an out-of-memory error shows up on
    the first batch, not the last.
    """
    if max_tokens < 1:
        raise ValueError("max_tokens must be at least 1")
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    batch: list[int] = []
    for i in order:
        longest = lengths[batch[0]] if batch else lengths[i]
        if batch and ((len(batch) + 1) * longest > max_tokens or (max_rows and len(batch) >= max_rows)):
            yield batch
            batch = []
        batch.append(i)
    if batch:
        yield batch

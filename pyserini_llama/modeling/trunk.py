"""A decoder split in two at layer ``S``: a frozen *trunk* (embeddings + layers ``0..S-1``) and a *top*
(layers ``S..L-1`` + the final norm).

Why: with LoRA on the top ``K = L - S`` layers only, the trunk never changes during training, so the
hidden states leaving it depend on the token sequence alone: they can be computed once per unique
text and stored (``modeling/trunk_cache.py``), and every later visit of a text costs ``K / L`` of a
forward and backward pass. The same states serve evaluation of any adapter that leaves the trunk alone.

Both halves run through the model's own ``forward`` (the layer list and the final norm are
swapped for the duration of the call), so rotary positions, the causal/padding mask and the
attention kernel are exactly those of an unsplit call.
"""

from __future__ import annotations

import contextlib
from typing import Protocol

import torch
from torch import nn

from ..errors import PyseriniLlamaError


def decoder_of(model) -> nn.Module:
    """The decoder stack (``LlamaModel``: ``embed_tokens``, ``layers``, ``norm``) inside any wrapper:
    a PEFT model, ``*ForSequenceClassification``/``*ForCausalLM``, or the decoder itself."""
    inner = model.get_base_model() if hasattr(model, "get_base_model") else model
    for candidate in (inner, getattr(inner, "model", None)):
        if candidate is not None and isinstance(getattr(candidate, "layers", None), nn.ModuleList):
            return candidate
    raise TypeError(f"{type(inner).__name__} has no decoder layer list (.layers / .model.layers)")


def num_layers(model) -> int:
    return len(decoder_of(model).layers)


@contextlib.contextmanager
def _running(decoder: nn.Module, layers: nn.ModuleList, norm: nn.Module):
    """Let ``decoder.forward`` run ``layers`` and ``norm`` instead of its own, for one call."""
    saved_layers, saved_norm = decoder.layers, decoder.norm
    decoder.layers, decoder.norm = layers, norm
    try:
        yield
    finally:
        decoder.layers, decoder.norm = saved_layers, saved_norm


def trunk_states(decoder: nn.Module, input_ids: torch.Tensor, attention_mask: torch.Tensor, split: int) -> torch.Tensor:
    """Hidden states leaving layer ``split - 1`` (before the final norm), ``(batch, length, hidden)``."""
    with _running(decoder, decoder.layers[:split], nn.Identity()):
        return decoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state


def top_states(decoder: nn.Module, hidden: torch.Tensor, attention_mask: torch.Tensor, split: int) -> torch.Tensor:
    """The model's ``last_hidden_state`` computed from trunk states: layers ``split..`` and the final norm."""
    with _running(decoder, decoder.layers[split:], decoder.norm):
        return decoder(inputs_embeds=hidden, attention_mask=attention_mask).last_hidden_state


def check_splittable(decoder: nn.Module) -> None:
    """Refuse decoders whose ``forward`` changes ``inputs_embeds`` before the first layer.

    The top half is run by feeding the trunk's states back in as ``inputs_embeds``; a family
    that rescales them there (Gemma multiplies by sqrt(hidden)) would silently compute
    something else. Checked by running the decoder with no layers and no norm on one state.
    """
    weight = decoder.embed_tokens.weight
    probe = torch.randn(1, 2, weight.size(1), dtype=weight.dtype, device=weight.device)
    with torch.no_grad(), _running(decoder, nn.ModuleList(), nn.Identity()):
        out = decoder(inputs_embeds=probe, attention_mask=torch.ones(1, 2, dtype=torch.long, device=weight.device))
    if not torch.equal(out.last_hidden_state, probe):
        raise PyseriniLlamaError(
            f"{type(decoder).__name__} transforms inputs_embeds before its first layer (e.g. Gemma's scaling by "
            "sqrt(hidden)), so it cannot be split into a cached trunk and a top; train it without --lora-layers "
            "and --trunk-cache"
        )


class TrunkStates(Protocol):
    """What :class:`SplitForward` asks of a store of trunk states (``trunk_cache.TrunkCache``)."""

    split: int

    def padded(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, pad_id: int) -> torch.Tensor: ...


class SplitForward:
    """``last_hidden_state`` of a decoder whose layers below ``split`` are frozen: they run without
    autograd (and from ``cache`` when given), the layers from ``split`` up with it.

    ``split = 0`` is the plain forward pass. Used by training (top-K LoRA) and by encoders
    serving a top-K adapter from a trunk cache.
    """

    def __init__(self, model, split: int = 0, cache: TrunkStates | None = None, pad_id: int = 0):
        self.decoder = decoder_of(model)
        if not 0 <= split < len(self.decoder.layers):
            raise PyseriniLlamaError(f"split {split} outside 0..{len(self.decoder.layers) - 1}")
        if cache is not None and cache.split != split:
            raise PyseriniLlamaError(f"trunk cache split {cache.split} differs from the model split {split}")
        if split > 0:
            check_splittable(self.decoder)
        self.split = split
        self.cache = cache
        self.pad_id = pad_id

    def __call__(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        if self.split == 0:
            return self.decoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        with torch.no_grad():
            if self.cache is not None:
                hidden = self.cache.padded(input_ids, attention_mask, self.pad_id)
            else:
                hidden = trunk_states(self.decoder, input_ids, attention_mask, self.split)
        return top_states(self.decoder, hidden, attention_mask, self.split)

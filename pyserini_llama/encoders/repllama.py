"""RepLLaMA: a LLaMA bi-encoder. One model embeds queries and passages into one vector space.

Faithful to the castorini model card: ``query: {q}`` / ``passage: {title} {text}``, the
tokenizer's own prefix (BOS for Llama-2) + text + EOS, the hidden state of that EOS,
L2-normalised. Batching only changes speed: texts are sorted by length, grouped into batches
of at most ``batch_size`` rows and ``max_batch_tokens`` padded tokens (so a 4096-token document
runs alone or in pairs instead of exhausting memory), padded on the right, pooled at each row's
last real token, and returned in input order.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence

import numpy as np

from ..data.document import DocumentLike, as_document
from ..defaults import ENCODE_BATCH_SIZE, ENCODE_MAX_LENGTH
from ..modeling.formatting import PASSAGE_PREFIX, QUERY_PREFIX, apply_case, format_document, format_query
from ..modeling.tokens import (
    DEFAULT_MAX_BATCH_TOKENS,
    SpecialTokens,
    encode_with_eos,
    last_token_hidden,
    pad_right,
    token_budget_batches,
)
from ..precision import load_for_inference
from ..precision.int8 import calibration_sample

logger = logging.getLogger(__name__)


class RepLLaMAEncoder:
    """Embed queries and passages with a RepLLaMA checkpoint (any LLaMA-family model or adapter).

    Example::

        encoder = RepLLaMAEncoder("castorini/repllama-v1-7b-lora-passage", dtype="bfloat16", device="cuda")
        q = encoder.encode_queries(["what is a lobster roll"])
        p = encoder.encode_passages([{"title": "Lobster roll", "text": "A lobster roll is ..."}])
        scores = q @ p.T
    """

    def __init__(
        self,
        model,
        *,
        base_model: str | None = None,
        tokenizer=None,
        dtype: str = "float32",
        device: str | None = None,
        query_max_length: int = ENCODE_MAX_LENGTH,
        passage_max_length: int = ENCODE_MAX_LENGTH,
        batch_size: int = ENCODE_BATCH_SIZE,
        max_batch_tokens: int = DEFAULT_MAX_BATCH_TOKENS,
        dimension: int | None = None,
        query_prefix: str = QUERY_PREFIX,
        passage_prefix: str = PASSAGE_PREFIX,
        trunk_cache: str | os.PathLike | None = None,
        trunk_split: int | None = None,
        text_case: str | None = None,
    ):
        """``model``: a name :func:`load_backbone` accepts, or an already loaded model (then pass the
        tokenizer object as ``tokenizer``; used by training to evaluate without reloading weights).

        ``dtype``: an inference precision (``pyserini_llama.precision``): float32, bfloat16, float16, int8
        (CPU; quantised on the first texts it is given, see :meth:`calibrate`) or auto (measured).

        ``batch_size`` caps the rows of a batch, ``max_batch_tokens`` its padded size (rows x
        longest); a text longer than the budget is embedded on its own.

        ``trunk_cache``: a directory of cached trunk states (``modeling/trunk_cache.py``). Texts found
        there run through the layers from ``trunk_split`` up only; the rest are computed in full
        and stored. ``trunk_split`` defaults to the lowest layer a top-K LoRA adapter touches. The
        cache is keyed by the trunk's weights, so it can only serve states of this very trunk.

        ``text_case``: the case rule of ``modeling/formatting.py``; by default the one the model
        records (``input_format.json``, written by training), else ``as-is``.
        """
        self._loaded_by_name = isinstance(model, str | os.PathLike)
        self._base_model, self._tokenizer_name = base_model, tokenizer if isinstance(tokenizer, str) else None
        self.int8 = None  # precision.int8.Int8Quantizer for an int8 encoder
        self._source = None  # modeling.loading.ModelSource of a model loaded by name: its files are read from it
        if isinstance(model, str | os.PathLike):
            self.name = str(model)
            loaded = load_for_inference(
                self.name,
                "embedding",
                precision=dtype,
                device=device or "cpu",
                base_model=base_model,
                tokenizer_name=tokenizer,
            )
            self.model, self.tokenizer, self.precision, self.int8, self._source = (
                loaded.model,
                loaded.tokenizer,
                loaded.precision,
                loaded.int8,
                loaded.source,
            )
            if self.int8 is not None and trunk_cache is not None:
                raise ValueError("int8 and a trunk cache do not combine: the cache holds float states of the trunk")
        else:
            if tokenizer is None or isinstance(tokenizer, str | os.PathLike):
                raise ValueError("with an already loaded model, pass its tokenizer object as tokenizer=")
            self.name = getattr(model.config, "_name_or_path", "in-memory model")
            self.model, self.tokenizer = model, tokenizer
            self.precision = str(next(model.parameters()).dtype).removeprefix("torch.")
        self.device = device or str(next(self.model.parameters()).device)
        self.special = SpecialTokens.of(self.tokenizer)
        self.query_max_length = query_max_length
        self.passage_max_length = passage_max_length
        if batch_size < 1 or max_batch_tokens < 1:
            raise ValueError("batch_size and max_batch_tokens must be at least 1")
        self.batch_size = batch_size
        self.max_batch_tokens = max_batch_tokens
        hidden = self.model.config.hidden_size
        if dimension is not None and not 0 < dimension <= hidden:
            raise ValueError(f"dimension must be in 1..{hidden} (the model's hidden size), not {dimension}")
        self.dimension = dimension or hidden  # below hidden: Matryoshka prefix, re-normalised
        self.query_prefix = query_prefix
        self.passage_prefix = passage_prefix
        if text_case is None:
            from ..modeling.loading import read_input_format

            text_case = read_input_format(self._source).get("text_case", "as-is") if self._loaded_by_name else "as-is"
        apply_case("", text_case)  # an unknown rule fails here, not at the first text
        self.text_case = text_case
        self.split_forward = self._split_forward(trunk_cache, trunk_split)

    def _split_forward(self, trunk_cache, trunk_split):
        from ..modeling.trunk_cache import split_forward

        if trunk_cache is not None and trunk_split is None:
            from ..modeling.loading import adapter_layers

            layers = adapter_layers(self._source or self.name)
            if not layers:
                raise ValueError(f"{self.name} is not a top-K LoRA adapter (no layers_to_transform); pass trunk_split")
            trunk_split = min(layers)
        return split_forward(self.model, trunk_split or 0, trunk_cache, pad_id=self.special.pad_id)

    def fingerprint(self) -> dict | None:
        """Everything besides the input texts and max length that decides the vectors, for caches
        of them (resumable encoding): weights' files, dtype, device, pooling dimension, prefixes,
        batching and trunk split, since batch composition changes float results. ``None`` for a
        model passed in memory: its weights may change (training) and cannot be identified cheaply.
        """
        if not self._loaded_by_name:
            return None
        from ..cache import model_fingerprint

        cache = self.split_forward.cache
        return {
            "model": model_fingerprint(self.name),
            "base_model": None if self._base_model is None else model_fingerprint(self._base_model),
            "tokenizer": self._tokenizer_name,
            "dtype": str(next(self.model.parameters()).dtype),
            "device": str(self.device),
            "dimension": self.dimension,
            "prefixes": [self.query_prefix, self.passage_prefix],
            **({"text_case": self.text_case} if self.text_case != "as-is" else {}),
            "max_batch_tokens": self.max_batch_tokens,
            "trunk_split": self.split_forward.split,
            "trunk_cache": None if cache is None else [cache.split, cache.dtype],
            **({"int8": self.int8.describe()} if self.int8 is not None else {}),
        }

    @classmethod
    def from_model(cls, model, tokenizer, **kwargs) -> RepLLaMAEncoder:
        """Wrap an already loaded model (e.g. during training) without reloading weights."""
        return cls(model, tokenizer=tokenizer, **kwargs)

    def encode_queries(
        self,
        queries: Sequence[str],
        *,
        max_length: int | None = None,
        batch_size: int | None = None,
        show_progress: bool = False,
    ) -> np.ndarray:
        """``(n, dimension)`` float32 unit vectors, in input order."""
        texts = self.format_queries(queries)
        return self.encode_texts(texts, max_length or self.query_max_length, batch_size, show_progress, "queries")

    def encode_passages(
        self,
        passages: Sequence[DocumentLike],
        *,
        max_length: int | None = None,
        batch_size: int | None = None,
        show_progress: bool = False,
    ) -> np.ndarray:
        """``(n, dimension)`` float32 unit vectors, in input order. Items: Document, dict or text (``as_document``)."""
        texts = self.format_passages(passages)
        return self.encode_texts(texts, max_length or self.passage_max_length, batch_size, show_progress, "passages")

    def format_queries(self, queries: Sequence[str]) -> list[str]:
        """The exact texts :meth:`encode_queries` embeds (prefix included)."""
        return [format_query(apply_case(q, self.text_case), self.query_prefix) for q in queries]

    def format_passages(self, passages: Sequence[DocumentLike]) -> list[str]:
        """The exact texts :meth:`encode_passages` embeds (prefix, url and title included)."""
        return [format_document(as_document(item), self.passage_prefix, self.text_case) for item in passages]

    def calibrate(self, texts: Sequence[str], max_length: int) -> None:
        """Quantise an int8 encoder, calibrated on a sample of ``texts`` (formatted, as :meth:`encode_texts`
        takes them); a no-op for other precisions and once done.

        Why here and not at load time: SmoothQuant's scales come from real activations of the data being
        encoded. Every entry point calls this with everything it is about to encode, before any forward
        pass, so the quantised model is a function of the input alone. To share one quantisation across
        several calls (corpus shards, then queries), call it first with a corpus-wide sample.
        """
        if self.int8 is None or self.int8.done or not texts:
            return
        self.int8.calibrate(encode_with_eos(self.tokenizer, calibration_sample(texts), max_length, self.special))

    def plan_batches(
        self, texts: Sequence[str], max_length: int, batch_size: int | None = None, show_progress: bool = False
    ) -> tuple[list[list[int]], list[list[int]]]:
        """Token ids of ``texts`` and the batches (row indices) :meth:`encode_texts` runs them in.

        Batches depend only on the texts and the settings, so a caller that embeds them one by one
        (resumable encoding) gets exactly :meth:`encode_texts`' vectors. Fills the trunk cache, if any.
        """
        self.calibrate(texts, max_length)
        ids = encode_with_eos(self.tokenizer, texts, max_length, self.special)
        batches = list(
            token_budget_batches([len(s) for s in ids], self.max_batch_tokens, max_rows=batch_size or self.batch_size)
        )
        if self.split_forward.cache is not None and ids:
            self.split_forward.cache.fill(
                ids, self.special.pad_id, progress=show_progress, tokens_per_batch=self.max_batch_tokens
            )
        return ids, batches

    def embed_batch(self, sequences: list[list[int]]) -> np.ndarray:
        """Unit vectors of one batch of token id sequences (one of :meth:`plan_batches`' batches)."""
        import torch

        with torch.inference_mode():
            return self._embed(sequences)

    def encode_texts(
        self,
        texts: Sequence[str],
        max_length: int,
        batch_size: int | None = None,
        show_progress: bool = False,
        what: str = "texts",
    ) -> np.ndarray:
        """Embed already formatted texts (prefix included)."""
        import torch
        from tqdm.auto import tqdm

        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        if not texts:
            return out
        ids, batches = self.plan_batches(texts, max_length, batch_size, show_progress)
        with torch.inference_mode():
            for batch in tqdm(batches, desc=f"encoding {what}", unit="batch", disable=not show_progress):
                out[batch] = self._embed([ids[i] for i in batch])
        return out

    def _embed(self, sequences: list[list[int]]) -> np.ndarray:
        import torch

        if self.int8 is not None and not self.int8.done:  # embed_batch without plan_batches first
            self.int8.calibrate(calibration_sample(sequences))
        input_ids, attention_mask = pad_right(sequences, self.special.pad_id)
        input_ids, attention_mask = input_ids.to(self.device), attention_mask.to(self.device)
        hidden = self.split_forward(input_ids, attention_mask)
        pooled = last_token_hidden(hidden, attention_mask)[:, : self.dimension].float()
        return torch.nn.functional.normalize(pooled, p=2, dim=-1).cpu().numpy()

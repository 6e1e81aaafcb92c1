"""Pyserini's ``QueryEncoder`` / ``DocumentEncoder`` interfaces over :class:`RepLLaMAEncoder`.

Pyserini calls these with its own keyword arguments (``encoder_dir``, ``tokenizer_name``,
``device``, ``prefix``, ``fp16``; sometimes ``pooling``/``l2_norm`` when a substring of the model
name matches another class). RepLLaMA's pooling and normalisation are fixed, so those are ignored.
Settings Pyserini has no flag for (base model, dtype, lengths) come from environment variables
``PYSERINI_LLAMA_BASE_MODEL``, ``PYSERINI_LLAMA_DTYPE``, ``PYSERINI_LLAMA_QUERY_MAX_LENGTH``.
"""

from __future__ import annotations

import logging
import os
from types import ModuleType

import numpy as np

from ..bootstrap import import_pyserini
from ..data.document import Document
from .registration import register_encoder_classes
from .repllama import RepLLaMAEncoder

_pyserini_encode = import_pyserini("pyserini.encode")
QueryEncoder = _pyserini_encode.QueryEncoder
DocumentEncoder = _pyserini_encode.DocumentEncoder

logger = logging.getLogger(__name__)


def _encoder_settings(fp16: bool, overrides: dict) -> dict:
    dtype = overrides.get("dtype") or os.environ.get("PYSERINI_LLAMA_DTYPE") or ("float16" if fp16 else "float32")
    settings = {
        "dtype": dtype,
        "base_model": overrides.get("base_model") or os.environ.get("PYSERINI_LLAMA_BASE_MODEL") or None,
    }
    query_max = overrides.get("query_max_length") or os.environ.get("PYSERINI_LLAMA_QUERY_MAX_LENGTH")
    if query_max:
        settings["query_max_length"] = int(query_max)
    for key in ("passage_max_length", "batch_size", "dimension"):
        if overrides.get(key):
            settings[key] = overrides[key]
    return settings


class RepLLaMAQueryEncoder(QueryEncoder):
    """``--encoder-class repllama`` for ``pyserini.search.faiss``."""

    def __init__(
        self,
        encoder_dir: str | None = None,
        tokenizer_name: str | None = None,
        device: str = "cpu",
        prefix: str | None = None,
        fp16: bool = False,
        encoder: RepLLaMAEncoder | None = None,
        **kwargs,
    ):
        super().__init__()
        if encoder is None:
            if not encoder_dir:
                raise ValueError("RepLLaMAQueryEncoder needs encoder_dir (a model, adapter or GGUF)")
            ignored = {k: v for k, v in kwargs.items() if k in ("pooling", "l2_norm", "multimodal", "max_length")}
            if ignored:
                logger.debug("RepLLaMA pools the last token and L2-normalises; ignoring %s", ignored)
            settings = _encoder_settings(fp16, kwargs)
            encoder = RepLLaMAEncoder(encoder_dir, tokenizer=tokenizer_name, device=str(device), **settings)
        self.encoder = encoder
        if prefix:
            self.encoder.query_prefix = prefix
        self.has_model = True

    def encode(self, query: str, **kwargs) -> np.ndarray:
        return self.encoder.encode_queries([query])[0]

    def encode_batch(self, queries: list[str]) -> np.ndarray:
        return self.encoder.encode_queries(list(queries))


class RepLLaMADocumentEncoder(DocumentEncoder):
    """``--encoder-class repllama`` for ``pyserini.encode``: ``passage: {title} {text}``."""

    def __init__(
        self,
        model_name: str | None = None,
        tokenizer_name: str | None = None,
        device: str = "cpu",
        encoder: RepLLaMAEncoder | None = None,
        fp16: bool = False,
        **kwargs,
    ):
        if encoder is None:
            if not model_name:
                raise ValueError("RepLLaMADocumentEncoder needs model_name (a model, adapter or GGUF)")
            settings = _encoder_settings(fp16, kwargs)
            encoder = RepLLaMAEncoder(model_name, tokenizer=tokenizer_name, device=str(device), **settings)
        self.encoder = encoder

    def encode(self, texts, titles=None, max_length: int | None = None, **kwargs) -> np.ndarray:
        titles = titles or [""] * len(texts)
        urls = kwargs.get("urls") or [None] * len(texts)
        passages = [Document("", t or "", h or "", u) for t, h, u in zip(texts, titles, urls, strict=True)]
        return self.encoder.encode_passages(passages, max_length=max_length)


def register_with_pyserini(encode_module: ModuleType | None = None) -> None:
    """Put ``repllama`` first in Pyserini's encoder maps (idempotent).

    Called when this module is imported, and by the start-up hook after ``pyserini.encode`` runs:
    importing this module may itself be what imported ``pyserini.encode``, and then the hook ran
    before these classes existed.
    """
    register_encoder_classes(encode_module or _pyserini_encode, RepLLaMAQueryEncoder, RepLLaMADocumentEncoder)


register_with_pyserini()

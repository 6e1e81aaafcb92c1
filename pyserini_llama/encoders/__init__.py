"""RepLLaMA: the LLaMA bi-encoder (:mod:`.repllama`) and its Pyserini encoder adapters."""

from .repllama import RepLLaMAEncoder

__all__ = ["RepLLaMAEncoder"]

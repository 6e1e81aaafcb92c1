"""RepLLaMA: the LLaMA bi-encoder (:mod:`.repllama`) and its Pyserini encoder adapters."""

from .repllama import Passage, RepLLaMAEncoder

__all__ = ["Passage", "RepLLaMAEncoder"]

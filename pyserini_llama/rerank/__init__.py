"""The rerank command (``python -m pyserini_llama.rerank``); the rerankers live in :mod:`pyserini_llama.rerankers`."""

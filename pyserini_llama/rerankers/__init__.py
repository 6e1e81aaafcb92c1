"""Rerankers: score (query, document) pairs with a cross-encoder and reorder a first-stage run."""

from .rankllama import RankLLaMAReranker

#: ``--reranker-class`` name -> reranker class (one today; the CLI's choices come from here).
RERANKER_CLASSES = {"rankllama": RankLLaMAReranker}

__all__ = ["RERANKER_CLASSES", "RankLLaMAReranker"]

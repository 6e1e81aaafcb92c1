"""pyserini-llama: RepLLaMA and RankLLaMA for Pyserini.

Importing this package is cheap (no torch, no Java). It installs an import hook that registers
RepLLaMA in Pyserini's encoder maps as soon as ``pyserini.encode`` is imported (or right away if
it already was). The public API is loaded lazily on first attribute access.
"""

from . import _startup

__version__ = "0.1.0"

_startup.install()

_LAZY = {
    "RepLLaMAEncoder": "pyserini_llama.encoders.repllama",
    "RankLLaMAReranker": "pyserini_llama.rerankers.rankllama",
    "MultiStageSearcher": "pyserini_llama.search.multistage",
    "BM25Stage": "pyserini_llama.search.multistage",
    "RepLLaMAStage": "pyserini_llama.search.multistage",
    "HybridStage": "pyserini_llama.search.multistage",
    "Document": "pyserini_llama.data.document",
    "load_backbone": "pyserini_llama.modeling.loading",
    "evaluate_run": "pyserini_llama.eval",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str):
    if name in _LAZY:
        import importlib  # here, not at the top: this module is imported at every interpreter start

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'pyserini_llama' has no attribute {name!r}")

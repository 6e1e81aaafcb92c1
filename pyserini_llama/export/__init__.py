"""``python -m pyserini_llama.export`` (``pyserini-llama-export``): a training output as a small shippable adapter.

The command is in ``__main__.py``; the library is :func:`pyserini_llama.training.export.export_adapter`.
"""

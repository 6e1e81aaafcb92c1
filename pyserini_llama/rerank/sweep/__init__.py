"""``python -m pyserini_llama.rerank.sweep``: choose ``rerank --interpolate W`` on a train/dev split, no rescoring.

The command is in ``__main__.py``; what it computes (interpolation, the grid, the best weight) lives in
:mod:`pyserini_llama.rerank.interpolation`.
"""

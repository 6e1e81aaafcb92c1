"""``python -m pyserini_llama.train``: fine-tune RepLLaMA or RankLLaMA (see :mod:`pyserini_llama.training`)."""

"""Model loading, input formatting and token handling shared by RepLLaMA and RankLLaMA."""

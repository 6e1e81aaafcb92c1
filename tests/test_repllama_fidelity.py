"""Batched RepLLaMA embeddings equal the castorini model card's one-example code."""

import numpy as np
import pytest
import torch

from pyserini_llama.data.document import Document
from pyserini_llama.encoders.repllama import RepLLaMAEncoder

QUERIES = [
    "what is a lobster roll",
    "panda",
    "",
    "why do cells mutate when proteins fold and genes are expressed in the quick brown fox " * 3,
]
PASSAGES = [
    Document("", title="Lobster roll", text="A lobster roll is a sandwich from New England."),
    Document("", title="", text="The giant panda is a bear species endemic to China."),
    Document("", title="Genes", text="Scientific claims about cells, genes, proteins and mutations. " * 12),
    Document("", title="Short", text="fox"),
    Document("", title="", text=""),
]


def model_card_model(adapter_dir):
    """``get_model`` from the castorini/repllama-v1-7b-lora-passage model card."""
    from peft import PeftConfig, PeftModel
    from transformers import AutoModel

    config = PeftConfig.from_pretrained(adapter_dir)
    base_model = AutoModel.from_pretrained(config.base_model_name_or_path)
    model = PeftModel.from_pretrained(base_model, adapter_dir)
    model = model.merge_and_unload()
    model.eval()
    return model


def model_card_embedding(model, tokenizer, text, max_length=None):
    """The card: ``tokenizer(f'{text}</s>')``, ``last_hidden_state[0][-1]``, L2 normalise.

    The card does not truncate; for texts over ``max_length`` we cut the card's own token ids
    the way the paper's training code does: keep BOS and the first tokens, end with EOS.
    """
    inputs = tokenizer(f"{text}</s>", return_tensors="pt")
    if max_length is not None and inputs["input_ids"].shape[1] > max_length:
        ids = inputs["input_ids"][0]
        ids = torch.cat([ids[: max_length - 1], ids[-1:]]).unsqueeze(0)
        inputs = {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
    with torch.no_grad():
        out = model(**inputs)
    emb = out.last_hidden_state[0][-1]
    return torch.nn.functional.normalize(emb, p=2, dim=0).numpy()


@pytest.fixture(scope="module")
def card(tiny_lora, tiny_llama):
    from transformers import AutoTokenizer

    return model_card_model(str(tiny_lora)), AutoTokenizer.from_pretrained(tiny_llama)


@pytest.mark.parametrize("max_length", [512, 24])
def test_batched_embeddings_match_model_card(card, tiny_lora, max_length):
    model, tokenizer = card
    encoder = RepLLaMAEncoder(str(tiny_lora), query_max_length=max_length, passage_max_length=max_length, batch_size=3)
    q = encoder.encode_queries(QUERIES)
    p = encoder.encode_passages(PASSAGES)
    q_ref = np.stack([model_card_embedding(model, tokenizer, f"query: {x}", max_length) for x in QUERIES])
    p_ref = np.stack(
        [model_card_embedding(model, tokenizer, f"passage: {x.title} {x.text}", max_length) for x in PASSAGES]
    )
    assert np.abs(q - q_ref).max() < 1e-5
    assert np.abs(p - p_ref).max() < 1e-5
    assert np.allclose(np.linalg.norm(p, axis=1), 1, atol=1e-5)


def test_lora_changes_the_embeddings(tiny_llama, tiny_lora):
    """The adapter is really applied: base and adapted embeddings differ."""
    base = RepLLaMAEncoder(str(tiny_llama)).encode_queries(QUERIES[:2])
    adapted = RepLLaMAEncoder(str(tiny_lora)).encode_queries(QUERIES[:2])
    assert np.abs(base - adapted).max() > 1e-3


def test_truncation_keeps_eos_and_respects_max_length(tiny_lora):
    encoder = RepLLaMAEncoder(str(tiny_lora))
    from pyserini_llama.modeling.tokens import encode_with_eos

    ids = encode_with_eos(encoder.tokenizer, ["word " * 100, "x"], 16, encoder.special)
    assert len(ids[0]) == 16 and ids[0][-1] == encoder.tokenizer.eos_token_id
    assert ids[0][0] == encoder.tokenizer.bos_token_id
    assert ids[1][-1] == encoder.tokenizer.eos_token_id
    assert encoder.special.pad_id != encoder.tokenizer.eos_token_id


def test_results_come_back_in_input_order(tiny_lora):
    encoder = RepLLaMAEncoder(str(tiny_lora), batch_size=2)
    together = encoder.encode_passages(PASSAGES)
    one_by_one = np.concatenate([encoder.encode_passages([p]) for p in PASSAGES])
    assert np.abs(together - one_by_one).max() < 1e-5


def test_matryoshka_dimension_is_a_renormalised_prefix(tiny_lora):
    full = RepLLaMAEncoder(str(tiny_lora)).encode_queries(QUERIES[:2])
    short = RepLLaMAEncoder(str(tiny_lora), dimension=16).encode_queries(QUERIES[:2])
    ref = full[:, :16] / np.linalg.norm(full[:, :16], axis=1, keepdims=True)
    assert short.shape == (2, 16) and np.abs(short - ref).max() < 1e-5

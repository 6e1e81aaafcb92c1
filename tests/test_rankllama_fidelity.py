"""Batched RankLLaMA scores equal the castorini model card's one-pair code."""

import numpy as np
import pytest
import torch

from pyserini_llama.rerankers.rankllama import RankLLaMAReranker

QUERIES = ["what is a lobster roll", "panda", "", "why do cells mutate when proteins fold"]
DOCUMENTS = [
    {"title": "Lobster roll", "text": "A lobster roll is a sandwich from New England."},
    {"title": "", "text": "The giant panda is a bear species endemic to China."},
    {"title": "Genes", "text": "Scientific claims about cells, genes, proteins and mutations. " * 12},
    {"title": "Short", "text": "fox"},
    {"title": "", "text": ""},
    {"title": "Web", "text": "quick brown fox", "url": "http://example.com/fox"},
]


def model_card_model(adapter_dir):
    """The castorini/rankllama-v1-7b-lora-passage model card's ``get_model``."""
    from peft import PeftConfig, PeftModel
    from transformers import AutoModelForSequenceClassification

    config = PeftConfig.from_pretrained(adapter_dir)
    base_model = AutoModelForSequenceClassification.from_pretrained(config.base_model_name_or_path, num_labels=1)
    model = PeftModel.from_pretrained(base_model, adapter_dir)
    model = model.merge_and_unload()
    model.eval()
    return model


def document_string(doc):
    head = f"{doc['url']} {doc['title']}" if doc.get("url") else doc["title"]
    return f"document: {head} {doc['text']}"


def model_card_score(model, tokenizer, query, doc, max_length=None, append_eos=False):
    """The card: ``tokenizer(f'query: {q}', f'document: {title} {passage}')``, ``logits[0][0]``.

    The card does not truncate; over ``max_length`` we let the tokenizer cut the document side
    (``only_second``), keeping one slot for EOS when it is appended, as Tevatron v2 does.
    """
    kwargs = {} if max_length is None else {"truncation": "only_second", "max_length": max_length - append_eos}
    inputs = tokenizer(f"query: {query}", document_string(doc), return_tensors="pt", **kwargs)
    if append_eos:
        ids = torch.cat([inputs["input_ids"], torch.tensor([[tokenizer.eos_token_id]])], dim=1)
        inputs = {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
    with torch.no_grad():
        return model(**inputs).logits[0][0].item()


@pytest.fixture(scope="module")
def card(tiny_rank_lora, tiny_llama):
    from transformers import AutoTokenizer

    return model_card_model(str(tiny_rank_lora)), AutoTokenizer.from_pretrained(tiny_llama)


@pytest.fixture(scope="module")
def reranker(tiny_rank_lora):
    return RankLLaMAReranker(str(tiny_rank_lora), batch_size=4)


@pytest.mark.parametrize("batch_size", [1, 3, 16])
def test_batched_scores_match_model_card(card, reranker, batch_size):
    model, tokenizer = card
    pairs = [(q, d) for q in QUERIES for d in DOCUMENTS]
    scores = reranker.score_pairs(pairs, batch_size=batch_size)
    reference = np.array([model_card_score(model, tokenizer, q, d) for q, d in pairs])
    assert np.abs(scores - reference).max() < 1e-5
    assert np.ptp(reference) > 1e-2  # the random head really separates pairs


def test_score_is_in_input_order(card, reranker):
    model, tokenizer = card
    scores = reranker.score(QUERIES[0], DOCUMENTS)
    reference = [model_card_score(model, tokenizer, QUERIES[0], d) for d in DOCUMENTS]
    assert np.abs(scores - reference).max() < 1e-5


def test_truncation_cuts_only_the_document(card, tiny_rank_lora):
    model, tokenizer = card
    reranker = RankLLaMAReranker(str(tiny_rank_lora), max_length=40, batch_size=3)
    scores = reranker.score(QUERIES[3], DOCUMENTS)
    reference = [model_card_score(model, tokenizer, QUERIES[3], d, max_length=40) for d in DOCUMENTS]
    assert np.abs(scores - reference).max() < 1e-5
    ids = reranker.encode_pairs(["query: " + QUERIES[3]], [document_string(DOCUMENTS[2])])[0]
    assert len(ids) == 40
    query_ids = tokenizer("query: " + QUERIES[3], add_special_tokens=False)["input_ids"]
    assert ids[: len(query_ids) + 2] == [tokenizer.bos_token_id, *query_ids, tokenizer.bos_token_id]


def test_long_query_keeps_its_first_query_max_length_tokens(tiny_rank_lora):
    reranker = RankLLaMAReranker(str(tiny_rank_lora), query_max_length=8, max_length=30)
    tok = reranker.tokenizer
    query = "query: " + "cells genes proteins mutations " * 10
    ids = reranker.encode_pairs([query], ["document: the quick brown fox " * 10])[0]
    query_ids = tok(query, add_special_tokens=False)["input_ids"]
    assert ids[:10] == [tok.bos_token_id, *query_ids[:8], tok.bos_token_id]
    assert len(ids) == 30


def test_pad_id_is_not_eos_and_matches_config(reranker):
    assert reranker.pad_id != reranker.tokenizer.eos_token_id
    assert reranker.model.config.pad_token_id == reranker.pad_id


def test_last_token_equal_to_pad_id_is_read_correctly(card, reranker):
    """A document ending in an unknown character ends in unk = the pad id; the head must still read it."""
    model, tokenizer = card
    doc = {"title": "", "text": "giant panda 中"}
    assert tokenizer(document_string(doc))["input_ids"][-1] == reranker.pad_id
    scores = reranker.score(QUERIES[0], [doc, DOCUMENTS[2], DOCUMENTS[3]], batch_size=3)
    assert abs(scores[0] - model_card_score(model, tokenizer, QUERIES[0], doc)) < 1e-5


@pytest.mark.parametrize("max_length", [196, 40])
def test_append_eos(card, tiny_rank_lora, max_length):
    model, tokenizer = card
    reranker = RankLLaMAReranker(str(tiny_rank_lora), append_eos=True, max_length=max_length, batch_size=4)
    pairs = [(q, d) for q in QUERIES[:2] for d in DOCUMENTS]
    scores = reranker.score_pairs(pairs)
    reference = [model_card_score(model, tokenizer, q, d, max_length, append_eos=True) for q, d in pairs]
    assert np.abs(scores - reference).max() < 1e-5
    ids = reranker.encode_pairs(["query: panda"], ["document: " + "cells genes " * 200])[0]
    assert ids[-1] == tokenizer.eos_token_id and len(ids) == max_length
    without = RankLLaMAReranker.from_model(reranker.model, tokenizer, max_length=max_length).score_pairs(pairs)
    assert np.abs(scores - without).max() > 1e-4  # the EOS really changes the input


def test_lora_and_trained_head_are_applied(tiny_llama, reranker):
    """The adapter's LoRA and its trained score head are used, not a fresh random head."""
    base = RankLLaMAReranker(str(tiny_llama))
    assert np.abs(base.score("panda", DOCUMENTS) - reranker.score("panda", DOCUMENTS)).max() > 1e-3
    assert not torch.equal(base.model.score.weight, reranker.model.score.weight)


def test_max_length_must_leave_room_for_the_document(tiny_rank_lora):
    with pytest.raises(ValueError, match="no room"):
        RankLLaMAReranker(str(tiny_rank_lora), query_max_length=32, max_length=34)

"""What the encoder and reranker benchmarks share: the model cards' one-at-a-time loops (the reference
every speed-up is measured against), tiny random models, and the benchmark texts.

Imported by ``bench_encoder.py``, ``bench_rerank.py`` and ``bench_cpu_inference.py`` (run as scripts, so
this directory is on ``sys.path``); the tiny models come from :mod:`pyserini_llama.testing`, as the tests' do.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from pyserini_llama.testing import build_lora_adapter, build_tiny_llama

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("PYSERINI_LLAMA_SHARED_DATA", REPO.parent / "shared" / "data"))
SCIFACT = SHARED_DATA / "beir" / "scifact"


def tiny_encoder(directory: Path) -> str:
    """A random tiny LLaMA with a random LoRA adapter, big enough for batching to matter."""
    base = build_tiny_llama(directory / "base", hidden_size=256, intermediate_size=512, num_hidden_layers=4)
    return str(build_lora_adapter(base, directory / "repllama", task="embedding"))


def tiny_reranker(directory: Path) -> str:
    """As :func:`tiny_encoder`, with a random SEQ_CLS adapter (LoRA + score head)."""
    base = build_tiny_llama(directory / "base", hidden_size=256, intermediate_size=512, num_hidden_layers=4)
    return str(build_lora_adapter(base, directory / "rankllama", task="classification"))


def model_card_embeddings(encoder, passages, max_length: int) -> np.ndarray:
    """The card's loop: one text at a time, ``tokenizer(text)`` + EOS, ``last_hidden_state[0][-1]``, normalise.

    (The card writes ``</s>`` into the text; for tokenizers whose EOS is not ``</s>`` the id is appended.)
    Texts are cut to the same token budget as the batched encoder so both see identical tokens.
    """
    import torch

    model, tokenizer = encoder.model, encoder.tokenizer
    out = []
    with torch.inference_mode():
        for p in passages:
            ids = tokenizer(f"passage: {p.title} {p.text}")["input_ids"]
            ids = torch.tensor([[*ids[: max_length - 1], tokenizer.eos_token_id]])
            hidden = model(input_ids=ids).last_hidden_state[0][-1]
            out.append(torch.nn.functional.normalize(hidden, p=2, dim=0).numpy())
    return np.stack(out)


def model_card_scores(reranker, pairs, max_length: int) -> np.ndarray:
    """The model card, pair by pair: ``tokenizer(f'query: {q}', f'document: {title} {text}')``, ``logits[0][0]``.

    The document side is cut to ``max_length`` (``only_second``) so both paths see the same tokens;
    the card's model has no pad id, so the head reads the last token of each unpadded pair.
    """
    import torch

    model, tokenizer = reranker.model, reranker.tokenizer
    pad_id, model.config.pad_token_id = model.config.pad_token_id, None
    scores = []
    try:
        with torch.inference_mode():
            for query, doc in pairs:
                inputs = tokenizer(
                    f"query: {query}",
                    f"document: {doc.title} {doc.text}",
                    return_tensors="pt",
                    truncation="only_second",
                    max_length=max_length,
                ).to(reranker.device)
                scores.append(model(**inputs).logits[0][0].float().item())
    finally:
        model.config.pad_token_id = pad_id
    return np.array(scores, dtype=np.float32)


def dl19_pairs(n: int, per_query: int) -> list[tuple[str, object]]:
    """``n`` (query, document) pairs: the BM25 top ``per_query`` hits of the first DL19 queries."""
    from pyserini_llama.data.corpus import read_corpus
    from pyserini_llama.data.queries import read_queries
    from pyserini_llama.data.runs import read_run

    dl19 = SHARED_DATA / "msmarco-passage" / "dl19"
    queries = read_queries(dl19 / "queries.jsonl")
    corpus = read_corpus(dl19 / "corpus.jsonl")
    pairs = []
    for qid, hits in read_run(dl19 / "run.bm25-top100.trec").items():
        pairs += [(queries[qid], corpus[docid]) for docid, _ in hits[:per_query]]
        if len(pairs) >= n:
            return pairs[:n]
    return pairs


def long_scifact_documents(tokenizer, n: int, min_tokens: int, corpus: Path = SCIFACT / "corpus.jsonl") -> list:
    """The first ``n`` SciFact documents whose ``passage: title text`` has at least ``min_tokens`` tokens
    (so a benchmark at that length runs full-length inputs); fewer if the corpus has fewer."""
    from pyserini_llama.data.corpus import iter_corpus

    found = []
    for doc in iter_corpus(corpus):
        if len(tokenizer(f"passage: {doc.title} {doc.text}")["input_ids"]) >= min_tokens:
            found.append(doc)
            if len(found) == n:
                break
    return found

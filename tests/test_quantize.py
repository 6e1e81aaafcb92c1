"""Int8 inference (``precision/int8.py``) on tiny random LLaMAs: exact smoothing, closeness to fp32,
rankings, determinism, and ``--dtype int8`` through the encode and rerank commands."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from conftest import TINY_DOCS

from pyserini_llama import RankLLaMAReranker, RepLLaMAEncoder
from pyserini_llama.errors import ModelLoadError
from pyserini_llama.modeling.loading import load_backbone
from pyserini_llama.modeling.tokens import SpecialTokens, encode_with_eos, pad_right
from pyserini_llama.modeling.trunk import decoder_of
from pyserini_llama.precision.int8 import (
    Int8Linear,
    Int8Quantizer,
    activation_maxima,
    calibration_sample,
    smooth_layer,
)
from pyserini_llama.testing import build_tiny_llama

PASSAGES = [{"title": title, "text": text} for _, title, text in TINY_DOCS]
#: Short texts of distinct words: the tiny model's embeddings of them are far apart.
SYNTHETIC = [
    "lobster roll sandwich New England",
    "giant panda bear China forests",
    "cells genes proteins mutations",
    "quick brown fox lazy dog",
    "0123456789 times because it can",
    "claims verified against abstracts",
    "mountain forests home to bears",
    "scientific sandwich fox proteins",
]


@pytest.fixture(scope="module")
def tiny_gqa(tmp_path_factory):
    """A 4-layer LLaMA with grouped-query attention (2 query heads per key/value head) and wider layers."""
    return build_tiny_llama(
        tmp_path_factory.mktemp("tiny-gqa"), hidden_size=128, intermediate_size=256, num_hidden_layers=4
    )


def _hidden(model, tokenizer, texts):
    special = SpecialTokens.of(tokenizer)
    ids, mask = pad_right(encode_with_eos(tokenizer, texts, 64, special), special.pad_id)
    with torch.inference_mode():
        return decoder_of(model)(input_ids=ids, attention_mask=mask).last_hidden_state


def test_calibration_sample_is_spread_and_deterministic():
    assert calibration_sample(list(range(5)), 16) == list(range(5))
    assert calibration_sample(list(range(100)), 4) == [0, 25, 50, 75]


@pytest.mark.parametrize("smooth_outputs", [False, True])
def test_power_of_two_smoothing_leaves_the_fp32_model_bit_identical(tiny_gqa, smooth_outputs):
    model, tokenizer = load_backbone(str(tiny_gqa))
    texts = [p["text"] for p in PASSAGES]
    before = _hidden(model, tokenizer, texts)
    special = SpecialTokens.of(tokenizer)
    decoder = decoder_of(model)
    norms = decoder.layers[0].input_layernorm.weight.clone()
    maxima = activation_maxima(decoder, encode_with_eos(tokenizer, texts, 64, special))
    for layer, layer_maxima in zip(decoder.layers, maxima, strict=True):
        smooth_layer(layer, layer_maxima, 0.5, smooth_outputs)
    assert not torch.equal(norms, decoder.layers[0].input_layernorm.weight)  # something was folded
    assert torch.equal(_hidden(model, tokenizer, texts), before)


def test_int8_linear_is_close_and_per_token():
    torch.manual_seed(0)
    linear = torch.nn.Linear(64, 32)
    x = torch.randn(3, 5, 64)
    x[0, 0] *= 1000  # one token with huge activations must not wreck the others' precision
    q = Int8Linear(linear)
    with torch.inference_mode():
        exact, approx = linear(x), q(x)
    rel = (approx - exact).norm(dim=-1) / exact.norm(dim=-1)
    assert rel.max() < 0.03
    assert approx.shape == exact.shape


def test_int8_encoder_is_close_to_fp32_and_keeps_clear_rankings(tiny_lora):
    fp32 = RepLLaMAEncoder(str(tiny_lora))
    int8 = RepLLaMAEncoder(str(tiny_lora), dtype="int8")
    assert int8.precision == "int8" and int8.int8 is not None and not int8.int8.done
    a, b = fp32.encode_passages(PASSAGES), int8.encode_passages(PASSAGES)
    assert int8.int8.done
    assert (a * b).sum(axis=1).min() > 0.99
    assert isinstance(decoder_of(int8.model).layers[0].mlp.down_proj, Int8Linear)
    assert isinstance(int8.model.embed_tokens, torch.nn.Embedding)  # embeddings stay fp32

    # Retrieval where every query is one of the passages: fp32 and int8 agree wherever fp32's margin is clear.
    p32, p8 = fp32.encode_passages(SYNTHETIC), int8.encode_passages(SYNTHETIC)
    q32, q8 = fp32.encode_queries(SYNTHETIC), int8.encode_queries(SYNTHETIC)
    s32, s8 = q32 @ p32.T, q8 @ p8.T
    tolerance = np.abs(s32 - s8).max()
    assert tolerance < 0.1
    gaps32 = s32[:, :, None] - s32[:, None, :]  # per query: score of passage i minus passage j
    gaps8 = s8[:, :, None] - s8[:, None, :]
    clear = np.abs(gaps32) > 2 * tolerance
    assert clear.mean() > 0.5  # most pairs of passages are clearly ordered by fp32 ...
    assert (np.sign(gaps32[clear]) == np.sign(gaps8[clear])).all()  # ... and int8 orders them the same


def test_int8_is_deterministic_and_calibrates_once(tiny_lora):
    runs = [RepLLaMAEncoder(str(tiny_lora), dtype="int8") for _ in range(2)]
    vectors = [encoder.encode_passages(PASSAGES) for encoder in runs]
    assert vectors[0].tobytes() == vectors[1].tobytes()
    assert runs[0].fingerprint() == runs[1].fingerprint()
    calibration = runs[0].int8.calibration
    runs[0].calibrate(["other texts entirely"], 32)  # already quantised: a no-op
    assert runs[0].int8.calibration == calibration
    assert runs[0].encode_passages(PASSAGES).tobytes() == vectors[0].tobytes()


def test_int8_fingerprint_names_the_calibration(tiny_lora):
    a, b = RepLLaMAEncoder(str(tiny_lora), dtype="int8"), RepLLaMAEncoder(str(tiny_lora), dtype="int8")
    a.calibrate(a.format_passages(PASSAGES), 64)
    b.calibrate(b.format_passages(PASSAGES[:2]), 64)
    assert a.fingerprint()["int8"]["calibration"] != b.fingerprint()["int8"]["calibration"]
    assert "int8" not in RepLLaMAEncoder(str(tiny_lora)).fingerprint()  # fp32 fingerprints unchanged


def test_int8_refuses_gpu_and_trunk_cache(tiny_lora, tmp_path):
    with pytest.raises(ModelLoadError, match="CPU only"):
        RepLLaMAEncoder(str(tiny_lora), dtype="int8", device="cuda")
    with pytest.raises(ValueError, match="trunk cache"):
        RepLLaMAEncoder(str(tiny_lora), dtype="int8", trunk_cache=tmp_path, trunk_split=1)


def test_quantizer_refuses_non_fp32(tiny_llama):
    model, _ = load_backbone(str(tiny_llama), dtype="bfloat16")
    with pytest.raises(ValueError, match="float32"):
        Int8Quantizer(model)


def test_int8_reranker_keeps_the_score_head_fp32_and_the_order(tiny_rank_lora):
    fp32 = RankLLaMAReranker(str(tiny_rank_lora), max_length=64)
    int8 = RankLLaMAReranker(str(tiny_rank_lora), max_length=64, dtype="int8")
    query = "what is a lobster roll"
    a, b = fp32.score(query, PASSAGES), int8.score(query, PASSAGES)
    assert type(int8.model.score) is torch.nn.Linear and int8.model.score.weight.dtype == torch.float32
    assert np.corrcoef(a, b)[0, 1] > 0.99
    assert np.abs(a - b).max() < 0.05 * (a.max() - a.min())


def test_int8_reranker_calibrates_on_the_whole_run(tiny_rank_lora):
    """rerank_run quantises from a sample of all its pairs (not of its first chunk or query)."""
    run = {"q1": [(d, 1.0) for d, _, _ in TINY_DOCS], "q2": [(d, 1.0) for d, _, _ in reversed(TINY_DOCS)]}
    documents = {d: {"title": t, "text": x} for d, t, x in TINY_DOCS}
    queries = {"q1": "lobster roll", "q2": "giant panda"}
    implicit = RankLLaMAReranker(str(tiny_rank_lora), max_length=64, dtype="int8")
    explicit = RankLLaMAReranker(str(tiny_rank_lora), max_length=64, dtype="int8")
    explicit.calibrate([(queries[q], documents[d]) for q, hits in run.items() for d, _ in hits])
    results = [r.rerank_run(queries, run, documents, depth=6) for r in (implicit, explicit)]
    assert implicit.int8.calibration == explicit.int8.calibration
    assert results[0] == results[1]


def test_encode_cli_with_int8(tiny_lora, tiny_beir, tmp_path):
    from pyserini_llama.encode.__main__ import main

    out = tmp_path / "jsonl"
    argv = ["input", "--corpus", str(tiny_beir / "corpus.jsonl"), "output", "--embeddings", str(out)]
    argv += ["encoder", "--encoder", str(tiny_lora), "--max-length", "64", "--dtype", "int8"]
    assert main(argv) == 0
    rows = [json.loads(line) for line in (out / "embeddings.jsonl").read_text().splitlines()]
    vectors = np.array([r["vector"] for r in rows], dtype=np.float32)
    reference = RepLLaMAEncoder(str(tiny_lora), passage_max_length=64).encode_passages(PASSAGES)
    assert [r["id"] for r in rows] == [d for d, _, _ in TINY_DOCS]
    assert (vectors * reference).sum(axis=1).min() > 0.99

    again = tmp_path / "again"
    assert main([*argv[:4], "--embeddings", str(again), *argv[6:]]) == 0
    assert (again / "embeddings.jsonl").read_bytes() == (out / "embeddings.jsonl").read_bytes()


def test_rerank_cli_accepts_int8_and_rejects_unknown(tiny_rank_lora, tiny_beir, tmp_path):
    from pyserini_llama.rerank.__main__ import main

    run = tmp_path / "run.trec"
    run.write_text("".join(f"1 Q0 {d} {i + 1} {10 - i} bm25\n" for i, (d, _, _) in enumerate(TINY_DOCS)))
    argv = ["--topics", str(tiny_beir / "topics.tsv"), "--run", str(run), "--corpus", str(tiny_beir)]
    argv += ["--reranker", str(tiny_rank_lora), "--max-length", "64", "--output", str(tmp_path / "out.trec")]
    assert main([*argv, "--dtype", "int8"]) == 0
    assert len((tmp_path / "out.trec").read_text().splitlines()) == len(TINY_DOCS)
    with pytest.raises(SystemExit):
        main([*argv, "--dtype", "int4"])


def test_int8_resumable_encoding_reuses_chunks_and_matches(tiny_lora, tmp_path):
    """A rerun with a fresh int8 encoder (a new process) recognises the chunks and writes the same bytes."""
    from pyserini_llama.encoders.resumable import encode_resumable

    texts = RepLLaMAEncoder(str(tiny_lora)).format_passages(PASSAGES + SYNTHETIC)
    work = tmp_path / "work"
    first = encode_resumable(RepLLaMAEncoder(str(tiny_lora), dtype="int8"), texts, 64, work, chunk_size=4)
    chunks = sorted(work.glob("chunk-*.npy"))
    assert len(chunks) == 4
    chunks[-1].unlink()  # as if killed before the last chunk
    stamps = {c: c.stat().st_mtime_ns for c in chunks[:-1]}
    again = encode_resumable(RepLLaMAEncoder(str(tiny_lora), dtype="int8"), texts, 64, work, chunk_size=4)
    assert again.tobytes() == first.tobytes()
    assert all(c.stat().st_mtime_ns == stamp for c, stamp in stamps.items())  # reused, not rewritten


def _many_documents(n: int) -> list[tuple[str, str, str]]:
    return [(f"d{i}", f"title {i}", f"{SYNTHETIC[i % len(SYNTHETIC)]} number {i}") for i in range(n)]


def test_encode_cli_int8_formats_only_the_calibration_sample(tiny_lora, tmp_path, monkeypatch):
    """Calibrating on the whole corpus means a sample of 16 of its texts: only those 16 are formatted for it
    (besides the documents being encoded), not the whole corpus."""
    from pyserini_llama.encode.__main__ import main
    from pyserini_llama.precision.int8 import CALIBRATION_TEXTS

    docs = _many_documents(3 * CALIBRATION_TEXTS)
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text("".join(json.dumps({"_id": d, "title": t, "text": x}) + "\n" for d, t, x in docs))
    formatted = []
    real = RepLLaMAEncoder.format_passages
    monkeypatch.setattr(
        RepLLaMAEncoder, "format_passages", lambda self, items: formatted.append(len(items)) or real(self, items)
    )
    argv = ["input", "--corpus", str(corpus), "output", "--embeddings", str(tmp_path / "out")]
    assert main([*argv, "encoder", "--encoder", str(tiny_lora), "--max-length", "32", "--dtype", "int8"]) == 0
    assert sum(formatted) <= len(docs) + CALIBRATION_TEXTS, formatted


def test_calibrating_on_a_corpus_sample_equals_calibrating_on_all_its_texts(tiny_lora):
    """The sample is drawn from the documents before formatting: the same texts, so the same int8 model."""
    from pyserini_llama.data.document import Document
    from pyserini_llama.encode import calibrate_on_corpus, passage_texts

    docs = [Document(d, x, t) for d, t, x in _many_documents(40)]
    sampled = RepLLaMAEncoder(str(tiny_lora), dtype="int8")
    calibrate_on_corpus(sampled, docs, max_length=32)
    everything = RepLLaMAEncoder(str(tiny_lora), dtype="int8")
    everything.calibrate(passage_texts(everything, docs), 32)
    assert sampled.int8.calibration == everything.int8.calibration

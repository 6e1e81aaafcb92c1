"""FirstP / MaxP segment baselines: RankLLaMA (rerank) and RepLLaMA (encode + search.faiss)."""

import json
import random

import numpy as np
import pytest

from pyserini_llama.data.runs import read_run
from pyserini_llama.encoders.repllama import RepLLaMAEncoder
from pyserini_llama.errors import PyseriniLlamaError
from pyserini_llama.modeling.segments import Segmenter, collapse_hits, document_id, segment_id
from pyserini_llama.rerankers.rankllama import RankLLaMAReranker
from pyserini_llama.testing import TRAINING_TEXT

WORDS = " ".join(TRAINING_TEXT[:4]).split()


def long_text(words: int, seed: int) -> str:
    rng = random.Random(seed)
    return " ".join(rng.choice(WORDS) for _ in range(words))


# 300, 230 and 90 words: with --segment 100,50 that is 5, 4 and 1 segment(s).
DOCS = {
    "d1": {"title": "Lobster roll", "text": long_text(300, 1), "url": "http://example.com/lobster"},
    "d2": {"title": "", "text": long_text(230, 2)},
    "d3": {"title": "Short", "text": "  The giant panda   is a bear.  "},
    "d4": {"title": "Genes", "text": long_text(90, 3)},
}
QUERIES = {"q1": "what is a lobster roll", "q2": "genes and proteins"}
MAXP = Segmenter(100, 50, "maxp")
FIRSTP = Segmenter(100, 100, "firstp")


def windows_of(doc, segmenter):
    return [{**doc, "text": w} for w in segmenter.windows(doc["text"])]


def first_window(doc, words=100):
    """FirstP written out: the document with its body cut to the first ``words`` words (short ones as they are)."""
    body = doc["text"].split()
    return {**doc, "text": " ".join(body[:words]) if len(body) > words else doc["text"]}


# ----------------------------------------------------------------------------- splitting
def test_windows_cover_the_body_with_stride_and_keep_short_bodies_unchanged():
    words = [f"w{i}" for i in range(230)]
    windows = MAXP.windows(" ".join(words))
    assert [w.split()[0] for w in windows] == ["w0", "w50", "w100", "w150"]
    assert windows[-1].split()[-1] == "w229" and all(len(w.split()) <= 100 for w in windows)
    assert FIRSTP.windows(" ".join(words)) == [" ".join(words[:100])]
    assert Segmenter(100, 50).windows(DOCS["d3"]["text"]) == [DOCS["d3"]["text"]]  # byte for byte
    assert Segmenter.parse("3").windows("") == [""] and Segmenter.parse("3").stride == 3


def test_segment_ids_round_trip_and_collapse_keeps_each_document_once_at_its_best():
    assert document_id(segment_id("doc#seg", 12)) == "doc#seg" and document_id("plain") == "plain"
    hits = [("a#seg3", 0.9), ("b#seg0", 0.8), ("a#seg0", 0.7), ("c#seg1", 0.5), ("b#seg2", 0.4)]
    assert collapse_hits(hits) == [("a", 0.9), ("b", 0.8), ("c", 0.5)]


@pytest.mark.parametrize(
    "spec, message", [("10,20", "larger than WINDOW"), ("0", "at least 1"), ("a,b", "WINDOW or WINDOW,STRIDE")]
)
def test_bad_segment_specs_are_refused(spec, message):
    with pytest.raises(ValueError, match=message):
        Segmenter.parse(spec)


def test_cli_flags_are_checked_before_any_work(tmp_path):
    from pyserini_llama.encode.__main__ import main as encode_main
    from pyserini_llama.rerank.__main__ import main as rerank_main

    rerank = ["--topics", "t", "--run", "r", "--corpus", "c", "--reranker", "m", "--output", "o"]
    encode = ["input", "--corpus", "c", "output", "--embeddings", str(tmp_path / "e"), "encoder", "--encoder", "m"]
    for main, argv in ((rerank_main, rerank), (encode_main, encode)):
        with pytest.raises(PyseriniLlamaError, match="--aggregate needs --segment"):
            main([*argv, "--aggregate", "firstp"])
        with pytest.raises(PyseriniLlamaError, match="STRIDE 20 is larger than WINDOW 10"):
            main([*argv, "--segment", "10,20"])
    with pytest.raises(SystemExit):
        rerank_main([*rerank, "--segment", "10", "--aggregate", "best"])


# ----------------------------------------------------------------------------- RankLLaMA
@pytest.fixture(scope="module")
def plain_reranker(tiny_rank_lora):
    return RankLLaMAReranker(str(tiny_rank_lora), max_length=512, batch_size=3)


def test_rankllama_maxp_is_the_best_segment_and_firstp_the_first_window(plain_reranker):
    maxp = RankLLaMAReranker.from_model(plain_reranker.model, plain_reranker.tokenizer, max_length=512, segments=MAXP)
    firstp = RankLLaMAReranker.from_model(
        plain_reranker.model, plain_reranker.tokenizer, max_length=512, segments=FIRSTP
    )
    docs = list(DOCS.values())
    got_max = maxp.score(QUERIES["q1"], docs)
    got_first = firstp.score(QUERIES["q1"], docs)
    for i, doc in enumerate(docs):
        per_segment = plain_reranker.score(QUERIES["q1"], windows_of(doc, MAXP))
        assert len(per_segment) == {0: 5, 1: 4, 2: 1, 3: 1}[i]
        assert abs(got_max[i] - per_segment.max()) < 1e-5
        assert abs(got_first[i] - plain_reranker.score(QUERIES["q1"], [first_window(doc)])[0]) < 1e-5
    assert np.abs(got_max[:2] - got_first[:2]).max() > 1e-4  # segmenting really changed long documents
    assert np.abs(got_max[2:] - plain_reranker.score(QUERIES["q1"], docs[2:])).max() < 1e-5  # short: as whole


@pytest.mark.parametrize("aggregate", ["maxp", "firstp"])
def test_rerank_cli_writes_each_document_once_with_its_aggregated_score(
    tmp_path, plain_reranker, tiny_rank_lora, aggregate
):
    from pyserini_llama.rerank.__main__ import main

    with open(tmp_path / "corpus.jsonl", "w") as f:
        for docid, d in DOCS.items():
            f.write(json.dumps({"_id": docid, **d}) + "\n")
    (tmp_path / "topics.tsv").write_text("".join(f"{q}\t{t}\n" for q, t in QUERIES.items()))
    (tmp_path / "run.trec").write_text(
        "".join(f"{q} Q0 {d} {r + 1} {10 - r} bm25\n" for q in QUERIES for r, d in enumerate(DOCS))
    )
    out = tmp_path / "out.trec"
    segment = "100,50" if aggregate == "maxp" else "100"
    argv = ["--topics", str(tmp_path / "topics.tsv"), "--run", str(tmp_path / "run.trec"), "--corpus", str(tmp_path)]
    argv += ["--reranker", str(tiny_rank_lora), "--max-length", "512", "--output", str(out)]
    assert main([*argv, "--segment", segment, "--aggregate", aggregate, "--max-batch-tokens", "700"]) == 0
    run = read_run(out)
    for qid, hits in run.items():
        assert sorted(d for d, _ in hits) == sorted(DOCS)  # every document, each once, no segment ids
        for docid, score in hits:
            if aggregate == "maxp":
                expected = plain_reranker.score(QUERIES[qid], windows_of(DOCS[docid], MAXP)).max()
            else:
                expected = plain_reranker.score(QUERIES[qid], [first_window(DOCS[docid])])[0]
            assert abs(score - expected) < 1e-4  # TREC files keep a limited number of digits


# ----------------------------------------------------------------------------- RepLLaMA
@pytest.fixture(scope="module")
def corpus_and_topics(tmp_path_factory):
    root = tmp_path_factory.mktemp("segment-corpus")
    with open(root / "corpus.jsonl", "w") as f:
        for docid, d in DOCS.items():
            f.write(json.dumps({"_id": docid, **d}) + "\n")
    (root / "topics.tsv").write_text("".join(f"{q}\t{t}\n" for q, t in QUERIES.items()))
    return root


def encode_and_search(root, tiny_lora, segment, aggregate, hits):
    from pyserini_llama.encode.__main__ import main as encode_main
    from pyserini_llama.search.faiss.__main__ import main as search_main

    index = root / f"index.{aggregate}"
    encode_main(
        ["input", "--corpus", str(root / "corpus.jsonl"), "output", "--embeddings", str(index), "--to-faiss"]
        + ["encoder", "--encoder", str(tiny_lora), "--fields", "url", "title", "text", "--batch-size", "3"]
        + ["--segment", segment, "--aggregate", aggregate]
    )
    out = root / f"run.{aggregate}.trec"
    search_main(
        ["--index", str(index), "--topics", str(root / "topics.tsv"), "--encoder", str(tiny_lora)]
        + ["--output", str(out), "--hits", str(hits)]
    )
    return index, read_run(out)


def test_repllama_maxp_index_holds_segments_and_search_ranks_each_document_once(corpus_and_topics, tiny_lora):
    index, run = encode_and_search(corpus_and_topics, tiny_lora, "100,50", "maxp", hits=3)
    ids = (index / "docid").read_text().split()
    assert len(ids) == 5 + 4 + 1 + 1 and ids[:2] == ["d1#seg0", "d1#seg1"] and "d3#seg0" in ids
    manifest = json.loads((index / "segments.json").read_text())
    assert manifest["aggregate"] == "maxp" and manifest["max_segments"] == 5 and manifest["unit"] == "words"

    encoder = RepLLaMAEncoder(str(tiny_lora))
    best = {}
    for qid, text in QUERIES.items():
        q = encoder.encode_queries([text])[0]
        best[qid] = {d: float((encoder.encode_passages(windows_of(doc, MAXP)) @ q).max()) for d, doc in DOCS.items()}
    for qid, hits in run.items():
        assert len(hits) == 3 and len({d for d, _ in hits}) == 3  # --hits N gives N distinct documents
        expected = sorted(best[qid].items(), key=lambda h: -h[1])[:3]
        assert [d for d, _ in hits] == [d for d, _ in expected]
        assert np.allclose([s for _, s in hits], [s for _, s in expected], atol=1e-4)


def test_repllama_firstp_index_holds_first_windows_under_document_ids(corpus_and_topics, tiny_lora):
    index, run = encode_and_search(corpus_and_topics, tiny_lora, "100", "firstp", hits=10)
    assert (index / "docid").read_text().split() == list(DOCS)
    encoder = RepLLaMAEncoder(str(tiny_lora))
    for qid, hits in run.items():
        assert sorted(d for d, _ in hits) == sorted(DOCS)
        q = encoder.encode_queries([QUERIES[qid]])[0]
        for docid, score in hits:
            assert abs(score - float(encoder.encode_passages([first_window(DOCS[docid])])[0] @ q)) < 1e-4


def test_search_sets_no_attributes_on_pyserinis_searcher(corpus_and_topics, tiny_lora, monkeypatch):
    """What we know of an index (its segments, an explicit --ef-search) travels beside Pyserini's
    FaissSearcher, never as attributes set on it; the run is the same as before."""
    import pyserini_llama.search.faiss as dense

    searchers = []
    real = dense._batch_search_keeping_torch_threads

    def spy(searcher, *args, **kwargs):
        searchers.append(searcher)
        return real(searcher, *args, **kwargs)

    monkeypatch.setattr(dense, "_batch_search_keeping_torch_threads", spy)
    index, run = encode_and_search(corpus_and_topics, tiny_lora, "100,50", "maxp", hits=3)
    assert searchers and all(type(s).__name__ == "FaissSearcher" for s in searchers)
    assert not [a for s in searchers for a in vars(s) if a.startswith("pyserini_llama")]
    opened = dense.open_faiss_searcher(str(index), RepLLaMAEncoder(str(tiny_lora)))
    assert opened.segments["aggregate"] == "maxp" and not opened.explicit_ef_search
    assert not [a for a in vars(opened.searcher) if a.startswith("pyserini_llama")]
    assert all(len({d for d, _ in hits}) == 3 for hits in run.values())

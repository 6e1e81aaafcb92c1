"""Multi-stage search: Pyserini fusion on in-memory runs, and RankLLaMA over any first stage."""

import random

import numpy as np
import pytest

from pyserini_llama.bootstrap import import_pyserini
from pyserini_llama.data.corpus import read_corpus
from pyserini_llama.data.queries import read_beir_split
from pyserini_llama.data.runs import sort_hits, write_trec_run
from pyserini_llama.encoders.repllama import RepLLaMAEncoder
from pyserini_llama.errors import PyseriniLlamaError
from pyserini_llama.rerankers import RankLLaMAReranker
from pyserini_llama.search.multistage import HybridStage, MultiStageSearcher, RunStage, fuse_runs


def pyserini_fusion_of_files(runs, tmp_path, fusion, **kwargs):
    """What `python -m pyserini.fusion` computes from the runs written as TREC files, as a Run."""
    pyserini_fusion = import_pyserini("pyserini.fusion")
    trec_run = import_pyserini("pyserini.trectools").TrecRun
    files = []
    for i, run in enumerate(runs):
        write_trec_run(run, tmp_path / f"run{i}.trec")
        files.append(trec_run(str(tmp_path / f"run{i}.trec")))
    method = pyserini_fusion.reciprocal_rank_fusion if fusion == "rrf" else pyserini_fusion.interpolation
    fused = method(files, **kwargs)
    out = {}
    for topic, docid, score in zip(
        fused.run_data["topic"], fused.run_data["docid"], fused.run_data["score"], strict=True
    ):
        out.setdefault(str(topic), []).append((docid, float(score)))
    return {qid: sort_hits(hits) for qid, hits in out.items()}


@pytest.fixture(scope="module")
def tiny(tiny_beir):
    queries, qrels = read_beir_split(tiny_beir, "test")
    return queries, read_corpus(tiny_beir)


@pytest.fixture(scope="module")
def dense_run(tiny, tiny_lora):
    """RepLLaMA (tiny_lora) exhaustive search over tiny_beir, computed here without FAISS."""
    queries, docs = tiny
    encoder = RepLLaMAEncoder(str(tiny_lora))
    q = encoder.encode_queries(list(queries.values()))
    p = encoder.encode_passages([{"title": d.title, "text": d.text} for d in docs.values()])
    scores = q @ p.T
    return {qid: sort_hits(zip(docs, map(float, row), strict=True)) for qid, row in zip(queries, scores, strict=True)}


@pytest.fixture(scope="module")
def lexical_run(tiny):
    """A BM25-like run: count of query words in the document, plus a small docid-based offset."""
    queries, docs = tiny
    run = {}
    for qid, query in queries.items():
        words = set(query.lower().split())
        run[qid] = sort_hits(
            (d.docid, len(words & set((d.title + " " + d.text).lower().split())) + int(d.docid[1:]) / 100)
            for d in docs.values()
        )
    return run


@pytest.fixture(scope="module")
def reranker(tiny_rank_lora):
    return RankLLaMAReranker(str(tiny_rank_lora), batch_size=4)


@pytest.mark.parametrize(
    "fusion, kwargs",
    [
        ("rrf", {"rrf_k": 60}),
        ("rrf", {"rrf_k": 1, "depth": 3, "k": 4}),
        ("interpolation", {"alpha": 0.3}),
        ("interpolation", {"alpha": 0.9, "depth": 4, "k": 2}),
    ],
)
def test_fusion_equals_pyserini_on_run_files(tiny, dense_run, lexical_run, tmp_path, fusion, kwargs):
    ours = fuse_runs([lexical_run, dense_run], fusion, **kwargs)
    assert ours == pyserini_fusion_of_files([lexical_run, dense_run], tmp_path, fusion, **kwargs)
    assert set(ours) == set(tiny[0])


def test_fusion_of_random_runs_with_missing_queries_and_docs(tmp_path):
    rng = random.Random(7)
    runs = [
        {
            q: sort_hits({f"d{rng.randint(0, 30)}": round(rng.uniform(-5, 20), 4) for _ in range(12)}.items())
            for q in qids
        }
        for qids in (["1", "2", "10"], ["2", "10", "11"])
    ]
    for fusion, kwargs in [("rrf", {"rrf_k": 60, "k": 8}), ("interpolation", {"alpha": 0.25, "depth": 5})]:
        ours = fuse_runs(runs, fusion, **kwargs)
        assert ours == pyserini_fusion_of_files(runs, tmp_path, fusion, **kwargs)
        assert set(ours) == {"1", "2", "10", "11"}


def test_rrf_is_reciprocal_rank_sum_and_bad_arguments(lexical_run, dense_run):
    fused = fuse_runs([lexical_run, dense_run], "rrf", rrf_k=60)
    qid = "2"
    expected = {}
    for run in (lexical_run, dense_run):
        for rank, (docid, _) in enumerate(run[qid], start=1):
            expected[docid] = expected.get(docid, 0.0) + 1 / (60 + rank)
    assert dict(fused[qid]) == pytest.approx(expected)
    with pytest.raises(ValueError, match="exactly 2"):
        fuse_runs([lexical_run, dense_run, dense_run], "interpolation")
    with pytest.raises(PyseriniLlamaError, match="unknown fusion"):
        fuse_runs([lexical_run, dense_run], "borda")


def test_hybrid_stage_fuses_its_stages_like_pyserini(tiny, dense_run, lexical_run, tmp_path):
    queries, _ = tiny
    hybrid = HybridStage(RunStage(lexical_run), RunStage(dense_run), fusion="interpolation", alpha=0.2, depth=4)
    got = hybrid.batch_search(queries, k=3)
    cut = [{q: h[:4] for q, h in run.items()} for run in (lexical_run, dense_run)]
    assert got == pyserini_fusion_of_files(cut, tmp_path, "interpolation", alpha=0.2, k=3)
    assert all(len(hits) == 3 for hits in got.values())


def test_reranked_top_follows_reranker_scores_and_tail_keeps_first_stage_order(tiny, dense_run, reranker):
    queries, docs = tiny
    depth = 3
    searcher = MultiStageSearcher(RunStage(dense_run), reranker, documents=docs, rerank_depth=depth)
    run = searcher.batch_search(queries, k=6)
    for qid, hits in run.items():
        first = dense_run[qid]
        top_ids = [d for d, _ in first[:depth]]
        scores = reranker.score(queries[qid], [docs[d] for d in top_ids])
        expected_top = sort_hits(zip(top_ids, map(float, scores), strict=True))
        assert [d for d, _ in hits[:depth]] == [d for d, _ in expected_top]
        assert np.allclose([s for _, s in hits[:depth]], [s for _, s in expected_top], atol=1e-5)
        assert [d for d, _ in hits[depth:]] == [d for d, _ in first[depth:]]
        assert all(s < hits[depth - 1][1] for _, s in hits[depth:])
        assert [s for _, s in hits] == sorted((s for _, s in hits), reverse=True)


def assert_same_hits(got, expected):
    assert [d for d, _ in got] == [d for d, _ in expected]
    assert np.allclose([s for _, s in got], [s for _, s in expected], atol=1e-5)


def test_search_and_k_below_depth_with_documents_from_a_corpus_path(tiny, tiny_beir, dense_run, reranker):
    queries, _ = tiny
    full = MultiStageSearcher(RunStage(dense_run), reranker, documents=tiny_beir, rerank_depth=5).batch_search(
        queries, k=6
    )
    searcher = MultiStageSearcher(_TextStage(dense_run, queries), reranker, documents=tiny_beir, rerank_depth=5)
    for qid, query in queries.items():
        assert_same_hits(searcher.search(query, k=2), full[qid][:2])
    plain = MultiStageSearcher(RunStage(dense_run))
    assert plain.batch_search(queries, k=2) == {q: h[:2] for q, h in dense_run.items()}


class _TextStage:
    """A first stage that looks its run up by query text (so ``search()`` without a qid can be tested)."""

    def __init__(self, run, queries):
        self.by_text = {text: run[qid] for qid, text in queries.items()}

    def batch_search(self, queries, k):
        return {qid: self.by_text[text][:k] for qid, text in queries.items()}


def test_reranker_needs_documents(dense_run, reranker):
    with pytest.raises(PyseriniLlamaError, match="documents="):
        MultiStageSearcher(RunStage(dense_run), reranker)
    with pytest.raises(ValueError, match="rerank_depth"):
        MultiStageSearcher(RunStage(dense_run), rerank_depth=0)


@pytest.mark.slow
def test_bm25_repllama_hybrid_and_rankllama_stages_on_tiny_beir(tiny, tiny_beir, tiny_lora, reranker, tmp_path):
    """The real stages: Pyserini's LuceneSearcher and FaissSearcher (starts the JVM)."""
    from pyserini_llama.encode import encode_corpus
    from pyserini_llama.search.multistage import BM25Stage, RepLLaMAStage

    queries, docs = tiny
    bm25 = BM25Stage.build(tiny_beir, tmp_path / "index.lucene")
    encoder = RepLLaMAEncoder(str(tiny_lora))
    encode_corpus(encoder, list(docs.values()), tmp_path / "index.faiss", to_faiss=True)
    dense = RepLLaMAStage(tmp_path / "index.faiss", encoder)

    bm25_run, dense_run = bm25.batch_search(queries, 10), dense.batch_search(queries, 10)
    assert bm25_run["1"][0][0] == "d1" and {d for d, _ in bm25_run["2"][:2]} == {"d2", "d6"}
    assert [d for d, _ in dense_run["1"]] == [d for d, _ in sort_hits(dense_run["1"])] and len(dense_run["1"]) == 6

    for fusion in ("rrf", "interpolation"):
        hybrid = HybridStage(bm25, dense, fusion=fusion, alpha=0.1)
        kwargs = {"rrf_k": 60} if fusion == "rrf" else {"alpha": 0.1}
        expected = pyserini_fusion_of_files([bm25_run, dense_run], tmp_path, fusion, k=5, **kwargs)
        assert hybrid.batch_search(queries, k=5) == expected

    searcher = MultiStageSearcher(
        HybridStage(bm25, dense), reranker, documents=tmp_path / "index.lucene", rerank_depth=3
    )
    hybrid_run = HybridStage(bm25, dense).batch_search(queries, k=6)
    reranked = searcher.batch_search(queries, k=6)
    for qid, query in queries.items():
        assert_same_hits(searcher.search(query, k=6), reranked[qid])
        top = [d for d, _ in hybrid_run[qid][:3]]
        scores = reranker.score(query, [docs[d] for d in top])
        assert [d for d, _ in reranked[qid][:3]] == [d for d, _ in sort_hits(zip(top, map(float, scores), strict=True))]
        assert [d for d, _ in reranked[qid][3:]] == [d for d, _ in hybrid_run[qid][3:]]


def test_dense_search_leaves_torch_threads_alone(tiny, tiny_lora, tmp_path):
    """Pyserini's FaissSearcher.batch_search sets FAISS's (= torch's) OpenMP threads; RankLLaMA after it
    in the same process must still get every core."""
    import torch

    from pyserini_llama.encode import encode_corpus
    from pyserini_llama.search.faiss import dense_search, open_faiss_searcher

    queries, docs = tiny
    encoder = RepLLaMAEncoder(str(tiny_lora))
    encode_corpus(encoder, list(docs.values()), tmp_path / "index", to_faiss=True)
    searcher = open_faiss_searcher(str(tmp_path / "index"), encoder)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        run = dense_search(searcher, encoder, queries, hits=5, threads=1)
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
    assert all(len(hits) == 5 for hits in run.values())

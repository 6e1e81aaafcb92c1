"""BM25 with Pyserini's Lucene: index building and reuse, the document store, the CLI, and BEIR numbers.

Every test here starts Java (one JVM per pytest process, shared), so all are marked slow.
"""

import json

import pytest

from pyserini_llama.data import Document, open_document_store, read_beir_split, read_run
from pyserini_llama.data.lucene_store import LuceneDocumentStore
from pyserini_llama.errors import PyseriniLlamaError
from pyserini_llama.eval import evaluate_run

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def lucene():
    from pyserini_llama.search import lucene

    return lucene


@pytest.fixture(scope="module")
def tiny_index(lucene, tiny_beir, tmp_path_factory):
    return lucene.build_lucene_index(tiny_beir, tmp_path_factory.mktemp("idx") / "tiny")


def test_tiny_index_search_and_store(lucene, tiny_beir, tiny_index):
    queries, qrels = read_beir_split(tiny_beir, "test")
    run = lucene.bm25_search(tiny_index, queries, hits=3)
    assert list(run) == ["1", "2", "3"]
    assert run["1"][0][0] == "d1" and run["2"][0][0] in ("d2", "d6")
    assert all(len(hits) <= 3 for hits in run.values())
    assert all(a[1] >= b[1] for hits in run.values() for a, b in zip(hits, hits[1:], strict=False))
    assert evaluate_run(qrels, run, ["mrr@10"])["mrr@10"] == 1.0

    store = open_document_store(tiny_index)
    assert isinstance(store, LuceneDocumentStore)
    assert store["d1"] == Document("d1", "A lobster roll is a sandwich from New England.", "Lobster roll")
    assert store["d3"] == Document("d3", "Scientific claims about cells, genes, proteins and mutations.", "")
    assert len(store) == 6 and sorted(store) == ["d1", "d2", "d3", "d4", "d5", "d6"]
    assert "nope" not in store
    with pytest.raises(KeyError):
        store["nope"]


def test_bm25_parameters_and_remove_query(lucene, tiny_index):
    queries = {"d4": "quick brown fox", "x": "quick brown fox"}
    default = lucene.bm25_search(tiny_index, queries, hits=5)
    assert default["d4"][0][0] == "d4"
    removed = lucene.bm25_search(tiny_index, queries, hits=5, remove_query=True)
    assert "d4" not in [d for d, _ in removed["d4"]] and removed["x"] == default["x"]
    other = lucene.bm25_search(tiny_index, {"x": "quick brown fox"}, hits=1, k1=1.2, b=0.75)
    assert other["x"][0][0] == "d4" and other["x"][0][1] != pytest.approx(default["x"][0][1])


def test_index_is_reused_rebuilt_when_half_built_or_stale(lucene, tiny_beir, tmp_path, caplog):
    index = tmp_path / "index"
    lucene.build_lucene_index(tiny_beir, index)
    marker = json.loads((index / lucene.MARKER).read_text())
    assert marker["documents"] == 6
    segments = sorted(p.name for p in index.glob("segments_*"))
    caplog.set_level("INFO")
    lucene.build_lucene_index(tiny_beir, index)
    assert "reusing" in caplog.text and sorted(p.name for p in index.glob("segments_*")) == segments

    partial = tmp_path / "index.partial"
    partial.mkdir()
    (partial / "junk").write_text("left over from a crash")
    (index / lucene.MARKER).write_text(json.dumps({"fingerprint": "from another corpus"}))
    lucene.build_lucene_index(tiny_beir, index)
    assert not partial.exists()
    assert json.loads((index / lucene.MARKER).read_text())["fingerprint"] == marker["fingerprint"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["index"]  # no staging left behind

    foreign = tmp_path / "not-ours"
    foreign.mkdir()
    (foreign / "precious.txt").write_text("keep me")
    with pytest.raises(PyseriniLlamaError, match="not an index built by pyserini-llama"):
        lucene.build_lucene_index(tiny_beir, foreign)
    assert (foreign / "precious.txt").read_text() == "keep me"


def test_empty_documents_are_left_out_like_anserini(lucene, tmp_path):
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text(
        json.dumps({"_id": "a", "title": "Only a title", "text": ""})
        + "\n"
        + json.dumps({"_id": "b", "title": "", "text": ""})
        + "\n"
        + json.dumps({"id": "c", "contents": "json collection line"})
        + "\n"
    )
    index = lucene.build_lucene_index(corpus, tmp_path / "index")
    store = LuceneDocumentStore(index)
    assert len(store) == 2 and store["a"] == Document("a", "", "Only a title") and "b" not in store
    assert store["c"] == Document("c", "json collection line")


def test_cli_on_tiny_beir(tiny_beir, tmp_path, capsys):
    from pyserini_llama.search.lucene.__main__ import main

    out = tmp_path / "run.trec"
    args = ["--dataset", str(tiny_beir), "--index", str(tmp_path / "idx"), "--output", str(out), "--hits", "2"]
    assert main(args) == 0
    run = read_run(out)
    assert list(run) == ["1", "2", "3"] and [len(h) for h in run.values()] == [1, 2, 2]
    assert out.read_text().split("\n")[0].endswith(" bm25")
    topics_run = tmp_path / "topics.trec"
    assert (
        main(
            [
                "--topics",
                str(tiny_beir / "topics.tsv"),
                "--index",
                str(tmp_path / "idx"),
                "--output",
                str(topics_run),
                "--hits",
                "2",
            ]
        )
        == 0
    )
    assert read_run(topics_run) == run
    with pytest.raises(PyseriniLlamaError, match="not a Lucene index"):
        main(["--topics", str(tiny_beir / "topics.tsv"), "--index", str(tmp_path / "none"), "--output", str(out)])


@pytest.mark.parametrize(("name", "ndcg10", "recall100"), [("scifact", 0.6789, 0.9253), ("nfcorpus", 0.3218, 0.2457)])
def test_beir_flat_bm25_reproduces_pyserini(lucene, shared_data, tmp_path, name, ndcg10, recall100):
    """Pyserini's BEIR flat regression numbers (BM25 k1 0.9, b 0.4, --remove-query).

    Only the top 100 are fetched: Lucene's top-k is exact, so nDCG@10 and R@100 are those of a
    1000-hit run, and fetching stored hits is what makes 1000-hit runs slow.
    """
    dataset = shared_data / "beir" / name
    index = lucene.build_lucene_index(dataset, tmp_path / "index", threads=2)
    queries, qrels = read_beir_split(dataset, "test")
    run = lucene.bm25_search(index, queries, hits=100, threads=2, remove_query=True)
    scores = evaluate_run(qrels, run, ["ndcg@10", "recall@100"], complete=True)
    print(f"{name}: BM25 flat nDCG@10 {scores['ndcg@10']:.4f} R@100 {scores['recall@100']:.4f}")
    assert scores["ndcg@10"] == pytest.approx(ndcg10, abs=5e-4)
    assert scores["recall@100"] == pytest.approx(recall100, abs=5e-4)

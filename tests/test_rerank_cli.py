"""RankLLaMAReranker.rerank / rerank_run and ``python -m pyserini_llama.rerank``."""

import json
import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pytest

from pyserini_llama.data.document import Document
from pyserini_llama.data.runs import read_run
from pyserini_llama.errors import PyseriniLlamaError, run_cli
from pyserini_llama.rerank.__main__ import main
from pyserini_llama.rerankers.rankllama import RankLLaMAReranker

DOCS = {
    "d1": Document("d1", "A lobster roll is a sandwich from New England.", "Lobster roll"),
    "d2": Document("d2", "The giant panda is a bear species endemic to China."),
    "d3": Document("d3", "Scientific claims about cells, genes, proteins and mutations.", "Genes"),
    "d4": Document("d4", "fox"),
    "d5": Document("d5", "The quick brown fox jumps over the lazy dog."),
}
QUERIES = {"q1": "what is a lobster roll", "q2": "panda bear"}


@pytest.fixture(scope="module")
def reranker(tiny_rank_lora):
    return RankLLaMAReranker(str(tiny_rank_lora), batch_size=2)


def test_rerank_is_best_first_and_accepts_every_candidate_form(reranker):
    scores = reranker.score(QUERIES["q1"], list(DOCS.values()))
    expected = sorted(zip(DOCS, scores.tolist(), strict=True), key=lambda h: -h[1])
    candidates = [
        ("d1", DOCS["d1"]),  # (docid, Document)
        ("d2", DOCS["d2"].text, 7.5),  # (docid, text, first-stage score)
        DOCS["d3"],  # object with .docid and .text
        SimpleNamespace(docid="d4", score=1.0),  # Pyserini-hit-like: text from documents=
        ("d5", {"title": "", "text": DOCS["d5"].text}),  # (docid, dict)
    ]
    hits = reranker.rerank(QUERIES["q1"], candidates, documents=DOCS)
    assert [d for d, _ in hits] == [d for d, _ in expected]
    assert np.allclose([s for _, s in hits], [s for _, s in expected], atol=1e-6)
    assert reranker.rerank(QUERIES["q1"], candidates, k=2, documents=DOCS) == hits[:2]


def test_ties_are_broken_by_docid_descending(reranker):
    one_batch = RankLLaMAReranker.from_model(reranker.model, reranker.tokenizer, batch_size=8)
    same = DOCS["d2"]
    hits = one_batch.rerank("panda", [("a", same), ("c", same), ("b", same)])
    assert [d for d, _ in hits] == ["c", "b", "a"]
    assert len({s for _, s in hits}) == 1


def test_rerank_run_reranks_the_top_and_keeps_the_rest_below(reranker):
    run = {"q1": [("d3", 9.0), ("d1", 8.0), ("d5", 7.0), ("d2", 6.0), ("d4", 5.0)], "q2": [("d2", 3.0)]}
    out = reranker.rerank_run(QUERIES, run, DOCS, depth=3)
    top = reranker.rerank(QUERIES["q1"], [(d, DOCS[d]) for d in ("d3", "d1", "d5")])
    assert out["q1"][:3] == top
    assert [d for d, _ in out["q1"][3:]] == ["d2", "d4"]  # first-stage order kept
    scores = [s for _, s in out["q1"]]
    assert all(a > b for a, b in zip(scores[2:], scores[3:], strict=False))
    assert [d for d, _ in out["q2"]] == ["d2"]
    assert abs(out["q2"][0][1] - reranker.score(QUERIES["q2"], [DOCS["d2"]])[0]) < 1e-6


def test_rerank_run_missing_documents_and_queries(reranker):
    run = {"q1": [("d1", 2.0), ("gone", 1.0), ("d2", 0.5)]}
    with pytest.raises(PyseriniLlamaError, match="gone"):
        reranker.rerank_run(QUERIES, run, DOCS, depth=3)
    missing = []
    out = reranker.rerank_run(QUERIES, run, DOCS, depth=3, skip_missing_docs=True, missing=missing)
    assert missing == [("q1", "gone")] and sorted(d for d, _ in out["q1"]) == ["d1", "d2"]
    with pytest.raises(PyseriniLlamaError, match="q9"):
        reranker.rerank_run(QUERIES, {"q9": [("d1", 1.0)]}, DOCS, depth=3)


@pytest.fixture()
def collection(tmp_path):
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text(
        "".join(json.dumps({"_id": d.docid, "title": d.title, "text": d.text}) + "\n" for d in DOCS.values())
    )
    queries = tmp_path / "queries.tsv"
    queries.write_text("".join(f"{qid}\t{text}\n" for qid, text in QUERIES.items()))
    run = tmp_path / "run.trec"
    hits = {"q1": ["d3", "d1", "d5", "d2", "d4"], "q2": ["d4", "d2", "d1"]}
    run.write_text("".join(f"{q} Q0 {d} {r} {10 - r} bm25\n" for q, ds in hits.items() for r, d in enumerate(ds, 1)))
    return SimpleNamespace(corpus=corpus, queries=queries, run=run, dir=tmp_path)


def cli_args(c, reranker, output, *extra):
    return [
        "--topics",
        str(c.queries),
        "--run",
        str(c.run),
        "--corpus",
        str(c.corpus),
        "--reranker",
        str(reranker),
        "--output",
        str(output),
        "--batch-size",
        "2",
        *extra,
    ]


def test_cli_writes_the_reranked_run(collection, tiny_rank_lora, reranker):
    output = collection.dir / "out" / "reranked.trec"
    assert main(cli_args(collection, tiny_rank_lora, output, "--depth", "3")) == 0
    written = read_run(output)
    expected = reranker.rerank_run(QUERIES, read_run(collection.run), DOCS, depth=3)
    assert list(written) == ["q1", "q2"]
    for qid in expected:
        assert [d for d, _ in written[qid]] == [d for d, _ in expected[qid]]
        assert np.allclose([s for _, s in written[qid]], [s for _, s in expected[qid]], atol=1e-6)
    lines = output.read_text().splitlines()
    assert lines[0].split()[3] == "1" and lines[0].split()[5] == "rankllama"


def test_cli_reads_msmarco_runs_and_cuts_hits(collection, tiny_rank_lora):
    msmarco = collection.dir / "run.tsv"
    msmarco.write_text("q1\td1\t1\nq1\td2\t2\nq1\td3\t3\n")
    output = collection.dir / "top2.trec"
    args = cli_args(collection, tiny_rank_lora, output, "--hits", "2")
    args[args.index("--run") + 1] = str(msmarco)
    assert main(args) == 0
    assert [len(h) for h in read_run(output).values()] == [2]


def test_cli_missing_document_is_an_error_naming_it(collection, tiny_rank_lora, capsys):
    with collection.run.open("a") as f:
        f.write("q2 Q0 nowhere 4 1 bm25\n")
    output = collection.dir / "out.trec"
    with pytest.raises(SystemExit) as exit_info:
        run_cli(main, cli_args(collection, tiny_rank_lora, output))
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "error:" in err and "nowhere" in err and str(collection.run) in err and not output.exists()

    assert main(cli_args(collection, tiny_rank_lora, output, "--skip-missing-docs")) == 0
    written = read_run(output)
    assert sorted(d for d, _ in written["q2"]) == ["d1", "d2", "d4"]


def test_cli_query_missing_from_topics_is_an_error(collection, tiny_rank_lora):
    with collection.run.open("a") as f:
        f.write("q7 Q0 d1 1 1 bm25\n")
    with pytest.raises(PyseriniLlamaError, match="q7"):
        main(cli_args(collection, tiny_rank_lora, collection.dir / "out.trec"))


@pytest.mark.slow
def test_cli_reranks_dl19_bm25_with_smollm2(shared_data, tmp_path):
    """Plumbing on real data: SmolLM2 with a random score head reranks 2 DL19 queries at depth 10."""
    dl19 = shared_data / "msmarco-passage" / "dl19"
    first_stage = read_run(dl19 / "run.bm25-top100.trec")
    qids = list(first_stage)[:2]
    run_file = tmp_path / "run.trec"
    run_file.write_text(
        "".join(f"{q} Q0 {d} {r} {s} bm25\n" for q in qids for r, (d, s) in enumerate(first_stage[q][:20], 1))
    )
    output = tmp_path / "reranked.trec"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pyserini_llama.rerank",
            "--topics",
            str(dl19 / "queries.jsonl"),
            "--run",
            str(run_file),
            "--corpus",
            str(dl19 / "corpus.jsonl"),
            "--reranker",
            "smollm2-135m-instruct",
            "--depth",
            "10",
            "--max-length",
            "128",
            "--batch-size",
            "10",
            "--output",
            str(output),
        ],
        check=True,
        timeout=300,
    )
    rows = [line.split() for line in output.read_text().splitlines()]
    assert {r[0] for r in rows} == set(qids)
    for qid in qids:
        mine = [r for r in rows if r[0] == qid]
        docids = [r[2] for r in mine]
        assert sorted(docids) == sorted(d for d, _ in first_stage[qid][:20])  # every doc once
        assert [int(r[3]) for r in mine] == list(range(1, 21))
        scores = [float(r[4]) for r in mine]
        assert scores == sorted(scores, reverse=True)
        assert set(docids[:10]) == {d for d, _ in first_stage[qid][:10]}  # reranked block on top
        assert docids[10:] == [d for d, _ in first_stage[qid][10:20]]  # tail keeps BM25 order
        assert len(set(scores[:10])) > 1

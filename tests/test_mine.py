"""Hard-negative mining: Tevatron output, positives never negatives, seeded sampling, blending, bad input."""

import json
import random
import subprocess
import sys
import time

import pytest

from pyserini_llama.data import read_beir_split, read_corpus, write_trec_run
from pyserini_llama.errors import InputFormatError, PyseriniLlamaError
from pyserini_llama.mine import (
    EXAMPLE_KEYS,
    MiningOptions,
    MiningStats,
    candidate_pool,
    mine_examples,
    mine_hard_negatives,
    sample_negatives,
)
from pyserini_llama.mine.__main__ import main
from pyserini_llama.search.multistage import RunStage

PASSAGE_KEYS = {"docid", "title", "text"}


def read_jsonl(path):
    """The training file, checked line by line: JSON objects with exactly Tevatron's keys and types."""
    examples = []
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, start=1):
            example = json.loads(line)
            assert list(example) == list(EXAMPLE_KEYS), f"line {number}"
            assert isinstance(example["query_id"], str) and isinstance(example["query"], str)
            for key in ("positive_passages", "negative_passages"):
                assert isinstance(example[key], list)
                for p in example[key]:
                    assert set(p) == PASSAGE_KEYS and all(isinstance(v, str) for v in p.values())
            examples.append(example)
    return examples


def docids(passages):
    return [p["docid"] for p in passages]


def make_dataset(root, n_docs=300, n_queries=40, seed=0):
    """A synthetic BEIR dataset (graded qrels with 0/1/2, a query without positives) and two runs over it.

    Run ``a`` ranks each query's judged documents first, so they are the hardest candidates;
    run ``b`` is an independent random ranking. Returns (root, qrels, run_a, run_b).
    """
    rng = random.Random(seed)
    docs = [f"doc{i}" for i in range(n_docs)]
    with open(root / "corpus.jsonl", "w") as f:
        for d in docs:
            f.write(json.dumps({"_id": d, "title": f"title {d}", "text": f"text of {d} é"}) + "\n")
    qids = [f"q{i}" for i in range(n_queries)]
    with open(root / "queries.jsonl", "w") as f:
        for q in qids:
            f.write(json.dumps({"_id": q, "text": f"query {q}"}) + "\n")
    qrels = {q: {d: rng.choice([0, 1, 1, 2]) for d in rng.sample(docs, rng.randint(1, 4))} for q in qids}
    qrels["q0"] = {"doc1": 0}  # judged, but nothing relevant
    (root / "qrels").mkdir()
    (root / "qrels" / "train.tsv").write_text(
        "query-id\tcorpus-id\tscore\n" + "".join(f"{q}\t{d}\t{g}\n" for q, j in qrels.items() for d, g in j.items())
    )
    run_a, run_b = {}, {}
    for q in qids:
        order = list(qrels[q]) + [d for d in rng.sample(docs, 60) if d not in qrels[q]]
        run_a[q] = [(d, 100.0 - i) for i, d in enumerate(order)]
        run_b[q] = [(d, 100.0 - i) for i, d in enumerate(rng.sample(docs, 60))]
    write_trec_run(run_a, root / "run_a.trec")
    write_trec_run(run_b, root / "run_b.trec")
    return root, qrels, run_a, run_b


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    return make_dataset(tmp_path_factory.mktemp("synthetic-beir"))


def mine_cli(dataset, output, *stages, **flags):
    argv = ["--dataset", str(dataset), "--output", str(output)]
    for stage in stages:
        argv += ["--first-stage", str(stage)]
    for name, value in flags.items():
        flag = "--" + name.replace("_", "-")
        argv += [flag] if value is True else [flag, str(value)]
    assert main(argv) == 0
    return read_jsonl(output)


def test_tiny_beir_output_is_tevatron_format(tiny_beir, tmp_path, capsys):
    """Every judged query with a positive, its judged documents as positives with corpus title/text."""
    queries, qrels = read_beir_split(tiny_beir, "test")
    corpus = read_corpus(tiny_beir)
    run = {q: [(d, float(-i)) for i, d in enumerate(corpus)] for q in queries}  # every doc, positives included
    write_trec_run(run, tmp_path / "run.trec")
    out = tmp_path / "sub" / "train.jsonl"
    examples = mine_cli(tiny_beir, out, tmp_path / "run.trec", split="test", negatives=2, depth=6)
    assert [e["query_id"] for e in examples] == ["1", "2", "3"]
    for e in examples:
        assert e["query"] == queries[e["query_id"]]
        assert sorted(docids(e["positive_passages"])) == sorted(qrels[e["query_id"]])
        assert len(e["negative_passages"]) == 2
        assert not set(docids(e["negative_passages"])) & set(qrels[e["query_id"]])
        for p in e["positive_passages"] + e["negative_passages"]:
            doc = corpus[p["docid"]]
            assert (p["title"], p["text"]) == (doc.title, doc.text)
    # query 3 has grades 2 (d5) and 1 (d3): the higher grade comes first
    assert docids(examples[2]["positive_passages"]) == ["d5", "d3"]
    printed = capsys.readouterr().out
    assert "queries written: 3 of 3" in printed and "mean 2.00 (requested 2)" in printed
    assert not list(out.parent.glob(".*.tmp"))  # the temporary file was renamed away


def test_judged_positives_are_never_negatives(synthetic, tmp_path):
    root, qrels, *_ = synthetic
    for level in (1, 2):
        examples = mine_cli(
            root, tmp_path / f"l{level}.jsonl", root / "run_a.trec", relevance_level=level, depth=30, negatives=29
        )
        mined = {e["query_id"]: e for e in examples}
        with_positive = {q for q, j in qrels.items() if any(g >= level for g in j.values())}
        assert set(mined) == with_positive
        grade0_used = 0
        for qid, e in mined.items():
            relevant = {d for d, g in qrels[qid].items() if g > 0}
            assert set(docids(e["positive_passages"])) == {d for d, g in qrels[qid].items() if g >= level}
            negatives = set(docids(e["negative_passages"]))
            assert not negatives & relevant  # grade 1 is no negative even when only grade 2 is positive
            grade0_used += len(negatives & {d for d, g in qrels[qid].items() if g == 0})
        assert grade0_used > 0  # judged non-relevant documents are ordinary candidates


def test_sampling_is_seeded_per_query(synthetic, tmp_path):
    root, *_ = synthetic
    args = (root / "run_a.trec", root / "run_b.trec")
    first = tmp_path / "a.jsonl"
    mine_cli(root, first, *args, depth=50, negatives=5, seed=7)
    mine_cli(root, tmp_path / "b.jsonl", *args, depth=50, negatives=5, seed=7)
    assert first.read_bytes() == (tmp_path / "b.jsonl").read_bytes()
    other = {e["query_id"]: docids(e["negative_passages"]) for e in read_jsonl(first)}
    changed = mine_cli(root, tmp_path / "c.jsonl", *args, depth=50, negatives=5, seed=8)
    assert sum(docids(e["negative_passages"]) != other[e["query_id"]] for e in changed) >= len(changed) - 2

    # a query's sample does not depend on the order of queries or on which other queries are mined
    queries, qrels = read_beir_split(root, "train")
    runs = [RunStage(root / "run_a.trec").run, RunStage(root / "run_b.trec").run]
    docs = read_corpus(root)
    subset = {q: queries[q] for q in reversed(list(queries)[5:15])}
    alone = list(mine_examples(subset, qrels, runs, docs, MiningOptions(depth=50, negatives=5, seed=7)))
    assert {e["query_id"] for e in alone} == set(subset) & set(other) and len(alone) >= 5
    for e in alone:
        assert docids(e["negative_passages"]) == other[e["query_id"]]


def test_sample_negatives_keeps_pool_order_and_takes_all_when_short():
    pool = [f"d{i}" for i in range(20)]
    chosen = sample_negatives(pool, 5, 42, "q")
    assert len(set(chosen)) == 5 and chosen == sorted(chosen, key=pool.index)
    assert chosen == sample_negatives(pool, 5, 42, "q") != sample_negatives(pool, 5, 42, "q2")
    assert sample_negatives(pool[:3], 5, 42, "q") == pool[:3]


def test_blending_interleaves_ranks_and_each_stage_contributes_equally(synthetic, tmp_path):
    assert candidate_pool([[("a", 3), ("b", 2), ("c", 1)], [("x", 9), ("b", 8), ("y", 7)]], 2) == ["a", "x", "b"]
    assert candidate_pool([[("a", 1)], []], 5) == ["a"]

    root, qrels, run_a, run_b = synthetic
    depth = 20
    everything = mine_cli(
        root, tmp_path / "all.jsonl", root / "run_a.trec", root / "run_b.trec", depth=depth, negatives=1000
    )
    for e in everything:
        qid = e["query_id"]
        expected = [
            d for d in candidate_pool([run_a[qid], run_b[qid]], depth) if d not in qrels[qid] or qrels[qid][d] == 0
        ]
        assert docids(e["negative_passages"]) == expected  # the whole pool, hardest first, nothing beyond depth

    sampled = mine_cli(root, tmp_path / "s.jsonl", root / "run_a.trec", root / "run_b.trec", depth=depth, negatives=10)
    from_a = sum(d in dict(run_a[e["query_id"]][:depth]) for e in sampled for d in docids(e["negative_passages"]))
    from_b = sum(d in dict(run_b[e["query_id"]][:depth]) for e in sampled for d in docids(e["negative_passages"]))
    total = sum(len(e["negative_passages"]) for e in sampled)
    assert total == 10 * len(sampled)
    assert 0.4 < from_a / total < 0.6 and 0.4 < from_b / total < 0.6  # run a loses its judged top ranks


def test_skip_top_remove_query_and_short_queries():
    docs = {d: read_doc(d) for d in ("p", "n1", "n2", "n3", "q1", "top")}
    queries, qrels = {"q1": "query"}, {"q1": {"p": 1}}
    runs = [{"q1": [("top", 9.0), ("q1", 8.0), ("p", 7.0), ("n1", 6.0), ("n2", 5.0), ("n3", 4.0)]}]
    stats = MiningStats()
    (e,) = mine_examples(queries, qrels, runs, docs, MiningOptions(depth=6, negatives=10, skip_top=1), stats)
    assert docids(e["negative_passages"]) == ["n1", "n2", "n3"]
    assert (stats.written, stats.short, stats.negatives) == (1, 1, 3)
    (e,) = mine_examples(queries, qrels, runs, docs, MiningOptions(depth=6, negatives=10, remove_query=False))
    assert docids(e["negative_passages"]) == ["top", "q1", "n1", "n2", "n3"]
    (e,) = mine_examples(queries, qrels, runs, docs, MiningOptions(depth=2, negatives=10))
    assert docids(e["negative_passages"]) == ["top"]

    # every candidate judged relevant: skipped by default (min_negatives=1), kept with min_negatives=0
    qrels = {"q1": {d: 1 for d in ("p", "top", "n1", "n2", "n3")}}
    stats = MiningStats()
    assert list(mine_examples(queries, qrels, runs, docs, MiningOptions(depth=6, negatives=3), stats)) == []
    assert (stats.few_negatives, stats.skipped, stats.written) == (1, 1, 0)
    (e,) = mine_examples(queries, qrels, runs, docs, MiningOptions(depth=6, negatives=3, min_negatives=0))
    assert e["negative_passages"] == [] and len(e["positive_passages"]) == 5
    (e,) = mine_examples(queries, qrels, runs, docs, MiningOptions(depth=6, negatives=3, remove_query=False))
    assert docids(e["negative_passages"]) == ["q1"]
    assert list(mine_examples(queries, qrels, runs, docs, MiningOptions(negatives=3, min_negatives=2))) == []


def read_doc(docid):
    from pyserini_llama.data import Document

    return Document(docid, f"text {docid}", f"title {docid}")


def test_skipped_queries_min_positives_and_missing_documents(synthetic):
    root, qrels, run_a, _ = synthetic
    queries, _ = read_beir_split(root, "train")
    docs = read_corpus(root)
    del docs["doc7"]
    run = {q: [("ghost", 1000.0), *hits] for q, hits in run_a.items()}  # a docid that is not in the corpus
    stats = MiningStats()
    options = MiningOptions(depth=10, negatives=3, min_positives=2)
    examples = list(mine_examples(queries, qrels, [run], docs, options, stats))
    n_pos = {q: sum(g > 0 and d in docs for d, g in j.items()) for q, j in qrels.items()}
    assert {e["query_id"] for e in examples} == {q for q, n in n_pos.items() if n >= 2}
    assert stats.no_positives == sum(n == 0 for n in n_pos.values()) >= 1  # q0 has only a grade-0 judgement
    assert stats.few_positives == sum(n == 1 for n in n_pos.values())
    assert stats.written + stats.skipped == stats.queries == len(queries)
    missing = 0
    for e in examples:
        pool = candidate_pool([run[e["query_id"]]], 10)
        relevant = {d for d, g in qrels[e["query_id"]].items() if g > 0}
        missing += sum(d not in docs and d not in relevant for d in pool)
    assert stats.missing_candidate_docs == missing >= stats.written  # "ghost" for every query, doc7 sometimes
    assert stats.missing_positive_docs == sum(g > 0 for j in qrels.values() for d, g in j.items() if d == "doc7")
    assert all("ghost" not in docids(e["negative_passages"]) for e in examples)
    assert "skipped" in stats.summary() and "not in the corpus" in stats.summary()


def test_library_api_with_run_stages_matches_cli(synthetic, tmp_path):
    root, *_ = synthetic
    queries, qrels = read_beir_split(root, "train")
    stages = [RunStage(root / "run_a.trec"), RunStage(root / "run_b.trec")]
    options = MiningOptions(depth=40, negatives=6)
    stats = mine_hard_negatives(queries, qrels, stages, read_corpus(root), tmp_path / "lib.jsonl", options)
    mine_cli(root, tmp_path / "cli.jsonl", root / "run_a.trec", root / "run_b.trec", depth=40, negatives=6)
    assert (tmp_path / "lib.jsonl").read_bytes() == (tmp_path / "cli.jsonl").read_bytes()
    assert stats.written == len(read_jsonl(tmp_path / "lib.jsonl")) and stats.mean_negatives == 6


def test_malformed_run_and_qrels_are_named_with_file_and_line(synthetic, tmp_path, capsys):
    from pyserini_llama.errors import run_cli

    root, *_ = synthetic
    bad_run = tmp_path / "bad.trec"
    bad_run.write_text("q1 Q0 doc1 1 3.5 tag\nq1 Q0 doc2 2 3.0 tag\nq1 Q0 doc3 x 2.0 tag\n")
    out = tmp_path / "out.jsonl"
    out.write_text("old\n")
    with pytest.raises(SystemExit) as exit_info:
        run_cli(main, ["--dataset", str(root), "--first-stage", str(bad_run), "--output", str(out)])
    assert exit_info.value.code == 2
    assert f"error: {bad_run}:3: rank 'x' is not an integer" in capsys.readouterr().err
    assert out.read_text() == "old\n"  # untouched

    broken = tmp_path / "broken"
    broken.mkdir()
    for name in ("corpus.jsonl", "queries.jsonl"):
        (broken / name).write_bytes((root / name).read_bytes())
    (broken / "qrels").mkdir()
    (broken / "qrels" / "train.tsv").write_text("query-id\tcorpus-id\tscore\nq1\tdoc1\t1\nq2\tdoc2\thigh\n")
    with pytest.raises(InputFormatError, match=r"train\.tsv:3: relevance 'high'"):
        main(["--dataset", str(broken), "--first-stage", str(root / "run_a.trec"), "--output", str(out)])


def test_bad_flags_fail_before_any_work(synthetic, tmp_path):
    root, *_ = synthetic
    run = str(root / "run_a.trec")
    base = ["--dataset", str(root), "--output", str(tmp_path / "o.jsonl")]
    cases = [
        (["--first-stage", run, "--depth", "5", "--skip-top", "5"], "--skip-top"),
        (["--first-stage", "repllama"], "needs --retriever"),
        (["--first-stage", "nope.trec"], "not bm25, repllama or an existing run file"),
        (["--first-stage", run, "--first-stage", run], "given twice"),
        (["--first-stage", run, "--negatives", "-1"], "must not be negative"),
        (["--first-stage", run, "--negatives", "2", "--min-negatives", "3"], "above --negatives"),
        (
            ["--first-stage", run, "--relevance-level", "3"],
            r"no query has a judgement >= --relevance-level 3 .*\[0, 1, 2\]",
        ),
        (["--first-stage", run, "--split", "dev"], "no qrels for split 'dev'"),
    ]
    for argv, message in cases:
        with pytest.raises(PyseriniLlamaError, match=message):
            main(base + argv)
    assert not (tmp_path / "o.jsonl").exists()


def test_runs_of_another_corpus_fail_and_keep_the_old_output(synthetic, tmp_path):
    root, qrels, *_ = synthetic
    queries, _ = read_beir_split(root, "train")
    alien = RunStage({q: [(f"other{i}", 1.0 / (i + 1)) for i in range(30)] for q in queries})
    out = tmp_path / "keep.jsonl"
    out.write_text("previous\n")
    with pytest.raises(PyseriniLlamaError, match="candidate documents is in the corpus"):
        mine_hard_negatives(queries, qrels, [alien], read_corpus(root), out, MiningOptions(depth=20, negatives=3))
    assert out.read_text() == "previous\n" and not list(tmp_path.glob(".*.tmp"))


@pytest.mark.slow
def test_repllama_and_bm25_blend_on_tiny_beir_caches_indexes(tiny_beir, tiny_lora, tmp_path, caplog):
    """The CLI's repllama and bm25 first stages (Java, FAISS, a tiny LoRA); the FAISS index is reused."""
    flags = dict(split="test", retriever=tiny_lora, index_dir=tmp_path / "idx", depth=6, negatives=2)
    first = mine_cli(tiny_beir, tmp_path / "a.jsonl", "repllama", "bm25", **flags)
    assert [e["query_id"] for e in first] == ["1", "2", "3"]
    _, qrels = read_beir_split(tiny_beir, "test")
    for e in first:
        assert len(e["negative_passages"]) == 2
        assert not set(docids(e["negative_passages"])) & set(qrels[e["query_id"]])
    assert (tmp_path / "idx" / "bm25.lucene").is_dir()
    caplog.clear()
    with caplog.at_level("INFO"):
        again = mine_cli(tiny_beir, tmp_path / "b.jsonl", "repllama", "bm25", **flags)
    assert again == first
    assert "reusing" in caplog.text and "its manifest matches" in caplog.text


@pytest.mark.slow
def test_scifact_train_bm25_through_the_cli(shared_data, tmp_path):
    """Mine SciFact train with BM25 (depth 100, 7 negatives) with `python -m pyserini_llama.mine`."""
    dataset = shared_data / "beir" / "scifact"
    out = tmp_path / "scifact-train.jsonl"
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "pyserini_llama.mine", "--dataset", str(dataset), "--split", "train",
         "--first-stage", "bm25", "--depth", "100", "--negatives", "7", "--output", str(out),
         "--index-dir", str(tmp_path / "idx")],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    seconds = time.perf_counter() - started
    assert result.returncode == 0, result.stderr[-3000:]
    print(f"\nSciFact train, BM25 depth 100, 7 negatives: {seconds:.1f} s (index built, Java started)")
    print(result.stdout)
    queries, qrels = read_beir_split(dataset, "train")
    examples = read_jsonl(out)
    assert [e["query_id"] for e in examples] == list(queries) and len(examples) == 809
    for e in examples:
        judged = qrels[e["query_id"]]
        assert set(docids(e["positive_passages"])) == {d for d, g in judged.items() if g > 0}
        negatives = docids(e["negative_passages"])
        assert len(set(negatives)) == len(negatives) <= 7
        assert not set(negatives) & set(judged)
    assert sum(len(e["negative_passages"]) for e in examples) / len(examples) > 6.9
    assert "queries written: 809 of 809" in result.stdout


def test_mining_with_a_teacher_scores_every_passage_and_can_drop_positive_titles(synthetic, tmp_path, capsys):
    """--teacher RUN:W annotates as python -m pyserini_llama.teacher does; --drop-positive-title blanks positives only."""
    from pyserini_llama.data.score_fusion import FusedScorer

    root, _, run_a, run_b = synthetic
    out = tmp_path / "t.jsonl"
    argv = ["--dataset", str(root), "--output", str(out), "--first-stage", str(root / "run_a.trec"), "--depth", "20",
            "--negatives", "5", "--teacher", f"{root / 'run_a.trec'}:0.7", "--teacher", f"{root / 'run_b.trec'}:0.3",
            "--drop-positive-title"]  # fmt: skip
    assert main(argv) == 0
    assert "annotated" in capsys.readouterr().out
    scorer = FusedScorer([run_a, run_b], [0.7, 0.3], "minmax")
    examples = [json.loads(line) for line in out.read_text().splitlines()]
    assert examples
    for e in examples:
        for p in e["positive_passages"]:
            assert p["title"] == "" and p["score"] == pytest.approx(scorer.score(e["query_id"], p["docid"]))
        for p in e["negative_passages"]:
            assert p["title"].startswith("title ") and p["score"] == pytest.approx(
                scorer.score(e["query_id"], p["docid"])
            )


def test_pseudo_queries_are_titles_judged_relevant_to_their_document(tmp_path):
    from pyserini_llama.data.queries import read_beir_split
    from pyserini_llama.mine.pseudo_queries.__main__ import main as pseudo_main

    root = tmp_path / "beir"
    root.mkdir()
    docs = [("a", "Statins and breast cancer survival", "text a"), ("b", "", "no title"), ("c", "Two words", "c")]
    (root / "corpus.jsonl").write_text(
        "".join(json.dumps({"_id": d, "title": t, "text": x}) + "\n" for d, t, x in docs)
    )
    assert pseudo_main(["--dataset", str(root), "--output-dir", str(tmp_path / "pq")]) == 0
    queries, qrels = read_beir_split(tmp_path / "pq", "pseudo")
    assert queries == {"pq-a": "Statins and breast cancer survival"}  # untitled and 2-word titles are left out
    assert qrels == {"pq-a": {"a": 1}}
    assert read_corpus(tmp_path / "pq")["a"].text == "text a"  # the corpus is linked, not copied
    assert (tmp_path / "pq" / "corpus.jsonl").is_symlink()

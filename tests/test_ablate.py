"""``python -m pyserini_llama.ablate``: tables, plots, per-point caching, derived depths, recorded commands."""

import json
import shlex

import pytest

WORDS = (
    "lobster roll sandwich england panda bear china forest genes proteins cells mutation fox dog quick lazy "
    "court appeal judgment evidence witness murder section penal code bail custody"
).split()


@pytest.fixture()
def long_beir(tmp_path):
    """A BEIR dataset of 8 documents of 30-90 words (so MaxP windows split them), 3 judged queries, and a run."""
    import random

    rng = random.Random(7)
    root = tmp_path / "data"
    (root / "qrels").mkdir(parents=True)
    docs = {f"d{i}": " ".join(rng.choice(WORDS) for _ in range(30 + 8 * i)) for i in range(8)}
    with open(root / "corpus.jsonl", "w") as f:
        for docid, text in docs.items():
            f.write(json.dumps({"_id": docid, "title": f"title {docid}", "text": text}) + "\n")
    queries = {"q1": "lobster roll england", "q2": "panda bear forest", "q3": "murder appeal evidence", "q4": "x"}
    with open(root / "queries.jsonl", "w") as f:
        for qid, text in queries.items():
            f.write(json.dumps({"_id": qid, "text": text}) + "\n")
    qrels = [("q1", "d1", 1), ("q1", "d4", 2), ("q2", "d2", 1), ("q3", "d5", 1), ("q3", "d7", 1)]
    (root / "qrels" / "test.tsv").write_text(
        "query-id\tcorpus-id\tscore\n" + "".join(f"{q}\t{d}\t{r}\n" for q, d, r in qrels)
    )
    run = tmp_path / "first.trec"
    with open(run, "w") as f:
        for qid in ("q1", "q2", "q3", "q4"):
            order = list(docs)
            rng.shuffle(order)
            for rank, docid in enumerate(order, 1):
                f.write(f"{qid} Q0 {docid} {rank} {20 - rank}.5 bm25\n")
    return root, run


@pytest.fixture()
def model_calls(monkeypatch):
    """Counts every forward pass of RepLLaMA / RankLLaMA, every model load and every training run."""
    from pyserini_llama.encoders.repllama import RepLLaMAEncoder
    from pyserini_llama.rerankers.rankllama import RankLLaMAReranker
    from pyserini_llama.training import trainer

    calls = {"embed": 0, "logits": 0, "load": 0, "train": 0}

    def counting(cls, name, key):
        original = getattr(cls, name)

        def wrapper(*args, **kwargs):
            calls[key] += 1
            return original(*args, **kwargs)

        monkeypatch.setattr(cls, name, wrapper)

    counting(RepLLaMAEncoder, "_embed", "embed")
    counting(RankLLaMAReranker, "_logits", "logits")
    counting(RepLLaMAEncoder, "__init__", "load")
    counting(RankLLaMAReranker, "__init__", "load")
    counting(trainer.Trainer, "train", "train")
    return calls


def ablate(*argv):
    from pyserini_llama.ablate.__main__ import main

    assert main([str(a) for a in argv]) == 0


def outputs_exist(out, sweep):
    for suffix in (".md", ".json", ".png"):
        assert (out / f"{sweep}{suffix}").stat().st_size > 0
    assert (out / f"{sweep}.png").read_bytes()[:4] == b"\x89PNG"
    return json.loads((out / f"{sweep}.json").read_text())["rows"]


def test_length_sweep_table_plot_points_resume_and_commands(
    long_beir, tiny_lora, tiny_rank_lora, tmp_path, model_calls
):
    data, run = long_beir
    out = tmp_path / "length"
    argv = ["length", "--dataset", data, "--retriever", tiny_lora, "--reranker", tiny_rank_lora, "--run", run]
    argv += ["--depth", 5, "--lengths", "24,48", "--full-length", 128, "--query-max-length", 8]
    argv += ["--words-per-token", 0.5, "--batch-size", 4, "--output-dir", out]
    ablate(*argv)

    rows = outputs_exist(out, "length")
    assert len(rows) == 10  # 2 models x (2 lengths x first/maxp + full)
    assert sorted(p.name for p in (out / "points").glob("*.json")) == sorted(f"{r['point']}.json" for r in rows)
    for row in rows:
        assert 0.0 <= row["ndcg@10"] <= 1.0
        tool = "pyserini_llama.encode" if row["model"] == "RepLLaMA" else "pyserini_llama.rerank"
        assert tool in row["command"][0] and "pyserini_llama.eval" in row["command"][-1]
        assert f"--max-length {row['max length']}" in row["command"][0]
        assert ("--segment" in row["command"][0]) == (row["input"] == "MaxP windows")
    assert "pyserini_llama.rerank" in (out / "length.md").read_text()
    assert model_calls["embed"] and model_calls["logits"]

    # Rerun: every point reused, no model loaded or called.
    before = dict(model_calls)
    ablate(*argv)
    assert model_calls == before

    # An interrupted point (no JSON) is recomputed, alone.
    (out / "points" / "rankllama-maxp-48.json").unlink()
    ablate(*argv)
    assert model_calls["logits"] > before["logits"] and model_calls["embed"] == before["embed"]
    assert model_calls["load"] == before["load"] + 1

    # The recorded commands reproduce the point's run exactly.
    from pyserini_llama.data.runs import read_run
    from pyserini_llama.rerank.__main__ import main as rerank_main

    row = next(r for r in json.loads((out / "length.json").read_text())["rows"] if r["point"] == "rankllama-maxp-48")
    command = shlex.split(row["command"][0])
    assert command[:3] == ["python", "-m", "pyserini_llama.rerank"] and "--segment" in command
    output = command.index("--output") + 1
    command[output] = str(tmp_path / "again.trec")
    assert rerank_main(command[3:]) == 0
    again, ours = read_run(tmp_path / "again.trec"), read_run(out / "runs" / "rankllama-maxp-48.trec")
    assert [[d for d, _ in again[q]] for q in again] == [[d for d, _ in ours[q]] for q in ours]

    # ... and so do a RepLLaMA point's encode + search.faiss commands.
    from pyserini_llama.encode.__main__ import main as encode_main
    from pyserini_llama.search.faiss.__main__ import main as search_main

    row = next(r for r in json.loads((out / "length.json").read_text())["rows"] if r["point"] == "repllama-maxp-48")
    encode, search = (shlex.split(c) for c in row["command"][:2])
    assert encode[2] == "pyserini_llama.encode" and search[2] == "pyserini_llama.search.faiss"
    search[search.index("--output") + 1] = str(tmp_path / "dense.trec")
    assert encode_main(encode[3:]) == 0 and search_main(search[3:]) == 0
    again, ours = read_run(tmp_path / "dense.trec"), read_run(out / "runs" / "repllama-maxp-48.trec")
    assert list(again) == list(ours)
    for qid in ours:
        assert [d for d, _ in again[qid]] == [d for d, _ in ours[qid]]


def test_depth_sweep_derives_shallow_depths_exactly(long_beir, tiny_rank_lora, tmp_path, model_calls):
    from pyserini_llama.ablate.inputs import load_data, load_first_stage
    from pyserini_llama.data.runs import read_run
    from pyserini_llama.rerankers import RankLLaMAReranker

    data, run = long_beir
    out = tmp_path / "depth"
    argv = ["depth", "--dataset", data, "--reranker", tiny_rank_lora, "--run", run, "--depths", "2,3,5,8"]
    argv += ["--max-length", 40, "--query-max-length", 8, "--batch-size", 4, "--output-dir", out]
    ablate(*argv)
    rows = outputs_exist(out, "depth")
    assert [r["depth"] for r in rows] == [2, 3, 5, 8]
    assert all(f"--depth {r['depth']}" in r["command"][0] for r in rows)
    scores = json.loads((out / "points" / "rankllama-scores.json").read_text())["scores"]
    assert sorted(len(v) for v in scores.values()) == [8, 8, 8]  # scored once, at the deepest depth, judged queries

    # Each derived run equals reranking at that depth for real.
    reranker = RankLLaMAReranker(tiny_rank_lora, query_max_length=8, max_length=40, batch_size=4)
    evaluated = load_data(tmp_path / "scratch", dataset=data)
    first, _, _ = load_first_stage(run, evaluated, tmp_path / "scratch")
    for depth in (2, 3, 5, 8):
        real = reranker.rerank_run(evaluated.queries, first, evaluated.documents, depth)
        derived = read_run(out / "runs" / f"depth-{depth}.trec")
        assert list(derived) == list(real)
        for qid in real:
            assert [d for d, _ in derived[qid]] == [d for d, _ in real[qid]]
            assert [s for _, s in derived[qid]] == pytest.approx([s for _, s in real[qid]], abs=1e-4)

    # Rerun reuses everything; a deeper depth later scores only the new pairs.
    before = dict(model_calls)
    ablate(*argv)
    assert model_calls == before
    (out / "points" / "depth-5.json").unlink()
    ablate(*argv)
    assert model_calls == before  # the depth-5 point is re-derived from the cached scores


def test_rerank_from_scores_matches_rerank_run_order_rules():
    from pyserini_llama.ablate.depth import rerank_from_scores

    run = {"q": [("a", 9.0), ("b", 8.0), ("c", 7.0), ("d", 6.0)]}
    scores = {"q": {"a": 0.1, "b": 0.5, "c": 0.9}}
    assert rerank_from_scores(run, scores, 2) == {"q": [("b", 0.5), ("a", 0.1), ("c", -0.9), ("d", -1.9)]}
    # a document without a score (skipped as missing) is left out of the reranked top, as rerank_run does
    assert rerank_from_scores(run, {"q": {"a": 0.1, "c": 0.9}}, 3) == {"q": [("c", 0.9), ("a", 0.1), ("d", -0.9)]}


def test_lora_vs_full_trains_both_and_resumes(long_beir, tiny_llama, tmp_path, model_calls):
    data, _ = long_beir
    corpus = {json.loads(x)["_id"]: json.loads(x) for x in (data / "corpus.jsonl").read_text().splitlines()}
    train = tmp_path / "train.jsonl"
    with open(train, "w") as f:
        for i, (pos, neg) in enumerate([("d1", "d2"), ("d2", "d3"), ("d5", "d6"), ("d4", "d0")]):
            f.write(
                json.dumps(
                    {
                        "query_id": str(i),
                        "query": f"query {i} {corpus[pos]['text'][:20]}",
                        "positive_passages": [{"docid": pos, **{k: corpus[pos][k] for k in ("title", "text")}}],
                        "negative_passages": [{"docid": neg, **{k: corpus[neg][k] for k in ("title", "text")}}],
                    }
                )
                + "\n"
            )
    out = tmp_path / "lora"
    argv = ["lora-vs-full", "--dataset", data, "--model", tiny_llama, "--train", train, "--max-steps", 3]
    argv += ["--per-device-batch-size", 2, "--group-size", 2, "--passage-max-length", 32, "--query-max-length", 8]
    argv += ["--warmup-steps", 1, "--logging-steps", 1, "--lora-r", 4, "--lora-alpha", 8, "--learning-rate", 1e-3]
    argv += ["--full-learning-rate", 1e-4, "--batch-size", 4, "--output-dir", out]
    ablate(*argv)
    rows = outputs_exist(out, "lora-vs-full")
    assert [r["setup"] for r in rows] == ["LoRA", "full fine-tuning"]
    assert [r["learning rate"] for r in rows] == [1e-3, 1e-4]
    for row, setup in zip(rows, ("lora", "full"), strict=True):
        train_command = shlex.split(row["command"][0])
        assert train_command[:4] == ["python", "-m", "pyserini_llama.train", "repllama"]
        assert ("--full" in train_command) == (setup == "full")
        assert len(json.loads((out / "points" / f"{setup}.json").read_text())["loss_curve"]) == 3
        assert 0.0 <= row["ndcg@10"] <= 1.0 and row["final loss"] > 0
    assert (out / "models" / "full" / "config.json").is_file() and (
        out / "models" / "lora" / "adapter_config.json"
    ).is_file()
    assert model_calls["train"] == 2

    before = dict(model_calls)
    ablate(*argv)
    assert model_calls == before


def test_max_queries_and_pool_depth_shrink_the_evaluation_and_are_recorded(long_beir, tiny_lora, tmp_path):
    """--max-queries keeps the first N judged queries (their qrels written out, so -c averages over them);
    --pool-depth makes the corpus the run's top N for them, and the recorded commands read those files."""
    from pyserini_llama.data.corpus import read_corpus
    from pyserini_llama.data.qrels import read_qrels
    from pyserini_llama.data.runs import read_run
    from pyserini_llama.errors import PyseriniLlamaError

    data, run = long_beir
    out = tmp_path / "pooled"
    argv = ["length", "--dataset", data, "--retriever", tiny_lora, "--run", run, "--max-queries", 2]
    argv += ["--pool-depth", 3, "--modes", "first", "--lengths", 24, "--batch-size", 4, "--output-dir", out]
    ablate(*argv)

    inputs = out / "inputs"
    assert sorted(read_qrels(inputs / "qrels.txt")) == ["q1", "q2"]  # q3 judged but beyond the first 2
    first_stage = read_run(run)
    pool = {d for q in ("q1", "q2") for d, _ in first_stage[q][:3]}
    assert set(read_corpus(inputs / "corpus.jsonl")) == pool
    (row,) = outputs_exist(out, "length")
    dense = read_run(out / "runs" / f"{row['point']}.trec")
    assert sorted(dense) == ["q1", "q2"] and all({d for d, _ in hits} <= pool for hits in dense.values())
    assert str(inputs / "corpus.jsonl") in row["command"][0] and str(inputs / "qrels.txt") in row["command"][-1]

    with pytest.raises(PyseriniLlamaError, match="--pool-depth needs --run"):
        ablate("length", "--dataset", data, "--retriever", tiny_lora, "--pool-depth", 3, "--output-dir", out)
    with pytest.raises(PyseriniLlamaError, match="deeper than --pool-depth"):
        ablate(
            "depth",
            "--dataset",
            data,
            "--reranker",
            tiny_lora,
            "--run",
            run,
            "--depths",
            "2,5",
            "--pool-depth",
            3,
            "--output-dir",
            tmp_path / "d",
        )


def test_dtype_takes_inference_precisions_for_inference_sweeps_only(long_beir, tiny_rank_lora, tmp_path):
    """``--dtype int8`` runs a depth sweep in int8 and records it; lora-vs-full, which trains, refuses it in one
    line before doing anything; an unknown precision is an argparse error."""
    from pyserini_llama.errors import PyseriniLlamaError

    data, run = long_beir
    out = tmp_path / "depth-int8"
    argv = ["depth", "--dataset", data, "--reranker", tiny_rank_lora, "--run", run, "--depths", "2,3"]
    ablate(
        *argv, "--max-length", 40, "--query-max-length", 8, "--batch-size", 4, "--output-dir", out, "--dtype", "int8"
    )
    rows = outputs_exist(out, "depth")
    assert all("--dtype int8" in r["command"][0] for r in rows)

    train = tmp_path / "none.jsonl"
    with pytest.raises(PyseriniLlamaError, match="lora-vs-full trains its models"):
        ablate("lora-vs-full", "--dataset", data, "--train", train, "--output-dir", tmp_path / "l", "--dtype", "auto")
    assert not (tmp_path / "l").exists()
    with pytest.raises(SystemExit):
        ablate(*argv, "--output-dir", tmp_path / "x", "--dtype", "int4")

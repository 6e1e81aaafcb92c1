"""``python -m pyserini_llama.pipeline``: flag checks, manifest caching, SciFact BM25, a full tiny pipeline."""

import json
import logging
import subprocess
import sys

import pytest

from pyserini_llama.cache import Artifact, model_slug
from pyserini_llama.data.runs import read_run
from pyserini_llama.errors import PyseriniLlamaError
from pyserini_llama.pipeline import METRICS, rerank_source
from pyserini_llama.pipeline.__main__ import main
from pyserini_llama.search.multistage import fuse_runs


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--stages", "rankllama", "--reranker", "m"], "rankllama reranks a first stage"),
        (["--stages", "bm25,rankllama"], "rankllama needs --reranker"),
        (["--stages", "repllama"], "repllama needs --retriever"),
        (["--stages", "hybrid", "--reranker", "m"], "hybrid .* needs --retriever"),
        (["--stages", "bm25,dense"], "unknown stage"),
        (["--stages", "bm25,bm25"], "listed twice"),
        (["--rerank-depth", "0"], "--rerank-depth must be at least 1"),
        (["--alpha", "1.5"], "--alpha must be between 0 and 1"),
        (["--split", "dev"], "no qrels for split 'dev'"),
    ],
)
def test_bad_flag_combinations_fail_at_start(tiny_beir, tmp_path, flags, message):
    with pytest.raises(PyseriniLlamaError, match=message):
        main(["--dataset", str(tiny_beir), "--output-dir", str(tmp_path / "out"), *flags])
    assert not (tmp_path / "out").exists()


def test_cli_error_is_one_line(tiny_beir, tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pyserini_llama.pipeline",
            "--dataset",
            str(tiny_beir),
            "--stages",
            "repllama",
            "--output-dir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 2
    assert result.stderr.strip() == "error: stage repllama needs --retriever (a RepLLaMA model)"


def test_rerank_source_and_model_slug(tmp_path):
    assert rerank_source(["bm25", "repllama", "hybrid", "rankllama"]) == "hybrid"
    assert rerank_source(["bm25", "repllama", "rankllama"]) == "repllama"
    assert rerank_source(["bm25", "rankllama"]) == "bm25"
    assert model_slug("castorini/repllama-v1-7b-lora-passage") == "castorini--repllama-v1-7b-lora-passage"
    (tmp_path / "my adapter").mkdir()
    assert model_slug(str(tmp_path / "my adapter")) == "my-adapter"


def test_manifests_rebuild_exactly_what_changed(tmp_path, caplog):
    builds = []

    def chain(index_param, run_param, rerank_param):
        def builder(name):
            def build():
                builds.append(name)
                (tmp_path / name).write_text(name)

            return build

        index = Artifact("index", tmp_path / "index", {"p": index_param}, builder("index"))
        run = Artifact("run", tmp_path / "run", {"p": run_param}, builder("run"), [index])
        return Artifact("rerank", tmp_path / "rerank", {"p": rerank_param}, builder("rerank"), [run])

    caplog.set_level(logging.INFO)
    assert chain(1, 1, 1).ensure() and builds == ["index", "run", "rerank"]
    builds.clear()
    assert not chain(1, 1, 1).ensure() and builds == []
    assert "reusing" in caplog.text
    chain(1, 1, 2).ensure()  # only the last stage's parameter changed
    assert builds == ["rerank"]
    builds.clear()
    chain(2, 1, 2).ensure()  # an input changed: everything downstream of it is rebuilt
    assert builds == ["index", "run", "rerank"]
    builds.clear()
    (tmp_path / "run").unlink()  # a lost output is rebuilt when asked for; a current downstream one is kept
    rerank = chain(2, 1, 2)
    rerank.ensure()
    assert builds == []
    rerank.inputs[0].ensure()
    assert builds == ["run"]

    builds.clear()
    broken = chain(2, 1, 3)
    broken.build = lambda: 1 / 0
    with pytest.raises(ZeroDivisionError):
        broken.ensure()
    assert not broken.manifest_path.exists()  # an interrupted build is never reused
    chain(2, 1, 3).ensure()
    assert builds == ["rerank"]


@pytest.mark.slow
def test_scifact_bm25_reproduces_pyserini(shared_data, tmp_path, capsys):
    out = tmp_path / "scifact"
    assert (
        main(
            [
                "--dataset",
                str(shared_data / "beir" / "scifact"),
                "--split",
                "test",
                "--stages",
                "bm25",
                "--output-dir",
                str(out),
            ]
        )
        == 0
    )
    metrics = json.loads((out / "metrics.json").read_text())["metrics"]
    assert list(metrics) == ["bm25"] and list(metrics["bm25"]) == list(METRICS)
    assert metrics["bm25"]["ndcg@10"] == pytest.approx(0.6789, abs=5e-4)
    assert metrics["bm25"]["recall@100"] == pytest.approx(0.9253, abs=5e-4)
    printed = capsys.readouterr().out
    assert "bm25       k1 0.9, b 0.4" in printed and "0.6789" in printed
    assert len(read_run(out / "run.bm25.trec")) == 300


@pytest.mark.slow
def test_full_pipeline_on_tiny_beir_reuses_what_a_new_depth_does_not_change(
    tiny_beir, tiny_lora, tiny_rank_lora, tmp_path, caplog, capsys
):
    out = tmp_path / "out"
    base = [
        "--dataset",
        str(tiny_beir),
        "--output-dir",
        str(out),
        "--stages",
        "bm25,repllama,hybrid,rankllama",
        "--retriever",
        str(tiny_lora),
        "--reranker",
        str(tiny_rank_lora),
        "--batch-size",
        "4",
    ]
    caplog.set_level(logging.INFO)
    assert main([*base, "--rerank-depth", "3"]) == 0
    slug = model_slug(str(tiny_lora))
    outputs = ["index.lucene", f"index.{slug}", "run.bm25.trec", "run.repllama.trec", "run.hybrid.trec"]
    assert all((out / name).exists() for name in [*outputs, "run.rankllama.trec", "metrics.json"])
    printed = capsys.readouterr().out
    assert "float32 on cpu" in printed and "top 3 of hybrid, query 32 / pair 196 tokens" in printed
    metrics = json.loads((out / "metrics.json").read_text())
    assert list(metrics["metrics"]) == ["bm25", "repllama", "hybrid", "rankllama"]
    assert metrics["settings"]["rerank_depth"] == 3

    runs = {s: read_run(out / f"run.{s}.trec") for s in ("bm25", "repllama", "hybrid", "rankllama")}
    assert runs["hybrid"] == fuse_runs([runs["bm25"], runs["repllama"]], "rrf", rrf_k=60, k=1000)
    for qid, hits in runs["rankllama"].items():
        assert [d for d, _ in hits[3:]] == [d for d, _ in runs["hybrid"][qid][3:]]

    mtimes = {name: (out / name).stat().st_mtime_ns for name in [*outputs, "run.rankllama.trec"]}
    caplog.clear()
    assert main([*base, "--rerank-depth", "2"]) == 0
    for name in outputs:
        assert (out / name).stat().st_mtime_ns == mtimes[name], f"{name} was rebuilt"
    assert (out / "run.rankllama.trec").stat().st_mtime_ns != mtimes["run.rankllama.trec"]
    assert f"reusing {out / 'run.hybrid.trec'}" in caplog.text
    assert f"building {out / 'run.rankllama.trec'}" in caplog.text
    assert "building" not in caplog.text.replace(f"building {out / 'run.rankllama.trec'}", "")
    reranked = read_run(out / "run.rankllama.trec")
    for qid, hits in reranked.items():
        assert [d for d, _ in hits[2:]] == [d for d, _ in runs["hybrid"][qid][2:]]

    caplog.clear()  # another fusion: the hybrid run and its reranking are redone, nothing upstream
    assert main([*base, "--rerank-depth", "2", "--fusion", "interpolation", "--alpha", "0.1"]) == 0
    assert f"building {out / 'run.hybrid.trec'}" in caplog.text and f"reusing {out / 'run.bm25.trec'}" in caplog.text
    assert (out / "run.bm25.trec").stat().st_mtime_ns == mtimes["run.bm25.trec"]
    hybrid = read_run(out / "run.hybrid.trec")
    assert hybrid == fuse_runs([runs["bm25"], runs["repllama"]], "interpolation", alpha=0.1, k=1000)


@pytest.mark.slow
def test_splits_share_one_index_dir(tiny_beir, tiny_lora, tmp_path, caplog):
    """Every split of a corpus reads the same indexes: the second split builds its runs, never an index."""
    import shutil

    dataset = tmp_path / "beir"
    shutil.copytree(tiny_beir, dataset)
    shutil.copy(dataset / "qrels" / "test.tsv", dataset / "qrels" / "dev.tsv")
    shared = tmp_path / "indexes"
    slug = model_slug(str(tiny_lora))

    def run(split):
        flags = ["--dataset", str(dataset), "--split", split, "--output-dir", str(tmp_path / split)]
        flags += ["--index-dir", str(shared), "--stages", "bm25,repllama", "--retriever", str(tiny_lora)]
        assert main([*flags, "--batch-size", "4"]) == 0

    run("test")
    indexes = [shared / "index.lucene", shared / f"index.{slug}"]
    mtimes = [p.stat().st_mtime_ns for p in indexes]
    # A reinstalled model or a re-synced corpus: same bytes, new mtimes. Nothing may be rebuilt for that.
    for file in [dataset / "corpus.jsonl", *(p for p in tiny_lora.iterdir() if p.is_file())]:
        file.write_bytes(file.read_bytes())
    caplog.clear()
    caplog.set_level(logging.INFO)
    run("dev")
    assert [p.stat().st_mtime_ns for p in indexes] == mtimes
    assert f"reusing {shared / 'index.lucene'}" in caplog.text and f"reusing {shared / f'index.{slug}'}" in caplog.text
    for split in ("test", "dev"):
        assert sorted(p.name for p in (tmp_path / split).glob("index.*")) == []
        assert (tmp_path / split / "run.repllama.trec").exists()
    dev = json.loads((tmp_path / "dev" / "metrics.json").read_text())["metrics"]
    test = json.loads((tmp_path / "test" / "metrics.json").read_text())["metrics"]
    assert dev == test  # same qrels, same indexes: the same scores


def test_file_fingerprint_follows_content_not_mtime(tmp_path, monkeypatch):
    import os

    from pyserini_llama import cache

    file = tmp_path / "adapter_model.safetensors"
    file.write_bytes(b"weights")
    before = cache.file_fingerprint(file)
    os.utime(file, ns=(1, 1))
    assert cache.file_fingerprint(file) == before  # touched or re-copied: still the same model
    file.write_bytes(b"retrained")
    assert cache.file_fingerprint(file) != before
    monkeypatch.setattr(cache, "CONTENT_FINGERPRINT_MAX_BYTES", 4)  # too big to read: path, size, mtime
    assert cache.file_fingerprint(file) == [str(file.resolve()), 9, file.stat().st_mtime_ns]

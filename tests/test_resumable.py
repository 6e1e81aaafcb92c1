"""Resumable and distributed encoding (issue 10, items 3 and 4).

Real processes are SIGKILLed at seeded points (``$PYSERINI_LLAMA_KILL_AFTER_COMMITS``: the process
kills itself right after its Kth commit, a finished chunk or a partial chunk's batches), rerun, and
their output compared byte for byte with an uninterrupted run. ``--commit-seconds 0`` commits after
every batch, so kill points land both between chunks and inside one.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
WORDS = "lobster roll panda bear genes proteins cells china forest fox dog sandwich claims mutations".split()
N_DOCS, N_QUERIES = 40, 30


def _env(**extra: str) -> dict[str, str]:
    drop = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "PYSERINI_LLAMA_KILL_AFTER_COMMITS")
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env.update(PYTHONPATH=str(REPO), OMP_NUM_THREADS="1", **extra)
    return env


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    """40 documents and 30 queries of varied lengths, so batches within a chunk differ in shape."""
    rng = random.Random(7)
    root = tmp_path_factory.mktemp("resumable-corpus")
    with open(root / "corpus.jsonl", "w") as f:
        for i in range(N_DOCS):
            text = " ".join(rng.choices(WORDS, k=rng.randint(3, 40)))
            f.write(json.dumps({"_id": f"d{i}", "title": rng.choice(WORDS), "text": text}) + "\n")
    (root / "topics.tsv").write_text(
        "".join(f"q{i}\t{' '.join(rng.choices(WORDS, k=rng.randint(1, 12)))}\n" for i in range(N_QUERIES))
    )
    return root


def _encode_cmd(model: Path, corpus: Path, output: Path, *extra: str) -> list[str]:
    return [
        sys.executable, "-m", "pyserini_llama.encode",
        "input", "--corpus", str(corpus / "corpus.jsonl"),
        "output", "--embeddings", str(output), "--to-faiss",
        "encoder", "--encoder", str(model), "--max-length", "48", "--batch-size", "3",
        "--chunk-size", "10", "--commit-seconds", "0", *extra,
    ]  # fmt: skip


def _search_cmd(model: Path, corpus: Path, index: Path, output: Path) -> list[str]:
    return [
        sys.executable, "-m", "pyserini_llama.search.faiss", "--index", str(index),
        "--topics", str(corpus / "topics.tsv"), "--encoder", str(model), "--output", str(output),
        "--hits", "10", "--max-length", "16", "--batch-size", "3", "--chunk-size", "8", "--commit-seconds", "0",
    ]  # fmt: skip


def _run(cmd: list[str], **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, env=_env(**env), capture_output=True, text=True, cwd=REPO)


def _killed_then_resumed(cmd: list[str], output: Path, kill_points: list[int]) -> str:
    """Run ``cmd`` once per kill point, each killed after that many commits, then to the end;
    returns the last run's log."""
    work = output.with_name(output.name + ".partial")
    chunks_before = 0
    for k in kill_points:
        proc = _run(cmd, PYSERINI_LLAMA_KILL_AFTER_COMMITS=str(k))
        assert proc.returncode == -signal.SIGKILL, (k, proc.returncode, proc.stderr[-3000:])
        assert not output.exists()
        files = {p.name for p in work.glob("chunk-*")}
        assert files, f"nothing committed before the kill after {k} commits"
        done = sum(1 for name in files if not name.endswith(".partial.npy"))
        assert done >= chunks_before  # committed work survives the kill
        chunks_before = done
    proc = _run(cmd)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert not work.exists()  # removed once the output is written
    return proc.stderr


def _index_bytes(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir())}


@pytest.fixture(scope="module")
def baseline_index(tiny_llama, corpus, tmp_path_factory) -> Path:
    """An uninterrupted encode: the reference bytes."""
    index = tmp_path_factory.mktemp("baseline") / "index"
    proc = _run(_encode_cmd(tiny_llama, corpus, index))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "resumed" not in proc.stderr
    return index


def test_encode_killed_at_seeded_points_resumes_to_identical_index(tiny_llama, corpus, baseline_index, tmp_path):
    # 40 docs / chunk 10 = 4 chunks, each 4 batches of <= 3 rows: 3 partial commits + 1 chunk commit
    # per chunk, 16 commits in all. Three seeded kills (each process counts its own commits).
    rng = random.Random(10)
    kill_points = [rng.randint(1, 5) for _ in range(3)]
    log = _killed_then_resumed(_encode_cmd(tiny_llama, corpus, tmp_path / "index"), tmp_path / "index", kill_points)
    assert "reused" in log
    assert _index_bytes(tmp_path / "index") == _index_bytes(baseline_index)


@pytest.mark.slow  # search starts Pyserini's JVM in each of its 4 processes
def test_search_killed_at_seeded_points_resumes_to_identical_run(tiny_llama, corpus, baseline_index, tmp_path):
    # 30 queries / chunk 8 = 4 chunks; a kill in the middle of a chunk and one on a chunk boundary.
    rng = random.Random(11)
    kill_points = [rng.randint(1, 2), 3]
    expected = tmp_path / "expected.trec"
    proc = _run(_search_cmd(tiny_llama, corpus, baseline_index, expected))
    assert proc.returncode == 0, proc.stderr[-3000:]
    run = tmp_path / "run.trec"
    log = _killed_then_resumed(_search_cmd(tiny_llama, corpus, baseline_index, run), run, kill_points)
    assert "reused" in log
    assert run.read_bytes() == expected.read_bytes()


def test_changed_settings_discard_stale_chunks(tiny_llama, corpus, tmp_path, caplog):
    """A work directory made with other settings is never reused: same vectors as a fresh encode."""
    from pyserini_llama.data.corpus import read_corpus
    from pyserini_llama.encode import encode_corpus
    from pyserini_llama.encoders.repllama import RepLLaMAEncoder

    docs = list(read_corpus(corpus / "corpus.jsonl").values())
    encoder = RepLLaMAEncoder(str(tiny_llama), batch_size=3)
    out = tmp_path / "index"
    encode_corpus(encoder, docs, out, to_faiss=True, max_length=48, chunk_size=8, keep_work=True)
    work = tmp_path / "index.partial"
    assert len(list(work.glob("chunk-*.npy"))) == 5  # 40 / 8
    stale = np.load(work / "chunk-000000.npy")
    caplog.set_level("WARNING")
    encode_corpus(encoder, docs, out, to_faiss=True, max_length=12, chunk_size=8)
    assert "discarding its 5 file(s)" in caplog.text
    assert not work.exists()
    import faiss

    vectors = faiss.read_index(str(out / "index")).reconstruct_n(0, 8)
    fresh = encoder.encode_passages(docs[:8], max_length=12, batch_size=3)
    np.testing.assert_array_equal(vectors, fresh)  # one chunk = encode_texts' own batching, bit for bit
    assert not np.allclose(vectors, stale)


def test_in_memory_model_is_not_resumed(tiny_llama, tmp_path):
    """An already loaded model (training's evaluation) has no identity to key chunks on."""
    from transformers import AutoModel, AutoTokenizer

    from pyserini_llama.encoders.repllama import RepLLaMAEncoder
    from pyserini_llama.encoders.resumable import encode_resumable

    model, tok = AutoModel.from_pretrained(tiny_llama), AutoTokenizer.from_pretrained(tiny_llama)
    encoder = RepLLaMAEncoder.from_model(model, tok)
    assert encoder.fingerprint() is None
    vectors = encode_resumable(encoder, ["a b", "c"], 16, tmp_path / "work", chunk_size=1)
    assert vectors.shape == (2, encoder.dimension) and not (tmp_path / "work").exists()


def _torchrun(args: list[str]) -> subprocess.CompletedProcess:
    torchrun = Path(sys.executable).with_name("torchrun")
    cmd = [str(torchrun), "--standalone", "--nproc_per_node", "2", "-m", *args[2:]]
    return subprocess.run(cmd, env=_env(), capture_output=True, text=True, cwd=REPO, timeout=300)


def test_torchrun_with_aligned_chunks_is_bit_identical(tiny_llama, corpus, baseline_index, tmp_path):
    """2 gloo processes, 20 documents each: --chunk-size 10 divides the shards, so every batch is the
    single process's batch and rank 0's merged flat index equals the single-process one byte for byte."""
    merged = tmp_path / "merged"
    proc = _torchrun(_encode_cmd(tiny_llama, corpus, merged))
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert not merged.with_name("merged.shards").exists()
    assert _index_bytes(merged) == _index_bytes(baseline_index)


@pytest.mark.slow
def test_torchrun_unaligned_chunks_merge_within_float_noise(tiny_llama, corpus, baseline_index, tmp_path):
    """--chunk-size 8 does not divide the shards' 20 documents, so their last chunks batch unlike the
    single process: docids identical, vectors within 1e-5; the merge builds the --index-type asked."""
    import faiss

    out = tmp_path / "index.hnsw"
    cmd = _encode_cmd(tiny_llama, corpus, out, "--chunk-size", "8")
    cmd[cmd.index("--to-faiss")] = "--index-type"
    cmd.insert(cmd.index("--index-type") + 1, "hnsw")
    proc = _torchrun(cmd)
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert not out.with_name("index.hnsw.shards").exists()
    assert (out / "docid").read_text() == (baseline_index / "docid").read_text()
    merged = faiss.read_index(str(out / "index"))
    assert isinstance(faiss.downcast_index(merged), faiss.IndexHNSWFlat)
    single = faiss.read_index(str(baseline_index / "index")).reconstruct_n(0, N_DOCS)
    np.testing.assert_allclose(merged.reconstruct_n(0, N_DOCS), single, atol=1e-5, rtol=0)


def test_torchrun_refuses_explicit_shards(tiny_llama, corpus, tmp_path):
    cmd = _encode_cmd(tiny_llama, corpus, tmp_path / "x")
    cmd[cmd.index("--corpus") + 2 : cmd.index("--corpus") + 2] = ["--shard-id", "0", "--shard-num", "2"]
    proc = _torchrun(cmd)
    assert proc.returncode != 0 and "drop --shard-id/--shard-num" in proc.stderr


def test_merging_segmented_shards_gives_the_single_process_manifest(tiny_llama, corpus, tmp_path):
    """MaxP shards (``encode --shard-id/--shard-num --segment``) merge into one index whose docids and
    ``segments.json`` equal a single-process encode's; mixing segmented and plain shards is an error."""
    from pyserini_llama.data.corpus import read_corpus
    from pyserini_llama.encode import encode_corpus, shard
    from pyserini_llama.encoders.repllama import RepLLaMAEncoder
    from pyserini_llama.indexing import IndexOptions, IndexTypeError
    from pyserini_llama.indexing.shards import build_from_shards
    from pyserini_llama.modeling.segments import Segmenter

    docs = list(read_corpus(corpus / "corpus.jsonl").values())
    encoder = RepLLaMAEncoder(str(tiny_llama), batch_size=4)
    maxp = Segmenter(10, 5, "maxp")
    encode_corpus(encoder, docs, tmp_path / "single", segments=maxp, to_faiss=True, max_length=24, resume=False)
    shards = [tmp_path / f"shard{i}" for i in range(3)]
    for i, out in enumerate(shards):
        encode_corpus(encoder, shard(docs, i, 3), out, segments=maxp, to_faiss=True, max_length=24)
    build_from_shards(shards, tmp_path / "merged", IndexOptions("flat"))
    for name in ("docid", "segments.json"):
        assert (tmp_path / "merged" / name).read_text() == (tmp_path / "single" / name).read_text()
    (shards[1] / "segments.json").unlink()
    with pytest.raises(IndexTypeError, match="some shards are segmented"):
        build_from_shards(shards, tmp_path / "bad", IndexOptions("flat"))

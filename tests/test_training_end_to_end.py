"""Issue 4's CI path through the CLIs: mine SciFact train with BM25, train a tiny RepLLaMA, encode, search, evaluate."""

import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow


def cli(*args):
    result = subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True, timeout=1200)
    assert result.returncode == 0, f"{args[0]} failed:\n{result.stderr[-4000:]}"
    return result.stdout


def test_mine_train_encode_search_evaluate(shared_data, tiny_llama, tmp_path):
    scifact = shared_data / "beir" / "scifact"
    train_file, model, index, run = (tmp_path / n for n in ("train.jsonl", "model", "index", "run.trec"))
    cli(
        "pyserini_llama.mine",
        "--dataset",
        str(scifact),
        "--split",
        "train",
        "--first-stage",
        "bm25",
        "--depth",
        "20",
        "--negatives",
        "3",
        "--index-dir",
        str(tmp_path / "indexes"),
        "--output",
        str(train_file),
    )
    lines = [json.loads(line) for line in train_file.read_text().splitlines()]
    assert len(lines) > 700 and all(len(x["negative_passages"]) == 3 for x in lines)

    cli(
        "pyserini_llama.train",
        "repllama",
        "--model",
        str(tiny_llama),
        "--train-data",
        str(train_file),
        "--output-dir",
        str(model),
        "--max-steps",
        "4",
        "--per-device-batch-size",
        "4",
        "--group-size",
        "4",
        "--query-max-length",
        "16",
        "--passage-max-length",
        "48",
        "--warmup-steps",
        "1",
        "--lora-r",
        "4",
        "--lora-alpha",
        "8",
        "--logging-steps",
        "1",
        "--device",
        "cpu",
    )
    assert (model / "adapter_config.json").is_file()

    cli(
        "pyserini_llama.encode",
        "input",
        "--corpus",
        str(scifact),
        "output",
        "--embeddings",
        str(index),
        "--to-faiss",
        "encoder",
        "--encoder",
        str(model),
        "--max-length",
        "48",
        "--batch-size",
        "64",
    )
    cli(
        "pyserini_llama.search.faiss",
        "--index",
        str(index),
        "--topics",
        "beir-v1.0.0-scifact-test",
        "--topics-dir",
        str(shared_data / "topics-and-qrels"),
        "--encoder",
        str(model),
        "--max-length",
        "16",
        "--output",
        str(run),
        "--hits",
        "100",
        "--batch-size",
        "64",
    )
    metrics = json.loads(
        cli(
            "pyserini_llama.eval",
            "--qrels",
            str(scifact / "qrels" / "test.tsv"),
            "--run",
            str(run),
            "--json",
            "--metrics",
            "ndcg@10",
            "recall@100",
        )
    )
    assert len({line.split()[0] for line in run.read_text().splitlines()}) == 300
    assert 0.0 <= metrics["ndcg@10"] <= 1.0 and 0.0 <= metrics["recall@100"] <= 1.0

"""RankLLaMA's lengths mean the same in ``train`` and ``rerank``: ``--query-max-length`` = query tokens,
``--max-length`` = the whole pair (query + document + template tokens). Training builds its pairs with the
serving reranker's own truncation and records both lengths in ``input_format.json``; serving uses them
when the caller gives none (a model without the record: 32 / 196)."""

from __future__ import annotations

import json

import pytest
from test_training import synthetic_task

from pyserini_llama.defaults import QUERY_MAX_LENGTH, RERANK_MAX_LENGTH, RERANK_TRAIN_MAX_LENGTH
from pyserini_llama.errors import PyseriniLlamaError
from pyserini_llama.modeling.formatting import INPUT_FORMAT_FILE
from pyserini_llama.rerankers.rankllama import RankLLaMAReranker
from pyserini_llama.train.__main__ import main as train_main

LONG = " ".join(f"word{i}" for i in range(400))


def _train(tiny_llama, tmp_path, *extra):
    synthetic_task(tmp_path / "train.jsonl", phrasings=1)
    out = tmp_path / "model"
    argv = ["rankllama", "--model", str(tiny_llama), "--train", str(tmp_path / "train.jsonl"), "--output", str(out),
            "--group-size", "2", "--per-device-batch-size", "4", "--max-steps", "1", "--device", "cpu", *extra]  # fmt: skip
    assert train_main(argv) == 0
    return out


def test_paper_defaults_cover_query_32_plus_passage_196():
    assert (QUERY_MAX_LENGTH, RERANK_MAX_LENGTH, RERANK_TRAIN_MAX_LENGTH) == (32, 196, 228)


def test_training_records_its_lengths_and_serving_uses_them(tiny_llama, tmp_path):
    out = _train(tiny_llama, tmp_path, "--query-max-length", "16", "--max-length", "40")
    assert json.loads((out / INPUT_FORMAT_FILE).read_text()) == {
        "text_case": "as-is",
        "query_max_length": 16,
        "max_length": 40,
    }
    served = RankLLaMAReranker(str(out))
    assert (served.query_max_length, served.max_length) == (16, 40)
    assert len(served.encode_pairs(*served.format_pairs([(LONG, LONG)]))[0]) == 40
    explicit = RankLLaMAReranker(str(out), query_max_length=8, max_length=30)  # the caller's choice wins
    assert (explicit.query_max_length, explicit.max_length) == (8, 30)


def test_training_defaults_are_recorded(tiny_llama, tmp_path):
    out = _train(tiny_llama, tmp_path)
    record = json.loads((out / INPUT_FORMAT_FILE).read_text())
    assert (record["query_max_length"], record["max_length"]) == (32, 228)
    assert json.loads((out / "training_args.json").read_text())["max_length"] == 228


def test_training_pairs_are_the_served_pairs(tiny_llama, tmp_path):
    """The collator's pairs are the serving reranker's, token for token (one truncation function)."""
    from pyserini_llama.training import TrainingArguments
    from pyserini_llama.training.dataset import TrainGroup, TrainPassage
    from pyserini_llama.training.trainer import Trainer

    out = _train(tiny_llama, tmp_path, "--query-max-length", "16", "--max-length", "40")
    args = TrainingArguments(
        "rankllama", model=str(tiny_llama), train=[str(tmp_path / "train.jsonl")], output=str(tmp_path / "again"),
        query_max_length=16, max_length=40, group_size=2, per_device_batch_size=4, max_steps=1, device="cpu",
    )  # fmt: skip
    collator = Trainer(args)._collator()
    group = TrainGroup(LONG, (TrainPassage("d1", LONG), TrainPassage("d2", "short text", "a title")))
    served = RankLLaMAReranker(str(out))
    expected = served.encode_pairs(*served.format_pairs([(group.query, p) for p in group.passages]))
    assert collator.sequences([group]) == expected and len(expected[0]) == 40


def test_a_model_without_a_record_is_served_at_32_196(tiny_rank_lora):
    reranker = RankLLaMAReranker(str(tiny_rank_lora))
    assert (reranker.query_max_length, reranker.max_length) == (32, 196)


def test_passage_max_length_is_refused_for_the_reranker(tmp_path):
    argv = ["rankllama", "--model", "m", "--train", "x.jsonl", "--output", str(tmp_path / "o"), "--device", "cpu"]
    with pytest.raises(PyseriniLlamaError, match=r"--passage-max-length.*--max-length 96"):
        train_main([*argv, "--query-max-length", "32", "--passage-max-length", "64"])
    with pytest.raises(PyseriniLlamaError, match="--max-length is RankLLaMA's"):
        train_main(["repllama", *argv[1:], "--max-length", "96"])


def test_shipped_reranker_is_served_at_what_it_was_trained_with():
    """Trained with --query-max-length 32 --passage-max-length 64 (pairs of 32 + 64 = 96 tokens)."""
    reranker = RankLLaMAReranker("rankllama-smollm2-135m")
    assert (reranker.query_max_length, reranker.max_length) == (32, 96)


def test_rerank_cli_and_pipeline_default_to_the_record(tiny_llama, tiny_rank_lora, tmp_path):
    from pyserini_llama.modeling.loading import serving_lengths
    from pyserini_llama.rerank.__main__ import build_parser

    out = _train(tiny_llama, tmp_path, "--query-max-length", "16", "--max-length", "40")
    args = build_parser().parse_args(
        ["--topics", "t", "--run", "r", "--corpus", "c", "--reranker", str(out), "--output", "o"]
    )
    assert (args.query_max_length, args.max_length) == (None, None)  # the model decides
    assert serving_lengths(str(out)) == (16, 40)
    assert serving_lengths(str(out), max_length=64) == (16, 64)
    assert serving_lengths(str(tiny_rank_lora)) == (32, 196)

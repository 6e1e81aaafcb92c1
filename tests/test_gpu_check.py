"""benchmarks/gpu_check.py must run the moment a GPU is lent; its --cpu-smoke mode keeps it from rotting.

The smoke mode takes the same code paths (RepLLaMA encoder, RankLLaMA reranker, fidelity, torchrun
training step) with tiny shapes on CPU; these tests fail if any part errors or reports nonsense.
"""

import importlib.util
import json
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_check.py"


def load_script():
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_cpu_smoke_measures_every_part(tmp_path):
    assert load_script().main(["--cpu-smoke", "--skip", "ddp", "--out", str(tmp_path)]) == 0
    results = json.loads((tmp_path / "gpu_check.json").read_text())
    assert results["errors"] == {}
    assert results["gemm"]["peak_tflops"] > 0
    model = results["model"]
    assert model["encode"]["tokens_per_s"] > 0 and model["encode"]["finite"]
    assert model["rerank"]["pairs_per_s"] > 0 and model["rerank"]["finite"]
    same = results["fidelity"]["cpu_float32_vs_cpu_float32"]
    assert same["embedding_max_abs_diff"] < 1e-6 and same["score_max_abs_diff"] < 1e-5
    bf16 = results["fidelity"]["cpu_bfloat16_vs_cpu_float32"]
    assert 0 < bf16["embedding_max_abs_diff"] < 0.1
    report = (tmp_path / "gpu_check.md").read_text()
    assert "RepLLaMA encode" in report and "RankLLaMA rerank" in report


@pytest.mark.slow
def test_cpu_smoke_ddp_step_runs_the_training_cli_under_torchrun(tmp_path):
    """The torchrun + `python -m pyserini_llama.train` step (gloo here, nccl on the GPU machine)."""
    code = load_script().main(["--cpu-smoke", "--skip", "gemm", "model", "fidelity", "--out", str(tmp_path)])
    ddp = json.loads((tmp_path / "gpu_check.json").read_text())["ddp"]
    assert code == 0, ddp["log_tail"]
    assert ddp["backend"] == "gloo" and ddp["returncode"] == 0 and ddp["adapter_written"]

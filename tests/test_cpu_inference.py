"""CPU inference set-up: the attention kernel, torch threads, ``--dtype`` parsing and ``auto``'s measured
choice (``precision/cpu.py``, ``precision/speed.py``, ``precision/__init__.py``)."""

from __future__ import annotations

import argparse

import numpy as np
import pytest
import torch

from pyserini_llama import RankLLaMAReranker, RepLLaMAEncoder
from pyserini_llama.errors import ModelLoadError
from pyserini_llama.modeling.loading import load_backbone
from pyserini_llama.modeling.tokens import pad_right
from pyserini_llama.precision import parse_precision, precision_arg, resolve_precision, speed, weights_dtype
from pyserini_llama.precision.cpu import default_threads, physical_cores, set_torch_threads


def test_models_load_with_sdpa_and_match_eager(tiny_lora):
    sdpa, tokenizer = load_backbone(str(tiny_lora))
    eager, _ = load_backbone(str(tiny_lora), attn_implementation="eager")
    assert sdpa.config._attn_implementation == "sdpa"
    assert eager.config._attn_implementation == "eager"
    ids = [tokenizer(t)["input_ids"] for t in ("a lobster roll", "the giant panda is a bear of China", "fox")]
    input_ids, mask = pad_right(ids, 0)
    with torch.inference_mode():
        a = sdpa(input_ids=input_ids, attention_mask=mask).last_hidden_state
        b = eager(input_ids=input_ids, attention_mask=mask).last_hidden_state
    real = mask.bool()
    assert (a[real] - b[real]).abs().max() < 1e-5


def test_reranker_loads_with_sdpa(tiny_rank_lora):
    assert RankLLaMAReranker(str(tiny_rank_lora)).model.config._attn_implementation == "sdpa"


def test_threads_default_to_physical_cores_unless_omp_num_threads(monkeypatch):
    before = torch.get_num_threads()
    try:
        monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
        assert default_threads() == physical_cores() >= 1
        assert set_torch_threads() == physical_cores() == torch.get_num_threads()
        monkeypatch.setenv("OMP_NUM_THREADS", "1")
        assert set_torch_threads() == 1 == torch.get_num_threads()
        assert set_torch_threads(2) == 2 == torch.get_num_threads()
        with pytest.raises(ValueError):
            set_torch_threads(0)
    finally:
        torch.set_num_threads(before)


def test_parse_precision():
    assert parse_precision("int8") == ("int8", ())
    assert parse_precision("bfloat16") == ("bfloat16", ())
    assert parse_precision("auto") == ("auto", ())
    assert parse_precision("auto+int8") == ("auto", ("int8",))
    for bad in ("int4", "float32+int8", "auto+int4", ""):
        with pytest.raises(ModelLoadError, match="unknown --dtype"):
            parse_precision(bad)
    with pytest.raises(argparse.ArgumentTypeError):
        precision_arg("fp8")
    assert weights_dtype("int8") == "float32" and weights_dtype("bfloat16") == "bfloat16"


def test_gemm_rates_are_measured_once_and_cached(tmp_path, monkeypatch):
    monkeypatch.setenv("PYSERINI_LLAMA_CACHE", str(tmp_path))
    entry = speed.gemm_rates(64, 128)
    assert set(entry["rates"]) == set(speed.MODES)
    assert all(rate > 0 for rate in entry["rates"].values())
    assert entry["shape"] == [speed.ROWS, 64, 128] and entry["threads"] == torch.get_num_threads()
    cached = (tmp_path / speed.CACHE_FILE).read_text()
    assert speed.machine_key() in cached

    def no_measuring(*args, **kwargs):
        raise AssertionError("measured again")

    monkeypatch.setattr(speed, "measure_gemm_rates", no_measuring)
    assert speed.gemm_rates(64, 128) == entry
    with pytest.raises(AssertionError, match="measured again"):
        speed.gemm_rates(64, 128, refresh=True)


def test_measurement_fits_its_budget():
    entry = speed.measure_gemm_rates(64, 128, budget_s=0.1)
    assert entry["seconds"] < 1.0


def test_choose_precision_needs_a_verdict_or_permission():
    rates = {"float32": 80.0, "bfloat16": 10.0, "float16": 12.0, "int8": 150.0}
    assert speed.PRECISION_VERDICTS["float32"] is True
    if not speed.PRECISION_VERDICTS["int8"]:  # judged not acceptable (reproduce/judge_precision.py)
        assert speed.choose_precision(rates) == "float32"
    assert speed.choose_precision(rates, allow=("int8",)) == "int8"
    assert speed.choose_precision({**rates, "int8": 85.0}, allow=("int8",)) == "float32"  # within noise
    assert speed.choose_precision({**rates, "int8": 40.0}, allow=("int8",)) == "float32"


def test_auto_times_nothing_when_only_float32_is_acceptable(tiny_lora, monkeypatch):
    """With float32 the only acceptable precision no measurement can change the choice: none is made."""

    def no_timing(*args, **kwargs):
        raise AssertionError("timed GEMMs although only float32 can win")

    monkeypatch.setattr(speed, "gemm_rates", no_timing)
    monkeypatch.setattr(speed, "measure_gemm_rates", no_timing)
    monkeypatch.setattr(speed, "PRECISION_VERDICTS", {"float32": True, "int8": False, "bfloat16": None})
    assert resolve_precision("auto", model=str(tiny_lora)) == "float32"
    with pytest.raises(AssertionError, match="timed GEMMs"):  # int8 allowed: a second candidate, so it measures
        resolve_precision("auto+int8", model=str(tiny_lora))


def test_auto_resolves_by_measurement_and_loads_it(tiny_lora, monkeypatch):
    measured = {"rates": {"float32": 50.0, "bfloat16": 5.0, "float16": 5.0, "int8": 100.0}}
    measured |= {"shape": [256, 64, 128], "threads": 1}
    monkeypatch.setattr(speed, "gemm_rates", lambda hidden, intermediate: measured)
    assert resolve_precision("auto+int8", model=str(tiny_lora)) == "int8"
    assert resolve_precision("auto", device="cuda") == "bfloat16"
    assert resolve_precision("float16") == "float16"
    encoder = RepLLaMAEncoder(str(tiny_lora), dtype="auto+int8")
    assert encoder.precision == "int8" and encoder.int8 is not None
    vectors = encoder.encode_passages(["a lobster roll is a sandwich"])
    assert np.isfinite(vectors).all()

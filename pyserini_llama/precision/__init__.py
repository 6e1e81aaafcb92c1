"""Inference precision: what ``--dtype`` accepts, what ``auto`` resolves to, and loading a model in it.

Training and export know weight dtypes only (``modeling.loading.DTYPES``); encoding and reranking also take

* ``int8``: weights int8 per output channel, activations quantised per token at run time, SmoothQuant
  smoothing calibrated on the texts being processed (``precision/int8.py``; CPU only);
* ``auto``: the fastest precision measured on this machine among those judged accurate enough
  (``precision/speed.py``); bfloat16 on a GPU. ``auto+int8`` also lets it pick int8 (judged not accurate
  enough for the default: the caller accepts that).

The subpackage: this module (the ``--dtype`` option and loading a model in a precision), ``int8`` (SmoothQuant
int8 quantisation), ``speed`` (which precision is fastest on this CPU) and ``cpu`` (what this CPU is, torch
threads). See docs/cpu.md for the measurements behind the choices.

This module imports only the standard library at module level: Pyserini's search commands import it
for their ``--rerank-dtype`` option at start-up.
"""

from __future__ import annotations

import argparse
import logging
from dataclasses import dataclass
from typing import Any

from ..errors import ModelLoadError
from ..modeling.loading import DTYPES, ModelSource

logger = logging.getLogger(__name__)

INT8 = "int8"
AUTO = "auto"
#: Concrete inference precisions (``auto`` resolves to one of these).
INFERENCE_PRECISIONS = (*DTYPES, INT8)
#: What ``--dtype`` shows in ``--help``.
PRECISION_METAVAR = "{" + ",".join((*INFERENCE_PRECISIONS, AUTO, f"{AUTO}+{INT8}")) + "}"
PRECISION_HELP = (
    "float32 (default on CPU), bfloat16 (default on GPU), float16, int8 (CPU: SmoothQuant int8, calibrated on "
    "the input), or auto: the fastest precision measured on this machine among those judged as accurate as "
    "float32 (auto+int8: int8 may be picked too, accepting its small loss)"
)


def parse_precision(text: str) -> tuple[str, tuple[str, ...]]:
    """``(precision, allowed)``: ``"int8"`` -> ``("int8", ())``; ``"auto+int8"`` -> ``("auto", ("int8",))``."""
    head, *extra = str(text).split("+")
    if head == AUTO and all(mode in INFERENCE_PRECISIONS for mode in extra):
        return AUTO, tuple(extra)
    if not extra and head in INFERENCE_PRECISIONS:
        return head, ()
    raise ModelLoadError(f"unknown --dtype {text!r}; choose one of {PRECISION_METAVAR[1:-1].replace(',', ', ')}")


def precision_arg(text: str) -> str:
    """``type=`` for argparse ``--dtype`` options: checks the value, keeps it as written."""
    try:
        parse_precision(text)
    except ModelLoadError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def weights_dtype(precision: str) -> str:
    """The dtype to load weights in for a resolved precision (int8 is quantised from float32)."""
    return "float32" if precision == INT8 else precision


def check_precision(precision: str, device: str = "cpu") -> tuple[str, tuple[str, ...]]:
    """:func:`parse_precision`, and refuse int8 off the CPU: what can be told without the model."""
    mode, allowed = parse_precision(precision)
    if mode == INT8 and not str(device).startswith("cpu"):
        raise ModelLoadError(f"--dtype int8 runs on CPU only, not {device}; use bfloat16 on a GPU")
    return mode, allowed


def resolve_precision(
    precision: str, *, device: str = "cpu", model: str | ModelSource | None = None, base_model: str | None = None
) -> str:
    """A concrete precision: ``auto`` becomes bfloat16 on a GPU, else the fastest acceptable one measured
    on this CPU for ``model``'s shapes (its config is read, not its weights)."""
    mode, allowed = check_precision(precision, device)
    if mode != AUTO:
        return mode
    if not str(device).startswith("cpu"):
        logger.info("--dtype %s on %s: bfloat16", precision, device)
        return "bfloat16"
    if model is None:
        raise ValueError("resolving --dtype auto needs the model (its shapes decide the measurement)")
    from ..modeling.loading import model_config
    from .speed import acceptable_precisions, choose_precision, gemm_rates

    candidates = acceptable_precisions(allowed)
    if candidates == ["float32"]:  # nothing to choose between: timing GEMMs could not change the answer
        logger.info("--dtype %s: float32 (the only precision judged acceptable)", precision)
        return "float32"
    config = model_config(model, base_model)
    entry = gemm_rates(config.hidden_size, config.intermediate_size)
    chosen = choose_precision(entry["rates"], allowed)
    logger.info(
        "--dtype %s: %s (GEMM %dx%dx%d on %d threads: %s; acceptable: %s)",
        precision,
        chosen,
        *entry["shape"],
        entry["threads"],
        ", ".join(f"{m} {r:.1f} GFLOP/s" for m, r in entry["rates"].items()),
        ", ".join(candidates),
    )
    return chosen


@dataclass
class InferenceModel:
    """A model loaded for inference: its resolved precision, for int8 the pending quantiser, and where it came
    from, so that callers reading more of the model (``loading.read_input_format``) look nothing up again."""

    model: Any
    tokenizer: Any
    precision: str
    int8: Any = None  # int8.Int8Quantizer until calibrated, then still describing the quantisation
    source: ModelSource | None = None


def load_for_inference(
    name: str,
    task: str,
    *,
    precision: str,
    device: str,
    base_model: str | None = None,
    tokenizer_name: str | None = None,
) -> InferenceModel:
    """Resolve ``precision`` and load ``name`` in it (``loading.load_backbone``: LoRA merged, eval mode).

    For int8 the model comes back in float32 with an ``Int8Quantizer`` attached: quantising needs
    calibration inputs, which the encoder or reranker supplies before its first forward pass.

    The model is looked up once (for a hub id, one request): the precision and the weights are read from that
    one source, returned for whatever else the caller reads of the model.
    """
    from ..modeling.loading import load_backbone, resolve_model_source

    check_precision(precision, device)  # a wrong --dtype is reported before the model is looked up
    source = resolve_model_source(name, base_model)
    resolved = resolve_precision(precision, device=device, model=source)
    model, tokenizer = load_backbone(
        source,
        task,
        dtype=weights_dtype(resolved),
        device=device,
        tokenizer_name=tokenizer_name,
    )
    int8 = None
    if resolved == INT8:
        from .int8 import Int8Quantizer

        int8 = Int8Quantizer(model)
    return InferenceModel(model, tokenizer, resolved, int8, source)

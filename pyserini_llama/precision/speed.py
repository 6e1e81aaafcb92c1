"""How fast this CPU multiplies matrices of a model's shapes in each precision, measured once per machine,
and the precision ``--dtype auto`` picks from that.

Why measure instead of reading CPU flags: which precision wins depends on the instruction set and on
the kernels of the torch build. Without a native bf16 dot product (AVX2-only CPUs), bf16/fp16 GEMMs run
several times slower than fp32 and fbgemm's int8 GEMM faster; on a CPU with AMX, bf16 would win
(docs/cpu.md has the measurements). About 0.2 s of GEMMs of the model's own shapes (``rows`` x hidden
times hidden x intermediate, the MLP's first product) settle it. A slow mode is timed on fewer rows, so
that it cannot blow the budget.

Results are cached in ``<cache_dir>/cpu_speed.json`` under the machine (CPU model, speed-relevant flags,
torch version) and then the shape and thread count, so the measurement runs once per machine and model
size. Speed is not the whole story: ``auto`` only picks among precisions judged accurate enough
(:data:`PRECISION_VERDICTS`), or ones the caller explicitly allows.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path

from ..modeling.loading import cache_dir
from .cpu import cpu_model, speed_flags

logger = logging.getLogger(__name__)

MODES = ("float32", "bfloat16", "float16", "int8")
#: Rows of the activation matrix: a batch of a few hundred tokens, what batched encoding feeds each layer.
ROWS = 256
#: Seconds all modes together may take (a slow mode gets its share, on fewer rows).
BUDGET_S = 0.2
#: The weight is cut to at most this many elements (fewer output columns): a 7B model's 4096 x 11008
#: would take longer to fill with random numbers than to time, and the rate barely depends on it.
MAX_WEIGHT_ELEMENTS = 4 * 1024 * 1024
CACHE_FILE = "cpu_speed.json"

#: Whether each precision keeps retrieval quality: nDCG@10 within 0.005 of float32 with the shipped models
#: (``reproduce/judge_precision.py`` and ``reproduce/judge_rankllama_precision.sh`` measure it; docs/cpu.md
#: records the verdicts). True = judged acceptable, False = judged not, None = not judged yet (``auto`` uses a
#: mode that is not True only when the caller allows it: ``--dtype auto+int8``). float32 is the reference.
PRECISION_VERDICTS: dict[str, bool | None] = {
    "float32": True,
    # One verdict governs both models: int8 stays within the bound for RepLLaMA but not for RankLLaMA.
    "int8": False,
    "bfloat16": None,  # not judged; far slower than fp32 on CPUs without native bf16 anyway
    "float16": None,  # not judged; as bfloat16
}
#: A precision must beat float32 by this factor to be chosen over it (timing noise is a few percent).
MIN_GAIN = 1.1


def machine_key() -> str:
    """What the rates depend on besides shape and threads: the CPU and the torch build."""
    import torch

    return f"{cpu_model()} [{' '.join(speed_flags())}] torch {torch.__version__}"


def _kernel(mode: str, weight, x) -> tuple[Callable[[object], object], object]:
    """``(f, x)``: one GEMM of ``mode`` and its input already in the precision it would arrive in."""
    import torch
    from torch.nn import functional

    if mode == "int8":
        from .int8 import Int8Linear

        linear = torch.nn.Linear(weight.shape[1], weight.shape[0], bias=False)
        linear.weight.data = weight
        return Int8Linear(linear), x
    dtype = getattr(torch, mode)
    w = weight.to(dtype)
    return (lambda a: functional.linear(a, w)), x.to(dtype)


def _rate(f: Callable, x, columns: int, seconds: float) -> tuple[float, int]:
    """FLOP/s of ``f`` and the rows it was timed on: 16 rows first; all of ``x`` if that fits the time."""
    rows = min(16, x.shape[0])
    part = x[:rows]
    f(part)  # warm-up: kernel selection, weight packing
    started = time.perf_counter()
    f(part)
    one = time.perf_counter() - started
    if one * x.shape[0] / rows <= seconds / 4:
        part, rows = x, x.shape[0]
        f(part)
    calls, started = 0, time.perf_counter()
    while True:
        f(part)
        calls += 1
        elapsed = time.perf_counter() - started
        if elapsed >= seconds / 2:
            break
    return 2.0 * rows * x.shape[1] * columns * calls / elapsed, rows


def measure_gemm_rates(
    hidden: int, intermediate: int, *, rows: int = ROWS, budget_s: float = BUDGET_S, modes: Iterable[str] = MODES
) -> dict:
    """Time ``x @ W.T`` (x: rows x hidden, W: intermediate x hidden) in each mode, now, uncached.

    Returns ``{"rates": {mode: GFLOP/s}, "rows": {mode: rows timed}, "shape": [rows, hidden, columns],
    "threads", "seconds"}``.
    """
    import torch

    modes = list(modes)
    columns = max(1, min(intermediate, MAX_WEIGHT_ELEMENTS // hidden))
    generator = torch.Generator().manual_seed(0)
    weight = torch.randn(columns, hidden, generator=generator) / hidden**0.5
    x = torch.randn(rows, hidden, generator=generator)
    started = time.perf_counter()
    rates, timed_rows = {}, {}
    with torch.inference_mode():
        for mode in modes:
            f, xm = _kernel(mode, weight, x)
            rate, timed_rows[mode] = _rate(f, xm, columns, budget_s / len(modes))
            rates[mode] = round(rate / 1e9, 3)
    return {
        "rates": rates,
        "rows": timed_rows,
        "shape": [rows, hidden, columns],
        "threads": torch.get_num_threads(),
        "seconds": round(time.perf_counter() - started, 3),
    }


def _cache_path() -> Path:
    return cache_dir() / CACHE_FILE


def _read_cache(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _write_cache(path: Path, data: dict) -> None:
    from ..atomic import write_json_atomic

    write_json_atomic(data, path, sort_keys=True)


def gemm_rates(hidden: int, intermediate: int, *, refresh: bool = False) -> dict:
    """:func:`measure_gemm_rates` for this machine, shape and thread count, measured once and cached.

    A failure to write the cache (read-only home) only costs a re-measurement next time.
    """
    import torch

    path = _cache_path()
    machine = machine_key()
    key = f"{hidden}x{intermediate} @ {torch.get_num_threads()} threads"
    data = _read_cache(path)
    entry = data.get(machine, {}).get(key)
    if entry and not refresh and isinstance(entry.get("rates"), dict):
        return entry
    entry = measure_gemm_rates(hidden, intermediate)
    entry["measured"] = datetime.now(UTC).isoformat(timespec="seconds")
    logger.info(
        "measured GEMM rates on %s, %s (%.2f s): %s",
        machine,
        key,
        entry["seconds"],
        ", ".join(f"{mode} {rate:.1f} GFLOP/s" for mode, rate in entry["rates"].items()),
    )
    data = _read_cache(path)  # another process may have added entries meanwhile
    data.setdefault(machine, {})[key] = entry
    try:
        _write_cache(path, data)
    except OSError as exc:
        logger.warning("could not cache CPU speed in %s: %s", path, exc)
    return entry


def acceptable_precisions(allow: Iterable[str] = ()) -> list[str]:
    """Precisions ``auto`` may pick: judged acceptable, or named in ``allow`` (``auto+int8``: the caller accepts
    int8's quality whatever its verdict, e.g. for a fast first pass where a small loss is fine)."""
    allow = set(allow)
    return [mode for mode, verdict in PRECISION_VERDICTS.items() if verdict or mode in allow]


def choose_precision(rates: dict[str, float], allow: Iterable[str] = ()) -> str:
    """The fastest acceptable precision; float32 unless another beats it by :data:`MIN_GAIN`."""
    best = "float32"
    for mode in acceptable_precisions(allow):
        if mode in rates and rates[mode] > rates.get(best, 0.0) * (MIN_GAIN if best == "float32" else 1.0):
            best = mode
    return best

"""What this CPU is (model name, instruction-set flags, physical cores) and how many threads torch uses.

Why: the speed of each precision depends on the instruction set, so measurements are cached per CPU
(``precision/speed.py``); and LLaMA inference on a CPU is GEMM-bound, where one thread per physical core is
fastest (hyper-threads share the FMA units and only add contention). Torch starts that way, but other
libraries change it behind its back: FAISS's ``omp_set_num_threads`` (Pyserini's ``batch_search`` sets
it to its ``--threads``, default 1) also sets torch's OpenMP pool. The commands that run a model call
:func:`set_torch_threads` before loading it.
"""

from __future__ import annotations

import functools
import logging
import os
import platform
import re

logger = logging.getLogger(__name__)

#: Flags that decide which precisions have fast kernels (bf16/int8 dot products, AMX tiles).
SPEED_FLAGS = ("avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_bf16", "amx_int8")


@functools.cache
def _cpuinfo() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            return f.read()
    except OSError:
        return ""


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``), else what ``platform`` knows."""
    found = re.search(r"^model name\s*:\s*(.+)$", _cpuinfo(), re.MULTILINE)
    return found.group(1).strip() if found else (platform.processor() or platform.machine() or "unknown")


def speed_flags() -> list[str]:
    """Which of :data:`SPEED_FLAGS` the CPU has (empty where ``/proc/cpuinfo`` is missing)."""
    found = re.search(r"^flags\s*:\s*(.+)$", _cpuinfo(), re.MULTILINE)
    flags = set(found.group(1).split()) if found else set()
    return [flag for flag in SPEED_FLAGS if flag in flags]


def physical_cores() -> int:
    """Physical cores (psutil), else distinct (package, core) pairs in ``/proc/cpuinfo``, else logical CPUs."""
    try:
        import psutil

        cores = psutil.cpu_count(logical=False)
        if cores:
            return int(cores)
    except ImportError:
        pass
    pairs = set(re.findall(r"physical id\s*:\s*(\d+).*?core id\s*:\s*(\d+)", _cpuinfo(), re.DOTALL))
    return len(pairs) or os.cpu_count() or 1


def default_threads() -> int:
    """``$OMP_NUM_THREADS`` when the user set it, else one thread per physical core."""
    value = os.environ.get("OMP_NUM_THREADS", "").strip()
    if value.isdigit() and int(value) > 0:
        return int(value)
    return physical_cores()


def set_torch_threads(threads: int | None = None) -> int:
    """Set torch's intra-op threads to ``threads``, or :func:`default_threads`; returns the number set."""
    import torch

    wanted = threads if threads is not None else default_threads()
    if wanted < 1:
        raise ValueError(f"threads must be at least 1, got {wanted}")
    if torch.get_num_threads() != wanted:
        logger.info("torch threads: %d -> %d", torch.get_num_threads(), wanted)
        torch.set_num_threads(wanted)
    return wanted

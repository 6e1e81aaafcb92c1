"""A compact training loop: mixed precision, accumulation, DDP, atomic checkpoints, exact resumption.

Our own loop rather than Hugging Face's ``Trainer`` because the three things that matter here are
short to write and easy to check when they are in one place:

* **Data position is a function of the step.** Step ``s`` reads, on rank ``r``, the queries at
  ``(s mod steps_per_epoch) * global_batch + a * per_device * world + r * per_device`` (micro-batch
  ``a``) of epoch ``s // steps_per_epoch``'s fixed shuffle, and groups are sampled from the seed and
  the query alone (``dataset.py``). Resuming at step ``s`` therefore continues the exact stream;
  an incomplete last batch of an epoch is dropped (equal shapes on every process).
* **Checkpoints are atomic.** ``checkpoint-N`` (model/adapter + tokenizer + optimizer, scheduler,
  grad-scaler, step, data position, options, and every process's RNG state) is written to a
  hidden temporary directory and renamed; a kill at any moment leaves the previous one intact.
  Rerunning the same command resumes from the newest, so at most the steps since it are lost.
  States are tensors and plain containers, loaded with ``weights_only=True`` (nothing is unpickled),
  and weights that do not fit the model (missing or unexpected keys) are refused, not skipped.
* **DDP equals one big batch.** See ``RepLLaMATrainModel.gradient_scale``.

The final model goes to ``--output`` itself (loadable by ``RepLLaMAEncoder`` / ``RankLLaMAReranker``),
``training_args.json`` last: its presence marks a finished run, and rerunning a finished run is a no-op.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import random
import re
import shutil
import time
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist

from ..errors import ModelLoadError, PyseriniLlamaError
from .arguments import TrainingArguments, TrainingConfigError
from .collator import RankLLaMACollator, RepLLaMACollator
from .dataset import TrainDataset, read_train_files
from .modeling import (
    build_train_model,
    fit_score_head,
    hf_model,
    key_mismatch,
    load_lora_weights,
    load_trainable,
    load_trained_weights,
    save_trained,
    set_score_head,
)

logger = logging.getLogger(__name__)

CHECKPOINT = re.compile(r"checkpoint-(\d+)")
STATE_FILE = "trainer_state.pt"
FINISHED_MARKER = "training_args.json"
LOG_FILE = "train_log.jsonl"
TEMPERATURE_LEARNING_RATE = 1e-2


def init_distributed(args: TrainingArguments) -> tuple[int, int]:
    """Join the process group ``torchrun`` describes (gloo on CPU, nccl on CUDA); ``(rank, world_size)``."""
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size > 1 and not dist.is_initialized():
        if args.device.startswith("cuda"):
            local = int(os.environ.get("LOCAL_RANK", "0"))
            if args.device == "cuda" or args.device == "cuda:0":
                args.device = f"cuda:{local}"
            torch.cuda.set_device(args.device)
        dist.init_process_group("nccl" if args.device.startswith("cuda") else "gloo")
    if dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def rng_state() -> dict:
    """Every RNG's state as tensors and plain tuples and numbers, so that it loads with ``weights_only=True``
    (Python's state is one already; numpy's key array becomes a tensor)."""
    name, keys, pos, has_gauss, cached = np.random.get_state()
    state = {
        "python": random.getstate(),
        "numpy": [name, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, cached],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    version, words, gauss = state["python"]
    random.setstate((version, tuple(words), gauss))
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def load_state_file(path: Path):
    """A checkpoint's ``.pt`` state, loaded with ``weights_only=True``: tensors and plain containers only.

    Unpickling arbitrary objects could run code from whoever wrote the checkpoint, so a file that needs
    it (a hostile one, or one an earlier version wrote with numpy objects inside) is refused, not run.
    """
    import pickle

    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise TrainingConfigError(
            f"{path}: holds pickled Python objects, which are not unpickled (that could run code): {first}. "
            "If it was written by an earlier version of pyserini-llama, resume with that version, or pass "
            "--overwrite-output to start over"
        ) from None


def latest_checkpoint(output: str | Path) -> Path | None:
    """The newest complete ``checkpoint-N`` (temporary directories never match)."""
    found = []
    for path in Path(output).glob("checkpoint-*"):
        match = CHECKPOINT.fullmatch(path.name)
        if match and (path / STATE_FILE).is_file():
            found.append((int(match.group(1)), path))
    return max(found)[1] if found else None


class Trainer:
    """One training run. ``Trainer(args).train()`` trains, checkpoints, resumes and saves.

    The pieces are methods so tests can drive them: :meth:`forward_backward` computes one
    step's loss and gradients without touching the optimizer.
    """

    def __init__(self, args: TrainingArguments):
        self.args = args
        self.rank, self.world_size = init_distributed(args)
        self.device = torch.device(args.device)
        self.output = Path(args.output)
        _seed_everything(args.seed)
        # Data first: a bad line fails in a second, before minutes of model loading.
        queries = read_train_files(
            args.train, skip_bad_lines=args.skip_bad_lines, require_scores=args.distil_weight > 0
        )
        self.dataset = TrainDataset(queries, args.group_size, args.seed, case_augment=args.case_augment)
        self.per_device = args.per_device_batch_size
        self.global_batch = self.per_device * self.world_size * args.gradient_accumulation_steps
        self.steps_per_epoch = len(self.dataset) // self.global_batch
        if self.steps_per_epoch == 0:
            raise TrainingConfigError(
                f"{len(self.dataset)} training queries are fewer than one global batch of {self.global_batch} "
                f"(per-device batch {self.per_device} x {self.world_size} process(es) x "
                f"{args.gradient_accumulation_steps} accumulation step(s))"
            )
        self.total_steps = args.max_steps or math.ceil(args.epochs * self.steps_per_epoch)
        if args.warmup_steps >= self.total_steps:
            logger.warning(
                "--warmup-steps %d >= %d training steps: the learning rate never reaches its peak",
                args.warmup_steps,
                self.total_steps,
            )

        self.backbone, self.tokenizer = load_trainable(args)
        self.model = build_train_model(self.backbone, args, self.tokenizer).to(self.device)
        self.collator = self._collator()
        self.optimizer = torch.optim.AdamW(
            self._parameter_groups(), lr=args.learning_rate, weight_decay=args.weight_decay
        )
        from transformers import get_linear_schedule_with_warmup

        self.scheduler = get_linear_schedule_with_warmup(self.optimizer, args.warmup_steps, self.total_steps)
        self.scaler = torch.amp.GradScaler("cuda") if args.dtype == "float16" else None
        self.ddp = None
        if self.world_size > 1:
            from torch.nn.parallel import DistributedDataParallel

            ids = [self.device.index] if self.device.type == "cuda" else None
            self.ddp = DistributedDataParallel(self.model, device_ids=ids)
        self.step = 0  # optimizer steps done

    def _parameter_groups(self) -> list[dict]:
        """The adapter (or model) at ``--learning-rate``; a learned temperature at a rate of its own.

        Adam moves each parameter by about its learning rate per step, so at 1e-4 a log-temperature
        would need thousands of steps to move from 0.05 to 0.02; at 1e-2 it takes about a hundred.
        """
        backbone = [p for n, p in self.model.named_parameters() if p.requires_grad and n.startswith("backbone.")]
        extra = [p for n, p in self.model.named_parameters() if p.requires_grad and not n.startswith("backbone.")]
        groups = [{"params": backbone}]
        if extra:
            groups.append({"params": extra, "lr": TEMPERATURE_LEARNING_RATE, "weight_decay": 0.0})
        return groups

    def _collator(self):
        args = self.args
        if args.objective == "repllama":
            return RepLLaMACollator(
                self.tokenizer,
                args.query_max_length,
                args.passage_max_length,
                distil=args.distil_weight > 0,
                text_case=args.text_case,
            )
        from ..rerankers.rankllama import RankLLaMAReranker

        reranker = RankLLaMAReranker.from_model(
            self.backbone,
            self.tokenizer,
            query_max_length=args.query_max_length,
            max_length=args.max_length,
            append_eos=args.append_eos,
            text_case=args.text_case,
        )
        return RankLLaMACollator(reranker, distil=args.distil_weight > 0)

    # ------------------------------------------------------------------------------ one step
    def micro_batch_groups(self, step: int) -> list[list]:
        """This process's groups of optimizer step ``step`` (0-based), one list per micro-batch."""
        epoch, position = divmod(step, self.steps_per_epoch)
        out = []
        for a in range(self.args.gradient_accumulation_steps):
            start = (position * self.args.gradient_accumulation_steps + a) * self.per_device * self.world_size
            out.append(self.dataset.groups(epoch, start + self.rank * self.per_device, self.per_device))
        return out

    def micro_batches(self, step: int) -> list[dict]:
        """This process's micro-batches of optimizer step ``step`` (0-based), as tensors on the device."""
        return [
            {k: v.to(self.device) for k, v in self.collator(groups).items()} for groups in self.micro_batch_groups(step)
        ]

    def fill_trunk_cache(self) -> int:
        """Compute, before the first step, the trunk states of every text the remaining steps will use.

        Done up front rather than step by step because one pass over the unique texts, sorted by
        length, spends nothing on padding or on texts seen twice; it commits a shard at a time, so a
        kill here loses minutes at most and rerunning the command continues the fill.
        """
        cache = self.model.split_forward.cache
        if cache is None:
            return 0
        sequences = [
            ids
            for step in range(self.step, self.total_steps)
            for groups in self.micro_batch_groups(step)
            for ids in self.collator.sequences(groups)
        ]
        computed = cache.fill(sequences, self.model.split_forward.pad_id, progress=self.rank == 0)
        logger.info("trunk cache: %d sequences computed, %d stored in all", computed, len(cache))
        return computed

    def _autocast(self):
        if self.args.dtype == "float32":
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=getattr(torch, self.args.dtype))

    def forward_backward(self, step: int) -> float:
        """Loss of step ``step`` (mean over its micro-batches) with gradients accumulated, not applied."""
        batches = self.micro_batches(step)
        module = self.ddp or self.model
        total = 0.0
        for a, batch in enumerate(batches):
            last = a == len(batches) - 1
            sync = contextlib.nullcontext() if self.ddp is None or last else self.ddp.no_sync()
            with sync:
                with self._autocast():
                    loss = module(**batch)
                if not torch.isfinite(loss):
                    raise PyseriniLlamaError(
                        f"loss is {loss.item()} at step {step + 1}; with float16 use bfloat16, "
                        "else lower --learning-rate or raise --temperature"
                    )
                scaled = loss * self.model.gradient_scale / len(batches)
                (self.scaler.scale(scaled) if self.scaler else scaled).backward()
            total += loss.item()
        return total / len(batches)

    def optimizer_step(self) -> None:
        params = [p for p in self.model.parameters() if p.requires_grad]
        if self.scaler:
            self.scaler.unscale_(self.optimizer)
        if self.args.max_grad_norm > 0:
            torch.nn.utils.clip_grad_norm_(params, self.args.max_grad_norm)
        if self.scaler:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)

    @torch.no_grad()
    def probe_head(self) -> dict:
        """LP-FT: fit RankLLaMA's ``score`` head on frozen last-token features of the first
        ``--probe-queries`` training groups, so LoRA training starts from a head that already ranks.

        With a random head the grouped loss starts at ln(group) and the first steps go to finding
        a direction in feature space; a probe finds it in seconds on features that cost one forward
        pass per pair. Every process fits on the same groups, so all start with the same head.
        """
        args = self.args
        groups = self.dataset.groups(0, 0, min(args.probe_queries, len(self.dataset)))
        features = []
        for start in range(0, len(groups), self.per_device):
            batch = {k: v.to(self.device) for k, v in self.collator(groups[start : start + self.per_device]).items()}
            with self._autocast():
                features.append(self.model.features(batch["input_ids"], batch["attention_mask"]).float().cpu())
        weight, report = fit_score_head(torch.cat(features), args.group_size)
        set_score_head(self.backbone, weight)
        logger.info(
            "probed score head on %d groups: loss %.4f -> %.4f, held-out %s (chance ln %d = %.4f), l2 %.0e",
            len(groups),
            report["loss_before"],
            report["loss_after"],
            "n/a" if report["held_out_loss"] is None else f"{report['held_out_loss']:.4f}",
            args.group_size,
            math.log(args.group_size),
            report["l2"],
        )
        if self.rank == 0:
            self.output.mkdir(parents=True, exist_ok=True)
            (self.output / "head_probe.json").write_text(json.dumps(report, indent=2) + "\n")
        return report

    # ------------------------------------------------------------------------------ the loop
    def train(self) -> Path:
        """Train to ``total_steps`` (resuming from the newest checkpoint) and save the final model."""
        from tqdm.auto import tqdm

        self._prepare_output()
        checkpoint = latest_checkpoint(self.output)
        if checkpoint is not None:
            self.load_checkpoint(checkpoint)
        elif self.args.init_adapter:
            self.start_from_adapter(self.args.init_adapter, self.args.start_step)
        elif self.args.warm_start:
            self.warm_start_from(self.args.warm_start)
        self.fill_trunk_cache()
        if checkpoint is None and self.args.head_init == "probe":
            self.probe_head()
        args = self.args
        logger.info(
            "%s training: %d queries, %d steps (%d per epoch), global batch %d queries x %d passages, %d process(es)",
            args.objective,
            len(self.dataset),
            self.total_steps,
            self.steps_per_epoch,
            self.global_batch,
            args.group_size,
            self.world_size,
        )
        main = self.rank == 0
        bar = tqdm(total=self.total_steps, initial=self.step, desc="training", unit="step", disable=not main)
        window_loss, window_steps, window_start = 0.0, 0, time.perf_counter()
        while self.step < self.total_steps:
            window_loss += self.forward_backward(self.step)
            window_steps += 1
            self.optimizer_step()
            self.step += 1
            if self.step % args.logging_steps == 0 or self.step == self.total_steps:
                loss = self._mean_over_processes(window_loss / window_steps)
                elapsed = time.perf_counter() - window_start
                record = {
                    "step": self.step,
                    "epoch": round(self.step / self.steps_per_epoch, 4),
                    "loss": round(loss, 6),
                    "lr": self.scheduler.get_last_lr()[0],
                    "samples_per_second": round(window_steps * self.global_batch / elapsed, 3),
                    "seconds_per_step": round(elapsed / window_steps, 4),
                }
                if self.args.learn_temperature:
                    record["temperature"] = round(self.model.temperature, 6)
                if main:
                    bar.set_postfix(loss=f"{loss:.4f}", lr=f"{record['lr']:.2e}", qps=record["samples_per_second"])
                    logger.info(
                        "step %d/%d  loss %.4f  lr %.3e  %.2f samples/s  %.3f s/step  epoch %.2f",
                        self.step,
                        self.total_steps,
                        loss,
                        record["lr"],
                        record["samples_per_second"],
                        record["seconds_per_step"],
                        record["epoch"],
                    )
                    with open(self.output / LOG_FILE, "a") as f:
                        f.write(json.dumps(record) + "\n")
                window_loss, window_steps, window_start = 0.0, 0, time.perf_counter()
            bar.update(1)
            if self.step % args.save_steps == 0 and self.step < self.total_steps:
                self.save_checkpoint()
        bar.close()
        self.save_final()
        return self.output

    def _mean_over_processes(self, value: float) -> float:
        if self.world_size == 1:
            return value
        tensor = torch.tensor([value], dtype=torch.float64, device=self.device)
        dist.all_reduce(tensor)
        return tensor.item() / self.world_size

    def _barrier(self) -> None:
        if self.world_size > 1:
            dist.barrier()

    # ------------------------------------------------------------------------------ saving
    def _prepare_output(self) -> None:
        if self.rank == 0:
            self.output.mkdir(parents=True, exist_ok=True)
            for stale in self.output.glob(".tmp-*"):  # left by a kill during a save
                shutil.rmtree(stale, ignore_errors=True)
            if self.args.overwrite_output:
                (self.output / FINISHED_MARKER).unlink(missing_ok=True)
                (self.output / LOG_FILE).unlink(missing_ok=True)
                for old in self.output.glob("checkpoint-*"):
                    shutil.rmtree(old)
        self._barrier()

    def _staging(self, name: str) -> Path:
        staging = self.output / f".tmp-{name}"
        if self.rank == 0:
            shutil.rmtree(staging, ignore_errors=True)
            staging.mkdir(parents=True)
        self._barrier()
        return staging

    def save_checkpoint(self) -> Path:
        """Write ``checkpoint-<step>`` atomically and keep the newest ``save_total_limit`` of them."""
        name = f"checkpoint-{self.step}"
        staging = self._staging(name)
        torch.save(rng_state(), staging / f"rng_state_{self.rank}.pt")
        if self.rank == 0:
            save_trained(self.backbone, self.tokenizer, staging, self.args.text_case, self.args.served_lengths())
            state = {
                "step": self.step,
                "epoch": self.step // self.steps_per_epoch,
                "position_in_epoch": self.step % self.steps_per_epoch,
                "total_steps": self.total_steps,
                "world_size": self.world_size,
                "args": self.args.to_dict(),
                "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(),
                "scaler": self.scaler.state_dict() if self.scaler else None,
                "train_model": self._extra_parameters(),
            }
            torch.save(state, staging / STATE_FILE)
        self._barrier()
        target = self.output / name
        if self.rank == 0:
            if target.exists():
                shutil.rmtree(target)
            os.replace(staging, target)
            self._prune_checkpoints()
            logger.info("saved %s", target)
        self._barrier()
        return target

    def _prune_checkpoints(self) -> None:
        found = sorted(
            (int(m.group(1)), p) for p in self.output.glob("checkpoint-*") if (m := CHECKPOINT.fullmatch(p.name))
        )
        for _, path in found[: -self.args.save_total_limit]:
            shutil.rmtree(path, ignore_errors=True)

    def _saved_adapter(self, adapter: str | Path, flag: str, *, same_task: bool) -> Path:
        """The directory of ``adapter``, checked to have this run's LoRA shape (else its weights would not fit)."""
        from ..modeling.loading import read_adapter_config

        try:
            found = read_adapter_config(str(adapter))
        except ModelLoadError as exc:
            raise TrainingConfigError(f"{flag} {adapter}: {exc}") from None
        if found is None:
            raise TrainingConfigError(f"{flag} {adapter}: not a LoRA adapter directory (no adapter_config.json)")
        path, saved = found
        ours = self.backbone.peft_config["default"]
        compared = ("r", "lora_alpha", "layers_to_transform") + (("task_type",) if same_task else ())
        mismatched = [name for name in compared if _plain(saved.get(name)) != _plain(getattr(ours, name))]
        if set(saved.get("target_modules") or []) != set(ours.target_modules or []):
            mismatched.append("target_modules")
        if mismatched:
            raise TrainingConfigError(
                f"{flag} {adapter} has another LoRA shape ({', '.join(mismatched)}); "
                "pass the --lora-r/--lora-alpha/--lora-layers/--lora-target-modules it was trained with"
            )
        return path

    def start_from_adapter(self, adapter: str | Path, start_step: int = 0) -> None:
        """Load a saved adapter's weights (and score head) and continue at ``start_step``.

        Data order and learning rate are functions of the step, so this continues the earlier run's
        stream and schedule exactly; only Adam's moment estimates start afresh (a shipped adapter
        does not carry them). The LoRA shape must match, or the weights would not fit.
        """
        path = self._saved_adapter(adapter, "--init-adapter", same_task=True)
        load_trained_weights(self.backbone, path)
        with warnings.catch_warnings():  # stepping the schedule without optimizer steps is the point here
            warnings.simplefilter("ignore", UserWarning)
            for _ in range(start_step):
                self.scheduler.step()
        self.step = start_step
        if self.rank == 0:
            log_records_up_to(self.output / LOG_FILE, self.step, inherit_from=path / LOG_FILE)
        logger.info("starting from adapter %s at step %d of %d", path, start_step, self.total_steps)

    def warm_start_from(self, adapter: str | Path) -> None:
        """Start the LoRA weights from an adapter trained for the other objective (step 0, fresh schedule).

        A RankLLaMA that starts from a trained RepLLaMA begins with a backbone that already puts
        relevant texts near their queries; from the base model its loss sits at chance for the first
        ~160 CPU steps. Only LoRA weights are taken: the score head comes from ``--head-init``.
        """
        path = self._saved_adapter(adapter, "--warm-start", same_task=False)
        load_lora_weights(self.backbone, path)
        logger.info("LoRA weights warm-started from %s", path)

    def _extra_parameters(self) -> dict:
        """Trained parameters outside the backbone (a learned temperature): saved with the trainer state."""
        return {n: p.detach().cpu() for n, p in self.model.named_parameters() if not n.startswith("backbone.")}

    def _load_extra_parameters(self, saved: dict, checkpoint: Path) -> None:
        """The trainer state's parameters outside the backbone, which must be exactly this model's."""
        expected = set(self._extra_parameters())
        missing, unexpected = sorted(expected - set(saved)), sorted(set(saved) - expected)
        if missing or unexpected:
            shown = key_mismatch(missing, unexpected)
            raise TrainingConfigError(f"{checkpoint}: trained parameters do not fit this model ({shown})")
        self.model.load_state_dict(saved, strict=False)  # the backbone's own weights came from its safetensors

    def load_checkpoint(self, checkpoint: Path) -> None:
        state = load_state_file(checkpoint / STATE_FILE)
        differing = self.args.differences(state["args"])
        if differing:
            shown = ", ".join(f"--{n.replace('_', '-')}" for n in differing[:4])
            raise TrainingConfigError(
                f"{checkpoint} comes from a run with other options ({shown}); "
                "rerun with those, or pass --overwrite-output to start over"
            )
        if state["world_size"] != self.world_size:
            raise TrainingConfigError(
                f"{checkpoint} was written by {state['world_size']} process(es); resume with the same number "
                f"(now {self.world_size}), so the data order stays the same"
            )
        load_trained_weights(self.backbone, checkpoint)
        self._load_extra_parameters(state.get("train_model", {}), checkpoint)
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        if self.scaler and state["scaler"]:
            self.scaler.load_state_dict(state["scaler"])
        rng_file = checkpoint / f"rng_state_{self.rank}.pt"
        try:
            set_rng_state(load_state_file(rng_file))
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise TrainingConfigError(f"{rng_file}: not an RNG state this version wrote ({exc})") from None
        self.step = state["step"]
        if self.rank == 0:
            log_records_up_to(self.output / LOG_FILE, self.step)
        logger.info("resuming from %s (step %d of %d)", checkpoint, self.step, self.total_steps)

    def save_final(self) -> None:
        """Model + tokenizer into ``--output``; the config files, then the marker, are moved in last."""
        staging = self._staging("final")
        if self.rank == 0:
            save_trained(self.backbone, self.tokenizer, staging, self.args.text_case, self.args.served_lengths())
            info = {**self.args.to_dict(), "steps": self.step, "world_size": self.world_size}
            (staging / FINISHED_MARKER).write_text(json.dumps(info, indent=2) + "\n")
            last = ("adapter_config.json", "config.json", FINISHED_MARKER)
            files = sorted(staging.iterdir(), key=lambda p: last.index(p.name) if p.name in last else -1)
            for file in files:
                os.replace(file, self.output / file.name)
            staging.rmdir()
            logger.info("saved the trained model to %s", self.output)
        self._barrier()

    def unwrapped(self):
        """The trained Hugging Face model (LoRA layers live, not merged), e.g. for in-memory evaluation."""
        return hf_model(self.backbone)


def log_records_up_to(log: Path, step: int, inherit_from: Path | None = None) -> None:
    """Keep the log records of steps up to ``step`` only: later ones will be redone, so a resumed log reads as
    one run. A log left empty starts with ``inherit_from``'s records up to ``step`` (the log a shipped adapter
    keeps beside it), so a continued run's ``train_log.jsonl`` is the whole curve, not only the new part."""

    def records(path: Path | None) -> list[str]:
        if path is None or not path.is_file():
            return []
        return [line for line in path.read_text().splitlines() if line.strip() and json.loads(line)["step"] <= step]

    kept = records(log) or records(inherit_from)
    if kept or log.is_file():
        log.write_text("".join(f"{line}\n" for line in kept))


def _plain(value):
    """Config values as comparable plain data (PEFT stores enums and sets, JSON stores strings and lists)."""
    value = getattr(value, "value", value)
    return sorted(value) if isinstance(value, list | set | tuple) else value


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def finished(args: TrainingArguments) -> bool:
    """True if ``args.output`` holds the finished model of this very run (rerunning it is a no-op)."""
    marker = Path(args.output) / FINISHED_MARKER
    if args.overwrite_output or not marker.is_file():
        return False
    try:
        saved = json.loads(marker.read_text())
    except (OSError, json.JSONDecodeError):
        return False
    differing = args.differences(saved)
    if differing:
        shown = ", ".join(f"--{n.replace('_', '-')}" for n in differing[:4])
        raise TrainingConfigError(
            f"{args.output} holds a model trained with other options ({shown}); "
            "pass --overwrite-output to replace it, or choose another --output"
        )
    return True


def train(args: TrainingArguments) -> Path:
    """Train (or resume) as ``args`` says; returns the output directory holding the final model."""
    if finished(args):
        logger.info("%s already holds the finished model of this run; nothing to do", args.output)
        return Path(args.output)
    return Trainer(args).train()

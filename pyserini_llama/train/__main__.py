"""``python -m pyserini_llama.train repllama|rankllama``: fine-tune a LLaMA retriever or reranker.

The same command runs on one process or under ``torchrun --nproc_per_node N`` (DDP; gloo on CPU,
nccl on CUDA), and rerunning it after an interruption resumes from the newest checkpoint.
"""

from __future__ import annotations

import argparse
import logging
import sys

from ..cli_options import command_parser
from ..defaults import GROUP_SIZE, PASSAGE_MAX_LENGTH, QUERY_MAX_LENGTH, RERANK_TRAIN_MAX_LENGTH, TRAIN_BATCH_SIZE
from ..errors import run_cli
from ..modeling.loading import DTYPES

logger = logging.getLogger("pyserini_llama.train")

EXAMPLE = """examples:
  # RepLLaMA, the paper's recipe (LoRA r 32, 1 positive + 15 negatives, temperature 0.01), 4 GPUs
  torchrun --nproc_per_node 4 -m pyserini_llama.train repllama \\
    --model meta-llama/Llama-2-7b-hf --train train.scifact.jsonl --output models/repllama-scifact \\
    --per-device-batch-size 8 --gradient-accumulation-steps 4 --group-size 16 \\
    --query-max-length 32 --passage-max-length 196 --learning-rate 1e-4 --warmup-steps 100 \\
    --epochs 1 --dtype bfloat16 --gradient-checkpointing

  # RepLLaMA on CPU: LoRA on the top 6 of 30 layers, trained from cached trunk states
  python -m pyserini_llama.train repllama --model smollm2-135m-instruct --train train.jsonl \
    --output models/repllama-smollm2 --lora-layers 6 --trunk-cache cache/trunk --passage-max-length 64 \
    --group-size 2 --per-device-batch-size 16 --temperature 0.02 --learning-rate 1e-3 --warmup-steps 10 --max-steps 300

  # RankLLaMA on CPU with SmolLM2, a few steps
  python -m pyserini_llama.train rankllama --model smollm2-135m-instruct --train train.jsonl \\
    --output models/rankllama-smollm2 --per-device-batch-size 4 --group-size 4 --max-steps 20 --warmup-steps 2

Training files: Tevatron JSON lines, one query per line:
  {"query_id": "1", "query": "...", "positive_passages": [{"docid": "..", "title": "..", "text": ".."}],
   "negative_passages": [...]}
(`python -m pyserini_llama.mine` writes them.) The output directory is the trained model: load it with
RepLLaMAEncoder / RankLLaMAReranker or pass it as --encoder / --reranker. Rerun the same command after
an interruption to resume from the newest checkpoint-N. To continue a run in a later session from an adapter
saved without optimizer state (e.g. a committed model), rerun the command with --max-steps raised and
--init-adapter DIR --start-step N (N: the steps that adapter was trained for). To start a reranker from a
trained retriever's backbone, add --warm-start ADAPTER (e.g. --warm-start repllama-smollm2-135m)."""


def build_parser() -> argparse.ArgumentParser:
    parser = command_parser(
        "python -m pyserini_llama.train",
        "Fine-tune RepLLaMA (bi-encoder) or RankLLaMA (reranker) with LoRA or fully.",
        EXAMPLE,
    )
    parser.add_argument("objective", choices=("repllama", "rankllama"), help="what to train")
    io = parser.add_argument_group("model and data")
    io.add_argument("--model", required=True, help="base model: HF dir or hub id, .gguf, or smollm2-135m-instruct")
    io.add_argument(
        "--train",
        "--train-data",
        dest="train",
        required=True,
        nargs="+",
        help="Tevatron-format training file(s) (.jsonl[.gz])",
    )
    io.add_argument(
        "--output", "--output-dir", dest="output", required=True, help="output directory (final model + checkpoint-N/)"
    )
    io.add_argument("--tokenizer", default=None, help="tokenizer name or path (default: the model's)")
    io.add_argument("--skip-bad-lines", action="store_true", help="skip malformed training lines, counting them")
    io.add_argument("--overwrite-output", action="store_true", help="start over, deleting checkpoints in --output")
    lora = parser.add_argument_group("LoRA (default) or full fine-tuning")
    lora.add_argument("--full", action="store_true", help="fine-tune every weight instead of LoRA")
    lora.add_argument("--lora-r", type=int, default=None, help="LoRA rank (default: 32)")
    lora.add_argument("--lora-alpha", type=int, default=None, help="LoRA alpha (default: 64)")
    lora.add_argument("--lora-dropout", type=float, default=None, help="LoRA dropout (default: 0.1)")
    lora.add_argument(
        "--lora-target-modules",
        default=None,
        help="comma-separated modules (default: q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj; q,k,v... ok)",
    )
    lora.add_argument(
        "--lora-layers",
        type=int,
        default=None,
        help="LoRA on the top K decoder layers only (PEFT layers_to_transform); the rest run without autograd",
    )
    lora.add_argument(
        "--trunk-cache",
        default=None,
        metavar="DIR",
        help="with --lora-layers: store the frozen layers' output per text in DIR (computed once, reused by "
        "later steps, epochs and runs); safe to share between runs",
    )
    lora.add_argument(
        "--trunk-cache-dtype", choices=("float16", "float32"), default="float16", help="trunk cache storage (float16)"
    )
    loss = parser.add_argument_group("loss and inputs")
    loss.add_argument("--temperature", type=float, default=None, help="RepLLaMA softmax temperature (default: 0.01)")
    loss.add_argument(
        "--learn-temperature",
        action="store_true",
        help="RepLLaMA: learn the temperature, starting from --temperature (capped at 0.01)",
    )
    loss.add_argument(
        "--distil-weight",
        type=float,
        default=0.0,
        metavar="W",
        help="loss = W x KL(teacher || student, softmax over each group) + (1 - W) x the contrastive loss; "
        "needs a teacher score on every passage (python -m pyserini_llama.teacher). 1 = Tevatron's train_distil "
        "(default: 0, no distillation)",
    )
    loss.add_argument(
        "--distil-temperature", type=float, default=1.0, metavar="T", help="softmax temperature of the KL (1.0)"
    )
    loss.add_argument(
        "--text-case",
        choices=("as-is", "fold-all-caps"),
        default="as-is",
        help="fold-all-caps: lower-case any ALL-CAPS field; recorded in the model (input_format.json) and "
        "applied wherever it is served (default: as-is, the model cards' exact input)",
    )
    loss.add_argument(
        "--case-augment", type=float, default=0.0, metavar="P", help="lower-case this share of training queries (0)"
    )
    loss.add_argument(
        "--group-size", type=int, default=GROUP_SIZE, help=f"passages per query: 1 positive + negatives ({GROUP_SIZE})"
    )
    loss.add_argument(
        "--query-max-length", type=int, default=QUERY_MAX_LENGTH, help=f"query tokens (default: {QUERY_MAX_LENGTH})"
    )
    loss.add_argument(
        "--passage-max-length",
        type=int,
        default=None,
        help=f"RepLLaMA: passage tokens (default: {PASSAGE_MAX_LENGTH})",
    )
    loss.add_argument(
        "--max-length",
        type=int,
        default=None,
        help="RankLLaMA: pair tokens, query + document + template, as rerank --max-length; recorded in the model "
        f"(input_format.json) and served at it (default: {RERANK_TRAIN_MAX_LENGTH} = the paper's query "
        f"{QUERY_MAX_LENGTH} + passage {PASSAGE_MAX_LENGTH})",
    )
    loss.add_argument("--append-eos", action="store_true", help="RankLLaMA: end each pair with EOS (default: no)")
    loss.add_argument(
        "--head-init",
        choices=("random", "probe"),
        default="random",
        help="RankLLaMA: 'probe' fits the score head on frozen features before LoRA training (LP-FT)",
    )
    loss.add_argument("--probe-queries", type=int, default=64, help="RankLLaMA --head-init probe: groups fitted (64)")
    opt = parser.add_argument_group("optimisation")
    opt.add_argument(
        "--per-device-batch-size",
        type=int,
        default=TRAIN_BATCH_SIZE,
        help=f"queries per process per micro-batch ({TRAIN_BATCH_SIZE})",
    )
    opt.add_argument("--gradient-accumulation-steps", type=int, default=1)
    opt.add_argument("--learning-rate", type=float, default=1e-4, help="peak learning rate (default: 1e-4)")
    opt.add_argument("--weight-decay", type=float, default=0.0)
    opt.add_argument("--warmup-steps", type=int, default=100, help="linear warmup, then linear decay (default: 100)")
    opt.add_argument("--max-grad-norm", type=float, default=1.0, help="gradient clipping; 0 disables (default: 1.0)")
    opt.add_argument("--max-steps", type=int, default=None, help="optimizer steps to train (or --epochs)")
    opt.add_argument("--epochs", type=float, default=None, help="epochs to train (default: 1 unless --max-steps)")
    opt.add_argument("--seed", type=int, default=42)
    run = parser.add_argument_group("precision, device, checkpoints")
    run.add_argument(
        "--dtype", choices=DTYPES, default=None, help="mixed precision (default: bfloat16 on CUDA, else float32)"
    )
    run.add_argument("--bf16", action="store_true", help="same as --dtype bfloat16")
    run.add_argument("--fp16", action="store_true", help="same as --dtype float16 (CUDA only; bfloat16 is safer)")
    run.add_argument("--gradient-checkpointing", action="store_true", help="recompute activations to save memory")
    run.add_argument("--device", default=None, help="cpu, cuda or cuda:N (default: cuda if available)")
    run.add_argument(
        "--init-adapter",
        default=None,
        metavar="DIR",
        help="start from this LoRA adapter (a run's output or a shipped model) instead of a fresh one",
    )
    run.add_argument(
        "--start-step",
        type=int,
        default=0,
        help="with --init-adapter: the step that adapter reached; training data and learning-rate schedule "
        "continue from there, so a run split over sessions matches one run (except Adam's moments)",
    )
    run.add_argument(
        "--warm-start",
        default=None,
        metavar="DIR",
        help="start the new LoRA weights from an adapter trained for the other objective (e.g. RankLLaMA from "
        "repllama-smollm2-135m; same --lora-r/--lora-alpha/--lora-layers/--lora-target-modules); the score head "
        "still comes from --head-init and training starts at step 0",
    )
    run.add_argument("--save-steps", type=int, default=500, help="checkpoint every N steps (default: 500)")
    run.add_argument("--save-total-limit", type=int, default=1, help="checkpoints kept (default: 1, the newest)")
    run.add_argument("--logging-steps", type=int, default=10, help="log loss/lr/throughput every N steps (10)")
    return parser


def arguments_from(ns: argparse.Namespace):
    """Command-line namespace -> validated :class:`TrainingArguments` (a bad combination raises, one line)."""
    from ..training.arguments import TrainingArguments, TrainingConfigError

    shortcuts = [d for d, flag in (("bfloat16", ns.bf16), ("float16", ns.fp16)) if flag]
    if len(shortcuts) > 1 or (shortcuts and ns.dtype not in (None, shortcuts[0])):
        raise TrainingConfigError("--bf16, --fp16 and --dtype contradict each other; give one")
    options = {k: v for k, v in vars(ns).items() if k not in ("bf16", "fp16", "log_level")}
    options["dtype"] = ns.dtype or (shortcuts[0] if shortcuts else None)
    return TrainingArguments(**options)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = arguments_from(build_parser().parse_args(argv))
    from ..training import train

    try:
        output = train(args)
    finally:
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():  # joined by this command under torchrun
            dist.destroy_process_group()
    logger.info("done: %s", output)
    return 0


def cli() -> None:
    run_cli(main)


if __name__ == "__main__":
    cli()

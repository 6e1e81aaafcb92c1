"""CPU encoding and reranking speed per input length and precision, against the model cards' loops, in one run.

For every length of ``--lengths``:

* encode: RepLLaMA on SciFact passages at least that long (so every input is full length), our batched
  encoder in each precision vs the model card's one-passage-at-a-time loop (fp32);
* rerank: RankLLaMA on (SciFact query, passage) pairs of that length, our batched reranker in each precision
  vs the card's one-pair-at-a-time loop (fp32).

Printed as one markdown table, a row per (task, length, precision):

* ``ours/s``, ``card/s``: texts (pairs) per second; ``speed-up``: their ratio;
* ``GFLOP/s``: counted work over time, real tokens only: ``2 x non-embedding parameters x tokens`` plus
  attention ``4 x L x hidden x layers`` per token of a length-``L`` input;
* ``of fp32 GEMM``: that rate over the fp32 GEMM rate of the model's own shapes (256 x hidden x intermediate),
  measured at the start of this run by ``pyserini_llama.precision.speed`` (int8 can exceed 1);
* ``max abs diff``: largest difference to the card loop's fp32 embeddings (components) or scores (logits).

bfloat16 runs 8-10x slower than fp32 on AVX2-only CPUs, so it is measured only with ``--bf16``.
``--int8-study`` adds a table of int8 variants (per-tensor activations as ``quantize_dynamic``, per token
without smoothing, smoothing q/k/v and gate/up only, smoothing o_proj/down_proj too) at ``--study-length``;
``--attention`` adds fp32 rows with eager attention (the default is sdpa).

    python benchmarks/bench_cpu_inference.py --model tiny --passages 16 --pairs 16      # seconds
    python benchmarks/bench_cpu_inference.py --int8-study --attention                    # shipped SmolLM2 models
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from bench_common import (
    SCIFACT,
    long_scifact_documents,
    model_card_embeddings,
    model_card_scores,
    tiny_encoder,
    tiny_reranker,
)

from pyserini_llama.data.document import Document
from pyserini_llama.encoders.repllama import RepLLaMAEncoder
from pyserini_llama.modeling.loading import load_backbone
from pyserini_llama.precision.cpu import cpu_model, default_threads, set_torch_threads, speed_flags
from pyserini_llama.precision.int8 import Int8Settings
from pyserini_llama.precision.speed import measure_gemm_rates
from pyserini_llama.rerankers import RankLLaMAReranker

SHIPPED = {"encode": "repllama-smollm2-135m", "rerank": "rankllama-smollm2-135m"}
#: Queries longer than this (``query: `` included) would be cut by our reranker but not by the card loop.
QUERY_MAX_LENGTH = 32
INT8_VARIANTS = {
    "per-tensor activations, no smoothing (quantize_dynamic)": Int8Settings(smooth=False, per_token=False),
    "per-tensor activations, SmoothQuant": Int8Settings(per_token=False),
    "per-token activations, no smoothing": Int8Settings(smooth=False),
    "per-token, SmoothQuant q/k/v + gate/up": Int8Settings(smooth_outputs=False),
    "per-token, SmoothQuant all (default)": Int8Settings(),
}


def timed(fn: Callable, repeats: int):
    """``(best seconds, result)`` over ``repeats`` runs."""
    best, result = float("inf"), None
    for _ in range(repeats):
        started = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - started)
    return best, result


def nonembedding_params(model) -> int:
    """Parameters that cost FLOPs per token: all but the token embedding (an fp32 model, before quantising)."""
    return sum(p.numel() for name, p in model.named_parameters() if "embed_tokens" not in name)


def counted_flops(lengths: list[int], params: int, hidden: int, layers: int) -> float:
    return float(sum(2 * params * n + 4 * n * hidden * layers * n for n in lengths))


class Task:
    """One of encode / rerank: its models per precision, its inputs, and the card loop."""

    def __init__(self, kind: str, name: str, args: argparse.Namespace):
        self.kind, self.name, self.args = kind, name, args
        self.max_length = max(args.lengths)
        self.reference = self.load("float32")
        config = self.reference.model.config
        self.hidden, self.layers = config.hidden_size, config.num_hidden_layers
        self.intermediate = config.intermediate_size
        self.params = nonembedding_params(self.reference.model)
        count = args.passages if kind == "encode" else args.pairs
        docs = long_scifact_documents(self.reference.tokenizer, count, self.max_length)
        if len(docs) < count:
            print(f"note: only {len(docs)} SciFact passages have {self.max_length} tokens or more")
        self.passages = [Document("", text=d.text, title=d.title) for d in docs]
        if kind == "rerank":
            from pyserini_llama.data.queries import read_queries

            tokenizer = self.reference.tokenizer
            queries = [
                q
                for q in read_queries(SCIFACT / "queries.jsonl").values()
                if len(tokenizer(f"query: {q}", add_special_tokens=False)["input_ids"]) <= QUERY_MAX_LENGTH - 2
            ]
            self.pairs = [(queries[i % len(queries)], p) for i, p in enumerate(self.passages)]

    # ------------------------------------------------------------------ models
    def load(self, precision: str, attention: str | None = None, settings: Int8Settings | None = None):
        a = self.args
        options = {"batch_size": a.batch_size, "max_batch_tokens": a.max_batch_tokens}
        if self.kind == "encode":
            if attention:
                model, tokenizer = load_backbone(self.name, "embedding", attn_implementation=attention)
                return RepLLaMAEncoder.from_model(model, tokenizer, **options)
            model = RepLLaMAEncoder(self.name, dtype=precision, **options)
        else:
            options |= {"query_max_length": QUERY_MAX_LENGTH, "max_length": self.max_length}
            if attention:
                model, tokenizer = load_backbone(self.name, "classification", attn_implementation=attention)
                return RankLLaMAReranker.from_model(model, tokenizer, **options)
            model = RankLLaMAReranker(self.name, dtype=precision, **options)
        if model.int8 is not None:
            if settings is not None:
                model.int8.settings = settings
            started = time.perf_counter()
            self.calibrate(model)
            self.calibration_s = time.perf_counter() - started
        return model

    def calibrate(self, model) -> None:
        """int8: quantise on the benchmark's own inputs at the longest length, before anything is timed."""
        if self.kind == "encode":
            model.calibrate(model.format_passages(self.passages), self.max_length)
        else:
            model.max_length = self.max_length
            model.calibrate(self.pairs)

    # ------------------------------------------------------------------ running
    def run(self, model, length: int, limit: int | None = None) -> np.ndarray:
        """Our batched path on the first ``limit`` inputs (all by default)."""
        if self.kind == "encode":
            return model.encode_passages(self.passages[:limit], max_length=length)
        model.max_length = length
        return model.score_pairs(self.pairs[:limit])

    def card(self, length: int, limit: int | None = None) -> np.ndarray:
        """The model card's loop, fp32, on the first ``limit`` inputs."""
        if self.kind == "encode":
            return model_card_embeddings(self.reference, self.passages[:limit], length)
        return model_card_scores(self.reference, self.pairs[:limit], length)

    def token_lengths(self, length: int) -> list[int]:
        r = self.reference
        if self.kind == "encode":
            return [len(ids) for ids in r.plan_batches(r.format_passages(self.passages), length)[0]]
        r.max_length = length
        return [
            len(ids)
            for ids in r.encode_pairs(
                [f"query: {q}" for q, _ in self.pairs], [f"document: {d.title} {d.text}" for _, d in self.pairs]
            )
        ]


def benchmark(task: Task, precisions: list[str], gemm: dict, args: argparse.Namespace) -> list[dict]:
    models = {p: task.load(p) if p != "float32" else task.reference for p in precisions}
    if args.attention:
        models["float32 (eager attention)"] = task.load("float32", attention="eager")
    rows = []
    for length in args.lengths:
        lengths = task.token_lengths(length)
        flops = counted_flops(lengths, task.params, task.hidden, task.layers)
        task.card(length, limit=2)  # warm-up
        card_s, card = timed(lambda length=length: task.card(length), args.repeats)
        for label, model in models.items():
            task.run(model, length, limit=4)  # warm-up: kernel selection, weight packing
            seconds, out = timed(lambda model=model, length=length: task.run(model, length), args.repeats)
            n = len(lengths)
            rows.append(
                {
                    "task": task.kind,
                    "length": length,
                    "precision": label,
                    "texts": n,
                    "mean_tokens": float(np.mean(lengths)),
                    "ours_per_s": n / seconds,
                    "card_per_s": n / card_s,
                    "speedup": card_s / seconds,
                    "gflops": flops / seconds / 1e9,
                    "of_fp32_gemm": flops / seconds / 1e9 / gemm["rates"]["float32"],
                    "max_abs_diff": float(np.abs(out - card).max()),
                }
            )
            print(f"  {task.kind} {length} {label}: {rows[-1]['ours_per_s']:.1f}/s", flush=True)
    return rows


def int8_study(task: Task, length: int) -> list[dict]:
    """Each int8 variant against fp32 (ours) at one length: what smoothing and per-token scales buy."""
    reference = task.run(task.reference, length)
    rows = []
    for label, settings in INT8_VARIANTS.items():
        out = task.run(task.load("int8", settings=settings), length)
        row = {
            "task": task.kind,
            "length": length,
            "variant": label,
            "max_abs_diff": float(np.abs(out - reference).max()),
        }
        if task.kind == "encode":
            cos = (out * reference).sum(axis=1)
            row |= {"cos_min": float(cos.min()), "cos_mean": float(cos.mean())}
        else:
            row |= {"pearson": float(np.corrcoef(out, reference)[0, 1])}
        rows.append(row)
        print(f"  {task.kind} int8 variant {label}: {row}", flush=True)
    return rows


def markdown(rows: list[dict]) -> str:
    lines = [
        "| task | length | precision | ours /s | card loop /s | speed-up | GFLOP/s | of fp32 GEMM | max abs diff vs card |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['task']} | {r['length']} | {r['precision']} | {r['ours_per_s']:.1f} | {r['card_per_s']:.1f} | "
            f"{r['speedup']:.2f}x | {r['gflops']:.1f} | {r['of_fp32_gemm']:.2f} | {r['max_abs_diff']:.2e} |"
        )
    return "\n".join(lines)


def study_markdown(rows: list[dict]) -> str:
    lines = ["| task | length | int8 variant | vs fp32 |", "|---|---:|---|---|"]
    for r in rows:
        if r["task"] == "encode":
            quality = f"cosine min {r['cos_min']:.4f}, mean {r['cos_mean']:.4f}, max abs diff {r['max_abs_diff']:.3f}"
        else:
            quality = f"Pearson {r['pearson']:.4f}, max abs diff {r['max_abs_diff']:.3f}"
        lines.append(f"| {r['task']} | {r['length']} | {r['variant']} | {quality} |")
    return "\n".join(lines)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="smollm2", help="smollm2 (the shipped adapters) or tiny (random, fast)")
    parser.add_argument("--encoder", default=None, help="override the RepLLaMA model")
    parser.add_argument("--reranker", default=None, help="override the RankLLaMA model")
    parser.add_argument("--tasks", default="encode,rerank", help="encode, rerank or both (default)")
    parser.add_argument("--lengths", default="64,128,256,512", help="input lengths in tokens (default 64,128,256,512)")
    parser.add_argument("--passages", type=int, default=64, help="passages encoded per length (default 64)")
    parser.add_argument("--pairs", type=int, default=64, help="pairs reranked per length (default 64)")
    parser.add_argument("--precisions", default="float32,int8", help="our precisions (default float32,int8)")
    parser.add_argument("--bf16", action="store_true", help="also bfloat16 (very slow on AVX2-only CPUs)")
    parser.add_argument("--batch-size", type=int, default=16, help="rows per batch (default 16)")
    parser.add_argument("--max-batch-tokens", type=int, default=8192, help="padded tokens per batch (default 8192)")
    parser.add_argument(
        "--threads", type=int, default=default_threads(), help="torch threads (default: physical cores)"
    )
    parser.add_argument("--repeats", type=int, default=1, help="timed runs of each; the best is kept (default 1)")
    parser.add_argument("--attention", action="store_true", help="also fp32 with eager attention")
    parser.add_argument("--int8-study", action="store_true", help="also compare int8 variants")
    parser.add_argument("--study-length", type=int, default=128, help="length of the int8 study (default 128)")
    parser.add_argument("--json", default=None, help="also write the rows to this JSON file")
    args = parser.parse_args()
    args.lengths = [int(x) for x in args.lengths.split(",")]
    args.tasks = args.tasks.split(",")
    args.precisions = args.precisions.split(",") + (["bfloat16"] if args.bf16 else [])
    if "float32" not in args.precisions:
        args.precisions.insert(0, "float32")
    return args


def main() -> None:
    args = parse_args()
    set_torch_threads(args.threads)
    rows, study, header = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        for kind in args.tasks:
            name = getattr(args, "encoder" if kind == "encode" else "reranker") or (
                (tiny_encoder if kind == "encode" else tiny_reranker)(Path(tmp) / kind)
                if args.model == "tiny"
                else SHIPPED[kind]
            )
            task = Task(kind, name, args)
            gemm = measure_gemm_rates(task.hidden, task.intermediate, modes=("float32", "int8"), budget_s=1.0)
            header.append(
                f"{kind}: {name}, {len(task.passages)} texts per length; GEMM {'x'.join(map(str, gemm['shape']))}: "
                f"fp32 {gemm['rates']['float32']:.1f}, int8 {gemm['rates']['int8']:.1f} GFLOP/s"
            )
            print(header[-1], flush=True)
            rows += benchmark(task, args.precisions, gemm, args)
            if getattr(task, "calibration_s", None) is not None:
                header.append(f"{kind}: int8 calibration (smoothing + quantising) took {task.calibration_s:.1f} s")
            if args.int8_study:
                study += int8_study(task, args.study_length)
    print()
    print(
        f"CPU {cpu_model()} [{' '.join(speed_flags())}], torch {torch.__version__}, {torch.get_num_threads()} threads"
    )
    print("\n".join(header))
    print()
    print(markdown(rows))
    if study:
        print()
        print(study_markdown(study))
    if args.json:
        Path(args.json).write_text(json.dumps({"header": header, "rows": rows, "int8_study": study}, indent=1) + "\n")


if __name__ == "__main__":
    main()

"""GPU check: 7B-shaped throughput, cuda-vs-cpu fidelity and a DDP/nccl training step, in one run.

Needs only torch, transformers and peft (no Pyserini, FAISS or Java): the RepLLaMA encoder and
RankLLaMA reranker import without them. Measures, on whatever GPU it gets:

1. bf16 GEMM rate of a Llama-2-7B layer's matmul shapes (``torch.matmul``), the "peak" below;
2. a Llama-2-7B-shaped model (hidden 4096, 32 layers, MLP 11008; random weights, bf16, built
   directly on the GPU): RepLLaMA passage encoding tokens/s through ``RepLLaMAEncoder`` and its
   share of the measured peak, counting 2 × (non-embedding parameters) FLOPs per token; and
   RankLLaMA pairs/s through ``RankLLaMAReranker`` (query 32 + passage 164 = 196 tokens);
3. fidelity: max |Δ| of a tiny model's embeddings and scores on cuda vs cpu (float32 both, and
   bf16 on cuda vs float32 on cpu);
4. one DDP training step: ``torchrun --nproc_per_node 1 -m pyserini_llama.train repllama`` on a
   tiny model and a tiny training file (nccl on cuda, gloo on cpu).

Writes ``gpu_check.json`` and ``gpu_check.md`` to ``--out`` (default ``$OUT``). ``--cpu-smoke``
runs everything with tiny shapes on the CPU (gloo) so tests can keep the script from rotting::

    PYTHONPATH=. python benchmarks/gpu_check.py              # on a GPU machine (benchmarks/gpu_check.sh)
    PYTHONPATH=. python benchmarks/gpu_check.py --cpu-smoke  # anywhere, seconds
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

logger = logging.getLogger("gpu_check")

#: Llama-2-7B's shape (meta-llama/Llama-2-7b-hf config.json).
LLAMA2_7B = dict(hidden_size=4096, intermediate_size=11008, num_hidden_layers=32, num_attention_heads=32,
                 num_key_value_heads=32, vocab_size=32000, max_position_embeddings=4096, rms_norm_eps=1e-5)  # fmt: skip
TINY = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
            num_key_value_heads=2, max_position_embeddings=1024, rms_norm_eps=1e-6)  # fmt: skip


def sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def gemm_rate(shape: dict, tokens: int, device: str, dtype, repeats: int) -> dict:
    """TFLOP/s of ``torch.matmul`` for a decoder layer's projections at ``tokens`` rows."""
    import torch

    h, m = shape["hidden_size"], shape["intermediate_size"]
    rates = {}
    for name, (k, n) in {"qkvo h×h": (h, h), "up/gate h×mlp": (h, m), "down mlp×h": (m, h)}.items():
        a = torch.randn(tokens, k, device=device, dtype=dtype)
        b = torch.randn(k, n, device=device, dtype=dtype)
        torch.matmul(a, b)
        sync(device)
        start = time.perf_counter()
        for _ in range(repeats):
            torch.matmul(a, b)
        sync(device)
        rates[name] = 2 * tokens * k * n * repeats / (time.perf_counter() - start) / 1e12
        del a, b
    return {"shapes_tflops": rates, "peak_tflops": max(rates.values()), "rows": tokens}


def passages(n: int, seed: int = 0) -> list[str]:
    """Texts long enough to fill 196 tokens of any tokenizer (cut by max_length, so all equal length)."""
    import random

    rng = random.Random(seed)
    words = ["protein", "cells", "mutation", "genes", "panda", "lobster", "mountain", "species", "claim"]
    return [" ".join(rng.choice(words) for _ in range(400)) for _ in range(n)]


def build_classifier(shape: dict, vocab: int, pad_id: int, device: str, dtype):
    """A random LlamaForSequenceClassification (1 label), created directly on ``device`` in ``dtype``."""
    import torch
    from transformers import LlamaConfig, LlamaForSequenceClassification

    config = LlamaConfig(**{**shape, "vocab_size": vocab}, num_labels=1, pad_token_id=pad_id, bos_token_id=1,
                         eos_token_id=2, attn_implementation="sdpa")  # fmt: skip
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with torch.device(device):
            model = LlamaForSequenceClassification(config)
    finally:
        torch.set_default_dtype(previous)
    return model.eval()


def throughput(shape: dict, tokenizer, device: str, dtype, args) -> dict:
    """RepLLaMA encode tokens/s and RankLLaMA pairs/s of a ``shape`` model with random weights."""
    import torch

    from pyserini_llama.encoders.repllama import RepLLaMAEncoder
    from pyserini_llama.modeling.tokens import choose_pad_id
    from pyserini_llama.rerankers.rankllama import RankLLaMAReranker

    start = time.perf_counter()
    torch.manual_seed(0)
    model = build_classifier(shape, max(shape.get("vocab_size", 0), len(tokenizer)), choose_pad_id(tokenizer),
                             device, dtype)  # fmt: skip
    sync(device)
    built_s = time.perf_counter() - start
    params = sum(p.numel() for p in model.parameters())
    embedding = model.model.embed_tokens.weight.numel()
    out = {"params": params, "non_embedding_params": params - embedding, "build_s": built_s}

    encoder = RepLLaMAEncoder.from_model(model.model, tokenizer, device=device, passage_max_length=args.length,
                                         batch_size=args.batch_size)  # fmt: skip
    texts = passages(args.batch_size * args.batches)
    encoder.encode_passages(texts[: args.batch_size])  # warm-up (kernels, allocator)
    sync(device)
    start = time.perf_counter()
    vectors = encoder.encode_passages(texts)
    sync(device)
    seconds = time.perf_counter() - start
    tokens = len(texts) * args.length
    out["encode"] = {"passages": len(texts), "tokens_per_passage": args.length, "batch_size": args.batch_size,
                     "seconds": seconds, "tokens_per_s": tokens / seconds, "passages_per_s": len(texts) / seconds,
                     "tflops": 2 * out["non_embedding_params"] * tokens / seconds / 1e12,
                     "finite": bool(torch.isfinite(torch.from_numpy(vectors)).all())}  # fmt: skip

    reranker = RankLLaMAReranker.from_model(model, tokenizer, device=device, query_max_length=32,
                                            max_length=args.length, batch_size=args.batch_size)  # fmt: skip
    pairs = [(f"query: {t[:120]}", t) for t in texts]
    reranker.score_pairs(pairs[: args.batch_size])
    sync(device)
    start = time.perf_counter()
    scores = reranker.score_pairs(pairs)
    sync(device)
    seconds = time.perf_counter() - start
    out["rerank"] = {"pairs": len(pairs), "tokens_per_pair": args.length, "seconds": seconds,
                     "pairs_per_s": len(pairs) / seconds,
                     "tflops": 2 * out["non_embedding_params"] * len(pairs) * args.length / seconds / 1e12,
                     "finite": bool(torch.isfinite(torch.from_numpy(scores)).all())}  # fmt: skip
    if device.startswith("cuda"):
        out["max_memory_gib"] = torch.cuda.max_memory_allocated() / 2**30
    del encoder, reranker, model
    if device.startswith("cuda"):
        torch.cuda.empty_cache()
    return out


def fidelity(tiny_dir: Path, device: str) -> dict:
    """Max |Δ| of a tiny model's embeddings and RankLLaMA scores on ``device`` vs cpu (float32)."""
    import numpy as np

    from pyserini_llama.encoders.repllama import RepLLaMAEncoder
    from pyserini_llama.rerankers.rankllama import RankLLaMAReranker

    queries = ["what is a lobster roll", "panda bear habitat", "genes and proteins"]
    docs = passages(6, seed=1)
    result = {}
    reference = RepLLaMAEncoder(str(tiny_dir / "base"), device="cpu", batch_size=4)
    ref_q, ref_p = reference.encode_queries(queries), reference.encode_passages([d[:300] for d in docs])
    ranker = RankLLaMAReranker(str(tiny_dir / "classifier"), device="cpu", batch_size=4)
    ref_s = ranker.score(queries[0], docs)
    for dtype in ("float32", "bfloat16"):
        enc = RepLLaMAEncoder(str(tiny_dir / "base"), device=device, dtype=dtype, batch_size=4)
        q, p = enc.encode_queries(queries), enc.encode_passages([d[:300] for d in docs])
        s = RankLLaMAReranker(str(tiny_dir / "classifier"), device=device, dtype=dtype, batch_size=4).score(
            queries[0], docs
        )
        result[f"{device}_{dtype}_vs_cpu_float32"] = {
            "embedding_max_abs_diff": float(max(np.abs(q - ref_q).max(), np.abs(p - ref_p).max())),
            "score_max_abs_diff": float(np.abs(s - ref_s).max()),
            "score_scale": float(np.abs(ref_s).max()),
        }
    return result


def ddp_step(tiny_dir: Path, workdir: Path, device: str, timeout: int) -> dict:
    """One optimizer step of our training CLI under torchrun (1 process; nccl on cuda, gloo on cpu)."""
    from pyserini_llama.testing import write_train_file

    train = workdir / "train.jsonl"
    write_train_file(train, scores=False)
    output = workdir / "ddp-out"
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "1",
               "-m", "pyserini_llama.train", "repllama", "--model", str(tiny_dir / "base"), "--train", str(train),
               "--output", str(output), "--max-steps", "1", "--warmup-steps", "0", "--per-device-batch-size", "2",
               "--group-size", "2", "--lora-r", "4", "--lora-alpha", "8", "--query-max-length", "16",
               "--passage-max-length", "32", "--save-steps", "1", "--logging-steps", "1", "--device", device]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=timeout, cwd=workdir)
    files = sorted(p.name for p in output.iterdir()) if output.is_dir() else []
    return {
        "backend": "nccl" if device.startswith("cuda") else "gloo",
        "returncode": done.returncode,
        "seconds": time.perf_counter() - start,
        "adapter_written": "adapter_model.safetensors" in files,
        "output_files": files,
        "log_tail": (done.stdout + done.stderr)[-1500:],
    }


def build_tiny(workdir: Path) -> tuple[Path, object]:
    """A tiny random LLaMA (``base``) and a classifier with a saved random score head (``classifier``)."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from pyserini_llama.testing import build_tiny_llama

    base = build_tiny_llama(workdir / "tiny" / "base")
    tokenizer = AutoTokenizer.from_pretrained(base)
    torch.manual_seed(3)
    AutoModelForSequenceClassification.from_pretrained(base, num_labels=1).save_pretrained(
        workdir / "tiny" / "classifier"
    )
    tokenizer.save_pretrained(workdir / "tiny" / "classifier")
    return workdir / "tiny", tokenizer


def markdown(results: dict) -> str:
    lines = [f"# GPU check ({results['mode']}): {results['device_name']}", ""]
    if "gemm" in results:
        g = results["gemm"]
        lines += [f"{results['dtype']} GEMM (torch.matmul, {g['rows']} rows): peak {g['peak_tflops']:.3g} TFLOP/s "
                  + "(" + ", ".join(f"{k} {v:.3g}" for k, v in g["shapes_tflops"].items()) + ")", ""]  # fmt: skip
    if "model" in results:
        m, peak = results["model"], results["gemm"]["peak_tflops"]
        e, r = m["encode"], m["rerank"]
        lines += [
            f"model: {results['shape']} shape, {m['params'] / 1e9:.2f}B params, random weights, built in {m['build_s']:.1f}s",
            "",
            "| path | throughput | TFLOP/s (2 x params x tokens) | share of measured GEMM peak |",
            "|---|---:|---:|---:|",
            f"| RepLLaMA encode ({e['tokens_per_passage']} tokens, batch {e['batch_size']}) | "
            f"{e['tokens_per_s']:,.0f} tokens/s ({e['passages_per_s']:,.1f} passages/s) | {e['tflops']:.3g} | "
            f"{e['tflops'] / peak:.0%} |",
            f"| RankLLaMA rerank ({r['tokens_per_pair']} tokens/pair) | {r['pairs_per_s']:,.1f} pairs/s | "
            f"{r['tflops']:.3g} | {r['tflops'] / peak:.0%} |",
            "",
        ]  # fmt: skip
    for name, f in results.get("fidelity", {}).items():
        lines.append(f"fidelity {name}: embeddings max |Δ| {f['embedding_max_abs_diff']:.2e}, "
                     f"scores max |Δ| {f['score_max_abs_diff']:.2e} (scores up to {f['score_scale']:.2f})")  # fmt: skip
    if "ddp" in results:
        d = results["ddp"]
        ok = d["returncode"] == 0 and d["adapter_written"]
        lines += [
            "",
            f"DDP step ({d['backend']}, torchrun 1 process): {'ok' if ok else 'FAILED'} in {d['seconds']:.1f}s",
        ]
    for name, error in results.get("errors", {}).items():
        lines.append(f"\n**{name} failed**: {error}")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cpu-smoke", action="store_true", help="tiny shapes on CPU (gloo): checks the script runs")
    p.add_argument("--out", default=os.environ.get("OUT"), help="directory for gpu_check.json/.md (default $OUT)")
    p.add_argument("--batch-size", type=int, default=None, help="passages/pairs per batch (default 64; smoke 4)")
    p.add_argument("--batches", type=int, default=None, help="timed batches (default 6; smoke 2)")
    p.add_argument("--length", type=int, default=196, help="tokens per passage / pair (default 196, the paper's)")
    p.add_argument("--skip", nargs="*", default=[], choices=("gemm", "model", "fidelity", "ddp"))
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    import torch

    smoke = args.cpu_smoke
    if not smoke and not torch.cuda.is_available():
        p.error("no CUDA device visible; run with --cpu-smoke to check the script on CPU")
    device = "cpu" if smoke else "cuda"
    args.batch_size = args.batch_size or (4 if smoke else 64)
    args.batches = args.batches or (2 if smoke else 6)
    if smoke:
        args.length = min(args.length, 48)
    dtype = torch.float32 if smoke else torch.bfloat16
    shape = TINY if smoke else LLAMA2_7B
    results: dict = {
        "mode": "cpu-smoke" if smoke else "gpu",
        "device_name": torch.cuda.get_device_name(0) if device == "cuda" else "cpu",
        "torch": torch.__version__,
        "shape": "tiny" if smoke else "Llama-2-7B",
        "dtype": str(dtype).removeprefix("torch."),
        "errors": {},
    }
    workdir = Path(tempfile.mkdtemp(prefix="gpu-check."))
    tiny_dir, tokenizer = build_tiny(workdir)
    steps = [
        ("gemm", lambda: gemm_rate(shape, args.batch_size * args.length, device, dtype, 5 if smoke else 20)),
        ("model", lambda: throughput(shape, tokenizer, device, dtype, args)),
        ("fidelity", lambda: fidelity(tiny_dir, device)),
        ("ddp", lambda: ddp_step(tiny_dir, workdir, device, timeout=240)),
    ]
    for name, step in steps:
        if name in args.skip:
            continue
        start = time.perf_counter()
        try:
            results[name] = step()
        except Exception as exc:  # report every part, even if one fails
            logger.exception("%s failed", name)
            results["errors"][name] = f"{type(exc).__name__}: {exc}"
        logger.info("%s done in %.1fs", name, time.perf_counter() - start)
    report = markdown(results)
    print(report)
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "gpu_check.json").write_text(json.dumps(results, indent=1))
        (out / "gpu_check.md").write_text(report)
    ddp_ok = "ddp" in args.skip or (results.get("ddp", {}).get("returncode") == 0)
    return 1 if results["errors"] or not ddp_ok else 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env bash
# GPU check in one command (at most 8 minutes): 7B-shaped RepLLaMA encode tokens/s and RankLLaMA
# pairs/s against the GPU's measured bf16 GEMM rate, cuda-vs-cpu fidelity, one DDP (nccl) step.
# Needs torch, transformers and peft only (no Pyserini, FAISS or Java, no install step).
# Results: $OUT/gpu_check.json and $OUT/gpu_check.md (or ./gpu_check_out when OUT is unset).
#   bash benchmarks/gpu_check.sh
#   bash benchmarks/gpu_check.sh --cpu-smoke     # tiny shapes on CPU, to check the script itself
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python}"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
exec timeout --kill-after=10 470 "$PYTHON" benchmarks/gpu_check.py --out "${OUT:-gpu_check_out}" "$@"

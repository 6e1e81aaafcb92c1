#!/usr/bin/env bash
# Why does RepLLaMA-SmolLM2 sit at chance loss for its first steps, and what shortens that?
# Short runs of the same data and steps, one lever changed at a time, top-6 LoRA from the trunk cache
# (the cheapest step; tests/test_trunk_training.py shows it trains exactly what all-layer-frozen-below does).
# Resumable: a finished run is a no-op, an interrupted one continues from its last checkpoint.
#
#   benchmarks/sweep_repllama_plateau.sh TRAIN_DIR CACHE_DIR [STEPS]
# TRAIN_DIR holds scifact.bm25.jsonl and nfcorpus.bm25.jsonl from `python -m pyserini_llama.mine` (see the
# repllama model card); the loss curves land in TRAIN_DIR/plateau/<run>/train_log.jsonl.
set -euo pipefail
TRAIN=${1:?training data directory}
CACHE=${2:?trunk cache directory}
STEPS=${3:-60}
PY=${PYTHON:-.venv/bin/python}
common=(--model smollm2-135m-instruct
  --train "$TRAIN/scifact.bm25.jsonl" "$TRAIN/scifact.bm25.jsonl" "$TRAIN/nfcorpus.bm25.jsonl"
  --lora-layers 6 --trunk-cache "$CACHE" --lora-r 16 --lora-alpha 32 --lora-dropout 0
  --group-size 2 --per-device-batch-size 16 --query-max-length 32 --passage-max-length 64
  --warmup-steps 10 --max-steps "$STEPS" --logging-steps 5 --save-steps 20 --seed 42)
run() {
  local name=$1; shift
  echo "== $name: $*"
  "$PY" -m pyserini_llama.train repllama "${common[@]}" --output "$TRAIN/plateau/$name" "$@"
}
run t0.02-lr1e-3 --temperature 0.02 --learning-rate 1e-3
run t0.05-lr1e-3 --temperature 0.05 --learning-rate 1e-3
run t0.1-lr1e-3 --temperature 0.1 --learning-rate 1e-3
run tlearn0.05-lr1e-3 --temperature 0.05 --learn-temperature --learning-rate 1e-3

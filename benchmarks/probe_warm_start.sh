#!/usr/bin/env bash
# Does a trained RepLLaMA backbone give RankLLaMA features a linear head can rank with? A linear probe (LP-FT's
# --head-init probe) on frozen last-token features of the same MS MARCO groups, once from SmolLM2 and once with the
# LoRA weights warm-started from repllama-smollm2-135m (--warm-start). MS MARCO because that RepLLaMA never saw it.
# Each run does one training step after the probe; the fit lands in TRAIN_DIR/probe-<run>/head_probe.json.
#
#   benchmarks/probe_warm_start.sh [TRAIN_DIR]     (TRAIN_DIR/msmarco4000.bm25.jsonl: the RankLLaMA card's step 2)
set -euo pipefail
TRAIN=${1:-train}
PY=${PYTHON:-.venv/bin/python}
common=(--model smollm2-135m-instruct --train "$TRAIN/msmarco4000.bm25.jsonl" --lora-layers 6 --lora-r 16
  --lora-alpha 32 --lora-dropout 0 --group-size 4 --per-device-batch-size 8 --query-max-length 32
  --passage-max-length 64 --learning-rate 1e-3 --warmup-steps 20 --max-steps 1 --head-init probe
  --probe-queries 240 --seed 42)
for run in warm base; do
  extra=()
  if [ "$run" = warm ]; then extra=(--warm-start repllama-smollm2-135m); fi
  "$PY" -m pyserini_llama.train rankllama "${common[@]}" "${extra[@]}" --output "$TRAIN/probe-$run"
  echo "== $run: $(tr -d '\n ' < "$TRAIN/probe-$run/head_probe.json")"
done

#!/usr/bin/env bash
# RankLLaMA-SmolLM2: a score head fitted by linear probing (LP-FT) vs a random one, same data and steps.
# Both runs read the same pairs, so the second reuses the first's trunk cache. Resumable.
#
#   benchmarks/sweep_rankllama_head.sh TRAIN_DIR CACHE_DIR [STEPS]
# TRAIN_DIR holds scifact.bm25.jsonl and nfcorpus.bm25.jsonl (`python -m pyserini_llama.mine`); the loss curves
# land in TRAIN_DIR/head/<run>/train_log.jsonl, the probe's fit in TRAIN_DIR/head/probe/head_probe.json.
set -euo pipefail
TRAIN=${1:?training data directory}
CACHE=${2:?trunk cache directory}
STEPS=${3:-30}
PY=${PYTHON:-.venv/bin/python}
common=(--model smollm2-135m-instruct
  --train "$TRAIN/scifact.bm25.jsonl" "$TRAIN/scifact.bm25.jsonl" "$TRAIN/nfcorpus.bm25.jsonl"
  --lora-layers 6 --trunk-cache "$CACHE" --lora-r 16 --lora-alpha 32 --lora-dropout 0
  --group-size 4 --per-device-batch-size 8 --query-max-length 32 --passage-max-length 64
  --learning-rate 5e-4 --warmup-steps 5 --max-steps "$STEPS" --logging-steps 2 --save-steps 10 --seed 42
  --probe-queries 128)
for head in probe random; do
  echo "== head $head"
  "$PY" -m pyserini_llama.train rankllama "${common[@]}" --head-init "$head" --output "$TRAIN/head/$head"
done

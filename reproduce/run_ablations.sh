#!/usr/bin/env bash
# The ablation sweeps behind docs/RESULTS.md ("Ablations"), sized for 2 CPU cores (about 80 minutes).
# Every step is resumable: rerun this script after an interruption and finished points are reused.
# Peak RSS of each sweep is printed by /usr/bin/time -v ("Maximum resident set size").
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
D=../shared/data
timed() { /usr/bin/time -v "$@" 2> >(tee -a logs/ablations.time >&2); }
mkdir -p logs runs

# first-stage BM25 runs (Lucene indexes built once)
[ -s runs/aila.bm25.trec ] || $PY -m pyserini_llama.search.lucene --dataset $D/legal/aila2019 --split test \
  --index indexes/aila.bm25 --output runs/aila.bm25.trec --hits 100
for c in scifact nfcorpus; do
  [ -s runs/$c.bm25.trec ] || $PY -m pyserini_llama.search.lucene --dataset $D/beir/$c --split test --remove-query \
    --index indexes/$c.bm25 --output runs/$c.bm25.trec --hits 1000
done

# AILA 2019 (long judgments; first 10 queries): input length 128..2048 tokens
timed $PY -m pyserini_llama.ablate length --dataset $D/legal/aila2019 --split test --max-queries 10 \
  --reranker rankllama-smollm2-135m --run runs/aila.bm25.trec --depth 10 --modes first \
  --lengths 128,256,512,1024,2048 --query-max-length 64 --output-dir ablations/aila.length.rankllama
timed $PY -m pyserini_llama.ablate length --dataset $D/legal/aila2019 --split test --max-queries 10 \
  --retriever repllama-smollm2-135m --run runs/aila.bm25.trec --pool-depth 10 --modes first \
  --lengths 64,128,256,512,1024,2048 --query-max-length 256 --output-dir ablations/aila.length.repllama

# SciFact (abstracts; first 20 queries, BM25's top 5): truncation vs MaxP vs the whole abstract, both models
timed $PY -m pyserini_llama.ablate length --dataset $D/beir/scifact --split test --max-queries 20 --remove-query \
  --retriever repllama-smollm2-135m --reranker rankllama-smollm2-135m --run runs/scifact.bm25.trec \
  --depth 5 --pool-depth 5 --lengths 64,128,256,512 --full-length 1024 --stride-fraction 1 \
  --output-dir ablations/scifact.length

# rerank depth (first 20 queries, pairs of the trained 96 tokens)
for c in scifact nfcorpus; do
  timed $PY -m pyserini_llama.ablate depth --dataset $D/beir/$c --split test --max-queries 20 \
    --reranker rankllama-smollm2-135m --run runs/$c.bm25.trec --depths 5,10,20,50,100 --max-length 96 \
    --batch-size 32 --output-dir ablations/$c.depth
done

# LoRA vs full fine-tuning (RepLLaMA from SmolLM2-135M, 60 steps each), scored over BM25's top 20 of 20 queries
[ -s train/scifact.bm25.jsonl ] || $PY -m pyserini_llama.mine --dataset $D/beir/scifact --split train \
  --first-stage bm25 --depth 100 --negatives 15 --index-dir train/indexes/scifact --output train/scifact.bm25.jsonl
timed $PY -m pyserini_llama.ablate lora-vs-full --dataset $D/beir/scifact --split test --max-queries 20 \
  --remove-query --run runs/scifact.bm25.trec --pool-depth 20 \
  --model smollm2-135m-instruct --train train/scifact.bm25.jsonl --max-steps 60 --per-device-batch-size 8 \
  --group-size 2 --temperature 0.02 --learning-rate 1e-3 --full-learning-rate 1e-5 --passage-max-length 64 \
  --batch-size 32 --output-dir ablations/scifact.lora-vs-full
# tables (with each point's command), JSON and plots into docs/ablations/<sweep dir>/
for dir in ablations/*/; do
  name=$(basename "$dir"); mkdir -p docs/ablations/$name
  for f in "$dir"length.* "$dir"depth.* "$dir"lora-vs-full.*; do [ -e "$f" ] && cp "$f" docs/ablations/$name/; done
done
echo "all sweeps done"

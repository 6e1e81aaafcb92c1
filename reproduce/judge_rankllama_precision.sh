#!/bin/bash
# RankLLaMA's half of the precision judgement (reproduce/judge_precision.py judges RepLLaMA): rerank each
# dataset's shipped hybrid top 20 (runs of reproduce/first_stage_runs.sh FIRST) with the shipped RankLLaMA in
# each precision named, pairs of 96 tokens, query 32, and print nDCG@10 (-c) of each. A finished rerank is reused
# (the rerank command writes its run atomically, so a run file that exists is complete).
# The float32 reference is the same command with PRECISIONS="float32" (or the pipeline's rankllama stage,
# reproduce/eval_rankllama.sh, which scores the same pairs).
# usage: PRECISIONS="float32 int8" DATASETS="scifact nfcorpus" reproduce/judge_rankllama_precision.sh [FIRST]
set -e
cd "$(dirname "$0")/.."
FIRST=${1:-runs/first-stage}
PY=${PYTHON:-python}
MODEL=${MODEL:-rankllama-smollm2-135m}
OUT=runs/judge-rankllama
mkdir -p $OUT
for c in ${DATASETS:-scifact nfcorpus}; do
  B=../shared/data/beir/$c
  for p in ${PRECISIONS:-float32 int8}; do
    run=$OUT/$c.$p.trec
    if [ ! -s $run ]; then
      echo "== $c $p $(date)"
      $PY -m pyserini_llama.rerank --topics $B/queries.jsonl --run $FIRST/$c-test/run.hybrid.trec --corpus $B/corpus.jsonl \
        --reranker $MODEL --query-max-length 32 --max-length 96 --depth 20 --batch-size 32 --dtype $p --output $run
    fi
    printf '%s %s ' $c $p
    $PY -m pyserini_llama.eval --qrels $B/qrels/test.tsv --run $run --metrics ndcg@10 --complete --json
  done
done

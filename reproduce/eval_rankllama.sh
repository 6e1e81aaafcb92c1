#!/bin/bash
# Score one RankLLaMA model (adapter dir or shipped name) where its targets are measured: DL19 (BM25's top 20),
# SciFact test and NFCorpus test (the shipped RepLLaMA hybrid's top 20, alpha 0.1 / 0.2). The first stages come
# from reproduce/first_stage_runs.sh FIRST (reused through their manifests); pairs of 96 tokens, query 32.
# usage: reproduce/eval_rankllama.sh MODEL NAME [FIRST]   (reranked runs and metrics under runs/rerank/NAME)
set -e
cd "$(dirname "$0")/.."
MODEL=$1; NAME=$2; FIRST=${3:-runs/first-stage}
PY=${PYTHON:-python}
OUT=runs/rerank/$NAME
D=../shared/data/msmarco-passage/dl19
mkdir -p $OUT
echo "== dl19 $(date)"
$PY -m pyserini_llama.rerank --topics $D/queries.jsonl --run $D/run.bm25-top100.trec --corpus $D/corpus.jsonl \
  --reranker $MODEL --query-max-length 32 --max-length 96 --depth 20 --batch-size 32 --output $OUT/dl19.trec
$PY -m pyserini_llama.eval --qrels $D/qrels.txt --run $OUT/dl19.trec --metrics ndcg@10 mrr@10 --json \
  | tee $OUT/dl19.json
source reproduce/first_stage_runs.sh  # first_stage_pipeline: the shipped first stages' flags, spelled once
for c in scifact nfcorpus; do
  echo "== $c test $(date)"
  # the pipeline's --stages takes the last value: the first stages plus rankllama
  first_stage_pipeline $c test $FIRST --stages bm25,repllama,hybrid,rankllama --reranker $MODEL --rerank-depth 20 \
    --reranker-query-max-length 32 --reranker-max-length 96
  cp $FIRST/$c-test/run.rankllama.trec $OUT/$c.trec
  cp $FIRST/$c-test/metrics.json $OUT/$c.metrics.json
done
echo "== done $(date)"

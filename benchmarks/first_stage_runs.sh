#!/bin/bash
# The shipped RepLLaMA's BM25, dense and hybrid runs on every split of SciFact and NFCorpus, the hybrid weighted as
# shipped (SciFact alpha 0.1, chosen on train; NFCorpus 0.2, chosen on dev). Each corpus is encoded once: its splits
# share one index directory. The train-split hybrids are what RankLLaMA's negatives are mined from (the stage it
# will rerank); the test-split hybrids are what it is evaluated on. Resumable (rerun: everything is reused).
# usage: benchmarks/first_stage_runs.sh [OUT]        (default runs/first-stage; runs/ is scratch)
set -e
cd "$(dirname "$0")/.."
OUT=${1:-runs/first-stage}
for job in scifact:0.1:train,test nfcorpus:0.2:train,test,dev; do
  IFS=: read -r c alpha splits <<<"$job"
  for s in ${splits//,/ }; do
    echo "== $c $s $(date)"
    ${PYTHON:-python} -m pyserini_llama.pipeline --dataset ../shared/data/beir/$c --split $s \
      --output-dir $OUT/$c-$s --index-dir $OUT/$c-indexes --stages bm25,repllama,hybrid \
      --retriever repllama-smollm2-135m --query-max-length 32 --passage-max-length 64 \
      --fusion interpolation --alpha $alpha --batch-size 32
  done
done
echo "== done $(date)"

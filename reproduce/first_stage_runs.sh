#!/bin/bash
# The shipped RepLLaMA's BM25, dense and hybrid runs on every split of SciFact and NFCorpus, the hybrid weighted as
# shipped (alpha 0.01 for both, chosen on SciFact train and NFCorpus dev for the teacher-guided RepLLaMA). Each
# corpus is encoded once: its splits share one index directory. The train-split hybrids are what RankLLaMA's negatives are mined from (the stage it
# will rerank); the test-split hybrids are what it is evaluated on. Resumable (rerun: everything is reused).
# usage: reproduce/first_stage_runs.sh [OUT]        (default runs/first-stage; runs/ is scratch)
# Sourced by eval_rankllama.sh for first_stage_pipeline, so both spell the first stages once (a different flag
# would not match the manifests and would re-encode the corpus).
first_stage_pipeline() {  # CORPUS SPLIT OUT [more pipeline flags]: the shipped first stages, reused if built
  local c=$1 s=$2 out=$3 alpha
  shift 3
  case $c in scifact | nfcorpus) alpha=0.01 ;; *) echo "no shipped fusion weight for $c" >&2; return 1 ;; esac
  ${PYTHON:-python} -m pyserini_llama.pipeline --dataset ../shared/data/beir/$c --split $s \
    --output-dir $out/$c-$s --index-dir $out/$c-indexes --stages bm25,repllama,hybrid \
    --retriever repllama-smollm2-135m --query-max-length 32 --passage-max-length 64 \
    --fusion interpolation --alpha $alpha --batch-size 32 "$@"
}
[ "${BASH_SOURCE[0]}" = "$0" ] || return 0
set -e
cd "$(dirname "$0")/.."
OUT=${1:-runs/first-stage}
for job in scifact:train,test nfcorpus:train,test,dev; do
  c=${job%%:*}
  for s in $(tr , ' ' <<<"${job##*:}"); do
    echo "== $c $s $(date)"
    first_stage_pipeline $c $s $OUT
  done
done
echo "== done $(date)"

#!/bin/bash
# Score one RepLLaMA model (adapter dir or shipped name) dense and fused with BM25 on SciFact and NFCorpus, and
# choose the fusion on a split that is not the test split (SciFact train, NFCorpus dev), as docs/RESULTS.md
# ("Choosing the fusion") does. Encodes from the trunk cache (top-K adapters); passages of 64 tokens.
# usage: reproduce/eval_repllama_fusion.sh MODEL NAME      (outputs under runs/abl/NAME; runs/ is scratch)
set -e
cd "$(dirname "$0")/.."
MODEL=$1; NAME=$2
OUT=runs/abl/$NAME
for split in scifact:test scifact:train nfcorpus:test nfcorpus:dev; do
  c=${split%%:*}; s=${split##*:}
  echo "== $c $s $(date)"
  # --index-dir: every split of a corpus shares its BM25 and FAISS indexes (built once)
  ${PYTHON:-python} -m pyserini_llama.pipeline --dataset ../shared/data/beir/$c --split $s \
    --output-dir $OUT/$c-$s --index-dir $OUT/$c-indexes --stages bm25,repllama --retriever $MODEL \
    --query-max-length 32 --passage-max-length 64 --batch-size 32 --trunk-cache cache/trunk
  ${PYTHON:-python} reproduce/sweep_fusion.py --run-dir $OUT/$c-$s --qrels ../shared/data/beir/$c/qrels/$s.tsv \
    | tee $OUT/$c-$s/fusion.md
done
echo "== done $(date)"

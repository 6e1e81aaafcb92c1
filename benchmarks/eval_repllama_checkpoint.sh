#!/bin/bash
# Evaluate one RepLLaMA model (adapter dir or shipped name) at passage length LEN:
#   SciFact test dense full retrieval (pipeline, trunk cache when the model is top-K; the same output and index
#   directories as benchmarks/eval_repllama_fusion.sh, so running both for one model encodes SciFact once),
#   DL19 and MS MARCO dev100: RepLLaMA over BM25's top-20 pool (ablate length --pool-depth 20).
# Needs runs/msmarco-dev100/{queries.jsonl,qrels.tsv,run.bm25.trec}: the first 100 train-subset dev queries, their
# qrels and their BM25 top 100 (commands in docs/RESULTS.md, "RankLLaMA retrained").
# usage: benchmarks/eval_repllama_checkpoint.sh MODEL NAME LEN [skip-scifact]
set -e
cd "$(dirname "$0")/.."
MODEL=$1; NAME=$2; LEN=${3:-64}
OUT=runs/abl/$NAME  # runs/ is scratch (gitignored)
mkdir -p $OUT
if [ "$4" != "skip-scifact" ]; then
  echo "== scifact $(date)"
  ${PYTHON:-python} -m pyserini_llama.pipeline --dataset ../shared/data/beir/scifact --split test \
    --output-dir $OUT/scifact-test --index-dir $OUT/scifact-indexes --stages repllama --retriever $MODEL \
    --query-max-length 32 --passage-max-length $LEN --batch-size 32 --trunk-cache cache/trunk
  cat $OUT/scifact-test/metrics.json
fi
# RepLLaMA over BM25's top-20 pool: ablate length restricts the corpus to the pool's documents.
pool20() {  # NAME CORPUS TOPICS QRELS BM25_RUN
  echo "== $1 $(date)"
  ${PYTHON:-python} -m pyserini_llama.ablate length --corpus "$2" --topics "$3" --qrels "$4" --run "$5" \
    --pool-depth 20 --retriever $MODEL --lengths $LEN --modes first --query-max-length 32 --batch-size 32 \
    --metrics ndcg@10 mrr@10 --output-dir $OUT/$1.pool20
}
D=../shared/data/msmarco-passage/dl19
pool20 dl19 $D/corpus.jsonl $D/queries.jsonl $D/qrels.txt $D/run.bm25-top100.trec
M=runs/msmarco-dev100
pool20 dev100 ../shared/data/msmarco-passage/train-subset/corpus.jsonl $M/queries.jsonl $M/qrels.tsv $M/run.bm25.trec
echo "== done $(date)"

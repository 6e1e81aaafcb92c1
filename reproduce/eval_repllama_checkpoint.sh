#!/bin/bash
# Evaluate one RepLLaMA model (adapter dir or shipped name) at passage length LEN:
#   SciFact test dense full retrieval (pipeline, trunk cache when the model is top-K; the same output and index
#   directories as reproduce/eval_repllama_fusion.sh, so running both for one model encodes SciFact once),
#   DL19 and MS MARCO dev100: RepLLaMA over BM25's top-20 pool (ablate length --pool-depth 20),
#   Cranfield test (zero-shot) full retrieval: BM25, dense and their hybrid at SciFact's alpha 0.1 (the shipped
#   model's Cranfield command in docs/RESULTS.md, with this model).
# dev100 is runs/msmarco-dev100/{queries.jsonl,qrels.tsv,run.bm25.trec}: the first 100 query ids of the train
# subset's qrels/dev.tsv, their qrels and their BM25 top 100 (made here when missing).
# usage: reproduce/eval_repllama_checkpoint.sh MODEL NAME LEN [skip-scifact]
#   PARTS="cranfield dl19" reproduce/eval_repllama_checkpoint.sh ...   runs only the parts named
#   (scifact cranfield dl19 dev100; default: all)
set -e
cd "$(dirname "$0")/.."
MODEL=$1; NAME=$2; LEN=${3:-64}
OUT=runs/abl/$NAME  # runs/ is scratch (gitignored)
mkdir -p $OUT
PARTS=${PARTS:-scifact cranfield dl19 dev100}
[ "$4" = "skip-scifact" ] && PARTS=${PARTS/scifact/}
want() { [[ " $PARTS " == *" $1 "* ]]; }
if want scifact; then
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
if want cranfield; then
  echo "== cranfield $(date)"
  # Cranfield's query ids are also document ids, so --keep-query-hits (see docs/RESULTS.md, Cranfield).
  ${PYTHON:-python} -m pyserini_llama.pipeline --dataset ../shared/data/classic/cranfield --split test \
    --output-dir $OUT/cranfield --index-dir $OUT/cranfield-indexes --stages bm25,repllama,hybrid --retriever $MODEL \
    --query-max-length 32 --passage-max-length $LEN --fusion interpolation --alpha 0.1 --batch-size 32 --keep-query-hits
  cat $OUT/cranfield/metrics.json
fi
D=../shared/data/msmarco-passage/dl19
want dl19 && pool20 dl19 $D/corpus.jsonl $D/queries.jsonl $D/qrels.txt $D/run.bm25-top100.trec
M=runs/msmarco-dev100
MS=../shared/data/msmarco-passage/train-subset
if want dev100 && [ ! -s $M/run.bm25.trec ]; then
  mkdir -p $M
  ${PYTHON:-python} - "$MS" "$M" <<'END_PY'
import json, sys
source, out = sys.argv[1:]
qids, lines = [], []
with open(f"{source}/qrels/dev.tsv") as qrels:
    header = next(qrels)
    for line in qrels:
        qid = line.split("\t")[0]
        if qid not in qids:
            if len(qids) == 100:
                break
            qids.append(qid)
        lines.append(line)
with open(f"{out}/qrels.tsv", "w") as f:
    f.write(header + "".join(lines))
with open(f"{source}/queries.jsonl") as queries, open(f"{out}/queries.jsonl", "w") as f:
    f.writelines(line for line in queries if json.loads(line)["_id"] in set(qids))
END_PY
  ${PYTHON:-python} -m pyserini_llama.search.lucene --topics $M/queries.jsonl --corpus $MS/corpus.jsonl \
    --index train/indexes/msmarco/bm25.lucene --output $M/run.bm25.trec --hits 100
fi
want dev100 && pool20 dev100 ../shared/data/msmarco-passage/train-subset/corpus.jsonl $M/queries.jsonl $M/qrels.tsv $M/run.bm25.trec
echo "== done $(date)"

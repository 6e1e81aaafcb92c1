#!/bin/bash
# One RankLLaMA adapter on top of one RepLLaMA adapter, with the last stage's interpolation weight and depth CHOSEN on
# NFCorpus dev and then only reported on the test splits:
#   1. NFCorpus dev: BM25, RepLLaMA, hybrid (alpha 0.2), RankLLaMA on the hybrid's top 20 (pure);
#      python -m pyserini_llama.rerank.sweep over W = 0..1 at depths 10 and 20 -> the best (depth, W);
#   2. SciFact test and NFCorpus test: the four stages at that depth, pure and interpolated;
#   3. DL19: BM25's top 20 reranked, pure (zero-shot; no interpolation, so the reranker alone is judged).
# Pairs of 96 tokens (query 32). Hybrid weights: ALPHA_SCIFACT (0.1), ALPHA_NFCORPUS (0.2). Writes runs/recipes/NAME/rank.json.
# usage: reproduce/eval_teacher_rankllama.sh RERANKER RETRIEVER NAME [DTYPE] [TRUNK_CACHE]
set -euo pipefail
cd "$(dirname "$0")/.."
RERANKER=$1 RETRIEVER=$2 NAME=$3 DTYPE=${4:-float32}
CACHE=${5:-cache/trunk-eval-$DTYPE}
PYTHON=${PYTHON:-python}
OUT=runs/recipes/$NAME
DATA=${DATA:-../shared/data}
mkdir -p "$OUT"

stages() {  # COLLECTION SPLIT ALPHA DEPTH [more pipeline flags]
  local c=$1 s=$2 alpha=$3 depth=$4
  shift 4
  $PYTHON -m pyserini_llama.pipeline --dataset $DATA/beir/$c --split $s --output-dir "$OUT/$c-$s" \
    --index-dir "$OUT/indexes-$c" --stages bm25,repllama,hybrid,rankllama --retriever "$RETRIEVER" \
    --reranker "$RERANKER" --rerank-depth "$depth" --query-max-length 32 --passage-max-length 64 \
    --reranker-query-max-length 32 --reranker-max-length 96 --fusion interpolation --alpha "$alpha" \
    --batch-size 32 --dtype "$DTYPE" --trunk-cache "$CACHE" "$@" >"$OUT/$c-$s.rank.log" 2>&1
}

A_SCIFACT=${ALPHA_SCIFACT:-0.1} A_NFCORPUS=${ALPHA_NFCORPUS:-0.2}  # the hybrid's BM25 weight (chosen on train / dev)
stages nfcorpus dev $A_NFCORPUS 20
for depth in 10 20; do
  $PYTHON -m pyserini_llama.rerank.sweep --first "$OUT/nfcorpus-dev/run.hybrid.trec" \
    --reranked "$OUT/nfcorpus-dev/run.rankllama.trec" --qrels $DATA/beir/nfcorpus/qrels/dev.tsv \
    --depth $depth --json "$OUT/sweep-depth$depth.json" >"$OUT/sweep-depth$depth.md"
done
read -r DEPTH W < <($PYTHON - "$OUT" <<'EOF'
import json, sys
from pathlib import Path
sweeps = {d: json.loads((Path(sys.argv[1]) / f"sweep-depth{d}.json").read_text())["best"] for d in (10, 20)}
depth = max(sweeps, key=lambda d: (sweeps[d]["ndcg@10"], -d))  # ties: the cheaper depth
print(depth, sweeps[depth]["weight"])
EOF
)
echo "chosen on NFCorpus dev: depth $DEPTH, W $W"
stages scifact test $A_SCIFACT "$DEPTH" --rerank-interpolate "$W"
stages nfcorpus test $A_NFCORPUS "$DEPTH" --rerank-interpolate "$W"

D=$DATA/msmarco-passage/dl19
$PYTHON -m pyserini_llama.rerank --topics $D/queries.jsonl --run $D/run.bm25-top100.trec --corpus $D/corpus.jsonl \
  --reranker "$RERANKER" --query-max-length 32 --max-length 96 --depth 20 --batch-size 32 --dtype "$DTYPE" \
  --output "$OUT/dl19.rankllama.trec" >"$OUT/dl19.log" 2>&1
$PYTHON -m pyserini_llama.eval --qrels $D/qrels.txt --run "$OUT/dl19.rankllama.trec" --metrics ndcg@10 --complete \
  --json >"$OUT/dl19.json"

$PYTHON - "$OUT" "$NAME" "$RERANKER" "$RETRIEVER" "$DTYPE" "$DEPTH" "$W" <<'EOF' | tee "$OUT/rank.json"
import json, sys
from pathlib import Path
out, name, reranker, retriever, dtype, depth, w = Path(sys.argv[1]), *sys.argv[2:]
row = {"name": name, "reranker": reranker, "retriever": retriever, "dtype": dtype, "depth": int(depth),
       "interpolate": float(w)}
for part in ("nfcorpus-dev", "scifact-test", "nfcorpus-test"):
    metrics = json.loads((out / part / "metrics.json").read_text())["metrics"]
    for stage, scores in metrics.items():
        row[f"{part}:{stage}"] = round(scores["ndcg@10"], 4)
row["dl19:rankllama"] = round(json.loads((out / "dl19.json").read_text())["ndcg@10"], 4)
print(json.dumps(row))
EOF

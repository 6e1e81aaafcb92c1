"""reproduce/gpu_train.sh must run the moment a GPU is lent; its --cpu-smoke mode keeps it from rotting.

The smoke mode takes the script's whole path (file checks, model resolution, RepLLaMA then RankLLaMA
through ``python -m pyserini_llama.train``, timings.json, the archive) on CPU with a tiny model and two
steps each; --dry-run shows the GPU recipe it would run without training anything.
"""

import json
import os
import shlex
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest

from pyserini_llama.testing import write_train_file

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "reproduce" / "gpu_train.sh"


def run_script(*args, **env_vars):
    env = {k: v for k, v in os.environ.items() if k not in ("OUT", "REPLLAMA_TRAIN", "RANKLLAMA_TRAIN")}
    env.update(PYTHONPATH=str(REPO), PYTHON=sys.executable, OMP_NUM_THREADS="1", **env_vars)
    return subprocess.run(["bash", str(SCRIPT), *map(str, args)], env=env, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def train_files(tmp_path_factory):
    root = tmp_path_factory.mktemp("gpu-train-data")
    rep, rank = root / "rep.teacher.jsonl", root / "rank.teacher.jsonl"
    write_train_file(rep)
    write_train_file(rank, n_queries=6)
    return rep, rank


def planned_commands(stdout: str) -> dict[str, list[str]]:
    lines = [line for line in stdout.splitlines() if " -m pyserini_llama.train " in line]
    return {shlex.split(line)[3]: shlex.split(line) for line in lines}


def flag(command: list[str], name: str) -> str:
    return command[command.index(name) + 1]


def test_cpu_smoke_trains_both_models_end_to_end(tiny_llama, train_files, tmp_path):
    from pyserini_llama.encoders.repllama import RepLLaMAEncoder
    from pyserini_llama.rerankers.rankllama import RankLLaMAReranker

    rep, rank = train_files
    out = tmp_path / "gpu-train"
    done = run_script("--cpu-smoke", "--model", tiny_llama, out, REPLLAMA_TRAIN=str(rep), RANKLLAMA_TRAIN=str(rank))
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]

    for name in ("repllama", "rankllama"):
        folder = out / name
        assert (folder / "adapter_model.safetensors").is_file() and (folder / "adapter_config.json").is_file()
        assert json.loads((folder / "input_format.json").read_text())["text_case"] == "fold-all-caps"
        assert not list(folder.glob("checkpoint-*"))  # only the final adapter is kept
        log = [json.loads(line) for line in (folder / "train_log.jsonl").read_text().splitlines()]
        assert [r["step"] for r in log] == [1, 2]
        args = json.loads((folder / "training_args.json").read_text())
        assert args["steps"] == 2 and args["group_size"] == 3 and args["per_device_batch_size"] == 2
        assert args["case_augment"] == 0.1 and args["distil_weight"] == 0.5 and args["lora_layers"] == 1
        assert (args["lora_r"], args["lora_alpha"], args["lora_dropout"]) == (16, 32, 0.0)
        pair = (args["query_max_length"], args["passage_max_length"] or args["max_length"])
        assert pair == ((32, 64) if name == "repllama" else (32, 96))
        assert (out / f"{name}.log").is_file()
    assert json.loads((out / "repllama" / "training_args.json").read_text())["distil_temperature"] == 0.02
    assert json.loads((out / "rankllama" / "training_args.json").read_text())["distil_temperature"] == 0.2

    timings = json.loads((out / "timings.json").read_text())
    assert timings["mode"] == "cpu-smoke" and timings["total_wall_s"] > 0
    for name, queries in (("repllama", 8), ("rankllama", 6)):
        t = timings[name]
        assert t["wall_s"] > 0 and t["steps_done"] == t["steps_planned"] == 2 and not t["stopped_by_time_limit"]
        assert t["training_queries"] == queries and t["seconds_per_step_median"] > 0
    with tarfile.open(out / "gpu_train.tar.gz") as archive:
        names = set(archive.getnames())
    assert {"timings.json", "repllama/adapter_model.safetensors", "rankllama/input_format.json"} <= names
    assert f"python -m pyserini_llama.export {out}/repllama pyserini_llama/models/repllama-smollm2-135m" in (
        done.stdout
    )
    assert f"--reranker {out}/rankllama" in done.stdout

    encoder = RepLLaMAEncoder(str(out / "repllama"))
    assert encoder.text_case == "fold-all-caps"
    upper, lower = encoder.encode_queries(["PANDA BEAR", "panda bear"])
    assert np.isfinite(upper).all() and np.allclose(upper, lower)
    reranker = RankLLaMAReranker(str(out / "rankllama"))
    assert reranker.text_case == "fold-all-caps"
    assert np.isfinite(np.asarray(reranker.score("panda", ["a bear", "a fox"]))).all()


def test_dry_run_plans_the_gpu_recipe_within_the_budget(tiny_llama, train_files, tmp_path):
    rep, rank = train_files
    done = run_script(
        "--dry-run", "--model", tiny_llama, tmp_path / "x", REPLLAMA_TRAIN=str(rep), RANKLLAMA_TRAIN=str(rank)
    )
    assert done.returncode == 0, done.stderr[-3000:]
    commands = planned_commands(done.stdout)
    assert set(commands) == {"repllama", "rankllama"}
    for name, batch in (("repllama", "64"), ("rankllama", "16")):
        command = commands[name]
        assert "--bf16" in command and flag(command, "--device") == "cuda"
        assert flag(command, "--lora-layers") == "6" and flag(command, "--group-size") == "16"
        assert flag(command, "--per-device-batch-size") == batch
        assert flag(command, "--text-case") == "fold-all-caps" and flag(command, "--case-augment") == "0.1"
        assert flag(command, "--distil-weight") == "0.5"
    assert flag(commands["repllama"], "--temperature") == "0.02"
    assert flag(commands["repllama"], "--distil-temperature") == "0.02"
    assert flag(commands["rankllama"], "--distil-temperature") == "0.2"
    # the default plan: each model's steps at its estimated s/step fit its share of the 450 s budget
    rep_steps = int(flag(commands["repllama"], "--max-steps"))
    rank_steps = int(flag(commands["rankllama"], "--max-steps"))
    assert 100 < rep_steps and rep_steps * 0.35 + 25 <= 225
    assert 100 < rank_steps and 25 + rep_steps * 0.35 + 25 + rank_steps * 0.35 * 24576 / 67584 * 1.2 <= 450
    assert not (tmp_path / "x" / "repllama").exists()

    overridden = run_script(
        "--dry-run", "--model", tiny_llama, tmp_path / "x", REPLLAMA_TRAIN=str(rep), RANKLLAMA_TRAIN=str(rank),
        REPLLAMA_STEPS="7", RANKLLAMA_BATCH="4", RANKLLAMA_DISTIL_WEIGHT="0.25", RANKLLAMA_EXTRA_ARGS="--append-eos",
    )  # fmt: skip
    commands = planned_commands(overridden.stdout)
    assert flag(commands["repllama"], "--max-steps") == "7"
    assert flag(commands["rankllama"], "--per-device-batch-size") == "4"
    assert flag(commands["rankllama"], "--distil-weight") == "0.25" and "--append-eos" in commands["rankllama"]


def test_clear_errors_before_any_training(tiny_llama, train_files, tmp_path):
    rep, _ = train_files
    unscored = tmp_path / "plain.jsonl"
    write_train_file(unscored, scores=False)
    out = tmp_path / "out"
    done = run_script("--cpu-smoke", "--model", tiny_llama, out, REPLLAMA_TRAIN=str(rep), RANKLLAMA_TRAIN=str(unscored))
    assert done.returncode == 2
    assert "RankLLaMA training data" in done.stderr and 'no teacher "score"' in done.stderr
    assert not (out / "repllama").exists()  # refused before RepLLaMA trained

    missing = run_script("--cpu-smoke", "--model", tiny_llama, out, REPLLAMA_TRAIN=str(tmp_path / "none*.jsonl"))
    assert missing.returncode == 2 and "no RepLLaMA training file matches" in missing.stderr

    no_model = run_script("--cpu-smoke", out, REPLLAMA_TRAIN=str(rep), RANKLLAMA_TRAIN=str(rep))
    assert no_model.returncode == 2 and "--cpu-smoke needs --model DIR" in no_model.stderr

    usage = run_script("--help")
    assert usage.returncode == 0 and "example" in usage.stdout and "--cpu-smoke" in usage.stdout


def test_packed_model_parts_are_checked_when_joined(tiny_llama, train_files, tmp_path):
    """--pack-model splits a GGUF for carrying; a missing or stale part is named, not loaded."""
    rep, _ = train_files
    gguf = tmp_path / "Fake.Q4_1.gguf"
    gguf.write_bytes(os.urandom(2_500_000))
    pack = tmp_path / "pack"
    packed = run_script("--pack-model", pack, "--part-mib", "1", "--model", gguf)
    assert packed.returncode == 0, packed.stderr
    parts = sorted(pack.rglob("*.part-*"), key=lambda p: p.name)
    assert [p.parent.name for p in parts] == ["1", "2", "3"] and (pack / "1" / "Fake.Q4_1.gguf.sha256").is_file()
    assert b"".join(p.read_bytes() for p in parts) == gguf.read_bytes()

    env = dict(REPLLAMA_TRAIN=str(rep), RANKLLAMA_TRAIN=str(rep), PYSERINI_LLAMA_CACHE=str(tmp_path / "cache"))
    parts[1].write_bytes(parts[1].read_bytes()[:-1] + b"?")
    stale = run_script("--cpu-smoke", "--model", pack, tmp_path / "out", **env)
    assert stale.returncode == 2 and "do not match Fake.Q4_1.gguf.sha256" in stale.stderr
    parts[2].unlink()
    incomplete = run_script("--cpu-smoke", "--model", pack, tmp_path / "out", **env)
    assert incomplete.returncode == 2 and "carry every folder" in incomplete.stderr

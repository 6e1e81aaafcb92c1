"""DDP: two CPU processes (gloo) give the loss and gradients of one process over the same global batch.

RepLLaMA gathers the embeddings of all processes so every query is scored against every passage
of the global batch; each process back-propagates only through its own shard and the loss is
scaled by the world size before DDP averages the gradients (see
``RepLLaMATrainModel.gradient_scale``). If either part were wrong (no gather: fewer negatives;
no scaling: half the gradient) the comparison below would fail.
"""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import torch

from pyserini_llama.testing import write_train_file
from pyserini_llama.training import Trainer, TrainingArguments

#: The configurations compared; "repllama-top1" trains LoRA on the top layer only, from a trunk cache that
#: both processes fill and read at once (then the single process reads it too); "-distil" mixes in the
#: teacher KL (the teacher scores are gathered like the embeddings).
CONFIGS = ("repllama", "rankllama", "repllama-top1", "repllama-distil", "rankllama-distil")


def make_args(config, model, train, output, per_device):
    objective, _, levers = config.partition("-")
    extra = {"lora_layers": 1, "trunk_cache": str(output.parent / "trunk-cache")} if "top1" in levers else {}
    if "distil" in levers:
        extra.update(distil_weight=0.5, distil_temperature=0.5)
    return TrainingArguments(
        objective, model=str(model), train=[str(train)], output=str(output), group_size=3,
        per_device_batch_size=per_device, max_steps=1, warmup_steps=0, lora_r=4, lora_alpha=8, lora_dropout=0.0,
        max_grad_norm=0.0, device="cpu", **extra,
    )  # fmt: skip


def gradients(trainer):
    return {n: p.grad.detach().clone() for n, p in trainer.backbone.named_parameters() if p.requires_grad}


def _worker(rank, world, port, model, train, tmp):
    import torch.distributed as dist

    os.environ.update(
        MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank)
    )
    torch.set_num_threads(1)
    results = {}
    for objective in CONFIGS:
        trainer = Trainer(make_args(objective, model, train, Path(tmp) / f"{objective}-ddp", per_device=2))
        assert trainer.world_size == world
        trainer.fill_trunk_cache()
        loss = torch.tensor([trainer.forward_backward(0)], dtype=torch.float64)
        dist.all_reduce(loss)  # RankLLaMA: each process has its own queries' mean; RepLLaMA: all equal
        results[objective] = {"loss": loss.item() / world, "grads": gradients(trainer)}
    torch.save(results, f"{tmp}/rank{rank}.pt")
    dist.destroy_process_group()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_processes_equal_one_process_over_the_global_batch(tiny_llama, tmp_path):
    import torch.multiprocessing as mp

    train = tmp_path / "train.jsonl"
    write_train_file(train)
    mp.spawn(_worker, args=(2, free_port(), str(tiny_llama), str(train), str(tmp_path)), nprocs=2, join=True)
    ranks = [torch.load(tmp_path / f"rank{r}.pt") for r in range(2)]

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for objective in CONFIGS:
            single = Trainer(make_args(objective, tiny_llama, train, tmp_path / f"{objective}-single", per_device=4))
            single.fill_trunk_cache()
            loss = single.forward_backward(0)
            grads = gradients(single)
            ddp = ranks[0][objective]
            assert abs(ddp["loss"] - loss) < 1e-5, objective
            assert grads.keys() == ddp["grads"].keys()
            error = max((grads[n] - ddp["grads"][n]).abs().max().item() for n in grads)
            scale = max(g.abs().max().item() for g in grads.values())
            print(f"{objective}: loss {loss:.6f}, max |grad| {scale:.3e}, max |grad difference| {error:.2e}")
            assert scale > 1e-3  # gradients big enough for the tolerance to mean something
            # Relative to the largest entry: temperature 0.01 scales RepLLaMA's gradients up to ~20, and
            # float32 sums over differently padded batches differ by ~1e-7 of that (measured 3e-7).
            assert error < 1e-5 * max(1.0, scale), objective
            other = ranks[1][objective]["grads"]  # DDP leaves the same averaged gradient on every process
            assert max((other[n] - ddp["grads"][n]).abs().max().item() for n in grads) < 1e-7
    finally:
        torch.set_num_threads(threads)


def test_torchrun_trains_checkpoints_and_saves(tiny_llama, tmp_path):
    """The documented command under ``torchrun --nproc_per_node 2`` (gloo on CPU) ends with a loadable model."""
    from pyserini_llama.encoders.repllama import RepLLaMAEncoder

    train = tmp_path / "train.jsonl"
    write_train_file(train)
    out = tmp_path / "model"
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
        "-m", "pyserini_llama.train", "repllama", "--model", str(tiny_llama), "--train", str(train),
        "--output", str(out), "--group-size", "3", "--per-device-batch-size", "2", "--max-steps", "3",
        "--save-steps", "2", "--warmup-steps", "1", "--logging-steps", "1", "--device", "cpu",
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert sorted(p.name for p in (out / "checkpoint-2").glob("rng_state_*.pt")) == ["rng_state_0.pt", "rng_state_1.pt"]
    info = json.loads((out / "training_args.json").read_text())
    assert (info["world_size"], info["steps"]) == (2, 3)
    log = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [1, 2, 3]  # written once (rank 0), not once per process
    vectors = RepLLaMAEncoder(str(out)).encode_queries(["panda"])
    assert vectors.shape == (1, 64)

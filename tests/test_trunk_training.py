"""Cheaper training steps that train the same thing: top-K LoRA, the frozen-trunk cache, the probed head.

* ``--lora-layers K`` puts LoRA on the top K decoder layers only; the adapter says so in its own
  config (PEFT ``layers_to_transform``), so our loaders and the model card's code apply it unchanged.
* The layers below run without autograd, and with ``--trunk-cache`` their output is read from disk.
  Neither may change the loss or the gradients: checked here against plain autograd through the
  whole model, within 1e-5 (float32 cache); the float16 cache's deviation is bounded and reported.
* A kill while the cache fills loses at most one shard; the rerun continues and trains to the same
  weights as an uninterrupted run.
* ``--head-init probe`` (RankLLaMA, LP-FT) starts training below chance loss.
"""

import json
import math

import numpy as np
import pytest
import torch
from test_training import synthetic_task

from pyserini_llama.errors import PyseriniLlamaError
from pyserini_llama.modeling.trunk import decoder_of
from pyserini_llama.modeling.trunk_cache import TrunkCache, trunk_fingerprint
from pyserini_llama.testing import build_tiny_llama
from pyserini_llama.train.__main__ import main as train_main
from pyserini_llama.training import TrainingArguments
from pyserini_llama.training.trainer import Trainer


@pytest.fixture(scope="module")
def tiny4(tmp_path_factory):
    """A tiny random LLaMA with 4 decoder layers (so a split leaves layers on both sides)."""
    return build_tiny_llama(tmp_path_factory.mktemp("tiny4"), num_hidden_layers=4)


@pytest.fixture(scope="module")
def train_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "train.jsonl"
    synthetic_task(path, phrasings=1)
    return path


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _arguments(tiny4, train_file, output, objective="repllama", **overrides):
    options = dict(
        group_size=3, per_device_batch_size=4, max_steps=3, warmup_steps=1, learning_rate=1e-3,
        lora_r=4, lora_alpha=8, lora_dropout=0.0, save_steps=2, logging_steps=1, overwrite_output=True,
    )  # fmt: skip
    options.update(overrides)
    return TrainingArguments(objective, model=str(tiny4), train=[str(train_file)], output=str(output), **options)


def _loss_and_gradients(args):
    torch.manual_seed(0)
    trainer = Trainer(args)
    trainer.fill_trunk_cache()
    loss = trainer.forward_backward(0)
    grads = {n: p.grad.detach().clone() for n, p in trainer.model.named_parameters() if p.requires_grad}
    return loss, grads, trainer


@pytest.mark.parametrize("objective", ["repllama", "rankllama"])
def test_split_and_cache_give_the_loss_and_gradients_of_plain_autograd(tiny4, train_file, tmp_path, objective):
    reference = _arguments(tiny4, train_file, tmp_path / "a", objective, lora_layers=2)
    loss0, grads0, trainer0 = _loss_and_gradients(reference)
    trainer0.model.split_forward.split = 0  # the same model, autograd through all four layers
    trainer0.model.zero_grad(set_to_none=True)
    plain_loss = trainer0.forward_backward(0)
    plain = {n: p.grad.detach().clone() for n, p in trainer0.model.named_parameters() if p.requires_grad}
    assert {n.split("layers.")[1].split(".")[0] for n in plain if "lora" in n} == {"2", "3"}

    cached32 = _arguments(tiny4, train_file, tmp_path / "b", objective, lora_layers=2, trunk_cache=str(tmp_path / "c"))
    cached32.trunk_cache_dtype = "float32"
    loss32, grads32, trainer32 = _loss_and_gradients(cached32)
    assert trainer32.model.split_forward.cache.hits > 0 and trainer32.model.split_forward.cache.misses == 0

    scale = max(g.abs().max().item() for g in plain.values())
    for loss, grads in ((loss0, grads0), (loss32, grads32)):
        assert abs(loss - plain_loss) < 1e-5
        assert grads.keys() == plain.keys()
        assert max((grads[n] - plain[n]).abs().max().item() for n in plain) < 1e-5 * max(1.0, scale)

    cached16 = _arguments(tiny4, train_file, tmp_path / "d", objective, lora_layers=2, trunk_cache=str(tmp_path / "c"))
    loss16, grads16, _ = _loss_and_gradients(cached16)
    deviation = max((grads16[n] - plain[n]).abs().max().item() for n in plain) / scale
    print(
        f"{objective}: float16 trunk cache: loss {loss16:.6f} vs {plain_loss:.6f}, max gradient deviation {deviation:.2e}"
    )
    assert abs(loss16 - plain_loss) < 1e-2 and deviation < 1e-2


def test_top_k_adapter_loads_in_our_loader_and_the_model_card_code(tiny4, train_file, tmp_path):
    from peft import PeftConfig, PeftModel
    from transformers import AutoModel, AutoTokenizer

    from pyserini_llama.encoders.repllama import RepLLaMAEncoder

    out = tmp_path / "model"
    args = _arguments(tiny4, train_file, out, lora_layers=2, trunk_cache=str(tmp_path / "cache"), max_steps=4)
    args.learning_rate = 5e-2  # move the weights well away from the base
    trainer = Trainer(args)
    trainer.train()
    config = json.loads((out / "adapter_config.json").read_text())
    assert config["layers_to_transform"] == [2, 3]
    from safetensors.torch import load_file

    keys = load_file(out / "adapter_model.safetensors").keys()
    assert keys and all(".layers.2." in k or ".layers.3." in k for k in keys)

    texts = ["passage: a giant panda lives in China", "passage: the quick brown fox"]
    ours = RepLLaMAEncoder(str(out), passage_max_length=64).encode_texts(texts, 64)

    # The model card's code, verbatim in spirit: PeftConfig -> base -> PeftModel -> merge.
    peft_config = PeftConfig.from_pretrained(out)
    base = AutoModel.from_pretrained(peft_config.base_model_name_or_path)
    card = PeftModel.from_pretrained(base, out).merge_and_unload().eval()
    tokenizer = AutoTokenizer.from_pretrained(peft_config.base_model_name_or_path)
    for text, vector in zip(texts, ours, strict=True):
        inputs = tokenizer(f"{text}</s>", return_tensors="pt")
        with torch.no_grad():
            emb = card(**inputs).last_hidden_state[0][-1]
        emb = torch.nn.functional.normalize(emb, p=2, dim=0).numpy()
        assert np.abs(emb - vector).max() < 1e-5

    base_vectors = RepLLaMAEncoder(str(tiny4)).encode_texts(texts, 64)
    assert np.abs(base_vectors - ours).max() > 1e-3  # the adapter does change the embeddings


def test_a_run_killed_while_filling_the_cache_resumes(tiny4, train_file, tmp_path, monkeypatch):
    common = ["--model", str(tiny4), "--train", str(train_file), "--group-size", "3", "--per-device-batch-size", "4",
              "--max-steps", "3", "--warmup-steps", "1", "--lora-layers", "2", "--lora-dropout", "0",
              "--logging-steps", "1", "--trunk-cache-dtype", "float32"]  # fmt: skip
    assert train_main(["repllama", *common, "--output", str(tmp_path / "straight"),
                       "--trunk-cache", str(tmp_path / "cache-straight")]) == 0  # fmt: skip

    from pyserini_llama.modeling import trunk_cache

    real_put = trunk_cache.TrunkCache.put
    calls = []

    def dies_at_second_shard(self, sequences, states):
        calls.append(len(sequences))
        if len(calls) == 2:
            raise KeyboardInterrupt  # as a kill between two shards
        return real_put(self, sequences, states)

    real_fill = trunk_cache.TrunkCache.fill
    monkeypatch.setattr(
        trunk_cache.TrunkCache,
        "fill",
        lambda self, seqs, pad, **kw: real_fill(self, seqs, pad, **{**kw, "tokens_per_shard": 64}),
    )
    monkeypatch.setattr(trunk_cache.TrunkCache, "put", dies_at_second_shard)
    argv = ["repllama", *common, "--output", str(tmp_path / "resumed"), "--trunk-cache", str(tmp_path / "cache")]
    with pytest.raises(KeyboardInterrupt):
        train_main(argv)
    (cache_dir,) = (tmp_path / "cache").iterdir()
    assert len(list(cache_dir.glob("shard-*.json"))) == 1  # the first shard survived
    stored_before = len(json.loads(next(cache_dir.glob("shard-*.json")).read_text())["keys"])
    assert not (tmp_path / "resumed" / "training_args.json").exists()

    monkeypatch.setattr(trunk_cache.TrunkCache, "put", real_put)
    computed = []
    real_compute = trunk_cache.TrunkCache.compute
    monkeypatch.setattr(
        trunk_cache.TrunkCache,
        "compute",
        lambda self, seqs, pad: computed.extend(seqs) or real_compute(self, seqs, pad),
    )
    assert train_main(argv) == 0
    total = sum(len(json.loads(p.read_text())["keys"]) for p in cache_dir.glob("shard-*.json"))
    assert len(computed) == total - stored_before  # only what was missing was computed again

    from safetensors.torch import load_file

    a = load_file(tmp_path / "straight" / "adapter_model.safetensors")
    b = load_file(tmp_path / "resumed" / "adapter_model.safetensors")
    assert a.keys() == b.keys() and max((a[k] - b[k]).abs().max().item() for k in a) < 1e-6


def test_cache_directory_is_keyed_by_trunk_weights_split_and_dtype(tiny4, tmp_path):
    from transformers import AutoModel

    decoder = decoder_of(AutoModel.from_pretrained(tiny4))
    base = trunk_fingerprint(decoder, 2, "float16")
    assert base == trunk_fingerprint(decoder, 2, "float16")
    assert base != trunk_fingerprint(decoder, 1, "float16") != trunk_fingerprint(decoder, 2, "float32")
    with torch.no_grad():
        decoder.layers[3].mlp.down_proj.weight.add_(1.0)  # above the split: same trunk
    assert trunk_fingerprint(decoder, 2, "float16") == base
    with torch.no_grad():
        decoder.layers[1].mlp.down_proj.weight.add_(1e-3)  # inside the trunk
    assert trunk_fingerprint(decoder, 2, "float16") != base

    cache = TrunkCache(tmp_path, decoder, 2, "float32")
    sequences = [[1, 5, 6, 2], [1, 7, 2], [1, 5, 6, 2]]
    assert cache.fill(sequences, pad_id=0, progress=False) == 2  # the repeat is computed once
    again = TrunkCache(tmp_path, decoder, 2, "float32")  # reopened from disk
    assert len(again) == 2 and [1, 7, 2] in again and [1, 7] not in again
    direct = again.compute([[1, 7, 2]], pad_id=0)[0]
    assert torch.allclose(again.get([1, 7, 2]), direct, atol=1e-6)  # batched with padding or alone


def test_cache_commits_a_shard_per_time_budget_on_a_slow_machine(tiny4, tmp_path):
    """Long sequences on a slow machine may take many minutes to reach the token budget of a shard;
    the time budget commits anyway, so a kill never loses more than that."""
    from transformers import AutoModel

    decoder = decoder_of(AutoModel.from_pretrained(tiny4))
    cache = TrunkCache(tmp_path, decoder, 2, "float32")
    sequences = [[1, 5, 6, 2], [1, 7, 8, 9, 10, 2], [1, 7, 2, 3, 4, 5, 6, 8, 9, 2]]  # three length buckets
    cache.fill(sequences, pad_id=0, progress=False, tokens_per_batch=10, seconds_per_shard=0.0)
    assert len(list(cache.directory.glob("shard-*.json"))) == 3
    assert len(TrunkCache(tmp_path, decoder, 2, "float32")) == 3


def test_probe_finds_a_direction_that_generalises_and_refuses_noise():
    from pyserini_llama.training.modeling import fit_score_head

    generator = torch.Generator().manual_seed(0)
    groups, size, hidden = 80, 4, 64
    features = torch.randn(groups * size, hidden, generator=generator) * 3 + 50  # offset: like LLaMA's outliers
    features.view(groups, size, hidden)[:, 0, 7] += 6.0  # the positive stands out along one dimension
    weight, report = fit_score_head(features, size)
    assert report["held_out_loss"] < math.log(size) - 0.3 and report["loss_after"] < math.log(size) - 0.3
    assert weight.abs().argmax().item() == 7

    noise = torch.randn(groups * size, hidden, generator=generator)  # nothing to find
    weight, report = fit_score_head(noise, size)
    # the strongest regularisation wins, or the head is reset: either way it starts (almost) neutral
    assert report["held_out_loss"] > math.log(size) - 0.02
    assert report["loss_after"] == pytest.approx(math.log(size), abs=0.05)


def test_probed_head_is_written_into_the_trained_reranker(tiny4, tmp_path, monkeypatch):
    """Training with --head-init probe starts from the probe's head and saves a trained head that loads."""
    from pyserini_llama.training import trainer as trainer_module

    synthetic_task(tmp_path / "train.jsonl", phrasings=2)
    fitted = {}

    def fake_fit(features, group_size):  # a known head, to see it arrive in the model
        fitted["features"] = features
        weight = torch.zeros(features.size(1))
        weight[3] = 0.5
        return weight, {"loss_before": math.log(group_size), "loss_after": 1.0, "l2": 0.1, "held_out_loss": 1.1}

    monkeypatch.setattr(trainer_module, "fit_score_head", fake_fit)
    args = TrainingArguments(
        "rankllama", model=str(tiny4), train=[str(tmp_path / "train.jsonl")], output=str(tmp_path / "out"),
        group_size=4, per_device_batch_size=8, max_steps=1, warmup_steps=0, learning_rate=1e-9, lora_r=4,
        lora_alpha=8, lora_dropout=0.0, head_init="probe", probe_queries=16,
    )  # fmt: skip
    trainer = Trainer(args)
    trainer.train()
    assert fitted["features"].shape == (16 * 4, 64)
    assert json.loads((tmp_path / "out" / "head_probe.json").read_text())["held_out_loss"] == 1.1
    from pyserini_llama.rerankers.rankllama import RankLLaMAReranker

    head = RankLLaMAReranker(str(tmp_path / "out")).model.score.weight[0]
    assert head[3].item() == pytest.approx(0.5, abs=1e-6) and head.abs().sum().item() == pytest.approx(0.5, abs=1e-5)


@pytest.mark.parametrize(
    "extra, message",
    [
        (
            ["--trunk-cache", "c"],
            "--trunk-cache stores the frozen layers below the LoRA ones: it needs --lora-layers K",
        ),
        (["--lora-layers", "2", "--full"], "--lora-layers limits LoRA to the top layers; it contradicts --full"),
        (["--lora-layers", "0"], "--lora-layers must be at least 1"),
        (["--head-init", "probe"], "--head-init probe fits RankLLaMA's score head"),
    ],
)
def test_bad_lever_flags_fail_at_start_up(tmp_path, extra, message):
    argv = ["repllama", "--model", "m", "--train", "x.jsonl", "--output", str(tmp_path / "o"), *extra]
    with pytest.raises(PyseriniLlamaError) as info:
        train_main(argv)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_more_lora_layers_than_the_model_has_is_refused(tiny4, train_file, tmp_path):
    with pytest.raises(PyseriniLlamaError, match="--lora-layers 9: the model has only 4 decoder layers"):
        Trainer(_arguments(tiny4, train_file, tmp_path / "o", lora_layers=9))


def test_encoder_serves_a_top_k_adapter_from_the_trunk_cache(tiny4, train_file, tmp_path):
    from pyserini_llama.encoders.repllama import RepLLaMAEncoder

    out = tmp_path / "model"
    args = _arguments(tiny4, train_file, out, lora_layers=2, max_steps=2)
    args.learning_rate = 5e-2
    Trainer(args).train()
    texts = [f"passage: the giant panda number {i} lives in China" * (1 + i % 3) for i in range(12)]
    plain = RepLLaMAEncoder(str(out)).encode_texts(texts, 48)
    cached = RepLLaMAEncoder(str(out), trunk_cache=tmp_path / "cache")  # split 2 read from the adapter
    assert cached.split_forward.split == 2
    first = cached.encode_texts(texts, 48)
    again = cached.encode_texts(texts, 48)
    assert cached.split_forward.cache.misses == 0 and cached.split_forward.cache.hits == 2 * len(texts)
    assert np.array_equal(first, again)
    assert np.abs(first - plain).max() < 5e-3  # float16 states
    with pytest.raises(ValueError, match="not a top-K LoRA adapter"):
        RepLLaMAEncoder(str(tiny4), trunk_cache=tmp_path / "cache")


def test_learned_temperature_moves_and_survives_a_resume(tiny4, train_file, tmp_path):
    args = _arguments(tiny4, train_file, tmp_path / "o", learn_temperature=True, temperature=0.05, max_steps=4)
    trainer = Trainer(args)
    trainer.train()
    log = [json.loads(line) for line in (tmp_path / "o" / "train_log.jsonl").read_text().splitlines()]
    assert log[-1]["temperature"] != pytest.approx(0.05, abs=1e-4) and len({r["temperature"] for r in log}) >= 3
    state = torch.load(tmp_path / "o" / "checkpoint-2" / "trainer_state.pt", weights_only=False)
    resumed = Trainer(_arguments(tiny4, train_file, tmp_path / "o", learn_temperature=True, temperature=0.05,
                                 max_steps=4, overwrite_output=False))  # fmt: skip
    resumed.load_checkpoint(tmp_path / "o" / "checkpoint-2")
    assert resumed.model.log_scale.item() == pytest.approx(state["train_model"]["log_scale"].item())
    assert resumed.model.log_scale.item() != pytest.approx(np.log(1 / 0.05))


def test_token_budget_batches_bound_padded_tokens():
    from pyserini_llama.modeling.tokens import token_budget_batches

    lengths = [5, 100, 7, 64, 64, 3, 300, 10]
    batches = list(token_budget_batches(lengths, 128))
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
    assert batches[0] == [6]  # longer than the budget: alone
    for batch in batches:
        assert len(batch) == 1 or len(batch) * max(lengths[i] for i in batch) <= 128


def test_a_run_continues_from_a_saved_adapter_at_its_step(tiny4, train_file, tmp_path):
    """Session 1 trains 2 of 4 steps and keeps only the adapter; session 2 continues with
    --init-adapter --start-step 2: same data, same learning rate, same loss at step 3."""
    straight = _arguments(tiny4, train_file, tmp_path / "straight", lora_layers=2, max_steps=4, save_steps=2)
    straight.save_total_limit = 2
    Trainer(straight).train()
    adapter = tmp_path / "straight" / "checkpoint-2"  # an adapter directory like any shipped one
    (adapter / "train_log.jsonl").write_text((tmp_path / "straight" / "train_log.jsonl").read_text())  # as exported
    continued = _arguments(tiny4, train_file, tmp_path / "continued", lora_layers=2, max_steps=4,
                           init_adapter=str(adapter), start_step=2)  # fmt: skip
    Trainer(continued).train()
    a = [json.loads(line) for line in (tmp_path / "straight" / "train_log.jsonl").read_text().splitlines()]
    b = [json.loads(line) for line in (tmp_path / "continued" / "train_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in b] == [1, 2, 3, 4]  # the adapter's own records up to step 2, then the new ones
    assert b[:2] == a[:2]
    assert b[2]["loss"] == pytest.approx(a[2]["loss"], abs=1e-5)  # same weights, same batch
    assert [r["lr"] for r in b[2:]] == pytest.approx([r["lr"] for r in a[2:]])

    wrong = _arguments(tiny4, train_file, tmp_path / "wrong", lora_layers=1, max_steps=4, init_adapter=str(adapter))
    with pytest.raises(PyseriniLlamaError, match="another LoRA shape \\(layers_to_transform\\)"):
        Trainer(wrong).train()


def test_pipeline_evaluates_a_top_k_adapter_from_the_trunk_cache(tiny4, train_file, tiny_beir, tmp_path):
    from pyserini_llama.data.runs import read_run
    from pyserini_llama.pipeline.__main__ import main as pipeline_main

    out = tmp_path / "model"
    args = _arguments(tiny4, train_file, out, lora_layers=2, max_steps=2)
    Trainer(args).train()
    common = ["--dataset", str(tiny_beir), "--stages", "repllama", "--retriever", str(out), "--hits", "6"]
    assert pipeline_main([*common, "--output-dir", str(tmp_path / "plain")]) == 0
    cached = [*common, "--output-dir", str(tmp_path / "cached"), "--trunk-cache", str(tmp_path / "cache")]
    assert pipeline_main(cached) == 0
    plain_run = read_run(tmp_path / "plain" / "run.repllama.trec")
    cached_run = read_run(tmp_path / "cached" / "run.repllama.trec")
    assert plain_run.keys() == cached_run.keys()
    for qid, hits in plain_run.items():
        ours = dict(cached_run[qid])
        assert all(abs(score - ours[docid]) < 5e-3 for docid, score in hits)
    (manifest,) = [p for p in (tmp_path / "cached").glob("index.*.manifest.json") if "lucene" not in p.name]
    assert json.loads(manifest.read_text())["params"]["trunk_cache"] == "float16"


def test_encode_cli_reads_the_trunk_cache(tiny4, train_file, tiny_beir, tmp_path):
    import faiss

    from pyserini_llama.encode.__main__ import main as encode_main

    out = tmp_path / "model"
    Trainer(_arguments(tiny4, train_file, out, lora_layers=2, max_steps=2)).train()
    common = ["input", "--corpus", str(tiny_beir / "corpus.jsonl"), "encoder", "--encoder", str(out)]
    assert encode_main([*common[:3], "output", "--embeddings", str(tmp_path / "plain"), "--to-faiss", *common[3:]]) == 0
    cached = [*common[:3], "output", "--embeddings", str(tmp_path / "cached"), "--to-faiss", *common[3:]]
    assert encode_main([*cached, "--trunk-cache", str(tmp_path / "cache")]) == 0
    (cache_dir,) = (tmp_path / "cache").iterdir()
    assert list(cache_dir.glob("shard-*.npy"))
    a = faiss.read_index(str(tmp_path / "plain" / "index"))
    b = faiss.read_index(str(tmp_path / "cached" / "index"))
    vectors_a, vectors_b = a.reconstruct_n(0, a.ntotal), b.reconstruct_n(0, b.ntotal)
    assert np.abs(vectors_a - vectors_b).max() < 5e-3


def test_split_refuses_a_decoder_that_rescales_inputs_embeds():
    """The top half is fed the trunk's states as inputs_embeds, so a decoder whose forward rescales
    inputs_embeds (older Gemma code multiplied them by sqrt(hidden) there) must be refused rather than
    trained wrong. Gemma in this transformers scales inside its embedding module, so it splits exactly."""
    from transformers import GemmaConfig, GemmaModel, LlamaConfig, LlamaModel

    from pyserini_llama.modeling.trunk import SplitForward

    class RescalingModel(LlamaModel):
        def forward(self, input_ids=None, inputs_embeds=None, **kwargs):
            if inputs_embeds is not None:
                inputs_embeds = inputs_embeds * self.config.hidden_size**0.5
            return super().forward(input_ids=input_ids, inputs_embeds=inputs_embeds, **kwargs)

    shapes = dict(vocab_size=64, hidden_size=16, intermediate_size=32, num_hidden_layers=3,
                  num_attention_heads=2, num_key_value_heads=1, head_dim=8)  # fmt: skip
    torch.manual_seed(0)
    with pytest.raises(PyseriniLlamaError, match="transforms inputs_embeds"):
        SplitForward(RescalingModel(LlamaConfig(**shapes)), split=1)
    ids = torch.randint(1, 64, (2, 7))
    mask = torch.ones_like(ids)
    mask[1, 5:] = 0
    for model in (LlamaModel(LlamaConfig(**shapes)).eval(), GemmaModel(GemmaConfig(**shapes)).eval()):
        with torch.no_grad():
            whole = model(input_ids=ids, attention_mask=mask).last_hidden_state
            split = SplitForward(model, split=2)(ids, mask)
        torch.testing.assert_close(split[mask.bool()], whole[mask.bool()], rtol=0, atol=1e-5)


def test_rankllama_warm_starts_from_a_repllama_adapter(tiny4, train_file, tmp_path):
    """--warm-start puts a RepLLaMA adapter's LoRA matrices (FEATURE_EXTRACTION keys) into a RankLLaMA
    run's LoRA layers (SEQ_CLS keys) at step 0; the head is not taken; another LoRA shape is refused."""
    from safetensors.torch import load_file

    Trainer(_arguments(tiny4, train_file, tmp_path / "rep", lora_layers=2, max_steps=2, learning_rate=5e-2)).train()
    saved = load_file(tmp_path / "rep" / "adapter_model.safetensors")
    trained_b = {k: v for k, v in saved.items() if ".lora_B." in k}
    assert trained_b and all(v.abs().max() > 0 for v in trained_b.values())  # B starts at zero: it trained

    warm = Trainer(_arguments(tiny4, train_file, tmp_path / "rank", "rankllama", lora_layers=2, max_steps=1,
                              warm_start=str(tmp_path / "rep")))  # fmt: skip
    warm.warm_start_from(warm.args.warm_start)
    ours = {n: p for n, p in warm.backbone.named_parameters() if ".lora_" in n}
    assert len(ours) == len([k for k in saved if ".lora_" in k])
    for name, param in ours.items():
        suffix = name[name.index("layers.") :].replace(".default.", ".")
        (match,) = [v for k, v in saved.items() if k.endswith(suffix)]
        assert torch.equal(param.detach(), match.to(param.dtype)), name
    assert warm.step == 0

    rank = warm.train()  # trains from there and saves an ordinary RankLLaMA adapter
    from pyserini_llama.rerankers.rankllama import RankLLaMAReranker

    assert RankLLaMAReranker(str(rank)).rerank("q", [("a", "x y"), ("b", "z")])

    other = _arguments(
        tiny4, train_file, tmp_path / "other", "rankllama", lora_layers=1, warm_start=str(tmp_path / "rep")
    )
    with pytest.raises(PyseriniLlamaError, match="--warm-start .* another LoRA shape \\(layers_to_transform\\)"):
        Trainer(other).train()
    with pytest.raises(PyseriniLlamaError, match="--warm-start starts a new run from another adapter"):
        _arguments(tiny4, train_file, tmp_path / "x", "rankllama", warm_start="a", init_adapter="b")

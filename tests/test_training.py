"""Training RepLLaMA and RankLLaMA: they learn, save what the inference classes load, resume exactly.

The learning tests use a synthetic retrieval task a tiny random LLaMA can learn in seconds:
24 keywords (whole tokens of the tiny tokenizer), each the topic of one document; a query holds
its keyword among random filler characters. Every training line draws *fresh* texts for its
query and passages, and the evaluation uses yet other texts, so memorising strings does not help:
only matching the keyword of the query with that of the document does.
"""

import json
import random
import shutil

import numpy as np
import pytest
import torch
from conftest import training_killed_in_step

from pyserini_llama.errors import InputFormatError, PyseriniLlamaError, run_cli
from pyserini_llama.eval import evaluate_run
from pyserini_llama.train.__main__ import main as train_main
from pyserini_llama.training import TrainingArguments, read_train_file
from pyserini_llama.training.dataset import TrainDataset, TrainPassage, TrainQuery
from pyserini_llama.training.trainer import Trainer, train

KEYWORDS = [
    "England", "Lobster", "Scientific", "against", "because", "brown", "claims", "dog", "endemic", "fox", "genes",
    "giant", "jumps", "lazy", "living", "mountain", "mutations", "panda", "proteins", "quick", "sandwich",
    "species", "verified", "roll",
]  # fmt: skip
FILLERS = list("abcdefghijklmnop0123456789")


def _phrase(rng, keyword, fillers, last=False):
    words = rng.sample(FILLERS, fillers)
    words.insert(fillers if last else rng.randrange(fillers + 1), keyword)
    return " ".join(words)


def synthetic_task(path, *, phrasings, keyword_last=False, negatives=7, seed=0):
    """Write a Tevatron training file; return held-out ``(documents, queries, qrels)`` for evaluation."""
    rng = random.Random(seed)

    def doc(k):
        return {"docid": f"d{KEYWORDS.index(k)}", "title": "", "text": _phrase(rng, k, 4, keyword_last)}

    with open(path, "w") as f:
        for j in range(phrasings):
            for i, kw in enumerate(KEYWORDS):
                others = rng.sample([k for k in KEYWORDS if k != kw], negatives)
                line = {
                    "query_id": f"q{i}-{j}",
                    "query": _phrase(rng, kw, 2),
                    "positive_passages": [doc(kw)],
                    "negative_passages": [doc(k) for k in others],
                }
                f.write(json.dumps(line) + "\n")
    documents = {f"d{i}": {"title": "", "text": _phrase(rng, kw, 4, keyword_last)} for i, kw in enumerate(KEYWORDS)}
    queries = {f"t{i}": _phrase(rng, kw, 2) for i, kw in enumerate(KEYWORDS)}
    qrels = {f"t{i}": {f"d{i}": 1} for i in range(len(KEYWORDS))}
    return documents, queries, qrels


def retrieval_mrr(encoder, task):
    documents, queries, qrels = task
    q = encoder.encode_queries(list(queries.values()))
    p = encoder.encode_passages(list(documents.values()))
    scores, ids = q @ p.T, list(documents)
    run = {qid: [(ids[j], float(scores[i, j])) for j in range(len(ids))] for i, qid in enumerate(queries)}
    return evaluate_run(qrels, run, ["mrr@10"])["mrr@10"]


def rerank_mrr(reranker, task):
    documents, queries, qrels = task
    run = {qid: reranker.rerank(q, list(documents.items())) for qid, q in queries.items()}
    return evaluate_run(qrels, run, ["mrr@10"])["mrr@10"]


@pytest.fixture
def one_thread():
    """Tiny models train fastest on one thread, and do not fight other jobs for the cores."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def in_eval_mode(trainer):
    model = trainer.unwrapped()
    model.eval()
    return model


# ---------------------------------------------------------------------------------------------- RepLLaMA
@pytest.fixture(scope="module")
def repllama_run(tiny_llama, tmp_path_factory):
    """Train RepLLaMA once for the tests below: (trainer, task, MRR@10 before, MRR@10 after)."""
    from pyserini_llama.encoders.repllama import RepLLaMAEncoder

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("train-repllama")
    task = synthetic_task(root / "train.jsonl", phrasings=4)
    args = TrainingArguments(
        "repllama", model=str(tiny_llama), train=[str(root / "train.jsonl")], output=str(root / "model"),
        group_size=4, per_device_batch_size=8, max_steps=200, learning_rate=1e-2, warmup_steps=5,
        lora_r=8, lora_alpha=16, save_steps=1000, logging_steps=50,
    )  # fmt: skip
    trainer = Trainer(args)
    before = retrieval_mrr(RepLLaMAEncoder.from_model(in_eval_mode(trainer), trainer.tokenizer), task)
    trainer.model.train()
    trainer.train()
    after = retrieval_mrr(RepLLaMAEncoder.from_model(in_eval_mode(trainer), trainer.tokenizer), task)
    torch.set_num_threads(threads)
    return trainer, task, before, after


def test_repllama_learns_the_synthetic_task(repllama_run):
    _, _, before, after = repllama_run
    print(f"RepLLaMA MRR@10 before {before:.3f} after {after:.3f}")
    assert before < 0.4  # chance is 0.12 for 24 documents; a random model is a little better
    # 0.94 on AVX2 machines and 0.95-0.98 with other seeds; 0.89 on AVX-512 ones (other float rounding)
    assert after >= 0.85


def test_repllama_saved_adapter_round_trip(repllama_run, tiny_llama):
    """RepLLaMAEncoder and the model card's code load the output and embed as the trained model does."""
    from peft import PeftConfig, PeftModel
    from transformers import AutoModel, AutoTokenizer

    from pyserini_llama.encoders.repllama import RepLLaMAEncoder

    trainer, task, _, _ = repllama_run
    out = trainer.output
    config = json.loads((out / "adapter_config.json").read_text())
    assert config["base_model_name_or_path"] == str(tiny_llama)
    assert config["task_type"] == "FEATURE_EXTRACTION"
    assert (config["r"], config["lora_alpha"]) == (8, 16)
    assert set(config["target_modules"]) == {
        "q_proj",
        "k_proj",
        "v_proj",
        "o_proj",
        "gate_proj",
        "up_proj",
        "down_proj",
    }
    documents, queries, _ = task
    texts = list(queries.values())
    memory = RepLLaMAEncoder.from_model(in_eval_mode(trainer), trainer.tokenizer)
    loaded = RepLLaMAEncoder(str(out))
    assert np.abs(memory.encode_queries(texts) - loaded.encode_queries(texts)).max() < 1e-5
    docs = list(documents.values())
    assert np.abs(memory.encode_passages(docs) - loaded.encode_passages(docs)).max() < 1e-5

    # castorini/repllama-v1-7b-lora-passage model card: PeftConfig -> base -> PeftModel -> merge.
    peft_config = PeftConfig.from_pretrained(out)
    card = PeftModel.from_pretrained(AutoModel.from_pretrained(peft_config.base_model_name_or_path), out)
    card = card.merge_and_unload().eval()
    tokenizer = AutoTokenizer.from_pretrained(out)
    inputs = tokenizer(f"query: {texts[0]}</s>", return_tensors="pt")
    with torch.no_grad():
        emb = torch.nn.functional.normalize(card(**inputs).last_hidden_state[0][-1], p=2, dim=0).numpy()
    assert np.abs(emb - loaded.encode_queries(texts[:1])[0]).max() < 1e-5


def test_repllama_training_inputs_equal_inference_inputs(repllama_run):
    """The loss sees exactly the embeddings RepLLaMAEncoder computes (same text, tokens, pooling)."""
    from pyserini_llama.encoders.repllama import RepLLaMAEncoder

    trainer, _, _, _ = repllama_run
    model = in_eval_mode(trainer)
    batch = trainer.micro_batches(0)[0]
    groups = trainer.dataset.groups(0, 0, trainer.per_device)
    with torch.no_grad():
        q = trainer.model.encode(batch["query_input_ids"], batch["query_attention_mask"]).numpy()
        p = trainer.model.encode(batch["passage_input_ids"], batch["passage_attention_mask"]).numpy()
    encoder = RepLLaMAEncoder.from_model(model, trainer.tokenizer, query_max_length=32, passage_max_length=196)
    assert np.abs(q - encoder.encode_queries([g.query for g in groups])).max() < 1e-5
    assert np.abs(p - encoder.encode_passages([vars(x) for g in groups for x in g.passages])).max() < 1e-5


# ---------------------------------------------------------------------------------------------- RankLLaMA
@pytest.fixture(scope="module")
def rankllama_run(tiny_llama, tmp_path_factory):
    from pyserini_llama.rerankers.rankllama import RankLLaMAReranker

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("train-rankllama")
    # The score is read at the document's last token: ending documents with their keyword lets a
    # tiny random model learn the match in a few hundred steps.
    task = synthetic_task(root / "train.jsonl", phrasings=40, keyword_last=True)
    args = TrainingArguments(
        "rankllama", model=str(tiny_llama), train=[str(root / "train.jsonl")], output=str(root / "model"),
        group_size=4, per_device_batch_size=8, max_steps=400, learning_rate=2e-3, warmup_steps=5,
        save_steps=1000, logging_steps=100,
    )  # fmt: skip
    trainer = Trainer(args)
    before = rerank_mrr(RankLLaMAReranker.from_model(in_eval_mode(trainer), trainer.tokenizer), task)
    trainer.model.train()
    trainer.train()
    after = rerank_mrr(RankLLaMAReranker.from_model(in_eval_mode(trainer), trainer.tokenizer), task)
    torch.set_num_threads(threads)
    return trainer, task, before, after


def test_rankllama_learns_to_rerank(rankllama_run):
    _, _, before, after = rankllama_run
    print(f"RankLLaMA MRR@10 before {before:.3f} after {after:.3f}")
    assert before < 0.3  # chance is 0.12 for 24 documents
    assert after >= 0.6 and after - before >= 0.4  # 0.97 here; other training seeds gave 0.66-0.97


def test_rankllama_saved_adapter_round_trip(rankllama_run, tiny_llama):
    from peft import PeftConfig, PeftModel
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from pyserini_llama.rerankers.rankllama import RankLLaMAReranker

    trainer, task, _, _ = rankllama_run
    out = trainer.output
    config = json.loads((out / "adapter_config.json").read_text())
    assert config["base_model_name_or_path"] == str(tiny_llama)
    assert config["task_type"] == "SEQ_CLS"
    assert "score" in config["modules_to_save"]
    assert (config["r"], config["lora_alpha"], config["lora_dropout"]) == (32, 64, 0.1)
    documents, queries, _ = task
    pairs = [(q, d) for q in list(queries.values())[:4] for d in documents.values()]
    memory = RankLLaMAReranker.from_model(in_eval_mode(trainer), trainer.tokenizer).score_pairs(pairs)
    loaded = RankLLaMAReranker(str(out)).score_pairs(pairs)
    assert np.abs(memory - loaded).max() < 1e-4

    # castorini/rankllama-v1-7b-lora-passage model card, one pair.
    peft_config = PeftConfig.from_pretrained(out)
    base = AutoModelForSequenceClassification.from_pretrained(peft_config.base_model_name_or_path, num_labels=1)
    card = PeftModel.from_pretrained(base, out).merge_and_unload().eval()
    tokenizer = AutoTokenizer.from_pretrained(out)
    query, doc = pairs[0]
    inputs = tokenizer(f"query: {query}", f"document: {doc['title']} {doc['text']}", return_tensors="pt")
    with torch.no_grad():
        logit = card(**inputs).logits[0][0].item()
    assert abs(logit - loaded[0]) < 1e-4


def test_rankllama_training_logits_equal_reranker_scores(rankllama_run):
    """The loss sees exactly the logits RankLLaMAReranker computes (same pair tokens, same read-out)."""
    from pyserini_llama.rerankers.rankllama import RankLLaMAReranker

    trainer, _, _, _ = rankllama_run
    model = in_eval_mode(trainer)
    batch = trainer.micro_batches(0)[0]
    groups = trainer.dataset.groups(0, 0, trainer.per_device)
    with torch.no_grad():
        logits = trainer.model.logits(batch["input_ids"], batch["attention_mask"]).numpy()
    reranker = RankLLaMAReranker.from_model(model, trainer.tokenizer, query_max_length=32, max_length=32 + 196)
    scores = reranker.score_pairs([(g.query, p) for g in groups for p in g.passages])
    assert np.abs(logits - scores).max() < 1e-5


# ---------------------------------------------------------------------------------------------- data
GOOD = {
    "query_id": "1",
    "query": "what is a panda",
    "positive_passages": [{"docid": "d1", "title": "Panda", "text": "The giant panda is a bear."}],
    "negative_passages": [{"docid": "d2", "text": "A lobster roll is a sandwich."}],
}


@pytest.mark.parametrize(
    "bad, reason",
    [
        ("{not json", "not valid JSON"),
        (json.dumps([1, 2]), "not a JSON object"),
        (json.dumps({**GOOD, "query": None}), '"query"'),
        (json.dumps({k: v for k, v in GOOD.items() if k != "negative_passages"}), "negative_passages"),
        (json.dumps({**GOOD, "positive_passages": []}), "positive_passages"),
        (json.dumps({**GOOD, "negative_passages": [{"docid": "d3"}]}), 'negative_passages[0] has no "text"'),
    ],
)
def test_malformed_training_line_names_file_and_line(tmp_path, bad, reason):
    path = tmp_path / "train.jsonl"
    path.write_text(json.dumps(GOOD) + "\n\n" + bad + "\n")
    with pytest.raises(InputFormatError) as info:
        read_train_file(path)
    assert str(info.value).startswith(f"{path}:3: ")
    assert reason in str(info.value)
    assert len(read_train_file(path, skip_bad_lines=True)) == 1


def test_cli_stops_on_a_bad_line_before_loading_the_model(tmp_path, capsys):
    path = tmp_path / "train.jsonl"
    path.write_text(json.dumps(GOOD) + "\n" + json.dumps({**GOOD, "query_id": None}) + "\n")
    argv = ["repllama", "--model", str(tmp_path / "no-such-model"), "--train", str(path), "--output", str(tmp_path)]
    with pytest.raises(SystemExit) as info:
        run_cli(train_main, argv)
    assert info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err == f'error: {path}:2: no "query_id" (string or integer)'


def _query(n_pos, n_neg):
    passages = [TrainPassage(f"p{i}", f"pos {i}") for i in range(n_pos)]
    return TrainQuery("q", "query", tuple(passages), tuple(TrainPassage(f"n{i}", f"neg {i}") for i in range(n_neg)))


def test_group_sampling_is_deterministic_and_moves_with_the_epoch():
    data = TrainDataset([_query(2, 12), _query(1, 2)], group_size=4, seed=7)
    first = data.group(0, epoch=0)
    assert first == TrainDataset([_query(2, 12), _query(1, 2)], group_size=4, seed=7).group(0, epoch=0)
    assert first.passages[0].docid.startswith("p") and all(p.docid.startswith("n") for p in first.passages[1:])
    docids = [p.docid for p in first.passages[1:]]
    assert len(set(docids)) == 3  # without replacement when there are enough negatives
    nxt = data.group(0, epoch=1)
    assert nxt.passages[0] != first.passages[0]  # positives cycle over epochs
    assert not set(docids) & {p.docid for p in nxt.passages[1:]}  # the negative window moves on
    few = data.group(1, epoch=0)
    assert len(few.passages) == 4 and {p.docid for p in few.passages[1:]} <= {"n0", "n1"}
    assert data.epoch_order(0) == data.epoch_order(0) and sorted(data.epoch_order(3)) == [0, 1]


# ---------------------------------------------------------------------------------------------- flags
@pytest.mark.parametrize(
    "extra, message",
    [
        (["--full", "--lora-r", "8"], "--full (full fine-tuning) contradicts the LoRA option(s) --lora-r"),
        (["--temperature", "0"], "--temperature must be > 0"),
        (["--temperature", "-0.5"], "--temperature must be > 0"),
        (["--group-size", "1"], "--group-size must be at least 2"),
        (["--dtype", "float16", "--device", "cpu"], "--dtype float16 needs a CUDA device"),
        (["--fp16", "--device", "cpu"], "--dtype float16 needs a CUDA device"),
        (["--bf16", "--dtype", "float32"], "contradict each other"),
        (["--max-steps", "10", "--epochs", "1"], "either --max-steps or --epochs, not both"),
        (["--epochs", "0"], "--epochs must be a positive number"),
        (["--lora-dropout", "1.5"], "--lora-dropout must be in [0, 1)"),
        (["--append-eos"], "--append-eos is a RankLLaMA option"),
        (["--device", "tpu"], "--device must be cpu, cuda or cuda:N"),
    ],
)
def test_bad_flag_combinations_fail_at_start_up(tmp_path, extra, message):
    argv = ["repllama", "--model", "no-such-model", "--train", "x.jsonl", "--output", str(tmp_path / "o"), *extra]
    with pytest.raises(PyseriniLlamaError) as info:
        train_main(argv)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_rankllama_rejects_temperature(tmp_path):
    argv = ["rankllama", "--model", "m", "--train", "x.jsonl", "--output", str(tmp_path), "--temperature", "0.1"]
    with pytest.raises(PyseriniLlamaError, match="--temperature applies to repllama only"):
        train_main(argv)


def test_defaults_are_the_papers():
    args = TrainingArguments("repllama", model="m", train=["t.jsonl"], output="o", device="cpu")
    assert (args.lora_r, args.lora_alpha, args.lora_dropout, args.temperature) == (32, 64, 0.1, 0.01)
    assert (args.group_size, args.query_max_length, args.passage_max_length) == (16, 32, 196)
    assert (args.learning_rate, args.warmup_steps, args.epochs, args.max_steps) == (1e-4, 100, 1.0, None)
    assert args.lora_target_modules == ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
    short = TrainingArguments("rankllama", model="m", train=["t"], output="o", lora_target_modules="q,v", device="cpu")
    assert short.lora_target_modules == ("q_proj", "v_proj") and short.temperature is None


# ---------------------------------------------------------------------------------------------- resume
def _weights(directory):
    from safetensors.torch import load_file

    name = "adapter_model.safetensors" if (directory / "adapter_config.json").exists() else "model.safetensors"
    return load_file(directory / name)


@pytest.mark.parametrize("objective, extra", [("repllama", []), ("rankllama", ["--full"])])
def test_resume_after_interruption_gives_the_same_weights(tiny_llama, tmp_path, one_thread, objective, extra):
    """Killed in step 6 of 6 (checkpoint at 4, step 5 lost): rerunning the command ends with identical weights.

    LoRA dropout stays on (0.1), so this also checks that the RNG state is restored.
    """
    synthetic_task(tmp_path / "train.jsonl", phrasings=2)
    common = ["--model", str(tiny_llama), "--train", str(tmp_path / "train.jsonl"), "--group-size", "3",
              "--per-device-batch-size", "4", "--max-steps", "6", "--warmup-steps", "2", "--learning-rate", "1e-3",
              "--save-steps", "2", "--logging-steps", "1", *extra]  # fmt: skip
    assert train_main([objective, *common, "--output", str(tmp_path / "straight")]) == 0

    interrupted = tmp_path / "interrupted"
    with training_killed_in_step(6):
        train_main([objective, *common, "--output", str(interrupted)])
    assert sorted(p.name for p in interrupted.iterdir() if p.is_dir()) == ["checkpoint-4"]  # only the newest kept
    assert not (interrupted / "training_args.json").exists()
    (interrupted / ".tmp-checkpoint-6").mkdir()  # as a kill in the middle of a save leaves it
    assert train_main([objective, *common, "--output", str(interrupted)]) == 0

    straight, resumed = _weights(tmp_path / "straight"), _weights(interrupted)
    assert straight.keys() == resumed.keys()
    assert max((straight[k] - resumed[k]).abs().max().item() for k in straight) < 1e-6
    assert not (interrupted / ".tmp-checkpoint-6").exists()
    log = [json.loads(line) for line in (interrupted / "train_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [1, 2, 3, 4, 5, 6]  # step 5 redone after the resume, logged once
    assert all(r["samples_per_second"] > 0 for r in log)
    if extra == ["--full"]:
        from pyserini_llama.rerankers.rankllama import RankLLaMAReranker

        assert (interrupted / "config.json").is_file() and not (interrupted / "adapter_config.json").exists()
        assert RankLLaMAReranker(str(interrupted)).score("panda", ["a panda"]).shape == (1,)


class WritesAFileWhenUnpickled:
    """What a hostile checkpoint could hold: unpickling it runs code (here: writes ``path``)."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (exec, (f"open({self.path!r}, 'w').write('ran')",))


@pytest.fixture(scope="module")
def interrupted_run(tiny_llama, tmp_path_factory):
    """A RepLLaMA LoRA run stopped after its checkpoint at step 2 of 4: ``(argv, output directory)``."""
    root = tmp_path_factory.mktemp("interrupted")
    synthetic_task(root / "train.jsonl", phrasings=1)
    argv = ["repllama", "--model", str(tiny_llama), "--train", str(root / "train.jsonl"), "--group-size", "2",
            "--per-device-batch-size", "4", "--max-steps", "4", "--save-steps", "2", "--device", "cpu"]  # fmt: skip
    with training_killed_in_step(3):
        train_main([*argv, "--output", str(root / "run")])
    assert (root / "run" / "checkpoint-2").is_dir()
    shutil.copytree(root / "run", root / "pristine")
    return argv, root / "run"


def _copy_run(interrupted_run, tmp_path):
    """The interrupted run as it was left (a resume compares --output, so it is restored in place)."""
    argv, run = interrupted_run
    shutil.rmtree(run)
    shutil.copytree(run.parent / "pristine", run)
    return [*argv, "--output", str(run)], run / "checkpoint-2"


def test_resume_unpickles_nothing(interrupted_run, tmp_path):
    """Checkpoint states load with weights_only=True: a pickled object is refused, never run."""
    from pyserini_llama.training.trainer import STATE_FILE

    argv, checkpoint = _copy_run(interrupted_run, tmp_path)
    marker = tmp_path / "ran"
    state = torch.load(checkpoint / STATE_FILE, weights_only=True)  # what we write is loadable this way
    state["optimizer"]["hostile"] = WritesAFileWhenUnpickled(marker)
    torch.save(state, checkpoint / STATE_FILE)
    with pytest.raises(PyseriniLlamaError, match=r"checkpoint-2.*(pickled|unpickl)") as info:
        train_main(argv)
    assert not marker.exists() and "--overwrite-output" in str(info.value)


def test_resume_refuses_an_old_pickled_rng_state(interrupted_run, tmp_path):
    argv, checkpoint = _copy_run(interrupted_run, tmp_path)
    old = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    torch.save(old, checkpoint / "rng_state_0.pt")  # as earlier versions wrote it: a numpy array inside
    with pytest.raises(PyseriniLlamaError, match="rng_state_0.pt"):
        train_main(argv)


def test_resume_refuses_mismatched_adapter_keys(interrupted_run, tmp_path):
    from safetensors.torch import load_file, save_file

    argv, checkpoint = _copy_run(interrupted_run, tmp_path)
    weights = load_file(checkpoint / "adapter_model.safetensors")
    dropped = sorted(weights)[0]
    del weights[dropped]
    save_file(weights, checkpoint / "adapter_model.safetensors")
    with pytest.raises(PyseriniLlamaError, match="checkpoint-2.*missing") as info:
        train_main(argv)
    assert dropped.split(".lora_")[0].rsplit("layers.", 1)[-1] in str(info.value)


def test_resume_refuses_unexpected_trainer_parameters(interrupted_run, tmp_path):
    from pyserini_llama.training.trainer import STATE_FILE

    argv, checkpoint = _copy_run(interrupted_run, tmp_path)
    state = torch.load(checkpoint / STATE_FILE, weights_only=True)
    state["train_model"]["log_inverse_temperature"] = torch.zeros(())  # from a run with --learn-temperature
    torch.save(state, checkpoint / STATE_FILE)
    with pytest.raises(PyseriniLlamaError, match="checkpoint-2.*unexpected.*log_inverse_temperature"):
        train_main(argv)


def test_a_tampered_run_resumes_after_the_checks(interrupted_run, tmp_path):
    argv, checkpoint = _copy_run(interrupted_run, tmp_path)
    assert train_main(argv) == 0 and (checkpoint.parent / "training_args.json").is_file()


def test_rerunning_a_finished_run_is_a_no_op(tiny_llama, tmp_path, monkeypatch, one_thread):
    synthetic_task(tmp_path / "train.jsonl", phrasings=1)
    argv = ["rankllama", "--model", str(tiny_llama), "--train", str(tmp_path / "train.jsonl"), "--output",
            str(tmp_path / "out"), "--group-size", "2", "--per-device-batch-size", "4", "--max-steps", "1"]  # fmt: skip
    assert train_main(argv) == 0
    monkeypatch.setattr(Trainer, "__init__", lambda *a, **k: pytest.fail("a finished run must not train again"))
    assert train_main(argv) == 0
    with pytest.raises(PyseriniLlamaError, match="other options \\(--learning-rate\\)"):
        train_main([*argv, "--learning-rate", "5e-4"])


def test_training_file_smaller_than_a_batch_is_refused(tiny_llama, tmp_path):
    path = tmp_path / "train.jsonl"
    path.write_text(json.dumps(GOOD) + "\n")
    args = TrainingArguments("repllama", model=str(tiny_llama), train=[str(path)], output=str(tmp_path / "o"))
    with pytest.raises(PyseriniLlamaError, match="fewer than one global batch of 8"):
        train(args)


@pytest.mark.slow
def test_smollm2_alias_is_recorded_as_the_adapter_base(tmp_path, smollm2_gguf, one_thread):
    """``--model smollm2-135m-instruct``: the adapter names the alias, and the encoder loads it back."""
    from pyserini_llama.encoders.repllama import RepLLaMAEncoder

    synthetic_task(tmp_path / "train.jsonl", phrasings=1)
    out = tmp_path / "out"
    argv = ["repllama", "--model", "smollm2-135m-instruct", "--train", str(tmp_path / "train.jsonl"),
            "--output", str(out), "--group-size", "2", "--per-device-batch-size", "2", "--max-steps", "2",
            "--passage-max-length", "64", "--gradient-checkpointing"]  # fmt: skip
    assert train_main(argv) == 0
    assert json.loads((out / "adapter_config.json").read_text())["base_model_name_or_path"] == "smollm2-135m-instruct"
    vectors = RepLLaMAEncoder(str(out)).encode_queries(["panda"])
    assert vectors.shape == (1, 576) and abs(np.linalg.norm(vectors) - 1) < 1e-5

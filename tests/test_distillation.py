"""Teacher-guided training: teacher scores in Tevatron's format, the distillation losses, case handling.

The losses are checked against hand computations and their gradients against plain autograd on
the separated parts; the teacher annotation against hand-normalised scores; case folding from the
rule through training (recorded in the model) to serving (applied by the encoder and reranker).
"""

import json
import math

import pytest
import torch
from conftest import training_killed_in_step

from pyserini_llama.data.score_fusion import FusedScorer, interpolate_runs, normalise_hits, parse_weighted
from pyserini_llama.errors import InputFormatError, PyseriniLlamaError
from pyserini_llama.modeling.formatting import apply_case
from pyserini_llama.teacher import annotate_file
from pyserini_llama.teacher.__main__ import main as teacher_main
from pyserini_llama.testing import write_train_file
from pyserini_llama.training import TrainingArguments, read_train_file
from pyserini_llama.training.dataset import TrainDataset
from pyserini_llama.training.modeling import distillation_loss
from pyserini_llama.training.trainer import Trainer


# ------------------------------------------------------------------------------------------ the loss
def test_distillation_loss_equals_a_hand_computation():
    student = [[1.0, 0.5, -0.2], [0.0, 2.0, 1.0]]
    teacher = [[0.9, 0.1, 0.0], [0.2, 0.3, 1.0]]
    t = 0.5
    expected = 0.0
    for s_row, t_row in zip(student, teacher, strict=True):
        zs = sum(math.exp(x / t) for x in s_row)
        zt = sum(math.exp(x / t) for x in t_row)
        for s, q in zip(s_row, t_row, strict=True):
            p_t, p_s = math.exp(q / t) / zt, math.exp(s / t) / zs
            expected += p_t * (math.log(p_t) - math.log(p_s))
    expected /= len(student)
    got = distillation_loss(torch.tensor(student), torch.tensor(teacher), t).item()
    assert got == pytest.approx(expected, rel=1e-6)
    # identical distributions: zero; the teacher side takes no gradient
    assert distillation_loss(torch.tensor(teacher), torch.tensor(teacher), t).item() == pytest.approx(0, abs=1e-7)


def test_distillation_gradient_is_the_softmax_difference():
    """d KL / d student = (softmax(s / T) - softmax(t / T)) / (T * rows), autograd against the closed form."""
    torch.manual_seed(0)
    student = torch.randn(4, 6, dtype=torch.float64, requires_grad=True)
    teacher = torch.randn(4, 6, dtype=torch.float64, requires_grad=True)
    t = 0.7
    distillation_loss(student, teacher, t).backward()
    closed = (torch.softmax(student / t, -1) - torch.softmax(teacher / t, -1)) / (t * 4)
    assert torch.allclose(student.grad.double(), closed.detach(), atol=1e-6)
    assert teacher.grad is None or not teacher.grad.abs().any()


def _trainer(tiny_llama, tmp_path, objective, **options):
    train = tmp_path / "train.jsonl"
    if not train.exists():
        tmp_path.mkdir(parents=True, exist_ok=True)
        write_train_file(train)
    settings = dict(group_size=3, per_device_batch_size=4, max_steps=2, warmup_steps=0, lora_r=4, lora_alpha=8,
                    lora_dropout=0.0, max_grad_norm=0.0, device="cpu")  # fmt: skip
    settings.update(options)
    args = TrainingArguments(objective, model=str(tiny_llama), train=[str(train)],
                             output=str(tmp_path / f"out-{objective}"), **settings)  # fmt: skip
    return Trainer(args)


def _grads(trainer):
    return {n: p.grad.detach().clone() for n, p in trainer.backbone.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("objective", ["repllama", "rankllama"])
def test_mixed_loss_is_the_weighted_sum_of_its_parts_with_their_gradients(tiny_llama, tmp_path, objective):
    """W * KL + (1 - W) * contrastive, each part recomputed by hand from the model's own scores."""
    options = {"temperature": 0.05} if objective == "repllama" else {}
    trainer = _trainer(tiny_llama, tmp_path, objective, distil_weight=0.3, distil_temperature=0.5, **options)
    model = trainer.model
    batch = trainer.micro_batches(0)[0]
    assert batch["teacher_scores"].shape == (4, 3)
    assert batch["teacher_scores"][:, 0].tolist() == [pytest.approx(0.9)] * 4  # positive first, as the file says

    def parts():
        if objective == "repllama":
            q = model.encode(batch["query_input_ids"], batch["query_attention_mask"])
            p = model.encode(batch["passage_input_ids"], batch["passage_attention_mask"])
            sim = q @ p.T
            ce = torch.nn.functional.cross_entropy(sim / 0.05, torch.arange(4) * 3)
            own = torch.stack([sim[i, 3 * i : 3 * i + 3] for i in range(4)])
        else:
            own = model.logits(batch["input_ids"], batch["attention_mask"]).view(4, 3)
            ce = torch.nn.functional.cross_entropy(own, torch.zeros(4, dtype=torch.long))
        kl = distillation_loss(own, batch["teacher_scores"], 0.5)
        return kl, ce

    loss = model(**batch)
    loss.backward()
    mixed = _grads(trainer)
    trainer.optimizer.zero_grad()
    kl, ce = parts()
    assert loss.item() == pytest.approx(0.3 * kl.item() + 0.7 * ce.item(), rel=1e-5)
    assert kl.item() > 1e-4 and ce.item() > 1e-4
    (0.3 * kl).backward(retain_graph=True)
    from_kl = _grads(trainer)
    trainer.optimizer.zero_grad()
    (0.7 * ce).backward()
    from_ce = _grads(trainer)
    for name, grad in mixed.items():
        assert torch.allclose(grad, from_kl[name] + from_ce[name], atol=1e-6, rtol=1e-4), name

    # W = 0 ignores the scores entirely: the plain recipe's loss
    plain = _trainer(tiny_llama, tmp_path / "plain", objective, **options)
    plain_batch = plain.micro_batches(0)[0]
    assert "teacher_scores" not in plain_batch
    assert plain.model(**plain_batch).item() == pytest.approx(ce.item(), rel=1e-5)


def test_tevatron_file_with_scores_is_read_unchanged(tmp_path):
    write_train_file(tmp_path / "t.jsonl", n_queries=2)
    queries = read_train_file(tmp_path / "t.jsonl")
    assert [p.score for p in queries[0].positives] == [0.9]
    assert [p.score for p in queries[0].negatives] == pytest.approx([0.8, 0.6, 0.4, 0.2])
    group = TrainDataset(queries, 3).group(0, 0)
    assert group.teacher_scores == tuple(p.score for p in group.passages)


def test_distillation_refuses_a_file_without_scores_naming_file_and_line(tiny_llama, tmp_path):
    write_train_file(tmp_path / "train.jsonl", scores=False)
    with pytest.raises(InputFormatError, match=r"train\.jsonl:1: .*no teacher \"score\""):
        _trainer(tiny_llama, tmp_path, "repllama", distil_weight=0.5)
    with open(tmp_path / "bad.jsonl", "w") as f:
        f.write(json.dumps({"query_id": 1, "query": "q", "positive_passages": [{"text": "a", "score": "high"}],
                            "negative_passages": [{"text": "b"}]}) + "\n")  # fmt: skip
    with pytest.raises(InputFormatError, match=r"bad\.jsonl:1: .*\"score\" must be a finite number"):
        read_train_file(tmp_path / "bad.jsonl")


@pytest.mark.parametrize(
    "options, message",
    [
        ({"distil_weight": 1.5}, "--distil-weight must be in"),
        ({"distil_temperature": 0.0}, "--distil-temperature must be > 0"),
        ({"text_case": "upper"}, "--text-case must be one of"),
        ({"case_augment": 2.0}, "--case-augment"),
    ],
)
def test_bad_distillation_and_case_options_fail_at_start_up(tmp_path, options, message):
    with pytest.raises(PyseriniLlamaError, match=message):
        TrainingArguments("repllama", model="m", train=["t"], output=str(tmp_path), **options)


@pytest.mark.parametrize("objective", ["repllama", "rankllama"])
def test_distillation_resumes_exactly_from_the_trunk_cache(tiny_llama, tmp_path, objective):
    """--lora-layers + --trunk-cache + distillation, killed after a checkpoint: the rerun ends identical."""
    from safetensors.torch import load_file

    torch.set_num_threads(1)
    options = dict(distil_weight=0.5, distil_temperature=0.5, lora_layers=1, trunk_cache=str(tmp_path / "cache"),
                   max_steps=4, save_steps=2, logging_steps=1)  # fmt: skip
    straight = _trainer(tiny_llama, tmp_path / "a", objective, **options)
    straight.train()
    with training_killed_in_step(4):
        _trainer(tiny_llama, tmp_path / "b", objective, **options).train()
    resumed = _trainer(tiny_llama, tmp_path / "b", objective, **options)
    resumed.train()
    a = load_file(tmp_path / "a" / f"out-{objective}" / "adapter_model.safetensors")
    b = load_file(tmp_path / "b" / f"out-{objective}" / "adapter_model.safetensors")
    assert max((a[k] - b[k]).abs().max().item() for k in a) < 1e-6


# --------------------------------------------------------------------------------------- teacher scores
def test_normalisations_by_hand():
    hits = [("a", 10.0), ("b", 6.0), ("c", 2.0)]
    assert normalise_hits(hits, "minmax") == {"a": 1.0, "b": 0.5, "c": 0.0}
    std = math.sqrt(((10 - 6) ** 2 + 0 + (2 - 6) ** 2) / 3)
    assert normalise_hits(hits, "zscore") == pytest.approx({"a": 4 / std, "b": 0.0, "c": -4 / std})
    assert normalise_hits([("a", 3.0), ("b", 3.0)], "minmax") == {"a": 1.0, "b": 1.0}
    with pytest.raises(PyseriniLlamaError, match="unknown normalisation"):
        normalise_hits(hits, "rank")


def test_fused_teacher_scores_and_the_floor_of_missing_documents():
    bm25 = {"q": [("a", 10.0), ("b", 6.0), ("c", 2.0)]}
    dense = {"q": [("b", 0.9), ("d", 0.5)]}
    scorer = FusedScorer([bm25, dense], [0.25, 0.75], "minmax")
    assert scorer.score("q", "a") == pytest.approx(0.25 * 1.0 + 0.75 * 0.0)  # not in dense: its floor, 0
    assert scorer.score("q", "b") == pytest.approx(0.25 * 0.5 + 0.75 * 1.0)
    assert scorer.score("q", "d") == pytest.approx(0.25 * 0.0 + 0.75 * 0.0)  # dense's last hit = floor
    assert scorer.score("q", "zzz") == 0.0 and not scorer.covered("q", "zzz") and scorer.covered("q", "d")
    z = FusedScorer([bm25], None, "zscore")
    assert z.score("q", "zzz") == pytest.approx(z.score("q", "c"))  # the lowest z of the list
    assert [d for d, _ in scorer.fuse()["q"]] == ["b", "a", "c", "d"] or [d for d, _ in scorer.fuse()["q"]][0] == "b"
    with pytest.raises(PyseriniLlamaError, match="weights"):
        FusedScorer([bm25, dense], [1.0])
    assert parse_weighted("runs/a.trec:0.3") == ("runs/a.trec", 0.3)
    assert parse_weighted("runs/a.trec") == ("runs/a.trec", 1.0)


def test_annotated_file_keeps_every_field_and_adds_scores(tmp_path):
    write_train_file(tmp_path / "in.jsonl", n_queries=2, scores=False)
    run = {str(i): [(f"p{i}", 3.0), (f"n{i}-0", 2.0), (f"n{i}-1", 1.0)] for i in range(2)}
    stats = annotate_file(tmp_path / "in.jsonl", tmp_path / "out.jsonl", [run])
    before = [json.loads(line) for line in (tmp_path / "in.jsonl").read_text().splitlines()]
    after = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    for b, a in zip(before, after, strict=True):
        for key in ("positive_passages", "negative_passages"):
            assert [{k: v for k, v in p.items() if k != "score"} for p in a[key]] == b[key]
        assert a["query"] == b["query"] and a["query_id"] == b["query_id"]
    assert [p["score"] for p in after[0]["positive_passages"]] == [1.0]
    assert [p["score"] for p in after[0]["negative_passages"]] == [0.5, 0.0, 0.0, 0.0]
    assert (stats.passages, stats.uncovered_passages, stats.uncovered_positives) == (10, 4, 0)
    assert read_train_file(tmp_path / "out.jsonl")[1].negatives[0].score == 0.5


def test_teacher_cli_annotates_compares_and_refuses_unknown_queries(tmp_path, capsys):
    write_train_file(tmp_path / "in.jsonl", n_queries=2, scores=False)
    run = tmp_path / "run.trec"
    run.write_text("".join(f"{q} Q0 p{q} 1 5.0 t\n{q} Q0 n{q}-2 2 1.0 t\n" for q in ("0", "1")))
    qrels = tmp_path / "qrels.tsv"
    qrels.write_text("query-id\tcorpus-id\tscore\n0\tp0\t1\n1\tp1\t1\n")
    out = tmp_path / "out.jsonl"
    assert teacher_main(["--train", str(tmp_path / "in.jsonl"), "--teacher", f"{run}:2", "--output", str(out),
                         "--fused-run", str(tmp_path / "fused.trec")]) == 0  # fmt: skip
    assert "annotated 10 passages of 2 queries" in capsys.readouterr().out
    assert json.loads(out.read_text().splitlines()[0])["negative_passages"][2]["score"] == 0.0
    assert (tmp_path / "fused.trec").read_text().startswith("0 Q0 p0 1 2.0 teacher")
    assert teacher_main(["--teacher", str(run), "--teacher", str(run), "--qrels", str(qrels), "--compare"]) == 0
    table = capsys.readouterr().out
    assert "fused, minmax | 1.0000" in table and "fused, zscore" in table
    run.write_text("7 Q0 p0 1 5.0 t\n")
    with pytest.raises(InputFormatError, match=r"in\.jsonl:1: query 0 is in no teacher run"):
        teacher_main(["--train", str(tmp_path / "in.jsonl"), "--teacher", str(run), "--output", str(out)])


def test_interpolated_runs_keep_the_first_stage_below_the_depth():
    first = {"q": [("a", 3.0), ("b", 2.0), ("c", 1.0), ("d", 0.5)]}
    reranked = {"q": [("c", 9.0), ("b", 5.0), ("a", 1.0)]}
    assert [d for d, _ in interpolate_runs(first, reranked, 1.0, 3)["q"]] == ["c", "b", "a", "d"]
    assert [d for d, _ in interpolate_runs(first, reranked, 0.0, 3)["q"]] == ["a", "b", "c", "d"]
    mixed = dict(interpolate_runs(first, reranked, 0.5, 3)["q"])
    assert mixed["a"] == pytest.approx(0.5 * 0.0 + 0.5 * 1.0) and mixed["b"] == pytest.approx(0.5 * 0.5 + 0.5 * 0.5)


# ---------------------------------------------------------------------------------------------- case
def test_fold_all_caps_touches_only_texts_without_lower_case():
    assert apply_case("WHAT IS THE EFFECT OF BRCA1?", "fold-all-caps") == "what is the effect of brca1?"
    assert apply_case("Effect of BRCA1 on DNA repair", "fold-all-caps") == "Effect of BRCA1 on DNA repair"
    assert apply_case("1234 --", "fold-all-caps") == "1234 --"
    assert apply_case("WHAT", "as-is") == "WHAT"
    with pytest.raises(ValueError, match="unknown text case"):
        apply_case("x", "lower")


def test_case_augment_lowercases_a_deterministic_share_of_queries(tmp_path):
    write_train_file(tmp_path / "t.jsonl", n_queries=8)
    queries = [q for q in read_train_file(tmp_path / "t.jsonl")]
    queries = [type(q)(q.query_id, q.query.upper(), q.positives, q.negatives) for q in queries]
    data = TrainDataset(queries, 3, case_augment=0.5)
    drawn = [data.group(i, e).query for e in range(10) for i in range(8)]
    lowered = sum(q.islower() for q in drawn)
    assert 20 < lowered < 60  # about half of 80
    assert drawn == [TrainDataset(queries, 3, case_augment=0.5).group(i, e).query for e in range(10) for i in range(8)]
    assert not any(q.islower() for q in (TrainDataset(queries, 3).group(i, 0).query for i in range(8)))


def test_text_case_is_recorded_by_training_and_applied_when_serving(tiny_llama, tmp_path):
    """A model trained with --text-case fold-all-caps embeds an ALL-CAPS query as its lower-case form."""
    from pyserini_llama.encoders.repllama import RepLLaMAEncoder
    from pyserini_llama.rerankers.rankllama import RankLLaMAReranker
    from pyserini_llama.training.export import export_adapter

    torch.set_num_threads(1)
    for objective in ("repllama", "rankllama"):
        trainer = _trainer(tiny_llama, tmp_path, objective, text_case="fold-all-caps", max_steps=1)
        trainer.train()
        out = tmp_path / f"out-{objective}"
        assert json.loads((out / "input_format.json").read_text())["text_case"] == "fold-all-caps"
        shipped = tmp_path / f"shipped-{objective}"
        export_adapter(out, shipped)
        assert (shipped / "input_format.json").is_file()
    encoder = RepLLaMAEncoder(str(tmp_path / "shipped-repllama"))
    assert encoder.text_case == "fold-all-caps"
    upper, lower = encoder.encode_queries(["PANDA BEAR", "panda bear"])
    assert torch.allclose(torch.from_numpy(upper), torch.from_numpy(lower))
    assert encoder.format_passages([{"title": "PANDA", "text": "Giant Panda"}]) == ["passage: panda Giant Panda"]
    plain = RepLLaMAEncoder(str(tmp_path / "shipped-repllama"), text_case="as-is")
    assert not torch.allclose(*map(torch.from_numpy, plain.encode_queries(["PANDA BEAR", "panda bear"])))
    reranker = RankLLaMAReranker(str(tmp_path / "shipped-rankllama"))
    assert reranker.text_case == "fold-all-caps"
    a, b = reranker.score("PANDA BEAR", ["a bear"]), reranker.score("panda bear", ["a bear"])
    assert a.tolist() == pytest.approx(b.tolist())
    assert RankLLaMAReranker(str(tiny_llama)).text_case == "as-is"  # no record: the model cards' exact input


def test_an_uncovered_positive_gets_its_querys_top_teacher_score_unless_floor_is_asked(tmp_path):
    write_train_file(tmp_path / "in.jsonl", n_queries=1, scores=False)
    run = {"0": [("n0-0", 3.0), ("n0-1", 1.0)]}  # the positive p0 is beyond the teacher's depth
    annotate_file(tmp_path / "in.jsonl", tmp_path / "max.jsonl", [run])
    annotate_file(tmp_path / "in.jsonl", tmp_path / "floor.jsonl", [run], uncovered_positive="floor")
    top = json.loads((tmp_path / "max.jsonl").read_text())
    low = json.loads((tmp_path / "floor.jsonl").read_text())
    assert top["positive_passages"][0]["score"] == 1.0 and low["positive_passages"][0]["score"] == 0.0
    assert (
        [p["score"] for p in top["negative_passages"]]
        == [1.0, 0.0, 0.0, 0.0]
        == [p["score"] for p in low["negative_passages"]]
    )

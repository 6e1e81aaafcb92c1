"""Interpolating RankLLaMA with its first stage: ``interpolate_runs``, ``rerank --interpolate``, the sweep that
chooses W, the Pyserini hook's ``--rerank-interpolate`` and the pipeline's pure + interpolated runs (tiny models only).
"""

from __future__ import annotations

import argparse
import json
import logging
import math

import pytest
from conftest import TINY_DOCS
from test_pyserini_search_rerank import run_fake_main

from pyserini_llama.cli_options import INTERPOLATION_NORMS
from pyserini_llama.data.runs import read_run, write_trec_run
from pyserini_llama.data.score_fusion import NORMALISATIONS, interpolate_runs
from pyserini_llama.errors import PyseriniLlamaError
from pyserini_llama.pipeline import PURE, Pipeline, PipelineConfig
from pyserini_llama.rerank import pyserini_search
from pyserini_llama.rerank.__main__ import main as rerank_main
from pyserini_llama.rerank.interpolation import (
    best_weight,
    interpolate_reranking,
    parse_weights,
    sweep_interpolation,
)
from pyserini_llama.rerank.pyserini_search import LUCENE_MAIN
from pyserini_llama.rerank.sweep import __main__ as sweep_cli

# First stage: a > b > c > d > e; the reranker scored the top 3 only (its tail holds first-stage order).
FIRST = {"q": [("a", 10.0), ("b", 8.0), ("c", 6.0), ("d", 5.0), ("e", 1.0)]}
RERANKED = {"q": [("c", 3.0), ("a", 2.5), ("b", 1.0), ("d", 0.0), ("e", -1.0)]}


def docids(hits):
    return [d for d, _ in hits]


def test_norm_choices_match_score_fusion():
    assert INTERPOLATION_NORMS == NORMALISATIONS


def test_minmax_interpolation_by_hand():
    # first over the top 3: a 1, b 0.5, c 0; reranker: c 1, a (2.5 - 1) / 2 = 0.75, b 0
    out = interpolate_runs(FIRST, RERANKED, 0.5, 3, "minmax")["q"]
    expected = {"a": 0.5 * 0.75 + 0.5 * 1, "b": 0.5 * 0 + 0.5 * 0.5, "c": 0.5 * 1 + 0.5 * 0}
    assert docids(out) == ["a", "c", "b", "d", "e"]
    assert [s for _, s in out[:3]] == pytest.approx([expected[d] for d in "acb"])
    assert out[3][1] < out[2][1] and out[4][1] < out[3][1]  # the tail stays below, in first-stage order
    assert docids(interpolate_runs(FIRST, RERANKED, 0.0, 3)["q"]) == ["a", "b", "c", "d", "e"]
    assert docids(interpolate_runs(FIRST, RERANKED, 1.0, 3)["q"]) == ["c", "a", "b", "d", "e"]


def test_zscore_interpolation_by_hand():
    def z(values):
        mean = sum(values) / len(values)
        std = math.sqrt(sum((v - mean) ** 2 for v in values) / len(values))
        return [(v - mean) / std for v in values]

    first, rerank = z([10.0, 8.0, 6.0]), z([2.5, 1.0, 3.0])  # a, b, c
    w = 0.3
    expected = {d: w * r + (1 - w) * f for d, f, r in zip("abc", first, rerank, strict=True)}
    out = interpolate_runs(FIRST, RERANKED, w, 3, "zscore")["q"]
    assert docids(out) == [*sorted(expected, key=lambda d: -expected[d]), "d", "e"]
    assert dict(out[:3]) == pytest.approx(expected)
    assert max(s for _, s in out[3:]) < min(s for _, s in out[:3])
    assert docids(interpolate_runs(FIRST, RERANKED, 0.0, 3, "zscore")["q"]) == ["a", "b", "c", "d", "e"]
    assert docids(interpolate_runs(FIRST, RERANKED, 1.0, 3, "zscore")["q"]) == ["c", "a", "b", "d", "e"]


def test_reranking_with_skipped_documents():
    reranked = {"q": [("c", 3.0), ("a", 2.5), ("d", 0.0), ("e", -1.0)]}  # b was not in the corpus
    with pytest.raises(PyseriniLlamaError, match="no score for document b"):
        interpolate_reranking(FIRST, reranked, 0.5, 3)
    out = interpolate_reranking(FIRST, reranked, 1.0, 3, skip_missing=True)["q"]
    assert docids(out) == ["c", "a", "d", "e"]  # b left out, as in the pure run; d, e below
    nothing = interpolate_reranking({"q": FIRST["q"][:4]}, {"q": [("c", -1.0), ("d", -2.0)]}, 0.5, 2, skip_missing=True)
    assert nothing["q"] == [("c", 6.0), ("d", 5.0)]  # a, b skipped, nothing scored: the first stage's tail


# --------------------------------------------------------------------------- the sweep
# q1: the reranker finds the relevant c; q2: it buries the relevant x. Only 1/3 < W < 0.357 keeps both
# near the top: q1's c second, q2's x first.
SWEEP_FIRST = {"q1": [("a", 3.0), ("b", 2.0), ("c", 1.0)], "q2": [("x", 3.0), ("y", 2.0), ("z", 1.0)]}
SWEEP_RERANKED = {"q1": [("c", 10.0), ("a", 1.0), ("b", 0.0)], "q2": [("z", 10.0), ("y", 9.0), ("x", 0.0)]}
SWEEP_QRELS = {"q1": {"c": 1}, "q2": {"x": 1}}


def test_sweep_picks_the_known_best_weight():
    results = sweep_interpolation(SWEEP_FIRST, SWEEP_RERANKED, SWEEP_QRELS, 3, [0.0, 0.35, 1.0])
    second = 1 / math.log2(3)
    assert [w for w, _ in results] == [0.0, 0.35, 1.0]
    assert [v for _, v in results] == pytest.approx([(0.5 + 1) / 2, (second + 1) / 2, (1 + 0.5) / 2])
    assert best_weight(results) == (0.35, results[1][1])
    # The default grid misses that window: 0 .. 0.3 and 0.6 .. 1 tie at 0.75; ties go to the smaller weight.
    tied = sweep_interpolation(SWEEP_FIRST, SWEEP_RERANKED, SWEEP_QRELS, 3)
    assert best_weight(tied) == (0.0, pytest.approx(0.75))
    assert best_weight([(0.2, 0.5), (0.8, 0.5), (0.5, 0.4)]) == (0.2, 0.5)


def test_parse_weights():
    assert parse_weights("1, 0.5,0,0.5") == [0.0, 0.5, 1.0]
    for bad, message in (("0,1.5", "not between 0 and 1"), ("0,x", "'x' is not a number"), (",", "no weight")):
        with pytest.raises(PyseriniLlamaError, match=message):
            parse_weights(bad)


def test_sweep_cli_table_json_and_test_warning(tmp_path, capsys):
    first, reranked = tmp_path / "first.trec", tmp_path / "reranked.trec"
    write_trec_run(SWEEP_FIRST, first)
    write_trec_run(SWEEP_RERANKED, reranked)
    qrels = tmp_path / "dev.qrels"
    qrels.write_text("".join(f"{q} 0 {d} {g}\n" for q, docs in SWEEP_QRELS.items() for d, g in docs.items()))
    out = tmp_path / "sweep.json"
    argv = ["--first", str(first), "--reranked", str(reranked), "--qrels", str(qrels), "--depth", "3"]
    assert sweep_cli.main([*argv, "--weights", "0,0.35,1", "--json", str(out)]) == 0
    captured = capsys.readouterr()
    assert "| weight | ndcg@10 |" in captured.out and "| 0.35 (best) | 0.8155 |" in captured.out
    assert "best reranker weight: 0.35" in captured.out and "--interpolate 0.35" in captured.out
    assert captured.err == ""
    saved = json.loads(out.read_text())
    assert saved["best"]["weight"] == 0.35 and [r["weight"] for r in saved["results"]] == [0.0, 0.35, 1.0]

    test_qrels = tmp_path / "test.tsv"
    test_qrels.write_text(qrels.read_text())
    argv[argv.index(str(qrels))] = str(test_qrels)
    assert sweep_cli.main(argv) == 0
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "warning:" in err and "test qrels" in err

    other = tmp_path / "other.trec"
    write_trec_run({"q1": [("a", 1.0)], "q2": [("x", 1.0)]}, other)
    argv[argv.index(str(reranked))] = str(other)
    with pytest.raises(PyseriniLlamaError, match=f"{other} against {first}: .*no score for document"):
        sweep_cli.main(argv)


# --------------------------------------------------------------------------- the rerank command
def test_rerank_cli_interpolates_its_own_pure_output(tmp_path, tiny_beir, tiny_rank_lora):
    first = tmp_path / "first.trec"
    write_trec_run({"1": [("d3", 5.0), ("d1", 4.0), ("d5", 3.0), ("d2", 2.0)], "2": [("d2", 2.0), ("d6", 1.0)]}, first)
    base = ["--topics", str(tiny_beir / "topics.tsv"), "--run", str(first), "--corpus", str(tiny_beir)]
    base += ["--reranker", str(tiny_rank_lora), "--depth", "3", "--batch-size", "2", "--max-length", "48"]
    pure, mixed = tmp_path / "pure.trec", tmp_path / "mixed.trec"
    assert rerank_main([*base, "--output", str(pure)]) == 0
    assert rerank_main([*base, "--output", str(mixed), "--interpolate", "0.3", "--interpolate-norm", "zscore"]) == 0
    expected = interpolate_runs(read_run(first), read_run(pure), 0.3, 3, "zscore")
    assert read_run(mixed) == expected
    assert read_run(mixed) != read_run(pure)

    ones = tmp_path / "ones.trec"
    assert rerank_main([*base, "--output", str(ones), "--interpolate", "1"]) == 0
    assert {q: docids(h) for q, h in read_run(ones).items()} == {q: docids(h) for q, h in read_run(pure).items()}

    with first.open("a") as f:  # a document the corpus lacks, in the top 3 of query 2
        f.write("2 Q0 nowhere 3 0.5 bm25\n")
    skipped = tmp_path / "skipped.trec"
    assert rerank_main([*base, "--output", str(skipped), "--interpolate", "0.5", "--skip-missing-docs"]) == 0
    assert sorted(docids(read_run(skipped)["2"])) == ["d2", "d6"]

    with pytest.raises(PyseriniLlamaError, match="--interpolate-norm zscore needs --interpolate W"):
        rerank_main([*base, "--output", str(tmp_path / "x.trec"), "--interpolate-norm", "zscore"])
    with pytest.raises(SystemExit):
        rerank_main([*base, "--output", str(tmp_path / "x.trec"), "--interpolate", "1.5"])


def test_rerank_help_says_how_to_choose_w(capsys):
    with pytest.raises(SystemExit):
        rerank_main(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "W is the RERANKER's weight" in text and "never on the test queries" in text
    assert "python -m pyserini_llama.rerank.sweep" in text


# --------------------------------------------------------------------------- the Pyserini hook
def test_hook_passes_the_interpolation_flags_on(tmp_path, tiny_beir, tiny_rank_lora):
    parser = argparse.ArgumentParser()
    pyserini_search.add_reranking_options(parser)
    args = parser.parse_args(["--reranker", "m", "--rerank-interpolate", "0.4", "--rerank-interpolate-norm", "zscore"])
    assert pyserini_search.rerank_argv(args) == [
        "--reranker",
        "m",
        "--interpolate",
        "0.4",
        "--interpolate-norm",
        "zscore",
    ]
    assert pyserini_search.rerank_argv(parser.parse_args(["--reranker", "m"])) == ["--reranker", "m"]
    with pytest.raises(SystemExit):
        parser.parse_args(["--reranker", "m", "--rerank-interpolate", "2"])
    args = parser.parse_args(["--reranker", "m", "--corpus", str(tiny_beir), "--rerank-interpolate-norm", "zscore"])
    with pytest.raises(ValueError, match="needs --rerank-interpolate W"):
        pyserini_search.check_reranking_args(args, LUCENE_MAIN)

    topics = tmp_path / "topics.tsv"
    topics.write_text((tiny_beir / "topics.tsv").read_text())
    first_stage, hooked, reference = (tmp_path / n for n in ("bm25.trec", "hooked.trec", "reference.trec"))
    base = ["--index", "idx", "--topics", str(topics)]
    run_fake_main(LUCENE_MAIN, [*base, "--output", str(first_stage)])
    rerank = ["--reranker", str(tiny_rank_lora), "--rerank-depth", "2", "--rerank-max-length", "48"]
    rerank += ["--corpus", str(tiny_beir), "--rerank-interpolate", "0.5"]
    run_fake_main(LUCENE_MAIN, [*base, "--output", str(hooked), *rerank])
    reference_argv = ["--topics", str(topics), "--run", str(first_stage), "--corpus", str(tiny_beir)]
    reference_argv += ["--reranker", str(tiny_rank_lora), "--depth", "2", "--max-length", "48"]
    assert rerank_main([*reference_argv, "--interpolate", "0.5", "--output", str(reference)]) == 0
    assert hooked.read_bytes() == reference.read_bytes()


# --------------------------------------------------------------------------- the pipeline
BM25_RUN = {
    "1": [("d3", 9.0), ("d1", 8.0), ("d4", 7.0), ("d2", 6.0), ("d5", 5.0)],
    "2": [("d6", 4.0), ("d4", 3.5), ("d2", 3.0), ("d1", 1.0)],
    "3": [("d1", 2.0), ("d3", 1.5), ("d5", 1.0), ("d6", 0.5)],
}


@pytest.fixture()
def no_java(monkeypatch):
    """The pipeline with a handmade BM25 run instead of Lucene: only the RankLLaMA stages are real."""
    monkeypatch.setattr(
        Pipeline, "_build_lucene", lambda self: self.artifacts["bm25"].inputs[0].path.mkdir(parents=True, exist_ok=True)
    )
    monkeypatch.setattr(Pipeline, "_build_bm25", lambda self: self._write_run(BM25_RUN, "bm25"))


def test_pipeline_new_w_reuses_the_pure_reranking(tiny_beir, tiny_rank_lora, tmp_path, no_java, monkeypatch, caplog):
    assert {docid for docid, _, _ in TINY_DOCS} >= {d for hits in BM25_RUN.values() for d, _ in hits}
    out = tmp_path / "out"

    def config(w=None, norm="minmax"):
        return PipelineConfig(
            dataset=tiny_beir,
            output_dir=out,
            stages=["bm25", "rankllama"],
            reranker=str(tiny_rank_lora),
            rerank_depth=3,
            batch_size=4,
            reranker_max_length=48,
            rerank_interpolate=w,
            rerank_interpolate_norm=norm,
        )

    pure_manifest = Pipeline(config(0.3)).artifacts[PURE].manifest()
    assert pure_manifest == Pipeline(config(0.7, "zscore")).artifacts[PURE].manifest()
    assert "interpolate" not in json.dumps(pure_manifest)
    assert (
        Pipeline(config(0.3)).artifacts["rankllama"].manifest()
        != Pipeline(config(0.7)).artifacts["rankllama"].manifest()
    )
    assert PURE not in Pipeline(config()).artifacts  # no interpolation: run.rankllama.trec is the pure run, as before

    metrics = Pipeline(config()).run()
    assert list(metrics) == ["bm25", "rankllama"]
    pure_bytes = (out / "run.rankllama.trec").read_bytes()

    def no_reranking(self):
        raise AssertionError("the pure reranking was computed again")

    monkeypatch.setattr(Pipeline, "reranker", property(no_reranking))
    caplog.set_level(logging.INFO)
    metrics = Pipeline(config(0.3)).run()  # the pure run is copied from run.rankllama.trec, not recomputed
    assert list(metrics) == ["bm25", "rankllama (pure)", "rankllama"]
    assert (out / "run.rankllama-pure.trec").read_bytes() == pure_bytes
    pure = read_run(out / "run.rankllama-pure.trec")
    assert read_run(out / "run.rankllama.trec") == interpolate_runs(read_run(out / "run.bm25.trec"), pure, 0.3, 3)
    saved = json.loads((out / "metrics.json").read_text())
    assert list(saved["metrics"]) == list(metrics) and saved["settings"]["rerank_interpolate"] == 0.3

    pure_mtime = (out / "run.rankllama-pure.trec").stat().st_mtime_ns
    caplog.clear()
    Pipeline(config(0.7, "zscore")).run()  # a new W: only the mix is rebuilt
    assert (out / "run.rankllama-pure.trec").stat().st_mtime_ns == pure_mtime
    assert f"reusing {out / 'run.rankllama-pure.trec'}" in caplog.text
    assert "building" not in caplog.text.replace(f"building {out / 'run.rankllama.trec'}", "")
    expected = interpolate_runs(read_run(out / "run.bm25.trec"), pure, 0.7, 3, "zscore")
    assert read_run(out / "run.rankllama.trec") == expected

    assert list(Pipeline(config()).run()) == ["bm25", "rankllama"]  # back to pure: copied back, not reranked
    assert (out / "run.rankllama.trec").read_bytes() == pure_bytes


def test_pipeline_interpolation_flags(tiny_beir, tmp_path):
    from pyserini_llama.pipeline.__main__ import main as pipeline_main

    base = ["--dataset", str(tiny_beir), "--output-dir", str(tmp_path / "out"), "--stages", "bm25"]
    with pytest.raises(PyseriniLlamaError, match="--rerank-interpolate-norm zscore needs --rerank-interpolate W"):
        pipeline_main([*base, "--rerank-interpolate-norm", "zscore"])
    with pytest.raises(SystemExit):
        pipeline_main([*base, "--rerank-interpolate", "-0.1"])
    with pytest.raises(PyseriniLlamaError, match="--rerank-interpolate must be between 0 and 1"):
        Pipeline(PipelineConfig(dataset=tiny_beir, output_dir=tmp_path, stages=["bm25"], rerank_interpolate=2.0))
    assert not (tmp_path / "out").exists()

"""evaluate_run and its CLI: hand-computed cases, the released RepLLaMA DL19 run, and Pyserini's trec_eval."""

import json
import math
import subprocess
import sys

import pytest

from pyserini_llama.data import read_qrels, read_run, write_trec_run
from pyserini_llama.errors import PyseriniLlamaError
from pyserini_llama.eval import evaluate_run, parse_metric
from pyserini_llama.eval.__main__ import main

QRELS = {
    "q1": {"a": 1, "b": 0, "c": 2},
    "q2": {"d": 1},
    "q3": {"e": 1},  # judged, not in the run
}
RUN = {
    "q1": [("x", 3.0), ("a", 2.0), ("c", 1.0)],
    "q2": [("d", 0.5)],
    "q4": [("e", 1.0)],  # in the run, not judged
}
# q1 by hand: gains (0, 1, 2) at ranks 1-3; nDCG uses trec_eval's linear gains and log2(rank + 1).
Q1_NDCG3 = (1 / math.log2(3) + 2 / math.log2(4)) / (2 + 1 / math.log2(3))


def test_hand_computed_means_over_queries_in_run_and_qrels():
    got = evaluate_run(QRELS, RUN, ["ndcg@3", "mrr@10", "recall@2", "P@2", "map", "ndcg@1", "map@2"])
    expected = {
        "ndcg@3": (Q1_NDCG3 + 1) / 2,
        "mrr@10": (1 / 2 + 1) / 2,
        "recall@2": (1 / 2 + 1) / 2,
        "P@2": (1 / 2 + 1 / 2) / 2,  # q2 has one hit: P@2 counts the missing rank as non-relevant
        "map": ((1 / 2 + 2 / 3) / 2 + 1) / 2,
        "ndcg@1": (0 + 1) / 2,
        "map@2": ((1 / 2) / 2 + 1) / 2,
    }
    assert got == pytest.approx(expected, abs=1e-12)
    assert list(got) == list(expected)


def test_relevance_level_and_complete():
    level2 = evaluate_run(QRELS, RUN, ["mrr@10", "recall@2", "map", "ndcg@3"], relevance_level=2)
    # at level 2 only q1's c (rank 3) is relevant; q2's d (grade 1) is not, so q2 scores 0
    assert level2["mrr@10"] == pytest.approx((1 / 3 + 0) / 2)
    assert level2["recall@2"] == 0
    assert level2["map"] == pytest.approx((1 / 3 + 0) / 2)
    assert level2["ndcg@3"] == pytest.approx((Q1_NDCG3 + 1) / 2)  # nDCG keeps the graded gains
    complete = evaluate_run(QRELS, RUN, ["mrr@10", "ndcg@3"], complete=True)
    assert complete == pytest.approx({"mrr@10": (1 / 2 + 1 + 0) / 3, "ndcg@3": (Q1_NDCG3 + 1 + 0) / 3})


def test_per_query_results_and_all_row():
    got = evaluate_run(QRELS, RUN, ["mrr@10"], per_query=True)
    assert got == {"q1": {"mrr@10": 0.5}, "q2": {"mrr@10": 1.0}, "all": {"mrr@10": 0.75}}
    got = evaluate_run(QRELS, RUN, ["mrr@10"], per_query=True, complete=True)
    assert got["q3"] == {"mrr@10": 0.0} and got["all"]["mrr@10"] == pytest.approx(0.5)


def test_mrr_cut_uses_trec_eval_order_not_list_order():
    qrels = {"q": {"a": 1}}
    # a tie: trec_eval ranks the larger docid first, so "b" is rank 1 and "a" rank 2
    tie = {"q": [("a", 1.0), ("b", 1.0)]}
    assert evaluate_run(qrels, tie, ["mrr@1", "mrr@2", "recip_rank"]) == {"mrr@1": 0.0, "mrr@2": 0.5, "recip_rank": 0.5}
    unsorted = {"q": [("z", 0.1), ("a", 0.9)]}
    assert evaluate_run(qrels, unsorted, ["mrr@1"]) == {"mrr@1": 1.0}


@pytest.mark.parametrize(
    ("name", "measure", "key", "cutoff"),
    [
        ("ndcg@10", "ndcg_cut.10", "ndcg_cut_10", None),
        ("nDCG@10", "ndcg_cut.10", "ndcg_cut_10", None),
        ("R@1000", "recall.1000", "recall_1000", None),
        ("recall@100", "recall.100", "recall_100", None),
        ("precision@5", "P.5", "P_5", None),
        ("P@5", "P.5", "P_5", None),
        ("map", "map", "map", None),
        ("map@100", "map_cut.100", "map_cut_100", None),
        ("MRR@10", "recip_rank", "recip_rank", 10),
        ("mrr", "recip_rank", "recip_rank", None),
        ("ndcg_cut.20", "ndcg_cut.20", "ndcg_cut_20", None),
        ("ndcg_cut_20", "ndcg_cut.20", "ndcg_cut_20", None),
        ("recip_rank", "recip_rank", "recip_rank", None),
        ("bpref", "bpref", "bpref", None),
    ],
)
def test_metric_names(name, measure, key, cutoff):
    metric = parse_metric(name)
    assert (metric.name, metric.measure, metric.key, metric.cutoff) == (name, measure, key, cutoff)


@pytest.mark.parametrize("name", ["foo", "ndcg@", "mrr@0", "hits@10", "ndcg@10x"])
def test_unknown_metrics_are_user_errors(name):
    with pytest.raises(PyseriniLlamaError, match="metric"):
        parse_metric(name)


def test_measure_without_cutoff_and_disjoint_run_are_user_errors():
    with pytest.raises(PyseriniLlamaError, match="one cutoff"):
        evaluate_run(QRELS, RUN, ["recall"])
    with pytest.raises(PyseriniLlamaError, match="wrong qrels"):
        evaluate_run(QRELS, {"other": [("a", 1.0)]})


def test_cli_json_and_table(tmp_path, capsys):
    qrels = tmp_path / "qrels.txt"
    qrels.write_text("".join(f"{q} 0 {d} {g}\n" for q, docs in QRELS.items() for d, g in docs.items()))
    run = tmp_path / "run.trec"
    write_trec_run(RUN, run)
    assert main(["--qrels", str(qrels), "--run", str(run), "--metrics", "mrr@10", "ndcg@3", "--json"]) == 0
    out = capsys.readouterr().out
    assert json.loads(out) == {"mrr@10": 0.75, "ndcg@3": round((Q1_NDCG3 + 1) / 2, 4)}
    assert out.count("\n") == 1
    main(["--qrels", str(qrels), "--run", str(run), "--metrics", "mrr@10", "--json", "--per-query", "--complete"])
    assert json.loads(capsys.readouterr().out) == {
        "q1": {"mrr@10": 0.5},
        "q2": {"mrr@10": 1.0},
        "q3": {"mrr@10": 0.0},
        "all": {"mrr@10": 0.5},
    }
    main(["--qrels", str(qrels), "--run", str(run), "--metrics", "mrr@10", "map"])
    assert capsys.readouterr().out.splitlines() == ["mrr@10  0.7500", "map     0.7917", "(2 queries)"]


def test_cli_reports_user_errors_in_one_line(tmp_path):
    run = tmp_path / "run.trec"
    write_trec_run(RUN, run)
    proc = subprocess.run(
        [sys.executable, "-m", "pyserini_llama.eval", "--qrels", "no-such-qrels", "--run", str(run)],
        capture_output=True,
        text=True,
        env={"PYSERINI_LLAMA_TOPICS_DIR": str(tmp_path), "PATH": ""},
    )
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: 'no-such-qrels' is neither a file nor a known qrels name")


def test_released_repllama_dl19_run_through_the_cli(shared_data):
    dl19 = shared_data / "msmarco-passage" / "dl19"
    run = str(dl19 / "run.repllama-7b-top1000.trec")

    def cli(*extra):
        proc = subprocess.run(
            [sys.executable, "-m", "pyserini_llama.eval", "--qrels", str(dl19 / "qrels.txt"), "--run", run, *extra],
            capture_output=True,
            text=True,
            check=True,
        )
        return json.loads(proc.stdout)

    assert cli("--metrics", "ndcg@10", "--json") == {"ndcg@10": 0.7384}
    assert cli("--metrics", "ndcg@10", "recall@1000", "--relevance-level", "2", "--json") == {
        "ndcg@10": 0.7384,
        "recall@1000": 0.8721,
    }
    topics = shared_data / "topics-and-qrels"
    named = evaluate_run(read_qrels("dl19-passage", topics_dir=topics), read_run(run), ["ndcg@10"])
    assert round(named["ndcg@10"], 4) == 0.7384


def pyserini_trec_eval(args):
    """Pyserini's own ``python -m pyserini.eval.trec_eval`` (Java trec_eval); {measure: value}."""
    proc = subprocess.run(
        [sys.executable, "-m", "pyserini.eval.trec_eval", *args], capture_output=True, text=True, check=True
    )
    values = {}
    for line in proc.stdout.splitlines():
        measure, qid, value = (field.strip() for field in line.split("\t"))
        if qid == "all":
            values[measure] = float(value)
    return values


CROSS_CHECK = {"ndcg@10": "ndcg_cut_10", "recall@100": "recall_100", "recall@1000": "recall_1000", "map": "map"}
TREC_EVAL_ARGS = ["-m", "ndcg_cut.10", "-m", "recall.100,1000", "-m", "map", "-m", "recip_rank"]


@pytest.mark.slow
def test_equals_pyserini_trec_eval_on_real_runs(shared_data, tmp_path):
    dl19 = shared_data / "msmarco-passage" / "dl19"
    qrels_path = tmp_path / "qrels.txt"
    # add a judged query whose judgements are all non-relevant, and one missing from every run
    qrels_path.write_text((dl19 / "qrels.txt").read_text() + "19335x 0 7187158 0\nmissing 0 8412684 2\n")
    qrels = read_qrels(qrels_path)
    # the RepLLaMA run has many tied scores (3 decimals), so it also checks the tie order
    cases = [("run.repllama-7b-top1000.trec", 1, False), ("run.repllama-7b-top1000.trec", 2, True)]
    cases += [("run.bm25-top100.trec", 2, False), ("run.bm25-top100.trec", 1, True)]
    for name, level, complete in cases:
        run = read_run(dl19 / name)
        run["19335x"] = run["19335"]
        partial = dict(list(run.items())[5:])  # some judged queries missing: -c matters
        run_path = tmp_path / name
        write_trec_run(partial, run_path)
        flags = ["-l", str(level)] + (["-c"] if complete else [])
        expected = pyserini_trec_eval([*flags, *TREC_EVAL_ARGS, str(qrels_path), str(run_path)])
        mine = evaluate_run(qrels, partial, [*CROSS_CHECK, "recip_rank"], relevance_level=level, complete=complete)
        for metric, measure in {**CROSS_CHECK, "recip_rank": "recip_rank"}.items():
            assert round(mine[metric], 4) == expected[measure], (name, flags, metric)
        if not complete:
            expected = pyserini_trec_eval([*flags, "-M", "10", "-m", "recip_rank", str(qrels_path), str(run_path)])
            mine = evaluate_run(qrels, partial, ["mrr@10"], relevance_level=level)
            assert round(mine["mrr@10"], 4) == expected["recip_rank"], (name, flags)

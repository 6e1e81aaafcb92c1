"""``--reranker`` in Pyserini's own search commands (:mod:`pyserini_llama.rerank.pyserini_search`).

The first tests drive the hook with a stand-in for Pyserini's ``__main__`` (no Java, seconds); the
slow ones run Pyserini's real ``pyserini.search.lucene`` / ``pyserini.search.faiss``: once as
``python -m`` in a subprocess (the start-up hook as users get it), the rest in this process with
``runpy`` (the same ``python -m`` machinery, but Pyserini is imported once).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import runpy
import subprocess
import sys
from contextlib import redirect_stdout
from pathlib import Path
from types import SimpleNamespace

import pytest
from conftest import TINY_DOCS, TINY_QUERIES

from pyserini_llama._startup import PyseriniHook
from pyserini_llama.bootstrap import import_pyserini
from pyserini_llama.rerank import pyserini_search
from pyserini_llama.rerank.__main__ import main as rerank_main
from pyserini_llama.rerank.pyserini_search import FAISS_MAIN, GROUP_TITLE, LUCENE_MAIN, watch_parser

FIRST_STAGE = {"1": ["d3", "d1", "d5"], "2": ["d6", "d2", "d4"], "3": ["d5", "d3", "d1"]}


class FakeTrecWriter:
    """What Pyserini's ``TrecWriter`` does, enough for the hook: open on enter, one line per hit."""

    def __init__(self, file_path, output_format, mode="w", max_hits=1000, tag=None, topics=None):
        self.file_path, self.tag, self.topics = file_path, tag, topics

    def __enter__(self):
        self._file = open(self.file_path, "w")
        return self

    def __exit__(self, *exc):
        self._file.close()

    def write(self, topic, hits):
        for rank, (docid, score) in enumerate(hits, 1):
            self._file.write(f"{topic} Q0 {docid} {rank} {score:.6f} {self.tag}\n")


FAKE_MAIN = """
import argparse
parser = argparse.ArgumentParser(description="stand-in for a Pyserini search command")
parser.add_argument("--index", required=True)
parser.add_argument("--topics", required=True)
parser.add_argument("--output", required=True)
parser.add_argument("--batch-size", type=int, default=1)
parser.add_argument("--output-format", default="trec")
args = parser.parse_args(ARGV)
with get_output_writer(args.output, args.output_format, "w", tag="Anserini", topics=TOPICS) as writer:
    for qid, docids in FIRST_STAGE.items():
        writer.write(int(qid), [(d, 10.0 - r) for r, d in enumerate(docids)])
"""


def run_fake_main(module_name: str, argv: list[str], *, spec_name: str | None = None) -> dict:
    """Run FAKE_MAIN as if ``python -m`` ran ``module_name`` (its globals say ``__main__`` and its spec)."""
    watch_parser(module_name)
    topics = {int(qid): {"title": text} for qid, text in TINY_QUERIES}  # Pyserini's TSV reader: int ids
    main_globals = {
        "__name__": "__main__",
        "__spec__": SimpleNamespace(name=spec_name or module_name),
        "ARGV": argv,
        "TOPICS": topics,
        "FIRST_STAGE": FIRST_STAGE,
        "get_output_writer": FakeTrecWriter,
    }
    try:
        exec(compile(FAKE_MAIN, "<fake pyserini main>", "exec"), main_globals)
    finally:
        original = getattr(argparse.ArgumentParser.parse_args, "__wrapped__", None)
        if original is not None:  # a call that never came must not leak into other tests
            argparse.ArgumentParser.parse_args = original
    return main_globals


@pytest.fixture()
def collection(tmp_path, tiny_beir) -> SimpleNamespace:
    topics = tmp_path / "topics.tsv"
    topics.write_text("".join(f"{qid}\t{text}\n" for qid, text in TINY_QUERIES))
    return SimpleNamespace(dir=tmp_path, corpus=tiny_beir / "corpus.jsonl", topics=topics)


def test_without_reranker_the_command_is_untouched(collection):
    output = collection.dir / "run.trec"
    argv = ["--index", "idx", "--topics", str(collection.topics), "--output", str(output)]
    parse_args = argparse.ArgumentParser.parse_args
    main_globals = run_fake_main(LUCENE_MAIN, argv)
    assert main_globals["get_output_writer"] is FakeTrecWriter
    assert main_globals["args"].reranker is None and main_globals["args"].batch_size == 1
    assert argparse.ArgumentParser.parse_args is parse_args  # the wrapper removed itself
    assert output.read_text().splitlines()[0] == "1 Q0 d3 1 10.000000 Anserini"
    assert sorted(p.name for p in collection.dir.iterdir()) == ["run.trec", "topics.tsv"]


def test_other_parsers_and_other_modules_pass_through(collection):
    watch_parser(LUCENE_MAIN)
    try:
        plain = argparse.ArgumentParser()
        plain.add_argument("--x")
        assert vars(plain.parse_args(["--x", "1"])) == {"x": "1"}  # not the __main__ module's call
    finally:
        argparse.ArgumentParser.parse_args = argparse.ArgumentParser.parse_args.__wrapped__
    argv = ["--index", "idx", "--topics", "t", "--output", str(collection.dir / "o"), "--reranker", "m"]
    with pytest.raises(SystemExit) as exit_info:  # another __main__: --reranker is not ours there
        run_fake_main(LUCENE_MAIN, argv, spec_name="some.other.__main__")
    assert exit_info.value.code == 2


def test_reranker_output_equals_the_rerank_command(collection, tiny_rank_lora):
    """The hooked command writes what ``python -m pyserini_llama.rerank`` writes on the same first stage."""
    first_stage, hooked, reference = (collection.dir / n for n in ("bm25.trec", "hooked.trec", "reference.trec"))
    base = ["--index", "idx", "--topics", str(collection.topics)]
    run_fake_main(LUCENE_MAIN, [*base, "--output", str(first_stage)])
    rerank = ["--reranker", str(tiny_rank_lora), "--rerank-depth", "2", "--rerank-batch-size", "2"]
    rerank += ["--rerank-max-length", "48", "--corpus", str(collection.corpus)]
    run_fake_main(LUCENE_MAIN, [*base, "--output", str(hooked), "--batch-size", "4", *rerank])
    assert (
        rerank_main(
            ["--topics", str(collection.topics), "--run", str(first_stage), "--corpus", str(collection.corpus)]
            + ["--reranker", str(tiny_rank_lora), "--depth", "2", "--batch-size", "2", "--max-length", "48"]
            + ["--output", str(reference)]
        )
        == 0
    )
    assert hooked.read_bytes() == reference.read_bytes()
    lines = hooked.read_text().splitlines()
    assert len(lines) == 9 and lines[0].endswith(" rankllama") and lines[2].split()[2] == "d5"  # tail kept
    assert sorted(p.name for p in collection.dir.iterdir()) == [
        "bm25.trec",
        "hooked.trec",
        "reference.trec",
        "topics.tsv",
    ]


def test_reranking_flags_map_to_the_rerank_command():
    parser = argparse.ArgumentParser()
    pyserini_search.add_reranking_options(parser)
    args = parser.parse_args(["--reranker", "m", "--rerank-depth", "5", "--rerank-dtype", "bfloat16"])
    assert pyserini_search.rerank_argv(args) == ["--reranker", "m", "--depth", "5", "--dtype", "bfloat16"]
    args = parser.parse_args(["--reranker", "m", "--rerank-append-eos", "--rerank-run-tag", "x"])
    assert pyserini_search.rerank_argv(args) == ["--reranker", "m", "--append-eos", "--run-tag", "x"]
    args = parser.parse_args(
        [
            "--reranker",
            "m",
            "--rerank-segment",
            "150,75",
            "--rerank-aggregate",
            "maxp",
            "--rerank-max-batch-tokens",
            "99",
        ]
    )
    assert pyserini_search.rerank_argv(args) == [
        "--reranker", "m", "--max-batch-tokens", "99", "--segment", "150,75", "--aggregate", "maxp"
    ]  # fmt: skip
    with pytest.raises(SystemExit):
        parser.parse_args(["--reranker", "m", "--rerank-depth", "0"])


@pytest.mark.parametrize(
    ("module", "extra", "message"),
    [
        (FAISS_MAIN, [], "a FAISS index has none: give --corpus"),
        (LUCENE_MAIN, [], "idx is not an index directory; give --corpus"),
        (LUCENE_MAIN, ["--corpus", "nowhere.jsonl"], "--corpus nowhere.jsonl: no such file"),
        (LUCENE_MAIN, ["--corpus", "CORPUS", "--output-format", "msmarco"], "--output-format msmarco"),
    ],
)
def test_bad_reranking_options_fail_before_the_search(collection, capsys, module, extra, message):
    output = collection.dir / "out.trec"
    extra = [str(collection.corpus) if e == "CORPUS" else e for e in extra]
    argv = ["--index", "idx", "--topics", "t", "--output", str(output), "--reranker", "m", *extra]
    with pytest.raises(SystemExit) as exit_info:
        run_fake_main(module, argv)
    assert exit_info.value.code == 2 and message in capsys.readouterr().err and not output.exists()


def test_a_failed_rerank_is_an_error_line_and_leaves_no_run(collection, tiny_rank_lora, capsys):
    corpus = collection.dir / "partial.jsonl"
    corpus.write_text(json.dumps({"_id": "d3", "title": "", "text": "only one document"}) + "\n")
    output = collection.dir / "out.trec"
    argv = ["--index", "idx", "--topics", "t", "--output", str(output), "--reranker", str(tiny_rank_lora)]
    with pytest.raises(SystemExit) as exit_info:
        run_fake_main(LUCENE_MAIN, [*argv, "--corpus", str(corpus)])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and "error:" in err and "document d1 (query 1)" in err
    assert sorted(p.name for p in collection.dir.iterdir()) == ["partial.jsonl", "topics.tsv"]


# ---- Pyserini's real commands (Java) ----


def run_pyserini_main(module: str, argv: list[str], monkeypatch, *, stock: bool = False) -> str:
    """``python -m module argv`` in this process; ``stock=True`` without our start-up hook. Returns stdout.

    Java and ``pyserini.encode`` are set up by us first either way (stock Pyserini would need Java 21 as
    JAVA_HOME and an OpenAI key), so the stock run differs only in what the hook adds to the command.
    """
    import_pyserini("pyserini.encode")
    with monkeypatch.context() as m:
        m.setattr(sys, "argv", [module, *argv])
        if stock:
            m.setattr(sys, "meta_path", [f for f in sys.meta_path if not isinstance(f, PyseriniHook)])
        out = io.StringIO()
        with redirect_stdout(out):
            try:
                runpy.run_module(module, run_name="__main__", alter_sys=True)
            except SystemExit as exc:
                if exc.code not in (0, None):
                    raise
    return out.getvalue()


def _options_part(help_text: str) -> str:
    """--help without its usage lines (which list every option, ours included)."""
    return help_text[help_text.index("\n\n") :]


@pytest.fixture(scope="module")
def tiny_index(tiny_beir, tmp_path_factory) -> Path:
    from pyserini_llama.search.lucene import build_lucene_index

    return build_lucene_index(tiny_beir, tmp_path_factory.mktemp("lucene") / "tiny")


@pytest.mark.slow
def test_without_reranker_pyserini_writes_and_helps_as_stock(tiny_index, collection, monkeypatch):
    argv = ["--index", str(tiny_index), "--topics", str(collection.topics), "--bm25", "--hits", "4"]
    stock, hooked = collection.dir / "stock.trec", collection.dir / "hooked.trec"
    run_pyserini_main("pyserini.search.lucene", [*argv, "--output", str(stock)], monkeypatch, stock=True)
    run_pyserini_main("pyserini.search.lucene", [*argv, "--output", str(hooked)], monkeypatch)
    assert stock.read_bytes() == hooked.read_bytes() and len(stock.read_text().splitlines()) == 5

    for module in ("pyserini.search.lucene", "pyserini.search.faiss"):
        stock_help = run_pyserini_main(module, ["--help"], monkeypatch, stock=True)
        hooked_help = run_pyserini_main(module, ["--help"], monkeypatch)
        assert GROUP_TITLE not in stock_help
        ours = hooked_help.index(f"\n{GROUP_TITLE}")
        assert _options_part(hooked_help[:ours]).rstrip("\n") == _options_part(stock_help).rstrip("\n")
        assert "--rerank-depth N" in hooked_help[ours:]


@pytest.mark.slow
def test_python_m_pyserini_search_lucene_reranks_like_the_rerank_command(
    tiny_index, tiny_rank_lora, collection, monkeypatch
):
    """The target: ``python -m pyserini.search.lucene ... --reranker`` = ``pyserini_llama.rerank`` on its BM25 run.

    The reranked run comes from a real ``python -m`` (start-up hook from the installed .pth, text from
    the index's stored documents); the BM25 run it is compared on is made in this process (same code).
    """
    base = ["--index", str(tiny_index), "--topics", str(collection.topics), "--bm25", "--hits", "5"]
    bm25, hooked, reference = (collection.dir / n for n in ("bm25.trec", "hooked.trec", "reference.trec"))
    run_pyserini_main("pyserini.search.lucene", [*base, "--output", str(bm25)], monkeypatch)
    rerank = ["--reranker", str(tiny_rank_lora), "--rerank-depth", "3", "--rerank-batch-size", "2"]
    env = {k: v for k, v in os.environ.items() if k != "OPENAI_API_KEY"}
    command = [sys.executable, "-m", "pyserini.search.lucene", *base, "--output", str(hooked), *rerank]
    subprocess.run(command, check=True, env=env, timeout=600)
    assert (
        rerank_main(
            ["--topics", str(collection.topics), "--run", str(bm25), "--corpus", str(tiny_index)]
            + ["--reranker", str(tiny_rank_lora), "--depth", "3", "--batch-size", "2", "--output", str(reference)]
        )
        == 0
    )
    assert hooked.read_bytes() == reference.read_bytes()
    assert hooked.read_text() != bm25.read_text() and "rankllama" in hooked.read_text()
    assert sorted(p.name for p in collection.dir.iterdir()) == [
        "bm25.trec",
        "hooked.trec",
        "reference.trec",
        "topics.tsv",
    ]


@pytest.fixture(scope="module")
def tiny_faiss(tiny_lora, tmp_path_factory) -> SimpleNamespace:
    """A flat inner-product FAISS index of the tiny corpus, and a model path Pyserini maps to RepLLaMA."""
    import faiss

    from pyserini_llama.data.document import Document
    from pyserini_llama.encoders.repllama import RepLLaMAEncoder

    root = tmp_path_factory.mktemp("faiss")
    model = root / "tiny-repllama-lora"
    model.symlink_to(tiny_lora, target_is_directory=True)
    (root / "tiny-model").symlink_to(tiny_lora, target_is_directory=True)
    vectors = RepLLaMAEncoder(str(model)).encode_passages([Document("", text=x, title=t) for _, t, x in TINY_DOCS])
    index = faiss.IndexFlatIP(vectors.shape[1])
    index.add(vectors.astype("float32"))
    (root / "index").mkdir()
    faiss.write_index(index, str(root / "index" / "index"))
    (root / "index" / "docid").write_text("".join(f"{d}\n" for d, _, _ in TINY_DOCS))
    return SimpleNamespace(index=root / "index", model=model, unnamed_model=root / "tiny-model")


@pytest.mark.slow
def test_faiss_reranks_with_documents_from_corpus(tiny_faiss, tiny_rank_lora, collection, monkeypatch):
    base = ["--index", str(tiny_faiss.index), "--topics", str(collection.topics), "--hits", "4"]
    dense, hooked, reference = (collection.dir / n for n in ("dense.trec", "hooked.trec", "reference.trec"))
    named = [*base, "--encoder", str(tiny_faiss.model)]  # Pyserini picks RepLLaMA by the name
    run_pyserini_main("pyserini.search.faiss", [*named, "--output", str(dense)], monkeypatch)
    rerank = ["--reranker", str(tiny_rank_lora), "--rerank-depth", "2", "--corpus", str(collection.corpus)]
    # a model name without "repllama" in it: only --encoder-class picks our encoder (else Pyserini's Auto one)
    unnamed = [*base, "--encoder", str(tiny_faiss.unnamed_model), "--encoder-class", "repllama"]
    run_pyserini_main("pyserini.search.faiss", [*unnamed, "--output", str(hooked), *rerank], monkeypatch)
    assert (
        rerank_main(
            ["--topics", str(collection.topics), "--run", str(dense), "--corpus", str(collection.corpus)]
            + ["--reranker", str(tiny_rank_lora), "--depth", "2", "--output", str(reference)]
        )
        == 0
    )
    assert hooked.read_bytes() == reference.read_bytes() and len(dense.read_text().splitlines()) == 12

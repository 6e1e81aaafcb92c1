"""Readers for corpora, queries, qrels and runs: formats, order, and bad input named by file and line."""

import gzip
import json
import logging

import pytest

from pyserini_llama.data import (
    Document,
    iter_corpus,
    open_document_store,
    read_beir_split,
    read_corpus,
    read_qrels,
    read_queries,
    read_run,
    sort_hits,
    write_trec_run,
)
from pyserini_llama.errors import InputFormatError, PyseriniLlamaError, SkippedLines


def write_lines(path, lines, *, gz=False):
    data = "".join(line + "\n" for line in lines).encode()
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


def jl(**fields):
    return json.dumps(fields)


def bad_line(exc_info):
    return exc_info.value.path, exc_info.value.line


# ---------------------------------------------------------------- corpus


BEIR_LINES = [
    jl(_id="d3", title="Third", text="gamma"),
    jl(_id="d1", title="First", text="alpha", metadata={"url": "http://x"}),
    jl(_id="d2", text="beta"),
    jl(_id="d4", title="Only a title", text=""),
    jl(_id="d5", title=None, text="body", url="http://msmarco/doc"),
]


@pytest.mark.parametrize("gz", [False, True])
def test_beir_corpus_keeps_order_fields_and_reads_gzip(tmp_path, gz):
    path = write_lines(tmp_path / ("corpus.jsonl.gz" if gz else "corpus.jsonl"), BEIR_LINES, gz=gz)
    docs = read_corpus(path)
    assert list(docs) == ["d3", "d1", "d2", "d4", "d5"]
    assert docs["d1"] == Document("d1", "alpha", "First")  # metadata.url is not a Document url
    assert docs["d2"].title == ""
    assert docs["d4"] == Document("d4", "", "Only a title")  # title-only documents are fine
    assert docs["d5"] == Document("d5", "body", "", url="http://msmarco/doc")
    assert read_corpus(tmp_path) == docs  # a BEIR directory finds its corpus.jsonl(.gz)


def test_jsonl_collection_lines_and_directories(tmp_path):
    coll = tmp_path / "collection"
    coll.mkdir()
    write_lines(coll / "b.jsonl", [jl(id="7", contents="seven")])
    write_lines(coll / "a.jsonl", [jl(id="x", contents="ex"), jl(id=5, contents="five")])
    (coll / "notes.txt").write_text("not part of the corpus")
    assert list(iter_corpus(coll)) == [Document("x", "ex"), Document("5", "five"), Document("7", "seven")]
    write_lines(coll / "c.json", [jl(id="7", contents="again")])
    with pytest.raises(InputFormatError, match=r"c\.json:1: duplicate document id 7"):
        read_corpus(coll)


def test_corpus_iteration_is_lazy(tmp_path):
    path = write_lines(tmp_path / "c.jsonl", [jl(_id="a", text="x"), "{broken"])
    docs = iter_corpus(path)
    assert next(docs).docid == "a"  # the bad second line is not read yet
    with pytest.raises(InputFormatError):
        next(docs)


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ('{"_id": "a", "text": "x"', "malformed JSON"),
        ("[1, 2]", "expected a JSON object"),
        (jl(title="t", text="x"), 'no "_id"'),
        (jl(_id="", text="x"), "bad document id"),
        (jl(_id="a", title="t"), 'no "text" field'),
        (jl(id="a", text="x"), 'no "contents" field'),
        (jl(_id="a", text=["x"]), "not a string"),
        (jl(_id="a", title=3, text="x"), '"title" is int'),
    ],
)
def test_bad_corpus_lines_name_file_and_line(tmp_path, line, reason):
    path = write_lines(tmp_path / "corpus.jsonl", [jl(_id="ok", text="fine"), "", line])
    with pytest.raises(InputFormatError, match=reason) as exc:
        read_corpus(path)
    assert bad_line(exc) == (str(path), 3)
    assert str(exc.value).startswith(f"{path}:3: ")


def test_non_utf8_and_duplicates_are_bad_lines(tmp_path):
    path = tmp_path / "corpus.jsonl"
    path.write_bytes(b'{"_id": "a", "text": "x"}\n{"_id": "b", "text": "caf\xe9"}\n')
    with pytest.raises(InputFormatError, match="not valid UTF-8") as exc:
        read_corpus(path)
    assert exc.value.line == 2
    write_lines(path, [jl(_id="a", text="x"), jl(_id="b", text="y"), jl(_id="a", text="z")])
    with pytest.raises(InputFormatError, match="duplicate document id a") as exc:
        read_corpus(path)
    assert exc.value.line == 3


def test_skip_bad_lines_counts_logs_and_goes_on(tmp_path, caplog):
    path = tmp_path / "corpus.jsonl"
    path.write_bytes(
        b'{"_id": "a", "text": "x"}\n{oops\n\xff\xfe\n{"_id": "a", "text": "again"}\n{"_id": "b", "text": "y"}\n'
    )
    skipped = SkippedLines(path)
    with caplog.at_level(logging.WARNING):
        docs = list(iter_corpus(path, skip_bad_lines=True, skipped=skipped))
    assert [d.docid for d in docs] == ["a", "b"]
    assert [line for line, _ in skipped.reasons] == [2, 3, 4]
    assert "skipped 3 bad line(s)" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        assert list(read_corpus(path, skip_bad_lines=True)) == ["a", "b"]
    assert "skipped 3 bad line(s)" in caplog.text


def test_empty_documents_are_kept_with_a_warning(tmp_path, caplog):
    path = write_lines(tmp_path / "c.jsonl", [jl(_id="e", title="", text=" "), jl(_id="f", text="x")])
    with caplog.at_level(logging.WARNING):
        assert list(read_corpus(path)) == ["e", "f"]
    assert "1 document(s) have neither title nor text (kept): e" in caplog.text


def test_missing_corpus_and_bad_gzip(tmp_path):
    with pytest.raises(PyseriniLlamaError, match="corpus not found"):
        read_corpus(tmp_path / "nope")
    with pytest.raises(PyseriniLlamaError, match="no corpus.jsonl"):
        read_corpus(tmp_path)
    (tmp_path / "c.jsonl.gz").write_bytes(b"not gzip at all")
    with pytest.raises(InputFormatError, match="not a readable gzip file"):
        read_corpus(tmp_path / "c.jsonl.gz")


def test_open_document_store_reads_a_corpus(tmp_path):
    write_lines(tmp_path / "corpus.jsonl", BEIR_LINES)
    store = open_document_store(tmp_path)
    assert store["d3"] == Document("d3", "gamma", "Third")


# ---------------------------------------------------------------- queries


def test_queries_tsv_jsonl_gzip_and_beir_dir(tmp_path):
    tsv = write_lines(tmp_path / "topics.tsv", ["q2\t  second query ", "q1\tfirst"])
    assert read_queries(tsv) == {"q2": "second query", "q1": "first"}
    assert list(read_queries(tsv)) == ["q2", "q1"]
    gz = write_lines(tmp_path / "t.tsv.gz", ["1\tone"], gz=True)
    assert read_queries(gz) == {"1": "one"}
    write_lines(tmp_path / "queries.jsonl", [jl(_id="b", text="bee ", metadata={}), jl(_id=3, text="three")])
    assert read_queries(tmp_path) == {"b": "bee ", "3": "three"}


@pytest.mark.parametrize(
    ("lines", "line", "reason"),
    [
        (["1\tok", "2\tto\tmany"], 2, "expected 2 tab-separated columns"),
        (["1\tok", "2 no tab"], 2, "expected 2 tab-separated columns"),
        (["1\tok", "2\t "], 2, "empty text"),
        (["1\tok", "1\tagain"], 2, "duplicate query id 1"),
        ([jl(_id="1", text="x"), jl(_id="2")], 2, 'no "text"'),
        ([jl(_id="1", text="x"), jl(text="y")], 2, '"_id"'),
        ([jl(_id="1", text="x"), "{nope"], 2, "malformed JSON"),
    ],
)
def test_bad_query_lines(tmp_path, lines, line, reason):
    path = write_lines(tmp_path / "q.txt", lines)
    with pytest.raises(InputFormatError, match=reason) as exc:
        read_queries(path)
    assert bad_line(exc) == (str(path), line)
    kept = read_queries(path, skip_bad_lines=True)
    assert list(kept) == ["1"]


def make_topics_dir(tmp_path):
    d = tmp_path / "topics-and-qrels"
    d.mkdir()
    write_lines(d / "topics.dl19-passage.txt", ["19335\tanthropological definition of environment"])
    write_lines(d / "topics.beir-v1.0.0-scifact.test.tsv.gz", ["1\tclaim"], gz=True)
    write_lines(d / "topics.msmarco-passage.dev-subset.txt", ["2\t Androgen receptor define"])
    write_lines(d / "qrels.dl19-passage.txt", ["19335 Q0 1017759 0", "19335 Q0 1082489 2"])
    write_lines(d / "qrels.beir-v1.0.0-scifact.test.txt", ["1 0 31715818 1"])
    return d


def test_topic_names_resolve_offline(tmp_path, monkeypatch):
    d = make_topics_dir(tmp_path)
    assert read_queries("dl19-passage", topics_dir=d) == {"19335": "anthropological definition of environment"}
    assert read_queries("beir-v1.0.0-scifact-test", topics_dir=d) == {"1": "claim"}
    assert read_queries("msmarco_passage.dev-subset", topics_dir=d) == {"2": "Androgen receptor define"}
    assert read_qrels("beir-v1.0.0-scifact-test", topics_dir=d) == {"1": {"31715818": 1}}
    monkeypatch.setenv("PYSERINI_LLAMA_TOPICS_DIR", str(d))
    assert read_qrels("dl19-passage") == {"19335": {"1017759": 0, "1082489": 2}}


def test_unknown_topic_name_lists_what_exists_and_how_to_set_it(tmp_path, monkeypatch):
    d = make_topics_dir(tmp_path)
    with pytest.raises(PyseriniLlamaError) as exc:
        read_queries("dl20-passage", topics_dir=d)
    message = str(exc.value)
    for expected in ("dl20-passage", "beir-v1.0.0-scifact-test", "dl19-passage", "msmarco-passage-dev-subset"):
        assert expected in message
    assert "--topics-dir" in message and "PYSERINI_LLAMA_TOPICS_DIR" in message
    monkeypatch.setenv("PYSERINI_LLAMA_TOPICS_DIR", str(tmp_path / "missing"))
    with pytest.raises(PyseriniLlamaError, match="does not exist"):
        read_qrels("dl19-passage")


def test_read_beir_split_keeps_only_judged_queries(tmp_path, caplog):
    write_lines(tmp_path / "queries.jsonl", [jl(_id=q, text=f"text {q}") for q in ["a", "b", "c"]])
    (tmp_path / "qrels").mkdir()
    write_lines(tmp_path / "qrels" / "test.tsv", ["query-id\tcorpus-id\tscore", "c\td1\t1", "a\td2\t0", "z\td1\t1"])
    with caplog.at_level(logging.WARNING):
        queries, qrels = read_beir_split(tmp_path, "test")
    assert queries == {"a": "text a", "c": "text c"} and list(queries) == ["a", "c"]
    assert qrels == {"c": {"d1": 1}, "a": {"d2": 0}, "z": {"d1": 1}}
    assert "have no text in queries.jsonl: z" in caplog.text
    with pytest.raises(PyseriniLlamaError, match="splits here: test"):
        read_beir_split(tmp_path, "dev")


# ---------------------------------------------------------------- qrels


def test_qrels_trec_and_beir_forms(tmp_path):
    trec = write_lines(tmp_path / "q.txt", ["1 0 d1 2", "1\t0\td2\t0", "2 Q0 d1 1"])
    assert read_qrels(trec) == {"1": {"d1": 2, "d2": 0}, "2": {"d1": 1}}
    beir = write_lines(tmp_path / "test.tsv", ["query-id\tcorpus-id\tscore", "1\td1\t2", "1\td2\t0.0", "2\td1\t1"])
    assert read_qrels(beir) == read_qrels(trec)
    with pytest.raises(PyseriniLlamaError, match="is a directory"):
        read_qrels(tmp_path)


@pytest.mark.parametrize(
    ("lines", "line", "reason"),
    [
        (["1 0 d1 1", "1 0 d2"], 2, "expected 4 columns, got 3"),
        (["1 0 d1 1", "1 0 d2 high"], 2, "'high' is not an integer"),
        (["1 0 d1 1", "1 0 d2 0.5"], 2, "not an integer"),
        (["1 0 d1 1", "1 0 d1 0"], 2, "duplicate judgement"),
        (["query-id\tcorpus-id\tscore", "1\td1\t1", "1\td2"], 3, "expected 3 columns, got 2"),
    ],
)
def test_bad_qrels_lines(tmp_path, lines, line, reason):
    path = write_lines(tmp_path / "qrels.txt", lines)
    with pytest.raises(InputFormatError, match=reason) as exc:
        read_qrels(path)
    assert bad_line(exc) == (str(path), line)
    assert read_qrels(path, skip_bad_lines=True) == {"1": {"d1": 1}}


def test_not_a_qrels_file(tmp_path):
    with pytest.raises(PyseriniLlamaError, match="not a qrels file"):
        read_qrels(write_lines(tmp_path / "q.txt", ["1 Q0 d1 1 2.5 tag"]))


# ---------------------------------------------------------------- runs


def test_trec_run_is_sorted_like_trec_eval(tmp_path):
    path = write_lines(
        tmp_path / "run.trec",
        ["q2 Q0 a 1 1.0 t", "q1 Q0 b 1 5 t", "q1 Q0 c 2 7.5 t", "q1 Q0 a 3 5 t", "q1 Q0 z 4 -1e3 t"],
    )
    run = read_run(path)
    assert list(run) == ["q2", "q1"]
    assert run["q1"] == [("c", 7.5), ("b", 5.0), ("a", 5.0), ("z", -1000.0)]  # tie: docid descending


def test_msmarco_run_scores_are_reciprocal_ranks(tmp_path):
    path = write_lines(tmp_path / "run.tsv", ["q1\td9\t2", "q1\td3\t1", "q2\td1\t1"])
    assert read_run(path) == {"q1": [("d3", 1.0), ("d9", 0.5)], "q2": [("d1", 1.0)]}


@pytest.mark.parametrize(
    ("lines", "line", "reason"),
    [
        (["q Q0 a 1 1.0 t", "q Q0 b 2 high t"], 2, "'high' is not a finite number"),
        (["q Q0 a 1 1.0 t", "q Q0 b 2 nan t"], 2, "not a finite number"),
        (["q Q0 a 1 1.0 t", "q Q0 b two 0.5 t"], 2, "rank 'two' is not an integer"),
        (["q Q0 a 1 1.0 t", "q Q0 b 2 0.5"], 2, "expected 6 columns, got 5"),
        (["q Q0 a 1 1.0 t", "q Q0 a 2 0.5 t"], 2, "appears twice"),
        (["q\ta\t1", "q\tb\t0"], 2, "below 1"),
    ],
)
def test_bad_run_lines(tmp_path, lines, line, reason):
    path = write_lines(tmp_path / "run.txt", lines)
    with pytest.raises(InputFormatError, match=reason) as exc:
        read_run(path)
    assert bad_line(exc) == (str(path), line)
    assert list(read_run(path, skip_bad_lines=True)["q"]) == [("a", 1.0)]
    with pytest.raises(PyseriniLlamaError, match="not a run file"):
        read_run(write_lines(tmp_path / "odd.txt", ["q a 1 2"]))


def test_write_trec_run_round_trips_exactly_and_atomically(tmp_path):
    run = {"q2": [("b", 0.1 + 0.2), ("a", 0.3)], "q1": [("x", 3.0), ("y", 1e-12), ("w", 3.0)]}
    path = tmp_path / "out" / "run.trec"
    write_trec_run(run, path, tag="mine")
    assert read_run(path) == {qid: sort_hits(hits) for qid, hits in run.items()}
    lines = path.read_text().splitlines()
    assert lines[0] == "q2 Q0 b 1 0.30000000000000004 mine"
    assert lines[2:4] == ["q1 Q0 x 1 3.0 mine", "q1 Q0 w 2 3.0 mine"]
    write_trec_run(run, path, hits=1)
    assert [line.split()[2] for line in path.read_text().splitlines()] == ["b", "x"]
    with pytest.raises(PyseriniLlamaError, match="one word"):
        write_trec_run(run, path, tag="two words")
    with pytest.raises(PyseriniLlamaError, match="ids with spaces"):
        write_trec_run({"q": [("a b", 1.0)]}, path)
    assert path.read_text().splitlines()[0].endswith("pyserini-llama")  # the failed write left the file alone
    assert sorted(p.name for p in path.parent.iterdir()) == ["run.trec"]


# ---------------------------------------------------------------- the shared collections


def test_shared_collections_read_cleanly(shared_data, caplog):
    expected = {"beir/scifact": (5183, 1109), "beir/nfcorpus": (3633, 3237), "msmarco-passage/dl19": (11016, 43)}
    for name, (n_docs, n_queries) in expected.items():
        assert sum(1 for _ in iter_corpus(shared_data / name)) == n_docs
        assert len(read_queries(shared_data / name)) == n_queries
    with caplog.at_level(logging.WARNING):
        cranfield = read_corpus(shared_data / "classic/cranfield")
    assert len(cranfield) == 1400 and cranfield["995"] == Document("995", "", "")
    assert "471, 995" in caplog.text
    assert read_corpus(shared_data / "beir/nfcorpus")["MED-10"].url is None
    for split, n in [("train", 2590), ("dev", 324), ("test", 323)]:
        queries, qrels = read_beir_split(shared_data / "beir/nfcorpus", split)
        assert len(queries) == len(qrels) == n
    topics = shared_data / "topics-and-qrels"
    assert len(read_queries("msmarco-passage-dev-subset", topics_dir=topics)) == 6980
    scifact_q, scifact_qrels = read_beir_split(shared_data / "beir/scifact", "test")
    assert read_queries("beir-v1.0.0-scifact-test", topics_dir=topics) == scifact_q
    assert read_qrels("beir-v1.0.0-scifact-test", topics_dir=topics) == scifact_qrels
    assert read_qrels("dl19-passage", topics_dir=topics) == read_qrels(shared_data / "msmarco-passage/dl19/qrels.txt")
    run = read_run(shared_data / "msmarco-passage/dl19/run.repllama-7b-top1000.trec")
    assert len(run) == 43 and all(len(hits) == 1000 for hits in run.values())


def test_as_document_is_the_one_coercion_of_document_inputs():
    """Encoder, reranker and segmenting all read documents through ``as_document``."""
    from types import SimpleNamespace

    from pyserini_llama.data.document import Document, as_document

    doc = Document("d1", "body", "Title", "http://x")
    assert as_document(doc) is doc
    assert as_document("plain text") == Document("", "plain text")
    assert as_document({"text": "body", "title": None, "url": "u"}) == Document("", "body", "", "u")
    assert as_document(SimpleNamespace(text=None, title="T")) == Document("", "", "T")
    with pytest.raises(TypeError):
        as_document(42)

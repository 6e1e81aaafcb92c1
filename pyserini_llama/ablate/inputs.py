"""What a sweep evaluates on: corpus, queries and qrels (a BEIR directory or separate files) and a run.

The evaluated queries (the split's judged queries, or those of ``--topics`` that have judgements)
and the first-stage run restricted to them are written under ``<output-dir>/inputs/``, so the
commands recorded for each point read exactly what the library call read.

Two knobs make a sweep fit a CPU budget, and both are written down the same way: ``--max-queries N``
keeps the first N evaluated queries (topics-file order; their qrels go to ``inputs/qrels.txt``), and
``--pool-depth N`` replaces the corpus by the documents of the run's top N for those queries
(``inputs/corpus.jsonl``), so a RepLLaMA point encodes a few hundred documents instead of the
collection: dense retrieval over the first stage's pool, i.e. a dense re-ranking of it.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

from ..atomic import write_text_atomic
from ..data.runs import Run
from ..errors import PyseriniLlamaError

logger = logging.getLogger(__name__)


@dataclass
class EvalData:
    """A dataset split ready for sweeps; ``documents`` is read on first use only."""

    name: str
    corpus: Path
    qrels_path: Path
    queries: dict[str, str]
    qrels: dict[str, dict[str, int]]
    queries_path: Path
    _documents: dict | None = field(default=None, repr=False)

    @property
    def documents(self) -> dict:
        if self._documents is None:
            from ..data.corpus import read_corpus

            self._documents = read_corpus(self.corpus)
        return self._documents

    def fingerprint(self) -> dict:
        """What the data part of a point's parameters is: corpus file, qrels file, query texts."""
        from ..cache import file_fingerprint

        return {
            "corpus": file_fingerprint(self.corpus),
            "qrels": file_fingerprint(self.qrels_path),
            "queries_sha256": _sha256(self.queries),
        }


def _sha256(value) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()


def load_data(
    output_dir: str | Path,
    *,
    dataset: str | Path | None = None,
    split: str = "test",
    corpus: str | Path | None = None,
    topics: str | Path | None = None,
    qrels: str | Path | None = None,
    max_queries: int | None = None,
) -> EvalData:
    """``--dataset DIR --split S`` or ``--corpus --topics --qrels`` (these three override the dataset's)."""
    from ..data.corpus import corpus_files
    from ..data.qrels import read_qrels
    from ..data.queries import beir_qrels_file, read_beir_split, read_queries

    if dataset is None and not (corpus and topics and qrels):
        raise PyseriniLlamaError("give --dataset DIR, or all of --corpus, --topics and --qrels")
    if dataset is not None:
        queries, judged = read_beir_split(dataset, split)
        qrels_path = beir_qrels_file(dataset, split)
    if qrels is not None:
        judged, qrels_path = read_qrels(qrels), Path(qrels)
    if topics is not None:
        queries = read_queries(topics)
    queries = {qid: text for qid, text in queries.items() if qid in judged and text.strip()}
    if not queries:
        raise PyseriniLlamaError("no query with judgements: check --topics/--qrels (or --dataset/--split)")
    corpus_path = corpus_files(corpus or dataset)[0]
    name = Path(dataset).name if dataset is not None else corpus_path.parent.name
    if max_queries is not None:
        if max_queries < 1:
            raise PyseriniLlamaError("--max-queries must be at least 1")
        queries = dict(list(queries.items())[:max_queries])
        judged = {qid: judged[qid] for qid in queries}
        qrels_path = Path(output_dir) / "inputs" / "qrels.txt"
        lines = (f"{qid} 0 {docid} {grade}\n" for qid, docs in judged.items() for docid, grade in docs.items())
        _write_if_changed("".join(lines), qrels_path)
    queries_path = Path(output_dir) / "inputs" / "queries.jsonl"
    _write_queries(queries, queries_path)
    logger.info("%s: %d judged queries, corpus %s", name, len(queries), corpus_path)
    return EvalData(name, corpus_path, Path(qrels_path), queries, judged, queries_path)


def restrict_to_pool(data: EvalData, run_path: str | Path, depth: int, output_dir: str | Path) -> EvalData:
    """The same queries over a corpus of the run's top ``depth`` documents for them (``--pool-depth``)."""
    from ..data.runs import read_run

    if depth < 1:
        raise PyseriniLlamaError("--pool-depth must be at least 1")
    run = read_run(run_path)
    pool = {docid for qid in data.queries for docid, _ in run.get(qid, [])[:depth]}
    documents = data.documents
    missing = sorted(pool - documents.keys())
    if missing:
        raise PyseriniLlamaError(f"{run_path}: {len(missing)} pooled documents are not in {data.corpus}: {missing[:3]}")
    path = Path(output_dir) / "inputs" / "corpus.jsonl"
    lines = []
    for docid in sorted(pool):
        doc = documents[docid]
        record = {"_id": docid, "title": doc.title or "", "text": doc.text, **({"url": doc.url} if doc.url else {})}
        lines.append(json.dumps(record) + "\n")
    _write_if_changed("".join(lines), path)
    logger.info("pool: %d documents from the top %d of %s", len(pool), depth, run_path)
    pooled = {docid: documents[docid] for docid in sorted(pool)}
    return EvalData(data.name, path, data.qrels_path, data.queries, data.qrels, data.queries_path, pooled)


def _write_queries(queries: dict[str, str], path: Path) -> None:
    text = "".join(json.dumps({"_id": qid, "text": q}) + "\n" for qid, q in queries.items())
    _write_if_changed(text, path)


def _write_if_changed(text: str, path: Path) -> None:
    if path.is_file() and path.read_text() == text:
        return  # unchanged: keep the file (and the commands naming it) as they are
    write_text_atomic(text, path)


def load_first_stage(run_path: str | Path, data: EvalData, output_dir: str | Path) -> tuple[Run, Path, str]:
    """The run restricted to the evaluated queries, the file it is written to, and its content hash.

    Queries of the split without any hit in the run are reported (they score 0 under ``-c``).
    """
    from ..data.runs import read_run, write_trec_run

    full = read_run(run_path)
    run = {qid: full[qid] for qid in data.queries if qid in full}
    if not run:
        raise PyseriniLlamaError(f"{run_path}: no query of the run is among the {len(data.queries)} evaluated queries")
    absent = len(data.queries) - len(run)
    if absent:
        logger.warning("%s: %d evaluated queries have no hits in the run (they score 0)", run_path, absent)
    path = Path(output_dir) / "inputs" / "first-stage.trec"
    digest = _sha256(run)
    stamp = path.with_suffix(".sha256")
    if not (path.is_file() and stamp.is_file() and stamp.read_text() == digest):
        write_trec_run(run, path, tag="first-stage")
        stamp.write_text(digest)
    return run, path, digest

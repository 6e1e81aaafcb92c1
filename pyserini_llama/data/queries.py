"""Query reading: TSV topics, BEIR ``queries.jsonl``, or a Pyserini topic name resolved offline.

* TSV (``qid<TAB>text``, Pyserini/Anserini topic files): the text is stripped, as Anserini's
  TSV topic reader does.
* JSON lines ``{"_id", "text"}`` (BEIR; ``"id"`` is accepted too): the text is kept as written.
* A BEIR dataset directory: its ``queries.jsonl`` (all splits).
* A name such as ``dl19-passage`` or ``beir-v1.0.0-scifact-test``: the matching
  ``topics.<name>.*`` file in the topics directory (argument > ``$PYSERINI_LLAMA_TOPICS_DIR`` >
  ``~/.cache/pyserini/topics-and-qrels``).

The format of a file is told from its first line (``{`` starts JSON), not from its name.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from ..errors import PyseriniLlamaError
from ._lines import BadLines, iter_lines
from ._names import resolve_named_file

logger = logging.getLogger(__name__)

QUERY_NAMES = ("queries.jsonl", "queries.jsonl.gz")


def _parse_json_query(text: str) -> tuple[str, str] | str:
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        return f"malformed JSON ({exc.msg} at column {exc.colno})"
    if not isinstance(obj, dict):
        return f"expected a JSON object, got {type(obj).__name__}"
    qid = obj.get("_id", obj.get("id"))
    if isinstance(qid, bool) or not isinstance(qid, str | int) or not str(qid).strip():
        return 'no usable "_id" field'
    query = obj.get("text")
    if not isinstance(query, str):
        return f'query {qid}: no "text" string'
    return str(qid), query


def _parse_tsv_query(text: str) -> tuple[str, str] | str:
    fields = text.split("\t")
    if len(fields) != 2:
        return f"expected 2 tab-separated columns (qid, text), got {len(fields)}"
    qid, query = fields[0].strip(), fields[1].strip()
    if not qid:
        return "empty query id"
    return qid, query


def read_query_file(path: str | Path, *, skip_bad_lines: bool = False) -> dict[str, str]:
    """Queries from one TSV or JSON-lines file, in file order; empty queries and repeated ids are bad lines."""
    bad = BadLines(path, skip_bad_lines)
    queries: dict[str, str] = {}
    parse = None
    for number, text in iter_lines(path, bad):
        if parse is None:
            parse = _parse_json_query if text.lstrip().startswith("{") else _parse_tsv_query
        parsed = parse(text)
        if isinstance(parsed, str):
            bad(number, parsed)
            continue
        qid, query = parsed
        if not query.strip():
            bad(number, f"query {qid} has empty text")
        elif qid in queries:
            bad(number, f"duplicate query id {qid}")
        else:
            queries[qid] = query
    bad.report()
    if not queries:
        raise PyseriniLlamaError(f"{path}: no queries")
    return queries


def resolve_queries_file(spec: str | Path, *, topics_dir: str | Path | None = None) -> Path:
    """The file behind a queries spec: a file, a BEIR directory, or a Pyserini topic name."""
    path = Path(spec)
    if path.is_file():
        return path
    if path.is_dir():
        for name in QUERY_NAMES:
            if (path / name).is_file():
                return path / name
        raise PyseriniLlamaError(f"{path}: a directory without queries.jsonl")
    return resolve_named_file("topics", str(spec), topics_dir)


def read_queries(
    spec: str | Path, *, topics_dir: str | Path | None = None, skip_bad_lines: bool = False
) -> dict[str, str]:
    """Queries by id, in file order, from a file, a BEIR directory or a Pyserini topic name."""
    return read_query_file(resolve_queries_file(spec, topics_dir=topics_dir), skip_bad_lines=skip_bad_lines)


def beir_qrels_file(dataset_dir: str | Path, split: str) -> Path:
    qrels_dir = Path(dataset_dir) / "qrels"
    for name in (f"{split}.tsv", f"{split}.tsv.gz"):
        if (qrels_dir / name).is_file():
            return qrels_dir / name
    splits = sorted(p.name.split(".")[0] for p in qrels_dir.glob("*.tsv*")) if qrels_dir.is_dir() else []
    have = f"splits here: {', '.join(splits)}" if splits else f"no {qrels_dir}/*.tsv"
    raise PyseriniLlamaError(f"{dataset_dir}: no qrels for split {split!r} ({have})")


def read_beir_split(dataset_dir: str | Path, split: str) -> tuple[dict[str, str], dict[str, dict[str, int]]]:
    """The queries judged in ``qrels/<split>.tsv`` (in ``queries.jsonl`` order) and those qrels."""
    from .qrels import read_qrels

    qrels = read_qrels(beir_qrels_file(dataset_dir, split))
    all_queries = read_queries(resolve_queries_file(dataset_dir))
    queries = {qid: text for qid, text in all_queries.items() if qid in qrels}
    missing = [qid for qid in qrels if qid not in all_queries]
    if missing:
        logger.warning(
            "%s: %d judged query id(s) of split %s have no text in queries.jsonl: %s",
            dataset_dir,
            len(missing),
            split,
            ", ".join(missing[:5]),
        )
    return queries, qrels

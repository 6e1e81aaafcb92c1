"""Corpus reading: BEIR ``corpus.jsonl`` and Pyserini JsonCollection files, streamed.

Accepted inputs (``.gz`` allowed for every file):

* a BEIR dataset directory (its ``corpus.jsonl``);
* a JSON-lines file with BEIR lines ``{"_id", "title", "text"}`` (extra keys such as ``metadata``
  are ignored) or Pyserini JsonCollection lines ``{"id", "contents"}``;
* a JsonCollection directory: every ``*.jsonl`` / ``*.json`` file in it, in name order;
* for :func:`open_document_store` also a Lucene index built with stored raw documents.

``Document.url`` (:mod:`.document`) is taken only from a top-level ``"url"`` key (MS MARCO documents).
BEIR's ``metadata.url`` (NFCorpus) is not used: the models saw ``title + " " + text`` on BEIR.

Documents with neither title nor text exist in real collections (Cranfield 471 and 995, one of
them judged relevant), so they are kept and counted in a warning rather than rejected.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Mapping
from pathlib import Path

from ..errors import PyseriniLlamaError, SkippedLines
from ._lines import BadLines, iter_lines
from .document import Document
from .lucene_store import LuceneDocumentStore, is_lucene_index

logger = logging.getLogger(__name__)

CORPUS_NAMES = ("corpus.jsonl", "corpus.jsonl.gz")
_JSON_SUFFIXES = (".jsonl", ".json", ".jsonl.gz", ".json.gz")


def corpus_files(path: str | Path) -> list[Path]:
    """The files that make up a corpus given as a file, a BEIR directory or a JsonCollection directory."""
    path = Path(path)
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise PyseriniLlamaError(f"corpus not found: {path}")
    for name in CORPUS_NAMES:
        if (path / name).is_file():
            return [path / name]
    files = sorted(p for p in path.iterdir() if p.is_file() and p.name.endswith(_JSON_SUFFIXES))
    if not files:
        raise PyseriniLlamaError(f"{path}: no corpus.jsonl and no *.jsonl/*.json files in this directory")
    return files


def _as_id(value: object) -> str | None:
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None
    value = str(value)
    return value if value.strip() else None


def _parse_document(text: str) -> Document | str:
    """A Document, or the reason the line is bad."""
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        return f"malformed JSON ({exc.msg} at column {exc.colno})"
    if not isinstance(obj, dict):
        return f"expected a JSON object, got {type(obj).__name__}"
    if "_id" in obj:  # BEIR
        body_key, title = "text", obj.get("title")
        docid = _as_id(obj["_id"])
    elif "id" in obj:  # Pyserini JsonCollection
        body_key, title = "contents", None
        docid = _as_id(obj["id"])
    else:
        return 'no "_id" (BEIR) or "id" (JsonCollection) field'
    if docid is None:
        return f"bad document id {obj.get('_id', obj.get('id'))!r}"
    if body_key not in obj:
        return f'document {docid}: no "{body_key}" field'
    body = obj[body_key]
    if body is None:
        body = ""
    if not isinstance(body, str):
        return f'document {docid}: "{body_key}" is {type(body).__name__}, not a string'
    if title is None:
        title = ""
    if not isinstance(title, str):
        return f'document {docid}: "title" is {type(title).__name__}, not a string'
    url = obj.get("url")
    return Document(docid=docid, text=body, title=title, url=url if isinstance(url, str) and url else None)


def iter_corpus(
    path: str | Path, *, skip_bad_lines: bool = False, skipped: SkippedLines | None = None
) -> Iterator[Document]:
    """Stream the documents of a corpus in file order, checking every line.

    Bad lines (malformed JSON, missing id or text, non-UTF-8 bytes, a repeated id) raise
    :class:`~pyserini_llama.errors.InputFormatError` naming file and line; with
    ``skip_bad_lines=True`` they are counted in ``skipped`` (one is made per file if not given)
    and a summary is logged. Only the ids are kept in memory, to find duplicates.
    """
    seen: set[str] = set()
    empty: list[str] = []
    for file in corpus_files(path):
        bad = BadLines(file, skip_bad_lines, skipped)
        for number, text in iter_lines(file, bad):
            doc = _parse_document(text)
            if isinstance(doc, str):
                bad(number, doc)
                continue
            if doc.docid in seen:
                bad(number, f"duplicate document id {doc.docid}")
                continue
            seen.add(doc.docid)
            if not doc.text.strip() and not doc.title.strip():
                empty.append(doc.docid)
            yield doc
        bad.report()
    if empty:
        logger.warning(
            "%s: %d document(s) have neither title nor text (kept): %s%s",
            path,
            len(empty),
            ", ".join(empty[:5]),
            " ..." if len(empty) > 5 else "",
        )


def read_corpus(path: str | Path, *, skip_bad_lines: bool = False) -> dict[str, Document]:
    """All documents of a corpus, keyed by id, in file order."""
    return {doc.docid: doc for doc in iter_corpus(path, skip_bad_lines=skip_bad_lines)}


def open_document_store(spec: str | Path) -> Mapping[str, Document]:
    """Documents by id for reranking and display: a corpus read into memory, or a Lucene index.

    A Lucene index (a directory with ``segments_*`` files) must have been built with stored raw
    documents (``-storeRaw``, as :func:`pyserini_llama.search.lucene.build_lucene_index` does);
    its documents are fetched one by one, so it suits corpora too large to hold in memory.
    """
    if is_lucene_index(spec):
        return LuceneDocumentStore(spec)  # imports Pyserini (and starts Java) only now
    return read_corpus(spec)

"""Documents by id from a Lucene index with stored raw documents (a read-only corpus, not a search).

Reranking and display need title and text for a few thousand ids; for corpora too large to read
into memory, the Lucene index built for BM25 already holds them (``-storeRaw``, as
:func:`pyserini_llama.search.lucene.build_lucene_index` and Pyserini's BEIR flat indexes do). This is
the data layer's view of such an index: Pyserini (and the JVM) is imported only when a store is
opened, through :func:`pyserini_llama.bootstrap.import_pyserini`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from pathlib import Path

from ..bootstrap import import_pyserini
from ..errors import PyseriniLlamaError
from .document import Document


def is_lucene_index(path: str | Path) -> bool:
    """A directory with Lucene ``segments_*`` files (as opposed to a corpus file or directory)."""
    path = Path(path)
    return path.is_dir() and any(path.glob("segments_*"))


def document_from_raw(docid: str, raw: str | None, contents: str | None) -> Document:
    """A stored document: our/BEIR JSON (title, text, url), JsonCollection JSON (contents), or plain text."""
    try:
        obj = json.loads(raw) if raw else None
    except json.JSONDecodeError:
        obj = None
    if isinstance(obj, dict) and "text" in obj:
        url = obj.get("url")
        return Document(docid, obj.get("text") or "", obj.get("title") or "", url if isinstance(url, str) else None)
    if isinstance(obj, dict) and isinstance(obj.get("contents"), str):
        return Document(docid, obj["contents"])
    return Document(docid, raw or contents or "")


class LuceneDocumentStore(Mapping[str, Document]):
    """Documents of a Lucene index with stored raw text, fetched one at a time by id."""

    def __init__(self, index_dir: str | Path):
        if not is_lucene_index(index_dir):
            raise PyseriniLlamaError(f"{index_dir} is not a Lucene index")
        lucene = import_pyserini("pyserini.search.lucene")
        self.index_dir = Path(index_dir)
        self._searcher = lucene.LuceneSearcher(str(index_dir))

    def __getitem__(self, docid: str) -> Document:
        doc = self._searcher.doc(str(docid))
        if doc is None:
            raise KeyError(docid)
        return document_from_raw(str(docid), doc.raw(), doc.contents())

    def __len__(self) -> int:
        return int(self._searcher.num_docs)

    def __iter__(self) -> Iterator[str]:
        for internal_id in range(len(self)):
            yield self._searcher.doc(internal_id).docid()

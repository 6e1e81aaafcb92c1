"""Readers for corpora, queries, qrels and runs (BEIR, Pyserini and TREC formats), with one bad-input policy.

Bad lines raise :class:`~pyserini_llama.errors.InputFormatError` naming the file and 1-based line;
readers that take ``skip_bad_lines=True`` count and log them instead.
"""

from .corpus import iter_corpus, open_document_store, read_corpus
from .document import Document
from .qrels import Qrels, read_qrels
from .queries import read_beir_split, read_queries
from .runs import Run, read_run, sort_hits, write_trec_run

__all__ = [
    "Document",
    "Qrels",
    "Run",
    "iter_corpus",
    "open_document_store",
    "read_beir_split",
    "read_corpus",
    "read_qrels",
    "read_queries",
    "read_run",
    "sort_hits",
    "write_trec_run",
]

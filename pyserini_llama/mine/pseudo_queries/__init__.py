"""``python -m pyserini_llama.mine.pseudo_queries``: queries without labels, made from the corpus itself.

GPL-style domain adaptation needs queries, not judgements: a document's **title** is a query that
document answers. This writes a BEIR-style dataset directory whose split (``pseudo`` by default)
holds one query per titled document (id ``pq-<docid>``, text = the title) judged relevant to that
document, and whose ``corpus.jsonl`` links to the source corpus (nothing is copied). Then the
usual commands apply: first-stage runs over the new split, ``mine ... --drop-positive-title`` (the
positive without its title, or the task would be copying the title back) and
``python -m pyserini_llama.teacher`` to score every candidate. The teacher, not the title, then
says how relevant each candidate is; the title only picks which document the query came from.

Only the corpus is read: no query of any split, test included, is used.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from ...errors import PyseriniLlamaError

logger = logging.getLogger("pyserini_llama.mine.pseudo_queries")


def pseudo_queries(corpus_path: str | Path, min_words: int = 3, max_words: int = 40) -> dict[str, tuple[str, str]]:
    """``{query id: (title, docid)}`` for every document whose title has ``min_words``..``max_words`` words."""
    from ...data.corpus import iter_corpus

    out: dict[str, tuple[str, str]] = {}
    for doc in iter_corpus(corpus_path):
        title = " ".join((doc.title or "").split())
        if min_words <= len(title.split()) <= max_words:
            out[f"pq-{doc.docid}"] = (title, doc.docid)
    return out


def write_pseudo_dataset(dataset: str | Path, output_dir: str | Path, split: str = "pseudo", **limits) -> int:
    """Write the pseudo-query dataset (see the module doc); returns the number of queries."""
    from ...atomic import atomic_write, write_jsonl_atomic
    from ...data.corpus import corpus_files

    files = corpus_files(dataset)
    if len(files) != 1:
        raise PyseriniLlamaError(f"{dataset}: expected one corpus file, found {len(files)}")
    found = pseudo_queries(files[0], **limits)
    if not found:
        raise PyseriniLlamaError(f"{files[0]}: no document has a title to use as a query")
    out = Path(output_dir)
    (out / "qrels").mkdir(parents=True, exist_ok=True)
    link = out / "corpus.jsonl"
    if link.is_symlink() or link.exists():
        link.unlink()
    os.symlink(Path(files[0]).resolve(), link)
    write_jsonl_atomic(({"_id": q, "text": t} for q, (t, _) in found.items()), out / "queries.jsonl")
    atomic_write(
        out / "qrels" / f"{split}.tsv",
        lambda f: f.writelines(["query-id\tcorpus-id\tscore\n", *(f"{q}\t{d}\t1\n" for q, (_, d) in found.items())]),
    )
    return len(found)

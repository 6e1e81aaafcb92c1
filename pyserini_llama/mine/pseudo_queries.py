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

import argparse
import json
import logging
import os
import sys
from pathlib import Path

from ..errors import PyseriniLlamaError, run_cli

logger = logging.getLogger("pyserini_llama.mine.pseudo_queries")

EXAMPLE = """example:
  python -m pyserini_llama.mine.pseudo_queries --dataset ../shared/data/beir/scifact --output-dir train/pseudo/scifact
  python -m pyserini_llama.pipeline --dataset train/pseudo/scifact --split pseudo --stages bm25 \\
      --output-dir runs/pseudo/scifact --index-dir indexes/scifact
  python -m pyserini_llama.mine --dataset train/pseudo/scifact --split pseudo --drop-positive-title \\
      --first-stage runs/pseudo/scifact/run.bm25.trec --depth 100 --negatives 15 --output train/scifact.pseudo.jsonl"""


def pseudo_queries(corpus_path: str | Path, min_words: int = 3, max_words: int = 40) -> dict[str, tuple[str, str]]:
    """``{query id: (title, docid)}`` for every document whose title has ``min_words``..``max_words`` words."""
    from ..data.corpus import iter_corpus

    out: dict[str, tuple[str, str]] = {}
    for doc in iter_corpus(corpus_path):
        title = " ".join((doc.title or "").split())
        if min_words <= len(title.split()) <= max_words:
            out[f"pq-{doc.docid}"] = (title, doc.docid)
    return out


def write_pseudo_dataset(dataset: str | Path, output_dir: str | Path, split: str = "pseudo", **limits) -> int:
    """Write the pseudo-query dataset (see the module doc); returns the number of queries."""
    from ..atomic import atomic_write
    from ..data.corpus import corpus_files

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
    atomic_write(
        out / "queries.jsonl",
        lambda f: f.writelines(
            json.dumps({"_id": q, "text": t}, ensure_ascii=False) + "\n" for q, (t, _) in found.items()
        ),
    )
    atomic_write(
        out / "qrels" / f"{split}.tsv",
        lambda f: f.writelines(["query-id\tcorpus-id\tscore\n", *(f"{q}\t{d}\t1\n" for q, (_, d) in found.items())]),
    )
    return len(found)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m pyserini_llama.mine.pseudo_queries",
        description="Make title pseudo-queries from a corpus (GPL-style): a BEIR dataset dir with a 'pseudo' split.",
        epilog=EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--dataset", required=True, help="BEIR dataset dir (or corpus file) whose titles become queries")
    p.add_argument("--output-dir", required=True, help="where queries.jsonl, qrels/<split>.tsv, corpus.jsonl go")
    p.add_argument("--split", default="pseudo", help="name of the qrels split (default: pseudo)")
    p.add_argument("--min-words", type=int, default=3, help="shortest title used (default: 3 words)")
    p.add_argument("--max-words", type=int, default=40, help="longest title used (default: 40 words)")
    args = p.parse_args(sys.argv[1:] if argv is None else argv)
    n = write_pseudo_dataset(
        args.dataset, args.output_dir, args.split, min_words=args.min_words, max_words=args.max_words
    )
    print(f"wrote {n} pseudo-queries to {args.output_dir} (split {args.split})")
    return 0


def cli() -> None:
    run_cli(main)


if __name__ == "__main__":
    cli()

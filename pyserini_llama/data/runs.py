"""Runs (ranked lists): ``Run = {qid: [(docid, score), ...]}``, best hit first.

Read: TREC (``qid Q0 docid rank score tag``) or MS MARCO (``qid<TAB>docid<TAB>rank``; the score
becomes ``1/rank``, as Pyserini's converters do). Hits are put in trec_eval's order: score
descending, ties broken by docid descending. trec_eval ignores the rank column and so do we, apart
from checking that it is an integer.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from pathlib import Path

from ..atomic import atomic_write
from ..errors import PyseriniLlamaError
from ._lines import BadLines, iter_lines

Hit = tuple[str, float]
Run = dict[str, list[Hit]]


def sort_hits(hits: Iterable[Hit]) -> list[Hit]:
    """Best first, as trec_eval ranks: score descending, then docid descending."""
    return sorted(hits, key=lambda hit: (hit[1], hit[0]), reverse=True)


def read_run(path: str | Path, *, skip_bad_lines: bool = False) -> Run:
    """A TREC or MS MARCO run file; query order as in the file, hits sorted with :func:`sort_hits`."""
    bad = BadLines(path, skip_bad_lines)
    run: Run = {}
    seen: dict[str, set[str]] = {}
    columns = None
    for number, text in iter_lines(path, bad):
        fields = text.split()
        if columns is None:
            columns = len(fields)
            if columns not in (3, 6):
                raise PyseriniLlamaError(
                    f"{path}:{number}: not a run file: expected 6 columns (TREC: qid Q0 docid rank score tag) "
                    f"or 3 (MS MARCO: qid docid rank), got {columns}"
                )
        if len(fields) != columns:
            bad(number, f"expected {columns} columns, got {len(fields)}")
            continue
        if columns == 6:
            qid, _, docid, rank_text, score_text, _ = fields
        else:
            qid, docid, rank_text = fields
            score_text = None
        try:
            rank = int(rank_text)
        except ValueError:
            bad(number, f"rank {rank_text!r} is not an integer")
            continue
        if score_text is None:
            if rank < 1:
                bad(number, f"rank {rank} is below 1")
                continue
            score = 1.0 / rank
        else:
            try:
                score = float(score_text)
            except ValueError:
                score = math.nan
            if not math.isfinite(score):
                bad(number, f"score {score_text!r} is not a finite number")
                continue
        docids = seen.setdefault(qid, set())
        if docid in docids:
            bad(number, f"document {docid} appears twice for query {qid}")
            continue
        docids.add(docid)
        run.setdefault(qid, []).append((docid, score))
    bad.report()
    return {qid: sort_hits(hits) for qid, hits in run.items()}


def format_score(score: float) -> str:
    """Shortest text that reads back as the same float, so a written run evaluates as the in-memory one."""
    return repr(float(score))


def write_trec_run(
    run: Run, path: str | Path, *, tag: str = "pyserini-llama", hits: int | None = None, output_format: str = "trec"
) -> None:
    """Write a run atomically (a temporary file renamed into place); ranks follow :func:`sort_hits`.

    ``output_format`` is ``trec`` (``qid Q0 docid rank score tag``) or ``msmarco`` (``qid<TAB>docid<TAB>rank``).
    """
    if output_format not in ("trec", "msmarco"):
        raise PyseriniLlamaError(f"unknown run format {output_format!r}; choose trec or msmarco")
    if not tag or any(c.isspace() for c in tag):
        raise PyseriniLlamaError(f"run tag {tag!r} must be one word")

    def write(f) -> None:
        for qid, query_hits in run.items():
            for rank, (docid, score) in enumerate(sort_hits(query_hits)[:hits], start=1):
                if not docid or any(c.isspace() for c in docid + qid):
                    raise PyseriniLlamaError(f"query {qid!r}, document {docid!r}: ids with spaces cannot be written")
                if output_format == "msmarco":
                    f.write(f"{qid}\t{docid}\t{rank}\n")
                else:
                    f.write(f"{qid} Q0 {docid} {rank} {format_score(score)} {tag}\n")

    atomic_write(path, write)

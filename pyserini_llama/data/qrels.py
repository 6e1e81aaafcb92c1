"""Relevance judgements: TREC qrels (``qid iter docid rel``) or BEIR ``qrels/<split>.tsv``.

The BEIR form has three tab-separated columns and a ``query-id corpus-id score`` header; the TREC
form has four whitespace-separated columns. The form is told from the first line; every other line
must match it. A qrels name (``dl19-passage``, ``beir-v1.0.0-scifact-test``) resolves to
``qrels.<name>.txt`` in the topics directory, as for topics.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import PyseriniLlamaError
from ._lines import BadLines, iter_lines
from ._names import resolve_named_file

Qrels = dict[str, dict[str, int]]


def _grade(value: str) -> int | None:
    try:
        number = float(value)
    except ValueError:
        return None
    return int(number) if number.is_integer() else None


def read_qrels_file(path: str | Path, *, skip_bad_lines: bool = False) -> Qrels:
    """Judgements ``{qid: {docid: grade}}`` from one file, in file order (grade-0 entries kept)."""
    bad = BadLines(path, skip_bad_lines)
    qrels: Qrels = {}
    columns = None
    for number, text in iter_lines(path, bad):
        fields = text.split("\t") if "\t" in text and columns != 4 else text.split()
        if columns is None:
            columns = len(fields)
            if columns not in (3, 4):
                raise PyseriniLlamaError(
                    f"{path}:{number}: not a qrels file: expected 4 columns (TREC: qid iter docid rel) "
                    f"or 3 tab-separated (BEIR: query-id corpus-id score), got {columns}"
                )
            if columns == 3 and _grade(fields[2]) is None:
                continue  # the BEIR header
        if len(fields) != columns:
            bad(number, f"expected {columns} columns, got {len(fields)}")
            continue
        qid, docid, grade_text = (
            (fields[0], fields[1], fields[2]) if columns == 3 else (fields[0], fields[2], fields[3])
        )
        qid, docid = qid.strip(), docid.strip()
        grade = _grade(grade_text)
        if not qid or not docid:
            bad(number, "empty query or document id")
        elif grade is None:
            bad(number, f"relevance {grade_text!r} is not an integer")
        elif docid in qrels.get(qid, {}):
            bad(number, f"duplicate judgement for query {qid}, document {docid}")
        else:
            qrels.setdefault(qid, {})[docid] = grade
    bad.report()
    if not qrels:
        raise PyseriniLlamaError(f"{path}: no judgements")
    return qrels


def read_qrels(spec: str | Path, *, topics_dir: str | Path | None = None, skip_bad_lines: bool = False) -> Qrels:
    """Judgements from a qrels file or a Pyserini qrels name (``dl19-passage``, ``beir-v1.0.0-scifact-test``)."""
    path = Path(spec)
    if path.is_dir():
        raise PyseriniLlamaError(f"{path} is a directory: pass a qrels file such as {path}/qrels/test.tsv")
    if not path.is_file():
        path = resolve_named_file("qrels", str(spec), topics_dir)
    return read_qrels_file(path, skip_bad_lines=skip_bad_lines)

"""The exact input strings of the paper's models. Change nothing here without a fidelity test.

The model cards write ``f"passage: {title} {passage}"``: an empty title gives two spaces, and
that is what the released checkpoints saw, so no stripping or collapsing happens here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..data.document import Document

QUERY_PREFIX = "query: "
PASSAGE_PREFIX = "passage: "  # RepLLaMA
DOCUMENT_PREFIX = "document: "  # RankLLaMA


def format_query(query: str, prefix: str = QUERY_PREFIX) -> str:
    return f"{prefix}{query}"


def format_passage(text: str, title: str = "", url: str | None = None, prefix: str = PASSAGE_PREFIX) -> str:
    """``prefix + [url + " "] + title + " " + text``, as the model cards build it."""
    head = f"{url} {title}" if url else f"{title}"
    return f"{prefix}{head} {text}"


#: How letter case is treated before formatting. ``as-is`` is the model cards' exact input (the castorini
#: checkpoints); ``fold-all-caps`` lower-cases a field with no lower-case letter at all (``str.isupper``), so
#: an ALL-CAPS query, common in older test collections, reads as the lower-case text the model knows, while
#: every normally written text, acronyms inside it included, is left untouched.
TEXT_CASES = ("as-is", "fold-all-caps")

#: A model directory's record of its input, written by training, read when serving, so that serving matches
#: training: ``{"text_case": "fold-all-caps"}``, and for RankLLaMA the lengths it was trained with,
#: ``"query_max_length"`` and ``"max_length"`` (the whole pair). Absent: ``as-is``, the callers' default lengths.
INPUT_FORMAT_FILE = "input_format.json"


def apply_case(text: str, text_case: str = "as-is") -> str:
    """``text`` under the rule ``text_case`` (see :data:`TEXT_CASES`)."""
    if text_case == "fold-all-caps":
        return text.lower() if text.isupper() else text
    if text_case != "as-is":
        raise ValueError(f"unknown text case rule {text_case!r}; choose {' or '.join(TEXT_CASES)}")
    return text


def format_document(document: Document, prefix: str = PASSAGE_PREFIX, text_case: str = "as-is") -> str:
    """:func:`format_passage` of a document's text, title and url, title and text each under ``text_case``:
    RepLLaMA's passages (``passage: ``) and RankLLaMA's documents (``document: ``) alike, at inference and in
    training (a training passage has the same three fields)."""
    return format_passage(
        apply_case(document.text, text_case), apply_case(document.title, text_case), document.url, prefix
    )

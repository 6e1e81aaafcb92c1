"""The exact input strings of the paper's models. Change nothing here without a fidelity test.

The model cards write ``f"passage: {title} {passage}"``: an empty title gives two spaces, and
that is what the released checkpoints saw, so no stripping or collapsing happens here.
"""

from __future__ import annotations

QUERY_PREFIX = "query: "
PASSAGE_PREFIX = "passage: "  # RepLLaMA
DOCUMENT_PREFIX = "document: "  # RankLLaMA


def format_query(query: str, prefix: str = QUERY_PREFIX) -> str:
    return f"{prefix}{query}"


def format_passage(text: str, title: str = "", url: str | None = None, prefix: str = PASSAGE_PREFIX) -> str:
    """``prefix + [url + " "] + title + " " + text``, as the model cards build it."""
    head = f"{url} {title}" if url else f"{title}"
    return f"{prefix}{head} {text}"

"""The document record every reader, store and model shares (its own module so that stores need no reader)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Document:
    """One document: id, body text, title (``""`` if none) and URL (MS MARCO documents only)."""

    docid: str
    text: str
    title: str = ""
    url: str | None = None

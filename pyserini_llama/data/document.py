"""The document record every reader, store and model shares (its own module so that stores need no reader),
and the one coercion of what callers pass as a document into it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Document:
    """One document: id, body text, title (``""`` if none) and URL (MS MARCO documents only)."""

    docid: str
    text: str
    title: str = ""
    url: str | None = None


#: What the encoder, the reranker and segmenting accept as a document (:func:`as_document`; objects with a
#: ``.text`` too).
DocumentLike = Document | str | Mapping[str, Any]


def as_document(item: DocumentLike) -> Document:
    """``item`` as a :class:`Document`: a Document as it is; a plain text; a dict with ``text``, ``title``,
    ``url`` keys (missing or ``None`` ones empty); or any object with a ``.text`` (and optionally ``.title``,
    ``.url``). Only a Document keeps its id (the others get ``""``): the models read text, title and URL."""
    if isinstance(item, Document):
        return item
    if isinstance(item, str):
        return Document("", item)
    if isinstance(item, Mapping):
        return Document("", item.get("text") or "", item.get("title") or "", item.get("url"))
    if hasattr(item, "text"):
        return Document("", item.text or "", getattr(item, "title", "") or "", getattr(item, "url", None))
    raise TypeError(f"a document must be a Document, dict or str, not {type(item).__name__}")

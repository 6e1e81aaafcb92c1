"""FirstP / MaxP: long documents scored through windows (segments) of their body.

Units are **words** (whitespace-separated), not tokens, as in the FirstP/MaxP baselines of Dai &
Callan (2019; 150-word windows, stride 75) that the paper's document-ranking comparisons follow.
Why words: a segment is then simply a shorter document with the same url and title, which goes
through the models' exact input formatting (``formatting.py``) and truncation, so a document
that fits in one window scores exactly as it does without segmenting, and no tokenizer
round-trip (decode then re-encode) can change a window's text. Each window is still cut to the
model's ``max_length`` tokens as any document is.

* ``maxp``: a document scores as its best segment.
* ``firstp``: a document scores as its first segment only (the others are never computed).

In a FAISS index, MaxP stores one vector per segment, with ids ``DOCID#segN`` (``N`` from 0) in
Pyserini's ``docid`` file and a ``segments.json`` manifest beside it; our dense search reads the
manifest and returns each document once, at its best segment's score. (Pyserini's own
``search.faiss`` reads such an index too, but then reports segment ids.) FirstP stores one vector
per document under its plain id.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..data.document import as_document

AGGREGATES = ("firstp", "maxp")
SEGMENT_SEPARATOR = "#seg"
MANIFEST = "segments.json"
_SEGMENT_SUFFIX = re.compile(re.escape(SEGMENT_SEPARATOR) + r"\d+$")


def segment_id(docid: str, number: int) -> str:
    """``DOCID#segN``: the id of a document's ``number``-th segment in a MaxP index."""
    return f"{docid}{SEGMENT_SEPARATOR}{number}"


def document_id(vector_id: str) -> str:
    """The document id of a segment id (``DOCID#segN`` -> ``DOCID``); other ids pass unchanged."""
    return _SEGMENT_SUFFIX.sub("", vector_id)


@dataclass(frozen=True)
class Segmenter:
    """Windows of ``window`` words starting every ``stride`` words, combined by ``aggregate``."""

    window: int
    stride: int
    aggregate: str = "maxp"

    def __post_init__(self) -> None:
        if self.window < 1 or self.stride < 1:
            raise ValueError(f"segment WINDOW and STRIDE must be at least 1, got {self.window},{self.stride}")
        if self.stride > self.window:
            raise ValueError(
                f"segment STRIDE {self.stride} is larger than WINDOW {self.window}: words between windows would be lost"
            )
        if self.aggregate not in AGGREGATES:
            raise ValueError(f"aggregate must be one of {', '.join(AGGREGATES)}, not {self.aggregate!r}")

    @classmethod
    def parse(cls, spec: str, aggregate: str | None = None) -> Segmenter:
        """``"WINDOW"`` or ``"WINDOW,STRIDE"`` (STRIDE defaults to WINDOW: no overlap)."""
        parts = spec.split(",")
        try:
            numbers = [int(p) for p in parts]
        except ValueError:
            numbers = []
        if len(numbers) not in (1, 2):
            raise ValueError(f"segment spec must be WINDOW or WINDOW,STRIDE (integers), not {spec!r}")
        window = numbers[0]
        stride = numbers[1] if len(numbers) == 2 else window
        return cls(window, stride, aggregate or "maxp")

    def windows(self, text: str) -> list[str]:
        """The body's windows; a body of at most ``window`` words is one window, unchanged."""
        words = text.split()
        if len(words) <= self.window:
            return [text]
        out = []
        for start in range(0, len(words), self.stride):
            out.append(" ".join(words[start : start + self.window]))
            if self.aggregate == "firstp" or start + self.window >= len(words):
                break
        return out

    def split(self, item: Any) -> list[Any]:
        """Segments of one document (anything ``data.document.as_document`` takes: a Document, a dict, a text).

        Each segment keeps the document's url and title; only the body is windowed. A document
        whose body fits in one window comes back as the item itself.
        """
        document = as_document(item)
        windows = self.windows(document.text)
        if windows == [document.text]:
            return [item]
        return [{"text": w, "title": document.title, "url": document.url} for w in windows]

    def expand(self, items: Sequence[Any]) -> tuple[list[Any], list[int]]:
        """All segments of ``items`` in order, and how many each item has (for :meth:`reduce`)."""
        segments: list[Any] = []
        counts: list[int] = []
        for item in items:
            parts = self.split(item)
            segments.extend(parts)
            counts.append(len(parts))
        return segments, counts

    def reduce(self, scores: np.ndarray, counts: Sequence[int]) -> np.ndarray:
        """One score per item from its segments' scores: the max (maxp) or the first (firstp)."""
        if not counts:
            return np.zeros(0, dtype=scores.dtype)
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
        if self.aggregate == "firstp":
            return scores[starts]
        return np.maximum.reduceat(scores, starts)

    def segment_documents(self, documents: Sequence[Any]) -> list[Any]:
        """Documents (dataclasses with ``docid``, ``text``) as segment documents for an index.

        MaxP: one per segment, ids ``DOCID#segN``. FirstP: one per document, its first window,
        under its own id.
        """
        out = []
        for doc in documents:
            windows = self.windows(doc.text)
            if self.aggregate == "firstp":
                out.append(dataclasses.replace(doc, text=windows[0]))
            else:
                out.extend(
                    dataclasses.replace(doc, docid=segment_id(doc.docid, n), text=w) for n, w in enumerate(windows)
                )
        return out

    def manifest(self, documents: int, vectors: int, max_segments: int) -> dict:
        return {
            "unit": "words",
            "window": self.window,
            "stride": self.stride,
            "aggregate": self.aggregate,
            "separator": SEGMENT_SEPARATOR,
            "documents": documents,
            "vectors": vectors,
            "max_segments": max_segments,
        }


def write_manifest(directory: str | Path, segmenter: Segmenter, segment_ids: Sequence[str]) -> dict:
    """Write ``segments.json`` for an index whose vector ids are ``segment_ids``."""
    per_doc: dict[str, int] = {}
    for vid in segment_ids:
        doc = document_id(vid) if segmenter.aggregate == "maxp" else vid
        per_doc[doc] = per_doc.get(doc, 0) + 1
    manifest = segmenter.manifest(len(per_doc), len(segment_ids), max(per_doc.values(), default=0))
    Path(directory, MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def read_manifest(directory: str | Path) -> dict | None:
    """An index's ``segments.json``, or None for an index of whole documents."""
    path = Path(directory, MANIFEST)
    if not path.is_file():
        return None
    return json.loads(path.read_text())


def collapse_hits(hits: Sequence[tuple[str, float]]) -> list[tuple[str, float]]:
    """Best-first segment hits -> best-first document hits, each document once at its best score.

    In a best-first list a document's first segment hit is its best, so that is the MaxP score.
    """
    seen: set[str] = set()
    out = []
    for vid, score in hits:
        doc = document_id(vid)
        if doc not in seen:
            seen.add(doc)
            out.append((doc, score))
    return out

"""Training groups from Tevatron-format JSON lines, sampled the way Tevatron samples them.

One line per query::

    {"query_id": "3", "query": "...",
     "positive_passages": [{"docid": "d1", "title": "...", "text": "..."}],
     "negative_passages": [{"docid": "d9", "title": "...", "text": "..."}, ...]}

``title`` may be missing or null; ``url`` is used when present (MS MARCO documents). Every line
is checked when the file is read, before training starts, so a bad line 90,000 stops the run in
the first second, naming file and line, not after an hour of training.

Sampling (Tevatron's ``TrainDataset``): for query ``i`` in epoch ``e`` the positive is
``positives[(h + e) % len(positives)]`` and the ``group_size - 1`` negatives are a window that
moves by ``group_size - 1`` each epoch over the negatives shuffled once per query, so successive
epochs see different negatives; a query with too few negatives draws them with replacement. ``h``
and every random draw come from the seed and the query's index alone (never ``hash()``, which
changes between processes), so a group is the same in every process, every run and after a resume.
"""

from __future__ import annotations

import json
import logging
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ..data._lines import BadLines, iter_lines
from ..errors import PyseriniLlamaError, SkippedLines

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainPassage:
    docid: str
    text: str
    title: str = ""
    url: str | None = None
    score: float | None = None  # teacher score (Tevatron's distillation format), if annotated


@dataclass(frozen=True)
class TrainQuery:
    query_id: str
    query: str
    positives: tuple[TrainPassage, ...]
    negatives: tuple[TrainPassage, ...]


@dataclass(frozen=True)
class TrainGroup:
    """One query and its passages: the positive first, then the negatives."""

    query: str
    passages: tuple[TrainPassage, ...]

    @property
    def teacher_scores(self) -> tuple[float, ...] | None:
        """The passages' teacher scores in group order, or None if any passage has none."""
        scores = tuple(p.score for p in self.passages)
        return None if any(s is None for s in scores) else scores  # type: ignore[return-value]


def _as_id(value: object) -> str | None:
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None
    return str(value)


def _passage(item: object, where: str) -> TrainPassage:
    if not isinstance(item, dict):
        raise ValueError(f"{where} is not a JSON object")
    text, title, url = item.get("text"), item.get("title") or "", item.get("url")
    if not isinstance(text, str):
        raise ValueError(f'{where} has no "text" string')
    if not isinstance(title, str) or (url is not None and not isinstance(url, str)):
        raise ValueError(f'{where}: "title" and "url" must be strings')
    docid = _as_id(item.get("docid", ""))
    if docid is None:
        raise ValueError(f'{where}: "docid" must be a string or an integer')
    score = item.get("score")
    if score is not None and (
        isinstance(score, bool) or not isinstance(score, int | float) or not math.isfinite(score)
    ):
        raise ValueError(f'{where}: "score" must be a finite number')
    return TrainPassage(
        docid=docid, text=text, title=title, url=url or None, score=None if score is None else float(score)
    )


def parse_train_line(text: str) -> TrainQuery:
    """One training line -> :class:`TrainQuery`; ``ValueError`` says what is wrong with it."""
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not valid JSON ({exc.msg} at column {exc.colno})") from None
    return parse_train_object(obj)


def parse_train_object(obj: object) -> TrainQuery:
    """One decoded training line -> :class:`TrainQuery`; ``ValueError`` says what is wrong with it."""
    if not isinstance(obj, dict):
        raise ValueError("not a JSON object")
    qid = _as_id(obj.get("query_id"))
    if qid is None:
        raise ValueError('no "query_id" (string or integer)')
    if not isinstance(obj.get("query"), str):
        raise ValueError('no "query" string')
    groups = []
    for key in ("positive_passages", "negative_passages"):
        items = obj.get(key)
        if not isinstance(items, list):
            raise ValueError(f'no "{key}" list')
        if not items:
            raise ValueError(f'"{key}" is empty; every query needs at least one positive and one negative')
        groups.append(tuple(_passage(item, f"{key}[{i}]") for i, item in enumerate(items)))
    return TrainQuery(query_id=qid, query=obj["query"], positives=groups[0], negatives=groups[1])


def read_train_file(
    path: str | Path,
    *,
    skip_bad_lines: bool = False,
    skipped: SkippedLines | None = None,
    require_scores: bool = False,
) -> list[TrainQuery]:
    """Every query of a Tevatron-format file (``.gz`` allowed); a bad line raises ``InputFormatError``.

    ``require_scores`` (distillation): a passage without a teacher ``"score"`` is a bad line.
    """
    bad = BadLines(path, skip_bad_lines, skipped)
    out = []
    for number, text in iter_lines(path, bad):
        try:
            query = parse_train_line(text)
        except ValueError as exc:
            bad(number, str(exc))
            continue
        if require_scores and any(p.score is None for p in (*query.positives, *query.negatives)):
            bad(
                number,
                f'query {query.query_id}: a passage has no teacher "score", which distillation (--distil-weight > 0) '
                "needs on every passage (add them with python -m pyserini_llama.teacher)",
            )
            continue
        out.append(query)
    bad.report()
    return out


def read_train_files(
    paths: Sequence[str | Path], *, skip_bad_lines: bool = False, require_scores: bool = False
) -> list[TrainQuery]:
    queries: list[TrainQuery] = []
    for path in paths:
        found = read_train_file(path, skip_bad_lines=skip_bad_lines, require_scores=require_scores)
        if not found:
            raise PyseriniLlamaError(f"{path}: no training queries in this file")
        queries.extend(found)
    logger.info("read %d training queries from %d file(s)", len(queries), len(paths))
    return queries


class TrainDataset:
    """Queries plus the deterministic sampling of their groups and of the order of each epoch."""

    def __init__(self, queries: Sequence[TrainQuery], group_size: int, seed: int = 42, case_augment: float = 0.0):
        """``case_augment``: the share of (query, epoch) draws whose query is lower-cased, so a model
        served with case folding (``--text-case fold-all-caps``) has seen lower-case queries."""
        if group_size < 2:
            raise ValueError("group_size must be at least 2")
        self.queries = list(queries)
        self.group_size = group_size
        self.seed = seed
        self.case_augment = case_augment

    def __len__(self) -> int:
        return len(self.queries)

    def epoch_order(self, epoch: int) -> list[int]:
        """The order queries are visited in ``epoch``: a fixed shuffle per (seed, epoch)."""
        order = list(range(len(self.queries)))
        random.Random(f"order:{self.seed}:{epoch}").shuffle(order)
        return order

    def group(self, index: int, epoch: int) -> TrainGroup:
        q = self.queries[index]
        hashed = random.Random(f"query:{self.seed}:{index}").getrandbits(31)
        positive = q.positives[(hashed + epoch) % len(q.positives)]
        n = self.group_size - 1
        if len(q.negatives) < n:
            negatives = random.Random(f"fill:{self.seed}:{index}:{epoch}").choices(q.negatives, k=n)
        else:
            shuffled = list(q.negatives)
            random.Random(hashed).shuffle(shuffled)
            offset = epoch * n % len(shuffled)
            negatives = (shuffled * 2)[offset : offset + n]
        query = q.query
        if self.case_augment and random.Random(f"case:{self.seed}:{index}:{epoch}").random() < self.case_augment:
            query = query.lower()
        return TrainGroup(query=query, passages=(positive, *negatives))

    def groups(self, epoch: int, start: int, size: int) -> list[TrainGroup]:
        """The groups at positions ``start .. start + size`` of ``epoch``'s order."""
        order = self._order(epoch)
        return [self.group(i, epoch) for i in order[start : start + size]]

    def _order(self, epoch: int) -> list[int]:
        cached = getattr(self, "_cached_order", None)
        if cached is None or cached[0] != epoch:
            self._cached_order = (epoch, self.epoch_order(epoch))
        return self._cached_order[1]

"""Hard-negative mining: training groups for RepLLaMA / RankLLaMA in Tevatron's JSON-lines format.

One line per query::

    {"query_id": "0", "query": "...",
     "positive_passages": [{"docid": "31715818", "title": "...", "text": "..."}],
     "negative_passages": [{"docid": "...", "title": "...", "text": "..."}, ...]}

How a group is made (the paper's recipe, Ma et al. 2023, section 3):

* **Positives**: the split's judgements with grade ``>= relevance_level`` (1 by default; graded
  qrels such as NFCorpus's 1/2 can ask for 2). Queries with fewer than ``min_positives`` of them
  are skipped and counted.
* **Candidates**: the top ``depth`` hits of each first stage. Several stages *blend*: their lists
  are interleaved rank by rank (rank 1 of every stage, then rank 2 of every stage, ...) and a
  document already taken is not taken again, so every stage gives the same depth and none
  dominates the pool however its scores are scaled. The paper trains RepLLaMA on a blend of BM25
  and a dense retriever (CoCondenser); RankLLaMA's negatives come from RepLLaMA's top 200, i.e.
  a RepLLaMA run file as the only first stage with ``depth=200``.
* **Never negatives**: any document judged relevant at any grade > 0 (even below
  ``relevance_level``), the query itself as a document (``remove_query``, on by default as in
  Pyserini's BEIR runs), the union of each stage's top ``skip_top`` hits (likely unjudged
  positives), and documents missing from the corpus (counted).
* **Sampling**: ``negatives`` candidates drawn uniformly without replacement with a random
  generator seeded from ``seed`` and the query id alone, so a query's sample does not depend on
  the order of queries or on which other queries are mined. Sampled negatives keep pool order
  (hardest first). A query with fewer candidates keeps them all; such queries are counted.

Grade-0 judgements (judged non-relevant) are ordinary candidates: they are good negatives.
"""

from __future__ import annotations

import json
import logging
import os
import random
import tempfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from ..data.corpus import Document
from ..data.qrels import Qrels
from ..data.runs import Run
from ..errors import PyseriniLlamaError

logger = logging.getLogger(__name__)

EXAMPLE_KEYS = ("query_id", "query", "positive_passages", "negative_passages")


@dataclass
class MiningStats:
    """What a mining pass did, so no skipped query or missing document goes unnoticed."""

    requested_negatives: int = 0
    queries: int = 0  # queries of the split with text
    written: int = 0
    no_positives: int = 0  # no judgement at the relevance level (or none in the corpus)
    few_positives: int = 0  # some, but fewer than min_positives
    short: int = 0  # written with fewer negatives than requested
    no_negatives: int = 0  # written with no negative at all (counted in short too)
    negatives: int = 0  # total negatives written
    missing_positive_docs: int = 0  # judged-relevant docids absent from the corpus
    missing_candidate_docs: int = 0  # first-stage docids absent from the corpus
    no_hits: list[int] = field(default_factory=list)  # per stage: queries it returned nothing for

    @property
    def skipped(self) -> int:
        return self.no_positives + self.few_positives

    @property
    def mean_negatives(self) -> float:
        return self.negatives / self.written if self.written else 0.0

    def summary(self) -> str:
        lines = [
            f"queries written: {self.written} of {self.queries}; skipped: {self.skipped} "
            f"({self.no_positives} without positives, {self.few_positives} with too few)",
            f"negatives per query: mean {self.mean_negatives:.2f} (requested {self.requested_negatives}); "
            f"{self.short} queries had fewer candidates than requested, {self.no_negatives} had none",
        ]
        if self.missing_positive_docs or self.missing_candidate_docs:
            lines.append(
                f"not in the corpus (left out): {self.missing_positive_docs} judged-relevant and "
                f"{self.missing_candidate_docs} first-stage documents"
            )
        return "\n".join(lines)


def candidate_pool(runs: Sequence[Sequence[tuple[str, float]]], depth: int) -> list[str]:
    """Union of each run's top ``depth`` docids, interleaved rank by rank, first occurrence kept."""
    pool: list[str] = []
    seen: set[str] = set()
    for rank in range(depth):
        for hits in runs:
            if rank < len(hits) and hits[rank][0] not in seen:
                seen.add(hits[rank][0])
                pool.append(hits[rank][0])
    return pool


def query_rng(seed: int, qid: str) -> random.Random:
    """A generator that depends only on ``seed`` and ``qid`` (string seeds are hashed with SHA-512)."""
    return random.Random(f"{seed}\t{qid}")


def sample_negatives(candidates: Sequence[str], n: int, seed: int, qid: str) -> list[str]:
    """``n`` candidates drawn without replacement (all of them if fewer), in candidate order."""
    if len(candidates) <= n:
        return list(candidates)
    chosen = sorted(query_rng(seed, qid).sample(range(len(candidates)), n))
    return [candidates[i] for i in chosen]


def passage(doc: Document) -> dict[str, str]:
    return {"docid": doc.docid, "title": doc.title, "text": doc.text}


def check_options(*, depth: int, negatives: int, skip_top: int, min_positives: int, relevance_level: int) -> None:
    """One clear error for impossible mining settings, before any search starts."""
    if depth < 1 or min_positives < 1 or relevance_level < 1:
        raise PyseriniLlamaError("--depth, --min-positives and --relevance-level must be at least 1")
    if negatives < 0 or skip_top < 0:
        raise PyseriniLlamaError("--negatives and --skip-top must not be negative")
    if skip_top >= depth:
        raise PyseriniLlamaError(f"--skip-top ({skip_top}) must be below --depth ({depth})")


def mine_examples(
    queries: Mapping[str, str],
    qrels: Qrels,
    runs: Sequence[Run],
    documents: Mapping[str, Document],
    *,
    depth: int = 200,
    negatives: int = 15,
    seed: int = 42,
    skip_top: int = 0,
    min_positives: int = 1,
    relevance_level: int = 1,
    remove_query: bool = True,
    stats: MiningStats | None = None,
) -> Iterator[dict]:
    """One Tevatron training example per usable query, in ``queries`` order (see the module doc).

    ``runs`` are the first stages' runs (at least ``depth`` hits each, best first); ``stats``, if
    given, is filled in as the examples are consumed.
    """
    if not runs:
        raise ValueError("at least one first-stage run is needed")
    check_options(
        depth=depth,
        negatives=negatives,
        skip_top=skip_top,
        min_positives=min_positives,
        relevance_level=relevance_level,
    )
    stats = stats if stats is not None else MiningStats()
    stats.requested_negatives = negatives
    stats.no_hits = [0] * len(runs)
    return _mine(
        queries,
        qrels,
        runs,
        documents,
        depth,
        negatives,
        seed,
        skip_top,
        min_positives,
        relevance_level,
        remove_query,
        stats,
    )


def _mine(
    queries,
    qrels,
    runs,
    documents,
    depth,
    negatives,
    seed,
    skip_top,
    min_positives,
    relevance_level,
    remove_query,
    stats,
) -> Iterator[dict]:
    for qid, query in queries.items():
        stats.queries += 1
        judged = qrels.get(qid, {})
        wanted = [d for d, grade in sorted(judged.items(), key=lambda x: -x[1]) if grade >= relevance_level]
        positives = [documents[d] for d in wanted if d in documents]
        stats.missing_positive_docs += len(wanted) - len(positives)
        if not positives:
            stats.no_positives += 1
            continue
        if len(positives) < min_positives:
            stats.few_positives += 1
            continue
        hits = [run.get(qid, []) for run in runs]
        for i, stage_hits in enumerate(hits):
            stats.no_hits[i] += not stage_hits
        excluded = {d for d, grade in judged.items() if grade > 0}
        excluded.update(docid for stage_hits in hits for docid, _ in stage_hits[:skip_top])
        if remove_query:
            excluded.add(qid)
        candidates = []
        for docid in candidate_pool(hits, depth):
            if docid in excluded:
                continue
            if docid in documents:
                candidates.append(docid)
            else:
                stats.missing_candidate_docs += 1
        chosen = sample_negatives(candidates, negatives, seed, qid)
        stats.written += 1
        stats.negatives += len(chosen)
        stats.short += len(chosen) < negatives
        stats.no_negatives += not chosen
        yield {
            "query_id": qid,
            "query": query,
            "positive_passages": [passage(doc) for doc in positives],
            "negative_passages": [passage(documents[d]) for d in chosen],
        }


def write_jsonl_atomic(records: Iterable[dict], path: str | os.PathLike) -> int:
    """Write one JSON object per line to a temporary file renamed into place; returns the line count."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    count = 0
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            for record in records:
                f.write(json.dumps(record, ensure_ascii=False) + "\n")
                count += 1
        os.chmod(tmp, 0o644)  # mkstemp makes it private
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return count


def mine_hard_negatives(
    queries: Mapping[str, str],
    qrels: Qrels,
    stages: Sequence,
    documents: Mapping[str, Document],
    output: str | os.PathLike,
    *,
    stage_names: Sequence[str] | None = None,
    depth: int = 200,
    negatives: int = 15,
    seed: int = 42,
    skip_top: int = 0,
    min_positives: int = 1,
    relevance_level: int = 1,
    remove_query: bool = True,
) -> MiningStats:
    """Search ``queries`` with every first stage to ``depth``, mine, and write Tevatron JSON lines to ``output``.

    ``stages`` are first stages (``BM25Stage``, ``RepLLaMAStage``, ``RunStage`` ... anything with
    ``batch_search(queries, k) -> Run``). Only queries with a judgement at the relevance level are
    searched. ``output`` is replaced only when every example has been written.
    """
    if not stages:
        raise PyseriniLlamaError("give at least one first stage")
    options = dict(
        depth=depth,
        negatives=negatives,
        seed=seed,
        skip_top=skip_top,
        min_positives=min_positives,
        relevance_level=relevance_level,
        remove_query=remove_query,
    )
    check_options(
        depth=depth,
        negatives=negatives,
        skip_top=skip_top,
        min_positives=min_positives,
        relevance_level=relevance_level,
    )
    names = list(stage_names) if stage_names else [type(s).__name__ for s in stages]
    searched = {q: t for q, t in queries.items() if any(g >= relevance_level for g in qrels.get(q, {}).values())}
    k = depth + 1 if remove_query else depth  # the query's own hit is dropped later; keep `depth` candidates
    runs = []
    for name, stage in zip(names, stages, strict=True):
        logger.info("first stage %s: top %d for %d queries", name, k, len(searched))
        runs.append(stage.batch_search(searched, k) if searched else {})
    stats = MiningStats()
    examples = mine_examples(queries, qrels, runs, documents, stats=stats, **options)

    def checked() -> Iterator[dict]:
        yield from tqdm(examples, total=len(queries), desc="mining", unit="query", disable=len(queries) < 1000)
        if stats.written and not stats.negatives and stats.missing_candidate_docs:
            raise PyseriniLlamaError(
                f"none of the first stages' {stats.missing_candidate_docs} candidate documents is in the corpus: "
                "do the runs belong to this corpus?"
            )

    write_jsonl_atomic(checked(), output)
    for name, count in zip(names, stats.no_hits, strict=True):
        if count:
            logger.warning("first stage %s returned no hits for %d of %d mined queries", name, count, stats.written)
    return stats

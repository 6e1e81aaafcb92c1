"""Hard-negative mining: training groups for RepLLaMA / RankLLaMA in Tevatron's JSON-lines format.

One line per query::

    {"query_id": "0", "query": "...",
     "positive_passages": [{"docid": "31715818", "title": "...", "text": "..."}],
     "negative_passages": [{"docid": "...", "title": "...", "text": "..."}, ...]}

How a group is made (the recipe of Ma et al. 2023, "Fine-Tuning LLaMA for Multi-Stage Text Retrieval"):

* **Positives**: the split's judgements with grade ``>= relevance_level`` (1 by default; with graded
  qrels, such as NFCorpus dev/test's 1 and 2, ``relevance_level=2`` keeps the grade-2 ones). Queries with fewer than ``min_positives`` of them
  are skipped and counted.
* **Candidates**: the top ``depth`` hits of each first stage. Several stages *blend*: their lists
  are interleaved rank by rank (rank 1 of every stage, then rank 2 of every stage, ...) and a
  document already taken is not taken again, so every stage gives the same depth and none
  dominates the pool however its scores are scaled. The paper trains RepLLaMA on a blend of BM25
  and a dense retriever (CoCondenser); RankLLaMA's negatives come from RepLLaMA's top 200, i.e.
  RepLLaMA (the ``repllama`` stage, or a RepLLaMA run file) as the only first stage, ``depth=200``.
* **Never negatives**: any document judged relevant at any grade > 0 (even below
  ``relevance_level``), the query itself as a document (``remove_query``, on by default as in
  Pyserini's BEIR runs), the union of each stage's top ``skip_top`` hits (likely unjudged
  positives), and documents missing from the corpus (counted).
* **Sampling**: ``negatives`` candidates drawn uniformly without replacement with a random
  generator seeded from ``seed`` and the query id alone, so a query's sample does not depend on
  the order of queries or on which other queries are mined. Sampled negatives keep pool order
  (hardest first). A query with fewer candidates keeps them all; such queries are counted. A
  query left with fewer than ``min_negatives`` (default 1) is skipped and counted: a group with no
  negative teaches RankLLaMA nothing and breaks Tevatron-style samplers. This happens: in NFCorpus
  train, 201 of 2,590 queries have every one of BM25's top 200 judged relevant.

Grade-0 judgements (judged non-relevant) are ordinary candidates: they are good negatives.
"""

from __future__ import annotations

import logging
import os
import random
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from tqdm import tqdm

from ..atomic import write_jsonl_atomic
from ..data.document import Document
from ..data.qrels import Qrels
from ..data.runs import Run
from ..defaults import MINE_DEPTH
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
    few_negatives: int = 0  # fewer than min_negatives candidates left
    short: int = 0  # written with fewer negatives than requested
    negatives: int = 0  # total negatives written
    missing_positive_docs: int = 0  # judged-relevant docids absent from the corpus
    missing_candidate_docs: int = 0  # first-stage docids absent from the corpus
    no_hits: list[int] = field(default_factory=list)  # per stage: queries it returned nothing for

    @property
    def skipped(self) -> int:
        return self.no_positives + self.few_positives + self.few_negatives

    @property
    def mean_negatives(self) -> float:
        return self.negatives / self.written if self.written else 0.0

    def summary(self) -> str:
        lines = [
            f"queries written: {self.written} of {self.queries}; skipped: {self.skipped} "
            f"({self.no_positives} without positives, {self.few_positives} with too few positives, "
            f"{self.few_negatives} with too few negatives)",
            f"negatives per query: mean {self.mean_negatives:.2f} (requested {self.requested_negatives}); "
            f"{self.short} written queries had fewer candidates than requested",
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


def passage(doc: Document, title: bool = True) -> dict[str, str]:
    return {"docid": doc.docid, "title": doc.title if title else "", "text": doc.text}


@dataclass(frozen=True)
class MiningOptions:
    """How negatives are chosen; the fields are the CLI flags of the same names (see the module doc)."""

    depth: int = MINE_DEPTH
    negatives: int = 15
    seed: int = 42
    skip_top: int = 0
    min_positives: int = 1
    min_negatives: int = 1
    relevance_level: int = 1
    remove_query: bool = True
    drop_positive_title: bool = False  # pseudo-queries made from titles: the positive without its title

    def __post_init__(self):
        if self.depth < 1 or self.min_positives < 1 or self.relevance_level < 1:
            raise PyseriniLlamaError("--depth, --min-positives and --relevance-level must be at least 1")
        if self.negatives < 0 or self.skip_top < 0 or self.min_negatives < 0:
            raise PyseriniLlamaError("--negatives, --min-negatives and --skip-top must not be negative")
        if self.min_negatives > self.negatives:
            raise PyseriniLlamaError(f"--min-negatives ({self.min_negatives}) is above --negatives ({self.negatives})")
        if self.skip_top >= self.depth:
            raise PyseriniLlamaError(f"--skip-top ({self.skip_top}) must be below --depth ({self.depth})")


def mine_examples(
    queries: Mapping[str, str],
    qrels: Qrels,
    runs: Sequence[Run],
    documents: Mapping[str, Document],
    options: MiningOptions = MiningOptions(),
    stats: MiningStats | None = None,
) -> Iterator[dict]:
    """Yield one Tevatron training example per usable query, in ``queries`` order (see the module doc).

    ``runs`` are the first stages' runs (at least ``options.depth`` hits each, best first);
    ``stats``, if given, is filled in as the examples are consumed.
    """
    o = options
    stats = stats if stats is not None else MiningStats()
    stats.requested_negatives = o.negatives
    stats.no_hits = [0] * len(runs)
    for qid, query in queries.items():
        stats.queries += 1
        judged = qrels.get(qid, {})
        wanted = [d for d, grade in sorted(judged.items(), key=lambda x: -x[1]) if grade >= o.relevance_level]
        positives = [documents[d] for d in wanted if d in documents]
        stats.missing_positive_docs += len(wanted) - len(positives)
        if not positives:
            stats.no_positives += 1
            continue
        if len(positives) < o.min_positives:
            stats.few_positives += 1
            continue
        hits = [run.get(qid, []) for run in runs]
        for i, stage_hits in enumerate(hits):
            stats.no_hits[i] += not stage_hits
        excluded = {d for d, grade in judged.items() if grade > 0}
        excluded.update(docid for stage_hits in hits for docid, _ in stage_hits[: o.skip_top])
        if o.remove_query:
            excluded.add(qid)
        candidates = []
        for docid in candidate_pool(hits, o.depth):
            if docid in excluded:
                continue
            if docid in documents:
                candidates.append(docid)
            else:
                stats.missing_candidate_docs += 1
        chosen = sample_negatives(candidates, o.negatives, o.seed, qid)
        if len(chosen) < o.min_negatives:
            stats.few_negatives += 1
            continue
        stats.written += 1
        stats.negatives += len(chosen)
        stats.short += len(chosen) < o.negatives
        yield {
            "query_id": qid,
            "query": query,
            "positive_passages": [passage(doc, not o.drop_positive_title) for doc in positives],
            "negative_passages": [passage(documents[d]) for d in chosen],
        }


def queries_with_positives(queries: Mapping[str, str], qrels: Qrels, relevance_level: int) -> dict[str, str]:
    """The queries worth searching: those with a judgement at ``relevance_level``; raises if there is none."""
    found = {q: t for q, t in queries.items() if any(g >= relevance_level for g in qrels.get(q, {}).values())}
    if not found:
        grades = sorted({g for q in queries for g in qrels.get(q, {}).values()})
        raise PyseriniLlamaError(
            f"no query has a judgement >= --relevance-level {relevance_level} (grades in these qrels: {grades})"
        )
    return found


def mine_hard_negatives(
    queries: Mapping[str, str],
    qrels: Qrels,
    stages: Sequence,
    documents: Mapping[str, Document],
    output: str | os.PathLike,
    options: MiningOptions = MiningOptions(),
    *,
    stage_names: Sequence[str] | None = None,
    annotate: Callable[[dict], dict] | None = None,
) -> MiningStats:
    """Search ``queries`` with every first stage, mine, and write Tevatron JSON lines to ``output``.

    ``stages`` are first stages (``BM25Stage``, ``RepLLaMAStage``, ``RunStage`` ... anything with
    ``batch_search(queries, k) -> Run``); only queries with a judgement at the relevance level are
    searched. ``annotate``, if given, maps each example before it is written (the
    ``mine --teacher`` CLI passes :func:`pyserini_llama.teacher.annotate_example` bound to its teacher, which
    adds a ``"score"`` to every passage, as ``python -m pyserini_llama.teacher`` would afterwards). ``output`` is replaced only once every example is written, and not at all when no
    query could be used or no candidate is in the corpus (both raise).
    """
    if not stages:
        raise PyseriniLlamaError("give at least one first stage")
    names = list(stage_names) if stage_names else [type(s).__name__ for s in stages]
    searched = queries_with_positives(queries, qrels, options.relevance_level)
    k = options.depth + 1 if options.remove_query else options.depth  # the query's own hit is dropped later
    runs = []
    for name, stage in zip(names, stages, strict=True):
        logger.info("first stage %s: top %d for %d queries", name, k, len(searched))
        runs.append(stage.batch_search(searched, k))
    stats = MiningStats()
    examples = mine_examples(queries, qrels, runs, documents, options, stats)
    if annotate is not None:
        examples = map(annotate, examples)

    def checked() -> Iterator[dict]:
        yield from tqdm(examples, total=len(queries), desc="mining", unit="query", disable=len(queries) < 1000)
        if not stats.negatives and stats.missing_candidate_docs:
            raise PyseriniLlamaError(
                f"none of the first stages' {stats.missing_candidate_docs} candidate documents is in the corpus: "
                "do the runs belong to this corpus?"
            )
        if not stats.written:
            raise PyseriniLlamaError(f"no query could be used, so nothing was written: {stats.summary()}")

    write_jsonl_atomic(checked(), output)
    for name, count in zip(names, stats.no_hits, strict=True):
        if count:
            logger.warning("first stage %s returned no hits for %d of %d mined queries", name, count, stats.written)
    return stats

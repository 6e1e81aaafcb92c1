"""Per-query score normalisation and weighted fusion of runs.

Scores of different models live on different scales (BM25 in the tens, cosines in [-1, 1], a
reranker's logits anywhere), so before two lists are mixed each query's scores are put on a
common scale:

* ``minmax``: ``(s - min) / (max - min)`` over the query's hits, so the best hit is 1 and the last 0
  (all 1 when every hit has the same score);
* ``zscore``: ``(s - mean) / std`` over the query's hits (all 0 when the std is 0).

A document a run does not return for a query (it was below that run's cut-off) gets that run's
**floor** for the query: 0 under ``minmax`` and the lowest z-score of the list under ``zscore``,
i.e. it counts as tied with the run's last hit, never above anything the run returned. A query
the run does not hold at all contributes 0 under either normalisation.

The fused score is ``sum_i w_i * normalised_i``; used for teacher scores in training data
(:mod:`pyserini_llama.mine.teacher`) and for interpolating a reranker with its first stage
(:func:`interpolate_runs`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence

from ..errors import PyseriniLlamaError
from .runs import Hit, Run, sort_hits

NORMALISATIONS = ("minmax", "zscore")


def normalise_hits(hits: Sequence[Hit], method: str = "minmax") -> dict[str, float]:
    """``{docid: normalised score}`` for one query's hits (see the module doc)."""
    if method not in NORMALISATIONS:
        raise PyseriniLlamaError(f"unknown normalisation {method!r}; choose {' or '.join(NORMALISATIONS)}")
    if not hits:
        return {}
    scores = [score for _, score in hits]
    if method == "minmax":
        low, high = min(scores), max(scores)
        span = high - low
        return {docid: (score - low) / span if span > 0 else 1.0 for docid, score in hits}
    mean = sum(scores) / len(scores)
    std = math.sqrt(sum((s - mean) ** 2 for s in scores) / len(scores))
    return {docid: (score - mean) / std if std > 0 else 0.0 for docid, score in hits}


def floor_of(normalised: Mapping[str, float]) -> float:
    """The value a document missing from a normalised list gets: the list's lowest (0 if empty)."""
    return min(normalised.values()) if normalised else 0.0


class FusedScorer:
    """Weighted sum of per-query normalised runs, able to score any document of any query.

    ``scorer.score(qid, docid)`` is defined for every document, returned by some run or not (the
    floor rule of the module doc), which is what annotating training passages needs.
    """

    def __init__(self, runs: Sequence[Run], weights: Sequence[float] | None = None, method: str = "minmax"):
        if not runs:
            raise PyseriniLlamaError("fusion needs at least one run")
        weights = [1.0 / len(runs)] * len(runs) if weights is None else list(weights)
        if len(weights) != len(runs):
            raise PyseriniLlamaError(f"{len(runs)} runs but {len(weights)} weights")
        if any(not math.isfinite(w) or w < 0 for w in weights) or not sum(weights) > 0:
            raise PyseriniLlamaError(f"fusion weights must be non-negative with a positive sum, not {weights}")
        normalise_hits([], method)  # reject an unknown method now
        self.runs, self.weights, self.method = list(runs), weights, method
        self._cache: dict[str, list[tuple[dict[str, float], float]]] = {}

    def _lists(self, qid: str) -> list[tuple[dict[str, float], float]]:
        found = self._cache.get(qid)
        if found is None:
            found = []
            for run in self.runs:
                normalised = normalise_hits(run.get(qid, []), self.method)
                found.append((normalised, floor_of(normalised)))
            self._cache = {qid: found}  # one query at a time is all callers need
        return found

    def score(self, qid: str, docid: str) -> float:
        return sum(w * lst.get(docid, floor) for w, (lst, floor) in zip(self.weights, self._lists(qid), strict=True))

    def covered(self, qid: str, docid: str) -> bool:
        """True when at least one run returned ``docid`` for ``qid`` (its score is not all floors)."""
        return any(docid in lst for lst, _ in self._lists(qid))

    def fuse(self, qids: Iterable[str] | None = None, k: int | None = None) -> Run:
        """The fused run over the union of the runs' documents, best first, ``k`` hits per query."""
        if qids is None:
            qids = dict.fromkeys(qid for run in self.runs for qid in run)
        out: Run = {}
        for qid in qids:
            docids = dict.fromkeys(docid for run in self.runs for docid, _ in run.get(qid, []))
            if docids:
                out[qid] = sort_hits((docid, self.score(qid, docid)) for docid in docids)[:k]
        return out


def interpolate_runs(first: Run, reranked: Run, weight: float, depth: int, method: str = "minmax") -> Run:
    """``weight * reranker + (1 - weight) * first stage`` over each query's top ``depth`` of ``first``.

    Both lists are normalised per query over those ``depth`` hits only (the reranker scored no
    others); hits below ``depth`` keep their first-stage order underneath, with scores below every
    interpolated one. ``weight`` 1 is the pure reranker order, 0 the first stage's.
    """
    if not 0.0 <= weight <= 1.0:
        raise PyseriniLlamaError(f"the interpolation weight must be in [0, 1], not {weight}")
    out: Run = {}
    for qid, hits in first.items():
        ordered = sort_hits(hits)
        top, rest = ordered[:depth], ordered[depth:]
        if not top:
            out[qid] = []
            continue
        reranker_scores = dict(reranked.get(qid, []))
        missing = [docid for docid, _ in top if docid not in reranker_scores]
        if missing:
            raise PyseriniLlamaError(
                f"query {qid}: the reranked run has no score for document {missing[0]} of the first stage's top {depth}"
            )
        first_norm = normalise_hits(top, method)
        rerank_norm = normalise_hits([(docid, reranker_scores[docid]) for docid, _ in top], method)
        mixed = [(d, weight * rerank_norm[d] + (1 - weight) * first_norm[d]) for d, _ in top]
        lowest = min(score for _, score in mixed)
        below = [(docid, lowest - 1.0 - i) for i, (docid, _) in enumerate(rest)]
        out[qid] = sort_hits(mixed + below)
    return out


def parse_weighted(spec: str) -> tuple[str, float]:
    """``PATH[:WEIGHT]`` -> ``(path, weight)``; weight 1 when not given. A Windows-style ``C:\\...`` stays a path."""
    path, sep, tail = spec.rpartition(":")
    if sep and path and tail:
        try:
            return path, float(tail)
        except ValueError:
            pass
    return spec, 1.0

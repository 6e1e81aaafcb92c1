"""Run evaluation on pytrec_eval (trec_eval's own C code), with the metric names papers use.

Metric names (case-insensitive): ``ndcg@K`` (trec_eval ``ndcg_cut.K``), ``recall@K`` / ``r@K``
(``recall.K``), ``precision@K`` / ``p@K`` (``P.K``), ``map``, ``map@K`` (``map_cut.K``), ``ndcg``, and
``mrr@K``: ``recip_rank`` on the run cut to its top K hits per query in trec_eval's order (score
descending, docid descending), which is what ``trec_eval -M K -m recip_rank`` and MS MARCO's MRR@10
compute. Any other trec_eval measure (``ndcg_cut.20``, ``recip_rank``, ``P_5``, ``bpref``) passes through.

Averaging follows trec_eval: by default the mean is over the queries present in *both* the run and
the qrels (queries judged but missing from the run are ignored). ``complete=True`` is trec_eval's
``-c``: every judged query counts, a missing one scoring 0. ``relevance_level`` is trec_eval's
``-l``: the lowest grade that counts as relevant for binary measures (recall, MAP, MRR, P); nDCG
always uses the graded judgements.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from ..data.runs import Run, sort_hits
from ..errors import PyseriniLlamaError

logger = logging.getLogger(__name__)

DEFAULT_METRICS = ("ndcg@10", "mrr@10", "recall@100", "recall@1000", "map")

_CUTOFF_MEASURES = {"ndcg": "ndcg_cut", "recall": "recall", "r": "recall", "precision": "P", "p": "P", "map": "map_cut"}


@dataclass(frozen=True)
class Metric:
    """A user-facing metric name and how pytrec_eval computes it."""

    name: str  # as the user wrote it; the key in results
    measure: str  # pytrec_eval measure, e.g. "ndcg_cut.10"
    key: str  # pytrec_eval result key, e.g. "ndcg_cut_10"
    cutoff: int | None = None  # for mrr@K: the run is cut to K hits first


def parse_metric(name: str) -> Metric:
    """``ndcg@10`` -> ``Metric(measure="ndcg_cut.10", key="ndcg_cut_10")``; unknown names are a user error."""
    import pytrec_eval

    text = name.strip()
    match = re.fullmatch(r"([A-Za-z]+)@(\d+)", text)
    if match:
        base, k = match.group(1).lower(), int(match.group(2))
        if k < 1:
            raise PyseriniLlamaError(f"metric {name!r}: the cutoff must be at least 1")
        if base == "mrr":
            return Metric(name, "recip_rank", "recip_rank", cutoff=k)
        if base in _CUTOFF_MEASURES:
            measure = _CUTOFF_MEASURES[base]
            return Metric(name, f"{measure}.{k}", f"{measure}_{k}")
    elif text.lower() in ("map", "ndcg", "mrr"):
        base = {"map": "map", "ndcg": "ndcg", "mrr": "recip_rank"}[text.lower()]
        return Metric(name, base, base)
    else:
        plain = re.fullmatch(r"([A-Za-z0-9_]+?)(?:[._](\d+))?", text)
        if plain and plain.group(1) in pytrec_eval.supported_measures:
            base, k = plain.group(1), plain.group(2)
            if k is None:
                return Metric(name, base, base)
            return Metric(name, f"{base}.{k}", f"{base}_{k}")
    raise PyseriniLlamaError(
        f"unknown metric {name!r}: use ndcg@K, mrr@K, recall@K, precision@K, map, map@K, "
        "or a trec_eval measure with one cutoff such as ndcg_cut.10, P.5 or recip_rank"
    )


def _pytrec_run(run: Mapping[str, Sequence[tuple[str, float]]], cutoff: int | None = None) -> dict:
    out = {}
    for qid, hits in run.items():
        ranked = sort_hits(hits)[:cutoff] if cutoff else hits
        scores = {docid: float(score) for docid, score in ranked}
        if len(scores) != len(ranked):
            raise PyseriniLlamaError(f"query {qid}: the run lists a document twice")
        if scores:
            out[qid] = scores
    return out


def evaluate_run(
    qrels: Mapping[str, Mapping[str, int]],
    run: Run,
    metrics: Iterable[str] = DEFAULT_METRICS,
    relevance_level: int = 1,
    per_query: bool = False,
    complete: bool = False,
) -> dict:
    """Score ``run`` against ``qrels``.

    Returns ``{metric: mean}`` keyed by the names given, or with ``per_query=True``
    ``{qid: {metric: value}, ..., "all": {metric: mean}}`` (like ``trec_eval -q``).
    Raises a user error when no query of the run is judged: that is almost always the wrong qrels.
    """
    import pytrec_eval

    parsed = [parse_metric(m) for m in metrics]
    if not parsed:
        raise PyseriniLlamaError("no metrics to compute")
    judged = {qid: {d: int(g) for d, g in docs.items()} for qid, docs in qrels.items() if docs}
    common = [qid for qid in run if qid in judged and run[qid]]
    if not common:
        raise PyseriniLlamaError(
            f"no query of the run is in the qrels (run has e.g. {list(run)[:3]}, qrels {list(judged)[:3]}): "
            "wrong qrels for this run?"
        )
    unjudged = sum(1 for qid in run if qid not in judged)
    missing = sum(1 for qid in judged if qid not in common)
    if unjudged or missing:
        logger.info(
            "%d run queries have no judgements (ignored); %d judged queries are not in the run (%s)",
            unjudged,
            missing,
            "scored 0" if complete else "ignored, as trec_eval does without -c",
        )

    values: dict[str, dict[str, float]] = {qid: {} for qid in (judged if complete else common)}
    by_cutoff: dict[int | None, list[Metric]] = {}
    for metric in parsed:
        by_cutoff.setdefault(metric.cutoff, []).append(metric)
    for cutoff, group in by_cutoff.items():
        evaluator = pytrec_eval.RelevanceEvaluator(judged, {m.measure for m in group}, relevance_level=relevance_level)
        results = evaluator.evaluate(_pytrec_run(run, cutoff))
        for metric in group:
            for qid in values:
                if qid not in results:
                    values[qid][metric.name] = 0.0
                elif metric.key in results[qid]:
                    values[qid][metric.name] = results[qid][metric.key]
                else:
                    raise PyseriniLlamaError(f"metric {metric.name!r} gives several values; give it one cutoff")

    means = {
        m.name: pytrec_eval.compute_aggregated_measure(m.key, [v[m.name] for v in values.values()]) for m in parsed
    }
    if not per_query:
        return means
    return {**values, "all": means}

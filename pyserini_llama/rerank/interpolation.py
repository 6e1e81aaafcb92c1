"""Interpolating a reranking with its first stage, and choosing the weight on a train/dev split.

A reranker trained on one collection can lose, on another, what its first stage found: RankLLaMA's
scores alone may order a BEIR corpus worse than BM25 did. ``W * reranker + (1 - W) * first stage``
(:func:`~pyserini_llama.data.score_fusion.interpolate_runs`, per-query normalised scores) keeps both.
W is a parameter fitted to judgements, so it must come from queries other than the ones reported:
:func:`sweep_interpolation` evaluates a grid of weights on a train/dev split from the pure reranked run,
without scoring a single pair again, since interpolation needs only the two runs' scores.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from ..data.runs import Run, sort_hits
from ..data.score_fusion import interpolate_runs
from ..errors import PyseriniLlamaError

DEFAULT_WEIGHTS = tuple(i / 10 for i in range(11))


def interpolate_reranking(
    first: Run, reranked: Run, weight: float, depth: int, method: str = "minmax", *, skip_missing: bool = False
) -> Run:
    """:func:`interpolate_runs` for the output of ``rerank`` (``reranked`` holds the pure reranker scores).

    ``rerank --skip-missing-docs`` leaves out top-``depth`` hits whose document is not in the corpus,
    so the reranker scored fewer hits of such a query. With ``skip_missing`` those hits are left out
    of the first stage too (they are in neither output) and the query is interpolated over the hits
    that were scored. Without it a top-``depth`` hit the reranked run lacks is an error: that is what a
    reranking of another first stage, or one cut shorter than ``depth`` by ``--hits``, looks like.
    """
    if not skip_missing:
        return interpolate_runs(first, reranked, weight, depth, method)
    out: Run = {}
    for qid, hits in first.items():
        scored = {docid for docid, _ in reranked.get(qid, [])}
        ordered = sort_hits(hits)
        top = [hit for hit in ordered[:depth] if hit[0] in scored]
        kept = top + ordered[depth:]
        if top:
            out.update(interpolate_runs({qid: kept}, {qid: reranked[qid]}, weight, len(top), method))
        else:  # the reranker scored nothing of this query: the first stage is all there is
            out[qid] = kept
    return out


def parse_weights(text: str) -> list[float]:
    """``"0,0.1,0.5"`` -> ``[0.0, 0.1, 0.5]``: sorted, each once, each in [0, 1]."""
    weights: set[float] = set()
    for part in text.split(","):
        if not part.strip():
            continue
        try:
            value = float(part)
        except ValueError:
            raise PyseriniLlamaError(f"--weights: {part.strip()!r} is not a number") from None
        if not 0.0 <= value <= 1.0:
            raise PyseriniLlamaError(f"--weights: {part.strip()} is not between 0 and 1 (the reranker's weight)")
        weights.add(value)
    if not weights:
        raise PyseriniLlamaError(f"--weights {text!r}: no weight given")
    return sorted(weights)


def sweep_interpolation(
    first: Run,
    reranked: Run,
    qrels: Mapping[str, Mapping[str, int]],
    depth: int,
    weights: Sequence[float] = DEFAULT_WEIGHTS,
    norm: str = "minmax",
    metric: str = "ndcg@10",
    *,
    skip_missing: bool = False,
) -> list[tuple[float, float]]:
    """``[(weight, metric value), ...]`` of :func:`interpolate_reranking` at each weight, in the order given.

    Evaluated as the pipeline does (trec_eval ``-c``: every judged query counts). Weight 1 is the pure
    reranker's order and 0 the first stage's (over the top ``depth``), so the ends of the grid are the
    two runs being mixed. ``depth`` must be the depth ``reranked`` was reranked to: below it the
    reranked run holds first-stage order, not reranker scores.
    """
    from ..eval import evaluate_run, parse_metric

    parse_metric(metric)  # a typo fails before any work
    if depth < 1:
        raise PyseriniLlamaError(f"--depth must be at least 1, got {depth}")
    results = []
    for weight in weights:
        run = interpolate_reranking(first, reranked, weight, depth, norm, skip_missing=skip_missing)
        results.append((weight, evaluate_run(qrels, run, [metric], complete=True)[metric]))
    return results


def best_weight(results: Sequence[tuple[float, float]]) -> tuple[float, float]:
    """The ``(weight, value)`` with the highest value; ties go to the SMALLER reranker weight.

    Why smaller: when the reranker adds nothing measurable, trust the first stage, whose ranking
    the reranker would otherwise overwrite on the queries the split did not cover.
    """
    if not results:
        raise PyseriniLlamaError("no weights were evaluated")
    top = max(value for _, value in results)
    return min((w, v) for w, v in results if math.isclose(v, top, rel_tol=1e-12, abs_tol=1e-12))

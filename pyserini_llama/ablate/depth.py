"""Depth sweep: RankLLaMA nDCG@10 against how many first-stage hits it reranks.

Scored once, derived for every depth. RankLLaMA scores each (query, document) pair on its own, so
a pair's score does not depend on the depth it was reranked at: the sweep scores the top
``max(depths)`` hits of every query once (``points/rankllama-scores.json``, saved as it goes, so
an interrupted scoring resumes) and builds the run of each shallower depth ``d`` from those
scores exactly as ``rerank --depth d`` would (:func:`rerank_from_scores`): the top ``d`` hits
reordered by their scores, the rest in first-stage order below them. Sweeping 5..100 therefore
costs one rerank at depth 100, and raising the largest depth later scores only the new pairs.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ..atomic import write_json_atomic
from ..data.runs import Run, sort_hits
from ..defaults import QUERY_MAX_LENGTH, RERANK_MAX_LENGTH
from ..errors import PyseriniLlamaError
from ..modeling.segments import Segmenter
from .commands import ModelFlags, eval_command, rerank_command
from .evaluation import DEFAULT_METRICS, evaluate, load_reranker, precision
from .inputs import EvalData, load_first_stage
from .plot import Panel, line_plot
from .points import PointStore, point_id
from .table import write_table

logger = logging.getLogger(__name__)

#: Pairs scored between two saves of the score cache.
PAIRS_PER_SAVE = 1024

Scores = dict[str, dict[str, float]]


@dataclass
class DepthSweep:
    """Settings of one depth sweep (the CLI flags, one to one)."""

    data: EvalData
    output_dir: Path
    reranker: str
    run: str
    depths: list[int] = field(default_factory=lambda: [5, 10, 20, 50, 100])
    flags: ModelFlags = field(default_factory=ModelFlags)
    max_length: int = RERANK_MAX_LENGTH
    query_max_length: int = QUERY_MAX_LENGTH
    segments: Segmenter | None = None
    skip_missing_docs: bool = False
    metrics: tuple[str, ...] = DEFAULT_METRICS

    def __post_init__(self) -> None:
        self.output_dir = Path(self.output_dir)
        if not self.depths or min(self.depths) < 1:
            raise PyseriniLlamaError("--depths must be positive integers")
        if self.max_length <= self.query_max_length:
            raise PyseriniLlamaError("--max-length must exceed --query-max-length (room for the document)")


def rerank_from_scores(run: Mapping[str, list[tuple[str, float]]], scores: Scores, depth: int) -> Run:
    """The run ``rerank_run(..., depth)`` produces, from scores cached at a depth >= ``depth``.

    Top ``depth`` hits of each query reordered by their scores (hits without a score, i.e. documents
    skipped as missing, left out), the rest in first-stage order with scores below the lowest
    reranked one (``floor - 1, floor - 2, ...``), as :meth:`RankLLaMAReranker.rerank_run` writes them.
    """
    out: Run = {}
    for qid, hits in run.items():
        mine = scores.get(qid, {})
        top = sort_hits([(docid, mine[docid]) for docid, _ in hits[:depth] if docid in mine])
        floor = top[-1][1] if top else 0.0
        out[qid] = top + [(docid, floor - (i + 1)) for i, (docid, _) in enumerate(hits[depth:])]
    return out


def score_top(
    reranker, data: EvalData, run: Run, depth: int, cache_path: Path, params: dict, *, skip_missing_docs: bool
) -> Scores:
    """Scores of the top ``depth`` pairs of every query, reusing and extending ``cache_path``.

    The cache holds ``{"params", "scores"}``; scores made with other parameters are discarded. Only
    pairs not in the cache are scored (``reranker`` is a zero-argument callable that loads the
    model, called only if some pair is missing), and the cache is saved every
    :data:`PAIRS_PER_SAVE` pairs, atomically.
    """
    scores: Scores = {}
    if cache_path.is_file():
        try:
            cached = json.loads(cache_path.read_text())
        except (OSError, json.JSONDecodeError):
            cached = {}
        if cached.get("params") == json.loads(json.dumps(params)):
            scores = cached["scores"]
        else:
            logger.info("%s was scored with other parameters; rescoring", cache_path)
    documents = data.documents
    todo: list[tuple[str, str]] = []
    for qid, hits in run.items():
        for docid, _ in hits[:depth]:
            if docid in scores.get(qid, {}):
                continue
            if docid not in documents:
                if not skip_missing_docs:
                    raise PyseriniLlamaError(
                        f"document {docid!r} (query {qid}) is not in the corpus {data.corpus}; "
                        "pass --skip-missing-docs to leave such hits out"
                    )
                continue
            todo.append((qid, docid))
    if not todo:
        return scores
    from tqdm.auto import tqdm

    model = reranker()
    logger.info("scoring %d (query, document) pairs (top %d)", len(todo), depth)
    with tqdm(total=len(todo), desc="reranking", unit="pair") as bar:
        for start in range(0, len(todo), PAIRS_PER_SAVE):
            chunk = todo[start : start + PAIRS_PER_SAVE]
            values = model.score_pairs([(data.queries[q], documents[d]) for q, d in chunk], progress=bar)
            for (qid, docid), value in zip(chunk, values, strict=True):
                scores.setdefault(qid, {})[docid] = float(value)
            write_json_atomic({"params": params, "scores": scores}, cache_path)
    return scores


def run_depth_sweep(sweep: DepthSweep) -> list[dict]:
    """Score the deepest depth once, derive and evaluate every depth, write ``depth.md/.json/.png``."""
    from ..cache import model_fingerprint
    from ..data.runs import write_trec_run

    out = sweep.output_dir
    store = PointStore(out)
    first_stage, first_stage_path, run_sha = load_first_stage(sweep.run, sweep.data, out)
    segments = sweep.segments
    params = {
        "sweep": "depth",
        "data": sweep.data.fingerprint(),
        "run_sha256": run_sha,
        "model": model_fingerprint(sweep.reranker),
        "dtype": precision(sweep.flags),
        "max_length": sweep.max_length,
        "query_max_length": sweep.query_max_length,
        "segment": [segments.window, segments.stride, segments.aggregate] if segments else None,
        "skip_missing_docs": sweep.skip_missing_docs,
    }
    deepest = max(sweep.depths)
    loaded = []

    def reranker():
        if not loaded:
            model = load_reranker(sweep.reranker, sweep.flags, sweep.query_max_length, sweep.max_length)
            model.segments = segments
            loaded.append(model)
        return loaded[0]

    scores: Scores | None = None
    rows = []
    for depth in sorted(set(sweep.depths)):
        name = point_id("depth", depth)
        run_path = out / "runs" / f"{name}.trec"

        def compute(depth=depth, run_path=run_path):
            nonlocal scores
            if scores is None:
                scores = score_top(
                    reranker,
                    sweep.data,
                    first_stage,
                    deepest,
                    out / "points" / "rankllama-scores.json",
                    params,
                    skip_missing_docs=sweep.skip_missing_docs,
                )
            run = rerank_from_scores(first_stage, scores, depth)
            write_trec_run(run, run_path, tag="ablate-rankllama")
            return {
                "metrics": evaluate(sweep.data, run, sweep.metrics),
                "derived_from_depth": deepest,
                "run": str(run_path),
                "commands": [
                    rerank_command(
                        str(sweep.data.queries_path),
                        str(first_stage_path),
                        str(sweep.data.corpus),
                        sweep.reranker,
                        depth,
                        sweep.max_length,
                        sweep.query_max_length,
                        str(run_path),
                        sweep.flags,
                        segments,
                        sweep.skip_missing_docs,
                    ),
                    eval_command(str(sweep.data.qrels_path), str(run_path), sweep.metrics),
                ],
            }

        record = store.get_or_compute(name, {**params, "depth": depth, "metrics": list(sweep.metrics)}, compute)
        rows.append({"point": name, "depth": depth, **record["metrics"], "command": record["commands"]})
    baseline = evaluate(sweep.data, first_stage, sweep.metrics)
    _write_outputs(sweep, rows, baseline, deepest)
    return rows


def _write_outputs(sweep: DepthSweep, rows: list[dict], baseline: dict, deepest: int) -> None:
    metric = sweep.metrics[0]
    notes = [
        f"Dataset {sweep.data.name}, {len(sweep.data.queries)} queries; metrics trec_eval -c.",
        f"RankLLaMA {sweep.reranker} reranks the top d hits of {sweep.run} (pairs of {sweep.max_length} tokens, "
        f"query {sweep.query_max_length}); first stage alone: {metric} {baseline[metric]:.4f}.",
        f"Each pair was scored once, at depth {deepest}; shallower depths reorder their top d by those scores, "
        "which is what the recorded rerank command computes.",
    ]
    write_table(
        rows,
        ["depth", *sweep.metrics, "command"],
        sweep.output_dir / "depth",
        title="Rerank depth ablation",
        notes=notes,
    )
    panel = Panel(
        "RankLLaMA",
        "rerank depth (first-stage hits rescored)",
        metric,
        {"RankLLaMA": [(r["depth"], r[metric]) for r in rows]},
        {"first stage": baseline[metric]},
        log_x=True,
    )
    line_plot([panel], sweep.output_dir / "depth.png", title=f"{metric} against rerank depth, {sweep.data.name}")

"""Length sweep: nDCG@10 against the maximum input length, for three ways of reading a long document.

* ``first``: plain truncation, the model reads the document's first ``L`` tokens (what FirstP is
  when the window is the model's length);
* ``maxp``: the body cut into word windows sized to fit ``L`` tokens (``--words-per-token``; half
  overlapping by default), every window scored, the document taking its best window (MaxP;
  ``--segment W,S --aggregate maxp`` in encode/rerank);
* ``full``: the whole document up to ``--full-length`` tokens, one point per model (drawn as a
  reference line).

RepLLaMA points encode the corpus at that length and run dense search; RankLLaMA points rerank
the top ``--depth`` of a given first-stage ``--run`` with pairs of that length (query included).
The paper's finding this checks: longer inputs help RankLLaMA on long documents (MRR@100 48.5 at
512 tokens, 50.3 at 2048 on MS MARCO documents).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from ..defaults import HITS, QUERY_MAX_LENGTH, RERANK_DEPTH
from ..errors import PyseriniLlamaError
from ..modeling.segments import Segmenter
from .commands import ModelFlags
from .evaluation import DEFAULT_METRICS, dense_point, evaluate, load_encoder, load_reranker, precision, rerank_point
from .inputs import EvalData, load_first_stage
from .plot import Panel, line_plot
from .points import PointStore, point_id
from .table import write_table

logger = logging.getLogger(__name__)

MODES = ("first", "maxp", "full")
MODE_LABELS = {"first": "first segment (truncation)", "maxp": "MaxP windows", "full": "full length"}
KIND_LABELS = {"repllama": "RepLLaMA", "rankllama": "RankLLaMA"}


@dataclass
class LengthSweep:
    """Settings of one length sweep (the CLI flags, one to one)."""

    data: EvalData
    output_dir: Path
    lengths: list[int]
    flags: ModelFlags = field(default_factory=ModelFlags)
    retriever: str | None = None
    reranker: str | None = None
    run: str | None = None  # first-stage run RankLLaMA reranks
    modes: list[str] = field(default_factory=lambda: list(MODES))
    depth: int = RERANK_DEPTH
    full_length: int = 4096
    query_max_length: int = QUERY_MAX_LENGTH
    words_per_token: float = 0.6
    stride_fraction: float = 0.5
    hits: int = HITS
    remove_query: bool = False
    skip_missing_docs: bool = False
    keep_indexes: bool = False
    metrics: tuple[str, ...] = DEFAULT_METRICS

    def __post_init__(self) -> None:
        self.output_dir = Path(self.output_dir)
        if not self.retriever and not self.reranker:
            raise PyseriniLlamaError("the length sweep needs --retriever (RepLLaMA) and/or --reranker (RankLLaMA)")
        if self.reranker and not self.run:
            raise PyseriniLlamaError("--reranker needs --run: the first-stage run RankLLaMA reranks")
        unknown = [m for m in self.modes if m not in MODES]
        if unknown or not self.modes:
            raise PyseriniLlamaError(f"unknown --modes {unknown or '(none)'}; choose from {', '.join(MODES)}")
        if not self.lengths or min(self.lengths) < 2 or self.full_length < 2:
            raise PyseriniLlamaError("--lengths and --full-length must be at least 2 tokens")
        if not (self.words_per_token > 0 and 0 < self.stride_fraction <= 1):
            raise PyseriniLlamaError("--words-per-token must be > 0 and --stride-fraction in (0, 1]")
        if self.depth < 1 or self.hits < 1 or self.query_max_length < 1:
            raise PyseriniLlamaError("--depth, --hits and --query-max-length must be at least 1")


def maxp_windows(length: int, sweep: LengthSweep, kind: str) -> Segmenter:
    """Word windows sized to ``length`` tokens (less the query's share of a RankLLaMA pair)."""
    budget = length - (sweep.query_max_length if kind == "rankllama" else 0)
    window = max(1, int(budget * sweep.words_per_token))
    return Segmenter(window, max(1, round(window * sweep.stride_fraction)), "maxp")


def plan(sweep: LengthSweep) -> list[tuple[str, str, int]]:
    """``(kind, mode, length)`` of every point, RepLLaMA first; lengths a RankLLaMA query fills are left out."""
    kinds = [k for k, m in (("repllama", sweep.retriever), ("rankllama", sweep.reranker)) if m]
    points = []
    for kind in kinds:
        for mode in sweep.modes:
            for length in [sweep.full_length] if mode == "full" else sorted(set(sweep.lengths)):
                if kind == "rankllama" and length <= sweep.query_max_length:
                    logger.warning(
                        "RankLLaMA at %d tokens: no room after a %d-token query; skipped",
                        length,
                        sweep.query_max_length,
                    )
                    continue
                points.append((kind, mode, length))
    return points


def run_length_sweep(sweep: LengthSweep) -> list[dict]:
    """Compute (or reuse) every point, then write ``length.md/.json/.png``; returns the table rows."""
    from ..cache import model_fingerprint

    out = sweep.output_dir
    store = PointStore(out)
    common = {"sweep": "length", "data": sweep.data.fingerprint(), "dtype": precision(sweep.flags)}
    first_stage = None
    if sweep.reranker:
        first_stage, first_stage_path, run_sha = load_first_stage(sweep.run, sweep.data, out)
    models: dict[str, object] = {}

    def model(kind: str):  # loaded on first need: a rerun with every point cached loads nothing
        if kind not in models:
            if kind == "repllama":
                models[kind] = load_encoder(sweep.retriever, sweep.flags, sweep.query_max_length)
            else:
                longest = max(sweep.full_length, *sweep.lengths)  # any valid length; each point sets its own
                models[kind] = load_reranker(sweep.reranker, sweep.flags, sweep.query_max_length, longest)
        return models[kind]

    rows = []
    for kind, mode, length in plan(sweep):
        segments = maxp_windows(length, sweep, kind) if mode == "maxp" else None
        name = point_id(kind, mode, length)
        params = {
            **common,
            "kind": kind,
            "model": model_fingerprint(sweep.retriever if kind == "repllama" else sweep.reranker),
            "mode": mode,
            "max_length": length,
            "segment": [segments.window, segments.stride] if segments else None,
            "query_max_length": sweep.query_max_length,
            "metrics": list(sweep.metrics),
        }
        if kind == "repllama":
            params.update(hits=sweep.hits, remove_query=sweep.remove_query)

            def compute(name=name, length=length, segments=segments):
                return dense_point(
                    model("repllama"),
                    sweep.data,
                    model=sweep.retriever,
                    index_dir=out / "indexes" / name,
                    run_path=out / "runs" / f"{name}.trec",
                    max_length=length,
                    segments=segments,
                    hits=sweep.hits,
                    remove_query=sweep.remove_query,
                    flags=sweep.flags,
                    metrics=sweep.metrics,
                    keep_index=sweep.keep_indexes,
                )
        else:
            params.update(depth=sweep.depth, run_sha256=run_sha, skip_missing_docs=sweep.skip_missing_docs)

            def compute(name=name, length=length, segments=segments):
                return rerank_point(
                    model("rankllama"),
                    sweep.data,
                    first_stage,
                    first_stage_path,
                    model=sweep.reranker,
                    run_path=out / "runs" / f"{name}.trec",
                    depth=sweep.depth,
                    max_length=length,
                    query_max_length=sweep.query_max_length,
                    segments=segments,
                    flags=sweep.flags,
                    skip_missing_docs=sweep.skip_missing_docs,
                    metrics=sweep.metrics,
                )

        record = store.get_or_compute(name, params, compute)
        rows.append(
            {
                "point": name,
                "model": KIND_LABELS[kind],
                "input": MODE_LABELS[mode],
                "max length": length,
                "window (words)": f"{segments.window},{segments.stride}" if segments else "",
                **record["metrics"],
                "seconds": record["seconds"],
                "command": record["commands"],
            }
        )
    first_stage_metrics = evaluate(sweep.data, first_stage, sweep.metrics) if first_stage else None
    _write_outputs(sweep, rows, first_stage_metrics)
    return rows


def _write_outputs(sweep: LengthSweep, rows: list[dict], first_stage_metrics: dict | None) -> None:
    metric = sweep.metrics[0]
    notes = [
        f"Dataset {sweep.data.name}, {len(sweep.data.queries)} queries; metrics trec_eval -c.",
        f"MaxP windows: {sweep.words_per_token} words per token of the length (less the query's "
        f"{sweep.query_max_length} tokens for RankLLaMA), stride {sweep.stride_fraction} of a window.",
    ]
    if sweep.reranker:
        notes.append(
            f"RankLLaMA reranks the top {sweep.depth} of {sweep.run}"
            + (f" (first stage alone: {metric} {first_stage_metrics[metric]:.4f})." if first_stage_metrics else ".")
        )
    columns = ["model", "input", "max length", "window (words)", *sweep.metrics, "seconds", "command"]
    write_table(rows, columns, sweep.output_dir / "length", title="Input length ablation", notes=notes)
    panels = []
    for kind, label in KIND_LABELS.items():
        mine = [r for r in rows if r["model"] == label]
        if not mine:
            continue
        series = {
            MODE_LABELS[m]: [(r["max length"], r[metric]) for r in mine if r["input"] == MODE_LABELS[m]]
            for m in ("first", "maxp")
            if any(r["input"] == MODE_LABELS[m] for r in mine)
        }
        references = {f"full length ({r['max length']} tokens)": r[metric] for r in mine if r["input"] == "full length"}
        if kind == "rankllama" and first_stage_metrics:
            references["first stage"] = first_stage_metrics[metric]
        panels.append(Panel(label, "max input length (tokens)", metric, series, references, log_x=True))
    line_plot(panels, sweep.output_dir / "length.png", title=f"{metric} against input length, {sweep.data.name}")

"""End-to-end BEIR pipeline: index, retrieve (BM25 / RepLLaMA / hybrid), rerank (RankLLaMA), evaluate.

Everything lands in one output directory (the indexes in ``--index-dir`` instead, when given, so that
every split of one corpus shares them)::

    index.lucene/            BM25 index (stored documents), built by search.lucene.build_lucene_index
    index.<model-slug>/      flat inner-product FAISS index of the retriever's passage embeddings
    run.<stage>.trec         one TREC run per stage (with --rerank-interpolate W, run.rankllama.trec is the
                             interpolated run and run.rankllama-pure.trec the pure reranking it is made from)
    <artifact>.manifest.json what each artifact was made from
    metrics.json             stage x nDCG@10, MRR@10, Recall@100, Recall@1000 on the split's qrels (trec_eval -c)

Caching. Each artifact's manifest holds its own parameters and the manifests of its inputs (the
corpus, the queries, the models, the upstream artifacts). An artifact whose manifest on disk matches
is reused and nothing upstream of it is even opened; a changed parameter rebuilds that artifact and
everything downstream of it. So a new ``--rerank-depth`` reruns only RankLLaMA, and a new
``--rerank-interpolate W`` only the interpolation: the pure reranking is its own artifact, whose
manifest has no W. Artifacts are written atomically and their manifest only after them, so an
interrupted run is redone, never half-reused.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, replace
from pathlib import Path

from ..atomic import atomic_write, write_json_atomic
from ..cache import Artifact, file_fingerprint, model_fingerprint, model_slug
from ..cli_options import INTERPOLATION_NORMS
from ..defaults import (
    BM25_B,
    BM25_K1,
    ENCODE_BATCH_SIZE,
    ENCODE_MAX_LENGTH,
    HITS,
    RERANK_DEPTH,
)
from ..errors import PyseriniLlamaError
from ..modeling.loading import default_dtype, serving_lengths

logger = logging.getLogger(__name__)

FIRST_STAGES = ("bm25", "repllama", "hybrid")
PURE = "rankllama-pure"  # artifact key of the pure reranking when run.rankllama is interpolated
STAGES = (*FIRST_STAGES, "rankllama")
METRICS = ("ndcg@10", "mrr@10", "recall@100", "recall@1000")


@dataclass
class PipelineConfig:
    """Settings of one pipeline run; the CLI flags map one to one onto these fields."""

    dataset: Path
    output_dir: Path
    split: str = "test"
    stages: list[str] | None = None  # None: bm25, + repllama with a retriever, + rankllama with a reranker
    retriever: str | None = None
    reranker: str | None = None
    rerank_depth: int = RERANK_DEPTH
    hits: int = HITS
    fusion: str = "rrf"
    alpha: float = 0.5
    rrf_k: int = 60
    batch_size: int = ENCODE_BATCH_SIZE
    device: str = "cpu"
    dtype: str | None = None  # None: bfloat16 on GPU, float32 on CPU
    query_max_length: int = ENCODE_MAX_LENGTH
    passage_max_length: int = ENCODE_MAX_LENGTH
    reranker_query_max_length: int | None = None  # None: the reranker's record, else QUERY_MAX_LENGTH
    reranker_max_length: int | None = None  # the whole pair; None: the reranker's record, else RERANK_MAX_LENGTH
    threads: int = 1
    k1: float = BM25_K1
    b: float = BM25_B
    remove_query: bool = True  # Pyserini's BEIR regressions drop hits whose docid equals the qid
    trunk_cache: Path | None = None  # RepLLaMA top-K adapters: frozen-layer states cached here (float16)
    index_dir: Path | None = None  # None: the indexes live in output_dir; a shared dir serves every split
    rerank_interpolate: float | None = None  # reranker weight W of W * rankllama + (1 - W) * first stage; None: pure
    rerank_interpolate_norm: str = "minmax"  # per-query normalisation of both runs before they are mixed

    @property
    def index_root(self) -> Path:
        """Where index.lucene and index.<model-slug> live. Their manifests name the corpus and the model, never
        the split, so one directory serves train, dev and test runs of the same corpus without a rebuild."""
        return Path(self.index_dir) if self.index_dir is not None else Path(self.output_dir)

    @property
    def precision(self) -> str:
        return default_dtype(self.device, self.dtype)


def resolve_stages(config: PipelineConfig) -> list[str]:
    """The stages to run, in order, after checking that the flags make sense together (one-line errors)."""
    requested = (
        list(config.stages)
        if config.stages is not None
        else (["bm25"] + (["repllama"] if config.retriever else []) + (["rankllama"] if config.reranker else []))
    )
    unknown = [s for s in requested if s not in STAGES]
    if unknown or not requested:
        raise PyseriniLlamaError(f"unknown stage(s) {', '.join(unknown) or '(none)'}; choose from {', '.join(STAGES)}")
    if len(set(requested)) != len(requested):
        raise PyseriniLlamaError(f"a stage is listed twice in {','.join(requested)}")
    if ("repllama" in requested or "hybrid" in requested) and not config.retriever:
        need = "repllama" if "repllama" in requested else "hybrid (it fuses bm25 and repllama)"
        raise PyseriniLlamaError(f"stage {need} needs --retriever (a RepLLaMA model)")
    if "rankllama" in requested:
        if not config.reranker:
            raise PyseriniLlamaError("stage rankllama needs --reranker (a RankLLaMA model)")
        if not any(s in requested for s in FIRST_STAGES):
            raise PyseriniLlamaError("stage rankllama reranks a first stage: add bm25, repllama or hybrid to --stages")
    if config.reranker_query_max_length is None or config.reranker_max_length is None:
        # The lengths the reranker was trained with (its input_format.json), else 32 / 196: settled here, so
        # that the manifests and the description name the lengths actually used.
        config.reranker_query_max_length, config.reranker_max_length = serving_lengths(
            config.reranker or {}, config.reranker_query_max_length, config.reranker_max_length
        )
    if config.fusion not in ("rrf", "interpolation"):
        raise PyseriniLlamaError(f"unknown --fusion {config.fusion!r}; choose rrf or interpolation")
    if not 0.0 <= config.alpha <= 1.0:
        raise PyseriniLlamaError(f"--alpha must be between 0 and 1, got {config.alpha}")
    if config.rerank_interpolate is not None and not 0.0 <= config.rerank_interpolate <= 1.0:
        raise PyseriniLlamaError(f"--rerank-interpolate must be between 0 and 1, got {config.rerank_interpolate}")
    if config.rerank_interpolate_norm not in INTERPOLATION_NORMS:
        raise PyseriniLlamaError(
            f"unknown --rerank-interpolate-norm {config.rerank_interpolate_norm!r}; "
            f"choose {' or '.join(INTERPOLATION_NORMS)}"
        )
    for name in (
        "rerank_depth",
        "hits",
        "batch_size",
        "query_max_length",
        "passage_max_length",
        "reranker_query_max_length",
        "reranker_max_length",
        "threads",
        "rrf_k",
    ):
        if getattr(config, name) < 1:
            raise PyseriniLlamaError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(config, name)}")
    if config.reranker_max_length <= config.reranker_query_max_length:
        raise PyseriniLlamaError(
            "--reranker-max-length must exceed --reranker-query-max-length (room for the document)"
        )
    if config.reranker and "rankllama" not in requested:
        logger.warning("--reranker is unused: rankllama is not among the stages")
    if config.rerank_interpolate is not None and "rankllama" not in requested:
        logger.warning("--rerank-interpolate is unused: rankllama is not among the stages")
    if config.retriever and not {"repllama", "hybrid"} & set(requested):
        logger.warning("--retriever is unused: neither repllama nor hybrid is among the stages")
    stages = [s for s in STAGES if s in requested or (s in ("bm25", "repllama") and "hybrid" in requested)]
    added = [s for s in stages if s not in requested]
    if added:
        logger.info("hybrid fuses bm25 and repllama: running %s too", " and ".join(added))
    return stages


def rerank_source(stages: list[str]) -> str:
    """The first-stage run RankLLaMA reranks: the last one requested, hybrid > repllama > bm25."""
    return next(s for s in ("hybrid", "repllama", "bm25") if s in stages)


class Pipeline:
    """Builds the artifacts of a :class:`PipelineConfig`; models are loaded only if something must be computed."""

    def __init__(self, config: PipelineConfig):
        from ..data.corpus import corpus_files
        from ..data.queries import read_beir_split

        self.config = config
        self.stages = resolve_stages(config)
        self.out = Path(config.output_dir)
        self.queries, self.qrels = read_beir_split(config.dataset, config.split)
        if not self.queries:
            raise PyseriniLlamaError(f"{config.dataset}: no queries of split {config.split} have text")
        self.corpus = corpus_files(config.dataset)[0]
        self._encoder = None
        self._reranker = None
        self._precisions: dict[str, str] = {}
        self.artifacts = self._plan()

    def precision_of(self, model: str) -> str:
        """The concrete precision ``model`` runs in (``--dtype auto`` resolved once, by measurement), which
        is what manifests record: an index made in int8 is not the fp32 one."""
        if model not in self._precisions:
            from ..precision import resolve_precision

            self._precisions[model] = resolve_precision(self.config.precision, device=self.config.device, model=model)
        return self._precisions[model]

    # ------------------------------------------------------------------ plan
    def _plan(self) -> dict[str, Artifact]:
        c = self.config
        corpus = {"corpus": file_fingerprint(self.corpus)}
        queries = {
            "split": c.split,
            "queries_sha256": hashlib.sha256(json.dumps(self.queries).encode()).hexdigest(),
        }
        artifacts: dict[str, Artifact] = {}
        if "bm25" in self.stages:
            index = Artifact("index.lucene", c.index_root / "index.lucene", corpus, self._build_lucene)
            artifacts["bm25"] = Artifact(
                "run.bm25",
                self.out / "run.bm25.trec",
                {**queries, "hits": c.hits, "k1": c.k1, "b": c.b, "remove_query": c.remove_query},
                self._build_bm25,
                [index],
            )
        if "repllama" in self.stages:
            slug = model_slug(c.retriever)
            # float16 trunk states move embeddings by ~1e-3: what is built from them is not the same artifact
            trunk = {"trunk_cache": "float16"} if c.trunk_cache else {}
            index = Artifact(
                f"index.{slug}",
                c.index_root / f"index.{slug}",
                {
                    **corpus,
                    "model": model_fingerprint(c.retriever),
                    "dtype": self.precision_of(c.retriever),
                    "passage_max_length": c.passage_max_length,
                    "fields": ["title", "text"],
                    **trunk,
                },
                self._build_faiss,
            )
            artifacts["repllama"] = Artifact(
                "run.repllama",
                self.out / "run.repllama.trec",
                {
                    **queries,
                    "hits": c.hits,
                    "query_max_length": c.query_max_length,
                    "remove_query": c.remove_query,
                    **trunk,
                },
                self._build_repllama,
                [index],
            )
        if "hybrid" in self.stages:
            fusion = {"fusion": c.fusion, "hits": c.hits}
            fusion.update({"rrf_k": c.rrf_k} if c.fusion == "rrf" else {"alpha": c.alpha})
            artifacts["hybrid"] = Artifact(
                "run.hybrid",
                self.out / "run.hybrid.trec",
                fusion,
                self._build_hybrid,
                [artifacts["bm25"], artifacts["repllama"]],
            )
        if "rankllama" in self.stages:
            first = artifacts[rerank_source(self.stages)]
            # The pure reranking: run.rankllama, or run.rankllama-pure under an interpolated run.rankllama.
            pure_key = "rankllama" if c.rerank_interpolate is None else PURE
            artifacts[pure_key] = Artifact(
                f"run.{pure_key}",
                self.out / f"run.{pure_key}.trec",
                {
                    **corpus,
                    **queries,
                    "model": model_fingerprint(c.reranker),
                    "dtype": self.precision_of(c.reranker),
                    "depth": c.rerank_depth,
                    "query_max_length": c.reranker_query_max_length,
                    "max_length": c.reranker_max_length,
                },
                lambda: self._build_rankllama(pure_key),
                [first],
            )
            if c.rerank_interpolate is not None:
                # No model, no corpus: W only mixes two runs on disk, so a new W rebuilds this file alone.
                artifacts["rankllama"] = Artifact(
                    "run.rankllama",
                    self.out / "run.rankllama.trec",
                    {
                        "interpolate": c.rerank_interpolate,
                        "norm": c.rerank_interpolate_norm,
                        "depth": c.rerank_depth,
                    },
                    self._build_interpolated,
                    [artifacts[PURE], first],
                )
        return artifacts

    def _pure_twin(self, key: str) -> Path | None:
        """A current copy of the pure reranking under its other name, if there is one.

        ``run.rankllama.trec`` is the pure run without ``--rerank-interpolate`` and ``run.rankllama-pure.trec``
        with it; switching interpolation on or off must not rerank again what one of them already holds.
        """
        other = "rankllama" if key == PURE else PURE
        twin = replace(self.artifacts[key], name=f"run.{other}", path=self.out / f"run.{other}.trec")
        return twin.path if twin.is_current() else None

    def needs_reranker(self) -> bool:
        """True when the pure reranking must be computed (so the model must be loaded)."""
        key = PURE if PURE in self.artifacts else "rankllama"
        return key in self.artifacts and not self.artifacts[key].is_current() and self._pure_twin(key) is None

    # ------------------------------------------------------------------ models
    @property
    def encoder(self):
        if self._encoder is None:
            from ..encoders.repllama import RepLLaMAEncoder

            c = self.config
            self._encoder = RepLLaMAEncoder(
                c.retriever,
                dtype=self.precision_of(c.retriever),
                device=c.device,
                query_max_length=c.query_max_length,
                passage_max_length=c.passage_max_length,
                batch_size=c.batch_size,
                trunk_cache=c.trunk_cache,
            )
            if self._encoder.int8 is not None:
                # Quantised from the corpus whether or not its index is cached, so queries always meet the same model.
                from ..data.corpus import iter_corpus
                from ..encode import calibrate_on_corpus

                calibrate_on_corpus(self._encoder, list(iter_corpus(c.dataset)), max_length=c.passage_max_length)
        return self._encoder

    @property
    def reranker(self):
        if self._reranker is None:
            from ..rerankers import RankLLaMAReranker

            c = self.config
            self._reranker = RankLLaMAReranker(
                c.reranker,
                dtype=self.precision_of(c.reranker),
                device=c.device,
                query_max_length=c.reranker_query_max_length,
                max_length=c.reranker_max_length,
                batch_size=c.batch_size,
            )
        return self._reranker

    # ------------------------------------------------------------------ builders
    def _write_run(self, run, stage: str, tag: str | None = None) -> None:
        from ..data.runs import write_trec_run

        write_trec_run(run, self.artifacts[stage].path, tag=tag or f"pyserini-llama-{stage}")

    def _read_run(self, stage: str):
        from ..data.runs import read_run

        return read_run(self.artifacts[stage].path)

    def _build_lucene(self) -> None:
        from ..search.lucene import build_lucene_index

        index = self.artifacts["bm25"].inputs[0]
        build_lucene_index(self.config.dataset, index.path, threads=self.config.threads)

    def _build_faiss(self) -> None:
        from ..data.corpus import iter_corpus
        from ..encode import encode_corpus

        index = self.artifacts["repllama"].inputs[0]
        encode_corpus(
            self.encoder,
            list(iter_corpus(self.config.dataset)),
            index.path,
            to_faiss=True,
            batch_size=self.config.batch_size,
            max_length=self.config.passage_max_length,
        )

    def _build_bm25(self) -> None:
        from ..search.multistage import BM25Stage

        c = self.config
        index = self.artifacts["bm25"].inputs[0].path
        stage = BM25Stage(index, k1=c.k1, b=c.b, threads=c.threads, remove_query=c.remove_query)
        self._write_run(stage.batch_search(self.queries, c.hits), "bm25")

    def _build_repllama(self) -> None:
        from ..cache import discard_work, work_dir_for
        from ..search.multistage import RepLLaMAStage

        c = self.config
        index = self.artifacts["repllama"].inputs[0].path
        work_dir = work_dir_for(self.artifacts["repllama"].path)  # encoded queries: a killed run resumes
        stage = RepLLaMAStage(
            index,
            self.encoder,
            threads=c.threads,
            batch_size=c.batch_size,
            remove_query=c.remove_query,
            work_dir=work_dir,
        )
        self._write_run(stage.batch_search(self.queries, c.hits), "repllama")
        discard_work(work_dir)

    def _build_hybrid(self) -> None:
        from ..search.multistage import fuse_runs

        c = self.config
        runs = [self._read_run("bm25"), self._read_run("repllama")]
        self._write_run(fuse_runs(runs, c.fusion, alpha=c.alpha, rrf_k=c.rrf_k, k=c.hits), "hybrid")

    def _build_rankllama(self, key: str = "rankllama") -> None:
        from ..data.corpus import read_corpus
        from ..search.multistage import MultiStageSearcher, RunStage

        twin = self._pure_twin(key)
        if twin is not None:
            logger.info("copying %s: the same pure reranking (only --rerank-interpolate was switched on or off)", twin)
            atomic_write(self.artifacts[key].path, lambda f: f.write(twin.read_bytes()), binary=True)
            return
        c = self.config
        first = RunStage(self._read_run(rerank_source(self.stages)))
        searcher = MultiStageSearcher(
            first,
            self.reranker,
            documents=read_corpus(self.config.dataset),
            rerank_depth=c.rerank_depth,
            show_progress=True,
        )
        self._write_run(searcher.batch_search(self.queries, c.hits), key, tag="pyserini-llama-rankllama")

    def _build_interpolated(self) -> None:
        from ..data.score_fusion import interpolate_runs

        c = self.config
        first, pure = self._read_run(rerank_source(self.stages)), self._read_run(PURE)
        mixed = interpolate_runs(first, pure, c.rerank_interpolate, c.rerank_depth, c.rerank_interpolate_norm)
        self._write_run(mixed, "rankllama", tag="pyserini-llama-rankllama-interpolated")

    # ------------------------------------------------------------------ run
    def describe(self) -> str:
        c = self.config
        lines = [
            f"dataset    {c.dataset} (split {c.split}: {len(self.queries)} queries) -> {self.out}",
            f"stages     {', '.join(self.stages)}; {c.hits} hits per query"
            + ("; hits whose docid equals the query id are dropped" if c.remove_query else ""),
        ]
        if "bm25" in self.stages:
            lines.append(f"bm25       k1 {c.k1}, b {c.b}")
        if "repllama" in self.stages:
            lines.append(
                f"retriever  {c.retriever}: query {c.query_max_length} / passage {c.passage_max_length} tokens"
            )
        if "hybrid" in self.stages:
            how = f"rrf k {c.rrf_k}" if c.fusion == "rrf" else f"interpolation, alpha {c.alpha} on bm25"
            lines.append(f"hybrid     pyserini.fusion {how}")
        if "rankllama" in self.stages:
            lines.append(
                f"reranker   {c.reranker}: top {c.rerank_depth} of {rerank_source(self.stages)}, "
                f"query {c.reranker_query_max_length} / pair {c.reranker_max_length} tokens"
            )
            if c.rerank_interpolate is not None:
                w = c.rerank_interpolate
                lines.append(
                    f"interpolate {w:g} * rankllama + {1 - w:g} * {rerank_source(self.stages)} "
                    f"({c.rerank_interpolate_norm} per query over the top {c.rerank_depth}); "
                    f"the pure reranking is run.{PURE}.trec"
                )
        lines.append(f"precision  {c.precision} on {c.device}, batch size {c.batch_size}, {c.threads} thread(s)")
        return "\n".join(lines)

    def run(self) -> dict[str, dict[str, float]]:
        """Build what is out of date, then evaluate every stage's run; writes and returns the metrics."""
        from ..eval import evaluate_run

        # Load the models that will be needed now, so a wrong model name fails before hours of indexing.
        if "repllama" in self.artifacts and not self.artifacts["repllama"].is_current():
            _ = self.encoder
        if self.needs_reranker():
            _ = self.reranker
        metrics = {}
        for stage in self.stages:
            if stage == "rankllama" and PURE in self.artifacts:  # pure and interpolated side by side
                self.artifacts[PURE].ensure()
                metrics["rankllama (pure)"] = evaluate_run(
                    self.qrels, self._read_run(PURE), list(METRICS), complete=True
                )
            self.artifacts[stage].ensure()
            # complete=True is trec_eval -c, Pyserini's BEIR convention: a judged query without hits scores 0.
            metrics[stage] = evaluate_run(self.qrels, self._read_run(stage), list(METRICS), complete=True)
        write_json_atomic(
            {
                "dataset": str(self.config.dataset),
                "split": self.config.split,
                "metrics": metrics,
                "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(self.config).items()}
                | {"stages": self.stages, "dtype": self.config.precision},
            },
            self.out / "metrics.json",
        )
        return metrics


def format_table(metrics: dict[str, dict[str, float]]) -> str:
    """Stages as rows, metrics as columns, four decimals."""
    names = list(next(iter(metrics.values()))) if metrics else list(METRICS)
    width = max([len("stage"), *map(len, metrics)])
    rows = [f"{'stage':<{width}}  " + "  ".join(f"{n:>11}" for n in names)]
    rows += [
        f"{stage:<{width}}  " + "  ".join(f"{values[n]:>11.4f}" for n in names) for stage, values in metrics.items()
    ]
    return "\n".join(rows)


def run_pipeline(config: PipelineConfig) -> dict[str, dict[str, float]]:
    """Run (or reuse) every stage of ``config`` and return ``{stage: {metric: value}}``."""
    return Pipeline(config).run()

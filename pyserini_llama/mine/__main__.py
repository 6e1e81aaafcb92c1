"""``python -m pyserini_llama.mine``: hard negatives from BM25, RepLLaMA or run files -> Tevatron training JSON lines."""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from pathlib import Path

from ..cli_options import (
    add_bm25_options,
    add_model_options,
    add_repllama_length_options,
    command_parser,
    model_dtype,
    model_options,
)
from ..defaults import ENCODE_BATCH_SIZE, MINE_DEPTH
from ..errors import PyseriniLlamaError, run_cli

logger = logging.getLogger("pyserini_llama.mine")

EPILOG = """examples:
  # RepLLaMA training groups from SciFact's train split, BM25 negatives (the Lucene index is cached):
  python -m pyserini_llama.mine --dataset ../shared/data/beir/scifact --split train \\
      --first-stage bm25 --depth 200 --negatives 15 --index-dir indexes/scifact --output train.bm25.jsonl

  # the paper's blend for RepLLaMA: BM25 and a dense retriever, interleaved rank by rank:
  python -m pyserini_llama.mine --dataset ../shared/data/beir/scifact --split train \\
      --first-stage bm25 --first-stage repllama --retriever castorini/repllama-v1-7b-lora-passage \\
      --device cuda --dtype bfloat16 --batch-size 64 --index-dir indexes/scifact --output train.blend.jsonl

  # RankLLaMA's recipe: negatives sampled from RepLLaMA's top 200, from a (fine-tuned) RepLLaMA ...
  python -m pyserini_llama.mine --dataset ../shared/data/beir/scifact --split train \\
      --first-stage repllama --retriever models/repllama-scifact --depth 200 --output train.rankllama.jsonl
  # ... or from any TREC / MS MARCO run of the split's queries (e.g. python -m pyserini_llama.search.faiss):
  python -m pyserini_llama.mine --dataset ../shared/data/beir/scifact --split train \\
      --first-stage runs/scifact-train.repllama.trec --depth 200 --output train.rankllama.jsonl

Output: one line per query, {"query_id", "query", "positive_passages": [{"docid", "title", "text"}],
"negative_passages": [...]} (Tevatron's format). Positives: judgements >= --relevance-level.
Never negatives: documents judged relevant at any grade, the query's own docid (unless
--keep-query-hits), each stage's top --skip-top. Queries with fewer than --min-positives positives
or --min-negatives negatives are skipped and counted in the summary. Several --first-stage blend:
their top --depth lists are interleaved rank by rank into one pool (each stage gives the same depth),
from which --negatives are drawn with a generator seeded by --seed and the query id."""

STAGE_NAMES = ("bm25", "repllama")


def build_parser() -> argparse.ArgumentParser:
    from ..teacher import add_teacher_options

    p = command_parser(
        "python -m pyserini_llama.mine",
        "Mine hard negatives for training RepLLaMA / RankLLaMA; writes Tevatron's JSON-lines format.",
        EPILOG,
    )
    p.add_argument("--dataset", required=True, help="BEIR dataset dir: corpus.jsonl, queries.jsonl, qrels/<split>.tsv")
    p.add_argument("--split", default="train", help="qrels split whose queries are mined (default: train)")
    p.add_argument("--qrels", default=None, help="qrels file instead of the dataset's qrels/<split>.tsv")
    p.add_argument("--topics", default=None, help="queries (file or Pyserini topic name) instead of queries.jsonl")
    p.add_argument("--topics-dir", default=None, help="directory of topics/qrels files for names")
    p.add_argument("--corpus", default=None, help="corpus (file, dir or Lucene index) instead of the dataset's")
    p.add_argument(
        "--first-stage",
        action="append",
        required=True,
        metavar="bm25|repllama|RUN_FILE",
        help="where candidates come from; repeat to blend several (e.g. bm25 and repllama)",
    )
    p.add_argument("--retriever", default=None, help="RepLLaMA model for --first-stage repllama")
    p.add_argument("--output", required=True, help="training file to write (JSON lines)")
    p.add_argument(
        "--depth",
        type=int,
        default=MINE_DEPTH,
        help=f"candidates: top hits of each first stage (default: {MINE_DEPTH})",
    )
    p.add_argument("--negatives", type=int, default=15, help="negatives sampled per query (default: 15)")
    p.add_argument("--seed", type=int, default=42, help="sampling seed (default: 42)")
    p.add_argument("--skip-top", type=int, default=0, help="never take each stage's top N as negatives (default: 0)")
    p.add_argument("--min-positives", type=int, default=1, help="skip queries with fewer positives (default: 1)")
    p.add_argument("--min-negatives", type=int, default=1, help="skip queries with fewer negatives (default: 1)")
    p.add_argument("--relevance-level", type=int, default=1, help="lowest grade that is a positive (default: 1)")
    p.add_argument("--keep-query-hits", action="store_true", help="allow the query's own docid as a negative")
    p.add_argument(
        "--drop-positive-title",
        action="store_true",
        help="write positives without their title (for title pseudo-queries: python -m pyserini_llama.mine.pseudo_queries)",
    )
    add_teacher_options(p, norm_flags=("--teacher-normalise",))
    p.add_argument("--index-dir", default=None, help="cache the Lucene/FAISS indexes here (default: a temp dir)")
    p.add_argument("--threads", type=int, default=1, help="indexing and search threads (default: 1)")
    p.add_argument(
        "--batch-size",
        type=int,
        default=ENCODE_BATCH_SIZE,
        help=f"RepLLaMA texts per batch (default: {ENCODE_BATCH_SIZE})",
    )
    add_repllama_length_options(p)
    add_bm25_options(p)
    p.add_argument("--skip-bad-lines", action="store_true", help="skip (and count) malformed run-file lines")
    add_model_options(p)
    return p


def read_inputs(args: argparse.Namespace):
    """(queries, qrels) of the split, or of --topics / --qrels when given."""
    from ..data.qrels import read_qrels
    from ..data.queries import read_beir_split, read_queries

    if args.qrels is None and args.topics is None:
        return read_beir_split(args.dataset, args.split)
    if args.qrels is not None:
        qrels = read_qrels(args.qrels, topics_dir=args.topics_dir)
    else:
        qrels = read_beir_split(args.dataset, args.split)[1]
    all_queries = read_queries(args.topics or args.dataset, topics_dir=args.topics_dir)
    missing = sum(qid not in all_queries for qid in qrels)
    if missing:
        logger.warning("%d judged queries have no text; they are left out", missing)
    return {qid: text for qid, text in all_queries.items() if qid in qrels}, qrels


def check_stage_specs(args: argparse.Namespace) -> None:
    """Fail on a bad --first-stage before anything slow starts."""
    seen = set()
    for spec in args.first_stage:
        key = spec.lower() if spec.lower() in STAGE_NAMES else str(Path(spec).resolve())
        if key in seen:
            raise PyseriniLlamaError(f"--first-stage {spec} is given twice")
        seen.add(key)
        if key == "repllama" and not args.retriever:
            raise PyseriniLlamaError("--first-stage repllama needs --retriever MODEL")
        if key not in STAGE_NAMES and not Path(spec).is_file():
            raise PyseriniLlamaError(f"--first-stage {spec}: not bm25, repllama or an existing run file")


def open_stage(spec: str, args: argparse.Namespace, corpus: str, index_dir: Path, read: dict | None = None):
    """A first stage for one --first-stage value; indexes are built in (or reused from) ``index_dir``.

    ``read``: runs already read, by resolved path (the --teacher runs), so a file that is both is read once.
    """
    from ..data.lucene_store import is_lucene_index
    from ..search.multistage import BM25Stage, RepLLaMAStage, RunStage

    if spec.lower() == "bm25":
        if is_lucene_index(corpus):
            return BM25Stage(corpus, k1=args.k1, b=args.b, threads=args.threads)
        from ..search.lucene import build_lucene_index

        index = build_lucene_index(corpus, index_dir / "bm25.lucene", threads=args.threads)
        return BM25Stage(index, k1=args.k1, b=args.b, threads=args.threads)
    if spec.lower() == "repllama":
        from ..encoders.repllama import RepLLaMAEncoder

        encoder = RepLLaMAEncoder(
            args.retriever,
            **model_options(args),
            query_max_length=args.query_max_length,
            passage_max_length=args.passage_max_length,
            batch_size=args.batch_size,
        )
        index = repllama_index(encoder, args, corpus, index_dir)
        return RepLLaMAStage(index, encoder, threads=args.threads, batch_size=args.batch_size)
    from ..data.runs import read_run

    run = (read or {}).get(Path(spec).resolve())  # read strictly, so the same as with --skip-bad-lines
    return RunStage(run if run is not None else read_run(spec, skip_bad_lines=args.skip_bad_lines))


def repllama_index(encoder, args: argparse.Namespace, corpus: str, index_dir: Path) -> Path:
    """The retriever's flat FAISS index of ``corpus``, reused while its manifest (corpus, model, settings) matches."""
    from ..cache import Artifact, file_fingerprint, model_fingerprint, model_slug
    from ..data.corpus import corpus_files, iter_corpus
    from ..encode import encode_corpus

    path = index_dir / f"repllama.{model_slug(args.retriever)}"
    params = {
        "corpus": [file_fingerprint(f) for f in corpus_files(corpus)],
        "model": model_fingerprint(args.retriever),
        "dtype": model_dtype(args),
        "passage_max_length": args.passage_max_length,
        "fields": ["title", "text"],
    }

    def build() -> None:
        encode_corpus(
            encoder,
            list(iter_corpus(corpus)),
            path,
            to_faiss=True,
            batch_size=args.batch_size,
            max_length=args.passage_max_length,
        )

    Artifact(path.name, path, params, build).ensure()
    return path


def main(argv: list[str] | None = None) -> int:
    from ..data.corpus import open_document_store
    from . import MiningOptions, mine_hard_negatives, queries_with_positives

    args = build_parser().parse_args(argv)
    started = time.perf_counter()
    options = MiningOptions(
        depth=args.depth,
        negatives=args.negatives,
        seed=args.seed,
        skip_top=args.skip_top,
        min_positives=args.min_positives,
        min_negatives=args.min_negatives,
        relevance_level=args.relevance_level,
        remove_query=not args.keep_query_hits,
        drop_positive_title=args.drop_positive_title,
    )
    if args.threads < 1 or args.batch_size < 1:
        raise PyseriniLlamaError("--threads and --batch-size must be at least 1")
    check_stage_specs(args)
    queries, qrels = read_inputs(args)
    if not queries:
        raise PyseriniLlamaError(f"{args.dataset}: no judged query of split {args.split} has text")
    queries_with_positives(queries, qrels, options.relevance_level)  # fail now, not after indexing
    annotate, teacher_stats, read = None, None, {}
    if args.teacher:
        from functools import partial

        from ..data.score_fusion import parse_weighted
        from ..teacher import TeacherStats, annotate_example, load_teacher

        teacher_stats = TeacherStats()
        teacher = load_teacher(args.teacher, args.teacher_normalise)
        read = {Path(parse_weighted(s)[0]).resolve(): run for s, run in zip(args.teacher, teacher.runs, strict=True)}
        annotate = partial(
            annotate_example, scorer=teacher, stats=teacher_stats, uncovered_positive=args.uncovered_positive
        )
    corpus = args.corpus or args.dataset
    documents = open_document_store(corpus)
    with tempfile.TemporaryDirectory(prefix="pyserini-llama-mine-") as scratch:
        index_dir = Path(args.index_dir or scratch)
        stages = [open_stage(spec, args, corpus, index_dir, read) for spec in args.first_stage]
        stats = mine_hard_negatives(
            queries,
            qrels,
            stages,
            documents,
            args.output,
            options,
            stage_names=args.first_stage,
            annotate=annotate,
        )
    print(stats.summary())
    if teacher_stats is not None:
        print(teacher_stats.summary())
    print(f"wrote {args.output} in {time.perf_counter() - started:.1f} s")
    return 0


def cli() -> None:
    run_cli(main)


if __name__ == "__main__":
    cli()

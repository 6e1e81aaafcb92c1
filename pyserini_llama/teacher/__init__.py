"""Teacher scores for training groups: Tevatron's distillation format, from fused run files.

Tevatron v2 distils a retriever from a ``"score"`` on every passage of a training group
(``tevatron.retriever.driver.train_distil``). Any ranking model can be the teacher here, because a
teacher is just one or more run files over the training queries (BM25, all-MiniLM-L6-v2 through
Pyserini's own ``encode`` / ``search.faiss``, RepLLaMA, a RankLLaMA-7B run made on a GPU ...):
their scores are normalised per query, weighted and summed (:class:`~pyserini_llama.data.score_fusion.FusedScorer`).

A negative no teacher returned for its query gets each teacher's floor for that query (0 under
``minmax``, the list's lowest z-score under ``zscore``): it ranks with the teacher's last hit, never
above anything the teacher found. A judged **positive** no teacher returned gets, by default, the
highest teacher score of its query's passages (``uncovered_positive="max"``): the judgement says it is
relevant, and the teacher's silence (it was beyond the run's depth) must not teach the student to
bury it; ``"floor"`` treats it like a negative. NFCorpus needs this: its train queries have about 40
judged documents each and 29% of the mined positives are in neither the BM25 nor the MiniLM top 1000.
Uncovered passages are counted, so a teacher run that does not cover the training pool (too
shallow, other queries) is noticed; make teacher runs at least as deep as the mining pool. A query that no teacher run holds at all is an error: its scores would all be
equal and teach nothing.

The annotated file is the input file with ``"score"`` added to each passage and nothing else
changed, so every reader of Tevatron's format, ours included, still reads it.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from ..atomic import write_jsonl_atomic
from ..data._lines import BadLines, iter_lines
from ..data.runs import Run
from ..data.score_fusion import FusedScorer
from ..errors import InputFormatError, PyseriniLlamaError

logger = logging.getLogger(__name__)

PASSAGE_KEYS = ("positive_passages", "negative_passages")


@dataclass
class TeacherStats:
    """What an annotation pass did."""

    queries: int = 0
    passages: int = 0
    uncovered_passages: int = 0  # returned by no teacher run: floor score
    uncovered_positives: int = 0

    def summary(self) -> str:
        share = self.uncovered_passages / self.passages if self.passages else 0.0
        return (
            f"annotated {self.passages} passages of {self.queries} queries; {self.uncovered_passages} "
            f"({share:.1%}) were in no teacher run: {self.uncovered_positives} positives (scored as set by "
            f"--uncovered-positive) and {self.uncovered_passages - self.uncovered_positives} negatives (the floor)"
        )


UNCOVERED_POSITIVE = ("max", "floor")


def add_teacher_options(
    parser,
    flag: str = "--teacher",
    *,
    required: bool = False,
    norm_flags: Sequence[str] = ("--normalise", "--normalize"),
):
    """The teacher flags of ``python -m pyserini_llama.teacher`` and ``mine``: one spelling, one help text."""
    from ..data.score_fusion import NORMALISATIONS

    parser.add_argument(
        flag,
        action="append",
        required=required,
        default=None,
        metavar="RUN[:WEIGHT]",
        help="teacher run (TREC or MS MARCO) over the training queries; repeat to fuse (weight 1 if not given)",
    )
    parser.add_argument(*norm_flags, choices=NORMALISATIONS, default="minmax", help="per-query normalisation (minmax)")
    parser.add_argument(
        "--uncovered-positive",
        choices=UNCOVERED_POSITIVE,
        default="max",
        help="score of a judged positive no teacher returned: its query's highest teacher score (max, default) "
        "or the teachers' floor, like a negative",
    )


def load_teacher(specs: Sequence[str], method: str = "minmax") -> FusedScorer:
    """``RUN[:WEIGHT]`` specs -> the fused teacher (runs read here, bad lines named by file and line)."""
    from ..data.runs import read_run
    from ..data.score_fusion import parse_weighted

    parsed = [parse_weighted(spec) for spec in specs]
    return FusedScorer([read_run(path) for path, _ in parsed], [weight for _, weight in parsed], method)


def annotate_example(
    example: dict, scorer: FusedScorer, stats: TeacherStats | None = None, uncovered_positive: str = "max"
) -> dict:
    """``example`` (a Tevatron training line, parsed) with a teacher ``"score"`` on every passage."""
    if uncovered_positive not in UNCOVERED_POSITIVE:
        raise PyseriniLlamaError(f"uncovered_positive must be one of {', '.join(UNCOVERED_POSITIVE)}")
    qid = str(example["query_id"])
    if not any(qid in run for run in scorer.runs):
        raise PyseriniLlamaError(f"query {qid} is in no teacher run: its passages would all score the same")
    docids = {key: [str(item.get("docid", "")) for item in example[key]] for key in PASSAGE_KEYS}
    scored = {
        key: [(item, scorer.covered(qid, d), scorer.score(qid, d)) for item, d in zip(example[key], docids[key], strict=True)]
        for key in PASSAGE_KEYS
    }  # fmt: skip
    top = max(score for key in PASSAGE_KEYS for _, _, score in scored[key])
    out = dict(example)
    for key in PASSAGE_KEYS:
        passages = []
        for item, covered, score in scored[key]:
            if stats is not None:
                stats.passages += 1
                stats.uncovered_passages += not covered
                stats.uncovered_positives += (not covered) and key == "positive_passages"
            if not covered and key == "positive_passages" and uncovered_positive == "max":
                score = top
            passages.append({**item, "score": score})
        out[key] = passages
    if stats is not None:
        stats.queries += 1
    return out


def annotated_lines(
    path: str | os.PathLike, scorer: FusedScorer, stats: TeacherStats | None = None, uncovered_positive: str = "max"
) -> Iterator[dict]:
    """Every line of a Tevatron training file, annotated; a bad line raises naming the file and line."""
    from ..training.dataset import parse_train_object

    bad = BadLines(path, False)
    for number, text in iter_lines(path, bad):
        try:
            example = json.loads(text)
            parse_train_object(example)  # the trainer's own check, so an annotated file always trains
            yield annotate_example(example, scorer, stats, uncovered_positive)
        except json.JSONDecodeError as exc:
            raise InputFormatError(path, number, f"not valid JSON ({exc.msg} at column {exc.colno})") from None
        except (ValueError, PyseriniLlamaError) as exc:
            raise InputFormatError(path, number, str(exc)) from None


def annotate_file(
    train: str | os.PathLike,
    output: str | os.PathLike,
    runs: Sequence[Run],
    weights: Sequence[float] | None = None,
    method: str = "minmax",
    uncovered_positive: str = "max",
) -> TeacherStats:
    """Write ``train`` with teacher scores to ``output`` (atomically: nothing is replaced on an error)."""
    return annotate_with(train, output, FusedScorer(runs, weights, method), uncovered_positive)


def annotate_with(
    train: str | os.PathLike, output: str | os.PathLike, scorer: FusedScorer, uncovered_positive: str = "max"
) -> TeacherStats:
    """:func:`annotate_file` with a teacher already fused (:func:`load_teacher`)."""
    stats = TeacherStats()
    write_jsonl_atomic(annotated_lines(train, scorer, stats, uncovered_positive), output)
    return stats

"""RankLLaMA: a LLaMA pointwise reranker. One forward pass per (query, document) pair, one logit out.

Faithful to the castorini model card (``castorini/rankllama-v1-7b-lora-passage``)::

    inputs = tokenizer(f"query: {query}", f"document: {title} {passage}", return_tensors="pt")
    score = model(**inputs).logits[0][0]

i.e. the tokenizer's own *pair* encoding (``<s> query <s> document`` for Llama-2) and the raw
logit of a one-label ``AutoModelForSequenceClassification`` read at the last real token.

Lengths. The query is cut to ``query_max_length`` tokens (``"query: "`` included, as the
reference code does); the document fills the rest of ``max_length`` and is the only side cut to
fit (Hugging Face's ``truncation="only_second"``, Tevatron v2's tail truncation). Training builds
its pairs with this same :meth:`RankLLaMAReranker.encode_pairs` and records the two lengths in the model's
``input_format.json``; a model loaded by name is served at them unless the caller says otherwise. Without
a record the defaults are 32 / 196, the paper's inference lengths (query 32 + passage 164). Tevatron's legacy example
instead capped the document at 161 tokens whatever the query length; for MS MARCO passages the
two rarely differ.

EOS. The released checkpoints were trained without a final EOS (the legacy code notes that adding
it overflowed in fp16), and the card adds none, so ``append_eos=False`` is the default. Tevatron
v2 makes it a flag (``append_eos_token``): with ``append_eos=True`` the pair is cut to
``max_length - 1`` tokens and EOS is appended, for checkpoints trained that way.

Batching only changes speed: pairs are sorted by length, grouped into batches of at most
``batch_size`` rows and ``max_batch_tokens`` padded tokens (a 4096-token pair runs alone or
nearly so instead of exhausting memory), padded on the right with a pad id that
is not EOS (``config.pad_token_id`` is set to the same id), scored, and returned in input order.
The logit is read at each row's last *attended* position, found from the attention mask rather
than by searching for the pad id, so a real token that happens to equal the pad id (an unknown
character when pad is unk) cannot shift the read-out.

Segments (``segments=Segmenter(...)``, ``modeling/segments.py``): each document is scored as
windows of its body, each window its own pair with the query, and the document gets the best
window's score (MaxP) or the first window's (FirstP). Every scoring entry point honours it.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..data.document import as_document
from ..data.runs import Run
from ..defaults import RERANK_BATCH_SIZE, RERANK_DEPTH
from ..errors import ModelLoadError, PyseriniLlamaError
from ..modeling.formatting import DOCUMENT_PREFIX, QUERY_PREFIX, apply_case, format_document, format_query
from ..modeling.segments import Segmenter
from ..modeling.tokens import (
    DEFAULT_MAX_BATCH_TOKENS,
    choose_pad_id,
    last_token_hidden,
    pad_right,
    token_budget_batches,
)
from ..precision import load_for_inference
from ..precision.int8 import calibration_sample

logger = logging.getLogger(__name__)

#: How many pairs ``rerank_run`` tokenizes and scores at once: enough for full, length-sorted
#: batches across queries, small enough that the token ids of a 1000-deep run stay in memory.
PAIRS_PER_CHUNK = 4096


@dataclass(frozen=True)
class PairTemplate:
    """Where the tokenizer puts special tokens around a pair: ``prefix A middle B suffix``.

    Learnt once by encoding a probe pair, so any tokenizer's pair template is reproduced exactly
    (``<s> A <s> B`` for Llama-2, plain ``A B`` for GPT-2-style byte-level BPE).
    """

    prefix: tuple[int, ...]
    middle: tuple[int, ...]
    suffix: tuple[int, ...]

    @property
    def size(self) -> int:
        return len(self.prefix) + len(self.middle) + len(self.suffix)

    @classmethod
    def of(cls, tokenizer) -> PairTemplate:
        first, second = "probe", "check"
        a = tokenizer(first, add_special_tokens=False)["input_ids"]
        b = tokenizer(second, add_special_tokens=False)["input_ids"]
        full = list(tokenizer(first, second, add_special_tokens=True)["input_ids"])
        i = _find(full, a, 0)
        j = _find(full, b, i + len(a)) if i >= 0 else -1
        if j < 0:
            raise ModelLoadError("cannot learn the tokenizer's pair template (query/document encoding)")
        return cls(tuple(full[:i]), tuple(full[i + len(a) : j]), tuple(full[j + len(b) :]))


def _find(haystack: list[int], needle: list[int], start: int) -> int:
    for i in range(start, len(haystack) - len(needle) + 1):
        if haystack[i : i + len(needle)] == list(needle):
            return i
    return -1


class RankLLaMAReranker:
    """Score and rerank documents for a query with a RankLLaMA checkpoint.

    ``model`` is anything :func:`~pyserini_llama.modeling.loading.load_backbone` accepts: a
    LLaMA-family HF directory or hub id, a PEFT ``SEQ_CLS`` adapter (LoRA + trained ``score``
    head, merged), a GGUF file, or ``smollm2-135m-instruct``. A base model without a trained head
    gets a random one (fine for plumbing tests, meaningless scores).

    Example::

        reranker = RankLLaMAReranker("castorini/rankllama-v1-7b-lora-passage", dtype="bfloat16", device="cuda")
        reranker.score("what is a lobster roll", [{"title": "Lobster roll", "text": "A lobster roll is ..."}])
        reranker.rerank("what is a lobster roll", [("d1", "A lobster roll is ..."), ("d2", "Pandas ...")])
    """

    def __init__(
        self,
        model,
        *,
        base_model: str | None = None,
        tokenizer=None,
        dtype: str = "float32",
        device: str | None = None,
        query_max_length: int | None = None,
        max_length: int | None = None,
        batch_size: int = RERANK_BATCH_SIZE,
        max_batch_tokens: int = DEFAULT_MAX_BATCH_TOKENS,
        append_eos: bool = False,
        query_prefix: str = QUERY_PREFIX,
        document_prefix: str = DOCUMENT_PREFIX,
        segments: Segmenter | None = None,
        text_case: str | None = None,
    ):
        """``model``: a name :func:`load_backbone` accepts, or an already loaded classifier (then pass
        the tokenizer object as ``tokenizer``; its ``config.pad_token_id`` is set as loading does).

        ``text_case``: the case rule of ``modeling/formatting.py``; by default the one the model
        records (``input_format.json``, written by training), else ``as-is``.

        ``query_max_length`` (query tokens) and ``max_length`` (the whole pair): by default the lengths the
        model was trained with, as training records them in ``input_format.json``; else 32 / 196.

        ``dtype``: an inference precision (``pyserini_llama.precision``): float32, bfloat16, float16, int8
        (CPU; quantised on the first pairs it is given, see :meth:`calibrate`; the score head stays fp32)
        or auto (measured).

        ``batch_size`` caps the rows of a batch, ``max_batch_tokens`` its padded size (rows x
        longest); a pair longer than the budget is scored on its own. ``segments``: score
        documents as FirstP/MaxP over word windows of their body (None: whole documents)."""
        self.int8 = None  # precision.int8.Int8Quantizer for an int8 reranker
        loaded_by_name = isinstance(model, str | os.PathLike)
        if loaded_by_name:
            name = str(model)
            loaded = load_for_inference(
                name,
                "classification",
                precision=dtype,
                device=device or "cpu",
                base_model=base_model,
                tokenizer_name=tokenizer,
            )
            model, tokenizer, self.precision, self.int8 = loaded.model, loaded.tokenizer, loaded.precision, loaded.int8
            source = loaded.source
        else:
            if tokenizer is None or isinstance(tokenizer, str | os.PathLike):
                raise ValueError("with an already loaded model, pass its tokenizer object as tokenizer=")
            name = getattr(model.config, "_name_or_path", "in-memory model")
            model.config.pad_token_id = choose_pad_id(tokenizer)
            self.precision = str(next(model.parameters()).dtype).removeprefix("torch.")
        device = device or str(next(model.parameters()).device)
        if not hasattr(model, "score") or not hasattr(model, "base_model"):
            raise ModelLoadError(f"{name}: not a sequence-classification model with a `score` head")
        if append_eos and tokenizer.eos_token_id is None:
            raise ModelLoadError(f"{name}: append_eos needs a tokenizer with an EOS token")
        self.model, self.tokenizer, self.name, self.device = model, tokenizer, name, device
        self.template = PairTemplate.of(tokenizer)
        self.pad_id = int(model.config.pad_token_id)
        from ..modeling.loading import read_input_format, serving_lengths

        record = read_input_format(source) if loaded_by_name else {}  # the source just loaded: no second look-up
        self.query_max_length, self.max_length = serving_lengths(record, query_max_length, max_length)
        if batch_size < 1 or max_batch_tokens < 1:
            raise ValueError("batch_size and max_batch_tokens must be at least 1")
        self.batch_size = batch_size
        self.max_batch_tokens = max_batch_tokens
        self.segments = segments
        self.append_eos = append_eos
        self.query_prefix = query_prefix
        self.document_prefix = document_prefix
        if text_case is None:
            text_case = record.get("text_case", "as-is")
        apply_case("", text_case)  # an unknown rule fails here, not at the first pair
        self.text_case = text_case
        if self.max_length - self.query_max_length - self.template.size - int(append_eos) < 1:
            raise ValueError(
                f"max_length {self.max_length} leaves no room for the document after a query of up to "
                f"{self.query_max_length} tokens"
            )

    @classmethod
    def from_model(cls, model, tokenizer, **kwargs) -> RankLLaMAReranker:
        """Wrap an already loaded classifier (e.g. during training) without reloading weights."""
        return cls(model, tokenizer=tokenizer, **kwargs)

    # ----------------------------------------------------------------------------- tokens
    def format_pairs(self, pairs: Sequence[tuple[str, Any]]) -> tuple[list[str], list[str]]:
        """``(query texts, document texts)`` exactly as scored: prefixes and the case rule applied."""
        queries = [format_query(apply_case(q, self.text_case), self.query_prefix) for q, _ in pairs]
        documents = [format_document(as_document(d), self.document_prefix, self.text_case) for _, d in pairs]
        return queries, documents

    def encode_pairs(self, queries: Sequence[str], documents: Sequence[str]) -> list[list[int]]:
        """Token ids of formatted (query, document) text pairs, as the tokenizer's pair encoding.

        Equals ``tokenizer(q, d)["input_ids"]`` whenever nothing needs cutting; otherwise the query
        keeps its first ``query_max_length`` tokens and the document is cut to fit ``max_length``.
        """
        t = self.template
        eos = [self.tokenizer.eos_token_id] if self.append_eos else []
        q_ids = self._tokenize(queries, self.query_max_length)
        budget = self.max_length - t.size - len(eos)
        # Tokenize documents once with the largest room any pair can have, then cut per pair.
        d_ids = self._tokenize(documents, budget - min((len(q) for q in q_ids), default=0))
        return [
            [*t.prefix, *q, *t.middle, *d[: budget - len(q)], *t.suffix, *eos]
            for q, d in zip(q_ids, d_ids, strict=True)
        ]

    def _tokenize(self, texts: Sequence[str], max_length: int) -> list[list[int]]:
        if not texts:
            return []
        unique = list(dict.fromkeys(texts))  # a query repeats once per candidate: tokenize it once
        ids = self.tokenizer(unique, add_special_tokens=False, truncation=True, max_length=max_length)["input_ids"]
        lookup = dict(zip(unique, ids, strict=True))
        return [lookup[text] for text in texts]

    def calibrate(self, pairs: Sequence[tuple[str, Any]]) -> None:
        """Quantise an int8 reranker, calibrated on a sample of (query, document) ``pairs`` (segment pairs
        with ``segments``); a no-op for other precisions and once done.

        Every scoring entry point calls this with everything it is about to score before any forward
        pass (:meth:`rerank_run` with the whole run), so the quantised model depends on the input alone.
        """
        if self.int8 is None or self.int8.done or not pairs:
            return
        sample = calibration_sample(list(pairs))
        if self.segments is not None:
            windows, counts = self.segments.expand([d for _, d in sample])
            owners = [q for (q, _), n in zip(sample, counts, strict=True) for _ in range(n)]
            sample = calibration_sample(list(zip(owners, windows, strict=True)))
        self.int8.calibrate(
            self.encode_pairs(
                *self.format_pairs(sample),
            )
        )

    # ----------------------------------------------------------------------------- scoring
    def score(
        self, query: str, documents: Sequence[Any], *, batch_size: int | None = None, show_progress: bool = False
    ) -> np.ndarray:
        """Raw RankLLaMA logits (float32, higher = more relevant), one per document, in input order.

        Documents: ``Document``-like objects (``.text``, ``.title``, ``.url``), dicts with those keys, or
        plain texts (``data.document.as_document``).
        """
        return self.score_pairs([(query, d) for d in documents], batch_size=batch_size, show_progress=show_progress)

    def score_pairs(
        self,
        pairs: Sequence[tuple[str, Any]],
        *,
        batch_size: int | None = None,
        show_progress: bool = False,
        progress=None,
    ) -> np.ndarray:
        """Like :meth:`score` for (query, document) pairs of any queries: batches mix queries.

        ``progress``: an open tqdm bar to advance per batch instead of a new one (used by :meth:`rerank_run`).
        With ``segments`` set, each pair is scored as its segment pairs and aggregated.
        """
        self.calibrate(pairs)
        if self.segments is not None and pairs:
            queries = [q for q, _ in pairs]
            segments, counts = self.segments.expand([d for _, d in pairs])
            owners = [q for q, n in zip(queries, counts, strict=True) for _ in range(n)]
            # An outer bar counts documents, not segments: advance it once the whole list is scored.
            own_bar = show_progress and progress is None
            scores = self._score_pairs(list(zip(owners, segments, strict=True)), batch_size, own_bar, None)
            if progress is not None:
                progress.update(len(pairs))
            return self.segments.reduce(scores, counts)
        return self._score_pairs(pairs, batch_size, show_progress, progress)

    def _score_pairs(self, pairs, batch_size, show_progress, progress) -> np.ndarray:
        import torch
        from tqdm.auto import tqdm

        out = np.zeros(len(pairs), dtype=np.float32)
        if not pairs:
            return out
        ids = self.encode_pairs(
            *self.format_pairs(pairs),
        )
        batches = list(
            token_budget_batches([len(s) for s in ids], self.max_batch_tokens, max_rows=batch_size or self.batch_size)
        )
        with (
            torch.inference_mode(),
            tqdm(
                total=len(ids), desc="reranking", unit="pair", disable=not show_progress or progress is not None
            ) as own_bar,
        ):
            bar = progress if progress is not None else own_bar
            for batch in batches:
                out[batch] = self._logits([ids[i] for i in batch])
                bar.update(len(batch))
        if np.isnan(out).any():
            raise PyseriniLlamaError(
                f"{self.name} produced NaN scores for {int(np.isnan(out).sum())} pair(s); "
                "float16 overflows with LLaMA, use bfloat16 or float32"
            )
        return out

    def _logits(self, sequences: list[list[int]]) -> np.ndarray:
        input_ids, attention_mask = pad_right(sequences, self.pad_id)
        input_ids, attention_mask = input_ids.to(self.device), attention_mask.to(self.device)
        hidden = self.model.base_model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        logits = self.model.score(last_token_hidden(hidden, attention_mask))
        return logits[:, 0].float().cpu().numpy()

    # ----------------------------------------------------------------------------- reranking
    def rerank(
        self,
        query: str,
        candidates: Iterable[Any],
        k: int | None = None,
        *,
        documents: Mapping[str, Any] | None = None,
        show_progress: bool = False,
    ) -> list[tuple[str, float]]:
        """``[(docid, score), ...]`` best first (ties: docid descending, trec_eval's order), top ``k``.

        Candidates: ``(docid, document)`` or ``(docid, document, first_stage_score)`` tuples (the
        first-stage score is ignored), objects with ``.docid`` and ``.text`` (``Document``), or
        objects with ``.docid`` only (e.g. Pyserini hits) whose text is looked up in ``documents``.
        """
        docids, docs = [], []
        for cand in candidates:
            docid, doc = _candidate(cand, documents)
            docids.append(docid)
            docs.append(doc)
        scores = self.score(query, docs, show_progress=show_progress)
        hits = _sort_hits(list(zip(docids, (float(s) for s in scores), strict=True)))
        return hits if k is None else hits[:k]

    def rerank_run(
        self,
        queries: Mapping[str, str],
        run: Mapping[str, Sequence[tuple[str, float]]],
        documents: Mapping[str, Any],
        depth: int = RERANK_DEPTH,
        *,
        skip_missing_docs: bool = False,
        missing: list[tuple[str, str]] | None = None,
        show_progress: bool = False,
    ) -> Run:
        """Rerank the top ``depth`` hits of every query of a first-stage ``run``; keep the rest below.

        For each query the first ``depth`` hits (the run's own best-first order) are scored and
        sorted; the remaining hits follow in their first-stage order with scores
        ``lowest reranked score - 1, - 2, ...``, so any consumer that sorts by score (trec_eval)
        sees the same ranking and recall at depths beyond ``depth`` is untouched.

        A reranked docid absent from ``documents`` raises :class:`PyseriniLlamaError`, or with
        ``skip_missing_docs`` is left out of the output and recorded as ``(qid, docid)`` in
        ``missing``. A qid of the run absent from ``queries`` always raises.
        """
        if depth < 1:
            raise ValueError("depth must be at least 1")
        absent = [qid for qid in run if qid not in queries]
        if absent:
            raise PyseriniLlamaError(
                f"{len(absent)} query id(s) of the run are not in the topics, e.g. {', '.join(absent[:3])}"
            )
        pairs: list[tuple[str, Any]] = []
        owners: list[tuple[str, str]] = []
        for qid, hits in run.items():
            for docid, _ in hits[:depth]:
                doc = documents.get(docid)
                if doc is None:
                    if not skip_missing_docs:
                        raise PyseriniLlamaError(f"document {docid!r} (query {qid}) is not in the corpus")
                    if missing is not None:
                        missing.append((qid, docid))
                    continue
                pairs.append((queries[qid], doc))
                owners.append((qid, docid))
        scores = np.zeros(len(pairs), dtype=np.float32)
        self.calibrate(pairs)  # int8: on a sample of the whole run, not of its first chunk
        from tqdm.auto import tqdm

        with tqdm(total=len(pairs), desc="reranking", unit="pair", disable=not show_progress) as bar:
            for start in range(0, len(pairs), PAIRS_PER_CHUNK):
                chunk = pairs[start : start + PAIRS_PER_CHUNK]
                scores[start : start + len(chunk)] = self.score_pairs(chunk, progress=bar)
        reranked: dict[str, list[tuple[str, float]]] = {qid: [] for qid in run}
        for (qid, docid), s in zip(owners, scores, strict=True):
            reranked[qid].append((docid, float(s)))
        out: Run = {}
        for qid, hits in run.items():
            top = _sort_hits(reranked[qid])
            floor = top[-1][1] if top else 0.0
            tail = [(docid, floor - (i + 1)) for i, (docid, _) in enumerate(hits[depth:])]
            out[qid] = top + tail
        return out


def _candidate(cand: Any, documents: Mapping[str, Any] | None) -> tuple[str, Any]:
    if isinstance(cand, tuple | list):
        if len(cand) not in (2, 3):
            raise ValueError(f"a candidate tuple is (docid, document[, score]), got {len(cand)} items")
        return str(cand[0]), cand[1]
    docid = getattr(cand, "docid", None)
    if docid is None:
        raise TypeError(f"a candidate must be a (docid, document) tuple or have .docid, not {type(cand).__name__}")
    if hasattr(cand, "text"):
        return str(docid), cand
    if documents is None or docid not in documents:
        raise PyseriniLlamaError(f"no text for candidate {docid!r}: pass documents= holding it")
    return str(docid), documents[docid]


def _sort_hits(hits: list[tuple[str, float]]) -> list[tuple[str, float]]:
    from ..data.runs import sort_hits

    return sort_hits(hits)

"""Training groups -> padded token tensors, with exactly the tokenisation inference uses.

A model trained on inputs that differ from what the encoder or reranker feeds it at inference
(another prefix, a missing EOS, other truncation) loses accuracy silently. So nothing here
formats or tokenizes on its own:

* RepLLaMA: :func:`~pyserini_llama.modeling.formatting.format_query` / ``format_document`` and
  :func:`~pyserini_llama.modeling.tokens.encode_with_eos`, the calls ``RepLLaMAEncoder`` makes;
* RankLLaMA: the reranker's own :meth:`RankLLaMAReranker.format_pairs` and ``encode_pairs`` (prefixes,
  case rule, pair template, query cut, document cut, optional EOS), as ``score_pairs`` does.

Both pad on the right with the pad id inference uses. Passages are laid out query-major:
rows ``i * group_size .. (i + 1) * group_size - 1`` belong to query ``i``, its positive first.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from ..defaults import PASSAGE_MAX_LENGTH, QUERY_MAX_LENGTH
from ..modeling.formatting import PASSAGE_PREFIX, QUERY_PREFIX, apply_case, format_document, format_query
from ..modeling.tokens import SpecialTokens, encode_with_eos, pad_right
from .dataset import TrainGroup


def teacher_scores(groups: Sequence[TrainGroup]) -> torch.Tensor:
    """``(queries, group_size)`` float32 teacher scores, in the passages' order (positive first).

    The dataset refuses unscored passages when distillation is on, so a missing score here is a bug.
    """
    rows = [g.teacher_scores for g in groups]
    if any(row is None for row in rows):
        raise ValueError("a training group has passages without teacher scores")
    return torch.tensor(rows, dtype=torch.float32)


class RepLLaMACollator:
    """Queries and passages of a batch of groups, each ``prefix + text + EOS``, right-padded.

    With ``distil`` the batch also carries ``teacher_scores`` (see :func:`teacher_scores`).
    """

    def __init__(
        self,
        tokenizer,
        query_max_length: int = QUERY_MAX_LENGTH,
        passage_max_length: int = PASSAGE_MAX_LENGTH,
        distil: bool = False,
        text_case: str = "as-is",
    ):
        self.distil = distil
        self.text_case = text_case
        self.tokenizer = tokenizer
        self.special = SpecialTokens.of(tokenizer)
        self.query_max_length = query_max_length
        self.passage_max_length = passage_max_length

    def tokenize(self, groups: Sequence[TrainGroup]) -> tuple[list[list[int]], list[list[int]]]:
        """``(query token ids, passage token ids)``, unpadded, passages query-major."""
        case = self.text_case
        queries = [format_query(apply_case(g.query, case), QUERY_PREFIX) for g in groups]
        passages = [format_document(p, PASSAGE_PREFIX, case) for g in groups for p in g.passages]
        return (
            encode_with_eos(self.tokenizer, queries, self.query_max_length, self.special),
            encode_with_eos(self.tokenizer, passages, self.passage_max_length, self.special),
        )

    def sequences(self, groups: Sequence[TrainGroup]) -> list[list[int]]:
        """Every token sequence the batch runs through the model (for filling the trunk cache)."""
        queries, passages = self.tokenize(groups)
        return queries + passages

    def __call__(self, groups: Sequence[TrainGroup]) -> dict:
        queries, passages = self.tokenize(groups)
        q_ids, q_mask = pad_right(queries, self.special.pad_id)
        p_ids, p_mask = pad_right(passages, self.special.pad_id)
        batch = {
            "query_input_ids": q_ids,
            "query_attention_mask": q_mask,
            "passage_input_ids": p_ids,
            "passage_attention_mask": p_mask,
        }
        if self.distil:
            batch["teacher_scores"] = teacher_scores(groups)
        return batch


class RankLLaMACollator:
    """(query, passage) pairs of a batch of groups, tokenized by the inference reranker itself.

    ``reranker`` is a :class:`~pyserini_llama.rerankers.rankllama.RankLLaMAReranker` wrapping the
    model being trained (``RankLLaMAReranker.from_model``), so its pair template, lengths, EOS
    choice and pad id are the ones the trained checkpoint will be served with.
    """

    def __init__(self, reranker, distil: bool = False):
        self.reranker = reranker
        self.distil = distil

    def sequences(self, groups: Sequence[TrainGroup]) -> list[list[int]]:
        """The pairs' token ids, unpadded, query-major with each positive first."""
        r = self.reranker
        return r.encode_pairs(*r.format_pairs([(g.query, p) for g in groups for p in g.passages]))

    def __call__(self, groups: Sequence[TrainGroup]) -> dict:
        input_ids, attention_mask = pad_right(self.sequences(groups), self.reranker.pad_id)
        batch = {"input_ids": input_ids, "attention_mask": attention_mask}
        if self.distil:
            batch["teacher_scores"] = teacher_scores(groups)
        return batch

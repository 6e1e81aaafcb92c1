"""Defaults that several commands and classes share, each spelled once.

Standard library only and no imports of ours: the start-up hook's parsers, ``cli_options`` and every
dataclass may import it at no cost. Argparse defaults, dataclass defaults and help strings read these
names (help strings as f-strings), so a default cannot drift between two commands.

Lengths are in tokens. The paper (Ma et al., "Fine-Tuning LLaMA for Multi-Stage Text Retrieval") trains
both models with queries of 32 and passages of 196 tokens, and serves RankLLaMA at 32 / 196 (query /
whole pair). For RankLLaMA a "max length" is always the whole pair: query + document + the pair
template's special tokens (+ EOS with ``append_eos``); training the reranker at
:data:`RERANK_TRAIN_MAX_LENGTH` = 32 + 196 keeps the paper's training budget (a query of 32 tokens and a
document of up to 196, less the few template tokens) in that one meaning.
"""

#: Query tokens, in training (both objectives) and when RankLLaMA is served.
QUERY_MAX_LENGTH = 32
#: RepLLaMA passage tokens in training (EOS included).
PASSAGE_MAX_LENGTH = 196
#: RankLLaMA pair tokens when served: castorini's checkpoints (and any adapter without a record of its own).
RERANK_MAX_LENGTH = 196
#: RankLLaMA pair tokens in training: the paper's query 32 + passage 196.
RERANK_TRAIN_MAX_LENGTH = QUERY_MAX_LENGTH + PASSAGE_MAX_LENGTH
#: RepLLaMA query and passage tokens when encoding for search (BEIR's 512).
ENCODE_MAX_LENGTH = 512

#: BM25 as Pyserini's BEIR flat indexes are searched.
BM25_K1 = 0.9
BM25_B = 0.4

#: Hits per query RankLLaMA reranks.
RERANK_DEPTH = 100
#: Most pairs per RankLLaMA batch.
RERANK_BATCH_SIZE = 32
#: Most texts per RepLLaMA batch.
ENCODE_BATCH_SIZE = 16
#: Hits per query a first stage returns.
HITS = 1000
#: Candidates per query that mining takes from each first stage.
MINE_DEPTH = 200
#: Training queries per process per micro-batch.
TRAIN_BATCH_SIZE = 8
#: Training passages per query: 1 positive + 15 negatives.
GROUP_SIZE = 16

"""How much relevance signal do an untrained model's hidden states carry, at the EOS RepLLaMA pools and elsewhere?

For N SciFact train queries and their judged abstracts (RepLLaMA's exact inputs, passages at 64 tokens), it
prints, per layer and position: the mean query-passage cosine, how far the relevant abstract scores above the
mean of the others, the per-query spread of scores, and how often the relevant one ranks first (chance 1/N).
This is what explains RepLLaMA's plateau at chance loss (docs/RESULTS.md).

    python benchmarks/probe_eos_states.py [--model smollm2-135m-instruct] [--queries 24] [--layers 24 30]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--dataset", default=str(REPO.parent / "shared" / "data" / "beir" / "scifact"))
    parser.add_argument("--queries", type=int, default=24)
    parser.add_argument("--layers", type=int, nargs="+", default=[24, 30], help="hidden-state layers (30 = last)")
    args = parser.parse_args()

    from pyserini_llama.data.corpus import read_corpus
    from pyserini_llama.data.queries import read_beir_split
    from pyserini_llama.modeling.formatting import format_passage, format_query
    from pyserini_llama.modeling.loading import load_backbone
    from pyserini_llama.modeling.tokens import SpecialTokens, encode_with_eos, pad_right

    model, tokenizer = load_backbone(args.model, "embedding")
    special = SpecialTokens.of(tokenizer)
    queries, qrels = read_beir_split(args.dataset, "train")
    corpus = read_corpus(Path(args.dataset) / "corpus.jsonl")
    qids = [q for q in queries if any(d in corpus for d in qrels[q])][: args.queries]
    docs = [corpus[next(d for d in qrels[q] if d in corpus)] for q in qids]
    q_ids = encode_with_eos(tokenizer, [format_query(queries[q]) for q in qids], 32, special)
    p_ids = encode_with_eos(tokenizer, [format_passage(d.text, d.title, d.url) for d in docs], 64, special)
    input_ids, mask = pad_right(q_ids + p_ids, special.pad_id)
    with torch.no_grad():
        out = model(input_ids=input_ids, attention_mask=mask, output_hidden_states=True)
    last = mask.sum(1) - 1
    n = len(qids)
    print(f"{args.model}: {n} SciFact train queries and their relevant abstracts; EOS = {tokenizer.eos_token!r}")
    print(f"{'layer / position':<26} {'mean cos':>9} {'rel - mean':>11} {'per-q std':>10} {'rel first':>10}")
    for layer in args.layers:
        hidden = out.last_hidden_state if layer >= len(out.hidden_states) - 1 else out.hidden_states[layer]
        rows = torch.arange(hidden.size(0))
        for name, vectors in (
            ("EOS", hidden[rows, last]),
            ("last text token", hidden[rows, last - 1]),
            ("mean of all tokens", (hidden * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)),
        ):
            v = torch.nn.functional.normalize(vectors, dim=-1).numpy()
            s = v[:n] @ v[n:].T
            off = s[~np.eye(n, dtype=bool)].reshape(n, n - 1)
            gap = (np.diag(s) - off.mean(1)).mean()
            first = (np.diag(s) > off.max(1)).mean()
            print(
                f"{f'layer {layer} {name}':<26} {s.mean():>9.3f} {gap:>11.4f} {s.std(1).mean():>10.4f} {first:>10.2f}"
            )


if __name__ == "__main__":
    main()

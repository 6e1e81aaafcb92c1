"""FAISS index types against flat: index bytes, build time, query latency, recall@k and nDCG@10.

Each type is built with ``pyserini_llama.indexing`` (the code ``encode --index-type`` runs), written
to disk and read back (as Pyserini's FaissSearcher reads it), then searched with the same query
vectors as a flat index. "vs flat" metrics take flat's exact results as the truth:

* recall@k: the share of flat's top k that the type also returns in its top k;
* nDCG@10 vs flat: nDCG@10 of the type's list with flat's top 10 as the (binary) relevant set;
* with ``--qrels`` (real data), also the real nDCG@10 of each type's run.

Synthetic data (default): ``--n`` unit vectors of ``--dim`` dimensions around ``--clusters`` random
centres (uniform random vectors in high dimension are all nearly orthogonal, no ANN method's
case), queries near random corpus vectors::

    .venv/bin/python benchmarks/bench_index_types.py --n 200000 --dim 576 --queries 1000
    .venv/bin/python benchmarks/bench_index_types.py --n 1000000 --dim 576 --queries 1000   # 2.3 GB float32

Real vectors: an existing flat index directory (``encode ... output --embeddings DIR --to-faiss``)
and its queries, encoded with the same model::

    .venv/bin/python benchmarks/bench_index_types.py --index indexes/scifact.repllama \\
      --topics ../shared/data/beir/scifact/queries.jsonl --qrels ../shared/data/beir/scifact/qrels/test.tsv \\
      --encoder repllama-smollm2-135m --query-max-length 32

Latency is wall time per query of one batched ``index.search`` over all queries with ``--threads``
OpenMP threads (divided by the number of queries), so it is throughput-style, not single-query.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from pyserini_llama.indexing import IndexOptions, build_index, estimate_bytes, factory_string
from pyserini_llama.indexing.faiss_types import NAMED_TYPES, describe


def synthetic(n: int, dim: int, queries: int, clusters: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Clustered unit vectors (float32, built in chunks to keep memory at one copy) and queries."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((clusters, dim), dtype=np.float32)
    docs = np.empty((n, dim), dtype=np.float32)
    for start in range(0, n, 65536):
        end = min(n, start + 65536)
        chunk = centres[rng.integers(0, clusters, end - start)]
        chunk += rng.standard_normal(chunk.shape, dtype=np.float32)
        docs[start:end] = chunk / np.linalg.norm(chunk, axis=1, keepdims=True)
    picks = docs[rng.integers(0, n, queries)]
    q = picks + 0.05 * rng.standard_normal(picks.shape, dtype=np.float32)
    return docs, (q / np.linalg.norm(q, axis=1, keepdims=True)).astype(np.float32)


def real(args) -> tuple[np.ndarray, np.ndarray, list[str], list[str]]:
    """Vectors of an existing index directory and RepLLaMA query vectors for ``--topics``."""
    import faiss

    from pyserini_llama.data.queries import read_queries
    from pyserini_llama.encoders.repllama import RepLLaMAEncoder

    index = faiss.read_index(str(Path(args.index) / "index"))
    docids = (Path(args.index) / "docid").read_text().splitlines()
    docs = index.reconstruct_n(0, index.ntotal).astype(np.float32)
    queries = read_queries(args.topics, topics_dir=args.topics_dir)
    if args.qrels:
        from pyserini_llama.data.qrels import read_qrels

        judged = read_qrels(args.qrels)
        queries = {q: t for q, t in queries.items() if q in judged}
    encoder = RepLLaMAEncoder(args.encoder, query_max_length=args.query_max_length, device=args.device)
    qids = list(queries)
    return docs, encoder.encode_queries([queries[q] for q in qids]), docids, qids


def ndcg10_vs_flat(found: np.ndarray, truth: np.ndarray) -> float:
    discounts = 1.0 / np.log2(np.arange(2, 12))
    ideal = discounts.sum()
    scores = []
    for f, t in zip(found[:, :10], truth[:, :10], strict=True):
        relevant = set(t.tolist())
        scores.append(sum(d for d, doc in zip(discounts, f, strict=True) if doc in relevant) / ideal)
    return float(np.mean(scores))


def recall_vs_flat(found: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(set(f) & set(t)) / len(t) for f, t in zip(found, truth, strict=True)]))


def real_ndcg10(found: np.ndarray, scores: np.ndarray, docids: list[str], qids: list[str], qrels: str) -> float:
    from pyserini_llama.data.qrels import read_qrels
    from pyserini_llama.eval import evaluate_run

    run = {
        q: [(docids[i], float(s)) for i, s in zip(row, srow, strict=True) if i >= 0]
        for q, row, srow in zip(qids, found, scores, strict=True)
    }
    return float(evaluate_run(read_qrels(qrels), run, ["ndcg@10"], complete=True)["ndcg@10"])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--types", nargs="+", default=list(NAMED_TYPES), help="named types and/or factory strings")
    p.add_argument("--n", type=int, default=200_000, help="synthetic corpus size (default 200k)")
    p.add_argument("--dim", type=int, default=576, help="synthetic dimension (576: SmolLM2-135M's hidden size)")
    p.add_argument("--queries", type=int, default=1000, help="synthetic queries")
    p.add_argument("--clusters", type=int, default=1000, help="synthetic cluster centres")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--index", default=None, help="real vectors: an existing index directory (index + docid)")
    p.add_argument("--topics", default=None, help="with --index: queries (topic name, TSV or queries.jsonl)")
    p.add_argument("--topics-dir", default=None)
    p.add_argument("--qrels", default=None, help="with --index: qrels for the real nDCG@10 column")
    p.add_argument("--encoder", default="repllama-smollm2-135m", help="with --index: the query encoder")
    p.add_argument("--query-max-length", type=int, default=32)
    p.add_argument("--device", default="cpu")
    p.add_argument("--k", type=int, default=1000, help="hits per query (recall@k)")
    p.add_argument("--threads", type=int, default=2, help="FAISS OpenMP threads")
    p.add_argument("--json", default=None, help="also write the rows as JSON here")
    args = p.parse_args()

    import faiss

    faiss.omp_set_num_threads(args.threads)
    docids = qids = None
    t0 = time.perf_counter()
    if args.index:
        if not args.topics:
            p.error("--index needs --topics")
        docs, queries, docids, qids = real(args)
        source = f"{args.index} ({len(docs)} x {docs.shape[1]}, {len(queries)} queries from {args.topics})"
    else:
        docs, queries = synthetic(args.n, args.dim, args.queries, args.clusters, args.seed)
        source = (
            f"synthetic: {args.n} x {args.dim} clustered unit vectors ({args.clusters} centres), {args.queries} queries"
        )
    n, d = docs.shape
    k = min(args.k, n)
    print(f"# {source}; k={k}; FAISS threads={args.threads}; data ready in {time.perf_counter() - t0:.1f}s", flush=True)

    rows, truth = [], None
    workdir = Path(tempfile.mkdtemp(prefix="bench-index-types."))
    try:
        for index_type in ["flat", *[t for t in args.types if t != "flat"]]:
            options = IndexOptions(index_type)
            t0 = time.perf_counter()
            index = build_index(docs, options)
            build_s = time.perf_counter() - t0
            path = workdir / "index"
            faiss.write_index(index, str(path))
            size = path.stat().st_size
            del index
            index = faiss.read_index(str(path))
            t0 = time.perf_counter()
            scores, found = index.search(queries, k)
            search_s = time.perf_counter() - t0
            if truth is None:
                truth = found
            try:
                estimate = estimate_bytes(options, n, d)
            except Exception:
                estimate = None
            row = {
                "type": index_type,
                "faiss": f"{factory_string(options, n, d)} -> {describe(index)}",
                "bytes": size,
                "estimate_bytes": estimate,
                "build_s": build_s,
                "ms_per_query": 1000 * search_s / len(queries),
                f"recall@{k}_vs_flat": recall_vs_flat(found, truth),
                "ndcg@10_vs_flat": ndcg10_vs_flat(found, truth),
            }
            if args.qrels and docids is not None:
                row["ndcg@10"] = real_ndcg10(found, scores, docids, qids, args.qrels)
            rows.append(row)
            print(json.dumps(row), flush=True)
            del index
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    extra = " nDCG@10 (qrels) |" if args.qrels else ""
    print(
        f"\n| type | FAISS index | bytes | formula bytes | build s | ms/query | recall@{k} vs flat "
        f"| nDCG@10 vs flat |{extra}"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|" + ("---:|" if args.qrels else ""))
    for r in rows:
        est = f"{r['estimate_bytes']:,}" if r["estimate_bytes"] is not None else "-"
        line = (
            f"| {r['type']} | {r['faiss']} | {r['bytes']:,} | {est} | {r['build_s']:.1f} | {r['ms_per_query']:.2f} "
            f"| {r[f'recall@{k}_vs_flat']:.4f} | {r['ndcg@10_vs_flat']:.4f} |"
        )
        print(line + (f" {r['ndcg@10']:.4f} |" if "ndcg@10" in r else ""))
    if args.json:
        Path(args.json).write_text(json.dumps({"source": source, "k": k, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()

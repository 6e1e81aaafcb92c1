"""FAISS index types: each builds, saves, loads in Pyserini's FaissSearcher and finds what flat finds.

Synthetic data: unit vectors around 40 random centres (uniform random vectors in high dimension
are all nearly orthogonal, which no ANN index is built for), queries near corpus vectors.
"""

import logging

import faiss
import numpy as np
import pytest

from pyserini_llama.data.document import Document
from pyserini_llama.indexing import (
    IndexOptions,
    IndexTypeError,
    build_index,
    estimate_bytes,
    factory_string,
    fit_search_depth,
    move_to_gpus,
    prepare_for_search,
    set_search_params,
    write_index_dir,
)

N, D, K = 4000, 32, 50


def unit(x):
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    centres = rng.standard_normal((40, D))
    docs = unit(centres[rng.integers(0, 40, N)] + 0.6 * rng.standard_normal((N, D)))
    queries = unit(docs[rng.integers(0, N, 60)] + 0.2 * rng.standard_normal((60, D)))
    return docs, queries, [f"doc{i}" for i in range(N)]


@pytest.fixture(scope="module")
def exact(data):
    docs, queries, _ = data
    return build_index(docs, "flat").search(queries, K)[1]


def recall(found, truth):
    return float(np.mean([len(set(f) & set(t)) / len(t) for f, t in zip(found, truth, strict=True)]))


# name -> least recall@50 against flat (measured: fp16 1.0, sq8 0.99, hnsw 1.0, ivfpq ~0.9)
TYPES = {"flat": 1.0, "flat-fp16": 0.99, "sq8": 0.95, "hnsw": 0.95, "ivfpq": 0.6, "IVF16,PQ8": 0.5}


@pytest.mark.parametrize("index_type", list(TYPES))
def test_type_builds_saves_loads_and_recalls(index_type, data, exact, tmp_path):
    docs, queries, docids = data
    write_index_dir(tmp_path, docids, docs, IndexOptions(index_type))
    assert (tmp_path / "docid").read_text().splitlines() == docids
    index = faiss.read_index(str(tmp_path / "index"))  # what Pyserini's FaissSearcher.load_index does
    assert index.ntotal == N and index.d == D and index.metric_type == faiss.METRIC_INNER_PRODUCT
    found = index.search(queries, K)[1]
    assert (found >= 0).all()
    assert recall(found, exact) >= TYPES[index_type]


@pytest.mark.slow
def test_pyserini_faiss_searcher_loads_every_type(data, exact, tmp_path):
    from pyserini.search.faiss import FaissSearcher

    docs, queries, docids = data
    qids = [str(i) for i in range(len(queries))]
    for index_type, least in TYPES.items():
        write_index_dir(tmp_path / index_type, docids, docs, IndexOptions(index_type))
        searcher = FaissSearcher(str(tmp_path / index_type), query_encoder=object())  # what `--index DIR` does
        assert searcher.num_docs == N and searcher.dimension == D
        results = searcher.batch_search(queries, qids, k=K)
        found = [[int(h.docid[3:]) for h in results[q]] for q in qids]
        assert all(len(f) == K for f in found) and recall(found, exact) >= least, index_type


def test_flat_is_pyserinis_own_class_and_exact(data, exact):
    docs, queries, _ = data
    index = build_index(docs, IndexOptions("flat"))
    assert isinstance(faiss.downcast_index(index), faiss.IndexFlatIP)
    scores, ids = index.search(queries, 3)
    np.testing.assert_allclose(scores[:, 0], np.max(queries @ docs.T, axis=1), rtol=1e-5)


@pytest.mark.parametrize("index_type", ["flat", "flat-fp16", "sq8", "hnsw", "ivfpq"])
def test_size_formula_matches_the_written_file(index_type, data, tmp_path):
    docs, _, docids = data
    write_index_dir(tmp_path, docids, docs, index_type)
    size = (tmp_path / "index").stat().st_size
    assert abs(size - estimate_bytes(IndexOptions(index_type), N, D)) / size < 0.03


def test_derived_parameters_follow_corpus_size_and_dimension():
    assert factory_string(IndexOptions("ivfpq"), 200_000, 576) == "IVF2048,PQ72x8"
    assert factory_string(IndexOptions("ivfpq"), 8_841_823, 4096) == "IVF16384,PQ512x8"
    assert factory_string(IndexOptions("ivfpq", nlist=64, pq_m=16), 5000, 64).startswith("IVF64,PQ16x")
    assert factory_string(IndexOptions("hnsw", hnsw_m=16), 10, 8) == "HNSW16,Flat"
    small = IndexOptions("ivfpq").resolved(2000, 32)  # too few vectors for 8-bit codes or many lists
    assert small.pq_bits < 8 and small.nlist * 39 <= 2000 and small.nprobe <= small.nlist
    with pytest.raises(IndexTypeError, match="must divide"):
        IndexOptions("ivfpq", pq_m=5).resolved(5000, 32)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (IndexOptions("flat", nlist=256), "--nlist does not apply to --index-type 'flat'"),
        (IndexOptions("hnsw", pq_m=8), "--pq-m does not apply"),
        (IndexOptions("ivfpq", hnsw_m=16), "--hnsw-m does not apply"),
        (IndexOptions("IVF16,PQ8", nlist=32), "belongs in the factory string"),
        (IndexOptions("IVF16,PQ8", ef_search=32), "apply to HNSW indexes"),
        (IndexOptions("HNSW8,Flat", nprobe=4), "applies to IVF indexes"),
        (IndexOptions("hnsw", hnsw_m=0), "at least 1"),
    ],
)
def test_build_parameter_for_another_type_is_an_error(options, message, data):
    with pytest.raises(IndexTypeError, match=message):
        build_index(data[0], options)


def test_factory_string_takes_search_defaults(data):
    index = build_index(data[0], IndexOptions("IVF16,Flat", nprobe=5))
    assert faiss.extract_index_ivf(index).nprobe == 5
    index = build_index(data[0], IndexOptions("HNSW8,Flat", ef_search=77))
    assert faiss.downcast_index(index).hnsw.efSearch == 77


@pytest.mark.parametrize("bad", ["bogus", "IVF16,PQ7", "Flat; rm -rf /", "hnsw32"])
def test_bad_type_string_is_a_clear_error(bad, data):
    with pytest.raises(IndexTypeError, match="flat, flat-fp16, sq8, hnsw, ivfpq or a FAISS factory string"):
        build_index(data[0], bad)


def test_search_params_are_applied_and_change_results(data, exact):
    docs, queries, _ = data
    ivf = build_index(docs, "IVF64,Flat")
    set_search_params(ivf, nprobe=64)  # every list: exact
    assert faiss.extract_index_ivf(ivf).nprobe == 64
    assert recall(ivf.search(queries, K)[1], exact) == 1.0
    set_search_params(ivf, nprobe=1)
    assert recall(ivf.search(queries, K)[1], exact) < 0.9

    hnsw = build_index(docs, IndexOptions("hnsw", hnsw_m=8))
    set_search_params(hnsw, ef_search=20)
    assert faiss.downcast_index(hnsw).hnsw.efSearch == 20
    quantized = build_index(docs, "IVF32_HNSW8,Flat")  # efSearch of an IVF's HNSW coarse quantizer
    set_search_params(quantized, ef_search=7, nprobe=4)
    assert faiss.downcast_index(faiss.extract_index_ivf(quantized).quantizer).hnsw.efSearch == 7


def test_search_param_for_another_index_type_is_an_error(data):
    docs = data[0]
    with pytest.raises(IndexTypeError, match="--nprobe applies only to IVF"):
        set_search_params(build_index(docs, "hnsw"), nprobe=4)
    with pytest.raises(IndexTypeError, match="--ef-search applies only to HNSW"):
        set_search_params(build_index(docs, "flat"), ef_search=64)
    with pytest.raises(IndexTypeError, match="at least 1"):
        set_search_params(build_index(docs, "ivfpq"), nprobe=0)


def test_hnsw_search_depth_widens_to_hits(data, caplog):
    docs, queries, _ = data
    index = build_index(docs, IndexOptions("hnsw", ef_search=40))
    assert (index.search(queries, 200)[1] >= 0).sum(1).min() < 200  # FAISS: at most ~efSearch hits
    with caplog.at_level(logging.WARNING):
        fit_search_depth(index, 200, explicit_ef_search=True)
    assert faiss.downcast_index(index).hnsw.efSearch == 40 and "--ef-search 40 < --hits 200" in caplog.text
    fit_search_depth(index, 200)
    assert (index.search(queries, 200)[1] >= 0).sum(1).min() == 200


@pytest.mark.skipif(faiss.get_num_gpus() > 0, reason="FAISS sees a GPU here")
def test_gpu_request_without_faiss_gpu_is_a_clear_error(data, caplog):
    index = build_index(data[0], "flat")
    with pytest.raises(IndexTypeError, match="install faiss-gpu"):
        move_to_gpus(index)
    with pytest.raises(IndexTypeError, match="install faiss-gpu"):
        prepare_for_search(index, faiss_device="cuda")
    with caplog.at_level(logging.WARNING):
        assert prepare_for_search(index, faiss_device="auto", model_device="cuda") is index
    assert "searching the FAISS index on CPU" in caplog.text
    assert prepare_for_search(index, faiss_device="cpu", model_device="cuda") is index


def test_shards_merge_into_one_index_of_any_type(data, exact, tmp_path):
    from pyserini_llama.indexing.__main__ import main

    docs, queries, docids = data
    shards = []
    for i, (lo, hi) in enumerate([(0, 1500), (1500, 2600), (2600, N)]):
        shards.append(write_index_dir(tmp_path / f"shard{i}", docids[lo:hi], docs[lo:hi]))
    main(["--shards", *map(str, shards), "--output", str(tmp_path / "merged"), "--index-type", "sq8"])
    assert (tmp_path / "merged" / "docid").read_text().splitlines() == docids
    merged = faiss.read_index(str(tmp_path / "merged" / "index"))
    assert merged.ntotal == N and recall(merged.search(queries, K)[1], exact) >= 0.95
    main(["--shards", *map(str, shards), "--output", str(tmp_path / "flat")])
    np.testing.assert_array_equal(faiss.read_index(str(tmp_path / "flat" / "index")).search(queries, K)[1], exact)


def test_encode_rejects_a_bad_index_type_before_encoding(tmp_path):
    from pyserini_llama.encode import encode_corpus

    class Unused:
        dimension = D

        def encode_passages(self, *args, **kwargs):
            raise AssertionError("encoded before checking the index type")

    docs = [Document(docid=f"d{i}", text=f"text {i}") for i in range(10)]
    with pytest.raises(IndexTypeError, match="could not parse"):
        encode_corpus(Unused(), docs, tmp_path / "out", index_options=IndexOptions("IVFx"))
    with pytest.raises(IndexTypeError, match="--nlist does not apply"):
        encode_corpus(Unused(), docs, tmp_path / "out", index_options=IndexOptions("flat", nlist=4))
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_encode_and_search_clis_with_index_types(tiny_lora, tiny_beir, tmp_path):
    """``encode ... --index-type hnsw`` then ``search.faiss --ef-search``; ``--nprobe`` on it is an error."""
    import subprocess
    import sys

    from pyserini_llama.encode.__main__ import main as encode

    index = tmp_path / "index.hnsw"
    encode(
        ["input", "--corpus", str(tiny_beir / "corpus.jsonl"), "output", "--embeddings", str(index),
         "--index-type", "hnsw", "--hnsw-m", "4", "encoder", "--encoder", str(tiny_lora), "--max-length", "32"]
    )  # fmt: skip
    assert isinstance(faiss.downcast_index(faiss.read_index(str(index / "index"))), faiss.IndexHNSWFlat)
    base = [sys.executable, "-m", "pyserini_llama.search.faiss", "--index", str(index), "--topics",
            str(tiny_beir / "topics.tsv"), "--encoder", str(tiny_lora), "--hits", "6"]  # fmt: skip
    ok = subprocess.run([*base, "--output", str(tmp_path / "run.trec"), "--ef-search", "6"], capture_output=True)
    assert ok.returncode == 0, ok.stderr.decode()[-2000:]
    lines = (tmp_path / "run.trec").read_text().splitlines()
    assert len(lines) == 3 * 6
    bad = subprocess.run([*base, "--output", str(tmp_path / "bad.trec"), "--nprobe", "4"], capture_output=True)
    assert bad.returncode == 2 and "--nprobe applies only to IVF" in bad.stderr.decode()

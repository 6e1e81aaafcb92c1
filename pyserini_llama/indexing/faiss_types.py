"""FAISS index types for RepLLaMA vectors, all inner product (the vectors are unit length, so IP = cosine).

A flat index is exact but costs ``4 × dimension`` bytes per vector (16 KiB for a 4096-d 7B
RepLLaMA vector: 135 GiB for MS MARCO passage) and scans everything per query. The named types
trade some recall for memory or speed; each maps to a FAISS factory string with parameters
derived from the corpus size ``n`` and dimension ``d`` (override any of them):

=============  ============================  ==========================================
name           factory string                bytes per vector (plus small fixed parts)
=============  ============================  ==========================================
``flat``       ``Flat`` (``IndexFlatIP``)    ``4 d``
``flat-fp16``  ``SQfp16``                    ``2 d``
``sq8``        ``SQ8``                       ``d``
``hnsw``       ``HNSW{M},Flat``              ``4 d + 4 (2M + M/(M-1)) + 12``
``ivfpq``      ``IVF{nlist},PQ{m}x{bits}``   ``m bits / 8 + 8`` (the 8: a stored int64 id)
=============  ============================  ==========================================

Anything else is handed to ``faiss.index_factory`` as a factory string (``"IVF256,PQ32"``,
``"HNSW32,SQ8"``, ``"OPQ64,IVF1024,PQ64"``...). Search-time parameters that FAISS serialises
(``efSearch`` of HNSW, ``nprobe`` of IVF) get sensible defaults at build time, so an index opened
by Pyserini's ``FaissSearcher`` (which reads the ``index`` file with ``faiss.read_index`` and
knows nothing of these parameters) already searches well; ``set_search_params`` changes them.
"""

from __future__ import annotations

import logging
import math
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from ..errors import PyseriniLlamaError

logger = logging.getLogger(__name__)

#: The short names ``--index-type`` accepts besides FAISS factory strings.
NAMED_TYPES = ("flat", "flat-fp16", "sq8", "hnsw", "ivfpq")

#: FAISS's k-means wants at least this many training points per centroid (it warns below).
MIN_POINTS_PER_CENTROID = 39
#: Default HNSW graph degree and construction beam (FAISS's defaults for M=32).
DEFAULT_HNSW_M = 32
DEFAULT_EF_CONSTRUCTION = 40
#: Stored HNSW search beam. FAISS's HNSW returns at most about efSearch hits (it does not widen the
#: beam to k), and Pyserini's dense search asks for 1000 hits by default, so the default is 1000;
#: lower it with ``--ef-search`` for shallow (top-10/100) search.
DEFAULT_EF_SEARCH = 1000
#: Rows added per ``index.add`` call: bounds the temporary copies FAISS makes while adding.
ADD_CHUNK = 65536


class IndexTypeError(PyseriniLlamaError, ValueError):
    """A bad ``--index-type`` / build or search parameter, or a parameter the index type lacks."""


_PARAMETERS = ("hnsw_m", "ef_construction", "ef_search", "nlist", "nprobe", "pq_m", "pq_bits", "train_size")
#: Which build parameters each named type uses; a factory string fixes its own structure (M, nlist, m)
#: and takes only these (checked against the built index in :func:`configure_build`).
_USES = {
    "flat": set(),
    "flat-fp16": set(),
    "sq8": {"train_size"},
    "hnsw": {"hnsw_m", "ef_construction", "ef_search"},
    "ivfpq": {"nlist", "nprobe", "pq_m", "pq_bits", "train_size"},
}
_FACTORY_USES = {"ef_construction", "ef_search", "nprobe", "train_size"}


@dataclass(frozen=True)
class IndexOptions:
    """What to build. ``None`` means "derive from n and d" (see :meth:`resolved`)."""

    index_type: str = "flat"
    hnsw_m: int | None = None
    ef_construction: int | None = None
    ef_search: int | None = None
    nlist: int | None = None
    nprobe: int | None = None
    pq_m: int | None = None
    pq_bits: int | None = None
    train_size: int | None = None
    seed: int = 0

    def resolved(self, n: int, d: int) -> IndexOptions:
        """Fill every ``None`` this type needs from the corpus size ``n`` and dimension ``d``.

        A parameter given for a type that has no use for it is an error, not silently dropped
        (``--index-type flat --nlist 256`` would otherwise build a flat index without a word)."""
        t = self.index_type
        given = {f: getattr(self, f) for f in _PARAMETERS if getattr(self, f) is not None}
        for name, value in given.items():
            if value < 1:
                raise IndexTypeError(f"--{name.replace('_', '-')} must be at least 1, got {value}")
        unused = sorted(set(given) - _USES.get(t, _FACTORY_USES))
        if unused:
            flags = ", ".join("--" + u.replace("_", "-") for u in unused)
            where = "the factory string itself" if t not in NAMED_TYPES else "another index type"
            raise IndexTypeError(f"{flags} does not apply to --index-type {t!r} (it belongs in {where})")
        if t not in NAMED_TYPES:
            return replace(self, train_size=self.train_size or min(n, 100_000))
        if n < 1 or d < 1:
            raise IndexTypeError(f"cannot build an index of {n} vectors of dimension {d}")
        opts = self
        if t == "hnsw":
            opts = replace(
                opts,
                hnsw_m=opts.hnsw_m or DEFAULT_HNSW_M,
                ef_construction=opts.ef_construction or DEFAULT_EF_CONSTRUCTION,
                ef_search=opts.ef_search or DEFAULT_EF_SEARCH,
            )
        if t == "ivfpq":
            nlist = opts.nlist or default_nlist(n)
            if nlist > n:
                raise IndexTypeError(f"--nlist {nlist} exceeds the {n} vectors to cluster")
            pq_m = opts.pq_m or default_pq_m(d)
            if d % pq_m:
                raise IndexTypeError(f"--pq-m {pq_m} must divide the dimension {d}")
            train_size = min(n, opts.train_size or max(50 * nlist, 256 * MIN_POINTS_PER_CENTROID))
            pq_bits = opts.pq_bits or default_pq_bits(train_size)
            opts = replace(
                opts,
                nlist=nlist,
                nprobe=min(nlist, opts.nprobe or default_nprobe(nlist)),
                pq_m=pq_m,
                pq_bits=pq_bits,
                train_size=train_size,
            )
        if t == "sq8":
            opts = replace(opts, train_size=min(n, opts.train_size or 100_000))
        return opts


def default_nlist(n: int) -> int:
    """About 4 √n lists (FAISS's guideline), a power of two, with ≥ 39 training points per list."""
    target = 2 ** round(math.log2(max(1.0, 4 * math.sqrt(n))))
    cap = 2 ** int(math.log2(max(1, n // MIN_POINTS_PER_CENTROID)))
    return max(1, min(target, cap))


def default_nprobe(nlist: int) -> int:
    """Probe 1/16 of the lists (at least 8): good recall for a deep (1000-hit) retrieval list."""
    return min(nlist, max(8, nlist // 16))


def default_pq_m(d: int) -> int:
    """The largest divisor of ``d`` that is at most ``d / 8``: about 8 dimensions per 1-byte code
    (a 32× smaller index than float32), e.g. 72 for 576-d, 512 for 4096-d."""
    for m in range(max(1, d // 8), 0, -1):
        if d % m == 0:
            return m
    return 1


def default_pq_bits(train_size: int) -> int:
    """8-bit codes need 256 × 39 training points; fewer vectors get smaller codebooks (≥ 1 bit)."""
    return max(1, min(8, int(math.log2(max(2, train_size // MIN_POINTS_PER_CENTROID)))))


def factory_string(options: IndexOptions, n: int, d: int) -> str:
    """The FAISS factory string ``options`` builds for ``n`` vectors of dimension ``d``."""
    o = options.resolved(n, d)
    named = {
        "flat": "Flat",
        "flat-fp16": "SQfp16",
        "sq8": "SQ8",
        "hnsw": f"HNSW{o.hnsw_m},Flat",
        "ivfpq": f"IVF{o.nlist},PQ{o.pq_m}x{o.pq_bits}",
    }
    return named.get(o.index_type, o.index_type)


def new_index(options: IndexOptions, n: int, d: int):
    """An empty (untrained) inner-product index; a bad type string raises :class:`IndexTypeError`."""
    import faiss

    if options.index_type == "flat":
        return faiss.IndexFlatIP(d)  # the class Pyserini's own encode writes
    spec = factory_string(options, n, d)
    if options.index_type not in NAMED_TYPES and not re.fullmatch(r"[A-Za-z0-9_,.x=]+", spec):
        raise IndexTypeError(_bad_type_message(spec, "not a FAISS factory string"))
    try:
        index = faiss.index_factory(d, spec, faiss.METRIC_INNER_PRODUCT)
    except RuntimeError as exc:
        reason = str(exc).strip().splitlines()[-1] if str(exc).strip() else "rejected by faiss.index_factory"
        raise IndexTypeError(_bad_type_message(spec, reason)) from None
    return index


def _bad_type_message(spec: str, reason: str) -> str:
    return (
        f"--index-type {spec!r}: {reason}. Use one of {', '.join(NAMED_TYPES)} or a FAISS factory string "
        "such as 'IVF256,PQ32' or 'HNSW32,SQ8' (https://github.com/facebookresearch/faiss/wiki/The-index-factory)"
    )


def configure_build(index, options: IndexOptions, n: int, d: int) -> None:
    """Apply build-time parameters (HNSW efConstruction) and the stored search defaults."""
    o = options.resolved(n, d)
    hnsw = _find_hnsw(index)
    if hnsw is None and (options.ef_construction or options.ef_search):
        raise IndexTypeError(f"--ef-construction/--ef-search apply to HNSW indexes; {options.index_type!r} has none")
    if _find_ivf(index) is None and options.nprobe:
        raise IndexTypeError(f"--nprobe applies to IVF indexes; {options.index_type!r} is not one")
    if hnsw is not None:
        if o.ef_construction:
            hnsw.hnsw.efConstruction = o.ef_construction
        hnsw.hnsw.efSearch = o.ef_search or DEFAULT_EF_SEARCH
    ivf = _find_ivf(index)
    if ivf is not None:
        ivf.nprobe = min(ivf.nlist, o.nprobe or default_nprobe(ivf.nlist))
        if hasattr(ivf, "do_polysemous_training"):
            # Polysemous training reorders PQ codes for Hamming filtering, which search never turns
            # on here (polysemous_ht = 0); it made training 10x slower in measurements.
            ivf.do_polysemous_training = False


def check_options(options: IndexOptions, n: int, d: int) -> None:
    """Raise :class:`IndexTypeError` now for options that would fail at build time: callers
    check before an hour of encoding, not after. Builds only an empty, untrained index."""
    configure_build(new_index(options.resolved(n, d), n, d), options, n, d)


def train_index(index, sample: np.ndarray, options: IndexOptions) -> None:
    """Train on ``sample`` (a random subset of the corpus) when the index type needs it."""
    if index.is_trained:
        return
    sample = np.ascontiguousarray(sample, dtype=np.float32)
    ivf = _find_ivf(index)
    if ivf is not None and len(sample) < ivf.nlist:
        raise IndexTypeError(f"{ivf.nlist} IVF lists need at least as many training vectors, got {len(sample)}")
    logger.info("training the index on %d vectors", len(sample))
    try:
        index.train(sample)
    except RuntimeError as exc:
        raise IndexTypeError(f"training the index failed: {str(exc).strip().splitlines()[-1]}") from None


def sample_rows(n: int, size: int, seed: int = 0) -> np.ndarray:
    """Sorted row numbers of a uniform random sample without replacement (all rows when size ≥ n)."""
    if size >= n:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=size, replace=False))


def build_index(vectors: np.ndarray, options: IndexOptions | str = "flat"):
    """Build, train (on a sample) and fill an index over ``vectors`` (n × d float32)."""
    if isinstance(options, str):
        options = IndexOptions(options)
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    if vectors.ndim != 2:
        raise IndexTypeError(f"vectors must be a 2-d array, got shape {vectors.shape}")
    n, d = vectors.shape
    o = options.resolved(n, d)
    index = new_index(o, n, d)
    configure_build(index, o, n, d)
    if not index.is_trained:
        train_index(index, vectors[sample_rows(n, o.train_size or n, o.seed)], o)
    add_vectors(index, [vectors])
    return index


def add_vectors(index, chunks: Iterable[np.ndarray]) -> None:
    """Add vectors in order (ids 0..n-1, which Pyserini maps to ``docid`` lines), a chunk at a time."""
    for chunk in chunks:
        for start in range(0, len(chunk), ADD_CHUNK):
            index.add(np.ascontiguousarray(chunk[start : start + ADD_CHUNK], dtype=np.float32))


def write_index_dir(
    directory: str | os.PathLike, docids: Sequence[str], vectors: np.ndarray, options: IndexOptions | str = "flat"
) -> Path:
    """Pyserini's layout: ``index`` (any FAISS index over ``vectors``) and ``docid`` (one id per line)."""
    import faiss

    directory = Path(directory)
    if len(docids) != len(vectors):
        raise IndexTypeError(f"{len(docids)} docids for {len(vectors)} vectors")
    index = build_index(vectors, options)
    directory.mkdir(parents=True, exist_ok=True)
    faiss.write_index(index, str(directory / "index"))
    (directory / "docid").write_text("".join(f"{d}\n" for d in docids))
    logger.info("wrote %s over %d vectors to %s", type(faiss.downcast_index(index)).__name__, len(docids), directory)
    return directory


def estimate_bytes(options: IndexOptions, n: int, d: int) -> int:
    """Expected size of a named type's index, from FAISS's storage layout (see the module table)."""
    o = options.resolved(n, d)
    t = o.index_type
    if t == "flat":
        return 4 * n * d
    if t == "flat-fp16":
        return 2 * n * d
    if t == "sq8":
        return n * d + 8 * d  # codes + per-dimension min and range
    if t == "hnsw":
        m = o.hnsw_m
        return 4 * n * d + round(n * (4 * (2 * m + m / (m - 1)) + 12))
    if t == "ivfpq":
        codes = n * (math.ceil(o.pq_m * o.pq_bits / 8) + 8)
        return codes + 4 * o.nlist * d + 4 * (2**o.pq_bits) * d  # + centroids + PQ codebooks
    raise IndexTypeError(f"no size formula for factory string {t!r}; build it and measure")


# ----------------------------------------------------------------------------- search time
def set_search_params(index, *, ef_search: int | None = None, nprobe: int | None = None) -> None:
    """Set HNSW ``efSearch`` / IVF ``nprobe`` on a loaded index (wrappers such as
    ``IndexPreTransform`` or ``IndexRefine`` are looked through). A parameter the index has no use
    for is an error rather than a silent no-op, so a typo'd experiment cannot report flat numbers."""
    for name, value, finder, kinds in (
        ("ef_search", ef_search, _find_hnsw, "HNSW indexes (hnsw, 'HNSW32,Flat', 'IVF1024_HNSW32,...')"),
        ("nprobe", nprobe, _find_ivf, "IVF indexes (ivfpq, 'IVF256,PQ32', ...)"),
    ):
        if value is None:
            continue
        if value < 1:
            raise IndexTypeError(f"--{name.replace('_', '-')} must be at least 1, got {value}")
        found = finder(index)
        if found is None:
            raise IndexTypeError(f"--{name.replace('_', '-')} applies only to {kinds}; this index is {describe(index)}")
        if name == "ef_search":
            found.hnsw.efSearch = value
        else:
            if value > found.nlist:
                logger.warning("--nprobe %d exceeds the %d lists; probing all of them", value, found.nlist)
            found.nprobe = min(value, found.nlist)


def fit_search_depth(index, hits: int, *, explicit_ef_search: bool = False) -> None:
    """Widen an HNSW index's ``efSearch`` to ``hits``: FAISS's HNSW returns at most about efSearch
    results, so a 1000-hit run over an index stored with efSearch 128 would silently hold ~500.
    An ``--ef-search`` the user gave below ``hits`` is kept, with a warning."""
    hnsw = _find_hnsw(index)
    if hnsw is None or hnsw.hnsw.efSearch >= hits:
        return
    if explicit_ef_search:
        logger.warning(
            "--ef-search %d < --hits %d: HNSW returns at most about %d hits per query",
            hnsw.hnsw.efSearch,
            hits,
            hnsw.hnsw.efSearch,
        )
        return
    logger.info("raising HNSW efSearch from %d to --hits %d", hnsw.hnsw.efSearch, hits)
    hnsw.hnsw.efSearch = hits


def describe(index) -> str:
    """A short name of an index's structure, e.g. ``IndexIVFPQ(nlist=256, nprobe=16)``."""
    import faiss

    index = faiss.downcast_index(index)
    name = type(index).__name__
    ivf = _find_ivf(index)
    if ivf is not None:
        return f"{name}(nlist={ivf.nlist}, nprobe={ivf.nprobe})"
    hnsw = _find_hnsw(index)
    if hnsw is not None:
        return f"{name}(M={hnsw.hnsw.nb_neighbors(1)}, efSearch={hnsw.hnsw.efSearch})"
    return name


def _find_ivf(index):
    import faiss

    try:
        return faiss.downcast_index(faiss.extract_index_ivf(index))  # the concrete class: IndexIVFPQ...
    except RuntimeError:
        return None


def _find_hnsw(index):
    """The ``IndexHNSW`` inside ``index``: itself, a wrapper's base, or an IVF's coarse quantizer."""
    import faiss

    index = faiss.downcast_index(index)
    if isinstance(index, faiss.IndexHNSW):
        return index
    for attr in ("index", "base_index"):  # IndexPreTransform, IndexRefine, IndexIDMap
        inner = getattr(index, attr, None)
        if inner is not None and not isinstance(inner, int | float):
            found = _find_hnsw(inner)
            if found is not None:
                return found
    ivf = _find_ivf(index)
    if ivf is not None:
        quantizer = faiss.downcast_index(ivf.quantizer)
        if isinstance(quantizer, faiss.IndexHNSW):
            return quantizer
    return None


def move_to_gpus(index):
    """The index copied onto every visible GPU (``faiss.index_cpu_to_all_gpus``).

    Raises :class:`IndexTypeError` with what to do when this FAISS has no GPU support (the
    ``faiss-cpu`` wheel) or no GPU is visible, and when FAISS cannot clone the type to a GPU (HNSW).
    """
    import faiss

    gpus = faiss.get_num_gpus() if hasattr(faiss, "get_num_gpus") else 0
    if gpus == 0 or not hasattr(faiss, "index_cpu_to_all_gpus"):
        raise IndexTypeError(
            "FAISS sees no GPU (this is the faiss-cpu build, or CUDA_VISIBLE_DEVICES hides the GPUs): "
            "install faiss-gpu (conda install -c pytorch faiss-gpu) or search with --faiss-device cpu"
        )
    try:
        moved = faiss.index_cpu_to_all_gpus(index)
    except RuntimeError as exc:
        raise IndexTypeError(
            f"{describe(index)} cannot move to the GPU ({str(exc).strip().splitlines()[-1]}); "
            "FAISS clones Flat and IVF indexes to GPUs, not HNSW: use --faiss-device cpu"
        ) from None
    logger.info("searching %s on %d GPU(s)", describe(index), gpus)
    return moved


def prepare_for_search(
    index,
    *,
    ef_search: int | None = None,
    nprobe: int | None = None,
    faiss_device: str = "auto",
    model_device: str = "cpu",
):
    """Apply search parameters to a loaded index and place it; returns the index to search.

    ``faiss_device``: ``cpu``; ``cuda`` (all visible GPUs, or a clear error); ``auto`` follows the
    model's ``--device``: on ``cuda`` the index moves to the GPUs when FAISS has GPU support, and
    otherwise stays on CPU with a warning that says why (faiss-cpu, or an HNSW index).
    """
    if faiss_device not in ("auto", "cpu", "cuda"):
        raise IndexTypeError(f"--faiss-device must be auto, cpu or cuda, not {faiss_device!r}")
    set_search_params(index, ef_search=ef_search, nprobe=nprobe)
    if faiss_device == "cuda":
        return move_to_gpus(index)
    if faiss_device == "auto" and str(model_device).startswith("cuda"):
        try:
            return move_to_gpus(index)
        except IndexTypeError as exc:
            logger.warning("searching the FAISS index on CPU: %s", exc)
    return index

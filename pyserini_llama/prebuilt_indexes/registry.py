"""The prebuilt indexes pyserini-llama knows, in the spirit of Pyserini's ``prebuilt_index_info``.

An entry says what an index is (model, collection, dimensions) and how to get it: archive URLs
with a checksum, and/or a local build recipe. Recipes let an index be named before any archive
is published: BM25 indexes of the BEIR collections are built with Pyserini's Lucene from a data
root (``--data-root`` / ``$PYSERINI_LLAMA_DATA``), FAISS indexes by encoding the corpus with a
RepLLaMA model. Listing never touches models or data; they are needed only when an index is
fetched.
"""

from __future__ import annotations

import difflib
import json
import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

from ..defaults import ENCODE_MAX_LENGTH
from ..errors import PyseriniLlamaError
from .download import parse_checksum

logger = logging.getLogger(__name__)

DATA_ROOT_ENV = "PYSERINI_LLAMA_DATA"

IndexKind = Literal["lucene", "faiss"]


@dataclass(frozen=True)
class BuildContext:
    """What a recipe may need from the caller: where collections live, and compute settings."""

    data_root: Path | None = None
    threads: int = 1
    device: str = "cpu"
    batch_size: int | None = None

    def collection_dir(self, collection: str) -> Path:
        """``<data_root>/<collection>`` (a BEIR directory with ``corpus.jsonl``), or a clear error."""
        if self.data_root is None:
            raise PyseriniLlamaError(
                f"the collection {collection} is needed: pass --data-root (or set ${DATA_ROOT_ENV}) "
                f"to a directory holding {collection}/corpus.jsonl"
            )
        path = Path(self.data_root).expanduser() / collection
        if not (path / "corpus.jsonl").is_file() and not (path / "corpus.jsonl.gz").is_file():
            raise PyseriniLlamaError(f"{path}/corpus.jsonl not found (data root {self.data_root})")
        return path


class Recipe(Protocol):
    """Builds an index into ``output_dir`` (which does not exist yet); returns facts for the manifest.

    ``key`` identifies what is built: a new key (other model, other settings) means a new cache
    directory instead of silently reusing an index made another way.
    """

    key: str

    def __call__(self, output_dir: Path, context: BuildContext) -> Mapping[str, object]: ...


@dataclass(frozen=True)
class LuceneBM25Recipe:
    """A Lucene index like Pyserini's ``beir-v1.0.0-*.flat`` (title + text, stored raw docs)."""

    collection: str

    @property
    def key(self) -> str:
        return f"lucene-bm25-flat/v1:{self.collection}"

    def __call__(self, output_dir: Path, context: BuildContext) -> Mapping[str, object]:
        from ..search.lucene import MARKER, build_lucene_index

        corpus = context.collection_dir(self.collection)
        build_lucene_index(corpus, output_dir, threads=context.threads)
        documents = json.loads((output_dir / MARKER).read_text())["documents"]
        return {"documents": documents, "corpus": str(corpus.resolve())}


@dataclass(frozen=True)
class RepLLaMAFaissRecipe:
    """A flat inner-product FAISS index of a collection encoded with a RepLLaMA model.

    The model is resolved only when the index is built, so an entry may name a model that is not
    published yet: listing works, fetching says which model is missing.
    """

    collection: str
    encoder: str
    fields: tuple[str, ...] = ("title", "text")
    max_length: int = ENCODE_MAX_LENGTH
    dtype: str = "float32"

    @property
    def key(self) -> str:
        fields = ",".join(self.fields)
        return f"repllama-faiss-flat/v1:{self.collection}:{self.encoder}:{fields}:{self.max_length}:{self.dtype}"

    def __call__(self, output_dir: Path, context: BuildContext) -> Mapping[str, object]:
        from ..modeling.loading import resolve_model_source

        corpus = context.collection_dir(self.collection)
        try:
            resolve_model_source(self.encoder)
        except PyseriniLlamaError as exc:
            raise PyseriniLlamaError(f"its encoder {self.encoder!r} is not available: {exc}") from None

        from ..data.corpus import read_corpus
        from ..encode import encode_corpus
        from ..encoders.repllama import RepLLaMAEncoder

        documents = list(read_corpus(corpus).values())
        encoder = RepLLaMAEncoder(
            self.encoder,
            dtype=self.dtype,
            device=context.device,
            passage_max_length=self.max_length,
            batch_size=context.batch_size or 16,
        )
        encode_corpus(encoder, documents, output_dir, to_faiss=True, fields=self.fields)
        return {"documents": len(documents), "dimensions": encoder.dimension, "corpus": str(corpus.resolve())}


@dataclass(frozen=True)
class PrebuiltIndex:
    """One registry entry. ``model`` is the encoder name, or ``"bm25"`` for a Lucene BM25 index."""

    name: str
    description: str
    kind: IndexKind
    model: str
    collection: str
    dimensions: int | None = None
    documents: int | None = None
    urls: tuple[str, ...] = ()
    checksum: str | None = None  # "sha256:<hex>" or "md5:<hex>" of the archive
    size: int | None = None  # archive bytes, when known
    filename: str | None = None  # archive file name, when the URLs do not end in it
    recipe: Recipe | Callable[[Path, BuildContext], Mapping[str, object]] | None = None

    def __post_init__(self):
        if not self.name or "/" in self.name or self.name.startswith("."):
            raise ValueError(f"bad prebuilt index name {self.name!r}")
        if self.kind not in ("lucene", "faiss"):
            raise ValueError(f"{self.name}: kind must be 'lucene' or 'faiss', not {self.kind!r}")
        if self.filename is not None and (self.filename in ("", ".", "..") or "/" in self.filename):
            raise ValueError(f"{self.name}: filename must be a plain file name, not {self.filename!r}")
        object.__setattr__(self, "urls", tuple(self.urls))
        if not self.urls and self.recipe is None:
            raise ValueError(f"{self.name}: give download urls, a build recipe, or both")
        if self.urls:
            if self.checksum is None:
                raise ValueError(f"{self.name}: download urls need a checksum")
            parse_checksum(self.checksum)

    @property
    def recipe_key(self) -> str | None:
        """What the recipe builds: its ``key``, else the callable's qualified name."""
        if self.recipe is None:
            return None
        key = getattr(self.recipe, "key", None)
        return key if isinstance(key, str) else f"{self.recipe.__module__}.{self.recipe.__qualname__}"

    @property
    def source(self) -> str:
        return " + ".join(s for s, on in (("download", self.urls), ("build", self.recipe)) if on)


REGISTRY: dict[str, PrebuiltIndex] = {}


def register_prebuilt_index(entry: PrebuiltIndex, *, replace: bool = False) -> PrebuiltIndex:
    """Add ``entry`` (e.g. your own published index) so every name-taking API and CLI finds it."""
    if entry.name in REGISTRY and not replace:
        raise ValueError(f"prebuilt index {entry.name!r} is already registered (pass replace=True)")
    REGISTRY[entry.name] = entry
    return entry


def get_entry(name: str) -> PrebuiltIndex:
    """The registry entry for ``name``, or an error suggesting close names."""
    try:
        return REGISTRY[name]
    except KeyError:
        close = difflib.get_close_matches(name, REGISTRY, n=3)
        hint = (
            f"; did you mean {', '.join(close)}?"
            if close
            else "; see `python -m pyserini_llama.prebuilt_indexes --list`"
        )
        raise PyseriniLlamaError(f"unknown prebuilt index {name!r}{hint}") from None


def default_data_root(data_root: str | os.PathLike | None = None) -> Path | None:
    """``data_root`` if given, else ``$PYSERINI_LLAMA_DATA``, else None (recipes then say what to pass)."""
    value = data_root if data_root is not None else os.environ.get(DATA_ROOT_ENV) or None
    return Path(value).expanduser() if value is not None else None


# BEIR collections available as files (BEIR layout) under a data root; Pyserini's BEIR naming.
_BEIR = {"scifact": ("SciFact", 5183), "nfcorpus": ("NFCorpus", 3633)}

for _key, (_title, _docs) in _BEIR.items():
    register_prebuilt_index(
        PrebuiltIndex(
            name=f"beir-v1.0.0-{_key}.bm25-flat",
            description=(
                f"Lucene BM25 flat index of BEIR (v1.0.0) {_title}, as Pyserini's beir-v1.0.0-{_key}.flat "
                "(title + text, raw documents stored); built locally from <data-root>/beir/" + _key
            ),
            kind="lucene",
            model="bm25",
            collection=f"beir/{_key}",
            documents=_docs,
            recipe=LuceneBM25Recipe(f"beir/{_key}"),
        )
    )
    # The RepLLaMA model this project trained on SciFact + NFCorpus train and ships
    # (pyserini_llama/models/repllama-smollm2-135m: SmolLM2-135M backbone, 576-dim, trained and
    # served at passage length 64). Search it with --encoder repllama-smollm2-135m --max-length 32.
    register_prebuilt_index(
        PrebuiltIndex(
            name=f"beir-v1.0.0-{_key}.repllama-smollm2-135m",
            description=(
                f"FAISS flat index of BEIR (v1.0.0) {_title}, encoded by the shipped RepLLaMA "
                "repllama-smollm2-135m (passage max length 64); built locally from <data-root>/beir/" + _key
            ),
            kind="faiss",
            model="repllama-smollm2-135m",
            collection=f"beir/{_key}",
            dimensions=576,
            documents=_docs,
            recipe=RepLLaMAFaissRecipe(f"beir/{_key}", encoder="repllama-smollm2-135m", max_length=64),
        )
    )

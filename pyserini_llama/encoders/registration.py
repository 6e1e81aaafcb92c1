"""RepLLaMA as a Pyserini query and document encoder.

Pyserini has no plugin mechanism: its CLIs look an encoder class up in
``query_encoder_class_map`` / ``document_encoder_class_map`` (by ``--encoder-class``, else by the
first key that is a substring of the model name). We put ``repllama`` *first* in both maps so
that a model path such as ``/models/repllama-...`` is matched before keys like ``ance`` or ``dse``
that might also occur in it.
"""

from __future__ import annotations

import logging
import sys
from types import ModuleType

from ..bootstrap import import_pyserini

logger = logging.getLogger(__name__)

ENCODER_CLASS = "repllama"


def _insert_first(mapping: dict, key: str, value) -> None:
    if list(mapping)[:1] == [key] and mapping[key] is value:
        return
    rest = [(k, v) for k, v in mapping.items() if k != key]
    mapping.clear()
    mapping[key] = value
    mapping.update(rest)


def register_with_pyserini(encode_module: ModuleType | None = None) -> None:
    """Add ``repllama`` to Pyserini's encoder maps (idempotent)."""
    if encode_module is None:
        encode_module = import_pyserini("pyserini.encode")
    adapters = sys.modules.get(f"{__package__}.pyserini_adapters")
    if adapters is not None and not hasattr(adapters, "RepLLaMADocumentEncoder"):
        return  # mid-import: the adapters module registers itself when it finishes
    from .pyserini_adapters import RepLLaMADocumentEncoder, RepLLaMAQueryEncoder

    _insert_first(encode_module.query_encoder_class_map, ENCODER_CLASS, RepLLaMAQueryEncoder)
    _insert_first(encode_module.document_encoder_class_map, ENCODER_CLASS, RepLLaMADocumentEncoder)

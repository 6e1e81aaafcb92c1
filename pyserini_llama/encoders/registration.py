"""Put an encoder class pair first in Pyserini's encoder maps (generic: it knows no encoder class).

Pyserini has no plugin mechanism: its CLIs look an encoder class up in
``query_encoder_class_map`` / ``document_encoder_class_map`` (by ``--encoder-class``, else by the
first key that is a substring of the model name). We put ``repllama`` *first* in both maps so
that a model path such as ``/models/repllama-...`` is matched before keys like ``ance`` or ``dse``
that might also occur in it.

This module sits below the adapters: :mod:`.pyserini_adapters` defines the classes and calls
:func:`register_encoder_classes` when it is imported, and the start-up hook
(:mod:`pyserini_llama._startup`) imports the adapters once ``pyserini.encode`` has run. So the maps
are filled however the two imports are ordered, and nothing here imports the adapters.
"""

from __future__ import annotations

import logging
from types import ModuleType

logger = logging.getLogger(__name__)

ENCODER_CLASS = "repllama"


def _insert_first(mapping: dict, key: str, value) -> None:
    if list(mapping)[:1] == [key] and mapping[key] is value:
        return
    rest = [(k, v) for k, v in mapping.items() if k != key]
    mapping.clear()
    mapping[key] = value
    mapping.update(rest)


def register_encoder_classes(
    encode_module: ModuleType, query_encoder: type, document_encoder: type, name: str = ENCODER_CLASS
) -> None:
    """Make ``name`` the first key of ``encode_module``'s query and document encoder maps (idempotent)."""
    _insert_first(encode_module.query_encoder_class_map, name, query_encoder)
    _insert_first(encode_module.document_encoder_class_map, name, document_encoder)
    logger.debug("registered %s first in %s's encoder maps", name, encode_module.__name__)

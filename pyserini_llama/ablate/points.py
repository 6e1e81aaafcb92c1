"""One JSON file per finished ablation point, written atomically, so sweeps resume where they stopped.

A point is reused only when its stored parameters equal the ones asked for now (model files,
data fingerprints, lengths, ...): changing a flag recomputes the points it affects instead of
silently reporting stale numbers. A point whose file is missing (never run, or interrupted before
it finished) is computed.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..atomic import write_json_atomic

logger = logging.getLogger(__name__)


def point_id(*parts: object) -> str:
    """A file-name-safe point name: ``point_id("rankllama", "maxp", 512)`` -> ``rankllama-maxp-512``."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", "-".join(str(p) for p in parts)).strip("-.")


def _normalise(value: Any) -> Any:
    return json.loads(json.dumps(value))


class PointStore:
    """``<output-dir>/points/<point>.json``; :meth:`get_or_compute` is the whole interface."""

    def __init__(self, output_dir: str | Path):
        self.directory = Path(output_dir) / "points"

    def path(self, point: str) -> Path:
        return self.directory / f"{point}.json"

    def load(self, point: str, params: dict) -> dict | None:
        """The stored record of ``point`` if it was computed with exactly ``params``, else None."""
        path = self.path(point)
        if not path.is_file():
            return None
        try:
            record = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            logger.warning("%s is unreadable; recomputing the point", path)
            return None
        if record.get("params") != _normalise(params):
            logger.info("%s was computed with other parameters; recomputing it", path)
            return None
        return record

    def get_or_compute(self, point: str, params: dict, compute: Callable[[], dict]) -> dict:
        """The record of ``point``: reused from disk if its parameters match, else ``compute()``'d and stored.

        ``compute`` returns the point's results (metrics, commands, ...); ``point`` and ``params``
        are added here. The file appears only once the point is complete.
        """
        record = self.load(point, params)
        if record is not None:
            logger.info("point %s: reusing %s", point, self.path(point))
            return record
        logger.info("point %s: computing", point)
        record = {"point": point, "params": _normalise(params), **compute()}
        write_json_atomic(record, self.path(point))
        return record

"""A sweep's table, as markdown (for reading and docs) and JSON (for scripts), one row per point.

Every row carries the point's equivalent command lines, so a number can be reproduced on its own.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

from ..atomic import write_json_atomic, write_text_atomic

logger = logging.getLogger(__name__)

DEFAULT_FORMATS = {"seconds": "{:.1f}", "train seconds": "{:.1f}", "learning rate": "{:g}"}


def _cell(value, fmt: str | None = None) -> str:
    if fmt is not None and isinstance(value, int | float):
        return fmt.format(value)
    if isinstance(value, float):
        return f"{value:.4f}"
    if isinstance(value, list):
        return "<br>".join(f"`{v}`" for v in value)
    return "" if value is None else str(value).replace("|", "\\|")


def write_table(
    rows: Sequence[dict],
    columns: Sequence[str],
    out_stem: str | Path,
    *,
    title: str,
    notes: Sequence[str] = (),
    formats: Mapping[str, str] | None = None,
) -> tuple[Path, Path]:
    """``<out_stem>.md`` (the ``columns`` of each row) and ``<out_stem>.json`` (the rows whole).

    ``formats``: a ``str.format`` pattern per column for numbers (default: floats to 4 decimals,
    the precision metrics are compared at)."""
    formats = {**DEFAULT_FORMATS, **(formats or {})}
    out_stem = Path(out_stem)
    lines = [f"# {title}", ""]
    lines += [f"{note}" for note in notes] + ([""] if notes else [])
    lines.append("| " + " | ".join(columns) + " |")
    lines.append("|" + "|".join("---" for _ in columns) + "|")
    for row in rows:
        lines.append("| " + " | ".join(_cell(row.get(c), formats.get(c)) for c in columns) + " |")
    md = out_stem.with_suffix(".md")
    write_text_atomic("\n".join(lines) + "\n", md)
    js = out_stem.with_suffix(".json")
    write_json_atomic({"title": title, "notes": list(notes), "columns": list(columns), "rows": list(rows)}, js)
    logger.info("wrote %s and %s", md, js)
    return md, js

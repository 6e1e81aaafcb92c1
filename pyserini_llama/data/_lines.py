"""Line reading shared by the readers: gzip, UTF-8 per line, and one policy for bad lines.

Every reader reports a bad line the same way: by default an :class:`InputFormatError` naming the
file and the 1-based line; in the opt-in skip mode the line is counted in a :class:`SkippedLines`,
logged, and reading goes on. A summary is logged when the file ends, so no loss is silent.
"""

from __future__ import annotations

import gzip
import logging
import zlib
from collections.abc import Iterator
from pathlib import Path

from ..errors import InputFormatError, PyseriniLlamaError, SkippedLines

logger = logging.getLogger(__name__)


class BadLines:
    """Raise on a bad line, or (``skip=True``) count it and let the reader go on."""

    def __init__(self, path: str | Path, skip: bool = False, skipped: SkippedLines | None = None):
        self.path = str(path)
        self.skip = skip
        self.skipped = skipped if skipped is not None else SkippedLines(path)

    def __call__(self, line: int, reason: str) -> None:
        if not self.skip:
            raise InputFormatError(self.path, line, reason)
        self.skipped.add(line, reason)

    def report(self) -> None:
        if len(self.skipped):
            logger.warning("%s", self.skipped.summary())


def iter_lines(path: str | Path, bad: BadLines) -> Iterator[tuple[int, str]]:
    """Yield ``(line_number, text)`` for each non-blank line, without its line ending.

    Lines are decoded one by one, so a stray non-UTF-8 byte names its line instead of
    failing the whole file. ``.gz`` files are read through gzip. A UTF-8 BOM is dropped.
    """
    path = Path(path)
    if not path.is_file():
        raise PyseriniLlamaError(f"{path}: no such file")
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            for number, raw in enumerate(f, start=1):
                try:
                    text = raw.decode("utf-8")
                except UnicodeDecodeError as exc:
                    bad(number, f"not valid UTF-8 (byte {raw[exc.start]:#04x} at column {exc.start + 1})")
                    continue
                if number == 1:
                    text = text.removeprefix("\ufeff")
                text = text.rstrip("\r\n")
                if text.strip():
                    yield number, text
    except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
        raise InputFormatError(path, None, f"not a readable gzip file ({exc})") from exc

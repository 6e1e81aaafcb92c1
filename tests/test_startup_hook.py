"""The start-up hook (:mod:`pyserini_llama._startup`) and ``PYSERINI_LLAMA_NO_HOOK=1``, which turns it off."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

PROBE = """
import argparse, json, sys
import pyserini_llama
from pyserini_llama._startup import PyseriniHook, install
install()  # a second call must not install it either
print(json.dumps({
    "finder": any(isinstance(f, PyseriniHook) for f in sys.meta_path),
    "parse_args_is_argparse": argparse.ArgumentParser.parse_args.__module__ == "argparse"
    and not hasattr(argparse.ArgumentParser.parse_args, "__wrapped__"),
}))
"""


def _probe(**env: str) -> dict:
    environ = {k: v for k, v in os.environ.items() if k != "PYSERINI_LLAMA_NO_HOOK"}
    environ.update(env, PYTHONPATH=str(REPO))
    out = subprocess.run([sys.executable, "-c", PROBE], env=environ, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_hook_installed_by_default():
    assert _probe() == {"finder": True, "parse_args_is_argparse": True}


def test_no_hook_env_var_installs_nothing():
    assert _probe(PYSERINI_LLAMA_NO_HOOK="1") == {"finder": False, "parse_args_is_argparse": True}


def test_no_hook_env_var_leaves_search_parsers_alone(monkeypatch):
    """Even if the finder were asked (it is not installed), a watched search module patches nothing."""
    import argparse

    from pyserini_llama._startup import PyseriniHook

    monkeypatch.setenv("PYSERINI_LLAMA_NO_HOOK", "1")
    before = argparse.ArgumentParser.parse_args
    assert PyseriniHook().find_spec("pyserini.search.lucene.__main__", None) is None
    assert argparse.ArgumentParser.parse_args is before

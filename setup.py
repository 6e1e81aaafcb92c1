"""Metadata lives in setup.cfg. This file only ships ``pyserini_llama.pth``.

The .pth line runs at interpreter start and installs a tiny import hook, so plain
``python -m pyserini.search.faiss --encoder <...repllama...>`` finds our encoder.
"""

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

PTH = "pyserini_llama.pth"


class BuildWithPth(build_py):
    def run(self):
        super().run()
        self.copy_file(str(Path(__file__).parent / PTH), str(Path(self.build_lib) / PTH))

    def get_outputs(self, include_bytecode=True):
        return [*super().get_outputs(include_bytecode), str(Path(self.build_lib) / PTH)]


setup(cmdclass={"build_py": BuildWithPth})

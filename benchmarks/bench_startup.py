"""What the ``pyserini_llama.pth`` start-up hook adds to every Python start (target: under 5 ms).

Reads ``python -X importtime -c pass`` over many fresh interpreters: the cumulative import time of
``pyserini_llama`` is exactly what the hook costs, and the interpreter's total ``site`` time is
printed beside it for scale.

    python benchmarks/bench_startup.py --runs 30
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys


def import_times(runs: int) -> tuple[list[float], list[float]]:
    hook, site = [], []
    for _ in range(runs):
        stderr = subprocess.run(
            [sys.executable, "-X", "importtime", "-c", "pass"], capture_output=True, text=True, check=True
        ).stderr
        cumulative = {}
        for line in stderr.splitlines():
            if line.startswith("import time:") and "|" in line:
                _, cum, name = (part.strip() for part in line.split("|"))
                if cum.isdigit():
                    cumulative[name] = max(cumulative.get(name, 0), int(cum))
        if "pyserini_llama" not in cumulative:
            raise SystemExit("pyserini_llama was not imported at start-up: is pyserini_llama.pth installed?")
        hook.append(cumulative["pyserini_llama"] / 1000)
        site.append(cumulative.get("site", 0) / 1000)
    return hook, site


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    hook, site = import_times(args.runs)
    print(f"runs {args.runs}")
    print(f"start-up hook (import pyserini_llama): median {statistics.median(hook):.2f} ms, max {max(hook):.2f} ms")
    print(f"all of site.py for comparison       : median {statistics.median(site):.2f} ms")
    print(f"hook share of site.py               : {statistics.median(hook) / statistics.median(site):.1%}")


if __name__ == "__main__":
    main()

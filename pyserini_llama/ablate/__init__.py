"""Ablations as commands: ``python -m pyserini_llama.ablate length|depth|lora-vs-full``.

Each sweep computes a few *points* (one model setting evaluated on one dataset split) with the
library functions the single-step commands use (``encode_corpus``, ``dense_search``,
``RankLLaMAReranker.rerank_run``, ``evaluate_run``, the ``train`` command), and writes into its
``--output-dir``:

    points/<point>.json   one finished point: parameters, metrics, seconds, the equivalent commands
    runs/<point>.trec     the run it was scored on
    <sweep>.md/.json      the table (one row per point, with its command line)
    <sweep>.png           the plot

Why per-point files: sweeps on a CPU take hours; a point's JSON is written atomically only once the
point is finished, so a rerun after an interruption skips finished points and redoes the one that
was cut off, and a model is loaded only if some point still has to be computed. Why the recorded
commands: every number in a table can be reproduced (and checked) with the ordinary commands.

Layers: this package sits above ``pipeline``, ``rerank``, ``encode``, ``search``, ``train`` and
``eval``; none of them imports it. ``plot.py`` is also the plotting helper of ``reproduce/``.
"""

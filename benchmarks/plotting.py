"""What the plot scripts share: a headless matplotlib figure, and writing it as a PNG."""

from __future__ import annotations

from pathlib import Path


def new_figure(size: tuple[float, float] = (8, 4.5)):
    """``(figure, axes)`` drawn without a display (the Agg backend)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=size)


def save_figure(fig, out: Path) -> None:
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    print(f"wrote {out}")

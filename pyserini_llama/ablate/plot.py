"""Matplotlib helpers shared by the ablation sweeps and the plot scripts in ``reproduce/``.

Headless (the Agg backend) so plots are written on servers without a display; every figure is
saved as a PNG next to the table it illustrates.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..atomic import atomic_write

logger = logging.getLogger(__name__)


def new_figure(size: tuple[float, float] = (8, 4.5), ncols: int = 1):
    """``(figure, axes)`` drawn without a display (the Agg backend); ``ncols > 1`` gives a row of axes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(1, ncols, figsize=size, squeeze=True)


def save_figure(fig, out: str | Path) -> Path:
    """Lay out, write ``out`` as a 120-dpi PNG (creating its directory), close the figure."""
    import matplotlib.pyplot as plt

    out = Path(out)
    fig.tight_layout()
    atomic_write(out, lambda f: fig.savefig(f, dpi=120, format="png"), binary=True)
    plt.close(fig)
    logger.info("wrote %s", out)
    return out


_REFERENCE_STYLES = (("dimgrey", "--"), ("black", ":"), ("tab:red", "-."), ("tab:purple", "--"))


@dataclass
class Panel:
    """One axes of a line plot: named series of ``(x, y)`` points and named horizontal reference lines."""

    title: str
    xlabel: str
    ylabel: str
    series: Mapping[str, Sequence[tuple[float, float]]]
    references: Mapping[str, float] = field(default_factory=dict)
    log_x: bool = False


def line_plot(panels: Sequence[Panel], out: str | Path, title: str | None = None) -> Path:
    """Panels side by side, each series a line with markers, references dashed (named in the legend, which
    stays put on a log axis where a text label drawn at the left limit would not); written to ``out``."""
    fig, axes = new_figure((6 * len(panels), 4.5), ncols=len(panels))
    axes = list(axes) if len(panels) > 1 else [axes]
    for ax, panel in zip(axes, panels, strict=True):
        for label, points in panel.series.items():
            points = sorted(points)
            if points:
                ax.plot([x for x, _ in points], [y for _, y in points], marker="o", label=label)
        for (label, value), (color, style) in zip(panel.references.items(), _REFERENCE_STYLES, strict=False):
            ax.axhline(value, linestyle=style, linewidth=1, color=color, label=f"{label} ({value:.4f})")
        if panel.log_x:
            ax.set_xscale("log", base=2)
            xs = sorted({x for pts in panel.series.values() for x, _ in pts})
            if xs:
                ax.set_xticks(xs, [f"{x:g}" for x in xs])
        ax.set_title(panel.title)
        ax.set_xlabel(panel.xlabel)
        ax.set_ylabel(panel.ylabel)
        ax.grid(alpha=0.3)
        if panel.series or panel.references:
            ax.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    return save_figure(fig, out)

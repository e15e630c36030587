"""The one plotting helper: grouped bars with optional error bars, markers and reference lines.

Used for a run's per-test-set results, the demo's variants and the paper tables' reports.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from pathlib import Path

import numpy as np


def grouped_bars(
    path: str | Path,
    groups: Sequence[str],
    series: dict[str, Sequence[float | None]],
    *,
    errors: dict[str, Sequence[float | None]] | None = None,
    markers: dict[str, Sequence[float | None]] | None = None,
    marker_label: str = "paper",
    lines: dict[str, float] | None = None,
    ylabel: str = "accuracy (%)",
    title: str | None = None,
    ylim: tuple[float, float] | None = (0, 100),
    label_width: int = 14,
) -> Path:
    """Draw one group of bars per entry of `groups`, one bar per series in each group; save a PNG.

    `series[name][i]` is the bar of series `name` in group i (None: no bar). `errors` adds error
    bars, `markers` a black tick on a bar (e.g. the paper's value), `lines` labelled horizontal
    reference lines (e.g. chance). Group labels wrap at `label_width` characters; the figure widens
    with the number of bars so 48 stay readable.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(series)
    n_groups, n_series = len(groups), max(1, len(names))
    width = 0.8 / n_series
    x = np.arange(n_groups)
    fig, ax = plt.subplots(figsize=(min(40.0, max(5.0, 0.35 * n_groups * n_series + 2.5)), 4.2))
    marked = False
    for k, name in enumerate(names):
        positions = x - 0.4 + width * (k + 0.5)
        values = [np.nan if v is None else v for v in series[name]]
        errs = None
        if errors and name in errors and any(e is not None for e in errors[name]):
            errs = [0.0 if e is None else e for e in errors[name]]
        ax.bar(positions, values, width * 0.92, yerr=errs, label=name, capsize=2 if errs else 0)
        if markers and name in markers:
            points = [(p, m) for p, m in zip(positions, markers[name], strict=True) if m is not None]
            if points:
                px, py = zip(*points, strict=True)
                ax.scatter(px, py, marker="_", s=max(40, 600 * width), color="black", linewidths=2,
                           label=None if marked else marker_label, zorder=3)  # fmt: skip
                marked = True
    for k, (label, value) in enumerate((lines or {}).items()):
        ax.axhline(value, color="grey", linestyle=(":", "--", "-.")[k % 3], linewidth=1, label=label)
    ax.set_xticks(x, ["\n".join(textwrap.wrap(g, label_width)) or g for g in groups], fontsize=7)
    ax.set_ylabel(ylabel)
    if ylim is not None:
        ax.set_ylim(*ylim)
    if title:
        ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path

"""What a report is made of (figures, tables, key numbers) and the one way figures are drawn and saved.

matplotlib runs on the Agg backend (no display needed); every figure is saved as PNG and SVG.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

DPI = 110
STYLE = {"axes.grid": True, "grid.alpha": 0.3, "axes.spines.top": False, "axes.spines.right": False,
         "axes.titlesize": 12, "axes.labelsize": 11, "legend.fontsize": 9, "figure.titlesize": 13}


@dataclass
class Figure:
    name: str     # file stem: <name>.png and <name>.svg
    title: str    # shown above the figure in report.html
    png: Path
    svg: Path
    caption: str = ""


@dataclass
class Table:
    title: str
    columns: list[str]
    rows: list[list]


@dataclass
class Report:
    """Everything one folder's report shows; `numbers` are the key results (also in report.json)."""

    kind: str
    title: str
    folder: Path
    numbers: dict = field(default_factory=dict)
    figures: list[Figure] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # why a figure is missing, in plain words


def pyplot():
    """matplotlib.pyplot on the Agg backend, with the report style."""
    import matplotlib
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt
    plt.rcParams.update(STYLE)
    return plt


def save(fig, report: Report, out: Path, name: str, title: str, caption: str = "") -> Figure:
    """Write `fig` as out/<name>.png and .svg, close it and add it to `report`."""
    plt = pyplot()
    png, svg = out / f"{name}.png", out / f"{name}.svg"
    fig.savefig(png, dpi=DPI, bbox_inches="tight", facecolor="white")
    fig.savefig(svg, bbox_inches="tight", facecolor="white")
    plt.close(fig)
    figure = Figure(name, title, png, svg, caption)
    report.figures.append(figure)
    return figure


def optional_float(value) -> Optional[float]:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None

"""The study view's text panels: the objective against a parameter (a scatter of markers) and the
parameter importance bars, as Rich Text."""

from __future__ import annotations

from typing import Any

import numpy as np
from rich.text import Text

from .axes import axis_formatter, nice_ticks
from .plotframe import fmt_value


def _y_labels(y0: float, y1: float, rows: int) -> dict[int, str]:
    """Row -> label: round 1-2-5 values (6.5, 7.0, 7.5, as a W&B axis reads), each at the row nearest
    its value, in one format, with a free row between two labels."""
    ticks = nice_ticks(y0, y1, max(2, rows // 3 + 1))
    fmt = axis_formatter(ticks)
    out: dict[int, str] = {}
    for t in sorted(ticks, reverse=True):
        r = int(np.clip(np.rint((y1 - t) / (y1 - y0) * (rows - 1)), 0, rows - 1))
        if not out or r - max(out) >= 2:
            out[r] = fmt(t)
    return out


def scatter_text(points: list[tuple[Any, float, str]], width: int, height: int, log_x: bool = False,
                 choices: bool = False) -> Text:
    """Objective against one parameter, a marker a cell: ● a completed trial (green), ○ a pruned one
    (magenta: its value is where it stopped, not a final one); a cell that several trials share shows
    the completed one. Round y values on the left (``_y_labels``), the x range below; a cell of
    margin on either side keeps the extreme trials off the axis. Choice parameters are spread evenly
    in their order. (Whole-cell markers: braille dots, a quarter of a cell, were too faint to find.)"""
    if not points:
        return Text("no values yet", style="dim italic")
    ph = max(1, height - 1)
    if choices:
        cats = sorted({str(p[0]) for p in points})
        xs = np.array([cats.index(str(p[0])) for p in points], dtype=float)
    else:
        xs = np.array([float(p[0]) for p in points], dtype=float)
        if log_x:
            xs = np.log10(np.maximum(xs, 1e-300))
    finite = [i for i, p in enumerate(points) if np.isfinite(p[1])]  # a NaN objective has no place on the y axis
    points, xs = [points[i] for i in finite], xs[finite]  # (its x went along: the markers after it shifted)
    if not points:
        return Text("no finite values yet", style="dim italic")
    ys = np.array([p[1] for p in points], dtype=float)
    x0, x1 = float(xs.min()), float(xs.max())
    y0, y1 = float(ys.min()), float(ys.max())
    if x1 - x0 < 1e-12:
        x0, x1 = x0 - 1, x1 + 1
    if y1 - y0 < 1e-12:
        y0, y1 = y0 - abs(y0) * 0.05 - 1e-3, y1 + abs(y1) * 0.05 + 1e-3
    labels = _y_labels(y0, y1, ph)
    label_w = max(7, 1 + max(map(len, labels.values()), default=0))  # (3.21132 is 7 wide: the grid moves over)
    pw = max(3, width - label_w)
    cols = 1 + np.clip(np.rint((xs - x0) / (x1 - x0) * (pw - 3)), 0, pw - 3).astype(int)
    rows = np.clip(np.rint((y1 - ys) / (y1 - y0) * (ph - 1)), 0, ph - 1).astype(int)
    grid = np.zeros((ph, pw), dtype=int)  # 0 empty, 1 pruned, 2 complete
    for c, r, p in zip(cols, rows, points):
        grid[r, c] = max(grid[r, c], 2 if p[2] == "complete" else 1)
    out = Text()
    for i in range(ph):
        label = labels.get(i, "")
        out.append(f"{label:>{label_w - 1}} ", style="#7a8391")
        for v in grid[i]:
            out.append(" " if v == 0 else "●" if v == 2 else "○", style="" if v == 0 else _MARK_STYLE[v])
        out.append("\n")
    if choices:
        lo, hi = cats[0], cats[-1]
    elif log_x:
        lo, hi = fmt_value(10 ** x0), fmt_value(10 ** x1)
    else:
        lo, hi = fmt_value(x0), fmt_value(x1)
    out.append(" " * (label_w + 1) + lo + " " * max(1, pw - 2 - len(lo) - len(hi)) + hi, style="#7a8391")
    return out


_MARK_STYLE = {1: "#c77dff", 2: "bold #7bd389"}


def importance_text(pairs: list[tuple[str, float]], width: int) -> Text:
    """One bar a parameter (name, importance in [0, 1]): the name, a bar, the value. A name longer
    than half the width ends in "…"."""
    label_w = min(max(len(n) for n, _ in pairs), max(4, width // 2))
    bar_w = max(1, width - label_w - 7)
    lines = Text()
    for name, v in pairs:
        n = v * bar_w
        full = int(n)
        part = " ▏▎▍▌▋▊▉"[int((n - full) * 8)] if full < bar_w else ""
        label = name if len(name) <= label_w else name[:label_w - 1] + "…"
        lines.append(f"{label:<{label_w}} ", style="bold")
        lines.append("█" * full + part.strip(), style="#4ea1ff")
        lines.append(f" {v:.2f}\n", style="dim")
    return lines

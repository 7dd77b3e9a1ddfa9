"""What a plot draws, as data: the traces, the shaded seed bands and the ``Frame`` that holds them, and
how a plot writes its numbers. Pure (numpy and dataclasses, no Textual): the panels build frames from
run data, ``render_plot`` (plot.py) draws them."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..metrics import Band
from ..series import BlockCache


@dataclass
class Trace:
    """One series to draw. ``x`` sorted; ``blocks`` (optional) pre-reduced min/max for long series.

    ``markers``: a sparse series (evaluations) draws a dot at each point, joined by lines; with
    ``line`` False the dots alone (independent values, such as a study's trials, are not a path);
    ``step``: each value holds until the next point (a best-so-far), not a straight line to it."""

    x: np.ndarray
    y: np.ndarray
    color: str
    label: str = ""
    blocks: BlockCache | None = None
    dim: bool = False
    markers: bool = False
    line: bool = True
    step: bool = False


def fmt_value(v: float) -> str:
    """Compact number for titles and tables: 3.142, 0.0312, 1.2e-05, 48.2K."""
    if v is None or not math.isfinite(v):
        return "—"
    a = abs(v)
    if a == 0:
        return "0"
    if a >= 1e4:
        for div, suf in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "K")):
            if a >= div:
                return f"{v / div:.3g}{suf}"
    if a >= 100:
        return f"{v:.0f}"
    if a >= 0.01:
        return f"{v:.4g}"
    return f"{v:.1e}".replace("e-0", "e-")


def fmt_x(v: float, tokens: bool) -> str:
    if not math.isfinite(v):
        return ""
    if tokens or abs(v) >= 1e5:
        return fmt_value(v)
    return f"{int(round(v)):,}"


@dataclass
class Fill:
    """A shaded area between two curves on one x grid (a seed band: min–max or ± SE over seeds),
    drawn as a tint of ``color`` behind the lines, so the mean line over it stays readable."""

    x: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    color: str


@dataclass
class Frame:
    """The inputs of one drawing; equal frames draw identical pictures.

    ``yrange``: a fixed range the data can only widen; ``log_floor``: on a log axis, values <= 0 (an
    exact zero) are drawn at this floor and labelled "0"; ``cursor``: the inspect line's x; ``xname``:
    the x axis's name, in the corner under the y labels."""

    traces: list[Trace]
    bands: tuple[Band, ...] = ()
    log: bool = False
    xrange: tuple[float, float] | None = None
    tokens: bool = False
    message: str = "no data yet"
    token: object = field(default=None)
    yrange: tuple[float, float] | None = None
    log_floor: float = 0.0
    cursor: float | None = None
    fills: tuple[Fill, ...] = ()
    xname: str = ""  # what x counts ("step", "tokens"): written in the x axis's corner where it is free

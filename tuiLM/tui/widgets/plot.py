"""A braille line plot for live training curves.

Why our own widget and not textual-plotext: plotext builds its canvas point by point in Python and
re-parses its ANSI output on every draw, so a redraw costs O(points) Python work; it has no notion
of min/max buckets, colour bands behind the curve, or a cached frame. Here a redraw is numpy from
start to end: min/max buckets per dot column (2 per terminal column, spikes survive), a boolean dot
grid for every series, and one braille code point per cell. The frame is cached as Strips and only
rebuilt when the data token, the size or a toggle changes. Output is deterministic (snapshot tests).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
from rich.segment import Segment
from rich.style import Style
from textual.binding import Binding
from textual.message import Message
from textual.strip import Strip
from textual.widget import Widget

from ..metrics import Band
from ..series import BlockCache, Buckets, minmax_downsample

# dot (row, col) inside a braille cell -> bit
_BITS = np.array([[0x01, 0x08], [0x02, 0x10], [0x04, 0x20], [0x40, 0x80]], dtype=np.int32)
BAND_BG = {"good": "#0f2a17", "bad": "#3a1418"}
AXIS_STYLE = Style(color="#7a8391")
Y_LABEL_W = 8


@dataclass
class Trace:
    """One series to draw. ``x`` sorted; ``blocks`` (optional) pre-reduced min/max for long series."""

    x: np.ndarray
    y: np.ndarray
    color: str
    label: str = ""
    blocks: BlockCache | None = None
    dim: bool = False


def fmt_value(v: float) -> str:
    """Compact number for axes and titles: 3.142, 0.0312, 1.2e-05, 48.2K."""
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
class Frame:
    """The inputs of one drawing; equal frames draw identical pictures."""

    traces: list[Trace]
    bands: tuple[Band, ...] = ()
    log: bool = False
    xrange: tuple[float, float] | None = None
    tokens: bool = False
    message: str = "no data yet"
    token: object = field(default=None)


def _row_of(v: np.ndarray, ymin: float, ymax: float, rows: int) -> np.ndarray:
    """Value -> dot row (0 = top)."""
    r = (ymax - v) / (ymax - ymin) * (rows - 1)
    return np.clip(np.rint(r), 0, rows - 1).astype(np.int64)


def _spans(b: Buckets, ymin: float, ymax: float, rows: int, ncols: int) -> tuple[np.ndarray, np.ndarray, int, int]:
    """Per dot column [top, bottom] rows of a continuous line through the buckets."""
    c = b.cols
    top_o = _row_of(b.hi, ymin, ymax, rows)
    bot_o = _row_of(b.lo, ymin, ymax, rows)
    exit_o = _row_of(b.last, ymin, ymax, rows).astype(np.float64)
    c0, c1 = int(c[0]), int(c[-1])
    cols = np.arange(c0, c1 + 1)
    exit_all = np.rint(np.interp(cols, c, exit_o)).astype(np.int64)  # gaps: straight line
    top = exit_all.copy()
    bot = exit_all.copy()
    top[c - c0] = top_o
    bot[c - c0] = bot_o
    if cols.size > 1:  # join each column to where the previous one left off
        prev = exit_all[:-1]
        top[1:] = np.minimum(top[1:], prev)
        bot[1:] = np.maximum(bot[1:], prev)
    return top, bot, c0, c1


def render_plot(frame: Frame, width: int, height: int) -> list[Strip]:
    """Draw ``frame`` into ``height`` strips of ``width`` cells (axes included)."""
    blank = Strip.blank(width)
    if width < Y_LABEL_W + 4 or height < 3:
        return [blank] * max(0, height)
    pw = width - Y_LABEL_W - 1  # plot cells
    ph = height - 1  # plot rows (last row: x axis labels)
    ncols, nrows = pw * 2, ph * 4

    traces = [t for t in frame.traces if t.x is not None and t.x.size]
    if not traces:
        return _message(frame.message, width, height)
    if frame.xrange is not None:
        x0, x1 = frame.xrange
    else:
        x0 = min(float(t.x[0]) for t in traces)
        x1 = max(float(t.x[-1]) for t in traces)
    if not (math.isfinite(x0) and math.isfinite(x1)):
        return _message(frame.message, width, height)
    if x1 <= x0:
        x0, x1 = x0 - 0.5, x1 + 0.5

    buckets: list[tuple[Trace, Buckets]] = []
    for t in traces:
        b = minmax_downsample(t.x, t.y, x0, x1, ncols, t.blocks)
        if frame.log and len(b):
            with np.errstate(all="ignore"):
                lo, hi, last = np.log10(b.lo), np.log10(b.hi), np.log10(b.last)
            lo = np.where(np.isfinite(lo), lo, np.nan)
            ok = np.isfinite(hi)
            lo = np.where(np.isfinite(lo), lo, np.nanmin(hi[ok]) if ok.any() else np.nan)
            last = np.where(np.isfinite(last), last, hi)
            b = Buckets(b.cols[ok], lo[ok], hi[ok], last[ok])
        if len(b):
            buckets.append((t, b))
    if not buckets:
        return _message("no positive values" if frame.log else frame.message, width, height)

    ymin = min(float(b.lo.min()) for _, b in buckets)
    ymax = max(float(b.hi.max()) for _, b in buckets)
    if ymax - ymin < 1e-12 * max(1.0, abs(ymax)):
        pad = 0.5 if frame.log else (abs(ymax) * 0.05 or 1.0)
        ymin, ymax = ymin - pad, ymax + pad
    else:
        pad = (ymax - ymin) * 0.04
        ymin, ymax = ymin - pad, ymax + pad

    # dot grids: union of dots per cell, coloured by the last trace that touches the cell
    codes = np.zeros((ph, pw), np.int32)
    owner = np.full((ph, pw), -1, np.int32)
    rows_idx = np.arange(nrows)[:, None]
    for k, (t, b) in enumerate(buckets):
        top, bot, c0, c1 = _spans(b, ymin, ymax, nrows, ncols)
        grid = np.zeros((nrows, ncols), bool)
        grid[:, c0: c1 + 1] = (rows_idx >= top[None, :]) & (rows_idx <= bot[None, :])
        cell = (grid.reshape(ph, 4, pw, 2) * _BITS[None, :, None, :]).sum(axis=(1, 3))
        codes |= cell
        owner[cell > 0] = k

    # background per plot row from the bands (row centre value)
    row_bg: list[str | None] = []
    for r in range(ph):
        centre = ymax - (r * 4 + 1.5) / (nrows - 1) * (ymax - ymin)
        value = 10 ** centre if frame.log else centre
        bg = None
        for band in frame.bands:
            if band.contains(value):
                bg = BAND_BG.get(band.kind)
                if band.kind == "bad":
                    break
        row_bg.append(bg)

    label_rows = {0: ymax, ph - 1: ymin}
    if ph >= 5:
        label_rows[(ph - 1) // 2] = None
    styles: dict[tuple, Style] = {}

    def style_for(color: str | None, bg: str | None, dim: bool) -> Style:
        key = (color, bg, dim)
        s = styles.get(key)
        if s is None:
            s = styles[key] = Style(color=color, bgcolor=bg, dim=dim)
        return s

    strips: list[Strip] = []
    for r in range(ph):
        segs: list[Segment] = []
        if r in label_rows:
            centre = ymax - (r * 4 + 1.5) / (nrows - 1) * (ymax - ymin)
            v = 10 ** centre if frame.log else centre
            segs.append(Segment(fmt_value(v).rjust(Y_LABEL_W - 1)[: Y_LABEL_W - 1] + " ", AXIS_STYLE))
            segs.append(Segment("┤", AXIS_STYLE))
        else:
            segs.append(Segment(" " * Y_LABEL_W + "│", AXIS_STYLE))
        bg = row_bg[r]
        row = codes[r]
        text = np.where(row > 0, row + 0x2800, 32).astype("<u4").tobytes().decode("utf-32-le")
        key = np.where(row > 0, owner[r] + 1, 0)  # 0 = blank cell, k + 1 = trace k
        cuts = np.flatnonzero(key[1:] != key[:-1]) + 1
        bounds = [0, *cuts.tolist(), pw]
        for a, b in zip(bounds[:-1], bounds[1:]):
            k = int(key[a])
            if k:
                t = buckets[k - 1][0]
                segs.append(Segment(text[a:b], style_for(t.color, bg, t.dim)))
            else:
                segs.append(Segment(text[a:b], style_for(None, bg, False)))
        strips.append(Strip(segs, width))

    # x axis labels: left, middle, right
    axis = [" "] * width
    left = fmt_x(x0, frame.tokens)
    mid = fmt_x((x0 + x1) / 2, frame.tokens)
    right = fmt_x(x1, frame.tokens)
    start = Y_LABEL_W + 1

    def put(text: str, pos: int) -> None:
        pos = max(0, min(width - len(text), pos))
        for i, ch in enumerate(text):
            axis[pos + i] = ch

    put(left, start)
    if pw >= len(left) + len(mid) + len(right) + 6:
        put(mid, start + pw // 2 - len(mid) // 2)
    put(right, width - len(right))
    strips.append(Strip([Segment("".join(axis), AXIS_STYLE)], width))
    return strips


def _message(text: str, width: int, height: int) -> list[Strip]:
    out = [Strip.blank(width)] * height
    out[height // 2] = Strip([Segment(text[:width].center(width), Style(dim=True, italic=True))], width)
    return out


class PlotPanel(Widget, can_focus=True):
    """A bordered plot; the screen sets a ``Frame`` (attributes down), the panel draws it."""

    BINDINGS = [Binding("enter", "maximize_panel", "Zoom panel", show=False)]

    class Maximize(Message):
        def __init__(self, panel: "PlotPanel") -> None:
            super().__init__()
            self.panel = panel

    def __init__(self, title: str, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.border_title = title
        self.frame: Frame = Frame([])
        self._cache_key: tuple | None = None
        self._strips: list[Strip] = []
        self.renders = 0  # frames rebuilt (tests and the bench read this)

    def set_frame(self, frame: Frame) -> None:
        self.frame = frame
        self._cache_key = None
        self.refresh()

    def _strips_for(self, width: int, height: int) -> list[Strip]:
        key = (width, height, id(self.frame))
        if key != self._cache_key:
            self._strips = render_plot(self.frame, width, height)
            self._cache_key = key
            self.renders += 1
        return self._strips

    def render_line(self, y: int) -> Strip:
        width, height = self.size
        strips = self._strips_for(width, height)
        if 0 <= y < len(strips):
            return strips[y]
        return Strip.blank(width)

    def action_maximize_panel(self) -> None:
        self.post_message(self.Maximize(self))

    def on_click(self, event) -> None:  # double click maximises, like a tiling window manager
        if getattr(event, "chain", 1) >= 2:
            self.post_message(self.Maximize(self))


def legend(items: Sequence[tuple[str, str]]) -> str:
    """Rich markup for a legend: [('train', '#4ea1ff'), ...]."""
    return "  ".join(f"[{color}]━[/] {label}" for label, color in items)


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
from dataclasses import dataclass
from typing import Sequence

import numpy as np
from rich.segment import Segment
from rich.style import Style
from textual.binding import Binding
from textual.message import Message
from textual.strip import Strip
from textual.widget import Widget

from ..series import Buckets, minmax_downsample
from .axes import axis_formatter, log_ticks, nice_ticks
from .plotframe import Fill, Frame, Trace, fmt_x

# dot (row, col) inside a braille cell -> bit
_BITS = np.array([[0x01, 0x08], [0x02, 0x10], [0x04, 0x20], [0x40, 0x80]], dtype=np.int32)
BAND_BG = {"good": "#15271c", "bad": "#2f181b"}  # faint fills: the curve stays the figure
BAND_EDGE = {"good": "#3f8a57", "bad": "#a8474f"}
GRID = "#30353d"
CURSOR_BG = "#3b4250"
CURSOR_FG = "#c8ccd4"
AXIS_STYLE = Style(color="#7a8391")
AXIS_NAME_STYLE = Style(color="#7a8391", italic=True)
CURSOR_LABEL = Style(color="#0f1115", bgcolor="#c8ccd4", bold=True)
Y_LABEL_W = 8
MARKER = "●"
MARKERS_MAX_FRAC = 0.34  # markers while the points in view are fewer than a third of the cells


def tint(color: str, alpha: float = 0.28, base: str = "#0f1115") -> str:
    """``color`` laid at ``alpha`` over the dark panel background (a band's fill)."""
    c = [int(color[i: i + 2], 16) for i in (1, 3, 5)]
    b = [int(base[i: i + 2], 16) for i in (1, 3, 5)]
    return "#" + "".join(f"{round(bb + (cc - bb) * alpha):02x}" for cc, bb in zip(c, b))


@dataclass
class Geometry:
    """Where the last drawing put the data (the panel maps mouse columns back to x)."""

    x0: float
    x1: float
    left: int  # first plot cell
    cells: int  # plot cells


def _row_of(v: np.ndarray, ymin: float, ymax: float, rows: int) -> np.ndarray:
    """Value -> dot row (0 = top)."""
    r = (ymax - v) / (ymax - ymin) * (rows - 1)
    return np.clip(np.rint(r), 0, rows - 1).astype(np.int64)


def _spans(b: Buckets, ymin: float, ymax: float, rows: int,
           hold: bool = False) -> tuple[np.ndarray, np.ndarray, int, int]:
    """Per dot column [top, bottom] rows of a continuous line through the buckets.

    Each column covers its own min..max and reaches to where the previous column left off (its last
    value), and columns between two sparse points get the straight line between them: a line, not dots
    (``hold``: the earlier point's value until the next point, a step).
    """
    c = b.cols
    top_o = _row_of(b.hi, ymin, ymax, rows)
    bot_o = _row_of(b.lo, ymin, ymax, rows)
    exit_o = _row_of(b.last, ymin, ymax, rows).astype(np.float64)
    c0, c1 = int(c[0]), int(c[-1])
    cols = np.arange(c0, c1 + 1)
    if hold:
        exit_all = exit_o[np.searchsorted(c, cols, side="right") - 1].astype(np.int64)
    else:
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


def _log_buckets(b: Buckets, floor: float) -> Buckets:
    """log10 of the buckets; values <= 0 go to ``floor`` (if any), else they are dropped."""
    with np.errstate(all="ignore"):
        if floor > 0:
            lo, hi, last = (np.log10(np.maximum(a, floor)) for a in (b.lo, b.hi, b.last))
        else:
            lo, hi, last = np.log10(b.lo), np.log10(b.hi), np.log10(b.last)
    ok = np.isfinite(hi)
    lo = np.where(np.isfinite(lo), lo, np.nanmin(hi[ok]) if ok.any() else np.nan)
    last = np.where(np.isfinite(last), last, hi)
    return Buckets(b.cols[ok], lo[ok], hi[ok], last[ok])


def _y_limits(buckets: list[tuple[Trace, Buckets]], frame: Frame) -> tuple[float, float]:
    ymin = min(float(b.lo.min()) for _, b in buckets)
    ymax = max(float(b.hi.max()) for _, b in buckets)
    if frame.yrange is not None:
        lo, hi = frame.yrange
        if frame.log:
            lo, hi = math.log10(max(lo, frame.log_floor or 1e-300)), math.log10(max(hi, 1e-300))
        pad = (hi - lo) * 0.03
        # the data only widens the fixed range; a small margin keeps a value at an end (H_res = 1,
        # a gate at 0) off the frame
        return min(lo, ymin) - pad, max(hi, ymax) + pad
    if ymax - ymin < 1e-12 * max(1.0, abs(ymax)):
        pad = 0.5 if frame.log else (abs(ymax) * 0.05 or 1.0)
        return ymin - pad, ymax + pad
    pad = (ymax - ymin) * 0.04
    return ymin - pad, ymax + pad


def render_plot(frame: Frame, width: int, height: int, geometry: list | None = None) -> list[Strip]:
    """Draw ``frame`` into ``height`` strips of ``width`` cells (axes included).

    ``geometry`` (a list) receives the ``Geometry`` of the drawing when there is data.
    """
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
            b = _log_buckets(b, frame.log_floor)
        if len(b):
            buckets.append((t, b))
    if not buckets:
        return _message("no positive values" if frame.log else frame.message, width, height)
    fills: list[tuple[Fill, Buckets]] = []
    for f in frame.fills:
        lo = minmax_downsample(f.x, f.lo, x0, x1, ncols)
        hi = minmax_downsample(f.x, f.hi, x0, x1, ncols)
        if frame.log:
            lo, hi = _log_buckets(lo, frame.log_floor), _log_buckets(hi, frame.log_floor)
        if len(lo) and len(hi) and np.array_equal(lo.cols, hi.cols):
            fills.append((f, Buckets(lo.cols, lo.lo, hi.hi, hi.last)))
    ymin, ymax = _y_limits(buckets + [(None, b) for _, b in fills], frame)
    if geometry is not None:
        geometry.append(Geometry(x0, x1, Y_LABEL_W + 1, pw))

    def cell_row(v: float) -> int:  # value (axis units) -> plot row
        return int(np.clip(np.rint((ymax - v) / (ymax - ymin) * (nrows - 1)), 0, nrows - 1)) // 4

    def cell_col(x: float) -> int:
        return int(np.clip(math.floor((x - x0) / (x1 - x0) * ncols), 0, ncols - 1)) // 2

    # fg: 0 blank, 1 grid, 2 band-good edge, 3 band-bad edge, 4 cursor, 5 + k trace k (dim: + K)
    # bg: 0 none, 1 good, 2 bad, 3 cursor
    K = len(buckets)
    chars = np.full((ph, pw), 32, np.uint32)
    fg = np.zeros((ph, pw), np.int32)
    bg = np.zeros((ph, pw), np.int32)

    # gridlines at the ticks (drawn first: everything else goes over them)
    target_y = max(2, min(10, ph // 3 + 1))
    yt = log_ticks(ymin, ymax, target_y) if frame.log else nice_ticks(ymin, ymax, target_y)
    yfmt = axis_formatter(yt, log=frame.log)
    target_x = max(2, min(12, pw // 12 + 1))
    xt = nice_ticks(x0, x1, target_x, integer=True)
    tick_rows = {cell_row(t): t for t in yt}
    tick_cols = [cell_col(t) for t in xt]
    for r in tick_rows:
        chars[r, :] = ord("┈")
        fg[r, :] = 1
    for c in tick_cols:
        chars[:, c] = np.where(chars[:, c] == ord("┈"), ord("┼"), ord("┊"))
        fg[:, c] = 1

    # bands: faint fill by row centre, edges as lines
    centres = ymax - (np.arange(ph) * 4 + 1.5) / (nrows - 1) * (ymax - ymin)
    values = 10.0 ** centres if frame.log else centres
    for band in sorted(frame.bands, key=lambda b: b.kind == "bad"):  # bad drawn last: it wins
        kind = 1 if band.kind == "good" else 2
        inside = (values >= band.lo) & (values <= band.hi)
        bg[inside, :] = kind
        for edge in (band.lo, band.hi):
            if not math.isfinite(edge) or (frame.log and edge <= 0):
                continue
            e = math.log10(edge) if frame.log else edge
            if ymin < e < ymax:
                r = cell_row(e)
                chars[r, :] = ord("╌")
                fg[r, :] = 1 + kind

    # seed bands: a tint per cell between the band's edges (4 dot rows, 2 dot columns a cell)
    for k, (_, b) in enumerate(fills):
        dots = np.arange(int(b.cols[0]), int(b.cols[-1]) + 1)  # between sparse points: interpolated
        top = _row_of(np.interp(dots, b.cols, b.hi), ymin, ymax, nrows) // 4
        bot = _row_of(np.interp(dots, b.cols, b.lo), ymin, ymax, nrows) // 4
        ctop, cbot = np.full(pw, ph), np.full(pw, -1)
        np.minimum.at(ctop, dots // 2, top)  # two dot columns share a cell: the union of their spans
        np.maximum.at(cbot, dots // 2, bot)
        rows = np.arange(ph)[:, None]
        bg[(rows >= ctop[None, :]) & (rows <= cbot[None, :])] = 4 + k

    # series: braille dots, the last trace touching a cell colours it
    codes = np.zeros((ph, pw), np.int32)
    owner = np.full((ph, pw), -1, np.int32)
    rows_idx = np.arange(nrows)[:, None]
    marks: list[tuple[int, np.ndarray, np.ndarray]] = []
    for k, (t, b) in enumerate(buckets):
        if not t.line:  # dots only, however many
            marks.append((k, _row_of(b.last, ymin, ymax, nrows) // 4, b.cols // 2))
            continue
        top, bot, c0, c1 = _spans(b, ymin, ymax, nrows, t.step)
        grid = np.zeros((nrows, ncols), bool)
        grid[:, c0: c1 + 1] = (rows_idx >= top[None, :]) & (rows_idx <= bot[None, :])
        cell = (grid.reshape(ph, 4, pw, 2) * _BITS[None, :, None, :]).sum(axis=(1, 3))
        codes |= cell
        owner[cell > 0] = k
        if t.markers and len(b) <= max(1, int(pw * MARKERS_MAX_FRAC)):
            marks.append((k, _row_of(b.last, ymin, ymax, nrows) // 4, b.cols // 2))
    drawn = codes > 0
    chars[drawn] = (codes[drawn] + 0x2800).astype(np.uint32)
    fg[drawn] = 5 + owner[drawn] + np.array([K if t.dim else 0 for t, _ in buckets])[owner[drawn]]
    for k, rows, cols in marks:
        chars[rows, cols] = ord(MARKER)
        fg[rows, cols] = 5 + k

    # the inspect cursor: a highlighted column, a line where it crosses nothing
    cursor_col = None
    if frame.cursor is not None and x0 <= frame.cursor <= x1:
        cursor_col = cell_col(frame.cursor)
        empty = fg[:, cursor_col] <= 3
        chars[empty, cursor_col] = ord("│")
        fg[empty, cursor_col] = 4
        bg[:, cursor_col] = 3

    colors = [None, GRID, BAND_EDGE["good"], BAND_EDGE["bad"], CURSOR_FG]
    colors += [t.color for t, _ in buckets] * 2
    dims = [False] * 5 + [False] * K + [True] * K
    bgs = [None, BAND_BG["good"], BAND_BG["bad"], CURSOR_BG] + [tint(f.color) for f, _ in fills]
    nb = len(bgs)
    styles = [[Style(color=c, bgcolor=g, dim=d) for g in bgs] for c, d in zip(colors, dims)]
    key = fg * nb + bg
    text = chars.astype("<u4")

    y_labels = {r: yfmt(10.0 ** t if frame.log else t) for r, t in tick_rows.items()}
    if frame.log and frame.log_floor > 0 and ymin <= math.log10(frame.log_floor) + 1e-9:
        y_labels[ph - 1] = "0"  # values at the floor are exact zeros
    strips: list[Strip] = []
    for r in range(ph):
        segs: list[Segment] = []
        label = y_labels.get(r)
        if label is not None:
            segs.append(Segment(label.rjust(Y_LABEL_W - 1)[-(Y_LABEL_W - 1):] + " ", AXIS_STYLE))
            segs.append(Segment("┤", AXIS_STYLE))
        else:
            segs.append(Segment(" " * Y_LABEL_W + "│", AXIS_STYLE))
        row_text = text[r].tobytes().decode("utf-32-le")
        row_key = key[r]
        cuts = np.flatnonzero(row_key[1:] != row_key[:-1]) + 1
        bounds = [0, *cuts.tolist(), pw]
        for a, b in zip(bounds[:-1], bounds[1:]):
            kk = int(row_key[a])
            segs.append(Segment(row_text[a:b], styles[kk // nb][kk % nb]))
        strips.append(Strip(segs, width))
    strips.append(_x_axis(frame, width, pw, x0, x1, xt, tick_cols, cursor_col))
    return strips


def _x_axis(frame: Frame, width: int, pw: int, x0: float, x1: float, ticks: list[float],
            cols: list[int], cursor_col: int | None) -> Strip:
    """Tick labels centred under their gridlines (one format for the axis), the cursor's x on top."""
    start = Y_LABEL_W + 1
    axis = [" "] * width
    fmt = axis_formatter(ticks) if frame.tokens or max((abs(t) for t in ticks), default=0) >= 1e4 else (
        lambda v: f"{int(round(v)):,}")
    free_from = 0
    for t, c in zip(ticks, cols):
        text = fmt(t)
        pos = max(0, min(width - len(text), start + c - len(text) // 2))
        if pos < free_from:
            continue
        axis[pos: pos + len(text)] = text
        free_from = pos + len(text) + 1
    name = frame.xname[: Y_LABEL_W - 1]
    segs = [Segment("".join(axis), AXIS_STYLE)]
    if name and not "".join(axis[: len(name) + 1]).strip():  # the axis's name where no tick label is
        segs = [Segment(name, AXIS_NAME_STYLE), Segment("".join(axis[len(name):]), AXIS_STYLE)]
    if cursor_col is not None and frame.cursor is not None:
        text = f" {fmt_x(frame.cursor, frame.tokens)} "
        pos = max(0, min(width - len(text), start + cursor_col - len(text) // 2))
        line = "".join(axis)
        segs = [Segment(line[:pos], AXIS_STYLE), Segment(text, CURSOR_LABEL),
                Segment(line[pos + len(text):], AXIS_STYLE)]
        if name and pos > len(name) and not line[: len(name) + 1].strip():
            segs[:1] = [Segment(name, AXIS_NAME_STYLE), Segment(line[len(name):pos], AXIS_STYLE)]
    return Strip(segs, width)


def _message(text: str, width: int, height: int) -> list[Strip]:
    out = [Strip.blank(width)] * height
    out[height // 2] = Strip([Segment(text[:width].center(width), Style(dim=True, italic=True))], width)
    return out


class PlotPanel(Widget, can_focus=True):
    """A bordered plot; the screen sets a ``Frame`` (attributes down), the panel draws it.

    A click (or a drag) posts ``CursorAt`` with the x under the mouse: the screen moves the inspect
    cursor of every panel there."""

    BINDINGS = [Binding("enter", "maximize_panel", "Zoom panel", show=False)]

    class Maximize(Message):
        def __init__(self, panel: "PlotPanel") -> None:
            super().__init__()
            self.panel = panel

    class CursorAt(Message):
        def __init__(self, x: float) -> None:
            super().__init__()
            self.x = x

    def __init__(self, title: str, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.border_title = title
        self.frame: Frame = Frame([])
        self._cache_key: tuple | None = None
        self._strips: list[Strip] = []
        self.geometry: Geometry | None = None
        self.renders = 0  # frames rebuilt (tests and the bench read this)

    def set_frame(self, frame: Frame) -> None:
        self.frame = frame
        self._cache_key = None
        self.refresh()

    def _strips_for(self, width: int, height: int) -> list[Strip]:
        key = (width, height, id(self.frame))
        if key != self._cache_key:
            geom: list[Geometry] = []
            self._strips = render_plot(self.frame, width, height, geom)
            self.geometry = geom[0] if geom else None
            self._cache_key = key
            self.renders += 1
        return self._strips

    def render_line(self, y: int) -> Strip:
        width, height = self.size
        strips = self._strips_for(width, height)
        if 0 <= y < len(strips):
            return strips[y]
        return Strip.blank(width)

    def x_at(self, column: int) -> float | None:
        """The data x under a content column (None outside the plot area)."""
        g = self.geometry
        if g is None or not (g.left <= column < g.left + g.cells):
            return None
        return g.x0 + (column - g.left + 0.5) / g.cells * (g.x1 - g.x0)

    def action_maximize_panel(self) -> None:
        self.post_message(self.Maximize(self))

    def _cursor_from(self, event) -> None:
        offset = event.get_content_offset(self)
        x = self.x_at(offset.x) if offset is not None else None
        if x is not None:
            self.post_message(self.CursorAt(x))

    def on_click(self, event) -> None:  # double click maximises, like a tiling window manager
        if getattr(event, "chain", 1) >= 2:
            self.post_message(self.Maximize(self))
        else:
            self._cursor_from(event)

    def on_mouse_move(self, event) -> None:
        if event.button:  # dragging moves the cursor
            self._cursor_from(event)


def legend(items: Sequence[tuple[str, str]]) -> str:
    """Rich markup for a legend: [('train', '#4ea1ff'), ...]."""
    return "  ".join(f"[{color}]━[/] {label}" for label, color in items)

"""Panel spec + run snapshots -> what a plot panel draws (its Frame) and says (its legend).

No widgets here: the dashboard screen calls these with its view settings and hands the results to
the PlotPanels (attributes down). Also the compare view's hyperparameter diff.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Iterable

import numpy as np

from ..config.schema import FIELDS
from ..units import short_values
from .metrics import Line, PanelSpec, frozen_check, verdict
from .rundata import RunSnapshot
from .seedgroup import SeedGroupData
from .widgets.plotframe import Fill, Frame, Trace, fmt_value

Source = RunSnapshot | SeedGroupData  # what a dashboard draws: a run, or a seed group as mean and band

RUN_COLORS = ("#4ea1ff", "#ff9f43", "#2ed573", "#ff6b81", "#b197fc", "#ffd43b", "#3bc9db", "#e599f7")
LINE_COLORS = ("#4ea1ff", "#ff9f43")
SECONDARY = "#8a8f98"
KINDS = ("train", "eval", "diag")


@dataclass(frozen=True)
class View:
    """The dashboard's view settings (every frame depends on them)."""

    ema_on: bool = True
    ema_weight: float = 0.9
    log_all: bool = False
    xaxis: str = "step"
    window: tuple[float, float] = (0.0, 1.0)
    cursor: float | None = None  # the inspect cursor's x (None: hidden)
    band: str = "minmax"  # a seed group's band: "minmax" over the seeds or "se" (mean ± SE)


def fmt(v: float | None) -> str:
    """Latest values: 4 decimals near 1 (val_bpb 1.0003 must not read as 1), 2 up to 100, and as the
    axes write them elsewhere (2710, 18.4K; 2.9e-3 for a learning rate the ticks call 3e-3)."""
    if v is None or not math.isfinite(v):
        return "—"
    a = abs(v)
    if a == 0:
        return "0"
    if 1e-2 <= a < 10:
        return f"{v:.4f}"
    if 10 <= a < 100:
        return f"{v:.2f}"
    return fmt_value(v)


def extent(runs: list[Source], view: View) -> tuple[float, float] | None:
    """The x range shown: every run's data, then the zoom window."""
    lo, hi = math.inf, -math.inf
    for run in [m for r in runs for m in (r.members if isinstance(r, SeedGroupData) else [r])]:
        for kind in KINDS:
            xy = run.xy(kind, "step", view.xaxis)
            if xy is not None and xy[0].size:
                x = xy[0]
                lo, hi = min(lo, float(x[0])), max(hi, float(x[-1]))
    if not math.isfinite(lo):
        return None
    span = hi - lo
    a, b = view.window
    return (lo + a * span, lo + b * span)


def lines_of(spec: PanelSpec, run: Source, compare: bool) -> list[tuple[Line, str]]:
    """(line, kind) pairs of a panel that this run has data for."""
    out = []
    for line in spec.lines:
        if compare and line is not spec.lines[0]:
            continue  # compare: one line per run, the run's colour tells them apart
        for kind in line.kinds:
            if run.has(kind, line.column):
                out.append((line, kind))
                break
    return out


def _color(spec: PanelSpec, line: Line, i: int, j: int, compare: bool) -> str:
    if compare:
        return RUN_COLORS[i % len(RUN_COLORS)]
    return SECONDARY if line.secondary else LINE_COLORS[min(j, len(LINE_COLORS) - 1)]


def _series(run: Source, line: Line, kind: str, view: View) -> tuple[np.ndarray, np.ndarray] | None:
    """The (x, y) a legend reads: the smoothed series where smoothing applies (a group's mean)."""
    if isinstance(run, SeedGroupData):
        agg = run.aggregate(kind, line.column, view.xaxis, _weight(line, view), view.band)
        return (agg.x, agg.mean) if agg is not None else None
    xy = run.xy(kind, line.column, view.xaxis)
    if xy is None:
        return None
    x, y = xy
    if view.ema_on and line.smooth:
        y = run.ema(kind, line.column, y, view.ema_weight)
    return x, y


def _weight(line: Line, view: View) -> float | None:
    return view.ema_weight if view.ema_on and line.smooth else None


def frame_for(spec: PanelSpec, runs: list[Source], view: View, span: tuple[float, float] | None,
              loading: bool) -> Frame:
    compare = len(runs) > 1 or any(isinstance(r, SeedGroupData) for r in runs)
    traces: list[Trace] = []
    fills: list[Fill] = []
    for i, run in enumerate(runs):
        for j, (line, kind) in enumerate(lines_of(spec, run, compare)):
            if isinstance(run, SeedGroupData):  # one mean line over a band of the seeds
                agg = run.aggregate(kind, line.column, view.xaxis, _weight(line, view), view.band)
                if agg is None:
                    continue
                color = _color(spec, line, i, j, compare)
                fills.append(Fill(agg.x, agg.lo, agg.hi, color))
                traces.append(Trace(agg.x, agg.mean, color, line.label, markers=kind == "eval"))
                continue
            xy = run.xy(kind, line.column, view.xaxis)
            if xy is None:
                continue
            x, y = xy
            color = _color(spec, line, i, j, compare)
            key = (kind, line.column, view.xaxis)
            markers = kind == "eval"  # evaluations: a few points, each one a measurement
            raw = run.blocks(key + ("raw",), x, y, kind)
            if view.ema_on and line.smooth:
                traces.append(Trace(x, y, color, line.label, raw, dim=True))
                ys = run.ema(kind, line.column, y, view.ema_weight)
                traces.append(Trace(x, ys, color, line.label, run.blocks(key + ("ema", view.ema_weight), x, ys, kind)))
            else:
                traces.append(Trace(x, y, color, line.label, raw, dim=line.secondary, markers=markers))
    # secondary lines (the raw H_res, the row error) go under the ones they accompany
    secondary = {id(t) for t in traces if t.dim and not t.markers and t.color == SECONDARY}
    traces.sort(key=lambda t: id(t) not in secondary)
    settings = runs[0].preset
    starting = all(r.state in ("new", "starting", "running") and r.last("train", "step") is None for r in runs)
    message = "loading…" if loading else (spec.off(settings) or ("waiting for the first step…" if starting
                                                                  else "no data yet"))
    return Frame(traces, bands=spec.bands(settings), log=view.log_all or spec.log_default, xrange=span, fills=tuple(fills),
                 tokens=view.xaxis == "tokens", message=message, xname="tokens" if view.xaxis == "tokens" else "step",
                 yrange=None if view.log_all and not spec.log_default else spec.yrange(settings) if spec.yrange else None,
                 log_floor=spec.log_floor, cursor=view.cursor)


def value_at(x: np.ndarray, y: np.ndarray, at: float | None) -> float | None:
    """The last finite value at or before ``at`` (the latest one when ``at`` is None)."""
    if x.size == 0:
        return None
    i = x.size if at is None else int(np.searchsorted(x, at, "right"))
    if i <= 0:
        return None
    tail = y[max(0, i - 256): i]
    ok = np.flatnonzero(np.isfinite(tail))
    return float(tail[ok[-1]]) if ok.size else None


def legend(spec: PanelSpec, runs: list[Source], view: View) -> str:
    """The panel's subtitle: a colour swatch per series when there is more than one, and each
    series' value (at the inspect cursor when it is shown, else the latest)."""
    compare = len(runs) > 1 or any(isinstance(r, SeedGroupData) for r in runs)
    settings = runs[0].preset
    bands = spec.bands(settings)
    items: list[tuple[str, str, str, float | None]] = []  # swatch, colour, label, value
    for i, run in enumerate(runs):
        for j, (line, kind) in enumerate(lines_of(spec, run, compare)):
            xy = _series(run, line, kind, view)
            v = value_at(*xy, view.cursor) if xy is not None else None
            swatch = "●" if kind == "eval" else ("┄" if line.secondary else "━")
            label = "" if compare else line.label + (" EMA" if view.ema_on and line.smooth and kind != "eval" else "")
            items.append((swatch, _color(spec, line, i, j, compare), label, v))  # (EMA: not the header's raw last)
    parts = []
    for swatch, color, label, v in items:
        style = {"good": "green", "bad": "bold red"}.get(verdict(v, bands), "")
        val = f"[{style}]{fmt(v)}[/]" if style else fmt(v)
        if len(items) > 1:
            parts.append(f"[{color}]{swatch}[/] {label + ' ' if label else ''}{val}")
        else:
            parts.append(val)
    if spec.floor_label and any(v == 0 for *_, v in items):
        parts.append(f"[red]{spec.floor_label}[/]")
    members = [m for r in runs for m in (r.members if isinstance(r, SeedGroupData) else [r])]
    if spec.key in ("gate_value", "H_res_diag_mean") and any(frozen_of(m).frozen for m in members):
        parts.insert(0, "[bold white on red] FROZEN [/]")
    return " ".join(parts)


def frozen_of(run: RunSnapshot):
    kind = "diag" if run.has("diag", "H_res_diag_mean") else "train"
    return frozen_check(run.preset.get("model", {}), run.last(kind, "H_res_diag_mean"),
                        run.last(kind, "gate_value"), run.last(kind, "step"))


def best_bpb(run: RunSnapshot) -> float | None:
    col = run.column("eval", "val_bpb")
    if col is None or col.size == 0:
        return None
    ok = col[np.isfinite(col)]
    return float(ok.min()) if ok.size else None


# -- compare: the hyperparameters that differ --------------------------------------------------------

NOT_HYPERPARAMETERS = {("run", "name"), ("run", "notes")}  # labels, not settings


def zoom_window(window: tuple[float, float], factor: float) -> tuple[float, float]:
    """The x window (fractions of the run) zoomed by ``factor`` about its centre; a window that
    ends at the run's end keeps ending there (it follows new data)."""
    a, b = window
    width = min(1.0, max(0.002, (b - a) * factor))
    centre = b - (b - a) / 2 if b < 1.0 else 1.0 - width / 2
    a, b = centre - width / 2, centre + width / 2
    if b > 1.0:
        a, b = a - (b - 1.0), 1.0
    if a < 0.0:
        a, b = 0.0, b - a
    return max(0.0, a), min(1.0, b)


def pan_window(window: tuple[float, float], frac: float) -> tuple[float, float]:
    """The x window moved by ``frac`` of its width, never past the run's start or end."""
    a, b = window
    shift = max(-a, min(1.0 - b, (b - a) * frac))
    return a + shift, b + shift


COMFY_PANEL_ROWS = 16  # a panel this tall still reads well: room beyond it goes to the pane below


def grid_shape(n: int, width: int, height: int, chrome: int, maximized: bool, min_rows: int,
               below: int = 0) -> tuple[int, int]:
    """(columns, rows per panel row) for ``n`` panels: the first rows fill the screen below
    ``chrome`` lines of header (and compare table); at 80x24 the first four panels are on screen.
    ``below``: the height of the pane under the plots (samples and stdout). It is kept on screen
    when the panels that fill the screen stay COMFY_PANEL_ROWS tall beside it (at 160x48, not 80x24)."""
    cols = 1 if maximized else (2 if width < 110 else (3 if n <= 9 else 4))
    rows = -(-n // cols)
    avail = max(min_rows, height - chrome)
    visible = max(1, min(rows, avail // min_rows))
    if below and not maximized and (avail - below) // visible >= COMFY_PANEL_ROWS:
        avail -= below
    return cols, max(min_rows, avail // visible)


def diff_rows(presets: Iterable[dict[str, dict[str, Any]]], ignore_seed: bool = False) -> list[tuple[str, list[str]]]:
    """(key path, one value per run) for every schema field whose values differ between the runs
    (``ignore_seed``: seed groups are compared, each with several seeds: run.seed is not a setting)."""
    presets = list(presets)
    rows = []
    for f in FIELDS:
        if (f.section, f.key) in NOT_HYPERPARAMETERS or (ignore_seed and f.path == "run.seed"):
            continue
        values = [p.get(f.section, {}).get(f.key, f.default) for p in presets]
        if any(v != values[0] for v in values[1:]):
            rows.append((f.path, short_values(values)))
    return rows

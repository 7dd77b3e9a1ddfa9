"""A study's plot panels as frames: pure functions of a snapshot (numpy, no Textual), as
``panels.py`` is for the dashboard; ``screens/study.py`` sets them on its panels."""

from __future__ import annotations

import numpy as np

from .seedgroup import seed_band
from .studydata import StudySnapshot
from .widgets.plotframe import Fill, Frame, Trace

COLORS = ["#4ea1ff", "#f4a261", "#7bd389", "#e76f51", "#c77dff", "#ffd166", "#4cc9f0", "#f72585"]
BEST_LEGEND = "[#8b93a1]●[/] trial · [#7bd389]━[/] best so far"


def best_points(s: StudySnapshot) -> tuple[tuple[int, float], ...]:
    """(trial, value) of the completed trials that may be the best, in trial order."""
    return tuple(sorted((t.number, t.value) for t in s.trials
                        if t.state == "complete" and t.value is not None and not t.over_limit))


def best_frame(pts: tuple[tuple[int, float], ...], direction: str) -> Frame:
    """Every completed trial (``best_points``) as a dot, and the best so far as a step (it holds until
    a trial beats it)."""
    if not pts:
        return Frame([], message="no completed trial yet")
    sign = -1 if direction == "maximize" else 1
    x = np.array([p[0] for p in pts], dtype=float)
    y = np.array([p[1] for p in pts], dtype=float)
    best = sign * np.minimum.accumulate(sign * y)
    return Frame([Trace(x, y, "#8b93a1", "trial", markers=True, line=False),  # trials are not a path
                  Trace(x, best, "#7bd389", "best", step=True)], message="", xname="trial")


def curves_frame(s: StudySnapshot, band: str) -> tuple[Frame, str, list[str]]:
    """The top trials' mean curves with their seed bands, the others dim as far as they got: (frame,
    title, the subtitle's parts in the order they give way: legend, band key, dim note)."""
    traces, fills, legend = [], [], []
    done = [c for c in s.curves if c.state == "complete"]
    for i, c in enumerate(done):
        color = COLORS[i % len(COLORS)]
        x = np.array(c.steps, dtype=float)
        mean, lo, hi, _ = seed_band(np.array(c.per_seed, dtype=float), band)
        ok = np.isfinite(mean)
        if len(c.per_seed) > 1:
            fills.append(Fill(x[ok], lo[ok], hi[ok], color))
        traces.append(Trace(x[ok], mean[ok], color, f"t{c.number}"))
        legend.append(f"[{color}]━[/] t{c.number}")
    for c in s.curves:
        if c.state != "complete":  # pruned / running: the first seed's curve, as far as it got
            x = np.array(c.steps, dtype=float)
            y = np.array(c.per_seed[0], dtype=float)
            ok = np.isfinite(y)
            traces.append(Trace(x[ok], y[ok], "#8a6d8f", f"t{c.number}", dim=True))
    title = f"top-{len(done)} {s.objective} over seeds" if done else f"{s.objective} over seeds"  # (not "top-0")
    band_key = ("min–max" if band == "minmax" else "± SE") + " band (b)"
    parts = [p for p in (" ".join(legend), band_key, "dim: pruned") if p]
    return Frame(traces, message="no curves yet", fills=tuple(fills), xname="step"), title, parts

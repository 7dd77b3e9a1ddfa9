"""The runs list's loss trend, FROZEN flag and sparkline: a few byte windows, not the whole file."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from ..events import decode_event
from ..runs import EVENTS


def _decode(line: bytes) -> dict[str, Any] | None:
    return decode_event(line) if line.strip() else None


# -- the runs list's loss trend and FROZEN flag: a few byte windows, not the whole file ---------------

_TRAIN_LOSS = re.compile(rb'"kind":"train"[^\n]*?"loss":(-?[0-9.]+(?:[eE][-+]?[0-9]+)?)')
_DIAG = re.compile(rb'\{[^\n]*"kind":"(?:diag|train)"[^\n]*"H_res_diag_mean"[^\n]*\}')
WINDOW = 16 << 10
WHOLE_MAX = 1 << 20  # files up to this size are scanned whole


def loss_trend(path: str | Path, n: int = 10) -> list[float]:
    """About ``n`` train losses spread over the run, oldest first (for a sparkline).

    A small file is scanned whole; a long one is sampled at ``n`` byte positions, each reading one
    16 KiB window and taking the last train loss in it. Lines a resume superseded may be among the
    samples (a sparkline's approximation)."""
    file = Path(path) / EVENTS
    try:
        size = file.stat().st_size
        with open(file, "rb") as fh:
            if size <= WHOLE_MAX:
                found = [float(m) for m in _TRAIN_LOSS.findall(fh.read())]
                if len(found) <= n:
                    return found
                idx = [round(i * (len(found) - 1) / (n - 1)) for i in range(n)]
                return [found[i] for i in idx]
            out = []
            for i in range(n):
                end = max(WINDOW, round(size * (i + 1) / n))
                fh.seek(end - WINDOW)
                hits = _TRAIN_LOSS.findall(fh.read(WINDOW))
                if hits:
                    out.append(float(hits[-1]))
            return out
    except (OSError, ValueError):
        return []


def last_diag(path: str | Path) -> dict[str, Any] | None:
    """The last event carrying mHC diagnostics in the file's tail (None if there is none)."""
    file = Path(path) / EVENTS
    try:
        size = file.stat().st_size
        with open(file, "rb") as fh:
            fh.seek(max(0, size - 4 * WINDOW))
            hits = _DIAG.findall(fh.read())
    except OSError:
        return None
    for line in reversed(hits):
        ev = _decode(line)
        if ev is not None:
            return ev
    return None


SPARK = "▁▂▃▄▅▆▇█"


def sparkline(values: list[float], width: int) -> str:
    """Block characters, low to high, of the last ``width`` values scaled to their own range."""
    vals = [v for v in values if v == v and abs(v) != float("inf")][-width:]
    if not vals:
        return ""
    lo, hi = min(vals), max(vals)
    if hi - lo < 1e-12:
        return SPARK[0] * len(vals)
    return "".join(SPARK[min(len(SPARK) - 1, int((v - lo) / (hi - lo) * len(SPARK)))] for v in vals)

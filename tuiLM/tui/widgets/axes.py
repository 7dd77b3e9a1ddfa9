"""Axis ticks and labels for the plots: 1-2-5 "nice" steps, one number format per axis.

Pure Python (no Textual): the plot widget and the tests use it.
"""

from __future__ import annotations

import math

NICE = (1.0, 2.0, 5.0, 10.0)


def nice_step(span: float, target: int) -> float:
    """The 1-2-5 step (…, 0.1, 0.2, 0.5, 1, 2, 5, 10, …) closest (in ratio) to ``span / target``."""
    if not (span > 0 and math.isfinite(span)):
        return 1.0
    raw = span / max(1, target)
    mag = 10.0 ** math.floor(math.log10(raw))
    return min((m * mag for m in NICE), key=lambda step: abs(math.log(step / raw)))


def _smaller(step: float) -> float:
    """The next 1-2-5 step below ``step``."""
    mag = 10.0 ** math.floor(math.log10(step) + 1e-9)
    m = round(step / mag)
    return {1: 0.5, 2: 1.0, 5: 2.0}.get(m, 0.5) * mag


def nice_ticks(lo: float, hi: float, target: int, *, integer: bool = False) -> list[float]:
    """Multiples of a 1-2-5 step inside [lo, hi]: about ``target`` of them and at least two (one
    where ``integer`` forbids a step below 1). More room, more ticks: the caller scales ``target``
    with the panel's size."""
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi < lo:
        return []
    if hi == lo:
        return [lo]
    step = nice_step(hi - lo, max(1, target - 1))
    while True:
        if integer:
            step = max(1.0, step)
        first = math.ceil(lo / step - 1e-9)
        last = math.floor(hi / step + 1e-9)
        if last - first >= 1 or (integer and step <= 1.0):
            break
        step = _smaller(step)
    ticks = [round(k * step, 12) for k in range(first, last + 1)]
    return [0.0 if t == 0 else t for t in ticks] or [lo]


def log_ticks(lo: float, hi: float, target: int) -> list[float]:
    """Ticks for a log10 axis given in exponents [lo, hi]: whole decades, every k-th if crowded."""
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi < lo:
        return []
    first, last = math.ceil(lo - 1e-9), math.floor(hi + 1e-9)
    n = last - first + 1
    if n < 2:  # within a decade (a loss from 5.8 to 1.7): round values, 2 3 4 5, as a W&B log axis shows
        vals = [v for v in nice_ticks(10.0 ** lo, 10.0 ** hi, target) if v > 0]
        if len(vals) >= 2:
            return [math.log10(v) for v in vals]
        return [lo, hi] if hi > lo else [lo]
    every = max(1, math.ceil(n / max(1, target)))
    return [float(e) for e in range(first, last + 1) if (e - first) % every == 0]


def _decimals(values: list[float], limit: int = 6) -> int:
    """Fewest decimals that print every value exactly (up to ``limit``)."""
    for d in range(limit + 1):
        if all(abs(round(v, d) - v) <= 1e-9 * max(1.0, abs(v)) for v in values):
            return d
    return limit


_SUFFIX = ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "K"))


def axis_formatter(ticks: list[float], *, log: bool = False):
    """One format for the whole axis, chosen from its ticks: fixed decimals, K/M/G suffixes, or
    scientific notation, never a mix (0.01045 beside 9.5e-3 reads as two scales)."""
    if log:
        vals = [10.0 ** t for t in ticks]
        if vals and all(1e-3 <= v <= 1e4 for v in vals):
            d = _decimals(vals)
            return lambda v: f"{v:.{d}f}"
        return lambda v: _sci(v, 0)
    finite = [t for t in ticks if math.isfinite(t)]
    big = max((abs(t) for t in finite), default=0.0)
    nonzero = [abs(t) for t in finite if t != 0]
    small = min(nonzero, default=0.0)
    if big >= 1e4:
        div, suf = next((d, s) for d, s in _SUFFIX if big >= d)
        d = _decimals([t / div for t in finite], 2)
        return lambda v: "0" if v == 0 else f"{v / div:.{d}f}{suf}"  # (not "0K")
    if nonzero and (small < 1e-3 or (big < 0.01 and len(nonzero) > 1)):
        mant = [t / 10 ** math.floor(math.log10(abs(t))) for t in nonzero]
        d = _decimals(mant, 3)
        return lambda v: _sci(v, d)
    d = _decimals(finite, 6)
    return lambda v: f"{v:.{d}f}"


def _sci(v: float, d: int) -> str:
    if v == 0:
        return "0"
    s = f"{v:.{d}e}"
    mant, exp = s.split("e")
    return mant if int(exp) == 0 else f"{mant}e{int(exp)}"

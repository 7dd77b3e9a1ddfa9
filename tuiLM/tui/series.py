"""Full-resolution series for the live plots: EMA and min/max downsampling, and the UI's caches.

numpy only (no Textual). The columns come from ``reader.Table`` through immutable snapshots; the
caches here (``SeriesCache``) belong to the UI thread alone.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

_NAN = float("nan")


# -- EMA -----------------------------------------------------------------------------------------

def _ffill(x: np.ndarray, carry: float) -> np.ndarray:
    """Replace non-finite values by the previous finite one (``carry`` before the first)."""
    bad = ~np.isfinite(x)
    if not bad.any():
        return x
    idx = np.where(bad, -1, np.arange(x.size))
    np.maximum.accumulate(idx, out=idx)
    out = np.where(idx >= 0, x[np.maximum(idx, 0)], carry)
    return out


EmaState = tuple[float, float, float, float]  # (b, 1 - debias denominator, last finite y, last step)
EMA_START: EmaState = (0.0, 1.0, _NAN, _NAN)
_CHUNK_DECAY = math.log(1e3)  # within a chunk the weights span at most 1e3 (float-exact cumsums)
_MAX_STEP_DECAY = 30.0  # one gap never decays by more than e^-30 (~1e-13: the old value is gone)


def ema(y: np.ndarray, weight: float, state: EmaState = EMA_START, steps: np.ndarray | None = None
        ) -> tuple[np.ndarray, EmaState]:
    """Debiased exponential moving average of ``y`` over *steps*, resumable.

    ``weight`` is the decay per training step, so the curve does not depend on how often points
    are logged: a point ``dt`` steps after the previous one gets ``a = weight**dt``,
    ``b_k = a·b_{k-1} + (1-a)·y_k`` and ``d_k = a·d_{k-1} + (1-a)`` (d_0 = 0), and the output is
    ``b_k / d_k`` (TensorBoard's debiasing generalised to uneven gaps; with every dt = 1 it is
    ``b_t / (1 - w^t)``). Without ``steps`` every gap is 1. ``state`` continues a previous call so
    live appends cost O(new points). Non-finite inputs carry the previous value.

    Vectorised: with L_k the running sum of log a, b_k = e^{L_k}·(b_0 + Σ_j (1-a_j)·y_j·e^{-L_j});
    the sum is taken in chunks over which e^{-L} grows less than 1e3 (measured from each chunk's
    first point), and a scalar recurrence carries b from chunk to chunk.
    """
    b, rest, carry, last_step = state
    y = np.asarray(y, dtype=np.float64)
    n = y.size
    if n == 0:
        return y.copy(), state
    if not math.isfinite(carry):
        finite = y[np.isfinite(y)]
        carry = float(finite[0]) if finite.size else 0.0
    y = _ffill(y, carry)
    if steps is None:
        dt = np.ones(n)
        end_step = (last_step if math.isfinite(last_step) else 0.0) + n
    else:
        s = np.asarray(steps, dtype=np.float64)
        prev = np.empty(n)
        prev[0] = last_step if math.isfinite(last_step) else s[0] - 1.0
        prev[1:] = s[:-1]
        dt = s - prev
        dt = np.where(np.isfinite(dt) & (dt > 0), dt, 1.0)
        end_step = float(s[-1]) if math.isfinite(s[-1]) else last_step
    w = float(weight)
    if w <= 0.0:
        return y.copy(), (float(y[-1]), 0.0, float(y[-1]), end_step)
    # in place where it can be: a cold redraw of 10^6 points is mostly fresh memory being touched
    la = np.zeros(n) if w >= 1.0 else np.maximum(np.multiply(dt, math.log(w), out=dt), -_MAX_STEP_DECAY, out=dt)
    om = np.negative(np.expm1(la))  # 1 - a_k
    L = np.cumsum(la, out=la)
    rest_k = np.exp(L)
    rest_k *= rest  # debias: 1 - d_k = (1 - d_0)·e^{L_k}, exact
    # chunks: a new one where -L crosses a multiple of _CHUNK_DECAY (and where a single gap is big)
    cid = np.floor(np.multiply(L, -1.0 / _CHUNK_DECAY))
    starts = np.concatenate(([0], np.flatnonzero(cid[1:] != cid[:-1]) + 1))
    del cid
    chunk_of = np.repeat(np.arange(starts.size), np.diff(np.append(starts, n)))
    rel = np.subtract(L, L[starts][chunk_of])  # in (-_CHUNK_DECAY, 0]: from each chunk's first point
    er = np.exp(rel, out=rel)
    a0, y0 = 1.0 - om[starts], om[starts] * y[starts]
    v = om
    v *= y
    v /= er  # (1 - a_k)·y_k·e^{-rel_k}
    v[starts] = 0.0  # a chunk's first point goes into its carry instead
    cs = np.cumsum(v, out=v)
    local = cs[starts][chunk_of]
    np.subtract(cs, local, out=local)
    local *= er
    ends = np.append(starts[1:], n) - 1
    g, h = er[ends], local[ends]
    # b entering chunk c+1 is an affine map of b entering chunk c: b' = P b + Q. Their running
    # compositions come from a log-depth prefix scan (vectorised; a loop over 10^4+ chunks was most
    # of a cold redraw); products that underflow to 0 are contributions that have decayed away
    P, Q = g * a0, g * y0 + h
    d = 1
    while d < P.size:
        P[d:], Q[d:] = P[d:] * P[:-d], P[d:] * Q[:-d] + Q[d:]  # right-hand sides use the old values
        d *= 2
    b_in = np.concatenate(([b], P * b + Q))
    carries = a0 * b_in[:-1] + y0  # b at each chunk's first point
    bt = carries[chunk_of]
    bt *= er
    bt += local
    last_rest = float(rest_k[-1])
    den = np.subtract(1.0, rest_k, out=rest_k)
    out = y.copy()
    np.divide(bt, den, out=out, where=den > 0)
    return out, (float(bt[-1]), last_rest, float(y[-1]), end_step)


class EmaCache:
    """EMA of one growing column, extended incrementally; rebuilt when the table's epoch changes."""

    def __init__(self) -> None:
        self._arr = np.empty(0)
        self._n = 0
        self._key: tuple | None = None
        self._state: EmaState = EMA_START

    def get(self, y: np.ndarray, weight: float, epoch: int, steps: np.ndarray | None = None) -> np.ndarray:
        key = (weight, epoch, steps is None)
        if key != self._key or y.size < self._n:
            self._key, self._n, self._state = key, 0, EMA_START
            self._arr = np.empty(max(1024, int(y.size * 1.3)))
        if y.size > self._n:
            new, self._state = ema(y[self._n:], weight, self._state,
                                   None if steps is None else steps[self._n: y.size])
            if y.size > self._arr.size:
                grown = np.empty(int(y.size * 1.6))
                grown[: self._n] = self._arr[: self._n]
                self._arr = grown
            self._arr[self._n: y.size] = new
            self._n = y.size
        return self._arr[: self._n]


# -- min/max downsampling ------------------------------------------------------------------------

BLOCK = 64  # points per pre-reduced block; long series downsample from blocks, not from points


class BlockCache:
    """Per-block min/max/last of a growing series, so a redraw of 10^6 points touches ~n/64 values.

    Every point belongs to exactly one block and a block goes whole into one plot bucket (the one
    holding its first x), so bucket min/max are exact; a block may shift by < 1 block across a
    bucket edge, far below a dot column when there are > 4 blocks per column.
    """

    def __init__(self) -> None:
        self._key: tuple | None = None
        self.nb = 0
        self.x0 = np.empty(0)
        self.lo = np.empty(0)
        self.hi = np.empty(0)
        self.last = np.empty(0)

    def update(self, x: np.ndarray, y: np.ndarray, key: tuple) -> None:
        if key != self._key or x.size < self.nb * BLOCK:
            self._key, self.nb = key, 0
        full = x.size // BLOCK
        if full <= self.nb:
            return
        a, b = self.nb * BLOCK, full * BLOCK
        ys = y[a:b].reshape(-1, BLOCK)
        with np.errstate(all="ignore"):
            new_lo = np.fmin.reduce(ys, axis=1)
            new_hi = np.fmax.reduce(ys, axis=1)
        new_x0 = x[a:b:BLOCK]
        new_last = ys[:, -1]
        if full > self.x0.size:
            cap = int(full * 1.6) + 16
            for name in ("x0", "lo", "hi", "last"):
                old = getattr(self, name)
                grown = np.empty(cap)
                grown[: self.nb] = old[: self.nb]
                setattr(self, name, grown)
        self.x0[self.nb: full] = new_x0
        self.lo[self.nb: full] = new_lo
        self.hi[self.nb: full] = new_hi
        self.last[self.nb: full] = new_last
        self.nb = full


@dataclass
class Buckets:
    """Downsampled series: for each occupied plot column, min, max and the last value."""

    cols: np.ndarray  # int column index, increasing
    lo: np.ndarray
    hi: np.ndarray
    last: np.ndarray

    def __len__(self) -> int:
        return int(self.cols.size)


def _sorted(x: np.ndarray) -> bool:
    return x.size < 2 or bool(np.all(x[1:] >= x[:-1]))


def minmax_downsample(x: np.ndarray, y: np.ndarray, x0: float, x1: float, ncols: int,
                      blocks: BlockCache | None = None) -> Buckets:
    """Min/max buckets of the points with x in [x0, x1] over ``ncols`` equal columns.

    Spikes survive: each column keeps the extreme values of every point that falls in it. NaNs are
    ignored. ``x`` must be sorted (steps and tokens are); unsorted input is sorted first.
    """
    empty = Buckets(np.empty(0, np.int64), np.empty(0), np.empty(0), np.empty(0))
    if x.size == 0 or ncols <= 0:
        return empty
    if not _sorted(x):
        order = np.argsort(x, kind="stable")
        x, y, blocks = x[order], y[order], None
    i0 = int(np.searchsorted(x, x0, "left"))
    i1 = int(np.searchsorted(x, x1, "right"))
    if i1 <= i0:
        return empty
    if blocks is not None and blocks.nb and (i1 - i0) > 4 * BLOCK * ncols:
        b0 = -(-i0 // BLOCK)
        b1 = min(i1 // BLOCK, blocks.nb)
        h1, t0 = b0 * BLOCK, b1 * BLOCK
        xs = np.concatenate((x[i0:h1], blocks.x0[b0:b1], x[t0:i1]))
        lo = np.concatenate((y[i0:h1], blocks.lo[b0:b1], y[t0:i1]))
        hi = np.concatenate((y[i0:h1], blocks.hi[b0:b1], y[t0:i1]))
        last = np.concatenate((y[i0:h1], blocks.last[b0:b1], y[t0:i1]))
    else:
        xs, lo, hi, last = x[i0:i1], y[i0:i1], y[i0:i1], y[i0:i1]
    span = (x1 - x0) or 1.0
    col = np.floor((xs - x0) * (ncols / span)).astype(np.int64)
    np.clip(col, 0, ncols - 1, out=col)
    starts = np.concatenate(([0], np.flatnonzero(col[1:] != col[:-1]) + 1))
    ends = np.concatenate((starts[1:], [col.size])) - 1
    with np.errstate(all="ignore"):
        blo = np.fmin.reduceat(lo, starts)
        bhi = np.fmax.reduceat(hi, starts)
    blast = last[ends]
    # a NaN "last" (a NaN at the end of a bucket) falls back to the bucket's max
    blast = np.where(np.isfinite(blast), blast, bhi)
    ok = np.isfinite(blo) & np.isfinite(bhi)
    return Buckets(col[starts][ok], blo[ok], bhi[ok], blast[ok])


class SeriesCache:
    """The plot caches of one run (EMA and block min/max per column), kept across its snapshots.
    Only the UI thread uses it; an epoch change (rows removed by a resume) rebuilds an entry."""

    def __init__(self) -> None:
        self._ema: dict[tuple, EmaCache] = {}
        self._blocks: dict[tuple, BlockCache] = {}

    def clear(self) -> None:
        self._ema.clear()
        self._blocks.clear()

    def ema(self, key: tuple, y: np.ndarray, weight: float, epoch: int, steps: np.ndarray | None) -> np.ndarray:
        return self._ema.setdefault(key, EmaCache()).get(y, weight, epoch, steps)

    def blocks(self, key: tuple, x: np.ndarray, y: np.ndarray, epoch: int) -> BlockCache:
        cache = self._blocks.setdefault(key, BlockCache())
        cache.update(x, y, (epoch,))
        return cache

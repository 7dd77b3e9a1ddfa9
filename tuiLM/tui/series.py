"""Full-resolution series for the live plots: growable columns, EMA and min/max downsampling.

numpy only (no Textual): the loader thread appends, the UI thread reads. Appends write beyond the
current length and truncation allocates new arrays, so a view ``col[:n]`` taken under the lock stays
valid while the writer carries on.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

_NAN = float("nan")


class Table:
    """Columns of float64 with a shared length; new columns appear as they are first seen.

    ``epoch`` changes when rows are removed (a resumed run supersedes later steps): caches keyed by
    epoch and length (EMA, block min/max) rebuild then, and only extend on plain appends.
    """

    def __init__(self) -> None:
        self.n = 0
        self.cap = 0
        self.cols: dict[str, np.ndarray] = {}
        self.epoch = 0
        self.version = 0

    def _reserve(self, extra: int) -> None:
        need = self.n + extra
        if need <= self.cap:
            return
        cap = max(1024, need, int(self.cap * 1.6))
        for name, arr in self.cols.items():
            new = np.empty(cap, dtype=np.float64)
            new[: self.n] = arr[: self.n]
            self.cols[name] = new
        self.cap = cap

    def _column(self, name: str) -> np.ndarray:
        arr = self.cols.get(name)
        if arr is None:
            arr = np.empty(max(self.cap, 1024), dtype=np.float64)
            arr[: self.n] = _NAN
            if self.cap == 0:
                self.cap = arr.shape[0]
            self.cols[name] = arr
        return arr

    def append(self, names: list[str], values: np.ndarray) -> None:
        """Append rows: ``values`` has shape (m, len(names)); absent columns get NaN."""
        m = values.shape[0]
        if m == 0:
            return
        self._reserve(m)
        for name in names:
            self._column(name)
        self._reserve(m)  # a new column may have been created at the old capacity
        lo, hi = self.n, self.n + m
        seen = set(names)
        for j, name in enumerate(names):
            self.cols[name][lo:hi] = values[:, j]
        for name, arr in self.cols.items():
            if name not in seen:
                arr[lo:hi] = _NAN
        self.n = hi
        self.version += 1

    def truncate_where(self, keep: np.ndarray) -> None:
        """Keep only rows where ``keep`` (bool, length n) is true; allocates fresh arrays."""
        n = int(keep.sum())
        if n == self.n:
            return
        cap = max(1024, int(n * 1.6))
        for name, arr in self.cols.items():
            new = np.empty(cap, dtype=np.float64)
            new[:n] = arr[: self.n][keep]
            self.cols[name] = new
        self.n, self.cap = n, cap
        self.epoch += 1
        self.version += 1

    def col(self, name: str) -> np.ndarray | None:
        arr = self.cols.get(name)
        return None if arr is None else arr[: self.n]

    def last(self, name: str) -> float | None:
        """The last finite value of a column (None if there is none)."""
        arr = self.col(name)
        if arr is None or arr.size == 0:
            return None
        tail = arr[-256:]
        ok = np.flatnonzero(np.isfinite(tail))
        if ok.size:
            return float(tail[ok[-1]])
        ok = np.flatnonzero(np.isfinite(arr))
        return float(arr[ok[-1]]) if ok.size else None


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


def ema(x: np.ndarray, weight: float, state: tuple[float, int, float] = (0.0, 0, _NAN)
        ) -> tuple[np.ndarray, tuple[float, int, float]]:
    """Debiased exponential moving average (TensorBoard style) of ``x``, resumable.

    y_t = b_t / (1 - w^(t+1)) with b_t = w·b_{t-1} + (1-w)·x_t. ``state`` = (b, count, last finite x)
    continues a previous call, so live appends cost O(new points). Vectorised in chunks where the
    closed form  b_t = w^(t+1)·b_0 + (1-w)·w^t·Σ_k x_k·w^(-k)  stays accurate (w^-L <= 1e6).
    Non-finite inputs carry the previous value instead of poisoning the average.
    """
    b, count, carry = state
    x = np.asarray(x, dtype=np.float64)
    if x.size == 0:
        return x.copy(), state
    if not math.isfinite(carry):
        finite = x[np.isfinite(x)]
        carry = float(finite[0]) if finite.size else 0.0
    x = _ffill(x, carry)
    w = float(weight)
    if w <= 0.0:
        return x.copy(), (float(x[-1]), count + x.size, float(x[-1]))
    chunk = max(1, min(x.size, int(math.log(1e6) / -math.log(w)))) if w < 1 else x.size
    pw = w ** np.arange(chunk + 1, dtype=np.float64)  # w^0 .. w^chunk
    inv = 1.0 / pw[:chunk]  # w^-k
    # All chunks at once: row c of X is chunk c (the last one zero-padded). ``local`` is each chunk's
    # b_t started from b = 0; the carry into chunk c is B_{c-1}, with B_c = w^L·B_{c-1} + local_c[-1]
    # (a scalar recurrence, one step per chunk), and adds w^(k+1)·B_{c-1} to position k.
    n_chunks = -(-x.size // chunk)
    X = np.zeros(n_chunks * chunk)
    X[: x.size] = x
    X = X.reshape(n_chunks, chunk)
    local = (1.0 - w) * pw[:chunk] * np.cumsum(X * inv, axis=1)
    wl = float(pw[chunk])
    carries = np.empty(n_chunks)
    for c, end in enumerate(local[:, -1].tolist()):
        carries[c] = b
        b = wl * b + end
    bt = (pw[1: chunk + 1] * carries[:, None] + local).ravel()[: x.size]
    b = float(bt[-1])
    if w < 1:  # debias: divide by 1 - w^t while w^t is still above the float resolution
        k = min(x.size, max(0, int(math.ceil(40.0 / -math.log10(w))) - count)) if w > 0 else 0
        t = count + np.arange(1, k + 1, dtype=np.float64)
        out = bt
        out[:k] = bt[:k] / (1.0 - w ** t)
    else:
        out = bt
    return out, (b, count + x.size, float(x[-1]))


class EmaCache:
    """EMA of one growing column, extended incrementally; rebuilt when the table's epoch changes."""

    def __init__(self) -> None:
        self._arr = np.empty(0)
        self._n = 0
        self._key: tuple | None = None
        self._state: tuple[float, int, float] = (0.0, 0, _NAN)

    def get(self, y: np.ndarray, weight: float, epoch: int) -> np.ndarray:
        key = (weight, epoch)
        if key != self._key or y.size < self._n:
            self._key, self._n, self._state = key, 0, (0.0, 0, _NAN)
            self._arr = np.empty(max(1024, int(y.size * 1.3)))
        if y.size > self._n:
            new, self._state = ema(y[self._n:], weight, self._state)
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


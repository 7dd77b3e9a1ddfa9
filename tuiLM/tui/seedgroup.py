"""A seed group on the dashboard: k runs of one configuration drawn as one mean line with a band.

``SeedGroupData`` stands where a ``RunSnapshot`` stands in the panel code (the same read-only questions:
has, last, xy, preset, state), and adds ``aggregate``: the members' curves on one x grid, their mean
and a min–max or ± SE band. Smoothing is applied per member before averaging (the band shows the
spread between seeds, not step noise). Results are cached per column until a member's table moves.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..groups import counted, group_state
from .rundata import RunSnapshot

BAND_MODES = ("minmax", "se")


@dataclass(frozen=True)
class Aggregate:
    x: np.ndarray
    mean: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    n: np.ndarray  # members with a value at each x


def seed_band(grid: np.ndarray, mode: str = "minmax") -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Mean, band low, band high and count over the rows of ``grid`` ([seed, x], NaN: no value).
    ``mode`` "minmax": the seeds' range; "se": mean ± standard error (0 where one seed has a value)."""
    n = np.sum(np.isfinite(grid), axis=0)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns: NaN out, that is the answer
        mean = np.nanmean(grid, axis=0)
        if mode == "minmax":
            lo, hi = np.nanmin(grid, axis=0), np.nanmax(grid, axis=0)
        else:
            se = np.nanstd(grid, axis=0, ddof=1) / np.sqrt(np.maximum(n, 1))
            se = np.where(n > 1, se, 0.0)
            lo, hi = mean - se, mean + se
    return mean, lo, hi, n


class SeedGroupData:
    """k runs (their snapshots; the dashboard replaces ``members`` as new ones arrive) shown as one series."""

    def __init__(self, label: str, members: list[RunSnapshot]) -> None:
        self.label = label
        self.members = members
        self._cache: dict[tuple, tuple[tuple, Aggregate | None]] = {}

    # -- what the panel code asks a RunSnapshot ---------------------------------------------------------

    @property
    def run_id(self) -> str:
        return self.label

    @property
    def preset(self) -> dict[str, dict[str, Any]]:
        return self.members[0].preset

    @property
    def arch(self) -> str:
        return self.members[0].arch

    @property
    def state(self) -> str:
        return group_state([m.state for m in self.members])

    def has(self, kind: str, name: str) -> bool:
        return any(m.has(kind, name) for m in self.members)

    def has_nonzero(self, kind: str, name: str) -> bool:
        return any(m.has_nonzero(kind, name) for m in self.members)

    def table_version(self, kind: str) -> tuple:
        return tuple(m.table_version(kind) for m in self.members)

    def last(self, kind: str, name: str) -> float | None:
        """The mean of the members' last values, over the runs the group's statistics count (a failed
        seed's loss at its last step is not the configuration's)."""
        states = [m.state for m in self.members]
        vals = [v for m, c in zip(self.members, counted(states, states)) if c is not None
                and (v := m.last(kind, name)) is not None and math.isfinite(v)]
        return sum(vals) / len(vals) if vals else None

    def best_values(self) -> list[float | None]:
        """Each member's best val_bpb as the group's statistics count it (``groups.counted``: the
        completed runs'), None where not counted, in member order."""
        from .panels import best_bpb

        return counted([m.state for m in self.members], [best_bpb(m) for m in self.members])

    # -- the group's own ----------------------------------------------------------------------------

    def aggregate(self, kind: str, name: str, xaxis: str, ema_weight: float | None,
                  mode: str = "minmax") -> Aggregate | None:
        """The members' (smoothed when ``ema_weight``) curves of one column on the union of their x,
        each member only over its own x range, reduced to mean and band: the members the group's
        statistics count (``counted``), so the curve ends where its best bpb and loss say."""
        key = (kind, name, xaxis, ema_weight, mode)
        states = [m.state for m in self.members]
        token = (self.table_version(kind), tuple(states))
        hit = self._cache.get(key)
        if hit is not None and hit[0] == token:
            return hit[1]
        curves = []
        for m, c in zip(self.members, counted(states, states)):
            if c is None:
                continue
            xy = m.xy(kind, name, xaxis)
            if xy is None or xy[0].size == 0:
                continue
            x, y = xy
            if ema_weight is not None:
                y = m.ema(kind, name, y, ema_weight)
            curves.append((x, y))
        agg = None
        if curves:
            xs = [x for x, _ in curves]
            longest = max(xs, key=len)
            same = all(np.array_equal(x, longest[: x.size]) for x in xs)  # the usual case: one schedule
            grid_x = longest if same else np.unique(np.concatenate(xs))
            grid = np.full((len(curves), grid_x.size), np.nan)
            for i, (x, y) in enumerate(curves):
                if same:
                    grid[i, : x.size] = y
                else:
                    inside = (grid_x >= x[0]) & (grid_x <= x[-1])
                    grid[i, inside] = np.interp(grid_x[inside], x, y)
            mean, lo, hi, n = seed_band(grid, mode)
            ok = n > 0
            agg = Aggregate(grid_x[ok], mean[ok], lo[ok], hi[ok], n[ok])
        self._cache[key] = (token, agg)
        return agg


def sources_of(layout: list[tuple[str, list[int]]], runs: list[RunSnapshot], old: list[Any] = ()) -> list[Any]:
    """What a dashboard draws from its runs' latest snapshots: for each (label, indexes) of ``layout``
    the run, or a seed group of two or more (``old``'s group object is kept, with its cache)."""
    out: list[Any] = []
    for j, (label, idx) in enumerate(layout):
        if len(idx) == 1:
            out.append(runs[idx[0]])
            continue
        group = old[j] if j < len(old) and isinstance(old[j], SeedGroupData) else SeedGroupData(label, [])
        group.members = [runs[i] for i in idx]
        out.append(group)
    return out

"""One open run in the app: ``RunData`` reads it (loader thread), ``RunSnapshot`` is what the UI sees.

Pure Python + numpy (no Textual). The loader thread calls ``RunData.poll()``; after a change it takes
a ``snapshot()`` and posts it in a message. A snapshot is immutable: column views the reader never
writes again (``reader.Table`` appends beyond a view's end and replaces arrays when rows go), tuples
of samples, logs and stdout lines, and the state. The UI reads snapshots only: no lock, no reader.
Its plot caches (EMA, block min/max) live in a ``series.SeriesCache`` that only the UI touches.
"""

from __future__ import annotations

import subprocess
import time
from collections import deque
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping

import numpy as np

from ..events import float_or_none
from ..reader import TABLE_KINDS, EventTail, RunReader, Sample, live_state, training_time
from ..runs import STDOUT, read_preset
from .series import SeriesCache


@dataclass(frozen=True, eq=False)
class RunSnapshot:
    """A run at one moment, as the dashboard, status line and compare table read it."""

    path: Path
    preset: Mapping[str, Any]
    columns: Mapping[str, Mapping[str, np.ndarray]]  # kind -> name -> read-only view
    versions: Mapping[str, tuple[int, int]]  # kind -> (version, epoch)
    state: str = "new"
    run_start: Mapping[str, Any] | None = None
    run_end: Mapping[str, Any] | None = None
    samples: tuple[Sample, ...] = ()
    logs: tuple[str, ...] = ()
    stdout: tuple[str, ...] = ()
    stdout_total: int = 0  # lines ever read from stdout.log (the UI appends only the new ones)
    resumes: int = 0
    skipped: int = 0
    exit_code: int | None = None
    loaded: bool = False  # read to the end at least once
    at_end: bool = False  # read to the end now
    progress: float = 0.0
    version: int = 0  # moves whenever anything visible changed
    meta_version: int = 0  # samples, logs, state, stdout
    cache: SeriesCache = field(default_factory=SeriesCache)  # the UI's, kept across snapshots

    @staticmethod
    def empty(path: Path) -> "RunSnapshot":
        return RunSnapshot(Path(path), MappingProxyType(read_preset(Path(path))), MappingProxyType({}),
                           MappingProxyType({}))

    @property
    def run_id(self) -> str:
        return self.path.name

    def setting(self, path: str, default: Any = None) -> Any:
        section, key = path.split(".", 1)
        return self.preset.get(section, {}).get(key, default)

    @property
    def arch(self) -> str:
        return str(self.setting("model.arch", (self.run_start or {}).get("arch", "")) or "")

    @property
    def max_steps(self) -> int:
        return int((self.run_start or {}).get("max_steps") or self.setting("train.max_steps", 0) or 0)

    def caught_up(self) -> bool:
        return self.loaded and self.at_end

    def column(self, kind: str, name: str) -> np.ndarray | None:
        return self.columns.get(kind, {}).get(name)

    def has(self, kind: str, name: str) -> bool:
        col = self.column(kind, name)
        return col is not None and bool(np.isfinite(col).any())

    def has_nonzero(self, kind: str, name: str) -> bool:
        col = self.column(kind, name)
        return col is not None and bool(np.any(np.isfinite(col) & (col != 0)))

    def last(self, kind: str, name: str) -> float | None:
        col = self.column(kind, name)
        if col is None:
            return None
        ok = np.flatnonzero(np.isfinite(col))
        return float(col[ok[-1]]) if ok.size else None

    def table_version(self, kind: str) -> tuple[int, int]:
        return self.versions.get(kind, (0, 0))

    def xy(self, kind: str, name: str, xaxis: str = "step") -> tuple[np.ndarray, np.ndarray] | None:
        """Full-resolution (x, y) of one column; x is steps or tokens."""
        y, steps = self.column(kind, name), self.column(kind, "step")
        if y is None or steps is None or y.size == 0:
            return None
        if xaxis != "tokens":
            return steps, y
        x = self.column(kind, "tokens")
        if x is None or not np.isfinite(x[-1:]).all():
            ts, tt = self.column("train", "step"), self.column("train", "tokens")
            if ts is None or tt is None or ts.size == 0:
                return None
            x = np.interp(steps, ts, tt)
        return x, y

    def ema(self, kind: str, name: str, y: np.ndarray, weight: float) -> np.ndarray:
        """EMA of a column with ``weight`` per training step (series.ema), cached across snapshots."""
        steps = self.column(kind, "step")
        steps = steps[: y.size] if steps is not None and steps.size >= y.size else None
        return self.cache.ema((kind, name), y, weight, self.table_version(kind)[1], steps)

    def blocks(self, key: tuple, x: np.ndarray, y: np.ndarray, kind: str) -> Any:
        return self.cache.blocks(key, x, y, self.table_version(kind)[1])

    def recent_rate(self) -> float | None:
        """Steps per second over the recent train events (from their timestamps, not the clock)."""
        t, s = self.column("train", "time"), self.column("train", "step")
        if t is None or s is None or t.size < 2:
            return None
        t, s = t[-50:], s[-50:]
        ok = np.isfinite(t) & np.isfinite(s)
        t, s = t[ok], s[ok]
        if t.size < 2 or t[-1] <= t[0]:
            return None
        return float((s[-1] - s[0]) / (t[-1] - t[0]))

    def elapsed_s(self) -> float | None:
        """Training time over every attempt (``reader.training_time``)."""
        return training_time(self.run_start, self.run_end, self.last("train", "time"))

    def mean_tokens_per_s(self) -> float | None:
        """A finished run's throughput: tokens over its training time, every attempt counted."""
        tokens = float_or_none((self.run_end or {}).get("tokens"))
        elapsed = self.elapsed_s()
        if not tokens or not elapsed:  # (no run_end: no tokens)
            return None
        return tokens / elapsed


def _frozen(view: np.ndarray) -> np.ndarray:
    view = view.view()
    view.flags.writeable = False
    return view


class RunData:
    """The loader thread's side of one open run: the reader, stdout.log's tail, the trainer we started."""

    def __init__(self, path: str | Path, proc: subprocess.Popen | None = None) -> None:
        self.path = Path(path)
        self.proc = proc
        self.reader = RunReader(self.path)
        self.exit_code: int | None = None
        self.alive: bool | None = None
        self.loaded = False
        self.version = 0
        self._stdout: EventTail | None = None  # stdout.log's tail
        self._stdout_lines: deque[str] = deque(maxlen=400)
        self._stdout_total = 0
        self._next_liveness = 0.0
        self._cache_saved = False
        self._cache = SeriesCache()
        self._snapshot = RunSnapshot.empty(self.path)

    @property
    def run_id(self) -> str:
        return self.path.name

    def wake(self) -> None:
        """Look at the trainer at the next poll (after a resume or a stop)."""
        self._next_liveness = 0.0

    def attach(self, proc: subprocess.Popen) -> None:
        """A new trainer of ours for this run (a resume from the app): its exit is the one to watch."""
        self.proc, self.exit_code, self.alive = proc, None, None
        self._snapshot = replace(self._snapshot, exit_code=None)  # (not the last trainer's exit)
        self.wake()

    def poll(self, budget_s: float = 0.25) -> bool:
        """Read what was appended (up to ``budget_s`` of work); True if anything changed (then
        ``snapshot()`` has the new state)."""
        if self.loaded and not self._cache_saved:  # after the first full snapshot went out, not before
            self._cache_saved = True
            self.reader.save_cache()  # a long run read without a cache re-opens from one next time
        changed = self.reader.poll(budget_s)
        if not self.loaded and self.reader.caught_up():
            self.loaded = changed = True
        changed = self._poll_stdout() | self._check_liveness() | changed
        if changed:
            self.version += 1
            self._snapshot = self._take_snapshot()
        return changed

    def snapshot(self) -> RunSnapshot:
        return self._snapshot

    def caught_up(self) -> bool:
        return self.loaded and self.reader.caught_up()

    def _take_snapshot(self) -> RunSnapshot:
        r = self.reader
        return RunSnapshot(
            self.path, self._snapshot.preset if self._snapshot.preset else MappingProxyType(read_preset(self.path)),
            MappingProxyType({k: MappingProxyType({n: _frozen(t.col(n)) for n in t.cols})
                              for k, t in r.tables.items()}),
            MappingProxyType({k: (r.tables[k].version, r.tables[k].epoch) for k in TABLE_KINDS}),
            state=self.state, run_start=r.run_start, run_end=r.run_end, samples=tuple(r.samples),
            logs=tuple(r.logs), stdout=tuple(self._stdout_lines), stdout_total=self._stdout_total, resumes=r.resumes,
            skipped=r.skipped, exit_code=self.exit_code, loaded=self.loaded, at_end=r.caught_up(),
            progress=r.progress, version=self.version, meta_version=r.meta_version + self._stdout_total,
            cache=self._cache)

    @property
    def state(self) -> str:
        """new | starting | running | completed | stopped | pruned | failed | dead | unreadable."""
        state = self.reader.state
        if state not in ("new", "running"):
            return state
        if self.alive is False:
            return "dead" if self.reader.caught_up() or state == "new" else state
        if state == "new" and self.proc is not None:
            return "starting"
        return state

    def _check_liveness(self) -> bool:
        """A trainer that died without writing run_end is 'dead' (reader.live_state's rule)."""
        now = time.monotonic()
        if now < self._next_liveness:
            return False
        self._next_liveness = now + 1.0
        before = (self.alive, self.exit_code)
        if self.proc is not None:
            code = self.proc.poll()  # also reaps it: a zombie would still look alive
            if code is not None and self.exit_code is None and self.reader.run_end is None:
                self._record_death(code)
            self.exit_code, self.alive = code, code is None
        elif self.reader.run_end is None:
            state = live_state(self.path, self.reader.state)
            self.alive = True if state == "running" else (False if state == "dead" else None)
        return (self.alive, self.exit_code) != before

    def _record_death(self, code: int) -> None:
        """The trainer this app started is gone: write the run_end it could not (the headless
        watcher's words: a SIGKILL is reported as likely out of memory)."""
        from ..launch import death_reason
        from ..ownership import record_death

        try:
            record_death(self.path, death_reason(self.path, code))
        except Exception as e:  # the dashboard still shows the run as dead
            self.reader.logs.append(f"[warning] could not record the trainer's end ({e})")
            self.reader.meta_version += 1

    def _poll_stdout(self) -> bool:
        """New lines of stdout.log (at the first look only its last 64 KiB matter; truncated: from 0)."""
        if self._stdout is None or self._stdout.offset > self._stdout.size():  # first look (or truncated)
            self._stdout = EventTail(self.path / STDOUT, start=-65536 if self._stdout is None else 0)
        lines = self._stdout.poll_bytes(None).split(b"\n")[:-1]
        for line in lines:  # progress bars redraw with \r: keep what the terminal would show
            self._stdout_lines.append(line.decode("utf-8", "replace").rsplit("\r", 1)[-1].rstrip())
        self._stdout_total += len(lines)
        return bool(lines)

"""One run as the dashboard sees it: columns of train/eval/diag events, samples, log lines, state.

Pure Python + numpy (no Textual). A loader thread calls ``poll()``; the UI thread reads through
``xy()`` / ``snapshot()``. Both hold ``lock`` briefly: the loader while it appends, the UI while it
takes array views (views stay valid after the lock is released, see ``series.Table``).

A long file (``OVERVIEW_MIN_BYTES`` and up) opens in two steps. The first poll reads an *overview*:
windows spread over the file plus its whole tail, a few MB whatever the file's size, so the
dashboard can draw the run's whole x range, its latest values and its state at once
(``overview`` > 0 says what share of the bytes it holds). Meanwhile the full read runs (in worker
processes when it can, else in this thread a chunk per poll) into a separate staging ``RunData``;
when it is done, its state replaces the overview in one step (table epochs move on, so the UI's
caches rebuild) and tailing goes on from where it ended.

The resume rule of ``events.effective_events`` applies: a ``run_start`` at step s drops every earlier
row with step > s, and an earlier ``run_end``.
"""

from __future__ import annotations

import math
import os
import subprocess
import threading
import time
import tomllib
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..events import to_float
from ..runs import EVENTS, PRESET, STDOUT, lock_held, was_launched
from .eventload import (CHUNK, OVERVIEW_MIN_BYTES, PARALLEL_MIN_BYTES, Chunk, ChunkTail, ParallelParse, Signature,
                        complete_end, overview_ranges, parse_chunk, read_lines)
from .series import BlockCache, EmaCache, Table

TABLE_KINDS = ("train", "eval", "diag")
_SKIP_FIELDS = {"v", "kind"}
_NUMERIC_STR = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str) and value in _NUMERIC_STR:
        return _NUMERIC_STR[value]
    return None


@dataclass
class Sample:
    step: int
    prompt: str
    text: str


class RunData:
    """Incrementally loaded state of one run directory."""

    def __init__(self, path: str | Path, proc: subprocess.Popen | None = None, *,
                 parallel_min_bytes: int | None = PARALLEL_MIN_BYTES,
                 overview_min_bytes: int | None | str = "default"):
        self.path = Path(path)
        self.parallel_min_bytes = parallel_min_bytes  # None: always read in this process
        # None: never an overview first; "default": this module's OVERVIEW_MIN_BYTES, read now (tests
        # lower it for the app's loaders)
        self.overview_min_bytes = OVERVIEW_MIN_BYTES if overview_min_bytes == "default" else overview_min_bytes
        self.overview = 0.0  # share of the file's bytes the tables hold while they are an overview
        self._full: _FullRead | None = None
        self._first_read_done = False  # the first poll picks how to read the file (overview, workers, here)
        self.lock = threading.RLock()
        self._poll_lock = threading.Lock()
        self.tables: dict[str, Table] = {k: Table() for k in TABLE_KINDS}
        self.run_start: dict[str, Any] | None = None
        self.run_end: dict[str, Any] | None = None
        self.samples: deque[Sample] = deque(maxlen=24)
        self.logs: deque[str] = deque(maxlen=200)  # 'log' events, formatted
        self.stdout: deque[str] = deque(maxlen=400)  # the tail of stdout.log
        self.stdout_total = 0  # lines ever appended to ``stdout`` (the UI appends only the new ones)
        self.checkpoints: list[int] = []
        self.resumes = 0
        self.proc = proc
        self.exit_code: int | None = None
        self.alive: bool | None = None
        self.version = 0  # bumps whenever anything visible changed
        self.meta_version = 0  # samples, logs, state, stdout
        self.loaded = False  # the file has been read to its end at least once
        self.skipped = 0
        self._tail = ChunkTail(self.path / EVENTS)
        self._sigs: list[Signature] = []
        self._stdout_offset: int | None = None
        self._stdout_partial = b""
        self._last_liveness = 0.0
        self.preset = self._read_preset()
        # UI-thread caches (never touched by the loader)
        self._ema: dict[tuple, EmaCache] = {}
        self._blocks: dict[tuple, BlockCache] = {}

    # -- identity ----------------------------------------------------------------------------------

    @property
    def run_id(self) -> str:
        return self.path.name

    def _read_preset(self) -> dict[str, dict[str, Any]]:
        try:
            return tomllib.loads((self.path / PRESET).read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError):
            return {}

    def setting(self, path: str, default: Any = None) -> Any:
        section, key = path.split(".", 1)
        return self.preset.get(section, {}).get(key, default)

    @property
    def arch(self) -> str:
        return str(self.setting("model.arch", (self.run_start or {}).get("arch", "")) or "")

    @property
    def max_steps(self) -> int:
        rs = self.run_start or {}
        return int(rs.get("max_steps") or self.setting("train.max_steps", 0) or 0)

    # -- loading (loader thread) ---------------------------------------------------------------------

    @property
    def progress(self) -> float:
        full = self._full
        if full is not None:
            return full.progress()
        size = self._tail.size()
        return 1.0 if size == 0 else min(1.0, self._tail.offset / size)

    def close(self) -> None:
        """Stop a full read in progress (its worker processes); the app calls this on exit."""
        full = self._full
        if full is not None:
            full.cancel()

    def poll(self, budget_s: float = 0.25) -> bool:
        """Read what was appended (up to ``budget_s`` of work) and fold it in. True if anything changed."""
        with self._poll_lock:  # one reader at a time: the cursor and the torn-line buffer are shared
            return self._poll(budget_s)

    def _poll(self, budget_s: float) -> bool:
        changed = False
        if not self._first_read_done:
            self._first_read_done = True
            if self._wants_overview():
                changed = self._read_overview()
            elif self.parallel_min_bytes is not None:
                self._start_full_read()
        t_end = time.perf_counter() + budget_s
        became_loaded = False
        while self._full is None:
            buf = self._tail.poll_bytes(CHUNK)
            if not buf:
                if not self.loaded:
                    became_loaded = changed = True
                break
            chunk = parse_chunk(buf, self._sigs)
            with self.lock:
                self._ingest(chunk)
            changed = True
            if time.perf_counter() > t_end:
                break
        if self._full is not None and not changed and self._advance_full(budget_s):
            changed = True
        if self._poll_stdout():
            changed = True
        if self._check_liveness():
            changed = True
        if changed:
            with self.lock:
                self.version += 1
        if became_loaded:  # after the version moved: whoever sees caught_up() sees the new version
            self.loaded = True
        return changed

    def _wants_overview(self) -> bool:
        if self.overview_min_bytes is None:
            return False
        try:
            return os.stat(self.path / EVENTS).st_size >= self.overview_min_bytes
        except OSError:
            return False

    def _read_overview(self) -> bool:
        """Fill the tables from an overview of the file and set up the full read (see the module)."""
        path = self.path / EVENTS
        try:
            end = complete_end(path)
            if end == 0:  # not one complete line yet: nothing to overview
                return False
            with open(path, "rb") as fh:
                # complete lines of every range, in file order: one buffer, parsed in one go (each
                # numpy call gives the GIL away, and getting it back from a busy UI thread is slow)
                buf = b"".join(read_lines(fh, a, b) for a, b in overview_ranges(end))
            sampled = len(buf)
            chunk = parse_chunk(buf, self._sigs)
            with self.lock:
                self._ingest(chunk)
                # a resume whose run_start fell between the windows leaves steps going backwards:
                # keep only rows whose step is below every later one (what the resume rule keeps)
                for table in self.tables.values():
                    steps = table.col("step")
                    if steps is not None and table.n > 1:
                        later = np.fmin.accumulate(steps[::-1])[::-1]
                        table.truncate_where(np.append(steps[:-1] < later[1:], True))
        except OSError as e:  # the file went away meanwhile: the ordinary read will say so
            self.logs.append(f"[warning] overview unavailable ({e})")
            self.overview_min_bytes = None
            return False
        # the full read starts at the next poll, once the UI has been told: on a small machine its
        # workers would take the cores the overview needs to be on screen fast
        self._full = _FullRead(self, end)
        self.overview = max(sampled / end, 1e-9) if end else 0.0
        return True

    def _advance_full(self, budget_s: float) -> bool:
        """Move the full read on; when it is done, its state replaces the overview."""
        full = self._full
        assert full is not None
        if not full.advance(budget_s):
            p = int(full.progress() * 100)
            if p != full.reported:  # the status line shows the percentage
                full.reported = p
                return True
            return False
        staging = full.staging
        with self.lock:
            for kind, table in staging.tables.items():
                table.epoch = self.tables[kind].epoch + 1  # the UI's caches rebuild
                table.version = self.tables[kind].version + 1
            self.tables = staging.tables
            self.run_start, self.run_end = staging.run_start, staging.run_end
            self.samples, self.checkpoints = staging.samples, staging.checkpoints
            self.logs = deque(list(staging.logs) + full.notes, maxlen=self.logs.maxlen)
            self.resumes, self.skipped = staging.resumes, staging.skipped
            self._sigs = staging._sigs
            self._tail.offset, self._tail._partial = full.end, b""
            self.overview = 0.0
            self.meta_version += 1
            self.version += 1  # before _full goes: whoever sees caught_up() sees the new version
            self._full = None
        return True

    def _start_full_read(self) -> None:
        """A long file, not long enough for an overview: the full read alone (worker processes)."""
        try:
            if os.stat(self.path / EVENTS).st_size < self.parallel_min_bytes:
                return
            end = complete_end(self.path / EVENTS)
        except OSError:  # no events yet: the ordinary read
            return
        if end:
            self._full = _FullRead(self, end)

    def _read_to_end(self) -> bool:
        """Every event written so far is in the tables (an overview has the whole tail)."""
        full = self._full
        return self._tail.at_end() if full is None else full.end >= self._tail.size()

    def caught_up(self) -> bool:
        return self.loaded and self._full is None and self._tail.at_end()

    def _ingest(self, chunk: Chunk) -> None:
        self.skipped += chunk.skipped
        resets = [(i, ev) for i, ev in chunk.events if ev.get("kind") == "run_start"]
        lo = 0
        for line, ev in resets + [(chunk.n_lines, None)]:
            self._append_segment(chunk, lo, line)
            if ev is not None:
                self._apply_run_start(ev)
            lo = line + 1

    def _append_segment(self, chunk: Chunk, lo: int, hi: int) -> None:
        pieces: dict[str, list[tuple[np.ndarray, list[str], np.ndarray]]] = {}
        for b in chunk.blocks:
            if b.kind not in self.tables:
                continue
            i0, i1 = np.searchsorted(b.lines, [lo, hi])
            if i1 > i0:
                pieces.setdefault(b.kind, []).append((b.lines[i0:i1], b.names, b.values[i0:i1]))
        slow: dict[str, list[tuple[int, dict[str, Any]]]] = {}
        for line, ev in chunk.events:
            if not lo <= line < hi:
                continue
            kind = ev.get("kind")
            if kind in self.tables:
                slow.setdefault(kind, []).append((line, ev))
            else:
                self._other_event(kind, ev)
        for kind, rows in slow.items():
            names: list[str] = []
            seen: set[str] = set()
            for _, ev in rows:
                for k, v in ev.items():
                    if k not in seen and k not in _SKIP_FIELDS and _number(v) is not None:
                        seen.add(k)
                        names.append(k)
            values = np.full((len(rows), len(names)), np.nan)
            for i, (_, ev) in enumerate(rows):
                for j, k in enumerate(names):
                    x = _number(ev.get(k))
                    if x is not None:
                        values[i, j] = x
            pieces.setdefault(kind, []).append((np.array([r[0] for r in rows]), names, values))
        for kind, parts in pieces.items():
            if len(parts) == 1:
                _, names, values = parts[0]
            else:  # fast and slow rows of one kind interleave: merge in file order
                names = []
                for _, ns, _ in parts:
                    names += [n for n in ns if n not in names]
                lines = np.concatenate([p[0] for p in parts])
                values = np.full((lines.size, len(names)), np.nan)
                r = 0
                for _, ns, vals in parts:
                    cols = [names.index(n) for n in ns]
                    values[r: r + vals.shape[0], cols] = vals
                    r += vals.shape[0]
                values = values[np.argsort(lines, kind="stable")]
            self.tables[kind].append(list(names), values)

    def _other_event(self, kind: Any, ev: dict[str, Any]) -> None:
        if kind == "sample":
            self.samples.append(Sample(int(ev.get("step", 0) or 0), str(ev.get("prompt", "")),
                                       str(ev.get("text", ""))))
        elif kind == "log":
            self.logs.append(f"[{ev.get('level', 'info')}] {ev.get('message', '')}")
        elif kind == "checkpoint":
            self.checkpoints.append(int(ev.get("step", 0) or 0))
        elif kind == "run_end":
            self.run_end = ev
        else:
            return
        self.meta_version += 1

    def _apply_run_start(self, ev: dict[str, Any]) -> None:
        s = ev.get("step", 0) or 0
        if self.run_start is not None:
            self.resumes += 1
            for table in self.tables.values():
                steps = table.col("step")
                if steps is not None and table.n:
                    table.truncate_where(~(steps > s))
            self.samples = deque((x for x in self.samples if x.step <= s), maxlen=self.samples.maxlen)
            self.checkpoints = [c for c in self.checkpoints if c <= s]
        self.run_start = ev
        self.run_end = None
        self.alive = None
        self.meta_version += 1

    def _poll_stdout(self) -> bool:
        path = self.path / STDOUT
        try:
            size = os.stat(path).st_size
        except FileNotFoundError:
            return False
        if self._stdout_offset is None:  # first look: only the last 64 KiB matter
            self._stdout_offset = max(0, size - 65536)
            skip_partial = self._stdout_offset > 0
        else:
            skip_partial = False
        if size < self._stdout_offset:  # truncated: start over
            self._stdout_offset, self._stdout_partial = 0, b""
        if size == self._stdout_offset:
            return False
        with open(path, "rb") as fh:
            fh.seek(self._stdout_offset)
            data = fh.read(size - self._stdout_offset)
        self._stdout_offset += len(data)
        data = self._stdout_partial + data
        lines = data.split(b"\n")
        self._stdout_partial = lines.pop()
        if skip_partial and lines:
            lines = lines[1:]
        with self.lock:
            for line in lines:
                # progress bars redraw with \r: keep what the terminal would show
                self.stdout.append(line.decode("utf-8", "replace").rsplit("\r", 1)[-1].rstrip())
            self.stdout_total += len(lines)
            self.meta_version += 1
        return bool(lines)

    def _check_liveness(self) -> bool:
        """Detect a trainer that died without writing run_end (the 'dead' state)."""
        now = time.monotonic()
        if now - self._last_liveness < 1.0:
            return False
        self._last_liveness = now
        before = (self.alive, self.exit_code)
        if self.proc is not None:
            code = self.proc.poll()  # also reaps it: a zombie would still look alive to kill(0)
            if code is not None:
                if self.exit_code is None and self.run_end is None:
                    self._record_death(code)
                self.exit_code = code
                self.alive = False
            else:
                self.alive = True
        elif self.run_end is None:  # runs.live_state's rule: the run's lock says whether a trainer lives
            held = lock_held(self.path)
            launched = self.run_start is not None or was_launched(self.path)
            self.alive = held if held is not None and (held or launched) else None
        if (self.alive, self.exit_code) != before:
            with self.lock:
                self.meta_version += 1
            return True
        return False

    def _record_death(self, code: int) -> None:
        """The trainer this app started is gone: write the run_end it could not (launch's rule, the
        same words as the headless watcher: a SIGKILL is reported as likely out of memory)."""
        from ..launch import death_reason
        from ..runs import record_death

        try:
            record_death(self.path, death_reason(self.path, code))
        except Exception as e:  # the dashboard still shows the run as dead
            self.logs.append(f"[warning] could not record the trainer's end ({e})")

    # -- reading (UI thread) -----------------------------------------------------------------------

    @property
    def state(self) -> str:
        """new | running | completed | stopped | failed | dead (as runs.summarize)."""
        if self.run_end is not None:
            return str(self.run_end.get("status", "failed"))
        if self._tail.error:
            return "unreadable"
        if self.alive is False and self._read_to_end():
            return "dead"
        if self.run_start is not None:
            return "running"
        if self.proc is not None:
            return "starting" if self.alive is not False else "dead"
        return "new"

    def column(self, kind: str, name: str) -> np.ndarray | None:
        with self.lock:
            return self.tables[kind].col(name)

    def has(self, kind: str, name: str) -> bool:
        col = self.column(kind, name)
        return col is not None and bool(np.isfinite(col).any())

    def has_nonzero(self, kind: str, name: str) -> bool:
        col = self.column(kind, name)
        return col is not None and bool(np.any(np.isfinite(col) & (col != 0)))

    def last(self, kind: str, name: str) -> float | None:
        with self.lock:
            return self.tables[kind].last(name)

    def table_version(self, kind: str) -> tuple[int, int]:
        t = self.tables[kind]
        return (t.version, t.epoch)

    def xy(self, kind: str, name: str, xaxis: str = "step") -> tuple[np.ndarray, np.ndarray] | None:
        """Full-resolution (x, y) views of one column; x is steps or tokens."""
        with self.lock:
            table = self.tables[kind]
            y = table.col(name)
            if y is None or table.n == 0:
                return None
            steps = table.col("step")
            if steps is None:
                return None
            if xaxis == "tokens":
                x = table.col("tokens")
                if x is None or not np.isfinite(x[-1:]).all():
                    tr = self.tables["train"]
                    ts, tt = tr.col("step"), tr.col("tokens")
                    if ts is None or tt is None or tr.n == 0:
                        return None
                    x = np.interp(steps, ts, tt)
            else:
                x = steps
        return x, y

    def ema(self, kind: str, name: str, y: np.ndarray, weight: float) -> np.ndarray:
        """EMA of a column with ``weight`` per training step (series.ema): the same smoothing
        whatever train.log_every is."""
        cache = self._ema.setdefault((kind, name), EmaCache())
        with self.lock:
            steps = self.tables[kind].col("step")
        if steps is not None and steps.size >= y.size:
            steps = steps[: y.size]
        else:
            steps = None
        return cache.get(y, weight, self.tables[kind].epoch, steps)

    def blocks(self, key: tuple, x: np.ndarray, y: np.ndarray, kind: str) -> BlockCache:
        cache = self._blocks.setdefault(key, BlockCache())
        cache.update(x, y, (self.tables[kind].epoch,))
        return cache

    def recent_rate(self) -> float | None:
        """Steps per second over the recent train events (from their timestamps, not the clock)."""
        with self.lock:
            t, s = self.tables["train"].col("time"), self.tables["train"].col("step")
            if t is None or s is None or t.size < 2:
                return None
            t, s = t[-50:], s[-50:]
        ok = np.isfinite(t) & np.isfinite(s)
        t, s = t[ok], s[ok]
        if t.size < 2 or t[-1] <= t[0]:
            return None
        return float((s[-1] - s[0]) / (t[-1] - t[0]))

    def elapsed_s(self) -> float | None:
        """Training time over every attempt: run_end's figure once the run has ended, else the
        earlier attempts' time (run_start's elapsed_before_s) plus run_start to the latest event
        (data time, deterministic)."""
        if self.run_start is None:
            return None
        total = _float_or_none((self.run_end or {}).get("elapsed_s"))
        if total is not None:
            return total
        latest = self.last("train", "time")
        end = (self.run_end or {}).get("time")
        stop = end if isinstance(end, (int, float)) else latest
        start = self.run_start.get("time")
        if isinstance(stop, (int, float)) and isinstance(start, (int, float)):
            before = _float_or_none(self.run_start.get("elapsed_before_s")) or 0.0
            return before + max(0.0, float(stop) - float(start))
        return None

    def mean_tokens_per_s(self) -> float | None:
        """A finished run's throughput: tokens over its training time, every attempt counted."""
        tokens = _float_or_none((self.run_end or {}).get("tokens"))
        elapsed = self.elapsed_s()
        if self.run_end is None or not tokens or not elapsed:
            return None
        return tokens / elapsed


def _float_or_none(value: Any) -> float | None:
    try:
        x = to_float(value)
    except (TypeError, ValueError):
        return None
    return x if x == x else None


class _FullRead:
    """The full read of a file whose overview is on show: bytes [0, end) into a staging RunData.

    In worker processes (``ParallelParse``) when the run allows them, else here a chunk per
    ``advance`` (the loader thread's budget), so the UI thread keeps most of the interpreter."""

    def __init__(self, owner: RunData, end: int) -> None:
        self.end = end
        self.reported = -1
        self.notes: list[str] = []
        self.staging = RunData(owner.path, parallel_min_bytes=None, overview_min_bytes=None)
        self.job: ParallelParse | None = None
        self._parallel = owner.parallel_min_bytes is not None and end >= owner.parallel_min_bytes
        self._started = False

    def _start(self) -> None:
        self._started = True
        if self._parallel:
            try:
                self.job = ParallelParse(self.staging.path / EVENTS, self.end)
            except OSError as e:
                self.notes.append(f"[warning] parallel read unavailable ({e}); reading in-process")

    def progress(self) -> float:
        if self.job is not None:
            return self.job.progress()
        return min(1.0, self.staging._tail.offset / self.end) if self.end else 1.0

    def advance(self, budget_s: float) -> bool:
        """Work for up to ``budget_s``; True when the staging state holds all of [0, end)."""
        if not self._started:
            self._start()
        if self.job is not None:
            if not self.job.wait(min(budget_s, 0.1)):
                return False
            try:
                chunks = self.job.result()
            except (OSError, RuntimeError, EOFError) as e:
                self.notes.append(f"[warning] parallel read failed ({e}); reading in-process")
                self.job = None
                return False
            for chunk in chunks:
                self.staging._ingest(chunk)
            self.staging._tail.offset = self.end
            return True
        tail = self.staging._tail
        t_end = time.perf_counter() + budget_s
        while tail.offset < self.end:
            before = tail.offset
            buf = tail.poll_bytes(min(CHUNK, self.end - tail.offset))
            if tail.offset == before:  # the file shrank under us: keep what was read
                self.end = tail.offset - len(tail._partial)
                tail._partial = b""
                break
            if buf:  # (nothing yet: a line longer than CHUNK is still being gathered)
                self.staging._ingest(parse_chunk(buf, self.staging._sigs))
            if time.perf_counter() > t_end:
                return False
        return True

    def cancel(self) -> None:
        if self.job is not None:
            self.job.cancel()

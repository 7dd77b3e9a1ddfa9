"""Reading a run: the one module every reader of ``events.jsonl`` builds on. Stdlib + numpy.

- ``EventTail``: an incremental tail (a byte cursor; a torn last line waits for its newline; a line
  that is not a usable event is skipped and counted, never raised).
- The resume rule: a resumed trainer writes a ``run_start`` whose ``step`` is the checkpoint it
  resumed from, so every earlier step-carrying event above that step (and an earlier ``run_end``) is
  superseded. ``effective_events`` applies it to a list of events, ``RunReader`` to its columns,
  samples and checkpoints (its log lines stay: they tell what happened to the superseded attempt).
- ``RunReader``: a run folded into columns (train / eval / diag tables), its other events (samples,
  logs, checkpoints, run_start / run_end) and a ``RunSummary``. It keeps its place and reads only
  what was appended. Beside ``events.jsonl`` it keeps a column cache (``events.cache``, keyed by the
  byte offset it covers and a fingerprint of the bytes before it): a re-open loads the cache and
  parses only bytes it has not seen. The trainer refreshes it at every checkpoint and at its end
  (``refresh_cache``), so even a first open of a long run parses only its last few events.
- Liveness: ``live_state``, the one rule for "is the trainer alive" (the run's lock, see
  ``ownership.lock_held``; a child process of ours is asked directly, which also reaps a zombie).
"""

from __future__ import annotations

import bisect
import hashlib
import itertools
import json
import os
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import numpy as np

from .events import MAX_LINE, EventsFileError, decode_event, float_or_none, open_regular, to_float
from .files import temp_beside
from .lineparse import BLOCK_KINDS as TABLE_KINDS, CHUNK, Chunk, Signature, parse_chunk
from .runs import EVENTS, PIDFILE
from .ownership import lock_held, read_identity

CACHE = "events.cache"
CACHE_FORMAT = 2  # 2: absent cells are ABSENT, no longer a plain NaN (a format-1 cache is rebuilt)
_MAGIC = b"tuiLM events.cache\n"
CACHE_MIN_BYTES = 4 << 20  # below this a full read takes well under 0.1 s: no cache is written
STALE_TMP_S = 600.0  # a cache temp file this old belongs to no live writer
TREND_POINTS = 10  # train losses a summary keeps for the runs list's sparkline
DIAG_FIELDS = ("step", "H_res_diag_mean", "gate_value")  # what the runs list's FROZEN flag reads
# A cell of a column whose event did not carry the field: a NaN of its own (R's NA does the same), so
# every NaN test treats it as missing while ``absent`` still tells it from a "nan" the trainer wrote.
ABSENT_BITS = 0x7FF80000000007A2
ABSENT = float(np.array(ABSENT_BITS, dtype=np.uint64).view(np.float64))


# -- the tail --------------------------------------------------------------------------------------

class EventTail:
    """Incremental reader: ``poll()`` returns only the events appended since the last call.

    Keeps a byte cursor, never re-reads what it has read, and holds back a torn last line until it is
    completed (a tail that starts past byte 0 begins at the next line). Lines that are complete but
    not events a reader can use (not JSON, wrong field types, too deep: ``events.sanitize``) are
    skipped and counted in ``skipped``. A path that is not a regular file (a FIFO, a device) is never
    read: ``error`` says why and ``poll()`` returns nothing.
    """

    def __init__(self, path: str | Path, start: int = 0):
        self.path = Path(path)
        self.offset = start if start >= 0 else max(0, self.size() + start)  # (< 0: from the end as it is now)
        self.partial = b""  # the complete lines read end at ``offset - len(partial)``
        self.skipped = 0
        self.error: str | None = None
        self._dropping = self.offset > 0  # started inside a line: it begins after the next newline

    def read_bytes(self, max_bytes: int | None = None) -> bytes:
        """Raw bytes from the cursor on (at most ``max_bytes``); b"" when missing or refused."""
        try:
            with open_regular(self.path) as fh:
                fh.seek(self.offset)
                data = fh.read(max_bytes)  # (None: to the end)
        except FileNotFoundError:
            return b""
        except OSError as e:
            self.error = f"{self.path}: {e.strerror or e}"
            return b""
        self.error = None
        self.offset += len(data)
        return data

    def poll_bytes(self, max_bytes: int | None = CHUNK) -> bytes:
        """The complete lines appended since the last call (a torn last line waits). A line longer
        than ``max_bytes`` is read on until its newline; one longer than MAX_LINE is dropped whole.
        A torn line held back is read again from the file: a writer reopening it cuts the fragment
        (``EventWriter``) and appends whole lines in its place."""
        self.offset, self.partial = self.offset - len(self.partial), b""
        while True:
            data = self.read_bytes(max_bytes)
            if not data:
                return b""
            if self._dropping:  # inside a line over MAX_LINE: skip to its end
                nl = data.find(b"\n")
                if nl < 0:
                    continue
                data, self._dropping = data[nl + 1:], False
            data = self.partial + data
            cut = data.rfind(b"\n")
            self.partial = data[cut + 1:]
            if len(self.partial) > MAX_LINE:  # not a line any writer of ours makes: drop it
                self.partial, self._dropping = b"", True
                self.skipped += 1
            if cut >= 0:
                return data[: cut + 1]

    def poll(self) -> list[dict[str, Any]]:
        lines = [line for line in self.poll_bytes(None).split(b"\n") if line.strip()]
        out = [ev for ev in map(decode_event, lines) if ev is not None]
        self.skipped += len(lines) - len(out)
        return out

    @property
    def done(self) -> int:
        """Bytes of complete lines consumed."""
        return self.offset - len(self.partial)

    def size(self) -> int:
        try:
            return os.stat(self.path).st_size
        except OSError:
            return 0


def read_events(path: str | Path) -> list[dict[str, Any]]:
    """All complete events of a file (a torn last line is ignored)."""
    return EventTail(path).poll()


def effective_events(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The resume rule on a list: a ``run_start`` at step s drops every earlier step-carrying event
    with step > s (and an earlier ``run_end``). Events without a step (log) are kept."""
    starts = [(i, ev.get("step", 0)) for i, ev in enumerate(events) if ev.get("kind") == "run_start"]
    return list(_resume_rule(enumerate(events), starts))


def iter_effective(path: str | Path, progress: Callable[[int, int], None] | None = None) -> Iterator[dict[str, Any]]:
    """A file's events under the resume rule, streamed in two passes (where the run_starts are, then
    every event), so memory stays flat for any length. ``progress(bytes, total)`` during the second."""
    from orjson import loads

    tail, starts, n = EventTail(path), [], 0
    while buf := tail.poll_bytes():
        for line in buf.split(b"\n")[:-1]:
            if b"run_start" in line and (ev := decode_event(line, loads)) and ev["kind"] == "run_start":
                starts.append((n, ev.get("step", 0)))
            n += 1
    if tail.error:
        raise EventsFileError(tail.error)

    def lines() -> Iterator[tuple[int, dict[str, Any]]]:
        again, i = EventTail(path), 0
        while i < n and (buf := again.poll_bytes()):
            for line in buf.split(b"\n")[:-1][: n - i]:
                if (ev := decode_event(line, loads)) is not None:
                    yield i, ev
                i += 1
            if progress is not None:
                progress(again.done, tail.done)

    return _resume_rule(lines(), starts)


def _resume_rule(events: Iterable[tuple[int, dict[str, Any]]], starts: list[tuple[int, int]]) -> Iterator[dict[str, Any]]:
    """(index, event) in file order, less what a later run_start (``starts``: index, step) supersedes."""
    at = [i for i, _ in starts]
    cut = list(itertools.accumulate(reversed([s for _, s in starts]), min))[::-1]  # least step from k on
    for i, ev in events:
        k = bisect.bisect_right(at, i)
        if k < len(at) and (ev.get("kind") == "run_end" or (ev.get("kind") != "run_start" and isinstance(
                ev.get("step"), int) and ev["step"] > cut[k])):
            continue
        yield ev


# -- liveness --------------------------------------------------------------------------------------

def was_launched(run_dir: str | Path) -> bool:
    """Whether a trainer was ever started on the run (its identity was recorded)."""
    return read_identity(run_dir) is not None or (Path(run_dir) / PIDFILE).exists()


def live_state(run_dir: str | Path, state: str, proc: Any = None) -> str:
    """A run's state corrected by liveness: one that says ``running`` (or never said anything) whose
    trainer is gone is ``dead``; one still ``new`` while its trainer lives is ``running``. ``proc``:
    the trainer when it is our child (``poll()`` also reaps it: a zombie holds no lock but would still
    answer a signal); otherwise the run's lock decides (``ownership.lock_held``)."""
    if state not in ("new", "running"):
        return state
    held = (proc.poll() is None) if proc is not None else lock_held(run_dir)
    if held is None:
        return state
    if held:
        return "running"
    return "dead" if state == "running" or proc is not None or was_launched(run_dir) else state


# -- columns ---------------------------------------------------------------------------------------

class Table:
    """Columns of float64 with a shared length; new columns appear as they are first seen.

    Appends write beyond the current length and removing rows allocates new arrays, so a view
    ``col[:n]`` handed out stays valid (and unchanged) while the reader carries on. ``epoch`` changes
    when rows are removed (a resume): caches keyed by epoch and length rebuild then.
    """

    def __init__(self, cols: dict[str, np.ndarray] | None = None) -> None:
        self.cols: dict[str, np.ndarray] = dict(cols or {})
        self.n = len(next(iter(self.cols.values()))) if self.cols else 0
        self.cap = self.n
        self.epoch = 0
        self.version = 0

    def _reserve(self, need: int) -> None:
        if need > self.cap:
            self.cap = max(1024, need, int(self.cap * 1.6))
            for name, arr in self.cols.items():
                new = np.empty(self.cap)
                new[: self.n] = arr[: self.n]
                self.cols[name] = new

    def append(self, names: list[str], values: np.ndarray) -> None:
        """Append rows: ``values`` has shape (m, len(names)); absent columns get ABSENT."""
        m = values.shape[0]
        if m == 0:
            return
        self._reserve(self.n + m)
        lo, hi = self.n, self.n + m
        for j, name in enumerate(names):
            if name not in self.cols:
                self.cols[name] = np.full(self.cap, ABSENT)
            self.cols[name][lo:hi] = values[:, j]
        for name in self.cols.keys() - set(names):
            self.cols[name][lo:hi] = ABSENT
        self.n = hi
        self.version += 1

    def truncate_where(self, keep: np.ndarray) -> None:
        """Keep only rows where ``keep`` (bool, length n) is true; allocates fresh arrays."""
        n = int(keep.sum())
        if n == self.n:
            return
        self.cols = {name: arr[: self.n][keep].copy() for name, arr in self.cols.items()}
        self.n = self.cap = n
        self.epoch += 1
        self.version += 1

    def col(self, name: str) -> np.ndarray | None:
        arr = self.cols.get(name)
        return None if arr is None else arr[: self.n]


def _number(value: Any, default: float | None = None) -> float | None:
    """A field as a column cell (a boolean as 0/1); ``default`` when it is not a number."""
    try:
        return float(value) if isinstance(value, bool) else to_float(value)
    except (TypeError, ValueError):
        return default


# -- the run ---------------------------------------------------------------------------------------

@dataclass
class RunSummary:
    path: Path
    state: str = "new"  # new | running | completed | stopped | pruned | failed | dead | unreadable
    arch: str = ""
    preset_name: str = ""
    step: int = 0
    max_steps: int = 0
    tokens: int = 0
    last_loss: float | None = None
    best_val_bpb: float | None = None
    best_val_loss: float | None = None
    artifact_bytes: int | None = None
    started: float | None = None
    reason: str = ""
    evals: list[tuple[int, float, float]] = field(default_factory=list)  # (step, val_bpb, val_loss)
    trend: list[float] = field(default_factory=list)  # TREND_POINTS train losses over the run, oldest first
    diag: dict[str, float] = field(default_factory=dict)  # the latest mHC diagnostics (DIAG_FIELDS)
    elapsed_s: float | None = None  # training time over every attempt (training_time), not wall time

    @property
    def age_s(self) -> float:
        return time.time() - (self.started or self.path.stat().st_mtime)


@dataclass(frozen=True)
class Sample:
    step: int
    prompt: str
    text: str


class RunReader:
    """A run directory's events folded into columns, other events and a summary, incrementally."""

    def __init__(self, path: str | Path, *, cache: bool = True) -> None:
        self.path = Path(path)
        self.tail = EventTail(self.path / EVENTS)
        self.tables = {k: Table() for k in TABLE_KINDS}
        self.run_start: dict[str, Any] | None = None
        self.run_end: dict[str, Any] | None = None
        self.samples: deque[Sample] = deque(maxlen=24)
        self.logs: deque[str] = deque(maxlen=200)  # 'log' events, formatted
        self.checkpoints: list[int] = []
        self.resumes = 0
        self.started: float | None = None
        self.last_time: float | None = None
        self.meta_version = 0  # bumps when samples, logs or the run's state change
        self._sigs: list[Signature] = []
        self._skipped = 0
        self._use_cache = cache
        self._cache_at = -1  # offset the cache on disk covers (-1: not looked yet)

    @property
    def skipped(self) -> int:
        return self._skipped + self.tail.skipped

    @property
    def error(self) -> str | None:
        return self.tail.error

    @property
    def progress(self) -> float:
        size = self.tail.size()
        return 1.0 if size == 0 else min(1.0, self.tail.offset / size)

    def caught_up(self) -> bool:
        """Read to the end (an unreadable file counts: there is nothing more to read)."""
        return self.tail.error is not None or self.tail.offset >= self.tail.size()

    def poll(self, budget_s: float | None = None) -> bool:
        """Read what was appended (for at most about ``budget_s``; None: to the end) and fold it in.
        True if anything changed."""
        changed = False
        if self._cache_at < 0:
            self._cache_at = 0
            changed = self._use_cache and self._load_cache()
        t_end = None if budget_s is None else time.perf_counter() + budget_s
        while buf := self.tail.poll_bytes(CHUNK):
            self._ingest(parse_chunk(buf, self._sigs))
            changed = True
            if t_end is not None and time.perf_counter() > t_end:
                break
        return changed

    # -- folding -----------------------------------------------------------------------------------

    def _ingest(self, chunk: Chunk) -> None:
        self._skipped += chunk.skipped
        lo = 0
        for line, ev in [(i, ev) for i, ev in chunk.events if ev.get("kind") == "run_start"] + [(chunk.n_lines, None)]:
            self._append_segment(chunk, lo, line)
            if ev is not None:
                self._apply_run_start(ev)
            lo = line + 1
        times = [b.values[-1, b.names.index("time")] for b in chunk.blocks if "time" in b.names]
        times += [ev["time"] for _, ev in chunk.events[-1:] if isinstance(ev.get("time"), (int, float))]
        if times and np.isfinite(max(times)):
            self.last_time = max(float(max(times)), self.last_time or 0.0)

    def _append_segment(self, chunk: Chunk, lo: int, hi: int) -> None:
        """Rows of lines [lo, hi) of a chunk, fast (blocks) and slow (decoded events), in file order."""
        parts: dict[str, list[tuple[np.ndarray, list[str], np.ndarray]]] = {}
        for b in chunk.blocks:
            i0, i1 = np.searchsorted(b.lines, [lo, hi])
            if b.kind in self.tables and i1 > i0:
                parts.setdefault(b.kind, []).append((b.lines[i0:i1], b.names, b.values[i0:i1]))
        slow: dict[str, list[tuple[int, dict[str, Any]]]] = {}
        for line, ev in chunk.events:
            if lo <= line < hi:
                kind = ev.get("kind")
                if kind in self.tables:
                    slow.setdefault(kind, []).append((line, ev))
                else:
                    self._other_event(kind, ev)
        for kind, rows in slow.items():
            names = list(dict.fromkeys(k for _, ev in rows for k, v in ev.items()
                                       if k not in ("v", "kind") and _number(v) is not None))
            values = np.array([[_number(ev.get(k), ABSENT) for k in names] for _, ev in rows],
                              dtype=np.float64).reshape(len(rows), len(names))
            parts.setdefault(kind, []).append((np.array([r[0] for r in rows]), names, values))
        for kind, pieces in parts.items():
            if len(pieces) == 1:
                _, names, values = pieces[0]
            else:  # fast and slow rows of one kind interleave: merge in file order
                names = list(dict.fromkeys(n for _, ns, _ in pieces for n in ns))
                lines = np.concatenate([p[0] for p in pieces])
                values = np.full((lines.size, len(names)), ABSENT)
                r = 0
                for _, ns, vals in pieces:
                    values[r: r + vals.shape[0], [names.index(n) for n in ns]] = vals
                    r += vals.shape[0]
                values = values[np.argsort(lines, kind="stable")]
            self.tables[kind].append(list(names), values)

    def _other_event(self, kind: Any, ev: dict[str, Any]) -> None:
        if kind == "sample":
            self.samples.append(Sample(ev.get("step", 0), ev.get("prompt", ""), ev.get("text", "")))
        elif kind == "log":
            self.logs.append(f"[{ev.get('level', 'info')}] {ev.get('message', '')}")
        elif kind == "checkpoint":
            self.checkpoints.append(ev.get("step", 0))
        elif kind == "run_end":
            self.run_end = ev
        else:
            return
        self.meta_version += 1

    def _apply_run_start(self, ev: dict[str, Any]) -> None:
        """The resume rule on the columns: rows above the resumed step go, and an earlier run_end."""
        s = ev.get("step", 0)
        if self.run_start is not None:
            self.resumes += 1
        for table in self.tables.values():  # (at the first run_start too, as effective_events does)
            steps = table.col("step")
            if steps is not None and table.n:
                table.truncate_where(~(steps > s))
        self.samples = deque((x for x in self.samples if x.step <= s), maxlen=self.samples.maxlen)
        self.checkpoints = [c for c in self.checkpoints if c <= s]
        if self.started is None and isinstance(ev.get("time"), (int, float)):
            self.started = float(ev["time"])
        self.run_start, self.run_end = ev, None
        self.meta_version += 1

    # -- the summary -------------------------------------------------------------------------------

    @property
    def state(self) -> str:
        """What the events say: the run_end's status, else running once started, else new."""
        if self.tail.error:
            return "unreadable"
        if self.run_end is not None:
            return str(self.run_end.get("status", "failed"))
        return "running" if self.run_start is not None else "new"

    def summary(self, proc: Any = None) -> RunSummary:
        """The run as the runs list shows it, liveness applied (``live_state``)."""
        rs, end = self.run_start or {}, self.run_end or {}
        s = RunSummary(self.path, state=live_state(self.path, self.state, proc), arch=rs.get("arch", ""),
                       preset_name=rs.get("preset_name", ""), max_steps=rs.get("max_steps", 0),
                       started=self.started, reason=end.get("reason", ""),
                       artifact_bytes=end.get("artifact_bytes"))
        if self.tail.error:
            s.reason = self.tail.error
        s.elapsed_s = training_time(self.run_start, self.run_end, self.last_time)
        train = self.tables["train"]
        if train.n:
            step, tokens, loss = (train.col(k) for k in ("step", "tokens", "loss"))
            s.step = int(step[-1]) if step is not None and np.isfinite(step[-1]) else 0
            s.tokens = int(tokens[-1]) if tokens is not None and np.isfinite(tokens[-1]) else 0
            if loss is not None:
                s.last_loss = float(loss[-1])
                loss = loss[np.isfinite(loss)]
                idx = np.linspace(0, loss.size - 1, min(TREND_POINTS, loss.size)).round().astype(int)
                s.trend = [float(x) for x in loss[idx]]
        s.diag = self._last_diag()
        s.step, s.tokens = end.get("step", s.step), end.get("tokens", s.tokens)  # (past the last train event)
        ev = self.tables["eval"]
        steps, bpb, vloss = (ev.col(k) for k in ("step", "val_bpb", "val_loss"))
        if ev.n and steps is not None and bpb is not None:
            vloss = vloss if vloss is not None else np.full(ev.n, ABSENT)
            ok = ~np.isnan(bpb) & np.isfinite(steps)
            s.evals = [(int(a), float(b), float(c)) for a, b, c in zip(steps[ok], bpb[ok], vloss[ok])]
            if s.evals:
                i = int(np.argmin(np.where(ok, bpb, np.inf)))
                s.best_val_bpb, s.best_val_loss = float(bpb[i]), float(vloss[i])
        return s

    def _last_diag(self) -> dict[str, float]:
        """DIAG_FIELDS of the latest train or diag row that carries H_res_diag_mean ({} if none)."""
        best: dict[str, float] = {}
        for table in (self.tables["train"], self.tables["diag"]):
            h = table.col(DIAG_FIELDS[1])
            ok = np.flatnonzero(np.isfinite(h)) if h is not None else []
            if len(ok):
                row = {k: float(c[ok[-1]]) for k in DIAG_FIELDS
                       if (c := table.col(k)) is not None and np.isfinite(c[ok[-1]])}
                if row.get("step", -1.0) >= best.get("step", -1.0):
                    best = row
        return best

    # -- the column cache --------------------------------------------------------------------------

    def _fingerprint(self, fh: Any, offset: int) -> str:
        fh.seek(0)
        head = fh.read(min(4096, offset))
        fh.seek(max(0, offset - 4096))
        return hashlib.blake2b(head + fh.read(min(4096, offset)), digest_size=16).hexdigest()

    def _load_cache(self) -> bool:
        """Start from the cache when it describes a prefix of this very file (see ``save_cache``).
        A cache that is missing, stale, foreign or damaged in any way is ignored (never raised)."""
        try:
            with open_regular(self.path / CACHE) as fh:
                size = os.fstat(fh.fileno()).st_size
                if fh.read(len(_MAGIC)) != _MAGIC:
                    return False
                head = int.from_bytes(fh.read(8), "little")
                if head > size:
                    return False
                meta = json.loads(fh.read(head))
                start = -(-fh.tell() // 8) * 8
                offset, columns = int(meta["offset"]), [(str(k), str(n), int(r)) for k, n, r in meta["columns"]]
                total = sum(r for _, _, r in columns)
                if (meta.get("format") != CACHE_FORMAT or size != start + 8 * total
                        or any(k not in TABLE_KINDS or r < 0 for k, _, r in columns)):
                    return False
                with open_regular(self.tail.path) as events:
                    if (os.fstat(events.fileno()).st_size < offset
                            or self._fingerprint(events, offset) != meta["fingerprint"]):
                        return False
                fh.seek(start)
                data = np.fromfile(fh, dtype="<f8", count=total)  # one read, from the same open file
            cols: dict[str, dict[str, np.ndarray]] = {k: {} for k in TABLE_KINDS}
            at = 0
            for kind, name, n in columns:
                cols[kind][name] = data[at: at + n]
                at += n
            tables = {k: Table(cols[k]) for k in TABLE_KINDS}
            if any(len({c.size for c in t.cols.values()}) > 1 for t in tables.values()):
                return False
            samples = [Sample(int(a), str(b), str(c)) for a, b, c in meta["samples"]]
            logs = [str(x) for x in meta["logs"]]
            state = (meta["run_start"], meta["run_end"], [int(c) for c in meta["checkpoints"]], int(meta["resumes"]),
                     meta["started"], meta["last_time"], int(meta["skipped"]))
        except Exception:  # no cache, or one we cannot use: read the file
            return False
        self.tables = tables
        self.samples.extend(samples)
        self.logs.extend(logs)
        (self.run_start, self.run_end, self.checkpoints, self.resumes, self.started, self.last_time,
         self._skipped) = state
        self.tail.offset = self._cache_at = offset
        self.meta_version += 1
        return True

    def save_cache(self, min_new: int = CACHE_MIN_BYTES) -> bool:
        """Write the cache when at least ``min_new`` bytes were parsed since the one on disk (and the
        file is long enough to need one). Never raises: a read-only run directory keeps no cache.

        Layout: a magic line, the length of a JSON header (8 bytes, little-endian), the header (the
        byte offset covered, a fingerprint of that prefix, the run's other state and the columns as
        [kind, name, rows]), zero padding to 8 bytes, then each column's float64 values in turn."""
        offset = self.tail.done
        if offset < CACHE_MIN_BYTES or offset - max(self._cache_at, 0) < min_new or offset == self._cache_at:
            return False
        columns = [(k, name, t.col(name)) for k, t in self.tables.items() for name in t.cols]
        meta = {"format": CACHE_FORMAT, "offset": offset, "run_start": self.run_start, "run_end": self.run_end,
                "samples": [[x.step, x.prompt, x.text] for x in self.samples], "logs": list(self.logs),
                "checkpoints": self.checkpoints, "resumes": self.resumes, "started": self.started,
                "last_time": self.last_time, "skipped": self._skipped,
                "columns": [[k, name, int(col.size)] for k, name, col in columns]}
        tmp: Path | None = None
        try:
            with open_regular(self.tail.path) as fh:
                meta["fingerprint"] = self._fingerprint(fh, offset)
            head = json.dumps(meta).encode()
            fd, tmp = temp_beside(self.path / CACHE)  # one per writer
            with os.fdopen(fd, "wb") as out:
                out.write(_MAGIC + len(head).to_bytes(8, "little") + head)
                out.write(b"\0" * (-out.tell() % 8))
                for _, _, col in columns:
                    out.write(np.ascontiguousarray(col, dtype="<f8").tobytes())
            os.replace(tmp, self.path / CACHE)
        except (OSError, ValueError, TypeError):
            try:
                if tmp is not None:
                    tmp.unlink()
            except OSError:
                pass
            return False
        self._cache_at = offset
        for stale in self.path.glob(f".{CACHE}.*.tmp"):  # left by a writer killed mid-write
            try:
                if time.time() - stale.stat().st_mtime > STALE_TMP_S:
                    stale.unlink()
            except OSError:
                pass
        return True


def training_time(run_start: Any, run_end: Any, last_time: float | None) -> float | None:
    """Training time over every attempt: run_end's elapsed_s once the run ended, else the earlier
    attempts' (run_start's elapsed_before_s) plus this attempt's start to ``last_time`` (a day between
    a stop and its resume is not training time)."""
    total = float_or_none((run_end or {}).get("elapsed_s"))
    stop = (run_end or {}).get("time", last_time)
    start = (run_start or {}).get("time")
    if total is not None or not (isinstance(stop, (int, float)) and isinstance(start, (int, float))):
        return total
    return (float_or_none(run_start.get("elapsed_before_s")) or 0.0) + max(0.0, float(stop) - float(start))


def absent(col: np.ndarray) -> np.ndarray:
    """Where a column holds ABSENT (the row's event had no such field), as bools."""
    return np.ascontiguousarray(col, dtype=np.float64).view(np.uint64) == ABSENT_BITS


def read_run(path: str | Path) -> RunReader:
    """A run read to the end (through the column cache where there is one)."""
    reader = RunReader(path)
    reader.poll()
    return reader


def summarize(path: str | Path) -> RunSummary:
    """A run's summary, read to the end (through the column cache where there is one)."""
    return read_run(path).summary()


def refresh_cache(run_dir: str | Path) -> bool:
    """Bring the run's column cache up to date (the trainer calls this at checkpoints and at its end,
    so a long run opens from its cache). Never raises."""
    try:
        if os.stat(Path(run_dir) / EVENTS).st_size < CACHE_MIN_BYTES:
            return False
        return read_run(run_dir).save_cache(min_new=1)
    except Exception:  # a cache is an optimisation: it must never end a run
        return False

"""The runs list's summary of a run without decoding every event (``runs.summarize`` decodes all).

``runs.summarize`` json-decodes every line: ~10 s for a 10^6-event run on a small machine. The list
needs few events: the run_start / run_end lines and the evals (rare), and the *last* train event.
``FastSummary`` reads the file in chunks and finds those with byte searches (``bytes.find`` for
``"eval"``, ``"run_start"``, ``"run_end"``; ``bytes.rfind`` for the last ``"train"`` between two of
them); only the lines found are decoded, and each is checked for its real ``kind`` (a marker that
appears inside some other event is harmless). It keeps its place and reads only what was appended
on the next ``update()``; a torn last line waits until it is complete.

The result is what ``runs.summarize`` gives for the run's *effective* events
(``events.effective_events``): a ``run_start`` at step s written by a resumed trainer supersedes the
step-carrying events above s written before it (and every earlier ``run_end``), so a best val_bpb or
a last step from the attempt that died does not count. For a run never resumed that is exactly
``runs.summarize``. One approximation: when the last train event's loss cannot be read,
``runs.summarize`` keeps the last readable loss before it; this keeps that of the last train event
seen before the preceding run_start / run_end / eval line (the trainer always writes a loss).
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

from ..events import decode_event, open_regular, to_float
from ..runs import EVENTS, RunSummary, fold_run_end, fold_train, live_state

CHUNK = 8 << 20  # forward reads
BACK = 1 << 20  # backward reads (finding the last train event a resume left standing)
MARKS = (b'"eval"', b'"run_start"', b'"run_end"')
TRAIN = b'"train"'


def _decode(line: bytes) -> dict[str, Any] | None:
    if not line.strip():
        return None
    return decode_event(line)


def _dropped_by(ev: dict[str, Any], bound: int) -> bool:
    """effective_events: an event with an int step above a later run_start's step is superseded."""
    step = ev.get("step")
    return isinstance(step, int) and step > bound


class FastSummary:
    """Incremental summary of one run directory; ``update()`` returns a fresh ``RunSummary``."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.file = self.path / EVENTS
        self.offset = 0  # bytes of complete lines consumed
        self.s = RunSummary(self.path)
        self.evals: list[dict[str, Any]] = []  # eval events still standing (few)
        self.train: tuple[int, dict[str, Any]] | None = None  # (offset, event) of the last standing train
        self.pid: Any = None
        self.started_seen = False
        self.error: str | None = None

    # -- reading ---------------------------------------------------------------------------------

    def update(self) -> RunSummary:
        self.error = None
        try:
            with open_regular(self.file) as fh:
                fh.seek(self.offset)
                want = CHUNK
                while True:
                    buf = fh.read(want)
                    if not buf:
                        break
                    cut = buf.rfind(b"\n")
                    if cut < 0:  # a line longer than the chunk, or a torn last line
                        if len(buf) < want:
                            break
                        fh.seek(self.offset)
                        want *= 2
                        continue
                    self._scan(buf, cut + 1, self.offset)
                    self.offset += cut + 1
                    fh.seek(self.offset)
                    want = CHUNK
        except FileNotFoundError:
            pass
        except OSError as e:  # a FIFO or device named events.jsonl, unreadable: say so, read nothing
            self.error = f"{self.file}: {e.strerror or e}"
        return self._result()

    def _scan(self, buf: bytes, n: int, base: int) -> None:
        """Fold the complete lines in buf[:n]: each marked line in order, the last train before each."""
        starts: set[int] = set()
        for mark in MARKS:
            i = buf.find(mark, 0, n)
            while i >= 0:
                ls = buf.rfind(b"\n", 0, i) + 1
                starts.add(ls)
                nl = buf.find(b"\n", i, n)
                i = buf.find(mark, nl + 1, n) if nl >= 0 else -1
        prev = 0
        for ls in sorted(starts):
            le = buf.find(b"\n", ls)
            self._last_train(buf, prev, ls, base)
            ev = _decode(buf[ls:le])
            if ev is not None:
                self._apply(ev, base + ls)
            prev = le + 1
        self._last_train(buf, prev, n, base)
        end = n - 1  # the newline that ends the last line
        for _ in range(64):  # the last event (summarize keeps it), skipping unreadable lines
            ls = buf.rfind(b"\n", 0, end) + 1
            ev = _decode(buf[ls:end])
            if ev is not None:
                self.s.last_event = ev
                break
            if ls == 0:
                break
            end = ls - 1

    def _last_train(self, buf: bytes, a: int, b: int, base: int) -> None:
        """Apply the last train event among the lines in buf[a:b] (there are no marked lines there)."""
        end = b
        while True:
            i = buf.rfind(TRAIN, a, end)
            if i < 0:
                return
            nl = buf.rfind(b"\n", a, i)
            ls = nl + 1 if nl >= 0 else a
            le = buf.find(b"\n", i, b)
            ev = _decode(buf[ls:le if le >= 0 else b])
            if ev is not None and ev.get("kind") == "train":
                self._apply(ev, base + ls)
                return
            end = ls

    def _train_before(self, end: int, bound: int) -> tuple[int, dict[str, Any]] | None:
        """The last train event before offset ``end`` that no run_start supersedes (reading backward)."""
        with open(self.file, "rb") as fh:
            pos, carry = end, b""
            while pos > 0:
                n = min(BACK, pos)
                pos -= n
                fh.seek(pos)
                buf = fh.read(n) + carry
                lines = buf.split(b"\n")
                carry = lines.pop(0) if pos > 0 else b""
                off = pos + len(buf)
                for line in reversed(lines):
                    off -= len(line) + 1
                    if TRAIN not in line and b'"run_start"' not in line:
                        continue
                    ev = _decode(line)
                    if ev is None:
                        continue
                    if ev.get("kind") == "run_start" and isinstance(ev.get("step", 0), int):
                        bound = min(bound, ev.get("step", 0))
                    elif ev.get("kind") == "train" and not _dropped_by(ev, bound):
                        return off + 1, ev
        return None

    # -- folding (runs.summarize's rules, on the effective events) ---------------------------------

    def _set_train(self, ev: dict[str, Any] | None) -> None:
        s = self.s
        if ev is None:
            s.step, s.tokens, s.last_loss = 0, 0, None
            return
        fold_train(s, ev)

    def _apply(self, ev: dict[str, Any], offset: int) -> None:
        s, kind = self.s, ev.get("kind")
        if kind == "run_start":
            bound = ev.get("step", 0)
            if isinstance(bound, int):  # effective_events: what the resumed attempt writes again
                self.evals = [e for e in self.evals if not _dropped_by(e, bound)]
                s.artifact_bytes = None  # every earlier run_end is superseded
                if self.train is not None and _dropped_by(self.train[1], bound):
                    self.train = self._train_before(offset, bound)
                self._set_train(self.train[1] if self.train else None)
            s.state = "running"
            s.started = s.started or ev.get("time")
            s.max_steps = ev.get("max_steps", s.max_steps)
            s.arch = ev.get("arch", s.arch)
            s.preset_name = ev.get("preset_name", s.preset_name)
            self.pid = ev.get("pid")
            self.started_seen = True
            s.ended, s.reason = None, ""
        elif kind == "train":
            self.train = (offset, ev)
            self._set_train(ev)
        elif kind == "eval":
            self.evals.append(ev)
        elif kind == "run_end":
            fold_run_end(s, ev)

    def _result(self) -> RunSummary:
        s = copy.copy(self.s)
        s.best_val_bpb = s.best_val_loss = None
        for ev in self.evals:
            try:
                bpb, loss = to_float(ev["val_bpb"]), to_float(ev["val_loss"])
            except (KeyError, TypeError, ValueError):
                continue
            if bpb == bpb and (s.best_val_bpb is None or bpb < s.best_val_bpb):
                s.best_val_bpb, s.best_val_loss = bpb, loss
        if self.started_seen:
            s.pid = self.pid  # type: ignore[attr-defined]
        s.state = live_state(self.path, s.state)  # as runs.summarize: one liveness rule
        if self.error:
            s.state, s.reason = "unreadable", self.error
        return s


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

"""The event contract between the trainer and every reader. Stdlib only.

``events.jsonl`` is append-only, one JSON object per line, flushed per write. Every event has
``v`` (schema version), ``kind`` and ``time`` (unix seconds). Units live in field names.
Readers tolerate a torn last line: an incomplete line is held back until its newline arrives.
"""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path
from typing import Any, Iterator

SCHEMA_VERSION = 1

# Required fields per kind (beyond v, kind, time). Extra fields are allowed: model diagnostics
# ride along in train/diag events under their own names.
REQUIRED: dict[str, dict[str, type | tuple[type, ...]]] = {
    "run_start": {"run_id": str, "versions": dict, "device": str, "params": int, "world_size": int,
                  "max_steps": int, "tokens_per_step": int, "corpus": dict, "pid": int, "step": int},
    "train": {"step": int, "tokens": int, "loss": float, "lr": float, "grad_norm": float,
              "tokens_per_s": float, "dt_ms": float},
    "eval": {"step": int, "tokens": int, "val_loss": float, "val_bpb": float},
    "diag": {"step": int},
    "sample": {"step": int, "prompt": str, "text": str},
    "checkpoint": {"step": int, "path": str},
    "log": {"level": str, "message": str},
    "run_end": {"status": str, "step": int, "reason": str},
}
END_STATUSES = ("completed", "stopped", "pruned", "failed")
# Clean ends that leave a resumable checkpoint (pruned: a study stopped the trial early).
RESUMABLE_STATUSES = ("stopped", "pruned")
_NUM = (int, float)


def _clean(value: Any) -> Any:
    """JSON has no NaN/inf: write them as strings a reader can turn back into floats."""
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def to_float(value: Any) -> float:
    if isinstance(value, str):
        return float(value)  # "nan", "inf", "-inf"
    return float(value)


def validate_event(event: dict[str, Any]) -> list[str]:
    """Problems with one event against the contract (empty list = valid)."""
    out = []
    for key, typ in (("v", int), ("kind", str), ("time", _NUM)):
        if not isinstance(event.get(key), typ):
            out.append(f"missing or bad {key!r}")
    kind = event.get("kind")
    if kind not in REQUIRED:
        return out + [f"unknown kind {kind!r}"]
    for key, typ in REQUIRED[kind].items():
        value = event.get(key)
        want = _NUM if typ is float else typ
        if typ is float and isinstance(value, str) and value in ("nan", "inf", "-inf"):
            continue
        if value is None or not isinstance(value, want) or (typ is int and isinstance(value, bool)):
            out.append(f"{kind}: field {key!r} should be {typ.__name__}, got {value!r}")
    if kind == "run_end" and event.get("status") not in END_STATUSES:
        out.append(f"run_end: status must be one of {END_STATUSES}")
    return out


class EventWriter:
    """Append events to ``events.jsonl``; each write is one line, flushed (and fsynced when asked)."""

    def __init__(self, path: str | Path, *, fsync_every: float = 2.0):
        self.path = Path(path)
        _drop_torn_tail(self.path)
        self._fh = open(self.path, "a", encoding="utf-8")
        self._fsync_every = fsync_every
        self._last_sync = time.monotonic()

    def write(self, kind: str, **fields: Any) -> dict[str, Any]:
        event = {"v": SCHEMA_VERSION, "kind": kind, "time": round(time.time(), 3), **fields}
        self._fh.write(json.dumps(_clean(event), separators=(",", ":")) + "\n")
        self._fh.flush()
        if kind in ("run_end", "checkpoint") or time.monotonic() - self._last_sync > self._fsync_every:
            os.fsync(self._fh.fileno())
            self._last_sync = time.monotonic()
        return event

    def close(self) -> None:
        if not self._fh.closed:
            self._fh.flush()
            os.fsync(self._fh.fileno())
            self._fh.close()

    def __enter__(self) -> "EventWriter":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _drop_torn_tail(path: Path) -> None:
    """A writer killed mid-line leaves a fragment; cut it so the next event starts on its own line."""
    try:
        with open(path, "rb+") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            if size == 0:
                return
            fh.seek(size - 1)
            if fh.read(1) == b"\n":
                return
            back = min(size, 1 << 20)
            fh.seek(size - back)
            tail = fh.read(back)
            cut = tail.rfind(b"\n")
            fh.truncate(size - back + cut + 1 if cut >= 0 else (size - back if back < size else 0))
    except FileNotFoundError:
        pass


class EventTail:
    """Incremental reader: ``poll()`` returns only the events appended since the last call.

    Keeps a byte cursor, never re-reads what it has read, and holds back a torn last line until it is
    completed. Lines that are complete but not valid JSON are skipped and counted in ``skipped``.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.offset = 0
        self._partial = b""
        self.skipped = 0

    def poll(self, max_bytes: int | None = None) -> list[dict[str, Any]]:
        try:
            with open(self.path, "rb") as fh:
                fh.seek(self.offset)
                data = fh.read() if max_bytes is None else fh.read(max_bytes)
        except FileNotFoundError:
            return []
        if not data:
            return []
        self.offset += len(data)
        data = self._partial + data
        lines = data.split(b"\n")
        self._partial = lines.pop()  # b"" when data ended with a newline
        out = []
        for line in lines:
            if not line.strip():
                continue
            try:
                event = json.loads(line)
            except (json.JSONDecodeError, UnicodeDecodeError):
                self.skipped += 1
                continue
            if isinstance(event, dict):
                out.append(event)
            else:
                self.skipped += 1
        return out


def read_events(path: str | Path) -> list[dict[str, Any]]:
    """All complete events of a file (a torn last line is ignored)."""
    return EventTail(path).poll()


def iter_kind(events: list[dict[str, Any]], kind: str) -> Iterator[dict[str, Any]]:
    return (e for e in events if e.get("kind") == kind)


def effective_events(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The run's history as a reader should see it, across crashes and resumes.

    A resumed trainer writes a new ``run_start`` whose ``step`` is the checkpoint it resumed from;
    the steps after that checkpoint were written by the attempt that died and are written again. So a
    ``run_start`` at step s drops every earlier step-carrying event with step > s (and an earlier
    ``run_end``). Events without a step (log) are kept.
    """
    out: list[dict[str, Any]] = []
    for ev in events:
        if ev.get("kind") == "run_start" and out:
            s = ev.get("step", 0)
            out = [e for e in out if e.get("kind") != "run_end"
                   and not (isinstance(e.get("step"), int) and e["step"] > s and e.get("kind") != "run_start")]
        out.append(ev)
    return out

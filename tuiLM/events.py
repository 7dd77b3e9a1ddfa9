"""The event contract between the trainer and every reader. Stdlib only.

``events.jsonl`` is append-only, one JSON object per line, flushed per write. Every event has
``v`` (schema version), ``kind`` and ``time`` (unix seconds). Units live in field names.
Readers tolerate a torn last line: an incomplete line is held back until its newline arrives.
"""

from __future__ import annotations

import errno
import json
import math
import mmap
import os
import stat
import time
from pathlib import Path
from typing import Any

import orjson

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
_NUM = (int, float)
_NONFINITE = ("nan", "inf", "-inf")

# The one coercion step every reader applies to a decoded line (``sanitize``): the fields readers
# use, with the type they may rely on afterwards. A line whose field has another type is skipped and
# counted, never half-used: a ``"step": "7"`` must not reach a format string or a comparison.
INT_FIELDS = frozenset({"step", "tokens", "max_steps", "pid", "params", "world_size", "tokens_per_step",
                        "artifact_bytes", "grad_accum", "seq_len", "vocab_size", "device_batch_size",
                        "trial", "seed_index", "v"})
FLOAT_FIELDS = frozenset({"time", "loss", "lr", "grad_norm", "tokens_per_s", "dt_ms", "val_loss", "val_bpb",
                          "best_val_bpb", "best_val_loss", "elapsed_s", "mem_gib", "temperature"})
STR_FIELDS = frozenset({"kind", "status", "reason", "prompt", "text", "level", "message", "path", "arch",
                        "preset_name", "device", "device_name", "dtype", "run_id", "source"})
DICT_FIELDS = frozenset({"versions", "corpus", "estimate"})
MAX_DEPTH = 16  # nesting readers accept inside one event (the trainer writes at most 2)
MAX_LINE = 16 << 20  # a longer line is not an event this program wrote


class EventsFileError(OSError):
    """An events file that cannot be read as one (not a regular file: a FIFO, a device)."""


def open_regular(path: str | Path) -> Any:
    """Open a file for binary reading, refusing anything but a regular file (a FIFO would block
    forever, /dev/zero would never end). Raises FileNotFoundError or EventsFileError."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise EventsFileError(errno.EINVAL, "not a regular file: refusing to read it", str(path))
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def _depth_ok(value: Any, limit: int = MAX_DEPTH) -> bool:
    stack = [(value, 1)]
    while stack:
        v, d = stack.pop()
        if d > limit:
            return False
        if isinstance(v, dict):
            stack.extend((x, d + 1) for x in v.values())
        elif isinstance(v, list):
            stack.extend((x, d + 1) for x in v)
    return True


def sanitize(event: Any) -> dict[str, Any] | None:
    """The event if readers can use it as is, else None (the caller skips and counts it).

    Checked: a dict with a string ``kind``; every field in INT_FIELDS an int (an integral float is
    turned into one), FLOAT_FIELDS a number or one of "nan"/"inf"/"-inf", STR_FIELDS a string,
    DICT_FIELDS an object; nesting no deeper than MAX_DEPTH. Unknown fields ride along unchecked
    (model diagnostics), but must be numbers, strings, booleans, null or shallow containers.
    """
    if not isinstance(event, dict) or not isinstance(event.get("kind"), str):
        return None
    fixed: dict[str, int] = {}
    for key, value in event.items():
        if key in INT_FIELDS:
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                return None
            if isinstance(value, float):
                if not value.is_integer():  # (False for nan and inf too)
                    return None
                fixed[key] = int(value)
        elif key in FLOAT_FIELDS:
            if isinstance(value, bool) or not (isinstance(value, (int, float)) or value in _NONFINITE):
                return None
        elif key in STR_FIELDS and not isinstance(value, str):
            return None
        elif key in DICT_FIELDS and not isinstance(value, dict):
            return None
        elif isinstance(value, (dict, list)) and not _depth_ok(value, MAX_DEPTH - 1):
            return None
    return {**event, **fixed} if fixed else event


def decode_event(line: bytes | str, loads: Any = orjson.loads) -> dict[str, Any] | None:
    """One line to a sanitized event, or None for anything else (never raises). orjson, as every
    reader of a run: the stdlib's json takes a bare NaN, which the dashboard's reader would skip."""
    if len(line) > MAX_LINE:
        return None
    try:
        return sanitize(loads(line))
    except (ValueError, UnicodeDecodeError, RecursionError, TypeError):
        return None


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
    """A number field as a float; "nan"/"inf"/"-inf" strings too. Raises TypeError/ValueError otherwise."""
    if isinstance(value, str):
        if value not in _NONFINITE:
            raise ValueError(f"not a number: {value[:20]!r}")
        return float(value)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"not a number: {type(value).__name__}")
    return float(value)


def float_or_none(value: Any) -> float | None:
    """A number field as a float (the "nan"/"inf" strings too); None when absent, not a number or NaN."""
    try:
        x = to_float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(x) else x


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
        if typ is float and value in _NONFINITE:
            continue
        want = _NUM if typ is float else typ
        if not isinstance(value, want) or (typ is int and isinstance(value, bool)):
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
        try:
            self._fh.write(json.dumps(_clean(event), separators=(",", ":")) + "\n")
            self._fh.flush()
            if kind in ("run_end", "checkpoint") or time.monotonic() - self._last_sync > self._fsync_every:
                os.fsync(self._fh.fileno())
                self._last_sync = time.monotonic()
        except OSError as e:  # a full disk: the message must name the file (a file object's error does not)
            if e.filename is None:
                e.filename = str(self.path)
            raise
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
            if os.fstat(fh.fileno()).st_size == 0:
                return
            with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:  # a fragment of any length
                keep = mm.rfind(b"\n") + 1 if mm[-1:] != b"\n" else None
            if keep is not None:
                fh.truncate(keep)
    except FileNotFoundError:
        pass

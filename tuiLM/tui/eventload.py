"""Reading ``events.jsonl`` fast and incrementally, into columns.

``ChunkTail`` is an ``events.EventTail`` that hands out raw bytes (complete lines only: a torn last
line waits for its newline). ``parse_chunk`` turns those bytes into column blocks.

Why a columnar fast path: a run with 10^6 train events is ~175 MB of JSON. Decoding it line by line
builds 10^6 dicts (2-9 s on a small VM, most of it allocating objects). But one writer emits every
train event with the same keys in the same order, so lines share a *signature*. For lines that match
a learned signature we locate the values with numpy (colon and delimiter positions), check the key
bytes of every line vectorised, and JSON-decode all the numbers of a chunk as ONE flat array. Lines
that do not match (other kinds, extra fields, a foreign writer) take the ordinary per-line path, so
the result is the same either way; only the speed differs. ``bench/bench_tui.py`` measures both.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..events import EventTail, decode_event, open_regular

try:  # optional: ~5x faster decoding; the stdlib json gives identical results
    import orjson as _orjson

    _loads = _orjson.loads
except ImportError:  # pragma: no cover - depends on the environment
    _orjson = None
    _loads = json.loads

CHUNK = 4 << 20  # bytes per read: big enough to amortise, small enough to keep memory flat
_COLON, _COMMA, _RBRACE, _NL = 58, 44, 125, 10
_NUMERIC_STR = ("nan", "inf", "-inf", "NaN", "Infinity", "-Infinity")
_MAX_SIGNATURES = 8
_LEARN_MIN = 16  # lines of one shape before a signature is worth learning


class ChunkTail(EventTail):
    """The EventTail cursor, returning raw complete lines instead of decoded events."""

    def poll_bytes(self, max_bytes: int = CHUNK) -> bytes:
        data = self.read_bytes(max_bytes)  # a FIFO or device is refused there (``error``)
        if not data:
            return b""
        data = self._partial + data
        cut = data.rfind(b"\n")
        if cut < 0:
            self._partial = data
            return b""
        self._partial = data[cut + 1:]
        return data[: cut + 1]

    def size(self) -> int:
        try:
            return os.stat(self.path).st_size
        except FileNotFoundError:
            return 0

    def at_end(self) -> bool:
        return self.offset >= self.size()


@dataclass
class Signature:
    """The byte shape of one kind of line: keys (with quotes) in order, constant values, numbers."""

    kind: str
    keys: list[bytes]  # raw key segments between the delimiter and the colon, e.g. b'"loss"'
    names: list[str]
    consts: dict[int, bytes]  # column -> exact value bytes (kind, version)
    numeric: list[int]  # columns decoded as numbers
    # vectorised check: 8-byte words at colon j + offset that, masked, must equal ``check_val``
    check_col: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    check_off: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    check_mask: np.ndarray = field(default_factory=lambda: np.empty(0, np.uint64))
    check_val: np.ndarray = field(default_factory=lambda: np.empty(0, np.uint64))

    @property
    def K(self) -> int:
        return len(self.keys)

    @property
    def numeric_names(self) -> list[str]:
        return [self.names[j] for j in self.numeric]

    def build(self) -> "Signature":
        """Precompute the 8-byte words that every matching line has around its colons."""
        cols, offs, masks, vals = [], [], [], []
        for j, key in enumerate(self.keys):  # words ending at the colon, walking left over the key
            for t in range(0, len(key), 8):
                seg = key[max(0, len(key) - t - 8): len(key) - t]
                w = len(seg)
                cols.append(j)
                offs.append(-t - 8)
                masks.append(((1 << (8 * w)) - 1) << (8 * (8 - w)))
                vals.append(int.from_bytes(b"\0" * (8 - w) + seg, "little"))
        for j, const in self.consts.items():  # words starting after the colon
            for t in range(0, len(const), 8):
                seg = const[t: t + 8]
                w = len(seg)
                cols.append(j)
                offs.append(1 + t)
                masks.append((1 << (8 * w)) - 1)
                vals.append(int.from_bytes(seg + b"\0" * (8 - w), "little"))
        self.check_col = np.array(cols, np.int64)
        self.check_off = np.array(offs, np.int64)
        self.check_mask = np.array(masks, np.uint64)
        self.check_val = np.array(vals, np.uint64)
        return self


def learn_signature(line: bytes, event: dict[str, Any]) -> Signature | None:
    """A signature from one raw line and its decoded event, or None if the line is not flat/simple."""
    kind = event.get("kind")
    if not isinstance(kind, str) or not event:
        return None
    a = np.frombuffer(line, np.uint8)
    colons = np.flatnonzero(a == _COLON)
    delims = np.flatnonzero((a == _COMMA) | (a == _RBRACE))
    K = len(event)
    if colons.size != K or delims.size != K or a[0] != ord("{") or delims[-1] != len(line) - 1:
        return None
    prev = np.concatenate(([0], delims[:-1]))
    if not (np.all(colons > prev) and np.all(delims > colons)):
        return None
    keys, names, consts, numeric = [], [], {}, []
    for j, (name, value) in enumerate(event.items()):
        seg = line[prev[j] + 1: colons[j]]
        try:
            if json.loads(seg) != name:
                return None
        except ValueError:
            return None
        keys.append(seg)
        names.append(name)
        if isinstance(value, (dict, list)):
            return None
        raw = line[colons[j] + 1: delims[j]]
        if isinstance(value, str) and value not in _NUMERIC_STR:
            if any(c in value for c in '\\":,{}'):
                return None
            consts[j] = raw
        elif name == "v":
            consts[j] = raw
        else:
            numeric.append(j)
    if not numeric:
        return None
    return Signature(kind, keys, names, consts, numeric).build()


@dataclass
class Block:
    """Rows of one kind decoded on the fast path: ``values[i, j]`` is column ``names[j]`` of the row at
    chunk line ``lines[i]``."""

    kind: str
    names: list[str]
    lines: np.ndarray
    values: np.ndarray


@dataclass
class Chunk:
    blocks: list[Block]
    events: list[tuple[int, dict[str, Any]]]  # (line index, event) from the per-line path
    n_lines: int
    skipped: int = 0


def _decode_numbers(text: bytes, shape: tuple[int, int]) -> np.ndarray | None:
    try:
        flat = _loads(b"[" + text + b"]")
        arr = np.fromiter(flat, dtype=np.float64, count=len(flat))
    except (ValueError, TypeError):
        return None
    if arr.size != shape[0] * shape[1]:
        return None
    return arr.reshape(shape)


def _words(a: np.ndarray) -> np.ndarray:
    """Every unaligned little-endian 8-byte word of ``a``: ``w[p + 8]`` holds bytes a[p .. p+7]
    (8 bytes of zero padding each side, so words that reach past the ends are defined)."""
    pad = np.zeros(a.size + 16, np.uint8)
    pad[8: 8 + a.size] = a
    return np.ndarray(shape=(a.size + 9,), dtype="<u8", buffer=pad, strides=(1,))


def _match(a: np.ndarray, words: np.ndarray, sig: Signature, cand: np.ndarray, starts: np.ndarray,
           ends: np.ndarray, colons: np.ndarray, c0: np.ndarray, delims: np.ndarray, d0: np.ndarray
           ) -> tuple[np.ndarray, np.ndarray | None]:
    """Lines (indices into ``cand``) that match ``sig`` exactly, and their numbers."""
    K = sig.K
    ar = np.arange(K)
    C = colons[c0[cand][:, None] + ar]  # (m, K) colon positions
    D = delims[d0[cand][:, None] + ar]  # (m, K) delimiter positions
    prev = np.concatenate((starts[cand][:, None], D[:, :-1]), axis=1)
    keylen = np.array([len(k) for k in sig.keys])
    ok = np.all(C - prev - 1 == keylen, axis=1)  # key segments have the right lengths...
    ok &= D[:, -1] == ends[cand] - 1  # ...the line ends with the object...
    ok &= np.all(D > C, axis=1)
    for j, const in sig.consts.items():
        ok &= D[:, j] - C[:, j] - 1 == len(const)
    ok &= a[starts[cand]] == ord("{")
    if not ok.any():
        return np.empty(0, np.int64), None
    idx = np.flatnonzero(ok)
    C, D = C[idx], D[idx]
    got = words[C[:, sig.check_col] + (sig.check_off + 8)] & sig.check_mask  # ...with the right bytes
    good = np.all(got == sig.check_val, axis=1)
    good &= np.all(a[D[:, :-1]] == _COMMA, axis=1) & (a[D[:, -1]] == _RBRACE)
    idx, C, D = idx[good], C[good], D[good]
    if idx.size == 0:
        return idx, None
    # the value bytes of the numeric columns, each with its delimiter, in file order: run-length
    # decode alternating (skip, keep) runs into a mask over the chunk
    num = sig.numeric
    bounds = np.empty(2 * idx.size * len(num) + 1, np.int64)
    bounds[0] = 0
    bounds[1::2] = (C[:, num] + 1).ravel()
    bounds[2::2] = D[:, num].ravel() + 1
    runs = np.diff(np.append(bounds, a.size))
    pattern = np.zeros(runs.size, bool)
    pattern[1::2] = True
    keep = np.repeat(pattern, runs)
    text = a[keep].tobytes().replace(b"}", b",")
    values = _decode_numbers(text[:-1], (idx.size, len(num)))
    if values is None:
        return np.empty(0, np.int64), None
    return idx, values


def parse_chunk(buf: bytes, signatures: list[Signature], learn: bool = True) -> Chunk:
    """Decode complete lines. ``signatures`` is extended in place with shapes learned from this chunk."""
    if not buf:
        return Chunk([], [], 0)
    a = np.frombuffer(buf, np.uint8)
    ends = np.flatnonzero(a == _NL)
    n = ends.size
    starts = np.concatenate(([0], ends[:-1] + 1))

    if learn and not signatures:  # later shapes are learned from the lines left unmatched (below)
        _learn(buf, starts[:256], ends[:256], signatures)

    matched = np.zeros(n, bool)
    blocks: list[Block] = []
    if signatures:
        colons = np.flatnonzero(a == _COLON)
        delims = np.flatnonzero((a == _COMMA) | (a == _RBRACE))
        c0 = np.searchsorted(colons, starts)
        nc = np.searchsorted(colons, ends) - c0
        d0 = np.searchsorted(delims, starts)
        nd = np.searchsorted(delims, ends) - d0
        words = _words(a)
        for sig in signatures:
            cand = np.flatnonzero((nc == sig.K) & (nd == sig.K) & ~matched)
            if cand.size == 0:
                continue
            idx, values = _match(a, words, sig, cand, starts, ends, colons, c0, delims, d0)
            if values is None:
                continue
            lines = cand[idx]
            matched[lines] = True
            blocks.append(Block(sig.kind, sig.numeric_names, lines, values))

    events: list[tuple[int, dict[str, Any]]] = []
    skipped = 0
    rest = np.flatnonzero(~matched)
    for i in rest.tolist():
        line = buf[starts[i]: ends[i]]
        if not line.strip():
            continue
        ev = decode_event(line, _loads)
        if ev is not None:
            events.append((i, ev))
        else:
            skipped += 1
    if learn and len(signatures) < _MAX_SIGNATURES and len(events) >= _LEARN_MIN:
        _learn_from_events(buf, starts, ends, events, signatures)
    return Chunk(blocks, events, n, skipped)


def _learn(buf: bytes, starts: np.ndarray, ends: np.ndarray, signatures: list[Signature]) -> None:
    """Learn signatures from a sample of lines (the head of each chunk)."""
    sample = []
    for s, e in zip(starts.tolist(), ends.tolist()):
        line = buf[s:e]
        ev = decode_event(line, _loads)
        if ev is not None:
            sample.append((line, ev))
    _learn_common(sample, signatures)


def _learn_from_events(buf: bytes, starts: np.ndarray, ends: np.ndarray,
                       events: list[tuple[int, dict[str, Any]]], signatures: list[Signature]) -> None:
    _learn_common([(buf[starts[i]: ends[i]], ev) for i, ev in events], signatures)


def _learn_common(sample: list[tuple[bytes, dict[str, Any]]], signatures: list[Signature]) -> None:
    shapes = Counter((ev.get("kind"), tuple(ev)) for _, ev in sample)
    known = {(s.kind, tuple(s.names)) for s in signatures}
    for shape, count in shapes.most_common():
        if count < _LEARN_MIN or len(signatures) >= _MAX_SIGNATURES:
            break
        if shape in known:
            continue
        for line, ev in sample:
            if (ev.get("kind"), tuple(ev)) == shape:
                sig = learn_signature(line.rstrip(b"\r"), ev)
                if sig is not None:
                    signatures.append(sig)
                    known.add(shape)
                break


def decode_lines(buf: bytes) -> list[dict[str, Any]]:
    """All events of ``buf`` in file order through the fast path (for tests and tools)."""
    chunk = parse_chunk(buf, [])
    rows: list[tuple[int, dict[str, Any]]] = list(chunk.events)
    for b in chunk.blocks:
        for line, vals in zip(b.lines.tolist(), b.values.tolist()):
            rows.append((line, {"kind": b.kind, **dict(zip(b.names, vals))}))
    rows.sort(key=lambda r: r[0])
    return [ev for _, ev in rows]


# -- parallel first read ---------------------------------------------------------------------------
#
# Opening a long run reads the whole file once. Doing it in worker processes keeps it off the UI
# process entirely: no GIL shared with the event loop (a loader thread next to Textual ran at half
# speed), and a machine with free cores parses the ranges side by side.

PARALLEL_MIN_BYTES = 16 << 20


def _parse_range(path: str, start: int, end: int, progress: str | None = None) -> list[Chunk]:
    """Worker: parse bytes [start, end) (both on line boundaries) into chunks, in order. After each
    chunk the bytes done so far are written to ``progress`` (if given), for the UI's progress figure."""
    out: list[Chunk] = []
    sigs: list[Signature] = []
    with open(path, "rb") as fh:
        fh.seek(start)
        pos = start
        while pos < end:
            data = fh.read(min(CHUNK, end - pos))
            if not data:
                break
            cut = data.rfind(b"\n") + 1 if pos + len(data) < end else len(data)
            if cut <= 0:  # a line longer than CHUNK: read on to its end
                more = fh.readline()
                data, cut = data + more, len(data) + len(more)
            fh.seek(pos + cut)
            pos += cut
            out.append(parse_chunk(data[:cut], sigs))
            if progress:
                with open(progress + ".tmp", "w") as pf:
                    pf.write(str(pos - start))
                os.replace(progress + ".tmp", progress)
    return out


def _split(path: str, end: int, parts: int) -> list[tuple[int, int]]:
    """``parts`` byte ranges of [0, end) cut just after a newline."""
    bounds = [0]
    with open(path, "rb") as fh:
        for i in range(1, parts):
            fh.seek(max(bounds[-1], end * i // parts))
            fh.readline()
            cut = min(fh.tell(), end)
            if cut > bounds[-1]:
                bounds.append(cut)
    bounds.append(end)
    return [(a, b) for a, b in zip(bounds[:-1], bounds[1:]) if b > a]


def _kill_and_clean(procs: list, tmp: str) -> None:
    import shutil

    for proc in procs:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    shutil.rmtree(tmp, ignore_errors=True)


class ParallelParse:
    """Parse bytes [0, end) of ``path`` (``end`` just after a newline) in worker processes, without
    blocking: ``wait(timeout)`` says whether they are done, ``progress()`` how far they got, and
    ``result()`` returns the chunks in file order.

    Plain subprocesses (``python -m tuiLM.tui.eventload``), not multiprocessing: its spawn mode
    re-imports the caller's ``__main__`` (a script without a main guard would run again), and fork
    is unsafe in a process with UI threads. Results come back pickled through a temp folder, which
    ``result()`` / ``cancel()`` remove (and, failing those, a finalizer at exit).
    """

    def __init__(self, path: str | Path, end: int, workers: int | None = None) -> None:
        import subprocess
        import sys
        import tempfile
        import weakref

        self.end = end
        workers = workers or max(1, min(8, os.cpu_count() or 1, end // PARALLEL_MIN_BYTES or 1))
        ranges = _split(str(path), end, workers)
        env = dict(os.environ)
        package_root = str(Path(__file__).resolve().parents[2])  # importable even when not installed
        env["PYTHONPATH"] = package_root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        self._tmp = tempfile.mkdtemp(prefix="tuilm-load-")
        self._procs: list[subprocess.Popen] = []
        self._outs: list[str] = []
        self._finalizer = weakref.finalize(self, _kill_and_clean, self._procs, self._tmp)
        try:
            for i, (a, b) in enumerate(ranges):
                out = os.path.join(self._tmp, f"{i}.pkl")
                cmd = [sys.executable, "-m", "tuiLM.tui.eventload", str(path), str(a), str(b), out]
                with open(out + ".err", "wb") as err:  # a file, not a pipe: nobody reads it until the end
                    self._procs.append(subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                                        stderr=err, env=env))
                self._outs.append(out)
        except BaseException:
            self._finalizer()
            raise

    def wait(self, timeout: float | None) -> bool:
        """True once every worker has exited (waits at most ``timeout`` seconds; None: until then)."""
        import subprocess
        import time

        deadline = None if timeout is None else time.monotonic() + timeout
        for proc in self._procs:
            try:
                proc.wait(None if deadline is None else max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                return False
        return True

    def progress(self) -> float:
        done = 0
        for out in self._outs:
            try:
                with open(out + ".progress") as fh:
                    done += int(fh.read() or 0)
            except (OSError, ValueError):
                pass
        return min(1.0, done / self.end) if self.end else 1.0

    def result(self) -> list[Chunk]:
        import pickle

        try:
            chunks: list[Chunk] = []
            for proc, out in zip(self._procs, self._outs):
                if proc.wait() != 0:
                    with open(out + ".err", "rb") as fh:
                        err = fh.read()[-2000:].decode(errors="replace").strip()
                    raise RuntimeError(f"loader worker failed: {err[-300:]}")
                with open(out, "rb") as fh:
                    chunks.extend(pickle.load(fh))
            return chunks
        finally:
            self._finalizer()

    def cancel(self) -> None:
        self._finalizer()


def parallel_parse(path: str | Path, end: int, workers: int | None = None) -> list[Chunk]:
    """Parse bytes [0, end) of ``path`` in worker processes and wait for them (see ParallelParse)."""
    job = ParallelParse(path, end, workers)
    job.wait(None)
    return job.result()


# -- overview of a long file -----------------------------------------------------------------------
#
# A long run opens in two steps: first an overview read from windows spread over the file plus its
# whole tail (a few MB: the dashboard draws the run's full x range, the latest values and state at
# once), then the full read, which replaces the overview when it is done.

OVERVIEW_MIN_BYTES = 32 << 20  # below this the full read takes well under a second here
OVERVIEW_WINDOWS = 128  # 128 x 24 KiB + 2 MiB: ~2 % of a 10^6-event file, ~20,000 events
OVERVIEW_WINDOW = 24 << 10
OVERVIEW_TAIL = 2 << 20


def overview_ranges(end: int, windows: int | None = None, window: int | None = None,
                    tail: int | None = None) -> list[tuple[int, int]]:
    """Byte ranges of [0, end) to read for an overview: ``windows`` evenly spaced windows over the
    head (the first starts at 0, so it holds run_start) and the last ``tail`` bytes, in order and
    without overlap. Unset sizes are this module's OVERVIEW_* values at the time of the call."""
    windows = OVERVIEW_WINDOWS if windows is None else windows
    window = OVERVIEW_WINDOW if window is None else window
    tail = OVERVIEW_TAIL if tail is None else tail
    tail_start = max(0, end - tail)
    out: list[tuple[int, int]] = []
    if tail_start > 0:
        step = tail_start / windows
        for i in range(windows):
            a = int(i * step)
            b = min(tail_start, a + window)
            if out and a <= out[-1][1]:
                out[-1] = (out[-1][0], b)
            elif b > a:
                out.append((a, b))
    out.append((tail_start, end))
    return out


def read_lines(fh: Any, start: int, end: int) -> bytes:
    """The complete lines that lie in [start, end) of an open file: a line cut at ``start`` (unless
    ``start`` is 0 or just after a newline) or at ``end`` is left out."""
    if start > 0:
        fh.seek(start - 1)
        data = fh.read(end - start + 1)
        first = data.find(b"\n")
        data = data[first + 1:] if first >= 0 else b""
    else:
        fh.seek(0)
        data = fh.read(end)
    cut = data.rfind(b"\n")
    return data[: cut + 1] if cut >= 0 else b""


def complete_end(path: str | Path) -> int:
    """Offset just after the last newline of the file (0 if none)."""
    with open_regular(path) as fh:
        fh.seek(0, os.SEEK_END)
        size = fh.tell()
        back = min(size, 1 << 20)
        while back:
            fh.seek(size - back)
            tail = fh.read(back)
            i = tail.rfind(b"\n")
            if i >= 0:
                return size - back + i + 1
            if back == size:
                return 0
            back = min(size, back * 4)
        return 0


if __name__ == "__main__":  # worker of parallel_parse: PATH START END OUT
    import pickle
    import sys

    from tuiLM.tui import eventload as _module  # pickle the classes under their package name

    _path, _start, _end, _out = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    _chunks = _module._parse_range(_path, _start, _end, progress=_out + ".progress")
    with open(_out + ".tmp", "wb") as _fh:
        pickle.dump(_chunks, _fh, protocol=pickle.HIGHEST_PROTOCOL)
    os.replace(_out + ".tmp", _out)

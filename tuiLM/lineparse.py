"""Decoding complete lines of ``events.jsonl`` into column blocks (``parse_chunk``), for ``reader``.

Why a columnar fast path: a run with 10^6 train events is ~175 MB of JSON, and decoding it line by
line (``events.decode_event``: a dict per line, the contract's type checks per field) takes seconds.
But one writer emits every train event with the same keys in the same order: the lines share a
*skeleton*, the line with its numbers taken out. For each shape seen often enough we learn that
skeleton; a line whose field delimiters fall so that the bytes left around its numbers equal it has
exactly that shape, checked for all lines of a chunk at once with numpy, and all the numbers of those
lines are JSON-decoded as ONE flat array. Lines that do not match (other kinds, extra fields, a
foreign writer, a value the checks refuse) take the per-line path, so the result is the same either
way; only the speed differs. ``bench/bench_tui.py`` measures both.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from typing import Any

import numpy as np

from orjson import loads as _loads

from .events import _NONFINITE, INT_FIELDS, decode_event

CHUNK = 4 << 20  # bytes per read: big enough to amortise, small enough to keep memory flat
BLOCK_KINDS = ("train", "eval", "diag")  # other kinds (samples, logs: their text is the point) never match
_MAX_SIGNATURES, _LEARN_MIN = 8, 16  # a shape is learned once this many lines of it are seen
_QUOTED, _BOOL = re.compile(rb'"([^"]*)"'), re.compile(rb'(?:^|,)(?:true|false)(?=,|$)')


@dataclass(frozen=True)
class Signature:
    kind: str
    n_fields: int
    numeric: list[int]  # which fields hold the numbers (in line order)
    names: list[str]  # their names
    skeleton: bytes  # the line without the numbers' bytes (each with the delimiter after it)
    gaps: np.ndarray  # per field: colon - previous delimiter, and delimiter - colon (-1 for a number)


@dataclass
class Block:
    """Rows decoded on the fast path: ``values[i, j]`` is column ``names[j]`` of chunk line ``lines[i]``."""

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


def _marks(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return np.flatnonzero(a == 58), np.flatnonzero((a == 44) | (a == 125))  # ':' and ',' / '}'


def _bounds(starts: np.ndarray, ends: np.ndarray, C: np.ndarray, D: np.ndarray) -> np.ndarray:
    """Per line: its start, where each number starts and ends (with the delimiter after it), its end."""
    return np.column_stack([starts, np.stack([C + 1, D + 1], axis=2).reshape(len(starts), -1), ends])


def _gather(a: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """``a[lo[i]:hi[i]]`` for every i, concatenated (work in proportion to the bytes taken)."""
    n = (hi - lo).ravel()
    return a[np.arange(n.sum()) + np.repeat(lo.ravel() - np.cumsum(n) + n, n)]


def learn_signature(line: bytes, event: dict[str, Any]) -> Signature | None:
    """The signature of one raw line and its decoded event, or None if the line is not flat."""
    a = np.frombuffer(line, np.uint8)
    C, D = _marks(a)
    K = len(event)
    if (event.get("kind") not in BLOCK_KINDS or C.size != K or D.size != K or line[:1] != b"{"
            or D[-1] != a.size - 1 or np.any(C >= D) or np.any(C[1:] <= D[:-1])):
        return None  # a colon, comma or brace inside a string or a nested value: not this path's
    if any(isinstance(v, (bool, dict, list)) for v in event.values()):
        return None
    numeric = [j for j, (k, v) in enumerate(event.items())
               if k != "v" and (isinstance(v, (int, float)) or v in _NONFINITE)]
    if not numeric:
        return None
    bounds = _bounds(np.array([0]), np.array([a.size]), C[None, numeric], D[None, numeric])
    names, gaps = list(event), _gaps(np.array([-1]), C[None], D[None])[0]
    gaps[2 * np.array(numeric) + 1] = -1
    skeleton = _gather(a, bounds[:, 0::2], bounds[:, 1::2]).tobytes()
    return Signature(event["kind"], K, numeric, [names[j] for j in numeric], skeleton, gaps)


def _gaps(starts: np.ndarray, C: np.ndarray, D: np.ndarray) -> np.ndarray:
    return np.diff(np.column_stack([starts, np.stack([C, D], axis=2).reshape(len(C), -1)]), axis=1)


def _decode_numbers(text: bytes, shape: tuple[int, int], names: list[str]) -> np.ndarray | None:
    """The block's numbers, or None when any value is one ``events.sanitize`` would refuse (then every
    line of the block takes the per-line path, where the bad ones are skipped and counted)."""
    if b'"' in text and not set(_QUOTED.findall(text)) <= {b"nan", b"inf", b"-inf"}:
        return None  # a quoted value that is not "nan" / "inf" / "-inf" (a "step": "7")
    if (b"true" in text or b"false" in text) and _BOOL.search(text):
        return None  # a boolean where a number belongs
    try:
        flat = _loads(b"[" + text + b"]")
        arr = np.fromiter(flat, dtype=np.float64, count=len(flat))
    except (ValueError, TypeError):
        return None
    if arr.size != shape[0] * shape[1]:
        return None
    arr = arr.reshape(shape)
    for j, name in enumerate(names):  # integer fields must hold integers (a "step": 1.5 is refused)
        if name in INT_FIELDS and not (np.isfinite(arr[:, j]).all() and np.array_equal(arr[:, j], np.round(arr[:, j]))):
            return None
    return arr


def _match(a: np.ndarray, sig: Signature, lines: np.ndarray, starts: np.ndarray, ends: np.ndarray,
           C: np.ndarray, D: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """The lines (of ``lines``) that have ``sig``'s skeleton, and their numbers. C, D: (m, K) colon and
    delimiter positions of each line."""
    gaps = _gaps(starts - 1, C, D)  # keys and constants of the right lengths, numbers not empty:
    ok = np.all((gaps == sig.gaps) | ((sig.gaps < 0) & (gaps > 0)), axis=1) & (D[:, -1] == ends - 1)
    lines, bounds = lines[ok], _bounds(starts[ok], ends[ok], C[ok][:, sig.numeric], D[ok][:, sig.numeric])
    skel = _gather(a, bounds[:, 0::2], bounds[:, 1::2]).reshape(lines.size, len(sig.skeleton))
    good = np.all(skel == np.frombuffer(sig.skeleton, np.uint8), axis=1)
    lines, bounds = lines[good], bounds[good]
    if not lines.size:
        return lines, None
    text = _gather(a, bounds[:, 1:-1:2], bounds[:, 2::2]).tobytes().replace(b"}", b",")
    return lines, _decode_numbers(text[:-1], (lines.size, len(sig.numeric)), sig.names)


def parse_chunk(buf: bytes, signatures: list[Signature]) -> Chunk:
    """Decode complete lines. ``signatures`` is extended in place with shapes learned from this chunk."""
    a = np.frombuffer(buf, np.uint8)
    ends = np.flatnonzero(a == 10)
    starts = np.concatenate(([0], ends[:-1] + 1))
    if not signatures:  # later shapes are learned from the lines left unmatched (below)
        _learn([(buf[s:e], decode_event(buf[s:e], _loads)) for s, e in zip(starts[:256], ends[:256])], signatures)
    matched = np.zeros(ends.size, bool)
    blocks: list[Block] = []
    if signatures:
        colons, delims = _marks(a)
        c0, d0 = np.searchsorted(colons, starts), np.searchsorted(delims, starts)
        nc, nd = np.searchsorted(colons, ends) - c0, np.searchsorted(delims, ends) - d0
        for sig in signatures:
            cand = np.flatnonzero((nc == sig.n_fields) & (nd == sig.n_fields) & ~matched)
            if cand.size:
                ar = np.arange(sig.n_fields)
                C, D = colons[c0[cand][:, None] + ar], delims[d0[cand][:, None] + ar]
                lines, values = _match(a, sig, cand, starts[cand], ends[cand], C, D)
                if values is not None:
                    matched[lines] = True
                    blocks.append(Block(sig.kind, sig.names, lines, values))
    events: list[tuple[int, dict[str, Any]]] = []
    skipped = 0
    for i in np.flatnonzero(~matched).tolist():
        line = buf[starts[i]: ends[i]]
        if line.strip():
            ev = decode_event(line, _loads)
            if ev is None:
                skipped += 1
            else:
                events.append((i, ev))
    if len(signatures) < _MAX_SIGNATURES and len(events) >= _LEARN_MIN:
        _learn([(buf[starts[i]: ends[i]], ev) for i, ev in events], signatures)
    return Chunk(blocks, events, ends.size, skipped)


def _learn(sample: list[tuple[bytes, dict[str, Any] | None]], signatures: list[Signature]) -> None:
    """Learn the shapes that are common in ``sample`` (raw line, decoded event) and not yet known."""
    sample = [(line, ev) for line, ev in sample if ev is not None and ev.get("kind") in BLOCK_KINDS]
    shapes = Counter((ev["kind"], tuple(ev)) for _, ev in sample)
    known = {(s.kind, s.n_fields, tuple(s.names)) for s in signatures}
    for (kind, keys), count in shapes.most_common():
        if count < _LEARN_MIN or len(signatures) >= _MAX_SIGNATURES:
            break
        line, ev = next((line, ev) for line, ev in sample if tuple(ev) == keys and ev["kind"] == kind)
        sig = learn_signature(line.rstrip(b"\r"), ev)
        if sig is not None and (key := (sig.kind, sig.n_fields, tuple(sig.names))) not in known:
            signatures.append(sig)
            known.add(key)


def decode_lines(buf: bytes) -> list[dict[str, Any]]:
    """All events of ``buf`` in file order through the fast path (for tests and tools)."""
    chunk = parse_chunk(buf, [])
    rows = list(chunk.events)
    for b in chunk.blocks:
        rows += [(i, {"kind": b.kind, **dict(zip(b.names, vals))})
                 for i, vals in zip(b.lines.tolist(), b.values.tolist())]
    return [ev for _, ev in sorted(rows, key=lambda r: r[0])]

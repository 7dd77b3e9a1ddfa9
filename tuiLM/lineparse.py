"""Decoding complete lines of ``events.jsonl`` into column blocks (``parse_chunk``), for ``reader``.

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
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .events import INT_FIELDS, decode_event

try:  # optional: ~5x faster decoding; the stdlib json gives identical results
    import orjson as _orjson

    _loads = _orjson.loads
except ImportError:  # pragma: no cover - depends on the environment
    _orjson = None
    _loads = json.loads

CHUNK = 4 << 20  # bytes per read: big enough to amortise, small enough to keep memory flat
_COLON, _COMMA, _RBRACE, _NL = 58, 44, 125, 10
_NUMERIC_STR = ("nan", "inf", "-inf", "NaN", "Infinity", "-Infinity")
_NUMERIC_BYTES = frozenset({b"nan", b"inf", b"-inf"})  # the only strings sanitize takes for a number
_MAX_SIGNATURES = 8
_LEARN_MIN = 16  # lines of one shape before a signature is worth learning
# kinds whose lines become numeric rows; other kinds (samples, logs, checkpoints: their text is the
# point) always take the per-line path, however often one repeats
BLOCK_KINDS = ("train", "eval", "diag")
_QUOTED = re.compile(rb'"([^"]*)"')
_BOOL = re.compile(rb'(?:^|,)(?:true|false)(?=,|$)')


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
    if kind not in BLOCK_KINDS or not event:
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


def _decode_numbers(text: bytes, shape: tuple[int, int], names: list[str]) -> np.ndarray | None:
    """The block's numbers, or None when any value is one ``events.sanitize`` would refuse (then every
    line of the block takes the per-line path, where the bad ones are skipped and counted)."""
    if b'"' in text and not all(q in _NUMERIC_BYTES for q in set(_QUOTED.findall(text))):
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
    values = _decode_numbers(text[:-1], (idx.size, len(num)), sig.numeric_names)
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

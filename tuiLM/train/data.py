"""Corpora and batches.

Sources (``data.source``):

* ``builtin``: the Python standard library's own ``.py`` files (``sysconfig`` "stdlib" path, without
  site-packages), read as bytes in sorted order. Nothing to download; differs between Python versions,
  which the fingerprint records. Files that are not UTF-8 (a few test modules written in other
  encodings on purpose) are left out, whatever the tokenizer, so every tokenizer sees one corpus.
* ``text``: a text file, a folder of files (recursively, sorted, hidden files skipped) or a glob.
* ``nanogpt``: a folder with ``train.bin`` / ``val.bin`` (headerless uint16 ids) and optionally
  ``meta.pkl`` ({vocab_size, itos, stoi}). meta.pkl is a Python pickle, and unpickling can run code:
  it is read with ``SafeUnpickler``, which admits only the builtin containers and scalars nanoGPT
  writes (no class, no function: a ``__reduce__`` payload is refused before anything runs).
* ``shards``: parameter-golf / llm.c ``.bin`` shards: a 256 x int32 little-endian header (magic
  20240520, version 1, token count) then uint16 little-endian tokens; the file size must be exactly
  1024 + 2 x count.

Single-stream sources are split contiguously by ``data.train_ratio``. Every source becomes a list of
1-D numpy arrays ("parts"); a window never crosses a part boundary.

Batches: each optimizer step draws the starts of all its windows (every rank, every micro-step) from
one seeded ``torch.Generator``; rank r takes rows ``(micro * world + r) * B ...``. Ranks therefore see
disjoint windows, a single process with accumulation sees exactly the windows of N ranks, and the
generator state (checkpointed) makes a resumed run draw the batches of the uninterrupted one.
"""

from __future__ import annotations

import glob as globmod
import hashlib
import os
import pickle
import sysconfig
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import UserError
from .tokenizers import (ByteTokenizer, CharTokenizer, IdTokenizer, MetaTokenizer, SentencePieceTokenizer,
                         Tokenizer, UnsafePickle, read_meta)

SHARD_MAGIC = 20240520
SHARD_VERSION = 1
SHARD_HEADER_INTS = 256
SHARD_HEADER_BYTES = SHARD_HEADER_INTS * 4


class DataError(UserError):
    """A corpus file that cannot be used; the message names it."""


@dataclass
class Corpus:
    train: list[np.ndarray]
    val: list[np.ndarray]
    tokenizer: Tokenizer
    vocab_size: int  # model vocabulary (>= tokenizer.vocab_size when data.vocab_size pads it)
    info: dict[str, Any] = field(default_factory=dict)  # the run_start "corpus" field

    @property
    def train_tokens(self) -> int:
        return int(sum(len(p) for p in self.train))

    @property
    def val_tokens(self) -> int:
        return int(sum(len(p) for p in self.val))


# -- fingerprints --------------------------------------------------------------------------------

def fingerprint(entries: list[tuple[str, int]], extra: str = "") -> str:
    """Hash of (name, size) pairs: runs on different corpora are not compared blindly."""
    h = hashlib.sha256(extra.encode())
    for name, size in entries:
        h.update(f"{name}\t{size}\n".encode())
    return h.hexdigest()[:16]


# -- reading files -------------------------------------------------------------------------------

def builtin_files() -> tuple[Path, list[Path]]:
    root = Path(sysconfig.get_paths()["stdlib"])
    files = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in ("site-packages", "dist-packages", "__pycache__"))
        files.extend(Path(dirpath) / f for f in filenames if f.endswith(".py"))
    files.sort(key=lambda p: p.relative_to(root).as_posix())
    return root, files


def text_files(path: str) -> tuple[Path, list[Path]]:
    p = Path(path).expanduser()
    if any(ch in path for ch in "*?["):
        files = sorted(Path(f) for f in globmod.glob(os.path.expanduser(path), recursive=True) if Path(f).is_file())
        if not files:
            raise DataError(f"data.path {path!r}: the pattern matches no files")
        return Path(os.path.commonpath([str(f.parent) for f in files])), files
    if p.is_file():
        return p.parent, [p]
    if p.is_dir():
        files = []
        for dirpath, dirnames, filenames in os.walk(p):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            files.extend(Path(dirpath) / f for f in filenames if not f.startswith("."))
        files.sort(key=lambda f: f.relative_to(p).as_posix())
        if not files:
            raise DataError(f"data.path {path!r}: the folder holds no files")
        return p, files
    if p.exists():  # a device, a FIFO, a socket: nothing to train on
        raise DataError(f"data.path {path!r}: not a file or a folder")
    raise DataError(f"data.path {path!r}: no such file or folder")


def read_files(root: Path, files: list[Path], max_bytes: int, utf8_only: bool = False
               ) -> tuple[list[tuple[Path, bytes]], list[tuple[str, int]]]:
    """Read files in order until ``max_bytes`` (0 = all); returns the chunks and (name, size) entries.
    ``utf8_only`` leaves out files that are not UTF-8 text (the built-in corpus)."""
    chunks, entries, total = [], [], 0
    for f in files:
        try:
            data = f.read_bytes()
        except OSError as e:
            raise DataError(f"{f}: cannot read ({e.strerror})") from None
        if utf8_only:
            try:
                data.decode("utf-8")
            except UnicodeDecodeError:
                continue
        if max_bytes and total + len(data) > max_bytes:
            data = data[: max_bytes - total]
        chunks.append((f, data))
        entries.append((f.relative_to(root).as_posix(), len(data)))
        total += len(data)
        if max_bytes and total >= max_bytes:
            break
    if total == 0:
        raise DataError(f"{files[0] if len(files) == 1 else root}: the corpus is empty"
                        + (f" ({len(files)} files, none with text)" if len(files) > 1 else ""))
    return chunks, entries


def _decode(chunks: list[tuple[Path, bytes]]) -> str:
    parts = []
    for f, data in chunks:
        try:
            parts.append(data.decode("utf-8"))
        except UnicodeDecodeError as e:
            # max_bytes may cut the last file inside a character: drop that partial character only.
            if f is chunks[-1][0] and e.start >= len(data) - 3 and e.reason == "unexpected end of data":
                parts.append(data[: e.start].decode("utf-8"))
            else:
                raise DataError(f"{f}: not UTF-8 text at byte {e.start} (the char tokenizer needs UTF-8; "
                                f"use tokenizer = 'byte' for arbitrary bytes)") from None
    return "".join(parts)


def _id_dtype(vocab: int) -> type:
    return np.uint8 if vocab <= 256 else (np.uint16 if vocab <= 65536 else np.int32)


def encode_chars(tok: CharTokenizer, text: str) -> np.ndarray:
    """Vectorised char encoding: code points looked up in the sorted vocabulary."""
    cps = np.frombuffer(text.encode("utf-32-le", errors="surrogatepass"), dtype=np.uint32)
    vocab = np.array([ord(c) for c in tok.chars], dtype=np.uint32)
    order = np.argsort(vocab)
    pos = np.searchsorted(vocab[order], cps)
    pos = np.minimum(pos, len(vocab) - 1)
    found = vocab[order][pos] == cps
    if not found.all():
        tok.encode(chr(int(cps[np.argmin(found)])))  # raises with the character named
    return order[pos].astype(_id_dtype(tok.vocab_size))


# -- the sources ---------------------------------------------------------------------------------

def load_corpus(data: Any, saved_tokenizer: Tokenizer | None = None) -> Corpus:
    """Load ``preset.data``. ``saved_tokenizer`` (a resumed run's) must match the one rebuilt now."""
    if data.source in ("builtin", "text"):
        corpus = _load_text_stream(data)
    elif data.source == "nanogpt":
        corpus = _load_nanogpt(data)
    elif data.source == "shards":
        corpus = _load_shards(data)
    else:
        raise DataError(f"data.source {data.source!r} is not supported")
    if saved_tokenizer is not None and saved_tokenizer.to_json() != corpus.tokenizer.to_json():
        raise DataError("the corpus gives a different tokenizer vocabulary than the one saved with this run "
                        "(tokenizer.json): the data changed since the run started")
    if not corpus.val or corpus.val_tokens < 2:
        raise DataError("the validation split is empty: raise data.max_bytes, lower data.train_ratio or "
                        "give data.val_path")
    corpus.info.update(train_tokens=corpus.train_tokens, val_tokens=corpus.val_tokens,
                       tokenizer=corpus.tokenizer.kind, vocab_size=corpus.vocab_size)
    return corpus


def _split(ids: np.ndarray, ratio: float) -> tuple[list[np.ndarray], list[np.ndarray]]:
    n = int(len(ids) * ratio)
    return [ids[:n]], [ids[n:]]


def _make_tokenizer(data: Any, text: str | None) -> Tokenizer:
    if data.tokenizer == "byte":
        return ByteTokenizer()
    if data.tokenizer == "char":
        assert text is not None
        return CharTokenizer.from_text(text)
    if not data.tokenizer_model.strip():
        raise DataError("tokenizer = 'sentencepiece' needs data.tokenizer_model (a .model file)")
    return SentencePieceTokenizer(data.tokenizer_model)


def _load_text_stream(data: Any) -> Corpus:
    if data.source == "builtin":
        root, files = builtin_files()
        label = f"python{sysconfig.get_python_version()} stdlib"
    else:
        root, files = text_files(data.path)
        label = str(data.path)
    chunks, entries = read_files(root, files, data.max_bytes, utf8_only=data.source == "builtin")
    raw_bytes = sum(len(c) for _, c in chunks)
    if data.tokenizer == "byte":
        tok: Tokenizer = ByteTokenizer()
        ids = np.frombuffer(b"".join(c for _, c in chunks), dtype=np.uint8)
    else:
        text = _decode(chunks)
        tok = _make_tokenizer(data, text)
        if isinstance(tok, CharTokenizer):
            ids = encode_chars(tok, text)
        else:
            ids = np.asarray(tok.encode(text), dtype=_id_dtype(tok.vocab_size))
    vocab = max(tok.vocab_size, data.vocab_size)
    train, val = _split(ids, data.train_ratio)
    info = {"source": data.source, "path": label, "files": len(entries), "bytes": raw_bytes,
            "fingerprint": fingerprint(entries, extra=f"{data.source}")}
    return Corpus(train, val, tok, vocab, info)


def _bin_ids(path: Path) -> np.ndarray:
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    size = path.stat().st_size
    if size % 2:
        raise DataError(f"{path}: size {size} is odd; a nanoGPT .bin holds uint16 token ids")
    if size == 0:
        raise DataError(f"{path}: empty")
    return np.memmap(path, dtype="<u2", mode="r")


def _load_nanogpt(data: Any) -> Corpus:
    folder = Path(data.path).expanduser()
    if not folder.is_dir():
        raise DataError(f"data.path {data.path!r}: not a folder (nanoGPT data is a folder with train.bin and val.bin)")
    train, val = _bin_ids(folder / "train.bin"), _bin_ids(folder / "val.bin")
    entries = [("train.bin", train.nbytes), ("val.bin", val.nbytes)]
    meta_path = folder / "meta.pkl"
    tok: Tokenizer
    if meta_path.is_file():
        # Only the folder the user named: unpickling executes code from the file.
        try:
            meta = read_meta(meta_path)
            tok = MetaTokenizer(meta["itos"], int(meta["vocab_size"]))
        except UnsafePickle as e:
            raise DataError(f"{meta_path}: refused: {e}; a nanoGPT meta.pkl holds only dicts, lists, strings "
                            f"and numbers (was it made by something else?)") from None
        except (pickle.UnpicklingError, EOFError, KeyError, TypeError, ValueError, AttributeError, IndexError,
                RecursionError, MemoryError) as e:
            raise DataError(f"{meta_path}: not a nanoGPT meta.pkl with vocab_size, itos, stoi ({e!r})") from None
        entries.append(("meta.pkl", meta_path.stat().st_size))
    elif data.tokenizer == "char":
        raise DataError(f"{folder}: no meta.pkl: tokenizer = 'char' on nanoGPT data means the character "
                        f"vocabulary of its meta.pkl (or set tokenizer = 'byte' / data.vocab_size for plain ids)")
    elif data.tokenizer == "sentencepiece":
        tok = _make_tokenizer(data, None)
    elif data.tokenizer == "byte" and data.vocab_size in (0, 256):
        tok = ByteTokenizer()
    elif data.vocab_size > 0:
        tok = IdTokenizer(data.vocab_size)
    else:
        raise DataError(f"{folder}: no meta.pkl, so the vocabulary is unknown: set data.vocab_size "
                        f"(e.g. 50304 for GPT-2 ids) or data.tokenizer_model")
    vocab = max(tok.vocab_size, data.vocab_size)
    _check_ids(val, vocab, folder / "val.bin")
    info = {"source": "nanogpt", "path": str(folder), "files": len(entries),
            "bytes": int(train.nbytes + val.nbytes), "fingerprint": fingerprint(entries, extra="nanogpt")}
    return Corpus([train], [val], tok, vocab, info)


def read_shard(path: Path) -> np.ndarray:
    """Tokens of one parameter-golf / llm.c shard (a read-only memmap), checked against its header."""
    path = Path(path)
    try:
        size = path.stat().st_size
    except OSError as e:
        raise DataError(f"{path}: cannot read ({e.strerror})") from None
    if size < SHARD_HEADER_BYTES:
        raise DataError(f"{path}: {size} bytes is shorter than the 1024-byte shard header")
    header = np.fromfile(path, dtype="<i4", count=SHARD_HEADER_INTS)
    if int(header[0]) != SHARD_MAGIC:
        raise DataError(f"{path}: bad magic {int(header[0])} (a shard starts with {SHARD_MAGIC})")
    if int(header[1]) != SHARD_VERSION:
        raise DataError(f"{path}: unsupported shard version {int(header[1])} (expected {SHARD_VERSION})")
    count = int(header[2])
    if count < 0 or size != SHARD_HEADER_BYTES + 2 * count:
        raise DataError(f"{path}: size {size} does not match the header's {count} tokens "
                        f"(expected {SHARD_HEADER_BYTES} + 2 x {count} = {SHARD_HEADER_BYTES + 2 * count} bytes)")
    if count == 0:
        raise DataError(f"{path}: the shard holds no tokens")
    return np.memmap(path, dtype="<u2", mode="r", offset=SHARD_HEADER_BYTES, shape=(count,))


def _shard_paths(pattern: str, what: str) -> list[Path]:
    p = Path(pattern).expanduser()
    if p.is_dir():
        files = sorted(p.glob("*.bin"))
    elif p.is_file():
        files = [p]
    else:
        files = sorted(Path(f) for f in globmod.glob(os.path.expanduser(pattern)) if Path(f).is_file())
    if not files:
        raise DataError(f"{what} {pattern!r}: matches no shard files")
    return files


def _load_shards(data: Any) -> Corpus:
    train_files = _shard_paths(data.path, "data.path")
    train = [read_shard(f) for f in train_files]
    entries = [(f.name, f.stat().st_size) for f in train_files]
    if data.val_path.strip():
        val_files = _shard_paths(data.val_path, "data.val_path")
        overlap = sorted({f.resolve() for f in train_files} & {f.resolve() for f in val_files})
        if overlap:  # e.g. data.path a folder holding fineweb_train_* and fineweb_val_*
            raise DataError(f"data.path and data.val_path share {len(overlap)} shard(s), e.g. {overlap[0]}: "
                            f"the model would train on its validation data (use a glob such as *_train_*.bin)")
        val = [read_shard(f) for f in val_files]
        entries += [("val/" + f.name, f.stat().st_size) for f in val_files]
    else:  # no validation shards: hold out the tail of the last training shard
        n = int(len(train[-1]) * data.train_ratio)
        train[-1], val = train[-1][:n], [train[-1][n:]]
    if data.tokenizer_model.strip():
        tok: Tokenizer = SentencePieceTokenizer(data.tokenizer_model)
    elif data.tokenizer == "byte" and data.vocab_size in (0, 256):
        tok = ByteTokenizer()
    elif data.vocab_size > 0:
        tok = IdTokenizer(data.vocab_size)
    else:
        raise DataError("shards carry no vocabulary: set data.vocab_size or data.tokenizer_model")
    vocab = max(tok.vocab_size, data.vocab_size)
    for arr, f in zip(val, val_files if data.val_path.strip() else train_files[-1:]):
        _check_ids(arr, vocab, f)
    info = {"source": "shards", "path": str(data.path), "files": len(entries),
            "bytes": int(sum(e[1] for e in entries)), "fingerprint": fingerprint(entries, extra="shards")}
    return Corpus(train, val, tok, vocab, info)


def _check_ids(arr: np.ndarray, vocab: int, where: Path | str) -> None:
    if len(arr) and int(arr.max()) >= vocab:
        raise DataError(f"{where}: token id {int(arr.max())} is outside the vocabulary of {vocab} "
                        f"(set data.vocab_size or the right tokenizer)")


# -- batches -------------------------------------------------------------------------------------

class WindowIndex:
    """Maps a flat index over every valid window start of a list of parts to (part, offset)."""

    def __init__(self, parts: list[np.ndarray], span: int):
        self.parts = parts
        self.span = span  # tokens per window: seq_len + 1
        counts = np.array([max(0, len(p) - span + 1) for p in parts], dtype=np.int64)
        self.total = int(counts.sum())
        if self.total <= 0:
            longest = max((len(p) for p in parts), default=0)
            raise DataError(f"the training split ({longest} tokens in its longest part) is shorter than one "
                            f"window of seq_len + 1 = {span} tokens")
        self.cum = np.concatenate([[0], np.cumsum(counts)])

    def gather(self, flat: np.ndarray) -> np.ndarray:
        part = np.searchsorted(self.cum, flat, side="right") - 1
        off = flat - self.cum[part]
        return np.stack([np.asarray(self.parts[p][o:o + self.span]) for p, o in zip(part.tolist(), off.tolist())])


class BatchSampler:
    """Random training windows from a seeded generator whose state is checkpointed."""

    def __init__(self, parts: list[np.ndarray], seq_len: int, rows_per_step: int, seed: int, vocab_size: int):
        self.index = WindowIndex(parts, seq_len + 1)
        self.rows_per_step = rows_per_step
        self.vocab_size = vocab_size
        self.generator = torch.Generator().manual_seed(seed)

    def draw(self) -> np.ndarray:
        """Flat window starts of one optimizer step (all ranks, all micro-steps)."""
        return torch.randint(self.index.total, (self.rows_per_step,), generator=self.generator).numpy()

    def micro_batch(self, starts: np.ndarray, micro: int, rank: int, world: int, batch: int) -> tuple[torch.Tensor, torch.Tensor]:
        lo = (micro * world + rank) * batch
        rows = self.index.gather(starts[lo:lo + batch])
        if int(rows.max()) >= self.vocab_size:
            raise DataError(f"training data holds token id {int(rows.max())}, outside the vocabulary of "
                            f"{self.vocab_size} (set data.vocab_size)")
        t = torch.from_numpy(rows.astype(np.int64))
        return t[:, :-1], t[:, 1:]

    def state_dict(self) -> dict[str, Any]:
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.generator.set_state(state["generator"])


def fixed_batch(parts: list[np.ndarray], seq_len: int, batch: int) -> torch.Tensor:
    """The first ``batch`` non-overlapping windows of the validation split (held-out diagnostics batch)."""
    rows = []
    for p in parts:
        for s in range(0, len(p) - seq_len + 1, seq_len):
            rows.append(np.asarray(p[s:s + seq_len]).astype(np.int64))
            if len(rows) == batch:
                return torch.from_numpy(np.stack(rows))
    if not rows:
        p = max(parts, key=len)
        rows = [np.asarray(p[: min(len(p), seq_len)]).astype(np.int64)]
    return torch.from_numpy(np.stack(rows))

"""Vocabulary size without loading a tokenizer library: from the preset, the tokenizer kind, or by
counting the pieces of a SentencePiece model file (a small protobuf walk, no sentencepiece import).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

BYTE_VOCAB = 256
CHAR_GUESS = 256  # the char vocabulary comes from the corpus; bytes are a fair upper guess for ASCII text
SENTENCEPIECE_GUESS = 1024  # the parameter-golf tokenizer size, when the model file cannot be read


def resolve_vocab(preset: Any) -> tuple[int, bool, str]:
    """(vocab_size, exact, how) for a preset: what the model will be built with, or a labelled guess."""
    d = preset.data
    if d.vocab_size > 0:
        return d.vocab_size, True, "data.vocab_size"
    if d.source == "nanogpt" and d.tokenizer in ("byte", "char"):
        meta = nanogpt_meta(preset)
        if meta is not None:  # the trainer takes its vocabulary whatever the tokenizer says
            try:
                return int(meta["vocab_size"]), True, "meta.pkl"
            except (KeyError, TypeError, ValueError):
                pass
        if d.tokenizer == "char":
            return CHAR_GUESS, False, "guess: no readable meta.pkl in data.path"
    if d.tokenizer == "byte":
        return BYTE_VOCAB, True, "byte tokenizer"
    if d.tokenizer == "sentencepiece":
        path = _find(d.tokenizer_model, preset)
        if path is not None:
            try:
                return sentencepiece_vocab_size(path), True, f"pieces in {path.name}"
            except (OSError, ValueError):
                pass
        return SENTENCEPIECE_GUESS, False, "guess: SentencePiece model file not readable"
    return CHAR_GUESS, False, "guess: the char vocabulary is built from the corpus"


def nanogpt_meta(preset: Any) -> dict[str, Any] | None:
    """The meta.pkl of a nanoGPT data folder (data.path, from the working directory or the preset's
    folder), or None when there is none or it cannot be read."""
    folder = _find_dir(preset.data.path, preset)
    if folder is None or not (folder / "meta.pkl").is_file():
        return None
    from ..train.tokenizers import read_meta

    try:
        return read_meta(folder / "meta.pkl")
    except Exception:  # an unreadable meta.pkl is the trainer's error to word; the estimate guesses
        return None


def _find_dir(name: str, preset: Any) -> Path | None:
    if not name.strip():
        return None
    p = Path(name).expanduser()
    candidates = [p]
    if not p.is_absolute() and getattr(preset, "source", None):
        candidates.append(Path(preset.source).parent / p)
    return next((c for c in candidates if c.is_dir()), None)


def _find(name: str, preset: Any) -> Path | None:
    if not name.strip():
        return None
    p = Path(name).expanduser()
    candidates = [p]
    if not p.is_absolute() and getattr(preset, "source", None):
        candidates.append(Path(preset.source).parent / p)
    return next((c for c in candidates if c.is_file()), None)


def _varint(buf: bytes, i: int) -> tuple[int, int]:
    shift = value = 0
    while True:
        if i >= len(buf):
            raise ValueError("truncated varint")
        b = buf[i]
        i += 1
        value |= (b & 0x7F) << shift
        if not b & 0x80:
            return value, i
        shift += 7
        if shift > 63:
            raise ValueError("varint too long")


def sentencepiece_vocab_size(path: str | Path) -> int:
    """Number of pieces in a SentencePiece ``.model`` file (ModelProto field 1, repeated)."""
    buf = Path(path).read_bytes()
    i, pieces = 0, 0
    while i < len(buf):
        tag, i = _varint(buf, i)
        field, wire = tag >> 3, tag & 7
        if wire == 0:
            _, i = _varint(buf, i)
        elif wire == 1:
            i += 8
        elif wire == 2:
            n, i = _varint(buf, i)
            i += n
            if field == 1:
                pieces += 1
        elif wire == 5:
            i += 4
        else:
            raise ValueError(f"{path}: not a SentencePiece model (wire type {wire})")
        if i > len(buf):
            raise ValueError(f"{path}: truncated SentencePiece model")
    if pieces == 0:
        raise ValueError(f"{path}: no pieces found")
    return pieces

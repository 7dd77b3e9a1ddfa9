"""Tokenizers: byte, char, SentencePiece, nanoGPT meta.pkl, and opaque ids.

Every tokenizer knows the UTF-8 byte length of each token id, which is what bits per byte divides by
(specs/training.md): a target token ``t`` after a token ``p`` counts
``base_bytes[t] + (leading_space[t] and not boundary[p])`` bytes. Byte: 1 each. Char:
``len(ch.encode())``. SentencePiece: the piece without its leading "▁", plus 1 for that space unless
the previous token is special; special tokens count 0 bytes. A run saves its tokenizer as
``RUN_DIR/tokenizer.json`` so sampling and resume never need the corpus again.
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path
from typing import Any, Sequence

from ..errors import UserError

TOKENIZER_FILE = "tokenizer.json"


class Tokenizer:
    kind = ""
    vocab_size: int

    def encode(self, text: str) -> list[int]:
        raise NotImplementedError

    def decode(self, ids: Sequence[int]) -> str:
        raise NotImplementedError

    def base_bytes(self) -> list[int]:
        """UTF-8 bytes of each token id (without a SentencePiece leading space)."""
        raise NotImplementedError

    def leading_space(self) -> list[bool]:
        return [False] * self.vocab_size

    def boundary(self) -> list[bool]:
        """Special tokens: after them a leading space is not counted."""
        return [False] * self.vocab_size

    @property
    def bytes_known(self) -> bool:
        return True

    def to_json(self) -> dict[str, Any]:
        raise NotImplementedError


class ByteTokenizer(Tokenizer):
    kind = "byte"
    vocab_size = 256

    def encode(self, text: str) -> list[int]:
        return list(text.encode("utf-8"))

    def decode(self, ids: Sequence[int]) -> str:
        return bytes(int(i) for i in ids).decode("utf-8", errors="replace")

    def base_bytes(self) -> list[int]:
        return [1] * 256

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind}


class CharTokenizer(Tokenizer):
    """One token per Unicode character of the training text (sorted, like nanoGPT's shakespeare_char)."""

    kind = "char"

    def __init__(self, chars: Sequence[str]):
        self.chars = list(chars)
        if len(set(self.chars)) != len(self.chars) or any(len(c) != 1 for c in self.chars):
            raise UserError("char tokenizer: the vocabulary must be distinct single characters")
        self.stoi = {c: i for i, c in enumerate(self.chars)}
        self.vocab_size = len(self.chars)

    @classmethod
    def from_text(cls, text: str) -> "CharTokenizer":
        return cls(sorted(set(text)))

    def encode(self, text: str) -> list[int]:
        try:
            return [self.stoi[c] for c in text]
        except KeyError as e:
            ch = e.args[0]
            raise UserError(f"character {ch!r} (U+{ord(ch):04X}) is not in this run's vocabulary of "
                            f"{self.vocab_size} characters (char tokenizer built from the training text)") from None

    def decode(self, ids: Sequence[int]) -> str:
        return "".join(self.chars[int(i)] for i in ids)

    def base_bytes(self) -> list[int]:
        return [len(c.encode("utf-8", errors="surrogatepass")) for c in self.chars]

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "chars": "".join(self.chars)}


class UnsafePickle(pickle.UnpicklingError):
    """A pickle that names a global (a class or function): refused without calling it."""


class SafeUnpickler(pickle.Unpickler):
    """Unpickles only builtin data: dict, list, tuple, set, str, bytes, int, float, bool, None.

    Those are built by pickle opcodes directly; everything else (classes, functions, ``__reduce__``
    payloads such as ``os.system``) goes through ``find_class``, which refuses all of it."""

    def find_class(self, module: str, name: str) -> Any:
        raise UnsafePickle(f"it names {module}.{name}")


def read_meta(path: str | Path) -> dict[str, Any]:
    """A nanoGPT ``meta.pkl`` as a dict ({vocab_size, itos, stoi}): the one place that unpickles it
    (the trainer's loader and the estimator), with ``SafeUnpickler``. Raises UnsafePickle, pickle and
    OS errors for the caller to word."""
    with open(path, "rb") as fh:
        meta = SafeUnpickler(fh).load()
    if not isinstance(meta, dict):
        raise ValueError(f"a {type(meta).__name__}, not a dict")
    return meta


class MetaTokenizer(CharTokenizer):
    """nanoGPT ``meta.pkl`` ({vocab_size, itos, stoi}): ids map to strings (usually characters)."""

    kind = "meta"

    def __init__(self, itos: dict[int, str], vocab_size: int):
        self.itos = {int(k): str(v) for k, v in itos.items()}
        self.vocab_size = int(vocab_size)
        self.stoi = {v: k for k, v in self.itos.items()}
        self.chars = [self.itos.get(i, "") for i in range(self.vocab_size)]
        self._maxlen = max((len(s) for s in self.stoi), default=1)

    def encode(self, text: str) -> list[int]:
        out, i = [], 0
        while i < len(text):  # greedy longest match (single characters for char-level data)
            for n in range(min(self._maxlen, len(text) - i), 0, -1):
                tok = self.stoi.get(text[i:i + n])
                if tok is not None:
                    out.append(tok)
                    i += n
                    break
            else:
                ch = text[i]
                raise UserError(f"character {ch!r} (U+{ord(ch):04X}) is not in the vocabulary of meta.pkl")
        return out

    def decode(self, ids: Sequence[int]) -> str:
        return "".join(self.itos.get(int(i), "") for i in ids)

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "vocab_size": self.vocab_size, "itos": {str(k): v for k, v in self.itos.items()}}


class IdTokenizer(Tokenizer):
    """Token ids with no known text (e.g. GPT-2 BPE .bin files without meta.pkl): bpb is unknown."""

    kind = "ids"

    def __init__(self, vocab_size: int):
        self.vocab_size = int(vocab_size)

    def encode(self, text: str) -> list[int]:
        try:
            ids = [int(x) for x in text.split()]
        except ValueError:
            raise UserError("this run's data has no tokenizer: write the prompt as space-separated token "
                            "ids, or set data.tokenizer_model / provide meta.pkl") from None
        bad = [i for i in ids if not 0 <= i < self.vocab_size]
        if bad:
            raise UserError(f"token id {bad[0]} is outside the vocabulary (0..{self.vocab_size - 1})")
        return ids

    def decode(self, ids: Sequence[int]) -> str:
        return " ".join(str(int(i)) for i in ids)

    def base_bytes(self) -> list[int]:
        return [0] * self.vocab_size

    @property
    def bytes_known(self) -> bool:
        return False

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "vocab_size": self.vocab_size}


class SentencePieceTokenizer(Tokenizer):
    kind = "sentencepiece"

    def __init__(self, model_file: str | Path):
        try:
            import sentencepiece as spm
        except ImportError:
            raise UserError("tokenizer = 'sentencepiece' needs the sentencepiece package: "
                            "pip install 'tuilm[sentencepiece]' (or pip install sentencepiece)") from None
        self.model_file = str(Path(model_file).expanduser())
        if not Path(self.model_file).is_file():
            raise UserError(f"{self.model_file}: no such SentencePiece model file (data.tokenizer_model)")
        try:
            self.sp = spm.SentencePieceProcessor(model_file=self.model_file)
        except Exception as e:  # the library raises plain RuntimeError/OSError on a bad file
            raise UserError(f"{self.model_file}: not a SentencePiece model ({e})") from None
        self.vocab_size = int(self.sp.vocab_size())

    def encode(self, text: str) -> list[int]:
        return list(self.sp.encode(text))

    def decode(self, ids: Sequence[int]) -> str:
        return self.sp.decode([int(i) for i in ids])

    def _special(self, i: int) -> bool:
        return bool(self.sp.is_control(i) or self.sp.is_unknown(i) or self.sp.is_unused(i))

    def base_bytes(self) -> list[int]:
        out = []
        for i in range(self.vocab_size):
            if self._special(i):
                out.append(0)
            elif self.sp.is_byte(i):
                out.append(1)
            else:
                out.append(len(self.sp.id_to_piece(i).removeprefix("\u2581").encode("utf-8")))
        return out

    def leading_space(self) -> list[bool]:
        return [not self._special(i) and not self.sp.is_byte(i) and self.sp.id_to_piece(i).startswith("\u2581")
                for i in range(self.vocab_size)]

    def boundary(self) -> list[bool]:
        return [self._special(i) for i in range(self.vocab_size)]

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "model_file": str(Path(self.model_file).resolve())}


def from_json(obj: dict[str, Any]) -> Tokenizer:
    kind = obj.get("kind")
    if kind == "byte":
        return ByteTokenizer()
    if kind == "char":
        return CharTokenizer(list(obj["chars"]))
    if kind == "meta":
        return MetaTokenizer({int(k): v for k, v in obj["itos"].items()}, obj["vocab_size"])
    if kind == "ids":
        return IdTokenizer(obj["vocab_size"])
    if kind == "sentencepiece":
        return SentencePieceTokenizer(obj["model_file"])
    raise UserError(f"unknown tokenizer kind {kind!r} in {TOKENIZER_FILE}")


def save_tokenizer(tok: Tokenizer, run_dir: Path) -> None:
    from ..config.write import atomic_write_text

    atomic_write_text(Path(run_dir) / TOKENIZER_FILE, json.dumps(tok.to_json(), ensure_ascii=False) + "\n")


def load_tokenizer(run_dir: Path) -> Tokenizer:
    path = Path(run_dir) / TOKENIZER_FILE
    from ..events import open_regular

    try:
        with open_regular(path) as fh:  # a FIFO would block sampling forever
            obj = json.loads(fh.read().decode("utf-8"))
    except FileNotFoundError:
        raise UserError(f"{path}: missing (the run never got past loading its data)") from None
    except (OSError, ValueError) as e:
        raise UserError(f"{path}: unreadable ({e})") from None
    return from_json(obj)

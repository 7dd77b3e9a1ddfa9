"""Checkpoints: ``checkpoints/step-NNNNNNN.pt`` + ``step-NNNNNNN.json`` (meta, with the file's sha256).

Written to a temp file, fsynced and renamed, so a crash never leaves a half-written checkpoint under
the final name; loaded with ``torch.load(weights_only=True)``. A checkpoint whose bytes do not match
its meta, or that torch cannot read, raises ``CheckpointError`` naming the file: it is never used.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any

import torch

from ..config.write import atomic_write_text
from ..errors import UserError
from ..files import temp_beside
from ..runs import write_error_message

_NAME_RE = re.compile(r"^step-(\d+)\.pt$")


class CheckpointError(UserError):
    """A checkpoint that cannot be used; the message names the file."""


def checkpoint_path(ckpt_dir: Path, step: int) -> Path:
    return Path(ckpt_dir) / f"step-{step:07d}.pt"


def list_checkpoints(ckpt_dir: Path) -> list[Path]:
    """Checkpoint files, oldest step first."""
    d = Path(ckpt_dir)
    if not d.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in d.iterdir() if (m := _NAME_RE.match(p.name))]
    return [p for _, p in sorted(found)]


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _fsync_dir(d: Path) -> None:
    try:
        fd = os.open(d, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


class _Sink:
    """The file torch.save writes through, remembering the OSError a write raised."""

    def __init__(self, fh: Any) -> None:
        self.fh = fh
        self.error: OSError | None = None

    def write(self, data: Any) -> int:
        try:
            return self.fh.write(data)
        except OSError as e:
            self.error = e
            raise

    def flush(self) -> None:
        try:
            self.fh.flush()
        except OSError as e:
            self.error = e
            raise


def save_checkpoint(ckpt_dir: Path, step: int, state: dict[str, Any], meta: dict[str, Any], keep: int) -> Path:
    """Write atomically, then delete the oldest beyond ``keep``. Returns the checkpoint path."""
    ckpt_dir = Path(ckpt_dir)
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    path = checkpoint_path(ckpt_dir, step)
    try:
        fd, tmp = temp_beside(path)
    except OSError as e:
        raise CheckpointError(f"cannot write checkpoint {path}: {e.strerror or e}") from None
    sink: _Sink | None = None
    try:
        with os.fdopen(fd, "wb") as fh:
            sink = _Sink(fh)
            torch.save(state, sink)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        # torch's zip writer turns a failed write into RuntimeError("[enforce fail at
        # inline_container.cc...]"); the sink kept the OSError underneath
        cause = e if isinstance(e, OSError) else (sink.error if sink is not None else None)
        if cause is not None:
            raise CheckpointError(f"checkpoint: {write_error_message(cause, path)}") from None
        raise
    _fsync_dir(ckpt_dir)
    for stale in ckpt_dir.glob(".step-*.tmp"):  # left by a writer killed mid-save; ours was renamed
        try:
            stale.unlink()
        except OSError:
            pass
    full_meta = {"step": step, "file": path.name, "bytes": path.stat().st_size, "sha256": _sha256(path), **meta}
    try:
        atomic_write_text(path.with_suffix(".json"), json.dumps(full_meta, indent=1) + "\n")
    except OSError as e:  # a checkpoint without its meta was never finished; and the disk is failing: stop
        raise CheckpointError(f"checkpoint meta: {write_error_message(e, path.with_suffix('.json'))}") from None
    for old in _pruned(ckpt_dir, path, step, keep):
        for p in (old, old.with_suffix(".json")):
            try:
                p.unlink()
            except FileNotFoundError:
                pass
    return path


def _pruned(ckpt_dir: Path, path: Path, step: int, keep: int) -> list[Path]:
    """What goes once ``path`` (step ``step``) is finished: the oldest finished checkpoints below it beyond
    ``keep`` (counting ``path``), and every unfinished one (a .pt without its meta: a writer killed after
    the rename, or a failed meta write; never loadable). An unfinished file above ``step`` once counted
    as the newest, and the checkpoint just written was deleted in its place."""
    others = [p for p in list_checkpoints(ckpt_dir) if p != path]
    finished = [p for p in others if p.with_suffix(".json").is_file()]
    older = [p for p in finished if int(_NAME_RE.match(p.name).group(1)) < step]  # type: ignore[union-attr]
    return [p for p in others if p not in finished] + older[: max(0, len(older) - (keep - 1))]


def read_meta(path: Path) -> dict[str, Any] | None:
    """The checkpoint's meta (a JSON object), or None when it is missing or not one."""
    try:
        meta = json.loads(Path(path).with_suffix(".json").read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return None
    return meta if isinstance(meta, dict) else None


def load_checkpoint(path: Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint")
    meta = read_meta(path)
    if meta is None or not isinstance(meta.get("sha256"), str):
        # the meta is written last: without it the checkpoint was never finished, or cannot be verified
        raise CheckpointError(f"{path}: its meta {path.with_suffix('.json').name} is missing or not a valid "
                              f"checkpoint meta, so its bytes cannot be verified; delete it to resume from the "
                              f"one before")
    size = path.stat().st_size
    if meta.get("bytes") is not None and meta["bytes"] != size:
        raise CheckpointError(f"{path}: truncated or corrupt checkpoint ({size} bytes, its meta says "
                              f"{meta['bytes']}); delete it to resume from the one before")
    if meta["sha256"] != _sha256(path):
        raise CheckpointError(f"{path}: corrupt checkpoint (sha256 differs from its meta); delete it to "
                              f"resume from the one before")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # zip/pickle errors come in many types
        raise CheckpointError(f"{path}: unreadable checkpoint ({type(e).__name__}: {str(e)[:200]}); delete it "
                              f"to resume from the one before") from None
    if not isinstance(state, dict) or "model" not in state or "step" not in state:
        raise CheckpointError(f"{path}: not a tuiLM checkpoint (no model/step)")
    return state


def latest_checkpoint(ckpt_dir: Path) -> Path | None:
    """The newest finished checkpoint: one whose meta exists (a writer killed between the rename and
    the meta leaves a .pt that was never finished; the one before it is the latest)."""
    found = [p for p in list_checkpoints(ckpt_dir) if p.with_suffix(".json").is_file()]
    return found[-1] if found else None

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
import tempfile
from pathlib import Path
from typing import Any

import torch

from ..config.write import atomic_write_text
from ..errors import UserError

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


def save_checkpoint(ckpt_dir: Path, step: int, state: dict[str, Any], meta: dict[str, Any], keep: int) -> Path:
    """Write atomically, then delete the oldest beyond ``keep``. Returns the checkpoint path."""
    ckpt_dir = Path(ckpt_dir)
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    path = checkpoint_path(ckpt_dir, step)
    try:
        fd, tmp = tempfile.mkstemp(dir=ckpt_dir, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as e:
        raise CheckpointError(f"cannot write checkpoint {path}: {e.strerror or e}") from None
    try:
        with os.fdopen(fd, "wb") as fh:
            torch.save(state, fh)
            fh.flush()
            os.fsync(fh.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; checkpoints are as readable as other files
        os.replace(tmp, path)
    except BaseException as e:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(e, OSError):
            raise CheckpointError(f"cannot write checkpoint {path}: {e.strerror or e}") from None
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
    except OSError as e:  # a checkpoint without its meta is still whole; but the disk is failing: stop
        raise CheckpointError(f"cannot write checkpoint meta {path.with_suffix('.json')}: {e.strerror or e}") from None
    for old in list_checkpoints(ckpt_dir)[:-keep]:
        for p in (old, old.with_suffix(".json")):
            try:
                p.unlink()
            except FileNotFoundError:
                pass
    return path


def read_meta(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(Path(path).with_suffix(".json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def load_checkpoint(path: Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint")
    meta = read_meta(path)
    if meta is not None:
        size = path.stat().st_size
        if meta.get("bytes") is not None and meta["bytes"] != size:
            raise CheckpointError(f"{path}: truncated or corrupt checkpoint ({size} bytes, its meta says "
                                  f"{meta['bytes']}); delete it to resume from the one before")
        if meta.get("sha256") and meta["sha256"] != _sha256(path):
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
    found = list_checkpoints(ckpt_dir)
    return found[-1] if found else None

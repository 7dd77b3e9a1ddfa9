"""Temp files for atomic replaces (write beside the target, then ``os.replace``). Stdlib only.

``tempfile.mkstemp`` creates its files 0600, so a replaced preset, a run's ``preset.toml``, an export
or a checkpoint would silently become unreadable to the user's group. ``temp_beside`` creates the temp
file as a plain ``open()`` would (0666 less the umask, applied by the kernel: no process-wide umask
toggling, which is not thread-safe) and gives it the target's own mode when the target exists.
"""

from __future__ import annotations

import os
import secrets
import stat
from pathlib import Path


def temp_beside(path: str | Path) -> tuple[int, Path]:
    """(fd open for writing, path) of a new ``.NAME.<random>.tmp`` file in the target's folder."""
    path = Path(path)
    while True:
        tmp = path.parent / f".{path.name}.{secrets.token_hex(6)}.tmp"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o666)
            break
        except FileExistsError:  # another writer's name (2^48 of them): draw again
            continue
    try:
        os.chmod(tmp, stat.S_IMODE(os.stat(path).st_mode))  # replacing a file keeps its mode
    except OSError:  # no such file yet (or a mode we may not set): the umask's default stands
        pass
    return fd, tmp

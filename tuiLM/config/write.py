"""Writing presets: the frozen, fully resolved preset of a run, and comment-preserving edits."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import tomli_w

from .load import Preset
from .schema import SECTIONS


def dumps_resolved(preset: Preset, header: str = "") -> str:
    """Every field of every section, in schema order: reproduces the run on its own."""
    body = tomli_w.dumps({s: preset.values[s] for s in SECTIONS})
    lines = [f"# {h}" for h in header.splitlines()] if header else []
    return ("\n".join(lines) + "\n\n" if lines else "") + body


def atomic_write_text(path: Path, text: str) -> None:
    from ..files import temp_beside

    path = Path(path)
    fd, tmp = temp_beside(path)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def update_text(original: str, changes: dict[str, Any]) -> str:
    """Apply ``{"section.key": value}`` to a TOML text, keeping comments, order and formatting."""
    import tomlkit

    doc = tomlkit.parse(original)
    for path, value in changes.items():
        section, key = path.split(".", 1)
        if section not in doc:
            doc[section] = tomlkit.table()
        doc[section][key] = value
    return tomlkit.dumps(doc)

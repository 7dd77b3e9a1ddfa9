"""Add a preset field to a study file as a search dimension (the editor's "add to study" key).

The default distribution comes from the field's declaration and current value: a choice over its
choices (or true / false), an int range around the value, a log range for learning rates (one decade
each side) and for any positive float whose range spans decades, else a uniform range around the value;
always clamped to the field's allowed range. The study file keeps its comments (tomlkit).
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

from ..config.schema import BY_PATH, Field
from ..errors import UserError
from .spec import NOT_SEARCHABLE, parse


def _is_rate(f: Field) -> bool:
    k = f.key.lower()
    return k == "lr" or k.endswith("_lr") or k.startswith("lr_") or "learning_rate" in k


def _lo_hi(f: Field) -> tuple[float, float]:
    lo = -math.inf if f.min is None else float(f.min)
    hi = math.inf if f.max is None else float(f.max)
    return lo, hi


def default_distribution(f: Field, value: Any) -> dict[str, list[Any]]:
    """``{"log": [lo, hi]}`` / ``{"range": ...}`` / ``{"int": ...}`` / ``{"choice": [...]}`` for ``f``."""
    if f.path in NOT_SEARCHABLE:
        raise UserError(f"{f.path} cannot be searched: {NOT_SEARCHABLE[f.path]}")
    if f.choices:
        return {"choice": list(f.choices)}
    if f.type is bool:
        return {"choice": [True, False]}
    if f.type is str:
        raise UserError(f"{f.path} is free text: only numbers and choices can be searched")
    lo, hi = _lo_hi(f)
    if f.type is int:
        v = int(value)
        a, b = (v // 2, v * 2) if v > 0 else (v - 4, v + 4)
        a, b = max(a, math.ceil(lo) + (1 if f.min_exclusive else 0)), min(b, math.floor(hi) - (1 if f.max_exclusive else 0))
        if a >= b:
            raise UserError(f"{f.path}: no room to search around {v} inside {f.range_text()}")
        return {"int": [int(a), int(b)]}
    v = float(value)
    log = v > 0 and (_is_rate(f) or (lo > 0 and hi / max(lo, 1e-300) >= 100))
    if log:
        a, b = v / 10, v * 10
    elif v != 0:
        a, b = v / 2, v * 2
        a, b = min(a, b), max(a, b)
    else:
        a, b = 0.0, 1.0 if hi >= 1 else hi
    eps = 1e-12
    a = max(a, lo + (eps if f.min_exclusive or log else 0) if lo > -math.inf else a)
    b = min(b, hi - (eps if f.max_exclusive else 0) if hi < math.inf else b)
    if log and a <= 0:
        a = v / 10
    if not a < b:
        raise UserError(f"{f.path}: no room to search around {v} inside {f.range_text()}")
    return {("log" if log else "range"): [_round(a), _round(b)]}


def _round(x: float) -> float:
    return float(f"{x:.4g}")


def new_study_text(preset_path: Path, study_path: Path) -> str:
    """A fresh study file whose base is ``preset_path`` (relative to the study file when possible)."""
    try:
        base = os.path.relpath(preset_path.resolve(), study_path.resolve().parent)
    except ValueError:  # another drive
        base = str(preset_path.resolve())
    name = study_path.stem
    return (f"#:schema ./tuilm-study.schema.json\n# A study over {preset_path.name}; run it with: tuilm study run {study_path}\n"
            f"[study]\nname = \"{name}\"\nbase = \"{base}\"\nobjective = \"val_bpb\"\ntrials = 20\nseeds = 3\n"
            "sampler = \"tpe\"\npruner = \"median\"\nbaseline = true\n\n[space]\n")


def add_dimension(study_path: Path, preset_path: Path | None, key: str, value: Any) -> tuple[dict[str, Any], bool]:
    """Add ``key`` (with the default distribution around ``value``) to the study file, creating the file
    when it does not exist. Returns (the distribution, whether the file was created). Raises UserError
    when the key cannot be searched, is already in [space], or the result would not be a valid study."""
    import tomlkit

    from ..config.write import atomic_write_text

    f = BY_PATH.get(key)
    if f is None:
        raise UserError(f"unknown preset key {key!r}")
    dist = default_distribution(f, value)
    created = not study_path.exists()
    if created:
        if preset_path is None:
            raise UserError("save the preset first: a new study file needs a base preset file")
        text = new_study_text(preset_path, study_path)
    else:
        try:
            text = study_path.read_text(encoding="utf-8")
        except OSError as e:
            raise UserError(f"cannot read {study_path}: {e.strerror}") from None
    try:
        doc = tomlkit.parse(text)
    except Exception as e:
        raise UserError(f"{study_path}: not valid TOML ({e})") from None
    space = doc.get("space")
    if space is None:
        space = tomlkit.table()
        doc["space"] = space
    if key in space:
        raise UserError(f"{study_path}: {key} is already a dimension ({space[key].as_string() if hasattr(space[key], 'as_string') else space[key]})")
    if key in doc.get("set", {}):
        raise UserError(f"{study_path}: {key} is set in [set]; remove it there to search it")
    inline = tomlkit.inline_table()
    inline.update(dist)
    space[key] = inline
    new_text = tomlkit.dumps(doc)
    _, problems = parse(new_text, study_path)
    errors = [p for p in problems if p.is_error and (p.path.startswith("space") or p.path == key)]
    if errors:
        raise UserError(f"{study_path}: {errors[0].path}: {errors[0].message}")
    try:
        atomic_write_text(study_path, new_text)
    except OSError as e:
        raise UserError(f"cannot write {study_path}: {e.strerror}") from None
    return dist, created

"""The run directory: the only interface between the trainer and the console. Stdlib only.

    runs/<run-id>/
      preset.toml      the fully resolved preset, frozen at start
      events.jsonl     append-only events (see events.py; read through reader.py)
      events.cache     the reader's column cache of a long run (reader.py; safe to delete)
      stdout.log       human output; never parsed
      trainer.lock     held by the run's trainer for its whole life (see ownership.py)
      checkpoints/     step-NNNNNNN.pt + step-NNNNNNN.json, written atomically
"""

from __future__ import annotations

import errno
import os
import re
import time
from pathlib import Path
from typing import Any

from .errors import UserError

PRESET = "preset.toml"
EVENTS = "events.jsonl"
STDOUT = "stdout.log"
CHECKPOINTS = "checkpoints"
PIDFILE = "trainer.pid"  # the trainer's pid, for people; liveness never trusts it (see LOCKFILE)
LOCKFILE = "trainer.lock"
STOP_REQUEST = "stop_request"  # written before SIGTERM: the end status the stopper wants (e.g. pruned)
STUDY_FILE = "study.json"  # written by a study before the trainer starts: study, trial, seed_index, params

_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._\-]{0,99}")


class RunError(UserError):
    """A run name or directory a user gave that cannot be used."""


def runs_root(root: str | Path | None = None) -> Path:
    """``runs/`` under the working directory unless TUILM_RUNS_DIR or ``root`` says otherwise."""
    return Path(root or os.environ.get("TUILM_RUNS_DIR") or "runs")


def check_run_name(name: str, what: str = "run") -> str:
    if ".." in name or not _NAME_RE.fullmatch(name):
        raise RunError(f"bad {what} name {name!r}: use ASCII letters, digits, '.', '_' and '-' "
                       f"(no path separators, no '..', at most 100 characters)")
    return name


def new_run_dir(name: str, root: str | Path | None = None) -> Path:
    """Create ``runs/<name>-<YYYYmmdd-HHMMSS>`` (suffixed if taken) and return it."""
    check_run_name(name)
    base = runs_root(root)
    if base.exists() and not base.is_dir():
        env = " (TUILM_RUNS_DIR)" if root is None and os.environ.get("TUILM_RUNS_DIR") else ""
        raise RunError(f"the runs folder {base}{env} is a file, not a folder")
    stamp = time.strftime("%Y%m%d-%H%M%S")
    try:
        base.mkdir(parents=True, exist_ok=True)
        for i in range(1000):
            run_id = f"{name}-{stamp}" + (f"-{i}" if i else "")
            path = base / run_id
            try:
                path.mkdir()
            except FileExistsError:
                continue
            (path / CHECKPOINTS).mkdir()
            return path
    except OSError as e:
        raise RunError(f"cannot create a run directory in {base}/: {e.strerror}") from None
    raise RunError(f"could not create a run directory for {name!r} in {base}")


def is_run_dir(p: Path) -> bool:
    return p.is_dir() and ((p / PRESET).exists() or (p / EVENTS).exists())


def find_run(ref: str | Path, root: str | Path | None = None) -> Path:
    """A run by path, by id under runs/, or by unique prefix of an id."""
    p = Path(ref)
    if is_run_dir(p):
        return p
    base = runs_root(root)
    if not isinstance(ref, str) or "/" in ref or ref in (".", ".."):
        what = "is not a run directory (no preset.toml or events.jsonl)" if p.is_dir() else "does not exist"
        raise RunError(f"{str(ref)!r} {what}")
    if ".." not in ref and "\\" not in ref and is_run_dir(base / ref):  # a run folder made by hand: 'tq-ü'
        return base / ref
    check_run_name(ref)
    matches = sorted(q for q in base.glob(f"{ref}*") if is_run_dir(q)) if base.is_dir() else []
    if len(matches) == 1:
        return matches[0]
    if len(matches) > 1:
        more = f" and {len(matches) - 5} more" if len(matches) > 5 else ""
        raise RunError(f"{ref!r} matches several runs: {', '.join(m.name for m in matches[:5])}{more}")
    raise RunError(f"no run {ref!r} (looked in {base}/)")


def require_runs_folder(root: str | Path | None = None) -> Path:
    """The runs folder; a UserError when it is a file (the runs list and the studies list say the same)."""
    base = runs_root(root)
    if base.exists() and not base.is_dir():
        raise UserError(f"the runs folder {base} is a file, not a folder" + (" (TUILM_RUNS_DIR)" if os.environ.get(
            "TUILM_RUNS_DIR") and root is None else ""))
    return base


def list_runs(root: str | Path | None = None) -> list[Path]:
    """Newest made first: by preset.toml's time (written once), not the folder's, which a reader's cache
    or a stop request moves."""
    base = runs_root(root)
    runs = [p for p in base.iterdir() if is_run_dir(p)] if base.is_dir() else []

    def made(p: Path) -> float:  # (a run deleted meanwhile sorts last: it does not end the listing)
        for q in (p / PRESET, p / EVENTS, p):
            try:
                return q.stat().st_mtime
            except OSError:
                pass
        return 0.0

    return sorted(runs, key=made, reverse=True)


def read_preset_text(run_dir: str | Path) -> str:
    """A run's frozen ``preset.toml`` as text; "" when it cannot be read as a preset file (missing, not
    UTF-8, too large, or not a regular file: a FIFO would block the runs list forever)."""
    from .config.load import PresetError, read_preset_text as read_text

    try:
        return read_text(Path(run_dir) / PRESET)
    except PresetError:
        return ""


def read_preset(run_dir: str | Path) -> dict[str, Any]:
    """A run's frozen preset as tables ({} when it cannot be read: see ``read_preset_text``)."""
    import tomllib

    try:
        data = tomllib.loads(read_preset_text(run_dir))
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def shown_path(path: str | Path) -> str:
    """A path for a message: a temp file of ``files.temp_beside`` is named by the file it was for."""
    m = re.fullmatch(r"(.*/)?\.(.+)\.[0-9a-f]{12}\.tmp", str(path))
    return f"{m.group(1) or ''}{m.group(2)}" if m else str(path)


def write_error_message(e: OSError, path: str | Path | None = None) -> str:
    """One wording for a failed write: 'No space left on device while writing PATH' (and the same for
    a read-only file system), else 'cannot write PATH: reason'."""
    where = shown_path(path if path is not None else (e.filename or "a file"))
    if e.errno in (errno.ENOSPC, errno.EDQUOT):
        return f"No space left on device while writing {where}"
    if e.errno == errno.EROFS:
        return f"Read-only file system while writing {where}"
    return f"cannot write {where}: {e.strerror or e}"


# -- requests and study membership (files the trainer reads) --------------------------------------

STOP_STATUSES = ("stopped", "pruned")


def write_stop_request(run_dir: str | Path, status: str = "stopped", reason: str = "") -> None:
    """Ask the trainer (before signalling it) to end with ``status`` and ``reason``."""
    if status not in STOP_STATUSES:
        raise ValueError(f"stop status must be one of {STOP_STATUSES}, got {status!r}")
    from .config.write import atomic_write_text

    atomic_write_text(Path(run_dir) / STOP_REQUEST, f"{status}\n{reason}\n")


def read_stop_request(run_dir: str | Path) -> tuple[str, str]:
    """(status, reason) the stopper asked for; ('stopped', '') when there is no valid request."""
    try:
        lines = (Path(run_dir) / STOP_REQUEST).read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return "stopped", ""
    status = lines[0].strip() if lines else ""
    if status not in STOP_STATUSES:
        return "stopped", ""
    return status, (lines[1].strip()[:500] if len(lines) > 1 else "")


def clear_stop_request(run_dir: str | Path) -> None:
    try:
        (Path(run_dir) / STOP_REQUEST).unlink()
    except OSError:
        pass


def read_study_info(run_dir: str | Path) -> dict[str, Any]:
    """The study membership of a run ({} for a plain run): study, trial, seed_index and trial_params
    (the sampled preset keys; ``params`` in run_start is the parameter count)."""
    import json

    try:
        data = json.loads((Path(run_dir) / STUDY_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    out: dict[str, Any] = {}
    if isinstance(data.get("study"), str):
        out["study"] = data["study"]
    for key in ("trial", "seed_index"):
        if isinstance(data.get(key), int) and not isinstance(data.get(key), bool):
            out[key] = data[key]
    if isinstance(data.get("params"), dict):
        out["trial_params"] = {k: v for k, v in data["params"].items()
                         if isinstance(k, str) and isinstance(v, (int, float, str, bool))}
    return out

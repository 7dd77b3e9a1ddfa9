"""The run directory: the only interface between the trainer and the console. Stdlib only.

    runs/<run-id>/
      preset.toml      the fully resolved preset, frozen at start
      events.jsonl     append-only events (see events.py)
      stdout.log       human output; never parsed
      checkpoints/     step-NNNNNNN.pt + step-NNNNNNN.json, written atomically
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import re
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import UserError
from .events import EventWriter

PRESET = "preset.toml"
EVENTS = "events.jsonl"
STDOUT = "stdout.log"
CHECKPOINTS = "checkpoints"
PIDFILE = "trainer.pid"  # the trainer's pid, for people; liveness never trusts it (see LOCKFILE)
LOCKFILE = "trainer.lock"
STOP_REQUEST = "stop_request"  # written before SIGTERM: the end status the stopper wants (e.g. pruned)
STUDY_FILE = "study.json"  # written by a study before the trainer starts: study, trial, seed_index, params

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._\-]{0,99}$")


class RunError(UserError):
    """A run name or directory a user gave that cannot be used."""


def runs_root(root: str | Path | None = None) -> Path:
    """``runs/`` under the working directory unless TUILM_RUNS_DIR or ``root`` says otherwise."""
    return Path(root or os.environ.get("TUILM_RUNS_DIR") or "runs")


def check_run_name(name: str) -> str:
    if not name or "/" in name or "\\" in name or ".." in name or not _NAME_RE.match(name):
        raise RunError(f"bad run name {name!r}: use letters, digits, '.', '_' and '-' "
                       f"(no path separators, no '..', at most 100 characters)")
    return name


def new_run_dir(name: str, root: str | Path | None = None) -> Path:
    """Create ``runs/<name>-<YYYYmmdd-HHMMSS>`` (suffixed if taken) and return it."""
    check_run_name(name)
    base = runs_root(root)
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


def find_run(ref: str | Path, root: str | Path | None = None) -> Path:
    """A run by path, by id under runs/, or by unique prefix of an id."""
    p = Path(ref)
    if (p / PRESET).exists() or (p / EVENTS).exists():
        return p
    base = runs_root(root)
    if isinstance(ref, str):
        check_run_name(ref)
        if (base / ref).is_dir():
            return base / ref
        matches = sorted(q for q in base.glob(f"{ref}*") if q.is_dir()) if base.is_dir() else []
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            names = ", ".join(m.name for m in matches[:5])
            raise RunError(f"{ref!r} matches several runs: {names}")
    raise RunError(f"no run {str(ref)!r} (looked in {base}/)")


def list_runs(root: str | Path | None = None) -> list[Path]:
    base = runs_root(root)
    if not base.is_dir():
        return []
    runs = [p for p in base.iterdir() if p.is_dir() and ((p / EVENTS).exists() or (p / PRESET).exists())]
    return sorted(runs, key=lambda p: p.stat().st_mtime, reverse=True)


# -- ownership and liveness ----------------------------------------------------------------------
#
# A run is owned by the process holding an exclusive flock on RUN_DIR/trainer.lock, for its whole life:
# the kernel drops the lock when that process dies however it dies (SIGKILL, OOM killer), so a lock
# that can be taken means no trainer is running, and a pid written in a file is never evidence. The
# launcher (launch.spawn_trainer) takes the lock *before* it starts the trainer and hands the locked
# file to it (an inherited descriptor): two launches racing for one run cannot both start a trainer.
# Under torchrun the descriptor goes to the torchrun process (it outlives every rank); a trainer
# started by hand (python -m tuiLM.train, or torchrun without tuilm) takes the lock itself on rank 0.
# The holder's identity (pid, its start time from /proc/PID/stat, host) is written into the lock file,
# and a signal only goes to a pid whose start time still matches while the lock is held.

class RunBusy(RunError):
    """Another trainer owns this run."""


@dataclass(frozen=True)
class TrainerIdentity:
    pid: int
    start_time: int | None  # /proc/PID/stat field 22 (clock ticks since boot); None off Linux
    host: str


def process_start_time(pid: int) -> int | None:
    """When ``pid`` started (field 22 of /proc/PID/stat), or None if it does not exist / is unknown."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            fields = fh.read().rsplit(b")", 1)[1].split()
        return int(fields[19])
    except (OSError, IndexError, ValueError):
        return None


def pid_alive(pid: int) -> bool:
    """Whether some process has this pid (any process: never the test of a trainer, see
    trainer_running; a study uses it for its controller processes)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _is_zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            return fh.read().rsplit(b")", 1)[1].split()[0] == b"Z"
    except (OSError, IndexError):
        return False


def identity_of(pid: int) -> TrainerIdentity:
    return TrainerIdentity(pid, process_start_time(pid), socket.gethostname())


def read_identity(run_dir: str | Path) -> TrainerIdentity | None:
    """The identity the current (or last) lock holder recorded; None when absent or unreadable."""
    try:
        from .events import open_regular

        with open_regular(Path(run_dir) / LOCKFILE) as fh:
            data = json.loads(fh.read(4096) or b"null")
        pid, start, host = data["pid"], data.get("start_time"), data.get("host", "")
        if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
            return None
        if start is not None and not isinstance(start, int):
            return None
        return TrainerIdentity(pid, start, str(host))
    except (OSError, ValueError, TypeError, KeyError, RecursionError):
        return None


def lock_held(run_dir: str | Path) -> bool | None:
    """Whether some process holds RUN_DIR/trainer.lock: True, False, or None when it cannot be told
    (the file is unreadable). A missing lock file means no trainer ever ran under this rule."""
    path = Path(run_dir) / LOCKFILE
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        return False
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return None
    finally:
        os.close(fd)  # closing drops our shared lock, if we got it
    return False


def trainer_running(run_dir: str | Path) -> bool:
    """THE liveness rule: a trainer is running on this run iff the run's lock is held. Every reader
    (runs list, summaries, the app's dashboard, the headless watcher, resume and stop) decides
    "running or dead" here."""
    return lock_held(run_dir) is True


def proven_trainer(run_dir: str | Path) -> TrainerIdentity | None:
    """The identity of this run's trainer when it can be proved: the lock is held, the recorded pid
    exists on this host and started when the record says. None otherwise: no signal may be sent."""
    if not trainer_running(run_dir):
        return None
    ident = read_identity(run_dir)
    if ident is None or ident.host != socket.gethostname() or ident.start_time is None:
        return None
    if process_start_time(ident.pid) != ident.start_time or _is_zombie(ident.pid):
        return None
    return ident


def acquire_run_lock(run_dir: str | Path, tries: int = 10) -> int:
    """Take the run's exclusive lock; returns the open descriptor (closing it releases the lock).
    Raises RunBusy when another trainer holds it, RunError when the file cannot be made."""
    path = Path(run_dir) / LOCKFILE
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o644)
    except OSError as e:
        raise RunError(write_error_message(e, path)) from None
    for i in range(tries):  # a reader's shared lock lasts microseconds: retry briefly before saying busy
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fd
        except BlockingIOError:
            time.sleep(0.02 * (i + 1))
        except OSError as e:
            os.close(fd)
            raise RunError(f"{path}: cannot lock ({e.strerror or e})") from None
    os.close(fd)
    ident = read_identity(run_dir)
    who = f" (pid {ident.pid} on {ident.host})" if ident else ""
    raise RunBusy(f"{Path(run_dir).name}: a trainer is already running{who}; stop it first "
                  f"(tuilm stop {Path(run_dir).name})")


def record_identity(fd: int, ident: TrainerIdentity) -> None:
    """Write the lock holder's identity into the locked file (raises OSError, e.g. on a full disk)."""
    data = json.dumps({"pid": ident.pid, "start_time": ident.start_time, "host": ident.host}).encode() + b"\n"
    os.ftruncate(fd, 0)
    os.pwrite(fd, data, 0)
    os.fsync(fd)


def write_error_message(e: OSError, path: str | Path | None = None) -> str:
    """One wording for a failed write: 'No space left on device while writing PATH' (and the same for
    a read-only file system), else 'cannot write PATH: reason'."""
    where = path if path is not None else (e.filename or "a file")
    if e.errno in (errno.ENOSPC, errno.EDQUOT):
        return f"No space left on device while writing {where}"
    if e.errno == errno.EROFS:
        return f"Read-only file system while writing {where}"
    return f"cannot write {where}: {e.strerror or e}"


def record_death(run_dir: str | Path, reason: str) -> bool:
    """Write run_end(failed, reason) for a trainer that died without one (the launcher's side: the
    trainer cannot). Only when no trainer holds the run and the latest attempt has no run_end; the
    lock is held while writing, so a resume cannot interleave. Returns whether it wrote."""
    run_dir = Path(run_dir)
    try:
        fd = acquire_run_lock(run_dir, tries=1)
    except RunError:
        return False
    try:
        from .reader import read_events

        events = read_events(run_dir / EVENTS)
        last_start = max((i for i, e in enumerate(events) if e.get("kind") == "run_start"), default=-1)
        if any(e.get("kind") == "run_end" for e in events[last_start + 1:]):
            return False
        if last_start < 0 and any(e.get("kind") == "run_end" for e in events):
            return False
        step = 0
        for e in events[last_start + 1 if last_start >= 0 else 0:]:
            if e.get("kind") in ("train", "checkpoint") and isinstance(e.get("step"), int):
                step = max(step, e["step"])
        if last_start >= 0:
            step = max(step, events[last_start].get("step", 0))
        with EventWriter(run_dir / EVENTS) as w:
            w.write("run_end", status="failed", step=step, reason=reason, source="launcher")
        return True
    except OSError:
        return False
    finally:
        os.close(fd)


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

"""Who owns a run: the trainer holding RUN_DIR/trainer.lock. Stdlib only.

See the comment below for the rule; ``reader.live_state`` turns it into a run's state.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path

from .events import EventWriter
from .runs import EVENTS, LOCKFILE, RunError, write_error_message

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


def controller_alive(pid: int, started: object) -> bool:
    """Whether the study controller that recorded (``pid``, ``started``: its process_start_time) still
    runs. The start time proves the pid was not reused (any process naming tuilm, one of the study's
    own trainers included, passed the old test); a trial recorded without one falls back to that test."""
    if not pid_alive(pid) or _is_zombie(pid):  # (a killed controller not yet reaped is gone too)
        return False
    now = process_start_time(pid)
    if isinstance(started, int) and now is not None:
        return now == started
    try:
        return b"tuilm" in Path(f"/proc/{pid}/cmdline").read_bytes().lower()
    except OSError:
        return True  # cannot tell (not Linux): assume it is, never take over a live controller's trial


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
        import numpy as np

        from .reader import read_run

        reader = read_run(run_dir)  # the resume rule applied: what the latest attempt reached
        if reader.run_end is not None:
            return False
        steps = reader.tables["train"].col("step")
        steps = [] if steps is None else steps[np.isfinite(steps)].tolist()
        step = int(max([0, (reader.run_start or {}).get("step", 0), *reader.checkpoints, *steps]))
        with EventWriter(run_dir / EVENTS) as w:
            w.write("run_end", status="failed", step=step, reason=reason, source="launcher")
        return True
    except OSError:
        return False
    finally:
        os.close(fd)

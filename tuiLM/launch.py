"""Starting, watching and stopping trainer processes. No torch import here: the app imports this.

The trainer always runs in its own process (``python -m tuiLM.train RUN_DIR``); the run directory is
the only interface between it and the console. Public API (used by the CLI and the Textual app):

``create_run(preset, name=None, root=None) -> Path``
    Validate ``preset`` (errors raise ``UserError`` listing every problem), create
    ``runs/<name>-<timestamp>/`` (``name`` defaults to ``preset.run.name``; checked by
    ``runs.check_run_name``, so never a path outside runs/) and write the frozen, fully resolved
    ``preset.toml``. ``root`` overrides the runs folder (else ``$TUILM_RUNS_DIR`` or ``./runs``).

``trainer_command(run_dir, nproc=1, resume=False) -> list[str]``
    The argv that trains ``run_dir``: ``[sys.executable, "-m", "tuiLM.train", RUN_DIR]`` (+ ``--resume``),
    or ``[sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", N, "-m",
    "tuiLM.train", RUN_DIR]`` when ``nproc > 1``.

``spawn_trainer(run_dir, nproc=1, resume=False) -> subprocess.Popen``
    Start that command detached in a new session (the parent's Ctrl-C does not reach it), stdout and
    stderr appended to ``RUN_DIR/stdout.log``, its pid written to ``RUN_DIR/trainer.pid``. Returns at
    once; watch ``RUN_DIR/events.jsonl`` (``reader.EventTail``) for progress and ``run_end``.

``stop_trainer(target, wait=0.0, status="stopped", reason="", run_dir=None) -> bool``
    ``target`` is a run directory or the ``Popen``. ``status`` "pruned" (with ``reason``) is written to
    ``RUN_DIR/stop_request`` first (``run_dir`` names the directory when ``target`` is a Popen), so the
    trainer ends ``run_end(pruned)`` instead of ``stopped``. Sends SIGTERM to the trainer (under torchrun: to
    each rank): it finishes its current step, writes a checkpoint and ``run_end(stopped)``, and exits 0.
    ``wait > 0`` waits up to that many seconds for the process to exit. Returns False when no live
    trainer was found.

``trainer_alive(run_dir) -> bool``
    Whether the pid in ``RUN_DIR/trainer.pid`` is a live process.

The headless display (``tuilm run --headless``: progress, eval lines, the final summary) is in
``headless.py``; this module only creates, starts, identifies and stops trainers.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from .config.validate import PATH_FIELDS
from .errors import UserError
from .runs import LOCKFILE, PIDFILE, PRESET, STDOUT, STOP_REQUEST, check_run_name, new_run_dir, write_error_message, write_stop_request
from .ownership import acquire_run_lock, identity_of, proven_trainer, record_identity, trainer_running

PACKAGE_ROOT = Path(__file__).resolve().parents[1]

# -- creating, spawning and stopping ------------------------------------------------------------

def create_run(preset: Any, name: str | None = None, root: str | Path | None = None) -> Path:
    from .config.validate import validate
    from .config.write import atomic_write_text, dumps_resolved

    problems = [p for p in validate(preset) if p.is_error]
    if problems:
        raise UserError("the preset has errors:\n" + "\n".join(f"  {p}" for p in problems))
    run_name = check_run_name(preset.run.name if name is None else name)
    require_data(preset)
    preset = _record_tokenizer(_absolute_paths(preset))
    run_dir = new_run_dir(run_name, root)
    header = "Frozen, fully resolved preset of this run (written at start; reproduces it)."
    if preset.source is not None:
        header += f"\nsource: {preset.source}"
    atomic_write_text(run_dir / PRESET, dumps_resolved(preset, header=header))
    return run_dir


def require_data(preset: Any, what: str = "nothing was started") -> None:
    """A UserError when a path setting names nothing on this machine (a warning in validate: a preset
    may be meant for another machine; a run or a study here would only fail at its first step)."""
    from .config.validate import missing_paths

    for key, value in missing_paths(preset)[:1] if preset is not None else ():
        raise UserError(f"{key} {value!r}: no such file or folder here: {what}")


def _absolute_paths(preset: Any) -> Any:
    """Relative data paths made absolute (from the working directory, else the preset's folder), so the
    frozen preset still finds its data when the run is resumed or sampled from elsewhere."""
    import glob

    changes = {}
    for key in PATH_FIELDS:
        value = preset.get(key).strip()
        if not value or Path(value).expanduser().is_absolute():
            continue
        bases = [Path.cwd()] + ([Path(preset.source).resolve().parent] if preset.source is not None else [])
        for base in bases:
            candidate = base / Path(value).expanduser()
            if candidate.exists() or glob.glob(str(candidate)):
                changes[key] = str(candidate.resolve()) if candidate.exists() else str(candidate)
                break
    tb = preset.get("system.tensorboard_dir").strip()
    if tb:  # an output folder, made from where the run starts (a resume from elsewhere still finds it)
        from .export import require_tensorboardx

        require_tensorboardx()
        changes["system.tensorboard_dir"] = str((Path.cwd() / Path(tb).expanduser()).resolve())
    return preset.with_values(changes) if changes else preset


def _record_tokenizer(preset: Any) -> Any:
    """A nanoGPT folder with a meta.pkl trains on its character vocabulary whatever data.tokenizer
    says (byte is the default): the frozen preset records what is really used."""
    if preset.data.source != "nanogpt" or preset.data.tokenizer != "byte":
        return preset
    if not (Path(preset.data.path).expanduser() / "meta.pkl").is_file():
        return preset
    return preset.with_values({"data.tokenizer": "char"})


def trainer_command(run_dir: str | Path, nproc: int = 1, resume: bool = False) -> list[str]:
    if nproc < 1:
        raise UserError(f"nproc must be at least 1 (got {nproc})", exit_code=2)
    tail = ["-m", "tuiLM.train", str(run_dir)] + (["--resume"] if resume else [])
    if nproc == 1:
        return [sys.executable, *tail]
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(nproc),
            *tail]


LOCK_FD_ENV = "TUILM_RUN_LOCK_FD"  # the trainer inherits the locked RUN_DIR/trainer.lock as this fd


def spawn_trainer(run_dir: str | Path, nproc: int = 1, resume: bool = False,
                  env_extra: dict[str, str] | None = None) -> subprocess.Popen:
    """``env_extra``: variables for the trainer only (a study gives each trial its CUDA_VISIBLE_DEVICES)."""
    run_dir = Path(run_dir)
    if not (run_dir / PRESET).is_file():
        raise UserError(f"{run_dir}: not a run directory (no {PRESET})")
    # the lock first: a second run/resume racing this one fails here, before anything starts
    fd = acquire_run_lock(run_dir)
    try:
        env = dict(os.environ)
        env["PYTHONUNBUFFERED"] = "1"
        # The trainer must import this same tuiLM even when it is not installed (a source checkout).
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(PACKAGE_ROOT), env.get("PYTHONPATH", "")) if p)
        env.update(env_extra or {})
        env[LOCK_FD_ENV] = str(fd)
        try:
            log = open(run_dir / STDOUT, "ab")
        except OSError as e:
            raise UserError(write_error_message(e, run_dir / STDOUT)) from None
        with log:
            proc = subprocess.Popen(trainer_command(run_dir, nproc, resume), stdout=log, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, start_new_session=True, env=env, pass_fds=(fd,))
        try:  # nothing may run that cannot be tracked: without its identity on disk, the trainer goes
            record_identity(fd, identity_of(proc.pid))
            _write_pidfile(run_dir, proc.pid)
        except OSError as e:
            _kill_group(proc)
            proc.wait()
            where = e.filename or run_dir / LOCKFILE  # os.pwrite on the lock file names no file
            raise UserError(write_error_message(e, where) + " (the trainer was not started)") from None
    finally:
        os.close(fd)  # the trainer holds its own copy of the locked file for its whole life
    return proc


def _write_pidfile(run_dir: Path, pid: int) -> None:
    from .config.write import atomic_write_text

    try:
        atomic_write_text(run_dir / PIDFILE, f"{pid}\n")
    except OSError as e:
        if e.filename is None:
            e.filename = str(run_dir / PIDFILE)
        raise


def trainer_alive(run_dir: str | Path) -> bool:
    """Whether a trainer owns the run (its lock is held): ownership.trainer_running."""
    return trainer_running(run_dir)


def _run_dir_of(proc: subprocess.Popen) -> Path | None:
    args = [str(a) for a in (proc.args if isinstance(proc.args, (list, tuple)) else [])]
    if "tuiLM.train" in args:
        i = args.index("tuiLM.train") + 1
        if i < len(args):
            return Path(args[i])
    return None


def stop_trainer(target: str | Path | subprocess.Popen, wait: float = 0.0, status: str = "stopped",
                 reason: str = "", run_dir: str | Path | None = None) -> bool:
    """SIGTERM this run's trainer (each rank under torchrun), after writing RUN_DIR/stop_request when
    ``status``/``reason`` ask for more than a plain stop (runs.write_stop_request; e.g. ``pruned``).

    ``target`` is a run directory or the ``Popen`` this process spawned (then ``run_dir`` names its
    run; found from its command line when omitted). A signal only ever goes to a process proved to
    be the run's trainer (ownership.proven_trainer: the run's lock is held and the pid recorded by its
    holder still has the recorded start time), or to our own unreaped child. Returns False when no
    such trainer is running; nothing is written then."""
    if isinstance(target, subprocess.Popen):
        if target.poll() is not None:
            return False
        pid: int = target.pid  # our child, not reaped yet: its pid cannot have been reused
        run_dir = Path(run_dir) if run_dir is not None else _run_dir_of(target)
    else:
        run_dir = Path(target)
        ident = proven_trainer(run_dir)
        if ident is None:
            return False
        pid = ident.pid
    if status != "stopped" or reason:
        if run_dir is None:
            raise ValueError("stop_trainer: a stop status other than 'stopped' needs the run directory")
        try:
            write_stop_request(run_dir, status, reason)
        except OSError as e:  # the trainer would end with the wrong status: say so, signal nothing
            if status != "stopped":  # (a plain stop's reason is only words: stop it all the same)
                raise UserError(write_error_message(e, run_dir / STOP_REQUEST)) from None
    try:
        for target_pid in _trainer_pids(pid):
            os.kill(target_pid, signal.SIGTERM)
    except ProcessLookupError:
        return False
    if wait > 0:
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if isinstance(target, subprocess.Popen):
                if target.poll() is not None:
                    break
            elif not trainer_running(run_dir):
                break
            time.sleep(0.05)
    return True


def stop_command(run_dir: Path, wait: float, console: Any) -> int:
    """``tuilm stop RUN``: 0 when a trainer was asked to stop (and, with --wait, has stopped)."""
    ident = proven_trainer(run_dir)
    if ident is None:
        held = trainer_running(run_dir)
        raise UserError(f"{run_dir.name}: no running trainer to stop" if not held else
                        f"{run_dir.name}: the lock is held but its holder cannot be proved to be this run's "
                        f"trainer (another host, or an unreadable {LOCKFILE}); nothing was signalled")
    if not stop_trainer(run_dir, wait=wait, reason="tuilm stop"):
        raise UserError(f"{run_dir.name}: the trainer exited before it could be stopped")
    console.print(f"stopping {run_dir.name} (pid {ident.pid}): it finishes its step and writes a checkpoint",
                  highlight=False, markup=False)
    if wait > 0:
        if trainer_running(run_dir):
            console.print(f"still running after {wait:g} s", highlight=False)
            return 1
        console.print("stopped", highlight=False)
    return 0


def _trainer_pids(pid: int) -> list[int]:
    """The processes that train: the trainer itself, or under torchrun its worker processes.

    Signalling the workers directly lets each finish its step and checkpoint; torchrun then sees them
    exit 0. Signalling torchrun instead would make it forward SIGTERM and SIGKILL stragglers after 30 s.
    """
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return [pid]
    if b"torch.distributed.run" not in cmdline and not any(c.endswith(b"torchrun") for c in cmdline):
        return [pid]
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_bytes().rsplit(b")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == pid:  # field 4 of /proc/PID/stat: the parent pid
            children.append(int(stat.parent.name))
    return children or [pid]


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def death_reason(run_dir: str | Path, code: int | None) -> str:
    """Why a trainer ended without run_end, from its exit code. SIGKILL nobody asked for is what the
    kernel's out-of-memory killer sends: say so with the run's memory estimate and the machine's,
    unless the trainer's last reported resident memory was far below the host's (kill -9 by hand)."""
    if code is None:
        return "the trainer is gone without writing run_end"
    if code in (-signal.SIGKILL, 128 + signal.SIGKILL):
        from .reader import read_run

        try:
            reader = read_run(run_dir)  # (once, for both figures)
        except Exception:  # the figures are a courtesy: never hide the death
            reader = None
        rss, host = _last_resident(reader)
        if rss is not None and host and rss < OOM_SHARE * host:  # (a SIGKILL by hand read as out of memory)
            # its samples miss spikes and other processes' memory: say what is known, claim neither cause
            return (f"killed by SIGKILL (by hand, or the out-of-memory killer: its last resident memory was "
                    f"{rss:.1f} GiB of the machine's {host:.1f} GiB)")
        est, machine = memory_figures(run_dir, reader)
        figures = ", ".join(x for x in (f"estimate {est:.1f} GiB" if est else "",
                                        f"machine {machine:.1f} GiB" if machine else "") if x)
        return f"killed (likely out of memory{': ' + figures if figures else ''})"
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"the trainer exited with code {code} without writing run_end"


OOM_SHARE = 0.5  # a trainer killed while resident in less than this share of the host's memory: not the OOM killer


def _last_resident(reader: Any) -> tuple[float | None, float | None]:
    """(the trainer's resident GiB at its latest train event, the host's memory GiB); None where unknown."""
    import numpy as np

    from .machine import host_memory_bytes

    rss = reader.tables["train"].col("rss_gib") if reader is not None else None
    seen = rss[np.isfinite(rss)] if rss is not None else np.zeros(0)
    host = host_memory_bytes()
    return (float(seen[-1]) if seen.size else None), (host / 2**30 if host else None)


def memory_figures(run_dir: str | Path, reader: Any = None) -> tuple[float | None, float | None]:
    """(estimated peak GiB, machine memory GiB) of a run: what its run_start recorded, else computed
    from the frozen preset and this machine. ``reader``: the run already read (reader.read_run)."""
    from .events import float_or_none
    from .reader import read_run
    from .machine import device_memory, resolve_device

    start = (reader or read_run(run_dir)).run_start or {}  # the latest attempt's
    est = float_or_none((start.get("estimate") or {}).get("total_bytes"))
    machine = float_or_none(start.get("machine_mem_gib"))
    est_gib = est / 2**30 if est else None
    if est_gib is None or machine is None:
        try:
            from .config.load import load
            from .estimate import estimate

            preset, _ = load(Path(run_dir) / PRESET)
            device = resolve_device(preset.system.device) or "cpu"
            if est_gib is None:
                est_gib = estimate(preset, device=device).total_bytes / 2**30
            if machine is None:
                mem = device_memory(device)
                machine = mem.gib if mem else None
        except Exception:  # figures are a courtesy: an unreadable preset must not hide the death
            pass
    return est_gib, machine



__all__ = ["create_run", "death_reason", "spawn_trainer", "stop_trainer", "trainer_alive", "trainer_command"]

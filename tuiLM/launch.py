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
    once; watch ``RUN_DIR/events.jsonl`` (``events.EventTail``) for progress and ``run_end``.

``stop_trainer(target, wait=0.0, status="stopped", reason="", run_dir=None) -> bool``
    ``target`` is a run directory or the ``Popen``. ``status`` "pruned" (with ``reason``) is written to
    ``RUN_DIR/stop_request`` first (``run_dir`` names the directory when ``target`` is a Popen), so the
    trainer ends ``run_end(pruned)`` instead of ``stopped``. Sends SIGTERM to the trainer (under torchrun: to
    each rank): it finishes its current step, writes a checkpoint and ``run_end(stopped)``, and exits 0.
    ``wait > 0`` waits up to that many seconds for the process to exit. Returns False when no live
    trainer was found.

``trainer_alive(run_dir) -> bool``
    Whether the pid in ``RUN_DIR/trainer.pid`` is a live process.

``start_run(preset, name=None, nproc=1, console=None) -> int``
    Headless: create + spawn + Rich progress (step, ETA, tokens/s, latest loss and val_bpb) until
    ``run_end``; eval lines and a final summary (best val_bpb, time, artifact size). Ctrl-C stops the
    trainer cleanly and waits for it. Returns the exit code: 0 completed/stopped, 1 failed (the tail of
    stdout.log is printed).

``resume_run(run_dir, nproc=1, console=None) -> int``
    The same for ``python -m tuiLM.train RUN_DIR --resume`` (continues from the latest checkpoint).

``watch_run(run_dir, proc, console) -> int``
    The progress/summary loop shared by the two above, for a trainer you spawned yourself.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from .errors import UserError
from .events import EventTail, to_float
from .runs import (CHECKPOINTS, EVENTS, LOCKFILE, PIDFILE, PRESET, STDOUT, STOP_REQUEST, acquire_run_lock,
                   check_run_name, identity_of, new_run_dir, proven_trainer, record_death,
                   record_identity, trainer_running, write_error_message, write_stop_request)

PACKAGE_ROOT = Path(__file__).resolve().parents[1]
_POLL_S = 0.2
PLAIN_EVERY_S = 30.0  # the longest a piped headless run stays silent while it makes progress


# -- creating and spawning -----------------------------------------------------------------------

def create_run(preset: Any, name: str | None = None, root: str | Path | None = None) -> Path:
    from .config.validate import validate
    from .config.write import atomic_write_text, dumps_resolved

    problems = [p for p in validate(preset) if p.is_error]
    if problems:
        raise UserError("the preset has errors:\n" + "\n".join(f"  {p}" for p in problems))
    run_name = check_run_name(preset.run.name if name is None else name)
    preset = _record_tokenizer(_absolute_paths(preset))
    run_dir = new_run_dir(run_name, root)
    header = "Frozen, fully resolved preset of this run (written at start; reproduces it)."
    if preset.source is not None:
        header += f"\nsource: {preset.source}"
    atomic_write_text(run_dir / PRESET, dumps_resolved(preset, header=header))
    return run_dir


PATH_FIELDS = ("data.path", "data.val_path", "data.tokenizer_model")


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
    """Whether a trainer owns the run (its lock is held): runs.trainer_running."""
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
    be the run's trainer (runs.proven_trainer: the run's lock is held and the pid recorded by its
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
    if not stop_trainer(run_dir, wait=wait):
        raise UserError(f"{run_dir.name}: the trainer exited before it could be stopped")
    console.print(f"stopping {run_dir.name} (pid {ident.pid}): it finishes its step and writes a checkpoint",
                  highlight=False)
    if wait > 0:
        if trainer_running(run_dir):
            console.print(f"still running after {wait:g} s", highlight=False)
            return 1
        console.print("stopped", highlight=False)
    return 0


# -- headless progress ---------------------------------------------------------------------------

def start_run(preset: Any, name: str | None = None, nproc: int = 1, console: Any = None) -> int:
    console = _console(console)
    run_dir = create_run(preset, name=name)
    console.print(f"run [bold]{run_dir.name}[/]  ({run_dir})", highlight=False)
    return watch_run(run_dir, spawn_trainer(run_dir, nproc=nproc), console)


def resume_run(run_dir: str | Path, nproc: int = 1, console: Any = None) -> int:
    console = _console(console)
    run_dir = Path(run_dir)
    if not (run_dir / PRESET).is_file():
        raise UserError(f"{run_dir}: not a run directory (no {PRESET})")
    ckpts = sorted((run_dir / CHECKPOINTS).glob("step-*.pt"))
    console.print(f"resuming [bold]{run_dir.name}[/] from "
                  f"{ckpts[-1].name if ckpts else 'the start (no checkpoint yet)'}", highlight=False)
    tail = EventTail(run_dir / EVENTS)
    tail.poll()  # only what the resumed trainer writes counts
    return watch_run(run_dir, spawn_trainer(run_dir, nproc=nproc, resume=True), console, tail=tail)


def _console(console: Any) -> Any:
    if console is None:
        from rich.console import Console

        console = Console()
    return console


def watch_run(run_dir: str | Path, proc: subprocess.Popen, console: Any, tail: EventTail | None = None) -> int:
    run_dir = Path(run_dir)
    tail = tail or EventTail(run_dir / EVENTS)
    state = watch_state()
    # Rich's live bar only draws on a terminal: piped to a file or a CI log it would show nothing
    # until the end, so there the same figures go out as plain lines.
    display = _LiveProgress(console) if console.is_terminal else _PlainProgress(console)
    stopping = False
    with display:
        while True:
            try:
                for ev in tail.poll():
                    _fold(ev, state, display.console)
                if state["end"] is None and proc.poll() is not None:
                    for ev in tail.poll():  # the last events may have landed just before exit
                        _fold(ev, state, display.console)
                    break
                display.update(state, "stopping" if stopping else "training")
                if state["end"] is not None:
                    break
                time.sleep(_POLL_S)
            except KeyboardInterrupt:
                if stopping:  # a second Ctrl-C: stop waiting for a clean checkpoint
                    _kill_group(proc)
                    state["killed"] = True
                    break
                stopping = True
                display.console.print("stopping: the trainer finishes its step and writes a checkpoint "
                                      "(Ctrl-C again to kill it)")
                stop_trainer(proc)
    try:
        code = proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        code = proc.wait()
    return _final(run_dir, state, code, console)


def watch_state() -> dict[str, Any]:
    """What watch_run folds events into (``_fold``)."""
    return {"max_steps": 0, "step": 0, "start_step": 0, "loss": None, "val_bpb": None, "best_bpb": None,
            "best_loss": None, "tps": None, "end": None, "t0": time.monotonic(), "elapsed_before": 0.0,
            "mfu": None, "perf": []}


def _info(state: dict[str, Any]) -> str:
    return "  ".join(x for x in (
        f"{state['tps']:,.0f} tok/s" if state["tps"] else "",
        f"MFU {state['mfu']:.1%}" if state["mfu"] is not None else "",
        f"loss {state['loss']:.4f}" if state["loss"] is not None else "",
        f"val_bpb {state['val_bpb']:.4f}" if _finite(state["val_bpb"]) else "") if x)


class _LiveProgress:
    """A Rich progress bar that redraws in place (a terminal)."""

    def __init__(self, console: Any) -> None:
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
        from rich.table import Column

        # on a narrow terminal the bar and then the metrics give way: step and times stay whole
        fixed = lambda: Column(no_wrap=True)  # noqa: E731
        columns = (TextColumn("[bold]{task.description}", table_column=fixed()),
                   BarColumn(bar_width=None if console.width >= 120 else 12),
                   TextColumn("{task.completed}/{task.total}", table_column=fixed()),
                   TimeElapsedColumn(table_column=fixed()), TextColumn("eta", table_column=fixed()),
                   TimeRemainingColumn(table_column=fixed()),
                   TextColumn("{task.fields[info]}", table_column=Column(no_wrap=True, overflow="ellipsis")))
        self.progress = Progress(*columns, console=console, transient=False, refresh_per_second=4)
        self.console = self.progress.console
        self.task = self.progress.add_task("starting", total=None, info="")

    def __enter__(self) -> "_LiveProgress":
        self.progress.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.progress.__exit__(*exc)

    def update(self, state: dict[str, Any], description: str) -> None:
        self.progress.update(self.task, description=description, total=state["max_steps"] or None,
                             completed=state["step"], info=_info(state))


class _PlainProgress:
    """Progress as plain lines for a pipe or a log file: one line each time the run passes another
    tenth of its steps, and at least every ``PLAIN_EVERY_S`` seconds while steps advance."""

    def __init__(self, console: Any) -> None:
        self.console = console
        self.last_step = -1
        self.last_tenth = -1
        self.last_time = time.monotonic()

    def __enter__(self) -> "_PlainProgress":
        return self

    def __exit__(self, *exc: Any) -> None:
        return None

    def update(self, state: dict[str, Any], description: str) -> None:
        step, max_steps = state["step"], state["max_steps"]
        if step <= self.last_step or step <= state["start_step"]:
            return
        tenth = 10 * step // max_steps if max_steps else -1
        now = time.monotonic()
        if tenth <= self.last_tenth and now - self.last_time < PLAIN_EVERY_S:
            return
        self.last_step, self.last_tenth, self.last_time = step, max(tenth, self.last_tenth), now
        from .units import fmt_duration

        ran = now - state["t0"]
        parts = [f"{description} step {step:,}" + (f"/{max_steps:,} ({step / max_steps:.0%})" if max_steps else "")]
        parts.append(f"elapsed {fmt_duration(state['elapsed_before'] + ran)}")
        done = step - state["start_step"]
        if max_steps and done > 0 and ran > 0:
            parts.append(f"eta {fmt_duration((max_steps - step) * ran / done)}")
        info = _info(state)
        self.console.print(" · ".join(parts) + (f"  {info}" if info else ""), highlight=False, soft_wrap=True)


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


def _num(value: Any) -> float | None:
    try:
        return to_float(value)
    except (TypeError, ValueError):
        return None


def _finite(x: float | None) -> bool:
    return x is not None and x == x and x not in (float("inf"), float("-inf"))


def _fmt4(x: float | None) -> str:
    return f"{x:.4f}" if _finite(x) else "-"


def _fold(ev: dict[str, Any], state: dict[str, Any], console: Any) -> None:
    from rich.markup import escape

    kind = ev.get("kind")
    if kind == "run_start":
        state["max_steps"] = ev.get("max_steps", 0)
        state["step"] = state["start_step"] = ev.get("step", 0)
        state["first"] = True
        state["t0"] = time.monotonic()
        state["elapsed_before"] = _num(ev.get("elapsed_before_s")) or 0.0
        console.print(f"{ev.get('arch', '?')} · {ev.get('params', 0):,} params · {ev.get('device', '?')} "
                      f"{ev.get('dtype', '')} · world {ev.get('world_size', 1)} · "
                      f"{ev.get('tokens_per_step', 0):,} tokens/step", highlight=False, markup=False)
    elif kind == "train":
        state["step"] = ev.get("step", state["step"])
        state["loss"] = _num(ev.get("loss"))
        state["tps"] = _num(ev.get("tokens_per_s"))
        state["mfu"] = _num(ev.get("mfu"))
        # (first window of this attempt, mfu, flops_per_s): the summary's medians leave warm-up out
        state["perf"].append((state.pop("first", False), _num(ev.get("mfu")), _num(ev.get("flops_per_s"))))
    elif kind == "eval":
        bpb = _num(ev.get("val_bpb"))
        state["val_bpb"] = bpb
        if _finite(bpb) and (state["best_bpb"] is None or bpb < state["best_bpb"]):
            state["best_bpb"] = bpb
        loss = _num(ev.get("val_loss"))
        if _finite(loss) and (state["best_loss"] is None or loss < state["best_loss"]):
            state["best_loss"] = loss
        console.print(f"step {ev.get('step')}: val_loss {_fmt4(loss)}  val_bpb {_fmt4(bpb)}", highlight=False,
                      markup=False)
    elif kind == "sample":
        text = repr(f"{ev.get('prompt', '')}{ev.get('text', '')}")
        console.print(f"[dim]sample @ {ev.get('step')}:[/] {escape(text[:300])}", highlight=False)
    elif kind == "log" and ev.get("level") in ("warning", "error") and ev.get("source") != "preset":
        if ev.get("level") == "error":
            state["error"] = str(ev.get("message"))
        console.print(f"[yellow]{escape(str(ev.get('level')))}[/]: {escape(str(ev.get('message')))}", highlight=False)
    elif kind == "run_end":
        state["end"] = ev
        state["step"] = ev.get("step", state["step"])


def death_reason(run_dir: str | Path, code: int | None) -> str:
    """Why a trainer ended without run_end, from its exit code. SIGKILL nobody asked for is what the
    kernel's out-of-memory killer sends: say so with the run's memory estimate and the machine's."""
    if code is None:
        return "the trainer is gone without writing run_end"
    if code in (-signal.SIGKILL, 128 + signal.SIGKILL):
        est, machine = memory_figures(run_dir)
        figures = ", ".join(x for x in (f"estimate {est:.1f} GiB" if est else "",
                                        f"machine {machine:.1f} GiB" if machine else "") if x)
        return f"killed (likely out of memory{': ' + figures if figures else ''})"
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"the trainer exited with code {code} without writing run_end"


def memory_figures(run_dir: str | Path) -> tuple[float | None, float | None]:
    """(estimated peak GiB, machine memory GiB) of a run: what its run_start recorded, else computed
    from the frozen preset and this machine."""
    from .events import read_events
    from .machine import device_memory, resolve_device

    start: dict[str, Any] = {}
    for ev in read_events(Path(run_dir) / EVENTS):
        if ev.get("kind") == "run_start":
            start = ev
    est = _num((start.get("estimate") or {}).get("total_bytes"))
    machine = _num(start.get("machine_mem_gib"))
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


def _final(run_dir: Path, state: dict[str, Any], code: int, console: Any) -> int:
    from .units import fmt_bytes, fmt_duration, fmt_flops

    end = state["end"]
    if end is None:
        if state.get("killed"):
            reason = "killed after a second Ctrl-C"
        elif code and code > 0 and state.get("error"):
            reason = state["error"]  # the attempt failed before it started and said why in a log event
        else:
            reason = death_reason(run_dir, code)
        status = "failed"
        record_death(run_dir, reason)
    else:
        status, reason = end.get("status", "failed"), end.get("reason", "")
    colour = {"completed": "green", "stopped": "yellow", "pruned": "magenta"}.get(status, "red")
    parts = [f"[bold {colour}]{status}[/] at step {state['step']}/{state['max_steps']}"]
    best = _num((end or {}).get("best_val_bpb"))
    best = best if _finite(best) else state["best_bpb"]
    best_loss = _num((end or {}).get("best_val_loss"))
    best_loss = best_loss if _finite(best_loss) else state["best_loss"]
    if _finite(best):
        parts.append(f"best val_bpb {best:.4f}")
    elif _finite(best_loss):  # token ids of unknown byte length: bpb cannot be computed
        parts.append(f"best val_loss {best_loss:.4f}")
    else:
        parts.append("no eval ran")
    # run_end's figures cover every attempt of a resumed run; without one, this attempt is all we saw
    elapsed = _num((end or {}).get("elapsed_s"))
    if elapsed is None:
        elapsed = state["elapsed_before"] + time.monotonic() - state["t0"]
    tokens = (end or {}).get("tokens")
    if isinstance(tokens, int) and tokens > 0 and elapsed > 0:
        parts.append(f"mean {tokens / elapsed:,.0f} tok/s")
    parts.append(f"time {fmt_duration(elapsed)}")
    perf = [p for p in state["perf"] if not p[0]] or state["perf"]
    mfus, flops = [p[1] for p in perf if p[1] is not None], [p[2] for p in perf if p[2] is not None]
    if mfus:
        parts.append(f"MFU {_median(mfus):.1%}")
    elif flops:
        parts.append(fmt_flops(_median(flops)))
    if isinstance((end or {}).get("artifact_bytes"), int):
        parts.append(f"artifact {end['artifact_bytes']:,} bytes ({fmt_bytes(end['artifact_bytes'])})")
    console.print(" · ".join(parts), highlight=False, soft_wrap=True)
    if reason:
        console.print(f"reason: {reason}", highlight=False, markup=False, soft_wrap=True)
    if status == "failed":
        console.print(f"last lines of {run_dir / STDOUT}:", highlight=False, soft_wrap=True)
        console.print(_tail_text(run_dir / STDOUT, 20), highlight=False, markup=False)
        return 1
    console.print(f"run directory: {run_dir}", highlight=False, soft_wrap=True)
    console.print(f"next: tuilm open {run_dir.name} · tuilm runs list · tuilm sample {run_dir.name}",
                  highlight=False, markup=False, soft_wrap=True)
    return 0


def _median(values: list[float]) -> float:
    import statistics

    return statistics.median(values)


def _tail_text(path: Path, lines: int) -> str:
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - 16384))
            data = fh.read().decode("utf-8", "replace")
    except OSError:
        return "(no output)"
    return "\n".join(data.splitlines()[-lines:]) or "(no output)"


__all__ = ["create_run", "resume_run", "spawn_trainer", "start_run", "stop_trainer", "trainer_alive",
           "trainer_command", "watch_run"]

"""``tuilm run --headless``: the trainer's progress in this terminal (a Rich live bar on a terminal,
plain lines when piped), eval lines, samples, warnings and the final summary. Process control (create,
spawn, stop) is ``launch``'s; this module only watches a run directory and prints.

``start_run(preset, name=None, nproc=1, console=None) -> int``
    Create + spawn + watch until ``run_end``. Ctrl-C (or SIGTERM) stops the trainer cleanly and waits for
    it (a second one kills it). Returns the exit code: 0 completed (or stopped from elsewhere: ``tuilm
    stop``), 130 / 143 stopped here by Ctrl-C / SIGTERM (the shell's 128 + signal), 1 failed (the tail
    of stdout.log is printed).
``resume_run(run_dir, nproc=1, console=None) -> int``
    The same for ``python -m tuiLM.train RUN_DIR --resume``.
``watch_run(run_dir, proc, console) -> int``
    The progress/summary loop shared by the two, for a trainer you spawned yourself.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path
from typing import Any

from .errors import UserError
from .events import to_float
from .reader import EventTail, summarize
from .launch import _kill_group, create_run, death_reason, spawn_trainer, stop_trainer
from .runs import CHECKPOINTS, EVENTS, PRESET, STDOUT, read_preset
from .ownership import acquire_run_lock, record_death

_POLL_S = 0.2
PLAIN_EVERY_S = 30.0  # the longest a piped headless run stays silent while it makes progress


def start_run(preset: Any, name: str | None = None, nproc: int = 1, console: Any = None) -> int:
    from rich.markup import escape

    console = _console(console)
    run_dir = create_run(preset, name=name)
    console.print(f"run [bold]{escape(run_dir.name)}[/]  ({escape(str(run_dir))})", highlight=False)
    return watch_run(run_dir, spawn_trainer(run_dir, nproc=nproc), console)


def resume_run(run_dir: str | Path, nproc: int = 1, console: Any = None) -> int:
    from rich.markup import escape

    console = _console(console)
    run_dir = Path(run_dir)
    if not (run_dir / PRESET).is_file():
        raise UserError(f"{run_dir}: not a run directory (no {PRESET})")
    os.close(acquire_run_lock(run_dir))  # one already running: say so (RunBusy) before anything else
    note = outside_study(run_dir, refuse_unresumable(run_dir))
    if note:
        console.print(f"[yellow]note: {escape(note)}[/]", highlight=False, soft_wrap=True)
    ckpts = sorted((run_dir / CHECKPOINTS).glob("step-*.pt"))
    console.print(f"resuming [bold]{escape(run_dir.name)}[/]"  # (no checkpoint: the trainer's warning says so)
                  + (f" from {escape(ckpts[-1].name)}" if ckpts else ""), highlight=False)
    tail = EventTail(run_dir / EVENTS)
    while tail.poll_bytes():  # only what the resumed trainer writes counts: skip the rest undecoded
        pass
    try:  # a failure shows the resumed trainer's output, not the earlier attempt's
        stdout_from = os.stat(run_dir / STDOUT).st_size
    except OSError:
        stdout_from = 0
    return watch_run(run_dir, spawn_trainer(run_dir, nproc=nproc, resume=True), console, tail=tail,
                     stdout_from=stdout_from)


def refuse_unresumable(run_dir: Path) -> Any:
    """Say before a trainer starts (and appends a failed run_end) what would stop it at once: a
    completed run has nothing to resume; a frozen preset that cannot be read cannot be trained on.
    Returns the run's summary."""
    from .config.load import load

    s = summarize(run_dir)
    if s.state == "completed":
        raise UserError(f"{run_dir.name} completed at step {s.step:,}"
                        + (f"/{s.max_steps:,}" if s.max_steps else "") + ": there is nothing to resume")
    path = Path(run_dir) / PRESET
    errors = [p for p in load(path)[1] if p.is_error]  # (raises on unreadable TOML)
    if errors:
        p = errors[0]
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise UserError(f"{path}:{p.line}: {p.path}: {p.message}{more}: cannot resume" if p.line
                        else f"{path}: {p.path}: {p.message}{more}: cannot resume")
    if not read_preset(run_dir):  # an empty file would resume on the defaults, not the run's settings
        raise UserError(f"{path}: empty: cannot resume")
    return s


def outside_study(run_dir: Path, summary: Any = None) -> str | None:
    """What resuming a pruned study trial by hand means (None for any other run): the run goes on,
    but its study keeps the trial pruned (Optuna does not reopen a finished trial) and its value."""
    from .runs import read_study_info

    info = read_study_info(run_dir)
    if "study" not in info or (summary or summarize(run_dir)).state != "pruned":
        return None
    return (f"{Path(run_dir).name}: trial {info.get('trial', '?')} of study {info['study']}, which pruned it. "
            f"The run goes on; the study keeps the trial pruned, with the value it judged")


def _console(console: Any) -> Any:
    if console is None:
        from rich.console import Console

        console = Console()
    return console


class Terminated(KeyboardInterrupt):
    """SIGTERM to the watcher (``kill``, ``timeout``, a job scheduler): handled as Ctrl-C is. Without it
    the watcher died at once and left its trainer (detached in a session of its own) running unwatched.
    SIGHUP (an SSH connection dropped) keeps the default: the watcher goes, the run goes on."""


def _on_sigterm(signum: int, frame: Any) -> None:
    raise Terminated()


def watch_run(run_dir: str | Path, proc: subprocess.Popen, console: Any, tail: EventTail | None = None,
              stdout_from: int = 0) -> int:
    """Follow the trainer to its end; ``stdout_from``: where in stdout.log this trainer's output starts."""
    import signal
    import threading

    main = threading.current_thread() is threading.main_thread()
    before = signal.signal(signal.SIGTERM, _on_sigterm) if main else None
    try:
        return _watch_run(run_dir, proc, console, tail, stdout_from)
    except KeyboardInterrupt as e:  # outside the loop's own handling (start-up, the last wait, the summary)
        what = "SIGTERM" if isinstance(e, Terminated) else "Ctrl-C"
        if proc.poll() is None:  # no clean stop to wait for here: the trainer goes with its watcher
            _kill_group(proc)
            proc.wait()
            record_death(Path(run_dir), f"killed after a {what} to the process watching it")
            console.print(f"interrupted ({what}): the trainer was killed", highlight=False)
        return 143 if isinstance(e, Terminated) else 130
    except Exception:  # a watcher that dies must not leave its trainer running unwatched: stop it cleanly
        stop_trainer(proc, reason="the terminal watching it failed", run_dir=run_dir)
        raise
    finally:
        if main and before is not None:
            signal.signal(signal.SIGTERM, before)


def _watch_run(run_dir: str | Path, proc: subprocess.Popen, console: Any, tail: EventTail | None,
               stdout_from: int) -> int:
    run_dir = Path(run_dir)
    tail = tail or EventTail(run_dir / EVENTS)
    state = watch_state()
    state["stdout_from"] = stdout_from
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
            except KeyboardInterrupt as e:
                what = "SIGTERM" if isinstance(e, Terminated) else "Ctrl-C"
                if stopping:  # a second Ctrl-C: stop waiting for a clean checkpoint
                    _kill_group(proc)
                    state["killed"] = f"killed after a second {what}"
                    break
                stopping = True
                state["interrupted"] = 143 if isinstance(e, Terminated) else 130  # the shell's 128 + signal
                display.console.print(f"stopping ({what}): the trainer finishes its step and writes a checkpoint "
                                      f"({what} again to kill it)")
                stop_trainer(proc, reason=f"{what} in the terminal watching it" if what == "Ctrl-C"
                             else "SIGTERM to the process watching it", run_dir=run_dir)
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


def _final(run_dir: Path, state: dict[str, Any], code: int, console: Any) -> int:
    from rich.markup import escape

    from .units import fmt_bytes, fmt_duration, fmt_flops

    end = state["end"]
    if end is None:
        if state.get("killed"):
            reason = state["killed"]
        elif code and code > 0 and state.get("error"):
            reason = state["error"]  # the attempt failed before it started and said why in a log event
        else:
            reason = death_reason(run_dir, code)
        status = "failed"
        record_death(run_dir, reason)
    else:
        status, reason = end.get("status", "failed"), end.get("reason", "")
    colour = {"completed": "green", "stopped": "yellow", "pruned": "magenta"}.get(status, "red")
    parts = [f"[bold {colour}]{escape(str(status))}[/] at step {state['step']}/{state['max_steps']}"]
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
        parts.append(f"mean {tokens / elapsed:,.0f} tok/s overall")  # start-up, evals and checkpoints included
    parts.append(f"time {fmt_duration(elapsed)}")
    perf = [p for p in state["perf"] if not p[0]] or state["perf"]
    mfus, flops = [p[1] for p in perf if p[1] is not None], [p[2] for p in perf if p[2] is not None]
    if mfus:  # the median train window: training alone (the tok/s above counts everything)
        parts.append(f"MFU {_median(mfus):.1%} while training")
    elif flops:
        parts.append(f"{fmt_flops(_median(flops))} while training")
    if isinstance((end or {}).get("artifact_bytes"), int):
        parts.append(f"artifact {end['artifact_bytes']:,} bytes ({fmt_bytes(end['artifact_bytes'])})")
    console.print(" · ".join(parts), highlight=False, soft_wrap=True)
    if reason:
        console.print(f"reason: {reason}", highlight=False, markup=False, soft_wrap=True)
    if status != "failed":
        from .reader import summarize
        from .report import run_flag

        flag, why = run_flag(run_dir, summarize(run_dir))
        if flag == "FROZEN":  # the frozen-residual trap: the run trained, its hyper-connections did not
            console.print(f"[bold red]FROZEN[/]: {escape(why)}; the residual streams never mixed", highlight=False,
                          soft_wrap=True)
    if status == "failed":
        console.print(f"last lines of {run_dir / STDOUT}:", highlight=False, markup=False, soft_wrap=True)
        console.print(_tail_text(run_dir / STDOUT, 20, state.get("stdout_from", 0)), highlight=False, markup=False,
                      soft_wrap=True)  # (the log's own lines: not cut again at the console's width)
        return state.get("interrupted", 1) if state.get("killed") else 1  # killed by a second signal: 128 + n
    console.print(f"run directory: {run_dir}", highlight=False, markup=False, soft_wrap=True)
    resume = f"tuilm resume {run_dir.name} · " if status in ("stopped", "pruned") else ""
    console.print(f"next: {resume}tuilm open {run_dir.name} · tuilm runs list · tuilm sample {run_dir.name}",
                  highlight=False, markup=False, soft_wrap=True)
    return state.get("interrupted", 0) if status != "completed" else 0  # stopped here by a signal: 128 + n


def _median(values: list[float]) -> float:
    import statistics

    return statistics.median(values)


def _tail_text(path: Path, lines: int, start: int = 0) -> str:
    """The last ``lines`` lines of ``path`` written from byte ``start`` on."""
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(start, fh.tell() - 16384))
            data = fh.read().decode("utf-8", "replace")
    except OSError:
        return "(no output)"
    return "\n".join(data.splitlines()[-lines:]) or "(no output)"

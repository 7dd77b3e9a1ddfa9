"""The run directory: the only interface between the trainer and the console. Stdlib only.

    runs/<run-id>/
      preset.toml      the fully resolved preset, frozen at start
      events.jsonl     append-only events (see events.py)
      stdout.log       human output; never parsed
      checkpoints/     step-NNNNNNN.pt + step-NNNNNNN.json, written atomically
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import UserError
from .events import EventTail, to_float

PRESET = "preset.toml"
EVENTS = "events.jsonl"
STDOUT = "stdout.log"
CHECKPOINTS = "checkpoints"
PIDFILE = "trainer.pid"
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


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass
class RunSummary:
    path: Path
    state: str = "new"  # new | running | completed | stopped | failed | dead
    arch: str = ""
    preset_name: str = ""
    step: int = 0
    max_steps: int = 0
    tokens: int = 0
    last_loss: float | None = None
    best_val_bpb: float | None = None
    best_val_loss: float | None = None
    artifact_bytes: int | None = None
    started: float | None = None
    ended: float | None = None
    reason: str = ""
    last_event: dict[str, Any] = field(default_factory=dict)
    evals: list[tuple[int, float, float]] = field(default_factory=list)  # (step, val_bpb, val_loss)

    @property
    def run_id(self) -> str:
        return self.path.name

    @property
    def age_s(self) -> float:
        return time.time() - (self.started or self.path.stat().st_mtime)


def fold_train(s: RunSummary, ev: dict[str, Any]) -> None:
    """What a train event says about a run (shared by every summary reader)."""
    s.step = ev.get("step", s.step)
    s.tokens = ev.get("tokens", s.tokens)
    try:
        s.last_loss = to_float(ev.get("loss"))
    except (TypeError, ValueError):
        pass


def fold_run_end(s: RunSummary, ev: dict[str, Any]) -> None:
    """What a run_end event says about a run (shared by every summary reader)."""
    s.state = ev.get("status", "failed")
    s.ended = ev.get("time")
    s.reason = ev.get("reason", "")
    s.step = ev.get("step", s.step)
    if ev.get("artifact_bytes") is not None:
        s.artifact_bytes = ev["artifact_bytes"]


def summarize(path: str | Path, tail: EventTail | None = None, summary: RunSummary | None = None) -> RunSummary:
    """Fold a run's events into a summary. Pass back ``tail`` and ``summary`` to update incrementally."""
    path = Path(path)
    tail = tail or EventTail(path / EVENTS)
    s = summary or RunSummary(path)
    for ev in tail.poll():
        kind = ev.get("kind")
        s.last_event = ev
        if kind == "run_start":
            if s.state != "new":  # a resume: the dead attempt's later steps are superseded
                resumed_at = ev.get("step", 0) or 0
                s.evals = [e for e in s.evals if e[0] <= resumed_at]
                best = min(s.evals, key=lambda e: e[1], default=None)
                s.best_val_bpb, s.best_val_loss = (best[1], best[2]) if best else (None, None)
                s.step = min(s.step, resumed_at)
                s.artifact_bytes = None  # a superseded run_end's figures no longer describe the run
            s.state = "running"
            s.started = s.started or ev.get("time")
            s.max_steps = ev.get("max_steps", s.max_steps)
            s.arch = ev.get("arch", s.arch)
            s.preset_name = ev.get("preset_name", s.preset_name)
            s.pid = ev.get("pid")  # type: ignore[attr-defined]
            s.ended, s.reason = None, ""
        elif kind == "train":
            fold_train(s, ev)
        elif kind == "eval":
            try:
                bpb, loss = to_float(ev["val_bpb"]), to_float(ev["val_loss"])
            except (KeyError, TypeError, ValueError):
                continue
            if bpb == bpb:
                s.evals.append((int(ev.get("step", 0)), bpb, loss))
                if s.best_val_bpb is None or bpb < s.best_val_bpb:
                    s.best_val_bpb, s.best_val_loss = bpb, loss
        elif kind == "run_end":
            fold_run_end(s, ev)
    if s.state == "running":
        pid = getattr(s, "pid", None)
        pidfile = path / PIDFILE
        if pidfile.exists():
            try:
                pid = int(pidfile.read_text().strip())
            except ValueError:
                pass
        if isinstance(pid, int) and not pid_alive(pid):
            s.state = "dead"
    return s


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

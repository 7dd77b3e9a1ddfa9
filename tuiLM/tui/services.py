"""The few library calls the app makes, in one place, imported lazily.

``tuiLM.estimate`` and ``tuiLM.launch`` are pure Python (no torch); importing them late keeps the app
start fast and lets the app open (with a clear message) in a checkout where one of them is broken.
Everything here may block for a moment: the screens call it from thread workers.
"""

from __future__ import annotations

import itertools
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import UserError


@dataclass
class EstimateView:
    """What the estimate panel shows (a stable shape whatever the estimator's internals)."""

    params: int
    parts: dict[str, int]
    total_bytes: int
    artifact_bytes: int | None
    device: str = ""
    dtype: str = ""
    assumption: str = ""
    tokens_per_step: int | None = None
    notes: tuple[str, ...] = ()
    here: tuple[str, int] | None = None  # (dtype, peak bytes) of a run on THIS machine's CPU: no CUDA here


def estimate(preset: Any) -> EstimateView:
    """Run the analytic estimator; raises RuntimeError with a readable message when it cannot."""
    try:
        from ..estimate import estimate as _estimate
    except ImportError as e:  # pragma: no cover - only in a broken checkout
        raise RuntimeError(f"estimator unavailable ({e})") from None
    try:
        est = _estimate(preset)
    except (ValueError, KeyError, ZeroDivisionError, UserError) as e:
        raise RuntimeError(str(e) or type(e).__name__) from None
    artifact = getattr(est, "artifact_bytes_upper", None)
    if artifact is None:
        artifact = getattr(est, "artifact_bytes", None)
    return EstimateView(
        params=int(est.params),
        parts={k: int(v) for k, v in dict(est.parts).items()},
        total_bytes=int(est.total_bytes),
        artifact_bytes=int(artifact) if artifact is not None else None,
        device=str(getattr(est, "device", "")),
        dtype=str(getattr(est, "dtype", "")),
        assumption=str(getattr(est, "assumption", "")),
        tokens_per_step=getattr(est, "tokens_per_step", None),
        notes=tuple(getattr(est, "notes", ()) or ()),
        here=_cpu_here(preset, est),
    )


def _cpu_here(preset: Any, est: Any) -> tuple[str, int] | None:
    """A preset estimated for the GPU it is sized for, on a machine with none: what a run here takes
    (the machine warning beside system.device compares THAT figure with host RAM)."""
    try:
        from ..estimate.report import cpu_here

        cpu = cpu_here(preset, est)
    except Exception:  # advice only
        return None
    return None if cpu is None else (str(cpu.dtype), int(cpu.total_bytes))


def machine_warnings(preset: Any) -> list:
    """The machine-memory warning the CLI prints before ``run`` (the estimate against this machine's
    host RAM or visible CUDA device), for the editor's live validation. Empty when it fits or is
    unknown; never raises (it is advice)."""
    try:
        from ..config.validate import machine_problems

        return machine_problems(preset)
    except Exception:
        return []


def _launch_module():
    try:
        from .. import launch
    except ImportError as e:  # pragma: no cover - only in a broken checkout
        raise UserError(f"cannot start trainers: tuiLM.launch is unavailable ({e})") from None
    return launch


def launch_run(preset: Any, name: str | None = None, nproc: int = 1, root: Path | None = None
               ) -> tuple[Path, subprocess.Popen]:
    """Create the run directory (frozen preset) and start the trainer process."""
    launch = _launch_module()
    run_dir = launch.create_run(preset, name=name, root=root)
    proc = launch.spawn_trainer(run_dir, nproc=nproc)
    return Path(run_dir), proc


def resume_run(run_dir: Path, nproc: int = 1) -> subprocess.Popen:
    return _launch_module().spawn_trainer(run_dir, nproc=nproc, resume=True)


def stop_run(target: Path | subprocess.Popen) -> bool:
    """SIGTERM: the trainer checkpoints and writes run_end(stopped). Returns False if none was live."""
    return bool(_launch_module().stop_trainer(target, reason="stopped from the app"))


def spawn_study(args: list[str], root: Path | None = None) -> tuple[subprocess.Popen, Path]:
    """``tuilm study ARGS`` as a detached process (like a trainer: its own session, output to a log in
    the runs folder), so it outlives the app and is stopped through its stop request."""
    import os
    import sys
    import time

    from ..runs import runs_root

    launch = _launch_module()
    logs = runs_root(root) / "studies"
    logs.mkdir(parents=True, exist_ok=True)
    log = logs / f"app-{args[0]}-{time.strftime('%Y%m%d-%H%M%S')}.log"
    env = dict(os.environ)
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(launch.PACKAGE_ROOT), env.get("PYTHONPATH", "")) if p)
    if root is not None:
        env["TUILM_RUNS_DIR"] = str(root)
    with open(log, "ab") as fh:
        proc = subprocess.Popen([sys.executable, "-m", "tuiLM.cli", "study", *args], stdout=fh,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True, env=env)
    return proc, log


def log_verdict(log: Path, code: int | None) -> str:
    """How a study command ended, from its log: 'failed: <its error lines>' or 'ended: <last line>'."""
    try:
        with open(log, "rb") as fh:  # its end is what matters (a long study's log can be large)
            fh.seek(max(0, os.fstat(fh.fileno()).st_size - 65536))
            lines = [ln.rstrip() for ln in fh.read().decode("utf-8", "replace").splitlines() if ln.strip()]
    except OSError:
        lines = []
    if code:  # the error line and the indented lines that detail it
        first = next((i for i, ln in enumerate(lines) if ln.lower().startswith("error")), None)
        if first is None:
            errors = lines[-3:]
        else:
            rest = list(itertools.takewhile(lambda ln: ln.startswith(" "), lines[first + 1:]))
            errors = [ln.strip() for ln in [lines[first], *rest]]
        more = f" (+{len(errors) - 4} more)" if len(errors) > 4 else ""
        return f"failed (exit {code}): " + " ".join(errors[:4])[:400] + f"{more} · log: {log}"
    return "ended: " + (lines[-1].strip()[:300] if lines else "(no output)")


def stop_study(name: str, root: Path | None = None) -> str | None:
    """`tuilm study stop`'s request: every controller stops its trials cleanly. None when asked, else
    why nothing was asked (no trial is running)."""
    from ..study.report import request_stop

    return request_stop(name, None, root)


def stop_trial(run_dir: Path) -> bool:
    """Stop one trial's running seed run so that the trial ends pruned (the engine tells Optuna)."""
    return bool(_launch_module().stop_trainer(run_dir, status="pruned", reason="stopped from the app",
                                              run_dir=run_dir))

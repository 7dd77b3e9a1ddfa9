"""Running a study: Optuna's ask/tell around ordinary tuiLM runs (specs/studies.md).

One controller process (``tuilm study run`` or ``tuilm study worker``) asks Optuna for a trial,
checks the sampled configuration with the same ``validate()`` and estimator as a preset (an invalid or
over-budget one is told as failed and costs no training), then runs the trial's seeds one after the
other, each an ordinary run directory ``runs/<study>-tNNN-sK-<timestamp>/`` trained by its own
trainer process. Every eval event of the first seed run is reported to Optuna; when the pruner says
so, the trainer is stopped with a stop request and ends ``pruned`` (checkpointed, resumable). The
trial's value is the mean over its seeds of the final eval. ``parallel`` trials run at once.

Nothing is kept only in this process: which runs belong to which trial is in the storage (trial user
attributes) and in each run directory (study.json), so a controller that was SIGKILLed is replaced by
running it again: this host's RUNNING trials are re-attached (live trainer) or resumed from their
last checkpoint (dead trainer); no trial runs twice.

The loop is single-threaded: it polls every active run's events.jsonl (an EventTail each), so the
storage is only ever touched from one thread.
"""

from __future__ import annotations

import json
import math
import os
import signal
import socket
import subprocess
import threading
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from ..config.load import Preset
from ..errors import UserError
from ..events import to_float
from ..reader import EventTail
from ..runs import EVENTS, STUDY_FILE, runs_root
from ..ownership import RunBusy, controller_alive, process_start_time
from . import storage as st
from .spec import StudySpec, run_name, trial_preset

POLL_S = 0.2
MAX_RESUMES = 2  # a seed run whose trainer keeps dying is failed after this many resumes in one session


# -- Optuna pieces -------------------------------------------------------------------------------

def make_sampler(spec: StudySpec, asked: int = 0) -> Any:
    """The sampler of ``spec``, seeded (Optuna does not store samplers: a resumed study recreates it).

    ``asked``: trials the study already has. The seed is ``study.seed`` for a new study and is offset
    by ``asked`` when one continues, so a resumed study does not replay the random draws (and so the
    configurations) of its first session; it is still a pure function of the study's state.
    """
    import optuna.samplers as S

    seed, name = (spec.seed + 1_000_003 * asked) % 2**32, spec.sampler
    if name == "tpe":
        # Optuna's default is 10 random start-up trials; a small study would spend most of itself there
        return S.TPESampler(seed=seed, n_startup_trials=max(3, min(10, spec.trials // 4)))
    if name == "random":
        return S.RandomSampler(seed=seed)
    if name == "grid":
        return _grid_sampler(spec.grid(), seed)
    if name == "cmaes":
        return S.CmaEsSampler(seed=seed, warn_independent_sampling=False)
    if name == "gp":
        return S.GPSampler(seed=seed)
    raise UserError(f"unknown sampler {name!r}")


def _grid_sampler(grid: dict[str, list[Any]], seed: int) -> Any:
    """Optuna's GridSampler without its ``after_trial``, which calls ``study.stop()``: that works only
    inside ``study.optimize`` and raises under ask/tell. The engine runs each grid point once by
    capping the study's target at the grid's size."""
    import optuna.samplers as S

    class AskTellGridSampler(S.GridSampler):
        def after_trial(self, study: Any, trial: Any, state: Any, values: Any) -> None:
            pass

    return AskTellGridSampler(grid, seed=seed)


def make_pruner(spec: StudySpec, base: Preset) -> Any:
    import optuna.pruners as P

    # the first rung: the first eval, or later when the study says trials must not be judged before
    every = base.diag.every if spec.diagnostic else base.eval.every  # where the objective is reported
    first = max(every or base.train.max_steps, spec.prune_after)
    if spec.pruner == "none":
        return P.NopPruner()
    if spec.pruner == "median":
        return P.MedianPruner(n_startup_trials=spec.startup_trials, n_warmup_steps=spec.prune_after)
    if spec.pruner == "asha":
        return P.SuccessiveHalvingPruner(min_resource=first, reduction_factor=3)
    if spec.pruner == "hyperband":
        return P.HyperbandPruner(min_resource=first, max_resource=base.train.max_steps, reduction_factor=3)
    raise UserError(f"unknown pruner {spec.pruner!r}")


# -- machine resources ---------------------------------------------------------------------------

def available_memory_bytes() -> int | None:
    try:
        import psutil

        return int(psutil.virtual_memory().available)
    except Exception:
        try:
            for line in Path("/proc/meminfo").read_text().splitlines():
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
        except (OSError, ValueError, IndexError):
            pass
    return None


def visible_gpus() -> list[str]:
    """GPU ids to spread trials over (CUDA_VISIBLE_DEVICES, else nvidia-smi's list); [] without CUDA."""
    env = os.environ.get("CUDA_VISIBLE_DEVICES")
    if env is not None:
        return [x for x in env.split(",") if x.strip()]
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [str(i) for i, line in enumerate(out.splitlines()) if line.startswith("GPU ")]


def gpu_free_bytes(gpu: str) -> int | None:
    """Free memory of one GPU (an index as in CUDA_VISIBLE_DEVICES) through NVML; None when unknown."""
    try:
        import pynvml

        pynvml.nvmlInit()
        try:
            handle = pynvml.nvmlDeviceGetHandleByIndex(int(gpu))
            return int(pynvml.nvmlDeviceGetMemoryInfo(handle).free)
        finally:
            pynvml.nvmlShutdown()
    except Exception:  # no NVML, a UUID instead of an index, no driver: no figure
        return None


# -- a trial in flight ---------------------------------------------------------------------------

@dataclass
class SeedRun:
    index: int
    run_dir: Path
    proc: subprocess.Popen | None  # None when re-attached to a trainer an earlier controller started
    tail: EventTail
    resumes: int = 0
    last_value: float | None = None
    last_step: int = 0
    end: dict[str, Any] | None = None
    error: str | None = None  # a log(level=error) after the latest run_start / run_end: this attempt's
    started_at: float = field(default_factory=time.time)


@dataclass
class Job:
    trial: Any  # optuna.trial.Trial
    params: dict[str, Any]
    values: dict[int, float] = field(default_factory=dict)
    runs: dict[int, str] = field(default_factory=dict)  # seed index -> run id
    current: SeedRun | None = None
    reported: set[int] = field(default_factory=set)
    pruning: str = ""  # the reason, once the pruner said so
    steps: int = 0
    gpu: str | None = None
    artifacts: dict[int, int] = field(default_factory=dict)  # seed index -> run_end's artifact_bytes

    @property
    def number(self) -> int:
        return self.trial.number


@dataclass
class Counts:
    complete: int = 0
    pruned: int = 0
    failed: int = 0
    running: int = 0
    best: float | None = None
    best_trial: int | None = None


class StudyStopped(Exception):
    pass


def final_value(run_dir: Path, objective: str) -> float | None:
    """The last value of ``objective`` a run wrote (its eval, diag or train events, the resume rule
    applied; NaN when that last one was, as the live watcher sees it), or None."""
    import numpy as np

    from ..reader import absent, read_run

    last: tuple[float, float] | None = None
    for table in read_run(run_dir).tables.values():
        steps, values = table.col("step"), table.col(objective)
        if steps is None or values is None:
            continue
        ok = np.flatnonzero(np.isfinite(steps) & ~absent(values))
        if ok.size and (last is None or steps[ok[-1]] >= last[0]):
            last = (float(steps[ok[-1]]), float(values[ok[-1]]))
    return None if last is None else last[1]


class StudyEngine:
    """Runs (or continues, or joins as a worker) one study until it has its trials or is stopped."""

    def __init__(self, spec: StudySpec, base: Preset, *, storage_url: str | None = None,
                 root: str | Path | None = None, trials: int | None = None, parallel: int | None = None,
                 nproc: int = 1, console: Any = None, poll_s: float = POLL_S,
                 say: Callable[[str], None] | None = None):
        self.spec, self.base = spec, base
        self.name = spec.name
        self.root = root
        self.storage_url = storage_url
        self.target = spec.target(trials)
        self._trials_given = trials is not None  # else a target an earlier --trials stored holds
        self.parallel = parallel or spec.parallel
        self.nproc = max(1, nproc)  # processes per trainer (DDP through torchrun; rank 0 reports)
        self.reports = "diag" if spec.diagnostic else "eval"  # the events that carry the objective
        self.console = console
        self.poll_s = poll_s
        self._say = say
        self.host = socket.gethostname()
        self.pid = os.getpid()
        self.started = process_start_time(self.pid)  # with the pid: a controller, not a reused pid
        self.jobs: list[Job] = []
        self.stopping = False
        self.stop_cause = ""  # "Ctrl-C", "SIGTERM" (here), or "tuilm study stop" (from anywhere)
        self.study: Any = None
        self.gpus = visible_gpus() if base.system.device in ("auto", "cuda") else []
        if self.gpus and self.nproc > len(self.gpus):
            raise UserError(f"--nproc {self.nproc}: a trial needs {self.nproc} GPUs of its own, this machine "
                            f"shows {len(self.gpus)}")
        self._stop_attr_seen: Any = None
        self._last_check = 0.0
        self._counts = Counts()
        self._trials_cache: list[Any] = []
        self._trials_at = 0.0
        self._dirty = True
        self._beat_at = -math.inf
        self._suspects: dict[int, tuple[Any, float, bool]] = {}  # trial -> (its beat, since when, monotonic; moved)
        self._told_waiting: set[int] = set()  # suspects this controller said it waits on

    # -- output ----------------------------------------------------------------------------------

    def say(self, text: str) -> None:
        if self._say is not None:
            self._say(text)
        elif self.console is not None:
            self.console.print(text, highlight=False, markup=False)

    # -- opening ---------------------------------------------------------------------------------

    def open(self, create: bool = True) -> Any:
        import optuna

        from ..config.write import atomic_write_text, dumps_resolved

        storage = self.storage = st.open_storage(self.name, self.storage_url, self.root, create=create)
        sdir = st.study_dir(self.name, self.root)
        sdir.mkdir(parents=True, exist_ok=True)
        base_text = dumps_resolved(self.base, header=f"Base preset of study {self.name} (with --set overrides)")
        if create:
            self.study = optuna.create_study(study_name=self.name, storage=storage, direction=self.spec.direction,
                                             sampler=make_sampler(self.spec), pruner=make_pruner(self.spec, self.base),
                                             load_if_exists=True)
            attrs = self.study.user_attrs
            if st.SPEC_ATTR not in attrs:
                self.study.set_user_attr(st.SPEC_ATTR, self.spec.text)
                self.study.set_user_attr(st.BASE_ATTR, base_text)
                if self.spec.baseline:
                    self.study.enqueue_trial({d.key: self.base.get(d.key) for d in self.spec.space},
                                             user_attrs={"baseline": True}, skip_if_exists=True)
            elif attrs.get(st.SPEC_ATTR) != self.spec.text or attrs.get(st.BASE_ATTR) != base_text:
                raise UserError(f"study {self.name!r} already exists with a different study file or base preset: "
                                f"continue it unchanged, or give this one another name (--name)")
        else:
            self.study = optuna.load_study(study_name=self.name, storage=storage,
                                           sampler=make_sampler(self.spec), pruner=make_pruner(self.spec, self.base))
        stored = self.study.user_attrs.get(st.TARGET_ATTR)
        made = len(self._counted(self.study.get_trials(deepcopy=False)))
        if self._trials_given and self.target < made:  # it said "trials 8/2" and lowered the target
            raise UserError(f"--trials {self.target}: study {self.name} already has {made} trials; give more "
                            f"than {made} to run more, or leave --trials out", exit_code=2)
        if self._trials_given or not isinstance(stored, int):
            self.study.set_user_attr(st.TARGET_ATTR, self.target)  # what `study show` and the app count to
        else:
            self.target = self.spec.target(stored)
        asked = len(self.study.get_trials(deepcopy=False))
        if asked:
            self.study.sampler = make_sampler(self.spec, asked)
        atomic_write_text(sdir / "study.toml", self.spec.text)
        atomic_write_text(sdir / "base.toml", base_text)
        self._stop_attr_seen = self.study.user_attrs.get(st.STOP_ATTR)
        try:
            (sdir / st.STOP_FILE).unlink()
        except OSError:
            pass
        return self.study

    # -- the loop --------------------------------------------------------------------------------

    def run(self, progress: Any = None) -> Counts:
        """Until the study has ``target`` finished trials (or the grid is exhausted) or it is stopped."""
        if self.study is None:
            self.open()
        self.recover()
        self._beat(force=True)  # (after recover: this machine's own trials are picked up, not failed)
        previous = {}
        if threading.current_thread() is threading.main_thread():
            # a batch system's SIGTERM, or the terminal going away (SIGHUP: an SSH session dropped), stops
            # the study as Ctrl-C does: trials checkpoint and stay resumable here, none is left orphaned
            for sig in (signal.SIGTERM, getattr(signal, "SIGHUP", signal.SIGTERM)):
                previous[sig] = signal.signal(sig, lambda n, _: self.request_stop(signal.Signals(n).name))
        try:
            while True:
                self._check_stop()
                for job in list(self.jobs):
                    self._guarded(job, self._poll)
                if self.stopping:
                    break
                self._beat()
                self._fill()
                self._update_counts()
                if progress is not None:
                    progress(self)
                if not self.jobs and not self._may_ask() and all(moved for *_, moved in self._suspects.values()):
                    break  # (a suspect: another machine's silent trial, watched until it is told stale)
                time.sleep(self.poll_s)
        except KeyboardInterrupt:
            self.request_stop("Ctrl-C")
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        if self.stopping:
            self.stop_all()
        self._update_counts()
        if progress is not None:
            progress(self)
        return self._counts

    def request_stop(self, cause: str = "tuilm study stop") -> None:
        self.stopping = True
        self.stop_cause = self.stop_cause or cause

    def in_flight(self) -> float:
        """How much of the running trials is done, in trials (their finished seeds, and the current
        seed's steps over its max_steps): the ETA counts it, so trials about to end shorten it."""
        seeds, total = max(1, self.spec.seeds), 0.0
        for job in self.jobs:
            steps = job.params.get("train.max_steps", self.base.train.max_steps) or 0
            current = job.current.last_step / steps if job.current is not None and steps else 0.0
            total += min(0.99, (len(job.values) + min(1.0, current)) / seeds)
        return total

    def _check_stop(self) -> None:
        now = time.monotonic()
        if now - self._last_check < 1.0:
            return
        self._last_check = now
        if (st.study_dir(self.name, self.root) / st.STOP_FILE).exists():
            self.request_stop()
        elif self.storage_url is not None:  # another machine may have asked through the storage
            import optuna

            attr = optuna.load_study(study_name=self.name, storage=self.storage).user_attrs.get(st.STOP_ATTR)
            if attr is not None and attr != self._stop_attr_seen:
                self.request_stop()

    def stop_all(self, timeout: float = 120.0) -> None:
        """Running trials checkpoint and end ``stopped``; their trials stay RUNNING, so a later
        ``study run`` resumes them."""
        from ..launch import stop_trainer

        if any(job.current is not None for job in self.jobs):
            cause = self.stop_cause or "tuilm study stop"
            again = " (Ctrl-C again to leave them running)" if cause == "Ctrl-C" else ""  # (not for a signal or stop)
            self.say(f"stopping ({cause}): running trials finish their step and write a checkpoint{again}")
        for job in self.jobs:  # (one the pruner stopped already ends pruned: its request stays)
            if job.current is not None and not job.pruning:
                stop_trainer(job.current.proc or job.current.run_dir, run_dir=job.current.run_dir,
                             reason=f"the study was stopped ({self.stop_cause or 'tuilm study stop'})")
        for job in list(self.jobs):  # stopped on purpose (even if a second Ctrl-C cuts the wait below):
            self._guarded(job, lambda j: j.trial.set_user_attr(st.BEAT_ATTR, None))  # never taken for dead
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and any(self._alive(j.current) for j in self.jobs if j.current):
            for job in self.jobs:
                if job.current is not None:
                    for ev in job.current.tail.poll():
                        if ev.get("kind") == "run_end":
                            job.current.end = ev
            time.sleep(self.poll_s)
        for job in list(self.jobs):  # pruned just before the stop: told so now (it read "interrupted" till the next run)
            run = job.current
            if run is not None and not self._alive(run):
                self._guarded(job, lambda j: self._take(j, run))  # (its last lines land as it exits)
                if (run.end or {}).get("status") == "pruned":
                    self._guarded(job, lambda j: self._on_end(j, run, run.end))
        for job in self.jobs:
            if job.current is not None and self._alive(job.current):
                self.say(f"trial {job.number}: the trainer of {job.current.run_dir.name} did not stop in "
                         f"{timeout:.0f} s; it keeps running (a later `study run` re-attaches it)")
        self.jobs = []

    @staticmethod
    def _alive(run: SeedRun | None) -> bool:
        if run is None:
            return False
        if run.proc is not None:
            return run.proc.poll() is None
        from ..launch import trainer_alive

        return trainer_alive(run.run_dir)

    # -- asking and starting ---------------------------------------------------------------------

    def _trials(self, fresh: bool = False) -> list[Any]:
        """The study's trials, read from the storage at most once a second (a database is a network
        round trip) unless ``fresh`` or this controller just asked or told."""
        now = time.monotonic()
        if fresh or self._dirty or now - self._trials_at > 1.0:
            self._trials_cache = self.study.get_trials(deepcopy=False)
            self._trials_at, self._dirty = now, False
        return self._trials_cache

    def _may_ask(self) -> bool:
        if self.stopping:
            return False
        from optuna.trial import TrialState

        # enqueued trials (WAITING: a baseline, a confirmation's configurations) are what ask() hands out
        # next, not trials already taken
        taken = [t for t in self._counted(self._trials()) if t.state != TrialState.WAITING]
        return len(taken) < self.target

    @staticmethod
    def _counted(trials: list[Any]) -> list[Any]:
        """Trials that count toward the target: not the surplus a racing worker asked for, nor a trial
        failed for want of heartbeats whose configuration was queued again (its retry counts)."""
        return st.counted(trials)

    # -- heartbeats ------------------------------------------------------------------------------

    def _beat(self, force: bool = False) -> None:
        """Every BEAT_S: write the time into this controller's running trials, then fail the trials of
        other machines that have not beaten for STALE_S and queue their configurations again
        (storage.BEAT_ATTR says why not Optuna's own heartbeat)."""
        now = time.monotonic()
        if not force and now - self._beat_at < st.BEAT_S:
            return
        self._beat_at = now
        for job in list(self.jobs):
            self._guarded(job, lambda j: j.trial.set_user_attr(st.BEAT_ATTR, time.time()))
        self._fail_stale()

    def _guarded(self, job: Job, step: Callable[[Job], None]) -> None:
        """``step(job)``; when the storage refuses it because the trial is finished (this controller was
        cut off longer than STALE_S: another one failed the trial and queued it again), the job is
        dropped and its trainer stopped (it would only compete with the retry), not a traceback."""
        from optuna.exceptions import UpdateFinishedTrialError

        try:
            step(job)
        except UpdateFinishedTrialError:
            self.say(f"trial {job.number}: another controller failed it for want of heartbeats from here "
                     f"and runs it again; stopping its trainer here")
            if job.current is not None and self._alive(job.current):
                from ..launch import stop_trainer

                stop_trainer(job.current.proc or job.current.run_dir, run_dir=job.current.run_dir)
            if job in self.jobs:
                self.jobs.remove(job)

    def _fail_stale(self) -> None:
        """Fail the running trials of other machines whose beat is older than STALE_S by this clock AND
        has not changed while this controller watched it for 2 x BEAT_S (so a machine whose clock is
        behind is not taken for dead), and queue their configurations again. One that has missed two
        beats is watched (a suspect): a controller with no work of its own left waits on it."""
        from optuna.trial import Trial, TrialState

        mine, now, suspects = {job.number for job in self.jobs}, time.monotonic(), {}
        for ft in self._trials(fresh=True):
            beat, host = ft.user_attrs.get(st.BEAT_ATTR), ft.user_attrs.get("host")
            if (ft.state != TrialState.RUNNING or ft.number in mine or host == self.host
                    or not isinstance(beat, (int, float)) or time.time() - beat <= 3 * st.BEAT_S):
                continue  # (a suspect from its second missed beat: a worker done with its own work waits on it)
            seen, since, _ = self._suspects.get(ft.number, (beat, now, False))
            # (moved: its beat changed since the last look, so its machine beats with a clock behind ours:
            # not waited on; one whose beat stays is waited on, and failed once it is STALE_S old)
            suspects[ft.number] = (beat, since if seen == beat else now, seen != beat)
            quiet = seen == beat and now - since >= 2 * st.BEAT_S
            if quiet and ft.number not in self._told_waiting and not self.jobs and not self._may_ask():
                self._told_waiting.add(ft.number)
                self.say(f"waiting on trial {ft.number}: no heartbeat from {host} for "
                         f"{(time.time() - beat) / 60:.0f} min; after {st.STALE_S / 60:.0f} min of silence "
                         f"its configuration runs again here")
            if not quiet or time.time() - beat <= st.STALE_S:
                continue
            minutes = (time.time() - beat) / 60
            reason = f"its controller on {host} sent no heartbeat for {minutes:.0f} min (machine down?)"
            trial = Trial(self.study, ft._trial_id)  # noqa: SLF001
            try:
                trial.set_user_attr("fail_reason", reason)
                self.study.tell(trial, state=TrialState.FAIL)
            except Exception:  # another controller failed it first (or its machine came back and told it)
                suspects.pop(ft.number)
                continue
            suspects.pop(ft.number)
            self._dirty = True
            kept = {k: ft.user_attrs[k] for k in ("baseline", "confirm_of") if k in ft.user_attrs}
            try:
                self.study.enqueue_trial(dict(ft.params), user_attrs={**kept, "retry_of": ft.number})
            except Exception as e:  # (the storage went away between the two calls)
                self.say(f"trial {ft.number}: failed: {reason}; queueing its configuration again failed: {e}")
                continue
            again = max(t.number for t in self._trials(fresh=True) if t.user_attrs.get("retry_of") == ft.number)
            self.say(f"trial {ft.number}: failed: {reason}; its configuration runs again as trial {again}")
        self._suspects = suspects

    def _fill(self) -> None:
        while len(self.jobs) < self.parallel and self._may_ask():
            if self.gpus and len(self._free_gpus()) < self.nproc:
                return  # every GPU a trial needs is held by a running one: the next waits for them
            if not self._memory_allows():
                return
            if not self._start_trial():
                return

    def _free_gpus(self) -> list[str]:
        """This machine's GPUs no running trial of this controller holds, in order."""
        held = {g for job in self.jobs if job.gpu for g in job.gpu.split(",")}
        return [g for g in self.gpus if g not in held]

    def _memory_allows(self) -> bool:
        """Never more trainers than memory holds: the next one starts when the running ones leave room
        for the base preset's estimate on the device it would get (host RAM on CPU, the next GPU's free
        memory through NVML on CUDA; no figure, no limit)."""
        if not self.jobs:
            return True
        need = self._estimate_bytes(self.base)
        if self.gpus:  # each of the next trial's GPUs holds one process
            free = min((gpu_free_bytes(g) for g in self._free_gpus()[: self.nproc]),
                       key=lambda b: float("inf") if b is None else b, default=None)
        else:
            free = available_memory_bytes()
            need = None if need is None else need * self.nproc
        return need is None or free is None or need <= free

    def _estimate_bytes(self, preset: Preset, device: str | None = "here") -> int | None:
        """The memory estimate on the device this machine will train on ("here"), or with the preset's
        own device and precision (None: what the preset's budget is about)."""
        try:
            from ..estimate import estimate

            dev = ("cuda" if self.gpus else "cpu") if device == "here" else device
            return estimate(preset, device=dev).total_bytes
        except Exception:  # the estimate informs scheduling; a config it cannot size still gets to run
            return None

    def _start_trial(self) -> bool:
        from optuna.trial import TrialState

        t_ask = time.time()
        with warnings.catch_warnings():  # a baseline outside the space: `study validate` says so, in words
            warnings.filterwarnings("ignore", message="Fixed parameter .* is out of range")
            trial = self.study.ask(self.spec.distributions())
        self._dirty = True
        if trial.number >= self.target and not trial.user_attrs.get("baseline") and "retry_of" not in trial.user_attrs:
            counted = self._counted(self._trials(fresh=True))
            if len(counted) > self.target:  # another worker asked the last trial at the same moment
                trial.set_user_attr("surplus", True)
                self.study.tell(trial, state=TrialState.FAIL)
                return False
        params = dict(trial.params)
        trial.set_user_attr("host", self.host)
        trial.set_user_attr(st.WORKER_ATTR, [self.pid, self.started])  # one write: pid and start together
        trial.set_user_attr(st.BEAT_ATTR, time.time())
        trial.set_user_attr("asked_at", t_ask)
        reason = self._check_config(params)
        if reason:
            trial.set_user_attr("fail_reason", reason)
            self.study.tell(trial, state=TrialState.FAIL)
            self.say(f"trial {trial.number}: failed before training: {reason}")
            return True
        job = Job(trial, params)
        if self.gpus:  # a trial gets nproc GPUs of its own: none a running trial holds
            job.gpu = ",".join(self._free_gpus()[: self.nproc])
        self.jobs.append(job)
        self._next_seed(job)
        return True

    def _seed_preset(self, params: dict[str, Any], k: int, trial: int) -> Preset:
        p = trial_preset(self.base, params, k, run_name(self.name, trial, k))
        if self.parallel * self.nproc > 1 and not self.gpus and p.system.threads == 0:
            # CPU threads divided between the trainer processes that run at once
            p = p.with_values({"system.threads": max(1, (os.cpu_count() or 1) // (self.parallel * self.nproc))})
        return p

    def _check_config(self, params: dict[str, Any]) -> str:
        """'' when the sampled configuration may train, else why not (costs no training)."""
        from ..config.validate import validate

        preset = self._seed_preset(params, 0, 0)
        errors = [p for p in validate(preset, with_budget=False) if p.is_error]
        if errors:
            return "invalid configuration: " + "; ".join(f"{p.path}: {p.message}" for p in errors)
        budget_gib = self.spec.budget_gib or self.base.system.vram_budget_gib
        need = self._estimate_bytes(preset, device=None)
        if budget_gib and need is not None and need > budget_gib * 2**30:
            return f"over budget: estimate {need / 2**30:.2f} GiB > {budget_gib:g} GiB"
        need = self._estimate_bytes(preset)
        if need is not None and not self.gpus:
            try:
                import psutil

                total = psutil.virtual_memory().total
            except Exception:
                total = None
            if total and need * self.nproc > total:
                each = f" ({self.nproc} processes x {need / 2**30:.2f} GiB)" if self.nproc > 1 else ""
                return (f"does not fit this machine: estimate {need * self.nproc / 2**30:.2f} GiB{each} > "
                        f"{total / 2**30:.1f} GiB of memory")
        return ""

    def _next_seed(self, job: Job) -> None:
        """Start the job's first seed that has no value yet; finish the trial when all have one."""
        k = next((i for i in range(self.spec.seeds) if i not in job.values), None)
        if k is None:
            self._finish(job)
            return
        try:
            self._start_seed(job, k)
        except (UserError, OSError) as e:  # a full disk, a run folder that cannot be made: this trial fails
            where = f"{e.filename}: " if isinstance(e, OSError) and e.filename else ""
            self._fail(job, f"cannot start seed {k}: {where}{getattr(e, 'strerror', None) or e}")

    def _start_seed(self, job: Job, k: int) -> None:
        from ..launch import create_run, spawn_trainer

        run_id = job.runs.get(k)
        run_dir = runs_root(self.root) / run_id if run_id else None
        if run_dir is not None and not run_dir.is_dir():  # (moved, deleted, or another machine's folder)
            self.say(f"trial {job.number}: seed {k}'s run {run_id} is not in {runs_root(self.root)}: "
                     f"that seed starts again from step 0 in a new run")
        if run_dir is None or not run_dir.is_dir():
            preset = self._seed_preset(job.params, k, job.number)
            run_dir = create_run(preset, root=self.root)
            info = {"study": self.name, "trial": job.number, "seed_index": k, "params": job.params}
            (run_dir / STUDY_FILE).write_text(json.dumps(info) + "\n", encoding="utf-8")
            job.runs[k] = run_dir.name
            job.trial.set_user_attr("runs", [job.runs[i] for i in sorted(job.runs)])
            resume = False
        else:
            resume = True
        env = {"CUDA_VISIBLE_DEVICES": job.gpu} if job.gpu is not None else None
        run = SeedRun(k, run_dir, None, EventTail(run_dir / EVENTS))
        if resume and self._catch_up(job, run):
            return
        try:
            run.proc = spawn_trainer(run_dir, nproc=self.nproc, resume=resume, env_extra=env)
        except RunBusy:
            if not resume:
                raise
            self.say(f"trial {job.number}: {run_dir.name} has a trainer already (resumed elsewhere); watching it")
        if k == 0 and not resume:
            job.trial.set_user_attr("spawned_at", time.time())  # ask -> spawn: the scheduler's own time
        job.current = run

    # -- watching --------------------------------------------------------------------------------

    def _take(self, job: Job, run: SeedRun) -> None:
        """Fold the seed run's new events in: evaluations (the pruner), its step, its end, its error."""
        for ev in run.tail.poll():
            kind = ev.get("kind")
            if kind == "run_start":
                run.end = run.error = None
            elif kind == self.reports:
                self._on_eval(job, run, ev)
            elif kind == "log" and ev.get("level") == "error":
                run.error = str(ev.get("message", ""))
            elif kind in ("train", "run_end"):
                if isinstance(ev.get("step"), int):
                    run.last_step = ev["step"]
                    job.steps = max(job.steps, ev["step"])
                if kind == "run_end":
                    run.end, run.error = ev, None

    def _catch_up(self, job: Job, run: SeedRun) -> bool:
        """Before a resume is spawned: what the file holds is earlier attempts'. Their evaluations count;
        their run_end does not end the new attempt (a resume that failed before its run_start was read
        as the earlier run_end: the trial stayed "stopped" for ever). True when an evaluation no
        controller had reported makes the pruner stop the trial: it is told pruned, nothing is spawned
        (a resume would have trained to max_steps with the verdict already given)."""
        self._take(job, run)
        run.end = run.error = None
        if not job.pruning:
            return False
        job.current = run
        self._on_end(job, run, {"status": "pruned", "step": run.last_step})
        return True

    def _poll(self, job: Job) -> None:
        run = job.current
        if run is None:
            return
        self._take(job, run)
        if self._alive(run):  # (after a run_end: the trainer is writing its last lines; take it once gone)
            return
        self._take(job, run)  # the last events may have landed just before exit
        if run.error is not None:
            # the attempt failed on its own before it began (a damaged checkpoint, a changed corpus): the
            # trainer kept the run's earlier run_end and logged why; another resume would fail the same way
            self._fail(job, f"{run.run_dir.name} could not resume: {run.error}")
        elif run.end is not None:
            self._on_end(job, run, run.end)
        else:
            self._on_died(job, run)

    def _on_eval(self, job: Job, run: SeedRun, ev: dict[str, Any]) -> None:
        try:
            value = to_float(ev.get(self.spec.objective))
        except (TypeError, ValueError):
            return
        step = ev.get("step")
        if not isinstance(step, int) or isinstance(step, bool):
            return
        run.last_value = value
        if run.index != 0 or step in job.reported or not math.isfinite(value) or job.pruning:
            return
        # the pruner compares every trial on its first seed (the same seed: common random numbers)
        job.trial.report(value, step)
        job.reported.add(step)
        last = job.params.get("train.max_steps", self.base.train.max_steps)  # the space may set it
        if step < last and job.trial.should_prune():
            from ..launch import stop_trainer

            job.pruning = f"pruned by the {self.spec.pruner} pruner at step {step} ({self.spec.objective} {value:.4f})"
            stop_trainer(run.proc or run.run_dir, status="pruned", reason=job.pruning, run_dir=run.run_dir)

    def _on_end(self, job: Job, run: SeedRun, end: dict[str, Any]) -> None:
        from optuna.trial import TrialState

        status = end.get("status")
        job.current = None
        if job.pruning or status == "pruned":
            job.trial.set_user_attr("steps", job.steps)
            job.trial.set_user_attr("prune_reason", job.pruning or str(end.get("reason", "")))
            self._tell(job, TrialState.PRUNED)
            judged = job.pruning or str(end.get("reason", "")) or "pruned"  # the step the pruner judged, then
            self.say(f"trial {job.number}: {judged}; its run stopped at step {run.last_step} ({run.run_dir.name})")
        elif status == "completed":
            if run.last_value is None or not math.isfinite(run.last_value):
                self._fail(job, f"{run.run_dir.name} completed without a finite {self.spec.objective}")
                return
            job.values[run.index] = run.last_value
            job.trial.set_user_attr("values", [job.values[i] for i in sorted(job.values)])
            if isinstance(end.get("artifact_bytes"), int):
                job.artifacts[run.index] = end["artifact_bytes"]
            self._next_seed(job)
        elif status == "stopped":
            # someone stopped the run by hand (tuilm stop, the app): the trial stays RUNNING and is
            # resumed by the next `tuilm study run`
            self.say(f"trial {job.number}: {run.run_dir.name} was stopped; it resumes when the study is run again")
            job.trial.set_user_attr(st.BEAT_ATTR, None)  # stopped on purpose: not stale, it resumes here
            self.jobs.remove(job)
        else:
            self._fail(job, f"{run.run_dir.name} failed: {end.get('reason', '')}")

    def _on_died(self, job: Job, run: SeedRun) -> None:
        """The trainer is gone without run_end (killed, out of memory): resume it from its checkpoint."""
        from ..launch import spawn_trainer

        if run.resumes >= MAX_RESUMES:
            self._fail(job, f"the trainer of {run.run_dir.name} died {run.resumes + 1} times without run_end")
            return
        if self._catch_up(job, run):
            return
        self.say(f"trial {job.number}: the trainer of {run.run_dir.name} died; resuming from its last checkpoint")
        env = {"CUDA_VISIBLE_DEVICES": job.gpu} if job.gpu is not None else None
        run.resumes += 1
        try:
            run.proc = spawn_trainer(run.run_dir, nproc=self.nproc, resume=True, env_extra=env)
        except RunBusy:  # someone resumed it already (tuilm resume, the app): watch that trainer
            run.proc = None
            self.say(f"trial {job.number}: {run.run_dir.name} has a trainer again (resumed elsewhere); watching it")
        except (UserError, OSError) as e:  # a full disk, a folder gone: this trial fails, the study goes on
            self._fail(job, f"cannot resume {run.run_dir.name}: {getattr(e, 'strerror', None) or e}")

    def _fail(self, job: Job, reason: str) -> None:
        from optuna.trial import TrialState

        if job.current is not None and self._alive(job.current):
            from ..launch import stop_trainer

            stop_trainer(job.current.proc or job.current.run_dir, run_dir=job.current.run_dir)
        job.current = None
        job.trial.set_user_attr("fail_reason", reason[:1000])
        job.trial.set_user_attr("steps", job.steps)
        self._tell(job, TrialState.FAIL)
        self.say(f"trial {job.number}: failed: {reason}")

    def _finish(self, job: Job) -> None:
        from .stats import mean_se

        from optuna.trial import TrialState

        vals = [job.values[i] for i in sorted(job.values)]
        mean, se = mean_se(vals)
        job.trial.set_user_attr("value_se", se)
        job.trial.set_user_attr("steps", job.steps)
        over, limit = "", self.spec.max_artifact_bytes
        size = max(job.artifacts.values()) if job.artifacts else None
        if size is not None:
            job.trial.set_user_attr("artifact_bytes", size)
        if limit:  # Optuna's constraint (<= 0: feasible), on every completed trial (GP needs them all):
            # TPE and GP sample away from infeasible ones. A run_end without artifact_bytes counts as within.
            job.trial.set_constraint("artifact_bytes", float(size - limit) if size is not None else 0.0)
            if size is not None and size > limit:
                job.trial.set_user_attr("over_limit", True)
                over = f" · artifact {size:,} bytes > limit {limit:,}: never the best"
        self._tell(job, TrialState.COMPLETE, mean)
        from ..units import fmt_se

        se_text = f" ± {fmt_se(se)}" if se == se else ""
        self.say(f"trial {job.number}: {self.spec.objective} {mean:.4f}{se_text} (k={len(vals)}) "
                 f"{_fmt_params(job.params)}{over}")

    def _tell(self, job: Job, state: Any, value: float | None = None) -> None:
        self._dirty = True
        if value is None:
            self.study.tell(job.trial, state=state)
        else:
            self.study.tell(job.trial, value, state=state)
        if job in self.jobs:
            self.jobs.remove(job)

    # -- recovery --------------------------------------------------------------------------------

    def recover(self) -> None:
        """Pick up this host's RUNNING trials whose controller is gone: re-attach live trainers, resume
        dead ones from their last checkpoint, finish trials whose runs all ended."""
        from optuna.trial import Trial, TrialState

        from ..launch import trainer_alive
        from ..reader import summarize

        trials = self.study.get_trials(deepcopy=False)
        retried = st.retried(trials)
        for ft in trials:  # failed for silence while its trainer here lived on: the retry stands for it
            last = (ft.user_attrs.get("runs") or [None])[-1]
            if (ft.number in retried and ft.user_attrs.get("host") == self.host and isinstance(last, str)
                    and (runs_root(self.root) / last).is_dir() and trainer_alive(runs_root(self.root) / last)):
                from ..launch import stop_trainer

                self.say(f"trial {ft.number}: another controller failed it (no heartbeat from here) and runs it "
                         f"again; stopping the trainer of {last} here")
                stop_trainer(runs_root(self.root) / last, run_dir=runs_root(self.root) / last)
        for ft in self.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            attrs = ft.user_attrs
            if attrs.get("host") != self.host:
                continue  # another machine's trial: its own controller owns it
            owner, started = st.worker_of(attrs)
            if isinstance(owner, int) and owner != self.pid and controller_alive(owner, started):
                continue  # another controller on this machine is running it
            trial = Trial(self.study, ft._trial_id)  # noqa: SLF001
            trial.set_user_attr(st.WORKER_ATTR, [self.pid, self.started])
            trial.set_user_attr(st.BEAT_ATTR, time.time())
            job = Job(trial, dict(ft.params))
            job.reported = set(ft.intermediate_values)
            job.runs = {}
            for k, run_id in enumerate(attrs.get("runs", [])):
                job.runs[k] = run_id
            self._adopt_orphans(job)
            for k in sorted(job.runs):
                run_dir = runs_root(self.root) / job.runs[k]
                if not run_dir.is_dir():
                    continue
                s = summarize(run_dir)
                value = final_value(run_dir, self.spec.objective) if s.state == "completed" else None
                if value is not None and math.isfinite(value):  # NaN: resumed, it ends failed as it would live
                    job.values[k] = value
                    job.steps = max(job.steps, s.step)
                    if isinstance(s.artifact_bytes, int):
                        job.artifacts[k] = s.artifact_bytes
            if "values" in attrs:
                job.values.update({i: v for i, v in enumerate(attrs["values"]) if i not in job.values})
            k = next((i for i in range(self.spec.seeds) if i not in job.values), None)
            if k is None:
                self.jobs.append(job)
                self._finish(job)
                continue
            run_dir = runs_root(self.root) / job.runs[k] if k in job.runs else None
            if self.gpus:  # a resumed trainer gets GPUs of its own as a new trial does (shared only if none are)
                free = self._free_gpus()
                job.gpu = ",".join((free if len(free) >= self.nproc else self.gpus)[: self.nproc])
            self.jobs.append(job)
            if run_dir is not None and run_dir.is_dir() and trainer_alive(run_dir):
                job.current = SeedRun(k, run_dir, None, EventTail(run_dir / EVENTS))
                self.say(f"trial {job.number}: re-attached to the running trainer of {run_dir.name}")
            elif run_dir is not None and run_dir.is_dir() and summarize(run_dir).state == "pruned":
                job.current = SeedRun(k, run_dir, None, EventTail(run_dir / EVENTS))  # tell it on the first poll
            elif run_dir is not None and run_dir.is_dir() and summarize(run_dir).state == "failed":
                self._fail(job, f"{run_dir.name} failed: {summarize(run_dir).reason}")
            else:
                if run_dir is not None and run_dir.is_dir():
                    self.say(f"trial {job.number}: resuming {run_dir.name} from its last checkpoint")
                self._next_seed(job)

    def _adopt_orphans(self, job: Job) -> None:
        """A run directory created just before a kill, before the storage recorded it (study.json knows)."""
        base = runs_root(self.root)
        prefix = f"{self.name}-t{job.number:03d}-s"
        if not base.is_dir():
            return
        for d in sorted(base.glob(prefix + "*")):
            try:
                info = json.loads((d / STUDY_FILE).read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
            if isinstance(info, dict) and info.get("study") == self.name and info.get("trial") == job.number:
                k = info.get("seed_index")
                if isinstance(k, int) and k not in job.runs:
                    job.runs[k] = d.name

    # -- counts ----------------------------------------------------------------------------------

    def _update_counts(self) -> None:
        from optuna.trial import TrialState

        c = Counts()
        sign = -1 if self.spec.direction == "maximize" else 1
        for t in self._counted(self._trials()):
            if t.state == TrialState.COMPLETE:
                c.complete += 1
                if t.value is not None and not t.user_attrs.get("over_limit") and (
                        c.best is None or sign * t.value < sign * c.best):
                    c.best, c.best_trial = t.value, t.number
            elif t.state == TrialState.PRUNED:
                c.pruned += 1
            elif t.state == TrialState.FAIL:
                c.failed += 1
            elif t.state == TrialState.RUNNING:
                c.running += 1
        self._counts = c

    @property
    def counts(self) -> Counts:
        return self._counts


def _fmt_params(params: dict[str, Any]) -> str:
    return " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in params.items())


__all__ = ["StudyEngine", "StudyStopped", "make_pruner", "make_sampler"]

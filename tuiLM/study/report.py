"""The ``tuilm study`` commands: validate, run / worker (with progress), list, show, stop. No torch."""

from __future__ import annotations

import csv
import io
import json
import math
import sys
import time
from pathlib import Path
from typing import Any, Callable

from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from ..errors import UserError
from ..report import print_problems
from ..units import fmt_duration, fmt_se, short_key
from . import storage as st
from .spec import StudySpec, load_study, parse

PLAIN_EVERY_S = 10.0


# -- validate --------------------------------------------------------------------------------------

def load_checked(path: str | Path, sets: list[str], console: Console, name: str | None = None):
    """Load a study file and its base preset; print every problem; raise exit 1 on errors."""
    spec, base, problems = load_study(path, sets)
    if base is not None and not any(p.is_error for p in problems):  # `study run` refuses to start on these
        from ..config.load import Problem
        from ..config.validate import missing_paths

        problems = problems + [Problem("warning", key, f"{where}: no such file or folder on this machine "
                                       "(study run would start no trial here)") for key, where in missing_paths(base)]
    print_problems(problems, console, source=str(path))
    if any(p.is_error for p in problems):
        raise UserError(f"{path}: the study file has errors (see above)")
    if name:
        from ..runs import RunError, check_run_name

        try:
            check_run_name(name, "study")
        except RunError as e:
            raise UserError(f"--name: {e}", exit_code=2) from None
        spec.settings["name"] = name
    if base is not None and base.eval.every == 0 and spec.pruner != "none":
        console.print(f"[yellow]warning[/] the base preset evaluates only at the end (eval.every = 0): the "
                      f"{spec.pruner} pruner has nothing to decide on", highlight=False)
    return spec, base, problems


def validate_command(path: str, sets: list[str], console: Console, err: Console) -> None:
    spec, base, problems = load_checked(path, sets, err)
    n_warn = sum(1 for p in problems if not p.is_error)
    runs = spec.trials * spec.seeds
    console.print(f"[green]ok[/]: {escape(str(path))} (study {escape(spec.name)}: {len(spec.space)} dimension"
                  f"{'s' if len(spec.space) != 1 else ''}, {spec.trials} trial"
                  f"{'s' if spec.trials != 1 else ''} x {spec.seeds} seed{'s' if spec.seeds != 1 else ''} = up to "
                  f"{runs} run{'s' if runs != 1 else ''}, {spec.sampler} + {spec.pruner}, "
                  f"{n_warn} warning{'s' if n_warn != 1 else ''})", highlight=False, soft_wrap=True)


# -- run / worker ----------------------------------------------------------------------------------

class Progress:
    """Rich progress on a terminal. Otherwise (piped, a log file) plain lines: one whenever the counts
    or the best value change, and one at least every PLAIN_EVERY_S seconds in between (a heartbeat
    with the elapsed time and ETA, so a log never goes silent while long trials run). ``clock``:
    seconds, monotonic (tests pass a fake one)."""

    def __init__(self, console: Console, target: int, objective: str, clock: Callable[[], float] = time.monotonic):
        self.console = console
        self.target = target
        self.objective = objective
        self.clock = clock
        self.rich = None
        self._last_plain: float | None = None
        self._last_line = ""
        self._start: float | None = None  # first update: the ETA counts what this session finished
        self._work0 = 0.0
        if console.is_terminal:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress as RP, TextColumn, TimeElapsedColumn

            from rich.table import Column

            fixed = lambda: Column(no_wrap=True)  # noqa: E731  (counts and times never cut; info gives way)
            self.rich = RP(TextColumn("[bold]{task.description}", table_column=fixed()),
                           BarColumn(bar_width=20 if console.width >= 120 else 8), MofNCompleteColumn(table_column=fixed()),
                           TimeElapsedColumn(table_column=fixed()),
                           # the ETA at the pace of the whole session (``eta``): Rich's own, from the last
                           # 30 s of progress, swung from minutes to hours while the first trainers started
                           TextColumn("eta {task.fields[eta]}", table_column=fixed()),
                           # the info takes what is left (ratio, with expand): it gives way, not the counts
                           TextColumn("{task.fields[info]}", table_column=Column(no_wrap=True, overflow="ellipsis",
                                                                                  ratio=1)),
                           console=console, refresh_per_second=4, expand=True)
            self.task = self.rich.add_task("trials", total=target, info="", eta="-")

    def say(self, text: str) -> None:
        self.console.print(text, highlight=False, markup=False, soft_wrap=True)

    def info(self, engine: Any, short: bool = False) -> str:
        """The counts and the best; ``short`` (80 columns): the best first, then the counts that are not 0,
        ended ones first (the pruned count was cut off after "done 2 · running 1 · 2 …")."""
        c = engine.counts
        if short:
            best = f"best {c.best:.4f}" if c.best is not None else "best -"
            return best + " · " + (", ".join(f"{n} {w}" for n, w in ((c.complete, "done"), (c.pruned, "pruned"),
                                                                     (c.failed, "failed"), (c.running, "running"))
                                             if n) or "none yet")
        best = f"best {c.best:.4f} (trial {c.best_trial})" if c.best is not None else "best -"
        return f"done {c.complete} · running {c.running} · pruned {c.pruned} · failed {c.failed} · {best}"

    def __call__(self, engine: Any) -> None:
        c = engine.counts
        finished = c.complete + c.pruned + c.failed
        in_flight = engine.in_flight() if hasattr(engine, "in_flight") else 0.0
        now = self.clock()
        if self._start is None:
            self._start, self._work0 = now, finished + in_flight
        if self.rich is not None:  # the bar follows the running trials' steps too
            info = self.info(engine, short=self.console.width < 120)  # (80 columns: the best was cut off)
            self.rich.update(self.task, completed=min(self.target, finished + in_flight), info=info,
                             eta=self.eta(finished, now, in_flight))
            return
        info = self.info(engine)
        if info != self._last_line or self._last_plain is None or now - self._last_plain >= PLAIN_EVERY_S:
            self._last_plain, self._last_line = now, info
            self.say(f"{time.strftime('%H:%M:%S')} trials {finished}/{self.target} · {info} · "
                     f"elapsed {fmt_duration(now - self._start)} · eta {self.eta(finished, now, in_flight)}")

    def eta(self, finished: int, now: float, in_flight: float = 0.0) -> str:
        """Time left at the pace of the work done since this session started, in trials: finished ones
        and the finished part of the running ones (``in_flight``; trials about to end shorten it, where
        whole trials alone said 'as long again' at half way). '-' before any work was measured."""
        if finished >= self.target:
            return fmt_duration(0)
        done_here = finished + in_flight - self._work0
        if self._start is None or done_here <= 1e-9:
            return "-"
        return fmt_duration((now - self._start) / done_here * max(0.0, self.target - finished - in_flight))

    def __enter__(self) -> "Progress":
        if self.rich is not None:
            self.rich.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.rich is not None:
            self.rich.stop()


def run_engine(engine: Any, console: Console, create: bool = True) -> int:
    spec = engine.spec
    engine.open(create=create)
    where = engine.storage_url and st._redact(engine.storage_url) or str(st.study_dir(engine.name, engine.root) / st.JOURNAL)
    ddp = f" x {engine.nproc} processes (DDP)" if engine.nproc > 1 else ""
    console.print(f"study [bold]{escape(engine.name)}[/] · {engine.target} trial{'s' if engine.target != 1 else ''} x {spec.seeds} seed"
                  f"{'s' if spec.seeds != 1 else ''} · {spec.sampler} + {spec.pruner} · parallel {engine.parallel}{ddp} · "
                  f"{spec.objective} · storage {escape(where)}", highlight=False, soft_wrap=True)
    progress = Progress(console, engine.target, spec.objective)
    engine._say = progress.say
    try:
        with progress:
            counts = engine.run(progress)
    except KeyboardInterrupt:  # a second Ctrl-C while the trials stop
        console.print(f"interrupted: trainers that were still stopping keep running; "
                      f"`{continue_command(engine.name, engine.storage_url)}` re-attaches them", highlight=False,
                      markup=False)
        return 130
    best = f"best {spec.objective} {counts.best:.4f} (trial {counts.best_trial})" if counts.best is not None else \
        "no trial within the artifact limit" if counts.complete else "no trial completed"
    state = "stopped" if engine.stopping else "finished"
    console.print(f"study {escape(engine.name)} {state}: {counts.complete} done · {counts.pruned} pruned · "
                  f"{counts.failed} failed · {counts.running} {'stopped' if engine.stopping else 'running'} · {best}",
                  highlight=False, soft_wrap=True)
    if engine.stopping:  # (a confirmation has no study file: only the worker continues it)
        from .confirm import CONFIRM_OF_ATTR

        again = "" if engine.study.user_attrs.get(CONFIRM_OF_ATTR) else " (or the same `tuilm study run`)"
        console.print(f"continue it with `{continue_command(engine.name, engine.storage_url)}`{again}",
                      highlight=False, markup=False)
    console.print(f"details: tuilm study show {engine.name}"
                  + (f" --storage {st._redact(engine.storage_url)}" if engine.storage_url else ""), highlight=False,
                  markup=False)
    cause = getattr(engine, "stop_cause", "")
    if engine.stopping and cause in ("Ctrl-C", "SIGTERM", "SIGHUP"):  # stopped here by a signal: 128 + n
        return {"Ctrl-C": 130, "SIGTERM": 143, "SIGHUP": 129}[cause]
    return 1 if counts.complete == 0 and counts.failed > 0 and not engine.stopping else 0


def continue_command(name: str, storage_url: str | None) -> str:
    """The command that continues a stopped or interrupted study: any study, a confirmation included."""
    return f"tuilm study worker {name}" + (f" --storage {st._redact(storage_url)}" if storage_url else "")


def worker_spec(name: str, storage_url: str | None, root: str | Path | None = None) -> tuple[StudySpec, Any]:
    """A study's frozen definition, read back from its storage (a worker needs only the name and URL)."""
    from ..config.load import load_text

    storage = st.open_storage(name, storage_url, root)
    study = st.load_study(name, storage)
    attrs = study.user_attrs
    if st.SPEC_ATTR not in attrs or st.BASE_ATTR not in attrs:
        raise UserError(f"study {name!r} was not created by tuilm (no study file in its storage)")
    spec, problems = parse(attrs[st.SPEC_ATTR])
    errors = [p for p in problems if p.is_error]
    if errors:
        raise UserError(f"study {name!r}: its stored study file has errors: {errors[0]}")
    spec.settings["name"] = name
    base, base_problems = load_text(attrs[st.BASE_ATTR], name=f"{name} base preset")
    if any(p.is_error for p in base_problems):
        raise UserError(f"study {name!r}: its stored base preset has errors")
    if spec.settings.get("base"):  # the file it came from, as `study run` has it: its trials' preset name
        base.source = Path(str(spec.settings["base"]))
    return spec, base


# -- list / show / stop ----------------------------------------------------------------------------

def base_seed(study: Any) -> int:
    """run.seed of the study's stored base preset (a trial's seeds are run.seed + 0..k-1)."""
    import tomllib

    try:
        seed = tomllib.loads(study.user_attrs.get(st.BASE_ATTR, "")).get("run", {}).get("seed", 0)
    except (tomllib.TOMLDecodeError, AttributeError):
        return 0
    return seed if isinstance(seed, int) else 0


def trial_rows(study: Any, root: str | Path | None = None) -> list[dict[str, Any]]:
    """Every trial as a plain dict (what --json prints under "trials"). A running trial whose latest
    run here ended ``stopped`` (study stop, Ctrl-C: it resumes when the study is run again) says
    ``"stopped": true``."""
    rows = []
    seed0 = base_seed(study)
    trials = study.get_trials(deepcopy=False)
    retried_as = st.retried(trials)
    for t in trials:
        a = t.user_attrs
        if a.get("surplus"):
            continue
        values = a.get("values", [])
        stopped, steps, live = (_running_here(a.get("runs") or [], root) if t.state.name == "RUNNING"
                                else (False, None, False))
        interrupted = t.state.name == "RUNNING" and not stopped and not live and _controller_gone(a)
        rows.append({
            "number": t.number,
            "state": t.state.name.lower(),
            "params": dict(t.params),
            "value": _finite(t.value),
            "value_se": _finite(a.get("value_se")),
            "k": len(values),
            "values": values,
            "seeds": list(a.get("seeds") or [seed0 + i for i in range(len(values))]),
            "steps": a.get("steps") if a.get("steps") is not None else steps,
            "runs": list(a.get("runs", [])),
            "host": a.get("host"),
            "reason": ((a.get("fail_reason") if t.state.name == "FAIL" else "") or a.get("prune_reason") or "") + (
                f"; its configuration runs again as trial {retried_as[t.number]}" if t.number in retried_as else ""),
            "baseline": bool(a.get("baseline")),
            "artifact_bytes": a.get("artifact_bytes") if isinstance(a.get("artifact_bytes"), int) else None,
            "over_limit": bool(a.get("over_limit")),  # artifact over study.max_artifact_bytes: never the best
            "confirm_of": a.get("confirm_of"),
            "retry_of": a.get("retry_of"),  # a configuration queued again: its first trial's machine died
            "retried_as": retried_as.get(t.number),  # (then this trial counts no more: its retry does)
            "intermediate": {str(k): v for k, v in sorted(t.intermediate_values.items())},
            "started": t.datetime_start.timestamp() if t.datetime_start else None,
            "finished": t.datetime_complete.timestamp() if t.datetime_complete else None,
            "stopped": stopped or interrupted,  # no trainer: it resumes when the study is run again
            "interrupted": interrupted,  # ... because its controller and trainer were killed, not stopped
            "live": live,  # its latest run's trainer is alive here
        })
    return rows


def k_text(k: int, planned: int, state: str) -> str:
    """A trial's k: its seeds with a value; "1/3" while it has not completed (stopped, pruned, failed or
    running), where a bare 1 beside no value read as a one-seed trial."""
    return f"{k}/{planned}" if state != "complete" and planned > k else str(k)


def row_state(r: dict[str, Any]) -> str:
    """A trial row's state as shown: Optuna's, or for a running trial with no trainer, stopped or
    interrupted (both resume when the study is run again)."""
    return "interrupted" if r.get("interrupted") else "stopped" if r["stopped"] else r["state"]


def _controller_gone(attrs: dict[str, Any]) -> bool:
    """Whether a running trial's controller is gone: on this machine, killed with its trainer (the trial
    would read "running" for ever); on another, silent for storage.STALE_S (its heartbeat)."""
    import socket

    from ..ownership import controller_alive

    pid, started = st.worker_of(attrs)
    if attrs.get("host") != socket.gethostname():
        beat = attrs.get(st.BEAT_ATTR)
        return isinstance(beat, (int, float)) and time.time() - beat > st.STALE_S
    return isinstance(pid, int) and not controller_alive(pid, started)


def _running_here(run_ids: list[str], root: str | Path | None) -> tuple[bool, int | None, bool]:
    """A running trial as its runs here tell it: (its latest run ended: stopped, or pruned as the study
    stopped; the furthest step its runs reached so far (None when none of them is here); its latest
    run's trainer is alive).
    Cheap enough for the app's refresh every 2 s: a step comes from the last 64 KiB of each
    events.jsonl, and only a latest run whose trainer is gone is read whole (through its column
    cache) to see whether it ended stopped."""
    from ..ownership import trainer_running
    from ..reader import EventTail, effective_events, summarize
    from ..runs import EVENTS, runs_root

    paths = [p for p in (runs_root(root) / r for r in run_ids) if p.is_dir()]
    steps = [ev["step"] for p in paths for ev in effective_events(EventTail(p / EVENTS, start=-65536).poll())
             if ev.get("kind") in ("train", "run_end") and isinstance(ev.get("step"), int)]  # (a resume's rule)
    last = runs_root(root) / run_ids[-1] if run_ids else None
    live = last is not None and last.is_dir() and bool(trainer_running(last))
    # ended (stopped, or pruned just as the study was stopped): no trainer, nothing killed; the next study
    # run resumes it or tells its end (a pruned one read "interrupted", the word for a killed controller)
    stopped = last is not None and last.is_dir() and not live and summarize(last).state in (
        "stopped", "pruned", "completed", "failed")
    return stopped, max(steps, default=None), live


def _finite(x: Any) -> float | None:
    return x if isinstance(x, (int, float)) and math.isfinite(x) else None


IMPORTANCE_MIN_TRIALS = 5  # fewer completed trials: any split of them "explains" the objective


def importance(study: Any) -> dict[str, float]:
    """optuna.importance.get_param_importances over the parameters that took more than one value among
    the completed trials, or {} while fewer than IMPORTANCE_MIN_TRIALS have completed (with 2 trials a
    parameter that never varied was given 11 %)."""
    from optuna.trial import TrialState

    done = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))]
    seen: dict[str, set[str]] = {}
    for t in done:
        for k, v in t.params.items():
            seen.setdefault(k, set()).add(repr(v))
    varied = sorted(k for k, vs in seen.items() if len(vs) > 1 or any(k not in t.params for t in done))
    if len(done) < IMPORTANCE_MIN_TRIALS or not varied:
        return {}
    try:
        import warnings

        import optuna

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            # Optuna's default (PED-ANOVA) is deterministic and needs no scikit-learn
            return {k: float(v) for k, v in optuna.importance.get_param_importances(study, params=varied).items()}
    except Exception:  # e.g. a single distinct value per parameter
        return {}


def study_summary(name: str, storage_url: str | None, root: str | Path | None = None,
                  with_confirms: bool = True) -> dict[str, Any]:
    storage = st.open_storage(name, storage_url, root)
    study = st.load_study(name, storage)
    return summarize_study(study, name, st._redact(storage_url) if storage_url else str(st.study_dir(name, root) / st.JOURNAL),
                           storage_url, root, with_confirms)


def summarize_study(study: Any, name: str, storage_label: str, storage_url: str | None = None,
                    root: str | Path | None = None, with_confirms: bool = True) -> dict[str, Any]:
    """study_summary of an open Optuna study (the app keeps its storage open and re-reads only what was
    appended)."""
    rows = trial_rows(study, root)
    done = [r for r in rows if r["state"] == "complete" and r["value"] is not None and not r["over_limit"]]
    sign = 1 if study.direction.name == "MINIMIZE" else -1
    best = min(done, key=lambda r: sign * r["value"]) if done else None
    spec_text = study.user_attrs.get(st.SPEC_ATTR, "")
    objective, limit, target, planned = "value", 0, None, 0
    if spec_text:
        try:
            spec = parse(spec_text)[0]
            stored = study.user_attrs.get(st.TARGET_ATTR)  # (a --trials N given to study run or worker)
            objective, limit, target, planned = spec.objective, spec.max_artifact_bytes, spec.target(
                stored if isinstance(stored, int) else None), spec.seeds
        except (UserError, ValueError, KeyError):
            pass
    for r in rows:
        r["seeds_planned"] = planned  # (k of them so far: "1/3" for a trial that has not completed)
    counts = {s: sum(1 for r in rows if r["state"] == s and not r["stopped"] and r["retried_as"] is None)
              for s in ("complete", "running", "pruned", "fail", "waiting")}
    counts["retried"] = sum(1 for r in rows if r["retried_as"] is not None)  # failed, configuration queued again
    counts["stopped"] = sum(1 for r in rows if r["stopped"])  # running in Optuna, no trainer: resumes on study run
    counts["interrupted"] = sum(1 for r in rows if r["interrupted"])  # (of those: the killed ones)
    counts["live"] = sum(1 for r in rows if r["live"])  # running trials whose trainer is alive here
    judged = judge(rows, best, study.direction.name.lower())
    summary = {**judged, "name": name, "target": target,
               "distributions": {k: _dist_kind(d) for k, d in _dists(study).items()}, "direction": study.direction.name.lower(), "objective": objective,
            "storage": storage_label, "max_artifact_bytes": limit or None,
            "counts": counts, "trials": rows, "importance": importance(study),
            "best": None if best is None else {"number": best["number"], "value": best["value"],
                                               "value_se": best["value_se"], "k": best["k"],
                                               "params": best["params"], "runs": best["runs"]},
               "confirm_of": study.user_attrs.get("tuilm_confirm_of"), "confirms": []}
    if with_confirms:
        from .confirm import confirm_summaries

        summary["confirms"] = confirm_summaries(summary, study, storage_url, root)
    return summary


def _dists(study: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for t in study.get_trials(deepcopy=False):
        for k, d in t.distributions.items():
            out.setdefault(k, d)
    return out


def _dist_kind(d: Any) -> str:
    """'log' | 'range' | 'int' | 'choice' (how to draw the parameter's axis)."""
    name = type(d).__name__
    if name == "CategoricalDistribution":
        return "choice"
    if getattr(d, "log", False):
        return "log"
    return "int" if name == "IntDistribution" else "range"


def judge(rows: list[dict[str, Any]], best: dict[str, Any] | None, direction: str) -> dict[str, Any]:
    """Seed-noise judgement (specs/studies.md "Judging results"), written into the rows: ``lucky`` (seed
    index of a best seed beyond seed noise: stats.lucky_seeds), ``vs_best`` and ``vs_baseline`` (stats.compare of the
    trial's per-seed values against the best / the baseline trial, paired over shared seeds). Returns the
    study-level figures: the best against the baseline and against the runner-up."""
    from .stats import compare, lucky_seeds

    done = [r for r in rows if r["state"] == "complete" and r["value"] is not None and r["values"]]
    baseline = next((r for r in done if r["baseline"]), None)
    for r in rows:
        r["lucky"] = lucky_seeds(r["values"], direction) if r["state"] == "complete" else []
        r["vs_best"] = r["vs_baseline"] = None
    for r in done:
        if best is not None and r is not best:
            r["vs_best"] = compare(r["values"], best["values"], r["seeds"], best["seeds"], direction).to_dict()
        if baseline is not None and r is not baseline:
            r["vs_baseline"] = compare(r["values"], baseline["values"], r["seeds"], baseline["seeds"],
                                       direction).to_dict()
    out: dict[str, Any] = {"baseline": None if baseline is None else baseline["number"], "best_vs_baseline": None,
                           "best_vs_runner_up": None}
    if best is not None:
        out["best_vs_baseline"] = best["vs_baseline"]
        sign = 1 if direction == "minimize" else -1
        others = sorted((r for r in done if r is not best and not r.get("over_limit")), key=lambda r: sign * r["value"])
        if others:
            c = compare(best["values"], others[0]["values"], best["seeds"], others[0]["seeds"], direction).to_dict()
            out["best_vs_runner_up"] = {**c, "runner_up": others[0]["number"]}
    return out


def _fmt_v(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def show_command(name: str, storage_url: str | None, console: Console, as_json: bool = False,
                 as_csv: bool = False) -> None:
    summary = study_summary(name, storage_url)
    if as_json:
        sys.stdout.write(json.dumps(summary, indent=2) + "\n")
        return
    keys = sorted({k for r in summary["trials"] for k in r["params"]})
    if as_csv:
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(["number", "state", *keys, "value", "value_se", "k", "steps", "runs", "reason", "host", "seeds",
                    "values", "lucky_seeds", "vs_best_gain", "vs_best_p", "vs_best", "artifact_bytes", "over_limit"])
        for r in summary["trials"]:
            c = r.get("vs_best") or {}
            w.writerow([r["number"], row_state(r), *[r["params"].get(k, "") for k in keys],
                        _csv(r["value"]), _csv(r["value_se"]), r["k"], r["steps"] if r["steps"] is not None else "",
                        " ".join(r["runs"]), r["reason"], r["host"] or "", " ".join(map(str, r["seeds"])),
                        " ".join(map(_csv, r["values"])), " ".join(str(r["seeds"][i]) for i in r.get("lucky", [])),
                        _csv(c.get("gain")), _csv(c.get("p")),
                        "artifact over limit" if r["over_limit"] else c.get("verdict", ""), _csv(r["artifact_bytes"]),
                        "true" if r["over_limit"] else ""])
        sys.stdout.write(buf.getvalue())
        return
    c = summary["counts"]
    n = {**c, "stopped": c["stopped"] - c["interrupted"]}  # (counts["stopped"] has the interrupted ones too)
    counts = [f"{c['complete']} done"] + [f"{n[k]} {word}" for k, word in (
        ("running", "running"), ("stopped", "stopped"), ("interrupted", "interrupted"), ("pruned", "pruned"),
        ("fail", "failed"), ("retried", "retried (machine gone)")) if n[k]]
    console.print(f"study [bold]{escape(name)}[/] · {summary['objective']} ({summary['direction']}) · "
                  + " · ".join(counts), highlight=False)
    console.print(f"storage: {escape(summary['storage'])}", highlight=False)
    if summary.get("max_artifact_bytes"):
        over = sum(1 for r in summary["trials"] if r["over_limit"])
        console.print(f"artifact limit {summary['max_artifact_bytes']:,} bytes: {over} completed trial"
                      f"{'s' if over != 1 else ''} over it (never the best)", highlight=False, markup=False)
    for table in _trials_tables(summary, keys, console.width):
        console.print(table)
    if summary["best"]:
        b = summary["best"]
        se = f" ± {fmt_se(b['value_se'])}" if b["value_se"] is not None else ""
        console.print(f"best: trial {b['number']}: {summary['objective']} {b['value']:.4f}{se} (k={b['k']}) "
                      + " ".join(f"{k}={_fmt_v(v)}" for k, v in b["params"].items()), highlight=False, markup=False)
        console.print(f"runs: {' '.join(b['runs'])}", highlight=False, markup=False)
        c = summary.get("best_vs_runner_up")
        both = bool(c) and bool(summary.get("best_vs_baseline")) and c["runner_up"] == summary.get("baseline")
        if c:  # (a runner-up that is the baseline: one line, not the same verdict twice)
            console.print(f"best vs {'runner-up and baseline' if both else 'runner-up'} (trial {c['runner_up']}): "
                          f"{c['verdict']}", highlight=False)
        if summary.get("best_vs_baseline") and not both:
            console.print(f"best vs baseline (trial {summary['baseline']}): {summary['best_vs_baseline']['verdict']}",
                          highlight=False)
    from .confirm import top_trials

    ranked = [r["number"] for r in top_trials(summary, len(summary["trials"]))]  # the order confirm --top K uses
    for r in summary["trials"]:
        for i in r.get("lucky", []):
            others = [v for j, v in enumerate(r["values"]) if j != i]
            top = ranked.index(r["number"]) + 1 if r["number"] in ranked else None  # confirm re-runs the top K
            how = f"; confirm it: tuilm study confirm {escape(name)} --top {top}" if top else ""
            console.print(f"[yellow]possible lucky run[/]: trial {r['number']} seed {r['seeds'][i]} "
                          f"{summary['objective']} {r['values'][i]:.4f}, its siblings {sum(others) / len(others):.4f} "
                          f"(beyond seed noise at 5 %{how})", highlight=False)
    if summary["importance"]:
        fixed = [k for k in keys if k not in summary["importance"]]
        console.print("importance: " + " · ".join(f"{k} {v:.2f}" for k, v in summary["importance"].items())
                      + (f" ({', '.join(fixed)} did not vary among the completed trials)" if fixed else ""),
                      highlight=False, markup=False)
    elif keys:
        done = summary["counts"]["complete"]
        console.print(f"importance: shown from {IMPORTANCE_MIN_TRIALS} completed trials on ({done} so far)"
                      if done < IMPORTANCE_MIN_TRIALS else "importance: none to show (no parameter varied among the "
                      "completed trials, or Optuna could not compute it)", highlight=False, markup=False)
    if summary.get("confirm_of"):
        of = summary["confirm_of"]
        console.print(f"a confirmation of study {of.get('study')} (trials {', '.join(map(str, of.get('trials', [])))}) "
                      "with fresh seeds", highlight=False, markup=False)
    for rk in summary.get("confirms", []):
        print_ranking(rk, summary["objective"], console)
    failed = [r for r in summary["trials"] if r["state"] == "fail" and r["reason"]]
    for r in failed[:5]:
        console.print(f"[red]trial {r['number']} failed[/]: {escape(str(r['reason']))}", highlight=False)


def print_ranking(rk: dict[str, Any], objective: str, console: Console) -> None:
    """A confirmation's table: original rank and value against the fresh-seed value and rank."""
    from .confirm import fmt_value

    console.print(f"[bold]confirmation {escape(rk['study'])}[/]: {rk['verdict']}", highlight=False)
    table = Table(pad_edge=False, box=None, header_style="bold")
    for col in ("rank", "trial", f"{objective} (study)", "k", "fresh seeds", "k ", "new rank", "state"):
        table.add_column(escape(col), no_wrap=True, justify="left" if col == "state" else "right")
    for r in rk["rows"]:
        table.add_row(str(r["rank"]), str(r["trial"]), fmt_value(r["value"], r["value_se"]), str(r["k"]),
                      fmt_value(r["confirm_value"], r["confirm_se"]), str(r["confirm_k"]),
                      "-" if r["confirm_rank"] is None else str(r["confirm_rank"]), r["state"])
    console.print(table)
    if rk.get("best_vs_runner_up"):
        c = rk["best_vs_runner_up"]
        console.print(f"confirmed best (trial {c['best']}) vs runner-up (trial {c['runner_up']}): {c['verdict']}",
                      highlight=False)


def confirm_command(name: str, storage_url: str | None, top: int, seeds: int | None, parallel: int | None,
                    console: Console, nproc: int = 1) -> int:
    from .confirm import ranking, start

    engine = start(name, storage_url, top, seeds, parallel, console=console, nproc=nproc)
    rc = run_engine(engine, console, create=False)
    original = study_summary(name, storage_url, with_confirms=False)
    rk = ranking(original, study_summary(engine.name, storage_url, with_confirms=False))
    print_ranking(rk, original["objective"], console)
    return rc


def _trials_tables(summary: dict[str, Any], keys: list[str], width: int) -> list[Table]:
    """The trials as `study show` prints them. Nothing a reader compares is ever cut: where the table is
    wider than the terminal, ``host``, ``steps`` and ``k`` go first, then parameter *names* are shortened
    (their values stay whole), and if it is still too wide the parameters get a table of their own below.
    '#' carries the marks the app shows: * the best trial, b the baseline."""
    short = {k: k.split(".", 1)[1] if sum(1 for x in keys if x.split(".", 1)[1] == k.split(".", 1)[1]) == 1 else k
             for k in keys}  # "lr" for optim.lr unless two sections share the key name
    best_n = summary["best"]["number"] if summary["best"] else None
    rows = []
    for r in summary["trials"]:
        state = row_state(r)
        rows.append((state, {
            "#": f"{r['number']}{'*' if r['number'] == best_n else ''}{'b' if r.get('baseline') else ''}",
            "state": state, **{short[k]: _fmt_v(r["params"].get(k)) for k in keys},
            summary["objective"]: "-" if r["value"] is None else f"{r['value']:.4f}",
            "± SE": "-" if r["value_se"] is None else fmt_se(r["value_se"]),
            "k": k_text(r["k"], r.get("seeds_planned", 0), state),
            "steps": "-" if r["steps"] is None else str(r["steps"]),
            "host": r["host"] or "",
            "gain vs best": short_cmp(r) + (" lucky?" if r["lucky"] else "")}))
    hosts = {cells["host"] for _, cells in rows} - {""}
    cols = ["#", "state", *[short[k] for k in keys], summary["objective"], "± SE", "k", "steps", "gain vs best"]
    if len(hosts) > 1:  # a study of several machines: which ran each trial
        cols.append("host")
    cells = {c: max((len(cells[c]) for _, cells in rows), default=0) for c in cols}
    full = {c: max(len(c), cells[c]) for c in cols}
    for optional in ("host", "steps", "k")[0 if "host" in cols else 1:]:
        if sum(full[c] for c in cols) + 2 * (len(cols) - 1) <= width:
            break
        cols.remove(optional)
    named = dict(full)
    over = sum(full[c] for c in cols) + 2 * (len(cols) - 1) - width
    while over > 0:  # shorten the longest parameter name that is wider than its values, a cell at a time
        name = max((c for c in cols if c in short.values() and full[c] > max(cells[c], 3)), key=full.get, default=None)
        if name is None:
            break
        full[name] -= 1
        over -= 1
    params_apart = over > 0 and bool(keys)
    if params_apart:  # still too wide: the parameters get a table of their own, with their full names
        full.update(named)
        tables = [[c for c in cols if c not in short.values()], ["#", *[short[k] for k in keys]]]
    else:
        tables = [cols]
    style = {"complete": "green", "pruned": "magenta", "fail": "red", "running": "cyan", "stopped": "yellow",
             "interrupted": "red"}
    out = []
    for shown in tables:
        table = Table(show_lines=False, pad_edge=False, box=None, header_style="bold")
        for col in shown:
            head = col if len(col) <= full[col] else col[: full[col] - 1] + "…"
            table.add_column(escape(head), overflow="ellipsis", no_wrap=True, width=full[col],
                             justify="left" if col in ("#", "state") else "right")
        for state, cells_ in rows:
            table.add_row(*(f"[{style.get(state, 'dim')}]{escape(cells_[c])}[/]" if c == "state"
                            else escape(cells_[c]) for c in shown))
        out.append(table)
    return out


def short_cmp(r: dict[str, Any]) -> str:
    """A trial row (``trial_rows`` + ``judge``) against the best in a table cell, for `study show` and
    the app: the gain (negative: worse) and p, or 'noise'; over the artifact limit; a pruned value's step."""
    c = r.get("vs_best")
    if r.get("over_limit"):
        return "artifact over limit"
    if r["state"] == "pruned" and r["value"] is not None and r.get("intermediate"):
        # Optuna keeps the value the pruner judged; the run itself went on to its stop
        return f"at step {max(int(s) for s in r['intermediate'])}"
    if not c:
        return "best" if r["state"] == "complete" and r["value"] is not None and r.get("k") else ""
    if c["method"] == "none":
        return f"{c['gain']:+.4f} k=1"
    if not c["significant"]:
        return f"{c['gain']:+.4f} noise"
    p = c["p"]
    return f"{c['gain']:+.4f} p{'<0.001' if p < 0.001 else f'={p:.2g}'}"


def _csv(x: Any) -> str:
    return "" if x is None else repr(x) if isinstance(x, float) else str(x)


def counts_text(c: Any, target: int | None) -> str:
    """A study's trials at a glance, one wording for `study list`, the studies list and the study view:
    the trials ended of the target, then how ("6/6: 3 done, 3 pruned"; "3/6 done" read as half of a
    finished study). ``c``: the summary's counts (stopped includes interrupted)."""
    get = lambda k: int(c.get(k, 0) or 0)  # noqa: E731
    parts = [f"{n} {word}" for n, word in ((get("complete"), "done"), (get("pruned"), "pruned"), (get("fail"), "failed"),
                                           (get("running"), "running"), (get("stopped") - get("interrupted"), "stopped"),
                                           (get("interrupted"), "interrupted"), (get("retried"), "retried")) if n]
    ended = get("complete") + get("pruned") + get("fail")
    return (f"{ended}/{target}" if target else str(ended)) + (": " + ", ".join(parts) if parts else "")


def study_state(summary: dict[str, Any], sdir: Path | None) -> str:
    """running | stopping | stopped | interrupted | finished | idle: one wording for `study list` and
    the app. Interrupted: a trial's controller and trainer were killed (not stopped)."""
    c = summary["counts"]
    stopping = sdir is not None and (sdir / st.STOP_FILE).exists()
    if c["running"]:
        return "stopping" if stopping else "running"
    if c.get("stopped"):  # stopped trials, no trainer: the next study run resumes them
        return "interrupted" if c.get("interrupted") else "stopped"
    target = summary.get("target")
    if target is not None and c["complete"] + c["pruned"] + c["fail"] >= target:
        return "finished"
    return "idle"


def list_command(storage_url: str | None, console: Console) -> None:
    import optuna

    names: list[tuple[str, str | None]] = []
    if storage_url:
        storage = st.open_storage("", storage_url, create=False)
        names = [(s.study_name, storage_url) for s in optuna.get_all_study_summaries(storage, include_best_trial=False)]
    else:
        from ..runs import require_runs_folder

        require_runs_folder()
        names = [(p.name, None) for p in st.list_local_studies()]
    if not names:
        where = st._redact(storage_url) if storage_url else f"{st.studies_root()}/"
        console.print(f"no studies in {where}", highlight=False, markup=False)
        return
    rows: list[tuple[str, ...]] = []
    for name, url in names:
        try:
            s = study_summary(name, url)
        except UserError as e:
            rows.append((escape(name), "[red]unreadable[/]", "", "", escape(str(e)), ""))
            continue
        c = s["counts"]
        last = max((r["finished"] or r["started"] or 0 for r in s["trials"]), default=0)
        state = study_state(s, None if url else st.study_dir(name))
        best = s["best"]
        rows.append((escape(name), state, counts_text(c, s.get("target")), "-" if not best else f"{best['value']:.4f}",
                     "" if not best else escape(" ".join(f"{short_key(k, list(best['params']))}={_fmt_v(v)}"
                                                         for k, v in best["params"].items())),
                     time.strftime("%m-%d %H:%M", time.localtime(last)) if last else "-"))  # as the app
    # the best params wrap between "name=value" items, never inside one: the column is at least the
    # widest item wide (the last activity gives way first)
    widest = max((len(item) for r in rows if "unreadable" not in r[1] for item in r[4].split()), default=11)
    cols = ["study", "state", "trials", "best", "best params", "last activity"]
    need = sum(max(len(cols[i]), *(len(Text.from_markup(r[i]).plain) for r in rows)) for i in range(4))
    need += widest + len(cols[5])  # (the best params at their narrowest, the date as wide as its header)
    if need + 2 * (len(cols) - 1) > console.width:  # at 80 columns the last activity gives way, not cut to "12"
        cols.pop()
        rows = [r[:5] for r in rows]
        if need - len("last activity") + 2 * (len(cols) - 1) > console.width:  # then the best params, whole or
            cols.pop()  # not at all: Rich cut them to "weight_dec" (`study show NAME` gives them)
            rows = [r[:4] for r in rows]
    table = Table(pad_edge=False, box=None, header_style="bold")
    for col in cols:
        table.add_column(col, no_wrap=col != "best params", overflow="fold" if col == "best params" else "ellipsis",
                         min_width=widest if col == "best params" else None)
    for r in rows:
        table.add_row(*r)
    console.print(table)
    where = st._redact(storage_url) if storage_url else f"{st.studies_root()}/ (a journal file each)"
    console.print(f"storage: {where}", style="dim", highlight=False, markup=False, soft_wrap=True)  # (a path whole)


def compare_command(name: str, storage_url: str | None, a: int, b: int, console: Console,
                    as_json: bool = False) -> int:
    """Trial ``a`` against trial ``b`` of one study, seed by seed (specs/studies.md "Judging results"):
    paired over the seeds both ran, Welch's t-test when they share fewer than 2."""
    from .stats import compare

    if a == b:  # (as `runs compare` refuses a run named twice)
        raise UserError(f"trial {a} is named twice: compare two different trials of study {name}", exit_code=2)
    summary = study_summary(name, storage_url, with_confirms=False)
    rows = {r["number"]: r for r in summary["trials"]}
    for n in (a, b):
        if n not in rows:
            raise UserError(f"study {name} has no trial {n} (trials 0-{max(rows)})" if rows else
                            f"study {name} has no trials yet")
        if not rows[n]["values"]:
            raise UserError(f"trial {n} of study {name} has no finished seed to compare ({rows[n]['state']})")
    ra, rb = rows[a], rows[b]
    c = compare(ra["values"], rb["values"], ra["seeds"], rb["seeds"], summary["direction"])
    if as_json:
        sys.stdout.write(json.dumps({"study": name, "a": a, "b": b, "objective": summary["objective"],
                                     "direction": summary["direction"], **c.to_dict()}, indent=2) + "\n")
        return 0
    va, vb = dict(zip(ra["seeds"], ra["values"])), dict(zip(rb["seeds"], rb["values"]))
    table = Table(pad_edge=False, box=None, header_style="bold")
    sign = -1 if summary["direction"] == "minimize" else 1  # gain: how much better a is, as the verdict says
    for col in ("seed", f"trial {a}", f"trial {b}", f"gain ({a} better: +)"):
        table.add_column(col, justify="right")
    for seed in sorted(set(va) | set(vb)):
        x, y = va.get(seed), vb.get(seed)
        table.add_row(str(seed), "-" if x is None else f"{x:.4f}", "-" if y is None else f"{y:.4f}",
                      "-" if x is None or y is None else f"{sign * (x - y):+.4f}")
    console.print(f"study {name} · {summary['objective']} ({summary['direction']}): trial {a} vs trial {b}",
                  highlight=False, markup=False)
    console.print(table)
    console.print(f"trial {a} is {c.verdict}" if c.significant else f"trial {a} vs {b}: {c.verdict}",
                  highlight=False, markup=False, soft_wrap=True)
    return 0


def request_stop(name: str, storage_url: str | None, root: str | Path | None = None) -> str | None:
    """Ask every controller of the study to stop cleanly (running trials checkpoint and end stopped):
    a request file beside its journal and an attribute in its storage (for other machines). None when
    asked; when no trial of it is running, nothing is asked and the return says so."""
    from ..config.write import atomic_write_text

    storage = st.open_storage(name, storage_url, root)
    study = st.load_study(name, storage)
    running = [r for r in trial_rows(study, root) if r["state"] == "running"]
    if not any(not r["stopped"] for r in running):
        n, killed = len(running), sum(1 for r in running if r.get("interrupted"))
        how = "stopped" if not killed else "interrupted" if killed == n else "stopped or interrupted"
        more = (f"; its {n} {how} trial{'s' if n != 1 else ''} continue{'s' if n == 1 else ''} with "
                f"`{continue_command(name, storage_url)}`") if running else ""
        return f"study {name} has no running trial: nothing to stop{more}"
    sdir = st.study_dir(name, root)
    sdir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(sdir / st.STOP_FILE, f"{time.time()}\n")
    study.set_user_attr(st.STOP_ATTR, time.time())
    return None


def stop_command(name: str, storage_url: str | None, console: Console) -> int:
    """`tuilm study stop`: exit 1, asking nothing, when no trial is running (as `tuilm stop` on a run)."""
    refused = request_stop(name, storage_url)
    if refused:  # an error on stderr, as `tuilm stop` says of a run with no trainer
        raise UserError(refused)
    console.print(f"asked study {name} to stop: running trials checkpoint and end stopped; "
                  f"`{continue_command(name, storage_url)}` continues it", highlight=False, markup=False)
    return 0

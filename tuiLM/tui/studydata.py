"""Study data for the app: the studies list and one study's view, read in worker threads.

Each study's Optuna storage stays open in the worker (a journal storage re-reads only what was appended),
so a refresh never re-parses every run. Only the top-k trials' run files are read (their validation
curves over seeds), each through ``reader.RunReader``: a running trial's file is read only where it
grew, an ended one's curve is kept by its size. Everything handed to widgets is an immutable snapshot.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import UserError
from ..runs import EVENTS, runs_root

TOP_K = 5


@dataclass(frozen=True)
class StudyRow:
    """One line of the studies list."""

    name: str
    state: str  # running | stopping | stopped | finished | idle | unreadable
    complete: int = 0
    running: int = 0
    pruned: int = 0
    failed: int = 0
    target: int | None = None
    best_value: float | None = None
    best_se: float | None = None
    best_k: int = 0
    best_params: tuple[tuple[str, Any], ...] = ()
    objective: str = "val_bpb"
    storage: str = ""
    last_activity: float | None = None
    confirm_of: str | None = None
    error: str = ""
    stopped: int = 0  # running in Optuna, no trainer: the next study run resumes them
    interrupted: int = 0  # of those: killed with their controller, not stopped
    live: int = 0  # running trials whose trainer is alive here
    retried: int = 0  # failed for their machine's silence, configurations run again (counted no more)


@dataclass(frozen=True)
class TrialView:
    number: int
    state: str
    params: tuple[tuple[str, Any], ...]
    value: float | None
    se: float | None
    k: int
    values: tuple[float, ...]
    seeds: tuple[int, ...]
    steps: int | None
    host: str
    runs: tuple[str, ...]
    lucky: tuple[int, ...]
    baseline: bool
    vs_best: str  # a short cell: gain and p, or "noise"
    reason: str
    intermediate: tuple[tuple[int, float], ...]
    over_limit: bool = False  # its artifact is over study.max_artifact_bytes: never the best
    live: bool = False  # running, its latest run's trainer alive here (x can stop it)
    planned: int = 0  # seeds a trial runs (study.seeds): k of them so far

    def param(self, key: str) -> Any:
        for k, v in self.params:  # a handful of parameters: a scan beats building a dict per call
            if k == key:
                return v
        return None


@dataclass(frozen=True)
class Curve:
    """A trial's validation curves over its seeds (one x grid): drawn as a mean line with a band."""

    number: int
    state: str
    steps: tuple[int, ...]
    per_seed: tuple[tuple[float, ...], ...]  # [seed][step]; NaN where a seed has no value there


@dataclass(frozen=True)
class StudySnapshot:
    name: str
    objective: str
    direction: str
    state: str
    storage: str
    counts: tuple[tuple[str, int], ...]
    target: int | None
    trials: tuple[TrialView, ...]
    keys: tuple[str, ...]
    dists: tuple[tuple[str, str], ...]  # key -> log | range | int | choice
    importance: tuple[tuple[str, float], ...]
    best: int | None
    baseline: int | None
    verdicts: tuple[str, ...]  # best vs runner-up / baseline, lucky runs, confirmations
    curves: tuple[Curve, ...] = ()
    token: float = field(default=0.0)

    def count(self, state: str) -> int:
        return dict(self.counts).get(state, 0)


class StudyReader:
    """Keeps each study's storage open between refreshes (journal storages read only what was appended)."""

    def __init__(self, root: Path | None):
        self.root = root
        self._open: dict[str, tuple[float, Any]] = {}
        self._curves: dict[tuple[Path, str], tuple[int, list[tuple[int, float]]]] = {}
        self._readers: dict[Path, Any] = {}  # running trials' RunReaders (incremental)

    def study(self, name: str) -> Any:
        from ..study import storage as st

        path = st.study_dir(name, self.root) / st.JOURNAL
        try:
            mtime = path.stat().st_mtime_ns
        except OSError:
            raise UserError(f"no study {name!r}") from None
        hit = self._open.get(name)
        if hit is None:
            storage = st.open_storage(name, None, self.root)
            study = st.load_study(name, storage)
            self._open[name] = (mtime, study)
            return study
        return hit[1]

    def summary(self, name: str, with_confirms: bool = False) -> dict[str, Any]:
        from ..study import storage as st
        from ..study.report import summarize_study

        study = self.study(name)
        return summarize_study(study, name, str(st.study_dir(name, self.root) / st.JOURNAL), None, self.root,
                               with_confirms=with_confirms)

    def rows(self) -> list[StudyRow]:
        from ..study import storage as st
        from ..study.report import study_state

        out = []
        for sdir in st.list_local_studies(self.root):
            name = sdir.name
            try:
                s = self.summary(name)
            except Exception as e:  # a damaged journal: one row says so, the others still show
                out.append(StudyRow(name, "unreadable", error=str(e).splitlines()[0] if str(e) else type(e).__name__))
                continue
            c = s["counts"]
            last = max((r["finished"] or r["started"] or 0 for r in s["trials"]), default=0) or None
            b = s["best"]
            of = s.get("confirm_of") or {}
            out.append(StudyRow(
                name, study_state(s, sdir), c["complete"], c["running"], c["pruned"], c["fail"], s.get("target"),
                b["value"] if b else None, b["value_se"] if b else None, b["k"] if b else 0,
                tuple(b["params"].items()) if b else (), s["objective"], s["storage"], last,
                of.get("study") if isinstance(of, dict) else None, stopped=c["stopped"],
                interrupted=c.get("interrupted", 0), live=c.get("live", 0), retried=c.get("retried", 0)))
        return out

    def snapshot(self, name: str, top_k: int = TOP_K) -> StudySnapshot:
        from ..study import storage as st
        from ..study.report import row_state, short_cmp, study_state

        s = self.summary(name, with_confirms=True)
        best_n = s["best"]["number"] if s["best"] else None
        trials = tuple(TrialView(
            r["number"], row_state(r), tuple(r["params"].items()), r["value"], r["value_se"], r["k"],
            tuple(r["values"]), tuple(r["seeds"]), r["steps"], r["host"] or "", tuple(r["runs"]), tuple(r["lucky"]),
            r["baseline"], short_cmp(r),
            r["reason"], tuple((int(k), float(v)) for k, v in r["intermediate"].items()), r["over_limit"],
            bool(r.get("live")), r.get("seeds_planned", 0))
            for r in s["trials"])
        verdicts = []
        c = s.get("best_vs_runner_up")
        both = bool(c) and bool(s.get("best_vs_baseline")) and c["runner_up"] == s.get("baseline")  # one line
        if c:
            what = "runner-up and baseline" if both else "runner-up"
            verdicts.append(f"best (trial {best_n}) vs {what} (trial {c['runner_up']}): {c['verdict']}")
        if s.get("best_vs_baseline") and not both:
            verdicts.append(f"best vs baseline (trial {s['baseline']}): {s['best_vs_baseline']['verdict']}")
        for r in s["trials"]:
            for i in r["lucky"]:
                others = [v for j, v in enumerate(r["values"]) if j != i]
                verdicts.append(f"possible lucky run: trial {r['number']} seed {r['seeds'][i]} "
                                f"{r['values'][i]:.4f} vs its siblings' {sum(others) / len(others):.4f}")
        for rk in s.get("confirms", []):
            verdicts.append(f"confirmation {rk['study']}: {rk['verdict']}")
        keys = tuple(sorted({k for r in s["trials"] for k in r["params"]}))
        return StudySnapshot(
            name, s["objective"], s["direction"], study_state(s, st.study_dir(name, self.root)), s["storage"],
            tuple(s["counts"].items()), s.get("target"), trials, keys, tuple(s["distributions"].items()),
            tuple(s["importance"].items()), best_n, s.get("baseline"), tuple(verdicts),
            self.curves(trials, s["direction"], s["objective"], top_k), time.monotonic())

    def curves(self, trials: tuple[TrialView, ...], direction: str, objective: str, top_k: int) -> tuple[Curve, ...]:
        """The top-k complete trials over all their seeds, then running/pruned trials' curves (truncated)."""
        sign = 1 if direction == "minimize" else -1
        done = sorted((t for t in trials if t.state == "complete" and t.value is not None and not t.over_limit),
                      key=lambda t: sign * t.value)
        others = [t for t in trials if t.state in ("pruned", "running", "stopped", "interrupted")][-top_k:]  # recent
        pick = done[:top_k] + others
        out = []
        for t in pick:
            per_run = [self._evals(runs_root(self.root) / rid, objective) for rid in t.runs]
            per_run = [p for p in per_run if p]
            if not per_run:
                continue
            steps = sorted({s for p in per_run for s, _ in p})
            grid = tuple(tuple(dict(p).get(s, math.nan) for s in steps) for p in per_run)
            out.append(Curve(t.number, t.state, tuple(steps), grid))
        return tuple(out)

    def _evals(self, run_dir: Path, objective: str) -> list[tuple[int, float]]:
        import numpy as np

        from ..reader import RunReader

        path = run_dir / EVENTS
        try:
            size = path.stat().st_size
        except OSError:
            return []
        hit = self._curves.get((path, objective))
        if hit is not None and hit[0] == size:
            return hit[1]
        reader = self._readers.get(path) or self._readers.setdefault(path, RunReader(run_dir))
        reader.poll()  # only what was appended since the last refresh (the resume rule applied)
        # an eval metric, else a model diagnostic (diag events; some ride along in train events)
        table = next((t for t in (reader.tables[k] for k in ("eval", "diag", "train")) if t.col(objective) is not None),
                     reader.tables["eval"])
        steps, vals = table.col("step"), table.col(objective)
        pts = [] if steps is None or vals is None else [
            (int(a), float(b)) for a, b in zip(steps, vals) if np.isfinite(a) and np.isfinite(b)]
        if reader.state not in ("new", "running"):  # ended: its curve is kept by size (a resume re-reads)
            del self._readers[path]
        self._curves[(path, objective)] = (size, pts)
        return pts

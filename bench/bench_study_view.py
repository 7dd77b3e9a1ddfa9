"""The study view with 500 trials: how long a redraw takes, and what the worker spends reading the storage.

A synthetic study (Optuna journal file, 500 trials of 3 seeds over 3 parameters, top-5 trials with eval
curves in run folders, like the engine writes them) is opened in the app; then:

1. snapshot: the worker's read of the storage into an immutable snapshot (journal re-read, per-trial
   statistics against the best and the baseline, importance, top-k curves) — off the UI thread;
2. redraw: on the UI thread, a new snapshot applied (trials table rebuilt and sorted, best-so-far curve,
   top-k seed bands, scatter, importance) plus every visible widget's lines rendered, as a repaint does.

    python bench/bench_study_view.py [--trials 500] [--repeats 20]
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import math
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
from textual.geometry import Region  # noqa: E402

from tuiLM.config.load import default_preset  # noqa: E402
from tuiLM.config.write import dumps_resolved  # noqa: E402
from tuiLM.tui.app import make_app  # noqa: E402
from tuiLM.tui.screens.studies import StudiesScreen  # noqa: E402
from tuiLM.tui.screens.study import StudyScreen  # noqa: E402
from tuiLM.tui.studydata import StudyReader  # noqa: E402

SPEC = """[study]
name = "bench"
base = "base.toml"
trials = {trials}
seeds = 3
sampler = "random"
pruner = "median"
baseline = true

[space]
"optim.lr" = {{ log = [1e-4, 1e-2] }}
"optim.weight_decay" = {{ range = [0.0, 0.2] }}
"model.n_layers" = {{ int = [2, 8] }}
"""


def make_study(root: Path, trials: int) -> None:
    import optuna
    from optuna.distributions import FloatDistribution, IntDistribution
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend
    from optuna.trial import TrialState, create_trial

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sdir = root / "studies" / "bench"
    sdir.mkdir(parents=True)
    storage = JournalStorage(JournalFileBackend(str(sdir / "journal.log")))
    study = optuna.create_study(study_name="bench", storage=storage, direction="minimize")
    study.set_user_attr("tuilm_spec", SPEC.format(trials=trials))
    study.set_user_attr("tuilm_base", dumps_resolved(default_preset()))
    rng = np.random.default_rng(0)
    dists = {"optim.lr": FloatDistribution(1e-4, 1e-2, log=True), "optim.weight_decay": FloatDistribution(0.0, 0.2),
             "model.n_layers": IntDistribution(2, 8)}
    seed_effect = rng.normal(0, 0.02, 3)
    made = []
    for n in range(trials):
        lr = float(10 ** rng.uniform(-4, -2))
        wd = float(rng.uniform(0, 0.2))
        nl = int(rng.integers(2, 9))
        base = 1.2 + 0.3 * (math.log10(lr) + 2.5) ** 2 + 0.2 * wd - 0.01 * nl
        state = TrialState.PRUNED if n % 4 == 3 else TrialState.COMPLETE
        values = [base + e + float(rng.normal(0, 0.005)) for e in seed_effect]
        attrs = {"host": "bench", "runs": [f"bench-t{n:03d}-s{k}" for k in range(3)], "steps": 300}
        inter = {s: base + 2.0 / (1 + s / 30) for s in range(25, 301, 25)}
        if state == TrialState.COMPLETE:
            attrs.update(values=values, value_se=float(np.std(values, ddof=1) / math.sqrt(3)))
            value = float(np.mean(values))
        else:
            attrs.update(prune_reason="pruned by the median pruner", steps=100)
            inter = {s: v for s, v in inter.items() if s <= 100}
            value = inter[100]
            values = []
        if n == 0:
            attrs["baseline"] = True
        made.append((value, n, values, state))
        study.add_trial(create_trial(params={"optim.lr": lr, "optim.weight_decay": wd, "model.n_layers": nl},
                                     distributions=dists, value=value, state=state, user_attrs=attrs,
                                     intermediate_values=inter))
    # eval curves of every trial's seeds in run folders (the view reads only the top-k and recent pruned)
    for value, n, values, state in made:
        for k in range(3 if values else 1):
            run = root / f"bench-t{n:03d}-s{k}"
            run.mkdir()
            final = values[k] if values else value
            steps = range(25, 301 if values else 101, 25)
            with open(run / "events.jsonl", "w") as fh:
                for s in steps:
                    fh.write(json.dumps({"kind": "eval", "step": s, "val_bpb": final + 2.0 / (1 + s / 30)
                                         - 2.0 / (1 + 300 / 30)}) + "\n")


async def measure(root: Path, size: tuple[int, int], repeats: int) -> dict[str, float]:
    app = make_app(runs_root=root)
    async with app.run_test(size=size) as pilot:
        await pilot.press("3")
        while not (isinstance(app.screen, StudiesScreen) and app.screen.refreshes):
            await pilot.pause(0.05)
        await pilot.press("enter")
        while not (isinstance(app.screen, StudyScreen) and app.screen.refreshes):
            await pilot.pause(0.05)
        await pilot.pause(0.5)
        screen: StudyScreen = app.screen
        snap = screen.snapshot

        def render_all() -> None:
            for w in screen.query("*"):
                if w.display and w.size.area and hasattr(w, "render_lines"):
                    w.render_lines(Region(0, 0, w.size.width, w.size.height))  # what a repaint draws

        live, resort = [], []
        for i in range(repeats):
            # a live refresh: a fresh snapshot in which 5 trials moved on (steps, value), as while a study runs
            trials = list(snap.trials)
            for j in range(5):
                n = (i * 5 + j) % len(trials)
                t = trials[n]
                trials[n] = dataclasses.replace(t, steps=(t.steps or 0) + i + 1,
                                                value=None if t.value is None else t.value + 1e-4 * (i + 1))
            new = dataclasses.replace(snap, trials=tuple(trials), token=snap.token + i + 1)
            t0 = time.perf_counter()
            screen.apply(new)
            render_all()
            live.append(time.perf_counter() - t0)
            await pilot.pause(0.01)
            # a re-sort of every row (o: value <-> a parameter)
            t0 = time.perf_counter()
            screen.action_sort()
            render_all()
            resort.append(time.perf_counter() - t0)
            await pilot.pause(0.01)
        rows = screen.query_one("#study-table").row_count
        times = live
    return {"redraw_ms": statistics.median(times) * 1e3, "redraw_max_ms": max(times) * 1e3, "rows": rows,
            "resort_ms": statistics.median(resort) * 1e3}


def reference_ms() -> float:
    """A fixed pure-Python workload timed in the same run (compare it between runs of this bench): how
    loaded the machine was while the figures above were taken."""
    times = []
    for _ in range(5):
        t = time.perf_counter()
        sum(i * i for i in range(500_000))
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1e3


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=500)
    ap.add_argument("--repeats", type=int, default=20)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "runs"
        root.mkdir()
        t = time.perf_counter()
        make_study(root, args.trials)
        print(f"synthetic study: {args.trials} trials x 3 seeds, written in {time.perf_counter() - t:.1f} s")
        reader = StudyReader(root)
        t = time.perf_counter()
        reader.snapshot("bench")
        cold = time.perf_counter() - t
        warm = []
        for _ in range(3):
            t = time.perf_counter()
            reader.snapshot("bench")
            warm.append(time.perf_counter() - t)
        print(f"worker snapshot (storage read + statistics + top-k curves): cold {cold * 1e3:.0f} ms, "
              f"warm {statistics.median(warm) * 1e3:.0f} ms (off the UI thread)")
        print(f"reference workload: {reference_ms():.1f} ms (the load on the machine; see reference_ms)")
        for size in ((160, 48), (80, 24)):
            r = asyncio.run(measure(root, size, args.repeats))
            print(f"study view at {size[0]}x{size[1]}, {r['rows']} trials: live redraw (new snapshot) median "
                  f"{r['redraw_ms']:.1f} ms, max {r['redraw_max_ms']:.1f} ms (goal: at most 50 ms); "
                  f"re-sort of every row + redraw median {r['resort_ms']:.1f} ms")
            print(f"reference workload: {reference_ms():.1f} ms")


if __name__ == "__main__":
    main()

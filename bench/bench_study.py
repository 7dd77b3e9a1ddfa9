"""A search that saves compute: the full grid of a 3 x 3 x 3 space against TPE + ASHA on the same space.

    python bench/bench_study.py [--study-seeds 3] [--tpe-trials 12] [--steps 180] [--eval-every 20]

The task is CPU-sized: a tiny byte-level GPT on the built-in corpus (d_model 64, 2 layers, seq_len 64,
batch 8) for ``--steps`` steps, evaluated every ``--eval-every`` steps on 8 validation batches. The
space is learning rate x warm-up x weight decay, 3 values each. Every run uses the same run.seed (the
same initialisation and data order), so the grid's 27 runs are the ground truth for every point of the
space. The grid runs once (sampler = grid, no pruner); TPE + ASHA runs ``--study-seeds`` times with
different sampler seeds. Each run of the engine is the real thing: `StudyEngine` in this process, a
journal file, one trainer process per trial.

Printed: each study's best val_bpb, its trainer steps (the last step each trial reached, summed),
and the ratios to the grid, with the median over study seeds; then the scheduler's own overhead per
trial (ask -> trainer spawned, from the trials' attributes) and, for reference, the time from ask to
the trainer's first train event against a bare trainer start of the same preset (spawn -> first train
event), whose difference is the overhead as the issue defines it (noisy on a shared machine).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tuiLM.config.load import load_text  # noqa: E402
from tuiLM.config.write import dumps_resolved  # noqa: E402
from tuiLM.reader import read_events  # noqa: E402
from tuiLM.runs import EVENTS  # noqa: E402
from tuiLM.study.engine import StudyEngine  # noqa: E402
from tuiLM.study.spec import parse  # noqa: E402

BASE = """
[model]
arch = "gpt"
n_layers = 2
d_model = 64
n_heads = 4
dropout = 0.0
activation = "relu2"
norm = "rmsnorm"
[data]
max_bytes = 1_000_000
seq_len = 64
[train]
max_steps = {steps}
device_batch_size = 8
log_every = 10
[schedule]
decay = "cosine"
[eval]
every = {eval_every}
batches = 8
[sample]
every = 0
[checkpoint]
every = 0
[diag]
every = 0
[system]
device = "cpu"
threads = 1
"""

SPACE = """
[space]
"optim.lr" = { choice = [0.001, 0.003, 0.01] }
"schedule.warmup_steps" = { choice = [0, 20, 60] }
"optim.weight_decay" = { choice = [0.0, 0.1, 0.2] }
"""


def study_text(name: str, sampler: str, pruner: str, trials: int, seed: int, prune_after: int = 0) -> str:
    return (f'[study]\nname = "{name}"\nbase = "base.toml"\nsampler = "{sampler}"\npruner = "{pruner}"\n'
            f"trials = {trials}\nseed = {seed}\nprune_after = {prune_after}\n" + SPACE)


def run_study(root: Path, text: str, base, parallel: int = 1) -> dict:
    spec, problems = parse(text, root / "study.toml")
    assert not [p for p in problems if p.is_error], problems
    engine = StudyEngine(spec, base, root=root / "runs", console=None, say=lambda s: None, poll_s=0.1,
                         parallel=parallel)
    t0 = time.monotonic()
    engine.open()
    engine.run()
    wall = time.monotonic() - t0
    trials = engine.study.get_trials(deepcopy=False)
    done = [t for t in trials if t.value is not None and t.state.name == "COMPLETE"]
    best = min(done, key=lambda t: t.value)
    steps = sum(int(t.user_attrs.get("steps") or 0) for t in trials)
    overhead, first_step = [], []
    for t in trials:
        a = t.user_attrs
        if "spawned_at" in a and "asked_at" in a:
            overhead.append(a["spawned_at"] - a["asked_at"])
        runs = a.get("runs", [])
        if runs and "asked_at" in a:
            train = [e for e in read_events(root / "runs" / runs[0] / EVENTS) if e["kind"] == "train"]
            if train:
                first_step.append(train[0]["time"] - a["asked_at"])
    return {"best": best.value, "best_params": best.params, "steps": steps, "trials": len(trials),
            "pruned": sum(t.state.name == "PRUNED" for t in trials), "wall_s": wall,
            "overhead": overhead, "first_step": first_step}


def bare_start(root: Path, base, repeats: int) -> list[float]:
    """Spawn -> first train event of the same preset, without a study."""
    from tuiLM.launch import create_run, spawn_trainer

    out = []
    for i in range(repeats):
        run_dir = create_run(base.with_values({"train.max_steps": 20}), name=f"bare{i}", root=root / "runs")
        t0 = time.time()
        proc = spawn_trainer(run_dir)
        proc.wait()
        train = [e for e in read_events(run_dir / EVENTS) if e["kind"] == "train"]
        out.append(train[0]["time"] - t0)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--study-seeds", type=int, default=3)
    ap.add_argument("--tpe-trials", type=int, default=12)
    ap.add_argument("--steps", type=int, default=180)
    ap.add_argument("--eval-every", type=int, default=20)
    ap.add_argument("--bare-repeats", type=int, default=3)
    ap.add_argument("--prune-after", type=int, default=0, help="study.prune_after for TPE + ASHA (60 = the "
                    "longest warm-up in the space)")
    ap.add_argument("--grid-parallel", type=int, default=2, help="grid trials at once (each run is seeded and "
                    "single-threaded, so its value does not depend on this)")
    ap.add_argument("--json", type=Path, help="also write the raw figures here")
    args = ap.parse_args()
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    tmp = Path(tempfile.mkdtemp(prefix="bench-study-"))
    base_text = BASE.replace("{steps}", str(args.steps)).replace("{eval_every}", str(args.eval_every))
    base, problems = load_text(base_text)
    assert not [p for p in problems if p.is_error], problems
    (tmp / "base.toml").write_text(dumps_resolved(base))
    print(f"task: GPT d_model 64 x 2 layers, {args.steps} steps, eval every {args.eval_every}; space 3 x 3 x 3; "
          f"{os.cpu_count()} CPUs; folder {tmp}", flush=True)

    grid = run_study(tmp / "grid", study_text("grid", "grid", "none", 27, 0), base, parallel=args.grid_parallel)
    print(f"grid           best val_bpb {grid['best']:.4f}  steps {grid['steps']:6d}  trials {grid['trials']}  "
          f"({grid['wall_s']:.0f} s)  best {grid['best_params']}", flush=True)
    rows = []
    for seed in range(args.study_seeds):
        r = run_study(tmp / f"tpe{seed}", study_text(f"tpe{seed}", "tpe", "asha", args.tpe_trials, seed,
                                                          args.prune_after), base)
        r["value_ratio"] = r["best"] / grid["best"]
        r["steps_ratio"] = r["steps"] / grid["steps"]
        rows.append(r)
        print(f"tpe+asha s{seed}   best val_bpb {r['best']:.4f}  steps {r['steps']:6d}  trials {r['trials']} "
              f"({r['pruned']} pruned)  ({r['wall_s']:.0f} s)  best/grid {r['value_ratio']:.4f}  "
              f"steps/grid {r['steps_ratio']:.3f}", flush=True)
    med_v = statistics.median(r["value_ratio"] for r in rows)
    med_s = statistics.median(r["steps_ratio"] for r in rows)
    print(f"median over {len(rows)} study seeds: best val_bpb / grid {med_v:.4f} (goal <= 1.01), "
          f"trainer steps / grid {med_s:.3f} (goal <= 0.40)")
    overhead = [x for r in [grid, *rows] for x in r["overhead"]]
    first = [x for r in [grid, *rows] for x in r["first_step"]]
    bare = bare_start(tmp / "bare", base, args.bare_repeats) if args.bare_repeats else [math.nan]
    print(f"scheduler overhead per trial (ask -> trainer spawned): median {statistics.median(overhead) * 1000:.0f} ms, "
          f"max {max(overhead) * 1000:.0f} ms over {len(overhead)} trials (goal < 500 ms)")
    print(f"ask -> first train event: median {statistics.median(first):.2f} s, of which the trainer's own start "
          f"(spawn -> first train event) is the rest; a bare trainer start of the same preset: median "
          f"{statistics.median(bare):.2f} s ({', '.join(f'{b:.2f}' for b in bare)}), measured after the studies "
          f"(another load)")
    if args.json:
        args.json.write_text(json.dumps({"grid": grid, "tpe": rows, "bare": bare}, indent=2, default=str))


if __name__ == "__main__":
    main()

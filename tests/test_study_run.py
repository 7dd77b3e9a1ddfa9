"""Studies end to end: real trainers, Optuna's own journal and PostgreSQL storages, pruning, recovery
after a SIGKILL of the controller, and two workers on one study."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from tuiLM.config.write import dumps_resolved
from tuiLM.reader import effective_events, read_events
from tuiLM.runs import EVENTS, PIDFILE, list_runs
from tuiLM.study.storage import worker_of
from tuiLM.reader import summarize

from .conftest import ROOT, TINY_GPT, make_preset

pytestmark = pytest.mark.slow


def write_study(tmp_path: Path, name: str, space: str, *, base: dict | None = None, **study) -> Path:
    preset = make_preset({**TINY_GPT, "train.log_every": 5, "diag.every": 0, "optim.lr": 3e-3, **(base or {})})
    (tmp_path / "base.toml").write_text(dumps_resolved(preset))
    settings = {"name": name, "base": "base.toml", "trials": 2, "seeds": 1, "sampler": "random", "pruner": "none",
                **study}
    lines = ["[study]"] + [f"{k} = {json.dumps(v)}" for k, v in settings.items()] + ["", "[space]", space, ""]
    f = tmp_path / f"{name}.toml"
    f.write_text("\n".join(lines))
    return f


def env_for(tmp_path: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["TUILM_RUNS_DIR"] = str(tmp_path / "runs")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    env.pop("CI", None)
    return env


def tuilm(tmp_path: Path, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tuiLM.cli", *args], cwd=tmp_path, env=env_for(tmp_path),
                          capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)


def spawn(tmp_path: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "tuiLM.cli", *args], cwd=tmp_path, env=env_for(tmp_path),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, stdin=subprocess.DEVNULL)


def show_json(tmp_path: Path, name: str, *extra: str) -> dict:
    out = tuilm(tmp_path, "study", "show", name, "--json", *extra)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def study_runs(tmp_path: Path) -> list[Path]:
    return list_runs(tmp_path / "runs")


def final_value(run_dir: Path, key: str = "val_bpb") -> float:
    return [e for e in effective_events(read_events(run_dir / EVENTS)) if e["kind"] == "eval"][-1][key]


def wait_for(cond, timeout: float, what: str, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"{what}: the process exited early:\n{proc.stdout.read() if proc.stdout else ''}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


def test_a_tiny_study_end_to_end(tmp_path):
    import optuna

    f = write_study(tmp_path, "tiny", '"optim.lr" = { log = [1e-3, 1e-2] }\n"optim.weight_decay" = { range = [0.0, 0.2] }',
                    trials=4, seeds=2, parallel=2, seed=7)
    out = tuilm(tmp_path, "study", "run", str(f))
    assert out.returncode == 0, out.stdout + out.stderr
    assert "study tiny finished: 4 done" in out.stdout and "Traceback" not in out.stdout + out.stderr
    assert "trials 0/4" in out.stdout  # plain progress lines when stdout is not a terminal
    runs = study_runs(tmp_path)
    assert len(runs) == 8
    by_trial: dict[int, dict[int, Path]] = {}
    for r in runs:
        start = [e for e in read_events(r / EVENTS) if e["kind"] == "run_start"]
        assert len(start) == 1 and start[0]["study"] == "tiny"
        by_trial.setdefault(start[0]["trial"], {})[start[0]["seed_index"]] = r
        assert set(start[0]["trial_params"]) == {"optim.lr", "optim.weight_decay"}
        assert summarize(r).state == "completed"
    assert sorted(by_trial) == [0, 1, 2, 3] and all(sorted(v) == [0, 1] for v in by_trial.values())
    # the journal opens with plain Optuna, its params named by preset keys
    study = optuna.load_study(study_name="tiny", storage=optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(tmp_path / "runs/studies/tiny/journal.log"))))
    trials = study.get_trials()
    assert len(trials) == 4 and all(t.state == optuna.trial.TrialState.COMPLETE for t in trials)
    for t in trials:
        assert set(t.params) == {"optim.lr", "optim.weight_decay"} and 1e-3 <= t.params["optim.lr"] <= 1e-2
        seeds = by_trial[t.number]
        values = [final_value(seeds[k]) for k in (0, 1)]
        assert t.value == pytest.approx(sum(values) / 2, abs=1e-12)
        seed0 = json.loads((seeds[0] / "preset.toml").read_text().split("seed = ")[1].split("\n")[0])
        seed1 = json.loads((seeds[1] / "preset.toml").read_text().split("seed = ")[1].split("\n")[0])
        assert seed1 == seed0 + 1  # run.seed + 0..k-1
    summary = show_json(tmp_path, "tiny")
    assert summary["name"] == "tiny" and len(summary["trials"]) == 4
    best = min(trials, key=lambda t: t.value)
    assert summary["best"]["number"] == best.number and summary["best"]["value"] == pytest.approx(best.value)
    row = summary["trials"][0]
    assert set(row) >= {"number", "state", "params", "value", "value_se", "k", "runs"} and row["k"] == 2
    assert len(row["runs"]) == 2 and row["value_se"] > 0
    csv_out = tuilm(tmp_path, "study", "show", "tiny", "--csv")
    assert csv_out.returncode == 0 and csv_out.stdout.splitlines()[0].startswith("number,state,optim.lr")
    listing = tuilm(tmp_path, "study", "list")
    assert "tiny" in listing.stdout and "4 done" in listing.stdout
    assert f"storage: {tmp_path / 'runs' / 'studies'}/ (a journal file each)" in listing.stdout  # where they are
    # a finished study run again has nothing left to do and starts no trainer
    again = tuilm(tmp_path, "study", "run", str(f))
    assert again.returncode == 0 and len(study_runs(tmp_path)) == 8


def test_pruning_stops_a_clearly_worse_trial(tmp_path):
    # trial 0 is the base preset (lr 3e-3, learns, 30 steps); the space holds only learning rates that
    # cannot learn, and a run far longer than the pruner needs: trial 1 ends only by being pruned (at
    # 30 steps a fast machine finished it before the stop arrived)
    space = '"optim.lr" = { log = [1e-9, 1e-8] }\n"train.max_steps" = { int = [20000, 20001] }'
    f = write_study(tmp_path, "prune", space, trials=2, pruner="median",
                    startup_trials=1, baseline=True, base={"eval.every": 5, "train.max_steps": 30})
    out = tuilm(tmp_path, "study", "run", str(f))
    assert out.returncode == 0, out.stdout + out.stderr
    summary = show_json(tmp_path, "prune")
    states = {t["number"]: t["state"] for t in summary["trials"]}
    assert states == {0: "complete", 1: "pruned"}, summary
    pruned = summary["trials"][1]
    assert "median pruner at step 5" in pruned["reason"]
    run = tmp_path / "runs" / pruned["runs"][0]
    s = summarize(run)
    assert s.state == "pruned" and s.step < 20000 and "median pruner" in s.reason
    assert list((run / "checkpoints").glob("step-*.pt"))  # checkpointed: resumable like a stopped run
    assert summary["trials"][0]["params"] == {"optim.lr": 3e-3, "train.max_steps": 30}  # the baseline


def _kill_trainer(run_dir: Path) -> None:
    pid = int((run_dir / PIDFILE).read_text())
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: not Path(f"/proc/{pid}").exists() or b"Z" in Path(f"/proc/{pid}/stat").read_bytes()
             .rsplit(b")", 1)[1][:3], 30, "the trainer to die")


def _train_steps(run_dir: Path) -> list[int]:
    return [e["step"] for e in read_events(run_dir / EVENTS) if e["kind"] == "train"]


def test_sigkill_of_the_study_then_run_again_resumes_every_trial_exactly_once(tmp_path):
    f = write_study(tmp_path, "crash", '"optim.weight_decay" = { range = [0.0, 0.2] }', trials=2,
                    base={"train.max_steps": 400, "checkpoint.every": 10, "eval.every": 100, "train.log_every": 1})
    proc = spawn(tmp_path, "study", "run", str(f))
    runs_dir = tmp_path / "runs"
    wait_for(lambda: any(max(_train_steps(r), default=0) >= 13 for r in list_runs(runs_dir)), 300,
             "trial 0 past its first checkpoint", proc)
    (victim,) = list_runs(runs_dir)
    _paused_trainer(victim)  # (it does ~150 steps/s: a run of 40 once ended before the kill below)
    proc.kill()  # the controller dies without a word ...
    proc.wait()
    _kill_trainer(victim)  # ... and so does its trainer (a machine that went down)
    # the trainer may have passed more checkpoints between the check above and the pause: the
    # resume starts from the last complete one (its .pt and its meta) left behind
    kept = [int(p.stem.split("-")[1]) for p in (victim / "checkpoints").glob("step-*.pt")
            if p.with_suffix(".json").exists()]
    assert kept and 10 <= max(kept) < 400, kept
    # until then the study is interrupted, not "running" for ever: nothing to stop, a way to continue
    listing = tuilm(tmp_path, "study", "list")
    assert "interrupted" in listing.stdout and "1 interrupted" in listing.stdout, listing.stdout
    shown = show_json(tmp_path, "crash")
    assert shown["counts"]["running"] == 0 and shown["counts"]["interrupted"] == 1
    assert shown["trials"][0]["interrupted"] and shown["trials"][0]["state"] == "running"  # (Optuna's)
    text = tuilm(tmp_path, "study", "show", "crash").stdout
    assert "1 interrupted" in text and "stopped" not in text, text  # (counted once, by its own name)
    stop = tuilm(tmp_path, "study", "stop", "crash")
    assert stop.returncode == 1 and "nothing to stop" in stop.stderr, stop.stdout + stop.stderr
    assert "1 interrupted trial continues with `tuilm study worker crash`" in stop.stderr, stop.stderr
    out = tuilm(tmp_path, "study", "run", str(f))
    assert out.returncode == 0, out.stdout + out.stderr
    assert "resuming" in out.stdout and "study crash finished: 2 done" in out.stdout
    summary = show_json(tmp_path, "crash")
    assert [t["state"] for t in summary["trials"]] == ["complete", "complete"]
    runs = list_runs(runs_dir)
    assert len(runs) == 2  # every trial ran exactly once
    assert sorted(r.name for r in runs) == sorted(x for t in summary["trials"] for x in t["runs"])
    events = read_events(victim / EVENTS)
    starts = [e for e in events if e["kind"] == "run_start"]
    assert len(starts) == 2 and starts[1]["step"] == max(kept)  # one resume, from the last checkpoint
    steps = [e["step"] for e in effective_events(events) if e["kind"] == "train"]
    assert steps == list(range(1, 401))  # the curve is continuous: no gap, no duplicate step
    assert summary["trials"][0]["value"] == pytest.approx(final_value(victim))


def _paused_trainer(run_dir: Path) -> int:
    """SIGSTOP the run's trainer (a tiny one does ~100 steps/s: on a loaded machine it could reach
    max_steps before the test's next move arrives) and return its pid; SIGCONT resumes it."""
    pid = int((run_dir / PIDFILE).read_text())
    os.kill(pid, signal.SIGSTOP)
    return pid


def _pending(pid: int, sig: int) -> bool:
    """Whether ``sig`` waits for the stopped process ``pid`` (Linux: /proc/PID/status)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(("SigPnd:", "ShdPnd:")) and int(line.split()[1], 16) >> (sig - 1) & 1:
            return True
    return False


def test_a_live_trainer_is_reattached_not_restarted(tmp_path):
    import threading

    f = write_study(tmp_path, "attach", '"optim.weight_decay" = { range = [0.0, 0.2] }', trials=1,
                    base={"train.max_steps": 400, "eval.every": 200, "train.log_every": 1})
    proc = spawn(tmp_path, "study", "run", str(f))
    runs_dir = tmp_path / "runs"
    wait_for(lambda: any(max(_train_steps(r), default=0) >= 3 for r in list_runs(runs_dir)), 300,
             "the trainer to start", proc)
    (run,) = list_runs(runs_dir)
    pid = _paused_trainer(run)  # still alive when the new controller looks, however slow it starts
    try:
        proc.kill()
        proc.wait()
        again = spawn(tmp_path, "study", "run", str(f))
        lines: list[str] = []

        def pump() -> None:
            for line in again.stdout:
                lines.append(line)

        pumping = threading.Thread(target=pump, daemon=True)
        pumping.start()
        wait_for(lambda: any("re-attached" in x for x in lines) or again.poll() is not None, 300,
                 "the new controller to decide")
    finally:
        os.kill(pid, signal.SIGCONT)
    assert again.wait(timeout=300) == 0, "".join(lines)
    pumping.join(timeout=30)
    assert any("re-attached" in x for x in lines), "".join(lines)
    assert len([e for e in read_events(run / EVENTS) if e["kind"] == "run_start"]) == 1
    assert show_json(tmp_path, "attach")["trials"][0]["state"] == "complete"


def test_a_study_trial_trains_under_torchrun_with_nproc(tmp_path):
    """specs/studies.md: DDP trials (--nproc) work as single runs do; only rank 0 reports."""
    f = write_study(tmp_path, "ddp", '"optim.weight_decay" = { range = [0.0, 0.2] }', trials=1,
                    base={"train.max_steps": 6, "eval.every": 3, "checkpoint.every": 0, "diag.every": 0,
                          "train.total_batch_size": 2 * 4 * 32, "data.max_bytes": 60_000, "train.log_every": 1})
    out = tuilm(tmp_path, "study", "run", str(f), "--nproc", "2")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "parallel 1 x 2 processes (DDP)" in out.stdout and "study ddp finished: 1 done" in out.stdout, out.stdout
    (run,) = study_runs(tmp_path)
    events = read_events(run / EVENTS)
    start = next(e for e in events if e["kind"] == "run_start")
    assert (start["world_size"], start["grad_accum"]) == (2, 1)
    assert sum(e["kind"] == "run_start" for e in events) == 1  # rank 0 alone writes
    assert [e["step"] for e in events if e["kind"] == "train"] == list(range(1, 7))
    (trial,) = show_json(tmp_path, "ddp")["trials"]
    evals = [e["val_bpb"] for e in events if e["kind"] == "eval"]
    assert trial["state"] == "complete" and trial["value"] == pytest.approx(evals[-1]) and trial["steps"] == 6


def test_a_study_of_a_model_diagnostic_optimises_and_judges_it(tmp_path):
    """objective = stream_similarity: each seed's value is its run's last diag event, the pruner is asked
    at diag events, the study view's curves read them, and a re-attached study recomputes the same value."""
    from tuiLM.study.engine import final_value
    from tuiLM.tui.studydata import StudyReader

    f = write_study(tmp_path, "diagobj", '"optim.weight_decay" = { range = [0.0, 0.2] }', trials=1, seeds=2,
                    objective="stream_similarity", base={"model.arch": "mhc", "train.max_steps": 12, "eval.every": 6,
                                                         "diag.every": 4, "checkpoint.every": 0})
    out = tuilm(tmp_path, "study", "run", str(f))
    assert out.returncode == 0 and "study diagobj finished: 1 done" in out.stdout, out.stdout + out.stderr
    (trial,) = show_json(tmp_path, "diagobj")["trials"]
    assert sorted(map(int, trial["intermediate"])) == [4, 8, 12]  # reported at diag events (eval is at 6 and 12)
    lasts = []
    for run in sorted(study_runs(tmp_path)):
        diags = [e for e in effective_events(read_events(run / EVENTS)) if e["kind"] == "diag"]
        assert [e["step"] for e in diags][-1] == 12 and all("stream_similarity" in e for e in diags)
        lasts.append(diags[-1]["stream_similarity"])
        assert final_value(run, "stream_similarity") == pytest.approx(lasts[-1])
    assert trial["state"] == "complete" and trial["values"] == pytest.approx(lasts)
    assert trial["value"] == pytest.approx(sum(lasts) / 2)
    snap = StudyReader(tmp_path / "runs").snapshot("diagobj")
    assert snap.objective == "stream_similarity" and snap.direction == "minimize"
    (curve,) = snap.curves
    assert curve.steps == (4, 8, 12) and [row[-1] for row in curve.per_seed] == pytest.approx(lasts)


def test_an_artifact_limit_keeps_a_too_large_trial_from_being_the_best(tmp_path):
    """Seed 003's 16 MB limit as a study constraint: every trial of these tiny models is over a 1,000-byte
    limit, so each keeps its value and artifact size but none is the best (TPE gets the constraint)."""
    f = write_study(tmp_path, "golfish", '"optim.weight_decay" = { range = [0.0, 0.2] }', trials=2,
                    sampler="tpe", max_artifact_bytes=1000, base={"train.max_steps": 6, "eval.every": 3,
                                                                 "checkpoint.every": 0})
    out = tuilm(tmp_path, "study", "run", str(f))
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.count("> limit 1,000: never the best") == 2, out.stdout
    assert "2 done" in out.stdout and "no trial within the artifact limit" in out.stdout
    s = show_json(tmp_path, "golfish")
    sizes = {}
    for run in study_runs(tmp_path):
        end = read_events(run / EVENTS)[-1]
        sizes[run.name] = end["artifact_bytes"]
    assert s["best"] is None and s["max_artifact_bytes"] == 1000
    for t in s["trials"]:
        assert t["over_limit"] and t["artifact_bytes"] == max(sizes[r] for r in t["runs"]) > 1000
    # what the samplers read: Optuna's constraint on each trial (> 0: infeasible)
    import optuna
    from tuiLM.study import storage as st

    study = optuna.load_study(study_name="golfish", storage=st.open_storage("golfish", None, tmp_path / "runs"))
    for ft in study.get_trials():
        assert ft.constraints == {"artifact_bytes": ft.user_attrs["artifact_bytes"] - 1000.0}
    text = tuilm(tmp_path, "study", "show", "golfish").stdout
    assert "artifact limit 1,000 bytes: 2 completed trials over it" in text and text.count("artifact over limit") == 2


def _stopped_while_training(tmp_path: Path, name: str, stop) -> tuple[Path, subprocess.Popen, str, Path]:
    """A one-trial study run whose trainer is paused mid-run (it cannot reach max_steps first) while
    ``stop(proc)`` asks the study to stop; (study file, controller, its output, the run) once it exits."""
    f = write_study(tmp_path, name, '"optim.weight_decay" = { range = [0.0, 0.2] }', trials=1,
                    base={"train.max_steps": 400, "eval.every": 200, "checkpoint.every": 0, "train.log_every": 1})
    proc = spawn(tmp_path, "study", "run", str(f))
    runs_dir = tmp_path / "runs"
    wait_for(lambda: any(max(_train_steps(r), default=0) >= 3 for r in list_runs(runs_dir)), 300,
             "the trainer to start", proc)
    (run,) = list_runs(runs_dir)
    pid = _paused_trainer(run)
    try:
        stop(proc)
        wait_for(lambda: _pending(pid, signal.SIGTERM), 300, "the controller to signal the trainer", proc)
    finally:
        os.kill(pid, signal.SIGCONT)
    out, _ = proc.communicate(timeout=300)
    return f, proc, out, run


def test_study_stop_ends_running_trials_cleanly_and_run_continues_them(tmp_path):
    def stop(_proc) -> None:
        said = tuilm(tmp_path, "study", "stop", "halt")
        assert said.returncode == 0 and "asked study halt to stop" in said.stdout

    f, proc, out, _ = _stopped_while_training(tmp_path, "halt", stop)
    runs_dir = tmp_path / "runs"
    assert proc.returncode == 0 and "study halt stopped" in out and "1 stopped" in out, out
    (run,) = list_runs(runs_dir)
    s = summarize(run)
    assert s.state == "stopped" and s.step < 400 and list((run / "checkpoints").glob("step-*.pt"))
    assert s.reason == "the study was stopped (tuilm study stop)"  # (it said "stopped by SIGTERM")
    shown = show_json(tmp_path, "halt")
    assert shown["trials"][0]["state"] == "running"  # resumable in Optuna, not lost
    assert shown["trials"][0]["stopped"] and shown["counts"]["stopped"] == 1 and shown["counts"]["running"] == 0
    assert shown["trials"][0]["steps"] == s.step  # a trial not finished shows how far its runs got, not "-"
    import optuna

    journal = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(
        str(tmp_path / "runs/studies/halt/journal.log")))
    beat = optuna.load_study(study_name="halt", storage=journal).get_trials()[0].user_attrs
    assert "beat" in beat and beat["beat"] is None  # stopped on purpose: no other machine takes it for dead
    listing = tuilm(tmp_path, "study", "list")
    assert "stopped" in listing.stdout and "1 stopped" in listing.stdout, listing.stdout  # not 'running' for good
    again = tuilm(tmp_path, "study", "run", str(f))
    assert again.returncode == 0 and "study halt finished: 1 done" in again.stdout, again.stdout + again.stderr
    events = read_events(run / EVENTS)
    assert len([e for e in events if e["kind"] == "run_start"]) == 2 and summarize(run).state == "completed"
    assert [e["step"] for e in effective_events(events) if e["kind"] == "train"] == list(range(1, 401))
    assert len(list_runs(runs_dir)) == 1


def test_the_terminal_going_away_stops_the_study_cleanly_not_orphaning_its_trainers(tmp_path):
    """SIGHUP (an SSH session dropped under a `study run` not in tmux) killed the controller and left its
    trainers training, unbeaten: another machine later took their trials for dead. It now stops the
    study as SIGTERM does: trials checkpoint, stay resumable here, and the shell's 128 + 1 is the exit."""
    _, proc, out, run = _stopped_while_training(tmp_path, "hup", lambda p: p.send_signal(signal.SIGHUP))
    assert proc.returncode == 129 and "stopping (SIGHUP)" in out and "1 stopped" in out, out
    assert summarize(run).state == "stopped"
    trial = show_json(tmp_path, "hup")["trials"][0]
    assert trial["state"] == "running" and trial["stopped"] and not trial["interrupted"]


def _two_workers(tmp_path: Path, name: str, storage: list[str]) -> dict:
    # trials long enough (150 steps) that the first worker cannot finish them all before the second
    # has started, even when a loaded machine starts the second one slowly
    f = write_study(tmp_path, name, '"optim.weight_decay" = { range = [0.0, 0.2] }', trials=4, seed=3,
                    base={"train.max_steps": 150, "eval.every": 50, "checkpoint.every": 50})
    first = spawn(tmp_path, "study", "run", str(f), *storage)
    probe = ["study", "show", name, *storage]
    wait_for(lambda: tuilm(tmp_path, *probe).returncode == 0, 120, "the study to exist", first)
    second = spawn(tmp_path, "study", "worker", name, *storage)
    out1, _ = first.communicate(timeout=600)
    out2, _ = second.communicate(timeout=600)
    assert first.returncode == 0 and second.returncode == 0, out1 + out2
    assert "Traceback" not in out1 + out2
    summary = show_json(tmp_path, name, *storage)
    trials = summary["trials"]
    assert sorted(t["number"] for t in trials) == [0, 1, 2, 3]
    assert all(t["state"] == "complete" and len(t["runs"]) == 1 for t in trials), trials
    runs = list_runs(tmp_path / "runs")
    assert len(runs) == 4 and sorted(r.name for r in runs) == sorted(t["runs"][0] for t in trials)
    hosts = {json.loads((r / "study.json").read_text())["trial"] for r in runs}
    assert hosts == {0, 1, 2, 3}
    pids = set()
    import optuna

    if storage:
        st = optuna.load_study(study_name=name, storage=storage[1])
    else:
        st = optuna.load_study(study_name=name, storage=optuna.storages.JournalStorage(
            optuna.storages.journal.JournalFileBackend(str(tmp_path / f"runs/studies/{name}/journal.log"))))
    for t in st.get_trials():
        pids.add(worker_of(t.user_attrs)[0])
        assert t.user_attrs["host"] == socket.gethostname()
    assert pids == {first.pid, second.pid}  # both workers ran trials
    best = min(trials, key=lambda t: t["value"])
    assert summary["best"]["number"] == best["number"]
    # both see the same best: each one's view of the storage now
    assert st.best_trial.number == best["number"]
    return summary


def test_two_workers_share_one_journal_file(tmp_path):
    _two_workers(tmp_path, "twoj", [])


def _pg_bin() -> Path | None:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    if found:
        return found[-1].parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def postgres_url():
    """A throwaway PostgreSQL cluster on a loopback port, run as an unprivileged user (CI runs as root)."""
    pg = _pg_bin()
    if pg is None:
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL is not installed: .ci/run must install it (apt-get install postgresql)")
        pytest.skip("PostgreSQL is not installed (initdb not found)")
    pytest.importorskip("psycopg2")
    data = Path(tempfile.mkdtemp(prefix="tuilm-pg-"))
    as_user: list[str] = []
    if os.geteuid() == 0:  # initdb refuses root
        import pwd

        user = "postgres"
        try:
            pw = pwd.getpwnam(user)
        except KeyError:
            pytest.fail("running as root needs the 'postgres' user that Debian's postgresql package creates")
        os.chown(data, pw.pw_uid, pw.pw_gid)
        as_user = ["runuser", "-u", user, "--"]
    port = _free_port()
    subprocess.run([*as_user, str(pg / "initdb"), "-D", str(data / "db"), "-A", "trust", "-U", "tuilm"],
                   check=True, capture_output=True)
    log = data / "log"
    subprocess.run([*as_user, str(pg / "pg_ctl"), "-D", str(data / "db"), "-l", str(log), "-w", "-o",
                    f"-p {port} -k {data} -c listen_addresses=127.0.0.1", "start"], check=True, capture_output=True)
    try:
        subprocess.run([*as_user, str(pg / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "tuilm", "optuna"],
                       check=True, capture_output=True)
        yield f"postgresql+psycopg2://tuilm@127.0.0.1:{port}/optuna"
    finally:
        subprocess.run([*as_user, str(pg / "pg_ctl"), "-D", str(data / "db"), "-m", "immediate", "stop"],
                       capture_output=True)
        shutil.rmtree(data, ignore_errors=True)


def test_two_workers_share_one_postgresql_study(tmp_path, postgres_url):
    summary = _two_workers(tmp_path, "twopg", ["--storage", postgres_url])
    assert summary["storage"].startswith("postgresql+psycopg2://tuilm@127.0.0.1:")
    listing = tuilm(tmp_path, "study", "list", "--storage", postgres_url)
    assert "twopg" in listing.stdout and "4 done" in listing.stdout
    assert "storage: postgresql+psycopg2://tuilm@127.0.0.1:" in listing.stdout


def test_trials_given_on_the_command_line_are_the_target_study_show_and_workers_count_to(tmp_path):
    """`study run FILE --trials 5` ran five trials while `study show` and the app counted to the
    file's 4 ('3/4 done' with five trials there). The target is stored with the study; a later
    `study run` or worker without --trials keeps it, one with --trials sets it."""
    import io

    from rich.console import Console

    from tuiLM.study.engine import StudyEngine as Engine
    from tuiLM.study.report import load_checked, study_summary

    f = write_study(tmp_path, "target", '"optim.weight_decay" = { range = [0.0, 0.2] }', trials=4)
    root = tmp_path / "runs"
    spec, base, _ = load_checked(f, [], Console(file=io.StringIO()))

    def opened(trials):
        engine = Engine(spec, base, root=root, trials=trials)
        engine.open()
        return engine.target

    assert opened(None) == 4 and study_summary("target", None, root)["target"] == 4
    assert opened(5) == 5 and study_summary("target", None, root)["target"] == 5
    assert opened(None) == 5  # (a worker joining without --trials keeps the stored target)
    assert opened(3) == 3 and study_summary("target", None, root)["target"] == 3


def test_a_trial_of_a_machine_gone_silent_is_failed_and_its_configuration_runs_again(tmp_path, monkeypatch):
    """Many machines: a trial whose controller on another machine stopped beating (the machine died for
    good) kept the study "running" for ever and its target out of reach. After storage.STALE_S a
    controller fails it, saying why, and queues the same configuration again; the retry counts, the
    failed one does not. A trial of another machine still beating, and one stopped on purpose (beat
    None: it resumes on its own machine), are left alone."""
    import optuna

    from tuiLM.study import storage as st
    from tuiLM.study.engine import StudyEngine
    from tuiLM.study.report import study_summary, study_state, trial_rows
    from tuiLM.study.spec import load_study

    monkeypatch.setenv("TUILM_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setattr(st, "STALE_S", 30.0)
    monkeypatch.setattr(st, "BEAT_S", 0.2)  # (a silent trial is failed once seen unchanged for 2 beats)
    f = write_study(tmp_path, "gone", '"optim.weight_decay" = { range = [0.0, 0.2] }', trials=3,
                    base={"train.max_steps": 20, "eval.every": 10})
    spec, base, problems = load_study(f)
    assert not [p for p in problems if p.is_error]
    said: list[str] = []
    engine = StudyEngine(spec, base, root=tmp_path / "runs", say=said.append, poll_s=0.05)
    engine.open()
    now = time.time()
    others = []
    for beat in (now - 600, now - 5, None):  # silent for 10 min, beating, stopped on purpose
        t = engine.study.ask(spec.distributions())
        t.set_user_attr("host", "gpu-box-7")
        t.set_user_attr(st.WORKER_ATTR, [4242, 1.0])
        t.set_user_attr(st.BEAT_ATTR, beat)
        others.append(t.number)
    silent, beating, paused = others
    shown = {r["number"]: r for r in trial_rows(engine.study, tmp_path / "runs")}
    assert shown[silent]["interrupted"] and not shown[beating]["interrupted"] and not shown[paused]["interrupted"]
    params = dict(engine.study.get_trials()[silent].params)

    import threading

    done = threading.Event()

    def beating_machine():  # the beating trial's controller on gpu-box-7 is alive: it beats every 0.1 s
        trial = optuna.trial.Trial(engine.study, engine.study.get_trials()[beating]._trial_id)
        while not done.wait(0.1):
            trial.set_user_attr(st.BEAT_ATTR, time.time())

    beater = threading.Thread(target=beating_machine, daemon=True)
    beater.start()
    try:
        counts = engine.run()
    finally:
        done.set()
        beater.join()

    trials = {t.number: t for t in engine.study.get_trials()}
    assert trials[silent].state == optuna.trial.TrialState.FAIL
    reason = trials[silent].user_attrs["fail_reason"]
    assert "gpu-box-7" in reason and "no heartbeat for 10 min" in reason, reason
    (retry,) = [t for t in trials.values() if t.user_attrs.get("retry_of") == silent]
    assert retry.params == params and retry.state == optuna.trial.TrialState.COMPLETE
    assert retry.user_attrs["host"] == socket.gethostname()
    # the other two stay running, untouched; with the retry, the target of 3 is reached
    assert trials[beating].state == trials[paused].state == optuna.trial.TrialState.RUNNING
    assert counts.complete == 1 and counts.failed == 0 and counts.running == 2
    assert len(trials) == 4 and any(f"trial {silent}: failed: its controller on gpu-box-7" in s and s.endswith(
        f"runs again as trial {retry.number}") for s in said), said
    summary = study_summary("gone", None, tmp_path / "runs")
    c = summary["counts"]
    assert (c["complete"], c["fail"], c["retried"], c["running"]) == (1, 0, 1, 2), c
    rows = {r["number"]: r for r in summary["trials"]}
    assert rows[silent]["retried_as"] == retry.number and rows[retry.number]["retry_of"] == silent
    assert rows[silent]["reason"].endswith(f"(machine down?); its configuration runs again as trial {retry.number}")
    assert study_state(summary, st.study_dir("gone", tmp_path / "runs")) == "running"
    # `study list` and the app's studies list count it as retried, not as failed
    import io

    from rich.console import Console

    from tuiLM.study.report import list_command
    from tuiLM.tui.studydata import StudyReader

    out = io.StringIO()
    list_command(None, Console(file=out, width=160))
    assert "1/3: 1 done, 2 running, 1 retried" in out.getvalue() and "failed" not in out.getvalue(), out.getvalue()
    (row,) = StudyReader(tmp_path / "runs").rows()
    assert (row.complete, row.failed, row.retried, row.running) == (1, 0, 1, 2)


def _other_hosts_last_trial(tmp_path, monkeypatch):
    """(engine, trial, said): a one-trial study whose trial runs on gpu-box-7 and has missed two beats,
    far from stale (STALE_S 2 s, BEAT_S 0.2 s): this controller has no work of its own."""
    from tuiLM.study import storage as st
    from tuiLM.study.engine import StudyEngine
    from tuiLM.study.spec import load_study

    monkeypatch.setenv("TUILM_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setattr(st, "STALE_S", 2.0)
    monkeypatch.setattr(st, "BEAT_S", 0.2)
    f = write_study(tmp_path, "wait", '"optim.weight_decay" = { range = [0.0, 0.2] }', trials=1,
                    base={"train.max_steps": 20, "eval.every": 10})
    spec, base, _ = load_study(f)
    said: list[str] = []
    engine = StudyEngine(spec, base, root=tmp_path / "runs", say=said.append, poll_s=0.05)
    engine.open()
    t = engine.study.ask(spec.distributions())
    t.set_user_attr("host", "gpu-box-7")
    t.set_user_attr(st.WORKER_ATTR, [4242, 1.0])
    t.set_user_attr(st.BEAT_ATTR, time.time() - 0.7)
    return engine, t, said


def test_a_worker_with_no_work_left_waits_on_a_trial_that_missed_its_beats_and_runs_it_again(tmp_path, monkeypatch):
    """The study's last trial belongs to another machine that has missed two beats, not yet STALE_S: a
    worker here with nothing else to do used to exit, leaving the study at "interrupted" until some
    controller ran again. It now says it waits, and when the silence reaches STALE_S it fails the trial
    and runs its configuration itself."""
    import optuna

    engine, t, said = _other_hosts_last_trial(tmp_path, monkeypatch)

    counts = engine.run()

    trials = engine.study.get_trials()
    assert trials[t.number].state == optuna.trial.TrialState.FAIL
    (retry,) = [x for x in trials if x.user_attrs.get("retry_of") == t.number]
    assert retry.state == optuna.trial.TrialState.COMPLETE and counts.complete == 1
    assert any(s.startswith(f"waiting on trial {t.number}: no heartbeat from gpu-box-7") for s in said), said


def test_a_worker_does_not_wait_on_a_trial_that_beats_with_a_clock_behind_ours(tmp_path, monkeypatch):
    """Another machine beats every 0.1 s, its clock 0.7 s behind (3.5 min at real scale): each beat looks
    two beats old. The worker, done with its own work, waited on it for ever and said "no heartbeat" (a
    reviewer's reproduction). A beat that moves between two looks is a live machine: it exits."""
    import threading

    import optuna

    from tuiLM.study import storage as st

    engine, t, said = _other_hosts_last_trial(tmp_path, monkeypatch)
    done = threading.Event()

    def skewed_machine():
        trial = optuna.trial.Trial(engine.study, t._trial_id)
        while not done.wait(0.1):
            trial.set_user_attr(st.BEAT_ATTR, time.time() - 0.7)

    beater = threading.Thread(target=skewed_machine, daemon=True)
    beater.start()
    runner = threading.Thread(target=engine.run, daemon=True)
    runner.start()
    runner.join(6.0)  # 3 x STALE_S
    waited = runner.is_alive()
    done.set()
    beater.join()
    if waited:
        engine.request_stop("test")
        runner.join(10)
    assert not waited and engine.study.get_trials()[t.number].state == optuna.trial.TrialState.RUNNING
    assert not any("waiting on" in s for s in said), said


def test_a_trainer_left_here_whose_trial_was_run_again_elsewhere_is_stopped_by_the_next_run_here(tmp_path, monkeypatch):
    """The controller here was SIGKILLed and its trainer trained on, unbeaten; another machine failed the
    trial for silence and runs its configuration again. The next controller here stops that trainer (it
    only competes with the retry) instead of leaving it to burn the machine for nothing."""
    import optuna

    from tuiLM.study.engine import StudyEngine
    from tuiLM.study.spec import load_study

    monkeypatch.setenv("TUILM_RUNS_DIR", str(tmp_path / "runs"))
    f = write_study(tmp_path, "left", '"optim.weight_decay" = { range = [0.0, 0.2] }', trials=1,
                    base={"train.max_steps": 100000, "eval.every": 0, "checkpoint.every": 0})
    spec, base, _ = load_study(f)
    said: list[str] = []
    engine = StudyEngine(spec, base, root=tmp_path / "runs", say=said.append, poll_s=0.05)
    engine.open()
    trainer = spawn(tmp_path, "run", str(tmp_path / "base.toml"), "--headless", "--set", "train.max_steps=100000",
                    "--set", "eval.every=0")
    try:
        wait_for(lambda: any(_train_steps(r) for r in list_runs(tmp_path / "runs")), 300, "the trainer to train",
                 trainer)
        (run,) = list_runs(tmp_path / "runs")
        trial = engine.study.ask(spec.distributions())
        trial.set_user_attr("host", socket.gethostname())
        trial.set_user_attr("runs", [run.name])
        engine.study.tell(trial, state=optuna.trial.TrialState.FAIL)  # (failed for silence elsewhere)
        engine.study.enqueue_trial(dict(trial.params), user_attrs={"retry_of": trial.number})
        engine.recover()
        trainer.communicate(timeout=300)
    finally:
        if trainer.poll() is None:
            trainer.kill()
    assert summarize(run).state == "stopped"
    assert any(f"stopping the trainer of {run.name} here" in s for s in said), said

"""System metrics, FLOPs/s and MFU in real train events; the live TensorBoard mirror of a real run,
also when the trainer is SIGKILLed mid-run and resumed."""

from __future__ import annotations

import io
import math
import os

import pytest
from rich.console import Console

from tuiLM.estimate import estimate
from tuiLM.events import validate_event
from tuiLM.reader import effective_events, read_events
from tuiLM.headless import watch_run
from tuiLM.launch import create_run, spawn_trainer
from tuiLM.runs import EVENTS, STDOUT

from .conftest import TINY_GPT, make_preset
from .test_export import accumulate, same, scalars
from .test_sysmetrics import CPU_FIELDS, GPU_FIELDS

pytestmark = pytest.mark.slow


def run(run_dir, resume: bool = False, env: dict | None = None) -> int:
    old = dict(os.environ)
    os.environ.update(env or {})
    try:
        proc = spawn_trainer(run_dir, resume=resume)
    finally:
        os.environ.clear()
        os.environ.update(old)
    return proc.wait(timeout=300)


def mirrored(run_dir, logdir):
    """(expected tag -> {step: value} from the effective events, what TensorBoard reads)."""
    want: dict[str, dict[int, float]] = {}
    for ev in effective_events(read_events(run_dir / EVENTS)):
        if ev["kind"] in ("train", "eval", "diag"):
            for k, v in ev.items():
                if k not in ("v", "kind", "time", "step") and (isinstance(v, (int, float)) or v == "nan"):
                    want.setdefault(f"{ev['kind']}/{k}", {})[ev["step"]] = float(v)
    acc = accumulate(logdir)
    return want, {tag: scalars(acc, tag) for tag in acc.Tags()["scalars"]}


def test_train_events_carry_system_fields_flops_and_mfu_and_the_live_mirror_matches(tmp_path):
    preset = make_preset({**TINY_GPT, "train.max_steps": 8, "system.peak_tflops": 0.5, "eval.every": 4,
                          "system.tensorboard_dir": str(tmp_path / "tb")})
    run_dir = create_run(preset, name="sys", root=tmp_path / "runs")
    out = Console(file=io.StringIO(), width=120)
    assert watch_run(run_dir, spawn_trainer(run_dir), out) == 0, (run_dir / STDOUT).read_text()
    events = read_events(run_dir / EVENTS)
    assert all(validate_event(e) == [] for e in events)
    start = next(e for e in events if e["kind"] == "run_start")
    fpt = estimate(preset, vocab_size=start["vocab_size"]).flops_per_token
    assert start["flops_per_token"] == fpt and start["peak_tflops"] == 0.5
    trains = [e for e in events if e["kind"] == "train"]
    assert len(trains) == 8
    for e in trains:
        assert CPU_FIELDS <= set(e) and not (GPU_FIELDS & set(e))
        assert e["flops_per_s"] == pytest.approx(fpt * e["tokens_per_s"], rel=1e-5)
        assert e["mfu"] == pytest.approx(e["flops_per_s"] / 0.5e12, rel=1e-4, abs=1e-6)
        assert 0 < e["rss_gib"] < e["host_mem_total_gib"]
    # the headless summary reports MFU
    assert "MFU" in out.file.getvalue()
    # the live mirror holds exactly what events.jsonl holds
    want, got = mirrored(run_dir, tmp_path / "tb" / run_dir.name)
    assert set(got) == set(want)
    for tag in want:
        assert sorted(got[tag]) == sorted(want[tag]), tag
        assert all(same(got[tag][s], want[tag][s]) for s in want[tag]), tag
    assert any((tmp_path / "tb" / run_dir.name / "hparams").glob("events.out.tfevents.*"))


def test_cli_run_tensorboard_flag_and_no_mfu_on_cpu_without_a_peak(tmp_path):
    """`tuilm run --headless --tensorboard DIR`: the mirror lands in DIR/<run-id>; on a CPU with no
    system.peak_tflops the events have FLOPs/s but no MFU, and the summary shows TFLOP/s instead."""
    import subprocess
    import sys

    from tuiLM.config.write import atomic_write_text, dumps_resolved

    from .conftest import ROOT

    preset = tmp_path / "tiny.toml"
    atomic_write_text(preset, dumps_resolved(make_preset({**TINY_GPT, "train.max_steps": 2, "eval.every": 0})))
    env = {**os.environ, "TUILM_RUNS_DIR": str(tmp_path / "runs"), "PYTHONPATH": str(ROOT)}
    r = subprocess.run([sys.executable, "-m", "tuiLM.cli", "run", str(preset), "--headless", "--tensorboard", "tb"],
                       capture_output=True, text=True, cwd=tmp_path, env=env, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "GFLOP/s" in r.stdout and "MFU" not in r.stdout
    (run_dir,) = (tmp_path / "runs").iterdir()
    assert f'tensorboard_dir = "{tmp_path / "tb"}"' in (run_dir / "preset.toml").read_text()
    events = read_events(run_dir / EVENTS)
    start = next(e for e in events if e["kind"] == "run_start")
    assert "peak_tflops" not in start and "system.peak_tflops" in start["peak_source"]
    trains = [e for e in events if e["kind"] == "train"]
    assert trains and all("mfu" not in e and e["flops_per_s"] > 0 for e in trains)
    want, got = mirrored(run_dir, tmp_path / "tb" / run_dir.name)
    assert sorted(got["train/loss"]) == sorted(want["train/loss"]) == [1, 2]
    assert all(same(got["train/loss"][s], v) for s, v in want["train/loss"].items())


def test_live_mirror_under_sigkill_is_readable_and_the_resumed_run_is_unharmed(tmp_path):
    logdir = tmp_path / "tb"
    preset = make_preset({**TINY_GPT, "train.max_steps": 24, "checkpoint.every": 8, "eval.every": 8,
                          "system.tensorboard_dir": str(logdir)})
    run_dir = create_run(preset, name="kill", root=tmp_path / "runs")
    assert run(run_dir, env={"TUILM_FAULT_KILL_AT_STEP": "14"}) == -9
    # every file the killed trainer left reads without error, and what it holds is what the run wrote
    want, got = mirrored(run_dir, logdir / run_dir.name)
    for tag, by_step in got.items():
        assert all(same(v, want[tag][s]) for s, v in by_step.items()), tag
    # the run resumes from its step-8 checkpoint and completes as if nothing had happened
    assert run(run_dir, resume=True) == 0, (run_dir / STDOUT).read_text()
    events = effective_events(read_events(run_dir / EVENTS))
    assert events[-1]["kind"] == "run_end" and events[-1]["status"] == "completed"
    steps = [e["step"] for e in events if e["kind"] == "train"]
    assert steps == list(range(1, 25))
    # TensorBoard shows one curve: the dead attempt's steps 9-14 are purged, the resumed ones replace them
    want, got = mirrored(run_dir, logdir / run_dir.name)
    assert set(got) == set(want)
    for tag in want:
        after = {s: v for s, v in want[tag].items() if s > 8}
        assert {s: v for s, v in got[tag].items() if s > 8}.keys() == after.keys(), tag
        assert all(same(got[tag][s], want[tag][s]) for s in got[tag]), tag
    assert not math.isnan(got["train/loss"][24])


def _fake_trainer(run_dir, cwd):
    """A process whose command line is a trainer's (python -m tuiLM.train RUN_DIR); it only sleeps."""
    import subprocess
    import sys

    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)", "-m", "tuiLM.train", str(run_dir)],
                            cwd=cwd)


def test_other_trainers_on_this_host_are_found_by_their_command_line(tmp_path):
    from tuiLM.machine import other_trainers

    (tmp_path / "runs" / "a").mkdir(parents=True)
    (tmp_path / "runs" / "b").mkdir()
    procs = [_fake_trainer("runs/a", tmp_path), _fake_trainer(tmp_path / "runs" / "b", tmp_path),
             _fake_trainer(tmp_path / "runs" / "b", tmp_path)]  # a relative path, and two ranks of one run
    try:
        import time

        time.sleep(0.5)
        mine = lambda run: [p for p in other_trainers(run) if tmp_path in p.parents]  # noqa: E731 (other tests' trainers aside)
        assert mine(tmp_path / "runs" / "b") == [tmp_path / "runs" / "a"]  # b is us: not another
        assert mine(tmp_path / "runs" / "c") == [tmp_path / "runs" / "a", tmp_path / "runs" / "b"]
    finally:
        for p in procs:
            p.kill()
            p.wait()


def test_a_cpu_trainer_with_default_threads_warns_of_another_trainer_on_the_machine(tmp_path):
    """Two trainers with torch's default threads on a 2-core machine ran 15x slower, without a word."""
    other = tmp_path / "runs" / "elsewhere"
    other.mkdir(parents=True)
    fake = _fake_trainer(other, tmp_path)
    try:
        preset = make_preset({**TINY_GPT, "train.max_steps": 2, "eval.every": 0, "checkpoint.every": 0,
                              "diag.every": 0, "system.threads": 0})
        run_dir = create_run(preset, name="shared", root=tmp_path / "runs")
        assert run(run_dir) == 0, (run_dir / STDOUT).read_text()
    finally:
        fake.kill()
        fake.wait()
    logs = [e["message"] for e in read_events(run_dir / EVENTS) if e["kind"] == "log" and e["level"] == "warning"]
    # (a trainer of another test may be running too: "2 other tuiLM trainers ... (elsewhere, ...)")
    assert any("other tuiLM trainer" in m and "elsewhere" in m and "system.threads" in m for m in logs), logs
    # with system.threads set, the run chose its threads: nothing to say
    preset = make_preset({**TINY_GPT, "train.max_steps": 2, "eval.every": 0, "checkpoint.every": 0, "diag.every": 0})
    quiet = create_run(preset, name="quiet", root=tmp_path / "runs")
    fake = _fake_trainer(other, tmp_path)
    try:
        assert run(quiet) == 0
    finally:
        fake.kill()
        fake.wait()
    assert not any("other tuiLM trainer" in e.get("message", "") for e in read_events(quiet / EVENTS))

"""Fault injection: SIGKILL at random steps then resume, a full disk, a read-only checkpoint folder,
torn event lines for every reader, and a crafted pickle in a checkpoint."""

from __future__ import annotations

import io
import os
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from rich.console import Console

from tuiLM.events import validate_event
from tuiLM.reader import effective_events, read_events
from tuiLM.launch import create_run, spawn_trainer
from tuiLM.runs import CHECKPOINTS, EVENTS, PRESET, STDOUT

from .conftest import TINY_GPT, make_preset

pytestmark = pytest.mark.slow

FAULT_PRESET = {**TINY_GPT, "model.dropout": 0.1, "train.max_steps": 16, "checkpoint.every": 4, "eval.every": 8,
                "diag.every": 4, "sample.every": 8, "sample.max_new_tokens": 4, "data.max_bytes": 60_000}


def log_tail(run_dir: Path) -> str:
    p = run_dir / STDOUT
    return p.read_text(errors="replace")[-3000:] if p.exists() else "(no stdout.log)"


def train_steps(run_dir: Path) -> list[dict]:
    return [e for e in effective_events(read_events(run_dir / EVENTS)) if e["kind"] == "train"]


def wait_for_step(run_dir: Path, proc: subprocess.Popen, step: int, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while True:
        evs = read_events(run_dir / EVENTS) if (run_dir / EVENTS).exists() else []
        if any(e.get("kind") == "train" and e["step"] >= step for e in evs):
            return
        assert proc.poll() is None, f"trainer exited early ({proc.returncode}): {log_tail(run_dir)}"
        assert time.monotonic() < deadline, "timed out waiting for the trainer"
        time.sleep(0.02)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The uninterrupted run every killed run must reproduce."""
    run_dir = create_run(make_preset(FAULT_PRESET), name="straight", root=tmp_path_factory.mktemp("ref"))
    assert spawn_trainer(run_dir).wait(timeout=300) == 0, log_tail(run_dir)
    return run_dir


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_sigkill_at_random_steps_then_resume_reproduces_the_uninterrupted_run(seed, reference, tmp_path):
    """Kill the trainer from outside (SIGKILL to its process group: no chance to clean up) at random
    steps, once or twice, and resume each time. The resumed run completes with every step logged once,
    the same losses and the same final weights as the run that was never interrupted."""
    import torch

    from tuiLM.train.checkpoint import latest_checkpoint, load_checkpoint

    rng = random.Random(seed)
    run_dir = create_run(make_preset(FAULT_PRESET), name=f"killed{seed}", root=tmp_path)
    kills = sorted(rng.sample(range(2, 15), k=1 + seed % 2))
    resume = False
    for k in kills:
        proc = spawn_trainer(run_dir, resume=resume)
        wait_for_step(run_dir, proc, k)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
        resume = True  # also before the first checkpoint: resume then starts again at step 0
    proc = spawn_trainer(run_dir, resume=resume)
    assert proc.wait(timeout=300) == 0, log_tail(run_dir)

    raw = read_events(run_dir / EVENTS)
    assert all(validate_event(e) == [] for e in raw)
    ends = [e for e in raw if e["kind"] == "run_end"]
    assert [e["status"] for e in ends] == ["completed"]  # the killed attempts never wrote one
    got = train_steps(run_dir)
    want = train_steps(reference)
    assert [e["step"] for e in got] == [e["step"] for e in want] == list(range(1, 17))  # none lost, none twice
    assert [e["loss"] for e in got] == [e["loss"] for e in want]
    a = load_checkpoint(latest_checkpoint(reference / CHECKPOINTS))
    b = load_checkpoint(latest_checkpoint(run_dir / CHECKPOINTS))
    assert a["step"] == b["step"] == 16
    for name, tensor in a["model"].items():
        assert torch.equal(tensor, b["model"][name]), name
    evals = lambda d: [(e["step"], e["val_loss"]) for e in effective_events(read_events(d / EVENTS))  # noqa: E731
                       if e["kind"] == "eval"]
    assert evals(run_dir) == evals(reference)
    leftovers = [p.name for p in (run_dir / CHECKPOINTS).iterdir() if p.name.endswith(".tmp")]
    assert leftovers == [] or all(p.startswith(".") for p in leftovers)


def _mount_tmpfs(path: Path, size: str) -> None:
    path.mkdir(parents=True, exist_ok=True)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({r.stderr.decode().strip()[:100]})")


@pytest.fixture
def small_disk(tmp_path):
    mounts = []

    def mount(path: Path, size: str) -> Path:
        _mount_tmpfs(path, size)
        mounts.append(path)
        return path

    yield mount
    for m in reversed(mounts):
        subprocess.run(["umount", "-l", str(m)], capture_output=True)


def _checkpoints_are_whole(run_dir: Path) -> None:
    from tuiLM.train.checkpoint import list_checkpoints, load_checkpoint

    for p in list_checkpoints(run_dir / CHECKPOINTS):
        load_checkpoint(p)  # raises CheckpointError on anything half-written


def test_full_disk_fails_clearly_and_leaves_no_corrupt_checkpoint(tmp_path, small_disk):
    """The checkpoints folder sits on a 96 KiB filesystem: the first checkpoint cannot be written."""
    run_dir = create_run(make_preset({**FAULT_PRESET, "checkpoint.every": 2}), name="full", root=tmp_path)
    small_disk(run_dir / CHECKPOINTS, "96k")
    proc = spawn_trainer(run_dir)
    assert proc.wait(timeout=300) == 1, log_tail(run_dir)
    end = [e for e in read_events(run_dir / EVENTS) if e["kind"] == "run_end"][-1]
    assert end["status"] == "failed" and "No space left on device" in end["reason"], end
    assert "checkpoint" in end["reason"].lower()
    _checkpoints_are_whole(run_dir)
    assert [p.name for p in (run_dir / CHECKPOINTS).iterdir()] == []  # the temp file was removed


def test_read_only_checkpoints_fail_clearly_and_keep_earlier_checkpoints(tmp_path, small_disk):
    """The checkpoint folder turns read-only mid-run: the trainer ends failed, naming the problem,
    and the checkpoints written before stay loadable."""
    # max_steps far beyond reach: this trainer does ~100 steps/s, so a run of 400 could end before a
    # loaded machine got the remount through (it did once); it fails at its next checkpoint instead
    run_dir = create_run(make_preset({**FAULT_PRESET, "train.max_steps": 1_000_000, "checkpoint.every": 3}),
                         name="ro", root=tmp_path)
    ckpts = small_disk(run_dir / CHECKPOINTS, "64m")
    proc = spawn_trainer(run_dir)
    try:
        wait_for_step(run_dir, proc, 4)
        # a remount fails with "busy" while a checkpoint is being written (a file open for writing): retry
        for _ in range(200):
            if subprocess.run(["mount", "-o", "remount,ro", str(ckpts)], capture_output=True).returncode == 0:
                break
            time.sleep(0.05)
        else:
            pytest.fail("could not remount the checkpoint folder read-only")
        assert proc.wait(timeout=300) == 1, log_tail(run_dir)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    end = [e for e in read_events(run_dir / EVENTS) if e["kind"] == "run_end"][-1]
    assert end["status"] == "failed" and "Read-only file system" in end["reason"], end
    _checkpoints_are_whole(run_dir)
    assert any((run_dir / CHECKPOINTS).glob("step-*.pt"))


def test_cli_run_into_a_read_only_runs_folder_is_a_clear_error(tmp_path, small_disk, capsys, monkeypatch):
    from tuiLM.cli import main

    runs = small_disk(tmp_path / "runs", "1m")
    subprocess.run(["mount", "-o", "remount,ro", str(runs)], check=True)
    monkeypatch.setenv("TUILM_RUNS_DIR", str(runs))
    with pytest.raises(SystemExit) as e:
        main(["run", "quickstart", "--headless", "--set", "train.max_steps=30"])
    err = capsys.readouterr().err
    assert e.value.code == 1 and "Traceback" not in err and "read-only" in err.lower()


def test_every_reader_skips_a_torn_last_line(reference, tmp_path):
    """A trainer killed mid-write leaves half a line: summaries, reports, the app's loader and the
    headless watcher all read the complete events and ignore the fragment."""
    import shutil

    from tuiLM import report
    from tuiLM.reader import summarize

    run_dir = tmp_path / reference.name
    shutil.copytree(reference, run_dir)
    whole = read_events(run_dir / EVENTS)
    with open(run_dir / EVENTS, "a") as fh:
        fh.write('{"v":1,"kind":"train","step":17,"loss":0.1')
    assert read_events(run_dir / EVENTS) == whole
    s = summarize(run_dir)
    assert s.state == "completed" and s.step == 16
    out = Console(file=io.StringIO(), width=200)
    report.print_run(run_dir, out)
    report.print_compare([run_dir, reference], out)
    assert "17" not in [line.split()[0] for line in out.file.getvalue().splitlines() if line.split()]
    from tuiLM.tui.rundata import RunData

    rd = RunData(run_dir)
    while rd.poll():
        pass
    steps = rd.snapshot().column("train", "step")
    assert list(steps) == list(range(1, 17)) and rd.snapshot().state == "completed"


class _Payload:
    def __reduce__(self):
        return (os.system, (f"touch {_Payload.marker}",))


def test_crafted_pickle_in_a_checkpoint_is_refused_and_not_executed(tmp_path):
    import torch

    from tuiLM.train.checkpoint import CheckpointError, load_checkpoint

    marker = tmp_path / "pwned"
    _Payload.marker = marker
    path = tmp_path / "step-0000001.pt"
    torch.save({"model": _Payload(), "step": 1}, path)
    with pytest.raises(CheckpointError) as e:
        load_checkpoint(path)
    assert str(path) in str(e.value)
    assert not marker.exists(), "the payload ran: checkpoints must load with weights_only=True"


def test_sample_command_refuses_a_crafted_checkpoint(reference, tmp_path, capsys):
    import shutil

    import torch

    from tuiLM.cli import main

    run_dir = tmp_path / "evil"
    shutil.copytree(reference, run_dir)
    marker = tmp_path / "pwned2"
    _Payload.marker = marker
    for p in (run_dir / CHECKPOINTS).glob("step-*.pt"):
        torch.save({"model": _Payload(), "step": 16}, p)
    with pytest.raises(SystemExit) as e:
        main(["sample", str(run_dir), "--max-new-tokens", "4"])
    err = capsys.readouterr().err
    assert e.value.code == 1 and "Traceback" not in err and not marker.exists()


@pytest.mark.parametrize("name", ["../escape", "a/b", "..", "x/../../y"])
def test_cli_rejects_run_names_with_separators(name, tmp_path, capsys, monkeypatch):
    from tuiLM.cli import main

    monkeypatch.setenv("TUILM_RUNS_DIR", str(tmp_path / "runs"))
    with pytest.raises(SystemExit) as e:
        main(["run", "quickstart", "--headless", "--name", name])
    err = capsys.readouterr().err
    assert e.value.code == 1 and "bad run name" in err
    assert not (tmp_path / "escape").exists() and not (tmp_path.parent / "escape").exists()


# -- ownership: the run's lock, never a pid in a file ------------------------------------------------

def _finished_run_with_a_foreign_pid(tmp_path: Path) -> tuple[Path, subprocess.Popen]:
    """A completed run, then a run_start appended and trainer.pid (and the lock file's identity) naming
    a live process that has nothing to do with it: a child this test owns."""
    import json as _json

    from tuiLM.events import EventWriter
    from tuiLM.runs import LOCKFILE, PIDFILE
    from tuiLM.ownership import process_start_time

    run_dir = create_run(make_preset(FAULT_PRESET), name="stale", root=tmp_path)
    start = {"run_id": run_dir.name, "versions": {}, "device": "cpu", "params": 1, "world_size": 1,
             "max_steps": 16, "tokens_per_step": 1, "corpus": {}, "pid": 1, "step": 0}
    with EventWriter(run_dir / EVENTS) as w:
        w.write("run_start", **start)
        w.write("run_end", status="completed", step=16, reason="")
        w.write("run_start", **{**start, "step": 16})
    bystander = subprocess.Popen(["sleep", "300"])
    (run_dir / PIDFILE).write_text(f"{bystander.pid}\n")
    (run_dir / LOCKFILE).write_text(_json.dumps({"pid": bystander.pid, "host": __import__("socket").gethostname(),
                                                 "start_time": process_start_time(bystander.pid)}))
    return run_dir, bystander


def test_a_live_unrelated_process_named_in_trainer_pid_is_never_signalled(tmp_path, capsys):
    from tuiLM.cli import main
    from tuiLM.launch import stop_trainer, trainer_alive
    from tuiLM.ownership import acquire_run_lock
    from tuiLM.reader import summarize
    from tuiLM.tui.rundata import RunData

    run_dir, bystander = _finished_run_with_a_foreign_pid(tmp_path)
    try:
        assert summarize(run_dir).state == "dead"  # not "running forever"
        rd = RunData(run_dir)
        rd.poll()
        assert rd.snapshot().state == "dead"
        assert not trainer_alive(run_dir)
        assert stop_trainer(run_dir) is False  # the app's stop
        with pytest.raises(SystemExit) as e:
            main(["stop", str(run_dir)])
        assert e.value.code == 1 and "no running trainer" in capsys.readouterr().err
        os.close(acquire_run_lock(run_dir))  # a resume is not refused
        # even while the run's lock is held by someone, a pid whose start time differs is not signalled
        (run_dir / "trainer.lock").write_text('{"pid": %d, "start_time": 1, "host": "%s"}'
                                              % (bystander.pid, __import__("socket").gethostname()))
        fd = acquire_run_lock(run_dir)
        try:
            assert stop_trainer(run_dir) is False
        finally:
            os.close(fd)
        time.sleep(0.2)
        assert bystander.poll() is None, "the unrelated process was signalled"
    finally:
        bystander.kill()
        bystander.wait()


def test_two_concurrent_resumes_start_exactly_one_trainer(tmp_path):
    """Two launches race for one run (threads released together): exactly one trainer starts; the
    other is refused with a clear message before it starts anything."""
    import threading

    from tuiLM.errors import UserError

    run_dir = create_run(make_preset({**FAULT_PRESET, "train.max_steps": 6}), name="race", root=tmp_path)
    barrier = threading.Barrier(2)
    procs: list = []
    errors: list = []

    def launch() -> None:
        barrier.wait()
        try:
            procs.append(spawn_trainer(run_dir, resume=True))
        except UserError as e:
            errors.append(str(e))

    threads = [threading.Thread(target=launch) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(procs) == 1 and len(errors) == 1, (procs, errors)
    assert "already running" in errors[0]
    assert procs[0].wait(timeout=300) == 0, log_tail(run_dir)
    raw = read_events(run_dir / EVENTS)
    assert [e["kind"] for e in raw].count("run_start") == 1
    assert [e["step"] for e in raw if e["kind"] == "train"] == list(range(1, 7))


def test_two_trainers_started_by_hand_on_one_run_train_once(tmp_path):
    """Without the launcher (python -m tuiLM.train twice): rank 0 takes the lock itself; the second
    trainer, started while the first owns the run, exits with a clear message and writes nothing.
    (Started side by side, the first could finish a short run before the second asks for the lock:
    on a fast machine both trained, one after the other. So the second starts once the first owns
    the run, and the first trains long enough to outlive the second's start-up.)"""
    from tuiLM.ownership import trainer_running

    steps = 1000
    run_dir = create_run(make_preset({**FAULT_PRESET, "train.max_steps": steps, "checkpoint.every": 0,
                                      "eval.every": 0, "diag.every": 0, "sample.every": 0}), name="byhand",
                         root=tmp_path)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    env.pop("TUILM_RUN_LOCK_FD", None)
    cmd = [sys.executable, "-m", "tuiLM.train", str(run_dir), "--resume"]
    a = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 120
    while not trainer_running(run_dir) and a.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    b = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    out_b = b.communicate(timeout=300)[0].decode()
    assert a.poll() is None, "the first trainer ended before the second asked: the test proves nothing"
    out_a = a.communicate(timeout=300)[0].decode()
    assert (a.returncode, b.returncode) == (0, 3), (out_a, out_b)
    assert "already running" in out_b
    raw = read_events(run_dir / EVENTS)
    assert [e["kind"] for e in raw].count("run_start") == 1
    assert [e["kind"] for e in raw].count("run_end") == 1
    assert [e["step"] for e in raw if e["kind"] == "train"] == list(range(1, steps + 1))


def test_stop_command_stops_the_proven_trainer(tmp_path, capsys):
    from tuiLM.cli import main

    # never reaches max_steps (at ~100 steps/s a run of 400 could end before a loaded machine stops it)
    run_dir = create_run(make_preset({**FAULT_PRESET, "train.max_steps": 1_000_000}), name="stopme", root=tmp_path)
    proc = spawn_trainer(run_dir)
    try:
        wait_for_step(run_dir, proc, 2)
        with pytest.raises(SystemExit) as e:
            main(["stop", str(run_dir), "--wait", "120"])
        assert e.value.code == 0, capsys.readouterr()
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    end = [e for e in read_events(run_dir / EVENTS) if e["kind"] == "run_end"][-1]
    assert end["status"] == "stopped"


def test_sigkill_is_reported_as_likely_out_of_memory_and_the_run_ends_failed(tmp_path, monkeypatch):
    """The kernel's OOM killer sends SIGKILL: the launcher says so with both figures and writes the
    run_end the dead trainer could not. (The host is made small, so the trainer's resident memory is a
    real share of it, as when the OOM killer strikes.)"""
    from tuiLM import machine
    from tuiLM.headless import watch_run
    from tuiLM.reader import summarize

    monkeypatch.setattr(machine, "host_memory_bytes", lambda: 2**28)
    monkeypatch.setenv("TUILM_FAULT_KILL_AT_STEP", "3")
    run_dir = create_run(make_preset(FAULT_PRESET), name="oom", root=tmp_path)
    out = Console(file=io.StringIO(), width=300)
    code = watch_run(run_dir, spawn_trainer(run_dir), out)
    text = out.file.getvalue()
    assert code == 1
    assert re.search(r"killed \(likely out of memory: estimate \d+\.\d GiB, machine \d+\.\d GiB\)", text), text
    end = [e for e in read_events(run_dir / EVENTS) if e["kind"] == "run_end"][-1]
    assert end["status"] == "failed" and end["reason"].startswith("killed (likely out of memory") and end["step"] == 3
    s = summarize(run_dir)
    assert s.state == "failed" and "out of memory" in s.reason


def test_a_trainer_killed_before_its_run_start_is_dead_not_new(tmp_path):
    from tuiLM.reader import summarize
    from tuiLM.tui.rundata import RunData

    run_dir = create_run(make_preset(FAULT_PRESET), name="early", root=tmp_path)
    assert summarize(run_dir).state == "new"
    proc = spawn_trainer(run_dir)
    assert summarize(run_dir).state == "running"  # starting: its lock is held
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)
    assert not [e for e in read_events(run_dir / EVENTS) if e["kind"] == "run_start"]
    assert summarize(run_dir).state == "dead"
    rd = RunData(run_dir)
    rd.poll()
    assert rd.snapshot().state == "dead"


# The trainer as `python -m tuiLM.train RUN_DIR` runs it, with a SIGTERM sent to itself the moment it
# starts importing the trainer module (torch): the window a stop fell into, made exact.
_SIGTERM_DURING_IMPORT = """
import os, signal, sys
from importlib.abc import MetaPathFinder

class Stop(MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "tuiLM.train.trainer":
            sys.meta_path.remove(self)
            os.kill(os.getpid(), signal.SIGTERM)
        return None

sys.meta_path.insert(0, Stop())
from tuiLM.train.__main__ import cli
sys.exit(cli(sys.argv[1:]))
"""


def test_a_stop_while_the_trainer_still_imports_ends_the_run_stopped_not_dead(tmp_path):
    """A study stopped just after it launched a trial's trainer: the SIGTERM came while the trainer was
    still importing torch, which killed it with no event at all (the run read "dead", step 0). The
    trainer now notes a stop from its first moment and ends the run stopped, at step 0."""
    from tuiLM.reader import summarize

    run_dir = create_run(make_preset(FAULT_PRESET), name="stopearly", root=tmp_path)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    env.pop("TUILM_RUN_LOCK_FD", None)
    out = subprocess.run([sys.executable, "-c", _SIGTERM_DURING_IMPORT, str(run_dir)], env=env,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, (out.returncode, out.stderr[-2000:])
    ends = [e for e in read_events(run_dir / EVENTS) if e["kind"] == "run_end"]
    assert [(e["status"], e["step"]) for e in ends] == [("stopped", 0)], ends
    assert "SIGTERM" in ends[0]["reason"]
    assert summarize(run_dir).state == "stopped"
    assert not train_steps(run_dir)


def test_a_failed_resume_leaves_a_completed_run_completed(reference, tmp_path):
    """The resume fails before its run_start (a truncated checkpoint): the run keeps its completed
    state and figures instead of becoming `failed 0/16`; the reason is logged."""
    import shutil

    from tuiLM.reader import summarize
    from tuiLM.train.checkpoint import latest_checkpoint

    run_dir = tmp_path / reference.name
    shutil.copytree(reference, run_dir)
    ckpt = latest_checkpoint(run_dir / CHECKPOINTS)
    ckpt.write_bytes(ckpt.read_bytes()[:1000])
    assert spawn_trainer(run_dir, resume=True).wait(timeout=300) == 1
    s = summarize(run_dir)
    assert (s.state, s.step, s.max_steps) == ("completed", 16, 16)
    last = read_events(run_dir / EVENTS)[-1]
    assert last["kind"] == "log" and last["level"] == "error" and ckpt.name in last["message"]


def _crashed(run_dir: Path) -> None:
    """The run as a trainer killed before its end leaves it: no run_end."""
    lines = (run_dir / EVENTS).read_bytes().splitlines(keepends=True)
    (run_dir / EVENTS).write_bytes(b"".join(x for x in lines if b'"run_end"' not in x))


def test_resume_refuses_a_completed_run_and_a_failed_resume_shows_only_its_own_output(reference, tmp_path):
    """`tuilm resume` of a completed run started a trainer that loaded everything to say 'already at
    max_steps'; it is refused up front. A resume that fails showed the earlier attempt's last lines of
    stdout.log (appended to, so the old output came first); it shows what the resumed trainer wrote."""
    import shutil

    from tuiLM.headless import resume_run
    from tuiLM.reader import summarize
    from tuiLM.train.checkpoint import latest_checkpoint

    run_dir = tmp_path / reference.name
    shutil.copytree(reference, run_dir)
    events = (run_dir / EVENTS).read_bytes()
    r = subprocess.run([sys.executable, "-m", "tuiLM.cli", "resume", str(run_dir)], capture_output=True, text=True,
                       timeout=120, stdin=subprocess.DEVNULL)
    assert r.returncode == 1 and "completed at step 16/16: there is nothing to resume" in r.stderr, r.stderr
    assert (run_dir / EVENTS).read_bytes() == events and "Traceback" not in r.stderr
    _crashed(run_dir)
    assert summarize(run_dir).state == "dead"
    ckpt = latest_checkpoint(run_dir / CHECKPOINTS)
    ckpt.write_bytes(ckpt.read_bytes()[:1000])
    with open(run_dir / STDOUT, "a") as fh:
        fh.write("an earlier attempt said this\n" * 30)
    out = io.StringIO()
    assert resume_run(run_dir, console=Console(file=out, width=200)) == 1
    text = out.getvalue()
    tail = text[text.index("last lines of"):]
    assert "an earlier attempt said this" not in tail and ckpt.name in tail, text


def test_resume_refuses_a_run_whose_frozen_preset_cannot_be_read(reference, tmp_path):
    """A broken preset.toml started a trainer that failed at once and appended run_end(failed) to the
    run; `tuilm sample` refused it up front, and so does `tuilm resume` now (nothing is written)."""
    import shutil

    run_dir = tmp_path / reference.name
    shutil.copytree(reference, run_dir)
    _crashed(run_dir)
    events = (run_dir / EVENTS).read_bytes()
    for text, said in (('[run\nname = "x', "TOML syntax error"), ("[model]\nn_layers = -3\n", ":2: model.n_layers: "),
                       ("", "preset.toml: empty: cannot resume")):
        (run_dir / PRESET).write_text(text)
        r = subprocess.run([sys.executable, "-m", "tuiLM.cli", "resume", str(run_dir)], capture_output=True,
                           text=True, timeout=120, stdin=subprocess.DEVNULL)
        assert r.returncode == 1 and r.stderr.startswith("error: ") and said in r.stderr, r.stderr
        assert r.stderr.count("error") == 1 + ("TOML syntax error" in said), r.stderr
        assert (run_dir / EVENTS).read_bytes() == events and "Traceback" not in r.stderr


def test_resume_on_a_full_disk_names_the_file_and_leaves_nothing_running(reference, tmp_path, small_disk, capsys):
    import shutil

    from tuiLM.cli import main
    from tuiLM.ownership import trainer_running

    disk = small_disk(tmp_path / "disk", "2m")
    run_dir = disk / reference.name
    shutil.copytree(reference, run_dir, ignore=shutil.ignore_patterns("*.pt"))
    _crashed(run_dir)  # (a completed run is not resumed at all)
    with open(disk / "filler", "wb", buffering=0) as fh:  # fill the file system to the last block
        try:
            while True:
                fh.write(b"\0" * 4096)
        except OSError:
            pass
    before = read_events(run_dir / EVENTS)
    with pytest.raises(SystemExit) as e:
        main(["resume", str(run_dir)])
    err = capsys.readouterr().err
    assert e.value.code == 1 and "Traceback" not in err
    assert "No space left on device while writing" in err and str(run_dir) in err.replace("\n", "")
    assert not trainer_running(run_dir)
    assert read_events(run_dir / EVENTS) == before


def test_the_app_records_the_death_of_a_trainer_it_started(tmp_path):
    """The app's loader sees its own trainer die by SIGKILL: it writes the run_end the trainer could
    not, with the same reason as the headless watcher, and the run shows as failed. A kill -9 by hand
    of a trainer far from the host's memory is not called out of memory: both causes are named."""
    from tuiLM.tui.rundata import RunData

    run_dir = create_run(make_preset({**FAULT_PRESET, "train.max_steps": 1_000_000}), name="appdeath", root=tmp_path)
    proc = spawn_trainer(run_dir)
    wait_for_step(run_dir, proc, 2)
    rd = RunData(run_dir, proc)
    rd.poll()
    os.killpg(proc.pid, signal.SIGKILL)
    deadline = time.monotonic() + 60
    while rd.snapshot().state != "failed" and time.monotonic() < deadline:
        rd.poll()
        time.sleep(0.1)
    assert rd.snapshot().state == "failed"
    assert rd.snapshot().run_end["reason"].startswith("killed by SIGKILL (by hand, or the out-of-memory killer: "
                                                      "its last resident memory was "), rd.snapshot().run_end["reason"]

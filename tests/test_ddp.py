"""DDP through torchrun on the CPU (gloo): two ranks give the losses of one process with the same global batch."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import torch

from tuiLM.events import validate_event
from tuiLM.reader import read_events
from tuiLM.launch import create_run, trainer_command
from tuiLM.runs import CHECKPOINTS, EVENTS, STDOUT
from tuiLM.train.checkpoint import load_checkpoint

from .conftest import TINY_GPT, make_preset

pytestmark = pytest.mark.slow

PRESET = {**TINY_GPT, "train.max_steps": 4, "train.total_batch_size": 2 * 4 * 32, "checkpoint.every": 0,
          "eval.every": 0, "diag.every": 0, "data.max_bytes": 60_000, "optim.name": "muon"}


def train(run_dir: Path, nproc: int) -> list[dict]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    with open(run_dir / STDOUT, "wb") as log:
        code = subprocess.run(trainer_command(run_dir, nproc=nproc), stdout=log, stderr=subprocess.STDOUT, env=env,
                              timeout=300).returncode
    assert code == 0, (run_dir / STDOUT).read_text(errors="replace")[-4000:]
    return read_events(run_dir / EVENTS)


def test_two_ranks_match_one_process_with_accumulation(tmp_path):
    preset = make_preset(PRESET)
    single = create_run(preset, name="single", root=tmp_path)
    ddp = create_run(preset, name="ddp", root=tmp_path)
    ev1 = train(single, 1)
    ev2 = train(ddp, 2)
    for ev in ev2:
        assert validate_event(ev) == [], ev
    start1, start2 = ev1[0], ev2[0]
    assert (start1["world_size"], start1["grad_accum"]) == (1, 2)
    assert (start2["world_size"], start2["grad_accum"]) == (2, 1)
    assert start1["tokens_per_step"] == start2["tokens_per_step"] == 256
    loss1 = [e["loss"] for e in ev1 if e["kind"] == "train"]
    loss2 = [e["loss"] for e in ev2 if e["kind"] == "train"]
    assert len(loss1) == len(loss2) == 4
    assert loss2 == pytest.approx(loss1, rel=1e-4)
    val1 = [e["val_loss"] for e in ev1 if e["kind"] == "eval"]
    val2 = [e["val_loss"] for e in ev2 if e["kind"] == "eval"]
    assert val2 == pytest.approx(val1, rel=1e-4)
    # only rank 0 writes: one run_start, one run_end, one checkpoint
    assert sum(e["kind"] == "run_start" for e in ev2) == 1 and ev2[-1]["status"] == "completed"
    w1 = load_checkpoint(single / CHECKPOINTS / "step-0000004.pt")["model"]
    w2 = load_checkpoint(ddp / CHECKPOINTS / "step-0000004.pt")["model"]
    for k in w1:
        torch.testing.assert_close(w1[k], w2[k], rtol=1e-3, atol=2e-4)


def test_stop_under_torchrun_checkpoints_on_every_rank_and_exits_0(tmp_path, monkeypatch):
    import time

    from tuiLM.launch import spawn_trainer, stop_trainer

    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    run_dir = create_run(make_preset({**PRESET, "train.max_steps": 100_000, "train.total_batch_size": 0}),
                         name="ddpstop", root=tmp_path)
    proc = spawn_trainer(run_dir, nproc=2)
    deadline = time.monotonic() + 180
    while not any(e["kind"] == "train" and e["step"] >= 2 for e in read_events(run_dir / EVENTS)):
        assert proc.poll() is None and time.monotonic() < deadline, (run_dir / STDOUT).read_text()[-3000:]
        time.sleep(0.1)
    assert stop_trainer(run_dir) is True  # SIGTERM to each rank, not to torchrun
    assert proc.wait(timeout=120) == 0, (run_dir / STDOUT).read_text()[-3000:]
    evs = read_events(run_dir / EVENTS)
    end = evs[-1]
    assert end["kind"] == "run_end" and end["status"] == "stopped" and "SIGTERM" in end["reason"]
    state = load_checkpoint(run_dir / CHECKPOINTS / f"step-{end['step']:07d}.pt")
    assert state["world_size"] == 2 and len(state["rng"]) == 2  # every rank's RNG state is kept


def _children(pid: int) -> list[int]:
    out = []
    for d in Path("/proc").iterdir():
        try:
            if d.name.isdigit() and int((d / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(d.name))
        except (OSError, ValueError, IndexError):
            pass
    return out


def _gone(pid: int) -> bool:
    try:
        return (Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]) == "Z"
    except OSError:
        return True


def test_ranks_whose_torchrun_is_killed_exit_and_leave_the_run_resumable(tmp_path, monkeypatch):
    """kill -9 of torchrun (the pid the run records; it holds the run's lock): its workers, re-parented,
    trained on without the lock, and a resume could start beside them. They now exit at their next
    step and write nothing more."""
    import signal
    import time

    from tuiLM.launch import spawn_trainer
    from tuiLM.ownership import lock_held
    from tuiLM.reader import summarize

    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    run_dir = create_run(make_preset({**PRESET, "train.max_steps": 100_000, "train.total_batch_size": 0}),
                         name="orphans", root=tmp_path)
    proc = spawn_trainer(run_dir, nproc=2)
    ranks: list[int] = []
    try:
        deadline = time.monotonic() + 180
        while not any(e["kind"] == "train" and e["step"] >= 2 for e in read_events(run_dir / EVENTS)):
            assert proc.poll() is None and time.monotonic() < deadline, (run_dir / STDOUT).read_text()[-3000:]
            time.sleep(0.1)
        ranks = _children(proc.pid)
        assert len(ranks) == 2, ranks
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
        deadline = time.monotonic() + 60
        while not all(_gone(r) for r in ranks):
            assert time.monotonic() < deadline, "the ranks trained on after their torchrun was killed"
            time.sleep(0.1)
    finally:
        for r in ranks:
            try:
                os.kill(r, signal.SIGKILL)
            except OSError:
                pass
    assert lock_held(run_dir) is False
    n = len(read_events(run_dir / EVENTS))
    time.sleep(1.0)
    assert len(read_events(run_dir / EVENTS)) == n
    assert summarize(run_dir).state == "dead"  # as a killed trainer leaves it: `tuilm resume` continues it
    assert "its launcher (torchrun" in (run_dir / STDOUT).read_text()

"""The launcher: run directories, commands, spawning and stopping; no torch import."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tuiLM.config.load import load
from tuiLM.errors import UserError
from tuiLM.launch import create_run, spawn_trainer, stop_trainer, trainer_alive, trainer_command
from tuiLM.runs import PIDFILE, PRESET, STDOUT

from .conftest import ROOT, TINY_GPT, make_preset


def test_launch_and_report_import_no_torch():
    code = ("import sys, tuiLM.launch, tuiLM.report; "
            "bad = [m for m in ('torch', 'numpy', 'textual') if m in sys.modules]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


def test_trainer_imports_no_ui_libraries():
    code = ("import sys, tuiLM.train.trainer, tuiLM.train.sampling, tuiLM.train.__main__; "
            "bad = [m for m in ('textual', 'typer', 'rich') if m in sys.modules]; assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


@pytest.mark.parametrize("name", ["a/b", "../escape", "..", "x..y", "", "/abs", "a\\b", ".hidden"])
def test_bad_run_names_are_rejected(tmp_path, name):
    with pytest.raises(UserError, match="bad run name"):
        create_run(make_preset(TINY_GPT), name=name, root=tmp_path)
    assert not any(tmp_path.iterdir())


def test_create_run_freezes_the_resolved_preset(tmp_path, monkeypatch):
    data = tmp_path / "corpus.txt"
    data.write_text("hello")
    monkeypatch.chdir(tmp_path)
    preset = make_preset({**TINY_GPT, "data.source": "text", "data.path": "corpus.txt", "run.name": "frozen"})
    run_dir = create_run(preset, root=tmp_path / "runs")
    assert run_dir.parent == tmp_path / "runs" and run_dir.name.startswith("frozen-")
    again, problems = load(run_dir / PRESET)
    assert not [p for p in problems if p.is_error]
    assert again.data.path == str(data.resolve())  # relative paths are frozen as absolute
    for section in preset.values:
        if section != "data":
            assert again.values[section] == preset.values[section]


def test_create_run_rejects_an_invalid_preset(tmp_path):
    with pytest.raises(UserError, match="model.d_model"):
        create_run(make_preset({**TINY_GPT, "model.d_model": 30}), root=tmp_path)
    assert not any(tmp_path.iterdir())


def test_create_run_refuses_data_that_is_not_there_before_making_a_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for changes in ({"data.source": "text", "data.path": "nope.txt"},
                    {"data.source": "text", "data.path": "/nonexistent/*.txt"},
                    {"data.val_path": str(tmp_path / "val.txt")}):
        with pytest.raises(UserError, match="no such file or folder here: nothing was started"):
            create_run(make_preset({**TINY_GPT, **changes}), root=tmp_path / "runs")
    assert not (tmp_path / "runs").exists()  # no failed run left behind (a study does not burn trials)


def test_trainer_command():
    run = Path("runs/x")
    assert trainer_command(run) == [sys.executable, "-m", "tuiLM.train", "runs/x"]
    assert trainer_command(run, resume=True)[-1] == "--resume"
    cmd = trainer_command(run, nproc=4)
    assert cmd[:7] == [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "4", "-m"]
    assert cmd[7:] == ["tuiLM.train", "runs/x"]
    with pytest.raises(UserError):
        trainer_command(run, nproc=0)


def test_spawn_writes_pid_and_log_and_stop_reaches_the_process_group(tmp_path, monkeypatch):
    run_dir = create_run(make_preset(TINY_GPT), root=tmp_path)
    # a stand-in trainer that records SIGTERM: spawn_trainer's session and logging, without torch
    script = ("import signal, sys, time\n"
              "def h(*a):\n    print('got SIGTERM', flush=True); sys.exit(0)\n"
              "signal.signal(signal.SIGTERM, h)\nprint('ready', flush=True)\ntime.sleep(60)\n")
    monkeypatch.setattr("tuiLM.launch.trainer_command", lambda *a, **k: [sys.executable, "-c", script])
    proc = spawn_trainer(run_dir)
    assert int((run_dir / PIDFILE).read_text()) == proc.pid
    assert os.getpgid(proc.pid) == proc.pid != os.getpgid(0)  # its own session: Ctrl-C here does not reach it
    deadline = time.monotonic() + 30
    while "ready" not in (run_dir / STDOUT).read_text():
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert trainer_alive(run_dir)
    with pytest.raises(UserError, match="already running"):
        spawn_trainer(run_dir)
    assert stop_trainer(run_dir, wait=10) is True
    assert proc.wait(timeout=10) == 0
    assert "got SIGTERM" in (run_dir / STDOUT).read_text()
    assert not trainer_alive(run_dir) and stop_trainer(proc) is False


def test_resume_of_a_run_that_is_running_refuses_before_saying_it_resumes(tmp_path):
    import io

    from rich.console import Console

    from tuiLM.headless import resume_run
    from tuiLM.ownership import acquire_run_lock

    run_dir = create_run(make_preset(TINY_GPT), root=tmp_path)
    fd = acquire_run_lock(run_dir)  # as the running trainer holds it
    try:
        out = io.StringIO()
        with pytest.raises(UserError, match="a trainer is already running"):
            resume_run(run_dir, console=Console(file=out))
        assert "resuming" not in out.getvalue()
    finally:
        os.close(fd)


@pytest.mark.parametrize("signal_name", ["Ctrl-C", "SIGTERM"])
def test_a_signal_outside_the_watch_loop_kills_the_trainer_and_exits_128_plus_it(tmp_path, monkeypatch, signal_name):
    """A second SIGTERM while the first stop was being sent, or one during the final wait, escaped
    watch_run: the trainer was left running unwatched and the exit status said 130 whatever came."""
    import io

    from rich.console import Console

    from tuiLM import headless
    from tuiLM.reader import summarize

    run_dir = create_run(make_preset(TINY_GPT), name="sig", root=tmp_path / "runs")
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True)

    def interrupted(*args, **kwargs):
        raise headless.Terminated() if signal_name == "SIGTERM" else KeyboardInterrupt()

    monkeypatch.setattr(headless, "_watch_run", interrupted)
    out = Console(file=io.StringIO(), width=120)
    code = headless.watch_run(run_dir, proc, out)
    assert code == (143 if signal_name == "SIGTERM" else 130)
    assert proc.poll() is not None  # killed, not left running
    assert f"interrupted ({signal_name})" in out.file.getvalue()
    assert summarize(run_dir).reason == f"killed after a {signal_name} to the process watching it"

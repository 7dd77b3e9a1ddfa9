"""Hostile files and environments (issue 14): a FIFO for events, a crafted meta.pkl, torn lines longer
than any buffer, broken checkpoint metas, absurd presets, full disks and too little memory. Each
gives a clear message naming the file, never a traceback, and never a half-tracked trainer."""

from __future__ import annotations

import errno
import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest

from tuiLM.cli import main
from tuiLM.config.load import PresetError, load, load_text
from tuiLM.events import EventWriter
from tuiLM.reader import EventTail, read_events
from tuiLM.launch import create_run
from tuiLM.runs import EVENTS
from tuiLM.ownership import trainer_running
from tuiLM.reader import summarize

from .conftest import ROOT, TINY_GPT, make_preset


def _cli(args: list[str], capsys) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as e:
        main(args)
    out = capsys.readouterr()
    return e.value.code, out.out, out.err


# -- events.jsonl that is not a file --------------------------------------------------------------

def test_a_fifo_named_events_jsonl_is_refused_not_waited_on(tmp_path):
    """Opening a FIFO for reading blocks until a writer comes: every reader must refuse it instead.
    Run in a subprocess with a timeout so a regression fails instead of hanging the suite."""
    runs = tmp_path / "runs"
    run = runs / "fifo-run"
    run.mkdir(parents=True)
    os.mkfifo(run / EVENTS)
    (runs / "good-run").mkdir()
    with EventWriter(runs / "good-run" / EVENTS) as w:
        w.write("run_end", status="completed", step=3, reason="")
    code = ("import sys\n"
            "from tuiLM.cli import main\n"
            "sys.argv=['tuilm']\n"
            "for args in (['runs','list'], ['runs','show','fifo-run']):\n"
            "    try:\n"
            "        main(args)\n"
            "    except SystemExit as e:\n"
            "        print('exit', e.code)\n"
            "from tuiLM.tui.rundata import RunData\n"
            "from tuiLM.reader import summarize\n"
            f"rd = RunData({str(run)!r}); rd.poll(); print('rundata', rd.snapshot().state)\n"
            f"print('summary', summarize({str(run)!r}).state)\n")
    env = {**os.environ, "TUILM_RUNS_DIR": str(runs), "COLUMNS": "200"}
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env,
                       cwd=ROOT)
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
    assert "good-run" in r.stdout and "completed" in r.stdout  # the other runs stay listed
    assert "not a regular file" in r.stdout
    assert "rundata unreadable" in r.stdout and "summary unreadable" in r.stdout
    tail = EventTail(run / EVENTS)
    assert tail.poll() == [] and "not a regular file" in tail.error


def test_a_torn_line_longer_than_a_mebibyte_does_not_swallow_the_next_event(tmp_path):
    path = tmp_path / EVENTS
    with EventWriter(path) as w:
        w.write("log", level="info", message="before", step=0)
    with open(path, "ab") as fh:
        fh.write(b'{"kind":"log","message":"' + b"x" * (3 << 20))  # killed mid-line, 3 MiB in
    with EventWriter(path) as w:
        w.write("log", level="info", message="after", step=0)
    assert [e["message"] for e in read_events(path)] == ["before", "after"]


# -- nanoGPT meta.pkl -----------------------------------------------------------------------------

class _Evil:
    marker: Path

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _nanogpt_folder(tmp_path: Path, meta: object) -> Path:
    import numpy as np

    folder = tmp_path / "shakespeare_char"
    folder.mkdir()
    ids = (np.arange(4000) % 3).astype(np.uint16)
    ids.tofile(folder / "train.bin")
    ids[:1000].tofile(folder / "val.bin")
    with open(folder / "meta.pkl", "wb") as fh:
        pickle.dump(meta, fh)
    return folder


def test_a_meta_pkl_payload_is_refused_and_never_runs(tmp_path):
    from tuiLM.errors import UserError
    from tuiLM.train.data import load_corpus

    marker = tmp_path / "pwned"
    _Evil.marker = marker
    folder = _nanogpt_folder(tmp_path, {"vocab_size": 3, "itos": {0: "a", 1: "b", 2: "c"}, "stoi": _Evil()})
    preset = make_preset({"data.source": "nanogpt", "data.path": str(folder), "data.tokenizer": "byte"})
    with pytest.raises(UserError) as e:
        load_corpus(preset.data)
    msg = str(e.value)
    assert str(folder / "meta.pkl") in msg and "system" in msg and "refused" in msg
    assert not marker.exists(), "the pickle payload ran"


def test_a_plain_nanogpt_meta_pkl_still_loads(tmp_path):
    from tuiLM.train.data import load_corpus

    folder = _nanogpt_folder(tmp_path, {"vocab_size": 3, "itos": {0: "a", 1: "b", 2: "c"},
                                        "stoi": {"a": 0, "b": 1, "c": 2}})
    corpus = load_corpus(make_preset({"data.source": "nanogpt", "data.path": str(folder),
                                      "data.tokenizer": "byte"}).data)
    assert corpus.vocab_size == 3 and corpus.tokenizer.decode([0, 1, 2]) == "abc"


# -- checkpoints ----------------------------------------------------------------------------------

def _tiny_checkpoint(tmp_path: Path) -> Path:
    import torch

    from tuiLM.train.checkpoint import save_checkpoint

    return save_checkpoint(tmp_path, 1, {"model": {"w": torch.zeros(3)}, "step": 1}, {}, keep=3)


def test_pruning_keeps_the_checkpoint_just_written_when_an_unfinished_one_lies_above_it(tmp_path):
    """A trainer killed between step 20's rename and its meta, resumed from step 10 and stopped at 15
    with keep = 1: pruning counted the unfinished step-20.pt as the newest and deleted step 15 just
    written (the run then failed at every save, back to step 0). Unfinished files go; step 15 stays."""
    import torch

    from tuiLM.train.checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint

    def state(step: int) -> dict:
        return {"model": {"w": torch.full((3,), float(step))}, "step": step}

    save_checkpoint(tmp_path, 10, state(10), {}, keep=1)
    torch.save(state(20), tmp_path / "step-0000020.pt")  # renamed in, killed before its meta
    path = save_checkpoint(tmp_path, 15, state(15), {}, keep=1)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["step-0000015.json", "step-0000015.pt"]
    assert latest_checkpoint(tmp_path) == path and load_checkpoint(path)["step"] == 15
    save_checkpoint(tmp_path, 25, state(25), {}, keep=2)  # keep counts the new one: 15 and 25 stay
    save_checkpoint(tmp_path, 30, state(30), {}, keep=2)
    assert sorted(p.name for p in tmp_path.glob("*.pt")) == ["step-0000025.pt", "step-0000030.pt"]


def test_a_checkpoint_meta_that_is_a_list_is_a_clear_error(tmp_path):
    from tuiLM.train.checkpoint import CheckpointError, load_checkpoint

    path = _tiny_checkpoint(tmp_path)
    path.with_suffix(".json").write_text("[1, 2]")
    with pytest.raises(CheckpointError, match="cannot be verified") as e:
        load_checkpoint(path)
    assert str(path) in str(e.value)


def test_a_checkpoint_without_its_meta_is_not_loaded_unverified(tmp_path):
    from tuiLM.train.checkpoint import CheckpointError, latest_checkpoint, load_checkpoint

    first = _tiny_checkpoint(tmp_path)
    import torch

    second = tmp_path / "step-0000002.pt"
    torch.save({"model": {"w": torch.ones(3)}, "step": 2}, second)  # renamed in, killed before its meta
    with pytest.raises(CheckpointError, match="missing"):
        load_checkpoint(second)
    assert latest_checkpoint(tmp_path) == first  # resume takes the last finished one


def test_disk_full_inside_torch_save_names_the_checkpoint(tmp_path, monkeypatch):
    """torch's zip writer reports a failed write as RuntimeError('[enforce fail at inline_container.cc
    ...]'): the message must still say what happened and where."""
    import torch

    from tuiLM.train import checkpoint as ck

    real_fdopen = os.fdopen

    class Full:
        def __init__(self, fh):
            self.fh, self.n = fh, 0

        def write(self, data):
            self.n += len(data)
            if self.n > 2000:
                raise OSError(errno.ENOSPC, "No space left on device")
            return self.fh.write(data)

        def __getattr__(self, name):
            return getattr(self.fh, name)

        def __enter__(self):
            return self

        def __exit__(self, *a):
            self.fh.close()

    monkeypatch.setattr(ck.os, "fdopen", lambda fd, mode: Full(real_fdopen(fd, mode)))
    with pytest.raises(ck.CheckpointError) as e:
        ck.save_checkpoint(tmp_path, 5, {"model": {"w": torch.zeros(10_000)}, "step": 5}, {}, keep=2)
    want = f"No space left on device while writing {tmp_path / 'step-0000005.pt'}"
    assert want in str(e.value)
    assert list(tmp_path.iterdir()) == []  # the temp file is gone


# -- presets --------------------------------------------------------------------------------------

def test_deeply_nested_toml_is_a_clear_error():
    with pytest.raises(PresetError, match="nested too deeply"):
        load_text("a = " + "[" * 100_000 + "]" * 100_000, name="deep.toml")


def test_a_preset_with_very_many_unknown_keys_lists_a_capped_number(tmp_path, capsys):
    path = tmp_path / "many.toml"
    path.write_text("[model]\n" + "".join(f"k{i} = 1\n" for i in range(50_000)))
    _, problems = load(path)
    assert len(problems) <= 25 and "49,980 more unknown keys" in problems[-1].message
    code, _, err = _cli(["validate", str(path)], capsys)
    assert code == 1 and len(err) < 20_000


def test_a_device_as_preset_path_is_refused_without_reading_it(capsys):
    from tuiLM.config.load import read_preset_text

    code, _, err = _cli(["validate", "/dev/zero"], capsys)
    assert code == 1 and "/dev/zero" in err and "Traceback" not in err
    with pytest.raises(PresetError, match="not a regular file"):
        read_preset_text("/dev/zero")  # every path that loads a preset, not only the CLI's lookup


def test_a_set_value_error_does_not_cite_the_file_line(tmp_path, capsys):
    path = tmp_path / "p.toml"
    path.write_text("[model]\narch = 'gpt'\nd_model = 64\nn_heads = 4\n")
    code, _, err = _cli(["validate", str(path), "--set", "model.d_model=-3"], capsys)
    assert code == 1 and "model.d_model" in err
    assert f"{path}:3" not in err  # line 3 holds the file's value, not the one that is wrong


def test_a_tiny_sample_temperature_does_not_crash_generation():
    import torch

    from tuiLM.models import build_model
    from tuiLM.models.generate import generate

    preset = make_preset(TINY_GPT)
    torch.manual_seed(0)
    model = build_model(preset.model, 16, 32)
    idx = torch.zeros((1, 1), dtype=torch.long)
    out = generate(model, idx, 4, temperature=1e-300, seed=0)
    greedy = generate(model, idx, 4, temperature=0, seed=0)
    assert torch.equal(out, greedy)


# -- the built-in corpus -------------------------------------------------------------------------

def test_the_builtin_corpus_leaves_out_non_utf8_stdlib_files(tmp_path):
    from tuiLM.train.data import read_files

    (tmp_path / "a.py").write_text("print('a')\n")
    (tmp_path / "b.py").write_bytes("x = 'caf\xe9'\n".encode("latin-1"))
    (tmp_path / "c.py").write_text("print('c')\n")
    files = sorted(tmp_path.iterdir())
    chunks, entries = read_files(tmp_path, files, 0, utf8_only=True)
    assert [name for name, _ in entries] == ["a.py", "c.py"]


def test_the_builtin_corpus_with_the_char_tokenizer_loads_on_this_python():
    from tuiLM.train.data import builtin_files, load_corpus

    root, files = builtin_files()
    latin = [f for f in files if "module_iso_8859_1" in f.name]
    preset = make_preset({"data.source": "builtin", "data.tokenizer": "char", "data.max_bytes": 0})
    if not latin:
        pytest.skip("this Python ships no non-UTF-8 test modules")
    corpus = load_corpus(preset.data)
    assert corpus.train_tokens > 0


# -- full disks and tracking -----------------------------------------------------------------------

def test_cli_names_the_file_on_a_full_disk(capsys, monkeypatch):
    def full(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device", "/runs/x/preset.toml")

    monkeypatch.setattr("tuiLM.report.print_runs_list", full)
    code, _, err = _cli(["runs", "list"], capsys)
    assert code == 1 and "No space left on device while writing /runs/x/preset.toml" in err


def test_a_launch_that_cannot_record_its_trainer_stops_it(tmp_path, monkeypatch):
    """The identity cannot be written (disk full): the trainer just started is killed, the error names
    the file, and nothing is left running or holding the run."""
    from tuiLM import launch
    from tuiLM.errors import UserError

    run_dir = create_run(make_preset(TINY_GPT), name="full", root=tmp_path)
    spawned = []
    real_popen = subprocess.Popen

    def popen(*a, **k):
        p = real_popen(*a, **k)
        spawned.append(p)
        return p

    def full(fd, ident):
        raise OSError(errno.ENOSPC, "No space left on device", str(run_dir / "trainer.lock"))

    monkeypatch.setattr(launch.subprocess, "Popen", popen)
    monkeypatch.setattr(launch, "record_identity", full)
    with pytest.raises(UserError) as e:
        launch.spawn_trainer(run_dir, resume=True)
    assert f"No space left on device while writing {run_dir / 'trainer.lock'}" in str(e.value)
    assert len(spawned) == 1 and spawned[0].poll() is not None  # killed and reaped
    assert not trainer_running(run_dir) and summarize(run_dir).state == "new"  # never started
    assert not [e for e in read_events(run_dir / EVENTS) if e.get("kind") == "run_start"]


# -- memory ---------------------------------------------------------------------------------------

def _small_machine(monkeypatch, gib: float) -> None:
    from tuiLM import machine

    mem = machine.DeviceMemory("cpu", int(gib * 2**30), "host RAM")
    monkeypatch.setattr(machine, "device_memory", lambda device: mem)
    monkeypatch.setattr(machine, "resolve_device", lambda pref: "cpu")


def test_validate_warns_when_the_estimate_exceeds_the_machine(capsys, monkeypatch):
    _small_machine(monkeypatch, 24)
    code, out, err = _cli(["validate", "bdh-default", "--set", "system.device=cpu"], capsys)
    assert code == 0 and "exceeds this machine's host RAM (24.0 GiB)" in err


def test_run_refuses_a_preset_that_does_not_fit_unless_forced(capsys, monkeypatch, tmp_path):
    _small_machine(monkeypatch, 0.001)
    monkeypatch.setenv("TUILM_RUNS_DIR", str(tmp_path / "runs"))
    code, _, err = _cli(["run", "quickstart", "--headless"], capsys)
    assert code == 1 and "--force" in err and not (tmp_path / "runs").exists()


def test_death_reason_for_sigkill_gives_both_figures(tmp_path, monkeypatch):
    from tuiLM import launch

    _small_machine(monkeypatch, 24)
    run_dir = create_run(make_preset(TINY_GPT), name="oom", root=tmp_path)
    reason = launch.death_reason(run_dir, -9)
    assert reason.startswith("killed (likely out of memory: estimate ") and "machine 24.0 GiB" in reason
    assert launch.death_reason(run_dir, 3) == "the trainer exited with code 3 without writing run_end"


def test_a_sigkill_far_from_the_hosts_memory_is_not_called_out_of_memory(tmp_path, monkeypatch):
    """kill -9 by hand of a trainer resident in 0.4 GiB of 24 was reported "likely out of memory": both
    causes are named now, with what is known (its samples can miss a spike)."""
    from tuiLM import launch, machine
    from tuiLM.events import EventWriter

    monkeypatch.setattr(machine, "host_memory_bytes", lambda: 24 * 2**30)
    run_dir = create_run(make_preset(TINY_GPT), name="byhand", root=tmp_path)
    with EventWriter(run_dir / "events.jsonl") as w:
        w.write("run_start", step=0)
        w.write("train", step=1, tokens=1, loss=3.0, rss_gib=0.4)
    assert launch.death_reason(run_dir, -9) == ("killed by SIGKILL (by hand, or the out-of-memory killer: its last "
                                               "resident memory was 0.4 GiB of the machine's 24.0 GiB)")
    with EventWriter(run_dir / "events.jsonl") as w:
        w.write("train", step=2, tokens=2, loss=3.0, rss_gib=20.0)  # near the host's memory: likely OOM
    assert launch.death_reason(run_dir, -9).startswith("killed (likely out of memory")


def test_record_death_ends_the_latest_attempt_at_the_step_it_reached(tmp_path):
    from tuiLM.ownership import record_death

    start = dict(run_id="r", versions={}, device="cpu", params=1, world_size=1, max_steps=99, tokens_per_step=1,
                 corpus={}, pid=1)

    def train(w, steps):
        for s in steps:
            w.write("train", step=s, tokens=s, loss=1.0, lr=1e-3, grad_norm=1.0, tokens_per_s=1.0, dt_ms=1.0)

    cases = {}
    for name, resumed_steps in (("went-on", range(9, 13)), ("died-at-once", ())):
        run_dir = tmp_path / name
        run_dir.mkdir()
        with EventWriter(run_dir / EVENTS) as w:
            w.write("run_start", step=0, **start)
            train(w, range(1, 16))  # the first attempt reached 15, its last checkpoint was 8
            w.write("checkpoint", step=8, path="checkpoints/step-0000008.pt")
            w.write("run_start", step=8, **start)
            train(w, resumed_steps)
        assert record_death(run_dir, "killed by SIGKILL")
        assert not record_death(run_dir, "twice")  # the attempt has its run_end now
        cases[name] = [e for e in read_events(run_dir / EVENTS) if e["kind"] == "run_end"]
    assert [(e["step"], e["status"], e["reason"]) for e in cases["went-on"]] == [(12, "failed", "killed by SIGKILL")]
    assert [e["step"] for e in cases["died-at-once"]] == [8]  # not the superseded 15


def test_a_fifo_where_a_run_keeps_a_file_is_refused_not_waited_on(tmp_path):
    """A FIFO in place of tokenizer.json or preset.toml would block `tuilm sample`, `runs list` and the
    exports forever: each is refused or read as missing."""
    from tuiLM.errors import UserError
    from tuiLM.export import preset_hparams
    from tuiLM.runs import read_preset, read_preset_text
    from tuiLM.train.tokenizers import load_tokenizer

    os.mkfifo(tmp_path / "tokenizer.json")
    os.mkfifo(tmp_path / "preset.toml")
    with pytest.raises(UserError, match="not a regular file"):
        load_tokenizer(tmp_path)
    assert read_preset_text(tmp_path) == "" and read_preset(tmp_path) == {} and preset_hparams(tmp_path) == {}

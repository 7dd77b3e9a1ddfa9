"""The run directory and event contract: incremental reading, torn lines, run names, run states."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tuiLM.events import EventWriter, validate_event
from tuiLM.reader import EventTail, RunReader, read_events, summarize
from tuiLM.runs import EVENTS, PIDFILE, PRESET, RunError, check_run_name, find_run, list_runs, new_run_dir
from tuiLM.ownership import acquire_run_lock


def test_writer_and_tail_roundtrip(tmp_path):
    path = tmp_path / EVENTS
    tail = EventTail(path)
    assert tail.poll() == []  # no file yet
    with EventWriter(path) as w:
        w.write("log", level="info", message="hello")
        assert [e["message"] for e in tail.poll()] == ["hello"]
        assert tail.poll() == []  # nothing new: nothing returned
        w.write("train", step=1, tokens=64, loss=float("nan"), lr=1e-3, grad_norm=float("inf"), tokens_per_s=1.0,
                dt_ms=2.0)
    (ev,) = tail.poll()
    assert ev["loss"] == "nan" and ev["grad_norm"] == "inf"  # JSON has no NaN: written as strings
    assert validate_event(ev) == []


def test_tail_reads_incrementally_not_from_the_start(tmp_path):
    path = tmp_path / EVENTS
    path.write_text("".join(json.dumps({"v": 1, "kind": "log", "time": 0, "level": "i", "message": str(i)}) + "\n"
                            for i in range(100)))
    tail = EventTail(path)
    assert len(tail.poll()) == 100
    offset = tail.offset
    with open(path, "a") as fh:
        fh.write(json.dumps({"v": 1, "kind": "log", "time": 0, "level": "i", "message": "new"}) + "\n")
    assert [e["message"] for e in tail.poll()] == ["new"]
    assert tail.offset > offset


def test_torn_last_line_is_held_back_until_complete(tmp_path):
    path = tmp_path / EVENTS
    line = json.dumps({"v": 1, "kind": "log", "time": 0, "level": "i", "message": "whole"}) + "\n"
    path.write_text(line + line[:20])
    tail = EventTail(path)
    assert len(tail.poll()) == 1
    assert read_events(path) == read_events(path)[:1]  # a one-shot reader ignores the torn tail
    with open(path, "a") as fh:
        fh.write(line[20:])
    assert [e["message"] for e in tail.poll()] == ["whole"]


def test_garbage_lines_are_skipped_and_counted(tmp_path):
    path = tmp_path / EVENTS
    path.write_text('{"v":1,"kind":"log","time":0,"level":"i","message":"a"}\nnot json\n[1,2]\n')
    tail = EventTail(path)
    assert len(tail.poll()) == 1 and tail.skipped == 2


def test_every_reader_skips_a_bare_nan_line_alike(tmp_path):
    """A line with a bare NaN (not JSON; the trainer writes "nan") counted for the tail and read_events
    (stdlib json takes it) but was skipped by the dashboard's reader: the two disagreed on the run."""
    (tmp_path / EVENTS).write_text('{"v":1,"kind":"train","time":0,"step":1,"tokens":8,"loss":NaN}\n'
                                   '{"v":1,"kind":"train","time":0,"step":2,"tokens":16,"loss":"nan"}\n')
    tail = EventTail(tmp_path / EVENTS)
    assert [e["step"] for e in tail.poll()] == [2] and tail.skipped == 1
    assert [e["step"] for e in read_events(tmp_path / EVENTS)] == [2]
    reader = RunReader(tmp_path)
    reader.poll()
    assert list(reader.tables["train"].col("step")) == [2] and reader.skipped == 1


def test_check_run_name_refuses_a_trailing_newline():
    with pytest.raises(RunError):
        check_run_name("abc\n")


def test_writer_reopened_after_a_crash_drops_the_torn_fragment(tmp_path):
    path = tmp_path / EVENTS
    with EventWriter(path) as w:
        w.write("log", level="info", message="before")
    with open(path, "a") as fh:
        fh.write('{"v":1,"kind":"train","st')  # the writer died mid-line
    with EventWriter(path) as w:
        w.write("log", level="info", message="after")
    events = read_events(path)
    assert [e["message"] for e in events] == ["before", "after"]  # nothing lost, nothing glued together


def test_writer_drops_a_fragment_of_any_length(tmp_path):
    only = tmp_path / "only.jsonl"  # a fragment and nothing before it
    only.write_bytes(b'{"v":1,"kind":"tr')
    long = tmp_path / "long.jsonl"  # a fragment longer than any read buffer
    long.write_bytes(b'{"v":1,"kind":"log","time":0,"level":"i","message":"a"}\n' + b"x" * (3 << 20))
    for path, left in ((only, 0), (long, 1)):
        with EventWriter(path) as w:
            w.write("log", level="info", message="after")
        assert [e.get("message") for e in read_events(path)] == ["a"] * left + ["after"]


def test_validate_event_catches_missing_fields():
    assert validate_event({"v": 1, "kind": "eval", "time": 1.0, "step": 1, "tokens": 1, "val_loss": 1.0,
                           "val_bpb": 1.0}) == []
    assert validate_event({"v": 1, "kind": "eval", "time": 1.0, "step": 1})
    assert validate_event({"v": 1, "kind": "nope", "time": 1.0})
    assert validate_event({"v": 1, "kind": "run_end", "time": 1.0, "status": "exploded", "step": 1, "reason": ""})


@pytest.mark.parametrize("name", ["../evil", "a/b", "a\\b", "..", "", ".hidden", "x" * 101, "a..b", "sp ace"])
def test_bad_run_names_are_rejected(name):
    with pytest.raises(RunError):
        check_run_name(name)


def test_run_dirs_stay_under_runs(runs_dir):
    for name in ("ok-name", "ok.name_2"):
        d = new_run_dir(name)
        assert d.parent == runs_dir and d.name.startswith(name) and (d / "checkpoints").is_dir()
    d2 = new_run_dir("ok-name")
    assert d2 != d and d2.parent == runs_dir
    with pytest.raises(RunError):
        new_run_dir("../../etc")
    with pytest.raises(RunError):
        find_run("../outside")


def test_runs_are_listed_newest_made_first_whatever_touched_their_folders_since(runs_dir):
    """A reader's cache, a stop request or a lock file moves a run folder's time; the list's order is
    when the run was made (its preset.toml), as its age column says."""
    import os

    old, new = new_run_dir("old"), new_run_dir("new")
    for run, t in ((old, 1_000_000), (new, 2_000_000)):
        (run / PRESET).write_text("")
        os.utime(run / PRESET, (t, t))
    (old / "stop_request").write_text("stopped\n")  # the old run's folder is now the newer one
    os.utime(old, (3_000_000, 3_000_000))
    assert list_runs() == [new, old]
    (new / PRESET).unlink()  # no preset (a hand-made folder with events only): its events' time
    (new / EVENTS).write_text("")
    os.utime(new / EVENTS, (500_000, 500_000))
    assert list_runs() == [old, new]


def test_find_run_by_id_prefix_and_path(runs_dir):
    a = new_run_dir("alpha")
    (a / PRESET).write_text("")
    b = new_run_dir("beta")
    (b / PRESET).write_text("")
    assert find_run(a.name) == a and find_run("bet") == b and find_run(str(a)) == a
    with pytest.raises(RunError, match="no run"):
        find_run("gamma")
    assert set(list_runs()) == {a, b}
    (runs_dir / "studies").mkdir()  # a folder under runs/ that is not a run: neither found nor listed
    (runs_dir / "alpha-notes").mkdir()
    with pytest.raises(RunError, match="no run 'studies'"):
        find_run("studies")
    assert find_run("alph") == a and set(list_runs()) == {a, b}
    with pytest.raises(RunError, match="is not a run directory"):
        find_run(str(runs_dir))  # a path to a folder: said so, not 'bad run name'
    with pytest.raises(RunError, match="does not exist"):
        find_run(str(runs_dir / "nope"))
    for i in range(7):
        (new_run_dir("many") / PRESET).write_text("")
    with pytest.raises(RunError, match="and 2 more"):
        find_run("many")


def _events(path, *events):
    with EventWriter(path) as w:
        for kind, fields in events:
            w.write(kind, **fields)


START = ("run_start", {"run_id": "r", "versions": {}, "device": "cpu", "params": 10, "world_size": 1, "max_steps": 10,
                       "tokens_per_step": 64, "corpus": {}, "pid": os.getpid(), "step": 0, "arch": "gpt"})


def test_summarize_states_and_best_metric(runs_dir):
    d = new_run_dir("s")
    _events(d / EVENTS, START,
            ("train", {"step": 5, "tokens": 320, "loss": 2.0, "lr": 1e-3, "grad_norm": 1.0, "tokens_per_s": 1.0, "dt_ms": 1.0}),
            ("eval", {"step": 5, "tokens": 320, "val_loss": 2.0, "val_bpb": 2.9}),
            ("eval", {"step": 10, "tokens": 640, "val_loss": 1.0, "val_bpb": 1.4}),
            ("eval", {"step": 10, "tokens": 640, "val_loss": 1.5, "val_bpb": 2.1}))
    fd = acquire_run_lock(d)  # a trainer owns the run while its lock is held
    try:
        s = summarize(d)
        assert (s.state, s.step, s.best_val_bpb, s.arch) == ("running", 5, 1.4, "gpt")
    finally:
        os.close(fd)
    assert summarize(d).state == "dead"
    _events(d / EVENTS, ("run_end", {"status": "completed", "step": 10, "reason": ""}))
    assert summarize(d).state == "completed"


def test_summarize_detects_a_dead_trainer(runs_dir):
    d = new_run_dir("dead")
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(proc.stdout)
    start = (START[0], {**START[1], "pid": dead_pid})
    _events(d / EVENTS, start)
    (d / PIDFILE).write_text(str(dead_pid))
    assert summarize(d).state == "dead"


def test_summarize_is_incremental(runs_dir):
    d = new_run_dir("inc")
    _events(d / EVENTS, START)
    reader = RunReader(d)
    reader.poll()
    offset = reader.tail.offset
    _events(d / EVENTS, ("run_end", {"status": "stopped", "step": 3, "reason": "signal"}))
    assert reader.poll() and reader.tail.offset > offset
    s = reader.summary()
    assert (s.state, s.step, s.reason) == ("stopped", 3, "signal")


def test_effective_events_replace_the_steps_after_a_resume():
    from tuiLM.reader import effective_events

    def tr(step, loss):
        return {"kind": "train", "step": step, "loss": loss}
    evs = [{"kind": "run_start", "step": 0}, tr(1, 5.0), tr(2, 4.0), {"kind": "checkpoint", "step": 2},
           tr(3, 3.0), tr(4, 2.5),  # died here, after the checkpoint at 2
           {"kind": "run_start", "step": 2}, tr(3, 3.0), tr(4, 2.5), tr(5, 2.0),
           {"kind": "run_end", "status": "completed", "step": 5}]
    eff = effective_events(evs)
    assert [e["step"] for e in eff if e["kind"] == "train"] == [1, 2, 3, 4, 5]
    assert [e["kind"] for e in eff].count("run_start") == 2 and eff[-1]["kind"] == "run_end"


def test_summarize_applies_the_resume_rule(runs_dir):
    """A dead attempt's evals after the checkpoint it resumed from do not count toward the best."""
    d = new_run_dir("resumed")
    ev = lambda step, bpb: ("eval", {"step": step, "tokens": step, "val_loss": bpb, "val_bpb": bpb})  # noqa: E731
    _events(d / EVENTS, START, ev(4, 3.0), ev(8, 2.5),  # died after step 8, last checkpoint at 4
            ("run_start", {**START[1], "step": 4}), ev(8, 2.8),
            ("run_end", {"status": "completed", "step": 8, "reason": ""}))
    s = summarize(d)
    assert (s.state, s.best_val_bpb, s.step) == ("completed", 2.8, 8)


def test_float_or_none_reads_number_fields_and_refuses_the_rest():
    from tuiLM.events import float_or_none

    assert float_or_none(3) == 3.0 and float_or_none("inf") == float("inf") and float_or_none(2.5) == 2.5
    assert [float_or_none(v) for v in (None, "7", True, "nan", float("nan"), [1])] == [None] * 6


def test_a_tail_holding_a_torn_fragment_reads_on_after_a_writer_cuts_it(tmp_path):
    """`tuilm resume` watches from the end of the file while the resumed trainer's EventWriter cuts a
    torn fragment and appends: the tail must read the new lines whole, not from past the cut."""
    path = tmp_path / EVENTS
    with EventWriter(path) as w:
        w.write("log", level="info", message="before")
    with open(path, "a") as fh:
        fh.write('{"v":1,"kind":"train","step":12,"tok')  # the old trainer died mid-line
    tail = EventTail(path)
    while tail.poll_bytes():  # as the headless resume skips what is already there
        pass
    with EventWriter(path) as w:  # the new trainer: cuts the fragment, then writes (before the next poll)
        w.write("log", level="info", message="after the resume with a long enough message")
        w.write("log", level="info", message="and one more")
    assert [e["message"] for e in tail.poll()] == ["after the resume with a long enough message", "and one more"]
    assert tail.skipped == 0


def test_a_runs_folder_that_is_a_file_is_named(tmp_path, monkeypatch):
    (tmp_path / "afile").write_text("")
    monkeypatch.setenv("TUILM_RUNS_DIR", str(tmp_path / "afile"))
    with pytest.raises(RunError, match=r"afile \(TUILM_RUNS_DIR\) is a file, not a folder"):
        new_run_dir("x")


def test_a_run_folder_made_by_hand_with_a_non_ascii_name_is_found_as_listed(runs_dir):
    odd = runs_dir / "tq-ü"
    odd.mkdir(parents=True)
    (odd / PRESET).write_text("")
    assert odd in list_runs() and find_run("tq-ü") == odd  # `runs list` shows it, so `runs show` finds it
    with pytest.raises(RunError):
        find_run("..")


def test_a_run_stopped_between_two_train_events_reports_its_end_step_and_tokens(tmp_path):
    """Stopped at step 103 with train events every 10 steps: `runs show` said step 103 but tokens 204,800
    (step 100's). The run_end's tokens count, as its step does."""
    run = tmp_path / "r"
    run.mkdir()
    with EventWriter(run / EVENTS) as w:
        w.write("run_start", step=0, max_steps=400)
        w.write("train", step=100, tokens=204800, loss=2.0)
        w.write("run_end", status="stopped", step=103, tokens=210944, reason="tuilm stop")
    s = summarize(run)
    assert (s.step, s.tokens) == (103, 210944)


def test_flops_read_in_one_unit_below_a_teraflop():
    from tuiLM.units import fmt_flops

    assert [fmt_flops(x) for x in (1.52e10, 1.1e11, 3.2e12)] == ["15.2 GFLOP/s", "110 GFLOP/s", "3.2 TFLOP/s"]
    assert [fmt_flops(x) for x in (9.994e11, 9.996e11)] == ["999 GFLOP/s", "1 TFLOP/s"]  # (not "1e+03 GFLOP/s")


def test_a_standard_error_too_small_to_show_is_not_written_as_zero():
    """An SE of 3e-5 printed "±.0000", which says the seeds agreed exactly."""
    from tuiLM.groups import group_value
    from tuiLM.units import fmt_se

    assert [fmt_se(x) for x in (0.0411, 3e-5, 0.0)] == ["0.0411", "<0.0001", "0.0000"]
    assert fmt_se(0.0411, tight=True) == ".0411" and fmt_se(3e-5, tight=True) == "<.0001"
    assert group_value([3.21130, 3.21136, 3.21133]).text() == "3.2113±<.0001"

"""A run's summary (reader.RunReader.summary, what the runs list and `tuilm runs` show) follows the
resume rule: it equals the summary of the run's effective events (reader.effective_events) written
out as a run never resumed; read incrementally, a few lines at a time, it equals a fresh read.
"""

from __future__ import annotations

import dataclasses
import json
import tempfile
from pathlib import Path

import pytest

from tuiLM.events import EventWriter
from tuiLM import lineparse
from tuiLM.reader import RunReader, effective_events, read_events, summarize

from .fixtures.fixture_runs import write_run


def fields(s) -> dict:
    d = dataclasses.asdict(s)
    d.pop("path")
    return d


class FastSummary:  # the runs list's use: one reader per run, polled again at every refresh
    def __init__(self, run: Path) -> None:
        self.reader = RunReader(run)

    def update(self):
        self.reader.poll()
        return self.reader.summary()


def reference(run: Path, tmp: Path) -> dict:
    """runs.summarize over the effective events (a copy of the run with only those written)."""
    ref = Path(tempfile.mkdtemp(dir=tmp, prefix="ref-"))
    with open(ref / "events.jsonl", "w") as fh:
        for ev in effective_events(read_events(run / "events.jsonl")):
            fh.write(json.dumps(ev, separators=(",", ":")) + "\n")
    return fields(summarize(ref))


def resumed_run(root: Path) -> Path:
    """Attempt 1 trains to 1500 and dies (its run_end: failed); attempt 2 resumes at 1000, goes to 1300."""
    run = root / "resumed"
    run.mkdir()
    with EventWriter(run / "events.jsonl") as w:
        w.write("run_start", run_id="resumed", versions={}, device="cpu", params=1, world_size=1, max_steps=2000,
                tokens_per_step=10, corpus={"train": "x", "eval": "y"}, pid=999_999, step=0, arch="gpt")
        for s in range(1, 1501):
            w.write("train", step=s, tokens=10 * s, loss=5.0 - s / 1000, lr=1e-3, grad_norm=1.0,
                    tokens_per_s=1.0, dt_ms=1.0)
            if s % 250 == 0:  # attempt 1's eval at 1250 and 1500 are the best, and superseded
                w.write("eval", step=s, tokens=10 * s, val_loss=3.0 - s / 1000, val_bpb=4.0 - s / 1000)
            if s % 100 == 0:
                w.write("log", level="info", message="train step")
        w.write("run_end", status="failed", step=1500, reason="killed", artifact_bytes=123)
        w.write("run_start", run_id="resumed", versions={}, device="cpu", params=1, world_size=1, max_steps=2000,
                tokens_per_step=10, corpus={}, pid=999_999, step=1000, arch="gpt")
        for s in range(1001, 1301):
            w.write("train", step=s, tokens=10 * s, loss=6.0 - s / 1000, lr=1e-3, grad_norm=1.0,
                    tokens_per_s=1.0, dt_ms=1.0)
            if s % 250 == 0:
                w.write("eval", step=s, tokens=10 * s, val_loss=3.5 - s / 1000, val_bpb=4.5 - s / 1000)
        w.write("run_end", status="completed", step=1300, reason="done")
    return run


def test_incremental_summary_matches_a_fresh_read_on_fixture_runs(tmp_path):
    for i, kind in enumerate(("gpt", "mhc", "mhc-frozen", "failed")):
        run = write_run(tmp_path, f"{kind}-{i}", kind, seed=i)
        fast = fields(FastSummary(run).update())
        assert fast == fields(summarize(run)), kind
        assert fast["best_val_bpb"] is not None and fast["step"] > 0


def test_the_summary_follows_a_resume_like_effective_events(tmp_path):
    run = resumed_run(tmp_path)
    fast = fields(FastSummary(run).update())
    assert fast == reference(run, tmp_path)
    assert fast["state"] == "completed" and fast["step"] == 1300 and fast["tokens"] == 13_000
    assert fast["best_val_bpb"] == pytest.approx(4.0 - 1.0)  # attempt 1 at 1000; its 1250/1500 evals do not count
    assert fast["artifact_bytes"] is None  # the dead attempt's run_end is superseded
    # runs.summarize over the raw file applies the same rule
    raw = fields(summarize(run))
    assert raw["best_val_bpb"] == pytest.approx(4.0 - 1.0) and raw == fast


def test_the_summary_mid_resume_and_incremental_reads(tmp_path, monkeypatch):
    """Read in small chunks, a few lines at a time, stopping right after the second run_start."""
    from tuiLM import reader

    monkeypatch.setattr(reader, "CHUNK", 4096)
    assert lineparse.CHUNK > 4096
    full = resumed_run(tmp_path)
    lines = (full / "events.jsonl").read_bytes().splitlines(keepends=True)
    cut = next(i for i, line in enumerate(lines) if b'"step":1000' in line and b'"run_start"' in line)
    run = tmp_path / "partial"
    run.mkdir()
    fast = FastSummary(run)
    with open(run / "events.jsonl", "wb") as fh:
        for n, line in enumerate(lines[:cut + 40], 1):
            fh.write(line)
            fh.flush()
            if n % 997 == 0 or n == cut + 1:
                got = fields(fast.update())
                assert got == reference(run, tmp_path), n
                if n == cut + 1:  # resumed at 1000, nothing trained yet: back to the step-1000 event
                    assert got["state"] == "dead" and got["step"] == 1000 and got["artifact_bytes"] is None
    assert fields(fast.update()) == reference(run, tmp_path)


def test_the_summary_waits_for_a_torn_last_line(tmp_path):
    run = write_run(tmp_path, "torn", "gpt", steps=150, end="none")
    ev = run / "events.jsonl"
    complete = fields(summarize(run))
    fast = FastSummary(run)
    with open(ev, "ab") as fh:
        fh.write(b'{"v":1,"kind":"eval","time":1.0,"step":151,"tokens":1,"val_loss":0.1,"val_bpb":0.1')
    assert fields(fast.update()) == complete == fields(summarize(run))
    with open(ev, "ab") as fh:
        fh.write(b"}\n")
    got = fields(fast.update())
    assert got["best_val_bpb"] == 0.1 and got == fields(summarize(run))


def test_the_summary_of_a_missing_or_empty_file(tmp_path):
    run = tmp_path / "new"
    run.mkdir()
    assert fields(FastSummary(run).update()) == fields(summarize(run))
    (run / "events.jsonl").write_text("")
    assert fields(FastSummary(run).update()) == fields(summarize(run))


def test_runs_list_steps_and_time_fit_their_columns():
    from tuiLM.tui.screens.runrows import STEPS_W, TIME_W, duration_text, steps_text

    # the most exact text that fits with a cell to spare before the loss column; a step is rounded
    # down (999,999 of 1M is not '1M/1M')
    assert steps_text(400, 400) == "400/400" and steps_text(7, 0) == "7" and steps_text(1234, 5000) == "1234/5K"
    assert steps_text(5000, 10000) == "5000/10K" and steps_text(12345, 20000) == "12K/20K"
    assert steps_text(999_999, 1_000_000) == "999K/1M" and steps_text(1_000_000, 1_000_000) == "1M/1M"
    assert steps_text(1250, 1500) == "1250 83%" and steps_text(123_456, 1_234_567) == "123K 9%"
    assert duration_text(3599) == "59:59" and duration_text(9 * 3600 + 3599) == "9:59:59"
    assert duration_text(100_000) == "27h46m" and duration_text(3_600_000) == "41d16h"
    for n in (0, 1, 999, 1000, 9999, 10_000, 99_999, 123_456, 999_999, 10**6, 12_345_678, 10**9 - 1, 10**12):
        for m in (0, n, n + 1, 10 * n + 7, 10**9):
            assert len(steps_text(n, m)) < STEPS_W, (n, m, steps_text(n, m))
    for sec in (0, 59, 3600, 35_999, 36_000, 359_999, 3_599_999, 10**8):
        assert len(duration_text(sec)) <= TIME_W, (sec, duration_text(sec))


def test_a_runs_time_is_its_training_time_not_the_wall_time_from_start_to_resume(tmp_path):
    """Stopped for a day and resumed: the runs list said 25 hours, the dashboard the training time."""
    import json

    from tuiLM.reader import summarize as read_summary

    run = tmp_path / "later"
    run.mkdir()
    start = {"v": 1, "kind": "run_start", "run_id": "later", "versions": {}, "device": "cpu", "params": 1,
             "world_size": 1, "max_steps": 10, "tokens_per_step": 1, "corpus": {}, "pid": 1, "step": 0}
    train = {"v": 1, "kind": "train", "tokens": 1, "loss": 1.0, "lr": 1e-3, "grad_norm": 1.0, "tokens_per_s": 1.0,
             "dt_ms": 1.0}
    lines = [{**start, "time": 1000.0}, {**train, "step": 1, "time": 1010.0},
             {"v": 1, "kind": "run_end", "status": "stopped", "step": 1, "reason": "", "time": 1020.0,
              "elapsed_s": 20.0},
             {**start, "step": 1, "time": 91000.0, "elapsed_before_s": 20.0}, {**train, "step": 2, "time": 91030.0}]
    (run / "events.jsonl").write_text("".join(json.dumps(e) + "\n" for e in lines))
    assert read_summary(run).elapsed_s == pytest.approx(50.0)  # 20 s before the stop, 30 s since the resume
    lines.append({"v": 1, "kind": "run_end", "status": "completed", "step": 2, "reason": "", "time": 91040.0,
                  "elapsed_s": 60.0})
    (run / "events.jsonl").write_text("".join(json.dumps(e) + "\n" for e in lines))
    assert read_summary(run).elapsed_s == pytest.approx(60.0)  # run_end's own figure

"""The trainer as a process: end to end, exact resume after SIGKILL, SIGTERM, NaN, bad presets, sampling."""

from __future__ import annotations

import io
import json
import os
import signal
import time
from pathlib import Path

import pytest
import torch
from rich.console import Console

from tuiLM.config.load import load
from tuiLM.config.write import atomic_write_text
from tuiLM.events import END_STATUSES, validate_event
from tuiLM.reader import read_events
from tuiLM.headless import watch_run
from tuiLM.launch import create_run, spawn_trainer, stop_trainer
from tuiLM.runs import CHECKPOINTS, EVENTS, PRESET, STDOUT
from tuiLM.train.checkpoint import CheckpointError, list_checkpoints, load_checkpoint

from .conftest import PRESETS, TINY_GPT, make_preset

pytestmark = pytest.mark.slow


def console() -> Console:
    return Console(file=io.StringIO(), width=120, force_terminal=False)


def events(run_dir: Path) -> list[dict]:
    return read_events(run_dir / EVENTS)


def kinds(run_dir: Path, kind: str) -> list[dict]:
    return [e for e in events(run_dir) if e["kind"] == kind]


def run_trainer(run_dir: Path, resume: bool = False, env: dict | None = None, timeout: float = 240) -> int:
    old = dict(os.environ)
    os.environ.update(env or {})
    try:
        proc = spawn_trainer(run_dir, resume=resume)
    finally:
        os.environ.clear()
        os.environ.update(old)
    return proc.wait(timeout=timeout)


def fail_text(run_dir: Path) -> str:
    return (run_dir / STDOUT).read_text(errors="replace")[-3000:]


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    """presets/quickstart.toml made tiny, run headless through the launcher's progress loop."""
    preset, problems = load(PRESETS / "quickstart.toml", [
        "model.d_model=32", "model.n_layers=1", "data.seq_len=32", "data.max_bytes=100000", "train.max_steps=12",
        "train.device_batch_size=4", "train.log_every=3", "eval.every=6", "eval.batches=2", "sample.every=6",
        "sample.max_new_tokens=8", "checkpoint.every=6", "diag.every=4", "system.device=cpu", "schedule.warmup_steps=2", "system.threads=1"])
    assert not [p for p in problems if p.is_error]
    run_dir = create_run(preset, name="quick", root=tmp_path_factory.mktemp("runs"))
    out = console()
    code = watch_run(run_dir, spawn_trainer(run_dir), out)
    return run_dir, code, out.file.getvalue()


def test_quickstart_trains_end_to_end_and_every_event_validates(quick_run):
    run_dir, code, text = quick_run
    assert code == 0, fail_text(run_dir)
    evs = events(run_dir)
    for ev in evs:
        assert validate_event(ev) == [], ev
    seen = [e["kind"] for e in evs]
    assert seen[0] == "run_start" and seen[-1] == "run_end"
    for kind in ("train", "eval", "sample", "checkpoint"):
        assert kind in seen
    start = evs[0]
    assert start["arch"] == "gpt" and start["preset_name"] == "quickstart" and start["vocab_size"] == 256
    assert start["torch"] == torch.__version__ and start["dtype"] == "fp32" and start["device"] == "cpu"
    assert len(start["corpus"]["fingerprint"]) == 16 and start["corpus"]["source"] == "builtin"
    assert start["estimate"]["params"] == start["params"]  # the estimator's count rides along, and agrees
    assert [e["step"] for e in kinds(run_dir, "train")] == [3, 6, 9, 12]
    for e in kinds(run_dir, "train"):
        assert {"mem_gib", "grad_norm", "lr", "dt_ms", "tokens_per_s"} <= set(e) and e["tokens"] == e["step"] * 128
    assert [e["step"] for e in kinds(run_dir, "eval")] == [6, 12]
    assert [e["step"] for e in kinds(run_dir, "sample")] == [6, 12]
    end = evs[-1]
    assert end["status"] == "completed" and end["step"] == 12
    assert end["best_val_bpb"] == min(e["val_bpb"] for e in kinds(run_dir, "eval"))
    assert end["artifact_bytes"] == end["model_bytes"] + end["code_bytes"] > 0 and end["elapsed_s"] > 0
    assert [p.name for p in list_checkpoints(run_dir / CHECKPOINTS)] == ["step-0000006.pt", "step-0000012.pt"]
    assert "completed at step 12/12" in text and "best val_bpb" in text and "artifact" in text
    assert "step 6: val_loss" in text
    # not a terminal: plain progress lines (the live bar would print nothing until the end)
    progress = [line for line in text.splitlines() if line.startswith("training step ")]
    assert progress and text.index(progress[0]) < text.index("completed at step")
    assert "mean " in text and " tok/s" in text and start["elapsed_before_s"] == 0


def test_sample_and_reports_read_the_finished_run(quick_run):
    from tuiLM import report
    from tuiLM.train.sampling import sample_command, sample_text

    run_dir, code, _ = quick_run
    prompt, text, step = sample_text(run_dir, prompt="def f", max_new_tokens=12, seed=1)
    assert step == 12 and len(text.encode("utf-8", "surrogatepass")) > 0
    assert (prompt, text) == sample_text(run_dir, prompt="def f", max_new_tokens=12, seed=1)[:2]  # seeded
    out = console()
    assert sample_command(run_dir, prompt="x", max_new_tokens=4, temperature=None, top_k=None, seed=None,
                          console=out) == 0
    assert "@ step 12" in out.file.getvalue() and out.file.getvalue().endswith("\n")
    out = console()
    report.print_run(run_dir, out)
    shown = out.file.getvalue()
    assert "completed" in shown and "model.d_model" in shown and "artifact" in shown
    out = console()
    report.print_runs_list(out, root=run_dir.parent)
    assert run_dir.name[:20] in out.file.getvalue()


def test_exact_resume_after_sigkill_matches_an_uninterrupted_run(tmp_path):
    preset = make_preset({**TINY_GPT, "model.dropout": 0.1, "optim.name": "muon", "train.max_steps": 12,
                          "checkpoint.every": 4, "eval.every": 4, "diag.every": 3, "sample.every": 6,
                          "sample.max_new_tokens": 4, "train.total_batch_size": 256, "data.max_bytes": 60_000})
    a = create_run(preset, name="straight", root=tmp_path)
    b = create_run(preset, name="killed", root=tmp_path)
    assert run_trainer(a) == 0, fail_text(a)
    assert run_trainer(b, env={"TUILM_FAULT_KILL_AT_STEP": "10"}) == -signal.SIGKILL
    assert not kinds(b, "run_end") and max(e["step"] for e in kinds(b, "train")) == 10
    assert run_trainer(b, resume=True) == 0, fail_text(b)
    starts = kinds(b, "run_start")
    assert [s["step"] for s in starts] == [0, 8] and starts[1]["resumed"] is True
    # the resumed attempt knows the training time before it, so elapsed counts every attempt
    assert starts[0]["elapsed_before_s"] == 0 and starts[1]["elapsed_before_s"] > 0
    assert kinds(b, "run_end")[-1]["elapsed_s"] > starts[1]["elapsed_before_s"]
    wa = load_checkpoint(a / CHECKPOINTS / "step-0000012.pt")
    wb = load_checkpoint(b / CHECKPOINTS / "step-0000012.pt")
    assert wa["model"].keys() == wb["model"].keys()
    for k in wa["model"]:
        assert torch.equal(wa["model"][k], wb["model"][k]), k
    loss_a = {e["step"]: e["loss"] for e in kinds(a, "train")}
    resumed = [e for e in events(b)[events(b).index(starts[1]):] if e["kind"] == "train"]
    assert [e["step"] for e in resumed] == [9, 10, 11, 12]
    assert all(e["loss"] == loss_a[e["step"]] for e in resumed)
    # the attempt that died logged steps 9 and 10 before the kill: the same values again
    first = [e for e in events(b)[: events(b).index(starts[1])] if e["kind"] == "train"]
    assert all(e["loss"] == loss_a[e["step"]] for e in first)
    assert kinds(a, "eval")[-1]["val_loss"] == kinds(b, "eval")[-1]["val_loss"]


def test_sigterm_checkpoints_and_ends_stopped(tmp_path):
    run_dir = create_run(make_preset({**TINY_GPT, "train.max_steps": 100_000, "checkpoint.every": 0,
                                      "eval.every": 0}), name="term", root=tmp_path)
    proc = spawn_trainer(run_dir)
    deadline = time.monotonic() + 120
    while not any(e["step"] >= 3 for e in kinds(run_dir, "train")):
        assert proc.poll() is None and time.monotonic() < deadline, fail_text(run_dir)
        time.sleep(0.1)
    assert stop_trainer(run_dir) is True
    assert proc.wait(timeout=120) == 0, fail_text(run_dir)
    end = kinds(run_dir, "run_end")[-1]
    assert end["status"] == "stopped" and "SIGTERM" in end["reason"] and validate_event(end) == []
    path = list_checkpoints(run_dir / CHECKPOINTS)[-1]
    state = load_checkpoint(path)
    assert state["step"] == end["step"] >= 3 and kinds(run_dir, "checkpoint")[-1]["step"] == end["step"]
    assert stop_trainer(run_dir) is False  # nothing left to stop


def test_stop_request_pruned_ends_pruned_and_resumes(tmp_path):
    """A study prunes a trial: checkpoint, run_end(pruned) with the reason; the run stays resumable and
    a later attempt is not ended 'pruned' by the old request."""
    run_dir = create_run(make_preset({**TINY_GPT, "train.max_steps": 100_000, "checkpoint.every": 0,
                                      "eval.every": 0}), name="prune", root=tmp_path)
    (run_dir / "study.json").write_text(json.dumps({"study": "s1", "trial": 3, "seed_index": 1,
                                                    "params": {"optim.lr": 0.001}}))
    proc = spawn_trainer(run_dir)
    deadline = time.monotonic() + 120
    while not any(e["step"] >= 2 for e in kinds(run_dir, "train")):
        assert proc.poll() is None and time.monotonic() < deadline, fail_text(run_dir)
        time.sleep(0.1)
    assert stop_trainer(run_dir, status="pruned", reason="median pruner at step 2") is True
    assert proc.wait(timeout=120) == 0, fail_text(run_dir)
    end = kinds(run_dir, "run_end")[-1]
    assert (end["status"], end["reason"]) == ("pruned", "median pruner at step 2") and validate_event(end) == []
    assert kinds(run_dir, "checkpoint")[-1]["step"] == end["step"]
    start = kinds(run_dir, "run_start")[-1]
    assert (start["study"], start["trial"], start["seed_index"], start["trial_params"]) == ("s1", 3, 1, {"optim.lr": 0.001})
    proc = spawn_trainer(run_dir, resume=True)
    while len(kinds(run_dir, "run_start")) < 2 or not kinds(run_dir, "train")[-1]["step"] > end["step"]:
        assert proc.poll() is None and time.monotonic() < deadline, fail_text(run_dir)
        time.sleep(0.1)
    assert stop_trainer(run_dir) is True and proc.wait(timeout=120) == 0
    assert kinds(run_dir, "run_end")[-1]["status"] == "stopped"


def test_nan_loss_fails_and_keeps_the_last_good_checkpoint(tmp_path):
    run_dir = create_run(make_preset({**TINY_GPT, "train.max_steps": 10, "checkpoint.every": 4}), name="nan",
                         root=tmp_path)
    assert run_trainer(run_dir, env={"TUILM_FAULT_NAN_AT_STEP": "6"}) == 1
    end = kinds(run_dir, "run_end")[-1]
    assert end["status"] == "failed" and "non-finite loss" in end["reason"] and "step 6" in end["reason"]
    assert "its last good checkpoint, step-0000004.pt, is kept" in end["reason"], end["reason"]
    assert end["step"] == 5 and validate_event(end) == []
    assert [p.name for p in list_checkpoints(run_dir / CHECKPOINTS)] == ["step-0000004.pt"]
    assert load_checkpoint(run_dir / CHECKPOINTS / "step-0000004.pt")["step"] == 4
    # before the first checkpoint it said "the last good checkpoint is kept" all the same
    early = create_run(make_preset({**TINY_GPT, "train.max_steps": 10, "checkpoint.every": 4}), name="nan0",
                       root=tmp_path)
    assert run_trainer(early, env={"TUILM_FAULT_NAN_AT_STEP": "3"}) == 1
    reason = kinds(early, "run_end")[-1]["reason"]
    assert "while training step 3; no checkpoint was written yet (a resume starts again at step 0)" in reason, reason
    # a truncated checkpoint is refused by name on resume
    ckpt = run_dir / CHECKPOINTS / "step-0000004.pt"
    ckpt.write_bytes(ckpt.read_bytes()[:1000])
    with pytest.raises(CheckpointError):
        load_checkpoint(ckpt)
    assert run_trainer(run_dir, resume=True) == 1
    end = kinds(run_dir, "run_end")[-1]
    assert end["status"] == "failed" and "step-0000004.pt" in end["reason"]


def test_invalid_preset_ends_failed_with_the_message(tmp_path):
    run_dir = create_run(make_preset(TINY_GPT), name="bad", root=tmp_path)
    text = (run_dir / PRESET).read_text().replace("d_model = 32", "d_model = 30")
    atomic_write_text(run_dir / PRESET, text)
    assert run_trainer(run_dir) == 1
    end = kinds(run_dir, "run_end")[-1]
    assert end["status"] == "failed" and "model.d_model" in end["reason"] and end["status"] in END_STATUSES
    assert all(validate_event(e) == [] for e in events(run_dir))


def test_start_run_headless_reports_failure_with_the_log_tail(tmp_path, monkeypatch):
    from tuiLM.headless import start_run

    monkeypatch.setenv("TUILM_RUNS_DIR", str(tmp_path))
    monkeypatch.setenv("TUILM_FAULT_NAN_AT_STEP", "2")
    out = Console(file=io.StringIO(), width=60, force_terminal=False)  # (narrower than the error line)
    code = start_run(make_preset({**TINY_GPT, "train.max_steps": 5}), name="headless", nproc=1, console=out)
    text = out.file.getvalue()
    assert code == 1 and "failed" in text and "non-finite loss" in text and "last lines of" in text
    # the log's lines as written: its error line whole, not cut again at the console's width
    (said,) = [line for line in text[text.index("last lines of"):].splitlines() if line.startswith("error: ")]
    assert said.endswith("(a resume starts again at step 0)") and len(said) > 60, said

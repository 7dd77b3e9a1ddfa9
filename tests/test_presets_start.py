"""Every shipped preset starts: one optimizer step on the CPU through the real trainer entry point.

What is kept as shipped: the architecture and its options, the data source and tokenizer (the
built-in corpus with its tokenizer, read as the preset says: audit-baseline reads the whole standard
library with the char tokenizer). What is shrunk, by --set-style overrides: the batch geometry (one
short row: a step, not a benchmark), the evaluation, and, only for presets whose model does not fit
the test's memory budget (BUDGET on the CPU estimate), depth and then width. Shard presets get small
shards this test writes."""

from __future__ import annotations

import signal
import sys

import numpy as np
import pytest

from tuiLM.config.load import load
from tuiLM.config.presets import list_presets
from tuiLM.estimate import estimate
from tuiLM.reader import read_events
from tuiLM.launch import create_run
from tuiLM.runs import EVENTS

from .conftest import PRESETS

pytestmark = pytest.mark.slow

BUDGET = 1 << 30  # the CPU estimate a preset may need here as shipped (CI: 2 cores, a few GiB)
SHIPPED = sorted(p for p in PRESETS.glob("*.toml"))


def _write_shards(folder, vocab: int) -> tuple[str, str]:
    folder.mkdir(exist_ok=True)
    rng = np.random.default_rng(0)
    for name, n in (("train_000.bin", 20_000), ("val_000.bin", 5_000)):
        header = np.zeros(256, "<i4")
        header[:3] = (20240520, 1, n)
        with open(folder / name, "wb") as fh:
            fh.write(header.tobytes())
            fh.write(rng.integers(0, vocab, n, dtype=np.uint16).astype("<u2").tobytes())
    return str(folder / "train_*.bin"), str(folder / "val_*.bin")


def _overrides(preset, tmp_path) -> dict:
    m, d = preset.model, preset.data
    seq = min(d.seq_len, 64)
    ch = {"train.max_steps": 1, "train.device_batch_size": 1, "train.total_batch_size": 0, "data.seq_len": seq,
          "eval.batches": 1, "eval.every": 0, "eval.stride": 0, "sample.every": 0, "diag.every": 0,
          "checkpoint.every": 0, "schedule.warmup_steps": 0, "schedule.warmdown_steps": 0,
          "schedule.decay": "constant" if preset.schedule.decay == "warmdown" else preset.schedule.decay,
          "system.device": "cpu", "system.dtype": "fp32", "system.compile": False, "system.threads": 1,
          "system.vram_budget_gib": 0.0}
    if d.source == "builtin" and d.tokenizer != "char":
        ch["data.max_bytes"] = 200_000  # the char corpus stays whole: non-UTF-8 files are what it tests
    if d.source == "shards":
        ch["data.path"], ch["data.val_path"] = _write_shards(tmp_path / "shards", d.vocab_size or 1024)
        ch["data.tokenizer_model"] = ""
    shrunk = preset.with_values(ch)
    if estimate(shrunk, device="cpu", dtype="fp32").total_bytes > BUDGET:
        ch["model.n_layers"] = min(m.n_layers, 2)
        shrunk = preset.with_values(ch)
        width = m.d_model
        while estimate(shrunk, device="cpu", dtype="fp32").total_bytes > BUDGET and width > 64:
            width //= 2
            ch["model.d_model"] = width
            shrunk = preset.with_values(ch)
    return ch


@pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_every_shipped_preset_starts_and_takes_a_step(path, tmp_path, monkeypatch):
    from tuiLM.config.validate import validate
    from tuiLM.train.trainer import main

    preset, problems = load(path)
    assert not [p for p in problems if p.is_error], problems
    ch = _overrides(preset, tmp_path)
    preset = preset.with_values(ch)
    assert not [p for p in validate(preset) if p.is_error], [str(p) for p in validate(preset) if p.is_error]
    run_dir = create_run(preset, name=path.stem, root=tmp_path / "runs")
    monkeypatch.delenv("TUILM_RUN_LOCK_FD", raising=False)
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        code = main(run_dir)  # in this process: one torch import for all the presets
    finally:
        for sig, handler in handlers.items():  # the trainer's stop handlers must not outlive it
            signal.signal(sig, handler)
    ends = [e for e in read_events(run_dir / EVENTS) if e["kind"] == "run_end"]
    assert code == 0 and ends and ends[-1]["status"] == "completed", (ends, sys.stderr)
    assert [e["step"] for e in read_events(run_dir / EVENTS) if e["kind"] == "train"] == [1]


def test_every_shipped_preset_is_covered():
    assert {p.stem for p in SHIPPED} >= {p.stem for p in list_presets([]) if p.parent == PRESETS}

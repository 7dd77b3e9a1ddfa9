"""The dashboard's data layer: incremental columnar loading, resume rule, EMA, min/max downsampling,
braille rendering. No Textual app here: numpy and the run directory only."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
import pytest

from tuiLM.events import EventWriter
from tuiLM import reader as reader_mod
from tuiLM import lineparse
from tuiLM.lineparse import decode_lines, parse_chunk
from tuiLM.reader import EventTail, RunReader, Table, effective_events, read_events, refresh_cache, summarize
from tuiLM.tui.metrics import Band, frozen_check, verdict
from tuiLM.tui.rundata import RunData, RunSnapshot
from tuiLM.tui.series import BLOCK, BlockCache, EmaCache, ema, minmax_downsample
from tuiLM.tui.widgets.plot import Frame, Trace, render_plot

from .fixtures.fixture_runs import write_run


def _line(**ev) -> str:
    return json.dumps({"v": 1, **ev}, separators=(",", ":"))


def _train(step: int, loss: float, **extra) -> str:
    return _line(kind="train", time=100.0 + step, step=step, tokens=step * 64, loss=loss, lr=1e-3,
                 grad_norm=0.5, tokens_per_s=1000.0, dt_ms=10.0, **extra)


def _open(run: Path, data: RunData | None = None) -> RunSnapshot:
    """What the dashboard gets: the snapshot after reading to the end."""
    data = data or RunData(run)
    data.poll(budget_s=60)
    while not data.caught_up():
        data.poll(budget_s=60)
    return data.snapshot()


# -- the loader ----------------------------------------------------------------------------------

def test_chunk_tail_holds_back_a_torn_last_line(tmp_path):
    path = tmp_path / "events.jsonl"
    full = _train(1, 3.0) + "\n" + _train(2, 2.9) + "\n"
    torn = _train(3, 2.8)
    path.write_text(full + torn[:20])
    tail = EventTail(path)
    got = decode_lines(tail.poll_bytes())
    assert [e["step"] for e in got] == [1, 2]
    assert tail.poll_bytes() == b""  # the fragment waits for its newline
    with open(path, "a") as fh:
        fh.write(torn[20:] + "\n")
    got = decode_lines(tail.poll_bytes())
    assert [e["step"] for e in got] == [3] and got[0]["loss"] == 2.8


def test_rundata_reads_a_torn_file_incrementally(tmp_path):
    run = tmp_path / "r"
    run.mkdir()
    lines = [_train(s, 3.0 - s / 100) for s in range(1, 41)]
    (run / "events.jsonl").write_text("\n".join(lines[:30]) + "\n" + lines[30][:17])
    data = RunData(run)
    snap = _open(run, data)
    assert snap.column("train", "step").size == 30
    with open(run / "events.jsonl", "a") as fh:
        fh.write(lines[30][17:] + "\n" + "\n".join(lines[31:]) + "\n")
    data.poll()
    steps = data.snapshot().column("train", "step")
    assert steps.tolist() == list(range(1, 41))
    assert data.snapshot().column("train", "loss")[-1] == pytest.approx(2.6)
    assert snap.column("train", "step").size == 30  # an older snapshot does not change under the UI
    with pytest.raises(ValueError):
        snap.column("train", "loss")[0] = 0.0  # and cannot be changed by it


def test_fast_path_gives_the_same_events_as_json(tmp_path):
    """Signature-matched lines and per-line decoding must agree, whatever the mix of kinds."""
    lines = []
    for s in range(1, 300):
        lines.append(_train(s, round(3 - s / 1000, 5)))
        if s % 7 == 0:
            lines.append(_line(kind="eval", time=1.0, step=s, tokens=s, val_loss=2.0, val_bpb=1.5))
        if s % 50 == 0:
            lines.append(_line(kind="sample", time=1.0, step=s, prompt="a:b,c}", text='x"y'))
    lines.append(_train(300, "nan"))  # JSON has no NaN: the writer spells it as a string
    lines.append(_train(301, 1.0, gate_value=0.5))  # extra field: a different shape
    lines.append(_line(kind="train", time=1.0, step=302, tokenz=5, loss=1.0, lr=1e-3, grad_norm=0.5,
                       tokens_per_s=1.0, dt_ms=1.0))  # same lengths as usual, wrong key: must not match
    buf = ("\n".join(lines) + "\n").encode()
    chunk = parse_chunk(buf, [])
    assert sum(len(b.lines) for b in chunk.blocks) > 250  # the fast path did the bulk
    got = decode_lines(buf)
    want = [json.loads(x) for x in lines]
    assert len(got) == len(want)
    for g, w in zip(got, want):
        for k, v in w.items():
            if k == "v":
                continue
            if v == "nan":
                assert math.isnan(g[k])
            else:
                assert g[k] == v, (k, g, w)
        assert set(g) - {"v"} == set(w) - {"v"}


def test_rundata_resume_drops_superseded_steps(tmp_path):
    """A run_start at step s drops rows with step > s (events.effective_events), across chunks."""
    run = tmp_path / "r"
    run.mkdir()
    path = run / "events.jsonl"
    start = dict(run_id="r", versions={}, device="cpu", params=1, world_size=1, max_steps=30,
                 tokens_per_step=64, corpus={}, pid=1)
    with EventWriter(path) as w:
        w.write("run_start", step=0, **start)
        for s in range(1, 21):
            w.write("train", step=s, tokens=s * 64, loss=5.0, lr=1e-3, grad_norm=1.0, tokens_per_s=1.0, dt_ms=1.0)
    data = RunData(run)
    before = _open(run, data)
    with EventWriter(path) as w:  # crashed after step 20; resumed from the checkpoint at step 15
        w.write("run_start", step=15, **start)
        for s in range(16, 31):
            w.write("train", step=s, tokens=s * 64, loss=1.0, lr=1e-3, grad_norm=1.0, tokens_per_s=1.0, dt_ms=1.0)
        w.write("run_end", status="completed", step=30, reason="done")
    data.poll()
    snap = data.snapshot()
    want = [e for e in effective_events(read_events(path)) if e["kind"] == "train"]
    assert snap.column("train", "step").tolist() == [e["step"] for e in want] == list(range(1, 31))
    assert snap.column("train", "loss").tolist() == [e["loss"] for e in want]
    assert snap.state == "completed" and snap.resumes == 1
    assert snap.table_version("train")[1] > before.table_version("train")[1]  # the UI's caches rebuild
    assert before.column("train", "step").tolist() == list(range(1, 21))


def test_fixture_run_loads_with_state_samples_and_log(tmp_path):
    run = write_run(tmp_path, "m", "mhc")
    data = _open(run)
    assert data.state == "completed" and data.arch == "mhc"
    assert [data.column(k, "step").size for k in ("train", "eval", "diag")] == [400, 8, 40]
    assert data.last("diag", "gate_value") == pytest.approx(0.34, abs=0.02)
    assert [s.step for s in data.samples] == [100, 200, 300, 400]
    assert data.stdout[-1] == "done: 400 steps"


def test_stdout_tail_keeps_the_last_lines_waits_for_a_torn_one_and_restarts_when_truncated(tmp_path):
    run = tmp_path / "r"
    run.mkdir()
    log = run / "stdout.log"
    log.write_bytes(b"".join(b"line %06d\n" % i for i in range(20000)) + b"step 1/9\rstep 2/9\n")  # ~220 KB
    data = RunData(run)
    data.poll()
    out = data.snapshot().stdout
    assert out[-1] == "step 2/9" and out[-2] == "line 019999"  # what the terminal showed after the \r
    assert all(x.startswith("line ") and len(x) == 11 for x in out[:-1])  # no cut-off first line from the 64 KiB window
    with open(log, "ab") as fh:
        fh.write(b"done\nhalf a li")
    data.poll()
    assert data.snapshot().stdout[-1] == "done"  # the torn line waits for its newline
    total = data.snapshot().stdout_total
    log.write_bytes(b"fresh\n")  # truncated and rewritten
    data.poll()
    assert data.snapshot().stdout[-1] == "fresh" and data.snapshot().stdout_total == total + 1


def test_a_run_whose_trainer_vanished_is_dead(tmp_path):
    run = tmp_path / "r"
    run.mkdir()
    (run / "events.jsonl").write_text(_line(kind="run_start", time=1.0, run_id="r", versions={}, device="cpu",
                                            params=1, world_size=1, max_steps=9, tokens_per_step=1, corpus={},
                                            pid=2**22 + 12345, step=0) + "\n")
    (run / "trainer.pid").write_text(f"{2**22 + 12345}\n")  # a trainer was launched, and is gone
    assert _open(run).state == "dead"


# -- series --------------------------------------------------------------------------------------

def test_downsampling_keeps_min_and_max():
    rng = np.random.default_rng(0)
    n = 200_000
    x = np.arange(n, dtype=float)
    y = rng.standard_normal(n)
    y[12_345], y[150_001] = 40.0, -35.0  # single-point spikes
    for blocks in (None, BlockCache()):
        if blocks is not None:
            blocks.update(x, y, (0,))
        b = minmax_downsample(x, y, 0, n - 1, 120, blocks)
        assert len(b) == 120
        assert b.hi.max() == 40.0 and b.lo.min() == -35.0
        assert b.cols[np.argmax(b.hi)] == int(12_345 / (n - 1) * 120)
        # every bucket's extremes are the true extremes of the points in it
        col = np.minimum((x / (n - 1) * 120).astype(int), 119)
        true_hi = np.array([y[col == c].max() for c in range(120)])
        if blocks is None:
            assert np.array_equal(b.hi, true_hi)
        else:  # blocks may straddle a bucket edge by < BLOCK points; the extremes still survive
            assert abs(np.sort(b.hi)[-1] - np.sort(true_hi)[-1]) == 0


def test_downsampling_a_window_and_nans():
    x = np.arange(100, dtype=float)
    y = x.copy()
    y[50] = np.nan
    b = minmax_downsample(x, y, 40, 59, 10)
    assert b.lo.min() == 40 and b.hi.max() == 59
    assert np.all(np.isfinite(b.lo)) and np.all(np.isfinite(b.last))


@pytest.mark.parametrize("w,split", [(0.99, 3000), (0.9, 1234), (0.6, 17), (0.999, 4999), (0.0, 10)])
def test_ema_matches_the_recurrence_and_resumes(w, split):
    """Chunks of every size (w = 0.6: 27 points a chunk; 0.999: one chunk) and a resume anywhere."""
    rng = np.random.default_rng(1)
    x = rng.standard_normal(5000).cumsum()
    x[100] = np.nan
    want, b, last = [], 0.0, x[0]
    for t, v in enumerate(x, start=1):
        v = last if not np.isfinite(v) else v
        last = v
        b = w * b + (1 - w) * v
        want.append(b / (1 - w ** t))
    got, state = ema(x[:split], w)
    got2, _ = ema(x[split:], w, state)
    assert np.allclose(np.concatenate([got, got2]), want, rtol=1e-9, atol=1e-9)


def test_ema_cache_extends_and_rebuilds_on_truncation():
    t = Table()
    t.append(["step", "loss"], np.column_stack([np.arange(1, 101), np.linspace(5, 1, 100)]))
    cache = EmaCache()
    a = cache.get(t.col("loss"), 0.9, t.epoch).copy()
    t.append(["step", "loss"], np.array([[101.0, 0.5]]))
    b = cache.get(t.col("loss"), 0.9, t.epoch)
    assert np.allclose(b[:100], a) and b.size == 101
    t.truncate_where(t.col("step") <= 50)
    c = cache.get(t.col("loss"), 0.9, t.epoch)
    assert c.size == 50 and np.allclose(c, a[:50])


def test_block_cache_is_incremental():
    x = np.arange(10 * BLOCK, dtype=float)
    y = np.sin(x)
    bc = BlockCache()
    bc.update(x[: 5 * BLOCK + 3], y[: 5 * BLOCK + 3], (0,))
    assert bc.nb == 5
    bc.update(x, y, (0,))
    assert bc.nb == 10
    assert np.allclose(bc.hi[:10], y.reshape(10, BLOCK).max(axis=1))


# -- plots and metrics ---------------------------------------------------------------------------

def test_render_plot_draws_the_spike_and_bands():
    x = np.arange(1, 1001, dtype=float)
    y = np.full(1000, 1.0)
    y[700] = 3.0
    strips = render_plot(Frame([Trace(x, y, "#4ea1ff")], bands=(Band(2.5, 10, "bad"),)), 40, 10)
    assert len(strips) == 10 and all(s.cell_length == 40 for s in strips)
    top = strips[0].text
    assert float(top.split()[0]) == pytest.approx(3.0, abs=0.1)  # the axis spans the spike...
    assert any(0x2800 < ord(c) <= 0x28FF for c in top)  # ...and the spike reaches the top row
    assert "1,000" in strips[-1].text
    bad_bg = [seg.style.bgcolor for seg in strips[0] if seg.style and seg.style.bgcolor]
    assert bad_bg, "the bad band colours the top row"


def test_render_plot_log_scale_and_empty():
    x = np.arange(1, 101, dtype=float)
    strips = render_plot(Frame([Trace(x, 10.0 ** -(x / 10), "#4ea1ff")], log=True), 40, 8)
    assert "1e-10" in strips[-2].text.replace("1.0e-10", "1e-10") or "e-10" in strips[-2].text
    assert "no data yet" in "".join(s.text for s in render_plot(Frame([]), 40, 8))


def test_verdicts_and_frozen_signature():
    assert verdict(0.15, (Band(-math.inf, 0.2, "good"), Band(0.4, math.inf, "bad"))) == "good"
    assert verdict(0.5, (Band(-math.inf, 0.2, "good"), Band(0.4, math.inf, "bad"))) == "bad"
    model = {"arch": "mhc", "mhc_gate": True, "mhc_gate_init": 0.01, "mhc_tau": 0.05, "mhc_h_res_init": -8.0}
    f = frozen_check(model, 1.0, 0.01, 500)
    assert f.frozen and "160" in f.text
    assert not frozen_check(model, 0.52, 0.34, 500).frozen  # learning: stable, not frozen
    assert not frozen_check(model, 1.0, 0.2, 500).frozen  # the gate moved
    assert not frozen_check(model, 1.0, 0.01, 0).frozen  # nothing trained yet
    assert not frozen_check({**model, "arch": "gpt"}, 1.0, 0.01, 500).frozen


# -- long files: the column cache -----------------------------------------------------------------

def _long_run(tmp_path: Path, ended: bool = True) -> Path:
    """30,000 train events with a resume from step 12,000 in the middle of the file (~5 MB)."""
    from .fixtures.fixture_runs import write_big_events

    run = tmp_path / "long"
    run.mkdir()
    write_big_events(run / "a.jsonl", 20_000, diag_every=7, eval_every=100)
    write_big_events(run / "b.jsonl", 30_000, seed=1, diag_every=7, eval_every=100)
    a = (run / "a.jsonl").read_text().splitlines(keepends=True)[:-1]  # no run_end: it died
    b = (run / "b.jsonl").read_text().splitlines(keepends=True)
    resume = _line(kind="run_start", time=2e9, run_id="long", step=12_000, max_steps=30_000,
                   pid=4_000_000 + 123) + "\n"  # above any pid_max: the trainer is gone
    after = [x for x in b[1:] if json.loads(x).get("step", 0) > 12_000]
    if not ended:
        after = after[:-1]
    (run / "events.jsonl").write_text("".join(a + [resume] + after))
    return run


def _same_tables(a: RunReader, b: RunReader) -> None:
    for kind in ("train", "eval", "diag"):
        ta, tb = a.tables[kind], b.tables[kind]
        assert ta.n == tb.n > 0 and set(ta.cols) == set(tb.cols), kind
        for name in ta.cols:
            assert np.array_equal(ta.col(name).view(np.uint64), tb.col(name).view(np.uint64)), (kind, name)  # ABSENT too
    assert (a.run_start, a.run_end, list(a.samples), list(a.logs), a.checkpoints, a.resumes, a.skipped) == \
        (b.run_start, b.run_end, list(b.samples), list(b.logs), b.checkpoints, b.resumes, b.skipped)
    assert a.summary() == b.summary()


def test_a_long_run_reopens_from_its_column_cache_reading_only_new_bytes(tmp_path, monkeypatch):
    run = _long_run(tmp_path, ended=False)
    first = RunReader(run)
    first.poll()
    assert first.resumes == 1 and first.tables["train"].n == 30_000 and first.run_end is None
    assert np.all(np.diff(first.tables["train"].col("step")) == 1)  # the resume rule applied
    assert first.save_cache() and (run / "events.cache").exists()
    with open(run / "events.jsonl", "a") as fh:  # the run went on
        fh.write(_train(30_001, 0.5) + "\n" + _line(kind="run_end", time=3e9, status="completed", step=30_001,
                                                    reason="") + "\n")
    parsed: list[int] = []
    real = reader_mod.parse_chunk
    monkeypatch.setattr(reader_mod, "parse_chunk", lambda buf, sigs: parsed.append(len(buf)) or real(buf, sigs))
    again = RunReader(run)
    again.poll()
    assert sum(parsed) < 1000  # only the two new lines were parsed, not the 5 MB before them
    monkeypatch.setattr(reader_mod, "parse_chunk", real)
    cold = RunReader(run, cache=False)
    cold.poll()
    _same_tables(again, cold)
    assert again.summary().state == "completed" and again.summary().step == 30_001


def test_a_cache_that_does_not_match_its_file_is_never_used(tmp_path):
    run = _long_run(tmp_path)
    r = RunReader(run)
    r.poll()
    assert r.save_cache()
    good = (run / "events.jsonl").read_bytes()
    # rewritten with other content of the same length: the fingerprint differs
    (run / "events.jsonl").write_bytes(good.replace(b'"loss":1', b'"loss":2'))
    cold = RunReader(run, cache=False)
    cold.poll()
    warm = RunReader(run)
    warm.poll()
    _same_tables(warm, cold)
    assert warm._cache_at == 0  # read from the start
    # shorter than the cache says (truncated), and a cache that is not one: read from the start
    (run / "events.jsonl").write_bytes(good[: len(good) // 2])
    short = RunReader(run)
    short.poll()
    assert short._cache_at == 0 and short.tables["train"].n < 30_000
    (run / "events.cache").write_bytes(b"garbage" * 100)
    assert RunReader(run).poll() and RunReader(run)._load_cache() is False


def test_a_damaged_cache_is_ignored_never_raised(tmp_path):
    """Whatever is in events.cache (a huge header length, a header without its keys, a sample of the
    wrong arity, an unknown table, columns of different lengths, cut short), the reader reads the file."""
    import json as _json

    from tuiLM.reader import _MAGIC

    run = _long_run(tmp_path)
    r = RunReader(run)
    r.poll()
    assert r.save_cache()
    good = (run / "events.cache").read_bytes()
    cold = RunReader(run, cache=False)
    cold.poll()
    at = len(_MAGIC)
    head_len = int.from_bytes(good[at: at + 8], "little")
    meta = _json.loads(good[at + 8: at + 8 + head_len])
    body = good[at + 8 + head_len:]

    def with_meta(**change) -> bytes:
        m = {**meta, **change}
        for k in [k for k, v in change.items() if v is None]:
            del m[k]
        head = _json.dumps(m).encode()
        pad = b"\0" * (-(at + 8 + len(head)) % 8)
        return _MAGIC + len(head).to_bytes(8, "little") + head + pad + body.lstrip(b"\0")

    first = meta["columns"][0]
    damaged = [
        _MAGIC + b"\xff" * 8 + b"{}",  # a header length no file has
        with_meta(samples=None),  # a key missing
        with_meta(samples=[[1, "x"]]),  # a sample of the wrong arity
        with_meta(columns=[["loss", first[1], first[2]]] + meta["columns"][1:]),  # not a table
        with_meta(columns=[[first[0], first[1], first[2] - 1], [first[0], "extra", 1]] + meta["columns"][1:]),
        good[: len(good) - 8],  # cut short
        with_meta(format=1),  # written before absent cells were ABSENT
    ]
    for i, data in enumerate(damaged):
        (run / "events.cache").write_bytes(data)
        warm = RunReader(run)
        assert warm.poll(), i
        assert warm._cache_at == 0, i  # not used: read from the start
        _same_tables(warm, cold)


def test_saving_the_cache_clears_temp_files_of_writers_killed_long_ago(tmp_path):
    run = _long_run(tmp_path)
    stale = run / ".events.cache.killed.tmp"  # a writer killed mid-write left this long ago
    stale.write_bytes(b"x" * 100)
    os.utime(stale, (1e9, 1e9))
    fresh = run / ".events.cache.writing.tmp"  # another writer's, now
    fresh.write_bytes(b"x")
    r = RunReader(run)
    r.poll()
    assert r.save_cache() and (run / "events.cache").exists()
    assert not stale.exists() and fresh.exists()
    assert sorted(p.name for p in run.iterdir() if p.name.startswith(".")) == [fresh.name]


def test_a_line_longer_than_a_read_is_read_on_and_one_over_the_limit_is_dropped(tmp_path, monkeypatch):
    from tuiLM import events as events_mod

    run = tmp_path / "r"
    run.mkdir()
    big = "x" * (10 << 20)  # longer than the reader's 4 MiB reads
    lines = [_line(kind="run_start", time=1.0, step=0), _train(1, 3.0),
             _line(kind="log", time=2.0, level="info", message=big), _train(2, 2.9),
             _line(kind="run_end", time=3.0, status="completed", step=2, reason="")]
    (run / "events.jsonl").write_text("\n".join(lines) + "\n")
    s = summarize(run)
    assert s.state == "completed" and s.step == 2
    r = RunReader(run, cache=False)
    r.poll()
    assert r.tables["train"].col("step").tolist() == [1.0, 2.0] and len(r.logs) == 1 and r.skipped == 0
    monkeypatch.setattr(reader_mod, "MAX_LINE", 6 << 20)  # now the log line is over the limit
    monkeypatch.setattr(events_mod, "MAX_LINE", 6 << 20)
    r = RunReader(run, cache=False)
    r.poll()
    assert r.tables["train"].col("step").tolist() == [1.0, 2.0] and len(r.logs) == 0 and r.skipped == 1
    assert r.state == "completed"


def test_repeated_logs_and_samples_are_never_folded_away(tmp_path):
    """Lines of one shape repeated (the same log message, a fixed-seed sample) stay events: the
    matcher learns shapes only for the numeric kinds."""
    run = tmp_path / "r"
    run.mkdir()
    lines = [_line(kind="run_start", time=1.0, step=0)]
    for s in range(1, 41):
        lines.append(_train(s, 3.0))
        lines.append(_line(kind="log", time=1.0, level="warning", message="loss spike"))
        lines.append(_line(kind="sample", time=1.0, step=s, prompt="a", text="b"))
    (run / "events.jsonl").write_text("\n".join(lines[:61]) + "\n")
    r = RunReader(run, cache=False)
    r.poll()
    (run / "events.jsonl").write_text("\n".join(lines) + "\n")  # the same lines and 60 more
    r.poll()
    assert len(r.logs) == 40 and len(r.samples) == 24 and r.tables["train"].n == 40  # samples: the last 24
    assert {lineparse.learn_signature(x.encode(), json.loads(x)) is None for x in lines[1:4]} == {False, True}


def test_the_fast_path_refuses_what_sanitize_refuses(tmp_path):
    """A matched line whose step is a string or not an integer, or whose loss is a boolean, is skipped
    and counted like on the per-line path, not read as a number."""
    good = [_train(s, 3.0 - s / 1000) for s in range(1, 200)]
    bad = [_train(200, 2.0).replace('"step":200', '"step":"200"'),
           _train(201, 2.0).replace('"step":201', '"step":201.5'),
           _train(202, 2.0).replace('"loss":2.0', '"loss":true'),
           _train(203, 2.0).replace('"loss":2.0', '"loss":"2.0"'),
           _train(203, 2.0).replace('"step":203', '"step":"inf"')]
    ok_nan = _train(204, "nan")
    for i, line in enumerate(bad):  # one bad line per file: each check must hold on its own
        run = tmp_path / f"r{i}"
        run.mkdir()
        (run / "events.jsonl").write_text("\n".join(good + [line, ok_nan, _train(205, 1.0)]) + "\n")
        r = RunReader(run, cache=False)
        r.poll()
        assert sum(len(b.lines) for b in parse_chunk((run / "events.jsonl").read_bytes(), []).blocks) == 0, i
        assert r.skipped == 1, i
        steps = r.tables["train"].col("step").tolist()
        assert steps == list(range(1, 200)) + [204, 205] and np.isnan(r.tables["train"].col("loss")[-2]), i
        assert steps == [e["step"] for e in read_events(run / "events.jsonl") if e["kind"] == "train"], i
    run = tmp_path / "ok"  # and without a bad line the same lines take the fast path
    run.mkdir()
    (run / "events.jsonl").write_text("\n".join(good + [ok_nan, _train(205, 1.0)]) + "\n")
    assert sum(len(b.lines) for b in parse_chunk((run / "events.jsonl").read_bytes(), []).blocks) > 190


def test_an_unreadable_events_file_is_caught_up_and_unreadable(tmp_path):
    """The loader thread does not spin on a file it cannot read: there is nothing more to read (here a
    directory in its place, which has a size but is no events file)."""
    run = tmp_path / "r"
    run.mkdir()
    (run / "events.jsonl").mkdir()
    data = RunData(run)
    data.poll()
    assert data.caught_up() and data.snapshot().state == "unreadable"


def test_an_eval_without_a_step_does_not_break_the_summary(tmp_path):
    run = tmp_path / "r"
    run.mkdir()
    (run / "events.jsonl").write_text("\n".join([
        _line(kind="run_start", time=1.0, step=0), _line(kind="eval", time=2.0, val_loss=2.0, val_bpb=1.4),
        _line(kind="eval", time=3.0, step=10, tokens=1, val_loss=1.9, val_bpb=1.5)]) + "\n")
    s = summarize(run)
    assert s.evals == [(10, 1.5, 1.9)] and s.best_val_bpb == 1.5


def test_small_runs_keep_no_cache_and_the_trainer_refresh_never_raises(tmp_path, monkeypatch):
    run = write_run(tmp_path, "m", "mhc")
    assert not refresh_cache(run) and not (run / "events.cache").exists()  # < 4 MB: a full read is instant
    monkeypatch.setattr(reader_mod, "CACHE_MIN_BYTES", 1)
    assert refresh_cache(run) and (run / "events.cache").exists()
    assert not refresh_cache(run)  # nothing new
    assert not refresh_cache(tmp_path / "no-such-run")
    data = _open(run)
    assert data.state == "completed" and data.column("train", "step").size == 400


def test_a_long_run_without_run_end_or_trainer_is_dead(tmp_path):
    run = _long_run(tmp_path, ended=False)
    (run / "trainer.pid").write_text("4000123\n")
    assert _open(run).state == "dead"


def test_a_file_without_one_complete_line_waits_for_its_newline(tmp_path):
    (tmp_path / "events.jsonl").write_text('{"v":1,"kind":"train","step":1')
    data = RunData(tmp_path)
    data.poll()
    assert data.caught_up() and data.snapshot().column("train", "step") is None
    assert not data.poll()  # nothing new: nothing changed
    with open(tmp_path / "events.jsonl", "a") as fh:
        fh.write(',"loss":2.5}\n')
    assert data.poll() and data.snapshot().column("train", "step").tolist() == [1]


def test_elapsed_and_mean_rate_count_every_attempt_of_a_resumed_run(tmp_path):
    run = tmp_path / "r"
    run.mkdir()
    start = dict(run_id="r", versions={}, device="cpu", params=1, world_size=1, max_steps=30,
                 tokens_per_step=64, corpus={}, pid=1)
    lines = [_line(kind="run_start", time=100.0, step=0, elapsed_before_s=0.0, **start), _train(10, 3.0),
             # the first attempt died; the checkpoint at step 10 recorded 40 s of training
             _line(kind="run_start", time=1000.0, step=10, elapsed_before_s=40.0, **start),
             _line(kind="train", time=1025.0, step=20, tokens=20 * 64, loss=2.0, lr=1e-3, grad_norm=0.5,
                   tokens_per_s=1000.0, dt_ms=10.0)]
    (run / "events.jsonl").write_text("\n".join(lines) + "\n")
    data = RunData(run)
    data.poll()
    assert data.snapshot().elapsed_s() == pytest.approx(65.0)  # 40 s before the resume + 25 s since, not 25 s
    assert data.snapshot().mean_tokens_per_s() is None  # still running: the header shows the live rate
    with open(run / "events.jsonl", "a") as fh:
        fh.write(_line(kind="run_end", time=1040.0, status="completed", step=30, reason="", tokens=30 * 64,
                       elapsed_s=80.0) + "\n")
    data.poll()
    assert data.snapshot().elapsed_s() == pytest.approx(80.0)
    assert data.snapshot().mean_tokens_per_s() == pytest.approx(30 * 64 / 80.0)


# -- the dashboard's view math (pure: panels.py) ----------------------------------------------------

def test_zoom_and_pan_keep_the_window_inside_the_run_and_zoom_at_the_end_follows_new_data():
    from tuiLM.tui.panels import pan_window, zoom_window

    assert zoom_window((0.0, 1.0), 0.5) == (0.5, 1.0)  # at the end: the window keeps ending there
    a, b = zoom_window((0.2, 0.6), 0.5)
    assert (a, b) == pytest.approx((0.3, 0.5))  # elsewhere: about its centre
    assert zoom_window((0.0, 0.1), 100.0) == (0.0, 1.0)
    assert zoom_window((0.0, 1.0), 1e-9)[1] - zoom_window((0.0, 1.0), 1e-9)[0] == pytest.approx(0.002)
    assert pan_window((0.5, 1.0), 0.25) == (0.5, 1.0)  # never past the end
    assert pan_window((0.1, 0.3), -1.0) == pytest.approx((0.0, 0.2))  # nor the start
    assert pan_window((0.2, 0.4), 0.5) == pytest.approx((0.3, 0.5))


def test_grid_shape_puts_the_first_four_panels_on_an_80x24_screen():
    from tuiLM.tui.panels import grid_shape

    assert grid_shape(6, 80, 24, 2, False, 10) == (2, 11)  # 2 columns, two rows of 11 lines fill 22
    assert grid_shape(6, 160, 48, 2, False, 10) == (3, 23)
    assert grid_shape(12, 200, 48, 2, False, 10) == (4, 15)
    assert grid_shape(1, 160, 48, 2, True, 10) == (1, 46)  # the one panel maximized fills the screen
    # the samples / stdout pane below (12 rows) stays on screen where the panels keep 16 rows or more
    assert grid_shape(6, 160, 48, 2, False, 10, below=12) == (3, 17)
    assert grid_shape(6, 80, 24, 2, False, 10, below=12) == (2, 11)  # 80x24: the plots take it all
    assert grid_shape(12, 200, 48, 2, False, 10, below=12) == (4, 15)  # three rows: no room to spare
    assert grid_shape(1, 160, 48, 2, True, 10, below=12) == (1, 46)

"""The charts' rules: ticks, axis formats, EMA over steps, continuous lines, markers, bands and
fixed ranges, the inspect cursor, panel pages, the one-line header and the runs list's extras."""

from __future__ import annotations

import dataclasses

import math

import numpy as np
import pytest
from rich.text import Text

from tuiLM.reader import TREND_POINTS, summarize
from tuiLM.tui.metrics import BY_KEY, PANELS, SINKHORN_FLOOR, Band, Line, PanelSpec, panel_groups
from tuiLM.tui.panels import View, diff_rows, frame_for, legend, value_at
from tuiLM.tui.rundata import RunData
from tuiLM.tui.screens.runrows import _frozen, sparkline
from tuiLM.tui.series import Buckets, ema, minmax_downsample
from tuiLM.tui.widgets.axes import axis_formatter, log_ticks, nice_step, nice_ticks
from tuiLM.tui.widgets.plot import MARKER, Frame, Trace, _spans, render_plot
from tuiLM.tui.widgets.status import fit, run_header

from .fixtures.fixture_runs import write_run

BRAILLE = range(0x2801, 0x2900)


def _mantissa(step: float) -> float:
    return round(step / 10 ** math.floor(math.log10(step) + 1e-9), 6)


# -- ticks and formats ---------------------------------------------------------------------------

@pytest.mark.parametrize("lo,hi", [(1.2, 5.5), (0.7102, 0.7118), (1, 400), (-1, 1), (0.0, 0.0031), (3e-7, 9e-4),
                                   (12_000, 2_400_000)])
@pytest.mark.parametrize("target", [2, 3, 5, 8])
def test_ticks_are_1_2_5_multiples_inside_the_range(lo, hi, target):
    ticks = nice_ticks(lo, hi, target)
    assert len(ticks) >= 2
    assert all(lo - 1e-12 <= t <= hi + 1e-12 for t in ticks)
    steps = np.diff(ticks)
    assert np.allclose(steps, steps[0], rtol=1e-6)
    assert _mantissa(steps[0]) in (1.0, 2.0, 5.0)
    assert all(abs(t / steps[0] - round(t / steps[0])) < 1e-6 for t in ticks)  # multiples of the step


def test_tick_count_grows_with_the_target():
    counts = [len(nice_ticks(0.0, 5.3, t)) for t in (2, 3, 5, 8, 12)]
    assert counts == sorted(counts) and counts[-1] >= 3 * counts[0]
    assert nice_step(1000, 5) == 200 and nice_step(0.3, 3) == 0.1
    assert nice_ticks(1, 3, 8, integer=True) == [1.0, 2.0, 3.0]  # steps never below 1


def test_log_ticks_are_decades():
    assert log_ticks(-9.2, 0.1, 4) == [-9.0, -6.0, -3.0, 0.0]
    assert log_ticks(-3, -1, 5) == [-3.0, -2.0, -1.0]
    # within a decade (a loss from 5.8 down to 1.7): round values, labelled as such (not ".756749")
    ticks = log_ticks(math.log10(1.7), math.log10(5.8), 4)
    fmt = axis_formatter(ticks, log=True)
    assert [fmt(10 ** t) for t in ticks] == ["2", "3", "4", "5"]


@pytest.mark.parametrize("ticks", [[0.0, 0.002], [0.0095, 0.0100, 0.0105], [0.7105, 0.711, 0.7115],
                                   [1e-5, 2e-5, 3e-5], [0, 500_000, 1_000_000, 1_500_000], [-1.0, -0.5, 0.0, 0.5]])
def test_one_number_format_per_axis(ticks):
    fmt = axis_formatter(ticks)
    labels = [fmt(t) for t in ticks]
    assert len(set(labels)) == len(labels)  # distinct ticks read distinct
    sci = ["e" in s for s in labels if s != "0"]
    assert all(sci) or not any(sci)  # never 0.01045 beside 9.5e-3
    suffixed = any(s[-1].isalpha() for s in labels)
    if not any(sci):
        decimals = {len(s.split(".")[1]) if "." in s else 0 for s in labels if s != "0" or not suffixed}
        suffixes = {s[-1] for s in labels if s[-1].isalpha()}
        assert len(decimals) == 1 and len(suffixes) <= 1
    assert not any(s[-1].isalpha() for t, s in zip(ticks, labels) if t == 0)  # a zero is never "0K" or "0.0M"
    for t, s in zip(ticks, labels):  # and each label is the tick's value
        mult = {"K": 1e3, "M": 1e6}.get(s[-1], 1.0)
        assert float(s.rstrip("KM")) * mult == pytest.approx(t, rel=1e-9, abs=1e-12)


# -- EMA over steps --------------------------------------------------------------------------------

def test_ema_is_debiased_from_the_first_point():
    y = np.full(50, 3.0)
    out, _ = ema(y, 0.99, steps=np.arange(1, 51.0))
    assert np.allclose(out, 3.0)  # no pull towards zero at the start
    out, _ = ema(np.array([2.0, 4.0]), 0.5, steps=np.array([1.0, 2.0]))
    assert out[0] == 2.0 and out[1] == pytest.approx((0.5 * 0.5 * 2 + 0.5 * 4) / (1 - 0.25))


@pytest.mark.parametrize("w,split", [(0.9, 37), (0.6, 5), (0.999, 300), (0.99, 1)])
def test_ema_over_uneven_steps_matches_the_recurrence_and_resumes(w, split):
    rng = np.random.default_rng(3)
    steps = np.cumsum(rng.integers(1, 60, size=600)).astype(float)
    y = rng.standard_normal(600).cumsum()
    want, b, d, prev = [], 0.0, 0.0, steps[0] - 1
    for s, v in zip(steps, y):
        a = w ** (s - prev)
        b, d, prev = a * b + (1 - a) * v, a * d + (1 - a), s
        want.append(b / d)
    got, state = ema(y[:split], w, steps=steps[:split])
    got2, _ = ema(y[split:], w, state, steps=steps[split:])
    assert np.allclose(np.concatenate([got, got2]), want, rtol=1e-8, atol=1e-8)


def test_ema_does_not_depend_on_how_often_points_are_logged():
    """A step from 0 to 1 at step 500, logged every step or every 10 steps: 20 steps later both EMAs
    (0.9 per step) are near 1 - 0.9^20; a per-logged-point EMA would be at 1 - 0.9^2 when sparse."""
    steps = np.arange(1, 1001, dtype=float)
    y = (steps > 500).astype(float)
    dense, _ = ema(y, 0.9, steps=steps)
    sparse, _ = ema(y[9::10], 0.9, steps=steps[9::10])
    at = 519  # step 520
    assert dense[at] == pytest.approx(sparse[51], abs=0.03)
    per_point, _ = ema(y[9::10], 0.9)
    assert abs(per_point[51] - dense[at]) > 0.5


# -- continuous lines and markers ------------------------------------------------------------------

def test_consecutive_buckets_are_joined():
    """A cliff between two columns and a gap of empty columns both come out as one unbroken line."""
    b = Buckets(np.array([0, 1, 10]), np.array([5.0, 0.0, 2.0]), np.array([5.0, 0.0, 2.0]), np.array([5.0, 0.0, 2.0]))
    top, bot, c0, c1 = _spans(b, 0.0, 5.0, 40)
    assert (c0, c1) == (0, 10) and top.size == 11
    for i in range(1, top.size):  # each column touches the previous one's rows
        assert top[i] <= bot[i - 1] + 1 and bot[i] >= top[i - 1] - 1
    assert top[1] == 0 and bot[1] == 39  # the cliff is drawn all the way down


def test_a_step_trace_holds_its_value_until_the_next_point():
    """A best-so-far is flat until a trial beats it, then drops at that trial: not a slope between."""
    b = Buckets(np.array([0, 10]), np.array([4.0, 1.0]), np.array([4.0, 1.0]), np.array([4.0, 1.0]))
    top, bot, _, _ = _spans(b, 0.0, 5.0, 40, hold=True)
    assert set(top[:10]) == set(bot[:10]) == {top[0]}  # flat at 4.0 through column 9
    assert top[10] == top[0] and bot[10] > bot[0] + 20  # column 10 drops from 4.0 to 1.0
    sloped, _, _, _ = _spans(b, 0.0, 5.0, 40)
    assert len(set(sloped[:10])) > 5  # the default joins the two points with a straight line


def test_render_draws_a_line_not_dots():
    x = np.arange(1, 301, dtype=float)
    strips = render_plot(Frame([Trace(x, np.exp(-x / 40), "#4ea1ff")]), 50, 12)
    cols = [i for i in range(50) if any(ord(s.text[i]) in BRAILLE for s in strips[:-1])]
    assert cols == list(range(cols[0], cols[-1] + 1)) and len(cols) >= 40  # every column has ink


def test_eval_points_get_markers_joined_by_lines():
    x = np.arange(1, 401, dtype=float)
    ev_x = np.array([100.0, 200.0, 300.0])
    frame = Frame([Trace(x, 4 - x / 200, "#4ea1ff"), Trace(ev_x, np.array([3.0, 2.5, 2.2]), "#ff9f43", markers=True)])
    text = "".join(s.text for s in render_plot(frame, 60, 14)[:-1])
    assert text.count(MARKER) == 3
    one = render_plot(Frame([Trace(np.array([50.0]), np.array([2.0]), "#ffffff", markers=True)], xrange=(1, 400)), 60, 10)
    assert "".join(s.text for s in one).count(MARKER) == 1  # a single eval is a visible marker


def test_gridlines_and_ticks_that_grow_with_the_panel():
    x = np.arange(1, 1001, dtype=float)
    small = render_plot(Frame([Trace(x, np.sin(x / 100), "#ffffff")]), 40, 8)
    big = render_plot(Frame([Trace(x, np.sin(x / 100), "#ffffff")]), 120, 30)
    labelled = lambda strips: sum(1 for s in strips[:-1] if "┤" in s.text)  # noqa: E731
    assert 2 <= labelled(small) < labelled(big)
    assert any("┈" in s.text for s in big) and any("┊" in s.text or "┼" in s.text for s in big)
    assert len(big[-1].text.split()) > len(small[-1].text.split())  # more x ticks too


def test_the_inspect_cursor_marks_a_column_and_labels_x():
    x = np.arange(1, 401, dtype=float)
    strips = render_plot(Frame([Trace(x, x, "#ffffff")], cursor=230.0), 60, 10)
    assert " 230 " in strips[-1].text
    assert sum(1 for s in strips[:-1] if "│" in s.text[9:]) >= 5
    y = np.arange(10.0)
    assert value_at(np.arange(10.0), y, 4.5) == 4.0 and value_at(np.arange(10.0), y, -1) is None
    assert value_at(np.arange(10.0), y, None) == 9.0


# -- bands and ranges ------------------------------------------------------------------------------

def test_val_bpb_bands_only_with_a_declared_target():
    bands = BY_KEY["val_bpb"].bands
    assert bands({"eval": {"target_bpb": 0.0}}) == () and bands({}) == ()
    assert bands({"eval": {"target_bpb": 1.0}}) == (Band(-math.inf, 1.0, "good"), Band(1.2, math.inf, "bad"))


def test_the_mhc_log_bands_are_on_mhc_panels_only():
    settings = {"model": {"mhc_streams": 4}, "eval": {"target_bpb": 1.0}}
    for spec in PANELS:
        if spec.bands(settings) and spec.key != "val_bpb":
            assert spec.mhc and spec.group == "mhc", spec.key
    assert not BY_KEY["loss"].bands(settings)


def test_fixed_ranges():
    s4, s2 = {"model": {"mhc_streams": 4}}, {"model": {"mhc_streams": 2}}
    assert BY_KEY["H_res_diag_mean"].yrange(s4) == (0.25, 1.0) and BY_KEY["H_res_diag_mean"].yrange(s2) == (0.5, 1.0)
    assert BY_KEY["gate_value"].yrange(s4) == (0.0, 1.0)
    assert BY_KEY["stream_similarity"].yrange(s4) == (-1.0, 1.0)
    sk = BY_KEY["sinkhorn"]
    assert sk.log_default and sk.yrange(s4)[0] == sk.log_floor == SINKHORN_FLOOR


def test_a_fixed_range_keeps_float_noise_flat():
    x = np.arange(10, 410, 10, dtype=float)
    noise = 0.7102 + 0.0016 * np.random.default_rng(0).random(x.size)
    strips = render_plot(Frame([Trace(x, noise, "#ffffff")], yrange=(0.25, 1.0)), 60, 12)
    rows = [i for i, s in enumerate(strips[:-1]) if any(ord(c) in BRAILLE for c in s.text)]
    assert len(rows) == 1  # one row of ink: not a dive across the panel
    auto = render_plot(Frame([Trace(x, noise, "#ffffff")]), 60, 12)
    assert len([s for s in auto[:-1] if any(ord(c) in BRAILLE for c in s.text)]) > 5  # what it was
    wide = render_plot(Frame([Trace(x, np.linspace(-0.5, 1.5, x.size), "#ffffff")], yrange=(0.0, 1.0)), 60, 12)
    assert "1.5" in "".join(s.text for s in wide) or "1.4" in "".join(s.text for s in wide)  # data widens it


def test_sinkhorn_zeros_sit_at_the_floor_labelled():
    x = np.arange(10, 410, 10, dtype=float)
    y = np.where(x > 200, 0.0, 1e-3)
    frame = Frame([Trace(x, y, "#ffffff")], log=True, yrange=(SINKHORN_FLOOR, 1.0), log_floor=SINKHORN_FLOOR)
    strips = render_plot(frame, 60, 12)
    assert strips[-2].text.split()[0] == "0"  # the floor row is labelled 0
    assert any(ord(c) in BRAILLE for c in strips[-2].text)  # and the zeros are drawn there
    zeros = render_plot(Frame([Trace(x, np.zeros(x.size), "#ffffff")], log=True, yrange=(SINKHORN_FLOOR, 1.0),
                              log_floor=SINKHORN_FLOOR), 60, 12)
    assert "no positive values" not in "".join(s.text for s in zeros)


def test_band_edges_are_lines_with_a_faint_fill():
    x = np.arange(1, 401, dtype=float)
    strips = render_plot(Frame([Trace(x, np.linspace(0, 1, 400), "#ffffff")], bands=(Band(0.4, 0.8, "good"),)), 60, 20)
    edge_rows = [s for s in strips[:-1] if "╌" in s.text]
    assert len(edge_rows) == 2
    filled = [s for s in strips[:-1] if any(seg.style and seg.style.bgcolor for seg in s)]
    assert 4 <= len(filled) <= 10


def loaded(run):
    """The run's snapshot once its events are all read (as the dashboard first draws it)."""
    loader = RunData(run)
    while not loader.caught_up():
        loader.poll(1.0)
    return loader.snapshot()


def test_frames_from_runs_gate_off_and_legend(tmp_path):
    data = loaded(write_run(tmp_path / "runs", "m", "mhc"))
    view = View()
    loss = frame_for(BY_KEY["loss"], [data], view, (1.0, 400.0), False)
    assert [t.dim for t in loss.traces] == [True, False, False]  # raw under EMA, then the evals
    assert loss.traces[-1].markers and not loss.traces[0].markers
    assert "━" in legend(BY_KEY["loss"], [data], view) and "●" in legend(BY_KEY["loss"], [data], view)
    assert "━" not in legend(BY_KEY["val_bpb"], [data], view)  # one series: no swatch
    assert "train EMA " in legend(BY_KEY["loss"], [data], view)  # smoothed: not the header's raw last loss
    assert "EMA" not in legend(BY_KEY["loss"], [data], View(ema_on=False))
    assert legend(BY_KEY["val_bpb"], [data], View(cursor=10.0)).strip() == "—"  # no eval before step 50
    assert frame_for(BY_KEY["val_bpb"], [data], view, None, False).bands == ()  # no target declared
    data = dataclasses.replace(data, preset={**data.preset, "model": {**data.preset["model"], "mhc_gate": False}})
    assert frame_for(BY_KEY["gate_value"], [data], view, None, False).message == "gate off"


# -- pages, header, compare, runs list ------------------------------------------------------------

def test_panel_pages_put_the_family_first_and_are_data_driven():
    groups = panel_groups([p for p in PANELS if p.group != "system"], "mhc")
    assert [g for g, _ in groups] == ["mHC", "core"]
    assert [p.key for p in groups[0][1]][:4] == ["loss", "val_bpb", "H_res_diag_mean", "stream_similarity"]
    gpt = panel_groups([p for p in PANELS if not p.mhc and p.group != "system"], "gpt")
    assert [g for g, _ in gpt] == ["core"]
    assert [g for g, _ in panel_groups(PANELS, "mhc")] == ["mHC", "core", "system"]  # sys12's specs
    custom = PanelSpec("queue", "queue", (Line(("train",), "queue_len", "queue"),), group="data")
    assert [g for g, _ in panel_groups((*PANELS, custom), "gpt")] == ["core", "data", "mHC", "system"]


def test_header_keeps_what_matters_when_narrow(tmp_path):
    pieces = [(0, Text("A" * 30)), (3, Text("B" * 30)), (1, Text("C" * 30)), (3, Text("D" * 10))]
    assert fit(pieces, 200).plain == "A" * 30 + "B" * 30 + "C" * 30 + "D" * 10
    assert fit(pieces, 75).plain == "A" * 30 + "C" * 30  # the least important go first, order kept
    data = loaded(write_run(tmp_path / "runs", "gpt-run", "gpt"))
    narrow = run_header(data, View(), 78).plain
    assert len(narrow) <= 78 and "completed" in narrow and "gpt-run" in narrow and "loss" in narrow
    wide = run_header(data, View(), 200).plain
    # a finished run: its mean throughput (from run_end's tokens and elapsed_s), never the last instant's
    assert ("tok/s avg" in wide) == (data.mean_tokens_per_s() is not None) and "tok/s" not in wide.replace("tok/s avg", "")


def test_compare_diff_lists_real_hyperparameters_only():
    a = {"run": {"name": "a", "notes": "x", "seed": 1}, "optim": {"lr": 3e-3}}
    b = {"run": {"name": "b", "notes": "y", "seed": 2}, "optim": {"lr": 1e-3}}
    rows = dict(diff_rows([a, b]))
    assert rows == {"run.seed": ["1", "2"], "optim.lr": ["0.003", "0.001"]}
    # a study's sampled floats read short, but never so short that two different values look the same
    c, d = {"optim": {"lr": 0.000204687123}}, {"optim": {"lr": 0.000204712}}
    assert dict(diff_rows([a, c]))["optim.lr"] == ["0.003", "0.0002047"]
    assert dict(diff_rows([c, d]))["optim.lr"] == ["0.00020469", "0.00020471"]


def test_runs_list_trend_and_frozen_flag(tmp_path):
    ok = write_run(tmp_path / "runs", "ok", "mhc")
    frozen = write_run(tmp_path / "runs", "fz", "mhc-frozen")
    trend = summarize(ok).trend
    assert len(trend) == TREND_POINTS and trend[0] > trend[-1]  # the loss came down
    spark = sparkline(trend, 10)
    assert len(spark) == 10 and spark[0] == "█" and set(spark) <= set("▁▂▃▄▅▆▇█")
    diag = summarize(frozen).diag
    assert diag["H_res_diag_mean"] == 1.0 and diag["step"] > 0
    model = {"arch": "mhc", "mhc_gate": True, "mhc_gate_init": 0.01}
    assert _frozen(model, diag) and not _frozen(model, summarize(ok).diag)
    assert summarize(write_run(tmp_path / "runs", "g", "gpt")).diag == {}


def test_downsampling_still_joins_after_the_new_render():
    """Regression guard: the min/max buckets a long series draws from are the plot's input."""
    x = np.arange(100_000, dtype=float)
    b = minmax_downsample(x, np.sin(x / 1000), 0, 99_999, 80)
    assert len(b) == 80


def test_a_trace_without_a_line_draws_its_points_alone():
    """A study's trials are independent values: a dot each, no path joining them (it read as a curve)."""
    x, y = np.arange(7, dtype=float), np.array([5.5, 5.7, 6.3, 7.7, 5.9, 5.1, 5.6])
    for line in (True, False):
        text = "".join(s.text for s in render_plot(Frame([Trace(x, y, "#ffffff", markers=True, line=line)]), 60, 14)[:-1])
        dots = sum(1 for ch in text if 0x2800 < ord(ch) <= 0x28FF)
        assert text.count(MARKER) == 7
        assert (dots > 0) is line, (line, dots)


def test_a_panel_says_it_waits_for_the_first_step_while_a_run_starts(tmp_path):
    """A launched run showed "no data yet" in every panel for the 10-15 s its trainer took to load data
    and build the model: it now says what it waits for; an ended run with no data still says none."""
    from tuiLM.events import EventWriter

    run = tmp_path / "r"
    run.mkdir()
    (run / "preset.toml").write_text("")
    with EventWriter(run / "events.jsonl") as w:
        w.write("run_start", step=0)
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])  # the trainer, loading
    try:
        loader = RunData(run, proc=proc)
        loader.poll(1.0)
        data = loader.snapshot()
        assert data.state == "running"
        assert frame_for(BY_KEY["loss"], [data], View(), None, False).message == "waiting for the first step…"
    finally:
        proc.kill()
        proc.wait()
    with EventWriter(run / "events.jsonl") as w:
        w.write("run_end", step=0, status="failed", reason="out of memory")
    loader.poll(1.0)
    assert frame_for(BY_KEY["loss"], [loader.snapshot()], View(), None, False).message == "no data yet"


def test_a_long_run_id_shortens_before_bpb_goes_and_log_or_tokens_stay_said(tmp_path):
    """At 80 columns a run id with its time stamp pushed val_bpb (and a live run's ETA) out of the
    header; the id now gives up its stamp first. Log y and a tokens x axis stay said in the header
    (EMA goes first), each panel names its x axis in the corner and says "log" in its title."""

    data = loaded(write_run(tmp_path / "runs", "tiny-20261203-131316", "gpt"))
    wide = run_header(data, View(), 200).plain
    assert "tiny-20261203-131316" in wide and "bpb" in wide
    narrow = run_header(data, View(), 62).plain
    assert "tiny-…131316" in narrow and "bpb" in narrow and len(narrow) <= 62
    from tuiLM.tui.widgets.status import fit_id, short_id

    assert short_id("mhc-v5-frozen") == "mhc-v5-frozen"  # no time stamp: nothing to give up
    assert [fit_id(r, 14) for r in ("tiny-20261203-131719", "quickstart-20261203-130541",
                                    "lr-t004-s0-20261201-022132", "tiny-20261203-131719-2")] == \
        ["tiny-…131719", "quickst…130541", "lr-t004-s0…", "tiny-…131719-2"]
    assert fit_id("lr-sweep-big-t004-s0-20261203-131316", 16) == "lr-s…big-t004-s0"  # trial and seed stay
    # the study name's end stays too: two confirmations of one study read apart (both were tiny3…-t000-s0)
    assert [fit_id(f"tiny3-confirm{i}-t000-s0-20261203-162429", 16) for i in (1, 2)] == \
        ["tiny…rm1-t000-s0", "tiny…rm2-t000-s0"]
    assert all(len(fit_id("tiny-20261203-131719", w)) <= w for w in range(2, 24))
    logged = run_header(data, View(log_all=True, xaxis="tokens"), 80).plain
    assert "log y · x tokens" in logged and "EMA" not in logged
    # a page of panels: its name gives way before bpb and its best, then its number alone stays where it fits
    # (at 80 columns the header kept "[core 1/2] (g)" and dropped val_bpb)
    long = loaded(write_run(tmp_path / "runs", "quickstart-20261203-183856", "gpt"))
    paged = run_header(long, View(), 78, group="core 1/2").plain
    assert "bpb" in paged and "[1/2]" in paged and "(g)" not in paged and len(paged) <= 78, paged
    assert "[core 1/2] (g)" in run_header(long, View(), 200, group="core 1/2").plain
    frame = frame_for(BY_KEY["loss"], [data], View(), None, False)
    assert frame.xname == "step"
    assert render_plot(frame, 60, 12)[-1].text.startswith("step ")
    tokens = frame_for(BY_KEY["loss"], [data], View(xaxis="tokens"), None, False)
    assert render_plot(tokens, 60, 12)[-1].text.startswith("tokens ")


def test_legend_values_read_as_the_axes_write_them():
    """tokens/s read "2710.16" beside a header's "3202 tok/s", a learning rate "0.0029" beside ticks
    "3e-3": the legend now writes large and small values as the axes do; near 1 it keeps 4 decimals."""
    from tuiLM.tui.panels import fmt

    assert [fmt(v) for v in (2710.16, 18_400.0, 96.67, 0.0029, 3e-4, 1.0003, 0.5175)] == \
        ["2710", "18.4K", "96.67", "2.9e-3", "3.0e-4", "1.0003", "0.5175"]


def test_compare_header_names_its_runs_where_they_fit(tmp_path):
    """The compare view's only legend was colour swatches and state marks: the names come along where
    they fit, and go before the swatches do."""
    from tuiLM.tui.widgets.status import compare_header

    snaps = []
    for name, kind in (("gpt-small-20261203-131316", "gpt"), ("mhc-v3", "mhc")):
        snaps.append(loaded(write_run(tmp_path / "runs", name, kind)))
    wide = compare_header(snaps, View(), 160).plain
    assert "━ ✓ gpt-small-…131316" in wide and "━ ✓ mhc-v3" in wide
    narrow = compare_header(snaps, View(), 30).plain
    assert narrow.count("━") == 2 and "mhc-v3" not in narrow
    # three runs at 80 columns: every name, shorter, or none; it named two of three
    snaps.append(loaded(write_run(tmp_path / "runs", "gpt-small-20261203-141516", "gpt")))
    for width in range(40, 100):
        line = compare_header(snaps, View(), width).plain
        shown = sum(tag in line for tag in ("131316", "mhc-v3", "141516"))
        assert shown in (0, 3) and len(line) <= width, (width, line)
    # one name inside another (two runs started in the same second: …131316 and …131316-1): counted by
    # what the line shows, not found as text in it (a reviewer's case)
    from types import SimpleNamespace as Run

    runs = [Run(run_id=i, state="completed") for i in ("gpt-small-20261203-141516", "tiny-20261203-131316-1",
                                                        "tiny-20261203-131316")]
    for width in range(40, 100):
        segs = compare_header(runs, View(), width).plain.split("━ ✓")[1:]
        assert sum(1 for seg in segs if seg[1:2].isalnum()) in (0, 3), width

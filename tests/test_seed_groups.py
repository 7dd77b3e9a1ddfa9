"""Seed groups (issue 15, part 3): which runs group, their statistics, the band drawing, and the runs
list / dashboard / compare in the app."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from textual.widgets import DataTable

from tuiLM.groups import (GroupValue, counted, group_runs, group_state, group_value, membership)
from tuiLM.tui.app import make_app
from tuiLM.tui.rundata import RunData
from tuiLM.tui.screens.dashboard import DashboardScreen
from tuiLM.tui.screens.runs import POINT_AT, RunsScreen, on_point
from tuiLM.tui.seedgroup import SeedGroupData, seed_band
from tuiLM.tui.widgets.plot import Fill, Frame, Trace, render_plot, tint

from .fixtures.fixture_runs import FIXED_NOW, write_run
from .test_tui_app import aio, wait_for


def _runs(tmp_path: Path) -> Path:
    root = tmp_path / "runs"
    for i in range(3):  # one configuration, three seeds
        write_run(root, f"base-s{i}", "gpt", seed=3 + i, run_seed=100 + i)
    for i in range(3):  # another learning rate, the same three seeds
        write_run(root, f"hot-s{i}", "gpt", seed=3 + i, run_seed=100 + i, lr=6e-3)
    write_run(root, "repeat", "gpt", seed=9, run_seed=100)  # seed 100 of the base again: a repeat
    return root


# -- grouping ---------------------------------------------------------------------------------------

def test_plain_runs_group_by_configuration_and_each_seed_once(tmp_path):
    from tuiLM.runs import list_runs

    root = _runs(tmp_path)
    paths = list_runs(root)  # newest first: the repeat of seed 100, written last, is the odd one out
    members = {p: membership(p) for p in paths}
    groups = {tuple(sorted(p.name for p in g.members)) for g in group_runs(paths, members)}
    assert groups == {("base-s0", "base-s1", "base-s2"), ("hot-s0", "hot-s1", "hot-s2"), ("repeat",)}
    base = next(g for g in group_runs(paths, members) if g.k == 3 and "base" in g.members[0].name)
    assert base.seeds == [100, 101, 102] and base.label == "gpt-small"
    # a label, a cadence or a machine knob does not split a group; a setting does
    run = root / "base-s1"
    text = (run / "preset.toml").read_text()
    (run / "preset.toml").write_text(text.replace('name = "gpt-small"', 'name = "renamed"')
                                     .replace("every = 100", "every = 7"))
    assert membership(run).key == membership(root / "base-s0").key
    (run / "preset.toml").write_text(text.replace("n_layers = 4", "n_layers = 3"))
    assert membership(run).key != membership(root / "base-s0").key
    # a DDP run (torchrun --nproc 2: twice the tokens a step) is not a seed of the one-process runs
    (run / "preset.toml").write_text(text)
    events = run / "events.jsonl"
    lines = events.read_text().splitlines(keepends=True)
    assert '"world_size":1' in lines[0]
    events.write_text(lines[0].replace('"world_size":1', '"world_size":2') + "".join(lines[1:]))
    m = membership(run)
    assert m.key != membership(root / "base-s0").key and m.label == "gpt-small ×2 procs"


def test_runs_whose_preset_cannot_be_read_are_never_grouped(tmp_path):
    """A missing, empty, cut-short or FIFO preset.toml says nothing of the configuration: such runs are
    each a group of their own (they once formed one group of three with one 'mean')."""
    import os

    from tuiLM.runs import list_runs

    root = _runs(tmp_path)
    for name, how in (("repeat", "missing"), ("hot-s0", "empty"), ("hot-s1", "cut"), ("hot-s2", "fifo")):
        preset = root / name / "preset.toml"
        text = preset.read_text()
        preset.unlink()
        if how == "empty":
            preset.write_text("")
        elif how == "cut":
            preset.write_text(text[: len(text) // 2] + "[[[")
        elif how == "fifo":
            os.mkfifo(preset)  # a reader that opened it would block forever
    paths = list_runs(root)
    groups = group_runs(paths, {p: membership(p) for p in paths})
    assert sorted(g.k for g in groups) == [1, 1, 1, 1, 3]


def test_study_runs_group_by_trial(tmp_path):
    root = _runs(tmp_path)
    for i, name in enumerate(["base-s0", "base-s1"]):
        (root / name / "study.json").write_text(json.dumps({"study": "lr", "trial": 4, "seed_index": i}))
    m0, m1, m2 = (membership(root / n) for n in ("base-s0", "base-s1", "base-s2"))
    assert m0.key == m1.key == "study:lr#4" and m0.label == "#4 lr"
    assert m2.key != m0.key  # the same configuration outside the study is not the trial's seed


def test_group_value_text_state_and_counted():
    g = group_value([5.5537, 5.6248, 5.5483])
    assert g.k == 3 and g.mean == pytest.approx(5.575600, abs=1e-6)
    # sd = sqrt((0.0219² + 0.0492² + 0.0273²) / 2) = 0.04269, SE = sd / sqrt(3) = 0.02465: two
    # significant figures, and the mean to the same place
    assert g.se == pytest.approx(0.02465, abs=1e-5) and g.text() == "5.576±.025"
    assert GroupValue(5.1077, 0.00924, 3, ()).text() == "5.1077±.0092"
    assert group_value([None, 2.0]).text() == "2.0000" and group_value([]).text() == "—"
    assert group_value([3.0, 3.50, 3.52, 3.49]).lucky == (0,)  # one seed far below tight siblings
    assert group_state(["completed", "running", "failed"]) == "running"
    assert group_state(["completed", "failed"]) == "failed" and group_state(["completed"] * 2) == "completed"
    assert counted(["completed", "failed", "completed"], [1.0, 0.5, 2.0]) == [1.0, None, 2.0]
    assert counted(["running", "running"], [1.0, 2.0]) == [1.0, 2.0]  # live: what there is


def test_seed_band_minmax_and_se():
    grid = np.array([[1.0, 2.0, np.nan], [3.0, 4.0, 5.0], [2.0, 3.0, np.nan]])
    mean, lo, hi, n = seed_band(grid, "minmax")
    assert mean.tolist() == [2.0, 3.0, 5.0] and lo.tolist() == [1.0, 2.0, 5.0] and hi.tolist() == [3.0, 4.0, 5.0]
    assert n.tolist() == [3, 3, 1]
    mean, lo, hi, n = seed_band(grid, "se")
    assert hi[0] - mean[0] == pytest.approx(1.0 / math.sqrt(3))  # sd 1, k 3
    assert lo[2] == hi[2] == 5.0  # one seed: no band


def test_a_fill_tints_the_cells_between_its_edges():
    x = np.arange(50.0)
    frame = Frame([Trace(x, np.full(50, 5.0), "#4ea1ff")], fills=(Fill(x, np.full(50, 4.0), np.full(50, 6.0), "#4ea1ff"),),
                  yrange=(0.0, 10.0))
    strips = render_plot(frame, 60, 21)
    want = tint("#4ea1ff")

    def tinted(strip):
        return any(seg.style is not None and seg.style.bgcolor is not None
                   and seg.style.bgcolor.name.lower() == want for seg in strip)
    rows = [i for i, s in enumerate(strips[:-1]) if tinted(s)]
    assert rows, "no tinted cells"
    # values 4..6 on a 0..10 axis of 20 rows: a band about 4 rows high around the middle, not the edges
    assert 2 <= len(rows) <= 6 and min(rows) > 5 and max(rows) < 15
    plain = render_plot(Frame(frame.traces, yrange=(0.0, 10.0)), 60, 21)
    assert not any(tinted(s) for s in plain)


def test_group_aggregate_is_the_mean_of_the_members_with_their_range(tmp_path):
    root = _runs(tmp_path)
    loaders = [RunData(root / f"base-s{i}") for i in range(3)]
    for m in loaders:
        while m.poll():
            pass
    members = [m.snapshot() for m in loaders]
    g = SeedGroupData("base", members)
    agg = g.aggregate("train", "loss", "step", None, "minmax")
    ys = np.vstack([m.xy("train", "loss")[1] for m in members])
    assert np.allclose(agg.mean, ys.mean(axis=0)) and np.allclose(agg.lo, ys.min(axis=0))
    assert np.allclose(agg.hi, ys.max(axis=0)) and (agg.n == 3).all()
    smooth = g.aggregate("train", "loss", "step", 0.9, "minmax")  # smoothed per member, then averaged
    want = np.mean([m.ema("train", "loss", m.xy("train", "loss")[1], 0.9) for m in members], axis=0)
    assert np.allclose(smooth.mean, want)
    assert g.aggregate("train", "loss", "step", None, "minmax") is agg  # cached until a table moves


def test_a_groups_last_loss_and_curves_are_the_mean_over_the_seeds_it_counts(tmp_path):
    """A seed that failed early has its loss at step 120: the group's loss row (as its best bpb) is the
    completed seeds' mean, and every seed's while none has completed."""
    root = _runs(tmp_path)
    write_run(root, "base-fail", "failed", seed=6, run_seed=103)
    loaders = [RunData(root / n) for n in ("base-s0", "base-s1", "base-fail")]
    for m in loaders:
        while m.poll():
            pass
    members = [m.snapshot() for m in loaders]
    lasts = [m.last("train", "loss") for m in members]
    assert members[2].state == "failed" and lasts[2] != lasts[0]
    assert SeedGroupData("base", members).last("train", "loss") == pytest.approx((lasts[0] + lasts[1]) / 2)
    assert SeedGroupData("failed", members[2:]).last("train", "loss") == pytest.approx(lasts[2])
    # the curve is the same seeds' mean: it ends at the loss row's value, and the failed seed's early
    # steps do not shift it (the mean line changed its seeds where the failed one stopped)
    agg = SeedGroupData("base", members).aggregate("train", "loss", "step", None, "minmax")
    ys = np.vstack([m.xy("train", "loss")[1] for m in members[:2]])
    assert (agg.n == 2).all() and np.allclose(agg.mean, ys.mean(axis=0))
    assert agg.mean[-1] == pytest.approx(SeedGroupData("base", members).last("train", "loss"))


# -- in the app -------------------------------------------------------------------------------------

def _cell(table: DataTable, row_key: str, col: str) -> str:
    v = table.get_cell(row_key, col)
    return getattr(v, "plain", str(v))


@aio
async def test_runs_list_shows_a_group_as_one_row_that_expands_and_opens_as_a_band(tmp_path):
    root = _runs(tmp_path)
    app = make_app(runs_root=root, now=lambda: FIXED_NOW)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("2")
        await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen) and app.screen.refreshes > 0, timeout=30, what="runs")
        screen = app.screen
        table = screen.query_one(DataTable)
        assert len(screen.groups) == 2 and table.row_count == 3  # two groups and the repeat
        key = next(k for k, g in screen.groups.items() if "base-s0" in {p.name for p in g.group.members})
        g = screen.groups[key]
        bests = [m.summary.best_val_bpb for m in g.members]
        assert _cell(table, key, "bpb") == on_point(group_value(bests).text())
        assert {_cell(table, k, "bpb").index(".") for k in screen._order} == {POINT_AT - 1}  # one decimal column
        assert "3 seeds" in _cell(table, key, "state")
        table.move_cursor(row=screen._order.index(key))
        await pilot.press("e")
        assert table.row_count == 6 and "seed 100" in _cell(table, str(g.members[0].path), "run")
        await pilot.press("e")
        assert table.row_count == 3
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, DashboardScreen) and app.screen.ready, timeout=30, what="group")
        dash = app.screen
        assert len(dash.sources) == 1 and isinstance(dash.sources[0], SeedGroupData)
        loss = dash.query_one("#panel-loss")
        assert loss.frame.fills and len(loss.frame.traces) == 1  # one mean line over one band
        before = loss.frame.fills[0].hi - loss.frame.fills[0].lo
        await pilot.press("b")  # min–max -> ± SE: a narrower band
        await wait_for(pilot, lambda: dash.band == "se" and dash.ready, timeout=30, what="SE band")
        after = dash.query_one("#panel-loss").frame.fills[0]
        assert np.all(after.hi - after.lo <= before + 1e-12) and np.any(after.hi - after.lo < before)


@aio
async def test_compare_two_groups_judges_them_seed_by_seed(tmp_path):
    from tuiLM.study.stats import compare
    from tuiLM.tui.widgets.difftable import DiffTable, short_verdict

    root = _runs(tmp_path)
    app = make_app(runs_root=root, now=lambda: FIXED_NOW)
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.press("2")
        await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen) and app.screen.refreshes > 0, timeout=30, what="runs")
        screen = app.screen
        table = screen.query_one(DataTable)
        keys = [k for k in screen._order if k in screen.groups]
        for k in keys:
            table.move_cursor(row=screen._order.index(k))
            await pilot.press("space")
        await pilot.press("c")
        await wait_for(pilot, lambda: isinstance(app.screen, DashboardScreen) and app.screen.ready, timeout=30, what="compare")
        dash = app.screen
        assert all(isinstance(s, SeedGroupData) for s in dash.sources) and len(dash.sources) == 2
        diff = dash.query_one(DiffTable)
        rows = {str(diff.get_cell_at((r, 0))).strip(): r for r in range(diff.row_count)}
        assert {"best bpb", "seeds", "per seed", "vs first", "optim.lr"} <= set(rows)
        assert "run.seed" not in rows  # groups: the seed is not a setting
        a, b = dash.sources
        want = short_verdict(compare(b.best_values(), a.best_values(), [100, 101, 102], [100, 101, 102]))
        assert want.endswith(" k=3")  # paired over the 3 shared seeds
        assert str(diff.get_cell_at((rows["vs first"], 2))).startswith(want[:20])


def test_cli_runs_list_prints_the_seed_groups(tmp_path):
    from rich.console import Console

    from tuiLM.report import print_runs_list
    from tuiLM.reader import summarize

    root = _runs(tmp_path)
    console = Console(record=True, width=120)
    print_runs_list(console, root)
    out = console.export_text()
    assert "seed groups (2)" in out
    bests = [summarize(root / f"hot-s{i}").best_val_bpb for i in range(3)]
    line = next(l for l in out.splitlines() if group_value(bests).text() in l)
    assert "100 101 102" in line and " 3 " in line  # the seeds and k


def test_a_verdict_fits_the_column_two_groups_get_at_80_columns():
    """'better 5.3 % (p<0.001, paired k=3)' was cut to 29 cells in the compare table at 80 columns."""
    from tuiLM.study.stats import compare
    from tuiLM.tui.widgets.difftable import short_verdict

    cases = [compare([1.0, 1.1, 1.2], [1.1, 1.2, 1.3]),  # better, p < 0.001 (identical differences)
             compare([1.0, 1.2, 1.1, 1.05, 1.3, 0.9, 1.0, 1.1, 1.2, 1.15], [1.1] * 10, list(range(10)), list(range(10, 20))),
             compare([1.0, 1.02, 0.98], [1.01, 1.0, 1.0]),  # seed noise
             compare([2.0, 2.4, 2.2], [1.0, 1.3, 1.1], [1, 2, 3], [4, 5, 6])]  # Welch, worse by 110 %
    said = [short_verdict(c) for c in cases]
    assert said[0] == "better 8.3 % p<0.001 k=3" and said[3].endswith(" Welch") and said[2].startswith("seed noise")
    assert max(len(x) for x in said) <= 29, said



def test_a_verdict_tightens_before_it_is_cut_in_a_narrower_column():
    """Three groups at 80 columns get about 14 cells: 'worse 50 % p=0.…' and 'one seed: canno…'
    were cut; the method goes first, then the numbers tighten, and the verdict word always stays."""
    from tuiLM.tui.widgets.difftable import fit_verdicts

    def fit_verdict(text: str, width: int) -> str:  # one cell
        return fit_verdicts([text], width)[0]

    assert fit_verdict("worse 50 % p=0.04 k=3", 29) == "worse 50 % p=0.04 k=3"  # room: as it was
    assert fit_verdict("worse 50 % p=0.04 k=3", 17) == "worse 50 % p=0.04"
    assert fit_verdict("worse 50 % p=0.04 k=3", 15) == "worse 50% p=.04"
    assert fit_verdict("one seed: cannot tell", 14) == "1 seed"
    assert fit_verdict("seed noise p=0.41 k=3", 14) == "noise p=.41"
    assert fit_verdict("better 8.3 % p<0.001 Welch", 14).startswith("better 8.3%")
    assert fit_verdict("worse 47 % p=0.042 k=3", 15) == "worse 47% p=.04"  # was cut: "worse 47% p=.0…"
    # a row of verdicts tightens alike: "worse 8.3% p<.001" beside "worse 16 % p=0.003 k=3" read as two formats
    assert fit_verdicts(["", "worse 8.3 % p<0.001 k=3", "worse 16 % p=0.003 k=3"], 18) == \
        ["", "worse 8.3% p<.001", "worse 16% p=.003"]


@aio
async def test_three_groups_at_80_columns_name_settings_by_key_and_cut_no_figure(tmp_path):
    """Three trials' seed groups at 80x24 (`tuilm open study:NAME`): the table named settings in full
    (model.n_layers took a third of the width), cut "2.813±.029 (k=…" and "worse 47% p=.0…"."""
    import shutil

    from tuiLM.tui.widgets.difftable import DiffTable

    root = tmp_path / "runs"
    shutil.copytree(Path(__file__).parent / "fixtures" / "study" / "runs", root)
    sources = [(f"#{t} fixture", sorted(root.glob(f"fixture-t00{t}-s*"))) for t in (5, 0, 1)]
    app = make_app(runs_root=root, now=lambda: FIXED_NOW, sources=sources)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, DashboardScreen) and app.screen.ready, timeout=60,
                       what="compare")
        diff = app.screen.query_one(DiffTable)
        rows = {str(diff.get_cell_at((r, 0))).strip(): [str(diff.get_cell_at((r, c))) for c in (1, 2, 3)]
                for r in range(diff.row_count)}
    assert {"n_layers", "lr", "weight_decay"} <= set(rows) and "model.n_layers" not in rows, rows
    for key in ("best bpb", "vs first"):
        assert not any(v.rstrip().endswith("…") for v in rows[key]), rows[key]
    assert rows["vs first"][1].startswith(("better", "worse", "noise")) and "p" in rows["vs first"][1]


# -- naming sets on the command line: study:NAME, study:NAME#T, group:RUN ---------------------------

def _study_runs(tmp_path: Path) -> Path:
    root = _runs(tmp_path)
    for trial, prefix in ((0, "base"), (1, "hot")):
        for i in range(3):
            (root / f"{prefix}-s{i}" / "study.json").write_text(json.dumps(
                {"study": "lr", "trial": trial, "seed_index": i, "params": {"optim.lr": 0.006 if trial else 0.003}}))
    return root


def test_set_refs_name_trials_groups_and_runs(tmp_path):
    from tuiLM.groups import member_runs, resolve_ref, resolve_refs
    from tuiLM.runs import RunError

    root = _study_runs(tmp_path)
    trials = resolve_ref("study:lr", root)
    assert [s.label for s in trials] == ["#0 lr", "#1 lr"] and all(s.kind == "trial" for s in trials)
    assert [p.name for p in trials[1].members] == ["hot-s0", "hot-s1", "hot-s2"]
    assert trials[1].seeds == (100, 101, 102) and trials[1].trial_params == (("optim.lr", 0.006),)
    (one,) = resolve_ref("study:lr#1", root)
    assert one.members == trials[1].members and resolve_ref("study:lr#t1", root)[0].members == one.members
    (group,) = resolve_ref("group:repeat", root)  # a repeat of seed 100 is a group of its own
    assert group.kind == "group" and [p.name for p in group.members] == ["repeat"]
    (run,) = resolve_ref("hot-s2", root)
    assert not run.is_set and run.members == (root / "hot-s2",)
    # every member once, in the order named (export)
    named = member_runs(resolve_refs(["hot-s1", "study:lr#1", "study:lr#0"], root))
    assert [p.name for p in named] == ["hot-s1", "hot-s0", "hot-s2", "base-s0", "base-s1", "base-s2"]
    for ref, said in (("study:nope", "no runs of study 'nope' in"), ("study:lr#7", "has no trial 7"),
                      ("study:lr#x", "a trial is a number"), ("group:missing", "no run 'missing'")):
        with pytest.raises(RunError, match=said):
            resolve_ref(ref, root)


@aio
async def test_a_group_with_a_failed_seed_reads_as_what_its_seeds_did(tmp_path):
    """One failed seed of four made the whole group read "✗ 4 seeds" with the failed seed's 120/400
    steps in the runs list, and "failed" in `runs compare`, beside a mean over three completed seeds."""
    from rich.console import Console

    from tuiLM.groups import resolve_ref
    from tuiLM.report import print_set_compare

    root = _runs(tmp_path)
    write_run(root, "base-fail", "failed", seed=6, run_seed=103)
    app = make_app(runs_root=root, now=lambda: FIXED_NOW)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("2")
        await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen) and app.screen.refreshes > 0, timeout=30,
                       what="runs")
        table = app.screen.query_one(DataTable)
        key = next(k for k, g in app.screen.groups.items() if "base-fail" in {p.name for p in g.group.members})
        assert _cell(table, key, "state").strip() == "✓3 ✗1"
        assert _cell(table, key, "step").strip() == "400/400"
        from tuiLM.tui.screens.runrows import sparkline  # the trend too: the completed seeds' (review)

        g = app.screen.groups[key]
        done = [m.trend for m in g.members if m.summary.state == "completed"]
        want = sparkline([sum(c) / len(c) for c in zip(*done)], app.screen._trend_w)
        assert _cell(table, key, "trend").strip() == want.strip()
    console = Console(record=True, width=120)
    print_set_compare([*resolve_ref("group:base-fail", root), *resolve_ref("group:hot-s0", root)], console)
    out = console.export_text()
    assert "3 completed, 1 failed" in out, out


def test_runs_show_of_a_group_gives_its_last_mhc_diagnostics_and_the_lucky_seed(tmp_path):
    """Seed 000: stream_similarity 0.087 was a lucky run, the same configuration gave 0.37-0.52 after.
    `runs show group:` judged val_bpb only; the last diagnostics get mean ± SE, each seed's value, and
    the seed beyond seed noise."""
    from rich.console import Console

    from tuiLM.groups import resolve_ref
    from tuiLM.report import print_set
    from tuiLM.study.stats import mean_se

    root = tmp_path / "runs"
    sims = [0.45, 0.41, 0.48, 0.087, 0.44]
    for i, sim in enumerate(sims):
        run = write_run(root, f"v1-s{i}", "mhc", seed=i, run_seed=i)
        lines = (run / "events.jsonl").read_text().splitlines()
        last = max(j for j, line in enumerate(lines) if '"kind":"diag"' in line.replace(" ", ""))
        ev = json.loads(lines[last])
        lines[last] = json.dumps({**ev, "stream_similarity": sim})
        (run / "events.jsonl").write_text("\n".join(lines) + "\n")
    (s,) = resolve_ref("group:v1-s0", root)
    console = Console(record=True, width=160)
    print_set(s, console)
    out = console.export_text()
    (row,) = [line for line in out.splitlines() if line.strip().startswith("stream_similarity")]
    mean, se = mean_se(sims)
    assert f"{mean:.2f}" in row and "(k=5)" in row and "0.087 " in row and "seed 3" in row, out
    assert any(line.strip().startswith("gate_value") for line in out.splitlines())


def test_the_apps_group_compare_table_has_a_stream_similarity_row(tmp_path):
    """The compare table of mHC seed groups gives each group's last stream_similarity as mean ± SE over
    its counted seeds, beside its best bpb (seed 000 judges configurations by both)."""
    from tuiLM.tui.widgets.difftable import group_rows

    root = tmp_path / "runs"
    groups = []
    for name, lr in (("a", None), ("b", 6e-3)):
        snaps = []
        for i in range(3):
            m = RunData(write_run(root, f"{name}-s{i}", "mhc", seed=i, run_seed=i, lr=lr))
            while m.poll():
                pass
            snaps.append(m.snapshot())
        groups.append(SeedGroupData(name, snaps))
    rows = dict(group_rows(groups))
    want = [group_value([m.last("diag", "stream_similarity") for m in g.members]).text() for g in groups]
    assert rows["stream sim"] == want and all(w != "—" for w in want)
    gpt = [RunData(write_run(root, f"g-s{i}", "gpt", seed=i, run_seed=i)) for i in range(2)]
    for m in gpt:
        while m.poll():
            pass
    assert "stream sim" not in dict(group_rows([SeedGroupData("g", [m.snapshot() for m in gpt])]))


@aio
async def test_a_group_of_many_states_fits_its_counts_in_the_state_column(tmp_path):
    """Ten completed seeds, one failed, one stopped, one dead: ' ✓10 ✗1 ✗1 ■1' is 14 cells and the column
    12: the last count was cut. Packed without spaces, every count shows."""
    root = tmp_path / "runs"
    for i, end in enumerate(("completed",) * 10 + ("failed", "stopped", "running")):
        write_run(root, f"m-s{i}", "gpt", seed=i, run_seed=i, end=None if end == "completed" else end,
                  steps=None if end == "completed" else 120)
    app = make_app(runs_root=root, now=lambda: FIXED_NOW)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("2")
        await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen) and app.screen.refreshes > 0, timeout=30,
                       what="runs")
        (key,) = app.screen.groups
        cell = _cell(app.screen.query_one(DataTable), key, "state")
        assert len(cell) <= 12 and cell.strip() == "✓10✗1✗1■1", cell


def test_cli_shows_and_compares_study_trials_as_seed_groups(tmp_path):
    from rich.console import Console

    from tuiLM.groups import resolve_ref
    from tuiLM.reader import summarize
    from tuiLM.report import print_set, print_set_compare
    from tuiLM.study.stats import compare

    root = _study_runs(tmp_path)
    base, hot = resolve_ref("study:lr", root)
    console = Console(record=True, width=100)
    print_set(hot, console)
    out = console.export_text()
    bests = [summarize(p).best_val_bpb for p in hot.members]
    assert f"best val_bpb {group_value(bests).text()} (mean ± SE over 3 seeds)" in out
    assert "params: optim.lr=0.006" in out and "hot-s1" in out
    assert "run.seed" not in out and "run.name" not in out  # a group's settings, not its first seed's
    console = Console(record=True, width=100)
    print_set_compare([base, hot], console)
    out = console.export_text()
    base_bests = [summarize(p).best_val_bpb for p in base.members]
    want = compare(bests, base_bests, [100, 101, 102], [100, 101, 102]).verdict
    assert f"#1 vs #0: {want}" in " ".join(out.split()) and "paired over 3 seeds" in want
    assert "trials of study lr compared" in out and "each against #0, the first named" in out
    assert "optim.lr" in out and "run.seed" not in out
    assert group_value(base_bests).text() in out and group_value(bests).text() in out


def test_group_ref_takes_a_prefix_that_only_one_groups_runs_share(tmp_path):
    """group:tiny-v3, the label the runs list shows, was refused: "matches several runs", all of them of
    the one group it names. A prefix across two groups is still refused."""
    from tuiLM.groups import resolve_ref
    from tuiLM.runs import RunError

    root = _runs(tmp_path)
    (hot,) = resolve_ref("group:hot", root)
    assert {p.name for p in hot.members} == {"hot-s0", "hot-s1", "hot-s2"} and hot.kind == "group"
    write_run(root, "hotter", "gpt", seed=3, run_seed=100, lr=1e-2)  # another configuration, also "hot…"
    with pytest.raises(RunError, match="several"):
        resolve_ref("group:hot", root)
    assert len(resolve_ref("group:hot-s", root)[0].members) == 3


def test_cli_set_refs_end_to_end(tmp_path):
    import subprocess
    import sys

    root = _study_runs(tmp_path)
    env = {**__import__("os").environ, "TUILM_RUNS_DIR": str(root), "COLUMNS": "100"}

    def tuilm(*args):
        return subprocess.run([sys.executable, "-m", "tuiLM.cli", *args], env=env, capture_output=True, text=True,
                              timeout=120, stdin=subprocess.DEVNULL)

    r = tuilm("runs", "compare", "study:lr#0", "study:lr#1")
    assert r.returncode == 0 and "trials of study lr compared" in r.stdout and "#1 vs #0:" in r.stdout, r.stderr
    r = tuilm("runs", "compare", "study:lr#0", "base-s2")
    assert r.returncode == 2 and "base-s2 is one of the runs of #0 lr" in r.stderr
    write_run(root, "other", "gpt", seed=5, run_seed=200, lr=1e-3)
    r = tuilm("runs", "compare", "study:lr#0", "study:lr#1", "group:repeat", "other")  # a row per group from 4
    assert r.returncode == 0 and "seed groups compared" in r.stdout and "other vs #0 lr:" in r.stdout, r.stderr
    assert "0.006" in r.stdout and "0.001" in r.stdout  # the lr column, short
    r = tuilm("runs", "show", "study:lr")
    assert r.returncode == 2 and "names a whole study (2 trials)" in r.stderr and "Traceback" not in r.stderr
    r = tuilm("runs", "compare", "study:lr#1", "group:hot-s2")
    assert r.returncode == 2 and "#1 lr is named twice" in r.stderr
    r = tuilm("runs", "show", "group:hot-s0")
    assert r.returncode == 0 and "seed group" in r.stdout and "hot-s2" in r.stdout
    r = tuilm("export", "study:lr#1", "--to", "csv", str(tmp_path / "csv"))
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in (tmp_path / "csv").iterdir()) == ["hot-s0.csv", "hot-s1.csv", "hot-s2.csv"]
    import csv  # the group's CSVs concatenate into one long table by run and seed (as a W&B export)

    rows = [r for f in sorted((tmp_path / "csv").iterdir()) for r in csv.DictReader(f.open())]
    assert {(r["run"], r["seed"]) for r in rows} == {("hot-s0", "100"), ("hot-s1", "101"), ("hot-s2", "102")}
    r = tuilm("export", "study:nope", "--to", "csv", str(tmp_path / "csv2"))
    assert r.returncode != 0 and "no runs of study 'nope'" in r.stderr and not (tmp_path / "csv2").exists()


@aio
async def test_open_study_trials_in_the_app_as_seed_groups(tmp_path):
    """`tuilm open study:lr#0 study:lr#1` (cli.open_run builds these sources): each trial is drawn as its
    mean and band, and compared as a group."""
    from tuiLM.groups import resolve_refs

    root = _study_runs(tmp_path)
    sets = resolve_refs(["study:lr#0", "study:lr#1", "repeat"], root)
    app = make_app(runs_root=root, now=lambda: FIXED_NOW, sources=[(s.label, list(s.members)) for s in sets])
    async with app.run_test(size=(160, 48)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, DashboardScreen) and app.screen.ready, timeout=30,
                       what="the compare view")
        a, b, c = app.screen.sources
        assert isinstance(a, SeedGroupData) and [m.path.name for m in b.members] == ["hot-s0", "hot-s1", "hot-s2"]
        assert not isinstance(c, SeedGroupData) and c.path.name == "repeat"  # a run alone stays a run


def test_cli_names_how_to_address_a_group_and_a_group_of_one(tmp_path):
    from rich.console import Console

    from tuiLM.groups import resolve_ref
    from tuiLM.report import print_runs_list, print_set

    root = _runs(tmp_path)
    console = Console(record=True, width=80)
    print_runs_list(console, root)
    assert "name a group as group:RUN (any of its runs) or study:NAME#T" in console.export_text()
    console = Console(record=True, width=80)
    print_set(resolve_ref("group:repeat", root)[0], console)
    assert "a group of one: no other run in its folder" in console.export_text()


def test_a_lucky_seed_after_an_uncounted_one_is_named_right():
    """group_value's lucky indices are into the values given, None ones included: the runs list, the
    compare table and the CLI looked them up among the counted values only, so a failed first seed
    named the wrong run as lucky (or raised IndexError for the last one)."""
    from tuiLM.groups import RunSet, SeedGroup
    from tuiLM.reader import RunSummary
    from tuiLM.report import _lucky
    from tuiLM.tui.screens.runrows import RunRow, make_group_row

    bests = [None, 5.10, 5.11, 5.12, 5.105, 5.115, 4.0]  # the first failed; the last is far below the rest
    paths = [Path(f"/r/s{i}") for i in range(7)]
    rows = {p: RunRow(p, RunSummary(p, state="failed" if i == 0 else "completed", best_val_bpb=b), "p", "gpt")
            for i, (p, b) in enumerate(zip(paths, bests))}
    values = counted([rows[p].summary.state for p in paths], bests)
    assert group_value(values).lucky == (6,)
    row = make_group_row(SeedGroup("k", "g", paths, list(range(100, 107))), rows)
    assert row.lucky == {"/r/s6"}
    s = RunSet("g", tuple(paths), tuple(range(100, 107)), "group")
    assert _lucky(s, group_value(values)) == "seed 106"


def test_set_refs_refuse_lookalikes_and_tell_two_tiny_groups_apart(tmp_path):
    from tuiLM.groups import resolve_ref, resolve_refs
    from tuiLM.runs import RunError

    root = _study_runs(tmp_path)
    for ref, said in (("Study:lr", "sets of runs are named study:NAME"), ("study:lr#²", "a trial is a number"),
                      ("study:", "names nothing: study:NAME#T"),
                      ("study:lr#9", "trials with runs: 0, 1")):
        with pytest.raises(RunError, match=said):
            resolve_ref(ref, root)
    plain = _runs(tmp_path / "plain")  # base and hot: two configurations, both labelled gpt-small
    a, b = resolve_refs(["group:base-s0", "group:hot-s0"], plain)
    assert a.label != b.label and a.label.startswith("gpt-small (") and b.label.startswith("gpt-small (")
    import os

    here = os.getcwd()
    os.chdir(plain / "hot-s1")
    try:  # group:. from inside a run folder: its siblings are in the folder above
        (g,) = resolve_ref("group:.", plain)
    finally:
        os.chdir(here)
    assert [p.name for p in g.members] == ["hot-s0", "hot-s1", "hot-s2"]


def test_a_study_name_used_twice_splits_a_trial_by_repeated_seed(tmp_path):
    import shutil

    from tuiLM.groups import resolve_ref

    root = _study_runs(tmp_path)
    shutil.copytree(root / "base-s0", root / "base-s0-again")  # trial 0, seed 100 run a second time
    first, again = resolve_ref("study:lr#0", root)
    assert first.label == "#0 lr" and again.label == "#0 lr (2)"
    assert sorted(p.name for p in first.members + again.members) == ["base-s0", "base-s0-again", "base-s1",
                                                                     "base-s2"]
    assert len(set(first.seeds)) == len(first.seeds)  # each seed once per set: pairing stays one to one

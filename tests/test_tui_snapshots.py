"""Snapshot tests (pytest-textual-snapshot): the preset editor; at 80x24 and 160x48 the dashboard of
a GPT run, an mHC run and a frozen mHC run, the compare view of three runs, and the runs list. Deterministic: fixed sizes, generated fixture runs with a fixed clock, a fixed 'now'
and a fixed estimate (the estimator's numbers are its own tests' business).
Update after an intended change with: pytest tests/test_tui_snapshots.py --snapshot-update
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tuiLM.tui import services
from tuiLM.tui.app import make_app
from tuiLM.tui.screens.dashboard import DashboardScreen

from .conftest import ROOT
from .fixtures.fixture_runs import FIXED_NOW, write_run

FIXED_ESTIMATE = services.EstimateView(
    params=3_421_184, parts={"weights": 13_684_736, "grads": 13_684_736, "optimizer": 27_369_472,
                             "activations": 402_653_184, "mhc": 100_663_296, "overhead": 268_435_456},
    total_bytes=826_490_880, artifact_bytes=3_563_520, device="cuda", dtype="bf16", tokens_per_step=4096)


def _wait(cond, pilot, what, timeout=30.0):
    async def run():
        t0 = time.monotonic()
        while not cond():
            assert time.monotonic() - t0 < timeout, f"timed out waiting for {what}"
            await pilot.pause(0.05)
    return run()


def test_snapshot_preset_editor(snap_compare, monkeypatch):
    monkeypatch.chdir(ROOT)
    monkeypatch.setattr(services, "estimate", lambda preset: FIXED_ESTIMATE)
    monkeypatch.setattr(services, "machine_warnings", lambda preset: [])  # this machine's memory: not in a snapshot
    app = make_app(preset_path="tests/fixtures/snapshot-preset.toml", runs_root=ROOT / "tests" / "fixtures",
                   now=lambda: FIXED_NOW)

    async def run_before(pilot):
        await _wait(lambda: getattr(app.screen, "estimate", None) is not None, pilot, "estimate")
        app.screen.set_focus(None)
        await pilot.pause(0.2)
        app.screen.query_one("#form").scroll_home(animate=False)  # focus may have scrolled it
        await pilot.pause(0.2)

    assert snap_compare(app, terminal_size=(120, 40), run_before=run_before)


def _dashboard_ready(app):
    return isinstance(app.screen, DashboardScreen) and app.screen.ready


SIZES = [(80, 24), (160, 48)]
DASHBOARDS = {"gpt": ("gpt-small-fixture", "gpt", 0), "mhc": ("mhc-v3-fixture", "mhc", 0),
              "frozen": ("mhc-v5-frozen", "mhc-frozen", 1)}


async def _settle(pilot, app, cond, what):
    await _wait(cond, pilot, what)
    app.screen.set_focus(None)
    await pilot.pause(0.3)
    await _wait(cond, pilot, what)  # the footer recomposes after the focus change
    await pilot.pause(0.2)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("which", list(DASHBOARDS))
def test_snapshot_dashboard(snap_compare, tmp_path, which, size):
    name, kind, seed = DASHBOARDS[which]
    run = write_run(tmp_path / "runs", name, kind, seed=seed)
    app = make_app(run_dir=run, runs_root=tmp_path / "runs", now=lambda: FIXED_NOW)

    async def run_before(pilot):
        await _settle(pilot, app, lambda: _dashboard_ready(app), "dashboard")

    assert snap_compare(app, terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_snapshot_compare_three_runs(snap_compare, tmp_path, size):
    runs = [write_run(tmp_path / "runs", name, kind, seed=seed) for name, kind, seed in DASHBOARDS.values()]
    app = make_app(run_dir=runs, runs_root=tmp_path / "runs", now=lambda: FIXED_NOW)

    async def run_before(pilot):
        await _settle(pilot, app, lambda: _dashboard_ready(app), "compare view")

    assert snap_compare(app, terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_snapshot_runs_list(snap_compare, tmp_path, monkeypatch, size):
    monkeypatch.chdir(tmp_path)  # the title shows the runs folder: relative, so the same every time
    for name, kind, seed in DASHBOARDS.values():
        write_run(tmp_path / "runs", name, kind, seed=seed)
    write_run(tmp_path / "runs", "gpt-crash", "failed", seed=2)
    for i in range(3):  # one configuration, three seeds: one row (mean ± SE), expanded at 160x48
        write_run(tmp_path / "runs", f"gpt-seeds-s{i}", "gpt", seed=3 + i, run_seed=100 + i)
    app = make_app(runs_root=Path("runs"), now=lambda: FIXED_NOW)

    async def run_before(pilot):
        await pilot.press("2")
        await _settle(pilot, app, lambda: getattr(app.screen, "refreshes", 0) > 0, "runs list")
        if size == (160, 48):
            screen = app.screen
            group = next(k for k in screen._order if k in screen.groups)
            screen.query_one("#runs-table").move_cursor(row=screen._order.index(group))
            await pilot.press("e")
            await pilot.pause(0.2)

    assert snap_compare(app, terminal_size=size, run_before=run_before)


def _study_view(tmp_path):
    import shutil

    from tuiLM.tui.screens.studies import StudiesScreen, StudyScreen

    shutil.copytree(ROOT / "tests" / "fixtures" / "study" / "runs", tmp_path / "runs")
    app = make_app(runs_root=tmp_path / "runs", now=lambda: FIXED_NOW)

    async def run_before(pilot):
        await pilot.press("3")
        await _wait(lambda: isinstance(app.screen, StudiesScreen) and app.screen.refreshes > 0, pilot, "studies",
                    timeout=180)  # the first read imports optuna and scipy
        await pilot.press("enter")
        await _wait(lambda: isinstance(app.screen, StudyScreen) and app.screen.refreshes > 0, pilot, "study view",
                    timeout=180)
        await pilot.pause(0.3)
        app.screen.set_focus(None)
        await pilot.pause(0.2)

    return app, run_before


def test_snapshot_study_view_80x24(snap_compare, tmp_path):
    app, run_before = _study_view(tmp_path)
    assert snap_compare(app, terminal_size=(80, 24), run_before=run_before)


def test_snapshot_study_view_160x48(snap_compare, tmp_path):
    app, run_before = _study_view(tmp_path)
    assert snap_compare(app, terminal_size=(160, 48), run_before=run_before)

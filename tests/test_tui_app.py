"""The Textual app driven by Pilot: preset editor, dashboards, compare view, run list, palette.

Fixture runs are generated (tests/fixtures/fixture_runs.py); the live test appends events itself.
The test that starts a real trainer is marked slow.
"""

from __future__ import annotations

import asyncio
import functools
import subprocess
import sys
import time

import pytest
from textual.widgets import DataTable, Input, OptionList, Select, Static

from tuiLM.events import EventWriter
from tuiLM.reader import read_events
from tuiLM.tui.app import make_app
from tuiLM.tui.screens.dashboard import DashboardScreen
from tuiLM.tui.widgets.difftable import SUMMARY_ROWS
from tuiLM.tui.screens.editor import PresetEditor
from tuiLM.tui.widgets.form import PresetForm
from tuiLM.tui.widgets.plot import PlotPanel

from .conftest import ROOT, TINY_GPT
from .fixtures.fixture_runs import FIXED_NOW, write_run

SIZE = (120, 40)


def aio(fn):
    """Run an async test with asyncio.run (no pytest-asyncio in this environment); keeps fixtures."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        return asyncio.run(fn(*args, **kwargs))
    return wrapper

PRESET_TEXT = """\
# My experiment: keep this comment
[run]
name = "exp"  # the run name

[model]
arch = "gpt"
# width of the residual stream
d_model = 256
n_heads = 4
n_layers = 2

[train]
max_steps = 100   # short
"""


async def wait_for(pilot, cond, timeout: float = 15.0, what: str = "condition") -> None:
    t0 = time.monotonic()
    while not cond():
        if time.monotonic() - t0 > timeout:
            raise AssertionError(f"timed out waiting for {what}")
        await pilot.pause(0.05)


def text_of(widget: Static) -> str:
    r = widget.render()
    return getattr(r, "plain", str(r))


async def type_into(pilot, inp: Input, text: str) -> None:
    inp.focus()
    await pilot.pause()
    inp.action_select_all()
    await pilot.press("backspace", *list(text))
    await pilot.pause()


def editor_app(tmp_path, text: str = PRESET_TEXT, **kw):
    """A preset file exp.toml with ``text``, and the app opened on it (the editor tests' set-up)."""
    path = tmp_path / "exp.toml"
    path.write_text(text)
    return path, make_app(preset_path=path, runs_root=tmp_path / "runs", **kw)


def test_importing_the_app_loads_no_torch():
    code = ("import sys, tuiLM.tui.app, tuiLM.tui.screens.dashboard, tuiLM.tui.services; "
            "bad = sorted(m for m in sys.modules if m == 'torch' or m.startswith('torch.')); "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


# -- preset editor -------------------------------------------------------------------------------

@aio
async def test_editor_validates_as_you_type_updates_the_estimate_and_saves_keeping_comments(tmp_path):
    path, app = editor_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        editor = app.screen
        assert isinstance(editor, PresetEditor)
        await wait_for(pilot, lambda: editor.estimate is not None, what="first estimate")
        params_before = editor.estimate.params

        d_model = editor.query_one("#f-model--d_model", Input)
        await type_into(pilot, d_model, "250")
        row = editor.query_one(PresetForm).row("model.d_model")
        msg = text_of(row.query_one(".field-msg", Static))
        assert "divisible by n_heads (4)" in msg and msg.startswith("✗")
        problems = editor.query_one("#problems", OptionList)
        assert any("model.d_model" in str(problems.get_option_at_index(i).prompt)
                   for i in range(problems.option_count))
        assert "1 error" in text_of(editor.query_one("#editor-title", Static))

        done = editor.estimates_done
        await type_into(pilot, d_model, "384")
        assert text_of(row.query_one(".field-msg", Static)) == ""
        await wait_for(pilot, lambda: editor.estimates_done > done and editor.estimate is not None
                       and editor.estimate.params != params_before, what="estimate update")
        assert editor.estimate.params > params_before  # wider model, more parameters

        await pilot.press("ctrl+s")
        await pilot.pause()
    saved = path.read_text()
    assert "# My experiment: keep this comment" in saved
    assert "# width of the residual stream" in saved and 'name = "exp"  # the run name' in saved
    assert "max_steps = 100   # short" in saved
    assert "d_model = 384" in saved and "d_model = 256" not in saved
    assert saved.replace("d_model = 384", "d_model = 256") == PRESET_TEXT  # only the changed key moved


@aio
async def test_editor_warns_live_when_the_estimate_exceeds_this_machine(tmp_path, monkeypatch):
    """The CLI's machine-memory warning (validate.machine_problems) in the form too: a machine
    reported to have 64 MiB of host RAM cannot hold this preset; 64 GiB can."""
    from tuiLM import machine

    mem = {"bytes": 64 * 2**20}
    monkeypatch.setattr(machine, "resolve_device", lambda pref: "cpu")
    monkeypatch.setattr(machine, "device_memory",
                        lambda device: machine.DeviceMemory("cpu", mem["bytes"], "host RAM"))
    _, app = editor_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        editor = app.screen
        await wait_for(pilot, lambda: editor.estimate is not None, what="first estimate")
        await wait_for(pilot, lambda: any(p.path == "system.device" for p in editor.problems),
                       what="machine warning")
        warning = next(p for p in editor.problems if p.path == "system.device")
        assert not warning.is_error and "exceeds this machine's host RAM (0.1 GiB)" in warning.message
        assert "tuilm run --force" in warning.message
        problems = editor.query_one("#problems", OptionList)
        assert any("system.device" in str(problems.get_option_at_index(i).prompt)
                   for i in range(problems.option_count))

        mem["bytes"] = 64 * 2**30  # a bigger machine: the next estimate clears it
        done = editor.estimates_done
        await type_into(pilot, editor.query_one("#f-model--d_model", Input), "128")
        await wait_for(pilot, lambda: editor.estimates_done > done, what="estimate update")
        assert not any(p.path == "system.device" for p in editor.problems)


@aio
async def test_editor_shows_only_fields_of_the_chosen_arch(tmp_path):
    _, app = editor_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        form = app.screen.query_one(PresetForm)
        await wait_for(pilot, lambda: form.row("model.d_ff") is not None, what="model section")
        assert not form.row("model.mhc_tau").display and form.row("model.d_ff").display
        app.screen.query_one("#f-model--arch", Select).value = "mhc"
        await wait_for(pilot, lambda: form.row("model.mhc_tau").display, what="mHC fields")
        assert not form.row("model.bdh_mult").display
        app.screen.query_one("#f-model--arch", Select).value = "bdh"
        await wait_for(pilot, lambda: form.row("model.bdh_mult").display, what="BDH fields")
        assert not form.row("model.mhc_tau").display and not form.row("model.d_ff").display


@aio
async def test_editor_flags_unreadable_input_and_blocks_save(tmp_path):
    path, app = editor_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        editor = app.screen
        await type_into(pilot, editor.query_one("#f-model--n_layers", Input), "two")
        row = editor.query_one(PresetForm).row("model.n_layers")
        assert "expected an integer" in text_of(row.query_one(".field-msg", Static))
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert path.read_text() == PRESET_TEXT


@aio
async def test_editor_shows_a_file_value_of_the_wrong_type_and_drops_its_problem_once_fixed(tmp_path):
    """A preset written by hand with n_layers = "two": the field shows "two" (not the default standing
    in), its error goes as soon as a number is typed (not only after saving), and the fix is saved even
    when the number equals the default. An unknown key says the form cannot fix it. (--set with a
    readable value fixes it from the start: below.)"""
    path, app = editor_app(tmp_path, PRESET_TEXT.replace("[model]", '[model]\nfoo = 3')
                           .replace("n_layers = 2", 'n_layers = "two"'))
    async with app.run_test(size=SIZE) as pilot:
        editor = app.screen
        n_layers = editor.query_one("#f-model--n_layers", Input)
        row = editor.query_one(PresetForm).row("model.n_layers")
        await wait_for(pilot, lambda: n_layers.value == "two", what="the file's value in the field")
        assert "got the string 'two'" in text_of(row.query_one(".field-msg", Static))
        assert "2 errors" in text_of(editor.query_one("#editor-title", Static))
        foo = next(p for p in editor.problems if p.path == "model.foo")
        assert foo.message.endswith("(not a field of the form: edit the file)")
        await type_into(pilot, n_layers, "4")  # the default: still a change, the file says "two"
        assert text_of(row.query_one(".field-msg", Static)) == ""
        assert "1 error" in text_of(editor.query_one("#editor-title", Static))
        assert editor.changes() == {"model.n_layers": 4}
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert "1 error" in text_of(editor.query_one("#editor-title", Static))  # model.foo is the file's
    assert "n_layers = 4" in path.read_text() and '"two"' not in path.read_text()


@aio
async def test_save_as_writes_a_new_file(tmp_path):
    path, app = editor_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        editor = app.screen
        await type_into(pilot, editor.query_one("#f-model--n_layers", Input), "6")
        await pilot.press("f2")
        await pilot.pause()
        inp = app.screen.query_one("#save-path", Input)
        inp.value = str(tmp_path / "exp6")
        await pilot.press("enter")
        await wait_for(pilot, lambda: (tmp_path / "exp6.toml").exists(), what="save as")
        assert editor.path == tmp_path / "exp6.toml"
    assert "n_layers = 6" in (tmp_path / "exp6.toml").read_text()
    assert 'name = "exp6"' in (tmp_path / "exp6.toml").read_text()  # run.name was exp.toml's: it follows the copy
    assert path.read_text() == PRESET_TEXT


# -- dashboards ----------------------------------------------------------------------------------

async def open_dashboard(pilot, app) -> DashboardScreen:
    await wait_for(pilot, lambda: isinstance(app.screen, DashboardScreen) and app.screen.ready, what="dashboard")
    return app.screen


@aio
async def test_dashboard_of_a_finished_mhc_run(tmp_path):
    run = write_run(tmp_path / "runs", "mhc-a", "mhc")
    app = make_app(run_dir=run, runs_root=tmp_path / "runs", now=lambda: FIXED_NOW)
    async with app.run_test(size=SIZE) as pilot:
        dash = await open_dashboard(pilot, app)
        keys = {spec.key for spec, _ in dash.panels}
        assert {"loss", "val_bpb", "lr", "grad_norm", "tokens_per_s", "gate_value", "H_res_diag_mean",
                "stream_similarity", "sinkhorn"} <= keys
        status = text_of(dash.query_one("#run-status", Static))
        assert "completed" in status and "400/400" in status and "FROZEN" not in status
        loss = dash.query_one("#panel-loss", PlotPanel)
        assert len(loss.frame.traces) == 3  # raw train (dim), its EMA, val
        assert loss.frame.traces[0].x[-1] == 400
        assert "val" in str(loss.border_subtitle)
        assert "The model at step 400" in text_of(dash.query_one("#samples", Static))
        assert dash.query_one("#stdout").line_count > 5

        before = dash.redraws
        await pilot.press("e")  # EMA off: train + val only
        assert len(loss.frame.traces) == 2 and dash.redraws > before
        await pilot.press("x")  # tokens on the x axis
        assert loss.frame.tokens and loss.frame.traces[0].x[-1] == 400 * 1024
        await pilot.press("l")
        assert loss.frame.log
        await pilot.press("plus")
        a, b = loss.frame.xrange
        assert (b - a) == pytest.approx(0.5 * 399 * 1024, rel=0.01)
        await pilot.press("0")
        await pilot.press("f")
        assert dash.has_class("-maximized")


@aio
async def test_a_long_run_opens_from_its_column_cache(tmp_path, monkeypatch):
    """The trainer leaves a column cache beside a long run's events (reader.refresh_cache); the app
    opens the run from it, parsing no line the cache covers, and draws every event."""
    from tuiLM import reader

    run = write_run(tmp_path / "runs", "mhc-a", "mhc")
    monkeypatch.setattr(reader, "CACHE_MIN_BYTES", 1)  # the fixture is small; a real cache needs 4 MB
    assert reader.refresh_cache(run)
    parsed: list[int] = []
    real = reader.parse_chunk
    monkeypatch.setattr(reader, "parse_chunk", lambda buf, sigs: parsed.append(len(buf)) or real(buf, sigs))
    app = make_app(run_dir=run, runs_root=tmp_path / "runs", now=lambda: FIXED_NOW)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, DashboardScreen) and app.screen.ready,
                       what="the dashboard drawn")
        dash = app.screen
        status = text_of(dash.query_one("#run-status", Static))
        best = min(e["val_bpb"] for e in read_events(run / "events.jsonl") if e["kind"] == "eval")
        assert "completed" in status and f"(best {best:.4f})" in status
        assert dash.query_one("#panel-loss", PlotPanel).frame.traces[0].x.tolist() == list(range(1, 401))
    assert parsed == []  # every event came from the cache


@aio
async def test_frozen_residual_is_flagged(tmp_path):
    run = write_run(tmp_path / "runs", "mhc-frozen", "mhc-frozen")
    app = make_app(run_dir=run, runs_root=tmp_path / "runs", now=lambda: FIXED_NOW)
    async with app.run_test(size=(160, 48)) as pilot:  # the one-line header gives the reason room
        dash = await open_dashboard(pilot, app)
        status = text_of(dash.query_one("#run-status", Static))
        assert "FROZEN" in status and "gate stuck at its init 0.01" in status and "160" in status
        assert "FROZEN" in str(dash.query_one("#panel-gate_value", PlotPanel).border_subtitle)
        assert "stopped" in status


@aio
async def test_failed_run_shows_the_reason_and_the_log_tail(tmp_path):
    run = write_run(tmp_path / "runs", "crash", "failed")
    app = make_app(run_dir=run, runs_root=tmp_path / "runs", now=lambda: FIXED_NOW)
    async with app.run_test(size=SIZE) as pilot:
        dash = await open_dashboard(pilot, app)
        box = dash.query_one("#failure", Static)
        assert box.display
        text = text_of(box)
        assert "FAILED" in text and "loss is NaN at step 120" in text and "FloatingPointError" in text
        assert dash.check_action("resume", ()) and not dash.check_action("stop", ())


@aio
async def test_dashboard_follows_a_run_written_by_another_process(tmp_path):
    """A run started headless elsewhere: the app tails it and the loss panel gains points."""
    run = tmp_path / "runs" / "live"
    run.mkdir(parents=True)
    from tuiLM.ownership import acquire_run_lock

    lock = acquire_run_lock(run)  # what a live trainer holds
    writer = EventWriter(run / "events.jsonl")
    writer.write("run_start", run_id="live", versions={}, device="cpu", params=1, world_size=1, max_steps=100,
                 tokens_per_step=64, corpus={}, pid=__import__("os").getpid(), step=0)

    def train(a: int, b: int) -> None:
        for s in range(a, b):
            writer.write("train", step=s, tokens=64 * s, loss=4.0 - s / 50, lr=1e-3, grad_norm=1.0,
                         tokens_per_s=1000.0, dt_ms=5.0)

    train(1, 11)
    app = make_app(run_dir=run, runs_root=tmp_path / "runs")
    try:
        async with app.run_test(size=SIZE) as pilot:
            dash = await open_dashboard(pilot, app)
            loss = dash.query_one("#panel-loss", PlotPanel)
            assert loss.frame.traces[0].x.size == 10
            assert "running" in text_of(dash.query_one("#run-status", Static))
            train(11, 31)
            await wait_for(pilot, lambda: loss.frame.traces and loss.frame.traces[0].x.size == 30,
                           what="new points")
            writer.write("run_end", status="completed", step=30, reason="done")
            await wait_for(pilot, lambda: "completed" in text_of(dash.query_one("#run-status", Static)),
                           what="completed state")
    finally:
        writer.close()
        __import__("os").close(lock)


@aio
async def test_compare_view_overlays_runs_and_lists_differences(tmp_path):
    a = write_run(tmp_path / "runs", "a", "gpt", seed=0)
    b = write_run(tmp_path / "runs", "b", "gpt", seed=1, lr=1e-3)
    app = make_app(run_dir=[a, b], runs_root=tmp_path / "runs", now=lambda: FIXED_NOW)
    async with app.run_test(size=SIZE) as pilot:
        dash = await open_dashboard(pilot, app)
        assert dash.compare
        loss = dash.query_one("#panel-loss", PlotPanel)
        colors = {t.color for t in loss.frame.traces}
        assert len(colors) == 2  # one colour per run
        table = dash.query_one("#diff", DataTable)
        rows = [table.get_row_at(i) for i in range(table.row_count)]
        hyper = [r for r in rows if str(r[0]) not in SUMMARY_ROWS]  # the summary rows come first
        assert [str(r[0]) for r in hyper] == ["optim.lr"]  # run.name differs too: not a hyperparameter
        assert hyper[0][1:] == ["0.003", "0.001"]
        assert not dash.check_action("stop", ())


@aio
async def test_compare_columns_at_80_columns_keep_the_ends_that_tell_runs_apart(tmp_path):
    """Three runs of one preset at 80 columns: every heading read "✓ tiny-v1-20261203…"."""
    names = [f"tiny-v1-20261203-20{i}515" for i in range(3)]
    runs = [write_run(tmp_path / "runs", n, "gpt", seed=i) for i, n in enumerate(names)]
    app = make_app(run_dir=runs, runs_root=tmp_path / "runs", now=lambda: FIXED_NOW)
    async with app.run_test(size=(80, 24)) as pilot:
        dash = await open_dashboard(pilot, app)
        table = dash.query_one("#diff", DataTable)
        await wait_for(pilot, lambda: len(table.columns) == 4, what="the compare table")
        heads = [str(c.label) for c in list(table.columns.values())[1:]]
        assert len(set(heads)) == 3 and all(h.endswith(f"{i}515") for i, h in enumerate(heads)), heads


@aio
async def test_runs_list_marks_runs_and_opens_the_compare_view(tmp_path):
    root = tmp_path / "runs"
    write_run(root, "a", "gpt", seed=0)
    write_run(root, "b", "mhc", seed=1)
    write_run(root, "c", "failed", seed=2)
    app = make_app(runs_root=root, now=lambda: FIXED_NOW)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("2")
        await wait_for(pilot, lambda: getattr(app.screen, "refreshes", 0) > 0, what="run list")
        table = app.screen.query_one(DataTable)
        assert table.row_count == 3
        keys = [c.key.value for c in table.ordered_columns]
        cells = {str(table.get_row_at(i)[1]): dict(zip(keys, map(str, table.get_row_at(i)))) for i in range(3)}
        assert "failed" in cells["c"]["state"] and "completed" in cells["a"]["state"]
        assert cells["b"]["arch"].strip() == "mhc" and cells["a"]["step"] == "400/400"
        assert cells["a"]["age"] == "3h"  # the injected clock: 3 h after the fixture start
        assert cells["a"]["loss"] == "1.4267" and cells["a"]["time"] == "1:39"
        assert len(cells["a"]["trend"].strip()) == 10 and cells["a"]["flag"] == ""
        await pilot.press("space", "space")
        await pilot.press("c")
        dash = await open_dashboard(pilot, app)
        assert dash.compare and len(dash.runs) == 2
        await pilot.press("escape")
        await pilot.press("enter")
        dash = await open_dashboard(pilot, app)
        assert not dash.compare


@aio
async def test_runs_list_does_not_scan_under_a_dashboard(tmp_path, monkeypatch):
    """Its refresh loop would take CPU from a trainer while the user watches a dashboard."""
    from tuiLM.tui.screens import runs as runs_screen

    monkeypatch.setattr(runs_screen, "REFRESH_S", 0.1)
    root = tmp_path / "runs"
    write_run(root, "a", "gpt")
    app = make_app(runs_root=root, now=lambda: FIXED_NOW)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("2")
        runs = app.screen
        await wait_for(pilot, lambda: runs.refreshes > 2, what="run list refreshes")
        await pilot.press("enter")
        await open_dashboard(pilot, app)
        await pilot.pause(0.3)  # a scan in flight when the dashboard came up may still land
        covered = runs.refreshes
        await pilot.pause(1.0)  # ten refresh periods
        assert runs.refreshes == covered
        await pilot.press("escape")
        await wait_for(pilot, lambda: runs.refreshes > covered, timeout=5, what="a refresh on return")


@aio
async def test_command_palette_finds_screen_actions(tmp_path):
    run = write_run(tmp_path / "runs", "a", "gpt")
    app = make_app(run_dir=run, runs_root=tmp_path / "runs")
    async with app.run_test(size=SIZE) as pilot:
        dash = await open_dashboard(pilot, app)
        assert not dash.log_all
        await pilot.press("ctrl+p")
        await pilot.pause()
        await pilot.press(*"toggle log")
        await wait_for(pilot, lambda: app.screen.query("CommandList") and
                       app.screen.query_one("CommandList").option_count > 0, what="palette hits")
        await pilot.press("enter")
        await wait_for(pilot, lambda: dash.log_all, what="log scale via the palette")


# -- a real trainer --------------------------------------------------------------------------------

@pytest.mark.slow
@aio
async def test_launch_watch_and_stop_a_tiny_run(tmp_path, runs_dir, monkeypatch):
    monkeypatch.chdir(tmp_path)
    from tuiLM.config.load import default_preset
    from tuiLM.config.write import dumps_resolved

    changes = {**TINY_GPT, "train.max_steps": 5000, "checkpoint.every": 0, "eval.every": 0, "run.name": "tiny"}
    path = tmp_path / "tiny.toml"
    path.write_text(dumps_resolved(default_preset().with_values(changes)))
    app = make_app(preset_path=path, runs_root=runs_dir)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, PresetEditor), what="editor")
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: isinstance(app.screen, DashboardScreen), what="dashboard", timeout=30)
        dash = app.screen
        loss = dash.query_one("#panel-loss", PlotPanel)
        await wait_for(pilot, lambda: loss.frame.traces and loss.frame.traces[0].x.size >= 3, timeout=90,
                       what="loss points from the trainer")
        first = loss.frame.traces[0].x.size
        await wait_for(pilot, lambda: loss.frame.traces[0].x.size > first, timeout=60, what="more points")
        assert dash.runs[0].state == "running"
        await pilot.press("s")
        await pilot.press("y")
        await wait_for(pilot, lambda: dash.runs[0].state == "stopped", timeout=60, what="stopped state")
        # the status line follows at the next paced redraw (at most REDRAW_S later)
        await wait_for(pilot, lambda: "stopped" in text_of(dash.query_one("#run-status", Static)), timeout=10,
                       what="the status line says stopped")
        from textual.widgets import Log
        box = dash.query_one("#stdout", Log)  # ends with how the run ended, not a stale progress line
        await wait_for(pilot, lambda: box.lines and box.lines[-1].startswith("stopped at step"),
                       timeout=30, what="the end line in the stdout box")
        assert dash.check_action("resume", ())
        run_dir = dash.runs[0].path
    assert any((run_dir / "checkpoints").glob("*.pt"))


@aio
async def test_dashboard_pages_cycle_with_g_and_the_inspect_cursor_moves(tmp_path):
    """g pages mHC -> core -> system (the system page exists because the run logged system fields;
    a run without them has no such page); arrows and a click move one cursor through every panel."""
    run = write_run(tmp_path / "runs", "m", "mhc")
    events = run / "events.jsonl"
    events.write_text(events.read_text().replace('"mem_gib":0.0}', '"mem_gib":0.0,"cpu_pct":95.0,"rss_gib":1.25}'))
    plain = write_run(tmp_path / "runs", "g", "gpt")
    app = make_app(run_dir=run, runs_root=tmp_path / "runs", now=lambda: FIXED_NOW)
    async with app.run_test(size=(80, 24)) as pilot:
        dash = await open_dashboard(pilot, app)
        shown = lambda: [s.key for s, p in dash.panels if p.display]  # noqa: E731
        assert shown()[:4] == ["loss", "val_bpb", "H_res_diag_mean", "stream_similarity"]
        assert "mHC 1/3" in text_of(dash.query_one("#run-status", Static))
        await pilot.press("g")
        assert "lr" in shown() and "H_res_diag_mean" not in shown()
        await pilot.press("g")
        await wait_for(pilot, lambda: "cpu_pct" in shown(), what="the system page")
        assert "3/3]" in text_of(dash.query_one("#run-status", Static))  # ("[system 3/3]", or "[3/3]" when tight)
        await pilot.press("g")
        assert shown()[0] == "loss" and "H_res_diag_mean" in shown()
        dash.set_focus(None)
        await pilot.press("left")
        await wait_for(pilot, lambda: dash.cursor is not None and dash.ready, what="cursor")
        assert dash.cursor == 400.0
        await pilot.press("shift+left")
        assert dash.cursor < 400.0
        panels = [p for _, p in dash.panels if p.display]
        assert all(p.frame.cursor == dash.cursor for p in panels)  # one cursor, every panel
        assert "@ step" in text_of(dash.query_one("#run-status", Static))
        await pilot.click("#panel-loss", offset=(20, 4))
        await wait_for(pilot, lambda: dash.cursor is not None and dash.cursor < 200, what="click")
        await pilot.press("escape")  # first escape hides the cursor, the dashboard stays
        assert dash.cursor is None and app.screen is dash
    app = make_app(run_dir=plain, runs_root=tmp_path / "runs", now=lambda: FIXED_NOW)
    async with app.run_test(size=(80, 24)) as pilot:
        dash = await open_dashboard(pilot, app)
        assert not dash.check_action("next_group", ())  # GPT, no system fields: one page


@aio
async def test_quitting_while_a_trainer_started_here_trains_asks_first(tmp_path):
    """q quit at once and said nothing while the app's trainer went on training (it runs in its own
    session, on purpose): now q asks, naming the run and how to watch or stop it."""
    from tuiLM.tui.screens.dialogs import ConfirmScreen

    run = write_run(tmp_path / "runs", "busy", "gpt")
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        app = make_app(runs_root=tmp_path / "runs")
        async with app.run_test(size=(80, 24)) as pilot:
            done = app.watcher.get(write_run(tmp_path / "runs", "done", "gpt"), proc=proc)
            while not done.caught_up():  # it wrote run_end: its process only finishes (checkpoint, cache)
                done.poll(1.0)
            assert app.watcher.training_here() == []
            app.watcher.get(run, proc=proc)
            await pilot.press("q")
            await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="the question")
            question = app.screen.question
            assert question.startswith("busy started here still trains: it goes on after you quit")
            assert "tuilm stop RUN" in question
            await pilot.press("n")
            await wait_for(pilot, lambda: not isinstance(app.screen, ConfirmScreen), what="back")
            assert app.is_running
            proc.kill()
            proc.wait()
            assert app.watcher.training_here() == []
            study = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
            app._study_watch.append((study, ["worker", "lr"], tmp_path / "w.log"))  # as start_study keeps it
            await pilot.press("q")
            await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="the study question")
            assert app.screen.question.startswith("`tuilm study worker lr` started here goes on too")
            await pilot.press("n")
            study.kill()
            study.wait()
            await pilot.press("q")  # nothing trains: no question
            await wait_for(pilot, lambda: not app.is_running, what="the app to quit")
    finally:
        proc.kill()
        proc.wait()


@aio
async def test_a_new_preset_saved_as_a_file_names_its_runs_after_it(tmp_path):
    """A new preset saved with F2 and no change was an empty file whose runs were named run-…; it now
    takes the file's name as run.name (a name typed in the form is kept)."""
    app = make_app(runs_root=tmp_path / "runs")
    async with app.run_test(size=SIZE) as pilot:
        editor = app.open_preset(None)
        await wait_for(pilot, lambda: isinstance(app.screen, PresetEditor), what="the editor")
        await pilot.press("f2")
        await pilot.pause()
        app.screen.query_one("#save-path", Input).value = str(tmp_path / "lr-sweep")
        await pilot.press("enter")
        await wait_for(pilot, lambda: (tmp_path / "lr-sweep.toml").exists(), what="save as")
        assert editor.values["run.name"] == "lr-sweep" and not editor.has_unsaved()
        assert editor._raw_for("run.name") == "lr-sweep"  # what the run section shows when opened
    assert 'name = "lr-sweep"' in (tmp_path / "lr-sweep.toml").read_text()


def test_the_estimator_reads_no_section_the_editor_lets_errors_pass_in():
    """The editor still estimates with an error in run / schedule / sample / checkpoint / diag
    (warmup_steps > max_steps said "fix the errors to see the estimate"): true only while the
    estimator reads none of them."""
    import ast

    from tuiLM.tui.screens.editorstate import NOT_ESTIMATED

    for path in (ROOT / "tuiLM" / "estimate").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute):  # preset.schedule, s = preset.schedule
                assert node.attr not in NOT_ESTIMATED, (path, node.lineno)
            if isinstance(node, ast.Constant) and isinstance(node.value, str):  # "schedule.x", getattr(p, "run")
                assert node.value not in NOT_ESTIMATED and node.value.partition(".")[0] not in NOT_ESTIMATED \
                    or " " in node.value, (path, node.lineno, node.value)


@aio
async def test_an_error_the_estimator_does_not_read_keeps_the_estimate(tmp_path):
    _, app = editor_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        editor = app.screen
        await wait_for(pilot, lambda: editor.estimate is not None, what="first estimate")
        editor.values["schedule.warmup_steps"] = 10**6  # beyond max_steps: an error, not a memory one
        done = editor.estimates_done
        editor.revalidate()
        editor._schedule_estimate(now=True)
        await wait_for(pilot, lambda: editor.estimates_done > done, what="the estimate again")
        assert any(p.path == "schedule.warmup_steps" and p.is_error for p in editor.problems)
        assert editor.estimate is not None and not editor.estimate_error
        editor.values["model.d_model"] = 250  # not divisible by n_heads: the estimate waits for it
        done = editor.estimates_done
        editor._schedule_estimate(now=True)
        await wait_for(pilot, lambda: editor.estimates_done > done, what="the estimate again")
        assert editor.estimate is None and "fix the errors to see the estimate" in editor.estimate_error


@aio
async def test_a_switch_says_true_or_false_not_by_colour_alone(tmp_path):
    _, app = editor_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        editor = app.screen
        from textual.widgets import Checkbox

        box = editor.query_one("#f-model--qk_norm", Checkbox)
        await wait_for(pilot, lambda: editor.query_one(PresetForm).row("model.qk_norm").ready, what="the row")
        assert str(box.label) == "false" and not box.value
        box.toggle()
        await wait_for(pilot, lambda: editor.changes() == {"model.qk_norm": True}, what="the edit")
        assert str(box.label) == "true"


@aio
async def test_the_budget_beside_the_estimate_is_the_presets_budget_and_is_saved(tmp_path):
    """A budget typed beside the estimate warned under system.vram_budget_gib while that field still
    read 0.0, and save left it out. The box is the field: typed there, the field shows it, save writes
    it; typed in the field, the box shows it."""
    path, app = editor_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        editor = app.screen
        await wait_for(pilot, lambda: editor.estimate is not None, what="first estimate")
        box = editor.query_one("#budget", Input)
        await editor.query_one(PresetForm).reveal("system.vram_budget_gib")  # its row open: the box writes to it
        await pilot.pause(0.3)  # (reveal focuses the row after a refresh)
        await type_into(pilot, box, "12.3456789")  # (its row showed 12.3457 and rewrote the box: 12.3459)
        await wait_for(pilot, lambda: editor.changes().get("system.vram_budget_gib") == 12.3456789, what="typed")
        row_input = editor.query_one(PresetForm).row("system.vram_budget_gib").query_one(Input)
        assert box.value == row_input.value == "12.3456789", (box.value, row_input.value)
        await type_into(pilot, box, "0.001")
        await wait_for(pilot, lambda: editor.changes().get("system.vram_budget_gib") == 0.001, what="the budget")
        assert box.value == "0.001"  # (not rewritten while typed: "0." stayed, it did not become "0")
        assert any(p.path == "system.vram_budget_gib" and "exceeds the budget 0.001 GiB" in p.message
                   for p in editor.problems)
        await editor.query_one(PresetForm).reveal("system.vram_budget_gib")
        await wait_for(pilot, lambda: (row := editor.query_one(PresetForm).row("system.vram_budget_gib")) is not None
                       and row.is_mounted and row.query_one(Input).value == "0.001", what="the field showing it")
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: "vram_budget_gib = 0.001" in path.read_text(), what="the save")
        field = editor.query_one(PresetForm).row("system.vram_budget_gib").query_one(Input)
        await type_into(pilot, field, "12")
        await wait_for(pilot, lambda: box.value == "12", what="the box following the field")


@aio
async def test_f4_shows_the_estimate_at_80_columns_and_esc_returns_to_the_form(tmp_path):
    """At 80 columns the side panel (memory breakdown, budget, problems) was hidden for good: only
    the one-line summary showed. f4 now puts it in the form's place; esc goes back."""
    _, app = editor_app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        editor = app.screen
        await wait_for(pilot, lambda: editor.estimate is not None, what="first estimate")
        side, form = editor.query_one("#editor-side"), editor.query_one(PresetForm)
        assert side.region.width == 0 and form.region.width > 0
        assert "f4: details" in text_of(editor.query_one("#editor-summary", Static))
        await pilot.press("f4")
        await wait_for(pilot, lambda: side.region.width > 40 and form.region.width == 0, what="the estimate")
        assert "f4: form" in text_of(editor.query_one("#editor-summary", Static))
        await pilot.press("escape")
        await wait_for(pilot, lambda: side.region.width == 0 and form.region.width > 0, what="the form again")
        assert isinstance(app.screen, PresetEditor)  # esc closed the estimate, not the editor
        # back in the form, the field that had the focus has it again: typed digits edit it (they switched
        # views, and "1" asked to discard the edits)
        field = editor.query_one("#f-model--d_model", Input)
        field.focus()
        await pilot.press("f4", "f4")
        await wait_for(pilot, lambda: editor.focused is field, what="the field's focus back")
        await pilot.press("end", "backspace", "backspace", "9", "6")
        await wait_for(pilot, lambda: editor.changes().get("model.d_model") == 296, what="the edit")
        assert isinstance(app.screen, PresetEditor)
        # a field F8 (or a problem picked in the side view) focused meanwhile keeps the focus on the way back
        await type_into(pilot, editor.query_one("#f-model--n_heads", Input), "7")  # 296 is not divisible by 7
        await wait_for(pilot, lambda: any(p.path == "model.d_model" for p in editor.problems), what="the problem")
        await pilot.press("f4", "f8")
        await wait_for(pilot, lambda: editor.current_field() in ("model.d_model", "model.n_heads"), what="F8")
        picked = editor.focused
        await pilot.press("f4")
        await pilot.pause(0.2)
        assert editor.focused is picked


@aio
async def test_a_switch_written_as_a_string_shows_the_value_in_force(tmp_path):
    """qk_norm = "false" in the file: the default (false) applies; the switch showed "true" (the text
    "false" read as a truthy string). It shows the value in force, and the error beside it."""
    from textual.widgets import Checkbox

    _, app = editor_app(tmp_path, PRESET_TEXT.replace("[model]", '[model]\nqk_norm = "false"'))
    async with app.run_test(size=SIZE) as pilot:
        editor = app.screen
        row = editor.query_one(PresetForm).row("model.qk_norm")
        await wait_for(pilot, lambda: row.ready, what="the row")
        box = editor.query_one("#f-model--qk_norm", Checkbox)
        assert not box.value and str(box.label) == "false"
        assert "expected" in text_of(row.query_one(".field-msg", Static))


@aio
async def test_a_set_value_fixes_a_file_value_of_the_wrong_type(tmp_path):
    _, app = editor_app(tmp_path, PRESET_TEXT.replace("n_layers = 2", 'n_layers = "two"'),
                        overrides=["model.n_layers=4"])
    async with app.run_test(size=SIZE) as pilot:
        editor = app.screen
        n_layers = editor.query_one("#f-model--n_layers", Input)
        await wait_for(pilot, lambda: n_layers.value == "4", what="the --set value in the field")
        assert not any(p.path == "model.n_layers" for p in editor.problems)
        assert editor.changes() == {"model.n_layers": 4}  # saved, though 4 is the default

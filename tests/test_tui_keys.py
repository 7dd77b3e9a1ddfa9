"""Keys that must behave the same everywhere: a bare `r` asks before it launches, `1` / `2` reach the
preset and run lists from every screen, Home / End move list cursors."""

from __future__ import annotations

import os

from textual.widgets import DataTable, Input

from tuiLM.tui import services
from tuiLM.tui.app import make_app
from tuiLM.tui.screens.dashboard import DashboardScreen
from tuiLM.tui.screens.dialogs import ConfirmScreen
from tuiLM.tui.screens.editor import PresetEditor
from tuiLM.tui.screens.presets import PresetsScreen
from tuiLM.tui.screens.runs import RunsScreen

from .fixtures.fixture_runs import FIXED_NOW, write_run
from .test_tui_app import SIZE, aio, type_into, wait_for

async def width_field(pilot, editor) -> Input:
    await wait_for(pilot, lambda: bool(editor.query("#f-model--d_model")), what="the form")
    return editor.query_one("#f-model--d_model", Input)


PRESET = '[run]\nname = "keys"\n[model]\narch = "gpt"\nd_model = 64\nn_heads = 4\nn_layers = 2\n'


@aio
async def test_bare_r_in_the_editor_asks_before_it_launches(tmp_path, monkeypatch):
    launched: list[str] = []

    def fake_launch(preset, name=None, root=None):
        launched.append(preset.run.name)
        raise RuntimeError("not in this test")  # the editor shows it and stays up

    monkeypatch.setattr(services, "launch_run", fake_launch)
    path = tmp_path / "keys.toml"
    path.write_text(PRESET)
    app = make_app(preset_path=path, runs_root=tmp_path / "runs")
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, PresetEditor), what="editor")
        editor = app.screen
        app.set_focus(None)  # focus outside any text field, where a bare letter is a key binding
        await pilot.press("r")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="the question")
        assert launched == []  # asked, nothing started
        await pilot.press("n")
        await wait_for(pilot, lambda: app.screen is editor, what="back in the editor")
        await pilot.pause(0.2)
        assert launched == []  # "no" starts nothing
        await pilot.press("r")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="the question again")
        await pilot.press("y")
        await wait_for(pilot, lambda: launched == ["keys"], what="the launch after yes")
        assert app.screen is editor


@aio
async def test_bare_r_in_a_text_field_is_a_letter(tmp_path, monkeypatch):
    monkeypatch.setattr(services, "launch_run", lambda *a, **k: (_ for _ in ()).throw(AssertionError("launched")))
    path = tmp_path / "keys.toml"
    path.write_text(PRESET)
    app = make_app(preset_path=path, runs_root=tmp_path / "runs")
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, PresetEditor), what="editor")
        editor = app.screen
        inp = await width_field(pilot, editor)
        await type_into(pilot, inp, "r1r2")
        assert inp.value == "r1r2" and app.screen is editor


@aio
async def test_number_keys_reach_both_lists_from_every_screen(tmp_path):
    root = tmp_path / "runs"
    run = write_run(root, "a", "gpt")
    path = tmp_path / "keys.toml"
    path.write_text(PRESET)
    app = make_app(run_dir=run, runs_root=root, now=lambda: FIXED_NOW)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, DashboardScreen), what="dashboard")
        dash = app.screen
        await pilot.press("2")  # already in the runs mode: back to its list
        await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen), what="runs list from the dashboard")
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, DashboardScreen), what="dashboard again")
        assert app.screen is not dash
        await pilot.press("1")
        await wait_for(pilot, lambda: isinstance(app.screen, PresetsScreen), what="presets from the dashboard")
        await pilot.press("2")  # the other mode as it was left: the dashboard keeps its place
        await wait_for(pilot, lambda: isinstance(app.screen, DashboardScreen), what="the dashboard kept")
        app.open_preset(path)
        await wait_for(pilot, lambda: isinstance(app.screen, PresetEditor), what="editor")
        app.set_focus(None)
        await pilot.press("1")  # unchanged preset: straight back to the list
        await wait_for(pilot, lambda: isinstance(app.screen, PresetsScreen), what="presets from the editor")
        app.open_preset(path)
        await wait_for(pilot, lambda: isinstance(app.screen, PresetEditor), what="editor again")
        editor = app.screen
        await type_into(pilot, await width_field(pilot, editor), "128")
        app.set_focus(None)
        await pilot.press("1")  # unsaved changes: the editor's own question, never a silent discard
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="discard question")
        await pilot.press("2")  # a dialog waits for its answer
        await pilot.pause(0.2)
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("n")
        await wait_for(pilot, lambda: app.screen is editor, what="kept editing")
        await pilot.pause(0.3)  # let the last key events drain before the app shuts down


@aio
async def test_home_and_end_move_list_cursors(tmp_path):
    root = tmp_path / "runs"
    for i, name in enumerate("abcd"):
        write_run(root, name, "gpt", seed=i)
    app = make_app(runs_root=root, now=lambda: FIXED_NOW)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, PresetsScreen), what="presets")
        presets = app.screen.query_one(DataTable)
        await wait_for(pilot, lambda: presets.row_count > 2, what="preset rows")
        presets.focus()
        await pilot.press("end")
        assert presets.cursor_row == presets.row_count - 1
        await pilot.press("home")
        assert presets.cursor_row == 0
        await pilot.press("2")
        await wait_for(pilot, lambda: getattr(app.screen, "refreshes", 0) > 0, what="run list")
        runs = app.screen.query_one(DataTable)
        assert runs.row_count == 4 and runs.cursor_row == 0
        await pilot.press("end")
        assert runs.cursor_row == 3
        await pilot.press("home")
        assert runs.cursor_row == 0
        import shutil

        from .conftest import ROOT

        for name in ("fixture", "zcopy"):  # two studies (the copy is unreadable: a row all the same)
            shutil.copytree(ROOT / "tests" / "fixtures" / "study" / "runs" / "studies" / "fixture", root / "studies" / name)
        await pilot.press("3")
        await wait_for(pilot, lambda: getattr(app.screen, "refreshes", 0) > 0, what="studies list")
        studies = app.screen.query_one(DataTable)
        await wait_for(pilot, lambda: studies.row_count == 2, what="two studies")
        await pilot.press("end")
        assert studies.cursor_row == 1
        await pilot.press("home")
        assert studies.cursor_row == 0


# -- the footer at 80 columns ------------------------------------------------------------------------

def _footer(screen) -> tuple[list[str], bool]:
    """(the actions the footer shows, whether every key left of the command palette is whole)."""
    from textual.widgets import Footer

    footer = screen.query_one(Footer)
    keys = [w for w in footer.query("FooterKey") if "-command-palette" not in w.classes]
    palette = [w for w in footer.query("FooterKey") if "-command-palette" in w.classes]
    limit = palette[0].region.x if palette else footer.region.right
    return [k.action for k in keys], all(0 < k.region.right <= limit for k in keys)


async def _settled_footer(pilot, screen) -> tuple[list[str], bool]:
    """``_footer`` once the footer has settled (a refresh recomposes it, and a loaded machine lays it
    out late): the same keys, all of them whole, twice in a row; else what it shows after 10 s."""
    last = None
    for _ in range(100):
        await pilot.pause(0.1)
        now = _footer(screen)
        if now[1] and now == last:
            return now
        last = now
    return last


@aio
async def test_a_resize_to_80_columns_lays_the_presets_out_as_if_started_there(tmp_path):
    """From 160 columns down to 80 the footer's keys take the narrow padding (they kept the wide one,
    which pushed the command palette's key off the edge) and the notes column shrinks (it kept its
    160-column width: the table scrolled sideways)."""
    from textual.widgets import Footer

    async def layout(pilot, app):
        await wait_for(pilot, lambda: isinstance(app.screen, PresetsScreen), what="presets")
        await _settled_footer(pilot, app.screen)
        footer, table = app.screen.query_one(Footer), app.screen.query_one(DataTable)
        return [(k.action, k.region.width) for k in footer.query("FooterKey")], table.virtual_size.width

    app = make_app(runs_root=tmp_path / "runs")
    async with app.run_test(size=(80, 24)) as pilot:
        fresh = await layout(pilot, app)
    app = make_app(runs_root=tmp_path / "runs")
    async with app.run_test(size=(160, 48)) as pilot:
        wide = await layout(pilot, app)
        await pilot.resize_terminal(80, 24)
        await wait_for(pilot, lambda: app.screen.query_one(DataTable).virtual_size.width < wide[1], what="notes shrink")
        for _ in range(30):  # (the footer is built again a moment after the resize)
            await pilot.pause(0.1)
            if (resized := await layout(pilot, app)) == fresh:
                break
    assert resized == fresh and fresh[1] <= 80


@aio
async def test_runs_footer_offers_what_applies_to_the_row_and_fits_80_columns(tmp_path):
    from tuiLM.ownership import acquire_run_lock

    root = tmp_path / "runs"
    write_run(root, "done", "gpt", seed=0)
    live = write_run(root, "live", "gpt", seed=2, end="running")  # no run_end, and its lock held below
    lock = acquire_run_lock(live)
    write_run(root, "halted", "mhc-frozen", seed=1)  # a stopped run: resumable
    for i in range(3):
        write_run(root, f"trio-s{i}", "gpt", seed=3 + i, run_seed=100 + i, lr=6e-3)  # a seed group
    app = make_app(runs_root=root, now=lambda: FIXED_NOW)
    acted: list[str] = []
    app.resume_run = lambda path: acted.append(f"resume {path.name}")
    async with app.run_test(size=(80, 24)) as pilot:
        app.notify = lambda message, **kw: acted.append(message)
        await pilot.press("2")
        await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen) and app.screen.refreshes > 0, what="runs")
        screen, table = app.screen, app.screen.query_one(DataTable)
        shown = {}
        for key in ("halted", "done", "live", "trio"):
            row = next(i for i, k in enumerate(screen._order)
                       if (k in screen.groups) == (key == "trio") and (key == "trio" or k.endswith("/" + key)))
            table.move_cursor(row=row)
            await pilot.pause(0.2)
            shown[key], whole = await _settled_footer(pilot, screen)
            assert whole, (key, shown[key])
        assert "resume" in shown["halted"] and "expand" not in shown["halted"] and "stop" not in shown["halted"]
        assert "resume" not in shown["done"] and "stop" not in shown["done"]
        assert "stop" in shown["live"] and "resume" not in shown["live"]
        assert "expand" in shown["trio"] and "fold" not in shown["trio"] and "resume" not in shown["trio"]
        table.move_cursor(row=next(i for i, k in enumerate(screen._order) if k in screen.groups))
        await pilot.pause(0.2)
        await pilot.press("e")  # expanded: the same key now folds it, and the footer says so
        folding, whole = await _settled_footer(pilot, screen)
        assert whole and "fold" in folding and "expand" not in folding, folding
        await pilot.press("e")
        assert not screen.expanded
        assert all("quit" in s and "show_runs" in s for s in shown.values())  # the app's keys fit too
        assert all("open" in s for s in shown.values())  # enter, though the focused table binds it too
        await pilot.press("r")  # not offered on a group: no resume, but the key says why (it did nothing)
        await wait_for(pilot, lambda: acted, what="the warning")
        assert acted == ["Select a stopped, pruned, failed or dead run to resume"] and app.screen is screen
        table.move_cursor(row=next(i for i, k in enumerate(screen._order) if k.endswith("/done")))
        await pilot.pause(0.2)
        await pilot.press("s")  # not offered on a completed run: it says so
        await wait_for(pilot, lambda: len(acted) == 2, what="the stop warning")
        assert acted[1] == "done is completed: only a running run stops" and app.screen is screen
        acted.clear()
        table.move_cursor(row=next(i for i, k in enumerate(screen._order) if k.endswith("/halted")))
        await pilot.pause(0.2)
        await pilot.press("r")  # offered on the stopped run: it resumes
        await wait_for(pilot, lambda: acted, what="the resume")
        assert acted == ["resume halted"]
    os.close(lock)


@aio
async def test_study_footer_fits_80_columns_and_offers_no_stop_on_a_finished_study(tmp_path):
    import shutil

    from tuiLM.tui.screens.study import StudyScreen

    from .conftest import ROOT

    shutil.copytree(ROOT / "tests" / "fixtures" / "study" / "runs", tmp_path / "runs")
    app = make_app(runs_root=tmp_path / "runs", now=lambda: FIXED_NOW)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("3")
        await wait_for(pilot, lambda: getattr(app.screen, "refreshes", 0) > 0, timeout=180, what="studies")
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, StudyScreen) and app.screen.refreshes > 0,
                       timeout=180, what="study view")
        await pilot.pause(0.3)
        assert app.screen.focused is not None  # as a user has it: the trials table focused
        shown, whole = await _settled_footer(pilot, app.screen)
        assert whole and "quit" in shown and "open_trial" in shown, shown
        assert "confirm" in shown and not {"stop_study", "stop_trial", "continue_study"} & set(shown), shown
        assert "next_param" not in shown  # the scatter is on the second page at 80 columns
        await pilot.press("g")
        await pilot.pause(0.3)
        shown, whole = await _settled_footer(pilot, app.screen)
        assert whole and "next_param" not in shown and "quit" in shown, shown  # (unlisted: the title says p)
        index = app.screen.param_index
        await pilot.press("p")
        assert app.screen.param_index == index + 1
        # running, its highlighted trial too: x and S are offered, c is not, and q still fits
        import dataclasses

        screen = app.screen
        screen.workers.cancel_group(screen, "study-refresh")  # (the fixture's own state would come back)
        await pilot.press("g")
        at = screen.trial()
        running = dataclasses.replace(screen.snapshot, state="running", counts=(*screen.snapshot.counts, ("live", 1)),
                                      trials=tuple(dataclasses.replace(t, state="running", live=True)
                                                   if t.number == at.number else t for t in screen.snapshot.trials))
        screen.snapshot = running
        screen.sync_bindings()
        shown, whole = await _settled_footer(pilot, screen)
        assert whole and {"stop_trial", "stop_study", "quit"} <= set(shown), shown
        assert "continue_study" not in shown and "sort" not in shown, shown
        # its controller killed (no trainer alive here): c recovers it, x has nothing to signal, q fits
        screen.snapshot = dataclasses.replace(running, counts=screen.snapshot.counts[:-1], trials=tuple(
            dataclasses.replace(t, live=False) for t in running.trials))
        screen.sync_bindings()
        shown, whole = await _settled_footer(pilot, screen)
        assert whole and {"continue_study", "stop_study", "quit"} <= set(shown) and "stop_trial" not in shown, shown
        # stopped, on the scatter's page: c and k both offered, and q was cut ("q Qu▏")
        screen.snapshot = dataclasses.replace(screen.snapshot, state="stopped")
        await pilot.press("g")
        screen.sync_bindings()
        shown, whole = await _settled_footer(pilot, screen)
        assert whole and {"continue_study", "confirm", "quit"} <= set(shown), shown
        await pilot.press("g")
        key = screen.sort_key
        await pilot.press("o")  # unlisted at 80 columns, still working
        assert screen.sort_key != key


@aio
async def test_dashboard_footer_fits_80_columns_and_x_works_unlisted_there(tmp_path):
    """Below 110 columns 'x X axis' leaves the footer (a running run's g / s / f and q would not fit),
    but the key still toggles steps / tokens; wider it is listed."""
    run = write_run(tmp_path / "runs", "mhc-run", "mhc", seed=0)
    for size, listed in (((80, 24), False), ((160, 48), True)):
        app = make_app(run_dir=run, runs_root=tmp_path / "runs", now=lambda: FIXED_NOW)
        async with app.run_test(size=size) as pilot:
            await wait_for(pilot, lambda: isinstance(app.screen, DashboardScreen) and app.screen.ready,
                           what="dashboard")
            await pilot.pause(0.3)
            shown, whole = await _settled_footer(pilot, app.screen)
            assert whole and "quit" in shown and "next_group" in shown, (size, shown)
            assert ("toggle_x" in shown) is listed and "toggle_x_unlisted" not in shown, (size, shown)
            await pilot.press("x")
            await pilot.pause(0.2)
            assert app.screen.xaxis == "tokens", size


@aio
async def test_f1_and_question_mark_show_and_hide_the_keys_panel(tmp_path):
    """? and F1 did nothing, and the palette had no "help": both now toggle Textual's keys panel."""
    from tuiLM.tui.commands import TuiLMCommands

    write_run(tmp_path / "runs", "one", "gpt")
    app = make_app(runs_root=tmp_path / "runs", now=lambda: FIXED_NOW)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("f1")
        await wait_for(pilot, lambda: bool(app.screen.query("HelpPanel")), what="the keys panel")
        await pilot.press("f1")
        await wait_for(pilot, lambda: not app.screen.query("HelpPanel"), what="the panel to go")
        await pilot.press("2")
        await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen), what="runs")
        await pilot.press("question_mark")
        await wait_for(pilot, lambda: bool(app.screen.query("HelpPanel")), what="the keys panel on runs")
        names = [name for name, _, _ in TuiLMCommands(app.screen)._commands()]
        assert "Help: keys" in names


@aio
async def test_escape_closes_the_keys_panel_before_it_goes_back(tmp_path):
    """esc left the keys panel open and went back a screen: it now closes the panel first, and
    goes back only when no panel is shown."""
    root = tmp_path / "runs"
    run = write_run(root, "a", "gpt")
    app = make_app(run_dir=run, runs_root=root, now=lambda: FIXED_NOW)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, DashboardScreen), what="dashboard")
        dash = app.screen
        await pilot.press("f1")
        await wait_for(pilot, lambda: bool(app.screen.query("HelpPanel")), what="the keys panel")
        await pilot.press("escape")
        await wait_for(pilot, lambda: not app.screen.query("HelpPanel"), what="the panel to go")
        await pilot.pause(0.1)
        assert app.screen is dash
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen), what="back to the runs list")


@aio
async def test_presets_list_marks_an_invalid_preset_and_its_title_stays_one_line(tmp_path):
    """An invalid preset ("bad": n_layers = "two") was listed like any other, and a long folder list
    wrapped the title onto a second line at 80 columns."""
    from textual.widgets import Static

    folder = tmp_path / ("a-long-folder-name-for-presets-" * 2)
    folder.mkdir()
    (folder / "bad.toml").write_text('[model]\nn_layers = "two"\n[train]\nmax_steps = -1\n')
    (folder / "fine.toml").write_text('[run]\nnotes = "all good"\n')
    app = make_app(runs_root=tmp_path / "runs", preset_dirs=[folder])
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, PresetsScreen), what="presets")
        table = app.screen.query_one(DataTable)
        await wait_for(pilot, lambda: len(table.get_row(str(folder / "bad.toml"))[3].plain) > 20,
                       what="the list laid out at its width")
        notes = {str(table.get_row(str(folder / n))[0]): table.get_row(str(folder / n))[3]
                 for n in ("bad.toml", "fine.toml")}
        assert notes["bad"].plain.startswith("✗ 2 errors: model.n_layers: expected an i")
        assert notes["bad"].style == "red" and notes["fine"].plain == "all good"
        title = app.screen.query_one("#presets-title", Static)
        assert title.size.height == 1 and "enter: edit" not in str(title.render())


@aio
async def test_presets_list_reads_a_pipe_or_a_non_utf8_file_as_unreadable_and_goes_on(tmp_path):
    """A FIFO named x.toml in a presets folder hung the app at start (it blocked reading it), and the
    cursor on a file that is not UTF-8 crashed the app (its preview raised). Both read as the CLI says."""
    import os

    folder = tmp_path / "presets"
    folder.mkdir()
    os.mkfifo(folder / "fifo.toml")
    (folder / "binary.toml").write_bytes(b"\xff\xfe[model]\n")
    (folder / "fine.toml").write_text('[run]\nnotes = "all good"\n')
    app = make_app(runs_root=tmp_path / "runs", preset_dirs=[folder])
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, PresetsScreen), what="presets")
        table = app.screen.query_one(DataTable)
        await wait_for(pilot, lambda: str(folder / "fifo.toml") in table.rows and len(table.get_row(str(folder / "fifo.toml"))[3].plain)
                       > 30, what="the list laid out at its width")
        notes = {n: table.get_row(str(folder / n))[3].plain for n in ("fifo.toml", "binary.toml")}
        assert notes["fifo.toml"].startswith("unreadable: not a regular file"), notes
        assert notes["binary.toml"] == "unreadable: not UTF-8 text", notes
        for row in range(table.row_count):  # the cursor over every row: each previews, none crashes
            table.move_cursor(row=row)
            await pilot.pause(0.05)
        assert app.is_running and app.return_code in (None, 0)


@aio
async def test_presets_list_follows_its_folder_and_keeps_the_cursor_on_its_preset(tmp_path, monkeypatch):
    """A preset saved from another shell never appeared ("22 from presets/" after three were added)."""
    folder = tmp_path / "presets"
    folder.mkdir()
    (folder / "zz-mine.toml").write_text('[run]\nnotes = "mine"\n')
    app = make_app(runs_root=tmp_path / "runs", preset_dirs=[folder])
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, PresetsScreen), what="presets")
        table = app.screen.query_one(DataTable)
        table.move_cursor(row=table.get_row_index(str(folder / "zz-mine.toml")))
        (folder / "aa-new.toml").write_text('[run]\nnotes = "new one"\n')
        await wait_for(pilot, lambda: str(folder / "aa-new.toml") in table.rows, what="the new preset listed")
        assert app.screen._selected() == folder / "zz-mine.toml"
        import builtins  # the 2-second check lists and stats: it opens no file (it read each one's head)

        opened, real_open = [], builtins.open
        monkeypatch.setattr(builtins, "open", lambda f, *a, **k: opened.append(f) or real_open(f, *a, **k))
        app.screen._stamp()
        monkeypatch.undo()
        assert not [f for f in opened if str(f).endswith(".toml")], opened


def test_an_app_that_crashed_exits_non_zero(tmp_path, monkeypatch):
    """Textual prints the traceback of an app that crashed and returns; `tuilm` then exited 0."""
    import pytest

    from tuiLM.tui import app as app_module

    def crash(self):
        self._return_code = 1  # (what Textual sets when a handler raised)

    monkeypatch.setattr(app_module.TuiLMApp, "run", crash)
    with pytest.raises(SystemExit) as exited:
        app_module.run_app(preset_dirs=[tmp_path])
    assert exited.value.code == 1


@aio
async def test_the_keys_panel_lists_the_screens_keys_not_the_tables_nor_a_scroll_they_do_not_do(tmp_path):
    """F1 at 80x24 on the runs list listed twelve cursor keys of the table (Cursor up … Page Right) before
    the screen's, which fell off the bottom; on the dashboard it listed ← Scroll Left / → Scroll Right,
    while ← → move the inspect cursor. The table's keys are hidden (they still work); the dashboard's
    body no longer binds ← →, so the panel says Inspect."""
    root = tmp_path / "runs"
    for i in range(3):
        write_run(root, f"r{i}", "gpt", seed=i)
    app = make_app(runs_root=root, now=lambda: FIXED_NOW)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("2")
        await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen), what="runs")
        shown = {b.description for _, b, _, _ in app.screen.active_bindings.values() if not b.system}
        assert "Cursor up" not in shown and "Page Left" not in shown and {"Mark", "Compare"} <= shown, shown
        table = app.screen.query_one(DataTable)
        await pilot.press("end")
        await wait_for(pilot, lambda: table.cursor_row == 2, what="end: the last row")
        await pilot.press("up", "home")
        await wait_for(pilot, lambda: table.cursor_row == 0, what="home: the first row")
        await pilot.press("down")
        await wait_for(pilot, lambda: table.cursor_row == 1, what="down")
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, DashboardScreen), what="the dashboard")
        await pilot.pause(0.3)
        keys = {b.key: b.description for _, b, _, _ in app.screen.active_bindings.values() if not b.system}
        assert keys.get("left") == keys.get("right") == "Inspect", keys
        await pilot.press("right")
        await wait_for(pilot, lambda: app.screen.cursor is not None, what="the inspect cursor")


@aio
async def test_resuming_a_run_without_a_checkpoint_says_step_0_and_its_end_is_told(tmp_path, monkeypatch):
    """r on a run that failed before its first checkpoint said only "Resuming …"; the trainer began again
    at step 0 (the CLI warns so), failed again within a second, and the app said nothing. Both are said."""
    from tuiLM.launch import create_run, spawn_trainer

    from .conftest import TINY_GPT, make_preset

    root = tmp_path / "runs"
    run = create_run(make_preset({**TINY_GPT, "train.max_steps": 10, "checkpoint.every": 4}), name="nan", root=root)
    monkeypatch.setenv("TUILM_FAULT_NAN_AT_STEP", "3")
    assert spawn_trainer(run).wait(timeout=240) == 1
    app = make_app(runs_root=root, now=lambda: FIXED_NOW)
    said: list[tuple[str, str]] = []
    async with app.run_test(size=SIZE) as pilot:
        app.notify = lambda message, **kw: said.append((message, kw.get("severity", "information")))
        app.resume_run(run)
        assert said[0] == (f"Resuming {run.name}: it has no checkpoint, so it starts again at step 0", "warning")
        await wait_for(pilot, lambda: len(said) > 1, what="the end of the resumed trainer", timeout=240)
        assert said[1][0].startswith(f"{run.name} failed: non-finite loss") and said[1][1] == "error", said
        # again: the app now holds the last trainer, its exit and its "failed"; the new trainer's end is told,
        # not the last one's at once (it said "failed" within a second, then nothing at the real end)
        app.resume_run(run)
        proc = app.watcher.proc_of(run)
        await wait_for(pilot, lambda: len(said) > 3, what="the second end", timeout=240)
        assert proc.poll() is not None and said[3][0].startswith(f"{run.name} failed: non-finite loss"), said

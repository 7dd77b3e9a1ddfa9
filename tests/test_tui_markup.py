"""User text in the app is shown literally: square brackets in preset file names and values, problem
messages, run output (samples, stdout.log, failure reasons), compared settings, study parameters and
error notifications are never read as markup (no MarkupError crash, nothing silently dropped).

Each test checks what is on screen (the rendered characters, toasts included: ``run_test`` shows
notifications only when asked), not the values the widgets were given: markup is lost or fails only
when rendering.
"""

from __future__ import annotations

import json
from pathlib import Path

from textual.widgets import DataTable, Input

from tuiLM.config.load import default_preset
from tuiLM.config.write import dumps_resolved
from tuiLM.tui.app import make_app
from tuiLM.tui.screens.dialogs import ConfirmScreen
from tuiLM.tui.screens.editor import PresetEditor
from tuiLM.tui.screens.presets import PresetsScreen
from tuiLM.tui.screens.studies import StudiesScreen
from tuiLM.tui.screens.study import StudyScreen
from tuiLM.tui.studydata import StudyReader, StudyRow, StudySnapshot, TrialView
from tuiLM.tui.widgets.form import PresetForm

from .fixtures.fixture_runs import BASE, FIXED_NOW, KINDS, write_run
from .test_tui_app import aio, open_dashboard, wait_for

SIZE = (160, 48)
NOTES = "[/] and [bold]not bold"


def screen_text(app) -> str:
    """Every character on the screen as the terminal would show it (dialogs and toasts included)."""
    return "\n".join(strip.text for strip in app.screen._compositor.render_strips())


def line_with(text: str, needle: str) -> str:
    return next((line for line in text.splitlines() if needle in line), "")


def bracket_preset(folder: Path) -> Path:
    """``a[x].toml``: bracketed notes, an unknown architecture and a layer count that are not markup,
    and an activation whose problem message quotes its bracketed value."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "a[x].toml"
    path.write_text(f'[run]\nname = "a"\nnotes = "{NOTES}"\n\n[model]\nactivation = "[/red]"\n')
    return path


@aio
async def test_presets_list_shows_bracketed_file_names_and_values(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "a[x].toml").write_text(f'[run]\nnotes = "{NOTES}"\n\n[model]\narch = "[arch]"\nn_layers = "[/]"\n')
    app = make_app(preset_path=folder, runs_root=tmp_path / "runs")
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, PresetsScreen)
                       and app.screen.query_one(DataTable).row_count > 0, what="the presets list")
        await pilot.pause()
        row = line_with(screen_text(app), " a[x] ")  # (the table's row; the preview's first line names the file)
        assert "[arch]" in row and "[/]L × ·" in row and "✗ 2 errors: model." in row, row  # (errors: not its notes)
        assert NOTES in screen_text(app)  # in the preview, literally


@aio
async def test_editor_shows_bracketed_values_and_problems_and_notifies_them_literally(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = bracket_preset(tmp_path)
    app = make_app(preset_path=path, runs_root=tmp_path / "runs")
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, PresetEditor), what="the editor")
        editor = app.screen
        await wait_for(pilot, lambda: any(p.path == "model.activation" for p in editor.problems),
                       what="the activation problem")
        problem = next(p for p in editor.problems if p.path == "model.activation")
        assert "'[/red]'" in problem.message
        await pilot.pause()
        text = screen_text(app)
        assert "a[x].toml" in line_with(text, "preset ")  # the title bar
        assert "'[/red]'" in text  # beside the field and in the problems list
        await editor.query_one(PresetForm).open("run")
        await pilot.pause()
        assert editor.query_one("#f-run--notes", Input).value == NOTES
        assert NOTES in screen_text(app)
        await pilot.press("ctrl+r")  # cannot start: the toast quotes the first error
        await pilot.pause()
        toast = line_with(screen_text(app), "Cannot start")
        assert "Cannot start" in toast
        assert "(got '[/red]')" in screen_text(app)


@aio
async def test_an_unreadable_preset_with_brackets_in_its_name_is_notified_literally(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "b[x]c[bold].toml"
    path.write_text("[/]\n")  # not TOML
    app = make_app(preset_path=path, runs_root=tmp_path / "runs")
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await wait_for(pilot, lambda: len(app._notifications) > 0, what="the error notification")
        await pilot.pause()
        assert "b[x]c[bold].toml" in screen_text(app)


@aio
async def test_confirm_question_shows_a_bracketed_run_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "ok.toml"
    path.write_text('[run]\nname = "ok"\n')
    app = make_app(preset_path=path, run_name="[/]n[b]", runs_root=tmp_path / "runs")
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, PresetEditor), what="the editor")
        app.screen.action_confirm_launch()
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="the question")
        await pilot.pause()
        assert "Start a training run of '[/]n[b]' now?" in screen_text(app)
        await pilot.press("n")


def _with_bracket_output(run: Path) -> None:
    """A failed run whose sample, log event, failure reason and stdout.log all hold markup-like text."""
    lines = (run / "events.jsonl").read_text().splitlines()
    end = json.loads(lines[-1])
    end["reason"] = "loss is [/]NaN [bold]x"
    t = end["time"]
    extra = [{"v": 1, "kind": "log", "time": t, "level": "warning", "message": "[/] [red]literal"},
             {"v": 1, "kind": "sample", "time": t, "step": end["step"], "prompt": "[/]",
              "text": "[/]b[i] [bold"}]
    (run / "events.jsonl").write_text("\n".join(lines[:-1] + [json.dumps(e) for e in extra + [end]]) + "\n")
    with open(run / "stdout.log", "a", encoding="utf-8") as fh:
        fh.write("stdout [/] [red]says [bold]hi\n")


@aio
async def test_dashboard_shows_bracketed_samples_stdout_and_failure_reason(tmp_path):
    run = write_run(tmp_path / "runs", "crash", "failed")
    _with_bracket_output(run)
    app = make_app(run_dir=run, runs_root=tmp_path / "runs", now=lambda: FIXED_NOW)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        dash = await open_dashboard(pilot, app)
        assert any("[/] [red]literal" in m for m in dash.runs[0].logs)
        await pilot.pause()
        text = screen_text(app)
        assert "loss is [/]NaN [bold]x" in text  # the failure box, on top
        assert "stdout [/] [red]says [bold]hi" in text
        dash.query_one("#dash-body").scroll_end(animate=False)  # the samples and the log, at the bottom
        await pilot.pause()
        text = screen_text(app)
        assert "[/]b[i] [bold" in text
        assert text.count("stdout [/] [red]says [bold]hi") >= 1


def _preset_run(root: Path, name: str, path_value: str) -> Path:
    run = write_run(root, name, "gpt")
    preset = default_preset().with_values(dict(BASE, **KINDS["gpt"], **{"data.path": path_value}))
    (run / "preset.toml").write_text(dumps_resolved(preset, header="Frozen preset (fixture)"))
    return run


@aio
async def test_compare_table_shows_bracketed_setting_values(tmp_path):
    a = _preset_run(tmp_path / "runs", "a", "[/]one")
    b = _preset_run(tmp_path / "runs", "b", "two[x]:smile:")
    app = make_app(run_dir=[a, b], runs_root=tmp_path / "runs", now=lambda: FIXED_NOW)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        dash = await open_dashboard(pilot, app)
        assert dash.compare
        await pilot.pause()
        row = line_with(screen_text(app), "data.path")
        assert "[/]one" in row and "two[x]:smile:" in row, row


def _trial(number: int, value: float, activation: str) -> TrialView:
    return TrialView(number=number, state="complete", params=(("optim.lr", 1e-3 * (number + 1)),
                                                              ("model.activation", activation)),
                     value=value, se=None, k=1, values=(value,), seeds=(0,), steps=100, host="h", runs=(),
                     lucky=(), baseline=False, vs_best="", reason="", intermediate=())


@aio
async def test_studies_list_and_study_view_show_bracketed_names_and_values(tmp_path, monkeypatch):
    row = StudyRow("s[x]", "finished", complete=2, target=2, best_value=1.5, best_k=1,
                   best_params=(("model.activation", "[/]gelu"),), storage="sqlite:///[x]/[/]s.db")
    snap = StudySnapshot(name="s[x]", objective="[/]val", direction="minimize", state="finished",
                         storage=row.storage, counts=(("complete", 2),), target=2,
                         trials=(_trial(0, 1.5, "[/]gelu"), _trial(1, 1.7, "[bold]relu")),
                         keys=("optim.lr", "model.activation"),
                         dists=(("optim.lr", "log"), ("model.activation", "choice")),
                         importance=(("optim.lr", 0.7), ("model.activation", 0.3)), best=0, baseline=None,
                         verdicts=("t0 [/] vs t1 [bold]: noise",))
    monkeypatch.setattr(StudyReader, "rows", lambda self: [row])
    monkeypatch.setattr(StudyReader, "snapshot", lambda self, name: snap)
    app = make_app(runs_root=tmp_path / "runs")
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await pilot.press("3")
        await wait_for(pilot, lambda: isinstance(app.screen, StudiesScreen) and app.screen.refreshes > 0,
                       what="the studies list")
        await pilot.pause()
        line = line_with(screen_text(app), "s[x]")
        assert "activation=[/]gelu" in line and "sqlite:///[x]/[/]s.db" in line, line
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, StudyScreen) and app.screen.refreshes > 0,
                       what="the study view")
        for _ in range(2):  # bounded: a crashed app ignores keys
            if getattr(app.screen, "current_param", lambda: None)() != "model.activation":
                await pilot.press("p")
        await pilot.pause(0.2)
        text = screen_text(app)
        assert "s[x] finished" in text  # the title
        assert "[/]gelu" in text and "[bold]relu" in text  # the table and the scatter's categories
        assert "[/]val vs activation" in text and "[/]val over seeds" in text  # border titles
        assert "● trial · ━ best so far" in text  # (the best-so-far legend; the objective is in the titles)
        assert "t0 [/] vs t1 [bold]: noise" in text


@aio
async def test_command_palette_lists_a_bracketed_preset_name_and_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    folder = tmp_path / "mine"
    path = bracket_preset(folder)
    app = make_app(preset_path=folder, runs_root=tmp_path / "runs")
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, PresetsScreen), what="the presets list")
        await pilot.press("ctrl+p")
        await pilot.pause()
        await pilot.press("a", "left_square_bracket", "x", "right_square_bracket")
        await wait_for(pilot, lambda: app.screen.query("CommandList")
                       and app.screen.query_one("CommandList").option_count > 0, what="palette hits")
        await pilot.pause(0.2)
        text = screen_text(app)
        assert "Edit preset a[x]" in text and str(path) in text, text

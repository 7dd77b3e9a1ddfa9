"""The studies screens on the fixture study (tests/fixtures/study: a real tiny study run once by the
engine): the list, the study view, opening a trial's runs, and confirm top-k started from the app."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from textual.widgets import DataTable

from tuiLM.reader import read_run
from tuiLM.study.report import study_summary
from tuiLM.tui.app import make_app
from tuiLM.tui.screens.dashboard import DashboardScreen
from tuiLM.tui.screens.dialogs import AskScreen, ConfirmScreen
from tuiLM.tui.screens.studies import StudiesScreen
from tuiLM.tui.screens.study import StudyScreen
from tuiLM.tui.widgets.scatter import scatter_text

from .test_tui_app import aio

FIXTURE = Path(__file__).parent / "fixtures" / "study" / "runs"


def copy_fixture(tmp_path: Path) -> Path:
    shutil.copytree(FIXTURE, tmp_path / "runs")
    return tmp_path / "runs"


async def wait_for(pilot, cond, what: str, timeout: float = 60.0) -> None:
    t0 = time.monotonic()
    while not cond():
        assert time.monotonic() - t0 < timeout, f"timed out waiting for {what}"
        await pilot.pause(0.05)


async def open_study(app, pilot) -> StudyScreen:
    await pilot.press("3")
    await wait_for(pilot, lambda: isinstance(app.screen, StudiesScreen) and app.screen.refreshes > 0, "studies list")
    await pilot.press("enter")
    await wait_for(pilot, lambda: isinstance(app.screen, StudyScreen) and app.screen.refreshes > 0, "study view")
    return app.screen


@aio
async def test_studies_list_at_80_columns_keeps_the_best_value_whole_and_fits(tmp_path):
    """At 80x24 the best read '3.316' (3.3169 ± 0.0411 k=2 cut at the table's edge) and the table scrolled
    sideways. Below 110 columns the best reads as in the study view's table and nothing overflows."""
    runs = copy_fixture(tmp_path)
    best = study_summary("fixture", None, runs)["best"]
    app = make_app(runs_root=runs)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("3")
        await wait_for(pilot, lambda: isinstance(app.screen, StudiesScreen) and app.screen.refreshes > 0, "list")
        table = app.screen.query_one("#studies-table")
        cells = [str(x) for x in table.get_row("fixture")]
        assert f"{best['value']:.4f}±{best['value_se']:.4f}".replace("±0.", "±.") in cells, cells
        assert table.virtual_size.width <= table.size.width, (table.virtual_size, table.size)


@aio
async def test_studies_list_shows_the_fixture_study(tmp_path):
    runs = copy_fixture(tmp_path)
    expected = study_summary("fixture", None, runs)
    app = make_app(runs_root=runs)
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.press("3")
        await wait_for(pilot, lambda: isinstance(app.screen, StudiesScreen) and app.screen.refreshes > 0, "list")
        screen = app.screen
        row = screen.rows["fixture"]
        c = expected["counts"]
        assert (row.complete, row.running, row.pruned, row.failed) == (c["complete"], c["running"], c["pruned"], c["fail"])
        assert row.state == "finished" and row.target == 8
        assert row.best_value == pytest.approx(expected["best"]["value"])
        assert dict(row.best_params) == expected["best"]["params"]
        assert row.storage.endswith("studies/fixture/journal.log")
        table = screen.query_one("#studies-table")
        cells = [str(x) for x in table.get_row("fixture")]
        ended = c["complete"] + c["pruned"] + c["fail"]  # the trials ended of the target, then how (as study list)
        assert f"{ended}/8: {c['complete']} done, {c['pruned']} pruned" in cells, cells
        assert any(f"{expected['best']['value']:.4f}" in x for x in cells)


@aio
async def test_study_view_from_the_fixture_study(tmp_path):
    runs = copy_fixture(tmp_path)
    expected = study_summary("fixture", None, runs)
    app = make_app(runs_root=runs)
    async with app.run_test(size=(160, 48)) as pilot:
        screen = await open_study(app, pilot)
        snap = screen.snapshot
        assert len(snap.trials) == len(expected["trials"]) and snap.best == expected["best"]["number"]
        table = screen.query_one("#study-table")
        assert table.row_count == len(expected["trials"])
        # sorted by value (best first), with mean ± SE and k in the row
        first = [str(x) for x in table.get_row_at(0)]
        b = expected["best"]
        assert first[0].startswith(str(b["number"])) and f"{b['value']:.4f} ± {b['value_se']:.4f}" in first
        pruned = [str(t.number) for t in snap.trials if t.state == "pruned"]  # k of the planned seeds, as the CLI
        assert pruned and all("0/3" in [str(x) for x in table.get_row_at(table.get_row_index(n))] for n in pruned)
        # sort by trial number, then by a parameter
        assert screen._header[2 + len(snap.keys)] == f"{snap.objective} ▲"  # the sorted column is marked
        await pilot.press("O")
        assert screen.sort_reverse and screen.sort_key == "value"
        assert screen._header[2 + len(snap.keys)] == f"{snap.objective} ▼"
        assert str(table.get_row_at(table.row_count - 1)[0]).startswith(str(b["number"]))
        await pilot.press("o")
        assert screen.sort_key == "number" and not screen.sort_reverse
        assert screen._header[0] == "# ▲" and "▲" not in "".join(screen._header[1:])
        assert [str(table.get_row_at(i)[0]).rstrip("*b") for i in range(3)] == ["0", "1", "2"]
        await pilot.press("o", "o")
        key = screen.sort_key
        assert key == snap.keys[0]
        values = [t.param(key) for t in screen.sorted_trials()]
        assert values == sorted(values)
        assert [str(table.get_row_at(i)[2 + 0]) for i in range(table.row_count)] == [str(v) for v in values]
        # best-so-far curve, top-k seed bands (3 seeds each), scatter with a log x for the learning rate
        best_panel = screen.query_one("#study-best")
        assert best_panel.frame.traces and min(best_panel.frame.traces[-1].y) == pytest.approx(b["value"])
        assert best_panel.frame.traces[-1].step  # drawn as a step: flat until a trial beats it
        curves = [c for c in snap.curves if c.state == "complete"]
        assert curves and all(len(c.per_seed) == 3 for c in curves)
        assert curves[0].number == b["number"]
        assert dict(snap.dists)["optim.lr"] == "log"
        while screen.current_param() != "optim.lr":
            await pilot.press("p")
        assert "log x" in screen.query_one("#study-scatter").border_title
        n_traces = len(screen.query_one("#study-curves").frame.traces)
        await pilot.press("b")
        assert screen.band == "se" and len(screen.query_one("#study-curves").frame.traces) == n_traces
        assert snap.importance and set(dict(snap.importance)) == set(snap.keys)
        assert any("vs runner-up" in v for v in snap.verdicts)
        assert sum("(trial 0)" in v for v in snap.verdicts) == 1  # the runner-up is the baseline: one line
        # a pruned trial's value is the one its pruner judged, at that step
        pruned = next(r for r in expected["trials"] if r["state"] == "pruned")
        row = [str(x) for x in table.get_row_at(table.get_row_index(str(pruned["number"])))]
        assert row[-1] == f"at step {max(int(x) for x in pruned['intermediate'])}"
        assert "host" not in screen._columns  # one machine ran it
        # several machines: a host column (specs/studies.md), each trial's own
        import dataclasses
        screen.snapshot = dataclasses.replace(snap, trials=tuple(
            dataclasses.replace(t, host=f"gpu-{t.number % 2}") for t in snap.trials), token=object())
        screen._draw_table()
        assert screen._columns[-1] == "host"
        assert all(str(table.get_row_at(table.get_row_index(str(t.number)))[-1]) == f"gpu-{t.number % 2}"
                   for t in snap.trials)
        screen.snapshot = snap
        screen._draw_table()
        # more verdicts than the panel's 4 lines: 3 and where to read the rest (lucky lines were cut)
        many = tuple(f"verdict {i}" for i in range(6))
        screen.apply(dataclasses.replace(snap, verdicts=many, token=object()))
        text = str(screen.query_one("#study-verdicts").render())
        assert text.splitlines() == ["verdict 0", "verdict 1", "verdict 2", "… 3 more: tuilm study show fixture"]
        # too few completed trials for importance: how many so far, as `study show` says
        screen.apply(dataclasses.replace(snap, importance=(), token=object()))
        await pilot.pause(0.1)
        text = str(screen.query_one("#study-importance").render())
        assert f"from 5 completed trials on ({snap.count('complete')} so far)" in text, text
        screen.apply(snap)
        # enter: the best trial's three seed runs open together, as one seed group (mean line and band)
        table.move_cursor(row=table.get_row_index(str(b["number"])))
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, DashboardScreen), "compare view")
        assert sorted(r.path.name for r in app.screen.runs) == sorted(b["runs"])
        from tuiLM.tui.seedgroup import SeedGroupData
        assert len(app.screen.sources) == 1 and isinstance(app.screen.sources[0], SeedGroupData)
        await pilot.press("escape")  # back to the study, not to the runs list
        await wait_for(pilot, lambda: app.screen is screen, "the study view again")


def test_scatter_draws_every_point():
    text = scatter_text([(1e-3, 1.0, "complete"), (1e-2, 2.0, "pruned")], 20, 5, log_x=True)
    plain = text.plain
    assert plain.count("●") == 1 and plain.count("○") == 1  # complete and pruned, told apart
    assert "1.0e-3" in plain and "0.01" in plain
    lines = plain.splitlines()
    assert lines[0].rstrip().endswith("○") and lines[3].index("●") == 7 + 1  # margin: off the y axis
    assert lines[0].split()[0] == "2" and lines[3].split()[0] == "1"  # round values, top and bottom
    # two trials in one cell: the completed one shows
    shared = scatter_text([(1.0, 1.0, "pruned"), (1.0, 1.0, "complete"), (2.0, 2.0, "complete")], 20, 5).plain
    assert shared.count("●") == 2 and "○" not in shared
    # y labels at round 1-2-5 values, each on the row nearest its value, one format, a row apart at
    # least (they sat at the data's extremes: 12.00, 8.50, 5.00); a NaN objective is left out
    rows = scatter_text([(1, 5.0, "complete"), (2, 12.0, "complete"), (3, float("nan"), "complete")], 20, 12).plain
    labelled = {i: line.split()[0] for i, line in enumerate(rows.splitlines()[:11]) if line[:6].strip()}
    assert list(labelled.values()) == ["12", "10", "8", "6"], labelled
    assert all(abs(12 - i * 0.7 - float(v)) <= 0.35 for i, v in labelled.items())  # half a row (0.7) at most
    assert rows.count("●") == 2
    fine = scatter_text([(1, 3.2113, "complete"), (2, 3.2451, "complete")], 30, 9).plain
    assert [line.split()[0] for line in fine.splitlines()[:8] if line[:6].strip()] == ["3.24", "3.22"]
    # labels wider than 6 cells (3.21132) move the grid over on every row alike: a marker's column is its x
    close = scatter_text([(1, 3.21130, "complete"), (2, 3.21135, "complete")], 30, 9).plain.splitlines()
    assert [line.index("●") for line in close[:8] if "●" in line] == [len(close[0]) - 2, 8 + 1], close
    # a NaN objective in the middle: the markers after it kept their own x (they took the NaN one's)
    mid = scatter_text([(1, 5.0, "complete"), (2, float("nan"), "complete"), (3, 12.0, "complete")], 20, 6)
    cols = [line.index("●") for line in mid.plain.splitlines()[:5] if "●" in line]
    assert cols == [len(mid.plain.splitlines()[0]) - 2, 7 + 1], mid.plain


@aio
async def test_stopping_a_study_with_no_running_trial_says_so_and_asks_nothing(tmp_path):
    """The app wrote a stop request for an idle study (it lingered until the next run); it now says
    there is nothing to stop, as `tuilm study stop` does."""
    runs = copy_fixture(tmp_path)
    app = make_app(runs_root=runs)
    said = []
    async with app.run_test(size=(80, 24)) as pilot:
        await open_study(app, pilot)
        app.notify = lambda message, **kw: said.append((message, kw.get("severity")))
        assert app.screen.check_action("stop_study", ()) is False  # S is not offered on a finished study
        app.screen.action_stop_study()  # (the action, as a stale view could still run it)
        await pilot.pause(0.1)
        await pilot.press("enter")  # the confirm dialog: Stop
        await wait_for(pilot, lambda: said, "the answer")
    assert said == [("Study fixture has no running trial: nothing to stop", "warning")], said
    assert not (runs / "studies" / "fixture" / "stop_request").exists()


@pytest.mark.slow
@aio
async def test_confirm_top_k_from_the_study_view_starts_runs(tmp_path, monkeypatch):
    runs = copy_fixture(tmp_path)
    monkeypatch.setenv("TUILM_RUNS_DIR", str(runs))
    before = {p.name for p in runs.iterdir()}
    app = make_app(runs_root=runs)
    async with app.run_test(size=(160, 48)) as pilot:
        screen = await open_study(app, pilot)
        await pilot.press("k")
        await wait_for(pilot, lambda: isinstance(app.screen, AskScreen), "the top-k question")
        app.screen.query_one("#ask-input").value = "1"
        await pilot.press("enter")
        await wait_for(pilot, lambda: len(app.study_procs) == 1, "the confirm process")
        proc = app.study_procs[0]
        try:
            await wait_for(pilot, lambda: any(p.name.startswith("fixture-confirm1-t000-s0") for p in runs.iterdir())
                           or proc.poll() is not None, "the first confirmation run", timeout=180)
            new = [p.name for p in runs.iterdir() if p.name not in before]
            assert any(n.startswith("fixture-confirm1-t000-s0") for n in new), \
                (runs / "studies").joinpath(*[p.name for p in (runs / "studies").glob("app-confirm-*.log")][:1]).read_text()
            # S from the studies list, as a user stops it: the running confirmation study's row
            await pilot.press("3")  # (already in the studies mode: back to its list)
            await wait_for(pilot, lambda: isinstance(app.screen, StudiesScreen)
                           and app.screen.rows.get("fixture-confirm1") is not None
                           and app.screen.rows["fixture-confirm1"].state == "running", "the running study's row")
            table = app.screen.query_one(DataTable)
            table.move_cursor(row=table.get_row_index("fixture-confirm1"))
            await wait_for(pilot, lambda: app.screen.check_action("stop_study", ()) is True, "S offered")
            await pilot.press("S")
            await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), "the stop question")
            await pilot.press("enter")
            await wait_for(pilot, lambda: (runs / "studies" / "fixture-confirm1" / "stop_request").exists(),
                           "the stop request S writes")
            assert proc.wait(timeout=180) is not None
        finally:
            if proc.poll() is None:
                app.stop_study("fixture-confirm1")
                proc.wait(timeout=180)
        assert screen is not None
        seed_run = next(p for p in runs.iterdir() if p.name.startswith("fixture-confirm1-t000-s0"))
        assert read_run(seed_run).state in ("stopped", "completed"), read_run(seed_run).state


@aio
async def test_a_study_command_ending_while_the_app_closes_is_no_crash(tmp_path):
    """The watcher's timer can fire after the last screen has gone (CI caught `confirm` ending just as
    the test's app closed: ScreenStackError). It must then do nothing."""
    app = make_app(runs_root=tmp_path)
    async with app.run_test(size=(80, 24)):
        proc = subprocess.Popen([sys.executable, "-c", "pass"])
        proc.wait()
        app._study_watch.append((proc, ["confirm", "x", "--top", "1"], tmp_path / "x.log"))
    assert not app.screen_stack
    app._watch_studies()  # raised ScreenStackError before the guard
    assert app._study_watch  # left for nobody: the app is gone


def test_study_curves_follow_the_resume_rule_and_read_only_what_grew(tmp_path):
    """A trial's validation curve comes from reader.RunReader: what a resume superseded is gone, and a
    running trial's file is read incrementally (the same reader, polled again)."""
    from tuiLM.events import EventWriter
    from tuiLM.tui.studydata import StudyReader

    run = tmp_path / "t0"
    run.mkdir()
    with EventWriter(run / "events.jsonl") as w:
        w.write("run_start", step=0)
        w.write("eval", step=100, tokens=1, val_loss=2.0, val_bpb=1.5)
        w.write("eval", step=200, tokens=2, val_loss=1.9, val_bpb=1.4)  # superseded below
        w.write("run_start", step=100)  # resumed from the step-100 checkpoint
        w.write("eval", step=200, tokens=2, val_loss=1.8, val_bpb=1.3)
    reader = StudyReader(tmp_path)
    assert reader._evals(run, "val_bpb") == [(100, 1.5), (200, 1.3)]
    first = reader._readers[run / "events.jsonl"]
    with EventWriter(run / "events.jsonl") as w:
        w.write("eval", step=300, tokens=3, val_loss=1.7, val_bpb=float("nan"))  # a NaN eval is no point
        w.write("eval", step=400, tokens=4, val_loss=1.6, val_bpb=1.2)
    assert reader._evals(run, "val_bpb") == [(100, 1.5), (200, 1.3), (400, 1.2)]
    assert reader._readers[run / "events.jsonl"] is first  # polled again, not re-read
    with EventWriter(run / "events.jsonl") as w:
        w.write("run_end", status="completed", step=400, reason="")
    assert reader._evals(run, "val_bpb")[-1] == (400, 1.2)
    assert run / "events.jsonl" not in reader._readers  # ended: only its curve is kept
    assert reader._evals(run, "val_loss")[-1] == (400, 1.6)  # curves are kept per objective


def test_a_study_whose_trials_were_stopped_reads_stopped_not_idle_or_running(tmp_path):
    """One wording for the app and `study list` (the CLI said 'idle' where the app said 'finished')."""
    from tuiLM.study.report import study_state as _state

    counts = {"complete": 1, "running": 0, "stopped": 1, "pruned": 0, "fail": 0, "waiting": 0}
    assert _state({"counts": counts, "target": 4}, None) == "stopped"
    assert _state({"counts": {**counts, "running": 1}, "target": 4}, None) == "running"
    assert _state({"counts": {**counts, "stopped": 0}, "target": 4}, None) == "idle"
    assert _state({"counts": {**counts, "stopped": 0, "complete": 4}, "target": 4}, None) == "finished"
    (tmp_path / "stop_request").write_text("1\n")
    assert _state({"counts": {**counts, "running": 1}, "target": 4}, tmp_path) == "stopping"
    runs = copy_fixture(tmp_path)
    listing = subprocess.run([sys.executable, "-m", "tuiLM.cli", "study", "list"], capture_output=True, text=True,
                             env={**os.environ, "TUILM_RUNS_DIR": str(runs), "COLUMNS": "80"}, timeout=120)
    assert listing.returncode == 0 and "fixture  finished" in listing.stdout, listing.stdout
    # at 80 columns the best params wrap between items, never inside one ("weight_decay" / "=0.0557")
    words = listing.stdout.split()
    assert {"lr=0.004055", "weight_decay=0.0557", "n_layers=2"} <= set(words), listing.stdout


@aio
async def test_a_study_command_that_fails_at_once_says_why_in_the_app(tmp_path, monkeypatch):
    """`n` with a file that is not there: the app says it failed and why (the error was only in the
    command's log), and c is not offered while a worker this app started for the study still runs."""
    from tuiLM.tui.screens.studyactions import offers

    runs = copy_fixture(tmp_path)
    monkeypatch.chdir(tmp_path)
    app = make_app(runs_root=runs)
    said = []
    async with app.run_test(size=(80, 24)) as pilot:
        app.notify = lambda message, **kw: said.append((message, kw.get("severity")))
        await pilot.press("3")
        await wait_for(pilot, lambda: isinstance(app.screen, StudiesScreen) and app.screen.refreshes > 0, "studies")
        await pilot.press("n")
        await wait_for(pilot, lambda: isinstance(app.screen, AskScreen), "the file question")
        app.screen.query_one("#ask-input").value = "nope.toml"
        await pilot.press("enter")
        await wait_for(pilot, lambda: any(sev == "error" for _, sev in said), "the failure", timeout=60)
        failed = [m for m, sev in said if sev == "error"]
        assert "`tuilm study run nope.toml` failed (exit 1)" in failed[0] and "no such study file" in failed[0], said
        assert said[0][0].startswith("Starting `tuilm study run nope.toml`")

        class Alive:
            returncode = None

            def poll(self):
                return None

        app._study_watch.append((Alive(), ["worker", "fixture"], runs / "studies" / "x.log"))
        assert app.study_busy("fixture") and not app.study_busy("other")
        app._study_watch[-1] = (Alive(), ["run", "some.toml"], runs / "studies" / "x.log")
        assert app.study_busy("other")  # (a study file names no study this app can match: every one waits)
        app._study_watch.clear()
    assert offers("continue_study", "stopped") and offers("continue_study", "idle")
    assert not offers("continue_study", "running", live=1) and not offers("continue_study", "finished")
    # running with no trainer alive here: its controller was killed (or runs on another host): c recovers it
    assert offers("continue_study", "running", live=0)


@aio
async def test_an_unreadable_study_says_why_and_offers_no_action(tmp_path):
    runs = copy_fixture(tmp_path)
    broken = runs / "studies" / "broken"
    broken.mkdir()
    (broken / "journal.log").write_text("garbage{\n")
    app = make_app(runs_root=runs)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("3")
        await wait_for(pilot, lambda: isinstance(app.screen, StudiesScreen) and app.screen.refreshes > 0, "studies")
        app.push_screen(StudyScreen("broken"))
        def title() -> str:
            found = app.screen.query("#study-title")
            return str(found.first().render()) if found else ""

        await wait_for(pilot, lambda: isinstance(app.screen, StudyScreen) and "Study broken:" in title(), "the error")
        assert "damaged journal" in title(), title()
        screen = app.screen
        assert not any(screen.check_action(a, ()) for a in (*screen.OFFERED, "sort", "sort_unlisted", "next_param",
                                                            "page"))


def test_a_failed_study_command_is_told_by_its_error_line_and_the_lines_that_detail_it(tmp_path):
    from tuiLM.tui.services import log_verdict

    log = tmp_path / "app-run.log"
    log.write_text("study s · 2 trials\nerror: the preset has errors:\n  model.d_model: must be > 0\n"
                   "  optim.lr: must be > 0\n")
    said = log_verdict(log, 1)
    assert said.startswith("failed (exit 1): error: the preset has errors: model.d_model: must be > 0 optim.lr")
    assert log_verdict(log, 0) == "ended: optim.lr: must be > 0"
    assert "(no output)" in log_verdict(tmp_path / "missing.log", 0)


def test_resuming_a_pruned_trial_by_hand_says_the_study_keeps_its_verdict(tmp_path):
    """`tuilm resume` on a pruned trial's run trains it on, but Optuna does not reopen a finished
    trial: the user is told before the run goes on (the app says the same in its notice)."""
    from tuiLM.headless import outside_study

    runs = copy_fixture(tmp_path)
    pruned = next(runs.glob("fixture-t004-s0-*"))
    assert outside_study(next(runs.glob("fixture-t005-s0-*"))) is None  # a completed trial
    (pruned / "stop_request").unlink(missing_ok=True)
    env = {**os.environ, "TUILM_RUNS_DIR": str(runs), "COLUMNS": "200"}
    r = subprocess.run([sys.executable, "-m", "tuiLM.cli", "resume", pruned.name], env=env, capture_output=True,
                       text=True, timeout=300, stdin=subprocess.DEVNULL)
    assert r.returncode == 0, r.stdout + r.stderr
    first = r.stdout.splitlines()[0]
    assert first == (f"note: {pruned.name}: trial 4 of study fixture, which pruned it. The run goes on; "
                     "the study keeps the trial pruned, with the value it judged")
    assert "completed at step 30/30" in r.stdout
    assert outside_study(pruned) is None  # completed now: nothing more to say

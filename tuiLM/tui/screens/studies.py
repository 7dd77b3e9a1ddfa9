"""Studies in the app (specs/studies.md, "Views in the app"): the studies list (key 3) and a study view.

Both read the study's Optuna storage in a worker thread (``studydata.StudyReader`` keeps it open, so a
refresh reads only what was appended) and post immutable snapshots in messages; widgets never touch the
storage. Actions start the same commands a user would type (``tuilm study run / worker / confirm``) as
detached subprocesses, and stop trials through the engine's stop-request contract.
"""

from __future__ import annotations

import math
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, Horizontal, Vertical
from textual.message import Message
from textual.screen import ModalScreen, Screen
from textual.widgets import Button, DataTable, Footer, Input, Label, Static
from textual.worker import get_current_worker

from ..studydata import TOP_K, StudyReader, StudyRow, StudySnapshot, TrialView
from ..seedgroup import seed_band
from ..widgets.linetable import LineTable
from ..widgets.plot import Fill, Frame, PlotPanel, Trace, fmt_value
from .dialogs import ConfirmScreen

REFRESH_S = 2.0
STATE_STYLE = {"running": "bold green", "stopping": "yellow", "finished": "cyan", "idle": "dim",
               "unreadable": "bold red", "complete": "green", "pruned": "magenta", "fail": "red",
               "waiting": "dim"}
COLORS = ["#4ea1ff", "#f4a261", "#7bd389", "#e76f51", "#c77dff", "#ffd166", "#4cc9f0", "#f72585"]


def _fmt_param(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.3g}"
    return str(v)


def short_key(key: str, keys: tuple[str, ...] | list[str]) -> str:
    """'lr' for optim.lr unless two sections share the key name."""
    tail = key.split(".", 1)[-1]
    return tail if sum(1 for k in keys if k.split(".", 1)[-1] == tail) == 1 else key


class StudiesUpdated(Message):
    def __init__(self, rows: list[StudyRow]) -> None:
        super().__init__()
        self.rows = rows

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, StudiesUpdated)


class StudyUpdated(Message):
    def __init__(self, snapshot: StudySnapshot | None, error: str = "") -> None:
        super().__init__()
        self.snapshot = snapshot
        self.error = error

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, StudyUpdated)


class AskScreen(ModalScreen["str | None"]):
    """One line of input (a study file path, a number)."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, question: str, default: str = "") -> None:
        super().__init__(classes="dialog-screen")
        self.question, self.default = question, default

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(self.question, classes="dialog-question")
            yield Input(self.default, id="ask-input")
            with Horizontal(classes="dialog-buttons"):
                yield Button("OK (enter)", variant="primary", id="ok")
                yield Button("Cancel (esc)", id="cancel")

    @on(Input.Submitted)
    @on(Button.Pressed, "#ok")
    def _submit(self) -> None:
        self.dismiss(self.query_one("#ask-input", Input).value.strip() or None)

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)


# -- the studies list --------------------------------------------------------------------------------

class StudiesScreen(Screen):
    BINDINGS = [
        Binding("enter", "open", "Open"),
        Binding("n", "new_study", "Run a study file"),
        Binding("c", "continue_study", "Continue"),
        Binding("S", "stop_study", "Stop study"),
        Binding("f5", "refresh", "Refresh", show=False),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.rows: dict[str, StudyRow] = {}
        self._wake = threading.Event()
        self.refreshes = 0

    def compose(self) -> ComposeResult:
        yield Static(id="studies-title", classes="title-bar")
        yield DataTable(id="studies-table", cursor_type="row", zebra_stripes=True)
        yield Static(id="studies-hint")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        for key, label in (("study", "study"), ("state", "state"), ("trials", "done/run/prn/fail"),
                           ("best", "best"), ("params", "best params"), ("storage", "storage"),
                           ("last", "last activity")):
            table.add_column(label, key=key)
        table.focus()
        self._title()
        self._refresh_loop()

    def _title(self) -> None:
        from ...study.storage import studies_root

        self.query_one("#studies-title", Static).update(Text.assemble(
            ("Studies ", "bold"), (f"{len(self.rows)} in {studies_root(self.app.runs_root_dir())}/", "dim")))
        self.query_one("#studies-hint", Static).update(Text(
            "enter: open · n: run a study file · c: continue · S: stop" if self.rows else
            "no studies yet: n runs a study file (e.g. presets/studies/quickstart-lr.toml)", style="dim"))

    @work(thread=True, exclusive=True, group="studies-refresh")
    def _refresh_loop(self) -> None:
        worker = get_current_worker()
        reader = StudyReader(self.app.runs_root_dir())
        while not worker.is_cancelled:
            if self._shown():
                self.post_message(StudiesUpdated(reader.rows()))
            self._wake.wait(REFRESH_S)
            self._wake.clear()

    def _shown(self) -> bool:
        try:
            return self.app.screen is self
        except Exception:
            return False

    def action_refresh(self) -> None:
        self._wake.set()

    def on_screen_resume(self) -> None:
        self._wake.set()

    @on(StudiesUpdated)
    def _update(self, msg: StudiesUpdated) -> None:
        table = self.query_one(DataTable)
        seen = set()
        for row in msg.rows:
            seen.add(row.name)
            target = f"/{row.target}" if row.target else ""
            best = "—" if row.best_value is None else f"{row.best_value:.4f}" + (
                f" ± {row.best_se:.4f}" if row.best_se is not None else "") + f" k={row.best_k}"
            cells = {
                "study": Text(row.name, style="bold") + (Text(f" (confirms {row.confirm_of})", style="dim")
                                                          if row.confirm_of else Text("")),
                "state": Text(row.state, style=STATE_STYLE.get(row.state, "")),
                "trials": f"{row.complete}{target} / {row.running} / {row.pruned} / {row.failed}",
                "best": best if not row.error else Text(row.error, style="red"),
                "params": " ".join(f"{short_key(k, [x for x, _ in row.best_params])}={_fmt_param(v)}"
                                   for k, v in row.best_params),
                "storage": Path(row.storage).name if row.storage.endswith(".log") else row.storage,
                "last": time.strftime("%m-%d %H:%M", time.localtime(row.last_activity)) if row.last_activity else "—",
            }
            if row.name in self.rows and row.name in table.rows:
                for col, value in cells.items():
                    table.update_cell(row.name, col, value)
            else:
                table.add_row(*cells.values(), key=row.name)
            self.rows[row.name] = row
        for name in list(self.rows):
            if name not in seen:
                del self.rows[name]
                if name in table.rows:
                    table.remove_row(name)
        self.refreshes += 1
        self._title()

    def _cursor(self) -> str | None:
        table = self.query_one(DataTable)
        if table.row_count == 0:
            return None
        return table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value

    @on(DataTable.RowSelected)
    def _selected(self, event: DataTable.RowSelected) -> None:
        self.action_open()

    def action_open(self) -> None:
        name = self._cursor()
        if name:
            self.app.push_screen(StudyScreen(name))

    def action_new_study(self) -> None:
        default = str(Path("presets/studies/quickstart-lr.toml")) if Path("presets/studies").is_dir() else ""

        def done(path: str | None) -> None:
            if path:
                self.app.start_study(["run", path])
                self._wake.set()

        self.app.push_screen(AskScreen("Run a study file (tuilm study run FILE)", default), done)

    def action_continue_study(self) -> None:
        name = self._cursor()
        if name:
            self.app.start_study(["worker", name])
            self._wake.set()

    def action_stop_study(self) -> None:
        name = self._cursor()
        if name:
            self.app.push_screen(ConfirmScreen(f"Stop study {name}? Running trials checkpoint and end stopped; "
                                               "continue resumes them.", yes="Stop"),
                                 lambda ok: ok and self.app.stop_study(name))

    def palette_commands(self) -> list[tuple[str, str, Any]]:
        return [("Run a study file", "tuilm study run FILE in the background (n)", self.action_new_study),
                ("Refresh studies", "Re-read the studies now", self.action_refresh)]


# -- one study ----------------------------------------------------------------------------------------

SORTS = ("value", "number", "state")


class StudyScreen(Screen):
    BINDINGS = [
        Binding("escape", "app.pop_screen", "Back"),
        Binding("enter", "open_trial", "Trial's runs"),
        Binding("o", "sort", "Sort"),
        Binding("O", "reverse", "Reverse", show=False),
        Binding("p", "next_param", "Param"),
        Binding("b", "band", "Band"),
        Binding("g", "page", "Panels", show=False),
        Binding("x", "stop_trial", "Stop trial"),
        Binding("S", "stop_study", "Stop study"),
        Binding("c", "continue_study", "Continue"),
        Binding("k", "confirm", "Confirm top-k"),
        Binding("f5", "refresh", "Refresh", show=False),
    ]

    def __init__(self, name: str) -> None:
        super().__init__()
        self.study_name = name
        self.snapshot: StudySnapshot | None = None
        self.sort_key = "value"
        self.sort_reverse = False
        self.param_index = 0
        self.band = "minmax"  # or "se"
        self._wake = threading.Event()
        self.refreshes = 0
        self._shown_token: Any = None
        self._columns: list[str] = []
        self._cells: dict[int, tuple] = {}  # trial number -> (trial, is best, cells)
        self._drawn: dict[str, Any] = {}  # part -> the inputs it was last drawn from

    def compose(self) -> ComposeResult:
        yield Static(id="study-title", classes="title-bar")
        with Horizontal(id="study-body"):
            yield LineTable(id="study-table")
            with Grid(id="study-plots"):
                yield PlotPanel("best so far", id="study-best")
                yield PlotPanel("top-k val curves", id="study-curves")
                yield Static(id="study-scatter", classes="study-panel")
                yield Static(id="study-importance", classes="study-panel")
        yield Static(id="study-verdicts")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#study-scatter").border_title = "objective vs param"
        self.query_one("#study-importance").border_title = "importance"
        self.query_one(LineTable).focus()
        self.query_one("#study-title", Static).update(Text(f"Study {self.study_name} · loading…", style="bold"))
        self._refresh_loop()

    @work(thread=True, exclusive=True, group="study-refresh")
    def _refresh_loop(self) -> None:
        worker = get_current_worker()
        reader = StudyReader(self.app.runs_root_dir())
        while not worker.is_cancelled:
            if self._shown():
                try:
                    self.post_message(StudyUpdated(reader.snapshot(self.study_name)))
                except Exception as e:  # a damaged or vanished journal: say so, keep the screen
                    self.post_message(StudyUpdated(None, str(e).splitlines()[0] if str(e) else type(e).__name__))
            self._wake.wait(REFRESH_S)
            self._wake.clear()

    def _shown(self) -> bool:
        try:
            return self.app.screen is self
        except Exception:
            return False

    def action_refresh(self) -> None:
        self._wake.set()

    def on_screen_resume(self) -> None:
        self._wake.set()

    @on(StudyUpdated)
    def _updated(self, msg: StudyUpdated) -> None:
        if msg.snapshot is None:
            self.query_one("#study-title", Static).update(Text(f"Study {self.study_name}: {msg.error}", style="red"))
            return
        self.apply(msg.snapshot)

    # -- drawing ---------------------------------------------------------------------------------

    def apply(self, snap: StudySnapshot) -> None:
        """Show a snapshot (the bench times this plus the repaint)."""
        self.snapshot = snap
        self.refreshes += 1
        self._draw_title()
        self._draw_table()
        self._draw_best()
        self._draw_curves()
        self._draw_scatter()
        self._draw_importance()
        if not self._same("verdicts", snap.verdicts[:4]):
            self.query_one("#study-verdicts", Static).update(Text("\n".join(snap.verdicts[:4]), style="")
                                                             if snap.verdicts else "")
        if self.refreshes == 1:  # the text panels fit their size, known after the first layout
            self.call_after_refresh(self._redraw_text_panels)

    def _redraw_text_panels(self) -> None:
        if self.snapshot is not None:
            self._drawn.pop("scatter", None)
            self._drawn.pop("importance", None)
            self._draw_scatter()
            self._draw_importance()

    def on_resize(self) -> None:
        self.call_after_refresh(self._redraw_text_panels)

    def _draw_title(self) -> None:
        s = self.snapshot
        assert s is not None
        best = next((t for t in s.trials if t.number == s.best), None)
        best_text = "best —" if best is None or best.value is None else \
            f"best {best.value:.4f}" + (f" ± {best.se:.4f}" if best.se is not None else "") + \
            f" (t{best.number}, k={best.k})"
        target = f"/{s.target}" if s.target else ""
        title = Text.assemble(
            (f"{s.name} ", "bold"), (s.state, STATE_STYLE.get(s.state, "")),
            f" · {s.count('complete')}{target} done {s.count('running')} run {s.count('pruned')} pruned "
            f"{s.count('fail')} failed · ", (best_text, "bold"),
            (f" · sort {self.sort_key}{' desc' if self.sort_reverse else ''}", "dim"), no_wrap=True, overflow="ellipsis")
        if not self._same("title", title.markup):
            self.query_one("#study-title", Static).update(title)

    def sorted_trials(self) -> list[TrialView]:
        s = self.snapshot
        assert s is not None
        sign = -1 if s.direction == "maximize" else 1
        key = self.sort_key

        def k(t: TrialView) -> tuple:
            if key == "value":
                return (t.value is None, sign * t.value if t.value is not None else 0.0, t.number)
            if key == "number":
                return (False, t.number, 0)
            if key == "state":
                return (False, t.state, t.number)
            v = t.param(key)
            return (v is None, v if isinstance(v, (int, float)) else str(v), t.number)

        return sorted(s.trials, key=k, reverse=self.sort_reverse)

    def _row_cells(self, t: TrialView) -> tuple:
        s = self.snapshot
        assert s is not None
        value = "—" if t.value is None else f"{t.value:.4f}" + (f" ± {t.se:.4f}" if t.se is not None else "")
        flags = ("*" if t.number == s.best else "") + ("b" if t.baseline else "")
        return (f"{t.number}{flags}", Text(t.state, style=STATE_STYLE.get(t.state, "")),
                *[_fmt_param(t.param(k)) for k in s.keys], value, str(t.k), "—" if t.steps is None else str(t.steps),
                Text(t.vs_best + (" lucky?" if t.lucky else ""), style="yellow" if t.lucky else
                     "dim" if "noise" in t.vs_best else ""))

    def _draw_table(self) -> None:
        """Rows in the sort order; a trial's cells are rebuilt only when the trial changed, and the
        table renders only rows whose cells changed (a live refresh of 500 trials touches a few)."""
        s = self.snapshot
        assert s is not None
        table = self.query_one(LineTable)
        token = (s.token, self.sort_key, self.sort_reverse)
        if token == self._shown_token:
            return
        self._shown_token = token
        cols = ["#", "state", *[short_key(k, s.keys) for k in s.keys], s.objective, "k", "steps", "vs best"]
        if self._columns != cols:
            table.set_columns(cols)
            self._columns = cols
            self._cells = {}
        rows = []
        for t in self.sorted_trials():
            best = t.number == s.best
            hit = self._cells.get(t.number)
            if hit is None or hit[1] != best or not (hit[0] is t or hit[0] == t):
                hit = self._cells[t.number] = (t, best, self._row_cells(t))
            rows.append((str(t.number), hit[2]))
        table.set_rows(rows)

    def _same(self, part: str, key: Any) -> bool:
        """True when ``part`` was last drawn from equal inputs (a live refresh redraws only what moved)."""
        if self._drawn.get(part) == key:
            return True
        self._drawn[part] = key
        return False

    def _draw_best(self) -> None:
        s = self.snapshot
        assert s is not None
        sign = -1 if s.direction == "maximize" else 1
        pts = sorted((t.number, t.value) for t in s.trials if t.state == "complete" and t.value is not None)
        if self._same("best", (tuple(pts), s.objective, sign)):
            return
        panel = self.query_one("#study-best", PlotPanel)
        if not pts:
            panel.set_frame(Frame([], message="no completed trial yet"))
            return
        x = np.array([p[0] for p in pts], dtype=float)
        y = np.array([p[1] for p in pts], dtype=float)
        best = sign * np.minimum.accumulate(sign * y)
        panel.border_subtitle = f"trial → best {s.objective}"
        panel.set_frame(Frame([Trace(x, y, "#5c6370", "trial", dim=True), Trace(x, best, "#7bd389", "best")],
                              message=""))

    def _draw_curves(self) -> None:
        s = self.snapshot
        assert s is not None
        traces = []
        legend = []
        if self._same("curves", (s.curves, self.band, s.objective)):
            return
        done = [c for c in s.curves if c.state == "complete"]
        fills = []
        for i, c in enumerate(done):
            color = COLORS[i % len(COLORS)]
            x = np.array(c.steps, dtype=float)
            mean, lo, hi, _ = seed_band(np.array(c.per_seed, dtype=float), self.band)
            ok = np.isfinite(mean)
            if len(c.per_seed) > 1:
                fills.append(Fill(x[ok], lo[ok], hi[ok], color))
            traces.append(Trace(x[ok], mean[ok], color, f"t{c.number}"))
            legend.append(f"[{color}]━[/] t{c.number}")
        for c in s.curves:
            if c.state != "complete":  # pruned / running: the first seed's curve, as far as it got
                x = np.array(c.steps, dtype=float)
                y = np.array(c.per_seed[0], dtype=float)
                ok = np.isfinite(y)
                traces.append(Trace(x[ok], y[ok], "#8a6d8f", f"t{c.number}", dim=True))
        panel = self.query_one("#study-curves", PlotPanel)
        panel.border_title = f"top-{min(TOP_K, len(done))} {s.objective} over seeds"
        panel.border_subtitle = ("min–max" if self.band == "minmax" else "± SE") + " band (b) · dim: pruned"
        panel.set_frame(Frame(traces, message="no curves yet", fills=tuple(fills)))

    def current_param(self) -> str | None:
        s = self.snapshot
        if s is None or not s.keys:
            return None
        return s.keys[self.param_index % len(s.keys)]

    def _draw_scatter(self) -> None:
        s = self.snapshot
        assert s is not None
        widget = self.query_one("#study-scatter", Static)
        key = self.current_param()
        if key is None:
            widget.update("")
            return
        kind = dict(s.dists).get(key, "range")
        pts = [(t.param(key), t.value, t.state) for t in s.trials
               if t.value is not None and t.state in ("complete", "pruned") and t.param(key) is not None]
        w, h = max(10, widget.size.width - 2), max(3, widget.size.height - 2)
        if self._same("scatter", (key, kind, tuple(pts), w, h, s.objective)):
            return
        widget.border_title = f"{s.objective} vs {short_key(key, s.keys)} (p)" + (" · log x" if kind == "log" else "")
        widget.update(scatter_text(pts, w, h, log_x=kind == "log", choices=kind == "choice"))

    def _draw_importance(self) -> None:
        s = self.snapshot
        assert s is not None
        widget = self.query_one("#study-importance", Static)
        if self._same("importance", (s.importance, s.keys, widget.size)):
            return
        if not s.importance:
            widget.update(Text("needs 2+ completed trials", style="dim italic"))
            return
        w = max(10, widget.size.width - 2)
        names = [short_key(k, s.keys) for k, _ in s.importance]
        label_w = min(max(len(n) for n in names), max(4, w // 3))
        bar_w = max(1, w - label_w - 7)
        lines = Text()
        for (key, v), name in zip(s.importance, names):
            n = v * bar_w
            full = int(n)
            part = " ▏▎▍▌▋▊▉"[int((n - full) * 8)] if full < bar_w else ""
            lines.append(f"{name[:label_w]:<{label_w}} ", style="bold")
            lines.append("█" * full + part.strip(), style="#4ea1ff")
            lines.append(f" {v:.2f}\n", style="dim")
        widget.update(lines)

    # -- actions ---------------------------------------------------------------------------------

    def _cursor_trial(self) -> str | None:
        return self.query_one(LineTable).cursor_key

    def trial(self) -> TrialView | None:
        key = self._cursor_trial()
        if key is None or self.snapshot is None:
            return None
        return next((t for t in self.snapshot.trials if str(t.number) == key), None)

    @on(LineTable.RowSelected)
    def _selected(self, event: LineTable.RowSelected) -> None:
        self.action_open_trial()

    def action_open_trial(self) -> None:
        """The trial's seed runs: one in the dashboard, several in compare."""
        from ...runs import runs_root

        t = self.trial()
        if t is None or not t.runs:
            self.notify("This trial has no runs yet", severity="warning")
            return
        root = runs_root(self.app.runs_root_dir())
        paths = [root / r for r in t.runs if (root / r).is_dir()]
        if not paths:
            self.notify("The trial's run folders are gone", severity="warning")
            return
        self.app.open_runs(paths)

    def action_sort(self) -> None:
        """Next sort column: value, trial number, state, then each parameter."""
        s = self.snapshot
        options = list(SORTS) + (list(s.keys) if s else [])
        i = options.index(self.sort_key) if self.sort_key in options else -1
        self.sort_key, self.sort_reverse = options[(i + 1) % len(options)], False
        self._resort()

    def action_reverse(self) -> None:
        self.sort_reverse = not self.sort_reverse
        self._resort()

    def _resort(self) -> None:
        if self.snapshot is not None:
            self._draw_title()
            self._draw_table()

    def action_next_param(self) -> None:
        self.param_index += 1
        if self.snapshot is not None:
            self._draw_scatter()

    def action_page(self) -> None:
        """At 80 columns: best-so-far and curves, or the scatter and importance."""
        self.toggle_class("-page2")
        self.call_after_refresh(self._redraw_text_panels)

    def action_band(self) -> None:
        self.band = "se" if self.band == "minmax" else "minmax"
        if self.snapshot is not None:
            self._draw_curves()

    def action_stop_trial(self) -> None:
        from ...runs import runs_root

        t = self.trial()
        if t is None or t.state != "running" or not t.runs:
            self.notify("Select a running trial to stop", severity="warning")
            return
        run = runs_root(self.app.runs_root_dir()) / t.runs[-1]

        def done(ok: bool | None) -> None:
            if ok:
                self.app.stop_trial(run)
                self._wake.set()

        self.app.push_screen(ConfirmScreen(f"Stop trial {t.number}? Its run {run.name} checkpoints and the trial "
                                           "ends pruned.", yes="Stop"), done)

    def action_stop_study(self) -> None:
        name = self.study_name
        self.app.push_screen(ConfirmScreen(f"Stop study {name}? Running trials checkpoint and end stopped.",
                                           yes="Stop"), lambda ok: ok and self.app.stop_study(name))

    def action_continue_study(self) -> None:
        self.app.start_study(["worker", self.study_name])
        self._wake.set()

    def action_confirm(self) -> None:
        def done(answer: str | None) -> None:
            if not answer:
                return
            try:
                k = int(answer)
                if k < 1:
                    raise ValueError
            except ValueError:
                self.notify(f"{answer!r}: enter how many of the best trials to re-run (1 or more)", severity="error")
                return
            self.app.start_study(["confirm", self.study_name, "--top", str(k)])

        done_n = self.snapshot.count("complete") if self.snapshot else 0
        if done_n == 0:
            self.notify("No completed trial to confirm yet", severity="warning")
            return
        self.app.push_screen(AskScreen("Confirm top-k: re-run the k best trials with fresh seeds. k =",
                                       str(min(3, done_n))), done)

    def palette_commands(self) -> list[tuple[str, str, Any]]:
        return [("Confirm top-k", "Re-run the best trials with fresh seeds (k)", self.action_confirm),
                ("Stop study", "Running trials checkpoint and end stopped (S)", self.action_stop_study),
                ("Continue study", "tuilm study worker in the background (c)", self.action_continue_study),
                ("Toggle band", "min–max or ± SE seed bands (b)", self.action_band)]


def scatter_text(points: list[tuple[Any, float, str]], width: int, height: int, log_x: bool = False,
                 choices: bool = False) -> Text:
    """Objective against one parameter as braille dots (complete: green, pruned: magenta), with the
    y range on the left and the x range below. Choice parameters are spread evenly in their order."""
    if not points:
        return Text("no values yet", style="dim italic")
    label_w = 7
    pw = max(2, width - label_w)
    ph = max(1, height - 1)
    if choices:
        cats = sorted({str(p[0]) for p in points})
        xs = np.array([cats.index(str(p[0])) for p in points], dtype=float)
    else:
        xs = np.array([float(p[0]) for p in points], dtype=float)
        if log_x:
            xs = np.log10(np.maximum(xs, 1e-300))
    ys = np.array([p[1] for p in points], dtype=float)
    x0, x1 = float(xs.min()), float(xs.max())
    y0, y1 = float(ys.min()), float(ys.max())
    if x1 - x0 < 1e-12:
        x0, x1 = x0 - 1, x1 + 1
    if y1 - y0 < 1e-12:
        y0, y1 = y0 - abs(y0) * 0.05 - 1e-3, y1 + abs(y1) * 0.05 + 1e-3
    cols = np.clip(np.rint((xs - x0) / (x1 - x0) * (pw * 2 - 1)), 0, pw * 2 - 1).astype(int)
    rows = np.clip(np.rint((y1 - ys) / (y1 - y0) * (ph * 4 - 1)), 0, ph * 4 - 1).astype(int)
    bits = np.array([[0x01, 0x08], [0x02, 0x10], [0x04, 0x20], [0x40, 0x80]])
    cells = np.zeros((ph, pw), dtype=int)
    pruned = np.zeros((ph, pw), dtype=bool)
    done = np.zeros((ph, pw), dtype=bool)
    for (c, r, p) in zip(cols, rows, points):
        cells[r // 4, c // 2] |= bits[r % 4, c % 2]
        if p[2] == "complete":
            done[r // 4, c // 2] = True
        else:
            pruned[r // 4, c // 2] = True
    out = Text()
    for i in range(ph):
        label = fmt_value(y1) if i == 0 else fmt_value(y0) if i == ph - 1 else ""
        out.append(f"{label:>{label_w - 1}} ", style="#7a8391")
        for j in range(pw):
            v = cells[i, j]
            if v == 0:
                out.append(" ")
            else:
                out.append(chr(0x2800 + int(v)), style="#7bd389" if done[i, j] else "#c77dff")
        out.append("\n")
    if choices:
        lo, hi = cats[0], cats[-1]
    elif log_x:
        lo, hi = fmt_value(10 ** x0), fmt_value(10 ** x1)
    else:
        lo, hi = fmt_value(x0), fmt_value(x1)
    out.append(" " * label_w + lo + " " * max(1, pw - len(lo) - len(hi)) + hi, style="#7a8391")
    return out

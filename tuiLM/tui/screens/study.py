"""One study's view (specs/studies.md, "Views in the app"): the trials table, best so far, the top-k
trials' seed bands, the objective against a parameter and the importance bars, with the study's actions.

The worker thread reads the storage into an immutable ``StudySnapshot`` and posts it; ``apply`` draws
only what changed (the table renders changed rows, each panel redraws when its inputs moved), which is
what keeps a live study of 500 trials cheap to watch (bench/bench_study_view.py).
"""

from __future__ import annotations

import threading
from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, Vertical
from textual.content import Content
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Footer, Static
from textual.worker import get_current_worker

from ..studydata import StudyReader, StudySnapshot, TrialView
from ..studyframes import BEST_LEGEND, best_frame, best_points, curves_frame
from ..widgets.linetable import LineTable
from ..widgets.plot import PlotPanel
from ..widgets.scatter import importance_text, scatter_text
from .live import NARROW, Refreshing
from ...units import fmt_se, short_key
from .studies import REFRESH_S, STATE_STYLE, _fmt_param
from .studyactions import ask_confirm, ask_stop_study, ask_stop_trial, continue_study, may_continue, offers



class StudyUpdated(Message):
    def __init__(self, snapshot: StudySnapshot | None, error: str = "") -> None:
        super().__init__()
        self.snapshot = snapshot
        self.error = error

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, StudyUpdated)

SORTS = ("value", "number", "state")


class StudyScreen(Refreshing, Screen):
    BINDINGS = [
        Binding("escape", "app.pop_screen", "Back"),
        Binding("enter", "open_trial", "Open", priority=True),  # (the table binds enter too, unshown)
        Binding("o", "sort", "Sort"),
        Binding("o", "sort_unlisted", "Sort", show=False),  # o at 80 columns, where the footer is full
        Binding("O", "reverse", "Reverse", show=False),
        Binding("p", "next_param", "Param"),
        Binding("p", "next_param_unlisted", "Param", show=False),  # 80 columns: the scatter's title says (p)
        Binding("b", "band", "Band", show=False),  # the curves panel says "band (b)"
        Binding("g", "page", "Page"),  # the other page of panels (80 columns)
        Binding("x", "stop_trial", "Stop trial"),
        Binding("S", "stop_study", "Stop study"),
        Binding("c", "continue_study", "Continue"),
        Binding("k", "confirm", "Confirm"),
        Binding("f5", "refresh", "Refresh", show=False),
    ]
    OFFERED = ("stop_trial", "stop_study", "continue_study", "confirm")

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
        self._header: list[str] = []  # the columns as shown, the sort mark included
        self._cells: dict[int, tuple] = {}  # trial number -> (trial, is best, cells)
        self._drawn: dict[str, Any] = {}  # part -> the inputs it was last drawn from
        self._table_height: int | None = None

    def compose(self) -> ComposeResult:
        yield Static(id="study-title", classes="title-bar")
        with Vertical(id="study-body"):
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
        table = self.query_one(LineTable)
        table.focus()
        self.watch(table, "cursor_row", lambda _: self.sync_bindings(), init=False)  # x: a running trial
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

    @on(StudyUpdated)
    def _updated(self, msg: StudyUpdated) -> None:
        if msg.snapshot is None:
            self.query_one("#study-title", Static).update(Text(f"Study {self.study_name}: {msg.error}", style="red"))
            self.sync_bindings()
            return
        self.apply(msg.snapshot)

    # -- drawing ---------------------------------------------------------------------------------

    def apply(self, snap: StudySnapshot) -> None:
        """Show a snapshot (the bench times this plus the repaint)."""
        if self.snapshot is None:
            self.refresh_bindings()  # the first: o and p apply now
        self.snapshot = snap
        self.refreshes += 1
        self.sync_bindings()  # which of x / S / c / k apply follows the study's state
        self._draw_title()
        self._draw_table()
        self._draw_best()
        self._draw_curves()
        self._draw_scatter()
        self._draw_importance()
        shown = snap.verdicts if len(snap.verdicts) <= 4 else (  # the rest: one line that says where
            *snap.verdicts[:3], f"… {len(snap.verdicts) - 3} more: tuilm study show {snap.name}")
        if not self._same("verdicts", shown):
            self.query_one("#study-verdicts", Static).update(Text("\n".join(shown), style="") if shown else "")
        if self.refreshes == 1:  # the text panels fit their size, known after the first layout
            self.call_after_refresh(self._redraw_text_panels)

    def _redraw_text_panels(self) -> None:
        if self.snapshot is not None:
            self._drawn.pop("scatter", None)
            self._drawn.pop("importance", None)
            self._draw_scatter()
            self._draw_importance()

    def on_resize(self) -> None:
        if self.snapshot is not None:
            self._draw_table()  # 80 columns: compact cells; wider: the height follows the screen's
            self._draw_title()  # (its legend shows where it fits whole)
            self._drawn.pop("curves", None)  # (so does the curves' legend)
            self.call_after_refresh(self._draw_curves)
        self.refresh_bindings()  # g pages the panels at 80 columns only
        self.call_after_refresh(self._redraw_text_panels)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Keys are offered only where they do something: g pages the panels at 80 columns only (wider,
        every panel is on screen), and p there on the scatter's page (unlisted); x stops the highlighted trial
        when its trainer runs here; S stops a running study; c continues one not finished whose
        trainers are not alive here, while no study command of this app runs (may_continue); k needs
        a completed trial and a search that is not running. o works at 80 columns too, unlisted
        there (the sorted column is marked)."""
        if self.snapshot is None and action in (*self.OFFERED, "sort", "sort_unlisted", "next_param",
                                                 "next_param_unlisted", "page"):
            return False  # a study that could not be read (its title says why): nothing to act on
        if action == "page":
            return self._narrow()
        if action in ("sort", "sort_unlisted"):
            return self._narrow() != (action == "sort")
        if action == "next_param":  # the scatter it steps: at 80 columns on the second page only, unlisted
            return not self._narrow()  # there (the footer was full: q was cut; the scatter's title says p)
        if action == "next_param_unlisted":
            return self._narrow() and self.has_class("-page2")
        s = self.snapshot
        if s is None or action not in self.OFFERED:
            return True
        if action == "stop_trial":
            t = self.trial()
            return t is not None and t.state == "running" and t.live  # (its trainer here: x signals it)
        if action == "confirm":  # (while the search runs its top k may still change)
            return s.count("complete") > 0 and s.state not in ("running", "stopping")
        if action == "continue_study":
            return may_continue(self, self.study_name, s.state, s.count("live"))
        return offers(action, s.state)

    def _draw_title(self) -> None:
        s = self.snapshot
        assert s is not None
        best = next((t for t in s.trials if t.number == s.best), None)
        best_text = "best —" if best is None or best.value is None else \
            f"best {best.value:.4f}" + (f" ± {fmt_se(best.se)}" if best.se is not None else "") + \
            f" (t{best.number}, k={best.k})"
        from ...study.report import counts_text

        counts = counts_text(dict(s.counts), s.target)  # (as study list and the studies list word it)
        title = Text.assemble(
            (f"{s.name} ", "bold"), (s.state, STATE_STYLE.get(s.state, "")), f" · {counts} · ", (best_text, "bold"),
            no_wrap=True, overflow="ellipsis")
        legend = " · # marks: * best, b baseline"
        if title.cell_len + len(legend) <= self.app.size.width - 2:  # only whole: not a cut "· #"
            title.append(legend, "dim")
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
        from ...study.report import k_text

        s = self.snapshot
        assert s is not None
        narrow = self._narrow()
        se = "" if t.se is None else (f"±{fmt_se(t.se, tight=True)}" if narrow else f" ± {fmt_se(t.se)}")
        value = "—" if t.value is None else f"{t.value:.4f}{se}"
        flags = ("*" if t.number == s.best else "") + ("b" if t.baseline else "")
        seeds = () if narrow else (k_text(t.k, t.planned, t.state), "—" if t.steps is None else str(t.steps))
        return (f"{t.number}{flags}", Text(t.state, style=STATE_STYLE.get(t.state, "")),
                *[_fmt_param(t.param(k)) for k in s.keys], value, *seeds,
                Text(t.vs_best + (" lucky?" if t.lucky else ""), style="yellow" if t.lucky else
                     "dim" if "noise" in t.vs_best else ""), *((t.host,) if "host" in self._columns else ()))

    def _narrow(self) -> bool:  # the table is compact, the panels page
        return self.app.size.width < NARROW

    def _draw_table(self) -> None:
        """Rows in the sort order; a trial's cells are rebuilt only when the trial changed, and the
        table renders only rows whose cells changed (a live refresh of 500 trials touches a few)."""
        s = self.snapshot
        assert s is not None
        table = self.query_one(LineTable)
        narrow = self._narrow()
        token = (s.token, self.sort_key, self.sort_reverse, narrow)
        # wider than 80 columns the table sits above the panels: as tall as its rows, at most a
        # third of the screen (it scrolls), so the panels get the rest
        height = None if narrow else max(2, min(len(s.trials) + 1 + (table.content_width > self.app.size.width - 2),
                                                max(6, self.app.size.height // 3)))
        if height != self._table_height:
            self._table_height = table.styles.height = height
        if token == self._shown_token:
            return
        self._shown_token = token
        cols = ["#", "state", *[short_key(k, s.keys) for k in s.keys], s.objective,
                *(() if narrow else ("k", "steps")), "gain vs best",
                *(("host",) if not narrow and len({t.host for t in s.trials} - {""}) > 1 else ())]  # several machines
        if self._columns != cols:  # (not the sort mark: a re-sort keeps the trials' cells)
            self._columns, self._cells = list(cols), {}
        where = {"number": 0, "state": 1, "value": 2 + len(s.keys), **{k: 2 + i for i, k in enumerate(s.keys)}}
        i = where.get(self.sort_key, 0)  # the sorted column is marked: ▲ ascending, ▼ descending
        up = (self.sort_key == "value" and s.direction == "maximize") == self.sort_reverse
        cols[i] += " ▲" if up else " ▼"
        if self._header != cols:
            table.set_columns(cols)
            self._header = cols
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
        pts = best_points(s)
        if self._same("best", (pts, s.objective, s.direction)):
            return
        panel = self.query_one("#study-best", PlotPanel)
        panel.border_subtitle = Content.from_markup(BEST_LEGEND) if pts else ""
        panel.set_frame(best_frame(pts, s.direction))

    def _draw_curves(self) -> None:
        s = self.snapshot
        assert s is not None
        if self._same("curves", (s.curves, self.band, s.objective)):
            return
        frame, title, shown = curves_frame(s, self.band)
        panel = self.query_one("#study-curves", PlotPanel)
        panel.border_title = Content(title)
        room = (panel.size.width or self.app.size.width // 2) - 6
        while len(shown) > 1 and Content.from_markup(" · ".join(shown)).cell_length > room:
            shown.pop()  # which colour is which trial first, then the band's key, then the dim note
        panel.border_subtitle = Content.from_markup(" · ".join(shown))
        panel.set_frame(frame)

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
        widget.border_title = Content(f"{s.objective} vs {short_key(key, s.keys)} (p)"
                                      + (" · log x" if kind == "log" else ""))
        widget.update(scatter_text(pts, w, h, log_x=kind == "log", choices=kind == "choice"))

    def _draw_importance(self) -> None:
        s = self.snapshot
        assert s is not None
        widget = self.query_one("#study-importance", Static)
        if self._same("importance", (s.importance, s.keys, widget.size, s.count("complete"))):
            return
        if not s.importance:
            from ...study.report import IMPORTANCE_MIN_TRIALS

            widget.update(Text(f"from {IMPORTANCE_MIN_TRIALS} completed trials on ({s.count('complete')} so far), "
                               f"over the parameters that varied", style="dim italic"))
            return
        widget.update(importance_text([(short_key(k, s.keys), v) for k, v in s.importance],
                                      max(10, widget.size.width - 2)))

    # -- actions ---------------------------------------------------------------------------------

    def trial(self) -> TrialView | None:
        key = self.query_one(LineTable).cursor_key
        if key is None or self.snapshot is None:
            return None
        return next((t for t in self.snapshot.trials if str(t.number) == key), None)

    @on(LineTable.RowSelected)
    def _selected(self, event: LineTable.RowSelected) -> None:
        self.action_open_trial()

    def action_open_trial(self) -> None:
        """The trial's seed runs: one in the dashboard, several as a seed group (mean line and band)."""
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
        if len(paths) > 1:
            self.app.open_sources([(f"#{t.number} {self.study_name} ×{len(paths)}", paths)], here=True)
        else:
            self.app.open_runs(paths, here=True)  # esc comes back here

    def action_sort(self) -> None:
        """Next sort column: value, trial number, state, then each parameter."""
        s = self.snapshot
        options = list(SORTS) + (list(s.keys) if s else [])
        i = options.index(self.sort_key) if self.sort_key in options else -1
        self.sort_key, self.sort_reverse = options[(i + 1) % len(options)], False
        self._resort()

    action_sort_unlisted = action_sort

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

    action_next_param_unlisted = action_next_param

    def action_page(self) -> None:
        """At 80 columns: best-so-far and curves, or the scatter and importance."""
        self.toggle_class("-page2")
        self.refresh_bindings()  # p steps the scatter, on this page only
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
        ask_stop_trial(self, t.number, runs_root(self.app.runs_root_dir()) / t.runs[-1], self._wake.set)

    def action_stop_study(self) -> None:
        ask_stop_study(self, self.study_name)

    def action_continue_study(self) -> None:
        continue_study(self, self.study_name, self._wake.set)

    def action_confirm(self) -> None:
        ask_confirm(self, self.study_name, self.snapshot.count("complete") if self.snapshot else 0)

    def palette_commands(self) -> list[tuple[str, str, Any]]:
        return [("Confirm top-k", "Re-run the best trials with fresh seeds (k)", self.action_confirm),
                ("Stop study", "Running trials checkpoint and end stopped (S)", self.action_stop_study),
                ("Continue study", "tuilm study worker in the background (c)", self.action_continue_study),
                ("Toggle band", "min–max or ± SE seed bands (b)", self.action_band)]

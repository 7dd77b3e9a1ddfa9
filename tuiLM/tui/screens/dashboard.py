"""Live dashboard of one run, or the compare view of several (same panels, one colour per run).

The screen owns layout, keys and the redraw pace; ``panels`` turns a spec and the runs into a Frame
and a legend, ``widgets.status`` builds the one-line header. 80x24 first: one header line, the run
family's most important panels on the first page, pages of panels cycled with ``g``.
"""

from __future__ import annotations

import time
from typing import Any

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer

from ..metrics import PANELS, PanelSpec, dashboard_groups
from ..panels import Source, View, extent, frame_for, grid_shape, legend, pan_window, zoom_window
from ..rundata import RunData, RunSnapshot
from ..seedgroup import SeedGroupData, sources_of
from ..watcher import RunChanged
from ..widgets.difftable import DiffTable
from ..widgets.plot import PlotPanel
from ..widgets.runoutput import RunOutput
from ..widgets.status import RESUMABLE, FailureBox, StatusLine, compare_header, run_header
from .dialogs import ConfirmScreen
from .live import NARROW, REDRAW_S, Pacer

EMA_WEIGHTS = (0.6, 0.9, 0.99, 0.999)
STATUS_LOADING_S = 0.5  # while a long file loads: only the status line (progress), plots once loaded
MIN_PANEL_ROWS = 10  # a panel shorter than this shows too few ticks to read
OUTPUT_ROWS = 12  # the samples and stdout pane below the plots (#dash-bottom in tuilm.tcss)...
OUTPUT_ROWS_NARROW = 18  # ...and below the -narrow breakpoint, where its two boxes stack (8 + 10)
KINDS = ("train", "eval", "diag")


class DashBody(VerticalScroll, can_focus=False, inherit_bindings=False):
    """The scrolling body: not focusable, no ← → of its own: they reach the inspect cursor (F1 says so)."""

    BINDINGS = [Binding(k, a, d, show=False, system=True) for k, a, d in (
        ("up", "scroll_up", "Scroll up"), ("down", "scroll_down", "Scroll down"), ("pageup", "page_up", "Page up"),
        ("pagedown", "page_down", "Page down"), ("home", "scroll_home", "Top"), ("end", "scroll_end", "Bottom"))]


class DashboardScreen(Screen):
    """``runs`` has one run (dashboard) or several (compare view). ``groups``, when given, says how
    the runs are shown: (label, indexes into ``runs``) each, a seed group of two or more drawn as one
    mean line with a band over its seeds (``b`` toggles min–max / ± SE)."""

    BINDINGS = [
        Binding("escape", "back", "Back"),
        Binding("s", "stop", "Stop"),
        Binding("r", "resume", "Resume"),
        Binding("g", "next_group", "Page"),  # the next page of panels
        Binding("e", "toggle_ema", "EMA"),
        Binding("E", "cycle_ema", "EMA weight", show=False),
        Binding("l", "toggle_log", "Log y"),
        Binding("x", "toggle_x", "X axis"),
        Binding("x", "toggle_x_unlisted", "X axis", show=False),  # x below 110 columns, where the footer is full
        Binding("b", "toggle_band", "Band"),
        Binding("left", "cursor(-1)", "Inspect", show=False),
        Binding("right", "cursor(1)", "Inspect", show=False),
        Binding("shift+left", "cursor(-10)", "Inspect", show=False),
        Binding("shift+right", "cursor(10)", "Inspect", show=False),
        Binding("up", "scroll(-1)", "Scroll", show=False),
        Binding("down", "scroll(1)", "Scroll", show=False),
        Binding("plus,equals_sign", "zoom(0.5)", "Zoom in", show=False),
        Binding("minus", "zoom(2.0)", "Zoom out", show=False),
        Binding("left_square_bracket", "pan(-0.25)", "Pan left", show=False),
        Binding("right_square_bracket", "pan(0.25)", "Pan right", show=False),
        Binding("0", "reset_view", "Reset view", show=False),
        Binding("f", "maximize", "Enlarge"),  # one panel full size; short: 80 columns fit the footer
    ]

    def __init__(self, runs: list[RunData], panels: tuple[PanelSpec, ...] = PANELS,
                 groups: list[tuple[str, list[int]]] | None = None) -> None:
        self._handles = runs  # to subscribe with; the screen reads only the snapshots they send
        self.runs: list[RunSnapshot] = [RunSnapshot.empty(r.path) for r in runs]
        self._layout = groups or [(r.run_id, [i]) for i, r in enumerate(runs)]
        self.sources: list[Source] = sources_of(self._layout, self.runs)  # runs, and seed groups as mean and band
        compare = len(self.sources) > 1 or any(isinstance(s, SeedGroupData) for s in self.sources)
        super().__init__(classes="compare" if compare else "single")
        self.compare = compare
        self.band = "minmax"
        self.ema_on = True
        self.ema_weight = 0.9
        self.log_all = False
        self.xaxis = "step"
        self.window = (0.0, 1.0)
        self.cursor: float | None = None
        self.stopping = False
        self.groups = self._groups(panels)
        self.group = 0
        self.panels: list[tuple[PanelSpec, PlotPanel]] = []
        self._tokens: dict[str, tuple] = {}
        self._dirty = True
        self._pacer = Pacer()
        self.redraws = 0  # panel frames rebuilt (tests and the bench read it)
        self.first_drawn_at: float | None = None  # perf_counter() when panels first showed data
        self._gridded = False
        self._available: dict[str, bool] = {}  # optional panels with data
        self._avail_tokens: dict[str, tuple] = {}  # the table versions ``_available`` was read at
        self._maximized: PlotPanel | None = None
        self._grid_shape: tuple = ()
        self._states: tuple = ()
        self._last_status = 0.0
        self._drawn_versions: tuple = ()  # RunSnapshot.version of each run when last drawn

    # -- layout --------------------------------------------------------------------------------------

    def _groups(self, panels: tuple[PanelSpec, ...]) -> list[tuple[str, list[PanelSpec]]]:
        return dashboard_groups(panels, [r.arch for r in self.runs],
                                lambda kind, column: any(r.has(kind, column) for r in self.runs))

    def _pages(self) -> list[int]:
        """The groups that have something to show: a page of optional panels (system metrics) only
        once one of them has data, so a CPU run never pages to an empty "system" group."""
        return [i for i, (_, specs) in enumerate(self.groups)
                if any(self._available.get(p.key, not p.optional) for p in specs)] or [0]

    def _group_keys(self) -> set[str]:
        return {p.key for p in self.groups[self.group][1]} if self.groups else set()

    def compose(self) -> ComposeResult:
        yield StatusLine(id="run-status", classes="title-bar")
        with DashBody(id="dash-body"):
            yield FailureBox(id="failure")
            if self.compare:
                yield DiffTable(id="diff", cursor_type="column", zebra_stripes=True, show_cursor=False)
            with Grid(id="plots"):
                seen: set[str] = set()
                for _, specs in self.groups:  # each page's order is the compose order
                    for spec in specs:
                        if spec.key not in seen:
                            seen.add(spec.key)
                            panel = PlotPanel(spec.title, id=f"panel-{spec.key}")
                            self.panels.append((spec, panel))
                            yield panel
            if not self.compare:
                yield RunOutput()
        yield Footer()

    def on_mount(self) -> None:
        for run in self._handles:
            self.app.watcher.subscribe(run, self)
        self.query_one(FailureBox).show(None)
        self._apply_display()
        self.set_interval(REDRAW_S, self._tick)
        self._status()

    def on_unmount(self) -> None:
        for run in self._handles:
            self.app.watcher.unsubscribe(run, self)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("stop", "resume") and self.compare:
            return False  # stop/resume act on one run: hidden in the compare view
        if action == "toggle_band":
            return any(isinstance(s, SeedGroupData) for s in self.sources)
        if action == "stop":
            return self.runs[0].state in ("running", "starting")
        if action == "resume":
            return self.runs[0].state in RESUMABLE
        if action == "next_group":
            return len(self._pages()) > 1
        if action in ("toggle_x", "toggle_x_unlisted"):  # one of the two x bindings: listed when wide
            return (self.size.width >= NARROW) == (action == "toggle_x")
        return True

    # -- data flow -----------------------------------------------------------------------------------

    @on(RunChanged)
    def _run_changed(self, msg: RunChanged) -> None:
        snap = msg.snapshot
        for i, run in enumerate(self.runs):
            if run.path == snap.path:
                self.runs[i] = snap
        self.sources = sources_of(self._layout, self.runs, self.sources)
        self._dirty = True
        if self._pacer.due():
            self._tick()

    @property
    def loading(self) -> bool:
        """Some run has nothing to draw yet."""
        return any(not r.loaded for r in self.runs)

    @property
    def ready(self) -> bool:
        """All runs read to their end and drawn (tests wait on this)."""
        return (all(r.caught_up() for r in self.runs) and not self._dirty and self.redraws > 0
                and self._drawn_versions == tuple(r.version for r in self.runs))

    def _tick(self, force: bool = False) -> None:
        if not self._dirty:
            return
        now = time.monotonic()
        if self.loading and not force:
            # plots of a half-read file would be redrawn many times for nothing, and every
            # draw takes the interpreter away from the loader thread: show progress only
            if now - self._last_status > STATUS_LOADING_S:
                self._last_status = now
                self._status()
            return
        live = any(r.state in ("running", "starting") for r in self.runs)
        if not force and self.redraws and not self._pacer.may_draw(live):
            return
        self._dirty = False
        self._drawn_versions = tuple(r.version for r in self.runs)
        self._pacer.drew()
        self._redraw_panels()
        self._status()
        if self.compare:
            self._fill_diff()
        else:
            self.query_one(RunOutput).show(self.runs[0])
        bad = [r for r in self.runs if r.state in ("failed", "dead")]
        self.query_one(FailureBox).show(bad[0] if bad and not self.compare else None)
        states = tuple(r.state for r in self.runs)
        if states != self._states:  # stop/resume availability; refreshing recomposes the footer
            self._states = states
            self.refresh_bindings()

    def on_resize(self) -> None:
        self._layout_grid()
        self._status()
        self.refresh_bindings()  # x is listed from 110 columns on

    def _layout_grid(self) -> None:
        """Columns and row height from the terminal size and the panels shown (panels.grid_shape)."""
        n = sum(1 for _, p in self.panels if p.display) or 1
        chrome = 2 + (self._diff_height() if self.compare and not self._maximized else 0)
        below = 0 if self.compare else (OUTPUT_ROWS_NARROW if self.size.width < NARROW else OUTPUT_ROWS)
        cols, per_row = grid_shape(n, self.size.width, self.size.height, chrome, self._maximized is not None,
                                   MIN_PANEL_ROWS, below)
        if self._grid_shape != (cols, per_row):
            self._grid_shape = (cols, per_row)
            grid = self.query_one("#plots", Grid)
            grid.styles.grid_size_columns = cols
            grid.styles.grid_rows = str(per_row)

    def _view(self) -> View:
        return View(self.ema_on, self.ema_weight, self.log_all, self.xaxis, self.window, self.cursor, self.band)

    def _redraw_panels(self) -> None:
        view = self._view()
        span = extent(self.sources, view)
        shown = sum(1 for _, p in self.panels if p.display)
        versions = tuple(r.table_version(k) for r in self.runs for k in KINDS)
        token = (versions, view, span)
        page = self._group_keys()
        available = dict(self._available)
        for spec, panel in self.panels:
            if spec.optional and self._avail_tokens.get(spec.key) != versions:
                # cheap, and needed for every page: it decides which pages exist
                self._avail_tokens[spec.key] = versions
                available[spec.key] = any(r.has_nonzero(line.kinds[0], line.column)
                                          for r in self.runs for line in spec.lines)
        if available != self._available:
            self._available = available
            self._apply_display()
            self.refresh_bindings()  # g: a page (system metrics) may have appeared
        for spec, panel in self.panels:
            # only the page on screen is drawn: a hidden page's frames are built when it is shown
            if spec.key not in page or self._tokens.get(spec.key) == token:
                continue
            self._tokens[spec.key] = token
            frame = frame_for(spec, self.sources, view, span, self.loading)
            panel.set_frame(frame)
            panel.border_title = spec.title + (" · log" if frame.log else "")  # (log y: l, or the panel's own)
            panel.border_subtitle = legend(spec, self.sources, view)
            self.redraws += 1
        if self.first_drawn_at is None and not self.loading and span is not None:
            self.first_drawn_at = time.perf_counter()
        if sum(1 for _, p in self.panels if p.display) != shown or not self._gridded:
            self._gridded = True
            self._layout_grid()

    # -- status, samples, log, failure ---------------------------------------------------------------

    def _group_title(self) -> str:
        pages = self._pages()
        if len(pages) < 2 or self.group not in pages:
            return ""
        return f"{self.groups[self.group][0]} {pages.index(self.group) + 1}/{len(pages)}"

    def _status(self) -> None:
        width = max(20, self.size.width - 2)
        if self.compare:
            text = compare_header(self.sources, self._view(), width, self._group_title())
        else:
            text = run_header(self.runs[0], self._view(), width, stopping=self.stopping,
                              group=self._group_title())
        self.query_one(StatusLine).show(text)

    def _diff_height(self) -> int:
        try:
            return self.query_one(DiffTable).wanted_height(self.size.height)
        except Exception:  # not composed yet
            return 0

    def _fill_diff(self) -> None:
        if self.query_one(DiffTable).show(self.sources, self.size.width):
            self._grid_shape = ()
            self._layout_grid()
            self.query_one(DiffTable).styles.height = self._diff_height()

    # -- actions -------------------------------------------------------------------------------------

    def action_back(self) -> None:
        if self.cursor is not None:  # escape first hides the inspect cursor
            self.cursor = None
            self._invalidate()
            return
        self.app.pop_screen()

    def action_toggle_ema(self) -> None:
        self.ema_on = not self.ema_on
        self._invalidate()

    def action_cycle_ema(self) -> None:
        i = EMA_WEIGHTS.index(self.ema_weight) if self.ema_weight in EMA_WEIGHTS else 0
        self.ema_weight = EMA_WEIGHTS[(i + 1) % len(EMA_WEIGHTS)]
        self.ema_on = True
        self._invalidate()

    def action_toggle_band(self) -> None:
        self.band = "se" if self.band == "minmax" else "minmax"
        self._invalidate()

    def action_toggle_log(self) -> None:
        self.log_all = not self.log_all
        self._invalidate()

    def action_toggle_x(self) -> None:
        self.xaxis = "tokens" if self.xaxis == "step" else "step"
        self._invalidate()

    action_toggle_x_unlisted = action_toggle_x

    def action_zoom(self, factor: float) -> None:
        self.window = zoom_window(self.window, factor)
        self._invalidate()

    def action_pan(self, frac: float) -> None:
        self.window = pan_window(self.window, frac)
        self._invalidate()

    def action_reset_view(self) -> None:
        self.window = (0.0, 1.0)
        self.cursor = None
        self._invalidate()

    def action_next_group(self) -> None:
        pages = self._pages()
        if len(pages) > 1:
            self.group = pages[(pages.index(self.group) + 1) % len(pages)] if self.group in pages else pages[0]
            self._maximized = None
            self.set_class(False, "-maximized")
            self._apply_display()
            self._grid_shape = ()
            self._layout_grid()
            self.query_one("#dash-body").scroll_home(animate=False)
            self._invalidate()  # the new page's frames are built now (hidden pages are not drawn)

    def action_cursor(self, cells: int) -> None:
        """Show the inspect cursor (at the latest x), or move it by ``cells`` plot columns."""
        panel = next((p for _, p in self.panels if p.display and p.geometry is not None), None)
        if panel is None:
            return
        g = panel.geometry
        step = (g.x1 - g.x0) / max(1, g.cells)
        if self.cursor is None:
            self.cursor = g.x1
        else:
            self.cursor = min(g.x1, max(g.x0, self.cursor + cells * step))
        self._invalidate()

    @on(PlotPanel.CursorAt)
    def _cursor_at(self, msg: PlotPanel.CursorAt) -> None:
        self.cursor = msg.x
        self._invalidate()

    def action_scroll(self, lines: int) -> None:
        self.query_one("#dash-body").scroll_relative(y=lines, animate=False)

    def _invalidate(self) -> None:
        self._dirty = True
        self._tick(force=True)

    def action_maximize(self) -> None:
        focused = self.focused if isinstance(self.focused, PlotPanel) else None
        self._toggle_max(focused or self.panels[0][1])

    @on(PlotPanel.Maximize)
    def _maximize(self, msg: PlotPanel.Maximize) -> None:
        self._toggle_max(msg.panel)

    def _toggle_max(self, panel: PlotPanel) -> None:
        self._maximized = None if self._maximized is panel else panel
        self.set_class(self._maximized is not None, "-maximized")
        self._apply_display()
        self._layout_grid()
        if self._maximized is not None:
            panel.focus()

    def _apply_display(self) -> None:
        page = self._group_keys()
        for spec, panel in self.panels:
            shown = self._available.get(spec.key, True) and spec.key in page
            panel.display = shown and (self._maximized is None or panel is self._maximized)

    def action_stop(self) -> None:
        run = self.runs[0]

        def confirmed(ok: bool | None) -> None:
            if ok:
                self.stopping = True
                self.app.stop_run(run.path)  # as the runs list does: SIGTERM, and a word on how it went
                self._status()

        self.app.push_screen(ConfirmScreen(f"Stop {run.run_id}? The trainer writes a checkpoint, then "
                                           f"exits.", yes="Stop"), confirmed)

    def action_resume(self) -> None:
        self.app.resume_run(self.runs[0].path)
        self.stopping = False

    def palette_commands(self) -> list[tuple[str, str, Any]]:
        cmds = [("Toggle EMA smoothing", "e", self.action_toggle_ema),
                ("Cycle EMA weight", "0.6 → 0.9 → 0.99 → 0.999 (E)", self.action_cycle_ema),
                ("Toggle log scale", "l", self.action_toggle_log),
                ("Toggle x axis: steps / tokens", "x", self.action_toggle_x),
                ("Zoom in", "+", lambda: self.action_zoom(0.5)),
                ("Zoom out", "-", lambda: self.action_zoom(2.0)),
                ("Reset view", "0", self.action_reset_view),
                ("Next panel page", "core / mHC / system (g)", self.action_next_group),
                ("Inspect", "A cursor through every panel (← →, click)", lambda: self.action_cursor(0))]
        if not self.compare:
            state = self.runs[0].state
            if state in ("running", "starting"):
                cmds.append(("Stop run", "Checkpoint, then stop (s)", self.action_stop))
            if state in RESUMABLE:
                cmds.append(("Resume run", "Continue from the last checkpoint (r)", self.action_resume))
        return cmds



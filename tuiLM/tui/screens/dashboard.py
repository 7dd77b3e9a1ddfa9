"""Live dashboard of one run, or the compare view of several (same panels, one colour per run)."""

from __future__ import annotations

import math
import time
from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, Horizontal, Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Log, Static

from ...config.schema import FIELDS
from ...units import fmt_duration
from .. import services
from ..metrics import BY_KEY, PANELS, PanelSpec, frozen_check, verdict
from ..rundata import RunData
from ..watcher import RunChanged
from ..widgets.form import update_static
from ..widgets.plot import Frame, PlotPanel, Trace, fmt_value
from .dialogs import ConfirmScreen
from .runs import STATE_ICON

RUN_COLORS = ("#4ea1ff", "#ff9f43", "#2ed573", "#ff6b81", "#b197fc", "#ffd43b", "#3bc9db", "#e599f7")
LINE_COLORS = ("#4ea1ff", "#ff9f43")
SECONDARY = "#8a8f98"
EMA_WEIGHTS = (0.6, 0.9, 0.99, 0.999)
REDRAW_S = 0.25  # at most 4 redraws a second (the loader polls a live run at the same pace)
STATUS_LOADING_S = 0.5  # while a long file loads: only the status line (progress), plots once loaded
UI_CPU_BUDGET = 0.10  # live redraws wait while the UI thread has used more than 10 % of a core
REDRAW_MAX_WAIT_S = 2.0  # ...but never longer than this
STATE_STYLE = {"running": "bold green", "completed": "bold cyan", "stopped": "bold yellow",
               "pruned": "bold magenta",
               "failed": "bold white on red", "dead": "bold white on red", "new": "dim", "starting": "green"}


def _fmt(v: float | None) -> str:
    """Latest values: 4 decimals near 1 (val_bpb 1.0003 must not read as 1), compact elsewhere."""
    if v is None or not math.isfinite(v):
        return "—"
    a = abs(v)
    if a == 0:
        return "0"
    if 1e-3 <= a < 10:
        return f"{v:.4f}"
    if 10 <= a < 1e4:
        return f"{v:.2f}"
    return fmt_value(v)


class DashboardScreen(Screen):
    """``runs`` has one run (dashboard) or several (compare view)."""

    BINDINGS = [
        Binding("escape", "back", "Back"),
        Binding("s", "stop", "Stop"),
        Binding("r", "resume", "Resume"),
        Binding("e", "toggle_ema", "EMA"),
        Binding("E", "cycle_ema", "EMA weight", show=False),
        Binding("l", "toggle_log", "Log y"),
        Binding("x", "toggle_x", "Steps/tokens"),
        Binding("plus,equals_sign", "zoom(0.5)", "Zoom in", show=False),
        Binding("minus", "zoom(2.0)", "Zoom out", show=False),
        Binding("left_square_bracket", "pan(-0.25)", "Pan left", show=False),
        Binding("right_square_bracket", "pan(0.25)", "Pan right", show=False),
        Binding("0", "reset_view", "Reset view", show=False),
        Binding("f", "maximize", "Full panel"),
    ]

    def __init__(self, runs: list[RunData]) -> None:
        super().__init__(classes="compare" if len(runs) > 1 else "single")
        self.runs = runs
        self.compare = len(runs) > 1
        self.ema_on = True
        self.ema_weight = 0.9
        self.log_all = False
        self.xaxis = "step"
        self.window = (0.0, 1.0)
        self.stopping = False
        self.panels: list[tuple[PanelSpec, PlotPanel]] = []
        self._tokens: dict[str, tuple] = {}
        self._dirty = True
        self._last_draw = 0.0
        self._stdout_shown = 0
        self._meta_seen: tuple = ()
        self.redraws = 0  # panel frames rebuilt (tests and the bench read it)
        self.first_drawn_at: float | None = None  # perf_counter() when panels first showed data
        self._gridded = False
        self._available: dict[str, bool] = {}  # optional panels with data
        self._maximized: PlotPanel | None = None
        self._grid_shape: tuple[int, int] = (0, 0)
        self._states: tuple = ()
        self._last_status = 0.0
        self._cpu_mark = time.thread_time()
        self._status_text: str | None = None
        self._samples_text: str | None = None
        self._drawn_versions: tuple = ()  # RunData.version of each run when last drawn

    # -- layout --------------------------------------------------------------------------------------

    def _specs(self) -> list[PanelSpec]:
        mhc = any(r.arch == "mhc" for r in self.runs) or any(
            r.has(k, "gate_value") or r.has(k, "H_res_diag_mean") for r in self.runs for k in ("diag", "train"))
        # the "system" group waits for the dashboard's group pages; `tuilm runs show` lists its figures
        return [p for p in PANELS if (mhc or not p.mhc) and p.group != "system"]

    def compose(self) -> ComposeResult:
        yield Static(id="run-status", classes="title-bar")
        with VerticalScroll(id="dash-body"):
            yield Static(id="failure")
            with Grid(id="plots"):
                for spec in self._specs():
                    panel = PlotPanel(spec.title, id=f"panel-{spec.key}")
                    self.panels.append((spec, panel))
                    yield panel
            if self.compare:
                yield Static("Hyperparameters that differ", classes="section-title")
                yield DataTable(id="diff", cursor_type="row", zebra_stripes=True, show_cursor=False)
            else:
                with Horizontal(id="dash-bottom"):
                    with Vertical(id="samples-box"):
                        yield Static("Samples", classes="section-title")
                        yield Static(id="samples")
                    with Vertical(id="log-box"):
                        yield Static("stdout.log", classes="section-title")
                        yield Log(id="stdout", max_lines=400, auto_scroll=True)
        yield Footer()

    def on_mount(self) -> None:
        for run in self.runs:
            self.app.watcher.subscribe(run, self)
        if self.compare:
            self._fill_diff()
        self.query_one("#failure").display = False
        self.set_interval(REDRAW_S, self._tick)
        self._status()

    def on_unmount(self) -> None:
        for run in self.runs:
            self.app.watcher.unsubscribe(run, self)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("stop", "resume") and self.compare:
            return False  # stop/resume act on one run: hidden in the compare view
        if action == "stop":
            return self.runs[0].state in ("running", "starting")
        if action == "resume":
            return self.runs[0].state in ("stopped", "pruned", "failed", "dead")
        return True

    # -- data flow -----------------------------------------------------------------------------------

    @on(RunChanged)
    def _run_changed(self, msg: RunChanged) -> None:
        self._dirty = True
        if time.monotonic() - self._last_draw > REDRAW_S:
            self._tick()

    @property
    def loading(self) -> bool:
        """Some run has nothing to draw yet (an overview of a long file counts as something)."""
        return any(not r.loaded and not r.overview for r in self.runs)

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
        if not force and self.redraws and live:
            # self-limiting while a trainer runs: the UI thread's CPU share since the last draw
            # (painting included) stays under the budget, so a slow terminal or machine redraws
            # less often instead of taking CPU from the trainer
            share = (time.thread_time() - self._cpu_mark) / max(1e-3, now - self._last_draw)
            if share > UI_CPU_BUDGET and now - self._last_draw < REDRAW_MAX_WAIT_S:
                return
        self._dirty = False
        self._drawn_versions = tuple(r.version for r in self.runs)  # read before the data is
        self._last_draw = now
        self._cpu_mark = time.thread_time()
        self._redraw_panels()
        self._status()
        if not self.compare:
            self._samples_and_log()
        self._failure()
        states = tuple(r.state for r in self.runs)
        if states != self._states:  # stop/resume availability; refreshing recomposes the footer
            self._states = states
            self.refresh_bindings()

    def on_resize(self) -> None:
        self._layout_grid()

    def _layout_grid(self) -> None:
        """Columns and row height from the terminal size and the number of panels shown.

        Fills the screen without empty slots where it can: 9 mHC panels are 3 x 3 on a wide
        terminal, GPT runs get taller panels, and an 80-column terminal gets two columns.
        """
        n = sum(1 for _, p in self.panels if p.display) or 1
        width, height = self.size
        cols = 1 if self._maximized else (2 if width < 110 else (3 if n <= 9 else 4))
        rows = -(-n // cols)
        bottom = 0 if self.compare or self._maximized else 12
        chrome = 2 + (len(self.runs) - 1 if self.compare else 0) + 1  # status lines + footer
        per_row = max(10, (height - chrome - bottom) // rows)
        if self._grid_shape != (cols, per_row):
            self._grid_shape = (cols, per_row)
            grid = self.query_one("#plots", Grid)
            grid.styles.grid_size_columns = cols
            grid.styles.grid_rows = str(per_row)

    def _redraw_panels(self) -> None:
        extent = self._extent()
        shown = sum(1 for _, p in self.panels if p.display)
        for spec, panel in self.panels:
            token = (tuple(r.table_version(k) for r in self.runs for k in ("train", "eval", "diag")),
                     self.ema_on, self.ema_weight, self.log_all, self.xaxis, self.window, extent)
            if self._tokens.get(spec.key) == token:
                continue
            self._tokens[spec.key] = token
            if spec.optional:
                self._available[spec.key] = any(r.has_nonzero(line.kinds[0], line.column)
                                                for r in self.runs for line in spec.lines)
                self._apply_display()
            panel.set_frame(self._frame(spec, extent))
            panel.border_subtitle = self._subtitle(spec)
            self.redraws += 1
        if self.first_drawn_at is None and not self.loading and extent is not None:
            self.first_drawn_at = time.perf_counter()
        if sum(1 for _, p in self.panels if p.display) != shown or not self._gridded:
            self._gridded = True
            self._layout_grid()

    def _extent(self) -> tuple[float, float] | None:
        lo, hi = math.inf, -math.inf
        for run in self.runs:
            for kind in ("train", "eval", "diag"):
                xy = run.xy(kind, "step", self.xaxis)
                if xy is not None and xy[0].size:
                    x = xy[0]
                    lo, hi = min(lo, float(x[0])), max(hi, float(x[-1]))
        if not math.isfinite(lo):
            return None
        span = hi - lo
        a, b = self.window
        return (lo + a * span, lo + b * span)

    def _lines(self, spec: PanelSpec, run: RunData):
        """(line, kind) pairs of a panel that this run has data for."""
        out = []
        for line in spec.lines:
            if self.compare and line is not spec.lines[0]:
                continue  # compare: one line per run, the run's colour tells them apart
            for kind in line.kinds:
                if run.has(kind, line.column):
                    out.append((line, kind))
                    break
        return out

    def _frame(self, spec: PanelSpec, extent: tuple[float, float] | None) -> Frame:
        traces: list[Trace] = []
        for i, run in enumerate(self.runs):
            for j, (line, kind) in enumerate(self._lines(spec, run)):
                xy = run.xy(kind, line.column, self.xaxis)
                if xy is None:
                    continue
                x, y = xy
                if self.compare:
                    color = RUN_COLORS[i % len(RUN_COLORS)]
                else:
                    color = SECONDARY if line.secondary else LINE_COLORS[min(j, len(LINE_COLORS) - 1)]
                key = (kind, line.column, self.xaxis)
                if self.ema_on and line.smooth:
                    traces.append(Trace(x, y, color, line.label, run.blocks(key + ("raw",), x, y, kind), dim=True))
                    ys = run.ema(kind, line.column, y, self.ema_weight)
                    traces.append(Trace(x, ys, color, line.label,
                                        run.blocks(key + ("ema", self.ema_weight), x, ys, kind)))
                else:
                    traces.append(Trace(x, y, color, line.label, run.blocks(key + ("raw",), x, y, kind),
                                        dim=line.secondary))
        settings = self.runs[0].preset.get("model", {})
        log = self.log_all or spec.log_default
        return Frame(traces, bands=spec.bands(settings), log=log, xrange=extent,
                     tokens=self.xaxis == "tokens", message="loading…" if self.loading else "no data yet")

    def _latest(self, run: RunData, kind: str, column: str) -> float | None:
        return run.last(kind, column)

    def _subtitle(self, spec: PanelSpec) -> str:
        parts = []
        settings = self.runs[0].preset.get("model", {})
        bands = spec.bands(settings)
        for i, run in enumerate(self.runs):
            for line, kind in self._lines(spec, run):
                v = self._latest(run, kind, line.column)
                style = {"good": "green", "bad": "bold red"}.get(verdict(v, bands), "")
                val = f"[{style}]{_fmt(v)}[/]" if style else _fmt(v)
                if self.compare:
                    parts.append(f"[{RUN_COLORS[i % len(RUN_COLORS)]}]━[/] {val}")
                else:
                    parts.append(f"{line.label} {val}" if len(spec.lines) > 1 else val)
        if spec.key in ("gate_value", "H_res_diag_mean") and any(self._frozen(r).frozen for r in self.runs):
            parts.insert(0, "[bold white on red] FROZEN [/]")
        return " · ".join(parts)

    def _frozen(self, run: RunData):
        kind = "diag" if run.has("diag", "H_res_diag_mean") else "train"
        return frozen_check(run.preset.get("model", {}), run.last(kind, "H_res_diag_mean"),
                            run.last(kind, "gate_value"), run.last(kind, "step"))

    # -- status, samples, log, failure ---------------------------------------------------------------

    def _status(self) -> None:
        widget = self.query_one("#run-status", Static)
        if self.compare:
            lines = [self._run_line(i, r) for i, r in enumerate(self.runs)] + [self._view_line()]
        else:
            lines = [self._run_line(0, self.runs[0]), self._metrics_line(self.runs[0])]
        text = Text("\n").join(lines)
        if text.markup != self._status_text:  # each update costs a layout pass
            self._status_text = text.markup
            update_static(widget, text)

    def _view_line(self) -> Text:
        t = Text(style="dim")
        t.append(f"EMA {self.ema_weight:g}" if self.ema_on else "EMA off")
        t.append(" · y log" if self.log_all else " · y linear")
        t.append(f" · x {self.xaxis}")
        if self.window != (0.0, 1.0):
            t.append(f" · zoom {self.window[0]:.0%}–{self.window[1]:.0%}")
        return t

    def _run_line(self, i: int, run: RunData) -> Text:
        state = run.state
        if self.stopping and state in ("running", "starting"):
            state_text = "stopping…"
        else:
            state_text = state
        t = Text()
        if self.compare:
            t.append("━ ", style=RUN_COLORS[i % len(RUN_COLORS)])
        t.append(f" {STATE_ICON.get(state, '?')} {state_text} ", style=STATE_STYLE.get(state, ""))
        t.append(f" {run.run_id}", style="bold")
        step = run.last("train", "step")
        max_steps = run.max_steps
        if step is not None:
            t.append("  step ", style="dim")
            t.append(f"{int(step):,}" + (f"/{max_steps:,}" if max_steps else ""))
            if max_steps:
                t.append(f" ({step / max_steps:.0%})", style="dim")
        if run.overview:
            t.append(f"  overview of {run.overview:.0%} · reading {run.progress:.0%}", style="yellow")
        elif not run.loaded:
            t.append(f"  loading {run.progress:.0%}", style="yellow")
        if not self.compare:
            rate = run.recent_rate()
            if state == "running" and rate and max_steps and step is not None:
                t.append("  ETA ", style="dim")
                t.append(fmt_duration((max_steps - step) / rate))
            # a finished run: its mean over every attempt, not the last window's rate
            mean_tps = run.mean_tokens_per_s()
            tps = mean_tps if mean_tps is not None else run.last("train", "tokens_per_s")
            if tps is not None:
                t.append("  mean " if mean_tps is not None else "  ", style="dim")
                t.append(fmt_value(tps))
                t.append(" tok/s", style="dim")
            mfu = run.last("train", "mfu")
            if mfu is not None and math.isfinite(mfu):
                t.append("  MFU ", style="dim")
                t.append(f"{mfu:.1%}")
            mem = run.last("train", "mem_gib")
            if mem is not None and mem > 0:
                t.append("  mem ", style="dim")
                t.append(f"{mem:.2f} GiB")
            el = run.elapsed_s()
            if el is not None:
                t.append("  elapsed ", style="dim")
                t.append(fmt_duration(el))
        else:
            best = self._best_bpb(run)
            if best is not None:
                t.append("  best bpb ", style="dim")
                t.append(f"{best:.4f}")
        fz = self._frozen(run)
        if fz.frozen:
            t.append("  ")
            t.append(" FROZEN ", style="bold white on red")
            if not self.compare:
                t.append(f" {fz.text}", style="red")
        return t

    def _best_bpb(self, run: RunData) -> float | None:
        if run.overview:  # a sample of the evals: its best is not the run's best
            return None
        col = run.column("eval", "val_bpb")
        if col is None or col.size == 0:
            return None
        ok = col[col == col]
        return float(ok.min()) if ok.size else None

    def _metrics_line(self, run: RunData) -> Text:
        t = Text()
        loss = run.last("train", "loss")
        t.append("loss ", style="dim")
        t.append(_fmt(loss))
        bpb = run.last("eval", "val_bpb")
        if bpb is not None:
            t.append("  val_bpb ", style="dim")
            style = {"good": "green", "bad": "red"}.get(verdict(bpb, BY_KEY["val_bpb"].bands({})), "")
            t.append(f"{bpb:.4f}", style=style)
            best = self._best_bpb(run)
            if best is not None:
                t.append(f" (best {best:.4f})", style="dim")
            elif run.overview:
                t.append(" (best …)", style="dim")
        t.append("   ")
        t.append_text(self._view_line())
        return t

    def _samples_and_log(self) -> None:
        run = self.runs[0]
        meta = (run.meta_version, run.stdout_total)
        if meta == self._meta_seen:
            return
        self._meta_seen = meta
        with run.lock:
            samples = list(run.samples)[-3:]
            new = run.stdout_total - self._stdout_shown
            lines = list(run.stdout)[-new:] if new > 0 else []
            self._stdout_shown = run.stdout_total
        text = Text()
        for s in reversed(samples):
            text.append(f"step {s.step:,}  ", style="dim")
            text.append(s.prompt, style="bold cyan")
            text.append(s.text[len(s.prompt):] if s.text.startswith(s.prompt) else s.text)
            text.append("\n")
        if not samples:
            text.append("no samples yet", style="dim italic")
        if text.markup != self._samples_text:  # most ticks only the log moved
            self._samples_text = text.markup
            update_static(self.query_one("#samples", Static), text)
        if lines:
            self.query_one("#stdout", Log).write_lines(lines)

    def _failure(self) -> None:
        box = self.query_one("#failure", Static)
        bad = [r for r in self.runs if r.state in ("failed", "dead")]
        if not bad or self.compare:
            box.display = False
            return
        run = bad[0]
        t = Text()
        if run.state == "failed":
            reason = (run.run_end or {}).get("reason", "") or "no reason given"
            t.append(" ✗ FAILED ", style="bold white on red")
            t.append(f"  {reason}\n", style="bold red")
        else:
            code = f" (exit code {run.exit_code})" if run.exit_code is not None else ""
            t.append(" ✗ DEAD ", style="bold white on red")
            t.append(f"  the trainer exited without run_end{code}\n", style="bold red")
        with run.lock:
            tail = list(run.stdout)[-8:]
        if tail:
            t.append("last lines of stdout.log:\n", style="dim")
            t.append("\n".join(tail))
        else:
            t.append("stdout.log is empty", style="dim")
        t.append("\npress r to resume from the last checkpoint", style="dim italic")
        box.update(t)
        box.display = True

    def _fill_diff(self) -> None:
        table = self.query_one("#diff", DataTable)
        table.add_column("hyperparameter")
        for i, run in enumerate(self.runs):
            table.add_column(Text(run.run_id, style=RUN_COLORS[i % len(RUN_COLORS)]))
        rows = 0
        for f in FIELDS:
            values = [run.preset.get(f.section, {}).get(f.key, f.default) for run in self.runs]
            if any(v != values[0] for v in values[1:]):
                table.add_row(f.path, *(str(v) for v in values))
                rows += 1
        if rows == 0:
            table.add_row("(identical presets)", *("" for _ in self.runs))

    # -- actions -------------------------------------------------------------------------------------

    def action_back(self) -> None:
        self.app.pop_screen()

    def action_toggle_ema(self) -> None:
        self.ema_on = not self.ema_on
        self._invalidate()

    def action_cycle_ema(self) -> None:
        i = EMA_WEIGHTS.index(self.ema_weight) if self.ema_weight in EMA_WEIGHTS else 0
        self.ema_weight = EMA_WEIGHTS[(i + 1) % len(EMA_WEIGHTS)]
        self.ema_on = True
        self._invalidate()

    def action_toggle_log(self) -> None:
        self.log_all = not self.log_all
        self._invalidate()

    def action_toggle_x(self) -> None:
        self.xaxis = "tokens" if self.xaxis == "step" else "step"
        self._invalidate()

    def action_zoom(self, factor: float) -> None:
        a, b = self.window
        width = min(1.0, max(0.002, (b - a) * factor))
        centre = b - (b - a) / 2 if b < 1.0 else 1.0 - width / 2  # zooming at the end follows new data
        a, b = centre - width / 2, centre + width / 2
        if b > 1.0:
            a, b = a - (b - 1.0), 1.0
        if a < 0.0:
            a, b = 0.0, b - a
        self.window = (max(0.0, a), min(1.0, b))
        self._invalidate()

    def action_pan(self, frac: float) -> None:
        a, b = self.window
        shift = (b - a) * frac
        shift = max(-a, min(1.0 - b, shift))
        self.window = (a + shift, b + shift)
        self._invalidate()

    def action_reset_view(self) -> None:
        self.window = (0.0, 1.0)
        self._invalidate()

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
        for spec, panel in self.panels:
            shown = self._available.get(spec.key, True)
            panel.display = shown and (self._maximized is None or panel is self._maximized)

    def action_stop(self) -> None:
        run = self.runs[0]

        def confirmed(ok: bool | None) -> None:
            if ok:
                self.stopping = True
                self._stop(run)
                self._status()

        self.app.push_screen(ConfirmScreen(f"Stop {run.run_id}? The trainer writes a checkpoint, then "
                                           f"exits.", yes="Stop"), confirmed)

    @work(thread=True, group="control")
    def _stop(self, run: RunData) -> None:
        try:
            ok = services.stop_run(run.proc if run.proc is not None else run.path)
        except Exception as e:  # show launcher problems, keep the dashboard up
            self.app.call_from_thread(self.notify, f"Stop failed: {e}", severity="error")
            return
        if not ok:
            self.app.call_from_thread(self.notify, "No live trainer found for this run", severity="warning")

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
                ("Reset view", "0", self.action_reset_view)]
        if not self.compare:
            state = self.runs[0].state
            if state in ("running", "starting"):
                cmds.append(("Stop run", "Checkpoint, then stop (s)", self.action_stop))
            if state in ("stopped", "pruned", "failed", "dead"):
                cmds.append(("Resume run", "Continue from the last checkpoint (r)", self.action_resume))
        return cmds


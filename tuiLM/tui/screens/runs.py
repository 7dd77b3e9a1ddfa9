"""The run list: state, best val_bpb, final loss, steps, duration, a loss sparkline and a flag
(FROZEN, pruned), refreshed in a worker thread. It fits 80 columns; a wide terminal adds the
architecture, the preset and the age.

Each run is summarised by ``runsummary.FastSummary`` (byte scans, only the few lines that matter
decoded; then only what was appended), not ``runs.summarize`` (every line decoded: ~10 s for a
10^6-event run).
"""

from __future__ import annotations

import re
import threading
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static
from textual.worker import get_current_worker

from ...runs import EVENTS, PRESET, RunSummary, list_runs, runs_root
from ...units import fmt_count, fmt_duration
from ..metrics import can_freeze, frozen_check
from ..runsummary import FastSummary, last_diag, loss_trend, sparkline
from ..widgets.cursortable import CursorTable
from ..widgets.status import STATE_ICON
from .dialogs import ConfirmScreen

REFRESH_S = 2.0
STATE_STYLE = {"running": "bold green", "completed": "cyan", "stopped": "yellow", "pruned": "magenta",
               "failed": "bold red", "dead": "bold red", "new": "dim", "starting": "green", "unreadable": "bold red"}
WIDE = 110  # from this width on: arch, preset and age columns too
TREND_W = 10


def fmt_age(seconds: float) -> str:
    s = max(0, int(seconds))
    for div, unit in ((86400, "d"), (3600, "h"), (60, "m")):
        if s >= div:
            return f"{s // div}{unit}"
    return f"{s}s"


_SOURCE_RE = re.compile(r"^#\s*source:\s*(.+)$", re.M)


def _count(n: int) -> str:
    return fmt_count(n) if n >= 10000 else str(n)


def preset_name(run: Path, summary: RunSummary) -> str:
    if summary.preset_name:
        return summary.preset_name
    try:
        head = (run / PRESET).read_text(encoding="utf-8")[:2000]
    except OSError:
        return ""
    m = _SOURCE_RE.search(head)
    return Path(m.group(1).strip()).stem if m else ""


@dataclass
class RunRow:
    path: Path
    summary: RunSummary
    preset: str
    arch: str
    trend: list[float]
    frozen: bool = False


class RunsUpdated(Message):
    """Posted by the refresh worker; a newer one replaces an unprocessed older one."""

    def __init__(self, rows: list[RunRow]) -> None:
        super().__init__()
        self.rows = rows

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, RunsUpdated)


class RunsScreen(Screen):
    BINDINGS = [
        Binding("enter", "open", "Open"),
        Binding("space", "mark", "Mark"),
        Binding("c", "compare", "Compare marked"),
        Binding("s", "stop", "Stop"),
        Binding("r", "resume", "Resume"),
        Binding("f5", "refresh", "Refresh", show=False),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.marked: set[str] = set()
        self.rows: dict[str, RunRow] = {}
        self._wake = threading.Event()
        self.refreshes = 0

    def compose(self) -> ComposeResult:
        yield Static(id="runs-title", classes="title-bar")
        yield CursorTable(id="runs-table", cursor_type="row", zebra_stripes=True, cell_padding=0)
        yield Static(id="runs-hint")
        yield Footer()

    def on_mount(self) -> None:
        self._columns()
        self.query_one(DataTable).focus()
        self._title()
        self._refresh_loop()

    def _columns(self) -> None:
        """The columns for this width: what matters fits 80 columns, the rest comes when it can."""
        wide = self.app.size.width >= WIDE
        if getattr(self, "_wide", None) == wide:
            return
        self._wide = wide
        table = self.query_one(DataTable)
        table.clear(columns=True)
        # no cell padding (it would cost 2 cells a column): numbers are right-aligned in columns a
        # little wider than they are, and the state starts with a space
        fixed = 1 + 13 + 7 + 7 + 9 + 7 + TREND_W + 1 + 7 + (8 + 12 + 6 if wide else 0)
        run_w = max(12, min(40, self.app.size.width - fixed - 1))
        table.add_column(" ", key="mark", width=1)
        table.add_column("run", key="run", width=run_w)
        table.add_column(" state", key="state", width=13)
        if wide:
            table.add_column(" arch", key="arch", width=8)
            table.add_column(" preset", key="preset", width=12)
        table.add_column(Text("bpb", justify="right"), key="bpb", width=7)
        table.add_column(Text("loss", justify="right"), key="loss", width=7)
        table.add_column(Text("steps", justify="right"), key="step", width=9)
        table.add_column(Text("time", justify="right"), key="time", width=7)
        table.add_column(" loss trend", key="trend", width=TREND_W + 1)
        table.add_column(" flag", key="flag", width=7)
        if wide:
            table.add_column(Text("age", justify="right"), key="age", width=6)
        self.rows.clear()  # the next refresh adds every row again

    def on_resize(self) -> None:
        if self.is_mounted:
            self._columns()
            self._wake.set()

    def _title(self) -> None:
        root = runs_root(self.app.runs_root_dir())
        self.query_one("#runs-title", Static).update(
            Text.assemble(("Runs ", "bold"), (f"{len(self.rows)} in {root}/", "dim"),
                          (f"   {len(self.marked)} marked" if self.marked else "", "yellow")))
        hint = "space: mark runs, c: compare them" if len(self.marked) < 2 else "c: compare the marked runs"
        self.query_one("#runs-hint", Static).update(Text(hint, style="dim"))

    @work(thread=True, exclusive=True, group="runs-refresh")
    def _refresh_loop(self) -> None:
        worker = get_current_worker()
        summaries: dict[Path, FastSummary] = {}
        models: dict[Path, dict[str, Any]] = {}
        extras: dict[Path, tuple[int | None, list[float], bool]] = {}
        root = self.app.runs_root_dir()
        while not worker.is_cancelled:
            if not self._shown():  # under a dashboard: no scans (resuming the screen wakes this)
                self._wake.wait(REFRESH_S)
                self._wake.clear()
                continue
            rows = []
            for path in list_runs(root):
                if worker.is_cancelled:
                    return
                fast = summaries.get(path)
                if fast is None:
                    fast = summaries[path] = FastSummary(path)
                summary = fast.update()  # reads only what was appended since the last refresh
                if path not in models:
                    models[path] = _model_from_preset(path)
                size = _size(path)
                if extras.get(path, (None,))[0] != size:  # the trend and flag only move with the file
                    extras[path] = (size, loss_trend(path, TREND_W), _frozen(models[path], path))
                _, trend, frozen = extras[path]
                arch = summary.arch or str(models[path].get("arch", ""))
                rows.append(RunRow(path, summary, preset_name(path, summary), arch, trend, frozen))
            self.post_message(RunsUpdated(rows))
            self._wake.wait(REFRESH_S)
            self._wake.clear()

    def _shown(self) -> bool:
        try:
            return self.app.screen is self
        except Exception:  # no screen stack (the app is closing): nothing to show
            return False

    def action_refresh(self) -> None:
        self._wake.set()

    def on_screen_resume(self) -> None:
        self._wake.set()  # back from a dashboard: refresh now

    @on(RunsUpdated)
    def _update(self, msg: RunsUpdated) -> None:
        table = self.query_one(DataTable)
        now = self.app.now()
        seen = set()
        for row in msg.rows:
            key = str(row.path)
            seen.add(key)
            s = row.summary
            state = s.state
            cells = self._cells(row, key, now)
            if key in self.rows and key in table.rows:
                for col, value in cells.items():
                    table.update_cell(key, col, value)
            else:
                table.add_row(*cells.values(), key=key)
            self.rows[key] = row
        for key in list(self.rows):
            if key not in seen:
                del self.rows[key]
                self.marked.discard(key)
                if key in table.rows:
                    table.remove_row(key)
        self.refreshes += 1
        self._title()

    def _cells(self, row: RunRow, key: str, now: float) -> dict[str, Any]:
        s = row.summary
        state = s.state
        steps = (f"{_count(s.step)}/{_count(s.max_steps)}" if s.max_steps else _count(s.step))
        end = s.ended if s.ended is not None else (s.last_event or {}).get("time")
        took = (end - s.started) if isinstance(end, (int, float)) and s.started else None
        flag = (Text.assemble(" ", ("FROZEN", "bold white on red")) if row.frozen
                else Text(" pruned", style="magenta") if state == "pruned" else "")
        cells: dict[str, Any] = {
            "mark": Text("▌", style="yellow") if key in self.marked else "",
            "run": Text(row.path.name, style="bold", overflow="ellipsis", no_wrap=True),
            "state": Text(f" {STATE_ICON.get(state, '?')} {state}", style=STATE_STYLE.get(state, "")),
            "arch": Text(" " + row.arch, overflow="ellipsis", no_wrap=True),
            "preset": Text(" " + row.preset, overflow="ellipsis", no_wrap=True),
            "bpb": Text(f"{s.best_val_bpb:.4f}" if s.best_val_bpb is not None else "—", justify="right"),
            "loss": Text(f"{s.last_loss:.4f}" if s.last_loss is not None else "—", justify="right"),
            "step": Text(steps, justify="right"),
            "time": Text(fmt_duration(took) if took is not None else "—", justify="right"),
            "trend": Text(" " + sparkline(row.trend, TREND_W), style="cyan"),
            "flag": flag,
            "age": Text(fmt_age(now - (s.started or row.path.stat().st_mtime)) if row.path.exists() else "",
                        justify="right"),
        }
        if not self._wide:
            for k in ("arch", "preset", "age"):
                del cells[k]
        return cells

    def _cursor_key(self) -> str | None:
        table = self.query_one(DataTable)
        if table.row_count == 0:
            return None
        return table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value

    @on(DataTable.RowSelected)
    def _row_selected(self, event: DataTable.RowSelected) -> None:
        self.action_open()

    def action_open(self) -> None:
        key = self._cursor_key()
        if key:
            self.app.open_runs([Path(key)])

    def action_mark(self) -> None:
        key = self._cursor_key()
        if not key:
            return
        self.marked ^= {key}
        table = self.query_one(DataTable)
        table.update_cell(key, "mark", Text("▌", style="yellow") if key in self.marked else "")
        table.move_cursor(row=min(table.cursor_row + 1, table.row_count - 1))
        self._title()

    def action_compare(self) -> None:
        keys = [k for k in self.rows if k in self.marked]
        if len(keys) < 2:
            self.notify("Mark two or more runs with space, then press c", severity="warning")
            return
        self.app.open_runs([Path(k) for k in keys])

    def action_stop(self) -> None:
        key = self._cursor_key()
        row = self.rows.get(key or "")
        if row is None or row.summary.state != "running":
            self.notify("Select a running run to stop", severity="warning")
            return
        self.app.push_screen(ConfirmScreen(f"Stop {row.path.name}? It writes a checkpoint first.",
                                           yes="Stop"), lambda ok: ok and self.app.stop_run(row.path))

    def action_resume(self) -> None:
        key = self._cursor_key()
        row = self.rows.get(key or "")
        if row is None or row.summary.state not in ("stopped", "pruned", "failed", "dead"):
            self.notify("Select a stopped, pruned, failed or dead run to resume", severity="warning")
            return
        self.app.resume_run(row.path)

    def palette_commands(self) -> list[tuple[str, str, Any]]:
        return [("Compare marked runs", "Overlay the marked runs (c)", self.action_compare),
                ("Refresh runs", "Re-scan the runs folder now", self.action_refresh)]


def _model_from_preset(run: Path) -> dict[str, Any]:
    try:
        return dict(tomllib.loads((run / PRESET).read_text(encoding="utf-8")).get("model", {}))
    except Exception:  # an unreadable preset just leaves the arch empty and no flag
        return {}


def _size(run: Path) -> int | None:
    try:
        return (run / EVENTS).stat().st_size
    except OSError:
        return None


def _frozen(model: dict[str, Any], run: Path) -> bool:
    if not can_freeze(model):  # spare the read of the last diagnostics
        return False
    ev = last_diag(run)
    if ev is None:
        return False
    num = lambda k: ev.get(k) if isinstance(ev.get(k), (int, float)) else None  # noqa: E731
    return frozen_check(model, num("H_res_diag_mean"), num("gate_value"), num("step")).frozen

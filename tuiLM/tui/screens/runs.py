"""The run list: state, preset, best val_bpb, steps and age, refreshed in a worker thread.

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

from ...runs import PRESET, RunSummary, list_runs, runs_root
from ...units import fmt_count
from ..runsummary import FastSummary
from ..widgets.cursortable import CursorTable
from .dialogs import ConfirmScreen

REFRESH_S = 2.0
STATE_STYLE = {"running": "bold green", "completed": "cyan", "stopped": "yellow", "pruned": "magenta",
               "failed": "bold red", "dead": "bold red", "new": "dim", "starting": "green", "unreadable": "bold red"}
STATE_ICON = {"running": "●", "completed": "✓", "stopped": "■", "pruned": "✂", "failed": "✗", "dead": "✗",
              "new": "○", "starting": "◌", "unreadable": "!"}


def fmt_age(seconds: float) -> str:
    s = max(0, int(seconds))
    for div, unit in ((86400, "d"), (3600, "h"), (60, "m")):
        if s >= div:
            return f"{s // div}{unit}"
    return f"{s}s"


_SOURCE_RE = re.compile(r"^#\s*source:\s*(.+)$", re.M)


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
        yield CursorTable(id="runs-table", cursor_type="row", zebra_stripes=True)
        yield Static(id="runs-hint")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_column(" ", key="mark", width=1)
        table.add_column("run", key="run")
        table.add_column("state", key="state")
        table.add_column("arch", key="arch")
        table.add_column("preset", key="preset")
        table.add_column("step", key="step")
        table.add_column("best bpb", key="bpb")
        table.add_column("age", key="age")
        table.focus()
        self._title()
        self._refresh_loop()

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
        archs: dict[Path, str] = {}
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
                if path not in archs:
                    archs[path] = _arch_from_preset(path)
                rows.append(RunRow(path, summary, preset_name(path, summary), summary.arch or archs[path]))
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
            cells = {
                "mark": Text("▌", style="yellow") if key in self.marked else "",
                "run": Text(row.path.name, style="bold"),
                "state": Text(f"{STATE_ICON.get(state, '?')} {state}", style=STATE_STYLE.get(state, "")),
                "arch": row.arch,
                "preset": row.preset,
                "step": f"{fmt_count(s.step) if s.step >= 10000 else s.step}/"
                        f"{fmt_count(s.max_steps) if s.max_steps >= 10000 else s.max_steps}" if s.max_steps
                        else str(s.step),
                "bpb": f"{s.best_val_bpb:.4f}" if s.best_val_bpb is not None else "—",
                "age": fmt_age(now - (s.started or row.path.stat().st_mtime)) if row.path.exists() else "",
            }
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
            self.notify("Select a stopped, failed or dead run to resume", severity="warning")
            return
        self.app.resume_run(row.path)

    def palette_commands(self) -> list[tuple[str, str, Any]]:
        return [("Compare marked runs", "Overlay the marked runs (c)", self.action_compare),
                ("Refresh runs", "Re-scan the runs folder now", self.action_refresh)]


def _arch_from_preset(run: Path) -> str:
    try:
        return str(tomllib.loads((run / PRESET).read_text(encoding="utf-8")).get("model", {}).get("arch", ""))
    except Exception:  # an unreadable preset just leaves the column empty
        return ""

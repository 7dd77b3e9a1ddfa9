"""Studies in the app (specs/studies.md, "Views in the app"): the studies list (key 3); one study's
view is in ``study.py``.

Both read the study's Optuna storage in a worker thread (``studydata.StudyReader`` keeps it open, so a
refresh reads only what was appended) and post immutable snapshots in messages; widgets never touch the
storage. Actions start the same commands a user would type (``tuilm study run / worker / confirm``) as
detached subprocesses, and stop trials through the engine's stop-request contract.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

from rich.cells import cell_len
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static
from textual.widgets.data_table import ColumnKey
from textual.worker import get_current_worker

from ...units import fmt_se, short_key
from ..studydata import StudyReader, StudyRow
from ..widgets.cursortable import CursorTable
from ..widgets.literal import cell
from .dialogs import AskScreen
from .live import NARROW, Refreshing  # below NARROW the list leaves out storage and last activity
from .studyactions import ask_stop_study, continue_study, may_continue, offers

REFRESH_S = 2.0
STATE_STYLE = {"running": "bold green", "stopping": "yellow", "stopped": "yellow", "interrupted": "bold red",
               "finished": "cyan", "idle": "dim",
               "unreadable": "bold red", "complete": "green", "pruned": "magenta", "fail": "red",
               "waiting": "dim"}


def _fmt_param(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.3g}"
    return str(v)


class StudiesUpdated(Message):
    def __init__(self, rows: list[StudyRow]) -> None:
        super().__init__()
        self.rows = rows

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, StudiesUpdated)


# -- the studies list --------------------------------------------------------------------------------
class StudiesScreen(Refreshing, Screen):
    BINDINGS = [
        Binding("enter", "open", "Open", priority=True),  # (the focused table binds enter too, unshown)
        Binding("n", "new_study", "Run a study file"),
        Binding("c", "continue_study", "Continue"),
        Binding("S", "stop_study", "Stop study"),
        Binding("f5", "refresh", "Refresh", show=False),
    ]
    OFFERED = ("stop_study", "continue_study")

    def __init__(self) -> None:
        super().__init__()
        self.rows: dict[str, StudyRow] = {}
        self._wake = threading.Event()
        self.refreshes = 0

    def compose(self) -> ComposeResult:
        yield Static(id="studies-title", classes="title-bar")
        yield CursorTable(id="studies-table", cursor_type="row", zebra_stripes=True)  # (home / end as in the runs list)
        yield Static(id="studies-hint")
        yield Footer()

    def on_mount(self) -> None:
        self._columns()
        self.query_one(DataTable).focus()
        self._title()
        self._refresh_loop()

    def _columns(self) -> None:
        """Below 110 columns the storage and the last activity stay out and the best parameters
        end in "…" where the width ends: no sideways scrolling to reach a study's numbers."""
        wide = self.app.size.width >= NARROW
        if getattr(self, "_wide", None) == wide:
            return
        self._wide = wide
        table = self.query_one(DataTable)
        table.clear(columns=True)
        cols = [("study", "study"), ("state", "state"), ("trials", "trials"), ("best", "best"),
                ("params", "best params")] + ([("storage", "storage"), ("last", "last activity")] if wide else [])
        for key, label in cols:
            table.add_column(label, key=key)

    def on_resize(self) -> None:
        if self.is_mounted:
            self._columns()
            self._wake.set()

    def _title(self) -> None:
        from ...study.storage import studies_root

        self.query_one("#studies-title", Static).update(Text.assemble(
            ("Studies ", "bold"), (f"{len(self.rows)} in {studies_root(self.app.runs_root_dir())}/", "dim")))
        hint = self.query_one("#studies-hint", Static)  # with studies listed, the footer says the keys
        hint.display = not self.rows
        hint.update(Text("no studies yet: n runs a study file (e.g. presets/studies/quickstart-lr.toml)", style="dim"))

    @work(thread=True, exclusive=True, group="studies-refresh")
    def _refresh_loop(self) -> None:
        worker = get_current_worker()
        reader = StudyReader(self.app.runs_root_dir())
        while not worker.is_cancelled:
            if self._shown():
                self.post_message(StudiesUpdated(reader.rows()))
            self._wake.wait(REFRESH_S)
            self._wake.clear()

    @on(StudiesUpdated)
    def _update(self, msg: StudiesUpdated) -> None:
        table = self.query_one(DataTable)
        built = [(row, self._cells(row)) for row in msg.rows]
        if not self._wide and built:  # the best parameters take what the other columns leave
            used = sum(max(max(cell_len(c[k].plain if isinstance(c[k], Text) else c[k]) for _, c in built),
                           cell_len(str(table.columns[ColumnKey(k)].label))) + 2
                       for k in ("study", "state", "trials", "best"))
            room = (table.size.width or self.app.size.width) - used - 2 - 2
            for _, c in built:  # (too little room: none, rather than a table wider than the screen)
                c["params"].truncate(max(0, room), overflow="ellipsis") if room >= 8 else c["params"].truncate(0)
        for row, cells in built:
            if row.name in self.rows and row.name in table.rows:
                for col, value in cells.items():
                    table.update_cell(row.name, col, value)
            else:
                table.add_row(*cells.values(), key=row.name)
            self.rows[row.name] = row
        seen = {row.name for row in msg.rows}
        for name in list(self.rows):
            if name not in seen:
                del self.rows[name]
                if name in table.rows:
                    table.remove_row(name)
        self.refreshes += 1
        self._title()
        self.sync_bindings()  # the highlighted study's state may have changed

    def _cells(self, row: StudyRow) -> dict[str, Any]:
        from ...study.report import counts_text

        if row.best_value is None:
            best = "—"
        elif getattr(self, "_wide", True):
            best = f"{row.best_value:.4f}" + (f" ± {fmt_se(row.best_se)}" if row.best_se is not None else "") + \
                f" k={row.best_k}"
        else:  # below 110 columns, as the study view's table (k is there): "3.1852 ± 0.0287 k=2" was cut
            best = f"{row.best_value:.4f}" + (f"±{fmt_se(row.best_se, tight=True)}" if row.best_se is not None
                                              else "")
        cells: dict[str, Any] = {
            "study": Text(row.name, style="bold") + (Text(f" (confirms {row.confirm_of})", style="dim")
                                                      if row.confirm_of and getattr(self, "_wide", True) else Text("")),
            "state": Text(row.state, style=STATE_STYLE.get(row.state, "")),
            "trials": cell(counts_text({"complete": row.complete, "running": row.running, "stopped": row.stopped,
                                        "interrupted": row.interrupted, "pruned": row.pruned, "fail": row.failed,
                                        "retried": row.retried}, row.target)),
            "best": cell(best) if not row.error else Text(row.error, style="red"),
            "params": Text(" ".join(f"{short_key(k, [x for x, _ in row.best_params])}={_fmt_param(v)}"
                                    for k, v in row.best_params), no_wrap=True, end=""),
            "storage": cell(Path(row.storage).name if row.storage.endswith(".log") else row.storage),
            "last": cell(time.strftime("%m-%d %H:%M", time.localtime(row.last_activity))
                         if row.last_activity else "—"),
        }
        if not self._wide:
            del cells["storage"], cells["last"]
        return cells

    def _cursor(self) -> str | None:
        table = self.query_one(DataTable)
        if table.row_count == 0:
            return None
        return table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """S is offered on a running study; c where studyactions.may_continue says."""
        if action not in self.OFFERED or not self.is_mounted:
            return True
        row = self.rows.get(self._cursor() or "")
        if row is not None and action == "continue_study":
            return may_continue(self, row.name, row.state, row.live)
        return row is not None and offers(action, row.state)

    @on(DataTable.RowHighlighted)
    def _highlighted(self, event: DataTable.RowHighlighted) -> None:
        self.sync_bindings()

    @on(DataTable.RowSelected)
    def _selected(self, event: DataTable.RowSelected) -> None:
        self.action_open()

    def action_open(self) -> None:
        name = self._cursor()
        if name:
            from .study import StudyScreen

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
            continue_study(self, name, self._wake.set)

    def action_stop_study(self) -> None:
        name = self._cursor()
        if name:
            ask_stop_study(self, name)

    def palette_commands(self) -> list[tuple[str, str, Any]]:
        return [("Run a study file", "tuilm study run FILE in the background (n)", self.action_new_study),
                ("Refresh studies", "Re-read the studies now", self.action_refresh)]

"""The run list: state, best val_bpb, final loss, steps, duration, a loss sparkline and a flag
(FROZEN, pruned, lucky), refreshed in a worker thread. It fits 80 columns; a wide terminal adds the
architecture, the preset and the age.

Seed groups (``tuiLM.groups``: a study trial's seeds, or plain runs of one configuration) show as one
row: best val_bpb mean ± SE over the seeds, k, and "lucky" when the best seed lies beyond seed noise
(``study.stats.lucky_seeds``). ``e`` expands a group into its runs; Enter opens the group (mean line
and seed band) and ``c`` compares marked groups and runs.

Each run is summarised by a ``reader.RunReader`` (a long run starts from its column cache; then only
what was appended is read). A run that has ended keeps only its summary until its file changes.
"""

from __future__ import annotations

import threading
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

from ...groups import Membership, SeedGroup, group_runs, group_state, membership, state_counts
from ...reader import TREND_POINTS, RunReader, RunSummary
from ...runs import list_runs, runs_root
from ...units import fmt_age
from ..widgets.cursortable import CursorTable
from ...units import fit_id
from ..widgets.status import RESUMABLE, STATE_ICON
from .dialogs import ConfirmScreen
from .live import NARROW, Refreshing
from .runrows import (STEPS_W, TIME_W, GroupRow, RunRow, _frozen, _model_from_preset, _size, _took, make_group_row,
                      duration_text, preset_name, sparkline, steps_text)

REFRESH_S = 2.0
STATE_STYLE = {"running": "bold green", "completed": "cyan", "stopped": "yellow", "pruned": "magenta",
               "failed": "bold red", "dead": "bold red", "new": "dim", "starting": "green", "unreadable": "bold red"}
WIDE = NARROW  # from the app's breakpoint on: arch, preset and age columns too
TREND_W = TREND_POINTS
TREND_NARROW = 6  # the trend's cells below WIDE
RUN_MAX = 64  # the run column's cap: the rest of a very wide terminal stays free
BPB_W = 13  # "1.2345±.0021" and a space: a group's mean ± SE
POINT_AT = 3  # the bpb column's decimal point: every value lines up on it ("12.3456", " 5.108±.025")


def on_point(value: str) -> str:
    """A bpb cell with its decimal point in column POINT_AT (a group's "5.108±.025" has fewer
    decimals than a run's "5.1077": aligned on the point, the two still read as one column)."""
    whole, dot, rest = value.partition(".")
    return f"{whole:>{POINT_AT - 1}}{dot or ' '}{rest}"


class RunsUpdated(Message):
    """Posted by the refresh worker; a newer one replaces an unprocessed older one."""

    def __init__(self, rows: list[RunRow], groups: list[SeedGroup] | None = None) -> None:
        super().__init__()
        self.rows = rows
        self.groups = groups if groups is not None else [SeedGroup(str(r.path), r.path.name, [r.path], [None])
                                                         for r in rows]

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, RunsUpdated)


class RunsScreen(Refreshing, Screen):
    BINDINGS = [
        Binding("enter", "open", "Open", priority=True),  # (the focused table binds enter too, unshown)
        Binding("space", "mark", "Mark"),
        Binding("c", "compare", "Compare"),
        Binding("e", "expand", "Expand"),
        Binding("e", "fold", "Fold"),  # (the same key on an expanded group: one of the two is offered)
        Binding("s", "stop", "Stop"),
        Binding("r", "resume", "Resume"),
        # on a row they do not apply to: not offered, but the key says why (it did nothing)
        Binding("s", "stop_refused", show=False, system=True),
        Binding("r", "resume_refused", show=False, system=True),
        Binding("f5", "refresh", "Refresh", show=False),
    ]
    OFFERED = ("stop", "resume", "expand", "fold")

    def __init__(self) -> None:
        super().__init__()
        self.marked: set[str] = set()
        self.rows: dict[str, RunRow] = {}  # every run, shown or folded into a group
        self.groups: dict[str, GroupRow] = {}  # groups of two or more, by row key
        self.expanded: set[str] = set()  # group row keys shown with their runs
        self._order: list[str] = []  # the table's row keys, top to bottom
        self._groups_seen: list[SeedGroup] = []  # the last refresh's grouping (expanding re-lays it out)
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
        width = self.app.size.width
        wide = width >= WIDE
        # at 80 columns a shorter loss trend leaves the run name room for what tells runs apart
        # ("fixture-t007-s0…", not "fixture-t00…"); wider, the longest name shown, up to what the
        # other columns leave (short names keep the numbers near them)
        self._trend_w = TREND_W if wide else TREND_NARROW
        fixed = 1 + 12 + BPB_W + 7 + STEPS_W + TIME_W + self._trend_w + 1 + 7 + (8 + 12 + 6 if wide else 0)
        bar = self.query_one(DataTable).styles.scrollbar_size_vertical  # (a long list has one: "prune" was cut)
        run_w = max(12, min(RUN_MAX, width - fixed - 1 - bar, getattr(self, "_need", 40)))
        if getattr(self, "_layout_key", None) == (wide, run_w):
            return
        self._layout_key = (wide, run_w)
        self._wide = wide
        self._run_w = run_w
        table = self.query_one(DataTable)
        self._keep_at = self._cursor_key()  # the row the cursor is on comes back with the rows
        table.clear(columns=True)
        # no cell padding (it would cost 2 cells a column): numbers are right-aligned in columns a
        # little wider than they are, and the state starts with a space
        table.add_column(" ", key="mark", width=1)
        table.add_column("run", key="run", width=run_w)
        table.add_column(" state", key="state", width=12)
        if wide:
            table.add_column(" arch", key="arch", width=8)
            table.add_column(" preset", key="preset", width=12)
        table.add_column(" bpb", key="bpb", width=BPB_W)
        table.add_column(Text("loss", justify="right"), key="loss", width=7)
        table.add_column(Text("steps", justify="right"), key="step", width=STEPS_W)
        table.add_column(Text("time", justify="right"), key="time", width=TIME_W)
        table.add_column(" loss trend" if self._trend_w >= 10 else " trend", key="trend", width=self._trend_w + 1)
        table.add_column(" flag", key="flag", width=7)
        if wide:
            table.add_column(Text("age", justify="right"), key="age", width=6)
        self.rows.clear()  # the next refresh adds every row again
        self._order = []

    def on_resize(self) -> None:
        if self.is_mounted:
            self._columns()
            self._wake.set()

    def _title(self) -> None:
        root = runs_root(self.app.runs_root_dir())
        self.query_one("#runs-title", Static).update(
            Text.assemble(("Runs ", "bold"), (f"{len(self.rows)} in {root}/", "dim"),
                          (f"  {len(self.groups)} seed group{'s' if len(self.groups) != 1 else ''}"
                           if self.groups else "", "dim"),
                          (f"   {len(self.marked)} marked" if self.marked else "", "yellow")))
        hint = "space: mark runs, c: compare them" if len(self.marked) < 2 else "c: compare the marked runs"
        if self.groups:
            hint += " · e: expand or fold a seed group"
        self.query_one("#runs-hint", Static).update(Text(hint, style="dim"))

    @work(thread=True, exclusive=True, group="runs-refresh")
    def _refresh_loop(self) -> None:
        worker = get_current_worker()
        readers: dict[Path, RunReader] = {}
        ended: dict[Path, tuple[int | None, RunSummary]] = {}  # a run that ended: its summary, by file size
        models: dict[Path, dict[str, Any]] = {}
        members: dict[Path, Membership] = {}
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
                size = _size(path)
                hit = ended.get(path)
                if hit is not None and hit[0] == size:
                    summary = hit[1]
                else:
                    reader = readers.get(path) or readers.setdefault(path, RunReader(path))
                    reader.poll()  # only what was appended since the last refresh
                    reader.save_cache()
                    summary = reader.summary()
                    if summary.state not in ("new", "running"):  # kept until the file changes (a resume)
                        ended[path] = (size, summary)
                        del readers[path]
                if path not in models:
                    models[path] = _model_from_preset(path)
                if path not in members or summary.started is None:  # the world size is known from run_start
                    members[path] = membership(path)
                arch = summary.arch or str(models[path].get("arch", ""))
                rows.append(RunRow(path, summary, preset_name(path, summary), arch,
                                   _frozen(models[path], summary.diag)))
            self.post_message(RunsUpdated(rows, group_runs([r.path for r in rows], members)))
            self._wake.wait(REFRESH_S)
            self._wake.clear()

    @on(RunsUpdated)
    def _update(self, msg: RunsUpdated) -> None:
        by_path = {row.path: row for row in msg.rows}
        need = max([len(by_path[g.members[0]].path.name) if g.k == 1 else len(g.label) + 2 for g in msg.groups]
                   + [len(f"seed {seed} · {p.name}") + 2 for g in msg.groups if "group:" + g.key in self.expanded
                      for p, seed in zip(g.members, g.seeds)] + [12])
        if need != getattr(self, "_need", None):
            self._need = need
            self._columns()
        self._groups_seen = msg.groups
        self.rows = {str(row.path): row for row in msg.rows}
        self.groups = {}
        shown: list[tuple[str, RunRow | GroupRow, str | None]] = []  # key, row, a member line's label
        for g in msg.groups:
            if g.k == 1:
                row = by_path[g.members[0]]
                shown.append((str(row.path), row, None))
                continue
            grow = make_group_row(g, by_path)
            self.groups[grow.key] = grow
            shown.append((grow.key, grow, None))
            if grow.key in self.expanded:
                shown += [(str(m.path), m, self._member_label(m, seed)) for m, seed in zip(grow.members, g.seeds)]
        self.marked &= set(self.rows) | set(self.groups)
        self.expanded &= set(self.groups)
        self._fill(shown)
        self.refreshes += 1
        self._title()
        self.sync_bindings()  # the highlighted run's state may have changed

    def _member_label(self, m: RunRow, seed: int | None) -> str:
        """An expanded group's run: its seed, and its name where the column has room for it (a
        name cut to a few letters tells nothing the group row above does not)."""
        if seed is None:
            return m.path.name
        label = f"seed {seed} · "
        room = getattr(self, "_run_w", 0) - 2 - len(label)
        return label + fit_id(m.path.name, room) if room >= 10 else f"seed {seed}"

    def _fill(self, shown: list[tuple[str, RunRow | GroupRow, str | None]]) -> None:
        """Update the cells in place when the rows are the same ones in the same order; otherwise
        lay the table out again, keeping the cursor on the row it was on."""
        table = self.query_one(DataTable)
        now = self.app.now()
        order = [key for key, _, _ in shown]
        if order == self._order and all(k in table.rows for k in order):
            for key, row, member in shown:
                for col, value in self._cells_of(row, key, now, member).items():
                    table.update_cell(key, col, value)
            return
        at = self._cursor_key() or getattr(self, "_keep_at", None)
        table.clear()
        for key, row, member in shown:
            table.add_row(*self._cells_of(row, key, now, member).values(), key=key)
        self._order = order
        if at in order:
            table.move_cursor(row=order.index(at), animate=False)

    def _cells_of(self, row: RunRow | GroupRow, key: str, now: float, member: str | None) -> dict[str, Any]:
        if isinstance(row, GroupRow):
            return self._group_cells(row, now)
        cells = self._cells(row, key, now)
        if member is not None:
            cells["run"] = Text.assemble(("└ ", "dim"), (member, "bold"), overflow="ellipsis", no_wrap=True)
        lucky = any(key in g.lucky for g in self.groups.values())
        if lucky and not cells["flag"]:
            cells["flag"] = Text(" lucky", style="bold yellow")
        return cells

    def _group_cells(self, g: GroupRow, now: float) -> dict[str, Any]:
        ms = [m.summary for m in g.members]
        state, counts = group_state([s.state for s in ms]), state_counts([s.state for s in ms])
        gap = " " if sum(len(f" x{n}") for _, n in counts) <= 12 else ""  # (12: the state column; ✓10✗2■1●1)
        counted_runs = [s for s in ms if s.state == "completed"] or ms  # as the bpb: groups.counted
        losses = [s.last_loss for s in counted_runs if s.last_loss is not None]
        took = [t for m in g.members if (t := _took(m.summary)) is not None]
        counted_ids = {id(s) for s in counted_runs}
        trends = [m.trend for m in g.members if m.trend and id(m.summary) in counted_ids]  # (as the loss)
        trend = ([sum(col) / len(col) for col in zip(*trends)] if trends and len({len(t) for t in trends}) == 1
                 else (trends[0] if trends else []))
        live = [s for s in ms if s.state in ("running", "starting")]  # the steps: how far the live seeds are,
        low = min(live or counted_runs, key=lambda s: s.step)  # else the counted ones (not a failed seed's)
        steps = steps_text(low.step, low.max_steps)
        flag = (Text(" lucky", style="bold yellow") if g.lucky
                else Text.assemble(" ", ("FROZEN", "bold white on red")) if any(m.frozen for m in g.members)
                else Text(" pruned", style="magenta") if any(s.state == "pruned" for s in ms) else "")
        arrow = "▾" if g.key in self.expanded else "▸"
        cells: dict[str, Any] = {
            "mark": Text("▌", style="yellow") if g.key in self.marked else "",
            "run": Text.assemble((arrow + " ", "cyan"), (g.group.label, "bold"), overflow="ellipsis", no_wrap=True),
            "state": (Text(f" {STATE_ICON.get(state, '?')} {g.group.k} seeds", style=STATE_STYLE.get(state, ""))
                      if len(counts) == 1 else Text.assemble(*((f"{gap}{STATE_ICON.get(st, '?')}{n}",  # ✓5 ✗3
                                                                STATE_STYLE.get(st, "")) for st, n in counts))),
            "arch": Text(" " + g.members[0].arch, overflow="ellipsis", no_wrap=True),
            "preset": Text(" " + g.members[0].preset, overflow="ellipsis", no_wrap=True),
            "bpb": Text(on_point(g.value.text())),
            "loss": Text(f"{sum(losses) / len(losses):.4f}" if losses else "—", justify="right"),
            "step": Text(steps, justify="right"),
            "time": Text(duration_text(sum(took)) if took else "—", justify="right"),
            "trend": Text(" " + sparkline(trend, self._trend_w), style="cyan"),
            "flag": flag,
            "age": Text(fmt_age(now - max((s.started or 0.0) for s in ms)), justify="right"),
        }
        if not self._wide:
            for k in ("arch", "preset", "age"):
                del cells[k]
        return cells

    def _cells(self, row: RunRow, key: str, now: float) -> dict[str, Any]:
        s = row.summary
        state = s.state
        steps = steps_text(s.step, s.max_steps)
        took = _took(s)
        flag = (Text.assemble(" ", ("FROZEN", "bold white on red")) if row.frozen
                else Text(" pruned", style="magenta") if state == "pruned" else "")
        cells: dict[str, Any] = {
            "mark": Text("▌", style="yellow") if key in self.marked else "",
            "run": Text(fit_id(row.path.name, getattr(self, "_run_w", RUN_MAX)), style="bold", overflow="ellipsis",
                        no_wrap=True),  # (tiny-…131719: runs of one preset stay apart at 80 columns)
            "state": Text(f" {STATE_ICON.get(state, '?')} {state}", style=STATE_STYLE.get(state, "")),
            "arch": Text(" " + row.arch, overflow="ellipsis", no_wrap=True),
            "preset": Text(" " + row.preset, overflow="ellipsis", no_wrap=True),
            "bpb": Text(on_point(f"{s.best_val_bpb:.4f}" if s.best_val_bpb is not None else "—")),
            "loss": Text(f"{s.last_loss:.4f}" if s.last_loss is not None else "—", justify="right"),
            "step": Text(steps, justify="right"),
            "time": Text(duration_text(took) if took is not None else "—", justify="right"),
            "trend": Text(" " + sparkline(row.trend, self._trend_w), style="cyan"),
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

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Stop, Resume and Expand (Fold on an expanded group) are offered (in the footer, and on their
        keys) only where they apply to the highlighted row: at 80 columns the footer has room for them."""
        if action not in self.OFFERED or not self.is_mounted:
            return True
        key = self._cursor_key()
        if action in ("expand", "fold"):
            return key in self.groups and (key in self.expanded) == (action == "fold")
        row = self.rows.get(key or "")
        state = row.summary.state if row is not None else ""
        return state == "running" if action == "stop" else state in RESUMABLE

    @on(DataTable.RowHighlighted)
    def _row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self.sync_bindings()

    @on(DataTable.RowSelected)
    def _row_selected(self, event: DataTable.RowSelected) -> None:
        self.action_open()

    def _source(self, key: str) -> tuple[str, list[Path]]:
        """(label, runs) of a row: a group opens as its seed band, a run as itself."""
        g = self.groups.get(key)
        if g is not None:
            return f"{g.group.label} ×{g.group.k}", list(g.group.members)
        return Path(key).name, [Path(key)]

    def action_open(self) -> None:
        key = self._cursor_key()
        if key in self.groups:
            self.app.open_sources([self._source(key)])
        elif key:
            self.app.open_runs([Path(key)])

    def action_expand(self) -> None:
        key = self._cursor_key()
        if key not in self.groups:
            self.notify("Select a seed group (a ▸ row) to expand", severity="warning")
            return
        self.expanded ^= {key}
        self._update(RunsUpdated(list(self.rows.values()), self._groups_seen))
        self.sync_bindings()

    action_fold = action_expand

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
        keys = [k for k in self._order if k in self.marked]
        if len(keys) < 2:
            self.notify("Mark two or more runs or seed groups with space, then press c", severity="warning")
            return
        if any(k in self.groups for k in keys):
            self.app.open_sources([self._source(k) for k in keys])
        else:
            self.app.open_runs([Path(k) for k in keys])

    def action_stop(self) -> None:
        key = self._cursor_key()
        row = self.rows.get(key or "")
        if row is None or row.summary.state != "running":
            self.notify(f"{row.path.name} is {row.summary.state}: only a running run stops" if row is not None
                        else "Select a running run to stop", severity="warning", markup=False)
            return
        self.app.push_screen(ConfirmScreen(f"Stop {row.path.name}? It writes a checkpoint first.",
                                           yes="Stop"), lambda ok: ok and self.app.stop_run(row.path))

    def action_resume(self) -> None:
        key = self._cursor_key()
        row = self.rows.get(key or "")
        if row is None or row.summary.state not in RESUMABLE:
            self.notify(f"{row.path.name} is {row.summary.state}: a stopped, pruned, failed or dead run resumes"
                        if row is not None else "Select a stopped, pruned, failed or dead run to resume",
                        severity="warning", markup=False)
            return
        self.app.resume_run(row.path)

    action_stop_refused, action_resume_refused = action_stop, action_resume

    def palette_commands(self) -> list[tuple[str, str, Any]]:
        return [("Compare marked runs", "Overlay the marked runs (c)", self.action_compare),
                ("Refresh runs", "Re-scan the runs folder now", self.action_refresh)]

"""The preset list: every preset in ./presets, the shipped folder and any folder given."""

from __future__ import annotations

import functools
import tomllib
from pathlib import Path
from typing import Any

from rich.syntax import Syntax
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static

from ...config.presets import list_presets
from ...errors import UserError
from ..widgets.cursortable import CursorTable
from ..widgets.literal import cell


def preset_info(path: Path) -> dict[str, Any]:
    """Arch, shape and notes of a preset file, read shallowly (no validation) for the list."""
    try:
        raw = tomllib.loads(_text(path))
    except (UserError, tomllib.TOMLDecodeError) as e:
        return {"arch": "?", "shape": "", "notes": f"unreadable: {e}"}
    model = raw.get("model", {}) if isinstance(raw.get("model"), dict) else {}
    run = raw.get("run", {}) if isinstance(raw.get("run"), dict) else {}
    shape = ""
    if "n_layers" in model or "d_model" in model:
        shape = f"{model.get('n_layers', '·')}L × {model.get('d_model', '·')}"
    return {"arch": str(model.get("arch", "gpt")), "shape": shape, "notes": str(run.get("notes", "")),
            "errors": _errors(path)}


def _text(path: Path) -> str:
    """A preset file's text as the CLI reads it: a pipe is never opened for reading (it would hang
    the list), nor a file over 1 MiB read whole; not UTF-8 says so. UserError: why not, path left out."""
    from ...config.load import read_preset_text

    try:
        return read_preset_text(path)
    except UserError as e:
        raise UserError(str(e).removeprefix(f"{path}: ")) from None


def _errors(path: Path) -> list[str]:
    """The preset's errors as the editor and `tuilm validate` find them (cached while the file stays)."""
    try:
        st = path.stat()
    except OSError:
        return []
    return _errors_of(path, st.st_mtime_ns, st.st_size)


@functools.lru_cache(maxsize=512)
def _errors_of(path: Path, mtime_ns: int, size: int) -> list[str]:
    from ...config.load import load
    from ...errors import UserError

    try:  # (no budget check: an estimate per preset is not for a list)
        problems = load(path, with_budget=False)[1]
    except UserError as e:
        return [str(e)]
    return [f"{p.path}: {p.message}" if p.path else p.message for p in problems if p.is_error]


class PresetsScreen(Screen):
    BINDINGS = [
        Binding("enter", "open", "Edit", priority=True),  # (the focused table binds enter too, unshown)
        Binding("n", "new", "New preset"),
        Binding("f5", "reload", "Reload", show=False),
    ]

    def compose(self) -> ComposeResult:
        yield Static(id="presets-title", classes="title-bar")
        with Horizontal(id="presets-body"):
            yield CursorTable(id="presets-table", cursor_type="row", zebra_stripes=True)
            yield Static(id="preset-preview")
        yield Footer()

    def on_mount(self) -> None:
        self.action_reload()
        self.query_one(DataTable).focus()
        self.set_interval(2.0, self._follow)

    def _stamp(self) -> tuple:
        """The .toml files of the preset folders and their versions: a listing and a stat each, no file
        opened (``presets()`` reads each file's head to leave study files out: only on a change)."""
        out = []
        for d in self.app.preset_dirs():
            try:
                files = sorted(d.glob("*.toml"))
            except OSError:
                continue
            for p in files:
                try:
                    st = p.stat()
                    out.append((p, st.st_mtime_ns, st.st_size))
                except OSError:
                    out.append((p, None, None))
        return tuple(out)

    def _follow(self) -> None:
        """Every 2 s while shown: a preset added, removed or edited elsewhere shows (the runs list follows
        its folder too)."""
        if self.app.screen is self and self._stamp() != getattr(self, "_stamped", None):
            self.action_reload()

    def _notes_width(self, paths: list[Path]) -> int:
        """What the notes column may take: the table's width less the other columns, the cell
        padding and a scrollbar, so a long note ends in "…" instead of pushing the table sideways."""
        width = self.query_one(DataTable).size.width or self.app.size.width
        name_w = max([len(p.stem) for p in paths] + [6])
        others = name_w + 4 + 10 + 4 * 2  # preset, arch, shape; 2 cells of padding a column
        return max(12, min(96, width - others - 2))

    def on_resize(self) -> None:
        if self.is_mounted:
            self.call_after_refresh(self.action_reload)

    def presets(self) -> list[Path]:
        return list_presets(self.app.extra_preset_dirs())

    def action_reload(self) -> None:
        table = self.query_one(DataTable)
        keep, was = table.cursor_row, self._selected() if table.row_count else None
        self._stamped = self._stamp()
        table.clear(columns=True)  # (a column keeps its widest cell's width until it is cleared: a resize
        table.add_columns("preset", "arch", "shape")  # to 80 columns would leave the notes at 160's)
        table.add_column("notes", key="notes")
        paths = self.presets()
        notes_w = self._notes_width(paths)
        for p in paths:
            info = preset_info(p)
            errors = info["errors"] if info["arch"] != "?" else []  # (unreadable: its notes say so)
            notes = (f"✗ {len(errors)} error{'s' * (len(errors) > 1)}: {errors[0]}" if errors else info["notes"])
            notes = notes if len(notes) <= notes_w else notes[:notes_w - 1] + "…"
            table.add_row(Text(p.stem, style="bold"), cell(info["arch"]), cell(info["shape"]),
                          Text(notes, style="red" if errors else "dim"), key=str(p))
        dirs = ", ".join(f"{d}/" for d in self.app.preset_dirs()) or "no preset folder found"
        width = self.app.size.width - 2
        what = f"{len(paths)} from {dirs}"
        hint = "   enter: edit · n: new · 2: runs"
        if 9 + len(what) + len(hint) > width:  # one line: the hint goes, then the folders are cut
            hint = ""
            what = what if 9 + len(what) <= width else what[: max(1, width - 10)] + "…"
        self.query_one("#presets-title", Static).update(
            Text.assemble(("Presets  ", "bold"), (what, "dim"), (hint, "dim italic"), no_wrap=True))
        if paths:  # the cursor stays on its preset when one is added above it
            keep = paths.index(was) if was in paths else min(keep, len(paths) - 1)
            table.move_cursor(row=keep)
            self._preview(paths[keep])

    def _selected(self) -> Path | None:
        table = self.query_one(DataTable)
        if table.row_count == 0:
            return None
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        return Path(key) if key else None

    @on(DataTable.RowHighlighted)
    def _highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.row_key.value:
            self._preview(Path(event.row_key.value))

    def _preview(self, path: Path) -> None:
        try:
            text = _text(path)
        except UserError as e:
            text = f"# cannot read: {e}"
        from .editorstate import shown_path

        self.query_one("#preset-preview", Static).update(  # (the file's place first: which folder it is in)
            Syntax(f"# {shown_path(path)}\n{text}", "toml", theme="ansi_dark", word_wrap=False,
                   background_color="default"))

    @on(DataTable.RowSelected)
    def _selected_row(self, event: DataTable.RowSelected) -> None:
        self.action_open()

    def action_open(self) -> None:
        path = self._selected()
        if path is not None:
            self.app.open_preset(path)

    def action_new(self) -> None:
        self.app.open_preset(None)

    def palette_commands(self) -> list[tuple[str, str, Any]]:
        return [("New preset", "Start from the schema defaults (n)", self.action_new),
                ("Reload presets", "Re-read the preset folders", self.action_reload)]


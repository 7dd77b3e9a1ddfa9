"""A DataTable whose Home / End move the row cursor to the first / last row, as in any list.

Textual's DataTable binds them to horizontal scrolling, which does nothing in a table that fits.
"""

from __future__ import annotations

import dataclasses

from textual.binding import Binding
from textual.widgets import DataTable


def _quiet(cls: type, mine: tuple[str, ...]) -> list[Binding]:
    """The table's own keys (arrows, pages, top, bottom) as system bindings: the keys panel (F1) then
    lists the screen's keys, not twelve cursor keys every list has before them."""
    merged = cls._merge_bindings().key_to_bindings  # (each key as the most derived class binds it)
    return [dataclasses.replace(b, system=True) for key, bindings in merged.items() if key not in mine
            for b in bindings]


class CursorTable(DataTable):
    BINDINGS = _quiet(DataTable, ("home", "end")) + [
        Binding("home", "cursor_first", "First", show=False, system=True),
        Binding("end", "cursor_last", "Last", show=False, system=True),
    ]

    def action_cursor_first(self) -> None:
        if self.row_count:
            self.move_cursor(row=0)

    def action_cursor_last(self) -> None:
        if self.row_count:
            self.move_cursor(row=self.row_count - 1)

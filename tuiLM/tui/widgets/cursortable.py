"""A DataTable whose Home / End move the row cursor to the first / last row, as in any list.

Textual's DataTable binds them to horizontal scrolling, which does nothing in a table that fits.
"""

from __future__ import annotations

from textual.binding import Binding
from textual.widgets import DataTable


class CursorTable(DataTable):
    BINDINGS = [
        Binding("home", "cursor_first", "First", show=False),
        Binding("end", "cursor_last", "Last", show=False),
    ]

    def action_cursor_first(self) -> None:
        if self.row_count:
            self.move_cursor(row=0)

    def action_cursor_last(self) -> None:
        if self.row_count:
            self.move_cursor(row=self.row_count - 1)

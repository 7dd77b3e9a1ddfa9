"""The study view's line table: only changed rows are rendered again; cursor and selection work."""

from __future__ import annotations

import asyncio

from rich.text import Text
from textual.app import App, ComposeResult
from textual.geometry import Region

from tuiLM.tui.widgets.linetable import LineTable


class _App(App):
    def __init__(self) -> None:
        super().__init__()
        self.selected: list[str] = []

    def compose(self) -> ComposeResult:
        yield LineTable(id="t")

    def on_line_table_row_selected(self, msg: LineTable.RowSelected) -> None:
        self.selected.append(msg.key)


def _rows(n: int, changed: dict[int, str] | None = None) -> list[tuple[str, tuple]]:
    changed = changed or {}
    return [(str(i), (str(i), Text(changed.get(i, f"v{i}"), style="bold"), f"{i * 0.5:.2f}")) for i in range(n)]


def test_only_changed_rows_render_again_and_the_cursor_follows_its_row():
    async def run():
        app = _App()
        async with app.run_test(size=(60, 12)) as pilot:
            t = app.query_one(LineTable)
            t.set_columns(["#", "name", "value"])
            base = _rows(500)
            t.set_rows(base)
            await pilot.pause()
            t.render_lines(Region(0, 0, t.size.width, t.size.height))
            first = t.renders
            assert 0 < first <= t.size.height  # the visible rows only, not 500
            assert str(t.get_row_at(3)[1]) == "v3" and t.row_count == 500

            rows = list(base)  # 2 of the visible rows change; the other row tuples are the same objects
            for i in (1, 2):
                rows[i] = _rows(500, {i: f"new{i}"})[i]
            t.set_rows(rows)
            t.render_lines(Region(0, 0, t.size.width, t.size.height))
            assert t.renders - first == 2

            t.move_cursor(row=4)
            t.set_rows(list(reversed(rows)))  # a re-sort: the cursor stays on its row, nothing re-renders
            assert t.cursor_key == "4" and t.get_row_index("4") == 495
            before = t.renders
            t.render_lines(Region(0, 0, t.size.width, t.size.height))
            t.set_rows(rows)
            t.render_lines(Region(0, 0, t.size.width, t.size.height))
            assert t.renders - before <= t.size.height  # rows scrolled into view, rendered once each

            t.focus()
            t.move_cursor(row=0)
            await pilot.press("down", "down", "enter")
            assert app.selected == ["2"]
            await pilot.press("end")
            assert t.cursor_row == 499 and t.scroll_y > 0  # scrolled to show it
            await pilot.press("home")
            assert t.cursor_row == 0 and t.scroll_y == 0
    asyncio.run(run())

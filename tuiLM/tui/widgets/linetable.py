"""A read-only table of many rows that redraws only the rows that changed.

Why not Textual's DataTable here: any ``update_cell`` drops its whole render cache, so a live study of
500 trials in which 5 moved re-renders every visible row through Rich (measured: most of the study
view's redraw; bench/bench_study_view.py). Here each row is one cached Strip keyed by its cells; a
refresh of 5 changed trials renders 5 rows, sorting only reorders keys, and painting is cropping
cached strips. What it keeps of DataTable's behaviour: a header line, a row cursor (arrows, page
keys, Home / End, mouse click; ← → scroll a column sideways), zebra stripes, Enter posting
``RowSelected``, and the small part of its API the screens and tests use (row_count, get_row_at,
get_row_index, move_cursor).
"""

from __future__ import annotations

from typing import Sequence

from rich.cells import cell_len
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual import events
from textual.binding import Binding
from textual.geometry import Region, Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

HEADER = Style(bold=True, color="#c8ccd4", bgcolor="#262b33")
ZEBRA = Style(bgcolor="#1b1f25")
CURSOR = Style(bgcolor="#0e5a8a", bold=True)
CURSOR_BLUR = Style(bgcolor="#2c3440")
GAP = 1  # cells between columns


class LineTable(ScrollView, can_focus=True):
    BINDINGS = [
        Binding("up", "cursor(-1)", show=False),
        Binding("down", "cursor(1)", show=False),
        Binding("pageup", "page(-1)", show=False),
        Binding("pagedown", "page(1)", show=False),
        Binding("home", "first", show=False),
        Binding("end", "last", show=False),
        Binding("enter", "select", show=False),
        Binding("left", "scroll_cols(-1)", show=False),
        Binding("right", "scroll_cols(1)", show=False),
    ]
    DEFAULT_CSS = """
    LineTable { height: 1fr; }
    """
    cursor_row: reactive[int] = reactive(0, always_update=True, repaint=False)

    class RowSelected(Message):
        def __init__(self, table: "LineTable", key: str) -> None:
            super().__init__()
            self.table, self.key = table, key

        @property
        def control(self) -> "LineTable":
            return self.table

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self._labels: list[str] = []
        self._widths: list[int] = []
        self._keys: list[str] = []
        self._cells: dict[str, tuple] = {}
        self._strips: dict[str, tuple[tuple, Strip]] = {}  # key -> (cells, rendered row)
        self._row_widths: dict[str, tuple[int, ...]] = {}  # key -> each cell's width
        self.renders = 0  # rows rendered through Rich (the bench and tests read it)
        self._base: Style | None = None

    # -- data -------------------------------------------------------------------------------------

    def set_columns(self, labels: Sequence[str]) -> None:
        self._labels = list(labels)
        self._strips.clear()
        self._row_widths.clear()
        self._cells = {}
        self._fit_widths()

    def set_rows(self, rows: Sequence[tuple[str, tuple]]) -> None:
        """The rows in display order: (key, cells). Rows whose cells did not change keep their strip."""
        keep = self.cursor_key
        old = self._cells
        self._keys = [k for k, _ in rows]
        self._cells = dict(rows)
        for k in [k for k in self._strips if k not in self._cells]:
            del self._strips[k]
        for k in [k for k in self._row_widths if k not in self._cells]:
            del self._row_widths[k]
        for k, cells in rows:
            if old.get(k) is not cells or k not in self._row_widths:
                self._row_widths[k] = tuple(c.cell_len if isinstance(c, Text) else cell_len(str(c)) for c in cells)
        if self._fit_widths():
            self._strips.clear()
        self.virtual_size = Size(self.content_width, len(self._keys) + 1)
        if keep in self._cells:
            self.cursor_row = self._keys.index(keep)
        else:
            self.cursor_row = min(self.cursor_row, max(0, len(self._keys) - 1))
        self.refresh()

    def _fit_widths(self) -> bool:
        """Column widths: the widest label or cell; True when they changed (every strip is stale)."""
        widths = [cell_len(label) for label in self._labels]
        if self._row_widths:
            widest = [max(col) for col in zip(*self._row_widths.values())]
            widths = [max(a, b) for a, b in zip(widths, widest + [0] * (len(widths) - len(widest)))]
        changed = widths != self._widths
        self._widths = widths
        return changed

    @property
    def content_width(self) -> int:
        """The columns' cells and gaps: wider than the widget, the table scrolls sideways (← →)."""
        return sum(self._widths) + GAP * len(self._widths)

    @property
    def row_count(self) -> int:
        return len(self._keys)

    @property
    def cursor_key(self) -> str | None:
        return self._keys[self.cursor_row] if 0 <= self.cursor_row < len(self._keys) else None

    def get_row_at(self, index: int) -> tuple:
        return self._cells[self._keys[index]]

    def get_row_index(self, key: str) -> int:
        return self._keys.index(key)

    def move_cursor(self, *, row: int) -> None:
        if self._keys:
            self.cursor_row = max(0, min(row, len(self._keys) - 1))

    # -- drawing ----------------------------------------------------------------------------------

    def _row_strip(self, key: str) -> Strip:
        cells = self._cells[key]
        hit = self._strips.get(key)
        if hit is not None and (hit[0] is cells or hit[0] == cells):
            return hit[1]
        self.renders += 1
        segs: list[Segment] = []
        for c, w in zip(cells, self._widths):
            t = c if isinstance(c, Text) else Text(str(c))
            t = t.copy()
            t.truncate(w, overflow="ellipsis", pad=True)
            segs.extend(t.render(self.app.console))
            segs.append(Segment(" " * GAP))
        strip = Strip(segs).simplify()
        self._strips[key] = (cells, strip)
        return strip

    def render_lines(self, crop: Region) -> list[Strip]:
        self._base = self.rich_style  # once a paint, not once a line (it walks the DOM's colours)
        return super().render_lines(crop)

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        width = self.size.width
        base = self._base if self._base is not None else self.rich_style
        if y == 0:  # the header stays on top
            segs = [Segment(label.ljust(w)[:w] + " " * GAP, HEADER) for label, w in zip(self._labels, self._widths)]
            return Strip(segs).crop_extend(scroll_x, scroll_x + width, HEADER)
        i = scroll_y + y - 1
        if i >= len(self._keys):
            return Strip.blank(width, base)
        strip = self._row_strip(self._keys[i])
        if i == self.cursor_row:
            strip = strip.apply_style(CURSOR if self.has_focus else CURSOR_BLUR)
        elif i % 2:
            strip = strip.apply_style(ZEBRA)
        return strip.crop_extend(scroll_x, scroll_x + width, base)

    def watch_cursor_row(self, old: int, new: int) -> None:
        height = max(1, self.size.height - 1)
        if new < self.scroll_y:
            self.scroll_to(y=new, animate=False)
        elif new >= self.scroll_y + height:
            self.scroll_to(y=new - height + 1, animate=False)
        self.refresh()

    def on_focus(self) -> None:
        self.refresh()

    def on_blur(self) -> None:
        self.refresh()

    # -- keys and mouse ---------------------------------------------------------------------------

    def action_cursor(self, delta: int) -> None:
        self.move_cursor(row=self.cursor_row + delta)

    def action_page(self, direction: int) -> None:
        self.move_cursor(row=self.cursor_row + direction * max(1, self.size.height - 2))

    def action_scroll_cols(self, direction: int) -> None:
        """Sideways by a column, where the columns are wider than the table (a narrow terminal)."""
        x, edges = int(self.scroll_x), [0]
        for w in self._widths:
            edges.append(edges[-1] + w + GAP)
        nxt = [e for e in edges if e > x] if direction > 0 else [e for e in edges if e < x]
        if nxt:
            self.scroll_to(x=nxt[0] if direction > 0 else nxt[-1], animate=False)

    def action_first(self) -> None:
        self.move_cursor(row=0)

    def action_last(self) -> None:
        self.move_cursor(row=len(self._keys) - 1)

    def action_select(self) -> None:
        if self.cursor_key is not None:
            self.post_message(self.RowSelected(self, self.cursor_key))

    def on_click(self, event: events.Click) -> None:
        row = int(self.scroll_y) + event.y - 1
        if event.y >= 1 and 0 <= row < len(self._keys):
            if row == self.cursor_row and event.chain >= 2:
                self.action_select()
            self.move_cursor(row=row)

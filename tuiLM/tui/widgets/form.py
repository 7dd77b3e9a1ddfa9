"""The preset form, generated from the schema: one collapsible per section, one row per field.

Each row: key, control (Select for choices, Checkbox for bools, Input for numbers and strings), unit,
the problem for that field (beside it), and the field's description with its range underneath.
Rows post ``FieldRow.Edited`` (messages up); the editor validates and sets problems back
(attributes down).

Why an accordion that mounts rows on demand: every Textual widget costs style and layout work on
each focus change and keystroke. All ~90 fields mounted at once (~700 widgets with the controls'
internals) made a keystroke take seconds on a small machine; one section at a time (at most ~27
rows) keeps typing immediate. Values live in the editor, so unmounting a section loses nothing.

Why ``FieldInput`` and ``update_static``: Textual lays out the whole screen whenever any widget asks
for a layout, and both an Input's value and ``Static.update`` ask for one by default. A keystroke
now repaints the field, its message and the problems list entry, and lays out only when a height
changes (a problem appears or wraps to a second line). See bench/bench_editor.py.
"""

from __future__ import annotations

from typing import Any, Callable

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.geometry import Size
from textual.message import Message
from textual.widget import Widget
from textual.widgets import Checkbox, Collapsible, Input, Label, Select, Static

from ...config.schema import FIELDS, SECTIONS, Field, applies


def value_text(f: Field, value: Any) -> str:
    """How a typed value is shown in an Input (the inverse of config.load.coerce_text)."""
    if f.type is float:
        v = float(value)
        return f"{v:.1f}" if v.is_integer() and abs(v) < 1e16 else repr(v)
    return str(value)


def help_text(f: Field) -> Text:
    t = Text(f.help, style="dim")
    extras = []
    if f.min is not None and f.max is not None and f.max >= 2**53 and not f.choices:
        extras.append(f"{'>' if f.min_exclusive else '≥'} {f.min:g}")  # 2^63-1 bounds say nothing
    elif f.range_text() and not f.choices and f.type is not bool:
        extras.append(f.range_text())
    if f.unit:
        extras.append(f"in {f.unit}")
    if f.zero_means:
        extras.append(f"0 = {f.zero_means}")
    shown = (bool_label(f.default) if f.type is bool else repr(f.default) if f.type is str
             else value_text(f, f.default))
    extras.append(f"default {shown}")
    t.append("  ·  " + "  ·  ".join(extras), style="dim italic")
    return t


def update_static(widget: Static, content: Any) -> None:
    """``widget.update(content)`` without a layout pass of the whole screen unless its height changes.

    ``Static.update`` asks for a layout by default, and Textual lays out the entire screen (every
    mounted row of the form) for it: ~30-50 ms on a small machine. A field message, a title or the
    estimate panel that keeps its height only needs a repaint.
    """
    if not widget.is_mounted:
        widget.update(content)
        return
    old_height = widget.content_region.height
    width = widget.content_region.width
    if not width:  # hidden (display: none) or not laid out yet: a layout comes anyway when it shows
        widget.update(content, layout=False)
        return
    widget.update(content, layout=False)
    new_height = widget.visual.get_height(widget.styles, width)
    min_height = widget.styles.min_height
    if min_height is not None and min_height.is_cells:
        new_height = max(new_height, int(min_height.value))
    if new_height != old_height:
        widget.refresh(layout=True)


class FieldInput(Input):
    """An Input whose typing repaints itself only.

    Textual's Input sets ``virtual_size`` (a layout reactive) to the text's width on every change,
    which lays out the whole screen per keystroke. A field's box does not depend on its text
    (``width: 100%; height: 1``; the budget's ``width: 12``), so the virtual size is set without a
    layout; Input's own watcher still runs (Changed, cursor), and scrolling within the field still
    uses the virtual size.
    """

    def _watch_value(self, value: str) -> None:
        # Set first, quietly: Input's own watcher then assigns the same size, which is no change.
        self.set_reactive(Input.virtual_size, Size(self.content_width, 1))
        super()._watch_value(value)


def row_id(path: str) -> str:
    return "row-" + path.replace(".", "--")


def control_id(path: str) -> str:
    return "f-" + path.replace(".", "--")


class FieldRow(Widget):
    """One schema field: a 3-column grid (key, control, problem) over a full-width description.

    Kept to four children and no class changes after mount: restyling is the expensive part of
    a keystroke, so state shows through the content of the key and message labels only.
    """

    class Edited(Message):
        def __init__(self, row: "FieldRow") -> None:
            super().__init__()
            self.row = row

    def __init__(self, f: Field, raw: Any) -> None:
        kind = "-text" if f.type is str and not f.choices else ""
        super().__init__(id=row_id(f.path), classes=f"field-row {kind}".strip())
        self.field = f
        self._raw = raw
        self.ready = False
        self._key_state: tuple = ()
        self._msg_state: tuple = ()

    def compose(self) -> ComposeResult:
        yield Label(self.field.key, classes="field-key")
        yield self._control()
        yield Static("", classes="field-msg")
        yield Static(help_text(self.field), classes="field-help")

    def _control(self) -> Widget:
        f, v, cid = self.field, self._raw, control_id(self.field.path)
        if f.choices:
            options = [(c, c) for c in f.choices]
            value = v if v in f.choices else Select.NULL
            return Select(options, value=value, allow_blank=value is Select.NULL, compact=True, id=cid,
                          classes="field-control")
        if f.type is bool:
            # says its value: an unticked box read almost like a ticked one (colour alone)
            return Checkbox(bool_label(bool(v)), bool(v), compact=True, id=cid, classes="field-control")
        placeholder = f"0 = {f.zero_means}" if f.zero_means else ""
        text = v if isinstance(v, str) else value_text(f, v)
        return FieldInput(text, placeholder=placeholder, compact=True, id=cid, classes="field-control",
                          select_on_focus=False)

    def on_mount(self) -> None:
        self.control = self.query_one(".field-control")
        self._key = self.query_one(".field-key", Label)
        self._msg = self.query_one(".field-msg", Static)
        self.call_after_refresh(self._set_ready)

    def _set_ready(self) -> None:
        self.ready = True

    def raw(self) -> Any:
        """The control's content: text for Inputs, a bool for Checkboxes, a choice (or None)."""
        c = self.control
        if isinstance(c, (Input, Checkbox)):
            return c.value
        value = c.value  # Select
        return None if value is Select.NULL else value

    def show(self, level: str | None, message: str, modified: bool, in_file: bool) -> None:
        """Problem beside the field; ● and colour on the key when modified; bold when the file sets it."""
        key_state, msg_state = (modified, in_file), (level, message)
        if key_state != self._key_state:  # only the label whose text changes is touched
            self._key_state = key_state
            style = "bold " if in_file else ""
            style += "yellow" if modified else ("" if in_file else "dim")
            key = Text(("● " if modified else "") + self.field.key, style=style.strip())
            self._key.update(key, layout=False)  # always one line (height: 1)
        if msg_state != self._msg_state:
            self._msg_state = msg_state
            if level is None:
                update_static(self._msg, "")
            else:
                icon = "✗" if level == "error" else "⚠"
                update_static(self._msg, Text(f"{icon} {message}",
                                              style="bold red" if level == "error" else "yellow"))

    def _edited(self) -> None:
        if self.ready:
            self.post_message(self.Edited(self))

    def on_input_changed(self, event: Input.Changed) -> None:
        event.stop()
        self._edited()

    def on_checkbox_changed(self, event: Checkbox.Changed) -> None:
        event.stop()
        event.checkbox.label = bool_label(event.value)
        self._edited()

    def on_select_changed(self, event: Select.Changed) -> None:
        event.stop()
        self._edited()


def bool_label(value: bool) -> str:
    return "true" if value else "false"  # as the TOML file writes it


class PresetForm(VerticalScroll):
    """Sections as an accordion: expanding one mounts its rows and collapses the others.

    ``raw_for(path)`` gives the value a new row starts with; ``arch()`` the current model family.
    """

    class SectionOpened(Message):
        def __init__(self, section: str) -> None:
            super().__init__()
            self.section = section

    def __init__(self, raw_for: Callable[[str], Any], arch: Callable[[], str], *, open_section: str = "model",
                 id: str | None = None) -> None:
        super().__init__(id=id)
        self._raw_for = raw_for
        self._arch = arch
        self._first = open_section
        self.open_section: str | None = None
        self._rows: dict[str, FieldRow] = {}

    def compose(self) -> ComposeResult:
        arch = self._arch()
        for section, title in SECTIONS.items():
            rows = []
            if section == self._first:  # composed open: no scroll jump, no second layout pass
                rows = [FieldRow(f, self._raw_for(f.path)) for f in FIELDS if f.section == section]
                for row in rows:
                    row.display = applies(row.field, arch)
                    self._rows[row.field.path] = row
                self.open_section = section
            yield Collapsible(*rows, title=self._title(section, title, ""), collapsed=section != self._first,
                              id=f"sec-{section}", classes="form-section")

    @staticmethod
    def _title(section: str, title: str, badge: str) -> str:
        return f"{section}{badge} — {title}"  # the counts first: a narrow form cuts the long title, not them

    def rows(self) -> list[FieldRow]:
        return list(self._rows.values())

    def row(self, path: str) -> FieldRow | None:
        return self._rows.get(path)

    def set_badges(self, badges: dict[str, str]) -> None:
        for section, title in SECTIONS.items():
            text = self._title(section, title, badges.get(section, ""))
            sec = self.query_one(f"#sec-{section}", Collapsible)
            if sec.title != text:
                sec.title = text

    async def open(self, section: str) -> None:
        """Expand ``section`` (mounting its rows) and collapse the one that was open."""
        if self.open_section == section:
            return
        previous, self.open_section = self.open_section, section
        if previous is not None:
            old = self.query_one(f"#sec-{previous}", Collapsible)
            for row in [r for r in self._rows.values() if r.field.section == previous]:
                del self._rows[row.field.path]
            await old.query_one(Collapsible.Contents).remove_children()
            if not old.collapsed:
                old.collapsed = True
        sec = self.query_one(f"#sec-{section}", Collapsible)
        arch = self._arch()
        rows = [FieldRow(f, self._raw_for(f.path)) for f in FIELDS if f.section == section]
        for row in rows:
            row.display = applies(row.field, arch)
            self._rows[row.field.path] = row
        await sec.query_one(Collapsible.Contents).mount_all(rows)
        if sec.collapsed:
            sec.collapsed = False
        self.post_message(self.SectionOpened(section))

    async def on_collapsible_expanded(self, event: Collapsible.Expanded) -> None:
        event.stop()
        section = (event.collapsible.id or "").removeprefix("sec-")
        if section and section != self.open_section:
            await self.open(section)

    async def on_collapsible_collapsed(self, event: Collapsible.Collapsed) -> None:
        event.stop()
        section = (event.collapsible.id or "").removeprefix("sec-")
        if section == self.open_section:
            for row in [r for r in self._rows.values() if r.field.section == section]:
                del self._rows[row.field.path]
            self.open_section = None
            await event.collapsible.query_one(Collapsible.Contents).remove_children()

    def apply_arch(self, arch: str) -> None:
        """Show only the fields that apply to ``arch``."""
        for row in self._rows.values():
            row.display = applies(row.field, arch)

    async def reveal(self, path: str) -> None:
        """Open the field's section, scroll to it and focus its control."""
        section = path.split(".", 1)[0]
        await self.open(section)
        row = self._rows.get(path)
        if row is None:
            return
        row.display = True
        self.call_after_refresh(self._focus_row, row)

    def _focus_row(self, row: FieldRow) -> None:
        if row.is_attached:
            row.control.focus()
            row.scroll_visible(top=False)

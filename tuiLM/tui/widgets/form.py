"""The preset form, generated from the schema: one row per field, grouped by section.

Each row: key, control (Select for choices, Checkbox for bools, Input for numbers and strings), unit,
the problem for that field (beside it), and the field's description with its range underneath.
Rows post ``FieldRow.Edited`` (messages up); the editor screen validates and sets problems back
(attributes down).
"""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.widget import Widget
from textual.widgets import Checkbox, Collapsible, Input, Label, Select, Static

from ...config.schema import FIELDS, SECTIONS, Field, applies


def value_text(f: Field, value: Any) -> str:
    """How a typed value is shown in an Input (the inverse of config.load.coerce_text)."""
    if f.type is float:
        return repr(float(value)) if not float(value).is_integer() or abs(value) >= 1e16 else f"{value:.1f}"
    return str(value)


def help_text(f: Field) -> Text:
    t = Text(f.help, style="dim")
    extras = []
    if f.min is not None and f.max is not None and f.max >= 2**53 and not f.choices:
        extras.append(f"{'>' if f.min_exclusive else '≥'} {f.min:g}")  # 2^63-1 bounds say nothing
    elif f.range_text() and not f.choices and f.type is not bool:
        extras.append(f.range_text())
    if f.zero_means:
        extras.append(f"0 = {f.zero_means}")
    extras.append(f"default {value_text(f, f.default) if f.type is not str else repr(f.default)}")
    t.append("  ·  " + "  ·  ".join(extras), style="dim italic")
    return t


def row_id(path: str) -> str:
    return "row-" + path.replace(".", "--")


def control_id(path: str) -> str:
    return "f-" + path.replace(".", "--")


class FieldRow(Vertical):
    """One schema field."""

    class Edited(Message):
        def __init__(self, row: "FieldRow") -> None:
            super().__init__()
            self.row = row

    def __init__(self, f: Field, value: Any) -> None:
        kind = "-text" if f.type is str and not f.choices else ""
        super().__init__(id=row_id(f.path), classes=f"field-row {kind}".strip())
        self.field = f
        self._value = value
        self.ready = False

    def compose(self) -> ComposeResult:
        f = self.field
        with Horizontal(classes="field-line"):
            yield Label(f.key, classes="field-key")
            yield self._control()
            yield Label(f.unit, classes="field-unit")
            yield Static("", classes="field-msg")
        yield Static(help_text(f), classes="field-help")

    def _control(self) -> Widget:
        f, v, cid = self.field, self._value, control_id(self.field.path)
        if f.choices:
            options = [(c, c) for c in f.choices]
            value = v if v in f.choices else Select.NULL
            return Select(options, value=value, allow_blank=value is Select.NULL, compact=True, id=cid,
                          classes="field-control")
        if f.type is bool:
            return Checkbox("", bool(v), compact=True, id=cid, classes="field-control")
        placeholder = f"0 = {f.zero_means}" if f.zero_means else ""
        return Input(value_text(f, v), placeholder=placeholder, compact=True, id=cid,
                     classes="field-control", select_on_focus=False)

    def on_mount(self) -> None:
        self.call_after_refresh(self._set_ready)

    def _set_ready(self) -> None:
        self.ready = True

    @property
    def control(self) -> Widget:
        return self.query_one(".field-control")

    def raw(self) -> Any:
        """The control's content: text for Inputs, a bool for Checkboxes, a choice (or None)."""
        c = self.control
        if isinstance(c, Input):
            return c.value
        if isinstance(c, Checkbox):
            return c.value
        value = c.value  # Select
        return None if value is Select.NULL else value

    def set_raw(self, value: Any) -> None:
        c = self.control
        if isinstance(c, Input):
            c.value = value_text(self.field, value) if not isinstance(value, str) else value
        elif isinstance(c, Checkbox):
            c.value = bool(value)
        else:
            c.value = value

    def set_problem(self, level: str | None, message: str = "") -> None:
        msg = self.query_one(".field-msg", Static)
        self.set_class(level == "error", "-error")
        self.set_class(level == "warning", "-warning")
        if level is None:
            msg.update("")
        else:
            icon = "✗" if level == "error" else "⚠"
            msg.update(Text(f"{icon} {message}", style="bold red" if level == "error" else "yellow"))

    def set_modified(self, modified: bool, in_file: bool) -> None:
        self.set_class(modified, "-modified")
        self.set_class(in_file, "-in-file")
        label = self.query_one(".field-key", Label)
        label.update(("● " if modified else "") + self.field.key)

    def _edited(self) -> None:
        if self.ready:
            self.post_message(self.Edited(self))

    def on_input_changed(self, event: Input.Changed) -> None:
        event.stop()
        self._edited()

    def on_checkbox_changed(self, event: Checkbox.Changed) -> None:
        event.stop()
        self._edited()

    def on_select_changed(self, event: Select.Changed) -> None:
        event.stop()
        self._edited()


class PresetForm(VerticalScroll):
    """All fields of the schema, one collapsible per section."""

    def __init__(self, values: dict[str, dict[str, Any]], *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._values = values

    def compose(self) -> ComposeResult:
        for section, title in SECTIONS.items():
            rows = [FieldRow(f, self._values[section][f.key]) for f in FIELDS if f.section == section]
            yield Collapsible(*rows, title=f"{section} — {title}", collapsed=False, id=f"sec-{section}",
                              classes="form-section")

    def rows(self) -> list[FieldRow]:
        return list(self.query(FieldRow))

    def row(self, path: str) -> FieldRow:
        return self.query_one(f"#{row_id(path)}", FieldRow)

    def apply_arch(self, arch: str) -> None:
        """Show only the fields that apply to ``arch``."""
        for row in self.rows():
            row.display = applies(row.field, arch)

    def reveal(self, path: str) -> None:
        """Expand the field's section, scroll to it and focus its control."""
        row = self.row(path)
        section = self.query_one(f"#sec-{row.field.section}", Collapsible)
        section.collapsed = False
        row.display = True
        row.control.focus()
        self.call_after_refresh(row.scroll_visible, top=False)

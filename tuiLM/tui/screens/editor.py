"""The preset editor: schema form, live validation, live estimate, save / save as, launch."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.message import Message
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import Footer, Input, Label, OptionList, Static

from ...config.load import Preset, PresetError, Problem, locate_keys, parse_toml_text, resolve
from ...config.schema import BY_PATH, FIELDS
from .. import services
from ..widgets.estimate import EstimatePanel
from ..widgets.form import FieldInput, FieldRow, PresetForm, update_static, value_text
from ..widgets.problems import ProblemList
from .dialogs import ConfirmScreen, SaveAsScreen
from .editorstudy import AddToStudy
from .editorstate import (budget_problems, cannot_start_message, collect_problems,
                          first_problems, parse_budget, read_budget, read_field, read_overrides,
                          save_as_path, saved_message, section_badges, summary_text, title_text,
                          estimate_blocked, name_after, unreadable_in_file, write_preset)

ESTIMATE_DEBOUNCE_S = 0.15


class EstimateReady(Message):
    """Posted by the estimate worker (workers never touch widgets)."""

    def __init__(self, serial: int, est: services.EstimateView | None, error: str = "",
                 machine: list[Problem] | None = None) -> None:
        super().__init__()
        self.serial, self.est, self.error = serial, est, error
        self.machine = machine or []


class Launched(Message):
    def __init__(self, run_dir: Path | None, proc: Any = None, error: str = "") -> None:
        super().__init__()
        self.run_dir, self.proc, self.error = run_dir, proc, error


class PresetEditor(AddToStudy, Screen):
    """Edit one preset file (or a new one), with problems beside each field."""

    BINDINGS = [
        Binding("ctrl+s", "save", "Save", priority=True),
        Binding("f2", "save_as", "Save as"),
        Binding("ctrl+r", "launch", "Run", priority=True),
        # a bare letter is easy to press by accident when focus is not in a text field: it asks first
        Binding("r", "confirm_launch", "Run", show=False),
        Binding("f8", "next_problem", "Next problem"),
        Binding("f6", "add_to_study", "Add to study"),
        Binding("f4", "toggle_side", "Estimate", show=False),  # (narrow: the summary line offers it)
        Binding("escape", "back", "Back"),
    ]

    def __init__(self, path: Path | None, overrides: tuple[str, ...] | list[str] = (), *,
                 run_name: str | None = None) -> None:
        super().__init__()
        self.path = Path(path) if path else None
        self.run_name = run_name
        self.original_text = ""
        self.load_problems: list[Problem] = []
        self.base: Preset
        self.values: dict[str, Any] = {}  # path -> typed value (last valid)
        self.type_errors: dict[str, str] = {}  # path -> message for unparsable input
        self.problems: list[Problem] = []
        self.machine_problems: list[Problem] = []  # the estimate against this machine (from the worker)
        self.estimate: services.EstimateView | None = None
        self.estimate_error = ""
        self.estimates_done = 0  # tests wait on this
        self._serial = 0
        self._debounce: Timer | None = None
        self.raw_text: dict[str, str] = {}  # path -> text that could not be read (shown as typed)
        self._shown: dict[str, Any] = {}  # widget id -> last content set (skip no-op updates)
        self.study_file: Path | None = None  # the study file F6 adds fields to (asked the first time)
        self.file_bad: dict[str, str] = {}  # path -> the file's value of the wrong type (the default stands in)
        self.fixed: set[str] = set()  # of those, the fields given a readable value since (saved as changes)
        self._load(overrides)

    # -- loading -------------------------------------------------------------------------------------

    def _load(self, overrides: tuple[str, ...] | list[str]) -> None:
        text = self.path.read_text(encoding="utf-8") if self.path else ""
        raw = parse_toml_text(text, str(self.path or "<new preset>"))
        self.original_text = text
        base, problems = resolve(raw, (), source=self.path, lines=locate_keys(text))
        self.base = base
        self.load_problems = problems
        self.values = {f.path: base.get(f.path) for f in FIELDS}
        self.file_bad = unreadable_in_file(raw, problems)
        values, self.type_errors, self.raw_text = read_overrides(overrides)  # --set values: unsaved edits
        self.fixed = {p for p in values if p in self.file_bad}  # --set gave a readable value for it
        self.raw_text = {**{p: t for p, t in self.file_bad.items() if p not in values}, **self.raw_text}
        self.values.update(values)

    def compose(self) -> ComposeResult:
        yield Static(id="editor-title", classes="title-bar")
        with Horizontal(id="editor-body"):
            yield PresetForm(self._raw_for, lambda: str(self.values["model.arch"]), id="form")
            with VerticalScroll(id="editor-side"):
                yield Label("Estimate", classes="side-title")
                yield EstimatePanel(id="estimate")
                with Horizontal(id="budget-line"):
                    yield Label("budget GiB", id="budget-label")
                    yield FieldInput(self._budget_text(), placeholder="e.g. 24", id="budget", compact=True)
                yield Label("Problems", classes="side-title")
                yield ProblemList(id="problems")
        yield Static(id="editor-summary")
        yield Footer()

    def action_toggle_side(self) -> None:
        """At 80 columns: the estimate, budget and problems in the form's place, and back (f4 or esc) to
        the field that had the focus (hidden, it lost it: typed digits then switched views)."""
        body, focused = self.query_one("#editor-body"), self.focused
        self._form_focus = focused if not body.has_class("-side") else getattr(self, "_form_focus", None)
        body.toggle_class("-side")
        form = self.query_one(PresetForm)  # (F8 or a problem picked there meanwhile focused its field: it stays)
        back = None if body.has_class("-side") or (focused is not None and form in focused.ancestors) else \
            self._form_focus
        self.call_after_refresh(lambda: back is not None and back.is_attached and back.focus())
        self._update_summary()

    def _raw_for(self, path: str) -> Any:
        """What a (re)mounted row shows: unreadable text as typed, else the value."""
        return self.raw_text.get(path, self.values[path])

    def _budget_text(self) -> str:
        b = self.values.get("system.vram_budget_gib") or 0.0
        return f"{b:g}" if b else ""

    def on_mount(self) -> None:
        self.revalidate()
        self._schedule_estimate(now=True)

    # -- the current preset --------------------------------------------------------------------------

    def current(self) -> Preset:
        return self.base.with_values(self.changes())

    def changes(self) -> dict[str, Any]:
        """Typed values that differ from what the file resolves to (what save writes)."""
        return {p: v for p, v in self.values.items() if v != self.base.get(p) or p in self.fixed}

    def has_unsaved(self) -> bool:
        return bool(self.changes()) or bool(self.type_errors)

    # -- editing -------------------------------------------------------------------------------------

    @on(FieldRow.Edited)
    def _field_edited(self, event: FieldRow.Edited) -> None:
        row = event.row
        f = row.field
        raw = row.raw()
        try:
            value = read_field(f, raw)
        except ValueError as e:
            self.type_errors[f.path] = str(e)
            if isinstance(raw, str):
                self.raw_text[f.path] = raw
        else:
            self.type_errors.pop(f.path, None)
            self.raw_text.pop(f.path, None)
            if f.path in self.file_bad:  # the file's unreadable value is replaced: its problem goes
                self.fixed.add(f.path)
            self.values[f.path] = value
            if f.path == "model.arch":
                self.query_one(PresetForm).apply_arch(str(value))
            box = self.query_one("#budget", Input)
            if f.path == "system.vram_budget_gib" and parse_budget(box.value) != value:  # (not while typed there)
                box.value = self._budget_text()
        self.revalidate()
        self._schedule_estimate()

    def revalidate(self) -> None:
        """Validate the current values; put each problem beside its field and in the list."""
        budget = [] if self.estimate is None else budget_problems(self.estimate, self.budget_gib())
        problems = collect_problems(self.current(), self.base.lines, self.type_errors,
                                    [p for p in self.load_problems if p.path not in self.fixed], budget,
                                    self.machine_problems)
        self.problems = problems
        self._apply_rows()
        self.query_one("#problems", ProblemList).show(problems)
        self._update_title()

    def _apply_rows(self) -> None:
        """Problems and markers on the mounted rows; counts on the section headers."""
        form = self.query_one(PresetForm)
        first = first_problems(self.problems)
        changed = set(self.changes()) | set(self.type_errors)
        for row in form.rows():
            if not row.is_mounted:
                continue
            path = row.field.path
            p = first.get(path)
            row.show(p.level if p else None, p.message if p else "", path in changed, path in self.base.lines)
        form.set_badges(section_badges(first, changed))

    @on(PresetForm.SectionOpened)
    def _section_opened(self) -> None:
        self.call_after_refresh(self._apply_rows)

    def budget_gib(self) -> float:
        text = self.query_one("#budget", Input).value if self.is_mounted else ""
        return read_budget(text, self.values.get("system.vram_budget_gib"))

    @on(Input.Changed, "#budget")
    def _budget_changed(self, event: Input.Changed) -> None:
        value = parse_budget(event.value)  # the box is the preset's system.vram_budget_gib: saved with it
        if value is not None and value != self.values.get("system.vram_budget_gib"):  # (its warning names it)
            self._set_field("system.vram_budget_gib", value)
        self._show_estimate()
        self.revalidate()

    def _set_field(self, path: str, value: Any) -> None:
        """A value set from outside its row (save-as's run name, the budget box): its row shows it."""
        self.values[path] = value
        self.type_errors.pop(path, None), self.raw_text.pop(path, None)
        row = self.query_one(PresetForm).row(path)
        if row is not None and row.is_mounted:
            row.query_one(Input).value = value_text(row.field, value)  # (as typed: 12.3456789, not 12.3457)

    def _update_title(self) -> None:
        self._set("#editor-title", title_text(self.path, self.values.get("model.arch"), self.has_unsaved(),
                                              self.problems))
        self._update_summary()

    def _set(self, selector: str, content: Text) -> None:
        """Update a Static only when its content changes (each update costs a layout pass)."""
        key = content.markup if isinstance(content, Text) else content
        if self._shown.get(selector) != key:
            self._shown[selector] = key
            update_static(self.query_one(selector, Static), content)

    def _update_summary(self) -> None:
        """One line for narrow terminals where the side panel is hidden."""
        budget = self.budget_gib() if self.estimate is not None else 0.0
        self._set("#editor-summary", summary_text(self.estimate, budget, self.estimate_error,
                                                  self.query_one("#editor-body").has_class("-side"),
                                                  width=self.app.size.width - 2))  # (its padding)

    def on_resize(self) -> None:
        self._update_summary()

    # -- estimate (debounced, in a thread) ----------------------------------------------------------

    def _schedule_estimate(self, now: bool = False) -> None:
        if self._debounce is not None:
            self._debounce.stop()
        self._serial += 1
        serial = self._serial
        if now:
            self._debounce = None
            self._run_estimate(self.current(), serial)
            return
        self._debounce = self.set_timer(ESTIMATE_DEBOUNCE_S, lambda: self._run_estimate(self.current(), serial))

    @work(thread=True, exclusive=True, group="estimate")
    def _run_estimate(self, preset: Preset, serial: int) -> None:
        if estimate_blocked(preset):
            self.post_message(EstimateReady(serial, None, "fix the errors to see the estimate"))
            return
        try:
            est = services.estimate(preset)
        except RuntimeError as e:
            self.post_message(EstimateReady(serial, None, f"estimate failed: {e}"))
            return
        self.post_message(EstimateReady(serial, est, machine=services.machine_warnings(preset)))

    @on(EstimateReady)
    def _estimate_ready(self, msg: EstimateReady) -> None:
        if msg.serial != self._serial:
            return  # superseded by a newer edit
        self.estimate, self.estimate_error = msg.est, msg.error
        self.machine_problems = msg.machine
        self.estimates_done += 1
        self._show_estimate()
        self.revalidate()

    def _show_estimate(self, pending: bool = False) -> None:
        panel = self.query_one("#estimate", EstimatePanel)
        if self.estimate is None:
            panel.show(None, self.budget_gib(), error=self.estimate_error)
        else:
            panel.show(self.estimate, self.budget_gib(), pending=pending or bool(self.estimate_error))
        self._update_summary()

    # -- problems ------------------------------------------------------------------------------------

    @on(OptionList.OptionSelected, "#problems")
    def _problem_selected(self, event: OptionList.OptionSelected) -> None:
        idx = int(event.option.id[1:]) if event.option.id and event.option.id.startswith("p") else -1
        if 0 <= idx < len(self.problems) and self.problems[idx].path in BY_PATH:
            self.call_later(self.query_one(PresetForm).reveal, self.problems[idx].path)

    def action_next_problem(self) -> None:
        paths = [p.path for p in self.problems if p.path in BY_PATH]
        if not paths:
            self.notify("No problems", timeout=2)
            return
        current = self.current_field()
        nxt = paths[(paths.index(current) + 1) % len(paths)] if current in paths else paths[0]
        self.call_later(self.query_one(PresetForm).reveal, nxt)

    def current_field(self) -> str | None:
        focused = self.focused
        for row in self.query_one(PresetForm).rows():
            if focused is not None and row in focused.ancestors_with_self:
                return row.field.path
        return None

    # -- saving --------------------------------------------------------------------------------------

    def _blocked(self) -> bool:
        if self.type_errors:
            paths = ", ".join(self.type_errors)
            self.notify(f"Cannot save: {paths} cannot be read (fix the value first)", severity="error", markup=False)
            self.call_later(self.query_one(PresetForm).reveal, next(iter(self.type_errors)))
            return True
        return False

    def action_save(self) -> None:
        if self.path is None:
            self.action_save_as()
            return
        if self._blocked():
            return
        self._write(self.path)

    def action_save_as(self) -> None:
        if self._blocked():
            return
        default = save_as_path(self.path, getattr(self.app, "preset_dirs", None), self.values["run.name"])

        def done(result: Path | None) -> None:
            if result is None:
                return
            before = self.values["run.name"]
            if name_after(result, before, self.path):
                self.values["run.name"] = result.stem
            if not self._write(result):
                self.values["run.name"] = before  # (not written: no edit the user did not make)
                return
            self._set_field("run.name", self.values["run.name"])

        self.app.push_screen(SaveAsScreen(default), done)

    def _write(self, path: Path) -> bool:
        changes = self.changes()
        try:
            text, raw = write_preset(path, self.original_text, changes)
        except OSError as e:
            self.notify(f"Cannot write {path}: {e.strerror or e}", severity="error", markup=False)
            return False
        except PresetError as e:  # cannot happen with tomlkit output, but never lose the user's work
            self.notify(str(e), severity="error", markup=False)
            return False
        self.path = path
        self.original_text = text
        self.base, self.load_problems = resolve(raw, (), source=path, lines=locate_keys(text))
        self.file_bad, self.fixed = unreadable_in_file(raw, self.load_problems), set()
        n = len(changes)
        errors = sum(p.is_error for p in self.problems)
        self.notify(saved_message(path, n, errors), severity="warning" if errors else "information", timeout=3,
                    markup=False)
        self.revalidate()
        refresh = getattr(self.app, "presets_changed", None)
        if refresh:
            refresh()
        return True

    # -- launching -----------------------------------------------------------------------------------

    def action_launch(self) -> None:
        errors = [p for p in self.problems if p.is_error]
        if errors:
            self.notify(cannot_start_message(errors), severity="error", markup=False)
            return
        self.notify("Starting the trainer…", timeout=2)
        self._launch(self.current())

    def action_confirm_launch(self) -> None:
        errors = [p for p in self.problems if p.is_error]
        if errors:
            self.action_launch()  # says why it cannot start; nothing to confirm
            return

        def done(ok: bool | None) -> None:
            if ok:
                self.action_launch()

        name = self.run_name or self.current().run.name
        self.app.push_screen(ConfirmScreen(f"Start a training run of {name!r} now?", yes="Run", no="Cancel"),
                             done)

    @work(thread=True, exclusive=True, group="launch")
    def _launch(self, preset: Preset) -> None:
        try:
            run_dir, proc = services.launch_run(preset, name=self.run_name, root=self.app.runs_root_dir())
        except Exception as e:  # a user error (bad name, no space) or a launcher bug: show it, stay up
            self.post_message(Launched(None, error=str(e)))
            return
        self.post_message(Launched(run_dir, proc))

    @on(Launched)
    def _launched(self, msg: Launched) -> None:
        if msg.run_dir is None:
            self.notify(f"Could not start: {msg.error}", severity="error", timeout=8, markup=False)
            return
        self.app.open_runs([msg.run_dir], proc=msg.proc)

    # -- leaving -------------------------------------------------------------------------------------

    def action_back(self) -> None:
        if self.query_one("#editor-body").has_class("-side"):  # esc from the estimate (f4): the form
            return self.action_toggle_side()
        if not self.has_unsaved():
            self.dismiss()
            return

        def done(ok: bool | None) -> None:
            if ok:
                self.dismiss()

        self.app.push_screen(ConfirmScreen("Discard unsaved changes to this preset?", yes="Discard"), done)

    def palette_commands(self) -> list[tuple[str, str, Any]]:
        return [("Estimate", "Memory breakdown, budget and problems (f4; beside the form from 110 columns)",
                 self.action_toggle_side),
                ("Save preset", "Write changed keys, keeping comments (ctrl+s)", self.action_save),
                ("Save preset as…", "Write to a new file (F2)", self.action_save_as),
                ("Run this preset", "Start a trainer with the current values (ctrl+r)", self.action_launch),
                ("Next problem", "Jump to the next field with a problem (F8)", self.action_next_problem)]

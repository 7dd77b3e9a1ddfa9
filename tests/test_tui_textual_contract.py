"""What the app relies on in Textual beyond its documented API, checked so an upgrade fails here, by
name, instead of silently making typing slow or the form stale.

``FieldInput`` (tuiLM/tui/widgets/form.py) overrides Input's private ``_watch_value`` to set the
virtual size without a screen layout per keystroke. Textual has no public hook that runs before
Input's own watcher (a public ``watch_value`` runs after it, when the layout is already asked for),
so the override stays and these tests guard it. ``update_static`` relies on ``Static.update(...,
layout=False)`` and ``Static.visual`` (Textual >= 5.0), the form on ``Select.NULL`` (>= 8.0, the lower
bound in pyproject.toml).
"""

from __future__ import annotations

import asyncio
import inspect
import re
import tomllib
from importlib.metadata import version

from packaging.specifiers import SpecifierSet
from textual.app import App, ComposeResult
from textual.geometry import Size
from textual.widgets import Input, Select, Static

from tuiLM.tui.widgets.form import FieldInput

from .conftest import ROOT


def test_installed_textual_is_inside_the_pinned_range():
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    spec = next(d for d in deps if re.match(r"textual\b", d))
    specifiers = SpecifierSet(spec[len("textual"):])
    assert any(s.operator == "<" for s in specifiers), f"{spec}: no upper bound below the next major"
    assert version("textual") in specifiers, f"textual {version('textual')} is outside {spec}"


def test_textual_private_hooks_the_form_overrides_still_exist():
    watcher = getattr(Input, "_watch_value", None)
    assert watcher is not None, "Input._watch_value is gone: FieldInput's override is never called"
    assert list(inspect.signature(watcher).parameters) == ["self", "value"], (
        f"Input._watch_value changed its signature: {inspect.signature(watcher)}")
    assert FieldInput._watch_value is not Input._watch_value
    assert "layout" in inspect.signature(Static.update).parameters
    assert isinstance(inspect.getattr_static(Static, "visual"), property)
    assert hasattr(Select, "NULL")


class _FormApp(App):
    def compose(self) -> ComposeResult:
        yield FieldInput("12", id="field")


def test_typing_into_a_field_input_runs_the_override_and_asks_for_no_layout(monkeypatch):
    calls: list[str] = []
    layouts: list[bool] = []
    override = FieldInput._watch_value

    def spy(self, value):
        calls.append(value)
        override(self, value)

    real_refresh = FieldInput.refresh

    def refresh(self, *args, **kwargs):
        layouts.append(bool(kwargs.get("layout", False)))
        return real_refresh(self, *args, **kwargs)

    monkeypatch.setattr(FieldInput, "_watch_value", spy)
    monkeypatch.setattr(FieldInput, "refresh", refresh)

    async def run() -> tuple[str, Size, Size]:
        app = _FormApp()
        async with app.run_test(size=(40, 5)) as pilot:
            inp = app.query_one(FieldInput)
            inp.focus()
            await pilot.pause()
            layouts.clear()
            await pilot.press("end", "3", "4")
            await pilot.pause()
            return inp.value, inp.virtual_size, Size(inp.content_width, 1)

    value, virtual, expected = asyncio.run(run())
    assert value == "1234"
    assert calls[-2:] == ["123", "1234"], f"FieldInput._watch_value was not called per keystroke: {calls}"
    assert virtual == expected
    assert layouts and not any(layouts), "typing into a FieldInput asked Textual for a layout"

"""Adding a preset field to a study file from the editor (F6): default distributions, the file kept
valid with its comments, and the editor key end to end."""

from __future__ import annotations

import shutil
import time

import pytest

from tuiLM.config.schema import BY_PATH
from tuiLM.errors import UserError
from tuiLM.study.addfield import add_dimension, default_distribution
from tuiLM.study.spec import load_study, parse

from .conftest import ROOT
from .test_tui_app import aio


def test_default_distributions():
    assert default_distribution(BY_PATH["optim.lr"], 3e-3) == {"log": [3e-4, 3e-2]}  # a decade each side
    assert default_distribution(BY_PATH["optim.weight_decay"], 0.1) == {"range": [0.05, 0.2]}
    assert default_distribution(BY_PATH["model.n_layers"], 4) == {"int": [2, 8]}
    assert default_distribution(BY_PATH["model.arch"], "gpt") == {"choice": list(BY_PATH["model.arch"].choices)}
    assert default_distribution(BY_PATH["model.dropout"], 0.0) == {"range": [0.0, 1.0]}  # clamped to [0, 1]
    with pytest.raises(UserError, match="run.seed cannot be searched"):
        default_distribution(BY_PATH["run.seed"], 0)


def test_add_dimension_creates_then_extends_a_study_file_keeping_comments(tmp_path):
    preset = tmp_path / "exp.toml"
    shutil.copy(ROOT / "presets" / "quickstart.toml", preset)
    study = tmp_path / "exp-study.toml"
    dist, created = add_dimension(study, preset, "optim.lr", 3e-3)
    assert created and dist == {"log": [3e-4, 3e-2]}
    spec, base, problems = load_study(study)
    assert not [p for p in problems if p.is_error], problems
    assert base is not None and [(d.key, d.kind, d.values) for d in spec.space] == [("optim.lr", "log", (3e-4, 3e-2))]
    study.write_text(study.read_text().replace("[space]", "# my comment\n[space]"))
    _, created = add_dimension(study, preset, "model.n_layers", 4)
    assert not created
    text = study.read_text()
    assert "# my comment" in text
    spec, _ = parse(text, study)
    assert [d.key for d in spec.space] == ["optim.lr", "model.n_layers"]
    with pytest.raises(UserError, match="already a dimension"):
        add_dimension(study, preset, "optim.lr", 1e-3)


@aio
async def test_editor_key_adds_the_focused_field_to_a_study(tmp_path):
    from tuiLM.tui.app import make_app
    from tuiLM.tui.screens.dialogs import AskScreen

    preset = tmp_path / "exp.toml"
    shutil.copy(ROOT / "presets" / "quickstart.toml", preset)
    study = tmp_path / "exp-study.toml"
    app = make_app(preset_path=preset, runs_root=tmp_path / "runs")
    async with app.run_test(size=(120, 40)) as pilot:
        editor = app.screen
        for key in ("optim.lr", "model.n_layers"):
            await editor.query_one("#form").reveal(key)
            await pilot.pause(0.1)
            editor.query_one("#f-" + key.replace(".", "--")).focus()
            await pilot.pause(0.05)
            assert editor.current_field() == key
            await pilot.press("f6")
            t0 = time.monotonic()
            while not isinstance(app.screen, AskScreen):
                assert time.monotonic() - t0 < 30
                await pilot.pause(0.05)
            field = app.screen.query_one("#ask-input")
            assert field.value == str(study)  # the default: beside the preset, then the file used last
            await pilot.press("enter")
            await pilot.pause(0.2)
        spec, base, problems = load_study(study)
        assert not [p for p in problems if p.is_error]
        assert {d.key: d.kind for d in spec.space} == {"optim.lr": "log", "model.n_layers": "int"}
        assert base is not None and base.optim.lr == pytest.approx(editor.values["optim.lr"])

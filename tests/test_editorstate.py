"""The preset editor's pieces that need no app: --set overrides as edits, the budget field, the
problems beside each field and the section badges, where save-as and F6 offer to write."""

from __future__ import annotations

from pathlib import Path

from tuiLM.config.load import Problem
from tuiLM.units import fmt_bytes
from tuiLM.tui.screens.editorstate import (default_study_path, first_problems, read_budget, read_overrides,
                                           save_as_path, section_badges)


def test_overrides_become_typed_values_or_kept_text():
    values, errors, raw = read_overrides(["model.d_model=384", "optim.lr = x", "no.such=1"])
    assert values == {"model.d_model": 384}
    assert list(errors) == ["optim.lr"] and raw == {"optim.lr": " x"}


def test_budget_typed_beside_the_estimate_wins_over_the_preset():
    assert read_budget(" 24 ", 8.0) == 24.0
    assert read_budget("", 8.0) == read_budget("oops", 8.0) == read_budget("-1", 8.0) == 8.0
    assert read_budget("", None) == 0.0


def test_a_field_shows_its_first_error_and_sections_count_it():
    problems = [Problem("warning", "model.d_model", "w"), Problem("error", "model.d_model", "e1"),
                Problem("error", "model.d_model", "e2"), Problem("warning", "", "whole file")]
    first = first_problems(problems)
    assert list(first) == ["model.d_model"] and first["model.d_model"].message == "e1"
    badges = section_badges(first, {"model.n_layers", "optim.lr"})
    assert badges["model"] == "  ✗ 1  ● 1 changed" and badges["optim"] == "  ● 1 changed"
    assert badges["data"] == ""


def test_where_save_as_and_add_to_study_offer_to_write(tmp_path):
    preset = tmp_path / "golf.toml"
    assert save_as_path(preset, None, "x") == tmp_path / "golf-copy.toml"
    assert save_as_path(None, lambda: [tmp_path], "mine") == tmp_path / "mine.toml"
    assert save_as_path(None, None, "mine") == Path("presets/mine.toml")
    assert default_study_path(preset, None) == tmp_path / "golf-study.toml"
    (tmp_path / "studies").mkdir()
    assert default_study_path(preset, None) == tmp_path / "studies" / "golf-study.toml"
    assert default_study_path(preset, tmp_path / "s.toml") == tmp_path / "s.toml"


def test_a_preset_sized_for_a_gpu_says_what_it_takes_on_this_machines_cpu(monkeypatch):
    """device = auto is estimated for the GPU it is sized for: on a machine without CUDA the editor showed
    "cuda bf16, peak 32.07 GiB" beside a warning that "26.6 GiB exceeds this machine's host RAM": two
    peaks, no word of the CPU. The panel and the one-line summary now give the CPU's figure too."""
    from tuiLM import machine
    from tuiLM.config.load import load
    from tuiLM.tui import services
    from tuiLM.tui.widgets.estimate import estimate_renderable
    from tuiLM.tui.screens.editorstate import summary_text

    from .conftest import PRESETS

    preset, _ = load(PRESETS / "quickstart.toml")
    monkeypatch.setattr(machine, "resolve_device", lambda pref: "cpu")
    est = services.estimate(preset)
    assert est.device == "cuda" and est.here is not None and est.here[0] == "fp32"
    assert 0 < est.here[1] < est.total_bytes
    line = summary_text(est, 0.0, "", width=78).plain  # (80 columns less the line's padding)
    assert f"peak {fmt_bytes(est.total_bytes)} cuda ({fmt_bytes(est.here[1])} on this CPU)" in line
    assert len(line) <= 78 and line.endswith("f4: details") and "artifact" not in line
    assert "artifact ≤" in summary_text(est, 0.0, "").plain  # (room: everything)
    tight = summary_text(est, 24.0, "", width=60).plain  # the CPU's figure gives way; f4 stays
    assert "on this CPU" not in tight and tight.endswith("f4: details") and "/ 24 GiB" in tight, tight
    from rich.console import Console

    con = Console(width=60, record=True)
    con.print(estimate_renderable(est, 0.0))
    assert f"no CUDA here: a run here trains on the CPU (fp32), peak {fmt_bytes(est.here[1])}" in \
        " ".join(con.export_text().split())
    monkeypatch.setattr(machine, "resolve_device", lambda pref: "cuda")  # a machine with the GPU: nothing said
    assert services.estimate(preset).here is None


def test_a_copy_saved_as_another_file_names_its_runs_after_it(tmp_path):
    """Save-as of quickstart.toml (run.name = "quickstart") as qs192.toml kept run.name: its runs were
    named quickstart-…, as the original's. A run.name that is the default or the source file's name
    follows the new file; one the user chose stays."""
    from tuiLM.tui.screens.editorstate import name_after

    assert name_after(tmp_path / "qs192.toml", "quickstart", tmp_path / "quickstart.toml")
    assert name_after(tmp_path / "qs192.toml", "run", None)
    assert not name_after(tmp_path / "qs192.toml", "my-exp", tmp_path / "quickstart.toml")
    assert not name_after(tmp_path / "bad name!.toml", "quickstart", tmp_path / "quickstart.toml")

"""User text in CLI output is printed literally: square brackets in file names, --set values, preset
values, run ids, budgets, storage URLs and study hints are never read as Rich markup (no MarkupError
traceback, nothing silently dropped)."""

from __future__ import annotations

import pytest

from tuiLM.config.write import atomic_write_text, dumps_resolved
from tuiLM.events import EventWriter
from tuiLM.runs import EVENTS, PRESET

from .conftest import PRESETS, TINY_GPT, make_preset

QUICK = str(PRESETS / "quickstart.toml")


@pytest.fixture
def tuilm(tuilm, tmp_path, monkeypatch):
    """conftest's ``tuilm`` run in tmp_path with its own runs/, asserting no traceback each time."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TUILM_RUNS_DIR", str(tmp_path / "runs"))

    def invoke(*args: str) -> tuple[int, str, str]:
        code, out, err = tuilm(*args)
        assert "Traceback" not in err and "MarkupError" not in err, err
        return code, out, err
    return invoke


@pytest.mark.parametrize("name", ["[/]x.toml", "[x].toml", "[bold]x.toml"])
def test_preset_file_name(tuilm, name):
    code, _, err = tuilm("validate", name)
    assert code == 1 and f"error: {name}: no such preset file" in err


@pytest.mark.parametrize("value", ["[/b]", "[x]", "[bold]"])
def test_set_value(tuilm, value):
    code, _, err = tuilm("validate", QUICK, "--set", f"model.activation={value}")
    assert code == 1 and f"(got '{value}')" in err


def test_preset_file_values(tuilm, tmp_path):
    (tmp_path / "p.toml").write_text('[model]\nactivation = "[/red]"\n')
    code, _, err = tuilm("validate", "p.toml")
    assert code == 1 and "(got '[/red]')" in err
    (tmp_path / "q.toml").write_text("model = 5\n")
    code, _, err = tuilm("validate", "q.toml")
    assert code == 1 and "model: [model] must be a table" in err


@pytest.mark.parametrize("ref", ["[/]", "[x]", "[bold]"])
def test_runs_show_ref(tuilm, ref):
    code, _, err = tuilm("runs", "show", ref)
    assert code == 1 and f"'{ref}'" in err


def test_runs_show_and_list_print_run_values_literally(tuilm, tmp_path):
    run_dir = tmp_path / "runs" / "r-1"
    run_dir.mkdir(parents=True)
    atomic_write_text(run_dir / PRESET, dumps_resolved(make_preset({**TINY_GPT, "run.notes": "[bold]n[/]"})))
    with EventWriter(run_dir / EVENTS) as w:
        w.write("run_start", run_id="r-1", versions={}, device="[x]", arch="[/]", params=100, world_size=1,
                max_steps=2, tokens_per_step=64, corpus={}, pid=1, step=0)
        w.write("run_end", status="failed", step=2, reason="[/] broke", tokens=128, elapsed_s=1.0)
    code, out, _ = tuilm("runs", "show", "r-1")
    assert code == 0 and "[/] broke" in out and "[x]" in out and "'[bold]n[/]'" in out
    code, out, _ = tuilm("runs", "list")
    assert code == 0 and "[/]" in out


@pytest.mark.parametrize("budget", ["[/]", "[x]", "[bold]"])
def test_vram_budget(tuilm, budget):
    code, _, err = tuilm("vram", "quickstart", "--budget", budget)
    assert code == 2 and f"'{budget}'" in err


def test_study_storage_path(tuilm, tmp_path, monkeypatch):
    from tuiLM.study.engine import Counts, StudyEngine

    monkeypatch.setattr(StudyEngine, "run", lambda self, progress=None: Counts())  # no trainers
    (tmp_path / "ok.toml").write_text('[study]\nname = "s"\nbase = "quickstart"\ntrials = 1\n\n'
                                      '[space]\n"optim.lr" = { log = [1e-4, 1e-2] }\n')
    storage = f"journal:{tmp_path}/j[/old]/[bold]x.log"
    code, out, _ = tuilm("study", "run", "ok.toml", "--storage", storage)
    assert code == 0 and f"storage {storage}" in out  # the header
    assert f"--storage {storage}" in out.replace("\n", "")  # the closing "details:" line (wrapped at 80)


def test_study_file_hints(tuilm, tmp_path):
    (tmp_path / "bad.toml").write_text('[study]\nbase = "quickstart"\n\n[space]\n"optim.lr" = [1, 2]\n')
    code, _, err = tuilm("study", "validate", "bad.toml")
    assert code == 1 and "{ log = [lo, hi] }" in err and "{ choice = [a, b, ...] }" in err


def test_os_error_shows_a_styled_prefix_and_a_literal_message(tuilm, tmp_path):
    out = tmp_path / "[bold]no" / "[/]s.json"
    code, _, err = tuilm("preset", "schema", "--out", str(out))
    assert code == 1 and err.startswith("error: ") and "[bold red]" not in err and str(out) in err


def test_vram_over_budget_reason_names_the_preset_literally(tuilm, tmp_path):
    (tmp_path / "[x]p.toml").write_text((PRESETS / "quickstart.toml").read_text())
    code, _, err = tuilm("vram", "[x]p.toml", "--budget", "1MiB")
    assert code == 1 and "does not fit: [x]p.toml needs" in err


def test_headless_summary_prints_the_run_directory_literally(tmp_path):
    import io

    from rich.console import Console

    from tuiLM.headless import _final, watch_state

    out = Console(file=io.StringIO(), width=200, force_terminal=False)
    state = {**watch_state(), "max_steps": 2, "step": 2,
             "end": {"status": "completed", "step": 2, "tokens": 128, "elapsed_s": 1.0}}
    assert _final(tmp_path / "[/]r-[x]1", state, 0, out) == 0
    assert f"run directory: {tmp_path / '[/]r-[x]1'}" in out.file.getvalue()

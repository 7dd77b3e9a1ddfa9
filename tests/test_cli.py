"""CLI rough edges: --budget units, vram exit codes, "did you mean" for presets, the headless summary
and progress when stdout is not a terminal."""

from __future__ import annotations

import io
import json
import math
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from queue import Empty, Queue

import pytest
from rich.console import Console
from tuiLM.cli import main
from tuiLM.errors import UserError
from tuiLM.units import parse_size

from .conftest import PRESETS, ROOT, TINY_GPT

QUICK = str(PRESETS / "quickstart.toml")




# -- sizes and the vram budget -------------------------------------------------------------------

@pytest.mark.parametrize("text,bare,expected", [
    ("14", "GiB", 14 * 2**30), ("14", "B", 14), ("0.5", "GiB", 2**29), ("14GiB", "GiB", 14 * 2**30),
    ("14G", "B", 14 * 2**30), ("14 g", "B", 14 * 2**30), ("16GB", "GiB", 16 * 10**9), ("500MiB", "GiB", 500 * 2**20),
    ("500M", "GiB", 500 * 2**20), ("500MB", "GiB", 500 * 10**6), ("64KiB", "GiB", 64 * 2**10), ("1T", "GiB", 2**40),
    ("2048B", "GiB", 2048),
])
def test_parse_size_units(text, bare, expected):
    assert parse_size(text, bare=bare) == expected


@pytest.mark.parametrize("text", ["", "GiB", "14 GiBs", "1x", "-3", "14PB", "1e400", "1e308TB"])
def test_parse_size_rejects_what_it_cannot_read(text):
    with pytest.raises(UserError) as e:
        parse_size(text, bare="GiB")
    assert e.value.exit_code == 2 and repr(text) in str(e.value)


def _vram_json(tuilm, *args: str) -> tuple[int, dict]:
    r = tuilm("vram", QUICK, "--json", *args)
    return r.exit_code, json.loads(r.stdout)


@pytest.mark.parametrize("budget,expected", [("14", 14 * 2**30), ("14GiB", 14 * 2**30), ("14G", 14 * 2**30),
                                             ("16GB", 16 * 10**9), ("500MiB", 500 * 2**20)])
def test_vram_budget_bare_number_is_gib_and_units_are_read(tuilm, budget, expected):
    code, obj = _vram_json(tuilm, "--budget", budget)
    assert obj["budget_bytes"] == expected
    assert code == (0 if obj["fits"] else 1) == obj["exit_code"]


def test_vram_exit_codes_fit_over_and_unusable(tuilm):
    total = _vram_json(tuilm)[1]["estimate"]["total_bytes"]
    above, below = f"{(total + 2**20) // 2**20}MiB", f"{(total - 2**20) // 2**20}MiB"
    assert tuilm("vram", QUICK).exit_code == 0  # no budget
    assert tuilm("vram", QUICK, "--budget", above).exit_code == 0
    over = tuilm("vram", QUICK, "--budget", below)
    # 1 = does not fit, with the reason (what it needs, the budget, by how much) on stderr
    assert over.exit_code == 1
    assert "does not fit" in over.stderr and "over the" in over.stderr and "budget by" in over.stderr
    code, obj = _vram_json(tuilm, "--budget", below)
    assert code == 1 and obj["fits"] is False and "budget by" in obj["reason"]
    assert _vram_json(tuilm, "--budget", above)[1]["reason"] is None
    # 2 = nothing could be estimated: bad budget, missing or invalid preset (never 1: that means "too big")
    for args in (["--budget", "14 parsecs"], ["--budget", "0"], ["--fit"]):
        r = tuilm("vram", QUICK, *args)
        assert r.exit_code == 2 and "error" in r.stderr, (args, r.output)
    assert tuilm("vram", "no-such-preset").exit_code == 2
    bad = tuilm("vram", QUICK, "--set", "model.d_model=-1")
    assert bad.exit_code == 2 and "model.d_model" in bad.stderr


def test_vram_fit_that_finds_nothing_says_why(tuilm):
    r = tuilm("vram", QUICK, "--budget", "1MiB", "--fit")
    assert r.exit_code == 1 and "--fit found nothing that fits" in r.stderr


# -- finding presets -----------------------------------------------------------------------------

def test_mistyped_preset_names_and_paths_get_a_did_you_mean(tuilm):
    by_name = tuilm("validate", "quikstart")
    assert by_name.exit_code == 1 and "did you mean quickstart?" in by_name.stderr
    # the list of presets is complete, not cut short
    shipped = sorted(p.stem for p in PRESETS.glob("*.toml"))
    assert all(name in by_name.stderr for name in shipped)
    by_path = tuilm("validate", str(PRESETS / "mhc-statc.toml"))
    assert f"did you mean {PRESETS / 'mhc-static.toml'}?" in by_path.stderr
    nothing_close = tuilm("validate", "zzzzzz")
    assert nothing_close.exit_code == 1 and "did you mean" not in nothing_close.stderr


def test_a_folder_is_not_a_preset(tuilm):
    r = tuilm("validate", str(PRESETS))
    assert r.exit_code == 1 and "not a preset file" in r.stderr


# -- the headless summary ------------------------------------------------------------------------

def _summary(tmp_path: Path, end: dict | None, **state) -> tuple[int, str]:
    from tuiLM.headless import _final

    out = Console(file=io.StringIO(), width=80, force_terminal=False)
    st = {"max_steps": 10, "step": 10, "start_step": 0, "loss": None, "val_bpb": None, "best_bpb": None,
          "best_loss": None, "tps": None, "end": end, "t0": time.monotonic(), "elapsed_before": 0.0, "mfu": None,
          "perf": [], **state}
    code = _final(tmp_path / "run-1", st, 0, out)
    return code, out.file.getvalue().replace(str(tmp_path), "TMP")


def test_summary_never_says_nan_when_no_eval_ran(tmp_path):
    end = {"status": "stopped", "step": 3, "tokens": 300, "best_val_bpb": math.nan, "best_val_loss": math.nan,
           "elapsed_s": 10.0}
    code, text = _summary(tmp_path, end, step=3)
    assert code == 0 and "nan" not in text.lower() and "no eval ran" in text
    # opaque token ids: an eval ran, bpb is unknown, the loss is what can be said
    code, text = _summary(tmp_path, {**end, "best_val_loss": 2.5})
    assert "best val_loss 2.5000" in text and "nan" not in text.lower()
    code, text = _summary(tmp_path, {**end, "best_val_bpb": 1.25, "best_val_loss": 2.5})
    assert "best val_bpb 1.2500" in text


def test_summary_shows_mean_tokens_per_s_and_total_time_over_every_attempt(tmp_path):
    # run_end covers every attempt of a resumed run: 6,000 tokens in 125 s of training
    end = {"status": "completed", "step": 10, "tokens": 6000, "best_val_bpb": 2.0, "elapsed_s": 125.0}
    code, text = _summary(tmp_path, end, elapsed_before=100.0)
    assert "mean 48 tok/s" in text and "time 2:05" in text
    assert text.rstrip().splitlines()[-1].startswith("next: tuilm open ")


# -- progress when stdout is not a terminal ------------------------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_piped_headless_run_prints_progress_lines_while_it_trains(tmp_path, sig):
    """Rich's live bar draws nothing into a pipe until the end: plain lines must arrive while the
    trainer is still training. The run is far too long to finish; Ctrl-C then stops it cleanly, and so
    does SIGTERM (kill, timeout, a scheduler: it killed the watcher and left the trainer running), and
    the exit status says it was stopped here (the shell's 128 + signal), not completed."""
    sets = [f"{k}={str(v).lower() if isinstance(v, bool) else v}" for k, v in
            {**TINY_GPT, "train.max_steps": 1_000_000, "eval.every": 0, "checkpoint.every": 0, "diag.every": 0,
             "train.log_every": 5}.items()]
    argv = [sys.executable, "-m", "tuiLM.cli", "run", QUICK, "--headless"]
    for s in sets:
        argv += ["--set", s]
    env = {**os.environ, "TUILM_RUNS_DIR": str(tmp_path / "runs"), "COLUMNS": "100"}
    proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    queue: Queue = Queue()
    threading.Thread(target=lambda: [queue.put(x) for x in iter(proc.stdout.readline, "")], daemon=True).start()
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and not (lines and lines[-1].startswith("training step ")):
            try:
                lines.append(queue.get(timeout=1.0))
            except Empty:
                pass
        progress = lines[-1] if lines else ""
        assert progress.startswith("training step ") and "/1,000,000 (0%)" in progress, "".join(lines)
        assert "elapsed" in progress and "tok/s" in progress and "loss" in progress
        assert "\x1b[" not in "".join(lines)  # plain text in a file: no terminal control codes
        proc.send_signal(sig)
        proc.wait(timeout=120)
        time.sleep(0.5)
        rest = ""
        while not queue.empty():
            rest += queue.get()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for pidfile in (tmp_path / "runs").glob("*/trainer.pid"):  # never leave a trainer behind
            try:
                pid = int(pidfile.read_text())
                if b"tuiLM.train" in Path(f"/proc/{pid}/cmdline").read_bytes():
                    os.kill(pid, signal.SIGKILL)
            except (OSError, ValueError):
                pass
    assert proc.returncode == 128 + sig, "".join(lines) + rest
    assert "stopped at step" in rest and "run directory:" in rest and "next: tuilm resume " in rest
    if sig == signal.SIGINT:
        assert "reason: Ctrl-C in the terminal watching it" in rest  # not 'stopped by SIGTERM', which nobody sent
    else:
        assert "stopping (SIGTERM)" in rest and "reason: SIGTERM to the process watching it" in rest
    from tuiLM.reader import summarize

    run = next((tmp_path / "runs").iterdir())
    assert summarize(run).state == "stopped"  # the trainer ended (checkpoint, run_end): none left running


def test_without_a_terminal_run_goes_headless_and_the_app_commands_say_why_they_cannot(tmp_path):
    """`tuilm run PRESET | cat` (a script, cron) drew the full-screen app into the pipe."""
    sets = [f"{k}={str(v).lower() if isinstance(v, bool) else v}" for k, v in
            {**TINY_GPT, "train.max_steps": 3, "schedule.warmup_steps": 0, "schedule.warmdown_steps": 0,
             "eval.every": 0, "checkpoint.every": 0, "diag.every": 0, "sample.every": 0}.items()]
    env = {**os.environ, "TUILM_RUNS_DIR": str(tmp_path / "runs"), "COLUMNS": "100"}
    argv = [sys.executable, "-m", "tuiLM.cli", "run", QUICK] + [x for s in sets for x in ("--set", s)]
    r = subprocess.run(argv, cwd=ROOT, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "no terminal for the app: running headless" in r.stderr and "completed at step 3/3" in r.stdout
    assert "\x1b[" not in r.stdout
    run = next((tmp_path / "runs").iterdir()).name
    for args, hint in ((["open", run], f"tuilm runs show {run}"), (["resume", run, "--app"], "--headless"), ([], "--help")):
        r = subprocess.run([sys.executable, "-m", "tuiLM.cli", *args], cwd=ROOT, env=env, stdin=subprocess.DEVNULL,
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 1 and "the app needs a terminal" in r.stderr and hint in r.stderr, (args, r.stderr)


def test_preset_list_refuses_a_folder_that_is_not_there_and_leaves_study_files_out(tmp_path, capsys):
    from tuiLM.config.presets import list_presets

    (tmp_path / "mine.toml").write_text("[model]\nd_model = 128\n")
    (tmp_path / "search.toml").write_text("# a study\n[study]\nname = 's'\n[space]\n")
    assert [p.name for p in list_presets([tmp_path]) if p.parent == tmp_path] == ["mine.toml"]
    for folder, why in ((tmp_path / "nope", "no such folder"), (tmp_path / "mine.toml", "not a folder")):
        with pytest.raises(SystemExit) as e:
            main(["preset", "list", str(folder)])
        assert e.value.code == 2 and why in capsys.readouterr().err


def test_preset_list_says_why_a_preset_is_invalid(tmp_path, capsys):
    """An invalid preset read "invalid" and nothing more; the app's list gives the first error."""
    (tmp_path / "broken.toml").write_text('[model]\nn_layers = "two"\n')
    with pytest.raises(SystemExit):
        main(["preset", "list", str(tmp_path)])
    out = " ".join(capsys.readouterr().out.split())
    assert "invalid" in out and "✗ 1 error: model.n_layers: expected an integer" in out.replace("│ ", ""), out


def test_runs_show_says_why_a_dead_run_is_dead(tmp_path):
    """A run whose trainer vanished without run_end showed no reason in the CLI (the app says it)."""
    from rich.console import Console

    from tuiLM.report import print_run

    from .fixtures.fixture_runs import write_run

    run = write_run(tmp_path / "runs", "gone", "gpt", end="running")  # no run_end, no trainer
    console = Console(record=True, width=200)
    print_run(run, console)
    out = console.export_text()
    assert "dead" in out and "gone without writing run_end" in out and "tuilm resume" in out, out


def test_runs_list_json_gives_every_run_and_group_for_scripts(tmp_path, capsys, monkeypatch):
    """`runs list` had no machine-readable form (study show has --json): a script had to scrape the table."""
    import json

    from tuiLM.groups import group_value
    from tuiLM.reader import summarize

    from .fixtures.fixture_runs import write_run

    root = tmp_path / "runs"
    monkeypatch.setenv("TUILM_RUNS_DIR", str(root))
    seeds = [write_run(root, f"s{i}", "gpt", seed=i, run_seed=10 + i) for i in range(3)]
    write_run(root, "frozen", "mhc-frozen", seed=4)
    with pytest.raises(SystemExit) as e:
        main(["runs", "list", "--json"])
    assert e.value.code == 0
    data = json.loads(capsys.readouterr().out)
    runs = {r["id"]: r for r in data["runs"]}
    assert set(runs) == {"s0", "s1", "s2", "frozen"} and runs["frozen"]["flag"] == "FROZEN"
    assert runs["s1"]["best_val_bpb"] == summarize(seeds[1]).best_val_bpb and runs["s1"]["seed"] == 11
    (group,) = data["groups"]
    want = group_value([summarize(p).best_val_bpb for p in seeds])
    assert group["runs"] == ["s0", "s1", "s2"] and group["states"] == {"completed": 3}
    assert group["best_val_bpb"] == {"mean": want.mean, "se": want.se, "k": 3}


def test_runs_show_says_what_it_could_not_read(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    run = tmp_path / "runs" / "broken-1"
    run.mkdir(parents=True)
    (run / "preset.toml").write_text("")
    (run / "events.jsonl").write_text('not json\n{"kind": 5}\n{"v":1,"kind":"log","time":1,"level":"info","message":"hi"}\n')
    with pytest.raises(SystemExit) as e:
        main(["runs", "show", str(run)])
    out = capsys.readouterr().out
    assert e.value.code == 0
    assert "hyperparameters not shown" in out and "preset.toml: empty" in out
    assert "unreadable lines" in out and "│ 2 " in out.replace("  ", " ")
    (run / "preset.toml").write_text("[model\n")
    with pytest.raises(SystemExit):
        main(["runs", "show", str(run)])
    assert "TOML syntax error" in capsys.readouterr().out


def test_an_ascii_terminal_gets_question_marks_not_a_traceback(tmp_path):
    """'·' and '…' on an ASCII (or Latin-1) stdout: a UnicodeEncodeError used to end `runs list`,
    `vram` and, worse, a headless watcher whose trainer then ran on unwatched."""
    env = {**os.environ, "PYTHONIOENCODING": "ascii", "TUILM_RUNS_DIR": str(tmp_path / "runs"), "COLUMNS": "100"}
    from .fixtures.fixture_runs import write_run

    write_run(tmp_path / "runs", "a-run-with-a-rather-long-name-for-the-column", "gpt", seed=1)
    for args in (["vram", QUICK], ["runs", "list"]):
        r = subprocess.run([sys.executable, "-m", "tuiLM.cli", *args], cwd=ROOT, env=env, capture_output=True,
                           text=True, encoding="ascii", errors="strict", timeout=120)
        assert r.returncode == 0 and "Traceback" not in r.stderr, (args, r.stderr)


def test_runs_list_names_the_folder_it_looked_in(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("TUILM_RUNS_DIR", str(tmp_path / "typo"))
    with pytest.raises(SystemExit) as e:
        main(["runs", "list"])
    assert e.value.code == 0 and f"no runs yet in {tmp_path / 'typo'}/" in capsys.readouterr().out.replace("\n", "")
    (tmp_path / "afile").write_text("")
    monkeypatch.setenv("TUILM_RUNS_DIR", str(tmp_path / "afile"))
    with pytest.raises(SystemExit) as e:
        main(["runs", "list"])
    assert e.value.code == 1 and "is a file, not a folder (TUILM_RUNS_DIR)" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:  # the studies list said "no studies in …/studies/"
        main(["study", "list"])
    assert e.value.code == 1 and "is a file, not a folder (TUILM_RUNS_DIR)" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:  # a device, not a folder: it asked "(a folder? …)"
        main(["validate", "/dev/null"])
    assert e.value.code == 1 and "/dev/null: not a preset file (not a regular file;" in capsys.readouterr().err


def test_runs_compare_lists_settings_not_labels_nor_settings_the_models_do_not_read(tmp_path, capsys, monkeypatch):
    from .fixtures.fixture_runs import write_run

    monkeypatch.setenv("COLUMNS", "200")
    a = write_run(tmp_path / "runs", "cmp-a", "gpt", seed=1)
    b = write_run(tmp_path / "runs", "cmp-b", "gpt", seed=1, lr=6e-3)
    text = (b / "preset.toml").read_text()
    assert "bdh_mult = 128" in text
    (b / "preset.toml").write_text(text.replace("bdh_mult = 128", "bdh_mult = 64")
                                   .replace('name = "gpt-small"', 'name = "gpt-renamed"'))
    with pytest.raises(SystemExit):
        main(["runs", "compare", str(a), str(b)])
    out = capsys.readouterr().out
    assert "optim.lr" in out and "model.bdh_mult" not in out and "run.name" not in out


def test_runs_compare_at_80_columns_cuts_run_ids_where_they_still_differ(tmp_path):
    """Three runs at 80 columns: Rich cut the heads at their end ('quickstart-20261…' twice): the part that
    tells runs of one preset apart was gone. They are cut in the middle, the time of day kept."""
    from .fixtures.fixture_runs import write_run

    runs = [write_run(tmp_path / "runs", f"quickstart-20261203-18{i}308", "gpt", seed=i, lr=1e-3 * (i + 1))
            for i in range(3)]
    env = {**os.environ, "COLUMNS": "80"}  # (a process of its own: the in-process console keeps its first width)
    out = subprocess.run([sys.executable, "-m", "tuiLM.cli", "runs", "compare", *map(str, runs)], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=120).stdout
    for i in range(3):
        assert f"quickstart-…18{i}308" in out or runs[i].name in out, out
    assert "20261…" not in out and max(len(line) for line in out.splitlines()) <= 80


def test_runs_compare_of_four_sets_at_80_columns_keeps_the_figures_whole(tmp_path):
    """Four runs and groups at 80 columns: Rich shrank every column ('compl…', '4.859…', 'mhc_m…') and
    the k and its ± SE were gone. The figures stay whole; hyperparameters too wide beside them get a
    table of their own, a row per key."""
    from .fixtures.fixture_runs import write_run

    root = tmp_path / "runs"
    for i in range(3):
        write_run(root, f"tiny-v1-2026120{i}-202515", "gpt", seed=i, run_seed=i)
        write_run(root, f"tiny-v3-2026120{i}-202532", "gpt", seed=i, run_seed=i, lr=6e-3)
    write_run(root, "tiny-v1-fail", "failed", seed=7, run_seed=5)
    write_run(root, "tiny-v5-20261203-202542", "mhc-frozen", seed=4)
    write_run(root, "longv5b", "gpt", seed=9, lr=1e-3)
    env = {**os.environ, "TUILM_RUNS_DIR": str(root), "COLUMNS": "80"}
    r = subprocess.run([sys.executable, "-m", "tuiLM.cli", "runs", "compare", "tiny-v5-20261203-202542",
                        "group:tiny-v1-20261200-202515", "group:tiny-v3-20261200-202532", "longv5b"], cwd=ROOT,
                       env=env, capture_output=True, text=True, timeout=120)
    table = r.stdout.split("each against")[0]
    assert "…" not in table and "3 completed, 1 failed" in table and "±" in table, r.stdout
    assert max(len(line) for line in table.splitlines()) <= 80
    below = r.stdout.split("hyperparameters that differ")[1]
    assert "model.mhc_h_res_init" in below and "optim.lr" in below and "0.006" in below, r.stdout


def test_runs_compare_of_four_mixed_groups_with_long_labels_stays_whole_at_80_columns(tmp_path):
    """A reviewer's case: four groups of 2 completed, 1 failed and 1 stopped seeds, long labels: the
    state text ('2 completed, 1 failed, 1 stopped') left the figures no room and Rich cut them all."""
    from rich.console import Console

    from tuiLM.groups import resolve_refs
    from tuiLM.report import print_set_compare

    from .fixtures.fixture_runs import write_run

    root = tmp_path / "runs"
    for g, lr in enumerate((1e-3, 2e-3, 3e-3, 4e-3)):
        for i, end in enumerate(("completed", "completed", "failed", "stopped")):
            write_run(root, f"gpt-small-long-config-name-v{g}-2026120{i}-2025{g}{i}", "gpt", seed=i, run_seed=i,
                      lr=lr, end=None if end == "completed" else end, steps=None if end == "completed" else 120)
    refs = [f"group:gpt-small-long-config-name-v{g}-20261200-2025{g}0" for g in range(4)]
    for width in (80, 60):
        console = Console(record=True, width=width)
        print_set_compare(resolve_refs(refs, root), console)
        table = console.export_text().split("each against")[0]
        rows = [line for line in table.splitlines() if "gpt-small (" in line]
        assert len(rows) == 4 and max(len(line) for line in table.splitlines()) <= width, table
        for line in rows:  # k, the states (in words, or in marks when narrower) and mean ± SE, whole
            assert re.search(r"  2  (2 completed, 1 failed, 1 stopped|✓2 ✗1 ■1)  \d\.\d+±\.\d+", line), table


def test_runs_list_at_80_columns_keeps_ids_states_and_figures_whole(tmp_path):
    """Rich shrank every column to fit 80 columns: ids, states and losses came out as 'ok-confirm1-t0…',
    'complet…', '4.2…'. Columns that can be read elsewhere go first; what is left is whole."""
    from .fixtures.fixture_runs import write_run

    names = [write_run(tmp_path / "runs", f"a-rather-long-study-trial-name-{i}", "gpt", seed=i).name for i in range(3)]
    names.append(write_run(tmp_path / "runs", "tiny-confirm1-t000-s1-20261203-103618", "gpt", seed=4).name)
    env = {**os.environ, "TUILM_RUNS_DIR": str(tmp_path / "runs"), "COLUMNS": "80"}
    r = subprocess.run([sys.executable, "-m", "tuiLM.cli", "runs", "list"], cwd=ROOT, env=env, capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "…" not in r.stdout and all(n in r.stdout for n in names) and "completed" in r.stdout
    assert "best bpb" in r.stdout  # the measure stays when a real study trial's id is this long
    assert max(len(line) for line in r.stdout.splitlines()) <= 80


def test_the_cli_flags_a_frozen_run_as_the_app_does(tmp_path):
    """The frozen-residual signature (H_res = I, the gate at its init), the point of seed 000's v1-v5
    story, showed only in the app: `runs list`, `runs show` and `runs compare` said nothing."""
    from rich.console import Console

    from tuiLM.report import print_compare, print_run, print_runs_list

    from .fixtures.fixture_runs import write_run

    root = tmp_path / "runs"
    frozen = write_run(root, "frozen", "mhc-frozen", seed=4)
    fine = write_run(root, "fine", "gpt", seed=1)
    outs = []
    for show in (lambda c: print_runs_list(c, root), lambda c: print_run(frozen, c),
                 lambda c: print_compare([frozen, fine], c)):
        console = Console(record=True, width=160)
        show(console)
        outs.append(console.export_text())
    listed = {line.split()[0]: line for line in outs[0].splitlines() if line.strip()[:5] in ("froze", "fine ")}
    assert listed["frozen"].rstrip().endswith("FROZEN") and "FROZEN" not in listed["fine"], outs[0]
    assert "FROZEN: H_res = I and gate stuck at its init" in outs[1], outs[1]
    assert any("flag" in line and "FROZEN" in line and "H_res" not in line for line in outs[2].splitlines()), outs[2]


def test_a_headless_run_that_trained_frozen_says_so_at_its_end(tmp_path):
    """A real mHC run with the often-quoted init (-8 at tau 0.05) trains with H_res = I throughout; its
    final summary now says FROZEN, where it read like any completed run."""
    sets = {**TINY_GPT, "model.arch": "mhc", "model.mhc_h_res_init": -8.0, "model.mhc_tau": 0.05,
            "model.mhc_gate": True, "train.max_steps": 10, "eval.every": 5, "diag.every": 5, "checkpoint.every": 0,
            "schedule.warmup_steps": 0, "schedule.warmdown_steps": 0}
    argv = [sys.executable, "-m", "tuiLM.cli", "run", QUICK, "--headless"]
    for k, v in sets.items():
        argv += ["--set", f"{k}={str(v).lower() if isinstance(v, bool) else v}"]
    env = {**os.environ, "TUILM_RUNS_DIR": str(tmp_path / "runs"), "COLUMNS": "200"}
    r = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "FROZEN: H_res = I and gate stuck at its init" in r.stdout, r.stdout
    argv = [a.replace("model.mhc_tau=0.05", "model.mhc_tau=1.0").replace("init=-8.0", "init=-0.5")
            for a in argv]  # -0.5 at tau 1: strong mixing from the start (diag ~ 0.48), nothing frozen
    r = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and "completed" in r.stdout and "FROZEN" not in r.stdout, r.stdout


def test_runs_list_age_reads_as_time_since_start_not_a_duration(tmp_path):
    """The 'age' column said '1:46' (minutes:seconds, read as how long the run took); it says '1m' now,
    as `kubectl get` and the app's runs list do."""
    from tuiLM.units import fmt_age

    from .fixtures.fixture_runs import write_run

    assert [fmt_age(x) for x in (-3, 45, 125, 7300, 3 * 86400 + 5)] == ["0s", "45s", "2m", "2h", "3d"]
    write_run(tmp_path / "runs", "aged", "gpt", seed=0)
    env = {**os.environ, "TUILM_RUNS_DIR": str(tmp_path / "runs"), "COLUMNS": "160"}
    r = subprocess.run([sys.executable, "-m", "tuiLM.cli", "runs", "list"], cwd=ROOT, env=env, capture_output=True,
                       text=True, timeout=120)
    row = next(line for line in r.stdout.splitlines() if "aged" in line)
    assert r.returncode == 0 and re.search(r" \d+[smhd]$", row.rstrip()) and ":" not in row.split()[-1], r.stdout



def test_a_preset_problem_reads_error_colon_file_line(tuilm):
    """Every other error line reads "error: ..."; a preset's problems read "error /path:14: ..." without
    the colon. Now one form: "error: PATH:LINE: KEY: message"."""
    r = tuilm("validate", QUICK, "--set", "model.n_heads=3")
    line = next(l for l in r.stderr.splitlines() if "n_heads" in l)
    assert r.exit_code == 1 and line.startswith(f"error: {QUICK}:") and ": model." in line, r.stderr


def test_command_help_paragraphs_are_not_broken_at_the_source_lines():
    """`tuilm vram --help` broke mid-sentence ("1 when it does" / "not fit") where the docstring wraps:
    this Typer keeps a paragraph's line breaks. Every command's help is one line per paragraph."""
    import re

    from tuiLM import cli

    for a in (cli.app, cli.preset_app, cli.runs_app, cli.study_app):
        for info in a.registered_commands:
            assert info.help and not re.search(r"(?<!\n)\n(?!\n)", info.help), info.callback


def test_help_shows_no_value_for_flags_and_names_the_preset(tmp_path):
    """Typer 0.29 printed `--headless <bool>`, `--force <bool>`, `--help <bool>` (as if each took a value)
    and `{preset}` in the usage line beside `{RUN}` elsewhere. Flags show no type; arguments are named."""
    env = {**os.environ, "COLUMNS": "120"}
    for args in (["run", "--help"], ["vram", "--help"], ["study", "show", "--help"]):
        r = subprocess.run([sys.executable, "-m", "tuiLM.cli", *args], cwd=ROOT, env=env, capture_output=True,
                           text=True, timeout=120)
        assert r.returncode == 0, r.stderr
        assert "<bool>" not in r.stdout and "--help" in r.stdout, r.stdout
    run_help = subprocess.run([sys.executable, "-m", "tuiLM.cli", "run", "--help"], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=120).stdout
    assert "tuilm run [OPTIONS] {PRESET}" in run_help and "<str>" in run_help  # (values still show their type)

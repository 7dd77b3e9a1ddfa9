"""Judging a study against seed noise in `tuilm study show`, and confirm top-k, on the fixture study
(tests/fixtures/study: a real tiny study, 6 trials x 3 seeds with a baseline trial)."""

from __future__ import annotations

import io
import json
import os
import shutil
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from tuiLM.reader import effective_events, read_events
from tuiLM.runs import EVENTS, PRESET, list_runs

from .test_study_run import env_for, show_json, tuilm

FIXTURE = Path(__file__).parent / "fixtures" / "study" / "runs"


def copy_fixture(tmp_path: Path) -> Path:
    shutil.copytree(FIXTURE, tmp_path / "runs")
    return tmp_path / "runs"


def final_bpb(run_dir: Path) -> float:
    return [e for e in effective_events(read_events(run_dir / EVENTS)) if e["kind"] == "eval"][-1]["val_bpb"]


def run_seed(run_dir: Path) -> int:
    return tomllib.loads((run_dir / PRESET).read_text())["run"]["seed"]


def test_show_judges_every_trial_against_the_best_and_the_baseline(tmp_path):
    runs = copy_fixture(tmp_path)
    s = show_json(tmp_path, "fixture")
    done = [r for r in s["trials"] if r["state"] == "complete"]
    assert len(done) >= 3 and s["baseline"] == 0
    best = next(r for r in done if r["number"] == s["best"]["number"])
    for r in done:
        # seeds are run.seed + 0..k-1 of each run's own preset
        assert r["seeds"] == [run_seed(runs / rid) for rid in r["runs"]]
        if r is best:
            assert r["vs_best"] is None
            continue
        c = r["vs_best"]
        assert c["method"] == "paired" and c["k"] == 3
        # per-seed differences from the runs' own final evals (minimise: gain = best - trial < 0)
        d = [final_bpb(runs / a) - final_bpb(runs / b) for a, b in zip(best["runs"], r["runs"])]
        assert c["gain"] == pytest.approx(sum(d) / 3, abs=1e-12)
        assert c["gain"] <= 0
        assert c["verdict"].startswith("worse by") or c["verdict"].startswith("not distinguishable")
    if best["number"] != 0:
        assert s["best_vs_baseline"]["method"] == "paired"
        assert "paired over 3 seeds" in s["best_vs_baseline"]["verdict"]
    text = tuilm(tmp_path, "study", "show", "fixture")
    assert text.returncode == 0, text.stderr
    assert "vs best" in text.stdout and "best vs runner-up" in text.stdout
    if best["number"] != 0 and s["best_vs_runner_up"]["runner_up"] == 0:  # (the fixture's case) one line
        assert "best vs runner-up and baseline (trial 0)" in text.stdout and "best vs baseline" not in text.stdout
    elif best["number"] != 0:
        assert "best vs baseline (trial 0)" in text.stdout
    rows = [line for line in text.stdout.splitlines() if re.match(r"\d+[*b]* +(complete|pruned|running|fail)", line)]
    marks = {line.split()[0].rstrip("*b"): line.split()[0] for line in rows}  # (not a verdict wrapped at "0.001")
    assert marks[str(best["number"])].startswith(f"{best['number']}*") and marks["0"].endswith("b")  # as the app marks them
    assert sum("*" in m for m in marks.values()) == 1 and len(marks) == len(s["trials"])
    wide = subprocess.run([sys.executable, "-m", "tuiLM.cli", "study", "show", "fixture"], cwd=tmp_path,
                          env={**env_for(tmp_path), "COLUMNS": "160"}, capture_output=True, text=True, timeout=300)
    pruned = [line.split() for line in wide.stdout.splitlines() if re.match(r"\d+ +pruned", line)]
    assert pruned and all("0/3" in cells for cells in pruned), wide.stdout  # no seed of 3 finished (a bare 0
    # or 1 beside no value read as a one-seed trial)
    # at 80 columns (SSH) nothing compared is cut: every value, SE and verdict whole; only names shorten
    env = {**env_for(tmp_path), "COLUMNS": "80"}
    narrow = subprocess.run([sys.executable, "-m", "tuiLM.cli", "study", "show", "fixture"], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=300).stdout
    lines = narrow.splitlines()
    table = [line for line in lines if re.match(r"\d+[*b]* +(complete|pruned|running|fail)", line)]
    assert max(len(line) for line in lines) <= 80 and len(table) == len(s["trials"]), narrow
    for r in s["trials"]:
        line = next(x for x in table if x.split()[0].rstrip("*b") == str(r["number"]))
        assert r["state"] in line and (r["value"] is None or f"{r['value']:.4f}" in line), line
        assert r["value_se"] is None or f"{r['value_se']:.4f}" in line
        assert bool(r["lucky"]) == ("lucky?" in line) and "…" not in line
    # narrower still (or many parameters): the parameters get a table of their own, nothing is cut
    narrower = subprocess.run([sys.executable, "-m", "tuiLM.cli", "study", "show", "fixture"], cwd=tmp_path,
                              env={**env, "COLUMNS": "60"}, capture_output=True, text=True, timeout=300).stdout
    lines = narrower.splitlines()
    heads = [line for line in lines if line.startswith("#")]
    assert len(heads) == 2 and "n_layers" in heads[1] and "val_bpb" in heads[0] and "…" not in narrower.split("best:")[0]
    for r in s["trials"]:
        rows_of = [x for x in lines if x[:1].isdigit() and x.split()[0].rstrip("*b") == str(r["number"])]
        assert len(rows_of) == 2 and all(str(v) in rows_of[1] or f"{v:.4g}" in rows_of[1] for v in r["params"].values())


def test_stop_on_a_study_with_no_running_trial_says_so_and_asks_nothing(tmp_path):
    copy_fixture(tmp_path)
    out = tuilm(tmp_path, "study", "stop", "fixture")
    assert out.returncode == 1 and "error: study fixture has no running trial: nothing to stop" in out.stderr, \
        out.stdout + out.stderr  # an error, as `tuilm stop` on a run with no trainer
    assert not (tmp_path / "runs" / "studies" / "fixture" / "stop_request").exists()
    (tmp_path / "runs" / "studies" / "gone").mkdir()
    out = tuilm(tmp_path, "study", "show", "gone")
    assert out.returncode == 1 and "has no journal.log" in out.stderr and "Traceback" not in out.stderr


@pytest.mark.slow
def test_confirm_top_k_reruns_the_best_with_fresh_seeds(tmp_path):
    runs = copy_fixture(tmp_path)
    before = {p.name for p in list_runs(runs)}
    original = show_json(tmp_path, "fixture")
    used = {s for r in original["trials"] for s in r["seeds"]}
    out = tuilm(tmp_path, "study", "confirm", "fixture", "--top", "2", "--seeds", "2")
    assert out.returncode == 0, out.stdout + out.stderr
    new = sorted(p for p in list_runs(runs) if p.name not in before)
    assert len(new) == 4 and all(p.name.startswith("fixture-confirm1-t00") for p in new)
    seeds = {run_seed(p) for p in new}
    assert len(seeds) == 2 and not seeds & used  # fresh seeds, the same two for both configurations
    top2 = sorted((r for r in original["trials"] if r["state"] == "complete"), key=lambda r: r["value"])[:2]
    confirm = show_json(tmp_path, "fixture-confirm1")
    assert confirm["confirm_of"] == {"study": "fixture", "trials": [r["number"] for r in top2]}
    assert sorted(tuple(sorted(r["params"].items())) for r in confirm["trials"]) == \
        sorted(tuple(sorted(r["params"].items())) for r in top2)
    rk = show_json(tmp_path, "fixture")["confirms"][0]
    assert rk["study"] == "fixture-confirm1" and rk["finished"]
    assert [r["trial"] for r in rk["rows"]] == [r["number"] for r in top2]
    new_order = sorted(rk["rows"], key=lambda r: r["confirm_value"])
    assert rk["held"] == ([r["trial"] for r in new_order] == [r["number"] for r in top2])
    assert rk["best_vs_runner_up"]["method"] == "paired" and rk["best_vs_runner_up"]["k"] == 2
    assert "confirmation fixture-confirm1" in out.stdout
    assert ("the ranking held" in out.stdout) == rk["held"]


def test_confirming_again_continues_an_unfinished_confirmation_of_the_same_trials(tmp_path, monkeypatch):
    """A stopped `study confirm` could only be continued with `study worker NAME-confirm1`: running
    `study confirm` again started confirm2 and left confirm1 behind. It now continues confirm1 when it
    confirms the same trials (and seeds); other trials or seeds still make a new confirmation."""
    from tuiLM.study.confirm import start, unfinished

    runs = copy_fixture(tmp_path)
    monkeypatch.setenv("TUILM_RUNS_DIR", str(runs))
    assert unfinished("fixture", None, 2) is None  # no confirmation yet
    first = start("fixture", None, 2, seeds=2)  # made and enqueued, never run: unfinished
    assert first.name == "fixture-confirm1"
    assert unfinished("fixture", None, 2) == "fixture-confirm1"
    assert unfinished("fixture", None, 2, seeds=2) == "fixture-confirm1"
    assert unfinished("fixture", None, 2, seeds=3) is None  # other seeds: another confirmation
    assert unfinished("fixture", None, 1) is None  # other trials: another confirmation
    assert start("fixture", None, 2).name == "fixture-confirm1"
    assert start("fixture", None, 1).name == "fixture-confirm2"
    assert unfinished("fixture", None, 2) == "fixture-confirm1"  # another one in between does not hide it
    assert start("fixture", None, 2).name == "fixture-confirm1"


def test_confirm_without_a_completed_trial_is_a_clear_error(tmp_path):
    out = tuilm(tmp_path, "study", "confirm", "nope", "--top", "2")
    assert out.returncode != 0 and "no study 'nope'" in out.stdout + out.stderr
    assert "Traceback" not in out.stdout + out.stderr


def test_runs_show_of_a_trial_run_names_its_trial_and_its_seed_group(tmp_path):
    """One seed is one draw: `runs show` of a trial's run says which study trial it is and shows its
    best val_bpb beside the group's mean ± SE over its sibling seeds."""
    from tuiLM.groups import group_value
    from tuiLM.reader import summarize

    runs = copy_fixture(tmp_path)
    s = show_json(tmp_path, "fixture")
    best = next(r for r in s["trials"] if r["number"] == s["best"]["number"])
    run = best["runs"][1]
    out = tuilm(tmp_path, "runs", "show", run)
    assert out.returncode == 0, out.stderr
    text = out.stdout.replace("\n", " ")
    seeds = " ".join(str(x) for x in best["seeds"])
    v = group_value([summarize(runs / r).best_val_bpb for r in best["runs"]])
    assert f"study fixture · trial {best['number']} · seed {best['seeds'][1]}" in text, text
    assert f"3 runs, seeds {seeds} · best val_bpb {v.text()} (mean ± SE, k=3)" in text, text
    assert f"this seed {summarize(runs / run).best_val_bpb:.4f}" in text
    assert all(r in text for r in best["runs"] if r != run)
    from .fixtures.fixture_runs import write_run

    solo = write_run(tmp_path / "elsewhere", "solo", "gpt", seed=0)  # a run of its own: no study, no group
    alone = tuilm(tmp_path, "runs", "show", str(solo))
    assert alone.returncode == 0 and "seed group" not in alone.stdout and "study " not in alone.stdout, alone.stdout
    for i in (1, 2):  # plain runs of one configuration, seeds 5 and 6: a group by their frozen presets
        write_run(tmp_path / "pairs", f"pair-{i}", "gpt", seed=i, run_seed=4 + i)
    pair = tuilm(tmp_path, "runs", "show", str(tmp_path / "pairs" / "pair-1")).stdout.replace("\n", " ")
    assert "2 runs, seeds 5 6" in pair and "siblings: pair-2" in pair and "study " not in pair, pair


def test_a_lucky_flag_names_the_confirm_that_would_rerun_that_trial(tmp_path, monkeypatch, capsys):
    """`study confirm --top K` re-runs the K best: the hint for a flagged trial gives its rank, not 'K'
    (the old hint for the worst trial could not confirm it at all)."""
    from tuiLM.cli import main
    from tuiLM.study import stats

    runs = copy_fixture(tmp_path)
    monkeypatch.setenv("TUILM_RUNS_DIR", str(runs))
    monkeypatch.setattr(stats, "lucky_seeds", lambda values, direction="minimize": [0] if len(values) > 1 else [])
    s = show_json(tmp_path, "fixture")
    done = sorted((r for r in s["trials"] if r["state"] == "complete"), key=lambda r: r["value"])
    with pytest.raises(SystemExit) as e:
        main(["study", "show", "fixture"])
    out = capsys.readouterr().out.replace("\n", " ")
    assert e.value.code == 0
    said = {part.split()[1]: part for part in out.split("possible lucky run: ")[1:]}
    assert len(said) == len(done), out
    for rank, r in enumerate(done, 1):
        part = said[str(r["number"])]
        assert part.startswith(f"trial {r['number']} seed {r['seeds'][0]} ") and f"--top {rank})" in part, part


def test_csv_carries_what_the_table_and_json_show(tmp_path):
    """`study show --csv` had no host, seeds, per-seed values, lucky seeds or verdict against the best."""
    import csv
    import io

    copy_fixture(tmp_path)
    s = show_json(tmp_path, "fixture")
    out = tuilm(tmp_path, "study", "show", "fixture", "--csv")
    assert out.returncode == 0, out.stderr
    rows = {int(r["number"]): r for r in csv.DictReader(io.StringIO(out.stdout))}
    assert len(rows) == len(s["trials"])
    for t in s["trials"]:
        r = rows[t["number"]]
        assert r["host"] == (t["host"] or "") and r["seeds"] == " ".join(map(str, t["seeds"]))
        assert [float(x) for x in r["values"].split()] == pytest.approx(t["values"])
        assert r["lucky_seeds"] == " ".join(str(t["seeds"][i]) for i in t["lucky"])
        c = t["vs_best"]
        if c is None:
            assert r["vs_best_gain"] == r["vs_best_p"] == r["vs_best"] == ""
        else:
            assert float(r["vs_best_gain"]) == pytest.approx(c["gain"]) and r["vs_best"] == c["verdict"]
            assert (r["vs_best_p"] == "") == (c["p"] is None)
    assert any(t["vs_best"] for t in s["trials"]) and any(t["host"] for t in s["trials"])


def test_importance_waits_for_enough_trials_and_leaves_out_what_never_varied():
    """With 2 completed trials Optuna gave a parameter that never varied 11 % of the importance."""
    import optuna

    from tuiLM.study.report import IMPORTANCE_MIN_TRIALS, importance

    dists = {"lr": optuna.distributions.FloatDistribution(1e-4, 1e-2, log=True),
             "heads": optuna.distributions.IntDistribution(2, 8)}
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for i, lr in enumerate([1e-3, 3e-3]):
        study.add_trial(optuna.trial.create_trial(params={"lr": lr, "heads": 4}, distributions=dists, value=1.0 + i))
    assert importance(study) == {}
    for lr in [5e-4, 2e-3, 4e-3, 6e-3][: IMPORTANCE_MIN_TRIALS - 2]:
        study.add_trial(optuna.trial.create_trial(params={"lr": lr, "heads": 4}, distributions=dists, value=lr * 100))
    got = importance(study)
    assert set(got) == {"lr"} and got["lr"] == pytest.approx(1.0)  # heads was 4 in every completed trial


def test_the_trials_table_names_hosts_when_several_ran_the_study_and_a_pruned_value_its_step(tmp_path):
    """specs/studies.md: the trials table shows the host (a study of many machines); a pruned trial's
    value is the one its pruner judged, at that step (its run went on to its stop)."""
    import copy

    from rich.console import Console

    from tuiLM.study.report import _trials_tables

    copy_fixture(tmp_path)
    s = show_json(tmp_path, "fixture")
    keys = sorted({k for r in s["trials"] for k in r["params"]})

    def render(summary) -> str:
        console = Console(width=160, record=True, file=io.StringIO())
        for table in _trials_tables(summary, keys, 160):
            console.print(table)
        return console.export_text()

    one = render(s)
    assert "host" not in one.splitlines()[0]  # one machine: no column to read
    pruned = [r for r in s["trials"] if r["state"] == "pruned"]
    for r in pruned:
        step = max(int(x) for x in r["intermediate"])
        line = next(x for x in one.splitlines() if x.split()[0] == str(r["number"]))
        assert line.rstrip().endswith(f"at step {step}") and f"{r['value']:.4f}" in line
    two = copy.deepcopy(s)
    for r in two["trials"]:
        r["host"] = "gpu-a" if r["number"] % 2 else "gpu-b"
    text = render(two)
    assert text.splitlines()[0].split()[-1] == "host"
    for r in two["trials"]:
        line = next(x for x in text.splitlines() if x.split() and x.split()[0].rstrip("*b") == str(r["number"]))
        assert line.rstrip().endswith(r["host"])


def test_study_compare_judges_two_configurations_seed_by_seed(tmp_path):
    """specs/studies.md: comparing two configurations (paired over their shared seeds) from the CLI."""
    from tuiLM.study.stats import compare

    copy_fixture(tmp_path)
    s = show_json(tmp_path, "fixture")
    done = [r for r in s["trials"] if r["state"] == "complete"]
    a, b = done[0], done[-1]
    expected = compare(a["values"], b["values"], a["seeds"], b["seeds"], "minimize")
    out = tuilm(tmp_path, "study", "compare", "fixture", str(a["number"]), str(b["number"]))
    assert out.returncode == 0, out.stderr
    text = out.stdout.replace("\n", " ")
    assert expected.verdict in text and f"trial {a['number']} vs trial {b['number']}" in text
    gains = []  # per seed in the verdict's sense, how much better a is (+): it read "a - b", the other way
    for seed, x, y in zip(a["seeds"], a["values"], b["values"]):
        assert [str(seed), f"{x:.4f}", f"{y:.4f}", f"{y - x:+.4f}"] in [line.split() for line in out.stdout.splitlines()]
        gains.append(y - x)
    assert f"gain ({a['number']} better: +)" in out.stdout
    assert (sum(gains) / len(gains) > 0) == (expected.gain > 0)  # the table and the verdict agree on the sign
    js = json.loads(tuilm(tmp_path, "study", "compare", "fixture", str(a["number"]), str(b["number"]), "--json").stdout)
    assert js["method"] == "paired" and js["p"] == pytest.approx(expected.p) and js["verdict"] == expected.verdict
    pruned = next(r for r in s["trials"] if r["state"] == "pruned")
    for args, why in (([str(pruned["number"]), "0"], "has no finished seed"), (["0", "99"], "has no trial 99")):
        bad = tuilm(tmp_path, "study", "compare", "fixture", *args)
        assert bad.returncode == 1 and why in bad.stderr and "Traceback" not in bad.stderr
    same = tuilm(tmp_path, "study", "compare", "fixture", "0", "0")  # was "not distinguishable … p = 1.00"
    assert same.returncode == 2 and "trial 0 is named twice" in same.stderr, same.stdout + same.stderr
    fewer = tuilm(tmp_path, "study", "worker", "fixture", "--trials", "2")  # said "trials 8/2", lowered the target
    assert fewer.returncode == 2 and "already has 8 trials" in fewer.stderr, fewer.stdout + fewer.stderr
    assert show_json(tmp_path, "fixture")["target"] == 8


def test_a_trial_over_the_artifact_limit_is_never_the_best_nor_confirmed():
    """The best, the runner-up, confirm's top K and the lucky hint's K skip trials over the limit."""
    import optuna

    from tuiLM.study.confirm import top_trials
    from tuiLM.study.report import summarize_study

    dist = {"lr": optuna.distributions.FloatDistribution(1e-4, 1e-2, log=True)}
    study = optuna.create_study()
    spec = '[study]\nname = "g"\nbase = "quickstart"\nmax_artifact_bytes = 16000000\n[space]\n"optim.lr" = { log = [1e-4, 1e-2] }\n'
    study.set_user_attr("tuilm_spec", spec)
    for value, size in ((1.20, 16_500_000), (1.25, 15_900_000), (1.30, 15_000_000)):
        study.add_trial(optuna.trial.create_trial(
            params={"lr": value / 1000}, distributions=dist, value=value,
            user_attrs={"values": [value - 0.01, value + 0.01], "seeds": [0, 1], "artifact_bytes": size,
                        **({"over_limit": True} if size > 16_000_000 else {})}))
    s = summarize_study(study, "g", "memory")
    assert s["best"]["number"] == 1 and s["max_artifact_bytes"] == 16_000_000
    assert s["best_vs_runner_up"]["runner_up"] == 2
    assert [r["number"] for r in top_trials(s, 3)] == [1, 2]
    assert [r["over_limit"] for r in s["trials"]] == [True, False, False]


def test_a_grid_with_fewer_points_than_trials_finishes_when_its_grid_is_done(tmp_path):
    """study_state read 'idle' for ever when study.trials exceeded the grid (the engine stops at the grid)."""
    from tuiLM.study.report import study_state
    from tuiLM.study.spec import parse

    text = ('[study]\nbase = "quickstart"\ntrials = 20\nsampler = "grid"\n[space]\n'
            '"model.n_layers" = { choice = [1, 2] }\n"model.activation" = { choice = ["gelu", "relu2"] }\n')
    grid, tpe = parse(text)[0], parse(text.replace('sampler = "grid"', 'sampler = "tpe"'))[0]
    assert grid.target() == 4 and grid.target(2) == 2 and tpe.target() == 20
    counts = {"complete": 4, "running": 0, "stopped": 0, "pruned": 0, "fail": 0}
    assert study_state({"counts": counts, "target": grid.target()}, None) == "finished"
    copy_fixture(tmp_path)  # and what a summary reports
    assert show_json(tmp_path, "fixture")["target"] == 8


def test_a_running_trials_steps_come_from_the_tail_of_its_runs_under_the_resume_rule(tmp_path):
    """The app refreshes every 2 s: a running trial's steps are read from the end of events.jsonl only,
    and what a resume superseded (steps 101-120 of the first attempt) does not count."""
    from tuiLM.events import EventWriter
    from tuiLM.study.report import _running_here

    run = tmp_path / "runs" / "t0"
    run.mkdir(parents=True)
    with EventWriter(run / "events.jsonl") as w:
        w.write("run_start", step=0)
        for step in range(1, 121):
            w.write("train", step=step, tokens=step, loss=1.0, lr=1e-3, grad_norm=1.0, tokens_per_s=1.0, dt_ms=1.0)
        w.write("run_start", step=100)  # resumed from the step-100 checkpoint
        for step in range(101, 106):
            w.write("train", step=step, tokens=step, loss=1.0, lr=1e-3, grad_norm=1.0, tokens_per_s=1.0, dt_ms=1.0)
    assert _running_here(["t0"], tmp_path / "runs") == (False, 105, False)  # (no trainer: not live)
    from tuiLM.ownership import acquire_run_lock

    lock = acquire_run_lock(run)  # its trainer, alive: live (the app offers x on it, and no c)
    assert _running_here(["t0"], tmp_path / "runs") == (False, 105, True)
    os.close(lock)
    with EventWriter(run / "events.jsonl") as w:
        w.write("run_end", status="stopped", step=105, reason="study stop")
    assert _running_here(["t0"], tmp_path / "runs") == (True, 105, False)
    assert _running_here(["gone"], tmp_path / "runs") == (False, None, False)



def test_a_worker_records_its_trials_preset_as_study_run_does(tmp_path):
    """A trial run started by `study worker` (the app's c) said its preset was the run's own name
    ('tiny3-t001-s0'); it is the study's base preset, as for `study run`."""
    from tuiLM.launch import create_run
    from tuiLM.study.report import worker_spec
    from tuiLM.study.spec import trial_preset
    from tuiLM.train.trainer import _preset_name

    copy_fixture(tmp_path)
    spec, base = worker_spec("fixture", None, tmp_path / "runs")
    run_dir = create_run(trial_preset(base, {}, 0, "fixture-t100-s0"), root=tmp_path / "runs")
    assert _preset_name(run_dir, base) == Path(spec.settings["base"]).stem == "base"


def test_a_studys_trials_read_as_ended_of_the_target_then_how():
    """'3/6 done, 3 pruned' read as half of a finished study, and `study list` gave no target at all. One
    wording for study list, the studies list and the study view: ended of the target, then how."""
    from tuiLM.study.report import counts_text

    assert counts_text({"complete": 3, "pruned": 3}, 6) == "6/6: 3 done, 3 pruned"
    assert counts_text({"complete": 2, "running": 1, "pruned": 1, "stopped": 2, "interrupted": 1}, 8) == \
        "3/8: 2 done, 1 pruned, 1 running, 1 stopped, 1 interrupted"
    assert counts_text({}, 4) == "0/4" and counts_text({"complete": 1}, None) == "1: 1 done"


def test_study_list_keeps_best_params_whole_or_leaves_them_out(tmp_path):
    """A narrow terminal cut the best params to 'weight_dec' (and 'weight_decay=' with no number): they are
    whole, wrapped between items, or (too narrow for the widest) left to `study show`."""
    import subprocess
    import sys

    copy_fixture(tmp_path)
    params = show_json(tmp_path, "fixture")["best"]["params"]
    for width, shown in ((80, True), (58, False)):
        out = subprocess.run([sys.executable, "-m", "tuiLM.cli", "study", "list"], cwd=tmp_path, capture_output=True,
                             env={**env_for(tmp_path), "COLUMNS": str(width)}, text=True, timeout=120).stdout
        table = [line for line in out.splitlines() if not line.startswith("storage: ")]  # (a path, whole)
        assert max(len(line.rstrip()) for line in table) <= width, out
        items = [w for line in out.splitlines()[1:] for w in line.split() if "=" in w]
        assert bool(items) == shown and all(w.split("=")[1] for w in items), out
        assert all(any(f"{k.split('.')[-1]}=" in w for w in items) for k in params) == shown, out


def test_a_confirmation_of_trials_no_longer_the_top_says_so():
    """A confirmation of trials 0 and 1 still read "the ranking held" after the study went on and trial 5
    became its best: it now says which trials it confirmed, which are the top now, and how to confirm them."""
    from tuiLM.study.confirm import ranking

    def row(n, value, values, seeds, **kw):
        return {"number": n, "state": "complete", "value": value, "value_se": 0.01, "k": len(values), "values": values,
                "seeds": seeds, "params": {}, "runs": [], **kw}

    original = {"name": "lrwd", "direction": "minimize",
                "trials": [row(0, 3.3, [3.29, 3.31], [1, 2]), row(1, 3.8, [3.79, 3.81], [1, 2])]}
    confirmation = {"name": "lrwd-confirm1", "trials": [row(0, 3.2, [3.19, 3.2, 3.21], [7, 8, 9], confirm_of=0),
                                                          row(1, 3.7, [3.69, 3.7, 3.71], [7, 8, 9], confirm_of=1)]}
    rk = ranking(original, confirmation)
    assert rk["verdict"] == "the ranking held" and not rk["stale"]
    original["trials"].append(row(5, 3.1, [3.09, 3.11], [1, 2]))
    rk = ranking(original, confirmation)
    assert rk["stale"] and rk["verdict"] == ("the ranking held (for trials 0, 1; the study's top 2 are trials 5, 0 "
                                             "now: tuilm study confirm lrwd --top 2 confirms them)"), rk["verdict"]


def test_a_ranking_that_held_within_seed_noise_says_so():
    """"the ranking held" read as a win right above "not distinguishable from seed noise" for the same two."""
    from tuiLM.study.confirm import ranking

    def row(n, values, **kw):
        return {"number": n, "state": "complete", "value": sum(values) / len(values), "value_se": 0.01,
                "k": len(values), "values": values, "seeds": [7, 8, 9][: len(values)], "params": {}, "runs": [], **kw}

    original = {"name": "s", "direction": "minimize", "trials": [row(0, [3.0, 3.1]), row(1, [3.2, 3.3])]}
    close = {"name": "s-confirm1", "trials": [row(0, [3.20, 3.31, 3.12], confirm_of=0),
                                              row(1, [3.25, 3.18, 3.30], confirm_of=1)]}
    rk = ranking(original, close)
    assert not rk["best_vs_runner_up"]["significant"]
    assert rk["verdict"] == "the ranking held, though its top two are within seed noise of each other", rk["verdict"]

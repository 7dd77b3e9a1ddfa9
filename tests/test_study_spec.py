"""Study files: parsing, validation (key, line, did you mean), the JSON Schema, the shipped studies. No torch."""

from __future__ import annotations

import json
import os
import tomllib

import jsonschema
import pytest

from tuiLM.cli import main
from tuiLM.study.spec import STUDY_FIELDS, json_schema, load_study, parse, trial_preset

from .conftest import PRESETS

STUDIES = PRESETS / "studies"
SHIPPED = sorted(STUDIES.glob("*.toml"))

GOOD = """\
[study]
name = "s"
base = "quickstart"
trials = 4

[space]
"optim.lr" = { log = [1e-4, 1e-2] }
"model.n_layers" = { int = [1, 3] }
"model.activation" = { choice = ["gelu", "relu2"] }
"optim.weight_decay" = { range = [0.0, 0.2] }
"""


def problems_of(text: str) -> list:
    return parse(text)[1]


def only_error(text: str):
    errs = [p for p in problems_of(text) if p.is_error]
    assert len(errs) == 1, errs
    return errs[0]


def test_a_good_file_resolves_every_kind_of_dimension():
    spec, problems = parse(GOOD)
    assert problems == []
    dims = {d.key: (d.kind, d.values) for d in spec.space}
    assert dims == {"optim.lr": ("log", (1e-4, 1e-2)), "model.n_layers": ("int", (1, 3)),
                    "model.activation": ("choice", ("gelu", "relu2")), "optim.weight_decay": ("range", (0.0, 0.2))}
    d = spec.distributions()
    assert d["optim.lr"].log and d["model.n_layers"].low == 1 and d["model.n_layers"].high == 3
    assert spec.direction == "minimize" and spec.seeds == 1 and spec.sampler == "tpe"


def test_dotted_keys_are_the_same_as_quoted_ones():
    text = GOOD.replace('"optim.lr" = { log = [1e-4, 1e-2] }', 'optim.lr = { log = [1e-4, 1e-2] }')
    spec, problems = parse(text)
    assert problems == [] and "optim.lr" in {d.key for d in spec.space}


@pytest.mark.parametrize("line, message", [
    ('"optim.lrr" = { log = [1e-4, 1e-2] }', "did you mean optim.lr?"),
    ('"model.n_layer" = { int = [1, 3] }', "did you mean model.n_layers?"),
    ('"optim.lr" = { log = [0.0, 1e-2] }', "log needs lo > 0"),
    ('"optim.lr" = { range = [1e-4, 20.0] }', "outside the field's allowed range (0, 10]"),
    ('"model.dropout" = { range = [0.0, 1.0] }', "outside the field's allowed range [0, 1)"),
    ('"model.n_layers" = { range = [1.0, 3.0] }', "use { int = [1, 3] }"),
    ('"optim.lr" = { int = [1, 3] }', "needs an integer field"),
    ('"model.n_layers" = { int = [1.5, 3] }', "bounds must be integers"),
    ('"model.activation" = { choice = ["gelu", "tanh"] }', "'tanh' is not one of gelu | relu2 | swiglu"),
    ('"model.n_layers" = { choice = [2, "three"] }', "expected an integer"),
    ('"model.activation" = { range = [0, 1] }', "use { choice = [...] }"),
    ('"optim.lr" = { log = [1e-2, 1e-4] }', "lo must be below hi"),
    ('"optim.lr" = { uniform = [1e-4, 1e-2] }', "expected one distribution"),
    ('"optim.lr" = 0.001', "expected one distribution"),
    ('"run.seed" = { int = [1, 3] }', "seeds are set by study.seeds"),
])
def test_bad_dimensions_name_key_and_line(line, message):
    text = "[study]\nbase = \"quickstart\"\n\n[space]\n" + line + "\n"
    err = only_error(text)
    assert message in err.message, err
    assert err.line == 5 and err.path.startswith("space.")


@pytest.mark.parametrize("line, path, message", [
    ("trails = 5", "study.trails", "did you mean study.trials?"),
    ("trials = 0", "study.trials", "outside [1, 100000]"),
    ("trials = 2.5", "study.trials", "expected an integer"),
    ('sampler = "bayes"', "study.sampler", "must be one of tpe | random | grid | cmaes | gp"),
    ('pruner = "sha"', "study.pruner", "must be one of none | median | asha | hyperband"),
    ('objective = "accuracy"', "study.objective", "'accuracy' is not a metric runs write: val_bpb, val_loss, "),
    ('objective = "stream_simlarity"', "study.objective", "(did you mean stream_similarity?)"),
    ('objective = "stream_spread"', "study.direction", "'stream_spread' has no known better direction"),
    ('direction = "down"', "study.direction", "must be one of auto | minimize | maximize"),
    ('name = "../escape"', "study.name", "bad study name"),
])
def test_bad_study_settings_name_key_and_line(line, path, message):
    text = '[study]\nbase = "quickstart"\n' + line + '\n\n[space]\n"optim.lr" = { log = [1e-4, 1e-2] }\n'
    err = only_error(text)
    assert (err.path, err.line) == (path, 3) and message in err.message, err


def test_a_grid_over_a_continuous_range_is_an_error_and_a_short_grid_a_warning():
    errs = [p for p in problems_of(GOOD.replace('trials = 4', 'trials = 4\nsampler = "grid"')) if p.is_error]
    assert [(e.path, e.line) for e in errs] == [("space.optim.lr", 8), ("space.optim.weight_decay", 11)]
    assert "grid over a continuous log range" in errs[0].message and "continuous range:" in errs[1].message
    text = ('[study]\nbase = "quickstart"\nsampler = "grid"\ntrials = 10\n[space]\n'
            '"model.n_layers" = { int = [1, 3] }\n"model.activation" = { choice = ["gelu", "relu2"] }\n')
    spec, problems = parse(text)
    assert spec.grid_size() == 6 and spec.grid() == {"model.n_layers": [1, 2, 3], "model.activation": ["gelu", "relu2"]}
    assert [(p.level, p.path) for p in problems] == [("warning", "study.trials")] and "6 points" in problems[0].message


def test_missing_base_unknown_table_empty_space_and_set_table():
    probs = problems_of("[study]\ntrials = 3\n[spaces]\n")
    msgs = {p.path: p.message for p in probs}
    assert "missing" in msgs["study.base"] and "did you mean space?" in msgs["spaces"]
    assert "empty" in msgs["space"]
    text = GOOD + '\n[set]\n"train.max_steps" = 50\n"train.max_stepz" = 3\n"optim.lr" = 0.1\n"eval.every" = "x"\n'
    spec, probs = parse(text)
    msgs = {p.path: (p.message, p.line) for p in probs}
    assert spec.fixed == {"train.max_steps": 50}
    assert "did you mean train.max_steps?" in msgs["set.train.max_stepz"][0] and msgs["set.train.max_stepz"][1] == 14
    assert "also a [space] dimension" in msgs["set.optim.lr"][0]
    assert "expected an integer" in msgs["set.eval.every"][0]


def test_load_study_resolves_the_base_applies_set_then_command_line(tmp_path):
    f = tmp_path / "s.toml"
    f.write_text(GOOD + '\n[set]\n"train.max_steps" = 50\n"eval.every" = 10\n')
    spec, base, problems = load_study(f, ["eval.every=25"])
    assert [p for p in problems if p.is_error] == []
    assert base.train.max_steps == 50 and base.eval.every == 25 and base.run.name == "quickstart"
    p = trial_preset(base, {"optim.lr": 0.002}, 2, "s-t007-s2")
    assert (p.optim.lr, p.run.seed, p.run.name) == (0.002, base.run.seed + 2, "s-t007-s2")
    # a base preset that does not exist, and one whose keys do not apply to its architecture
    home = tmp_path / "home"  # a base under ~ is found (~ was expanded, then the raw text looked up)
    home.mkdir()
    (home / "b.toml").write_text((PRESETS / "quickstart.toml").read_text())
    old_home = os.environ.get("HOME")
    os.environ["HOME"] = str(home)
    try:
        f.write_text(GOOD.replace('base = "quickstart"', 'base = "~/b.toml"'))
        assert [p for p in load_study(f)[2] if p.is_error] == []
    finally:
        os.environ["HOME"] = old_home or ""
    f.write_text(GOOD.replace('base = "quickstart"', 'base = "../quickstart.toml"'))  # a copied shipped study
    errs = [p for p in load_study(f)[2] if p.is_error]
    assert errs and "beside the study file" in errs[0].message and 'base = "quickstart"' in errs[0].message
    f.write_text(GOOD.replace('base = "quickstart"', 'base = "no-such-preset"'))
    errs = [p for p in load_study(f)[2] if p.is_error]
    assert errs and errs[0].path == "study.base" and "no such preset" in errs[0].message and errs[0].line == 3
    f.write_text(GOOD + '"model.mhc_tau" = { choice = [1.0, 0.05] }\n')
    warns = [p for p in load_study(f)[2] if not p.is_error]
    assert [w.path for w in warns] == ["space.model.mhc_tau"] and "(gpt)" in warns[0].message
    # baseline = true enqueues the base preset's own values: a choice list without the base value would
    # make Optuna raise mid-run; it is an error with the key and line before anything starts
    f.write_text(GOOD.replace("[space]", "baseline = true\n\n[space]") + '"train.max_steps" = { choice = [20000] }\n')
    _, qs, problems = load_study(f)
    errs = [p for p in problems if p.is_error]
    assert [e.path for e in errs] == ["space.train.max_steps"] and "not one of the choices" in errs[0].message
    assert errs[0].line is not None
    f.write_text(GOOD.replace("[space]", "baseline = true\n\n[space]") + '"train.max_steps" = { choice = [20000, %d] }\n'
                 % qs.train.max_steps)
    assert not [p for p in load_study(f)[2] if p.is_error]
    # a baseline outside a range runs all the same (Optuna only warned, in a raw Python warning at run
    # time): validate says so, with the key and line
    w0 = qs.schedule.warmup_steps
    f.write_text(GOOD.replace("[space]", "baseline = true\n\n[space]")
                 + f'"schedule.warmup_steps" = {{ int = [{w0 + 1}, {w0 + 5}] }}\n')
    problems = load_study(f)[2]
    warns = [p for p in problems if p.path == "space.schedule.warmup_steps"]
    assert not [p for p in problems if p.is_error] and len(warns) == 1 and warns[0].line is not None
    assert f"schedule.warmup_steps = {w0} lies outside [{w0 + 1}, {w0 + 5}]" in warns[0].message


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_shipped_studies_validate_and_match_their_schema(path):
    spec, base, problems = load_study(path)
    assert [p for p in problems if p.is_error] == [], problems
    assert base is not None and spec.source == path
    schema = json.loads((STUDIES / "tuilm-study.schema.json").read_text())
    jsonschema.validate(tomllib.loads(path.read_text()), schema)
    assert path.read_text().startswith("#:schema ./tuilm-study.schema.json")


def test_shipped_studies_cover_the_three_documents():
    names = {p.stem: parse(p.read_text(), p)[0] for p in SHIPPED}
    q = names["quickstart-lr"]
    assert {d.key for d in q.space} == {"optim.lr", "schedule.warmup_steps", "optim.weight_decay"}
    m = names["mhc-frozen"]
    assert m.seeds == 3 and {d.key for d in m.space} >= {"model.mhc_h_res_init", "model.mhc_tau", "model.mhc_gate",
                                                         "model.mhc_mode"}
    lucky = names["mhc-lucky"]  # seed 000's lucky run: its own metric, enough seeds for the flag to mean something
    assert (lucky.objective, lucky.direction, lucky.seeds) == ("stream_similarity", "minimize", 6)
    assert {d.key for d in lucky.space} == {"model.mhc_h_res_init", "model.mhc_tau"}
    g = names["golf-lr-wd"]
    assert {d.key for d in g.space} == {"optim.matrix_lr", "optim.weight_decay", "train.total_batch_size",
                                        "model.n_layers"}


def test_generated_schema_is_in_sync_and_rejects_bad_files():
    on_disk = json.loads((STUDIES / "tuilm-study.schema.json").read_text())
    assert on_disk == json.loads(json.dumps(json_schema()))
    assert set(on_disk["properties"]["study"]["properties"]) == {f.key for f in STUDY_FIELDS}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"study": {"base": "x"}, "space": {"optim.lrr": {"log": [1, 2]}}}, on_disk)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"study": {"base": "x", "trials": "3"}, "space": {}}, on_disk)


def test_cli_validate_exit_codes(tmp_path, capsys):
    f = tmp_path / "s.toml"
    f.write_text(GOOD)
    with pytest.raises(SystemExit) as e:
        main(["study", "validate", str(f)])
    assert e.value.code == 0 and "ok" in capsys.readouterr().out
    f.write_text(GOOD.replace('"optim.lr"', '"optim.lrr"'))
    with pytest.raises(SystemExit) as e:
        main(["study", "validate", str(f)])
    err = capsys.readouterr().err
    assert e.value.code == 1 and f"{f}:7" in err and "did you mean optim.lr?" in err and "Traceback" not in err
    with pytest.raises(SystemExit) as e:
        main(["study", "validate", str(tmp_path / "missing.toml")])
    err = capsys.readouterr().err
    assert e.value.code == 1 and "no such study file" in err
    f.write_text("[study\n")
    with pytest.raises(SystemExit) as e:
        main(["study", "validate", str(f)])
    assert e.value.code == 1 and "TOML syntax error" in capsys.readouterr().err


def test_cli_study_commands_on_a_missing_study_say_so(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TUILM_RUNS_DIR", str(tmp_path / "runs"))
    for argv in (["study", "show", "nope"], ["study", "stop", "nope"], ["study", "worker", "nope"]):
        with pytest.raises(SystemExit) as e:
            main(argv)
        err = capsys.readouterr().err
        assert e.value.code == 1 and "no study 'nope'" in err and "Traceback" not in err, argv
    with pytest.raises(SystemExit) as e:
        main(["study", "list"])
    assert e.value.code == 0 and "no studies" in capsys.readouterr().out
    with pytest.raises(SystemExit) as e:
        main(["study", "show", "x", "--storage", "nonsense"])
    assert e.value.code == 2 and "expected a database URL" in capsys.readouterr().err
    # SQLite files a reading command would have created empty (Optuna then reports an internal error)
    (tmp_path / "afolder").mkdir()
    for db, why in (("new.db", "no such file"), ("nodir/x.db", "no such folder"), ("afolder", "is a folder")):
        with pytest.raises(SystemExit) as e:
            main(["study", "list", "--storage", f"sqlite:///{tmp_path / db}"])
        err = capsys.readouterr().err
        assert e.value.code == 2 and why in err and "Traceback" not in err, db
    assert not (tmp_path / "new.db").exists()


def test_a_postgresql_url_without_its_driver_says_which_to_install(tmp_path, monkeypatch, capsys):
    import sys

    monkeypatch.setitem(sys.modules, "psycopg2", None)  # as on a machine without it: import fails
    with pytest.raises(SystemExit) as e:
        main(["study", "list", "--storage", "postgresql://u:secret@nohost/db"])
    err = capsys.readouterr().err
    assert e.value.code == 1 and "pip install psycopg2-binary" in err and "secret" not in err, err


def test_readme_study_reference_is_in_sync():
    from tuiLM.study.spec import reference_markdown

    from .conftest import ROOT

    assert reference_markdown() in (ROOT / "README.md").read_text()


def test_invalid_or_over_budget_configurations_fail_without_training(tmp_path):
    """A sampled configuration is validated and estimated first: told to Optuna as failed, with the
    reason, and no run directory or trainer is made for it."""
    import optuna

    from tuiLM.study.engine import StudyEngine

    from .conftest import TINY_GPT, make_preset

    base = make_preset({**TINY_GPT, "model.d_model": 32})
    text = ('[study]\nname = "bad"\nbase = "quickstart"\ntrials = 3\nsampler = "grid"\n[space]\n'
            '"model.n_heads" = { choice = [3, 5] }\n')
    spec, problems = parse(text)
    assert not [p for p in problems if p.is_error]
    said: list[str] = []
    engine = StudyEngine(spec, base, root=tmp_path / "runs", say=said.append, poll_s=0.01)
    engine.open()
    counts = engine.run()
    assert (counts.failed, counts.complete) == (2, 0)
    trials = engine.study.get_trials()
    assert sorted(t.params["model.n_heads"] for t in trials) == [3, 5]  # each grid point once, then done
    assert all(t.state == optuna.trial.TrialState.FAIL for t in trials)
    assert all("model.d_model" in t.user_attrs["fail_reason"] and "divisible" in t.user_attrs["fail_reason"]
               for t in trials), [t.user_attrs for t in trials]
    assert not [p for p in (tmp_path / "runs").iterdir() if p.name != "studies"]  # no run was made
    assert any("failed before training" in s for s in said)
    # over the memory budget: the same, with the estimate in the reason
    text = ('[study]\nname = "big"\nbase = "quickstart"\ntrials = 1\nbudget_gib = 0.0001\n[space]\n'
            '"model.d_model" = { choice = [64] }\n')
    spec, _ = parse(text)
    engine = StudyEngine(spec, base, root=tmp_path / "runs", say=said.append, poll_s=0.01)
    engine.open()
    assert engine.run().failed == 1
    reason = engine.study.get_trials()[0].user_attrs["fail_reason"]
    assert reason.startswith("over budget: estimate") and "> 0.0001 GiB" in reason
    assert not [p for p in (tmp_path / "runs").iterdir() if p.name != "studies"]


def test_a_resume_that_fails_before_its_run_start_fails_the_trial_with_its_reason(tmp_path):
    """A stopped trial whose checkpoint was then damaged: the resumed trainer fails before its run_start,
    keeps the run's run_end(stopped) and logs why. The controller read that old run_end as the new
    attempt's: "was stopped; it resumes when the study is run again", at every run, and never the
    reason. Now the earlier attempt's end is caught up before the spawn and the trial fails, saying why."""
    import subprocess
    import sys

    import optuna

    from tuiLM.events import EventWriter
    from tuiLM.reader import EventTail
    from tuiLM.study.engine import Job, SeedRun, StudyEngine

    from .conftest import make_preset

    spec, _ = parse(GOOD)
    said: list[str] = []
    engine = StudyEngine(spec, make_preset(), root=tmp_path / "runs", say=said.append, poll_s=0.01)
    engine.open()
    run_dir = tmp_path / "runs" / "t0"
    run_dir.mkdir(parents=True)
    with EventWriter(run_dir / "events.jsonl") as w:
        w.write("run_start", step=0)
        w.write("eval", step=40, tokens=1, val_loss=2.0, val_bpb=1.5)
        w.write("run_end", step=46, status="stopped", reason="stopped by SIGTERM")
    job = Job(engine.study.ask(), {})
    run = SeedRun(0, run_dir, None, EventTail(run_dir / "events.jsonl"))
    engine._catch_up(job, run)  # what _start_seed and _on_died do before they spawn a resume
    with EventWriter(run_dir / "events.jsonl") as w:  # the resumed trainer, failing before its run_start
        w.write("log", level="error", message="step-0000046.pt: corrupt checkpoint", step=0)
    run.proc = subprocess.Popen([sys.executable, "-c", "raise SystemExit(1)"])
    run.proc.wait()
    job.current = run
    engine.jobs.append(job)
    engine._poll(job)
    trial = engine.study.get_trials()[0]
    assert trial.state == optuna.trial.TrialState.FAIL, said
    assert trial.user_attrs["fail_reason"] == "t0 could not resume: step-0000046.pt: corrupt checkpoint"
    assert not [x for x in said if "was stopped" in x], said


def test_a_died_trainer_that_cannot_be_resumed_fails_its_trial_not_the_study(tmp_path):
    """The controller's resume of a dead trainer was unguarded: a run someone had resumed by hand (its
    lock held) or a folder that can no longer start a trainer raised out of the study's loop."""
    import os

    import optuna

    from tuiLM.events import EventWriter
    from tuiLM.launch import create_run
    from tuiLM.ownership import acquire_run_lock
    from tuiLM.reader import EventTail
    from tuiLM.study.engine import Job, SeedRun, StudyEngine

    from .conftest import TINY_GPT, make_preset

    spec, _ = parse(GOOD)
    said: list[str] = []
    engine = StudyEngine(spec, make_preset(), root=tmp_path / "runs", say=said.append, poll_s=0.01)
    engine.open()
    run_dir = create_run(make_preset(TINY_GPT), name="t0", root=tmp_path / "runs")
    with EventWriter(run_dir / "events.jsonl") as w:
        w.write("run_start", step=0)
    job = Job(engine.study.ask(), {})
    engine.jobs.append(job)
    job.current = run = SeedRun(0, run_dir, None, EventTail(run_dir / "events.jsonl"))
    fd = acquire_run_lock(run_dir)  # resumed by hand meanwhile: its trainer owns the run
    try:
        engine._on_died(job, run)
        assert run.proc is None and engine._alive(run)  # watched through the lock, not restarted
        assert "watching it" in said[-1] and job in engine.jobs
    finally:
        os.close(fd)
    (run_dir / "preset.toml").unlink()  # a trainer can no longer start there
    engine._on_died(job, run)
    trial = engine.study.get_trials()[0]
    assert trial.state == optuna.trial.TrialState.FAIL
    assert trial.user_attrs["fail_reason"].startswith(f"cannot resume {run_dir.name}: ")


def test_a_seed_whose_run_folder_is_gone_starts_again_and_says_so(tmp_path, monkeypatch):
    """A trial whose seed run folder was moved or deleted: the worker started that seed from step 0 in
    a new run without a word."""
    from tuiLM import launch
    from tuiLM.study.engine import Job, StudyEngine

    from .conftest import TINY_GPT, make_preset

    spawned: list = []
    monkeypatch.setattr(launch, "spawn_trainer", lambda run_dir, **kw: spawned.append((run_dir, kw)) or None)
    spec, _ = parse(GOOD)
    said: list[str] = []
    engine = StudyEngine(spec, make_preset(TINY_GPT), root=tmp_path / "runs", say=said.append, poll_s=0.01)
    engine.open()
    job = Job(engine.study.ask(), {"optim.lr": 1e-3, "model.n_layers": 2, "model.activation": "gelu",
                                   "optim.weight_decay": 0.1}, runs={0: "s-t000-s0-gone"})
    engine._start_seed(job, 0)
    assert any("seed 0's run s-t000-s0-gone is not in" in x and "starts again from step 0" in x for x in said), said
    assert job.runs[0] != "s-t000-s0-gone" and spawned and spawned[0][1]["resume"] is False


def test_a_pruned_trial_is_told_with_the_step_its_pruner_judged_and_where_its_run_stopped(tmp_path):
    """The run output said "pruned at step 21" while `study show` said "at step 20" (the judged eval)."""
    from tuiLM.reader import EventTail
    from tuiLM.study.engine import Job, SeedRun, StudyEngine

    from .conftest import make_preset

    spec, _ = parse(GOOD)
    said: list[str] = []
    engine = StudyEngine(spec, make_preset(), root=tmp_path / "runs", say=said.append, poll_s=0.01)
    engine.open()
    job = Job(engine.study.ask(), {})
    engine.jobs.append(job)
    job.pruning = "pruned by the median pruner at step 20 (val_bpb 7.5965)"
    run = SeedRun(0, tmp_path / "t1", None, EventTail(tmp_path / "t1" / "events.jsonl"), last_step=21)
    engine._on_end(job, run, {"status": "pruned", "step": 21})
    assert said[-1] == ("trial 0: pruned by the median pruner at step 20 (val_bpb 7.5965); its run stopped "
                        "at step 21 (t1)"), said


def test_a_trial_its_pruner_stops_on_evaluations_found_at_resume_is_pruned_not_resumed(tmp_path, monkeypatch):
    """Evaluations a killed controller never reported are reported when the seed is resumed; when the
    pruner then stops the trial, no trainer is spawned (it used to train to max_steps, the verdict
    already given, and be told pruned only at its end)."""
    import optuna

    from tuiLM import launch
    from tuiLM.events import EventWriter
    from tuiLM.launch import create_run
    from tuiLM.study.engine import Job, StudyEngine

    from .conftest import TINY_GPT, make_preset

    spawned: list = []
    monkeypatch.setattr(launch, "spawn_trainer", lambda run_dir, **kw: spawned.append(run_dir))
    spec, _ = parse(GOOD)
    said: list[str] = []
    engine = StudyEngine(spec, make_preset({**TINY_GPT, "train.max_steps": 100}), root=tmp_path / "runs",
                         say=said.append, poll_s=0.01)
    engine.open()
    run_dir = create_run(make_preset(TINY_GPT), name="s-t000-s0", root=tmp_path / "runs")
    with EventWriter(run_dir / "events.jsonl") as w:  # the trainer outlived its controller, then died
        w.write("run_start", step=0)
        w.write("eval", step=20, tokens=1, val_loss=9.0, val_bpb=9.0)
    job = Job(engine.study.ask(), {}, runs={0: run_dir.name})
    job.trial.should_prune = lambda: True  # (the pruner's verdict on the value reported at step 20)
    engine.jobs.append(job)
    engine._start_seed(job, 0)
    trial = engine.study.get_trials()[0]
    assert trial.state == optuna.trial.TrialState.PRUNED and trial.intermediate_values == {20: 9.0}
    assert not spawned and job.current is None, said


def test_a_controller_is_alive_only_as_the_process_that_recorded_it():
    """Recovery skipped a trial whose recorded controller pid now named any process with "tuilm" in its
    command line (one of the study's own trainers, after a pid reuse). The pid's start time decides."""
    import subprocess
    import time
    from pathlib import Path

    from tuiLM.ownership import controller_alive as _controller_alive, process_start_time

    proc = subprocess.Popen(["sleep", "30"])
    try:
        started = process_start_time(proc.pid)
        assert isinstance(started, int)
        assert _controller_alive(proc.pid, started)
        assert not _controller_alive(proc.pid, started - 1)  # the pid now names another process
        proc.kill()  # killed, not yet reaped by its parent: a zombie is no controller
        deadline = time.monotonic() + 10
        while "State:\tZ" not in Path(f"/proc/{proc.pid}/status").read_text() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert not _controller_alive(proc.pid, started)
    finally:
        proc.kill()
        proc.wait()
    assert not _controller_alive(proc.pid, started)


def test_pruners_start_at_the_first_eval_or_after_prune_after():
    from tuiLM.study.engine import make_pruner

    from .conftest import make_preset

    base = make_preset({"eval.every": 20, "train.max_steps": 180})
    for pruner, after, want in (("asha", 0, 20), ("asha", 60, 60), ("hyperband", 60, 60)):
        spec, _ = parse(GOOD.replace("trials = 4", f'trials = 4\npruner = "{pruner}"\nprune_after = {after}'))
        p = make_pruner(spec, base)
        assert p._min_resource == want, (pruner, after)
    spec, _ = parse(GOOD.replace("trials = 4", 'trials = 4\npruner = "median"\nprune_after = 60'))
    assert make_pruner(spec, base)._n_warmup_steps == 60


def test_a_study_whose_data_is_not_here_starts_no_trial(tmp_path, monkeypatch, capsys):
    """Every trial would fail at its first step (a reviewer's study burned all of them)."""
    from .conftest import PRESETS

    monkeypatch.setenv("TUILM_RUNS_DIR", str(tmp_path / "runs"))
    study = PRESETS / "studies" / "quickstart-lr.toml"
    with pytest.raises(SystemExit) as e:
        main(["study", "run", str(study), "--name", "nodata", "--set", "data.source=text",
              "--set", "data.path=/nonexistent/corpus.txt"])
    err = capsys.readouterr().err
    assert e.value.code == 1 and "no such file or folder here: no trial was started" in err, err
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").glob("*/preset.toml"))


def test_validate_points_a_study_file_to_study_validate_which_warns_of_missing_data(tmp_path, capsys, monkeypatch):
    from .conftest import PRESETS

    study = PRESETS / "studies" / "quickstart-lr.toml"
    with pytest.raises(SystemExit) as e:
        main(["validate", str(study)])
    assert e.value.code == 1 and "is a study file: tuilm study validate" in capsys.readouterr().err
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as e:
        main(["study", "validate", str(study), "--set", "data.val_path=nowhere.txt"])
    out, err = capsys.readouterr()
    assert "data.val_path: nowhere.txt: no such file or folder on this machine" in err
    assert "12 trials x 1 seed = up to 12 runs" in out.replace("\n", " ") and "1 warning)" in out
    with pytest.raises(SystemExit):
        main(["study", "show", "a b"])
    assert "bad study name 'a b'" in capsys.readouterr().err


def test_a_model_diagnostic_can_be_the_objective_where_the_model_writes_it(tmp_path):
    """Seed 000's question is about stream_similarity: a study can optimise and judge it, with the
    direction known for the mHC diagnostics and asked for others; a base that writes no diag events
    (a plain GPT, or diag.every = 0) is an error, not a study whose every trial fails."""
    f = tmp_path / "s.toml"
    head = '[study]\nbase = "mhc-static"\n'
    space = '\n[space]\n"optim.lr" = { log = [1e-4, 1e-2] }\n'
    f.write_text(head + 'objective = "stream_similarity"\n' + space)
    spec, _, problems = load_study(f)
    assert [p for p in problems if p.is_error] == [] and spec.diagnostic and spec.direction == "minimize"
    f.write_text(head + 'objective = "gate_value"\ndirection = "maximize"\n' + space)
    spec, _, problems = load_study(f)
    assert [p for p in problems if p.is_error] == [] and spec.direction == "maximize"
    f.write_text(head.replace("mhc-static", "quickstart") + 'objective = "stream_similarity"\n' + space)
    (err,) = [p for p in load_study(f)[2] if p.is_error]
    assert err.path == "study.objective" and "does not write" in err.message and err.line == 3
    f.write_text(head + 'objective = "stream_similarity"\n' + space + '\n[set]\n"diag.every" = 0\n')
    (err,) = [p for p in load_study(f)[2] if p.is_error]
    assert "diag.every = 0" in err.message
    spec, _ = parse(GOOD)
    assert not spec.diagnostic and spec.direction == "minimize"
    spec, problems = parse(GOOD.replace('trials = 4', 'trials = 4\ndirection = "maximize"'))
    (warn,) = problems
    assert spec.direction == "maximize" and not warn.is_error and "searches for the worst" in warn.message


def test_ddp_trials_get_gpus_of_their_own(tmp_path, monkeypatch):
    """--nproc N: a trial's N GPUs are ones no running trial holds (a fixed rotation gave "0,0" on one GPU
    and let a new trial take GPUs a running one still had); more than the machine has is refused."""
    from types import SimpleNamespace

    from tuiLM.errors import UserError
    from tuiLM.study import engine as eng

    f = tmp_path / "s.toml"
    f.write_text(GOOD)
    spec, base, _ = load_study(f)
    base = base.with_values({"system.device": "cuda"})
    monkeypatch.setattr(eng, "visible_gpus", lambda: ["0", "1", "2", "3"])
    e = eng.StudyEngine(spec, base, root=tmp_path, parallel=2, nproc=2)
    assert e._free_gpus() == ["0", "1", "2", "3"]
    e.jobs = [SimpleNamespace(gpu="2,3")]  # a running trial holds 2 and 3 (it finished after 0,1's did)
    assert e._free_gpus() == ["0", "1"]
    e.jobs.append(SimpleNamespace(gpu="0,1"))
    assert e._free_gpus() == []
    with pytest.raises(UserError, match="needs 5 GPUs of its own, this machine shows 4"):
        eng.StudyEngine(spec, base, root=tmp_path, nproc=5)



def test_validation_warns_of_the_configurations_the_space_reaches_that_cannot_train(tmp_path):
    """warmup_steps up to 60 over max_steps 30 passed validation, then trial 2 failed before training.
    Each dimension's ends are checked with the base's other values, then every combination of ends."""
    f = tmp_path / "s.toml"
    f.write_text('[study]\nname = "s"\nbase = "quickstart"\ntrials = 4\n[set]\n"train.max_steps" = 30\n[space]\n'
                 '"schedule.warmup_steps" = { int = [0, 60] }\n"optim.lr" = { log = [1e-4, 1e-2] }\n')
    warns = [p for p in load_study(f)[2] if not p.is_error]
    assert [(p.path, p.line) for p in warns] == [("space.schedule.warmup_steps", 8)]
    assert "warmup_steps = 31-60 (30 of its 61 values) cannot train" in warns[0].message, warns[0].message
    assert "exceeds max_steps (30)" in warns[0].message
    # an integer range whose ends train but whose middle does not: every value of a small one is tried
    f.write_text('[study]\nname = "s"\nbase = "quickstart"\ntrials = 4\n[space]\n'
                 '"model.n_heads" = { int = [1, 64] }\n"optim.lr" = { log = [1e-4, 1e-2] }\n')
    (warn,) = [p for p in load_study(f)[2] if not p.is_error]
    assert warn.path == "space.model.n_heads" and "n_heads = 3, 5-7, 9-15, 17-31, 33-63 (57 of its 64 values) " \
        "cannot train" in warn.message, warn.message
    # only a combination fails: d_model 136 works with 4 heads, 8 heads with 128, not 136 with 8 (head_dim 17)
    f.write_text('[study]\nname = "s"\nbase = "quickstart"\ntrials = 4\n[space]\n'
                 '"model.d_model" = { choice = [128, 136] }\n"model.n_heads" = { choice = [4, 8] }\n')
    warns = [p for p in load_study(f)[2] if not p.is_error]
    assert len(warns) == 1 and warns[0].path == "space", warns
    assert "model.d_model = 136, model.n_heads = 8 cannot train" in warns[0].message
    # spaces that always train: nothing to say (the base's d_model 128 and warmup 20 are never used:
    # each is a dimension of the space, so only its own values are reachable)
    for text in (GOOD, '[study]\nname = "s"\nbase = "quickstart"\ntrials = 4\n[space]\n'
                       '"model.d_model" = { choice = [96, 192] }\n"model.n_heads" = { choice = [3, 6] }\n'
                       '"train.max_steps" = { int = [10, 15] }\n"schedule.warmup_steps" = { int = [0, 5] }\n'):
        f.write_text(text)
        assert [p for p in load_study(f)[2] if "cannot train" in p.message] == []


def test_errors_are_blamed_where_they_were_written_and_said_once(tmp_path):
    f = tmp_path / "m.toml"
    f.write_text('[study]\nname = "s"\nbase = "quickstart"\nobjective = "val_bpbb"\ntrials = 4\n[space]\n'
                 '"model.activation" = { choice = [] }\n"train.max_steps" = { int = [10, 20] }\n[set]\n'
                 '"eval.every" = -5\n')
    probs = load_study(f)[2]
    where = {(p.path, p.line): p.message for p in probs}
    assert "out of range" in where[("set.eval.every", 10)]  # the [set] line, not study.base with "error: error"
    assert [p.path for p in probs if p.path == "study.objective"] == ["study.objective"]  # one error, not two
    assert where[("space.model.activation", 7)] == "choice needs a list of at least one value"
    assert not [p for p in probs if "cannot train" in p.message]  # the base is broken: no corner repeats it
    f.write_text(GOOD)
    probs = load_study(f, ["train.max_steps=-3"])[2]
    assert [(p.path, p.line) for p in probs if p.is_error] == [("--set train.max_steps", None)]


def test_a_controller_whose_trial_another_failed_for_silence_drops_it(tmp_path):
    """A controller cut off from the storage longer than storage.STALE_S: another one failed its trial
    and queued it again. Its next heartbeat finds the trial finished: it drops the trial (stopping its
    trainer) instead of ending in Optuna's "cannot update a finished trial" traceback."""
    import optuna

    from tuiLM.study.engine import Job, StudyEngine

    from .conftest import make_preset

    spec, _ = parse(GOOD)
    said: list[str] = []
    engine = StudyEngine(spec, make_preset(), root=tmp_path / "runs", say=said.append, poll_s=0.01)
    engine.open()
    trial = engine.study.ask(spec.distributions())
    engine.jobs.append(Job(trial, dict(trial.params)))
    engine._beat(force=True)
    assert engine.jobs and isinstance(engine.study.get_trials()[0].user_attrs["beat"], float)
    engine.study.tell(trial.number, state=optuna.trial.TrialState.FAIL)  # (as the other controller does)
    engine._beat(force=True)
    assert not engine.jobs and any("another controller failed it" in s for s in said), said
    # the same when the first write after the cut is an evaluation's report (the loop polls before it beats)
    trial = engine.study.ask(spec.distributions())
    job = Job(trial, dict(trial.params))
    engine.jobs.append(job)
    engine.study.tell(trial.number, state=optuna.trial.TrialState.FAIL)
    engine._guarded(job, lambda j: j.trial.report(1.0, 5))
    assert not engine.jobs


def test_a_retry_of_a_silent_machines_trial_is_never_surplus(tmp_path, monkeypatch):
    """Target 3: trials 0 and 1 done, trial 2 failed for silence and queued again as trial 3, and a
    worker asked trial 4 at the moment another took the retry. The surplus check counted {0, 1, 3, 4}
    and marked the retry surplus: trial 2's configuration never ran. A retry is never surplus."""
    import optuna

    from tuiLM.study import storage as st
    from tuiLM.study.engine import StudyEngine

    from .conftest import make_preset

    spec, _ = parse(GOOD)
    engine = StudyEngine(spec, make_preset(), root=tmp_path / "runs", trials=3, say=lambda s: None, poll_s=0.01)
    engine.open()
    study, dists = engine.study, spec.distributions()
    for _ in range(2):
        study.tell(study.ask(dists), 1.0)
    gone = study.ask(dists)
    study.tell(gone, state=optuna.trial.TrialState.FAIL)
    study.enqueue_trial(dict(gone.params), user_attrs={"retry_of": gone.number})  # trial 3
    ask = study.ask

    def ask_as_another_worker_asks_too(*args, **kwargs):
        trial = ask(*args, **kwargs)
        ask(dists)  # trial 4, asked by another worker between this ask and its surplus check
        return trial

    monkeypatch.setattr(study, "ask", ask_as_another_worker_asks_too)
    monkeypatch.setattr(engine, "_check_config", lambda params: "stop here")  # (no training needed)
    engine._start_trial()
    trials = study.get_trials()
    assert trials[3].user_attrs["retry_of"] == 2 and not trials[3].user_attrs.get("surplus")
    assert st.retried(trials) == {2: 3} and [t.number for t in st.counted(trials)] == [0, 1, 3, 4]


def test_a_trial_pruned_as_the_study_stops_is_told_pruned_not_left_interrupted(tmp_path):
    """`study stop` just as the pruner stopped a trial: its run ended pruned, but the controller left it
    RUNNING in Optuna, and `study show` and `study list` read "interrupted" until the next run. The stop
    now tells it pruned; and a trial whose latest run ended is never "interrupted" (nothing was killed)."""
    import optuna

    from tuiLM.events import EventWriter
    from tuiLM.reader import EventTail
    from tuiLM.runs import EVENTS
    from tuiLM.study.engine import Job, SeedRun, StudyEngine
    from tuiLM.study.report import trial_rows

    from .conftest import make_preset

    spec, _ = parse(GOOD)
    said: list[str] = []
    engine = StudyEngine(spec, make_preset(), root=tmp_path / "runs", say=said.append, poll_s=0.01)
    engine.open()
    trial = engine.study.ask(spec.distributions())
    run = tmp_path / "runs" / "good-t000-s0"
    run.mkdir(parents=True)
    with EventWriter(run / EVENTS) as w:
        w.write("run_start", step=0, max_steps=100)
        w.write("train", step=50, loss=3.0)
        w.write("run_end", status="pruned", step=50, reason="pruned by the median pruner at step 50")
    trial.set_user_attr("runs", [run.name])
    assert trial_rows(engine.study, tmp_path / "runs")[0]["state"] == "running"
    row = trial_rows(engine.study, tmp_path / "runs")[0]
    assert row["stopped"] and not row["interrupted"]  # (ended: not a killed controller)
    job = Job(trial, dict(trial.params), pruning="pruned by the median pruner at step 50")
    job.current = SeedRun(0, run, None, EventTail(run / EVENTS))
    engine.jobs = [job]
    engine.request_stop("tuilm study stop")
    engine.stop_all(timeout=2)
    assert engine.study.get_trials()[0].state == optuna.trial.TrialState.PRUNED
    assert any("pruned by the median pruner at step 50" in s for s in said), said

"""Preset schema, loading, overrides and validation: every rule has a failing and a passing case."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tuiLM.config.load import PresetError, load, load_text, parse_override, resolve
from tuiLM.config.schema import BY_PATH, FIELDS, SECTIONS
from tuiLM.config.validate import validate

from .conftest import PRESETS, ROOT, make_preset


def problems_for(changes: dict) -> list:
    return validate(make_preset(changes))


def paths(problems, level="error") -> set[str]:
    return {p.path for p in problems if p.level == level}


# -- the schema itself ---------------------------------------------------------------------------

def test_every_field_has_type_default_and_help():
    for f in FIELDS:
        assert f.section in SECTIONS, f.path
        assert f.help, f.path
        assert isinstance(f.default, f.type), f"{f.path}: default {f.default!r} is not {f.type.__name__}"
        if f.choices:
            assert f.default in f.choices, f.path


def test_defaults_are_valid():
    assert [p for p in validate(make_preset()) if p.is_error] == []


def test_every_range_rejects_out_of_range_values_and_accepts_the_default():
    for f in FIELDS:
        if f.choices:
            bad = "not-a-choice"
        elif f.type in (int, float) and f.min is not None:
            bad = f.min - 1 if not f.min_exclusive else f.min
            if f.type is int:
                bad = int(bad)
        elif f.type in (int, float) and f.max is not None:
            bad = f.max if f.max_exclusive else f.max + 1
        else:
            continue
        assert f.path in paths(problems_for({f.path: bad})), f"{f.path}={bad!r} should be rejected"
        assert f.path not in paths(problems_for({})), f.path


# -- cross-field rules: failing and passing case each ---------------------------------------------

@pytest.mark.parametrize("bad,good,path", [
    ({"model.d_model": 250, "model.n_heads": 4}, {"model.d_model": 256, "model.n_heads": 4}, "model.d_model"),
    ({"model.n_heads": 8, "model.n_kv_heads": 3}, {"model.n_heads": 8, "model.n_kv_heads": 4}, "model.n_kv_heads"),
    ({"model.d_model": 36, "model.n_heads": 4, "model.pos": "rope"},  # head_dim 9
     {"model.d_model": 36, "model.n_heads": 4, "model.pos": "learned"}, "model.n_heads"),
    ({"model.arch": "bdh", "model.d_model": 10, "model.n_heads": 4, "model.bdh_mult": 3},
     {"model.arch": "bdh", "model.d_model": 10, "model.n_heads": 4, "model.bdh_mult": 4}, "model.bdh_mult"),
    ({"model.arch": "bdh", "model.d_model": 6, "model.n_heads": 2, "model.bdh_mult": 1},  # N = 3, odd
     {"model.arch": "bdh", "model.d_model": 6, "model.n_heads": 2, "model.bdh_mult": 2}, "model.bdh_mult"),
    ({"model.dropout": 1.0}, {"model.dropout": 0.0}, "model.dropout"),
    ({"model.dropout": -0.1}, {"model.dropout": 0.99}, "model.dropout"),
    ({"data.train_ratio": 1.0}, {"data.train_ratio": 0.9}, "data.train_ratio"),
    ({"data.train_ratio": 0.0}, {"data.train_ratio": 0.01}, "data.train_ratio"),
    ({"train.total_batch_size": 1000, "train.device_batch_size": 4, "data.seq_len": 64},
     {"train.total_batch_size": 1024, "train.device_batch_size": 4, "data.seq_len": 64}, "train.total_batch_size"),
    ({"schedule.warmdown_steps": 200, "train.max_steps": 100},
     {"schedule.warmdown_steps": 100, "train.max_steps": 100}, "schedule.warmdown_steps"),
    ({"schedule.decay": "warmdown", "schedule.warmdown_steps": 0},
     {"schedule.decay": "warmdown", "schedule.warmdown_steps": 10}, "schedule.warmdown_steps"),
    ({"schedule.warmup_steps": 200, "train.max_steps": 100},
     {"schedule.warmup_steps": 100, "train.max_steps": 100}, "schedule.warmup_steps"),
    ({"checkpoint.every": -1}, {"checkpoint.every": 0}, "checkpoint.every"),
    ({"eval.every": -5}, {"eval.every": 0}, "eval.every"),
    ({"sample.every": -1}, {"sample.every": 10}, "sample.every"),
    ({"diag.every": -1}, {"diag.every": 0}, "diag.every"),
    ({"model.bigram_buckets": 1}, {"model.bigram_buckets": 2}, "model.bigram_buckets"),
    ({"eval.stride": 300, "data.seq_len": 256}, {"eval.stride": 256, "data.seq_len": 256}, "eval.stride"),
    ({"data.source": "text", "data.path": ""}, {"data.source": "text", "data.path": "corpus.txt"}, "data.path"),
    ({"data.tokenizer": "sentencepiece"}, {"data.tokenizer": "sentencepiece", "data.tokenizer_model": "m.model"},
     "data.tokenizer_model"),
    ({"data.source": "shards", "data.path": "x_*.bin"},
     {"data.source": "shards", "data.path": "x_*.bin", "data.vocab_size": 1024}, "data.vocab_size"),
    ({"data.source": "shards", "data.path": "x_*.bin", "data.vocab_size": 1024, "data.tokenizer": "char"},
     {"data.source": "shards", "data.path": "x_*.bin", "data.vocab_size": 1024, "data.tokenizer": "byte"},
     "data.tokenizer"),
    ({"model.arch": "mhc", "model.golf_block": True}, {"model.arch": "mhc", "model.golf_block": False},
     "model.golf_block"),
    ({"system.device": "cpu", "system.dtype": "fp16"}, {"system.device": "cpu", "system.dtype": "bf16"},
     "system.dtype"),
])
def test_cross_field_rule(bad, good, path):
    assert path in paths(problems_for(bad)), f"{bad} should give an error at {path}"
    assert [p for p in problems_for(good) if p.is_error] == [], f"{good} should be valid"


def test_divisibility_message_names_both_values():
    (p,) = [p for p in problems_for({"model.d_model": 250}) if p.is_error]
    assert "250" in p.message and "n_heads (4)" in p.message


def test_bdh_ignores_gpt_head_dim_rules():
    # BDH splits bdh_mult*d_model across heads, not d_model: 250 % 4 != 0 is fine there.
    assert not [p for p in problems_for({"model.arch": "bdh", "model.d_model": 250, "model.n_heads": 5,
                                         "model.bdh_mult": 4}) if p.is_error]


# -- the mHC frozen-residual trap ------------------------------------------------------------------

@pytest.mark.parametrize("init,tau,frozen", [
    (-8.0, 0.05, True),   # the often-quoted reference default with the log's tau: 160
    (-3.0, 0.05, True),   # v3: 60
    (-5.0, 0.05, True),
    (-4.0, 0.2, False),   # exactly 20: on the edge, still trainable
    (-0.5, 0.1, False),   # v1: 5
    (-8.0, 1.0, False),   # -8 at tau 1 is trainable (diag ~0.999)
])
def test_frozen_residual_warning(init, tau, frozen):
    probs = problems_for({"model.arch": "mhc", "model.mhc_h_res_init": init, "model.mhc_tau": tau})
    warned = [p for p in probs if p.path == "model.mhc_h_res_init" and p.level == "warning"]
    assert bool(warned) == frozen
    if frozen:
        assert "frozen" in warned[0].message and "identity" in warned[0].message
    assert not [p for p in probs if p.is_error]  # a warning, never an error


def test_a_large_positive_init_warns_of_a_starved_diagonal_not_the_identity():
    """+900 / 0.001: Sinkhorn gives a zero diagonal (the run's H_res_diag_mean is 0.0), not I; the
    warning said "frozen at the identity". The sinkhorn of the model shows what the warning says."""
    import torch

    from tuiLM.models.mhc import sinkhorn

    probs = problems_for({"model.arch": "mhc", "model.mhc_h_res_init": 900.0, "model.mhc_tau": 0.001})
    (warned,) = [p for p in probs if p.path == "model.mhc_h_res_init" and p.level == "warning"]
    assert "zero diagonal" in warned.message and "identity" not in warned.message
    b = torch.full((4, 4), 30.0)  # (a ratio past 20 that float32 still holds)
    b.fill_diagonal_(0.0)
    b.requires_grad_(True)
    h = sinkhorn(b, 20)
    (h * torch.randn(4, 4)).sum().backward()
    assert h.diagonal().max() < 1e-12 and b.grad.diagonal().abs().max() < 1e-12


def test_frozen_warning_only_for_mhc():
    assert not problems_for({"model.arch": "gpt", "model.mhc_h_res_init": -8.0, "model.mhc_tau": 0.05})


# -- loading, overrides, suggestions, syntax errors ------------------------------------------------

def test_precedence_defaults_file_overrides(tmp_path):
    f = tmp_path / "p.toml"
    f.write_text("[model]\nd_model = 512\nn_heads = 8\n[train]\nmax_steps = 50\n")
    p, probs = load(f)
    assert (p.model.d_model, p.model.n_layers, p.train.max_steps) == (512, 4, 50)  # file over defaults
    p, probs = load(f, ["model.d_model=384", "train.max_steps=7", "optim.lr=1e-3", "run.name=x_y"])
    assert (p.model.d_model, p.train.max_steps, p.optim.lr, p.run.name) == (384, 7, 1e-3, "x_y")
    assert p.model.n_heads == 8  # file value survives where no override
    assert not [x for x in probs if x.is_error]


def test_a_run_name_that_run_would_refuse_is_an_error_and_a_missing_data_path_a_warning(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "corpus.txt").write_text("hello")
    f = tmp_path / "p.toml"
    f.write_text("[data]\nsource = 'text'\npath = 'corpus.txt'\n")
    _, probs = load(f, ["run.name=a b"])
    assert [(x.level, x.path) for x in probs] == [("error", "run.name")] and "letters, digits" in probs[0].message
    _, probs = load(f, ["data.path=nope/*.txt", "data.val_path=/nonexistent/val.txt"])
    assert sorted((x.level, x.path) for x in probs) == [("warning", "data.path"), ("warning", "data.val_path")]
    assert "nope/*.txt: no such file or folder on this machine" in str(probs)
    elsewhere = tmp_path / "other"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # a relative path is also looked up beside the preset, as `run` does
    assert load(f)[1] == []


def test_override_types():
    p, probs = resolve({}, ["model.tie_embeddings=false", "optim.lr=3", "sample.prompt=123",
                            'sample.prompt="quoted"'])
    assert p.model.tie_embeddings is False and p.optim.lr == 3.0 and isinstance(p.optim.lr, float)
    assert p.sample.prompt == "quoted"
    _, probs = resolve({}, ["train.max_steps=1.5", "model.qk_norm=maybe"])
    assert {x.path for x in probs} == {"train.max_steps", "model.qk_norm"}


@pytest.mark.parametrize("text", ["nokey", "model=3", "a.b.c=1", ".x=1"])
def test_malformed_override_is_a_usage_error(text):
    with pytest.raises(PresetError) as e:
        parse_override(text)
    assert e.value.exit_code == 2


@pytest.mark.parametrize("toml,path,hint", [
    ("[model]\nn_embd = 256\n", "model.n_embd", "model.d_model"),
    ("[model]\nd_modle = 256\n", "model.d_modle", "model.d_model"),
    ("[train]\nlr = 0.1\n", "train.lr", "optim.lr"),
    ("[trian]\nmax_steps = 1\n", "trian", "train"),
    ("[model]\nmlp_internal_dim_multiplier = 64\n", "model.mlp_internal_dim_multiplier", "model.bdh_mult"),
    ("[train]\nbatch_size = 16\n", "train.batch_size", "train.device_batch_size"),
])
def test_unknown_keys_suggest(toml, path, hint):
    _, probs = load_text(toml)
    (p,) = [p for p in probs if p.is_error]
    assert p.path == path and f"did you mean {hint}?" in p.message
    assert p.line == 2 or p.line == 1


def test_problem_names_key_path_and_line():
    _, probs = load_text("[run]\nname = 'x'\n\n[model]\nd_model = 250\nn_heads = 4\n")
    (p,) = [p for p in probs if p.is_error]
    assert (p.path, p.line) == ("model.d_model", 5)
    assert "model.d_model (line 5)" in str(p)


def test_type_errors_keep_going():
    _, probs = load_text("[model]\nd_model = 'wide'\nn_layers = 2.5\ndropout = true\n")
    assert paths(probs) == {"model.d_model", "model.n_layers", "model.dropout"}


@pytest.mark.parametrize("text,line", [
    ("[model]\nd_model = 256\nn_heads = = 4\n", 3),
    ("[model\nd_model = 1\n", 1),
    ("[run]\nname = 'x'\n[run]\nseed = 1\n", 3),
    ("[model]\nd_model = [1,\n", 2),
])
def test_toml_syntax_error_reports_file_line(tmp_path, text, line):
    f = tmp_path / "broken.toml"
    f.write_text(text)
    with pytest.raises(PresetError) as e:
        load(f)
    msg = str(e.value)
    assert msg.startswith(f"{f}:{line}") and "TOML syntax error" in msg


@pytest.mark.parametrize("text,said", [
    ('model.arch = "gpt"\n[model]\nd_model = 64\n', "[model] is declared twice: write each table once"),
    ("[run]\nname = 'x'\n[run]\nseed = 1\n", "[run] is declared twice"),
    ("[model]\nd_model = 64\nd_model = 32\n", "this key or table is already defined above"),
])
def test_toml_duplicates_are_said_in_a_presets_words(tmp_path, text, said):
    """tomllib says "Cannot declare ('model',) twice" (a dotted key above [model] makes the table too)."""
    f = tmp_path / "twice.toml"
    f.write_text(text)
    with pytest.raises(PresetError) as e:
        load(f)
    assert said in str(e.value) and "Cannot" not in str(e.value), str(e.value)


def test_a_path_that_does_not_exist_is_never_a_shipped_preset_of_the_same_name(tmp_path, monkeypatch):
    """`x`, `x.toml` and `presets/x.toml` name a known preset; a typo in any other folder is an error
    (it trained the shipped preset of that file name without a word)."""
    from tuiLM.config.presets import find_preset

    monkeypatch.chdir(tmp_path)  # no presets/ here: the shipped folder answers names
    for ref in ("quickstart", "quickstart.toml", "presets/quickstart.toml"):
        assert find_preset(ref).resolve() == (PRESETS / "quickstart.toml").resolve()
    for ref in ("/no/such/dir/quickstart.toml", "typo-dir/quickstart.toml", "../quickstart.toml"):
        with pytest.raises(PresetError, match="no such preset file; did you mean quickstart"):
            find_preset(ref)


def test_unreadable_files(tmp_path):
    with pytest.raises(PresetError, match="no such preset"):
        load(tmp_path / "missing.toml")
    with pytest.raises(PresetError, match="folder"):
        load(tmp_path)
    (tmp_path / "bin.toml").write_bytes(b"\xff\xfe\x00")
    with pytest.raises(PresetError, match="UTF-8"):
        load(tmp_path / "bin.toml")
    (tmp_path / "loop.toml").symlink_to(tmp_path / "loop.toml")
    with pytest.raises(PresetError, match="symbolic link to nothing"):
        load(tmp_path / "loop.toml")


def test_a_byte_order_mark_from_a_windows_editor_is_not_a_syntax_error(tmp_path):
    f = tmp_path / "bom.toml"
    f.write_bytes(b"\xef\xbb\xbf[model]\nd_model = 256\n")
    p, problems = load(f)
    assert p.model.d_model == 256 and not [x for x in problems if x.is_error]


# -- shipped presets -------------------------------------------------------------------------------

SHIPPED = sorted(PRESETS.glob("*.toml"))


def test_presets_are_shipped():
    names = {p.stem for p in SHIPPED}
    for n in ["quickstart", "audit-baseline", "mhc-v1", "mhc-v2", "mhc-v3", "mhc-v4a", "mhc-v4b", "mhc-v4c",
              "mhc-v4d", "mhc-v5", "mhc-static", "mhc-dynamic", "bdh-default", "bdh-8gb", "bdh-14gb",
              "bdh-24gb", "golf-8L-bigram", "golf-baseline"]:
        assert n in names


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_shipped_preset_is_valid(path):
    preset, probs = load(path)
    assert not [p for p in probs if p.is_error], probs
    assert preset.run.notes, "every shipped preset says what it is for"
    assert path.read_text().startswith("#:schema ./tuilm.schema.json")


def frozen(path):
    _, probs = load(PRESETS / path)
    return any(p.path == "model.mhc_h_res_init" and "frozen" in p.message for p in probs)


def test_mhc_log_presets_match_the_log_and_flag_the_trap():
    p = lambda n: load(PRESETS / f"{n}.toml")[0]  # noqa: E731
    v1, v2, v3, v5 = p("mhc-v1"), p("mhc-v2"), p("mhc-v3"), p("mhc-v5")
    assert (v1.model.mhc_h_res_init, v1.model.mhc_tau, v1.model.mhc_iters) == (-0.5, 0.1, 50)
    assert (v1.train.device_batch_size, v1.train.total_batch_size) == (4, 32768)
    assert (v2.train.device_batch_size, v2.train.total_batch_size) == (16, 131072)
    assert (v3.model.mhc_h_res_init, v3.model.mhc_tau, v3.model.mhc_iters) == (-3.0, 0.05, 20)
    assert v1.system.compile is False and v1.model.mhc_gate_noise == 0.0
    assert (v5.model.mhc_mode, v5.model.mhc_h_res_init, v5.model.mhc_gate_init, v5.model.n_layers) == \
        ("static", -8.0, 0.01, 20)
    assert [p(f"mhc-v4{x}").model.mhc_h_res_init for x in "abcd"] == [-3.0, -5.0, -4.0, -4.0]
    assert [p(f"mhc-v4{x}").model.mhc_tau for x in "abcd"] == [0.05, 0.05, 0.05, 0.2]
    assert frozen("mhc-v3.toml") and frozen("mhc-v5.toml")
    assert not frozen("mhc-v1.toml") and not frozen("mhc-v2.toml")
    assert not frozen("mhc-static.toml") and not frozen("mhc-dynamic.toml")


def test_audit_baseline_matches_the_audit():
    p, _ = load(PRESETS / "audit-baseline.toml")
    m, o = p.model, p.optim
    assert (m.n_layers, m.d_model, m.n_heads, m.d_ff, m.dropout) == (4, 256, 4, 1024, 0.1)
    assert (o.lr, o.weight_decay, o.beta1, o.beta2) == (3e-4, 0.1, 0.9, 0.95)
    assert (p.train.device_batch_size, p.data.seq_len, p.data.tokenizer, p.data.train_ratio) == (16, 256, "char", 0.95)
    assert (p.train.max_steps, p.checkpoint.every) == (10000, 1000)
    assert (p.sample.prompt, p.sample.temperature, p.sample.max_new_tokens, p.sample.seed) == ("The", 1.0, 100, 42)


def test_bdh_presets_match_the_guide():
    tiers = {"bdh-default": (6, 256, 4, 128, 512, 32), "bdh-8gb": (4, 192, 4, 64, 256, 8),
             "bdh-14gb": (6, 256, 4, 96, 384, 16), "bdh-24gb": (8, 512, 8, 128, 1024, 32)}
    for name, want in tiers.items():
        p, _ = load(PRESETS / f"{name}.toml")
        got = (p.model.n_layers, p.model.d_model, p.model.n_heads, p.model.bdh_mult, p.data.seq_len,
               p.train.device_batch_size)
        assert got == want, name
        assert (p.optim.lr, p.optim.weight_decay, p.optim.beta2, p.train.grad_clip) == (1e-3, 0.1, 0.999, 0.0)


def test_golf_preset_matches_the_submission():
    p, _ = load(PRESETS / "golf-8L-bigram.toml")
    m, o = p.model, p.optim
    assert (m.n_layers, m.d_model, m.n_heads, m.n_kv_heads, m.mlp_mult, m.activation) == (8, 512, 8, 4, 4.0, "relu2")
    assert (m.bigram_buckets, m.bigram_dim, m.rope_base, m.tie_embeddings) == (12288, 128, 50000.0, True)
    assert (o.name, o.matrix_lr, o.scalar_lr, o.embed_lr, o.weight_decay, o.muon_steps) == ("muon", 0.03, 0.03, 0.08, 0.048, 5)
    assert (p.train.grad_clip, p.schedule.warmdown_steps, p.train.total_batch_size, p.data.seq_len,
            p.eval.stride) == (0.3, 3000, 131072, 2048, 512)


# -- JSON Schema and the README table ---------------------------------------------------------------

def test_json_schema_is_valid_and_rejects_bad_values():
    jsonschema = pytest.importorskip("jsonschema")
    from tuiLM.config.jsonschema import json_schema

    schema = json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    v = jsonschema.Draft202012Validator(schema)
    import tomllib

    for path in SHIPPED:
        assert not list(v.iter_errors(tomllib.loads(path.read_text()))), path
    assert list(v.iter_errors({"model": {"d_model": "wide"}}))
    assert list(v.iter_errors({"model": {"dropout": 1.0}}))
    assert list(v.iter_errors({"model": {"arch": "rnn"}}))
    assert list(v.iter_errors({"model": {"n_embd": 3}}))


def test_committed_schema_file_is_current():
    from tuiLM.config.jsonschema import json_schema

    committed = json.loads((PRESETS / "tuilm.schema.json").read_text())
    assert committed == json.loads(json.dumps(json_schema())), "run: tuilm preset schema -o presets/tuilm.schema.json"


def test_readme_reference_table_is_generated_from_the_schema():
    from tuiLM.config.jsonschema import reference_markdown

    readme = (ROOT / "README.md").read_text()
    assert reference_markdown() in readme, "run: tuilm preset docs, and paste into README.md"
    assert len(reference_markdown().splitlines()) == len(FIELDS) + 2


def test_every_field_in_by_path():
    assert len(BY_PATH) == len(FIELDS)


# -- CLI -------------------------------------------------------------------------------------------

def cli(*args, cwd=ROOT):
    return subprocess.run([sys.executable, "-m", "tuiLM.cli", *args], capture_output=True, text=True, cwd=cwd)


def test_cli_validate_exit_codes(tmp_path):
    assert cli("validate", "presets/quickstart.toml").returncode == 0
    r = cli("validate", "presets/quickstart.toml", "--set", "model.d_model=250")
    assert r.returncode == 1 and "model.d_model" in r.stderr and "Traceback" not in r.stderr
    r = cli("validate", "presets/quickstart.toml", "--set", "nonsense")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    r = cli("validate", str(tmp_path / "none.toml"))
    assert r.returncode == 1 and "no such preset" in r.stderr
    assert cli("no-such-command").returncode == 2
    r = cli("validate", "quickstart")  # by name
    assert r.returncode == 0
    r = cli("validate", "presets/mhc-v5.toml")
    assert r.returncode == 0 and "frozen" in r.stderr


def test_cli_preset_schema_and_docs():
    r = cli("preset", "schema")
    assert r.returncode == 0 and json.loads(r.stdout)["title"] == "tuiLM preset"
    r = cli("preset", "docs")
    assert r.returncode == 0 and "`model.d_model`" in r.stdout


@pytest.mark.parametrize("argv", [["--help"], ["validate", "presets/quickstart.toml"],
                                  ["vram", "presets/bdh-default.toml", "--budget", "14GiB", "--fit"]],
                         ids=["help", "validate", "vram"])
def test_cli_commands_do_not_import_torch(argv):
    code = ("import sys; from typer.testing import CliRunner; from tuiLM.cli import app; "
            f"r = CliRunner().invoke(app, {argv!r}); assert r.exit_code == 0, r.output; "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


def test_an_out_of_range_max_steps_is_one_error_without_cadence_warnings_about_it(tmp_path):
    f = tmp_path / "p.toml"
    f.write_text("[train]\nmax_steps = 0\n")
    _, probs = load(f)
    assert [(x.level, x.path) for x in probs] == [("error", "train.max_steps")]


def test_the_machine_check_counts_every_cpu_process_against_host_ram(monkeypatch):
    from tuiLM import machine
    from tuiLM.config.validate import machine_problems
    from tuiLM.estimate import estimate

    p = make_preset({"system.device": "cpu"})
    need = estimate(p, world_size=1, device="cpu").total_bytes
    monkeypatch.setattr(machine, "device_memory", lambda device: machine.DeviceMemory("cpu", int(need * 1.5), "host RAM"))
    assert machine_problems(p, world_size=1) == []
    (w,) = machine_problems(p, world_size=2)  # two processes of the same size share the host's RAM
    assert "2 processes x" in w.message and "host RAM" in w.message

"""Property-based fuzzing of presets: random values, types, unknown keys and broken TOML go through
loading, validation and the CLI. Never a traceback; every problem names its key."""

from __future__ import annotations

import string

import pytest
import tomli_w
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tuiLM.cli import main
from tuiLM.config.load import PresetError, load_text
from tuiLM.config.schema import BY_PATH, FIELDS, SECTIONS

from .conftest import ROOT

KEYS = [f.key for f in FIELDS]
values = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70), st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(), st.text(max_size=12), st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(string.ascii_lowercase, min_size=1, max_size=4), st.integers(), max_size=2),
)
# Values of the right type near and beyond the declared ranges.
def typed_value(f):
    if f.type is bool:
        return st.booleans()
    if f.type is int:
        return st.integers(min_value=-5, max_value=2**20) | st.sampled_from([0, 1, 2**31, 2**63 - 1])
    if f.type is float:
        return st.floats(min_value=-10, max_value=1e5, allow_nan=False) | st.sampled_from([0.0, 1.0, -0.0, 1e-9])
    return st.sampled_from(list(f.choices)) | st.text(max_size=8) if f.choices else st.text(max_size=8)


key_names = st.sampled_from(KEYS) | st.text(string.ascii_lowercase + "_", min_size=1, max_size=12)
section_names = st.sampled_from(list(SECTIONS)) | st.text(string.ascii_lowercase, min_size=1, max_size=8)
random_tables = st.dictionaries(section_names, st.dictionaries(key_names, values, max_size=6), max_size=5)
typed_tables = st.lists(st.sampled_from(FIELDS), max_size=12).flatmap(
    lambda fs: st.tuples(*[typed_value(f) for f in fs]).map(
        lambda vals, fs=fs: _nest({f.path: v for f, v in zip(fs, vals)})))


def _nest(flat):
    out = {}
    for path, v in flat.items():
        s, k = path.split(".")
        out.setdefault(s, {})[k] = v
    return out


def _check_problems(problems):
    for p in problems:
        assert p.level in ("error", "warning")
        assert p.message
        head = p.path.split(".")[0]
        assert p.path in BY_PATH or head in SECTIONS or "unknown" in p.message, p


def _dump(table):
    try:
        return tomli_w.dumps(table)
    except (TypeError, ValueError):  # values TOML cannot hold (NaN keys, huge ints)
        return None


FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(random_tables)
def test_random_tables_give_problems_not_exceptions(table):
    text = _dump(table)
    if text is None:
        return
    preset, problems = load_text(text)
    _check_problems(problems)


@FUZZ
@given(typed_tables)
def test_typed_values_are_range_checked(table):
    text = _dump(table)
    if text is None:
        return
    preset, problems = load_text(text)
    _check_problems(problems)
    errors = {p.path for p in problems if p.is_error}
    for section, kv in table.items():
        for key, value in kv.items():
            f = BY_PATH[f"{section}.{key}"]
            if f.min is not None and isinstance(value, (int, float)) and not isinstance(value, bool) and value < f.min:
                assert f.path in errors, (f.path, value)


@FUZZ
@given(st.text(max_size=200))
def test_broken_toml_names_a_line_or_loads(text):
    try:
        _, problems = load_text(text, name="fuzz.toml")
    except PresetError as e:
        assert str(e).startswith("fuzz.toml")
        assert "TOML syntax error" in str(e)
    else:
        _check_problems(problems)


def run_cli(argv, capsys):
    with pytest.raises(SystemExit) as e:
        main(argv)
    out = capsys.readouterr()
    assert "Traceback" not in out.err + out.out
    return e.value.code, out


override_text = st.builds(lambda p, v: f"{p}={v}", st.sampled_from(list(BY_PATH)) | st.text(max_size=10),
                          st.text(max_size=10) | st.integers().map(str) | st.floats().map(str))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(overrides=st.lists(override_text, min_size=1, max_size=4))
def test_cli_validate_and_vram_never_crash(overrides, capsys):
    for cmd in ("validate", "vram"):
        argv = [cmd, str(ROOT / "presets" / "quickstart.toml")]
        for o in overrides:
            argv += ["--set", o]
        code, out = run_cli(argv, capsys)
        assert code in (0, 1, 2)
        if code == 1:
            assert out.err.strip(), "an invalid preset must say why"


@pytest.mark.parametrize("f", [f for f in FIELDS if f.type in (int, float) and f.min is not None],
                         ids=lambda f: f.path)
def test_cli_run_rejects_invalid_values_before_starting(f, capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("TUILM_RUNS_DIR", str(tmp_path / "runs"))
    bad = (f.min - 1) if f.type is int else (f.min - 1.0)
    code, out = run_cli(["run", str(ROOT / "presets" / "quickstart.toml"), "--headless", "--set",
                         f"{f.path}={bad}"], capsys)
    assert code == 1 and f.path in out.err
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())  # nothing launched

"""Every JSON Schema the project ships, checked by taplo itself (the engine of Even Better TOML), not
only by a Python validator: taplo refuses schemas other validators accept (a relative "$id" made it
call presets/tuilm.schema.json "invalid schema" for every preset).

Schemas are found by glob, so a new one is covered without touching this file; each must have a
shipped TOML document that names it in its ``#:schema`` line. .ci/run installs taplo (npm
@taplo/cli), so on CI (``CI`` set) a missing taplo is a failure, never a skip.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from .conftest import ROOT

SCHEMA_GLOBS = ("presets/*.schema.json", "presets/studies/*.schema.json")
SKIP_DIRS = {".venv", "venv", "runs", "node_modules", ".git", "build", "dist"}
TAPLO = shutil.which("taplo")


def _need_taplo() -> str:
    if TAPLO is None:
        if os.environ.get("CI"):
            pytest.fail("taplo is not installed: .ci/run installs it (npm install -g @taplo/cli)")
        pytest.skip("taplo is not installed (npm install -g @taplo/cli@0.7.0, which ships taplo 0.9)")
    return TAPLO


def shipped_schemas() -> list[Path]:
    return sorted({p for g in SCHEMA_GLOBS for p in ROOT.glob(g)})


def _toml_files() -> list[Path]:
    out = []
    for dirpath, dirnames, filenames in os.walk(ROOT):
        dirnames[:] = [d for d in dirnames if d not in SKIP_DIRS and not d.startswith(".")]
        out += [Path(dirpath) / f for f in filenames if f.endswith(".toml") and f != "pyproject.toml"]
    return sorted(out)


def documents_of(schema: Path) -> list[Path]:
    """Shipped TOML files whose ``#:schema`` line (relative to the file) names ``schema``."""
    docs = []
    for path in _toml_files():
        first = path.read_text(errors="replace").split("\n", 1)[0]
        m = re.match(r"#:schema\s+(\S+)", first)
        if m and not re.match(r"^[a-z]+://", m.group(1)) and (path.parent / m.group(1)).resolve() == schema.resolve():
            docs.append(path)
    return docs


def taplo_check(*files: Path, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([_need_taplo(), "check", "--colors", "never", *map(str, files)], cwd=cwd,
                          capture_output=True, text=True, timeout=120)


def test_schemas_are_found():
    assert ROOT / "presets" / "tuilm.schema.json" in shipped_schemas()


@pytest.mark.parametrize("schema", shipped_schemas(), ids=lambda p: str(p.relative_to(ROOT)))
def test_taplo_accepts_every_shipped_document(schema):
    docs = documents_of(schema)
    assert docs, f"no shipped TOML file names {schema.name} in its #:schema line"
    json.loads(schema.read_text())
    r = taplo_check(*docs, cwd=schema.parent)
    assert r.returncode == 0 and "invalid schema" not in r.stderr, r.stderr[-3000:]


def _relocated(doc: Path, schema: Path, extra: str, tmp_path: Path) -> tuple[Path, list[str]]:
    """A copy of ``doc`` in tmp_path with an absolute #:schema line and ``extra`` appended."""
    lines = doc.read_text().split("\n")
    lines[0] = f"#:schema {schema.resolve()}"
    text = "\n".join(lines).rstrip("\n") + "\n" + extra
    out = tmp_path / doc.name
    out.write_text(text)
    return out, text.split("\n")


@pytest.mark.parametrize("schema", shipped_schemas(), ids=lambda p: str(p.relative_to(ROOT)))
def test_taplo_names_an_unknown_key_and_its_line(schema, tmp_path):
    doc = documents_of(schema)[0]
    bad, lines = _relocated(doc, schema, "\n[tuilm_no_such_table]\nbogus = 1\n", tmp_path)
    line = lines.index("[tuilm_no_such_table]") + 1
    r = taplo_check(bad, cwd=tmp_path)
    assert r.returncode != 0 and "invalid schema" not in r.stderr, r.stderr[-3000:]
    assert "'tuilm_no_such_table' was unexpected" in r.stderr, r.stderr[-3000:]
    assert f"{bad.name}:{line}:" in r.stderr, r.stderr[-3000:]


def test_taplo_names_wrong_types_unknown_keys_and_ranges_in_a_preset(tmp_path):
    schema = ROOT / "presets" / "tuilm.schema.json"
    doc = tmp_path / "broken.toml"
    doc.write_text(f"#:schema {schema}\n[run]\nname = \"x\"\n[model]\nd_model = \"wide\"\nn_layers = 0\n"
                   "n_layer = 4\n[train]\nmax_steps = 100\n")
    r = taplo_check(doc, cwd=tmp_path)
    assert r.returncode != 0
    assert re.search(r'"wide" is not of type "integer"\n\s*┌─ \S*broken\.toml:5:', r.stderr), r.stderr
    assert re.search(r"0 is less than the minimum of 1\n\s*┌─ \S*broken\.toml:6:", r.stderr), r.stderr
    assert "'n_layer' was unexpected" in r.stderr and "broken.toml:7:" in r.stderr, r.stderr
    assert "broken.toml:9:" not in r.stderr  # a right value is not flagged

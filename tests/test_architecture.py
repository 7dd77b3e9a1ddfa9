"""The boundaries of DESIGN.md, enforced: the UI and CLI never import torch at module level, the
trainer and models never import Textual or Typer, and the one schema declares every field."""

from __future__ import annotations

import ast
import subprocess
import sys

from .conftest import ROOT

PKG = ROOT / "tuiLM"
NO_TORCH = ["cli.py", "config", "estimate", "events.py", "runs.py", "launch.py", "report.py", "units.py",
            "errors.py", "machine.py", "tui", "study", "export.py"]


def modules(rel: str):
    p = PKG / rel
    return sorted(p.rglob("*.py")) if p.is_dir() else ([p] if p.exists() else [])


def top_level_imports(path):
    """Modules imported at module level (not inside functions): what importing the file costs."""
    tree = ast.parse(path.read_text(), filename=str(path))
    out = []

    def visit(body):
        for node in body:
            if isinstance(node, ast.Import):
                out.extend(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                out.append(node.module)
            elif isinstance(node, (ast.If, ast.Try)):
                if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                    continue
                visit(node.body)
                for h in getattr(node, "handlers", []):
                    visit(h.body)
                visit(getattr(node, "orelse", []))
    visit(tree.body)
    return out


def all_imports(path):
    tree = ast.parse(path.read_text(), filename=str(path))
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.extend(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.append(node.module)
    return out


def test_ui_and_cli_modules_do_not_import_torch_at_module_level():
    offenders = []
    for rel in NO_TORCH:
        for path in modules(rel):
            if any(m == "torch" or m.startswith("torch.") for m in top_level_imports(path)):
                offenders.append(str(path.relative_to(ROOT)))
    assert offenders == []


def test_trainer_and_models_never_import_ui_libraries():
    offenders = []
    for rel in ("train", "models"):
        for path in modules(rel):
            bad = [m for m in all_imports(path) if m.split(".")[0] in ("textual", "typer", "rich")]
            if bad:
                offenders.append((str(path.relative_to(ROOT)), bad))
    assert offenders == []


def test_importing_cli_app_and_estimator_loads_no_torch():
    mods = ["tuiLM.cli", "tuiLM.config", "tuiLM.estimate", "tuiLM.events", "tuiLM.runs", "tuiLM.report",
            "tuiLM.study.spec", "tuiLM.study.engine", "tuiLM.study.report", "optuna", "tuiLM.export"]
    mods += [m for m in ("tuiLM.launch", "tuiLM.tui.app") if (PKG / (m.split(".", 1)[1].replace(".", "/") + ".py")).exists()]
    code = ("import importlib, sys\n"
            f"for m in {mods!r}: importlib.import_module(m)\n"
            "print(sorted(k for k in sys.modules if k == 'torch' or k.startswith('torch.'))[:5])")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]", f"torch was imported: {r.stdout}"


def test_model_hyperparameters_come_from_the_schema_only():
    """No hyperparameter defaults hidden in the models or trainer: every `cfg.<name>` they read is a
    schema field."""
    from tuiLM.config.schema import FIELDS

    keys = {f.key for f in FIELDS}
    unknown = []
    for rel in ("models", "train"):
        for path in modules(rel):
            tree = ast.parse(path.read_text())
            for node in ast.walk(tree):
                if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Attribute)
                        and isinstance(node.value.value, ast.Name) and node.value.value.id in ("preset", "p")
                        and node.value.attr in ("model", "data", "train", "optim", "schedule", "eval", "sample",
                                                "checkpoint", "diag", "system", "run")):
                    if node.attr not in keys and node.attr not in ("to_dict",):
                        unknown.append(f"{path.name}: {node.value.attr}.{node.attr}")
    assert unknown == []

"""The boundaries of DESIGN.md, enforced: the UI and CLI never import torch at module level, the
trainer and models never import Textual or Typer, and the one schema declares every field."""

from __future__ import annotations

import ast
import subprocess
import sys

from .conftest import ROOT

PKG = ROOT / "tuiLM"
NO_TORCH = ["cli.py", "config", "estimate", "events.py", "runs.py", "reader.py", "lineparse.py", "ownership.py", "launch.py", "report.py", "units.py",
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


# -- every hyperparameter the models and the trainer read is a schema field ----------------------

PRESET_NAMES = {"preset", "p"}  # a Preset held in a variable or attribute of this name (self.preset too)
MODEL_CONFIG_NAMES = {"config", "cfg", "model_cfg"}  # a model config dataclass (or the [model] section)
# Model-config fields that are not [model] keys: they come from the data (vocabulary, context length).
DERIVED = {"vocab_size", "max_seq_len"}


def _schema():
    from tuiLM.config.schema import FIELDS, SECTIONS

    keys: dict[str, set[str]] = {s: set() for s in SECTIONS}
    for f in FIELDS:
        keys[f.section].add(f.key)
    return keys


def _last_name(node) -> str | None:
    """``x`` for ``x`` and ``self.x``: the name a value is held under."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "self":
        return node.attr
    return None


def _functions(trees):
    out: dict[str, list[ast.FunctionDef]] = {}
    for tree in trees.values():
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                out.setdefault(node.name, []).append(node)
    return out


def _config_classes(trees):
    """Dataclasses named *Config in the models: their fields and their other (derived) members."""
    fields: dict[str, set[str]] = {}
    members: set[str] = set()
    for path, tree in trees.items():
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef) and node.name.endswith("Config"):
                own = {n.target.id for n in node.body if isinstance(n, ast.AnnAssign) and isinstance(n.target, ast.Name)}
                fields[f"{path.name}:{node.name}"] = own
                members |= {n.name for n in node.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}
    return fields, members


def config_reads(trees) -> list[str]:
    """Attribute reads on config objects in ``trees`` that are not schema fields: ``[]`` when all are.

    Config objects, whatever their variable name: a Preset (``preset``, ``p``, ``self.preset``), a
    section of it (``preset.optim``, and any variable or parameter it is assigned or passed to, e.g.
    ``sched`` in ``lr_factor(step, p.schedule, ...)``), and a model config (``config``, ``cfg``,
    ``self.config``, ``model_cfg``). Reads on a section must be keys of that section; reads on a model
    config must be [model] keys, the declared DERIVED fields, or a method/property of a *Config class;
    and every *Config dataclass field must itself be a [model] key or DERIVED.
    """
    from tuiLM.config.load import Preset

    keys = _schema()
    preset_members = {n for n in dir(Preset) if not n.startswith("_")} | {"values", "source", "lines"}
    cfg_fields, cfg_members = _config_classes(trees)
    bad = [f"{where}: field {name}" for where, names in cfg_fields.items()
           for name in sorted(names - keys["model"] - DERIVED)]
    model_ok = keys["model"] | DERIVED | cfg_members
    funcs = _functions(trees)
    nodes = {id(fn): list(ast.walk(fn)) for defs in funcs.values() for fn in defs}
    # parameter name -> section, per function; grown by following calls until nothing changes
    param_types: dict[int, dict[str, str]] = {}

    def section_of(node, local: dict[str, str]) -> str | None:
        """The section a value is (``preset.optim``, or a variable bound to one), else None."""
        if isinstance(node, ast.Attribute) and node.attr in keys and _last_name(node.value) in PRESET_NAMES:
            return node.attr
        name = _last_name(node)
        return local.get(name) if name else None

    def bindings(fn) -> dict[str, str]:
        """The function's variables that hold a section: its typed parameters and assigned aliases."""
        local = dict(param_types.get(id(fn), {}))
        assigns = [n for n in nodes[id(fn)] if isinstance(n, ast.Assign)]
        for _ in range(3):  # aliases of aliases
            for node in assigns:
                pairs = []
                for target in node.targets:
                    if isinstance(target, ast.Tuple) and isinstance(node.value, ast.Tuple):
                        pairs += zip(target.elts, node.value.elts)
                    else:
                        pairs.append((target, node.value))
                for target, value in pairs:
                    s, name = section_of(value, local), _last_name(target)
                    if s and name:
                        local[name] = s
        return local

    def follow_calls(fn) -> bool:
        local, grew = bindings(fn), False
        for node in nodes[id(fn)]:
            if not isinstance(node, ast.Call):
                continue
            callee = node.func.id if isinstance(node.func, ast.Name) else (
                node.func.attr if isinstance(node.func, ast.Attribute) else None)
            for target in funcs.get(callee or "", []):
                params = [a.arg for a in target.args.args]
                if params[:1] in (["self"], ["cls"]):
                    params = params[1:]
                bound = list(zip(params, node.args)) + [(k.arg, k.value) for k in node.keywords if k.arg]
                for pname, arg in bound:
                    s = section_of(arg, local)
                    if s and param_types.setdefault(id(target), {}).get(pname) != s:
                        param_types[id(target)][pname] = s
                        grew = True
        return grew

    all_fns = [fn for defs in funcs.values() for fn in defs]
    while any([follow_calls(fn) for fn in all_fns]):
        pass

    for path, tree in trees.items():
        scopes = [(tree, {})] + [(n, bindings(n)) for n in ast.walk(tree)
                                 if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
        for scope, local in scopes:
            for node in (nodes.get(id(scope)) or list(ast.walk(scope))):
                if not isinstance(node, ast.Attribute) or not isinstance(node.ctx, ast.Load):
                    continue
                holder = _last_name(node.value)
                s = section_of(node.value, local)
                if s is not None:
                    if node.attr not in keys[s] and node.attr not in ("to_dict",):
                        bad.append(f"{path.name}:{node.lineno}: {s}.{node.attr}")
                elif holder == "preset":  # ``p`` is also a path or a parameter: only its .section chains count
                    if node.attr not in keys and node.attr not in preset_members:
                        bad.append(f"{path.name}:{node.lineno}: preset.{node.attr}")
                elif holder in MODEL_CONFIG_NAMES and node.attr not in model_ok:
                    bad.append(f"{path.name}:{node.lineno}: model config .{node.attr}")
    return sorted(set(bad))


def _trees(*rels: str):
    return {path: ast.parse(path.read_text()) for rel in rels for path in modules(rel)}


def test_model_hyperparameters_come_from_the_schema_only():
    """No hyperparameter defaults hidden in the models or trainer: every field they read on a preset,
    a section or a model config is a schema field (or a declared derived one)."""
    assert config_reads(_trees("models", "train")) == []


def test_the_schema_check_sees_reads_under_any_name(tmp_path):
    """The check above can fail: unknown reads through aliases, passed sections and model configs."""
    src = tmp_path / "bogus.py"
    src.write_text(
        "from dataclasses import dataclass\n"
        "@dataclass\n"
        "class ToyConfig:\n"
        "    vocab_size: int\n"
        "    n_layers: int = 2\n"
        "    hidden_default: float = 0.5\n"
        "def helper(sched, n):\n"
        "    return sched.warmup_steps + sched.bogus_ramp\n"
        "class Model:\n"
        "    def __init__(self, config):\n"
        "        self.config = config\n"
        "        self.width = self.config.n_layers * self.config.bogus_width\n"
        "def run(preset):\n"
        "    o = preset.optim\n"
        "    e, d = preset.eval, preset.data\n"
        "    return o.lr + o.bogus_lr + d.seq_len + e.bogus_every + helper(preset.schedule, 1)\n"
        "def fine(p):\n"
        "    return p.train.max_steps + p.get('model.d_model') + p.model.bogus_direct\n")
    found = config_reads({src: ast.parse(src.read_text())})
    assert sorted(f.split(": ", 1)[1] for f in found) == sorted([
        "field hidden_default", "schedule.bogus_ramp", "model config .bogus_width", "optim.bogus_lr",
        "eval.bogus_every", "model.bogus_direct"]), found


def test_no_file_of_the_app_grows_past_450_lines():
    """Issue 10 split the dashboard so that no file under tuiLM/tui/ is over 450 lines; a screen that
    grows past it splits again (the study view's panels went to tui/studyframes.py)."""
    long = {str(p.relative_to(PKG)): n for p in modules("tui") if (n := len(p.read_text().splitlines())) > 450}
    assert not long, long

"""Study files: many runs as one experiment, declared once like presets (specs/studies.md).

A study file is TOML with a ``[study]`` table (the fields below, each declared once: loading,
validation, the JSON Schema and the README table come from ``STUDY_FIELDS``) and a ``[space]`` table
whose keys are preset keys and whose values are distributions::

    [space]
    "optim.lr"          = { log = [1e-4, 3e-3] }      # float (or int), sampled on a log scale
    "optim.weight_decay" = { range = [0.0, 0.2] }     # float, uniform
    "model.n_layers"    = { int = [2, 6] }            # integer, uniform (step = 1)
    "model.mhc_mode"    = { choice = ["static", "dynamic"] }

    [set]                                             # optional: the same for every trial
    "train.max_steps" = 300

Precedence for a trial's preset: base preset < [set] < ``--set`` on the command line < sampled params.
Pure Python; Optuna is imported only to build distributions (``distributions()``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config.load import (Preset, PresetError, Problem, coerce, locate_keys, parse_toml_text, read_preset_text,
                           suggest)
from ..config.schema import BY_PATH, Field
from ..errors import UserError

OBJECTIVES = {"val_bpb": "minimize", "val_loss": "minimize"}  # eval metrics: the last eval of each run
# Model diagnostics whose better direction is known (tui/metrics.py's bands, from the users' mHC table);
# any other diagnostic can be the objective with an explicit study.direction.
DIAG_DIRECTIONS = {"stream_similarity": "minimize", "stream_embed_similarity": "minimize",
                   "sinkhorn_row_err": "minimize", "sinkhorn_col_err": "minimize"}
DIRECTIONS = ("auto", "minimize", "maximize")
SAMPLERS = ("tpe", "random", "grid", "cmaes", "gp")
PRUNERS = ("none", "median", "asha", "hyperband")
DIST_KINDS = ("log", "range", "int", "choice")
# Keys a study sets itself: a trial's seeds are run.seed + 0..k-1 and its name is derived.
NOT_SEARCHABLE = {"run.seed": "seeds are set by study.seeds (run.seed + 0..k-1)",
                  "run.name": "trial runs are named <study>-tNNN-sK",
                  "run.notes": "free text is not a hyperparameter"}

F = Field
STUDY_FIELDS: tuple[Field, ...] = (
    F("study", "name", str, "", "Study name; its journal lives in runs/studies/<name>/ (default: the file name)"),
    F("study", "base", str, "", "Base preset every trial starts from (path relative to this file, or a "
      "shipped preset name)"),
    F("study", "objective", str, "val_bpb", "What to optimise: val_bpb or val_loss (the last eval of each run), "
      "or a diagnostic the model writes in diag events (the last one of each run; e.g. stream_similarity)"),
    F("study", "direction", str, "auto", "Minimize or maximize the objective; auto: minimize val_bpb, val_loss, "
      "stream similarity and Sinkhorn errors (another diagnostic needs it said)", choices=DIRECTIONS),
    F("study", "trials", int, 20, "Configurations to try (each runs `seeds` times)", min=1, max=100_000),
    F("study", "seeds", int, 1, "Runs per configuration with seeds run.seed + 0..k-1; the value is their mean",
      min=1, max=100),
    F("study", "parallel", int, 1, "Trials at once on this machine (devices and CPU threads are split)",
      min=1, max=256),
    F("study", "sampler", str, "tpe", "Optuna sampler, seeded by study.seed", choices=SAMPLERS),
    F("study", "pruner", str, "median", "Optuna pruner, asked at every eval of the first seed run",
      choices=PRUNERS),
    F("study", "startup_trials", int, 3, "Trials that finish before the median pruner may prune", min=0,
      max=100_000),
    F("study", "prune_after", int, 0, "No pruning before this step (e.g. the longest learning-rate warm-up in "
      "the space: a trial in warm-up looks worse than it is) [steps]; 0 = from the first eval", unit="steps",
      min=0, max=100_000_000),
    F("study", "seed", int, 0, "Seed of the sampler (a resumed study recreates it from this seed and the trials "
      "already asked: the same state, no replayed draws)", min=0,
      max=2**32 - 1),
    F("study", "budget_gib", float, 0.0, "Refuse a sampled configuration whose memory estimate exceeds this "
      "[GiB]; 0 = the base preset's system.vram_budget_gib", unit="GiB", min=0, max=1_000_000),
    F("study", "max_artifact_bytes", int, 0, "Parameter golf's limit: a trial whose int8+zlib artifact "
      "(run_end's artifact_bytes, the largest of its seeds) exceeds it keeps its value but is never the best, and "
      "the TPE and GP samplers steer away from it (Optuna constraints) [bytes]; 0 = no limit", unit="bytes",
      min=0, max=10**13),
    F("study", "baseline", bool, False, "Run the base preset's own values as trial 0 (a reference to judge "
      "the others against)"),
)
STUDY_BY_KEY: dict[str, Field] = {f.key: f for f in STUDY_FIELDS}


class StudyError(UserError):
    """A study file that cannot be used."""


@dataclass(frozen=True)
class Dimension:
    key: str  # preset key, e.g. "optim.lr"
    kind: str  # log | range | int | choice
    values: tuple[Any, ...]  # (lo, hi) or the choices

    def to_optuna(self) -> Any:
        from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

        f = BY_PATH[self.key]
        if self.kind == "choice":
            return CategoricalDistribution(list(self.values))
        lo, hi = self.values
        if f.type is int:
            return IntDistribution(int(lo), int(hi), log=self.kind == "log")
        return FloatDistribution(float(lo), float(hi), log=self.kind == "log")

    def grid_values(self) -> list[Any] | None:
        """Every value of a finite dimension (choice, int), None for a continuous one."""
        if self.kind == "choice":
            return list(self.values)
        if self.kind == "int":
            return list(range(int(self.values[0]), int(self.values[1]) + 1))
        return None

    def describe(self) -> str:
        if self.kind == "choice":
            return "choice " + " | ".join(str(v) for v in self.values)
        return f"{self.kind} [{self.values[0]}, {self.values[1]}]"


@dataclass
class StudySpec:
    settings: dict[str, Any]  # every STUDY_FIELDS key, resolved
    space: list[Dimension]
    fixed: dict[str, Any] = field(default_factory=dict)  # [set]: preset key -> typed value
    source: Path | None = None
    text: str = ""  # the file as written (frozen into the study directory)
    lines: dict[str, int] = field(default_factory=dict)

    def __getattr__(self, name: str) -> Any:
        try:
            return self.settings[name]
        except KeyError:
            raise AttributeError(name) from None

    @property
    def direction(self) -> str:
        d = self.settings.get("direction", "auto")
        return d if d != "auto" else {**OBJECTIVES, **DIAG_DIRECTIONS}.get(self.settings["objective"], "minimize")

    @property
    def diagnostic(self) -> bool:
        """The objective is a model diagnostic (diag events), not an eval metric."""
        return self.settings["objective"] not in OBJECTIVES

    def distributions(self) -> dict[str, Any]:
        return {d.key: d.to_optuna() for d in self.space}

    def base_path(self) -> Path:
        return resolve_base(self.settings["base"], self.source)

    def grid(self) -> dict[str, list[Any]]:
        return {d.key: d.grid_values() or [] for d in self.space}

    def grid_size(self) -> int:
        return math.prod(len(v) for v in self.grid().values()) if self.space else 1

    def target(self, trials: int | None = None) -> int:
        """The trials a study runs: ``trials`` (--trials) or study.trials; a grid runs each point once
        (Optuna's GridSampler repeats points once all have started), so never more than its size."""
        n = trials or self.settings["trials"]
        return min(n, self.grid_size()) if self.settings["sampler"] == "grid" else n


# -- base preset -------------------------------------------------------------------------------

def resolve_base(base: str, source: Path | None) -> Path:
    """The base preset: relative to the study file, else the working directory, else a preset name."""
    from ..config.presets import find_preset

    p = Path(base).expanduser()
    beside = source.parent / p if not p.is_absolute() and source is not None else None
    if beside is not None and beside.exists():
        return beside
    try:
        return find_preset(str(p))  # (~ expanded)
    except PresetError:
        if beside is None or p.parent == Path("."):
            raise
        raise PresetError(f"{base}: no such preset file beside the study file ({beside.resolve()}) or in the working "
                          f"directory; a shipped preset is named without a folder: base = \"{p.stem}\"") from None


# -- loading -------------------------------------------------------------------------------------

def _flatten_space(table: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    """``{"optim.lr": {...}}`` and the dotted form ``{optim: {lr: {...}}}`` both give ("optim.lr", {...})."""
    out = []
    for key, value in table.items():
        path = f"{prefix}.{key}" if prefix else key
        if isinstance(value, dict) and value and not (set(value) & set(DIST_KINDS)) \
                and all(isinstance(v, dict) for v in value.values()):
            out.extend(_flatten_space(value, path))
        else:
            out.append((path, value))
    return out


def _flatten_set(table: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    out = []
    for key, value in table.items():
        path = f"{prefix}.{key}" if prefix else key
        if isinstance(value, dict):
            out.extend(_flatten_set(value, path))
        else:
            out.append((path, value))
    return out


def _in_range(f: Field, v: float) -> bool:
    if f.min is not None and (v < f.min or (f.min_exclusive and v == f.min)):
        return False
    if f.max is not None and (v > f.max or (f.max_exclusive and v == f.max)):
        return False
    return True


def _dimension(path: str, value: Any) -> tuple[Dimension | None, str]:
    """A distribution checked against the field, or (None, message)."""
    f = BY_PATH[path]
    if not isinstance(value, dict) or len(value) != 1 or next(iter(value)) not in DIST_KINDS:
        return None, ("expected one distribution: { log = [lo, hi] }, { range = [lo, hi] }, "
                      "{ int = [lo, hi] } or { choice = [a, b, ...] }")
    kind, arg = next(iter(value.items()))
    if not isinstance(arg, list) or not arg:
        return None, f"{kind} needs a list" + (" of at least one value" if isinstance(arg, list) else "")
    if kind == "choice":
        if f.type is bool and not all(isinstance(x, bool) for x in arg):
            return None, "choice values must be true or false"
        vals = []
        for x in arg:
            try:
                x = coerce(f, x)
            except ValueError as e:
                return None, f"choice value {x!r}: {e}"
            if f.choices and x not in f.choices:
                return None, f"choice value {x!r} is not one of {' | '.join(f.choices)}"
            if f.type in (int, float) and not _in_range(f, x):
                return None, f"choice value {x!r} is outside the field's allowed range {f.range_text()}"
            vals.append(x)
        if len(set(map(repr, vals))) != len(vals):
            return None, "choice values repeat"
        return Dimension(path, kind, tuple(vals)), ""
    if f.type not in (int, float):
        return None, f"{path} is {f.type.__name__ if f.type is not str else 'a string'}: use {{ choice = [...] }}"
    if len(arg) != 2 or not all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in arg):
        return None, f"{kind} needs two numbers [lo, hi]"
    lo, hi = arg
    if not lo < hi:
        return None, f"{kind}: lo must be below hi (got [{lo}, {hi}])"
    if kind == "int" and f.type is not int:
        return None, f"int = [...] needs an integer field; {path} is a float: use range or log"
    if kind in ("int",) or (kind == "log" and f.type is int):
        if not all(float(x).is_integer() for x in arg):
            return None, f"{path} is an integer: {kind} bounds must be integers"
    if kind == "range" and f.type is int:
        return None, f"{path} is an integer: use {{ int = [{int(lo)}, {int(hi)}] }}"
    if kind == "log" and lo <= 0:
        return None, f"log needs lo > 0 (got {lo})"
    for x in (lo, hi):
        if not _in_range(f, x):
            return None, f"{kind} bound {x} is outside the field's allowed range {f.range_text()}"
    return Dimension(path, kind, (lo, hi)), ""


def parse(text: str, source: Path | None = None) -> tuple[StudySpec, list[Problem]]:
    """Resolve a study file's text. Never raises for fixable problems: they come back as Problems."""
    name = str(source) if source else "<study>"
    raw = parse_toml_text(text, name)
    lines = locate_keys(text)
    problems: list[Problem] = []
    settings = {f.key: f.default for f in STUDY_FIELDS}
    for table, value in raw.items():
        if table not in ("study", "space", "set"):
            close = [t for t in ("study", "space", "set") if t[:2] == table[:2]]
            hint = f" (did you mean {close[0]}?)" if close else " (a study file has [study], [space] and [set])"
            problems.append(Problem("error", table, f"unknown table{hint}", lines.get(table)))
    study = raw.get("study", {})
    if not isinstance(study, dict):
        problems.append(Problem("error", "study", "[study] must be a table", lines.get("study")))
        study = {}
    for key, value in study.items():
        path = f"study.{key}"
        f = STUDY_BY_KEY.get(key)
        if f is None:
            import difflib

            close = difflib.get_close_matches(key, list(STUDY_BY_KEY), n=1, cutoff=0.6)
            hint = f" (did you mean study.{close[0]}?)" if close else ""
            problems.append(Problem("error", path, f"unknown key{hint}", lines.get(path)))
            continue
        try:
            value = coerce(f, value)
        except ValueError as e:
            problems.append(Problem("error", path, str(e), lines.get(path)))
            continue
        if f.choices and value not in f.choices:
            problems.append(Problem("error", path, f"must be one of {' | '.join(f.choices)}, got {value!r}",
                                    lines.get(path)))
            continue
        if f.type in (int, float) and not _in_range(f, value):
            problems.append(Problem("error", path, f"{value} is outside {f.range_text()}", lines.get(path)))
            continue
        settings[key] = value
    if not settings["name"]:
        settings["name"] = source.stem if source else "study"
    from ..runs import RunError, check_run_name

    try:
        check_run_name(settings["name"], "study")
    except RunError:
        problems.append(Problem("error", "study.name", f"bad study name {settings['name']!r}: use letters, digits, "
                                "'.', '_' and '-' (at most 100 characters)", lines.get("study.name")))
    if not settings["base"]:
        problems.append(Problem("error", "study.base", "missing: the preset every trial starts from",
                                lines.get("study.base") or lines.get("study")))
    objective = settings["objective"]
    known = _metric_names()
    if objective not in known:  # a typo would train every trial to the end and then fail it
        import difflib

        close = difflib.get_close_matches(str(objective), known, n=1)
        problems.append(Problem("error", "study.objective", f"{objective!r} is not a metric runs write"
                                + (f" (did you mean {close[0]}?)" if close else "") + ": " + ", ".join(known),
                                lines.get("study.objective")))
    elif settings["direction"] == "auto" and objective not in OBJECTIVES and objective not in DIAG_DIRECTIONS:
        problems.append(Problem("error", "study.direction", f"is auto, but {objective!r} has no known better "
                                "direction: set direction = \"minimize\" or \"maximize\"",
                                lines.get("study.direction") or lines.get("study.objective")))
    elif settings["direction"] not in ("auto", {**OBJECTIVES, **DIAG_DIRECTIONS}.get(objective, settings["direction"])):
        problems.append(Problem("warning", "study.direction", f"{objective} is better when "
                                f"{'lower' if {**OBJECTIVES, **DIAG_DIRECTIONS}[objective] == 'minimize' else 'higher'}: "
                                f"{settings['direction']} searches for the worst configurations",
                                lines.get("study.direction")))
    space_raw = raw.get("space", {})
    space: list[Dimension] = []
    if not isinstance(space_raw, dict):
        problems.append(Problem("error", "space", "[space] must be a table", lines.get("space")))
        space_raw = {}
    for path, value in _flatten_space(space_raw):
        where = f"space.{path}"
        line = lines.get(where) or lines.get(f"space.{path.split('.')[0]}")
        if path not in BY_PATH:
            problems.append(Problem("error", where, f"unknown preset key{suggest(path)}", line))
            continue
        if path in NOT_SEARCHABLE:
            problems.append(Problem("error", where, NOT_SEARCHABLE[path], line))
            continue
        dim, msg = _dimension(path, value)
        if dim is None:
            problems.append(Problem("error", where, msg, line))
        else:
            space.append(dim)
    if not space and not any(p.path == "space" or p.path.startswith("space.") for p in problems):
        problems.append(Problem("error", "space", "empty: add at least one preset key to search",
                                lines.get("space")))
    fixed: dict[str, Any] = {}
    set_raw = raw.get("set", {})
    if not isinstance(set_raw, dict):
        problems.append(Problem("error", "set", "[set] must be a table", lines.get("set")))
        set_raw = {}
    for path, value in _flatten_set(set_raw):
        where = f"set.{path}"
        line = lines.get(where) or lines.get(f"set.{path.split('.')[0]}")
        f = BY_PATH.get(path)
        if f is None:
            problems.append(Problem("error", where, f"unknown preset key{suggest(path)}", line))
            continue
        if any(d.key == path for d in space):
            problems.append(Problem("error", where, "is also a [space] dimension: set it or search it", line))
            continue
        try:
            fixed[path] = coerce(f, value)
        except ValueError as e:
            problems.append(Problem("error", where, str(e), line))
    spec = StudySpec(settings, space, fixed, source, text, lines)
    if settings["sampler"] == "grid":
        for d in space:
            if d.grid_values() is None:
                problems.append(Problem("error", f"space.{d.key}", f"a grid over a continuous {'log range' if d.kind == 'log' else 'range'}: "
                                        "use { choice = [...] } (or int) with sampler = \"grid\"",
                                        lines.get(f"space.{d.key}")))
        if not any(p.is_error for p in problems) and spec.grid_size() < settings["trials"]:
            problems.append(Problem("warning", "study.trials", f"the grid has {spec.grid_size()} points: the "
                                    f"study ends after {spec.grid_size()} trials", lines.get("study.trials")))
    if settings["sampler"] == "cmaes" and any(d.kind == "choice" for d in space):
        problems.append(Problem("warning", "study.sampler", "CMA-ES samples choice dimensions at random "
                                "(it only models numbers)", lines.get("study.sampler")))
    return spec, problems


def load_study(path: str | Path, overrides: list[str] | None = None) -> tuple[StudySpec, Preset | None,
                                                                            list[Problem]]:
    """A study file, its base preset (with ``overrides`` = --set for every trial) and every problem."""
    from ..config.load import load

    p = Path(path)
    try:
        text = read_preset_text(p)
    except PresetError as e:
        raise StudyError(str(e).replace("preset file", "study file")) from None
    spec, problems = parse(text, p)
    base: Preset | None = None
    if spec.settings["base"]:
        try:
            base_path = spec.base_path()
            base, base_problems = load(base_path, _as_overrides(spec.fixed) + list(overrides or []))
        except PresetError as e:
            problems.append(Problem("error", "study.base", str(e), spec.lines.get("study.base")))
        else:
            cli = {o.split("=", 1)[0].strip() for o in overrides or []}
            for bp in (bp for bp in base_problems if bp.is_error):  # each where it was written
                if bp.path in cli:
                    problems.append(Problem("error", f"--set {bp.path}", bp.message, None))
                elif bp.path in spec.fixed:
                    problems.append(Problem("error", f"set.{bp.path}", bp.message, spec.lines.get(f"set.{bp.path}")))
                else:
                    where = f"{base_path}:{bp.line}" if bp.line else str(base_path)
                    problems.append(Problem("error", "study.base", f"{where}: {bp.path}: {bp.message}",
                                            spec.lines.get("study.base")))
            if base is not None:
                problems += _objective_problems(spec, base)
                if not any(bp.is_error for bp in base_problems):  # else every corner would repeat its error
                    problems += _space_problems(spec, base)
                arch = base.model.arch
                for d in spec.space:
                    f = BY_PATH[d.key]
                    if d.key == "model.arch":
                        continue
                    if f.archs and arch not in f.archs and not any(x.key == "model.arch" for x in spec.space):
                        problems.append(Problem("warning", f"space.{d.key}", f"does not apply to the base "
                                                f"preset's architecture ({arch}): it will have no effect",
                                                spec.lines.get(f"space.{d.key}")))
                    if spec.settings["baseline"] and d.kind == "choice" and base.get(d.key) not in d.values:
                        problems.append(Problem("error", f"space.{d.key}", f"baseline = true runs the base preset's "
                                                f"own values as trial 0, but its {d.key} = {base.get(d.key)!r} is "
                                                f"not one of the choices: add it, or set baseline = false",
                                                spec.lines.get(f"space.{d.key}")))
                    elif spec.settings["baseline"] and d.kind != "choice" and isinstance(base.get(d.key), (int, float)) \
                            and not d.values[0] <= base.get(d.key) <= d.values[1]:
                        problems.append(Problem("warning", f"space.{d.key}", f"baseline = true runs the base preset's "
                                                f"own values as trial 0, and its {d.key} = {base.get(d.key)!r} lies "
                                                f"outside [{d.values[0]}, {d.values[1]}]: trial 0 runs it all the same, "
                                                f"but no other trial comes near it (widen the range to compare)",
                                                spec.lines.get(f"space.{d.key}")))
    return spec, base, problems


MAX_CORNERS = 512  # every combination of the dimensions' ends is checked up to this many (0.15 ms each)
MAX_INT_VALUES = 64  # an integer range this small is checked at every value, not only its ends


def _probe_values(d: Dimension) -> list[Any]:
    """The values of a dimension the check tries: a choice's each, a small integer range's every value
    (n_heads in [1, 64] with d_model 128: 3, 5, 6, 7 ... fail, the ends do not), else its two ends."""
    if d.kind == "choice":
        return list(d.values)
    lo, hi = d.values
    if BY_PATH[d.key].type is int and d.kind == "int" and int(hi) - int(lo) < MAX_INT_VALUES:
        return list(range(int(lo), int(hi) + 1))
    return [lo, hi]


def _space_problems(spec: StudySpec, base: Preset) -> list[Problem]:
    """Configurations the space reaches that cannot train (warmup_steps above max_steps, d_model not a
    multiple of n_heads): every combination of the dimensions' ends (a choice: each value) while there
    are at most MAX_CORNERS, else each dimension's ends with the others all at their low or all at
    their high end. Only reachable points are checked (the base's own value of a searched key never
    is), so a warning is a trial that would fail: it uses up a trial before training. One warning per
    failing field, at the dimension that alone makes it fail, else at [space] with the combination."""
    import itertools

    from ..config.validate import validate

    dims = list(spec.space)
    if not dims:
        return []
    ends = [_probe_values(d) for d in dims]
    if math.prod(len(e) for e in ends) <= MAX_CORNERS:
        points = [list(p) for p in itertools.product(*ends)]
    else:
        points = [[e[0] for e in ends], [e[-1] for e in ends]]
        points += [[v if j == i else ends[j][k] for j in range(len(dims))]
                   for i in range(len(dims)) for v in ends[i] for k in (0, -1)]
    failing: dict[str, tuple[str, list[list[Any]]]] = {}  # field -> (first message, the points it fails at)
    for point in points:
        try:
            problems = [(p.path, f"{p.path}: {p.message}")
                        for p in validate(base.with_values({d.key: v for d, v in zip(dims, point)}), with_budget=False)
                        if p.is_error]
        except (PresetError, ValueError, TypeError) as e:
            problems = [("", str(e))]
        for path, msg in problems:
            failing.setdefault(path, (msg, []))[1].append(point)
    out: list[Problem] = []
    for msg, at in failing.values():
        # the dimensions that hold one value wherever it fails (and take others): what makes it fail
        culprits = [i for i, d in enumerate(dims) if len(ends[i]) > 1 and len({repr(p[i]) for p in at}) == 1]
        if not culprits:  # one dimension whose failing values fail whatever the others are (n_heads 3, 5, 7 …)
            culprits = [i for i in range(len(dims)) if len(ends[i]) > 2 and _explains(i, at, points)][:1]
        numeric = lambda v: (isinstance(v, str), 0 if isinstance(v, str) else v, repr(v))  # noqa: E731
        vals = sorted({p[culprits[0]] for p in at}, key=numeric) if len(culprits) == 1 else []
        shown = (f"{dims[culprits[0]].key} = {_fmt_values(vals)}"
                 + (f" ({len(vals)} of its {len(ends[culprits[0]])} values)" if len(vals) > 1 else "")
                 if len(culprits) == 1 else None) or \
            ", ".join(f"{dims[i].key} = {at[0][i]!r}" for i in culprits) or \
            ", ".join(f"{d.key} = {v!r}" for d, v in zip(dims, at[0]))
        path = f"space.{dims[culprits[0]].key}" if len(culprits) == 1 else "space"
        out.append(Problem("warning", path, f"trials with {shown} cannot train ({msg}): they fail and use up a "
                           "trial; narrow the range or [set] what it conflicts with", spec.lines.get(path)))
    return out


def _fmt_values(vals: list[Any], most: int = 6) -> str:
    """Values for a message; runs of integers as ranges (31-60; 3, 5-7, 9-15 …)."""
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in vals):
        return ", ".join(map(repr, vals[:most])) + (" …" if len(vals) > most else "")
    runs: list[list[int]] = []
    for v in vals:
        if runs and v == runs[-1][1] + 1:
            runs[-1][1] = v
        else:
            runs.append([v, v])
    text = [str(a) if a == b else f"{a}-{b}" for a, b in runs]
    return ", ".join(text[:most]) + (" …" if len(text) > most else "")


def _explains(i: int, at: list[list[Any]], points: list[list[Any]]) -> bool:
    """Whether dimension ``i`` alone tells the failing points ``at``: every point with one of their values
    of it fails, and some value of it never does."""
    bad = {repr(p[i]) for p in at}
    return len(bad) < len({repr(p[i]) for p in points}) and \
        sum(1 for p in points if repr(p[i]) in bad) == len(at)


def _objective_problems(spec: StudySpec, base: Preset) -> list[Problem]:
    """A diagnostic objective needs diag events: a model family that writes them and diag.every > 0."""
    if not spec.diagnostic:
        return []
    from ..models.registry import family

    line = spec.lines.get("study.objective")
    name = spec.settings["objective"]
    if name not in _metric_names():
        return []  # not a metric at all: parse said so (once, with "did you mean")
    archs = {base.model.arch} | {v for d in spec.space if d.key == "model.arch" for v in d.values}
    silent = sorted(a for a in archs if name not in family(a).diagnostics)
    if silent:
        return [Problem("error", "study.objective", f"{name} is a model diagnostic that {', '.join(silent)} "
                        "does not write", line)]
    if not base.diag.every:
        return [Problem("error", "study.objective", f"{name} is a model diagnostic, but the base preset's "
                        "diag.every = 0 writes none: set diag.every (in [set])", line)]
    return []


def _metric_names() -> list[str]:
    """What a study can optimise: the eval metrics and every registered family's diagnostics."""
    from ..models.registry import families

    return list(OBJECTIVES) + sorted({n for f in families() for n in f.diagnostics})


def _as_overrides(values: dict[str, Any]) -> list[str]:
    """[set] values as ``key=value`` overrides (TOML literals), applied before the command line's."""
    import tomli_w

    return [f"{k}={tomli_w.dumps({'v': v}).split('=', 1)[1].strip()}" for k, v in values.items()]


def trial_preset(base: Preset, params: dict[str, Any], seed_index: int, name: str) -> Preset:
    """The preset of one seed run of a trial: base < sampled params; seed = run.seed + seed_index."""
    changes = dict(params)
    changes["run.seed"] = base.run.seed + seed_index
    changes["run.name"] = name
    return base.with_values(changes)


def run_name(study: str, trial: int, seed_index: int) -> str:
    return f"{study}-t{trial:03d}-s{seed_index}"


# -- JSON Schema and reference ---------------------------------------------------------------------

def json_schema() -> dict[str, Any]:
    from ..config.jsonschema import _JSON_TYPES  # one mapping of field types

    study_props: dict[str, Any] = {}
    for f in STUDY_FIELDS:
        entry: dict[str, Any] = {"type": _JSON_TYPES[f.type], "default": f.default,
                                 # (a help that places its unit itself, "[steps]; 0 = …", keeps it there, once)
                                 "description": f.help + (f" [{f.unit}]" if f.unit and f"[{f.unit}]" not in f.help
                                                          else "")}
        if f.choices:
            entry["enum"] = list(f.choices)
        if f.min is not None:
            entry["minimum"] = f.min
        if f.max is not None:
            entry["maximum"] = f.max
        study_props[f.key] = entry
    pair = {"type": "array", "items": {"type": "number"}, "minItems": 2, "maxItems": 2}
    dist = {"description": "A distribution", "type": "object", "minProperties": 1, "maxProperties": 1,
            "additionalProperties": False,
            "properties": {"log": {**pair, "description": "[lo, hi], sampled on a log scale (lo > 0)"},
                           "range": {**pair, "description": "[lo, hi], uniform (float keys)"},
                           "int": {"type": "array", "items": {"type": "integer"}, "minItems": 2, "maxItems": 2,
                                   "description": "[lo, hi], integers, uniform"},
                           "choice": {"type": "array", "minItems": 1, "description": "values to choose from"}}}
    space_props = {path: {**dist, "description": f.help} for path, f in BY_PATH.items() if path not in NOT_SEARCHABLE}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "tuiLM study",
        "type": "object",
        "properties": {
            "study": {"type": "object", "description": "What to optimise, how many trials and seeds, how to search",
                      "properties": study_props, "required": ["base"], "additionalProperties": False},
            "space": {"type": "object", "description": "Preset keys to search, each with a distribution",
                      "properties": space_props, "additionalProperties": False},
            "set": {"type": "object", "description": "Preset keys set the same for every trial",
                    "properties": {path: {"type": _JSON_TYPES[f.type], "description": f.help}
                                   for path, f in BY_PATH.items() if path not in NOT_SEARCHABLE},
                    "additionalProperties": False},
        },
        "required": ["study", "space"],
        "additionalProperties": False,
    }


def reference_markdown() -> str:
    rows = ["| key | type | default | allowed | description |", "|---|---|---|---|---|"]
    for f in STUDY_FIELDS:
        default = repr(f.default) if f.type is str else str(f.default).lower() if f.type is bool else f.default
        rows.append(f"| `study.{f.key}` | {f.type.__name__} | `{default}` | {f.range_text().replace('|', chr(92) + '|')} "
                    f"| {f.help} |")
    return "\n".join(rows) + "\n"

"""What the preset editor computes, apart from its widgets: ``--set`` overrides read as unsaved edits,
a field's typed value, the problems of the current values, and the text of the title, the one-line
summary, and the section badges. No Textual here: the screen (editor.py) lays
these out, and each piece can be tested without an app."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

from rich.text import Text

from ...config.load import Preset, Problem, coerce_text, parse_toml_text
from ...config.schema import BY_PATH, FIELDS, Field
from ...config.validate import validate
from ...config.write import atomic_write_text, update_text
from ...units import fmt_bytes, fmt_count
from ..services import EstimateView


def _s(n: int) -> str:
    return "s" if n != 1 else ""


def shown_path(path: Path) -> str:
    """Relative to the working directory when inside it (shorter, and stable across checkouts)."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def read_overrides(overrides: Iterable[str]) -> tuple[dict[str, Any], dict[str, str], dict[str, str]]:
    """``KEY=VALUE`` overrides as edits: typed values, and for each value that cannot be read its
    message and its text (shown as typed). Unknown keys are left out (the loader reports them)."""
    values: dict[str, Any] = {}
    errors: dict[str, str] = {}
    raw_text: dict[str, str] = {}
    for text_override in overrides:
        p, _, v = text_override.partition("=")
        f = BY_PATH.get(p.strip())
        if f is not None:
            try:
                values[f.path] = coerce_text(f, v)
            except ValueError as e:
                errors[f.path] = str(e)
                raw_text[f.path] = v
    return values, errors, raw_text


def unreadable_in_file(raw: dict[str, Any], problems: Sequence[Problem]) -> dict[str, str]:
    """The file's values the loader could not take (a field with the wrong type: the default stands in):
    path -> the value as written, for the field to show instead of the default."""
    out: dict[str, str] = {}
    for p in problems:
        f = BY_PATH.get(p.path)
        if f is not None and f.type is bool:  # a switch cannot show "false" as written: its message does
            continue
        table = raw.get(f.section) if f is not None else None
        if isinstance(table, dict) and f is not None and f.key in table:
            v = table[f.key]
            out[p.path] = v if isinstance(v, str) else str(v).lower() if isinstance(v, bool) else repr(v)
    return out


def read_field(f: Field, raw: Any) -> Any:
    """The typed value of what a row holds (None: no choice made); ValueError says why it cannot be read."""
    if raw is None:
        raise ValueError(f"choose one of {', '.join(f.choices or ())}")
    return raw if isinstance(raw, bool) or f.choices else coerce_text(f, raw)


def collect_problems(preset: Preset, lines: dict[str, int], type_errors: dict[str, str],
                     load_problems: Sequence[Problem], budget: Sequence[Problem],
                     machine: Sequence[Problem]) -> list[Problem]:
    """Every problem of the current values, in the order the list shows them. A field whose text cannot
    be read shows that, and nothing else found about its last valid value."""
    problems = [Problem("error", p, m, lines.get(p)) for p, m in type_errors.items()]
    problems += [p if p.path in BY_PATH or not p.path else
                 Problem(p.level, p.path, f"{p.message} (not a field of the form: edit the file)", p.line)
                 for p in load_problems if p.path not in type_errors]
    problems += [p for p in validate(preset, with_budget=False) if p.path not in type_errors]
    problems += budget
    problems += [p for p in machine if p.path not in type_errors]
    return problems


NOT_ESTIMATED = {"run", "schedule", "sample", "checkpoint", "diag"}  # sections tuiLM/estimate/ never reads


def estimate_blocked(preset: Preset) -> bool:
    """Whether an error keeps the estimate from being made: one in a setting the estimator never
    reads (warmup_steps > max_steps) does not."""
    return any(p.is_error and p.path.partition(".")[0] not in NOT_ESTIMATED
               for p in validate(preset, with_budget=False))


def parse_budget(text: str) -> float | None:
    """The number in the budget box beside the estimate (empty: 0); None when it is not one."""
    try:
        value = float(text.strip()) if text.strip() else 0.0
    except ValueError:
        return None
    return value if value >= 0 and math.isfinite(value) else None


def read_budget(text: str, preset_gib: float | None) -> float:
    """The budget typed beside the estimate, else the preset's own (0: none)."""
    return parse_budget(text) or float(preset_gib or 0.0)


def budget_problems(est: EstimateView, budget_gib: float) -> list[Problem]:
    """The estimate against the budget typed beside it (a warning: it does not block a run)."""
    if budget_gib > 0 and est.total_bytes > budget_gib * 2**30:
        return [Problem("warning", "system.vram_budget_gib",
                        f"estimated peak {est.total_bytes / 2**30:.2f} GiB exceeds the budget "
                        f"{budget_gib:g} GiB")]
    return []


def first_problems(problems: Iterable[Problem]) -> dict[str, Problem]:
    """Per field, the problem shown beside it: its first error, else its first warning."""
    first: dict[str, Problem] = {}
    for p in problems:
        if p.path in BY_PATH and (p.path not in first or (p.is_error and not first[p.path].is_error)):
            first[p.path] = p
    return first


def section_badges(first: dict[str, Problem], changed: set[str]) -> dict[str, str]:
    """Per section header: its count of errors, warnings and changed fields (empty when none)."""
    badges: dict[str, str] = {}
    for section in {f.section for f in FIELDS}:
        errors = sum(1 for p in first.values() if p.is_error and p.path.startswith(section + "."))
        warns = sum(1 for p in first.values() if not p.is_error and p.path.startswith(section + "."))
        mods = sum(1 for path in changed if path.startswith(section + "."))
        badge = "".join(part for part, n in ((f"  ✗ {errors}", errors), (f"  ⚠ {warns}", warns),
                                              (f"  ● {mods} changed", mods)) if n)
        badges[section] = badge
    return badges


def title_text(path: Path | None, arch: Any, unsaved: bool, problems: Sequence[Problem]) -> Text:
    """The title bar: the file, the architecture, whether it is modified, the problem counts."""
    name = shown_path(path) if path else "new preset (unsaved)"
    n_err = sum(p.is_error for p in problems)
    n_warn = len(problems) - n_err
    t = Text.assemble(("preset ", "dim"), (name, "bold"), ("  ·  ", "dim"), (str(arch), "cyan"))
    if unsaved:
        t.append("  ● modified", style="yellow")
    t.append("  ·  ")
    t.append(f"{n_err} error{_s(n_err)}", style="bold red" if n_err else "green")
    t.append(f", {n_warn} warning{_s(n_warn)}", style="yellow" if n_warn else "dim")
    return t


def summary_text(est: EstimateView | None, budget_gib: float, error: str, side: bool = False,
                 width: int = 0) -> Text:
    """The estimate in one line, for narrow terminals where the side panel is hidden. Within ``width``
    (0: any) the artifact, then the CPU's figure give way; "f4: details" stays (it says where they are)."""
    pieces: list[tuple[int, str, str]] = []  # (priority: 0 kept, higher goes first; text; style)
    if est is not None:
        pieces.append((0, f"params {fmt_count(est.params)}", "bold"))
        pieces.append((0, f" · peak {fmt_bytes(est.total_bytes)}" + (f" {est.device}" if est.here else ""), ""))
        if budget_gib > 0:
            over = est.total_bytes > budget_gib * 2**30
            pieces.append((0, f" / {budget_gib:g} GiB", "red" if over else "green"))
        if est.here is not None:  # no CUDA on this machine: what a run here would take
            pieces.append((1, f" ({fmt_bytes(est.here[1])} on this CPU)", "yellow"))
        if est.artifact_bytes is not None:
            pieces.append((2, f" · artifact ≤ {fmt_bytes(est.artifact_bytes)}", ""))
    elif error:
        pieces.append((0, error, "red"))
    pieces.append((0, " · f4: form" if side else " · f4: details", "dim"))  # (the side panel, hidden here)
    while width and sum(len(p[1]) for p in pieces) > width and max(p[0] for p in pieces) > 0:
        pieces.remove(max(pieces, key=lambda p: p[0]))
    t = Text()
    for _, text, style in pieces:
        t.append(text, style=style)
    return t


def default_study_path(preset: Path | None, study_file: Path | None) -> Path:
    """Where F6 offers to add a field: the study file used last, else one named after the preset (in
    a studies/ folder beside it when there is one)."""
    if study_file is not None:
        return study_file
    if preset is not None:
        return preset.parent / "studies" / f"{preset.stem}-study.toml" \
            if (preset.parent / "studies").is_dir() else preset.with_name(f"{preset.stem}-study.toml")
    return Path("presets/studies/new-study.toml")


def add_field_to_study(study_path: Path, preset: Path | None, key: str, value: Any) -> tuple[Path, str]:
    """Add ``key`` as a search dimension of a study file (created when new; ``.toml`` added when the
    name lacks it): the file written, and what to tell. UserError when the key cannot be added."""
    from ...study.addfield import add_dimension

    if study_path.suffix != ".toml":
        study_path = study_path.with_suffix(".toml")
    dist, created = add_dimension(study_path, preset, key, value)
    kind, vals = next(iter(dist.items()))
    return study_path, f"{'Created' if created else 'Saved'} {shown_path(study_path)}: {key} = {{ {kind} = {vals} }}"


def save_as_path(preset: Path | None, preset_dirs: Callable[[], list[Path]] | None, run_name: str) -> Path:
    """Save-as offers a copy beside the file, or for a new preset its run name in the first preset folder
    (``preset_dirs``: the app's, when it has them)."""
    if preset is not None:
        return preset.with_name(preset.stem + "-copy.toml")
    dirs = preset_dirs() if preset_dirs is not None else [Path("presets")]
    return (dirs[0] if dirs else Path("presets")) / f"{run_name}.toml"


def write_preset(path: Path, original_text: str, changes: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """Write ``changes`` into the file's text (its comments and layout kept), atomically: the new text
    and its TOML. OSError when it cannot be written; PresetError when the text would not read back."""
    text = update_text(original_text, changes)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, text)
    return text, parse_toml_text(text, str(path))


def name_after(path: Path, run_name: str, source: Path | None = None) -> bool:
    """Whether a preset saved as ``path`` takes its stem as run.name: only while run.name is the
    default or the name of the file it came from, so lr-sweep.toml names its runs lr-sweep-… (not run-…,
    nor quickstart-… for a copy of quickstart.toml, which read as runs of the original)."""
    from ...runs import RunError, check_run_name

    if run_name not in (BY_PATH["run.name"].default, source.stem if source is not None else None):
        return False
    try:
        check_run_name(path.stem)
    except RunError:
        return False
    return True


def saved_message(path: Path, n_changed: int, n_errors: int) -> str:
    return (f"Saved {path} ({n_changed} key{_s(n_changed)} changed)"
            + (f" — {n_errors} error{_s(n_errors)} remain{'s' if n_errors == 1 else ''}" if n_errors else ""))


def cannot_start_message(errors: Sequence[Problem]) -> str:
    return (f"Cannot start: {len(errors)} error{_s(len(errors))} "
            f"(first: {errors[0].path}: {errors[0].message})")

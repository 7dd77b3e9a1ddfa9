"""Rich output for the CLI: validation problems, preset lists, runs. No torch."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from .config.load import Problem


def print_problems(problems: list[Problem], console: Console, source: str = "") -> None:
    for p in sorted(problems, key=lambda p: (not p.is_error, p.line or 0)):
        colour = "red" if p.is_error else "yellow"
        where = f"{source}:{p.line}: " if source and p.line else (f"{source}: " if source else "")
        console.print(f"[bold {colour}]{p.level}:[/] {escape(where)}[bold]{escape(p.path)}[/]: {escape(p.message)}",
                      highlight=False, soft_wrap=True)


def print_preset_list(extra: list[Path], console: Console) -> None:
    from .config.load import load
    from .config.presets import list_presets
    from .errors import UserError

    table = Table(title="presets", show_lines=False)
    for col in ("name", "arch", "params", "status", "notes"):
        table.add_column(col, overflow="fold" if col == "notes" else "ellipsis")
    for path in list_presets(extra):
        try:
            preset, problems = load(path)
        except UserError as e:
            table.add_row(escape(path.stem), "?", "", "[red]unreadable[/]", escape(str(e)))
            continue
        n_err = sum(p.is_error for p in problems)
        n_warn = len(problems) - n_err
        status = "[red]invalid[/]" if n_err else ("[yellow]warnings[/]" if n_warn else "[green]ok[/]")
        try:
            from .estimate import estimate
            from .units import fmt_count

            params = fmt_count(estimate(preset).params) if not n_err else ""
        except Exception:
            params = ""
        first = next((p for p in problems if p.is_error), None)  # (invalid: why, as the app's list says)
        notes = (f"✗ {n_err} error{'s' * (n_err > 1)}: " + (f"{first.path}: " if first.path else "") + first.message
                 if first else preset.run.notes)
        table.add_row(escape(path.stem), escape(preset.model.arch), params, status,
                      f"[red]{escape(notes)}[/]" if first else escape(notes))
    console.print(table)


# -- runs ----------------------------------------------------------------------------------------

_STATE_STYLE = {"completed": "green", "running": "cyan", "stopped": "yellow", "pruned": "magenta", "failed": "red",
                "dead": "red", "new": "dim", "unreadable": "red"}


def _settings(values: list[Any]) -> list[str]:
    """Setting values side by side: floats as short as keeps them apart (0.004055, not 0.004055164886752743),
    the rest as TOML-like literals."""
    from .units import short_values

    return [t if isinstance(v, float) else repr(v) for t, v in zip(short_values(values), values)]


def _differing(presets: list[Any], skip: tuple[str, ...] = ()) -> list[tuple[str, list[str]]]:
    """(key, each preset's value) for the settings that differ, less labels and ``skip``, and less
    settings none of these models reads (bdh_mult between two GPTs)."""
    from .config.schema import FIELDS, applies

    out = []
    for f in FIELDS:
        if f.path in ("run.name", "run.notes", *skip) or not any(applies(f, p.model.arch) for p in presets):
            continue
        values = [p.get(f.path) for p in presets]
        if any(v != values[0] for v in values[1:]):
            out.append((f.path, _settings(values)))
    return out


def _fmt(value: object, digits: int = 4) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return "-" if value != value else f"{value:.{digits}f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


def _read(run_dir: Path) -> Any:
    """The run read to the end through reader.RunReader (its column cache; the resume rule applied)."""
    from .reader import read_run

    reader = read_run(run_dir)
    reader.save_cache()  # a long run read without a cache (a trainer killed early) shows fast next time
    return reader


def _train_values(reader: Any, key: str, steady: bool = True) -> Any:
    """A train column's finite values; ``steady`` leaves out the run's first window (its warm-up:
    allocation, compile)."""
    import numpy as np

    col = reader.tables["train"].col(key)
    if col is None:
        return np.empty(0)
    col = col[1:] if steady and col.size > 1 else col
    return col[np.isfinite(col)]


def run_flag(run_dir: Path, s: Any) -> tuple[str, str]:
    """(flag, why) as the app's runs list has it: FROZEN from the run's latest mHC diagnostics (H_res = I
    and the gate at its init: the frozen-residual trap), else pruned for a study's pruned trial."""
    from .runs import read_preset
    from .tui.metrics import frozen_check

    model = read_preset(run_dir).get("model") if s.diag else None
    if isinstance(model, dict):
        f = frozen_check(model, s.diag.get("H_res_diag_mean"), s.diag.get("gate_value"), s.diag.get("step"))
        if f.frozen:
            return "FROZEN", f.text
    return ("pruned", "") if s.state == "pruned" else ("", "")


def _run_metrics(reader: Any) -> dict[str, object]:
    """Headline figures of a run (``_read``: the resumed history)."""
    import numpy as np

    from .events import float_or_none

    s = reader.summary()
    start, end = reader.run_start or {}, reader.run_end or {}
    tps = _train_values(reader, "tokens_per_s")
    bpb = reader.tables["eval"].col("val_bpb")
    return {
        "state": s.state, "arch": s.arch, "preset": s.preset_name,
        "params": start.get("params"), "steps": f"{s.step:,}/{s.max_steps:,}" if s.max_steps else f"{s.step:,}",
        "tokens": s.tokens, "last loss": s.last_loss,
        "last val_bpb": float(bpb[-1]) if bpb is not None and bpb.size else None,
        "best val_bpb": s.best_val_bpb, "best val_loss": s.best_val_loss,
        "tokens/s (training)": round(float(np.median(tps))) if tps.size else None,
        "artifact bytes": s.artifact_bytes, "elapsed": _duration(float_or_none(end.get("elapsed_s"))),
        "device": start.get("device", ""), "corpus": (start.get("corpus") or {}).get("fingerprint", ""),
        "reason": s.reason or ("the trainer is gone without writing run_end (killed, or its machine went down); "
                               "tuilm resume goes on from its last checkpoint" if s.state == "dead" else ""),
        "unreadable lines": reader.skipped or None,
        "flag": ": ".join(x for x in run_flag(reader.path, s) if x),
    }


def system_figures(run: Path | Any) -> list[tuple[str, str]]:
    """(label, text) rows of a run's throughput and hardware figures; only the measured ones.
    ``run``: a run directory, or a run already read (``_read``)."""
    import numpy as np

    from .units import fmt_flops

    reader = _read(Path(run)) if isinstance(run, (str, Path)) else run
    start = reader.run_start or {}  # the latest attempt's

    def med(key: str) -> float | None:
        v = _train_values(reader, key)
        return float(np.median(v)) if v.size else None

    def peak(key: str) -> float | None:
        v = _train_values(reader, key, steady=False)
        return float(v.max()) if v.size else None

    rows: list[tuple[str, str]] = []

    def add(label: str, value: float | None, fmt: str) -> None:
        if value is not None:
            rows.append((label, fmt.format(value)))

    add("MFU", med("mfu"), "{:.1%}")
    fps = med("flops_per_s")
    if fps is not None:
        rows.append(("model FLOP/s", fmt_flops(fps)))
    if isinstance(start.get("flops_per_token"), int):
        rows.append(("FLOPs / token", f"{start['flops_per_token']:,} (6N + attention)"))
    if start.get("peak_tflops") is not None:
        rows.append(("peak / device", f"{start['peak_tflops']:g} TFLOPS ({start.get('peak_source', '')})"))
    elif start.get("peak_source"):
        rows.append(("peak / device", str(start["peak_source"])))
    add("GPU utilisation", med("gpu_util_pct"), "{:.0f} %")
    used, total = peak("gpu_mem_used_gib"), peak("gpu_mem_total_gib")
    if used is not None:
        rows.append(("GPU memory (max)", f"{used:.2f} GiB" + (f" of {total:.2f} GiB" if total else "")))
    add("CUDA peak allocated", peak("cuda_max_alloc_gib"), "{:.2f} GiB")
    add("CUDA reserved (max)", peak("cuda_reserved_gib"), "{:.2f} GiB")
    add("GPU power", med("gpu_power_w"), "{:.0f} W")
    add("GPU temperature (max)", peak("gpu_temp_c"), "{:.0f} °C")
    add("process RSS (max)", peak("rss_gib"), "{:.2f} GiB")
    add("process CPU", med("cpu_pct"), "{:.0f} % (100 = one core)")
    used, total = peak("host_mem_used_gib"), peak("host_mem_total_gib")
    if used is not None:
        rows.append(("host memory (max)", f"{used:.2f} GiB" + (f" of {total:.2f} GiB" if total else "")))
    return rows


def _duration(seconds: float | None) -> str | None:
    from .units import fmt_duration

    return None if seconds is None else fmt_duration(seconds)


def _run_preset(run_dir: Path, why: list[str] | None = None):
    """The run's frozen preset, or None (then ``why`` gets the reason: an empty file counts, since the
    trainer never writes one and its defaults would pass for the run's settings)."""
    from .config.load import load
    from .errors import UserError
    from .runs import PRESET, read_preset

    try:
        preset = load(Path(run_dir) / PRESET)[0]
    except UserError as e:
        (why if why is not None else []).append(str(e))
        return None
    if not read_preset(run_dir):
        (why if why is not None else []).append(f"{Path(run_dir) / PRESET}: empty")
        return None
    return preset


def print_runs_list(console: Console, root: Path | None = None) -> None:
    from .runs import list_runs, require_runs_folder
    from .reader import summarize
    from .units import fmt_age, fmt_count

    base = require_runs_folder(root)
    runs = list_runs(root)
    if not runs:
        console.print(f"no runs yet in {escape(str(base))}/ (start one: tuilm run presets/quickstart.toml --headless)",
                      highlight=False)
        return
    # The run id and state are what a user acts on: never cut them. Columns that can be read from the id
    # or from `runs show` go, in this order, until the rest fits whole (80 columns over SSH).
    rows, summaries = [], {}
    for path in runs:
        s = summarize(path)
        summaries[path] = s
        rows.append((s, {"run": path.name, "state": str(s.state), "arch": str(s.arch), "preset": str(s.preset_name),
                         "step": f"{s.step:,}/{s.max_steps:,}" if s.max_steps else f"{s.step:,}",
                         "tokens": fmt_count(s.tokens), "loss": _fmt(s.last_loss), "best bpb": _fmt(s.best_val_bpb),
                         "age": fmt_age(s.age_s), "flag": run_flag(path, s)[0]}))
    cols = ["run", "state", "arch", "preset", "step", "tokens", "loss", "best bpb", "age"]
    cols += ["flag"] * any(cells["flag"] for _, cells in rows)  # (FROZEN: the frozen-residual trap)
    width = {c: max([len(c)] + [len(cells[c]) for _, cells in rows]) for c in cols}
    for optional in ("tokens", "preset", "arch", "age", "loss", "step"):  # best bpb, the measure, stays
        if sum(width[c] for c in cols) + 2 * (len(cols) - 1) + 2 <= console.width:  # (+2: the edges)
            break
        cols.remove(optional)
    table = Table(title=f"runs ({len(runs)})", box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)
    for col in cols:
        table.add_column(col, no_wrap=True, overflow="ellipsis", min_width=width[col] if col in ("run", "state") else None,
                         justify="right" if col in ("step", "tokens", "loss", "best bpb", "age") else "left")
    for s, cells in rows:
        style = _STATE_STYLE.get(s.state, "default")
        table.add_row(*(f"[{style}]{escape(cells[c])}[/]" if c == "state" else
                        f"[bold red]{cells[c]}[/]" if c == "flag" and cells[c] == "FROZEN" else escape(cells[c])
                        for c in cols))
    console.print(table)
    _print_seed_groups(runs, summaries, console)


def runs_list_data(root: Path | None = None) -> dict[str, Any]:
    """What `runs list --json` prints: every run's summary and every seed group's statistics (the
    figures the table and the app show; NaN and absent figures are null)."""
    import math

    from .groups import counted, group_runs, group_value, membership, state_counts
    from .runs import list_runs, require_runs_folder
    from .reader import summarize

    def num(x: Any) -> Any:
        return None if x is None or (isinstance(x, float) and not math.isfinite(x)) else x

    base = require_runs_folder(root)
    runs = list_runs(root)
    summaries = {p: summarize(p) for p in runs}
    members = {p: membership(p) for p in runs}
    out = {"root": str(base), "runs": [], "groups": []}
    for p in runs:
        s = summaries[p]
        flag, why = run_flag(p, s)
        out["runs"].append({"id": p.name, "path": str(p), "state": s.state, "arch": s.arch,
                            "preset": s.preset_name, "seed": members[p].seed, "step": s.step,
                            "max_steps": s.max_steps, "tokens": s.tokens, "last_loss": num(s.last_loss),
                            "best_val_bpb": num(s.best_val_bpb), "best_val_loss": num(s.best_val_loss),
                            "started": s.started, "elapsed_s": num(s.elapsed_s), "reason": s.reason,
                            "flag": flag, "flag_reason": why})
    for g in (g for g in group_runs(runs, members) if g.k > 1):
        states = [summaries[p].state for p in g.members]
        v = group_value(counted(states, [summaries[p].best_val_bpb for p in g.members]))
        out["groups"].append({"label": g.label, "runs": [p.name for p in g.members], "seeds": list(g.seeds),
                              "states": dict(state_counts(states)),
                              "best_val_bpb": {"mean": num(v.mean), "se": num(v.se), "k": v.k},
                              "lucky_seeds": [g.seeds[i] for i in v.lucky]})
    return out


def _print_seed_groups(runs: list[Path], summaries: dict, console: Console) -> None:
    """The seed groups among ``runs`` (groups.py): best val_bpb mean ± SE over the completed seeds, k and
    the possibly lucky seeds, as the app's runs list shows them."""
    from .groups import counted, group_runs, group_value, membership

    groups = [g for g in group_runs(runs, {p: membership(p) for p in runs}) if g.k > 1]
    if not groups:
        return
    table = Table(title=f"seed groups ({len(groups)})", box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)
    for col in ("group", "seeds", "best bpb (mean ± SE)", "k", "lucky"):
        table.add_column(col, no_wrap=True, overflow="ellipsis", justify="right" if col == "k" else "left")
    for g in groups:
        ss = [summaries[p] for p in g.members]
        values = counted([s.state for s in ss], [s.best_val_bpb for s in ss])
        v = group_value(values)
        lucky = " ".join(f"seed {g.seeds[i]}" for i in v.lucky)  # (indices into values, None ones too)
        table.add_row(escape(g.label), " ".join(str(x) for x in g.seeds), v.text(), str(v.k),
                      f"[yellow]{lucky}[/]" if lucky else "")
    console.print(table)
    console.print("[dim]name a group as group:RUN (any of its runs) or study:NAME#T[/]", highlight=False)


def print_run(run_dir: Path, console: Console) -> None:
    run_dir = Path(run_dir)
    reader = _read(run_dir)  # one read (through the column cache) for every figure below
    m = _run_metrics(reader)
    table = Table(title=escape(run_dir.name), show_header=False)
    table.add_column("metric", style="bold")
    table.add_column("value")
    for key, value in m.items():
        if key == "state":
            table.add_row(key, f"[{_STATE_STYLE.get(str(value), 'default')}]{escape(str(value))}[/]")
        elif value not in (None, ""):
            table.add_row(key, escape(_fmt(value)))
    console.print(table)
    _print_membership(run_dir, m.get("best val_bpb"), console)
    system = system_figures(reader)
    if system:
        st = Table(title="system (median over train events unless stated)", show_header=False)
        st.add_column("metric", style="bold")
        st.add_column("value")
        for key, value in system:
            st.add_row(key, escape(value))
        console.print(st)
    _print_hparams(run_dir, console)
    if reader.samples:
        last = reader.samples[-1]
        console.print(f"[dim]last sample @ step {last.step}:[/]")
        console.print(f"{last.prompt}{last.text}", markup=False, highlight=False)


def _print_hparams(run_dir: Path, console: Console, skip: tuple[str, ...] = ()) -> None:
    """The run's hyperparameters that differ from the defaults (``skip``: a seed group's seed)."""
    from .config.schema import FIELDS, applies

    why: list[str] = []
    preset = _run_preset(run_dir, why)
    if preset is None:
        console.print(f"[yellow]hyperparameters not shown: {escape(why[0])}[/]", highlight=False, soft_wrap=True)
        return
    hp = Table(title="hyperparameters (different from the defaults)")
    for col in ("key", "value", "default"):
        hp.add_column(col)
    for f in FIELDS:
        v = preset.get(f.path)
        if v != f.default and applies(f, preset.model.arch) and f.path not in skip:
            hp.add_row(f.path, *(escape(t) for t in _settings([v, f.default])))
    console.print(hp)


def _print_membership(run_dir: Path, best: Any, console: Console) -> None:
    """Which study trial the run is, and its seed group: one seed is one draw, so its best val_bpb is
    shown beside the group's mean ± SE over the siblings in the same runs folder (groups.py)."""
    from .groups import group_value, membership, seed_group_of
    from .runs import read_study_info

    info, me = read_study_info(run_dir), membership(run_dir)
    if "study" in info:
        seed = f" · seed {me.seed}" if me.seed is not None else ""
        console.print(f"study {info['study']} · trial {info.get('trial', '?')}{seed}", highlight=False, markup=False)
    group = seed_group_of(run_dir)
    if group is None or group.k < 2:
        return
    v = group_value(_set_values(group)[1])
    own = f"this seed {best:.4f}" if isinstance(best, float) else "this seed has no val_bpb yet"
    console.print(f"seed group {group.label}: {group.k} runs, seeds {' '.join(str(x) for x in group.seeds)} · "
                  f"best val_bpb {v.text()} (mean ± SE, k={v.k}) · {own}", highlight=False, markup=False,
                  soft_wrap=True)
    others = [p.name for p in group.members if p.resolve() != run_dir.resolve()]
    console.print(f"siblings: {' '.join(others)}", highlight=False, markup=False, soft_wrap=True)


def print_compare(run_dirs: list[Path], console: Console) -> None:
    run_dirs = [Path(d) for d in run_dirs]
    metrics = [_run_metrics(_read(d)) for d in run_dirs]
    table = Table(title="runs compared")
    table.add_column("metric", style="bold")
    for head in _fit_heads([d.name for d in run_dirs], ["metric", *metrics[0]], console):
        table.add_column(escape(head), justify="right")
    for key in metrics[0]:
        values = [m[key] for m in metrics]
        if key == "flag":  # (the word: `runs show` says why)
            values = [str(v).split(":")[0] for v in values]
        if all(v in (None, "") for v in values):
            continue
        table.add_row(key, *(escape(_fmt(v)) for v in values))
    console.print(table)
    presets = [_run_preset(d) for d in run_dirs]
    if any(p is None for p in presets):
        missing = ", ".join(escape(d.name) for d, p in zip(run_dirs, presets) if p is None)
        console.print(f"[yellow]no readable preset.toml for {missing}: hyperparameters not compared[/]")
        return
    diff = Table(title="hyperparameters that differ")
    diff.add_column("key", style="bold")
    rows = _differing(presets)
    for head in _fit_heads([d.name for d in run_dirs], ["key", *(k for k, _ in rows)], console):
        diff.add_column(escape(head))
    for key, cells in rows:
        diff.add_row(key, *(escape(c) for c in cells))
    if rows:
        console.print(diff)
    else:
        console.print("the runs have identical hyperparameters")


def _fit_heads(names: list[str], keys: list[str], console: Console) -> list[str]:
    """Run ids as the heads of columns beside a column of ``keys``, in the console's width: cut where
    they still tell runs apart (``units.fit_id``: quickstart-…184308), not at their end, where Rich cut
    them (quickstart-20261…, the same for two runs of one preset on one day)."""
    from .units import fit_id

    room = (console.width - max(map(len, keys)) - 1 - 3 * (len(names) + 1)) // max(1, len(names))
    return [fit_id(n, max(8, room)) for n in names]


# -- sets of runs: a study trial's seeds or a seed group (groups.RunSet) ---------------------------------

def _set_values(s: Any) -> tuple[list[Any], list[float | None]]:
    """A group's (groups.RunSet or SeedGroup) members' summaries and their best val_bpb as a group's statistics count them (completed)."""
    from .groups import counted
    from .reader import summarize

    ss = [summarize(p) for p in s.members]
    return ss, counted([x.state for x in ss], [x.best_val_bpb for x in ss])


def _lucky(s: Any, v: Any) -> str:
    """The possibly lucky seeds (group_value's indices are into the values given, None ones too)."""
    return " ".join(f"seed {s.seeds[i]}" if s.seeds[i] is not None else s.members[i].name for i in v.lucky)


def print_set(s: Any, console: Console) -> None:
    """A seed group or a study trial: its runs (seed, state, step, best val_bpb), mean ± SE over the
    completed seeds with k and the possibly lucky seed, and the configuration's hyperparameters."""
    from .groups import counted, group_value

    readers = [_read(p) for p in s.members]  # (once: the summaries and the diagnostics below)
    ss = [r.summary() for r in readers]
    values = counted([x.state for x in ss], [x.best_val_bpb for x in ss])
    what = "trial" if s.kind == "trial" else "seed group"
    table = Table(title=escape(f"{what} {s.label}"), box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)
    for col in ("run", "seed", "state", "step", "best bpb"):
        table.add_column(col, no_wrap=col != "run", justify="left" if col in ("run", "state") else "right")
    for p, sd, x in zip(s.members, s.seeds, ss):
        table.add_row(escape(p.name), "-" if sd is None else str(sd),
                      f"[{_STATE_STYLE.get(x.state, 'default')}]{escape(x.state)}[/]", f"{x.step:,}",
                      _fmt(x.best_val_bpb))
    console.print(table)
    if s.kind == "group" and len(s.members) == 1:
        console.print("a group of one: no other run in its folder has this configuration with another seed",
                      highlight=False, markup=False, soft_wrap=True)
    if s.trial_params:
        console.print("params: " + ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                                             for k, v in s.trial_params), highlight=False,
                      markup=False, soft_wrap=True)
    v = group_value(values)
    if v.k == 0:
        console.print("best val_bpb: none yet", highlight=False, markup=False)
    else:
        done = any(x.state == "completed" for x in ss)  # (groups.counted: none completed: every value counts)
        only = " completed" if done and v.k < len(values) else ""
        lucky = _lucky(s, v)
        console.print(f"best val_bpb {v.text()} (mean ± SE over {v.k}{only} seed{'s' * (v.k != 1)})"
                      + (f" · possibly lucky: {lucky} (beyond seed noise)" if lucky else ""), highlight=False,
                      markup=False, soft_wrap=True)
    _print_diag_stats(s, ss, readers, console)
    _print_hparams(s.members[0], console, skip=("run.seed", "run.name"))  # (the first seed's name)


DIAG_STATS = (("stream_similarity", "minimize"), ("gate_value", ""), ("H_res_diag_mean", ""))  # (seed 000's)


def _print_diag_stats(s: Any, ss: list[Any], readers: list[Any], console: Console) -> None:
    """The mHC diagnostics a user of seed 000 judges a configuration by, at each seed's last diag event,
    as mean ± SE over the seeds the group counts, each seed's value, and a seed beyond seed noise
    (stream_similarity, lower = streams more differentiated: its 0.087 "best ever" never came back)."""
    import numpy as np

    from .groups import counted, group_value

    kept = counted([x.state for x in ss], [x.state for x in ss])
    rows = []
    for name, direction in DIAG_STATS:
        vals: list[float | None] = []
        for r, c in zip(readers, kept):
            col = r.tables["diag"].col(name) if c is not None else None
            fin = col[np.isfinite(col)] if col is not None else []
            vals.append(float(fin[-1]) if len(fin) else None)
        if all(v is None for v in vals):
            continue
        v = group_value(vals, direction or "minimize")
        lucky = " ".join(f"seed {s.seeds[i]}" for i in v.lucky) if direction else ""
        rows.append((name, v.text() + (f" (k={v.k})" if v.k > 1 else ""), " ".join(_fmt(x, 3) for x in vals), lucky))
    if not rows:
        return
    table = Table(title="last diagnostics (mean ± SE over the seeds counted)", box=box.SIMPLE_HEAD,
                  pad_edge=False, collapse_padding=True)
    for col in ("metric", "mean ± SE", "per seed", *(("possibly lucky",) if any(r[3] for r in rows) else ())):
        table.add_column(col, no_wrap=col != "per seed")
    for row in rows:
        table.add_row(*(escape(c) for c in row[:3]), *((f"[yellow]{escape(row[3])}[/]",) if any(r[3] for r in rows)
                                                       else ()))
    console.print(table)


def _fit_labels(labels: list[str], width: int) -> list[str]:
    """Set labels in ``width`` cells: "gpt-small (tiny-v1-20261200-202515)" keeps its run's end
    (gpt-small (tiny-v1-…202515)), a plain run id is shortened in its middle (units.fit_id)."""
    from .units import fit_id

    out = []
    for label in labels:
        name, paren, inner = label.partition(" (")
        if paren and inner.endswith(")") and len(label) > width:
            label = f"{name} ({fit_id(inner[:-1], max(8, width - len(name) - 3))})"
        out.append(fit_id(label, width) if len(label) > width else label)
    return out


def _rows_table(columns: dict[str, list[str]], right: tuple[str, ...] = (), title: str | None = None) -> Table:
    """A compact table of named columns (cells not wrapped): a row per set."""
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True, title=title)
    columns = {c: v for c, v in columns.items() if v}  # (an empty list: no such column)
    for c in columns:
        table.add_column(escape(c), no_wrap=True, justify="right" if c in right else "left")
    for row in zip(*columns.values()):
        table.add_row(*(escape(v) for v in row))
    return table


def print_set_compare(sets: list[Any], console: Console) -> None:
    """Seed groups side by side: k, seeds, state, best val_bpb mean ± SE, each seed's best and lucky
    seeds; each against the first, seed by seed where they share seeds (study/stats.compare: paired
    t-test and bootstrap interval, Welch when the seeds differ); the hyperparameters that differ.
    More than three groups (a whole study) read one row each, as `study show` prints trials."""
    from .groups import group_value, states_text
    from .study.stats import compare
    from .units import short_key

    read = [_set_values(s) for s in sets]
    stats = [group_value(values) for _, values in read]
    study = {s.label.partition(" ")[2] for s in sets}
    if all(s.kind == "trial" for s in sets) and len(study) == 1:  # one study's trials: "#3", not "#3 lr" (80 columns)
        sets = [dataclasses.replace(s, label=s.label.partition(" ")[0]) for s in sets]
        title = f"trials of study {study.pop()} compared (mean ± SE over seeds)"
    else:
        title = "seed groups compared (mean ± SE over seeds)"
    presets = [_run_preset(s.members[0]) for s in sets]
    differ = _differing(presets, skip=("run.seed",)) if all(p is not None for p in presets) else []
    first = [(x, sd) for x, sd in zip(read[0][1], sets[0].seeds) if x is not None]
    verdicts = []
    for s, (_, values) in list(zip(sets, read))[1:]:
        mine = [(x, sd) for x, sd in zip(values, s.seeds) if x is not None]
        verdicts.append("no seed with a val_bpb to compare yet" if not mine or not first else
                        compare([x for x, _ in mine], [x for x, _ in first], [sd for _, sd in mine],
                                [sd for _, sd in first]).verdict)
    rows = [("runs", [str(len(s.members)) for s in sets]),
            ("seeds", [" ".join("-" if x is None else str(x) for x in s.seeds) for s in sets]),
            ("state", [states_text([x.state for x in ss]) for ss, _ in read]),
            ("best bpb", [v.text() + (f" (k={v.k})" if v.k > 1 and len(sets) <= 3 else "") for v in stats]),
            ("per seed", [" ".join(_fmt(x) for x in values) for _, values in read])]
    lucky = [_lucky(s, v) for s, v in zip(sets, stats)]
    if any(lucky):
        rows.append(("lucky", lucky))
    if len(sets) <= 3:
        table = Table(title=title)
        table.add_column("", style="bold", no_wrap=True)
        for s in sets:
            table.add_column(escape(s.label), justify="right")
        for name, cells in rows:
            table.add_row(name, *(escape(c) for c in cells))
    else:  # a row per group: the numbers stay whole at 80 columns
        keys = [k for k, _ in differ]
        console.print(title, style="italic", highlight=False, markup=False, soft_wrap=True)
        by = dict(rows)
        stat_cols = {"k": [str(v.k) for v in stats], "state": by["state"], "best bpb": by["best bpb"],
                     **({"lucky": lucky} if any(lucky) else {})}
        hyper = {short_key(k, keys): v for k, v in differ}

        def cells(cols: dict[str, list[str]]) -> int:  # (a column and the two cells between columns)
            return sum(max(len(c), *map(len, v)) + 2 for c, v in cols.items())

        names, below = [s.label for s in sets], {}
        room = console.width - 2 - cells(stat_cols) - cells(hyper)  # (2: the table's edges)
        if room < min(12, max(map(len, names))):  # too wide beside the figures: the settings go below,
            below, hyper = hyper, {}  # and each set gets a number (#i) to find it there
            room = console.width - 2 - cells(stat_cols) - len(f"#{len(sets) - 1}  ")
            if room < 12:  # still too wide: the states in marks ("✓2 ✗1 ■1")
                stat_cols["state"] = [states_text([x.state for x in ss], tight=True) for ss, _ in read]
                room = console.width - 2 - cells(stat_cols) - len(f"#{len(sets) - 1}  ")
        labels = _fit_labels(names, max(8, min(36, room)))
        table = _rows_table({"#": [f"#{i}" for i in range(len(sets))] if below else [], "": labels, **stat_cols,
                             **hyper}, right=("k", "best bpb"))
    console.print(table)
    console.print(f"each against {sets[0].label}, the first named (a % is of its mean):", highlight=False,
                  markup=False, soft_wrap=True)
    for s, said in zip(sets[1:], verdicts):
        console.print(f"{s.label} vs {sets[0].label}: {said}", highlight=False, markup=False, soft_wrap=True)
    if any(p is None for p in presets):
        console.print("[yellow]a group's preset.toml cannot be read: hyperparameters not compared[/]")
    elif not differ:
        console.print("the groups have identical hyperparameters (besides the seed)")
    elif len(sets) > 3 and below:  # a row per key, a column per set (#i as in the table above)
        table = _rows_table({"hyperparameters that differ": [k for k, _ in differ],
                             **{f"#{i}": [v[i] for _, v in differ] for i in range(len(sets))}})
        console.print(table)
    elif len(sets) <= 3:
        diff = Table(title="hyperparameters that differ")
        diff.add_column("key", style="bold")
        for s in sets:
            diff.add_column(escape(s.label))
        for key, cells in differ:
            diff.add_row(key, *(escape(c) for c in cells))
        console.print(diff)

"""The ``tuilm`` command: thin commands over library code, one error handler.

Never imports torch at module level: ``tuilm --help`` and the app start fast, and the trainer runs
in its own process.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import List, Optional, Tuple

import typer
from rich.console import Console
from rich.markup import escape

from .errors import UserError

SET_REFS = "study:NAME (every trial of a study), study:NAME#T (trial T's seeds) or group:RUN (RUN's seed group)"

def _flags_show_no_type() -> None:
    """Typer (0.29) prints a type beside every option, so a flag read as if it took a value
    (`--headless <bool>`, `--help <bool>`). A flag's type column stays empty; tests/test_cli.py checks
    the help, so a Typer that renames this method fails there, loudly."""
    from typer.core import TyperOption

    shown = getattr(TyperOption, "display_type_rich", None)
    if shown is None or getattr(shown, "tuilm", False):
        return

    def display_type_rich(self: TyperOption, ctx: object) -> str | None:
        return None if self.is_flag else shown(self, ctx)

    display_type_rich.tuilm = True  # type: ignore[attr-defined]
    TyperOption.display_type_rich = display_type_rich  # type: ignore[method-assign]


_flags_show_no_type()

app = typer.Typer(
    name="tuilm",
    help="Terminal training console for small-LM hyperparameter experiments. Run with no command to "
         "open the app.",
    no_args_is_help=False,
    add_completion=False,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
)
preset_app = typer.Typer(help="List presets, print the JSON Schema or the reference table.", add_completion=False)
runs_app = typer.Typer(help="List, show and compare runs.", add_completion=False)
study_app = typer.Typer(help="Studies: search, prune and repeat over seeds as one experiment (Optuna).",
                        add_completion=False)
app.add_typer(preset_app, name="preset")
app.add_typer(runs_app, name="runs")
app.add_typer(study_app, name="study")

console = Console()
err_console = Console(stderr=True)

SetOpt = typer.Option(None, "--set", "-s", help="Override a field: section.key=value (repeatable).",
                      metavar="SECTION.KEY=VALUE")


def _load(preset: str, sets: Optional[List[str]], machine: bool = False, nproc: int = 1):
    """Load and validate; print problems; exit 1 on errors. ``machine``: also check the memory
    estimate against this machine's (a warning)."""
    from .config.load import load
    from .config.presets import find_preset
    from .report import print_problems

    path = find_preset(preset)
    from .config.presets import is_study_file

    if is_study_file(path):
        raise UserError(f"{path} is a study file: tuilm study validate {path} (or study run)")
    p, problems = load(path, sets or [])
    if machine and not any(x.is_error for x in problems):
        from .config.validate import machine_problems

        problems = problems + machine_problems(p, world_size=nproc)
    print_problems(problems, err_console, source=str(path))
    if any(x.is_error for x in problems):
        raise typer.Exit(1)
    return p, problems


@app.callback(invoke_without_command=True)
def _root(ctx: typer.Context,
          version: bool = typer.Option(False, "--version", help="Print the version and exit."),
          presets: Optional[List[Path]] = typer.Option(None, "--presets", "-P", help="Also list presets from this "
                                                       "folder in the app (repeatable).", file_okay=False),
          ) -> None:
    if version:
        from . import __version__

        console.print(f"tuilm {__version__}")
        raise typer.Exit(0)
    if ctx.invoked_subcommand is None:
        from .tui.app import run_app

        for folder in presets or []:
            if not folder.is_dir():
                raise UserError(f"--presets {folder}: no such folder", exit_code=2)
        _app_needs_a_terminal("see tuilm --help for the commands that run without it")
        run_app(preset_dirs=presets or [])


@app.command()
def validate(preset: str = typer.Argument(..., metavar="PRESET", help="Preset file or name."),
             sets: Optional[List[str]] = SetOpt) -> None:
    """Check a preset: errors block a run, warnings do not. Exit 0 ok, 1 invalid."""
    p, problems = _load(preset, sets, machine=True)
    n_warn = sum(1 for x in problems if not x.is_error)
    console.print(f"[green]ok[/]: {escape(str(p.source))} ({escape(p.model.arch)}, "
                  f"{n_warn} warning{'s' if n_warn != 1 else ''})")


@app.command()
def vram(preset: str = typer.Argument(..., metavar="PRESET", help="Preset file or name."),
         sets: Optional[List[str]] = SetOpt,
         budget: Optional[str] = typer.Option(None, "--budget", "-b", help="Memory per device: a bare number is "
                                              "GiB (14), or give a unit: 14GiB, 14G, 16GB, 500MiB."),
         fit: bool = typer.Option(False, "--fit", help="Propose --set overrides that fit the budget."),
         as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
         exact: bool = typer.Option(False, "--exact", help="Count saved tensors of one real step on CPU (slow)."),
         measure: bool = typer.Option(False, "--measure", help="Run one real step and report measured memory."),
         nproc: int = typer.Option(1, "--nproc", min=1, help="Devices (DDP adds gradient buckets)."),
         device: Optional[str] = typer.Option(None, "--device", help="Estimate for cuda or cpu (default: the "
                                              "preset's system.device; auto counts as cuda)."),
         dtype: Optional[str] = typer.Option(None, "--dtype", help="bf16, fp16 or fp32 (default: the preset's)."),
         ) -> None:
    """Parameters, memory breakdown, artifact size, budget verdict and fit suggestions.

    Exit 0 when there is no budget, the preset fits, or --fit found overrides that fit; 1 when it does
    not fit (the reason is the last line, and on stderr); 2 when nothing could be estimated: a usage
    error, a missing or invalid preset, an unreadable --budget.
    """
    from .estimate.report import vram_command
    from .units import parse_size

    if device is not None and device not in ("cuda", "cpu"):
        raise UserError(f"--device must be cuda or cpu, got {device!r}", exit_code=2)
    if dtype is not None and dtype not in ("bf16", "fp16", "fp32"):
        raise UserError(f"--dtype must be bf16, fp16 or fp32, got {dtype!r}", exit_code=2)
    budget_bytes = parse_size(budget, bare="GiB") if budget is not None else None
    if budget_bytes is not None and budget_bytes <= 0:
        raise UserError(f"--budget {budget}: must be more than 0 (leave it out for no budget)", exit_code=2)
    # exit 1 means "does not fit" to scripts: a preset that cannot be estimated is exit 2 here
    try:
        p, _ = _load(preset, sets)
    except UserError as e:
        raise UserError(str(e), exit_code=2) from None
    except typer.Exit as e:
        raise typer.Exit(2 if e.exit_code else 0) from None
    if fit and budget_bytes is None and not p.system.vram_budget_gib:
        raise UserError("--fit needs a budget: --budget 14 (GiB) or system.vram_budget_gib in the preset",
                        exit_code=2)
    code = vram_command(p, budget_bytes=budget_bytes, fit=fit, as_json=as_json, exact=exact, measure=measure,
                        world_size=nproc, console=console, device=device, dtype=dtype, err_console=err_console)
    raise typer.Exit(code)


@app.command()
def run(preset: str = typer.Argument(..., metavar="PRESET", help="Preset file or name."),
        sets: Optional[List[str]] = SetOpt,
        headless: bool = typer.Option(False, "--headless", help="No app: Rich progress in this terminal."),
        name: Optional[str] = typer.Option(None, "--name", help="Run name (default: run.name)."),
        nproc: int = typer.Option(1, "--nproc", min=1, help="Processes for DDP through torchrun."),
        tensorboard: Optional[Path] = typer.Option(None, "--tensorboard", metavar="DIR", file_okay=False,
                                                   help="Mirror the run live into TensorBoard files in "
                                                        "DIR/<run-id> (sets system.tensorboard_dir)."),
        force: bool = typer.Option(False, "--force", help="Start even when the memory estimate exceeds this "
                                   "machine's memory."),
        ) -> None:
    """Start a training run (in the app, or --headless in this terminal)."""
    if tensorboard is not None:
        from .export import require_tensorboardx

        require_tensorboardx()  # a clear error now rather than a mirror that silently stays off
        sets = [*(sets or []), f"system.tensorboard_dir={tensorboard.expanduser().resolve()}"]
    p, problems = _load(preset, sets, machine=True, nproc=nproc)
    if not force and any(x.path == "system.device" and "exceeds this machine" in x.message for x in problems):
        raise UserError("not started: the memory estimate exceeds this machine's memory (see the warning "
                        "above); shrink the preset or pass --force")
    if not headless and not _has_terminal():  # piped or run by a script: the app would draw into the pipe
        err_console.print("no terminal for the app: running headless", highlight=False)
        headless = True
    if headless:
        from .headless import start_run

        raise typer.Exit(start_run(p, name=name, nproc=nproc, console=console))
    from .tui.app import run_app

    run_app(preset_path=p.source, launch=True, overrides=sets or [], run_name=name)


def _has_terminal() -> bool:
    return sys.stdin.isatty() and sys.stdout.isatty()


def _app_needs_a_terminal(alternative: str) -> None:
    if not _has_terminal():
        raise UserError(f"the app needs a terminal (stdin and stdout are not one here): {alternative}")


@app.command()
def resume(run_ref: str = typer.Argument(..., metavar="RUN", help="Run directory or id."),
           headless: bool = typer.Option(True, "--headless/--app", help="Resume in this terminal or the app."),
           nproc: int = typer.Option(1, "--nproc", min=1, help="Processes for DDP through torchrun.")) -> None:
    """Continue a stopped or crashed run from its last checkpoint."""
    from .runs import find_run

    run_dir = find_run(run_ref)
    if headless:
        from .headless import resume_run

        raise typer.Exit(resume_run(run_dir, nproc=nproc, console=console))
    from .headless import refuse_unresumable
    from .tui.app import run_app

    _app_needs_a_terminal(f"tuilm resume {run_ref} --headless")
    refuse_unresumable(run_dir)
    run_app(run_dir=run_dir, resume=True)


@app.command()
def stop(run_ref: str = typer.Argument(..., metavar="RUN", help="Run directory or id."),
         wait: float = typer.Option(0.0, "--wait", "-w", min=0.0, help="Seconds to wait for it to exit.")) -> None:
    """Stop a running trainer: it finishes its step, writes a checkpoint and run_end(stopped).

    Exit 0 when it was asked to stop (and, with --wait, has stopped); 1 when no trainer of this run is
    running (or it outlived --wait). Only a process proved to be the run's trainer is ever signalled.
    """
    from .launch import stop_command
    from .runs import find_run

    raise typer.Exit(stop_command(find_run(run_ref), wait, console))


@app.command("open")
def open_run(run_refs: List[str] = typer.Argument(..., metavar="RUN...", help="Run directories or ids; "
                                                   "two or more open the compare view; " + SET_REFS +
                                                   ": a seed group is drawn as its mean and seed band.")) -> None:
    """Open a run (finished or still running) in the app, or compare several."""
    from .groups import resolve_refs
    from .tui.app import run_app

    sets = resolve_refs(run_refs)
    _app_needs_a_terminal(f"tuilm runs {'show' if len(sets) == 1 else 'compare'} {' '.join(run_refs)}")
    if any(s.is_set for s in sets):
        run_app(sources=[(s.label, list(s.members)) for s in sets])
    else:
        run_app(run_dir=sets[0].members[0] if len(sets) == 1 else [s.members[0] for s in sets])


@app.command()
def sample(run_ref: str = typer.Argument(..., metavar="RUN", help="Run directory or id."),
           prompt: Optional[str] = typer.Option(None, "--prompt", "-p", help="Prompt (default: the preset's)."),
           max_new_tokens: Optional[int] = typer.Option(None, "--max-new-tokens", "-n", min=1,
                                                        help="Tokens to generate (default: sample.max_new_tokens)."),
           temperature: Optional[float] = typer.Option(None, "--temperature", "-t", min=1e-6,
                                                       help="Softmax temperature: lower is more likely text "
                                                            "(default: sample.temperature)."),
           top_k: Optional[int] = typer.Option(None, "--top-k", "-k", min=0,
                                               help="Sample among the k likeliest tokens; 0: all (default: "
                                                    "sample.top_k)."),
           seed: Optional[int] = typer.Option(None, "--seed", min=0,
                                              help="Seed of the sampling (default: sample.seed).")) -> None:
    """Generate text from a run's latest checkpoint."""
    from .runs import find_run
    from .train.sampling import sample_command

    raise typer.Exit(sample_command(find_run(run_ref), prompt=prompt, max_new_tokens=max_new_tokens,
                                    temperature=temperature, top_k=top_k, seed=seed, console=console))


@app.command()
def export(run_refs: List[str] = typer.Argument(..., metavar="RUN...", help=f"Run directories or ids; {SET_REFS}."),
           to: Tuple[str, Path] = typer.Option(..., "--to", metavar="FORMAT DIR",
                                               help="tensorboard DIR (event files in DIR/<run-id>/) or csv DIR "
                                                    "(DIR/<run-id>.csv, one row per step, led by the run id and seed)."),
           ) -> None:
    """Export runs to TensorBoard (scalars, samples, hparams with final metrics) or to wide CSV."""
    from .export import export_csv, export_tensorboard
    from .groups import member_runs, resolve_refs
    from .reader import summarize

    fmt, out = to
    if fmt not in ("tensorboard", "csv"):
        raise UserError(f"--to {fmt!r}: choose tensorboard or csv (e.g. --to tensorboard tb/)", exit_code=2)
    if out.exists() and not out.is_dir():
        raise UserError(f"--to {fmt} {out}: exists and is not a folder", exit_code=2)
    dirs = member_runs(resolve_refs(run_refs))
    if fmt == "tensorboard":
        from .export import require_tensorboardx, tensorboard_target

        require_tensorboardx()
        for run_dir in dirs:  # refuse before writing anything
            tensorboard_target(run_dir, out)
    import contextlib

    from rich.progress import Progress

    bar = Progress(console=console, transient=True) if console.is_terminal else None  # (piped: no blank line)
    with bar or contextlib.nullcontext():
        for run_dir in dirs:
            write = export_csv if fmt == "csv" else export_tensorboard
            if bar is None:
                target = write(run_dir, out)
            else:
                task = bar.add_task(f"{escape(run_dir.name)}: {'rows' if fmt == 'csv' else 'events'}", total=None)
                target = write(run_dir, out, progress=lambda done, total, t=task: bar.update(t, completed=done,
                                                                                            total=total))
                bar.remove_task(task)
            live = summarize(run_dir)
            still = (f" (still running: up to step {live.step:,}; export again for the rest)"
                     if live.state in ("running", "starting") else "")
            console.print(f"{escape(run_dir.name)} -> {escape(str(target))}{still}", highlight=False,
                          soft_wrap=True)  # (one line: the path stays whole to copy)
    if fmt == "tensorboard":
        console.print(f"view: tensorboard --logdir {escape(str(out))}", highlight=False)


@preset_app.command("list")
def preset_list(folder: Optional[Path] = typer.Argument(None, metavar="FOLDER",
                                                      help="Extra folder of presets.")) -> None:
    """Presets in ./presets, the shipped folder, and FOLDER."""
    from .report import print_preset_list

    if folder is not None and not folder.is_dir():
        raise UserError(f"{folder}: {'not a folder' if folder.exists() else 'no such folder'}", exit_code=2)
    print_preset_list([folder] if folder else [], console)


@preset_app.command("schema")
def preset_schema(out: Optional[Path] = typer.Option(None, "--out", "-o", help="Write to a file.")) -> None:
    """JSON Schema for editors (taplo / Even Better TOML read `#:schema` lines)."""
    from .config.jsonschema import json_schema

    _write_json(json_schema(), out)


def _write_json(obj: object, out: Optional[Path]) -> None:
    import json

    text = json.dumps(obj, indent=2) + "\n"
    if out:
        out.write_text(text)
        console.print(f"wrote {escape(str(out))}")
    else:
        sys.stdout.write(text)


@preset_app.command("docs")
def preset_docs() -> None:
    """The preset reference table (Markdown), as in the README."""
    from .config.jsonschema import reference_markdown

    sys.stdout.write(reference_markdown())


@runs_app.command("list")
def runs_list(as_json: bool = typer.Option(False, "--json", help="Machine-readable output: every run's "
                                           "summary and every seed group's mean ± SE.")) -> None:
    """Runs under ./runs with state, preset, best val_bpb, steps and age; then their seed groups."""
    from .report import print_runs_list, runs_list_data

    if as_json:
        _write_json(runs_list_data(), None)
        return
    print_runs_list(console)


@runs_app.command("show")
def runs_show(run_ref: str = typer.Argument(..., metavar="RUN", help="A run id or folder; study:NAME#T (trial T's "
                                             "seeds) or group:RUN (RUN's seed group).")) -> None:
    """One run, or a seed group: summary, metrics and hyperparameters."""
    from .groups import resolve_ref
    from .report import print_run, print_set

    sets = resolve_ref(run_ref)
    if len(sets) > 1 and "#" not in run_ref:
        name = run_ref.partition(":")[2]
        raise UserError(f"{run_ref} names a whole study ({len(sets)} trials): `tuilm study show {name}` shows it; "
                        f"name one trial as study:{name}#T, or compare trials with `tuilm runs compare`", exit_code=2)
    if sets[0].is_set:
        for s in sets:  # (one, or a trial's runs split by a study name used twice in this runs folder)
            print_set(s, console)
    else:
        print_run(sets[0].members[0], console)


@runs_app.command("compare")
def runs_compare(run_refs: List[str] = typer.Argument(..., metavar="RUN...",
                                                     help=f"Run ids or folders; {SET_REFS}.")) -> None:
    """Runs side by side: metrics, and only the hyperparameters that differ. Seed groups side by side:
    mean ± SE over the seeds, and each judged against the first, seed by seed."""
    from .groups import resolve_refs
    from .report import print_compare, print_set_compare

    sets = resolve_refs(run_refs)
    if len(sets) < 2:
        raise UserError("compare needs at least two runs or groups", exit_code=2)
    seen: dict[tuple[Path, ...], str] = {}
    for s in sets:
        key = tuple(p.resolve() for p in s.members)
        if key in seen:
            raise UserError(f"{seen[key]} is named twice: compare needs different runs or groups", exit_code=2)
        seen[key] = s.label
    for a in sets:  # a seed against its own group: the pairing would compare a run with itself
        for b in sets:
            if a is not b and len(a.members) < len(b.members) and \
                    {p.resolve() for p in a.members} <= {p.resolve() for p in b.members}:
                raise UserError(f"{a.label} is one of the runs of {b.label}: compare it with another group",
                                exit_code=2)
    if any(s.is_set for s in sets):
        print_set_compare(sets, console)
    else:
        print_compare([s.members[0] for s in sets], console)


StorageOpt = typer.Option(None, "--storage", help="Optuna storage URL: postgresql://... (many machines), "
                          "sqlite:///..., or journal:PATH; default: runs/studies/NAME/journal.log")


@study_app.command("validate")
def study_validate(file: str = typer.Argument(..., metavar="FILE", help="Study file (TOML)."),
                   sets: Optional[List[str]] = SetOpt) -> None:
    """Check a study file and its base preset. Exit 0 ok, 1 invalid."""
    from .study.report import validate_command

    validate_command(file, sets or [], console, err_console)


NprocOpt = typer.Option(1, "--nproc", min=1, help="Processes per trial's trainer (DDP through torchrun; "
                        "rank 0 reports). With GPUs each trial gets this many of its own.")


@study_app.command("run")
def study_run(file: str = typer.Argument(..., metavar="FILE", help="Study file (TOML)."),
              name: Optional[str] = typer.Option(None, "--name", help="Study name (default: study.name)."),
              trials: Optional[int] = typer.Option(None, "--trials", min=1, help="Trials in all (default: study.trials)."),
              parallel: Optional[int] = typer.Option(None, "--parallel", min=1, help="Trials at once on this machine."),
              nproc: int = NprocOpt,
              storage: Optional[str] = StorageOpt,
              sets: Optional[List[str]] = typer.Option(None, "--set", "-s", metavar="SECTION.KEY=VALUE",
                                                       help="Override the base preset for every trial (repeatable).")) -> None:
    """Run a study, or continue it: trials whose trainer died resume from their last checkpoint."""
    from .study.engine import StudyEngine
    from .study.report import load_checked, run_engine

    from .launch import require_data

    spec, base, _ = load_checked(file, sets or [], err_console, name=name)
    require_data(base, "no trial was started")  # else every trial would fail at its first step
    engine = StudyEngine(spec, base, storage_url=storage, trials=trials, parallel=parallel, nproc=nproc,
                         console=console)
    raise typer.Exit(run_engine(engine, console))


@study_app.command("worker")
def study_worker(name: str = typer.Argument(..., metavar="NAME", help="Study name."),
                 storage: Optional[str] = StorageOpt,
                 parallel: Optional[int] = typer.Option(None, "--parallel", min=1, help="Trials at once on this machine."),
                 nproc: int = NprocOpt,
                 trials: Optional[int] = typer.Option(None, "--trials", min=1, help="Trials in all (default: study.trials).")
                 ) -> None:
    """Join a study from another machine (or process): ask for trials, run them here, tell the results."""
    from .study.engine import StudyEngine
    from .study.report import run_engine, worker_spec

    from .launch import require_data

    spec, base = worker_spec(name, storage)
    require_data(base, "this worker started no trial")
    engine = StudyEngine(spec, base, storage_url=storage, trials=trials, parallel=parallel, nproc=nproc,
                         console=console)
    raise typer.Exit(run_engine(engine, console, create=False))


@study_app.command("list")
def study_list(storage: Optional[str] = StorageOpt) -> None:
    """Studies under runs/studies/ (or in --storage) with trial counts and the best value."""
    from .study.report import list_command

    list_command(storage, console)


@study_app.command("show")
def study_show(name: str = typer.Argument(..., metavar="NAME"), storage: Optional[str] = StorageOpt,
               as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
               as_csv: bool = typer.Option(False, "--csv", help="One row per trial.")) -> None:
    """Trials with params, value mean ± SE and k, state, steps, run ids; the best; parameter importance."""
    from .study.report import show_command

    if as_json and as_csv:
        raise UserError("--json and --csv exclude each other", exit_code=2)
    show_command(name, storage, console, as_json=as_json, as_csv=as_csv)


@study_app.command("compare")
def study_compare(name: str = typer.Argument(..., metavar="NAME"),
                  a: int = typer.Argument(..., metavar="A", help="Trial number."),
                  b: int = typer.Argument(..., metavar="B", help="Trial number to judge A against."),
                  storage: Optional[str] = StorageOpt,
                  as_json: bool = typer.Option(False, "--json", help="Machine-readable output.")) -> None:
    """Judge trial A against trial B seed by seed: paired t-test and bootstrap interval (Welch when their
    seeds differ); 'not distinguishable from seed noise' unless both say so."""
    from .study.report import compare_command

    raise typer.Exit(compare_command(name, storage, a, b, console, as_json=as_json))


@study_app.command("confirm")
def study_confirm(name: str = typer.Argument(..., metavar="NAME"),
                  top: int = typer.Option(3, "--top", min=1, help="How many of the best trials to re-run."),
                  seeds: Optional[int] = typer.Option(None, "--seeds", min=1, max=100,
                                                      help="Fresh seeds per trial (default: the study's, at least 3)."),
                  parallel: Optional[int] = typer.Option(None, "--parallel", min=1, help="Trials at once on this machine."),
                  nproc: int = NprocOpt,
                  storage: Optional[str] = StorageOpt) -> None:
    """Re-run the best trials with fresh seeds as a new study NAME-confirmN (or continue the unfinished one
    of the same trials); shows whether the ranking held."""
    from .study.report import confirm_command

    raise typer.Exit(confirm_command(name, storage, top, seeds, parallel, console, nproc=nproc))


@study_app.command("stop")
def study_stop(name: str = typer.Argument(..., metavar="NAME"), storage: Optional[str] = StorageOpt) -> None:
    """Stop a study cleanly: running trials checkpoint and end stopped; `study worker NAME` continues it.

    Exit 0 when it was asked to stop; 1 when no trial of it is running."""
    from .study.report import stop_command

    raise typer.Exit(stop_command(name, storage, console))


@study_app.command("schema")
def study_schema(out: Optional[Path] = typer.Option(None, "--out", "-o", help="Write to a file.")) -> None:
    """JSON Schema of study files for editors."""
    from .study.spec import json_schema

    _write_json(json_schema(), out)


def _unwrap_help(*apps: typer.Typer) -> None:
    """Join the lines of each paragraph of the commands' docstrings: this Typer keeps a paragraph's
    line breaks (past the first), so `vram --help` broke mid-sentence at the source's 110 columns."""
    import inspect
    import re

    for a in apps:
        for info in a.registered_commands:
            doc = info.callback.__doc__ if info.callback else None
            if doc and info.help is None:
                info.help = re.sub(r"(?<!\n)\n(?!\n)", " ", inspect.cleandoc(doc))


_unwrap_help(app, preset_app, runs_app, study_app)


def main(argv: Optional[List[str]] = None) -> None:
    """Entry point: Typer handles usage errors (exit 2); UserError is the one handler for bad input."""
    for stream in (sys.stdout, sys.stderr):  # an ASCII or Latin-1 terminal shows '?' for '·' and '…', not a traceback
        try:
            stream.reconfigure(errors="replace")  # type: ignore[union-attr]
        except (AttributeError, ValueError):
            pass
    try:
        app(args=argv, prog_name="tuilm")
    except UserError as e:
        err_console.print(f"[bold red]error[/]: {escape(str(e))}", highlight=False, soft_wrap=True)
        sys.exit(e.exit_code)
    except OSError as e:  # the environment said no (disk full, read-only, permissions): not a bug
        import errno

        if e.errno in (errno.ENOSPC, errno.EDQUOT, errno.EROFS):
            from .runs import write_error_message

            text = write_error_message(e)
        else:
            from .runs import shown_path

            text = f"{shown_path(e.filename)}: {e.strerror or e}" if e.filename else f"{e.strerror or e}"
        err_console.print(f"[bold red]error[/]: {escape(text)}", highlight=False, soft_wrap=True)
        sys.exit(1)


if __name__ == "__main__":
    main()

"""Rich output for the CLI: validation problems, preset lists, runs. No torch."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.table import Table

from .config.load import Problem


def print_problems(problems: list[Problem], console: Console, source: str = "") -> None:
    for p in sorted(problems, key=lambda p: (not p.is_error, p.line or 0)):
        colour = "red" if p.is_error else "yellow"
        where = f"{source}:{p.line}: " if source and p.line else (f"{source}: " if source else "")
        console.print(f"[bold {colour}]{p.level}[/] {where}[bold]{p.path}[/]: {p.message}",
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
            table.add_row(path.stem, "?", "", "[red]unreadable[/]", str(e))
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
        table.add_row(path.stem, preset.model.arch, params, status, preset.run.notes)
    console.print(table)

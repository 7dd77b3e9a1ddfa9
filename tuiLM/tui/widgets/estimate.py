"""The live estimate panel: parameters, memory breakdown against a budget, artifact size."""

from __future__ import annotations

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual.widgets import Static

from ...units import fmt_bytes, fmt_count
from ..services import EstimateView
from .form import update_static

BAR_W = 14


def _bar(frac: float, width: int = BAR_W, style: str = "cyan") -> Text:
    frac = max(0.0, min(1.0, frac))
    full = frac * width
    n = int(full)
    t = Text("█" * n, style=style)
    rest = full - n
    if n < width and rest > 0.125:
        t.append("▏▎▍▌▋▊▉"[min(6, int(rest * 8) - 1)], style=style)
    return t


def estimate_renderable(est: EstimateView | None, budget_gib: float, *, error: str = "",
                        pending: bool = False) -> Group | Text:
    if est is None:
        return Text(error or "estimating…", style="red" if error else "dim")
    head = Table.grid(padding=(0, 1))
    head.add_column(style="bold")
    head.add_column(justify="right")
    head.add_row("parameters", fmt_count(est.params))
    if est.tokens_per_step:
        n = est.tokens_per_step  # a batch is an exact count: 4,096, not "4.10K"
        head.add_row("tokens/step", f"{n:,}" if n < 1_000_000 else fmt_count(n))
    if est.artifact_bytes is not None:
        head.add_row("artifact ≤", fmt_bytes(est.artifact_bytes))

    parts = Table.grid(padding=(0, 1))
    parts.add_column()
    parts.add_column(justify="right")
    parts.add_column()
    total = max(1, est.total_bytes)
    scale = max(total, budget_gib * 2**30) if budget_gib > 0 else total
    for name, nbytes in est.parts.items():
        if nbytes <= 0:
            continue
        parts.add_row(name, fmt_bytes(nbytes), _bar(nbytes / scale))
    over = budget_gib > 0 and est.total_bytes > budget_gib * 2**30
    parts.add_row(Text("total", style="bold"), Text(fmt_bytes(est.total_bytes), style="bold"),
                  _bar(est.total_bytes / scale, style="red" if over else "green"))
    if budget_gib > 0:
        frac = est.total_bytes / (budget_gib * 2**30)
        verdict = Text(f"{'✗ over' if over else '✓ fits'} budget {budget_gib:g} GiB ({frac:.0%})",
                       style="bold red" if over else "green")
    else:
        verdict = Text("no budget: set one below or system.vram_budget_gib", style="dim")
    where = Text(f"{est.device} {est.dtype}".strip(), style="dim")
    items = [head, Text(""), Text("memory per device (peak)", style="bold"), parts, verdict]
    if where.plain:
        items.append(where)
    if est.here is not None:  # (the machine warning in the problems compares this figure, not the one above)
        items.append(Text(f"no CUDA here: a run here trains on the CPU ({est.here[0]}), peak "
                          f"{fmt_bytes(est.here[1])} of host RAM", style="yellow"))
    if pending:
        items.append(Text("updating…", style="dim italic"))
    return Group(*items)


class EstimatePanel(Static):
    """Attributes down: the editor calls ``show`` with the latest estimate (or an error).

    Re-rendered only when what it shows changes, and laid out only when its height changes.
    """

    _shown: tuple | None = None

    def show(self, est: EstimateView | None, budget_gib: float, *, error: str = "", pending: bool = False) -> None:
        key = (est, budget_gib, error, pending)
        if key == self._shown:
            return
        self._shown = key
        update_static(self, estimate_renderable(est, budget_gib, error=error, pending=pending))

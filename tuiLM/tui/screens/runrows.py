"""What the runs list shows per row, read off the run directory: a run's summary, preset name, loss
trend and FROZEN flag, and a seed group's row (members, mean ± SE, lucky members). Built in the runs
list's worker thread; the screen only lays them out."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ...groups import GroupValue, SeedGroup, counted, group_value
from ...runs import EVENTS, read_preset, read_preset_text
from ...reader import RunSummary
from ...units import fmt_duration
from ..metrics import can_freeze, frozen_check


_SOURCE_RE = re.compile(r"^#\s*source:\s*(.+)$", re.M)


STEPS_W, TIME_W = 9, 7  # the runs list's steps and time columns (cells have no padding)


def _short(n: int, digits: int, floor: bool = False) -> str:
    """12_345 -> '12.3K' (digits=3) or '12K' (digits=2); below 1,000 as it is. ``floor`` rounds
    down (a step of 999,999 is not '1M')."""
    if n < 1000:
        return str(n)
    for div, suffix in ((10**3, "K"), (10**6, "M"), (10**9, "B"), (10**12, "T")):
        places = max(0, digits - len(str(n // div)))
        q = 10**places
        x = (n * q // div if floor else round(n * q / div)) / q
        if x < 1000:
            return (f"{x:.{places}f}".rstrip("0").rstrip(".") if places else str(int(x))) + suffix
    return str(n)


def steps_text(step: int, max_steps: int, width: int = STEPS_W - 1) -> str:
    """The most exact text that fits ``width`` (one cell less than the column, so it never runs into
    the loss): '400/400', '1234/5K', '12.3K/20K', '12K/20K', then the step and its percentage
    ('1250 83%', '123K 10%'); a step is rounded down (999,999 of 1M is '999K/1M')."""
    steps = [str(step), _short(step, 3, floor=True), _short(step, 2, floor=True)]
    if not max_steps:
        return next((s for s in steps if len(s) <= width), steps[-1])
    pct = f"{min(100, 100 * step // max_steps)}%"
    tries = [f"{steps[0]}/{max_steps}", f"{steps[0]}/{_short(max_steps, 3)}", f"{steps[1]}/{_short(max_steps, 3)}",
             f"{steps[2]}/{_short(max_steps, 2)}", *(f"{s} {pct}" for s in steps)]
    return next((t for t in tries if len(t) <= width), steps[-1])


def duration_text(seconds: float, width: int = TIME_W) -> str:
    """fmt_duration, or '27h46m' / '41d16h' where h:mm:ss would not fit the column."""
    text = fmt_duration(seconds)
    if len(text) > width:
        h, m = divmod(max(0, int(seconds)) // 60, 60)
        for text in (f"{h}h{m:02d}m", f"{h // 24}d{h % 24:02d}h", f"{h // 24}d"):
            if len(text) <= width:
                break
    return text


def preset_name(run: Path, summary: RunSummary) -> str:
    if summary.preset_name:
        return summary.preset_name
    m = _SOURCE_RE.search(read_preset_text(run)[:2000])
    return Path(m.group(1).strip()).stem if m else ""


@dataclass
class RunRow:
    path: Path
    summary: RunSummary
    preset: str
    arch: str
    frozen: bool = False

    @property
    def trend(self) -> list[float]:
        return self.summary.trend


@dataclass
class GroupRow:
    """A seed group of two or more runs (members in seed order)."""

    group: SeedGroup
    members: list[RunRow]
    value: GroupValue  # best val_bpb over the members that have one
    lucky: set[str]  # member keys flagged as possibly lucky

    @property
    def key(self) -> str:
        return "group:" + self.group.key


def make_group_row(group: SeedGroup, rows: dict[Path, RunRow]) -> GroupRow:
    members = [rows[p] for p in group.members]
    values = counted([m.summary.state for m in members], [m.summary.best_val_bpb for m in members])
    value = group_value(values)
    # (group_value's lucky are indices into the values given, the None ones included)
    return GroupRow(group, members, value, {str(members[i].path) for i in value.lucky})



def _took(s: RunSummary) -> float | None:
    """The run's training time over every attempt (as the dashboard's header), not stop-to-resume wall time."""
    return s.elapsed_s


def _model_from_preset(run: Path) -> dict[str, Any]:
    model = read_preset(run).get("model")  # an unreadable preset leaves the arch empty and no flag
    return dict(model) if isinstance(model, dict) else {}


def _size(run: Path) -> int | None:
    try:
        return (run / EVENTS).stat().st_size
    except OSError:
        return None


def _frozen(model: dict[str, Any], diag: dict[str, float]) -> bool:
    """The FROZEN flag from a summary's latest mHC diagnostics (reader.RunSummary.diag)."""
    if not can_freeze(model) or not diag:
        return False
    return frozen_check(model, diag.get("H_res_diag_mean"), diag.get("gate_value"), diag.get("step")).frozen


SPARK = "▁▂▃▄▅▆▇█"


def sparkline(values: list[float], width: int) -> str:
    """Block characters, low to high, of the values scaled to their own range; more values than
    ``width``: every part of the run, thinned evenly (its first and last value kept)."""
    vals = [v for v in values if v == v and abs(v) != float("inf")]
    if len(vals) > width > 1:
        vals = [vals[round(i * (len(vals) - 1) / (width - 1))] for i in range(width)]
    elif len(vals) > width:
        vals = vals[-width:]
    if not vals:
        return ""
    lo, hi = min(vals), max(vals)
    if hi - lo < 1e-12:
        return SPARK[0] * len(vals)
    return "".join(SPARK[min(len(SPARK) - 1, int((v - lo) / (hi - lo) * len(SPARK)))] for v in vals)

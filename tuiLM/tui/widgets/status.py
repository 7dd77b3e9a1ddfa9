"""The dashboard's one-line header: what matters first, the rest as the width allows.

Built from a run snapshot (``RunSnapshot``) and the view; no reading of its own.
"""

from __future__ import annotations

from typing import Any

import math

import numpy as np
from rich.text import Text
from textual.widgets import Static

from ...groups import STATE_ICON
from ...units import fit_id, fmt_duration, short_id
from ..panels import RUN_COLORS, View, best_bpb, fmt, frozen_of
from ..rundata import RunSnapshot
from .form import update_static
from .plotframe import fmt_value, fmt_x

STATE_STYLE = {"running": "bold green", "completed": "bold cyan", "stopped": "bold yellow",
               "pruned": "bold magenta", "failed": "bold white on red", "dead": "bold white on red",
               "new": "dim", "starting": "green", "unreadable": "bold white on red"}
RESUMABLE = ("stopped", "pruned", "failed", "dead")  # states 'r' resumes from the last checkpoint


def fit(pieces: list[tuple[int, Text]], width: int) -> Text:
    """Join ``pieces`` (priority, text) in their order, leaving out the least important (highest
    priority number) until the line fits ``width``."""
    keep = list(pieces)
    while keep and sum(t.cell_len for _, t in keep) > width:
        worst = max(p for p, _ in keep)
        if worst == 0:
            break
        i = max(i for i, (p, _) in enumerate(keep) if p == worst)
        keep.pop(i)
    out = Text(no_wrap=True, overflow="ellipsis")
    for _, t in keep:
        out.append_text(t)
    return out


def _t(*parts: tuple[str, str] | str) -> Text:
    t = Text()
    for p in parts:
        if isinstance(p, str):
            t.append(p)
        else:
            t.append(*p)
    return t


def _mean(col) -> float | None:
    if col is None or col.size == 0:
        return None
    ok = col[np.isfinite(col)]
    return float(ok.mean()) if ok.size else None


def state_piece(run: RunSnapshot, stopping: bool) -> Text:
    state = run.state
    text = "stopping…" if stopping and state in ("running", "starting") else state
    return _t((f" {STATE_ICON.get(state, '?')} {text} ", STATE_STYLE.get(state, "")))


def run_header(run: RunSnapshot, view: View, width: int, *, stopping: bool = False, group: str = "") -> Text:
    """Single run: state, id, step, loss, val_bpb, throughput, time; then the page and the cursor."""
    pieces: list[tuple[int, Text]] = [(0, state_piece(run, stopping)),
                                      (0, _t((f" {run.run_id}", "bold")))]
    fz = frozen_of(run)
    if fz.frozen:
        pieces.append((0, _t(" ", (" FROZEN ", "bold white on red"))))
    step, max_steps = run_step(run), run.max_steps
    if not run.loaded:
        pieces.append((0, _t((f"  loading {run.progress:.0%}", "yellow"))))
    if step is not None:
        pieces.append((1, _t("  ", f"{int(step):,}" + (f"/{max_steps:,}" if max_steps else ""))))
    loss = run.last("train", "loss")
    if loss is not None:
        pieces.append((1, _t(("  loss ", "dim"), fmt(loss))))
    bpb = run.last("eval", "val_bpb")
    if bpb is not None:
        pieces.append((2, _t(("  bpb ", "dim"), fmt(bpb))))
        best = best_bpb(run)
        if best is not None:
            pieces.append((3, _t((f" (best {fmt(best)})", "dim"))))
    live = run.state in ("running", "starting")
    if live:
        rate = run.recent_rate()
        if rate and max_steps and step is not None:
            pieces.append((2, _t(("  ETA ", "dim"), fmt_duration((max_steps - step) / rate))))
        tps = run.last("train", "tokens_per_s")
        if tps is not None:
            pieces.append((4, _t("  ", fmt_value(tps), (" tok/s", "dim"))))
    else:  # a finished run: its average throughput, not the last instant's
        tps = run.mean_tokens_per_s()
        if tps is not None:
            pieces.append((4, _t("  ", fmt_value(tps), (" tok/s avg", "dim"))))
    mfu = run.last("train", "mfu") if live else _mean(run.column("train", "mfu"))
    if mfu is not None and math.isfinite(mfu):
        pieces.append((4, _t(("  MFU ", "dim"), f"{mfu:.1%}")))
    el = run.elapsed_s()
    if el is not None:
        pieces.append((4, _t(("  ", "dim"), fmt_duration(el), ((f" ({run.resumes + 1} parts)" if run.resumes else ""), "dim"))))
    mem = run.last("train", "mem_gib")
    if mem is not None and mem > 0:
        pieces.append((6, _t(("  mem ", "dim"), f"{mem:.2f} GiB")))
    reason = (run.run_end or {}).get("reason") if run.state in ("pruned", "stopped") else None
    if reason:  # why it ended (a failed run has its box): "pruned by the median pruner at step 5 (...)"
        pieces.append((3, _t(("  · ", "dim"), (str(reason), "dim italic"))))
    pieces += _view_pieces(view, group)
    if fz.frozen:
        pieces.append((2, _t((f"  {fz.text}", "red"))))
    short = short_id(run.run_id)
    page = len(group.rsplit(" ", 1)[-1]) + 4 if group else 0  # ("  [1/2]": with_page)
    if short != run.run_id and sum(t.cell_len for p, t in pieces if p <= 2) + page > width:
        pieces[1] = (0, _t((f" {short}", "bold")))  # the name before its time stamp: bpb, ETA and page stay
    return with_page(fit(pieces, width), group, width)


def with_page(line: Text, group: str, width: int) -> Text:
    """The line, and where its page's full name did not fit, the page's number alone ("[1/2]")."""
    page = group.rsplit(" ", 1)[-1]
    if not group or f"[{group}]" in line.plain or line.cell_len + len(page) + 4 > width:
        return line
    line.append_text(_t("  ", (f"[{page}]", "bold cyan")))
    return line


def run_step(run: RunSnapshot) -> float | None:
    """The step a run reached: its run_end's once it ended (a pruned trial stops after its last
    logged step), as the runs list shows it; else the last train event's."""
    step = run.last("train", "step")
    end = (run.run_end or {}).get("step")
    return max(step or 0, end) if isinstance(end, (int, float)) else step


def compare_header(runs: list[Any], view: View, width: int, group: str = "") -> Text:
    """The compare view's line: each run or seed group in its colour with its state (a group: its
    label and k; its band kind)."""
    groups = [r for r in runs if hasattr(r, "members")]
    if groups:
        what = (f" Seed group {groups[0].label} " if len(runs) == 1
                else f" Compare {len(runs)} {'groups' if len(groups) == len(runs) else 'runs and groups'} ")
    else:
        what = f" Compare {len(runs)} runs "
    # the legend's names where they fit (the panels' legends are colours and values only): shorter,
    # then none; never some of them (a header that named two of three runs read as if the third had none)
    for name_w in (18, 12, 0):
        pieces: list[tuple[int, Text]] = [(0, _t((what, "bold")))]
        names = [fit_id(run.label if hasattr(run, "members") else run.run_id, name_w) for run in runs]
        for i, (run, name) in enumerate(zip(runs, names)):
            color = RUN_COLORS[i % len(RUN_COLORS)]
            pieces.append((3, _t(("  ━ ", color), (STATE_ICON.get(run.state, "?"), STATE_STYLE.get(run.state, "")))))
            if name_w:
                pieces.append((5, _t((f" {name}", color))))
        if groups:  # (it goes before the names do)
            pieces.append((6, _t(("  · band " + ("min–max" if view.band == "minmax" else "± SE") + " (b)", "dim"))))
        pieces += _view_pieces(view, group, page=1)
        if not name_w or sum(t.cell_len for p, t in pieces if p <= 5) <= width:  # (fit drops the names, 5,
            return fit(pieces, width)  # only after everything less important, and keeps them all if they fit)
    return fit(pieces, width)


def _view_pieces(view: View, group: str, page: int = 3) -> list[tuple[int, Text]]:
    out: list[tuple[int, Text]] = []
    if group:  # (one run's: below its figures; at 80 columns it kept "[core 1/2] (g)" and dropped bpb, ETA)
        out.append((page, _t("  ", (f"[{group}]", "bold cyan"), (" (g)", "dim"))))
    if view.cursor is not None:
        out.append((1, _t(("  @ ", "dim"), (f"{view.xaxis} {fmt_x(view.cursor, view.xaxis == 'tokens')}", "bold"))))
    if view.window != (0.0, 1.0):
        out.append((2, _t((f"  zoom {view.window[0]:.0%}–{view.window[1]:.0%}", "dim"))))
    out.append((6, _t(("  " + (f"EMA {view.ema_weight:g}" if view.ema_on else "EMA off"), "dim"))))
    if view.log_all or view.xaxis == "tokens":  # they change how every panel reads: kept longer than EMA
        out.append((2, _t(("  " + " · ".join(w for w, on in (("log y", view.log_all),
                                                             ("x tokens", view.xaxis == "tokens")) if on), "dim"))))
    return out


def failure_text(run: RunSnapshot) -> Text:
    """The box a failed or dead run shows: why, and the last lines of stdout.log."""
    t = Text()
    if run.state == "failed":
        reason = (run.run_end or {}).get("reason", "") or "no reason given"
        t.append(" ✗ FAILED ", style="bold white on red")
        t.append(f"  {reason}\n", style="bold red")
    else:
        code = f" (exit code {run.exit_code})" if run.exit_code is not None else ""
        t.append(" ✗ DEAD ", style="bold white on red")
        t.append(f"  the trainer exited without run_end{code}\n", style="bold red")
    tail = list(run.stdout)[-8:]
    if tail:
        t.append("last lines of stdout.log:\n", style="dim")
        t.append("\n".join(tail))
    else:
        t.append("stdout.log is empty", style="dim")
    t.append("\npress r to resume from the last checkpoint", style="dim italic")
    return t


def samples_text(samples: list) -> Text:
    """The latest samples, newest first, the prompt highlighted."""
    text = Text()
    for s in reversed(samples):
        text.append(f"step {s.step:,}  ", style="dim")
        text.append(s.prompt, style="bold cyan")
        text.append(s.text[len(s.prompt):] if s.text.startswith(s.prompt) else s.text)
        text.append("\n")
    if not samples:
        text.append("no samples yet", style="dim italic")
    return text


class StatusLine(Static):
    """The dashboard's header line: repainted only when its text changed (an update lays out)."""

    _markup: str | None = None

    def show(self, text: Text) -> None:
        if text.markup != self._markup:
            self._markup = text.markup
            update_static(self, text)


class FailureBox(Static):
    """Why a failed or dead run ended, and the last lines of its stdout (hidden otherwise)."""

    def show(self, run: RunSnapshot | None) -> None:
        if run is not None:
            self.update(failure_text(run))
        self.display = run is not None

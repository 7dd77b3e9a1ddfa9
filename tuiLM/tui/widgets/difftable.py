"""The compare view's table: runs as columns, a few summary rows, then the hyperparameters that differ.

Fits the width it is given: the key column and one column per run, truncated with "…"; with too many
runs for the width, columns keep a readable minimum and the table scrolls sideways.
"""

from __future__ import annotations

import re

from rich.text import Text
from textual.widgets import DataTable

from typing import Any

from ...groups import group_value
from ...units import fit_id, short_key
from ..panels import RUN_COLORS, best_bpb, diff_rows, fmt, frozen_of
from ..rundata import RunSnapshot
from ..seedgroup import SeedGroupData
from .literal import cell
from .status import STATE_ICON, run_step

SUMMARY_ROWS = ("best bpb", "loss", "step", "flag", "seeds", "per seed", "stream sim", "lucky", "vs first")
MAX_ROWS_80x24 = 7  # the height cap on a small terminal (it scrolls): the plots stay on screen
MIN_COL = 9


def cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: max(1, width - 1)] + "…"


def group_rows(sources: list[Any]) -> list[tuple[str, list[str]]]:
    """Summary rows when seed groups are compared: best val_bpb mean ± SE (k), the seeds and each
    seed's best, lucky seeds, and each source judged against the first (paired over shared seeds)."""
    from ...study.stats import compare

    def members(s: Any) -> list[RunSnapshot]:
        return s.members if isinstance(s, SeedGroupData) else [s]

    bests = [s.best_values() if isinstance(s, SeedGroupData) else [best_bpb(s)] for s in sources]
    seeds = [[m.setting("run.seed") for m in members(s)] for s in sources]
    values = [group_value(b) for b in bests]
    rows = [("best bpb", [v.text() + (f" (k={v.k})" if v.k > 1 else "") for v in values]),
            ("seeds", [" ".join(str(x) for x in sd) for sd in seeds]),
            ("per seed", [" ".join(fmt(b) for b in bs) for bs in bests]),
            ("loss", [fmt(s.last("train", "loss")) for s in sources])]
    sims = [[m.last("diag", "stream_similarity") if b is not None else None for m, b in zip(members(s), bs)]
            for s, bs in zip(sources, bests)]  # (the seeds counted, as the best bpb: seed 000's lucky 0.087)
    if any(x is not None for sim in sims for x in sim):
        rows.append(("stream sim", [group_value(sim).text() if any(x is not None for x in sim) else "—"
                                    for sim in sims]))
    lucky = []
    for v in values:  # (group_value's lucky are indices into the values given, None ones included)
        lucky.append(" ".join(f"seed #{i + 1}" for i in v.lucky))
    if any(lucky):
        rows.append(("lucky", lucky))
    if len(sources) > 1:
        base = [(b, sd) for b, sd in zip(bests[0], seeds[0]) if b is not None]
        judged = [""]
        for bs, sd in zip(bests[1:], seeds[1:]):
            pairs = [(b, x) for b, x in zip(bs, sd) if b is not None]
            if not pairs or not base:
                judged.append("—")
                continue
            c = compare([b for b, _ in pairs], [b for b, _ in base], [x for _, x in pairs], [x for _, x in base])
            judged.append(short_verdict(c))
        rows.append(("vs first", judged))
    return rows


def short_verdict(c: Any) -> str:
    """A comparison in a table cell, short enough for a column two groups get at 80 columns (29
    cells): "better 1.2 % p=0.02 k=3" (paired over k shared seeds), "worse 0.8 % p=0.003 Welch" (the
    seeds differ) or "seed noise p=0.41 k=3"."""
    how = f"k={c.k}" if c.method == "paired" else ("Welch" if c.method == "welch" else "1 seed")
    if c.method == "none":
        return "one seed: cannot tell"
    p = "p<0.001" if c.p < 0.001 else f"p={c.p:.2g}"
    if not c.significant:
        return f"seed noise {p} {how}"
    rel = f"{abs(c.rel_gain) * 100:.2g} %" if c.rel_gain == c.rel_gain else f"{abs(c.gain):.4f}"
    return f"{'better' if c.gain > 0 else 'worse'} {rel} {p} {how}"


def fit_verdicts(texts: list[str], width: int) -> list[str]:
    """A row of ``short_verdict`` texts in ``width`` cells each (three groups or more at 80 columns):
    without the method, then with tighter numbers ("worse 50% p=.04"), before anything is cut (the
    words stay: a sign would not say whether a higher bpb is meant). Each step applies to every cell
    while any of them is still too wide, so the row reads in one format ("16 %" beside "8.3%" did not)."""
    steps = (lambda t: t.rsplit(" ", 1)[0] if t.endswith(" Welch") or " k=" in t else t,
             lambda t: t.replace(" %", "%").replace("p=0.", "p=.").replace("p<0.", "p<.")
             .replace("seed noise", "noise").replace("one seed: cannot tell", "1 seed"),
             lambda t: re.sub(r"p=\.(0*[1-9])\d+", r"p=.\1", t))  # p=.042 -> p=.04: one significant digit
    for step in steps:
        if all(len(t) <= width for t in texts):
            break
        texts = [step(t) for t in texts]
    return texts


def summary_rows(runs: list[RunSnapshot]) -> list[tuple[str, list[str]]]:
    rows = [("best bpb", [fmt(best_bpb(r)) for r in runs]),
            ("loss", [fmt(r.last("train", "loss")) for r in runs]),
            ("step", [f"{int(s):,}" if (s := run_step(r)) is not None else "—" for r in runs])]
    flags = ["FROZEN" if frozen_of(r).frozen else ("pruned" if r.state == "pruned" else "") for r in runs]
    if any(flags):
        rows.append(("flag", flags))
    return rows


class DiffTable(DataTable):
    def wanted_height(self, screen_height: int) -> int:
        return min(max(MAX_ROWS_80x24, screen_height // 4), self.row_count + 1)

    def show(self, runs: list[Any], width: int) -> bool:
        """Fill the table for ``runs`` (runs or seed groups) at ``width`` cells; False when nothing changed."""
        grouped = any(isinstance(r, SeedGroupData) for r in runs)
        diffs = diff_rows((r.preset for r in runs), ignore_seed=grouped)
        rows = ((group_rows(runs) if grouped else summary_rows(runs))
                + (diffs or ([("(same hyperparameters)", ["" for _ in runs])] if len(runs) > 1 else [])))
        key = (tuple((k, tuple(v)) for k, v in rows), width, tuple(r.state for r in runs))
        if getattr(self, "_key", None) == key:
            return False
        self._key = key
        if len(runs) > 2 and width < 120:  # 80 columns, three or more: "warmup_steps", not its section too
            keys = [k for k, _ in diffs]
            short = {k: short_key(k, keys) for k in keys}
            rows = [(short.get(k, k), v) for k, v in rows]
        label_w = min(24, max(len(k) for k, _ in rows))
        # each column takes 2 cells of padding; 2 for the margins and 2 for a vertical scrollbar
        room = width - 4 - (label_w + 2)
        names = [f"{STATE_ICON.get(run.state, '?')} {run.run_id}" for run in runs]  # (cut below, by fit_id)
        # as wide as the widest name or value (a wide terminal does not spread two runs' values
        # half a screen apart), at most an equal share of the room
        widest = max(len(x) for x in names + [v for _, vs in rows for v in vs])
        col_w = max(MIN_COL, min(room // len(runs) - 2, widest))
        self.clear(columns=True)
        self.add_column("", width=label_w)
        for i, (run, name) in enumerate(zip(runs, names)):
            icon, _, run_id = name.partition(" ")  # (runs of one preset differ at the end: tiny-v1-…202515)
            self.add_column(Text(f"{icon} {fit_id(run_id, col_w - 2)}",
                                 style=f"bold {RUN_COLORS[i % len(RUN_COLORS)]}"), width=col_w)
        for k, values in rows:
            if k == "vs first":
                values = fit_verdicts(values, col_w)
            elif k == "best bpb":  # the k goes before the figures are cut (the seeds row lists them)
                values = [v.split(" (k=")[0] if len(v) > col_w else v for v in values]
            self.add_row(Text(cut(k, label_w), style="dim" if k in SUMMARY_ROWS else ""),
                         *(cell(cut(v, col_w)) for v in values))
        return True

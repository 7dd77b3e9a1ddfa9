"""The compare view's table: runs as columns, a few summary rows, then the hyperparameters that differ.

Fits the width it is given: the key column and one column per run, truncated with "…"; with too many
runs for the width, columns keep a readable minimum and the table scrolls sideways.
"""

from __future__ import annotations

from rich.text import Text
from textual.widgets import DataTable

from ..panels import RUN_COLORS, best_bpb, diff_rows, fmt, frozen_of
from ..rundata import RunData
from .status import STATE_ICON

SUMMARY_ROWS = ("best bpb", "loss", "step", "flag")
MAX_ROWS_80x24 = 7  # the height cap on a small terminal (it scrolls): the plots stay on screen
MIN_COL = 9


def cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: max(1, width - 1)] + "…"


def summary_rows(runs: list[RunData]) -> list[tuple[str, list[str]]]:
    rows = [("best bpb", [fmt(best_bpb(r)) for r in runs]),
            ("loss", [fmt(r.last("train", "loss")) for r in runs]),
            ("step", [f"{int(s):,}" if (s := r.last("train", "step")) is not None else "—" for r in runs])]
    flags = ["FROZEN" if frozen_of(r).frozen else ("pruned" if r.state == "pruned" else "") for r in runs]
    if any(flags):
        rows.append(("flag", flags))
    return rows


class DiffTable(DataTable):
    def wanted_height(self, screen_height: int) -> int:
        return min(max(MAX_ROWS_80x24, screen_height // 4), self.row_count + 1)

    def show(self, runs: list[RunData], width: int) -> bool:
        """Fill the table for ``runs`` at ``width`` cells; False when nothing changed."""
        diffs = diff_rows(r.preset for r in runs)
        rows = summary_rows(runs) + (diffs or [("(same hyperparameters)", ["" for _ in runs])])
        key = (tuple((k, tuple(v)) for k, v in rows), width, tuple(r.state for r in runs))
        if getattr(self, "_key", None) == key:
            return False
        self._key = key
        label_w = min(24, max(len(k) for k, _ in rows))
        # each column takes 2 cells of padding; 2 for the margins and 2 for a vertical scrollbar
        room = width - 4 - (label_w + 2)
        col_w = max(MIN_COL, room // len(runs) - 2)
        self.clear(columns=True)
        self.add_column("", width=label_w)
        for i, run in enumerate(runs):
            name = f"{STATE_ICON.get(run.state, '?')} {run.run_id}"
            self.add_column(Text(cut(name, col_w), style=f"bold {RUN_COLORS[i % len(RUN_COLORS)]}"), width=col_w)
        for k, values in rows:
            self.add_row(Text(cut(k, label_w), style="dim" if k in SUMMARY_ROWS else ""),
                         *(cut(v, col_w) for v in values))
        return True

"""The single-run dashboard's bottom: the latest samples and the tail of stdout.log, from snapshots."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Log, Static

from ..rundata import RunSnapshot
from .form import update_static
from .status import samples_text


class RunOutput(Horizontal):
    """Shows a run's samples and stdout; only what is new since the last snapshot is written."""

    def __init__(self) -> None:
        super().__init__(id="dash-bottom")
        self._meta: tuple = ()
        self._shown = 0  # stdout lines written to the log so far
        self._samples_text: str | None = None

    def compose(self) -> ComposeResult:
        with Vertical(id="samples-box"):
            yield Static("Samples", classes="section-title")
            yield Static(id="samples")
        with Vertical(id="log-box"):
            yield Static("stdout.log", classes="section-title")
            yield Log(id="stdout", max_lines=400, auto_scroll=True)

    def show(self, run: RunSnapshot) -> None:
        meta = (run.meta_version, run.stdout_total)
        if meta == self._meta:
            return
        self._meta = meta
        new = run.stdout_total - self._shown
        lines = list(run.stdout)[-new:] if new > 0 else []
        self._shown = run.stdout_total
        text = samples_text(list(run.samples)[-3:])
        if text.markup != self._samples_text:  # most ticks only the log moved
            self._samples_text = text.markup
            update_static(self.query_one("#samples", Static), text)
        if lines:
            self.query_one("#stdout", Log).write_lines(lines)

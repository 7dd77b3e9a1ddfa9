"""The app shows MFU in a run's status line when the train events carry it."""

from __future__ import annotations

import json

import pytest
from textual.widgets import Static

from tuiLM.tui.app import make_app
from tuiLM.tui.screens.dashboard import DashboardScreen

from .fixtures.fixture_runs import FIXED_NOW, write_run
from .test_tui_app import aio, text_of, wait_for


def with_mfu(run, mfu: float) -> None:
    path = run / "events.jsonl"
    out = []
    for line in path.read_text().splitlines():
        ev = json.loads(line)
        if ev["kind"] == "train":
            ev.update(flops_per_s=1.2e14, mfu=mfu)
        out.append(json.dumps(ev))
    path.write_text("\n".join(out) + "\n")


@pytest.mark.parametrize("size,shown", [((120, 40), "MFU 38.1%"), ((80, 24), "38% MFU")])
@aio
async def test_status_line_shows_mfu(tmp_path, size, shown):
    run = write_run(tmp_path / "runs", "gpt-a", "gpt")
    with_mfu(run, 0.3815)
    app = make_app(run_dir=run, runs_root=tmp_path / "runs", now=lambda: FIXED_NOW)
    async with app.run_test(size=size) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, DashboardScreen) and app.screen.ready, what="dashboard")
        status = text_of(app.screen.query_one("#run-status", Static))
        assert shown in status
        assert all(len(line) <= size[0] for line in status.splitlines())

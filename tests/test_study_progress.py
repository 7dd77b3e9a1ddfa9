"""``tuilm study run`` with its output piped: a plain line whenever the counts change and at least every
PLAIN_EVERY_S seconds in between, with done / running / pruned / failed, the best value and an ETA.
Driven by a fake clock and a fake engine (no trainers)."""

from __future__ import annotations

import io
import re
from types import SimpleNamespace

from rich.console import Console

from tuiLM.study import report
from tuiLM.study.engine import Counts


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def piped() -> Console:
    return Console(file=io.StringIO(), width=200, force_terminal=False)


def lines(console: Console) -> list[str]:
    return [line for line in console.file.getvalue().splitlines() if re.match(r"\d\d:\d\d:\d\d trials ", line)]


def test_a_plain_line_every_interval_while_nothing_changes():
    out, clock = piped(), Clock()
    progress = report.Progress(out, 4, "val_bpb", clock=clock)
    engine = SimpleNamespace(counts=Counts(running=2))
    for second in range(0, 35):  # the engine polls often; the counts stay the same for 35 s
        clock.t = 1000.0 + second
        progress(engine)
    shown = lines(out)
    assert len(shown) == 4  # at 0, 10, 20 and 30 s
    assert all("trials 0/4" in s and "done 0 · running 2 · pruned 0 · failed 0 · best -" in s and "eta -" in s
               for s in shown)
    assert [s.split(" · elapsed ")[1].split(" ")[0] for s in shown] == ["0:00", "0:10", "0:20", "0:30"]


def test_a_change_is_printed_at_once_with_the_best_value_and_an_eta():
    out, clock = piped(), Clock()
    progress = report.Progress(out, 4, "val_bpb", clock=clock)
    progress(SimpleNamespace(counts=Counts(running=2)))
    clock.t += 100
    progress(SimpleNamespace(counts=Counts(complete=1, running=1, best=1.23456, best_trial=0)))
    clock.t += 1  # a change one second later: printed too
    progress(SimpleNamespace(counts=Counts(complete=1, pruned=1, running=1, best=1.23456, best_trial=0)))
    shown = lines(out)
    assert len(shown) == 3
    assert "trials 1/4 · done 1 · running 1 · pruned 0 · failed 0 · best 1.2346 (trial 0)" in shown[1]
    assert shown[1].endswith("elapsed 1:40 · eta 5:00")  # 100 s for 1 trial, 3 to go
    assert "trials 2/4" in shown[2] and shown[2].endswith("elapsed 1:41 · eta 1:41")  # 101 s for 2, 2 to go


def test_the_eta_counts_only_trials_finished_in_this_session():
    """A continued study starts with trials done before: they took no time of this session."""
    out, clock = piped(), Clock()
    progress = report.Progress(out, 10, "val_bpb", clock=clock)
    progress(SimpleNamespace(counts=Counts(complete=6, running=1, best=1.0, best_trial=2)))
    clock.t += 60
    progress(SimpleNamespace(counts=Counts(complete=7, running=1, best=1.0, best_trial=2)))
    shown = lines(out)
    assert shown[0].endswith("eta -") and shown[1].endswith("elapsed 1:00 · eta 3:00")


def test_run_engine_prints_the_heartbeat_when_piped(monkeypatch):
    """Through run_engine (what `tuilm study run` calls), with the interval lowered: a line per poll."""
    monkeypatch.setattr(report, "PLAIN_EVERY_S", 0.0)

    class Engine:
        spec = SimpleNamespace(seeds=1, sampler="random", pruner="none", objective="val_bpb")
        name, target, parallel, nproc, storage_url, stopping = "fake", 3, 1, 1, "sqlite:///fake.db", False
        counts = Counts(running=1)

        def open(self, create: bool = True) -> None:
            pass

        def run(self, progress):
            for _ in range(5):  # five polls while one long trial runs
                progress(self)
            self.counts = Counts(complete=3, best=0.5, best_trial=1)
            progress(self)
            return self.counts

    out = piped()
    assert report.run_engine(Engine(), out) == 0
    shown = lines(out)
    assert len(shown) == 6 and all("trials 0/3 · done 0 · running 1" in s for s in shown[:5])
    assert "trials 3/3" in shown[5] and shown[5].endswith("eta 0:00")
    assert "study fake finished: 3 done" in out.file.getvalue()


def test_the_eta_counts_the_finished_part_of_the_running_trials():
    """Four trials, two at a time: at half way the two running ones are 90 % done. Whole trials alone
    said 'as long again' (eta = elapsed); the running trials' steps say a few seconds."""
    out, clock = piped(), Clock()
    progress = report.Progress(out, 4, "val_bpb", clock=clock)
    engine = SimpleNamespace(counts=Counts(running=2), in_flight=lambda: 0.0)
    progress(engine)
    clock.t += 43
    engine.counts, engine.in_flight = Counts(complete=2, running=2, best=1.0, best_trial=0), lambda: 1.8
    progress(engine)
    shown = lines(out)
    assert shown[1].endswith("elapsed 0:43 · eta 0:02"), shown  # 43 s for 3.8 trials of work, 0.2 to go


def _stopped_engine(cause: str, confirm: bool = False):
    class Engine:
        spec = SimpleNamespace(seeds=1, sampler="random", pruner="none", objective="val_bpb")
        name, target, parallel, nproc, storage_url = "fake", 3, 1, 1, "sqlite:///fake.db"
        counts, stopping, stop_cause = Counts(complete=1, running=1), False, ""
        study = SimpleNamespace(user_attrs={"tuilm_confirm_of": "base"} if confirm else {})

        def open(self, create: bool = True) -> None:
            pass

        def run(self, progress):
            self.stopping, self.stop_cause = True, cause
            return self.counts

    return Engine()


def test_a_study_stopped_here_by_a_signal_exits_128_plus_it_and_one_stopped_from_elsewhere_0():
    codes = {cause: report.run_engine(_stopped_engine(cause), piped())
             for cause in ("Ctrl-C", "SIGTERM", "SIGHUP", "tuilm study stop")}
    assert codes == {"Ctrl-C": 130, "SIGTERM": 143, "SIGHUP": 129, "tuilm study stop": 0}


def test_a_stopped_study_says_how_to_continue_it_and_a_confirmation_names_no_study_file():
    """A stopped confirmation said "continue it with the same `tuilm study run`": it has no study file,
    and running `study confirm` again starts another confirmation. The worker continues any study."""
    out = piped()
    report.run_engine(_stopped_engine("Ctrl-C"), out)
    assert "continue it with `tuilm study worker fake --storage sqlite:///fake.db` (or the same `tuilm study run`)" \
        in out.file.getvalue()
    out = piped()
    report.run_engine(_stopped_engine("Ctrl-C", confirm=True), out)
    text = out.file.getvalue()
    assert "continue it with `tuilm study worker fake --storage sqlite:///fake.db`\n" in text and "study run" not in text


def test_the_live_progress_line_keeps_its_counts_and_best_at_80_columns():
    """At 80 columns Rich squeezed every column: "tri…  0:00…  -:--… done 3 · … (tria…", no count, no
    time, no best. The counts and times stay whole; the info gives way, the best value first in it."""
    import io
    from types import SimpleNamespace

    from rich.console import Console

    from tuiLM.study.engine import Counts

    for width in (80, 160):
        con = Console(file=io.StringIO(), width=width, force_terminal=True, color_system=None)
        progress = report.Progress(con, 5, "val_bpb")
        progress(SimpleNamespace(counts=Counts(complete=3, running=1, pruned=1, best=2.8135, best_trial=1),
                                 in_flight=lambda: 0.4))
        out = Console(width=width, file=io.StringIO(), color_system=None)
        out.print(progress.rich.get_renderable())
        line = out.file.getvalue().rstrip()
        assert line.startswith("trials ") and " 4/5 0:00:00 eta " in line, line
        assert "best 2.8135" in line and len(line) <= width, line
        if width == 80:  # every count whole at 80 columns, the pruned one too (it was cut: "running 1 · 2 …")
            assert "3 done, 1 pruned, 1 running" in line, line
    # the ETA is the session's pace, as the plain lines give it (Rich's own, from its last 30 s of
    # updates, swung from minutes to hours while the first trainers started)
    clock = Clock()
    con = Console(file=io.StringIO(), width=120, force_terminal=True, color_system=None)
    progress = report.Progress(con, 4, "val_bpb", clock=clock)
    engine = SimpleNamespace(counts=Counts(running=1), in_flight=lambda: 0.0)
    progress(engine)
    clock.t += 600  # ten minutes: one trial done, the next half way
    engine.counts, engine.in_flight = Counts(complete=1, running=1), lambda: 0.5
    progress(engine)
    out = Console(width=120, file=io.StringIO(), color_system=None)
    out.print(progress.rich.get_renderable())
    assert "eta 16:40 " in out.file.getvalue(), out.file.getvalue()  # 1.5 trials in 600 s: 2.5 to go, 1000 s

"""The study actions the studies list and a study's view share: stop the study, continue it, confirm
its top-k, stop one trial. One wording and one flow for both screens (each asks before it acts)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from .dialogs import AskScreen, ConfirmScreen


def offers(action: str, state: str, live: int = 0) -> bool:
    """Whether a study in ``state`` (report.study_state) takes ``stop_study`` or ``continue_study``:
    stop a running one; continue any but a finished one or one whose trainers are alive here (``live``).
    One that says running with no live trainer here has lost its controller (killed, or on another
    host): a worker recovers its trials or joins it."""
    if action == "stop_study":
        return state == "running"
    return state != "finished" and not (state in ("running", "stopping") and live)


def may_continue(screen: Any, name: str, state: str, live: int) -> bool:
    """``c`` is offered: the study allows it and no study command this app started still runs (one
    started with a study file names no study: any of them counts)."""
    return offers("continue_study", state, live) and not screen.app.study_busy(name)


def ask_stop_study(screen: Any, name: str) -> None:
    screen.app.push_screen(ConfirmScreen(f"Stop study {name}? Running trials checkpoint and end stopped; "
                                         "continue resumes them.", yes="Stop"),
                           lambda ok: ok and screen.app.stop_study(name))


def continue_study(screen: Any, name: str, then: Callable[[], None]) -> None:
    """``tuilm study worker NAME`` in the background; ``then``: wake the screen's reader."""
    if screen.app.study_busy(name):  # (a stale footer could still run the action)
        screen.notify(f"A study command started here is still running: {name} waits for it to end",
                      severity="warning")
        return
    screen.app.start_study(["worker", name])
    then()


def ask_confirm(screen: Any, name: str, completed: int) -> None:
    """Ask for k, then ``tuilm study confirm NAME --top k`` in the background."""
    if completed == 0:
        screen.notify("No completed trial to confirm yet", severity="warning")
        return

    def done(answer: str | None) -> None:
        if not answer:
            return
        k = int(answer) if answer.isdigit() else 0
        if k < 1:
            screen.notify(f"{answer!r}: enter how many of the best trials to re-run (1 or more)", severity="error",
                          markup=False)
            return
        screen.app.start_study(["confirm", name, "--top", str(k)])

    screen.app.push_screen(AskScreen("Confirm top-k: re-run the k best trials with fresh seeds. k =",
                                     str(min(3, completed))), done)


def ask_stop_trial(screen: Any, number: int, run: Path, then: Callable[[], None]) -> None:
    """Stop a running trial's latest run: it checkpoints, and the trial ends pruned."""
    def done(ok: bool | None) -> None:
        if ok:
            screen.app.stop_trial(run)
            then()

    screen.app.push_screen(ConfirmScreen(f"Stop trial {number}? Its run {run.name} checkpoints and the trial "
                                         "ends pruned.", yes="Stop"), done)

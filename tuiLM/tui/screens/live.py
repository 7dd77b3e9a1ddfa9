"""What live screens share: a worker thread that scans while the screen is shown, sleeps otherwise,
and wakes at once on F5 or when the screen comes back (runs list, studies, a study); and the pace of
a live dashboard's redraws (``Pacer``); keys offered only where they apply (``sync_bindings``)."""

from __future__ import annotations

import threading
import time

NARROW = 110  # the app's -narrow breakpoint (App.HORIZONTAL_BREAKPOINTS): below it, 80-column layouts
REDRAW_S = 0.25  # at most 4 redraws a second (the loader polls a live run at the same pace)
UI_CPU_BUDGET = 0.10  # live redraws wait while the UI thread has used more than 10 % of a core
REDRAW_MAX_WAIT_S = 2.0  # ...but never longer than this


class Pacer:
    """When a dashboard may redraw. While a trainer runs it is self-limiting: the UI thread's CPU
    share since the last draw (painting included) stays under UI_CPU_BUDGET, so a slow terminal or
    machine redraws less often instead of taking CPU from the trainer."""

    def __init__(self) -> None:
        self.last_draw = 0.0
        self._cpu_mark = time.thread_time()

    def due(self) -> bool:
        return time.monotonic() - self.last_draw > REDRAW_S

    def may_draw(self, live: bool) -> bool:
        now = time.monotonic()
        if not live or now - self.last_draw >= REDRAW_MAX_WAIT_S:
            return True
        return (time.thread_time() - self._cpu_mark) / max(1e-3, now - self.last_draw) <= UI_CPU_BUDGET

    def drew(self) -> None:
        self.last_draw = time.monotonic()
        self._cpu_mark = time.thread_time()


class Refreshing:
    """Mixin for a Screen whose worker waits on ``self._wake`` (a threading.Event set in __init__)."""

    _wake: threading.Event
    OFFERED: tuple[str, ...] = ()  # actions whose keys the footer shows only where they apply (check_action)
    _offered: tuple[object, ...] | None = None

    def sync_bindings(self) -> None:
        """Refresh the footer when what ``check_action`` says of OFFERED changed, and only then: the
        Footer recomposes on every refresh, and these screens update every 2 s and on every cursor move."""
        offered = tuple(self.check_action(a, ()) for a in self.OFFERED)  # type: ignore[attr-defined]
        if offered != self._offered:
            self._offered = offered
            self.refresh_bindings()  # type: ignore[attr-defined]

    def _shown(self) -> bool:
        try:
            return self.app.screen is self  # type: ignore[attr-defined]
        except Exception:  # no screen stack (the app is closing): nothing to show
            return False

    def action_refresh(self) -> None:
        self._wake.set()

    def on_screen_resume(self) -> None:
        self._wake.set()  # back from another screen: refresh now

"""What every self-refreshing screen shares: a worker thread that scans while the screen is shown,
sleeps otherwise, and wakes at once on F5 or when the screen comes back (runs list, studies, a study)."""

from __future__ import annotations

import threading


class Refreshing:
    """Mixin for a Screen whose worker waits on ``self._wake`` (a threading.Event set in __init__)."""

    _wake: threading.Event

    def _shown(self) -> bool:
        try:
            return self.app.screen is self  # type: ignore[attr-defined]
        except Exception:  # no screen stack (the app is closing): nothing to show
            return False

    def action_refresh(self) -> None:
        self._wake.set()

    def on_screen_resume(self) -> None:
        self._wake.set()  # back from another screen: refresh now

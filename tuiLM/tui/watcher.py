"""Loader threads: one per open run, tailing its files and posting ``RunChanged`` to subscribers.

The thread only reads files into its ``RunData`` (never a widget); screens subscribe and get the
run's latest immutable ``RunSnapshot`` in a message that replaces any unprocessed one for the same
run, so a fast writer cannot flood the UI. Screens never touch the ``RunData`` itself.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from textual.message import Message

from .rundata import RunData, RunSnapshot

IDLE_EXIT_S = 30.0  # a thread with no subscribers stops after this; resubscribing restarts it


class RunChanged(Message):
    def __init__(self, snapshot: RunSnapshot) -> None:
        super().__init__()
        self.snapshot = snapshot

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, RunChanged) and message.snapshot.path == self.snapshot.path


@dataclass
class _Entry:
    run: RunData
    subscribers: list[Any] = field(default_factory=list)
    thread: threading.Thread | None = None


class RunWatcher:
    def __init__(self) -> None:
        self._entries: dict[Path, _Entry] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()

    def get(self, path: Path, proc: Any = None) -> RunData:
        key = Path(path).resolve()
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                entry = self._entries[key] = _Entry(RunData(path, proc=proc))
            elif proc is not None and proc is not entry.run.proc:
                entry.run.attach(proc)
            return entry.run

    def subscribe(self, run: RunData, subscriber: Any) -> None:
        key = run.path.resolve()
        with self._lock:
            entry = self._entries[key]
            if subscriber not in entry.subscribers:
                entry.subscribers.append(subscriber)
            if entry.thread is None or not entry.thread.is_alive():
                entry.thread = threading.Thread(target=self._loop, args=(entry,), daemon=True,
                                                name=f"tuilm-load-{run.run_id}")
                entry.thread.start()
        subscriber.post_message(RunChanged(run.snapshot()))

    def unsubscribe(self, run: RunData, subscriber: Any) -> None:
        with self._lock:
            entry = self._entries.get(run.path.resolve())
            if entry and subscriber in entry.subscribers:
                entry.subscribers.remove(subscriber)

    def wake(self, run: RunData) -> None:
        """Make the loader look now (after a resume or stop)."""
        run.wake()

    def proc_of(self, path: Path) -> Any:
        """The trainer this app started for the run at ``path`` (None if it did not)."""
        with self._lock:
            entry = self._entries.get(Path(path).resolve())
        return entry.run.proc if entry else None

    def training_here(self) -> list[Path]:
        """The runs whose trainer this app started (or resumed) and which still train (not those that
        wrote run_end and are only finishing: their process outlives it by a checkpoint and a cache)."""
        with self._lock:
            runs = [e.run for e in self._entries.values()]
        return [r.path for r in runs if r.proc is not None and r.proc.poll() is None
                and r.reader.run_end is None]

    def close(self) -> None:
        self._stop.set()

    def _loop(self, entry: _Entry) -> None:
        run = entry.run
        idle_since: float | None = None
        while not self._stop.is_set():
            changed = run.poll(budget_s=0.2)
            if changed:
                with self._lock:
                    subs = list(entry.subscribers)
                snap = run.snapshot()
                for s in subs:
                    s.post_message(RunChanged(snap))
            if not run.caught_up():
                continue  # still catching up with a long file: keep reading
            with self._lock:
                empty = not entry.subscribers
            if empty:
                idle_since = idle_since or time.monotonic()
                if time.monotonic() - idle_since > IDLE_EXIT_S:
                    return
            else:
                idle_since = None
            self._stop.wait(0.25 if run.snapshot().state in ("running", "starting", "new") else 1.0)

"""The tuiLM Textual app: ``make_app(...)`` builds it, ``run_app(...)`` runs it (the CLI calls this).

Three modes, each a screen stack: ``presets`` (list -> editor), ``runs`` (list -> dashboard or
compare) and ``studies`` (list -> study view). Run data is loaded by ``watcher.RunWatcher`` threads and shared between screens.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable, Iterable

from textual import events
from textual.app import App
from textual.binding import Binding
from textual.screen import ModalScreen

from ..config.presets import preset_dirs
from ..runs import CHECKPOINTS
from .commands import TuiLMCommands
from .screens.dashboard import DashboardScreen
from .screens.dialogs import ConfirmScreen
from .screens.editor import PresetEditor
from .screens.live import NARROW
from .screens.presets import PresetsScreen
from .screens.runs import RunsScreen
from .screens.studies import StudiesScreen
from .watcher import RunChanged, RunWatcher


class TuiLMApp(App):
    CSS_PATH = "tuilm.tcss"
    TITLE = "tuiLM"
    COMMANDS = App.COMMANDS | {TuiLMCommands}
    MODES = {"presets": PresetsScreen, "runs": RunsScreen, "studies": StudiesScreen}
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (NARROW, "-medium"), (150, "-wide")]
    # 1 presets, 2 runs, 3 studies: one footer entry ("123 Views"), so 80 columns fit the screens' keys
    VIEWS = Binding.Group("Views", compact=True)
    BINDINGS = [
        Binding("1", "show_presets", "Presets", group=VIEWS),
        Binding("2", "show_runs", "Runs", group=VIEWS),
        Binding("3", "show_studies", "Studies", group=VIEWS),
        Binding("q", "quit", "Quit"),
        Binding("f1,question_mark", "toggle_keys", "Keys", show=False),
        # esc closes the keys panel first (before a screen's esc goes back); without the panel it
        # passes on: check_action refuses it, and Textual tries the screen's bindings
        Binding("escape", "hide_keys", "Hide keys", show=False, priority=True),
    ]

    def __init__(self, *, preset_dirs: Iterable[Path] = (), runs_root: Path | None = None,
                 now: Callable[[], float] | None = None, start: dict[str, Any] | None = None) -> None:
        super().__init__()
        self._extra_dirs = [Path(d) for d in preset_dirs]
        self._runs_root = runs_root
        self.now = now or time.time
        self.watcher = RunWatcher()
        self._resumed: dict[Path, Any] = {}  # runs resumed here whose end is to be told: their trainer
        self._start = start or {}
        self.study_procs: list[Any] = []  # `tuilm study ...` processes started from the app
        self._study_watch: list[tuple[Any, list[str], Path]] = []  # (proc, args, log) until it exits

    # -- configuration the screens read ------------------------------------------------------------

    def extra_preset_dirs(self) -> list[Path]:
        return list(self._extra_dirs)

    def preset_dirs(self) -> list[Path]:
        return preset_dirs(self._extra_dirs)

    def runs_root_dir(self) -> Path | None:
        return self._runs_root

    # -- start-up --------------------------------------------------------------------------------------

    async def on_mount(self) -> None:
        s = self._start
        if s.get("sources"):
            await self.switch_mode("runs")
            self.open_sources(s["sources"])
        elif s.get("run_dirs"):
            await self.switch_mode("runs")
            if s.get("resume"):
                self.resume_run(Path(s["run_dirs"][0]))
            self.open_runs([Path(p) for p in s["run_dirs"]])
        elif s.get("preset_path") is not None or s.get("new_preset"):
            await self.switch_mode("presets")
            editor = self.open_preset(s.get("preset_path"), overrides=s.get("overrides", ()),
                                      run_name=s.get("run_name"))
            if s.get("launch") and editor is not None:
                self.call_after_refresh(editor.action_launch)
        else:
            await self.switch_mode("presets")

    def on_unmount(self) -> None:
        self.watcher.close()

    def on_resize(self, event: events.Resize) -> None:
        """The footer's keys keep the width they were laid out at, with the padding of the other side
        of the -narrow breakpoint: across it, build them again."""
        narrow = event.size.width < NARROW
        if narrow != getattr(self, "_narrow", narrow):
            self.set_timer(0.05, self.screen.refresh_bindings)  # (after the screen's breakpoint class)
        self._narrow = narrow

    # -- navigation ----------------------------------------------------------------------------------

    def action_show_presets(self) -> None:
        self._show_mode("presets", PresetsScreen)

    def action_show_runs(self) -> None:
        self._show_mode("runs", RunsScreen)

    def _show_mode(self, mode: str, base: type) -> None:
        """From the other mode: switch to this one as it was left (an open editor or dashboard keeps
        its place). Already in it: back to its list, through the editor's own "discard?" question."""
        if isinstance(self.screen, ModalScreen):  # a dialog waits for its answer
            return
        if self.current_mode != mode:
            self.switch_mode(mode)
            return
        while len(self.screen_stack) > 1 and not isinstance(self.screen, base):
            top = self.screen
            if isinstance(top, PresetEditor) and top.has_unsaved():
                top.action_back()
                return
            self.pop_screen()

    def action_show_studies(self) -> None:
        self._show_mode("studies", StudiesScreen)

    def open_preset(self, path: Path | None, overrides: Iterable[str] = (), run_name: str | None = None
                    ) -> PresetEditor | None:
        from ..config.load import PresetError

        if self.current_mode != "presets":
            self.switch_mode("presets")
        try:
            editor = PresetEditor(path, tuple(overrides), run_name=run_name)
        except (PresetError, OSError) as e:
            self.notify(str(e), severity="error", timeout=10, markup=False)
            return None
        self.push_screen(editor)
        return editor

    def open_runs(self, paths: list[Path], proc: Any = None, here: bool = False) -> DashboardScreen:
        """A dashboard of ``paths`` in the runs view; ``here``: over the current screen (a study's
        trial: esc goes back to the study)."""
        if self.current_mode != "runs" and not here:
            self.switch_mode("runs")
        runs = [self.watcher.get(p, proc=proc if i == 0 else None) for i, p in enumerate(paths)]
        screen = DashboardScreen(runs)
        self.push_screen(screen)
        return screen

    def open_sources(self, sources: list[tuple[str, list[Path]]], here: bool = False) -> DashboardScreen:
        """Open runs and seed groups (label, member runs) together: a group of two or more is drawn
        as its mean line and seed band, and the compare table judges the groups against the first.
        ``here`` as in ``open_runs``."""
        if self.current_mode != "runs" and not here:
            self.switch_mode("runs")
        runs: list = []
        groups: list[tuple[str, list[int]]] = []
        for label, paths in sources:
            groups.append((label, list(range(len(runs), len(runs) + len(paths)))))
            runs += [self.watcher.get(p) for p in paths]
        screen = DashboardScreen(runs, groups=groups)
        self.push_screen(screen)
        return screen

    def presets_changed(self) -> None:
        for screen in self.screen_stack:
            if isinstance(screen, PresetsScreen):
                screen.action_reload()

    # -- run control ---------------------------------------------------------------------------------

    def stop_run(self, path: Path) -> None:
        from . import services

        try:
            ok = services.stop_run(self.watcher.proc_of(path) or path)
        except Exception as e:  # a launcher problem must not take the console down
            self.notify(f"Stop failed: {e}", severity="error", markup=False)
            return
        self.notify("Stopping: the trainer writes a checkpoint first" if ok else "No live trainer found",
                    severity="information" if ok else "warning")

    def resume_run(self, path: Path) -> None:
        from ..errors import UserError
        from ..headless import outside_study, refuse_unresumable
        from . import services

        try:
            note = outside_study(path, refuse_unresumable(path))
        except UserError as e:
            self.notify(f"Cannot resume: {e}", severity="error", timeout=8, markup=False)
            return
        except Exception as e:  # an unreadable run must not take the console down
            self.notify(f"Cannot resume {path.name}: {e}", severity="error", timeout=8, markup=False)
            return
        try:
            proc = services.resume_run(path)
        except Exception as e:  # a launcher problem must not take the console down
            self.notify(f"Resume failed: {e}", severity="error", timeout=8, markup=False)
            return
        run = self.watcher.get(path, proc=proc)
        self.watcher.wake(run)
        self.watcher.subscribe(run, self)  # (its end is told: on_run_changed)
        self._resumed[run.path] = proc
        if not any((path / CHECKPOINTS).glob("step-*.json")):  # (a finished checkpoint has its meta)
            note = f"{path.name}: it has no checkpoint, so it starts again at step 0" + (f" ({note})" if note else "")
        if note:
            self.notify(f"Resuming {note}", severity="warning", timeout=10, markup=False)
        else:
            self.notify(f"Resuming {path.name}", timeout=2, markup=False)

    def on_run_changed(self, msg: RunChanged) -> None:
        """A run resumed here ended: say how, wherever the user is (a run resumed from the runs list that
        failed again within a second said nothing)."""
        s, proc = msg.snapshot, self._resumed.get(msg.snapshot.path)
        if proc is None or proc.poll() is None or s.exit_code is None or s.state in ("running", "starting"):
            return  # (a screen's RunChanged bubbles up here too; and not a snapshot from before this trainer)
        del self._resumed[s.path]
        self.watcher.unsubscribe(self.watcher.get(s.path), self)
        reason = str((s.run_end or {}).get("reason", "") or "") if s.state in ("failed", "pruned") else ""
        if s.state != "stopped":  # (a stop was asked for here, and said)
            self.notify(f"{s.run_id} {s.state}" + (f": {reason}" if reason else ""), markup=False, timeout=8,
                        severity="error" if s.state in ("failed", "dead") else "information")

    # -- study control -------------------------------------------------------------------------------

    def start_study(self, args: list[str]) -> Any:
        """``tuilm study ARGS...`` in the background (run FILE, worker NAME, confirm NAME --top K)."""
        from . import services

        try:
            proc, log = services.spawn_study(args, self._runs_root)
        except Exception as e:  # a launcher problem must not take the console down
            self.notify(f"Could not start `tuilm study {' '.join(args)}`: {e}", severity="error", timeout=8,
                        markup=False)
            return None
        self.study_procs.append(proc)
        self._study_watch.append((proc, list(args), log))
        if len(self._study_watch) == 1:
            self.set_timer(0.5, self._watch_studies)
        self.notify(f"Starting `tuilm study {' '.join(args)}` (log: {log})", timeout=4, markup=False)
        return proc

    def study_busy(self, name: str) -> bool:
        """Whether a study command this app started for NAME still runs (a second `c` would start one
        more worker on the same cores). `run FILE` and `confirm` name no study the app can match (a
        file; the new NAME-confirmN): while one runs, every study counts as busy."""
        return any(args[0] in ("run", "confirm") or args[1:2] == [name]
                   for proc, args, _ in self._study_watch if proc.poll() is None)

    def _watch_studies(self) -> None:
        """Say when a study command started here ends: its error lines when it failed (a study file
        with errors, a storage it cannot open: otherwise only in its log), its last line when not."""
        from . import services

        if not self.screen_stack:  # the app is closing (a timer can fire after the last screen went)
            return
        for item in [w for w in self._study_watch if w[0].poll() is not None]:
            self._study_watch.remove(item)
            proc, args, log = item
            said = services.log_verdict(log, proc.returncode)
            failed = bool(proc.returncode)
            self.notify(f"`tuilm study {' '.join(args)}` {said}", severity="error" if failed else "information",
                        timeout=12 if failed else 6, markup=False)
            self.screen.refresh_bindings()  # (c is offered again once this app's worker is gone)
        if self._study_watch:
            self.set_timer(1.0, self._watch_studies)

    def stop_study(self, name: str) -> None:
        from . import services

        try:
            refused = services.stop_study(name, self._runs_root)
        except Exception as e:
            self.notify(f"Stop failed: {e}", severity="error", markup=False)
            return
        if refused:
            self.notify(refused[:1].upper() + refused[1:], severity="warning", timeout=4, markup=False)
            return
        self.notify(f"Asked study {name} to stop: running trials checkpoint first", timeout=4, markup=False)

    def stop_trial(self, run_dir: Path) -> None:
        from . import services

        try:
            ok = services.stop_trial(run_dir)
        except Exception as e:
            self.notify(f"Stop failed: {e}", severity="error", markup=False)
            return
        self.notify(f"Stopping {run_dir.name}: the trial ends pruned" if ok else "No live trainer found",
                    severity="information" if ok else "warning", markup=False)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "hide_keys":
            return bool(self.screen.query("HelpPanel"))
        return True

    def action_hide_keys(self) -> None:
        self.action_hide_help_panel()

    def action_toggle_keys(self) -> None:
        """F1 or ?: Textual's keys panel (every key of the focused widget and the screen), or hide it."""
        if self.screen.query("HelpPanel"):
            self.action_hide_help_panel()
        else:
            self.action_show_help_panel()

    # -- quitting ------------------------------------------------------------------------------------

    async def action_quit(self) -> None:
        """Quit, asking first when a preset has unsaved changes or a trainer started here still trains
        (it goes on: trainers run in their own session; `run_app` names them on the way out)."""
        unsaved = [s for stack in self._screen_stacks.values() for s in stack
                   if isinstance(s, PresetEditor) and s.has_unsaved()]
        training = self.watcher.training_here()
        studies = [args for proc, args, _ in self._study_watch if proc.poll() is None]
        if not unsaved and not training and not studies:
            self.exit()
            return
        said = []
        if unsaved:
            said.append("A preset has unsaved changes.")
        if training:
            n = len(training)
            said.append(f"{training[0].name if n == 1 else f'{n} runs'} started here still train{'s' * (n == 1)}: "
                        f"{'it goes' if n == 1 else 'they go'} on after you quit (tuilm open RUN watches, "
                        f"tuilm stop RUN stops).")
        if studies:
            more = f" and {len(studies) - 1} more study commands" if len(studies) > 1 else ""
            said.append(f"`tuilm study {' '.join(studies[0])}`{more} started here go{'es' * (not more)} on too "
                        f"(tuilm study stop NAME stops).")

        def done(ok: bool | None) -> None:
            if ok:
                self.exit()

        self.push_screen(ConfirmScreen(" ".join(said) + " Quit anyway?", yes="Quit"), done)


def make_app(preset_path: str | Path | None = None, run_dir: str | Path | Iterable[str | Path] | None = None,
             launch: bool = False, overrides: Iterable[str] = (), run_name: str | None = None,
             resume: bool = False, *, preset_dirs: Iterable[str | Path] = (), runs_root: str | Path | None = None,
             now: Callable[[], float] | None = None,
             sources: Iterable[tuple[str, list[Path]]] = ()) -> TuiLMApp:
    """Build the app. ``preset_path`` may be a folder (listed with the others) or a file (opened);
    ``run_dir`` one run or several (compare view); ``sources`` runs and seed groups (label, members)
    opened together; ``now`` fixes the clock (snapshot tests)."""
    dirs = [Path(d) for d in preset_dirs]
    start: dict[str, Any] = {"launch": launch, "overrides": tuple(overrides), "run_name": run_name,
                             "resume": resume}
    if preset_path is not None:
        p = Path(preset_path)
        if p.is_dir():
            dirs.insert(0, p)
        else:
            start["preset_path"] = p
    if run_dir is not None:
        runs = [run_dir] if isinstance(run_dir, (str, Path)) else list(run_dir)
        start["run_dirs"] = [Path(r) for r in runs]
    start["sources"] = [(label, [Path(p) for p in paths]) for label, paths in sources]
    return TuiLMApp(preset_dirs=dirs, runs_root=Path(runs_root) if runs_root else None, now=now, start=start)


def run_app(preset_path: str | Path | None = None, run_dir: str | Path | Iterable[str | Path] | None = None,
            launch: bool = False, overrides: Iterable[str] = (), run_name: str | None = None,
            resume: bool = False, preset_dirs: Iterable[str | Path] = (),
            sources: Iterable[tuple[str, list[Path]]] = ()) -> None:
    """Run the app in this terminal (what ``tuilm``, ``tuilm open RUN`` and ``tuilm run PRESET`` call)."""
    from ..runs import runs_root

    app = make_app(preset_path, run_dir, launch, overrides, run_name, resume, preset_dirs=preset_dirs,
                   sources=sources)
    app.run()
    for path in app.watcher.training_here():  # (they go on in their own session)
        ref = path.name if path.parent.resolve() == runs_root().resolve() else str(path)
        print(f"{path.name} is still training: tuilm open {ref} watches it, tuilm stop {ref} stops it")
    if app.return_code:  # (a crash: Textual printed its traceback; the shell must not read success)
        raise SystemExit(app.return_code)

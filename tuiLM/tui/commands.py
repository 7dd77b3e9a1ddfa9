"""Command palette (ctrl+p): navigation, every preset and run by name, and the current screen's actions."""

from __future__ import annotations

from functools import partial
from typing import Any, Callable

from textual.command import DiscoveryHit, Hit, Hits, Provider

from ..config.presets import list_presets
from ..runs import list_runs


class TuiLMCommands(Provider):
    def _commands(self) -> list[tuple[str, str, Callable[[], Any]]]:
        app: Any = self.app
        cmds: list[tuple[str, str, Callable[[], Any]]] = [
            ("Presets", "List presets (1)", app.action_show_presets),
            ("Runs", "List runs (2)", app.action_show_runs),
            ("Studies", "List studies (3)", app.action_show_studies),
            ("New preset", "Start a preset from the schema defaults", partial(app.open_preset, None)),
        ]
        screen_cmds = getattr(self.screen, "palette_commands", None)
        if screen_cmds is not None:
            cmds = list(screen_cmds()) + cmds
        for path in list_presets(app.extra_preset_dirs()):
            cmds.append((f"Edit preset {path.stem}", str(path), partial(app.open_preset, path)))
        for run in list_runs(app.runs_root_dir())[:200]:
            cmds.append((f"Open run {run.name}", "Dashboard of this run", partial(app.open_runs, [run])))
        return cmds

    async def discover(self) -> Hits:
        for name, help_text, callback in self._commands()[:12]:
            yield DiscoveryHit(name, callback, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for name, help_text, callback in self._commands():
            score = matcher.match(name)
            if score > 0:
                yield Hit(score, matcher.highlight(name), callback, help=help_text)

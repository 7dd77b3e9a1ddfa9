"""Command palette (ctrl+p): navigation, every preset and run by name, and the current screen's actions."""

from __future__ import annotations

from functools import partial
from typing import Any, Callable

from textual.command import DiscoveryHit, Hit, Hits, Provider
from textual.content import Content
from textual.fuzzy import Matcher

from ..config.presets import list_presets
from ..runs import list_runs


def highlight(matcher: Matcher, candidate: str) -> Content:
    """``matcher.highlight`` for text shown literally: Textual's reads the candidate as markup, and a
    preset or run name may hold square brackets (``a[x].toml``) that it would drop or fail on."""
    content = Content(candidate)
    score, offsets = matcher.fuzzy_search.match(matcher.query, candidate)
    if score:
        for offset in offsets:
            if not candidate[offset].isspace():
                content = content.stylize(matcher.match_style, offset, offset + 1)
    return content


class TuiLMCommands(Provider):
    def _commands(self) -> list[tuple[str, str, Callable[[], Any]]]:
        app: Any = self.app
        cmds: list[tuple[str, str, Callable[[], Any]]] = [
            ("Presets", "List presets (1)", app.action_show_presets),
            ("Runs", "List runs (2)", app.action_show_runs),
            ("Studies", "List studies (3)", app.action_show_studies),
            ("New preset", "Start a preset from the schema defaults", partial(app.open_preset, None)),
            ("Help: keys", "Every key of this screen, in a panel beside it (F1 or ?)", app.action_toggle_keys),
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
            # Content, not str: the palette reads a str prompt and help as markup (names and paths are literal)
            yield DiscoveryHit(Content(name), callback, text=name, help=Content(help_text))  # type: ignore[arg-type]

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for name, help_text, callback in self._commands():
            score = matcher.match(name)
            if score > 0:
                yield Hit(score, highlight(matcher, name), callback, text=name,
                          help=Content(help_text))  # type: ignore[arg-type]
